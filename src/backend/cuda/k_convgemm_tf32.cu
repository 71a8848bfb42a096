/* Convolution as an implicit GEMM in fp32 on the tensor cores with 3xTF32, for fp32 engines in NHWC: the
 * arguments, weights and epilogue of k_convgemm_f32.cu (its FFMA twin), at about fp32 accuracy.
 *
 * 3xTF32: TF32 keeps 10 of fp32's 23 mantissa bits, too few for the fp32 engines' 1e-4 contract. Each
 * operand x is split into big = tf32(x) (cvt.rna: rounded to nearest, ties away) and small = tf32(x - big)
 * (x - big is exact in fp32 and at most 2^-11 |x|), and a product a * b is summed as a_small * b_big +
 * a_big * b_small + a_big * b_big, three mma.sync m16n8k8 TF32 multiplies with fp32 accumulation. What is
 * lost is a_small * b_small and small's own rounding, both near 2^-22 of the product: the error is of the
 * order of fp32 summation's, orders of magnitude inside the contract.
 *
 * The GEMM: rows are output pixels (n, oy, ox), columns output channels, K = kh * kw * c. A block of
 * WARPS_M x WARPS_N warps computes a BM x BN tile, each warp (BM / WARPS_M) x (BN / WARPS_N) as m16n8
 * pieces. K goes in 16-deep slices through a 4-stage cp.async pipeline in dynamic shared memory: A as
 * [BM][16 + 4] floats (row m, its k contiguous: the fragment reads of a warp, rows g and columns t,
 * hit 32 distinct banks), B as [16][BN + 8] (weight rows as stored: [k][n]). A is gathered in 16-byte
 * chunks of 4 channels of one tap of one pixel (c % 4 == 0; zero outside the padded input) or in 4-byte
 * elements for other channel counts; B in 16-byte chunks of 4 output channels. The split into big and
 * small happens on the fragments, after the shared-memory reads.
 *
 * Summation order and batch invariance: each output's sum runs over k in 8-deep steps in increasing order,
 * three multiplies per step in the order above, starting from zero, in segments of `per` 16-deep slices (0:
 * one segment) whose sums are added in order from zero, as in k_convgemm_f32.cu: in one block (SEGD) or in
 * separate blocks whose partials the shared fix-up adds (cu_convgemm_f32.cuh). An mma's output element
 * depends only on its row of A, its column of B and its accumulator, so neither the tile shape nor the
 * batch changes a bit; only the segment length does, which the caller fixes per node. The sums differ from
 * the FFMA kernel's, so a node uses one of the two for every batch (cuda_tactics.h). */
#include <atomic>

#include "backend/cuda/cu_convgemm_f32.cuh"
#include "backend/cuda/cu_mma.cuh"

namespace {

using namespace ri_cu_f32;
using namespace ri_cu_mma;

constexpr int BK = 16;
constexpr int LDA = BK + 4; /* floats per A row in shared memory */
constexpr int STAGES = 4;
constexpr int MAX_DEVICES = 64;

enum { A_VEC = 0, A_K1 = 1, A_SCALAR = 2 };

/* 4-byte asynchronous copy global -> shared (the gather of channel counts that are not multiples of 4);
 * src_bytes 0 writes a zero. */
__device__ __forceinline__ void cp4(void *dst, const void *src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(src_bytes));
}

__device__ __forceinline__ unsigned to_tf32(float x) {
  unsigned r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}

/* big = tf32(x), small = tf32(x - big). */
__device__ __forceinline__ void split(float x, unsigned &big, unsigned &small) {
  big = to_tf32(x);
  small = to_tf32(x - __uint_as_float(big));
}

/* c (4 floats of an m16n8 tile) += a (m16k8, 4 registers) * b (k8n8, 2 registers), TF32 inputs. */
__device__ __forceinline__ void mma1688(float *c, const unsigned *a, const unsigned *b) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
               "{%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <int BM, int BN> constexpr size_t smem_bytes() {
  return (size_t)STAGES * (BM * LDA + BK * (BN + 8)) * sizeof(float);
}

