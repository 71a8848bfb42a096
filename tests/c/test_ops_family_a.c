/* Convolution / pooling / dense family (Conv, BatchNormalization, MaxPool, AveragePool, GlobalAveragePool,
 * Gemm, MatMul, Softmax, Resize, Pad): each case builds one node by hand, runs the op's check() and
 * infer(), then its CPU reference kernel on random inputs (with and without a thread pool), and compares
 * with results computed here independently: brute-force loops in double precision that follow the ONNX
 * definitions directly. Error cases check the status and that the message names the node. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/kernel.h"
#include "core/alloc.h"
#include "graph/op.h"
#include "test.h"

/* ---- one-node harness ---------------------------------------------------------------------------------- */

typedef struct {
  ri__graph *g;
  int node;
  int n_in;
  int in_val[6];
  ri__tensor in[6];
  int n_out;
  ri__tensor out[5];
  ri__err err;
} op_t;

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
  g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((g_rng >> 40) & 0xffffff) / (float)(1 << 23) - 1.f;
}
static float *rand_buf(int64_t n) {
  float *p = malloc((size_t)(n ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++)
    p[i] = frand();
  return p;
}

static ri__shape mk_shape(int rank, const int64_t *dims) {
  ri__shape s;
  memset(&s, 0, sizeof s);
  s.rank = rank;
  for (int i = 0; i < rank; i++)
    s.dims[i] = dims[i];
  return s;
}
#define SHP(...) mk_shape((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
static const ri__shape k_rank0 = {0};

static void op_begin(op_t *t, int opset) {
  memset(t, 0, sizeof *t);
  t->g = ri__graph_create();
  t->g->opset = opset;
  t->node = -1;
}

/* Adds input i. data is borrowed by t->in; when as_const it is also copied into a graph constant (what
 * check() may read). */
static void op_input(op_t *t, ri_dtype dt, ri__shape s, const void *data, int as_const) {
  const int i = t->n_in++;
  char name[32];
  snprintf(name, sizeof name, "in%d", i);
  size_t nb = (size_t)ri__shape_numel(&s) * ri_dtype_size(dt);
  if (as_const) {
    void *copy = ri__malloc(nb ? nb : 1);
    if (nb) memcpy(copy, data, nb);
    t->in_val[i] = ri__graph_add_const(t->g, name, dt, &s, copy, nb);
  } else {
    t->in_val[i] = ri__graph_add_value(t->g, name, dt, &s, RI__VAL_INPUT);
  }
  t->in[i].dtype = dt;
  t->in[i].shape = s;
  t->in[i].data = (void *)data;
}

static void op_absent(op_t *t) {
  const int i = t->n_in++;
  t->in_val[i] = -1;
  memset(&t->in[i], 0, sizeof t->in[i]);
}

static ri__node *op_node(op_t *t, ri__op op, const char *name, int n_out) {
  int outs[5];
  for (int i = 0; i < n_out; i++) {
    char vn[32];
    snprintf(vn, sizeof vn, "out%d", i);
    outs[i] = ri__graph_add_value(t->g, vn, RI_DTYPE_UNDEFINED, NULL, RI__VAL_ACTIVATION);
  }
  t->n_out = n_out;
  t->node = ri__graph_add_node(t->g, name, op, t->in_val, t->n_in, outs, n_out);
  return &t->g->nodes[t->node];
}

static ri__node *N(op_t *t) { return &t->g->nodes[t->node]; }

static void a_int(op_t *t, const char *name, int64_t v) {
  ri__attr a;
  memset(&a, 0, sizeof a);
  a.name = ri__strdup(name);
  a.type = RI__ATTR_INT;
  a.i = v;
  (void)ri__graph_add_attr(t->g, t->node, &a, NULL);
}
static void a_float(op_t *t, const char *name, float v) {
  ri__attr a;
  memset(&a, 0, sizeof a);
  a.name = ri__strdup(name);
  a.type = RI__ATTR_FLOAT;
  a.f = v;
  (void)ri__graph_add_attr(t->g, t->node, &a, NULL);
}
static void a_str(op_t *t, const char *name, const char *v) {
  ri__attr a;
  memset(&a, 0, sizeof a);
  a.name = ri__strdup(name);
  a.type = RI__ATTR_STRING;
  a.s = ri__strdup(v);
  (void)ri__graph_add_attr(t->g, t->node, &a, NULL);
}
static void a_ints(op_t *t, const char *name, int n, const int64_t *v) {
  ri__attr a;
  memset(&a, 0, sizeof a);
  a.name = ri__strdup(name);
  a.type = RI__ATTR_INTS;
  a.n = n;
  a.ints = ri__malloc((size_t)(n ? n : 1) * sizeof(int64_t));
  if (n) memcpy(a.ints, v, (size_t)n * sizeof(int64_t));
  (void)ri__graph_add_attr(t->g, t->node, &a, NULL);
}
#define A_INTS(t, name, ...)                                                                                 \
  a_ints(t, name, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})

static ri_status op_check(op_t *t) {
  const ri__op_def *d = ri__op_get(N(t)->op);
  ri__err_clear(&t->err);
  return d->check ? d->check(t->g, N(t), &t->err) : RI_OK;
}

/* Shape inference; the contents of inputs are passed only for graph constants (what the engine knows). */
static ri_status op_infer(op_t *t) {
  ri__tensor in[6];
  for (int i = 0; i < t->n_in; i++) {
    in[i] = t->in[i];
    if (t->in_val[i] < 0 || t->g->values[t->in_val[i]].kind != RI__VAL_CONST) in[i].data = NULL;
  }
  for (int i = 0; i < t->n_out; i++)
    free(t->out[i].data);
  memset(t->out, 0, sizeof t->out);
  ri__err_clear(&t->err);
  return ri__op_get(N(t)->op)->infer(N(t), in, t->out, &t->err);
}

static ri_status op_exec(op_t *t, ri__pool *pool) {
  for (int i = 0; i < t->n_out; i++) {
    free(t->out[i].data);
    size_t nb = (size_t)ri__shape_numel(&t->out[i].shape) * ri_dtype_size(t->out[i].dtype);
    t->out[i].data = malloc(nb ? nb : 1);
    memset(t->out[i].data, 0xa5, nb ? nb : 1); /* garbage: kernels must write every element */
  }
  ri__exec x;
  memset(&x, 0, sizeof x);
  x.pool = pool;
  x.err = &t->err;
  ri__err_clear(&t->err);
  return ri__ref_kernel(N(t)->op)(N(t), t->in, t->out, &x);
}

/* check + infer + run; returns 0 and records a failure when one of them fails. */
static int op_run(op_t *t, ri__pool *pool) {
  ri_status s = op_check(t);
  CHECK_MSG(s == RI_OK, "check failed: %s", t->err.msg);
  if (s != RI_OK) return 0;
  s = op_infer(t);
  CHECK_MSG(s == RI_OK, "infer failed: %s", t->err.msg);
  if (s != RI_OK) return 0;
  s = op_exec(t, pool);
  CHECK_MSG(s == RI_OK, "kernel failed: %s", t->err.msg);
  return s == RI_OK;
}

static void op_end(op_t *t) {
  for (int i = 0; i < t->n_out; i++)
    free(t->out[i].data);
  ri__graph_destroy(t->g);
  memset(t, 0, sizeof *t);
}

/* max |got - want| / max(max |want|, 1) */
static double rel_err(const float *got, const double *want, int64_t n) {
  double md = 0, mw = 1;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]);
    if (!(d <= md)) md = d; /* NaN sticks */
    if (fabs(want[i]) > mw) mw = fabs(want[i]);
  }
  return md / mw;
}

static int shape_is(const ri__shape *s, int rank, const int64_t *dims) {
  if (s->rank != rank) return 0;
  for (int i = 0; i < rank; i++)
    if (s->dims[i] != dims[i]) return 0;
  return 1;
}

static double act_ref(ri__act act, double a, double b, double v) {
  switch (act) {
  case RI__ACT_RELU: return v > 0 ? v : 0;
  case RI__ACT_CLIP: return v < a ? a : (v > b ? b : v);
  case RI__ACT_LEAKY_RELU: return v < 0 ? a * v : v;
  default: return v;
  }
}

/* Runs the kernel with no pool and with `pool`, and checks both against want (n elements, float32). */
static void expect_close(op_t *t, ri__pool *pool, const double *want, int64_t n, double tol,
                         const char *what) {
  for (int pass = 0; pass < 2; pass++) {
    ri_status s = op_exec(t, pass ? pool : NULL);
    CHECK_MSG(s == RI_OK, "%s: kernel failed: %s", what, t->err.msg);
    if (s != RI_OK) return;
    CHECK(ri__shape_numel(&t->out[0].shape) == n);
    double e = rel_err(t->out[0].data, want, n);
    CHECK_MSG(e <= tol, "%s (%s): relative error %g", what, pass ? "pool" : "serial", e);
  }
}

/* Status and message of the last failure in t: the node name must appear. */
static void expect_fail(op_t *t, ri_status got, ri_status want, const char *needle, const char *what) {
  CHECK_MSG(got == want, "%s: status %d, expected %d (%s)", what, (int)got, (int)want, t->err.msg);
  CHECK_MSG(strstr(t->err.msg, N(t)->name) != NULL, "%s: message does not name the node: %s", what,
            t->err.msg);
  if (needle)
    CHECK_MSG(strstr(t->err.msg, needle) != NULL, "%s: message lacks '%s': %s", what, needle, t->err.msg);
}

/* ---- Conv -------------------------------------------------------------------------------------------------
 */

typedef struct {
  int64_t n, c, h, w, m, kh, kw, group, sh, sw, dh, dw;
  int64_t pads[4]; /* top, left, bottom, right */
  const char *auto_pad;
  int bias, one_d;
  ri__act act;
  int w_runtime; /* the weight is a run-time input (its shape known, its contents not) */
} conv_case;

