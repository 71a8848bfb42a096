/* Reference Pad for any element type: rows of the last axis are assembled from one memcpy of the kept input
 * span plus the padded ends (the constant's bytes, or input elements chosen by the edge / reflect rule).
 * One task per output row. Rules in src/graph/ops/pad_params.h. */
#include <string.h>

#include "backend/cpu/kernel.h"
#include "graph/ops/pad_params.h"

typedef struct {
  const unsigned char *x;
  unsigned char *y;
  size_t es;
  ri__pad_mode mode;
  unsigned char value[8];
  int rank;
  int64_t out_dims[RI__MAX_RANK], in_stride[RI__MAX_RANK];
  int64_t lead[RI__MAX_RANK]; /* max(0, begin): output elements before the kept span */
  int64_t skip[RI__MAX_RANK]; /* max(0, -begin): input elements cropped at the start */
  int64_t kept[RI__MAX_RANK]; /* length of the kept span */
} pad_job;

/* Kept-span index read for output index o along axis a, or -1 for the constant. */
static int64_t source(const pad_job *j, int a, int64_t o) {
  int64_t q = o - j->lead[a];
  const int64_t len = j->kept[a];
  if (q >= 0 && q < len) return q;
  if (j->mode == RI__PAD_CONSTANT) return -1;
  if (j->mode == RI__PAD_EDGE) return q < 0 ? 0 : len - 1;
  /* Reflect without repeating the end elements; resolve() guarantees |overhang| <= len - 1. */
  if (q < 0) return -q;
  return 2 * (len - 1) - q;
}

static void pad_rows(void *arg, int64_t begin, int64_t end) {
  const pad_job *j = arg;
  const int last = j->rank - 1;
  const int64_t ow = j->out_dims[last];
  const size_t es = j->es;
  for (int64_t row = begin; row < end; row++) {
    unsigned char *y = j->y + (size_t)(row * ow) * es;
    int64_t off = 0, t = row;
    int constant = 0;
    for (int a = last - 1; a >= 0; a--) {
      const int64_t o = t % j->out_dims[a];
      t /= j->out_dims[a];
      const int64_t q = source(j, a, o);
      if (q < 0) {
        constant = 1;
        break;
      }
      off += (q + j->skip[a]) * j->in_stride[a];
    }
    if (constant) {
      for (int64_t i = 0; i < ow; i++)
        memcpy(y + (size_t)i * es, j->value, es);
      continue;
    }
    const unsigned char *x = j->x + (size_t)(off + j->skip[last]) * es;
    const int64_t lead = j->lead[last], len = j->kept[last];
    for (int64_t i = 0; i < ow; i++) {
      if (i == lead && len > 0) {
        memcpy(y + (size_t)i * es, x, (size_t)len * es);
        i += len - 1;
        continue;
      }
      const int64_t q = source(j, last, i);
      if (q < 0)
        memcpy(y + (size_t)i * es, j->value, es);
      else
        memcpy(y + (size_t)i * es, x + (size_t)q * es, es);
    }
  }
}

ri_status ri__ref_Pad(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const ri__pad_params *p = n->params;
  if (!p) return ri__err_set(x->err, RI_ERR_INTERNAL, "Pad node '%s': check() has not run", n->name);
  int64_t pb[RI__MAX_RANK], pe[RI__MAX_RANK];
  RI__TRY(ri__pad_resolve(n, p, in, n->n_inputs, pb, pe, x->err));
  pad_job j;
  memset(&j, 0, sizeof j);
  j.x = in[0].data;
  j.y = out[0].data;
  j.es = ri_dtype_size(in[0].dtype);
  j.mode = p->mode;
  j.rank = in[0].shape.rank;
  if (p->value_known)
    memcpy(j.value, p->value, sizeof j.value);
  else if (n->n_inputs > 2 && in[2].data && ri__shape_numel(&in[2].shape) == 1)
    memcpy(j.value, in[2].data, j.es);
  const int64_t total = ri__shape_numel(&out[0].shape);
  if (total <= 0) return RI_OK;
  if (j.rank == 0) {
    memcpy(j.y, j.x, j.es);
    return RI_OK;
  }
  int64_t stride = 1;
  for (int a = j.rank - 1; a >= 0; a--) {
    const int64_t d = in[0].shape.dims[a];
    j.out_dims[a] = out[0].shape.dims[a];
    j.in_stride[a] = stride;
    stride *= d;
    j.lead[a] = pb[a] > 0 ? pb[a] : 0;
    j.skip[a] = pb[a] < 0 ? -pb[a] : 0;
    j.kept[a] = d - j.skip[a] - (pe[a] < 0 ? -pe[a] : 0);
  }
  ri__pool_for(x->pool, total / j.out_dims[j.rank - 1], 64, pad_rows, &j);
  return RI_OK;
}
