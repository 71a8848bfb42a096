/* Ops that only relabel the shape of a dense tensor (the bytes are unchanged): Reshape, Flatten, Squeeze
 * and Unsqueeze. Any dtype. Shape-giving inputs (Reshape's shape, Squeeze/Unsqueeze axes from opset 13)
 * must be known on the host when shapes are inferred. */
#include "graph/op.h"
#include "graph/ops/axis_util.h"

static ri_status need_host(const ri__node *n, const ri__tensor *t, const char *what, ri__err *err) {
  if (t->data) return RI_OK;
  return ri__err_set(err, RI_ERR_UNSUPPORTED, "%s input of %s '%s' is computed at run time from tensor data",
                     what, ri__op_name(n->op), n->name);
}

static ri_status known_dtype(const ri__node *n, const ri__tensor *in, ri__err *err) {
  if (ri_dtype_size(in[0].dtype)) return RI_OK;
  return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (%s): input dtype %s is not supported", n->name,
                     ri__op_name(n->op), ri_dtype_name(in[0].dtype));
}

/* ---- Reshape ---- */

static ri_status check_reshape(const ri__graph *g, ri__node *n, ri__err *err) {
  int64_t az = ri__node_attr_int(n, "allowzero", 0);
  if (az != 0 && az != 1)
    return ri__err_set(err, RI_ERR_PARSE, "node '%s' (Reshape): allowzero must be 0 or 1, not %lld", n->name,
                       (long long)az);
  return RI_OK;
}

static ri_status infer_reshape(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  RI__TRY(known_dtype(n, in, err));
  const ri__tensor *sh = &in[1];
  if (!ri__is_int_list(sh, 0))
    return ri__err_set(err, RI_ERR_SHAPE,
                       "node '%s' (Reshape): shape must be a 1-D int64 tensor (got %s rank %d)", n->name,
                       ri_dtype_name(sh->dtype), sh->shape.rank);
  RI__TRY(need_host(n, sh, "shape", err));
  int64_t count = sh->shape.dims[0];
  if (count > RI__MAX_RANK)
    return ri__err_set(err, RI_ERR_LIMIT, "node '%s' (Reshape): target rank %lld exceeds %d", n->name,
                       (long long)count, RI__MAX_RANK);
  int allowzero = ri__node_attr_int(n, "allowzero", 0) != 0;
  int64_t in_numel = ri__shape_numel(&in[0].shape), known = 1;
  int infer_at = -1, has_zero = 0;
  ri__shape s = {.rank = (int)count};
  for (int k = 0; k < s.rank; k++) {
    int64_t d = ri__tensor_get_int(sh, k);
    if (d == -1) {
      if (infer_at >= 0)
        return ri__err_set(err, RI_ERR_SHAPE,
                           "node '%s' (Reshape): shape has more than one -1 (at %d and %d)", n->name,
                           infer_at, k);
      infer_at = k;
      continue;
    }
    if (d < -1)
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Reshape): shape[%d] = %lld is negative", n->name, k,
                         (long long)d);
    if (d == 0 && !allowzero) {
      if (k >= in[0].shape.rank)
        return ri__err_set(
            err, RI_ERR_SHAPE,
            "node '%s' (Reshape): shape[%d] = 0 copies an input dim, but the input has rank %d", n->name, k,
            in[0].shape.rank);
      d = in[0].shape.dims[k];
    } else if (d == 0) {
      has_zero = 1;
    }
    if (d > RI__MAX_TENSOR_ELEMS || (d && known > RI__MAX_TENSOR_ELEMS / d))
      return ri__err_set(err, RI_ERR_LIMIT, "node '%s' (Reshape): target shape is too large", n->name);
    s.dims[k] = d;
    known *= d;
  }
  if (infer_at >= 0) {
    if (has_zero)
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Reshape): allowzero=1 forbids both 0 and -1 in shape",
                         n->name);
    if (known == 0 || in_numel % known != 0)
      return ri__err_set(
          err, RI_ERR_SHAPE,
          "node '%s' (Reshape): cannot infer the -1 dim: %lld elements are not a multiple of %lld", n->name,
          (long long)in_numel, (long long)known);
    s.dims[infer_at] = in_numel / known;
    known = in_numel;
  }
  if (known != in_numel) {
    char a[160], b[160];
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Reshape): cannot reshape %s (%lld elements) to %s",
                       n->name, ri__shape_str(&in[0].shape, a, sizeof a), (long long)in_numel,
                       ri__shape_str(&s, b, sizeof b));
  }
  out[0].dtype = in[0].dtype;
  out[0].shape = s;
  return RI_OK;
}

/* ---- Flatten ---- */

static ri_status infer_flatten(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  RI__TRY(known_dtype(n, in, err));
  int64_t a = ri__node_attr_int(n, "axis", 1);
  int rank = in[0].shape.rank;
  if (a < -rank || a > rank)
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Flatten): axis %lld is out of range for rank %d",
                       n->name, (long long)a, rank);
  int axis = (int)(a < 0 ? a + rank : a);
  int64_t outer = 1, inner = 1;
  for (int k = 0; k < rank; k++) {
    if (k < axis)
      outer *= in[0].shape.dims[k];
    else
      inner *= in[0].shape.dims[k];
  }
  out[0].dtype = in[0].dtype;
  out[0].shape.rank = 2;
  out[0].shape.dims[0] = outer;
  out[0].shape.dims[1] = inner;
  return RI_OK;
}

/* ---- Squeeze / Unsqueeze ---- */

