/* Convolution as an implicit GEMM on the tensor cores: half NHWC input, half weights [M, kh, kw, C], float
 * accumulation, and an epilogue in float (bias, optional residual, activation) with one rounding to half.
 *
 * The GEMM: rows are output pixels (n, oy, ox), columns output channels, K = kh * kw * C. A block computes
 * a BM x BN tile with 4 warps (2 x 2), each warp (BM/2) x (BN/2) through mma.sync m16n8k16. Tiles of A
 * (gathered from the input: a 16-byte chunk is 8 channels of one tap of one pixel, zero outside the
 * padded input) and of B (weight rows) go through shared memory in a 3-stage cp.async pipeline, BK = 32
 * halves deep. Rows of shared memory are padded to 40 halves so that ldmatrix reads hit distinct banks.
 *
 * K segments and split K: K is summed in segments of `per` 32-deep steps; each segment's sum starts from
 * zero and the segments' sums are added in order, starting from zero. The segments either run in separate
 * blocks (split K, when the tiles alone would leave most multiprocessors idle): each writes its float
 * partial tile to a workspace and counts itself in the tile's counter; the last block to arrive adds the
 * partials in segment order (so the result does not depend on which block came last), resets the counter
 * to 0, and runs the epilogue. Or they run one after the other in one block (SEGD), which keeps a second
 * accumulator and performs the same additions in the same order. The two give bit-identical results, and so
 * does any tile shape (an output element's sum does not depend on the other rows and columns of its tile):
 * a result depends only on the segment length, which the caller fixes per node, so that an image's output
 * does not depend on the batch it runs in.
 *
 * Epilogue: bias, residual and activation in float on the accumulator registers, one rounding to half;
 * stmatrix writes the half tile to shared memory (over the pipeline stages), and each thread then stores
 * 16-byte chunks of 8 channels of one pixel, coalesced, or element by element where an output slice is not
 * 16-byte aligned; float32 outputs (YF32) widen the half results.
 *
 * The argument struct is passed by value and kept at 128 bytes: with one more field, nvcc 13.0 generated a
 * 128 x 64 kernel about 25% slower (the split count is a separate parameter for that reason). */
#include <type_traits>

#include "backend/cuda/cu_common.cuh"
#include "backend/cuda/cu_gemm_epi.cuh"
#include "backend/cuda/cu_mma.cuh"

namespace {

constexpr int BK = 32;
constexpr int LDS = BK + 8; /* halves per shared-memory row */
constexpr int STAGES = 3;
constexpr int THREADS = 128;

using namespace ri_cu_mma;

/* Ways of gathering A. */
enum { A_VEC = 0, A_K1 = 1, A_SCALAR = 2 };

/* MODE A_K1: a 1x1 convolution with stride 1 and no padding, whose A rows are the input pixels themselves;
 * A_VEC: any window, 16-byte chunks of 8 channels of one tap (c % 8 == 0); A_SCALAR: any window and channel
 * count, 8 elements gathered one by one. Blocks are numbered split fastest, then N tile, so that the blocks
 * sharing an A tile run together and find it in L2. splits > 1: block ks of a tile sums segment ks (per K
 * steps); splits == 1: the block sums all of K, in segments of per steps when SEGD. */
template <int BM, int BN, int MODE, bool YF32, bool SEGD>
__global__ void __launch_bounds__(THREADS)
    convgemm_kernel(const ri__cu_convgemm_args p, const __half *__restrict__ x, const __half *__restrict__ w,
                    const float *__restrict__ bias, const __half *__restrict__ res,
                    typename std::conditional<YF32, float, __half>::type *__restrict__ y,
                    float4 *__restrict__ ws, int *__restrict__ counters, const int splits, const int per) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  constexpr int WM = BM / 2, WN = BN / 2, MI = WM / 16, NI = WN / 8;
  constexpr int A_PER_T = BM * (BK / 8) / THREADS, B_PER_T = BN * (BK / 8) / THREADS;
  constexpr int FRAG4 = MI * NI; /* float4s of accumulator per thread */
  static_assert(NI % 2 == 0 && A_PER_T >= 1 && B_PER_T >= 1, "tile shape");
  __shared__ __align__(128) __half As[STAGES][BM][LDS];
  __shared__ __align__(128) __half Bs[STAGES][BN][LDS];
  __shared__ int s_last;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp & 1, wn = warp >> 1;
  const int n_tiles = (p.m_out + BN - 1) / BN;
  const int tile = (int)(blockIdx.x / splits), ks = (int)(blockIdx.x % splits);
  const int m0 = (tile / n_tiles) * BM;
  const int n0 = (tile % n_tiles) * BN;
  const int M = p.n * p.oh * p.ow;
  constexpr bool K1 = MODE == A_K1;
  const int K = p.k, kc = (tid & 3) * 8; /* this thread's 8-half chunk within a BK slice */

