/* Depthwise 3x3 variants RI__CU_DW_SMEM_FIRST .. RI__CU_DW_VARIANTS - 1 of k_dwconv.cu (NHWC half, dilation
 * 1, stride 1 or 2, channel count a multiple of 16): the input tile of a block in shared memory.
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
 * Measured: not yet run on a GPU (nvcc --resource-usage: see docs/decisions.md). */
#include "backend/cuda/cu_common.cuh"
#include "backend/cuda/cu_mma.cuh"

using ri_cu_mma::cp16;
using ri_cu_mma::cp_commit;
using ri_cu_mma::cp_wait;

#define DWS_THREADS 128 /* 8 channel pairs x 4 column blocks x 4 warps (rows of thread blocks) */

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
 * thread (the same expressions, so the same values). */
template <int NP> __device__ __forceinline__ void dws_act(const ri__cu_dwconv_args &p, float2 *v) {
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

/* Grid: x = channel group (of 16) + groups x tile column, y = tile row, z = image. */
template <int S, int RX, int RY>
__global__ void __launch_bounds__(DWS_THREADS, 7)
    dw3_smem_kernel(ri__cu_dwconv_args p, const __half *x, const __half2 *w, const float *bias, __half2 *y) {
  using Gm = dws_geo<S, RX, RY>;
  __shared__ __align__(16) uint4 tile[Gm::IR * Gm::ICP * 2];
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  const int32_t c = (int32_t)p.c, c2 = c / 2, ih = (int32_t)p.ih, iw = (int32_t)p.iw, oh = (int32_t)p.oh,
                ow = (int32_t)p.ow, cgn = c / 16;
  const int32_t cg = blockIdx.x % cgn, tx = blockIdx.x / cgn, ty = blockIdx.y, b = blockIdx.z;
  /* the input tile: warp v copies rows v, v + 4, ...; lane l the 16-byte chunks l, l + 32, ... of a row (2
   * per pixel), so that a lane's column terms are computed once */
  {
    constexpr int CW = Gm::IC * 2, KI = (CW + 31) / 32;
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
      const int32_t roff = rok ? (b * ih + iy) * iw * c : 0; /* within int32 (k_dwconv.cu vec_ok) */
#pragma unroll
      for (int i = 0; i < KI; i++) {
        if (i == KI - 1 && lane + 32 * i >= CW) continue; /* past the row */
        const bool in = rok && cok[i];
        cp16(&tile[rr * Gm::ICP * 2 + soff[i]], in ? x + roff + goff[i] : x, in ? 16 : 0);
      }
    }
    cp_commit();
  }
  const int cp = threadIdx.x & 7, sx = (threadIdx.x >> 3) & 3, sy = threadIdx.x >> 5;
  const int32_t ox0 = tx * Gm::TX + sx * RX, oy0 = ty * Gm::TY + sy * RY, ch2 = cg * 8 + cp;
  /* weights and bias while the copies fly: converted once */
  float2 wf[9];
#pragma unroll
  for (int t = 0; t < 9; t++)
    wf[t] = __half22float2(w[t * c2 + ch2]);
  const float2 bv = bias ? make_float2(bias[2 * ch2], bias[2 * ch2 + 1]) : make_float2(0.f, 0.f);
  cp_wait<0>();
  __syncthreads();
  if (ox0 >= ow || oy0 >= oh) return; /* no barrier follows */
  float2 acc[RY][RX];
#pragma unroll
  for (int o = 0; o < RY; o++)
#pragma unroll
    for (int q = 0; q < RX; q++)
      acc[o][q] = bv;
  /* column j of the thread's window is tile column sx G + j, padded sx (G + 1) + j + j / G */
  const __half2 *base = (const __half2 *)tile + (sy * RY * S * Gm::ICP + sx * (Gm::G + 1)) * 8 + cp;
  __half2 *yb = y + (b * oh + oy0) * ow * c2 + ch2;
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
      if (ky == 2 && oy0 + o < oh) {
        __half2 *yr = yb + o * ow * c2;
        dws_act<RX>(p, acc[o]);
#pragma unroll
        for (int q = 0; q < RX; q++) {
          if (ox0 + q >= ow) break;
          yr[(ox0 + q) * c2] = __floats2half2_rn(acc[o][q].x, acc[o][q].y);
        }
      }
    }
  }
}

template <int S, int RX, int RY>
static void launch_smem(cudaStream_t s, const ri__cu_dwconv_args *p, const void *x, const void *w,
                        const float *b, void *y) {
  using Gm = dws_geo<S, RX, RY>;
  const dim3 grid((unsigned)(((p->ow + Gm::TX - 1) / Gm::TX) * (p->c / 16)),
                  (unsigned)((p->oh + Gm::TY - 1) / Gm::TY), (unsigned)p->n);
  ri_cu_launch(dw3_smem_kernel<S, RX, RY>, grid, DWS_THREADS, 0, s, *p, (const __half *)x, (const __half2 *)w,
               b, (__half2 *)y);
}

extern "C" int ri__cu_dwconv_smem_ok(const ri__cu_dwconv_args *p) {
  /* the caller has checked the vector path (k_dwconv.cu vec_ok) */
  /* grid: x = channel group + groups x tile column, y = tile row, z = image (tiles of 8 x 8 at least) */
  return p->c % 16 == 0 && (p->ow + 7) / 8 * (p->c / 16) <= INT32_MAX && (p->oh + 7) / 8 <= 65535 &&
         p->n <= 65535;
}

/* Variant RI__CU_DW_SMEM_FIRST: 4 x 4 pixels per thread (stride 2: 4 x 2), tiles of 16 x 16 (16 x 8);
 * the next: 2 x 2, tiles of 8 x 8, for the small images (38 x 38 and less: less of a tile past the image)
 * and fewer registers. */
extern "C" void ri__cu_dwconv_smem(cudaStream_t s, const ri__cu_dwconv_args *p, int variant, const void *x,
                                   const void *w, const float *b, void *y) {
  const bool first = variant == RI__CU_DW_SMEM_FIRST;
  if (p->sh == 1)
    first ? launch_smem<1, 4, 4>(s, p, x, w, b, y) : launch_smem<1, 2, 2>(s, p, x, w, b, y);
  else
    first ? launch_smem<2, 4, 2>(s, p, x, w, b, y) : launch_smem<2, 2, 2>(s, p, x, w, b, y);
}
