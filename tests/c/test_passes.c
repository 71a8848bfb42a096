/* Shape resolution and graph optimisation passes on hand-built graphs: constant folding, two-point shape
 * analysis, Conv+BN folding, activation fusion, dead nodes, memory planning, op checks, and an
 * allocation-failure sweep over the whole pipeline. Graphs are run through the CPU reference kernels before
 * and after a pass to show that the pass keeps the results. */
#include <stdarg.h>
#include <string.h>

#include "core/alloc.h"
#include "graph/op.h"
#include "graph/passes.h"
#include "graph/shape_infer.h"
#include "graph_build.h"
#include "test.h"

/* ---- graph building: graph_build.h ------------------------------------------------------------------ */

static int count_live(const ri__graph *g, ri__op op) {
  int c = 0;
  for (int i = 0; i < g->n_nodes; i++)
    if (!g->nodes[i].dead && g->nodes[i].op == op) c++;
  return c;
}

static int find_node(const ri__graph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    if (!g->nodes[i].dead && strcmp(g->nodes[i].name, name) == 0) return i;
  return -1;
}

/* Links, checks ops and infers shapes at batch 1: the state the importer leaves a graph in. */
static ri_status finish(ri__graph *g, ri__err *err) {
  RI__TRY(ri__graph_link(g, err));
  RI__TRY(ri__graph_check_ops(g, err));
  return ri__graph_infer_shapes(g, 1, err);
}

/* ---- reference execution ------------------------------------------------------------------------------ */

/* Runs g for `batch` with the reference kernels. inputs[i] feeds graph input i (float32); outputs[i]
 * receives a new malloc'd copy of graph output i and out_numel[i] its element count. */
static ri_status run_ref(const ri__graph *g, int batch, float *const *inputs, float **outputs,
                         int64_t *out_numel, ri__err *err) {
  ri__tensor *vals = ri__calloc((size_t)g->n_values, sizeof *vals);
  ri__tensor in[16], out[4];
  if (!vals) return RI__OOM(err);
  ri_status s = ri__shapes_resolve(g, batch, vals, err);
  for (int v = 0; s == RI_OK && v < g->n_values; v++) {
    if (g->values[v].kind == RI__VAL_CONST || vals[v].data || vals[v].dtype == RI_DTYPE_UNDEFINED) continue;
    size_t nb;
    s = ri__tensor_nbytes(vals[v].dtype, &vals[v].shape, &nb, err);
    if (s == RI_OK) vals[v].data = ri__calloc(1, nb ? nb : 1);
    if (s == RI_OK && !vals[v].data) s = RI__OOM(err);
  }
  for (int i = 0; s == RI_OK && i < g->n_inputs; i++) {
    int v = g->inputs[i];
    memcpy(vals[v].data, inputs[i], (size_t)ri__shape_numel(&vals[v].shape) * sizeof(float));
  }
  for (int ni = 0; s == RI_OK && ni < g->n_nodes; ni++) {
    const ri__node *n = &g->nodes[ni];
    if (n->dead || n->host) continue;
    for (int k = 0; k < n->n_inputs; k++) {
      memset(&in[k], 0, sizeof in[k]);
      if (n->inputs[k] >= 0) in[k] = vals[n->inputs[k]];
    }
    for (int k = 0; k < n->n_outputs; k++)
      out[k] = vals[n->outputs[k]];
    s = ri__node_eval_ref(n, in, out, err);
  }
  for (int i = 0; s == RI_OK && i < g->n_outputs; i++) {
    int v = g->outputs[i];
    out_numel[i] = ri__shape_numel(&vals[v].shape);
    outputs[i] = malloc((size_t)(out_numel[i] ? out_numel[i] : 1) * sizeof(float));
    memcpy(outputs[i], vals[v].data, (size_t)out_numel[i] * sizeof(float));
  }
  ri__shapes_free(g, vals);
  ri__free(vals);
  return s;
}

static float *rand_buf(int64_t n) {
  float *p = malloc((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++)
    p[i] = frand();
  return p;
}

/* Largest |a - b| / max(|b|, 1) over n elements. */
static double max_rel_diff(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]) / fmax(fabs((double)b[i]), 1.0);
    if (d > m || d != d) m = d != d ? 1e30 : d;
  }
  return m;
}

/* ---- constant folding ---------------------------------------------------------------------------------- */

