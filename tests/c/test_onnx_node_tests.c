/* ONNX backend node tests (onnx/backend/test/data/node/<test>/{model.onnx, test_data_set_N/}) run through
 * the public API.
 *
 * Every test directory is classified:
 *  - skipped:     the model uses an operator runinfer does not support at all (not in graph/op_list.h), or
 *                 a node of another domain;
 *  - unsupported: building the engine returned RI_ERR_UNSUPPORTED (a documented attribute, dtype or opset
 *                 that runinfer rejects); the message is printed;
 *  - passed:      the engine was built with max batch 1 and every test_data_set_N gave outputs of the
 *                 expected dtype and shape whose values match: floats within |got - want| <= atol + rtol *
 *                 |want| (rtol 1e-3, atol 1e-5, as onnx's runner; NaN matches NaN, infinities match
 *                 themselves), integers and booleans exactly;
 *  - diverges:    a listed test (k_divergent) whose stored expectation onnxruntime does not reproduce
 *                 either, where runinfer gives onnxruntime's result; printed with the reason;
 *  - failed:      anything else (wrong values, shapes or dtypes, a build error other than UNSUPPORTED, a
 *                 run error).
 * Each data set is run on the default CPU path (fast kernels where registered) and on the reference kernels
 * (RI_CPU_FAST=0); both must match. The test fails when any supported-op test fails.
 *
 * The data comes from Debian's libonnx-testdata (/usr/share/libonnx-testdata/data/node) or the directory
 * in RI_ONNX_NODE_DIR. Without either the test prints why and succeeds. RI_ONNX_NODE_FILTER=substring runs
 * only the tests whose directory name contains it; RI_ONNX_NODE_VERBOSE=1 prints every test's result. */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/half.h"
#include "graph/op.h"
#include "onnx/import.h"
#include "onnx/onnx.pb-c.h"
#include "runinfer/runinfer.h"
#include "test.h"

#define RTOL      1e-3
#define ATOL      1e-5
#define MAX_TESTS 4096
#define MAX_IO    64

enum { R_PASSED, R_FAILED, R_UNSUPPORTED, R_SKIPPED, R_DIVERGES, R_COUNT };
static const char *const k_result_names[R_COUNT] = {"passed", "failed", "unsupported", "skipped", "diverges"};

/* Tests whose stored expected output onnxruntime does not reproduce either, and where runinfer gives
 * onnxruntime's result (checked by hand with onnxruntime 1.32 on the same files; docs/decisions.md). A
 * mismatch on one of these is reported as a known divergence, not a failure; a pass is a pass. */
static const struct {
  const char *test, *why;
} k_divergent[] = {
    {"test_resize_downsample_scales_linear_align_corners",
     "the ONNX reference takes the resized length as scale * length (2.4) in the align_corners formula; "
     "onnxruntime and runinfer take the integer output length (2), giving [1, 4] instead of [1, 3.142857]"},
};

static const char *divergence(const char *test) {
  for (size_t i = 0; i < sizeof k_divergent / sizeof k_divergent[0]; i++)
    if (strcmp(k_divergent[i].test, test) == 0) return k_divergent[i].why;
  return NULL;
}

/* Per-op (or per op combination) tally of results. */
typedef struct {
  char key[256];
  int count[R_COUNT];
} op_tally;

static op_tally g_tally[MAX_TESTS];
static int g_n_tally;
static char g_why[512];
static int g_n_frozen_passed;
/* passed tests that needed their non-first inputs frozen as initializers */ /* reason of the current
                                                                                test's failure or
                                                                                unsupported status */

static void tally(const char *key, int result) {
  for (int i = 0; i < g_n_tally; i++)
    if (strcmp(g_tally[i].key, key) == 0) {
      g_tally[i].count[result]++;
      return;
    }
  if (g_n_tally == MAX_TESTS) return;
  snprintf(g_tally[g_n_tally].key, sizeof g_tally[g_n_tally].key, "%s", key);
  g_tally[g_n_tally].count[result] = 1;
  g_n_tally++;
}

static void set_why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_why(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_why, sizeof g_why, fmt, ap);
  va_end(ap);
}

