/* Normalisation of uint8 pixels, the fused form of the Cast -> Sub -> Mul [-> Transpose] chain that device
 * preprocessing puts at the start of a graph (cuda_fuse_input.c): y[i] = (float(x[i]) - mean[c]) * scale[c]
 * with c = i % channels, computed in float (as the unfused kernels and the CPU reference do) and rounded
 * once to the output type. The elements keep their order: NHWC pixels in, the same order out (the NHWC
 * storage of the model's NCHW input, or a row-major NHWC one). */
#include "backend/cuda/cu_common.cuh"

template <typename T>
__global__ void u8norm_kernel(const uint8_t *__restrict__ x, int64_t n, int channels, ri__cu_u8norm_coef k,
                              T *__restrict__ y) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int c = (int)(i % channels);
    const float v = ((float)x[i] - k.mean[c]) * k.scale[c];
    if (sizeof(T) == 2)
      ((__half *)y)[i] = __float2half_rn(v);
    else
      ((float *)y)[i] = v;
  }
}

cudaError_t ri__cu_u8_normalize(cudaStream_t s, const uint8_t *x, int64_t n, int channels,
                                const ri__cu_u8norm_coef *k, void *y, ri_dtype yt) {
  if (n <= 0) return cudaSuccess;
  if (channels < 1 || channels > RI__CU_U8NORM_MAX_CHANNELS) return cudaErrorInvalidValue;
  if (yt == RI_DTYPE_FLOAT16)
    u8norm_kernel<__half><<<ri_cu_blocks(n), RI_CU_THREADS, 0, s>>>(x, n, channels, *k, (__half *)y);
  else if (yt == RI_DTYPE_FLOAT32)
    u8norm_kernel<float><<<ri_cu_blocks(n), RI_CU_THREADS, 0, s>>>(x, n, channels, *k, (float *)y);
  else
    return cudaErrorInvalidValue;
  return cudaGetLastError();
}
