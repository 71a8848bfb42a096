/* Elementwise, data-movement, shape and Q/DQ ops: each test builds one node by hand, runs the op's
 * check() and infer() and then its CPU reference kernel, and compares with expectations computed here
 * independently (explicit index arithmetic, hand-derived values, numpy's slicing results). Also the half
 * conversions and the broadcast helpers. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/kernel.h"
#include "core/alloc.h"
#include "core/half.h"
#include "graph/broadcast.h"
#include "graph/op.h"
#include "test.h"

/* ---- a one-node harness ------------------------------------------------------------------------------ */

#define MAX_IN 8

typedef struct {
  ri__graph *g;
  ri__op op;
  int node;
  int n_in;
  ri__tensor in[MAX_IN]; /* data: the run-time contents */
  int host[MAX_IN];      /* the contents are known at shape-inference time */
  int absent[MAX_IN];
  ri__tensor out[2];
  ri__attr attrs[8];
  int n_attrs;
  ri__err err;
  ri__pool *pool;
  ri__act act; /* fused activation set on the node, as the optimizer would */
} harness;

static void h_init(harness *h, ri__op op, int opset) {
  memset(h, 0, sizeof *h);
  h->g = ri__graph_create();
  h->g->opset = opset;
  h->op = op;
  h->node = -1;
}

/* A shape literal (an lvalue, so &SHAPE(...) works). */
#define SHAPE(...)                                                                                           \
  ((ri__shape){.rank = (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), .dims = {__VA_ARGS__}})
static const ri__shape k_scalar = {0};

/* Adds an input; data is borrowed (must outlive the run). host: pass the data to infer() too. */
static void h_in(harness *h, ri_dtype dt, ri__shape s, const void *data, int host) {
  int i = h->n_in++;
  h->in[i].dtype = dt;
  h->in[i].shape = s;
  h->in[i].data = (void *)data;
  h->host[i] = host;
}

static void h_absent(harness *h) {
  int i = h->n_in++;
  h->absent[i] = 1;
  h->in[i].dtype = RI_DTYPE_UNDEFINED;
}

static void h_int(harness *h, const char *name, int64_t v) {
  ri__attr *a = &h->attrs[h->n_attrs++];
  memset(a, 0, sizeof *a);
  a->name = ri__strdup(name);
  a->type = RI__ATTR_INT;
  a->i = v;
}

static void h_float(harness *h, const char *name, float v) {
  ri__attr *a = &h->attrs[h->n_attrs++];
  memset(a, 0, sizeof *a);
  a->name = ri__strdup(name);
  a->type = RI__ATTR_FLOAT;
  a->f = v;
}

static void h_ints(harness *h, const char *name, int n, const int64_t *v) {
  ri__attr *a = &h->attrs[h->n_attrs++];
  memset(a, 0, sizeof *a);
  a->name = ri__strdup(name);
  a->type = RI__ATTR_INTS;
  a->n = n;
  a->ints = ri__malloc((size_t)(n ? n : 1) * sizeof(int64_t));
  if (n) memcpy(a->ints, v, (size_t)n * sizeof(int64_t));
}

/* Builds the node, then check -> infer -> allocate outputs -> reference kernel. Returns the first failing
 * status; *stage tells which step failed (0 build, 1 check, 2 infer, 3 kernel, 4 ok). */
static ri_status h_run_stage(harness *h, int *stage) {
  int ids[MAX_IN];
  *stage = 0;
  for (int i = 0; i < h->n_in; i++) {
    if (h->absent[i]) {
      ids[i] = -1;
      continue;
    }
    char name[32];
    snprintf(name, sizeof name, "in%d", i);
    ids[i] = ri__graph_add_value(h->g, name, h->in[i].dtype, &h->in[i].shape, RI__VAL_INPUT);
  }
  int out = ri__graph_add_value(h->g, "out", RI_DTYPE_UNDEFINED, NULL, RI__VAL_ACTIVATION);
  h->node = ri__graph_add_node(h->g, "n1", h->op, ids, h->n_in, &out, 1);
  if (h->node < 0) return RI_ERR_NO_MEMORY;
  for (int i = 0; i < h->n_attrs; i++)
    RI__TRY(ri__graph_add_attr(h->g, h->node, &h->attrs[i], &h->err));
  h->n_attrs = 0;
  ri__node *n = &h->g->nodes[h->node];
  n->act = h->act;
  const ri__op_def *d = ri__op_get(h->op);
  *stage = 1;
  if (h->n_in < d->min_inputs || h->n_in > d->max_inputs)
    return ri__err_set(&h->err, RI_ERR_PARSE, "harness: %d inputs for %s", h->n_in, d->name);
  if (d->check) RI__TRY(d->check(h->g, n, &h->err));
  *stage = 2;
  ri__tensor inf_in[MAX_IN];
  for (int i = 0; i < h->n_in; i++) {
    inf_in[i] = h->in[i];
    if (!h->host[i]) inf_in[i].data = NULL;
  }
  memset(h->out, 0, sizeof h->out);
  RI__TRY(d->infer(n, inf_in, h->out, &h->err));
  size_t bytes;
  RI__TRY(ri__tensor_nbytes(h->out[0].dtype, &h->out[0].shape, &bytes, &h->err));
  h->out[0].data = ri__calloc(bytes ? bytes : 1, 1);
  if (!h->out[0].data) return RI_ERR_NO_MEMORY;
  *stage = 3;
  ri__exec x = {.pool = h->pool, .err = &h->err};
  RI__TRY(ri__ref_kernel(h->op)(n, h->in, h->out, &x));
  *stage = 4;
  return RI_OK;
}

static ri_status h_run(harness *h) {
  int stage;
  ri_status st = h_run_stage(h, &stage);
  if (st != RI_OK && getenv("RI_TEST_VERBOSE")) fprintf(stderr, "  (stage %d) %s\n", stage, h->err.msg);
  return st;
}

static void h_free(harness *h) {
  for (int i = 0; i < h->n_attrs; i++)
    ri__attr_free(&h->attrs[i]);
  ri__free(h->out[0].data);
  ri__graph_destroy(h->g);
  h->g = NULL;
}

/* Expect failure `want` at `stage` with the node's name in the message. */
static void expect_fail(harness *h, ri_status want, int want_stage, const char *needle, int line) {
  int stage;
  ri_status st = h_run_stage(h, &stage);
  CHECK_MSG(st == want && stage == want_stage, "line %d: status %d stage %d (want %d at %d): %s", line,
            (int)st, stage, (int)want, want_stage, h->err.msg);
  CHECK_MSG(strstr(h->err.msg, "n1") != NULL, "line %d: message does not name the node: %s", line,
            h->err.msg);
  if (needle)
    CHECK_MSG(strstr(h->err.msg, needle) != NULL, "line %d: '%s' not in: %s", line, needle, h->err.msg);
  h_free(h);
}
#define EXPECT_FAIL(h, st, stage, needle) expect_fail(h, st, stage, needle, __LINE__)

/* ---- random data ----------------------------------------------------------------------------------------
 */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (uint32_t)(g_rng >> 16);
}
static float rndf(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() & 0xffffff) / 16777216.f; }

static float *rand_floats(int64_t n, float lo, float hi) {
  float *p = ri__malloc((size_t)(n ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++)
    p[i] = rndf(lo, hi);
  return p;
}

/* Coordinates of flat index i in shape s. */
static void unravel(const ri__shape *s, int64_t i, int64_t *c) {
  for (int k = s->rank - 1; k >= 0; k--) {
    c[k] = s->dims[k] ? i % s->dims[k] : 0;
    i = s->dims[k] ? i / s->dims[k] : 0;
  }
}

static int64_t ravel(const ri__shape *s, const int64_t *c) {
  int64_t i = 0;
  for (int k = 0; k < s->rank; k++)
    i = i * s->dims[k] + c[k];
  return i;
}

/* ---- half ------------------------------------------------------------------------------------------------
 */

/* Value of a half pattern computed from its definition (independent of ri__half_to_float). */
static double half_value(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
  return (h & 0x8000) ? -v : v;
}

static void test_half(void) {
  /* All patterns: exact values, and the round trip back. */
  int bad_value = 0, bad_trip = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    float f = ri__half_to_float((uint16_t)h);
    int e = (h >> 10) & 31;
    if (e == 31) {
      if ((h & 1023) == 0 ? !isinf(f) || (signbit(f) != 0) != ((h & 0x8000) != 0) : !isnan(f)) bad_value++;
    } else if ((double)f != half_value((uint16_t)h) || (signbit(f) != 0) != ((h & 0x8000) != 0)) {
      bad_value++;
    }
    if (ri__float_to_half(f) != h) bad_trip++;
  }
  CHECK_MSG(bad_value == 0, "%d half patterns decode wrongly", bad_value);
  CHECK_MSG(bad_trip == 0, "%d half patterns do not round-trip", bad_trip);

  /* Known values, ties included. */
  struct {
    float f;
    uint16_t h;
  } known[] = {
      {1.0f, 0x3c00},         {-2.0f, 0xc000},      {65504.f, 0x7bff},        {65519.f, 0x7bff},
      {65520.f, 0x7c00},      {1e9f, 0x7c00},       {-1e9f, 0xfc00},          {0x1p-14f, 0x0400},
      {0x1p-24f, 0x0001},     {0x1p-25f, 0x0000},   {0x1.8p-25f, 0x0001},     {0x1.8p-24f, 0x0002},
      {0x1.4p-24f, 0x0001},   {0x1.cp-24f, 0x0002}, {1.f + 0x1p-11f, 0x3c00}, {1.f + 0x1.8p-10f, 0x3c02},
      {0x1.ffep-15f, 0x0400}, {-0.f, 0x8000},       {0x1p-30f, 0x0000},       {0.333333343f, 0x3555},
  };
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    CHECK_MSG(ri__float_to_half(known[i].f) == known[i].h, "%a -> %04x, want %04x", (double)known[i].f,
              ri__float_to_half(known[i].f), known[i].h);
  CHECK(ri__float_to_half(INFINITY) == 0x7c00 && ri__float_to_half(-INFINITY) == 0xfc00);
  uint16_t hn = ri__float_to_half(NAN);
  CHECK((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff) != 0);
  float nan_low; /* NaN whose payload lives only in the bits a half drops */
  uint32_t nb = 0x7f800001u;
  memcpy(&nan_low, &nb, 4);
  hn = ri__float_to_half(nan_low);
  CHECK((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff) != 0);

  /* Random floats against the nearest half found by search over the decoded table (ties to even). */
  static double table[0x7c00];
  for (int i = 0; i < 0x7c00; i++)
    table[i] = half_value((uint16_t)i);
  int bad = 0;
  for (int t = 0; t < 200000; t++) {
    uint32_t bits = rnd() << 16 ^ rnd();
    int exp = 100 + (int)(rnd() % 47); /* 2^-27 .. 2^19 */
    bits = (bits & 0x807fffffu) | ((uint32_t)exp << 23);
    if (t % 7 == 0) bits &= 0xffffe000u | (1u << 12); /* many exact ties */
    float f;
    memcpy(&f, &bits, 4);
    double a = fabs((double)f);
    uint16_t want;
    if (a >= 65520.0) {
      want = 0x7c00;
    } else {
      int lo = 0, hi = 0x7bff;
      while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (table[mid] <= a)
          lo = mid;
        else
          hi = mid;
      }
      double dl = a - table[lo], dh = table[hi] - a;
      want = (uint16_t)(dl < dh ? lo : dh < dl ? hi : ((lo & 1) ? hi : lo));
      if (a >= table[0x7bff]) want = 0x7bff;
    }
    if (signbit(f)) want |= 0x8000;
    if (ri__float_to_half(f) != want) {
      if (bad++ < 5) fprintf(stderr, "  %a -> %04x, want %04x\n", (double)f, ri__float_to_half(f), want);
    }
  }
  CHECK_MSG(bad == 0, "%d random floats round wrongly", bad);
}

