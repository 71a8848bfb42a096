/* ONNX importer: models built in memory with protobuf-c, imported, and the resulting graph checked; then
 * one deliberately broken model per rule, checking status, message and that nothing leaks. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "graph/ir.h"
#include "onnx/import.h"
#include "test.h"
#include "test_onnx_build.h"

enum { F32 = 1, U8 = 2, I8 = 3, I32 = 6, I64 = 7, STR = 8, BOOL = 9, F16 = 10, F64 = 11, U64 = 13 };

static const ri__value *val(const ri__graph *g, const char *name) {
  int i = ri__graph_find_value(g, name);
  return i >= 0 ? &g->values[i] : NULL;
}

static int find_node(const ri__graph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    if (strcmp(g->nodes[i].name, name) == 0) return i;
  return -1;
}

static const char *in_name(const ri__graph *g, int node, int k) {
  int v = g->nodes[node].inputs[k];
  return v >= 0 ? g->values[v].name : "<absent>";
}

/* Imports m; on success returns the graph (the caller destroys it). */
static ri__graph *import_ok(Onnx__ModelProto *m, const char *base_dir, int line) {
  size_t len;
  uint8_t *buf = tb_pack(m, &len);
  ri__graph *g = NULL;
  ri__err err = {0};
  ri_status st = ri__onnx_import(buf, len, base_dir, "ok.onnx", &g, &err);
  CHECK_MSG(st == RI_OK && g, "line %d: import failed: %s", line, err.msg);
  return st == RI_OK ? g : NULL;
}

/* Imports bytes expecting status `want` and a message containing each of the given substrings. Checks
 * that *out stays NULL and that every allocation made was released. */
static void fail_bytes(const void *buf, size_t len, const char *base_dir, ri_status want, const char *s1,
                       const char *s2, const char *s3, int line) {
  long live = ri__alloc_live();
  ri__graph *g = (ri__graph *)&live;
  ri__err err = {0};
  ri_status st = ri__onnx_import(buf, len, base_dir, "bad.onnx", &g, &err);
  printf("  line %d -> [%s] %s\n", line, ri_status_str(st), err.msg);
  CHECK_MSG(st == want, "line %d: status %s, want %s (%s)", line, ri_status_str(st), ri_status_str(want),
            err.msg);
  CHECK_MSG(g == NULL, "line %d: out not cleared", line);
  CHECK_MSG(strncmp(err.msg, "'bad.onnx': ", 12) == 0, "line %d: message lacks the source name: %s", line,
            err.msg);
  const char *subs[3] = {s1, s2, s3};
  for (int i = 0; i < 3; i++)
    if (subs[i])
      CHECK_MSG(strstr(err.msg, subs[i]) != NULL, "line %d: '%s' lacks '%s'", line, err.msg, subs[i]);
  CHECK_MSG(ri__alloc_live() == live, "line %d: %ld allocations leaked", line, ri__alloc_live() - live);
  if (st == RI_OK) ri__graph_destroy(g);
}

static void fail_model(Onnx__ModelProto *m, const char *base_dir, ri_status want, const char *s1,
                       const char *s2, const char *s3, int line) {
  size_t len;
  uint8_t *buf = tb_pack(m, &len);
  fail_bytes(buf, len, base_dir, want, s1, s2, s3, line);
}

#define FAIL(m, want, s1, s2, s3) fail_model((m), NULL, (want), (s1), (s2), (s3), __LINE__)

static const int64_t k_x_dims[4] = {-1, 3, 4, 4};
static const float k_w[6] = {0.5f, -1.f, 2.f, 0.25f, 3.f, -0.125f};
static const float k_b[2] = {0.1f, -0.2f};

/* x[N,3,4,4] → Conv(w raw, b float_data) → Relu (unnamed) → LeakyRelu → Reshape(shape from a Constant) → y.
 * `reverse` lists the nodes in reverse order. */
