/* Creation (weight packing) and execution of the XNNPACK operators of one planned node. XNNPACK's setup
 * stores the run's pointers and sizes in the operator, so an operator serves one thread at a time: per
 * context and lane, or, for shared weight operators (xnn_weights.c), under the node's mutex. */
#include <math.h>
#include <string.h>

#include "backend/cpu/xnn/xnn_internal.h"
#include "core/alloc.h"

/* Weights in XNNPACK's [groups][out/group][kh][kw][in/group] order from ONNX's [out][in/group][kh][kw].
 * Returns the graph's data itself when the two orders coincide (1x1 kernels, one input channel per group),
 * else a new buffer in *tmp (ri__free). */
static const float *conv_weights(const ri__graph *g, const ri__node *n, const xk_node *k, float **tmp) {
  const float *w = g->values[n->inputs[1]].data;
  *tmp = NULL;
  const size_t khw = (size_t)k->kh * k->kw, cg = k->cin_g, m = (size_t)k->groups * k->cout_g;
  if (khw == 1 || cg == 1) return w;
  float *t = ri__malloc(m * cg * khw * sizeof(float));
  if (!t) return NULL;
  for (size_t o = 0; o < m; o++)
    for (size_t i = 0; i < cg; i++)
      for (size_t p = 0; p < khw; p++)
        t[(o * khw + p) * cg + i] = w[(o * cg + i) * khw + p];
  *tmp = t;
  return t;
}

/* B as XNNPACK's [n][k] kernel scaled by alpha, and beta * C as an [n] bias (NULL when absent). */
static ri_status fc_weights(const ri__graph *g, const ri__node *n, const xk_node *k, const float **kern,
                            float **ktmp, float **bias, ri__err *err) {
  const float *b = g->values[k->fc_b].data;
  *ktmp = NULL;
  *bias = NULL;
  if (!k->fc_b_kn && k->fc_alpha == 1.f) {
    *kern = b;
  } else {
    float *t = ri__malloc(k->fc_n * k->fc_k * sizeof(float));
    if (!t) return RI__OOM(err);
    for (size_t o = 0; o < k->fc_n; o++)
      for (size_t i = 0; i < k->fc_k; i++)
        t[o * k->fc_k + i] = k->fc_alpha * (k->fc_b_kn ? b[i * k->fc_n + o] : b[o * k->fc_k + i]);
    *ktmp = t;
    *kern = t;
  }
  if (k->fc_c >= 0) {
    const ri__value *c = &g->values[k->fc_c];
    const float *cd = c->data;
    int scalar = ri__shape_numel(&c->shape) == 1;
    float *t = ri__malloc(k->fc_n * sizeof(float));
    if (!t) {
      ri__free(*ktmp);
      *ktmp = NULL;
      return RI__OOM(err);
    }
    for (size_t o = 0; o < k->fc_n; o++)
      t[o] = k->fc_beta * cd[scalar ? 0 : o];
    *bias = t;
  }
  return RI_OK;
}

static enum xnn_status create_unary(xu_op op, float a, float b, uint32_t flags, xnn_operator_t *out) {
  switch (op) {
  case XU_CLAMP: return xnn_create_clamp_nc_f32(1, 1, 1, a, b, flags, out);
  case XU_SIGMOID: return xnn_create_sigmoid_nc_f32(1, 1, 1, flags, out);
  case XU_HARDSWISH: return xnn_create_hardswish_nc_f32(1, 1, 1, flags, out);
  case XU_LEAKY: return xnn_create_leaky_relu_nc_f32(1, 1, 1, a, flags, out);
  }
  return xnn_status_invalid_parameter;
}

static enum xnn_status setup_unary(xu_op op, xnn_operator_t o, size_t n, const float *x, float *y,
                                   pthreadpool_t tp) {
  switch (op) {
  case XU_CLAMP: return xnn_setup_clamp_nc_f32(o, n, x, y, tp);
  case XU_SIGMOID: return xnn_setup_sigmoid_nc_f32(o, n, x, y, tp);
  case XU_HARDSWISH: return xnn_setup_hardswish_nc_f32(o, n, x, y, tp);
  case XU_LEAKY: return xnn_setup_leaky_relu_nc_f32(o, n, x, y, tp);
  }
  return xnn_status_invalid_parameter;
}

static xu_op post_op(ri__act a) {
  return a == RI__ACT_SIGMOID ? XU_SIGMOID : a == RI__ACT_HARD_SWISH ? XU_HARDSWISH : XU_LEAKY;
}

