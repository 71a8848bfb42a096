/* Gemm and MatMul (ONNX opsets 11..21), float32. Parameters and shape rules in gemm_params.h. */
#include <string.h>

#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/gemm_params.h"

/* A type ONNX allows for Gemm and MatMul (other floats, 32/64-bit integers) but runinfer does not implement
 * is unsupported; any other type is a malformed model. */
static ri_status type_status(ri_dtype dt) {
  switch (dt) {
  case RI_DTYPE_FLOAT16:
  case RI_DTYPE_FLOAT64:
  case RI_DTYPE_INT32:
  case RI_DTYPE_INT64:
  case RI_DTYPE_UINT32:
  case RI_DTYPE_UINT64: return RI_ERR_UNSUPPORTED;
  default: return RI_ERR_SHAPE;
  }
}

static ri_status gemm_check(const ri__graph *g, ri__node *n, ri__err *err) {
  ri__free(n->params);
  n->params = NULL;
  if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "Gemm node '%s': inputs A and B are required", n->name);
  ri__gemm_params p;
  memset(&p, 0, sizeof p);
  p.alpha = ri__node_attr_float(n, "alpha", 1.f);
  p.beta = ri__node_attr_float(n, "beta", 1.f);
  int64_t ta = ri__node_attr_int(n, "transA", 0), tb = ri__node_attr_int(n, "transB", 0);
  if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1))
    return ri__err_set(err, RI_ERR_INVALID_ARG,
                       "Gemm node '%s': transA = %lld, transB = %lld; expected 0 or 1", n->name,
                       (long long)ta, (long long)tb);
  p.trans_a = (int)ta;
  p.trans_b = (int)tb;
  p.has_c = n->n_inputs > 2 && n->inputs[2] >= 0;
  ri__gemm_params *pp = ri__malloc(sizeof *pp);
  if (!pp) return RI__OOM(err);
  *pp = p;
  n->params = pp;
  return RI_OK;
}

static ri_status gemm_infer(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  const ri__gemm_params *p = n->params;
  if (!p) return ri__err_set(err, RI_ERR_INTERNAL, "Gemm node '%s': check() has not run", n->name);
  const ri__tensor *a = &in[0], *b = &in[1];
  char b1[160], b2[160];
  if (a->dtype != RI_DTYPE_FLOAT32 || b->dtype != RI_DTYPE_FLOAT32)
    return ri__err_set(err, type_status(a->dtype == RI_DTYPE_FLOAT32 ? b->dtype : a->dtype),
                       "Gemm node '%s': A and B must be float32 (got %s and %s)", n->name,
                       ri_dtype_name(a->dtype), ri_dtype_name(b->dtype));
  if (a->shape.rank != 2 || b->shape.rank != 2)
    return ri__err_set(err, RI_ERR_SHAPE, "Gemm node '%s': A %s and B %s must be 2-D", n->name,
                       ri__shape_str(&a->shape, b1, sizeof b1), ri__shape_str(&b->shape, b2, sizeof b2));
  const int64_t m = a->shape.dims[p->trans_a ? 1 : 0], k = a->shape.dims[p->trans_a ? 0 : 1];
  const int64_t kb = b->shape.dims[p->trans_b ? 1 : 0], nn = b->shape.dims[p->trans_b ? 0 : 1];
  if (k != kb)
    return ri__err_set(
        err, RI_ERR_SHAPE,
        "Gemm node '%s': inner dimensions differ: A %s (transA = %d) has K = %lld, B %s (transB = %d) "
        "has K = %lld",
        n->name, ri__shape_str(&a->shape, b1, sizeof b1), p->trans_a, (long long)k,
        ri__shape_str(&b->shape, b2, sizeof b2), p->trans_b, (long long)kb);
  if (p->has_c) {
    const ri__tensor *c = &in[2];
    int ok = c->dtype == RI_DTYPE_FLOAT32 && c->shape.rank <= 2;
    const int64_t want[2] = {m, nn};
    for (int i = 0; ok && i < c->shape.rank; i++) {
      int64_t d = c->shape.dims[i], t = want[2 - c->shape.rank + i];
      ok = d == t || d == 1;
    }
    if (!ok)
      return ri__err_set(err, RI_ERR_SHAPE, "Gemm node '%s': C %s %s does not broadcast to [%lld,%lld]",
                         n->name, ri_dtype_name(c->dtype), ri__shape_str(&c->shape, b1, sizeof b1),
                         (long long)m, (long long)nn);
  }
  out[0].dtype = RI_DTYPE_FLOAT32;
  out[0].data = NULL;
  out[0].shape.rank = 2;
  out[0].shape.dims[0] = m;
  out[0].shape.dims[1] = nn;
  return RI_OK;
}

