/* ri_context_t: per-thread execution of an engine. Shapes are resolved once per batch size and reused while
 * consecutive runs keep the same batch. */
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/alloc.h"
#include "engine/engine_impl.h"
#include "graph/op.h"
#include "graph/shape_infer.h"

ri_status ri_context_create(ri_engine_t *e, ri_context_t **out) {
  if (!e || !out) return RI_ERR_INVALID_ARG;
  *out = NULL;
  ri_context_t *c = ri__calloc(1, sizeof *c);
  if (!c) return RI_ERR_NO_MEMORY;
  c->e = e;
  c->vals = ri__calloc((size_t)(e->c.graph->n_values ? e->c.graph->n_values : 1), sizeof(ri__tensor));
  c->rows = ri__calloc((size_t)(e->c.graph->n_outputs ? e->c.graph->n_outputs : 1), sizeof(int64_t));
  ri__err err;
  ri__err_clear(&err);
  ri_status s = c->vals && c->rows ? e->be->ctx_create(e->be_state, &c->be_ctx, &err) : RI__OOM(&err);
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
  ri__free(c->rows);
  if (c->in_bufs)
    for (int i = 0; i < c->e->c.graph->n_inputs; i++)
      ri__aligned_free(c->in_bufs[i]);
  ri__free(c->in_bufs);
  ri__free(c);
}

