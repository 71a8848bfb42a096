/* Shape resolution over a graph for one batch size, host evaluation of shape subgraphs, and the graph-wide
 * op checks declared in graph/op.h. */
#include "graph/shape_infer.h"

#include <string.h>

#include "backend/cpu/kernel.h"
#include "core/alloc.h"
#include "graph/op.h"

static const char *vname(const ri__graph *g, int v) { return g->values[v].name ? g->values[v].name : "?"; }

void ri__shapes_free(const ri__graph *g, ri__tensor *vals) {
  if (!g || !vals) return;
  for (int i = 0; i < g->n_values; i++) {
    if (g->values[i].kind == RI__VAL_CONST) continue;
    ri__free(vals[i].data);
    vals[i].data = NULL;
  }
}

ri_status ri__node_eval_ref(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  ri__kernel_fn fn = ri__ref_kernel(n->op);
  if (!fn)
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (%s): no reference kernel", n->name,
                       ri__op_name(n->op));
  ri__exec x;
  memset(&x, 0, sizeof x);
  x.err = err;
  x.node_index = -1;
  if (err) err->msg[0] = 0;
  ri_status s = fn(n, in, out, &x);
  if (s == RI_OK || !err) return s;
  if (err->msg[0] == 0) ri__err_set(err, s, "reference kernel failed");
  err->status = s;
  return ri__err_prefix(err, "evaluating node '%s' (%s) on the host", n->name, ri__op_name(n->op));
}

/* Whether discovery evaluates node n on the host, given its inferred outputs. */
static int discoverable(const ri__node *n, const ri__tensor *in, const ri__tensor *out) {
  if (n->op == RI__OP_Constant) return 0; /* its tensor lives in the graph; fold_constants handles it */
  /* data-dependent length (op.h): always runs as a node */
  if (ri__op_has_padded_rows(n->op)) return 0;
  int present = 0;
  for (int k = 0; k < n->n_inputs; k++) {
    if (n->inputs[k] < 0) continue;
    present++;
    if (!in[k].data && n->op != RI__OP_Shape) return 0;
  }
  if (present == 0) return 0;
  for (int k = 0; k < n->n_outputs; k++) {
    if (n->outputs[k] < 0) continue;
    int64_t ne = ri__shape_numel(&out[k].shape);
    if (ne < 0 || ne > RI__HOST_MAX_ELEMS) return 0;
  }
  return 1;
}

/* Sets vals for graph inputs and constants. */
static ri_status resolve_sources(const ri__graph *g, int batch, ri__tensor *vals, ri__err *err) {
  for (int i = 0; i < g->n_values; i++) {
    const ri__value *v = &g->values[i];
    if (v->kind != RI__VAL_CONST) continue;
    if (!v->data && !v->released && ri__shape_numel(&v->shape) != 0)
      return ri__err_set(err, RI_ERR_INTERNAL, "constant '%s' has no data", vname(g, i));
    vals[i].dtype = v->dtype;
    vals[i].shape = v->shape;
    vals[i].data = v->data;
  }
  for (int k = 0; k < g->n_inputs; k++) {
    int i = g->inputs[k];
    if (i < 0 || i >= g->n_values)
      return ri__err_set(err, RI_ERR_INTERNAL, "graph input %d refers to no value", k);
    const ri__value *v = &g->values[i];
    if (v->kind != RI__VAL_INPUT) continue; /* an input with an initializer acts as a constant */
    vals[i].dtype = v->dtype;
    vals[i].shape = v->shape;
    if (v->batch_axis == 0) {
      if (v->shape.rank < 1)
        return ri__err_set(err, RI_ERR_SHAPE, "graph input '%s' is a scalar but has a batch axis",
                           vname(g, i));
      vals[i].shape.dims[0] = batch;
    }
  }
  return RI_OK;
}

