/* Reference Resize: nearest (any 1- or 4-byte element, copied) and separable linear (float32, uint8, int8;
 * blended in float, integer results truncated toward zero as ONNX Runtime does), on any axes. Per-axis source
 * tables are built once; the output is walked row by row (one task per row of the last axis). Rules in
 * src/graph/ops/resize_params.h. */
#include <string.h>

#include "backend/cpu/kernel.h"
#include "core/alloc.h"
#include "graph/ops/resize_params.h"

typedef struct {
  const ri__resize_params *p;
  const void *x;
  void *y;
  ri_dtype dtype;
  int rank;
  int64_t in_dims[RI__MAX_RANK], out_dims[RI__MAX_RANK], in_stride[RI__MAX_RANK];
  /* Per axis a, indexed by output coordinate: first and second source index and the second's weight
   * (nearest mode uses i0 only). */
  int64_t *i0[RI__MAX_RANK], *i1[RI__MAX_RANK];
  float *w[RI__MAX_RANK];
  int blends[RI__MAX_RANK]; /* axis a has a non-zero weight somewhere */
} resize_job;

static float load(const resize_job *j, int64_t i) {
  switch (j->dtype) {
  case RI_DTYPE_UINT8: return (float)((const uint8_t *)j->x)[i];
  case RI_DTYPE_INT8: return (float)((const int8_t *)j->x)[i];
  default: return ((const float *)j->x)[i];
  }
}

static void store(const resize_job *j, int64_t i, float v) {
  switch (j->dtype) {
  case RI_DTYPE_UINT8: ((uint8_t *)j->y)[i] = (uint8_t)(v < 0.f ? 0.f : (v > 255.f ? 255.f : v)); break;
  case RI_DTYPE_INT8: ((int8_t *)j->y)[i] = (int8_t)(v < -128.f ? -128.f : (v > 127.f ? 127.f : v)); break;
  default: ((float *)j->y)[i] = v; break;
  }
}

/* Float bilinear resizing of the last two axes (no other axis blends), in onnxruntime's arithmetic: per
 * output pixel the four weight products dx * dy (0.5 and 0.5 on an axis whose two taps coincide at the
 * border) times the four neighbours, summed left to right. A Q/DQ model quantises the result, and another
 * order rounds some ties the other way. Returns 0 when the row is not such a case. */
static int bilinear_row(const resize_job *j, int64_t row) {
  const int last = j->rank - 1, ya = last - 1;
  if (j->p->mode != RI__RESIZE_LINEAR || j->dtype != RI_DTYPE_FLOAT32 || j->rank < 2) return 0;
  for (int a = 0; a < ya; a++)
    if (j->blends[a]) return 0;
  int64_t t = row, base = 0;
  const int64_t oy = t % j->out_dims[ya];
  t /= j->out_dims[ya];
  for (int a = ya - 1; a >= 0; a--) {
    base += j->i0[a][t % j->out_dims[a]] * j->in_stride[a];
    t /= j->out_dims[a];
  }
  const int64_t y1 = j->i0[ya][oy], y2 = j->i1[ya][oy];
  const float dy1 = y1 == y2 ? 0.5f : j->w[ya][oy], dy2 = y1 == y2 ? 0.5f : 1.f - j->w[ya][oy];
  const float *r1 = (const float *)j->x + base + y1 * j->in_stride[ya];
  const float *r2 = (const float *)j->x + base + y2 * j->in_stride[ya];
  float *y = (float *)j->y + row * j->out_dims[last];
  for (int64_t ox = 0; ox < j->out_dims[last]; ox++) {
    const int64_t x1 = j->i0[last][ox], x2 = j->i1[last][ox];
    const float dx1 = x1 == x2 ? 0.5f : j->w[last][ox], dx2 = x1 == x2 ? 0.5f : 1.f - j->w[last][ox];
    const float t0 = dx2 * dy2 * r1[x1], t1 = dx1 * dy2 * r1[x2];
    const float t2 = dx2 * dy1 * r2[x1], t3 = dx1 * dy1 * r2[x2];
    y[ox] = t0 + t1 + t2 + t3;
  }
  return 1;
}