static Onnx__ModelProto *small_cnn(int reverse) {
  Onnx__ModelProto *m = tb_model(8, 13);
  tb_input(m, "x", F32, 4, k_x_dims);
  Onnx__TensorProto *w = tb_add_init(m, tb_tensor("w", F32, 4, (const int64_t[]){2, 3, 1, 1}));
  tb_raw(w, k_w, sizeof k_w);
  Onnx__TensorProto *b = tb_add_init(m, tb_tensor("b", F32, 1, (const int64_t[]){2}));
  tb_float_data(b, k_b, 2);
  Onnx__NodeProto *conv = tb_node(m, "Conv", "conv1", "x,w,b", "c");
  tb_attr_ints(conv, "kernel_shape", (const int64_t[]){1, 1}, 2);
  tb_attr_ints(conv, "pads", (const int64_t[]){0, 0, 0, 0}, 4);
  tb_attr_s(conv, "auto_pad", "NOTSET");
  tb_attr_i(conv, "group", 1);
  tb_node(m, "Relu", NULL, "c", "r");
  Onnx__NodeProto *lr = tb_node(m, "LeakyRelu", "lrelu", "r", "l");
  tb_attr_f(lr, "alpha", 0.1f);
  Onnx__NodeProto *cst = tb_node(m, "Constant", "shape_const", "", "shape");
  tb_attr_ints(cst, "value_ints", (const int64_t[]){1, -1}, 2);
  tb_node(m, "Reshape", "reshape", "l,shape", "y");
  tb_output(m, "y");
  if (reverse) {
    Onnx__GraphProto *g = m->graph;
    for (size_t i = 0; i < g->n_node / 2; i++) {
      Onnx__NodeProto *t = g->node[i];
      g->node[i] = g->node[g->n_node - 1 - i];
      g->node[g->n_node - 1 - i] = t;
    }
  }
  return m;
}

static void test_small_cnn(int reverse) {
  long live = ri__alloc_live();
  ri__graph *g = import_ok(small_cnn(reverse), NULL, __LINE__);
  if (!g) return;
  CHECK(g->opset == 13);
  CHECK(g->name && strcmp(g->name, "test_graph") == 0);
  CHECK(g->n_inputs == 1 && g->n_outputs == 1);
  const ri__value *x = &g->values[g->inputs[0]];
  CHECK(strcmp(x->name, "x") == 0 && x->kind == RI__VAL_INPUT && x->dtype == RI_DTYPE_FLOAT32);
  CHECK(x->shape.rank == 4 && x->shape.dims[0] == 1 && x->shape.dims[1] == 3 && x->shape.dims[3] == 4);
  CHECK(x->batch_axis == 0);
  const ri__value *w = val(g, "w"), *b = val(g, "b"), *shape = val(g, "shape");
  CHECK(w && w->kind == RI__VAL_CONST && w->nbytes == sizeof k_w && memcmp(w->data, k_w, sizeof k_w) == 0);
  CHECK(w && w->shape.rank == 4 && w->shape.dims[0] == 2 && w->shape.dims[1] == 3);
  CHECK(b && b->kind == RI__VAL_CONST && b->nbytes == sizeof k_b && memcmp(b->data, k_b, sizeof k_b) == 0);
  CHECK(shape && shape->kind == RI__VAL_CONST && shape->dtype == RI_DTYPE_INT64 && shape->shape.rank == 1 &&
        shape->shape.dims[0] == 2);
  if (shape && shape->data) CHECK(((int64_t *)shape->data)[0] == 1 && ((int64_t *)shape->data)[1] == -1);
  /* The Constant node is folded away; the rest keep file order when sorted, whatever order they came in. */
  CHECK_MSG(g->n_nodes == 4, "n_nodes %d", g->n_nodes);
  int conv = find_node(g, "conv1"), relu = find_node(g, "Relu_1"), lr = find_node(g, "lrelu"),
      rs = find_node(g, "reshape");
  if (reverse) relu = find_node(g, "Relu_3"); /* synthesized names use the position in the file */
  CHECK_MSG(conv == 0 && relu == 1 && lr == 2 && rs == 3, "order %d %d %d %d", conv, relu, lr, rs);
  if (conv < 0 || relu < 0 || lr < 0 || rs < 0) {
    ri__graph_destroy(g);
    return;
  }
  const ri__node *c = &g->nodes[conv];
  CHECK(c->op == RI__OP_Conv && c->n_inputs == 3 && c->n_outputs == 1);
  CHECK(strcmp(in_name(g, conv, 0), "x") == 0 && strcmp(in_name(g, conv, 1), "w") == 0 &&
        strcmp(in_name(g, conv, 2), "b") == 0);
  const int64_t *ks;
  CHECK(ri__node_attr_ints(c, "kernel_shape", &ks) == 2 && ks[0] == 1 && ks[1] == 1);
  const int64_t *pads;
  CHECK(ri__node_attr_ints(c, "pads", &pads) == 4);
  CHECK(strcmp(ri__node_attr_string(c, "auto_pad", "?"), "NOTSET") == 0);
  CHECK(ri__node_attr_int(c, "group", -5) == 1);
  CHECK(g->nodes[relu].op == RI__OP_Relu);
  CHECK(fabsf(ri__node_attr_float(&g->nodes[lr], "alpha", 0.f) - 0.1f) < 1e-7f);
  CHECK(g->nodes[rs].op == RI__OP_Reshape && strcmp(in_name(g, rs, 1), "shape") == 0);
  const ri__value *y = &g->values[g->outputs[0]];
  CHECK(strcmp(y->name, "y") == 0 && y->is_output && y->producer == rs);
  CHECK(ri__graph_link(g, NULL) == RI_OK);
  ri__graph_destroy(g);
  CHECK_MSG(ri__alloc_live() == live, "leaked %ld", ri__alloc_live() - live);
  tb_reset();
}

