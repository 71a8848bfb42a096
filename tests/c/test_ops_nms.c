/* NonMaxSuppression and EfficientNMS_TRT: one node built by hand, check() → infer() → reference kernel,
 * against results worked out by hand here (the ONNX operator documentation's examples for NonMaxSuppression,
 * small hand cases for EfficientNMS_TRT), plus the error paths, the padding contract of data-dependent rows
 * and an allocation-failure sweep over both kernels. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/kernel.h"
#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/nms_params.h"
#include "test.h"

#define MAX_IN  5
#define MAX_OUT 4

typedef struct {
  ri__graph *g;
  ri__op op;
  int node;
  int n_in, n_out;
  ri__tensor in[MAX_IN];
  int is_const[MAX_IN]; /* added to the graph as a constant (copied), visible to check() and infer() */
  int absent[MAX_IN];
  ri__tensor out[MAX_OUT];
  ri__err err;
} harness;

static void h_init(harness *h, ri__op op, int n_out) {
  memset(h, 0, sizeof *h);
  h->g = ri__graph_create();
  h->g->opset = 13;
  h->op = op;
  h->n_out = n_out;
}

static void h_in(harness *h, ri_dtype dt, ri__shape s, const void *data, int is_const) {
  int i = h->n_in++;
  h->in[i] = (ri__tensor){dt, s, (void *)data};
  h->is_const[i] = is_const;
}

static void h_absent(harness *h) {
  int i = h->n_in++;
  h->absent[i] = 1;
}

static void h_attr_i(harness *h, const char *name, int64_t v) {
  ri__attr a = {.name = ri__strdup(name), .type = RI__ATTR_INT, .i = v};
  CHECK(ri__graph_add_attr(h->g, h->node, &a, &h->err) == RI_OK);
}

static void h_attr_f(harness *h, const char *name, float v) {
  ri__attr a = {.name = ri__strdup(name), .type = RI__ATTR_FLOAT, .f = v};
  CHECK(ri__graph_add_attr(h->g, h->node, &a, &h->err) == RI_OK);
}

/* Adds the node (attributes may follow with h_attr_*). */
static void h_node(harness *h) {
  int ids[MAX_IN], outs[MAX_OUT];
  for (int i = 0; i < h->n_in; i++) {
    char name[16];
    snprintf(name, sizeof name, "in%d", i);
    if (h->absent[i]) {
      ids[i] = -1;
    } else if (h->is_const[i]) {
      size_t nb = 0;
      CHECK(ri__tensor_nbytes(h->in[i].dtype, &h->in[i].shape, &nb, NULL) == RI_OK);
      void *copy = ri__malloc(nb ? nb : 1);
      memcpy(copy, h->in[i].data, nb);
      ids[i] = ri__graph_add_const(h->g, name, h->in[i].dtype, &h->in[i].shape, copy, nb);
    } else {
      ids[i] = ri__graph_add_value(h->g, name, h->in[i].dtype, &h->in[i].shape, RI__VAL_INPUT);
    }
  }
  for (int k = 0; k < h->n_out; k++) {
    char name[16];
    snprintf(name, sizeof name, "out%d", k);
    outs[k] = ri__graph_add_value(h->g, name, RI_DTYPE_UNDEFINED, NULL, RI__VAL_ACTIVATION);
  }
  h->node = ri__graph_add_node(h->g, "n1", h->op, ids, h->n_in, outs, h->n_out);
}

/* check → infer → outputs → kernel; *stage: 1 check, 2 infer, 3 kernel, 4 done. */
static ri_status h_run(harness *h, int *stage) {
  ri__node *n = &h->g->nodes[h->node];
  const ri__op_def *d = ri__op_get(h->op);
  *stage = 1;
  RI__TRY(d->check(h->g, n, &h->err));
  *stage = 2;
  ri__tensor inf[MAX_IN], run_in[MAX_IN];
  for (int i = 0; i < h->n_in; i++) {
    inf[i] = h->in[i];
    if (h->absent[i]) inf[i].dtype = RI_DTYPE_UNDEFINED;
    if (!h->is_const[i]) inf[i].data = NULL;
    run_in[i] = h->in[i];
    if (h->absent[i]) memset(&run_in[i], 0, sizeof run_in[i]);
  }
  RI__TRY(d->infer(n, inf, h->out, &h->err));
  for (int k = 0; k < h->n_out; k++) {
    size_t nb;
    RI__TRY(ri__tensor_nbytes(h->out[k].dtype, &h->out[k].shape, &nb, &h->err));
    h->out[k].data = ri__malloc(nb ? nb : 1);
    if (!h->out[k].data) return RI_ERR_NO_MEMORY;
    memset(h->out[k].data, 0x5A, nb); /* garbage: the kernel must write every element */
  }
  *stage = 3;
  ri__exec x = {.err = &h->err};
  RI__TRY(ri__ref_kernel(h->op)(n, run_in, h->out, &x));
  *stage = 4;
  return RI_OK;
}

