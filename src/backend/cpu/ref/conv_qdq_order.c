/* Float Conv in onnxruntime's summation order, for the float groups of Q/DQ models (Conv nodes the
 * qdq_to_qlinear pass marks with RI__CONV_TACTIC_QDQ_ORDER).
 *
 * In a Q/DQ model a float Conv's result is quantised right after, and a result within float rounding of a
 * quantisation tie rounds to either neighbour depending on the summation order; the network's
 * requantisations then spread the difference. onnxruntime's CPU Conv (MLAS: im2col, SGEMM, bias last) sums
 * every output as follows, and this kernel does the same (verified element for element against
 * onnxruntime 1.32 on the ST detector's layers: docs/decisions.md, "Integer Q/DQ"):
 *   - the patch index k runs over (input channel of the group, kernel row, kernel column);
 *   - k is cut into blocks of ri__conv_qdq_block_k() (128, doubled while the output has few pixels);
 *     each block is a chain of fused multiply-adds starting from 0, and the blocks are added in order;
 *   - the bias is added after the sum, then the fused activation (Clip) is applied.
 * fmaf() rounds once like the hardware instruction. Work is cut into tiles of 6 (or 4) output channels x 16
 * pixels; on x86 CPUs with AVX2 and FMA a tile runs with vector FMAs, elsewhere (and for edge tiles) with
 * fmaf() loops: same chains, same results. */
#include <math.h>
#include <string.h>

#include "backend/cpu/kernel.h"
#include "backend/cpu/ref/conv_geom.h"
#include "backend/cpu/ref/conv_qdq_order.h"
#include "core/alloc.h"
#include "graph/ops/conv_params.h"

#define PIX_CHUNK 256

