/* Engine file writer: validates the content against the reader's limits, encodes META and GRPH into
 * memory, then emits header, sections (weights streamed from the graph), section table and trailer to a
 * memory buffer or a file. Layout: src/engine/rie_format.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "engine/crc.h"
#include "engine/rie_format.h"
#include "graph/op.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the engine file stores tensor data in little-endian order; big-endian hosts are not supported"
#endif

/* ---- growable byte buffer ---- */

typedef struct {
  uint8_t *p;
  size_t len, cap;
  int oom; /* set once an append failed; later appends are dropped */
} wbuf;

static void put_bytes(wbuf *b, const void *src, size_t n) {
  if (b->oom || n == 0) return;
  size_t need;
  if (!ri__add_size(b->len, n, &need)) {
    b->oom = 1;
    return;
  }
  if (need > b->cap) {
    size_t nc = b->cap ? b->cap : 256;
    while (nc < need) {
      if (nc > SIZE_MAX / 2) {
        nc = need;
        break;
      }
      nc *= 2;
    }
    uint8_t *np = ri__realloc(b->p, nc);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = nc;
  }
  memcpy(b->p + b->len, src, n);
  b->len = need;
}

static void le_store(uint8_t *dst, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    dst[i] = (uint8_t)(v >> (8 * i));
}

static void put_u8(wbuf *b, unsigned v) {
  uint8_t x = (uint8_t)v;
  put_bytes(b, &x, 1);
}
static void put_u32(wbuf *b, uint32_t v) {
  uint8_t x[4];
  le_store(x, v, 4);
  put_bytes(b, x, 4);
}
static void put_i32(wbuf *b, int32_t v) { put_u32(b, (uint32_t)v); }
static void put_u64(wbuf *b, uint64_t v) {
  uint8_t x[8];
  le_store(x, v, 8);
  put_bytes(b, x, 8);
}
static void put_i64(wbuf *b, int64_t v) { put_u64(b, (uint64_t)v); }
static void put_f32(wbuf *b, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  put_u32(b, u);
}

/* Writes a string, or the NULL marker when s is NULL and nullable. `what` names the string for errors. */
static ri_status put_str(wbuf *b, const char *s, size_t limit, int nullable, const char *what, ri__err *err) {
  if (!s) {
    if (!nullable) return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: %s is NULL", what);
    put_u32(b, RI__RIE_NULL_STRING);
    return RI_OK;
  }
  size_t n = strlen(s);
  if (n > limit)
    return ri__err_set(err, RI_ERR_LIMIT, "engine writer: %s is %zu bytes long, more than the limit %zu",
                       what, n, limit);
  put_u32(b, (uint32_t)n);
  put_bytes(b, s, n);
  return RI_OK;
}

static uint64_t align_up(uint64_t x) { return (x + RI__RIE_ALIGN - 1) & ~(uint64_t)(RI__RIE_ALIGN - 1); }

/* ---- META ---- */

static ri_status encode_meta(const ri__rie_content *c, wbuf *b, ri__err *err) {
  if (c->max_batch < 1 || c->max_batch > RI__RIE_MAX_BATCH)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: max_batch %d is outside 1..%d", c->max_batch,
                       RI__RIE_MAX_BATCH);
  if (c->precision < RI_PRECISION_FP32 || c->precision > RI_PRECISION_INT8)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: unknown precision %d", c->precision);
  if (c->threads < 0 || c->threads > RI__RIE_MAX_THREADS)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: threads %d is outside 0..%d", c->threads,
                       RI__RIE_MAX_THREADS);
  if (c->arena_size < 0 || c->arena_size > RI__RIE_MAX_ARENA)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: arena size %lld is outside 0..%lld",
                       (long long)c->arena_size, (long long)RI__RIE_MAX_ARENA);
  if (c->n_meta < 0 || c->n_meta > RI__RIE_MAX_META || (c->n_meta && !c->meta))
    return ri__err_set(err, RI_ERR_LIMIT, "engine writer: %d metadata entries (limit %d)", c->n_meta,
                       RI__RIE_MAX_META);
  put_i32(b, c->max_batch);
  put_i32(b, c->precision);
  put_i32(b, c->threads);
  put_i64(b, c->arena_size);
  RI__TRY(put_str(b, c->device, RI__RIE_MAX_SHORT_STRING, 0, "device", err));
  RI__TRY(put_str(b, c->fingerprint, RI__RIE_MAX_SHORT_STRING, 0, "fingerprint", err));
  RI__TRY(put_str(b, c->library_version, RI__RIE_MAX_SHORT_STRING, 0, "library version", err));
  put_u32(b, (uint32_t)c->n_meta);
  for (int i = 0; i < c->n_meta; i++) {
    const ri__kv *kv = &c->meta[i];
    if (!kv->key || !kv->key[0])
      return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: metadata entry %d has an empty key", i);
    for (int j = 0; j < i; j++)
      if (strcmp(c->meta[j].key, kv->key) == 0)
        return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: metadata key '%s' appears twice",
                           kv->key);
    RI__TRY(put_str(b, kv->key, RI__MAX_NAME, 0, "metadata key", err));
    if (!kv->value)
      return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: metadata '%s' has a NULL value", kv->key);
    RI__TRY(put_str(b, kv->value, RI__RIE_MAX_META_VALUE, 0, "metadata value", err));
  }
  return RI_OK;
}

