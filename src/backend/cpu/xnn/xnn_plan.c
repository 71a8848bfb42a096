/* Prepare-time planning of the XNNPACK path: which nodes run on XNNPACK, in which layout, and where each
 * value's NHWC data lives (see xnn_internal.h). Nodes are visited in topological order, so a node's input
 * layouts are known when it is classified. A node is accepted only when every property XNNPACK's operator
 * needs is checked here; anything else keeps its reference kernel. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/xnn/xnn_internal.h"
#include "core/alloc.h"
#include "graph/ops/conv_params.h"
#include "graph/ops/gemm_params.h"
#include "graph/ops/pad_params.h"
#include "graph/ops/resize_params.h"
#include "graph/ops/pool_params.h"
#include "graph/ops/softmax_params.h"

int ri__xnn_agnostic(const ri__shape *s) {
  return s->rank == 4 && (s->dims[1] == 1 || s->dims[2] * s->dims[3] == 1);
}

/* A value computed at run time into the arena (not a constant, not a host value). */
static int is_act(const ri__graph *g, int v) {
  return v >= 0 && g->values[v].kind != RI__VAL_CONST && !g->values[v].host && g->values[v].mem_offset >= 0;
}

static int is_const_f32(const ri__graph *g, int v) {
  return v >= 0 && g->values[v].kind == RI__VAL_CONST && g->values[v].dtype == RI_DTYPE_FLOAT32 &&
         g->values[v].data != NULL;
}

/* A float32 constant read as an operator's weights: its data, or released after a shared operator packed it
 * (a plan made again at prepare still sees the node as it was). */
static int is_weight_f32(const ri__graph *g, int v) {
  return is_const_f32(g, v) || (v >= 0 && g->values[v].kind == RI__VAL_CONST &&
                                g->values[v].dtype == RI_DTYPE_FLOAT32 && g->values[v].released);
}

/* A value whose bytes differ between NCHW and NHWC. */
static int sensitive(const ri__graph *g, int v) {
  return is_act(g, v) && g->values[v].shape.rank == 4 && !ri__xnn_agnostic(&g->values[v].shape);
}

static int fits_u32(int64_t x) { return x >= 0 && x <= (int64_t)UINT32_MAX; }

/* Maps the node's fused activation to XNNPACK's output clamp and, where XNNPACK cannot fuse it, a second
 * in-place operator. Returns 0 when the activation has no XNNPACK form. */
static int set_act(const ri__node *n, xk_node *k) {
  k->out_min = -INFINITY;
  k->out_max = INFINITY;
  k->post = RI__ACT_NONE;
  switch (n->act) {
  case RI__ACT_NONE: return 1;
  case RI__ACT_RELU: k->out_min = 0.f; return 1;
  case RI__ACT_CLIP:
    if (!(n->act_a < n->act_b)) return 0; /* XNNPACK needs min < max; NaN bounds fail here too */
    k->out_min = n->act_a;
    k->out_max = n->act_b;
    return 1;
  case RI__ACT_SIGMOID:
  case RI__ACT_HARD_SWISH:
  case RI__ACT_LEAKY_RELU:
    k->post = n->act;
    k->post_a = n->act_a;
    return 1;
  case RI__ACT_HARD_SIGMOID: return 0;
  }
  return 0;
}

/* Checks shared by every accepted node: one float32 output computed into the arena. */
static int plain_output_ok(const ri__graph *g, const ri__node *n) {
  if (n->host || n->n_outputs != 1 || !is_act(g, n->outputs[0])) return 0;
  return g->values[n->outputs[0]].dtype == RI_DTYPE_FLOAT32;
}

static int input_act_f32(const ri__graph *g, const ri__node *n, int k) {
  return k < n->n_inputs && is_act(g, n->inputs[k]) && g->values[n->inputs[k]].dtype == RI_DTYPE_FLOAT32;
}

