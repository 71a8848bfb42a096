/* Expansion 1x1 -> depthwise 3x3 in one kernel; the contract (and the arithmetic it must share with the
 * unfused kernels bit for bit) is in expdw.h.
 *
 * Why: at batch 256 the early blocks of SSD MobileNet v2 write their expanded tensor (150 x 150 x 96 and
 * 75 x 75 x 144 halves per image) and read it back in the depthwise kernel: expanded_conv_1's expansion and
 * depthwise took 421 + 384 us on the H200, both near their traffic floors (bench/results/pw2-2026-11-27.txt,
 * gpu-2026-11-27-s8b.txt). Here the expanded tensor stays in shared memory; the kernel reads the block's
 * input and writes the depthwise output only (expanded_conv_1: 1.8 of the 10.4 MB per image).
 *
 * What: a block of 8 warps takes an output tile of one image: TX = 4 RX columns x TY = 8 RY rows (stride 1:
 * 16 x 16; stride 2: 8 x 16). It copies, once, the input pixels under the tile's windows (the halo, HW x HH
 * pixels, zeros outside the image; rows padded to LDK halves for conflict-free ldmatrix), the expansion's
 * weight matrix, both biases and the depthwise weights into shared memory (cp.async), then walks the
 * expanded channels in chunks of 16:
 *  1. expansion of the chunk for every halo pixel: warp v takes the m16 tiles v, v + 8, ... of the halo
 *     rows, mma.sync m16n8k16 over the k16 steps (+ the all-zero step), then bias, activation and rounding
 *     as the pointwise kernels do; halo pixels outside the image get +0 (the depthwise convolution pads
 *     the expanded tensor). Stored as half2 into E (a pixel = 16 channels + 4 halves of padding: 40 bytes);
 *  2. barrier; depthwise: thread (cp, sx, sy) = (tid % 8, tid / 8 % 4, tid / 32) computes RX x RY output
 *     pixels of channel pair cp of the chunk, walking its (RY - 1) S + 3 halo rows top to bottom, converting
 *     each of a row's (RX - 1) S + 3 half2 once and feeding every output row that uses it, taps in the order
 *     ky, kx from the float bias (as k_dwconv_smem.cu); activation, rounding, a 4-byte store (8 lanes write
 *     a pixel's 32 contiguous bytes);
 *  3. barrier (E is rewritten by the next chunk).
 * With args dwh (H2; engines built with half accumulation, ri_builder_set_half_accumulation) step 2 is
 * k_dwconv_h2.cu's arithmetic instead (dw_h2): the same walk with the half2 values unconverted, bias and
 * taps as half2, one HFMA2 per tap and channel pair, the activation in half; the float instances' SASS is
 * unchanged by the H2 parameter (checked with cuobjdump -sass).
 * The 4 column groups of a warp read pixels RX S = 4 apart: 4 x 40 bytes = 160, i.e. 8 banks further each,
 * so a warp's 32 loads (8 consecutive words per group) hit 32 different banks.
 * Shared memory (stride 1, cin 24, ce 144): halo 336 x 40 halves, weights 144 x 40 halves, E 336 x 20
 * halves, floats 11 x 144: 58 KB; 3 blocks per SM.
 *
 * Without the expansion (NX; args noexp): MobileNet v2's first block (SSD's expanded_conv: depthwise 3x3
 * over the stem's 150 x 150 x 32, then the projection to 16 channels) wrote its depthwise output (369 MB at
 * batch 256) and read it back: 0.250 + 0.215 ms on the H200. Here step 2 is skipped and the depthwise reads
 * each chunk's 16 channels straight from the staged halo, which holds all ce channels of a pixel at a pitch
 * of ce + 4 halves (ce % 16 == 0: 8 mod 16 bytes, so the rows are copied with 8-byte cp.async): 4 pixels
 * apart are 2 ce + 8 = 8 mod 32 words, the same conflict-free spread as E's 40 bytes. No expansion weights,
 * b1 or E are staged; with the projection, a barrier before each chunk's depthwise (c0 > 0) keeps D from
 * being overwritten while the previous chunk's projection reads it (step 2's barrier does that otherwise).
 * Shared memory (stride 1, ce 32, cout 16): halo 324 x 36 halves, floats 10 x 32, the projection's 16 x 40
 * halves, D 256 x 24 halves: 38 KB. */
#include <atomic>
#include <stdint.h>

#include "backend/cuda/cu_common.cuh"
#include "backend/cuda/cu_mma.cuh"
#include "backend/cuda/expdw.h"

static_assert(RI__CU_EXPDW_ACT_NONE == RI_CU_ACT_NONE && RI__CU_EXPDW_ACT_RELU == RI_CU_ACT_RELU &&
                  RI__CU_EXPDW_ACT_CLIP == RI_CU_ACT_CLIP,
              "expdw.h's activation codes");

