/* Pointwise convolution (1x1, stride 1, no padding) for few input and output channels (K <= 160,
 * N <= 160 in this form and k_pwconv_bulk.cu; 160 < N <= 1280 in k_pwconv_wide.cu), half NHWC, on the tensor
 * cores: a tactic of the convolution GEMM (ri__cu_convgemm_tac with pw set) for the wide, shallow layers of
 * inverted-residual networks at large batches, where the tiled GEMM (k_convgemm.cu) has a single 32-deep K
 * step per tile, nothing to pipeline, and re-reads A for every N tile. Those layers are memory-bound: each
 * reads its input and writes its output once.
 *
 * Layout: the whole weight matrix (N x K, zero-padded) and the bias stay in shared memory for the block's
 * life. Blocks are persistent (as many as fit on the device); each warp works alone on tiles of 16 output
 * rows (pixels) x all N columns, striding over the tiles with the other warps of the grid. A warp's input
 * rows are one contiguous run of 16 * K halves; it keeps a ring of S stages of them in flight through
 * cp.async (S chosen by the launcher from the shared memory left: 2 to 8), so no block-wide barrier is
 * needed after the weights are in. mma.sync m16n8k16, float accumulators.
 *
 * Results are bit-identical to gemm_nhwc_f16 with one K segment: each accumulator starts at zero and takes
 * the k16 steps in the same order, including the all-zero step that the tiled kernel's 32-deep K tiles add
 * when K % 32 == 16 (issued here with zero registers: +0 turns a -0 sum into +0 exactly as there), and the
 * epilogue is the same float sequence (bias, residual, activation, one rounding). So the tuner may choose
 * either kernel per batch bucket without changing any output bit, which keeps batch invariance.
 *
 * Epilogue: stmatrix puts the warp's 16 x N half tile in its own staging rows of shared memory, then each
 * lane stores 16-byte chunks (8 channels of a pixel), coalesced, or element by element where the output
 * slice is not 16-byte aligned. Half output only.
 *
 * This is the first form of the kernel, variant 0 of ri__cu_pwconv_v (kernels.h). k_pwconv_bulk.cu holds the
 * second (variants 1 .. 4, same bits): output tiles through Hopper bulk copies, evict-first stores of
 * outputs larger than the L2, the residual through the ring, blocks of 8 or 4 warps and the ring depth
 * planned from the device. ri__cu_pwconv runs the form RI_CUDA_PW2 names (default 1); RI_CUDA_PW2=0 runs this
 * one (before/after comparisons). Wider N (k_pwconv_wide.cu) and deeper K or float32 outputs with N <= 64
 * (k_pwconv_deep.cu: K chunks through the ring) have forms of their own, same bits, for every variant. */
#include <atomic>
#include <stdlib.h>

#include "backend/cuda/cu_common.cuh"
#include "backend/cuda/cu_gemm_epi.cuh"
#include "backend/cuda/cu_mma.cuh"
#include "backend/cuda/cu_pw_common.cuh"

