/* Shared weight operators and released weights of the CPU fast path, through the public API.
 *
 * A model built in memory (tests/c/test_onnx_build.h) has two Convs reading the same weights, one with a
 * ReLU (XNNPACK) and one with a HardSigmoid (no XNNPACK form: reference kernel), a 1x1 Conv, and a
 * GlobalAveragePool -> Flatten -> Gemm head. With RI_XNN_SHARE_BYTES=0 every XNNPACK weight operator is
 * shared, so an engine loaded from a file frees every weight that only XNNPACK reads and keeps the one the
 * reference kernel still reads. The tests check that:
 *  - the loaded engine (shared operators, released weights) gives the same bytes as the built engine
 *    (per-context operators, float weights kept), over a sequence of batch sizes, with one thread and with
 *    two (lanes, one image per chunk), and agrees with the reference kernels to 1e-4;
 *  - the loaded engine refuses to be saved (RI_ERR_UNSUPPORTED, naming a released constant) while the
 *    built engine saves;
 *  - several contexts of the loaded engine, run from several threads at once, give those same bytes, and so
 *    does ri_context_run_items from images scattered in memory (a NULL item or a bad batch is refused);
 *  - every allocation of loading, context creation and runs (lanes included) can fail in turn with
 *    RI_ERR_NO_MEMORY and nothing leaked.
 * Built without XNNPACK the comparisons still run (every side on the reference kernels, nothing released)
 * and the fast-path checks are skipped. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "runinfer/engine.h"
#include "test.h"
#include "test_onnx_build.h"

#ifdef RI_HAVE_XNNPACK
#define HAVE_FAST 1
#else
#define HAVE_FAST 0
#endif

#define F32       1
#define MAX_BATCH 8
#define CIN       4
#define HW        8
#define C1        16
#define NCLS      10

static uint32_t g_seed = 77u;
static float frand(void) {
  g_seed = g_seed * 1664525u + 1013904223u;
  return (float)(g_seed >> 8) / (float)(1u << 24) - 0.5f;
}

static Onnx__TensorProto *init_f32(Onnx__ModelProto *m, const char *name, int rank, const int64_t *dims,
                                   float scale) {
  size_t n = 1;
  for (int i = 0; i < rank; i++)
    n *= (size_t)dims[i];
  float *v = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++)
    v[i] = scale * frand();
  Onnx__TensorProto *t = tb_add_init(m, tb_tensor(name, F32, rank, dims));
  tb_raw(t, v, n * sizeof(float));
  free(v);
  return t;
}

/* x [N,4,8,8]: a = Relu(Conv3x3(x; w1, b1)), h = HardSigmoid(Conv3x3(x; w1, b1)), p = Conv1x1(a; w2),
 * sum = p + h, logits = Gemm(Flatten(GAP(p)); wf, bf). Outputs sum and logits. */
static uint8_t *model_bytes(size_t *len) {
  Onnx__ModelProto *m = tb_model(8, 13);
  tb_input(m, "x", F32, 4, (const int64_t[]){-1, CIN, HW, HW});
  init_f32(m, "w1", 4, (const int64_t[]){C1, CIN, 3, 3}, 0.4f);
  init_f32(m, "b1", 1, (const int64_t[]){C1}, 0.2f);
  init_f32(m, "w2", 4, (const int64_t[]){C1, C1, 1, 1}, 0.3f);
  init_f32(m, "wf", 2, (const int64_t[]){NCLS, C1}, 0.5f);
  init_f32(m, "bf", 1, (const int64_t[]){NCLS}, 0.5f);
  static const int64_t pads[4] = {1, 1, 1, 1}, k3[2] = {3, 3}, k1[2] = {1, 1};
  Onnx__NodeProto *n = tb_node(m, "Conv", "conv_relu", "x,w1,b1", "c1");
  tb_attr_ints(n, "kernel_shape", k3, 2);
  tb_attr_ints(n, "pads", pads, 4);
  tb_node(m, "Relu", "relu", "c1", "a");
  n = tb_node(m, "Conv", "conv_hsig", "x,w1,b1", "c2");
  tb_attr_ints(n, "kernel_shape", k3, 2);
  tb_attr_ints(n, "pads", pads, 4);
  tb_node(m, "HardSigmoid", "hsig", "c2", "h");
  n = tb_node(m, "Conv", "conv_1x1", "a,w2", "p");
  tb_attr_ints(n, "kernel_shape", k1, 2);
  tb_node(m, "Add", "add", "p,h", "sum");
  tb_node(m, "GlobalAveragePool", "gap", "p", "g");
  tb_node(m, "Flatten", "flatten", "g", "f");
  n = tb_node(m, "Gemm", "gemm", "f,wf,bf", "logits");
  tb_attr_i(n, "transB", 1);
  tb_output(m, "sum");
  tb_output(m, "logits");
  return tb_pack(m, len);
}

