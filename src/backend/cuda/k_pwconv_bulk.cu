/* Pointwise convolution, second form (variants 1 .. 4 of ri__cu_pwconv_v; k_pwconv.cu holds the first,
 * variant 0, and the rules both follow). Same work split as there: persistent blocks keep the weight matrix
 * and the bias in shared memory, each warp takes tiles of 16 output rows x all N columns with a cp.async ring
 * of S input tiles, mma.sync m16n8k16 with float accumulators. What changes is the traffic around the MMAs,
 * for the early, memory-bound layers of SSD MobileNet v2 at large batches (16 -> 96, 24 -> 144 channels: six
 * bytes written per byte read; 144 -> 24 with a residual), which the first form ran at about half of the
 * DRAM bandwidth (H200, batch 256):
 *  - Output tiles leave through Hopper's bulk copy (cp.async.bulk shared -> global, variants 1 and 3) where
 *    the output is dense (no slice, ldy = m_out, m_out % 8 == 0): a tile of 16 pixels is one contiguous run
 *    of 16 * m_out halves, so stmatrix writes it unpadded into one of the warp's nbuf staging tiles, lane 0
 *    issues one copy of the whole run and the warp goes on; it waits (wait_group.read) only before it
 *    rewrites a staging tile, so up to nbuf tiles' stores are in flight per warp, and no per-lane shared
 *    load, address arithmetic or 16-byte store is left in the loop. Elsewhere (slices, variants 2 and 4) the
 *    first form's staging and 16-byte lane stores.
 *  - Variants 1 and 2 mark the output evict-first in L2 (the bulk copy's cache hint, st.global.cs) when it
 *    is larger than the L2: it is not read again before it is evicted anyway; smaller outputs keep the
 *    default policy, because the next layer reads them from L2.
 *  - A residual comes through the ring with the input rows (cp.async, S tiles ahead) when m_out and ldr
 *    are multiples of 8, instead of the epilogue's blocking global loads.
 *  - The epilogue goes one pair of n8 tiles at a time from accumulators to stmatrix (fewer live registers:
 *    __launch_bounds__ for two blocks of 8 warps), and the launch chooses blocks of 8 or 4 warps, S and nbuf
 *    from the device's shared memory and the kernel's registers: most warps per multiprocessor first (up
 *    to 24), then two staging tiles, then the deepest ring.
 *  - The tiled kernel's all-zero k16 step (K % 32 in 1..16) is issued as in the first form. With
 *    RI_CUDA_PW2_ZFOLD=1 it is folded into the bias instead (one MMA per n8 tile less): its one effect, a -0
 *    sum turned into +0 before the bias is added, is had by adding a -0 bias as +0 (acc + (+0) differs from
 *    acc + (-0) only for acc = -0, where it gives +0 as (acc + 0) + (-0) does; every other sum is unchanged,
 *    the sums being multiples of 2^-48, never subnormal). That relies on the MMA adding zero products as an
 *    IEEE addition of +0; off by default until the signed-zero cases of test_cuda_conv have passed with it.
 * Results are the first form's bit for bit (same k16 steps in the same order, same epilogue float sequence:
 * bias, residual, activation, one rounding), so the tuner may pick either per batch bucket. Half output
 * only; the bulk copy needs sm_90 (the launcher uses the lane stores below it). */
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

constexpr int MAX_WARPS = 8; /* warps per block: 8 or 4 */
constexpr int ROWS = 16;     /* output rows of a warp tile */
constexpr int MAX_STAGES = 8;
constexpr int MAX_WARPS_PER_SM = 24; /* beyond this, more warps are not preferred over a deeper ring */
constexpr int MAX_DEVICES = 64;

/* Bulk copies shared -> global (sm_90; the launcher never asks for them below). */
__device__ __forceinline__ uint64_t evict_first_policy() {
  uint64_t p = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(p));
#endif
  return p;
}
/* One bulk copy of bytes (a multiple of 16) from shared src to global dst (both 16-byte aligned), committed
 * as a group of its own; hint: evict-first in L2. */