/* Pads per the ONNX definition of auto_pad, computed independently of the library. */
static void spec_pads(const char *ap, int64_t in, int64_t k, int64_t s, int64_t d, int64_t *b, int64_t *e) {
  if (!ap || strcmp(ap, "NOTSET") == 0) return;
  if (strcmp(ap, "VALID") == 0) {
    *b = *e = 0;
    return;
  }
  int64_t out = (in + s - 1) / s;
  int64_t total = (out - 1) * s + (k - 1) * d + 1 - in;
  if (total < 0) total = 0;
  int upper = strcmp(ap, "SAME_UPPER") == 0;
  *b = upper ? total / 2 : (total + 1) / 2;
  *e = total - *b;
}

static void run_conv(const conv_case *cc, ri__pool *pool) {
  const int64_t cg = cc->c / cc->group, mg = cc->m / cc->group;
  int64_t pt = cc->pads[0], pl = cc->pads[1], pb = cc->pads[2], pr = cc->pads[3];
  spec_pads(cc->auto_pad, cc->h, cc->kh, cc->sh, cc->dh, &pt, &pb);
  spec_pads(cc->auto_pad, cc->w, cc->kw, cc->sw, cc->dw, &pl, &pr);
  const int64_t oh = (cc->h + pt + pb - (cc->kh - 1) * cc->dh - 1) / cc->sh + 1;
  const int64_t ow = (cc->w + pl + pr - (cc->kw - 1) * cc->dw - 1) / cc->sw + 1;
  float *x = rand_buf(cc->n * cc->c * cc->h * cc->w);
  float *w = rand_buf(cc->m * cg * cc->kh * cc->kw);
  float *b = rand_buf(cc->m);
  double *want = malloc((size_t)(cc->n * cc->m * oh * ow) * sizeof(double));
  for (int64_t n = 0; n < cc->n; n++)
    for (int64_t oc = 0; oc < cc->m; oc++)
      for (int64_t y = 0; y < oh; y++)
        for (int64_t xo = 0; xo < ow; xo++) {
          double s = cc->bias ? b[oc] : 0;
          const int64_t g = oc / mg;
          for (int64_t ic = 0; ic < cg; ic++)
            for (int64_t ki = 0; ki < cc->kh; ki++)
              for (int64_t kj = 0; kj < cc->kw; kj++) {
                int64_t iy = y * cc->sh - pt + ki * cc->dh, ix = xo * cc->sw - pl + kj * cc->dw;
                if (iy < 0 || iy >= cc->h || ix < 0 || ix >= cc->w) continue;
                s += (double)x[((n * cc->c + g * cg + ic) * cc->h + iy) * cc->w + ix] *
                     w[((oc * cg + ic) * cc->kh + ki) * cc->kw + kj];
              }
          want[((n * cc->m + oc) * oh + y) * ow + xo] = act_ref(cc->act, 0.1, 0.5, s);
        }

  op_t t;
  op_begin(&t, 13);
  if (cc->one_d) {
    op_input(&t, RI_DTYPE_FLOAT32, SHP(cc->n, cc->c, cc->w), x, 0);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(cc->m, cg, cc->kw), w, 1);
  } else {
    op_input(&t, RI_DTYPE_FLOAT32, SHP(cc->n, cc->c, cc->h, cc->w), x, 0);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(cc->m, cg, cc->kh, cc->kw), w, !cc->w_runtime);
  }
  if (cc->bias) op_input(&t, RI_DTYPE_FLOAT32, SHP(cc->m), b, 1);
  ri__node *nd = op_node(&t, RI__OP_Conv, "conv_under_test", 1);
  nd->act = cc->act;
  nd->act_a = 0.1f;
  nd->act_b = 0.5f;
  if (cc->group != 1) a_int(&t, "group", cc->group);
  if (cc->one_d) {
    A_INTS(&t, "strides", cc->sw);
    A_INTS(&t, "dilations", cc->dw);
    if (!cc->auto_pad) A_INTS(&t, "pads", cc->pads[1], cc->pads[3]);
    A_INTS(&t, "kernel_shape", cc->kw);
  } else {
    A_INTS(&t, "strides", cc->sh, cc->sw);
    A_INTS(&t, "dilations", cc->dh, cc->dw);
    if (!cc->auto_pad) A_INTS(&t, "pads", cc->pads[0], cc->pads[1], cc->pads[2], cc->pads[3]);
  }
  if (cc->auto_pad) a_str(&t, "auto_pad", cc->auto_pad);
  char what[256];
  snprintf(what, sizeof what, "conv n%lld c%lld %lldx%lld m%lld k%lldx%lld g%lld s%lld,%lld d%lld,%lld %s%s",
           (long long)cc->n, (long long)cc->c, (long long)cc->h, (long long)cc->w, (long long)cc->m,
           (long long)cc->kh, (long long)cc->kw, (long long)cc->group, (long long)cc->sh, (long long)cc->sw,
           (long long)cc->dh, (long long)cc->dw, cc->auto_pad ? cc->auto_pad : "pads",
           cc->one_d ? " 1-D" : "");
  if (op_check(&t) == RI_OK && op_infer(&t) == RI_OK) {
    const int64_t d4[4] = {cc->n, cc->m, oh, ow}, d3[3] = {cc->n, cc->m, ow};
    CHECK_MSG(cc->one_d ? shape_is(&t.out[0].shape, 3, d3) : shape_is(&t.out[0].shape, 4, d4),
              "%s: output shape", what);
    expect_close(&t, pool, want, cc->n * cc->m * oh * ow, 1e-5, what);
  } else {
    CHECK_MSG(0, "%s: check/infer failed: %s", what, t.err.msg);
  }
  op_end(&t);
  free(x);
  free(w);
  free(b);
  free(want);
}

static void test_conv(ri__pool *pool) {
  const conv_case cases[] = {
      /* n, c, h, w, m, kh, kw, group, sh, sw, dh, dw, pads, auto_pad, bias, 1-D, act, run-time weight */
      {2, 3, 7, 6, 8, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, RI__ACT_NONE, 0},
      {1, 4, 9, 9, 6, 3, 2, 1, 2, 1, 1, 1, {0, 1, 2, 0}, NULL, 0, 0, RI__ACT_RELU, 0},
      {2, 4, 11, 10, 5, 3, 3, 1, 1, 2, 2, 1, {2, 1, 2, 1}, NULL, 1, 0, RI__ACT_NONE, 0},
      {1, 8, 6, 7, 8, 3, 3, 8, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, RI__ACT_CLIP, 0},  /* depthwise */
      {2, 6, 8, 8, 12, 3, 3, 6, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, RI__ACT_NONE, 0}, /* multiplier 2 */
      {1, 8, 5, 6, 16, 3, 1, 2, 1, 1, 1, 1, {1, 0, 1, 0}, NULL, 1, 0, RI__ACT_LEAKY_RELU, 0}, /* grouped */
      {3, 16, 5, 5, 20, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 0, RI__ACT_NONE, 0},      /* pointwise */
      {1, 5, 9, 8, 7, 1, 1, 1, 2, 2, 1, 1, {0, 0, 0, 0}, NULL, 0, 0, RI__ACT_NONE, 0}, /* strided 1x1 */
      {1, 3, 10, 9, 4, 3, 3, 1, 2, 2, 1, 1, {0}, "SAME_UPPER", 1, 0, RI__ACT_NONE, 0},
      {1, 3, 10, 9, 4, 4, 4, 1, 2, 2, 1, 1, {0}, "SAME_LOWER", 1, 0, RI__ACT_NONE, 0},
      {1, 3, 7, 8, 4, 2, 3, 1, 3, 2, 2, 1, {0}, "SAME_UPPER", 0, 0, RI__ACT_NONE, 0},
      {1, 3, 10, 9, 4, 3, 3, 1, 2, 1, 1, 1, {0}, "VALID", 1, 0, RI__ACT_NONE, 0},
      {2, 4, 1, 20, 6, 1, 5, 2, 1, 2, 1, 2, {0, 3, 0, 1}, NULL, 1, 1, RI__ACT_NONE, 0}, /* 1-D */
      {1, 2, 1, 9, 3, 1, 3, 1, 1, 1, 1, 1, {0}, "SAME_LOWER", 1, 1, RI__ACT_NONE, 0},
      {1, 3, 40, 37, 33, 5, 5, 1, 2, 2, 1, 1, {2, 2, 2, 2}, NULL, 1, 0, RI__ACT_RELU, 0}, /* tiles */
      {1, 2, 3, 3, 4, 5, 5, 1, 1, 1, 1, 1, {2, 2, 2, 2}, NULL, 1, 0, RI__ACT_NONE, 0},    /* kernel > input */
      {2, 4, 6, 5, 8, 3, 2, 2, 1, 1, 1, 1, {1, 0, 1, 1}, NULL, 1, 0, RI__ACT_NONE, 1}, /* run-time weight */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    run_conv(&cases[i], pool);
}

static void test_conv_errors(void) {
  float buf[4096] = {0};
  op_t t;
  ri_status s;

  /* channel mismatch: X has 3 channels, W expects 4 */
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 3, 5, 5), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 4, 3, 3), buf, 1);
  op_node(&t, RI__OP_Conv, "conv_bad_channels", 1);
  CHECK(op_check(&t) == RI_OK);
  s = op_infer(&t);
  expect_fail(&t, s, RI_ERR_SHAPE, "channels", "conv channel mismatch");
  op_end(&t);

  /* a weight whose shape is unknown before shape inference, without kernel_shape */
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 3, 5, 5), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, k_rank0, buf, 0);
  op_node(&t, RI__OP_Conv, "conv_unknown_weight", 1);
  expect_fail(&t, op_check(&t), RI_ERR_UNSUPPORTED, "kernel_shape", "conv weight shape unknown");
  op_end(&t);

  /* X of rank 3 for a 2-D weight */
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 3, 5), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3, 3, 3), buf, 1);
  op_node(&t, RI__OP_Conv, "conv_bad_rank", 1);
  CHECK(op_check(&t) == RI_OK);
  s = op_infer(&t);
  expect_fail(&t, s, RI_ERR_SHAPE, "rank", "conv rank");
  op_end(&t);

  /* 3-D convolution */
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 4, 4, 4), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 2, 2, 2), buf, 1);
  op_node(&t, RI__OP_Conv, "conv_3d", 1);
  expect_fail(&t, op_check(&t), RI_ERR_UNSUPPORTED, "3-D", "conv 3-D");
  op_end(&t);

  /* group that does not divide the output channels */
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 4, 5, 5), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(3, 2, 3, 3), buf, 1);
  op_node(&t, RI__OP_Conv, "conv_bad_group", 1);
  a_int(&t, "group", 2);
  expect_fail(&t, op_check(&t), RI_ERR_SHAPE, "group", "conv group");
  op_end(&t);

  /* kernel_shape disagreeing with the weight */
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 3, 5, 5), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3, 3, 3), buf, 1);
  op_node(&t, RI__OP_Conv, "conv_bad_kernel_shape", 1);
  A_INTS(&t, "kernel_shape", 3, 2);
  expect_fail(&t, op_check(&t), RI_ERR_SHAPE, "kernel_shape", "conv kernel_shape");
  op_end(&t);

  /* wrong attribute lengths and values */
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 3, 5, 5), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3, 3, 3), buf, 1);
  op_node(&t, RI__OP_Conv, "conv_bad_strides", 1);
  A_INTS(&t, "strides", 1, 1, 1);
  expect_fail(&t, op_check(&t), RI_ERR_INVALID_ARG, "strides", "conv strides length");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 3, 5, 5), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3, 3, 3), buf, 1);
  op_node(&t, RI__OP_Conv, "conv_bad_dilation", 1);
  A_INTS(&t, "dilations", 1, 0);
  expect_fail(&t, op_check(&t), RI_ERR_INVALID_ARG, "dilations", "conv dilation 0");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 3, 5, 5), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3, 3, 3), buf, 1);
  op_node(&t, RI__OP_Conv, "conv_bad_autopad", 1);
  a_str(&t, "auto_pad", "SAME_MIDDLE");
  expect_fail(&t, op_check(&t), RI_ERR_INVALID_ARG, "SAME_MIDDLE", "conv auto_pad value");
  op_end(&t);

  /* kernel larger than the padded input */
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 3, 2, 2), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3, 3, 3), buf, 1);
  op_node(&t, RI__OP_Conv, "conv_too_small", 1);
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, NULL, "conv kernel does not fit");
  op_end(&t);

  /* bias of the wrong length, non-float input */
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 3, 5, 5), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3, 3, 3), buf, 1);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(3), buf, 1);
  op_node(&t, RI__OP_Conv, "conv_bad_bias", 1);
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "bias", "conv bias");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT16, SHP(1, 3, 5, 5), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT16, SHP(2, 3, 3, 3), buf, 1);
  op_node(&t, RI__OP_Conv, "conv_fp16", 1);
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_UNSUPPORTED, "float16", "conv float16 (valid ONNX, not implemented)");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_INT64, SHP(1, 3, 5, 5), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3, 3, 3), buf, 1);
  op_node(&t, RI__OP_Conv, "conv_int_input", 1);
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "float32", "conv dtype");
  op_end(&t);
}

