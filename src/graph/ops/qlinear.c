/* QLinearConv (ONNX opset 10+) and QLinearAdd (the com.microsoft contrib op onnxruntime uses), the integer
 * forms of DequantizeLinear -> Conv / Add -> QuantizeLinear groups. The qdq_to_qlinear pass makes them; an
 * ONNX model may also hold QLinearConv directly.
 *
 * QLinearConv inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, optional
 * B. x and w are uint8 or int8, each zero point has its tensor's dtype, y's dtype is y_zero_point's; the
 * scales are float32; x, y scales and zero points have one element; w's have one or M (output channels);
 * B is int32 [M] in units of x_scale * w_scale. Attributes and parameters are Conv's (ri__conv_params).
 *
 * QLinearAdd inputs: A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale, C_zero_point; all three
 * tensors share one dtype (uint8 or int8) and, in runinfer, one shape (no broadcasting); every scale and
 * zero point has one element.
 *
 * The arithmetic (integer accumulation, then onnxruntime's float requantisation) is documented with the
 * reference kernels in src/backend/cpu/ref/qlinear_conv.c and qlinear_add.c. */
#include <string.h>

#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/conv_params.h"

static int is_8bit(ri_dtype t) { return t == RI_DTYPE_UINT8 || t == RI_DTYPE_INT8; }

/* Conv's check() and infer() see a view of the node with inputs (x, w, B). */
static ri_status qconv_check(const ri__graph *g, ri__node *n, ri__err *err) {
  if (n->n_inputs < 8 || n->inputs[0] < 0 || n->inputs[3] < 0)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "QLinearConv node '%s': inputs x and w are required",
                       n->name);
  ri__node view = *n;
  int ins[3] = {n->inputs[0], n->inputs[3], n->n_inputs > 8 ? n->inputs[8] : -1};
  view.inputs = ins;
  view.n_inputs = 3;
  ri_status s = ri__opdef_Conv.check(g, &view, err);
  n->params = view.params; /* Conv's check() freed the old params */
  return s;
}

static ri_status want_scalar(const ri__node *n, const ri__tensor *t, const char *what, ri_dtype dt,
                             ri__err *err) {
  char b[160];
  if (t->dtype != dt || ri__shape_numel(&t->shape) != 1 || t->shape.rank > 1)
    return ri__err_set(err, RI_ERR_SHAPE, "%s node '%s': %s must be one %s element, got %s %s",
                       ri__op_name(n->op), n->name, what, ri_dtype_name(dt), ri_dtype_name(t->dtype),
                       ri__shape_str(&t->shape, b, sizeof b));
  return RI_OK;
}

static ri_status want_8bit(const ri__node *n, const ri__tensor *t, const char *what, ri__err *err) {
  if (!is_8bit(t->dtype))
    return ri__err_set(err, ri_dtype_size(t->dtype) ? RI_ERR_UNSUPPORTED : RI_ERR_SHAPE,
                       "%s node '%s': %s dtype %s is not supported (uint8, int8)", ri__op_name(n->op),
                       n->name, what, ri_dtype_name(t->dtype));
  return RI_OK;
}

static ri_status qconv_infer(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  char b[160];
  RI__TRY(want_8bit(n, &in[0], "x", err));
  RI__TRY(want_8bit(n, &in[3], "w", err));
  RI__TRY(want_8bit(n, &in[7], "y_zero_point", err));
  RI__TRY(want_scalar(n, &in[1], "x_scale", RI_DTYPE_FLOAT32, err));
  RI__TRY(want_scalar(n, &in[2], "x_zero_point", in[0].dtype, err));
  RI__TRY(want_scalar(n, &in[6], "y_scale", RI_DTYPE_FLOAT32, err));
  RI__TRY(want_scalar(n, &in[7], "y_zero_point", in[7].dtype, err));
  const int64_t m = in[3].shape.rank >= 1 ? in[3].shape.dims[0] : 0;
  for (int k = 4; k <= 5; k++) {
    const ri__tensor *t = &in[k];
    int64_t ne = ri__shape_numel(&t->shape);
    ri_dtype want = k == 4 ? RI_DTYPE_FLOAT32 : in[3].dtype;
    if (t->dtype != want || t->shape.rank > 1 || (ne != 1 && ne != m))
      return ri__err_set(err, RI_ERR_SHAPE,
                         "QLinearConv node '%s': %s must be %s with 1 or %lld elements, got %s %s", n->name,
                         k == 4 ? "w_scale" : "w_zero_point", ri_dtype_name(want), (long long)m,
                         ri_dtype_name(t->dtype), ri__shape_str(&t->shape, b, sizeof b));
  }
  ri__tensor view[3] = {in[0], in[3], {RI_DTYPE_UNDEFINED, {0, {0}}, NULL}};
  view[0].dtype = view[1].dtype = RI_DTYPE_FLOAT32;
  if (n->n_inputs > 8 && in[8].dtype != RI_DTYPE_UNDEFINED) {
    if (in[8].dtype != RI_DTYPE_INT32)
      return ri__err_set(err, RI_ERR_SHAPE, "QLinearConv node '%s': B must be int32, got %s", n->name,
                         ri_dtype_name(in[8].dtype));
    view[2] = in[8];
    view[2].dtype = RI_DTYPE_FLOAT32;
  }
  RI__TRY(ri__opdef_Conv.infer(n, view, out, err));
  out[0].dtype = in[7].dtype;
  return RI_OK;
}

static ri_status qadd_infer(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  char b1[160], b2[160];
  RI__TRY(want_8bit(n, &in[0], "A", err));
  if (in[3].dtype != in[0].dtype || in[7].dtype != in[0].dtype)
    return ri__err_set(
        err, RI_ERR_SHAPE, "QLinearAdd node '%s': A, B and C_zero_point must share one dtype (%s, %s, %s)",
        n->name, ri_dtype_name(in[0].dtype), ri_dtype_name(in[3].dtype), ri_dtype_name(in[7].dtype));
  if (!ri__shape_equal(&in[0].shape, &in[3].shape))
    return ri__err_set(
        err, RI_ERR_UNSUPPORTED, "QLinearAdd node '%s': A %s and B %s differ (broadcasting is not supported)",
        n->name, ri__shape_str(&in[0].shape, b1, sizeof b1), ri__shape_str(&in[3].shape, b2, sizeof b2));
  static const char *const names[] = {"A_scale", "A_zero_point", "", "B_scale", "B_zero_point",
                                      "C_scale", "C_zero_point"};
  for (int k = 1; k <= 7; k++) {
    if (k == 3) continue;
    RI__TRY(want_scalar(n, &in[k], names[k - 1], k == 1 || k == 4 || k == 6 ? RI_DTYPE_FLOAT32 : in[0].dtype,
                        err));
  }
  out[0].dtype = in[0].dtype;
  out[0].shape = in[0].shape;
  out[0].data = NULL;
  return RI_OK;
}

const ri__op_def ri__opdef_QLinearConv = {"QLinearConv", 8, 9, 1, 1, qconv_check, qconv_infer};
const ri__op_def ri__opdef_QLinearAdd = {"QLinearAdd", 8, 8, 1, 1, NULL, qadd_infer};
