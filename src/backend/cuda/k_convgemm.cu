/* Convolution as an implicit GEMM on the tensor cores: half NHWC input, half weights [M, kh, kw, C], float
 * accumulation, and an epilogue in float (bias, optional residual, activation) with one rounding to half.
 *
 * The GEMM: rows are output pixels (n, oy, ox), columns output channels, K = kh * kw * C. A block computes
 * a BM x BN tile with 4 warps (2 x 2), each warp (BM/2) x (BN/2) through mma.sync m16n8k16. Tiles of A
 * (gathered from the input: a 16-byte chunk is 8 channels of one tap of one pixel, zero outside the
 * padded input) and of B (weight rows) go through shared memory in a 3-stage cp.async pipeline, BK = 32
 * halves deep. Rows of shared memory are padded to 40 halves so that ldmatrix reads hit distinct banks. */
#include "backend/cuda/cu_common.cuh"

namespace {

constexpr int BK = 32;
constexpr int LDS = BK + 8; /* halves per shared-memory row */
constexpr int STAGES = 3;
constexpr int THREADS = 128;

__device__ __forceinline__ unsigned smem_u32(const void *p) {
  return (unsigned)__cvta_generic_to_shared(p);
}

/* 16-byte asynchronous copy global -> shared; src_bytes 0 writes zeros. */
__device__ __forceinline__ void cp16(void *dst, const void *src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm_x4(unsigned &r0, unsigned &r1, unsigned &r2, unsigned &r3,
                                        const void *p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(smem_u32(p)));
}

__device__ __forceinline__ void mma16816(float *c, const unsigned *a, unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
               "{%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Ways of gathering A. */
enum { A_VEC = 0, A_K1 = 1, A_SCALAR = 2 };

/* MODE A_K1: a 1x1 convolution with stride 1 and no padding, whose A rows are the input pixels themselves;
 * A_VEC: any window, 16-byte chunks of 8 channels of one tap (c % 8 == 0); A_SCALAR: any window and channel
 * count, 8 elements gathered one by one (the 3-channel image of a first layer).
 * Blocks are numbered with the N tile fastest, so that the blocks sharing an A tile run together and find
 * it in L2. The epilogue stages the float tile in shared memory, then each thread finishes 8 consecutive
 * channels of one pixel (bias, residual, activation, one rounding) and stores them as one 16-byte vector
 * where the output's alignment allows. */
template <int BM, int BN, int MODE>
__global__ void __launch_bounds__(THREADS)
    convgemm_kernel(const ri__cu_convgemm_args p, const __half *__restrict__ x, const __half *__restrict__ w,
                    const float *__restrict__ bias, const __half *__restrict__ res, __half *__restrict__ y) {
  constexpr int WM = BM / 2, WN = BN / 2, MI = WM / 16, NI = WN / 8;
  constexpr int A_PER_T = BM * (BK / 8) / THREADS, B_PER_T = BN * (BK / 8) / THREADS;
  constexpr int A_BYTES = STAGES * BM * LDS * 2, B_BYTES = STAGES * BN * LDS * 2;
  constexpr int C_LD = BN + 4; /* floats per staged output row */
  constexpr int C_BYTES = BM * C_LD * 4;
  constexpr int SMEM = A_BYTES + B_BYTES > C_BYTES ? A_BYTES + B_BYTES : C_BYTES;
  static_assert(NI % 2 == 0 && A_PER_T >= 1 && B_PER_T >= 1, "tile shape");
  __shared__ __align__(128) unsigned char smem[SMEM];
  auto As = reinterpret_cast<__half(*)[BM][LDS]>(smem);
  auto Bs = reinterpret_cast<__half(*)[BN][LDS]>(smem + A_BYTES);
  auto Cs = reinterpret_cast<float(*)[C_LD]>(smem);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp & 1, wn = warp >> 1;
  const int n_tiles = (p.m_out + BN - 1) / BN;
  const int m0 = (int)(blockIdx.x / n_tiles) * BM;
  const int n0 = (int)(blockIdx.x % n_tiles) * BN;
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

  const int ktiles = (p.ldw + BK - 1) / BK;
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < ktiles) load_tile(s, s * BK);
    cp_commit();
  }
  for (int kt = 0; kt < ktiles; kt++) {
    cp_wait<STAGES - 2>();
    __syncthreads();
    int nk = kt + STAGES - 1;
    if (nk < ktiles) load_tile(nk % STAGES, nk * BK);
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
  }
  cp_wait<0>();
  __syncthreads(); /* every warp is done with As / Bs: the staging tile reuses them */