/* Blocks are numbered split fastest, then N tile, so that the blocks sharing an A tile run together.
 * splits > 1: block ks of a tile sums segment ks (per slices) and writes its partial; splits == 1: the
 * block sums all of K, in segments of per slices when SEGD, and runs the epilogue. */
template <int BM, int BN, int WARPS_M, int WARPS_N, int MODE, bool SEGD>
__global__ void __launch_bounds__(WARPS_M *WARPS_N * 32)
    tf32_kernel(const ri__cu_convgemm_args p, const float *__restrict__ x, const float *__restrict__ w,
                const float *__restrict__ bias, const float *__restrict__ res, float *__restrict__ y,
                float *__restrict__ ws, const int splits, const int per) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  constexpr int THREADS = WARPS_M * WARPS_N * 32, LDB = BN + 8;
  constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N, MI = WM / 16, NI = WN / 8;
  constexpr int A_PER_T = BM * (BK / 4) / THREADS, B_CH = BK * (BN / 4), B_PER_T = B_CH / THREADS;
  static_assert(WM % 16 == 0 && WN % 8 == 0 && A_PER_T >= 1 && BM * (BK / 4) == A_PER_T * THREADS &&
                    B_PER_T >= 1 && B_CH == B_PER_T * THREADS,
                "tile shape");
  extern __shared__ __align__(16) float smem[];
  auto As = reinterpret_cast<float(*)[BM][LDA]>(smem);
  auto Bs = reinterpret_cast<float(*)[BK][LDB]>(smem + STAGES * BM * LDA);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp % WARPS_M, wn = warp / WARPS_M;
  const int n_tiles = (p.m_out + BN - 1) / BN;
  const int tile = (int)(blockIdx.x / splits), ks = (int)(blockIdx.x % splits);
  const int m0 = (tile / n_tiles) * BM, n0 = (tile % n_tiles) * BN;
  const int M = p.n * p.oh * p.ow, K = p.k;
  const int kc = (tid & 3) * 4; /* this thread's 4-float chunk of an A row within a slice */

  /* Per A row of this thread: the image base pointer (the row itself for A_K1) and the window's top-left
   * input coordinate. */
  const float *a_base[A_PER_T];
  int a_iy[A_PER_T], a_ix[A_PER_T];
  bool a_ok[A_PER_T];
#pragma unroll
  for (int i = 0; i < A_PER_T; i++) {
    const int m = m0 + (tid >> 2) + i * (THREADS / 4);
    a_ok[i] = m < M;
    const int mm = a_ok[i] ? m : 0;
    if (MODE == A_K1) {
      a_base[i] = x + (int64_t)mm * p.c;
      a_iy[i] = a_ix[i] = 0;
    } else {
      const int ox = mm % p.ow, q = mm / p.ow;
      const int oy = q % p.oh, b = q / p.oh;
      a_base[i] = x + (int64_t)b * p.ih * p.iw * p.c;
      a_iy[i] = oy * p.sh - p.pad_t;
      a_ix[i] = ox * p.sw - p.pad_l;
    }
  }

  auto load_tile = [&](int stage, int k0) {
    const int k = k0 + kc;
    if (MODE == A_SCALAR) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int ke = k + e, tap = ke / p.c, ci = ke - tap * p.c, ky = tap / p.kw, kx = tap - ky * p.kw;
#pragma unroll
        for (int i = 0; i < A_PER_T; i++) {
          const int iy = a_iy[i] + ky * p.dh, ix = a_ix[i] + kx * p.dw;
          const bool ok = a_ok[i] && ke < K && iy >= 0 && iy < p.ih && ix >= 0 && ix < p.iw;
          cp4(&As[stage][(tid >> 2) + i * (THREADS / 4)][kc + e],
              ok ? a_base[i] + ((int64_t)iy * p.iw + ix) * p.c + ci : x, ok ? 4 : 0);
        }
      }
    } else {
      int ky = 0, kx = 0, ci = k;
      if (MODE != A_K1) {
        const int tap = k / p.c;
        ci = k - tap * p.c;
        ky = tap / p.kw;
        kx = tap - ky * p.kw;
      }
#pragma unroll
      for (int i = 0; i < A_PER_T; i++) {
        bool ok = a_ok[i] && k < K;
        const float *src = x;
        if (MODE == A_K1) {
          if (ok) src = a_base[i] + k;
        } else {
          const int iy = a_iy[i] + ky * p.dh, ix = a_ix[i] + kx * p.dw;
          ok = ok && iy >= 0 && iy < p.ih && ix >= 0 && ix < p.iw;
          if (ok) src = a_base[i] + ((int64_t)iy * p.iw + ix) * p.c + ci;
        }
        cp16(&As[stage][(tid >> 2) + i * (THREADS / 4)][kc], src, ok ? 16 : 0);
      }
    }
