/* Constant folding: a node whose present inputs are all constants is computed once, at build time, with its
 * CPU reference kernel, and its outputs become constants in place (same value index and name, so graph
 * outputs and consumers need no rewiring).
 *
 * Every op of the op list is deterministic, so any of them may be folded. Exceptions: Identity (removed by
 * shape_ops without copying its input) and nodes with an output over RI__FOLD_MAX_BYTES (a Tile or broadcast
 * of a small constant may be far larger than the graph; it stays a run-time node). A Constant node holding
 * its tensor as a graph constant (attribute "value") is folded by copying that tensor; other Constant
 * forms go through the reference kernel like any op. */
#include <string.h>

#include "core/alloc.h"
#include "graph/op.h"
#include "graph/passes.h"
#include "graph/shape_infer.h"

static int all_inputs_const(const ri__graph *g, const ri__node *n) {
  for (int k = 0; k < n->n_inputs; k++) {
    int v = n->inputs[k];
    if (v >= 0 && g->values[v].kind != RI__VAL_CONST) return 0;
  }
  return 1;
}

/* Constant with a tensor attribute: copies the tensor into the node's output. Returns 0 when the node has
 * no such attribute (then it is folded by its kernel). */
static int fold_constant_attr(ri__graph *g, ri__node *n, ri_status *st, ri__err *err) {
  const ri__attr *a = ri__node_attr(n, "value");
  if (!a || a->type != RI__ATTR_TENSOR || a->value < 0 || a->value >= g->n_values) return 0;
  const ri__value *src = &g->values[a->value];
  if (src->kind != RI__VAL_CONST || n->n_outputs < 1 || n->outputs[0] < 0) return 0;
  void *data = ri__malloc(src->nbytes ? src->nbytes : 1);
  if (!data) {
    *st = RI__OOM(err);
    return 1;
  }
  if (src->nbytes) memcpy(data, src->data, src->nbytes);
  ri__pass_make_const(g, n->outputs[0], src->dtype, &src->shape, data, src->nbytes);
  n->dead = 1;
  *st = RI_OK;
  return 1;
}

/* Folds node ni through infer() and its reference kernel; *folded says whether it was folded. */
static ri_status fold_node(ri__graph *g, int ni, ri__tensor *in, ri__tensor *out, int *folded, ri__err *err) {
  ri__node *n = &g->nodes[ni];
  *folded = 0;
  const ri__op_def *def = ri__op_get(n->op);
  /* a folded NonMaxSuppression would lose its real row count (op.h) */
  if (!def || !def->infer || ri__op_has_padded_rows(n->op)) return RI_OK;
  for (int k = 0; k < n->n_inputs; k++) {
    memset(&in[k], 0, sizeof in[k]);
    int v = n->inputs[k];
    if (v < 0) continue;
    in[k].dtype = g->values[v].dtype;
    in[k].shape = g->values[v].shape;
    in[k].data = g->values[v].data;
  }
  memset(out, 0, (size_t)n->n_outputs * sizeof *out);
  ri_status s = def->infer(n, in, out, err);
  if (s != RI_OK) return ri__err_prefix(err, "folding constant node '%s' (%s)", n->name, def->name);
  for (int k = 0; k < n->n_outputs; k++) {
    out[k].data = NULL;
    if (n->outputs[k] < 0) continue;
    size_t nb;
    if (ri__tensor_nbytes(out[k].dtype, &out[k].shape, &nb, NULL) != RI_OK || nb > RI__FOLD_MAX_BYTES)
      return RI_OK; /* too large to materialise: stays a run-time node */
  }
  for (int k = 0; k < n->n_outputs; k++) {
    if (n->outputs[k] < 0) continue;
    size_t nb = 0;
    (void)ri__tensor_nbytes(out[k].dtype, &out[k].shape, &nb, NULL);
    out[k].data = ri__calloc(1, nb ? nb : 1);
    if (!out[k].data) {
      s = RI__OOM(err);
      break;
    }
  }
  if (s == RI_OK) s = ri__node_eval_ref(n, in, out, err);
  if (s != RI_OK) {
    for (int k = 0; k < n->n_outputs; k++)
      ri__free(out[k].data);
    return ri__err_prefix(err, "folding constant node '%s'", n->name);
  }
  for (int k = 0; k < n->n_outputs; k++) {
    if (n->outputs[k] < 0) continue;
    size_t nb = 0;
    (void)ri__tensor_nbytes(out[k].dtype, &out[k].shape, &nb, NULL);
    ri__pass_make_const(g, n->outputs[k], out[k].dtype, &out[k].shape, out[k].data, nb);
  }
  n->dead = 1;
  *folded = 1;
  return RI_OK;
}

ri_status ri__pass_fold_constants(ri__graph *g, ri__err *err) {
  int max_io = 1;
  for (int ni = 0; ni < g->n_nodes; ni++) {
    if (g->nodes[ni].n_inputs > max_io) max_io = g->nodes[ni].n_inputs;
    if (g->nodes[ni].n_outputs > max_io) max_io = g->nodes[ni].n_outputs;
  }
  ri__tensor *in = ri__calloc((size_t)max_io, sizeof *in);
  ri__tensor *out = ri__calloc((size_t)max_io, sizeof *out);
  ri_status s = in && out ? RI_OK : RI__OOM(err);
  /* Nodes are in topological order, so one sweep folds whole constant chains. */
  for (int ni = 0; s == RI_OK && ni < g->n_nodes; ni++) {
    ri__node *n = &g->nodes[ni];
    if (n->dead || n->op == RI__OP_Identity || !all_inputs_const(g, n)) continue;
    if (n->op == RI__OP_Constant && fold_constant_attr(g, n, &s, err)) continue;
    int folded;
    s = fold_node(g, ni, in, out, &folded, err);
  }
  ri__free(in);
  ri__free(out);
  if (s != RI_OK) return s;
  return ri__graph_link(g, err);
}
