/* ri_builder_t: ONNX → optimized graph → engine. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/timing_cache.h"
#include "engine/engine_impl.h"
#include "graph/op.h"
#include "graph/passes.h"
#include "onnx/import.h"
#include "runinfer/vision.h"

ri_status ri_builder_create(ri_builder_t **out) {
  if (!out) return RI_ERR_INVALID_ARG;
  ri_builder_t *b = ri__calloc(1, sizeof *b);
  if (!b) return RI_ERR_NO_MEMORY;
  b->max_batch = 1;
  b->precision = RI_PRECISION_FP32;
  b->builder_level = RI_BUILDER_LEVEL_DEFAULT;
  const char *lv = getenv("RI_BUILDER_LEVEL");
  if (lv && lv[0] >= '0' && lv[0] <= '5' && lv[1] == '\0') b->builder_level = lv[0] - '0';
  b->device = ri__strdup("cpu");
  if (!b->device) {
    ri__free(b);
    return RI_ERR_NO_MEMORY;
  }
  *out = b;
  return RI_OK;
}

void ri_builder_destroy(ri_builder_t *b) {
  if (!b) return;
  ri__free(b->device);
  ri__free(b->timing_cache);
  for (int i = 0; i < b->n_meta; i++) {
    ri__free(b->meta[i].key);
    ri__free(b->meta[i].value);
  }
  ri__free(b->meta);
  ri__free(b);
}

const char *ri_builder_last_error(const ri_builder_t *b) { return b ? b->err.msg : ""; }

ri_status ri_builder_set_max_batch(ri_builder_t *b, int max_batch) {
  if (!b) return RI_ERR_INVALID_ARG;
  ri__err_clear(&b->err);
  if (max_batch < 1 || max_batch > 65536)
    return ri__err_set(&b->err, RI_ERR_INVALID_ARG, "max batch %d is outside 1..65536", max_batch);
  b->max_batch = max_batch;
  return RI_OK;
}

ri_status ri_builder_set_device(ri_builder_t *b, const char *device) {
  if (!b || !device) return RI_ERR_INVALID_ARG;
  ri__err_clear(&b->err);
  const ri__backend_ops *be;
  int idx;
  RI__TRY(ri__parse_device(device, &be, &idx, &b->err));
  char *d = ri__strdup(device);
  if (!d) return RI__OOM(&b->err);
  ri__free(b->device);
  b->device = d;
  return RI_OK;
}

ri_status ri_builder_set_precision(ri_builder_t *b, ri_precision precision) {
  if (!b) return RI_ERR_INVALID_ARG;
  ri__err_clear(&b->err);
  if (precision != RI_PRECISION_FP32 && precision != RI_PRECISION_FP16 && precision != RI_PRECISION_INT8)
    return ri__err_set(&b->err, RI_ERR_INVALID_ARG, "unknown precision %d", (int)precision);
  b->precision = precision;
  return RI_OK;
}

ri_status ri_builder_set_builder_level(ri_builder_t *b, int level) {
  if (!b) return RI_ERR_INVALID_ARG;
  ri__err_clear(&b->err);
  if (level < 0 || level > 5)
    return ri__err_set(&b->err, RI_ERR_INVALID_ARG, "builder level %d is outside 0..5", level);
  b->builder_level = level;
  return RI_OK;
}

ri_status ri_builder_set_timing_cache(ri_builder_t *b, const char *path) {
  if (!b) return RI_ERR_INVALID_ARG;
  ri__err_clear(&b->err);
  if (path && !*path) return ri__err_set(&b->err, RI_ERR_INVALID_ARG, "timing cache path is empty");
  char *p = NULL;
  if (path && !(p = ri__strdup(path))) return RI__OOM(&b->err);
  ri__free(b->timing_cache);
  b->timing_cache = p;
  return RI_OK;
}

ri_status ri_builder_set_threads(ri_builder_t *b, int threads) {
  if (!b) return RI_ERR_INVALID_ARG;
  ri__err_clear(&b->err);
  if (threads < 0 || threads > 1024)
    return ri__err_set(&b->err, RI_ERR_INVALID_ARG, "thread count %d is outside 0..1024", threads);
  b->threads = threads;
  return RI_OK;
}

/* Metadata the library itself interprets is validated when it is set, so a bad value fails the build with
 * a clear message instead of the first run. */
