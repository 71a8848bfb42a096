/* The direct path of QLinearConv (qlinear_conv.c) for groups of one output channel (depthwise-like): output
 * rows over zero-padded, phase-split int16 input rows that each task widens plane by plane into its own
 * buffer (in cache while its rows are computed); two taps per vpmaddwd on AVX2, plain loops elsewhere. The
 * integer sums are exact (|pair of products| < 2^17), so both give the same bits. */
#include <string.h>

#include "backend/cpu/ref/qlinear_conv.h"
#if QC_X86
#include <immintrin.h>
#endif

#include "core/alloc.h"

/* The direct path's taps of one row segment: pointers into the padded input rows (tap t reads ptr[t][ox]
 * for output column ox) and their weights. Filled in batches of at most QC_TAPS. */
#define QC_TAPS 64

/* acc[ox - s->c0] += sum over taps t of w[t] * ptr[t][ox], plain loops. */
static void taps_portable(const ri__conv_seg *s, const int16_t *const *ptr, const int32_t *w, int nt,
                          int32_t *acc) {
  for (int t = 0; t < nt; t++)
    for (int64_t ox = s->c0; ox < s->c1; ox++)
      acc[ox - s->c0] += w[t] * ptr[t][ox];
}

#if QC_X86
/* The same sums with AVX2, 16 output columns at a time: taps go in pairs, the two inputs interleaved per
 * column (vpunpcklwd / vpunpckhwd) and multiplied by the weight pair with vpmaddwd, so one instruction
 * adds two taps for eight columns (exact: |sum| < 2^17). The unpacks leave the columns of the two
 * accumulators in the order 0-3, 8-11 | 4-7, 12-15; one lane permute per block restores it. nt is even (a
 * zero weight pads it). Columns past s->c1 read padding or the next rows (the buffer has a tail) and are
 * dropped. */
__attribute__((target("avx2"))) static void taps_avx2(const ri__conv_seg *s, const int16_t *const *ptr,
                                                      const int32_t *w, int nt, int32_t *acc) {
  int32_t pair[QC_TAPS / 2];
  for (int t = 0; t < nt; t += 2)
    pair[t / 2] = (int32_t)(((uint32_t)(uint16_t)w[t + 1] << 16) | (uint16_t)w[t]);
  for (int64_t ox = s->c0; ox < s->c1; ox += 16) {
    __m256i lo = _mm256_setzero_si256(), hi = lo;
    for (int t = 0; t < nt; t += 2) {
      const __m256i a = _mm256_loadu_si256((const __m256i *)(ptr[t] + ox)),
                    b = _mm256_loadu_si256((const __m256i *)(ptr[t + 1] + ox)),
                    wp = _mm256_set1_epi32(pair[t / 2]);
      lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), wp));
      hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), wp));
    }
    const __m256i r0 = _mm256_permute2x128_si256(lo, hi, 0x20), r1 = _mm256_permute2x128_si256(lo, hi, 0x31);
    int32_t *d = acc + (ox - s->c0);
    if (s->c1 - ox >= 16) {
      _mm256_storeu_si256((__m256i *)d, _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)d), r0));
      _mm256_storeu_si256((__m256i *)(d + 8),
                          _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(d + 8)), r1));
    } else {
      int32_t tmp[16];
      _mm256_storeu_si256((__m256i *)tmp, r0);
      _mm256_storeu_si256((__m256i *)(tmp + 8), r1);
      for (int64_t i = 0; i < s->c1 - ox; i++)
        d[i] += tmp[i];
    }
  }
}
#endif

/* Adds the taps of row segment s of its plane to acc. The input rows are padded (zeros where the window
 * leaves the input) and split into sw phases, so every tap reads one contiguous run of the row. */