/* Before opset 13 the axes are an attribute; from 13 on they are the optional second input. */
static ri_status check_axes_form(const ri__graph *g, ri__node *n, ri__err *err) {
  const ri__attr *a = ri__node_attr(n, "axes");
  const char *op = ri__op_name(n->op);
  if (g->opset >= 13 && a)
    return ri__err_set(
        err, RI_ERR_PARSE,
        "node '%s' (%s): 'axes' is an input since opset 13, not an attribute (model opset %lld)", n->name, op,
        (long long)g->opset);
  if (g->opset < 13 && n->n_inputs > 1)
    return ri__err_set(err, RI_ERR_PARSE,
                       "node '%s' (%s): takes one input before opset 13 (model opset %lld)", n->name, op,
                       (long long)g->opset);
  if (a && a->type != RI__ATTR_INTS)
    return ri__err_set(err, RI_ERR_PARSE, "node '%s' (%s): 'axes' must be a list of integers", n->name, op);
  if (n->op == RI__OP_Unsqueeze && !a && (n->n_inputs < 2 || n->inputs[1] < 0))
    return ri__err_set(err, RI_ERR_PARSE, "node '%s' (Unsqueeze): axes are required", n->name);
  return RI_OK;
}

/* Reads the axes (attribute or host-known input) into axes[], normalized for `rank`, rejecting duplicates.
 * *count is -1 when no axes are given. */
static ri_status read_axes(const ri__node *n, const ri__tensor *in, int rank, int axes[RI__MAX_RANK],
                           int *count, ri__err *err) {
  const char *op = ri__op_name(n->op);
  const int64_t *list = NULL;
  int64_t cnt = ri__node_attr_ints(n, "axes", &list);
  const ri__tensor *t = NULL;
  if (!list) {
    if (n->n_inputs < 2 || in[1].dtype == RI_DTYPE_UNDEFINED) {
      *count = -1;
      return RI_OK;
    }
    t = &in[1];
    if (!ri__is_int_list(t, 1))
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (%s): axes must be a 1-D int64 tensor", n->name, op);
    RI__TRY(need_host(n, t, "axes", err));
    cnt = ri__shape_numel(&t->shape);
  }
  if (cnt > rank)
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (%s): %lld axes for rank %d", n->name, op,
                       (long long)cnt, rank);
  for (int i = 0; i < cnt; i++) {
    int64_t a = list ? list[i] : ri__tensor_get_int(t, i);
    if (!ri__norm_axis(a, rank, &axes[i]))
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (%s): axis %lld is out of range for rank %d", n->name,
                         op, (long long)a, rank);
    for (int k = 0; k < i; k++)
      if (axes[k] == axes[i])
        return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (%s): axis %d appears twice", n->name, op, axes[i]);
  }
  *count = (int)cnt;
  return RI_OK;
}

static ri_status infer_squeeze(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  RI__TRY(known_dtype(n, in, err));
  const ri__shape *is = &in[0].shape;
  int axes[RI__MAX_RANK], cnt, drop[RI__MAX_RANK] = {0};
  RI__TRY(read_axes(n, in, is->rank, axes, &cnt, err));
  if (cnt <= 0) { /* no axes, or an empty list (as onnxruntime reads it): every size-1 axis */
    for (int k = 0; k < is->rank; k++)
      drop[k] = is->dims[k] == 1;
  } else {
    for (int i = 0; i < cnt; i++) {
      if (is->dims[axes[i]] != 1)
        return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Squeeze): axis %d has size %lld, not 1", n->name,
                           axes[i], (long long)is->dims[axes[i]]);
      drop[axes[i]] = 1;
    }
  }
  ri__shape s = {0};
  for (int k = 0; k < is->rank; k++)
    if (!drop[k]) s.dims[s.rank++] = is->dims[k];
  out[0].dtype = in[0].dtype;
  out[0].shape = s;
  return RI_OK;
}

static ri_status infer_unsqueeze(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  RI__TRY(known_dtype(n, in, err));
  const ri__shape *is = &in[0].shape;
  const int64_t *list = NULL;
  int64_t cnt = ri__node_attr_ints(n, "axes", &list);
  if (!list && n->n_inputs > 1 && in[1].dtype != RI_DTYPE_UNDEFINED) cnt = ri__shape_numel(&in[1].shape);
  if (cnt < 0 || is->rank + cnt > RI__MAX_RANK)
    return ri__err_set(err, RI_ERR_LIMIT, "node '%s' (Unsqueeze): output rank %lld exceeds %d", n->name,
                       (long long)(is->rank + cnt), RI__MAX_RANK);
  int orank = (int)(is->rank + cnt), axes[RI__MAX_RANK], got, add[RI__MAX_RANK] = {0};
  RI__TRY(read_axes(n, in, orank, axes, &got, err));
  if (got < 0) return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Unsqueeze): axes are required", n->name);
  for (int i = 0; i < got; i++)
    add[axes[i]] = 1;
  ri__shape s = {.rank = orank};
  for (int k = 0, j = 0; k < orank; k++)
    s.dims[k] = add[k] ? 1 : is->dims[j++];
  out[0].dtype = in[0].dtype;
  out[0].shape = s;
  return RI_OK;
}

const ri__op_def ri__opdef_Reshape = {"Reshape", 2, 2, 1, 1, check_reshape, infer_reshape};
const ri__op_def ri__opdef_Flatten = {"Flatten", 1, 1, 1, 1, NULL, infer_flatten};
const ri__op_def ri__opdef_Squeeze = {"Squeeze", 1, 2, 1, 1, check_axes_form, infer_squeeze};
const ri__op_def ri__opdef_Unsqueeze = {"Unsqueeze", 1, 2, 1, 1, check_axes_form, infer_unsqueeze};
