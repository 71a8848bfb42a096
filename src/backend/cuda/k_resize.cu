/* Resize of the last two axes from host-built source tables (kernels.h), one thread per output element. */
#include "backend/cuda/cu_common.cuh"

template <typename T, bool LINEAR>
__global__ void resize_kernel(ri__cu_resize_args p, int64_t total, const ri__cu_resize_tap *th,
                              const ri__cu_resize_tap *tw, const T *x, T *y) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t ox = i % p.ow, r = i / p.ow;
    int64_t oy = r % p.oh, plane = r / p.oh;
    const T *xp = x + plane * p.ih * p.iw;
    ri__cu_resize_tap ty = th[oy], tx = tw[ox];
    float v;
    if (!LINEAR) {
      v = ri_ld(xp, (int64_t)ty.i0 * p.iw + tx.i0);
    } else {
      float a = ri_ld(xp, (int64_t)ty.i0 * p.iw + tx.i0), b = ri_ld(xp, (int64_t)ty.i0 * p.iw + tx.i1);
      float c = ri_ld(xp, (int64_t)ty.i1 * p.iw + tx.i0), d = ri_ld(xp, (int64_t)ty.i1 * p.iw + tx.i1);
      v = (1.f - ty.w) * ((1.f - tx.w) * a + tx.w * b) + ty.w * ((1.f - tx.w) * c + tx.w * d);
    }
    ri_st(y, i, v);
  }
}

template <typename T>
static void launch(cudaStream_t s, const ri__cu_resize_args *p, int64_t total, const ri__cu_resize_tap *th,
                   const ri__cu_resize_tap *tw, const void *x, void *y) {
  unsigned g = ri_cu_blocks(total);
  if (p->linear)
    resize_kernel<T, true><<<g, RI_CU_THREADS, 0, s>>>(*p, total, th, tw, (const T *)x, (T *)y);
  else
    resize_kernel<T, false><<<g, RI_CU_THREADS, 0, s>>>(*p, total, th, tw, (const T *)x, (T *)y);
}

extern "C" cudaError_t ri__cu_resize(cudaStream_t s, ri_dtype dt, const ri__cu_resize_args *p,
                                     const ri__cu_resize_tap *th, const ri__cu_resize_tap *tw, const void *x,
                                     void *y) {
  if (p->ih < 1 || p->iw < 1) return cudaErrorInvalidValue;
  int64_t total = p->outer * p->oh * p->ow;
  if (total <= 0) return cudaSuccess;
  if (dt == RI_DTYPE_FLOAT32)
    launch<float>(s, p, total, th, tw, x, y);
  else if (dt == RI_DTYPE_FLOAT16)
    launch<__half>(s, p, total, th, tw, x, y);
  else
    return cudaErrorInvalidValue;
  return ri_cu_launched();
}
