/* BatchNormalization, inference mode only (ONNX opsets 11..21). Parameters in batchnorm_params.h. */
#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/batchnorm_params.h"

/* A type ONNX allows for this op's floating-point inputs but runinfer does not implement is unsupported;
 * any other type is a malformed model. */
static ri_status type_status(ri_dtype dt) {
  return dt == RI_DTYPE_FLOAT16 || dt == RI_DTYPE_FLOAT64 ? RI_ERR_UNSUPPORTED : RI_ERR_SHAPE;
}

static ri_status bn_check(const ri__graph *g, ri__node *n, ri__err *err) {
  ri__free(n->params);
  n->params = NULL;
  for (int i = 0; i < n->n_inputs; i++) {
    if (n->inputs[i] < 0)
      return ri__err_set(err, RI_ERR_INVALID_ARG, "BatchNormalization node '%s': input %d is required",
                         n->name, i);
  }
  int64_t tm = ri__node_attr_int(n, "training_mode", 0);
  if (tm != 0)
    return ri__err_set(
        err, RI_ERR_UNSUPPORTED,
        "BatchNormalization node '%s': training_mode = %lld (only inference mode is supported)", n->name,
        (long long)tm);
  for (int i = 1; i < n->n_outputs; i++) {
    if (n->outputs[i] >= 0)
      return ri__err_set(err, RI_ERR_UNSUPPORTED,
                         "BatchNormalization node '%s': output %d (training statistics) is not supported",
                         n->name, i);
  }
  const ri__attr *sp = ri__node_attr(n, "spatial");
  if (sp && !(sp->type == RI__ATTR_INT && sp->i == 1))
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "BatchNormalization node '%s': attribute 'spatial' other than 1", n->name);
  ri__batchnorm_params *p = ri__malloc(sizeof *p);
  if (!p) return RI__OOM(err);
  p->epsilon = ri__node_attr_float(n, "epsilon", 1e-5f);
  n->params = p;
  return RI_OK;
}

static ri_status bn_infer(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  static const char *const names[5] = {"X", "scale", "B", "input_mean", "input_var"};
  const ri__tensor *x = &in[0];
  char b[160];
  if (x->dtype != RI_DTYPE_FLOAT32 || x->shape.rank < 2)
    return ri__err_set(err, x->dtype != RI_DTYPE_FLOAT32 ? type_status(x->dtype) : RI_ERR_SHAPE,
                       "BatchNormalization node '%s': X must be float32 of rank >= 2, got %s %s", n->name,
                       ri_dtype_name(x->dtype), ri__shape_str(&x->shape, b, sizeof b));
  const int64_t c = x->shape.dims[1];
  for (int i = 1; i < 5; i++) {
    const ri__tensor *t = &in[i];
    if (t->dtype != RI_DTYPE_FLOAT32 || t->shape.rank != 1 || t->shape.dims[0] != c)
      return ri__err_set(
          err, RI_ERR_SHAPE,
          "BatchNormalization node '%s': %s must be float32 [%lld] to match the channels of X, got %s %s",
          n->name, names[i], (long long)c, ri_dtype_name(t->dtype), ri__shape_str(&t->shape, b, sizeof b));
  }
  out[0].dtype = RI_DTYPE_FLOAT32;
  out[0].shape = x->shape;
  out[0].data = NULL;
  return RI_OK;
}

const ri__op_def ri__opdef_BatchNormalization = {"BatchNormalization", 5, 5, 1, 5, bn_check, bn_infer};
