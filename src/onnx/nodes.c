/* NodeProto → graph nodes: operator support, names, value wiring and attributes. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "graph/op.h"
#include "onnx/internal.h"

static int is_default_domain(const char *d) { return !d || !d[0] || strcmp(d, "ai.onnx") == 0; }

/* TensorRT plugin nodes ("<Name>_TRT") come in the default domain or in "TRT" (torch.onnx exports of
 * "TRT::EfficientNMS_TRT"); both map to the same op. */
static int is_trt_plugin(const char *d, const char *op) {
  size_t l = strlen(op);
  return (strcmp(d, "TRT") == 0 || strcmp(d, "trt") == 0) && l > 4 && strcmp(op + l - 4, "_TRT") == 0;
}

/* Fills buf with the node's name, or "<op>_<index>" when the model gives none. */
static const char *node_name(const Onnx__NodeProto *np, size_t index, char *buf, size_t len) {
  if (np->name && np->name[0]) return np->name;
  snprintf(buf, len, "%.*s_%zu", RI__ONNX_SHOW, np->op_type ? np->op_type : "", index);
  return buf;
}

/* Bounded message builder: appends until the buffer is nearly full, then ends with "...". */
typedef struct {
  char buf[RI__ERR_MSG_MAX - 128];
  size_t len;
  int full;
} msg_buf;

