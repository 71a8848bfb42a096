/* Depthwise 3x3 variants RI__CU_DW_SMEM_FIRST .. RI__CU_DW_VARIANTS - 1 of k_dwconv.cu (NHWC half, dilation
 * 1, stride 1 or 2, channel count a multiple of 16): the input tile of a block in shared memory; from
 * RI__CU_DW_PIPE_FIRST on, persistent blocks that copy the next tiles while computing one.
 *
 * Why: variant 0 (dw3_h8_kernel) is issue-bound at large batch on the H200 (Nsight Compute: issue slots 73 %
 * busy, DRAM 34-37 % of peak). Its 4 pixels x 8 channels per thread cost ~31 instructions per output where
 * 9 FFMA are the floor: every input vector of its three rows is converted half -> float for 4 outputs only,
 * the 9 weight vectors are converted again for every 32 outputs, and ~150 instructions of index math open
 * each thread's work. The strip variants (dw3_strip_kernel) keep a whole row of 8-channel vectors in
 * registers: 128 registers, 25 % occupancy, latency-bound.
 *
 * What: a block of 128 threads takes an output tile of TX = 4 RX columns x TY = 4 RY rows x 16 channels of
 * one image. It copies the input tile it needs ((TY - 1) S + 3 rows x (TX - 1) S + 3 columns x 16 channels,
 * zeros outside the image) into shared memory with 16-byte cp.async, loads and converts its weights and
 * bias while the copies fly, and waits once. A thread then computes RX x RY output pixels of one channel
 * pair (half2): its 9 weights are 18 floats converted once; it walks the (RY - 1) S + 3 input rows of its
 * block top to bottom, converting each of the (RX - 1) S + 3 half2 of a row once and feeding every output
 * row of its block that uses that input row. At RX = RY = 4, stride 1, that is 36 shared loads and 72
 * conversions (+ 18 of weights) for 288 FFMA (32 outputs), where variant 0 converts 216 times (144 inputs,
 * 72 weights) for its 288 FFMA; the index math is per block row (copy) and per thread, amortized over 32
 * outputs. The copy: warp v takes tile rows v, v + 4, ..., lane l the 16-byte chunks l, l + 32, ... of a
 * row, consecutive lanes along the row (a pixel's two chunks, then the next pixel's).
 *
 * Layout: a pixel is 32 bytes (16 channels) in shared memory; a warp's 32 threads are 8 channel pairs x 4
 * column blocks of one row of threads, so its loads of one step hit columns RX S apart. One padding pixel
 * after every G = RX S columns spreads those 4 threads over 4 different groups of 8 banks (G + 1 odd, so
 * (G + 1) x 8 words mod 32 takes 4 distinct values): no bank conflicts. Warps take different rows.
 *
 * Bit-identity with variant 0 (dw3_h8_kernel): every output is the float bias, then the 9 taps in the order
 * ky, kx, each one __fmaf_rn(x, w, acc) with x and w converted from half to float by __half22float2; taps
 * outside the input read the zeros that cp.async wrote there (+0.0, as the zero vectors of variant 0), so
 * they are added as fmaf(+0, w, acc) exactly like variant 0 does; then the same activation code and
 * __floats2half2_rn. So each variant gives the same bits at every batch (tests/gpu/test_cuda_conv.c
 * compares them with variant 0 bit for bit), and the tuner may choose per batch bucket.
 *
 * Persistent variants (dw3_pipe_kernel). Why: on the H200 at batch 256 the one-tile kernel took the big
 * stride-1 layers only from 334 to 315 us (expanded_conv, 32 x 150 x 150; traffic floor 154 us) and 373 to
 * 355 us (expanded_conv_2; floor 173): a block copies, waits with nothing to do, computes, and exits, so an
 * SM's copies and arithmetic overlap only across its blocks, and no block has more than its one tile in
 * flight. What: the same tiles, copy and arithmetic (dws_copy, dws_compute), but a grid of at most the
 * blocks resident at once (occupancy x SMs, a multiple of the channel groups); block i keeps channel group
 * i % groups (weights converted once per block, not per tile) and walks spatial tiles i / groups + k
 * (grid / groups), its position moved by the step's digits with carries (dws_advance: no division per
 * tile). NST buffers: before computing tile k it issues the copy of tile k + NST - 1 and waits for
 * tile k's group only (cp.async.wait_group NST - 1), so NST - 1 tiles stream in per block while it computes;
 * a barrier after each tile frees its buffer for the copy issued at the next step. The blocks resident at
 * once take consecutive spatial tiles, so neighbours' halo rows and columns come from L2. Stride 1, 16 x 16
 * tiles: 3 buffers of 13.2 KB, 86 registers (launch bounds of 5 blocks: 107 without), 5 blocks per SM
 * (registers and shared memory both allow 5), 2 x 10.4 KB of copies in flight per block; 8 x 8 tiles: 3
 * buffers of 4.8 KB, 62 registers, 8 blocks. Stride 2, 16 x 8: 2 buffers of 20.7 KB, 94 registers, 5
 * blocks; 8 x 8: 3 of 12.0 KB, 69 registers, 6. All static
 * shared memory (at most 48 KB a block); the carveout hint and the occupancy query once per kernel and
 * device. Bit-identity as above: the same dws_compute.
 *
 * Measured on the H200 (docs/decisions.md, bench/results/dwsm-2026-11-27.txt, dw2-2026-11-27.txt): the
 * one-tile variants win the small buckets and the big stride-1 layers at batch 256 (still about 2x from
 * their traffic bound); the persistent ones are slower there (expanded_conv_2: 392 against 350 us) and win
 * only a few mid-size nodes.
 *
 * Instruction count. Nsight Compute found the one-tile 4 x 4 kernel issue-bound (83 % of issue slots, ~45
 * warp instructions x 32 per output; bench/results/ncu-dw-pw-2026-11-27.txt). Its SASS (sm_90, CUDA 13.0)
 * walked along the path of an interior tile with clip (Relu6): 1295 instructions per warp (a thread's 32
 * outputs), 40 per output, of which 288 FFMA, 90 conversions and 36 shared loads; the rest was the clip
 * compiled to a branch per value (~10 instructions each, ~330 per thread), the copy loop (~42 per row: a
 * select of the source pointer and 64-bit index math per chunk) and the stores (~10 each). Now: clip as two
 * selects (4 per value), the copy unrolled with a lane's column terms once, clamped rows and columns and
 * cp.async's ignore-src for the zeros (4 per chunk, ~14 per row), pointer steps for the stores: 903
 * instructions per warp, 28 per output (stride 2, 4 x 2: 61 -> 42; the 2 x 2 variant: 62 -> 48 at stride
 * 1, 81 -> 57 at stride 2). The persistent kernels share these functions. Measured on the H200
 * (bench/results/gpu-2026-11-27-s8b.txt): expanded_conv_2's depthwise node at batch 256 350 -> 317 us. */