static void test_fold_constants(void) {
  ri__err err;
  ri__err_clear(&err);
  ri__graph *g = gnew();
  float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {10, 20, 30, 40, 50, 60};
  int x = input(g, "x", SHAPE(1, 2, 3), 0);
  int ca = cf32(g, "ca", SHAPE(2, 3), a, 1.f, 0), cb = cf32(g, "cb", SHAPE(2, 3), b, 1.f, 0);
  int t = act(g, "t"), t2 = act(g, "t2"), y = act(g, "y");
  node(g, "add_consts", RI__OP_Add, IDX(ca, cb), IDX(t));
  node(g, "relu_const", RI__OP_Relu, IDX(t), IDX(t2)); /* chain: folds in the same sweep */
  node(g, "mul_x", RI__OP_Mul, IDX(x, t2), IDX(y));
  output(g, y);
  /* A Tile of a one-element constant to 2^25 floats (128 MiB) is too large to fold. */
  int one = cf32(g, "one", SHAPE(1, 1), a, 1.f, 0);
  int reps = ci64(g, "reps", SHAPE(2), (int64_t[]){8192, 4096});
  int big = act(g, "big");
  node(g, "tile_big", RI__OP_Tile, IDX(one, reps), IDX(big));
  output(g, big);
  ri_status s = finish(g, &err);
  CHECK_MSG(s == RI_OK, "%s", err.msg);
  s = ri__pass_fold_constants(g, &err);
  CHECK_MSG(s == RI_OK, "%s", err.msg);
  CHECK(count_live(g, RI__OP_Add) == 0 && count_live(g, RI__OP_Relu) == 0);
  CHECK(count_live(g, RI__OP_Mul) == 1);
  CHECK(count_live(g, RI__OP_Tile) == 1);
  CHECK(g->values[big].kind == RI__VAL_ACTIVATION && !g->values[big].data);
  int t2i = ri__graph_find_value(g, "t2");
  CHECK(t2i == t2 && g->values[t2].kind == RI__VAL_CONST && g->values[t2].nbytes == 6 * sizeof(float));
  if (g->values[t2].kind == RI__VAL_CONST) {
    const float *d = g->values[t2].data;
    int ok = 1;
    for (int i = 0; i < 6; i++)
      ok &= d[i] == a[i] + b[i];
    CHECK(ok);
  }
  s = ri__pass_dead_nodes(g, &err);
  CHECK_MSG(s == RI_OK, "%s", err.msg);
  CHECK(g->n_nodes == 2);
  CHECK(ri__graph_find_value(g, "ca") < 0 && ri__graph_find_value(g, "t") < 0); /* unused, dropped */
  ri__graph_destroy(g);
}

/* A Constant node whose tensor is a graph constant is folded by copying the tensor. */
static void test_fold_constant_node(void) {
  ri__err err;
  ri__err_clear(&err);
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(1, 3), 0);
  float vals[3] = {0.5f, -2.f, 4.f};
  int tv = cf32(g, "const_tensor", SHAPE(3), vals, 1.f, 0);
  int c = act(g, "c"), y = act(g, "y");
  int cn = node(g, "the_constant", RI__OP_Constant, NULL, 0, IDX(c));
  ri__attr a;
  memset(&a, 0, sizeof a);
  a.name = ri__strdup("value");
  a.type = RI__ATTR_TENSOR;
  a.value = tv;
  CHECK(ri__graph_add_attr(g, cn, &a, &err) == RI_OK);
  node(g, "add", RI__OP_Add, IDX(x, c), IDX(y));
  output(g, y);
  CHECK_MSG(ri__graph_link(g, &err) == RI_OK, "%s", err.msg);
  CHECK_MSG(ri__pass_fold_constants(g, &err) == RI_OK, "%s", err.msg);
  CHECK(count_live(g, RI__OP_Constant) == 0);
  CHECK(g->values[c].kind == RI__VAL_CONST && g->values[c].nbytes == sizeof vals &&
        memcmp(g->values[c].data, vals, sizeof vals) == 0);
  CHECK(strcmp(g->values[c].name, "c") == 0);
  ri__graph_destroy(g);
}

/* ---- two-point shape analysis ------------------------------------------------------------------------- */

/* x [N,3,8] → Shape → Gather(0) → Unsqueeze → Concat(·, -1, 4) → Reshape(x) = [N,6,4] (batch dependent);
 * Shape → Gather(1) → Unsqueeze → Concat(·, -1) → Reshape(Identity(x)) = [3, 8N] (shape input batch
 * independent); Relu of that → Identity → graph output "final". */