static int classify_conv(const ri__graph *g, const ri__node *n, xk_node *k) {
  const ri__conv_params *p = n->params;
  if (!p || p->win.spatial_rank != 2 || !input_act_f32(g, n, 0)) return 0;
  const ri__shape *xs = &g->values[n->inputs[0]].shape;
  if (xs->rank != 4 || !is_weight_f32(g, n->inputs[1])) return 0;
  const ri__shape *ws = &g->values[n->inputs[1]].shape;
  if (ws->rank != 4 || p->group < 1) return 0;
  int64_t m = ws->dims[0], cg = ws->dims[1];
  if (m < 1 || cg < 1 || m % p->group != 0 || cg * p->group != xs->dims[1]) return 0;
  if (p->has_bias) {
    int b = n->inputs[2];
    if (!is_weight_f32(g, b) || ri__shape_numel(&g->values[b].shape) != m) return 0;
  }
  if (!set_act(n, k)) return 0;
  int64_t pads[4], oh, ow;
  ri__conv_resolve_pads(p, xs->dims[2], xs->dims[3], pads);
  ri__conv_out_size(p, xs->dims[2], xs->dims[3], &oh, &ow);
  for (int i = 0; i < 4; i++)
    if (!fits_u32(pads[i])) return 0;
  for (int i = 0; i < 2; i++)
    if (!fits_u32(p->win.kernel[i]) || !fits_u32(p->win.stride[i]) || !fits_u32(p->win.dilation[i])) return 0;
  if (!fits_u32(p->group) || oh < 1 || ow < 1) return 0;
  k->kind = XK_CONV;
  for (int i = 0; i < 4; i++)
    k->pads[i] = (uint32_t)pads[i];
  k->kh = (uint32_t)p->win.kernel[0];
  k->kw = (uint32_t)p->win.kernel[1];
  k->sh = (uint32_t)p->win.stride[0];
  k->sw = (uint32_t)p->win.stride[1];
  k->dh = (uint32_t)p->win.dilation[0];
  k->dw = (uint32_t)p->win.dilation[1];
  k->groups = (uint32_t)p->group;
  k->cin_g = (size_t)cg;
  k->cout_g = (size_t)(m / p->group);
  k->in_c = xs->dims[1];
  k->in_h = xs->dims[2];
  k->in_w = xs->dims[3];
  k->out_h = oh;
  k->out_w = ow;
  k->in_nhwc = 1;
  k->impl = (cg == 1 && k->cout_g == 1 && p->group > 1) ? "xnn_dwconv" : "xnn_conv";
  return 1;
}

/* MaxPool / AveragePool 2-D. ceil_mode becomes extra bottom/right padding: XNNPACK ignores padded taps in
 * both pools (max over the valid taps; average divided by the valid taps). */
static int classify_pool(const ri__graph *g, const ri__node *n, xk_node *k) {
  const ri__pool_params *p = n->params;
  if (!p || p->win.spatial_rank != 2 || n->act != RI__ACT_NONE || !input_act_f32(g, n, 0)) return 0;
  const ri__shape *xs = &g->values[n->inputs[0]].shape;
  if (xs->rank != 4) return 0;
  int64_t pads[4], oh, ow;
  ri__pool_out_size(p, xs->dims[2], xs->dims[3], &oh, &ow, pads);
  if (oh < 1 || ow < 1) return 0;
  const int64_t in_hw[2] = {xs->dims[2], xs->dims[3]}, out_hw[2] = {oh, ow};
  for (int a = 0; a < 2; a++) {
    int64_t ext = ri__window_extent(&p->win, a);
    int64_t span = in_hw[a] + pads[a] + pads[a + 2];
    int64_t need = (out_hw[a] - 1) * p->win.stride[a] + ext; /* padded extent the output needs */
    if (need > span) pads[a + 2] += need - span;
    span = in_hw[a] + pads[a] + pads[a + 2];
    if (span < ext || (span - ext) / p->win.stride[a] + 1 != out_hw[a]) return 0;
  }
  int any_pad = pads[0] || pads[1] || pads[2] || pads[3];
  int dilated = p->win.dilation[0] != 1 || p->win.dilation[1] != 1;
  if (p->win.kernel[0] * p->win.kernel[1] < 2) return 0;
  if (n->op == RI__OP_MaxPool) {
    /* XNNPACK clamps padded taps to the border pixel, which with dilation need not be a tap of the window. */
    if (dilated && any_pad) return 0;
    k->kind = XK_MAXPOOL;
    k->impl = "xnn_maxpool";
  } else {
    if (dilated || (p->count_include_pad && any_pad)) return 0;
    k->kind = XK_AVGPOOL;
    k->impl = "xnn_avgpool";
  }
  for (int i = 0; i < 4; i++)
    if (!fits_u32(pads[i])) return 0;
  for (int i = 0; i < 2; i++)
    if (!fits_u32(p->win.kernel[i]) || !fits_u32(p->win.stride[i]) || !fits_u32(p->win.dilation[i])) return 0;
  for (int i = 0; i < 4; i++)
    k->pads[i] = (uint32_t)pads[i];
  k->kh = (uint32_t)p->win.kernel[0];
  k->kw = (uint32_t)p->win.kernel[1];
  k->sh = (uint32_t)p->win.stride[0];
  k->sw = (uint32_t)p->win.stride[1];
  k->dh = (uint32_t)p->win.dilation[0];
  k->dw = (uint32_t)p->win.dilation[1];
  k->in_c = xs->dims[1];
  k->in_h = xs->dims[2];
  k->in_w = xs->dims[3];
  k->out_h = oh;
  k->out_w = ow;
  k->out_min = -INFINITY;
  k->out_max = INFINITY;
  k->in_nhwc = 1;
  return 1;
}

static int classify_gap(const ri__graph *g, const ri__node *n, xk_node *k) {
  if (n->act != RI__ACT_NONE || !input_act_f32(g, n, 0)) return 0;
  const ri__shape *xs = &g->values[n->inputs[0]].shape;
  if (xs->rank != 4) return 0;
  k->kind = XK_GAP;
  k->impl = "xnn_global_avgpool";
  k->in_c = xs->dims[1];
  k->in_h = xs->dims[2];
  k->in_w = xs->dims[3];
  k->in_nhwc = 1;
  return 1;
}