namespace {

using namespace ri_cu_mma;

constexpr int NW = 8; /* warps per block */
constexpr int THREADS = NW * 32;
constexpr int CH = 16;  /* expanded channels per chunk */
constexpr int EPS = 20; /* halves per pixel of E: 16 channels + 4 of padding */
constexpr int XPAD = 4; /* NX: halves of padding after a halo pixel's ce channels */
constexpr int MAX_DEVICES = 64;

/* 8-byte asynchronous copy global -> shared (through L1), for the NX halo's rows, 8- but not 16-byte
 * aligned; src_bytes 0 writes zeros. */
__device__ __forceinline__ void cp8(void *dst, const void *src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(src_bytes));
}

/* ldmatrix x4 and a 4-byte store at a shared-memory address (smem_u32's). */
__device__ __forceinline__ void ldsm_x4_at(unsigned *r, unsigned a) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
__device__ __forceinline__ void sts_b32(unsigned a, __half2 v) {
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(a), "r"(*(const unsigned *)&v) : "memory");
}

template <int S, int KS, int RX, int RY> struct geo {
  static constexpr int TX = 4 * RX, TY = NW * RY;                    /* output tile */
  static constexpr int HW = (TX - 1) * S + 3, HH = (TY - 1) * S + 3; /* halo */
  static constexpr int HP = HW * HH;
  static constexpr int HPE = (HP + 1) / 2 * 2; /* NX: halo rows, even (whole 16-byte chunks) */
  static constexpr int MT = (HP + 15) / 16;    /* m16 tiles of halo pixels */
  static constexpr int ROWS = MT * 16;
  static constexpr int LDK = KS * 16 + 8;        /* halves per row of the halo and of the weights */
  static constexpr int KC = KS * 2;              /* 16-byte chunks of a row's k16 steps */
  static constexpr int TPW = (MT + NW - 1) / NW; /* m16 tiles per warp, at most */
  static constexpr int WIN = (RX - 1) * S + 3, WROWS = (RY - 1) * S + 3;
  static_assert(RX * S == 4, "column groups 4 pixels apart (bank-conflict-free E loads)");
  static_assert(TPW <= 16, "inside mask: 2 bits per m16 tile in 32 bits");
};

/* The projection's shared memory: its weights ([NTP * 8][ce + 8] halves, rows past cout zero) and the
 * depthwise output of a chunk ([TX * TY][DPS] halves: 16 channels + 8 of padding, 48 bytes a pixel, for
 * conflict-free ldmatrix), then b2 ([NTP * 8] floats). */
constexpr int DPS = 24;

/* Bytes of dynamic shared memory: halo and weight rows (half), E (half), then b1, bd, wd (float), then with
 * a projection of NTP n8 tiles its weights, D and b2. NX: the halo ([HPE][ce + XPAD] halves), then bd, wd,
 * then the projection's. */
template <int S, int KS, int RX, int RY, int NTP, bool NX> constexpr int64_t smem_bytes(int ce) {
  using G = geo<S, KS, RX, RY>;
  return (NX ? (int64_t)G::HPE * (ce + XPAD) * 2 + (int64_t)ce * 10 * 4
             : ((int64_t)(G::ROWS + ce) * G::LDK + (int64_t)G::ROWS * EPS) * 2 + (int64_t)ce * 11 * 4) +
         (NTP ? ((int64_t)NTP * 8 * (ce + 8) + (int64_t)G::TX * G::TY * DPS) * 2 + NTP * 8 * 4 : 0);
}

/* The expansion's activation as the pointwise kernels apply ReLU and clip (k_pwconv_bulk.cu); the kernel
 * takes no other activation (ri__cu_expdw_supported): ri_act's other cases, inlined at every value,
 * made each instantiation ~12k instructions, and the instruction fetch the bottleneck. */
__device__ __forceinline__ float exp_act(bool clampf, float lo, float hi, float v) {
  return clampf ? fminf(fmaxf(v, lo), hi) : v;
}

/* The depthwise activation as k_dwconv_smem.cu's dws_act applies ReLU and clip. */
__device__ __forceinline__ float dw_act(int act, float a, float b, float v) {
  if (act == RI_CU_ACT_CLIP) {
    const float t = v > b ? b : v;
    return v < a ? a : t;
  }
  return act == RI_CU_ACT_RELU ? (v > 0.f ? v : 0.f) : v;
}

/* Step 3 in half arithmetic (H2; args dwh), k_dwconv_h2.cu's per output and channel pair: acc = the bias
 * rounded to half (BD holds it as float: __floats2half2_rn, as there), then for ky = 0..2, kx = 0..2
 * acc = __hfma2(E, w, acc) with E the expanded half (+0 outside the image: the staged halo's zeros) and w the
 * tap (WD holds half values as floats: the conversion back is exact), then ReLU as __hmax2(v, 0) or clip as
 * __hmin2_nan(__hmax2_nan(v, lo), hi) with the bounds rounded to half, stored as is. The walk is the float
 * stage's (rows top to bottom, each input half2 loaded once, every output's taps in the order ky, kx). */
