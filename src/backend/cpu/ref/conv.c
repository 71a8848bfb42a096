/* Reference Conv, float32 NCHW (1-D as H = 1).
 *
 * Two paths, same arithmetic contract (float accumulation, bias first, fused activation last):
 *  - groups with at least DIRECT_MAX_MG output channels: per (image, group) the input patches are laid out
 *    as a [Cg * kH * kW, OH * OW] matrix (skipped for 1x1 stride-1 unpadded kernels, where the input
 *    already has that layout) and multiplied by the [Mg, Cg * kH * kW] weights with ri__ref_sgemm, whose
 *    tiles run in parallel over output channels and positions;
 *  - depthwise-like groups (fewer output channels per group): a direct loop, one task per (image, output
 *    channel) plane, in parallel. */
#include <string.h>

#include "backend/cpu/kernel.h"
#include "backend/cpu/ref/conv_qdq_order.h"
#include "backend/cpu/ref/gemm_core.h"
#include "core/alloc.h"
#include "graph/ops/conv_params.h"

#define DIRECT_MAX_MG 4

/* Output indices o in [*lo, *hi) whose input index o * stride + offset lies in [0, in_len). */
static void valid_range(int64_t out_len, int64_t in_len, int64_t stride, int64_t offset, int64_t *lo,
                        int64_t *hi) {
  int64_t l = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t last = in_len - 1 - offset; /* o * stride <= last */
  int64_t h = last < 0 ? 0 : last / stride + 1;
  if (h > out_len) h = out_len;
  if (l > h) l = h;
  *lo = l;
  *hi = h;
}

typedef struct {
  const float *x, *w, *bias;
  float *y;
  int64_t c, h, wd, m, cg, mg, kh, kw, oh, ow;
  int64_t sh, sw, dh, dw, pt, pl;
  const float *xn; /* im2col: the current image's group input */
  float *col;
} conv_job;

/* One row (ic, ki, kj) of the patch matrix per index. */
static void im2col_rows(void *arg, int64_t begin, int64_t end) {
  const conv_job *j = arg;
  const int64_t ksz = j->kh * j->kw, p = j->oh * j->ow;
  for (int64_t r = begin; r < end; r++) {
    const int64_t ic = r / ksz, ki = (r % ksz) / j->kw, kj = r % j->kw;
    const float *xc = j->xn + ic * j->h * j->wd;
    float *dst = j->col + r * p;
    int64_t olo, ohi, wlo, whi;
    valid_range(j->oh, j->h, j->sh, ki * j->dh - j->pt, &olo, &ohi);
    valid_range(j->ow, j->wd, j->sw, kj * j->dw - j->pl, &wlo, &whi);
    memset(dst, 0, (size_t)(olo * j->ow) * sizeof(float));
    for (int64_t oy = olo; oy < ohi; oy++) {
      const float *src = xc + (oy * j->sh + ki * j->dh - j->pt) * j->wd + kj * j->dw - j->pl;
      float *d = dst + oy * j->ow;
      for (int64_t ox = 0; ox < wlo; ox++)
        d[ox] = 0.f;
      if (j->sw == 1)
        memcpy(d + wlo, src + wlo, (size_t)(whi - wlo) * sizeof(float));
      else
        for (int64_t ox = wlo; ox < whi; ox++)
          d[ox] = src[ox * j->sw];
      for (int64_t ox = whi; ox < j->ow; ox++)
        d[ox] = 0.f;
    }
    memset(dst + ohi * j->ow, 0, (size_t)((j->oh - ohi) * j->ow) * sizeof(float));
  }
}

/* One output plane (image n, output channel oc) per index. */
static void direct_planes(void *arg, int64_t begin, int64_t end) {
  const conv_job *j = arg;
  const int64_t p = j->oh * j->ow;
  for (int64_t t = begin; t < end; t++) {
    const int64_t n = t / j->m, oc = t % j->m, g = oc / j->mg;
    float *y = j->y + t * p;
    const float b0 = j->bias ? j->bias[oc] : 0.f;
    for (int64_t i = 0; i < p; i++)
      y[i] = b0;
    for (int64_t icg = 0; icg < j->cg; icg++) {
      const float *xc = j->x + (n * j->c + g * j->cg + icg) * j->h * j->wd;
      const float *wk = j->w + (oc * j->cg + icg) * j->kh * j->kw;
      for (int64_t ki = 0; ki < j->kh; ki++) {
        int64_t olo, ohi;
        valid_range(j->oh, j->h, j->sh, ki * j->dh - j->pt, &olo, &ohi);
        for (int64_t kj = 0; kj < j->kw; kj++) {
          const float wv = wk[ki * j->kw + kj];
          int64_t wlo, whi;
          valid_range(j->ow, j->wd, j->sw, kj * j->dw - j->pl, &wlo, &whi);
          for (int64_t oy = olo; oy < ohi; oy++) {
            const float *src = xc + (oy * j->sh + ki * j->dh - j->pt) * j->wd + kj * j->dw - j->pl;
            float *d = y + oy * j->ow;
            if (j->sw == 1)
              for (int64_t ox = wlo; ox < whi; ox++)
                d[ox] += wv * src[ox];
            else
              for (int64_t ox = wlo; ox < whi; ox++)
                d[ox] += wv * src[ox * j->sw];
          }
        }
      }
    }
  }
}

