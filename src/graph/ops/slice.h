/* Slice resolved against a concrete input: shared by Slice's shape inference and its kernels. */
#ifndef RI_GRAPH_OPS_SLICE_H
#define RI_GRAPH_OPS_SLICE_H

#include "graph/ir.h"

/* Output element j along axis k reads input coordinate start[k] + j * step[k]; axes that are not sliced
 * have start 0 and step 1. out is the output shape (same rank as the input). */
typedef struct {
  int64_t start[RI__MAX_RANK], step[RI__MAX_RANK];
  ri__shape out;
} ri__slice_plan;

/* Resolves a Slice node (inputs data, starts, ends, [axes], [steps]) with ONNX's rules: negative starts,
 * ends and axes count from the end; starts and ends are clamped to [0, dim] for positive steps and to
 * [0, dim-1] / [-1, dim-1] for negative steps. starts..steps must be 1-D int32/int64 tensors with data
 * (RI_ERR_UNSUPPORTED naming the node otherwise); equal lengths, distinct in-range axes and non-zero steps
 * are required (RI_ERR_SHAPE). */
ri_status ri__slice_plan_make(const ri__node *n, const ri__tensor *in, ri__slice_plan *p, ri__err *err);

#endif