ri_status ri__matmul_dims_get(const ri__node *n, const ri__shape *a, const ri__shape *b, ri__matmul_dims *d,
                              ri__err *err) {
  char b1[160], b2[160];
  memset(d, 0, sizeof *d);
  const int ra = a->rank, rb = b->rank;
  if (ra < 1 || rb < 1)
    return ri__err_set(err, RI_ERR_SHAPE, "MatMul node '%s': operands must have rank >= 1, got A %s and B %s",
                       n->name, ri__shape_str(a, b1, sizeof b1), ri__shape_str(b, b2, sizeof b2));
  d->m = ra == 1 ? 1 : a->dims[ra - 2];
  d->k = a->dims[ra - 1];
  const int64_t kb = rb == 1 ? b->dims[0] : b->dims[rb - 2];
  d->n = rb == 1 ? 1 : b->dims[rb - 1];
  if (d->k != kb)
    return ri__err_set(err, RI_ERR_SHAPE, "MatMul node '%s': inner dimensions differ: A %s, B %s", n->name,
                       ri__shape_str(a, b1, sizeof b1), ri__shape_str(b, b2, sizeof b2));
  const int ba = ra > 2 ? ra - 2 : 0, bb = rb > 2 ? rb - 2 : 0;
  d->batch_rank = ba > bb ? ba : bb;
  int64_t sa = d->m * d->k, sb = d->k * d->n;
  d->batch = 1;
  for (int i = d->batch_rank - 1; i >= 0; i--) {
    const int ia = i - (d->batch_rank - ba), ib = i - (d->batch_rank - bb);
    const int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
    if (da != db && da != 1 && db != 1)
      return ri__err_set(err, RI_ERR_SHAPE,
                         "MatMul node '%s': batch dimensions of A %s and B %s do not broadcast", n->name,
                         ri__shape_str(a, b1, sizeof b1), ri__shape_str(b, b2, sizeof b2));
    d->batch_dims[i] = da == 1 ? db : da;
    d->a_stride[i] = da == 1 ? 0 : sa;
    d->b_stride[i] = db == 1 ? 0 : sb;
    sa *= da;
    sb *= db;
    d->batch *= d->batch_dims[i];
  }
  d->out.rank = 0;
  for (int i = 0; i < d->batch_rank; i++)
    d->out.dims[d->out.rank++] = d->batch_dims[i];
  if (ra > 1) d->out.dims[d->out.rank++] = d->m;
  if (rb > 1) d->out.dims[d->out.rank++] = d->n;
  return RI_OK;
}

static ri_status matmul_infer(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  const ri__tensor *a = &in[0], *b = &in[1];
  if (a->dtype != RI_DTYPE_FLOAT32 || b->dtype != RI_DTYPE_FLOAT32)
    return ri__err_set(err, type_status(a->dtype == RI_DTYPE_FLOAT32 ? b->dtype : a->dtype),
                       "MatMul node '%s': A and B must be float32 (got %s and %s)", n->name,
                       ri_dtype_name(a->dtype), ri_dtype_name(b->dtype));
  ri__matmul_dims d;
  RI__TRY(ri__matmul_dims_get(n, &a->shape, &b->shape, &d, err));
  out[0].dtype = RI_DTYPE_FLOAT32;
  out[0].data = NULL;
  out[0].shape = d.out;
  return RI_OK;
}

const ri__op_def ri__opdef_Gemm = {"Gemm", 2, 3, 1, 1, gemm_check, gemm_infer};
const ri__op_def ri__opdef_MatMul = {"MatMul", 2, 2, 1, 1, NULL, matmul_infer};