/* Gemm with transA = 0 and constant B (and C broadcasting along rows), or MatMul with a constant 2-D B. */
static int classify_fc(const ri__graph *g, const ri__node *n, xk_node *k) {
  if (!input_act_f32(g, n, 0) || n->n_inputs < 2 || !is_weight_f32(g, n->inputs[1])) return 0;
  const ri__shape *as = &g->values[n->inputs[0]].shape, *bs = &g->values[n->inputs[1]].shape;
  if (bs->rank != 2 || as->rank < 2) return 0;
  if (!set_act(n, k)) return 0;
  k->fc_b = n->inputs[1];
  k->fc_c = -1;
  k->fc_alpha = 1.f;
  k->fc_beta = 1.f;
  if (n->op == RI__OP_Gemm) {
    const ri__gemm_params *p = n->params;
    if (!p || p->trans_a || as->rank != 2) return 0;
    k->fc_b_kn = !p->trans_b;
    k->fc_k = (size_t)(p->trans_b ? bs->dims[1] : bs->dims[0]);
    k->fc_n = (size_t)(p->trans_b ? bs->dims[0] : bs->dims[1]);
    k->fc_alpha = p->alpha;
    k->fc_beta = p->beta;
    if (p->has_c) {
      int c = n->inputs[2];
      if (!is_weight_f32(g, c)) return 0;
      const ri__shape *cs = &g->values[c].shape;
      int64_t cn = ri__shape_numel(cs);
      /* C must broadcast along rows: [], [1], [N], [1, 1] or [1, N]. */
      int ok = cn == 1 || (cs->rank == 1 && cs->dims[0] == (int64_t)k->fc_n) ||
               (cs->rank == 2 && cs->dims[0] == 1 && cs->dims[1] == (int64_t)k->fc_n);
      if (!ok || cs->rank > 2) return 0;
      k->fc_c = c;
    }
  } else {
    k->fc_b_kn = 1;
    k->fc_k = (size_t)bs->dims[0];
    k->fc_n = (size_t)bs->dims[1];
  }
  if (as->dims[as->rank - 1] != (int64_t)k->fc_k || k->fc_k == 0 || k->fc_n == 0) return 0;
  k->kind = XK_FC;
  k->impl = "xnn_fully_connected";
  return 1;
}

/* Permutes a rank-4 NCHW shape to NHWC. */
static void nhwc_dims(const int64_t *d, size_t *out) {
  out[0] = (size_t)d[0];
  out[1] = (size_t)d[2];
  out[2] = (size_t)d[3];
  out[3] = (size_t)d[1];
}

/* Copies constant value cv for a binary node: as is in plain mode; expanded to rank 4 and permuted to
 * NHWC in NHWC mode. */
static ri_status pack_const(const ri__graph *g, int cv, int nhwc, xk_node *k, ri__err *err) {
  const ri__value *c = &g->values[cv];
  int64_t numel = ri__shape_numel(&c->shape);
  if (numel < 1)
    return ri__err_set(err, RI_ERR_INTERNAL, "XNNPACK plan: constant '%s' has no elements", c->name);
  k->cdata = ri__malloc((size_t)numel * sizeof(float));
  if (!k->cdata) return RI__OOM(err);
  const float *src = c->data;
  if (!nhwc) {
    memcpy(k->cdata, src, (size_t)numel * sizeof(float));
    k->crank = c->shape.rank ? c->shape.rank : 1;
    for (int i = 0; i < c->shape.rank; i++)
      k->cshape[i] = (size_t)c->shape.dims[i];
    if (c->shape.rank == 0) k->cshape[0] = 1;
    return RI_OK;
  }
  int64_t d[4] = {1, 1, 1, 1};
  for (int i = 0; i < c->shape.rank; i++)
    d[4 - c->shape.rank + i] = c->shape.dims[i];
  k->crank = 4;
  nhwc_dims(d, k->cshape);
  int64_t hw = d[2] * d[3];
  for (int64_t b = 0; b < d[0]; b++)
    for (int64_t ch = 0; ch < d[1]; ch++)
      for (int64_t p = 0; p < hw; p++)
        k->cdata[(b * hw + p) * d[1] + ch] = src[(b * d[1] + ch) * hw + p];
  return RI_OK;
}