#include <atomic>

#include "backend/cuda/cu_common.cuh"
#include "backend/cuda/cu_mma.cuh"

using ri_cu_mma::cp16;
using ri_cu_mma::cp_commit;
using ri_cu_mma::cp_wait;

#define DWS_THREADS     128 /* 8 channel pairs x 4 column blocks x 4 warps (rows of thread blocks) */
#define DWS_MAX_DEVICES 64  /* per-device occupancy kept (more devices: queried every launch) */

/* The geometry of a block's tile at stride S with RX x RY output pixels per thread. */
template <int S, int RX, int RY> struct dws_geo {
  static constexpr int TX = 4 * RX, TY = 4 * RY;                     /* output tile */
  static constexpr int IC = (TX - 1) * S + 3, IR = (TY - 1) * S + 3; /* input tile */
  static constexpr int G = RX * S;                                   /* columns between padding pixels */
  static constexpr int ICP = IC + (IC + G - 1) / G;                  /* a padded row, pixels */
  static constexpr int WIN = (RX - 1) * S + 3, ROWS = (RY - 1) * S + 3;
  static_assert(G % 2 == 0, "G + 1 must be odd for conflict-free loads");
};

/* The activation of a row of n channel pairs, its code switched on once per row as dw3_h8_kernel does per
 * thread. The same values as ri_act (cu_common.cuh): clip is x < a ? a : (x > b ? b : x), written as two
 * selects of the same comparisons (NaN and -0 pass through as there), since the nested form compiled to a
 * branch per value (~10 instructions each, 2/3 of the epilogue). */
