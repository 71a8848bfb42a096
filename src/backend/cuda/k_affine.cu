/* Per-channel affine + activation: the epilogue of convolutions (bias and fused activation) and the
 * kernel of an unfused BatchNormalization (scale and shift folded on the host). */
#include <type_traits>

#include "backend/cuda/cu_common.cuh"

/* INNER1: inner == 1 (channels last), so that the channel is i % channels. I: index type. */
template <typename T, int ACT, bool INNER1, typename I>
__global__ void affine_kernel(const T *x, T *y, I n, I channels, I inner, const float *scale,
                              const float *shift, float a, float b) {
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    I c = INNER1 ? i % channels : (i / inner) % channels;
    float v = ri_ld(x, i);
    if (scale) v *= scale[c];
    if (shift) v += shift[c];
    ri_st(y, i, ri_act(ACT, a, b, v));
  }
}

template <typename T, int ACT, typename I>
static void launch_i(cudaStream_t s, const T *x, T *y, int64_t n, int64_t ch, int64_t inner, const float *sc,
                     const float *sh, float a, float b) {
  unsigned g = ri_cu_blocks(n);
  if (inner == 1)
    affine_kernel<T, ACT, true, I><<<g, RI_CU_THREADS, 0, s>>>(x, y, (I)n, (I)ch, (I)inner, sc, sh, a, b);
  else
    affine_kernel<T, ACT, false, I><<<g, RI_CU_THREADS, 0, s>>>(x, y, (I)n, (I)ch, (I)inner, sc, sh, a, b);
}

/* Channels-last half with an even channel count: two channels per thread through __half2. */
template <int ACT>
__global__ void affine_h2_kernel(const __half2 *x, __half2 *y, int32_t n2, int32_t c2, const float *scale,
                                 const float *shift, float a, float b) {
  for (int32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n2; i += gridDim.x * blockDim.x) {
    int32_t c = (i % c2) * 2;
    float2 v = __half22float2(x[i]);
    if (scale) v.x *= scale[c], v.y *= scale[c + 1];
    if (shift) v.x += shift[c], v.y += shift[c + 1];
    y[i] = __floats2half2_rn(ri_act(ACT, a, b, v.x), ri_act(ACT, a, b, v.y));
  }
}

template <typename T, int ACT>
static void launch_act(cudaStream_t s, const T *x, T *y, int64_t n, int64_t ch, int64_t inner,
                       const float *sc, const float *sh, float a, float b) {
  if (std::is_same<T, __half>::value && inner == 1 && ch % 2 == 0 && n % 2 == 0 && n <= RI_CU_INDEX32_MAX &&
      (uintptr_t)x % 4 == 0 && (uintptr_t)y % 4 == 0) {
    affine_h2_kernel<ACT>
        <<<ri_cu_blocks(n / 2), RI_CU_THREADS, 0, s>>>((const __half2 *)(const void *)x, (__half2 *)(void *)y,
                                                       (int32_t)(n / 2), (int32_t)(ch / 2), sc, sh, a, b);
    return;
  }
  if (n <= RI_CU_INDEX32_MAX)
    launch_i<T, ACT, int32_t>(s, x, y, n, ch, inner, sc, sh, a, b);
  else
    launch_i<T, ACT, int64_t>(s, x, y, n, ch, inner, sc, sh, a, b);
}

template <typename T>
static cudaError_t launch(cudaStream_t s, const void *xv, void *yv, int64_t n, int64_t ch, int64_t inner,
                          const float *sc, const float *sh, int act, float a, float b) {
  const T *x = (const T *)xv;
  T *y = (T *)yv;
  switch (act) {
  case RI_CU_ACT_NONE: launch_act<T, RI_CU_ACT_NONE>(s, x, y, n, ch, inner, sc, sh, a, b); break;
  case RI_CU_ACT_RELU: launch_act<T, RI_CU_ACT_RELU>(s, x, y, n, ch, inner, sc, sh, a, b); break;
  case RI_CU_ACT_CLIP: launch_act<T, RI_CU_ACT_CLIP>(s, x, y, n, ch, inner, sc, sh, a, b); break;
  case RI_CU_ACT_LEAKY: launch_act<T, RI_CU_ACT_LEAKY>(s, x, y, n, ch, inner, sc, sh, a, b); break;
  case RI_CU_ACT_SIGMOID: launch_act<T, RI_CU_ACT_SIGMOID>(s, x, y, n, ch, inner, sc, sh, a, b); break;
  case RI_CU_ACT_HSIG: launch_act<T, RI_CU_ACT_HSIG>(s, x, y, n, ch, inner, sc, sh, a, b); break;
  case RI_CU_ACT_HSWISH: launch_act<T, RI_CU_ACT_HSWISH>(s, x, y, n, ch, inner, sc, sh, a, b); break;
  default: return cudaErrorInvalidValue;
  }
  return ri_cu_launched();
}

extern "C" cudaError_t ri__cu_channel_affine(cudaStream_t s, ri_dtype dt, const void *x, void *y, int64_t n,
                                             int64_t channels, int64_t inner, const float *scale,
                                             const float *shift, int act, float act_a, float act_b) {
  if (channels < 1 || inner < 1) return cudaErrorInvalidValue;
  if (n <= 0) return cudaSuccess;
  if (dt == RI_DTYPE_FLOAT32)
    return launch<float>(s, x, y, n, channels, inner, scale, shift, act, act_a, act_b);
  if (dt == RI_DTYPE_FLOAT16)
    return launch<__half>(s, x, y, n, channels, inner, scale, shift, act, act_a, act_b);
  return cudaErrorInvalidValue;
}
