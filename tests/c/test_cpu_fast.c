/* The CPU fast path (XNNPACK) against the reference kernels on hand-built graphs.
 *
 * Each graph is prepared twice by the CPU backend: once with RI_CPU_FAST=0 (every node on its reference
 * kernel) and once with the fast path. One context of each runs a sequence of batch sizes (so the fast
 * path's operators are set up again for each size on the same context), and every output must agree to
 * 1e-4 relative. The tests also check which nodes the fast path took, so that a planner that silently
 * declines everything cannot pass, and that nodes it must decline keep the reference kernel.
 *
 * Built without XNNPACK, the comparisons still run (both sides are the reference) and the implementation
 * checks are skipped. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/alloc.h"
#include "graph/op.h"
#include "graph/passes.h"
#include "graph/shape_infer.h"
#define GB_SEED 2024u
#include "graph_build.h"
#include "test.h"

#ifdef RI_HAVE_XNNPACK
#define HAVE_FAST 1
#else
#define HAVE_FAST 0
#endif

/* ---- graph building: graph_build.h, with attribute failures checked ------------------------------------ */

#define attr_int(g, ni, name, ...)   CHECK(attr_int(g, ni, name, __VA_ARGS__) >= 0)
#define attr_float(g, ni, name, ...) CHECK(attr_float(g, ni, name, __VA_ARGS__) >= 0)
#define attr_str(g, ni, name, ...)   CHECK(attr_str(g, ni, name, __VA_ARGS__) >= 0)
#define attr_ints(g, ni, name, ...)  CHECK(attr_ints(g, ni, name, __VA_ARGS__) >= 0)

static void set_act(ri__graph *g, int ni, ri__act a, float x, float y) {
  if (ni < 0) return;
  g->nodes[ni].act = a;
  g->nodes[ni].act_a = x;
  g->nodes[ni].act_b = y;
}

/* A Conv node with weight [m, cin/group, kh, kw] and an optional bias. */
static int conv(ri__graph *g, const char *name, int x, int y, int64_t cin, int64_t m, int64_t kh, int64_t kw,
                int64_t group, int bias) {
  char wn[128], bn[128];
  snprintf(wn, sizeof wn, "%s.w", name);
  snprintf(bn, sizeof bn, "%s.b", name);
  float scale = 1.5f / (float)(cin / group * kh * kw);
  int w = cf32(g, wn, SHAPE(m, cin / group, kh, kw), NULL, scale < 0.5f ? 2 * scale + 0.05f : 1.f, 0);
  int b = bias ? cf32(g, bn, SHAPE(m), NULL, 0.5f, 0) : -1;
  int ni =
      bias ? node(g, name, RI__OP_Conv, IDX(x, w, b), IDX(y)) : node(g, name, RI__OP_Conv, IDX(x, w), IDX(y));
  attr_ints(g, ni, "kernel_shape", I64S(kh, kw));
  if (group != 1) attr_int(g, ni, "group", group);
  return ni;
}

/* ---- running both paths ------------------------------------------------------------------------------ */

typedef struct {
  void *state, *ctx;
} side;

static void side_free(side *s) {
  if (s->ctx) ri__cpu_backend.ctx_destroy(s->ctx);
  if (s->state) ri__cpu_backend.release(s->state);
  memset(s, 0, sizeof *s);
}

static ri_status side_make(const ri__graph *g, const ri__backend_cfg *cfg, int fast, side *s, ri__err *err) {
  memset(s, 0, sizeof *s);
  if (fast)
    unsetenv("RI_CPU_FAST");
  else
    setenv("RI_CPU_FAST", "0", 1);
  ri_status st = ri__cpu_backend.prepare(g, cfg, &s->state, err);
  unsetenv("RI_CPU_FAST");
  if (st == RI_OK) st = ri__cpu_backend.ctx_create(s->state, &s->ctx, err);
  if (st != RI_OK) side_free(s);
  return st;
}

/* Links g, checks its ops, runs the batch analysis (which marks the values whose first axis is the batch),
 * infers shapes and plans memory for max_batch: what the engine builder hands the backend, without the
 * fusion passes, so that each test controls fusions itself. */
static ri_status finish(ri__graph *g, int max_batch, ri__err *err) {
  RI__TRY(ri__graph_link(g, err));
  RI__TRY(ri__graph_check_ops(g, err));
  RI__TRY(ri__graph_infer_shapes(g, 1, err));
  RI__TRY(ri__pass_shape_ops(g, max_batch, err));
  RI__TRY(ri__graph_infer_shapes(g, max_batch, err));
  return ri__pass_memory_plan(g, max_batch, err);
}

static ri__backend_cfg make_cfg(const ri__graph *g, int max_batch, int threads) {
  ri__backend_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.max_batch = max_batch;
  cfg.threads = threads;
  cfg.precision = RI_PRECISION_FP32;
  cfg.arena_size = ri__memory_plan_size(g);
  return cfg;
}

/* Runs one batch on one side; outputs[i] must hold the output's elements. */
static ri_status side_run(const ri__graph *g, side *s, int batch, float *const *inputs, float **outputs,
                          ri__err *err) {
  ri__tensor *vals = ri__calloc((size_t)g->n_values, sizeof *vals);
  if (!vals) return RI__OOM(err);
  ri_status st = ri__shapes_resolve(g, batch, vals, err);
  if (st == RI_OK)
    st = ri__cpu_backend.run(s->ctx, vals, batch, (const void *const *)inputs, (void *const *)outputs, err);
  ri__shapes_free(g, vals);
  ri__free(vals);
  return st;
}