/* snprintf into a path buffer; returns 0 when the result would not fit. */
static int fmt_path(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fmt_path(char *buf, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(buf, len, fmt, ap);
  va_end(ap);
  return w >= 0 && (size_t)w < len;
}

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Whole file in a malloc'ed buffer, or NULL. */
static void *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) != 0) {
    fclose(f);
    return NULL;
  }
  long len = ftell(f);
  if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return NULL;
  }
  void *buf = malloc(len ? (size_t)len : 1);
  if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *size = (size_t)len;
  return buf;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Scans the model's nodes: fills `key` with its distinct op types joined by '+' (Constant left out unless
 * alone) and returns 1 when every op is supported; else `unsupported` names the first unknown op. Returns -1
 * when the model cannot be parsed. */
static int model_ops(const char *model_path, char *key, size_t key_len, char *unsupported, size_t un_len) {
  size_t size;
  void *data = read_file(model_path, &size);
  if (!data) return -1;
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
  free(data);
  if (!m || !m->graph) {
    if (m) onnx__model_proto__free_unpacked(m, NULL);
    return -1;
  }
  const char *names[256];
  int n_names = 0, ok = 1;
  unsupported[0] = 0;
  for (size_t i = 0; i < m->graph->n_node; i++) {
    const Onnx__NodeProto *nd = m->graph->node[i];
    const char *t = nd->op_type ? nd->op_type : "?";
    const char *dom = nd->domain ? nd->domain : "";
    ri__op op;
    int known = (dom[0] == 0 || strcmp(dom, "ai.onnx") == 0) && ri__op_from_name(t, &op);
    if (!known && ok) {
      ok = 0;
      snprintf(unsupported, un_len, "%s%s%s", dom, dom[0] ? "." : "", t);
    }
    int seen = 0;
    for (int k = 0; k < n_names && !seen; k++)
      seen = strcmp(names[k], t) == 0;
    if (!seen && n_names < 256) names[n_names++] = t;
  }
  qsort(names, (size_t)n_names, sizeof names[0], cmp_str);
  key[0] = 0;
  size_t used = 0;
  for (int k = 0; k < n_names; k++) {
    if (n_names > 1 && strcmp(names[k], "Constant") == 0) continue;
    int w = snprintf(key + used, key_len - used, "%s%s", used ? "+" : "", names[k]);
    if (w < 0 || (size_t)w >= key_len - used) break;
    used += (size_t)w;
  }
  onnx__model_proto__free_unpacked(m, NULL);
  return ok;
}

typedef struct {
  ri__tensor t;
  char *name;
} named_tensor;

static void nt_free(named_tensor *nt) {
  ri__free(nt->t.data);
  ri__free(nt->name);
  nt->t.data = NULL;
  nt->name = NULL;
}

/* Loads <dir>/<prefix>_<i>.pb for i = 0, 1, ... until one is missing. Returns the count, or -1 (g_why set).
 */
static int load_tensors(const char *dir, const char *prefix, named_tensor *out, int max) {
  int n = 0;
  for (;; n++) {
    char path[4096];
    if (!fmt_path(path, sizeof path, "%s/%s_%d.pb", dir, prefix, n)) break;
    size_t size;
    void *data = read_file(path, &size);
    if (!data) break;
    if (n == max) {
      free(data);
      set_why("more than %d %s files", max, prefix);
      return -1;
    }
    ri__err err = {0};
    ri_status s = ri__onnx_parse_tensor(data, size, &out[n].t, &out[n].name, &err);
    free(data);
    if (s != RI_OK) {
      set_why("cannot parse %s: %s", path, err.msg);
      for (int k = 0; k < n; k++)
        nt_free(&out[k]);
      return -1;
    }
  }
  return n;
}

static double elem_double(const ri__tensor *t, int64_t i) {
  switch (t->dtype) {
  case RI_DTYPE_FLOAT32: return ((const float *)t->data)[i];
  case RI_DTYPE_FLOAT64: return ((const double *)t->data)[i];
  case RI_DTYPE_FLOAT16: return ri__half_to_float(((const uint16_t *)t->data)[i]);
  default: return 0.0;
  }
}

static int is_float(ri_dtype t) {
  return t == RI_DTYPE_FLOAT32 || t == RI_DTYPE_FLOAT64 || t == RI_DTYPE_FLOAT16;
}

/* Compares output `got` (engine info + buffer) with `want`. Returns 1 when they match; else g_why says why.
 */
