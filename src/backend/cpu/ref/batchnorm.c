/* Reference BatchNormalization (inference), float32, channel on axis 1: y = x * s + t per channel with
 * s = scale / sqrt(var + epsilon) and t = B - mean * s. One task per (image, channel) plane. */
#include <math.h>

#include "backend/cpu/kernel.h"
#include "graph/ops/batchnorm_params.h"

typedef struct {
  const float *x, *scale, *bias, *mean, *var;
  float *y;
  float eps;
  int64_t c, plane;
} bn_job;

static void bn_planes(void *arg, int64_t begin, int64_t end) {
  const bn_job *j = arg;
  for (int64_t t = begin; t < end; t++) {
    const int64_t ch = t % j->c;
    const float s = j->scale[ch] / sqrtf(j->var[ch] + j->eps);
    const float off = j->bias[ch] - j->mean[ch] * s;
    const float *x = j->x + t * j->plane;
    float *y = j->y + t * j->plane;
    for (int64_t i = 0; i < j->plane; i++)
      y[i] = x[i] * s + off;
  }
}

ri_status ri__ref_BatchNormalization(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const ri__batchnorm_params *p = n->params;
  if (!p)
    return ri__err_set(x->err, RI_ERR_INTERNAL, "BatchNormalization node '%s': check() has not run", n->name);
  bn_job j = {in[0].data,  in[1].data, in[2].data,          in[3].data, in[4].data,
              out[0].data, p->epsilon, in[0].shape.dims[1], 1};
  for (int i = 2; i < in[0].shape.rank; i++)
    j.plane *= in[0].shape.dims[i];
  ri__pool_for(x->pool, in[0].shape.dims[0] * j.c, 4, bn_planes, &j);
  return RI_OK;
}