typedef struct {
  float *y;
  int64_t plane;
  ri__act act;
  float a, b;
} act_job;

static void act_range(void *arg, int64_t begin, int64_t end) {
  const act_job *j = arg;
  for (int64_t i = begin * j->plane; i < end * j->plane; i++)
    j->y[i] = ri__act_apply(j->act, j->a, j->b, j->y[i]);
}

ri_status ri__ref_Conv(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const ri__conv_params *p = n->params;
  if (!p) return ri__err_set(x->err, RI_ERR_INTERNAL, "Conv node '%s': check() has not run", n->name);
  if (n->tactic == RI__CONV_TACTIC_QDQ_ORDER) return ri__ref_conv_qdq_order(n, in, out, x);
  conv_job j;
  memset(&j, 0, sizeof j);
  j.x = in[0].data;
  j.w = in[1].data;
  j.bias = p->has_bias ? in[2].data : NULL;
  j.y = out[0].data;
  const int64_t batch = in[0].shape.dims[0];
  j.c = in[0].shape.dims[1];
  j.m = in[1].shape.dims[0];
  j.cg = in[1].shape.dims[1];
  j.mg = j.m / p->group;
  ri__window_hw(&p->win, &in[0].shape, &j.h, &j.wd);
  j.kh = p->win.kernel[0];
  j.kw = p->win.kernel[1];
  int64_t pads[4];
  ri__conv_resolve_pads(p, j.h, j.wd, pads);
  ri__conv_out_size(p, j.h, j.wd, &j.oh, &j.ow);
  j.sh = p->win.stride[0];
  j.sw = p->win.stride[1];
  j.dh = p->win.dilation[0];
  j.dw = p->win.dilation[1];
  j.pt = pads[0];
  j.pl = pads[1];
  const int64_t pl = j.oh * j.ow, ksz = j.cg * j.kh * j.kw;

  if (j.mg < DIRECT_MAX_MG) {
    ri__pool_for(x->pool, batch * j.m, 1, direct_planes, &j);
  } else {
    const int pointwise = j.kh == 1 && j.kw == 1 && j.sh == 1 && j.sw == 1 && pads[0] == 0 && pads[1] == 0 &&
                          pads[2] == 0 && pads[3] == 0;
    float *col = NULL, *owned = NULL;
    if (!pointwise) {
      size_t bytes;
      if (!ri__mul_size((size_t)ksz, (size_t)pl, &bytes) || !ri__mul_size(bytes, sizeof(float), &bytes))
        return ri__err_set(x->err, RI_ERR_LIMIT, "Conv node '%s': patch matrix of %lld x %lld is too large",
                           n->name, (long long)ksz, (long long)pl);
      if (x->scratch && x->scratch_size >= bytes) {
        col = x->scratch;
      } else {
        col = owned = ri__malloc(bytes);
        if (!col) return RI__OOM(x->err);
      }
    }
    j.col = col;
    for (int64_t b = 0; b < batch; b++) {
      for (int64_t g = 0; g < p->group; g++) {
        const float *xg = j.x + (b * j.c + g * j.cg) * j.h * j.wd;
        float *yg = j.y + (b * j.m + g * j.mg) * pl;
        for (int64_t oc = 0; oc < j.mg; oc++) {
          const float b0 = j.bias ? j.bias[g * j.mg + oc] : 0.f;
          for (int64_t i = 0; i < pl; i++)
            yg[oc * pl + i] = b0;
        }
        const float *patches = xg;
        if (!pointwise) {
          j.xn = xg;
          ri__pool_for(x->pool, ksz, 4, im2col_rows, &j);
          patches = col;
        }
        ri__ref_sgemm(x->pool, j.mg, pl, ksz, 1.f, j.w + g * j.mg * ksz, ksz, 1, patches, pl, 1, yg, pl);
      }
    }
    ri__free(owned);
  }
  if (n->act != RI__ACT_NONE) {
    act_job aj = {j.y, pl, n->act, n->act_a, n->act_b};
    ri__pool_for(x->pool, batch * j.m, 1, act_range, &aj);
  }
  return RI_OK;
}
