/* Resize of planar YCbCr into a model input (ri__ycc_resize_into): half-pixel bilinear sampling of each
 * plane at the output pixel centres, then the JFIF colour conversion, clamping, channel order, normalisation
 * and the NCHW / NHWC, float32 / uint8 store, so that colour is converted for the output pixels only.
 *
 * Luma: output index i of n along an axis whose upright extent is len pixels is sampled at
 * (i + 0.5) * len / n - 0.5, clamped to [0, len - 1] (the formula of ri_preprocess), between the two upright
 * pixels u0 and u0 + 1 with weight w; a mirrored axis reads stored pixel len - 1 - u for upright pixel u.
 * Chroma: the RGB path (libjpeg's decode, then ri_preprocess) blends the same two pixels u0, u0 + 1 with the
 * same weight, and each of them carries the chroma libjpeg's "fancy" upsampling gives it: the linear
 * interpolation of the chroma plane at the pixel's centre, stored pixel s being at chroma coordinate
 * (s + 0.5) / f - 0.5 (f the subsampling factor; JPEG/JFIF centred siting), clamped to the plane. That
 * composition is linear, so it is applied to the chroma plane directly as up to three taps per axis (see
 * chroma_taps): the planar path then differs from the RGB path only by libjpeg's 8-bit rounding and by
 * clamping to 0..255 after, rather than before, the interpolation.
 *
 * Per output row: the rows each plane needs are blended into a float row of the plane's width (two for
 * luma with ri__resize_vrow, three for chroma; recomputed only when the rows or weights change), each float
 * row is sampled at the output columns, and the sampled Y, Cb and Cr rows are converted and stored.
 *
 * Horizontal sampling without gathers (AVX2): output columns go in groups of 8. A group's left samples lie
 * within nwin consecutive 8-float windows that start at the group's smallest index (its base); one permute
 * per window picks each column's sample by its local index (index - base, low 3 bits), and blends on bits 3
 * and 4 of the local index choose the window. The same permutes applied to the windows loaded one float
 * further give the right samples. nwin (1..4) is the largest any group of the plane needs; a plane whose
 * groups span more than 32 floats (shrinking by more than about 4.4) is sampled with hardware gathers. The
 * third chroma tap uses the windows loaded two floats further.
 *
 * Float rows hold the plane's samples followed by ROW_PAD zeros, so that window loads (at most 34 floats
 * past a base, which is a valid sample index) stay inside them; a tap's weight is 0 wherever it lies past
 * the last sample, so the padding never changes a result. */
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "vision/resize_ycc.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define RI_YCC_X86 1
#include "vision/store_avx2.h"
#else
#define RI_YCC_X86 0
#endif

#define ROW_PAD 40

/* JFIF (ITU-T T.871) YCbCr -> RGB coefficients, full range. */
#define K_RV 1.402f
#define K_GU (-0.344136f)
#define K_GV (-0.714136f)
#define K_BU 1.772f

/* Horizontal sampling plan of one plane. Luma (taps 2): v[xo] + (v[xo + 1] - v[xo]) * w[0], the form of
 * ri_preprocess. Chroma (taps 3): v[xo] * w[0] + v[xo + 1] * w[1] + v[xo + 2] * w[2]. */
typedef struct {
  int taps;
  int32_t *xo;   /* per output column: first sample index */
  float *w[3];   /* per output column: weights (w[1], w[2] unused for luma) */
  int groups;    /* groups of 8 columns: n / 8, plus one for the last 8 columns when 8 does not divide n */
  int32_t *base; /* per group: its smallest first index */
  int32_t *li;   /* per group, 8 entries: xo - base of its columns */
  int nwin;      /* windows per group, 1..4; 0: gathers */
} hplan;

/* First column of group g of a plane with n >= 8 columns: groups overlap only at the end. */
static inline int group_x(int g, int n) { return 8 * g + 8 <= n ? 8 * g : n - 8; }

/* One axis of the resize: n outputs over an upright extent of len pixels (ratio = len / n, as ri_preprocess
 * computes it), mirrored or not, and the chroma plane's p samples of f pixels each (inv_f = 1 / f, exact
 * for f = 1 and 2). */
typedef struct {
  double ratio, inv_f;
  int len, p, flip;
} axis;

