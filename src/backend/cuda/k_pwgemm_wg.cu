/* Pointwise (1x1, stride 1, unpadded) convolution as a GEMM on Hopper's warpgroup tensor-core instructions
 * (wgmma, sm_90a only): D[M, N] = X[M, K] * W[N, K]^T with X the NHWC half input (row m = pixel, K = input
 * channels), W the half weights as ri__cu_convgemm takes them (row n of ldw halves, zero from K to ldw),
 * float accumulation, and ri__cu_convgemm's epilogue (kernels.h): bias, residual and activation in float,
 * one rounding to half, output into a slice (ldy, y_off, y_img_stride, rows_per_img), optionally widened to
 * float32. First run on an H200 (bench/results/wg-gemm-shapes-2026-11-27.txt); the tuner offers it as a
 * tactic of fp16 1x1 convolutions (cuda_tune.c, cuda_tactics.h: the node runs it at every batch or at none).
 *
 * Block: BM x BN output tile (BM 64 or 128: one or two warpgroups of 128 threads, warpgroup g owns rows
 * 64g .. 64g + 63; BN 64 or 128), K in steps of 64 halves. A step's operands are a BM x 64 tile of X and a
 * BN x 64 tile of W in shared memory, each row 128 bytes, loaded with 16-byte cp.async into the 128-byte
 * swizzled K-major layout that wgmma reads: 16-byte chunk c of row r sits at r * 128 + ((c ^ (r % 8)) * 16)
 * from a 1024-byte aligned tile base (8 rows of 128 bytes form one 1024-byte swizzle atom; atoms follow each
 * other along M / N). Chunks beyond K (X) or ldw (W), and rows beyond M or N, are zero-filled. A step is four
 * wgmma.mma_async.m64nBNk16 per warpgroup, A and B both from shared memory through matrix descriptors, the
 * K offset of each 16-deep slice added to the descriptors' start addresses (32 bytes each).
 *
 * Pipeline: STAGES buffers (3 or 4; a template parameter); the loads for step kt + STAGES - 2 are issued
 * while the wgmma of step kt run, and one wgmma group stays in flight (wgmma.wait_group 1), so a buffer is
 * refilled two steps after its wgmma were issued, once every warpgroup has waited for them and passed the
 * step's barrier. Each thread makes its cp.async writes visible to the async proxy
 * (fence.proxy.async.shared::cta) before the barrier that precedes the wgmma reading them.
 *
 * Batch invariance: one block sums all of K for its tile, in increasing K order, with the same instruction
 * sequence whatever M is; an output element's sum does not depend on the other rows or columns of its tile
 * (confirmed on an H200 by tests/gpu/test_cuda_wggemm.c, which compares images alone and in a batch, and
 * every tile shape and stage count bit for bit). The sums differ in the last bits from k_convgemm.cu's
 * (another MMA instruction), so a node must run this kernel for every batch or for none.
 *
 * PTX ISA sections followed (PTX ISA 9.x numbering, "Asynchronous Warpgroup Level Matrix Multiply-Accumulate
 * Instructions", 9.7.15): 9.7.15.4 (async proxy: wgmma reads shared memory through the async proxy, so
 * generic-proxy writes need fence.proxy.async first), 9.7.15.5.1.1.1 (register fragments of m64nNk16: the
 * f32 accumulator is N/2 registers per thread; warp w of the warpgroup holds rows 16w .. 16w + 15, and for
 * each 8-column block j the registers 4j .. 4j + 3 hold (row g, cols 8j + 2t, 8j + 2t + 1) and (row g + 8,
 * the same cols), g = lane / 4, t = lane % 4, as mma.sync m16n8's accumulator), 9.7.15.5.1.2 (shared
 * memory layouts: K-major with 128-byte swizzling, canonical layout ((8, m), (T, 2k)) : ((8T, SBO), (1, T)),
 * T = 8 halves, under Swizzle<3, 4, 3>, i.e. byte address bits 4-6 XOR bits 7-9; the leading byte offset is
 * not used for swizzled K-major layouts, "assumed 1"; the stride byte offset is the distance between groups
 * of 8 rows, 1024 here), 9.7.15.5.1.2.2 (matrix descriptor: bits 0-13 start address, 16-29 leading byte
 * offset, 32-45 stride byte offset, each (x & 0x3FFFF) >> 4; bits 49-51 base offset, 0 when the swizzle
 * pattern starts on a 1024-byte boundary; bits 62-63 swizzle mode, 1 = 128-byte), 9.7.15.5.2
 * (wgmma.mma_async: operand order d, a-desc, b-desc, scale-d, imm-scale-a, imm-scale-b, imm-trans-a,
 * imm-trans-b; trans 0 = K-major for both), 9.7.15.7.1 - 9.7.15.7.3 (wgmma.fence before the first wgmma and
 * after other accesses to the accumulator registers; commit_group / wait_group before the results are read or
 * the operands' shared memory is rewritten).
 *
 * Build: wgmma exists only for the arch-specific target sm_90a; cmake/cuda.cmake compiles this file for
 * compute_90a / sm_90a alone, with RI_WG_SM90A defined, when the configured architectures include 90.
 * Otherwise the kernel is a stub that traps, and the launcher, built without RI_WG_SM90A, never runs it; it
 * also refuses devices other than compute capability 9.0 and a kernel without an sm_90 binary. */
