/* Pointwise convolution, wide form: the layers of ri__cu_pwconv_v with more output channels than the other
 * two forms hold (160 < N <= RI__CU_PW_WIDE_MAX_N, K <= 160): the expansion 1x1 layers of SSD MobileNet v2's
 * middle blocks (32 -> 192, 64 -> 384, 96 -> 576, 160 -> 960 channels, ReLU6), which the tiled GEMM runs at
 * about three times their DRAM floor at large batches. Every variant (0 .. 4) of ri__cu_pwconv_v runs this
 * form for such N; the variant only chooses the cache policy of the stores (1 and 2: evict-first when the
 * output is larger than the L2, as in k_pwconv_bulk.cu).
 *
 * Work split: the output channels are cut into nslabs slabs of sw channels (sw a multiple of 64, at most
 * 192: N = 384 -> 2 x 192, 960 -> 5 x 192, 1280 -> 7 x 192, the last one partly past N). blockIdx.y is the
 * slab: a block keeps that slab's weight rows (sw x K, zero-padded) and bias in shared memory for its life;
 * the blockIdx.x blocks of a slab are persistent, and each of their warps walks tiles of 16 output rows
 * (pixels) with the other warps of the slab, through the same cp.async ring of input rows as the other
 * forms (cu_pw_common.cuh). The input is read once per slab; the slabs' blocks are resident together and
 * walk the tiles in the same order, so the re-reads come mostly from L2.
 * Inside a warp: the 16 rows' A fragments for all k16 steps (K <= 160: at most 10 x 4 registers) are loaded
 * from the ring once per tile; then the slab's columns go in chunks of 64 (8 n8 tiles: 32 float
 * accumulators), each chunk's MMAs, then its epilogue (bias, residual, activation, rounding, stmatrix into
 * the warp's 16 x 72 staging rows, 16-byte lane stores, or element stores where the output slice is not
 * 16-byte aligned), then the next chunk. Output tiles of a chunk are not contiguous in global memory (16
 * runs of 128 bytes), so no bulk copies here.
 *
 * Bits: each accumulator starts from +0, takes the k16 steps in order, then the tiled kernel's all-zero k16
 * step when K % 32 is 1..16 (zero registers), and the epilogue is the same float sequence as the other forms
 * and the tiled kernel with one K segment (bias, residual, activation, one rounding): bit-identical to them,
 * so the tuner may pick it per batch bucket ("pw" tile at seg 0). Half output only. */
#include <atomic>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cu_common.cuh"
#include "backend/cuda/cu_gemm_epi.cuh"
#include "backend/cuda/cu_mma.cuh"
#include "backend/cuda/cu_pw_common.cuh"