/* ---- broadcasting ------------------------------------------------------------------------------------ */

static void test_broadcast_shapes(void) {
  ri__shape o;
  CHECK(ri__broadcast_shapes(&SHAPE(2, 3, 4), &SHAPE(4), &o) == RI_OK &&
        ri__shape_equal(&o, &SHAPE(2, 3, 4)));
  CHECK(ri__broadcast_shapes(&SHAPE(2, 1, 4), &SHAPE(3, 1), &o) == RI_OK &&
        ri__shape_equal(&o, &SHAPE(2, 3, 4)));
  CHECK(ri__broadcast_shapes(&k_scalar, &SHAPE(5, 0), &o) == RI_OK && ri__shape_equal(&o, &SHAPE(5, 0)));
  CHECK(ri__broadcast_shapes(&SHAPE(1), &SHAPE(0), &o) == RI_OK && ri__shape_equal(&o, &SHAPE(0)));
  CHECK(ri__broadcast_shapes(&SHAPE(2, 3), &SHAPE(4), &o) == RI_ERR_SHAPE);
  CHECK(ri__broadcast_shapes(&SHAPE(0), &SHAPE(3), &o) == RI_ERR_SHAPE);
  /* offsets through strides agree with coordinates */
  ri__shape in = SHAPE(3, 1, 5), out = SHAPE(2, 3, 4, 5);
  int64_t st[RI__MAX_RANK];
  ri__broadcast_strides(&in, &out, st);
  int bad = 0;
  for (int64_t i = 0; i < ri__shape_numel(&out); i++) {
    int64_t c[RI__MAX_RANK];
    unravel(&out, i, c);
    if (ri__broadcast_offset(&out, st, i) != c[1] * 5 + c[3]) bad++;
  }
  CHECK(bad == 0);
}

/* Float32 binary ops on shape pairs, against explicit index arithmetic. */
static void test_binary_float(ri__pool *pool) {
  struct {
    ri__shape a, b;
  } cases[] = {
      {SHAPE(2, 3, 4), SHAPE(2, 3, 4)},
      {SHAPE(2, 3, 4), k_scalar},
      {k_scalar, SHAPE(3, 5)},
      {SHAPE(2, 3, 4, 5), SHAPE(1, 3, 1, 1)},
      {SHAPE(3, 1, 1), SHAPE(2, 3, 4, 5)},
      {SHAPE(2, 3, 4, 5), SHAPE(5)},
      {SHAPE(2, 1, 4, 1), SHAPE(1, 3, 1, 5)},
      {SHAPE(4, 1), SHAPE(3)},
      {SHAPE(1, 1), SHAPE(1)},
      {SHAPE(2, 0, 3), SHAPE(3)},
      {SHAPE(7, 1, 3), SHAPE(7, 2, 1)},
      {SHAPE(1, 6, 1, 1), SHAPE(6, 1, 1)},
      {SHAPE(300, 200), SHAPE(300, 200)},
      {SHAPE(4, 64, 32, 32), SHAPE(64, 1, 1)},
      {SHAPE(3, 5000), SHAPE(3, 1)},
      {SHAPE(40000), k_scalar},
  };
  ri__op ops[] = {RI__OP_Add, RI__OP_Sub, RI__OP_Mul, RI__OP_Div};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const ri__shape *sa = &cases[c].a, *sb = &cases[c].b;
    ri__shape want;
    CHECK(ri__broadcast_shapes(sa, sb, &want) == RI_OK);
    int64_t na = ri__shape_numel(sa), nb = ri__shape_numel(sb), ny = ri__shape_numel(&want);
    float *a = rand_floats(na, -4.f, 4.f), *b = rand_floats(nb, 0.5f, 3.f);
    for (int oi = 0; oi < 4; oi++) {
      for (int act = 0; act < 2; act++) {
        harness h;
        h_init(&h, ops[oi], 17);
        h.pool = pool;
        h.act = act ? RI__ACT_RELU : RI__ACT_NONE;
        h_in(&h, RI_DTYPE_FLOAT32, *sa, a, 0);
        h_in(&h, RI_DTYPE_FLOAT32, *sb, b, 0);
        ri_status st = h_run(&h);
        CHECK_MSG(st == RI_OK, "case %zu: %s", c, h.err.msg);
        CHECK(ri__shape_equal(&h.out[0].shape, &want) && h.out[0].dtype == RI_DTYPE_FLOAT32);
        int bad = 0;
        const float *y = h.out[0].data;
        for (int64_t i = 0; st == RI_OK && i < ny; i++) {
          int64_t co[RI__MAX_RANK], ca[RI__MAX_RANK], cb[RI__MAX_RANK];
          unravel(&want, i, co);
          /* inputs align to the right; their size-1 axes always read index 0 */
          for (int k = 0; k < sa->rank; k++)
            ca[k] = sa->dims[k] == 1 ? 0 : co[k + want.rank - sa->rank];
          for (int k = 0; k < sb->rank; k++)
            cb[k] = sb->dims[k] == 1 ? 0 : co[k + want.rank - sb->rank];
          float va = a[ravel(sa, ca)], vb = b[ravel(sb, cb)], e;
          switch (ops[oi]) {
          case RI__OP_Add: e = va + vb; break;
          case RI__OP_Sub: e = va - vb; break;
          case RI__OP_Mul: e = va * vb; break;
          default: e = va / vb; break;
          }
          if (act && e < 0) e = 0;
          if (y[i] != e) bad++;
        }
        CHECK_MSG(bad == 0, "case %zu op %s act %d: %d wrong", c, ri__op_name(ops[oi]), act, bad);
        h_free(&h);
      }
    }
    ri__free(a);
    ri__free(b);
  }
}

