/* Direct convolution for layers with few input channels (the RGB image of a network's first layer), where
 * an implicit GEMM would gather K = kh * kw * c (27 for 3x3 RGB) elements one by one: a thread computes
 * one output pixel for 32 output channels in float, reading the input (float or half, any layout through
 * strides: the caller's NCHW float32 image needs no conversion pass) and the weights from shared memory,
 * where every thread reads the same word at once (a broadcast). Output: half NHWC (fp16 engines) or float
 * NHWC (fp32 engines, y_f32) with bias and activation fused, stored as 16-byte vectors.
 *
 * Float output (fp32 engines) runs a second kernel by default: each thread computes two consecutive output
 * pixels, reading the weights as float4s of 4 channels (one broadcast read feeds 8 FMAs instead of one
 * scalar read per FMA: the first kernel is bound by its shared-memory reads, 864 for the 864 FMAs of a
 * 3x3 RGB pixel), with the 3x3 RGB loops unrolled at compile time. Each output is the same sum in the same
 * order as in the first kernel (taps in increasing kk, fmaf from zero, taps outside the input skipped),
 * then bias and activation; the block's outputs leave through shared memory as float4s of consecutive
 * channels of consecutive pixels. RI_CUDA_F32_STEM=0 keeps the first kernel (for before/after). */
#include <stdlib.h>
#include <string.h>

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

constexpr int PX = 2; /* output pixels of a thread in the float kernel */

/* Float output, PX pixels per thread; KH, KW, C fixed at compile time (0: from p). */
template <typename T, int KH, int KW, int C>
__global__ void __launch_bounds__(THREADS)
    stem_px_kernel(const ri__cu_stemconv_args p, const T *__restrict__ x, const float *__restrict__ w,
                   const float *__restrict__ bias, float *__restrict__ y) {
  /* the weights during the sums, then the block's outputs (THREADS * PX rows of MT + 4 floats) */
  constexpr int W_FLOATS = RI__CU_STEM_MAX_K * MT, C_FLOATS = THREADS * PX * (MT + 4);
  __shared__ __align__(16) float sm[W_FLOATS > C_FLOATS ? W_FLOATS : C_FLOATS];
  const int kh = KH ? KH : p.kh, kw = KW ? KW : p.kw, c = C ? C : p.c;
  const int j0 = blockIdx.y * MT;
  const int nj = p.m - j0 < MT ? p.m - j0 : MT;
  for (int i = threadIdx.x; i < kh * kw * c * MT; i += THREADS) {
    int kk = i / MT, j = i - kk * MT;
    sm[i] = j < nj ? w[(int64_t)kk * p.m + j0 + j] : 0.f;
  }
  __syncthreads();
  const int64_t M = (int64_t)p.n * p.oh * p.ow;
  const int64_t m0 = ((int64_t)blockIdx.x * THREADS + threadIdx.x) * PX;
  const T *xb[PX];
  int iy0[PX], ix0[PX];
#pragma unroll
  for (int q = 0; q < PX; q++) {
    /* pixels past the last one compute the last one again (not stored) */
    const int64_t m = m0 + q < M ? m0 + q : M - 1;
    const int ox = (int)(m % p.ow);
    const int64_t t = m / p.ow;
    const int oy = (int)(t % p.oh), b = (int)(t / p.oh);
    xb[q] = x + b * p.xs_n;
    iy0[q] = oy * p.sh - p.pad_t;
    ix0[q] = ox * p.sw - p.pad_l;
  }
  float acc[PX][MT];
#pragma unroll
  for (int q = 0; q < PX; q++)
#pragma unroll
    for (int j = 0; j < MT; j++)
      acc[q][j] = 0.f;
#pragma unroll
  for (int ky = 0; ky < kh; ky++)
#pragma unroll
    for (int kx = 0; kx < kw; kx++) {
      bool in[PX];
      int64_t off[PX];
#pragma unroll
      for (int q = 0; q < PX; q++) {
        const int iy = iy0[q] + ky * p.dh, ix = ix0[q] + kx * p.dw;
        in[q] = iy >= 0 && iy < p.ih && ix >= 0 && ix < p.iw;
        off[q] = iy * p.xs_h + ix * p.xs_w;
      }
#pragma unroll
      for (int ci = 0; ci < c; ci++) {
        const int kk = (ky * kw + kx) * c + ci;
        float v[PX];
#pragma unroll
        for (int q = 0; q < PX; q++)
          v[q] = in[q] ? ri_ld(xb[q], off[q] + ci * p.xs_c) : 0.f;
        const float4 *wr = (const float4 *)&sm[kk * MT];
#pragma unroll
        for (int j4 = 0; j4 < MT / 4; j4++) {
          const float4 wv = wr[j4];
#pragma unroll
          for (int q = 0; q < PX; q++) {
            if (!in[q]) continue; /* skipped, as in the first kernel */
            acc[q][j4 * 4 + 0] = fmaf(v[q], wv.x, acc[q][j4 * 4 + 0]);
            acc[q][j4 * 4 + 1] = fmaf(v[q], wv.y, acc[q][j4 * 4 + 1]);
            acc[q][j4 * 4 + 2] = fmaf(v[q], wv.z, acc[q][j4 * 4 + 2]);
            acc[q][j4 * 4 + 3] = fmaf(v[q], wv.w, acc[q][j4 * 4 + 3]);
          }
        }
      }
    }
  __syncthreads(); /* the weights are no longer read: the space takes the outputs */
  float(*cs)[MT + 4] = (float(*)[MT + 4]) sm;
#pragma unroll
  for (int q = 0; q < PX; q++)
#pragma unroll
    for (int j4 = 0; j4 < MT / 4; j4++) {
      float e[4];
#pragma unroll
      for (int u = 0; u < 4; u++) {
        const int j = j4 * 4 + u;
        e[u] = ri_act(p.act, p.act_a, p.act_b, acc[q][j] + (bias && j < nj ? bias[j0 + j] : 0.f));
      }
      *(float4 *)&cs[threadIdx.x * PX + q][j4 * 4] = make_float4(e[0], e[1], e[2], e[3]);
    }
  __syncthreads();
  const int64_t mb = (int64_t)blockIdx.x * THREADS * PX;
  const bool vec4 = p.m % 4 == 0;
  for (int f = threadIdx.x; f < THREADS * PX * (MT / 4); f += THREADS) {
    const int r = f / (MT / 4), c4 = (f % (MT / 4)) * 4;
    if (mb + r >= M || c4 >= nj) continue;
    const float4 v = *(const float4 *)&cs[r][c4];
    float *yq = y + (mb + r) * p.m + j0 + c4;
    if (vec4 && c4 + 4 <= nj) {
      *(float4 *)yq = v;
    } else {
      const float e4[4] = {v.x, v.y, v.z, v.w};
      for (int e = 0; e < 4 && c4 + e < nj; e++)
        yq[e] = e4[e];
    }
  }
}