static ri_status check_known_metadata(ri_builder_t *b, const char *key, const char *value) {
  ri_vision_error verr = {0};
  if (strcmp(key, "preprocess") == 0) {
    ri_preprocess_spec spec;
    ri_preprocess_spec_default(&spec);
    if (ri_preprocess_spec_parse(value, &spec, &verr) != RI_OK ||
        ri_preprocess_spec_validate(&spec, &verr) != RI_OK)
      return ri__err_set(&b->err, RI_ERR_INVALID_ARG, "metadata 'preprocess': %s", verr.msg);
  } else if (strcmp(key, "detect") == 0) {
    ri_detect_config cfg;
    ri_detect_config_default(&cfg);
    if (ri_detect_config_parse(value, &cfg, &verr) != RI_OK ||
        ri_detect_config_validate(&cfg, &verr) != RI_OK)
      return ri__err_set(&b->err, RI_ERR_INVALID_ARG, "metadata 'detect': %s", verr.msg);
  } else if (strcmp(key, "task") == 0 && strcmp(value, "detect") != 0 && strcmp(value, "classify") != 0) {
    return ri__err_set(&b->err, RI_ERR_INVALID_ARG, "metadata 'task': '%s' is neither detect nor classify",
                       value);
  }
  return RI_OK;
}

ri_status ri_builder_set_metadata(ri_builder_t *b, const char *key, const char *value) {
  if (!b || !key || !value) return RI_ERR_INVALID_ARG;
  ri__err_clear(&b->err);
  RI__TRY(check_known_metadata(b, key, value));
  for (int i = 0; i < b->n_meta; i++) {
    if (strcmp(b->meta[i].key, key) == 0) {
      char *v = ri__strdup(value);
      if (!v) return RI__OOM(&b->err);
      ri__free(b->meta[i].value);
      b->meta[i].value = v;
      return RI_OK;
    }
  }
  ri__kv *m = ri__realloc(b->meta, (size_t)(b->n_meta + 1) * sizeof *m);
  if (!m) return RI__OOM(&b->err);
  b->meta = m;
  m[b->n_meta].key = ri__strdup(key);
  m[b->n_meta].value = ri__strdup(value);
  if (!m[b->n_meta].key || !m[b->n_meta].value) {
    ri__free(m[b->n_meta].key);
    ri__free(m[b->n_meta].value);
    return RI__OOM(&b->err);
  }
  b->n_meta++;
  return RI_OK;
}

static const char *precision_name(ri_precision p) {
  return p == RI_PRECISION_FP16 ? "fp16" : p == RI_PRECISION_INT8 ? "int8" : "fp32";
}

/* Checks the options against what this build can do before any work is spent on the model. */
static ri_status check_options(ri_builder_t *b, const ri__backend_ops *be) {
  if (strcmp(be->name, "cpu") == 0 && b->precision != RI_PRECISION_FP32)
    return ri__err_set(&b->err, RI_ERR_UNSUPPORTED,
                       "precision %s is not implemented for device cpu (the CPU backend runs fp32; "
                       "Q/DQ models run as onnxruntime's CPU session runs them)",
                       precision_name(b->precision));
  if (b->precision == RI_PRECISION_INT8)
    return ri__err_set(&b->err, RI_ERR_UNSUPPORTED, "precision int8 is not implemented yet for device %s",
                       b->device);
  return RI_OK;
}

/* CPU engines compute the Q/DQ groups that onnxruntime's CPU session computes in integers the same way
 * (docs/decisions.md, "Integer Q/DQ"); RI_QDQ_INTEGER=0 at build time keeps every group simulated in
 * float32 as the ONNX graph states it. */
static int qdq_integer(const ri__backend_ops *be) {
  const char *v = getenv("RI_QDQ_INTEGER");
  return strcmp(be->name, "cpu") == 0 && !(v && strcmp(v, "0") == 0);
}

