/* Float Conv in onnxruntime's summation order, for the float groups of Q/DQ models (Conv nodes the
 * qdq_to_qlinear pass marks with RI__CONV_TACTIC_QDQ_ORDER).
 *
 * In a Q/DQ model a float Conv's result is quantised right after, and a result within float rounding of a
 * quantisation tie rounds to either neighbour depending on the summation order; the network's
 * requantisations then spread the difference. onnxruntime's CPU Conv (MLAS: im2col, SGEMM, bias last) sums
 * every output as follows, and this kernel does the same (verified element for element against
 * onnxruntime 1.32 on the ST detector's layers: docs/decisions.md, "Integer Q/DQ"):
 *   - the patch index k runs over (input channel of the group, kernel row, kernel column);
 *   - k is cut into blocks of `stride_k` (128, doubled while the output has few pixels: see stride_k());
 *     each block is a chain of fused multiply-adds starting from 0, and the blocks are added in order;
 *   - the bias is added after the sum, then the fused activation (Clip) is applied.
 * fmaf() rounds once like the hardware instruction; the avx2+fma copy of the loop runs where the CPU has
 * FMA, the portable copy elsewhere (same results, slower). */
#include <math.h>
#include <string.h>

#include "backend/cpu/kernel.h"
#include "backend/cpu/ref/conv_qdq_order.h"
#include "core/alloc.h"
#include "graph/ops/conv_params.h"

#define PIX_CHUNK 256

/* The K block length MLAS's SGEMM uses for a product with n output columns and depth k. */
static int64_t stride_k(int64_t n, int64_t k) {
  int64_t sn = 128, sk = 128;
  if (n >= k) {
    while (sk / 2 >= k) {
      sn *= 2;
      sk /= 2;
    }
  } else {
    while (sn > 16 && sn / 2 >= n) {
      sk *= 2;
      sn /= 2;
    }
  }
  return sk;
}

typedef struct {
  const float *x, *w, *bias;
  float *y;
  int64_t c, h, wd, m, cg, mg, kh, kw, oh, ow, k, sk;
  int64_t sh, sw, dh, dw, pt, pl;
  int64_t image, group;
  const float *col; /* [K, OH * OW] patches of the current (image, group) */
  float *colbuf;
  ri__act act;
  float act_a, act_b;
} qo_job;

/* One row (ic, ki, kj) of the patch matrix per index; padding reads as 0. */
static void im2col_rows(void *arg, int64_t begin, int64_t end) {
  const qo_job *j = arg;
  const int64_t ksz = j->kh * j->kw, p = j->oh * j->ow;
  const float *xg = j->x + (j->image * j->c + j->group * j->cg) * j->h * j->wd;
  for (int64_t r = begin; r < end; r++) {
    const int64_t ic = r / ksz, ki = (r % ksz) / j->kw, kj = r % j->kw;
    const float *xc = xg + ic * j->h * j->wd;
    float *dst = j->colbuf + r * p;
    for (int64_t oy = 0; oy < j->oh; oy++) {
      const int64_t iy = oy * j->sh + ki * j->dh - j->pt;
      for (int64_t ox = 0; ox < j->ow; ox++) {
        const int64_t ix = ox * j->sw + kj * j->dw - j->pl;
        dst[oy * j->ow + ox] = iy >= 0 && iy < j->h && ix >= 0 && ix < j->wd ? xc[iy * j->wd + ix] : 0.f;
      }
    }
  }
}

/* acc[i] = fma(w[k], col[k][i], acc[i]) for k in [k0, k1), i in [0, n). */
#define QO_CHAIN_BODY                                                                                        \
  for (int64_t kk = k0; kk < k1; kk++) {                                                                     \
    const float wv = w[kk];                                                                                  \
    const float *src = col + kk * ld;                                                                        \
    for (int64_t i = 0; i < n; i++)                                                                          \
      acc[i] = fmaf(wv, src[i], acc[i]);                                                                     \
  }

__attribute__((target("avx2,fma"))) static void chain_fma(const float *w, const float *col, int64_t ld,
                                                          int64_t k0, int64_t k1, int64_t n, float *acc) {
  QO_CHAIN_BODY
}

