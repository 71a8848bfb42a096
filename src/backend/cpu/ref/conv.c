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
#include "backend/cpu/ref/conv_geom.h"
#include "backend/cpu/ref/conv_qdq_order.h"
#include "backend/cpu/ref/gemm_core.h"
#include "core/alloc.h"
#include "graph/ops/conv_params.h"

#define DIRECT_MAX_MG 4

typedef struct {
  const float *x, *w, *bias;
  float *y;
  ri__conv_geom geo;
  const float *xn; /* im2col: the current image's group input */
  float *col;
} conv_job;

/* One row (ic, ki, kj) of the patch matrix per index. */
static void im2col_rows(void *arg, int64_t begin, int64_t end) {
  const conv_job *j = arg;
  const int64_t ksz = j->geo.kh * j->geo.kw, p = j->geo.oh * j->geo.ow;
  for (int64_t r = begin; r < end; r++) {
    const int64_t ic = r / ksz, ki = (r % ksz) / j->geo.kw, kj = r % j->geo.kw;
    const float *xc = j->xn + ic * j->geo.h * j->geo.wd;
    float *dst = j->col + r * p;
    int64_t olo, ohi, wlo, whi;
    ri__conv_valid_range(j->geo.oh, j->geo.h, j->geo.sh, ki * j->geo.dh - j->geo.pt, &olo, &ohi);
    ri__conv_valid_range(j->geo.ow, j->geo.wd, j->geo.sw, kj * j->geo.dw - j->geo.pl, &wlo, &whi);
    memset(dst, 0, (size_t)(olo * j->geo.ow) * sizeof(float));
    for (int64_t oy = olo; oy < ohi; oy++) {
      const float *src =
          xc + (oy * j->geo.sh + ki * j->geo.dh - j->geo.pt) * j->geo.wd + kj * j->geo.dw - j->geo.pl;
      float *d = dst + oy * j->geo.ow;
      for (int64_t ox = 0; ox < wlo; ox++)
        d[ox] = 0.f;
      if (j->geo.sw == 1)
        memcpy(d + wlo, src + wlo, (size_t)(whi - wlo) * sizeof(float));
      else
        for (int64_t ox = wlo; ox < whi; ox++)
          d[ox] = src[ox * j->geo.sw];
      for (int64_t ox = whi; ox < j->geo.ow; ox++)
        d[ox] = 0.f;
    }
    memset(dst + ohi * j->geo.ow, 0, (size_t)((j->geo.oh - ohi) * j->geo.ow) * sizeof(float));
  }
}

/* One output plane (image n, output channel oc) per index. */
static void direct_planes(void *arg, int64_t begin, int64_t end) {
  const conv_job *j = arg;
  const int64_t p = j->geo.oh * j->geo.ow;
  for (int64_t t = begin; t < end; t++) {
    const int64_t n = t / j->geo.m, oc = t % j->geo.m, g = oc / j->geo.mg;
    float *y = j->y + t * p;
    const float b0 = j->bias ? j->bias[oc] : 0.f;
    for (int64_t i = 0; i < p; i++)
      y[i] = b0;
    for (int64_t icg = 0; icg < j->geo.cg; icg++) {
      const float *xc = j->x + (n * j->geo.c + g * j->geo.cg + icg) * j->geo.h * j->geo.wd;
      const float *wk = j->w + (oc * j->geo.cg + icg) * j->geo.kh * j->geo.kw;
      for (int64_t ki = 0; ki < j->geo.kh; ki++) {
        int64_t olo, ohi;
        ri__conv_valid_range(j->geo.oh, j->geo.h, j->geo.sh, ki * j->geo.dh - j->geo.pt, &olo, &ohi);
        for (int64_t kj = 0; kj < j->geo.kw; kj++) {
          const float wv = wk[ki * j->geo.kw + kj];
          int64_t wlo, whi;
          ri__conv_valid_range(j->geo.ow, j->geo.wd, j->geo.sw, kj * j->geo.dw - j->geo.pl, &wlo, &whi);
          for (int64_t oy = olo; oy < ohi; oy++) {
            const float *src =
                xc + (oy * j->geo.sh + ki * j->geo.dh - j->geo.pt) * j->geo.wd + kj * j->geo.dw - j->geo.pl;
            float *d = y + oy * j->geo.ow;
            if (j->geo.sw == 1)
              for (int64_t ox = wlo; ox < whi; ox++)
                d[ox] += wv * src[ox];
            else
              for (int64_t ox = wlo; ox < whi; ox++)
                d[ox] += wv * src[ox * j->geo.sw];
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
  ri__conv_geom_init(&j.geo, p, &in[0].shape, &in[1].shape);
  const int64_t batch = j.geo.batch;
  const int64_t pl = j.geo.oh * j.geo.ow, ksz = j.geo.k;

  if (j.geo.mg < DIRECT_MAX_MG) {
    ri__pool_for(x->pool, batch * j.geo.m, 1, direct_planes, &j);
  } else {
    const int pointwise = ri__conv_geom_pointwise(&j.geo);
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
        const float *xg = j.x + (b * j.geo.c + g * j.geo.cg) * j.geo.h * j.geo.wd;
        float *yg = j.y + (b * j.geo.m + g * j.geo.mg) * pl;
        for (int64_t oc = 0; oc < j.geo.mg; oc++) {
          const float b0 = j.bias ? j.bias[g * j.geo.mg + oc] : 0.f;
          for (int64_t i = 0; i < pl; i++)
            yg[oc * pl + i] = b0;
        }
        const float *patches = xg;
        if (!pointwise) {
          j.xn = xg;
          ri__pool_for(x->pool, ksz, 4, im2col_rows, &j);
          patches = col;
        }
        ri__ref_sgemm(x->pool, j.geo.mg, pl, ksz, 1.f, j.w + g * j.geo.mg * ksz, ksz, 1, patches, pl, 1, yg,
                      pl);
      }
    }
    ri__free(owned);
  }
  if (n->act != RI__ACT_NONE) {
    act_job aj = {j.y, pl, n->act, n->act_a, n->act_b};
    ri__pool_for(x->pool, batch * j.geo.m, 1, act_range, &aj);
  }
  return RI_OK;
}