static void resize_rows(void *arg, int64_t begin, int64_t end) {
  const resize_job *j = arg;
  const int last = j->rank - 1;
  const int64_t ow = j->out_dims[last];
  const int64_t *xi0 = j->i0[last], *xi1 = j->i1[last];
  const float *xw = j->w[last];
  const int linear = j->p->mode == RI__RESIZE_LINEAR;
  int64_t off[1 << (RI__MAX_RANK - 1)];
  float wt[1 << (RI__MAX_RANK - 1)];
  for (int64_t row = begin; row < end; row++) {
    if (bilinear_row(j, row)) continue;
    /* Source offsets and weights of this output row: one entry per combination of neighbours on the
     * blending outer axes. */
    int nc = 1;
    off[0] = 0;
    wt[0] = 1.f;
    int64_t t = row;
    for (int a = last - 1; a >= 0; a--) {
      const int64_t o = t % j->out_dims[a];
      t /= j->out_dims[a];
      const int64_t s0 = j->i0[a][o] * j->in_stride[a];
      if (linear && j->blends[a] && j->w[a][o] != 0.f) {
        const int64_t s1 = j->i1[a][o] * j->in_stride[a];
        const float wa = j->w[a][o];
        for (int c = 0; c < nc; c++) {
          off[nc + c] = off[c] + s1;
          wt[nc + c] = wt[c] * wa;
          off[c] += s0;
          wt[c] *= 1.f - wa;
        }
        nc *= 2;
      } else {
        for (int c = 0; c < nc; c++)
          off[c] += s0;
      }
    }
    const int64_t ybase = row * ow;
    if (!linear) {
      if (j->dtype == RI_DTYPE_FLOAT32) {
        const float *x = (const float *)j->x + off[0];
        float *y = (float *)j->y + ybase;
        for (int64_t ox = 0; ox < ow; ox++)
          y[ox] = x[xi0[ox]];
      } else {
        const uint8_t *x = (const uint8_t *)j->x + off[0];
        uint8_t *y = (uint8_t *)j->y + ybase;
        for (int64_t ox = 0; ox < ow; ox++)
          y[ox] = x[xi0[ox]];
      }
      continue;
    }
    for (int64_t ox = 0; ox < ow; ox++) {
      float v = 0.f;
      for (int c = 0; c < nc; c++) {
        float s = load(j, off[c] + xi0[ox]);
        if (xw[ox] != 0.f) s = s * (1.f - xw[ox]) + load(j, off[c] + xi1[ox]) * xw[ox];
        v += wt[c] * s;
      }
      store(j, ybase + ox, v);
    }
  }
}

ri_status ri__ref_Resize(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const ri__resize_params *p = n->params;
  if (!p) return ri__err_set(x->err, RI_ERR_INTERNAL, "Resize node '%s': check() has not run", n->name);
  ri__resize_plan plan;
  RI__TRY(ri__resize_plan_get(n, p, in, n->n_inputs, &plan, x->err));
  if (!ri__shape_equal(&plan.out, &out[0].shape)) {
    char a[160], b[160];
    return ri__err_set(x->err, RI_ERR_INTERNAL, "Resize '%s': kernel plans output %s but the buffer is %s",
                       n->name, ri__shape_str(&plan.out, a, sizeof a),
                       ri__shape_str(&out[0].shape, b, sizeof b));
  }
  resize_job j;
  memset(&j, 0, sizeof j);
  j.p = p;
  j.x = in[0].data;
  j.y = out[0].data;
  j.dtype = in[0].dtype;
  j.rank = in[0].shape.rank;
  if (ri__shape_numel(&plan.out) == 0) return RI_OK;
  int64_t total = 0, stride = 1;
  for (int a = j.rank - 1; a >= 0; a--) {
    j.in_dims[a] = in[0].shape.dims[a];
    j.out_dims[a] = plan.out.dims[a];
    j.in_stride[a] = stride;
    stride *= j.in_dims[a];
    total += j.out_dims[a];
  }
  const size_t per = 2 * sizeof(int64_t) + sizeof(float);
  char *mem = ri__malloc((size_t)total * per);
  if (!mem) return RI__OOM(x->err);
  /* All index tables first (int64-aligned), then all weights. */
  int64_t *icur = (int64_t *)mem;
  float *wcur = (float *)(mem + (size_t)total * 2 * sizeof(int64_t));
  for (int a = 0; a < j.rank; a++) {
    const int64_t ol = j.out_dims[a];
    j.i0[a] = icur;
    j.i1[a] = icur + ol;
    j.w[a] = wcur;
    icur += 2 * ol;
    wcur += ol;
    const int identity = ol == j.in_dims[a] && plan.scale[a] == 1.f;
    for (int64_t o = 0; o < ol; o++) {
      const float c = ri__resize_source(p, o, plan.scale[a], j.in_dims[a], ol);
      if (identity) {
        j.i0[a][o] = j.i1[a][o] = o;
        j.w[a][o] = 0.f;
      } else if (p->mode == RI__RESIZE_NEAREST) {
        j.i0[a][o] = j.i1[a][o] = ri__resize_nearest_index(p, c, j.in_dims[a]);
        j.w[a][o] = 0.f;
      } else {
        ri__resize_linear_taps(c, j.in_dims[a], &j.i0[a][o], &j.i1[a][o], &j.w[a][o]);
        j.blends[a] |= j.w[a][o] != 0.f;
      }
    }
  }
  const int64_t rows = ri__shape_numel(&plan.out) / j.out_dims[j.rank - 1];
  ri__pool_for(x->pool, rows, 16, resize_rows, &j);
  ri__free(mem);
  return RI_OK;
}