#pragma unroll
    for (int i = 0; i < B_PER_T; i++) {
      const int q = tid + i * THREADS, kr = q / (BN / 4), nc = (q % (BN / 4)) * 4;
      const bool ok = k0 + kr < K && n0 + nc < p.ldw;
      cp16(&Bs[stage][kr][nc], ok ? w + (int64_t)(k0 + kr) * p.ldw + n0 + nc : w, ok ? 16 : 0);
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

  const int ktiles_all = (K + BK - 1) / BK;
  const int kt0 = splits > 1 ? (ks * per < ktiles_all ? ks * per : ktiles_all) : 0;
  const int ktiles = splits > 1 ? (kt0 + per < ktiles_all ? kt0 + per : ktiles_all) - kt0 : ktiles_all;
  const int g = lane >> 2, t4 = lane & 3;
  int seg_left = per;
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < ktiles) load_tile(s, (kt0 + s) * BK);
    cp_commit();
  }
  for (int kt = 0; kt < ktiles; kt++) {
    cp_wait<STAGES - 2>();
    __syncthreads();
    const int nk = kt + STAGES - 1;
    if (nk < ktiles) load_tile(nk % STAGES, (kt0 + nk) * BK);
    cp_commit();
    const int st = kt % STAGES;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      unsigned bb[NI][2], bsm[NI][2];
#pragma unroll
      for (int j = 0; j < NI; j++) {
        const int c = wn * WN + j * 8 + g;
        split(Bs[st][kk + t4][c], bb[j][0], bsm[j][0]);
        split(Bs[st][kk + t4 + 4][c], bb[j][1], bsm[j][1]);
      }
#pragma unroll
      for (int i = 0; i < MI; i++) {
        const int r = wm * WM + i * 16 + g;
        unsigned ab[4], asm_[4];
        split(As[st][r][kk + t4], ab[0], asm_[0]);
        split(As[st][r + 8][kk + t4], ab[1], asm_[1]);
        split(As[st][r][kk + t4 + 4], ab[2], asm_[2]);
        split(As[st][r + 8][kk + t4 + 4], ab[3], asm_[3]);
#pragma unroll
        for (int j = 0; j < NI; j++) {
          mma1688(acc[i][j], asm_, bb[j]);
          mma1688(acc[i][j], ab, bsm[j]);
          mma1688(acc[i][j], ab, bb[j]);
        }
      }
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
              tot[i][j][e] = tot[i][j][e] + acc[i][j][e];
              acc[i][j][e] = 0.f;
            }
      }
    }
  }
  cp_wait<0>();
  (void)seg_left;
  if constexpr (SEGD) {
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
      for (int j = 0; j < NI; j++)
#pragma unroll
        for (int e = 0; e < 4; e++)
          acc[i][j][e] = tot[i][j][e];
  }

  /* Thread (g, t4) holds rows g and g + 8 of each m16 piece, columns 2 t4 and 2 t4 + 1 of each n8 piece. */
  const bool vec = p.ldy % 2 == 0 && p.y_off % 2 == 0 && p.y_img_stride % 2 == 0;
