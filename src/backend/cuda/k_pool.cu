/* Pooling: GlobalAveragePool, and MaxPool / AveragePool over 2-D windows with dilation, asymmetric pads and
 * ceil-mode output sizes, in NCHW or NHWC. One thread per output element (pooling is memory bound). */
#include <math.h>

#include "backend/cuda/cu_common.cuh"

/* NCHW: one warp per (n, c) plane, lanes striding over the plane. */
template <typename T> __global__ void gap_nchw(const T *x, T *y, int64_t planes, int64_t hw) {
  int lane = threadIdx.x & 31;
  int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int64_t nwarps = ((int64_t)gridDim.x * blockDim.x) >> 5;
  for (int64_t p = warp; p < planes; p += nwarps) {
    const T *row = x + p * hw;
    float acc = 0.f;
    for (int64_t i = lane; i < hw; i += 32)
      acc += ri_ld(row, i);
    for (int o = 16; o > 0; o >>= 1)
      acc += __shfl_down_sync(0xffffffffu, acc, o);
    if (lane == 0) ri_st(y, p, acc / (float)hw);
  }
}

/* NHWC: one thread per (n, c), consecutive threads reading consecutive channels. */
template <typename T> __global__ void gap_nhwc(const T *x, T *y, int64_t n, int64_t c, int64_t hw) {
  int64_t total = n * c;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t b = i / c, ch = i - b * c;
    const T *base = x + b * hw * c + ch;
    float acc = 0.f;
    for (int64_t k = 0; k < hw; k++)
      acc += ri_ld(base, k * c);
    ri_st(y, i, acc / (float)hw);
  }
}

template <typename T>
static cudaError_t gap(cudaStream_t s, const void *x, void *y, int64_t n, int64_t c, int64_t hw, int nhwc) {
  if (nhwc) {
    gap_nhwc<T><<<ri_cu_blocks(n * c), RI_CU_THREADS, 0, s>>>((const T *)x, (T *)y, n, c, hw);
  } else {
    int64_t planes = n * c;
    gap_nchw<T><<<ri_cu_blocks(planes * 32), RI_CU_THREADS, 0, s>>>((const T *)x, (T *)y, planes, hw);
  }
  return ri_cu_launched();
}

extern "C" cudaError_t ri__cu_global_avg_pool(cudaStream_t s, ri_dtype dt, const void *x, void *y, int64_t n,
                                              int64_t c, int64_t hw, int nhwc) {
  if (hw < 1) return cudaErrorInvalidValue;
  if (n * c <= 0) return cudaSuccess;
  if (dt == RI_DTYPE_FLOAT32) return gap<float>(s, x, y, n, c, hw, nhwc);
  if (dt == RI_DTYPE_FLOAT16) return gap<__half>(s, x, y, n, c, hw, nhwc);
  return cudaErrorInvalidValue;
}

template <typename T> __global__ void pool_kernel(ri__cu_pool_args p, int64_t total, const T *x, T *y) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t b, ch, oy, ox, r = i;
    if (p.nhwc) {
      ch = r % p.c;
      r /= p.c;
      ox = r % p.ow;
      r /= p.ow;
      oy = r % p.oh;
      b = r / p.oh;
    } else {
      ox = r % p.ow;
      r /= p.ow;
      oy = r % p.oh;
      r /= p.oh;
      ch = r % p.c;
      b = r / p.c;
    }
    int64_t y0 = oy * p.sh - p.pad_t, x0 = ox * p.sw - p.pad_l;
    float acc = p.is_max ? -INFINITY : 0.f;
    int64_t inside = 0, padded = 0;
    for (int64_t ky = 0; ky < p.kh; ky++) {
      int64_t iy = y0 + ky * p.dh;
      bool yin = iy >= 0 && iy < p.ih;
      bool ypad = iy >= -p.pad_t && iy < p.ih + p.pad_b;
      for (int64_t kx = 0; kx < p.kw; kx++) {
        int64_t ix = x0 + kx * p.dw;
        if (ypad && ix >= -p.pad_l && ix < p.iw + p.pad_r) padded++;
        if (!yin || ix < 0 || ix >= p.iw) continue;
        int64_t off =
            p.nhwc ? ((b * p.ih + iy) * p.iw + ix) * p.c + ch : ((b * p.c + ch) * p.ih + iy) * p.iw + ix;
        float v = ri_ld(x, off);
        if (p.is_max)
          acc = v > acc || v != v ? v : acc;
        else
          acc += v;
        inside++;
      }
    }
    if (!p.is_max) {
      int64_t div = p.count_include_pad ? padded : inside;
      acc = div > 0 ? acc / (float)div : 0.f;
    }
    ri_st(y, i, acc);
  }
}

extern "C" cudaError_t ri__cu_pool2d(cudaStream_t s, ri_dtype dt, const ri__cu_pool_args *p, const void *x,
                                     void *y) {
  if (p->kh < 1 || p->kw < 1 || p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1)
    return cudaErrorInvalidValue;
  int64_t total = p->n * p->c * p->oh * p->ow;
  if (total <= 0) return cudaSuccess;
  unsigned g = ri_cu_blocks(total);
  if (dt == RI_DTYPE_FLOAT32)
    pool_kernel<float><<<g, RI_CU_THREADS, 0, s>>>(*p, total, (const float *)x, (float *)y);
  else if (dt == RI_DTYPE_FLOAT16)
    pool_kernel<__half><<<g, RI_CU_THREADS, 0, s>>>(*p, total, (const __half *)x, (__half *)y);
  else
    return cudaErrorInvalidValue;
  return ri_cu_launched();
}