__device__ __forceinline__ float dws_clip(float v, float a, float b) {
  const float t = v > b ? b : v;
  return v < a ? a : t;
}

template <int NP> __device__ __forceinline__ void dws_act(int act, float a, float b, float2 *v) {
  if (act == RI_CU_ACT_CLIP) {
#pragma unroll
    for (int q = 0; q < NP; q++) {
      v[q].x = dws_clip(v[q].x, a, b);
      v[q].y = dws_clip(v[q].y, a, b);
    }
  } else if (act == RI_CU_ACT_RELU) {
#pragma unroll
    for (int q = 0; q < NP; q++) {
      v[q].x = v[q].x > 0.f ? v[q].x : 0.f;
      v[q].y = v[q].y > 0.f ? v[q].y : 0.f;
    }
  } else if (act != RI_CU_ACT_NONE) {
#pragma unroll
    for (int q = 0; q < NP; q++) {
      v[q].x = ri_act(act, a, b, v[q].x);
      v[q].y = ri_act(act, a, b, v[q].y);
    }
  }
}

/* A 16-byte cp.async that writes zeros instead where `in` is false (its ignore-src operand). */
__device__ __forceinline__ void dws_cp16(unsigned dst, const void *src, bool in) {
  asm volatile(
      "{\n .reg .pred q;\n setp.eq.u32 q, %2, 0;\n cp.async.cg.shared.global [%0], [%1], 16, q;\n}\n" ::"r"(
          dst),
      "l"(src), "r"((unsigned)in));
}

/* Copies the input tile of output tile (tx, ty) of image b, channel group cg, into `tile` (cp.async, not
 * committed): warp v copies rows v, v + 4, ...; lane l the 16-byte chunks l, l + 32, ... of a row (2 per
 * pixel). A lane's column terms (global pointer, shared address, column in the image) are computed once;
 * a row costs its clamped row offset, and a chunk a 64-bit add, a predicate and the copy. Rows and
 * columns outside the image are clamped to it (a valid address) and copied as zeros (ignore-src). */