ri_status ri_builder_set_preprocess_on_device(ri_builder_t *b, int on) {
  if (!b) return RI_ERR_INVALID_ARG;
  ri__err_clear(&b->err);
  b->preprocess_on_device = on != 0;
  return RI_OK;
}

ri_status ri_builder_set_half_accumulation(ri_builder_t *b, int on) {
  if (!b) return RI_ERR_INVALID_ARG;
  ri__err_clear(&b->err);
  b->half_accum = on != 0;
  return RI_OK;
}

static const char *builder_meta(const ri_builder_t *b, const char *key) {
  for (int i = 0; i < b->n_meta; i++)
    if (strcmp(b->meta[i].key, key) == 0) return b->meta[i].value;
  return NULL;
}

/* Device preprocessing: rewrites the graph's image input (ri__pass_uint8_input) from the "preprocess"
 * metadata and writes into *host_spec the spec the host then applies (uint8, NHWC, mean 0, scale 1: the
 * rounded resized pixels), which the engine stores as its "preprocess" metadata instead. */
static ri_status preprocess_on_device(ri_builder_t *b, ri__graph *g, char *host_spec, size_t cap) {
  const char *text = builder_meta(b, "preprocess");
  if (!text)
    return ri__err_set(
        &b->err, RI_ERR_INVALID_ARG,
        "device preprocessing needs the 'preprocess' metadata (the model input's size, layout, "
        "mean and scale)");
  ri_preprocess_spec spec;
  ri_vision_error verr;
  if (ri_preprocess_spec_parse(text, &spec, &verr) != RI_OK)
    return ri__err_set(&b->err, RI_ERR_INVALID_ARG, "metadata 'preprocess': %s", verr.msg);
  if (spec.dtype != RI_DTYPE_FLOAT32)
    return ri__err_set(&b->err, RI_ERR_INVALID_ARG,
                       "device preprocessing: the 'preprocess' metadata gives dtype %s; the model input must "
                       "be float32 (a uint8 model input needs no device preprocessing)",
                       ri_dtype_name(spec.dtype));
  ri__u8_input p;
  p.width = spec.width;
  p.height = spec.height;
  p.nchw = spec.layout == RI_LAYOUT_NCHW;
  for (int c = 0; c < 3; c++) {
    p.mean[c] = spec.mean[c];
    p.scale[c] = spec.scale[c];
  }
  RI__TRY(ri__pass_uint8_input(g, &p, &b->err));
  spec.layout = RI_LAYOUT_NHWC;
  spec.dtype = RI_DTYPE_UINT8;
  for (int c = 0; c < 3; c++) {
    spec.mean[c] = 0.f;
    spec.scale[c] = 1.f;
  }
  if (ri_preprocess_spec_to_string(&spec, host_spec, cap, NULL, &verr) != RI_OK)
    return ri__err_set(&b->err, RI_ERR_LIMIT, "device preprocessing: %s", verr.msg);
  return RI_OK;
}