/* ---- BatchNormalization -------------------------------------------------------------------------------- */

static void test_batchnorm(ri__pool *pool) {
  const int64_t n = 2, c = 5, h = 3, w = 4;
  float *x = rand_buf(n * c * h * w), *sc = rand_buf(c), *bi = rand_buf(c), *mean = rand_buf(c),
        *var = rand_buf(c);
  for (int i = 0; i < c; i++)
    var[i] = var[i] * var[i] + 0.1f;
  const float eps = 1e-3f;
  double *want = malloc((size_t)(n * c * h * w) * sizeof(double));
  for (int64_t i = 0; i < n * c * h * w; i++) {
    int64_t ch = (i / (h * w)) % c;
    want[i] = ((double)x[i] - mean[ch]) / sqrt((double)var[ch] + eps) * sc[ch] + bi[ch];
  }
  const int opsets[] = {11, 14, 15};
  for (int k = 0; k < 3; k++) {
    op_t t;
    op_begin(&t, opsets[k]);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(n, c, h, w), x, 0);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(c), sc, 1);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(c), bi, 1);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(c), mean, 1);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(c), var, 1);
    op_node(&t, RI__OP_BatchNormalization, "bn", 1);
    a_float(&t, "epsilon", eps);
    if (opsets[k] >= 14) a_int(&t, "training_mode", 0);
    if (op_run(&t, NULL)) expect_close(&t, pool, want, n * c * h * w, 1e-5, "batchnorm");
    op_end(&t);
  }
  /* rank 2 input [N, C] */
  {
    op_t t;
    op_begin(&t, 13);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(n * h * w, c), x, 0);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(c), sc, 1);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(c), bi, 1);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(c), mean, 1);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(c), var, 1);
    op_node(&t, RI__OP_BatchNormalization, "bn2d", 1);
    for (int64_t i = 0; i < n * c * h * w; i++) {
      int64_t ch = i % c;
      want[i] = ((double)x[i] - mean[ch]) / sqrt((double)var[ch] + 1e-5) * sc[ch] + bi[ch];
    }
    if (op_run(&t, NULL)) expect_close(&t, pool, want, n * c * h * w, 1e-5, "batchnorm rank 2");
    op_end(&t);
  }
  /* training mode, extra outputs, channel mismatch */
  {
    op_t t;
    op_begin(&t, 14);
    for (int i = 0; i < 5; i++)
      op_input(&t, RI_DTYPE_FLOAT32, i ? SHP(c) : SHP(n, c, h, w), x, i > 0);
    op_node(&t, RI__OP_BatchNormalization, "bn_training", 1);
    a_int(&t, "training_mode", 1);
    expect_fail(&t, op_check(&t), RI_ERR_UNSUPPORTED, "training_mode", "batchnorm training");
    op_end(&t);

    op_begin(&t, 11);
    for (int i = 0; i < 5; i++)
      op_input(&t, RI_DTYPE_FLOAT32, i ? SHP(c) : SHP(n, c, h, w), x, i > 0);
    op_node(&t, RI__OP_BatchNormalization, "bn_stats_out", 3);
    expect_fail(&t, op_check(&t), RI_ERR_UNSUPPORTED, NULL, "batchnorm running stats");
    op_end(&t);

    op_begin(&t, 13);
    for (int i = 0; i < 5; i++)
      op_input(&t, RI_DTYPE_FLOAT32, i == 0 ? SHP(n, c, h, w) : SHP(i == 3 ? c + 1 : c), x, i > 0);
    op_node(&t, RI__OP_BatchNormalization, "bn_bad_mean", 1);
    CHECK(op_check(&t) == RI_OK);
    expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "input_mean", "batchnorm mean length");
    op_end(&t);
  }
  free(x);
  free(sc);
  free(bi);
  free(mean);
  free(var);
  free(want);
}

/* ---- MaxPool / AveragePool / GlobalAveragePool -----------------------------------------------------------
 */

typedef struct {
  int is_max;
  int64_t n, c, h, w, kh, kw, sh, sw, dh, dw;
  int64_t pads[4];
  const char *auto_pad;
  int ceil_mode, count_include_pad, one_d;
} pool_case;

/* Output size per the ONNX formula; with ceil_mode a last window starting past the input and the begin
 * padding is dropped. */
static int64_t spec_pool_out(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe,
                             int ceil_mode) {
  const int64_t span = in + pb + pe - ((k - 1) * d + 1);
  int64_t out = ceil_mode ? (int64_t)ceil((double)span / (double)s) + 1 : span / s + 1;
  if (ceil_mode && (out - 1) * s >= in + pb) out--;
  return out;
}