static int compare(const char *label, const ri_tensor_info *info, const void *got_data,
                   const ri__tensor *want) {
  if (info->dtype != want->dtype) {
    set_why("%s: dtype %s, expected %s", label, ri_dtype_name(info->dtype), ri_dtype_name(want->dtype));
    return 0;
  }
  int same_shape = info->rank == want->shape.rank;
  for (int d = 0; same_shape && d < info->rank; d++)
    same_shape = info->dims[d] == want->shape.dims[d];
  if (!same_shape) {
    ri__shape gs = {.rank = info->rank};
    for (int d = 0; d < info->rank; d++)
      gs.dims[d] = info->dims[d];
    char a[128], b[128];
    set_why("%s: shape %s, expected %s", label, ri__shape_str(&gs, a, sizeof a),
            ri__shape_str(&want->shape, b, sizeof b));
    return 0;
  }
  int64_t numel = ri__shape_numel(&want->shape);
  ri__tensor got = {.dtype = want->dtype, .shape = want->shape, .data = (void *)got_data};
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < numel; i++) {
    int ok;
    if (is_float(want->dtype)) {
      double g = elem_double(&got, i), w = elem_double(want, i);
      if (isnan(w))
        ok = isnan(g);
      else if (isinf(w))
        ok = g == w;
      else
        ok = fabs(g - w) <= ATOL + RTOL * fabs(w);
    } else {
      size_t es = ri_dtype_size(want->dtype);
      ok =
          memcmp((const char *)got_data + (size_t)i * es, (const char *)want->data + (size_t)i * es, es) == 0;
    }
    if (!ok) {
      if (first < 0) first = i;
      bad++;
    }
  }
  if (bad) {
    if (is_float(want->dtype))
      set_why("%s: %lld of %lld values differ; first at %lld: got %.9g, expected %.9g", label, (long long)bad,
              (long long)numel, (long long)first, elem_double(&got, first), elem_double(want, first));
    else
      set_why("%s: %lld of %lld values differ; first at %lld: got %lld, expected %lld", label, (long long)bad,
              (long long)numel, (long long)first, (long long)ri__tensor_get_int(&got, first),
              (long long)ri__tensor_get_int(want, first));
    return 0;
  }
  return 1;
}

/* Runs one data set on a built engine. Returns 1 on a match. */
static int run_data_set(ri_engine_t *eng, const char *ds_dir, const char *path_label, int frozen) {
  named_tensor ins[MAX_IO], outs[MAX_IO];
  memset(ins, 0, sizeof ins);
  memset(outs, 0, sizeof outs);
  int n_in = load_tensors(ds_dir, "input", ins, MAX_IO);
  if (n_in < 0) return 0;
  int n_out = load_tensors(ds_dir, "output", outs, MAX_IO);
  if (n_out < 0) {
    for (int k = 0; k < n_in; k++)
      nt_free(&ins[k]);
    return 0;
  }
  int ok = 1;
  const void *in_ptrs[MAX_IO];
  void *out_ptrs[MAX_IO] = {0};
  ri_context_t *ctx = NULL;
  int ne_in = ri_engine_num_inputs(eng), ne_out = ri_engine_num_outputs(eng);
  if ((frozen ? ne_in > n_in : ne_in != n_in) || ne_out != n_out) {
    set_why("engine has %d inputs / %d outputs, the data set %d / %d", ne_in, ne_out, n_in, n_out);
    ok = 0;
  }
  /* Inputs are matched by name (the data files carry the graph input names), else by position. */
  for (int i = 0; ok && i < ne_in; i++) {
    ri_tensor_info info;
    if (ri_engine_input_info(eng, i, &info) != RI_OK) {
      set_why("input info %d: %s", i, ri_engine_last_error(eng));
      ok = 0;
      break;
    }
    int k = frozen ? -1 : i;
    for (int j = 0; j < n_in; j++)
      if (ins[j].name && info.name && strcmp(ins[j].name, info.name) == 0) k = j;
    if (k < 0) {
      set_why("engine input '%s' is not in the data set", info.name);
      ok = 0;
      break;
    }
    int same = info.dtype == ins[k].t.dtype && info.rank == ins[k].t.shape.rank;
    for (int d = 0; same && d < info.rank; d++)
      same = info.dims[d] == ins[k].t.shape.dims[d] ||
             (d == 0 && info.dims[d] == -1 && ins[k].t.shape.dims[0] == 1);
    if (!same) {
      char b[128];
      set_why("input '%s': engine wants %s rank %d, data set has %s %s", info.name, ri_dtype_name(info.dtype),
              info.rank, ri_dtype_name(ins[k].t.dtype), ri__shape_str(&ins[k].t.shape, b, sizeof b));
      ok = 0;
      break;
    }
    in_ptrs[i] = ins[k].t.data;
  }
  if (ok && ri_context_create(eng, &ctx) != RI_OK) {
    set_why("context: %s", ri_engine_last_error(eng));
    ok = 0;
  }
  ri_tensor_info oinfo[MAX_IO];
  for (int i = 0; ok && i < ne_out; i++) {
    if (ri_context_output_shape(ctx, 1, i, &oinfo[i]) != RI_OK) {
      set_why("output shape %d: %s", i, ri_context_last_error(ctx));
      ok = 0;
      break;
    }
    int64_t numel = 1;
    for (int d = 0; d < oinfo[i].rank; d++)
      numel *= oinfo[i].dims[d];
    size_t es = ri_dtype_size(oinfo[i].dtype);
    out_ptrs[i] = calloc((size_t)(numel > 0 ? numel : 1), es ? es : 1);
    if (!out_ptrs[i]) {
      set_why("out of memory for output %d", i);
      ok = 0;
    }
  }
  if (ok && ri_context_run(ctx, 1, in_ptrs, out_ptrs) != RI_OK) {
    set_why("%s run: %s", path_label, ri_context_last_error(ctx));
    ok = 0;
  }
  /* outputs whose length depends on the data (NonMaxSuppression) hold fewer rows than their largest shape */
  for (int i = 0; ok && i < ne_out; i++) {
    if (ri_context_last_output_shape(ctx, i, &oinfo[i]) != RI_OK) {
      set_why("output shape %d after the run: %s", i, ri_context_last_error(ctx));
      ok = 0;
    }
  }
  for (int i = 0; ok && i < ne_out; i++) {
    char label[256];
    snprintf(label, sizeof label, "%s output %d '%s'", path_label, i, oinfo[i].name ? oinfo[i].name : "?");
    ok = compare(label, &oinfo[i], out_ptrs[i], &outs[i].t);
  }
  ri_context_destroy(ctx);
  for (int i = 0; i < MAX_IO; i++)
    free(out_ptrs[i]);
  for (int k = 0; k < n_in; k++)
    nt_free(&ins[k]);
  for (int k = 0; k < n_out; k++)
    nt_free(&outs[k]);
  return ok;
}

