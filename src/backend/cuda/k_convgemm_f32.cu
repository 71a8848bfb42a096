/* Convolution as an implicit GEMM in fp32 on the CUDA cores (FFMA), for fp32 engines in NHWC: float NHWC
 * input, float weights [K][ldw] (row k = (ky * kw + kx) * c + ci holds the output channels, zero from m_out
 * to ldw), and the epilogue of the half kernel (bias, optional residual, activation), all in float.
 *
 * Why not the tensor cores: TF32 rounds the operands to 10 mantissa bits, which misses the fp32 engines'
 * 1e-4 contract; FFMA keeps every product and sum in fp32, like the CPU reference. Its tensor-core twin,
 * k_convgemm_tf32.cu, recovers fp32-level accuracy with three TF32 products per product (3xTF32); the
 * tuner gives each node one of the two for every batch (cuda_tactics.h).
 *
 * The GEMM: rows are output pixels (n, oy, ox), columns output channels, K = kh * kw * c. A block of 256
 * threads computes a BM x BN tile, each thread TM x TN outputs held as TM / 4 groups of 4 rows and TN / 4
 * groups of 4 columns, the groups BM / (TM / 4) rows (BN / (TN / 4) columns) apart, so that the shared-
 * memory reads of a warp are float4s of distinct banks or broadcasts. K goes in 16-deep slices through two
 * shared-memory buffers: the next slice is loaded into registers while the current one is multiplied, then
 * stored (A transposed to [k][m]: a warp's 32 threads store 32 consecutive rows of one k, bank-conflict
 * free). A is gathered from the input as float4s of 4 channels of one tap of one pixel (c % 4 == 0; a 1x1
 * stride-1 convolution without pads reads its rows directly), or element by element for other channel
 * counts; B rows are float4s of 4 output channels.
 *
 * Summation order and batch invariance: each output's sum runs over k in increasing order with fmaf,
 * starting from zero, in segments of `per` slices (0: one segment); the segments' sums are added in order,
 * starting from zero. Where the segments run does not change a bit: in one block one after the other
 * (SEGD), or in separate blocks writing float partials to a workspace that a second kernel adds in the same
 * order and finishes with the same epilogue (split K, for geometries whose tiles leave most of the device
 * idle). Neither the tile shape nor the batch changes the order either, so an image's output depends only on
 * the segment length, which the caller fixes per node.
 *
 * Grid: without split K, a launch has as many blocks as the device holds at once, and each goes through
 * the tiles blockIdx.x, + gridDim.x, ...: while it multiplies a tile's last K slice and stores its outputs,
 * the next tile's first slice is on its way. Layers with a small K (16 to 32 input channels at 150x150 and
 * 75x75 in MobileNet v2) have one or two slices per tile, so a block that computes one tile only would
 * wait for its loads with nothing else to do. */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cu_convgemm_f32.cuh"

namespace {

using namespace ri_cu_f32;

constexpr int BK = 16;
constexpr int THREADS = 256;

enum { A_VEC = 0, A_K1 = 1, A_SCALAR = 2 };

template <int BM, int BN, int TM, int TN, int MODE, bool SEGD>
__global__ void __launch_bounds__(THREADS)
    sgemm_kernel(const ri__cu_convgemm_args p, const float *__restrict__ x, const float *__restrict__ w,
                 const float *__restrict__ bias, const float *__restrict__ res, float *__restrict__ y,
                 float *__restrict__ ws, const int splits, const int per) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  constexpr int TX = BN / TN, TY = BM / TM, GM = TM / 4, GN = TN / 4;
  constexpr int A_LD = BM * BK / 4 / THREADS; /* float4 chunks of A per thread */
  constexpr int B_CH = BN * BK / 4, B_LD = (B_CH + THREADS - 1) / THREADS;
  static_assert(TX * TY == THREADS && TM % 4 == 0 && TN % 4 == 0, "thread tile");
  static_assert(A_LD >= 1 && BM * BK / 4 == A_LD * THREADS && THREADS % BM == 0,
                "A load: one row per thread");
  __shared__ __align__(16) float As[2][BK][BM];
  __shared__ __align__(16) float Bs[2][BK][BN];