/* Infers node ni's outputs into vals and evaluates it on the host when asked to (discover: decide here). */
static ri_status resolve_node(const ri__graph *g, int ni, int batch, int discover, ri__tensor *in,
                              ri__tensor *out, ri__tensor *vals, unsigned char *evaluated, ri__err *err) {
  const ri__node *n = &g->nodes[ni];
  const ri__op_def *def = ri__op_get(n->op);
  if (!def || !def->infer)
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "node '%s' (op %d): no shape inference", n->name, (int)n->op);
  for (int k = 0; k < n->n_inputs; k++) {
    int v = n->inputs[k];
    memset(&in[k], 0, sizeof in[k]);
    if (v < 0) continue;
    if (v >= g->n_values)
      return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' input %d refers to no value", n->name, k);
    if (vals[v].dtype == RI_DTYPE_UNDEFINED)
      return ri__err_set(err, RI_ERR_INTERNAL,
                         "node '%s' (%s) input %d ('%s') has no type: no live earlier node produces it",
                         n->name, ri__op_name(n->op), k, vname(g, v));
    in[k] = vals[v];
  }
  for (int k = 0; k < n->n_outputs; k++)
    memset(&out[k], 0, sizeof out[k]);
  ri_status s = def->infer(n, in, out, err);
  if (s != RI_OK) return s;
  for (int k = 0; k < n->n_outputs; k++) {
    int v = n->outputs[k];
    if (v < 0) continue;
    if (v >= g->n_values || g->values[v].kind != RI__VAL_ACTIVATION || vals[v].data)
      return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' output %d is not a value only it produces", n->name,
                         k);
    if (out[k].shape.rank < 0 || out[k].shape.rank > RI__MAX_RANK)
      return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (%s) output %d: inferred rank %d", n->name,
                         ri__op_name(n->op), k, out[k].shape.rank);
    size_t nb;
    s = ri__tensor_nbytes(out[k].dtype, &out[k].shape, &nb, err);
    if (s != RI_OK) return ri__err_prefix(err, "output %d ('%s')", k, vname(g, v));
    out[k].data = NULL;
  }
  int host = discover ? discoverable(n, in, out) : n->host;
  if (host) {
    for (int k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] >= 0 && !in[k].data && n->op != RI__OP_Shape)
        return ri__err_set(err, RI_ERR_INTERNAL,
                           "host node '%s' (%s) input %d ('%s') is not known on the host", n->name,
                           ri__op_name(n->op), k, vname(g, n->inputs[k]));
    for (int k = 0; k < n->n_outputs; k++) {
      int v = n->outputs[k];
      if (v < 0) continue;
      size_t nb = 0;
      (void)ri__tensor_nbytes(out[k].dtype, &out[k].shape, &nb, NULL);
      vals[v] = out[k];
      vals[v].data = ri__malloc(nb ? nb : 1);
      if (!vals[v].data) return RI__OOM(err);
      memset(vals[v].data, 0, nb ? nb : 1);
      out[k].data = vals[v].data;
    }
    RI__TRY(ri__node_eval_ref(n, in, out, err));
    if (evaluated) evaluated[ni] = 1;
  } else {
    for (int k = 0; k < n->n_outputs; k++)
      if (n->outputs[k] >= 0) vals[n->outputs[k]] = out[k];
  }
  (void)batch;
  return RI_OK;
}

static ri_status resolve(const ri__graph *g, int batch, ri__tensor *vals, int discover,
                         unsigned char *evaluated, ri__err *err) {
  if (batch < 1) return ri__err_set(err, RI_ERR_INVALID_ARG, "shape resolution: batch %d < 1", batch);
  memset(vals, 0, (size_t)g->n_values * sizeof *vals);
  if (evaluated) memset(evaluated, 0, (size_t)g->n_nodes);
  int max_io = 1;
  for (int ni = 0; ni < g->n_nodes; ni++) {
    if (g->nodes[ni].n_inputs > max_io) max_io = g->nodes[ni].n_inputs;
    if (g->nodes[ni].n_outputs > max_io) max_io = g->nodes[ni].n_outputs;
  }
  ri__tensor *in = ri__calloc((size_t)max_io, sizeof *in);
  ri__tensor *out = ri__calloc((size_t)max_io, sizeof *out);
  ri_status s = in && out ? resolve_sources(g, batch, vals, err) : RI__OOM(err);
  for (int ni = 0; s == RI_OK && ni < g->n_nodes; ni++) {
    const ri__node *n = &g->nodes[ni];
    if (n->dead) continue;
    s = resolve_node(g, ni, batch, discover, in, out, vals, evaluated, err);
    if (s != RI_OK)
      s = ri__err_prefix(err, "shape resolution at batch %d, node '%s' (%s)", batch, n->name,
                         ri__op_name(n->op));
  }
  ri__free(in);
  ri__free(out);
  if (s != RI_OK) ri__shapes_free(g, vals);
  return s;
}

