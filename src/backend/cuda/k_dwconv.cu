/* Depthwise 2-D convolution (group == channels, one filter per channel) with bias and activation fused,
 * NCHW or NHWC, float or half data with float accumulation. One thread per output element; in NHWC
 * consecutive threads take consecutive channels so that loads and stores coalesce. The kernel size is a
 * template parameter for 3x3 (unrolled taps) and a runtime value otherwise. */
#include "backend/cuda/cu_common.cuh"

template <typename T, int KH, int KW, bool NHWC, int ACT>
__global__ void dw_kernel(ri__cu_dwconv_args p, int64_t total, const T *x, const T *w, const float *bias,
                          T *y) {
  const int kh = KH > 0 ? KH : p.kh, kw = KW > 0 ? KW : p.kw;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t b, ch, oy, ox, r = i;
    if (NHWC) {
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
    float acc = bias ? bias[ch] : 0.f;
#pragma unroll
    for (int ky = 0; ky < kh; ky++) {
      int64_t iy = y0 + (int64_t)ky * p.dh;
      if (iy < 0 || iy >= p.ih) continue;
#pragma unroll
      for (int kx = 0; kx < kw; kx++) {
        int64_t ix = x0 + (int64_t)kx * p.dw;
        if (ix < 0 || ix >= p.iw) continue;
        float xv, wv;
        if (NHWC) {
          xv = ri_ld(x, ((b * p.ih + iy) * p.iw + ix) * p.c + ch);
          wv = ri_ld(w, ((int64_t)ky * kw + kx) * p.c + ch);
        } else {
          xv = ri_ld(x, ((b * p.c + ch) * p.ih + iy) * p.iw + ix);
          wv = ri_ld(w, (ch * kh + ky) * kw + kx);
        }
        acc += xv * wv;
      }
    }
    ri_st(y, i, ri_act(ACT, p.act_a, p.act_b, acc));
  }
}

template <typename T, int K, bool NHWC>
static void launch_act(cudaStream_t s, const ri__cu_dwconv_args *p, int64_t total, const T *x, const T *w,
                       const float *b, T *y) {
  unsigned g = ri_cu_blocks(total);
  switch (p->act) {
  case RI_CU_ACT_RELU:
    dw_kernel<T, K, K, NHWC, RI_CU_ACT_RELU><<<g, RI_CU_THREADS, 0, s>>>(*p, total, x, w, b, y);
    break;
  case RI_CU_ACT_CLIP:
    dw_kernel<T, K, K, NHWC, RI_CU_ACT_CLIP><<<g, RI_CU_THREADS, 0, s>>>(*p, total, x, w, b, y);
    break;
  case RI_CU_ACT_LEAKY:
    dw_kernel<T, K, K, NHWC, RI_CU_ACT_LEAKY><<<g, RI_CU_THREADS, 0, s>>>(*p, total, x, w, b, y);
    break;
  case RI_CU_ACT_SIGMOID:
    dw_kernel<T, K, K, NHWC, RI_CU_ACT_SIGMOID><<<g, RI_CU_THREADS, 0, s>>>(*p, total, x, w, b, y);
    break;
  case RI_CU_ACT_HSIG:
    dw_kernel<T, K, K, NHWC, RI_CU_ACT_HSIG><<<g, RI_CU_THREADS, 0, s>>>(*p, total, x, w, b, y);
    break;
  case RI_CU_ACT_HSWISH:
    dw_kernel<T, K, K, NHWC, RI_CU_ACT_HSWISH><<<g, RI_CU_THREADS, 0, s>>>(*p, total, x, w, b, y);
    break;
  default: dw_kernel<T, K, K, NHWC, RI_CU_ACT_NONE><<<g, RI_CU_THREADS, 0, s>>>(*p, total, x, w, b, y); break;
  }
}

template <typename T>
static cudaError_t launch(cudaStream_t s, const ri__cu_dwconv_args *p, const void *xv, const void *wv,
                          const float *b, void *yv) {
  int64_t total = p->n * p->c * p->oh * p->ow;
  if (total <= 0) return cudaSuccess;
  const T *x = (const T *)xv, *w = (const T *)wv;
  T *y = (T *)yv;
  bool k3 = p->kh == 3 && p->kw == 3;
  if (p->nhwc) {
    if (k3)
      launch_act<T, 3, true>(s, p, total, x, w, b, y);
    else
      launch_act<T, 0, true>(s, p, total, x, w, b, y);
  } else {
    if (k3)
      launch_act<T, 3, false>(s, p, total, x, w, b, y);
    else
      launch_act<T, 0, false>(s, p, total, x, w, b, y);
  }
  return ri_cu_launched();
}

extern "C" cudaError_t ri__cu_dwconv(cudaStream_t s, ri_dtype dt, const ri__cu_dwconv_args *p, const void *x,
                                     const void *w, const float *bias, void *y) {
  if (p->kh < 1 || p->kw < 1 || p->kh > 7 || p->kw > 7 || p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1)
    return cudaErrorInvalidValue;
  if (dt == RI_DTYPE_FLOAT32) return launch<float>(s, p, x, w, bias, y);
  if (dt == RI_DTYPE_FLOAT16) return launch<__half>(s, p, x, w, bias, y);
  return cudaErrorInvalidValue;
}
