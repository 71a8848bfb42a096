/* Device-side helpers shared by the kernels: element loads and stores in float, the fused activations, and
 * launch geometry. Included only by the .cu files of this directory. */
#ifndef RI_BACKEND_CUDA_CU_COMMON_CUH
#define RI_BACKEND_CUDA_CU_COMMON_CUH

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/kernels.h"

#define RI_CU_THREADS 256

/* Blocks for a grid-stride loop over n items: enough to fill the device, never more than the items need. */
static inline unsigned ri_cu_blocks(int64_t n, int threads = RI_CU_THREADS) {
  int64_t b = (n + threads - 1) / threads;
  if (b > (1 << 20)) b = 1 << 20;
  if (b < 1) b = 1;
  return (unsigned)b;
}

static inline cudaError_t ri_cu_launched(void) { return cudaGetLastError(); }

/* Programmatic dependent launch (compute capability 9.0+, cuda_pdl.cu). A kernel converted to it calls
 * ri_cu_pdl_wait() as its first statement, before any global memory access: griddepcontrol.wait returns once
 * the grids it depends on have completed and their memory is visible (at once when it was launched without
 * the attribute). ri_cu_pdl_trigger() right after lets the next kernel of the stream be scheduled as soon as
 * every block of this one has passed its wait; that kernel still waits at its own ri_cu_pdl_wait(). Both
 * compile to nothing below sm_90, and ri__cu_pdl_on() never sets the attribute for code built so. */
__device__ __forceinline__ void ri_cu_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void ri_cu_pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* Launches kernel k (one that starts with ri_cu_pdl_wait) on stream s: with the programmatic stream
 * serialization attribute through cudaLaunchKernelEx when ri__cu_pdl_on(), else as k<<<grid, block, smem,
 * s>>>. Returns the launch status; an error is also left for ri_cu_launched(), as every launch leaves it. */
template <typename... P, typename... A>
static inline cudaError_t ri_cu_launch(void (*k)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                                       A... args) {
  if (!ri__cu_pdl_on()) {
    k<<<grid, block, smem, s>>>(args...);
    return cudaPeekAtLastError();
  }
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cudaLaunchKernelEx(&cfg, k, args...);
}

__device__ __forceinline__ float ri_ld(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ri_ld(const __half *p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ void ri_st(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void ri_st(__half *p, int64_t i, float v) { p[i] = __float2half_rn(v); }

/* The activation codes of ri__act (graph/ir.h); kept in step by a static assertion in cuda_backend.c. */
enum {
  RI_CU_ACT_NONE = 0,
  RI_CU_ACT_RELU,
  RI_CU_ACT_CLIP,
  RI_CU_ACT_LEAKY,
  RI_CU_ACT_SIGMOID,
  RI_CU_ACT_HSIG,
  RI_CU_ACT_HSWISH
};

__device__ __forceinline__ float ri_sigmoid(float x) {
  /* Split by sign so that expf never overflows. */
  if (x >= 0.f) return 1.f / (1.f + expf(-x));
  float e = expf(x);
  return e / (1.f + e);
}

__device__ __forceinline__ float ri_act(int act, float a, float b, float x) {
  switch (act) {
  case RI_CU_ACT_RELU: return x > 0.f ? x : 0.f;
  case RI_CU_ACT_CLIP: return x < a ? a : (x > b ? b : x);
  case RI_CU_ACT_LEAKY: return x < 0.f ? a * x : x;
  case RI_CU_ACT_SIGMOID: return ri_sigmoid(x);
  case RI_CU_ACT_HSIG: {
    float y = a * x + b;
    return y < 0.f ? 0.f : (y > 1.f ? 1.f : y);
  }
  case RI_CU_ACT_HSWISH: {
    float y = x / 6.f + 0.5f;
    y = y < 0.f ? 0.f : (y > 1.f ? 1.f : y);
    return x * y;
  }
  default: return x;
  }
}

/* Element offsets of flat index i of a walk for `nt` of its tensors, in index type I (int32_t when
 * ri_walk_fits_32 holds for the walk, else int64_t). */
template <typename I>
__device__ __forceinline__ void ri_walk_offsets(const ri__cu_walk &w, I i, int nt, I off[3]) {
  off[0] = off[1] = off[2] = 0;
  for (int d = w.rank - 1; d >= 0; d--) {
    I n = (I)w.dims[d];
    I q = i / n, r = i - q * n;
    i = q;
    for (int t = 0; t < nt; t++)
      off[t] += r * (I)w.st[t][d];
  }
}

/* Largest element count for which grid-stride loops may use int32 indices: the loop index stays below
 * count + the grid's thread count (at most 2^28), which must not overflow. */
#define RI_CU_INDEX32_MAX ((int64_t)1 << 30)

/* 1 when the walk's element count is at most RI_CU_INDEX32_MAX and every offset it produces for its first
 * nt tensors fits in int32. */
static inline int ri_walk_fits_32(const ri__cu_walk *w, int nt) {
  int64_t count = 1;
  for (int d = 0; d < w->rank; d++)
    count *= w->dims[d];
  if (count > RI_CU_INDEX32_MAX) return 0;
  for (int t = 0; t < nt; t++) {
    int64_t span = 0;
    for (int d = 0; d < w->rank; d++)
      span += (w->dims[d] - 1) * (w->st[t][d] < 0 ? -w->st[t][d] : w->st[t][d]);
    if (span > INT32_MAX) return 0;
  }
  return 1;
}

static inline int64_t ri_walk_count(const ri__cu_walk *w) {
  int64_t n = 1;
  for (int d = 0; d < w->rank; d++)
    n *= w->dims[d];
  return n;
}

#endif