/* One call's view: the image, the output format and the sampled rows of the current output row. */
typedef struct {
  const ri__ycc_image *img;
  ri__region r;
  size_t W, H;   /* model input size */
  int f32, nchw; /* output dtype float32 (else uint8), layout NCHW (else NHWC) */
  int sc[3];     /* RGB channel of output channel c */
  float mean[3], scale[3];
  const float *ty, *tcb, *tcr; /* Y, Cb, Cr sampled at the region's columns */
} plan;

static axis axis_of(int n, int len, int f, int p, int flip) {
  axis a = {(double)len / (double)n, 1.0 / f, len, p, flip};
  return a;
}

/* Luma sample of output index i (see the file comment), in stored pixels: *i0 and the weight *w of
 * *i0 + 1; *w is 0 at the last pixel. Unmirrored, this is ri_preprocess's source coordinate, computed the
 * same way; mirrored, the same position len - 1 - f read from the other side. */
static void luma_coord(const axis *ax, int i, int *i0, float *w) {
  double f = ((double)i + 0.5) * ax->ratio - 0.5;
  if (ax->flip) f = (double)ax->len - 1.0 - f;
  if (f < 0) f = 0;
  int a = (int)f;
  if (a >= ax->len - 1) {
    *i0 = ax->len - 1;
    *w = 0.0f;
    return;
  }
  *i0 = a;
  *w = (float)(f - a);
}

/* Chroma taps of output index i (see the file comment): first sample *b and the weights of samples b,
 * b + 1, b + 2. Tap indices past p - 1 get weight 0. */
static void chroma_taps(const axis *ax, int i, int *b, float wt[3]) {
  const int len = ax->len, p = ax->p;
  double f0 = ((double)i + 0.5) * ax->ratio - 0.5, w = 0.0;
  if (f0 < 0) f0 = 0;
  int u0 = (int)f0;
  if (u0 >= len - 1)
    u0 = len - 1;
  else
    w = (double)(float)(f0 - u0); /* ri_preprocess's float weight */
  int idx[4];
  double wgt[4];
  for (int k = 0; k < 2; k++) {
    int u = u0 + k < len ? u0 + k : len - 1; /* past the edge only when w is 0 */
    int s = ax->flip ? len - 1 - u : u;
    double q = ((double)s + 0.5) * ax->inv_f - 0.5, wk = k ? w : 1.0 - w;
    if (q < 0) q = 0;
    int a = (int)q;
    double t = q - a;
    if (a >= p - 1) {
      a = p - 1;
      t = 0.0;
    }
    idx[2 * k] = a;
    wgt[2 * k] = wk * (1.0 - t);
    idx[2 * k + 1] = a + 1 < p ? a + 1 : a;
    wgt[2 * k + 1] = wk * t;
  }
  int lo = idx[0];
  for (int k = 1; k < 4; k++)
    lo = idx[k] < lo ? idx[k] : lo;
  double acc[3] = {0, 0, 0};
  for (int k = 0; k < 4; k++)
    acc[idx[k] - lo] += wgt[k]; /* the four indices lie within lo .. lo + 2 (f <= 2) */
  *b = lo;
  for (int k = 0; k < 3; k++)
    wt[k] = (float)acc[k];
}

/* Fill the window plan (groups, base, li, nwin) of h from its xo. */
static void hplan_windows(hplan *h, int n) {
  int32_t span = 0;
  h->groups = n < 8 ? 0 : (n + 7) / 8;
  for (int g = 0; g < h->groups; g++) {
    const int32_t *xo = h->xo + group_x(g, n);
    int32_t lo = xo[0], hi = lo;
    for (int j = 1; j < 8; j++) {
      lo = xo[j] < lo ? xo[j] : lo;
      hi = xo[j] > hi ? xo[j] : hi;
    }
    h->base[g] = lo;
    for (int j = 0; j < 8; j++)
      h->li[8 * g + j] = xo[j] - lo;
    span = hi - lo > span ? hi - lo : span;
  }
  h->nwin = span < 32 ? span / 8 + 1 : 0;
}

static void hplan_luma(hplan *h, int n, const axis *ax) {
  h->taps = 2;
  for (int x = 0; x < n; x++) {
    int a;
    luma_coord(ax, x, &a, &h->w[0][x]);
    h->xo[x] = a;
  }
  hplan_windows(h, n);
}

