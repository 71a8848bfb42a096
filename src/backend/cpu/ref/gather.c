/* Reference Gather: checks every index first (an out-of-range index fails with RI_ERR_INVALID_ARG naming
 * the node, the index and its position, before anything is written), then copies one contiguous block of
 * the dims after the axis per (outer, index) pair. */
#include <string.h>

#include "backend/cpu/kernel.h"
#include "graph/ops/axis_util.h"

ri_status ri__ref_Gather(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const ri__shape *ds = &in[0].shape;
  int axis;
  if (!ri__norm_axis(ri__node_attr_int(n, "axis", 0), ds->rank, &axis) ||
      (in[1].dtype != RI_DTYPE_INT32 && in[1].dtype != RI_DTYPE_INT64) || out[0].dtype != in[0].dtype)
    return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s' (Gather): inputs disagree with shape inference",
                       n->name);
  int64_t cnt = ri__shape_numel(&in[1].shape), dim = ds->dims[axis];
  for (int64_t i = 0; i < cnt; i++) {
    int64_t v = ri__tensor_get_int(&in[1], i);
    if (v < -dim || v >= dim)
      return ri__err_set(x->err, RI_ERR_INVALID_ARG,
                         "node '%s' (Gather): index %lld at position %lld is out of range [-%lld, %lld)",
                         n->name, (long long)v, (long long)i, (long long)dim, (long long)dim);
  }
  size_t es = ri_dtype_size(in[0].dtype);
  int64_t outer = 1, inner = 1;
  for (int k = 0; k < axis; k++)
    outer *= ds->dims[k];
  for (int k = axis + 1; k < ds->rank; k++)
    inner *= ds->dims[k];
  if (outer * cnt * inner != ri__shape_numel(&out[0].shape))
    return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s' (Gather): output shape disagrees with the inputs",
                       n->name);
  size_t blk = (size_t)inner * es;
  if (blk == 0 || cnt == 0) return RI_OK;
  const char *src = in[0].data;
  char *dst = out[0].data;
  for (int64_t o = 0; o < outer; o++) {
    const char *plane = src + (size_t)(o * dim) * blk;
    for (int64_t i = 0; i < cnt; i++) {
      int64_t v = ri__tensor_get_int(&in[1], i);
      if (v < 0) v += dim;
      memcpy(dst, plane + (size_t)v * blk, blk);
      dst += blk;
    }
  }
  return RI_OK;
}
