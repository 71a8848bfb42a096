/* Data movement over walks (kernels.h): strided copies with an optional float32 <-> float16 conversion (the
 * engine of Transpose, Slice, Concat, Tile, Reshape of non-row-major data and layout changes), constant
 * fills and constant padding. Raw copies move elements as unsigned integers of the element's size. */
#include <string.h>

#include "backend/cuda/cu_common.cuh"

template <typename S, typename D> __device__ __forceinline__ D conv_elem(S v) { return (D)v; }
template <> __device__ __forceinline__ __half conv_elem<float, __half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ float conv_elem<__half, float>(__half v) { return __half2float(v); }

/* DENSE: the destination is dense along the walk (its offset is the flat index). I: index type. */
template <typename S, typename D, bool DENSE, typename I>
__global__ void copy_kernel(ri__cu_walk w, I n, const S *src, D *dst) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    I off[3];
    ri_walk_offsets<I>(w, i, 2, off);
    dst[DENSE ? i : off[0]] = conv_elem<S, D>(src[off[1]]);
  }
}

static int dst_dense(const ri__cu_walk *w) {
  int64_t s = 1;
  for (int d = w->rank - 1; d >= 0; d--) {
    if (w->dims[d] != 1 && w->st[0][d] != s) return 0;
    s *= w->dims[d];
  }
  return 1;
}

template <typename S, typename D, typename I>
static void launch_i(cudaStream_t s, const ri__cu_walk *w, int64_t n, const void *src, void *dst) {
  unsigned g = ri_cu_blocks(n);
  if (dst_dense(w))
    ri_cu_launch(copy_kernel<S, D, true, I>, g, RI_CU_THREADS, 0, s, *w, (I)n, (const S *)src, (D *)dst);
  else
    ri_cu_launch(copy_kernel<S, D, false, I>, g, RI_CU_THREADS, 0, s, *w, (I)n, (const S *)src, (D *)dst);
}

template <typename S, typename D>
static cudaError_t launch(cudaStream_t s, const ri__cu_walk *w, const void *src, void *dst) {
  int64_t n = ri_walk_count(w);
  if (n <= 0) return cudaSuccess;
  if (ri_walk_fits_32(w, 2))
    launch_i<S, D, int32_t>(s, w, n, src, dst);
  else
    launch_i<S, D, int64_t>(s, w, n, src, dst);
  return ri_cu_launched();
}

extern "C" cudaError_t ri__cu_copy(cudaStream_t s, const ri__cu_walk *w, const void *src, ri_dtype st,
                                   void *dst, ri_dtype dt) {
  if (w->rank < 0 || w->rank > RI__CU_MAX_DIMS) return cudaErrorInvalidValue;
  if (st == RI_DTYPE_FLOAT32 && dt == RI_DTYPE_FLOAT16) return launch<float, __half>(s, w, src, dst);
  if (st == RI_DTYPE_FLOAT16 && dt == RI_DTYPE_FLOAT32) return launch<__half, float>(s, w, src, dst);
  if (st != dt) return cudaErrorInvalidValue;
  switch (ri_dtype_size(st)) {
  case 1: return launch<uint8_t, uint8_t>(s, w, src, dst);
  case 2: return launch<uint16_t, uint16_t>(s, w, src, dst);
  case 4: return launch<uint32_t, uint32_t>(s, w, src, dst);
  case 8: return launch<uint64_t, uint64_t>(s, w, src, dst);
  default: return cudaErrorInvalidValue;
  }
}

template <typename T> __global__ void fill_kernel(T *y, int64_t n, T v) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] = v;
}

/* The bit pattern of `value` converted to dt, in the low bytes of *bits. */
static int value_bits(ri_dtype dt, double value, uint64_t *bits) {
  *bits = 0;
  switch (dt) {
  case RI_DTYPE_FLOAT32: {
    float f = (float)value;
    memcpy(bits, &f, 4);
    return 1;
  }
  case RI_DTYPE_FLOAT64: memcpy(bits, &value, 8); return 1;
  case RI_DTYPE_FLOAT16: {
    __half h = __double2half(value);
    memcpy(bits, &h, 2);
    return 1;
  }
  case RI_DTYPE_BOOL: *bits = value != 0.0; return 1;
  case RI_DTYPE_INT8: *bits = (uint8_t)(int8_t)value; return 1;
  case RI_DTYPE_UINT8: *bits = (uint8_t)value; return 1;
  case RI_DTYPE_INT16: *bits = (uint16_t)(int16_t)value; return 1;
  case RI_DTYPE_UINT16: *bits = (uint16_t)value; return 1;
  case RI_DTYPE_INT32: *bits = (uint32_t)(int32_t)value; return 1;
  case RI_DTYPE_UINT32: *bits = (uint32_t)value; return 1;
  case RI_DTYPE_INT64: *bits = (uint64_t)(int64_t)value; return 1;
  case RI_DTYPE_UINT64: *bits = (uint64_t)value; return 1;
  default: return 0;
  }
}