static void hplan_chroma(hplan *h, int n, const axis *ax) {
  h->taps = 3;
  for (int x = 0; x < n; x++) {
    int b;
    float wt[3];
    chroma_taps(ax, x, &b, wt);
    h->xo[x] = b;
    for (int k = 0; k < 3; k++)
      h->w[k][x] = wt[k];
  }
  hplan_windows(h, n);
}

static inline uint8_t to_u8(float v) {
  v += 0.5f;
  v = v < 0.0f ? 0.0f : v;
  v = v > 255.0f ? 255.0f : v;
  return (uint8_t)(int)v;
}

static inline float clamp255(float v) {
  v = v < 0.0f ? 0.0f : v;
  return v > 255.0f ? 255.0f : v;
}

/* ---- portable kernels ---------------------------------------------------------------------------------- */

static void hsample_portable(const hplan *h, const float *restrict v, float *restrict out, int x0, int n) {
  if (h->taps == 2) {
    for (int x = x0; x < n; x++) {
      float a = v[h->xo[x]];
      out[x] = a + (v[h->xo[x] + 1] - a) * h->w[0][x];
    }
  } else {
    for (int x = x0; x < n; x++) {
      const float *a = v + h->xo[x];
      out[x] = a[0] * h->w[0][x] + a[1] * h->w[1][x] + a[2] * h->w[2][x];
    }
  }
}

/* out[k] = r0[k] * w[0] + r1[k] * w[1] + r2[k] * w[2] for k < n. */
static void vrow3_portable(const uint8_t *restrict r0, const uint8_t *restrict r1, const uint8_t *restrict r2,
                           const float w[3], float *restrict out, int n) {
  for (int k = 0; k < n; k++)
    out[k] = (float)r0[k] * w[0] + (float)r1[k] * w[1] + (float)r2[k] * w[2];
}

/* Normalised output channels of region column x from the sampled rows. */
static inline void pixel(const plan *p, int x, float o[3]) {
  float yv = p->ty[x], rgb[3];
  if (p->img->gray) {
    rgb[0] = rgb[1] = rgb[2] = yv;
  } else {
    float u = p->tcb[x] - 128.0f, v = p->tcr[x] - 128.0f;
    rgb[0] = clamp255(yv + K_RV * v);
    rgb[1] = clamp255(yv + K_GU * u + K_GV * v);
    rgb[2] = clamp255(yv + K_BU * u);
  }
  for (int c = 0; c < 3; c++)
    o[c] = (rgb[p->sc[c]] - p->mean[c]) * p->scale[c];
}

/* Convert and store region columns [x0, r.w) of output row oy. */
static void store_portable(const plan *p, void *dst, size_t oy, int x0) {
  const int n = p->r.w;
  float o[3];
  if (p->nchw) {
    const size_t plane = p->H * p->W, base = oy * p->W + (size_t)p->r.x;
    for (int x = x0; x < n; x++) {
      pixel(p, x, o);
      for (int c = 0; c < 3; c++) {
        size_t i = (size_t)c * plane + base + (size_t)x;
        if (p->f32)
          ((float *)dst)[i] = o[c];
        else
          ((uint8_t *)dst)[i] = to_u8(o[c]);
      }
    }
  } else {
    const size_t base = (oy * p->W + (size_t)p->r.x) * 3;
    for (int x = x0; x < n; x++) {
      pixel(p, x, o);
      for (int c = 0; c < 3; c++) {
        size_t i = base + 3 * (size_t)x + (size_t)c;
        if (p->f32)
          ((float *)dst)[i] = o[c];
        else
          ((uint8_t *)dst)[i] = to_u8(o[c]);
      }
    }
  }
}

/* ---- AVX2 + FMA kernels -------------------------------------------------------------------------------- */

#if RI_YCC_X86

/* The samples at local indices li (0 .. 8 * nwin - 1) of the nwin 8-float windows starting at b, picked
 * with one permute per window and blends on bits 3 (m3) and 4 (m4) of li. */
RI_AVX2 static __attribute__((always_inline)) inline __m256 pick(const float *b, __m256i li, int nwin,
                                                                 __m256 m3, __m256 m4) {
  __m256 v = _mm256_permutevar8x32_ps(_mm256_loadu_ps(b), li);
  if (nwin > 1) {
    v = _mm256_blendv_ps(v, _mm256_permutevar8x32_ps(_mm256_loadu_ps(b + 8), li), m3);
    if (nwin > 2) {
      __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(b + 16), li);
      if (nwin > 3) hi = _mm256_blendv_ps(hi, _mm256_permutevar8x32_ps(_mm256_loadu_ps(b + 24), li), m3);
      v = _mm256_blendv_ps(v, hi, m4);
    }
  }
  return v;
}

