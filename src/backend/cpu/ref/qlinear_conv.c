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
 * eight pixels; tiles of 4 output channels x 16 pixels keep their sums in registers. Pointwise groups with
 * an even K skip the gathering: the tiles pair the widened input rows in registers. The portable path
 * (and edge tiles) runs the same sums in plain loops. Groups of one output channel (depthwise) run a
 * direct loop per output row over zero-padded input rows, two taps per vpmaddwd on AVX2
 * (qlinear_conv_direct.c). Integer sums do not depend on order, so every path gives the same bits. */
#include <string.h>

#include "backend/cpu/kernel.h"
#include "backend/cpu/ref/qlinear_conv.h"
#if QC_X86
#include <immintrin.h>
#endif

#include "core/alloc.h"
#include "graph/ops/conv_params.h"

/* Adding and subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to the nearest integer, ties to
 * even, in the default rounding mode; the operands are clamped to a few hundred before. */
#define ROUND_MAGIC 12582912.0f

/* Requantises n consecutive outputs of channel oc, y[idx + i] from acc[i] + add. Written as straight loops
 * without branches (a NaN from a broken scale becomes the low bound) so that compilers vectorise them; the
 * copy for AVX2 CPUs (no FMA: the multiply and the additions round one by one) is picked once per call. */
#define QC_STORE_BODY                                                                                        \
  const float sc = j->scale[oc], lo = j->lo, hi = j->hi;                                                     \
  const int32_t zp = j->y_zp;                                                                                \
  if (j->y_signed)                                                                                           \
    QC_STORE_LOOP(int8_t);                                                                                   \
  else                                                                                                       \
    QC_STORE_LOOP(uint8_t);
#define QC_STORE_LOOP(T)                                                                                     \
  do {                                                                                                       \
    T *y = (T *)j->y + idx;                                                                                  \
    for (int64_t i = 0; i < n; i++) {                                                                        \
      float v = (float)(acc[i] + add) * sc;                                                                  \
      v = v >= lo ? v : lo;                                                                                  \
      v = v > hi ? hi : v;                                                                                   \
      y[i] = (T)((int32_t)((v + ROUND_MAGIC) - ROUND_MAGIC) + zp);                                           \
    }                                                                                                        \
  } while (0)

static void store_portable(const qconv_job *j, int64_t idx, int64_t oc, const int32_t *acc, int32_t add,
                           int64_t n) {
  QC_STORE_BODY
}

#if QC_X86
__attribute__((target("avx2"))) static void store_avx2(const qconv_job *j, int64_t idx, int64_t oc,
                                                       const int32_t *acc, int32_t add, int64_t n) {
  QC_STORE_BODY
}
#endif

#undef QC_STORE_BODY
#undef QC_STORE_LOOP

/* Widens input rows [begin, end) to int16 with their zero point removed into d (row begin first); for the
 * direct path into padded, phase-split rows (padding and the unused tail of each phase 0). */
void ri__qconv_widen_rows(const qconv_job *j, int16_t *d, int64_t begin, int64_t end) {
  const int64_t wd = j->geo.wd, sw = j->geo.sw, pl = j->phase_len ? j->geo.pl : 0;
  for (int64_t r = begin; r < end; r++) {
    int16_t *drow = d + (r - begin) * j->row_len;
    const int64_t i0 = r * wd;
    if (!j->phase_len) {
      if (j->x_signed)
        for (int64_t ix = 0; ix < wd; ix++)
          drow[ix] = (int16_t)(((const int8_t *)j->xq)[i0 + ix] - j->x_zp);
      else
        for (int64_t ix = 0; ix < wd; ix++)
          drow[ix] = (int16_t)(((const uint8_t *)j->xq)[i0 + ix] - j->x_zp);
      continue;
    }
    for (int64_t ph = 0; ph < sw; ph++) {
      /* q of this phase whose input column q * sw + ph - pl lies in [0, wd) */
      int64_t qlo, qhi;
      ri__conv_valid_range(j->phase_len, wd, sw, ph - pl, &qlo, &qhi);
      int16_t *dp = drow + ph * j->phase_len;
      const int64_t x0 = i0 + ph - pl;
      for (int64_t q = 0; q < qlo; q++)
        dp[q] = 0;
      if (j->x_signed)
        for (int64_t q = qlo; q < qhi; q++)
          dp[q] = (int16_t)(((const int8_t *)j->xq)[x0 + q * sw] - j->x_zp);
      else
        for (int64_t q = qlo; q < qhi; q++)
          dp[q] = (int16_t)(((const uint8_t *)j->xq)[x0 + q * sw] - j->x_zp);
      for (int64_t q = qhi; q < j->phase_len; q++)
        dp[q] = 0;
    }
  }
}

