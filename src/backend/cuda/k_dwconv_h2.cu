/* Depthwise 3x3 convolution in half arithmetic (contract: ri__cu_dwconv_h2 in kernels.h), the kernel of
 * fp16 engines built with half accumulation (ri_builder_set_half_accumulation, cuda_op_conv.c; measured in
 * docs/performance.md, session 12).
 *
 * Why: k_dwconv.cu's half kernels convert every tap to float and sum with FFMA (load, HADD2.F32 / convert,
 * FFMA per tap and channel); at large batch they are issue-bound. Here the taps stay half2: per output pair
 * of channels 9 HFMA2, no conversion; a thread takes 8 channels (one 16-byte vector) of a strip of R output
 * pixels along x of one row and, for each of the 3 input rows, loads the (R - 1) * S + 3 input vectors of the
 * strip once, each feeding every tap and output of the strip that uses it (a register window), so a
 * stride-1 thread loads 3 * (R + 2) input vectors for R outputs instead of 9 R.
 *
 * Arithmetic, per output and channel: acc = half(bias) (round to nearest; 0 without bias), then for ky =
 * 0..2, kx = 0..2: acc = __hfma2(x, w, acc) (one rounding to half per tap; taps outside the input are added
 * as zeros: x = 0), then the activation on the half value, stored as is. Each output's order is fixed (it
 * does not depend on R, the thread's place in the strip or the batch), so an image gets the same bits alone
 * or in a batch and every R gives the same bits. The bits differ from k_dwconv.cu's (float accumulation, one
 * rounding): this is an arithmetic of its own, chosen per engine, never mixed with the float kernels' in a
 * node.
 *
 * Error: 10 roundings to half (the bias and 9 FMAs, unit roundoff u = 2^-11) bound the error by about
 * 10 u (|bias| + sum |x w|) plus the subnormal spacing; the tests (tests/gpu/test_cuda_dwh2.c) allow
 * 9 * 2^-10 (|bias| + sum |x w|) + 2^-20 against a double reference on the same half inputs. Partial sums
 * are half: one beyond 65504 becomes inf even where the float kernels' final value would be in range.
 *
 * Activation: none, ReLU (__hmax2 with 0: a NaN gives 0, as the float kernels' `v > 0 ? v : 0`) and clip
 * (__hmax2_nan / __hmin2_nan with the bounds rounded to half: a NaN stays NaN, as the float kernels' clip;
 * rounding is monotone, so clipping after rounding equals rounding after clipping).
 *
 * Limits (ri__cu_dwconv_h2_supported): NHWC, 3x3, dilation 1, equal strides 1 or 2, any top / left pads
 * (bottom / right follow from the sizes), channels a multiple of 8, int32 offsets, activation none / ReLU /
 * clip; at launch x, w and y 16-byte aligned (bias: 4-byte aligned floats). */
#include "backend/cuda/cu_common.cuh"

