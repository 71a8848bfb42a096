/* QuantizeLinear and DequantizeLinear (opsets 10, 13, 19, 21), per-tensor and per-axis.
 *
 * Quantized types: uint8, int8, uint16, int16 (int32 for DequantizeLinear's input). Float types: float32
 * and float16 for x and the scale. Blocked quantization (block_size != 0), float8 and 4-bit types are not
 * supported. A scale with one element is per-tensor; otherwise it is 1-D of length x.dims[axis]. The zero
 * point, when present, has the scale's shape and the quantized type. */
#include <string.h>

#include "graph/op.h"
#include "graph/ops/axis_util.h"

static int is_q_type(ri_dtype t) {
  return t == RI_DTYPE_UINT8 || t == RI_DTYPE_INT8 || t == RI_DTYPE_UINT16 || t == RI_DTYPE_INT16;
}

static int is_f_type(ri_dtype t) { return t == RI_DTYPE_FLOAT32 || t == RI_DTYPE_FLOAT16; }

static ri_status check_common(const ri__graph *g, ri__node *n, ri__err *err) {
  const char *op = ri__op_name(n->op);
  int64_t bs = ri__node_attr_int(n, "block_size", 0);
  if (bs != 0)
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "node '%s' (%s): blocked quantization (block_size=%lld) is not supported", n->name, op,
                       (long long)bs);
  for (int i = 0; i < n->n_attrs; i++) {
    const char *a = n->attrs[i].name ? n->attrs[i].name : "?";
    int known = 0;
    for (const char *const *k = (const char *const[]){"axis", "block_size", "saturate", "output_dtype", 0};
         *k; k++)
      if (!strcmp(a, *k)) known = 1;
    if (!known || n->attrs[i].type != RI__ATTR_INT)
      return ri__err_set(err, RI_ERR_UNSUPPORTED,
                         "node '%s' (%s): attribute '%s' is not supported at opset %lld", n->name, op, a,
                         (long long)g->opset);
  }
  return RI_OK;
}

static ri_status check_q(const ri__graph *g, ri__node *n, ri__err *err) {
  RI__TRY(check_common(g, n, err));
  int64_t od = ri__node_attr_int(n, "output_dtype", 0);
  if (od != 0 && !is_q_type((ri_dtype)od))
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "node '%s' (QuantizeLinear): output_dtype %lld is not supported (uint8, int8, uint16, "
                       "int16 are)",
                       n->name, (long long)od);
  return RI_OK;
}

static ri_status check_dq(const ri__graph *g, ri__node *n, ri__err *err) {
  RI__TRY(check_common(g, n, err));
  int64_t od = ri__node_attr_int(n, "output_dtype", 0);
  if (od != 0 && od != RI_DTYPE_FLOAT32 && od != RI_DTYPE_FLOAT16)
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "node '%s' (DequantizeLinear): output_dtype %lld is not supported", n->name,
                       (long long)od);
  return RI_OK;
}

/* Validates scale and zero point against x. */
static ri_status check_params(const ri__node *n, const ri__tensor *in, ri_dtype qtype, ri__err *err) {
  const char *op = ri__op_name(n->op);
  const ri__tensor *s = &in[1];
  int64_t ns = ri__shape_numel(&s->shape);
  if (!is_f_type(s->dtype))
    return ri__err_set(err, RI_ERR_SHAPE,
                       "node '%s' (%s): scale dtype %s is not supported (float32, float16)", n->name, op,
                       ri_dtype_name(s->dtype));
  if (ns != 1) {
    int axis;
    if (s->shape.rank != 1)
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (%s): scale must be a scalar or 1-D, not rank %d",
                         n->name, op, s->shape.rank);
    if (!ri__norm_axis(ri__node_attr_int(n, "axis", 1), in[0].shape.rank, &axis))
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (%s): axis %lld is out of range for rank %d", n->name,
                         op, (long long)ri__node_attr_int(n, "axis", 1), in[0].shape.rank);
    if (in[0].shape.dims[axis] != ns)
      return ri__err_set(err, RI_ERR_SHAPE,
                         "node '%s' (%s): scale has %lld elements but axis %d of the input has %lld", n->name,
                         op, (long long)ns, axis, (long long)in[0].shape.dims[axis]);
  }
  if (n->n_inputs > 2 && in[2].dtype != RI_DTYPE_UNDEFINED) {
    if (in[2].dtype != qtype)
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (%s): zero point dtype %s, expected %s", n->name, op,
                         ri_dtype_name(in[2].dtype), ri_dtype_name(qtype));
    if (ri__shape_numel(&in[2].shape) != ns || in[2].shape.rank > 1)
      return ri__err_set(err, RI_ERR_SHAPE,
                         "node '%s' (%s): zero point has %lld elements, the scale has %lld", n->name, op,
                         (long long)ri__shape_numel(&in[2].shape), (long long)ns);
  }
  return RI_OK;
}

static ri_status infer_q(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  if (!is_f_type(in[0].dtype))
    return ri__err_set(err, RI_ERR_SHAPE,
                       "node '%s' (QuantizeLinear): input dtype %s is not supported (float32, float16)",
                       n->name, ri_dtype_name(in[0].dtype));
  int64_t od = ri__node_attr_int(n, "output_dtype", 0);
  ri_dtype qt = od ? (ri_dtype)od : RI_DTYPE_UINT8;
  if (n->n_inputs > 2 && in[2].dtype != RI_DTYPE_UNDEFINED) {
    if (od && in[2].dtype != (ri_dtype)od)
      return ri__err_set(err, RI_ERR_SHAPE,
                         "node '%s' (QuantizeLinear): zero point dtype %s differs from output_dtype %s",
                         n->name, ri_dtype_name(in[2].dtype), ri_dtype_name((ri_dtype)od));
    qt = in[2].dtype;
  }
  if (!is_q_type(qt))
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "node '%s' (QuantizeLinear): output dtype %s is not supported (uint8, int8, uint16, "
                       "int16)",
                       n->name, ri_dtype_name(qt));
  RI__TRY(check_params(n, in, qt, err));
  out[0].dtype = qt;
  out[0].shape = in[0].shape;
  return RI_OK;
}

static ri_status infer_dq(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  ri_dtype xt = in[0].dtype;
  if (!is_q_type(xt) && xt != RI_DTYPE_INT32)
    return ri__err_set(err, ri_dtype_size(xt) ? RI_ERR_SHAPE : RI_ERR_UNSUPPORTED,
                       "node '%s' (DequantizeLinear): input dtype %s is not supported (uint8, int8, uint16, "
                       "int16, int32)",
                       n->name, ri_dtype_name(xt));
  RI__TRY(check_params(n, in, xt, err));
  int64_t od = ri__node_attr_int(n, "output_dtype", 0);
  if (od && od != in[1].dtype)
    return ri__err_set(err, RI_ERR_SHAPE,
                       "node '%s' (DequantizeLinear): output_dtype %lld differs from the scale's dtype %s",
                       n->name, (long long)od, ri_dtype_name(in[1].dtype));
  out[0].dtype = in[1].dtype;
  out[0].shape = in[0].shape;
  return RI_OK;
}

const ri__op_def ri__opdef_QuantizeLinear = {"QuantizeLinear", 2, 3, 1, 1, check_q, infer_q};
const ri__op_def ri__opdef_DequantizeLinear = {"DequantizeLinear", 2, 3, 1, 1, check_dq, infer_dq};