static int64_t numel_at(const ri__graph *g, int v, int batch) {
  ri__shape s = g->values[v].shape;
  if (s.rank > 0 && g->values[v].shape.dims[0] == g->batch) s.dims[0] = batch;
  return ri__shape_numel(&s);
}

/* Largest |a - b| / max(|b|, 1) over n elements (NaN counts as a huge difference). */
static double max_rel_diff(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]) / fmax(fabs((double)b[i]), 1.0);
    if (d != d) d = 1e30;
    if (d > m) m = d;
  }
  return m;
}

/* Implementation the fast side chose for the node named `name`. */
static const char *impl_of(const ri__graph *g, const side *s, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    if (strcmp(g->nodes[i].name, name) == 0) return ri__cpu_backend.node_impl(s->state, i);
  return "(no such node)";
}

static void expect_impl(const ri__graph *g, const side *s, const char *name, const char *want) {
  if (!HAVE_FAST) return;
  const char *got = impl_of(g, s, name);
  CHECK_MSG(got && strcmp(got, want) == 0, "node %s: implementation %s, expected %s", name,
            got ? got : "NULL", want);
}

/* Prepares g both ways and compares every output over the batch sequence on one context per side. Leaves
 * the fast side in *fast_out (when not NULL) for implementation checks. */
static void compare_once(const char *tag, ri__graph *g, int max_batch, const int *batches, int nb,
                         int threads, side *fast_out);

/* Runs the comparison with the default chunking and again with sliced segments forced to one image per
 * chunk and to a few images per chunk (RI_XNN_CHUNK_BYTES), so that per-chunk offsets are exercised. */
static void compare(const char *tag, ri__graph *g, int max_batch, const int *batches, int nb, int threads,
                    side *fast_out) {
  ri__err err;
  ri__err_clear(&err);
  ri_status st = finish(g, max_batch, &err);
  CHECK_MSG(st == RI_OK, "%s: finish: %s", tag, err.msg);
  if (st != RI_OK) return;
  static const char *budgets[] = {"1", "40000"};
  for (int i = 0; i < 2; i++) {
    char t[160];
    snprintf(t, sizeof t, "%s (chunk bytes %s)", tag, budgets[i]);
    setenv("RI_XNN_CHUNK_BYTES", budgets[i], 1);
    compare_once(t, g, max_batch, batches, nb, threads, NULL);
    unsetenv("RI_XNN_CHUNK_BYTES");
  }
  compare_once(tag, g, max_batch, batches, nb, threads, fast_out);
}

static void compare_once(const char *tag, ri__graph *g, int max_batch, const int *batches, int nb,
                         int threads, side *fast_out) {
  ri__err err;
  ri__err_clear(&err);
  ri__backend_cfg cfg = make_cfg(g, max_batch, threads);
  ri_status st;
  side ref, fast;
  st = side_make(g, &cfg, 0, &ref, &err);
  CHECK_MSG(st == RI_OK, "%s: reference prepare: %s", tag, err.msg);
  if (st != RI_OK) return;
  st = side_make(g, &cfg, 1, &fast, &err);
  CHECK_MSG(st == RI_OK, "%s: fast prepare: %s", tag, err.msg);
  if (st != RI_OK) {
    side_free(&ref);
    return;
  }
  float *in[8] = {0}, *o_ref[8] = {0}, *o_fast[8] = {0};
  for (int bi = 0; bi < nb; bi++) {
    int batch = batches[bi];
    /* The backend trusts the engine layer to keep batch <= max_batch (the arena is sized for it). */
    CHECK_MSG(batch >= 1 && batch <= max_batch, "%s: batch %d outside 1..%d", tag, batch, max_batch);
    if (batch < 1 || batch > max_batch) continue;
    for (int i = 0; i < g->n_inputs; i++) {
      int64_t n = numel_at(g, g->inputs[i], batch);
      in[i] = malloc((size_t)n * sizeof(float));
      for (int64_t j = 0; j < n; j++)
        in[i][j] = 2.f * frand();
    }
    for (int i = 0; i < g->n_outputs; i++) {
      int64_t n = numel_at(g, g->outputs[i], batch);
      o_ref[i] = malloc((size_t)n * sizeof(float));
      o_fast[i] = malloc((size_t)n * sizeof(float));
      for (int64_t j = 0; j < n; j++)
        o_fast[i][j] = o_ref[i][j] = -12345.f;
    }
    st = side_run(g, &ref, batch, in, o_ref, &err);
    CHECK_MSG(st == RI_OK, "%s batch %d: reference run: %s", tag, batch, err.msg);
    ri_status st2 = side_run(g, &fast, batch, in, o_fast, &err);
    CHECK_MSG(st2 == RI_OK, "%s batch %d: fast run: %s", tag, batch, err.msg);
    for (int i = 0; st == RI_OK && st2 == RI_OK && i < g->n_outputs; i++) {
      int64_t n = numel_at(g, g->outputs[i], batch);
      double d = max_rel_diff(o_fast[i], o_ref[i], n);
      CHECK_MSG(d <= 1e-4, "%s batch %d output %d (%s): max relative difference %g", tag, batch, i,
                g->values[g->outputs[i]].name, d);
    }
    for (int i = 0; i < 8; i++) {
      free(in[i]);
      free(o_ref[i]);
      free(o_fast[i]);
      in[i] = o_ref[i] = o_fast[i] = NULL;
    }
  }
  side_free(&ref);
  if (fast_out)
    *fast_out = fast;
  else
    side_free(&fast);
}