static void direct_seg(const qconv_job *j, const int16_t *xg, const ri__conv_seg *s, int32_t *acc) {
  const ri__conv_geom *g = &j->geo;
  const int16_t *ptr[QC_TAPS];
  int32_t w[QC_TAPS];
  int nt = 0;
  for (int64_t icg = 0; icg < g->cg; icg++) {
    const int16_t *xc = xg + icg * g->h * j->row_len;
    const int16_t *wk = j->w + s->oc * j->kp + icg * g->kh * g->kw;
    for (int64_t ki = 0; ki < g->kh; ki++) {
      const int64_t iy = s->oy * g->sh + ki * g->dh - g->pt;
      if (iy < 0 || iy >= g->h) continue;
      const int16_t *row = xc + iy * j->row_len;
      for (int64_t kj = 0; kj < g->kw; kj++) {
        const int64_t pc = kj * g->dw; /* padded column of output column 0 */
        ptr[nt] = row + (pc % g->sw) * j->phase_len + pc / g->sw;
        w[nt++] = wk[ki * g->kw + kj];
        if (nt == QC_TAPS) {
          j->direct_taps(s, ptr, w, nt, acc);
          nt = 0;
        }
      }
    }
  }
  if (nt & 1) {
    ptr[nt] = ptr[nt - 1];
    w[nt++] = 0;
  }
  if (nt) j->direct_taps(s, ptr, w, nt, acc);
}

/* The direct path's view of one plane: the job and the widened input channels of the plane's group. */
typedef struct {
  const qconv_job *j;
  const int16_t *xg;
} qconv_plane;

/* One row segment: bias, the taps, requantisation. */
static void direct_row(const void *arg, const ri__conv_seg *s) {
  const qconv_plane *pv = arg;
  const qconv_job *j = pv->j;
  int32_t acc[RI__CONV_SEG_MAX];
  const int32_t b0 = j->bias ? j->bias[s->oc] : 0;
  for (int64_t i = 0; i < s->c1 - s->c0; i++)
    acc[i] = b0;
  direct_seg(j, pv->xg, s, acc);
  ri__qconv_store(j, (s->t * j->geo.oh + s->oy) * j->geo.ow + s->c0, s->oc, acc, 0, s->c1 - s->c0);
}

/* One output plane (image, output channel) per index: the depthwise-like path. Each plane widens the input
 * channels of its group into a buffer of the task (in cache while its rows are computed, instead of one
 * pass over the whole widened input), then runs its rows in segments of at most RI__CONV_SEG_MAX output
 * pixels with int32 sums on the stack. */
static void direct_planes(void *arg, int64_t begin, int64_t end) {
  const qconv_job *j = arg;
  const ri__conv_geom *g = &j->geo;
  const int64_t rows = g->cg * g->h;
  /* the vector loads run up to 15 columns past the end of a row: a tail of 32 zeros */
  int16_t *buf = ri__malloc(((size_t)(rows * j->row_len) + 32) * sizeof(int16_t));
  if (!buf) {
    __atomic_store_n((int *)&j->oom, 1, __ATOMIC_RELAXED);
    return;
  }
  memset(buf + rows * j->row_len, 0, 32 * sizeof(int16_t));
  const qconv_plane pv = {j, buf};
  for (int64_t t = begin; t < end; t++) {
    const int64_t n = t / g->m, grp = (t % g->m) / g->mg, r0 = (n * g->c + grp * g->cg) * g->h;
    ri__qconv_widen_rows(j, buf, r0, r0 + rows);
    ri__conv_for_segments(g, t, t + 1, direct_row, &pv);
  }
  ri__free(buf);
}

int ri__qconv_run_direct(qconv_job *j, ri__pool *pool) {
  j->direct_taps = taps_portable;
#if QC_X86
  if (__builtin_cpu_supports("avx2")) j->direct_taps = taps_avx2;
#endif
  j->oom = 0;
  ri__pool_for(pool, j->geo.batch * j->geo.m, 1, direct_planes, j);
  return j->oom ? -1 : 0;
}
