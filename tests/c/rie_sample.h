/* A small hand-built engine content shared by the engine file tests: constants of several dtypes (one
 * empty, one scalar), an anonymous value, nodes carrying every attribute type, fused activations,
 * tactics, a memory plan and user metadata. Names are distinctive so tests can locate fields in the
 * encoded bytes. */
#ifndef RI_TEST_RIE_SAMPLE_H
#define RI_TEST_RIE_SAMPLE_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/rie_format.h"
#include "graph/ir.h"

enum {
  SAMPLE_V_INPUT,
  SAMPLE_V_CONV_W,
  SAMPLE_V_CONV_B,
  SAMPLE_V_CONV_OUT,
  SAMPLE_V_SHAPE,
  SAMPLE_V_RESHAPED,
  SAMPLE_V_SCALE_F16,
  SAMPLE_V_ZERO_U8,
  SAMPLE_V_MASK,
  SAMPLE_V_I8,
  SAMPLE_V_ANON,
  SAMPLE_V_EMPTY,
  SAMPLE_V_OUTPUT,
  SAMPLE_V_F64,
  SAMPLE_N_VALUES
};
#define SAMPLE_ARENA 4096

static inline ri__shape sample_shape(int rank, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  ri__shape s;
  memset(&s, 0, sizeof s);
  s.rank = rank;
  s.dims[0] = d0;
  s.dims[1] = d1;
  s.dims[2] = d2;
  s.dims[3] = d3;
  return s;
}

/* Adds a constant whose bytes follow a simple seeded pattern; returns its index or -1. */
static inline int sample_const(ri__graph *g, const char *name, ri_dtype dt, ri__shape s, unsigned seed) {
  size_t nbytes = (size_t)ri__shape_numel(&s) * ri_dtype_size(dt);
  unsigned char *data = ri__malloc(nbytes);
  if (!data) return -1;
  if (dt == RI_DTYPE_FLOAT32) {
    for (size_t i = 0; i < nbytes / 4; i++)
      ((float *)data)[i] = (float)(i * 0.25) - (float)seed;
  } else {
    for (size_t i = 0; i < nbytes; i++)
      data[i] = (unsigned char)(i * 31u + seed);
  }
  return ri__graph_add_const(g, name, dt, &s, data, nbytes);
}

static inline int sample_attr(ri__graph *g, int node, ri__attr *a) {
  ri__err err;
  return ri__graph_add_attr(g, node, a, &err) == RI_OK;
}