/* Integer arithmetic: C semantics for Div (truncation), wrap-around, and the documented zero divisor. */
static void test_binary_int(void) {
  {
    int32_t a[] = {-7, 7, -7, 7, INT32_MIN, 5, INT32_MAX, -1};
    int32_t b[] = {2, -2, -2, 2, -1, 0, 1, 3};
    ri__op ops[] = {RI__OP_Add, RI__OP_Sub, RI__OP_Mul, RI__OP_Div};
    for (int oi = 0; oi < 4; oi++) {
      harness h;
      h_init(&h, ops[oi], 14);
      h_in(&h, RI_DTYPE_INT32, SHAPE(8), a, 0);
      h_in(&h, RI_DTYPE_INT32, SHAPE(8), b, 0);
      CHECK(h_run(&h) == RI_OK && h.out[0].dtype == RI_DTYPE_INT32);
      const int32_t *y = h.out[0].data;
      for (int i = 0; i < 8; i++) {
        int64_t e;
        switch (ops[oi]) {
        case RI__OP_Add: e = (int64_t)a[i] + b[i]; break;
        case RI__OP_Sub: e = (int64_t)a[i] - b[i]; break;
        case RI__OP_Mul: e = (int64_t)a[i] * b[i]; break;
        default: e = b[i] == 0 ? 0 : (int64_t)a[i] / b[i]; break; /* int64 division truncates too */
        }
        int32_t ew = (int32_t)(uint32_t)(uint64_t)e; /* wrapped to 32 bits */
        CHECK_MSG(y[i] == ew, "%s %d,%d -> %d, want %d", ri__op_name(ops[oi]), a[i], b[i], y[i], ew);
      }
      h_free(&h);
    }
  }
  {
    int64_t a[] = {-9, 9, INT64_MIN, 100}, b[] = {4, -4, -1, 0};
    harness h;
    h_init(&h, RI__OP_Div, 14);
    h_in(&h, RI_DTYPE_INT64, SHAPE(4), a, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(4), b, 0);
    CHECK(h_run(&h) == RI_OK);
    const int64_t *y = h.out[0].data;
    CHECK(y[0] == -2 && y[1] == -2 && y[2] == INT64_MIN && y[3] == 0);
    h_free(&h);
  }
  {
    uint8_t a[] = {200, 10, 255, 7}, b[] = {100};
    harness h;
    h_init(&h, RI__OP_Add, 14);
    h_in(&h, RI_DTYPE_UINT8, SHAPE(4), a, 0);
    h_in(&h, RI_DTYPE_UINT8, SHAPE(1), b, 0);
    CHECK(h_run(&h) == RI_OK);
    const uint8_t *y = h.out[0].data;
    for (int i = 0; i < 4; i++)
      CHECK(y[i] == (uint8_t)((a[i] + 100) % 256));
    h_free(&h);
  }
  {
    int8_t a[] = {100, -100, -128, 9}, b[] = {3, 2, -1, -2};
    harness h;
    h_init(&h, RI__OP_Mul, 14);
    h_in(&h, RI_DTYPE_INT8, SHAPE(4), a, 0);
    h_in(&h, RI_DTYPE_INT8, SHAPE(4), b, 0);
    CHECK(h_run(&h) == RI_OK);
    const int8_t *y = h.out[0].data;
    for (int i = 0; i < 4; i++) {
      int p = ((a[i] * b[i]) % 256 + 256) % 256;
      CHECK(y[i] == (int8_t)(p >= 128 ? p - 256 : p));
    }
    h_free(&h);
  }
  /* errors */
  float f[12] = {0};
  harness h;
  h_init(&h, RI__OP_Add, 17);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(2, 3), f, 0);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(4), f, 0);
  EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "[2,3]");
  int32_t iv[3] = {0};
  h_init(&h, RI__OP_Mul, 17);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(3), f, 0);
  h_in(&h, RI_DTYPE_INT32, SHAPE(3), iv, 0);
  EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "int32");
  h_init(&h, RI__OP_Add, 17);
  h.act = RI__ACT_RELU;
  h_in(&h, RI_DTYPE_INT32, SHAPE(3), iv, 0);
  h_in(&h, RI_DTYPE_INT32, SHAPE(3), iv, 0);
  EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "activation");
}

/* ---- unary ----------------------------------------------------------------------------------------------
 */

static double ref_unary(ri__op op, double x, double a, double b) {
  switch (op) {
  case RI__OP_Relu: return x > 0 ? x : 0;
  case RI__OP_LeakyRelu: return x >= 0 ? x : a * x;
  case RI__OP_HardSigmoid: return fmax(0, fmin(1, a * x + b));
  case RI__OP_HardSwish: return x * fmax(0, fmin(1, x / 6 + 0.5));
  case RI__OP_Sigmoid: return 1 / (1 + exp(-x));
  case RI__OP_Exp: return exp(x);
  default: return fmin(fmax(x, a), b); /* Clip */
  }
}

static void test_unary(ri__pool *pool) {
  int64_t n = 50000;
  float *x = rand_floats(n, -8.f, 8.f);
  x[0] = 0.f;
  x[1] = -0.f;
  x[2] = 3.f; /* HardSwish / HardSigmoid knees */
  x[3] = -3.f;
  x[4] = -2.5f;
  x[5] = 2.5f;
  struct {
    ri__op op;
    float a, b;
    int set_a, set_b;
  } cases[] = {
      {RI__OP_Relu, 0, 0, 0, 0},
      {RI__OP_LeakyRelu, 0.01f, 0, 0, 0},
      {RI__OP_LeakyRelu, 0.3f, 0, 1, 0},
      {RI__OP_HardSigmoid, 0.2f, 0.5f, 0, 0},
      {RI__OP_HardSigmoid, 0.5f, 0.25f, 1, 1},
      {RI__OP_HardSwish, 0, 0, 0, 0},
      {RI__OP_Sigmoid, 0, 0, 0, 0},
      {RI__OP_Exp, 0, 0, 0, 0},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    harness h;
    h_init(&h, cases[c].op, 17);
    h.pool = pool;
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(2, n / 2), x, 0);
    if (cases[c].set_a) h_float(&h, "alpha", cases[c].a);
    if (cases[c].set_b) h_float(&h, "beta", cases[c].b);
    CHECK_MSG(h_run(&h) == RI_OK, "%s", h.err.msg);
    CHECK(ri__shape_equal(&h.out[0].shape, &SHAPE(2, n / 2)));
    const float *y = h.out[0].data;
    int bad = 0;
    for (int64_t i = 0; y && i < n; i++) {
      double e = ref_unary(cases[c].op, x[i], cases[c].a, cases[c].b);
      if (fabs(y[i] - e) > 1e-6 * fmax(1, fabs(e))) {
        if (bad++ < 3) fprintf(stderr, "  %s(%g) = %g, want %g\n", ri__op_name(cases[c].op), x[i], y[i], e);
      }
    }
    CHECK_MSG(bad == 0, "%s: %d wrong", ri__op_name(cases[c].op), bad);
    h_free(&h);
  }
  /* Clip: both bounds, one bound, none, min > max, and a NaN input. */
  float lo = -1.5f, hi = 2.25f;
  x[6] = NAN;
  for (int form = 0; form < 5; form++) {
    harness h;
    h_init(&h, RI__OP_Clip, 13);
    h.pool = pool;
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(n), x, 0);
    float l = -INFINITY, u = INFINITY;
    if (form == 0) {
      h_in(&h, RI_DTYPE_FLOAT32, k_scalar, &lo, 1);
      h_in(&h, RI_DTYPE_FLOAT32, k_scalar, &hi, 1);
      l = lo;
      u = hi;
    }
    if (form == 1) {
      h_in(&h, RI_DTYPE_FLOAT32, k_scalar, &lo, 1);
      l = lo;
    }
    if (form == 2) {
      h_absent(&h);
      h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1), &hi, 1);
      u = hi;
    }
    if (form == 4) {
      h_in(&h, RI_DTYPE_FLOAT32, k_scalar, &hi, 1);
      h_in(&h, RI_DTYPE_FLOAT32, k_scalar, &lo, 1);
      l = hi;
      u = lo;
    }
    CHECK_MSG(h_run(&h) == RI_OK, "%s", h.err.msg);
    const float *y = h.out[0].data;
    int bad = 0;
    for (int64_t i = 0; y && i < n; i++) {
      if (isnan(x[i])) {
        bad += !isnan(y[i]);
        continue;
      }
      float e = x[i] < l ? l : x[i];
      e = e > u ? u : e;
      bad += y[i] != e;
    }
    CHECK_MSG(bad == 0, "Clip form %d: %d wrong", form, bad);
    h_free(&h);
  }
  /* integer Clip and Relu */
  {
    int32_t xi[] = {-100, -3, 0, 4, 99}, l32 = -5, u32 = 50;
    harness h;
    h_init(&h, RI__OP_Clip, 13);
    h_in(&h, RI_DTYPE_INT32, SHAPE(5), xi, 0);
    h_in(&h, RI_DTYPE_INT32, k_scalar, &l32, 1);
    h_in(&h, RI_DTYPE_INT32, k_scalar, &u32, 1);
    CHECK(h_run(&h) == RI_OK);
    const int32_t *y = h.out[0].data;
    for (int i = 0; y && i < 5; i++)
      CHECK(y[i] == (xi[i] < -5 ? -5 : xi[i] > 50 ? 50 : xi[i]));
    h_free(&h);
    int64_t xl[] = {-7, 0, 8};
    h_init(&h, RI__OP_Relu, 14);
    h_in(&h, RI_DTYPE_INT64, SHAPE(3), xl, 0);
    CHECK(h_run(&h) == RI_OK);
    const int64_t *yl = h.out[0].data;
    CHECK(yl && yl[0] == 0 && yl[1] == 0 && yl[2] == 8);
    h_free(&h);
  }
  /* errors: Clip bound of another dtype, non-scalar bound, Clip attributes, Sigmoid on int */
  {
    harness h;
    double d = 1;
    float two[2] = {0, 1};
    int32_t xi[2] = {0};
    h_init(&h, RI__OP_Clip, 13);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(4), x, 0);
    h_in(&h, RI_DTYPE_FLOAT64, k_scalar, &d, 1);
    EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "min");
    h_init(&h, RI__OP_Clip, 13);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(4), x, 0);
    h_absent(&h);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(2), two, 1);
    EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "max");
    h_init(&h, RI__OP_Clip, 11);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(4), x, 0);
    h_float(&h, "min", 0.f);
    EXPECT_FAIL(&h, RI_ERR_UNSUPPORTED, 1, "'min'");
    h_init(&h, RI__OP_Sigmoid, 13);
    h_in(&h, RI_DTYPE_INT32, SHAPE(2), xi, 0);
    EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "int32");
  }
  ri__free(x);
}

/* ---- QuantizeLinear / DequantizeLinear --------------------------------------------------------------- */

/* Round half to even, from the definition. */
static double round_even(double v) {
  double f = floor(v), d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return fmod(f, 2) == 0 ? f : f + 1;
}