namespace {

using namespace ri_cu_mma;

constexpr int WARPS = 8;
constexpr int THREADS = WARPS * 32;
constexpr int ROWS = 16;   /* output rows of a warp tile */
constexpr int MAX_N = 160; /* output channels */
constexpr int MAX_K = 160; /* input channels */
constexpr int MAX_STAGES = 8;
constexpr int MAX_DEVICES = 64; /* per-device launch settings kept (more devices: queried every launch) */

/* Shared-memory geometry of a launch (all strides in halves, every part 16-byte aligned). */
struct pw_geo {
  int kp;     /* K rounded up to 16: the k16 steps read from shared memory */
  int ldk;    /* kp + 8: row stride of the weight and input rows (conflict-free ldmatrix) */
  int zstep;  /* 1 when the tiled kernel's K tiles add one all-zero k16 step (K % 32 in 1..16) */
  int stages; /* S */
};

static __host__ __device__ int ldc_of(int nt) { return nt * 8 + 8; }

static __host__ __device__ size_t smem_bytes(int nt, const pw_geo &g) {
  size_t wb = (size_t)nt * 8 * g.ldk * 2 + (size_t)nt * 8 * 4;
  size_t per_warp = (size_t)g.stages * ROWS * g.ldk * 2 + (size_t)ROWS * ldc_of(nt) * 2;
  return wb + WARPS * per_warp;
}

/* NT: n8 tiles covering N (even, for stmatrix.x4). */
template <int NT>
__global__ void __launch_bounds__(THREADS)
    pw_kernel(const ri__cu_convgemm_args p, const pw_geo g, const __half *__restrict__ x,
              const __half *__restrict__ w, const float *__restrict__ bias, const __half *__restrict__ res,
              __half *__restrict__ y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  extern __shared__ __align__(128) unsigned char smem[];
  constexpr int NR = NT * 8, LDC = NR + 8;
  const int ldk = g.ldk, S = g.stages, K = p.k, KC = K / 8; /* 16-byte chunks of an input row */
  __half *Ws = (__half *)smem;
  float *Bs = (float *)(Ws + (size_t)NR * ldk);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  __half *As = (__half *)(Bs + NR) + (size_t)warp * (S * ROWS * ldk + ROWS * LDC);
  __half *Cs = As + S * ROWS * ldk;

  /* Weights (zero beyond m_out rows and ldw columns), bias, and zeros in this block's input rings (the
   * columns from K to kp are never written by the copies). */
  ri_cu_pw_weights(Ws, w, p, NR, ldk, tid, THREADS);
  for (int n = tid; n < NR; n += THREADS)
    Bs[n] = bias && n < p.m_out ? bias[n] : 0.f;
  {
    __half *ring = (__half *)(Bs + NR);
    const int ring_chunks = WARPS * (S * ROWS * ldk + ROWS * LDC) / 8;
    for (int q = tid; q < ring_chunks; q += THREADS)
      *(uint4 *)(ring + (size_t)q * 8) = make_uint4(0, 0, 0, 0);
  }
  __syncthreads();

  const int M = p.n * p.oh * p.ow;
  const int ntiles = (M + ROWS - 1) / ROWS;
  const int stride = gridDim.x * WARPS;
  const int first = blockIdx.x * WARPS + warp;
  const ri_cu_pw_walk wk = ri_cu_pw_walk_of(lane, KC); /* this lane's chunks of a tile */

  auto load = [&](int stage, int tile) {
    ri_cu_pw_load_rows(As + stage * ROWS * ldk, ldk, x, K, tile * ROWS, M, wk, lane);
  };

  ri_cu_pw_ring_fill(S, first, stride, ntiles, load);

  const int g8 = lane >> 2, t4 = lane & 3;
  const bool clampf = p.act == RI_CU_ACT_RELU || p.act == RI_CU_ACT_CLIP;
  const float lo = p.act == RI_CU_ACT_RELU ? 0.f : p.act_a;
  const float hi = p.act == RI_CU_ACT_RELU ? INFINITY : p.act_b;
  const bool dense = p.y_img_stride == p.rows_per_img * p.ldy;
  const bool vec = ri_cu_epi_vec(p);
  const int ksteps = g.kp / 16;
  int st = 0;
  for (int tile = first, i = 0; tile < ntiles; tile += stride, i++) {
    ri_cu_pw_ring_next(S, st, tile, stride, ntiles, load);
    const __half *A = As + st * ROWS * ldk;
    float acc[NT][4];
    ri_cu_pw_mma<NT>(acc, A, Ws, ldk, ksteps, g.zstep, lane);
    if (++st == S) st = 0;

    /* Epilogue in registers, as the tiled kernel's: thread (g8, t4) holds rows g8 and g8 + 8, columns
     * 8 j + 2 t4 and + 1. */
    const int m0 = tile * ROWS;
    unsigned word[2][NT];
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int m = m0 + g8 + h * 8;
      float v[NT][2];
#pragma unroll
      for (int j = 0; j < NT; j++) {
        const int n = j * 8 + t4 * 2;
        v[j][0] = acc[j][2 * h] + Bs[n];
        v[j][1] = acc[j][2 * h + 1] + Bs[n + 1];
      }
      if (res && m < M) {
        const __half *rp = res + (int64_t)m * p.ldr;
#pragma unroll
        for (int j = 0; j < NT; j++)
          ri_cu_epi_res(rp, j * 8 + t4 * 2, p.m_out, p.ldr, v[j][0], v[j][1]);
      }
      if (clampf) {
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
          for (int e = 0; e < 2; e++)
            v[j][e] = fminf(fmaxf(v[j][e], lo), hi);
      } else if (p.act != RI_CU_ACT_NONE) {
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
          for (int e = 0; e < 2; e++)
            v[j][e] = ri_act(p.act, p.act_a, p.act_b, v[j][e]);
      }
#pragma unroll
      for (int j = 0; j < NT; j++) {
        __half2 hv = __floats2half2_rn(v[j][0], v[j][1]);
        word[h][j] = *(unsigned *)&hv;
      }
    }
    /* Matrix q (q < 2 NT) is rows 8 h .. 8 h + 7 (h = q / NT) of n8 tile q % NT; lanes 8 k .. 8 k + 7 give
     * the row addresses of the k-th matrix of an x4. */
#pragma unroll
    for (int q0 = 0; q0 < 2 * NT; q0 += 4) {
      const int q = q0 + (lane >> 3), h = q / NT, j = q % NT;
      const __half *row = Cs + (h * 8 + (lane & 7)) * LDC + j * 8;
      asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(smem_u32(row)),
                   "r"(word[(q0 + 0) / NT][(q0 + 0) % NT]), "r"(word[(q0 + 1) / NT][(q0 + 1) % NT]),
                   "r"(word[(q0 + 2) / NT][(q0 + 2) % NT]), "r"(word[(q0 + 3) / NT][(q0 + 3) % NT]));
    }
    __syncwarp();
#pragma unroll 2
    for (int q = lane; q < ROWS * NT; q += 32) {
      const int r = q / NT, cc = q - r * NT, m = m0 + r, n = cc * 8;
      if (m >= M || n >= p.m_out) continue;
      ri_cu_epi_store8(y + ri_cu_epi_row(p, m, dense) + p.y_off + n, *(const uint4 *)(Cs + r * LDC + n), vec,
                       n, p.m_out);
    }
    __syncwarp(); /* the staging rows are rewritten by the next tile */
  }
  cp_wait<0>();
}

