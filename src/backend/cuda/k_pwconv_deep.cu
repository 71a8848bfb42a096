/* Pointwise convolution, deep form: the layers of ri__cu_pwconv_v with few output channels (N <= 64) and
 * deep K (160 < K <= 1280), or with a float32 output (any K <= 1280): SSD MobileNet v2's box-encoder
 * predictors (576 / 1280 / 512 / 256 / 128 -> 12 or 24 channels, written as float32 slices of the model's
 * concatenated [N, 1917, 4] output, misaligned) and the 192 -> 32 / 384 -> 64 projections of its middle
 * blocks. The tiled GEMM runs the box predictors at three times their DRAM floor at large batches (one N tile
 * of 12 or 24 channels, 32-deep K steps through a 3-stage pipeline of 128-row tiles, K segments).
 *
 * Layout: the whole weight matrix (N x K, N padded to 16, 32 or 64 rows, zero-padded) and the bias stay in
 * shared memory for the block's life. Blocks are persistent; each warp works alone on tiles of 16 output
 * rows (pixels) x all N columns, striding over the tiles with the other warps of the grid, like the first
 * form (k_pwconv.cu). A tile's K is streamed in chunks of 64 channels (16 rows x 128 bytes): the warp's
 * items are (tile, chunk) pairs in order, and a ring of S stages of them (S = 2 .. 8, planned from the
 * shared memory left) is kept in flight through cp.async (cu_pw_common.cuh's ring over the item index), so
 * no block-wide barrier is needed after the weights are in. The accumulators live across a tile's chunks.
 *
 * Bits: each accumulator starts from +0 and takes the k16 steps in order (4 per full chunk, the last chunk's
 * columns past K zero-filled), then the tiled kernel's all-zero k16 step when K % 32 is 1..16 (zero
 * registers); the epilogue is the same float sequence (bias, residual, activation, one rounding to half,
 * widened when the output is float32): the bits of gemm_nhwc_f16 with one K segment, so the tuner may pick it
 * per batch bucket ("pw" tile at seg 0) without changing any output bit.
 *
 * Epilogue: stmatrix puts the warp's 16 x N half tile in its own staging rows; then 16-byte chunks (8
 * channels of a pixel, two float4 for float32) where the output's pitch keeps them aligned, else element
 * stores with consecutive lanes on consecutive channels (a box slice of 12 channels is 48 contiguous bytes
 * a pixel, 361 pixels an image). RI_CUDA_PW_DEEP=0 (read once per process) turns the form off: the shapes it
 * alone takes are then refused by ri__cu_pwconv_supported (A/B comparisons). */
#include <atomic>
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
constexpr int ROWS = 16;       /* output rows of a warp tile */
constexpr int CK = 64;         /* K channels of a chunk */
constexpr int LDA = CK + 8;    /* ring row stride (halves; conflict-free ldmatrix) */
constexpr int MAX_N = 64;      /* output channels */
constexpr int MAX_K = 1280;    /* input channels */
constexpr int SHALLOW_K = 160; /* the first forms' K limit (k_pwconv.cu) */
constexpr int MAX_STAGES = 8;
constexpr int MAX_DEVICES = 64;

struct pwd_geo {
  int kp;     /* K rounded up to 16 */
  int ldk;    /* kp + 8: weight row stride */
  int nch;    /* chunks of CK covering kp */
  int zstep;  /* 1 when the tiled kernel adds an all-zero k16 step (K % 32 in 1..16) */
  int stages; /* S */
};

static __host__ __device__ int ldc_of(int nt) { return nt * 8 + 8; }

static size_t smem_of(int nt, const pwd_geo &g) {
  const size_t wb = (size_t)nt * 8 * g.ldk * 2 + (size_t)nt * 8 * 4;
  const size_t per_warp = (size_t)g.stages * ROWS * LDA * 2 + (size_t)ROWS * ldc_of(nt) * 2;
  return wb + WARPS * per_warp;
}