/* ---- GRPH ---- */

static ri_status encode_value(const ri__rie_content *c, int vi, wbuf *b, uint64_t *wofs, ri__err *err) {
  const ri__graph *g = c->graph;
  const ri__value *v = &g->values[vi];
  const char *nm = v->name ? v->name : "";
  if (v->kind != RI__VAL_ACTIVATION && v->kind != RI__VAL_INPUT && v->kind != RI__VAL_CONST)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: value %d '%s' has unknown kind %d", vi, nm,
                       (int)v->kind);
  size_t es = ri_dtype_size(v->dtype);
  if (!es && !(v->dtype == RI_DTYPE_UNDEFINED && v->kind == RI__VAL_ACTIVATION))
    return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: value %d '%s' has unsupported dtype %d", vi,
                       nm, (int)v->dtype);
  if (v->shape.rank < 0 || v->shape.rank > RI__MAX_RANK)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: value %d '%s' has rank %d", vi, nm,
                       v->shape.rank);
  int64_t numel = ri__shape_numel(&v->shape);
  if (numel < 0 || numel > RI__MAX_TENSOR_ELEMS)
    return ri__err_set(err, RI_ERR_LIMIT,
                       "engine writer: value %d '%s' has a negative dim or more than %lld elements", vi, nm,
                       (long long)RI__MAX_TENSOR_ELEMS);
  if (v->batch_axis < -1 || v->batch_axis >= v->shape.rank)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: value %d '%s' has batch axis %d for rank %d",
                       vi, nm, v->batch_axis, v->shape.rank);
  if (v->mem_offset < -1 || v->mem_size < 0 ||
      (v->mem_offset >= 0 && (v->mem_offset > c->arena_size || v->mem_size > c->arena_size - v->mem_offset)))
    return ri__err_set(err, RI_ERR_INVALID_ARG,
                       "engine writer: value %d '%s' memory [%lld, +%lld) lies outside the %lld-byte arena",
                       vi, nm, (long long)v->mem_offset, (long long)v->mem_size, (long long)c->arena_size);
  uint64_t doff = 0, dsize = 0;
  if (v->kind == RI__VAL_CONST) {
    size_t need = (size_t)numel * es;
    if (v->nbytes != need || (need && !v->data))
      return ri__err_set(err, RI_ERR_INVALID_ARG,
                         "engine writer: constant %d '%s' holds %zu bytes, its shape and dtype need %zu", vi,
                         nm, v->data ? v->nbytes : 0, need);
    doff = align_up(*wofs);
    dsize = need;
    *wofs = doff + dsize;
  }
  RI__TRY(put_str(b, v->name, RI__MAX_NAME, 1, "value name", err));
  put_u32(b, (uint32_t)v->dtype);
  put_u8(b, (unsigned)v->kind);
  put_u8(b, v->is_output != 0);
  put_u8(b, v->batch_dependent != 0);
  put_u8(b, v->host != 0);
  put_i32(b, v->batch_axis);
  put_u32(b, (uint32_t)v->shape.rank);
  for (int d = 0; d < v->shape.rank; d++)
    put_i64(b, v->shape.dims[d]);
  put_i64(b, v->mem_offset);
  put_i64(b, v->mem_size);
  put_u64(b, doff);
  put_u64(b, dsize);
  return RI_OK;
}

