/* The fused inverted-residual block (contract in irblock.h).
 *
 * A block of 256 threads (8 warps) computes a TH x TW tile of output pixels of one image, all output
 * channels. It loads the input pixels under the tile's depthwise windows (the halo: (TH - 1) * s + 3 by
 * (TW - 1) * s + 3 pixels, zero outside the image) into shared memory once, then walks the expanded
 * channels in chunks of CE = 32:
 *   1. expand: the halo pixels' chunk of E = x * w1^T on the tensor cores (rows are halo pixels, K = cin),
 *      bias, activation, one rounding to half, 0 for pixels outside the image, into shared memory;
 *   2. depthwise: the tile's chunk of D from E in float (weights held as floats: no conversion per tap),
 *      bias, activation, half, into shared memory; a thread takes 4 channels of one pixel, so 8 threads
 *      read one pixel's 32 channels, contiguous;
 *   3. project: the tile's float accumulators += D * w2^T (rows are output pixels, K = the chunk), in
 *      registers across chunks.
 * The next chunk's weights (and, without expansion, its E, read straight from x) arrive through cp.async
 * while a chunk is computed. After the last chunk: bias, residual, activation in float, one rounding, half2
 * stores. Tiles are 8x8, or 4x4 when 8x8 tiles would leave multiprocessors idle (batch 1 on small maps);
 * either tile computes every element the same way. Whether a halo row lies inside the image is worked out
 * once per tile into a byte table, so the expansion's epilogue does no division per element. */
#include <atomic>

#include "backend/cuda/cu_common.cuh"
#include "backend/cuda/cu_mma.cuh"
#include "backend/cuda/irblock.h"