static void msg_add(msg_buf *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msg_add(msg_buf *m, const char *fmt, ...) {
  if (m->full) return;
  char piece[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(piece, sizeof piece, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  size_t plen = strlen(piece);
  if (m->len + plen + 4 >= sizeof m->buf) {
    memcpy(m->buf + m->len, "...", 4);
    m->len += 3;
    m->full = 1;
    return;
  }
  memcpy(m->buf + m->len, piece, plen + 1);
  m->len += plen;
}

typedef struct {
  const char *op, *domain;
  size_t first; /* index of the first node using it */
  size_t count; /* nodes using it */
} unsupported_op;

ri_status ri__onnx_check_operators(const Onnx__GraphProto *gp, ri__err *err) {
  unsupported_op list[RI__ONNX_MAX_UNSUPPORTED_LISTED];
  int n_listed = 0, more_types = 0;
  size_t bad_nodes = 0;
  for (size_t i = 0; i < gp->n_node; i++) {
    const Onnx__NodeProto *np = gp->node[i];
    const char *op = np->op_type ? np->op_type : "";
    const char *domain = np->domain ? np->domain : "";
    ri__op o;
    if ((is_default_domain(domain) || is_trt_plugin(domain, op)) && op[0] && ri__op_from_name(op, &o))
      continue;
    bad_nodes++;
    int k = 0;
    for (; k < n_listed; k++)
      if (strcmp(list[k].op, op) == 0 && strcmp(list[k].domain, domain) == 0) break;
    if (k < n_listed) {
      list[k].count++;
    } else if (n_listed < RI__ONNX_MAX_UNSUPPORTED_LISTED) {
      list[n_listed++] = (unsupported_op){op, domain, i, 1};
    } else {
      more_types = 1;
    }
  }
  if (!bad_nodes) return RI_OK;
  msg_buf m = {.len = 0};
  m.buf[0] = 0;
  if (n_listed > 1 || more_types)
    msg_add(&m, "%zu nodes use %s%d operator types runinfer does not support: ", bad_nodes,
            more_types ? "more than " : "", n_listed);
  for (int k = 0; k < n_listed; k++) {
    char nb[RI__ONNX_SHOW + 32];
    const char *nn = node_name(gp->node[list[k].first], list[k].first, nb, sizeof nb);
    const char *dom = list[k].domain[0] ? list[k].domain : "ai.onnx";
    msg_add(&m, "%snode '%.64s' (op '%.64s', domain '%.64s')", k ? "; " : "", nn,
            list[k].op[0] ? list[k].op : "", dom);
    if (list[k].count > 1) msg_add(&m, " and %zu more", list[k].count - 1);
  }
  if (n_listed == 1 && !more_types)
    msg_add(&m, ": operator not supported");
  else if (more_types)
    msg_add(&m, "; and further types");
  return ri__err_set(err, RI_ERR_UNSUPPORTED, "%s", m.buf);
}

/* Index of the value named `name`, creating an activation value for a name not seen yet. */
static ri_status value_by_name(ri__graph *g, ri__onnx_names *names, const char *name, int *out,
                               ri__err *err) {
  size_t len = strlen(name);
  if (len > RI__MAX_NAME)
    return ri__err_set(err, RI_ERR_LIMIT, "value name of %zu bytes exceeds the limit of %d", len,
                       RI__MAX_NAME);
  int v = ri__onnx_names_find(names, g, name);
  if (v < 0) {
    v = ri__graph_add_value(g, name, RI_DTYPE_UNDEFINED, NULL, RI__VAL_ACTIVATION);
    if (v < 0)
      return g->n_values >= RI__MAX_VALUES
                 ? ri__err_set(err, RI_ERR_LIMIT, "more than %d values", RI__MAX_VALUES)
                 : RI__OOM(err);
    RI__TRY(ri__onnx_names_add(names, g, v, err));
  }
  *out = v;
  return RI_OK;
}

static ri_status wire_outputs(ri__graph *g, ri__onnx_names *names, const Onnx__NodeProto *np,
                              const char *name, int *outs, ri__err *err) {
  for (size_t k = 0; k < np->n_output; k++) {
    const char *vn = np->output[k] ? np->output[k] : "";
    outs[k] = -1;
    if (!vn[0]) continue;
    RI__TRY(value_by_name(g, names, vn, &outs[k], err));
    const ri__value *v = &g->values[outs[k]];
    if (v->kind == RI__VAL_INPUT)
      return ri__err_set(err, RI_ERR_PARSE,
                         "node '%.*s' output '%.*s' would overwrite the graph input of that name",
                         RI__ONNX_SHOW, name, RI__ONNX_SHOW, vn);
    if (v->kind == RI__VAL_CONST)
      return ri__err_set(err, RI_ERR_PARSE,
                         "node '%.*s' output '%.*s' would overwrite the initializer or constant of that name",
                         RI__ONNX_SHOW, name, RI__ONNX_SHOW, vn);
    if (v->producer >= 0)
      return ri__err_set(err, RI_ERR_PARSE, "value '%.*s' is produced by two nodes ('%.*s' and '%.*s')",
                         RI__ONNX_SHOW, vn, RI__ONNX_SHOW, g->nodes[v->producer].name, RI__ONNX_SHOW, name);
    for (size_t j = 0; j < k; j++)
      if (outs[j] == outs[k])
        return ri__err_set(err, RI_ERR_PARSE, "node '%.*s' lists output '%.*s' twice", RI__ONNX_SHOW, name,
                           RI__ONNX_SHOW, vn);
  }
  return RI_OK;
}

static ri_status add_attrs(ri__graph *g, int node, Onnx__NodeProto *np, const char *name,
                           const char *base_dir, ri__err *err) {
  for (size_t k = 0; k < np->n_attribute; k++) {
    const char *an = np->attribute[k]->name ? np->attribute[k]->name : "";
    for (size_t j = 0; j < k; j++)
      if (np->attribute[j]->name && strcmp(np->attribute[j]->name, an) == 0)
        return ri__err_set(err, RI_ERR_PARSE, "node '%.*s' has attribute '%.*s' twice", RI__ONNX_SHOW, name,
                           RI__ONNX_SHOW, an);
    ri__attr a;
    RI__TRY(ri__onnx_attr_convert(g, np->attribute[k], name, base_dir, &a, err));
    RI__TRY(ri__graph_add_attr(g, node, &a, err));
  }
  return RI_OK;
}

/* Adds node np (file position `index`) to g. */
static ri_status add_node(ri__graph *g, ri__onnx_names *names, Onnx__NodeProto *np, size_t index,
                          const char *base_dir, ri__err *err) {
  char nb[RI__ONNX_SHOW + 32];
  const char *name = node_name(np, index, nb, sizeof nb);
  if (strlen(name) > RI__MAX_NAME)
    return ri__err_set(err, RI_ERR_LIMIT, "node %zu has a name longer than %d bytes", index, RI__MAX_NAME);
  if (np->n_input > RI__MAX_NODE_IO || np->n_output > RI__MAX_NODE_IO)
    return ri__err_set(err, RI_ERR_LIMIT, "node '%.*s' has %zu inputs and %zu outputs (limit %d each)",
                       RI__ONNX_SHOW, name, np->n_input, np->n_output, RI__MAX_NODE_IO);
  if (np->n_attribute > RI__MAX_ATTRS)
    return ri__err_set(err, RI_ERR_LIMIT, "node '%.*s' has %zu attributes, more than the limit of %d",
                       RI__ONNX_SHOW, name, np->n_attribute, RI__MAX_ATTRS);
  ri__op op;
  if (!ri__op_from_name(np->op_type, &op))
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%.*s': unknown op after the support check", RI__ONNX_SHOW,
                       name);
  if (op == RI__OP_Constant) return ri__onnx_add_constant(g, names, np, name, base_dir, err);

  int *io = ri__malloc((np->n_input + np->n_output + 1) * sizeof(int));
  if (!io) return RI__OOM(err);
  int *ins = io, *outs = io + np->n_input;
  ri_status st = RI_OK;
  for (size_t k = 0; k < np->n_input && st == RI_OK; k++) {
    const char *vn = np->input[k] ? np->input[k] : "";
    ins[k] = -1;
    if (vn[0]) st = value_by_name(g, names, vn, &ins[k], err);
  }
  if (st == RI_OK) st = wire_outputs(g, names, np, name, outs, err);
  int ni = -1;
  if (st == RI_OK) {
    ni = ri__graph_add_node(g, name, op, ins, (int)np->n_input, outs, (int)np->n_output);
    if (ni < 0)
      st = g->n_nodes >= RI__MAX_NODES ? ri__err_set(err, RI_ERR_LIMIT, "more than %d nodes", RI__MAX_NODES)
                                       : RI__OOM(err);
  }
  if (st == RI_OK) {
    for (size_t k = 0; k < np->n_output; k++)
      if (outs[k] >= 0) g->values[outs[k]].producer = ni;
    st = add_attrs(g, ni, np, name, base_dir, err);
  }
  ri__free(io);
  return st;
}

ri_status ri__onnx_add_nodes(ri__graph *g, ri__onnx_names *names, Onnx__GraphProto *gp, const char *base_dir,
                             ri__err *err) {
  if (gp->n_node > RI__MAX_NODES)
    return ri__err_set(err, RI_ERR_LIMIT, "graph has %zu nodes, more than the limit of %d", gp->n_node,
                       RI__MAX_NODES);
  for (size_t i = 0; i < gp->n_node; i++)
    RI__TRY(add_node(g, names, gp->node[i], i, base_dir, err));
  /* Every value read must be defined by now: an activation with no producer was named by no node output,
   * initializer, Constant or graph input. */
  for (int ni = 0; ni < g->n_nodes; ni++) {
    const ri__node *n = &g->nodes[ni];
    for (int k = 0; k < n->n_inputs; k++) {
      int v = n->inputs[k];
      if (v >= 0 && g->values[v].kind == RI__VAL_ACTIVATION && g->values[v].producer < 0)
        return ri__err_set(err, RI_ERR_PARSE,
                           "node '%.*s' input '%.*s' is not produced by any node, initializer or graph input",
                           RI__ONNX_SHOW, n->name, RI__ONNX_SHOW, g->values[v].name);
    }
  }
  return RI_OK;
}
