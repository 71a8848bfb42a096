/* Elementwise ops on the CUDA backend: the unary activations and Exp, Add/Sub/Mul/Div with broadcasting
 * and fused activation, Cast, QuantizeLinear / DequantizeLinear, and Identity. Unary ops, Cast and the
 * per-tensor or channel-axis Q/DQ work on any layout (the output keeps the input's layout); binary ops read
 * both inputs through strides, so operands of different layouts mix freely. */
#include <math.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "graph/op.h"
#include "graph/ops/axis_util.h"

static int is_float(ri_dtype t) { return t == RI_DTYPE_FLOAT32; }

/* ---- unary ---- */

static ri_status unary_prep(cu_state *st, int ni, ri__err *err) {
  const ri__node *n = &st->g->nodes[ni];
  int v = ri__cu_in(st, ni, 0);
  if (v < 0 || !is_float(st->g->values[v].dtype))
    return ri__cu_unsupported(err, st, ni, "input type %s (float32 is supported)",
                              v < 0 ? "absent" : ri_dtype_name(st->g->values[v].dtype));
  ri__cu_use_input(st, ni, 0);
  if (n->op == RI__OP_Clip) {
    for (int k = 1; k < 3; k++) {
      int b = ri__cu_in(st, ni, k);
      if (b < 0) continue;
      const ri__value *bv = &st->g->values[b];
      if (bv->kind != RI__VAL_CONST && !bv->host)
        return ri__cu_unsupported(err, st, ni, "a %s bound computed on the device", k == 1 ? "min" : "max");
      if (bv->dtype != RI_DTYPE_FLOAT32)
        return ri__cu_unsupported(err, st, ni, "a bound of type %s", ri_dtype_name(bv->dtype));
    }
  }
  st->nodes[ni].name = "eltwise";
  return RI_OK;
}

static ri_status read_bound(const cu_arg *a, float *v) {
  if (!a->t || a->v < 0) return RI_OK;
  if (!a->t->data || ri__shape_numel(&a->t->shape) < 1) return RI_ERR_INTERNAL;
  memcpy(v, a->t->data, sizeof(float));
  return RI_OK;
}

static ri_status unary_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                           ri__err *err) {
  const cu_state *st = c->st;
  const ri__node *n = &st->g->nodes[ni];
  int op = RI__ACT_NONE;
  float a = 0.f, b = 0.f;
  switch (n->op) {
  case RI__OP_Relu: op = RI__ACT_RELU; break;
  case RI__OP_Clip:
    op = RI__ACT_CLIP;
    a = -INFINITY, b = INFINITY;
    if ((n->n_inputs > 1 && read_bound(&in[1], &a) != RI_OK) ||
        (n->n_inputs > 2 && read_bound(&in[2], &b) != RI_OK))
      return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Clip): a bound has no host data", n->name);
    break;
  case RI__OP_LeakyRelu: op = RI__ACT_LEAKY_RELU, a = ri__node_attr_float(n, "alpha", 0.01f); break;
  case RI__OP_HardSigmoid:
    op = RI__ACT_HARD_SIGMOID;
    a = ri__node_attr_float(n, "alpha", 0.2f), b = ri__node_attr_float(n, "beta", 0.5f);
    break;
  case RI__OP_HardSwish: op = RI__ACT_HARD_SWISH; break;
  case RI__OP_Sigmoid: op = RI__ACT_SIGMOID; break;
  case RI__OP_Exp: op = RI__CU_UNARY_EXP; break;
  default: return ri__err_set(err, RI_ERR_INTERNAL, "node '%s': not a unary op", n->name);
  }
  CU_RT(ri__cu_unary(c->stream, in[0].dt, in[0].p, out[0].p, ri__shape_numel(&in[0].t->shape), op, a, b));
  return RI_OK;
}

static const cu_op_impl k_unary = {unary_prep, NULL, NULL, unary_run};

/* ---- binary ---- */

static ri_status binary_prep(cu_state *st, int ni, ri__err *err) {
  const ri__node *n = &st->g->nodes[ni];
  for (int k = 0; k < 2; k++) {
    int v = ri__cu_in(st, ni, k);
    ri_dtype t = v >= 0 ? st->g->values[v].dtype : RI_DTYPE_UNDEFINED;
    if (t != RI_DTYPE_FLOAT32 && t != RI_DTYPE_INT32 && t != RI_DTYPE_INT64)
      return ri__cu_unsupported(err, st, ni, "input %d of type %s (float32, int32 and int64 are supported)",
                                k, ri_dtype_name(t));
    if (n->act != RI__ACT_NONE && t != RI_DTYPE_FLOAT32)
      return ri__cu_unsupported(err, st, ni, "a fused activation on %s", ri_dtype_name(t));
    ri__cu_use_input(st, ni, k);
  }
  st->nodes[ni].name = "binary";
  return RI_OK;
}

static ri_status binary_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                            ri__err *err) {
  const cu_state *st = c->st;
  const ri__node *n = &st->g->nodes[ni];
  const ri__shape *os = &out[0].t->shape;
  int order[RI__MAX_RANK];
  ri__cu_storage_order(os->rank, out[0].layout, order);
  int64_t ost[RI__MAX_RANK], ist[2][RI__MAX_RANK];
  ri__cu_strides(os, out[0].layout, ost);
  for (int t = 0; t < 2; t++)
    ri__cu_strides(&in[t].t->shape, in[t].layout, ist[t]);
  ri__cu_walk w;
  memset(&w, 0, sizeof w);
  w.rank = os->rank;
  for (int j = 0; j < os->rank; j++) {
    int ax = order[j];
    w.dims[j] = os->dims[ax];
    w.st[0][j] = ost[ax];
    for (int t = 0; t < 2; t++) {
      const ri__shape *is = &in[t].t->shape;
      int ia = ax - (os->rank - is->rank);
      w.st[1 + t][j] = ia >= 0 && is->dims[ia] != 1 ? ist[t][ia] : 0;
    }
  }
  ri__cu_walk_simplify(&w, 3);
  int op = n->op == RI__OP_Add   ? RI__CU_ADD
           : n->op == RI__OP_Sub ? RI__CU_SUB
           : n->op == RI__OP_Mul ? RI__CU_MUL
                                 : RI__CU_DIV;
  CU_RT(ri__cu_binary(c->stream, out[0].dt, op, &w, in[0].p, in[1].p, out[0].p, (int)n->act, n->act_a,
                      n->act_b));
  return RI_OK;
}