ri_status ri__xnn_op_create_main(const xnn_state *st, int ni, xnn_operator_t *out, ri__err *err) {
  const ri__graph *g = st->g;
  const ri__node *n = &g->nodes[ni];
  const xk_node *k = &st->nodes[ni];
  enum xnn_status s = xnn_status_success;
  xnn_operator_t op = NULL;
  *out = NULL;
  /* The last operator of a segment sends the pool's workers to sleep instead of spinning for the next
   * parallel job, so that reference kernels and other processes get the cores between segments. */
  const uint32_t yield = k->yield ? XNN_FLAG_YIELD_WORKERS : 0;
  switch (k->kind) {
  case XK_NONE:
  case XK_COPY_IN:
  case XK_COPY_OUT:
  case XK_COPY:
  case XK_CONCAT: return RI_OK;
  case XK_CONV: {
    float *tmp;
    const float *w = conv_weights(g, n, k, &tmp);
    if (!w) return RI__OOM(err);
    const float *bias = n->n_inputs > 2 && n->inputs[2] >= 0 ? g->values[n->inputs[2]].data : NULL;
    s = xnn_create_convolution2d_nhwc_f32(k->pads[0], k->pads[3], k->pads[2], k->pads[1], k->kh, k->kw, k->sh,
                                          k->sw, k->dh, k->dw, k->groups, k->cin_g, k->cout_g,
                                          k->groups * k->cin_g, k->groups * k->cout_g, w, bias, k->out_min,
                                          k->out_max, yield, &op);
    ri__free(tmp);
    break;
  }
  case XK_MAXPOOL:
    s = xnn_create_max_pooling2d_nhwc_f32(k->pads[0], k->pads[3], k->pads[2], k->pads[1], k->kh, k->kw, k->sh,
                                          k->sw, k->dh, k->dw, (size_t)k->in_c, (size_t)k->in_c,
                                          (size_t)k->in_c, k->out_min, k->out_max, yield, &op);
    break;
  case XK_AVGPOOL:
    s = xnn_create_average_pooling2d_nhwc_f32(k->pads[0], k->pads[3], k->pads[2], k->pads[1], k->kh, k->kw,
                                              k->sh, k->sw, (size_t)k->in_c, (size_t)k->in_c, (size_t)k->in_c,
                                              k->out_min, k->out_max, yield, &op);
    break;
  case XK_GAP:
    s = xnn_create_global_average_pooling_nwc_f32((size_t)k->in_c, (size_t)k->in_c, (size_t)k->in_c,
                                                  -INFINITY, INFINITY, yield, &op);
    break;
  case XK_FC: {
    const float *kern = NULL;
    float *ktmp = NULL, *bias = NULL;
    RI__TRY(fc_weights(g, n, k, &kern, &ktmp, &bias, err));
    s = xnn_create_fully_connected_nc_f32(k->fc_k, k->fc_n, k->fc_k, k->fc_n, kern, bias, k->out_min,
                                          k->out_max, yield, &op);
    ri__free(ktmp);
    ri__free(bias);
    break;
  }
  case XK_BINARY:
    switch (k->bop) {
    case XB_ADD: s = xnn_create_add_nd_f32(k->out_min, k->out_max, yield, &op); break;
    case XB_SUB: s = xnn_create_subtract_nd_f32(k->out_min, k->out_max, yield, &op); break;
    case XB_MUL: s = xnn_create_multiply_nd_f32(k->out_min, k->out_max, yield, &op); break;
    case XB_DIV: s = xnn_create_divide_nd_f32(k->out_min, k->out_max, yield, &op); break;
    }
    break;
  case XK_UNARY: s = create_unary(k->uop, k->ua, k->ub, yield, &op); break;
  case XK_PAD: s = xnn_create_constant_pad_nd_x32(&k->pad_value, yield, &op); break;
  case XK_RESIZE:
    s = xnn_create_resize_bilinear2d_nhwc_f32((size_t)k->in_c, (size_t)k->in_c, (size_t)k->in_c,
                                              k->resize_flags | yield, &op);
    break;
  case XK_SOFTMAX:
    s = xnn_create_softmax_nc_f32(k->sm_channels, k->sm_channels, k->sm_channels, yield, &op);
    break;
  }
  if (s != xnn_status_success) return ri__xnn_fail(n, "operator creation", s, err);
  *out = op;
  return RI_OK;
}