static void run_pool(const pool_case *pc, ri__pool *pool) {
  int64_t pt = pc->pads[0], pl = pc->pads[1], pb = pc->pads[2], pr = pc->pads[3];
  spec_pads(pc->auto_pad, pc->h, pc->kh, pc->sh, pc->dh, &pt, &pb);
  spec_pads(pc->auto_pad, pc->w, pc->kw, pc->sw, pc->dw, &pl, &pr);
  const int64_t oh = spec_pool_out(pc->h, pc->kh, pc->sh, pc->dh, pt, pb, pc->ceil_mode);
  const int64_t ow = spec_pool_out(pc->w, pc->kw, pc->sw, pc->dw, pl, pr, pc->ceil_mode);
  float *x = rand_buf(pc->n * pc->c * pc->h * pc->w);
  double *want = malloc((size_t)(pc->n * pc->c * oh * ow) * sizeof(double));
  for (int64_t p = 0; p < pc->n * pc->c; p++)
    for (int64_t y = 0; y < oh; y++)
      for (int64_t xo = 0; xo < ow; xo++) {
        double acc = pc->is_max ? -INFINITY : 0;
        int64_t cnt = 0, cnt_pad = 0;
        for (int64_t ki = 0; ki < pc->kh; ki++)
          for (int64_t kj = 0; kj < pc->kw; kj++) {
            int64_t iy = y * pc->sh - pt + ki * pc->dh, ix = xo * pc->sw - pl + kj * pc->dw;
            if (iy >= -pt && iy < pc->h + pb && ix >= -pl && ix < pc->w + pr) cnt_pad++;
            if (iy < 0 || iy >= pc->h || ix < 0 || ix >= pc->w) continue;
            double v = x[(p * pc->h + iy) * pc->w + ix];
            acc = pc->is_max ? (v > acc ? v : acc) : acc + v;
            cnt++;
          }
        if (!pc->is_max) acc /= (double)(pc->count_include_pad ? cnt_pad : cnt);
        want[(p * oh + y) * ow + xo] = acc;
      }
  op_t t;
  op_begin(&t, 19);
  if (pc->one_d)
    op_input(&t, RI_DTYPE_FLOAT32, SHP(pc->n, pc->c, pc->w), x, 0);
  else
    op_input(&t, RI_DTYPE_FLOAT32, SHP(pc->n, pc->c, pc->h, pc->w), x, 0);
  op_node(&t, pc->is_max ? RI__OP_MaxPool : RI__OP_AveragePool, "pool_under_test", 1);
  if (pc->one_d) {
    A_INTS(&t, "kernel_shape", pc->kw);
    A_INTS(&t, "strides", pc->sw);
    if (!pc->auto_pad) A_INTS(&t, "pads", pc->pads[1], pc->pads[3]);
    if (pc->dw != 1) A_INTS(&t, "dilations", pc->dw);
  } else {
    A_INTS(&t, "kernel_shape", pc->kh, pc->kw);
    A_INTS(&t, "strides", pc->sh, pc->sw);
    if (!pc->auto_pad) A_INTS(&t, "pads", pc->pads[0], pc->pads[1], pc->pads[2], pc->pads[3]);
    if (pc->dh != 1 || pc->dw != 1) A_INTS(&t, "dilations", pc->dh, pc->dw);
  }
  if (pc->auto_pad) a_str(&t, "auto_pad", pc->auto_pad);
  if (pc->ceil_mode) a_int(&t, "ceil_mode", 1);
  if (pc->count_include_pad) a_int(&t, "count_include_pad", 1);
  char what[256];
  snprintf(what, sizeof what, "%s %lldx%lld k%lldx%lld s%lld,%lld d%lld,%lld %s ceil%d cip%d%s",
           pc->is_max ? "maxpool" : "avgpool", (long long)pc->h, (long long)pc->w, (long long)pc->kh,
           (long long)pc->kw, (long long)pc->sh, (long long)pc->sw, (long long)pc->dh, (long long)pc->dw,
           pc->auto_pad ? pc->auto_pad : "pads", pc->ceil_mode, pc->count_include_pad,
           pc->one_d ? " 1-D" : "");
  if (op_check(&t) == RI_OK && op_infer(&t) == RI_OK) {
    const int64_t d4[4] = {pc->n, pc->c, oh, ow}, d3[3] = {pc->n, pc->c, ow};
    CHECK_MSG(pc->one_d ? shape_is(&t.out[0].shape, 3, d3) : shape_is(&t.out[0].shape, 4, d4),
              "%s: output shape (want %lldx%lld)", what, (long long)oh, (long long)ow);
    if (ri__shape_numel(&t.out[0].shape) == pc->n * pc->c * oh * ow)
      expect_close(&t, pool, want, pc->n * pc->c * oh * ow, 1e-6, what);
  } else {
    CHECK_MSG(0, "%s: check/infer failed: %s", what, t.err.msg);
  }
  op_end(&t);
  free(x);
  free(want);
}

static void test_pools(ri__pool *pool) {
  const pool_case cases[] = {
      /* max n  c  h  w kh kw sh sw dh dw pads        auto_pad ceil cip 1d */
      {1, 2, 3, 8, 8, 2, 2, 2, 2, 1, 1, {0}, NULL, 0, 0, 0},
      {1, 1, 2, 7, 9, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 0, 0, 0},
      {1, 1, 2, 7, 8, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, 0},
      {1, 1, 2, 6, 6, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, NULL, 1, 0, 0},
      {1, 1, 2, 5, 5, 2, 2, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, 0}, /* last window would start in padding */
      {1, 2, 3, 9, 10, 3, 2, 2, 3, 2, 2, {1, 0, 2, 1}, NULL, 0, 0, 0},
      {1, 1, 2, 10, 9, 3, 3, 2, 2, 1, 1, {0}, "SAME_UPPER", 0, 0, 0},
      {1, 1, 2, 10, 9, 2, 2, 2, 2, 1, 1, {0}, "SAME_LOWER", 0, 0, 0},
      {1, 1, 2, 10, 9, 3, 3, 2, 2, 1, 1, {0}, "VALID", 0, 0, 0},
      {1, 2, 3, 1, 11, 1, 3, 1, 2, 1, 1, {0, 1, 0, 1}, NULL, 0, 0, 1},
      {0, 2, 3, 8, 8, 2, 2, 2, 2, 1, 1, {0}, NULL, 0, 0, 0},
      {0, 1, 2, 7, 9, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 0, 0, 0},
      {0, 1, 2, 7, 9, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 0, 1, 0},
      {0, 1, 2, 7, 8, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, 0},
      {0, 1, 2, 7, 8, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0},
      {0, 1, 2, 6, 6, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, NULL, 1, 1, 0},
      {0, 1, 2, 10, 9, 3, 3, 2, 2, 1, 1, {0}, "SAME_UPPER", 0, 0, 0},
      {0, 1, 2, 10, 9, 3, 3, 2, 2, 1, 1, {0}, "SAME_LOWER", 0, 1, 0},
      {0, 1, 2, 10, 9, 3, 3, 1, 1, 2, 2, {2, 2, 2, 2}, NULL, 0, 1, 0}, /* dilated, opset 19 */
      {0, 2, 3, 1, 11, 1, 3, 1, 2, 1, 1, {0, 1, 0, 1}, NULL, 1, 1, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    run_pool(&cases[i], pool);

  /* GlobalAveragePool, 2-D and 1-D */
  for (int one_d = 0; one_d < 2; one_d++) {
    const int64_t n = 2, c = 3, h = one_d ? 1 : 5, w = 7;
    float *x = rand_buf(n * c * h * w);
    double want[6];
    for (int p = 0; p < n * c; p++) {
      double s = 0;
      for (int i = 0; i < h * w; i++)
        s += x[p * h * w + i];
      want[p] = s / (double)(h * w);
    }
    op_t t;
    op_begin(&t, 13);
    op_input(&t, RI_DTYPE_FLOAT32, one_d ? SHP(n, c, w) : SHP(n, c, h, w), x, 0);
    op_node(&t, RI__OP_GlobalAveragePool, "gap", 1);
    if (op_run(&t, NULL)) {
      const int64_t d4[4] = {n, c, 1, 1}, d3[3] = {n, c, 1};
      CHECK(one_d ? shape_is(&t.out[0].shape, 3, d3) : shape_is(&t.out[0].shape, 4, d4));
      expect_close(&t, pool, want, n * c, 1e-6, "global average pool");
    }
    op_end(&t);
    free(x);
  }

  /* MaxPool on 8-bit integers, with padding */
  for (int sgn = 0; sgn < 2; sgn++) {
    const int64_t c = 3, h = 5, w = 6, oh = 3, ow = 3; /* k3 s2 pads 1 */
    uint8_t x[3 * 5 * 6];
    for (int i = 0; i < c * h * w; i++)
      x[i] = (uint8_t)(frand() * 127 + 128);
    op_t t;
    op_begin(&t, 13);
    op_input(&t, sgn ? RI_DTYPE_INT8 : RI_DTYPE_UINT8, SHP(1, c, h, w), x, 0);
    op_node(&t, RI__OP_MaxPool, "maxpool_8bit", 1);
    A_INTS(&t, "kernel_shape", 3, 3);
    A_INTS(&t, "strides", 2, 2);
    A_INTS(&t, "pads", 1, 1, 1, 1);
    if (op_run(&t, pool)) {
      const int64_t d[4] = {1, c, oh, ow};
      CHECK(shape_is(&t.out[0].shape, 4, d) && t.out[0].dtype == (sgn ? RI_DTYPE_INT8 : RI_DTYPE_UINT8));
      int bad = 0;
      for (int64_t p = 0; p < c; p++)
        for (int64_t y = 0; y < oh; y++)
          for (int64_t xo = 0; xo < ow; xo++) {
            int best = -1000;
            for (int64_t ki = 0; ki < 3; ki++)
              for (int64_t kj = 0; kj < 3; kj++) {
                int64_t iy = 2 * y - 1 + ki, ix = 2 * xo - 1 + kj;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                uint8_t raw = x[(p * h + iy) * w + ix];
                int v = sgn ? (int)(int8_t)raw : (int)raw;
                best = v > best ? v : best;
              }
            uint8_t got = ((uint8_t *)t.out[0].data)[(p * oh + y) * ow + xo];
            bad += (sgn ? (int)(int8_t)got : (int)got) != best;
          }
      CHECK_MSG(bad == 0, "maxpool %s: %d wrong elements", sgn ? "int8" : "uint8", bad);
    }
    op_end(&t);
  }

  /* errors */
  float buf[256] = {0};
  op_t t;
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_UINT8, SHP(1, 1, 4, 4), buf, 0);
  op_node(&t, RI__OP_AveragePool, "avgpool_uint8", 1);
  A_INTS(&t, "kernel_shape", 2, 2);
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "float32", "avgpool uint8 (not an ONNX type for it)");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT16, SHP(1, 1, 4, 4), buf, 0);
  op_node(&t, RI__OP_MaxPool, "maxpool_fp16", 1);
  A_INTS(&t, "kernel_shape", 2, 2);
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_UNSUPPORTED, "float16",
              "maxpool float16 (valid ONNX, not implemented)");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 4, 4), buf, 0);
  op_node(&t, RI__OP_MaxPool, "maxpool_storage_order", 1);
  A_INTS(&t, "kernel_shape", 2, 2);
  a_int(&t, "storage_order", 1);
  expect_fail(&t, op_check(&t), RI_ERR_UNSUPPORTED, "storage_order", "maxpool storage_order");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 4, 4), buf, 0);
  op_node(&t, RI__OP_MaxPool, "maxpool_indices", 2);
  A_INTS(&t, "kernel_shape", 2, 2);
  expect_fail(&t, op_check(&t), RI_ERR_UNSUPPORTED, "Indices", "maxpool indices");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 4, 4), buf, 0);
  op_node(&t, RI__OP_MaxPool, "maxpool_no_kernel", 1);
  expect_fail(&t, op_check(&t), RI_ERR_INVALID_ARG, "kernel_shape", "maxpool kernel_shape missing");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 4, 4, 4), buf, 0);
  op_node(&t, RI__OP_AveragePool, "avgpool_3d", 1);
  A_INTS(&t, "kernel_shape", 2, 2, 2);
  expect_fail(&t, op_check(&t), RI_ERR_UNSUPPORTED, NULL, "avgpool 3-D");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 4, 4), buf, 0);
  op_node(&t, RI__OP_AveragePool, "avgpool_dilated_old_opset", 1);
  A_INTS(&t, "kernel_shape", 2, 2);
  A_INTS(&t, "dilations", 2, 2);
  expect_fail(&t, op_check(&t), RI_ERR_INVALID_ARG, "opset 19", "avgpool dilations before opset 19");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 4), buf, 0);
  op_node(&t, RI__OP_MaxPool, "maxpool_rank_mismatch", 1);
  A_INTS(&t, "kernel_shape", 2, 2);
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "rank", "maxpool rank");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 2, 2), buf, 0);
  op_node(&t, RI__OP_MaxPool, "maxpool_window_too_big", 1);
  A_INTS(&t, "kernel_shape", 3, 3);
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, NULL, "maxpool window too big");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3), buf, 0);
  op_node(&t, RI__OP_GlobalAveragePool, "gap_rank2", 1);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "rank", "gap rank");
  op_end(&t);
}

