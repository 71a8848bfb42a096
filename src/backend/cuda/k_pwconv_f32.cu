/* Pointwise convolution (1x1, stride 1, no padding) in fp32 for few input channels, float NHWC: a tactic
 * of the fp32 convolution GEMM (ri__cu_convgemm_f32_tac with pw set) for the wide, shallow layers of
 * MobileNet v2 at high resolution (K = 16 .. 32 input channels on 75x75 and 150x150 maps), where the tiled
 * FFMA GEMM (k_convgemm_f32.cu) has one or two 16-deep K slices per tile and waits on its loads. Those
 * layers are memory-bound: each reads its input and writes its output once.
 *
 * Layout: the whole weight matrix (K x ldw floats) stays in shared memory for the block's life. Blocks are
 * persistent (as many as fit on the device) and go through tiles of bm output rows (pixels), bm * K floats
 * that are one contiguous run of the input: the next tile is copied into the second of two shared-memory
 * buffers (cp.async, 16 bytes per copy, coalesced) while the current one is multiplied. A thread computes
 * items of 4 rows x 4 output channels with the whole K: per 4 k, 4 float4 reads of the rows (lanes of a
 * warp mostly read the same rows: broadcasts) and 4 float4 reads of weight rows (consecutive lanes,
 * consecutive channels: conflict-free) feed 64 FMAs. The epilogue stores float4s of 4 channels; lanes with
 * consecutive channel groups write consecutive 16-byte pieces of a row, and rows are adjacent in NHWC.
 *
 * Results are bit-identical to the tiled kernel with the same K segments: each output starts from zero and
 * takes k in increasing order with fmaf; with segments of `per` 16-deep slices the segment sums are added
 * in order from zero; where K is not a multiple of 16 the tiled kernel's last slice adds zero products,
 * which can only turn a -0 sum into +0, done here by one `+ 0.f`; the epilogue is the same float sequence
 * (bias, residual, activation). So the tuner may pick either kernel per batch bucket without changing a bit,
 * and an output row never depends on other rows: batch invariance holds. */
#include <atomic>

#include "backend/cuda/cu_common.cuh"
#include "backend/cuda/cu_mma.cuh"