#define OUT0_PER_IMAGE (C1 * HW * HW)
#define OUT1_PER_IMAGE NCLS
#define IN_PER_IMAGE   (CIN * HW * HW)

static const int k_batches[] = {1, 3, 8, 2, 1};
#define NB (int)(sizeof k_batches / sizeof k_batches[0])

static float g_in[MAX_BATCH * IN_PER_IMAGE];

/* Outputs of one run of every batch size of k_batches, back to back. */
typedef struct {
  float out0[NB][MAX_BATCH * OUT0_PER_IMAGE];
  float out1[NB][MAX_BATCH * OUT1_PER_IMAGE];
} results;

static ri_status run_batches(ri_context_t *c, results *r) {
  for (int i = 0; i < NB; i++) {
    const void *ins[1] = {g_in};
    void *outs[2] = {r->out0[i], r->out1[i]};
    ri_status s = ri_context_run(c, k_batches[i], ins, outs);
    if (s != RI_OK) return s;
  }
  return RI_OK;
}

/* Each image in its own place, apart from the others: the items of ri_context_run_items. */
static float g_items[MAX_BATCH][IN_PER_IMAGE + 16];

/* run_batches through ri_context_run_items, from the images' copies in g_items. */
static ri_status run_batches_items(ri_context_t *c, results *r) {
  for (int i = 0; i < NB; i++) {
    const void *items[MAX_BATCH];
    for (int b = 0; b < k_batches[i]; b++)
      items[b] = g_items[b];
    void *outs[2] = {r->out0[i], r->out1[i]};
    ri_status s = ri_context_run_items(c, k_batches[i], items, outs);
    if (s != RI_OK) return s;
  }
  return RI_OK;
}

static int same(const results *a, const results *b) {
  for (int i = 0; i < NB; i++) {
    if (memcmp(a->out0[i], b->out0[i], (size_t)k_batches[i] * OUT0_PER_IMAGE * sizeof(float)) != 0) return 0;
    if (memcmp(a->out1[i], b->out1[i], (size_t)k_batches[i] * OUT1_PER_IMAGE * sizeof(float)) != 0) return 0;
  }
  return 1;
}

static double max_rel(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]) / fmax(fabs((double)b[i]), 1.0);
    if (d != d) d = 1e30;
    if (d > m) m = d;
  }
  return m;
}

static double max_rel_results(const results *a, const results *b) {
  double m = 0;
  for (int i = 0; i < NB; i++) {
    m = fmax(m, max_rel(a->out0[i], b->out0[i], (size_t)k_batches[i] * OUT0_PER_IMAGE));
    m = fmax(m, max_rel(a->out1[i], b->out1[i], (size_t)k_batches[i] * OUT1_PER_IMAGE));
  }
  return m;
}