static ri__graph *shape_graph(void) {
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(1, 3, 8), 0);
  int s = act(g, "s"), g0 = act(g, "g0"), u0 = act(g, "u0"), cat = act(g, "cat"), r = act(g, "r");
  int g1 = act(g, "g1"), u1 = act(g, "u1"), cat2 = act(g, "cat2"), xi = act(g, "xi"), r2 = act(g, "r2");
  int rl = act(g, "rl"), fin = act(g, "final");
  int i0 = ci64(g, "i0", SCALAR, (int64_t[]){0}), i1 = ci64(g, "i1", SCALAR, (int64_t[]){1});
  int ax = ci64(g, "axes0", SHAPE(1), (int64_t[]){0});
  int m1 = ci64(g, "minus1", SHAPE(1), (int64_t[]){-1}), four = ci64(g, "four", SHAPE(1), (int64_t[]){4});
  node(g, "shape", RI__OP_Shape, IDX(x), IDX(s));
  node(g, "gather0", RI__OP_Gather, IDX(s, i0), IDX(g0));
  node(g, "unsq0", RI__OP_Unsqueeze, IDX(g0, ax), IDX(u0));
  attr_int(g, node(g, "concat0", RI__OP_Concat, IDX(u0, m1, four), IDX(cat)), "axis", 0);
  node(g, "reshape0", RI__OP_Reshape, IDX(x, cat), IDX(r));
  node(g, "gather1", RI__OP_Gather, IDX(s, i1), IDX(g1));
  node(g, "unsq1", RI__OP_Unsqueeze, IDX(g1, ax), IDX(u1));
  attr_int(g, node(g, "concat1", RI__OP_Concat, IDX(u1, m1), IDX(cat2)), "axis", 0);
  node(g, "ident_x", RI__OP_Identity, IDX(x), IDX(xi));
  node(g, "reshape1", RI__OP_Reshape, IDX(xi, cat2), IDX(r2));
  node(g, "relu", RI__OP_Relu, IDX(r2), IDX(rl));
  node(g, "ident_out", RI__OP_Identity, IDX(rl), IDX(fin));
  output(g, r);
  output(g, fin);
  return g;
}

static void check_shape(const ri__tensor *vals, int v, ri__shape want, int batch, const char *what) {
  char a[160], b[160];
  CHECK_MSG(v >= 0 && ri__shape_equal(&vals[v].shape, &want), "%s at batch %d: %s, expected %s", what, batch,
            v >= 0 ? ri__shape_str(&vals[v].shape, a, sizeof a) : "missing",
            ri__shape_str(&want, b, sizeof b));
}

static void test_shape_analysis(void) {
  ri__err err;
  ri__err_clear(&err);
  ri__graph *g = shape_graph();
  ri_status s = finish(g, &err);
  CHECK_MSG(s == RI_OK, "%s", err.msg);
  s = ri__pass_shape_ops(g, 8, &err);
  CHECK_MSG(s == RI_OK, "%s", err.msg);
  const char *host_nodes[] = {"shape", "gather0", "unsq0", "concat0"};
  for (int i = 0; i < 4; i++) {
    int ni = find_node(g, host_nodes[i]);
    CHECK_MSG(ni >= 0 && g->nodes[ni].host, "node '%s' should be host-evaluated", host_nodes[i]);
  }
  const char *folded[] = {"gather1", "unsq1", "concat1", "ident_x", "ident_out"};
  for (int i = 0; i < 5; i++)
    CHECK_MSG(find_node(g, folded[i]) < 0, "node '%s' should be gone", folded[i]);
  CHECK(find_node(g, "reshape0") >= 0 && !g->nodes[find_node(g, "reshape0")].host);
  CHECK(find_node(g, "reshape1") >= 0 && !g->nodes[find_node(g, "reshape1")].host);
  int cat2 = ri__graph_find_value(g, "cat2");
  CHECK(g->values[cat2].kind == RI__VAL_CONST && g->values[cat2].dtype == RI_DTYPE_INT64);
  if (g->values[cat2].kind == RI__VAL_CONST) {
    const int64_t *d = g->values[cat2].data;
    CHECK(d[0] == 3 && d[1] == -1);
  }
  CHECK(g->values[ri__graph_find_value(g, "s")].batch_dependent);
  CHECK(g->values[ri__graph_find_value(g, "cat")].batch_dependent);
  CHECK(g->values[ri__graph_find_value(g, "cat")].host);
  CHECK(g->values[ri__graph_find_value(g, "r")].batch_dependent);
  /* reshape1 reads x directly; "final" is now written by the Relu and keeps its name. */
  int r1 = find_node(g, "reshape1"), rl = find_node(g, "relu");
  CHECK(r1 >= 0 && g->nodes[r1].inputs[0] == ri__graph_find_value(g, "x"));
  CHECK(rl >= 0 && g->nodes[rl].outputs[0] == g->outputs[1] &&
        strcmp(g->values[g->outputs[1]].name, "final") == 0);

  s = ri__pass_dead_nodes(g, &err);
  CHECK_MSG(s == RI_OK, "%s", err.msg);
  CHECK(g->n_nodes == 7); /* shape, gather0, unsq0, concat0, reshape0, reshape1, relu */
  int batches[3] = {1, 3, 8};
  for (int bi = 0; bi < 3; bi++) {
    int b = batches[bi];
    ri__tensor *vals = ri__calloc((size_t)g->n_values, sizeof *vals);
    s = ri__shapes_resolve(g, b, vals, &err);
    CHECK_MSG(s == RI_OK, "batch %d: %s", b, err.msg);
    if (s == RI_OK) {
      check_shape(vals, ri__graph_find_value(g, "r"), SHAPE(b, 6, 4), b, "r");
      check_shape(vals, ri__graph_find_value(g, "r2"), SHAPE(3, 8 * b), b, "r2");
      check_shape(vals, ri__graph_find_value(g, "final"), SHAPE(3, 8 * b), b, "final");
      int cat = ri__graph_find_value(g, "cat");
      CHECK(vals[cat].data && ((int64_t *)vals[cat].data)[0] == b);
      CHECK(vals[ri__graph_find_value(g, "r")].data == NULL); /* activations carry no data */
    }
    ri__shapes_free(g, vals);
    ri__free(vals);
  }
  /* The rewritten graph computes the same as plain reshapes: r is x itself, final is relu(x) viewed. */
  float *xin = rand_buf(3 * 3 * 8);
  float *outs[2] = {0};
  int64_t numel[2];
  s = run_ref(g, 3, &xin, outs, numel, &err);
  CHECK_MSG(s == RI_OK, "%s", err.msg);
  if (s == RI_OK) {
    int ok = numel[0] == 72 && numel[1] == 72;
    for (int i = 0; ok && i < 72; i++)
      ok = outs[0][i] == xin[i] && outs[1][i] == (xin[i] > 0 ? xin[i] : 0.f);
    CHECK(ok);
  }
  free(outs[0]);
  free(outs[1]);
  free(xin);
  ri__graph_destroy(g);
}

