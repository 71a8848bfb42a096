/* Variant 4 of the RGB stem (k_stemconv.cu): variant 3's tensor-core arithmetic (k_stemconv_tc.cu; the same
 * instructions on the same staged pairs, cu_stem_tc.cuh, hence the same bits) fed by a deeper load pipeline.
 * Variant 3 took 0.67 ms at batch 256 on an H200 for a traffic floor of about 0.14 ms, latency-bound
 * (Nsight Compute, bench/results/ncu-dw-stem-2026-11-27.txt: 120 registers, 2 blocks of 8 warps per
 * multiprocessor, no eligible warp in 41 % of the cycles, DRAM 15 % busy): each block has one band's input
 * in flight, copied by 4-byte cp.async (about 15 instructions each, one per float), and that band's copy
 * is issued only after the current band was split, so the short tile phase (2 tiles per warp) does not
 * cover it; a second barrier per band separates the split pass from the tiles.
 *
 * Here, for float input:
 *   - 16-byte copies where the layout allows (unit stride along a row, row, channel and image strides
 *     multiples of 4 floats, a 16-byte aligned image: the caller's NCHW image of width 300, rows of 1200
 *     bytes): a band's window starts at the input column below its first one that is a multiple of 4
 *     (`shift` words into each staged row) and a copy past the row's end fills its last floats with zeros
 *     (cp.async's source size), so that no float outside the image is read. Other layouts copy single
 *     floats as variant 3 does.
 *   - STAGES windows in a ring: bands i + 1 .. i + STAGES - 1 are in flight while band i's tiles run; each
 *     thread splits the floats it copied itself in place into (hi, lo) pairs (its own cp.async writes are
 *     visible to it after the wait), so one barrier per band suffices: it publishes band i's pairs and frees
 *     the slot of band i - 1, which the next copy then fills.
 *   - bands as tall as the minimum of rounds x (rows + 2) chooses (up to 8 output rows of 64 columns, a
 *     32 KB window): tall bands at large batches (fewer bands, fewer overlapping input rows and less
 *     per-band work), short ones when there are fewer bands than resident blocks (batch 1).
 * Half input (another node's NHWC output) runs variant 3's kernel: the same bits.
 * Shared memory: STAGES x 32 KB = 96 KB per block, 2 blocks per multiprocessor; registers bounded at 128
 * by the launch bounds (115, no spills: nvcc --resource-usage, CUDA 13.0, sm_90).
 * Measured on an H200 (bench/results/stemx-2026-11-27.txt, scripts/gpu/stemx-run.sh): the stem at batch 256
 * 0.74 -> 0.50 ms against variant 3 (eager profile), batch 64 0.197 -> 0.136 ms; the traffic bound is about
 * 0.14 ms at batch 256, so the loads are still not the limit. */
#include <atomic>

#include "backend/cuda/cu_common.cuh"
#include "backend/cuda/cu_mma.cuh"
#include "backend/cuda/cu_stem_tc.cuh"

namespace {

constexpr int PL_THREADS = 256;
constexpr int PL_STAGES = 3;
constexpr int PL_WORDS = 8192; /* floats (then pairs) per staged window: 32 KB */
constexpr int PL_MAX_TR = 8;   /* output rows per band, at most */
constexpr int PL_SMEM = PL_STAGES * PL_WORDS * 4;
static_assert(PL_THREADS / 32 == ri_cu_stem_tc::WARPS, "the tiles' warp count");

/* A launch's band shape and copy units (host: pl_geometry). A window is 3 x nr rows of `pitch` words, its
 * column 0 (input column ox0 * sw - pad_l) at word `shift`; a row is copied as nu units of uw floats (4:
 * 16-byte copies, 1: single floats), unit u from input column ox0 * sw - pad_l - shift + u * uw. */
struct pl_geo {
  int tr, owt;
  int nr, nc, pitch, shift;
  int uw, nu;
  int du, ru; /* PL_THREADS / nu, PL_THREADS % nu: the step of a thread's walk over the units */
  int bands_x, bands_y, bands;
};

__device__ __forceinline__ void band_origin(const pl_geo &g, int bi, int &b, int &oy0, int &ox0) {
  const int bx = bi % g.bands_x, q = bi / g.bands_x;
  ox0 = bx * g.owt;
  oy0 = (q % g.bands_y) * g.tr;
  b = q / g.bands_y;
}

/* Calls f(row, u) for this thread's units of a window (row: channel-row major, 0 .. 3 nr - 1); the same
 * units for every band. */
template <typename F> __device__ __forceinline__ void unit_walk(const pl_geo &g, F f) {
  int row = (int)threadIdx.x / g.nu, u = (int)threadIdx.x % g.nu;
  while (row < 3 * g.nr) {
    f(row, u);
    row += g.du, u += g.ru;
    if (u >= g.nu) u -= g.nu, row++;
  }
}

/* Issues the copies of band bi's window into buf (one commit group, also for no band). */
__device__ __forceinline__ void issue(const pl_geo &g, const ri__cu_stemconv_args &p, const float *x, int bi,
                                      float *buf) {
  if (bi < g.bands) {
    int b, oy0, ox0;
    band_origin(g, bi, b, oy0, ox0);
    const int iy0 = oy0 * p.sh - p.pad_t, ixa = ox0 * p.sw - p.pad_l - g.shift;
    const float *xb = x + (int64_t)b * p.xs_n;
    unit_walk(g, [&](int row, int u) {
      const int ci = (row >= g.nr) + (row >= 2 * g.nr), iy = iy0 + row - ci * g.nr, ix = ixa + u * g.uw;
      const bool in = (unsigned)iy < (unsigned)p.ih && (unsigned)ix < (unsigned)p.iw;
      const uint32_t dst = ri_cu_mma::smem_u32(buf + row * g.pitch + u * g.uw);
      const float *src = in ? xb + ci * (int)p.xs_c + iy * (int)p.xs_h + ix * (int)p.xs_w : x;
      if (g.uw == 4) {
        /* ix is a multiple of 4: a unit lies wholly left of column 0 or starts inside the row */
        const int bytes = in ? 4 * min(4, p.iw - ix) : 0;
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
      } else {
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(in ? 4 : 0));
      }
    });
  }
  ri_cu_mma::cp_commit();
}

