/* NonMaxSuppression (ONNX) and EfficientNMS_TRT (TensorRT plugin): attribute checks and output shapes.
 * Semantics in nms_params.h; reference kernels in src/backend/cpu/ref/nms.c. */
#include <string.h>

#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/nms_params.h"

/* ---- NonMaxSuppression ------------------------------------------------------------------------------- */

/* The index of a node reading value v, or -1. */
static int consumer_of(const ri__graph *g, int v) {
  for (int i = 0; i < g->n_nodes; i++) {
    const ri__node *c = &g->nodes[i];
    if (c->dead) continue;
    for (int k = 0; k < c->n_inputs; k++)
      if (c->inputs[k] == v) return i;
  }
  return -1;
}

/* Reads a one-element constant input k of n as int64 (*present = 0 when the input is absent). */
static ri_status const_int_input(const ri__graph *g, const ri__node *n, int k, const char *what, int64_t *out,
                                 int *present, ri__err *err) {
  *present = 0;
  if (k >= n->n_inputs || n->inputs[k] < 0) return RI_OK;
  const ri__value *v = &g->values[n->inputs[k]];
  if (v->kind != RI__VAL_CONST)
    return ri__err_set(
        err, RI_ERR_UNSUPPORTED,
        "node '%s' (NonMaxSuppression): input %d (%s) must be a constant: the output's largest "
        "size depends on it",
        n->name, k, what);
  if (v->dtype != RI_DTYPE_INT64 || ri__shape_numel(&v->shape) != 1 || !v->data)
    return ri__err_set(err, RI_ERR_SHAPE,
                       "node '%s' (NonMaxSuppression): input %d (%s) must be one int64, got %s", n->name, k,
                       what, ri_dtype_name(v->dtype));
  memcpy(out, v->data, sizeof *out);
  *present = 1;
  return RI_OK;
}

static ri_status nms_check(const ri__graph *g, ri__node *n, ri__err *err) {
  ri__free(n->params);
  n->params = NULL;
  int64_t cpb = ri__node_attr_int(n, "center_point_box", 0);
  if (cpb != 0 && cpb != 1)
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "node '%s' (NonMaxSuppression): center_point_box %lld is not 0 or 1", n->name,
                       (long long)cpb);
  int64_t m = 0;
  int present;
  RI__TRY(const_int_input(g, n, 2, "max_output_boxes_per_class", &m, &present, err));
  if (m < 0)
    return ri__err_set(err, RI_ERR_SHAPE,
                       "node '%s' (NonMaxSuppression): max_output_boxes_per_class is %lld, not >= 0", n->name,
                       (long long)m);
  for (int k = 3; k < n->n_inputs && k < 5; k++) {
    int v = n->inputs[k];
    if (v < 0 || g->values[v].kind != RI__VAL_CONST) continue;
    const ri__value *t = &g->values[v];
    if (t->dtype != RI_DTYPE_FLOAT32 || ri__shape_numel(&t->shape) != 1 || !t->data)
      return ri__err_set(err, RI_ERR_SHAPE,
                         "node '%s' (NonMaxSuppression): input %d (%s) must be one float32", n->name, k,
                         k == 3 ? "iou_threshold" : "score_threshold");
    float f;
    memcpy(&f, t->data, sizeof f);
    if (k == 3 && !(f >= 0.f && f <= 1.f))
      return ri__err_set(err, RI_ERR_SHAPE,
                         "node '%s' (NonMaxSuppression): iou_threshold %g is outside [0, 1]", n->name,
                         (double)f);
  }
  if (n->n_outputs >= 1 && n->outputs[0] >= 0) {
    int c = consumer_of(g, n->outputs[0]);
    if (c >= 0)
      return ri__err_set(
          err, RI_ERR_UNSUPPORTED,
          "node '%s' (NonMaxSuppression): its output is read by node '%s' (%s); an output whose "
          "length depends on the data is supported only as a graph output",
          n->name, g->nodes[c].name, ri__op_name(g->nodes[c].op));
  }
  ri__nms_params *p = ri__malloc(sizeof *p);
  if (!p) return RI__OOM(err);
  p->center_point_box = (int)cpb;
  p->max_per_class = m;
  n->params = p;
  return RI_OK;
}

