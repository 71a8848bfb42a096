/* Reference kernels of NonMaxSuppression and EfficientNMS_TRT (semantics in graph/ops/nms_params.h).
 * Greedy selection: candidates sorted once, each compared with the boxes kept so far (at most the output
 * limit), so the cost is O(candidates * kept). Scratch comes from ri__malloc and is freed before returning.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernel.h"
#include "core/alloc.h"
#include "graph/ops/nms_params.h"

typedef struct {
  float score;
  int32_t anchor;
  int32_t cls;
} cand;

/* Score descending, then lower anchor, then lower class: a total order, so qsort's instability is harmless.
 */
static int cand_cmp(const void *pa, const void *pb) {
  const cand *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  if (a->anchor != b->anchor) return a->anchor < b->anchor ? -1 : 1;
  return (a->cls > b->cls) - (a->cls < b->cls);
}

static float one_float(const ri__tensor *t, float dflt) {
  if (t->dtype != RI_DTYPE_FLOAT32 || !t->data) return dflt;
  float f;
  memcpy(&f, t->data, sizeof f);
  return f;
}

/* ---- NonMaxSuppression ------------------------------------------------------------------------------- */

/* Box i of one batch item as (lo0, lo1, hi0, hi1). */
static void onnx_box(const float *boxes, int64_t i, int center, float *o) {
  const float *b = boxes + 4 * i;
  if (center) {
    /* (x_center, y_center, width, height): axis 0 is x here; IoU does not care which axis is which */
    o[0] = b[0] - b[2] / 2.f, o[2] = b[0] + b[2] / 2.f;
    o[1] = b[1] - b[3] / 2.f, o[3] = b[1] + b[3] / 2.f;
  } else {
    memcpy(o, b, 4 * sizeof(float));
    ri__nms_order_corners(o);
  }
}

ri_status ri__ref_NonMaxSuppression(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const ri__nms_params *p = n->params;
  if (!p)
    return ri__err_set(x->err, RI_ERR_INTERNAL, "NonMaxSuppression node '%s': check() has not run", n->name);
  const int64_t B = in[0].shape.dims[0], N = in[0].shape.dims[1], C = in[1].shape.dims[1];
  const int64_t rows = out[0].shape.dims[0];
  int64_t *y = out[0].data;
  /* inputs past n_inputs are not set by the caller: absent */
  const int has_thr = n->n_inputs > 4 && in[4].dtype != RI_DTYPE_UNDEFINED;
  const float iou_thr = n->n_inputs > 3 ? one_float(&in[3], 0.f) : 0.f;
  const float score_thr = has_thr ? one_float(&in[4], 0.f) : 0.f;
  if (!(iou_thr >= 0.f && iou_thr <= 1.f))
    return ri__err_set(x->err, RI_ERR_INVALID_ARG,
                       "node '%s' (NonMaxSuppression): iou_threshold %g is outside [0, 1]", n->name,
                       (double)iou_thr);
  const int64_t per = p->max_per_class < N ? p->max_per_class : N;
  int64_t k = 0;
  if (per > 0 && N > 0) {
    cand *cands = ri__malloc((size_t)N * sizeof *cands);
    float *kept = ri__malloc((size_t)per * 4 * sizeof *kept);
    if (!cands || !kept) {
      ri__free(cands);
      ri__free(kept);
      return RI__OOM(x->err);
    }
    for (int64_t b = 0; b < B; b++) {
      const float *boxes = (const float *)in[0].data + b * N * 4;
      for (int64_t c = 0; c < C; c++) {
        const float *s = (const float *)in[1].data + (b * C + c) * N;
        int64_t nc = 0;
        for (int64_t i = 0; i < N; i++)
          if (!has_thr || s[i] > score_thr) cands[nc++] = (cand){s[i], (int32_t)i, 0};
        qsort(cands, (size_t)nc, sizeof *cands, cand_cmp);
        int64_t nk = 0;
        for (int64_t j = 0; j < nc && nk < per; j++) {
          float bx[4];
          onnx_box(boxes, cands[j].anchor, p->center_point_box, bx);
          int keep = 1;
          for (int64_t q = 0; q < nk && keep; q++)
            if (ri__nms_iou(bx, kept + 4 * q) > iou_thr) keep = 0;
          if (!keep) continue;
          memcpy(kept + 4 * nk++, bx, sizeof bx);
          if (k >= rows) break; /* cannot happen: rows = B * C * per */
          y[3 * k] = b, y[3 * k + 1] = c, y[3 * k + 2] = cands[j].anchor;
          k++;
        }
      }
    }
    ri__free(cands);
    ri__free(kept);
  }
  for (int64_t r = k; r < rows; r++)
    y[3 * r] = y[3 * r + 1] = y[3 * r + 2] = -1;
  return RI_OK;
}

/* ---- EfficientNMS_TRT -------------------------------------------------------------------------------- */

static float sigmoid(float v) { return 1.f / (1.f + expf(-v)); }