static ri_status build(const uint8_t *onnx, size_t len, int threads, ri_engine_t **e) {
  ri_builder_t *b = NULL;
  ri_status s = ri_builder_create(&b);
  if (s == RI_OK) s = ri_builder_set_max_batch(b, MAX_BATCH);
  if (s == RI_OK) s = ri_builder_set_threads(b, threads);
  if (s == RI_OK) s = ri_builder_build_onnx_memory(b, onnx, len, ".", e);
  if (s != RI_OK && b) fprintf(stderr, "build: %s\n", ri_builder_last_error(b));
  ri_builder_destroy(b);
  return s;
}

static ri_status load(const char *path, ri_engine_t **e) {
  ri_runtime_t *rt = NULL;
  ri_status s = ri_runtime_create(&rt);
  if (s == RI_OK) s = ri_runtime_load(rt, path, e);
  ri_runtime_destroy(rt);
  return s;
}

/* Implementation the engine chose for the node named `name` ("" when not found). */
static void impl_of(ri_engine_t *e, const char *name, char *out, size_t cap) {
  const char *json = NULL;
  out[0] = 0;
  if (ri_engine_describe_json(e, &json) != RI_OK) return;
  char key[96];
  snprintf(key, sizeof key, "\"name\":\"%s\",", name);
  const char *p = strstr(json, key);
  const char *q = p ? strstr(p, "\"impl\":\"") : NULL;
  if (!q) return;
  q += 8;
  size_t n = 0;
  while (q[n] && q[n] != '"' && n + 1 < cap) {
    out[n] = q[n];
    n++;
  }
  out[n] = 0;
}

static void expect_impl(ri_engine_t *e, const char *name, const char *want) {
  if (!HAVE_FAST) return;
  char got[64];
  impl_of(e, name, got, sizeof got);
  CHECK_MSG(strcmp(got, want) == 0, "node %s: implementation '%s', expected '%s'", name, got, want);
}

static ri_status run_engine(ri_engine_t *e, results *r) {
  ri_context_t *c = NULL;
  ri_status s = ri_context_create(e, &c);
  if (s == RI_OK) s = run_batches(c, r);
  ri_context_destroy(c);
  return s;
}

static char g_path[] = "/tmp/ri-shared-weights-XXXXXX";

/* Built engine (float weights, per-context operators) against the loaded one (shared operators, weights
 * released) and the reference kernels, with `threads` threads. */
static void test_loaded_matches_built(const uint8_t *onnx, size_t len, int threads, results *expect) {
  static results built, loaded, ref;
  ri_engine_t *eb = NULL, *el = NULL, *er = NULL;
  setenv("RI_XNN_SHARE_BYTES", "1000000000", 1);
  ri_status s = build(onnx, len, threads, &eb);
  CHECK_MSG(s == RI_OK, "threads %d: build: %s", threads, ri_status_str(s));
  setenv("RI_XNN_SHARE_BYTES", "0", 1);
  if (s == RI_OK) {
    s = ri_engine_save(eb, g_path);
    CHECK_MSG(s == RI_OK, "saving the built engine: %s", ri_engine_last_error(eb));
  }
  if (s == RI_OK) {
    s = load(g_path, &el);
    CHECK_MSG(s == RI_OK, "threads %d: load: %s", threads, ri_status_str(s));
  }
  setenv("RI_CPU_FAST", "0", 1);
  if (s == RI_OK) CHECK(load(g_path, &er) == RI_OK);
  unsetenv("RI_CPU_FAST");
  if (el && er) {
    CHECK(run_engine(eb, &built) == RI_OK);
    CHECK(run_engine(el, &loaded) == RI_OK);
    CHECK(run_engine(er, &ref) == RI_OK);
    CHECK_MSG(same(&built, &loaded), "threads %d: the loaded engine differs from the built one by %g",
              threads, max_rel_results(&loaded, &built));
    double d = max_rel_results(&loaded, &ref);
    CHECK_MSG(d <= 1e-4, "threads %d: the loaded engine differs from the reference kernels by %g", threads,
              d);
    expect_impl(el, "conv_relu", "xnn_conv");
    expect_impl(el, "conv_hsig", "ref");
    expect_impl(el, "conv_1x1", "xnn_conv");
    expect_impl(el, "gemm", "xnn_fully_connected");
    char other[sizeof g_path + 8];
    snprintf(other, sizeof other, "%s.copy", g_path);
    s = ri_engine_save(el, other);
    if (HAVE_FAST) {
      CHECK_MSG(s == RI_ERR_UNSUPPORTED, "saving the loaded engine gave %s", ri_status_str(s));
      CHECK_MSG(strstr(ri_engine_last_error(el), "released") != NULL, "message: %s",
                ri_engine_last_error(el));
    } else {
      CHECK_MSG(s == RI_OK, "saving the loaded engine: %s", ri_engine_last_error(el));
    }
    /* The reference-kernel engine released nothing: it saves. */
    CHECK_MSG(ri_engine_save(er, other) == RI_OK, "saving the reference engine: %s",
              ri_engine_last_error(er));
    unlink(other);
    if (expect) *expect = loaded;
  }
  ri_engine_destroy(eb);
  ri_engine_destroy(el);
  ri_engine_destroy(er);
  unsetenv("RI_XNN_SHARE_BYTES");
}

