/* Normalisation of uint8 pixels, the fused form of the Cast -> Sub -> Mul [-> Transpose] chain that device
 * preprocessing puts at the start of a graph (cuda_fuse_input.c): y[i] = (float(x[i]) - mean[c]) * scale[c]
 * with c = i % channels, computed in float (as the unfused kernels and the CPU reference do) and rounded
 * once to the output type. The elements keep their order: NHWC pixels in, the same order out (the NHWC
 * storage of the model's NCHW input, or a row-major NHWC one).
 *
 * Three channels (RGB), the common case, go four pixels per thread: 12 bytes in as three 32-bit loads,
 * 12 values out as 16-byte (float) or 8-byte (half) stores, no division per element. It needs 4-byte
 * aligned input, 16-byte aligned output and whole groups of four pixels; anything else takes the
 * element-wise kernel. */
#include "backend/cuda/cu_common.cuh"

template <typename T>
__device__ __forceinline__ void put4(T *y, int64_t i, float a, float b, float c, float d);

template <>
__device__ __forceinline__ void put4<float>(float *y, int64_t i, float a, float b, float c, float d) {
  *(float4 *)(y + i) = make_float4(a, b, c, d);
}

template <>
__device__ __forceinline__ void put4<__half>(__half *y, int64_t i, float a, float b, float c, float d) {
  __half2 lo = __floats2half2_rn(a, b), hi = __floats2half2_rn(c, d);
  uint2 u;
  u.x = *(uint32_t *)&lo;
  u.y = *(uint32_t *)&hi;
  *(uint2 *)(y + i) = u;
}

/* groups = n / 12: four RGB pixels each. */
template <typename T>
__global__ void u8norm_rgb4_kernel(const uint32_t *__restrict__ x, int64_t groups, ri__cu_u8norm_coef k,
                                   T *__restrict__ y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  for (int64_t g = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; g < groups;
       g += (int64_t)gridDim.x * blockDim.x) {
    const uint32_t w0 = x[3 * g], w1 = x[3 * g + 1], w2 = x[3 * g + 2];
    float v[12];
#pragma unroll
    for (int b = 0; b < 4; b++) {
      v[b] = (float)((w0 >> (8 * b)) & 0xffu);
      v[4 + b] = (float)((w1 >> (8 * b)) & 0xffu);
      v[8 + b] = (float)((w2 >> (8 * b)) & 0xffu);
    }
#pragma unroll
    for (int e = 0; e < 12; e++)
      v[e] = (v[e] - k.mean[e % 3]) * k.scale[e % 3];
    put4<T>(y, 12 * g, v[0], v[1], v[2], v[3]);
    put4<T>(y, 12 * g + 4, v[4], v[5], v[6], v[7]);
    put4<T>(y, 12 * g + 8, v[8], v[9], v[10], v[11]);
  }
}

template <typename T>
__global__ void u8norm_kernel(const uint8_t *__restrict__ x, int64_t n, int channels, ri__cu_u8norm_coef k,
                              T *__restrict__ y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int c = (int)(i % channels);
    const float v = ((float)x[i] - k.mean[c]) * k.scale[c];
    if (sizeof(T) == 2)
      ((__half *)y)[i] = __float2half_rn(v);
    else
      ((float *)y)[i] = v;
  }
}

template <typename T>
static cudaError_t launch(cudaStream_t s, const uint8_t *x, int64_t n, int channels,
                          const ri__cu_u8norm_coef *k, T *y) {
  const int64_t groups = n / 12;
  if (channels == 3 && n % 12 == 0 && ((uintptr_t)x & 3) == 0 && ((uintptr_t)y & 15) == 0)
    ri_cu_launch(u8norm_rgb4_kernel<T>, ri_cu_blocks(groups), RI_CU_THREADS, 0, s, (const uint32_t *)x,
                 groups, *k, y);
  else
    ri_cu_launch(u8norm_kernel<T>, ri_cu_blocks(n), RI_CU_THREADS, 0, s, x, n, channels, *k, y);
  return cudaGetLastError();
}

cudaError_t ri__cu_u8_normalize(cudaStream_t s, const uint8_t *x, int64_t n, int channels,
                                const ri__cu_u8norm_coef *k, void *y, ri_dtype yt) {
  if (n <= 0) return cudaSuccess;
  if (channels < 1 || channels > RI__CU_U8NORM_MAX_CHANNELS) return cudaErrorInvalidValue;
  if (yt == RI_DTYPE_FLOAT16) return launch<__half>(s, x, n, channels, k, (__half *)y);
  if (yt == RI_DTYPE_FLOAT32) return launch<float>(s, x, n, channels, k, (float *)y);
  return cudaErrorInvalidValue;
}