static inline ri__graph *sample_graph(void) {
  ri__graph *g = ri__graph_create();
  if (!g) return NULL;
  int ok = 1;
  g->name = ri__strdup("sample");
  g->opset = 17;
  g->batch = 2;
  ri__shape s;
  s = sample_shape(4, 2, 3, 8, 8);
  ok &= ri__graph_add_value(g, "input", RI_DTYPE_FLOAT32, &s, RI__VAL_INPUT) == SAMPLE_V_INPUT;
  ok &= sample_const(g, "conv_w", RI_DTYPE_FLOAT32, sample_shape(4, 4, 3, 3, 3), 1) == SAMPLE_V_CONV_W;
  ok &= sample_const(g, "conv_b", RI_DTYPE_FLOAT32, sample_shape(1, 4, 0, 0, 0), 2) == SAMPLE_V_CONV_B;
  s = sample_shape(4, 2, 4, 8, 8);
  ok &= ri__graph_add_value(g, "conv_out", RI_DTYPE_FLOAT32, &s, RI__VAL_ACTIVATION) == SAMPLE_V_CONV_OUT;
  ok &= sample_const(g, "shape_c", RI_DTYPE_INT64, sample_shape(1, 2, 0, 0, 0), 3) == SAMPLE_V_SHAPE;
  s = sample_shape(2, 2, 256, 0, 0);
  ok &= ri__graph_add_value(g, "reshaped", RI_DTYPE_FLOAT32, &s, RI__VAL_ACTIVATION) == SAMPLE_V_RESHAPED;
  ok &= sample_const(g, "scale_f16", RI_DTYPE_FLOAT16, sample_shape(1, 3, 0, 0, 0), 4) == SAMPLE_V_SCALE_F16;
  ok &= sample_const(g, "zero_u8", RI_DTYPE_UINT8, sample_shape(0, 0, 0, 0, 0), 5) == SAMPLE_V_ZERO_U8;
  ok &= sample_const(g, "mask_b", RI_DTYPE_BOOL, sample_shape(1, 5, 0, 0, 0), 6) == SAMPLE_V_MASK;
  ok &= sample_const(g, "tensor_i8", RI_DTYPE_INT8, sample_shape(2, 2, 3, 0, 0), 7) == SAMPLE_V_I8;
  s = sample_shape(2, 2, 256, 0, 0);
  ok &= ri__graph_add_value(g, NULL, RI_DTYPE_FLOAT32, &s, RI__VAL_ACTIVATION) == SAMPLE_V_ANON;
  ok &= sample_const(g, "empty_c", RI_DTYPE_FLOAT32, sample_shape(2, 0, 7, 0, 0), 8) == SAMPLE_V_EMPTY;
  s = sample_shape(2, 2, 256, 0, 0);
  ok &= ri__graph_add_value(g, "output", RI_DTYPE_FLOAT32, &s, RI__VAL_ACTIVATION) == SAMPLE_V_OUTPUT;
  ok &= sample_const(g, "c_f64", RI_DTYPE_FLOAT64, sample_shape(1, 9, 0, 0, 0), 9) == SAMPLE_V_F64;
  if (!ok) {
    ri__graph_destroy(g);
    return NULL;
  }
  ri__value *v = g->values;
  v[SAMPLE_V_INPUT].batch_axis = 0;
  v[SAMPLE_V_INPUT].batch_dependent = 1;
  v[SAMPLE_V_CONV_OUT].batch_dependent = 1;
  v[SAMPLE_V_CONV_OUT].mem_offset = 0;
  v[SAMPLE_V_CONV_OUT].mem_size = 2048;
  v[SAMPLE_V_RESHAPED].mem_offset = 2048;
  v[SAMPLE_V_RESHAPED].mem_size = 2048;
  v[SAMPLE_V_ANON].mem_offset = 0;
  v[SAMPLE_V_ANON].mem_size = 2048;
  v[SAMPLE_V_SHAPE].host = 1;
  v[SAMPLE_V_OUTPUT].is_output = 1;
  v[SAMPLE_V_OUTPUT].mem_offset = 2048;
  v[SAMPLE_V_OUTPUT].mem_size = 2048;

  int in0[] = {SAMPLE_V_INPUT, SAMPLE_V_CONV_W, SAMPLE_V_CONV_B}, out0[] = {SAMPLE_V_CONV_OUT};
  int in1[] = {SAMPLE_V_CONV_OUT, SAMPLE_V_SHAPE}, out1[] = {SAMPLE_V_RESHAPED};
  int in2[] = {SAMPLE_V_RESHAPED, SAMPLE_V_SCALE_F16}, out2[] = {SAMPLE_V_ANON};
  int in3[] = {SAMPLE_V_ANON, -1, SAMPLE_V_ZERO_U8}, out3[] = {SAMPLE_V_OUTPUT, -1};
  int n0 = ri__graph_add_node(g, "conv0", RI__OP_Conv, in0, 3, out0, 1);
  int n1 = ri__graph_add_node(g, "reshape0", RI__OP_Reshape, in1, 2, out1, 1);
  int n2 = ri__graph_add_node(g, "mul0", RI__OP_Mul, in2, 2, out2, 1);
  int n3 = ri__graph_add_node(g, "clip0", RI__OP_Clip, in3, 3, out3, 2);
  int n4 = ri__graph_add_node(g, "shape0", RI__OP_Shape, NULL, 0, NULL, 0);
  if (n0 != 0 || n1 != 1 || n2 != 2 || n3 != 3 || n4 != 4) {
    ri__graph_destroy(g);
    return NULL;
  }
  g->nodes[0].act = RI__ACT_RELU;
  g->nodes[0].tactic = 7;
  g->nodes[2].act = RI__ACT_HARD_SIGMOID;
  g->nodes[2].act_a = 0.2f;
  g->nodes[2].act_b = 0.5f;
  g->nodes[3].act = RI__ACT_CLIP;
  g->nodes[3].act_a = -1.f;
  g->nodes[3].act_b = 6.f;
  g->nodes[3].host = 1;
  g->nodes[3].tactic = -3;

  ri__attr a;
  memset(&a, 0, sizeof a);
  a.name = ri__strdup("kernel_shape");
  a.type = RI__ATTR_INTS;
  a.n = 2;
  a.ints = ri__malloc(2 * sizeof(int64_t));
  if (a.ints) a.ints[0] = 3, a.ints[1] = -((int64_t)1 << 40);
  ok &= a.name && a.ints && sample_attr(g, 0, &a);
  memset(&a, 0, sizeof a);
  a.name = ri__strdup("group");
  a.type = RI__ATTR_INT;
  a.i = INT64_MIN;
  ok &= a.name && sample_attr(g, 0, &a);
  memset(&a, 0, sizeof a);
  a.name = ri__strdup("auto_pad");
  a.type = RI__ATTR_STRING;
  a.s = ri__strdup("SAME_UPPER");
  ok &= a.name && a.s && sample_attr(g, 0, &a);
  memset(&a, 0, sizeof a);
  a.name = ri__strdup("alpha");
  a.type = RI__ATTR_FLOAT;
  a.f = -0.0f;
  ok &= a.name && sample_attr(g, 2, &a);
  memset(&a, 0, sizeof a);
  a.name = ri__strdup("scales");
  a.type = RI__ATTR_FLOATS;
  a.n = 3;
  a.floats = ri__malloc(3 * sizeof(float));
  if (a.floats) a.floats[0] = 1.5f, a.floats[1] = NAN, a.floats[2] = -INFINITY;
  ok &= a.name && a.floats && sample_attr(g, 2, &a);
  memset(&a, 0, sizeof a);
  a.name = ri__strdup("labels_attr");
  a.type = RI__ATTR_STRINGS;
  a.n = 3;
  a.strings = ri__calloc(3, sizeof(char *));
  if (a.strings)
    a.strings[0] = ri__strdup("cat"), a.strings[1] = ri__strdup(""), a.strings[2] = ri__strdup("dog");
  ok &= a.name && a.strings && a.strings[0] && a.strings[1] && a.strings[2] && sample_attr(g, 2, &a);
  memset(&a, 0, sizeof a);
  a.name = ri__strdup("w_attr");
  a.type = RI__ATTR_TENSOR;
  a.value = SAMPLE_V_I8;
  ok &= a.name && sample_attr(g, 2, &a);
  memset(&a, 0, sizeof a);
  a.name = ri__strdup("empty_ints");
  a.type = RI__ATTR_INTS;
  ok &= a.name && sample_attr(g, 3, &a);
  if (!ok) {
    ri__graph_destroy(g);
    return NULL;
  }
  g->inputs = ri__malloc(sizeof(int));
  g->outputs = ri__malloc(sizeof(int));
  if (!g->inputs || !g->outputs) {
    ri__graph_destroy(g);
    return NULL;
  }
  g->inputs[0] = SAMPLE_V_INPUT;
  g->n_inputs = 1;
  g->outputs[0] = SAMPLE_V_OUTPUT;
  g->n_outputs = 1;
  ri__err err;
  if (ri__graph_link(g, &err) != RI_OK) {
    fprintf(stderr, "sample graph does not link: %s\n", err.msg);
    ri__graph_destroy(g);
    return NULL;
  }
  return g;
}