static void chain_portable(const float *w, const float *col, int64_t ld, int64_t k0, int64_t k1, int64_t n,
                           float *acc) {
  QO_CHAIN_BODY
}

/* One (output channel of the group, chunk of PIX_CHUNK pixels) per index. */
static void gemm_tasks(void *arg, int64_t begin, int64_t end) {
  const qo_job *j = arg;
  const int64_t p = j->oh * j->ow, chunks = (p + PIX_CHUNK - 1) / PIX_CHUNK;
  const int fma_hw = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  float acc[PIX_CHUNK], tot[PIX_CHUNK];
  for (int64_t t = begin; t < end; t++) {
    const int64_t oc = t / chunks, p0 = (t % chunks) * PIX_CHUNK;
    const int64_t n = p - p0 < PIX_CHUNK ? p - p0 : PIX_CHUNK;
    const int64_t m = j->group * j->mg + oc;
    const float *w = j->w + m * j->k;
    for (int64_t k0 = 0; k0 < j->k; k0 += j->sk) {
      const int64_t k1 = k0 + j->sk < j->k ? k0 + j->sk : j->k;
      for (int64_t i = 0; i < n; i++)
        acc[i] = 0.f;
      if (fma_hw)
        chain_fma(w, j->col + p0, p, k0, k1, n, acc);
      else
        chain_portable(w, j->col + p0, p, k0, k1, n, acc);
      for (int64_t i = 0; i < n; i++)
        tot[i] = k0 == 0 ? acc[i] : tot[i] + acc[i];
    }
    const float b = j->bias ? j->bias[m] : 0.f;
    float *y = j->y + (j->image * j->m + m) * p + p0;
    for (int64_t i = 0; i < n; i++)
      y[i] = ri__act_apply(j->act, j->act_a, j->act_b, tot[i] + b);
  }
}

ri_status ri__ref_conv_qdq_order(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const ri__conv_params *p = n->params;
  qo_job j;
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
  j.k = j.cg * j.kh * j.kw;
  int64_t pads[4];
  ri__conv_resolve_pads(p, j.h, j.wd, pads);
  ri__conv_out_size(p, j.h, j.wd, &j.oh, &j.ow);
  j.sh = p->win.stride[0];
  j.sw = p->win.stride[1];
  j.dh = p->win.dilation[0];
  j.dw = p->win.dilation[1];
  j.pt = pads[0];
  j.pl = pads[1];
  j.act = n->act;
  j.act_a = n->act_a;
  j.act_b = n->act_b;
  const int64_t pl = j.oh * j.ow;
  j.sk = stride_k(pl, j.k);
  const int direct = j.kh == 1 && j.kw == 1 && j.sh == 1 && j.sw == 1 && pads[0] == 0 && pads[1] == 0 &&
                     pads[2] == 0 && pads[3] == 0;
  if (!direct) {
    size_t bytes;
    if (!ri__mul_size((size_t)j.k, (size_t)pl, &bytes) || !ri__mul_size(bytes, sizeof(float), &bytes))
      return ri__err_set(x->err, RI_ERR_LIMIT, "Conv node '%s': patch matrix of %lld x %lld is too large",
                         n->name, (long long)j.k, (long long)pl);
    j.colbuf = ri__malloc(bytes);
    if (!j.colbuf) return RI__OOM(x->err);
  }
  const int64_t chunks = (pl + PIX_CHUNK - 1) / PIX_CHUNK;
  for (j.image = 0; j.image < batch; j.image++) {
    for (j.group = 0; j.group < p->group; j.group++) {
      if (direct) {
        j.col = j.x + (j.image * j.c + j.group * j.cg) * pl;
      } else {
        ri__pool_for(x->pool, j.k, 4, im2col_rows, &j);
        j.col = j.colbuf;
      }
      ri__pool_for(x->pool, j.mg * chunks, 1, gemm_tasks, &j);
    }
  }
  ri__free(j.colbuf);
  return RI_OK;
}