static void test_quantize(void) {
  float ties[] = {0.5f,   1.5f,   2.5f,     -0.5f,     -1.5f,       -2.5f,     3.5f,
                  -3.5f,  1e30f,  -1e30f,   126.5f,    127.5f,      -128.5f,   -127.5f,
                  254.5f, 255.5f, INFINITY, -INFINITY, 0.49999997f, 2.5000002f};
  int nt = (int)(sizeof ties / sizeof ties[0]);
  struct {
    ri_dtype qt;
    int has_zp;
    int zp;
    int by_attr;
  } forms[] = {
      {RI_DTYPE_UINT8, 0, 0, 0}, {RI_DTYPE_UINT8, 1, 0, 0},     {RI_DTYPE_UINT8, 1, 128, 0},
      {RI_DTYPE_INT8, 1, 0, 0},  {RI_DTYPE_INT8, 1, -3, 0},     {RI_DTYPE_INT8, 0, 0, 1},
      {RI_DTYPE_INT16, 1, 7, 0}, {RI_DTYPE_UINT16, 1, 1000, 0},
  };
  for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
    for (int sc = 0; sc < 2; sc++) {
      float scale = sc ? 0.5f : 1.f;
      double qmin = forms[f].qt == RI_DTYPE_UINT8   ? 0
                    : forms[f].qt == RI_DTYPE_INT8  ? -128
                    : forms[f].qt == RI_DTYPE_INT16 ? -32768
                                                    : 0;
      double qmax = forms[f].qt == RI_DTYPE_UINT8   ? 255
                    : forms[f].qt == RI_DTYPE_INT8  ? 127
                    : forms[f].qt == RI_DTYPE_INT16 ? 32767
                                                    : 65535;
      int64_t zp64 = forms[f].zp;
      uint8_t zpbuf[8];
      int8_t z8 = (int8_t)zp64;
      uint8_t zu8 = (uint8_t)zp64;
      int16_t z16 = (int16_t)zp64;
      uint16_t zu16 = (uint16_t)zp64;
      if (forms[f].qt == RI_DTYPE_INT8) memcpy(zpbuf, &z8, 1);
      if (forms[f].qt == RI_DTYPE_UINT8) memcpy(zpbuf, &zu8, 1);
      if (forms[f].qt == RI_DTYPE_INT16) memcpy(zpbuf, &z16, 2);
      if (forms[f].qt == RI_DTYPE_UINT16) memcpy(zpbuf, &zu16, 2);
      harness h;
      h_init(&h, RI__OP_QuantizeLinear, forms[f].by_attr ? 21 : 19);
      h_in(&h, RI_DTYPE_FLOAT32, SHAPE(nt), ties, 0);
      h_in(&h, RI_DTYPE_FLOAT32, k_scalar, &scale, 1);
      if (forms[f].has_zp) h_in(&h, forms[f].qt, k_scalar, zpbuf, 1);
      if (forms[f].by_attr) h_int(&h, "output_dtype", forms[f].qt);
      CHECK_MSG(h_run(&h) == RI_OK, "%s", h.err.msg);
      CHECK(h.out[0].dtype == forms[f].qt);
      ri__tensor yt = h.out[0];
      for (int i = 0; yt.data && i < nt; i++) {
        float q = ties[i] / scale;
        double e = isinf(q) ? (q > 0 ? qmax : qmin) : round_even(q) + (double)zp64;
        e = e < qmin ? qmin : e > qmax ? qmax : e;
        double got = (double)ri__tensor_get_int(&yt, i);
        CHECK_MSG(got == e, "%s zp %d scale %g: q(%g) = %g, want %g", ri_dtype_name(forms[f].qt), forms[f].zp,
                  scale, ties[i], got, e);
      }
      h_free(&h);
    }
  }
  /* NaN gives the zero point */
  {
    float xn[1] = {NAN}, s = 1.f;
    uint8_t zp = 77;
    harness h;
    h_init(&h, RI__OP_QuantizeLinear, 13);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1), xn, 0);
    h_in(&h, RI_DTYPE_FLOAT32, k_scalar, &s, 1);
    h_in(&h, RI_DTYPE_UINT8, k_scalar, &zp, 1);
    CHECK(h_run(&h) == RI_OK && ((uint8_t *)h.out[0].data)[0] == 77);
    h_free(&h);
  }
  /* per-axis, negative axis, int8, shape [2,3,4] along axis 1 (= -2) */
  for (int neg = 0; neg < 2; neg++) {
    float *x = rand_floats(24, -200.f, 200.f);
    float s[3] = {0.5f, 1.f, 3.f};
    int8_t zp[3] = {-1, 0, 5};
    harness h;
    h_init(&h, RI__OP_QuantizeLinear, 13);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(2, 3, 4), x, 0);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(3), s, 1);
    h_in(&h, RI_DTYPE_INT8, SHAPE(3), zp, 1);
    if (neg) h_int(&h, "axis", -2);
    CHECK_MSG(h_run(&h) == RI_OK, "%s", h.err.msg);
    const int8_t *y = h.out[0].data;
    for (int i = 0; y && i < 24; i++) {
      int c = (i / 4) % 3;
      double e = round_even(x[i] / s[c]) + zp[c];
      e = e < -128 ? -128 : e > 127 ? 127 : e;
      CHECK(y[i] == (int8_t)e);
    }
    h_free(&h);
    ri__free(x);
  }
  /* float16 input and scale */
  {
    uint16_t xh[4] = {ri__float_to_half(1.5f), ri__float_to_half(-7.f), ri__float_to_half(100.f),
                      ri__float_to_half(2.5f)};
    uint16_t sh = ri__float_to_half(0.5f);
    harness h;
    h_init(&h, RI__OP_QuantizeLinear, 19);
    h_in(&h, RI_DTYPE_FLOAT16, SHAPE(4), xh, 0);
    h_in(&h, RI_DTYPE_FLOAT16, k_scalar, &sh, 1);
    CHECK(h_run(&h) == RI_OK && h.out[0].dtype == RI_DTYPE_UINT8);
    const uint8_t *y = h.out[0].data;
    CHECK(y && y[0] == 3 && y[1] == 0 && y[2] == 200 && y[3] == 5);
    h_free(&h);
  }
  /* errors */
  {
    float x[6] = {0}, s2[2] = {1, 1}, s1 = 1.f;
    int8_t z8 = 0;
    harness h;
    h_init(&h, RI__OP_QuantizeLinear, 21);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(2, 3), x, 0);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(2), s2, 1);
    h_int(&h, "block_size", 2);
    EXPECT_FAIL(&h, RI_ERR_UNSUPPORTED, 1, "block_size");
    h_init(&h, RI__OP_QuantizeLinear, 13);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(2, 3), x, 0);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(2), s2, 1);
    EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "scale");
    h_init(&h, RI__OP_QuantizeLinear, 21);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(2, 3), x, 0);
    h_in(&h, RI_DTYPE_FLOAT32, k_scalar, &s1, 1);
    h_in(&h, RI_DTYPE_INT8, k_scalar, &z8, 1);
    h_int(&h, "output_dtype", RI_DTYPE_UINT8);
    EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "output_dtype");
    h_init(&h, RI__OP_QuantizeLinear, 21);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(2, 3), x, 0);
    h_in(&h, RI_DTYPE_FLOAT32, k_scalar, &s1, 1);
    h_int(&h, "output_dtype", 17); /* float8e4m3fn */
    EXPECT_FAIL(&h, RI_ERR_UNSUPPORTED, 1, "output_dtype");
  }
}

static void test_dequantize(void) {
  /* uint8 per-tensor */
  {
    uint8_t x[] = {0, 1, 127, 128, 200, 255};
    float s = 0.25f;
    uint8_t zp = 128;
    harness h;
    h_init(&h, RI__OP_DequantizeLinear, 13);
    h_in(&h, RI_DTYPE_UINT8, SHAPE(6), x, 0);
    h_in(&h, RI_DTYPE_FLOAT32, k_scalar, &s, 1);
    h_in(&h, RI_DTYPE_UINT8, k_scalar, &zp, 1);
    CHECK(h_run(&h) == RI_OK && h.out[0].dtype == RI_DTYPE_FLOAT32);
    const float *y = h.out[0].data;
    for (int i = 0; y && i < 6; i++)
      CHECK(y[i] == ((float)x[i] - 128.f) * 0.25f);
    h_free(&h);
  }
  /* int8 per-axis on the last axis (axis -1), and int32 without a zero point */
  {
    int8_t x[12];
    for (int i = 0; i < 12; i++)
      x[i] = (int8_t)(i * 23 - 128);
    float s[4] = {0.1f, 2.f, 0.5f, 8.f};
    int8_t zp[4] = {-3, 0, 100, -128};
    harness h;
    h_init(&h, RI__OP_DequantizeLinear, 13);
    h_in(&h, RI_DTYPE_INT8, SHAPE(3, 4), x, 0);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(4), s, 1);
    h_in(&h, RI_DTYPE_INT8, SHAPE(4), zp, 1);
    h_int(&h, "axis", -1);
    CHECK_MSG(h_run(&h) == RI_OK, "%s", h.err.msg);
    const float *y = h.out[0].data;
    for (int i = 0; y && i < 12; i++)
      CHECK(y[i] == (float)(x[i] - zp[i % 4]) * s[i % 4]);
    h_free(&h);
    int32_t xi[3] = {-1000000, 0, 123456};
    float s1 = 0.001f;
    h_init(&h, RI__OP_DequantizeLinear, 13);
    h_in(&h, RI_DTYPE_INT32, SHAPE(3), xi, 0);
    h_in(&h, RI_DTYPE_FLOAT32, k_scalar, &s1, 1);
    CHECK(h_run(&h) == RI_OK);
    y = h.out[0].data;
    for (int i = 0; y && i < 3; i++)
      CHECK(y[i] == (float)xi[i] * s1);
    h_free(&h);
  }
  /* float16 scale gives float16 output */
  {
    int16_t x[3] = {-300, 0, 300};
    uint16_t s = ri__float_to_half(0.125f);
    harness h;
    h_init(&h, RI__OP_DequantizeLinear, 21);
    h_in(&h, RI_DTYPE_INT16, SHAPE(3), x, 0);
    h_in(&h, RI_DTYPE_FLOAT16, k_scalar, &s, 1);
    CHECK(h_run(&h) == RI_OK && h.out[0].dtype == RI_DTYPE_FLOAT16);
    const uint16_t *y = h.out[0].data;
    for (int i = 0; y && i < 3; i++)
      CHECK(ri__half_to_float(y[i]) == x[i] * 0.125f);
    h_free(&h);
  }
  /* zero point dtype must match x */
  {
    uint8_t x[2] = {0};
    int8_t zp = 0;
    float s = 1;
    harness h;
    h_init(&h, RI__OP_DequantizeLinear, 13);
    h_in(&h, RI_DTYPE_UINT8, SHAPE(2), x, 0);
    h_in(&h, RI_DTYPE_FLOAT32, k_scalar, &s, 1);
    h_in(&h, RI_DTYPE_INT8, k_scalar, &zp, 1);
    EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "zero point");
  }
}