ri_status ri__xnn_ops_create(xnn_ctx *c, int ni, ri__err *err) {
  const ri__node *n = &c->st->g->nodes[ni];
  const xk_node *k = &c->st->nodes[ni];
  if (!c->st->wop[ni]) RI__TRY(ri__xnn_op_create_main(c->st, ni, &c->op[ni], err));
  const uint32_t yield = k->yield ? XNN_FLAG_YIELD_WORKERS : 0;
  if (k->post != RI__ACT_NONE) {
    enum xnn_status s = create_unary(post_op(k->post), k->post_a, 0.f, yield, &c->post[ni]);
    if (s != xnn_status_success) return ri__xnn_fail(n, "activation operator creation", s, err);
  }
  return RI_OK;
}

static ri_status geometry_error(const ri__node *n, const ri__tensor *x, const xk_node *k, ri__err *err) {
  char b[160];
  return ri__err_set(
      err, RI_ERR_SHAPE,
      "node '%s': input %s differs from the [N,%lld,%lld,%lld] the XNNPACK operator was planned for", n->name,
      ri__shape_str(&x->shape, b, sizeof b), (long long)k->in_c, (long long)k->in_h, (long long)k->in_w);
}

/* Input k's shape as XNNPACK sees it: NHWC-permuted for rank-4 inputs of NHWC-mode nodes. */
static size_t binary_shape(const xk_node *k, const ri__tensor *t, int idx, size_t *dims) {
  if (idx == k->const_in) {
    memcpy(dims, k->cshape, (size_t)k->crank * sizeof(size_t));
    return (size_t)k->crank;
  }
  const ri__shape *s = &t->shape;
  if (k->in_nhwc) {
    dims[0] = (size_t)s->dims[0];
    dims[1] = (size_t)s->dims[2];
    dims[2] = (size_t)s->dims[3];
    dims[3] = (size_t)s->dims[1];
    return 4;
  }
  if (s->rank == 0) {
    dims[0] = 1;
    return 1;
  }
  for (int i = 0; i < s->rank; i++)
    dims[i] = (size_t)s->dims[i];
  return (size_t)s->rank;
}

/* Concat along k->axis: the output is `outer` rows, each the inputs' rows of prod(dims[axis:]) side by side.
 */
static ri_status concat_run(const ri__node *n, const xk_node *k, const ri__tensor *in,
                            const float *const *inp, const ri__tensor *out, float *outp, ri__err *err) {
  const ri__shape *os = &out->shape;
  int64_t outer = 1, row = 1;
  for (int d = 0; d < k->axis; d++)
    outer *= os->dims[d];
  for (int d = k->axis; d < os->rank; d++)
    row *= os->dims[d];
  int64_t col = 0;
  for (int j = 0; j < n->n_inputs; j++) {
    const ri__shape *is = &in[j].shape;
    int64_t len = 1;
    for (int d = k->axis; d < is->rank; d++)
      len *= is->dims[d];
    if (is->rank != os->rank || col + len > row)
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s': Concat input %d does not fit the output", n->name, j);
    for (int64_t o = 0; o < outer; o++)
      memcpy(outp + o * row + col, inp[j] + o * len, (size_t)len * sizeof(float));
    col += len;
  }
  return RI_OK;
}

