/* Reference Softmax, float32: for each of the `outer * inner` slices of ri__softmax_geometry(), subtract the
 * maximum, exponentiate and divide by the sum (accumulated in double). Slices sharing an outer index are
 * processed BLOCK at a time so that memory is walked row by row; one task per (outer, block). */
#include <math.h>

#include "backend/cpu/kernel.h"
#include "graph/ops/softmax_params.h"

#define BLOCK 64

typedef struct {
  const float *x;
  float *y;
  int64_t len, inner, blocks;
} softmax_job;

static void softmax_blocks(void *arg, int64_t begin, int64_t end) {
  const softmax_job *j = arg;
  float mx[BLOCK];
  double sum[BLOCK];
  for (int64_t t = begin; t < end; t++) {
    const int64_t o = t / j->blocks, i0 = (t % j->blocks) * BLOCK;
    const int64_t nb = j->inner - i0 < BLOCK ? j->inner - i0 : BLOCK;
    const float *x = j->x + o * j->len * j->inner + i0;
    float *y = j->y + o * j->len * j->inner + i0;
    for (int64_t i = 0; i < nb; i++) {
      mx[i] = -INFINITY;
      sum[i] = 0.0;
    }
    for (int64_t k = 0; k < j->len; k++)
      for (int64_t i = 0; i < nb; i++)
        mx[i] = x[k * j->inner + i] > mx[i] ? x[k * j->inner + i] : mx[i];
    for (int64_t k = 0; k < j->len; k++) {
      for (int64_t i = 0; i < nb; i++) {
        const float e = expf(x[k * j->inner + i] - mx[i]);
        y[k * j->inner + i] = e;
        sum[i] += e;
      }
    }
    for (int64_t i = 0; i < nb; i++)
      mx[i] = (float)(1.0 / sum[i]);
    for (int64_t k = 0; k < j->len; k++)
      for (int64_t i = 0; i < nb; i++)
        y[k * j->inner + i] *= mx[i];
  }
}

ri_status ri__ref_Softmax(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const ri__softmax_params *p = n->params;
  if (!p) return ri__err_set(x->err, RI_ERR_INTERNAL, "Softmax node '%s': check() has not run", n->name);
  int64_t outer, len, inner;
  if (!ri__softmax_geometry(p, &in[0].shape, &outer, &len, &inner))
    return ri__err_set(x->err, RI_ERR_SHAPE, "Softmax node '%s': axis %lld is out of range", n->name,
                       (long long)p->axis);
  if (len == 0 || inner == 0) return RI_OK;
  softmax_job j = {in[0].data, out[0].data, len, inner, (inner + BLOCK - 1) / BLOCK};
  ri__pool_for(x->pool, outer * j.blocks, 1, softmax_blocks, &j);
  return RI_OK;
}