static int classify_binary(xnn_state *st, const ri__node *n, xk_node *k, ri__err *err, ri_status *s) {
  const ri__graph *g = st->g;
  if (n->n_inputs != 2) return 0;
  int acts = 0, any_nhwc = 0, all4 = 1, maxrank = 0, cin = -1;
  for (int i = 0; i < 2; i++) {
    int v = n->inputs[i];
    if (v < 0 || g->values[v].dtype != RI_DTYPE_FLOAT32) return 0;
    int r = g->values[v].shape.rank;
    if (r > maxrank) maxrank = r;
    if (is_act(g, v)) {
      acts++;
      if (st->vals[v].nhwc) any_nhwc = 1;
      if (r != 4) all4 = 0;
    } else if (is_const_f32(g, v)) {
      cin = i;
    } else {
      return 0;
    }
  }
  if (acts == 0 || maxrank > XNN_MAX_TENSOR_DIMS || !set_act(n, k)) return 0;
  int nhwc = any_nhwc && all4;
  if (nhwc && cin >= 0 && g->values[n->inputs[cin]].shape.rank > 4) return 0;
  if (nhwc && g->values[n->outputs[0]].shape.rank != 4) return 0;
  k->const_in = acts == 2 ? -1 : cin;
  if (k->const_in >= 0) {
    *s = pack_const(g, n->inputs[cin], nhwc, k, err);
    if (*s != RI_OK) return 0;
  }
  k->kind = XK_BINARY;
  k->in_nhwc = nhwc;
  switch (n->op) {
  case RI__OP_Add:
    k->bop = XB_ADD;
    k->impl = "xnn_add";
    break;
  case RI__OP_Sub:
    k->bop = XB_SUB;
    k->impl = "xnn_subtract";
    break;
  case RI__OP_Mul:
    k->bop = XB_MUL;
    k->impl = "xnn_multiply";
    break;
  default:
    k->bop = XB_DIV;
    k->impl = "xnn_divide";
    break;
  }
  return 1;
}

/* Reads a scalar float constant input (absent: keeps *x). Returns 0 when the input is not a constant. */
static int scalar_input(const ri__graph *g, const ri__node *n, int k, float *x) {
  if (k >= n->n_inputs || n->inputs[k] < 0) return 1;
  int v = n->inputs[k];
  if (!is_const_f32(g, v) || ri__shape_numel(&g->values[v].shape) != 1) return 0;
  *x = *(const float *)g->values[v].data;
  return 1;
}

static int classify_unary(xnn_state *st, const ri__node *n, xk_node *k) {
  const ri__graph *g = st->g;
  if (n->act != RI__ACT_NONE || !input_act_f32(g, n, 0)) return 0;
  k->kind = XK_UNARY;
  switch (n->op) {
  case RI__OP_Relu:
    k->uop = XU_CLAMP;
    k->ua = 0.f;
    k->ub = INFINITY;
    k->impl = "xnn_clamp";
    break;
  case RI__OP_Clip:
    k->uop = XU_CLAMP;
    k->ua = -INFINITY;
    k->ub = INFINITY;
    if (!scalar_input(g, n, 1, &k->ua) || !scalar_input(g, n, 2, &k->ub)) return 0;
    if (!(k->ua < k->ub)) return 0;
    k->impl = "xnn_clamp";
    break;
  case RI__OP_Sigmoid:
    k->uop = XU_SIGMOID;
    k->impl = "xnn_sigmoid";
    break;
  case RI__OP_HardSwish:
    k->uop = XU_HARDSWISH;
    k->impl = "xnn_hardswish";
    break;
  case RI__OP_LeakyRelu:
    k->uop = XU_LEAKY;
    k->ua = ri__node_attr_float(n, "alpha", 0.01f);
    if (!isfinite(k->ua)) return 0;
    k->impl = "xnn_leaky_relu";
    break;
  default: return 0;
  }
  k->in_nhwc = st->vals[n->inputs[0]].nhwc;
  return 1;
}

static int classify_softmax(const ri__graph *g, const ri__node *n, xk_node *k) {
  const ri__softmax_params *p = n->params;
  if (!p || !input_act_f32(g, n, 0)) return 0;
  const ri__shape *s = &g->values[n->inputs[0]].shape;
  int64_t outer, len, inner;
  if (s->rank < 1 || !ri__softmax_geometry(p, s, &outer, &len, &inner)) return 0;
  if (inner != 1 || len != s->dims[s->rank - 1] || len < 1) return 0;
  k->kind = XK_SOFTMAX;
  k->impl = "xnn_softmax";
  k->sm_channels = (size_t)len;
  return 1;
}

static int perm_is(const ri__node *n, int a, int b, int c, int d) {
  const int64_t *p = NULL;
  int np = ri__node_attr_ints(n, "perm", &p);
  return np == 4 && p[0] == a && p[1] == b && p[2] == c && p[3] == d;
}

/* Values whose first axis is the batch, as segments cut into images need (always true at max batch 1). */
static int batch_first_or_single(const xnn_state *st, int v) {
  const ri__value *val = &st->g->values[v];
  if (st->max_batch == 1) return 1;
  int batched = val->kind == RI__VAL_INPUT ? val->batch_axis == 0 : val->batch_dependent;
  return batched && val->shape.rank >= 1 && val->shape.dims[0] == st->max_batch;
}

