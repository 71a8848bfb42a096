/* Direct convolution for layers with few input channels (the RGB image of a network's first layer), where
 * an implicit GEMM would gather K = kh * kw * c (27 for 3x3 RGB) elements one by one: a thread computes
 * one output pixel for 32 output channels in float, reading the input (float or half, any layout through
 * strides: the caller's NCHW float32 image needs no conversion pass) and the weights from shared memory,
 * where every thread reads the same word at once (a broadcast). Output: half NHWC (fp16 engines) or float
 * NHWC (fp32 engines, y_f32) with bias and activation fused, stored as 16-byte vectors. */
#include "backend/cuda/cu_common.cuh"

namespace {

constexpr int THREADS = 128;
constexpr int MT = 32; /* output channels per block */

template <typename T, typename Y>
__global__ void __launch_bounds__(THREADS)
    stem_kernel(const ri__cu_stemconv_args p, const T *__restrict__ x, const float *__restrict__ w,
                const float *__restrict__ bias, Y *__restrict__ y) {
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
          acc[j] += v * wr[j];
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

} // namespace

extern "C" int ri__cu_stemconv_supported(const ri__cu_stemconv_args *p) {
  return p->c >= 1 && p->kh >= 1 && p->kw >= 1 && p->k == p->kh * p->kw * p->c && p->k <= RI__CU_STEM_MAX_K &&
         p->m >= 1 && p->m <= 65535 * MT && p->sh >= 1 && p->sw >= 1 && p->dh >= 1 && p->dw >= 1 &&
         p->n >= 0 && p->act >= RI_CU_ACT_NONE && p->act <= RI_CU_ACT_HSWISH &&
         (int64_t)p->n * p->oh * p->ow <= (int64_t)INT32_MAX * THREADS;
}

extern "C" cudaError_t ri__cu_stemconv(cudaStream_t s, const ri__cu_stemconv_args *p, const void *x,
                                       ri_dtype xt, const float *w, const float *bias, void *y) {
  if (!ri__cu_stemconv_supported(p) || (uintptr_t)y % 16) return cudaErrorInvalidValue;
  int64_t M = (int64_t)p->n * p->oh * p->ow;
  if (M <= 0) return cudaSuccess;
  dim3 grid((unsigned)((M + THREADS - 1) / THREADS), (unsigned)((p->m + MT - 1) / MT));
  if (xt == RI_DTYPE_FLOAT32 && p->y_f32)
    stem_kernel<float, float><<<grid, THREADS, 0, s>>>(*p, (const float *)x, w, bias, (float *)y);
  else if (xt == RI_DTYPE_FLOAT16 && p->y_f32)
    stem_kernel<__half, float><<<grid, THREADS, 0, s>>>(*p, (const __half *)x, w, bias, (float *)y);
  else if (xt == RI_DTYPE_FLOAT32)
    stem_kernel<float, __half><<<grid, THREADS, 0, s>>>(*p, (const float *)x, w, bias, (__half *)y);
  else if (xt == RI_DTYPE_FLOAT16)
    stem_kernel<__half, __half><<<grid, THREADS, 0, s>>>(*p, (const __half *)x, w, bias, (__half *)y);
  else
    return cudaErrorInvalidValue;
  return ri_cu_launched();
}