static const int k_batches[] = {1, 3, 8, 2, 1};
#define NB (int)(sizeof k_batches / sizeof k_batches[0])

/* ---- tests --------------------------------------------------------------------------------------------- */

typedef struct {
  const char *name;
  int64_t cin, cout, h, w, kh, kw, sh, sw, dh, dw, group;
  int64_t pads[4]; /* top, left, bottom, right */
  const char *auto_pad;
  int bias;
  ri__act act;
  float a, b;
} conv_case;

/* One Conv per graph across kernel sizes, strides, asymmetric pads, dilations, groups (dense, grouped,
 * depthwise, depth multiplier) and fused activations. */
static void test_conv_variants(void) {
  static const conv_case cases[] = {
      {"1x1", 16, 24, 9, 7, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, RI__ACT_NONE, 0, 0},
      {"3x3_relu", 8, 16, 10, 10, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, RI__ACT_RELU, 0, 0},
      {"3x3_s2_asym_clip", 3, 32, 15, 16, 3, 3, 2, 2, 1, 1, 1, {0, 0, 1, 1}, NULL, 1, RI__ACT_CLIP, 0, 6},
      {"same_upper_s2",
       6,
       10,
       11,
       13,
       3,
       3,
       2,
       2,
       1,
       1,
       1,
       {0, 0, 0, 0},
       "SAME_UPPER",
       0,
       RI__ACT_NONE,
       0,
       0},
      {"dw3x3_relu6", 32, 32, 12, 12, 3, 3, 1, 1, 1, 1, 32, {1, 1, 1, 1}, NULL, 1, RI__ACT_CLIP, 0, 6},
      {"dw3x3_s2_asym", 24, 24, 13, 14, 3, 3, 2, 2, 1, 1, 24, {0, 0, 1, 1}, NULL, 1, RI__ACT_NONE, 0, 0},
      {"dw5x5", 16, 16, 9, 9, 5, 5, 1, 1, 1, 1, 16, {2, 2, 2, 2}, NULL, 0, RI__ACT_RELU, 0, 0},
      {"dw_multiplier2", 8, 16, 8, 8, 3, 3, 1, 1, 1, 1, 8, {1, 1, 1, 1}, NULL, 1, RI__ACT_NONE, 0, 0},
      {"grouped4", 16, 32, 8, 9, 3, 3, 1, 1, 1, 1, 4, {1, 0, 1, 2}, NULL, 1, RI__ACT_NONE, 0, 0},
      {"dilated2", 8, 8, 12, 12, 3, 3, 1, 1, 2, 2, 1, {2, 2, 2, 2}, NULL, 1, RI__ACT_NONE, 0, 0},
      {"rect_k_stride", 5, 7, 11, 17, 2, 5, 1, 3, 1, 1, 1, {0, 2, 1, 0}, NULL, 1, RI__ACT_NONE, 0, 0},
      {"sigmoid_post", 4, 6, 6, 6, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, RI__ACT_SIGMOID, 0, 0},
      {"hardswish_post", 4, 6, 6, 6, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, RI__ACT_HARD_SWISH, 0, 0},
      {"leaky_post", 4, 6, 6, 6, 3, 3, 2, 1, 1, 1, 2, {1, 1, 1, 1}, NULL, 1, RI__ACT_LEAKY_RELU, 0.1f, 0},
      {"to_1x1", 8, 12, 3, 3, 3, 3, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, RI__ACT_NONE, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const conv_case *c = &cases[i];
    ri__graph *g = gnew();
    int x = input(g, "x", SHAPE(1, c->cin, c->h, c->w), 0);
    int y = act(g, "y");
    int ni = conv(g, "conv", x, y, c->cin, c->cout, c->kh, c->kw, c->group, c->bias);
    attr_ints(g, ni, "strides", I64S(c->sh, c->sw));
    if (c->dh != 1 || c->dw != 1) attr_ints(g, ni, "dilations", I64S(c->dh, c->dw));
    if (c->auto_pad)
      attr_str(g, ni, "auto_pad", c->auto_pad);
    else
      attr_ints(g, ni, "pads", I64S(c->pads[0], c->pads[1], c->pads[2], c->pads[3]));
    set_act(g, ni, c->act, c->a, c->b);
    output(g, y);
    side fast;
    memset(&fast, 0, sizeof fast);
    compare(c->name, g, 8, k_batches, NB, 2, &fast);
    if (fast.state) {
      int dw = c->group == c->cin && c->cout == c->cin && c->group > 1;
      expect_impl(g, &fast, "conv", dw ? "xnn_dwconv" : "xnn_conv");
    }
    side_free(&fast);
    ri__graph_destroy(g);
  }
}

/* A MobileNetV2-like block and classifier tail: conv -> dwconv -> conv, residual Add (+ReLU), MaxPool,
 * GlobalAveragePool, Flatten, Gemm, Softmax. The expansion output also feeds a Concat, so it needs both
 * layouts inside its segment (NHWC for the dwconv, NCHW for the Concat). Run with 1 and 2 threads. */
static void test_block_chain(void) {
  for (int threads = 1; threads <= 2; threads++) {
    ri__graph *g = gnew();
    int x = input(g, "x", SHAPE(1, 8, 14, 14), 0);
    int e = act(g, "e"), d = act(g, "d"), p = act(g, "p"), r = act(g, "r"), m = act(g, "m");
    int gp = act(g, "gp"), f = act(g, "f"), fc = act(g, "fc"), sm = act(g, "sm"), cat = act(g, "cat");
    set_act(g, conv(g, "expand", x, e, 8, 24, 1, 1, 1, 1), RI__ACT_CLIP, 0, 6);
    int dn = conv(g, "dw", e, d, 24, 24, 3, 3, 24, 1);
    attr_ints(g, dn, "pads", I64S(1, 1, 1, 1));
    set_act(g, dn, RI__ACT_CLIP, 0, 6);
    conv(g, "project", d, p, 24, 8, 1, 1, 1, 1);
    set_act(g, node(g, "residual", RI__OP_Add, IDX(p, x), IDX(r)), RI__ACT_RELU, 0, 0);
    int mp = node(g, "maxpool", RI__OP_MaxPool, IDX(r), IDX(m));
    attr_ints(g, mp, "kernel_shape", I64S(3, 3));
    attr_ints(g, mp, "strides", I64S(2, 2));
    attr_ints(g, mp, "pads", I64S(1, 1, 1, 1));
    node(g, "gap", RI__OP_GlobalAveragePool, IDX(m), IDX(gp));
    node(g, "flatten", RI__OP_Flatten, IDX(gp), IDX(f));
    int wfc = cf32(g, "fc.w", SHAPE(10, 8), NULL, 0.5f, 0), bfc = cf32(g, "fc.b", SHAPE(10), NULL, 0.5f, 0);
    int gm = node(g, "gemm", RI__OP_Gemm, IDX(f, wfc, bfc), IDX(fc));
    attr_int(g, gm, "transB", 1);
    node(g, "softmax", RI__OP_Softmax, IDX(fc), IDX(sm));
    attr_int(g, node(g, "concat", RI__OP_Concat, IDX(e, x), IDX(cat)), "axis", 1);
    /* A reference node between fast ones: the expansion output leaves its segment as NCHW, and the
     * transposed map enters the next segment through an NHWC staging copy. */
    int tt = act(g, "tt"), tc = act(g, "tc");
    attr_ints(g, node(g, "swap_hw", RI__OP_Transpose, IDX(e), IDX(tt)), "perm", I64S(0, 1, 3, 2));
    conv(g, "after_ref", tt, tc, 24, 6, 3, 3, 1, 1);
    output(g, sm);
    output(g, cat);
    output(g, tc);
    side fast;
    memset(&fast, 0, sizeof fast);
    compare(threads == 1 ? "block_chain_t1" : "block_chain_t2", g, 8, k_batches, NB, threads, &fast);
    if (fast.state) {
      expect_impl(g, &fast, "expand", "xnn_conv");
      expect_impl(g, &fast, "dw", "xnn_dwconv");
      expect_impl(g, &fast, "residual", "xnn_add");
      expect_impl(g, &fast, "maxpool", "xnn_maxpool");
      expect_impl(g, &fast, "gap", "xnn_global_avgpool");
      expect_impl(g, &fast, "gemm", "xnn_fully_connected");
      expect_impl(g, &fast, "softmax", "xnn_softmax");
      expect_impl(g, &fast, "concat", "concat");
      expect_impl(g, &fast, "swap_hw", "ref");
      expect_impl(g, &fast, "after_ref", "xnn_conv");
    }
    side_free(&fast);
    ri__graph_destroy(g);
  }
}

/* The SSD head pattern: Conv -> Transpose(0,2,3,1) -> Reshape [0,-1,4] on two feature maps, Concat on axis
 * 1; the second map comes from a stride-2 conv on the first. The transposes become copies of the NHWC
 * data, and the whole graph is one segment. A Sigmoid on the concatenated scores runs plainly. */
static void test_ssd_heads(void) {
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(1, 16, 10, 10), 0);
  int f2 = act(g, "f2"), h1 = act(g, "h1"), h2 = act(g, "h2"), t1 = act(g, "t1"), t2 = act(g, "t2");
  int r1 = act(g, "r1"), r2 = act(g, "r2"), cat = act(g, "cat"), sg = act(g, "sg");
  int c2 = conv(g, "down", x, f2, 16, 16, 3, 3, 1, 1);
  attr_ints(g, c2, "strides", I64S(2, 2));
  attr_ints(g, c2, "pads", I64S(0, 0, 1, 1));
  set_act(g, c2, RI__ACT_CLIP, 0, 6);
  conv(g, "head1", x, h1, 16, 12, 1, 1, 1, 1);
  conv(g, "head2", f2, h2, 16, 12, 1, 1, 1, 1);
  attr_ints(g, node(g, "tr1", RI__OP_Transpose, IDX(h1), IDX(t1)), "perm", I64S(0, 2, 3, 1));
  attr_ints(g, node(g, "tr2", RI__OP_Transpose, IDX(h2), IDX(t2)), "perm", I64S(0, 2, 3, 1));
  int shp = ci64(g, "shape4", SHAPE(3), (int64_t[]){0, -1, 4});
  node(g, "rs1", RI__OP_Reshape, IDX(t1, shp), IDX(r1));
  node(g, "rs2", RI__OP_Reshape, IDX(t2, shp), IDX(r2));
  attr_int(g, node(g, "concat", RI__OP_Concat, IDX(r1, r2), IDX(cat)), "axis", 1);
  node(g, "sigmoid", RI__OP_Sigmoid, IDX(cat), IDX(sg));
  output(g, sg);
  output(g, f2); /* an NHWC value that is also a graph output */
  side fast;
  memset(&fast, 0, sizeof fast);
  static const int batches[] = {1, 4, 3};
  compare("ssd_heads", g, 4, batches, 3, 2, &fast);
  if (fast.state) {
    expect_impl(g, &fast, "tr1", "xnn_nhwc_copy");
    expect_impl(g, &fast, "tr2", "xnn_nhwc_copy");
    expect_impl(g, &fast, "rs1", "copy");
    expect_impl(g, &fast, "concat", "concat");
    expect_impl(g, &fast, "sigmoid", "xnn_sigmoid");
  }
  side_free(&fast);
  ri__graph_destroy(g);
}