namespace {

using namespace ri_cu_mma;

constexpr int THREADS = 256;
constexpr int R = 4;                           /* rows of a thread's item */
constexpr int MAX_K = 160;                     /* input channels */
constexpr int MAX_W = 8192;                    /* floats of the weight matrix (32 KiB) */
constexpr int TILE_BYTES = 24 << 10;           /* preferred bytes of one input tile */
constexpr size_t MAX_SMEM = (size_t)110 << 10; /* two blocks per multiprocessor on sm_80 .. sm_90 */
constexpr int MAX_DEVICES = 64;

__device__ __forceinline__ float finish(const ri__cu_convgemm_args &p, float v, int m, int n,
                                        const float *__restrict__ bias, const float *__restrict__ res) {
  v = v + (bias ? bias[n] : 0.f);
  if (res) v = v + res[(int64_t)m * p.ldr + n];
  return ri_act(p.act, p.act_a, p.act_b, v);
}

__device__ __forceinline__ int64_t out_row(const ri__cu_convgemm_args &p, int m) {
  if (p.y_img_stride == p.rows_per_img * p.ldy) return (int64_t)m * p.ldy + p.y_off;
  int img = m / (int)p.rows_per_img, rr = m - img * (int)p.rows_per_img;
  return img * p.y_img_stride + (int64_t)rr * p.ldy + p.y_off;
}

__device__ __forceinline__ float comp(const float4 &v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

/* seglen: K elements of a segment (a multiple of 16), 0 for one segment. */
template <bool SEGD>
__global__ void __launch_bounds__(THREADS)
    pw32_kernel(const ri__cu_convgemm_args p, const float *__restrict__ x, const float *__restrict__ w,
                const float *__restrict__ bias, const float *__restrict__ res, float *__restrict__ y,
                const int bm, const int seglen) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  extern __shared__ __align__(16) float smem[];
  const int K = p.k, ldw = p.ldw, G = ldw / 4, KC = K / 4;
  const int M = p.n * p.oh * p.ow;
  const int tiles = (M + bm - 1) / bm;
  float *Ws = smem;
  float *Xs = smem + K * ldw; /* K * ldw is a multiple of 4: 16-byte aligned */
  const int tid = threadIdx.x;
  const bool vec = p.ldy % 4 == 0 && p.y_off % 4 == 0 && p.y_img_stride % 4 == 0;
  const bool zstep = K % 16 != 0;

  /* Copies tile t's rows into buffer b, zeros past the last row. */
  auto load = [&](int t, int b) {
    const int chunks = bm * KC;
    const int64_t first = (int64_t)t * bm * KC, last = (int64_t)M * KC;
    float *dst = Xs + (size_t)b * bm * K;
    for (int i = tid; i < chunks; i += THREADS) {
      const bool ok = first + i < last;
      cp16(dst + (size_t)i * 4, x + (ok ? (first + i) * 4 : 0), ok ? 16 : 0);
    }
  };

  int t = blockIdx.x;
  if (t < tiles) load(t, 0);
  cp_commit();
  for (int i = tid; i < K * G; i += THREADS)
    *(float4 *)&Ws[(size_t)i * 4] = __ldg((const float4 *)(w + (size_t)i * 4));
  const int items = bm / R * G;
  int buf = 0;
  for (; t < tiles; t += gridDim.x) {
    if (t + (int)gridDim.x < tiles) load(t + gridDim.x, buf ^ 1);
    cp_commit();
    cp_wait<1>();
    __syncthreads();
    const float *xt = Xs + (size_t)buf * bm * K;
    for (int q = tid; q < items; q += THREADS) {
      const int g = q % G, r0 = (q / G) * R;
      const float *xr = xt + (size_t)r0 * K;
      const float *wc = Ws + g * 4;
      float acc[R][4], tot[SEGD ? R : 1][SEGD ? 4 : 1];
#pragma unroll
      for (int r = 0; r < R; r++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
          acc[r][j] = 0.f;
          if constexpr (SEGD) tot[r][j] = 0.f;
        }
#pragma unroll 2
      for (int kc = 0; kc < KC; kc++) {
        float4 xv[R];
#pragma unroll
        for (int r = 0; r < R; r++)
          xv[r] = *(const float4 *)(xr + (size_t)r * K + kc * 4);
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
          const float4 wv = *(const float4 *)(wc + (size_t)(kc * 4 + kk) * ldw);
#pragma unroll
          for (int r = 0; r < R; r++) {
            const float a = comp(xv[r], kk);
            acc[r][0] = fmaf(a, wv.x, acc[r][0]);
            acc[r][1] = fmaf(a, wv.y, acc[r][1]);
            acc[r][2] = fmaf(a, wv.z, acc[r][2]);
            acc[r][3] = fmaf(a, wv.w, acc[r][3]);
          }
        }
        if constexpr (SEGD) {
          const int kend = kc * 4 + 4;
          if (kend % seglen == 0 || kend == K) {
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
              for (int j = 0; j < 4; j++) {
                /* the tiled kernel's zero products of the last slice come before its segment is added */
                const float v = kend == K && zstep ? acc[r][j] + 0.f : acc[r][j];
                tot[r][j] = tot[r][j] + v;
                acc[r][j] = 0.f;
              }
          }
        }
      }
      const int n = g * 4;
#pragma unroll
      for (int r = 0; r < R; r++) {
        const int m = t * bm + r0 + r;
        if (m >= M || n >= p.m_out) continue;
        float v[4];
#pragma unroll
        for (int e = 0; e < 4; e++) {
          float s;
          if constexpr (SEGD)
            s = tot[r][e];
          else
            s = zstep ? acc[r][e] + 0.f : acc[r][e];
          v[e] = n + e < p.m_out ? finish(p, s, m, n + e, bias, res) : 0.f;
        }
        float *yr = y + out_row(p, m) + n;
        if (vec && n + 4 <= p.m_out) {
          *(float4 *)yr = make_float4(v[0], v[1], v[2], v[3]);
        } else {
#pragma unroll
          for (int e = 0; e < 4; e++)
            if (n + e < p.m_out) yr[e] = v[e];
        }
      }
    }
    __syncthreads(); /* every thread is done with this buffer before the next copy into it */
    buf ^= 1;
  }
  cp_wait<0>();
}

/* Rows of a tile: about TILE_BYTES of input, enough rows that every thread has an item, within
 * MAX_SMEM for the two buffers and the weights; a multiple of R. */
int tile_rows(const ri__cu_convgemm_args *p) {
  const int G = p->ldw / 4;
  const size_t wb = (size_t)p->k * p->ldw * 4, row = (size_t)p->k * 4;
  int bm = (int)(TILE_BYTES / row);
  const int fill = R * ((THREADS + G - 1) / G);
  if (bm < fill) bm = fill;
  const int most = (int)((MAX_SMEM - wb) / (2 * row));
  if (bm > most) bm = most;
  bm = bm / R * R;
  return bm < R ? R : bm;
}