template <class G, int S, int RX, int RY, int NTP, bool NX>
__device__ __forceinline__ void dw_h2(const ri__cu_expdw_args &p, int ce, int c0, int cp, int ep2,
                                      const __half2 *eb, const float *WD, const float *BD, __half2 *db,
                                      __half2 *yb, int64_t ys, int nq, int nr) {
  const __half2 *ec = eb + (NX ? c0 / 2 : 0);
  const float *wc = WD + c0 * 9 + 2 * cp;
  __half2 wh[9];
#pragma unroll
  for (int t = 0; t < 9; t++) {
    const float2 wv = *(const float2 *)(wc + t * 16);
    wh[t] = __floats2half2_rn(wv.x, wv.y);
  }
  const float2 bf = *(const float2 *)(BD + c0 + 2 * cp);
  const __half2 bv = __floats2half2_rn(bf.x, bf.y);
  const int act = p.act[1];
  const __half2 zero = __float2half2_rn(0.f), lo = __float2half2_rn(p.act_a[1]),
                hi = __float2half2_rn(p.act_b[1]);
  __half2 acc[RY][RX];
#pragma unroll
  for (int o = 0; o < RY; o++)
#pragma unroll
    for (int q = 0; q < RX; q++)
      acc[o][q] = bv;
#pragma unroll
  for (int rr = 0; rr < G::WROWS; rr++) {
    __half2 xh[G::WIN];
#pragma unroll
    for (int j = 0; j < G::WIN; j++)
      xh[j] = ec[(rr * G::HW + j) * ep2];
#pragma unroll
    for (int o = 0; o < RY; o++) {
      const int ky = rr - o * S;
      if (ky < 0 || ky > 2) continue;
#pragma unroll
      for (int q = 0; q < RX; q++)
#pragma unroll
        for (int kx = 0; kx < 3; kx++)
          acc[o][q] = __hfma2(xh[q * S + kx], wh[ky * 3 + kx], acc[o][q]);
      if (ky != 2) continue;
#pragma unroll
      for (int q = 0; q < RX; q++) {
        __half2 v = acc[o][q];
        if (act == RI_CU_ACT_RELU)
          v = __hmax2(v, zero);
        else if (act == RI_CU_ACT_CLIP)
          v = __hmin2_nan(__hmax2_nan(v, lo), hi);
        acc[o][q] = v;
      }
      if (NTP) { /* D of the chunk to shared memory (rows outside the output: unused) */
#pragma unroll
        for (int q = 0; q < RX; q++)
          db[(o * G::TX + q) * (DPS / 2)] = acc[o][q];
      } else if (o < nr) {
        __half2 *yq = yb + o * ys + c0 / 2;
#pragma unroll
        for (int q = 0; q < RX; q++, yq += ce / 2)
          if (q < nq) *yq = acc[o][q];
      }
    }
  }
}

/* NTP: 0, or the projection's n8 tiles (cout rounded up to NTP * 8; see the launcher). NX: no expansion
 * (KS 1, unused). H2: the depthwise stage in half arithmetic (args dwh; k_dwconv_h2.cu's arithmetic, see
 * step 3). CE: 0, or p.ce as a compile-time constant (NX only: the halo pitch, the copies' trip counts and
 * the chunk loop then fixed; see dispatch). */