  /* Per A row of this thread: the image base pointer and the top-left input coordinate of the window. */
  const __half *a_base[A_PER_T];
  int a_iy[A_PER_T], a_ix[A_PER_T];
  bool a_ok[A_PER_T];
#pragma unroll
  for (int i = 0; i < A_PER_T; i++) {
    int m = m0 + (tid >> 2) + i * (THREADS / 4);
    a_ok[i] = m < M;
    int mm = a_ok[i] ? m : 0;
    if (K1) {
      a_base[i] = x + (int64_t)mm * p.c;
      a_iy[i] = a_ix[i] = 0;
    } else {
      int ox = mm % p.ow, t = mm / p.ow;
      int oy = t % p.oh, b = t / p.oh;
      a_base[i] = x + (int64_t)b * p.ih * p.iw * p.c;
      a_iy[i] = oy * p.sh - p.pad_t;
      a_ix[i] = ox * p.sw - p.pad_l;
    }
  }
  const __half *b_ptr[B_PER_T];
  bool b_ok[B_PER_T];
#pragma unroll
  for (int i = 0; i < B_PER_T; i++) {
    int n = n0 + (tid >> 2) + i * (THREADS / 4);
    b_ok[i] = n < p.m_out;
    b_ptr[i] = w + (int64_t)(b_ok[i] ? n : 0) * p.ldw;
  }

  auto load_tile = [&](int stage, int k0) {
    const int k = k0 + kc;
    if (MODE == A_SCALAR) {
      int off[8];
      bool kok[8];
      int tky[8], tkx[8];
#pragma unroll
      for (int e = 0; e < 8; e++) {
        int ke = k + e, tap = ke / p.c, ci = ke - tap * p.c;
        kok[e] = ke < K;
        tky[e] = tap / p.kw;
        tkx[e] = tap - tky[e] * p.kw;
        off[e] = ci;
      }
#pragma unroll
      for (int i = 0; i < A_PER_T; i++) {
        __align__(16) __half v[8];
#pragma unroll
        for (int e = 0; e < 8; e++) {
          int iy = a_iy[i] + tky[e] * p.dh, ix = a_ix[i] + tkx[e] * p.dw;
          bool ok = a_ok[i] && kok[e] && iy >= 0 && iy < p.ih && ix >= 0 && ix < p.iw;
          v[e] = ok ? a_base[i][((int64_t)iy * p.iw + ix) * p.c + off[e]] : __float2half_rn(0.f);
        }
        *(uint4 *)&As[stage][(tid >> 2) + i * (THREADS / 4)][kc] = *(const uint4 *)v;
      }
    } else {
      const bool kin = k < K;
      int ky = 0, kx = 0, ci = k;
      if (!K1) {
        int tap = k / p.c;
        ci = k - tap * p.c;
        ky = tap / p.kw;
        kx = tap - ky * p.kw;
      }
#pragma unroll
      for (int i = 0; i < A_PER_T; i++) {
        const __half *src = x;
        bool ok = a_ok[i] && kin;
        if (K1) {
          if (ok) src = a_base[i] + k;
        } else {
          int iy = a_iy[i] + ky * p.dh, ix = a_ix[i] + kx * p.dw;
          ok = ok && iy >= 0 && iy < p.ih && ix >= 0 && ix < p.iw;
          if (ok) src = a_base[i] + ((int64_t)iy * p.iw + ix) * p.c + ci;
        }
        cp16(&As[stage][(tid >> 2) + i * (THREADS / 4)][kc], src, ok ? 16 : 0);
      }
    }
    /* Weight rows are zero from K to ldw. */
    const bool kin_w = k < p.ldw;
#pragma unroll
    for (int i = 0; i < B_PER_T; i++) {
      bool ok = b_ok[i] && kin_w;
      cp16(&Bs[stage][(tid >> 2) + i * (THREADS / 4)][kc], ok ? b_ptr[i] + k : w, ok ? 16 : 0);
    }
  };

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; i++)
#pragma unroll
    for (int j = 0; j < NI; j++)
