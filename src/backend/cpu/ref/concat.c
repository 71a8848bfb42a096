/* Reference Concat: for each slice of the dims before the axis, the inputs' contiguous blocks are copied
 * one after another. */
#include <string.h>

#include "backend/cpu/kernel.h"
#include "graph/ops/axis_util.h"

ri_status ri__ref_Concat(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  int rank = out[0].shape.rank, axis;
  if (!ri__norm_axis(ri__node_attr_int(n, "axis", 0), rank, &axis))
    return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s' (Concat): axis out of range", n->name);
  size_t es = ri_dtype_size(out[0].dtype);
  int64_t outer = 1, inner = 1;
  for (int k = 0; k < axis; k++)
    outer *= out[0].shape.dims[k];
  for (int k = axis + 1; k < rank; k++)
    inner *= out[0].shape.dims[k];
  size_t row = (size_t)(out[0].shape.dims[axis] * inner) * es;
  int64_t total = 0;
  for (int i = 0; i < n->n_inputs; i++)
    total += in[i].shape.dims[axis];
  if (total != out[0].shape.dims[axis])
    return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s' (Concat): inputs do not fill the output", n->name);
  char *y = out[0].data;
  size_t off = 0;
  for (int i = 0; i < n->n_inputs; i++) {
    size_t blk = (size_t)(in[i].shape.dims[axis] * inner) * es;
    const char *src = in[i].data;
    if (blk)
      for (int64_t o = 0; o < outer; o++)
        memcpy(y + (size_t)o * row + off, src + (size_t)o * blk, blk);
    off += blk;
  }
  return RI_OK;
}
