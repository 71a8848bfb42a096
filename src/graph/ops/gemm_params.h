/* Resolved parameters of Gemm, and the shape rules of MatMul (ONNX opsets 11..21), float32.
 *
 * Gemm: Y[M, N] = alpha * A' * B' + beta * C, where A' = transA ? A^T : A is [M, K], B' = transB ? B^T : B is
 * [K, N], and the optional C broadcasts unidirectionally to [M, N] (rank 0, 1 or 2; each of its dims equal
 * to the target's or 1). The fused activation n->act is applied to Y.
 *
 * MatMul: numpy matmul. A 1-D A is promoted to [1, K] and a 1-D B to [K, 1], the added axis being removed
 * from the result; leading (batch) axes broadcast numpy-style. MatMul has no parameters (n->params NULL);
 * backends use ri__matmul_dims_get(). The fused activation n->act is applied to the output. */
#ifndef RI_GRAPH_OPS_GEMM_PARAMS_H
#define RI_GRAPH_OPS_GEMM_PARAMS_H

#include <stdint.h>

#include "graph/ir.h"

typedef struct {
  float alpha, beta;
  int trans_a, trans_b; /* 0 or 1 */
  int has_c;            /* input 2 is present */
} ri__gemm_params;

/* Broadcasting structure of one MatMul. The batch axes are those of the output except its last two (or
 * one, or zero when an operand was 1-D); a_stride[i] / b_stride[i] are the element strides of batch axis i
 * in A and B (0 where that operand broadcasts), in matrices of m*k resp. k*n elements. */
typedef struct {
  int64_t m, k, n;
  int batch_rank;                   /* number of batch axes (<= RI__MAX_RANK - 2) */
  int64_t batch_dims[RI__MAX_RANK]; /* output batch dims */
  int64_t a_stride[RI__MAX_RANK];   /* in elements */
  int64_t b_stride[RI__MAX_RANK];
  int64_t batch; /* product of batch_dims */
  ri__shape out; /* the output shape */
} ri__matmul_dims;

/* Computes the MatMul structure of A and B; fails with RI_ERR_SHAPE naming node n when K differs, a batch
 * axis does not broadcast or an operand is a scalar. */
ri_status ri__matmul_dims_get(const ri__node *n, const ri__shape *a, const ri__shape *b, ri__matmul_dims *d,
                              ri__err *err);

#endif