/* With max_batch 1 every shape subgraph folds; no host node remains after the pipeline. */
static void test_shape_analysis_batch1(void) {
  ri__err err;
  ri__err_clear(&err);
  ri__graph *g = shape_graph();
  ri_status s = finish(g, &err);
  if (s == RI_OK) s = ri__graph_optimize(g, 1, &err);
  CHECK_MSG(s == RI_OK, "%s", err.msg);
  int hosts = 0;
  for (int i = 0; i < g->n_nodes; i++)
    hosts += g->nodes[i].host;
  CHECK(hosts == 0);
  CHECK(count_live(g, RI__OP_Shape) == 0 && count_live(g, RI__OP_Concat) == 0);
  CHECK(g->n_nodes == 3); /* reshape0, reshape1, relu */
  ri__graph_destroy(g);
}

/* A model whose reshape hard-codes batch 1 cannot be built for a larger batch; the error says where. */
static void test_shape_error_names_node_and_batch(void) {
  ri__err err;
  ri__err_clear(&err);
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(1, 4, 6), 0);
  int sh = ci64(g, "fixed_shape", SHAPE(2), (int64_t[]){1, 24});
  int y = act(g, "y");
  node(g, "fixed_reshape", RI__OP_Reshape, IDX(x, sh), IDX(y));
  output(g, y);
  CHECK_MSG(finish(g, &err) == RI_OK, "%s", err.msg);
  ri__tensor *vals = ri__calloc((size_t)g->n_values, sizeof *vals);
  ri_status s = ri__shapes_resolve(g, 2, vals, &err);
  CHECK(s != RI_OK);
  CHECK_MSG(strstr(err.msg, "fixed_reshape") && strstr(err.msg, "batch 2"), "message: %s", err.msg);
  ri__free(vals);
  s = ri__graph_optimize(g, 4, &err);
  CHECK(s != RI_OK);
  CHECK_MSG(strstr(err.msg, "fixed_reshape") && strstr(err.msg, "batch 4"), "message: %s", err.msg);
  ri__graph_destroy(g);
}

/* ---- Conv + BN ------------------------------------------------------------------------------------------
 */

/* x [N,3,6,6] → Conv(W, [B]) → BN → "z"; a second Conv shares W (must keep the original weights). */
static ri__graph *conv_bn_graph(int with_bias, int group) {
  gb_seed = 777;
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(1, 4, 6, 6), 0);
  int w = cf32(g, "W", SHAPE(6, 4 / group, 3, 3), NULL, 1.f, 0);
  int b = with_bias ? cf32(g, "B", SHAPE(6), NULL, 1.f, 0) : -1;
  int y = act(g, "y"), z = act(g, "z"), y2 = act(g, "y2");
  int conv = with_bias ? node(g, "conv", RI__OP_Conv, IDX(x, w, b), IDX(y))
                       : node(g, "conv", RI__OP_Conv, IDX(x, w), IDX(y));
  attr_ints(g, conv, "pads", 4, (int64_t[]){1, 1, 1, 1});
  attr_int(g, conv, "group", group);
  int sc = cf32(g, "bn_scale", SHAPE(6), NULL, 1.f, 1.5f), bb = cf32(g, "bn_b", SHAPE(6), NULL, 1.f, 0);
  int mu = cf32(g, "bn_mean", SHAPE(6), NULL, 1.f, 0), var = cf32(g, "bn_var", SHAPE(6), NULL, 1.f, 1.2f);
  attr_float(g, node(g, "bn", RI__OP_BatchNormalization, IDX(y, sc, bb, mu, var), IDX(z)), "epsilon", 1e-3f);
  int conv2 = node(g, "conv_shared_w", RI__OP_Conv, IDX(x, w), IDX(y2));
  attr_int(g, conv2, "group", group);
  output(g, z);
  output(g, y2);
  return g;
}

