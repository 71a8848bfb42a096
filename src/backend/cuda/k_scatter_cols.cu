/* The second half of the padded cuBLASLt form of 1x1 convolutions (cuda_conv_lt.c, kernels.h): copies the
 * first `cols` halves of each row of a dense half buffer (rows of ld_src halves, what cuBLASLt wrote at an
 * aligned leading dimension) to a strided output slice (rows of ldy elements inside images of img_stride
 * elements; a Concat slice of odd pitch), as half or widened to float32. One warp per row, lane j moving
 * columns j, j + 32, ...: consecutive threads read and write consecutive channels. Without an activation no
 * rounding beyond the GEMM's half output (the widening is exact); with one (the activations cuBLASLt has no
 * epilogue for: sigmoid, clip...), it applies to the widened value in float, then one rounding for a half
 * output.
 * The activation is a template parameter (one instance per ri_act code, chosen once at launch): ri_act with a
 * constant code folds to that code's float operations, the same ones as the runtime switch, so the same bits,
 * without a per-element switch in the loop. Where the source rows and base are 4-byte aligned (ld_src even:
 * the buffer's rows are m rounded up to 8 halves), lane j reads columns 2 j and 2 j + 1 of each 64 as one
 * half2 (half the load instructions); the writes stay per element (float rows of odd pitch).
 * RI_CUDA_SCATTER_VEC=0 keeps the element loads (A/B). */

#include <atomic>
#include <stdint.h>
#include <stdlib.h>

#include "backend/cuda/cu_common.cuh"

#define SC_ROWS 8 /* warps (rows) per block */

template <typename D> __device__ __forceinline__ D from_float(float v);
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }

/* The value written for half h: exact widening without an activation, else ri_act (code ACT) in float. */
template <typename D, int ACT> __device__ __forceinline__ D sc_value(__half h, float act_a, float act_b) {
  if (ACT == RI_CU_ACT_NONE) return from_float<D>(__half2float(h)); /* exact: the half itself */
  return from_float<D>(ri_act(ACT, act_a, act_b, __half2float(h)));
}

template <typename D, int ACT>
__global__ void __launch_bounds__(32 * SC_ROWS)
    scatter_cols_kernel(const __half *__restrict__ src, int64_t ld_src, int64_t n_rows, int64_t rows_per_img,
                        int cols, D *__restrict__ dst, int64_t ldy, int64_t img_stride, int pairs,
                        float act_a, float act_b) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  for (int64_t r = (int64_t)blockIdx.x * SC_ROWS + threadIdx.y; r < n_rows;
       r += (int64_t)gridDim.x * SC_ROWS) {
    const int64_t img = r / rows_per_img, p = r - img * rows_per_img;
    const __half *s = src + r * ld_src;
    D *d = dst + img * img_stride + p * ldy;
    if (pairs) { /* rows 4-byte aligned: half2 loads, element stores */
      const __half2 *s2 = (const __half2 *)s;
      const int npairs = cols >> 1;
      for (int j = threadIdx.x; j < npairs; j += 32) {
        const __half2 v = s2[j];
        d[2 * j] = sc_value<D, ACT>(__low2half(v), act_a, act_b);
        d[2 * j + 1] = sc_value<D, ACT>(__high2half(v), act_a, act_b);
      }
      if ((cols & 1) && threadIdx.x == 0) d[cols - 1] = sc_value<D, ACT>(s[cols - 1], act_a, act_b);
    } else {
      for (int j = threadIdx.x; j < cols; j += 32)
        d[j] = sc_value<D, ACT>(s[j], act_a, act_b);
    }
  }
}

template <typename D>
static void sc_launch(cudaStream_t s, dim3 grid, dim3 block, const __half *src, int64_t ld_src,
                      int64_t n_rows, int64_t rows_per_img, int cols, D *dst, int64_t ldy, int64_t img_stride,
                      int pairs, int act, float act_a, float act_b) {
#define SC_CASE(A)                                                                                           \
  case A:                                                                                                    \
    ri_cu_launch(scatter_cols_kernel<D, A>, grid, block, 0, s, src, ld_src, n_rows, rows_per_img, cols, dst, \
                 ldy, img_stride, pairs, act_a, act_b);                                                      \
    break
  switch (act) {
    SC_CASE(RI_CU_ACT_NONE);
    SC_CASE(RI_CU_ACT_RELU);
    SC_CASE(RI_CU_ACT_CLIP);
    SC_CASE(RI_CU_ACT_LEAKY);
    SC_CASE(RI_CU_ACT_SIGMOID);
    SC_CASE(RI_CU_ACT_HSIG);
    SC_CASE(RI_CU_ACT_HSWISH);
  default: break; /* refused by the caller */
  }
#undef SC_CASE
}

extern "C" cudaError_t ri__cu_scatter_cols(cudaStream_t s, const void *src, int64_t ld_src, int64_t n_rows,
                                           int64_t rows_per_img, int64_t cols, void *dst, int dst_f32,
                                           int64_t ldy, int64_t img_stride, int act, float act_a,
                                           float act_b) {
  if (n_rows <= 0 || cols <= 0) return cudaSuccess;
  if (rows_per_img <= 0 || cols > ld_src || cols > INT32_MAX || act < RI_CU_ACT_NONE ||
      act > RI_CU_ACT_HSWISH)
    return cudaErrorInvalidValue;
  static std::atomic<int> vec_env{-1};
  int ve = vec_env.load();
  if (ve < 0) {
    const char *e = getenv("RI_CUDA_SCATTER_VEC");
    ve = !(e && e[0] == '0');
    vec_env.store(ve);
  }
  const int pairs = ve && ld_src % 2 == 0 && (uintptr_t)src % 4 == 0;
  int64_t blocks = (n_rows + SC_ROWS - 1) / SC_ROWS;
  unsigned grid = (unsigned)(blocks < (1 << 20) ? blocks : (1 << 20));
  dim3 block(32, SC_ROWS);
  if (dst_f32)
    sc_launch<float>(s, dim3(grid), block, (const __half *)src, ld_src, n_rows, rows_per_img, (int)cols,
                     (float *)dst, ldy, img_stride, pairs, act, act_a, act_b);
  else
    sc_launch<__half>(s, dim3(grid), block, (const __half *)src, ld_src, n_rows, rows_per_img, (int)cols,
                      (__half *)dst, ldy, img_stride, pairs, act, act_a, act_b);
  return ri_cu_launched();
}
