#include "graph/ir.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

ri__graph *ri__graph_create(void) {
  ri__graph *g = ri__calloc(1, sizeof *g);
  if (g) g->batch = 1;
  return g;
}

void ri__attr_free(ri__attr *a) {
  if (!a) return;
  ri__free(a->name);
  ri__free(a->s);
  ri__free(a->floats);
  ri__free(a->ints);
  if (a->strings) {
    for (int i = 0; i < a->n; i++)
      ri__free(a->strings[i]);
    ri__free(a->strings);
  }
  memset(a, 0, sizeof *a);
}

static void node_free(ri__node *n) {
  ri__free(n->name);
  ri__free(n->inputs);
  ri__free(n->outputs);
  for (int i = 0; i < n->n_attrs; i++)
    ri__attr_free(&n->attrs[i]);
  ri__free(n->attrs);
  ri__free(n->params);
}

void ri__graph_destroy(ri__graph *g) {
  if (!g) return;
  for (int i = 0; i < g->n_values; i++) {
    ri__free(g->values[i].name);
    ri__free(g->values[i].data);
  }
  ri__free(g->values);
  for (int i = 0; i < g->n_nodes; i++)
    node_free(&g->nodes[i]);
  ri__free(g->nodes);
  ri__free(g->inputs);
  ri__free(g->outputs);
  ri__free(g->name);
  ri__free(g);
}