static int classify_transpose(xnn_state *st, const ri__node *n, xk_node *k) {
  const ri__graph *g = st->g;
  if (!input_act_f32(g, n, 0) || g->values[n->inputs[0]].shape.rank != 4) return 0;
  int x = n->inputs[0], y = n->outputs[0];
  if (perm_is(n, 0, 2, 3, 1)) {
    if (st->vals[x].nhwc) {
      k->kind = XK_COPY_OUT;
      k->impl = "xnn_nhwc_copy";
      k->in_nhwc = 1;
      return 1;
    }
    if (ri__xnn_agnostic(&g->values[x].shape) && batch_first_or_single(st, x) &&
        batch_first_or_single(st, y)) {
      k->kind = XK_COPY;
      k->impl = "copy";
      return 1;
    }
    return 0;
  }
  if (!st->vals[x].nhwc && perm_is(n, 0, 3, 1, 2) && sensitive(g, y)) {
    k->kind = XK_COPY_IN;
    k->impl = "xnn_nhwc_copy";
    k->out_nhwc = 1;
    return 1;
  }
  return 0;
}

/* Reshape and Flatten of batch-first float32 data into batch-first results: the bytes do not move. */
static int classify_reshape(xnn_state *st, const ri__node *n, xk_node *k) {
  if (!input_act_f32(st->g, n, 0)) return 0;
  if (!batch_first_or_single(st, n->inputs[0]) || !batch_first_or_single(st, n->outputs[0])) return 0;
  k->kind = XK_COPY;
  k->impl = "copy";
  return 1;
}

/* Pad in constant mode of a 4-D float32 activation by constant, non-negative pads that leave the batch axis
 * alone (opsets 11..17 form: no axes input). */
static int classify_pad(xnn_state *st, const ri__node *n, xk_node *k) {
  const ri__graph *g = st->g;
  const ri__pad_params *p = n->params;
  if (!p || p->mode != RI__PAD_CONSTANT || !p->pads_known || !p->value_known || p->has_axes) return 0;
  if (!input_act_f32(g, n, 0) || g->values[n->inputs[0]].shape.rank != 4 || p->n_pads != 8) return 0;
  for (int i = 0; i < 8; i++)
    if (p->pads[i] < 0 || p->pads[i] > (int64_t)1 << 20) return 0;
  if (p->pads[0] != 0 || p->pads[4] != 0) return 0;
  for (int i = 0; i < 4; i++) {
    k->pad_begin[i] = (size_t)p->pads[i];
    k->pad_end[i] = (size_t)p->pads[4 + i];
  }
  memcpy(&k->pad_value, p->value, sizeof(float));
  k->kind = XK_PAD;
  k->impl = "xnn_constant_pad";
  k->in_nhwc = 1;
  return 1;
}

/* Resize in linear mode of H and W of a 4-D float32 activation with a constant target, when XNNPACK's
 * bilinear resize computes the same source coordinates: its scale is in / out, so the ONNX scale must be
 * exactly out / in; half_pixel (pytorch_half_pixel with outputs longer than 1) is XNNPACK's default,
 * align_corners its ALIGN_CORNERS flag, asymmetric its TENSORFLOW_LEGACY_MODE. */
static int classify_resize(xnn_state *st, const ri__node *n, xk_node *k) {
  const ri__graph *g = st->g;
  const ri__resize_params *p = n->params;
  if (!p || p->mode != RI__RESIZE_LINEAR || p->target == RI__RESIZE_TARGET_RUNTIME) return 0;
  if (!input_act_f32(g, n, 0) || g->values[n->inputs[0]].shape.rank != 4 || n->n_inputs > 4) return 0;
  ri__tensor in[4];
  memset(in, 0, sizeof in);
  for (int j = 0; j < n->n_inputs; j++) {
    int v = n->inputs[j];
    if (v < 0) continue;
    in[j].dtype = g->values[v].dtype;
    in[j].shape = g->values[v].shape;
    in[j].data = g->values[v].kind == RI__VAL_CONST ? g->values[v].data : NULL;
  }
  ri__resize_plan plan;
  if (ri__resize_plan_get(n, p, in, n->n_inputs, &plan, NULL) != RI_OK) return 0;
  const ri__shape *xs = &in[0].shape;
  if (plan.out.dims[0] != xs->dims[0] || plan.out.dims[1] != xs->dims[1] || plan.scale[0] != 1.f ||
      plan.scale[1] != 1.f)
    return 0;
  for (int a = 2; a < 4; a++)
    if (plan.out.dims[a] < 1 || plan.scale[a] != (float)plan.out.dims[a] / (float)xs->dims[a]) return 0;
  switch (p->coord) {
  case RI__RESIZE_HALF_PIXEL: k->resize_flags = 0; break;
  case RI__RESIZE_PYTORCH_HALF_PIXEL:
    if (plan.out.dims[2] < 2 || plan.out.dims[3] < 2) return 0;
    k->resize_flags = 0;
    break;
  case RI__RESIZE_ALIGN_CORNERS: k->resize_flags = XNN_FLAG_ALIGN_CORNERS; break;
  case RI__RESIZE_ASYMMETRIC: k->resize_flags = XNN_FLAG_TENSORFLOW_LEGACY_MODE; break;
  default: return 0;
  }
  k->kind = XK_RESIZE;
  k->impl = "xnn_resize_bilinear";
  k->in_c = xs->dims[1];
  k->in_h = xs->dims[2];
  k->in_w = xs->dims[3];
  k->out_h = plan.out.dims[2];
  k->out_w = plan.out.dims[3];
  k->in_nhwc = 1;
  return 1;
}

