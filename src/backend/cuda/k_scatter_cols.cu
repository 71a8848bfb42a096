/* The second half of the padded cuBLASLt form of 1x1 convolutions (cuda_conv_lt.c, kernels.h): copies the
 * first `cols` halves of each row of a dense half buffer (rows of ld_src halves, what cuBLASLt wrote at an
 * aligned leading dimension) to a strided output slice (rows of ldy elements inside images of img_stride
 * elements; a Concat slice of odd pitch), as half or widened to float32. One warp per row, lane j moving
 * columns j, j + 32, ...: consecutive threads read and write consecutive channels. Without an activation no
 * rounding beyond the GEMM's half output (the widening is exact); with one (the activations cuBLASLt has no
 * epilogue for: sigmoid, clip...), it applies to the widened value in float, then one rounding for a half
 * output. */
#include "backend/cuda/cu_common.cuh"

#define SC_ROWS 8 /* warps (rows) per block */

template <typename D> __device__ __forceinline__ D from_float(float v);
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }

template <typename D>
__global__ void __launch_bounds__(32 * SC_ROWS)
    scatter_cols_kernel(const __half *__restrict__ src, int64_t ld_src, int64_t n_rows, int64_t rows_per_img,
                        int cols, D *__restrict__ dst, int64_t ldy, int64_t img_stride, int act, float act_a,
                        float act_b) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  for (int64_t r = (int64_t)blockIdx.x * SC_ROWS + threadIdx.y; r < n_rows;
       r += (int64_t)gridDim.x * SC_ROWS) {
    const int64_t img = r / rows_per_img, p = r - img * rows_per_img;
    const __half *s = src + r * ld_src;
    D *d = dst + img * img_stride + p * ldy;
    if (act == RI_CU_ACT_NONE) {
      for (int j = threadIdx.x; j < cols; j += 32)
        d[j] = from_float<D>(__half2float(s[j])); /* exact: the half itself */
    } else {
      for (int j = threadIdx.x; j < cols; j += 32)
        d[j] = from_float<D>(ri_act(act, act_a, act_b, __half2float(s[j])));
    }
  }
}

extern "C" cudaError_t ri__cu_scatter_cols(cudaStream_t s, const void *src, int64_t ld_src, int64_t n_rows,
                                           int64_t rows_per_img, int64_t cols, void *dst, int dst_f32,
                                           int64_t ldy, int64_t img_stride, int act, float act_a,
                                           float act_b) {
  if (n_rows <= 0 || cols <= 0) return cudaSuccess;
  if (rows_per_img <= 0 || cols > ld_src || cols > INT32_MAX || act < RI_CU_ACT_NONE ||
      act > RI_CU_ACT_HSWISH)
    return cudaErrorInvalidValue;
  int64_t blocks = (n_rows + SC_ROWS - 1) / SC_ROWS;
  unsigned grid = (unsigned)(blocks < (1 << 20) ? blocks : (1 << 20));
  dim3 block(32, SC_ROWS);
  if (dst_f32)
    ri_cu_launch(scatter_cols_kernel<float>, dim3(grid), block, 0, s, (const __half *)src, ld_src, n_rows,
                 rows_per_img, (int)cols, (float *)dst, ldy, img_stride, act, act_a, act_b);
  else
    ri_cu_launch(scatter_cols_kernel<__half>, dim3(grid), block, 0, s, (const __half *)src, ld_src, n_rows,
                 rows_per_img, (int)cols, (__half *)dst, ldy, img_stride, act, act_a, act_b);
  return ri_cu_launched();
}
