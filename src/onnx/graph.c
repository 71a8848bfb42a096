/* GraphProto → ri__graph: initializers, inputs, nodes and outputs, then topological order. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "onnx/internal.h"

static ri_status check_name(const char *name, const char *kind, size_t index, ri__err *err) {
  if (!name || !name[0]) return ri__err_set(err, RI_ERR_PARSE, "%s %zu has no name", kind, index);
  size_t len = strlen(name);
  if (len > RI__MAX_NAME)
    return ri__err_set(err, RI_ERR_LIMIT, "%s %zu has a name of %zu bytes (limit %d)", kind, index, len,
                       RI__MAX_NAME);
  return RI_OK;
}

static ri_status add_initializers(ri__graph *g, ri__onnx_names *names, Onnx__GraphProto *gp,
                                  const char *base_dir, ri__err *err) {
  if (gp->n_sparse_initializer)
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "graph has %zu sparse initializers (not supported)",
                       gp->n_sparse_initializer);
  if (gp->n_initializer > RI__MAX_VALUES)
    return ri__err_set(err, RI_ERR_LIMIT, "graph has %zu initializers, more than the limit of %d",
                       gp->n_initializer, RI__MAX_VALUES);
  for (size_t i = 0; i < gp->n_initializer; i++) {
    Onnx__TensorProto *t = gp->initializer[i];
    RI__TRY(check_name(t->name, "initializer", i, err));
    if (ri__onnx_names_find(names, g, t->name) >= 0)
      return ri__err_set(err, RI_ERR_PARSE, "initializer '%.*s' is defined twice", RI__ONNX_SHOW, t->name);
    char what[RI__ONNX_SHOW + 20];
    snprintf(what, sizeof what, "initializer '%.*s'", RI__ONNX_SHOW, t->name);
    ri__tensor tt;
    size_t nbytes;
    RI__TRY(ri__onnx_tensor_convert(t, what, base_dir, &tt, &nbytes, err));
    int v = ri__graph_add_const(g, t->name, tt.dtype, &tt.shape, tt.data, nbytes);
    if (v < 0) return RI__OOM(err);
    RI__TRY(ri__onnx_names_add(names, g, v, err));
  }
  return RI_OK;
}

/* Element type and shape of a graph input. A dim without a value (dim_param, unset, or a negative
 * dim_value as some exporters write) is symbolic; only axis 0 may be, and it is then the batch axis. */
static ri_status input_type(const Onnx__ValueInfoProto *vi, ri_dtype *dtype, ri__shape *shape,
                            int *batch_axis, ri__err *err) {
  const char *nm = vi->name;
  char buf[48];
  if (!vi->type) return ri__err_set(err, RI_ERR_PARSE, "graph input '%.*s' has no type", RI__ONNX_SHOW, nm);
  if (vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !vi->type->tensor_type)
    return ri__err_set(
        err, RI_ERR_UNSUPPORTED,
        "graph input '%.*s' is not a dense tensor (sequence, map, optional and sparse inputs are "
        "not supported)",
        RI__ONNX_SHOW, nm);
  const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
  if (!tt->has_elem_type || !ri__onnx_dtype(tt->elem_type, dtype))
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "graph input '%.*s' has element type %s, which is not supported", RI__ONNX_SHOW, nm,
                       ri__onnx_dtype_str(tt->has_elem_type ? tt->elem_type : 0, buf, sizeof buf));
  if (!tt->shape)
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "graph input '%.*s' has no shape (its rank must be known)",
                       RI__ONNX_SHOW, nm);
  if (tt->shape->n_dim > RI__MAX_RANK)
    return ri__err_set(err, RI_ERR_LIMIT, "graph input '%.*s' has rank %zu, more than the limit of %d",
                       RI__ONNX_SHOW, nm, tt->shape->n_dim, RI__MAX_RANK);
  *batch_axis = -1;
  shape->rank = (int)tt->shape->n_dim;
  for (size_t d = 0; d < tt->shape->n_dim; d++) {
    const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
    if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dim->dim_value >= 0) {
      shape->dims[d] = dim->dim_value;
      continue;
    }
    if (d != 0) {
      const char *param =
          dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && dim->dim_param
              ? dim->dim_param
              : "?";
      return ri__err_set(err, RI_ERR_UNSUPPORTED,
                         "input '%.*s' axis %zu is symbolic ('%.*s'); only the first (batch) axis may be",
                         RI__ONNX_SHOW, nm, d, RI__ONNX_SHOW, param);
    }
    *batch_axis = 0;
    shape->dims[0] = 1;
  }
  size_t nbytes;
  if (ri__tensor_nbytes(*dtype, shape, &nbytes, err) != RI_OK)
    return ri__err_prefix(err, "graph input '%.*s'", RI__ONNX_SHOW, nm);
  return RI_OK;
}