#define CONCAT_MAX_IN 16

/* Concat of batch-first float32 activations along an axis after the batch axis. */
static int classify_concat(xnn_state *st, const ri__node *n, xk_node *k) {
  const ri__graph *g = st->g;
  if (n->n_inputs < 1 || n->n_inputs > CONCAT_MAX_IN) return 0;
  int rank = g->values[n->outputs[0]].shape.rank;
  int64_t axis = ri__node_attr_int(n, "axis", 0);
  if (axis < 0) axis += rank;
  if (axis < 1 || axis >= rank) return 0;
  for (int j = 0; j < n->n_inputs; j++)
    if (!input_act_f32(g, n, j) || !batch_first_or_single(st, n->inputs[j])) return 0;
  if (!batch_first_or_single(st, n->outputs[0])) return 0;
  k->kind = XK_CONCAT;
  k->impl = "concat";
  k->axis = (int)axis;
  return 1;
}

static int classify(xnn_state *st, int ni, ri__err *err, ri_status *s) {
  const ri__graph *g = st->g;
  const ri__node *n = &g->nodes[ni];
  xk_node *k = &st->nodes[ni];
  if (!plain_output_ok(g, n)) return 0;
  int ok = 0;
  switch (n->op) {
  case RI__OP_Conv: ok = classify_conv(g, n, k); break;
  case RI__OP_MaxPool:
  case RI__OP_AveragePool: ok = classify_pool(g, n, k); break;
  case RI__OP_GlobalAveragePool: ok = classify_gap(g, n, k); break;
  case RI__OP_Gemm:
  case RI__OP_MatMul: ok = classify_fc(g, n, k); break;
  case RI__OP_Add:
  case RI__OP_Sub:
  case RI__OP_Mul:
  case RI__OP_Div: ok = classify_binary(st, n, k, err, s); break;
  case RI__OP_Relu:
  case RI__OP_Clip:
  case RI__OP_Sigmoid:
  case RI__OP_HardSwish:
  case RI__OP_LeakyRelu: ok = classify_unary(st, n, k); break;
  case RI__OP_Softmax: ok = classify_softmax(g, n, k); break;
  case RI__OP_Transpose: ok = classify_transpose(st, n, k); break;
  case RI__OP_Reshape:
  case RI__OP_Flatten: ok = classify_reshape(st, n, k); break;
  case RI__OP_Concat: ok = classify_concat(st, n, k); break;
  case RI__OP_Pad: ok = classify_pad(st, n, k); break;
  case RI__OP_Resize: ok = classify_resize(st, n, k); break;
  default: break;
  }
  if (!ok) {
    ri__free(k->cdata);
    memset(k, 0, sizeof *k);
    return 0;
  }
  /* Pooling, conv and elementwise nodes in NHWC mode output NHWC unless the output is layout-agnostic. */
  if (k->kind == XK_CONV || k->kind == XK_MAXPOOL || k->kind == XK_AVGPOOL || k->kind == XK_PAD ||
      k->kind == XK_RESIZE || ((k->kind == XK_BINARY || k->kind == XK_UNARY) && k->in_nhwc))
    k->out_nhwc = sensitive(g, n->outputs[0]);
  return 1;
}

/* Scratch bytes a segment's chunk may use: past roughly the size of the caches, a chunk of several images no
 * longer stays cached between layers. RI_XNN_CHUNK_BYTES (read at prepare) overrides it, for tests and
 * tuning; 1 runs every sliced segment one image at a time. */
#define CHUNK_BUDGET ((int64_t)4 << 20)

static int64_t chunk_budget(void) {
  const char *e = getenv("RI_XNN_CHUNK_BYTES");
  if (!e || !*e) return CHUNK_BUDGET;
  char *end;
  long long v = strtoll(e, &end, 10);
  return (*end || v < 1) ? CHUNK_BUDGET : (int64_t)v;
}

static int64_t round64(int64_t x) { return (x + 63) / 64 * 64; }

/* The batch is the first axis of value v at the maximum batch (graph inputs: their batch axis). */
static int batch_first(const xnn_state *st, int v) {
  const ri__value *val = &st->g->values[v];
  int batched = val->kind == RI__VAL_INPUT ? val->batch_axis == 0 : val->batch_dependent;
  return batched && val->shape.rank >= 1 && val->shape.dims[0] == st->max_batch;
}

