/* Test helper: builds ONNX ModelProtos in memory with the generated protobuf-c structs and serializes them,
 * so that importer tests need no files or Python. Everything is allocated with calloc (not the library's
 * allocator, so allocation-failure sweeps see only the importer's allocations) and released by tb_reset().
 * Arrays hold at most TB_MAX entries; a test that needs more aborts (a bug in the test, not in the library).
 */
#ifndef RI_TEST_ONNX_BUILD_H
#define RI_TEST_ONNX_BUILD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx.pb-c.h"

#define TB_MAX    128
#define TB_UNUSED __attribute__((unused))

static void **tb_ptrs;
static size_t tb_n, tb_cap;

static TB_UNUSED void *tb_alloc(size_t n) {
  if (tb_n == tb_cap) {
    tb_cap = tb_cap ? tb_cap * 2 : 256;
    tb_ptrs = realloc(tb_ptrs, tb_cap * sizeof(void *));
    if (!tb_ptrs) abort();
  }
  void *p = calloc(1, n ? n : 1);
  if (!p) abort();
  tb_ptrs[tb_n++] = p;
  return p;
}

static TB_UNUSED void tb_reset(void) {
  for (size_t i = 0; i < tb_n; i++)
    free(tb_ptrs[i]);
  free(tb_ptrs);
  tb_ptrs = NULL;
  tb_n = tb_cap = 0;
}

static TB_UNUSED char *tb_str(const char *s) {
  char *p = tb_alloc(strlen(s) + 1);
  memcpy(p, s, strlen(s) + 1);
  return p;
}

static TB_UNUSED void *tb_arr(void) { return tb_alloc(TB_MAX * sizeof(void *)); }

#define TB_PUSH(arr, n, item)                                                                                \
  do {                                                                                                       \
    if ((n) >= TB_MAX) abort();                                                                              \
    (arr)[(n)++] = (item);                                                                                   \
  } while (0)

static TB_UNUSED void tb_opset(Onnx__ModelProto *m, const char *domain, int64_t version) {
  Onnx__OperatorSetIdProto *o = tb_alloc(sizeof *o);
  onnx__operator_set_id_proto__init(o);
  o->domain = tb_str(domain);
  o->has_version = 1;
  o->version = version;
  TB_PUSH(m->opset_import, m->n_opset_import, o);
}

/* A model with an empty graph named "test_graph" importing the default domain at `opset`. */
static TB_UNUSED Onnx__ModelProto *tb_model(int64_t ir_version, int64_t opset) {
  Onnx__ModelProto *m = tb_alloc(sizeof *m);
  onnx__model_proto__init(m);
  m->has_ir_version = 1;
  m->ir_version = ir_version;
  m->producer_name = tb_str("runinfer-tests");
  m->opset_import = tb_arr();
  tb_opset(m, "", opset);
  Onnx__GraphProto *g = tb_alloc(sizeof *g);
  onnx__graph_proto__init(g);
  g->name = tb_str("test_graph");
  g->node = tb_arr();
  g->initializer = tb_arr();
  g->input = tb_arr();
  g->output = tb_arr();
  m->graph = g;
  return m;
}

/* A tensor header without data; dims may be NULL when rank is 0. */
static TB_UNUSED Onnx__TensorProto *tb_tensor(const char *name, int dtype, int rank, const int64_t *dims) {
  Onnx__TensorProto *t = tb_alloc(sizeof *t);
  onnx__tensor_proto__init(t);
  if (name) t->name = tb_str(name);
  t->has_data_type = 1;
  t->data_type = dtype;
  t->n_dims = (size_t)rank;
  t->dims = tb_alloc((size_t)(rank ? rank : 1) * sizeof(int64_t));
  if (rank) memcpy(t->dims, dims, (size_t)rank * sizeof(int64_t));
  return t;
}

static TB_UNUSED void tb_raw(Onnx__TensorProto *t, const void *data, size_t len) {
  t->has_raw_data = 1;
  t->raw_data.len = len;
  t->raw_data.data = tb_alloc(len);
  if (len) memcpy(t->raw_data.data, data, len);
}

static TB_UNUSED void tb_float_data(Onnx__TensorProto *t, const float *v, size_t n) {
  t->n_float_data = n;
  t->float_data = tb_alloc(n * sizeof(float));
  memcpy(t->float_data, v, n * sizeof(float));
}

static TB_UNUSED void tb_int32_data(Onnx__TensorProto *t, const int32_t *v, size_t n) {
  t->n_int32_data = n;
  t->int32_data = tb_alloc(n * sizeof(int32_t));
  memcpy(t->int32_data, v, n * sizeof(int32_t));
}