/* ---- Cast ------------------------------------------------------------------------------------------------
 */

static void put(ri_dtype t, void *buf, int64_t i, double v) {
  switch (t) {
  case RI_DTYPE_FLOAT32: ((float *)buf)[i] = (float)v; break;
  case RI_DTYPE_FLOAT64: ((double *)buf)[i] = v; break;
  case RI_DTYPE_FLOAT16: ((uint16_t *)buf)[i] = ri__float_to_half((float)v); break;
  case RI_DTYPE_BOOL: ((uint8_t *)buf)[i] = v != 0; break;
  case RI_DTYPE_INT8: ((int8_t *)buf)[i] = (int8_t)v; break;
  case RI_DTYPE_UINT8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
  case RI_DTYPE_INT16: ((int16_t *)buf)[i] = (int16_t)v; break;
  case RI_DTYPE_UINT16: ((uint16_t *)buf)[i] = (uint16_t)v; break;
  case RI_DTYPE_INT32: ((int32_t *)buf)[i] = (int32_t)v; break;
  case RI_DTYPE_UINT32: ((uint32_t *)buf)[i] = (uint32_t)v; break;
  case RI_DTYPE_INT64: ((int64_t *)buf)[i] = (int64_t)v; break;
  case RI_DTYPE_UINT64: ((uint64_t *)buf)[i] = (uint64_t)v; break;
  default: break;
  }
}

static double get(const ri__tensor *t, int64_t i) {
  if (t->dtype == RI_DTYPE_FLOAT16) return ri__half_to_float(((const uint16_t *)t->data)[i]);
  return ri__tensor_get_double(t, i);
}

static int is_signed_like(ri_dtype t) {
  return t == RI_DTYPE_FLOAT32 || t == RI_DTYPE_FLOAT64 || t == RI_DTYPE_FLOAT16 || t == RI_DTYPE_INT8 ||
         t == RI_DTYPE_INT16 || t == RI_DTYPE_INT32 || t == RI_DTYPE_INT64;
}

/* Runs one Cast of a few elements; returns the output tensor (caller frees with h_free). */
static ri_status cast_run(harness *h, ri_dtype from, ri_dtype to, const void *data, int64_t n) {
  h_init(h, RI__OP_Cast, 19);
  h_in(h, from, SHAPE(n), data, 0);
  h_int(h, "to", to);
  return h_run(h);
}

static void test_cast(void) {
  const ri_dtype all[] = {RI_DTYPE_FLOAT32, RI_DTYPE_FLOAT16, RI_DTYPE_FLOAT64, RI_DTYPE_INT8,
                          RI_DTYPE_UINT8,   RI_DTYPE_INT16,   RI_DTYPE_INT32,   RI_DTYPE_INT64,
                          RI_DTYPE_BOOL,    RI_DTYPE_UINT16,  RI_DTYPE_UINT32,  RI_DTYPE_UINT64};
  const int na = (int)(sizeof all / sizeof all[0]);
  /* every pair, on values every type holds */
  for (int s = 0; s < na; s++) {
    for (int d = 0; d < na; d++) {
      double vals[8] = {0, 1, 2, 7, 100, -1, -7, -100};
      int nv = 5;
      if (is_signed_like(all[s]) && is_signed_like(all[d])) nv = 8;
      if (all[s] == RI_DTYPE_BOOL) nv = 2;
      uint64_t buf[8];
      for (int i = 0; i < nv; i++)
        put(all[s], buf, i, vals[i]);
      harness h;
      ri_status st = cast_run(&h, all[s], all[d], buf, nv);
      CHECK_MSG(st == RI_OK && h.out[0].dtype == all[d], "%s -> %s: %s", ri_dtype_name(all[s]),
                ri_dtype_name(all[d]), h.err.msg);
      for (int i = 0; st == RI_OK && i < nv; i++) {
        double e = all[d] == RI_DTYPE_BOOL ? (vals[i] != 0) : vals[i];
        double got = get(&h.out[0], i);
        CHECK_MSG(got == e, "%s -> %s: %g gave %g", ri_dtype_name(all[s]), ri_dtype_name(all[d]), vals[i],
                  got);
      }
      h_free(&h);
    }
  }
  harness h;
  /* float -> integer truncates toward zero; out-of-range wraps after truncation; NaN -> 0 */
  {
    float x[] = {2.7f, -2.7f, 0.999f, -0.999f, 300.f, -1.f, NAN, 255.9f};
    CHECK(cast_run(&h, RI_DTYPE_FLOAT32, RI_DTYPE_INT32, x, 8) == RI_OK);
    const int32_t *y = h.out[0].data;
    CHECK(y[0] == 2 && y[1] == -2 && y[2] == 0 && y[3] == 0 && y[4] == 300 && y[5] == -1 && y[6] == 0 &&
          y[7] == 255);
    h_free(&h);
    CHECK(cast_run(&h, RI_DTYPE_FLOAT32, RI_DTYPE_UINT8, x, 8) == RI_OK);
    const uint8_t *u = h.out[0].data;
    CHECK(u[0] == 2 && u[4] == (uint8_t)(300 % 256) && u[5] == 255 && u[6] == 0 && u[7] == 255);
    h_free(&h);
  }
  /* NaN -> 0 and saturation at the int64 range */
  {
    float x[] = {NAN, -NAN, 1e30f, -1e30f};
    CHECK(cast_run(&h, RI_DTYPE_FLOAT32, RI_DTYPE_INT64, x, 4) == RI_OK);
    const int64_t *y = h.out[0].data;
    CHECK(y[0] == 0 && y[1] == 0 && y[2] == INT64_MAX && y[3] == INT64_MIN);
    h_free(&h);
  }
  /* to bool: NaN and -0 */
  {
    float x[] = {0.f, -0.f, 0.1f, NAN, -3.f};
    CHECK(cast_run(&h, RI_DTYPE_FLOAT32, RI_DTYPE_BOOL, x, 5) == RI_OK);
    const uint8_t *y = h.out[0].data;
    CHECK(y[0] == 0 && y[1] == 0 && y[2] == 1 && y[3] == 1 && y[4] == 1);
    h_free(&h);
  }
  /* float16 rounding, wide integers to float */
  {
    float x[] = {65520.f, 1.f / 3.f, 0x1p-25f, 0x1.8p-24f};
    CHECK(cast_run(&h, RI_DTYPE_FLOAT32, RI_DTYPE_FLOAT16, x, 4) == RI_OK);
    const uint16_t *y = h.out[0].data;
    for (int i = 0; i < 4; i++)
      CHECK(y[i] == ri__float_to_half(x[i]));
    CHECK(y[0] == 0x7c00);
    h_free(&h);
    int64_t w[] = {((int64_t)1 << 53) + 1, INT64_MIN, INT64_MAX, -((int64_t)1 << 40) - 3};
    CHECK(cast_run(&h, RI_DTYPE_INT64, RI_DTYPE_FLOAT32, w, 4) == RI_OK);
    const float *f = h.out[0].data;
    for (int i = 0; i < 4; i++)
      CHECK(f[i] == (float)w[i]);
    h_free(&h);
    uint64_t uw[] = {UINT64_MAX, (uint64_t)1 << 63};
    CHECK(cast_run(&h, RI_DTYPE_UINT64, RI_DTYPE_FLOAT64, uw, 2) == RI_OK);
    const double *dd = h.out[0].data;
    CHECK(dd[0] == (double)UINT64_MAX && dd[1] == 0x1p63);
    h_free(&h);
    float big[] = {1e19f, 0x1p63f};
    CHECK(cast_run(&h, RI_DTYPE_FLOAT32, RI_DTYPE_UINT64, big, 2) == RI_OK);
    const uint64_t *ub = h.out[0].data;
    CHECK(ub[0] == (uint64_t)1e19f && ub[1] == (uint64_t)1 << 63);
    h_free(&h);
    double dv[] = {0.1, 1e300};
    CHECK(cast_run(&h, RI_DTYPE_FLOAT64, RI_DTYPE_FLOAT32, dv, 2) == RI_OK);
    f = h.out[0].data;
    CHECK(f[0] == (float)0.1 && isinf(f[1]));
    h_free(&h);
  }
  /* unsupported targets and a missing 'to' */
  {
    float x[1] = {0};
    h_init(&h, RI__OP_Cast, 19);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1), x, 0);
    h_int(&h, "to", 8);
    EXPECT_FAIL(&h, RI_ERR_UNSUPPORTED, 1, "8");
    h_init(&h, RI__OP_Cast, 19);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1), x, 0);
    h_int(&h, "to", 16);
    EXPECT_FAIL(&h, RI_ERR_UNSUPPORTED, 1, "16");
    h_init(&h, RI__OP_Cast, 19);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1), x, 0);
    EXPECT_FAIL(&h, RI_ERR_PARSE, 1, "'to'");
  }
}

/* ---- Concat ----------------------------------------------------------------------------------------------
 */