static ri_status nms_infer(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  const ri__nms_params *p = n->params;
  if (!p)
    return ri__err_set(err, RI_ERR_INTERNAL, "NonMaxSuppression node '%s': check() has not run", n->name);
  const ri__shape *bs = &in[0].shape, *ss = &in[1].shape;
  char b1[160], b2[160];
  if (in[0].dtype != RI_DTYPE_FLOAT32 || in[1].dtype != RI_DTYPE_FLOAT32)
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "node '%s' (NonMaxSuppression): boxes and scores must be float32, got %s and %s",
                       n->name, ri_dtype_name(in[0].dtype), ri_dtype_name(in[1].dtype));
  if (bs->rank != 3 || bs->dims[2] != 4 || ss->rank != 3 || ss->dims[0] != bs->dims[0] ||
      ss->dims[2] != bs->dims[1])
    return ri__err_set(err, RI_ERR_SHAPE,
                       "node '%s' (NonMaxSuppression): boxes %s and scores %s must be [B,N,4] and [B,C,N]",
                       n->name, ri__shape_str(bs, b1, sizeof b1), ri__shape_str(ss, b2, sizeof b2));
  for (int k = 3; k < n->n_inputs; k++)
    if (in[k].dtype != RI_DTYPE_UNDEFINED &&
        (in[k].dtype != RI_DTYPE_FLOAT32 || ri__shape_numel(&in[k].shape) != 1))
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (NonMaxSuppression): input %d must be one float32",
                         n->name, k);
  int64_t per = p->max_per_class < bs->dims[1] ? p->max_per_class : bs->dims[1];
  int64_t bc = bs->dims[0] * ss->dims[1];
  if (bc < 0 || (bc > 0 && per > RI__MAX_TENSOR_ELEMS / 3 / bc))
    return ri__err_set(
        err, RI_ERR_LIMIT,
        "node '%s' (NonMaxSuppression): up to %lld x %lld x %lld selected boxes exceed the tensor "
        "limit",
        n->name, (long long)bs->dims[0], (long long)ss->dims[1], (long long)per);
  out[0].dtype = RI_DTYPE_INT64;
  out[0].shape.rank = 2;
  out[0].shape.dims[0] = bc * per;
  out[0].shape.dims[1] = 3;
  out[0].data = NULL;
  return RI_OK;
}

const ri__op_def ri__opdef_NonMaxSuppression = {"NonMaxSuppression", 2, 5, 1, 1, nms_check, nms_infer};

int ri__op_has_padded_rows(ri__op op) { return op == RI__OP_NonMaxSuppression; }

/* ---- EfficientNMS_TRT -------------------------------------------------------------------------------- */

static const char *const k_enms_attrs[] = {"score_threshold",  "iou_threshold",    "max_output_boxes",
                                           "background_class", "score_activation", "class_agnostic",
                                           "box_coding",       "plugin_version"};

static ri_status enms_check(const ri__graph *g, ri__node *n, ri__err *err) {
  ri__free(n->params);
  n->params = NULL;
  for (int i = 0; i < n->n_attrs; i++) {
    size_t k = 0;
    while (k < sizeof k_enms_attrs / sizeof *k_enms_attrs && strcmp(n->attrs[i].name, k_enms_attrs[k]) != 0)
      k++;
    if (k == sizeof k_enms_attrs / sizeof *k_enms_attrs)
      return ri__err_set(err, RI_ERR_UNSUPPORTED,
                         "node '%s' (EfficientNMS_TRT): attribute '%s' is not supported", n->name,
                         n->attrs[i].name);
  }
  ri__efficient_nms_params p;
  p.score_threshold = ri__node_attr_float(n, "score_threshold", 0.5f);
  p.iou_threshold = ri__node_attr_float(n, "iou_threshold", 0.5f);
  p.max_output_boxes = ri__node_attr_int(n, "max_output_boxes", 100);
  p.background_class = ri__node_attr_int(n, "background_class", -1);
  int64_t act = ri__node_attr_int(n, "score_activation", 0);
  int64_t agn = ri__node_attr_int(n, "class_agnostic", 0);
  int64_t coding = ri__node_attr_int(n, "box_coding", 0);
  if (!(p.score_threshold == p.score_threshold) || !(p.iou_threshold >= 0.f && p.iou_threshold <= 1.f))
    return ri__err_set(
        err, RI_ERR_UNSUPPORTED,
        "node '%s' (EfficientNMS_TRT): score_threshold %g / iou_threshold %g (expected a number and "
        "a number in [0, 1])",
        n->name, (double)p.score_threshold, (double)p.iou_threshold);
  if (p.max_output_boxes < 1 || p.max_output_boxes > 1000000)
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "node '%s' (EfficientNMS_TRT): max_output_boxes %lld is outside 1..1000000", n->name,
                       (long long)p.max_output_boxes);
  if ((act != 0 && act != 1) || (agn != 0 && agn != 1) || (coding != 0 && coding != 1))
    return ri__err_set(
        err, RI_ERR_UNSUPPORTED,
        "node '%s' (EfficientNMS_TRT): score_activation %lld, class_agnostic %lld, box_coding %lld "
        "(expected 0 or 1 each)",
        n->name, (long long)act, (long long)agn, (long long)coding);
  p.score_activation = (int)act;
  p.class_agnostic = (int)agn;
  p.box_coding = (int)coding;
  (void)g;
  ri__efficient_nms_params *q = ri__malloc(sizeof *q);
  if (!q) return RI__OOM(err);
  *q = p;
  n->params = q;
  return RI_OK;
}

