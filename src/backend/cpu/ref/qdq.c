/* Reference kernels of QuantizeLinear and DequantizeLinear.
 *
 * QuantizeLinear: q = clamp(nearbyint(x / scale) + zero_point, qmin, qmax), rounding half to even under
 * the default rounding mode (as ONNX specifies); a NaN quotient gives zero_point.
 * DequantizeLinear: y = (x - zero_point) * scale, the difference taken exactly in integers.
 * The tensor is walked as (outer, channel, inner) blocks where `channel` is the quantization axis (one
 * channel for per-tensor parameters). */
#include <math.h>

#include "backend/cpu/kernel.h"
#include "core/half.h"
#include "graph/op.h"
#include "graph/ops/axis_util.h"

#define QDQ_GRAIN ((int64_t)1 << 14)

typedef struct {
  const void *x;
  void *y;
  ri_dtype xt, yt;
  const ri__tensor *scale, *zp; /* zp NULL when absent */
  int64_t channels, inner;
} qdq_job;

static float load_f(ri_dtype t, const void *p, int64_t i) {
  if (t == RI_DTYPE_FLOAT16) return ri__half_to_float(((const uint16_t *)p)[i]);
  return ((const float *)p)[i];
}

static void store_f(ri_dtype t, void *p, int64_t i, float v) {
  if (t == RI_DTYPE_FLOAT16)
    ((uint16_t *)p)[i] = ri__float_to_half(v);
  else
    ((float *)p)[i] = v;
}

static void qrange(ri_dtype t, float *lo, float *hi) {
  switch (t) {
  case RI_DTYPE_INT8: *lo = -128.f, *hi = 127.f; return;
  case RI_DTYPE_UINT16: *lo = 0.f, *hi = 65535.f; return;
  case RI_DTYPE_INT16: *lo = -32768.f, *hi = 32767.f; return;
  default: *lo = 0.f, *hi = 255.f; return;
  }
}

static void store_q(ri_dtype t, void *p, int64_t i, int32_t v) {
  switch (t) {
  case RI_DTYPE_INT8: ((int8_t *)p)[i] = (int8_t)v; return;
  case RI_DTYPE_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; return;
  case RI_DTYPE_INT16: ((int16_t *)p)[i] = (int16_t)v; return;
  default: ((uint8_t *)p)[i] = (uint8_t)v; return;
  }
}

/* Blocks [begin, end) of `inner` elements; block b belongs to channel b % channels. */
static void quantize_blocks(void *arg, int64_t begin, int64_t end) {
  const qdq_job *j = arg;
  float lo, hi;
  qrange(j->yt, &lo, &hi);
  for (int64_t blk = begin; blk < end; blk++) {
    int64_t c = blk % j->channels;
    float s = load_f(j->scale->dtype, j->scale->data, c);
    float zp = j->zp ? (float)ri__tensor_get_int(j->zp, c) : 0.f;
    int64_t base = blk * j->inner;
    if (j->xt == RI_DTYPE_FLOAT32 && j->yt == RI_DTYPE_UINT8) {
      const float *x = (const float *)j->x + base;
      uint8_t *y = (uint8_t *)j->y + base;
      for (int64_t i = 0; i < j->inner; i++) {
        float v = nearbyintf(x[i] / s) + zp;
        v = v < lo ? lo : (v > hi ? hi : v);
        y[i] = v == v ? (uint8_t)v : (uint8_t)zp;
      }
      continue;
    }
    for (int64_t i = 0; i < j->inner; i++) {
      float v = nearbyintf(load_f(j->xt, j->x, base + i) / s) + zp;
      v = v < lo ? lo : (v > hi ? hi : v);
      store_q(j->yt, j->y, base + i, v == v ? (int32_t)v : (int32_t)zp);
    }
  }
}

static void dequantize_blocks(void *arg, int64_t begin, int64_t end) {
  const qdq_job *j = arg;
  ri__tensor xt = {.dtype = j->xt, .data = (void *)j->x};
  for (int64_t blk = begin; blk < end; blk++) {
    int64_t c = blk % j->channels;
    float s = load_f(j->scale->dtype, j->scale->data, c);
    int64_t zp = j->zp ? ri__tensor_get_int(j->zp, c) : 0;
    int64_t base = blk * j->inner;
    if (j->xt == RI_DTYPE_UINT8 && j->yt == RI_DTYPE_FLOAT32) {
      const uint8_t *x = (const uint8_t *)j->x + base;
      float *y = (float *)j->y + base;
      int32_t z = (int32_t)zp;
      for (int64_t i = 0; i < j->inner; i++)
        y[i] = (float)((int32_t)x[i] - z) * s;
      continue;
    }
    for (int64_t i = 0; i < j->inner; i++)
      store_f(j->yt, j->y, base + i, (float)(ri__tensor_get_int(&xt, base + i) - zp) * s);
  }
}

/* Fills the blocking of the job from the node's axis and the scale's size (validated by infer). */
static ri_status setup(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x, qdq_job *j) {
  int64_t numel = ri__shape_numel(&in[0].shape), ns = ri__shape_numel(&in[1].shape);
  j->x = in[0].data;
  j->y = out[0].data;
  j->xt = in[0].dtype;
  j->yt = out[0].dtype;
  j->scale = &in[1];
  j->zp = n->n_inputs > 2 && in[2].dtype != RI_DTYPE_UNDEFINED ? &in[2] : NULL;
  j->channels = 1;
  j->inner = numel;
  if (ns != 1) {
    int axis;
    if (!ri__norm_axis(ri__node_attr_int(n, "axis", 1), in[0].shape.rank, &axis) ||
        in[0].shape.dims[axis] != ns)
      return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s' (%s): scale does not match the input axis",
                         n->name, ri__op_name(n->op));
    j->channels = ns;
    j->inner = 1;
    for (int k = axis + 1; k < in[0].shape.rank; k++)
      j->inner *= in[0].shape.dims[k];
  }
  if (j->zp && ri__shape_numel(&j->zp->shape) != ns)
    return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s' (%s): zero point does not match the scale",
                       n->name, ri__op_name(n->op));
  return RI_OK;
}

ri_status ri__ref_QuantizeLinear(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  qdq_job j;
  RI__TRY(setup(n, in, out, x, &j));
  int64_t numel = ri__shape_numel(&in[0].shape);
  if (numel > 0) {
    int64_t grain = QDQ_GRAIN / j.inner;
    ri__pool_for(x->pool, numel / j.inner, grain > 0 ? grain : 1, quantize_blocks, &j);
  }
  return RI_OK;
}

ri_status ri__ref_DequantizeLinear(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  qdq_job j;
  RI__TRY(setup(n, in, out, x, &j));
  int64_t numel = ri__shape_numel(&in[0].shape);
  if (numel > 0) {
    int64_t grain = QDQ_GRAIN / j.inner;
    ri__pool_for(x->pool, numel / j.inner, grain > 0 ? grain : 1, dequantize_blocks, &j);
  }
  return RI_OK;
}
