/* Pooling, Softmax and Resize on the CUDA backend, all on the backend's own kernels (k_pool.cu,
 * k_softmax.cu, k_resize.cu). Pools accept NCHW or NHWC; Softmax and Resize take row-major inputs. */
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/pool_params.h"
#include "graph/ops/resize_params.h"
#include "graph/ops/softmax_params.h"

static ri_status float_in(cu_state *st, int ni, ri__err *err) {
  int v = ri__cu_in(st, ni, 0);
  if (v < 0 || st->g->values[v].dtype != RI_DTYPE_FLOAT32)
    return ri__cu_unsupported(err, st, ni, "input type %s (float32 is supported)",
                              v < 0 ? "absent" : ri_dtype_name(st->g->values[v].dtype));
  ri__cu_use_input(st, ni, 0);
  return RI_OK;
}

/* ---- GlobalAveragePool ---- */

static ri_status gap_prep(cu_state *st, int ni, ri__err *err) {
  RI__TRY(float_in(st, ni, err));
  if (st->g->values[ri__cu_in(st, ni, 0)].shape.rank < 3)
    return ri__cu_unsupported(err, st, ni, "an input of rank < 3");
  st->nodes[ni].name = "global_avg_pool";
  return RI_OK;
}

static ri_status gap_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                         ri__err *err) {
  const cu_state *st = c->st;
  const ri__shape *s = &in[0].t->shape;
  int64_t hw = 1;
  for (int k = 2; k < s->rank; k++)
    hw *= s->dims[k];
  if (hw == 0) {
    CU_RT(ri__cu_fill(c->stream, out[0].p, out[0].dt, s->dims[0] * s->dims[1], 0.0));
    return RI_OK;
  }
  CU_RT(ri__cu_global_avg_pool(c->stream, in[0].dt, in[0].p, out[0].p, s->dims[0], s->dims[1], hw,
                               in[0].layout == CU_LAYOUT_NHWC));
  return RI_OK;
}

static const cu_op_impl k_gap = {gap_prep, NULL, NULL, gap_run};

/* ---- MaxPool / AveragePool ---- */

static ri_status pool_prep(cu_state *st, int ni, ri__err *err) {
  const ri__node *n = &st->g->nodes[ni];
  if (!n->params) return ri__cu_unsupported(err, st, ni, "parameters were not resolved");
  if (n->n_outputs > 1 && n->outputs[1] >= 0) return ri__cu_unsupported(err, st, ni, "the Indices output");
  RI__TRY(float_in(st, ni, err));
  st->nodes[ni].name = n->op == RI__OP_MaxPool ? "max_pool" : "avg_pool";
  return RI_OK;
}

static ri_status pool_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                          ri__err *err) {
  const cu_state *st = c->st;
  const ri__node *n = &st->g->nodes[ni];
  const ri__pool_params *p = n->params;
  const ri__shape *is = &in[0].t->shape, *os = &out[0].t->shape;
  ri__cu_pool_args a;
  memset(&a, 0, sizeof a);
  int64_t pads[4], oh, ow;
  ri__window_hw(&p->win, is, &a.ih, &a.iw);
  ri__pool_out_size(p, a.ih, a.iw, &oh, &ow, pads);
  ri__window_hw(&p->win, os, &a.oh, &a.ow);
  if (oh != a.oh || ow != a.ow)
    return ri__err_set(err, RI_ERR_INTERNAL,
                       "node '%s' (%s): output size %lldx%lld differs from the window's %lldx%lld", n->name,
                       ri__op_name(n->op), (long long)a.oh, (long long)a.ow, (long long)oh, (long long)ow);
  a.n = is->dims[0], a.c = is->dims[1];
  a.kh = p->win.kernel[0], a.kw = p->win.kernel[1];
  a.sh = p->win.stride[0], a.sw = p->win.stride[1];
  a.dh = p->win.dilation[0], a.dw = p->win.dilation[1];
  a.pad_t = pads[0], a.pad_l = pads[1], a.pad_b = pads[2], a.pad_r = pads[3];
  a.is_max = n->op == RI__OP_MaxPool;
  a.count_include_pad = p->count_include_pad;
  a.nhwc = in[0].layout == CU_LAYOUT_NHWC;
  CU_RT(ri__cu_pool2d(c->stream, in[0].dt, &a, in[0].p, out[0].p));
  return RI_OK;
}

static const cu_op_impl k_pool = {pool_prep, NULL, NULL, pool_run};

/* ---- Softmax ---- */

static ri_status softmax_prep(cu_state *st, int ni, ri__err *err) {
  if (!st->g->nodes[ni].params) return ri__cu_unsupported(err, st, ni, "parameters were not resolved");
  RI__TRY(float_in(st, ni, err));
  st->nodes[ni].name = "softmax";
  return RI_OK;
}

static ri_status softmax_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                             ri__err *err) {
  const cu_state *st = c->st;
  const ri__node *n = &st->g->nodes[ni];
  int64_t outer, len, inner;
  if (!ri__softmax_geometry(n->params, &in[0].t->shape, &outer, &len, &inner))
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Softmax): axis out of range", n->name);
  CU_RT(ri__cu_softmax(c->stream, in[0].dt, in[0].p, out[0].p, outer, len, inner));
  return RI_OK;
}

static const cu_op_impl k_softmax = {softmax_prep, NULL, NULL, softmax_run};

/* ---- Resize (nearest and linear over the last two axes) ----
 * The source rows and columns of every output row and column depend only on the spatial sizes, which do
 * not change with the batch: they are computed at prepare time with the graph's own coordinate functions
 * (resize_params.h) and uploaded as tables, so the device follows exactly the reference's rounding. */

