/* Constant nodes: their value becomes a constant value of the graph, named after the node's output, and the
 * node itself disappears. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "onnx/internal.h"

static const char *type_name(int type) {
  switch (type) {
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return "FLOAT";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return "INT";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: return "STRING";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: return "TENSOR";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS: return "FLOATS";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: return "INTS";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS: return "STRINGS";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED: return "UNDEFINED";
  default: return "another type";
  }
}

/* Element data for the scalar and list forms (value_float, value_floats, value_int, value_ints). */
static ri_status list_tensor(const void *src, size_t n, int scalar, ri_dtype dtype, ri__tensor *t,
                             size_t *nbytes, const char *what, ri__err *err) {
  if (n > RI__MAX_ATTR_LIST)
    return ri__err_set(err, RI_ERR_LIMIT, "%s has %zu elements, more than the limit of %d", what, n,
                       RI__MAX_ATTR_LIST);
  size_t es = ri_dtype_size(dtype);
  t->dtype = dtype;
  t->shape.rank = scalar ? 0 : 1;
  t->shape.dims[0] = scalar ? 0 : (int64_t)n;
  *nbytes = n * es;
  t->data = ri__malloc(*nbytes ? *nbytes : 1);
  if (!t->data) return RI__OOM(err);
  if (n) memcpy(t->data, src, n * es);
  return RI_OK;
}

/* Converts the single value attribute a into a tensor. */
static ri_status value_of(Onnx__AttributeProto *a, const char *node, const char *base_dir, ri__tensor *t,
                          size_t *nbytes, ri__err *err) {
  char what[2 * RI__ONNX_SHOW + 48];
  snprintf(what, sizeof what, "Constant node '%.*s' attribute '%.*s'", RI__ONNX_SHOW, node, RI__ONNX_SHOW,
           a->name ? a->name : "");
  int type = ri__onnx_attr_type(a);
  const char *name = a->name ? a->name : "";
  int want;
  if (strcmp(name, "value") == 0)
    want = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
  else if (strcmp(name, "value_float") == 0)
    want = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
  else if (strcmp(name, "value_floats") == 0)
    want = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
  else if (strcmp(name, "value_int") == 0)
    want = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  else if (strcmp(name, "value_ints") == 0)
    want = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
  else if (strcmp(name, "value_string") == 0 || strcmp(name, "value_strings") == 0 ||
           strcmp(name, "sparse_value") == 0)
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "%s: string and sparse constants are not supported", what);
  else
    return ri__err_set(err, RI_ERR_PARSE, "%s: unknown attribute for a Constant", what);
  /* A list attribute with no elements carries no field, so its type cannot be inferred when undeclared. */
  int empty_list = type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED &&
                   (want == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS ||
                    want == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  if (type != want && !empty_list)
    return ri__err_set(err, RI_ERR_PARSE, "%s has attribute type %s, expected %s", what, type_name(type),
                       type_name(want));
  switch (want) {
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
    if (!a->t) return ri__err_set(err, RI_ERR_PARSE, "%s holds no tensor", what);
    return ri__onnx_tensor_convert(a->t, what, base_dir, t, nbytes, err);
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
    return list_tensor(&a->f, 1, 1, RI_DTYPE_FLOAT32, t, nbytes, what, err);
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
    return list_tensor(a->floats, a->n_floats, 0, RI_DTYPE_FLOAT32, t, nbytes, what, err);
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
    return list_tensor(&a->i, 1, 1, RI_DTYPE_INT64, t, nbytes, what, err);
  default: return list_tensor(a->ints, a->n_ints, 0, RI_DTYPE_INT64, t, nbytes, what, err);
  }
}

ri_status ri__onnx_add_constant(ri__graph *g, ri__onnx_names *names, Onnx__NodeProto *np, const char *node,
                                const char *base_dir, ri__err *err) {
  if (np->n_input != 0)
    return ri__err_set(err, RI_ERR_PARSE, "Constant node '%.*s' has %zu inputs (expected none)",
                       RI__ONNX_SHOW, node, np->n_input);
  if (np->n_output != 1 || !np->output[0] || !np->output[0][0])
    return ri__err_set(err, RI_ERR_PARSE, "Constant node '%.*s' must have exactly one named output",
                       RI__ONNX_SHOW, node);
  if (np->n_attribute != 1)
    return ri__err_set(err, RI_ERR_PARSE,
                       "Constant node '%.*s' has %zu attributes (expected exactly one value)", RI__ONNX_SHOW,
                       node, np->n_attribute);
  const char *out_name = np->output[0];
  if (strlen(out_name) > RI__MAX_NAME)
    return ri__err_set(err, RI_ERR_LIMIT, "Constant node '%.*s': output name longer than %d bytes",
                       RI__ONNX_SHOW, node, RI__MAX_NAME);
  int v = ri__onnx_names_find(names, g, out_name);
  /* A node earlier in an unsorted list may already have referred to the name: then the value exists as a
   * not-yet-produced activation and becomes the constant. Any other existing definition is a conflict. */
  if (v >= 0 && !(g->values[v].kind == RI__VAL_ACTIVATION && g->values[v].producer < 0)) {
    const ri__value *old = &g->values[v];
    const char *by = old->kind == RI__VAL_INPUT   ? "a graph input"
                     : old->kind == RI__VAL_CONST ? "an initializer or another Constant"
                                                  : "another node";
    return ri__err_set(err, RI_ERR_PARSE, "Constant node '%.*s' output '%.*s' is already defined by %s",
                       RI__ONNX_SHOW, node, RI__ONNX_SHOW, out_name, by);
  }
  ri__tensor t;
  size_t nbytes = 0;
  RI__TRY(value_of(np->attribute[0], node, base_dir, &t, &nbytes, err));
  if (v >= 0) {
    ri__value *val = &g->values[v];
    val->kind = RI__VAL_CONST;
    val->dtype = t.dtype;
    val->shape = t.shape;
    val->data = t.data;
    val->nbytes = nbytes;
    return RI_OK;
  }
  v = ri__graph_add_const(g, out_name, t.dtype, &t.shape, t.data, nbytes);
  if (v < 0) return RI__OOM(err);
  return ri__onnx_names_add(names, g, v, err);
}