static ri_status enms_infer(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  const ri__efficient_nms_params *p = n->params;
  if (!p)
    return ri__err_set(err, RI_ERR_INTERNAL, "EfficientNMS_TRT node '%s': check() has not run", n->name);
  const ri__shape *bs = &in[0].shape, *ss = &in[1].shape;
  char b1[160], b2[160], b3[160];
  const int has_anchors = n->n_inputs > 2 && in[2].dtype != RI_DTYPE_UNDEFINED;
  for (int k = 0; k < n->n_inputs; k++)
    if (in[k].dtype != RI_DTYPE_UNDEFINED && in[k].dtype != RI_DTYPE_FLOAT32)
      return ri__err_set(err, RI_ERR_UNSUPPORTED,
                         "node '%s' (EfficientNMS_TRT): input %d is %s; only float32 is supported", n->name,
                         k, ri_dtype_name(in[k].dtype));
  if (ss->rank != 3)
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (EfficientNMS_TRT): scores %s must be [B,A,C]", n->name,
                       ri__shape_str(ss, b2, sizeof b2));
  int64_t B = ss->dims[0], A = ss->dims[1], C = ss->dims[2];
  int ok = bs->dims[0] == B && bs->dims[1] == A &&
           ((bs->rank == 3 && bs->dims[2] == 4) || (bs->rank == 4 && bs->dims[2] == C && bs->dims[3] == 4));
  if (!ok)
    return ri__err_set(err, RI_ERR_SHAPE,
                       "node '%s' (EfficientNMS_TRT): boxes %s must be [B,A,4] or [B,A,C,4] for scores %s",
                       n->name, ri__shape_str(bs, b1, sizeof b1), ri__shape_str(ss, b2, sizeof b2));
  if (has_anchors) {
    const ri__shape *as = &in[2].shape;
    if (as->rank != 3 || (as->dims[0] != 1 && as->dims[0] != B) || as->dims[1] != A || as->dims[2] != 4)
      return ri__err_set(err, RI_ERR_SHAPE,
                         "node '%s' (EfficientNMS_TRT): anchors %s must be [1,A,4] or [B,A,4] (A = %lld)",
                         n->name, ri__shape_str(as, b3, sizeof b3), (long long)A);
  }
  const int64_t K = p->max_output_boxes;
  out[0].dtype = RI_DTYPE_INT32;
  out[0].shape = (ri__shape){2, {B, 1}};
  if (n->n_outputs > 1) {
    out[1].dtype = RI_DTYPE_FLOAT32;
    out[1].shape = (ri__shape){3, {B, K, 4}};
  }
  if (n->n_outputs > 2) {
    out[2].dtype = RI_DTYPE_FLOAT32;
    out[2].shape = (ri__shape){2, {B, K}};
  }
  if (n->n_outputs > 3) {
    out[3].dtype = RI_DTYPE_INT32;
    out[3].shape = (ri__shape){2, {B, K}};
  }
  for (int k = 0; k < n->n_outputs; k++)
    out[k].data = NULL;
  return RI_OK;
}

const ri__op_def ri__opdef_EfficientNMS_TRT = {"EfficientNMS_TRT", 2, 3, 4, 4, enms_check, enms_infer};