#include <atomic>
#include <type_traits>

#include "backend/cuda/cu_common.cuh"
#include "backend/cuda/cu_gemm_epi.cuh"
#include "backend/cuda/cu_mma.cuh"

namespace {

constexpr int WG_BK = 64;        /* K step, halves: one 128-byte row of a tile */
constexpr int ROW_BYTES = 128;   /* bytes of one tile row per K step */
constexpr int ATOM_BYTES = 1024; /* one 128-byte swizzle atom: 8 rows */
#if defined(RI_WG_SM90A)
constexpr bool WG_BUILT = true; /* this file was compiled for sm_90a (cmake/cuda.cmake) */
#else
constexpr bool WG_BUILT = false;
#endif

/* Shared memory of a BM x BN tile: STAGES (3 or 4) buffers of A (BM rows) then B (BN rows); the 1 KiB extra
 * lets the kernel align the buffers to 1024 bytes (the swizzle atoms' base offset stays 0). Three stages keep
 * two 128 x 128 blocks per multiprocessor (99 KiB each) at one step of prefetch, four give two steps at one
 * block (129 KiB): which is faster is for the benchmark to say. */
template <int BM, int BN, int STAGES_> struct wg_shape {
  static constexpr int THREADS = BM * 2; /* 128 per warpgroup, one warpgroup per 64 rows */
  static constexpr int A_BYTES = BM * ROW_BYTES, STAGE_BYTES = (BM + BN) * ROW_BYTES;
  static constexpr int STAGES = STAGES_;
  static constexpr int SMEM = STAGES * STAGE_BYTES + ATOM_BYTES;
};
/* The default stage count: four where two blocks per multiprocessor still fit (up to 100 KiB), else three. */
constexpr int default_stages(int bm, int bn) { return 4 * (bm + bn) * ROW_BYTES <= 100 * 1024 ? 4 : 3; }

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

/* 16-byte asynchronous copy global -> shared (address in the shared window); src_bytes 0 writes zeros. */
__device__ __forceinline__ void cp16s(uint32_t dst, const void *src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes)
               : "memory");
}

/* Matrix descriptor of a K-major tile with 128-byte swizzling starting at shared address addr (16-byte
 * aligned; its 1024-byte atom aligned, so base offset 0): leading byte offset 1 (unused), stride byte offset
 * 1024 (from one group of 8 rows to the next). */
__device__ __forceinline__ uint64_t desc_sw128(uint32_t addr) {
  return (uint64_t)((addr & 0x3FFFFu) >> 4) | ((uint64_t)1 << 16) | ((uint64_t)(ATOM_BYTES >> 4) << 32) |
         ((uint64_t)1 << 62);
}

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N> __device__ __forceinline__ void wg_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/* Generic-proxy writes to shared memory (the cp.async data) made visible to the async proxy (wgmma). */
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
/* Keeps the compiler from moving accesses of r across this point (around the asynchronous wgmma). */
__device__ __forceinline__ void reg_fence(float &r) { asm volatile("" : "+f"(r)::"memory"); }

/* d (the 32 accumulator floats of this thread) += A (64 x 16, descriptor da) * B (16 x 64, descriptor db). */
__device__ __forceinline__ void wgmma_n64(float *d, uint64_t da, uint64_t db) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {"
               "%0, %1, %2, %3, %4, %5, %6, %7, "
               "%8, %9, %10, %11, %12, %13, %14, %15, "
               "%16, %17, %18, %19, %20, %21, %22, %23, "
               "%24, %25, %26, %27, %28, %29, %30, %31}, "
               "%32, %33, 1, 1, 1, 0, 0;\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
                 "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
                 "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
                 "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
                 "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
               : "l"(da), "l"(db));
}