/* The sampling loop of hsample_avx2 for one (nwin, taps) pair; nwin 0 gathers. */
RI_AVX2 static __attribute__((always_inline)) inline void
hsample_loop(const hplan *h, const float *restrict v, float *restrict out, int n, int nwin, int three) {
  const int groups = h->groups;
  const int32_t *restrict base = h->base, *restrict lis = h->li, *restrict xo = h->xo;
  const float *restrict w0 = h->w[0], *restrict w1 = h->w[1], *restrict w2 = h->w[2];
  for (int g = 0; g < groups; g++) {
    const int x = group_x(g, n);
    __m256 t0, t1, t2 = _mm256_setzero_ps();
    if (nwin == 0) {
      const __m256i i = _mm256_loadu_si256((const __m256i *)(const void *)(xo + x));
      t0 = _mm256_i32gather_ps(v, i, 4);
      t1 = _mm256_i32gather_ps(v + 1, i, 4);
      if (three) t2 = _mm256_i32gather_ps(v + 2, i, 4);
    } else {
      const float *b = v + base[g];
      const __m256i li = _mm256_loadu_si256((const __m256i *)(const void *)(lis + 8 * g));
      const __m256 m3 = _mm256_castsi256_ps(_mm256_slli_epi32(li, 28)); /* local index bit 3 */
      const __m256 m4 = _mm256_castsi256_ps(_mm256_slli_epi32(li, 27)); /* bit 4 */
      t0 = pick(b, li, nwin, m3, m4);
      t1 = pick(b + 1, li, nwin, m3, m4);
      if (three) t2 = pick(b + 2, li, nwin, m3, m4);
    }
    __m256 r;
    if (three)
      r = _mm256_fmadd_ps(
          t2, _mm256_loadu_ps(w2 + x),
          _mm256_fmadd_ps(t1, _mm256_loadu_ps(w1 + x), _mm256_mul_ps(t0, _mm256_loadu_ps(w0 + x))));
    else
      r = _mm256_fmadd_ps(_mm256_sub_ps(t1, t0), _mm256_loadu_ps(w0 + x), t0);
    _mm256_storeu_ps(out + x, r);
  }
}

/* Samples the float row v at the n columns of h, 8 per group (the last group may overlap the one before it
 * and then writes the same values again); fewer than 8 columns go through the portable code. */
RI_AVX2 static void hsample_avx2(const hplan *h, const float *restrict v, float *restrict out, int n) {
  if (n < 8) {
    hsample_portable(h, v, out, 0, n);
    return;
  }
  const int three = h->taps == 3;
  switch (h->nwin * 2 + three) {
  case 2: hsample_loop(h, v, out, n, 1, 0); break;
  case 3: hsample_loop(h, v, out, n, 1, 1); break;
  case 4: hsample_loop(h, v, out, n, 2, 0); break;
  case 5: hsample_loop(h, v, out, n, 2, 1); break;
  case 6: hsample_loop(h, v, out, n, 3, 0); break;
  case 7: hsample_loop(h, v, out, n, 3, 1); break;
  case 8: hsample_loop(h, v, out, n, 4, 0); break;
  case 9: hsample_loop(h, v, out, n, 4, 1); break;
  case 0: hsample_loop(h, v, out, n, 0, 0); break;
  default: hsample_loop(h, v, out, n, 0, 1); break;
  }
}

RI_AVX2 static inline __m256 u8x8(const uint8_t *p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p)));
}

RI_AVX2 static void vrow3_avx2(const uint8_t *restrict r0, const uint8_t *restrict r1,
                               const uint8_t *restrict r2, const float w[3], float *restrict out, int n) {
  const __m256 w0 = _mm256_set1_ps(w[0]), w1 = _mm256_set1_ps(w[1]), w2 = _mm256_set1_ps(w[2]);
  int k = 0;
  for (; k + 8 <= n; k += 8)
    _mm256_storeu_ps(out + k,
                     _mm256_fmadd_ps(u8x8(r2 + k), w2,
                                     _mm256_fmadd_ps(u8x8(r1 + k), w1, _mm256_mul_ps(u8x8(r0 + k), w0))));
  vrow3_portable(r0 + k, r1 + k, r2 + k, w, out + k, n - k);
}

