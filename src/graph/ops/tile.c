/* Tile: output dim k = input dim k * repeats[k]; repeats is a 1-D int64 input of length rank that must
 * be known on the host. Any dtype. */
#include "graph/op.h"
#include "graph/ops/axis_util.h"

static ri_status infer_tile(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  const ri__tensor *r = &in[1];
  int rank = in[0].shape.rank;
  if (ri_dtype_size(in[0].dtype) == 0)
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Tile): input dtype %s is not supported", n->name,
                       ri_dtype_name(in[0].dtype));
  if (!ri__is_int_list(r, 0) || r->shape.dims[0] != rank)
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Tile): repeats must be a 1-D int64 tensor of length %d",
                       n->name, rank);
  if (!r->data)
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "repeats input of Tile '%s' is computed at run time from tensor data", n->name);
  ri__shape s = in[0].shape;
  for (int k = 0; k < rank; k++) {
    int64_t rep = ri__tensor_get_int(r, k);
    if (rep < 0)
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Tile): repeats[%d] = %lld is negative", n->name, k,
                         (long long)rep);
    if (rep && s.dims[k] > RI__MAX_TENSOR_ELEMS / rep)
      return ri__err_set(err, RI_ERR_LIMIT, "node '%s' (Tile): axis %d grows beyond the tensor size limit",
                         n->name, k);
    s.dims[k] *= rep;
  }
  out[0].dtype = in[0].dtype;
  out[0].shape = s;
  return RI_OK;
}

const ri__op_def ri__opdef_Tile = {"Tile", 2, 2, 1, 1, NULL, infer_tile};
