/* Depthwise 2-D convolution (group == channels, one filter per channel) with bias and activation fused,
 * NCHW or NHWC, float or half data with float accumulation. One thread per output element; in NHWC
 * consecutive threads take consecutive channels so that loads and stores coalesce. The kernel size is a
 * template parameter for 3x3 (unrolled taps) and a runtime value otherwise. NHWC 3x3 layers with channels
 * in 16-byte vectors take vector kernels: variant 0 (dw3_h8_kernel, dw3_f4_kernel) and the variants
 * 1 .. RI__CU_DW_SMEM_FIRST - 1 (dw3_strip_kernel) and, for half with C % 16 == 0, RI__CU_DW_SMEM_FIRST ..
 * RI__CU_DW_VARIANTS - 1 (dw3_smem_kernel, k_dwconv_smem.cu) that the tuner may choose per node and batch
 * bucket; all give the same bits (see dw3_strip_kernel and k_dwconv_smem.cu). */
#include <type_traits>

#include "backend/cuda/cu_common.cuh"

template <typename T, int KH, int KW, bool NHWC, int ACT, typename I>
__global__ void dw_kernel(ri__cu_dwconv_args p, I total, const T *x, const T *w, const float *bias, T *y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  const int kh = KH > 0 ? KH : p.kh, kw = KW > 0 ? KW : p.kw;
  const I c = (I)p.c, ih = (I)p.ih, iw = (I)p.iw, oh = (I)p.oh, ow = (I)p.ow;
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (I)gridDim.x * blockDim.x) {
    I b, ch, oy, ox, r = i;
    if (NHWC) {
      ch = r % c;
      r /= c;
      ox = r % ow;
      r /= ow;
      oy = r % oh;
      b = r / oh;
    } else {
      ox = r % ow;
      r /= ow;
      oy = r % oh;
      r /= oh;
      ch = r % c;
      b = r / c;
    }
    I y0 = oy * (I)p.sh - (I)p.pad_t, x0 = ox * (I)p.sw - (I)p.pad_l;
    float acc = bias ? bias[ch] : 0.f;
#pragma unroll
    for (int ky = 0; ky < kh; ky++) {
      I iy = y0 + (I)ky * (I)p.dh;
      if (iy < 0 || iy >= ih) continue;
#pragma unroll
      for (int kx = 0; kx < kw; kx++) {
        I ix = x0 + (I)kx * (I)p.dw;
        if (ix < 0 || ix >= iw) continue;
        float xv, wv;
        if (NHWC) {
          xv = ri_ld(x, ((b * ih + iy) * iw + ix) * c + ch);
          wv = ri_ld(w, ((I)ky * kw + kx) * c + ch);
        } else {
          xv = ri_ld(x, ((b * c + ch) * ih + iy) * iw + ix);
          wv = ri_ld(w, (ch * kh + ky) * kw + kx);
        }
        acc += xv * wv;
      }
    }
    ri_st(y, i, ri_act(ACT, p.act_a, p.act_b, acc));
  }
}

#define DW_LAUNCH(A)                                                                                         \
  ri_cu_launch(dw_kernel<T, K, K, NHWC, A, I>, g, RI_CU_THREADS, 0, s, *p, (I)total, x, w, b, y)

template <typename T, int K, bool NHWC, typename I>
static void launch_act(cudaStream_t s, const ri__cu_dwconv_args *p, int64_t total, const T *x, const T *w,
                       const float *b, T *y) {
  unsigned g = ri_cu_blocks(total);
  switch (p->act) {
  case RI_CU_ACT_RELU: DW_LAUNCH(RI_CU_ACT_RELU); break;
  case RI_CU_ACT_CLIP: DW_LAUNCH(RI_CU_ACT_CLIP); break;
  case RI_CU_ACT_LEAKY: DW_LAUNCH(RI_CU_ACT_LEAKY); break;
  case RI_CU_ACT_SIGMOID: DW_LAUNCH(RI_CU_ACT_SIGMOID); break;
  case RI_CU_ACT_HSIG: DW_LAUNCH(RI_CU_ACT_HSIG); break;
  case RI_CU_ACT_HSWISH: DW_LAUNCH(RI_CU_ACT_HSWISH); break;
  default: DW_LAUNCH(RI_CU_ACT_NONE); break;
  }
}

