/* Expansion 1x1 -> depthwise 3x3 in one kernel (k_expdw.cu), the expanded tensor kept in shared memory, for
 * the large early blocks of inverted-residual networks at large batches, optionally with the projection 1x1
 * after them (cout), or without the expansion (noexp). Half NHWC data; the 1x1 convolutions on the tensor
 * cores (mma.sync m16n8k16, float accumulation), the depthwise convolution in float FMAs (or, with dwh, in
 * half FMAs as k_dwconv_h2.cu).
 *
 * With E the expanded tensor, for every image b and output pixel (oy, ox):
 *     E[iy, ix, e] = half(act0(sum_c x[b, iy, ix, c] * w1[e][c] + b1[e]))   inside the image, +0 outside
 *     y[b, oy, ox, e] = half(act1(bd[e] + sum_ky,kx E[oy * s - pad_t + ky, ox * s - pad_l + kx, e] * wd[ky *
 * 3
 *                       + kx][e]))
 * computed exactly as the unfused kernels compute them, so the result is the unfused path's bit for bit:
 *  - the expansion as the pointwise kernels (k_pwconv.cu, k_pwconv_bulk.cu, k_convgemm.cu): float
 *    accumulators from +0, the k16 steps of the cin channels zero-padded to 16 in order, then the all-zero
 *    k16 step when `zstep` (the tiled kernel's, issued when cin % 32 is 1 .. 16), then + b1, then ReLU / clip
 *    as fminf(fmaxf(v, lo), hi) (other activations through ri_act), one rounding to half;
 *  - the depthwise convolution as its NHWC kernels (k_dwconv.cu, k_dwconv_smem.cu): float bd, then the 9
 *    taps in the order ky, kx as __fmaf_rn(E, wd, acc) (outside the image E = +0), the activation as there
 *    (clip: v > b ? b : v, then v < a ? a : that), one rounding to half.
 * With a projection (cout > 0), D (rounded to half as above) is not written; instead
 *     y[b, oy, ox, j] = half(act2(sum_e D[oy, ox, e] * w2[j][e] + b2[j] + res[b, oy, ox, j]))
 * as the pointwise kernels compute it: float accumulators from +0, the k16 steps of the ce channels in
 * order, the all-zero k16 step when ce % 32 is 1 .. 16, then + b2, then + the residual (half to float), then
 * the activation as the expansion's, one rounding to half.
 * Without the expansion (noexp 1): the depthwise input is x itself (E = x inside the image, +0 outside;
 * cin == ce), for a depthwise convolution and its projection (MobileNet v2's first block, whose depthwise
 * reads the stem's output); D and P as above, so the result is the unfused depthwise kernel's (followed by
 * the unfused projection's) bit for bit.
 * With dwh 1 (half accumulation, ri_builder_set_half_accumulation) the depthwise convolution is
 * k_dwconv_h2.cu's (ri__cu_dwconv_h2) instead, on the same half E (+0 outside the image, with noexp too): acc
 * = half(bd[e]); for ky = 0..2, kx = 0..2: acc = __hfma2(E[...], half(wd[ky * 3 + kx][e]), acc) (one rounding
 * to half per tap; wd holds half values, so half(wd) is exact), then ReLU as __hmax2(acc, 0) or clip as
 * __hmin2_nan(__hmax2_nan(acc, half(a)), half(b)), D = acc as is; so with dwh the result is the unfused chain
 * expansion -> ri__cu_dwconv_h2 (-> projection) bit for bit. The expansion, the projection and their
 * epilogues are unchanged. A result depends only on its image and position, never on the batch, the tile or
 * the grid.
 *
 * The C interface follows kernels.h: the launcher enqueues on the stream and returns the launch status. */
#ifndef RI_BACKEND_CUDA_EXPDW_H
#define RI_BACKEND_CUDA_EXPDW_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "backend/cuda/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int n, ih, iw, oh, ow;    /* images; input (= expanded) height and width; output height and width */
  int cin;                  /* channels of x: a multiple of 8, at most RI__CU_EXPDW_MAX_CIN */
  int ce;                   /* expanded (= output) channels: a multiple of 16 */
  int k1p;                  /* w1's row length: cin rounded up to 16 */
  int stride, pad_t, pad_l; /* the depthwise 3x3: stride 1 or 2 (both axes), top and left pads 0 .. 2 */
  int zstep;                /* 1: the expansion's all-zero k16 step (see above) */
  int act[3]; /* activation codes (graph/ir.h's RI__ACT_*) of the expansion, the depthwise and the projection:
               * none, ReLU or clip only */
  float act_a[3], act_b[3];
  int cout;  /* 0: no projection, y is the depthwise output D; else the projection's output channels (a
              * multiple of 8, at most RI__CU_EXPDW_MAX_COUT): y = P below */
  int noexp; /* 1: no expansion, E = x: cin == ce (at most RI__CU_EXPDW_MAX_CIN), k1p, zstep and act[0] 0,
              * w1 and b1 unused (may be NULL); 0: the expansion as above */
  int dwh;   /* 1: the depthwise convolution in half arithmetic (below; half-accumulation engines); 0: in
              * float as above */
} ri__cu_expdw_args;

#define RI__CU_EXPDW_MAX_CIN  64
#define RI__CU_EXPDW_MAX_COUT 64
/* The activation codes the kernel takes (graph/ir.h's RI__ACT_NONE, RI__ACT_RELU, RI__ACT_CLIP). */
#define RI__CU_EXPDW_ACT_NONE 0
#define RI__CU_EXPDW_ACT_RELU 1
#define RI__CU_EXPDW_ACT_CLIP 2

/* Weights, zero in every padding position (device pointers, 16-byte aligned). */
typedef struct {
  const void *w1;  /* half [ce][k1p]: row e holds expanded channel e's weights (unused with noexp) */
  const float *b1; /* float [ce] (unused with noexp) */
  const float *wd; /* float [9][ce]: tap-major depthwise weights holding their half-rounded values */
  const float *bd; /* float [ce] */
  const void *w2;  /* with a projection: half [cout][ce], row j holds output channel j's weights */
  const float *b2; /* with a projection: float [cout] */
} ri__cu_expdw_weights;

/* 1 when the kernel runs these arguments (channel counts, stride, pads, sizes within its limits), else 0. */
int ri__cu_expdw_supported(const ri__cu_expdw_args *p);

/* x: half NHWC [n, ih, iw, cin]; y: half NHWC [n, oh, ow, ce] (p->cout 0) or [n, oh, ow, cout]; res (only
 * with a projection; may be NULL): half NHWC [n, oh, ow, cout], added as below; x, y and res 16-byte
 * aligned, y overlapping neither x nor (except exactly, element for element) res. Returns
 * cudaErrorInvalidValue for unsupported arguments or misaligned pointers. */
cudaError_t ri__cu_expdw(cudaStream_t s, const ri__cu_expdw_args *p, const void *x,
                         const ri__cu_expdw_weights *w, const void *res, void *y);

#ifdef __cplusplus
}
#endif

#endif
