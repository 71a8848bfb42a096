/* Decoder of the GRPH section (layout: src/engine/rie_format.h). Every count is checked against its limit
 * and the remaining bytes before anything is allocated for it; every index is checked against the table it
 * points into. Topology (producers, order) is left to ri__graph_link. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/alloc.h"
#include "engine/rie_decode.h"
#include "graph/op.h"

/* Smallest encodings, used to bound counts by the bytes that remain. */
#define VALUE_MIN_BYTES 52 /* name, dtype, 4 flag bytes, batch_axis, rank, mem x2, data x2 */
#define NODE_MIN_BYTES  37 /* name, op, 3 counts, act, act_a, act_b, host, tactic */
#define ATTR_MIN_BYTES  12 /* name, type, smallest payload */

static int dtype_known(uint32_t code) { return code <= 64 && ri_dtype_size((ri_dtype)code) != 0; }

/* Hands the whole pages inside [p, p + n) back to the OS (see `drop` in rie_decode.h); best effort. */
static void drop_pages(const uint8_t *p, uint64_t n) {
#ifdef MADV_DONTNEED
  const long ps = sysconf(_SC_PAGESIZE);
  if (ps <= 0 || n == 0) return;
  const uintptr_t page = (uintptr_t)ps;
  const uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1),
                  b = ((uintptr_t)p + (uintptr_t)n) & ~(page - 1);
  if (b > a) (void)madvise((void *)a, b - a, MADV_DONTNEED);
#else
  (void)p;
  (void)n;
#endif
}

static ri_status decode_value(ri__rie_cur *c, ri__graph *g, int vi, const uint8_t *weights, uint64_t wsize,
                              int64_t arena, int drop) {
  ri__value *v = &g->values[vi];
  v->producer = -1;
  c->item = "value";
  c->index = vi;
  c->item_name = NULL;
  RI__TRY(ri__rie_cur_str(c, RI__MAX_NAME, 1, "name", &v->name));
  c->item_name = v->name;
  uint32_t dtype, rank;
  uint8_t kind;
  RI__TRY(ri__rie_cur_u32(c, "dtype", &dtype));
  RI__TRY(ri__rie_cur_u8(c, "kind", &kind));
  if (kind > RI__VAL_CONST)
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "kind %u is not 0, 1 or 2", (unsigned)kind);
  v->kind = (ri__val_kind)kind;
  if (!dtype_known(dtype) && !(dtype == RI_DTYPE_UNDEFINED && v->kind == RI__VAL_ACTIVATION))
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "dtype code %lu is not a supported element type",
                            (unsigned long)dtype);
  v->dtype = (ri_dtype)dtype;
  RI__TRY(ri__rie_cur_bool(c, "is_output", &v->is_output));
  RI__TRY(ri__rie_cur_bool(c, "batch_dependent", &v->batch_dependent));
  RI__TRY(ri__rie_cur_bool(c, "host", &v->host));
  int32_t batch_axis;
  RI__TRY(ri__rie_cur_i32(c, "batch_axis", &batch_axis));
  RI__TRY(ri__rie_cur_u32(c, "rank", &rank));
  if (rank > RI__MAX_RANK)
    return ri__rie_cur_fail(c, RI_ERR_LIMIT, "rank %lu exceeds the limit %d", (unsigned long)rank,
                            RI__MAX_RANK);
  v->shape.rank = (int)rank;
  for (uint32_t d = 0; d < rank; d++) {
    RI__TRY(ri__rie_cur_i64(c, "dim", &v->shape.dims[d]));
    if (v->shape.dims[d] < 0)
      return ri__rie_cur_fail(c, RI_ERR_PARSE, "dim %lu is %lld; dims must be >= 0", (unsigned long)d,
                              (long long)v->shape.dims[d]);
  }
  char sbuf[200];
  int64_t numel = ri__shape_numel(&v->shape);
  if (numel < 0 || numel > RI__MAX_TENSOR_ELEMS)
    return ri__rie_cur_fail(c, RI_ERR_LIMIT, "shape %s exceeds the limit of %lld elements",
                            ri__shape_str(&v->shape, sbuf, sizeof sbuf), (long long)RI__MAX_TENSOR_ELEMS);
  if (batch_axis < -1 || batch_axis >= (int32_t)rank)
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "batch axis %ld is not -1 or an axis of rank %lu",
                            (long)batch_axis, (unsigned long)rank);
  v->batch_axis = batch_axis;
  RI__TRY(ri__rie_cur_i64(c, "mem_offset", &v->mem_offset));
  RI__TRY(ri__rie_cur_i64(c, "mem_size", &v->mem_size));
  if (v->mem_offset < -1 || v->mem_size < 0 ||
      (v->mem_offset >= 0 && (v->mem_offset > arena || v->mem_size > arena - v->mem_offset)))
    return ri__rie_cur_fail(c, RI_ERR_PARSE,
                            "memory range offset %lld size %lld lies outside the %lld-byte arena",
                            (long long)v->mem_offset, (long long)v->mem_size, (long long)arena);
  uint64_t doff, dsize;
  RI__TRY(ri__rie_cur_u64(c, "data offset", &doff));
  RI__TRY(ri__rie_cur_u64(c, "data size", &dsize));
  if (v->kind != RI__VAL_CONST) {
    if (doff || dsize)
      return ri__rie_cur_fail(c, RI_ERR_PARSE, "is not a constant but has data (offset %llu, size %llu)",
                              (unsigned long long)doff, (unsigned long long)dsize);
    return RI_OK;
  }
  uint64_t need = (uint64_t)numel * ri_dtype_size(v->dtype);
  if (dsize != need)
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "constant holds %llu bytes but shape %s of %s needs %llu",
                            (unsigned long long)dsize, ri__shape_str(&v->shape, sbuf, sizeof sbuf),
                            ri_dtype_name(v->dtype), (unsigned long long)need);
  if (doff % RI__RIE_ALIGN != 0 || doff > wsize || dsize > wsize - doff)
    return ri__rie_cur_fail(c, RI_ERR_PARSE,
                            "constant data at offset %llu size %llu is not a 64-byte aligned range of the "
                            "%llu-byte WGHT section",
                            (unsigned long long)doff, (unsigned long long)dsize, (unsigned long long)wsize);
  v->data = ri__malloc((size_t)dsize);
  if (!v->data)
    return ri__rie_cur_fail(c, RI_ERR_NO_MEMORY, "out of memory for %llu bytes of constant data",
                            (unsigned long long)dsize);
  if (dsize) memcpy(v->data, weights + doff, (size_t)dsize);
  if (drop) drop_pages(weights + doff, dsize);
  v->nbytes = (size_t)dsize;
  return RI_OK;
}