__device__ __forceinline__ void bulk_store(void *dst, const void *src, unsigned bytes, bool hint) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (hint)
    asm volatile(
        "cp.async.bulk.global.shared::cta.bulk_group.L2::cache_hint [%0], [%1], %2, %3;\n" ::"l"(dst),
        "r"(smem_u32(src)), "r"(bytes), "l"(evict_first_policy())
        : "memory");
  else
    asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(dst),
                 "r"(smem_u32(src)), "r"(bytes)
                 : "memory");
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#else
  (void)dst, (void)src, (void)bytes, (void)hint;
#endif
}
/* Until at most n (0 or 1) of this thread's bulk copies may still read their shared source. */
__device__ __forceinline__ void bulk_wait_read(int n) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (n == 0)
    asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
  else
    asm volatile("cp.async.bulk.wait_group.read 1;\n" ::: "memory");
#else
  (void)n;
#endif
}
__device__ __forceinline__ void bulk_wait_all() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
#endif
}
/* Orders this thread's shared-memory writes (stmatrix) before later bulk copies read them. */
__device__ __forceinline__ void fence_proxy_async() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
/* A launch's plan (strides in halves; every part of shared memory 16-byte aligned). */
struct pwb_geo {
  int kp, ldk;   /* K rounded up to 16 (the k16 steps); row stride of weight and input rows (kp + 8) */
  int zstep;     /* 1 when the tiled kernel adds an all-zero k16 step (K % 32 in 1..16) */
  int zfold;     /* 1: that step folded into the bias (-0 as +0; RI_CUDA_PW2_ZFOLD=1), 0: issued */
  int stages;    /* S: tiles of input (and residual) rows in flight per warp, 2 .. 8 */
  int warps;     /* per block: 8 or 4 */
  int tma;       /* 1: output tiles leave through bulk copies from nbuf unpadded staging tiles */
  int nbuf;      /* staging tiles per warp (bulk copies: 1 or 2; lane stores: 1 padded tile) */
  int hint;      /* 1: evict-first stores */
  int res_smem;  /* 1: residual rows through the ring (16 x ldr_s halves after a stage's input rows) */
  int ldr_s;     /* NR + 8 */
  int stage_h;   /* halves of one ring stage */
  int out_h;     /* halves of a warp's output staging */
  int blocks_sm; /* blocks per multiprocessor the plan expects */
};

static size_t smem_of(int nt, const pwb_geo &g) {
  const size_t per_warp = (size_t)g.stages * g.stage_h + g.out_h;
  return (size_t)nt * 8 * g.ldk * 2 + (size_t)nt * 8 * 4 + (size_t)g.warps * per_warp * 2;
}

/* NT: n8 tiles covering N (even). GACT: the activation is none of identity, ReLU and clip (ri_act's other
 * kinds, compiled in only there: inlined in every n8 tile they cost registers and code in the common path).
 */