static void test_fold_batchnorm(void) {
  for (int variant = 0; variant < 3; variant++) {
    int with_bias = variant != 1, group = variant == 2 ? 2 : 1;
    ri__err err;
    ri__err_clear(&err);
    ri__graph *ref = conv_bn_graph(with_bias, group), *g = conv_bn_graph(with_bias, group);
    ri_status s = finish(ref, &err);
    if (s == RI_OK) s = finish(g, &err);
    CHECK_MSG(s == RI_OK, "%s", err.msg);
    int w = ri__graph_find_value(g, "W");
    float w0 = ((float *)g->values[w].data)[0];
    s = ri__pass_fold_batchnorm(g, &err);
    CHECK_MSG(s == RI_OK, "%s", err.msg);
    CHECK(count_live(g, RI__OP_BatchNormalization) == 0);
    int ci = find_node(g, "conv");
    CHECK(ci >= 0 && g->nodes[ci].outputs[0] == ri__graph_find_value(g, "z"));
    CHECK(ci >= 0 && g->nodes[ci].n_inputs == 3 && g->nodes[ci].inputs[1] != w &&
          g->nodes[ci].inputs[2] >= 0);
    CHECK(((float *)g->values[w].data)[0] == w0); /* the shared weight is untouched */
    s = ri__pass_dead_nodes(g, &err);
    CHECK_MSG(s == RI_OK, "%s", err.msg);
    float *xin = rand_buf(2 * 4 * 6 * 6);
    float *o_ref[2] = {0}, *o_new[2] = {0};
    int64_t n_ref[2], n_new[2];
    s = run_ref(ref, 2, &xin, o_ref, n_ref, &err);
    CHECK_MSG(s == RI_OK, "%s", err.msg);
    if (s == RI_OK) s = run_ref(g, 2, &xin, o_new, n_new, &err);
    CHECK_MSG(s == RI_OK, "%s", err.msg);
    if (s == RI_OK) {
      CHECK(n_ref[0] == 2 * 6 * 36 && n_new[0] == n_ref[0] && n_new[1] == n_ref[1]);
      double d = max_rel_diff(o_new[0], o_ref[0], n_ref[0]);
      CHECK_MSG(d <= 1e-5, "variant %d: folded Conv+BN differs by %g", variant, d);
      CHECK(memcmp(o_new[1], o_ref[1], (size_t)n_ref[1] * sizeof(float)) == 0);
    }
    for (int i = 0; i < 2; i++) {
      free(o_ref[i]);
      free(o_new[i]);
    }
    free(xin);
    ri__graph_destroy(ref);
    ri__graph_destroy(g);
  }
}

/* A Conv whose output also feeds another node keeps its BN. */
static void test_fold_batchnorm_shared_output(void) {
  ri__err err;
  ri__err_clear(&err);
  ri__graph *g = conv_bn_graph(1, 1);
  int y = ri__graph_find_value(g, "y"), r = act(g, "r");
  node(g, "relu_y", RI__OP_Relu, IDX(y), IDX(r));
  output(g, r);
  CHECK_MSG(finish(g, &err) == RI_OK, "%s", err.msg);
  CHECK_MSG(ri__pass_fold_batchnorm(g, &err) == RI_OK, "%s", err.msg);
  CHECK(count_live(g, RI__OP_BatchNormalization) == 1);
  ri__graph_destroy(g);
}

/* ---- activation fusion --------------------------------------------------------------------------------- */

/* x → Conv (no bias) → Clip(0, 6) → "c"; Add(c, x2) → LeakyRelu(0.1) → "l" (output); Conv → Sigmoid where the
 * Conv output is also a graph output (not fusable); MatMul-free Add → HardSigmoid where Clip's max is an
 * input (not fusable). */
static ri__graph *fuse_graph(void) {
  gb_seed = 99;
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(1, 2, 5, 5), 0);
  int bound = input(g, "bound", SHAPE(1), -1);
  int w = cf32(g, "W", SHAPE(2, 2, 3, 3), NULL, 1.f, 0), w2 = cf32(g, "W2", SHAPE(2, 2, 1, 1), NULL, 1.f, 0);
  int lo = cf32(g, "lo", SCALAR, (float[]){0.f}, 1.f, 0), hi = cf32(g, "hi", SCALAR, (float[]){0.5f}, 1.f, 0);
  int c0 = act(g, "c0"), c = act(g, "c"), a0 = act(g, "a0"), l = act(g, "l");
  int k0 = act(g, "k0"), k = act(g, "k"), m0 = act(g, "m0"), m = act(g, "m");
  attr_ints(g, node(g, "conv", RI__OP_Conv, IDX(x, w), IDX(c0)), "pads", 4, (int64_t[]){1, 1, 1, 1});
  node(g, "clip", RI__OP_Clip, IDX(c0, lo, hi), IDX(c));
  node(g, "add", RI__OP_Add, IDX(c, x), IDX(a0));
  attr_float(g, node(g, "leaky", RI__OP_LeakyRelu, IDX(a0), IDX(l)), "alpha", 0.1f);
  node(g, "conv_out", RI__OP_Conv, IDX(x, w2), IDX(k0));
  node(g, "sigmoid", RI__OP_Sigmoid, IDX(k0), IDX(k));
  node(g, "mul", RI__OP_Mul, IDX(x, x), IDX(m0));
  node(g, "clip_var", RI__OP_Clip, IDX(m0, -1, bound), IDX(m));
  output(g, l);
  output(g, k0);
  output(g, k);
  output(g, m);
  return g;
}

