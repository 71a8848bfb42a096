/* Q/DQ groups to integer nodes, as onnxruntime's default CPU session rewrites them on x86-64.
 *
 * A quantized (Q/DQ) model states its arithmetic in float: DequantizeLinear -> Conv -> QuantizeLinear.
 * onnxruntime's CPU session (graph optimisation level "all", the default) replaces some of these groups by
 * QLinearConv and QLinearAdd, which accumulate in integers and requantise once; others stay float. Results
 * differ between the two forms wherever a value lands within float rounding of a quantisation tie, and the
 * network's requantisations amplify that (on the ST SSD detector, 77 % of the box outputs move). To give
 * the results users compare against, this pass rewrites exactly the groups onnxruntime rewrites, and the
 * kernels reproduce its integer arithmetic (src/backend/cpu/ref/qlinear_*.c).
 *
 * Which groups (onnxruntime's QDQ selectors for the CPU provider on x86-64, where int8 activations are
 * not allowed, after its S8-to-U8 conversion of Q -> DQ pairs; docs/decisions.md, "Integer Q/DQ"):
 *  - an activation quantised as uint8 is eligible; one quantised as int8 is eligible only when its
 *    QuantizeLinear feeds exactly one DequantizeLinear, with the same int8 zero point, which feeds exactly
 *    one node (onnxruntime then turns the pair into uint8; otherwise the int8 pair stays and so does the
 *    float group around it). Scales and zero points must be constant one-element tensors.
 *  - Conv: input from an eligible DQ (per-tensor), weight from a DQ of a constant 8-bit tensor (per-tensor
 *    or per-output-channel on axis 0, one zero point for all channels), bias absent or from a DQ of a
 *    constant int32 tensor with zero points 0 (its scale is not read: QLinearConv takes the int32 bias as
 *    counted in x_scale * w_scale, as onnxruntime does), output used only by an eligible QuantizeLinear,
 *    or by a Relu or Clip that is used only by one and that the quantisation makes redundant
 *    (onnxruntime's ReluQuantFusion / ClipQuantFusion: Relu when the zero point is the type's minimum;
 *    Clip when [min, max] covers the quantised range to within FLT_EPSILON).
 *  - Add: both inputs from eligible DQs, output used only by an eligible QuantizeLinear, all three
 *    tensors of one shape (runinfer's QLinearAdd does not broadcast).
 * Every other group stays as written and runs simulated in float32. Decisions are taken on the graph as
 * imported, before any rewrite, and before constant folding turns weight DQs into float constants. */
#include <float.h>
#include <string.h>

#include "core/alloc.h"
#include "graph/op.h"
#include "graph/passes.h"

/* Use counts of the values and, per value, the first live node reading it (-1 when none). */
typedef struct {
  const int *uses;
  const int *first;
} qctx;

static int is_graph_output(const ri__graph *g, int v) {
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i] == v) return 1;
  return 0;
}

/* The only live node reading value v (v has one use and is not a graph output), or -1. */
static int sole_consumer(const ri__graph *g, const qctx *qc, int v) {
  if (v < 0 || qc->uses[v] != 1 || is_graph_output(g, v)) return -1;
  return qc->first[v];
}

static int producer_op(const ri__graph *g, int v, ri__op op) {
  if (v < 0 || g->values[v].kind != RI__VAL_ACTIVATION) return -1;
  int p = g->values[v].producer;
  if (p < 0 || g->nodes[p].dead || g->nodes[p].host || g->nodes[p].op != op) return -1;
  return p;
}

static int is_const(const ri__graph *g, int v, ri_dtype dt) {
  return v >= 0 && g->values[v].kind == RI__VAL_CONST && g->values[v].data && g->values[v].dtype == dt;
}

static int const_scalar(const ri__graph *g, int v, ri_dtype dt) {
  return is_const(g, v, dt) && ri__shape_numel(&g->values[v].shape) == 1;
}

static int64_t int_at(const ri__value *v, int64_t i) {
  switch (v->dtype) {
  case RI_DTYPE_INT8: return ((const int8_t *)v->data)[i];
  case RI_DTYPE_UINT8: return ((const uint8_t *)v->data)[i];
  case RI_DTYPE_INT32: return ((const int32_t *)v->data)[i];
  default: return 0;
  }
}