/* NHWC half with an even channel count: two channels per thread through __half2, int32 indexing. */
template <int K, int ACT>
__global__ void dw_h2_kernel(ri__cu_dwconv_args p, int32_t total2, const __half2 *x, const __half2 *w,
                             const float *bias, __half2 *y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  const int kh = K > 0 ? K : p.kh, kw = K > 0 ? K : p.kw;
  const int32_t c2 = (int32_t)(p.c / 2), ih = (int32_t)p.ih, iw = (int32_t)p.iw, oh = (int32_t)p.oh,
                ow = (int32_t)p.ow;
  for (int32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total2; i += gridDim.x * blockDim.x) {
    int32_t r = i, ch = r % c2;
    r /= c2;
    int32_t ox = r % ow;
    r /= ow;
    int32_t oy = r % oh, b = r / oh;
    int32_t y0 = oy * p.sh - p.pad_t, x0 = ox * p.sw - p.pad_l;
    float2 acc = bias ? make_float2(bias[2 * ch], bias[2 * ch + 1]) : make_float2(0.f, 0.f);
#pragma unroll
    for (int ky = 0; ky < kh; ky++) {
      int32_t iy = y0 + ky * p.dh;
      if (iy < 0 || iy >= ih) continue;
#pragma unroll
      for (int kx = 0; kx < kw; kx++) {
        int32_t ix = x0 + kx * p.dw;
        if (ix < 0 || ix >= iw) continue;
        float2 xv = __half22float2(x[((b * ih + iy) * iw + ix) * c2 + ch]);
        float2 wv = __half22float2(w[(ky * kw + kx) * c2 + ch]);
        acc.x += xv.x * wv.x;
        acc.y += xv.y * wv.y;
      }
    }
    y[i] = __floats2half2_rn(ri_act(ACT, p.act_a, p.act_b, acc.x), ri_act(ACT, p.act_a, p.act_b, acc.y));
  }
}

#define DW_H2_LAUNCH(A)                                                                                      \
  ri_cu_launch(dw_h2_kernel<K, A>, g, RI_CU_THREADS, 0, s, *p, (int32_t)(total / 2), (const __half2 *)x,     \
               (const __half2 *)w, b, (__half2 *)y)

template <int K>
static void launch_h2(cudaStream_t s, const ri__cu_dwconv_args *p, int64_t total, const void *x,
                      const void *w, const float *b, void *y) {
  unsigned g = ri_cu_blocks(total / 2);
  switch (p->act) {
  case RI_CU_ACT_RELU: DW_H2_LAUNCH(RI_CU_ACT_RELU); break;
  case RI_CU_ACT_CLIP: DW_H2_LAUNCH(RI_CU_ACT_CLIP); break;
  case RI_CU_ACT_LEAKY: DW_H2_LAUNCH(RI_CU_ACT_LEAKY); break;
  case RI_CU_ACT_SIGMOID: DW_H2_LAUNCH(RI_CU_ACT_SIGMOID); break;
  case RI_CU_ACT_HSIG: DW_H2_LAUNCH(RI_CU_ACT_HSIG); break;
  case RI_CU_ACT_HSWISH: DW_H2_LAUNCH(RI_CU_ACT_HSWISH); break;
  default: DW_H2_LAUNCH(RI_CU_ACT_NONE); break;
  }
}

/* NHWC half, 3x3, dilation 1, channel count a multiple of 8: a thread computes 8 channels (one 16-byte
 * vector) of R consecutive output pixels of one row. All 3 x ((R - 1) * S + 3) input vectors it needs are
 * loaded before any arithmetic (zero outside the input), so that a thread has them all in flight at once.
 * Accumulation in float; the activation is applied after the switch on its code, outside the loops. */