typedef struct {
  int64_t off, size; /* unit offset and size */
  int first, last;   /* node-index lifetime */
} block;

/* Places a block of `size` bytes alive over [first, last] at the lowest offset overlapping no block in
 * blocks[0..n) whose lifetime intersects; appends it and returns its offset. */
static int64_t place(block *blocks, int *n, int64_t size, int first, int last) {
  int64_t off = 0;
  for (int moved = 1; moved;) {
    moved = 0;
    for (int j = 0; j < *n; j++) {
      const block *q = &blocks[j];
      if (q->last < first || q->first > last) continue;
      if (off < q->off + q->size && q->off < off + size) {
        off = q->off + q->size;
        moved = 1;
      }
    }
  }
  blocks[*n] = (block){off, size, first, last};
  (*n)++;
  return off;
}

static int ranges_overlap(const ri__value *a, const ri__value *b) {
  return a->mem_offset < b->mem_offset + b->mem_size && b->mem_offset < a->mem_offset + a->mem_size;
}

/* Records that segment s reads value v (produced outside it) in the given layout. */
static ri_status add_seg_input(xseg *s, int v, int nhwc, ri__err *err) {
  for (int i = 0; i < s->n_ins; i++)
    if (s->ins[i].v == v && s->ins[i].nhwc == nhwc) return RI_OK;
  xseg_in *p = ri__realloc(s->ins, (size_t)(s->n_ins + 1) * sizeof *p);
  if (!p) return RI__OOM(err);
  s->ins = p;
  memset(&p[s->n_ins], 0, sizeof p[s->n_ins]);
  p[s->n_ins].v = v;
  p[s->n_ins].nhwc = nhwc;
  s->n_ins++;
  return RI_OK;
}

/* Whether node k reads input value v as NHWC. */
static int reads_nhwc(const xnn_state *st, const xk_node *k, int v) {
  return k->kind != XK_NONE && k->in_nhwc && st->vals[v].sensitive;
}

/* Forms the segments: maximal runs of accepted nodes in node order (host nodes, which do not run, neither
 * join nor break a run). */
static ri_status form_segments(xnn_state *st, ri__err *err) {
  const ri__graph *g = st->g;
  int n = 0;
  for (int pass = 0; pass < 2; pass++) {
    n = 0;
    int open = 0;
    for (int ni = 0; ni < g->n_nodes; ni++) {
      if (g->nodes[ni].host) continue;
      if (st->nodes[ni].kind == XK_NONE) {
        open = 0;
        continue;
      }
      if (!open) {
        if (pass) st->segs[n].first = ni;
        n++;
        open = 1;
      }
      if (pass) {
        st->segs[n - 1].last = ni;
        st->node_seg[ni] = n - 1;
      }
    }
    if (pass == 0) {
      st->segs = ri__calloc((size_t)(n ? n : 1), sizeof *st->segs);
      if (!st->segs) return RI__OOM(err);
    }
  }
  st->n_segs = n;
  return RI_OK;
}

/* Readers of every value by segment and layout; segment inputs; segment outputs. */
static ri_status find_readers(xnn_state *st, ri__err *err) {
  const ri__graph *g = st->g;
  for (int ni = 0; ni < g->n_nodes; ni++) {
    const ri__node *n = &g->nodes[ni];
    if (n->host) continue;
    const xk_node *k = &st->nodes[ni];
    const int rs = st->node_seg[ni];
    for (int j = 0; j < n->n_inputs; j++) {
      int v = n->inputs[j];
      if (!is_act(g, v)) continue;
      xv_place *p = &st->vals[v];
      int nh = reads_nhwc(st, k, v);
      if (rs >= 0 && p->seg == rs) {
        if (nh)
          p->nhwc_in++;
        else
          p->plain_in++;
        if (ni > p->last_in) p->last_in = ni;
        continue;
      }
      if (p->seg >= 0) p->seg_output = 1;
      if (rs >= 0) RI__TRY(add_seg_input(&st->segs[rs], v, nh, err));
    }
  }
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i] >= 0 && st->vals[g->outputs[i]].seg >= 0) st->vals[g->outputs[i]].seg_output = 1;
  return RI_OK;
}