static void h_free(harness *h) {
  for (int k = 0; k < MAX_OUT; k++)
    ri__free(h->out[k].data);
  ri__graph_destroy(h->g);
  h->g = NULL;
}

#define SHAPE(...)                                                                                           \
  ((ri__shape){.rank = (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), .dims = {__VA_ARGS__}})

/* ---- NonMaxSuppression ------------------------------------------------------------------------------- */

/* The six boxes of the ONNX documentation's examples: two clusters of three around y = 0 and y = 10, one
 * box alone at y = 100. Corner form (y1, x1, y2, x2) and centre form (x, y, w, h). */
static const float k_boxes[6][4] = {{0, 0, 1, 1},   {0, 0.1f, 1, 1.1f},   {0, -0.1f, 1, 0.9f},
                                    {0, 10, 1, 11}, {0, 10.1f, 1, 11.1f}, {0, 100, 1, 101}};
static const float k_centres[6][4] = {{0.5f, 0.5f, 1, 1},  {0.5f, 0.6f, 1, 1},  {0.5f, 0.4f, 1, 1},
                                      {0.5f, 10.5f, 1, 1}, {0.5f, 10.6f, 1, 1}, {0.5f, 100.5f, 1, 1}};
static const float k_scores[6] = {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f};

static void nms_case(const float (*boxes)[4], int center, int64_t max_out, const float *iou,
                     const float *score, const int64_t *want, int n_want, int64_t want_rows, int line) {
  harness h;
  h_init(&h, RI__OP_NonMaxSuppression, 1);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 6, 4), boxes, 0);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 1, 6), k_scores, 0);
  h_in(&h, RI_DTYPE_INT64, SHAPE(1), &max_out, 1);
  if (iou)
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1), iou, 1);
  else
    h_absent(&h);
  if (score) h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1), score, 1);
  h_node(&h);
  if (center) h_attr_i(&h, "center_point_box", 1);
  int stage;
  ri_status st = h_run(&h, &stage);
  CHECK_MSG(st == RI_OK, "line %d: stage %d: %s", line, stage, h.err.msg);
  if (st == RI_OK) {
    CHECK_MSG(h.out[0].dtype == RI_DTYPE_INT64 && h.out[0].shape.rank == 2 &&
                  h.out[0].shape.dims[0] == want_rows && h.out[0].shape.dims[1] == 3,
              "line %d: largest shape [%lld,%lld], want [%lld,3]", line, (long long)h.out[0].shape.dims[0],
              (long long)h.out[0].shape.dims[1], (long long)want_rows);
    const int64_t *y = h.out[0].data;
    for (int r = 0; r < n_want; r++)
      CHECK_MSG(y[3 * r] == 0 && y[3 * r + 1] == 0 && y[3 * r + 2] == want[r],
                "line %d: row %d is %lld,%lld,%lld", line, r, (long long)y[3 * r], (long long)y[3 * r + 1],
                (long long)y[3 * r + 2]);
    for (int64_t r = n_want; r < want_rows; r++)
      CHECK_MSG(y[3 * r] == -1 && y[3 * r + 1] == -1 && y[3 * r + 2] == -1, "line %d: padding row %lld", line,
                (long long)r);
  }
  h_free(&h);
}