template <int S, int KS, int RX, int RY, int NTP, bool NX, bool H2, int CE>
__global__ void __launch_bounds__(THREADS, NTP == 0 || (S == 2 && NTP == 2) ? 3 : 2)
    expdw_kernel(ri__cu_expdw_args p, const __half *__restrict__ x, const __half *__restrict__ w1,
                 const float *__restrict__ b1, const float *__restrict__ wd, const float *__restrict__ bd,
                 const __half *__restrict__ w2, const float *__restrict__ b2, const __half2 *res,
                 __half2 *y) {
  using G = geo<S, KS, RX, RY>;
  constexpr int TP = G::TX * G::TY;           /* output pixels of a tile */
  constexpr int PMT = NTP ? TP / 16 / NW : 0; /* the projection's m16 tiles per warp */
  static_assert(!NTP || TP % (16 * NW) == 0, "whole m16 tiles per warp");
  extern __shared__ __align__(16) unsigned char smem[];
  static_assert(CE == 0 || (NX && CE % 16 == 0), "a compile-time ce only without the expansion");
  const int ce = CE ? CE : p.ce, cin = CE ? CE : p.cin; /* NX: cin == ce */
  const int xp = NX ? ce + XPAD : G::LDK;               /* halves per halo pixel */
  __half *Xs = (__half *)smem;                          /* [ROWS][LDK]; NX: [HPE][ce + XPAD] */
  __half *Ws = Xs + (NX ? G::HPE : G::ROWS) * xp;       /* !NX: [ce][LDK] */
  __half *Es = Ws + (NX ? 0 : ce * G::LDK);             /* !NX: [ROWS][EPS] */
  float *B1 = (float *)(Es + (NX ? 0 : G::ROWS * EPS)); /* !NX: [ce] */
  float *BD = B1 + (NX ? 0 : ce), *WD = BD + ce;        /* [ce], [ce / 16][9][16] */
  __half *W2s = (__half *)(WD + 9 * ce);                /* NTP: [NTP * 8][ce + 8] */
  __half *Ds = W2s + NTP * 8 * (ce + 8);                /* NTP: [TP][DPS] */
  float *B2 = (float *)(Ds + TP * DPS);                 /* NTP: [NTP * 8] */
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int tx = blockIdx.x, ty = blockIdx.y, b = blockIdx.z;
  const int iy0 = ty * G::TY * S - p.pad_t, ix0 = tx * G::TX * S - p.pad_l;

  /* 1. copies: the halo (zeros outside the image, past cin and past the halo), weights, biases */
  {
    const __half *xi = x + (int64_t)b * p.ih * p.iw * cin;
    /* The halo copies step (pixel r = hy * HW + hx, chunk k) by THREADS chunks at a time without a division
     * per copy, and address x in 32 bits (an offset inside the image is below 2^31, ri__cu_expdw_supported;
     * outside it the unsigned wrap-around is never used). */
    if (NX) { /* the halo pixels' ce channels, 8 bytes at a time (the pitch is 8 mod 16 bytes) */
      /* thread (r, k) copies chunk k of pixels r, r + dr, ...: dr = THREADS / c4 pixels per pass (c4 at most
       * 16; with c4 = 12 the last 4 threads copy nothing) */
      const int c4 = ce / 4, dr = THREADS / c4, dy = dr / G::HW, dx = dr - dy * G::HW;
      int r = tid / c4;
      const int k = tid - r * c4;
      if (r < dr) {
        int hy = r / G::HW, hx = r - hy * G::HW;
        const __half *xk = xi + k * 4;
        __half *dk = Xs + k * 4;
        for (; r < G::HP; r += dr) {
          const int iy = iy0 + hy, ix = ix0 + hx;
          const bool in = (unsigned)iy < (unsigned)p.ih && (unsigned)ix < (unsigned)p.iw;
          const unsigned off = ((unsigned)iy * (unsigned)p.iw + (unsigned)ix) * (unsigned)cin;
          cp8(dk + r * xp, xk + (in ? off : 0u), in ? 8 : 0); /* outside: 0 bytes read, zeros written */
          hy += dy, hx += dx;
          if (hx >= G::HW) hx -= G::HW, hy++;
        }
      }
    } else {
      constexpr int KC = G::KC, NQ = G::ROWS * KC, DR = THREADS / KC, DK = THREADS % KC;
      constexpr int DY = DR / G::HW, DX = DR % G::HW;
      int r = tid / KC, k = tid % KC, hy = r / G::HW, hx = r - hy * G::HW;
#pragma unroll
      for (int q0 = 0; q0 < NQ; q0 += THREADS) {
        if (q0 + THREADS > NQ && q0 + tid >= NQ) break;
        const int iy = iy0 + hy, ix = ix0 + hx;
        const bool in =
            r < G::HP && (unsigned)iy < (unsigned)p.ih && (unsigned)ix < (unsigned)p.iw && k * 8 < cin;
        const unsigned off =
            ((unsigned)iy * (unsigned)p.iw + (unsigned)ix) * (unsigned)cin + (unsigned)k * 8u;
        cp16(Xs + r * G::LDK + k * 8, xi + (in ? off : 0u), in ? 16 : 0);
        r += DR, k += DK, hy += DY, hx += DX;
        if (DK != 0 && k >= KC) k -= KC, r++, hx++;
        if (hx >= G::HW) hx -= G::HW, hy++;
      }
      /* w1's rows are k1p = KS * 16 halves: chunk q of w1 is chunk k of row r */
      for (int q = tid; q < ce * G::KC; q += THREADS) {
        const int r = q / G::KC, k = q - r * G::KC;
        cp16(Ws + r * G::LDK + k * 8, w1 + q * 8, 16);
      }
    }
    /* b1 (not with NX), bd, then wd chunk-major: WD[c][t][i] = wd[t][16 c + i] for chunk c, tap t (the 9
     * taps of a chunk 64 bytes apart: immediate offsets from one address in step 3) */
    {
      const int nb = NX ? ce / 4 : ce / 2; /* 16-byte chunks of b1 and bd */
      for (int q = tid; q < nb + 9 * ce / 4; q += THREADS) {
        const float *src;
        if (q < nb) {
          src = !NX && q < ce / 4 ? b1 + q * 4 : bd + (q - (NX ? 0 : ce / 4)) * 4;
        } else {
          const int w = q - nb, c = w / 36, t = (w - c * 36) >> 2; /* 36 chunks per chunk of channels */
          src = wd + t * ce + c * 16 + (w & 3) * 4;
        }
        cp16(B1 + q * 4, src, 16);
      }
    }
    if (NTP) { /* the projection's rows (zeros past cout) and bias; row r = q % (NTP * 8), chunk q / (NTP * 8)
                */
      constexpr int NR = NTP > 0 ? NTP * 8 : 1;
      for (int q = tid; q < ce / 8 * NR; q += THREADS) {
        const int r = q % NR, k = q / NR;
        const bool in = r < p.cout;
        cp16(W2s + r * (ce + 8) + k * 8, in ? w2 + r * ce + k * 8 : w2, in ? 16 : 0);
      }
      for (int q = tid; q < NTP * 8; q += THREADS)
        B2[q] = q < p.cout ? b2[q] : 0.f;
    }
    cp_commit();
  }

  /* Whether halo rows g8 and g8 + 8 of the warp's m16 tiles lie inside the image: bit 2 i + h. */
  const int g8 = lane >> 2, t4 = lane & 3;
  unsigned inside = 0;
#pragma unroll
  for (int i = 0; i < G::TPW; i++) {
    const int mt = warp + i * NW;
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int r = mt * 16 + g8 + h * 8;
      const int hy = r / G::HW, hx = r - hy * G::HW;
      const int iy = iy0 + hy, ix = ix0 + hx;
      if (mt < G::MT && r < G::HP && (unsigned)iy < (unsigned)p.ih && (unsigned)ix < (unsigned)p.iw)
        inside |= 1u << (2 * i + h);
    }
  }
  const bool clampf = p.act[0] == RI_CU_ACT_RELU || p.act[0] == RI_CU_ACT_CLIP;
  const float lo = p.act[0] == RI_CU_ACT_RELU ? 0.f : p.act_a[0];
  const float hi = p.act[0] == RI_CU_ACT_RELU ? INFINITY : p.act_b[0];
  /* When both bounds are halves, rounding to half is monotonic and keeps them, so clamping the rounded value
   * gives the rounded clamped one (below lo both give lo, above hi both hi, between the rounding alone);
   * __hmax2 / __hmin2 return the number for a NaN input as fmaxf / fminf do. Two half2 operations per pair
   * instead of four float ones. */
  const __half2 lo2 = __float2half2_rn(lo), hi2 = __float2half2_rn(hi);
  const bool hclamp = clampf && __low2float(lo2) == lo && __low2float(hi2) == hi;
  const int act1 = p.act[1];
  const float a1 = p.act_a[1], bb1 = p.act_b[1];

  /* The depthwise thread's place. */
  const int cp = tid & 7, sx = (tid >> 3) & 3, sy = tid >> 5;
  const int ox0 = tx * G::TX + sx * RX, oy0 = ty * G::TY + sy * RY;
  const int nq = p.ow - ox0, nr = p.oh - oy0; /* the thread's columns and rows inside the output */
  const int ep2 = NX ? xp / 2 : EPS / 2;      /* half2 per pixel of the depthwise input (NX: the halo) */
  const __half2 *eb = (const __half2 *)(NX ? Xs : Es) + (sy * RY * S * G::HW + sx * RX * S) * ep2 + cp;
  __half2 *yb = y + (((int64_t)b * p.oh + oy0) * p.ow + ox0) * (ce / 2) + cp;
  const int64_t ys = (int64_t)p.ow * (ce / 2);
  __half2 *db = (__half2 *)Ds + (sy * RY * G::TX + sx * RX) * (DPS / 2) + cp; /* NTP: the thread's D */
  float pacc[PMT > 0 ? PMT : 1][NTP > 0 ? NTP : 1][4]; /* NTP: the projection's accumulators */