/* Initializer also listed as an input; absent optional input; TENSOR attribute; ai.onnx.ml imported but
 * unused; typed fields of narrow types; outputs that are initializers. */
static void test_details(void) {
  Onnx__ModelProto *m = tb_model(7, 17);
  tb_opset(m, "ai.onnx.ml", 3);
  tb_input(m, "x", F32, 2, (const int64_t[]){2, 3});
  Onnx__TensorProto *mx = tb_add_init(m, tb_tensor("maxv", F32, 0, NULL));
  tb_float_data(mx, (const float[]){6.f}, 1);
  tb_input(m, "maxv", F32, 0, NULL); /* default value of an input: stays a constant */
  tb_node(m, "Clip", "clip", "x,,maxv", "y");
  Onnx__NodeProto *id = tb_node(m, "Identity", "", "y", "z");
  Onnx__TensorProto *at = tb_tensor("ignored", I64, 1, (const int64_t[]){3});
  tb_int64_data(at, (const int64_t[]){7, 8, 9}, 3);
  tb_attr_t(id, "payload", at);
  const char *strs[2] = {"a", "bc"};
  tb_attr_strings(id, "names", strs, 2);
  tb_attr_floats(id, "scales", (const float[]){1.5f, 2.5f}, 2);
  Onnx__TensorProto *t8 = tb_add_init(m, tb_tensor("i8", I8, 1, (const int64_t[]){3}));
  tb_int32_data(t8, (const int32_t[]){-128, 5, 127}, 3);
  Onnx__TensorProto *tu8 = tb_add_init(m, tb_tensor("u8", U8, 1, (const int64_t[]){2}));
  tb_int32_data(tu8, (const int32_t[]){200, 0}, 2);
  Onnx__TensorProto *tb = tb_add_init(m, tb_tensor("bools", BOOL, 1, (const int64_t[]){3}));
  tb_int32_data(tb, (const int32_t[]){0, 1, 2}, 3);
  Onnx__TensorProto *th = tb_add_init(m, tb_tensor("half", F16, 1, (const int64_t[]){1}));
  tb_int32_data(th, (const int32_t[]){0x3c00}, 1);
  Onnx__TensorProto *tu64 = tb_add_init(m, tb_tensor("u64", U64, 1, (const int64_t[]){1}));
  tu64->n_uint64_data = 1;
  tu64->uint64_data = tb_alloc(sizeof(uint64_t));
  tu64->uint64_data[0] = UINT64_MAX;
  tb_add_init(m, tb_tensor("empty", F32, 2, (const int64_t[]){0, 4})); /* no data needed */
  tb_output(m, "z");
  tb_output(m, "i8");
  long live = ri__alloc_live();
  ri__graph *g = import_ok(m, NULL, __LINE__);
  if (g) {
    CHECK(g->n_inputs == 1 && strcmp(g->values[g->inputs[0]].name, "x") == 0);
    CHECK(g->values[g->inputs[0]].batch_axis == -1);
    int clip = find_node(g, "clip"), idn = find_node(g, "Identity_1");
    CHECK(clip >= 0 && idn >= 0);
    if (clip >= 0) CHECK(g->nodes[clip].n_inputs == 3 && g->nodes[clip].inputs[1] == -1);
    if (idn >= 0) {
      const ri__attr *a = ri__node_attr(&g->nodes[idn], "payload");
      CHECK(a && a->type == RI__ATTR_TENSOR && a->value >= 0);
      if (a && a->value >= 0) {
        const ri__value *tv = &g->values[a->value];
        CHECK(tv->kind == RI__VAL_CONST && tv->dtype == RI_DTYPE_INT64 && tv->nbytes == 24);
        CHECK(((int64_t *)tv->data)[2] == 9);
      }
      const ri__attr *s = ri__node_attr(&g->nodes[idn], "names");
      CHECK(s && s->type == RI__ATTR_STRINGS && s->n == 2 && strcmp(s->strings[1], "bc") == 0);
      const float *fl;
      CHECK(ri__node_attr_floats(&g->nodes[idn], "scales", &fl) == 2 && fl[1] == 2.5f);
    }
    const ri__value *v;
    CHECK((v = val(g, "maxv")) && v->kind == RI__VAL_CONST && v->shape.rank == 0 && *(float *)v->data == 6.f);
    CHECK((v = val(g, "i8")) && v->nbytes == 3 && ((int8_t *)v->data)[0] == -128 &&
          ((int8_t *)v->data)[2] == 127);
    CHECK((v = val(g, "u8")) && v->nbytes == 2 && ((uint8_t *)v->data)[0] == 200);
    CHECK((v = val(g, "bools")) && ((uint8_t *)v->data)[2] == 1 && ((uint8_t *)v->data)[0] == 0);
    CHECK((v = val(g, "half")) && v->nbytes == 2 && ((uint16_t *)v->data)[0] == 0x3c00);
    CHECK((v = val(g, "u64")) && ((uint64_t *)v->data)[0] == UINT64_MAX);
    CHECK((v = val(g, "empty")) && v->nbytes == 0 && v->data != NULL);
    CHECK(g->n_outputs == 2 && strcmp(g->values[g->outputs[1]].name, "i8") == 0);
    ri__graph_destroy(g);
  }
  CHECK(ri__alloc_live() == live);
  tb_reset();
}