/* An NHWC image input: Transpose(0,3,1,2) -> Sub 127.5 -> Mul 1/127.5 -> Conv, then elementwise ops with
 * per-channel ([1,C,1,1] and [C,1,1]), full-map ([C,H,W]) and scalar constants in NHWC mode, a Div of two
 * activations, and an SE-style Mul of a map by a [N,C,1,1] gate computed from it. */
static void test_nhwc_input_and_binary(void) {
  ri__graph *g = gnew();
  int x = input(g, "img", SHAPE(1, 9, 11, 3), 0);
  int t = act(g, "t"), s = act(g, "s"), m = act(g, "m"), c = act(g, "c"), a1 = act(g, "a1"),
      a2 = act(g, "a2");
  int a3 = act(g, "a3"), a4 = act(g, "a4"), gp = act(g, "gp"), gc = act(g, "gc"), gs = act(g, "gs");
  int se = act(g, "se"), dv = act(g, "dv");
  attr_ints(g, node(g, "to_nchw", RI__OP_Transpose, IDX(x), IDX(t)), "perm", I64S(0, 3, 1, 2));
  float half = 127.5f, inv = 1.f / 127.5f;
  node(g, "sub", RI__OP_Sub, IDX(t, cf32(g, "k127", SHAPE(1), &half, 0, 0)), IDX(s));
  node(g, "mul", RI__OP_Mul, IDX(s, cf32(g, "kinv", SHAPE(1), &inv, 0, 0)), IDX(m));
  set_act(g, conv(g, "conv", m, c, 3, 8, 3, 3, 1, 1), RI__ACT_RELU, 0, 0);
  node(g, "add_pc", RI__OP_Add, IDX(c, cf32(g, "pc", SHAPE(1, 8, 1, 1), NULL, 1, 0)), IDX(a1));
  node(g, "mul_c11", RI__OP_Mul, IDX(cf32(g, "c11", SHAPE(8, 1, 1), NULL, 1, 0), a1), IDX(a2));
  set_act(g, node(g, "sub_map", RI__OP_Sub, IDX(a2, cf32(g, "map", SHAPE(8, 7, 9), NULL, 1, 0)), IDX(a3)),
          RI__ACT_CLIP, -1, 1);
  node(g, "div_pos", RI__OP_Div, IDX(a3, cf32(g, "pos", SHAPE(1, 8, 7, 9), NULL, 0.5f, 1.5f)), IDX(a4));
  node(g, "gap", RI__OP_GlobalAveragePool, IDX(a4), IDX(gp));
  conv(g, "gate_conv", gp, gc, 8, 8, 1, 1, 1, 1);
  node(g, "gate", RI__OP_Sigmoid, IDX(gc), IDX(gs));
  node(g, "se_mul", RI__OP_Mul, IDX(a4, gs), IDX(se));
  node(g, "div_act", RI__OP_Div, IDX(se, a1), IDX(dv));
  output(g, dv);
  output(g, a3);
  side fast;
  memset(&fast, 0, sizeof fast);
  compare("nhwc_input_binary", g, 8, k_batches, NB, 2, &fast);
  if (fast.state) {
    expect_impl(g, &fast, "to_nchw", "xnn_nhwc_copy");
    expect_impl(g, &fast, "sub", "xnn_subtract");
    expect_impl(g, &fast, "mul", "xnn_multiply");
    expect_impl(g, &fast, "mul_c11", "xnn_multiply");
    expect_impl(g, &fast, "sub_map", "xnn_subtract");
    expect_impl(g, &fast, "div_pos", "xnn_divide");
    expect_impl(g, &fast, "se_mul", "xnn_multiply");
    expect_impl(g, &fast, "div_act", "xnn_divide");
    expect_impl(g, &fast, "gate", "xnn_sigmoid");
  }
  side_free(&fast);
  ri__graph_destroy(g);
}