/* A Q or DQ node with constant one-element float32 scale and 8-bit zero point, no blocked quantization. */
static int qdq_per_tensor(const ri__graph *g, const ri__node *n) {
  if (n->n_inputs != 3 || n->n_outputs != 1 || ri__node_attr_int(n, "block_size", 0) != 0) return 0;
  if (!const_scalar(g, n->inputs[1], RI_DTYPE_FLOAT32)) return 0;
  return const_scalar(g, n->inputs[2], RI_DTYPE_UINT8) || const_scalar(g, n->inputs[2], RI_DTYPE_INT8);
}

/* The output of a DQ has one reader: one node, or only the graph's outputs. */
static int dq_single_use(const ri__graph *g, const qctx *qc, int v) {
  return is_graph_output(g, v) ? qc->uses[v] == 0 : qc->uses[v] == 1;
}

/* QuantizeLinear qi's output is uint8 in onnxruntime's graph (see the header comment). */
static int q_eligible(const ri__graph *g, const qctx *qc, int qi) {
  const ri__node *q = &g->nodes[qi];
  if (!qdq_per_tensor(g, q) || g->values[q->inputs[0]].dtype != RI_DTYPE_FLOAT32) return 0;
  const ri__value *zp = &g->values[q->inputs[2]];
  if (zp->dtype == RI_DTYPE_UINT8) return 1;
  int di = sole_consumer(g, qc, q->outputs[0]);
  if (di < 0 || g->nodes[di].op != RI__OP_DequantizeLinear || g->nodes[di].inputs[0] != q->outputs[0])
    return 0;
  const ri__node *dq = &g->nodes[di];
  if (!qdq_per_tensor(g, dq) || g->values[dq->inputs[2]].dtype != RI_DTYPE_INT8) return 0;
  if (int_at(&g->values[dq->inputs[2]], 0) != int_at(zp, 0)) return 0;
  return dq_single_use(g, qc, dq->outputs[0]);
}

/* DequantizeLinear di reads an activation that is uint8 in onnxruntime's graph. */
static int dq_eligible(const ri__graph *g, const qctx *qc, int di) {
  const ri__node *dq = &g->nodes[di];
  if (!qdq_per_tensor(g, dq)) return 0;
  if (g->values[dq->inputs[2]].dtype == RI_DTYPE_UINT8)
    return g->values[dq->inputs[0]].dtype == RI_DTYPE_UINT8;
  int qi = producer_op(g, dq->inputs[0], RI__OP_QuantizeLinear);
  return qi >= 0 && q_eligible(g, qc, qi);
}

/* The Q node ending the group that starts at value y (the output of a Conv or Add), or -1; *act_node is set
 * to a redundant Relu/Clip between them, or -1. */
static int group_end(const ri__graph *g, const qctx *qc, int y, int *act_node) {
  *act_node = -1;
  int c = sole_consumer(g, qc, y);
  if (c < 0) return -1;
  const ri__node *cn = &g->nodes[c];
  if ((cn->op == RI__OP_Relu || cn->op == RI__OP_Clip) && cn->n_outputs == 1) {
    int qi = sole_consumer(g, qc, cn->outputs[0]);
    if (qi < 0 || g->nodes[qi].op != RI__OP_QuantizeLinear || !q_eligible(g, qc, qi)) return -1;
    const ri__node *q = &g->nodes[qi];
    const float scale = *(const float *)g->values[q->inputs[1]].data;
    const ri__value *zpv = &g->values[q->inputs[2]];
    const int64_t zp = int_at(zpv, 0), qmin = zpv->dtype == RI_DTYPE_INT8 ? -128 : 0,
                  qmax = zpv->dtype == RI_DTYPE_INT8 ? 127 : 255;
    if (cn->op == RI__OP_Relu) {
      if (cn->n_inputs != 1 || zp != qmin) return -1;
    } else {
      float lo = -FLT_MAX, hi = FLT_MAX;
      for (int k = 1; k <= 2; k++) {
        if (k >= cn->n_inputs || cn->inputs[k] < 0) continue;
        if (!const_scalar(g, cn->inputs[k], RI_DTYPE_FLOAT32)) return -1;
        *(k == 1 ? &lo : &hi) = *(const float *)g->values[cn->inputs[k]].data;
      }
      if (ri__node_attr(cn, "min") || ri__node_attr(cn, "max")) return -1; /* opset < 11 */
      const float lower = scale * (float)(qmin - zp), upper = scale * (float)(qmax - zp);
      if (lo - lower > FLT_EPSILON || upper - hi > FLT_EPSILON) return -1;
    }
    *act_node = c;
    return qi;
  }
  if (cn->op != RI__OP_QuantizeLinear || cn->inputs[0] != y || !q_eligible(g, qc, c)) return -1;
  return c;
}

