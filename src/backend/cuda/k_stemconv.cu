/* Direct convolution for layers with few input channels (the RGB image of a network's first layer), where
 * an implicit GEMM would gather K = kh * kw * c (27 for 3x3 RGB) elements one by one: a thread computes
 * one output pixel for 32 output channels in float, reading the input (float or half, any layout through
 * strides: the caller's NCHW float32 image needs no conversion pass) and the weights from shared memory,
 * where every thread reads the same word at once (a broadcast). Output: half NHWC (fp16 engines) or float
 * NHWC (fp32 engines, y_f32) with bias and activation fused, stored as 16-byte vectors.
 *
 * Variants for the 3x3 RGB stem (k = 27, at most 32 output channels), chosen per node and batch bucket by
 * the tuner (cuda_tune.c): stem_c_kernel (1) takes the weights as a kernel parameter, so that each FMA
 * reads its weight as a constant-bank operand instead of a shared-memory load, and issues a pixel's 27
 * input loads before its FMAs; stem_r_kernel (2) gives each pixel 8 threads of 4 output channels, each
 * holding its 108 weights in registers for a grid-stride walk over the pixels, and stores 8 or 16
 * contiguous bytes per thread (a warp's 4 pixels are one contiguous run of the output).
 * Variant 3, the tensor-core kernel of k_stemconv_tc.cu, sums in another order (see there); variant 4
 * (k_stemconv_tcp.cu) gives variant 3's bits through a deeper load pipeline.
 * Bit-identity: every other variant computes each output as stem_kernel does, from 0 the taps in the order
 * ky, kx, ci, each one fmaf, the taps outside the input skipped, then + bias (+0 without one: the same bits,
 * as the sum starting from +0 is never -0) and the activation. */
#include "backend/cuda/cu_common.cuh"