static void test_fuse_activation(void) {
  ri__err err;
  ri__err_clear(&err);
  ri__graph *ref = fuse_graph(), *g = fuse_graph();
  ri_status s = finish(ref, &err);
  if (s == RI_OK) s = finish(g, &err);
  CHECK_MSG(s == RI_OK, "%s", err.msg);
  s = ri__pass_fuse_activation(g, &err);
  CHECK_MSG(s == RI_OK, "%s", err.msg);
  int conv = find_node(g, "conv"), add = find_node(g, "add"), conv_out = find_node(g, "conv_out");
  CHECK(conv >= 0 && g->nodes[conv].act == RI__ACT_CLIP && g->nodes[conv].act_a == 0.f &&
        g->nodes[conv].act_b == 0.5f);
  CHECK(conv >= 0 && g->nodes[conv].n_inputs == 2); /* no bias was added */
  CHECK(add >= 0 && g->nodes[add].act == RI__ACT_LEAKY_RELU && fabsf(g->nodes[add].act_a - 0.1f) < 1e-7f);
  CHECK(add >= 0 && g->nodes[add].outputs[0] == ri__graph_find_value(g, "l"));
  CHECK(find_node(g, "clip") < 0 && find_node(g, "leaky") < 0);
  CHECK(conv_out >= 0 && g->nodes[conv_out].act == RI__ACT_NONE && find_node(g, "sigmoid") >= 0);
  CHECK(find_node(g, "clip_var") >= 0 && g->nodes[find_node(g, "mul")].act == RI__ACT_NONE);
  s = ri__pass_dead_nodes(g, &err);
  CHECK_MSG(s == RI_OK, "%s", err.msg);
  float *xin[2] = {rand_buf(3 * 2 * 25), (float[]){0.25f}};
  float *o_ref[4] = {0}, *o_new[4] = {0};
  int64_t n_ref[4], n_new[4];
  s = run_ref(ref, 3, xin, o_ref, n_ref, &err);
  CHECK_MSG(s == RI_OK, "%s", err.msg);
  if (s == RI_OK) s = run_ref(g, 3, xin, o_new, n_new, &err);
  CHECK_MSG(s == RI_OK, "%s", err.msg);
  for (int i = 0; s == RI_OK && i < 4; i++) {
    CHECK(n_ref[i] == n_new[i] && n_ref[i] == 3 * 2 * 25);
    double d = max_rel_diff(o_new[i], o_ref[i], n_ref[i]);
    CHECK_MSG(d <= 1e-6, "output %d differs by %g after fusion", i, d);
  }
  for (int i = 0; i < 4; i++) {
    free(o_ref[i]);
    free(o_new[i]);
  }
  free(xin[0]);
  ri__graph_destroy(ref);
  ri__graph_destroy(g);
}

/* ---- memory planning ---------------------------------------------------------------------------------- */

/* A residual chain with a branch and a channel change, so that lifetimes overlap in several ways. */
static ri__graph *plan_graph(void) {
  gb_seed = 5;
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(1, 4, 8, 8), 0);
  int w = cf32(g, "W", SHAPE(8, 4, 3, 3), NULL, 1.f, 0), w2 = cf32(g, "W2", SHAPE(4, 8, 1, 1), NULL, 1.f, 0);
  int v[12];
  char name[16];
  for (int i = 0; i < 12; i++) {
    snprintf(name, sizeof name, "v%d", i);
    v[i] = act(g, name);
  }
  node(g, "relu0", RI__OP_Relu, IDX(x), IDX(v[0]));
  attr_ints(g, node(g, "conv0", RI__OP_Conv, IDX(v[0], w), IDX(v[1])), "pads", 4, (int64_t[]){1, 1, 1, 1});
  node(g, "sig0", RI__OP_Sigmoid, IDX(v[1]), IDX(v[2]));
  node(g, "mul0", RI__OP_Mul, IDX(v[1], v[2]), IDX(v[3]));
  node(g, "conv1", RI__OP_Conv, IDX(v[3], w2), IDX(v[4]));
  node(g, "add0", RI__OP_Add, IDX(v[4], x), IDX(v[5])); /* x lives until here */
  node(g, "exp0", RI__OP_Exp, IDX(v[5]), IDX(v[6]));
  node(g, "sub0", RI__OP_Sub, IDX(v[6], v[0]), IDX(v[7]));
  attr_int(g, node(g, "cat0", RI__OP_Concat, IDX(v[7], v[5], v[6]), IDX(v[8])), "axis", 1);
  node(g, "relu1", RI__OP_Relu, IDX(v[8]), IDX(v[9]));
  node(g, "sig1", RI__OP_Sigmoid, IDX(v[9]), IDX(v[10]));
  node(g, "mul1", RI__OP_Mul, IDX(v[10], v[9]), IDX(v[11]));
  output(g, v[4]); /* an early graph output stays live to the end */
  output(g, v[11]);
  return g;
}