static ri_status build(const void *bytes, size_t size, const char *model, const char *test_dir,
                       ri_engine_t **eng) {
  ri_builder_t *b = NULL;
  *eng = NULL;
  if (ri_builder_create(&b) != RI_OK || ri_builder_set_threads(b, 2) != RI_OK) {
    ri_builder_destroy(b);
    set_why("cannot create a builder");
    return RI_ERR_NO_MEMORY;
  }
  ri_status s = bytes ? ri_builder_build_onnx_memory(b, bytes, size, test_dir, eng)
                      : ri_builder_build_onnx(b, model, eng);
  if (s != RI_OK) set_why("build: %s: %s", ri_status_str(s), ri_builder_last_error(b));
  ri_builder_destroy(b);
  return s;
}

/* The model with every graph input but the first turned into an initializer holding the data set's value
 * for it (the shape-like inputs of Reshape, Slice, Pad, Resize, Tile, Squeeze, Unsqueeze, which runinfer
 * needs at build time). Returns a malloc'ed serialized model, or NULL (g_why set). */
static void *freeze_inputs(const char *model, const char *ds_dir, size_t *out_size) {
  size_t size;
  void *data = read_file(model, &size);
  if (!data) {
    set_why("cannot read %s", model);
    return NULL;
  }
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
  free(data);
  if (!m || !m->graph || m->graph->n_input < 2 || m->graph->n_input > MAX_IO) {
    set_why("model cannot be frozen (parse error or input count)");
    if (m) onnx__model_proto__free_unpacked(m, NULL);
    return NULL;
  }
  Onnx__GraphProto *gp = m->graph;
  size_t n_init = gp->n_initializer, n_in = gp->n_input;
  Onnx__TensorProto **init = calloc(n_init + n_in, sizeof *init);
  Onnx__TensorProto *frozen[MAX_IO] = {0};
  char *old_names[MAX_IO] = {0};
  void *out = NULL;
  int ok = init != NULL;
  for (size_t i = 0; ok && i < n_init; i++)
    init[i] = gp->initializer[i];
  size_t n_frozen = 0;
  for (size_t i = 1; ok && i < n_in; i++) {
    char path[4096];
    void *td = NULL;
    if (fmt_path(path, sizeof path, "%s/input_%zu.pb", ds_dir, i)) td = read_file(path, &size);
    if (!td) {
      set_why("no data for input %zu to freeze", i);
      ok = 0;
      break;
    }
    frozen[i] = onnx__tensor_proto__unpack(NULL, size, td);
    free(td);
    if (!frozen[i]) {
      set_why("cannot parse input %zu to freeze", i);
      ok = 0;
      break;
    }
    old_names[i] = frozen[i]->name;
    frozen[i]->name = gp->input[i]->name;
    init[n_init + n_frozen++] = frozen[i];
  }
  if (ok) {
    Onnx__TensorProto **saved_init = gp->initializer;
    size_t saved_n_init = gp->n_initializer, saved_n_in = gp->n_input;
    gp->initializer = init;
    gp->n_initializer = n_init + n_frozen;
    gp->n_input = 1;
    *out_size = onnx__model_proto__get_packed_size(m);
    out = malloc(*out_size ? *out_size : 1);
    if (out) onnx__model_proto__pack(m, out);
    gp->initializer = saved_init;
    gp->n_initializer = saved_n_init;
    gp->n_input = saved_n_in;
  }
  for (size_t i = 1; i < n_in && i < MAX_IO; i++)
    if (frozen[i]) {
      frozen[i]->name = old_names[i];
      onnx__tensor_proto__free_unpacked(frozen[i], NULL);
    }
  free(init);
  onnx__model_proto__free_unpacked(m, NULL);
  return out;
}