#pragma unroll
  for (int i = 0; i < PMT; i++)
#pragma unroll
    for (int j = 0; j < NTP; j++)
      pacc[i][j][0] = pacc[i][j][1] = pacc[i][j][2] = pacc[i][j][3] = 0.f;

  /* the expansion's per-thread bases: its ldmatrix rows of the halo and its stores to E (m16 tile i of
   * the warp: + i * NW * 16 rows, compile-time offsets) */
  unsigned xa = smem_u32(Xs + (warp * 16 + (lane & 15)) * G::LDK + (lane >> 4) * 8);
  unsigned ea = smem_u32(Es + (warp * 16 + g8) * EPS + t4 * 2);
  asm("" : "+r"(xa), "+r"(ea)); /* opaque: kept in registers, not recomputed from tid in every chunk */
  cp_wait<0>();
  __syncthreads();

  for (int c0 = 0; c0 < ce; c0 += CH) {
    if (NX) {
      /* no expansion: D of the previous chunk is read by its projection until every thread is here */
      if (NTP && c0 > 0) __syncthreads();
    } else {
      /* 2. the expansion of channels c0 .. c0 + 15 for every halo pixel */
      unsigned bf[KS][4];
#pragma unroll
      for (int ks = 0; ks < KS; ks++)
        ldsm_x4(bf[ks][0], bf[ks][1], bf[ks][2], bf[ks][3],
                Ws + (c0 + (lane & 7) + ((lane >> 4) << 3)) * G::LDK + ks * 16 + ((lane >> 3) & 1) * 8);
      const float2 bias0 = *(const float2 *)(B1 + c0 + t4 * 2),
                   bias1 = *(const float2 *)(B1 + c0 + 8 + t4 * 2);
#pragma unroll
      for (int i = 0; i < G::TPW; i++) {
        const int mt = warp + i * NW;
        if (G::MT % NW != 0 && mt >= G::MT) break; /* warp-uniform */
        float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
          unsigned af[4];
          ldsm_x4_at(af, xa + (i * NW * 16 * G::LDK + ks * 16) * 2);
          mma16816(acc[0], af, bf[ks][0], bf[ks][1]);
          mma16816(acc[1], af, bf[ks][2], bf[ks][3]);
        }
        if (p.zstep) {
          const unsigned z[4] = {0u, 0u, 0u, 0u};
          mma16816(acc[0], z, 0u, 0u);
          mma16816(acc[1], z, 0u, 0u);
        }
#pragma unroll
        for (int j = 0; j < 2; j++) {
          const float2 bj = j ? bias1 : bias0;
#pragma unroll
          for (int h = 0; h < 2; h++) {
            __half2 hv;
            if (hclamp) /* round, then clamp in half: the same value (see hclamp) */
              hv = __hmin2(__hmax2(__floats2half2_rn(acc[j][2 * h] + bj.x, acc[j][2 * h + 1] + bj.y), lo2),
                           hi2);
            else
              hv = __floats2half2_rn(exp_act(clampf, lo, hi, acc[j][2 * h] + bj.x),
                                     exp_act(clampf, lo, hi, acc[j][2 * h + 1] + bj.y));
            if (!((inside >> (2 * i + h)) & 1u)) hv = __floats2half2_rn(0.f, 0.f);
            sts_b32(ea + ((i * NW * 16 + h * 8) * EPS + j * 8) * 2, hv);
          }
        }
      }
      __syncthreads();
    }

    /* 3. the depthwise convolution of the chunk's channel pair cp at the thread's RX x RY pixels */
    if (H2) {
      if (nq > 0 && nr > 0) dw_h2<G, S, RX, RY, NTP, NX>(p, ce, c0, cp, ep2, eb, WD, BD, db, yb, ys, nq, nr);
    } else if (nq > 0 && nr > 0) {
      const int e = c0 + 2 * cp;
      const __half2 *ec = eb + (NX ? c0 / 2 : 0); /* NX: the chunk's channels of the halo pixels */
      const float *wc = WD + c0 * 9 + 2 * cp;     /* the chunk's taps (chunk-major, see the copy) */
      float2 wf[9];
#pragma unroll
      for (int t = 0; t < 9; t++)
        wf[t] = *(const float2 *)(wc + t * 16);
      const float2 bv = *(const float2 *)(BD + e);
      float2 acc[RY][RX];
#pragma unroll
      for (int o = 0; o < RY; o++)
#pragma unroll
        for (int q = 0; q < RX; q++)
          acc[o][q] = bv;
#pragma unroll
      for (int rr = 0; rr < G::WROWS; rr++) {
        float2 xf[G::WIN];
#pragma unroll
        for (int j = 0; j < G::WIN; j++)
          xf[j] = __half22float2(ec[(rr * G::HW + j) * ep2]);
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
          if (NTP && ky == 2) { /* D of the chunk to shared memory (rows outside the output: unused) */
#pragma unroll
            for (int q = 0; q < RX; q++)
              db[(o * G::TX + q) * (DPS / 2)] =
                  __floats2half2_rn(dw_act(act1, a1, bb1, acc[o][q].x), dw_act(act1, a1, bb1, acc[o][q].y));
          } else if (ky == 2 && o < nr) {
            __half2 *yq = yb + o * ys + c0 / 2;
#pragma unroll
            for (int q = 0; q < RX; q++, yq += ce / 2)
              if (q < nq)
                *yq =
                    __floats2half2_rn(dw_act(act1, a1, bb1, acc[o][q].x), dw_act(act1, a1, bb1, acc[o][q].y));
          }
        }
      }
    }
    if (!NX || NTP) __syncthreads(); /* NX without a projection: nothing in shared memory is rewritten */
    if (NTP) { /* 4. the projection's k16 step of this chunk, for the warp's m16 tiles of output pixels */
      unsigned pb[NTP > 0 ? NTP : 1][2];
#pragma unroll
      for (int j = 0; j < NTP; j += 2) {
        unsigned r0, r1, r2, r3;
        ldsm_x4(r0, r1, r2, r3,
                W2s + (j * 8 + (lane & 7) + ((lane >> 4) << 3)) * (ce + 8) + c0 + ((lane >> 3) & 1) * 8);
        pb[j][0] = r0, pb[j][1] = r1, pb[j + 1][0] = r2, pb[j + 1][1] = r3;
      }
#pragma unroll
      for (int i = 0; i < PMT; i++) {
        unsigned af[4];
        ldsm_x4(af[0], af[1], af[2], af[3],
                Ds + ((warp * PMT + i) * 16 + (lane & 15)) * DPS + (lane >> 4) * 8);
#pragma unroll
        for (int j = 0; j < NTP; j++)
          mma16816(pacc[i][j], af, pb[j][0], pb[j][1]);
      }
    }
  }
  if (NTP) { /* 5. the all-zero step, bias, residual, activation, one rounding; pixels inside the output */
    if (ce % 32 != 0 && ce % 32 <= 16) {
      const unsigned z[4] = {0u, 0u, 0u, 0u};
#pragma unroll
      for (int i = 0; i < PMT; i++)
#pragma unroll
        for (int j = 0; j < NTP; j++)
          mma16816(pacc[i][j], z, 0u, 0u);
    }
    const bool clamp2 = p.act[2] == RI_CU_ACT_RELU || p.act[2] == RI_CU_ACT_CLIP;
    const float lo_2 = p.act[2] == RI_CU_ACT_RELU ? 0.f : p.act_a[2];
    const float hi_2 = p.act[2] == RI_CU_ACT_RELU ? INFINITY : p.act_b[2];
    const int co2 = p.cout / 2;
#pragma unroll
    for (int i = 0; i < PMT; i++)
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int pi = (warp * PMT + i) * 16 + g8 + h * 8;
        const int oy = ty * G::TY + pi / G::TX, ox = tx * G::TX + pi % G::TX;
        if (oy >= p.oh || ox >= p.ow) continue;
        const int64_t o2 = (((int64_t)b * p.oh + oy) * p.ow + ox) * co2;
#pragma unroll
        for (int j = 0; j < NTP; j++) {
          const int n = j * 8 + t4 * 2;
          if (n >= p.cout) break;
          const float2 bj = *(const float2 *)(B2 + n);
          float v0 = pacc[i][j][2 * h] + bj.x, v1 = pacc[i][j][2 * h + 1] + bj.y;
          if (res) {
            const float2 r = __half22float2(res[o2 + n / 2]);
            v0 += r.x, v1 += r.y;
          }
          y[o2 + n / 2] = __floats2half2_rn(exp_act(clamp2, lo_2, hi_2, v0), exp_act(clamp2, lo_2, hi_2, v1));
        }
      }
  }
}