static int grow(void **arr, int *cap, int need, size_t elem) {
  if (need <= *cap) return 1;
  int nc = *cap ? *cap * 2 : 16;
  while (nc < need)
    nc *= 2;
  size_t bytes;
  if (!ri__mul_size((size_t)nc, elem, &bytes)) return 0;
  void *p = ri__realloc(*arr, bytes);
  if (!p) return 0;
  memset((char *)p + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
  *arr = p;
  *cap = nc;
  return 1;
}

int ri__graph_add_value(ri__graph *g, const char *name, ri_dtype dtype, const ri__shape *shape,
                        ri__val_kind kind) {
  if (g->n_values >= RI__MAX_VALUES) return -1;
  if (!grow((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof(ri__value))) return -1;
  ri__value *v = &g->values[g->n_values];
  memset(v, 0, sizeof *v);
  if (name) {
    v->name = ri__strdup(name);
    if (!v->name) return -1;
  }
  v->dtype = dtype;
  if (shape) v->shape = *shape;
  v->kind = kind;
  v->producer = -1;
  v->batch_axis = -1;
  v->mem_offset = -1;
  return g->n_values++;
}

int ri__graph_add_const(ri__graph *g, const char *name, ri_dtype dtype, const ri__shape *shape, void *data,
                        size_t nbytes) {
  int idx = ri__graph_add_value(g, name, dtype, shape, RI__VAL_CONST);
  if (idx < 0) {
    ri__free(data);
    return -1;
  }
  g->values[idx].data = data;
  g->values[idx].nbytes = nbytes;
  return idx;
}

int ri__graph_add_node(ri__graph *g, const char *name, ri__op op, const int *inputs, int n_inputs,
                       const int *outputs, int n_outputs) {
  if (g->n_nodes >= RI__MAX_NODES || n_inputs < 0 || n_outputs < 0 || n_inputs > RI__MAX_NODE_IO ||
      n_outputs > RI__MAX_NODE_IO)
    return -1;
  if (!grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(ri__node))) return -1;
  ri__node *n = &g->nodes[g->n_nodes];
  memset(n, 0, sizeof *n);
  n->op = op;
  n->name = ri__strdup(name ? name : "");
  n->inputs = ri__calloc((size_t)(n_inputs ? n_inputs : 1), sizeof(int));
  n->outputs = ri__calloc((size_t)(n_outputs ? n_outputs : 1), sizeof(int));
  if (!n->name || !n->inputs || !n->outputs) {
    node_free(n);
    memset(n, 0, sizeof *n);
    return -1;
  }
  if (n_inputs) memcpy(n->inputs, inputs, (size_t)n_inputs * sizeof(int));
  if (n_outputs) memcpy(n->outputs, outputs, (size_t)n_outputs * sizeof(int));
  n->n_inputs = n_inputs;
  n->n_outputs = n_outputs;
  return g->n_nodes++;
}

ri_status ri__graph_add_attr(ri__graph *g, int node, ri__attr *attr, ri__err *err) {
  ri__node *n = &g->nodes[node];
  if (n->n_attrs >= RI__MAX_ATTRS) {
    ri__attr_free(attr);
    return ri__err_set(err, RI_ERR_LIMIT, "node '%s': more than %d attributes", n->name, RI__MAX_ATTRS);
  }
  ri__attr *p = ri__realloc(n->attrs, (size_t)(n->n_attrs + 1) * sizeof(ri__attr));
  if (!p) {
    ri__attr_free(attr);
    return RI__OOM(err);
  }
  n->attrs = p;
  n->attrs[n->n_attrs++] = *attr;
  memset(attr, 0, sizeof *attr);
  return RI_OK;
}

int ri__graph_find_value(const ri__graph *g, const char *name) {
  for (int i = 0; i < g->n_values; i++)
    if (g->values[i].name && strcmp(g->values[i].name, name) == 0) return i;
  return -1;
}

ri_status ri__graph_link(ri__graph *g, ri__err *err) {
  for (int i = 0; i < g->n_values; i++)
    g->values[i].producer = -1;
  for (int i = 0; i < g->n_inputs; i++)
    if (g->inputs[i] < 0 || g->inputs[i] >= g->n_values)
      return ri__err_set(err, RI_ERR_PARSE, "graph input %d refers to no value", i);
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i] < 0 || g->outputs[i] >= g->n_values)
      return ri__err_set(err, RI_ERR_PARSE, "graph output %d refers to no value", i);
  for (int ni = 0; ni < g->n_nodes; ni++) {
    ri__node *n = &g->nodes[ni];
    if (n->dead) continue;
    for (int k = 0; k < n->n_outputs; k++) {
      int o = n->outputs[k];
      if (o < 0) continue;
      if (o >= g->n_values)
        return ri__err_set(err, RI_ERR_PARSE, "node '%s' output %d refers to no value", n->name, k);
      ri__value *v = &g->values[o];
      if (v->kind != RI__VAL_ACTIVATION)
        return ri__err_set(err, RI_ERR_PARSE, "node '%s' writes '%s', which is a graph input or constant",
                           n->name, v->name ? v->name : "?");
      if (v->producer >= 0)
        return ri__err_set(err, RI_ERR_PARSE, "value '%s' is produced by two nodes ('%s' and '%s')",
                           v->name ? v->name : "?", g->nodes[v->producer].name, n->name);
      v->producer = ni;
    }
  }
  for (int ni = 0; ni < g->n_nodes; ni++) {
    ri__node *n = &g->nodes[ni];
    if (n->dead) continue;
    for (int k = 0; k < n->n_inputs; k++) {
      int in = n->inputs[k];
      if (in < 0) continue;
      if (in >= g->n_values)
        return ri__err_set(err, RI_ERR_PARSE, "node '%s' input %d refers to no value", n->name, k);
      ri__value *v = &g->values[in];
      if (v->kind == RI__VAL_ACTIVATION && v->producer < 0)
        return ri__err_set(err, RI_ERR_PARSE,
                           "node '%s' input %d ('%s') is neither a graph input, an initializer nor a node "
                           "output",
                           n->name, k, v->name ? v->name : "?");
      if (v->kind == RI__VAL_ACTIVATION && v->producer >= ni)
        return ri__err_set(err, RI_ERR_PARSE, "node '%s' input '%s' is produced later (graph not sorted)",
                           n->name, v->name ? v->name : "?");
    }
  }
  for (int i = 0; i < g->n_outputs; i++) {
    ri__value *v = &g->values[g->outputs[i]];
    if (v->kind == RI__VAL_ACTIVATION && v->producer < 0)
      return ri__err_set(err, RI_ERR_PARSE, "graph output '%s' is produced by no node",
                         v->name ? v->name : "?");
  }
  return RI_OK;
}

