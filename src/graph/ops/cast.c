/* Cast: converts between float32, float16, float64, bool and the 8..64-bit integer types. Strings,
 * bfloat16, float8 and 4-bit types are not supported. The `saturate` attribute only concerns float8 and is
 * ignored. Conversion rules are those of the reference kernel (src/backend/cpu/ref/cast.c). */
#include "graph/op.h"

static int castable(int64_t t) {
  return t > 0 && t <= RI_DTYPE_UINT64 && t != 8 && ri_dtype_size((ri_dtype)t) != 0;
}

static ri_status check_cast(const ri__graph *g, ri__node *n, ri__err *err) {
  const ri__attr *to = ri__node_attr(n, "to");
  if (!to || to->type != RI__ATTR_INT)
    return ri__err_set(err, RI_ERR_PARSE, "node '%s' (Cast): the integer attribute 'to' is missing", n->name);
  if (!castable(to->i))
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "node '%s' (Cast): target type %lld is not supported (strings, bfloat16, complex, "
                       "float8 and 4-bit types are not)",
                       n->name, (long long)to->i);
  return RI_OK;
}

static ri_status infer_cast(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  int64_t to = ri__node_attr_int(n, "to", 0);
  if (!castable(to))
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "node '%s' (Cast): target type %lld is not supported",
                       n->name, (long long)to);
  if (!castable(in[0].dtype))
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Cast): input dtype %s (%d) is not supported", n->name,
                       ri_dtype_name(in[0].dtype), (int)in[0].dtype);
  out[0].dtype = (ri_dtype)to;
  out[0].shape = in[0].shape;
  return RI_OK;
}

const ri__op_def ri__opdef_Cast = {"Cast", 1, 1, 1, 1, check_cast, infer_cast};