static ri_status decode_attr(ri__rie_cur *c, const ri__graph *g, ri__attr *a) {
  RI__TRY(ri__rie_cur_str(c, RI__MAX_NAME, 0, "attribute name", &a->name));
  uint32_t type, n;
  RI__TRY(ri__rie_cur_u32(c, "attribute type", &type));
  switch (type) {
  case RI__ATTR_FLOAT: a->type = RI__ATTR_FLOAT; return ri__rie_cur_f32(c, "float attribute", &a->f);
  case RI__ATTR_INT: a->type = RI__ATTR_INT; return ri__rie_cur_i64(c, "int attribute", &a->i);
  case RI__ATTR_STRING:
    a->type = RI__ATTR_STRING;
    return ri__rie_cur_str(c, RI__RIE_MAX_ATTR_STRING, 0, "string attribute", &a->s);
  case RI__ATTR_TENSOR: {
    a->type = RI__ATTR_TENSOR;
    int32_t vi;
    RI__TRY(ri__rie_cur_i32(c, "tensor attribute", &vi));
    if (vi < 0 || vi >= g->n_values || g->values[vi].kind != RI__VAL_CONST)
      return ri__rie_cur_fail(c, RI_ERR_PARSE,
                              "tensor attribute '%s' refers to value %ld, not one of the %d "
                              "values' constants",
                              a->name, (long)vi, g->n_values);
    a->value = vi;
    return RI_OK;
  }
  case RI__ATTR_FLOATS:
  case RI__ATTR_INTS: {
    size_t es = type == RI__ATTR_FLOATS ? 4 : 8;
    RI__TRY(ri__rie_cur_count(c, RI__MAX_ATTR_LIST, es, "attribute list length", &n));
    const uint8_t *b;
    RI__TRY(ri__rie_cur_bytes(c, n * es, "attribute list", &b));
    void *arr = ri__malloc(n * es);
    if (!arr) return ri__rie_cur_fail(c, RI_ERR_NO_MEMORY, "out of memory for attribute '%s'", a->name);
    /* Elements are stored little-endian, the host's order (rie_format.h). */
    if (n) memcpy(arr, b, n * es);
    a->type = (ri__attr_type)type;
    if (type == RI__ATTR_FLOATS)
      a->floats = arr;
    else
      a->ints = arr;
    a->n = (int)n;
    return RI_OK;
  }
  case RI__ATTR_STRINGS: {
    RI__TRY(ri__rie_cur_count(c, RI__MAX_ATTR_LIST, 4, "attribute list length", &n));
    a->type = RI__ATTR_STRINGS;
    a->strings = ri__calloc(n ? n : 1, sizeof(char *));
    if (!a->strings)
      return ri__rie_cur_fail(c, RI_ERR_NO_MEMORY, "out of memory for attribute '%s'", a->name);
    a->n = (int)n;
    for (uint32_t k = 0; k < n; k++)
      RI__TRY(ri__rie_cur_str(c, RI__RIE_MAX_ATTR_STRING, 0, "string list element", &a->strings[k]));
    return RI_OK;
  }
  default:
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "attribute '%s' has unknown type %lu", a->name,
                            (unsigned long)type);
  }
}

