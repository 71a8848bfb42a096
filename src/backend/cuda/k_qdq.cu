/* QuantizeLinear and DequantizeLinear, per tensor or per channel (c = (i / inner) % channels), with the
 * rules of the CPU reference (src/backend/cpu/ref/qdq.c): round half to even, saturate, NaN -> zero point. */
#include <math.h>

#include "backend/cuda/cu_common.cuh"

__device__ __forceinline__ float ld_any(const void *p, ri_dtype t, int64_t i) {
  return t == RI_DTYPE_FLOAT16 ? __half2float(((const __half *)p)[i]) : ((const float *)p)[i];
}

__device__ __forceinline__ int32_t ld_q(const void *p, ri_dtype t, int64_t i) {
  switch (t) {
  case RI_DTYPE_INT8: return ((const int8_t *)p)[i];
  case RI_DTYPE_UINT16: return ((const uint16_t *)p)[i];
  case RI_DTYPE_INT16: return ((const int16_t *)p)[i];
  case RI_DTYPE_INT32: return ((const int32_t *)p)[i];
  default: return ((const uint8_t *)p)[i];
  }
}

__device__ __forceinline__ void st_q(void *p, ri_dtype t, int64_t i, int32_t v) {
  switch (t) {
  case RI_DTYPE_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
  case RI_DTYPE_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
  case RI_DTYPE_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
  default: ((uint8_t *)p)[i] = (uint8_t)v; break;
  }
}

__global__ void quantize_kernel(const void *x, ri_dtype xt, const void *scale, ri_dtype st, const void *zp,
                                void *y, ri_dtype yt, int64_t n, int64_t channels, int64_t inner, float lo,
                                float hi) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t c = (i / inner) % channels;
    float s = ld_any(scale, st, c);
    float z = zp ? (float)ld_q(zp, yt, c) : 0.f;
    float v = rintf(ld_any(x, xt, i) / s) + z;
    v = v < lo ? lo : (v > hi ? hi : v);
    st_q(y, yt, i, v == v ? (int32_t)v : (int32_t)z);
  }
}

__global__ void dequantize_kernel(const void *x, ri_dtype xt, const void *scale, ri_dtype st, const void *zp,
                                  void *y, ri_dtype yt, int64_t n, int64_t channels, int64_t inner) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t c = (i / inner) % channels;
    float s = ld_any(scale, st, c);
    int64_t z = zp ? ld_q(zp, xt, c) : 0;
    float v = (float)((int64_t)ld_q(x, xt, i) - z) * s;
    if (yt == RI_DTYPE_FLOAT16)
      ((__half *)y)[i] = __float2half_rn(v);
    else
      ((float *)y)[i] = v;
  }
}

static int is_f(ri_dtype t) { return t == RI_DTYPE_FLOAT32 || t == RI_DTYPE_FLOAT16; }
static int is_q(ri_dtype t) {
  return t == RI_DTYPE_UINT8 || t == RI_DTYPE_INT8 || t == RI_DTYPE_UINT16 || t == RI_DTYPE_INT16;
}

extern "C" cudaError_t ri__cu_quantize(cudaStream_t s, const void *x, ri_dtype xt, const void *scale,
                                       ri_dtype st, const void *zp, void *y, ri_dtype yt, int64_t n,
                                       int64_t channels, int64_t inner) {
  if (!is_f(xt) || !is_f(st) || !is_q(yt) || channels < 1 || inner < 1) return cudaErrorInvalidValue;
  if (n <= 0) return cudaSuccess;
  float lo = 0.f, hi = 255.f;
  if (yt == RI_DTYPE_INT8) lo = -128.f, hi = 127.f;
  if (yt == RI_DTYPE_UINT16) lo = 0.f, hi = 65535.f;
  if (yt == RI_DTYPE_INT16) lo = -32768.f, hi = 32767.f;
  quantize_kernel<<<ri_cu_blocks(n), RI_CU_THREADS, 0, s>>>(x, xt, scale, st, zp, y, yt, n, channels, inner,
                                                            lo, hi);
  return ri_cu_launched();
}

extern "C" cudaError_t ri__cu_dequantize(cudaStream_t s, const void *x, ri_dtype xt, const void *scale,
                                         ri_dtype st, const void *zp, void *y, ri_dtype yt, int64_t n,
                                         int64_t channels, int64_t inner) {
  if ((!is_q(xt) && xt != RI_DTYPE_INT32) || !is_f(st) || !is_f(yt) || channels < 1 || inner < 1)
    return cudaErrorInvalidValue;
  if (n <= 0) return cudaSuccess;
  dequantize_kernel<<<ri_cu_blocks(n), RI_CU_THREADS, 0, s>>>(x, xt, scale, st, zp, y, yt, n, channels,
                                                              inner);
  return ri_cu_launched();
}