typedef struct {
  int64_t th_off, tw_off, ih, iw, oh, ow;
  int linear;
} resize_aux;

static ri_status taps(cu_state *st, int ni, const ri__resize_params *p, float scale, int64_t in_len,
                      int64_t out_len, int64_t *off, ri__err *err) {
  if (in_len > INT32_MAX || out_len > INT32_MAX)
    return ri__cu_unsupported(err, st, ni, "an axis beyond 32 bits");
  ri__cu_resize_tap *t = ri__calloc((size_t)(out_len > 0 ? out_len : 1), sizeof *t);
  if (!t) return RI__OOM(err);
  for (int64_t o = 0; o < out_len; o++) {
    int64_t i0 = o, i1 = o;
    float w = 0.f;
    if (!(scale == 1.f && in_len == out_len)) {
      float c = ri__resize_source(p, o, scale, in_len, out_len);
      if (p->mode == RI__RESIZE_LINEAR) {
        ri__resize_linear_taps(c, in_len, &i0, &i1, &w);
      } else {
        i0 = i1 = ri__resize_nearest_index(p, c, in_len);
      }
    }
    t[o].i0 = (int32_t)i0;
    t[o].i1 = (int32_t)i1;
    t[o].w = w;
  }
  ri_status s = ri__cu_blob_add(st, t, (size_t)out_len * sizeof *t, off, err);
  ri__free(t);
  return s;
}

static ri_status resize_prep(cu_state *st, int ni, ri__err *err) {
  const ri__graph *g = st->g;
  const ri__node *n = &g->nodes[ni];
  const ri__resize_params *p = n->params;
  if (!p) return ri__cu_unsupported(err, st, ni, "parameters were not resolved");
  RI__TRY(float_in(st, ni, err));
  if (p->target == RI__RESIZE_TARGET_RUNTIME)
    return ri__cu_unsupported(err, st, ni, "scales or sizes computed at run time (constants are supported)");
  if (n->n_inputs > 4) return ri__cu_unsupported(err, st, ni, "%d inputs", n->n_inputs);
  ri__tensor in[4];
  memset(in, 0, sizeof in);
  for (int k = 0; k < n->n_inputs; k++) {
    int v = n->inputs[k];
    if (v < 0) continue;
    in[k].dtype = g->values[v].dtype;
    in[k].shape = g->values[v].shape;
    in[k].data = g->values[v].kind == RI__VAL_CONST ? g->values[v].data : NULL;
  }
  ri__resize_plan plan;
  RI__TRY(ri__resize_plan_get(n, p, in, n->n_inputs, &plan, err));
  const ri__shape *xs = &in[0].shape;
  int r = xs->rank;
  if (r < 2) return ri__cu_unsupported(err, st, ni, "an input of rank %d", r);
  for (int a = 0; a + 2 < r; a++)
    if (plan.scale[a] != 1.f || plan.out.dims[a] != xs->dims[a])
      return ri__cu_unsupported(err, st, ni, "resizing axis %d (only the last two axes may change)", a);
  resize_aux *a = ri__calloc(1, sizeof *a);
  if (!a) return RI__OOM(err);
  st->nodes[ni].aux = a;
  a->ih = xs->dims[r - 2], a->iw = xs->dims[r - 1], a->oh = plan.out.dims[r - 2],
  a->ow = plan.out.dims[r - 1];
  a->linear = p->mode == RI__RESIZE_LINEAR;
  RI__TRY(taps(st, ni, p, plan.scale[r - 2], a->ih, a->oh, &a->th_off, err));
  RI__TRY(taps(st, ni, p, plan.scale[r - 1], a->iw, a->ow, &a->tw_off, err));
  st->nodes[ni].name = a->linear ? "resize_linear" : "resize_nearest";
  return RI_OK;
}

static ri_status resize_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                            ri__err *err) {
  const cu_state *st = c->st;
  const ri__node *n = &st->g->nodes[ni];
  const resize_aux *a = st->nodes[ni].aux;
  const ri__shape *is = &in[0].t->shape, *os = &out[0].t->shape;
  int r = is->rank;
  if (is->dims[r - 2] != a->ih || is->dims[r - 1] != a->iw || os->dims[r - 2] != a->oh ||
      os->dims[r - 1] != a->ow)
    return ri__err_set(err, RI_ERR_INTERNAL,
                       "node '%s' (Resize): spatial sizes differ from the prepared ones", n->name);
  ri__cu_resize_args p;
  memset(&p, 0, sizeof p);
  p.outer = 1;
  for (int k = 0; k + 2 < r; k++)
    p.outer *= is->dims[k];
  p.ih = a->ih, p.iw = a->iw, p.oh = a->oh, p.ow = a->ow;
  p.linear = a->linear;
  if (p.outer * p.oh * p.ow == 0) return RI_OK;
  CU_RT(ri__cu_resize(c->stream, in[0].dt, &p, ri__cu_const_ptr(st, a->th_off),
                      ri__cu_const_ptr(st, a->tw_off), in[0].p, out[0].p));
  return RI_OK;
}

static const cu_op_impl k_resize = {resize_prep, NULL, NULL, resize_run};

const cu_op_impl *ri__cu_impl_gap(void) { return &k_gap; }
const cu_op_impl *ri__cu_impl_pool(void) { return &k_pool; }
const cu_op_impl *ri__cu_impl_softmax(void) { return &k_softmax; }
const cu_op_impl *ri__cu_impl_resize(void) { return &k_resize; }