namespace {

constexpr int CE = RI__CU_IRB_CE;
constexpr int LDE = CE + 8; /* halves per row of E, D and the w2 chunk: conflict-free ldmatrix */
constexpr int THREADS = 256;
constexpr int WARPS = THREADS / 32;
constexpr int64_t SMEM_MAX = 200 * 1024;

using namespace ri_cu_mma;

/* Shared-memory plan of one tile shape, in halves: x halo (with expansion), two w1 chunks, E (two chunks
 * without expansion), D, two w2 chunks, two chunks of the small parameters (b1, bd and the depthwise
 * weights [9][CE], all floats), the halo rows' flags (with expansion: 1 inside the image, 0 outside, 2
 * padding row; bytes). Every part is a multiple of 8 halves, so every part is 16-byte aligned. */
constexpr int PAR = (2 * CE * 4 + 9 * CE * 4) / 2; /* halves of one chunk's small parameters */
struct plan {
  int hh, hw, hp, hpp, ldx;
  int64_t xs, w1s, es, ds, w2s, par, fl, total; /* offsets and total, halves */
};

__host__ __device__ inline plan make_plan(int th, int tw, const ri__cu_irblock_args &p) {
  plan q;
  const bool expand = p.cin > 0;
  q.hh = (th - 1) * p.stride + 3;
  q.hw = (tw - 1) * p.stride + 3;
  q.hp = q.hh * q.hw;
  q.hpp = (q.hp + 15) / 16 * 16;
  q.ldx = p.k1p + 8;
  q.xs = 0;
  q.w1s = q.xs + (expand ? (int64_t)q.hpp * q.ldx : 0);
  q.es = q.w1s + (expand ? 2 * (int64_t)CE * q.ldx : 0);
  q.ds = q.es + (int64_t)(expand ? 1 : 2) * q.hp * LDE;
  q.w2s = q.ds + (int64_t)th * tw * LDE;
  q.par = q.w2s + 2 * (int64_t)p.cop * LDE;
  q.fl = q.par + 2 * PAR;
  q.total = q.fl + (expand ? (q.hpp + 15) / 16 * 8 : 0);
  return q;
}

/* Chunks per group: the projection sums each group of chunks from zero and adds the groups' sums in
 * order, whether one block runs every group or each group runs in its own block (small grids). A function
 * of the expanded channels and p.groups only, so the sums are the same for every batch and tile. */
__host__ __device__ inline int group_chunks(const ri__cu_irblock_args &p) {
  const int nchunks = p.cep / CE, g = p.groups > 0 ? p.groups : 8;
  return (nchunks + g - 1) / g;
}

/* Activation with a fast path for the clamps (relu, clip). */
struct act_fn {
  int act;
  bool clamp;
  float a, b, lo, hi;
  __device__ act_fn(int k, float ka, float kb)
      : act(k), clamp(k == RI_CU_ACT_RELU || k == RI_CU_ACT_CLIP), a(ka), b(kb),
        lo(k == RI_CU_ACT_RELU ? 0.f : ka), hi(k == RI_CU_ACT_RELU ? INFINITY : kb) {}
  __device__ __forceinline__ float operator()(float x) const {
    if (clamp) return fminf(fmaxf(x, lo), hi);
    return act == RI_CU_ACT_NONE ? x : ri_act(act, a, b, x);
  }
};

/* Blocks are numbered group fastest (splits = 1: one block per tile runs every group; splits = the group
 * count: one group per block, the partial sums meet in ws, and the last block of a tile adds them in group
 * order and stores). */
template <int TH, int TW, bool EXP, int IPW>
__global__ void __launch_bounds__(THREADS)
    irblock_kernel(const ri__cu_irblock_args p, const __half *__restrict__ x, const ri__cu_irblock_weights wt,
                   const __half *__restrict__ res, __half *__restrict__ y, float4 *__restrict__ ws,
                   int *__restrict__ counters, const int splits) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  constexpr int M = TH * TW, MT = M / 16, F4 = IPW * 2;
  static_assert(M % 16 == 0, "tile rows");
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __shared__ int s_last;
  const plan q = make_plan(TH, TW, p);
  __half *const sm = reinterpret_cast<__half *>(smem_raw);
  __half *const Xs = sm + q.xs, *const W1s = sm + q.w1s, *const Es = sm + q.es, *const Ds = sm + q.ds,
                *const W2s = sm + q.w2s, *const Ps = sm + q.par;
  unsigned char *const Fl = reinterpret_cast<unsigned char *>(sm + q.fl);
  const __half *const w1 = static_cast<const __half *>(wt.w1);
  const float *const wd = wt.wd;
  const __half *const w2 = static_cast<const __half *>(wt.w2);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t4 = lane & 3;
  const int s = p.stride, hw = q.hw, hp = q.hp, ldx = q.ldx;
  const int tiles_x = (p.ow + TW - 1) / TW, tiles_y = (p.oh + TH - 1) / TH;
  const int tile = (int)(blockIdx.x / splits), part = (int)(blockIdx.x % splits);
  const int tx = tile % tiles_x, ty = (tile / tiles_x) % tiles_y, b = tile / tiles_x / tiles_y;
  const int oy0 = ty * TH, ox0 = tx * TW;
  const int iy0 = oy0 * s - p.pad_t, ix0 = ox0 * s - p.pad_l;
  const int cx = EXP ? p.cin : p.ce; /* channels of x */
  const __half *const xb = x + (int64_t)b * p.ih * p.iw * cx;
  const int nchunks = p.cep / CE, gs = group_chunks(p);
  const int c0 = splits > 1 ? part * gs : 0;
  const int c1 = splits > 1 ? min(c0 + gs, nchunks) : nchunks;
  const act_fn act0(p.act[0], p.act_a[0], p.act_b[0]), act1(p.act[1], p.act_a[1], p.act_b[1]);
  const act_fn act2(p.act[2], p.act_a[2], p.act_b[2]);