/* NT: n8 tiles covering N (even, for stmatrix.x4); TY: the output's type (half or float). */
template <int NT, typename TY>
__global__ void __launch_bounds__(THREADS, 2)
    pwd_kernel(const ri__cu_convgemm_args p, const pwd_geo g, const __half *__restrict__ x,
               const __half *__restrict__ w, const float *__restrict__ bias, const __half *__restrict__ res,
               TY *__restrict__ y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  extern __shared__ __align__(128) unsigned char smem[];
  constexpr int NR = NT * 8, LDC = NR + 8;
  const int ldk = g.ldk, S = g.stages, K = p.k, kp = g.kp, nch = g.nch;
  __half *Ws = (__half *)smem;
  float *Bs = (float *)(Ws + (size_t)NR * ldk);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  __half *ring = (__half *)(Bs + NR) + (size_t)warp * (S * ROWS * LDA + ROWS * LDC);
  __half *Cs = ring + S * ROWS * LDA;

  /* Weights (zero beyond m_out rows and ldw columns) and bias; the ring needs no zeros (every column a k16
   * step reads is written by the copies, zero-filled past K and M). */
  ri_cu_pw_weights(Ws, w, p, NR, ldk, tid, THREADS);
  for (int n = tid; n < NR; n += THREADS)
    Bs[n] = bias && n < p.m_out ? bias[n] : 0.f;
  __syncthreads();

  const int M = p.n * p.oh * p.ow;
  const int ntiles = (M + ROWS - 1) / ROWS;
  const int stride = gridDim.x * WARPS;
  const int first = blockIdx.x * WARPS + warp;
  const int mine = first < ntiles ? (ntiles - 1 - first) / stride + 1 : 0;
  const int nitems = mine * nch;

  /* Item i: tile first + (i / nch) stride, chunk i % nch; lane copies 16-byte unit (lane & 7) of rows
   * (lane >> 3) + 4 q, units past kp / 8 not at all, past K zero-filled. */
  const int cu = lane & 7, r0 = lane >> 3;
  auto load = [&](int stage, int item) {
    const int ti = item / nch, c = item - ti * nch, m0 = (first + ti * stride) * ROWS;
    const int k = c * CK + cu * 8;
    if (k >= kp) return;
    __half *dst = ring + stage * ROWS * LDA + cu * 8;
#pragma unroll
    for (int q = 0; q < ROWS / 4; q++) {
      const int r = r0 + 4 * q, m = m0 + r;
      const bool ok = m < M && k < K;
      cp16(dst + r * LDA, ok ? x + (int64_t)m * K + k : x, ok ? 16 : 0);
    }
  };

  ri_cu_pw_ring_fill(S, 0, 1, nitems, load);

  const int g8 = lane >> 2, t4 = lane & 3;
  const bool clampf = p.act == RI_CU_ACT_RELU || p.act == RI_CU_ACT_CLIP;
  const float lo = p.act == RI_CU_ACT_RELU ? 0.f : p.act_a;
  const float hi = p.act == RI_CU_ACT_RELU ? INFINITY : p.act_b;
  const bool dense = p.y_img_stride == p.rows_per_img * p.ldy;
  const bool vec = ri_cu_epi_vec(p);
  float acc[NT][4];
  int st = 0, c = 0, tile = first;
  for (int i = 0; i < nitems; i++) {
    ri_cu_pw_ring_next(S, st, i, 1, nitems, load);
    const __half *A = ring + st * ROWS * LDA;
    if (++st == S) st = 0;
    if (c == 0) {
#pragma unroll
      for (int j = 0; j < NT; j++)
        acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
    }
    const int c0 = c * CK, steps = (kp - c0) / 16;
#pragma unroll
    for (int ks = 0; ks < CK / 16; ks++) {
      if (ks < steps) {
        const int kk = ks * 16;
        unsigned af[4];
        ldsm_x4(af[0], af[1], af[2], af[3], A + (lane & 15) * LDA + kk + (lane >> 4) * 8);
#pragma unroll
        for (int j = 0; j < NT; j += 2) {
          unsigned b0, b1, b2, b3;
          ldsm_x4(b0, b1, b2, b3,
                  Ws + (j * 8 + (lane & 7) + ((lane >> 4) << 3)) * ldk + c0 + kk + ((lane >> 3) & 1) * 8);
          mma16816(acc[j], af, b0, b1);
          mma16816(acc[j + 1], af, b2, b3);
        }
      }
    }
    if (++c < nch) continue;
    c = 0;
    if (g.zstep) {
      const unsigned z[4] = {0u, 0u, 0u, 0u};
#pragma unroll
      for (int j = 0; j < NT; j++)
        mma16816(acc[j], z, 0u, 0u);
    }

    /* Epilogue in registers, as the tiled kernel's: thread (g8, t4) holds rows g8 and g8 + 8, columns
     * 8 j + 2 t4 and + 1. */
    const int m0 = tile * ROWS;
    tile += stride;
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
                   "r"(word[(q0 + 2) / NT][(q0 + 2) % NT]), "r"(word[(q0 + 3) / NT][(q0 + 3) % NT])
                   : "memory");
    }
    __syncwarp();
    if (vec) {
#pragma unroll 2
      for (int q = lane; q < ROWS * NT; q += 32) {
        const int r = q / NT, cc = q - r * NT, m = m0 + r, n = cc * 8;
        if (m >= M || n >= p.m_out) continue;
        ri_cu_epi_store8(y + ri_cu_epi_row(p, m, dense) + p.y_off + n, *(const uint4 *)(Cs + r * LDC + n),
                         true, n, p.m_out);
      }
    } else {
      /* element stores, consecutive lanes on consecutive channels of a row (then the next row) */
      const int rows = M - m0 < ROWS ? M - m0 : ROWS, total = rows * p.m_out;
      for (int q = lane; q < total; q += 32) {
        const int r = q / p.m_out, n = q - r * p.m_out;
        ri_cu_epi_put(y + ri_cu_epi_row(p, m0 + r, dense) + p.y_off + n, Cs[r * LDC + n]);
      }
    }
    __syncwarp(); /* the staging rows are rewritten by the next tile */
  }
  cp_wait<0>();
}