typedef struct {
  const char *name;
  ri__op op;
  int64_t k, s, pads[4];
  int ceil, count_include_pad;
  const char *want; /* expected implementation */
} pool_case;

/* Pools on a reference-produced NCHW input (Relu is forced onto the reference path by leaving its output
 * a plain value: the first NHWC reader converts it). AveragePool with count_include_pad and pads stays on
 * the reference kernel. */
static void test_pools(void) {
  static const pool_case cases[] = {
      {"max3s2p1", RI__OP_MaxPool, 3, 2, {1, 1, 1, 1}, 0, 0, "xnn_maxpool"},
      {"max2s2", RI__OP_MaxPool, 2, 2, {0, 0, 0, 0}, 0, 0, "xnn_maxpool"},
      {"max3s2_ceil", RI__OP_MaxPool, 3, 2, {0, 0, 0, 0}, 1, 0, "xnn_maxpool"},
      {"max3s1_asym", RI__OP_MaxPool, 3, 1, {0, 1, 2, 0}, 0, 0, "xnn_maxpool"},
      {"avg3s1p1", RI__OP_AveragePool, 3, 1, {1, 1, 1, 1}, 0, 0, "xnn_avgpool"},
      {"avg2s2", RI__OP_AveragePool, 2, 2, {0, 0, 0, 0}, 0, 1, "xnn_avgpool"},
      {"avg3s2_ceil", RI__OP_AveragePool, 3, 2, {0, 0, 0, 0}, 1, 0, "xnn_avgpool"},
      {"avg3_incl_pad", RI__OP_AveragePool, 3, 1, {1, 1, 1, 1}, 0, 1, "ref"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const pool_case *c = &cases[i];
    ri__graph *g = gnew();
    int x = input(g, "x", SHAPE(1, 6, 10, 11), 0);
    int y = act(g, "y");
    int ni = node(g, "pool", c->op, IDX(x), IDX(y));
    attr_ints(g, ni, "kernel_shape", I64S(c->k, c->k));
    attr_ints(g, ni, "strides", I64S(c->s, c->s));
    attr_ints(g, ni, "pads", I64S(c->pads[0], c->pads[1], c->pads[2], c->pads[3]));
    if (c->ceil) attr_int(g, ni, "ceil_mode", 1);
    if (c->op == RI__OP_AveragePool) attr_int(g, ni, "count_include_pad", c->count_include_pad);
    output(g, y);
    side fast;
    memset(&fast, 0, sizeof fast);
    compare(c->name, g, 8, k_batches, NB, 2, &fast);
    if (fast.state) expect_impl(g, &fast, "pool", c->want);
    if (!fast.state && HAVE_FAST)
      CHECK_MSG(strcmp(c->want, "ref") == 0, "%s: fast path declined everything", c->name);
    side_free(&fast);
    ri__graph_destroy(g);
  }
}

/* Gemm with transB 0 and 1, alpha and beta, a row bias and a scalar C, fused ReLU; MatMul of a rank-3
 * activation by a constant matrix; Clip (min/max inputs), LeakyRelu and HardSwish on plain values. */
static void test_dense_and_unary(void) {
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(1, 12), 0);
  int x3 = input(g, "x3", SHAPE(1, 5, 12), 0);
  int y1 = act(g, "y1"), y2 = act(g, "y2"), y3 = act(g, "y3"), y4 = act(g, "y4"), y5 = act(g, "y5");
  int y6 = act(g, "y6");
  int g1 = node(g, "gemm_tb", RI__OP_Gemm,
                IDX(x, cf32(g, "b1", SHAPE(7, 12), NULL, 0.5f, 0), cf32(g, "c1", SHAPE(1, 7), NULL, 1, 0)),
                IDX(y1));
  attr_int(g, g1, "transB", 1);
  attr_float(g, g1, "alpha", 0.75f);
  attr_float(g, g1, "beta", 1.5f);
  set_act(g, g1, RI__ACT_RELU, 0, 0);
  node(g, "gemm_kn", RI__OP_Gemm,
       IDX(y1, cf32(g, "b2", SHAPE(7, 9), NULL, 0.5f, 0), cf32(g, "c2", SHAPE(1), NULL, 1, 0)), IDX(y2));
  node(g, "matmul", RI__OP_MatMul, IDX(x3, cf32(g, "b3", SHAPE(12, 6), NULL, 0.5f, 0)), IDX(y3));
  float lo = -0.25f, hi = 0.5f;
  node(g, "clip", RI__OP_Clip,
       IDX(y3, cf32(g, "lo", SHAPE(1), &lo, 0, 0), cf32(g, "hi", SHAPE(1), &hi, 0, 0)), IDX(y4));
  attr_float(g, node(g, "leaky", RI__OP_LeakyRelu, IDX(y2), IDX(y5)), "alpha", 0.2f);
  node(g, "hswish", RI__OP_HardSwish, IDX(y5), IDX(y6));
  output(g, y4);
  output(g, y6);
  side fast;
  memset(&fast, 0, sizeof fast);
  compare("dense_unary", g, 8, k_batches, NB, 2, &fast);
  if (fast.state) {
    expect_impl(g, &fast, "gemm_tb", "xnn_fully_connected");
    expect_impl(g, &fast, "gemm_kn", "xnn_fully_connected");
    expect_impl(g, &fast, "matmul", "xnn_fully_connected");
    expect_impl(g, &fast, "clip", "xnn_clamp");
    expect_impl(g, &fast, "leaky", "xnn_leaky_relu");
    expect_impl(g, &fast, "hswish", "xnn_hardswish");
  }
  side_free(&fast);
  ri__graph_destroy(g);
}