ri_status ri__shapes_resolve(const ri__graph *g, int batch, ri__tensor *vals, ri__err *err) {
  return resolve(g, batch, vals, 0, NULL, err);
}

ri_status ri__shapes_resolve_discover(const ri__graph *g, int batch, ri__tensor *vals,
                                      unsigned char *evaluated, ri__err *err) {
  return resolve(g, batch, vals, 1, evaluated, err);
}

ri_status ri__graph_infer_shapes(ri__graph *g, int batch, ri__err *err) {
  ri__tensor *vals = ri__calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *vals);
  if (!vals) return RI__OOM(err);
  /* Discovery, not n->host: before shape analysis has marked host nodes, a Reshape's shape input computed
   * from Shape must still be evaluated for the Reshape's shape to be known. */
  ri_status s = ri__shapes_resolve_discover(g, batch, vals, NULL, err);
  if (s == RI_OK) {
    for (int i = 0; i < g->n_values; i++) {
      if (vals[i].dtype == RI_DTYPE_UNDEFINED || g->values[i].kind == RI__VAL_CONST) continue;
      g->values[i].dtype = vals[i].dtype;
      g->values[i].shape = vals[i].shape;
    }
    g->batch = batch;
  }
  ri__shapes_free(g, vals);
  ri__free(vals);
  return s;
}

ri_status ri__graph_check_ops(ri__graph *g, ri__err *err) {
  for (int ni = 0; ni < g->n_nodes; ni++) {
    ri__node *n = &g->nodes[ni];
    if (n->dead) continue;
    const ri__op_def *def = ri__op_get(n->op);
    if (!def) return ri__err_set(err, RI_ERR_UNSUPPORTED, "node '%s': unknown op %d", n->name, (int)n->op);
    if (n->n_inputs < def->min_inputs || n->n_inputs > def->max_inputs)
      return ri__err_set(err, RI_ERR_PARSE, "node '%s' (%s) has %d inputs; the op takes %d to %d", n->name,
                         def->name, n->n_inputs, def->min_inputs, def->max_inputs);
    if (n->n_outputs < def->min_outputs || n->n_outputs > def->max_outputs)
      return ri__err_set(err, RI_ERR_PARSE, "node '%s' (%s) has %d outputs; the op gives %d to %d", n->name,
                         def->name, n->n_outputs, def->min_outputs, def->max_outputs);
    for (int k = 0; k < def->min_inputs; k++)
      if (n->inputs[k] < 0)
        return ri__err_set(err, RI_ERR_PARSE, "node '%s' (%s): required input %d is missing", n->name,
                           def->name, k);
    for (int k = 0; k < def->min_outputs; k++)
      if (n->outputs[k] < 0)
        return ri__err_set(err, RI_ERR_PARSE, "node '%s' (%s): required output %d is missing", n->name,
                           def->name, k);
    /* check() fills params from scratch, so a graph may be checked again after passes changed it. */
    ri__free(n->params);
    n->params = NULL;
    if (!def->check) continue;
    ri_status s = def->check(g, n, err);
    if (s != RI_OK) return ri__err_prefix(err, "checking node '%s' (%s)", n->name, def->name);
  }
  return RI_OK;
}
