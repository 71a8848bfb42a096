/* Event timing of the GPU micro-benchmarks (bench_pwconv, bench_expdw): CKB, a CUDA call that prints a FAIL
 * line and makes the calling function return 1 when it fails, and gpu_time_it, the median of timed runs. */
#ifndef RI_TESTS_GPU_TIMING_H
#define RI_TESTS_GPU_TIMING_H

#include <stdio.h>

#include <cuda_runtime_api.h>

#include "gpu_bench_args.h"

#define CKB(call)                                                                                            \
  do {                                                                                                       \
    cudaError_t e_ = (call);                                                                                 \
    if (e_ != cudaSuccess) {                                                                                 \
      printf("FAIL %s: %s at %s:%d\n", #call, cudaGetErrorString(e_), __FILE__, __LINE__);                   \
      return 1;                                                                                              \
    }                                                                                                        \
  } while (0)

/* Median milliseconds of reps (at most 256) runs of what(ctx) on the default stream, after one warm-up
 * run, each bracketed by events; 1 (after a FAIL line) when a call fails. */
typedef cudaError_t (*gpu_runner)(void *ctx);
static __attribute__((unused)) int gpu_time_it(gpu_runner what, void *ctx, int reps, double *ms) {
  cudaEvent_t a, b;
  double v[256];
  if (reps > 256) reps = 256;
  CKB(cudaEventCreate(&a));
  CKB(cudaEventCreate(&b));
  CKB(what(ctx));
  for (int i = 0; i < reps; i++) {
    CKB(cudaEventRecord(a, 0));
    CKB(what(ctx));
    CKB(cudaEventRecord(b, 0));
    CKB(cudaEventSynchronize(b));
    float f = 0;
    CKB(cudaEventElapsedTime(&f, a, b));
    v[i] = f;
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  *ms = gpu_median(v, reps);
  return 0;
}

#endif