ri_status ri__xnn_ops_run(xnn_ctx *c, int ni, const ri__tensor *in, const float *const *inp,
                          const ri__tensor *out, float *outp, ri__err *err) {
  const ri__node *n = &c->st->g->nodes[ni];
  const xk_node *k = &c->st->nodes[ni];
  xnn_operator_t op = c->st->wop[ni] ? c->st->wop[ni] : c->op[ni];
  pthread_mutex_t *mu = c->st->wop[ni] ? &c->st->wmu[ni] : NULL;
  pthreadpool_t tp = c->tp;
  const ri__shape *xs = &in[0].shape;
  int64_t numel = ri__shape_numel(xs);
  enum xnn_status s = xnn_status_success;
  switch (k->kind) {
  case XK_NONE: return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' has no XNNPACK plan", n->name);
  case XK_COPY_IN:
  case XK_COPY_OUT:
  case XK_COPY: memcpy(outp, inp[0], (size_t)numel * sizeof(float)); return RI_OK;
  case XK_CONCAT: return concat_run(n, k, in, inp, out, outp, err);
  case XK_CONV:
  case XK_MAXPOOL:
  case XK_AVGPOOL:
  case XK_GAP:
  case XK_RESIZE:
    if (xs->rank != 4 || xs->dims[1] != k->in_c || xs->dims[2] != k->in_h || xs->dims[3] != k->in_w)
      return geometry_error(n, &in[0], k, err);
    break;
  case XK_FC:
    if (xs->rank < 1 || xs->dims[xs->rank - 1] != (int64_t)k->fc_k)
      return ri__err_set(err, RI_ERR_SHAPE,
                         "node '%s': input's last dim is %lld, the XNNPACK operator needs %zu", n->name,
                         xs->rank ? (long long)xs->dims[xs->rank - 1] : 0LL, k->fc_k);
    break;
  case XK_PAD:
    if (xs->rank != 4) return ri__err_set(err, RI_ERR_SHAPE, "node '%s': Pad input is not 4-D", n->name);
    break;
  default: break;
  }
  /* From setup to the end of the run the operator holds this run's pointers. */
  if (mu) pthread_mutex_lock(mu);
  const size_t batch = xs->rank > 0 ? (size_t)xs->dims[0] : 1;
  const size_t h = xs->rank == 4 ? (size_t)xs->dims[2] : 1, w = xs->rank == 4 ? (size_t)xs->dims[3] : 1;
  switch (k->kind) {
  case XK_CONV: s = xnn_setup_convolution2d_nhwc_f32(op, batch, h, w, inp[0], outp, tp); break;
  case XK_MAXPOOL: s = xnn_setup_max_pooling2d_nhwc_f32(op, batch, h, w, inp[0], outp, tp); break;
  case XK_AVGPOOL: s = xnn_setup_average_pooling2d_nhwc_f32(op, batch, h, w, inp[0], outp, tp); break;
  case XK_GAP: s = xnn_setup_global_average_pooling_nwc_f32(op, batch, h * w, inp[0], outp, tp); break;
  case XK_RESIZE:
    s = xnn_setup_resize_bilinear2d_nhwc_f32(op, batch, h, w, (size_t)k->out_h, (size_t)k->out_w, inp[0],
                                             outp, tp);
    break;
  case XK_FC: s = xnn_setup_fully_connected_nc_f32(op, (size_t)numel / k->fc_k, inp[0], outp, tp); break;
  case XK_BINARY: {
    size_t d0[XNN_MAX_TENSOR_DIMS], d1[XNN_MAX_TENSOR_DIMS];
    size_t r0 = binary_shape(k, &in[0], 0, d0), r1 = binary_shape(k, &in[1], 1, d1);
    const float *a = inp[0], *b = inp[1];
    switch (k->bop) {
    case XB_ADD: s = xnn_setup_add_nd_f32(op, r0, d0, r1, d1, a, b, outp, tp); break;
    case XB_SUB: s = xnn_setup_subtract_nd_f32(op, r0, d0, r1, d1, a, b, outp, tp); break;
    case XB_MUL: s = xnn_setup_multiply_nd_f32(op, r0, d0, r1, d1, a, b, outp, tp); break;
    case XB_DIV: s = xnn_setup_divide_nd_f32(op, r0, d0, r1, d1, a, b, outp, tp); break;
    }
    break;
  }
  case XK_UNARY: s = setup_unary(k->uop, op, (size_t)numel, inp[0], outp, tp); break;
  case XK_PAD: {
    /* NCHW axes 0, 2, 3, 1 in NHWC order. */
    static const int perm[4] = {0, 2, 3, 1};
    size_t dims[4], pre[4], post[4];
    for (int i = 0; i < 4; i++) {
      dims[i] = (size_t)xs->dims[perm[i]];
      pre[i] = k->pad_begin[perm[i]];
      post[i] = k->pad_end[perm[i]];
    }
    s = xnn_setup_constant_pad_nd_x32(op, 4, dims, pre, post, inp[0], outp, tp);
    break;
  }
  case XK_SOFTMAX: s = xnn_setup_softmax_nc_f32(op, (size_t)numel / k->sm_channels, inp[0], outp, tp); break;
  default: break;
  }
  const char *what = "setup";
  if (s == xnn_status_success) {
    what = "run";
    s = xnn_run_operator(op, tp);
  }
  if (mu) pthread_mutex_unlock(mu);
  if (s != xnn_status_success) return ri__xnn_fail(n, what, s, err);
  if (c->post[ni]) {
    /* The post activation runs in place over the whole output. */
    size_t on = (size_t)ri__shape_numel(&out->shape);
    s = setup_unary(post_op(k->post), c->post[ni], on, outp, outp, tp);
    if (s == xnn_status_success) s = xnn_run_operator(c->post[ni], tp);
    if (s != xnn_status_success) return ri__xnn_fail(n, "activation", s, err);
  }
  return RI_OK;
}