/* Constant Pad of NHWC maps (spatial and channel pads, a non-zero constant) feeding a conv; Pad in reflect
 * mode stays on the reference kernel. */
static void test_pad(void) {
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(1, 5, 9, 8), 0);
  int c0 = act(g, "c0"), p1 = act(g, "p1"), c1 = act(g, "c1"), p2 = act(g, "p2"), p3 = act(g, "p3");
  conv(g, "conv0", x, c0, 5, 6, 1, 1, 1, 1);
  float v = 0.5f;
  node(g, "pad_hw", RI__OP_Pad,
       IDX(c0, ci64(g, "pads1", SHAPE(8), (int64_t[]){0, 0, 1, 2, 0, 0, 2, 0}),
           cf32(g, "pv", SHAPE(1), &v, 0, 0)),
       IDX(p1));
  int cn = conv(g, "conv1", p1, c1, 6, 4, 3, 3, 1, 1);
  attr_ints(g, cn, "strides", I64S(2, 2));
  node(g, "pad_c", RI__OP_Pad, IDX(c1, ci64(g, "pads2", SHAPE(8), (int64_t[]){0, 1, 0, 0, 0, 2, 1, 1})),
       IDX(p2));
  attr_str(g,
           node(g, "pad_reflect", RI__OP_Pad,
                IDX(p2, ci64(g, "pads3", SHAPE(8), (int64_t[]){0, 0, 1, 1, 0, 0, 1, 1})), IDX(p3)),
           "mode", "reflect");
  output(g, p3);
  output(g, p1);
  side fast;
  memset(&fast, 0, sizeof fast);
  compare("pad", g, 8, k_batches, NB, 2, &fast);
  if (fast.state) {
    expect_impl(g, &fast, "pad_hw", "xnn_constant_pad");
    expect_impl(g, &fast, "pad_c", "xnn_constant_pad");
    expect_impl(g, &fast, "pad_reflect", "ref");
  }
  side_free(&fast);
  ri__graph_destroy(g);
}