/* Tile of a stride: stride 1 takes 4 x 2 pixels per thread (16 x 16 tiles), stride 2 2 x 2 (8 x 16). */
template <int S> struct tile_of;
template <> struct tile_of<1> { static constexpr int RX = 4, RY = 2; };
template <> struct tile_of<2> { static constexpr int RX = 2, RY = 2; };

/* The projection's n8 tiles: cout rounded up to 16 or 32 (the rows past cout are zero and not stored);
 * 0 without a projection. The projection runs for expansions of at most 32 channels (KS <= 2: the
 * expansion's weight registers), and without an expansion (NX). */
int ntp_of(const ri__cu_expdw_args *p) { return p->cout == 0 ? 0 : p->cout <= 16 ? 2 : 4; }

/* Calls f.template run<S, KS, NTP, NX, H2, CE>() for p's instantiation (NX: KS 1; H2: p->dwh; CE 32 for the
 * form without the expansion at stride 1 and ce 32, MobileNet v2's first block, else 0). */
template <bool H2, class F>
auto dispatch_h(const ri__cu_expdw_args *p, F &&f) -> decltype(f.template run<1, 1, 0, false, H2>()) {
  const int ks = p->k1p / 16, ntp = ntp_of(p);
#define RI_EXPDW_NTP(S, KS, NX)                                                                              \
  return ntp == 0   ? f.template run<S, KS, 0, NX, H2>()                                                     \
         : ntp == 2 ? f.template run<S, KS, 2, NX, H2>()                                                     \
                    : f.template run<S, KS, 4, NX, H2>();
#define RI_EXPDW_KS(S)                                                                                       \
  if (p->noexp) {                                                                                            \
    if constexpr (S == 1)                                                                                    \
      if (p->ce == 32)                                                                                       \
        return ntp == 0   ? f.template run<S, 1, 0, true, H2, 32>()                                          \
               : ntp == 2 ? f.template run<S, 1, 2, true, H2, 32>()                                          \
                          : f.template run<S, 1, 4, true, H2, 32>();                                         \
    RI_EXPDW_NTP(S, 1, true)                                                                                 \
  }                                                                                                          \
  switch (ks) {                                                                                              \
  case 1: RI_EXPDW_NTP(S, 1, false)                                                                          \
  case 2: RI_EXPDW_NTP(S, 2, false)                                                                          \
  case 3: return f.template run<S, 3, 0, false, H2>();                                                       \
  default: return f.template run<S, 4, 0, false, H2>();                                                      \
  }
  if (p->stride == 1) {
    RI_EXPDW_KS(1)
  }
  RI_EXPDW_KS(2)
#undef RI_EXPDW_KS
#undef RI_EXPDW_NTP
}