/* Decoded corners of (image b, anchor a, class c) in the inputs' axis order (not reordered). */
static void enms_box(const ri__efficient_nms_params *p, const ri__tensor *in, int has_anchors, int64_t b,
                     int64_t a, int64_t c, float *o) {
  const int64_t A = in[1].shape.dims[1], C = in[1].shape.dims[2];
  const float *bx = in[0].shape.rank == 4 ? (const float *)in[0].data + ((b * A + a) * C + c) * 4
                                          : (const float *)in[0].data + (b * A + a) * 4;
  float v[4];
  memcpy(v, bx, sizeof v);
  if (has_anchors) {
    const int64_t ab = in[2].shape.dims[0] == 1 ? 0 : b;
    float an[4];
    memcpy(an, (const float *)in[2].data + (ab * A + a) * 4, sizeof an);
    if (p->box_coding == 0) {
      ri__nms_order_corners(v);
      ri__nms_order_corners(an);
      for (int i = 0; i < 4; i++)
        v[i] += an[i];
    } else {
      float c0 = v[0] * an[2] + an[0], c1 = v[1] * an[3] + an[1];
      float s0 = an[2] * expf(v[2]), s1 = an[3] * expf(v[3]);
      v[0] = c0, v[1] = c1, v[2] = s0, v[3] = s1;
    }
  }
  if (p->box_coding == 1) {
    float h0 = v[2] * 0.5f, h1 = v[3] * 0.5f;
    o[0] = v[0] - h0, o[1] = v[1] - h1, o[2] = v[0] + h0, o[3] = v[1] + h1;
  } else {
    memcpy(o, v, sizeof v);
  }
}

ri_status ri__ref_EfficientNMS_TRT(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const ri__efficient_nms_params *p = n->params;
  if (!p)
    return ri__err_set(x->err, RI_ERR_INTERNAL, "EfficientNMS_TRT node '%s': check() has not run", n->name);
  const int64_t B = in[1].shape.dims[0], A = in[1].shape.dims[1], C = in[1].shape.dims[2];
  const int64_t K = p->max_output_boxes;
  int32_t *num = out[0].data;
  float *obox = out[1].data, *oscore = out[2].data;
  int32_t *ocls = out[3].data;
  memset(num, 0, (size_t)B * sizeof *num);
  memset(obox, 0, (size_t)(B * K * 4) * sizeof *obox);
  memset(oscore, 0, (size_t)(B * K) * sizeof *oscore);
  memset(ocls, 0, (size_t)(B * K) * sizeof *ocls);
  if (A == 0 || C == 0) return RI_OK;
  const int has_anchors = n->n_inputs > 2 && in[2].dtype != RI_DTYPE_UNDEFINED && in[2].data;
  cand *cands = ri__malloc((size_t)(A * C) * sizeof *cands);
  float *kept = ri__malloc((size_t)K * 4 * sizeof *kept); /* reordered corners, for IoU */
  int32_t *kept_cls = ri__malloc((size_t)K * sizeof *kept_cls);
  if (!cands || !kept || !kept_cls) {
    ri__free(cands);
    ri__free(kept);
    ri__free(kept_cls);
    return RI__OOM(x->err);
  }
  for (int64_t b = 0; b < B; b++) {
    const float *s = (const float *)in[1].data + b * A * C;
    int64_t nc = 0;
    for (int64_t a = 0; a < A; a++)
      for (int64_t c = 0; c < C; c++) {
        if (c == p->background_class) continue;
        float raw = s[a * C + c];
        float act = p->score_activation ? sigmoid(raw) : raw;
        if (act >= p->score_threshold) cands[nc++] = (cand){raw, (int32_t)a, (int32_t)c};
      }
    qsort(cands, (size_t)nc, sizeof *cands, cand_cmp);
    if (nc > RI__EFFICIENT_NMS_MAX_CANDIDATES) nc = RI__EFFICIENT_NMS_MAX_CANDIDATES;
    int64_t nk = 0;
    for (int64_t j = 0; j < nc && nk < K; j++) {
      float box[4], ord[4];
      enms_box(p, in, has_anchors, b, cands[j].anchor, cands[j].cls, box);
      memcpy(ord, box, sizeof box);
      ri__nms_order_corners(ord);
      int keep = 1;
      for (int64_t q = 0; q < nk && keep; q++)
        if ((p->class_agnostic || kept_cls[q] == cands[j].cls) &&
            ri__nms_iou(ord, kept + 4 * q) >= p->iou_threshold)
          keep = 0;
      if (!keep) continue;
      memcpy(kept + 4 * nk, ord, sizeof ord);
      kept_cls[nk] = cands[j].cls;
      memcpy(obox + (b * K + nk) * 4, box, sizeof box);
      oscore[b * K + nk] = p->score_activation ? sigmoid(cands[j].score) : cands[j].score;
      ocls[b * K + nk] = cands[j].cls;
      nk++;
    }
    num[b] = (int32_t)nk;
  }
  ri__free(cands);
  ri__free(kept);
  ri__free(kept_cls);
  return RI_OK;
}