static void test_nms_documented_examples(void) {
  const float iou5 = 0.5f, score0 = 0.0f, score4 = 0.4f;
  /* suppress_by_IOU: 3 first (0.95), then 0 (0.9); 1, 2 overlap 0 and 4 overlaps 3 by > 0.5; 5 alone */
  nms_case(k_boxes, 0, 3, &iou5, &score0, (const int64_t[]){3, 0, 5}, 3, 3, __LINE__);
  nms_case(k_centres, 1, 3, &iou5, &score0, (const int64_t[]){3, 0, 5}, 3, 3, __LINE__);
  /* limit 2 per class */
  nms_case(k_boxes, 0, 2, &iou5, &score0, (const int64_t[]){3, 0}, 2, 2, __LINE__);
  /* score threshold 0.4 drops box 5 (0.3): two real rows, then padding up to min(10, 6) rows */
  nms_case(k_boxes, 0, 10, &iou5, &score4, (const int64_t[]){3, 0}, 2, 6, __LINE__);
  /* no iou input: threshold 0 suppresses any overlap, so the same as above but box 5 stays */
  nms_case(k_boxes, 0, 10, NULL, NULL, (const int64_t[]){3, 0, 5}, 3, 6, __LINE__);
  /* flipped corners give the same boxes */
  float flipped[6][4];
  for (int i = 0; i < 6; i++) {
    flipped[i][0] = k_boxes[i][2], flipped[i][1] = k_boxes[i][3];
    flipped[i][2] = k_boxes[i][0], flipped[i][3] = k_boxes[i][1];
  }
  nms_case((const float(*)[4])flipped, 0, 3, &iou5, &score0, (const int64_t[]){3, 0, 5}, 3, 3, __LINE__);
}

static void test_nms_errors(void) {
  harness h;
  int stage;
  /* max_output_boxes_per_class given at run time: refused at check */
  int64_t m = 3;
  h_init(&h, RI__OP_NonMaxSuppression, 1);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 6, 4), k_boxes, 0);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 1, 6), k_scores, 0);
  h_in(&h, RI_DTYPE_INT64, SHAPE(1), &m, 0);
  h_node(&h);
  ri_status st = h_run(&h, &stage);
  CHECK_MSG(st == RI_ERR_UNSUPPORTED && stage == 1 && strstr(h.err.msg, "n1") &&
                strstr(h.err.msg, "constant"),
            "%s", h.err.msg);
  h_free(&h);
  /* iou_threshold out of range at run time */
  const float bad_iou = 1.5f;
  h_init(&h, RI__OP_NonMaxSuppression, 1);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 6, 4), k_boxes, 0);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 1, 6), k_scores, 0);
  h_in(&h, RI_DTYPE_INT64, SHAPE(1), &m, 1);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1), &bad_iou, 0);
  h_node(&h);
  st = h_run(&h, &stage);
  CHECK_MSG(st == RI_ERR_INVALID_ARG && stage == 3 && strstr(h.err.msg, "iou_threshold"), "%s", h.err.msg);
  h_free(&h);
  /* scores that do not match the boxes */
  h_init(&h, RI__OP_NonMaxSuppression, 1);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 6, 4), k_boxes, 0);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 1, 5), k_scores, 0);
  h_node(&h);
  st = h_run(&h, &stage);
  CHECK_MSG(st == RI_ERR_SHAPE && stage == 2 && strstr(h.err.msg, "[B,C,N]"), "%s", h.err.msg);
  h_free(&h);
  /* the output read by another node: refused at check, naming the reader */
  h_init(&h, RI__OP_NonMaxSuppression, 1);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 6, 4), k_boxes, 0);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 1, 6), k_scores, 0);
  h_in(&h, RI_DTYPE_INT64, SHAPE(1), &m, 1);
  h_node(&h);
  int out = h.g->nodes[h.node].outputs[0];
  int y = ri__graph_add_value(h.g, "y", RI_DTYPE_UNDEFINED, NULL, RI__VAL_ACTIVATION);
  CHECK(ri__graph_add_node(h.g, "reader", RI__OP_Identity, &out, 1, &y, 1) >= 0);
  st = h_run(&h, &stage);
  CHECK_MSG(st == RI_ERR_UNSUPPORTED && stage == 1 && strstr(h.err.msg, "reader"), "%s", h.err.msg);
  h_free(&h);
  CHECK(ri__op_has_padded_rows(RI__OP_NonMaxSuppression) &&
        !ri__op_has_padded_rows(RI__OP_EfficientNMS_TRT) && !ri__op_has_padded_rows(RI__OP_Conv));
}

/* ---- EfficientNMS_TRT -------------------------------------------------------------------------------- */