ri_status ri__graph_toposort(ri__graph *g, ri__err *err) {
  /* producer map ignoring order */
  int nv = g->n_values, nn = g->n_nodes;
  int *prod = ri__malloc((size_t)(nv ? nv : 1) * sizeof(int));
  int *indeg = ri__calloc((size_t)(nn ? nn : 1), sizeof(int));
  int *order = ri__malloc((size_t)(nn ? nn : 1) * sizeof(int));
  int *queue = ri__malloc((size_t)(nn ? nn : 1) * sizeof(int));
  ri__node *sorted = ri__malloc((size_t)(nn ? nn : 1) * sizeof(ri__node));
  ri_status st = RI_OK;
  if (!prod || !indeg || !order || !queue || !sorted) {
    st = RI__OOM(err);
    goto done;
  }
  for (int i = 0; i < nv; i++)
    prod[i] = -1;
  for (int ni = 0; ni < nn; ni++) {
    const ri__node *n = &g->nodes[ni];
    for (int k = 0; k < n->n_outputs; k++) {
      int o = n->outputs[k];
      if (o < 0) continue;
      if (o >= nv) {
        st = ri__err_set(err, RI_ERR_PARSE, "node '%s' output %d refers to no value", n->name, k);
        goto done;
      }
      if (prod[o] >= 0) {
        st = ri__err_set(err, RI_ERR_PARSE, "value '%s' is produced by two nodes ('%s' and '%s')",
                         g->values[o].name ? g->values[o].name : "?", g->nodes[prod[o]].name, n->name);
        goto done;
      }
      prod[o] = ni;
    }
  }
  for (int ni = 0; ni < nn; ni++) {
    const ri__node *n = &g->nodes[ni];
    for (int k = 0; k < n->n_inputs; k++) {
      int in = n->inputs[k];
      if (in < 0) continue;
      if (in >= nv) {
        st = ri__err_set(err, RI_ERR_PARSE, "node '%s' input %d refers to no value", n->name, k);
        goto done;
      }
      if (prod[in] >= 0) indeg[ni]++;
    }
  }
  /* Kahn's algorithm, stable: among ready nodes, original order first. Edges are rescanned per node;
   * the adjacency is built on the fly through a consumer scan, O(N * E) in the worst case but fine for
   * the graph sizes bounded by RI__MAX_NODES in practice (a few thousand nodes). */
  int head = 0, tail = 0, count = 0;
  for (int ni = 0; ni < nn; ni++)
    if (indeg[ni] == 0) queue[tail++] = ni;
  /* consumer lists */
  int *cstart = ri__calloc((size_t)nv + 1, sizeof(int));
  int total = 0;
  for (int ni = 0; ni < nn; ni++)
    total += g->nodes[ni].n_inputs;
  int *clist = ri__malloc((size_t)(total ? total : 1) * sizeof(int));
  int *cfill = ri__calloc((size_t)nv + 1, sizeof(int));
  if (!cstart || !clist || !cfill) {
    ri__free(cstart);
    ri__free(clist);
    ri__free(cfill);
    st = RI__OOM(err);
    goto done;
  }
  for (int ni = 0; ni < nn; ni++)
    for (int k = 0; k < g->nodes[ni].n_inputs; k++)
      if (g->nodes[ni].inputs[k] >= 0) cstart[g->nodes[ni].inputs[k] + 1]++;
  for (int i = 0; i < nv; i++)
    cstart[i + 1] += cstart[i];
  for (int ni = 0; ni < nn; ni++)
    for (int k = 0; k < g->nodes[ni].n_inputs; k++) {
      int in = g->nodes[ni].inputs[k];
      if (in >= 0) clist[cstart[in] + cfill[in]++] = ni;
    }
  while (head < tail) {
    int ni = queue[head++];
    order[count++] = ni;
    const ri__node *n = &g->nodes[ni];
    for (int k = 0; k < n->n_outputs; k++) {
      int o = n->outputs[k];
      if (o < 0) continue;
      for (int c = cstart[o]; c < cstart[o + 1]; c++)
        if (--indeg[clist[c]] == 0) queue[tail++] = clist[c];
    }
  }
  ri__free(cstart);
  ri__free(clist);
  ri__free(cfill);
  if (count != nn) {
    const char *name = "?";
    for (int ni = 0; ni < nn; ni++)
      if (indeg[ni] > 0) {
        name = g->nodes[ni].name;
        break;
      }
    st = ri__err_set(err, RI_ERR_PARSE, "graph has a cycle (node '%s' depends on itself)", name);
    goto done;
  }
  for (int i = 0; i < nn; i++)
    sorted[i] = g->nodes[order[i]];
  if (nn) memcpy(g->nodes, sorted, (size_t)nn * sizeof(ri__node));
  st = ri__graph_link(g, err);
done:
  ri__free(prod);
  ri__free(indeg);
  ri__free(order);
  ri__free(queue);
  ri__free(sorted);
  return st;
}

