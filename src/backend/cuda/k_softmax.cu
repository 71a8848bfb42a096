/* Softmax over `len` elements spaced `inner` apart. inner == 1: one block per row with block reductions;
 * otherwise one thread per (outer, inner) column walking the row three times (max, sum, write). */
#include <math.h>

#include "backend/cuda/cu_common.cuh"

__device__ __forceinline__ float block_reduce(float v, bool is_max, float *shm) {
  for (int o = 16; o > 0; o >>= 1) {
    float u = __shfl_down_sync(0xffffffffu, v, o);
    v = is_max ? fmaxf(v, u) : v + u;
  }
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  __syncthreads();
  if (lane == 0) shm[wid] = v;
  __syncthreads();
  if (wid == 0) {
    v = lane < nw ? shm[lane] : (is_max ? -INFINITY : 0.f);
    for (int o = 16; o > 0; o >>= 1) {
      float u = __shfl_down_sync(0xffffffffu, v, o);
      v = is_max ? fmaxf(v, u) : v + u;
    }
    if (lane == 0) shm[0] = v;
  }
  __syncthreads();
  return shm[0];
}

template <typename T> __global__ void softmax_rows(const T *x, T *y, int64_t rows, int64_t len) {
  __shared__ float shm[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *xr = x + r * len;
    T *yr = y + r * len;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x)
      m = fmaxf(m, ri_ld(xr, i));
    m = block_reduce(m, true, shm);
    float sum = 0.f;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x)
      sum += expf(ri_ld(xr, i) - m);
    sum = block_reduce(sum, false, shm);
    float inv = 1.f / sum;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x)
      ri_st(yr, i, expf(ri_ld(xr, i) - m) * inv);
  }
}

template <typename T>
__global__ void softmax_cols(const T *x, T *y, int64_t outer, int64_t len, int64_t inner) {
  int64_t total = outer * inner;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t o = i / inner, k = i - o * inner;
    const T *xc = x + o * len * inner + k;
    T *yc = y + o * len * inner + k;
    float m = -INFINITY;
    for (int64_t j = 0; j < len; j++)
      m = fmaxf(m, ri_ld(xc, j * inner));
    float sum = 0.f;
    for (int64_t j = 0; j < len; j++)
      sum += expf(ri_ld(xc, j * inner) - m);
    float inv = 1.f / sum;
    for (int64_t j = 0; j < len; j++)
      ri_st(yc, j * inner, expf(ri_ld(xc, j * inner) - m) * inv);
  }
}

template <typename T>
static cudaError_t launch(cudaStream_t s, const void *x, void *y, int64_t outer, int64_t len, int64_t inner) {
  if (inner == 1) {
    int64_t blocks = outer < 65535 ? outer : 65535;
    int threads = len >= 256 ? 256 : len > 64 ? 128 : 32;
    softmax_rows<T><<<(unsigned)blocks, threads, 0, s>>>((const T *)x, (T *)y, outer, len);
  } else {
    softmax_cols<T>
        <<<ri_cu_blocks(outer * inner), RI_CU_THREADS, 0, s>>>((const T *)x, (T *)y, outer, len, inner);
  }
  return ri_cu_launched();
}

extern "C" cudaError_t ri__cu_softmax(cudaStream_t s, ri_dtype dt, const void *x, void *y, int64_t outer,
                                      int64_t len, int64_t inner) {
  if (outer <= 0 || len <= 0 || inner <= 0) return cudaSuccess;
  if (dt == RI_DTYPE_FLOAT32) return launch<float>(s, x, y, outer, len, inner);
  if (dt == RI_DTYPE_FLOAT16) return launch<__half>(s, x, y, outer, len, inner);
  return cudaErrorInvalidValue;
}