namespace {

using namespace ri_cu_mma;

constexpr int WARPS = 8;
constexpr int THREADS = WARPS * 32;
constexpr int ROWS = 16;      /* output rows of a warp tile */
constexpr int CH = 64;        /* output channels of a chunk */
constexpr int CT = CH / 8;    /* its n8 tiles */
constexpr int LDC = CH + 8;   /* staging row stride (halves) */
constexpr int MAX_KS = 10;    /* k16 steps: K <= 160 */
constexpr int SLAB_MAX = 192; /* channels of a slab */
constexpr int MAX_STAGES = 4; /* the ring: A leaves it for registers at the start of a tile */
constexpr int MAX_DEVICES = 64;

struct pww_geo {
  int kp, ldk;   /* K rounded up to 16; row stride of weight and input rows (kp + 8) */
  int ksteps;    /* kp / 16 */
  int zstep;     /* 1 when the tiled kernel adds an all-zero k16 step (K % 32 in 1..16) */
  int stages;    /* S: input tiles in flight per warp, 1 .. MAX_STAGES */
  int sw;        /* channels of a slab (multiple of CH) */
  int nslabs;    /* slabs covering m_out */
  int hint;      /* 1: evict-first stores */
  int blocks_sm; /* blocks per multiprocessor the plan expects */
};

static size_t smem_of(const pww_geo &g) {
  const size_t per_warp = (size_t)g.stages * ROWS * g.ldk + (size_t)ROWS * LDC;
  return (size_t)g.sw * g.ldk * 2 + (size_t)g.sw * 4 + (size_t)WARPS * per_warp * 2;
}

/* GACT: the activation is none of identity, ReLU and clip (compiled in only there; that instance is
 * bounded for one block per multiprocessor, which it fits without spills). */
template <bool GACT>
__global__ void __launch_bounds__(THREADS, GACT ? 1 : 2)
    pww_kernel(const ri__cu_convgemm_args p, const pww_geo g, const __half *__restrict__ x,
               const __half *__restrict__ w, const float *__restrict__ bias, const __half *__restrict__ res,
               __half *__restrict__ y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  extern __shared__ __align__(128) unsigned char smem[];
  const int ldk = g.ldk, S = g.stages, K = p.k, KC = K / 8, sw = g.sw;
  const int n_base = blockIdx.y * sw; /* the slab's first output channel */
  __half *Ws = (__half *)smem;
  float *Bs = (float *)(Ws + (size_t)sw * ldk);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int per_warp = S * ROWS * ldk + ROWS * LDC;
  __half *ring = (__half *)(Bs + sw) + (size_t)warp * per_warp;
  __half *Cs = ring + S * ROWS * ldk;

  /* The slab's weight rows (zero past m_out and ldw), bias, and zeros in the rings (the columns from K to
   * kp are never written by the copies). */
  {
    const int rc = ldk / 8, wchunks = sw * rc;
    for (int q = tid; q < wchunks; q += THREADS) {
      const int n = q / rc, c = (q - n * rc) * 8, gn = n_base + n;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (gn < p.m_out && c < p.ldw) v = *(const uint4 *)(w + (int64_t)gn * p.ldw + c);
      *(uint4 *)(Ws + (size_t)n * ldk + c) = v;
    }
  }
  for (int n = tid; n < sw; n += THREADS)
    Bs[n] = bias && n_base + n < p.m_out ? bias[n_base + n] : 0.f;
  {
    __half *all = (__half *)(Bs + sw);
    const int chunks = WARPS * per_warp / 8;
    for (int q = tid; q < chunks; q += THREADS)
      *(uint4 *)(all + (size_t)q * 8) = make_uint4(0, 0, 0, 0);
  }
  __syncthreads();

  const int M = p.n * p.oh * p.ow;
  const int ntiles = (M + ROWS - 1) / ROWS;
  const int stride = gridDim.x * WARPS;
  const int first = blockIdx.x * WARPS + warp;
  const ri_cu_pw_walk wk = ri_cu_pw_walk_of(lane, KC);

  auto load = [&](int stage, int tile) {
    ri_cu_pw_load_rows(ring + stage * ROWS * ldk, ldk, x, K, tile * ROWS, M, wk, lane);
  };

  /* S = 1: the tile's one stage is refilled with the next tile as soon as its A fragments are in registers
   * (below); else the shared ring (cu_pw_common.cuh). */
  if (S == 1) {
    if (first < ntiles) load(0, first);
    cp_commit();
  } else {
    ri_cu_pw_ring_fill(S, first, stride, ntiles, load);
  }

  const int g8 = lane >> 2, t4 = lane & 3;
  const bool clampf = p.act == RI_CU_ACT_RELU || p.act == RI_CU_ACT_CLIP;
  const float lo = p.act == RI_CU_ACT_RELU ? 0.f : p.act_a;
  const float hi = p.act == RI_CU_ACT_RELU ? INFINITY : p.act_b;
  const bool dense = p.y_img_stride == p.rows_per_img * p.ldy;
  const bool vec = ri_cu_epi_vec(p);
  const bool hint = g.hint, zstep = g.zstep;
  const int ksteps = g.ksteps;
  int chunks = (p.m_out - n_base + CH - 1) / CH; /* chunks of this slab below m_out */
  if (chunks > sw / CH) chunks = sw / CH;
  int st = 0;
  for (int tile = first; tile < ntiles; tile += stride) {
    if (S == 1) {
      cp_wait<0>();
      __syncwarp();
    } else {
      ri_cu_pw_ring_next(S, st, tile, stride, ntiles, load);
    }
    const __half *A = ring + st * ROWS * ldk;
    unsigned af[MAX_KS][4];
#pragma unroll
    for (int ks = 0; ks < MAX_KS; ks++)
      if (ks < ksteps)
        ldsm_x4(af[ks][0], af[ks][1], af[ks][2], af[ks][3],
                A + (lane & 15) * ldk + ks * 16 + (lane >> 4) * 8);
    if (S == 1) { /* the reads above ordered before the refill by the warp barrier */
      __syncwarp();
      if (tile + stride < ntiles) load(0, tile + stride);
      cp_commit();
    }
    if (++st == S) st = 0;
    const int m0 = tile * ROWS;

    for (int ch = 0; ch < chunks; ch++) {
      const int c0 = ch * CH, nb = n_base + c0;
      const __half *Wc = Ws + (size_t)c0 * ldk;
      float acc[CT][4];
#pragma unroll
      for (int j = 0; j < CT; j++)
        acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
#pragma unroll
      for (int ks = 0; ks < MAX_KS; ks++) {
        if (ks < ksteps) {
          const int kk = ks * 16;
#pragma unroll
          for (int j = 0; j < CT; j += 2) {
            unsigned b0, b1, b2, b3;
            ldsm_x4(b0, b1, b2, b3,
                    Wc + (j * 8 + (lane & 7) + ((lane >> 4) << 3)) * ldk + kk + ((lane >> 3) & 1) * 8);
            mma16816(acc[j], af[ks], b0, b1);
            mma16816(acc[j + 1], af[ks], b2, b3);
          }
        }
      }
      if (zstep) {
        const unsigned z[4] = {0u, 0u, 0u, 0u};
#pragma unroll
        for (int j = 0; j < CT; j++)
          mma16816(acc[j], z, 0u, 0u);
      }
      /* Thread (g8, t4) holds rows g8 and g8 + 8, columns 8 j + 2 t4 and + 1 of each n8 tile j: bias,
       * residual, activation, rounding, then stmatrix one pair of tiles at a time (matrix q of the x4: rows
       * 8 (q & 1) .. + 7 of tile j + (q >> 1)). */
#pragma unroll
      for (int j = 0; j < CT; j += 2) {
        unsigned wd[2][2];
#pragma unroll
        for (int jj = 0; jj < 2; jj++) {
          const int n = (j + jj) * 8 + t4 * 2;
          const float b0 = Bs[c0 + n], b1 = Bs[c0 + n + 1];
#pragma unroll
          for (int h = 0; h < 2; h++) {
            const int r = g8 + h * 8;
            float v0 = acc[j + jj][2 * h] + b0, v1 = acc[j + jj][2 * h + 1] + b1;
            if (res && m0 + r < M)
              ri_cu_epi_res(res + (int64_t)(m0 + r) * p.ldr, nb + n, p.m_out, p.ldr, v0, v1);
            if (clampf) {
              v0 = fminf(fmaxf(v0, lo), hi);
              v1 = fminf(fmaxf(v1, lo), hi);
            } else if (GACT) {
              v0 = ri_act(p.act, p.act_a, p.act_b, v0);
              v1 = ri_act(p.act, p.act_a, p.act_b, v1);
            }
            __half2 hv = __floats2half2_rn(v0, v1);
            wd[jj][h] = *(unsigned *)&hv;
          }
        }
        const __half *row = Cs + ((lane & 7) + ((lane >> 3) & 1) * 8) * LDC + (j + (lane >> 4)) * 8;
        asm volatile(
            "stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(smem_u32(row)),
            "r"(wd[0][0]), "r"(wd[0][1]), "r"(wd[1][0]), "r"(wd[1][1])
            : "memory");
      }
      __syncwarp();
#pragma unroll
      for (int q = lane; q < ROWS * CT; q += 32) {
        const int r = q / CT, cc = q - r * CT, m = m0 + r, n = nb + cc * 8;
        if (m >= M || n >= p.m_out) continue;
        __half *yp = y + ri_cu_epi_row(p, m, dense) + p.y_off + n;
        const uint4 v = *(const uint4 *)(Cs + r * LDC + cc * 8);
        if (hint && vec && n + 8 <= p.m_out)
          __stcs((uint4 *)yp, v);
        else
          ri_cu_epi_store8(yp, v, vec, n, p.m_out);
      }
      __syncwarp(); /* the staging rows are rewritten by the next chunk */
    }
  }
  cp_wait<0>();
}

using dev_info = ri_cu_pw_dev;

/* Whether `blocks` blocks of plan g fit a multiprocessor's shared memory. */
static bool fits(const pww_geo &g, int blocks, const dev_info &d) {
  const size_t sm = smem_of(g);
  return sm <= (size_t)d.optin && (size_t)blocks * (sm + (size_t)d.reserved) <= (size_t)d.smem_sm;
}

/* Slabs of at most slab_max channels covering m_out (sw a multiple of CH). */
static void slabs_of(pww_geo *g, int m_out, int slab_max) {
  g->nslabs = (m_out + slab_max - 1) / slab_max;
  const int per = (m_out + g->nslabs - 1) / g->nslabs;
  g->sw = (per + CH - 1) / CH * CH;
}

/* RI_CUDA_PW_WIDE_PLAN=old: the first plan only (A/B; read once per process). */
static bool old_plan_env() {
  static std::atomic<int> old{-1};
  int o = old.load();
  if (o < 0) {
    const char *e = getenv("RI_CUDA_PW_WIDE_PLAN");
    o = e && strcmp(e, "old") == 0;
    old.store(o);
  }
  return o != 0;
}

/* The plan of a launch (0 when nothing fits): slabs as the header says; two blocks per multiprocessor with
 * the deepest ring (S >= 2) that allows it, else one block with the deepest ring that fits. Where that leaves
 * one block and K >= 128 (K = 160: 192-channel slabs and 3 stages, 212 KB), two blocks are preferred when a
 * single-stage ring, or 128-channel slabs (with the deepest ring that allows two), fit them (two_ok: the
 * instance is bounded for two blocks; not under RI_CUDA_PW_WIDE_PLAN=old). The arithmetic of an output does
 * not depend on the plan (chunks of 64 channels from slab starts that are multiples of 64): same bits. */
static int plan(const ri__cu_convgemm_args *p, int variant, const dev_info &d, bool two_ok, pww_geo *out) {
  pww_geo g;
  memset(&g, 0, sizeof g);
  g.kp = (p->k + 15) / 16 * 16;
  g.ldk = g.kp + 8;
  g.ksteps = g.kp / 16;
  g.zstep = (p->ldw + 31) / 32 * 2 - g.ksteps;
  if (g.ksteps > MAX_KS || p->m_out < 1) return 0;
  slabs_of(&g, p->m_out, SLAB_MAX);
  const double out_bytes = (double)p->n * p->oh * p->ow * p->ldy * 2;
  g.hint = (variant == 1 || variant == 2) && out_bytes > (double)d.l2;
  int found = 0;
  for (int blocks = 2; blocks >= 1 && !found; blocks--)
    for (g.stages = MAX_STAGES; g.stages >= 2; g.stages--)
      if (fits(g, blocks, d)) {
        g.blocks_sm = blocks;
        *out = g;
        found = 1;
        break;
      }
  if (!found) return 0;
  if (out->blocks_sm >= 2 || p->k < 128 || !two_ok || old_plan_env()) return 1;
  for (int slab_max = SLAB_MAX; slab_max >= 128; slab_max -= CH) {
    slabs_of(&g, p->m_out, slab_max);
    for (g.stages = MAX_STAGES; g.stages >= 1; g.stages--)
      if (fits(g, 2, d)) {
        g.blocks_sm = 2;
        *out = g;
        return 1;
      }
  }
  return 1;
}

template <bool GACT>
cudaError_t launch(cudaStream_t s, const ri__cu_convgemm_args *p, int variant, const void *x, const void *w,
                   const float *b, const void *r, void *y, char *desc, size_t desc_n) {
  dev_info d;
  int dev = 0;
  cudaError_t e = ri_cu_pw_query(&d, &dev);
  if (e != cudaSuccess) return e;
  pww_geo g;
  if (!plan(p, variant, d, !GACT, &g)) return cudaErrorInvalidValue;
  const size_t smem = smem_of(g);
  /* Per device: the shared-memory limit raised once to the opt-in maximum (the same value for every plan),
   * and the occupancy of the last plan's size cached as (smem << 8 | blocks). */
  static std::atomic<int> raised[MAX_DEVICES];
  static std::atomic<long long> occ_of[MAX_DEVICES];
  const bool cached = dev >= 0 && dev < MAX_DEVICES;
  if (!cached || !raised[dev].load()) {
    e = cudaFuncSetAttribute(pww_kernel<GACT>, cudaFuncAttributeMaxDynamicSharedMemorySize, d.optin);
    if (e == cudaSuccess)
      e = cudaFuncSetAttribute(pww_kernel<GACT>, cudaFuncAttributePreferredSharedMemoryCarveout,
                               cudaSharedmemCarveoutMaxShared);
    if (e != cudaSuccess) return e;
    if (cached) raised[dev].store(1);
  }
  const long long packed = cached ? occ_of[dev].load() : 0;
  int occ = 0;
  if (cached && packed >> 8 == (long long)smem) {
    occ = (int)(packed & 255);
  } else {
    e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, pww_kernel<GACT>, THREADS, smem);
    if (e != cudaSuccess) return e;
    if (occ > 255) occ = 255;
    if (cached) occ_of[dev].store((long long)smem << 8 | occ);
  }
  if (occ < 1) return cudaErrorInvalidValue;
  if (occ < g.blocks_sm) g.blocks_sm = occ;
  /* The resident blocks shared among the slabs; each slab's blocks persistent over the row tiles. */
  const int64_t M = (int64_t)p->n * p->oh * p->ow, tiles = (M + ROWS - 1) / ROWS;
  int64_t bx = (tiles + WARPS - 1) / WARPS, most = (int64_t)d.sms * g.blocks_sm / g.nslabs;
  if (most < 1) most = 1;
  if (bx > most) bx = most;
  if (desc) {
    cudaFuncAttributes fa;
    e = cudaFuncGetAttributes(&fa, pww_kernel<GACT>);
    if (e != cudaSuccess) return e;
    snprintf(desc, desc_n,
             "wide: %d slabs x %d ch, %lld x %d blocks, %d blocks/SM, S=%d%s%s, regs %d, smem %zu, plan %s",
             g.nslabs, g.sw, (long long)bx, g.nslabs, g.blocks_sm, g.stages, g.hint ? ", evict-first" : "",
             g.zstep ? ", zero step" : "", fa.numRegs, smem, old_plan_env() ? "old" : "new");
    return cudaSuccess;
  }
  ri_cu_launch(pww_kernel<GACT>, dim3((unsigned)bx, (unsigned)g.nslabs), THREADS, smem, s, *p, g,
               (const __half *)x, (const __half *)w, b, (const __half *)r, (__half *)y);
  return ri_cu_launched();
}

cudaError_t dispatch(cudaStream_t s, const ri__cu_convgemm_args *p, int variant, const void *x, const void *w,
                     const float *bias, const void *res, void *y, char *desc, size_t desc_n) {
  if (p->act == RI_CU_ACT_NONE || p->act == RI_CU_ACT_RELU || p->act == RI_CU_ACT_CLIP)
    return launch<false>(s, p, variant, x, w, bias, res, y, desc, desc_n);
  return launch<true>(s, p, variant, x, w, bias, res, y, desc, desc_n);
}

} // namespace

extern "C" cudaError_t ri__cu_pwconv_wide(cudaStream_t s, const ri__cu_convgemm_args *p, int variant,
                                          const void *x, const void *w, const float *bias, const void *res,
                                          void *y) {
  return dispatch(s, p, variant, x, w, bias, res, y, NULL, 0);
}

extern "C" cudaError_t ri__cu_pwconv_wide_describe(const ri__cu_convgemm_args *p, int variant, char *buf,
                                                   size_t n) {
  if (!buf || n == 0) return cudaErrorInvalidValue;
  return dispatch(0, p, variant, NULL, NULL, NULL, NULL, NULL, buf, n);
}