#define RI_INLINE __attribute__((always_inline)) inline

/* The 8 output pixels at x: Y, Cb, Cr -> RGB (clamped), reordered (bgr: channels 0 and 2 swapped) and
 * normalised, channel c in o[c]. */
RI_AVX2 static RI_INLINE void convert8(const float *restrict ty, const float *restrict tcb,
                                       const float *restrict tcr, int x, int gray, int bgr, const __m256 m[3],
                                       const __m256 s[3], __m256 o[3]) {
  const __m256 yv = _mm256_loadu_ps(ty + x);
  __m256 rgb[3];
  if (gray) {
    rgb[0] = rgb[1] = rgb[2] = yv;
  } else {
    const __m256 zero = _mm256_setzero_ps(), c255 = _mm256_set1_ps(255.0f), c128 = _mm256_set1_ps(128.0f);
    const __m256 u = _mm256_sub_ps(_mm256_loadu_ps(tcb + x), c128);
    const __m256 v = _mm256_sub_ps(_mm256_loadu_ps(tcr + x), c128);
    rgb[0] = _mm256_fmadd_ps(v, _mm256_set1_ps(K_RV), yv);
    rgb[1] = _mm256_fmadd_ps(u, _mm256_set1_ps(K_GU), _mm256_fmadd_ps(v, _mm256_set1_ps(K_GV), yv));
    rgb[2] = _mm256_fmadd_ps(u, _mm256_set1_ps(K_BU), yv);
    for (int c = 0; c < 3; c++)
      rgb[c] = _mm256_min_ps(_mm256_max_ps(rgb[c], zero), c255);
  }
  if (bgr) {
    __m256 t = rgb[0];
    rgb[0] = rgb[2];
    rgb[2] = t;
  }
  for (int c = 0; c < 3; c++)
    o[c] = _mm256_mul_ps(_mm256_sub_ps(rgb[c], m[c]), s[c]);
}

/* Output layouts of store_row. */
enum { NCHW_F32, NCHW_U8, NHWC_F32, NHWC_U8 };

/* Store 8 pixels (channel c in o[c]) at d: NCHW planes plane elements apart, or NHWC interleaved. Every
 * store writes exactly these 8 pixels. */
RI_AVX2 static RI_INLINE void put8(void *d, size_t plane, const __m256 o[3], int kind) {
  if (kind == NCHW_F32) {
    for (int c = 0; c < 3; c++)
      _mm256_storeu_ps((float *)d + (size_t)c * plane, o[c]);
  } else if (kind == NHWC_F32) {
    /* 3 x 8 -> 8 x 3: lane k of output vector j is element (8j + k) of c0 c1 c2 c0 c1 c2 ..., that is
     * channel (8j + k) % 3 of pixel (8j + k) / 3. */
    const __m256i i0 = _mm256_setr_epi32(0, 0, 0, 1, 1, 1, 2, 2),
                  i1 = _mm256_setr_epi32(2, 3, 3, 3, 4, 4, 4, 5),
                  i2 = _mm256_setr_epi32(5, 5, 6, 6, 6, 7, 7, 7);
    const __m256 k036 = _mm256_castsi256_ps(_mm256_setr_epi32(-1, 0, 0, -1, 0, 0, -1, 0));
    const __m256 k147 = _mm256_castsi256_ps(_mm256_setr_epi32(0, -1, 0, 0, -1, 0, 0, -1));
    const __m256 k25 = _mm256_castsi256_ps(_mm256_setr_epi32(0, 0, -1, 0, 0, -1, 0, 0));
    float *f = d;
#define PICK(i, mb, mc)                                                                                      \
  _mm256_blendv_ps(                                                                                          \
      _mm256_blendv_ps(_mm256_permutevar8x32_ps(o[0], i), _mm256_permutevar8x32_ps(o[1], i), mb),            \
      _mm256_permutevar8x32_ps(o[2], i), mc)
    _mm256_storeu_ps(f, PICK(i0, k147, k25));
    _mm256_storeu_ps(f + 8, PICK(i1, k25, k036));
    _mm256_storeu_ps(f + 16, PICK(i2, k036, k147));
#undef PICK
  } else {
    __m128i c01, c2;
    ri__pack3_u8(o[0], o[1], o[2], &c01, &c2);
    uint8_t *u = d;
    if (kind == NCHW_U8) {
      _mm_storel_epi64((__m128i *)(void *)u, c01);
      _mm_storel_epi64((__m128i *)(void *)(u + plane), _mm_srli_si128(c01, 8));
      _mm_storel_epi64((__m128i *)(void *)(u + 2 * plane), c2);
    } else { /* two byte shuffles each interleave them into 16 + 8 bytes */
      const __m128i a0 = _mm_setr_epi8(0, 8, -1, 1, 9, -1, 2, 10, -1, 3, 11, -1, 4, 12, -1, 5);
      const __m128i b0 = _mm_setr_epi8(-1, -1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1);
      const __m128i a1 = _mm_setr_epi8(13, -1, 6, 14, -1, 7, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1);
      const __m128i b1 = _mm_setr_epi8(-1, 5, -1, -1, 6, -1, -1, 7, -1, -1, -1, -1, -1, -1, -1, -1);
      _mm_storeu_si128((__m128i *)(void *)u,
                       _mm_or_si128(_mm_shuffle_epi8(c01, a0), _mm_shuffle_epi8(c2, b0)));
      _mm_storel_epi64((__m128i *)(void *)(u + 16),
                       _mm_or_si128(_mm_shuffle_epi8(c01, a1), _mm_shuffle_epi8(c2, b1)));
    }
  }
}

