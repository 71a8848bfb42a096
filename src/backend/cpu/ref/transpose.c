/* Reference Transpose: walks the output in order, one row of the last output axis at a time, reading the
 * input with the permuted strides. The output must not alias the input. */
#include <string.h>

#include "backend/cpu/kernel.h"

#define TRANSPOSE_GRAIN ((int64_t)1 << 14)

typedef struct {
  const char *x;
  char *y;
  size_t es;
  int rank;
  int64_t dims[RI__MAX_RANK];    /* output dims */
  int64_t strides[RI__MAX_RANK]; /* input element stride per output axis */
} transpose_job;

#define ROW(T)                                                                                               \
  do {                                                                                                       \
    const T *src = (const T *)(const void *)j->x + off;                                                      \
    T *dst = (T *)(void *)j->y + r * inner;                                                                  \
    for (int64_t i = 0; i < inner; i++)                                                                      \
      dst[i] = src[i * st];                                                                                  \
  } while (0)

static void transpose_rows(void *arg, int64_t begin, int64_t end) {
  const transpose_job *j = arg;
  int last = j->rank - 1;
  int64_t inner = j->dims[last], st = j->strides[last];
  for (int64_t r = begin; r < end; r++) {
    int64_t off = 0, rem = r;
    for (int k = last - 1; k >= 0; k--) {
      off += (rem % j->dims[k]) * j->strides[k];
      rem /= j->dims[k];
    }
    switch (j->es) {
    case 1: ROW(uint8_t); break;
    case 2: ROW(uint16_t); break;
    case 4: ROW(uint32_t); break;
    case 8: ROW(uint64_t); break;
    default:
      for (int64_t i = 0; i < inner; i++)
        memcpy(j->y + (size_t)(r * inner + i) * j->es, j->x + (size_t)(off + i * st) * j->es, j->es);
    }
  }
}

ri_status ri__ref_Transpose(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const ri__shape *is = &in[0].shape;
  const int64_t *perm = NULL;
  int np = ri__node_attr_ints(n, "perm", &perm);
  int rank = is->rank;
  if ((perm && np != rank) || out[0].shape.rank != rank || in[0].dtype != out[0].dtype)
    return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s' (Transpose): output does not match perm", n->name);
  int64_t numel = ri__shape_numel(is);
  size_t es = ri_dtype_size(in[0].dtype);
  if (numel <= 0) return RI_OK;
  if (rank == 0) {
    memcpy(out[0].data, in[0].data, es);
    return RI_OK;
  }
  int64_t in_strides[RI__MAX_RANK];
  int64_t s = 1;
  for (int k = rank - 1; k >= 0; k--) {
    in_strides[k] = s;
    s *= is->dims[k];
  }
  transpose_job j = {.x = in[0].data, .y = out[0].data, .es = es, .rank = rank};
  for (int k = 0; k < rank; k++) {
    int p = perm ? (int)perm[k] : rank - 1 - k;
    if (p < 0 || p >= rank || out[0].shape.dims[k] != is->dims[p])
      return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s' (Transpose): output shape does not match perm",
                         n->name);
    j.dims[k] = is->dims[p];
    j.strides[k] = in_strides[p];
  }
  int64_t rows = numel / j.dims[rank - 1];
  int64_t grain = TRANSPOSE_GRAIN / j.dims[rank - 1];
  ri__pool_for(x->pool, rows, grain > 0 ? grain : 1, transpose_rows, &j);
  return RI_OK;
}