static void widen_x(void *arg, int64_t begin, int64_t end) {
  const qconv_job *j = arg;
  ri__qconv_widen_rows(j, (int16_t *)j->x + begin * j->row_len, begin, end);
}

/* Pairs (2q, 2q + 1) of patch rows of the current (image, group), one pair per index. */
static void im2col_pairs(void *arg, int64_t begin, int64_t end) {
  const qconv_job *j = arg;
  const int64_t ksz = j->geo.kh * j->geo.kw, p = j->geo.oh * j->geo.ow;
  const int16_t *xg = j->x + (j->image * j->geo.c + j->group * j->geo.cg) * j->geo.h * j->geo.wd;
  for (int64_t q = begin; q < end; q++) {
    int16_t *dst = j->colbuf + q * p * 2;
    for (int half = 0; half < 2; half++) {
      const int64_t r = 2 * q + half;
      if (r >= j->geo.k) {
        for (int64_t i = 0; i < p; i++)
          dst[2 * i + half] = 0;
        continue;
      }
      const int64_t ic = r / ksz, ki = (r % ksz) / j->geo.kw, kj = r % j->geo.kw;
      const int16_t *xc = xg + ic * j->geo.h * j->geo.wd;
      for (int64_t oy = 0; oy < j->geo.oh; oy++) {
        const int64_t iy = oy * j->geo.sh + ki * j->geo.dh - j->geo.pt;
        int16_t *d = dst + oy * j->geo.ow * 2 + half;
        if (iy < 0 || iy >= j->geo.h) {
          for (int64_t ox = 0; ox < j->geo.ow; ox++)
            d[2 * ox] = 0;
          continue;
        }
        const int16_t *row = xc + iy * j->geo.wd;
        for (int64_t ox = 0; ox < j->geo.ow; ox++) {
          const int64_t ix = ox * j->geo.sw + kj * j->geo.dw - j->geo.pl;
          d[2 * ox] = ix >= 0 && ix < j->geo.wd ? row[ix] : 0;
        }
      }
    }
  }
}

#define TM 4  /* output channels per tile */
#define TN 16 /* pixels per tile */

/* Integer sums of a tile of nm output channels x nn pixels starting at pixel p0 (portable); either layout
 * of the patches (j->rows). */
static void tile_portable(const qconv_job *j, const int16_t *w, int64_t p0, int64_t nm, int64_t nn,
                          int32_t acc[TM][TN]) {
  const int64_t p = j->geo.oh * j->geo.ow, step = j->rows ? 1 : 2, ld = j->rows ? p : 1;
  for (int64_t q = 0; q < nm; q++)
    for (int64_t i = 0; i < nn; i++)
      acc[q][i] = 0;
  for (int64_t kq = 0; kq < j->kp / 2; kq++) {
    const int16_t *c = j->col + kq * 2 * p + p0 * step;
    for (int64_t q = 0; q < nm; q++) {
      const int32_t w0 = w[q * j->kp + 2 * kq], w1 = w[q * j->kp + 2 * kq + 1];
      for (int64_t i = 0; i < nn; i++)
        acc[q][i] += w0 * c[i * step] + w1 * c[i * step + ld];
    }
  }
}