#pragma unroll
      for (int e = 0; e < 4; e++)
        acc[i][j][e] = 0.f;

  const int ktiles_all = (p.ldw + BK - 1) / BK;
  const int kt0 = splits > 1 ? (ks * per < ktiles_all ? ks * per : ktiles_all) : 0;
  const int ktiles = splits > 1 ? (kt0 + per < ktiles_all ? kt0 + per : ktiles_all) - kt0 : ktiles_all;
  /* SEGD: the sum of the segments completed so far (added in order, from zero, like the split-K fix-up). */
  float tot[SEGD ? MI : 1][SEGD ? NI : 1][4];
  if constexpr (SEGD) {
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
      for (int j = 0; j < NI; j++)
#pragma unroll
        for (int e = 0; e < 4; e++)
          tot[i][j][e] = 0.f;
  }
  int seg_left = per;
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < ktiles) load_tile(s, (kt0 + s) * BK);
    cp_commit();
  }
  for (int kt = 0; kt < ktiles; kt++) {
    cp_wait<STAGES - 2>();
    __syncthreads();
    int nk = kt + STAGES - 1;
    if (nk < ktiles) load_tile(nk % STAGES, (kt0 + nk) * BK);
    cp_commit();
    const int st = kt % STAGES;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      unsigned af[MI][4], bf[NI][2];
#pragma unroll
      for (int i = 0; i < MI; i++)
        ldsm_x4(af[i][0], af[i][1], af[i][2], af[i][3],
                &As[st][wm * WM + i * 16 + (lane & 15)][kk + (lane >> 4) * 8]);
#pragma unroll
      for (int j = 0; j < NI; j += 2)
        ldsm_x4(bf[j][0], bf[j][1], bf[j + 1][0], bf[j + 1][1],
                &Bs[st][wn * WN + j * 8 + (lane & 7) + ((lane >> 4) << 3)][kk + ((lane >> 3) & 1) * 8]);
#pragma unroll
      for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
          mma16816(acc[i][j], af[i], bf[j][0], bf[j][1]);
    }
    if constexpr (SEGD) {
      if (--seg_left == 0 || kt + 1 == ktiles) {
        seg_left = per;
#pragma unroll
        for (int i = 0; i < MI; i++)
#pragma unroll
          for (int j = 0; j < NI; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
              tot[i][j][e] += acc[i][j][e];
              acc[i][j][e] = 0.f;
            }
      }
    }
  }
  cp_wait<0>();
  if constexpr (SEGD) {
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
      for (int j = 0; j < NI; j++)
#pragma unroll
        for (int e = 0; e < 4; e++)
          acc[i][j][e] = tot[i][j][e];
  }
  (void)seg_left;

  if (!SEGD && splits > 1) {
    /* Partial tiles in the workspace: [tile][split][FRAG4][THREADS] float4s, coalesced. */
    float4 *mine = ws + ((int64_t)tile * splits + ks) * FRAG4 * THREADS + tid;
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
      for (int j = 0; j < NI; j++)
        mine[(i * NI + j) * THREADS] = make_float4(acc[i][j][0], acc[i][j][1], acc[i][j][2], acc[i][j][3]);
    __threadfence();
    __syncthreads();
    if (tid == 0) s_last = atomicAdd(&counters[tile], 1) == splits - 1;
    __syncthreads();
    if (!s_last) return;
    __threadfence();
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
      for (int j = 0; j < NI; j++)
        acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.f;
    const float4 *all = ws + (int64_t)tile * splits * FRAG4 * THREADS + tid;
    for (int sp = 0; sp < splits; sp++)
#pragma unroll
      for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++) {
          float4 v = __ldcg(&all[((int64_t)sp * FRAG4 + i * NI + j) * THREADS]);
          acc[i][j][0] += v.x, acc[i][j][1] += v.y, acc[i][j][2] += v.z, acc[i][j][3] += v.w;
        }
    if (tid == 0) counters[tile] = 0;
  }

  /* Phase 1, in registers: thread (g = lane / 4, t = lane % 4) holds rows g and g + 8 of each m16 tile,
   * columns 2t and 2t + 1 of each n8 tile (the same columns for every row). Bias, residual and activation
   * in float, one rounding to half, then stmatrix writes the half tile to shared memory, over the A / B
   * stages (free once every warp has passed the barrier below). */
  __syncthreads();
  constexpr int CLD = BN + 8; /* halves per staged row: 16-byte aligned, conflict-free for stmatrix */
  static_assert(BM * CLD * 2 <= (int)(sizeof As + sizeof Bs), "staging fits");
  auto Cs = reinterpret_cast<__half(*)[CLD]>(&As[0][0][0]);
  const int g = lane >> 2, t4 = lane & 3;
  const int nw0 = n0 + wn * WN; /* first column of this warp */
  float bv[NI][2];
