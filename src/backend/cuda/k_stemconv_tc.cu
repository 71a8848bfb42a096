/* Tensor-core variant of the RGB stem (variant 3 of k_stemconv.cu): 3x3 over 3 input channels, at most 32
 * output channels, half output (fp16 engines). The FFMA variants spend 27 x 32 fmaf per output pixel and
 * run far from their traffic's bound (the fp32 and fp16 stems took the same 0.73 ms at batch 256 on an
 * H200 although the fp32 one writes twice the bytes); here the products run on mma.sync m16n8k16.
 * Measured on an H200: 0.678 against 0.744 ms at batch 256, 10.6 against 17.7 us at batch 1
 * (bench/results/stem-2026-11-27.txt); still about a third of the bandwidth other layers reach.
 *
 * Implicit GEMM: rows are 16 output pixels of one output row, columns the 32 output channels (4 n8 tiles),
 * K the 27 taps. The input stays at about fp32 accuracy: each input value x is staged as the half pair
 * (hi, lo) = (half(x), half(x - hi)) and each weight w as (w_hi, w_lo) the same way, and an output sums
 * x_hi w_lo (pass 2: K 32, two taps per register) and then (x_hi + x_lo) w_hi (pass 1: K 64, one tap per
 * register: the pair meets (w_hi, w_hi)); only x_lo w_lo (2^-22 relative) and the roundings of the lo
 * parts are lost, against the half output's 2^-11. Values beyond half's range (65504) do not fit; fp16
 * engines hold every activation in half anyway. The sums differ from the FFMA variants' in the last float
 * bits, so a node runs this variant at every batch or at none (cuda_tune_direct.c); each output still
 * depends on its own image only, in a fixed order (batch invariance).
 *
 * K order, free since the sums differ anyway, is chosen for the registers: lane quad position t carries,
 * in pass-1 slot (chunk c, half s), tap row r = 2c + s (ci = r / 3, ky = r % 3) at kx = t for t < 3, and
 * lane t = 3 the last row (ci 2, ky 2) at kx = r for r < 3; pass 2 pairs a lane's own taps of chunks 2c'
 * and 2c' + 1 (one byte permute). Output channels are permuted in the weight fragments so that the
 * accumulators of lane (g, t) are channels 8t .. 8t + 7 of pixels g and g + 8: one 16-byte store per pixel,
 * a warp's store one contiguous 512-byte run.
 *
 * Blocks of 8 warps are persistent: they keep the weight fragments in registers and walk bands of TR output
 * rows x OWT output columns of one image. A band's input window (3 channels x NR rows x NC columns, zero
 * outside the image, any input layout and type through strides, at most 4096 values) is split into (hi,
 * lo) pairs in shared memory. For float inputs (the caller's image) the next band's values are copied by
 * 4-byte cp.async into a second buffer while the current band's tiles run; half inputs (another node's
 * NHWC output) are loaded when their band starts, two blocks per multiprocessor overlapping each other.
 * The split, the fragments and a warp's tiles are in cu_stem_tc.cuh, shared with variant 4
 * (k_stemconv_tcp.cu: the same bits, fed by a deeper load pipeline). */
#include "backend/cuda/cu_common.cuh"
#include "backend/cuda/cu_mma.cuh"
#include "backend/cuda/cu_stem_tc.cuh"