static ri_status encode_attr(const ri__graph *g, const ri__node *n, const ri__attr *a, wbuf *b,
                             ri__err *err) {
  const char *an = a->name ? a->name : "?";
  if ((a->type == RI__ATTR_FLOATS || a->type == RI__ATTR_INTS || a->type == RI__ATTR_STRINGS) &&
      (a->n < 0 || a->n > RI__MAX_ATTR_LIST))
    return ri__err_set(err, RI_ERR_LIMIT,
                       "engine writer: node '%s' attribute '%s' has %d elements (limit %d)", n->name, an,
                       a->n, RI__MAX_ATTR_LIST);
  RI__TRY(put_str(b, a->name, RI__MAX_NAME, 0, "attribute name", err));
  put_u32(b, (uint32_t)a->type);
  switch (a->type) {
  case RI__ATTR_FLOAT: put_f32(b, a->f); break;
  case RI__ATTR_INT: put_i64(b, a->i); break;
  case RI__ATTR_STRING: return put_str(b, a->s, RI__RIE_MAX_ATTR_STRING, 0, "string attribute", err);
  case RI__ATTR_TENSOR:
    if (a->value < 0 || a->value >= g->n_values || g->values[a->value].kind != RI__VAL_CONST)
      return ri__err_set(err, RI_ERR_INVALID_ARG,
                         "engine writer: node '%s' tensor attribute '%s' refers to value %d, not a constant",
                         n->name, an, a->value);
    put_i32(b, a->value);
    break;
  case RI__ATTR_FLOATS:
    put_u32(b, (uint32_t)a->n);
    for (int k = 0; k < a->n; k++)
      put_f32(b, a->floats[k]);
    break;
  case RI__ATTR_INTS:
    put_u32(b, (uint32_t)a->n);
    for (int k = 0; k < a->n; k++)
      put_i64(b, a->ints[k]);
    break;
  case RI__ATTR_STRINGS:
    put_u32(b, (uint32_t)a->n);
    for (int k = 0; k < a->n; k++)
      RI__TRY(put_str(b, a->strings[k], RI__RIE_MAX_ATTR_STRING, 0, "string list element", err));
    break;
  default:
    return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: node '%s' attribute '%s' has unknown type %d",
                       n->name, an, (int)a->type);
  }
  return RI_OK;
}

static ri_status put_index_list(wbuf *b, const int *idx, int n, int n_values, const char *node,
                                const char *what, int allow_absent, ri__err *err) {
  if (n < 0 || n > RI__MAX_NODE_IO)
    return ri__err_set(err, RI_ERR_LIMIT, "engine writer: '%s' has %d %s (limit %d)", node, n, what,
                       RI__MAX_NODE_IO);
  put_u32(b, (uint32_t)n);
  for (int k = 0; k < n; k++) {
    if (idx[k] >= n_values || idx[k] < (allow_absent ? -1 : 0))
      return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: '%s' %s %d refers to value %d of %d", node,
                         what, k, idx[k], n_values);
    put_i32(b, idx[k]);
  }
  return RI_OK;
}

