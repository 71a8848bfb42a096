/* The resize behind ri_preprocess: half-pixel bilinear interpolation of interleaved RGB8 into a region of a
 * model input, fused with channel reordering, normalisation, conversion to float32 / uint8 and the NHWC /
 * NCHW store.
 *
 * Pass order: vertical first. For each output row, the two source rows it reads are blended into one float
 * row of source width (contiguous, so 16 values go through per AVX2 step), and that row is then sampled
 * horizontally: output pixel x blends the six consecutive floats that start at 3 * x0 (source pixels x0
 * and x0 + 1), so one 4-float load per neighbour covers all three channels and no per-element gather is
 * needed. The horizontal step applies the normalisation and writes the destination directly. When
 * shrinking (the usual case: camera frames into a 300x300 or 224x224 input) this costs one horizontal pass
 * per output row, where resizing rows first costs one per source row read.
 *
 * Invariants of the float row v: it holds 3 * sw values followed by ROW_PAD zeros, so that the 4-float
 * loads at 3 * x0 + 3 (up to index 3 * sw + 3 for the last column) stay inside it and read finite values.
 * A weight is 0 whenever x0 is the last column, so the padding never contributes to a result. */
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "vision/resize.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define RI_RESIZE_X86 1
#include "vision/store_avx2.h"
#else
#define RI_RESIZE_X86 0
#endif

#define ROW_PAD 8

typedef struct {
  int sw;        /* source width */
  ri__region r;  /* destination region */
  size_t W, H;   /* model input size */
  int f32, nchw; /* output dtype float32 (else uint8), layout NCHW (else NHWC) */
  int sc[3];     /* source channel of output channel c */
  float mean[3], scale[3];
  const int32_t *xo; /* per region column x: 3 * x0, x0 the left source pixel */
  const float *wx;   /* per region column x: weight of source pixel x0 + 1 */
  const float *w8;   /* AVX2 weights: for each full group g of 8 columns, 4 vectors j of 8 floats,
                        lanes 0-3 = wx[8g + j] and lanes 4-7 = wx[8g + j + 4] */
} plan;

/* Half-pixel source position of output index i for a resize from n_in to n_out: left index *i0 and the
 * weight *w of *i0 + 1, as src = (i + 0.5) * n_in / n_out - 0.5 clamped to [0, n_in - 1]; *w is 0 at the
 * last index. */
static void src_coord(int i, int n_in, int n_out, int *i0, float *w) {
  double f = ((double)i + 0.5) * ((double)n_in / (double)n_out) - 0.5;
  if (f < 0) f = 0;
  int a = (int)f;
  if (a >= n_in - 1) {
    *i0 = n_in - 1;
    *w = 0.0f;
    return;
  }
  *i0 = a;
  *w = (float)(f - a);
}

static inline uint8_t to_u8(float v) {
  v += 0.5f;
  v = v < 0.0f ? 0.0f : v;
  v = v > 255.0f ? 255.0f : v;
  return (uint8_t)(int)v;
}

/* ---- portable kernels ---------------------------------------------------------------------------------- */

/* out[k] = s0[k] + (s1[k] - s0[k]) * w for k < n (s1 unused when w is 0). */
static void vrow_portable(const uint8_t *restrict s0, const uint8_t *restrict s1, float w,
                          float *restrict out, int n) {
  if (w == 0.0f) {
    for (int k = 0; k < n; k++)
      out[k] = s0[k];
    return;
  }
  for (int k = 0; k < n; k++) {
    float a = s0[k];
    out[k] = a + ((float)s1[k] - a) * w;
  }
}

/* Normalised output channels of region column x, sampled from the float row v. */
static inline void sample3(const plan *p, const float *v, int x, float y[3]) {
  const float *a = v + p->xo[x];
  const float w = p->wx[x];
  for (int c = 0; c < 3; c++) {
    float s = a[p->sc[c]];
    y[c] = ((s + (a[p->sc[c] + 3] - s) * w) - p->mean[c]) * p->scale[c];
  }
}