#if QC_X86
/* The full tile with AVX2: products of int16 pairs summed into int32 lanes (exact: |sum| < 2^17). */
__attribute__((target("avx2"))) static void tile_avx2(const qconv_job *j, const int16_t *w, int64_t p0,
                                                      int32_t acc[TM][TN]) {
  const int64_t p = j->geo.oh * j->geo.ow;
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

/* The full tile with AVX2 reading the pointwise input rows in place (j->rows): rows 2kq and 2kq + 1 are
 * interleaved per pixel in registers (vpunpcklwd / vpunpckhwd), which leaves the pixels of the two
 * accumulators of a channel in the order 0-3, 8-11 | 4-7, 12-15; one lane permute at the end restores it. */
__attribute__((target("avx2"))) static void tile_rows_avx2(const qconv_job *j, const int16_t *w, int64_t p0,
                                                           int32_t acc[TM][TN]) {
  const int64_t p = j->geo.oh * j->geo.ow;
  __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00,
          a31 = a00;
  const int16_t *w0 = w, *w1 = w + j->kp, *w2 = w + 2 * j->kp, *w3 = w + 3 * j->kp;
  for (int64_t kq = 0; kq < j->kp / 2; kq++) {
    const int16_t *c = j->col + kq * 2 * p + p0;
    const __m256i r0 = _mm256_loadu_si256((const __m256i *)c),
                  r1 = _mm256_loadu_si256((const __m256i *)(c + p));
    const __m256i x0 = _mm256_unpacklo_epi16(r0, r1), x1 = _mm256_unpackhi_epi16(r0, r1);
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
#define QC_UNPERMUTE(q, lo, hi)                                                                              \
  _mm256_storeu_si256((__m256i *)acc[q], _mm256_permute2x128_si256(lo, hi, 0x20));                           \
  _mm256_storeu_si256((__m256i *)(acc[q] + 8), _mm256_permute2x128_si256(lo, hi, 0x31))
  QC_UNPERMUTE(0, a00, a01);
  QC_UNPERMUTE(1, a10, a11);
  QC_UNPERMUTE(2, a20, a21);
  QC_UNPERMUTE(3, a30, a31);
#undef QC_UNPERMUTE
}
#endif

#define PIX_CHUNK 256

/* One (block of TM output channels of the group, chunk of PIX_CHUNK pixels) per index. */
static void gemm_tiles(void *arg, int64_t begin, int64_t end) {
  const qconv_job *j = arg;
  const int64_t p = j->geo.oh * j->geo.ow, chunks = (p + PIX_CHUNK - 1) / PIX_CHUNK;
#if QC_X86
  const int fast = __builtin_cpu_supports("avx2");
#endif
  int32_t acc[TM][TN];
  for (int64_t t = begin; t < end; t++) {
    const int64_t mb = (t / chunks) * TM, c0 = (t % chunks) * PIX_CHUNK;
    const int64_t nm = j->geo.mg - mb < TM ? j->geo.mg - mb : TM;
    const int64_t c1 = c0 + PIX_CHUNK < p ? c0 + PIX_CHUNK : p;
    const int64_t m0 = j->group * j->geo.mg + mb;
    const int16_t *w = j->w + m0 * j->kp;
    for (int64_t p0 = c0; p0 < c1; p0 += TN) {
      const int64_t nn = c1 - p0 < TN ? c1 - p0 : TN;
#if QC_X86
      if (fast && nm == TM && nn == TN && j->rows)
        tile_rows_avx2(j, w, p0, acc);
      else if (fast && nm == TM && nn == TN)
        tile_avx2(j, w, p0, acc);
      else
#endif
        tile_portable(j, w, p0, nm, nn, acc);
      for (int64_t q = 0; q < nm; q++) {
        const int32_t b = j->bias ? j->bias[m0 + q] : 0;
        const int64_t base = (j->image * j->geo.m + m0 + q) * p + p0;
        ri__qconv_store(j, base, m0 + q, acc[q], b, nn);
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
  ri__conv_geom_init(&j.geo, p, &in[0].shape, &in[3].shape);
  const int64_t batch = j.geo.batch;
  j.bias = p->has_bias && n->n_inputs > 8 ? in[8].data : NULL;
  j.y = out[0].data;
  j.y_signed = out[0].dtype == RI_DTYPE_INT8;
  j.y_zp = elem(&in[7], 0);
  j.lo = (float)((j.y_signed ? -128 : 0) - j.y_zp);
  j.hi = (float)((j.y_signed ? 127 : 255) - j.y_zp);

  j.kp = j.geo.k + (j.geo.k & 1);
  const int im2col = j.geo.mg > 1;
  j.phase_len = im2col ? 0 : (j.geo.pl + j.geo.wd + j.geo.pr + j.geo.sw - 1) / j.geo.sw;
  j.row_len = j.phase_len ? j.geo.sw * j.phase_len : j.geo.wd;
  /* the im2col path widens the whole input first, the direct path plane by plane (qlinear_conv_direct.c) */
  const int64_t nx = im2col ? batch * j.geo.c * j.geo.h * j.row_len : 0, nw = j.geo.m * j.kp,
                pl = j.geo.oh * j.geo.ow;
  size_t col_elems = 0, total;
  j.rows = im2col && ri__conv_geom_pointwise(&j.geo) && j.kp == j.geo.k;
  if ((im2col && !j.rows && !ri__mul_size((size_t)pl, (size_t)j.kp, &col_elems)) ||
      !ri__mul_size((size_t)(nx + nw) + col_elems, sizeof(int16_t), &total))
    return ri__err_set(x->err, RI_ERR_LIMIT,
                       "QLinearConv node '%s': patch matrix of %lld x %lld is too large", n->name,
                       (long long)pl, (long long)j.geo.k);
  int16_t *xw = ri__malloc(total);
  float *scale = ri__malloc((size_t)j.geo.m * sizeof(float));
  if (!xw || !scale) {
    ri__free(xw);
    ri__free(scale);
    return RI__OOM(x->err);
  }
  int16_t *xs16 = xw, *ws16 = xw + nx;
  j.colbuf = im2col && !j.rows ? ws16 + nw : NULL;

  const int32_t xzp = elem(&in[2], 0);
  const int64_t nws = ri__shape_numel(&in[4].shape), nwz = ri__shape_numel(&in[5].shape);
  const float xscale = *(const float *)in[1].data, yscale = *(const float *)in[6].data;
  j.x = xs16;
  j.xq = in[0].data;
  j.x_signed = in[0].dtype == RI_DTYPE_INT8;
  j.x_zp = xzp;
  if (im2col) ri__pool_for(x->pool, batch * j.geo.c * j.geo.h, 16, widen_x, &j);
  for (int64_t m = 0; m < j.geo.m; m++) {
    const int32_t wzp = elem(&in[5], nwz == 1 ? 0 : m);
    for (int64_t i = 0; i < j.geo.k; i++)
      ws16[m * j.kp + i] = (int16_t)(elem(&in[3], m * j.geo.k + i) - wzp);
    if (j.kp != j.geo.k) ws16[m * j.kp + j.geo.k] = 0;
    const float prod = xscale * ((const float *)in[4].data)[nws == 1 ? 0 : m];
    scale[m] = prod / yscale;
  }
  j.w = ws16;
  j.scale = scale;
  j.store = store_portable;
#if QC_X86
  if (__builtin_cpu_supports("avx2")) j.store = store_avx2;
#endif

  if (!im2col) {
    if (ri__qconv_run_direct(&j, x->pool)) {
      ri__free(xw);
      ri__free(scale);
      return RI__OOM(x->err);
    }
  } else {
    for (j.image = 0; j.image < batch; j.image++) {
      for (j.group = 0; j.group < p->group; j.group++) {
        if (j.rows) {
          j.col = xs16 + (j.image * j.geo.c + j.group * j.geo.cg) * pl;
        } else {
          ri__pool_for(x->pool, j.kp / 2, 1, im2col_pairs, &j);
          j.col = j.colbuf;
        }
        ri__pool_for(x->pool, (j.geo.mg + TM - 1) / TM * ((pl + PIX_CHUNK - 1) / PIX_CHUNK), 1, gemm_tiles,
                     &j);
      }
    }
  }
  ri__free(xw);
  ri__free(scale);
  return RI_OK;
}