  const int tid = threadIdx.x, tx = tid % TX, ty = tid / TX;
  const int M = p.n * p.oh * p.ow, K = p.k;
  const int n_tiles = (p.m_out + BN - 1) / BN, total = (M + BM - 1) / BM * n_tiles;
  /* splits > 1: block b computes segment b % splits of tile b / splits. Otherwise the blocks go through the
   * tiles blockIdx.x, + gridDim.x, ..., each loading the next tile's first K slice while it finishes the
   * current one. */
  const int ks = splits > 1 ? (int)(blockIdx.x % splits) : 0;
  const int tile0 = splits > 1 ? (int)(blockIdx.x / splits) : (int)blockIdx.x;
  const int tstep = splits > 1 ? total : (int)gridDim.x;

  /* The tile being loaded: this thread's A row in it (the same for each of its chunks), the window's
   * top-left input coordinate, and the tile's first column. */
  const int ar = tid % BM;
  bool a_ok = false;
  const float *a_base = x;
  int a_iy = 0, a_ix = 0, ln0 = 0;
  auto setup = [&](int t) {
    const int am = (t / n_tiles) * BM + ar;
    ln0 = (t % n_tiles) * BN;
    a_ok = am < M;
    int mm = a_ok ? am : 0;
    if (MODE == A_K1) {
      a_base = x + (int64_t)mm * p.c;
    } else {
      int ox = mm % p.ow, q = mm / p.ow;
      int oy = q % p.oh, b = q / p.oh;
      a_base = x + (int64_t)b * p.ih * p.iw * p.c;
      a_iy = oy * p.sh - p.pad_t;
      a_ix = ox * p.sw - p.pad_l;
    }
  };

  float4 ra[A_LD], rb[B_LD];
  auto load = [&](int k0) {
#pragma unroll
    for (int i = 0; i < A_LD; i++) {
      const int kc = (tid + i * THREADS) / BM; /* chunk of 4 k within the slice */
      const int k = k0 + kc * 4;
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      if (MODE == A_K1) {
        if (a_ok && k < K) v = __ldg((const float4 *)(a_base + k));
      } else if (MODE == A_VEC) {
        if (a_ok && k < K) {
          int tap = k / p.c, ci = k - tap * p.c, ky = tap / p.kw, kx = tap - ky * p.kw;
          int iy = a_iy + ky * p.dh, ix = a_ix + kx * p.dw;
          if (iy >= 0 && iy < p.ih && ix >= 0 && ix < p.iw)
            v = __ldg((const float4 *)(a_base + ((int64_t)iy * p.iw + ix) * p.c + ci));
        }
      } else {
        float e[4];
#pragma unroll
        for (int j = 0; j < 4; j++) {
          int ke = k + j;
          e[j] = 0.f;
          if (!a_ok || ke >= K) continue;
          int tap = ke / p.c, ci = ke - tap * p.c, ky = tap / p.kw, kx = tap - ky * p.kw;
          int iy = a_iy + ky * p.dh, ix = a_ix + kx * p.dw;
          if (iy >= 0 && iy < p.ih && ix >= 0 && ix < p.iw)
            e[j] = __ldg(a_base + ((int64_t)iy * p.iw + ix) * p.c + ci);
        }
        v = make_float4(e[0], e[1], e[2], e[3]);
      }
      ra[i] = v;
    }
#pragma unroll
    for (int i = 0; i < B_LD; i++) {
      const int q = tid + i * THREADS;
      const int kr = q / (BN / 4), nc = (q % (BN / 4)) * 4;
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      if ((B_CH % THREADS == 0 || q < B_CH) && k0 + kr < K && ln0 + nc < p.ldw)
        v = __ldg((const float4 *)(w + (int64_t)(k0 + kr) * p.ldw + ln0 + nc));
      rb[i] = v;
    }
  };
  auto store = [&](int buf) {
#pragma unroll
    for (int i = 0; i < A_LD; i++) {
      const int kc = (tid + i * THREADS) / BM;
      As[buf][kc * 4 + 0][ar] = ra[i].x;
      As[buf][kc * 4 + 1][ar] = ra[i].y;
      As[buf][kc * 4 + 2][ar] = ra[i].z;
      As[buf][kc * 4 + 3][ar] = ra[i].w;
    }
#pragma unroll
    for (int i = 0; i < B_LD; i++) {
      const int q = tid + i * THREADS;
      if (B_CH % THREADS == 0 || q < B_CH) *(float4 *)&Bs[buf][q / (BN / 4)][(q % (BN / 4)) * 4] = rb[i];
    }
  };