/* Stage count and shared memory for a geometry: two blocks per multiprocessor when two stages or more fit
 * in half the opt-in limit, else one block with up to MAX_STAGES; 0 stages when not even two fit. */
static pw_geo plan(const ri__cu_convgemm_args *p, int nt, int smem_optin) {
  pw_geo g;
  g.kp = (p->k + 15) / 16 * 16;
  g.ldk = g.kp + 8;
  int k32 = (p->ldw + 31) / 32 * 2; /* k16 steps of the tiled kernel */
  g.zstep = k32 - g.kp / 16;
  const size_t budgets[2] = {(size_t)smem_optin / 2 - 1024, (size_t)smem_optin};
  for (int b = 0; b < 2; b++)
    for (g.stages = MAX_STAGES; g.stages >= 2; g.stages--)
      if (smem_bytes(nt, g) <= budgets[b]) return g;
  g.stages = 0;
  return g;
}

template <int NT>
cudaError_t launch(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x, const void *w,
                   const float *b, const void *r, void *y) {
  int dev = 0, optin = 0, sms = 0, occ = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  if (e != cudaSuccess) return e;
  pw_geo g = plan(p, NT, optin);
  if (g.stages < 2) return cudaErrorInvalidValue;
  size_t smem = smem_bytes(NT, g);
  /* Per device: the kernel's shared-memory limit raised once to the device's opt-in maximum (the same value
   * for every geometry, so concurrent callers cannot lower it under each other), and the occupancy of the
   * last size as one packed value (size << 8 | blocks), so that launches of a known geometry (graph capture
   * after the tuner's and the eager runs) make no attribute or occupancy calls. */
  static std::atomic<int> raised[MAX_DEVICES];
  static std::atomic<long long> occ_of[MAX_DEVICES];
  const bool cached = dev >= 0 && dev < MAX_DEVICES;
  if (!cached || !raised[dev].load()) {
    e = cudaFuncSetAttribute(pw_kernel<NT>, cudaFuncAttributeMaxDynamicSharedMemorySize, optin);
    if (e != cudaSuccess) return e;
    if (cached) raised[dev].store(1);
  }
  const long long packed = cached ? occ_of[dev].load() : 0;
  if (cached && packed >> 8 == (long long)smem) {
    occ = (int)(packed & 255);
  } else {
    e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, pw_kernel<NT>, THREADS, smem);
    if (e != cudaSuccess) return e;
    if (occ > 255) occ = 255;
    if (cached) occ_of[dev].store((long long)smem << 8 | occ);
  }
  if (occ < 1) return cudaErrorInvalidValue;
  int64_t M = (int64_t)p->n * p->oh * p->ow, tiles = (M + ROWS - 1) / ROWS;
  int64_t blocks = (tiles + WARPS - 1) / WARPS, most = (int64_t)sms * occ;
  if (blocks > most) blocks = most;
  ri_cu_launch(pw_kernel<NT>, (unsigned)blocks, THREADS, smem, s, *p, g, (const __half *)x, (const __half *)w,
               b, (const __half *)r, (__half *)y);
  return ri_cu_launched();
}

} // namespace