static TB_UNUSED void tb_int64_data(Onnx__TensorProto *t, const int64_t *v, size_t n) {
  t->n_int64_data = n;
  t->int64_data = tb_alloc(n * sizeof(int64_t));
  memcpy(t->int64_data, v, n * sizeof(int64_t));
}

static TB_UNUSED void tb_external(Onnx__TensorProto *t, const char *location, const char *offset,
                                  const char *length) {
  t->has_data_location = 1;
  t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  t->external_data = tb_arr();
  t->n_external_data = 0;
  const char *keys[3] = {"location", "offset", "length"};
  const char *vals[3] = {location, offset, length};
  for (int i = 0; i < 3; i++) {
    if (!vals[i]) continue;
    Onnx__StringStringEntryProto *kv = tb_alloc(sizeof *kv);
    onnx__string_string_entry_proto__init(kv);
    kv->key = tb_str(keys[i]);
    kv->value = tb_str(vals[i]);
    TB_PUSH(t->external_data, t->n_external_data, kv);
  }
}

static TB_UNUSED Onnx__TensorProto *tb_add_init(Onnx__ModelProto *m, Onnx__TensorProto *t) {
  TB_PUSH(m->graph->initializer, m->graph->n_initializer, t);
  return t;
}

/* Value info of a tensor; a dim of -1 becomes dim_param "N", -2 a dim with no value at all. */
static TB_UNUSED Onnx__ValueInfoProto *tb_value_info(const char *name, int elem, int rank,
                                                     const int64_t *dims) {
  Onnx__ValueInfoProto *vi = tb_alloc(sizeof *vi);
  onnx__value_info_proto__init(vi);
  vi->name = tb_str(name);
  Onnx__TypeProto *tp = tb_alloc(sizeof *tp);
  onnx__type_proto__init(tp);
  Onnx__TypeProto__Tensor *tt = tb_alloc(sizeof *tt);
  onnx__type_proto__tensor__init(tt);
  tt->has_elem_type = 1;
  tt->elem_type = elem;
  if (rank >= 0) {
    Onnx__TensorShapeProto *sh = tb_alloc(sizeof *sh);
    onnx__tensor_shape_proto__init(sh);
    sh->dim = tb_arr();
    for (int i = 0; i < rank; i++) {
      Onnx__TensorShapeProto__Dimension *d = tb_alloc(sizeof *d);
      onnx__tensor_shape_proto__dimension__init(d);
      if (dims[i] >= 0) {
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d->dim_value = dims[i];
      } else if (dims[i] == -1) {
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
        d->dim_param = tb_str("N");
      }
      TB_PUSH(sh->dim, sh->n_dim, d);
    }
    tt->shape = sh;
  }
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  vi->type = tp;
  return vi;
}

static TB_UNUSED Onnx__ValueInfoProto *tb_input(Onnx__ModelProto *m, const char *name, int elem, int rank,
                                                const int64_t *dims) {
  Onnx__ValueInfoProto *vi = tb_value_info(name, elem, rank, dims);
  TB_PUSH(m->graph->input, m->graph->n_input, vi);
  return vi;
}

/* A graph output with a name only (type and shape are optional for outputs). */
static TB_UNUSED void tb_output(Onnx__ModelProto *m, const char *name) {
  Onnx__ValueInfoProto *vi = tb_alloc(sizeof *vi);
  onnx__value_info_proto__init(vi);
  vi->name = tb_str(name);
  TB_PUSH(m->graph->output, m->graph->n_output, vi);
}

/* Splits "a,,b" into {"a", "", "b"}; "" gives no names. */
static TB_UNUSED size_t tb_split(const char *list, char ***out) {
  *out = tb_arr();
  if (!list[0]) return 0;
  size_t n = 0;
  const char *s = list;
  for (;;) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    char *p = tb_alloc(len + 1);
    memcpy(p, s, len);
    if (n >= TB_MAX) abort();
    (*out)[n++] = p;
    if (!e) break;
    s = e + 1;
  }
  return n;
}

/* Appends a node; name may be NULL (no name), domain NULL (default domain). */
static TB_UNUSED Onnx__NodeProto *tb_node(Onnx__ModelProto *m, const char *op, const char *name,
                                          const char *inputs, const char *outputs) {
  Onnx__NodeProto *n = tb_alloc(sizeof *n);
  onnx__node_proto__init(n);
  n->op_type = tb_str(op);
  if (name) n->name = tb_str(name);
  n->n_input = tb_split(inputs, &n->input);
  n->n_output = tb_split(outputs, &n->output);
  n->attribute = tb_arr();
  TB_PUSH(m->graph->node, m->graph->n_node, n);
  return n;
}