ri_status ri__graph_compact(ri__graph *g, ri__err *err) {
  int nv = g->n_values;
  int *used = ri__calloc((size_t)(nv ? nv : 1), sizeof(int));
  int *remap = ri__malloc((size_t)(nv ? nv : 1) * sizeof(int));
  if (!used || !remap) {
    ri__free(used);
    ri__free(remap);
    return RI__OOM(err);
  }
  /* drop dead nodes */
  int w = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i].dead) {
      node_free(&g->nodes[i]);
      continue;
    }
    g->nodes[w++] = g->nodes[i];
  }
  g->n_nodes = w;
  for (int i = 0; i < g->n_inputs; i++)
    used[g->inputs[i]] = 1;
  for (int i = 0; i < g->n_outputs; i++)
    used[g->outputs[i]] = 1;
  for (int ni = 0; ni < g->n_nodes; ni++) {
    const ri__node *n = &g->nodes[ni];
    for (int k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] >= 0) used[n->inputs[k]] = 1;
    for (int k = 0; k < n->n_outputs; k++)
      if (n->outputs[k] >= 0) used[n->outputs[k]] = 1;
    for (int k = 0; k < n->n_attrs; k++)
      if (n->attrs[k].type == RI__ATTR_TENSOR && n->attrs[k].value >= 0) used[n->attrs[k].value] = 1;
  }
  w = 0;
  for (int i = 0; i < nv; i++) {
    if (!used[i]) {
      ri__free(g->values[i].name);
      ri__free(g->values[i].data);
      remap[i] = -1;
      continue;
    }
    remap[i] = w;
    g->values[w++] = g->values[i];
  }
  g->n_values = w;
  for (int i = 0; i < g->n_inputs; i++)
    g->inputs[i] = remap[g->inputs[i]];
  for (int i = 0; i < g->n_outputs; i++)
    g->outputs[i] = remap[g->outputs[i]];
  for (int ni = 0; ni < g->n_nodes; ni++) {
    ri__node *n = &g->nodes[ni];
    for (int k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] >= 0) n->inputs[k] = remap[n->inputs[k]];
    for (int k = 0; k < n->n_outputs; k++)
      if (n->outputs[k] >= 0) n->outputs[k] = remap[n->outputs[k]];
    for (int k = 0; k < n->n_attrs; k++)
      if (n->attrs[k].type == RI__ATTR_TENSOR && n->attrs[k].value >= 0)
        n->attrs[k].value = remap[n->attrs[k].value];
  }
  ri__free(used);
  ri__free(remap);
  return ri__graph_link(g, err);
}

