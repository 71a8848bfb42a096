/* Reference kernels of the ops whose output holds the input's bytes unchanged (Reshape, Flatten, Squeeze,
 * Unsqueeze, Identity): they copy the bytes unless the engine already made the output alias the input. */
#include <string.h>

#include "backend/cpu/kernel.h"
#include "graph/op.h"

/* Copies the dense contents of in[0] to out[0]; both must have the same dtype and element count. */
static ri_status copy_same_size(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  int64_t a = ri__shape_numel(&in[0].shape), b = ri__shape_numel(&out[0].shape);
  if (a < 0 || a != b || in[0].dtype != out[0].dtype)
    return ri__err_set(x->err, RI_ERR_INTERNAL,
                       "node '%s' (%s): output has %lld elements of %s, input %lld of %s", n->name,
                       ri__op_name(n->op), (long long)b, ri_dtype_name(out[0].dtype), (long long)a,
                       ri_dtype_name(in[0].dtype));
  size_t bytes = (size_t)a * ri_dtype_size(in[0].dtype);
  if (bytes && out[0].data != in[0].data) memmove(out[0].data, in[0].data, bytes);
  return RI_OK;
}

ri_status ri__ref_Reshape(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return copy_same_size(n, in, out, x);
}

ri_status ri__ref_Flatten(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return copy_same_size(n, in, out, x);
}

ri_status ri__ref_Squeeze(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return copy_same_size(n, in, out, x);
}

ri_status ri__ref_Unsqueeze(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return copy_same_size(n, in, out, x);
}

ri_status ri__ref_Identity(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return copy_same_size(n, in, out, x);
}
