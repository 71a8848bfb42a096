/* The tensor-core arithmetic of the RGB stem, shared by variant 3 (k_stemconv_tc.cu, which describes it) and
 * variant 4 (k_stemconv_tcp.cu): the (hi, lo) half split of an input value, the weight fragments a lane keeps
 * in registers, and a warp's tiles of one band (fragments, the two passes of mma.sync, bias, activation,
 * half stores). Both kernels run these same instructions on the same staged pairs, so their outputs are the
 * same bits; they differ only in how a band's input window reaches shared memory. A window is staged as 3
 * channels x nr rows of `pitch` words, window column 0 at word `shift` of its row. Included only by those
 * two files. */
#ifndef RI_BACKEND_CUDA_CU_STEM_TC_CUH
#define RI_BACKEND_CUDA_CU_STEM_TC_CUH

#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cu_mma.cuh"

namespace ri_cu_stem_tc {

constexpr int WARPS = 8; /* warps per block of both kernels */

__device__ __forceinline__ uint32_t split_half2(float v) {
  const __half hi = __float2half_rn(v);
  const __half lo = __float2half_rn(v - __half2float(hi));
  __half2 h = __halves2half2(hi, lo); /* low 16 bits: hi (even k), high: lo (odd k) */
  return *reinterpret_cast<uint32_t *>(&h);
}

__device__ __forceinline__ uint32_t pack_half2(__half lo16, __half hi16) {
  __half2 h = __halves2half2(lo16, hi16);
  return *reinterpret_cast<uint32_t *>(&h);
}

/* A lane's weight fragments: pass 1 (w_hi, w_hi) per chunk c, n tile j, half s; pass 2 (w_lo, w_lo of
 * chunks 2c', 2c' + 1); and the staged offset of each pass-1 slot's tap from a pixel's window (-1: none). */
struct frags {
  uint32_t b1[4][4][2], b2[2][4][2];
  int ro[4][2];
};

__device__ __forceinline__ void load_frags(const ri__cu_stemconv_args &p, const float *__restrict__ w, int nr,
                                           int pitch, frags &f) {
  const int lane = (int)threadIdx.x & 31, gq = lane >> 2, t = lane & 3;
  __half wl[4][4][2];
#pragma unroll
  for (int c = 0; c < 4; c++)
#pragma unroll
    for (int s = 0; s < 2; s++) {
      const int r = 2 * c + s;
      const bool ok = t < 3 || r < 3;
      const int ci = t < 3 ? r / 3 : 2, ky = t < 3 ? r % 3 : 2, kx = t < 3 ? t : r;
      f.ro[c][s] = ok ? (ci * nr + ky * p.dh) * pitch + kx * p.dw : -1;
      const int kk = (ky * 3 + kx) * 3 + ci;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int ch = 8 * (gq >> 1) + 2 * j + (gq & 1);
        const float wv = ok && ch < p.m ? __ldg(&w[kk * p.m + ch]) : 0.f;
        const __half hi = __float2half_rn(wv);
        wl[c][j][s] = __float2half_rn(wv - __half2float(hi));
        f.b1[c][j][s] = pack_half2(hi, hi);
      }
    }
#pragma unroll
  for (int c = 0; c < 2; c++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int s = 0; s < 2; s++)
        f.b2[c][j][s] = pack_half2(wl[2 * c][j][s], wl[2 * c + 1][j][s]);
}

/* Whether a launch may run the tiles' ReLU6 epilogue on packed halves (band_tiles' h2): the clip
 * [act_a, act_b] with act_a +0 and act_b > 0 exactly a half, unless RI_CUDA_STEM_H2EPI=0 (the float clip
 * everywhere, for A/B runs). The same bits either way: see band_tiles. */
inline int h2_clip(const ri__cu_stemconv_args *p) {
  const char *e = getenv("RI_CUDA_STEM_H2EPI"); /* read at every launch: the tests switch it */
  if ((e && e[0] == '0' && e[1] == 0) || p->act != RI_CU_ACT_CLIP) return 0;
  uint32_t abits;
  memcpy(&abits, &p->act_a, 4);
  const float b = p->act_b;
  return abits == 0u && b > 0.f && __half2float(__float2half_rn(b)) == b;
}