/* Horizontal pass of region columns [x0, r.w) into output row oy (region row + r.y). */
static void hrow_portable(const plan *p, const float *v, void *dst, size_t oy, int x0) {
  const int n = p->r.w;
  float y[3];
  if (p->nchw) {
    const size_t plane = p->H * p->W, base = oy * p->W + (size_t)p->r.x;
    if (p->f32) {
      float *o = (float *)dst + base;
      for (int x = x0; x < n; x++) {
        sample3(p, v, x, y);
        o[x] = y[0];
        o[plane + (size_t)x] = y[1];
        o[2 * plane + (size_t)x] = y[2];
      }
    } else {
      uint8_t *o = (uint8_t *)dst + base;
      for (int x = x0; x < n; x++) {
        sample3(p, v, x, y);
        o[x] = to_u8(y[0]);
        o[plane + (size_t)x] = to_u8(y[1]);
        o[2 * plane + (size_t)x] = to_u8(y[2]);
      }
    }
  } else {
    const size_t base = (oy * p->W + (size_t)p->r.x) * 3;
    if (p->f32) {
      float *o = (float *)dst + base;
      for (int x = x0; x < n; x++) {
        sample3(p, v, x, y);
        o[3 * x] = y[0];
        o[3 * x + 1] = y[1];
        o[3 * x + 2] = y[2];
      }
    } else {
      uint8_t *o = (uint8_t *)dst + base;
      for (int x = x0; x < n; x++) {
        sample3(p, v, x, y);
        o[3 * x] = to_u8(y[0]);
        o[3 * x + 1] = to_u8(y[1]);
        o[3 * x + 2] = to_u8(y[2]);
      }
    }
  }
}

/* ---- AVX2 + FMA kernels -------------------------------------------------------------------------------- */

#if RI_RESIZE_X86

RI_AVX2 static void vrow_avx2(const uint8_t *restrict s0, const uint8_t *restrict s1, float w,
                              float *restrict out, int n) {
  int k = 0;
  if (w == 0.0f) {
    for (; k + 16 <= n; k += 16) {
      __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(s0 + k));
      _mm256_storeu_ps(out + k, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(a)));
      _mm256_storeu_ps(out + k + 8, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(a, 8))));
    }
    for (; k < n; k++)
      out[k] = s0[k];
    return;
  }
  const __m256 vw = _mm256_set1_ps(w);
  for (; k + 16 <= n; k += 16) {
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(s0 + k));
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s1 + k));
    __m256 a0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(a));
    __m256 a1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(a, 8)));
    __m256 b0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
    __m256 b1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(b, 8)));
    _mm256_storeu_ps(out + k, _mm256_fmadd_ps(_mm256_sub_ps(b0, a0), vw, a0));
    _mm256_storeu_ps(out + k + 8, _mm256_fmadd_ps(_mm256_sub_ps(b1, a1), vw, a1));
  }
  for (; k < n; k++) {
    float a = s0[k];
    out[k] = a + ((float)s1[k] - a) * w;
  }
}

/* Columns p (lanes 0-3) and q (lanes 4-7) interpolated: [R G B junk | R G B junk] in source channel order;
 * junk is a finite row value. */
RI_AVX2 static inline __m256 lerp_pair(const float *v, int32_t op, int32_t oq, const float *w8) {
  __m256 a = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(v + op)), _mm_loadu_ps(v + oq), 1);
  __m256 b =
      _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(v + op + 3)), _mm_loadu_ps(v + oq + 3), 1);
  return _mm256_fmadd_ps(_mm256_sub_ps(b, a), _mm256_loadu_ps(w8), a);
}

/* Horizontal pass of one output row, 8 columns per step; the columns left over (and, for NHWC, the last
 * one or two, whose 16-byte stores would spill past the region) go through the portable kernel. */