#pragma unroll
  for (int j = 0; j < NI; j++) {
    int n = nw0 + j * 8 + t4 * 2;
    bv[j][0] = bias && n < p.m_out ? bias[n] : 0.f;
    bv[j][1] = bias && n + 1 < p.m_out ? bias[n + 1] : 0.f;
  }
  const bool clampf = p.act == RI_CU_ACT_RELU || p.act == RI_CU_ACT_CLIP;
  const float lo = p.act == RI_CU_ACT_RELU ? 0.f : p.act_a;
  const float hi = p.act == RI_CU_ACT_RELU ? INFINITY : p.act_b;
#pragma unroll
  for (int i = 0; i < MI; i++) {
    unsigned word[2][NI];
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int m = m0 + wm * WM + i * 16 + g + h * 8;
      float v[NI][2];
#pragma unroll
      for (int j = 0; j < NI; j++)
        v[j][0] = acc[i][j][2 * h] + bv[j][0], v[j][1] = acc[i][j][2 * h + 1] + bv[j][1];
      if (res && m < M) {
        const __half *rp = res + (int64_t)m * p.ldr;
#pragma unroll
        for (int j = 0; j < NI; j++)
          ri_cu_epi_res(rp, nw0 + j * 8 + t4 * 2, p.m_out, p.ldr, v[j][0], v[j][1]);
      }
      if (clampf) {
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
          for (int e = 0; e < 2; e++)
            v[j][e] = fminf(fmaxf(v[j][e], lo), hi);
      } else if (p.act != RI_CU_ACT_NONE) {
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
          for (int e = 0; e < 2; e++)
            v[j][e] = ri_act(p.act, p.act_a, p.act_b, v[j][e]);
      }
#pragma unroll
      for (int j = 0; j < NI; j++) {
        __half2 hv = __floats2half2_rn(v[j][0], v[j][1]);
        word[h][j] = *(unsigned *)&hv;
      }
    }
    /* Matrix q (q < 2 * NI) of this m16 tile is rows h * 8 .. h * 8 + 7 (h = q / NI) of n8 tile j = q % NI;
     * stmatrix.x4 stores four of them, lanes 8k .. 8k + 7 giving the row addresses of the k-th. */
#pragma unroll
    for (int q0 = 0; q0 < 2 * NI; q0 += 4) {
      const int q = q0 + (lane >> 3), h = q / NI, j = q % NI;
      const __half *row = &Cs[wm * WM + i * 16 + h * 8 + (lane & 7)][wn * WN + j * 8];
      asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(smem_u32(row)),
                   "r"(word[(q0 + 0) / NI][(q0 + 0) % NI]), "r"(word[(q0 + 1) / NI][(q0 + 1) % NI]),
                   "r"(word[(q0 + 2) / NI][(q0 + 2) % NI]), "r"(word[(q0 + 3) / NI][(q0 + 3) % NI]));
    }
  }
  __syncthreads();

  /* Phase 2: the staged tile from shared memory to the output (cu_gemm_epi.cuh). */
  ri_cu_epi_flush<BM, BN, CLD, THREADS>(p, Cs, y, m0, n0, M, tid);
}

/* Split counts beyond this are not used: the fix-up's reads grow with it. */
constexpr int MAX_SPLITS = 32;

/* float4s of one block's accumulator tile, per thread. */
static int frag4_of(int bm, int bn) { return (bm / 32) * (bn / 16); }

/* The heuristic tile for a geometry: the large tiles when they still give every multiprocessor two blocks
 * or more; 32 columns when there are at most 32 output channels. */
static void pick_tile(const ri__cu_convgemm_args *p, int *bm, int *bn) {
  int64_t M = (int64_t)p->n * p->oh * p->ow;
  *bn = p->m_out <= 32 ? 32 : 64;
  int64_t big = (M + 127) / 128 * ((p->m_out + *bn - 1) / *bn);
  *bm = big >= 264 ? 128 : 64;
}