/* Whether an image's outputs (oh x ow x m) are within int32 elements: variants 3 and 4 apply only then,
 * so that band_tiles addresses a tile's pixels by 32-bit offsets from the band's origin. */
inline int out_fits32(const ri__cu_stemconv_args *p) { return (int64_t)p->oh * p->ow * p->m <= INT32_MAX; }

/* One 32-bit word of two output halves as a 16-bit store's operand: the low half (e even) or the high. */
__device__ __forceinline__ unsigned short half_of(uint32_t w, int e) {
  return (unsigned short)(e & 1 ? w >> 16 : w & 0xffffu);
}

/* yb + o as one wide multiply-add (the compiler's own sum took four instructions a pixel), and global
 * stores through it (a plain store through an asm's pointer would be a generic one). */
__device__ __forceinline__ __half *out_at(__half *yb, int o) {
  __half *r;
  asm("mad.wide.s32 %0, %1, 2, %2;" : "=l"(r) : "r"(o), "l"(yb));
  return r;
}
__device__ __forceinline__ void st_out8(__half *yp, const uint32_t o[4]) {
  asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(yp), "r"(o[0]), "r"(o[1]), "r"(o[2]),
               "r"(o[3])
               : "memory");
}
__device__ __forceinline__ void st_out1(__half *yp, unsigned short h) {
  asm volatile("st.global.b16 [%0], %1;" ::"l"(yp), "h"(h) : "memory");
}

/* This warp's tiles of the band of `rows` x `cols` outputs at (b, oy0, ox0) from its staged window xs (bs:
 * the 32 biases, zero beyond m). h2 (h2_clip of the launch): the ReLU6 clip on the packed halves, 3
 * instructions per pair instead of a compare-and-select chain per value. It gives the float clip's bits:
 * rounding to half is monotonic and 0 and act_b are halves, so clip(round(v)) == round(clip(v)) for
 * every non-NaN v, with these signs of zero: the float clip maps v < 0 to +0 and keeps v == +0 and
 * v == -0; the integer max of the halves as signed 16-bit pairs with 0 maps every half with its sign bit
 * set (negative, -0) to +0. v = acc + bias is -0 only when the bias is -0, so a lane with a -0 among its
 * 8 biases takes the float clip (and with it its warp). NaN: v, an FADD result, is the canonical 0x7fffffff,
 * which both paths store as the half 0x7fff (F2FP, then min.NaN's canonical NaN; the integer max keeps it,
 * positive). */