namespace {

constexpr int THREADS = 128;
constexpr int MT = 32; /* output channels per block */

template <typename T, typename Y>
__global__ void __launch_bounds__(THREADS)
    stem_kernel(const ri__cu_stemconv_args p, const T *__restrict__ x, const float *__restrict__ w,
                const float *__restrict__ bias, Y *__restrict__ y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  __shared__ float ws[RI__CU_STEM_MAX_K * MT];
  const int j0 = blockIdx.y * MT;
  const int nj = p.m - j0 < MT ? p.m - j0 : MT;
  for (int i = threadIdx.x; i < p.k * MT; i += THREADS) {
    int kk = i / MT, j = i - kk * MT;
    ws[i] = j < nj ? w[(int64_t)kk * p.m + j0 + j] : 0.f;
  }
  __syncthreads();
  const int64_t M = (int64_t)p.n * p.oh * p.ow;
  /* Threads past the last pixel compute the last one again (float outputs are staged block-wide below). */
  const int64_t m_own = (int64_t)blockIdx.x * THREADS + threadIdx.x, m = m_own < M ? m_own : M - 1;
  const int ox = (int)(m % p.ow);
  const int64_t t = m / p.ow;
  const int oy = (int)(t % p.oh), b = (int)(t / p.oh);
  const T *xb = x + b * p.xs_n;
  float acc[MT];
#pragma unroll
  for (int j = 0; j < MT; j++)
    acc[j] = 0.f;
  int kk = 0;
  for (int ky = 0; ky < p.kh; ky++) {
    const int iy = oy * p.sh - p.pad_t + ky * p.dh;
    for (int kx = 0; kx < p.kw; kx++) {
      const int ix = ox * p.sw - p.pad_l + kx * p.dw;
      const bool in = iy >= 0 && iy < p.ih && ix >= 0 && ix < p.iw;
      for (int ci = 0; ci < p.c; ci++, kk++) {
        if (!in) continue;
        const float v = ri_ld(xb, ci * p.xs_c + iy * p.xs_h + ix * p.xs_w);
        const float *wr = &ws[kk * MT];
#pragma unroll
        for (int j = 0; j < MT; j++)
          acc[j] = __fmaf_rn(v, wr[j], acc[j]);
      }
    }
  }
  if constexpr (sizeof(Y) == 4) {
    /* float: the block's outputs go through shared memory, then out as float4s of consecutive channels
     * of consecutive pixels (a thread's own 32 channels would be 128-byte strided stores). */
    __shared__ __align__(16) float cs[THREADS][MT + 4];
#pragma unroll
    for (int j = 0; j < MT; j++)
      cs[threadIdx.x][j] = ri_act(p.act, p.act_a, p.act_b, acc[j] + (bias && j < nj ? bias[j0 + j] : 0.f));
    __syncthreads();
    const int64_t mb = (int64_t)blockIdx.x * THREADS;
    const bool vec4 = p.m % 4 == 0;
    for (int f = threadIdx.x; f < THREADS * (MT / 4); f += THREADS) {
      const int r = f / (MT / 4), c4 = (f % (MT / 4)) * 4;
      if (mb + r >= M || c4 >= nj) continue;
      const float4 v = *(const float4 *)&cs[r][c4];
      Y *yq = y + (mb + r) * p.m + j0 + c4;
      if (vec4 && c4 + 4 <= nj) {
        *(float4 *)yq = v;
      } else {
        const float e4[4] = {v.x, v.y, v.z, v.w};
        for (int e = 0; e < 4 && c4 + e < nj; e++)
          yq[e] = e4[e];
      }
    }
    return;
  }
  if (m_own >= M) return;
  Y *yp = y + m * p.m + j0;
  const bool vec = p.m % 8 == 0;
#pragma unroll
  for (int q = 0; q < MT / 8; q++) {
    if (q * 8 >= nj) break;
    float v[8];
#pragma unroll
    for (int e = 0; e < 8; e++) {
      int j = q * 8 + e;
      v[e] = ri_act(p.act, p.act_a, p.act_b, acc[j] + (bias && j < nj ? bias[j0 + j] : 0.f));
    }
    if (vec) {
      uint4 out;
      __half2 *oh = (__half2 *)&out;
#pragma unroll
      for (int e = 0; e < 4; e++)
        oh[e] = __floats2half2_rn(v[2 * e], v[2 * e + 1]);
      *(uint4 *)(yp + q * 8) = out;
    } else {
#pragma unroll
      for (int e = 0; e < 8; e++)
        if (q * 8 + e < nj) ri_st(yp, q * 8 + e, v[e]);
    }
  }
}

/* The block's outputs, act(acc[j] + b[j]) for the first m channels, of pixel m_own (skipped past the
 * last, M), stored as stem_kernel stores them: half NHWC as 16-byte vectors per thread, float NHWC staged
 * through shared memory into float4 runs. */
template <typename Y>
__device__ __forceinline__ void stem_store_32(const ri__cu_stemconv_args &p, const float *acc, const float *b,
                                              int64_t M, int64_t m_own, Y *__restrict__ y) {
  const int nj = p.m;
  if constexpr (sizeof(Y) == 4) {
    __shared__ __align__(16) float cs[THREADS][MT + 4];
#pragma unroll
    for (int j = 0; j < MT; j++)
      cs[threadIdx.x][j] = ri_act(p.act, p.act_a, p.act_b, acc[j] + b[j]);
    __syncthreads();
    const int64_t mb = (int64_t)blockIdx.x * THREADS;
    const bool vec4 = p.m % 4 == 0;
    for (int f = threadIdx.x; f < THREADS * (MT / 4); f += THREADS) {
      const int r = f / (MT / 4), c4 = (f % (MT / 4)) * 4;
      if (mb + r >= M || c4 >= nj) continue;
      const float4 v = *(const float4 *)&cs[r][c4];
      Y *yq = y + (mb + r) * p.m + c4;
      if (vec4 && c4 + 4 <= nj) {
        *(float4 *)yq = v;
      } else {
        const float e4[4] = {v.x, v.y, v.z, v.w};
        for (int e = 0; e < 4 && c4 + e < nj; e++)
          yq[e] = e4[e];
      }
    }
  } else {
    if (m_own >= M) return;
    Y *yp = y + m_own * p.m;
    const bool vec = p.m % 8 == 0;
#pragma unroll
    for (int q = 0; q < MT / 8; q++) {
      if (q * 8 >= nj) break;
      float v[8];
#pragma unroll
      for (int e = 0; e < 8; e++)
        v[e] = ri_act(p.act, p.act_a, p.act_b, acc[q * 8 + e] + b[q * 8 + e]);
      if (vec) {
        uint4 out;
        __half2 *oh = (__half2 *)&out;
#pragma unroll
        for (int e = 0; e < 4; e++)
          oh[e] = __floats2half2_rn(v[2 * e], v[2 * e + 1]);
        *(uint4 *)(yp + q * 8) = out;
      } else {
#pragma unroll
        for (int e = 0; e < 8; e++)
          if (q * 8 + e < nj) ri_st(yp, q * 8 + e, v[e]);
      }
    }
  }
}

/* The 27 inputs of pixel (b, oy, ox) of a 3x3 kernel over 3 channels in the order ky, kx, ci (0 outside
 * the input), and per tap whether it lies inside. */
template <typename T>
__device__ __forceinline__ void stem_gather_27(const ri__cu_stemconv_args &p, const T *__restrict__ x, int b,
                                               int oy, int ox, float xv[27], bool in[9]) {
  const T *xb = x + b * p.xs_n;
#pragma unroll
  for (int ky = 0; ky < 3; ky++) {
    const int iy = oy * p.sh - p.pad_t + ky * p.dh;
#pragma unroll
    for (int kx = 0; kx < 3; kx++) {
      const int ix = ox * p.sw - p.pad_l + kx * p.dw;
      const bool ok = iy >= 0 && iy < p.ih && ix >= 0 && ix < p.iw;
      in[ky * 3 + kx] = ok;
#pragma unroll
      for (int ci = 0; ci < 3; ci++)
        xv[(ky * 3 + kx) * 3 + ci] = ok ? ri_ld(xb, ci * p.xs_c + iy * p.xs_h + ix * p.xs_w) : 0.f;
    }
  }
}

/* Variant 1: weights and bias as a kernel parameter (hw.w[kk * 32 + j]), one pixel per thread. */
template <typename T, typename Y>
__global__ void __launch_bounds__(THREADS)
    stem_c_kernel(const ri__cu_stemconv_args p, const ri__cu_stem_host_weights hw, const T *__restrict__ x,
                  Y *__restrict__ y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  const int64_t M = (int64_t)p.n * p.oh * p.ow;
  const int64_t m_own = (int64_t)blockIdx.x * THREADS + threadIdx.x, m = m_own < M ? m_own : M - 1;
  const int ox = (int)(m % p.ow);
  const int64_t t = m / p.ow;
  const int oy = (int)(t % p.oh), b = (int)(t / p.oh);
  float xv[27];
  bool in[9];
  stem_gather_27(p, x, b, oy, ox, xv, in);
  float acc[MT];
#pragma unroll
  for (int j = 0; j < MT; j++)
    acc[j] = 0.f;
#pragma unroll
  for (int kk = 0; kk < 27; kk++) {
    if (!in[kk / 3]) continue;
#pragma unroll
    for (int j = 0; j < MT; j++)
      acc[j] = __fmaf_rn(xv[kk], hw.w[kk * MT + j], acc[j]);
  }
  stem_store_32(p, acc, hw.b, M, m_own, y);
}

/* Variant 2: 8 threads per pixel, 4 output channels each with their weights in registers, grid-stride over
 * the pixels; needs m % 4 == 0 (8-byte half / 16-byte float stores). */
constexpr int R_TPP = 8;
template <typename T, typename Y>
__global__ void __launch_bounds__(THREADS)
    stem_r_kernel(const ri__cu_stemconv_args p, const T *__restrict__ x, const float *__restrict__ w,
                  const float *__restrict__ bias, Y *__restrict__ y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  const int j0 = (threadIdx.x % R_TPP) * 4;
  const bool live = j0 < p.m;
  float wr[27][4], br[4];
#pragma unroll
  for (int kk = 0; kk < 27; kk++)
#pragma unroll
    for (int e = 0; e < 4; e++)
      wr[kk][e] = live ? __ldg(&w[kk * p.m + j0 + e]) : 0.f;
#pragma unroll
  for (int e = 0; e < 4; e++)
    br[e] = live && bias ? __ldg(&bias[j0 + e]) : 0.f;
  const int64_t M = (int64_t)p.n * p.oh * p.ow, step = (int64_t)gridDim.x * (THREADS / R_TPP);
  for (int64_t m = (int64_t)blockIdx.x * (THREADS / R_TPP) + threadIdx.x / R_TPP; m < M; m += step) {
    const int ox = (int)(m % p.ow);
    const int64_t t = m / p.ow;
    const int oy = (int)(t % p.oh), b = (int)(t / p.oh);
    float xv[27];
    bool in[9];
    stem_gather_27(p, x, b, oy, ox, xv, in);
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int kk = 0; kk < 27; kk++) {
      if (!in[kk / 3]) continue;
#pragma unroll
      for (int e = 0; e < 4; e++)
        acc[e] = __fmaf_rn(xv[kk], wr[kk][e], acc[e]);
    }
    if (!live) continue;
    float v[4];
#pragma unroll
    for (int e = 0; e < 4; e++)
      v[e] = ri_act(p.act, p.act_a, p.act_b, acc[e] + br[e]);
    Y *yp = y + m * p.m + j0;
    if constexpr (sizeof(Y) == 4) {
      *(float4 *)yp = make_float4(v[0], v[1], v[2], v[3]);
    } else {
      uint2 out;
      __half2 *oh = (__half2 *)&out;
      oh[0] = __floats2half2_rn(v[0], v[1]);
      oh[1] = __floats2half2_rn(v[2], v[3]);
      *(uint2 *)yp = out;
    }
  }
}

} // namespace