/* RI_CUDA_F32_STEM=0: float output on the first kernel. */
bool px_kernel_on() {
  static int on = -1;
  if (on < 0) {
    const char *e = getenv("RI_CUDA_F32_STEM");
    on = !(e && strcmp(e, "0") == 0);
  }
  return on != 0;
}

template <typename T>
void launch_px(cudaStream_t s, const ri__cu_stemconv_args *p, int64_t M, const T *x, const float *w,
               const float *bias, float *y) {
  dim3 grid((unsigned)((M + THREADS * PX - 1) / (THREADS * PX)), (unsigned)((p->m + MT - 1) / MT));
  if (p->kh == 3 && p->kw == 3 && p->c == 3)
    stem_px_kernel<T, 3, 3, 3><<<grid, THREADS, 0, s>>>(*p, x, w, bias, y);
  else
    stem_px_kernel<T, 0, 0, 0><<<grid, THREADS, 0, s>>>(*p, x, w, bias, y);
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
  if (p->y_f32 && (xt == RI_DTYPE_FLOAT32 || xt == RI_DTYPE_FLOAT16) && px_kernel_on()) {
    if (xt == RI_DTYPE_FLOAT32)
      launch_px<float>(s, p, M, (const float *)x, w, bias, (float *)y);
    else
      launch_px<__half>(s, p, M, (const __half *)x, w, bias, (float *)y);
  } else if (xt == RI_DTYPE_FLOAT32 && p->y_f32)
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