int64_t ri__conv_qdq_block_k(int64_t n, int64_t k) {
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

typedef struct qo_job qo_job;
struct qo_job {
  const float *x, *w, *bias;
  float *y;
  ri__conv_geom geo;
  int64_t sk; /* K block length */
  int64_t tm; /* output channels per tile: 6 where 6 divides the group's, else 4 */
  int64_t image, group;
  const float *col; /* [K, OH * OW] patches of the current (image, group) */
  float *colbuf;
  ri__act act;
  float act_a, act_b;
  /* direct path: the taps of a row segment, with AVX2 + FMA where the CPU has them */
  void (*direct_seg)(const qo_job *j, const ri__conv_seg *s, float *acc);
};

/* One row (ic, ki, kj) of the patch matrix per index; padding reads as 0. */
static void im2col_rows(void *arg, int64_t begin, int64_t end) {
  const qo_job *j = arg;
  const int64_t ksz = j->geo.kh * j->geo.kw, p = j->geo.oh * j->geo.ow;
  const float *xg = j->x + (j->image * j->geo.c + j->group * j->geo.cg) * j->geo.h * j->geo.wd;
  for (int64_t r = begin; r < end; r++) {
    const int64_t ic = r / ksz, ki = (r % ksz) / j->geo.kw, kj = r % j->geo.kw;
    const float *xc = xg + ic * j->geo.h * j->geo.wd;
    float *dst = j->colbuf + r * p;
    for (int64_t oy = 0; oy < j->geo.oh; oy++) {
      const int64_t iy = oy * j->geo.sh + ki * j->geo.dh - j->geo.pt;
      for (int64_t ox = 0; ox < j->geo.ow; ox++) {
        const int64_t ix = ox * j->geo.sw + kj * j->geo.dw - j->geo.pl;
        dst[oy * j->geo.ow + ox] =
            iy >= 0 && iy < j->geo.h && ix >= 0 && ix < j->geo.wd ? xc[iy * j->geo.wd + ix] : 0.f;
      }
    }
  }
}

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define QO_X86 1
#include <immintrin.h>
#else
#define QO_X86 0
#endif

#define TILE_M                                                                                               \
  6               /* the most output channels of a register tile: 6, or 4 where 6 does not divide the group  \
                   */
#define TILE_N 16 /* output pixels per register tile */

/* One K block [k0, k1) of a TILE_M x TILE_N tile: acc[q][i] = chain of fma(w[q][k], col[k][i], .) from 0. */
static void tile_portable(const float *w, int64_t wld, const float *col, int64_t ld, int64_t k0, int64_t k1,
                          int64_t nm, int64_t nn, float acc[TILE_M][TILE_N]) {
  for (int64_t q = 0; q < nm; q++) {
    for (int64_t i = 0; i < nn; i++) {
      float a = 0.f;
      for (int64_t kk = k0; kk < k1; kk++)
        a = fmaf(w[q * wld + kk], col[kk * ld + i], a);
      acc[q][i] = a;
    }
  }
}

#if QO_X86
/* The full tile with AVX2 + FMA: the same chains, eight pixels per instruction. */
__attribute__((target("avx2,fma"))) static void tile_avx2(const float *w, int64_t wld, const float *col,
                                                          int64_t ld, int64_t k0, int64_t k1,
                                                          float acc[TILE_M][TILE_N]) {
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00,
         a31 = a00;
  const float *w0 = w, *w1 = w + wld, *w2 = w + 2 * wld, *w3 = w + 3 * wld;
  for (int64_t kk = k0; kk < k1; kk++) {
    const __m256 s0 = _mm256_loadu_ps(col + kk * ld), s1 = _mm256_loadu_ps(col + kk * ld + 8);
    __m256 b = _mm256_broadcast_ss(w0 + kk);
    a00 = _mm256_fmadd_ps(b, s0, a00);
    a01 = _mm256_fmadd_ps(b, s1, a01);
    b = _mm256_broadcast_ss(w1 + kk);
    a10 = _mm256_fmadd_ps(b, s0, a10);
    a11 = _mm256_fmadd_ps(b, s1, a11);
    b = _mm256_broadcast_ss(w2 + kk);
    a20 = _mm256_fmadd_ps(b, s0, a20);
    a21 = _mm256_fmadd_ps(b, s1, a21);
    b = _mm256_broadcast_ss(w3 + kk);
    a30 = _mm256_fmadd_ps(b, s0, a30);
    a31 = _mm256_fmadd_ps(b, s1, a31);
  }
  _mm256_storeu_ps(acc[0], a00);
  _mm256_storeu_ps(acc[0] + 8, a01);
  _mm256_storeu_ps(acc[1], a10);
  _mm256_storeu_ps(acc[1] + 8, a11);
  _mm256_storeu_ps(acc[2], a20);
  _mm256_storeu_ps(acc[2] + 8, a21);
  _mm256_storeu_ps(acc[3], a30);
  _mm256_storeu_ps(acc[3] + 8, a31);
}

/* A tile of 6 output channels: 12 accumulators, fewer loads of the patches per multiply-add. Written out
 * like tile_avx2 on purpose: one function over an accumulator array indexed by a constant row count made
 * GCC 12 store all 12 accumulators to the stack on every iteration of the K loop. */
__attribute__((target("avx2,fma"))) static void tile6_avx2(const float *w, int64_t wld, const float *col,
                                                           int64_t ld, int64_t k0, int64_t k1,
                                                           float acc[TILE_M][TILE_N]) {
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00,
         a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
  const float *w0 = w, *w1 = w + wld, *w2 = w + 2 * wld, *w3 = w + 3 * wld, *w4 = w + 4 * wld,
              *w5 = w + 5 * wld;
  for (int64_t kk = k0; kk < k1; kk++) {
    const __m256 s0 = _mm256_loadu_ps(col + kk * ld), s1 = _mm256_loadu_ps(col + kk * ld + 8);
    __m256 b = _mm256_broadcast_ss(w0 + kk);
    a00 = _mm256_fmadd_ps(b, s0, a00);
    a01 = _mm256_fmadd_ps(b, s1, a01);
    b = _mm256_broadcast_ss(w1 + kk);
    a10 = _mm256_fmadd_ps(b, s0, a10);
    a11 = _mm256_fmadd_ps(b, s1, a11);
    b = _mm256_broadcast_ss(w2 + kk);
    a20 = _mm256_fmadd_ps(b, s0, a20);
    a21 = _mm256_fmadd_ps(b, s1, a21);
    b = _mm256_broadcast_ss(w3 + kk);
    a30 = _mm256_fmadd_ps(b, s0, a30);
    a31 = _mm256_fmadd_ps(b, s1, a31);
    b = _mm256_broadcast_ss(w4 + kk);
    a40 = _mm256_fmadd_ps(b, s0, a40);
    a41 = _mm256_fmadd_ps(b, s1, a41);
    b = _mm256_broadcast_ss(w5 + kk);
    a50 = _mm256_fmadd_ps(b, s0, a50);
    a51 = _mm256_fmadd_ps(b, s1, a51);
  }
  _mm256_storeu_ps(acc[0], a00);
  _mm256_storeu_ps(acc[0] + 8, a01);
  _mm256_storeu_ps(acc[1], a10);
  _mm256_storeu_ps(acc[1] + 8, a11);
  _mm256_storeu_ps(acc[2], a20);
  _mm256_storeu_ps(acc[2] + 8, a21);
  _mm256_storeu_ps(acc[3], a30);
  _mm256_storeu_ps(acc[3] + 8, a31);
  _mm256_storeu_ps(acc[4], a40);
  _mm256_storeu_ps(acc[4] + 8, a41);
  _mm256_storeu_ps(acc[5], a50);
  _mm256_storeu_ps(acc[5] + 8, a51);
}
#endif

/* Adds the taps of row segment s of its plane to acc, for groups of one output channel whose K fits one
 * block: the chain runs over the taps in k order; a tap in the padding adds fma(w, 0, acc) = acc in
 * onnxruntime's im2col and is skipped here. */
#define QO_DIRECT_BODY                                                                                       \
  const ri__conv_geom *g = &j->geo;                                                                          \
  for (int64_t icg = 0; icg < g->cg; icg++) {                                                                \
    const float *xc = j->x + (s->n * g->c + s->g * g->cg + icg) * g->h * g->wd;                              \
    const float *wk = j->w + (s->oc * g->cg + icg) * g->kh * g->kw;                                          \
    for (int64_t ki = 0; ki < g->kh; ki++) {                                                                 \
      const int64_t iy = s->oy * g->sh + ki * g->dh - g->pt;                                                 \
      if (iy < 0 || iy >= g->h) continue;                                                                    \
      for (int64_t kj = 0; kj < g->kw; kj++) {                                                               \
        const float wv = wk[ki * g->kw + kj];                                                                \
        const int64_t off = kj * g->dw - g->pl;                                                              \
        int64_t lo, hi;                                                                                      \
        ri__conv_seg_cols(g, s, off, &lo, &hi);                                                              \
        const float *src = xc + iy * g->wd + off;                                                            \
        for (int64_t ox = lo; ox < hi; ox++)                                                                 \
          acc[ox - s->c0] = fmaf(wv, src[ox * g->sw], acc[ox - s->c0]);                                      \
      }                                                                                                      \
    }                                                                                                        \
  }

#if QO_X86
__attribute__((target("avx2,fma"))) static void direct_seg_avx2(const qo_job *j, const ri__conv_seg *s,
                                                                float *acc) {
  QO_DIRECT_BODY
}
#endif

static void direct_seg_portable(const qo_job *j, const ri__conv_seg *s, float *acc) { QO_DIRECT_BODY }

/* One row segment: its chains from 0, then bias and activation. */
static void direct_row(const void *arg, const ri__conv_seg *s) {
  const qo_job *j = arg;
  float acc[RI__CONV_SEG_MAX];
  for (int64_t i = 0; i < s->c1 - s->c0; i++)
    acc[i] = 0.f;
  j->direct_seg(j, s, acc);
  const float b = j->bias ? j->bias[s->oc] : 0.f;
  float *y = j->y + (s->t * j->geo.oh + s->oy) * j->geo.ow;
  for (int64_t ox = s->c0; ox < s->c1; ox++)
    y[ox] = ri__act_apply(j->act, j->act_a, j->act_b, acc[ox - s->c0] + b);
}

/* One output plane (image, output channel) per index. */
static void direct_planes(void *arg, int64_t begin, int64_t end) {
  const qo_job *j = arg;
  ri__conv_for_segments(&j->geo, begin, end, direct_row, j);
}

/* One (block of j->tm output channels of the group, chunk of PIX_CHUNK pixels) per index. */
static void gemm_tasks(void *arg, int64_t begin, int64_t end) {
  const qo_job *j = arg;
  const int64_t p = j->geo.oh * j->geo.ow, chunks = (p + PIX_CHUNK - 1) / PIX_CHUNK;
#if QO_X86
  const int fast = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  const int fast = 0;
#endif
  float acc[TILE_M][TILE_N], tot[TILE_M][TILE_N];
  for (int64_t t = begin; t < end; t++) {
    const int64_t mb = (t / chunks) * j->tm, c0 = (t % chunks) * PIX_CHUNK;
    const int64_t nm = j->geo.mg - mb < j->tm ? j->geo.mg - mb : j->tm;
    const int64_t c1 = c0 + PIX_CHUNK < p ? c0 + PIX_CHUNK : p;
    const int64_t m0 = j->group * j->geo.mg + mb;
    const float *w = j->w + m0 * j->geo.k;
    for (int64_t p0 = c0; p0 < c1; p0 += TILE_N) {
      const int64_t nn = c1 - p0 < TILE_N ? c1 - p0 : TILE_N;
      for (int64_t k0 = 0; k0 < j->geo.k; k0 += j->sk) {
        const int64_t k1 = k0 + j->sk < j->geo.k ? k0 + j->sk : j->geo.k;
#if QO_X86
        if (fast && nm == 6 && nn == TILE_N)
          tile6_avx2(w, j->geo.k, j->col + p0, p, k0, k1, acc);
        else if (fast && nm == 4 && nn == TILE_N)
          tile_avx2(w, j->geo.k, j->col + p0, p, k0, k1, acc);
        else
#endif
          tile_portable(w, j->geo.k, j->col + p0, p, k0, k1, nm, nn, acc);
        for (int64_t q = 0; q < nm; q++)
          for (int64_t i = 0; i < nn; i++)
            tot[q][i] = k0 == 0 ? acc[q][i] : tot[q][i] + acc[q][i];
      }
      for (int64_t q = 0; q < nm; q++) {
        const float b = j->bias ? j->bias[m0 + q] : 0.f;
        float *y = j->y + (j->image * j->geo.m + m0 + q) * p + p0;
        for (int64_t i = 0; i < nn; i++)
          y[i] = ri__act_apply(j->act, j->act_a, j->act_b, tot[q][i] + b);
      }
    }
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
  ri__conv_geom_init(&j.geo, p, &in[0].shape, &in[1].shape);
  const int64_t batch = j.geo.batch;
  j.act = n->act;
  j.act_a = n->act_a;
  j.act_b = n->act_b;
  const int64_t pl = j.geo.oh * j.geo.ow;
  j.sk = ri__conv_qdq_block_k(pl, j.geo.k);
  if (j.geo.mg == 1 && j.geo.k <= j.sk) {
    j.direct_seg = direct_seg_portable;
#if QO_X86
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) j.direct_seg = direct_seg_avx2;
#endif
    ri__pool_for(x->pool, batch * j.geo.m, 1, direct_planes, &j);
    return RI_OK;
  }
  const int pointwise = ri__conv_geom_pointwise(&j.geo);
  if (!pointwise) {
    size_t bytes;
    if (!ri__mul_size((size_t)j.geo.k, (size_t)pl, &bytes) || !ri__mul_size(bytes, sizeof(float), &bytes))
      return ri__err_set(x->err, RI_ERR_LIMIT, "Conv node '%s': patch matrix of %lld x %lld is too large",
                         n->name, (long long)j.geo.k, (long long)pl);
    j.colbuf = ri__malloc(bytes);
    if (!j.colbuf) return RI__OOM(x->err);
  }
  const int64_t chunks = (pl + PIX_CHUNK - 1) / PIX_CHUNK;
  j.tm = j.geo.mg % 6 == 0 ? 6 : 4;
  for (j.image = 0; j.image < batch; j.image++) {
    for (j.group = 0; j.group < p->group; j.group++) {
      if (pointwise) {
        j.col = j.x + (j.image * j.geo.c + j.group * j.geo.cg) * pl;
      } else {
        ri__pool_for(x->pool, j.geo.k, 4, im2col_rows, &j);
        j.col = j.colbuf;
      }
      ri__pool_for(x->pool, (j.geo.mg + j.tm - 1) / j.tm * chunks, 1, gemm_tasks, &j);
    }
  }
  ri__free(j.colbuf);
  return RI_OK;
}