/* The integer value of environment variable `name`, or -1 when it is unset, empty, not a whole decimal number
 * or negative. */
static long env_nonneg(const char *name) {
  const char *e = getenv(name);
  if (!e || !*e) return -1;
  char *end;
  long n = strtol(e, &end, 10);
  return *end || n < 0 ? -1 : n;
}

extern "C" int ri__cu_pwconv_max_n(void) {
  static const int v = [] {
    const long n = env_nonneg("RI_CUDA_PW_MAXN");
    return n < 0 || n > RI__CU_PW_WIDE_MAX_N ? RI__CU_PW_WIDE_MAX_N : (int)n;
  }();
  return v;
}

extern "C" int ri__cu_pwconv_supported(const ri__cu_convgemm_args *p) {
  return ri__cu_convgemm_supported(p) && p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 &&
         p->pad_t == 0 && p->pad_l == 0 && p->ih == p->oh && p->iw == p->ow && p->c % 8 == 0 &&
         p->k == p->c && p->ldw == p->k &&
         ((p->k <= MAX_K && p->m_out <= ri__cu_pwconv_max_n() && !p->y_f32) ||
          ri__cu_pwconv_deep_supported(p));
}

extern "C" int ri__cu_pwconv_default_variant(void) {
  static const int v = [] {
    const long n = env_nonneg("RI_CUDA_PW2");
    return n >= 0 && n < RI__CU_PW_VARIANTS ? (int)n : 1;
  }();
  return v;
}

static cudaError_t check(const ri__cu_convgemm_args *p, const void *x, const void *w, const float *bias,
                         const void *res, const void *y) {
  if (!ri__cu_pwconv_supported(p) || p->rows_per_img < 1 || p->ldy < p->m_out || (res && p->ldr < p->m_out) ||
      (uintptr_t)x % 16 || (uintptr_t)w % 16 || (uintptr_t)y % 16 || (uintptr_t)bias % 16 ||
      (uintptr_t)res % 16)
    return cudaErrorInvalidValue;
  return cudaSuccess;
}

extern "C" cudaError_t ri__cu_pwconv_v(cudaStream_t s, const ri__cu_convgemm_args *p, int variant,
                                       const void *x, const void *w, const float *bias, const void *res,
                                       void *y) {
  cudaError_t e = check(p, x, w, bias, res, y);
  if (e != cudaSuccess || variant < 0 || variant >= RI__CU_PW_VARIANTS) return cudaErrorInvalidValue;
  if ((int64_t)p->n * p->oh * p->ow <= 0) return cudaSuccess;
  /* deeper K than the first forms stream, or a float32 output: the deep form (k_pwconv_deep.cu, same bits) */
  if (p->k > MAX_K || p->y_f32) return ri__cu_pwconv_deep(s, p, x, w, bias, res, y);
  /* more channels than the weights of the first two forms hold: the wide form (k_pwconv_wide.cu, same bits)
   */
  if (p->m_out > MAX_N) return ri__cu_pwconv_wide(s, p, variant, x, w, bias, res, y);
  if (variant > 0) {
    e = ri__cu_pwconv_bulk(s, p, variant, x, w, bias, res, y);
    /* no plan of the second form fits this device: the first form (same bits) */
    if (e != cudaErrorInvalidValue) return e;
  }
  switch ((p->m_out + 15) / 16) {
  case 1: return launch<2>(s, p, x, w, bias, res, y);
  case 2: return launch<4>(s, p, x, w, bias, res, y);
  case 3: return launch<6>(s, p, x, w, bias, res, y);
  case 4: return launch<8>(s, p, x, w, bias, res, y);
  case 5: return launch<10>(s, p, x, w, bias, res, y);
  case 6: return launch<12>(s, p, x, w, bias, res, y);
  case 7: return launch<14>(s, p, x, w, bias, res, y);
  case 8: return launch<16>(s, p, x, w, bias, res, y);
  case 9: return launch<18>(s, p, x, w, bias, res, y);
  default: return launch<20>(s, p, x, w, bias, res, y);
  }
}

extern "C" cudaError_t ri__cu_pwconv(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x,
                                     const void *w, const float *bias, const void *res, void *y) {
  return ri__cu_pwconv_v(s, p, ri__cu_pwconv_default_variant(), x, w, bias, res, y);
}