using dev_info = ri_cu_pw_dev;

/* The plan: two blocks per multiprocessor with the deepest ring (S >= 3) that allows it, else one block with
 * the deepest ring that fits (S >= 2); 0 when not even that fits. *blocks_sm: the blocks it expects. */
static int plan(const ri__cu_convgemm_args *p, int nt, const dev_info &d, pwd_geo *g, int *blocks_sm) {
  memset(g, 0, sizeof *g);
  g->kp = (p->k + 15) / 16 * 16;
  g->ldk = g->kp + 8;
  g->nch = (g->kp + CK - 1) / CK;
  g->zstep = (p->ldw + 31) / 32 * 2 - g->kp / 16;
  for (int blocks = 2; blocks >= 1; blocks--)
    for (g->stages = MAX_STAGES; g->stages >= (blocks == 2 ? 3 : 2); g->stages--) {
      const size_t sm = smem_of(nt, *g);
      if (sm <= (size_t)d.optin && (size_t)blocks * (sm + (size_t)d.reserved) <= (size_t)d.smem_sm) {
        *blocks_sm = blocks;
        return 1;
      }
    }
  return 0;
}

template <int NT, typename TY>
cudaError_t launch(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x, const void *w,
                   const float *b, const void *r, void *y, char *desc, size_t desc_n) {
  dev_info d;
  int dev = 0;
  cudaError_t e = ri_cu_pw_query(&d, &dev);
  if (e != cudaSuccess) return e;
  pwd_geo g;
  int blocks_sm = 1;
  if (!plan(p, NT, d, &g, &blocks_sm)) return cudaErrorInvalidValue;
  const size_t smem = smem_of(NT, g);
  /* Per device: the shared-memory limit raised once to the opt-in maximum (the same value for every plan),
   * and the occupancy of the last plan's size cached as (smem << 8 | blocks). */
  static std::atomic<int> raised[MAX_DEVICES];
  static std::atomic<long long> occ_of[MAX_DEVICES];
  const bool cached = dev >= 0 && dev < MAX_DEVICES;
  if (!cached || !raised[dev].load()) {
    e = cudaFuncSetAttribute(pwd_kernel<NT, TY>, cudaFuncAttributeMaxDynamicSharedMemorySize, d.optin);
    if (e == cudaSuccess) /* the whole carveout as shared memory: two blocks of the planned size fit */
      e = cudaFuncSetAttribute(pwd_kernel<NT, TY>, cudaFuncAttributePreferredSharedMemoryCarveout,
                               cudaSharedmemCarveoutMaxShared);
    if (e != cudaSuccess) return e;
    if (cached) raised[dev].store(1);
  }
  const long long packed = cached ? occ_of[dev].load() : 0;
  int occ = 0;
  if (cached && packed >> 8 == (long long)smem) {
    occ = (int)(packed & 255);
  } else {
    e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, pwd_kernel<NT, TY>, THREADS, smem);
    if (e != cudaSuccess) return e;
    if (occ > 255) occ = 255;
    if (cached) occ_of[dev].store((long long)smem << 8 | occ);
  }
  if (occ < 1) return cudaErrorInvalidValue;
  const int64_t M = (int64_t)p->n * p->oh * p->ow, tiles = (M + ROWS - 1) / ROWS;
  int64_t blocks = (tiles + WARPS - 1) / WARPS, most = (int64_t)d.sms * occ;
  if (blocks > most) blocks = most;
  if (desc) {
    cudaFuncAttributes fa;
    e = cudaFuncGetAttributes(&fa, pwd_kernel<NT, TY>);
    if (e != cudaSuccess) return e;
    snprintf(desc, desc_n,
             "deep: N tiles %d, %d chunks of %d, %lld blocks, %d blocks/SM (plan %d), S=%d%s, regs %d, "
             "spill %zu, smem %zu",
             NT, g.nch, CK, (long long)blocks, occ, blocks_sm, g.stages, g.zstep ? ", zero step" : "",
             fa.numRegs, (size_t)fa.localSizeBytes, smem);
    return cudaSuccess;
  }
  ri_cu_launch(pwd_kernel<NT, TY>, (unsigned)blocks, THREADS, smem, s, *p, g, (const __half *)x,
               (const __half *)w, b, (const __half *)r, (TY *)y);
  return ri_cu_launched();
}