/* d (the 64 accumulator floats of this thread) += A (64 x 16, descriptor da) * B (16 x 128, descriptor db).
 */
__device__ __forceinline__ void wgmma_n128(float *d, uint64_t da, uint64_t db) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {"
               "%0, %1, %2, %3, %4, %5, %6, %7, "
               "%8, %9, %10, %11, %12, %13, %14, %15, "
               "%16, %17, %18, %19, %20, %21, %22, %23, "
               "%24, %25, %26, %27, %28, %29, %30, %31, "
               "%32, %33, %34, %35, %36, %37, %38, %39, "
               "%40, %41, %42, %43, %44, %45, %46, %47, "
               "%48, %49, %50, %51, %52, %53, %54, %55, "
               "%56, %57, %58, %59, %60, %61, %62, %63}, "
               "%64, %65, 1, 1, 1, 0, 0;\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
                 "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
                 "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
                 "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
                 "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]),
                 "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
                 "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),
                 "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
                 "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]),
                 "+f"(d[63])
               : "l"(da), "l"(db));
}

template <int BN> __device__ __forceinline__ void wgmma_bn(float *d, uint64_t da, uint64_t db) {
  if constexpr (BN == 64)
    wgmma_n64(d, da, db);
  else
    wgmma_n128(d, da, db);
}

#endif /* __CUDA_ARCH_FEAT_SM90_ALL */

using namespace ri_cu_mma;

/* One BM x BN output tile per block; blocks are numbered N tile fastest, so that the blocks sharing an A
 * tile run together and find it in L2. */
template <int BM, int BN, int NST, bool YF32>
__global__ void __launch_bounds__(wg_shape<BM, BN, NST>::THREADS)
    pwgemm_wg_kernel(const ri__cu_convgemm_args p, const __half *__restrict__ x, const __half *__restrict__ w,
                     const float *__restrict__ bias, const __half *__restrict__ res,
                     typename std::conditional<YF32, float, __half>::type *__restrict__ y) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  using S = wg_shape<BM, BN, NST>;
  constexpr int THREADS = S::THREADS, STAGES = S::STAGES, NACC = BN / 2, NI = BN / 8;
  constexpr int RPP = THREADS / 8; /* rows that one pass of the block loads, 8 chunks of 16 bytes each */
  constexpr int A_IT = BM / RPP, B_IT = BN / RPP;
  static_assert(BM % RPP == 0 && BN % RPP == 0 && RPP % 8 == 0, "load passes");
  static_assert(STAGES >= 3, "one buffer being read, one wgmma group in flight, one loading");
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw = smem_u32(smem_raw);
  const uint32_t sbase = (raw + (ATOM_BYTES - 1)) & ~(uint32_t)(ATOM_BYTES - 1);
  unsigned char *const smem = smem_raw + (sbase - raw);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wg = warp >> 2, wq = warp & 3; /* warpgroup, and warp within it */
  const int n_tiles = (p.m_out + BN - 1) / BN;
  const int m0 = (int)(blockIdx.x / n_tiles) * BM, n0 = (int)(blockIdx.x % n_tiles) * BN;
  const int M = p.n * p.oh * p.ow, K = p.k;

  /* This thread loads 16-byte chunk ck of rows r0, r0 + RPP, ... of both tiles. RPP is a multiple of 8, so
   * all these rows have the same r % 8 and the chunk the same swizzled place in them. */
  const int ck = tid & 7, r0 = tid >> 3;
  const uint32_t sw = (uint32_t)(r0 * ROW_BYTES + ((ck ^ (r0 & 7)) << 4));
  const __half *a_src[A_IT];
  bool a_ok[A_IT];
#pragma unroll
  for (int i = 0; i < A_IT; i++) {
    int m = m0 + r0 + i * RPP;
    a_ok[i] = m < M;
    a_src[i] = x + (int64_t)(a_ok[i] ? m : 0) * K + ck * 8;
  }
  const __half *b_src[B_IT];
  bool b_ok[B_IT];
