/* The fused inverted-residual block (k_irblock.cu): expand 1x1 -> depthwise 3x3 -> project 1x1 [+ residual]
 * in one kernel, the expanded tensor kept in shared memory, never written to global memory. Half NHWC data,
 * float accumulation on the tensor cores (mma.sync m16n8k16) for the two 1x1 convolutions, float FMAs for
 * the depthwise one. Without expansion (cin == 0) the kernel runs depthwise -> project on x itself.
 *
 * With E = the expanded tensor and D = the depthwise output, for every image b and output pixel (oy, ox):
 *     E[iy, ix, e] = half(act0(b1[e] + sum_c x[b, iy, ix, c] * w1[e][c]))    inside the image, 0 outside
 *     D[oy, ox, e] = half(act1(bd[e] + sum_ky,kx E[oy * s - pad_t + ky, ox * s - pad_l + kx, e] * wd[ky * 3 +
 * kx][e])) y[b, oy, ox, j] = half(act2(b2[j] + sum_e D[oy, ox, e] * w2[j][e] + res[b, oy, ox, j])) The
 * roundings to half are those of the unfused path (each convolution writes half); padding applies to E
 * (zero), as the depthwise convolution of the unfused path sees it. The result of an element depends only on
 * its image and its position: not on the batch size, the image's place in the batch or the tile shape (the
 * sums over channels run in the same order in every block: expanded channels are summed in groups of
 * chunks fixed by the channel count and `groups`, each group from zero, the groups' sums added in order).
 *
 * The C interface follows kernels.h: the launcher enqueues on the stream and returns the launch status. */
#ifndef RI_BACKEND_CUDA_IRBLOCK_H
#define RI_BACKEND_CUDA_IRBLOCK_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "backend/cuda/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Padding units of the prepared weights: expanded channels come in chunks of RI__CU_IRB_CE. */
#define RI__CU_IRB_CE 32

typedef struct {
  int n, ih, iw, oh, ow; /* images; input (= expanded) height and width; output height and width */
  int cin;               /* channels of x when expanding (a multiple of 8); 0: no expansion, x is E */
  int ce, cout;          /* expanded and output channels (multiples of 8) */
  int k1p, cep, cop;     /* weight row padding: cin rounded up to 16, ce up to RI__CU_IRB_CE, cout up to 16 */
  int stride, pad_t, pad_l; /* the depthwise 3x3: stride (1 or 2, both axes), top and left pads */
  int act[3];               /* activation codes of the expansion, the depthwise and the projection */
  float act_a[3], act_b[3];
  int sms;    /* the device's multiprocessor count: small grids take smaller tiles (results do not change) */
  int groups; /* the most groups the expanded channels' chunks are summed in, 1 .. 64 (0: 8); small grids
               * run a block per group, so more groups mean more, shorter blocks; changes the sums' order */
} ri__cu_irblock_args;

/* Prepared weights, zero in every padding position (device pointers, 16-byte aligned). */
typedef struct {
  const void *w1;  /* half [cep][k1p]: row e holds expanded channel e's weights (NULL without expansion) */
  const float *b1; /* float [cep] (NULL without expansion) */
  const float *wd; /* float [9][cep]: tap-major depthwise weights, rounded to half (fp16 engines' weights) */
  const float *bd; /* float [cep] */
  const void *w2;  /* half [cop][cep]: row j holds output channel j's weights */
  const float *b2; /* float [cop] */
} ri__cu_irblock_weights;

/* Dynamic shared memory in bytes that the largest tile of these arguments needs, or -1 when the kernel
 * does not run them (channel counts, strides, paddings, sizes beyond its limits). */
int64_t ri__cu_irblock_smem(const ri__cu_irblock_args *p);

/* x: half NHWC [n, ih, iw, cin] (or [n, ih, iw, ce] without expansion); res: half NHWC [n, oh, ow, cout] or
 * NULL; y: half NHWC [n, oh, ow, cout]. sk (may be NULL): the split resources of kernels.h; with them, a
 * grid of few tiles runs each group of expanded channels in its own block (same result). Returns
 * cudaErrorInvalidValue for unsupported arguments or misaligned pointers (x, res and y need 16 bytes). */
cudaError_t ri__cu_irblock(cudaStream_t s, const ri__cu_irblock_args *p, const void *x,
                           const ri__cu_irblock_weights *w, const void *res, void *y,
                           const ri__cu_splitk *sk);

#ifdef __cplusplus
}
#endif

#endif