/* Builds the engine for one path (RI_CPU_FAST is read when the engine is created) and runs every data set.
 * With `frozen`, each data set gets its own engine built from freeze_inputs(). */
static int run_path(const char *model, const char *test_dir, int fast, int frozen, int *unsupported) {
  setenv("RI_CPU_FAST", fast ? "1" : "0", 1);
  ri_engine_t *eng = NULL;
  *unsupported = 0;
  if (!frozen) {
    ri_status s = build(NULL, 0, model, test_dir, &eng);
    if (s != RI_OK) {
      *unsupported = s == RI_ERR_UNSUPPORTED;
      return 0;
    }
  }
  int ok = 1, n_sets = 0;
  for (int ds = 0; ok; ds++) {
    char ds_dir[4096];
    if (!fmt_path(ds_dir, sizeof ds_dir, "%s/test_data_set_%d", test_dir, ds) || !is_dir(ds_dir)) break;
    n_sets++;
    if (frozen) {
      size_t size;
      void *bytes = freeze_inputs(model, ds_dir, &size);
      if (!bytes) {
        *unsupported = 1; /* nothing to freeze: the first build's status stands */
        return 0;
      }
      ri_status s = build(bytes, size, model, test_dir, &eng);
      free(bytes);
      if (s != RI_OK) {
        *unsupported = s == RI_ERR_UNSUPPORTED;
        return 0;
      }
    }
    ok = run_data_set(eng, ds_dir, fast ? "default path" : "reference path", frozen);
    if (frozen) {
      ri_engine_destroy(eng);
      eng = NULL;
    }
  }
  if (ok && n_sets == 0) {
    set_why("no test_data_set_N directory");
    ok = 0;
  }
  ri_engine_destroy(eng);
  return ok;
}

static int run_test(const char *root, const char *name, char *key, size_t key_len) {
  char test_dir[4096], model[4200], unsup_op[128];
  if (!fmt_path(test_dir, sizeof test_dir, "%s/%s", root, name) ||
      !fmt_path(model, sizeof model, "%s/model.onnx", test_dir)) {
    snprintf(key, key_len, "?");
    set_why("path too long");
    return R_FAILED;
  }
  g_why[0] = 0;
  int r = model_ops(model, key, key_len, unsup_op, sizeof unsup_op);
  if (r < 0) {
    snprintf(key, key_len, "?");
    set_why("cannot read or parse %s", model);
    return R_FAILED;
  }
  if (r == 0) {
    snprintf(key, key_len, "%s", unsup_op);
    set_why("operator %s is not supported", unsup_op);
    return R_SKIPPED;
  }
  int unsupported, frozen = 0;
  if (!run_path(model, test_dir, 1, 0, &unsupported)) {
    if (!unsupported) return R_FAILED;
    /* Shape-like inputs fed at run time are unsupported; the op itself is tested with them frozen. */
    char first_why[sizeof g_why];
    memcpy(first_why, g_why, sizeof g_why);
    if (!run_path(model, test_dir, 1, 1, &unsupported)) {
      if (!unsupported) return R_FAILED;
      memcpy(g_why, first_why, sizeof g_why);
      return R_UNSUPPORTED;
    }
    frozen = 1;
  }
  if (!run_path(model, test_dir, 0, frozen, &unsupported)) return R_FAILED; /* the build succeeded once */
  if (frozen) g_n_frozen_passed++;
  return R_PASSED;
}