extern "C" int ri__cu_stemconv_supported(const ri__cu_stemconv_args *p) {
  return p->c >= 1 && p->kh >= 1 && p->kw >= 1 && p->k == p->kh * p->kw * p->c && p->k <= RI__CU_STEM_MAX_K &&
         p->m >= 1 && p->m <= 65535 * MT && p->sh >= 1 && p->sw >= 1 && p->dh >= 1 && p->dw >= 1 &&
         p->n >= 0 && p->act >= RI_CU_ACT_NONE && p->act <= RI_CU_ACT_HSWISH &&
         (int64_t)p->n * p->oh * p->ow <= (int64_t)INT32_MAX * THREADS;
}

extern "C" int ri__cu_stemconv_variant_applies(const ri__cu_stemconv_args *p, int v) {
  if (!ri__cu_stemconv_supported(p)) return 0;
  if (v == 0) return 1;
  if (p->kh != 3 || p->kw != 3 || p->c != 3 || p->m > RI__CU_STEM_VM) return 0;
  if (v == 1) return 1;
  if (v == 2) return p->m % 4 == 0;
  if (v == 3) return ri__cu_stemconv_tc_applies(p);
  return v == 4 && ri__cu_stemconv_tcp_applies(p);
}

extern "C" int ri__cu_stemconv_variants(const ri__cu_stemconv_args *p) {
  for (int v = RI__CU_STEM_VARIANTS - 1; v > 0; v--)
    if (ri__cu_stemconv_variant_applies(p, v)) return v + 1;
  return 1;
}