template <int S, int R>
__global__ void __launch_bounds__(128) dw3_h8_kernel(ri__cu_dwconv_args p, int32_t total, const uint4 *x,
                                                     const uint4 *w, const float *bias, uint4 *y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  constexpr int WIN = (R - 1) * S + 3;
  const int32_t c8 = (int32_t)(p.c / 8), ih = (int32_t)p.ih, iw = (int32_t)p.iw, oh = (int32_t)p.oh,
                ow = (int32_t)p.ow, xt_n = (ow + R - 1) / R;
  for (int32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    int32_t r = i, cg = r % c8;
    r /= c8;
    int32_t xt = r % xt_n;
    r /= xt_n;
    int32_t oy = r % oh, b = r / oh;
    int32_t ox0 = xt * R, ix0 = ox0 * S - p.pad_l, iy0 = oy * S - p.pad_t;
    uint4 xin[3][WIN], wv[9];
#pragma unroll
    for (int ky = 0; ky < 3; ky++) {
      const int32_t iy = iy0 + ky;
      const bool row_ok = iy >= 0 && iy < ih;
      const uint4 *row = x + ((b * ih + (row_ok ? iy : 0)) * iw) * c8 + cg;
#pragma unroll
      for (int j = 0; j < WIN; j++) {
        const int32_t ix = ix0 + j;
        xin[ky][j] = row_ok && ix >= 0 && ix < iw ? row[ix * c8] : make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int t = 0; t < 9; t++)
      wv[t] = w[t * c8 + cg];
    float acc[R][8];
#pragma unroll
    for (int e = 0; e < 8; e++) {
      float bv = bias ? bias[cg * 8 + e] : 0.f;
#pragma unroll
      for (int o = 0; o < R; o++)
        acc[o][e] = bv;
    }
#pragma unroll
    for (int ky = 0; ky < 3; ky++)
#pragma unroll
      for (int j = 0; j < WIN; j++) {
        const __half2 *xh = (const __half2 *)&xin[ky][j];
#pragma unroll
        for (int kx = 0; kx < 3; kx++) {
          if ((j - kx) % S != 0 || j - kx < 0 || (j - kx) / S >= R) continue;
          const int o = (j - kx) / S;
          const __half2 *wh = (const __half2 *)&wv[ky * 3 + kx];
#pragma unroll
          for (int e = 0; e < 4; e++) {
            float2 xf = __half22float2(xh[e]), wf = __half22float2(wh[e]);
            acc[o][2 * e] = __fmaf_rn(xf.x, wf.x, acc[o][2 * e]);
            acc[o][2 * e + 1] = __fmaf_rn(xf.y, wf.y, acc[o][2 * e + 1]);
          }
        }
      }
    if (p.act == RI_CU_ACT_CLIP) {
#pragma unroll
      for (int o = 0; o < R; o++)
#pragma unroll
        for (int e = 0; e < 8; e++)
          acc[o][e] = acc[o][e] < p.act_a ? p.act_a : (acc[o][e] > p.act_b ? p.act_b : acc[o][e]);
    } else if (p.act == RI_CU_ACT_RELU) {
#pragma unroll
      for (int o = 0; o < R; o++)
#pragma unroll
        for (int e = 0; e < 8; e++)
          acc[o][e] = acc[o][e] > 0.f ? acc[o][e] : 0.f;
    } else if (p.act != RI_CU_ACT_NONE) {
#pragma unroll
      for (int o = 0; o < R; o++)
#pragma unroll
        for (int e = 0; e < 8; e++)
          acc[o][e] = ri_act(p.act, p.act_a, p.act_b, acc[o][e]);
    }
#pragma unroll
    for (int o = 0; o < R; o++) {
      if (ox0 + o >= ow) break;
      uint4 out;
      __half2 *oh2 = (__half2 *)&out;
#pragma unroll
      for (int e = 0; e < 4; e++)
        oh2[e] = __floats2half2_rn(acc[o][2 * e], acc[o][2 * e + 1]);
      y[((b * oh + oy) * ow + ox0 + o) * c8 + cg] = out;
    }
  }
}

template <int S>
static void launch_h8(cudaStream_t s, const ri__cu_dwconv_args *p, const void *x, const void *w,
                      const float *b, void *y) {
  constexpr int R = S == 1 ? 4 : 2;
  int64_t total = p->n * p->oh * ((p->ow + R - 1) / R) * (p->c / 8);
  ri_cu_launch(dw3_h8_kernel<S, R>, ri_cu_blocks(total, 128), 128, 0, s, *p, (int32_t)total, (const uint4 *)x,
               (const uint4 *)w, b, (uint4 *)y);
}

/* NHWC float, 3x3, dilation 1, channel count a multiple of 4: the half kernel above with one float4 (4
 * channels) per thread instead of 8 halves. Each output is bias + the 9 taps in the order ky, kx, as in
 * dw_kernel, so both give the same bits. */
template <int S, int R>
__global__ void __launch_bounds__(128) dw3_f4_kernel(ri__cu_dwconv_args p, int32_t total, const float4 *x,
                                                     const float4 *w, const float *bias, float4 *y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  constexpr int WIN = (R - 1) * S + 3;
  const int32_t c4 = (int32_t)(p.c / 4), ih = (int32_t)p.ih, iw = (int32_t)p.iw, oh = (int32_t)p.oh,
                ow = (int32_t)p.ow, xt_n = (ow + R - 1) / R;
  for (int32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    int32_t r = i, cg = r % c4;
    r /= c4;
    int32_t xt = r % xt_n;
    r /= xt_n;
    int32_t oy = r % oh, b = r / oh;
    int32_t ox0 = xt * R, ix0 = ox0 * S - p.pad_l, iy0 = oy * S - p.pad_t;
    float4 xin[3][WIN], wv[9];
    bool in[3][WIN];
#pragma unroll
    for (int ky = 0; ky < 3; ky++) {
      const int32_t iy = iy0 + ky;
      const bool row_ok = iy >= 0 && iy < ih;
      const float4 *row = x + ((b * ih + (row_ok ? iy : 0)) * iw) * c4 + cg;
#pragma unroll
      for (int j = 0; j < WIN; j++) {
        const int32_t ix = ix0 + j;
        in[ky][j] = row_ok && ix >= 0 && ix < iw;
        xin[ky][j] = in[ky][j] ? __ldg(&row[ix * c4]) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
    }
#pragma unroll
    for (int t = 0; t < 9; t++)
      wv[t] = __ldg(&w[t * c4 + cg]);
    float acc[R][4];
    const float4 bv = bias ? __ldg((const float4 *)bias + cg) : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int o = 0; o < R; o++)
      acc[o][0] = bv.x, acc[o][1] = bv.y, acc[o][2] = bv.z, acc[o][3] = bv.w;
      /* Taps outside the input are skipped (not added as zeros), as dw_kernel does. */
#pragma unroll
    for (int ky = 0; ky < 3; ky++)
#pragma unroll
      for (int o = 0; o < R; o++)
#pragma unroll
        for (int kx = 0; kx < 3; kx++) {
          const int j = o * S + kx;
          if (!in[ky][j]) continue;
          const float4 xv = xin[ky][j], wt = wv[ky * 3 + kx];
          acc[o][0] = __fmaf_rn(xv.x, wt.x, acc[o][0]);
          acc[o][1] = __fmaf_rn(xv.y, wt.y, acc[o][1]);
          acc[o][2] = __fmaf_rn(xv.z, wt.z, acc[o][2]);
          acc[o][3] = __fmaf_rn(xv.w, wt.w, acc[o][3]);
        }
#pragma unroll
    for (int o = 0; o < R; o++) {
      if (ox0 + o >= ow) break;
      float4 out;
      out.x = ri_act(p.act, p.act_a, p.act_b, acc[o][0]);
      out.y = ri_act(p.act, p.act_a, p.act_b, acc[o][1]);
      out.z = ri_act(p.act, p.act_a, p.act_b, acc[o][2]);
      out.w = ri_act(p.act, p.act_a, p.act_b, acc[o][3]);
      y[((b * oh + oy) * ow + ox0 + o) * c4 + cg] = out;
    }
  }
}

template <int S>
static void launch_f4(cudaStream_t s, const ri__cu_dwconv_args *p, const void *x, const void *w,
                      const float *b, void *y) {
  constexpr int R = S == 1 ? 4 : 2;
  int64_t total = p->n * p->oh * ((p->ow + R - 1) / R) * (p->c / 4);
  ri_cu_launch(dw3_f4_kernel<S, R>, ri_cu_blocks(total, 128), 128, 0, s, *p, (int32_t)total,
               (const float4 *)x, (const float4 *)w, b, (float4 *)y);
}

/* Variants of the two vector kernels above, chosen per node and batch bucket by the tuner (cuda_tune.c,
 * tactic in cuda_tactics.h): a thread computes an RX x RY block of output pixels (RX along x, RY along y) of
 * one vector of channels. It walks the (RY - 1) * S + 3 input rows of the block from top to bottom, keeping
 * one row of (RX - 1) * S + 3 vectors in registers and issuing the loads of the next row before the FMAs of
 * the current one; each input row feeds every output row of the block that uses it, so a thread reads each
 * input vector of its block once (dw3_h8_kernel / dw3_f4_kernel read the three rows of every output row
 * anew: three reads of each input row at stride 1, from L2). An output row's accumulators start at the bias
 * with its first input row and are stored after its third.
 *
 * Bit-identity: every output is bias + the 9 taps in the order ky, kx, each tap one fmaf, then the
 * activation, exactly as in the kernel a variant replaces: half (V = uint4) adds the taps outside the input
 * as zeros like dw3_h8_kernel, float (V = float4) skips them like dw3_f4_kernel and dw_kernel. So every
 * variant of a node gives the same bits at every batch size, and a node may run different variants in
 * different batch buckets (tests/gpu/test_cuda_conv.c compares them bit for bit). */
template <typename V> struct dw_vec;
template <> struct dw_vec<uint4> {
  static constexpr int N = 8;
  static constexpr bool SKIP = false;
  static __device__ __forceinline__ void to_f(const uint4 &v, float f[8]) {
    const __half2 *h = (const __half2 *)&v;
#pragma unroll
    for (int e = 0; e < 4; e++) {
      float2 t = __half22float2(h[e]);
      f[2 * e] = t.x, f[2 * e + 1] = t.y;
    }
  }
  static __device__ __forceinline__ uint4 from_f(const float f[8]) {
    uint4 out;
    __half2 *h = (__half2 *)&out;
#pragma unroll
    for (int e = 0; e < 4; e++)
      h[e] = __floats2half2_rn(f[2 * e], f[2 * e + 1]);
    return out;
  }
  static __device__ __forceinline__ uint4 zero() { return make_uint4(0, 0, 0, 0); }
  static __device__ __forceinline__ void bias(const float *b, int32_t cg, float f[8]) {
#pragma unroll
    for (int e = 0; e < 8; e++)
      f[e] = b ? b[cg * 8 + e] : 0.f;
  }
};
template <> struct dw_vec<float4> {
  static constexpr int N = 4;
  static constexpr bool SKIP = true;
  static __device__ __forceinline__ void to_f(const float4 &v, float f[4]) {
    f[0] = v.x, f[1] = v.y, f[2] = v.z, f[3] = v.w;
  }
  static __device__ __forceinline__ float4 from_f(const float f[4]) {
    return make_float4(f[0], f[1], f[2], f[3]);
  }
  static __device__ __forceinline__ float4 zero() { return make_float4(0.f, 0.f, 0.f, 0.f); }
  static __device__ __forceinline__ void bias(const float *b, int32_t cg, float f[4]) {
    const float4 v = b ? __ldg((const float4 *)b + cg) : make_float4(0.f, 0.f, 0.f, 0.f);
    f[0] = v.x, f[1] = v.y, f[2] = v.z, f[3] = v.w;
  }
};

/* The activation of n values, its code switched on once (the same values as ri_act). */
template <int NV> __device__ __forceinline__ void dw_act_n(const ri__cu_dwconv_args &p, float *v) {
  if (p.act == RI_CU_ACT_CLIP) {
#pragma unroll
    for (int e = 0; e < NV; e++)
      v[e] = v[e] < p.act_a ? p.act_a : (v[e] > p.act_b ? p.act_b : v[e]);
  } else if (p.act == RI_CU_ACT_RELU) {
#pragma unroll
    for (int e = 0; e < NV; e++)
      v[e] = v[e] > 0.f ? v[e] : 0.f;
  } else if (p.act != RI_CU_ACT_NONE) {
#pragma unroll
    for (int e = 0; e < NV; e++)
      v[e] = ri_act(p.act, p.act_a, p.act_b, v[e]);
  }
}

template <typename V, int S, int RX, int RY>
__global__ void __launch_bounds__(128)
    dw3_strip_kernel(ri__cu_dwconv_args p, int32_t total, const V *x, const V *w, const float *bias, V *y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  using T = dw_vec<V>;
  constexpr int N = T::N, WIN = (RX - 1) * S + 3, ROWS = (RY - 1) * S + 3;
  const int32_t cn = (int32_t)(p.c / N), ih = (int32_t)p.ih, iw = (int32_t)p.iw, oh = (int32_t)p.oh,
                ow = (int32_t)p.ow, xt_n = (ow + RX - 1) / RX, yt_n = (oh + RY - 1) / RY;
  for (int32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    int32_t r = i, cg = r % cn;
    r /= cn;
    int32_t xt = r % xt_n;
    r /= xt_n;
    const int32_t yt = r % yt_n, b = r / yt_n;
    const int32_t ox0 = xt * RX, oy0 = yt * RY, ix0 = ox0 * S - p.pad_l, iy0 = oy0 * S - p.pad_t;
    V wv[9];
#pragma unroll
    for (int t = 0; t < 9; t++)
      wv[t] = __ldg(&w[t * cn + cg]);
    float bv[N];
    T::bias(bias, cg, bv);
    bool col_ok[WIN];
#pragma unroll
    for (int j = 0; j < WIN; j++)
      col_ok[j] = ix0 + j >= 0 && ix0 + j < iw;
    V cur[WIN], nxt[WIN];
    bool cur_ok = false, nxt_ok = false;
    float acc[RY][RX][N];
#pragma unroll
    for (int rr = 0; rr <= ROWS; rr++) {
      /* Step rr loads input row rr (rr < ROWS) and then accumulates row rr - 1 (rr > 0). */
      if (rr > 0) {
#pragma unroll
        for (int j = 0; j < WIN; j++)
          cur[j] = nxt[j];
        cur_ok = nxt_ok;
      }
      if (rr < ROWS) {
        const int32_t iy = iy0 + rr;
        nxt_ok = iy >= 0 && iy < ih;
        const V *row = x + ((b * ih + (nxt_ok ? iy : 0)) * iw + ix0) * cn + cg;
#pragma unroll
        for (int j = 0; j < WIN; j++)
          nxt[j] = nxt_ok && col_ok[j] ? __ldg(&row[j * cn]) : T::zero();
      }
      if (rr == 0) continue;
      const int ri = rr - 1;
#pragma unroll
      for (int o = 0; o < RY; o++) {
        const int ky = ri - o * S;
        if (ky < 0 || ky > 2) continue;
        if (ky == 0)
#pragma unroll
          for (int q = 0; q < RX; q++)
#pragma unroll
            for (int e = 0; e < N; e++)
              acc[o][q][e] = bv[e];
#pragma unroll
        for (int q = 0; q < RX; q++)
#pragma unroll
          for (int kx = 0; kx < 3; kx++) {
            const int j = q * S + kx;
            if (T::SKIP && !(cur_ok && col_ok[j])) continue;
            float xf[N], wf[N];
            T::to_f(cur[j], xf);
            T::to_f(wv[ky * 3 + kx], wf);
#pragma unroll
            for (int e = 0; e < N; e++)
              acc[o][q][e] = __fmaf_rn(xf[e], wf[e], acc[o][q][e]);
          }
        if (ky == 2 && oy0 + o < oh) {
          V *yrow = y + ((b * oh + oy0 + o) * ow + ox0) * cn + cg;
#pragma unroll
          for (int q = 0; q < RX; q++) {
            if (ox0 + q >= ow) break;
            dw_act_n<N>(p, acc[o][q]);
            yrow[q * cn] = T::from_f(acc[o][q]);
          }
        }
      }
    }
  }
}

template <typename V, int S, int RX, int RY>
static void launch_strip(cudaStream_t s, const ri__cu_dwconv_args *p, const void *x, const void *w,
                         const float *b, void *y) {
  const int64_t total = p->n * ((p->oh + RY - 1) / RY) * ((p->ow + RX - 1) / RX) * (p->c / dw_vec<V>::N);
  ri_cu_launch(dw3_strip_kernel<V, S, RX, RY>, ri_cu_blocks(total, 128), 128, 0, s, *p, (int32_t)total,
               (const V *)x, (const V *)w, b, (V *)y);
}

/* Variant v (1 .. RI__CU_DW_SMEM_FIRST - 1): the block of output pixels of a thread, RX x RY. Taller blocks
 * read fewer input rows per output row; wider and taller ones need more registers (fewer threads per SM).
 * Two more (2 x 8 and 1 x 8; stride 2: 1 x 8 and 4 x 1) were never chosen on the H200 (2026-11-27, SSD
 * MobileNet v2 at batches 1 to 256): their numbers went to the persistent shared-memory variants. */
template <typename V, int S>
static void launch_variant(cudaStream_t s, const ri__cu_dwconv_args *p, int v, const void *x, const void *w,
                           const float *b, void *y) {
  if constexpr (S == 1) {
    switch (v) {
    case 1: launch_strip<V, 1, 4, 2>(s, p, x, w, b, y); break;
    case 2: launch_strip<V, 1, 4, 4>(s, p, x, w, b, y); break;
    default: launch_strip<V, 1, 2, 4>(s, p, x, w, b, y); break;
    }
  } else {
    switch (v) {
    case 1: launch_strip<V, 2, 2, 2>(s, p, x, w, b, y); break;
    case 2: launch_strip<V, 2, 2, 4>(s, p, x, w, b, y); break;
    default: launch_strip<V, 2, 1, 4>(s, p, x, w, b, y); break;
    }
  }
}

/* 1 when the vector kernels (dw3_h8_kernel for half, dw3_f4_kernel for float, and their variants) take
 * this convolution: NHWC, 3x3, dilation 1, equal strides of 1 or 2, channels a multiple of the vector,
 * int32 offsets, 16-byte aligned pointers. */
template <typename T>
static bool vec_ok(const ri__cu_dwconv_args *p, int64_t total, const void *x, const void *w, const float *b,
                   const void *y) {
  const int nv = std::is_same<T, __half>::value ? 8 : 4;
  const bool small = total <= RI_CU_INDEX32_MAX && p->n * p->c * p->ih * p->iw <= RI_CU_INDEX32_MAX;
  return p->nhwc && small && p->kh == 3 && p->kw == 3 && p->c % nv == 0 && p->dh == 1 && p->dw == 1 &&
         p->sh == p->sw && (p->sh == 1 || p->sh == 2) && (uintptr_t)x % 16 == 0 && (uintptr_t)w % 16 == 0 &&
         (uintptr_t)y % 16 == 0 && (nv == 8 || (uintptr_t)b % 16 == 0);
}

template <typename T, int K, bool NHWC>
static void launch_k(cudaStream_t s, const ri__cu_dwconv_args *p, int variant, int64_t total, const T *x,
                     const T *w, const float *b, T *y) {
  const bool small = total <= RI_CU_INDEX32_MAX && p->n * p->c * p->ih * p->iw <= RI_CU_INDEX32_MAX;
  if (K == 3 && vec_ok<T>(p, total, x, w, b, y)) {
    using V = typename std::conditional<std::is_same<T, __half>::value, uint4, float4>::type;
    if (variant >= RI__CU_DW_SMEM_FIRST) {
      if (std::is_same<T, __half>::value && ri__cu_dwconv_smem_ok(p)) {
        ri__cu_dwconv_smem(s, p, variant, x, w, b, y);
        return;
      }
      variant = 0; /* does not apply here: variant 0, the same bits */
    }
    if (variant > 0 && p->sh == 1)
      launch_variant<V, 1>(s, p, variant, x, w, b, y);
    else if (variant > 0)
      launch_variant<V, 2>(s, p, variant, x, w, b, y);
    else if (std::is_same<T, __half>::value)
      p->sh == 1 ? launch_h8<1>(s, p, x, w, b, y) : launch_h8<2>(s, p, x, w, b, y);
    else
      p->sh == 1 ? launch_f4<1>(s, p, x, w, b, y) : launch_f4<2>(s, p, x, w, b, y);
    return;
  }
  if (std::is_same<T, __half>::value && NHWC && small && p->c % 2 == 0 && (uintptr_t)x % 4 == 0 &&
      (uintptr_t)w % 4 == 0 && (uintptr_t)y % 4 == 0) {
    launch_h2<K>(s, p, total, x, w, b, y);
    return;
  }
  /* int32 indexing when every output and input offset fits. */
  if (small)
    launch_act<T, K, NHWC, int32_t>(s, p, total, x, w, b, y);
  else
    launch_act<T, K, NHWC, int64_t>(s, p, total, x, w, b, y);
}

template <typename T>
static cudaError_t launch(cudaStream_t s, const ri__cu_dwconv_args *p, int variant, const void *xv,
                          const void *wv, const float *b, void *yv) {
  int64_t total = p->n * p->c * p->oh * p->ow;
  if (total <= 0) return cudaSuccess;
  const T *x = (const T *)xv, *w = (const T *)wv;
  T *y = (T *)yv;
  bool k3 = p->kh == 3 && p->kw == 3;
  if (p->nhwc) {
    if (k3)
      launch_k<T, 3, true>(s, p, variant, total, x, w, b, y);
    else
      launch_k<T, 0, true>(s, p, variant, total, x, w, b, y);
  } else {
    if (k3)
      launch_k<T, 3, false>(s, p, variant, total, x, w, b, y);
    else
      launch_k<T, 0, false>(s, p, variant, total, x, w, b, y);
  }
  return ri_cu_launched();
}

static bool args_ok(const ri__cu_dwconv_args *p) {
  return p->kh >= 1 && p->kw >= 1 && p->kh <= 7 && p->kw <= 7 && p->sh >= 1 && p->sw >= 1 && p->dh >= 1 &&
         p->dw >= 1;
}

extern "C" int ri__cu_dwconv_variants(ri_dtype dt, const ri__cu_dwconv_args *p) {
  if (!args_ok(p) || (dt != RI_DTYPE_FLOAT32 && dt != RI_DTYPE_FLOAT16)) return 1;
  /* pointers: the arena's and the constant blob's, 256-byte aligned (checked again at launch) */
  const void *al = (const void *)(uintptr_t)256;
  const int64_t total = p->n * p->c * p->oh * p->ow;
  const bool ok = dt == RI_DTYPE_FLOAT16 ? vec_ok<__half>(p, total, al, al, (const float *)al, al)
                                         : vec_ok<float>(p, total, al, al, (const float *)al, al);
  if (!ok) return 1;
  return dt == RI_DTYPE_FLOAT16 && ri__cu_dwconv_smem_ok(p) ? RI__CU_DW_VARIANTS : RI__CU_DW_SMEM_FIRST;
}

extern "C" cudaError_t ri__cu_dwconv_v(cudaStream_t s, ri_dtype dt, const ri__cu_dwconv_args *p, int variant,
                                       const void *x, const void *w, const float *bias, void *y) {
  if (!args_ok(p) || variant < 0 || variant >= RI__CU_DW_VARIANTS) return cudaErrorInvalidValue;
  if (dt == RI_DTYPE_FLOAT32) return launch<float>(s, p, variant, x, w, bias, y);
  if (dt == RI_DTYPE_FLOAT16) return launch<__half>(s, p, variant, x, w, bias, y);
  return cudaErrorInvalidValue;
}

extern "C" cudaError_t ri__cu_dwconv(cudaStream_t s, ri_dtype dt, const ri__cu_dwconv_args *p, const void *x,
                                     const void *w, const float *bias, void *y) {
  return ri__cu_dwconv_v(s, dt, p, 0, x, w, bias, y);
}