  /* Thread (g = lane / 4, t = lane % 4) holds rows g and g + 8 of each m16 tile, columns 2t and 2t + 1 of
   * each n8 tile. */
  const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int i = 0; i < MI; i++)
#pragma unroll
    for (int j = 0; j < NI; j++)
#pragma unroll
      for (int h = 0; h < 2; h++)
        *(float2 *)&Cs[wm * WM + i * 16 + g + h * 8][wn * WN + j * 8 + t4 * 2] =
            make_float2(acc[i][j][2 * h], acc[i][j][2 * h + 1]);
  __syncthreads();

  const bool dense = p.y_img_stride == p.rows_per_img * p.ldy;
  const bool vec_y = p.ldy % 8 == 0 && p.y_off % 8 == 0 && p.y_img_stride % 8 == 0;
  const bool vec_r = p.ldr % 8 == 0;
  constexpr int CH = BN / 8;
  for (int q = tid; q < BM * CH; q += THREADS) {
    const int r = q / CH, cc = q - r * CH, m = m0 + r, n = n0 + cc * 8;
    if (m >= M || n >= p.m_out) continue;
    const bool full = n + 8 <= p.m_out;
    float v[8];
    const float4 lo4 = *(const float4 *)&Cs[r][cc * 8], hi4 = *(const float4 *)&Cs[r][cc * 8 + 4];
    v[0] = lo4.x, v[1] = lo4.y, v[2] = lo4.z, v[3] = lo4.w, v[4] = hi4.x, v[5] = hi4.y, v[6] = hi4.z, v[7] = hi4.w;
    if (bias) {
      if (full) {
        const float4 b0 = *(const float4 *)(bias + n), b1 = *(const float4 *)(bias + n + 4);
        v[0] += b0.x, v[1] += b0.y, v[2] += b0.z, v[3] += b0.w, v[4] += b1.x, v[5] += b1.y, v[6] += b1.z,
            v[7] += b1.w;
      } else {
#pragma unroll
        for (int e = 0; e < 8; e++)
          if (n + e < p.m_out) v[e] += bias[n + e];
      }
    }
    if (res) {
      const __half *rp = res + (int64_t)m * p.ldr + n;
      if (full && vec_r) {
        uint4 rv = *(const uint4 *)rp;
        const __half2 *rh = (const __half2 *)&rv;
#pragma unroll
        for (int e = 0; e < 4; e++) {
          float2 f = __half22float2(rh[e]);
          v[2 * e] += f.x, v[2 * e + 1] += f.y;
        }
      } else {
#pragma unroll
        for (int e = 0; e < 8; e++)
          if (n + e < p.m_out) v[e] += __half2float(rp[e]);
      }
    }
    if (p.act == RI_CU_ACT_RELU) {
#pragma unroll
      for (int e = 0; e < 8; e++)
        v[e] = v[e] > 0.f ? v[e] : 0.f;
    } else if (p.act == RI_CU_ACT_CLIP) {
#pragma unroll
      for (int e = 0; e < 8; e++)
        v[e] = v[e] < p.act_a ? p.act_a : (v[e] > p.act_b ? p.act_b : v[e]);
    } else if (p.act != RI_CU_ACT_NONE) {
#pragma unroll
      for (int e = 0; e < 8; e++)
        v[e] = ri_act(p.act, p.act_a, p.act_b, v[e]);
    }
    int64_t off;
    if (dense) {
      off = (int64_t)m * p.ldy;
    } else {
      int img = m / (int)p.rows_per_img, rr = m - img * (int)p.rows_per_img;
      off = img * p.y_img_stride + (int64_t)rr * p.ldy;
    }
    __half *yp = y + off + p.y_off + n;
    if (full && vec_y) {
      uint4 out;
      __half2 *oh = (__half2 *)&out;
#pragma unroll
      for (int e = 0; e < 4; e++)
        oh[e] = __floats2half2_rn(v[2 * e], v[2 * e + 1]);
      *(uint4 *)yp = out;
    } else {
#pragma unroll
      for (int e = 0; e < 8; e++)
        if (n + e < p.m_out) yp[e] = __float2half_rn(v[e]);
    }
  }
}

