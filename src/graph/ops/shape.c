/* Shape, Constant and Identity. */
#include "graph/ops/shape.h"

#include <string.h>

#include "core/alloc.h"
#include "graph/op.h"

/* ---- Shape ---- */

void ri__shape_op_range(const ri__node *n, int rank, int *start, int *end) {
  int64_t s = ri__node_attr_int(n, "start", 0), e = ri__node_attr_int(n, "end", rank);
  if (s < 0) s += rank;
  if (e < 0) e += rank;
  s = s < 0 ? 0 : (s > rank ? rank : s);
  e = e < 0 ? 0 : (e > rank ? rank : e);
  *start = (int)s;
  *end = (int)(e > s ? e : s);
}

static ri_status check_shape(const ri__graph *g, ri__node *n, ri__err *err) {
  for (int i = 0; i < n->n_attrs; i++) {
    const ri__attr *a = &n->attrs[i];
    int is_range = a->name && (!strcmp(a->name, "start") || !strcmp(a->name, "end"));
    if (!is_range || a->type != RI__ATTR_INT || g->opset < 15)
      return ri__err_set(err, RI_ERR_UNSUPPORTED,
                         "node '%s' (Shape): attribute '%s' is not supported at opset %lld", n->name,
                         a->name ? a->name : "?", (long long)g->opset);
  }
  return RI_OK;
}

static ri_status infer_shape(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  int s, e;
  ri__shape_op_range(n, in[0].shape.rank, &s, &e);
  out[0].dtype = RI_DTYPE_INT64;
  out[0].shape.rank = 1;
  out[0].shape.dims[0] = e - s;
  return RI_OK;
}

/* ---- Constant ---- */

/* Copies the single value attribute (value, value_float(s), value_int(s)) into n->params. Tensor values
 * are graph constants (RI__ATTR_TENSOR holds their index). Sparse and string values are unsupported. */
static ri_status check_constant(const ri__graph *g, ri__node *n, ri__err *err) {
  ri__free(n->params);
  n->params = NULL;
  if (n->n_attrs != 1)
    return ri__err_set(err, RI_ERR_PARSE,
                       "node '%s' (Constant): expected exactly one value attribute, got %d", n->name,
                       n->n_attrs);
  const ri__attr *a = &n->attrs[0];
  const char *name = a->name ? a->name : "?";
  ri_dtype dt;
  ri__shape shape = {0};
  const void *src = NULL;
  size_t nbytes;
  int64_t one_i;
  if (!strcmp(name, "value") && a->type == RI__ATTR_TENSOR) {
    if (a->value < 0 || a->value >= g->n_values || g->values[a->value].kind != RI__VAL_CONST)
      return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Constant): value attribute refers to no constant",
                         n->name);
    const ri__value *v = &g->values[a->value];
    dt = v->dtype;
    shape = v->shape;
    src = v->data;
  } else if (!strcmp(name, "value_float") && a->type == RI__ATTR_FLOAT) {
    dt = RI_DTYPE_FLOAT32;
    src = &a->f;
  } else if (!strcmp(name, "value_int") && a->type == RI__ATTR_INT) {
    dt = RI_DTYPE_INT64;
    one_i = a->i;
    src = &one_i;
  } else if (!strcmp(name, "value_floats") && a->type == RI__ATTR_FLOATS) {
    dt = RI_DTYPE_FLOAT32;
    shape.rank = 1;
    shape.dims[0] = a->n;
    src = a->floats;
  } else if (!strcmp(name, "value_ints") && a->type == RI__ATTR_INTS) {
    dt = RI_DTYPE_INT64;
    shape.rank = 1;
    shape.dims[0] = a->n;
    src = a->ints;
  } else {
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "node '%s' (Constant): attribute '%s' is not supported",
                       n->name, name);
  }
  RI__TRY(ri__tensor_nbytes(dt, &shape, &nbytes, err));
  if (nbytes && !src)
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Constant): value has no data", n->name);
  if (!strcmp(name, "value") && g->values[a->value].nbytes != nbytes)
    return ri__err_set(err, RI_ERR_INTERNAL,
                       "node '%s' (Constant): value holds %zu bytes, its shape needs %zu", n->name,
                       g->values[a->value].nbytes, nbytes);
  ri__const_params *p = ri__malloc(sizeof *p + nbytes);
  if (!p) return RI__OOM(err);
  p->dtype = dt;
  p->shape = shape;
  p->nbytes = nbytes;
  if (nbytes) memcpy(p->data, src, nbytes);
  n->params = p;
  return RI_OK;
}

static ri_status infer_constant(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  const ri__const_params *p = n->params;
  if (!p)
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Constant): shape inference ran before check()",
                       n->name);
  out[0].dtype = p->dtype;
  out[0].shape = p->shape;
  return RI_OK;
}

/* ---- Identity ---- */

static ri_status infer_identity(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  if (ri_dtype_size(in[0].dtype) == 0)
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Identity): input dtype %s is not supported", n->name,
                       ri_dtype_name(in[0].dtype));
  out[0] = in[0];
  out[0].data = NULL;
  return RI_OK;
}

const ri__op_def ri__opdef_Shape = {"Shape", 1, 1, 1, 1, check_shape, infer_shape};
const ri__op_def ri__opdef_Constant = {"Constant", 0, 0, 1, 1, check_constant, infer_constant};
const ri__op_def ri__opdef_Identity = {"Identity", 1, 1, 1, 1, NULL, infer_identity};