template <int S, int RX, int RY>
__device__ __forceinline__ void dws_copy(uint4 *tile, const ri__cu_dwconv_args &p, const __half *x,
                                         int32_t cg, int32_t tx, int32_t ty, int32_t b) {
  using Gm = dws_geo<S, RX, RY>;
  constexpr int CW = Gm::IC * 2, KI = (CW + 31) / 32,
                NR = (Gm::IR + DWS_THREADS / 32 - 1) / (DWS_THREADS / 32);
  const int32_t c = (int32_t)p.c, ih = (int32_t)p.ih, iw = (int32_t)p.iw;
  const int lane = threadIdx.x & 31, v = threadIdx.x >> 5;
  const int32_t ix0 = tx * Gm::TX * S - p.pad_l, iy0 = ty * Gm::TY * S - p.pad_t + v;
  static_assert(16 % Gm::G == 0, "chunks 32 apart: a constant shared-memory distance");
  constexpr unsigned SD = (16 + 16 / Gm::G) * 32; /* bytes between chunks kc and kc + 32 in shared memory */
  unsigned xg[KI];                                /* bytes from a row's first pixel */
  const unsigned sa =
      ri_cu_mma::smem_u32(&tile[(v * Gm::ICP + (lane >> 1) + (lane >> 1) / Gm::G) * 2 + (lane & 1)]);
  bool cok[KI];
#pragma unroll
  for (int i = 0; i < KI; i++) {
    const int kc = lane + 32 * i, cc = kc >> 1, h = kc & 1;
    const int32_t ix = ix0 + cc;
    cok[i] = (unsigned)ix < (unsigned)iw && kc < CW;
    xg[i] = (unsigned)(min(max(ix, 0), iw - 1) * c + h * 8 + cg * 16) * 2u;
  }
  const int32_t rs = iw * c, r0 = b * ih; /* within int32 (k_dwconv.cu vec_ok) */
#pragma unroll
  for (int k = 0; k < NR; k++) {
    const int rr = v + k * (DWS_THREADS / 32);
    if (Gm::IR % (DWS_THREADS / 32) != 0 && k == NR - 1 && rr >= Gm::IR) break; /* warp-uniform */
    const int32_t iy = iy0 + k * (DWS_THREADS / 32);
    const bool rok = (unsigned)iy < (unsigned)ih;
    const char *xr = (const char *)(x + (r0 + min(max(iy, 0), ih - 1)) * rs);
#pragma unroll
    for (int i = 0; i < KI; i++) {
      if (i == KI - 1 && CW % 32 != 0 && lane + 32 * i >= CW) continue; /* past the row */
      dws_cp16(sa + i * SD + k * (DWS_THREADS / 32) * Gm::ICP * 32, xr + xg[i], rok && cok[i]);
    }
  }
}

/* The weights (converted once) and the bias of channel pair ch2. */
__device__ __forceinline__ void dws_weights(const ri__cu_dwconv_args &p, const __half2 *w, const float *bias,
                                            int32_t ch2, float2 *wf, float2 &bv) {
  const int32_t c2 = (int32_t)p.c / 2;
#pragma unroll
  for (int t = 0; t < 9; t++)
    wf[t] = __half22float2(w[t * c2 + ch2]);
  bv = bias ? make_float2(bias[2 * ch2], bias[2 * ch2 + 1]) : make_float2(0.f, 0.f);
}

/* RI_CUDA_DWS_OLD=1 (a measurement knob, for the same-run A/B of the change above; to be removed once
 * measured): the one-tile kernels with the previous copy, activation and stores (main 0522395), the same
 * tiles and arithmetic. */
template <int NP> __device__ __forceinline__ void dws0_act(const ri__cu_dwconv_args &p, float2 *v) {
  if (p.act == RI_CU_ACT_CLIP) {
#pragma unroll
    for (int q = 0; q < NP; q++) {
      v[q].x = v[q].x < p.act_a ? p.act_a : (v[q].x > p.act_b ? p.act_b : v[q].x);
      v[q].y = v[q].y < p.act_a ? p.act_a : (v[q].y > p.act_b ? p.act_b : v[q].y);
    }
  } else if (p.act == RI_CU_ACT_RELU) {
#pragma unroll
    for (int q = 0; q < NP; q++) {
      v[q].x = v[q].x > 0.f ? v[q].x : 0.f;
      v[q].y = v[q].y > 0.f ? v[q].y : 0.f;
    }
  } else if (p.act != RI_CU_ACT_NONE) {
#pragma unroll
    for (int q = 0; q < NP; q++) {
      v[q].x = ri_act(p.act, p.act_a, p.act_b, v[q].x);
      v[q].y = ri_act(p.act, p.act_a, p.act_b, v[q].y);
    }
  }
}

/* The thread's RX x RY output pixels of channel pair ch2 in output tile (tx, ty) of image b, from the input
 * tile in `tile` (complete and visible). Column j of the thread's window is tile column sx G + j, padded
 * sx (G + 1) + j + j / G. OLD: the previous activation and stores (RI_CUDA_DWS_OLD, one-tile kernels),
 * the same arithmetic. */
