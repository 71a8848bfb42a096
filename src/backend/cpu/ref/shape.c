/* Reference kernels of Shape and Constant (Identity shares the copy of reshape.c). */
#include <string.h>

#include "backend/cpu/kernel.h"
#include "graph/ops/shape.h"

ri_status ri__ref_Shape(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  int s, e;
  ri__shape_op_range(n, in[0].shape.rank, &s, &e);
  if (out[0].dtype != RI_DTYPE_INT64 || ri__shape_numel(&out[0].shape) != e - s)
    return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s' (Shape): output buffer does not match", n->name);
  int64_t *y = out[0].data;
  for (int k = s; k < e; k++)
    y[k - s] = in[0].shape.dims[k];
  return RI_OK;
}

ri_status ri__ref_Constant(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const ri__const_params *p = n->params;
  if (!p || p->dtype != out[0].dtype || !ri__shape_equal(&p->shape, &out[0].shape))
    return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s' (Constant): output does not match the value",
                       n->name);
  if (p->nbytes) memcpy(out[0].data, p->data, p->nbytes);
  return RI_OK;
}
