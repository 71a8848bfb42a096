/* QLinearConv (qlinear_conv.c) and its depthwise-like direct path (qlinear_conv_direct.c): the job they
 * share. Internal to the two files. */
#ifndef RI_BACKEND_CPU_REF_QLINEAR_CONV_H
#define RI_BACKEND_CPU_REF_QLINEAR_CONV_H

#include <stdint.h>

#include "backend/cpu/ref/conv_geom.h"
#include "core/pool.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define QC_X86 1
#else
#define QC_X86 0
#endif

typedef struct qconv_job qconv_job;
struct qconv_job {
  const int16_t *x; /* [N, C, H, W], zero point removed */
  const int16_t *w; /* [M, Cg * kH * kW], zero point removed */
  const int32_t *bias;
  const float *scale; /* [M] */
  void *y;
  int y_signed;
  int32_t y_zp;
  float lo, hi; /* clamp bounds before adding the zero point */
  ri__conv_geom geo;
  int64_t image, group; /* im2col path: the (image, group) being computed */
  int64_t kp;           /* K rounded up to even */
  /* im2col path: the patches [KP / 2, OH * OW, 2], or with rows the input of the group [K, OH * OW] */
  const int16_t *col;
  int16_t *colbuf; /* the im2col buffer */
  int rows;        /* pointwise with an even K: the tiles read the widened input rows in place */
  const void *xq;  /* the quantized input and its zero point, for the widening pass */
  int x_signed;
  int32_t x_zp;
  /* Layout of the widened input: rows of row_len elements. The im2col path keeps the rows as they are
   * (phase_len 0, row_len = W). The direct path pads each row with zeros to pw = pl + W + pr columns and
   * splits it into sw phases of phase_len = ceil(pw / sw) elements (padded column pc at (pc % sw) *
   * phase_len + pc / sw), so that every tap reads contiguous memory; row_len = sw * phase_len. */
  int64_t row_len, phase_len;
  void (*store)(const qconv_job *j, int64_t idx, int64_t oc, const int32_t *acc, int32_t add, int64_t n);
  int oom; /* direct path: set (atomically) when a task cannot allocate its plane buffer */
  /* direct path: sums of a batch of taps, with AVX2 where the CPU has it */
  void (*direct_taps)(const ri__conv_seg *s, const int16_t *const *ptr, const int32_t *w, int nt,
                      int32_t *acc);
};

/* Requantises n consecutive outputs of channel oc: y[idx + i] from acc[i] + add (j->store). */
static inline void ri__qconv_store(const qconv_job *j, int64_t idx, int64_t oc, const int32_t *acc,
                                   int32_t add, int64_t n) {
  j->store(j, idx, oc, acc, add, n);
}

/* Widens input rows [begin, end) into d (row begin first), in the layout j->row_len / j->phase_len tell. */
void ri__qconv_widen_rows(const qconv_job *j, int16_t *d, int64_t begin, int64_t end);

/* The direct path over all output planes (groups of one output channel); 0, or -1 when a task could not
 * allocate its buffer. */
int ri__qconv_run_direct(qconv_job *j, ri__pool *pool);

#endif