  /* Chunk j's weights and small parameters (and, without expansion, its E) into buffer bf. */
  auto load_chunk = [&](int j, int bf) {
    if (EXP) {
      const int k8 = p.k1p / 8;
      __half *dst = W1s + bf * CE * ldx;
      const __half *src = w1 + (int64_t)j * CE * p.k1p;
      for (int i = tid; i < CE * k8; i += THREADS) {
        const int r = i / k8, c = i - r * k8;
        cp16(dst + r * ldx + c * 8, src + (int64_t)r * p.k1p + c * 8, 16);
      }
    } else {
      __half *dst = Es + bf * hp * LDE;
      for (int i = tid; i < hp * (CE / 8); i += THREADS) {
        const int r = i >> 2, c = i & 3, ch = j * CE + c * 8;
        const int hy = r / hw, hx = r - hy * hw, iy = iy0 + hy, ix = ix0 + hx;
        const bool ok = ch < p.ce && iy >= 0 && iy < p.ih && ix >= 0 && ix < p.iw;
        cp16(dst + r * LDE + c * 8, ok ? xb + ((int64_t)iy * p.iw + ix) * cx + ch : x, ok ? 16 : 0);
      }
    }
    __half *dst = W2s + bf * p.cop * LDE;
    for (int i = tid; i < p.cop * (CE / 8); i += THREADS) {
      const int r = i >> 2, c = i & 3;
      cp16(dst + r * LDE + c * 8, w2 + (int64_t)r * p.cep + j * CE + c * 8, 16);
    }
    /* Small parameters: b1 (8 chunks of 16 bytes), bd (8), depthwise weights (9 x 8). */
    char *pd = reinterpret_cast<char *>(Ps + bf * PAR);
    if (tid < 8) {
      if (EXP) cp16(pd + tid * 16, wt.b1 + j * CE + tid * 4, 16);
    } else if (tid < 16) {
      cp16(pd + CE * 4 + (tid - 8) * 16, wt.bd + j * CE + (tid - 8) * 4, 16);
    } else if (tid < 16 + 72) {
      const int t = (tid - 16) >> 3, c = (tid - 16) & 7;
      cp16(pd + CE * 8 + t * CE * 4 + c * 16, wd + (int64_t)t * p.cep + j * CE + c * 4, 16);
    }
  };

  if (EXP) {
    const int k8 = p.k1p / 8;
    for (int i = tid; i < q.hpp * k8; i += THREADS) {
      const int r = i / k8, c = i - r * k8;
      const int hy = r / hw, hx = r - hy * hw, iy = iy0 + hy, ix = ix0 + hx;
      const bool ok = r < hp && c * 8 < p.cin && iy >= 0 && iy < p.ih && ix >= 0 && ix < p.iw;
      cp16(Xs + r * ldx + c * 8, ok ? xb + ((int64_t)iy * p.iw + ix) * cx + c * 8 : x, ok ? 16 : 0);
    }
    for (int r = tid; r < q.hpp; r += THREADS) {
      const int hy = r / hw, hx = r - hy * hw, iy = iy0 + hy, ix = ix0 + hx;
      Fl[r] = r >= hp ? 2 : (iy >= 0 && iy < p.ih && ix >= 0 && ix < p.iw);
    }
  }
  load_chunk(c0, 0);
  cp_commit();

  const int items = MT * (p.cop / 16); /* project work: (m16 tile, 16 output channels) pairs */
  float acc[IPW][2][4], tot[IPW][2][4];
#pragma unroll
  for (int i = 0; i < IPW; i++)
#pragma unroll
    for (int h = 0; h < 2; h++)
#pragma unroll
      for (int e = 0; e < 4; e++)
        acc[i][h][e] = tot[i][h][e] = 0.f;