/* One output row (region width n >= 8) in one layout, 8 pixels per step; the last step starts at n - 8 and
 * may write pixels of the step before it again, with the same values. */
RI_AVX2 static RI_INLINE void store_loop(const plan *p, void *dst, size_t oy, int kind, int gray) {
  const int n = p->r.w, bgr = p->sc[0] == 2;
  const float *restrict ty = p->ty, *restrict tcb = p->tcb, *restrict tcr = p->tcr;
  __m256 m[3], s[3], o[3];
  for (int c = 0; c < 3; c++) {
    m[c] = _mm256_set1_ps(p->mean[c]);
    s[c] = _mm256_set1_ps(p->scale[c]);
  }
  const size_t plane = p->H * p->W, esz = kind == NCHW_F32 || kind == NHWC_F32 ? 4 : 1;
  const int nhwc = kind == NHWC_F32 || kind == NHWC_U8;
  unsigned char *row = (unsigned char *)dst + (oy * p->W + (size_t)p->r.x) * (nhwc ? 3 : 1) * esz;
  for (int x = 0;; x += 8) {
    if (x + 8 > n) x = n - 8;
    convert8(ty, tcb, tcr, x, gray, bgr, m, s, o);
    put8(row + (size_t)x * (nhwc ? 3 : 1) * esz, plane, o, kind);
    if (x + 8 >= n) break;
  }
}

/* Converts and stores one output row (rows narrower than 8 pixels through the portable code). */
RI_AVX2 static void store_avx2(const plan *p, void *dst, size_t oy) {
  if (p->r.w < 8) {
    store_portable(p, dst, oy, 0);
    return;
  }
  const int kind = p->nchw ? (p->f32 ? NCHW_F32 : NCHW_U8) : (p->f32 ? NHWC_F32 : NHWC_U8);
  const int gray = p->img->gray;
  switch (kind * 2 + gray) {
  case NCHW_F32 * 2: store_loop(p, dst, oy, NCHW_F32, 0); break;
  case NCHW_F32 * 2 + 1: store_loop(p, dst, oy, NCHW_F32, 1); break;
  case NCHW_U8 * 2: store_loop(p, dst, oy, NCHW_U8, 0); break;
  case NCHW_U8 * 2 + 1: store_loop(p, dst, oy, NCHW_U8, 1); break;
  case NHWC_F32 * 2: store_loop(p, dst, oy, NHWC_F32, 0); break;
  case NHWC_F32 * 2 + 1: store_loop(p, dst, oy, NHWC_F32, 1); break;
  case NHWC_U8 * 2: store_loop(p, dst, oy, NHWC_U8, 0); break;
  default: store_loop(p, dst, oy, NHWC_U8, 1); break;
  }
}
#endif

/* ---- plan ------------------------------------------------------------------------------------------ */

/* Everything that depends only on the geometry (image and planes, mirroring, region): sampling tables of both
 * axes and the float rows. Kept by the caller between images of the same geometry. */
