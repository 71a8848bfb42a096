/* Softmax (ONNX opsets 11..21), float32. Parameters in softmax_params.h. */
#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/softmax_params.h"

int ri__softmax_geometry(const ri__softmax_params *p, const ri__shape *shape, int64_t *outer, int64_t *len,
                         int64_t *inner) {
  const int r = shape->rank;
  int64_t axis = p->axis;
  if (r == 0) {
    if (axis != 0 && axis != -1) return 0;
    *outer = *len = *inner = 1;
    return 1;
  }
  if (axis < -r || axis > r - 1) return 0;
  if (axis < 0) axis += r;
  int64_t o = 1, l = 1, in = 1;
  for (int i = 0; i < r; i++) {
    if (i < axis)
      o *= shape->dims[i];
    else if (i == axis || p->legacy)
      l *= shape->dims[i];
    else
      in *= shape->dims[i];
  }
  *outer = o;
  *len = l;
  *inner = in;
  return 1;
}

/* A type ONNX allows for this op's floating-point inputs but runinfer does not implement is unsupported;
 * any other type is a malformed model. */
static ri_status type_status(ri_dtype dt) {
  return dt == RI_DTYPE_FLOAT16 || dt == RI_DTYPE_FLOAT64 ? RI_ERR_UNSUPPORTED : RI_ERR_SHAPE;
}

static ri_status softmax_check(const ri__graph *g, ri__node *n, ri__err *err) {
  ri__free(n->params);
  n->params = NULL;
  ri__softmax_params *p = ri__malloc(sizeof *p);
  if (!p) return RI__OOM(err);
  p->legacy = g->opset < 13;
  p->axis = ri__node_attr_int(n, "axis", p->legacy ? 1 : -1);
  n->params = p;
  return RI_OK;
}

static ri_status softmax_infer(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  const ri__softmax_params *p = n->params;
  if (!p) return ri__err_set(err, RI_ERR_INTERNAL, "Softmax node '%s': check() has not run", n->name);
  char b[160];
  if (in[0].dtype != RI_DTYPE_FLOAT32)
    return ri__err_set(err, type_status(in[0].dtype), "Softmax node '%s': input must be float32, got %s",
                       n->name, ri_dtype_name(in[0].dtype));
  int64_t o, l, i;
  if (!ri__softmax_geometry(p, &in[0].shape, &o, &l, &i))
    return ri__err_set(err, RI_ERR_SHAPE, "Softmax node '%s': axis %lld is out of range for input %s",
                       n->name, (long long)p->axis, ri__shape_str(&in[0].shape, b, sizeof b));
  out[0].dtype = RI_DTYPE_FLOAT32;
  out[0].shape = in[0].shape;
  out[0].data = NULL;
  return RI_OK;
}

const ri__op_def ri__opdef_Softmax = {"Softmax", 1, 1, 1, 1, softmax_check, softmax_infer};