template <int NT, bool GACT>
__global__ void __launch_bounds__(MAX_WARPS * 32, 2)
    pwb_kernel(const ri__cu_convgemm_args p, const pwb_geo g, const __half *__restrict__ x,
               const __half *__restrict__ w, const float *__restrict__ bias, const __half *__restrict__ res,
               __half *__restrict__ y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  extern __shared__ __align__(128) unsigned char smem[];
  constexpr int NR = NT * 8, LDC = NR + 8;
  const int ldk = g.ldk, S = g.stages, K = p.k, KC = K / 8, nthreads = g.warps * 32;
  __half *Ws = (__half *)smem;
  float *Bs = (float *)(Ws + (size_t)NR * ldk);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int per_warp = S * g.stage_h + g.out_h;
  __half *ring = (__half *)(Bs + NR) + (size_t)warp * per_warp;
  __half *Os = ring + S * g.stage_h;

  ri_cu_pw_weights(Ws, w, p, NR, ldk, tid, nthreads);
  for (int n = tid; n < NR; n += nthreads) {
    float b = bias && n < p.m_out ? bias[n] : 0.f;
    if (g.zstep && g.zfold) b = __fadd_rn(b, 0.f); /* -0 -> +0, every other value unchanged */
    Bs[n] = b;
  }
  {
    __half *all = (__half *)(Bs + NR);
    const int chunks = g.warps * per_warp / 8;
    for (int q = tid; q < chunks; q += nthreads)
      *(uint4 *)(all + (size_t)q * 8) = make_uint4(0, 0, 0, 0);
  }
  __syncthreads();

  const int M = p.n * p.oh * p.ow;
  const int ntiles = (M + ROWS - 1) / ROWS;
  const int stride = gridDim.x * g.warps;
  const int first = blockIdx.x * g.warps + warp;
  /* This lane's 16-byte chunks of a tile's input rows (q = lane + 32 i: row q / KC, chunk q % KC) and of its
   * residual rows (RC chunks a row). */
  const ri_cu_pw_walk wk = ri_cu_pw_walk_of(lane, KC),
                      rwk = ri_cu_pw_walk_of(lane, g.res_smem ? p.m_out / 8 : 1);
  const int ldr_s = g.ldr_s;

  auto load = [&](int stage, int tile) {
    __half *dst = ring + stage * g.stage_h;
    ri_cu_pw_load_rows(dst, ldk, x, K, tile * ROWS, M, wk, lane);
    if (g.res_smem) ri_cu_pw_load_rows(dst + ROWS * ldk, ldr_s, res, p.ldr, tile * ROWS, M, rwk, lane);
  };

  ri_cu_pw_ring_fill(S, first, stride, ntiles, load);

  const int g8 = lane >> 2, t4 = lane & 3;
  const bool clampf = p.act == RI_CU_ACT_RELU || p.act == RI_CU_ACT_CLIP;
  const float lo = p.act == RI_CU_ACT_RELU ? 0.f : p.act_a;
  const float hi = p.act == RI_CU_ACT_RELU ? INFINITY : p.act_b;
  const bool dense = p.y_img_stride == p.rows_per_img * p.ldy;
  const bool vec = ri_cu_epi_vec(p);
  const bool zmma = g.zstep && !g.zfold;
  const bool hint = g.hint;
  const int ldo = g.tma ? p.m_out : LDC; /* staging row stride */
  const int ksteps = g.kp / 16;
  int st = 0, ob = 0;
  for (int tile = first; tile < ntiles; tile += stride) {
    ri_cu_pw_ring_next(S, st, tile, stride, ntiles, load);
    const __half *A = ring + st * g.stage_h;
    const __half *R = A + ROWS * ldk;
    float acc[NT][4];
    ri_cu_pw_mma<NT>(acc, A, Ws, ldk, ksteps, zmma, lane);

    const int m0 = tile * ROWS;
    __half *C = Os + ob * ROWS * ldo;
    if (g.tma) { /* the staging tile's last bulk copy has read it */
      if (lane == 0) bulk_wait_read(g.nbuf - 1);
      __syncwarp();
    }
    /* Thread (g8, t4) holds rows g8 and g8 + 8, columns 8 j + 2 t4 and + 1 of each n8 tile j; one pair of
     * tiles at a time: bias, residual, activation, rounding, then stmatrix (matrix q of the x4: rows
     * 8 (q & 1) .. + 7 of tile j + (q >> 1); lanes 8 q .. 8 q + 7 give its row addresses). */
#pragma unroll
    for (int j = 0; j < NT; j += 2) {
      if (g.tma && j * 8 >= p.m_out) break;
      unsigned wd[2][2];
#pragma unroll
      for (int jj = 0; jj < 2; jj++) {
        const int n = (j + jj) * 8 + t4 * 2;
        const float2 b = *(const float2 *)(Bs + n);
#pragma unroll
        for (int h = 0; h < 2; h++) {
          const int r = g8 + h * 8;
          float v0 = acc[j + jj][2 * h] + b.x, v1 = acc[j + jj][2 * h + 1] + b.y;
          if (res) {
            if (g.res_smem) {
              if (n < p.m_out) {
                const float2 f = __half22float2(*(const __half2 *)(R + r * ldr_s + n));
                v0 += f.x, v1 += f.y;
              }
            } else if (m0 + r < M) {
              ri_cu_epi_res(res + (int64_t)(m0 + r) * p.ldr, n, p.m_out, p.ldr, v0, v1);
            }
          }
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
      const __half *row = C + ((lane & 7) + ((lane >> 3) & 1) * 8) * ldo + (j + (lane >> 4)) * 8;
      if (!g.tma || (j + 1) * 8 < p.m_out)
        asm volatile(
            "stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(smem_u32(row)),
            "r"(wd[0][0]), "r"(wd[0][1]), "r"(wd[1][0]), "r"(wd[1][1])
            : "memory");
      else /* the last n8 tile of an odd count of them (bulk staging rows hold m_out columns only) */
        asm volatile("stmatrix.sync.aligned.m8n8.x2.shared.b16 [%0], {%1, %2};\n" ::"r"(smem_u32(row)),
                     "r"(wd[0][0]), "r"(wd[0][1])
                     : "memory");
    }
    if (g.tma) {
      fence_proxy_async();
      __syncwarp();
      if (lane == 0) {
        const int rows = M - m0 < ROWS ? M - m0 : ROWS;
        bulk_store(y + (int64_t)m0 * p.m_out, C, (unsigned)(rows * p.m_out * 2), hint);
      }
      if (++ob == g.nbuf) ob = 0;
    } else {
      __syncwarp();
#pragma unroll 2
      for (int q = lane; q < ROWS * NT; q += 32) {
        const int r = q / NT, cc = q - r * NT, m = m0 + r, n = cc * 8;
        if (m >= M || n >= p.m_out) continue;
        __half *yp = y + ri_cu_epi_row(p, m, dense) + p.y_off + n;
        const uint4 v = *(const uint4 *)(C + r * LDC + n);
        if (hint && vec && n + 8 <= p.m_out)
          __stcs((uint4 *)yp, v);
        else
          ri_cu_epi_store8(yp, v, vec, n, p.m_out);
      }
      __syncwarp(); /* the staging rows are rewritten by the next tile */
    }
    if (++st == S) st = 0;
  }
  cp_wait<0>();
  if (g.tma && lane == 0) bulk_wait_all();
}

int env_zfold() {
  static const int v = [] {
    const char *e = getenv("RI_CUDA_PW2_ZFOLD");
    return e && strcmp(e, "1") == 0 ? 1 : 0;
  }();
  return v;
}

/* Benchmarks only (ri__cu_pwconv_bulk_force): plans restricted to these warps per block, stages and staging
 * tiles (0: any). */
std::atomic<int> g_force_warps, g_force_stages, g_force_nbuf;

using dev_info = ri_cu_pw_dev;

/* The plan of a launch (0 when nothing fits): see the header for the order of preferences. regs: the
 * kernel's registers per thread. */
static int plan(const ri__cu_convgemm_args *p, int nt, int variant, const dev_info &d, int regs, bool has_res,
                pwb_geo *out) {
  pwb_geo g;
  memset(&g, 0, sizeof g);
  g.kp = (p->k + 15) / 16 * 16;
  g.ldk = g.kp + 8;
  g.zstep = (p->ldw + 31) / 32 * 2 - g.kp / 16;
  g.zfold = env_zfold();
  const bool dense = p->y_img_stride == p->rows_per_img * p->ldy;
  g.tma = (variant == 1 || variant == 3) && d.major >= 9 && dense && p->y_off == 0 && p->ldy == p->m_out &&
          p->m_out % 8 == 0;
  const double out_bytes = (double)p->n * p->oh * p->ow * p->ldy * 2;
  g.hint = (variant == 1 || variant == 2) && out_bytes > (double)d.l2;
  g.res_smem = has_res && p->m_out % 8 == 0 && p->ldr % 8 == 0;
  g.ldr_s = nt * 8 + 8;
  g.stage_h = ROWS * g.ldk + (g.res_smem ? ROWS * g.ldr_s : 0);
  const int regs_warp = (regs * 32 + 255) / 256 * 256;
  long best = -1;
  const int fw = g_force_warps.load(), fs = g_force_stages.load(), fn = g_force_nbuf.load();
  for (int wi = 0; wi < 2; wi++)
    for (int nb = g.tma ? 2 : 1; nb >= 1; nb--)
      for (int s = MAX_STAGES; s >= 2; s--) {
        if ((fw && fw != (wi == 0 ? 8 : 4)) || (fs && fs != s) || (fn && g.tma && fn != nb)) continue;
        pwb_geo c = g;
        c.warps = wi == 0 ? 8 : 4;
        c.nbuf = nb;
        c.stages = s;
        c.out_h = g.tma ? nb * ROWS * p->m_out : ROWS * (nt * 8 + 8);
        const size_t sm = smem_of(nt, c);
        if (sm > (size_t)d.optin) continue;
        int blocks = 32;
        if (64 / c.warps < blocks) blocks = 64 / c.warps;
        const int by_regs = regs_warp > 0 ? 65536 / regs_warp / c.warps : blocks;
        if (by_regs < blocks) blocks = by_regs;
        const int by_smem = (int)((size_t)d.smem_sm / (sm + (size_t)d.reserved));
        if (by_smem < blocks) blocks = by_smem;
        if (blocks < 1) continue;
        int wsm = blocks * c.warps;
        if (wsm > MAX_WARPS_PER_SM) wsm = MAX_WARPS_PER_SM;
        const long score = (long)wsm * 1000 + nb * 100 + s * 10 + (c.warps == 8);
        if (score > best) best = score, c.blocks_sm = blocks, *out = c;
      }
  return best >= 0;
}

template <int NT, bool GACT> int regs_of(int dev) {
  static std::atomic<int> cache[MAX_DEVICES];
  const bool cached = dev >= 0 && dev < MAX_DEVICES;
  int r = cached ? cache[dev].load() : 0;
  if (r > 0) return r;
  cudaFuncAttributes fa;
  if (cudaFuncGetAttributes(&fa, pwb_kernel<NT, GACT>) != cudaSuccess) return -1;
  r = fa.numRegs > 0 ? fa.numRegs : 1;
  if (cached) cache[dev].store(r);
  return r;
}

template <int NT, bool GACT>
cudaError_t launch_act(cudaStream_t s, const ri__cu_convgemm_args *p, int variant, const void *x,
                       const void *w, const float *b, const void *r, void *y, char *desc, size_t desc_n) {
  dev_info d;
  int dev = 0;
  cudaError_t e = ri_cu_pw_query(&d, &dev);
  if (e != cudaSuccess) return e;
  const int regs = regs_of<NT, GACT>(dev);
  if (regs < 0) return cudaErrorInvalidDeviceFunction;
  pwb_geo g;
  if (!plan(p, NT, variant, d, regs, r != NULL, &g)) return cudaErrorInvalidValue;
  const size_t smem = smem_of(NT, g);
  /* The kernel's shared-memory limit raised once per device to the opt-in maximum and its carveout to all
   * shared memory (the same values for every plan, so concurrent callers cannot lower them under each
   * other). */
  static std::atomic<int> raised[MAX_DEVICES];
  static std::atomic<long long> occ_of[MAX_DEVICES];
  const bool cached = dev >= 0 && dev < MAX_DEVICES;
  if (!cached || !raised[dev].load()) {
    e = cudaFuncSetAttribute(pwb_kernel<NT, GACT>, cudaFuncAttributeMaxDynamicSharedMemorySize, d.optin);
    if (e == cudaSuccess)
      e = cudaFuncSetAttribute(pwb_kernel<NT, GACT>, cudaFuncAttributePreferredSharedMemoryCarveout,
                               cudaSharedmemCarveoutMaxShared);
    if (e != cudaSuccess) return e;
    if (cached) raised[dev].store(1);
  }
  /* The plan's blocks per multiprocessor, confirmed by the runtime (a persistent grid larger than what is
   * resident would run its last blocks in a second wave); cached as (smem, warps, blocks) of the last plan.
   */
  const long long key = (long long)smem << 16 | g.warps << 8;
  const long long packed = cached ? occ_of[dev].load() : 0;
  int occ = 0;
  if (cached && (packed & ~255LL) == key) {
    occ = (int)(packed & 255);
  } else {
    e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, pwb_kernel<NT, GACT>, g.warps * 32, smem);
    if (e != cudaSuccess) return e;
    if (occ > 255) occ = 255;
    if (cached) occ_of[dev].store(key | occ);
  }
  if (occ < 1) return cudaErrorInvalidValue;
  if (occ < g.blocks_sm) g.blocks_sm = occ;
  if (desc) {
    snprintf(desc, desc_n, "%d warps x %d blocks/SM, S=%d, %s x%d%s%s%s, regs %d, smem %zu", g.warps,
             g.blocks_sm, g.stages, g.tma ? "bulk stores" : "lane stores", g.nbuf,
             g.hint ? ", evict-first" : "", g.res_smem ? ", residual in ring" : "",
             g.zstep ? (g.zfold ? ", zero step folded" : ", zero step") : "", regs, smem);
    return cudaSuccess;
  }
  int64_t M = (int64_t)p->n * p->oh * p->ow, tiles = (M + ROWS - 1) / ROWS;
  int64_t blocks = (tiles + g.warps - 1) / g.warps, most = (int64_t)d.sms * g.blocks_sm;
  if (blocks > most) blocks = most;
  ri_cu_launch(pwb_kernel<NT, GACT>, (unsigned)blocks, g.warps * 32, smem, s, *p, g, (const __half *)x,
               (const __half *)w, b, (const __half *)r, (__half *)y);
  return ri_cu_launched();
}

template <int NT>
cudaError_t launch(cudaStream_t s, const ri__cu_convgemm_args *p, int variant, const void *x, const void *w,
                   const float *b, const void *r, void *y, char *desc, size_t desc_n) {
  if (p->act == RI_CU_ACT_NONE || p->act == RI_CU_ACT_RELU || p->act == RI_CU_ACT_CLIP)
    return launch_act<NT, false>(s, p, variant, x, w, b, r, y, desc, desc_n);
  return launch_act<NT, true>(s, p, variant, x, w, b, r, y, desc, desc_n);
}

cudaError_t dispatch(cudaStream_t s, const ri__cu_convgemm_args *p, int variant, const void *x, const void *w,
                     const float *bias, const void *res, void *y, char *desc, size_t desc_n) {
  switch ((p->m_out + 15) / 16) {
  case 1: return launch<2>(s, p, variant, x, w, bias, res, y, desc, desc_n);
  case 2: return launch<4>(s, p, variant, x, w, bias, res, y, desc, desc_n);
  case 3: return launch<6>(s, p, variant, x, w, bias, res, y, desc, desc_n);
  case 4: return launch<8>(s, p, variant, x, w, bias, res, y, desc, desc_n);
  case 5: return launch<10>(s, p, variant, x, w, bias, res, y, desc, desc_n);
  case 6: return launch<12>(s, p, variant, x, w, bias, res, y, desc, desc_n);
  case 7: return launch<14>(s, p, variant, x, w, bias, res, y, desc, desc_n);
  case 8: return launch<16>(s, p, variant, x, w, bias, res, y, desc, desc_n);
  case 9: return launch<18>(s, p, variant, x, w, bias, res, y, desc, desc_n);
  default: return launch<20>(s, p, variant, x, w, bias, res, y, desc, desc_n);
  }
}

} // namespace

/* Checked by the caller (ri__cu_pwconv_v): supported arguments, alignment, variant 1 .. 4, M > 0. */
extern "C" cudaError_t ri__cu_pwconv_bulk(cudaStream_t s, const ri__cu_convgemm_args *p, int variant,
                                          const void *x, const void *w, const float *bias, const void *res,
                                          void *y) {
  return dispatch(s, p, variant, x, w, bias, res, y, NULL, 0);
}

extern "C" void ri__cu_pwconv_bulk_force(int warps, int stages, int nbuf) {
  g_force_warps.store(warps), g_force_stages.store(stages), g_force_nbuf.store(nbuf);
}

extern "C" cudaError_t ri__cu_pwconv_bulk_describe(const ri__cu_convgemm_args *p, int variant, int has_res,
                                                   char *buf, size_t n) {
  if (!buf || n == 0) return cudaErrorInvalidValue;
  static const unsigned char dummy[16] = {0};
  return dispatch(0, p, variant, NULL, NULL, NULL, has_res ? dummy : NULL, NULL, buf, n);
}