/* ---- Gemm / MatMul ----------------------------------------------------------------------------------------
 */

static void run_gemm(int64_t m, int64_t k, int64_t n, int ta, int tb, int c_rank, const int64_t *c_dims,
                     float alpha, float beta, ri__act act, ri__pool *pool) {
  float *a = rand_buf(m * k), *b = rand_buf(k * n), *c = rand_buf(m * n);
  double *want = malloc((size_t)(m * n) * sizeof(double));
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t p = 0; p < k; p++)
        s += (double)(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
      s *= alpha;
      if (c_rank >= 0) {
        int64_t ci = 0, cj = 0, cn = 1;
        if (c_rank == 2) {
          ci = c_dims[0] == 1 ? 0 : i;
          cj = c_dims[1] == 1 ? 0 : j;
          cn = c_dims[1];
        } else if (c_rank == 1) {
          cj = c_dims[0] == 1 ? 0 : j;
        }
        s += beta * (double)c[ci * cn + cj];
      }
      want[i * n + j] = act_ref(act, 0.1, 0.5, s);
    }
  op_t t;
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, ta ? SHP(k, m) : SHP(m, k), a, 0);
  op_input(&t, RI_DTYPE_FLOAT32, tb ? SHP(n, k) : SHP(k, n), b, 1);
  if (c_rank >= 0) op_input(&t, RI_DTYPE_FLOAT32, mk_shape(c_rank, c_dims), c, 1);
  ri__node *nd = op_node(&t, RI__OP_Gemm, "gemm", 1);
  nd->act = act;
  nd->act_a = 0.1f;
  nd->act_b = 0.5f;
  if (ta) a_int(&t, "transA", 1);
  if (tb) a_int(&t, "transB", 1);
  if (alpha != 1.f) a_float(&t, "alpha", alpha);
  if (beta != 1.f) a_float(&t, "beta", beta);
  char what[160];
  snprintf(what, sizeof what, "gemm %lldx%lldx%lld tA%d tB%d C rank %d alpha %g beta %g", (long long)m,
           (long long)k, (long long)n, ta, tb, c_rank, (double)alpha, (double)beta);
  if (op_run(&t, NULL)) {
    const int64_t d[2] = {m, n};
    CHECK_MSG(shape_is(&t.out[0].shape, 2, d), "%s: shape", what);
    expect_close(&t, pool, want, m * n, 1e-5, what);
  }
  op_end(&t);
  free(a);
  free(b);
  free(c);
  free(want);
}

static void test_gemm(ri__pool *pool) {
  const int64_t cmn[2] = {5, 7}, c1n[2] = {1, 7}, cm1[2] = {5, 1}, cn[1] = {7}, c1[1] = {1};
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      run_gemm(5, 6, 7, ta, tb, 2, cmn, 1.f, 1.f, RI__ACT_NONE, pool);
  run_gemm(5, 6, 7, 0, 1, 1, cn, 0.5f, 2.f, RI__ACT_NONE, pool);
  run_gemm(5, 6, 7, 1, 0, 2, c1n, 1.f, -1.f, RI__ACT_RELU, pool);
  run_gemm(5, 6, 7, 0, 0, 2, cm1, 1.5f, 0.25f, RI__ACT_NONE, pool);
  run_gemm(5, 6, 7, 0, 0, 1, c1, 1.f, 1.f, RI__ACT_CLIP, pool);
  run_gemm(5, 6, 7, 0, 0, 0, NULL, 1.f, 3.f, RI__ACT_NONE, pool);        /* scalar C */
  run_gemm(5, 6, 7, 1, 1, -1, NULL, 2.f, 1.f, RI__ACT_LEAKY_RELU, pool); /* no C */
  const int64_t cbig[1] = {300};
  run_gemm(37, 70, 300, 0, 1, 1, cbig, 1.f, 1.f, RI__ACT_NONE, pool); /* several tiles, packed B */
  run_gemm(70, 33, 300, 1, 0, 1, cbig, 1.f, 1.f, RI__ACT_RELU, pool);

  float buf[64] = {0};
  op_t t;
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(4, 5), buf, 1);
  op_node(&t, RI__OP_Gemm, "gemm_k_mismatch", 1);
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "inner", "gemm K mismatch");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(3, 5), buf, 1);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(3, 5), buf, 1);
  op_node(&t, RI__OP_Gemm, "gemm_bad_c", 1);
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "broadcast", "gemm C broadcast");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3, 1), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(3, 5), buf, 1);
  op_node(&t, RI__OP_Gemm, "gemm_rank3", 1);
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "2-D", "gemm rank");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(3, 5), buf, 1);
  op_node(&t, RI__OP_Gemm, "gemm_bad_trans", 1);
  a_int(&t, "transA", 2);
  expect_fail(&t, op_check(&t), RI_ERR_INVALID_ARG, "transA", "gemm transA value");
  op_end(&t);
}

static void run_matmul(int ra, const int64_t *da, int rb, const int64_t *db, int ro, const int64_t *dout,
                       ri__act act, ri__pool *pool) {
  ri__shape sa = mk_shape(ra, da), sb = mk_shape(rb, db), so = mk_shape(ro, dout);
  const int64_t na = ri__shape_numel(&sa), nb = ri__shape_numel(&sb), no = ri__shape_numel(&so);
  float *a = rand_buf(na), *b = rand_buf(nb);
  double *want = malloc((size_t)(no ? no : 1) * sizeof(double));
  /* Promote 1-D operands, broadcast batch axes by explicit index arithmetic. */
  const int64_t m = ra == 1 ? 1 : da[ra - 2], k = da[ra - 1], n = rb == 1 ? 1 : db[rb - 1];
  const int bra = ra > 2 ? ra - 2 : 0, brb = rb > 2 ? rb - 2 : 0, br = bra > brb ? bra : brb;
  int64_t bdims[8], batch = 1;
  for (int i = 0; i < br; i++) {
    int ia = i - (br - bra), ib = i - (br - brb);
    int64_t x = ia >= 0 ? da[ia] : 1, y = ib >= 0 ? db[ib] : 1;
    bdims[i] = x > y ? x : y;
    batch *= bdims[i];
  }
  for (int64_t t = 0; t < batch; t++) {
    int64_t idx[8], rem = t;
    for (int i = br - 1; i >= 0; i--) {
      idx[i] = rem % bdims[i];
      rem /= bdims[i];
    }
    int64_t oa = 0, ob = 0;
    for (int i = 0; i < bra; i++)
      oa = oa * da[i] + (da[i] == 1 ? 0 : idx[i + br - bra]);
    for (int i = 0; i < brb; i++)
      ob = ob * db[i] + (db[i] == 1 ? 0 : idx[i + br - brb]);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t p = 0; p < k; p++)
          s += (double)a[oa * m * k + i * k + p] * b[ob * k * n + p * n + j];
        want[t * m * n + i * n + j] = act_ref(act, 0, 0, s);
      }
  }
  op_t t;
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, sa, a, 0);
  op_input(&t, RI_DTYPE_FLOAT32, sb, b, 0);
  ri__node *nd = op_node(&t, RI__OP_MatMul, "matmul", 1);
  nd->act = act;
  char b1[64], b2[64], what[160];
  snprintf(what, sizeof what, "matmul %s x %s", ri__shape_str(&sa, b1, sizeof b1),
           ri__shape_str(&sb, b2, sizeof b2));
  if (op_run(&t, NULL)) {
    CHECK_MSG(ri__shape_equal(&t.out[0].shape, &so), "%s: output shape %s", what,
              ri__shape_str(&t.out[0].shape, b1, sizeof b1));
    expect_close(&t, pool, want, no, 1e-5, what);
  }
  op_end(&t);
  free(a);
  free(b);
  free(want);
}