/* Inputs of a QLinearConv for Conv ci, or 0 when the group does not qualify. */
static int conv_group(const ri__graph *g, const qctx *qc, int ci, int ins[9], int *qi, int *act) {
  const ri__node *cv = &g->nodes[ci];
  if (cv->n_inputs < 2 || cv->n_outputs != 1 || cv->act != RI__ACT_NONE) return 0;
  int xd = producer_op(g, cv->inputs[0], RI__OP_DequantizeLinear);
  int wd = producer_op(g, cv->inputs[1], RI__OP_DequantizeLinear);
  if (xd < 0 || wd < 0 || !dq_eligible(g, qc, xd)) return 0;
  const ri__node *x = &g->nodes[xd], *w = &g->nodes[wd];
  /* weight: constant 8-bit, scale per tensor or per output channel (axis 0), one zero point value */
  if (w->n_inputs != 3 || ri__node_attr_int(w, "block_size", 0) != 0) return 0;
  const int wq = w->inputs[0];
  if (!is_const(g, wq, RI_DTYPE_INT8) && !is_const(g, wq, RI_DTYPE_UINT8)) return 0;
  const ri__value *wv = &g->values[wq];
  if (wv->shape.rank < 3) return 0;
  const int64_t m = wv->shape.dims[0];
  const int ws = w->inputs[1], wz = w->inputs[2];
  if (!is_const(g, ws, RI_DTYPE_FLOAT32) || !is_const(g, wz, wv->dtype)) return 0;
  const int64_t nws = ri__shape_numel(&g->values[ws].shape), nwz = ri__shape_numel(&g->values[wz].shape);
  if ((nws != 1 && nws != m) || nwz != nws) return 0;
  if (nws > 1) {
    int64_t axis = ri__node_attr_int(w, "axis", 1);
    if (axis != 0 && axis != -wv->shape.rank) return 0;
  }
  for (int64_t i = 1; i < nwz; i++)
    if (int_at(&g->values[wz], i) != int_at(&g->values[wz], 0)) return 0;
  /* bias */
  int bq = -1;
  if (cv->n_inputs > 2 && cv->inputs[2] >= 0) {
    int bd = producer_op(g, cv->inputs[2], RI__OP_DequantizeLinear);
    if (bd < 0) return 0;
    const ri__node *b = &g->nodes[bd];
    if (b->n_inputs < 2 || !is_const(g, b->inputs[0], RI_DTYPE_INT32)) return 0;
    if (ri__shape_numel(&g->values[b->inputs[0]].shape) != m) return 0;
    if (b->n_inputs > 2 && b->inputs[2] >= 0) {
      const ri__value *bz = &g->values[b->inputs[2]];
      if (!is_const(g, b->inputs[2], RI_DTYPE_INT32)) return 0;
      for (int64_t i = 0; i < ri__shape_numel(&bz->shape); i++)
        if (int_at(bz, i) != 0) return 0;
    }
    bq = b->inputs[0];
  }
  *qi = group_end(g, qc, cv->outputs[0], act);
  if (*qi < 0) return 0;
  const ri__node *q = &g->nodes[*qi];
  const int v[9] = {x->inputs[0], x->inputs[1], x->inputs[2], wq, ws, wz, q->inputs[1], q->inputs[2], bq};
  memcpy(ins, v, sizeof v);
  return 1;
}