struct ri__ycc_plan {
  int W, H, gray, hf, vf, flip_x, flip_y, cw, ch; /* the key */
  ri__region r;
  hplan hy, hc;
  int32_t *ya; /* per region row: luma row and the weight of the next one */
  float *yw;
  int32_t *cb; /* per region row: first chroma row */
  float *cwt;  /* per region row: the three chroma row weights */
  float *vy, *vcb, *vcr, *ty, *tcb, *tcr;
};

static int plan_matches(const ri__ycc_plan *g, const ri__ycc_image *img, ri__region r) {
  return g && g->W == img->width && g->H == img->height && g->gray == img->gray && g->hf == img->hf &&
         g->vf == img->vf && g->flip_x == img->flip_x && g->flip_y == img->flip_y && g->cw == img->cw &&
         g->ch == img->ch && g->r.x == r.x && g->r.y == r.y && g->r.w == r.w && g->r.h == r.h;
}

void ri__ycc_plan_free(ri__ycc_plan *g) { ri__free(g); }

static ri_status plan_build(const ri__ycc_image *img, ri__region r, ri__ycc_plan **out, ri__err *err) {
  const int W = img->width, H = img->height, cw = img->gray ? 0 : img->cw;
  if (W > INT32_MAX - ROW_PAD || cw > INT32_MAX - ROW_PAD)
    return ri__err_set(err, RI_ERR_LIMIT, "preprocess: source width %d is over the resize limit of %d", W,
                       INT32_MAX - ROW_PAD);
  const size_t n = (size_t)r.w, rows = (size_t)r.h, groups = (n + 7) / 8;
  const size_t nvy = (size_t)W + ROW_PAD, nvc = (size_t)cw + ROW_PAD;
  /* One block: the struct, then 4-byte elements: per plane kind (luma, chroma) three weights and xo per
   * column, base per group and li per group of 8; the row tables; the float rows. */
  size_t per_plan = 4 * n + 9 * groups, elems = 2 * per_plan + 6 * rows + nvy + 2 * nvc + 3 * n;
  size_t head = (sizeof(ri__ycc_plan) + 63) & ~(size_t)63, bytes;
  if (!ri__mul_size(elems, 4, &bytes) || !ri__add_size(bytes, head, &bytes))
    return ri__err_set(err, RI_ERR_LIMIT, "preprocess: resize tables for %dx%d are too large", W, H);
  unsigned char *mem = ri__malloc(bytes);
  if (!mem) return RI__OOM(err);
  ri__ycc_plan *g = (ri__ycc_plan *)(void *)mem;
  memset(g, 0, sizeof *g);
  g->W = W;
  g->H = H;
  g->gray = img->gray;
  g->hf = img->hf;
  g->vf = img->vf;
  g->flip_x = img->flip_x;
  g->flip_y = img->flip_y;
  g->cw = img->cw;
  g->ch = img->ch;
  g->r = r;
  float *q = (float *)(void *)(mem + head);
  hplan *hp[2] = {&g->hy, &g->hc};
  for (int k = 0; k < 2; k++) {
    for (int j = 0; j < 3; j++)
      hp[k]->w[j] = q + (size_t)j * n;
    hp[k]->xo = (int32_t *)(void *)(q + 3 * n);
    hp[k]->base = hp[k]->xo + n;
    hp[k]->li = hp[k]->base + groups;
    q += per_plan;
  }
  g->ya = (int32_t *)(void *)q;
  g->yw = q + rows;
  g->cb = (int32_t *)(void *)(q + 2 * rows);
  g->cwt = q + 3 * rows;
  g->vy = q + 6 * rows;
  g->vcb = g->vy + nvy;
  g->vcr = g->vcb + nvc;
  g->ty = g->vcr + nvc;
  g->tcb = g->ty + n;
  g->tcr = g->tcb + n;
  memset(g->vy + W, 0, ROW_PAD * sizeof(float));
  memset(g->vcb + cw, 0, ROW_PAD * sizeof(float));
  memset(g->vcr + cw, 0, ROW_PAD * sizeof(float));
  const int gray = img->gray;
  const axis ax = axis_of(r.w, W, gray ? 1 : img->hf, cw, img->flip_x);
  const axis ay = axis_of(r.h, H, gray ? 1 : img->vf, gray ? 0 : img->ch, img->flip_y);
  hplan_luma(&g->hy, r.w, &ax);
  if (!gray) hplan_chroma(&g->hc, r.w, &ax);
  for (int y = 0; y < r.h; y++) {
    int a;
    luma_coord(&ay, y, &a, &g->yw[y]);
    g->ya[y] = a;
    if (!gray) {
      chroma_taps(&ay, y, &a, g->cwt + 3 * (size_t)y);
      g->cb[y] = a;
    }
  }
  *out = g;
  return RI_OK;
}