static void test_matmul(ri__pool *pool) {
  run_matmul(2, (int64_t[]){4, 6}, 2, (int64_t[]){6, 5}, 2, (int64_t[]){4, 5}, RI__ACT_NONE, pool);
  run_matmul(1, (int64_t[]){6}, 2, (int64_t[]){6, 5}, 1, (int64_t[]){5}, RI__ACT_NONE, pool);
  run_matmul(2, (int64_t[]){4, 6}, 1, (int64_t[]){6}, 1, (int64_t[]){4}, RI__ACT_RELU, pool);
  run_matmul(1, (int64_t[]){6}, 1, (int64_t[]){6}, 0, (int64_t[]){0}, RI__ACT_NONE, pool);
  run_matmul(3, (int64_t[]){3, 4, 6}, 2, (int64_t[]){6, 5}, 3, (int64_t[]){3, 4, 5}, RI__ACT_NONE, pool);
  run_matmul(2, (int64_t[]){4, 6}, 3, (int64_t[]){3, 6, 5}, 3, (int64_t[]){3, 4, 5}, RI__ACT_NONE, pool);
  run_matmul(4, (int64_t[]){2, 1, 4, 6}, 3, (int64_t[]){3, 6, 5}, 4, (int64_t[]){2, 3, 4, 5}, RI__ACT_RELU,
             pool);
  run_matmul(3, (int64_t[]){5, 4, 6}, 1, (int64_t[]){6}, 2, (int64_t[]){5, 4}, RI__ACT_NONE, pool);
  run_matmul(1, (int64_t[]){6}, 3, (int64_t[]){2, 6, 5}, 2, (int64_t[]){2, 5}, RI__ACT_NONE, pool);
  run_matmul(2, (int64_t[]){70, 40}, 2, (int64_t[]){40, 600}, 2, (int64_t[]){70, 600}, RI__ACT_NONE, pool);

  float buf[64] = {0};
  op_t t;
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 4, 6), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(3, 6, 5), buf, 0);
  op_node(&t, RI__OP_MatMul, "matmul_batch_mismatch", 1);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "broadcast", "matmul batch broadcast");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(4, 6), buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(5, 6), buf, 0);
  op_node(&t, RI__OP_MatMul, "matmul_k_mismatch", 1);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "inner", "matmul K mismatch");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_INT32, SHP(4, 6), buf, 0);
  op_input(&t, RI_DTYPE_INT32, SHP(6, 5), buf, 0);
  op_node(&t, RI__OP_MatMul, "matmul_int32", 1);
  expect_fail(&t, op_infer(&t), RI_ERR_UNSUPPORTED, "int32", "matmul int32 (valid ONNX, not implemented)");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, k_rank0, buf, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(5, 6), buf, 0);
  op_node(&t, RI__OP_MatMul, "matmul_scalar", 1);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "rank", "matmul scalar operand");
  op_end(&t);
}

/* ---- Softmax
 * ------------------------------------------------------------------------------------------------ */

static void run_softmax(int opset, int has_axis, int64_t axis, ri__pool *pool) {
  const int64_t dims[4] = {2, 3, 4, 5};
  const int r = 4;
  const int64_t total = 120;
  float *x = rand_buf(total);
  for (int i = 0; i < total; i++)
    x[i] *= 4.f;
  int64_t ax = has_axis ? axis : (opset < 13 ? 1 : -1);
  if (ax < 0) ax += r;
  /* Group elements: legacy groups everything from `ax` on, new groups only axis `ax`. */
  int64_t outer = 1, len = 1, inner = 1;
  for (int i = 0; i < r; i++) {
    if (i < ax)
      outer *= dims[i];
    else if (i == ax || opset < 13)
      len *= dims[i];
    else
      inner *= dims[i];
  }
  double *want = malloc((size_t)total * sizeof(double));
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      double mx = -INFINITY, s = 0;
      for (int64_t l = 0; l < len; l++)
        mx = fmax(mx, x[(o * len + l) * inner + i]);
      for (int64_t l = 0; l < len; l++)
        s += exp(x[(o * len + l) * inner + i] - mx);
      for (int64_t l = 0; l < len; l++)
        want[(o * len + l) * inner + i] = exp(x[(o * len + l) * inner + i] - mx) / s;
    }
  op_t t;
  op_begin(&t, opset);
  op_input(&t, RI_DTYPE_FLOAT32, mk_shape(r, dims), x, 0);
  op_node(&t, RI__OP_Softmax, "softmax", 1);
  if (has_axis) a_int(&t, "axis", axis);
  char what[96];
  snprintf(what, sizeof what, "softmax opset %d axis %lld%s", opset, (long long)axis,
           has_axis ? "" : " (default)");
  if (op_run(&t, NULL)) expect_close(&t, pool, want, total, 1e-6, what);
  op_end(&t);
  free(x);
  free(want);
}

static void test_softmax(ri__pool *pool) {
  run_softmax(11, 0, 0, pool);
  run_softmax(11, 1, 2, pool);
  run_softmax(11, 1, -1, pool);
  run_softmax(11, 1, 0, pool);
  run_softmax(13, 0, 0, pool);
  run_softmax(13, 1, 1, pool);
  run_softmax(13, 1, -3, pool);
  run_softmax(13, 1, 0, pool);
  run_softmax(18, 1, 3, pool);

  float buf[120] = {0};
  op_t t;
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3), buf, 0);
  op_node(&t, RI__OP_Softmax, "softmax_bad_axis", 1);
  a_int(&t, "axis", 2);
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "axis", "softmax axis out of range");
  op_end(&t);
}

/* ---- Resize
 * ------------------------------------------------------------------------------------------------- */

/* Source coordinate per the ONNX definitions, evaluated in float as ONNX Runtime does (a nearest-mode
 * tie or a floor near an integer depends on it). */
static double spec_src(const char *ct, int64_t xi, double scale_d, int64_t in, int64_t out) {
  const float x = (float)xi, scale = (float)scale_d;
  if (strcmp(ct, "half_pixel") == 0) return (x + 0.5f) / scale - 0.5f;
  if (strcmp(ct, "pytorch_half_pixel") == 0) return out > 1 ? (x + 0.5f) / scale - 0.5f : 0.f;
  if (strcmp(ct, "align_corners") == 0) return out == 1 ? 0.f : x * (float)(in - 1) / (float)(out - 1);
  if (strcmp(ct, "asymmetric") == 0) return x / scale;
  if (strncmp(ct, "tf_half_pixel_for_n", 19) == 0) return (x + 0.5f) / scale;
  if (strcmp(ct, "half_pixel_symmetric") == 0) {
    const float adj = (float)out / (scale * (float)in), off = (float)in / 2.f * (1.f - adj);
    return off + (x + 0.5f) / scale - 0.5f;
  }
  return NAN;
}

static int64_t spec_nearest(const char *nm, double c, int64_t in) {
  double f = floor(c), frac = c - f;
  int64_t i;
  if (!nm) nm = "round_prefer_floor";
  if (strcmp(nm, "floor") == 0)
    i = (int64_t)f;
  else if (strcmp(nm, "ceil") == 0)
    i = (int64_t)ceil(c);
  else if (strcmp(nm, "round_prefer_ceil") == 0)
    i = (int64_t)(frac >= 0.5 ? f + 1 : f);
  else
    i = (int64_t)(frac > 0.5 ? f + 1 : f);
  return i < 0 ? 0 : (i >= in ? in - 1 : i);
}

/* X[n][c][h][w] = 100 h + w + 1000 (n * C + c): a separable ramp, so bilinear output is exactly
 * 100 * clamp(src_h) + clamp(src_w) + plane offset and nearest output reads back the chosen indices. */
static void run_resize(const char *mode, const char *ct, const char *nm, int64_t h, int64_t w, double sh,
                       double sw, int use_sizes, int64_t oh_req, int64_t ow_req, int opset, ri__pool *pool) {
  const int64_t n = 1, c = 2;
  float *x = malloc((size_t)(n * c * h * w) * sizeof(float));
  for (int64_t p = 0; p < n * c; p++)
    for (int64_t i = 0; i < h; i++)
      for (int64_t j = 0; j < w; j++)
        x[(p * h + i) * w + j] = (float)(100 * i + j + 1000 * p);
  int64_t oh, ow;
  float scales[4] = {1, 1, (float)sh, (float)sw};
  int64_t sizes[4] = {n, c, oh_req, ow_req};
  double esh, esw;
  if (use_sizes) {
    oh = oh_req;
    ow = ow_req;
    esh = (double)(float)((float)oh / (float)h);
    esw = (double)(float)((float)ow / (float)w);
  } else {
    oh = (int64_t)floor(h * (double)scales[2] + 1e-9);
    ow = (int64_t)floor(w * (double)scales[3] + 1e-9);
    esh = scales[2];
    esw = scales[3];
  }
  const int linear = strcmp(mode, "linear") == 0;
  double *want = malloc((size_t)(n * c * oh * ow) * sizeof(double));
  for (int64_t p = 0; p < n * c; p++)
    for (int64_t i = 0; i < oh; i++)
      for (int64_t j = 0; j < ow; j++) {
        double ch = spec_src(ct, i, esh, h, oh), cw = spec_src(ct, j, esw, w, ow), v;
        if (linear) {
          ch = ch < 0 ? 0 : (ch > h - 1 ? h - 1 : ch);
          cw = cw < 0 ? 0 : (cw > w - 1 ? w - 1 : cw);
          v = 100 * ch + cw;
        } else {
          v = 100 * spec_nearest(nm, ch, h) + spec_nearest(nm, cw, w);
        }
        want[(p * oh + i) * ow + j] = v + 1000 * p;
      }
  op_t t;
  op_begin(&t, opset);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(n, c, h, w), x, 0);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(0), NULL, 1); /* roi: empty */
  if (use_sizes) {
    op_input(&t, RI_DTYPE_FLOAT32, SHP(0), NULL, 1);
    op_input(&t, RI_DTYPE_INT64, SHP(4), sizes, 1);
  } else {
    op_input(&t, RI_DTYPE_FLOAT32, SHP(4), scales, 1);
  }
  op_node(&t, RI__OP_Resize, "resize", 1);
  a_str(&t, "mode", mode);
  a_str(&t, "coordinate_transformation_mode", ct);
  if (nm) a_str(&t, "nearest_mode", nm);
  char what[256];
  snprintf(what, sizeof what, "resize %s %s %s %lldx%lld -> %lldx%lld (%s)", mode, ct, nm ? nm : "-",
           (long long)h, (long long)w, (long long)oh, (long long)ow, use_sizes ? "sizes" : "scales");
  if (op_run(&t, NULL)) {
    const int64_t d[4] = {n, c, oh, ow};
    CHECK_MSG(shape_is(&t.out[0].shape, 4, d), "%s: output shape", what);
    if (shape_is(&t.out[0].shape, 4, d)) expect_close(&t, pool, want, n * c * oh * ow, 2e-6, what);
  }
  op_end(&t);
  free(x);
  free(want);
}