static TB_UNUSED Onnx__AttributeProto *tb_attr(Onnx__NodeProto *n, const char *name, int type) {
  Onnx__AttributeProto *a = tb_alloc(sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = tb_str(name);
  a->has_type = 1;
  a->type = type;
  TB_PUSH(n->attribute, n->n_attribute, a);
  return a;
}

static TB_UNUSED void tb_attr_i(Onnx__NodeProto *n, const char *name, int64_t v) {
  Onnx__AttributeProto *a = tb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  a->has_i = 1;
  a->i = v;
}

static TB_UNUSED void tb_attr_f(Onnx__NodeProto *n, const char *name, float v) {
  Onnx__AttributeProto *a = tb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  a->has_f = 1;
  a->f = v;
}

static TB_UNUSED void tb_attr_s(Onnx__NodeProto *n, const char *name, const char *v) {
  Onnx__AttributeProto *a = tb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  a->has_s = 1;
  a->s.len = strlen(v);
  a->s.data = (uint8_t *)tb_str(v);
}

static TB_UNUSED void tb_attr_ints(Onnx__NodeProto *n, const char *name, const int64_t *v, size_t count) {
  Onnx__AttributeProto *a = tb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  a->n_ints = count;
  a->ints = tb_alloc(count * sizeof(int64_t));
  memcpy(a->ints, v, count * sizeof(int64_t));
}

static TB_UNUSED void tb_attr_floats(Onnx__NodeProto *n, const char *name, const float *v, size_t count) {
  Onnx__AttributeProto *a = tb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
  a->n_floats = count;
  a->floats = tb_alloc(count * sizeof(float));
  memcpy(a->floats, v, count * sizeof(float));
}

static TB_UNUSED void tb_attr_strings(Onnx__NodeProto *n, const char *name, const char *const *v,
                                      size_t count) {
  Onnx__AttributeProto *a = tb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
  a->n_strings = count;
  a->strings = tb_alloc(count * sizeof(ProtobufCBinaryData));
  for (size_t i = 0; i < count; i++) {
    a->strings[i].len = strlen(v[i]);
    a->strings[i].data = (uint8_t *)tb_str(v[i]);
  }
}

static TB_UNUSED void tb_attr_t(Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t) {
  Onnx__AttributeProto *a = tb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
  a->t = t;
}

/* Serialized bytes of m (released by tb_reset). */
static TB_UNUSED uint8_t *tb_pack(const Onnx__ModelProto *m, size_t *len) {
  *len = onnx__model_proto__get_packed_size(m);
  uint8_t *buf = tb_alloc(*len);
  onnx__model_proto__pack(m, buf);
  return buf;
}

static TB_UNUSED uint8_t *tb_pack_tensor(const Onnx__TensorProto *t, size_t *len) {
  *len = onnx__tensor_proto__get_packed_size(t);
  uint8_t *buf = tb_alloc(*len);
  onnx__tensor_proto__pack(t, buf);
  return buf;
}

/* Writes bytes to a file; returns 0 on success. */
static TB_UNUSED int tb_write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(data, 1, len, f);
  return (fclose(f) == 0 && w == len) ? 0 : -1;
}

/* A small model for builder tests: Conv (3 -> 4 channels, 3x3, pads 1, fixed weights) + Relu on an input
 * `input` of [N, 3, 8, 8] with a symbolic batch axis, output "y"; packed (tb_reset frees it). */
static TB_UNUSED uint8_t *tb_conv_relu_model(const char *input, size_t *len) {
  Onnx__ModelProto *m = tb_model(8, 13);
  tb_input(m, input, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, (const int64_t[]){-1, 3, 8, 8});
  float w[4 * 3 * 3 * 3];
  for (int i = 0; i < (int)(sizeof w / sizeof w[0]); i++)
    w[i] = (float)((i * 7) % 11) / 11.f - 0.5f;
  Onnx__TensorProto *t =
      tb_tensor("w", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, (const int64_t[]){4, 3, 3, 3});
  tb_float_data(t, w, sizeof w / sizeof w[0]);
  tb_add_init(m, t);
  char ins[256];
  snprintf(ins, sizeof ins, "%s,w", input);
  Onnx__NodeProto *n = tb_node(m, "Conv", "conv", ins, "c");
  tb_attr_ints(n, "pads", (const int64_t[]){1, 1, 1, 1}, 4);
  tb_node(m, "Relu", "relu", "c", "y");
  tb_output(m, "y");
  return tb_pack(m, len);
}

#endif