template <class F>
auto dispatch(const ri__cu_expdw_args *p, F &&f) -> decltype(f.template run<1, 1, 0, false, false>()) {
  return p->dwh ? dispatch_h<true>(p, f) : dispatch_h<false>(p, f);
}

struct smem_f {
  const ri__cu_expdw_args *p;
  template <int S, int KS, int NTP, bool NX, bool H2, int CE = 0> int64_t run() const {
    return smem_bytes<S, KS, tile_of<S>::RX, tile_of<S>::RY, NTP, NX>(p->ce);
  }
};

int64_t smem_of(const ri__cu_expdw_args *p) { return dispatch(p, smem_f{p}); }

constexpr int64_t MAX_SMEM = 200 * 1024; /* within the 227 KB a block may opt into on sm_90 */

struct launch_f {
  cudaStream_t s;
  const ri__cu_expdw_args *p;
  const void *x;
  const ri__cu_expdw_weights *w;
  const void *res;
  void *y;
  template <int S, int KS, int NTP, bool NX, bool H2, int CE = 0> cudaError_t run() const {
    constexpr int RX = tile_of<S>::RX, RY = tile_of<S>::RY;
    using G = geo<S, KS, RX, RY>;
    auto k = expdw_kernel<S, KS, RX, RY, NTP, NX, H2, CE>;
    const int64_t smem = smem_bytes<S, KS, RX, RY, NTP, NX>(p->ce);
    /* the opt-in to more than 48 KB, once per instantiation, device and size (not during graph capture: the
     * eager runs before it have made it) */
    static std::atomic<int64_t> set_for[MAX_DEVICES];
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    if (dev < 0 || dev >= MAX_DEVICES || set_for[dev].load() < smem) {
      e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
      if (e == cudaSuccess)
        e = cudaFuncSetAttribute(k, cudaFuncAttributePreferredSharedMemoryCarveout,
                                 cudaSharedmemCarveoutMaxShared);
      if (e != cudaSuccess) return e;
      if (dev >= 0 && dev < MAX_DEVICES) set_for[dev].store(smem);
    }
    const dim3 grid((unsigned)((p->ow + G::TX - 1) / G::TX), (unsigned)((p->oh + G::TY - 1) / G::TY),
                    (unsigned)p->n);
    return ri_cu_launch(k, grid, dim3(THREADS), (size_t)smem, s, *p, (const __half *)x, (const __half *)w->w1,
                        w->b1, w->wd, w->bd, (const __half *)w->w2, w->b2, (const __half2 *)res,
                        (__half2 *)y);
  }
};

} // namespace