static ri_status build_graph(ri_builder_t *b, ri__graph *g, ri_engine_t **out, const char *source) {
  ri__err *err = &b->err;
  const ri__backend_ops *be;
  int dev_index;
  char host_spec[512] = "";
  ri_status s = ri__parse_device(b->device, &be, &dev_index, err);
  if (s == RI_OK) s = check_options(b, be);
  if (s == RI_OK && b->preprocess_on_device) s = preprocess_on_device(b, g, host_spec, sizeof host_spec);
  for (int i = 0; s == RI_OK && i < g->n_inputs; i++) {
    const ri__value *v = &g->values[g->inputs[i]];
    if (b->max_batch > 1 && v->batch_axis != 0)
      s = ri__err_set(err, RI_ERR_UNSUPPORTED,
                      "input '%s' has a fixed first dimension (%lld); building with max batch %d needs a "
                      "symbolic batch axis in the model",
                      v->name ? v->name : "?", v->shape.rank ? (long long)v->shape.dims[0] : 0LL,
                      b->max_batch);
  }
  if (s == RI_OK) s = ri__graph_check_ops(g, err);
  if (s == RI_OK) s = ri__graph_infer_shapes(g, 1, err);
  if (s == RI_OK && qdq_integer(be)) s = ri__pass_qdq_to_qlinear(g, err);
  if (s == RI_OK) s = ri__graph_optimize(g, b->max_batch, err);
  if (s != RI_OK) {
    ri__graph_destroy(g);
    return ri__err_prefix(err, "building '%s'", source);
  }
  ri__rie_content c;
  memset(&c, 0, sizeof c);
  c.graph = g;
  c.max_batch = b->max_batch;
  c.precision = (int)b->precision;
  c.threads = b->threads;
  c.device = ri__strdup(b->device);
  c.library_version = ri__strdup(ri_version());
  char fp[RI__RIE_MAX_SHORT_STRING];
  s = ri__device_fingerprint(be, dev_index, fp, sizeof fp, err);
  if (s != RI_OK) {
    ri__graph_destroy(g);
    return ri__err_prefix(err, "building '%s'", source);
  }
  c.fingerprint = ri__strdup(fp);
  /* with device preprocessing the stored "preprocess" is the host's part, and "preprocess_device" keeps
   * what the graph's first nodes compute */
  int n_meta = b->n_meta + (host_spec[0] != '\0');
  c.meta = ri__calloc((size_t)(n_meta ? n_meta : 1), sizeof(ri__kv));
  int ok = c.device && c.library_version && c.fingerprint && c.meta;
  for (int i = 0; ok && i < b->n_meta; i++) {
    int replaced = host_spec[0] != '\0' && strcmp(b->meta[i].key, "preprocess") == 0;
    c.meta[i].key = ri__strdup(b->meta[i].key);
    c.meta[i].value = ri__strdup(replaced ? host_spec : b->meta[i].value);
    c.n_meta = i + 1;
    ok = c.meta[i].key && c.meta[i].value;
  }
  if (ok && host_spec[0] != '\0') {
    c.meta[b->n_meta].key = ri__strdup("preprocess_device");
    c.meta[b->n_meta].value = ri__strdup(builder_meta(b, "preprocess"));
    c.n_meta = n_meta;
    ok = c.meta[b->n_meta].key && c.meta[b->n_meta].value;
  }
  if (!ok) {
    ri__rie_content_free(&c);
    return RI__OOM(err);
  }
  ri__tcache *cache = NULL;
  if (b->timing_cache && (s = ri__tcache_load(b->timing_cache, &cache, err)) != RI_OK) {
    ri__rie_content_free(&c);
    return ri__err_prefix(err, "building '%s'", source);
  }
  s = ri__engine_create_tuned(&c, 0, 0, b->builder_level, b->half_accum, cache, out, err);
  if (s == RI_OK && cache && ri__tcache_added(cache) > 0) s = ri__tcache_save(cache, b->timing_cache, err);
  ri__tcache_free(cache);
  if (s != RI_OK) {
    ri_engine_destroy(*out);
    *out = NULL;
    return ri__err_prefix(err, "building '%s'", source);
  }
  return RI_OK;
}

ri_status ri_builder_build_onnx(ri_builder_t *b, const char *onnx_path, ri_engine_t **out) {
  if (!b || !onnx_path || !out) return RI_ERR_INVALID_ARG;
  ri__err_clear(&b->err);
  *out = NULL;
  ri__graph *g = NULL;
  RI__TRY(ri__onnx_import_file(onnx_path, &g, &b->err));
  return build_graph(b, g, out, onnx_path);
}

ri_status ri_builder_build_onnx_memory(ri_builder_t *b, const void *data, size_t size, const char *base_dir,
                                       ri_engine_t **out) {
  if (!b || !data || !out) return RI_ERR_INVALID_ARG;
  ri__err_clear(&b->err);
  *out = NULL;
  ri__graph *g = NULL;
  RI__TRY(ri__onnx_import(data, size, base_dir, "<memory>", &g, &b->err));
  return build_graph(b, g, out, "<memory>");
}