RI_AVX2 static void hrow_avx2(const plan *p, const float *v, void *dst, size_t oy) {
  const int n = p->r.w;
  const int32_t *xo = p->xo;
  const int lim = n - (p->nchw ? 0 : p->f32 ? 1 : 2);
  int x = 0;
  if (p->nchw) {
    const size_t plane = p->H * p->W, base = oy * p->W + (size_t)p->r.x;
    __m256 m[3], s[3];
    for (int c = 0; c < 3; c++) {
      m[c] = _mm256_set1_ps(p->mean[c]);
      s[c] = _mm256_set1_ps(p->scale[c]);
    }
    for (; x + 8 <= lim; x += 8) {
      const float *w8 = p->w8 + (size_t)x * 4;
      __m256 p0 = lerp_pair(v, xo[x], xo[x + 4], w8);
      __m256 p1 = lerp_pair(v, xo[x + 1], xo[x + 5], w8 + 8);
      __m256 p2 = lerp_pair(v, xo[x + 2], xo[x + 6], w8 + 16);
      __m256 p3 = lerp_pair(v, xo[x + 3], xo[x + 7], w8 + 24);
      /* In-lane 4x4 transpose: lane 0 holds columns x..x+3, lane 1 columns x+4..x+7. */
      __m256 t0 = _mm256_unpacklo_ps(p0, p1), t1 = _mm256_unpacklo_ps(p2, p3);
      __m256 t2 = _mm256_unpackhi_ps(p0, p1), t3 = _mm256_unpackhi_ps(p2, p3);
      __m256 ch[3];
      ch[0] = _mm256_shuffle_ps(t0, t1, 0x44);
      ch[1] = _mm256_shuffle_ps(t0, t1, 0xEE);
      ch[2] = _mm256_shuffle_ps(t2, t3, 0x44);
      __m256 y[3];
      for (int c = 0; c < 3; c++)
        y[c] = _mm256_mul_ps(_mm256_sub_ps(ch[p->sc[c]], m[c]), s[c]);
      if (p->f32) {
        float *o = (float *)dst + base + (size_t)x;
        _mm256_storeu_ps(o, y[0]);
        _mm256_storeu_ps(o + plane, y[1]);
        _mm256_storeu_ps(o + 2 * plane, y[2]);
      } else {
        __m128i lo, hi;
        ri__pack3_u8(y[0], y[1], y[2], &lo, &hi);
        uint8_t *o = (uint8_t *)dst + base + (size_t)x;
        _mm_storel_epi64((__m128i *)(void *)o, lo);
        _mm_storel_epi64((__m128i *)(void *)(o + plane), _mm_srli_si128(lo, 8));
        _mm_storel_epi64((__m128i *)(void *)(o + 2 * plane), hi);
      }
    }
  } else {
    const size_t base = (oy * p->W + (size_t)p->r.x) * 3;
    const __m256i perm = _mm256_setr_epi32(p->sc[0], p->sc[1], p->sc[2], 3, p->sc[0], p->sc[1], p->sc[2], 3);
    const __m256 m =
        _mm256_setr_ps(p->mean[0], p->mean[1], p->mean[2], 0, p->mean[0], p->mean[1], p->mean[2], 0);
    const __m256 s =
        _mm256_setr_ps(p->scale[0], p->scale[1], p->scale[2], 0, p->scale[0], p->scale[1], p->scale[2], 0);
    for (; x + 8 <= lim; x += 8) {
      const float *w8 = p->w8 + (size_t)x * 4;
      __m256 y[4];
      for (int j = 0; j < 4; j++) {
        __m256 q = lerp_pair(v, xo[x + j], xo[x + j + 4], w8 + 8 * j);
        y[j] = _mm256_mul_ps(_mm256_sub_ps(_mm256_permutevar_ps(q, perm), m), s);
      }
      /* Each pixel is written as 4 values (the 4th is 0); a later store overwrites it, and lim keeps the
       * last store of the row inside the region. */
      if (p->f32) {
        float *o = (float *)dst + base + (size_t)x * 3;
        for (int j = 0; j < 4; j++)
          _mm_storeu_ps(o + 3 * j, _mm256_castps256_ps128(y[j]));
        for (int j = 0; j < 4; j++)
          _mm_storeu_ps(o + 12 + 3 * j, _mm256_extractf128_ps(y[j], 1));
      } else {
        __m256i s01 = _mm256_packs_epi32(ri__to_i32(y[0]), ri__to_i32(y[1]));
        __m256i s23 = _mm256_packs_epi32(ri__to_i32(y[2]), ri__to_i32(y[3]));
        __m256i b = _mm256_packus_epi16(s01, s23); /* lane 0: columns x..x+3 as RGB0, lane 1: x+4..x+7 */
        const __m256i squeeze = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1, 0, 1,
                                                 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
        b = _mm256_shuffle_epi8(b, squeeze);
        uint8_t *o = (uint8_t *)dst + base + (size_t)x * 3;
        _mm_storeu_si128((__m128i *)(void *)o, _mm256_castsi256_si128(b));
        _mm_storeu_si128((__m128i *)(void *)(o + 12), _mm256_extracti128_si256(b, 1));
      }
    }
  }
  hrow_portable(p, v, dst, oy, x);
}