  for (int j = c0; j < c1; j++) {
    const int bf = (j - c0) & 1;
    cp_wait<0>();
    __syncthreads(); /* chunk j is in; every warp has finished chunk j - 1 */
    if (j + 1 < c1) load_chunk(j + 1, bf ^ 1);
    cp_commit();
    const float *Pb1 = reinterpret_cast<const float *>(Ps + bf * PAR);
    const float *Pbd = Pb1 + CE;
    const float *Pwd = Pbd + CE;
    const __half *E = Es;
    if (EXP) {
      /* 1. expand: items are (m16 tile of halo rows, 16 expanded channels). */
      const __half *W1 = W1s + bf * CE * ldx;
      const int items1 = (q.hpp / 16) * 2;
      for (int it = warp; it < items1; it += WARPS) {
        const int mt = it >> 1, ng = it & 1;
        float c[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
        for (int kk = 0; kk < p.k1p; kk += 16) {
          unsigned a[4], b0, b1, b2, b3;
          ldsm_x4(a[0], a[1], a[2], a[3], Xs + (mt * 16 + (lane & 15)) * ldx + kk + (lane >> 4) * 8);
          ldsm_x4(b0, b1, b2, b3,
                  W1 + (ng * 16 + (lane & 7) + ((lane >> 4) << 3)) * ldx + kk + ((lane >> 3) & 1) * 8);
          mma16816(c[0], a, b0, b1);
          mma16816(c[1], a, b2, b3);
        }
        const float2 bias[2] = {*reinterpret_cast<const float2 *>(Pb1 + ng * 16 + t4 * 2),
                                *reinterpret_cast<const float2 *>(Pb1 + ng * 16 + 8 + t4 * 2)};
#pragma unroll
        for (int h = 0; h < 2; h++) {
          const int r = mt * 16 + g + h * 8, f = Fl[r];
          if (f == 2) continue;
#pragma unroll
          for (int n8 = 0; n8 < 2; n8++) {
            const int col = ng * 16 + n8 * 8 + t4 * 2;
            float v0 = 0.f, v1 = 0.f;
            if (f) {
              v0 = act0(c[n8][2 * h] + bias[n8].x);
              v1 = act0(c[n8][2 * h + 1] + bias[n8].y);
            }
            *reinterpret_cast<__half2 *>(Es + r * LDE + col) = __floats2half2_rn(v0, v1);
          }
        }
      }
      __syncthreads();
    } else {
      E = Es + bf * hp * LDE;
    }
    /* 2. depthwise: items are (output pixel, 4 channels), 8-byte loads of E and 16-byte loads of the float
     * weights, float sums in tap order. */
    for (int it = tid; it < M * (CE / 4); it += THREADS) {
      const int o = it & 7, m = it >> 3;
      const int qy = m / TW, qx = m - qy * TW;
      const __half *src = E + (qy * s * hw + qx * s) * LDE + o * 4;
      float a[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int ky = 0; ky < 3; ky++)
#pragma unroll
        for (int kx = 0; kx < 3; kx++) {
          const uint2 ev = *reinterpret_cast<const uint2 *>(src + (ky * hw + kx) * LDE);
          const float4 wv = *reinterpret_cast<const float4 *>(Pwd + (ky * 3 + kx) * CE + o * 4);
          const float2 e0 = __half22float2(*reinterpret_cast<const __half2 *>(&ev.x));
          const float2 e1 = __half22float2(*reinterpret_cast<const __half2 *>(&ev.y));
          a[0] = fmaf(e0.x, wv.x, a[0]);
          a[1] = fmaf(e0.y, wv.y, a[1]);
          a[2] = fmaf(e1.x, wv.z, a[2]);
          a[3] = fmaf(e1.y, wv.w, a[3]);
        }
      const float4 bv = *reinterpret_cast<const float4 *>(Pbd + o * 4);
      const __half2 o0 = __floats2half2_rn(act1(a[0] + bv.x), act1(a[1] + bv.y));
      const __half2 o1 = __floats2half2_rn(act1(a[2] + bv.z), act1(a[3] + bv.w));
      uint2 out;
      out.x = *reinterpret_cast<const unsigned *>(&o0);
      out.y = *reinterpret_cast<const unsigned *>(&o1);
      *reinterpret_cast<uint2 *>(Ds + m * LDE + o * 4) = out;
    }
    __syncthreads();
    /* 3. project: this warp's items accumulate across the chunks of a group. */
    const __half *W2 = W2s + bf * p.cop * LDE;
#pragma unroll
    for (int i = 0; i < IPW; i++) {
      const int it = warp + i * WARPS;
      if (it >= items) break;
      const int mt = it % MT, ng = it / MT;
#pragma unroll
      for (int kk = 0; kk < CE; kk += 16) {
        unsigned a[4], b0, b1, b2, b3;
        ldsm_x4(a[0], a[1], a[2], a[3], Ds + (mt * 16 + (lane & 15)) * LDE + kk + (lane >> 4) * 8);
        ldsm_x4(b0, b1, b2, b3,
                W2 + (ng * 16 + (lane & 7) + ((lane >> 4) << 3)) * LDE + kk + ((lane >> 3) & 1) * 8);
        mma16816(acc[i][0], a, b0, b1);
        mma16816(acc[i][1], a, b2, b3);
      }
    }
    if ((j + 1) % gs == 0 || j + 1 == nchunks) { /* the end of a group */
#pragma unroll
      for (int i = 0; i < IPW; i++)
#pragma unroll
        for (int h = 0; h < 2; h++)
#pragma unroll
          for (int e = 0; e < 4; e++) {
            tot[i][h][e] += acc[i][h][e];
            acc[i][h][e] = 0.f;
          }
    }
  }
  cp_wait<0>();

  if (splits > 1) {
    /* This group's sum (tot = 0 + the group's sum) into the workspace: [tile][group][F4][THREADS]. */
    float4 *mine = ws + ((int64_t)tile * splits + part) * F4 * THREADS + tid;
#pragma unroll
    for (int i = 0; i < IPW; i++)
#pragma unroll
      for (int h = 0; h < 2; h++)
        mine[(i * 2 + h) * THREADS] = make_float4(tot[i][h][0], tot[i][h][1], tot[i][h][2], tot[i][h][3]);
    __threadfence();
    __syncthreads();
    if (tid == 0) s_last = atomicAdd(&counters[tile], 1) == splits - 1;
    __syncthreads();
    if (!s_last) return;
    __threadfence();
    const float4 *all = ws + (int64_t)tile * splits * F4 * THREADS + tid;
#pragma unroll
    for (int i = 0; i < IPW; i++)
#pragma unroll
      for (int h = 0; h < 2; h++)
        tot[i][h][0] = tot[i][h][1] = tot[i][h][2] = tot[i][h][3] = 0.f;
    for (int sp = 0; sp < splits; sp++)
#pragma unroll
      for (int i = 0; i < IPW; i++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
          const float4 v = __ldcg(&all[((int64_t)sp * F4 + i * 2 + h) * THREADS]);
          tot[i][h][0] += v.x, tot[i][h][1] += v.y, tot[i][h][2] += v.z, tot[i][h][3] += v.w;
        }
    if (tid == 0) counters[tile] = 0;
  }

  /* Epilogue: thread (g, t4) holds rows g and g + 8 of its m16 tile, columns 2 t4 and 2 t4 + 1 of each n8
   * tile. */
#pragma unroll
  for (int i = 0; i < IPW; i++) {
    const int it = warp + i * WARPS;
    if (it >= items) break;
    const int mt = it % MT, ng = it / MT;
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int m = mt * 16 + g + h * 8, qy = m / TW, qx = m - qy * TW;
      const int oy = oy0 + qy, ox = ox0 + qx;
      if (oy >= p.oh || ox >= p.ow) continue;
      const int64_t base = (((int64_t)b * p.oh + oy) * p.ow + ox) * p.cout;
#pragma unroll
      for (int n8 = 0; n8 < 2; n8++) {
        const int col = ng * 16 + n8 * 8 + t4 * 2;
        if (col >= p.cout) continue;
        float v0 = tot[i][n8][2 * h] + wt.b2[col], v1 = tot[i][n8][2 * h + 1] + wt.b2[col + 1];
        if (res) {
          const float2 r2 = __half22float2(*reinterpret_cast<const __half2 *>(res + base + col));
          v0 += r2.x;
          v1 += r2.y;
        }
        *reinterpret_cast<__half2 *>(y + base + col) = __floats2half2_rn(act2(v0), act2(v1));
      }
    }
  }
}