/* Sizes, staging and scratch placement of segment si. */
static ri_status place_segment(xnn_state *st, int si, ri__err *err) {
  const ri__graph *g = st->g;
  xseg *s = &st->segs[si];
  /* Sliced when every activation the segment touches has the batch first. */
  s->sliced = 1;
  int n_blocks_max = 0;
  for (int ni = s->first; ni <= s->last; ni++) {
    const ri__node *n = &g->nodes[ni];
    if (n->host) continue;
    for (int j = 0; j < n->n_inputs; j++)
      if (is_act(g, n->inputs[j]) && !batch_first(st, n->inputs[j])) s->sliced = 0;
    for (int j = 0; j < n->n_outputs; j++)
      if (n->outputs[j] >= 0 && !batch_first(st, n->outputs[j])) s->sliced = 0;
    n_blocks_max += 3;
  }
  const int64_t div = s->sliced ? st->max_batch : 1;
  block *blocks = ri__calloc((size_t)(n_blocks_max ? n_blocks_max : 1), sizeof *blocks);
  if (!blocks) return RI__OOM(err);
  int nb = 0;
  for (int ni = s->first; ni <= s->last; ni++) {
    const ri__node *n = &g->nodes[ni];
    if (n->host) continue;
    int v = n->outputs[0];
    xv_place *p = &st->vals[v];
    int64_t nb_full = ri__shape_numel(&g->values[v].shape) * (int64_t)sizeof(float);
    p->unit_bytes = nb_full / div;
    const int64_t sz = round64(p->unit_bytes);
    int last = p->last_in > ni ? p->last_in : ni;
    p->main_off = p->nchw_off = p->nhwc_off = -1;
    if (p->nhwc) {
      p->main_off = place(blocks, &nb, sz, ni, last);
      if (p->plain_in && !p->seg_output) p->nchw_off = place(blocks, &nb, sz, ni, last);
    } else {
      if (!p->seg_output) p->main_off = place(blocks, &nb, sz, ni, last);
      if (p->nhwc_in) p->nhwc_off = place(blocks, &nb, sz, ni, last);
    }
  }
  int64_t top = 0;
  for (int i = 0; i < nb; i++)
    if (blocks[i].off + blocks[i].size > top) top = blocks[i].off + blocks[i].size;
  ri__free(blocks);
  s->scratch_unit = top;
  s->chunk = 1;
  if (s->sliced && top > 0) {
    int64_t c = chunk_budget() / top;
    s->chunk = c < 1 ? 1 : (c > st->max_batch ? st->max_batch : (int)c);
  } else if (s->sliced) {
    s->chunk = st->max_batch;
  }
  /* Staging: NHWC reads, and plain reads whose arena bytes a segment output may overwrite. */
  int64_t off = 0;
  for (int i = 0; i < s->n_ins; i++) {
    xseg_in *in = &s->ins[i];
    const ri__value *iv = &g->values[in->v];
    int64_t full = ri__shape_numel(&iv->shape) * (int64_t)sizeof(float);
    in->unit_bytes = full / div;
    in->staged = in->nhwc;
    for (int ni = s->first; ni <= s->last && !in->staged; ni++) {
      const ri__node *n = &g->nodes[ni];
      if (n->host) continue;
      int ov = n->outputs[0];
      if (st->vals[ov].seg_output && ranges_overlap(iv, &g->values[ov])) in->staged = 1;
    }
    if (in->staged) {
      in->off = off;
      off += round64(in->unit_bytes * div);
    }
  }
  s->stage_bytes = off;
  int64_t need = s->stage_bytes + s->scratch_unit * s->chunk;
  if (need > st->buf_size) st->buf_size = need;
  return RI_OK;
}

ri_status ri__xnn_plan(xnn_state *st, const unsigned char *deny, ri__err *err) {
  const ri__graph *g = st->g;
  for (int v = 0; v < g->n_values; v++) {
    xv_place *p = &st->vals[v];
    p->seg = -1;
    p->main_off = p->nchw_off = p->nhwc_off = -1;
    p->last_in = -1;
    p->sensitive = sensitive(g, v);
  }
  for (int ni = 0; ni < g->n_nodes; ni++)
    st->node_seg[ni] = -1;
  st->n_fast = 0;
  for (int ni = 0; ni < g->n_nodes; ni++) {
    if (deny && deny[ni]) continue;
    ri_status s = RI_OK;
    if (!classify(st, ni, err, &s)) {
      if (s != RI_OK) return s;
      continue;
    }
    st->n_fast++;
    if (st->nodes[ni].out_nhwc) st->vals[g->nodes[ni].outputs[0]].nhwc = 1;
  }
  RI__TRY(form_segments(st, err));
  for (int si = 0; si < st->n_segs; si++)
    for (int ni = st->segs[si].first; ni <= st->segs[si].last; ni++)
      if (!g->nodes[ni].host) st->vals[g->nodes[ni].outputs[0]].seg = si;
  for (int si = 0; si < st->n_segs; si++)
    st->nodes[st->segs[si].last].yield = 1;
  RI__TRY(find_readers(st, err));
  st->buf_size = 64;
  for (int si = 0; si < st->n_segs; si++)
    RI__TRY(place_segment(st, si, err));
  return RI_OK;
}

void ri__xnn_plan_clear(xnn_state *st) {
  if (st->nodes)
    for (int i = 0; i < st->g->n_nodes; i++) {
      ri__free(st->nodes[i].cdata);
      st->nodes[i].cdata = NULL;
    }
  for (int i = 0; i < st->n_segs; i++)
    ri__free(st->segs[i].ins);
  ri__free(st->segs);
  st->segs = NULL;
  st->n_segs = 0;
}