__device__ __forceinline__ void band_tiles(const ri__cu_stemconv_args &p, const frags &f, const uint32_t *xs,
                                           int pitch, int shift, const float *bs, int b, int oy0, int ox0,
                                           int rows, int cols, int h2, __half *__restrict__ y) {
  const int warp = (int)threadIdx.x >> 5, lane = (int)threadIdx.x & 31, gq = lane >> 2, t = lane & 3;
  const bool vec = p.m % 8 == 0, live = 8 * t < p.m;
  float bv[8];
  *(float4 *)&bv[0] = *(const float4 *)&bs[8 * t];
  *(float4 *)&bv[4] = *(const float4 *)&bs[8 * t + 4];
  bool nz = true;
#pragma unroll
  for (int e = 0; e < 8; e++)
    nz = nz && __float_as_uint(bv[e]) != 0x80000000u;
  /* decided once per warp (every lane is here): a vote, which the compiler does not redo in every tile
   * as it did the 8 compares */
  const int h2w = h2 && __all_sync(0xffffffffu, nz) ? 1 : 0;
  const __half2 hb = __float2half2_rn(p.act_b);
  /* this lane's channels at the band's first output; a tile's pixels are offsets from it */
  __half *const yb = y + (((int64_t)b * p.oh + oy0) * p.ow + ox0) * p.m + 8 * t;
  /* tiles warp, warp + WARPS, ... of the band's rows x ntx, walked without a division per tile */
  const int ntx = (cols + 15) >> 4, dy = WARPS / ntx, dx = WARPS - dy * ntx;
  for (int ty = warp / ntx, tx = warp - ty * ntx; ty < rows;
       ty += dy, tx += dx, ty += tx >= ntx, tx -= tx >= ntx ? ntx : 0) {
    const int oxa = tx * 16 + gq, oxb = oxa + 8;
    /* pixels past the band's last column read its window (finite values) and are not stored */
    const int pa = ty * p.sh * pitch + min(oxa, cols - 1) * p.sw + shift,
              pb = ty * p.sh * pitch + min(oxb, cols - 1) * p.sw + shift;
    float acc[4][4];
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int q = 0; q < 4; q++)
        acc[j][q] = 0.f;
#pragma unroll
    for (int cp = 0; cp < 2; cp++) {
      uint32_t a[2][4], a2[4];
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int c = 2 * cp + h;
        a[h][0] = f.ro[c][0] >= 0 ? xs[pa + f.ro[c][0]] : 0u;
        a[h][1] = f.ro[c][0] >= 0 ? xs[pb + f.ro[c][0]] : 0u;
        a[h][2] = f.ro[c][1] >= 0 ? xs[pa + f.ro[c][1]] : 0u;
        a[h][3] = f.ro[c][1] >= 0 ? xs[pb + f.ro[c][1]] : 0u;
      }
#pragma unroll
      for (int q = 0; q < 4; q++)
        a2[q] = __byte_perm(a[0][q], a[1][q], 0x5410); /* the hi halves of both chunks */
#pragma unroll
      for (int j = 0; j < 4; j++)
        ri_cu_mma::mma16816(acc[j], a2, f.b2[cp][j][0], f.b2[cp][j][1]);
#pragma unroll
      for (int h = 0; h < 2; h++)
#pragma unroll
        for (int j = 0; j < 4; j++)
          ri_cu_mma::mma16816(acc[j], a[h], f.b1[2 * cp + h][j][0], f.b1[2 * cp + h][j][1]);
    }
    if (!live) continue;
    float v[2][8];
#pragma unroll
    for (int px = 0; px < 2; px++)
#pragma unroll
      for (int j = 0; j < 4; j++)
#pragma unroll
        for (int e = 0; e < 2; e++)
          v[px][2 * j + e] = acc[j][2 * px + e] + bv[2 * j + e];
    uint32_t o[2][4]; /* the output halves, channels (2e, 2e + 1) of pixel px in o[px][e] */
    if (h2w) {
#pragma unroll
      for (int px = 0; px < 2; px++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          __half2 h = __hmin2_nan(__floats2half2_rn(v[px][2 * e], v[px][2 * e + 1]), hb);
          o[px][e] = __vmaxs2(*reinterpret_cast<uint32_t *>(&h), 0u);
        }
    } else {
      /* the activation chosen once per tile (ReLU6, the usual stem, inline) */
      if (p.act == RI_CU_ACT_CLIP) {
#pragma unroll
        for (int q = 0; q < 16; q++) {
          const float u = v[q / 8][q % 8];
          v[q / 8][q % 8] = u < p.act_a ? p.act_a : (u > p.act_b ? p.act_b : u);
        }
      } else if (p.act != RI_CU_ACT_NONE) {
#pragma unroll
        for (int q = 0; q < 16; q++)
          v[q / 8][q % 8] = ri_act(p.act, p.act_a, p.act_b, v[q / 8][q % 8]);
      }
#pragma unroll
      for (int px = 0; px < 2; px++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          __half2 h = __floats2half2_rn(v[px][2 * e], v[px][2 * e + 1]);
          o[px][e] = *reinterpret_cast<uint32_t *>(&h);
        }
    }
#pragma unroll
    for (int px = 0; px < 2; px++) {
      const int ox = tx * 16 + gq + 8 * px;
      if (ox >= cols) continue;
      __half *yp = out_at(yb, (ty * p.ow + ox) * p.m); /* within an image: out_fits32 */
      if (vec) {
        st_out8(yp, o[px]);
      } else {
#pragma unroll
        for (int e = 0; e < 8; e++)
          if (8 * t + e < p.m) st_out1(yp + e, half_of(o[px][e / 2], e));
      }
    }
  }
}

} // namespace ri_cu_stem_tc

#endif