ri_status ri_context_input_buffer(ri_context_t *c, int index, void **ptr, size_t *bytes) {
  if (!c || !ptr) return RI_ERR_INVALID_ARG;
  ri__err_clear(&c->err);
  *ptr = NULL;
  if (bytes) *bytes = 0;
  const ri__graph *g = c->e->c.graph;
  if (index < 0 || index >= g->n_inputs)
    return ri__err_set(&c->err, RI_ERR_INVALID_ARG, "input index %d is outside 0..%d", index,
                       g->n_inputs - 1);
  size_t n = 0;
  void *p = c->e->be->input_buffer ? c->e->be->input_buffer(c->be_ctx, index, &n) : NULL;
  if (!p) {
    ri_tensor_info info;
    ri_status s = ri_engine_input_info(c->e, index, &info);
    if (s != RI_OK) return ri__err_set(&c->err, s, "input %d: %s", index, ri_engine_last_error(c->e));
    n = ri_dtype_size(info.dtype);
    for (int k = 0; k < info.rank; k++)
      n *= (size_t)(info.dims[k] < 0 ? c->e->c.max_batch : info.dims[k]);
    if (!c->in_bufs) c->in_bufs = ri__calloc((size_t)g->n_inputs, sizeof *c->in_bufs);
    if (!c->in_bufs) return RI__OOM(&c->err);
    if (!c->in_bufs[index]) c->in_bufs[index] = ri__aligned_alloc(n ? n : 64);
    if (!c->in_bufs[index]) return RI__OOM(&c->err);
    p = c->in_bufs[index];
  }
  *ptr = p;
  if (bytes) *bytes = n;
  return RI_OK;
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

/* Rows written to each output of an op with padded rows (ri__op_has_padded_rows): the real rows come first
 * and the padding rows start with -1, so the count is the first row that does. */
static void count_padded_rows(ri_context_t *c, void *const *outputs) {
  const ri__graph *g = c->e->c.graph;
  for (int i = 0; i < g->n_outputs; i++) {
    int v = g->outputs[i];
    int pn = g->values[v].producer;
    c->rows[i] = -1;
    if (pn < 0 || !ri__op_has_padded_rows(g->nodes[pn].op) || g->nodes[pn].n_outputs < 1 ||
        g->nodes[pn].outputs[0] != v)
      continue;
    const ri__tensor *t = &c->vals[v];
    if (t->dtype != RI_DTYPE_INT64 || t->shape.rank < 1) continue;
    int64_t n = t->shape.dims[0], w = 1;
    for (int k = 1; k < t->shape.rank; k++)
      w *= t->shape.dims[k];
    const int64_t *y = outputs[i];
    int64_t r = 0;
    while (r < n && (w == 0 || y[r * w] != -1))
      r++;
    c->rows[i] = r;
  }
}

/* Checks the buffers of a run: `per` pointers per input (1: whole inputs, batch: items), then outputs. */
static ri_status check_buffers(ri_context_t *c, const void *const *inputs, int per, void *const *outputs) {
  const ri__graph *g = c->e->c.graph;
  if (!inputs && g->n_inputs) return ri__err_set(&c->err, RI_ERR_INVALID_ARG, "inputs is NULL");
  if (!outputs && g->n_outputs) return ri__err_set(&c->err, RI_ERR_INVALID_ARG, "outputs is NULL");
  for (int i = 0; i < g->n_inputs; i++)
    for (int b = 0; b < per; b++)
      if (!inputs[(size_t)i * per + b])
        return per == 1 ? ri__err_set(&c->err, RI_ERR_INVALID_ARG, "input %d ('%s') is NULL", i,
                                      g->values[g->inputs[i]].name)
                        : ri__err_set(&c->err, RI_ERR_INVALID_ARG, "item %d of input %d ('%s') is NULL", b, i,
                                      g->values[g->inputs[i]].name);
  for (int i = 0; i < g->n_outputs; i++)
    if (!outputs[i])
      return ri__err_set(&c->err, RI_ERR_INVALID_ARG, "output %d ('%s') is NULL", i,
                         g->values[g->outputs[i]].name);
  return RI_OK;
}

/* Without the backend's run_items: the items of each input gathered into its input buffer, then run(). */
static ri_status gather_and_run(ri_context_t *c, int batch, const void *const *items, void *const *outputs) {
  const ri__graph *g = c->e->c.graph;
  const void **ins = ri__calloc((size_t)(g->n_inputs ? g->n_inputs : 1), sizeof *ins);
  if (!ins) return RI__OOM(&c->err);
  ri_status s = RI_OK;
  for (int i = 0; i < g->n_inputs && s == RI_OK; i++) {
    const ri__tensor *t = &c->vals[g->inputs[i]];
    size_t nb = 0, cap = 0;
    void *buf = NULL;
    s = ri__tensor_nbytes(t->dtype, &t->shape, &nb, &c->err);
    if (s == RI_OK) s = ri_context_input_buffer(c, i, &buf, &cap);
    if (s == RI_OK && nb > cap)
      s = ri__err_set(&c->err, RI_ERR_INTERNAL, "input '%s' needs %zu bytes, its buffer has %zu",
                      g->values[g->inputs[i]].name, nb, cap);
    if (s != RI_OK) break;
    const size_t per = nb / (size_t)batch;
    for (int b = 0; b < batch; b++) {
      char *dst = (char *)buf + (size_t)b * per;
      if (items[(size_t)i * batch + b] != dst) memcpy(dst, items[(size_t)i * batch + b], per);
    }
    ins[i] = buf;
  }
  if (s == RI_OK) s = c->e->be->run(c->be_ctx, c->vals, batch, ins, outputs, &c->err);
  ri__free(ins);
  return s;
}

/* One run: whole inputs (items NULL) or items (inputs NULL). */
static ri_status run_common(ri_context_t *c, int batch, const void *const *inputs, const void *const *items,
                            void *const *outputs) {
  RI__TRY(resolve(c, batch));
  c->last_batch = 0;
  memset(&c->last_timing, 0, sizeof c->last_timing);
  double t0 = c->timing ? ri__clock_ms() : 0;
  if (!items)
    RI__TRY(c->e->be->run(c->be_ctx, c->vals, batch, inputs, outputs, &c->err));
  else if (c->e->be->run_items)
    RI__TRY(c->e->be->run_items(c->be_ctx, c->vals, batch, items, outputs, &c->err));
  else
    RI__TRY(gather_and_run(c, batch, items, outputs));
  if (c->timing && c->e->be->last_timing) {
    c->e->be->last_timing(c->be_ctx, &c->last_timing);
  } else if (c->timing) {
    c->last_timing.compute_ms = ri__clock_ms() - t0;
    c->last_timing.enqueue_ms = c->last_timing.compute_ms;
  }
  count_padded_rows(c, outputs);
  c->last_batch = batch;
  return RI_OK;
}

ri_status ri_context_run(ri_context_t *c, int batch, const void *const *inputs, void *const *outputs) {
  if (!c) return RI_ERR_INVALID_ARG;
  ri__err_clear(&c->err);
  RI__TRY(check_buffers(c, inputs, 1, outputs));
  return run_common(c, batch, inputs, NULL, outputs);
}

ri_status ri_context_run_items(ri_context_t *c, int batch, const void *const *items, void *const *outputs) {
  if (!c) return RI_ERR_INVALID_ARG;
  ri__err_clear(&c->err);
  RI__TRY(resolve(c, batch)); /* the batch is checked before its items are looked at */
  RI__TRY(check_buffers(c, items, batch, outputs));
  return run_common(c, batch, NULL, items, outputs);
}

ri_status ri_context_set_timing(ri_context_t *c, int on) {
  if (!c) return RI_ERR_INVALID_ARG;
  ri__err_clear(&c->err);
  if (c->e->be->set_timing) RI__TRY(c->e->be->set_timing(c->be_ctx, on != 0, &c->err));
  c->timing = on != 0;
  memset(&c->last_timing, 0, sizeof c->last_timing);
  return RI_OK;
}

ri_status ri_context_last_timing(const ri_context_t *c, double *h2d_ms, double *compute_ms, double *d2h_ms,
                                 double *enqueue_ms) {
  if (!c) return RI_ERR_INVALID_ARG;
  if (h2d_ms) *h2d_ms = c->last_timing.h2d_ms;
  if (compute_ms) *compute_ms = c->last_timing.compute_ms;
  if (d2h_ms) *d2h_ms = c->last_timing.d2h_ms;
  if (enqueue_ms) *enqueue_ms = c->last_timing.enqueue_ms;
  return RI_OK;
}

ri_status ri_context_memory(ri_context_t *c, ri_memory_usage *usage) {
  if (!c || !usage) return RI_ERR_INVALID_ARG;
  memset(usage, 0, sizeof *usage);
  if (!c->e->be->memory)
    return ri__err_set(&c->err, RI_ERR_UNSUPPORTED,
                       "the %s backend does not report device memory (runinfer bench reports peak RSS)",
                       c->e->be->name);
  ri__memory_usage m = {0, 0, 0};
  c->e->be->memory(c->be_ctx, &m);
  usage->weights = m.weights;
  usage->activations = m.activations;
  usage->other = m.other;
  usage->total = m.weights + m.activations + m.other;
  return RI_OK;
}

ri_status ri_context_last_output_shape(ri_context_t *c, int index, ri_tensor_info *info) {
  if (!c || !info) return RI_ERR_INVALID_ARG;
  if (c->last_batch == 0)
    return ri__err_set(&c->err, RI_ERR_INVALID_ARG, "no run of this context has succeeded yet");
  RI__TRY(ri_context_output_shape(c, c->last_batch, index, info));
  if (c->rows[index] >= 0) info->dims[0] = c->rows[index];
  return RI_OK;
}

ri_status ri_context_output_shape(ri_context_t *c, int batch, int index, ri_tensor_info *info) {
  if (!c || !info) return RI_ERR_INVALID_ARG;
  ri__err_clear(&c->err);
  const ri__graph *g = c->e->c.graph;
  if (index < 0 || index >= g->n_outputs)
    return ri__err_set(&c->err, RI_ERR_INVALID_ARG, "output index %d is outside 0..%d", index,
                       g->n_outputs - 1);
  RI__TRY(resolve(c, batch));
  int v = g->outputs[index];
  memset(info, 0, sizeof *info);
  info->name = g->values[v].name ? g->values[v].name : "";
  info->dtype = c->vals[v].dtype;
  info->rank = c->vals[v].shape.rank;
  for (int i = 0; i < info->rank; i++)
    info->dims[i] = c->vals[v].shape.dims[i];
  return RI_OK;
}