#pragma unroll
  for (int i = 0; i < B_IT; i++) {
    int n = n0 + r0 + i * RPP;
    b_ok[i] = n < p.m_out;
    b_src[i] = w + (int64_t)(b_ok[i] ? n : 0) * p.ldw + ck * 8;
  }
  /* K step kt into buffer `stage`: zeros for rows past M / N and for chunks past K (X) or ldw (W; the
   * weights are zero from K to ldw, and nothing is known beyond ldw). */
  auto load_step = [&](int stage, int kt) {
    const int k = kt * WG_BK + ck * 8;
    const uint32_t a_dst = sbase + (uint32_t)(stage * S::STAGE_BYTES) + sw, b_dst = a_dst + S::A_BYTES;
    const bool ka = k < K, kb = k < p.ldw;
#pragma unroll
    for (int i = 0; i < A_IT; i++) {
      const bool ok = a_ok[i] && ka;
      cp16s(a_dst + i * RPP * ROW_BYTES, ok ? a_src[i] + kt * WG_BK : x, ok ? 16 : 0);
    }
#pragma unroll
    for (int i = 0; i < B_IT; i++) {
      const bool ok = b_ok[i] && kb;
      cp16s(b_dst + i * RPP * ROW_BYTES, ok ? b_src[i] + kt * WG_BK : w, ok ? 16 : 0);
    }
  };

  float acc[NACC];
#pragma unroll
  for (int i = 0; i < NACC; i++)
    acc[i] = 0.f;

  const int ktiles = (p.ldw + WG_BK - 1) / WG_BK;
#pragma unroll
  for (int s = 0; s < STAGES - 2; s++) {
    if (s < ktiles) load_step(s, s);
    cp_commit();
  }
  const uint32_t a_wg = sbase + (uint32_t)(wg * 64 * ROW_BYTES); /* this warpgroup's 64 rows of A */
  for (int kt = 0; kt < ktiles; kt++) {
    /* Step kt's data: this thread's copies are complete (groups committed so far: kt + STAGES - 2), made
     * visible to the async proxy, then everyone's, at the barrier. The barrier also means every warpgroup has
     * waited for the wgmma of step kt - 2, whose buffer the loads below refill. */
    cp_wait<STAGES - 3>();
    fence_proxy_async();
    __syncthreads();
    const int nk = kt + STAGES - 2;
    if (nk < ktiles) load_step(nk % STAGES, nk);
    cp_commit();
    const uint32_t st = (uint32_t)((kt % STAGES) * S::STAGE_BYTES);
    const uint32_t a_st = a_wg + st, b_st = sbase + st + S::A_BYTES;
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < WG_BK / 16; kk++) /* 16 halves = 32 bytes further along each row */
      wgmma_bn<BN>(acc, desc_sw128(a_st + kk * 32), desc_sw128(b_st + kk * 32));
    wg_commit();
    wg_wait<1>(); /* step kt - 1's wgmma are complete */
  }
  wg_wait<0>();
#pragma unroll
  for (int i = 0; i < NACC; i++)
    reg_fence(acc[i]);
  cp_wait<0>();
  __syncthreads(); /* every warpgroup is done with the buffers: the epilogue stages its tile over them */

  /* Phase 1, in registers: warp wq of warpgroup wg holds rows rw + g and rw + g + 8 of the tile (g = lane /
   * 4), columns 8j + 2t and 8j + 2t + 1 of each 8-column block j (t = lane % 4) in acc[4j .. 4j + 3]. Bias,
   * residual and activation in float (as k_convgemm.cu: (sum + bias) + residual, then the activation), one
   * rounding to half, then stmatrix writes the half tile to shared memory. */
  constexpr int CLD = BN + 8; /* halves per staged row: 16-byte aligned, conflict-free for stmatrix */
  static_assert(BM * CLD * 2 <= STAGES * S::STAGE_BYTES, "staging fits");
  auto Cs = reinterpret_cast<__half(*)[CLD]>(smem);
  const int g = lane >> 2, t4 = lane & 3;
  const int rw = wg * 64 + wq * 16; /* this warp's first row in the tile */
  const bool clampf = p.act == RI_CU_ACT_RELU || p.act == RI_CU_ACT_CLIP;
  const float lo = p.act == RI_CU_ACT_RELU ? 0.f : p.act_a;
  const float hi = p.act == RI_CU_ACT_RELU ? INFINITY : p.act_b;
  unsigned word[2][NI];
