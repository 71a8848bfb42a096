/* Unary elementwise operators: Relu, Clip, LeakyRelu, HardSigmoid, HardSwish, Sigmoid, Exp. The output
 * has the input's dtype and shape. Relu and Clip also accept integer tensors (ONNX allows them); the
 * others are float32 only. */
#include "graph/op.h"

static int is_float_only(ri_dtype t) { return t == RI_DTYPE_FLOAT32; }

/* Relu (opset 14) and Clip (opset 12) are defined on signed integers too; Clip also on unsigned. */
static int is_relu_type(ri_dtype t) {
  return t == RI_DTYPE_FLOAT32 || t == RI_DTYPE_FLOAT64 || t == RI_DTYPE_INT8 || t == RI_DTYPE_INT16 ||
         t == RI_DTYPE_INT32 || t == RI_DTYPE_INT64;
}

static int is_clip_type(ri_dtype t) {
  return is_relu_type(t) || t == RI_DTYPE_UINT8 || t == RI_DTYPE_UINT16 || t == RI_DTYPE_UINT32 ||
         t == RI_DTYPE_UINT64;
}

static ri_status same_as_input(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err,
                               int (*ok)(ri_dtype), const char *allowed) {
  if (!ok(in[0].dtype))
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (%s): input dtype %s is not supported (allowed: %s)",
                       n->name, ri__op_name(n->op), ri_dtype_name(in[0].dtype), allowed);
  out[0].dtype = in[0].dtype;
  out[0].shape = in[0].shape;
  return RI_OK;
}

static ri_status infer_float(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  return same_as_input(n, in, out, err, is_float_only, "float32");
}

static ri_status infer_relu(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  return same_as_input(n, in, out, err, is_relu_type, "float32, float64, int8, int16, int32, int64");
}

/* Clip's min and max are optional inputs holding one element each, of the input's dtype. */
static ri_status infer_clip(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  RI__TRY(same_as_input(n, in, out, err, is_clip_type, "float32, float64 and 8..64-bit integers"));
  for (int i = 1; i < n->n_inputs && i < 3; i++) {
    if (in[i].dtype == RI_DTYPE_UNDEFINED) continue;
    if (in[i].dtype != in[0].dtype)
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Clip): %s has dtype %s, the input has %s", n->name,
                         i == 1 ? "min" : "max", ri_dtype_name(in[i].dtype), ri_dtype_name(in[0].dtype));
    if (ri__shape_numel(&in[i].shape) != 1 || in[i].shape.rank > 1)
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Clip): %s must be a scalar (rank %d, %lld elements)",
                         n->name, i == 1 ? "min" : "max", in[i].shape.rank,
                         (long long)ri__shape_numel(&in[i].shape));
  }
  return RI_OK;
}

/* Since opset 11 min and max are inputs; the attributes of older opsets must not appear. */
static ri_status check_clip(const ri__graph *g, ri__node *n, ri__err *err) {
  if (n->n_attrs > 0)
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "node '%s' (Clip): attribute '%s' is not supported at opset %lld (min and max are "
                       "inputs since opset 11)",
                       n->name, n->attrs[0].name ? n->attrs[0].name : "?", (long long)g->opset);
  return RI_OK;
}

const ri__op_def ri__opdef_Relu = {"Relu", 1, 1, 1, 1, NULL, infer_relu};
const ri__op_def ri__opdef_Clip = {"Clip", 1, 3, 1, 1, check_clip, infer_clip};
const ri__op_def ri__opdef_LeakyRelu = {"LeakyRelu", 1, 1, 1, 1, NULL, infer_float};
const ri__op_def ri__opdef_HardSigmoid = {"HardSigmoid", 1, 1, 1, 1, NULL, infer_float};
const ri__op_def ri__opdef_HardSwish = {"HardSwish", 1, 1, 1, 1, NULL, infer_float};
const ri__op_def ri__opdef_Sigmoid = {"Sigmoid", 1, 1, 1, 1, NULL, infer_float};
const ri__op_def ri__opdef_Exp = {"Exp", 1, 1, 1, 1, NULL, infer_float};