/* Two classes, background -1. Boxes (y1, x1, y2, x2): 0 and 1 overlap (IoU 0.6), 2 is apart.
 * scores [A=3][C=2]: class 0: 0.9, 0.8, 0.2; class 1: 0.1, 0.85, 0.7. */
static const float k_eb[3][4] = {{0, 0, 1, 1}, {0, 0.25f, 1, 1.25f}, {2, 2, 3, 3}};
static const float k_es[3][2] = {{0.9f, 0.1f}, {0.8f, 0.85f}, {0.2f, 0.7f}};

static void enms_run(harness *h, const float *boxes, ri__shape bs, const float *anchors, ri__shape as,
                     int coding, int agnostic, int64_t k, float score_thr, int background) {
  h_init(h, RI__OP_EfficientNMS_TRT, 4);
  h_in(h, RI_DTYPE_FLOAT32, bs, boxes, 0);
  h_in(h, RI_DTYPE_FLOAT32, SHAPE(1, 3, 2), k_es, 0);
  if (anchors) h_in(h, RI_DTYPE_FLOAT32, as, anchors, 1);
  h_node(h);
  h_attr_f(h, "score_threshold", score_thr);
  h_attr_f(h, "iou_threshold", 0.5f);
  h_attr_i(h, "max_output_boxes", k);
  h_attr_i(h, "background_class", background);
  h_attr_i(h, "box_coding", coding);
  h_attr_i(h, "class_agnostic", agnostic);
}

static void check_dets(harness *h, int want_n, const int *cls, const float *score, const float (*box)[4],
                       int64_t k, int line) {
  const int32_t *num = h->out[0].data, *oc = h->out[3].data;
  const float *ob = h->out[1].data, *os = h->out[2].data;
  CHECK_MSG(num[0] == want_n, "line %d: %d detections, want %d", line, num[0], want_n);
  for (int i = 0; i < want_n && i < num[0]; i++) {
    CHECK_MSG(oc[i] == cls[i] && fabsf(os[i] - score[i]) < 1e-6f, "line %d: det %d class %d score %g", line,
              i, oc[i], (double)os[i]);
    for (int j = 0; j < 4; j++)
      CHECK_MSG(fabsf(ob[4 * i + j] - box[i][j]) < 1e-6f, "line %d: det %d box[%d] %g want %g", line, i, j,
                (double)ob[4 * i + j], (double)box[i][j]);
  }
  for (int64_t i = want_n; i < k; i++)
    CHECK_MSG(oc[i] == 0 && os[i] == 0.f && ob[4 * i] == 0.f && ob[4 * i + 3] == 0.f,
              "line %d: slot %lld not zero", line, (long long)i);
}

