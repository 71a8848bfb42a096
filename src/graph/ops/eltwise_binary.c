/* Binary arithmetic with multidirectional broadcasting: Add, Sub, Mul, Div. Both inputs have one dtype
 * (float32, float64 or an 8..64-bit integer type); the output has that dtype and the broadcast shape.
 * Integer Div truncates toward zero (as C and onnxruntime do); integer arithmetic wraps. */
#include "graph/broadcast.h"
#include "graph/op.h"

static int is_binary_type(ri_dtype t) {
  switch (t) {
  case RI_DTYPE_FLOAT32:
  case RI_DTYPE_FLOAT64:
  case RI_DTYPE_INT8:
  case RI_DTYPE_UINT8:
  case RI_DTYPE_INT16:
  case RI_DTYPE_UINT16:
  case RI_DTYPE_INT32:
  case RI_DTYPE_UINT32:
  case RI_DTYPE_INT64:
  case RI_DTYPE_UINT64: return 1;
  default: return 0;
  }
}

static ri_status infer_binary(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  const char *op = ri__op_name(n->op);
  if (in[0].dtype != in[1].dtype)
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (%s): input dtypes differ (%s and %s)", n->name, op,
                       ri_dtype_name(in[0].dtype), ri_dtype_name(in[1].dtype));
  if (!is_binary_type(in[0].dtype))
    return ri__err_set(err, RI_ERR_SHAPE,
                       "node '%s' (%s): dtype %s is not supported (allowed: float32, float64, 8..64-bit "
                       "integers)",
                       n->name, op, ri_dtype_name(in[0].dtype));
  if (n->act != RI__ACT_NONE && in[0].dtype != RI_DTYPE_FLOAT32)
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (%s): a fused activation needs float32, not %s", n->name,
                       op, ri_dtype_name(in[0].dtype));
  if (ri__broadcast_shapes(&in[0].shape, &in[1].shape, &out[0].shape) != RI_OK) {
    char a[160], b[160];
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (%s): input shapes %s and %s do not broadcast", n->name,
                       op, ri__shape_str(&in[0].shape, a, sizeof a),
                       ri__shape_str(&in[1].shape, b, sizeof b));
  }
  out[0].dtype = in[0].dtype;
  return RI_OK;
}

/* Opset 7 removed the legacy `broadcast` and `axis` attributes; none remain. */
static ri_status check_binary(const ri__graph *g, ri__node *n, ri__err *err) {
  if (n->n_attrs > 0)
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "node '%s' (%s): unknown attribute '%s' at opset %lld",
                       n->name, ri__op_name(n->op), n->attrs[0].name ? n->attrs[0].name : "?",
                       (long long)g->opset);
  return RI_OK;
}

const ri__op_def ri__opdef_Add = {"Add", 2, 2, 1, 1, check_binary, infer_binary};
const ri__op_def ri__opdef_Sub = {"Sub", 2, 2, 1, 1, check_binary, infer_binary};
const ri__op_def ri__opdef_Mul = {"Mul", 2, 2, 1, 1, check_binary, infer_binary};
const ri__op_def ri__opdef_Div = {"Div", 2, 2, 1, 1, check_binary, infer_binary};
