/* Reference Slice: resolves the plan again from the (host-resident) parameter inputs and gathers the
 * strided elements, one output row of the last axis at a time. The output must not alias the input. */
#include <string.h>

#include "backend/cpu/kernel.h"
#include "graph/ops/slice.h"

ri_status ri__ref_Slice(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  ri__slice_plan p;
  RI__TRY(ri__slice_plan_make(n, in, &p, x->err));
  if (!ri__shape_equal(&p.out, &out[0].shape) || out[0].dtype != in[0].dtype)
    return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s' (Slice): output shape differs from the plan",
                       n->name);
  int64_t numel = ri__shape_numel(&p.out);
  if (numel <= 0) return RI_OK;
  size_t es = ri_dtype_size(in[0].dtype);
  int rank = p.out.rank;
  if (rank == 0) {
    memcpy(out[0].data, in[0].data, es);
    return RI_OK;
  }
  int64_t stride[RI__MAX_RANK], s = 1, base = 0;
  for (int k = rank - 1; k >= 0; k--) {
    stride[k] = s * p.step[k]; /* input elements per output step along k */
    base += p.start[k] * s;
    s *= in[0].shape.dims[k];
  }
  int last = rank - 1;
  int64_t inner = p.out.dims[last], rows = numel / inner, ist = stride[last];
  const char *src = in[0].data;
  char *dst = out[0].data;
  for (int64_t r = 0; r < rows; r++) {
    int64_t off = base, rem = r;
    for (int k = last - 1; k >= 0; k--) {
      off += (rem % p.out.dims[k]) * stride[k];
      rem /= p.out.dims[k];
    }
    char *d = dst + (size_t)(r * inner) * es;
    if (ist == 1) {
      memcpy(d, src + (size_t)off * es, (size_t)inner * es);
    } else {
      for (int64_t i = 0; i < inner; i++)
        memcpy(d + (size_t)i * es, src + (size_t)(off + i * ist) * es, es);
    }
  }
  return RI_OK;
}
