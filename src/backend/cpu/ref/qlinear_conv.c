/* Reference QLinearConv, NCHW (1-D as H = 1), uint8/int8 activations and weights.
 *
 * Arithmetic, chosen to give onnxruntime's CPU results bit for bit (its QLinearConv kernel and MLAS's
 * requantisation; docs/decisions.md, "Integer Q/DQ"):
 *   acc[m]   = B[m] + sum over the window of (x - x_zero_point) * (w[m] - w_zero_point[m])   exact, int32
 *   scale[m] = (x_scale * w_scale[m]) / y_scale                                     two float32 roundings
 *   y        = clamp(round_half_even((float)acc[m] * scale[m]), qmin - y_zp, qmax - y_zp) + y_zp
 * Padding contributes x_zero_point, that is 0 after the subtraction.
 *
 * Layout of the work: weights and activations are widened to int16 with their zero points subtracted
 * (|value| <= 255). Groups with several output channels gather the patches of the current (image, group)
 * with the patch index k in adjacent pairs per pixel ([K/2][pixels][2], K rounded up to even with a zero
 * row), so that one multiply-add of int16 pairs into int32 lanes (vpmaddwd on AVX2) takes two k at once for
 * eight pixels; tiles of 4 output channels x 16 pixels keep their sums in registers. The portable path
 * (and edge tiles) runs the same sums in plain loops. Groups of one output channel (depthwise) run a
 * direct loop per output plane. Integer sums do not depend on order, so every path gives the same bits. */
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define QC_X86 1
#include <immintrin.h>
#else
#define QC_X86 0
#endif

#include "backend/cpu/kernel.h"
#include "core/alloc.h"
#include "graph/ops/conv_params.h"

/* Adding and subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to the nearest integer, ties to
 * even, in the default rounding mode; the operands are clamped to a few hundred before. */
#define ROUND_MAGIC 12582912.0f

typedef struct {
  const int16_t *x; /* [N, C, H, W], zero point removed */
  const int16_t *w; /* [M, Cg * kH * kW], zero point removed */
  const int32_t *bias;
  const float *scale; /* [M] */
  void *y;
  int y_signed;
  int32_t y_zp;
  float lo, hi; /* clamp bounds before adding the zero point */
  int64_t c, h, wd, m, cg, mg, kh, kw, oh, ow, k;
  int64_t sh, sw, dh, dw, pt, pl;
  int64_t image, group; /* im2col path: the (image, group) being computed */
  int64_t kp;           /* K rounded up to even */
  int16_t *col;         /* im2col path: [KP / 2, OH * OW, 2] */
  const void *xq;       /* the quantized input and its zero point, for the widening pass */
  int x_signed;
  int32_t x_zp;
  /* Layout of the widened input: rows of row_len elements. For the direct path with a column stride
   * sw > 1 each row is split into sw phases of phase_len elements (column ix at (ix % sw) * phase_len +
   * ix / sw), so that every tap reads contiguous memory; otherwise phase_len is 0 and row_len = W. */
  int64_t row_len, phase_len;
} qconv_job;

/* Requantises n consecutive outputs of channel oc, y[idx + i] from acc[i] + add. Written as straight loops
 * without branches (a NaN from a broken scale becomes the low bound) so that compilers vectorise them. */
static void store_run(const qconv_job *j, int64_t idx, int64_t oc, const int32_t *acc, int32_t add,
                      int64_t n) {
  const float sc = j->scale[oc], lo = j->lo, hi = j->hi;
  const int32_t zp = j->y_zp;
  if (j->y_signed) {
    int8_t *y = (int8_t *)j->y + idx;
    for (int64_t i = 0; i < n; i++) {
      float v = (float)(acc[i] + add) * sc;
      v = v >= lo ? v : lo;
      v = v > hi ? hi : v;
      y[i] = (int8_t)((int32_t)((v + ROUND_MAGIC) - ROUND_MAGIC) + zp);
    }
  } else {
    uint8_t *y = (uint8_t *)j->y + idx;
    for (int64_t i = 0; i < n; i++) {
      float v = (float)(acc[i] + add) * sc;
      v = v >= lo ? v : lo;
      v = v > hi ? hi : v;
      y[i] = (uint8_t)((int32_t)((v + ROUND_MAGIC) - ROUND_MAGIC) + zp);
    }
  }
}

