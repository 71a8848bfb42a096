/* MaxPool, AveragePool and GlobalAveragePool (ONNX opsets 11..21). Parameters in pool_params.h. */
#include <string.h>

#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/pool_params.h"

void ri__pool_out_size(const ri__pool_params *p, int64_t in_h, int64_t in_w, int64_t *out_h, int64_t *out_w,
                       int64_t pads[4]) {
  int64_t pd[4];
  ri__window_resolve_pads(&p->win, in_h, in_w, pd);
  *out_h = ri__window_out_dim(&p->win, 0, in_h, pd[0], pd[2]);
  *out_w = ri__window_out_dim(&p->win, 1, in_w, pd[1], pd[3]);
  if (pads) memcpy(pads, pd, sizeof pd);
}

/* A type ONNX allows for the pooling ops but runinfer does not implement is unsupported; any other type is
 * a malformed model. */
static ri_status type_status(ri_dtype dt) {
  return dt == RI_DTYPE_FLOAT16 || dt == RI_DTYPE_FLOAT64 ? RI_ERR_UNSUPPORTED : RI_ERR_SHAPE;
}

static ri_status pool_check(const ri__graph *g, ri__node *n, ri__err *err) {
  const char *op = ri__op_name(n->op);
  ri__free(n->params);
  n->params = NULL;
  const ri__attr *ks = ri__node_attr(n, "kernel_shape");
  if (!ks || ks->type != RI__ATTR_INTS)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "%s node '%s': attribute 'kernel_shape' (ints) is required",
                       op, n->name);
  ri__pool_params p;
  memset(&p, 0, sizeof p);
  RI__TRY(ri__window_parse(n, ks->n, 1, 1, &p.win, err));
  if (n->op == RI__OP_MaxPool) {
    int64_t so = ri__node_attr_int(n, "storage_order", 0);
    if (so != 0)
      return ri__err_set(err, RI_ERR_UNSUPPORTED,
                         "MaxPool node '%s': storage_order = %lld (only 0 is supported)", n->name,
                         (long long)so);
    if (n->n_outputs > 1 && n->outputs[1] >= 0)
      return ri__err_set(err, RI_ERR_UNSUPPORTED, "MaxPool node '%s': the Indices output is not supported",
                         n->name);
  } else {
    int64_t cip = ri__node_attr_int(n, "count_include_pad", 0);
    if (cip != 0 && cip != 1)
      return ri__err_set(err, RI_ERR_INVALID_ARG,
                         "AveragePool node '%s': count_include_pad = %lld, expected 0 or 1", n->name,
                         (long long)cip);
    p.count_include_pad = (int)cip;
    if (g->opset < 19 && (p.win.dilation[0] != 1 || p.win.dilation[1] != 1))
      return ri__err_set(err, RI_ERR_INVALID_ARG,
                         "AveragePool node '%s': attribute 'dilations' needs opset 19 (model opset %lld)",
                         n->name, (long long)g->opset);
  }
  ri__pool_params *pp = ri__malloc(sizeof *pp);
  if (!pp) return RI__OOM(err);
  *pp = p;
  n->params = pp;
  return RI_OK;
}

static ri_status pool_infer(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  const char *op = ri__op_name(n->op);
  const ri__pool_params *p = n->params;
  if (!p) return ri__err_set(err, RI_ERR_INTERNAL, "%s node '%s': check() has not run", op, n->name);
  const ri__tensor *x = &in[0];
  const int rank = p->win.spatial_rank + 2;
  char b[160];
  const int is_max = n->op == RI__OP_MaxPool;
  if (x->dtype != RI_DTYPE_FLOAT32 && !(is_max && (x->dtype == RI_DTYPE_UINT8 || x->dtype == RI_DTYPE_INT8)))
    return ri__err_set(err, type_status(x->dtype), "%s node '%s': X must be float32%s, got %s", op, n->name,
                       is_max ? ", uint8 or int8" : "", ri_dtype_name(x->dtype));
  if (x->shape.rank != rank)
    return ri__err_set(err, RI_ERR_SHAPE, "%s node '%s': X %s must have rank %d for a %d-D kernel_shape", op,
                       n->name, ri__shape_str(&x->shape, b, sizeof b), rank, p->win.spatial_rank);
  int64_t ih, iw, oh, ow;
  ri__window_hw(&p->win, &x->shape, &ih, &iw);
  ri__pool_out_size(p, ih, iw, &oh, &ow, NULL);
  if (oh < 1 || ow < 1)
    return ri__err_set(err, RI_ERR_SHAPE, "%s node '%s': the window does not fit input %s (output %lldx%lld)",
                       op, n->name, ri__shape_str(&x->shape, b, sizeof b), (long long)oh, (long long)ow);
  out[0].dtype = x->dtype;
  out[0].data = NULL;
  out[0].shape = x->shape;
  if (rank == 4) {
    out[0].shape.dims[2] = oh;
    out[0].shape.dims[3] = ow;
  } else {
    out[0].shape.dims[2] = ow;
  }
  return RI_OK;
}

static ri_status gap_infer(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  const ri__tensor *x = &in[0];
  char b[160];
  if (x->dtype != RI_DTYPE_FLOAT32 || x->shape.rank < 3)
    return ri__err_set(err, x->dtype != RI_DTYPE_FLOAT32 ? type_status(x->dtype) : RI_ERR_SHAPE,
                       "GlobalAveragePool node '%s': X must be float32 of rank >= 3, got %s %s", n->name,
                       ri_dtype_name(x->dtype), ri__shape_str(&x->shape, b, sizeof b));
  for (int i = 2; i < x->shape.rank; i++) {
    if (x->shape.dims[i] < 1)
      return ri__err_set(err, RI_ERR_SHAPE, "GlobalAveragePool node '%s': empty spatial axis in X %s",
                         n->name, ri__shape_str(&x->shape, b, sizeof b));
  }
  out[0].dtype = RI_DTYPE_FLOAT32;
  out[0].data = NULL;
  out[0].shape = x->shape;
  for (int i = 2; i < x->shape.rank; i++)
    out[0].shape.dims[i] = 1;
  return RI_OK;
}

const ri__op_def ri__opdef_MaxPool = {"MaxPool", 1, 1, 1, 2, pool_check, pool_infer};
const ri__op_def ri__opdef_AveragePool = {"AveragePool", 1, 1, 1, 1, pool_check, pool_infer};
const ri__op_def ri__opdef_GlobalAveragePool = {"GlobalAveragePool", 1, 1, 1, 1, NULL, gap_infer};