static int64_t tiles_of(const ri__cu_convgemm_args *p, int bm, int bn) {
  int64_t M = (int64_t)p->n * p->oh * p->ow;
  return (M + bm - 1) / bm * ((p->m_out + bn - 1) / bn);
}

/* Whether the segments (nseg > 1) of a launch with `tiles` tiles can run in separate blocks. */
static bool split_fits(const ri__cu_splitk *sk, int64_t tiles, int nseg, int bm, int bn) {
  if (!sk || !sk->ws || !sk->counters || tiles > sk->n_counters || nseg > MAX_SPLITS) return false;
  size_t per_split = (size_t)tiles * (size_t)frag4_of(bm, bn) * THREADS * sizeof(float4);
  return per_split * (size_t)nseg <= sk->ws_bytes;
}

template <int BM, int BN, int MODE, bool SEGD>
cudaError_t launch_k(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x, const void *w,
                     const float *b, const void *r, void *y, const ri__cu_splitk *sk, int splits, int per,
                     int64_t tiles) {
  dim3 grid((unsigned)(tiles * splits));
  float4 *ws = splits > 1 ? (float4 *)sk->ws : nullptr;
  int *cnt = splits > 1 ? sk->counters : nullptr;
  if (p->y_f32)
    ri_cu_launch(convgemm_kernel<BM, BN, MODE, true, SEGD>, grid, THREADS, 0, s, *p, (const __half *)x,
                 (const __half *)w, b, (const __half *)r, (float *)y, ws, cnt, splits, per);
  else
    ri_cu_launch(convgemm_kernel<BM, BN, MODE, false, SEGD>, grid, THREADS, 0, s, *p, (const __half *)x,
                 (const __half *)w, b, (const __half *)r, (__half *)y, ws, cnt, splits, per);
  return ri_cu_launched();
}

template <int BM, int BN, int MODE>
cudaError_t launch_tile(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x, const void *w,
                        const float *b, const void *r, void *y, const ri__cu_splitk *sk, int per, int split) {
  int64_t tiles = tiles_of(p, BM, BN);
  int ktiles = (p->ldw + BK - 1) / BK;
  if (per < 1 || per >= ktiles)
    return launch_k<BM, BN, MODE, false>(s, p, x, w, b, r, y, sk, 1, ktiles, tiles);
  int nseg = (ktiles + per - 1) / per;
  bool fits = split_fits(sk, tiles, nseg, BM, BN);
  /* Automatic: separate blocks when the tiles alone fill less than the device. */
  bool use_split = fits && (split > 0 || (split < 0 && tiles < (sk ? sk->sms : 0)));
  if (use_split) return launch_k<BM, BN, MODE, false>(s, p, x, w, b, r, y, sk, nseg, per, tiles);
  return launch_k<BM, BN, MODE, true>(s, p, x, w, b, r, y, sk, 1, per, tiles);
}

template <int MODE>
cudaError_t launch_mode(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x, const void *w,
                        const float *b, const void *r, void *y, const ri__cu_splitk *sk, int bm, int bn,
                        int per, int split) {
  if (bm == 128 && bn == 64) return launch_tile<128, 64, MODE>(s, p, x, w, b, r, y, sk, per, split);
  if (bm == 128 && bn == 32) return launch_tile<128, 32, MODE>(s, p, x, w, b, r, y, sk, per, split);
  if (bm == 64 && bn == 32) return launch_tile<64, 32, MODE>(s, p, x, w, b, r, y, sk, per, split);
  return launch_tile<64, 64, MODE>(s, p, x, w, b, r, y, sk, per, split);
}

} // namespace

extern "C" int ri__cu_convgemm_supported(const ri__cu_convgemm_args *p) {
  return p->c >= 1 && p->kh >= 1 && p->kw >= 1 && (int64_t)p->kh * p->kw * p->c <= INT32_MAX - 8 &&
         p->k == p->kh * p->kw * p->c && p->ldw % 8 == 0 && p->ldw >= p->k && p->ldw - p->k < 8 &&
         (p->c % 8 != 0 || p->ldw == p->k) && p->sh >= 1 && p->sw >= 1 && p->dh >= 1 && p->dw >= 1 &&
         p->m_out >= 1 && p->act >= RI_CU_ACT_NONE && p->act <= RI_CU_ACT_HSWISH && p->n >= 0 && p->oh >= 0 &&
         p->ow >= 0 && (int64_t)p->n * p->oh * p->ow <= INT32_MAX / 2 &&
         (int64_t)p->n * p->ih * p->iw <= INT32_MAX && p->rows_per_img <= INT32_MAX && p->m_out <= 65536;
}