/* Reads a list of value indices into a new array (at least one element allocated, as ir.c does). */
static ri_status decode_index_list(ri__rie_cur *c, int n_values, int allow_absent, uint32_t limit,
                                   const char *what, int **out, int *n_out) {
  uint32_t n;
  RI__TRY(ri__rie_cur_count(c, limit, 4, what, &n));
  int *arr = ri__calloc(n ? n : 1, sizeof(int));
  if (!arr)
    return ri__rie_cur_fail(c, RI_ERR_NO_MEMORY, "out of memory for %lu %s entries", (unsigned long)n, what);
  *out = arr;
  *n_out = (int)n;
  for (uint32_t k = 0; k < n; k++) {
    int32_t idx;
    RI__TRY(ri__rie_cur_i32(c, what, &idx));
    if (idx >= n_values || idx < (allow_absent ? -1 : 0))
      return ri__rie_cur_fail(c, RI_ERR_PARSE, "%s %lu refers to value %ld, but the graph has %d values",
                              what, (unsigned long)k, (long)idx, n_values);
    arr[k] = idx;
  }
  return RI_OK;
}

static ri_status decode_node(ri__rie_cur *c, ri__graph *g, int ni) {
  ri__node *n = &g->nodes[ni];
  c->item = "node";
  c->index = ni;
  c->item_name = NULL;
  RI__TRY(ri__rie_cur_str(c, RI__MAX_NAME, 0, "name", &n->name));
  c->item_name = n->name;
  const char *op;
  size_t oplen;
  RI__TRY(ri__rie_cur_view(c, RI__MAX_NAME, 0, "op name", &op, &oplen));
  char opname[128];
  if (oplen >= sizeof opname)
    return ri__rie_cur_fail(c, RI_ERR_UNSUPPORTED, "unknown op '%.100s...' (%zu bytes long)", op, oplen);
  memcpy(opname, op, oplen);
  opname[oplen] = 0;
  if (!ri__op_from_name(opname, &n->op))
    return ri__rie_cur_fail(c, RI_ERR_UNSUPPORTED, "unknown op '%s' (not supported by this library)", opname);
  RI__TRY(decode_index_list(c, g->n_values, 1, RI__MAX_NODE_IO, "input", &n->inputs, &n->n_inputs));
  RI__TRY(decode_index_list(c, g->n_values, 1, RI__MAX_NODE_IO, "output", &n->outputs, &n->n_outputs));
  uint32_t na;
  RI__TRY(ri__rie_cur_count(c, RI__MAX_ATTRS, ATTR_MIN_BYTES, "attribute count", &na));
  n->attrs = ri__calloc(na ? na : 1, sizeof(ri__attr));
  if (!n->attrs)
    return ri__rie_cur_fail(c, RI_ERR_NO_MEMORY, "out of memory for %lu attributes", (unsigned long)na);
  n->n_attrs = (int)na;
  for (uint32_t k = 0; k < na; k++)
    RI__TRY(decode_attr(c, g, &n->attrs[k]));
  uint32_t act;
  RI__TRY(ri__rie_cur_u32(c, "activation", &act));
  if (act > RI__ACT_HARD_SWISH)
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "activation code %lu is unknown", (unsigned long)act);
  n->act = (ri__act)act;
  RI__TRY(ri__rie_cur_f32(c, "act_a", &n->act_a));
  RI__TRY(ri__rie_cur_f32(c, "act_b", &n->act_b));
  RI__TRY(ri__rie_cur_bool(c, "host", &n->host));
  int32_t tactic;
  RI__TRY(ri__rie_cur_i32(c, "tactic", &tactic));
  n->tactic = tactic;
  return RI_OK;
}