size_t smem_of(const ri__cu_convgemm_args *p, int bm) {
  return ((size_t)p->k * p->ldw + 2 * (size_t)bm * p->k) * 4;
}

/* Blocks of the persistent grid on the current device. Per device and kernel: the shared-memory limit
 * raised once to MAX_SMEM (the same value for every geometry, so concurrent callers cannot lower it under
 * each other), and the occupancy of the last size as one packed value (size << 8 | blocks), so that
 * launches of a known geometry (graph capture after the tuner's and the eager runs) make no attribute or
 * occupancy calls. */
template <bool SEGD> cudaError_t grid_of(size_t smem, int64_t tiles, unsigned *grid) {
  static std::atomic<int> sms_of[MAX_DEVICES];
  static std::atomic<long long> occ_of[MAX_DEVICES];
  int dev = 0, sms = 0, occ = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return e;
  const bool cached = dev >= 0 && dev < MAX_DEVICES;
  if (cached) sms = sms_of[dev].load();
  if (sms <= 0) {
    int optin = 0;
    e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    if (e != cudaSuccess) return e;
    if ((size_t)optin < MAX_SMEM) return cudaErrorInvalidValue; /* not this device: the tiled kernel runs */
    e = cudaFuncSetAttribute(pw32_kernel<SEGD>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)MAX_SMEM);
    if (e != cudaSuccess) return e;
    if (cached) sms_of[dev].store(sms);
  }
  const long long packed = cached ? occ_of[dev].load() : 0;
  if (cached && packed >> 8 == (long long)smem) {
    occ = (int)(packed & 255);
  } else {
    e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, pw32_kernel<SEGD>, THREADS, smem);
    if (e != cudaSuccess) return e;
    if (occ > 255) occ = 255;
    if (cached) occ_of[dev].store((long long)smem << 8 | occ);
  }
  if (occ < 1) return cudaErrorInvalidValue;
  const int64_t g = (int64_t)sms * occ;
  *grid = (unsigned)(tiles < g ? tiles : g);
  return cudaSuccess;
}

} // namespace

extern "C" int ri__cu_pwconv_f32_supported(const ri__cu_convgemm_args *p) {
  return ri__cu_convgemm_f32_supported(p) && p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 &&
         p->pad_t == 0 && p->pad_l == 0 && p->ih == p->oh && p->iw == p->ow && p->c % 4 == 0 &&
         p->k == p->c && p->k <= MAX_K && (int64_t)p->k * p->ldw <= MAX_W &&
         smem_of(p, tile_rows(p)) <= MAX_SMEM;
}

extern "C" cudaError_t ri__cu_pwconv_f32(cudaStream_t s, const ri__cu_convgemm_args *p, int seg_ktiles,
                                         const float *x, const float *w, const float *bias, const float *res,
                                         float *y) {
  if (!ri__cu_pwconv_f32_supported(p) || seg_ktiles < 0 || p->rows_per_img < 1 || p->ldy < p->m_out ||
      (res && p->ldr < p->m_out) || (uintptr_t)x % 16 || (uintptr_t)w % 16 || (uintptr_t)y % 16 ||
      (uintptr_t)bias % 4 || (uintptr_t)res % 4)
    return cudaErrorInvalidValue;
  const int64_t M = (int64_t)p->n * p->oh * p->ow;
  if (M <= 0) return cudaSuccess;
  const int bm = tile_rows(p);
  const size_t smem = smem_of(p, bm);
  const int64_t tiles = (M + bm - 1) / bm;
  const int ktiles = (p->k + 15) / 16;
  const bool segd = seg_ktiles > 0 && seg_ktiles < ktiles;
  unsigned grid = 0;
  cudaError_t e = segd ? grid_of<true>(smem, tiles, &grid) : grid_of<false>(smem, tiles, &grid);
  if (e != cudaSuccess) return e;
  if (segd)
    ri_cu_launch(pw32_kernel<true>, grid, THREADS, smem, s, *p, x, w, bias, res, y, bm, seg_ktiles * 16);
  else
    ri_cu_launch(pw32_kernel<false>, grid, THREADS, smem, s, *p, x, w, bias, res, y, bm, 0);
  return ri_cu_launched();
}