template <int S, int RX, int RY, bool OLD>
__device__ __forceinline__ void dws_compute(const uint4 *tile, const ri__cu_dwconv_args &p, const float2 *wf,
                                            float2 bv, __half2 *y, int32_t ch2, int32_t tx, int32_t ty,
                                            int32_t b) {
  using Gm = dws_geo<S, RX, RY>;
  const int32_t c2 = (int32_t)p.c / 2, oh = (int32_t)p.oh, ow = (int32_t)p.ow;
  const int cp = threadIdx.x & 7, sx = (threadIdx.x >> 3) & 3, sy = threadIdx.x >> 5;
  const int32_t ox0 = tx * Gm::TX + sx * RX, oy0 = ty * Gm::TY + sy * RY;
  if (ox0 >= ow || oy0 >= oh) return;
  float2 acc[RY][RX];
#pragma unroll
  for (int o = 0; o < RY; o++)
#pragma unroll
    for (int q = 0; q < RX; q++)
      acc[o][q] = bv;
  const __half2 *base = (const __half2 *)tile + (sy * RY * S * Gm::ICP + sx * (Gm::G + 1)) * 8 + cp;
  __half2 *yb = OLD ? y + (b * oh + oy0) * ow * c2 + ch2 : y + ((b * oh + oy0) * ow + ox0) * c2 + ch2;
  const int nq = ow - ox0, nr = oh - oy0; /* output columns and rows of the thread inside the image */
  const int32_t ys = ow * c2;
  const int act = p.act;
  const float act_a = p.act_a, act_b = p.act_b;
#pragma unroll
  for (int rr = 0; rr < Gm::ROWS; rr++) {
    float2 xf[Gm::WIN];
#pragma unroll
    for (int j = 0; j < Gm::WIN; j++)
      xf[j] = __half22float2(base[(rr * Gm::ICP + j + j / Gm::G) * 8]);
#pragma unroll
    for (int o = 0; o < RY; o++) {
      const int ky = rr - o * S;
      if (ky < 0 || ky > 2) continue;
#pragma unroll
      for (int q = 0; q < RX; q++)
#pragma unroll
        for (int kx = 0; kx < 3; kx++) {
          const float2 xv = xf[q * S + kx], wv = wf[ky * 3 + kx];
          acc[o][q].x = __fmaf_rn(xv.x, wv.x, acc[o][q].x);
          acc[o][q].y = __fmaf_rn(xv.y, wv.y, acc[o][q].y);
        }
      if (OLD && ky == 2 && oy0 + o < oh) { /* RI_CUDA_DWS_OLD: the previous activation and stores */
        __half2 *yr = yb + o * ow * c2;
        dws0_act<RX>(p, acc[o]);
#pragma unroll
        for (int q = 0; q < RX; q++) {
          if (ox0 + q >= ow) break;
          yr[(ox0 + q) * c2] = __floats2half2_rn(acc[o][q].x, acc[o][q].y);
        }
      } else if (!OLD && ky == 2 && o < nr) {
        dws_act<RX>(act, act_a, act_b, acc[o]);
        __half2 *yq = yb + o * ys; /* pointer steps: a 64-bit add a store */
#pragma unroll
        for (int q = 0; q < RX; q++, yq += c2)
          if (q < nq) *yq = __floats2half2_rn(acc[o][q].x, acc[o][q].y);
      }
    }
  }
}

