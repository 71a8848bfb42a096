/* ri_engine_t: creation from content (built or loaded), queries, saving, description. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/strbuf.h"
#include "engine/engine_impl.h"
#include "graph/op.h"
#include "graph/shape_infer.h"

ri_status ri__parse_device(const char *device, const ri__backend_ops **be, int *index, ri__err *err) {
  *index = 0;
  if (strcmp(device, "cpu") == 0) {
    *be = &ri__cpu_backend;
    return RI_OK;
  }
  if (strncmp(device, "cuda", 4) == 0 && (device[4] == 0 || device[4] == ':')) {
    if (device[4] == ':') {
      char *end;
      long v = strtol(device + 5, &end, 10);
      if (end == device + 5 || *end || v < 0 || v > 255)
        return ri__err_set(err, RI_ERR_INVALID_ARG, "device '%s': expected cuda:N with N in 0..255", device);
      *index = (int)v;
    }
#ifdef RI_HAVE_CUDA
    *be = &ri__cuda_backend;
    return RI_OK;
#else
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "device '%s': this build of runinfer has no CUDA backend (configure with "
                       "-DRI_WITH_CUDA=ON on a machine with the CUDA toolkit and cuDNN)",
                       device);
#endif
  }
  return ri__err_set(err, RI_ERR_INVALID_ARG, "unknown device '%s' (expected cpu, cuda or cuda:N)", device);
}

static int64_t arena_size(const ri__graph *g) {
  int64_t end = 0;
  for (int i = 0; i < g->n_values; i++) {
    const ri__value *v = &g->values[i];
    if (v->mem_offset >= 0 && v->mem_offset + v->mem_size > end) end = v->mem_offset + v->mem_size;
  }
  return end;
}

ri_status ri__engine_create(ri__rie_content *c, int threads_override, int release_weights, ri_engine_t **out,
                            ri__err *err) {
  return ri__engine_create_tuned(c, threads_override, release_weights, 0, 0, NULL, out, err);
}

ri_status ri__engine_create_tuned(ri__rie_content *c, int threads_override, int release_weights,
                                  int tune_level, int half_accum, struct ri__tcache *tcache,
                                  ri_engine_t **out, ri__err *err) {
  *out = NULL;
  ri_engine_t *e = ri__calloc(1, sizeof *e);
  if (!e) {
    ri__rie_content_free(c);
    return RI__OOM(err);
  }
  e->c = *c;
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&e->mu, NULL);
  ri__graph *g = e->c.graph;
  int dev_index = 0;
  ri_status s = ri__parse_device(e->c.device ? e->c.device : "cpu", &e->be, &dev_index, err);
  if (s == RI_OK && (e->c.max_batch < 1 || e->c.max_batch > 65536))
    s = ri__err_set(err, RI_ERR_PARSE, "engine max batch %d is outside 1..65536", e->c.max_batch);
  if (s == RI_OK) s = ri__graph_check_ops(g, err);
  if (s == RI_OK) s = ri__graph_infer_shapes(g, e->c.max_batch, err);
  if (s == RI_OK) {
    int64_t need = arena_size(g);
    if (e->c.arena_size < need) e->c.arena_size = need;
    for (int i = 0; i < g->n_values && s == RI_OK; i++) {
      const ri__value *v = &g->values[i];
      if (v->kind == RI__VAL_CONST || v->host) continue;
      size_t nb;
      s = ri__tensor_nbytes(v->dtype, &v->shape, &nb, err);
      if (s == RI_OK && (v->mem_offset < 0 || (int64_t)nb > v->mem_size))
        s = ri__err_set(err, RI_ERR_PARSE,
                        "value '%s' needs %zu bytes at batch %d but the memory plan reserves %lld",
                        v->name ? v->name : "?", nb, e->c.max_batch, (long long)v->mem_size);
    }
  }
  if (s == RI_OK) {
    e->cfg.max_batch = e->c.max_batch;
    e->cfg.threads = threads_override > 0 ? threads_override : e->c.threads;
    e->cfg.precision = (ri_precision)e->c.precision;
    e->cfg.device_index = dev_index;
    e->cfg.arena_size = e->c.arena_size;
    e->cfg.release_weights = release_weights;
    e->cfg.tune_level = tune_level;
    e->cfg.half_accum = half_accum;
    e->cfg.tcache = tcache;
    s = e->be->prepare(g, &e->cfg, &e->be_state, err);
    e->cfg.tcache = NULL; /* the builder's, not kept */
  }
  /* Tactics chosen by timing (and the kernels half accumulation chose) go into the nodes, and so into the
   * engine file. */
  for (int i = 0; s == RI_OK && (tune_level > 0 || half_accum) && e->be->node_tactic && i < g->n_nodes; i++) {
    int32_t code = e->be->node_tactic(e->be_state, i);
    if (code != 0 && g->nodes[i].tactic == 0) g->nodes[i].tactic = code;
  }
  if (s != RI_OK) {
    ri_engine_destroy(e);
    return s;
  }
  *out = e;
  return RI_OK;
}