template <typename T, typename Y>
static void launch_variant(cudaStream_t s, const ri__cu_stemconv_args *p, int variant, const void *x,
                           const float *w, const float *bias, const ri__cu_stem_host_weights *hw, void *y) {
  const int64_t M = (int64_t)p->n * p->oh * p->ow;
  if (variant == 1 && hw) {
    ri_cu_launch(stem_c_kernel<T, Y>, (unsigned)((M + THREADS - 1) / THREADS), THREADS, 0, s, *p, *hw,
                 (const T *)x, (Y *)y);
  } else if (variant == 2) {
    int64_t blocks = (M + THREADS / R_TPP - 1) / (THREADS / R_TPP);
    if (blocks > 4096) blocks = 4096;
    ri_cu_launch(stem_r_kernel<T, Y>, (unsigned)blocks, THREADS, 0, s, *p, (const T *)x, w, bias, (Y *)y);
  } else {
    dim3 grid((unsigned)((M + THREADS - 1) / THREADS), (unsigned)((p->m + MT - 1) / MT));
    ri_cu_launch(stem_kernel<T, Y>, grid, THREADS, 0, s, *p, (const T *)x, w, bias, (Y *)y);
  }
}

extern "C" cudaError_t ri__cu_stemconv_v(cudaStream_t s, const ri__cu_stemconv_args *p, int variant,
                                         const void *x, ri_dtype xt, const float *w, const float *bias,
                                         const ri__cu_stem_host_weights *hw, void *y) {
  if (!ri__cu_stemconv_supported(p) || (uintptr_t)y % 16 || variant < 0 || variant >= RI__CU_STEM_VARIANTS)
    return cudaErrorInvalidValue;
  int64_t M = (int64_t)p->n * p->oh * p->ow;
  if (M <= 0) return cudaSuccess;
  if (!ri__cu_stemconv_variant_applies(p, variant)) variant = 0;
  if (variant == 3) return ri__cu_stemconv_tc(s, p, x, xt, w, bias, y);
  if (variant == 4) return ri__cu_stemconv_tcp(s, p, x, xt, w, bias, y);
  if (xt == RI_DTYPE_FLOAT32 && p->y_f32)
    launch_variant<float, float>(s, p, variant, x, w, bias, hw, y);
  else if (xt == RI_DTYPE_FLOAT16 && p->y_f32)
    launch_variant<__half, float>(s, p, variant, x, w, bias, hw, y);
  else if (xt == RI_DTYPE_FLOAT32)
    launch_variant<float, __half>(s, p, variant, x, w, bias, hw, y);
  else if (xt == RI_DTYPE_FLOAT16)
    launch_variant<__half, __half>(s, p, variant, x, w, bias, hw, y);
  else
    return cudaErrorInvalidValue;
  return ri_cu_launched();
}

extern "C" cudaError_t ri__cu_stemconv(cudaStream_t s, const ri__cu_stemconv_args *p, const void *x,
                                       ri_dtype xt, const float *w, const float *bias, void *y) {
  return ri__cu_stemconv_v(s, p, 0, x, xt, w, bias, NULL, y);
}