/* Output indices o in [*lo, *hi) whose input index o * stride + offset lies in [0, in_len). */
static void valid_range(int64_t out_len, int64_t in_len, int64_t stride, int64_t offset, int64_t *lo,
                        int64_t *hi) {
  int64_t l = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t last = in_len - 1 - offset;
  int64_t h = last < 0 ? 0 : last / stride + 1;
  if (h > out_len) h = out_len;
  if (l > h) l = h;
  *lo = l;
  *hi = h;
}

#define ROW_CHUNK 512

/* Adds the taps of row oy, output columns [c0, c1), of plane (n, oc) to acc. */
#define QC_DIRECT_BODY                                                                                       \
  for (int64_t icg = 0; icg < j->cg; icg++) {                                                                \
    const int16_t *xc = j->x + (n * j->c + g * j->cg + icg) * j->h * j->row_len;                             \
    const int16_t *wk = j->w + oc * j->kp + icg * j->kh * j->kw;                                             \
    for (int64_t ki = 0; ki < j->kh; ki++) {                                                                 \
      const int64_t iy = oy * j->sh + ki * j->dh - j->pt;                                                    \
      if (iy < 0 || iy >= j->h) continue;                                                                    \
      const int16_t *row = xc + iy * j->row_len;                                                             \
      for (int64_t kj = 0; kj < j->kw; kj++) {                                                               \
        const int32_t wv = wk[ki * j->kw + kj];                                                              \
        const int64_t off = kj * j->dw - j->pl;                                                              \
        int64_t wlo, whi;                                                                                    \
        valid_range(j->ow, j->wd, j->sw, off, &wlo, &whi);                                                   \
        if (wlo < c0) wlo = c0;                                                                              \
        if (whi > c1) whi = c1;                                                                              \
        if (j->phase_len) {                                                                                  \
          const int64_t r = ((off % j->sw) + j->sw) % j->sw, base = r * j->phase_len + (off - r) / j->sw;    \
          for (int64_t ox = wlo; ox < whi; ox++)                                                             \
            acc[ox - c0] += wv * row[base + ox];                                                             \
        } else {                                                                                             \
          for (int64_t ox = wlo; ox < whi; ox++)                                                             \
            acc[ox - c0] += wv * row[ox * j->sw + off];                                                      \
        }                                                                                                    \
      }                                                                                                      \
    }                                                                                                        \
  }

#if QC_X86
__attribute__((target("avx2"))) static void direct_seg_avx2(const qconv_job *j, int64_t n, int64_t oc,
                                                            int64_t g, int64_t oy, int64_t c0, int64_t c1,
                                                            int32_t *acc) {
  QC_DIRECT_BODY
}
#endif

static void direct_seg_portable(const qconv_job *j, int64_t n, int64_t oc, int64_t g, int64_t oy, int64_t c0,
                                int64_t c1, int32_t *acc) {
  QC_DIRECT_BODY
}

/* One output plane (image, output channel) per index: the depthwise-like path. Rows are computed in chunks
 * of ROW_CHUNK output pixels with int32 sums on the stack. */
static void direct_planes(void *arg, int64_t begin, int64_t end) {
  const qconv_job *j = arg;
  const int64_t p = j->oh * j->ow;
#if QC_X86
  const int fast = __builtin_cpu_supports("avx2");
#endif
  int32_t acc[ROW_CHUNK];
  for (int64_t t = begin; t < end; t++) {
    const int64_t n = t / j->m, oc = t % j->m, g = oc / j->mg;
    const int32_t b0 = j->bias ? j->bias[oc] : 0;
    for (int64_t oy = 0; oy < j->oh; oy++) {
      for (int64_t c0 = 0; c0 < j->ow; c0 += ROW_CHUNK) {
        const int64_t c1 = c0 + ROW_CHUNK < j->ow ? c0 + ROW_CHUNK : j->ow;
        for (int64_t ox = 0; ox < c1 - c0; ox++)
          acc[ox] = b0;
#if QC_X86
        if (fast)
          direct_seg_avx2(j, n, oc, g, oy, c0, c1, acc);
        else
#endif
          direct_seg_portable(j, n, oc, g, oy, c0, c1, acc);
        const int64_t base = t * p + oy * j->ow;
        store_run(j, base + c0, oc, acc, 0, c1 - c0);
      }
    }
  }
}