/* Linear Resize of NHWC maps in each coordinate mode XNNPACK shares, up and down; a scale whose output size
 * is rounded down (so that ONNX's source coordinates use the scale, not out / in) and nearest mode stay on
 * the reference kernel. */
static void test_resize(void) {
  static const struct {
    const char *mode, *coord;
    int64_t h, w;
    float sh, sw;
    const char *want;
  } cases[] = {{"linear", "half_pixel", 8, 12, 2.f, 2.f, "xnn_resize_bilinear"},
               {"linear", "align_corners", 8, 12, 0.5f, 1.5f, "xnn_resize_bilinear"},
               {"linear", "asymmetric", 8, 12, 1.5f, 0.5f, "xnn_resize_bilinear"},
               {"linear", "pytorch_half_pixel", 8, 12, 2.5f, 0.25f, "xnn_resize_bilinear"},
               {"linear", "half_pixel", 7, 11, 1.5f, 1.5f, "ref"},
               {"nearest", "asymmetric", 8, 12, 2.f, 2.f, "ref"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ri__graph *g = gnew();
    int x = input(g, "x", SHAPE(1, 3, cases[i].h, cases[i].w), 0);
    int c = act(g, "c"), r = act(g, "r");
    conv(g, "conv", x, c, 3, 5, 1, 1, 1, 1);
    float sc[4] = {1.f, 1.f, cases[i].sh, cases[i].sw};
    int rn =
        node(g, "resize", RI__OP_Resize,
             IDX(c, cf32(g, "roi", SHAPE(0), NULL, 0, 0), cf32(g, "scales", SHAPE(4), sc, 0, 0)), IDX(r));
    attr_str(g, rn, "mode", cases[i].mode);
    attr_str(g, rn, "coordinate_transformation_mode", cases[i].coord);
    output(g, r);
    side fast;
    memset(&fast, 0, sizeof fast);
    char tag[96];
    snprintf(tag, sizeof tag, "resize %s %s x%g,%g", cases[i].mode, cases[i].coord, cases[i].sh, cases[i].sw);
    compare(tag, g, 8, k_batches, 3, 2, &fast);
    if (fast.state) expect_impl(g, &fast, "resize", cases[i].want);
    side_free(&fast);
    ri__graph_destroy(g);
  }
}

/* A graph whose input has no batch axis: its segment cannot be cut into images and runs whole. */
static void test_unsliced(void) {
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(3, 4, 7, 7), 0), y = act(g, "y"), z = act(g, "z");
  g->values[x].batch_axis = -1;
  int c1 = conv(g, "conv", x, y, 4, 8, 3, 3, 1, 1);
  attr_ints(g, c1, "pads", I64S(1, 1, 1, 1));
  set_act(g, c1, RI__ACT_RELU, 0, 0);
  node(g, "pool", RI__OP_GlobalAveragePool, IDX(y), IDX(z));
  output(g, z);
  static const int batches[] = {1, 2};
  side fast;
  memset(&fast, 0, sizeof fast);
  compare("unsliced", g, 4, batches, 2, 2, &fast);
  if (fast.state) expect_impl(g, &fast, "conv", "xnn_conv");
  side_free(&fast);
  ri__graph_destroy(g);
}