/* 1 when the argument fields are in the kernel's range (pointers not looked at). */
bool args_ok(const ri__cu_irblock_args &p) {
  const bool expand = p.cin > 0;
  if (p.n < 0 || p.ih < 1 || p.iw < 1 || p.oh < 1 || p.ow < 1 || p.ce < 8 || p.ce % 8 || p.cout < 8 ||
      p.cout % 8 || p.cin < 0 || p.cin % 8)
    return false;
  if (p.cep != (p.ce + CE - 1) / CE * CE || p.cop != (p.cout + 15) / 16 * 16 || p.cop > 320) return false;
  if (expand ? p.k1p != (p.cin + 15) / 16 * 16 : p.k1p != 0) return false;
  if (p.stride != 1 && p.stride != 2) return false;
  if (p.groups < 0 || p.groups > 64) return false;
  if (p.pad_t < 0 || p.pad_l < 0 || p.pad_t > 2 || p.pad_l > 2) return false;
  /* The output size is that of a 3x3 window with these pads: bottom / right pads in [0, 2]. */
  const int64_t pb = ((int64_t)p.oh - 1) * p.stride + 3 - p.ih - p.pad_t;
  const int64_t pr = ((int64_t)p.ow - 1) * p.stride + 3 - p.iw - p.pad_l;
  if (pb < 0 || pb > 2 || pr < 0 || pr > 2) return false;
  for (int k = 0; k < 3; k++)
    if (p.act[k] < RI_CU_ACT_NONE || p.act[k] > RI_CU_ACT_HSWISH) return false;
  const int64_t cx = expand ? p.cin : p.ce;
  if ((int64_t)p.ih * p.iw * cx > INT32_MAX || (int64_t)p.oh * p.ow * p.cout > INT32_MAX) return false;
  const int64_t tiles = (int64_t)((p.oh + 3) / 4) * ((p.ow + 3) / 4);
  if (tiles * p.n > INT32_MAX) return false;
  return true;
}

