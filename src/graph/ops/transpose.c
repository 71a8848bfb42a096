/* Transpose: output axis k is input axis perm[k]; perm defaults to the reversed axes. Any dtype. */
#include "graph/op.h"

static ri_status check_transpose(const ri__graph *g, ri__node *n, ri__err *err) {
  const ri__attr *a = ri__node_attr(n, "perm");
  if (!a) return RI_OK;
  if (a->type != RI__ATTR_INTS)
    return ri__err_set(err, RI_ERR_PARSE, "node '%s' (Transpose): 'perm' must be a list of integers",
                       n->name);
  if (a->n > RI__MAX_RANK)
    return ri__err_set(err, RI_ERR_LIMIT, "node '%s' (Transpose): perm has %d entries, more than rank %d",
                       n->name, a->n, RI__MAX_RANK);
  int seen[RI__MAX_RANK] = {0};
  for (int i = 0; i < a->n; i++) {
    int64_t p = a->ints[i];
    if (p < 0 || p >= a->n || seen[p])
      return ri__err_set(err, RI_ERR_PARSE,
                         "node '%s' (Transpose): perm is not a permutation of 0..%d (entry %d is %lld)",
                         n->name, a->n - 1, i, (long long)p);
    seen[p] = 1;
  }
  return RI_OK;
}

static ri_status infer_transpose(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  const int64_t *perm = NULL;
  int np = ri__node_attr_ints(n, "perm", &perm);
  int rank = in[0].shape.rank;
  if (ri_dtype_size(in[0].dtype) == 0)
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Transpose): input dtype %s is not supported", n->name,
                       ri_dtype_name(in[0].dtype));
  if (perm && np != rank)
    return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Transpose): perm has %d entries, the input has rank %d",
                       n->name, np, rank);
  out[0].dtype = in[0].dtype;
  out[0].shape.rank = rank;
  for (int k = 0; k < rank; k++) {
    int64_t p = perm ? perm[k] : rank - 1 - k;
    if (p < 0 || p >= rank)
      return ri__err_set(err, RI_ERR_SHAPE, "node '%s' (Transpose): perm[%d] = %lld is out of range", n->name,
                         k, (long long)p);
    out[0].shape.dims[k] = in[0].shape.dims[p];
  }
  return RI_OK;
}

const ri__op_def ri__opdef_Transpose = {"Transpose", 1, 1, 1, 1, check_transpose, infer_transpose};