  float acc[TM][TN];
  float tot[SEGD ? TM : 1][SEGD ? TN : 1];
  const int ktiles_all = (K + BK - 1) / BK;
  const int kt0 = splits > 1 ? (ks * per < ktiles_all ? ks * per : ktiles_all) : 0;
  const int ktiles = splits > 1 ? (kt0 + per < ktiles_all ? kt0 + per : ktiles_all) - kt0 : ktiles_all;
  const bool vec = p.ldy % 4 == 0 && p.y_off % 4 == 0 && p.y_img_stride % 4 == 0 && (!res || p.ldr % 4 == 0);
  if (tile0 < total && ktiles > 0) {
    setup(tile0);
    load(kt0 * BK);
    store(0);
  }
  __syncthreads();
  int buf = 0;
  for (int tile = tile0; tile < total; tile += tstep) {
    const int m0 = (tile / n_tiles) * BM, n0 = (tile % n_tiles) * BN;
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
      for (int j = 0; j < TN; j++)
        acc[i][j] = 0.f;
    if constexpr (SEGD) {
#pragma unroll
      for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++)
          tot[i][j] = 0.f;
    }
    int seg_left = per;
    for (int kt = 0; kt < ktiles; kt++) {
      /* Prefetch the next step: this tile's next slice, or the next tile's first. */
      bool more = true;
      if (kt + 1 < ktiles) {
        load((kt0 + kt + 1) * BK);
      } else if (tile + tstep < total) {
        setup(tile + tstep);
        load(kt0 * BK);
      } else {
        more = false;
      }
#pragma unroll
      for (int kk = 0; kk < BK; kk++) {
        float a[TM], b[TN];
#pragma unroll
        for (int g = 0; g < GM; g++) {
          float4 v = *(const float4 *)&As[buf][kk][g * (BM / GM) + ty * 4];
          a[g * 4 + 0] = v.x, a[g * 4 + 1] = v.y, a[g * 4 + 2] = v.z, a[g * 4 + 3] = v.w;
        }
#pragma unroll
        for (int g = 0; g < GN; g++) {
          float4 v = *(const float4 *)&Bs[buf][kk][g * (BN / GN) + tx * 4];
          b[g * 4 + 0] = v.x, b[g * 4 + 1] = v.y, b[g * 4 + 2] = v.z, b[g * 4 + 3] = v.w;
        }
#pragma unroll
        for (int i = 0; i < TM; i++)
#pragma unroll
          for (int j = 0; j < TN; j++)
            acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
      }
      if constexpr (SEGD) {
        if (--seg_left == 0 || kt + 1 == ktiles) {
          seg_left = per;
#pragma unroll
          for (int i = 0; i < TM; i++)
#pragma unroll
            for (int j = 0; j < TN; j++) {
              tot[i][j] = tot[i][j] + acc[i][j];
              acc[i][j] = 0.f;
            }
        }
      }
      if (more) store(buf ^ 1);
      __syncthreads();
      buf ^= 1;
    }
    (void)seg_left;
    if constexpr (SEGD) {
#pragma unroll
      for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++)
          acc[i][j] = tot[i][j];
    }

    /* Epilogue from the registers (shared memory is not used: the next tile's slice is already there). */
#pragma unroll
    for (int i = 0; i < TM; i++) {
      const int m = m0 + (i / 4) * (BM / GM) + ty * 4 + (i % 4);
      if (m >= M) continue;
      if (splits > 1) {
        /* Partial of segment ks: [ks][M][m_out] floats. */
        float *wp = ws + ((int64_t)ks * M + m) * p.m_out;
#pragma unroll
        for (int j = 0; j < TN; j++) {
          const int n = n0 + (j / 4) * (BN / GN) + tx * 4 + (j % 4);
          if (n < p.m_out) wp[n] = acc[i][j];
        }
        continue;
      }
      float *yr = y + out_row(p, m);
#pragma unroll
      for (int g = 0; g < GN; g++) {
        const int n = n0 + g * (BN / GN) + tx * 4;
        if (n >= p.m_out) continue;
        float v[4];
#pragma unroll
        for (int e = 0; e < 4; e++)
          v[e] = n + e < p.m_out ? finish(p, acc[i][g * 4 + e], m, n + e, bias, res) : 0.f;
        if (vec && n + 4 <= p.m_out) {
          *(float4 *)(yr + n) = make_float4(v[0], v[1], v[2], v[3]);
        } else {
#pragma unroll
          for (int e = 0; e < 4; e++)
            if (n + e < p.m_out) yr[n + e] = v[e];
        }
      }
    }
  }
}

struct tile_shape {
  int bm, bn;
};
/* Tile ids of the tactics (cuda_tactics.h): 128x128 (8x8 per thread), 128x64 (8x4), 64x64 (4x4),
 * 128x32 (4x4). */