ri_status ri__rie_decode_graph(ri__rie_cur *c, const uint8_t *weights, uint64_t wsize, int64_t arena_size,
                               int drop, ri__graph **out) {
  ri__graph *g = ri__graph_create();
  if (!g) return ri__rie_cur_fail(c, RI_ERR_NO_MEMORY, "out of memory for the graph");
  *out = g;
  c->item = NULL;
  RI__TRY(ri__rie_cur_str(c, RI__MAX_NAME, 1, "graph name", &g->name));
  int64_t opset;
  int32_t batch;
  RI__TRY(ri__rie_cur_i64(c, "opset", &opset));
  if (opset < 0 || opset > RI__RIE_MAX_OPSET)
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "opset %lld is outside 0..%d", (long long)opset,
                            RI__RIE_MAX_OPSET);
  g->opset = opset;
  RI__TRY(ri__rie_cur_i32(c, "batch", &batch));
  if (batch < 1 || batch > RI__RIE_MAX_BATCH)
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "batch %ld is outside 1..%d", (long)batch, RI__RIE_MAX_BATCH);
  g->batch = batch;

  uint32_t nv, nn;
  RI__TRY(ri__rie_cur_count(c, RI__MAX_VALUES, VALUE_MIN_BYTES, "value count", &nv));
  g->values = ri__calloc(nv ? nv : 1, sizeof(ri__value));
  if (!g->values)
    return ri__rie_cur_fail(c, RI_ERR_NO_MEMORY, "out of memory for %lu values", (unsigned long)nv);
  g->n_values = g->cap_values = (int)nv;
  for (uint32_t i = 0; i < nv; i++)
    RI__TRY(decode_value(c, g, (int)i, weights, wsize, arena_size, drop));

  c->item = NULL;
  RI__TRY(ri__rie_cur_count(c, RI__MAX_NODES, NODE_MIN_BYTES, "node count", &nn));
  g->nodes = ri__calloc(nn ? nn : 1, sizeof(ri__node));
  if (!g->nodes)
    return ri__rie_cur_fail(c, RI_ERR_NO_MEMORY, "out of memory for %lu nodes", (unsigned long)nn);
  g->n_nodes = g->cap_nodes = (int)nn;
  for (uint32_t i = 0; i < nn; i++)
    RI__TRY(decode_node(c, g, (int)i));

  c->item = NULL;
  RI__TRY(decode_index_list(c, g->n_values, 0, RI__MAX_VALUES, "graph input", &g->inputs, &g->n_inputs));
  for (int i = 0; i < g->n_inputs; i++)
    if (g->values[g->inputs[i]].kind != RI__VAL_INPUT)
      return ri__rie_cur_fail(c, RI_ERR_PARSE, "graph input %d is value %d, which is not of kind input", i,
                              g->inputs[i]);
  RI__TRY(decode_index_list(c, g->n_values, 0, RI__MAX_VALUES, "graph output", &g->outputs, &g->n_outputs));
  if (c->pos != c->size)
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "%zu unexpected bytes after the graph outputs",
                            c->size - c->pos);
  return RI_OK;
}
