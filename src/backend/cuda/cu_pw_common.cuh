/* The pieces shared by the two forms of the pointwise convolution (k_pwconv.cu, k_pwconv_bulk.cu), which
 * split the work the same way and differ only in the traffic around the MMAs: the weight matrix copied into
 * shared memory, a warp's 16-byte cp.async chunks of 16 rows of a tile, the ring's fill and advance, the k16
 * MMA steps of a 16-row tile (with the tiled kernel's all-zero step). One copy keeps the two forms' bits the
 * same by construction; all are inlined (the SASS of both kernels is what it was when each held its own
 * copy). The ReLU/clip bounds stay in each kernel: computed through a shared struct, nvcc 13.0 moved them
 * into the tile loop of k_pwconv.cu (other SASS); so does the epilogue's activation and half-pair rounding
 * (k_pwconv_bulk.cu, k_pwconv_wide.cu): as a shared inline function it reordered both kernels' SASS
 * (2026-11-28), which no device run has timed. */
#ifndef RI_BACKEND_CUDA_CU_PW_COMMON_CUH
#define RI_BACKEND_CUDA_CU_PW_COMMON_CUH

#include "backend/cuda/cu_common.cuh"
#include "backend/cuda/cu_mma.cuh"

/* Waits until at most n (0 .. 6) committed cp.async groups of this thread are in flight. */
__device__ __forceinline__ void ri_cu_pw_cp_wait_n(int n) {
  switch (n) {
  case 0: ri_cu_mma::cp_wait<0>(); break;
  case 1: ri_cu_mma::cp_wait<1>(); break;
  case 2: ri_cu_mma::cp_wait<2>(); break;
  case 3: ri_cu_mma::cp_wait<3>(); break;
  case 4: ri_cu_mma::cp_wait<4>(); break;
  case 5: ri_cu_mma::cp_wait<5>(); break;
  default: ri_cu_mma::cp_wait<6>(); break;
  }
}

/* The block's threads (tid of nthreads) copy the nr x ldk weight rows into Ws, zero beyond m_out rows and
 * ldw columns. */
__device__ __forceinline__ void ri_cu_pw_weights(__half *Ws, const __half *__restrict__ w,
                                                 const ri__cu_convgemm_args &p, int nr, int ldk, int tid,
                                                 int nthreads) {
  const int wchunks = nr * (ldk / 8);
  for (int q = tid; q < wchunks; q += nthreads) {
    int n = q / (ldk / 8), c = (q - n * (ldk / 8)) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (n < p.m_out && c < p.ldw) v = *(const uint4 *)(w + (int64_t)n * p.ldw + c);
    *(uint4 *)(Ws + (size_t)n * ldk + c) = v;
  }
}

/* A lane's walk over the 16-byte chunks of 16 rows of kc chunks each: chunk q = lane + 32 i is row q / kc,
 * chunk q % kc; (r0, c0) the first, (dr, dc) the step of 32 chunks. */
struct ri_cu_pw_walk {
  int kc, n, r0, c0, dr, dc;
};

__device__ __forceinline__ ri_cu_pw_walk ri_cu_pw_walk_of(int lane, int kc) {
  const int r0 = lane / kc, dr = 32 / kc;
  return {kc, 16 * kc, r0, lane - r0 * kc, dr, 32 - dr * kc};
}

/* The lane's cp.async chunks of rows m0 .. m0 + 15 of src (lds halves per row) into dst (ldd halves per
 * row); rows from M on are zero-filled. */
__device__ __forceinline__ void ri_cu_pw_load_rows(__half *dst, int ldd, const __half *src, int64_t lds,
                                                   int m0, int M, const ri_cu_pw_walk &wk, int lane) {
  int r = wk.r0, c = wk.c0;
  for (int q = lane; q < wk.n; q += 32) {
    const int m = m0 + r;
    const bool ok = m < M;
    ri_cu_mma::cp16(dst + r * ldd + c * 8, ok ? src + (int64_t)m * lds + c * 8 : src, ok ? 16 : 0);
    r += wk.dr, c += wk.dc;
    if (c >= wk.kc) c -= wk.kc, r++;
  }
}