#pragma unroll
  for (int i = 0; i < MI; i++) {
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int m = m0 + wm * WM + i * 16 + g + h * 8;
      if (m >= M) continue;
      if (splits > 1) {
        float *wp = ws + ((int64_t)ks * M + m) * p.m_out;
#pragma unroll
        for (int j = 0; j < NI; j++) {
          const int n = n0 + wn * WN + j * 8 + t4 * 2;
          if (n < p.m_out) wp[n] = acc[i][j][2 * h];
          if (n + 1 < p.m_out) wp[n + 1] = acc[i][j][2 * h + 1];
        }
        continue;
      }
      float *yr = y + out_row(p, m);
#pragma unroll
      for (int j = 0; j < NI; j++) {
        const int n = n0 + wn * WN + j * 8 + t4 * 2;
        if (n >= p.m_out) continue;
        const float v0 = finish(p, acc[i][j][2 * h], m, n, bias, res);
        if (n + 1 < p.m_out) {
          const float v1 = finish(p, acc[i][j][2 * h + 1], m, n + 1, bias, res);
          if (vec) {
            *(float2 *)(yr + n) = make_float2(v0, v1);
          } else {
            yr[n] = v0;
            yr[n + 1] = v1;
          }
        } else {
          yr[n] = v0;
        }
      }
    }
  }
}

/* Tile ids of the tactics (cuda_tactics.h, kind 2), with their warp grids: 128x128 (2x4 warps of 64x32),
 * 128x64 (2x2 of 64x32), 64x64 (2x2 of 32x32), 128x32 (4x1 of 32x32). */
struct tile_shape {
  int bm, bn;
};
constexpr tile_shape TILES[4] = {{128, 128}, {128, 64}, {64, 64}, {128, 32}};

void pick_tile(const ri__cu_convgemm_args *p, int *bm, int *bn) {
  int64_t M = (int64_t)p->n * p->oh * p->ow;
  if (p->m_out <= 32) {
    *bm = 128, *bn = 32;
  } else if (p->m_out <= 64) {
    *bm = 128, *bn = 64;
  } else {
    bool big = (M + 127) / 128 * ((p->m_out + 127) / 128) >= 264;
    *bm = big ? 128 : 64;
    *bn = big ? 128 : 64;
  }
}

int64_t tiles_of(const ri__cu_convgemm_args *p, int bm, int bn) {
  int64_t M = (int64_t)p->n * p->oh * p->ow;
  return (M + bm - 1) / bm * ((p->m_out + bn - 1) / bn);
}

/* The opt-in shared memory of an instantiation, set once per device (the first launch at a batch size is
 * not captured into a graph, cuda_backend.c, so this never runs during a capture). */
template <typename F> cudaError_t allow_smem(F *kern, size_t bytes, std::atomic<int> *done) {
  int dev = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return e;
  const bool cached = dev >= 0 && dev < MAX_DEVICES;
  if (cached && done[dev].load()) return cudaSuccess;
  e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
  if (e == cudaSuccess && cached) done[dev].store(1);
  return e;
}

template <int BM, int BN, int WM_, int WN_, int MODE, bool SEGD>
cudaError_t launch_k(cudaStream_t s, const ri__cu_convgemm_args *p, const float *x, const float *w,
                     const float *b, const float *r, float *y, float *ws, int splits, int per,
                     int64_t tiles) {
  static std::atomic<int> done[MAX_DEVICES];
  constexpr size_t smem = smem_bytes<BM, BN>();
  cudaError_t e = allow_smem(tf32_kernel<BM, BN, WM_, WN_, MODE, SEGD>, smem, done);
  if (e != cudaSuccess) return e;
  ri_cu_launch(tf32_kernel<BM, BN, WM_, WN_, MODE, SEGD>, (unsigned)(tiles * splits), WM_ * WN_ * 32, smem, s,
               *p, x, w, b, r, y, ws, splits, per);
  return ri_cu_launched();
}

template <int BM, int BN, int WM_, int WN_, int MODE>
cudaError_t launch_tile(cudaStream_t s, const ri__cu_convgemm_args *p, const float *x, const float *w,
                        const float *b, const float *r, float *y, const ri__cu_splitk *sk, int per,
                        int split) {
  int64_t tiles = tiles_of(p, BM, BN);
  int ktiles = (p->k + BK - 1) / BK;
  if (per < 1 || per >= ktiles)
    return launch_k<BM, BN, WM_, WN_, MODE, false>(s, p, x, w, b, r, y, nullptr, 1, ktiles, tiles);
  int nseg = (ktiles + per - 1) / per;
  bool fits = split_fits(p, sk, nseg);
  /* Automatic: separate blocks when the tiles alone fill less than the device. */
  bool use_split = fits && (split > 0 || (split < 0 && tiles < (sk ? sk->sms : 0)));
  if (!use_split) return launch_k<BM, BN, WM_, WN_, MODE, true>(s, p, x, w, b, r, y, nullptr, 1, per, tiles);
  float *ws = (float *)sk->ws;
  cudaError_t e = launch_k<BM, BN, WM_, WN_, MODE, false>(s, p, x, w, b, r, y, ws, nseg, per, tiles);
  return e != cudaSuccess ? e : fixup(s, p, ws, nseg, b, r, y);
}

