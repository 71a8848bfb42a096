/* Float Conv in onnxruntime's summation order (conv_qdq_order.c), run by ri__ref_Conv for Conv nodes whose
 * tactic is RI__CONV_TACTIC_QDQ_ORDER (set by the qdq_to_qlinear pass, graph/passes.h). */
#ifndef RI_BACKEND_CPU_REF_CONV_QDQ_ORDER_H
#define RI_BACKEND_CPU_REF_CONV_QDQ_ORDER_H

#include "backend/cpu/kernel.h"
#include "graph/passes.h"

ri_status ri__ref_conv_qdq_order(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x);

/* The K block length MLAS's SGEMM uses for a product with n output columns and depth k: each block of the
 * patch index is one fused multiply-add chain from 0 (conv_qdq_order.c). */
int64_t ri__conv_qdq_block_k(int64_t n, int64_t k);

#endif
