/* Single-precision matrix product shared by the reference Conv, Gemm and MatMul kernels. */
#ifndef RI_BACKEND_CPU_REF_GEMM_CORE_H
#define RI_BACKEND_CPU_REF_GEMM_CORE_H

#include <stdint.h>

#include "core/pool.h"

/* C[i, j] += alpha * sum_p A(i, p) * B(p, j) for i < m, j < n, p < k, where A(i, p) = a[i * a_rs + p * a_cs],
 * B(p, j) = b[p * b_rs + j * b_cs] and C is row-major with row stride ldc. Any strides are accepted (this
 * is how transposed operands are passed); b_cs == 1 avoids packing. C must not overlap A or B. Runs on
 * `pool` (NULL: the calling thread only); the result does not depend on the number of threads. Allocates
 * nothing. */
void ri__ref_sgemm(ri__pool *pool, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t a_rs,
                   int64_t a_cs, const float *b, int64_t b_rs, int64_t b_cs, float *c, int64_t ldc);

#endif