/* ---- attributes ---- */
const ri__attr *ri__node_attr(const ri__node *n, const char *name) {
  for (int i = 0; i < n->n_attrs; i++)
    if (n->attrs[i].name && strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
  return NULL;
}

int64_t ri__node_attr_int(const ri__node *n, const char *name, int64_t dflt) {
  const ri__attr *a = ri__node_attr(n, name);
  return a && a->type == RI__ATTR_INT ? a->i : dflt;
}

float ri__node_attr_float(const ri__node *n, const char *name, float dflt) {
  const ri__attr *a = ri__node_attr(n, name);
  return a && a->type == RI__ATTR_FLOAT ? a->f : dflt;
}

const char *ri__node_attr_string(const ri__node *n, const char *name, const char *dflt) {
  const ri__attr *a = ri__node_attr(n, name);
  return a && a->type == RI__ATTR_STRING && a->s ? a->s : dflt;
}

int ri__node_attr_ints(const ri__node *n, const char *name, const int64_t **ints) {
  const ri__attr *a = ri__node_attr(n, name);
  if (!a || a->type != RI__ATTR_INTS) {
    *ints = NULL;
    return 0;
  }
  *ints = a->ints;
  return a->n;
}

int ri__node_attr_floats(const ri__node *n, const char *name, const float **floats) {
  const ri__attr *a = ri__node_attr(n, name);
  if (!a || a->type != RI__ATTR_FLOATS) {
    *floats = NULL;
    return 0;
  }
  *floats = a->floats;
  return a->n;
}

/* ---- shapes ---- */
int64_t ri__shape_numel(const ri__shape *s) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) {
    if (s->dims[i] < 0) return -1;
    if (s->dims[i] != 0 && n > INT64_MAX / s->dims[i]) return -1;
    n *= s->dims[i];
  }
  return n;
}

int ri__shape_equal(const ri__shape *a, const ri__shape *b) {
  if (a->rank != b->rank) return 0;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return 0;
  return 1;
}

const char *ri__shape_str(const ri__shape *s, char *buf, size_t len) {
  size_t off = 0;
  if (len == 0) return buf;
  buf[0] = 0;
  off += (size_t)snprintf(buf + off, len - off, "[");
  for (int i = 0; i < s->rank && off < len; i++)
    off += (size_t)snprintf(buf + off, len - off, i ? ",%lld" : "%lld", (long long)s->dims[i]);
  if (off < len) snprintf(buf + off, len - off, "]");
  return buf;
}

ri_status ri__tensor_nbytes(ri_dtype dtype, const ri__shape *s, size_t *out, ri__err *err) {
  size_t es = ri_dtype_size(dtype);
  if (!es) return ri__err_set(err, RI_ERR_UNSUPPORTED, "unsupported element type %d", (int)dtype);
  int64_t n = ri__shape_numel(s);
  char buf[160];
  if (n < 0 || n > RI__MAX_TENSOR_ELEMS)
    return ri__err_set(err, RI_ERR_LIMIT, "tensor of shape %s exceeds the limit of %lld elements",
                       ri__shape_str(s, buf, sizeof buf), (long long)RI__MAX_TENSOR_ELEMS);
  *out = (size_t)n * es;
  return RI_OK;
}

int64_t ri__tensor_get_int(const ri__tensor *t, int64_t i) {
  switch (t->dtype) {
  case RI_DTYPE_INT64: return ((const int64_t *)t->data)[i];
  case RI_DTYPE_INT32: return ((const int32_t *)t->data)[i];
  case RI_DTYPE_UINT8: return ((const uint8_t *)t->data)[i];
  case RI_DTYPE_INT8: return ((const int8_t *)t->data)[i];
  case RI_DTYPE_BOOL: return ((const uint8_t *)t->data)[i] != 0;
  case RI_DTYPE_INT16: return ((const int16_t *)t->data)[i];
  case RI_DTYPE_UINT16: return ((const uint16_t *)t->data)[i];
  case RI_DTYPE_UINT32: return ((const uint32_t *)t->data)[i];
  case RI_DTYPE_UINT64: return (int64_t)((const uint64_t *)t->data)[i];
  case RI_DTYPE_FLOAT32: return (int64_t)((const float *)t->data)[i];
  case RI_DTYPE_FLOAT64: return (int64_t)((const double *)t->data)[i];
  default: return 0;
  }
}

double ri__tensor_get_double(const ri__tensor *t, int64_t i) {
  switch (t->dtype) {
  case RI_DTYPE_FLOAT32: return ((const float *)t->data)[i];
  case RI_DTYPE_FLOAT64: return ((const double *)t->data)[i];
  default: return (double)ri__tensor_get_int(t, i);
  }
}

#include <math.h>
float ri__sigmoidf(float x) { return 1.f / (1.f + expf(-x)); }