static void test_resize(ri__pool *pool) {
  /* ONNX's "tf_half_pixel_for_nn" and the "tf_half_pixel_for_nearest" spelling some tools use are the same.
   */
  const char *cts[] = {"half_pixel", "pytorch_half_pixel",   "align_corners",
                       "asymmetric", "tf_half_pixel_for_nn", "tf_half_pixel_for_nearest"};
  const char *nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  for (int i = 0; i < 6; i++) {
    run_resize("linear", cts[i], NULL, 4, 5, 2.0, 1.5, 0, 0, 0, 13, pool);
    run_resize("linear", cts[i], NULL, 6, 8, 0.5, 0.75, 0, 0, 0, 13, pool);
    run_resize("linear", cts[i], NULL, 5, 4, 0, 0, 1, 9, 1, 11, pool);
    for (int k = 0; k < 4; k++) {
      run_resize("nearest", cts[i], nms[k], 4, 5, 2.0, 3.0, 0, 0, 0, 13, pool);
      run_resize("nearest", cts[i], nms[k], 8, 6, 0.5, 0.5, 0, 0, 0, 13, pool);
      run_resize("nearest", cts[i], nms[k], 5, 7, 0, 0, 1, 8, 3, 11, pool);
    }
  }
  run_resize("linear", "half_pixel_symmetric", NULL, 5, 4, 0, 0, 1, 8, 3, 19, pool);
  run_resize("nearest", "half_pixel_symmetric", "round_prefer_floor", 5, 4, 1.7, 2.5, 0, 0, 0, 19, pool);

  /* The output size of a scaled axis is computed in float, as ONNX Runtime does: 10 * 0.7f rounds to 7. */
  {
    float x[10 * 10] = {0}, scales[4] = {1, 1, 0.7f, 1};
    op_t t;
    op_begin(&t, 13);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 10, 10), x, 0);
    op_absent(&t);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(4), scales, 1);
    op_node(&t, RI__OP_Resize, "resize_float_size", 1);
    if (op_check(&t) == RI_OK && op_infer(&t) == RI_OK) {
      const int64_t d[4] = {1, 1, (int64_t)(10.f * 0.7f), 10};
      CHECK(shape_is(&t.out[0].shape, 4, d));
    } else {
      CHECK_MSG(0, "resize float size: %s", t.err.msg);
    }
    op_end(&t);
  }

  /* axes attribute (opset 18) with sizes on the last two axes; uint8 nearest and linear. */
  {
    const int64_t h = 3, w = 4, oh = 7, ow = 6;
    uint8_t x[3 * 4];
    for (int i = 0; i < h * w; i++)
      x[i] = (uint8_t)(i * 20);
    int64_t sizes[2] = {oh, ow};
    for (int lin = 0; lin < 2; lin++) {
      op_t t;
      op_begin(&t, 18);
      op_input(&t, RI_DTYPE_UINT8, SHP(1, 1, h, w), x, 0);
      op_absent(&t);
      op_absent(&t);
      op_input(&t, RI_DTYPE_INT64, SHP(2), sizes, 1);
      op_node(&t, RI__OP_Resize, "resize_axes_u8", 1);
      A_INTS(&t, "axes", -2, -1);
      a_str(&t, "mode", lin ? "linear" : "nearest");
      a_str(&t, "coordinate_transformation_mode", "asymmetric");
      if (op_run(&t, pool)) {
        const int64_t d[4] = {1, 1, oh, ow};
        CHECK(shape_is(&t.out[0].shape, 4, d) && t.out[0].dtype == RI_DTYPE_UINT8);
        const uint8_t *y = t.out[0].data;
        int bad = 0;
        for (int64_t i = 0; i < oh; i++)
          for (int64_t j = 0; j < ow; j++) {
            double ch = i * (double)h / oh, cw = j * (double)w / ow, v;
            if (lin) {
              ch = ch > h - 1 ? h - 1 : ch;
              cw = cw > w - 1 ? w - 1 : cw;
              v = 20 * (w * ch + cw); /* the ramp is linear in both axes */
            } else {
              v = 20 *
                  (w * spec_nearest("round_prefer_floor", ch, h) + spec_nearest("round_prefer_floor", cw, w));
            }
            /* Linear results are truncated (ONNX Runtime's rule); float rounding may land on either side
             * of an integer. */
            if (lin)
              bad += y[i * ow + j] != floor(v + 1e-3) && y[i * ow + j] != floor(v - 1e-3);
            else
              bad += y[i * ow + j] != v;
          }
        CHECK_MSG(bad == 0, "resize uint8 %s: %d wrong elements", lin ? "linear" : "nearest", bad);
      }
      op_end(&t);
    }
  }

  /* linear on a non-spatial axis: N-D separable blending */
  {
    float x[2 * 3] = {0, 1, 2, 10, 11, 12}, scales[2] = {2.f, 1.f};
    op_t t;
    op_begin(&t, 13);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3), x, 0);
    op_absent(&t);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(2), scales, 1);
    op_node(&t, RI__OP_Resize, "resize_axis0", 1);
    a_str(&t, "mode", "linear");
    double want[12];
    for (int i = 0; i < 4; i++) {
      double c = (i + 0.5) / 2 - 0.5;
      c = c < 0 ? 0 : (c > 1 ? 1 : c);
      for (int j = 0; j < 3; j++)
        want[i * 3 + j] = 10 * c + j;
    }
    if (op_run(&t, NULL)) expect_close(&t, pool, want, 12, 1e-6, "resize linear axis 0");
    op_end(&t);
  }

  /* errors */
  float buf[64] = {0}, sc4[4] = {1, 1, 2, 2}, sc3[3] = {1, 2, 2};
  int64_t sz4[4] = {1, 1, 4, 4};
  struct {
    const char *name, *attr, *value;
    ri_status want;
    const char *needle;
  } bad[] = {
      {"resize_cubic", "mode", "cubic", RI_ERR_UNSUPPORTED, "cubic"},
      {"resize_bogus_mode", "mode", "bogus", RI_ERR_INVALID_ARG, "bogus"},
      {"resize_crop", "coordinate_transformation_mode", "tf_crop_and_resize", RI_ERR_UNSUPPORTED,
       "tf_crop_and_resize"},
      {"resize_keep_ratio", "keep_aspect_ratio_policy", "not_larger", RI_ERR_UNSUPPORTED, "not_larger"},
      {"resize_nearest_bogus", "nearest_mode", "sideways", RI_ERR_INVALID_ARG, "sideways"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    op_t t;
    op_begin(&t, 18);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 2, 2), buf, 0);
    op_absent(&t);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(4), sc4, 1);
    op_node(&t, RI__OP_Resize, bad[i].name, 1);
    a_str(&t, bad[i].attr, bad[i].value);
    expect_fail(&t, op_check(&t), bad[i].want, bad[i].needle, bad[i].name);
    op_end(&t);
  }
  {
    op_t t;
    op_begin(&t, 18);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 2, 2), buf, 0);
    op_absent(&t);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(4), sc4, 1);
    op_node(&t, RI__OP_Resize, "resize_antialias", 1);
    a_int(&t, "antialias", 1);
    expect_fail(&t, op_check(&t), RI_ERR_UNSUPPORTED, "antialias", "resize antialias");
    op_end(&t);

    op_begin(&t, 13);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 2, 2), buf, 0);
    op_absent(&t);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(4), sc4, 1);
    op_input(&t, RI_DTYPE_INT64, SHP(4), sz4, 1);
    op_node(&t, RI__OP_Resize, "resize_both", 1);
    expect_fail(&t, op_check(&t), RI_ERR_INVALID_ARG, "both", "resize scales and sizes");
    op_end(&t);

    op_begin(&t, 13);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 2, 2), buf, 0);
    op_absent(&t);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(3), sc3, 1);
    op_node(&t, RI__OP_Resize, "resize_count", 1);
    CHECK(op_check(&t) == RI_OK);
    expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "3 elements", "resize scales count");
    op_end(&t);

    /* scales computed at run time only: shape inference cannot proceed */
    op_begin(&t, 13);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 2, 2), buf, 0);
    op_absent(&t);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(4), sc4, 0);
    op_node(&t, RI__OP_Resize, "resize_dynamic", 1);
    CHECK(op_check(&t) == RI_OK);
    expect_fail(&t, op_infer(&t), RI_ERR_UNSUPPORTED, "known", "resize runtime scales");
    op_end(&t);

    op_begin(&t, 17);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 1, 2, 2), buf, 0);
    op_absent(&t);
    op_input(&t, RI_DTYPE_FLOAT32, SHP(2), sc4, 1);
    op_node(&t, RI__OP_Resize, "resize_axes_old_opset", 1);
    A_INTS(&t, "axes", 2, 3);
    expect_fail(&t, op_check(&t), RI_ERR_INVALID_ARG, "opset 18", "resize axes before opset 18");
    op_end(&t);
  }
}

/* ---- Pad
 * ------------------------------------------------------------------------------------------------------ */

/* Index read for output index o along an axis of length `in` with begin pad b (crop first, then pad), or -1
 * for the constant. Written from the definition: reflect mirrors repeatedly, edge clamps. */
static int64_t spec_pad_src(const char *mode, int64_t o, int64_t in, int64_t b, int64_t e) {
  const int64_t lo = b < 0 ? -b : 0, hi = in - (e < 0 ? -e : 0), len = hi - lo;
  int64_t q = o - (b > 0 ? b : 0);
  if (q >= 0 && q < len) return lo + q;
  if (strcmp(mode, "constant") == 0) return -1;
  if (strcmp(mode, "edge") == 0) return lo + (q < 0 ? 0 : len - 1);
  while (q < 0 || q >= len)
    q = q < 0 ? -q : 2 * (len - 1) - q;
  return lo + q;
}