typedef struct {
  ri_engine_t *e;
  const results *expect;
  int mismatches, failures;
} worker_arg;

static void *worker(void *p) {
  worker_arg *a = p;
  ri_context_t *c = NULL;
  results *r = malloc(sizeof *r);
  if (!r || ri_context_create(a->e, &c) != RI_OK) {
    a->failures++;
    free(r);
    return NULL;
  }
  for (int it = 0; it < 6; it++) {
    memset(r, 0, sizeof *r);
    if (run_batches(c, r) != RI_OK)
      a->failures++;
    else if (!same(r, a->expect))
      a->mismatches++;
  }
  ri_context_destroy(c);
  free(r);
  return NULL;
}

/* Three contexts of one loaded engine (two threads each, so lanes run too) at once. */
static void test_concurrent_contexts(const results *expect) {
  setenv("RI_XNN_SHARE_BYTES", "0", 1);
  ri_engine_t *e = NULL;
  CHECK(load(g_path, &e) == RI_OK);
  unsetenv("RI_XNN_SHARE_BYTES");
  if (!e) return;
  enum { N = 3 };
  pthread_t t[N];
  worker_arg a[N];
  for (int i = 0; i < N; i++) {
    a[i] = (worker_arg){e, expect, 0, 0};
    CHECK(pthread_create(&t[i], NULL, worker, &a[i]) == 0);
  }
  for (int i = 0; i < N; i++) {
    pthread_join(t[i], NULL);
    CHECK_MSG(a[i].failures == 0, "thread %d: %d runs failed", i, a[i].failures);
    CHECK_MSG(a[i].mismatches == 0, "thread %d: %d runs differ from one context alone", i, a[i].mismatches);
  }
  ri_engine_destroy(e);
}

/* ri_context_run_items gives ri_context_run's bytes from items scattered in memory; a NULL item is refused
 * with its index and input named, and the context runs normally afterwards. */
