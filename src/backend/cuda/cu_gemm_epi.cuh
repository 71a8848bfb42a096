/* The epilogue pieces shared by the fp16 GEMM kernels (k_convgemm.cu, k_pwconv.cu, k_pwgemm_wg.cu), which
 * differ in how their accumulators are laid out but not in what they do with them (kernels.h,
 * ri__cu_convgemm_args): the residual of a pair of adjacent output channels, and the copy of 8 staged
 * channels of one output pixel to their place in the output (a dense tensor or a slice with its own image
 * stride), half or widened to float32. One copy of these rules: a residual of odd row pitch once lost its
 * second channel in all three kernels. (The activation stays in each kernel, switched once outside its
 * loops: a shared per-value form cost registers, and a spill in k_pwconv.cu, with nvcc 13.0.) */
#ifndef RI_BACKEND_CUDA_CU_GEMM_EPI_CUH
#define RI_BACKEND_CUDA_CU_GEMM_EPI_CUH

#include "backend/cuda/cu_common.cuh"

/* Adds the residual of channels n and n + 1 (those below m_out) of the output row at rp (half, ldr halves
 * per row) to v0 and v1: as a pair when the pitch keeps them 4-byte aligned (n is even), else one by one. */
__device__ __forceinline__ void ri_cu_epi_res(const __half *rp, int n, int m_out, int64_t ldr, float &v0,
                                              float &v1) {
  if (n + 1 < m_out && ldr % 2 == 0) {
    const float2 f = __half22float2(*(const __half2 *)(rp + n));
    v0 += f.x, v1 += f.y;
  } else if (n < m_out) {
    v0 += __half2float(rp[n]);
    if (n + 1 < m_out) v1 += __half2float(rp[n + 1]);
  }
}

/* Element offset of output pixel m's first channel (before y_off): dense, or image by image. */
__device__ __forceinline__ int64_t ri_cu_epi_row(const ri__cu_convgemm_args &p, int m, bool dense) {
  if (dense) return (int64_t)m * p.ldy;
  const int img = m / (int)p.rows_per_img, rr = m - img * (int)p.rows_per_img;
  return img * p.y_img_stride + (int64_t)rr * p.ldy;
}

/* Stores the 8 staged halves `val` of channels n .. n + 7 at yp (those below m_out): one 16-byte store (two
 * for float32) when vec (the output's pitch, offset and image stride keep 8-channel groups aligned) and all
 * 8 exist, else element by element. */
__device__ __forceinline__ void ri_cu_epi_store8(__half *yp, const uint4 &val, bool vec, int n, int m_out) {
  if (vec && n + 8 <= m_out) {
    *(uint4 *)yp = val;
  } else {
    const __half *hv = (const __half *)&val;
#pragma unroll
    for (int e = 0; e < 8; e++)
      if (n + e < m_out) yp[e] = hv[e];
  }
}
__device__ __forceinline__ void ri_cu_epi_store8(float *yp, const uint4 &val, bool vec, int n, int m_out) {
  const __half *hv = (const __half *)&val;
  float f[8];
#pragma unroll
  for (int e = 0; e < 8; e++)
    f[e] = __half2float(hv[e]);
  if (vec && n + 8 <= m_out) {
    *(float4 *)yp = make_float4(f[0], f[1], f[2], f[3]);
    *(float4 *)(yp + 4) = make_float4(f[4], f[5], f[6], f[7]);
  } else {
#pragma unroll
    for (int e = 0; e < 8; e++)
      if (n + e < m_out) yp[e] = f[e];
  }
}

/* Whether 8-channel groups of the output stay 16-byte aligned (elements: ldy, y_off, image stride). */
__device__ __forceinline__ bool ri_cu_epi_vec(const ri__cu_convgemm_args &p) {
  return p.ldy % 8 == 0 && p.y_off % 8 == 0 && p.y_img_stride % 8 == 0;
}

/* One staged half as the output's type. */
__device__ __forceinline__ void ri_cu_epi_put(__half *yp, __half v) { *yp = v; }
__device__ __forceinline__ void ri_cu_epi_put(float *yp, __half v) { *yp = __half2float(v); }

/* Phase 2 of the staged epilogue of a BM x BN block tile (rows m0.., channels n0..): the block's THREADS
 * threads copy the half tile Cs (row pitch CLD halves) to the output, rows below M and channels below m_out
 * only. Where 8-channel groups stay 16-byte aligned, a thread copies 16-byte chunks (8 channels of a pixel);
 * elsewhere (an odd row pitch: the class predictors' 273 / 546 channels inside SSD's concatenated outputs)
 * consecutive threads copy consecutive channels of a row, so that a warp's stores cover whole sectors (the
 * chunk-per-thread form stored each thread's 8 channels one by one: 32 lanes 8 elements apart, a quarter of
 * each 32-byte sector per store). The values stored are the same either way. */
template <int BM, int BN, int CLD, int THREADS, typename TY>
__device__ __forceinline__ void ri_cu_epi_flush(const ri__cu_convgemm_args &p, const __half (*Cs)[CLD], TY *y,
                                                int m0, int n0, int M, int tid) {
  const bool dense = p.y_img_stride == p.rows_per_img * p.ldy;
  if (ri_cu_epi_vec(p)) {
    constexpr int CH = BN / 8;
#pragma unroll 2
    for (int q = tid; q < BM * CH; q += THREADS) {
      const int r = q / CH, cc = q - r * CH, m = m0 + r, n = n0 + cc * 8;
      if (m >= M || n >= p.m_out) continue;
      ri_cu_epi_store8(y + ri_cu_epi_row(p, m, dense) + p.y_off + n, *(const uint4 *)&Cs[r][cc * 8], true, n,
                       p.m_out);
    }
    return;
  }
#pragma unroll 4
  for (int q = tid; q < BM * BN; q += THREADS) {
    const int r = q / BN, c = q - r * BN, m = m0 + r, n = n0 + c;
    if (m >= M || n >= p.m_out) continue;
    ri_cu_epi_put(y + ri_cu_epi_row(p, m, dense) + p.y_off + n, Cs[r][c]);
  }
}

#endif
