/* Small graph-editing helpers shared by the optimisation passes. */
#include "graph/passes.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "graph/op.h"

const char *ri__pass_vname(const ri__graph *g, int v) {
  return v >= 0 && v < g->n_values && g->values[v].name ? g->values[v].name : "?";
}

int *ri__pass_use_counts(const ri__graph *g) {
  int *uses = ri__calloc((size_t)(g->n_values ? g->n_values : 1), sizeof(int));
  if (!uses) return NULL;
  for (int ni = 0; ni < g->n_nodes; ni++) {
    const ri__node *n = &g->nodes[ni];
    if (n->dead) continue;
    for (int k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] >= 0 && n->inputs[k] < g->n_values) uses[n->inputs[k]]++;
  }
  return uses;
}

void ri__pass_replace_uses(ri__graph *g, int from, int to) {
  for (int ni = 0; ni < g->n_nodes; ni++) {
    ri__node *n = &g->nodes[ni];
    if (n->dead) continue;
    for (int k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] == from) n->inputs[k] = to;
  }
}

void ri__pass_make_const(ri__graph *g, int v, ri_dtype dtype, const ri__shape *shape, void *data,
                         size_t nbytes) {
  ri__value *val = &g->values[v];
  val->kind = RI__VAL_CONST;
  val->dtype = dtype;
  val->shape = *shape;
  val->data = data;
  val->nbytes = nbytes;
  val->producer = -1;
  val->host = 0;
  val->batch_dependent = 0;
  val->mem_offset = -1;
  val->mem_size = 0;
}

char *ri__pass_unique_name(const ri__graph *g, const char *base, const char *suffix) {
  if (!base) base = "value";
  size_t len = strlen(base) + strlen(suffix) + 16;
  char *name = ri__malloc(len);
  if (!name) return NULL;
  snprintf(name, len, "%s%s", base, suffix);
  for (int i = 2; ri__graph_find_value(g, name) >= 0; i++)
    snprintf(name, len, "%s%s_%d", base, suffix, i);
  return name;
}

ri_status ri__pass_recheck_node(ri__graph *g, int ni, ri__err *err) {
  ri__node *n = &g->nodes[ni];
  ri__free(n->params);
  n->params = NULL;
  const ri__op_def *def = ri__op_get(n->op);
  if (!def || !def->check) return RI_OK;
  ri_status s = def->check(g, n, err);
  if (s != RI_OK)
    return ri__err_prefix(err, "re-checking node '%s' (%s) after a rewrite", n->name, def->name);
  return RI_OK;
}

ri_status ri__pass_set_input(ri__graph *g, int ni, int k, int value, ri__err *err) {
  ri__node *n = &g->nodes[ni];
  if (k < 0 || k >= RI__MAX_NODE_IO)
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s': input slot %d out of range", n->name, k);
  if (k >= n->n_inputs) {
    int *p = ri__realloc(n->inputs, (size_t)(k + 1) * sizeof(int));
    if (!p) return RI__OOM(err);
    for (int i = n->n_inputs; i <= k; i++)
      p[i] = -1;
    n->inputs = p;
    n->n_inputs = k + 1;
  }
  n->inputs[k] = value;
  return RI_OK;
}