static ri__kv g_sample_meta[] = {
    {"preprocess", "{\"mean\":[0.485,0.456,0.406],\"layout\":\"NCHW\"}"},
    {"labels", "background\nperson\nbicycle\n"},
    {"empty", ""},
};

/* Fills c with the sample graph (owned by the caller: ri__graph_destroy) and static strings. */
static inline int sample_content(ri__rie_content *c) {
  memset(c, 0, sizeof *c);
  c->graph = sample_graph();
  c->max_batch = 8;
  c->precision = RI_PRECISION_FP16;
  c->threads = 4;
  c->device = "cpu";
  c->fingerprint = (char *)ri__rie_host_fingerprint();
  c->library_version = (char *)ri_version();
  c->arena_size = SAMPLE_ARENA;
  c->meta = g_sample_meta;
  c->n_meta = 3;
  return c->graph != NULL;
}

/* Encodes the sample into *out (ri__free it). */
static inline int sample_bytes(unsigned char **out, size_t *size) {
  ri__rie_content c;
  if (!sample_content(&c)) return 0;
  ri__err err;
  void *p = NULL;
  ri_status st = ri__rie_write(&c, &p, size, &err);
  ri__graph_destroy(c.graph);
  if (st != RI_OK) {
    fprintf(stderr, "sample write failed: %s\n", err.msg);
    return 0;
  }
  *out = p;
  return 1;
}

#endif