static const cu_op_impl k_binary = {binary_prep, NULL, NULL, binary_run};

/* ---- Cast ---- */

static ri_status cast_prep(cu_state *st, int ni, ri__err *err) {
  const ri__node *n = &st->g->nodes[ni];
  int v = ri__cu_in(st, ni, 0);
  if (v < 0 || n->n_outputs < 1 || n->outputs[0] < 0)
    return ri__cu_unsupported(err, st, ni, "a missing input or output");
  ri_dtype from = st->g->values[v].dtype, to = st->g->values[n->outputs[0]].dtype;
  if (from == 8 || ri_dtype_size(from) == 0 || to == 8 || ri_dtype_size(to) == 0)
    return ri__cu_unsupported(err, st, ni, "cast %s -> %s", ri_dtype_name(from), ri_dtype_name(to));
  ri__cu_use_input(st, ni, 0);
  st->nodes[ni].name = "cast";
  return RI_OK;
}

static ri_status cast_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                          ri__err *err) {
  const cu_state *st = c->st;
  int64_t count = ri__shape_numel(&in[0].t->shape);
  if (in[0].dt == out[0].dt) {
    if (count > 0 && in[0].p != out[0].p)
      CU_RT(cudaMemcpyAsync(out[0].p, in[0].p, (size_t)count * ri__cu_esize(in[0].dt),
                            cudaMemcpyDeviceToDevice, c->stream));
    return RI_OK;
  }
  CU_RT(ri__cu_cast(c->stream, in[0].p, in[0].dt, out[0].p, out[0].dt, count));
  return RI_OK;
}

static const cu_op_impl k_cast = {cast_prep, NULL, NULL, cast_run};

/* ---- QuantizeLinear / DequantizeLinear ---- */

static ri_status qdq_prep(cu_state *st, int ni, ri__err *err) {
  const ri__node *n = &st->g->nodes[ni];
  int x = ri__cu_in(st, ni, 0), s = ri__cu_in(st, ni, 1);
  if (x < 0 || s < 0) return ri__cu_unsupported(err, st, ni, "a missing input");
  ri_dtype xt = st->g->values[x].dtype, stt = st->g->values[s].dtype;
  int q = n->op == RI__OP_QuantizeLinear;
  int x_ok = q ? xt == RI_DTYPE_FLOAT32 || xt == RI_DTYPE_FLOAT16
               : xt == RI_DTYPE_UINT8 || xt == RI_DTYPE_INT8 || xt == RI_DTYPE_UINT16 ||
                     xt == RI_DTYPE_INT16 || xt == RI_DTYPE_INT32;
  if (!x_ok || (stt != RI_DTYPE_FLOAT32 && stt != RI_DTYPE_FLOAT16))
    return ri__cu_unsupported(err, st, ni, "input %s with scale %s", ri_dtype_name(xt), ri_dtype_name(stt));
  for (int k = 0; k < n->n_inputs && k < 3; k++)
    ri__cu_use_input(st, ni, k);
  st->nodes[ni].name = q ? "quantize" : "dequantize";
  return RI_OK;
}

static ri_status qdq_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                         ri__err *err) {
  const cu_state *st = c->st;
  const ri__node *n = &st->g->nodes[ni];
  const ri__shape *xs = &in[0].t->shape;
  int64_t numel = ri__shape_numel(xs), ns = ri__shape_numel(&in[1].t->shape), channels = 1, inner = 1;
  if (ns != 1) {
    int axis;
    if (!ri__norm_axis(ri__node_attr_int(n, "axis", 1), xs->rank, &axis) || xs->dims[axis] != ns)
      return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (%s): scale does not match the input axis", n->name,
                         ri__op_name(n->op));
    channels = ns;
    if (!(in[0].layout == CU_LAYOUT_NHWC && axis == 1))
      for (int k = axis + 1; k < xs->rank; k++)
        inner *= xs->dims[k];
  }
  const void *zp = n->n_inputs > 2 && in[2].v >= 0 ? in[2].p : NULL;
  if (n->op == RI__OP_QuantizeLinear)
    CU_RT(ri__cu_quantize(c->stream, in[0].p, in[0].dt, in[1].p, in[1].dt, zp, out[0].p, out[0].dt, numel,
                          channels, inner));
  else
    CU_RT(ri__cu_dequantize(c->stream, in[0].p, in[0].dt, in[1].p, in[1].dt, zp, out[0].p, out[0].dt, numel,
                            channels, inner));
  return RI_OK;
}

static const cu_op_impl k_qdq = {qdq_prep, NULL, NULL, qdq_run};

const cu_op_impl *ri__cu_impl_unary(void) { return &k_unary; }
const cu_op_impl *ri__cu_impl_binary(void) { return &k_binary; }
const cu_op_impl *ri__cu_impl_cast(void) { return &k_cast; }
const cu_op_impl *ri__cu_impl_qdq(void) { return &k_qdq; }