/* __builtin_cpu_supports reads the CPU model data libgcc fills in before main; no state of ours. */
int ri__resize_have_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#else
int ri__resize_have_avx2(void) { return 0; }
#endif

void ri__resize_vrow(const uint8_t *s0, const uint8_t *s1, float w, float *out, int n, int avx2) {
#if RI_RESIZE_X86
  if (avx2) {
    vrow_avx2(s0, s1, w, out, n);
    return;
  }
#endif
  (void)avx2;
  vrow_portable(s0, s1, w, out, n);
}

/* ---- driver -------------------------------------------------------------------------------------------- */

ri_status ri__resize_into(const ri_image *img, const ri_preprocess_spec *spec, ri__region r, void *dst,
                          ri__resize_isa isa, ri__err *err) {
  const int sw = img->width, sh = img->height;
  if (sw > (INT32_MAX - ROW_PAD) / 3)
    return ri__err_set(err, RI_ERR_LIMIT, "preprocess: source width %d is over the resize limit of %d", sw,
                       (INT32_MAX - ROW_PAD) / 3);
  const int avx2 = isa == RI__RESIZE_AUTO && ri__resize_have_avx2();
  (void)avx2; /* unused without the x86 kernels */
  const size_t nv = (size_t)sw * 3 + ROW_PAD, groups = (size_t)r.w / 8;
  /* Scratch: the float row, xo (int32) and wx per column, 32 AVX2 weights per group of 8 columns. */
  size_t bytes =
      nv * sizeof(float) + (size_t)r.w * (sizeof(int32_t) + sizeof(float)) + groups * 32 * sizeof(float);
  float *v = ri__malloc(bytes);
  if (!v) return RI__OOM(err);
  float *wx = v + nv, *w8 = wx + r.w;
  int32_t *xo = (int32_t *)(void *)(w8 + groups * 32);
  memset(v + (size_t)sw * 3, 0, ROW_PAD * sizeof(float));
  for (int x = 0; x < r.w; x++) {
    int a;
    src_coord(x, sw, r.w, &a, &wx[x]);
    xo[x] = 3 * a;
  }
  for (size_t g = 0; g < groups; g++)
    for (int j = 0; j < 4; j++)
      for (int l = 0; l < 8; l++)
        w8[g * 32 + (size_t)j * 8 + (size_t)l] = wx[g * 8 + (size_t)j + (l < 4 ? 0 : 4)];

  const int bgr = spec->order == RI_CHANNEL_ORDER_BGR;
  plan p = {.sw = sw,
            .r = r,
            .W = (size_t)spec->width,
            .H = (size_t)spec->height,
            .f32 = spec->dtype == RI_DTYPE_FLOAT32,
            .nchw = spec->layout == RI_LAYOUT_NCHW,
            .sc = {bgr ? 2 : 0, 1, bgr ? 0 : 2},
            .xo = xo,
            .wx = wx,
            .w8 = w8};
  memcpy(p.mean, spec->mean, sizeof p.mean);
  memcpy(p.scale, spec->scale, sizeof p.scale);

  /* The float row is recomputed only when the source row pair or its weight changes (rows clamped at the
   * top or bottom edge, or a source of one row, reuse it). */
  int last_a = -1;
  float last_w = -1.0f;
  for (int y = 0; y < r.h; y++) {
    int a;
    float w;
    src_coord(y, sh, r.h, &a, &w);
    if (a != last_a || w != last_w) {
      const uint8_t *s0 = img->data + (size_t)a * img->stride;
      const uint8_t *s1 = w != 0.0f ? s0 + img->stride : s0;
#if RI_RESIZE_X86
      if (avx2)
        vrow_avx2(s0, s1, w, v, sw * 3);
      else
#endif
        vrow_portable(s0, s1, w, v, sw * 3);
      last_a = a;
      last_w = w;
    }
    const size_t oy = (size_t)(r.y + y);
#if RI_RESIZE_X86
    if (avx2)
      hrow_avx2(&p, v, dst, oy);
    else
#endif
      hrow_portable(&p, v, dst, oy, 0);
  }
  ri__free(v);
  return RI_OK;
}