namespace {

constexpr int TC_THREADS = 256;
constexpr int TC_WARPS = TC_THREADS / 32;
static_assert(TC_WARPS == ri_cu_stem_tc::WARPS, "the tiles' warp count");
constexpr int TC_WORDS = 4096; /* staged (hi, lo) pairs per band (16 KB) */
constexpr int TC_MAX_TR = 8;   /* output rows per band, at most */

/* A launch's band shape (host: tc_geometry). */
struct tc_geo {
  int tr, owt; /* output rows and columns of a band */
  int nr, nc;  /* input rows (per channel) and columns staged for it */
  int bands_x, bands_y, bands;
};

using ri_cu_stem_tc::split_half2;

/* The band's first image, output row and output column. */
__device__ __forceinline__ void band_origin(const tc_geo &g, const ri__cu_stemconv_args &p, int bi, int &b,
                                            int &oy0, int &ox0) {
  const int bx = bi % g.bands_x, q = bi / g.bands_x;
  ox0 = bx * g.owt;
  oy0 = (q % g.bands_y) * g.tr;
  b = q / g.bands_y;
}

/* Calls f(b, i, off, in) for this thread's elements of band bi's input window: warp w takes the window's
 * channel rows w, w + 8, ..., its lanes the columns; b is the band's image, i the element's place in the
 * window (channel-row major), off its offset in the image and in whether it lies inside the image (off is
 * meaningless otherwise). A band walks the same elements of the same threads every time. */
template <typename F>
__device__ __forceinline__ void band_walk(const tc_geo &g, const ri__cu_stemconv_args &p, int bi, F f) {
  int b, oy0, ox0;
  band_origin(g, p, bi, b, oy0, ox0);
  const int iy0 = oy0 * p.sh - p.pad_t, ix0 = ox0 * p.sw - p.pad_l;
  for (int cr = (int)threadIdx.x >> 5; cr < 3 * g.nr; cr += TC_WARPS) {
    const int ci = (cr >= g.nr) + (cr >= 2 * g.nr), iy = iy0 + cr - ci * g.nr;
    const bool row_in = (unsigned)iy < (unsigned)p.ih;
    for (int cl = (int)threadIdx.x & 31; cl < g.nc; cl += 32) {
      const int ix = ix0 + cl;
      f(b, cr * g.nc + cl, ci * (int)p.xs_c + iy * (int)p.xs_h + ix * (int)p.xs_w,
        row_in && (unsigned)ix < (unsigned)p.iw);
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(TC_THREADS, 2)
    stem_tc_kernel(const ri__cu_stemconv_args p, const tc_geo g, const T *__restrict__ x,
                   const float *__restrict__ w, const float *__restrict__ bias, int h2,
                   __half *__restrict__ y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  __shared__ uint32_t xs[TC_WORDS];
  const int tid = threadIdx.x;

  ri_cu_stem_tc::frags f; /* weight fragments and tap offsets (cu_stem_tc.cuh) */
  ri_cu_stem_tc::load_frags(p, w, g.nr, g.nc, f);
  __shared__ __align__(16) float bs[32];
  if (tid < 32) bs[tid] = bias && tid < p.m ? bias[tid] : 0.f; /* published by the loop's first barrier */

  /* float input (the caller's image): the next band's values arrive by 4-byte cp.async into raw while this
   * band's tiles run, and each thread splits the values it copied; half input: loaded and split in place */
  __shared__ float raw[sizeof(T) == 4 ? TC_WORDS : 1];
  auto issue = [&](int band) {
    band_walk(g, p, band, [&](int b, int i, int off, bool in) {
      const T *src = x + (int64_t)b * p.xs_n + (in ? off : 0);
      asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(ri_cu_mma::smem_u32(raw + i)),
                   "l"(src), "r"(in ? 4 : 0));
    });
    ri_cu_mma::cp_commit();
  };
  int bi = blockIdx.x;
  if constexpr (sizeof(T) == 4)
    if (bi < g.bands) issue(bi);
  for (; bi < g.bands; bi += gridDim.x) {
    if constexpr (sizeof(T) == 4) ri_cu_mma::cp_wait<0>();
    __syncthreads(); /* the previous band's tiles are done with xs */
    band_walk(g, p, bi, [&](int b, int i, int off, bool in) {
      float v;
      if constexpr (sizeof(T) == 4)
        v = raw[i];
      else
        v = in ? ri_ld(x + (int64_t)b * p.xs_n, off) : 0.f;
      xs[i] = split_half2(v);
    });
    __syncthreads(); /* xs holds the band; raw is free */
    if constexpr (sizeof(T) == 4)
      if (bi + (int)gridDim.x < g.bands) issue(bi + (int)gridDim.x);

    int b, oy0, ox0;
    band_origin(g, p, bi, b, oy0, ox0);
    ri_cu_stem_tc::band_tiles(p, f, xs, g.nc, 0, bs, b, oy0, ox0, min(g.tr, p.oh - oy0),
                              min(g.owt, p.ow - ox0), h2, y);
  }
}

/* The band shape of a launch; 0 when the variant does not apply. Bands are 64 output columns wide (less
 * for narrower outputs, or when the window would not fit) and as tall as the staging holds, at most
 * TC_MAX_TR rows. */
int tc_geometry(const ri__cu_stemconv_args *p, tc_geo *g) {
  if (!ri__cu_stemconv_supported(p) || p->kh != 3 || p->kw != 3 || p->c != 3 || p->m > 32 || p->y_f32 ||
      p->oh < 1 || p->ow < 1)
    return 0;
  /* input offsets within an image in int32 */
  int64_t span =
      2 * llabs(p->xs_c) + (int64_t)(p->ih - 1) * llabs(p->xs_h) + (int64_t)(p->iw - 1) * llabs(p->xs_w);
  if (span > INT32_MAX || p->ih < 1 || p->iw < 1) return 0;
  if (!ri_cu_stem_tc::out_fits32(p)) return 0;
  int64_t owt = p->ow < 64 ? (p->ow + 15) / 16 * 16 : 64;
  for (; owt >= 16; owt -= 16) {
    int64_t nc = (owt - 1) * p->sw + 2 * (int64_t)p->dw + 1;
    int64_t tr = 0;
    for (int64_t r = 1; r <= TC_MAX_TR && r <= p->oh; r++) {
      int64_t nr = (r - 1) * p->sh + 2 * (int64_t)p->dh + 1;
      if (3 * nr * nc <= TC_WORDS) tr = r;
    }
    if (tr == 0) continue;
    g->tr = (int)tr, g->owt = (int)owt;
    g->nr = (int)((tr - 1) * p->sh + 2 * (int64_t)p->dh + 1), g->nc = (int)nc;
    g->bands_x = (int)((p->ow + owt - 1) / owt);
    g->bands_y = (int)((p->oh + tr - 1) / tr);
    int64_t bands = (int64_t)p->n * g->bands_x * g->bands_y;
    if (bands > INT32_MAX) return 0;
    g->bands = (int)bands;
    return 1;
  }
  return 0;
}

template <typename T> int blocks_per_sm() {
  static const int n = [] {
    int k = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&k, stem_tc_kernel<T>, TC_THREADS, 0) != cudaSuccess) {
      (void)cudaGetLastError();
      k = 0;
    }
    return k > 0 ? k : 2;
  }();
  return n;
}

template <typename T>
cudaError_t launch_tc(cudaStream_t s, const ri__cu_stemconv_args *p, const tc_geo *g, const void *x,
                      const float *w, const float *bias, void *y) {
  int dev = 0, sms = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  if (e != cudaSuccess) return e;
  int64_t grid = (int64_t)(sms > 0 ? sms : 1) * blocks_per_sm<T>();
  if (grid > g->bands) grid = g->bands;
  ri_cu_launch(stem_tc_kernel<T>, (unsigned)grid, TC_THREADS, 0, s, *p, *g, (const T *)x, w, bias,
               ri_cu_stem_tc::h2_clip(p), (__half *)y);
  return ri_cu_launched();
}

} // namespace

extern "C" int ri__cu_stemconv_tc_applies(const ri__cu_stemconv_args *p) {
  tc_geo g;
  return tc_geometry(p, &g);
}

extern "C" cudaError_t ri__cu_stemconv_tc(cudaStream_t s, const ri__cu_stemconv_args *p, const void *x,
                                          ri_dtype xt, const float *w, const float *bias, void *y) {
  tc_geo g;
  if (!tc_geometry(p, &g) || (uintptr_t)y % 16) return cudaErrorInvalidValue;
  if (g.bands == 0) return cudaSuccess;
  if (xt == RI_DTYPE_FLOAT32) return launch_tc<float>(s, p, &g, x, w, bias, y);
  if (xt == RI_DTYPE_FLOAT16) return launch_tc<__half>(s, p, &g, x, w, bias, y);
  return cudaErrorInvalidValue;
}