void ri_engine_destroy(ri_engine_t *e) {
  if (!e) return;
  if (e->be && e->be_state) e->be->release(e->be_state);
  ri__rie_content_free(&e->c);
  ri__free(e->describe_json);
  pthread_mutex_destroy(&e->mu);
  ri__free(e);
}

const char *ri_engine_last_error(const ri_engine_t *e) { return e ? e->err.msg : ""; }

/* A constant whose data the backend released (loaded engines), or -1. */
static int released_const(const ri__graph *g) {
  for (int i = 0; i < g->n_values; i++)
    if (g->values[i].kind == RI__VAL_CONST && g->values[i].released) return i;
  return -1;
}

ri_status ri_engine_save(ri_engine_t *e, const char *path) {
  if (!e || !path) return RI_ERR_INVALID_ARG;
  pthread_mutex_lock(&e->mu);
  ri__err_clear(&e->err);
  const int rv = released_const(e->c.graph);
  ri_status s =
      rv >= 0 ? ri__err_set(&e->err, RI_ERR_UNSUPPORTED,
                            "cannot save to '%s': the engine was loaded from an engine file, and the CPU "
                            "backend released the float data of constant '%s' once it had packed "
                            "it; copy the engine file instead, or save an engine from "
                            "ri_builder_build_onnx",
                            path, e->c.graph->values[rv].name ? e->c.graph->values[rv].name : "?")
              : ri__rie_write_file(&e->c, path, &e->err);
  pthread_mutex_unlock(&e->mu);
  return s;
}

int ri_engine_max_batch(const ri_engine_t *e) { return e ? e->c.max_batch : 0; }
int ri_engine_num_inputs(const ri_engine_t *e) { return e ? e->c.graph->n_inputs : 0; }
int ri_engine_num_outputs(const ri_engine_t *e) { return e ? e->c.graph->n_outputs : 0; }

static ri_status io_info(ri_engine_t *e, int index, int is_input, ri_tensor_info *info) {
  if (!e || !info) return RI_ERR_INVALID_ARG;
  const ri__graph *g = e->c.graph;
  int n = is_input ? g->n_inputs : g->n_outputs;
  if (index < 0 || index >= n) {
    pthread_mutex_lock(&e->mu);
    ri__err_set(&e->err, RI_ERR_INVALID_ARG, "%s index %d is outside 0..%d", is_input ? "input" : "output",
                index, n - 1);
    pthread_mutex_unlock(&e->mu);
    return RI_ERR_INVALID_ARG;
  }
  const ri__value *v = &g->values[is_input ? g->inputs[index] : g->outputs[index]];
  memset(info, 0, sizeof *info);
  info->name = v->name ? v->name : "";
  info->dtype = v->dtype;
  info->rank = v->shape.rank;
  for (int i = 0; i < v->shape.rank; i++)
    info->dims[i] = v->shape.dims[i];
  int batched = is_input ? v->batch_axis == 0 : v->batch_dependent;
  if (batched && v->shape.rank > 0 && e->c.max_batch > 1) info->dims[0] = -1;
  return RI_OK;
}

ri_status ri_engine_input_info(ri_engine_t *e, int index, ri_tensor_info *info) {
  return io_info(e, index, 1, info);
}

ri_status ri_engine_output_info(ri_engine_t *e, int index, ri_tensor_info *info) {
  return io_info(e, index, 0, info);
}

const char *ri_engine_metadata(const ri_engine_t *e, const char *key) {
  if (!e || !key) return NULL;
  for (int i = 0; i < e->c.n_meta; i++)
    if (strcmp(e->c.meta[i].key, key) == 0) return e->c.meta[i].value;
  return NULL;
}

static void json_shape(ri__strbuf *sb, const ri__shape *s) {
  ri__sb_puts(sb, "[");
  for (int i = 0; i < s->rank; i++)
    ri__sb_printf(sb, i ? ",%lld" : "%lld", (long long)s->dims[i]);
  ri__sb_puts(sb, "]");
}

static void json_name(ri__strbuf *sb, const char *s) {
  s = s ? s : "";
  ri__sb_json_str(sb, s, strlen(s));
}