static void test_concat(void) {
  /* int16 along axis -2 of rank 3, one input empty along the axis */
  int16_t a[2 * 3 * 4], c[2 * 2 * 4];
  for (int i = 0; i < 24; i++)
    a[i] = (int16_t)(i + 1);
  for (int i = 0; i < 16; i++)
    c[i] = (int16_t)(-i - 1);
  int16_t dummy = 0;
  ri__shape sa = SHAPE(2, 3, 4), sb = SHAPE(2, 0, 4), sc = SHAPE(2, 2, 4);
  harness h;
  h_init(&h, RI__OP_Concat, 13);
  h_in(&h, RI_DTYPE_INT16, sa, a, 0);
  h_in(&h, RI_DTYPE_INT16, sb, &dummy, 0);
  h_in(&h, RI_DTYPE_INT16, sc, c, 0);
  h_int(&h, "axis", -2);
  CHECK_MSG(h_run(&h) == RI_OK, "%s", h.err.msg);
  ri__shape so = SHAPE(2, 5, 4);
  CHECK(ri__shape_equal(&h.out[0].shape, &so));
  const int16_t *y = h.out[0].data;
  int bad = 0;
  for (int64_t i = 0; y && i < 40; i++) {
    int64_t co[3];
    unravel(&so, i, co);
    int16_t e = co[1] < 3 ? a[ravel(&sa, co)] : c[ravel(&sc, (int64_t[]){co[0], co[1] - 3, co[2]})];
    bad += y[i] != e;
  }
  CHECK(bad == 0);
  h_free(&h);
  /* errors: mismatched dims, missing axis, axis out of range */
  h_init(&h, RI__OP_Concat, 13);
  h_in(&h, RI_DTYPE_INT16, sa, a, 0);
  h_in(&h, RI_DTYPE_INT16, SHAPE(2, 3, 5), a, 0);
  h_int(&h, "axis", 1);
  EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "input 1");
  h_init(&h, RI__OP_Concat, 13);
  h_in(&h, RI_DTYPE_INT16, sa, a, 0);
  EXPECT_FAIL(&h, RI_ERR_PARSE, 1, "axis");
  h_init(&h, RI__OP_Concat, 13);
  h_in(&h, RI_DTYPE_INT16, sa, a, 0);
  h_int(&h, "axis", 3);
  EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "axis 3");
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze, Identity ---------------------------------------------------- */

static void expect_shape(harness *h, ri__shape want, const void *data, size_t bytes, int line) {
  ri_status st = h_run(h);
  char a[160], b[160];
  CHECK_MSG(st == RI_OK, "line %d: %s", line, h->err.msg);
  CHECK_MSG(st != RI_OK || ri__shape_equal(&h->out[0].shape, &want), "line %d: got %s want %s", line,
            ri__shape_str(&h->out[0].shape, a, sizeof a), ri__shape_str(&want, b, sizeof b));
  CHECK_MSG(st != RI_OK || memcmp(h->out[0].data, data, bytes) == 0, "line %d: bytes changed", line);
  h_free(h);
}
#define EXPECT_SHAPE(h, want, data, bytes) expect_shape(h, want, data, bytes, __LINE__)

static void test_reshape_family(void) {
  float x[24];
  for (int i = 0; i < 24; i++)
    x[i] = (float)i * 1.5f;
  harness h;
  struct {
    int n;
    int64_t v[4];
    int allowzero;
    ri__shape want;
  } ok[] = {
      {2, {0, -1}, 0, SHAPE(2, 12)},
      {3, {4, -1, 2}, 0, SHAPE(4, 3, 2)},
      {1, {-1}, 0, SHAPE(24)},
      {4, {1, 2, 12, 1}, 0, SHAPE(1, 2, 12, 1)},
      {3, {0, 0, -1}, 0, SHAPE(2, 3, 4)},
      {3, {2, 3, 4}, 1, SHAPE(2, 3, 4)},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    h_init(&h, RI__OP_Reshape, 14);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(2, 3, 4), x, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(ok[i].n), ok[i].v, 1);
    if (ok[i].allowzero) h_int(&h, "allowzero", 1);
    EXPECT_SHAPE(&h, ok[i].want, x, sizeof x);
  }
  /* allowzero: a literal 0 on an empty tensor */
  {
    int64_t v[2] = {0, 5};
    h_init(&h, RI__OP_Reshape, 14);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(5, 0), x, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), v, 1);
    h_int(&h, "allowzero", 1);
    EXPECT_SHAPE(&h, SHAPE(0, 5), x, 0);
  }
  struct {
    int n;
    int64_t v[4];
    int allowzero;
    ri_status st;
    const char *needle;
  } bad[] = {
      {2, {-1, -1}, 0, RI_ERR_SHAPE, "more than one -1"}, {2, {5, -1}, 0, RI_ERR_SHAPE, "-1"},
      {2, {7, 3}, 0, RI_ERR_SHAPE, "cannot reshape"},     {2, {0, -1}, 1, RI_ERR_SHAPE, "allowzero"},
      {2, {-2, 12}, 0, RI_ERR_SHAPE, "negative"},         {4, {0, 0, 0, 0}, 0, RI_ERR_SHAPE, "rank 3"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    h_init(&h, RI__OP_Reshape, 14);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(2, 3, 4), x, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(bad[i].n), bad[i].v, 1);
    if (bad[i].allowzero) h_int(&h, "allowzero", 1);
    EXPECT_FAIL(&h, bad[i].st, 2, bad[i].needle);
  }
  {
    int64_t v[2] = {6, 4};
    h_init(&h, RI__OP_Reshape, 14);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(2, 3, 4), x, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), v, 0); /* known only at run time */
    EXPECT_FAIL(&h, RI_ERR_UNSUPPORTED, 2,
                "shape input of Reshape 'n1' is computed at run time from tensor data");
  }
  /* Flatten */
  struct {
    int64_t axis;
    ri__shape want;
  } fl[] = {
      {0, SHAPE(1, 24)}, {1, SHAPE(2, 12)}, {2, SHAPE(6, 4)},
      {3, SHAPE(24, 1)}, {-1, SHAPE(6, 4)}, {-3, SHAPE(1, 24)},
  };
  for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) {
    h_init(&h, RI__OP_Flatten, 13);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(2, 3, 4), x, 0);
    h_int(&h, "axis", fl[i].axis);
    EXPECT_SHAPE(&h, fl[i].want, x, sizeof x);
  }
  h_init(&h, RI__OP_Flatten, 13);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(2, 3, 4), x, 0);
  h_int(&h, "axis", 4);
  EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "axis 4");
  /* Squeeze: attribute form (opset 11), input form (opset 13), no axes */
  h_init(&h, RI__OP_Squeeze, 11);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 6, 1, 4), x, 0);
  h_ints(&h, "axes", 1, (int64_t[]){-2});
  EXPECT_SHAPE(&h, SHAPE(1, 6, 4), x, sizeof x);
  {
    int64_t ax[2] = {0, 2};
    h_init(&h, RI__OP_Squeeze, 13);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 6, 1, 4), x, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), ax, 1);
    EXPECT_SHAPE(&h, SHAPE(6, 4), x, sizeof x);
    h_init(&h, RI__OP_Squeeze, 13);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 6, 1, 4, 1), x, 0);
    EXPECT_SHAPE(&h, SHAPE(6, 4), x, sizeof x);
    h_init(&h, RI__OP_Squeeze, 13);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 6, 1, 4), x, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), (int64_t[]){1, 2}, 1);
    EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "axis 1 has size 6");
    h_init(&h, RI__OP_Squeeze, 13);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 6, 1, 4), x, 0);
    h_ints(&h, "axes", 1, (int64_t[]){0});
    EXPECT_FAIL(&h, RI_ERR_PARSE, 1, "opset 13");
    h_init(&h, RI__OP_Squeeze, 13);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1, 6, 1, 4), x, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(1), ax, 0);
    EXPECT_FAIL(&h, RI_ERR_UNSUPPORTED, 2, "axes input of Squeeze 'n1'");
  }
  /* Unsqueeze */
  h_init(&h, RI__OP_Unsqueeze, 11);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(6, 4), x, 0);
  h_ints(&h, "axes", 2, (int64_t[]){0, -1});
  EXPECT_SHAPE(&h, SHAPE(1, 6, 4, 1), x, sizeof x);
  h_init(&h, RI__OP_Unsqueeze, 13);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(6, 4), x, 0);
  h_in(&h, RI_DTYPE_INT64, SHAPE(2), (int64_t[]){3, 1}, 1);
  EXPECT_SHAPE(&h, SHAPE(6, 1, 4, 1), x, sizeof x);
  h_init(&h, RI__OP_Unsqueeze, 13);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(6, 4), x, 0);
  h_in(&h, RI_DTYPE_INT64, SHAPE(2), (int64_t[]){1, -3}, 1);
  EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "twice");
  h_init(&h, RI__OP_Unsqueeze, 13);
  h_in(&h, RI_DTYPE_FLOAT32, SHAPE(6, 4), x, 0);
  EXPECT_FAIL(&h, RI_ERR_PARSE, 1, "axes");
  /* Identity of any dtype */
  h_init(&h, RI__OP_Identity, 13);
  h_in(&h, RI_DTYPE_UINT16, SHAPE(3, 4), x, 0);
  EXPECT_SHAPE(&h, SHAPE(3, 4), x, 24);
}

/* ---- Transpose -------------------------------------------------------------------------------------------
 */