constexpr tile_shape TILES[4] = {{128, 128}, {128, 64}, {64, 64}, {128, 32}};

void pick_tile(const ri__cu_convgemm_args *p, int *bm, int *bn) {
  int64_t M = (int64_t)p->n * p->oh * p->ow;
  if (p->m_out <= 32) {
    *bm = 128, *bn = 32;
  } else if (p->m_out <= 64) {
    *bm = 128, *bn = 64;
  } else {
    *bn = 128;
    *bm = (M + 127) / 128 * ((p->m_out + 127) / 128) >= 264 ? 128 : 64;
    if (*bm == 64) *bn = 64;
  }
}

int64_t tiles_of(const ri__cu_convgemm_args *p, int bm, int bn) {
  int64_t M = (int64_t)p->n * p->oh * p->ow;
  return (M + bm - 1) / bm * ((p->m_out + bn - 1) / bn);
}

/* Blocks of a launch that goes through `tiles` tiles: as many as the device holds at once (each then loads
 * its next tile while finishing one), at most one per tile; one per tile with RI_CUDA_F32_GEMM_GRID=tiles
 * (for comparison: every block computes one tile, as cuDNN-style launches do). */
template <int BM, int BN, int TM, int TN, int MODE, bool SEGD>
unsigned resident_grid(const ri__cu_splitk *sk, int64_t tiles) {
  static int one_per_tile = -1;
  if (one_per_tile < 0) {
    const char *env = getenv("RI_CUDA_F32_GEMM_GRID");
    one_per_tile = env && strcmp(env, "tiles") == 0;
  }
  if (one_per_tile) return (unsigned)tiles;
  static int per_sm = 0; /* blocks per multiprocessor: a property of the kernel, the same on every device */
  if (per_sm <= 0) {
    int nb = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&nb, sgemm_kernel<BM, BN, TM, TN, MODE, SEGD>, THREADS,
                                                      0) != cudaSuccess ||
        nb < 1)
      nb = 1;
    per_sm = nb;
  }
  int sms = sk ? sk->sms : 0;
  if (sms < 1) {
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || sms < 1)
      sms = 1;
  }
  int64_t g = (int64_t)sms * per_sm;
  return (unsigned)(tiles < g ? tiles : g);
}

template <int BM, int BN, int TM, int TN, int MODE>
cudaError_t launch_tile(cudaStream_t s, const ri__cu_convgemm_args *p, const float *x, const float *w,
                        const float *b, const float *r, float *y, const ri__cu_splitk *sk, int per,
                        int split) {
  int64_t tiles = tiles_of(p, BM, BN);
  int ktiles = (p->k + BK - 1) / BK;
  if (per < 1 || per >= ktiles) {
    ri_cu_launch(sgemm_kernel<BM, BN, TM, TN, MODE, false>,
                 resident_grid<BM, BN, TM, TN, MODE, false>(sk, tiles), THREADS, 0, s, *p, x, w, b, r, y,
                 (float *)nullptr, 1, ktiles);
    return ri_cu_launched();
  }
  int nseg = (ktiles + per - 1) / per;
  bool fits = split_fits(p, sk, nseg);
  bool use_split = fits && (split > 0 || (split < 0 && tiles < (sk ? sk->sms : 0)));
  if (!use_split) {
    ri_cu_launch(sgemm_kernel<BM, BN, TM, TN, MODE, true>,
                 resident_grid<BM, BN, TM, TN, MODE, true>(sk, tiles), THREADS, 0, s, *p, x, w, b, r, y,
                 (float *)nullptr, 1, per);
    return ri_cu_launched();
  }
  float *ws = (float *)sk->ws;
  ri_cu_launch(sgemm_kernel<BM, BN, TM, TN, MODE, false>, (unsigned)(tiles * nseg), THREADS, 0, s, *p, x, w,
               b, r, y, ws, nseg, per);
  cudaError_t e = ri_cu_launched();
  if (e != cudaSuccess) return e;
  return fixup(s, p, ws, nseg, b, r, y);
}

template <int MODE>
cudaError_t launch_mode(cudaStream_t s, const ri__cu_convgemm_args *p, const float *x, const float *w,
                        const float *b, const float *r, float *y, const ri__cu_splitk *sk, int bm, int bn,
                        int per, int split) {
  if (bm == 128 && bn == 128) return launch_tile<128, 128, 8, 8, MODE>(s, p, x, w, b, r, y, sk, per, split);
  if (bm == 128 && bn == 64) return launch_tile<128, 64, 8, 4, MODE>(s, p, x, w, b, r, y, sk, per, split);
  if (bm == 128 && bn == 32) return launch_tile<128, 32, 4, 4, MODE>(s, p, x, w, b, r, y, sk, per, split);
  return launch_tile<64, 64, 4, 4, MODE>(s, p, x, w, b, r, y, sk, per, split);
}

} // namespace

