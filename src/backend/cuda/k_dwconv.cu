/* Depthwise 2-D convolution (group == channels, one filter per channel) with bias and activation fused,
 * NCHW or NHWC, float or half data with float accumulation. One thread per output element; in NHWC
 * consecutive threads take consecutive channels so that loads and stores coalesce. The kernel size is a
 * template parameter for 3x3 (unrolled taps) and a runtime value otherwise. */
#include <type_traits>

#include "backend/cuda/cu_common.cuh"

template <typename T, int KH, int KW, bool NHWC, int ACT, typename I>
__global__ void dw_kernel(ri__cu_dwconv_args p, I total, const T *x, const T *w, const float *bias, T *y) {
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

#define DW_LAUNCH(A) dw_kernel<T, K, K, NHWC, A, I><<<g, RI_CU_THREADS, 0, s>>>(*p, (I)total, x, w, b, y)

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
  dw_h2_kernel<K, A><<<g, RI_CU_THREADS, 0, s>>>(*p, (int32_t)(total / 2), (const __half2 *)x,               \
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
            acc[o][2 * e] += xf.x * wf.x;
            acc[o][2 * e + 1] += xf.y * wf.y;
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
  dw3_h8_kernel<S, R><<<ri_cu_blocks(total, 128), 128, 0, s>>>(*p, (int32_t)total, (const uint4 *)x,
                                                               (const uint4 *)w, b, (uint4 *)y);
}

/* NHWC float, 3x3, dilation 1, channel count a multiple of 4: the half kernel above with one float4 (4
 * channels) per thread instead of 8 halves. Each output is bias + the 9 taps in the order ky, kx, as in
 * dw_kernel, so both give the same bits. */
template <int S, int R>
__global__ void __launch_bounds__(128) dw3_f4_kernel(ri__cu_dwconv_args p, int32_t total, const float4 *x,
                                                     const float4 *w, const float *bias, float4 *y) {
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
          acc[o][0] += xv.x * wt.x;
          acc[o][1] += xv.y * wt.y;
          acc[o][2] += xv.z * wt.z;
          acc[o][3] += xv.w * wt.w;
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
  dw3_f4_kernel<S, R><<<ri_cu_blocks(total, 128), 128, 0, s>>>(*p, (int32_t)total, (const float4 *)x,
                                                               (const float4 *)w, b, (float4 *)y);
}

template <typename T, int K, bool NHWC>
static void launch_k(cudaStream_t s, const ri__cu_dwconv_args *p, int64_t total, const T *x, const T *w,
                     const float *b, T *y) {
  const bool small = total <= RI_CU_INDEX32_MAX && p->n * p->c * p->ih * p->iw <= RI_CU_INDEX32_MAX;
  if (std::is_same<T, __half>::value && NHWC && small && K == 3 && p->c % 8 == 0 && p->dh == 1 &&
      p->dw == 1 && p->sh == p->sw && (p->sh == 1 || p->sh == 2) && (uintptr_t)x % 16 == 0 &&
      (uintptr_t)w % 16 == 0 && (uintptr_t)y % 16 == 0) {
    if (p->sh == 1)
      launch_h8<1>(s, p, x, w, b, y);
    else
      launch_h8<2>(s, p, x, w, b, y);
    return;
  }
  if (std::is_same<T, float>::value && NHWC && small && K == 3 && p->c % 4 == 0 && p->dh == 1 && p->dw == 1 &&
      p->sh == p->sw && (p->sh == 1 || p->sh == 2) && (uintptr_t)x % 16 == 0 && (uintptr_t)w % 16 == 0 &&
      (uintptr_t)y % 16 == 0 && (uintptr_t)b % 16 == 0) {
    if (p->sh == 1)
      launch_f4<1>(s, p, x, w, b, y);
    else
      launch_f4<2>(s, p, x, w, b, y);
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
static cudaError_t launch(cudaStream_t s, const ri__cu_dwconv_args *p, const void *xv, const void *wv,
                          const float *b, void *yv) {
  int64_t total = p->n * p->c * p->oh * p->ow;
  if (total <= 0) return cudaSuccess;
  const T *x = (const T *)xv, *w = (const T *)wv;
  T *y = (T *)yv;
  bool k3 = p->kh == 3 && p->kw == 3;
  if (p->nhwc) {
    if (k3)
      launch_k<T, 3, true>(s, p, total, x, w, b, y);
    else
      launch_k<T, 0, true>(s, p, total, x, w, b, y);
  } else {
    if (k3)
      launch_k<T, 3, false>(s, p, total, x, w, b, y);
    else
      launch_k<T, 0, false>(s, p, total, x, w, b, y);
  }
  return ri_cu_launched();
}

extern "C" cudaError_t ri__cu_dwconv(cudaStream_t s, ri_dtype dt, const ri__cu_dwconv_args *p, const void *x,
                                     const void *w, const float *bias, void *y) {
  if (p->kh < 1 || p->kw < 1 || p->kh > 7 || p->kw > 7 || p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1)
    return cudaErrorInvalidValue;
  if (dt == RI_DTYPE_FLOAT32) return launch<float>(s, p, x, w, bias, y);
  if (dt == RI_DTYPE_FLOAT16) return launch<__half>(s, p, x, w, bias, y);
  return cudaErrorInvalidValue;
}