/* ---- driver -------------------------------------------------------------------------------------------- */

/* Blend and sample the chroma rows of region row y. */
static void chroma_row(const plan *p, const ri__ycc_plan *g, int y, int avx2) {
  const ri__ycc_image *img = p->img;
  const int b = g->cb[y];
  const float *w = g->cwt + 3 * (size_t)y;
  size_t o[3];
  for (int k = 0; k < 3; k++) /* a row past the plane has weight 0: read row b instead */
    o[k] = (size_t)(b + k < img->ch ? b + k : b) * img->c_stride;
  const uint8_t *pl[2] = {img->cb, img->cr};
  float *v[2] = {g->vcb, g->vcr}, *t[2] = {g->tcb, g->tcr};
  for (int c = 0; c < 2; c++) {
#if RI_YCC_X86
    if (avx2) {
      vrow3_avx2(pl[c] + o[0], pl[c] + o[1], pl[c] + o[2], w, v[c], img->cw);
      hsample_avx2(&g->hc, v[c], t[c], g->r.w);
      continue;
    }
#endif
    (void)avx2;
    vrow3_portable(pl[c] + o[0], pl[c] + o[1], pl[c] + o[2], w, v[c], img->cw);
    hsample_portable(&g->hc, v[c], t[c], 0, g->r.w);
  }
}

ri_status ri__ycc_resize_into(const ri__ycc_image *img, const ri_preprocess_spec *spec, ri__region r,
                              void *dst, ri__resize_isa isa, ri__ycc_plan **cache, ri__err *err) {
  ri__ycc_plan *g = cache ? *cache : NULL;
  if (!plan_matches(g, img, r)) {
    if (cache) {
      ri__ycc_plan_free(*cache);
      *cache = NULL;
    }
    RI__TRY(plan_build(img, r, &g, err));
    if (cache) *cache = g;
  }
  const int avx2 = isa == RI__RESIZE_AUTO && ri__resize_have_avx2();
  const int bgr = spec->order == RI_CHANNEL_ORDER_BGR;
  plan p = {.img = img,
            .r = r,
            .W = (size_t)spec->width,
            .H = (size_t)spec->height,
            .f32 = spec->dtype == RI_DTYPE_FLOAT32,
            .nchw = spec->layout == RI_LAYOUT_NCHW,
            .sc = {bgr ? 2 : 0, 1, bgr ? 0 : 2},
            .ty = g->ty,
            .tcb = g->tcb,
            .tcr = g->tcr};
  memcpy(p.mean, spec->mean, sizeof p.mean);
  memcpy(p.scale, spec->scale, sizeof p.scale);
  /* Rows are blended again only when their rows or weights change (edge rows, enlarging). */
  int last_ay = -1, last_cb = -1;
  float last_wy = -1.0f;
  const float *last_cw = NULL;
  for (int y = 0; y < r.h; y++) {
    const int a = g->ya[y];
    const float w = g->yw[y];
    if (a != last_ay || w != last_wy) {
      const uint8_t *s0 = img->y + (size_t)a * img->y_stride;
      ri__resize_vrow(s0, w != 0.0f ? s0 + img->y_stride : s0, w, g->vy, img->width, avx2);
#if RI_YCC_X86
      if (avx2)
        hsample_avx2(&g->hy, g->vy, g->ty, r.w);
      else
#endif
        hsample_portable(&g->hy, g->vy, g->ty, 0, r.w);
      last_ay = a;
      last_wy = w;
    }
    const float *cw = g->cwt + 3 * (size_t)y;
    if (!img->gray && (g->cb[y] != last_cb || !last_cw || memcmp(cw, last_cw, 3 * sizeof(float)) != 0)) {
      chroma_row(&p, g, y, avx2);
      last_cb = g->cb[y];
      last_cw = cw;
    }
    const size_t oy = (size_t)(r.y + y);
#if RI_YCC_X86
    if (avx2)
      store_avx2(&p, dst, oy);
    else
#endif
      store_portable(&p, dst, oy, 0);
  }
  if (!cache) ri__ycc_plan_free(g);
  return RI_OK;
}