int64_t smem_bytes(int th, int tw, const ri__cu_irblock_args &p) { return make_plan(th, tw, p).total * 2; }

template <int TH, int TW, bool EXP, int IPW>
cudaError_t launch(cudaStream_t s, const ri__cu_irblock_args &p, const __half *x,
                   const ri__cu_irblock_weights &w, const __half *res, __half *y, const ri__cu_splitk *sk) {
  const int64_t bytes = smem_bytes(TH, TW, p);
  auto kern = irblock_kernel<TH, TW, EXP, IPW>;
  /* The shared-memory limit is raised to SMEM_MAX once per device (a bit per device below 64), on the
   * first launch, which is eager: a graph capture never makes the call. */
  static std::atomic<unsigned long long> raised{0};
  int dev = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return e;
  const unsigned long long bit = dev < 64 ? 1ull << dev : 0;
  if (!bit || !(raised.load() & bit)) {
    e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)SMEM_MAX);
    if (e != cudaSuccess) return e;
    raised.fetch_or(bit);
  }
  const int64_t tiles = (int64_t)((p.oh + TH - 1) / TH) * ((p.ow + TW - 1) / TW) * p.n;
  /* One group per block when the tiles alone give fewer blocks than multiprocessors and the resources
   * allow. */
  const int nchunks = p.cep / CE, gs = group_chunks(p), groups = (nchunks + gs - 1) / gs;
  int splits = 1;
  const size_t part_bytes = (size_t)IPW * 2 * THREADS * sizeof(float4);
  if (sk && sk->ws && sk->counters && groups > 1 && tiles < sk->sms && tiles <= sk->n_counters &&
      (size_t)(tiles * groups) * part_bytes <= sk->ws_bytes)
    splits = groups;
  float4 *ws = splits > 1 ? static_cast<float4 *>(sk->ws) : nullptr;
  int *cnt = splits > 1 ? sk->counters : nullptr;
  ri_cu_launch(kern, (unsigned)(tiles * splits), THREADS, (size_t)bytes, s, p, x, w, res, y, ws, cnt, splits);
  return ri_cu_launched();
}