template <int S, int RX, int RY>
__device__ __forceinline__ void dws0_copy(uint4 *tile, const ri__cu_dwconv_args &p, const __half *x,
                                          int32_t cg, int32_t tx, int32_t ty, int32_t b) {
  using Gm = dws_geo<S, RX, RY>;
  constexpr int CW = Gm::IC * 2, KI = (CW + 31) / 32;
  const int32_t c = (int32_t)p.c, ih = (int32_t)p.ih, iw = (int32_t)p.iw;
  const int lane = threadIdx.x & 31;
  const int32_t ix0 = tx * Gm::TX * S - p.pad_l, iy0 = ty * Gm::TY * S - p.pad_t;
  int32_t goff[KI];
  int soff[KI];
  bool cok[KI];
#pragma unroll
  for (int i = 0; i < KI; i++) {
    const int kc = lane + 32 * i, cc = kc >> 1, h = kc & 1;
    const int32_t ix = ix0 + cc;
    cok[i] = ix >= 0 && ix < iw;
    goff[i] = ix * c + h * 8 + cg * 16;
    soff[i] = (cc + cc / Gm::G) * 2 + h;
  }
  for (int rr = threadIdx.x >> 5; rr < Gm::IR; rr += DWS_THREADS / 32) {
    const int32_t iy = iy0 + rr;
    const bool rok = iy >= 0 && iy < ih;
    const int32_t roff = rok ? (b * ih + iy) * iw * c : 0;
#pragma unroll
    for (int i = 0; i < KI; i++) {
      if (i == KI - 1 && lane + 32 * i >= CW) continue;
      const bool in = rok && cok[i];
      cp16(&tile[rr * Gm::ICP * 2 + soff[i]], in ? x + roff + goff[i] : x, in ? 16 : 0);
    }
  }
}

/* Variants RI__CU_DW_SMEM_FIRST and the next: one tile per block. Grid: x = channel group (of 16) + groups x
 * tile column, y = tile row, z = image. */
template <int S, int RX, int RY, bool OLD>
__global__ void __launch_bounds__(DWS_THREADS, 7)
    dw3_smem_kernel(ri__cu_dwconv_args p, const __half *x, const __half2 *w, const float *bias, __half2 *y) {
  using Gm = dws_geo<S, RX, RY>;
  __shared__ __align__(16) uint4 tile[Gm::IR * Gm::ICP * 2];
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  const int32_t cgn = (int32_t)p.c / 16;
  const int32_t cg = blockIdx.x % cgn, tx = blockIdx.x / cgn, ty = blockIdx.y, b = blockIdx.z;
  if (OLD)
    dws0_copy<S, RX, RY>(tile, p, x, cg, tx, ty, b);
  else
    dws_copy<S, RX, RY>(tile, p, x, cg, tx, ty, b);
  cp_commit();
  /* weights and bias while the copies fly */
  const int32_t ch2 = cg * 8 + (threadIdx.x & 7);
  float2 wf[9], bv;
  dws_weights(p, w, bias, ch2, wf, bv);
  cp_wait<0>();
  __syncthreads();
  dws_compute<S, RX, RY, OLD>(tile, p, wf, bv, y, ch2, tx, ty, b);
}

/* A spatial tile's column, row and image (index s = (b nty + ty) ntx + tx). dws_advance adds a step given
 * as such digits (each below its base, so one carry at most per digit): no division per tile. */
struct dws_pos {
  int32_t tx, ty, b;
};

__device__ __forceinline__ dws_pos dws_decode(int32_t s, int32_t ntx, int32_t nty) {
  const int32_t r = s / ntx;
  return {s - r * ntx, r % nty, r / nty};
}

__device__ __forceinline__ void dws_advance(dws_pos &q, const dws_pos &d, int32_t ntx, int32_t nty) {
  q.tx += d.tx, q.ty += d.ty, q.b += d.b;
  if (q.tx >= ntx) q.tx -= ntx, q.ty++;
  if (q.ty >= nty) q.ty -= nty, q.b++;
}

/* Variants RI__CU_DW_PIPE_FIRST and the next: persistent blocks, NST tile buffers. Block i takes channel
 * group i % groups (its weights converted once) and the spatial tiles i / groups + k (grid / groups), k = 0,
 * 1, ...: at step k the copy of tile k + NST - 1 is issued before tile k is computed, so NST - 1 tiles'
 * copies are in flight while the block computes (the one-tile kernel waits on its only copy with nothing to
 * do). The blocks resident at once take consecutive spatial tiles, so halo rows shared by neighbours are read
 * from L2. The grid: at most the blocks resident on the device (occupancy x SMs), a multiple of the groups.
 */