#pragma unroll
  for (int j = 0; j < NI; j++) {
    const int n = n0 + j * 8 + t4 * 2;
    const float b0 = bias && n < p.m_out ? bias[n] : 0.f;
    const float b1 = bias && n + 1 < p.m_out ? bias[n + 1] : 0.f;
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int m = m0 + rw + g + h * 8;
      float v0 = acc[4 * j + 2 * h] + b0, v1 = acc[4 * j + 2 * h + 1] + b1;
      if (res && m < M) ri_cu_epi_res(res + (int64_t)m * p.ldr, n, p.m_out, p.ldr, v0, v1);
      if (clampf) {
        v0 = fminf(fmaxf(v0, lo), hi);
        v1 = fminf(fmaxf(v1, lo), hi);
      } else if (p.act != RI_CU_ACT_NONE) {
        v0 = ri_act(p.act, p.act_a, p.act_b, v0);
        v1 = ri_act(p.act, p.act_a, p.act_b, v1);
      }
      __half2 hv = __floats2half2_rn(v0, v1);
      word[h][j] = *(unsigned *)&hv;
    }
  }
  /* Matrix q (q < 2 * NI) of this warp's 16 rows is rows h * 8 .. h * 8 + 7 (h = q / NI) of 8-column block
   * j = q % NI; stmatrix.x4 stores four of them, lanes 8k .. 8k + 7 giving the row addresses of the k-th. */
#pragma unroll
  for (int q0 = 0; q0 < 2 * NI; q0 += 4) {
    const int q = q0 + (lane >> 3), h = q / NI, j = q % NI;
    const __half *row = &Cs[rw + h * 8 + (lane & 7)][j * 8];
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(smem_u32(row)),
                 "r"(word[(q0 + 0) / NI][(q0 + 0) % NI]), "r"(word[(q0 + 1) / NI][(q0 + 1) % NI]),
                 "r"(word[(q0 + 2) / NI][(q0 + 2) % NI]), "r"(word[(q0 + 3) / NI][(q0 + 3) % NI]));
  }
  __syncthreads();

  /* Phase 2: the staged tile from shared memory to the output (cu_gemm_epi.cuh). */
  ri_cu_epi_flush<BM, BN, CLD, THREADS>(p, Cs, y, m0, n0, M, tid);
#else
  (void)p, (void)x, (void)w, (void)bias, (void)res, (void)y;
  (void)WG_BK, (void)wg_shape<BM, BN, NST>::A_BYTES; /* used only by the sm_90a kernel */
#if defined(__CUDA_ARCH__)
  __trap();                                          /* built without sm_90a: must never run (the launcher refuses) */
#endif
#endif
}

/* Whether this kernel instance can run on device dev, checked once per device: an sm_90 binary of it
 * (cudaFuncGetAttributes fails where the fat binary has none for the device) and the dynamic shared memory
 * it needs. A failed query's error is cleared so that the next launch check does not see it. */
constexpr int MAX_DEVICES = 64;
template <int BM, int BN, int NST, bool YF32> cudaError_t prepare(int dev) {
  static std::atomic<int> state[MAX_DEVICES]; /* 0 not checked, 1 runs, 2 does not */
  const bool cached = dev >= 0 && dev < MAX_DEVICES;
  const int st = cached ? state[dev].load(std::memory_order_relaxed) : 0;
  if (st == 1) return cudaSuccess;
  if (st == 2) return cudaErrorNotSupported;
  auto k = pwgemm_wg_kernel<BM, BN, NST, YF32>;
  cudaFuncAttributes fa;
  cudaError_t e = cudaFuncGetAttributes(&fa, k);
  if (e != cudaSuccess || fa.binaryVersion != 90) {
    if (e != cudaSuccess) cudaGetLastError();
    if (cached) state[dev].store(2, std::memory_order_relaxed);
    return cudaErrorNotSupported;
  }
  e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, wg_shape<BM, BN, NST>::SMEM);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return e;
  }
  if (cached) state[dev].store(1, std::memory_order_relaxed);
  return cudaSuccess;
}

template <int BM, int BN, int NST, bool YF32>
cudaError_t launch_k(cudaStream_t s, const ri__cu_convgemm_args *p, int dev, const void *x, const void *w,
                     const float *b, const void *r, void *y) {
  cudaError_t e = prepare<BM, BN, NST, YF32>(dev);
  if (e != cudaSuccess) return e;
  using S = wg_shape<BM, BN, NST>;
  int64_t M = (int64_t)p->n * p->oh * p->ow;
  int64_t tiles = (M + BM - 1) / BM * ((p->m_out + BN - 1) / BN);
  using OutT = typename std::conditional<YF32, float, __half>::type;
  ri_cu_launch(pwgemm_wg_kernel<BM, BN, NST, YF32>, dim3((unsigned)tiles), dim3(S::THREADS), (size_t)S::SMEM,
               s, *p, (const __half *)x, (const __half *)w, b, (const __half *)r, (OutT *)y);
  return ri_cu_launched();
}

