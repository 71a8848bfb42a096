/* Gather: output = data[:axis] ++ indices.shape ++ data[axis+1:]; indices are int32/int64, negative values
 * count from the end of the axis. Any data dtype. Out-of-range indices are rejected here when the indices
 * are known on the host and by the kernel otherwise. */
#include "graph/op.h"
#include "graph/ops/axis_util.h"

static ri_status infer_gather(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  const ri__shape *ds = &in[0].shape, *is = &in[1].shape;
  int64_t a = ri__node_attr_int(n, "axis", 0);
  int axis;
  if (ri_dtype_size(in[0].dtype) == 0)
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Gather): data dtype %s is not supported", n->name,
                       ri_dtype_name(in[0].dtype));
  if (in[1].dtype != RI_DTYPE_INT32 && in[1].dtype != RI_DTYPE_INT64)
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Gather): indices must be int32 or int64, not %s",
                       n->name, ri_dtype_name(in[1].dtype));
  if (!ri__norm_axis(a, ds->rank, &axis))
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Gather): axis %lld is out of range for rank %d",
                       n->name, (long long)a, ds->rank);
  if (ds->rank - 1 + is->rank > RI__MAX_RANK)
    return ri__err_set(err, RI_ERR_LIMIT, "node '%s' (Gather): output rank %d exceeds %d", n->name,
                       ds->rank - 1 + is->rank, RI__MAX_RANK);
  if (in[1].data) {
    int64_t cnt = ri__shape_numel(is), dim = ds->dims[axis];
    for (int64_t i = 0; i < cnt; i++) {
      int64_t v = ri__tensor_get_int(&in[1], i);
      if (v < -dim || v >= dim)
        return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Gather): index %lld is out of range [-%lld, %lld)",
                           n->name, (long long)v, (long long)dim, (long long)dim);
    }
  }
  ri__shape s = {0};
  for (int k = 0; k < axis; k++)
    s.dims[s.rank++] = ds->dims[k];
  for (int k = 0; k < is->rank; k++)
    s.dims[s.rank++] = is->dims[k];
  for (int k = axis + 1; k < ds->rank; k++)
    s.dims[s.rank++] = ds->dims[k];
  out[0].dtype = in[0].dtype;
  out[0].shape = s;
  return RI_OK;
}

const ri__op_def ri__opdef_Gather = {"Gather", 2, 2, 1, 1, NULL, infer_gather};