/* Widens the input to int16 with its zero point removed, one input row per index. */
static void widen_x(void *arg, int64_t begin, int64_t end) {
  const qconv_job *j = arg;
  int16_t *d = (int16_t *)j->x;
  for (int64_t r = begin; r < end; r++) {
    int16_t *drow = d + r * j->row_len;
    const int64_t i0 = r * j->wd;
    if (!j->phase_len) {
      if (j->x_signed)
        for (int64_t ix = 0; ix < j->wd; ix++)
          drow[ix] = (int16_t)(((const int8_t *)j->xq)[i0 + ix] - j->x_zp);
      else
        for (int64_t ix = 0; ix < j->wd; ix++)
          drow[ix] = (int16_t)(((const uint8_t *)j->xq)[i0 + ix] - j->x_zp);
      continue;
    }
    for (int64_t ph = 0; ph < j->sw; ph++)
      for (int64_t q = 0, ix = ph; ix < j->wd; q++, ix += j->sw)
        drow[ph * j->phase_len + q] =
            (int16_t)((j->x_signed ? ((const int8_t *)j->xq)[i0 + ix] : ((const uint8_t *)j->xq)[i0 + ix]) -
                      j->x_zp);
  }
}

/* Pairs (2q, 2q + 1) of patch rows of the current (image, group), one pair per index. */
static void im2col_pairs(void *arg, int64_t begin, int64_t end) {
  const qconv_job *j = arg;
  const int64_t ksz = j->kh * j->kw, p = j->oh * j->ow;
  const int16_t *xg = j->x + (j->image * j->c + j->group * j->cg) * j->h * j->wd;
  for (int64_t q = begin; q < end; q++) {
    int16_t *dst = j->col + q * p * 2;
    for (int half = 0; half < 2; half++) {
      const int64_t r = 2 * q + half;
      if (r >= j->k) {
        for (int64_t i = 0; i < p; i++)
          dst[2 * i + half] = 0;
        continue;
      }
      const int64_t ic = r / ksz, ki = (r % ksz) / j->kw, kj = r % j->kw;
      const int16_t *xc = xg + ic * j->h * j->wd;
      for (int64_t oy = 0; oy < j->oh; oy++) {
        const int64_t iy = oy * j->sh + ki * j->dh - j->pt;
        int16_t *d = dst + oy * j->ow * 2 + half;
        if (iy < 0 || iy >= j->h) {
          for (int64_t ox = 0; ox < j->ow; ox++)
            d[2 * ox] = 0;
          continue;
        }
        const int16_t *row = xc + iy * j->wd;
        for (int64_t ox = 0; ox < j->ow; ox++) {
          const int64_t ix = ox * j->sw + kj * j->dw - j->pl;
          d[2 * ox] = ix >= 0 && ix < j->wd ? row[ix] : 0;
        }
      }
    }
  }
}

#define TM 4  /* output channels per tile */
#define TN 16 /* pixels per tile */

/* Integer sums of a tile of nm output channels x nn pixels starting at pixel p0 (portable). */
static void tile_portable(const qconv_job *j, const int16_t *w, int64_t p0, int64_t nm, int64_t nn,
                          int32_t acc[TM][TN]) {
  const int64_t p = j->oh * j->ow;
  for (int64_t q = 0; q < nm; q++)
    for (int64_t i = 0; i < nn; i++)
      acc[q][i] = 0;
  for (int64_t kq = 0; kq < j->kp / 2; kq++) {
    const int16_t *c = j->col + (kq * p + p0) * 2;
    for (int64_t q = 0; q < nm; q++) {
      const int32_t w0 = w[q * j->kp + 2 * kq], w1 = w[q * j->kp + 2 * kq + 1];
      for (int64_t i = 0; i < nn; i++)
        acc[q][i] += w0 * c[2 * i] + w1 * c[2 * i + 1];
    }
  }
}