/* Inputs of a QLinearAdd for Add ai, or 0 when the group does not qualify. */
static int add_group(const ri__graph *g, const qctx *qc, int ai, int ins[8], int *qi) {
  const ri__node *ad = &g->nodes[ai];
  if (ad->n_inputs != 2 || ad->n_outputs != 1 || ad->act != RI__ACT_NONE) return 0;
  int da = producer_op(g, ad->inputs[0], RI__OP_DequantizeLinear);
  int db = producer_op(g, ad->inputs[1], RI__OP_DequantizeLinear);
  if (da < 0 || db < 0 || da == db || !dq_eligible(g, qc, da) || !dq_eligible(g, qc, db)) return 0;
  const ri__node *a = &g->nodes[da], *b = &g->nodes[db];
  if (!ri__shape_equal(&g->values[a->inputs[0]].shape, &g->values[b->inputs[0]].shape)) return 0;
  int act;
  *qi = group_end(g, qc, ad->outputs[0], &act);
  if (*qi < 0 || act >= 0) return 0;
  const ri__node *q = &g->nodes[*qi];
  if (!ri__shape_equal(&g->values[q->outputs[0]].shape, &g->values[a->inputs[0]].shape)) return 0;
  const int v[8] = {a->inputs[0], a->inputs[1], a->inputs[2], b->inputs[0],
                    b->inputs[1], b->inputs[2], q->inputs[1], q->inputs[2]};
  memcpy(ins, v, sizeof v);
  return 1;
}

typedef struct {
  int node, q, act, n_ins;
  int ins[9];
} plan_entry;

ri_status ri__pass_qdq_to_qlinear(ri__graph *g, ri__err *err) {
  int *uses = ri__pass_use_counts(g);
  int *first = ri__malloc((size_t)(g->n_values ? g->n_values : 1) * sizeof(int));
  plan_entry *plan = ri__calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *plan);
  if (!uses || !first || !plan) {
    ri__free(uses);
    ri__free(first);
    ri__free(plan);
    return RI__OOM(err);
  }
  for (int v = 0; v < g->n_values; v++)
    first[v] = -1;
  for (int i = g->n_nodes - 1; i >= 0; i--) {
    const ri__node *n = &g->nodes[i];
    if (n->dead) continue;
    for (int k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] >= 0) first[n->inputs[k]] = i;
  }
  const qctx ctx = {uses, first}, *qc = &ctx;
  int n_plan = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const ri__node *n = &g->nodes[i];
    if (n->dead || n->host) continue;
    plan_entry *e = &plan[n_plan];
    e->act = -1;
    if (n->op == RI__OP_Conv && conv_group(g, qc, i, e->ins, &e->q, &e->act)) {
      e->n_ins = 9;
    } else if (n->op == RI__OP_Conv) {
      /* a float Q/DQ conv: onnxruntime's summation order decides its quantisation ties */
      if (n->n_inputs >= 2 && producer_op(g, n->inputs[0], RI__OP_DequantizeLinear) >= 0 &&
          producer_op(g, n->inputs[1], RI__OP_DequantizeLinear) >= 0)
        g->nodes[i].tactic = RI__CONV_TACTIC_QDQ_ORDER;
      continue;
    } else if (n->op == RI__OP_Add && add_group(g, qc, i, e->ins, &e->q)) {
      e->n_ins = 8;
    } else {
      continue;
    }
    e->node = i;
    n_plan++;
  }
  ri__free(uses);
  ri__free(first);
  ri_status s = RI_OK;
  for (int k = 0; s == RI_OK && k < n_plan; k++) {
    const plan_entry *e = &plan[k];
    ri__node *n = &g->nodes[e->node];
    const int old_out = n->outputs[0], y = g->nodes[e->q].outputs[0];
    for (int i = e->n_ins - 1; s == RI_OK && i >= 0; i--)
      s = ri__pass_set_input(g, e->node, i, e->ins[i], err);
    if (s != RI_OK) break;
    n->n_inputs = e->n_ins;
    n->op = n->op == RI__OP_Conv ? RI__OP_QLinearConv : RI__OP_QLinearAdd;
    n->outputs[0] = y;
    g->values[y].producer = e->node;
    g->values[old_out].producer = -1;
    g->nodes[e->q].dead = 1;
    if (e->act >= 0) g->nodes[e->act].dead = 1;
    s = ri__pass_recheck_node(g, e->node, err);
  }
  ri__free(plan);
  if (s != RI_OK) return s;
  return ri__graph_link(g, err);
}