template <int S, int RX, int RY, int NST, int MINB>
__global__ void __launch_bounds__(DWS_THREADS, MINB)
    dw3_pipe_kernel(ri__cu_dwconv_args p, const __half *x, const __half2 *w, const float *bias, __half2 *y) {
  using Gm = dws_geo<S, RX, RY>;
  constexpr int TS = Gm::IR * Gm::ICP * 2; /* uint4 of one buffer */
  __shared__ __align__(16) uint4 tile[NST * TS];
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  const int32_t cgn = (int32_t)p.c / 16, cg = blockIdx.x % cgn, j0 = blockIdx.x / cgn, step = gridDim.x / cgn;
  const int32_t ntx = ((int32_t)p.ow + Gm::TX - 1) / Gm::TX, nty = ((int32_t)p.oh + Gm::TY - 1) / Gm::TY,
                ns = (int32_t)p.n * nty * ntx;
  /* the positions of tiles k (qc) and k + NST - 1 (qn), moved by the step's digits (d) */
  const dws_pos d = dws_decode(step, ntx, nty);
  dws_pos qc = dws_decode(j0, ntx, nty), qn = qc;
  /* prologue: tiles 0 .. NST - 2 in flight (an empty group past the last tile keeps the count uniform) */
#pragma unroll
  for (int k = 0; k < NST - 1; k++) {
    if (j0 + k * step < ns) dws_copy<S, RX, RY>(tile + k * TS, p, x, cg, qn.tx, qn.ty, qn.b);
    cp_commit();
    dws_advance(qn, d, ntx, nty);
  }
  const int32_t ch2 = cg * 8 + (threadIdx.x & 7);
  float2 wf[9], bv;
  dws_weights(p, w, bias, ch2, wf, bv);
  int cur = 0, nxt = NST - 1; /* buffers of tiles k and k + NST - 1 */
  for (int32_t s = j0; s < ns; s += step) {
    if (s + (NST - 1) * step < ns) dws_copy<S, RX, RY>(tile + nxt * TS, p, x, cg, qn.tx, qn.ty, qn.b);
    cp_commit();
    dws_advance(qn, d, ntx, nty);
    cp_wait<NST - 1>(); /* tile k's group complete (this thread's copies) */
    __syncthreads();    /* and every thread's */
    dws_compute<S, RX, RY, false>(tile + cur * TS, p, wf, bv, y, ch2, qc.tx, qc.ty, qc.b);
    dws_advance(qc, d, ntx, nty);
    __syncthreads(); /* buffer cur is refilled at the next step */
    cur = cur == NST - 1 ? 0 : cur + 1;
    nxt = nxt == NST - 1 ? 0 : nxt + 1;
  }
  cp_wait<0>(); /* no copy outlives the block */
}

template <int S, int RX, int RY>
static void launch_smem(cudaStream_t s, const ri__cu_dwconv_args *p, const void *x, const void *w,
                        const float *b, void *y) {
  using Gm = dws_geo<S, RX, RY>;
  const dim3 grid((unsigned)(((p->ow + Gm::TX - 1) / Gm::TX) * (p->c / 16)),
                  (unsigned)((p->oh + Gm::TY - 1) / Gm::TY), (unsigned)p->n);
  static std::atomic<int> old{-1};
  int o = old.load();
  if (o < 0) {
    const char *e = getenv("RI_CUDA_DWS_OLD");
    o = e && e[0] == '1';
    old.store(o);
  }
  ri_cu_launch(o ? dw3_smem_kernel<S, RX, RY, true> : dw3_smem_kernel<S, RX, RY, false>, grid, DWS_THREADS, 0,
               s, *p, (const __half *)x, (const __half2 *)w, b, (__half2 *)y);
}