/* The ring's first S - 1 tiles of this warp (first, first + stride, ...) in flight, one commit group each
 * (empty past the last tile, so that the count of groups stays uniform). load(stage, tile) issues a tile. */
template <class Load>
__device__ __forceinline__ void ri_cu_pw_ring_fill(int S, int first, int stride, int ntiles,
                                                   const Load &load) {
  for (int s = 0; s < S - 1; s++) {
    const int t = first + s * stride;
    if (t < ntiles) load(s, t);
    ri_cu_mma::cp_commit();
  }
}

/* Before tile `tile` (in stage st) is used: waits for its group, then issues the tile S - 1 ahead into the
 * stage after the ring's last one. */
template <class Load>
__device__ __forceinline__ void ri_cu_pw_ring_next(int S, int st, int tile, int stride, int ntiles,
                                                   const Load &load) {
  ri_cu_pw_cp_wait_n(S - 2);
  __syncwarp();
  const int tn = tile + (S - 1) * stride;
  int sn = st + S - 1;
  if (sn >= S) sn -= S;
  if (tn < ntiles) load(sn, tn);
  ri_cu_mma::cp_commit();
}

/* acc = the 16-row tile A (ldk halves per row) times the NT n8 tiles of Ws, over ksteps k16 steps, then the
 * tiled kernel's all-zero step when zstep (issued with zero registers: +0 turns a -0 sum into +0 as
 * there). */
template <int NT>
__device__ __forceinline__ void ri_cu_pw_mma(float (&acc)[NT][4], const __half *A, const __half *Ws, int ldk,
                                             int ksteps, bool zstep, int lane) {
  using namespace ri_cu_mma;
#pragma unroll
  for (int j = 0; j < NT; j++)
    acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
  for (int ks = 0; ks < ksteps; ks++) {
    const int kk = ks * 16;
    unsigned af[4];
    ldsm_x4(af[0], af[1], af[2], af[3], A + (lane & 15) * ldk + kk + (lane >> 4) * 8);
#pragma unroll
    for (int j = 0; j < NT; j += 2) {
      unsigned b0, b1, b2, b3;
      ldsm_x4(b0, b1, b2, b3,
              Ws + (j * 8 + (lane & 7) + ((lane >> 4) << 3)) * ldk + kk + ((lane >> 3) & 1) * 8);
      mma16816(acc[j], af, b0, b1);
      mma16816(acc[j + 1], af, b2, b3);
    }
  }
  if (zstep) {
    const unsigned z[4] = {0u, 0u, 0u, 0u};
#pragma unroll
    for (int j = 0; j < NT; j++)
      mma16816(acc[j], z, 0u, 0u);
  }
}

/* Host: the device properties the pointwise forms plan with (k_pwconv_bulk.cu, k_pwconv_wide.cu), of the
 * current device (*dev). */
struct ri_cu_pw_dev {
  int optin, smem_sm, reserved, sms, l2, major;
};

static inline cudaError_t ri_cu_pw_query(ri_cu_pw_dev *d, int *dev) {
  cudaError_t e = cudaGetDevice(dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&d->optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, *dev);
  if (e == cudaSuccess)
    e = cudaDeviceGetAttribute(&d->smem_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, *dev);
  if (e == cudaSuccess)
    e = cudaDeviceGetAttribute(&d->reserved, cudaDevAttrReservedSharedMemoryPerBlock, *dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&d->sms, cudaDevAttrMultiProcessorCount, *dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&d->l2, cudaDevAttrL2CacheSize, *dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&d->major, cudaDevAttrComputeCapabilityMajor, *dev);
  return e;
}

#endif