/* RI_CPU_FAST=0 keeps every node on the reference kernel. */
static void test_env_disables(void) {
  ri__err err;
  ri__err_clear(&err);
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(1, 4, 6, 6), 0), y = act(g, "y");
  conv(g, "conv", x, y, 4, 4, 3, 3, 1, 1);
  output(g, y);
  CHECK(finish(g, 2, &err) == RI_OK);
  ri__backend_cfg cfg = make_cfg(g, 2, 1);
  side ref, fast;
  CHECK(side_make(g, &cfg, 0, &ref, &err) == RI_OK);
  CHECK(side_make(g, &cfg, 1, &fast, &err) == RI_OK);
  if (ref.state) CHECK(strcmp(ri__cpu_backend.node_impl(ref.state, 0), "ref") == 0);
  if (fast.state && HAVE_FAST) CHECK(strcmp(ri__cpu_backend.node_impl(fast.state, 0), "xnn_conv") == 0);
  side_free(&ref);
  side_free(&fast);
  ri__graph_destroy(g);
}

/* A second context of one engine state works alongside the first (the first takes the operators made at
 * prepare, the second packs its own). */
static void test_two_contexts(void) {
  ri__err err;
  ri__err_clear(&err);
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(1, 4, 6, 6), 0), y = act(g, "y"), z = act(g, "z");
  set_act(g, conv(g, "conv", x, y, 4, 8, 3, 3, 1, 1), RI__ACT_RELU, 0, 0);
  conv(g, "conv2", y, z, 8, 8, 3, 3, 8, 0);
  output(g, z);
  CHECK(finish(g, 4, &err) == RI_OK);
  ri__backend_cfg cfg = make_cfg(g, 4, 2);
  side a;
  ri_status st = side_make(g, &cfg, 1, &a, &err);
  CHECK_MSG(st == RI_OK, "%s", err.msg);
  void *ctx2 = NULL;
  if (st == RI_OK) CHECK(ri__cpu_backend.ctx_create(a.state, &ctx2, &err) == RI_OK);
  if (ctx2) {
    int64_t n_in = numel_at(g, x, 3), n_out = numel_at(g, z, 3);
    float *in = malloc((size_t)n_in * sizeof(float)), *o1 = malloc((size_t)n_out * sizeof(float));
    float *o2 = malloc((size_t)n_out * sizeof(float));
    for (int64_t i = 0; i < n_in; i++)
      in[i] = frand();
    CHECK(side_run(g, &a, 3, &in, &o1, &err) == RI_OK);
    side b = {a.state, ctx2};
    CHECK(side_run(g, &b, 3, &in, &o2, &err) == RI_OK);
    CHECK_MSG(memcmp(o1, o2, (size_t)n_out * sizeof(float)) == 0, "contexts differ by %g",
              max_rel_diff(o1, o2, n_out));
    ri__cpu_backend.ctx_destroy(ctx2);
    free(in);
    free(o1);
    free(o2);
  }
  side_free(&a);
  ri__graph_destroy(g);
}

/* Every allocation of prepare, context creation and a run (lanes included) fails in turn: each failure
 * returns a status and leaves no allocation behind. */
static void test_alloc_failures(void) {
  ri__err err;
  ri__err_clear(&err);
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(1, 4, 6, 6), 0), y = act(g, "y"), z = act(g, "z"), t = act(g, "t");
  set_act(g, conv(g, "conv", x, y, 4, 8, 3, 3, 1, 1), RI__ACT_RELU, 0, 0);
  node(g, "add", RI__OP_Add, IDX(y, cf32(g, "k", SHAPE(8, 1, 1), NULL, 1, 0)), IDX(z));
  attr_ints(g, node(g, "tr", RI__OP_Transpose, IDX(z), IDX(t)), "perm", I64S(0, 2, 3, 1));
  output(g, t);
  CHECK(finish(g, 2, &err) == RI_OK);
  /* Two threads and one image per chunk: the run goes through the lanes, whose creation is swept too. */
  ri__backend_cfg cfg = make_cfg(g, 2, 2);
  setenv("RI_XNN_CHUNK_BYTES", "1", 1);
  float in[2 * 4 * 36], out[2 * 8 * 36];
  for (int i = 0; i < 2 * 4 * 36; i++)
    in[i] = frand();
  float *inp = in, *outp = out;
  int ok_seen = 0;
  for (long n = 1; n < 400 && !ok_seen; n++) {
    long live = ri__alloc_live();
    ri__alloc_fail_after(n);
    side s;
    ri_status st = side_make(g, &cfg, 1, &s, &err);
    if (st == RI_OK) st = side_run(g, &s, 2, &inp, &outp, &err);
    ri__alloc_fail_after(0);
    if (st == RI_OK)
      ok_seen = 1;
    else
      CHECK_MSG(st == RI_ERR_NO_MEMORY, "failing allocation %ld: status %d (%s)", n, (int)st, err.msg);
    side_free(&s);
    CHECK_MSG(ri__alloc_live() == live, "failing allocation %ld: %ld allocations leaked", n,
              ri__alloc_live() - live);
  }
  unsetenv("RI_XNN_CHUNK_BYTES");
  CHECK(ok_seen);
  ri__graph_destroy(g);
}

int main(void) {
  test_conv_variants();
  test_block_chain();
  test_ssd_heads();
  test_nhwc_input_and_binary();
  test_pools();
  test_dense_and_unary();
  test_unsliced();
  test_pad();
  test_resize();
  test_env_disables();
  test_two_contexts();
  test_alloc_failures();
  return test_done("test_cpu_fast");
}