template <int S, int RX, int RY, int NST, int MINB>
static void launch_pipe(cudaStream_t s, const ri__cu_dwconv_args *p, const void *x, const void *w,
                        const float *b, void *y) {
  using Gm = dws_geo<S, RX, RY>;
  auto k = dw3_pipe_kernel<S, RX, RY, NST, MINB>;
  /* blocks per SM of this instantiation per device, queried once (graph capture, after the tuner's and the
   * eager runs, makes no attribute or occupancy calls); a failed call's error is left for ri_cu_launched() */
  static std::atomic<int> occ_of[DWS_MAX_DEVICES];
  int dev = 0, sms = 0, occ = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
    return;
  const bool cached = dev >= 0 && dev < DWS_MAX_DEVICES;
  if (cached) occ = occ_of[dev].load();
  if (occ < 1) {
    /* the most shared memory per SM (the carveout is a hint; the occupancy below is what the grid assumes,
     * and more blocks than fit only queue) */
    if (cudaFuncSetAttribute(k, cudaFuncAttributePreferredSharedMemoryCarveout,
                             cudaSharedmemCarveoutMaxShared) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, k, DWS_THREADS, 0) != cudaSuccess)
      return;
    if (occ < 1) occ = 1;
    if (cached) occ_of[dev].store(occ);
  }
  const int64_t cgn = p->c / 16,
                ns = p->n * ((p->oh + Gm::TY - 1) / Gm::TY) * ((p->ow + Gm::TX - 1) / Gm::TX);
  int64_t m = (int64_t)sms * occ / cgn; /* spatial tiles per step */
  if (m < 1) m = 1;
  if (m > ns) m = ns;
  ri_cu_launch(k, dim3((unsigned)(m * cgn)), DWS_THREADS, 0, s, *p, (const __half *)x, (const __half2 *)w, b,
               (__half2 *)y);
}

extern "C" int ri__cu_dwconv_smem_ok(const ri__cu_dwconv_args *p) {
  /* the caller has checked the vector path (k_dwconv.cu vec_ok) */
  /* grid: x = channel group + groups x tile column, y = tile row, z = image (tiles of 8 x 8 at least); the
   * persistent kernels' spatial tile index (n x tile rows x tile columns) within int32 */
  return p->c % 16 == 0 && (p->ow + 7) / 8 * (p->c / 16) <= INT32_MAX && (p->oh + 7) / 8 <= 65535 &&
         p->n <= 65535 && p->n * ((p->oh + 7) / 8) * ((p->ow + 7) / 8) <= INT32_MAX / 2;
}

/* Variant RI__CU_DW_SMEM_FIRST: 4 x 4 pixels per thread (stride 2: 4 x 2), tiles of 16 x 16 (16 x 8);
 * the next: 2 x 2, tiles of 8 x 8, for the small images (38 x 38 and less: less of a tile past the image)
 * and fewer registers. RI__CU_DW_PIPE_FIRST: persistent, the tiles of RI__CU_DW_SMEM_FIRST with 3 buffers
 * (stride 2: 2, 41 KB), launch bounds of 5 blocks per SM (stride 2: 4); the next: persistent, the tiles of
 * 8 x 8 with 3 buffers, 8 (stride 2: 6) blocks per SM. The shared memory stays static (at most 48 KB). */
extern "C" void ri__cu_dwconv_smem(cudaStream_t s, const ri__cu_dwconv_args *p, int variant, const void *x,
                                   const void *w, const float *b, void *y) {
  switch (variant - RI__CU_DW_SMEM_FIRST) {
  case 0: p->sh == 1 ? launch_smem<1, 4, 4>(s, p, x, w, b, y) : launch_smem<2, 4, 2>(s, p, x, w, b, y); break;
  case 1: p->sh == 1 ? launch_smem<1, 2, 2>(s, p, x, w, b, y) : launch_smem<2, 2, 2>(s, p, x, w, b, y); break;
  case 2:
    p->sh == 1 ? launch_pipe<1, 4, 4, 3, 5>(s, p, x, w, b, y) : launch_pipe<2, 4, 2, 2, 4>(s, p, x, w, b, y);
    break;
  default:
    p->sh == 1 ? launch_pipe<1, 2, 2, 3, 8>(s, p, x, w, b, y) : launch_pipe<2, 2, 2, 3, 6>(s, p, x, w, b, y);
    break;
  }
}