template <int BM, int BN, int MODE>
cudaError_t launch_tile(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x, const void *w,
                        const float *b, const void *r, void *y) {
  int64_t M = (int64_t)p->n * p->oh * p->ow;
  dim3 grid((unsigned)((M + BM - 1) / BM * ((p->m_out + BN - 1) / BN)));
  const __half *xh = (const __half *)x, *wh = (const __half *)w, *rh = (const __half *)r;
  __half *yh = (__half *)y;
  convgemm_kernel<BM, BN, MODE><<<grid, THREADS, 0, s>>>(*p, xh, wh, b, rh, yh);
  return ri_cu_launched();
}

template <int MODE>
cudaError_t launch_mode(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x, const void *w,
                      const float *b, const void *r, void *y) {
  int64_t M = (int64_t)p->n * p->oh * p->ow;
  bool narrow = p->m_out <= 32;
  int bn = narrow ? 32 : 64;
  /* Large tiles when they still give every multiprocessor two blocks or more. */
  int64_t big = (M + 127) / 128 * ((p->m_out + bn - 1) / bn);
  if (narrow)
    return big >= 264 ? launch_tile<128, 32, MODE>(s, p, x, w, b, r, y)
                      : launch_tile<64, 32, MODE>(s, p, x, w, b, r, y);
  return big >= 264 ? launch_tile<128, 64, MODE>(s, p, x, w, b, r, y)
                    : launch_tile<64, 64, MODE>(s, p, x, w, b, r, y);
}

} // namespace

extern "C" int ri__cu_convgemm_supported(const ri__cu_convgemm_args *p) {
  return p->c >= 1 && p->kh >= 1 && p->kw >= 1 && (int64_t)p->kh * p->kw * p->c <= INT32_MAX - 8 &&
         p->k == p->kh * p->kw * p->c && p->ldw % 8 == 0 && p->ldw >= p->k && p->ldw - p->k < 8 &&
         (p->c % 8 != 0 || p->ldw == p->k) && p->sh >= 1 && p->sw >= 1 && p->dh >= 1 && p->dw >= 1 &&
         p->m_out >= 1 && p->act >= RI_CU_ACT_NONE && p->act <= RI_CU_ACT_HSWISH && p->n >= 0 && p->oh >= 0 &&
         p->ow >= 0 && (int64_t)p->n * p->oh * p->ow <= INT32_MAX / 2 && (int64_t)p->n * p->ih * p->iw <= INT32_MAX &&
         p->rows_per_img <= INT32_MAX && p->m_out <= 65536;
}

extern "C" cudaError_t ri__cu_convgemm(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x,
                                       const void *w, const float *bias, const void *res, void *y) {
  if (!ri__cu_convgemm_supported(p) || p->rows_per_img < 1 || p->ldy < p->m_out ||
      (res && p->ldr < p->m_out) || (uintptr_t)x % 2 || (uintptr_t)w % 16 || (uintptr_t)y % 16 ||
      (uintptr_t)bias % 16 || (uintptr_t)res % 16 || (p->c % 8 == 0 && (uintptr_t)x % 16))
    return cudaErrorInvalidValue;
  if ((int64_t)p->n * p->oh * p->ow <= 0) return cudaSuccess;
  if (p->c % 8 != 0) return launch_mode<A_SCALAR>(s, p, x, w, bias, res, y);
  bool k1 = p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 && p->pad_t == 0 && p->pad_l == 0 &&
            p->ih == p->oh && p->iw == p->ow;
  return k1 ? launch_mode<A_K1>(s, p, x, w, bias, res, y) : launch_mode<A_VEC>(s, p, x, w, bias, res, y);
}
