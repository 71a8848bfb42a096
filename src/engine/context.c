/* ri_context_t: per-thread execution of an engine. Shapes are resolved once per batch size and reused while
 * consecutive runs keep the same batch. */
#include <string.h>

#include "core/alloc.h"
#include "engine/engine_impl.h"
#include "graph/shape_infer.h"

ri_status ri_context_create(ri_engine_t *e, ri_context_t **out) {
  if (!e || !out) return RI_ERR_INVALID_ARG;
  *out = NULL;
  ri_context_t *c = ri__calloc(1, sizeof *c);
  if (!c) return RI_ERR_NO_MEMORY;
  c->e = e;
  c->vals = ri__calloc((size_t)(e->c.graph->n_values ? e->c.graph->n_values : 1), sizeof(ri__tensor));
  ri__err err;
  ri__err_clear(&err);
  ri_status s = c->vals ? e->be->ctx_create(e->be_state, &c->be_ctx, &err) : RI__OOM(&err);
  if (s != RI_OK) {
    pthread_mutex_lock(&e->mu);
    e->err = err;
    pthread_mutex_unlock(&e->mu);
    ri_context_destroy(c);
    return s;
  }
  *out = c;
  return RI_OK;
}

void ri_context_destroy(ri_context_t *c) {
  if (!c) return;
  if (c->vals_batch) ri__shapes_free(c->e->c.graph, c->vals);
  if (c->be_ctx) c->e->be->ctx_destroy(c->be_ctx);
  ri__free(c->vals);
  ri__free(c);
}

const char *ri_context_last_error(const ri_context_t *c) { return c ? c->err.msg : ""; }

static ri_status resolve(ri_context_t *c, int batch) {
  if (batch < 1 || batch > c->e->c.max_batch)
    return ri__err_set(&c->err, RI_ERR_INVALID_ARG, "batch %d is outside 1..%d (the engine's maximum)", batch,
                       c->e->c.max_batch);
  if (c->vals_batch == batch) return RI_OK;
  const ri__graph *g = c->e->c.graph;
  if (c->vals_batch) ri__shapes_free(g, c->vals);
  c->vals_batch = 0;
  memset(c->vals, 0, (size_t)g->n_values * sizeof(ri__tensor));
  ri_status s = ri__shapes_resolve(g, batch, c->vals, &c->err);
  if (s != RI_OK) {
    ri__shapes_free(g, c->vals);
    return s;
  }
  c->vals_batch = batch;
  return RI_OK;
}

ri_status ri_context_run(ri_context_t *c, int batch, const void *const *inputs, void *const *outputs) {
  if (!c) return RI_ERR_INVALID_ARG;
  ri__err_clear(&c->err);
  const ri__graph *g = c->e->c.graph;
  if (!inputs && g->n_inputs) return ri__err_set(&c->err, RI_ERR_INVALID_ARG, "inputs is NULL");
  if (!outputs && g->n_outputs) return ri__err_set(&c->err, RI_ERR_INVALID_ARG, "outputs is NULL");
  for (int i = 0; i < g->n_inputs; i++)
    if (!inputs[i])
      return ri__err_set(&c->err, RI_ERR_INVALID_ARG, "input %d ('%s') is NULL", i, g->values[g->inputs[i]].name);
  for (int i = 0; i < g->n_outputs; i++)
    if (!outputs[i])
      return ri__err_set(&c->err, RI_ERR_INVALID_ARG, "output %d ('%s') is NULL", i,
                         g->values[g->outputs[i]].name);
  RI__TRY(resolve(c, batch));
  return c->e->be->run(c->be_ctx, c->vals, batch, inputs, outputs, &c->err);
}

ri_status ri_context_output_shape(ri_context_t *c, int batch, int index, ri_tensor_info *info) {
  if (!c || !info) return RI_ERR_INVALID_ARG;
  ri__err_clear(&c->err);
  const ri__graph *g = c->e->c.graph;
  if (index < 0 || index >= g->n_outputs)
    return ri__err_set(&c->err, RI_ERR_INVALID_ARG, "output index %d is outside 0..%d", index, g->n_outputs - 1);
  RI__TRY(resolve(c, batch));
  int v = g->outputs[index];
  memset(info, 0, sizeof *info);
  info->name = g->values[v].name ? g->values[v].name : "";
  info->dtype = c->vals[v].dtype;
  info->rank = c->vals[v].shape.rank;
  for (int i = 0; i < info->rank; i++) info->dims[i] = c->vals[v].shape.dims[i];
  return RI_OK;
}