static void test_memory_plan(void) {
  ri__err err;
  ri__err_clear(&err);
  ri__graph *g = plan_graph();
  ri_status s = finish(g, &err);
  if (s == RI_OK) s = ri__graph_optimize(g, 4, &err);
  CHECK_MSG(s == RI_OK, "%s", err.msg);
  if (s != RI_OK) {
    ri__graph_destroy(g);
    return;
  }
  CHECK(g->batch == 4);
  int nv = g->n_values;
  int *first = calloc((size_t)nv, sizeof(int)), *last = calloc((size_t)nv, sizeof(int));
  int64_t sum = 0, arena = ri__memory_plan_size(g);
  int planned = 0, bad = 0;
  for (int v = 0; v < nv; v++) {
    const ri__value *val = &g->values[v];
    int should = val->kind != RI__VAL_CONST && !val->host;
    if (!should) {
      bad += val->mem_offset != -1;
      continue;
    }
    planned++;
    size_t nb;
    CHECK(ri__tensor_nbytes(val->dtype, &val->shape, &nb, NULL) == RI_OK);
    bad += val->mem_offset < 0 || val->mem_offset % 64 != 0 || val->mem_size % 64 != 0 ||
           val->mem_size < (int64_t)nb || val->mem_offset + val->mem_size > arena;
    sum += val->mem_size;
    first[v] = val->kind == RI__VAL_INPUT ? -1 : val->producer;
    last[v] = first[v];
  }
  CHECK_MSG(bad == 0, "%d values with a bad plan entry", bad);
  for (int ni = 0; ni < g->n_nodes; ni++)
    for (int k = 0; k < g->nodes[ni].n_inputs; k++) {
      int v = g->nodes[ni].inputs[k];
      if (v >= 0 && last[v] < ni) last[v] = ni;
    }
  for (int i = 0; i < g->n_outputs; i++)
    last[g->outputs[i]] = g->n_nodes;
  int overlaps = 0, live_pairs = 0;
  for (int a = 0; a < nv; a++)
    for (int b = a + 1; b < nv; b++) {
      const ri__value *va = &g->values[a], *vb = &g->values[b];
      if (va->mem_offset < 0 || vb->mem_offset < 0) continue;
      if (!(first[a] <= last[b] && first[b] <= last[a])) continue;
      live_pairs++;
      if (va->mem_offset < vb->mem_offset + vb->mem_size && vb->mem_offset < va->mem_offset + va->mem_size) {
        overlaps++;
        fprintf(stderr, "values '%s' and '%s' are live together and share bytes\n", va->name, vb->name);
      }
    }
  CHECK(planned >= 10 && live_pairs > 0);
  CHECK(overlaps == 0);
  CHECK_MSG(arena <= sum, "arena %lld > sum of sizes %lld", (long long)arena, (long long)sum);
  CHECK_MSG(arena < sum, "no memory was shared (arena %lld, sum %lld)", (long long)arena, (long long)sum);
  /* The planned graph still runs and its batch-1 sizes fit the plan. */
  ri__tensor *vals = ri__calloc((size_t)nv, sizeof *vals);
  s = ri__shapes_resolve(g, 1, vals, &err);
  CHECK_MSG(s == RI_OK, "%s", err.msg);
  for (int v = 0; s == RI_OK && v < nv; v++) {
    size_t nb;
    if (g->values[v].mem_offset < 0) continue;
    CHECK(ri__tensor_nbytes(vals[v].dtype, &vals[v].shape, &nb, NULL) == RI_OK &&
          (int64_t)nb <= g->values[v].mem_size);
  }
  ri__shapes_free(g, vals);
  ri__free(vals);
  free(first);
  free(last);
  ri__graph_destroy(g);
}

/* A value that shrinks as the batch grows (Tile by 8 / N) cannot share a plan made for max batch. */
static void test_memory_plan_shrinking(void) {
  ri__err err;
  ri__err_clear(&err);
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(1, 2), 0), x2 = input(g, "x2", SHAPE(1), -1);
  int s = act(g, "s"), n = act(g, "n"), u = act(g, "u"), q = act(g, "q"), t = act(g, "shrinking"),
      r = act(g, "r");
  int eight = ci64(g, "eight", SHAPE(1), (int64_t[]){8});
  int i0 = ci64(g, "i0", SCALAR, (int64_t[]){0}), ax = ci64(g, "ax", SHAPE(1), (int64_t[]){0});
  node(g, "shape", RI__OP_Shape, IDX(x), IDX(s));
  node(g, "gather", RI__OP_Gather, IDX(s, i0), IDX(n));
  node(g, "unsq", RI__OP_Unsqueeze, IDX(n, ax), IDX(u));
  node(g, "div", RI__OP_Div, IDX(eight, u), IDX(q));
  node(g, "tile", RI__OP_Tile, IDX(x2, q), IDX(t));
  node(g, "relu", RI__OP_Relu, IDX(x), IDX(r));
  output(g, t);
  output(g, r);
  ri_status st = finish(g, &err);
  CHECK_MSG(st == RI_OK, "%s", err.msg);
  st = ri__graph_optimize(g, 4, &err);
  CHECK(st == RI_ERR_UNSUPPORTED);
  CHECK_MSG(strstr(err.msg, "shrinking") && strstr(err.msg, "batch 1") && strstr(err.msg, "max batch 4"),
            "message: %s", err.msg);
  ri__graph_destroy(g);
}

