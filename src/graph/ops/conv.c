/* Conv (ONNX opsets 11..21): 1-D and 2-D, grouped and depthwise, explicit or automatic pads, strides,
 * dilations, optional bias. Parameters in conv_params.h. */
#include <string.h>

#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/conv_params.h"

/* A type ONNX allows for this op's floating-point inputs but runinfer does not implement is unsupported;
 * any other type is a malformed model. */
static ri_status type_status(ri_dtype dt) {
  return dt == RI_DTYPE_FLOAT16 || dt == RI_DTYPE_FLOAT64 ? RI_ERR_UNSUPPORTED : RI_ERR_SHAPE;
}

static ri_status conv_check(const ri__graph *g, ri__node *n, ri__err *err) {
  ri__free(n->params);
  n->params = NULL;
  if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "Conv node '%s': inputs X and W are required", n->name);

  ri__conv_params p;
  memset(&p, 0, sizeof p);
  const ri__value *wv = &g->values[n->inputs[1]];
  int spatial = 0;
  if (wv->shape.rank > 0) {
    spatial = wv->shape.rank - 2;
  } else {
    const ri__attr *ks = ri__node_attr(n, "kernel_shape");
    if (ks && ks->type == RI__ATTR_INTS) spatial = ks->n;
  }
  if (spatial < 1)
    return ri__err_set(
        err, RI_ERR_UNSUPPORTED,
        "Conv node '%s': cannot tell the number of spatial dimensions (weight rank %d, no kernel_shape)",
        n->name, wv->shape.rank);
  if (spatial > 2)
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "Conv node '%s': %d-D convolution (only 1-D and 2-D are supported)", n->name, spatial);
  int64_t group = ri__node_attr_int(n, "group", 1);
  if (group < 1 || group > ((int64_t)1 << 31))
    return ri__err_set(err, RI_ERR_INVALID_ARG, "Conv node '%s': group = %lld must be >= 1", n->name,
                       (long long)group);
  p.group = group;
  /* The kernel size comes from the weight when its shape is known here (always for a constant weight),
   * else from kernel_shape; infer() checks the weight against it. */
  int known = wv->shape.rank == spatial + 2;
  for (int i = 0; known && i < spatial + 2; i++) {
    if (wv->shape.dims[i] < 1 && wv->kind == RI__VAL_CONST)
      return ri__err_set(err, RI_ERR_SHAPE, "Conv node '%s': weight dimension %d is %lld", n->name, i,
                         (long long)wv->shape.dims[i]);
    known = wv->shape.dims[i] >= 1;
  }
  if (!known && !ri__node_attr(n, "kernel_shape"))
    return ri__err_set(
        err, RI_ERR_UNSUPPORTED,
        "Conv node '%s': the weight's shape is not known before shape inference and there is no "
        "kernel_shape attribute",
        n->name);
  if (known) {
    for (int i = 0; i < spatial; i++)
      p.win.kernel[2 - spatial + i] = wv->shape.dims[2 + i];
    if (wv->kind == RI__VAL_CONST) {
      int64_t m = wv->shape.dims[0], cg = wv->shape.dims[1];
      if (m < 1 || cg < 1 || m % group != 0)
        return ri__err_set(
            err, RI_ERR_SHAPE,
            "Conv node '%s': weight has %lld output and %lld input channels; the output channels must "
            "be a positive multiple of group = %lld",
            n->name, (long long)m, (long long)cg, (long long)group);
      p.c_out = m;
      p.c_in = cg * group;
    }
  }
  RI__TRY(ri__window_parse(n, spatial, 0, 0, &p.win, err));
  p.has_bias = n->n_inputs > 2 && n->inputs[2] >= 0;

  ri__conv_params *pp = ri__malloc(sizeof *pp);
  if (!pp) return RI__OOM(err);
  *pp = p;
  n->params = pp;
  return RI_OK;
}

static ri_status conv_infer(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  const ri__conv_params *p = n->params;
  if (!p) return ri__err_set(err, RI_ERR_INTERNAL, "Conv node '%s': check() has not run", n->name);
  const int rank = p->win.spatial_rank + 2;
  const ri__tensor *x = &in[0], *w = &in[1];
  char b1[160], b2[160];
  if (x->dtype != RI_DTYPE_FLOAT32 || w->dtype != RI_DTYPE_FLOAT32)
    return ri__err_set(err, type_status(x->dtype == RI_DTYPE_FLOAT32 ? w->dtype : x->dtype),
                       "Conv node '%s': X and W must be float32 (got %s and %s)", n->name,
                       ri_dtype_name(x->dtype), ri_dtype_name(w->dtype));
  if (x->shape.rank != rank || w->shape.rank != rank)
    return ri__err_set(err, RI_ERR_SHAPE, "Conv node '%s': X %s and W %s must both have rank %d", n->name,
                       ri__shape_str(&x->shape, b1, sizeof b1), ri__shape_str(&w->shape, b2, sizeof b2),
                       rank);
  const int64_t c = x->shape.dims[1], m = w->shape.dims[0], cg = w->shape.dims[1];
  if (m < 1 || m % p->group != 0 || cg < 1 || cg * p->group != c)
    return ri__err_set(
        err, RI_ERR_SHAPE,
        "Conv node '%s': X %s has %lld channels but W %s with group = %lld expects %lld input channels "
        "and a multiple of %lld output channels",
        n->name, ri__shape_str(&x->shape, b1, sizeof b1), (long long)c,
        ri__shape_str(&w->shape, b2, sizeof b2), (long long)p->group, (long long)(cg * p->group),
        (long long)p->group);
  for (int i = 0; i < p->win.spatial_rank; i++) {
    if (w->shape.dims[2 + i] != p->win.kernel[2 - p->win.spatial_rank + i])
      return ri__err_set(err, RI_ERR_SHAPE, "Conv node '%s': W %s does not match kernel_shape", n->name,
                         ri__shape_str(&w->shape, b2, sizeof b2));
  }
  if (p->has_bias) {
    const ri__tensor *b = &in[2];
    if (b->dtype != RI_DTYPE_FLOAT32 || b->shape.rank != 1 || b->shape.dims[0] != m)
      return ri__err_set(err, RI_ERR_SHAPE, "Conv node '%s': bias must be float32 [%lld], got %s %s", n->name,
                         (long long)m, ri_dtype_name(b->dtype), ri__shape_str(&b->shape, b1, sizeof b1));
  }
  int64_t ih, iw, oh, ow;
  ri__window_hw(&p->win, &x->shape, &ih, &iw);
  ri__conv_out_size(p, ih, iw, &oh, &ow);
  if (oh < 1 || ow < 1)
    return ri__err_set(err, RI_ERR_SHAPE,
                       "Conv node '%s': the dilated kernel does not fit input %s (output %lldx%lld)", n->name,
                       ri__shape_str(&x->shape, b1, sizeof b1), (long long)oh, (long long)ow);
  out[0].dtype = RI_DTYPE_FLOAT32;
  out[0].data = NULL;
  out[0].shape.rank = rank;
  out[0].shape.dims[0] = x->shape.dims[0];
  out[0].shape.dims[1] = m;
  if (rank == 4) {
    out[0].shape.dims[2] = oh;
    out[0].shape.dims[3] = ow;
  } else {
    out[0].shape.dims[2] = ow;
  }
  return RI_OK;
}

const ri__op_def ri__opdef_Conv = {"Conv", 2, 3, 1, 1, conv_check, conv_infer};
