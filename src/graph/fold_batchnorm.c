/* Conv + BatchNormalization folding.
 *
 * In inference mode BN computes y = (x - mean) * s + beta with s = scale / sqrt(var + epsilon), per
 * channel. When x is the output of a Conv with constant float32 weights W [M, C/group, k...] (and optional
 * bias b [M]), the pair equals one Conv with weights W[m] * s[m] and bias (b[m] - mean[m]) * s[m] + beta[m].
 *
 * Conditions: the Conv output is used by the BN only and is not a graph output; the Conv has no fused
 * activation and is not a host node; BN has one output, training_mode 0, constant float32 parameters of M
 * elements and var + epsilon > 0 everywhere. The folded weights and bias are new constants (the originals
 * may be shared with other nodes; unused ones are dropped by compaction). The Conv takes over the BN's
 * output value, so the output keeps its name. A BN that does not qualify stays a node. */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "graph/op.h"
#include "graph/passes.h"

static const float *const_f32(const ri__graph *g, int v, int64_t numel) {
  if (v < 0 || v >= g->n_values) return NULL;
  const ri__value *val = &g->values[v];
  if (val->kind != RI__VAL_CONST || val->dtype != RI_DTYPE_FLOAT32 || !val->data) return NULL;
  if (numel >= 0 && ri__shape_numel(&val->shape) != numel) return NULL;
  if (val->nbytes < (size_t)ri__shape_numel(&val->shape) * sizeof(float)) return NULL;
  return val->data;
}

/* Returns the index of the Conv node that BN node bi can fold into, or -1. */
static int foldable_conv(const ri__graph *g, int bi, const int *uses) {
  const ri__node *bn = &g->nodes[bi];
  if (bn->n_inputs != 5 || bn->n_outputs < 1 || bn->outputs[0] < 0) return -1;
  for (int k = 1; k < bn->n_outputs; k++)
    if (bn->outputs[k] >= 0) return -1;
  if (ri__node_attr_int(bn, "training_mode", 0) != 0) return -1;
  int x = bn->inputs[0];
  if (x < 0 || g->values[x].kind != RI__VAL_ACTIVATION || uses[x] != 1 || g->values[x].is_output) return -1;
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i] == x) return -1;
  int ci = g->values[x].producer;
  if (ci < 0) return -1;
  const ri__node *c = &g->nodes[ci];
  if (c->dead || c->op != RI__OP_Conv || c->host || c->act != RI__ACT_NONE || c->n_outputs != 1 ||
      c->n_inputs < 2)
    return -1;
  int w = c->inputs[1];
  if (w < 0 || g->values[w].shape.rank < 3 || !const_f32(g, w, -1)) return -1;
  int64_t m = g->values[w].shape.dims[0];
  if (c->n_inputs > 2 && c->inputs[2] >= 0 && !const_f32(g, c->inputs[2], m)) return -1;
  for (int k = 1; k < 5; k++)
    if (!const_f32(g, bn->inputs[k], m)) return -1;
  double eps = ri__node_attr_float(bn, "epsilon", 1e-5f);
  const float *var = const_f32(g, bn->inputs[4], m);
  for (int64_t i = 0; i < m; i++)
    if (!((double)var[i] + eps > 0.0)) return -1;
  return ci;
}

static ri_status fold_pair(ri__graph *g, int ci, int bi, ri__err *err) {
  ri__node *c = &g->nodes[ci];
  const ri__node *bn = &g->nodes[bi];
  int w = c->inputs[1];
  int b = c->n_inputs > 2 ? c->inputs[2] : -1;
  ri__shape wshape = g->values[w].shape;
  int64_t m = wshape.dims[0];
  int64_t per = ri__shape_numel(&wshape) / (m ? m : 1);
  size_t wbytes = g->values[w].nbytes, bbytes = (size_t)m * sizeof(float);
  float *nw = ri__malloc(wbytes ? wbytes : 1);
  float *nb = ri__malloc(bbytes ? bbytes : 1);
  char *wname = ri__pass_unique_name(g, g->values[w].name, "_bnfold");
  char *bname = ri__pass_unique_name(g, g->nodes[ci].name[0] ? g->nodes[ci].name : "conv", "_bnfold_bias");
  if (!nw || !nb || !wname || !bname) {
    ri__free(nw);
    ri__free(nb);
    ri__free(wname);
    ri__free(bname);
    return RI__OOM(err);
  }
  const float *W = g->values[w].data;
  const float *B = b >= 0 ? g->values[b].data : NULL;
  const float *scale = g->values[bn->inputs[1]].data, *beta = g->values[bn->inputs[2]].data;
  const float *mean = g->values[bn->inputs[3]].data, *var = g->values[bn->inputs[4]].data;
  double eps = ri__node_attr_float(bn, "epsilon", 1e-5f);
  for (int64_t o = 0; o < m; o++) {
    double s = (double)scale[o] / sqrt((double)var[o] + eps);
    for (int64_t j = 0; j < per; j++)
      nw[o * per + j] = (float)((double)W[o * per + j] * s);
    nb[o] = (float)(((B ? (double)B[o] : 0.0) - (double)mean[o]) * s + (double)beta[o]);
  }
  ri__shape bshape = {.rank = 1, .dims = {m}};
  int nwi = ri__graph_add_const(g, wname, RI_DTYPE_FLOAT32, &wshape, nw, wbytes);
  int nbi = nwi >= 0 ? ri__graph_add_const(g, bname, RI_DTYPE_FLOAT32, &bshape, nb, bbytes) : -1;
  if (nwi < 0) ri__free(nb);
  ri__free(wname);
  ri__free(bname);
  if (nbi < 0) return RI__OOM(err);
  c = &g->nodes[ci];
  bn = &g->nodes[bi];
  c->inputs[1] = nwi;
  RI__TRY(ri__pass_set_input(g, ci, 2, nbi, err));
  int x = c->outputs[0], y = bn->outputs[0];
  c->outputs[0] = y;
  g->values[y].producer = ci;
  g->values[x].producer = -1;
  g->nodes[bi].dead = 1;
  return ri__pass_recheck_node(g, ci, err);
}

ri_status ri__pass_fold_batchnorm(ri__graph *g, ri__err *err) {
  int *uses = ri__pass_use_counts(g);
  if (!uses) return RI__OOM(err);
  ri_status s = RI_OK;
  for (int bi = 0; s == RI_OK && bi < g->n_nodes; bi++) {
    if (g->nodes[bi].dead || g->nodes[bi].op != RI__OP_BatchNormalization) continue;
    int ci = foldable_conv(g, bi, uses);
    if (ci < 0) continue;
    s = fold_pair(g, ci, bi, err);
    if (s != RI_OK) s = ri__err_prefix(err, "folding BatchNormalization '%s' into Conv", g->nodes[bi].name);
  }
  ri__free(uses);
  if (s != RI_OK) return s;
  return ri__graph_link(g, err);
}
