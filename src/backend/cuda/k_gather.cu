/* Gather along one axis of a row-major tensor, one thread per output element, elements moved as unsigned
 * integers of their size. */
#include "backend/cuda/cu_common.cuh"

template <typename T, typename I>
__global__ void gather_kernel(const T *x, const I *idx, T *y, int64_t outer, int64_t axis_dim, int64_t n_idx,
                              int64_t inner) {
  int64_t total = outer * n_idx * inner;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t k = i % inner, r = i / inner;
    int64_t j = r % n_idx, o = r / n_idx;
    int64_t a = (int64_t)idx[j];
    if (a < 0) a += axis_dim;
    y[i] = a >= 0 && a < axis_dim ? x[(o * axis_dim + a) * inner + k] : (T)0;
  }
}

template <typename T>
static cudaError_t launch(cudaStream_t s, const void *x, const void *idx, ri_dtype it, void *y, int64_t outer,
                          int64_t axis_dim, int64_t n_idx, int64_t inner) {
  unsigned g = ri_cu_blocks(outer * n_idx * inner);
  if (it == RI_DTYPE_INT64)
    gather_kernel<T, int64_t><<<g, RI_CU_THREADS, 0, s>>>((const T *)x, (const int64_t *)idx, (T *)y, outer,
                                                          axis_dim, n_idx, inner);
  else if (it == RI_DTYPE_INT32)
    gather_kernel<T, int32_t><<<g, RI_CU_THREADS, 0, s>>>((const T *)x, (const int32_t *)idx, (T *)y, outer,
                                                          axis_dim, n_idx, inner);
  else
    return cudaErrorInvalidValue;
  return ri_cu_launched();
}

extern "C" cudaError_t ri__cu_gather(cudaStream_t s, const void *x, size_t elem_size, const void *idx,
                                     ri_dtype it, void *y, int64_t outer, int64_t axis_dim, int64_t n_idx,
                                     int64_t inner) {
  if (outer * n_idx * inner <= 0) return cudaSuccess;
  switch (elem_size) {
  case 1: return launch<uint8_t>(s, x, idx, it, y, outer, axis_dim, n_idx, inner);
  case 2: return launch<uint16_t>(s, x, idx, it, y, outer, axis_dim, n_idx, inner);
  case 4: return launch<uint32_t>(s, x, idx, it, y, outer, axis_dim, n_idx, inner);
  case 8: return launch<uint64_t>(s, x, idx, it, y, outer, axis_dim, n_idx, inner);
  default: return cudaErrorInvalidValue;
  }
}