#if QC_X86
/* The full tile with AVX2: products of int16 pairs summed into int32 lanes (exact: |sum| < 2^17). */
__attribute__((target("avx2"))) static void tile_avx2(const qconv_job *j, const int16_t *w, int64_t p0,
                                                      int32_t acc[TM][TN]) {
  const int64_t p = j->oh * j->ow;
  __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00,
          a31 = a00;
  const int16_t *w0 = w, *w1 = w + j->kp, *w2 = w + 2 * j->kp, *w3 = w + 3 * j->kp;
  for (int64_t kq = 0; kq < j->kp / 2; kq++) {
    const int16_t *c = j->col + (kq * p + p0) * 2;
    const __m256i x0 = _mm256_loadu_si256((const __m256i *)c),
                  x1 = _mm256_loadu_si256((const __m256i *)(c + 16));
    int32_t pair;
    memcpy(&pair, w0 + 2 * kq, 4);
    __m256i b = _mm256_set1_epi32(pair);
    a00 = _mm256_add_epi32(a00, _mm256_madd_epi16(x0, b));
    a01 = _mm256_add_epi32(a01, _mm256_madd_epi16(x1, b));
    memcpy(&pair, w1 + 2 * kq, 4);
    b = _mm256_set1_epi32(pair);
    a10 = _mm256_add_epi32(a10, _mm256_madd_epi16(x0, b));
    a11 = _mm256_add_epi32(a11, _mm256_madd_epi16(x1, b));
    memcpy(&pair, w2 + 2 * kq, 4);
    b = _mm256_set1_epi32(pair);
    a20 = _mm256_add_epi32(a20, _mm256_madd_epi16(x0, b));
    a21 = _mm256_add_epi32(a21, _mm256_madd_epi16(x1, b));
    memcpy(&pair, w3 + 2 * kq, 4);
    b = _mm256_set1_epi32(pair);
    a30 = _mm256_add_epi32(a30, _mm256_madd_epi16(x0, b));
    a31 = _mm256_add_epi32(a31, _mm256_madd_epi16(x1, b));
  }
  _mm256_storeu_si256((__m256i *)acc[0], a00);
  _mm256_storeu_si256((__m256i *)(acc[0] + 8), a01);
  _mm256_storeu_si256((__m256i *)acc[1], a10);
  _mm256_storeu_si256((__m256i *)(acc[1] + 8), a11);
  _mm256_storeu_si256((__m256i *)acc[2], a20);
  _mm256_storeu_si256((__m256i *)(acc[2] + 8), a21);
  _mm256_storeu_si256((__m256i *)acc[3], a30);
  _mm256_storeu_si256((__m256i *)(acc[3] + 8), a31);
}
#endif

#define PIX_CHUNK 256

/* One (block of TM output channels of the group, chunk of PIX_CHUNK pixels) per index. */
static void gemm_tiles(void *arg, int64_t begin, int64_t end) {
  const qconv_job *j = arg;
  const int64_t p = j->oh * j->ow, chunks = (p + PIX_CHUNK - 1) / PIX_CHUNK;
#if QC_X86
  const int fast = __builtin_cpu_supports("avx2");
#endif
  int32_t acc[TM][TN];
  for (int64_t t = begin; t < end; t++) {
    const int64_t mb = (t / chunks) * TM, c0 = (t % chunks) * PIX_CHUNK;
    const int64_t nm = j->mg - mb < TM ? j->mg - mb : TM;
    const int64_t c1 = c0 + PIX_CHUNK < p ? c0 + PIX_CHUNK : p;
    const int64_t m0 = j->group * j->mg + mb;
    const int16_t *w = j->w + m0 * j->kp;
    for (int64_t p0 = c0; p0 < c1; p0 += TN) {
      const int64_t nn = c1 - p0 < TN ? c1 - p0 : TN;
#if QC_X86
      if (fast && nm == TM && nn == TN)
        tile_avx2(j, w, p0, acc);
      else
#endif
        tile_portable(j, w, p0, nm, nn, acc);
      for (int64_t q = 0; q < nm; q++) {
        const int32_t b = j->bias ? j->bias[m0 + q] : 0;
        const int64_t base = (j->image * j->m + m0 + q) * p + p0;
        store_run(j, base, m0 + q, acc[q], b, nn);
      }
    }
  }
}