static int cmp_tally(const void *a, const void *b) {
  return strcmp(((const op_tally *)a)->key, ((const op_tally *)b)->key);
}

int main(void) {
  const char *root = getenv("RI_ONNX_NODE_DIR");
  if (!root || !root[0]) root = "/usr/share/libonnx-testdata/data/node";
  if (!is_dir(root)) {
    printf(
        "test_onnx_node_tests: SKIPPED: no ONNX node test data at %s (install Debian's libonnx-testdata or "
        "set RI_ONNX_NODE_DIR)\n",
        root);
    return 0;
  }
  const char *filter = getenv("RI_ONNX_NODE_FILTER");
  const char *verbose_env = getenv("RI_ONNX_NODE_VERBOSE");
  int verbose = verbose_env && strcmp(verbose_env, "1") == 0;
  DIR *d = opendir(root);
  if (!d) {
    fprintf(stderr, "cannot open %s\n", root);
    return 1;
  }
  static char *names[MAX_TESTS];
  int n_names = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n_names < MAX_TESTS) {
    if (strncmp(e->d_name, "test_", 5) != 0) continue;
    if (filter && !strstr(e->d_name, filter)) continue;
    names[n_names] = strdup(e->d_name);
    if (names[n_names]) n_names++;
  }
  closedir(d);
  qsort(names, (size_t)n_names, sizeof names[0], cmp_str);

  int totals[R_COUNT] = {0};
  static char unsupported_lines[MAX_TESTS][640];
  int n_unsupported_lines = 0;
  for (int i = 0; i < n_names; i++) {
    char key[256];
    int r = run_test(root, names[i], key, sizeof key);
    if (r == R_FAILED && divergence(names[i])) {
      printf("known divergence %s: %s (%s)\n", names[i], divergence(names[i]), g_why);
      r = R_DIVERGES;
    }
    totals[r]++;
    tally(key, r);
    if (r == R_FAILED) fprintf(stderr, "FAILED %s [%s]: %s\n", names[i], key, g_why);
    if (r == R_UNSUPPORTED && n_unsupported_lines < MAX_TESTS)
      fmt_path(unsupported_lines[n_unsupported_lines++], sizeof unsupported_lines[0], "%s: %s", names[i],
               g_why);
    if (verbose) printf("%-60s %-12s %s\n", names[i], k_result_names[r], r == R_PASSED ? "" : g_why);
    CHECK_MSG(r != R_FAILED, "%s", names[i]);
    free(names[i]);
  }
  if (ri__alloc_live() != 0) fprintf(stderr, "%ld allocations still live\n", ri__alloc_live());
  CHECK(ri__alloc_live() == 0);

  printf("Unsupported variants (the build returned RI_ERR_UNSUPPORTED):\n");
  for (int i = 0; i < n_unsupported_lines; i++)
    printf("  %s\n", unsupported_lines[i]);
  qsort(g_tally, (size_t)g_n_tally, sizeof g_tally[0], cmp_tally);
  printf("Per op (passed / failed / unsupported / skipped / known divergence):\n");
  for (int i = 0; i < g_n_tally; i++)
    printf("  %-40s %4d %4d %4d %4d %4d\n", g_tally[i].key, g_tally[i].count[R_PASSED],
           g_tally[i].count[R_FAILED], g_tally[i].count[R_UNSUPPORTED], g_tally[i].count[R_SKIPPED],
           g_tally[i].count[R_DIVERGES]);
  printf("%d unsupported variants\n", totals[R_UNSUPPORTED]);
  printf("%d known divergences (runinfer agrees with onnxruntime, not with the stored expectation)\n",
         totals[R_DIVERGES]);
  printf("%d skipped (operator not supported)\n", totals[R_SKIPPED]);
  printf("%d of the passed tests ran with their non-first inputs frozen as initializers (runinfer needs "
         "shape-like inputs at build time)\n",
         g_n_frozen_passed);
  printf("%d passed, %d failed\n", totals[R_PASSED], totals[R_FAILED]);
  return test_done("test_onnx_node_tests");
}