static void test_efficient_nms(void) {
  harness h;
  int stage;
  /* class-aware: 0/c0 .9, 1/c1 .85, 1/c0 .8 (IoU 0.6 with 0/c0 >= 0.5: dropped), 2/c1 .7, 2/c0 .2 (< .3) */
  enms_run(&h, &k_eb[0][0], SHAPE(1, 3, 4), NULL, SHAPE(0), 0, 0, 5, 0.3f, -1);
  CHECK_MSG(h_run(&h, &stage) == RI_OK, "stage %d: %s", stage, h.err.msg);
  check_dets(&h, 3, (const int[]){0, 1, 1}, (const float[]){0.9f, 0.85f, 0.7f},
             (const float[][4]){{0, 0, 1, 1}, {0, 0.25f, 1, 1.25f}, {2, 2, 3, 3}}, 5, __LINE__);
  CHECK(h.out[0].shape.rank == 2 && h.out[0].shape.dims[1] == 1 && h.out[1].shape.dims[1] == 5);
  h_free(&h);
  /* class-agnostic: 1/c1 .85 now overlaps 0/c0 and is dropped, as is 1/c0 */
  enms_run(&h, &k_eb[0][0], SHAPE(1, 3, 4), NULL, SHAPE(0), 0, 1, 5, 0.3f, -1);
  CHECK_MSG(h_run(&h, &stage) == RI_OK, "stage %d: %s", stage, h.err.msg);
  check_dets(&h, 2, (const int[]){0, 1}, (const float[]){0.9f, 0.7f},
             (const float[][4]){{0, 0, 1, 1}, {2, 2, 3, 3}}, 5, __LINE__);
  h_free(&h);
  /* background class 0 and a single slot */
  enms_run(&h, &k_eb[0][0], SHAPE(1, 3, 4), NULL, SHAPE(0), 0, 0, 1, 0.3f, 0);
  CHECK_MSG(h_run(&h, &stage) == RI_OK, "stage %d: %s", stage, h.err.msg);
  check_dets(&h, 1, (const int[]){1}, (const float[]){0.85f}, (const float[][4]){{0, 0.25f, 1, 1.25f}}, 1,
             __LINE__);
  h_free(&h);
  /* fused centre-size decoder: box (0.5, 0, 0, 0) on anchor (0.5, 0.5, 0.2, 0.2) → centre (0.6, 0.5), size
   * 0.2 */
  const float deltas[3][4] = {{0.5f, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, logf(2.f), 0}};
  const float anchors[1][3][4] = {{{0.5f, 0.5f, 0.2f, 0.2f}, {5, 5, 1, 1}, {9, 9, 1, 1}}};
  enms_run(&h, &deltas[0][0], SHAPE(1, 3, 4), &anchors[0][0][0], SHAPE(1, 3, 4), 1, 0, 4, 0.3f, -1);
  CHECK_MSG(h_run(&h, &stage) == RI_OK, "stage %d: %s", stage, h.err.msg);
  check_dets(
      &h, 4, (const int[]){0, 1, 0, 1}, (const float[]){0.9f, 0.85f, 0.8f, 0.7f},
      (const float[][4]){
          {0.5f, 0.4f, 0.7f, 0.6f}, {4.5f, 4.5f, 5.5f, 5.5f}, {4.5f, 4.5f, 5.5f, 5.5f}, {8, 8.5f, 10, 9.5f}},
      4, __LINE__);
  h_free(&h);
  /* bad attribute and bad anchors shape */
  enms_run(&h, &k_eb[0][0], SHAPE(1, 3, 4), NULL, SHAPE(0), 2, 0, 5, 0.3f, -1);
  CHECK_MSG(h_run(&h, &stage) == RI_ERR_UNSUPPORTED && stage == 1 && strstr(h.err.msg, "box_coding"), "%s",
            h.err.msg);
  h_free(&h);
  enms_run(&h, &k_eb[0][0], SHAPE(1, 3, 4), &anchors[0][0][0], SHAPE(1, 2, 4), 1, 0, 5, 0.3f, -1);
  CHECK_MSG(h_run(&h, &stage) == RI_ERR_SHAPE && stage == 2 && strstr(h.err.msg, "anchors"), "%s", h.err.msg);
  h_free(&h);
}

/* ---- allocation failures ----------------------------------------------------------------------------- */

static void test_alloc_failures(void) {
  const float iou5 = 0.5f;
  int64_t m = 3;
  for (int which = 0; which < 2; which++) {
    int done = 0;
    for (long fail = 1; fail < 60 && !done; fail++) {
      long live = ri__alloc_live();
      harness h;
      if (which == 0) {
        h_init(&h, RI__OP_NonMaxSuppression, 1);
        h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 6, 4), k_boxes, 0);
        h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 1, 6), k_scores, 0);
        h_in(&h, RI_DTYPE_INT64, SHAPE(1), &m, 1);
        h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1), &iou5, 1);
        h_node(&h);
      } else {
        enms_run(&h, &k_eb[0][0], SHAPE(1, 3, 4), NULL, SHAPE(0), 0, 0, 5, 0.3f, -1);
      }
      int stage;
      ri__alloc_fail_after(fail);
      ri_status st = h_run(&h, &stage);
      ri__alloc_fail_after(0);
      CHECK_MSG(st == RI_OK || st == RI_ERR_NO_MEMORY, "op %d fail %ld: status %d", which, fail, (int)st);
      if (st == RI_OK) done = 1;
      h_free(&h);
      CHECK_MSG(ri__alloc_live() == live, "op %d fail %ld: %ld allocations leaked", which, fail,
                ri__alloc_live() - live);
    }
    CHECK_MSG(done, "op %d never succeeded within the sweep", which);
  }
}

int main(void) {
  long live0 = ri__alloc_live();
  test_nms_documented_examples();
  test_nms_errors();
  test_efficient_nms();
  test_alloc_failures();
  CHECK_MSG(ri__alloc_live() == live0, "%ld allocations leaked", ri__alloc_live() - live0);
  return test_done("test_ops_nms");
}