static int32_t elem(const ri__tensor *t, int64_t i) {
  return t->dtype == RI_DTYPE_INT8 ? ((const int8_t *)t->data)[i] : ((const uint8_t *)t->data)[i];
}

ri_status ri__ref_QLinearConv(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const ri__conv_params *p = n->params;
  if (!p) return ri__err_set(x->err, RI_ERR_INTERNAL, "QLinearConv node '%s': check() has not run", n->name);
  qconv_job j;
  memset(&j, 0, sizeof j);
  const int64_t batch = in[0].shape.dims[0];
  j.c = in[0].shape.dims[1];
  j.m = in[3].shape.dims[0];
  j.cg = in[3].shape.dims[1];
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
  j.bias = p->has_bias && n->n_inputs > 8 ? in[8].data : NULL;
  j.y = out[0].data;
  j.y_signed = out[0].dtype == RI_DTYPE_INT8;
  j.y_zp = elem(&in[7], 0);
  j.lo = (float)((j.y_signed ? -128 : 0) - j.y_zp);
  j.hi = (float)((j.y_signed ? 127 : 255) - j.y_zp);

  j.kp = j.k + (j.k & 1);
  const int im2col = j.mg > 1;
  j.phase_len = !im2col && j.sw > 1 ? (j.wd + j.sw - 1) / j.sw : 0;
  j.row_len = j.phase_len ? j.sw * j.phase_len : j.wd;
  const int64_t nx = batch * j.c * j.h * j.row_len, nw = j.m * j.kp, pl = j.oh * j.ow;
  size_t col_elems = 0, total;
  if ((im2col && !ri__mul_size((size_t)pl, (size_t)j.kp, &col_elems)) ||
      !ri__mul_size((size_t)(nx + nw) + col_elems, sizeof(int16_t), &total))
    return ri__err_set(x->err, RI_ERR_LIMIT,
                       "QLinearConv node '%s': patch matrix of %lld x %lld is too large", n->name,
                       (long long)pl, (long long)j.k);
  int16_t *xw = ri__malloc(total);
  float *scale = ri__malloc((size_t)j.m * sizeof(float));
  if (!xw || !scale) {
    ri__free(xw);
    ri__free(scale);
    return RI__OOM(x->err);
  }
  int16_t *xs16 = xw, *ws16 = xw + nx;
  j.col = im2col ? ws16 + nw : NULL;

  const int32_t xzp = elem(&in[2], 0);
  const int64_t nws = ri__shape_numel(&in[4].shape), nwz = ri__shape_numel(&in[5].shape);
  const float xscale = *(const float *)in[1].data, yscale = *(const float *)in[6].data;
  j.x = xs16;
  j.xq = in[0].data;
  j.x_signed = in[0].dtype == RI_DTYPE_INT8;
  j.x_zp = xzp;
  ri__pool_for(x->pool, batch * j.c * j.h, 16, widen_x, &j);
  for (int64_t m = 0; m < j.m; m++) {
    const int32_t wzp = elem(&in[5], nwz == 1 ? 0 : m);
    for (int64_t i = 0; i < j.k; i++)
      ws16[m * j.kp + i] = (int16_t)(elem(&in[3], m * j.k + i) - wzp);
    if (j.kp != j.k) ws16[m * j.kp + j.k] = 0;
    const float prod = xscale * ((const float *)in[4].data)[nws == 1 ? 0 : m];
    scale[m] = prod / yscale;
  }
  j.w = ws16;
  j.scale = scale;

  if (!im2col) {
    ri__pool_for(x->pool, batch * j.m, 1, direct_planes, &j);
  } else {
    for (j.image = 0; j.image < batch; j.image++) {
      for (j.group = 0; j.group < p->group; j.group++) {
        ri__pool_for(x->pool, j.kp / 2, 1, im2col_pairs, &j);
        ri__pool_for(x->pool, (j.mg + TM - 1) / TM * ((pl + PIX_CHUNK - 1) / PIX_CHUNK), 1, gemm_tiles, &j);
      }
    }
  }
  ri__free(xw);
  ri__free(scale);
  return RI_OK;
}
