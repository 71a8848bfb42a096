/* Concat: joins tensors of one dtype (any) and rank along `axis` (negative counts from the end); all other
 * dims must agree. Inputs may be empty along the axis. */
#include "graph/op.h"
#include "graph/ops/axis_util.h"

static ri_status check_concat(const ri__graph *g, ri__node *n, ri__err *err) {
  const ri__attr *a = ri__node_attr(n, "axis");
  if (!a || a->type != RI__ATTR_INT)
    return ri__err_set(err, RI_ERR_PARSE, "node '%s' (Concat): the integer attribute 'axis' is missing",
                       n->name);
  return RI_OK;
}

static ri_status infer_concat(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  int64_t axis_attr = ri__node_attr_int(n, "axis", 0);
  int rank = in[0].shape.rank, axis;
  if (!ri__norm_axis(axis_attr, rank, &axis))
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Concat): axis %lld is out of range for rank %d",
                       n->name, (long long)axis_attr, rank);
  if (ri_dtype_size(in[0].dtype) == 0)
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Concat): input 0 has unsupported dtype %s", n->name,
                       ri_dtype_name(in[0].dtype));
  ri__shape s = in[0].shape;
  for (int i = 1; i < n->n_inputs; i++) {
    char a[160], b[160];
    if (in[i].dtype != in[0].dtype)
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Concat): input %d has dtype %s, input 0 has %s",
                         n->name, i, ri_dtype_name(in[i].dtype), ri_dtype_name(in[0].dtype));
    int same = in[i].shape.rank == rank;
    for (int k = 0; same && k < rank; k++)
      if (k != axis && in[i].shape.dims[k] != s.dims[k]) same = 0;
    if (!same)
      return ri__err_set(err, RI_ERR_SHAPE,
                         "node '%s' (Concat): input %d has shape %s, which does not match input 0's %s "
                         "outside axis %d",
                         n->name, i, ri__shape_str(&in[i].shape, a, sizeof a),
                         ri__shape_str(&in[0].shape, b, sizeof b), axis);
    if (in[i].shape.dims[axis] > RI__MAX_TENSOR_ELEMS - s.dims[axis])
      return ri__err_set(err, RI_ERR_LIMIT, "node '%s' (Concat): concatenated axis is too long", n->name);
    s.dims[axis] += in[i].shape.dims[axis];
  }
  out[0].dtype = in[0].dtype;
  out[0].shape = s;
  return RI_OK;
}

const ri__op_def ri__opdef_Concat = {"Concat", 1, RI__MAX_NODE_IO, 1, 1, check_concat, infer_concat};