static void test_run_items(const results *expect) {
  setenv("RI_XNN_SHARE_BYTES", "0", 1);
  ri_engine_t *e = NULL;
  ri_context_t *c = NULL;
  CHECK(load(g_path, &e) == RI_OK);
  unsetenv("RI_XNN_SHARE_BYTES");
  if (!e || ri_context_create(e, &c) != RI_OK) {
    CHECK(0);
    ri_engine_destroy(e);
    return;
  }
  static results r;
  memset(&r, 0, sizeof r);
  ri_status s = run_batches_items(c, &r);
  CHECK_MSG(s == RI_OK, "run_items: %s", ri_context_last_error(c));
  CHECK_MSG(s != RI_OK || same(&r, expect), "run_items differs from run");
  const void *items[3] = {g_items[0], NULL, g_items[2]};
  float o0[3 * OUT0_PER_IMAGE], o1[3 * OUT1_PER_IMAGE];
  void *outs[2] = {o0, o1};
  CHECK(ri_context_run_items(c, 3, items, outs) == RI_ERR_INVALID_ARG);
  CHECK_MSG(strstr(ri_context_last_error(c), "item 1 of input 0") != NULL, "message: %s",
            ri_context_last_error(c));
  CHECK(ri_context_run_items(c, MAX_BATCH + 1, items, outs) == RI_ERR_INVALID_ARG);
  CHECK_MSG(strstr(ri_context_last_error(c), "outside 1..8") != NULL, "message: %s",
            ri_context_last_error(c));
  memset(&r, 0, sizeof r);
  CHECK(run_batches_items(c, &r) == RI_OK && same(&r, expect));
  ri_context_destroy(c);
  ri_engine_destroy(e);
}

/* Loading (shared operators made, weights released), two contexts and runs through the lanes, with the
 * n-th allocation failing for every n until a pass completes (the second context runs its batches as
 * items, so the gather's buffers fail in turn too). */
static void test_alloc_failures(void) {
  setenv("RI_XNN_SHARE_BYTES", "0", 1);
  setenv("RI_XNN_CHUNK_BYTES", "1", 1);
  int ok_seen = 0;
  static results r;
  for (long n = 1; n < 5000 && !ok_seen; n++) {
    long live = ri__alloc_live();
    ri__alloc_fail_after(n);
    ri_engine_t *e = NULL;
    ri_context_t *c1 = NULL, *c2 = NULL;
    ri_status s = load(g_path, &e);
    if (s == RI_OK) s = ri_context_create(e, &c1);
    if (s == RI_OK) s = ri_context_create(e, &c2);
    if (s == RI_OK) s = run_batches(c1, &r);
    if (s == RI_OK) s = run_batches_items(c2, &r);
    ri__alloc_fail_after(0);
    if (s == RI_OK)
      ok_seen = 1;
    else
      CHECK_MSG(s == RI_ERR_NO_MEMORY, "failing allocation %ld: status %s", n, ri_status_str(s));
    ri_context_destroy(c1);
    ri_context_destroy(c2);
    ri_engine_destroy(e);
    CHECK_MSG(ri__alloc_live() == live, "failing allocation %ld: %ld allocations leaked", n,
              ri__alloc_live() - live);
  }
  CHECK(ok_seen);
  unsetenv("RI_XNN_CHUNK_BYTES");
  unsetenv("RI_XNN_SHARE_BYTES");
}

int main(void) {
  int fd = mkstemp(g_path);
  CHECK(fd >= 0);
  if (fd < 0) return test_done("test_shared_weights");
  close(fd);
  for (int i = 0; i < MAX_BATCH * IN_PER_IMAGE; i++)
    g_in[i] = 2.f * frand();
  for (int b = 0; b < MAX_BATCH; b++)
    memcpy(g_items[b], g_in + (size_t)b * IN_PER_IMAGE, sizeof(float) * IN_PER_IMAGE);
  size_t len;
  const uint8_t *onnx = model_bytes(&len);
  static results expect;
  test_loaded_matches_built(onnx, len, 1, NULL);
  /* Two threads, one image per chunk: batches larger than one run in lanes. */
  setenv("RI_XNN_CHUNK_BYTES", "1", 1);
  test_loaded_matches_built(onnx, len, 2, &expect);
  test_concurrent_contexts(&expect);
  test_run_items(&expect);
  unsetenv("RI_XNN_CHUNK_BYTES");
  test_alloc_failures();
  unlink(g_path);
  tb_reset();
  return test_done("test_shared_weights");
}