static void run_pad(const char *mode, ri_dtype dt, int rank, const int64_t *dims, const int64_t *pads,
                    int n_axes, const int64_t *axes, int with_value, int opset, ri__pool *pool) {
  const size_t es = ri_dtype_size(dt);
  ri__shape sx = mk_shape(rank, dims);
  const int64_t nx = ri__shape_numel(&sx);
  unsigned char *x = malloc((size_t)nx * es);
  for (size_t i = 0; i < (size_t)nx * es; i++)
    x[i] = (unsigned char)(frand() * 127 + 128);
  int64_t b[8] = {0}, e[8] = {0};
  const int na = n_axes ? n_axes : rank;
  for (int i = 0; i < na; i++) {
    int a = n_axes ? (int)(axes[i] < 0 ? axes[i] + rank : axes[i]) : i;
    b[a] = pads[i];
    e[a] = pads[na + i];
  }
  ri__shape so = sx;
  for (int a = 0; a < rank; a++)
    so.dims[a] = dims[a] + b[a] + e[a];
  const int64_t no = ri__shape_numel(&so);
  unsigned char value[8];
  for (size_t i = 0; i < es; i++)
    value[i] = with_value ? (unsigned char)(0x40 + i) : 0;
  unsigned char *want = malloc((size_t)(no ? no : 1) * es);
  for (int64_t o = 0; o < no; o++) {
    int64_t rem = o, src = 0, stride = 1;
    int constant = 0;
    for (int a = rank - 1; a >= 0; a--) {
      const int64_t oi = rem % so.dims[a];
      rem /= so.dims[a];
      int64_t s = spec_pad_src(mode, oi, dims[a], b[a], e[a]);
      if (s < 0) constant = 1;
      src += s * stride;
      stride *= dims[a];
    }
    memcpy(want + o * es, constant ? value : x + src * es, es);
  }
  op_t t;
  op_begin(&t, opset);
  op_input(&t, dt, sx, x, 0);
  op_input(&t, RI_DTYPE_INT64, SHP(2 * na), pads, 1);
  if (with_value)
    op_input(&t, dt, k_rank0, value, 1);
  else if (n_axes)
    op_absent(&t);
  if (n_axes) op_input(&t, RI_DTYPE_INT64, SHP(n_axes), axes, 1);
  op_node(&t, RI__OP_Pad, "pad", 1);
  if (strcmp(mode, "constant") != 0) a_str(&t, "mode", mode);
  char b1[64], what[160];
  snprintf(what, sizeof what, "pad %s %s %s", mode, ri_dtype_name(dt), ri__shape_str(&sx, b1, sizeof b1));
  if (op_run(&t, pool)) {
    CHECK_MSG(ri__shape_equal(&t.out[0].shape, &so) && t.out[0].dtype == dt, "%s: output shape/type", what);
    CHECK_MSG(memcmp(t.out[0].data, want, (size_t)no * es) == 0, "%s: contents differ", what);
    op_exec(&t, NULL);
    CHECK_MSG(memcmp(t.out[0].data, want, (size_t)no * es) == 0, "%s: contents differ (serial)", what);
  }
  op_end(&t);
  free(x);
  free(want);
}

static void test_pad(ri__pool *pool) {
  const char *modes[] = {"constant", "reflect", "edge"};
  for (int m = 0; m < 3; m++) {
    run_pad(modes[m], RI_DTYPE_FLOAT32, 4, (int64_t[]){1, 2, 4, 5}, (int64_t[]){0, 0, 1, 2, 0, 0, 3, 1}, 0,
            NULL, 0, 13, pool);
    run_pad(modes[m], RI_DTYPE_UINT8, 2, (int64_t[]){3, 4}, (int64_t[]){2, 3, 1, 2}, 0, NULL, 0, 11, pool);
    run_pad(modes[m], RI_DTYPE_INT64, 3, (int64_t[]){2, 3, 4}, (int64_t[]){1, 0, 2, 1, 2, 3}, 0, NULL, 0, 13,
            pool);
    /* negative pads crop, also mixed with padding on the same axis */
    run_pad(modes[m], RI_DTYPE_FLOAT32, 2, (int64_t[]){5, 6}, (int64_t[]){-1, 2, 1, -2}, 0, NULL, 0, 13,
            pool);
    /* axes input (opset 18) */
    run_pad(modes[m], RI_DTYPE_FLOAT32, 4, (int64_t[]){1, 2, 4, 5}, (int64_t[]){1, 2, 3, 1}, 2,
            (int64_t[]){-1, 2}, 0, 18, pool);
    run_pad(modes[m], RI_DTYPE_INT32, 1, (int64_t[]){6}, (int64_t[]){3, 4}, 0, NULL, 0, 13, pool);
  }
  run_pad("constant", RI_DTYPE_FLOAT32, 4, (int64_t[]){1, 2, 3, 3}, (int64_t[]){0, 1, 1, 1, 0, 0, 2, 1}, 0,
          NULL, 1, 13, pool);
  run_pad("constant", RI_DTYPE_UINT8, 2, (int64_t[]){3, 4}, (int64_t[]){1, 1, 1, 1}, 0, NULL, 1, 13, pool);
  run_pad("constant", RI_DTYPE_INT64, 2, (int64_t[]){3, 4}, (int64_t[]){1, 2}, 1, (int64_t[]){1}, 1, 18,
          pool);
  run_pad("constant", RI_DTYPE_FLOAT32, 2, (int64_t[]){3, 4}, (int64_t[]){-3, 0, 0, 0}, 0, NULL, 0, 13, pool);

  /* errors */
  float buf[64] = {0};
  int64_t p4[4] = {1, 1, 1, 1}, p4big[4] = {0, 4, 0, 0}, p3[3] = {1, 1, 1};
  op_t t;
  op_begin(&t, 19);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3), buf, 0);
  op_input(&t, RI_DTYPE_INT64, SHP(4), p4, 1);
  op_node(&t, RI__OP_Pad, "pad_wrap", 1);
  a_str(&t, "mode", "wrap");
  expect_fail(&t, op_check(&t), RI_ERR_UNSUPPORTED, "wrap", "pad wrap");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3), buf, 0);
  op_input(&t, RI_DTYPE_INT64, SHP(4), p4big, 1);
  op_node(&t, RI__OP_Pad, "pad_reflect_too_far", 1);
  a_str(&t, "mode", "reflect");
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "reflect", "pad reflect beyond the input");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3), buf, 0);
  op_input(&t, RI_DTYPE_INT64, SHP(3), p3, 1);
  op_node(&t, RI__OP_Pad, "pad_bad_count", 1);
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "pads", "pad count");
  op_end(&t);

  int64_t crop[4] = {-2, 0, -1, 0};
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3), buf, 0);
  op_input(&t, RI_DTYPE_INT64, SHP(4), crop, 1);
  op_node(&t, RI__OP_Pad, "pad_over_crop", 1);
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_SHAPE, "crop", "pad crops too much");
  op_end(&t);

  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3), buf, 0);
  op_input(&t, RI_DTYPE_INT64, SHP(4), p4, 0);
  op_node(&t, RI__OP_Pad, "pad_dynamic", 1);
  CHECK(op_check(&t) == RI_OK);
  expect_fail(&t, op_infer(&t), RI_ERR_UNSUPPORTED, "known", "pad runtime pads");
  op_end(&t);

  int64_t ax[1] = {0};
  op_begin(&t, 13);
  op_input(&t, RI_DTYPE_FLOAT32, SHP(2, 3), buf, 0);
  op_input(&t, RI_DTYPE_INT64, SHP(2), p4, 1);
  op_absent(&t);
  op_input(&t, RI_DTYPE_INT64, SHP(1), ax, 1);
  op_node(&t, RI__OP_Pad, "pad_axes_old_opset", 1);
  expect_fail(&t, op_check(&t), RI_ERR_INVALID_ARG, "opset 18", "pad axes before opset 18");
  op_end(&t);
}

/* ---- allocation failures
 * ------------------------------------------------------------------------------------ */

/* check() and the allocating kernels (Conv's patch matrix, Resize's tables) fail cleanly with
 * RI_ERR_NO_MEMORY when any of their allocations fails, and leak nothing. */
static void test_alloc_failures(void) {
  float *x = rand_buf(1 * 3 * 6 * 6), *w = rand_buf(8 * 3 * 3 * 3), sc[4] = {1, 1, 2, 2};
  for (int which = 0; which < 2; which++) {
    op_t t;
    op_begin(&t, 13);
    if (which == 0) {
      op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 3, 6, 6), x, 0);
      op_input(&t, RI_DTYPE_FLOAT32, SHP(8, 3, 3, 3), w, 1);
      op_node(&t, RI__OP_Conv, "conv_oom", 1);
    } else {
      op_input(&t, RI_DTYPE_FLOAT32, SHP(1, 3, 6, 6), x, 0);
      op_absent(&t);
      op_input(&t, RI_DTYPE_FLOAT32, SHP(4), sc, 1);
      op_node(&t, RI__OP_Resize, "resize_oom", 1);
      a_str(&t, "mode", "linear");
    }
    int ok_seen = 0;
    for (long fail = 1; fail < 20 && !ok_seen; fail++) {
      long live = ri__alloc_live();
      ri__alloc_fail_after(fail);
      ri_status s = op_check(&t);
      if (s == RI_OK) s = op_infer(&t);
      if (s == RI_OK) s = op_exec(&t, NULL);
      ri__alloc_fail_after(0);
      CHECK_MSG(s == RI_OK || s == RI_ERR_NO_MEMORY, "%s: allocation %ld failing gave status %d (%s)",
                N(&t)->name, fail, (int)s, t.err.msg);
      ri__free(N(&t)->params);
      N(&t)->params = NULL;
      CHECK_MSG(ri__alloc_live() == live, "%s: allocation %ld failing leaked %ld allocations", N(&t)->name,
                fail, ri__alloc_live() - live);
      ok_seen = s == RI_OK;
    }
    CHECK(ok_seen);
    op_end(&t);
  }
  free(x);
  free(w);
}

int main(void) {
  ri__pool *pool = ri__pool_create(3);
  CHECK(pool != NULL);
  test_conv(pool);
  test_conv_errors();
  test_batchnorm(pool);
  test_pools(pool);
  test_gemm(pool);
  test_matmul(pool);
  test_softmax(pool);
  test_resize(pool);
  test_pad(pool);
  test_alloc_failures();
  ri__pool_destroy(pool);
  return test_done("test_ops_family_a");
}
