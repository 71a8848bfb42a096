/* What Constant's check() resolves: the tensor it produces, copied out of the node's attribute so that
 * shape inference and kernels need no access to the graph. Stored in n->params (plain memory). */
#ifndef RI_GRAPH_OPS_SHAPE_H
#define RI_GRAPH_OPS_SHAPE_H

#include "graph/ir.h"

typedef struct {
  ri_dtype dtype;
  ri__shape shape;
  size_t nbytes;  /* numel * dtype size */
  int64_t data[]; /* nbytes bytes of elements (int64_t only for alignment) */
} ri__const_params;

/* Range [start, end) of input axes that Shape reports, clamped as ONNX specifies (opset 15 start/end). */
void ri__shape_op_range(const ri__node *n, int rank, int *start, int *end);

#endif