extern "C" int ri__cu_expdw_supported(const ri__cu_expdw_args *p) {
  if (!p || p->n < 1 || p->n > 65535 || p->ih < 1 || p->iw < 1 || p->oh < 1 || p->ow < 1) return 0;
  if ((p->noexp != 0 && p->noexp != 1) || (p->dwh != 0 && p->dwh != 1)) return 0;
  if (p->noexp) { /* x has the ce channels; nothing of the expansion */
    if (p->cin != p->ce || p->k1p != 0 || p->zstep != 0 || p->act[0] != RI__CU_EXPDW_ACT_NONE) return 0;
  } else if (p->k1p != (p->cin + 15) / 16 * 16) {
    return 0;
  }
  if (p->cin < 8 || p->cin % 8 != 0 || p->cin > RI__CU_EXPDW_MAX_CIN) return 0;
  if (p->ce < 16 || p->ce % 16 != 0 || (p->stride != 1 && p->stride != 2)) return 0;
  if (p->pad_t < 0 || p->pad_t > 2 || p->pad_l < 0 || p->pad_l > 2 || (p->zstep != 0 && p->zstep != 1))
    return 0;
  /* the projection: up to 32 output channels after expansions of up to 32 channels or none (ntp_of,
   * dispatch) */
  if (p->cout < 0 || p->cout % 8 != 0 || p->cout > 32 || (p->cout > 0 && !p->noexp && p->cin > 32)) return 0;
  for (int i = 0; i < 3; i++) /* none, ReLU and clip only (exp_act, dw_act) */
    if ((i < 2 || p->cout > 0) && p->act[i] != RI__CU_EXPDW_ACT_NONE && p->act[i] != RI__CU_EXPDW_ACT_RELU &&
        p->act[i] != RI__CU_EXPDW_ACT_CLIP)
      return 0;
  /* offsets within an image in int32; tiles in the grid's limits */
  if ((int64_t)p->ih * p->iw * p->cin > INT32_MAX || (int64_t)p->oh * p->ow * p->ce > INT32_MAX ||
      (p->oh + 15) / 16 > 65535)
    return 0;
  return smem_of(p) <= MAX_SMEM;
}

extern "C" cudaError_t ri__cu_expdw(cudaStream_t s, const ri__cu_expdw_args *p, const void *x,
                                    const ri__cu_expdw_weights *w, const void *res, void *y) {
  if (!ri__cu_expdw_supported(p) || !w || !x || !y || !w->wd || !w->bd ||
      (!p->noexp && (!w->w1 || !w->b1 || ((uintptr_t)w->w1 | (uintptr_t)w->b1) % 16 != 0)) ||
      ((uintptr_t)x | (uintptr_t)y | (uintptr_t)w->wd | (uintptr_t)w->bd | (uintptr_t)res) % 16 != 0)
    return cudaErrorInvalidValue;
  if (p->cout > 0 && (!w->w2 || !w->b2 || ((uintptr_t)w->w2 | (uintptr_t)w->b2) % 16 != 0))
    return cudaErrorInvalidValue;
  if (p->cout == 0 && res) return cudaErrorInvalidValue;
  return dispatch(p, launch_f{s, p, x, w, res, y});
}