/* Splits this thread's own copied floats of buf in place into (hi, lo) pairs. */
__device__ __forceinline__ void split_own(const pl_geo &g, float *buf) {
  unit_walk(g, [&](int row, int u) {
    float *q = buf + row * g.pitch + u * g.uw;
    if (g.uw == 4) {
      const float4 v = *(const float4 *)q;
      *(uint4 *)q = make_uint4(ri_cu_stem_tc::split_half2(v.x), ri_cu_stem_tc::split_half2(v.y),
                               ri_cu_stem_tc::split_half2(v.z), ri_cu_stem_tc::split_half2(v.w));
    } else {
      *(uint32_t *)q = ri_cu_stem_tc::split_half2(*q);
    }
  });
}

__global__ void __launch_bounds__(PL_THREADS, 2)
    stem_tcp_kernel(const ri__cu_stemconv_args p, const pl_geo g, const float *__restrict__ x,
                    const float *__restrict__ w, const float *__restrict__ bias, int h2,
                    __half *__restrict__ y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  extern __shared__ __align__(16) float ring[]; /* PL_STAGES windows of PL_WORDS */
  __shared__ __align__(16) float bs[32];
  if (threadIdx.x < 32) bs[threadIdx.x] = bias && (int)threadIdx.x < p.m ? bias[threadIdx.x] : 0.f;
  const int step = (int)gridDim.x;
  /* the first PL_STAGES - 1 bands in flight before the fragments are loaded */
#pragma unroll
  for (int k = 0; k < PL_STAGES - 1; k++)
    issue(g, p, x, (int)blockIdx.x + k * step, ring + k * PL_WORDS);
  ri_cu_stem_tc::frags f; /* weight fragments and tap offsets (cu_stem_tc.cuh) */
  ri_cu_stem_tc::load_frags(p, w, g.nr, g.pitch, f);
  int slot = 0;
  for (int bi = (int)blockIdx.x; bi < g.bands; bi += step) {
    float *buf = ring + slot * PL_WORDS;
    ri_cu_mma::cp_wait<PL_STAGES - 2>(); /* this thread's copies of band bi have landed */
    split_own(g, buf);
    __syncthreads(); /* band bi's pairs are visible; every warp is done with band bi - step's slot */
    const int next = slot == 0 ? PL_STAGES - 1 : slot - 1;
    issue(g, p, x, bi + (PL_STAGES - 1) * step, ring + next * PL_WORDS);
    int b, oy0, ox0;
    band_origin(g, bi, b, oy0, ox0);
    ri_cu_stem_tc::band_tiles(p, f, (const uint32_t *)buf, g.pitch, g.shift, bs, b, oy0, ox0,
                              min(g.tr, p.oh - oy0), min(g.owt, p.ow - ox0), h2, y);
    slot = slot == PL_STAGES - 1 ? 0 : slot + 1;
  }
  ri_cu_mma::cp_wait<0>(); /* no copy outlives the block */
}

/* Whether float input at x with the strides of p takes 16-byte copies. */
int pl_vec16(const ri__cu_stemconv_args *p, const void *x) {
  return x && (uintptr_t)x % 16 == 0 && p->xs_w == 1 && p->xs_h % 4 == 0 && p->xs_c % 4 == 0 &&
         p->xs_n % 4 == 0;
}

/* The band shape of a launch on `slots` resident blocks; 0 when the variant does not apply. Bands are 64
 * output columns wide (less for narrower outputs, or when no window of one row fits); their height r (at
 * most PL_MAX_TR rows, the window within PL_WORDS) minimises rounds x (r + 2), rounds being the bands per
 * resident block (rounded up) and 2 rows the cost of a band beyond its rows (its barrier, the window's
 * extra rows, the pipeline's start). */