static void json_io(ri__strbuf *sb, ri_engine_t *e, int is_input) {
  int n = is_input ? e->c.graph->n_inputs : e->c.graph->n_outputs;
  ri__sb_puts(sb, "[");
  for (int i = 0; i < n; i++) {
    ri_tensor_info info;
    if (io_info(e, i, is_input, &info) != RI_OK) continue;
    ri__shape s = {.rank = info.rank};
    for (int k = 0; k < info.rank; k++)
      s.dims[k] = info.dims[k];
    ri__sb_puts(sb, i ? ",{\"name\":" : "{\"name\":");
    json_name(sb, info.name);
    ri__sb_printf(sb, ",\"dtype\":\"%s\",\"shape\":", ri_dtype_name(info.dtype));
    json_shape(sb, &s);
    ri__sb_puts(sb, "}");
  }
  ri__sb_puts(sb, "]");
}

ri_status ri_engine_describe_json(ri_engine_t *e, const char **json) {
  if (!e || !json) return RI_ERR_INVALID_ARG;
  const ri__graph *g = e->c.graph;
  ri__strbuf sb;
  ri__sb_init(&sb);
  int64_t weights = 0;
  for (int i = 0; i < g->n_values; i++)
    if (g->values[i].kind == RI__VAL_CONST) weights += (int64_t)g->values[i].nbytes;
  ri__sb_puts(&sb, "{\"library_version\":");
  json_name(&sb, e->c.library_version);
  ri__sb_puts(&sb, ",\"device\":");
  json_name(&sb, e->c.device);
  ri__sb_puts(&sb, ",\"fingerprint\":");
  json_name(&sb, e->c.fingerprint);
  ri__sb_printf(&sb, ",\"precision\":\"%s\",\"max_batch\":%d,\"threads\":%d,\"opset\":%lld",
                e->c.precision == 1   ? "fp16"
                : e->c.precision == 2 ? "int8"
                                      : "fp32",
                e->c.max_batch, e->c.threads, (long long)g->opset);
  ri__sb_printf(&sb, ",\"weights_bytes\":%lld,\"arena_bytes\":%lld,\"nodes\":%d", (long long)weights,
                (long long)e->c.arena_size, g->n_nodes);
  ri__sb_puts(&sb, ",\"inputs\":");
  json_io(&sb, e, 1);
  ri__sb_puts(&sb, ",\"outputs\":");
  json_io(&sb, e, 0);
  ri__sb_puts(&sb, ",\"metadata\":{");
  for (int i = 0; i < e->c.n_meta; i++) {
    if (i) ri__sb_puts(&sb, ",");
    json_name(&sb, e->c.meta[i].key);
    ri__sb_puts(&sb, ":");
    json_name(&sb, e->c.meta[i].value);
  }
  ri__sb_puts(&sb, "},\"layers\":[");
  for (int i = 0; i < g->n_nodes; i++) {
    const ri__node *n = &g->nodes[i];
    ri__sb_puts(&sb, i ? ",{\"name\":" : "{\"name\":");
    json_name(&sb, n->name);
    ri__sb_printf(&sb, ",\"op\":\"%s\"", ri__op_name(n->op));
    const char *impl = e->be->node_impl ? e->be->node_impl(e->be_state, i) : NULL;
    if (n->host) impl = "host";
    ri__sb_puts(&sb, ",\"impl\":");
    json_name(&sb, impl ? impl : "");
    if (n->act != RI__ACT_NONE) ri__sb_printf(&sb, ",\"fused_act\":%d", (int)n->act);
    ri__sb_puts(&sb, ",\"outputs\":[");
    for (int k = 0; k < n->n_outputs; k++) {
      if (k) ri__sb_puts(&sb, ",");
      if (n->outputs[k] < 0) {
        ri__sb_puts(&sb, "null");
        continue;
      }
      const ri__value *v = &g->values[n->outputs[k]];
      ri__sb_puts(&sb, "{\"name\":");
      json_name(&sb, v->name);
      ri__sb_printf(&sb, ",\"dtype\":\"%s\",\"shape\":", ri_dtype_name(v->dtype));
      json_shape(&sb, &v->shape);
      ri__sb_printf(&sb, ",\"offset\":%lld}", (long long)v->mem_offset);
    }
    ri__sb_puts(&sb, "]}");
  }
  ri__sb_puts(&sb, "]}");
  char *text = ri__sb_take(&sb);
  pthread_mutex_lock(&e->mu);
  if (!text) {
    ri__err_set(&e->err, RI_ERR_NO_MEMORY, "out of memory describing the engine");
    pthread_mutex_unlock(&e->mu);
    return RI_ERR_NO_MEMORY;
  }
  ri__free(e->describe_json);
  e->describe_json = text;
  *json = text;
  pthread_mutex_unlock(&e->mu);
  return RI_OK;
}