template <int MODE>
cudaError_t launch_mode(cudaStream_t s, const ri__cu_convgemm_args *p, const float *x, const float *w,
                        const float *b, const float *r, float *y, const ri__cu_splitk *sk, int bm, int bn,
                        int per, int split) {
  if (bm == 128 && bn == 128) return launch_tile<128, 128, 2, 4, MODE>(s, p, x, w, b, r, y, sk, per, split);
  if (bm == 128 && bn == 64) return launch_tile<128, 64, 2, 2, MODE>(s, p, x, w, b, r, y, sk, per, split);
  if (bm == 128 && bn == 32) return launch_tile<128, 32, 4, 1, MODE>(s, p, x, w, b, r, y, sk, per, split);
  return launch_tile<64, 64, 2, 2, MODE>(s, p, x, w, b, r, y, sk, per, split);
}

} // namespace

extern "C" void ri__cu_convgemm_tf32_tile(int id, int *bm, int *bn) {
  *bm = TILES[id & 3].bm;
  *bn = TILES[id & 3].bn;
}

extern "C" int ri__cu_convgemm_tf32_supported(const ri__cu_convgemm_args *p) {
  return ri__cu_convgemm_f32_supported(p);
}

extern "C" int ri__cu_convgemm_tf32_tactic_valid(const ri__cu_convgemm_tactic *t) {
  bool tile = t->bm == 0 && t->bn == 0;
  for (int i = 0; i < 4; i++)
    tile = tile || (t->bm == TILES[i].bm && t->bn == TILES[i].bn);
  return tile && !t->pw && t->seg_ktiles >= 0 && t->split >= -1 && t->split <= 1;
}

extern "C" cudaError_t ri__cu_convgemm_tf32_tac(cudaStream_t s, const ri__cu_convgemm_args *p,
                                                const ri__cu_convgemm_tactic *t, const void *x, const void *w,
                                                const float *bias, const void *res, void *y,
                                                const ri__cu_splitk *sk) {
  if (!ri__cu_convgemm_tf32_supported(p) || p->rows_per_img < 1 || p->ldy < p->m_out ||
      (res && p->ldr < p->m_out) || (uintptr_t)x % 4 || (uintptr_t)w % 16 || (uintptr_t)y % 16 ||
      (uintptr_t)bias % 4 || (uintptr_t)res % 16 || (p->c % 4 == 0 && (uintptr_t)x % 16) ||
      (t && !ri__cu_convgemm_tf32_tactic_valid(t)))
    return cudaErrorInvalidValue;
  if ((int64_t)p->n * p->oh * p->ow <= 0) return cudaSuccess;
  int bm = t ? t->bm : 0, bn = t ? t->bn : 0;
  int per = t ? t->seg_ktiles : ri__cu_convgemm_f32_default_seg(p, sk), split = t ? t->split : -1;
  if (bm == 0) pick_tile(p, &bm, &bn);
  const float *xf = (const float *)x, *wf = (const float *)w, *rf = (const float *)res;
  float *yf = (float *)y;
  if (p->c % 4 != 0) return launch_mode<A_SCALAR>(s, p, xf, wf, bias, rf, yf, sk, bm, bn, per, split);
  bool k1 = p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 && p->pad_t == 0 && p->pad_l == 0 &&
            p->ih == p->oh && p->iw == p->ow;
  return k1 ? launch_mode<A_K1>(s, p, xf, wf, bias, rf, yf, sk, bm, bn, per, split)
            : launch_mode<A_VEC>(s, p, xf, wf, bias, rf, yf, sk, bm, bn, per, split);
}