static void test_transpose(ri__pool *pool) {
  const int64_t perms[][4] = {{0, 2, 3, 1}, {0, 3, 1, 2}, {3, 2, 1, 0},
                              {1, 0, 2, 3}, {0, 1, 2, 3}, {2, 0, 3, 1}};
  ri__shape s = SHAPE(2, 3, 4, 5);
  int64_t n = ri__shape_numel(&s);
  float *x = rand_floats(n, -1.f, 1.f);
  uint8_t xb[120];
  for (int i = 0; i < 120; i++)
    xb[i] = (uint8_t)(i * 7);
  for (int p = 0; p < 7; p++) {
    for (int bytes = 0; bytes < 2; bytes++) {
      harness h;
      h_init(&h, RI__OP_Transpose, 13);
      h.pool = pool;
      h_in(&h, bytes ? RI_DTYPE_UINT8 : RI_DTYPE_FLOAT32, s, bytes ? (void *)xb : (void *)x, 0);
      int64_t perm[4];
      for (int k = 0; k < 4; k++)
        perm[k] = p < 6 ? perms[p][k] : 3 - k; /* p == 6: default (reversed) */
      if (p < 6) h_ints(&h, "perm", 4, perm);
      CHECK_MSG(h_run(&h) == RI_OK, "%s", h.err.msg);
      ri__shape so = {.rank = 4};
      for (int k = 0; k < 4; k++)
        so.dims[k] = s.dims[perm[k]];
      CHECK(ri__shape_equal(&h.out[0].shape, &so));
      int bad = 0;
      for (int64_t i = 0; h.out[0].data && i < n; i++) {
        int64_t co[4], ci[4];
        unravel(&so, i, co);
        for (int k = 0; k < 4; k++)
          ci[perm[k]] = co[k];
        if (bytes)
          bad += ((uint8_t *)h.out[0].data)[i] != xb[ravel(&s, ci)];
        else
          bad += ((float *)h.out[0].data)[i] != x[ravel(&s, ci)];
      }
      CHECK_MSG(bad == 0, "perm %d bytes %d: %d wrong", p, bytes, bad);
      h_free(&h);
    }
  }
  harness h;
  h_init(&h, RI__OP_Transpose, 13);
  h_in(&h, RI_DTYPE_FLOAT32, s, x, 0);
  h_ints(&h, "perm", 4, (int64_t[]){0, 0, 1, 2});
  EXPECT_FAIL(&h, RI_ERR_PARSE, 1, "permutation");
  h_init(&h, RI__OP_Transpose, 13);
  h_in(&h, RI_DTYPE_FLOAT32, s, x, 0);
  h_ints(&h, "perm", 3, (int64_t[]){0, 2, 1});
  EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "rank 4");
  h_init(&h, RI__OP_Transpose, 13);
  h_in(&h, RI_DTYPE_FLOAT32, s, x, 0);
  h_ints(&h, "perm", 4, (int64_t[]){0, 1, 2, -1});
  EXPECT_FAIL(&h, RI_ERR_PARSE, 1, "permutation");
  ri__free(x);
}

/* ---- Slice -----------------------------------------------------------------------------------------------
 */

static void test_slice(void) {
  int32_t x[10];
  for (int i = 0; i < 10; i++)
    x[i] = i * 10;
  /* expected element indices from numpy's a[start:end:step] on arange(10) */
  struct {
    int64_t s, e, st;
    int n;
    int idx[10];
  } cases[] = {
      {20, -20, -1, 10, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
      {-1, -11, -1, 10, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
      {-1, -12, -2, 5, {9, 7, 5, 3, 1}},
      {8, 2, -3, 2, {8, 5}},
      {-100, 100, 3, 4, {0, 3, 6, 9}},
      {3, 3, 1, 0, {0}},
      {5, 1, 1, 0, {0}},
      {9, -100, -4, 3, {9, 5, 1}},
      {-3, 100, 1, 3, {7, 8, 9}},
      {0, 10, 100, 1, {0}},
      {9, 0, -1000, 1, {9}},
      {INT64_MAX, INT64_MIN, -1, 10, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
      {INT64_MIN, INT64_MAX, INT64_MAX, 1, {0}},
      {INT64_MAX, INT64_MIN, INT64_MIN, 1, {9}},
      {2, 7, 2, 3, {2, 4, 6}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    for (int with_axes = 0; with_axes < 2; with_axes++) {
      harness h;
      int64_t axes[1] = {-1};
      int32_t s32 = (int32_t)(cases[c].s > INT32_MAX   ? INT32_MAX
                              : cases[c].s < INT32_MIN ? INT32_MIN
                                                       : cases[c].s);
      h_init(&h, RI__OP_Slice, 13);
      h_in(&h, RI_DTYPE_INT32, SHAPE(10), x, 0);
      if (with_axes) /* also exercise int32 starts */
        h_in(&h, RI_DTYPE_INT32, SHAPE(1), &s32, 1);
      else
        h_in(&h, RI_DTYPE_INT64, SHAPE(1), &cases[c].s, 1);
      h_in(&h, RI_DTYPE_INT64, SHAPE(1), &cases[c].e, 1);
      if (with_axes)
        h_in(&h, RI_DTYPE_INT64, SHAPE(1), axes, 1);
      else
        h_absent(&h);
      h_in(&h, RI_DTYPE_INT64, SHAPE(1), &cases[c].st, 1);
      ri_status st = h_run(&h);
      CHECK_MSG(st == RI_OK, "case %zu: %s", c, h.err.msg);
      CHECK_MSG(st != RI_OK || (h.out[0].shape.rank == 1 && h.out[0].shape.dims[0] == cases[c].n),
                "case %zu: %lld elements, want %d", c, (long long)h.out[0].shape.dims[0], cases[c].n);
      for (int i = 0; st == RI_OK && i < cases[c].n && i < h.out[0].shape.dims[0]; i++)
        CHECK_MSG(((int32_t *)h.out[0].data)[i] == x[cases[c].idx[i]], "case %zu element %d", c, i);
      h_free(&h);
    }
  }
  /* 3-D: axes out of order, one negative step, the middle axis untouched; expected from coordinates. */
  {
    ri__shape s = SHAPE(4, 5, 6);
    float *d = rand_floats(120, -1.f, 1.f);
    int64_t starts[2] = {-1, 1}, ends[2] = {0, 100}, axes[2] = {2, 0}, steps[2] = {-2, 2};
    harness h;
    h_init(&h, RI__OP_Slice, 13);
    h_in(&h, RI_DTYPE_FLOAT32, s, d, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), starts, 1);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), ends, 1);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), axes, 1);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), steps, 1);
    CHECK_MSG(h_run(&h) == RI_OK, "%s", h.err.msg);
    ri__shape so = SHAPE(2, 5, 3); /* axis 0: 1,3; axis 2: 5,3,1 */
    CHECK(ri__shape_equal(&h.out[0].shape, &so));
    int bad = 0;
    for (int64_t i = 0; h.out[0].data && i < 30; i++) {
      int64_t co[3];
      unravel(&so, i, co);
      int64_t ci[3] = {1 + 2 * co[0], co[1], 5 - 2 * co[2]};
      bad += ((float *)h.out[0].data)[i] != d[ravel(&s, ci)];
    }
    CHECK(bad == 0);
    h_free(&h);
    /* errors: zero step, repeated axis, length mismatch, starts known only at run time */
    int64_t z[2] = {0, 1}, rep[2] = {0, -3}, one[1] = {0};
    h_init(&h, RI__OP_Slice, 13);
    h_in(&h, RI_DTYPE_FLOAT32, s, d, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), starts, 1);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), ends, 1);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), axes, 1);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), z, 1);
    EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "step");
    h_init(&h, RI__OP_Slice, 13);
    h_in(&h, RI_DTYPE_FLOAT32, s, d, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), starts, 1);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), ends, 1);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), rep, 1);
    EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "twice");
    h_init(&h, RI__OP_Slice, 13);
    h_in(&h, RI_DTYPE_FLOAT32, s, d, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), starts, 1);
    h_in(&h, RI_DTYPE_INT64, SHAPE(1), one, 1);
    EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "ends");
    h_init(&h, RI__OP_Slice, 13);
    h_in(&h, RI_DTYPE_FLOAT32, s, d, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), starts, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), ends, 1);
    EXPECT_FAIL(&h, RI_ERR_UNSUPPORTED, 2, "run time");
    ri__free(d);
  }
}

/* ---- Gather ----------------------------------------------------------------------------------------------
 */

static void test_gather(void) {
  ri__shape sd = SHAPE(3, 4, 5);
  float *d = rand_floats(60, -1.f, 1.f);
  int64_t idx64[4] = {0, -1, 2, 1};
  int32_t idx32[4] = {2, 0, -3, 1}; /* valid for every axis */
  for (int axis = -3; axis < 3; axis++) {
    for (int i32 = 0; i32 < 2; i32++) {
      int ax = axis < 0 ? axis + 3 : axis;
      harness h;
      h_init(&h, RI__OP_Gather, 13);
      h_in(&h, RI_DTYPE_FLOAT32, sd, d, 0);
      if (i32) {
        h_in(&h, RI_DTYPE_INT32, SHAPE(2, 2), idx32, 0);
      } else {
        h_in(&h, RI_DTYPE_INT64, SHAPE(2, 2), idx64, 0);
      }
      h_int(&h, "axis", axis);
      CHECK_MSG(h_run(&h) == RI_OK, "%s", h.err.msg);
      ri__shape so = {.rank = 4};
      for (int k = 0, j = 0; k < 3; k++) {
        if (k == ax) {
          so.dims[j++] = 2;
          so.dims[j++] = 2;
        } else {
          so.dims[j++] = sd.dims[k];
        }
      }
      CHECK(ri__shape_equal(&h.out[0].shape, &so));
      int bad = 0;
      for (int64_t i = 0; h.out[0].data && i < ri__shape_numel(&so); i++) {
        int64_t co[4], ci[3];
        unravel(&so, i, co);
        int64_t q = co[ax] * 2 + co[ax + 1];
        int64_t v = i32 ? idx32[q] : idx64[q];
        if (v < 0) v += sd.dims[ax];
        for (int k = 0, j = 0; k < 3; k++) {
          if (k == ax) {
            ci[k] = v;
            j += 2;
          } else {
            ci[k] = co[j++];
          }
        }
        bad += ((float *)h.out[0].data)[i] != d[ravel(&sd, ci)];
      }
      CHECK_MSG(bad == 0, "axis %d i32 %d: %d wrong", axis, i32, bad);
      h_free(&h);
    }
  }
  /* scalar index drops the axis */
  {
    int64_t one = -2;
    harness h;
    h_init(&h, RI__OP_Gather, 13);
    h_in(&h, RI_DTYPE_FLOAT32, sd, d, 0);
    h_in(&h, RI_DTYPE_INT64, k_scalar, &one, 1);
    h_int(&h, "axis", 1);
    CHECK(h_run(&h) == RI_OK && ri__shape_equal(&h.out[0].shape, &SHAPE(3, 5)));
    for (int i = 0; h.out[0].data && i < 15; i++)
      CHECK(((float *)h.out[0].data)[i] == d[(i / 5) * 20 + 2 * 5 + i % 5]);
    h_free(&h);
  }
  /* out of range: at run time (clear error, nothing read out of bounds) and when known at infer time */
  {
    int64_t bad_idx[3] = {0, 4, 1};
    harness h;
    h_init(&h, RI__OP_Gather, 13);
    h_in(&h, RI_DTYPE_FLOAT32, sd, d, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(3), bad_idx, 0);
    h_int(&h, "axis", 1);
    EXPECT_FAIL(&h, RI_ERR_INVALID_ARG, 3, "index 4");
    int32_t neg[1] = {-5};
    h_init(&h, RI__OP_Gather, 13);
    h_in(&h, RI_DTYPE_FLOAT32, sd, d, 0);
    h_in(&h, RI_DTYPE_INT32, SHAPE(1), neg, 0);
    h_int(&h, "axis", 1);
    EXPECT_FAIL(&h, RI_ERR_INVALID_ARG, 3, "-5");
    h_init(&h, RI__OP_Gather, 13);
    h_in(&h, RI_DTYPE_FLOAT32, sd, d, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(3), bad_idx, 1);
    h_int(&h, "axis", 1);
    EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "index 4");
    float fi[1] = {0};
    h_init(&h, RI__OP_Gather, 13);
    h_in(&h, RI_DTYPE_FLOAT32, sd, d, 0);
    h_in(&h, RI_DTYPE_FLOAT32, SHAPE(1), fi, 0);
    EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "indices");
  }
  ri__free(d);
}