static ri_status encode_node(const ri__graph *g, const ri__node *n, wbuf *b, ri__err *err) {
  const char *nm = n->name ? n->name : "";
  if (n->dead)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: node '%s' is dead; compact the graph first",
                       nm);
  if (!ri__op_get(n->op))
    return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: node '%s' has unknown op %d", nm, (int)n->op);
  if (n->n_attrs < 0 || n->n_attrs > RI__MAX_ATTRS)
    return ri__err_set(err, RI_ERR_LIMIT, "engine writer: node '%s' has %d attributes (limit %d)", nm,
                       n->n_attrs, RI__MAX_ATTRS);
  if ((int)n->act < RI__ACT_NONE || n->act > RI__ACT_HARD_SWISH)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: node '%s' has unknown activation %d", nm,
                       (int)n->act);
  RI__TRY(put_str(b, nm, RI__MAX_NAME, 0, "node name", err));
  RI__TRY(put_str(b, ri__op_name(n->op), RI__MAX_NAME, 0, "op name", err));
  RI__TRY(put_index_list(b, n->inputs, n->n_inputs, g->n_values, nm, "input", 1, err));
  RI__TRY(put_index_list(b, n->outputs, n->n_outputs, g->n_values, nm, "output", 1, err));
  put_u32(b, (uint32_t)n->n_attrs);
  for (int k = 0; k < n->n_attrs; k++)
    RI__TRY(encode_attr(g, n, &n->attrs[k], b, err));
  put_u32(b, (uint32_t)n->act);
  put_f32(b, n->act_a);
  put_f32(b, n->act_b);
  put_u8(b, n->host != 0);
  put_i32(b, n->tactic);
  return RI_OK;
}

/* Encodes GRPH; *weights_size receives the size of the WGHT section the value table describes. */
static ri_status encode_graph(const ri__rie_content *c, wbuf *b, uint64_t *weights_size, ri__err *err) {
  const ri__graph *g = c->graph;
  if (g->n_values < 0 || g->n_values > RI__MAX_VALUES || g->n_nodes < 0 || g->n_nodes > RI__MAX_NODES)
    return ri__err_set(err, RI_ERR_LIMIT,
                       "engine writer: graph has %d values and %d nodes (limits %d and %d)", g->n_values,
                       g->n_nodes, RI__MAX_VALUES, RI__MAX_NODES);
  if (g->opset < 0 || g->opset > RI__RIE_MAX_OPSET || g->batch < 1 || g->batch > RI__RIE_MAX_BATCH)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: graph opset %lld or batch %d out of range",
                       (long long)g->opset, g->batch);
  RI__TRY(put_str(b, g->name, RI__MAX_NAME, 1, "graph name", err));
  put_i64(b, g->opset);
  put_i32(b, g->batch);
  put_u32(b, (uint32_t)g->n_values);
  uint64_t wofs = 0;
  for (int i = 0; i < g->n_values; i++)
    RI__TRY(encode_value(c, i, b, &wofs, err));
  put_u32(b, (uint32_t)g->n_nodes);
  for (int i = 0; i < g->n_nodes; i++)
    RI__TRY(encode_node(g, &g->nodes[i], b, err));
  RI__TRY(put_index_list(b, g->inputs, g->n_inputs, g->n_values, "graph", "input", 0, err));
  for (int i = 0; i < g->n_inputs; i++)
    if (g->values[g->inputs[i]].kind != RI__VAL_INPUT)
      return ri__err_set(err, RI_ERR_INVALID_ARG,
                         "engine writer: graph input %d (value %d) is not of kind input", i, g->inputs[i]);
  RI__TRY(put_index_list(b, g->outputs, g->n_outputs, g->n_values, "graph", "output", 0, err));
  *weights_size = wofs;
  return RI_OK;
}

/* ---- emission ---- */

/* Where the bytes go: a preallocated memory buffer or a stdio stream. Tracks the whole-file CRC. */
typedef struct {
  uint8_t *mem;
  FILE *f;
  uint64_t pos;
  uint32_t crc;
  const char *path;
  ri__err *err;
} sink;

static ri_status emit(sink *s, const void *p, size_t n) {
  if (n == 0) return RI_OK;
  s->crc = ri__crc32c(s->crc, p, n);
  if (s->mem) {
    memcpy(s->mem + s->pos, p, n);
  } else if (fwrite(p, 1, n, s->f) != n) {
    return ri__err_set(s->err, RI_ERR_IO, "cannot write engine file '%s': %s", s->path, strerror(errno));
  }
  s->pos += n;
  return RI_OK;
}

static const uint8_t k_zeros[RI__RIE_ALIGN];

static ri_status emit_pad_to(sink *s, uint64_t target) {
  while (s->pos < target) {
    uint64_t n = target - s->pos;
    RI__TRY(emit(s, k_zeros, n > sizeof k_zeros ? sizeof k_zeros : (size_t)n));
  }
  return RI_OK;
}