int pl_geometry(const ri__cu_stemconv_args *p, int vec16, int64_t slots, pl_geo *g) {
  if (!ri__cu_stemconv_supported(p) || p->kh != 3 || p->kw != 3 || p->c != 3 || p->m > 32 || p->y_f32 ||
      p->oh < 1 || p->ow < 1 || p->ih < 1 || p->iw < 1)
    return 0;
  /* input offsets within an image in int32 */
  int64_t span =
      2 * llabs(p->xs_c) + (int64_t)(p->ih - 1) * llabs(p->xs_h) + (int64_t)(p->iw - 1) * llabs(p->xs_w);
  if (span > INT32_MAX) return 0;
  if (!ri_cu_stem_tc::out_fits32(p)) return 0;
  if (slots < 1) slots = 1;
  const int64_t shift = vec16 ? ((-(int64_t)p->pad_l) % 4 + 4) % 4 : 0;
  for (int64_t owt = p->ow < 64 ? (p->ow + 15) / 16 * 16 : 64; owt >= 16; owt -= 16) {
    const int64_t nc = (owt - 1) * p->sw + 2 * (int64_t)p->dw + 1;
    const int64_t pitch = vec16 ? (shift + nc + 3) / 4 * 4 : nc;
    const int64_t bands_x = (p->ow + owt - 1) / owt;
    int64_t tr = 0, best = 0;
    for (int64_t r = 1; r <= PL_MAX_TR && r <= p->oh; r++) {
      const int64_t nr = (r - 1) * p->sh + 2 * (int64_t)p->dh + 1;
      if (3 * nr * pitch > PL_WORDS) break;
      const int64_t bands = (int64_t)p->n * bands_x * ((p->oh + r - 1) / r);
      const int64_t cost = (bands + slots - 1) / slots * (r + 2);
      if (tr == 0 || cost < best) tr = r, best = cost;
    }
    if (tr == 0) continue;
    const int64_t bands_y = (p->oh + tr - 1) / tr, bands = (int64_t)p->n * bands_x * bands_y;
    if (bands > INT32_MAX) return 0;
    g->tr = (int)tr, g->owt = (int)owt;
    g->nr = (int)((tr - 1) * p->sh + 2 * (int64_t)p->dh + 1), g->nc = (int)nc;
    g->pitch = (int)pitch, g->shift = (int)shift;
    g->uw = vec16 ? 4 : 1;
    g->nu = (int)(pitch / g->uw);
    g->du = PL_THREADS / g->nu, g->ru = PL_THREADS % g->nu;
    g->bands_x = (int)bands_x, g->bands_y = (int)bands_y, g->bands = (int)bands;
    return 1;
  }
  return 0;
}

} // namespace

extern "C" int ri__cu_stemconv_tcp_applies(const ri__cu_stemconv_args *p) {
  pl_geo g;
  return pl_geometry(p, 0, 1, &g) && ri__cu_stemconv_tc_applies(p);
}

extern "C" cudaError_t ri__cu_stemconv_tcp(cudaStream_t s, const ri__cu_stemconv_args *p, const void *x,
                                           ri_dtype xt, const float *w, const float *bias, void *y) {
  if (xt == RI_DTYPE_FLOAT16) return ri__cu_stemconv_tc(s, p, x, xt, w, bias, y); /* the same bits */
  if (xt != RI_DTYPE_FLOAT32 || (uintptr_t)y % 16 || !ri__cu_stemconv_tcp_applies(p))
    return cudaErrorInvalidValue;
  if (p->n == 0) return cudaSuccess;
  /* the resident blocks; the shared-memory limit raised once per device (a bit per device below 64) on the
   * first launch, which is eager: a graph capture never makes the call */
  static std::atomic<unsigned long long> raised{0};
  static std::atomic<int> per_sm{0};
  int dev = 0, sms = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  if (e != cudaSuccess) return e;
  const unsigned long long bit = dev < 64 ? 1ull << dev : 0;
  if (!bit || !(raised.load() & bit)) {
    e = cudaFuncSetAttribute(stem_tcp_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, PL_SMEM);
    if (e != cudaSuccess) return e;
    int k = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&k, stem_tcp_kernel, PL_THREADS, PL_SMEM) !=
        cudaSuccess)
      (void)cudaGetLastError();
    per_sm.store(k > 0 ? k : 1);
    raised.fetch_or(bit);
  }
  const int64_t slots = (int64_t)(sms > 0 ? sms : 1) * (per_sm.load() > 0 ? per_sm.load() : 1);
  pl_geo g;
  const int v16 = pl_vec16(p, x);
  if (!pl_geometry(p, v16, slots, &g) && (!v16 || !pl_geometry(p, 0, slots, &g)))
    return cudaErrorInvalidValue;
  const int64_t grid = slots < g.bands ? slots : g.bands;
  ri_cu_launch(stem_tcp_kernel, (unsigned)grid, PL_THREADS, PL_SMEM, s, *p, g, (const float *)x, w, bias,
               ri_cu_stem_tc::h2_clip(p), (__half *)y);
  return ri_cu_launched();
}
