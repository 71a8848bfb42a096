/* Slice (opset 10+ form: starts, ends, axes and steps are inputs). Any dtype. */
#include "graph/ops/slice.h"

#include "graph/op.h"
#include "graph/ops/axis_util.h"

static const char *const k_names[5] = {"data", "starts", "ends", "axes", "steps"};

ri_status ri__slice_plan_make(const ri__node *n, const ri__tensor *in, ri__slice_plan *p, ri__err *err) {
  const ri__shape *is = &in[0].shape;
  int rank = is->rank;
  int64_t count = -1;
  for (int i = 1; i < 5; i++) {
    if (i >= n->n_inputs || in[i].dtype == RI_DTYPE_UNDEFINED) {
      if (i < 3)
        return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Slice): input '%s' is missing", n->name,
                           k_names[i]);
      continue;
    }
    if (!ri__is_int_list(&in[i], 0))
      return ri__err_set(err, RI_ERR_SHAPE,
                         "node '%s' (Slice): %s must be a 1-D int32/int64 tensor (got %s rank %d)", n->name,
                         k_names[i], ri_dtype_name(in[i].dtype), in[i].shape.rank);
    if (!in[i].data)
      return ri__err_set(err, RI_ERR_UNSUPPORTED,
                         "%s input of Slice '%s' is computed at run time from tensor data", k_names[i],
                         n->name);
    if (count >= 0 && in[i].shape.dims[0] != count)
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Slice): %s has %lld entries, starts has %lld",
                         n->name, k_names[i], (long long)in[i].shape.dims[0], (long long)count);
    count = in[i].shape.dims[0];
  }
  if (count > rank)
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Slice): %lld sliced axes for an input of rank %d",
                       n->name, (long long)count, rank);
  int has_axes = n->n_inputs > 3 && in[3].dtype != RI_DTYPE_UNDEFINED;
  int has_steps = n->n_inputs > 4 && in[4].dtype != RI_DTYPE_UNDEFINED;
  int used[RI__MAX_RANK] = {0};
  p->out = *is;
  for (int k = 0; k < rank; k++) {
    p->start[k] = 0;
    p->step[k] = 1;
  }
  for (int i = 0; i < count; i++) {
    int axis = i;
    if (has_axes) {
      int64_t a = ri__tensor_get_int(&in[3], i);
      if (!ri__norm_axis(a, rank, &axis))
        return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Slice): axis %lld is out of range for rank %d",
                           n->name, (long long)a, rank);
    }
    if (used[axis])
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Slice): axis %d is sliced twice", n->name, axis);
    used[axis] = 1;
    int64_t dim = is->dims[axis];
    int64_t start = ri__tensor_get_int(&in[1], i), end = ri__tensor_get_int(&in[2], i);
    int64_t step = has_steps ? ri__tensor_get_int(&in[4], i) : 1;
    if (step == 0)
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Slice): step for axis %d is 0", n->name, axis);
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    int64_t len;
    if (step > 0) {
      start = start < 0 ? 0 : (start > dim ? dim : start);
      end = end < 0 ? 0 : (end > dim ? dim : end);
      len = end > start ? (end - start - 1) / step + 1 : 0;
    } else {
      start = start < 0 ? 0 : (start > dim - 1 ? dim - 1 : start);
      end = end < -1 ? -1 : (end > dim - 1 ? dim - 1 : end);
      int64_t mag = step < -INT64_MAX ? INT64_MAX : -step; /* |step|, saturated; only matters if < dim */
      len = start > end ? (start - end - 1) / mag + 1 : 0;
    }
    if (dim == 0) {
      start = 0;
      len = 0;
    }
    if (len <= 1) step = 1; /* never applied; keeps stride arithmetic in range for huge steps */
    p->start[axis] = start;
    p->step[axis] = step;
    p->out.dims[axis] = len;
  }
  return RI_OK;
}

static ri_status infer_slice(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  if (ri_dtype_size(in[0].dtype) == 0)
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Slice): input dtype %s is not supported", n->name,
                       ri_dtype_name(in[0].dtype));
  ri__slice_plan p;
  RI__TRY(ri__slice_plan_make(n, in, &p, err));
  out[0].dtype = in[0].dtype;
  out[0].shape = p.out;
  return RI_OK;
}

const ri__op_def ri__opdef_Slice = {"Slice", 3, 5, 1, 1, NULL, infer_slice};