template <typename TY>
cudaError_t dispatch_n(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x, const void *w,
                       const float *b, const void *r, void *y, char *desc, size_t desc_n) {
  if (p->m_out <= 16) return launch<2, TY>(s, p, x, w, b, r, y, desc, desc_n);
  if (p->m_out <= 32) return launch<4, TY>(s, p, x, w, b, r, y, desc, desc_n);
  return launch<8, TY>(s, p, x, w, b, r, y, desc, desc_n);
}

cudaError_t dispatch(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x, const void *w,
                     const float *b, const void *r, void *y, char *desc, size_t desc_n) {
  if (!ri__cu_pwconv_deep_supported(p)) return cudaErrorInvalidValue;
  return p->y_f32 ? dispatch_n<float>(s, p, x, w, b, r, y, desc, desc_n)
                  : dispatch_n<__half>(s, p, x, w, b, r, y, desc, desc_n);
}

} // namespace

extern "C" int ri__cu_pwconv_deep_enabled(void) {
  static const int v = [] {
    const char *e = getenv("RI_CUDA_PW_DEEP");
    return !(e && strcmp(e, "0") == 0);
  }();
  return v;
}

extern "C" int ri__cu_pwconv_deep_supported(const ri__cu_convgemm_args *p) {
  return ri__cu_pwconv_deep_enabled() && p->m_out >= 1 && p->m_out <= MAX_N && p->k <= MAX_K &&
         (p->k > SHALLOW_K || p->y_f32);
}

extern "C" cudaError_t ri__cu_pwconv_deep(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x,
                                          const void *w, const float *bias, const void *res, void *y) {
  return dispatch(s, p, x, w, bias, res, y, NULL, 0);
}

extern "C" cudaError_t ri__cu_pwconv_deep_describe(const ri__cu_convgemm_args *p, char *buf, size_t n) {
  if (!buf || n == 0) return cudaErrorInvalidValue;
  return dispatch(0, p, NULL, NULL, NULL, NULL, NULL, buf, n);
}
