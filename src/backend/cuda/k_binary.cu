/* Add, Sub, Mul and Div with broadcasting over a walk (kernels.h), with the fused activation on float
 * types. Fast paths: all three tensors dense along the walk, and one operand a single repeated element. */
#include <type_traits>

#include "backend/cuda/cu_common.cuh"

template <typename T, typename C> __device__ __forceinline__ C bin_op(int op, C a, C b);

template <> __device__ __forceinline__ float bin_op<float, float>(int op, float a, float b) {
  switch (op) {
  case RI__CU_ADD: return a + b;
  case RI__CU_SUB: return a - b;
  case RI__CU_MUL: return a * b;
  default: return a / b;
  }
}

/* Integers: arithmetic in the unsigned type of the same width wraps; division truncates, x / 0 = 0 and
 * MIN / -1 wraps to MIN (the CPU reference's rules). */
template <typename S, typename U> __device__ __forceinline__ S int_op(int op, S a, S b) {
  switch (op) {
  case RI__CU_ADD: return (S)((U)a + (U)b);
  case RI__CU_SUB: return (S)((U)a - (U)b);
  case RI__CU_MUL: return (S)((U)a * (U)b);
  default: return b == 0 ? (S)0 : b == (S)-1 ? (S)((U)0 - (U)a) : (S)(a / b);
  }
}

template <typename T> struct elem {
  static __device__ __forceinline__ T apply(int op, T a, T b, int act, float aa, float ab) {
    return int_op<T, typename std::make_unsigned<T>::type>(op, a, b);
  }
};
template <> struct elem<float> {
  static __device__ __forceinline__ float apply(int op, float a, float b, int act, float aa, float ab) {
    return ri_act(act, aa, ab, bin_op<float, float>(op, a, b));
  }
};
template <> struct elem<__half> {
  static __device__ __forceinline__ __half apply(int op, __half a, __half b, int act, float aa, float ab) {
    return __float2half_rn(ri_act(act, aa, ab, bin_op<float, float>(op, __half2float(a), __half2float(b))));
  }
};

/* mode 0: general walk; 1: all dense; 2: a dense, b scalar; 3: a scalar, b dense. I: index type. */
template <typename T, int MODE, typename I>
__global__ void binary_kernel(ri__cu_walk w, I n, int op, const T *a, const T *b, T *y, int act, float aa,
                              float ab) {
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    if (MODE == 1) {
      y[i] = elem<T>::apply(op, a[i], b[i], act, aa, ab);
    } else if (MODE == 2) {
      y[i] = elem<T>::apply(op, a[i], b[0], act, aa, ab);
    } else if (MODE == 3) {
      y[i] = elem<T>::apply(op, a[0], b[i], act, aa, ab);
    } else {
      I off[3];
      ri_walk_offsets<I>(w, i, 3, off);
      y[off[0]] = elem<T>::apply(op, a[off[1]], b[off[2]], act, aa, ab);
    }
  }
}

/* 1 when the tensor's strides along the walk are those of a dense row-major array of the walk's dims. */
static int dense(const ri__cu_walk *w, int t) {
  int64_t s = 1;
  for (int d = w->rank - 1; d >= 0; d--) {
    if (w->dims[d] != 1 && w->st[t][d] != s) return 0;
    s *= w->dims[d];
  }
  return 1;
}

static int all_zero(const ri__cu_walk *w, int t) {
  for (int d = 0; d < w->rank; d++)
    if (w->dims[d] != 1 && w->st[t][d] != 0) return 0;
  return 1;
}

template <typename T, typename I>
static void launch_i(cudaStream_t s, int op, const ri__cu_walk *w, int64_t n, const void *a, const void *b,
                     void *y, int act, float aa, float ab) {
  unsigned g = ri_cu_blocks(n);
  const T *ap = (const T *)a, *bp = (const T *)b;
  T *yp = (T *)y;
  int dy = dense(w, 0), da = dense(w, 1), db = dense(w, 2);
  if (dy && da && db)
    binary_kernel<T, 1, I><<<g, RI_CU_THREADS, 0, s>>>(*w, (I)n, op, ap, bp, yp, act, aa, ab);
  else if (dy && da && all_zero(w, 2))
    binary_kernel<T, 2, I><<<g, RI_CU_THREADS, 0, s>>>(*w, (I)n, op, ap, bp, yp, act, aa, ab);
  else if (dy && db && all_zero(w, 1))
    binary_kernel<T, 3, I><<<g, RI_CU_THREADS, 0, s>>>(*w, (I)n, op, ap, bp, yp, act, aa, ab);
  else
    binary_kernel<T, 0, I><<<g, RI_CU_THREADS, 0, s>>>(*w, (I)n, op, ap, bp, yp, act, aa, ab);
}

template <typename T>
static cudaError_t launch(cudaStream_t s, int op, const ri__cu_walk *w, const void *a, const void *b, void *y,
                          int act, float aa, float ab) {
  int64_t n = ri_walk_count(w);
  if (n <= 0) return cudaSuccess;
  if (ri_walk_fits_32(w, 3))
    launch_i<T, int32_t>(s, op, w, n, a, b, y, act, aa, ab);
  else
    launch_i<T, int64_t>(s, op, w, n, a, b, y, act, aa, ab);
  return ri_cu_launched();
}

extern "C" cudaError_t ri__cu_binary(cudaStream_t s, ri_dtype dt, int op, const ri__cu_walk *w, const void *a,
                                     const void *b, void *y, int act, float act_a, float act_b) {
  if (op < RI__CU_ADD || op > RI__CU_DIV || w->rank < 0 || w->rank > RI__CU_MAX_DIMS)
    return cudaErrorInvalidValue;
  switch (dt) {
  case RI_DTYPE_FLOAT32: return launch<float>(s, op, w, a, b, y, act, act_a, act_b);
  case RI_DTYPE_FLOAT16: return launch<__half>(s, op, w, a, b, y, act, act_a, act_b);
  case RI_DTYPE_INT32: return act ? cudaErrorInvalidValue : launch<int32_t>(s, op, w, a, b, y, 0, 0.f, 0.f);
  case RI_DTYPE_INT64: return act ? cudaErrorInvalidValue : launch<int64_t>(s, op, w, a, b, y, 0, 0.f, 0.f);
  default: return cudaErrorInvalidValue;
  }
}