static ri_status add_inputs(ri__graph *g, ri__onnx_names *names, const Onnx__GraphProto *gp, ri__err *err) {
  if (gp->n_input > RI__MAX_VALUES)
    return ri__err_set(err, RI_ERR_LIMIT, "graph has %zu inputs, more than the limit of %d", gp->n_input,
                       RI__MAX_VALUES);
  g->inputs = ri__malloc((gp->n_input + 1) * sizeof(int));
  if (!g->inputs) return RI__OOM(err);
  for (size_t i = 0; i < gp->n_input; i++) {
    const Onnx__ValueInfoProto *vi = gp->input[i];
    RI__TRY(check_name(vi->name, "graph input", i, err));
    int v = ri__onnx_names_find(names, g, vi->name);
    if (v >= 0 && g->values[v].kind == RI__VAL_CONST) continue; /* an initializer: a constant, not an input */
    if (v >= 0)
      return ri__err_set(err, RI_ERR_PARSE, "graph input '%.*s' is listed twice", RI__ONNX_SHOW, vi->name);
    ri_dtype dtype = RI_DTYPE_UNDEFINED;
    ri__shape shape = {0};
    int batch_axis = -1;
    RI__TRY(input_type(vi, &dtype, &shape, &batch_axis, err));
    v = ri__graph_add_value(g, vi->name, dtype, &shape, RI__VAL_INPUT);
    if (v < 0) return RI__OOM(err);
    g->values[v].batch_axis = batch_axis;
    RI__TRY(ri__onnx_names_add(names, g, v, err));
    g->inputs[g->n_inputs++] = v;
  }
  return RI_OK;
}

static ri_status add_outputs(ri__graph *g, ri__onnx_names *names, const Onnx__GraphProto *gp, ri__err *err) {
  if (gp->n_output == 0) return ri__err_set(err, RI_ERR_PARSE, "graph has no outputs");
  if (gp->n_output > RI__MAX_VALUES)
    return ri__err_set(err, RI_ERR_LIMIT, "graph has %zu outputs, more than the limit of %d", gp->n_output,
                       RI__MAX_VALUES);
  g->outputs = ri__malloc(gp->n_output * sizeof(int));
  if (!g->outputs) return RI__OOM(err);
  for (size_t i = 0; i < gp->n_output; i++) {
    const char *nm = gp->output[i]->name;
    RI__TRY(check_name(nm, "graph output", i, err));
    int v = ri__onnx_names_find(names, g, nm);
    if (v < 0)
      return ri__err_set(err, RI_ERR_PARSE,
                         "graph output '%.*s' is not produced by any node, initializer or graph input",
                         RI__ONNX_SHOW, nm);
    if (g->values[v].is_output)
      return ri__err_set(err, RI_ERR_PARSE, "graph output '%.*s' is listed twice", RI__ONNX_SHOW, nm);
    g->values[v].is_output = 1;
    g->outputs[g->n_outputs++] = v;
  }
  return RI_OK;
}

static ri_status build(ri__graph *g, ri__onnx_names *names, Onnx__GraphProto *gp, const char *base_dir,
                       ri__err *err) {
  g->name = ri__strdup(gp->name ? gp->name : "");
  if (!g->name) return RI__OOM(err);
  RI__TRY(ri__onnx_check_operators(gp, err));
  RI__TRY(add_initializers(g, names, gp, base_dir, err));
  RI__TRY(add_inputs(g, names, gp, err));
  RI__TRY(ri__onnx_add_nodes(g, names, gp, base_dir, err));
  RI__TRY(add_outputs(g, names, gp, err));
  /* A graph without nodes (outputs that are inputs or initializers) is already sorted; linking it directly
   * also keeps ri__graph_toposort from copying zero nodes out of a NULL array. */
  if (g->n_nodes == 0) return ri__graph_link(g, err);
  return ri__graph_toposort(g, err);
}

ri_status ri__onnx_build_graph(Onnx__GraphProto *gp, const char *base_dir, ri__graph **out, ri__err *err) {
  *out = NULL;
  ri__graph *g = ri__graph_create();
  if (!g) return RI__OOM(err);
  ri__onnx_names names = {0};
  ri_status st = build(g, &names, gp, base_dir, err);
  ri__onnx_names_free(&names);
  if (st != RI_OK) {
    ri__graph_destroy(g);
    return st;
  }
  *out = g;
  return RI_OK;
}