/* ---- op checks --------------------------------------------------------------------------------------------
 */

static void test_check_ops(void) {
  ri__err err;
  ri__err_clear(&err);
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(1, 2), 0);
  int y = act(g, "y");
  node(g, "lonely_add", RI__OP_Add, IDX(x), IDX(y));
  output(g, y);
  CHECK(ri__graph_link(g, &err) == RI_OK);
  ri_status s = ri__graph_check_ops(g, &err);
  CHECK(s != RI_OK);
  CHECK_MSG(strstr(err.msg, "lonely_add") && strstr(err.msg, "Add"), "message: %s", err.msg);
  ri__graph_destroy(g);
}

/* ---- dead nodes -----------------------------------------------------------------------------------------
 */

static void test_dead_nodes(void) {
  ri__err err;
  ri__err_clear(&err);
  ri__graph *g = gnew();
  int x = input(g, "x", SHAPE(1, 2), 0);
  int a = act(g, "a"), b = act(g, "b"), c = act(g, "c"), d = act(g, "d");
  node(g, "keep", RI__OP_Relu, IDX(x), IDX(a));
  node(g, "unused1", RI__OP_Sigmoid, IDX(x), IDX(b));
  node(g, "unused2", RI__OP_Exp, IDX(b), IDX(c));
  node(g, "keep2", RI__OP_Exp, IDX(a), IDX(d));
  output(g, d);
  CHECK_MSG(finish(g, &err) == RI_OK, "%s", err.msg);
  CHECK_MSG(ri__pass_dead_nodes(g, &err) == RI_OK, "%s", err.msg);
  CHECK(g->n_nodes == 2 && find_node(g, "keep") >= 0 && find_node(g, "keep2") >= 0);
  CHECK(ri__graph_find_value(g, "b") < 0 && ri__graph_find_value(g, "c") < 0);
  CHECK(g->n_inputs == 1 && g->n_outputs == 1 && strcmp(g->values[g->outputs[0]].name, "d") == 0);
  ri__graph_destroy(g);
}

/* ---- allocation failures ---------------------------------------------------------------------------------
 */

/* Every allocation of the pipeline is made to fail in turn: each run must fail cleanly or succeed, and
 * destroying the graph must free everything. */
static ri__graph *conv_bn_biased(void) { return conv_bn_graph(1, 1); }

static void test_alloc_failures(void) {
  ri__graph *(*builders[3])(void) = {shape_graph, conv_bn_biased, fuse_graph};
  for (int bi = 0; bi < 3; bi++) {
    long base = ri__alloc_live();
    int failures_seen = 0, leaks = 0, done = 0;
    for (long nth = 1; nth < 5000 && !done; nth++) {
      ri__err err;
      ri__err_clear(&err);
      ri__graph *g = builders[bi]();
      ri_status s = finish(g, &err);
      CHECK_MSG(s == RI_OK, "%s", err.msg);
      ri__alloc_fail_after(nth);
      s = ri__graph_optimize(g, 4, &err);
      ri__alloc_fail_after(0);
      if (s == RI_OK)
        done = 1;
      else
        failures_seen++;
      CHECK_MSG(s == RI_OK || err.msg[0], "graph %d, allocation %ld: failure without a message", bi, nth);
      ri__graph_destroy(g);
      if (ri__alloc_live() != base) {
        leaks++;
        if (leaks < 3)
          fprintf(stderr, "graph %d: failing allocation %ld leaks %ld blocks\n", bi, nth,
                  ri__alloc_live() - base);
      }
    }
    CHECK_MSG(done && failures_seen > 10, "graph %d: done %d after %d failures", bi, done, failures_seen);
    CHECK(leaks == 0);
  }
}

int main(void) {
  test_fold_constants();
  test_fold_constant_node();
  test_shape_analysis();
  test_shape_analysis_batch1();
  test_shape_error_names_node_and_batch();
  test_fold_batchnorm();
  test_fold_batchnorm_shared_output();
  test_fuse_activation();
  test_memory_plan();
  test_memory_plan_shrinking();
  test_check_ops();
  test_dead_nodes();
  test_alloc_failures();
  return test_done("test_passes");
}
