/* Element counts of engine inputs and outputs for the GPU tests and benchmark. */
#ifndef RI_TESTS_GPU_TENSOR_H
#define RI_TESTS_GPU_TENSOR_H

#include <stddef.h>

#include "runinfer/engine.h"

/* Elements of tensor `info` at `batch` (a symbolic axis, reported as a negative dim, takes the batch). */
static __attribute__((unused)) size_t gpu_numel(const ri_tensor_info *info, int batch) {
  size_t n = 1;
  for (int i = 0; i < info->rank; i++)
    n *= (size_t)(info->dims[i] < 0 ? batch : info->dims[i]);
  return n;
}

#endif
