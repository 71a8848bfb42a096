/* Elementwise unary ops of float types: the fused activations (Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid,
 * HardSwish) and Exp. The activation is a template parameter so that each launch runs a branch-free loop. */
#include "backend/cuda/cu_common.cuh"

template <typename T, int OP> __global__ void unary_kernel(const T *x, T *y, int64_t n, float a, float b) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    float v = ri_ld(x, i);
    if (OP == RI__CU_UNARY_EXP)
      v = expf(v);
    else
      v = ri_act(OP, a, b, v);
    ri_st(y, i, v);
  }
}

template <typename T>
static cudaError_t launch(cudaStream_t s, const void *x, void *y, int64_t n, int op, float a, float b) {
  const T *xp = (const T *)x;
  T *yp = (T *)y;
  unsigned g = ri_cu_blocks(n);
  switch (op) {
  case RI_CU_ACT_NONE: unary_kernel<T, RI_CU_ACT_NONE><<<g, RI_CU_THREADS, 0, s>>>(xp, yp, n, a, b); break;
  case RI_CU_ACT_RELU: unary_kernel<T, RI_CU_ACT_RELU><<<g, RI_CU_THREADS, 0, s>>>(xp, yp, n, a, b); break;
  case RI_CU_ACT_CLIP: unary_kernel<T, RI_CU_ACT_CLIP><<<g, RI_CU_THREADS, 0, s>>>(xp, yp, n, a, b); break;
  case RI_CU_ACT_LEAKY: unary_kernel<T, RI_CU_ACT_LEAKY><<<g, RI_CU_THREADS, 0, s>>>(xp, yp, n, a, b); break;
  case RI_CU_ACT_SIGMOID:
    unary_kernel<T, RI_CU_ACT_SIGMOID><<<g, RI_CU_THREADS, 0, s>>>(xp, yp, n, a, b);
    break;
  case RI_CU_ACT_HSIG: unary_kernel<T, RI_CU_ACT_HSIG><<<g, RI_CU_THREADS, 0, s>>>(xp, yp, n, a, b); break;
  case RI_CU_ACT_HSWISH:
    unary_kernel<T, RI_CU_ACT_HSWISH><<<g, RI_CU_THREADS, 0, s>>>(xp, yp, n, a, b);
    break;
  case RI__CU_UNARY_EXP:
    unary_kernel<T, RI__CU_UNARY_EXP><<<g, RI_CU_THREADS, 0, s>>>(xp, yp, n, a, b);
    break;
  default: return cudaErrorInvalidValue;
  }
  return ri_cu_launched();
}

extern "C" cudaError_t ri__cu_unary(cudaStream_t s, ri_dtype dt, const void *x, void *y, int64_t n, int op,
                                    float a, float b) {
  if (n <= 0) return cudaSuccess;
  if (dt == RI_DTYPE_FLOAT32) return launch<float>(s, x, y, n, op, a, b);
  if (dt == RI_DTYPE_FLOAT16) return launch<__half>(s, x, y, n, op, a, b);
  return cudaErrorInvalidValue;
}