extern "C" int ri__cu_convgemm_tactic_valid(const ri__cu_convgemm_tactic *t) {
  bool tile = (t->bm == 0 && t->bn == 0) || ((t->bm == 64 || t->bm == 128) && (t->bn == 32 || t->bn == 64));
  return tile && t->seg_ktiles >= 0 && t->split >= -1 && t->split <= 1 && (t->pw == 0 || t->pw == 1);
}

extern "C" int ri__cu_convgemm_default_seg(const ri__cu_convgemm_args *p, const ri__cu_splitk *sk) {
  int bm, bn;
  pick_tile(p, &bm, &bn);
  int64_t tiles = tiles_of(p, bm, bn);
  int ktiles = (p->ldw + BK - 1) / BK;
  /* Segments when the tiles fill less than the device and each segment keeps 4 K steps or more; no more
   * than the split-K workspace holds at this geometry. */
  if (!sk || sk->sms < 1 || tiles < 1 || tiles >= sk->sms || ktiles < 8 || tiles > sk->n_counters) return 0;
  int64_t want = (2 * sk->sms + tiles - 1) / tiles, most = ktiles / 4;
  int64_t fit =
      (int64_t)(sk->ws_bytes / ((size_t)tiles * (size_t)frag4_of(bm, bn) * THREADS * sizeof(float4)));
  int64_t sp = want < most ? want : most;
  if (sp > fit) sp = fit;
  if (sp > MAX_SPLITS) sp = MAX_SPLITS;
  if (sp < 2) return 0;
  int per = (int)((ktiles + sp - 1) / sp);
  return per >= ktiles ? 0 : per;
}

extern "C" cudaError_t ri__cu_convgemm_tac(cudaStream_t s, const ri__cu_convgemm_args *p,
                                           const ri__cu_convgemm_tactic *t, const void *x, const void *w,
                                           const float *bias, const void *res, void *y,
                                           const ri__cu_splitk *sk) {
  if (!ri__cu_convgemm_supported(p) || p->rows_per_img < 1 || p->ldy < p->m_out ||
      (res && p->ldr < p->m_out) || (uintptr_t)x % 2 || (uintptr_t)w % 16 || (uintptr_t)y % 16 ||
      (uintptr_t)bias % 16 || (uintptr_t)res % 16 || (p->c % 8 == 0 && (uintptr_t)x % 16) ||
      (t && !ri__cu_convgemm_tactic_valid(t)))
    return cudaErrorInvalidValue;
  if ((int64_t)p->n * p->oh * p->ow <= 0) return cudaSuccess;
  if (t && t->pw) /* the pointwise kernel sums K in one segment */
    return t->seg_ktiles == 0 || t->seg_ktiles >= (p->ldw + BK - 1) / BK
               ? ri__cu_pwconv(s, p, x, w, bias, res, y)
               : cudaErrorInvalidValue;
  int bm = t ? t->bm : 0, bn = t ? t->bn : 0, per = t ? t->seg_ktiles : ri__cu_convgemm_default_seg(p, sk);
  int split = t ? t->split : -1;
  if (bm == 0) pick_tile(p, &bm, &bn);
  if (p->c % 8 != 0) return launch_mode<A_SCALAR>(s, p, x, w, bias, res, y, sk, bm, bn, per, split);
  bool k1 = p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 && p->pad_t == 0 && p->pad_l == 0 &&
            p->ih == p->oh && p->iw == p->ow;
  return k1 ? launch_mode<A_K1>(s, p, x, w, bias, res, y, sk, bm, bn, per, split)
            : launch_mode<A_VEC>(s, p, x, w, bias, res, y, sk, bm, bn, per, split);
}

extern "C" cudaError_t ri__cu_convgemm(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x,
                                       const void *w, const float *bias, const void *res, void *y,
                                       const ri__cu_splitk *sk) {
  return ri__cu_convgemm_tac(s, p, NULL, x, w, bias, res, y, sk);
}
