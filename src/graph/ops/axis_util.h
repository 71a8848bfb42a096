/* Small helpers shared by the op definitions of the elementwise and data-movement families: axis
 * normalization and reading small host-known integer tensors (axes, shapes, starts, repeats). */
#ifndef RI_GRAPH_OPS_AXIS_UTIL_H
#define RI_GRAPH_OPS_AXIS_UTIL_H

#include "graph/ir.h"

/* Maps axis from [-rank, rank) to [0, rank). Returns 0 (and leaves *out alone) when out of range. */
static inline int ri__norm_axis(int64_t axis, int rank, int *out) {
  if (axis < -(int64_t)rank || axis >= rank) return 0;
  *out = (int)(axis < 0 ? axis + rank : axis);
  return 1;
}

/* True for a tensor of int32 or int64 elements that is a 1-D list (or a scalar when allow_scalar). */
static inline int ri__is_int_list(const ri__tensor *t, int allow_scalar) {
  if (t->dtype != RI_DTYPE_INT64 && t->dtype != RI_DTYPE_INT32) return 0;
  return t->shape.rank == 1 || (allow_scalar && t->shape.rank == 0);
}

#endif