template <int BM, int BN>
cudaError_t launch_tile(cudaStream_t s, const ri__cu_convgemm_args *p, int stages, int dev, const void *x,
                        const void *w, const float *b, const void *r, void *y) {
  if (stages == 0) stages = default_stages(BM, BN);
  if (stages == 3)
    return p->y_f32 ? launch_k<BM, BN, 3, true>(s, p, dev, x, w, b, r, y)
                    : launch_k<BM, BN, 3, false>(s, p, dev, x, w, b, r, y);
  return p->y_f32 ? launch_k<BM, BN, 4, true>(s, p, dev, x, w, b, r, y)
                  : launch_k<BM, BN, 4, false>(s, p, dev, x, w, b, r, y);
}

} // namespace

extern "C" int ri__cu_pwgemm_wg_supported(const ri__cu_convgemm_args *p) {
  return ri__cu_convgemm_supported(p) && p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 &&
         p->pad_t == 0 && p->pad_l == 0 && p->ih == p->oh && p->iw == p->ow && p->c == p->k &&
         p->k % 8 == 0 && p->ldw % 8 == 0 && p->ldw >= p->k;
}

extern "C" cudaError_t ri__cu_pwgemm_wg_tile(cudaStream_t s, const ri__cu_convgemm_args *p, int bm, int bn,
                                             int stages, const void *x, const void *w, const float *bias,
                                             const void *res, void *y) {
  if (!ri__cu_pwgemm_wg_supported(p) || (bm != 0 && bm != 64 && bm != 128) || (bn != 64 && bn != 128) ||
      (stages != 0 && stages != 3 && stages != 4) || p->rows_per_img < 1 || p->ldy < p->m_out ||
      (res && p->ldr < p->m_out) || (uintptr_t)x % 16 || (uintptr_t)w % 16 || (uintptr_t)y % 16 ||
      (uintptr_t)bias % 16 || (uintptr_t)res % 16)
    return cudaErrorInvalidValue;
  int64_t M = (int64_t)p->n * p->oh * p->ow;
  if (M <= 0) return cudaSuccess;
  if (!WG_BUILT) return cudaErrorNotSupported;
  if (bm == 0) /* 128 rows when that still gives 132 multiprocessors two tiles each (as k_convgemm.cu) */
    bm = (M + 127) / 128 * ((p->m_out + bn - 1) / bn) >= 264 ? 128 : 64;
  int dev = 0, major = 0, minor = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
  if (e != cudaSuccess) return e;
  if (major != 9 || minor != 0) return cudaErrorNotSupported;
  if (bm == 128)
    return bn == 128 ? launch_tile<128, 128>(s, p, stages, dev, x, w, bias, res, y)
                     : launch_tile<128, 64>(s, p, stages, dev, x, w, bias, res, y);
  return bn == 128 ? launch_tile<64, 128>(s, p, stages, dev, x, w, bias, res, y)
                   : launch_tile<64, 64>(s, p, stages, dev, x, w, bias, res, y);
}

namespace {
/* Every instance the launcher may run, prepared on device dev (1 when all of them run there). */
template <int BM, int BN> bool prepare_tile(int dev) {
  return prepare<BM, BN, 3, false>(dev) == cudaSuccess && prepare<BM, BN, 3, true>(dev) == cudaSuccess &&
         prepare<BM, BN, 4, false>(dev) == cudaSuccess && prepare<BM, BN, 4, true>(dev) == cudaSuccess;
}
} // namespace

extern "C" int ri__cu_pwgemm_wg_available(void) {
  if (!WG_BUILT) return 0;
  int dev = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  if (major != 9 || minor != 0) return 0;
  return prepare_tile<128, 64>(dev) && prepare_tile<64, 64>(dev) && prepare_tile<128, 128>(dev) &&
         prepare_tile<64, 128>(dev);
}

extern "C" cudaError_t ri__cu_pwgemm_wg(cudaStream_t s, const ri__cu_convgemm_args *p, int bn, const void *x,
                                        const void *w, const float *bias, const void *res, void *y) {
  return ri__cu_pwgemm_wg_tile(s, p, 0, bn, 0, x, w, bias, res, y);
}