extern "C" void ri__cu_convgemm_f32_tile(int id, int *bm, int *bn) {
  *bm = TILES[id & 3].bm;
  *bn = TILES[id & 3].bn;
}

extern "C" int ri__cu_convgemm_f32_supported(const ri__cu_convgemm_args *p) {
  return p->c >= 1 && p->kh >= 1 && p->kw >= 1 && (int64_t)p->kh * p->kw * p->c <= INT32_MAX - BK &&
         p->k == p->kh * p->kw * p->c && p->ldw % 4 == 0 && p->ldw >= p->m_out && p->ldw - p->m_out < 4 &&
         p->sh >= 1 && p->sw >= 1 && p->dh >= 1 && p->dw >= 1 && p->m_out >= 1 && p->act >= RI_CU_ACT_NONE &&
         p->act <= RI_CU_ACT_HSWISH && p->n >= 0 && p->oh >= 0 && p->ow >= 0 &&
         (int64_t)p->n * p->oh * p->ow <= INT32_MAX / 2 && (int64_t)p->n * p->ih * p->iw <= INT32_MAX &&
         p->rows_per_img <= INT32_MAX && p->m_out <= 65536 &&
         (int64_t)p->n * p->oh * p->ow * p->m_out <= INT32_MAX;
}

extern "C" int ri__cu_convgemm_f32_tactic_valid(const ri__cu_convgemm_tactic *t) {
  bool tile = t->bm == 0 && t->bn == 0;
  for (int i = 0; i < 4; i++)
    tile = tile || (t->bm == TILES[i].bm && t->bn == TILES[i].bn);
  /* pw: the pointwise kernel (k_pwconv_f32.cu) in place of the tiles */
  return (tile || t->pw) && t->seg_ktiles >= 0 && t->split >= -1 && t->split <= 1;
}

extern "C" int ri__cu_convgemm_f32_default_seg(const ri__cu_convgemm_args *p, const ri__cu_splitk *sk) {
  int bm, bn;
  pick_tile(p, &bm, &bn);
  int64_t tiles = tiles_of(p, bm, bn);
  int ktiles = (p->k + BK - 1) / BK;
  /* Segments when the tiles fill less than the device and each segment keeps 8 slices or more; no more
   * than the workspace holds at this geometry. */
  if (!sk || sk->sms < 1 || tiles < 1 || tiles >= sk->sms || ktiles < 16) return 0;
  int64_t want = (2 * sk->sms + tiles - 1) / tiles, most = ktiles / 8;
  int64_t rows = (int64_t)p->n * p->oh * p->ow * p->m_out;
  int64_t fit = rows > 0 ? (int64_t)(sk->ws_bytes / ((size_t)rows * sizeof(float))) : 0;
  int64_t sp = want < most ? want : most;
  if (sp > fit) sp = fit;
  if (sp > MAX_SPLITS) sp = MAX_SPLITS;
  if (sp < 2) return 0;
  int per = (int)((ktiles + sp - 1) / sp);
  return per >= ktiles ? 0 : per;
}

extern "C" cudaError_t ri__cu_convgemm_f32_tac(cudaStream_t s, const ri__cu_convgemm_args *p,
                                               const ri__cu_convgemm_tactic *t, const void *x, const void *w,
                                               const float *bias, const void *res, void *y,
                                               const ri__cu_splitk *sk) {
  if (!ri__cu_convgemm_f32_supported(p) || p->rows_per_img < 1 || p->ldy < p->m_out ||
      (res && p->ldr < p->m_out) || (uintptr_t)x % 4 || (uintptr_t)w % 16 || (uintptr_t)y % 16 ||
      (uintptr_t)bias % 4 || (uintptr_t)res % 16 || (p->c % 4 == 0 && (uintptr_t)x % 16) ||
      (t && !ri__cu_convgemm_f32_tactic_valid(t)))
    return cudaErrorInvalidValue;
  if ((int64_t)p->n * p->oh * p->ow <= 0) return cudaSuccess;
  if (t && t->pw)
    return ri__cu_pwconv_f32(s, p, t->seg_ktiles, (const float *)x, (const float *)w, bias,
                             (const float *)res, (float *)y);
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
