/* Reference Tile: output coordinate c reads input coordinate c mod dim on every axis. Each output row of
 * the last axis is the input row repeated, built with memcpy. The output must not alias the input. */
#include <string.h>

#include "backend/cpu/kernel.h"

ri_status ri__ref_Tile(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const ri__shape *is = &in[0].shape, *os = &out[0].shape;
  int rank = is->rank;
  if (os->rank != rank || out[0].dtype != in[0].dtype)
    return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s' (Tile): output does not match the input", n->name);
  for (int k = 0; k < rank; k++)
    if (is->dims[k] == 0 ? os->dims[k] != 0 : os->dims[k] % is->dims[k] != 0)
      return ri__err_set(x->err, RI_ERR_INTERNAL,
                         "node '%s' (Tile): output dim %d is not a multiple of the input's", n->name, k);
  int64_t numel = ri__shape_numel(os);
  size_t es = ri_dtype_size(in[0].dtype);
  if (numel <= 0) return RI_OK;
  if (rank == 0) {
    memcpy(out[0].data, in[0].data, es);
    return RI_OK;
  }
  int last = rank - 1;
  int64_t in_strides[RI__MAX_RANK], s = 1;
  for (int k = last; k >= 0; k--) {
    in_strides[k] = s;
    s *= is->dims[k];
  }
  int64_t inner_in = is->dims[last], inner_out = os->dims[last], rows = numel / inner_out;
  size_t row_bytes = (size_t)inner_in * es;
  const char *src = in[0].data;
  char *dst = out[0].data;
  for (int64_t r = 0; r < rows; r++) {
    int64_t off = 0, rem = r;
    for (int k = last - 1; k >= 0; k--) {
      off += (rem % os->dims[k]) % is->dims[k] * in_strides[k];
      rem /= os->dims[k];
    }
    char *d = dst + (size_t)(r * inner_out) * es;
    for (int64_t c = 0; c < inner_out; c += inner_in)
      memcpy(d + (size_t)c * es, src + (size_t)off * es, row_bytes);
  }
  return RI_OK;
}