template <int S, int R>
__global__ void __launch_bounds__(128) dw3_hh_kernel(ri__cu_dwconv_args p, int32_t total, const uint4 *x,
                                                     const uint4 *w, const float *bias, uint4 *y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  constexpr int WIN = (R - 1) * S + 3;
  const int32_t c8 = (int32_t)(p.c / 8), ih = (int32_t)p.ih, iw = (int32_t)p.iw, oh = (int32_t)p.oh,
                ow = (int32_t)p.ow, xt_n = (ow + R - 1) / R;
  const __half2 zero = __float2half2_rn(0.f), lo = __float2half2_rn(p.act_a), hi = __float2half2_rn(p.act_b);
  for (int32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    int32_t r = i;
    const int32_t cg = r % c8;
    r /= c8;
    const int32_t xt = r % xt_n;
    r /= xt_n;
    const int32_t oy = r % oh, b = r / oh;
    const int32_t ox0 = xt * R, ix0 = ox0 * S - p.pad_l, iy0 = oy * S - p.pad_t;
    __half2 acc[R][4];
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const __half2 bv =
          bias ? __floats2half2_rn(__ldg(bias + cg * 8 + 2 * e), __ldg(bias + cg * 8 + 2 * e + 1)) : zero;
#pragma unroll
      for (int o = 0; o < R; o++)
        acc[o][e] = bv;
    }
#pragma unroll
    for (int ky = 0; ky < 3; ky++) {
      const int32_t iy = iy0 + ky;
      const bool row_ok = iy >= 0 && iy < ih;
      const uint4 *row = x + (b * ih + (row_ok ? iy : 0)) * iw * c8 + cg;
      uint4 xin[WIN], wk[3];
#pragma unroll
      for (int j = 0; j < WIN; j++) {
        const int32_t ix = ix0 + j;
        xin[j] = row_ok && ix >= 0 && ix < iw ? __ldg(row + ix * c8) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int kx = 0; kx < 3; kx++)
        wk[kx] = __ldg(w + (ky * 3 + kx) * c8 + cg);
        /* per output: this row's taps kx = 0..2 after the rows above (the order ky, kx) */
#pragma unroll
      for (int o = 0; o < R; o++)
#pragma unroll
        for (int kx = 0; kx < 3; kx++) {
          const __half2 *xh = (const __half2 *)&xin[o * S + kx], *wh = (const __half2 *)&wk[kx];
#pragma unroll
          for (int e = 0; e < 4; e++)
            acc[o][e] = __hfma2(xh[e], wh[e], acc[o][e]);
        }
    }
#pragma unroll
    for (int o = 0; o < R; o++) {
      if (ox0 + o >= ow) break;
      uint4 out;
      __half2 *oh2 = (__half2 *)&out;
#pragma unroll
      for (int e = 0; e < 4; e++) {
        __half2 v = acc[o][e];
        if (p.act == RI_CU_ACT_RELU)
          v = __hmax2(v, zero);
        else if (p.act == RI_CU_ACT_CLIP)
          v = __hmin2_nan(__hmax2_nan(v, lo), hi);
        oh2[e] = v;
      }
      y[((b * oh + oy) * ow + ox0 + o) * c8 + cg] = out;
    }
  }
}

template <int S, int R>
static void launch_hh(cudaStream_t s, const ri__cu_dwconv_args *p, const void *x, const void *w,
                      const float *b, void *y) {
  const int64_t total = p->n * p->oh * ((p->ow + R - 1) / R) * (p->c / 8);
  ri_cu_launch(dw3_hh_kernel<S, R>, ri_cu_blocks(total, 128), 128, 0, s, *p, (int32_t)total, (const uint4 *)x,
               (const uint4 *)w, b, (uint4 *)y);
}

extern "C" int ri__cu_dwconv_h2_supported(const ri__cu_dwconv_args *p) {
  const int64_t total = p->n * p->c * p->oh * p->ow, in = p->n * p->c * p->ih * p->iw;
  const bool act_ok = p->act == RI_CU_ACT_NONE || p->act == RI_CU_ACT_RELU || p->act == RI_CU_ACT_CLIP;
  return p->nhwc && p->kh == 3 && p->kw == 3 && p->dh == 1 && p->dw == 1 && p->sh == p->sw &&
         (p->sh == 1 || p->sh == 2) && p->c > 0 && p->c % 8 == 0 && p->n >= 0 && p->oh > 0 && p->ow > 0 &&
         p->ih > 0 && p->iw > 0 && total <= RI_CU_INDEX32_MAX && in <= RI_CU_INDEX32_MAX && act_ok;
}

extern "C" cudaError_t ri__cu_dwconv_h2(cudaStream_t s, const ri__cu_dwconv_args *p, int rx, const void *x,
                                        const void *w, const float *bias, void *y) {
  if (!ri__cu_dwconv_h2_supported(p) || (uintptr_t)x % 16 || (uintptr_t)w % 16 || (uintptr_t)y % 16 ||
      (uintptr_t)bias % 4)
    return cudaErrorInvalidValue;
  if (p->n == 0) return cudaSuccess;
  if (p->sh == 1) {
    switch (rx) {
    case 0:
    case 4: launch_hh<1, 4>(s, p, x, w, bias, y); break;
    case 2: launch_hh<1, 2>(s, p, x, w, bias, y); break;
    case 8: launch_hh<1, 8>(s, p, x, w, bias, y); break;
    default: return cudaErrorInvalidValue;
    }
  } else {
    switch (rx) {
    case 0:
    case 2: launch_hh<2, 2>(s, p, x, w, bias, y); break;
    case 1: launch_hh<2, 1>(s, p, x, w, bias, y); break;
    case 4: launch_hh<2, 4>(s, p, x, w, bias, y); break;
    default: return cudaErrorInvalidValue;
    }
  }
  return ri_cu_launched();
}
