/* Reference MaxPool (float32, uint8, int8), AveragePool and GlobalAveragePool (float32), NCHW (1-D as
 * H = 1); one task per (image, channel) plane. Window rules in src/graph/ops/pool_params.h. 8-bit values
 * are compared as floats, which represent them exactly. */
#include <float.h>
#include <string.h>

#include "backend/cpu/kernel.h"
#include "graph/op.h"
#include "graph/ops/pool_params.h"

typedef struct {
  const void *x;
  void *y;
  ri_dtype dtype;
  int is_max, count_include_pad;
  int64_t h, w, oh, ow, kh, kw, sh, sw, dh, dw;
  int64_t pads[4];
} pool_job;

/* Taps t in [0, k) with start + t * d inside [lo, hi). */
static int64_t taps_inside(int64_t start, int64_t k, int64_t d, int64_t lo, int64_t hi) {
  int64_t cnt = 0;
  for (int64_t t = 0; t < k; t++) {
    const int64_t i = start + t * d;
    cnt += i >= lo && i < hi;
  }
  return cnt;
}

static float load(const pool_job *j, int64_t i) {
  switch (j->dtype) {
  case RI_DTYPE_UINT8: return (float)((const uint8_t *)j->x)[i];
  case RI_DTYPE_INT8: return (float)((const int8_t *)j->x)[i];
  default: return ((const float *)j->x)[i];
  }
}

static void store(const pool_job *j, int64_t i, float v) {
  switch (j->dtype) {
  case RI_DTYPE_UINT8: ((uint8_t *)j->y)[i] = (uint8_t)v; break;
  case RI_DTYPE_INT8: ((int8_t *)j->y)[i] = (int8_t)v; break;
  default: ((float *)j->y)[i] = v; break;
  }
}

static void pool_planes(void *arg, int64_t begin, int64_t end) {
  const pool_job *j = arg;
  const float lowest = j->dtype == RI_DTYPE_UINT8 ? 0.f : (j->dtype == RI_DTYPE_INT8 ? -128.f : -FLT_MAX);
  for (int64_t t = begin; t < end; t++) {
    const int64_t xbase = t * j->h * j->w, ybase = t * j->oh * j->ow;
    for (int64_t oy = 0; oy < j->oh; oy++) {
      const int64_t hs = oy * j->sh - j->pads[0];
      for (int64_t ox = 0; ox < j->ow; ox++) {
        const int64_t ws = ox * j->sw - j->pads[1];
        float acc = j->is_max ? lowest : 0.f;
        int64_t valid = 0;
        for (int64_t ki = 0; ki < j->kh; ki++) {
          const int64_t iy = hs + ki * j->dh;
          if (iy < 0 || iy >= j->h) continue;
          for (int64_t kj = 0; kj < j->kw; kj++) {
            const int64_t ix = ws + kj * j->dw;
            if (ix < 0 || ix >= j->w) continue;
            const float v = load(j, xbase + iy * j->w + ix);
            if (j->is_max) {
              if (v > acc || v != v) acc = v;
            } else {
              acc += v;
            }
            valid++;
          }
        }
        if (!j->is_max) {
          int64_t div = valid;
          if (j->count_include_pad)
            div = taps_inside(hs, j->kh, j->dh, -j->pads[0], j->h + j->pads[2]) *
                  taps_inside(ws, j->kw, j->dw, -j->pads[1], j->w + j->pads[3]);
          acc = div > 0 ? acc / (float)div : 0.f;
        }
        store(j, ybase + oy * j->ow + ox, acc);
      }
    }
  }
}

static ri_status run_pool(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x, int is_max) {
  const ri__pool_params *p = n->params;
  if (!p)
    return ri__err_set(x->err, RI_ERR_INTERNAL, "%s node '%s': check() has not run", ri__op_name(n->op),
                       n->name);
  pool_job j;
  memset(&j, 0, sizeof j);
  j.x = in[0].data;
  j.y = out[0].data;
  j.dtype = in[0].dtype;
  j.is_max = is_max;
  j.count_include_pad = p->count_include_pad;
  ri__window_hw(&p->win, &in[0].shape, &j.h, &j.w);
  ri__pool_out_size(p, j.h, j.w, &j.oh, &j.ow, j.pads);
  j.kh = p->win.kernel[0];
  j.kw = p->win.kernel[1];
  j.sh = p->win.stride[0];
  j.sw = p->win.stride[1];
  j.dh = p->win.dilation[0];
  j.dw = p->win.dilation[1];
  const int64_t planes = in[0].shape.dims[0] * in[0].shape.dims[1];
  ri__pool_for(x->pool, planes, 1, pool_planes, &j);
  return RI_OK;
}

ri_status ri__ref_MaxPool(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return run_pool(n, in, out, x, 1);
}

ri_status ri__ref_AveragePool(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return run_pool(n, in, out, x, 0);
}

typedef struct {
  const float *x;
  float *y;
  int64_t plane;
} gap_job;

static void gap_planes(void *arg, int64_t begin, int64_t end) {
  const gap_job *j = arg;
  for (int64_t t = begin; t < end; t++) {
    const float *x = j->x + t * j->plane;
    double s = 0.0;
    for (int64_t i = 0; i < j->plane; i++)
      s += x[i];
    j->y[t] = (float)(s / (double)j->plane);
  }
}

ri_status ri__ref_GlobalAveragePool(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  gap_job j = {in[0].data, out[0].data, 1};
  for (int i = 2; i < in[0].shape.rank; i++)
    j.plane *= in[0].shape.dims[i];
  ri__pool_for(x->pool, in[0].shape.dims[0] * in[0].shape.dims[1], 16, gap_planes, &j);
  return RI_OK;
}