/* ---- Shape, Constant, Tile ------------------------------------------------------------------------------
 */

static void test_shape_const_tile(void) {
  float x[1] = {0};
  ri__shape s = SHAPE(2, 3, 4, 5);
  struct {
    int has_s, has_e;
    int64_t s, e;
    int from, to;
  } cases[] = {
      {0, 0, 0, 0, 0, 4},   {1, 0, 1, 0, 1, 4}, {0, 1, 0, -1, 0, 3},  {1, 1, -3, -1, 1, 3},
      {1, 0, -10, 0, 0, 4}, {1, 1, 3, 1, 3, 3}, {1, 1, 2, 100, 2, 4}, {1, 0, 7, 0, 4, 4},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    harness h;
    h_init(&h, RI__OP_Shape, 15);
    h_in(&h, RI_DTYPE_FLOAT32, s, x, 0);
    if (cases[c].has_s) h_int(&h, "start", cases[c].s);
    if (cases[c].has_e) h_int(&h, "end", cases[c].e);
    ri_status st = h_run(&h);
    CHECK_MSG(st == RI_OK, "%s", h.err.msg);
    int len = cases[c].to - cases[c].from;
    CHECK_MSG(st == RI_OK && h.out[0].dtype == RI_DTYPE_INT64 && h.out[0].shape.rank == 1 &&
                  h.out[0].shape.dims[0] == len,
              "case %zu", c);
    for (int i = 0; st == RI_OK && i < len; i++)
      CHECK(((int64_t *)h.out[0].data)[i] == s.dims[cases[c].from + i]);
    h_free(&h);
  }
  harness h;
  h_init(&h, RI__OP_Shape, 13);
  h_in(&h, RI_DTYPE_FLOAT32, s, x, 0);
  h_int(&h, "start", 1);
  EXPECT_FAIL(&h, RI_ERR_UNSUPPORTED, 1, "start");

  /* Constant from a tensor attribute, from value_ints and from value_float */
  {
    h_init(&h, RI__OP_Constant, 13);
    int16_t *v = ri__malloc(6 * sizeof(int16_t));
    for (int i = 0; i < 6; i++)
      v[i] = (int16_t)(i * i - 3);
    int cv = ri__graph_add_const(h.g, "cv", RI_DTYPE_INT16, &SHAPE(2, 3), v, 6 * sizeof(int16_t));
    ri__attr *a = &h.attrs[h.n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = ri__strdup("value");
    a->type = RI__ATTR_TENSOR;
    a->value = cv;
    CHECK_MSG(h_run(&h) == RI_OK, "%s", h.err.msg);
    CHECK(h.out[0].dtype == RI_DTYPE_INT16 && ri__shape_equal(&h.out[0].shape, &SHAPE(2, 3)));
    for (int i = 0; h.out[0].data && i < 6; i++)
      CHECK(((int16_t *)h.out[0].data)[i] == i * i - 3);
    /* check() runs again after an engine load: it must accept its own output */
    ri__node *n = &h.g->nodes[h.node];
    CHECK(ri__op_get(RI__OP_Constant)->check(h.g, n, &h.err) == RI_OK && n->params != NULL);
    h_free(&h);
    h_init(&h, RI__OP_Constant, 13);
    h_ints(&h, "value_ints", 3, (int64_t[]){5, -6, 7});
    CHECK(h_run(&h) == RI_OK && h.out[0].dtype == RI_DTYPE_INT64 &&
          ri__shape_equal(&h.out[0].shape, &SHAPE(3)));
    CHECK(h.out[0].data && ((int64_t *)h.out[0].data)[1] == -6);
    h_free(&h);
    h_init(&h, RI__OP_Constant, 13);
    h_float(&h, "value_float", 2.5f);
    CHECK(h_run(&h) == RI_OK && h.out[0].dtype == RI_DTYPE_FLOAT32 && h.out[0].shape.rank == 0);
    CHECK(h.out[0].data && ((float *)h.out[0].data)[0] == 2.5f);
    h_free(&h);
    h_init(&h, RI__OP_Constant, 13);
    EXPECT_FAIL(&h, RI_ERR_PARSE, 1, "exactly one");
  }

  /* Tile */
  {
    ri__shape si = SHAPE(2, 3);
    int32_t d[6] = {1, 2, 3, 4, 5, 6};
    int64_t reps[][2] = {{2, 1}, {1, 3}, {3, 2}, {0, 2}, {1, 1}};
    for (int r = 0; r < 5; r++) {
      h_init(&h, RI__OP_Tile, 13);
      h_in(&h, RI_DTYPE_INT32, si, d, 0);
      h_in(&h, RI_DTYPE_INT64, SHAPE(2), reps[r], 1);
      CHECK_MSG(h_run(&h) == RI_OK, "%s", h.err.msg);
      ri__shape so = SHAPE(2 * reps[r][0], 3 * reps[r][1]);
      CHECK(ri__shape_equal(&h.out[0].shape, &so));
      int bad = 0;
      for (int64_t i = 0; i < ri__shape_numel(&so); i++) {
        int64_t co[2];
        unravel(&so, i, co);
        bad += ((int32_t *)h.out[0].data)[i] != d[(co[0] % 2) * 3 + co[1] % 3];
      }
      CHECK(bad == 0);
      h_free(&h);
    }
    h_init(&h, RI__OP_Tile, 13);
    h_in(&h, RI_DTYPE_INT32, si, d, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), reps[0], 0);
    EXPECT_FAIL(&h, RI_ERR_UNSUPPORTED, 2, "repeats input of Tile 'n1'");
    h_init(&h, RI__OP_Tile, 13);
    h_in(&h, RI_DTYPE_INT32, si, d, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(2), (int64_t[]){1, -1}, 1);
    EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "negative");
    h_init(&h, RI__OP_Tile, 13);
    h_in(&h, RI_DTYPE_INT32, si, d, 0);
    h_in(&h, RI_DTYPE_INT64, SHAPE(3), (int64_t[]){1, 1, 1}, 1);
    EXPECT_FAIL(&h, RI_ERR_SHAPE, 2, "length 2");
  }
}

/* Constant's check() allocates its params: every allocation failure must report and leak nothing. */
static void test_alloc_failures(void) {
  for (long fail = 1; fail < 40; fail++) {
    harness h;
    h_init(&h, RI__OP_Constant, 13);
    h_ints(&h, "value_ints", 2, (int64_t[]){1, 2});
    int ids[1];
    ids[0] = ri__graph_add_value(h.g, "y", RI_DTYPE_UNDEFINED, NULL, RI__VAL_ACTIVATION);
    int node = ri__graph_add_node(h.g, "n1", RI__OP_Constant, NULL, 0, ids, 1);
    CHECK(ri__graph_add_attr(h.g, node, &h.attrs[0], &h.err) == RI_OK);
    h.n_attrs = 0;
    ri__alloc_fail_after(fail);
    ri_status st = ri__op_get(RI__OP_Constant)->check(h.g, &h.g->nodes[node], &h.err);
    ri__alloc_fail_after(0);
    h_free(&h);
    if (st == RI_OK) break;
    CHECK(st == RI_ERR_NO_MEMORY);
  }
}

int main(void) {
  long live0 = ri__alloc_live();
  ri__pool *pool = ri__pool_create(2);
  test_half();
  test_broadcast_shapes();
  test_binary_float(NULL);
  test_binary_float(pool);
  test_binary_int();
  test_unary(pool);
  test_quantize();
  test_dequantize();
  test_cast();
  test_concat();
  test_reshape_family();
  test_transpose(pool);
  test_slice();
  test_gather();
  test_shape_const_tile();
  test_alloc_failures();
  ri__pool_destroy(pool);
  CHECK_MSG(ri__alloc_live() == live0, "%ld allocations leaked", ri__alloc_live() - live0);
  return test_done("test_ops_family_b");
}
