/* Activation fusion: an elementwise activation that directly follows a node whose kernels apply n->act
 * (Conv, Gemm, MatMul, Add, Sub, Mul, Div; see backend/cpu/kernel.h) is folded into that node.
 *
 * Conditions: the producer has one output, of float32, used only by the activation (once) and not a graph
 * output; the producer has no fused activation yet and is not a host node; the activation has exactly its
 * data input or, for Clip, constant one-element float32 bounds (absent bounds are -inf / +inf). The
 * producer takes over the activation's output value, so the output keeps its name. Parameters follow ONNX
 * defaults: LeakyRelu alpha 0.01, HardSigmoid alpha 0.2 and beta 0.5. */
#include <math.h>

#include "core/alloc.h"
#include "graph/op.h"
#include "graph/passes.h"

static int fusable_producer(ri__op op) {
  return op == RI__OP_Conv || op == RI__OP_Gemm || op == RI__OP_MatMul || op == RI__OP_Add ||
         op == RI__OP_Sub || op == RI__OP_Mul || op == RI__OP_Div;
}

/* Reads a Clip bound: absent → dflt; returns 0 when the bound is not a constant float32 scalar. */
static int clip_bound(const ri__graph *g, const ri__node *n, int k, float dflt, float *out) {
  if (k >= n->n_inputs || n->inputs[k] < 0) {
    *out = dflt;
    return 1;
  }
  const ri__value *v = &g->values[n->inputs[k]];
  if (v->kind != RI__VAL_CONST || v->dtype != RI_DTYPE_FLOAT32 || !v->data || ri__shape_numel(&v->shape) != 1)
    return 0;
  *out = *(const float *)v->data;
  return 1;
}

/* Fills act/a/b for activation node n; returns 0 when n is not a fusable activation. */
static int activation_of(const ri__graph *g, const ri__node *n, ri__act *act, float *a, float *b) {
  *a = 0.f;
  *b = 0.f;
  switch (n->op) {
  case RI__OP_Relu: *act = RI__ACT_RELU; return n->n_inputs == 1;
  case RI__OP_Sigmoid: *act = RI__ACT_SIGMOID; return n->n_inputs == 1;
  case RI__OP_HardSwish: *act = RI__ACT_HARD_SWISH; return n->n_inputs == 1;
  case RI__OP_LeakyRelu:
    *act = RI__ACT_LEAKY_RELU;
    *a = ri__node_attr_float(n, "alpha", 0.01f);
    return n->n_inputs == 1;
  case RI__OP_HardSigmoid:
    *act = RI__ACT_HARD_SIGMOID;
    *a = ri__node_attr_float(n, "alpha", 0.2f);
    *b = ri__node_attr_float(n, "beta", 0.5f);
    return n->n_inputs == 1;
  case RI__OP_Clip:
    *act = RI__ACT_CLIP;
    return clip_bound(g, n, 1, -INFINITY, a) && clip_bound(g, n, 2, INFINITY, b);
  default: return 0;
  }
}

static int is_graph_output(const ri__graph *g, int v) {
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i] == v) return 1;
  return 0;
}

ri_status ri__pass_fuse_activation(ri__graph *g, ri__err *err) {
  int *uses = ri__pass_use_counts(g);
  if (!uses) return RI__OOM(err);
  ri_status s = RI_OK;
  for (int ai = 0; s == RI_OK && ai < g->n_nodes; ai++) {
    ri__node *an = &g->nodes[ai];
    ri__act act;
    float a, b;
    if (an->dead || an->host || an->n_inputs < 1 || an->n_outputs != 1 || an->outputs[0] < 0) continue;
    if (!activation_of(g, an, &act, &a, &b)) continue;
    int x = an->inputs[0];
    if (x < 0 || uses[x] != 1 || is_graph_output(g, x) || g->values[x].kind != RI__VAL_ACTIVATION) continue;
    if (g->values[x].dtype != RI_DTYPE_FLOAT32) continue;
    int pi = g->values[x].producer;
    if (pi < 0) continue;
    ri__node *pn = &g->nodes[pi];
    if (pn->dead || pn->host || !fusable_producer(pn->op) || pn->act != RI__ACT_NONE || pn->n_outputs != 1)
      continue;
    int y = an->outputs[0];
    pn->act = act;
    pn->act_a = a;
    pn->act_b = b;
    pn->outputs[0] = y;
    g->values[y].producer = pi;
    g->values[x].producer = -1;
    an->dead = 1;
    s = ri__pass_recheck_node(g, pi, err);
  }
  ri__free(uses);
  if (s != RI_OK) return s;
  return ri__graph_link(g, err);
}