template <int TH, int TW, bool EXP>
cudaError_t launch_ipw(cudaStream_t s, const ri__cu_irblock_args &p, const __half *x,
                       const ri__cu_irblock_weights &w, const __half *res, __half *y,
                       const ri__cu_splitk *sk) {
  const int items = (TH * TW / 16) * (p.cop / 16), ipw = (items + WARPS - 1) / WARPS;
  if (ipw <= 1) return launch<TH, TW, EXP, 1>(s, p, x, w, res, y, sk);
  if (ipw <= 2) return launch<TH, TW, EXP, 2>(s, p, x, w, res, y, sk);
  if (ipw <= 3) return launch<TH, TW, EXP, 3>(s, p, x, w, res, y, sk);
  if (ipw <= 5) return launch<TH, TW, EXP, 5>(s, p, x, w, res, y, sk);
  return launch<TH, TW, EXP, 10>(s, p, x, w, res, y, sk);
}

template <bool EXP>
cudaError_t launch_tile(cudaStream_t s, const ri__cu_irblock_args &p, const __half *x,
                        const ri__cu_irblock_weights &w, const __half *res, __half *y,
                        const ri__cu_splitk *sk) {
  /* 8x8 tiles when they give every multiprocessor a block; else 4x4 (more blocks, more halo work). */
  const int64_t big = (int64_t)((p.oh + 7) / 8) * ((p.ow + 7) / 8) * p.n;
  if (big >= p.sms) return launch_ipw<8, 8, EXP>(s, p, x, w, res, y, sk);
  return launch_ipw<4, 4, EXP>(s, p, x, w, res, y, sk);
}

} // namespace

extern "C" int64_t ri__cu_irblock_smem(const ri__cu_irblock_args *p) {
  if (!args_ok(*p)) return -1;
  const int64_t a = smem_bytes(8, 8, *p), b = smem_bytes(4, 4, *p), m = a > b ? a : b;
  return m <= SMEM_MAX ? m : -1;
}

extern "C" cudaError_t ri__cu_irblock(cudaStream_t s, const ri__cu_irblock_args *p, const void *x,
                                      const ri__cu_irblock_weights *w, const void *res, void *y,
                                      const ri__cu_splitk *sk) {
  const bool expand = p->cin > 0;
  if (ri__cu_irblock_smem(p) < 0 || !x || !y || !w->wd || !w->bd || !w->w2 || !w->b2 ||
      (expand && (!w->w1 || !w->b1)) || (uintptr_t)x % 16 || (uintptr_t)y % 16 || (uintptr_t)res % 16 ||
      (uintptr_t)w->w1 % 16 || (uintptr_t)w->b1 % 16 || (uintptr_t)w->wd % 16 || (uintptr_t)w->bd % 16 ||
      (uintptr_t)w->w2 % 16 || (sk && sk->ws && (uintptr_t)sk->ws % 16))
    return cudaErrorInvalidValue;
  if (p->n == 0) return cudaSuccess;
  const __half *xh = static_cast<const __half *>(x), *rh = static_cast<const __half *>(res);
  __half *yh = static_cast<__half *>(y);
  return expand ? launch_tile<true>(s, *p, xh, *w, rh, yh, sk)
                : launch_tile<false>(s, *p, xh, *w, rh, yh, sk);
}
