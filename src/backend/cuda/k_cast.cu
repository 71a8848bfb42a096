/* Cast between float32, float16, float64, bool and the 8..64-bit integers, with the rules of the CPU
 * reference (src/backend/cpu/ref/cast.c): float -> integer truncates toward zero after saturating to int64
 * (NaN -> 0) and then wraps; float -> uint64 keeps [2^63, 2^64); anything -> bool is x != 0; float16 goes
 * through float32. */
#include "backend/cuda/cu_common.cuh"

__device__ __forceinline__ int64_t f2i64(double v) {
  if (v != v) return 0;
  if (v >= 9223372036854775807.0) return INT64_MAX;
  if (v <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)v;
}

__device__ __forceinline__ uint64_t f2u64(double v) {
  if (v >= 18446744073709551615.0) return UINT64_MAX;
  if (v >= 9223372036854775808.0) return (uint64_t)v;
  return (uint64_t)f2i64(v);
}

/* A source element as either a double (float sources) or an int64/uint64 (integer sources). */
struct val {
  int is_float;
  int is_unsigned64;
  double f;
  int64_t i;
  uint64_t u;
};

__device__ __forceinline__ val load(const void *p, ri_dtype t, int64_t k) {
  val v = {0, 0, 0.0, 0, 0};
  switch (t) {
  case RI_DTYPE_FLOAT32:
    v.is_float = 1;
    v.f = ((const float *)p)[k];
    break;
  case RI_DTYPE_FLOAT64:
    v.is_float = 1;
    v.f = ((const double *)p)[k];
    break;
  case RI_DTYPE_FLOAT16:
    v.is_float = 1;
    v.f = __half2float(((const __half *)p)[k]);
    break;
  case RI_DTYPE_BOOL: v.i = ((const uint8_t *)p)[k] != 0; break;
  case RI_DTYPE_INT8: v.i = ((const int8_t *)p)[k]; break;
  case RI_DTYPE_UINT8: v.i = ((const uint8_t *)p)[k]; break;
  case RI_DTYPE_INT16: v.i = ((const int16_t *)p)[k]; break;
  case RI_DTYPE_UINT16: v.i = ((const uint16_t *)p)[k]; break;
  case RI_DTYPE_INT32: v.i = ((const int32_t *)p)[k]; break;
  case RI_DTYPE_UINT32: v.i = ((const uint32_t *)p)[k]; break;
  case RI_DTYPE_INT64: v.i = ((const int64_t *)p)[k]; break;
  case RI_DTYPE_UINT64:
    v.is_unsigned64 = 1;
    v.u = ((const uint64_t *)p)[k];
    v.i = (int64_t)v.u;
    break;
  default: break;
  }
  return v;
}

__device__ __forceinline__ double as_double(const val &v) {
  if (v.is_float) return v.f;
  return v.is_unsigned64 ? (double)v.u : (double)v.i;
}

__device__ __forceinline__ uint64_t as_bits(const val &v) {
  return v.is_float ? (uint64_t)f2i64(v.f) : (uint64_t)v.i;
}

__device__ __forceinline__ void store(void *p, ri_dtype t, int64_t k, const val &v) {
  switch (t) {
  case RI_DTYPE_FLOAT32:
    /* Integer -> float rounds to nearest once (int64 -> float directly, not through double). */
    if (v.is_float)
      ((float *)p)[k] = (float)v.f;
    else if (v.is_unsigned64)
      ((float *)p)[k] = (float)v.u;
    else
      ((float *)p)[k] = (float)v.i;
    break;
  case RI_DTYPE_FLOAT64: ((double *)p)[k] = as_double(v); break;
  case RI_DTYPE_FLOAT16: {
    float f = v.is_float ? (float)v.f : v.is_unsigned64 ? (float)v.u : (float)v.i;
    ((__half *)p)[k] = __float2half_rn(f);
    break;
  }
  case RI_DTYPE_BOOL:
    ((uint8_t *)p)[k] = v.is_float ? (uint8_t)(v.f != 0.0) : (uint8_t)(v.u != 0 || v.i != 0);
    break;
  case RI_DTYPE_INT8: ((int8_t *)p)[k] = (int8_t)as_bits(v); break;
  case RI_DTYPE_UINT8: ((uint8_t *)p)[k] = (uint8_t)as_bits(v); break;
  case RI_DTYPE_INT16: ((int16_t *)p)[k] = (int16_t)as_bits(v); break;
  case RI_DTYPE_UINT16: ((uint16_t *)p)[k] = (uint16_t)as_bits(v); break;
  case RI_DTYPE_INT32: ((int32_t *)p)[k] = (int32_t)as_bits(v); break;
  case RI_DTYPE_UINT32: ((uint32_t *)p)[k] = (uint32_t)as_bits(v); break;
  case RI_DTYPE_INT64: ((int64_t *)p)[k] = (int64_t)as_bits(v); break;
  case RI_DTYPE_UINT64: ((uint64_t *)p)[k] = v.is_float ? f2u64(v.f) : (uint64_t)v.i; break;
  default: break;
  }
}

__global__ void cast_kernel(const void *x, ri_dtype xt, void *y, ri_dtype yt, int64_t n) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    store(y, yt, i, load(x, xt, i));
}

static int castable(ri_dtype t) { return t != 8 && ri_dtype_size(t) != 0; }

extern "C" cudaError_t ri__cu_cast(cudaStream_t s, const void *x, ri_dtype xt, void *y, ri_dtype yt,
                                   int64_t n) {
  if (!castable(xt) || !castable(yt)) return cudaErrorInvalidValue;
  if (n <= 0) return cudaSuccess;
  cast_kernel<<<ri_cu_blocks(n), RI_CU_THREADS, 0, s>>>(x, xt, y, yt, n);
  return ri_cu_launched();
}