extern "C" cudaError_t ri__cu_fill(cudaStream_t s, void *y, ri_dtype dt, int64_t n, double value) {
  uint64_t bits;
  if (!value_bits(dt, value, &bits)) return cudaErrorInvalidValue;
  if (n <= 0) return cudaSuccess;
  unsigned g = ri_cu_blocks(n);
  switch (ri_dtype_size(dt)) {
  case 1: fill_kernel<uint8_t><<<g, RI_CU_THREADS, 0, s>>>((uint8_t *)y, n, (uint8_t)bits); break;
  case 2: fill_kernel<uint16_t><<<g, RI_CU_THREADS, 0, s>>>((uint16_t *)y, n, (uint16_t)bits); break;
  case 4: fill_kernel<uint32_t><<<g, RI_CU_THREADS, 0, s>>>((uint32_t *)y, n, (uint32_t)bits); break;
  case 8: fill_kernel<uint64_t><<<g, RI_CU_THREADS, 0, s>>>((uint64_t *)y, n, bits); break;
  default: return cudaErrorInvalidValue;
  }
  return ri_cu_launched();
}

template <typename T> __global__ void pad_kernel(ri__cu_pad_args p, int64_t n, const T *x, T *y, T value) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t rest = i, yo = 0, xo = 0;
    bool inside = true;
    for (int d = p.w.rank - 1; d >= 0; d--) {
      int64_t q = rest / p.w.dims[d], o = rest - q * p.w.dims[d];
      rest = q;
      yo += o * p.w.st[0][d];
      int64_t c = o - p.out_off[d], len = p.in_len[d];
      if (c < 0 || c >= len) {
        if (p.mode == 0 || len <= 0) {
          inside = false;
        } else if (p.mode == 2) {
          c = c < 0 ? 0 : len - 1;
        } else {
          /* Reflect: period 2 * (len - 1); a single element reflects onto itself. */
          if (len == 1) {
            c = 0;
          } else {
            int64_t period = 2 * (len - 1);
            c %= period;
            if (c < 0) c += period;
            if (c >= len) c = period - c;
          }
        }
      }
      xo += (p.in_off[d] + c) * p.w.st[1][d];
    }
    y[yo] = inside ? x[xo] : value;
  }
}

extern "C" cudaError_t ri__cu_pad(cudaStream_t s, const ri__cu_pad_args *p, const void *x, void *y,
                                  ri_dtype dt, double value) {
  uint64_t bits;
  if (!value_bits(dt, value, &bits) || p->w.rank < 0 || p->w.rank > RI__CU_MAX_DIMS)
    return cudaErrorInvalidValue;
  int64_t n = ri_walk_count(&p->w);
  if (n <= 0) return cudaSuccess;
  unsigned g = ri_cu_blocks(n);
  switch (ri_dtype_size(dt)) {
  case 1:
    pad_kernel<uint8_t><<<g, RI_CU_THREADS, 0, s>>>(*p, n, (const uint8_t *)x, (uint8_t *)y, (uint8_t)bits);
    break;
  case 2:
    pad_kernel<uint16_t>
        <<<g, RI_CU_THREADS, 0, s>>>(*p, n, (const uint16_t *)x, (uint16_t *)y, (uint16_t)bits);
    break;
  case 4:
    pad_kernel<uint32_t>
        <<<g, RI_CU_THREADS, 0, s>>>(*p, n, (const uint32_t *)x, (uint32_t *)y, (uint32_t)bits);
    break;
  case 8:
    pad_kernel<uint64_t><<<g, RI_CU_THREADS, 0, s>>>(*p, n, (const uint64_t *)x, (uint64_t *)y, bits);
    break;
  default: return cudaErrorInvalidValue;
  }
  return ri_cu_launched();
}