/* One broken model per rule. */
static void test_rejections(void) {
  Onnx__ModelProto *m;

  m = tb_model(2, 13);
  tb_output(m, "y");
  FAIL(m, RI_ERR_UNSUPPORTED, "IR version 2", NULL, NULL);

  m = small_cnn(0);
  m->opset_import[0]->version = 10;
  FAIL(m, RI_ERR_UNSUPPORTED, "opset 10", "11 to 21", NULL);
  m->opset_import[0]->version = 22;
  FAIL(m, RI_ERR_UNSUPPORTED, "opset 22", NULL, NULL);
  m->opset_import[0]->domain = tb_str("ai.onnx.ml");
  FAIL(m, RI_ERR_PARSE, "default ONNX domain", NULL, NULL);
  m->has_ir_version = 0;
  FAIL(m, RI_ERR_PARSE, "ir_version is missing", NULL, NULL);

  /* every unsupported operator in one message, with the first node of each type */
  m = tb_model(8, 13);
  tb_input(m, "x", F32, 1, (const int64_t[]){4});
  tb_node(m, "Foo", "f1", "x", "a");
  tb_node(m, "Relu", "ok", "a", "b");
  tb_node(m, "Bar", "b1", "b", "c");
  tb_node(m, "Foo", "f2", "c", "d");
  tb_node(m, "LSTM", NULL, "d", "e");
  Onnx__NodeProto *ml = tb_node(m, "ZipMap", "zm", "e", "y");
  ml->domain = tb_str("ai.onnx.ml");
  tb_output(m, "y");
  FAIL(m, RI_ERR_UNSUPPORTED, "node 'f1' (op 'Foo', domain 'ai.onnx') and 1 more", "node 'b1' (op 'Bar'",
       "node 'LSTM_4' (op 'LSTM'");
  FAIL(m, RI_ERR_UNSUPPORTED, "node 'zm' (op 'ZipMap', domain 'ai.onnx.ml')", "5 nodes use 4 operator types",
       NULL);

  m = tb_model(8, 13);
  tb_input(m, "x", F32, 1, (const int64_t[]){4});
  tb_node(m, "Frob", "x1", "x", "y");
  tb_output(m, "y");
  FAIL(m, RI_ERR_UNSUPPORTED, "'bad.onnx': node 'x1' (op 'Frob', domain 'ai.onnx'): operator not supported",
       NULL, NULL);

  /* more distinct unsupported types than are listed */
  m = tb_model(8, 13);
  tb_input(m, "v0", F32, 1, (const int64_t[]){4});
  for (int i = 0; i < 25; i++) {
    char op[16], in[16], out[16];
    snprintf(op, sizeof op, "Op%02d", i);
    snprintf(in, sizeof in, "v%d", i);
    snprintf(out, sizeof out, "v%d", i + 1);
    tb_node(m, op, NULL, in, out);
  }
  tb_output(m, "v25");
  FAIL(m, RI_ERR_UNSUPPORTED, "more than 20 operator types", "'Op00'", "...");

  /* symbolic dims */
  m = tb_model(8, 13);
  tb_input(m, "x", F32, 4, (const int64_t[]){1, 3, -1, 4});
  tb_node(m, "Relu", "r", "x", "y");
  tb_output(m, "y");
  FAIL(m, RI_ERR_UNSUPPORTED, "input 'x' axis 2 is symbolic ('N'); only the first (batch) axis may be", NULL,
       NULL);
  m->graph->input[0]->type->tensor_type->shape->dim[2]->value_case =
      ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE__NOT_SET;
  FAIL(m, RI_ERR_UNSUPPORTED, "axis 2 is symbolic", NULL, NULL);
  m->graph->input[0]->type->tensor_type->shape = NULL;
  FAIL(m, RI_ERR_UNSUPPORTED, "graph input 'x' has no shape", NULL, NULL);
  m->graph->input[0]->type->tensor_type->elem_type = STR;
  FAIL(m, RI_ERR_UNSUPPORTED, "graph input 'x' has element type STRING", NULL, NULL);

  /* attributes */
  m = tb_model(8, 13);
  tb_input(m, "x", F32, 1, (const int64_t[]){4});
  Onnx__NodeProto *n = tb_node(m, "Relu", "r", "x", "y");
  Onnx__AttributeProto *ga = tb_attr(n, "body", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
  ga->g = tb_alloc(sizeof *ga->g);
  onnx__graph_proto__init(ga->g);
  tb_output(m, "y");
  FAIL(m, RI_ERR_UNSUPPORTED, "node 'r' attribute 'body'", "GRAPH", NULL);
  ga->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR;
  ga->g = NULL;
  FAIL(m, RI_ERR_UNSUPPORTED, "node 'r' attribute 'body'", "SPARSE_TENSOR", NULL);
  ga->type = 77;
  FAIL(m, RI_ERR_PARSE, "unknown attribute type 77", NULL, NULL);
  ga->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  tb_attr_i(n, "body", 3);
  FAIL(m, RI_ERR_PARSE, "node 'r' has attribute 'body' twice", NULL, NULL);
  n->n_attribute = 0;
  for (int i = 0; i < RI__MAX_ATTRS + 1; i++) {
    char an[16];
    snprintf(an, sizeof an, "a%d", i);
    tb_attr_i(n, an, i);
  }
  FAIL(m, RI_ERR_LIMIT, "node 'r' has 65 attributes", NULL, NULL);

  /* Constant nodes */
  m = tb_model(8, 13);
  Onnx__NodeProto *c = tb_node(m, "Constant", "k", "", "y");
  tb_attr_s(c, "value_string", "hello");
  tb_output(m, "y");
  FAIL(m, RI_ERR_UNSUPPORTED, "Constant node 'k' attribute 'value_string'", NULL, NULL);
  c->n_attribute = 0;
  tb_attr_f(c, "value_float", 1.f);
  tb_attr_i(c, "value_int", 1);
  FAIL(m, RI_ERR_PARSE, "Constant node 'k' has 2 attributes", NULL, NULL);
  c->n_attribute = 1;
  c->attribute[0]->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  FAIL(m, RI_ERR_PARSE, "Constant node 'k' attribute 'value_float' has attribute type INT, expected FLOAT",
       NULL, NULL);
  c->attribute[0]->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
  tb_add_init(m, tb_tensor("y", F32, 1, (const int64_t[]){0}));
  FAIL(m, RI_ERR_PARSE, "Constant node 'k' output 'y' is already defined", NULL, NULL);

  /* tensor data */
  m = tb_model(8, 13);
  Onnx__TensorProto *t = tb_add_init(m, tb_tensor("wt", F32, 2, (const int64_t[]){2, 2}));
  tb_output(m, "wt");
  tb_raw(t, k_w, 12);
  FAIL(m, RI_ERR_PARSE, "initializer 'wt': raw_data holds 12 bytes but shape [2,2] of float32 needs 16", NULL,
       NULL);
  t->has_raw_data = 0;
  FAIL(m, RI_ERR_PARSE, "initializer 'wt' has no data", NULL, NULL);
  tb_float_data(t, k_w, 3);
  FAIL(m, RI_ERR_PARSE, "initializer 'wt': float_data holds 3 values but shape [2,2] needs 4", NULL, NULL);
  tb_float_data(t, k_w, 4);
  tb_raw(t, k_w, 16);
  FAIL(m, RI_ERR_PARSE, "initializer 'wt' has both raw_data and float_data", NULL, NULL);
  t->has_raw_data = 0;
  t->data_type = I64;
  FAIL(m, RI_ERR_PARSE, "int64 tensor carries float_data", NULL, NULL);
  t->data_type = STR;
  FAIL(m, RI_ERR_UNSUPPORTED, "initializer 'wt': element type STRING is not supported", NULL, NULL);
  t->data_type = 99;
  FAIL(m, RI_ERR_UNSUPPORTED, "initializer 'wt': element type code 99", NULL, NULL);
  t->has_data_type = 0;
  FAIL(m, RI_ERR_PARSE, "initializer 'wt' has no data_type", NULL, NULL);
  t->has_data_type = 1;
  t->data_type = I8;
  t->n_float_data = 0;
  tb_int32_data(t, (const int32_t[]){1, 2, 300, 4}, 4);
  FAIL(m, RI_ERR_PARSE, "initializer 'wt': int32_data[2] = 300 is out of range for int8", NULL, NULL);
  t->dims[1] = -3;
  FAIL(m, RI_ERR_PARSE, "initializer 'wt': dimension 1 is -3", NULL, NULL);
  t->dims[0] = 1000000;
  t->dims[1] = 1000000;
  FAIL(m, RI_ERR_LIMIT, "initializer 'wt': shape [1000000,1000000] exceeds the limit", NULL, NULL);
  t->n_dims = 9;
  t->dims = tb_alloc(9 * sizeof(int64_t));
  FAIL(m, RI_ERR_LIMIT, "initializer 'wt' has rank 9, more than the limit of 8", NULL, NULL);
  t->n_dims = 0;
  t->name = tb_str("");
  FAIL(m, RI_ERR_PARSE, "initializer 0 has no name", NULL, NULL);
  t->name = tb_str("wt");
  t->n_int32_data = 1;
  tb_add_init(m, t);
  FAIL(m, RI_ERR_PARSE, "initializer 'wt' is defined twice", NULL, NULL);

  /* wiring */
  m = tb_model(8, 13);
  tb_input(m, "x", F32, 1, (const int64_t[]){4});
  tb_node(m, "Add", "n", "x,ghost", "y");
  tb_output(m, "y");
  FAIL(m, RI_ERR_PARSE, "node 'n' input 'ghost' is not produced by any node, initializer or graph input",
       NULL, NULL);

  m = tb_model(8, 13);
  tb_input(m, "x", F32, 1, (const int64_t[]){4});
  tb_node(m, "Add", "a", "x,q", "p");
  tb_node(m, "Relu", "b", "p", "q");
  tb_output(m, "q");
  FAIL(m, RI_ERR_PARSE, "cycle", NULL, NULL);

  m = tb_model(8, 13);
  tb_input(m, "x", F32, 1, (const int64_t[]){4});
  tb_node(m, "Relu", "a", "x", "y");
  tb_node(m, "Sigmoid", "b", "x", "y");
  tb_output(m, "y");
  FAIL(m, RI_ERR_PARSE, "value 'y' is produced by two nodes ('a' and 'b')", NULL, NULL);
  m->graph->node[1]->output[0] = tb_str("x");
  FAIL(m, RI_ERR_PARSE, "node 'b' output 'x' would overwrite the graph input", NULL, NULL);
  m->graph->node[1]->output[0] = tb_str("z");
  tb_output(m, "y");
  FAIL(m, RI_ERR_PARSE, "graph output 'y' is listed twice", NULL, NULL);
  m->graph->n_output = 0;
  FAIL(m, RI_ERR_PARSE, "graph has no outputs", NULL, NULL);
  tb_output(m, "nothing");
  FAIL(m, RI_ERR_PARSE, "graph output 'nothing' is not produced by any node, initializer or graph input",
       NULL, NULL);

  /* external data without a base directory */
  m = tb_model(8, 13);
  t = tb_add_init(m, tb_tensor("ext", F32, 1, (const int64_t[]){2}));
  tb_external(t, "weights.bin", NULL, NULL);
  tb_output(m, "ext");
  FAIL(m, RI_ERR_INVALID_ARG, "initializer 'ext'", "no base directory", NULL);
  tb_reset();
}

/* Wraps a message body as field `field` (length-delimited) of the enclosing message. */
static size_t wrap(uint8_t *dst, int field, const uint8_t *body, size_t len) {
  size_t o = 0;
  dst[o++] = (uint8_t)(field << 3 | 2);
  size_t l = len;
  do {
    uint8_t b = l & 0x7f;
    l >>= 7;
    dst[o++] = l ? (b | 0x80) : b;
  } while (l);
  memmove(dst + o, body, len);
  return o + len;
}

static void test_malformed_bytes(void) {
  static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  fail_bytes(junk, sizeof junk, NULL, RI_ERR_PARSE, "not a valid ONNX model (protobuf parse failed", NULL,
             NULL, __LINE__);
  fail_bytes(junk, 0, NULL, RI_ERR_PARSE, "no bytes", NULL, NULL, __LINE__);
  /* a varint where the graph (a message) belongs */
  static const uint8_t wrong_type[] = {0x08, 0x08, 0x38, 0x05};
  fail_bytes(wrong_type, sizeof wrong_type, NULL, RI_ERR_PARSE, "protobuf parse failed", NULL, NULL,
             __LINE__);
  /* graph → node → attribute → graph ... nested 40 times (120 message levels) */
  static uint8_t a[1024], b[1024];
  size_t len = 0;
  for (int i = 0; i < 40; i++) {
    len = wrap(b, 6, a, len); /* AttributeProto.g */
    len = wrap(a, 5, b, len); /* NodeProto.attribute */
    len = wrap(b, 1, a, len); /* GraphProto.node */
    memcpy(a, b, len);
  }
  b[0] = 0x08, b[1] = 0x08; /* ir_version 8 */
  len = 2 + wrap(b + 2, 7, a, len);
  fail_bytes(b, len, NULL, RI_ERR_LIMIT, "nested deeper than 64 levels", NULL, NULL, __LINE__);
}

static char g_dir[256];

static void path_in(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", g_dir, name); }

static void test_external_data(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/ri_onnx_test_XXXXXX");
  if (!mkdtemp(g_dir)) {
    CHECK_MSG(0, "mkdtemp: %s", strerror(errno));
    return;
  }
  char p[512], q[512];
  uint8_t blob[16 + sizeof k_w];
  memset(blob, 0xab, 16);
  memcpy(blob + 16, k_w, sizeof k_w);
  path_in(p, sizeof p, "weights.bin");
  CHECK(tb_write_file(p, blob, sizeof blob) == 0);
  path_in(p, sizeof p, "sub");
  CHECK(mkdir(p, 0700) == 0);

  Onnx__ModelProto *m = tb_model(8, 13);
  Onnx__TensorProto *t = tb_add_init(m, tb_tensor("w", F32, 2, (const int64_t[]){2, 3}));
  tb_external(t, "weights.bin", "16", "24");
  tb_output(m, "w");
  ri__graph *g = import_ok(m, g_dir, __LINE__);
  if (g) {
    const ri__value *v = val(g, "w");
    CHECK(v && v->nbytes == sizeof k_w && memcmp(v->data, k_w, sizeof k_w) == 0);
    ri__graph_destroy(g);
  }
  /* the same through a file: base_dir is the model's directory */
  size_t len;
  uint8_t *buf = tb_pack(m, &len);
  path_in(p, sizeof p, "model.onnx");
  CHECK(tb_write_file(p, buf, len) == 0);
  g = NULL;
  ri__err err = {0};
  CHECK_MSG(ri__onnx_import_file(p, &g, &err) == RI_OK && g, "%s", err.msg);
  if (g) {
    const ri__value *v = val(g, "w");
    CHECK(v && memcmp(v->data, k_w, sizeof k_w) == 0);
    ri__graph_destroy(g);
  }

  tb_external(t, "weights.bin", "16", "20");
  fail_model(m, g_dir, RI_ERR_PARSE,
             "initializer 'w': external data length is 20 bytes but the shape needs 24", NULL, NULL,
             __LINE__);
  tb_external(t, "weights.bin", "30", NULL);
  fail_model(m, g_dir, RI_ERR_PARSE, "offset 30, length 24 lies outside file", "of 40 bytes", NULL, __LINE__);
  tb_external(t, "weights.bin", "-1", NULL);
  fail_model(m, g_dir, RI_ERR_PARSE, "offset '-1' is not a decimal byte count", NULL, NULL, __LINE__);
  tb_external(t, "sub/../weights.bin", NULL, NULL);
  fail_model(m, g_dir, RI_ERR_PARSE, "'sub/../weights.bin' contains a '..' component", NULL, NULL, __LINE__);
  tb_external(t, "..", NULL, NULL);
  fail_model(m, g_dir, RI_ERR_PARSE, "'..' component", NULL, NULL, __LINE__);
  tb_external(t, "/etc/passwd", NULL, NULL);
  fail_model(m, g_dir, RI_ERR_PARSE, "'/etc/passwd' is an absolute path", NULL, NULL, __LINE__);
  tb_external(t, "sub", NULL, NULL);
  fail_model(m, g_dir, RI_ERR_IO, "is not a regular file", NULL, NULL, __LINE__);
  tb_external(t, "missing.bin", NULL, NULL);
  fail_model(m, g_dir, RI_ERR_IO, "missing.bin", strerror(ENOENT), NULL, __LINE__);
  t->external_data[0]->key = tb_str("place");
  fail_model(m, g_dir, RI_ERR_PARSE, "external data without a 'location' key", NULL, NULL, __LINE__);

  /* file errors */
  err.msg[0] = 0;
  path_in(p, sizeof p, "nope.onnx");
  CHECK(ri__onnx_import_file(p, &g, &err) == RI_ERR_IO && g == NULL);
  printf("  %s\n", err.msg);
  CHECK(strstr(err.msg, "nope.onnx") && strstr(err.msg, strerror(ENOENT)));
  path_in(p, sizeof p, "sub");
  CHECK(ri__onnx_import_file(p, &g, &err) == RI_ERR_IO && strstr(err.msg, "is a directory"));
  printf("  %s\n", err.msg);
  path_in(q, sizeof q, "empty.onnx");
  CHECK(tb_write_file(q, "", 0) == 0);
  CHECK(ri__onnx_import_file(q, &g, &err) == RI_ERR_IO && strstr(err.msg, "is empty"));
  printf("  %s\n", err.msg);
  path_in(q, sizeof q, "junk.onnx");
  CHECK(tb_write_file(q, "\xff\xff\xff", 3) == 0);
  CHECK(ri__onnx_import_file(q, &g, &err) == RI_ERR_PARSE && strstr(err.msg, "junk.onnx"));
  printf("  %s\n", err.msg);

  const char *files[] = {"weights.bin", "model.onnx", "empty.onnx", "junk.onnx"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    path_in(p, sizeof p, files[i]);
    unlink(p);
  }
  path_in(p, sizeof p, "sub");
  rmdir(p);
  rmdir(g_dir);
  tb_reset();
}

static void test_parse_tensor(void) {
  Onnx__TensorProto *t = tb_tensor("input_0", F32, 2, (const int64_t[]){2, 3});
  tb_raw(t, k_w, sizeof k_w);
  size_t len;
  uint8_t *buf = tb_pack_tensor(t, &len);
  long live = ri__alloc_live();
  ri__tensor out;
  char *name = NULL;
  ri__err err = {0};
  CHECK_MSG(ri__onnx_parse_tensor(buf, len, &out, &name, &err) == RI_OK, "%s", err.msg);
  CHECK(name && strcmp(name, "input_0") == 0);
  CHECK(out.dtype == RI_DTYPE_FLOAT32 && out.shape.rank == 2 && out.shape.dims[1] == 3);
  CHECK(out.data && memcmp(out.data, k_w, sizeof k_w) == 0);
  ri__free(out.data);
  ri__free(name);
  t = tb_tensor("ids", I64, 1, (const int64_t[]){2});
  tb_int64_data(t, (const int64_t[]){-4, 1LL << 40}, 2);
  buf = tb_pack_tensor(t, &len);
  CHECK(ri__onnx_parse_tensor(buf, len, &out, NULL, &err) == RI_OK);
  CHECK(out.dtype == RI_DTYPE_INT64 && ((int64_t *)out.data)[1] == 1LL << 40);
  ri__free(out.data);
  tb_external(t, "x.bin", NULL, NULL);
  t->n_int64_data = 0;
  buf = tb_pack_tensor(t, &len);
  CHECK(ri__onnx_parse_tensor(buf, len, &out, &name, &err) == RI_ERR_INVALID_ARG && out.data == NULL &&
        !name);
  printf("  %s\n", err.msg);
  CHECK(strstr(err.msg, "tensor 'ids'") != NULL);
  CHECK(ri__onnx_parse_tensor("\x0a\x05", 2, &out, &name, &err) == RI_ERR_PARSE);
  printf("  %s\n", err.msg);
  CHECK(ri__alloc_live() == live);
  tb_reset();
}

int main(void) {
  test_small_cnn(0);
  test_small_cnn(1);
  test_details();
  test_rejections();
  test_malformed_bytes();
  test_external_data();
  test_parse_tensor();
  return test_done("test_onnx_import");
}