/* Calls fn on each run of WGHT bytes (zero padding and constant data) in order. */
static ri_status for_weights(const ri__graph *g, ri_status (*fn)(void *, const void *, size_t), void *ctx) {
  uint64_t pos = 0;
  for (int i = 0; i < g->n_values; i++) {
    const ri__value *v = &g->values[i];
    if (v->kind != RI__VAL_CONST) continue;
    uint64_t at = align_up(pos);
    if (at > pos) RI__TRY(fn(ctx, k_zeros, (size_t)(at - pos)));
    if (v->nbytes) RI__TRY(fn(ctx, v->data, v->nbytes));
    pos = at + v->nbytes;
  }
  return RI_OK;
}

static ri_status crc_step(void *ctx, const void *p, size_t n) {
  uint32_t *crc = ctx;
  *crc = ri__crc32c(*crc, p, n);
  return RI_OK;
}
static ri_status emit_step(void *ctx, const void *p, size_t n) { return emit(ctx, p, n); }

typedef struct {
  wbuf meta, graph;
  uint64_t wsize;
  uint64_t off[3], size[3]; /* META, GRPH, WGHT */
  uint32_t crc[3];
  uint64_t table, total;
} plan;

static void plan_free(plan *p) {
  ri__free(p->meta.p);
  ri__free(p->graph.p);
}

static ri_status plan_make(const ri__rie_content *c, plan *p, ri__err *err) {
  memset(p, 0, sizeof *p);
  if (!c || !c->graph) return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: no content or no graph");
  ri_status st = encode_meta(c, &p->meta, err);
  if (st == RI_OK) st = encode_graph(c, &p->graph, &p->wsize, err);
  if (st == RI_OK && (p->meta.oom || p->graph.oom)) st = RI__OOM(err);
  if (st != RI_OK) {
    plan_free(p);
    return st;
  }
  p->size[0] = p->meta.len;
  p->size[1] = p->graph.len;
  p->size[2] = p->wsize;
  uint64_t pos = RI__RIE_HEADER_SIZE;
  for (int k = 0; k < 3; k++) {
    p->off[k] = align_up(pos);
    pos = p->off[k] + p->size[k];
  }
  p->table = align_up(pos);
  p->total = p->table + 3 * RI__RIE_SECTION_ENTRY + RI__RIE_TRAILER_SIZE;
  if (p->total > RI__RIE_MAX_FILE) {
    plan_free(p);
    return ri__err_set(err, RI_ERR_LIMIT, "engine writer: the file would be %llu bytes (limit %llu)",
                       (unsigned long long)p->total, (unsigned long long)RI__RIE_MAX_FILE);
  }
  p->crc[0] = ri__crc32c(0, p->meta.p, p->meta.len);
  p->crc[1] = ri__crc32c(0, p->graph.p, p->graph.len);
  (void)for_weights(c->graph, crc_step, &p->crc[2]);
  return RI_OK;
}

static ri_status emit_all(const ri__rie_content *c, const plan *p, sink *s) {
  uint8_t h[RI__RIE_HEADER_SIZE] = {0};
  memcpy(h, RI__RIE_MAGIC, 8);
  le_store(h + RI__RIE_OFF_VERSION, RI__RIE_FORMAT_VERSION, 4);
  le_store(h + RI__RIE_OFF_HEADER_SIZE, RI__RIE_HEADER_SIZE, 4);
  le_store(h + RI__RIE_OFF_FLAGS, 0, 4);
  le_store(h + RI__RIE_OFF_SECTIONS, 3, 4);
  le_store(h + RI__RIE_OFF_FILE_SIZE, p->total, 8);
  le_store(h + RI__RIE_OFF_TABLE, p->table, 8);
  RI__TRY(emit(s, h, sizeof h));
  RI__TRY(emit_pad_to(s, p->off[0]));
  RI__TRY(emit(s, p->meta.p, p->meta.len));
  RI__TRY(emit_pad_to(s, p->off[1]));
  RI__TRY(emit(s, p->graph.p, p->graph.len));
  RI__TRY(emit_pad_to(s, p->off[2]));
  RI__TRY(for_weights(c->graph, emit_step, s));
  RI__TRY(emit_pad_to(s, p->table));
  static const uint32_t tags[3] = {RI__RIE_TAG_META, RI__RIE_TAG_GRAPH, RI__RIE_TAG_WEIGHTS};
  for (int k = 0; k < 3; k++) {
    uint8_t e[RI__RIE_SECTION_ENTRY];
    le_store(e, tags[k], 4);
    le_store(e + 4, p->crc[k], 4);
    le_store(e + 8, p->off[k], 8);
    le_store(e + 16, p->size[k], 8);
    RI__TRY(emit(s, e, sizeof e));
  }
  uint8_t t[RI__RIE_TRAILER_SIZE];
  le_store(t, s->crc, 4);
  memcpy(t + 4, RI__RIE_END_MARKER, 4);
  return emit(s, t, sizeof t);
}

