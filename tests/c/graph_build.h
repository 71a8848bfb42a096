/* Building internal graphs by hand in the C tests (test_passes.c, test_cpu_fast.c).
 *
 * Every builder returns the new value or node index, or -1 when an allocation fails or an argument is
 * already -1, so that a chain of calls under the allocation-failure sweeps fails cleanly: the graph keeps
 * whatever was added and ri__graph_destroy frees it. Constants take ownership of their data through
 * ri__graph_add_const. Random values come from one linear congruential generator per test executable,
 * seeded with GB_SEED (define it before including this header to get another sequence). */
#ifndef RI_TESTS_GRAPH_BUILD_H
#define RI_TESTS_GRAPH_BUILD_H

#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "graph/ir.h"

#ifndef GB_SEED
#define GB_SEED 12345u
#endif

static inline ri__shape mkshape(int rank, const int64_t *dims) {
  ri__shape s;
  memset(&s, 0, sizeof s);
  s.rank = rank;
  for (int i = 0; i < rank; i++)
    s.dims[i] = dims[i];
  return s;
}
#define SHAPE(...)                                                                                           \
  mkshape((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define SCALAR   mkshape(0, NULL)
#define IDX(...) (int[]){__VA_ARGS__}, (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int))
#define I64S(...)                                                                                            \
  (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]) { __VA_ARGS__ }

static inline ri__graph *gnew(void) {
  ri__graph *g = ri__graph_create();
  if (g) g->opset = 13;
  return g;
}

static inline int gb_append(int **arr, int *n, int v) {
  int *p = ri__realloc(*arr, (size_t)(*n + 1) * sizeof(int));
  if (!p) return -1;
  p[(*n)++] = v;
  *arr = p;
  return v;
}

/* A float32 graph input; batch_axis 0 makes dims[0] the batch, -1 makes it batch-independent. */
static inline int input(ri__graph *g, const char *name, ri__shape s, int batch_axis) {
  int v = ri__graph_add_value(g, name, RI_DTYPE_FLOAT32, &s, RI__VAL_INPUT);
  if (v < 0) return -1;
  g->values[v].batch_axis = batch_axis;
  return gb_append(&g->inputs, &g->n_inputs, v);
}

static inline int output(ri__graph *g, int v) {
  if (v < 0) return -1;
  g->values[v].is_output = 1;
  return gb_append(&g->outputs, &g->n_outputs, v);
}

static inline int act(ri__graph *g, const char *name) {
  return ri__graph_add_value(g, name, RI_DTYPE_UNDEFINED, NULL, RI__VAL_ACTIVATION);
}

static uint32_t gb_seed = GB_SEED;
/* Uniform in [-1, 1). */
static inline float frand(void) {
  gb_seed = gb_seed * 1664525u + 1013904223u;
  return (float)((gb_seed >> 8) & 0xffff) / 32768.f - 1.f;
}

/* A float32 constant of the given values, or of random ones in [-scale, scale) + offset when vals is NULL. */
static inline int cf32(ri__graph *g, const char *name, ri__shape s, const float *vals, float scale,
                       float offset) {
  int64_t n = ri__shape_numel(&s);
  float *d = ri__malloc((size_t)(n ? n : 1) * sizeof(float));
  if (!d) return -1;
  for (int64_t i = 0; i < n; i++)
    d[i] = vals ? vals[i] : scale * frand() + offset;
  return ri__graph_add_const(g, name, RI_DTYPE_FLOAT32, &s, d, (size_t)n * sizeof(float));
}

static inline int ci64(ri__graph *g, const char *name, ri__shape s, const int64_t *vals) {
  int64_t n = ri__shape_numel(&s);
  int64_t *d = ri__malloc((size_t)(n ? n : 1) * sizeof(int64_t));
  if (!d) return -1;
  memcpy(d, vals, (size_t)n * sizeof(int64_t));
  return ri__graph_add_const(g, name, RI_DTYPE_INT64, &s, d, (size_t)n * sizeof(int64_t));
}

/* A node; an input of -1 is an omitted optional input, anything below fails. */
static inline int node(ri__graph *g, const char *name, ri__op op, const int *in, int nin, const int *out,
                       int nout) {
  for (int i = 0; i < nin; i++)
    if (in[i] < -1) return -1;
  for (int i = 0; i < nout; i++)
    if (out[i] < 0) return -1;
  return ri__graph_add_node(g, name, op, in, nin, out, nout);
}

/* Attributes: 0 when added, 1 when skipped because the node index is already -1 (the failure was counted
 * where it happened), -1 when an allocation fails. The attribute's heap members are freed in every case
 * but success. */
static inline int gb_attr(ri__graph *g, int ni, ri__attr *a, const char *name) {
  if (ni < 0) {
    ri__attr_free(a);
    return 1;
  }
  a->name = ri__strdup(name);
  if (!a->name) {
    ri__attr_free(a);
    return -1;
  }
  return ri__graph_add_attr(g, ni, a, NULL) == RI_OK ? 0 : -1;
}

static inline int attr_int(ri__graph *g, int ni, const char *name, int64_t v) {
  ri__attr a;
  memset(&a, 0, sizeof a);
  a.type = RI__ATTR_INT;
  a.i = v;
  return gb_attr(g, ni, &a, name);
}

static inline int attr_float(ri__graph *g, int ni, const char *name, float v) {
  ri__attr a;
  memset(&a, 0, sizeof a);
  a.type = RI__ATTR_FLOAT;
  a.f = v;
  return gb_attr(g, ni, &a, name);
}

static inline int attr_str(ri__graph *g, int ni, const char *name, const char *v) {
  ri__attr a;
  memset(&a, 0, sizeof a);
  a.type = RI__ATTR_STRING;
  a.s = ri__strdup(v);
  if (!a.s) {
    ri__attr_free(&a);
    return ni < 0 ? 1 : -1;
  }
  return gb_attr(g, ni, &a, name);
}

static inline int attr_ints(ri__graph *g, int ni, const char *name, int n, const int64_t *v) {
  ri__attr a;
  memset(&a, 0, sizeof a);
  a.type = RI__ATTR_INTS;
  a.n = n;
  a.ints = ri__malloc((size_t)(n ? n : 1) * sizeof(int64_t));
  if (!a.ints) return ni < 0 ? 1 : -1;
  memcpy(a.ints, v, (size_t)n * sizeof(int64_t));
  return gb_attr(g, ni, &a, name);
}

#endif