ri_status ri__rie_write(const ri__rie_content *c, void **out, size_t *out_size, ri__err *err) {
  if (!out || !out_size) return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: NULL output");
  plan p;
  RI__TRY(plan_make(c, &p, err));
  if (p.total > SIZE_MAX) {
    plan_free(&p);
    return ri__err_set(err, RI_ERR_LIMIT, "engine writer: %llu bytes do not fit in memory",
                       (unsigned long long)p.total);
  }
  uint8_t *mem = ri__malloc((size_t)p.total);
  if (!mem) {
    plan_free(&p);
    return RI__OOM(err);
  }
  sink s = {.mem = mem, .err = err, .path = "<memory>"};
  ri_status st = emit_all(c, &p, &s);
  plan_free(&p);
  if (st != RI_OK) {
    ri__free(mem);
    return st;
  }
  *out = mem;
  *out_size = (size_t)s.pos;
  return RI_OK;
}

/* Makes the rename durable by syncing the directory that holds `path` (scratch is overwritten). Best
 * effort: the file itself is already complete and synced. */
static void sync_parent_dir(char *scratch) {
  char *slash = strrchr(scratch, '/');
  const char *dir = scratch;
  if (!slash)
    dir = ".";
  else if (slash == scratch)
    slash[1] = 0;
  else
    *slash = 0;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
}

ri_status ri__rie_write_file(const ri__rie_content *c, const char *path, ri__err *err) {
  if (!path || !path[0]) return ri__err_set(err, RI_ERR_INVALID_ARG, "engine writer: no path");
  plan p;
  RI__TRY(plan_make(c, &p, err));
  size_t plen = strlen(path);
  char *tmp = ri__malloc(plen + sizeof ".tmp-XXXXXX");
  if (!tmp) {
    plan_free(&p);
    return RI__OOM(err);
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp-XXXXXX", sizeof ".tmp-XXXXXX");
  ri_status st = RI_OK;
  int fd = mkstemp(tmp);
  FILE *f = NULL;
  if (fd < 0) {
    st =
        ri__err_set(err, RI_ERR_IO, "cannot create a temporary file next to '%s': %s", path, strerror(errno));
    goto done;
  }
  /* mkstemp creates the file readable by its owner only; engine files are ordinary data files. */
  (void)fchmod(fd, 0644);
  f = fdopen(fd, "wb");
  if (!f) {
    st = ri__err_set(err, RI_ERR_IO, "cannot write engine file '%s': %s", path, strerror(errno));
    close(fd);
    goto fail;
  }
  sink s = {.f = f, .err = err, .path = path};
  st = emit_all(c, &p, &s);
  if (st == RI_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0))
    st = ri__err_set(err, RI_ERR_IO, "cannot write engine file '%s': %s", path, strerror(errno));
  if (fclose(f) != 0 && st == RI_OK)
    st = ri__err_set(err, RI_ERR_IO, "cannot write engine file '%s': %s", path, strerror(errno));
  if (st != RI_OK) goto fail;
  if (rename(tmp, path) != 0) {
    st = ri__err_set(err, RI_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    goto fail;
  }
  sync_parent_dir(tmp);
  goto done;
fail:
  unlink(tmp);
done:
  ri__free(tmp);
  plan_free(&p);
  return st;
}
