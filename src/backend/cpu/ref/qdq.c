/* Reference kernels of QuantizeLinear and DequantizeLinear.
 *
 * QuantizeLinear: q = clamp(round(x / scale) + zero_point, qmin, qmax), rounding half to even (as ONNX
 * specifies); a NaN quotient gives zero_point. The quotient is a true division (not a multiplication by
 * 1 / scale, which differs at ties), as onnxruntime computes it.
 * DequantizeLinear: y = (x - zero_point) * scale, the difference taken exactly in integers.
 *
 * The tensor is a sequence of blocks of `inner` elements; block b uses the parameters of channel
 * b % channels (one channel, one block for per-tensor parameters). The flat element range is split across
 * the pool regardless of the blocking, so per-tensor nodes use every thread; each piece is walked as runs
 * of elements sharing one channel, and the runs of the common types (float32 <-> uint8 / int8) go through
 * branch-free loops the compiler vectorises. */
#include <math.h>

#include "backend/cpu/kernel.h"
#include "core/half.h"
#include "graph/op.h"
#include "graph/ops/axis_util.h"

#define QDQ_GRAIN ((int64_t)1 << 15)

typedef struct {
  void (*q_u8)(const float *restrict, uint8_t *restrict, int64_t, float, int32_t);
  void (*q_s8)(const float *restrict, int8_t *restrict, int64_t, float, int32_t);
  void (*dq_u8)(const uint8_t *restrict, float *restrict, int64_t, float, int32_t);
  void (*dq_s8)(const int8_t *restrict, float *restrict, int64_t, float, int32_t);
} qdq_runs; /* the runs of the common types */

typedef struct {
  const void *x;
  void *y;
  ri_dtype xt, yt;
  const ri__tensor *scale, *zp; /* zp NULL when absent */
  int64_t channels, inner;
  qdq_runs runs;
} qdq_job;

/* 1.5 * 2^23: adding and subtracting it rounds a float of magnitude <= 2^22 to an integer, ties to even,
 * exactly as nearbyintf() does in the default rounding mode. */
#define ROUND_MAGIC 12582912.0f

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

/* round(x / s) clamped to [lo, hi] (integers, the quantized range shifted by -zero_point); NaN gives 0.
 * Clamping before rounding is exact because the bounds are integers and rounding is monotonic. */
static inline float quant_step(float x, float s, float lo, float hi) {
  float v = x / s;
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  v = (v + ROUND_MAGIC) - ROUND_MAGIC;
  return v == v ? v : 0.f;
}

/* The four runs of the common types, compiled twice: for the baseline and, on x86, for AVX2 (wider vectors;
 * no FMA, so every operation still rounds on its own and the results are the same), picked once. */
#define QDQ_RUNS(SFX, ATTR)                                                                                  \
  ATTR static void q_f32_u8##SFX(const float *restrict x, uint8_t *restrict y, int64_t n, float s,           \
                                 int32_t zp) {                                                               \
    const float lo = (float)(0 - zp), hi = (float)(255 - zp);                                                \
    for (int64_t i = 0; i < n; i++)                                                                          \
      y[i] = (uint8_t)((int32_t)quant_step(x[i], s, lo, hi) + zp);                                           \
  }                                                                                                          \
  ATTR static void q_f32_s8##SFX(const float *restrict x, int8_t *restrict y, int64_t n, float s,            \
                                 int32_t zp) {                                                               \
    const float lo = (float)(-128 - zp), hi = (float)(127 - zp);                                             \
    for (int64_t i = 0; i < n; i++)                                                                          \
      y[i] = (int8_t)((int32_t)quant_step(x[i], s, lo, hi) + zp);                                            \
  }                                                                                                          \
  ATTR static void dq_u8_f32##SFX(const uint8_t *restrict x, float *restrict y, int64_t n, float s,          \
                                  int32_t zp) {                                                              \
    for (int64_t i = 0; i < n; i++)                                                                          \
      y[i] = (float)((int32_t)x[i] - zp) * s;                                                                \
  }                                                                                                          \
  ATTR static void dq_s8_f32##SFX(const int8_t *restrict x, float *restrict y, int64_t n, float s,           \
                                  int32_t zp) {                                                              \
    for (int64_t i = 0; i < n; i++)                                                                          \
      y[i] = (float)((int32_t)x[i] - zp) * s;                                                                \
  }

QDQ_RUNS(_base, )
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define QDQ_X86 1
QDQ_RUNS(_avx2, __attribute__((target("avx2"))))
#else
#define QDQ_X86 0
#endif
#undef QDQ_RUNS

static qdq_runs pick_runs(void) {
#if QDQ_X86
  if (__builtin_cpu_supports("avx2"))
    return (qdq_runs){q_f32_u8_avx2, q_f32_s8_avx2, dq_u8_f32_avx2, dq_s8_f32_avx2};
#endif
  return (qdq_runs){q_f32_u8_base, q_f32_s8_base, dq_u8_f32_base, dq_s8_f32_base};
}

/* Quantizes elements [base, base + n), all of channel c. */
static void quantize_run(const qdq_job *j, int64_t c, int64_t base, int64_t n) {
  float s = load_f(j->scale->dtype, j->scale->data, c);
  int32_t zp = j->zp ? (int32_t)ri__tensor_get_int(j->zp, c) : 0;
  if (j->xt == RI_DTYPE_FLOAT32 && j->yt == RI_DTYPE_UINT8) {
    j->runs.q_u8((const float *)j->x + base, (uint8_t *)j->y + base, n, s, zp);
    return;
  }
  if (j->xt == RI_DTYPE_FLOAT32 && j->yt == RI_DTYPE_INT8) {
    j->runs.q_s8((const float *)j->x + base, (int8_t *)j->y + base, n, s, zp);
    return;
  }
  float lo, hi;
  qrange(j->yt, &lo, &hi);
  lo -= (float)zp;
  hi -= (float)zp;
  for (int64_t i = base; i < base + n; i++)
    store_q(j->yt, j->y, i, (int32_t)quant_step(load_f(j->xt, j->x, i), s, lo, hi) + zp);
}

/* Dequantizes elements [base, base + n), all of channel c. */
static void dequantize_run(const qdq_job *j, int64_t c, int64_t base, int64_t n) {
  float s = load_f(j->scale->dtype, j->scale->data, c);
  int64_t zp = j->zp ? ri__tensor_get_int(j->zp, c) : 0;
  if (j->xt == RI_DTYPE_UINT8 && j->yt == RI_DTYPE_FLOAT32) {
    j->runs.dq_u8((const uint8_t *)j->x + base, (float *)j->y + base, n, s, (int32_t)zp);
    return;
  }
  if (j->xt == RI_DTYPE_INT8 && j->yt == RI_DTYPE_FLOAT32) {
    j->runs.dq_s8((const int8_t *)j->x + base, (float *)j->y + base, n, s, (int32_t)zp);
    return;
  }
  ri__tensor xt = {.dtype = j->xt, .data = (void *)j->x};
  for (int64_t i = base; i < base + n; i++)
    store_f(j->yt, j->y, i, (float)(ri__tensor_get_int(&xt, i) - zp) * s);
}

/* Elements [begin, end) walked as runs that stay inside one block (one channel). */
static void for_runs(const qdq_job *j, int64_t begin, int64_t end,
                     void (*run)(const qdq_job *, int64_t, int64_t, int64_t)) {
  int64_t i = begin;
  while (i < end) {
    int64_t blk = i / j->inner;
    int64_t stop = (blk + 1) * j->inner;
    if (stop > end) stop = end;
    run(j, blk % j->channels, i, stop - i);
    i = stop;
  }
}

static void quantize_range(void *arg, int64_t begin, int64_t end) { for_runs(arg, begin, end, quantize_run); }

static void dequantize_range(void *arg, int64_t begin, int64_t end) {
  for_runs(arg, begin, end, dequantize_run);
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
  j->runs = pick_runs();
  j->channels = 1;
  j->inner = numel > 0 ? numel : 1;
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
  if (numel > 0 && j.inner > 0) ri__pool_for(x->pool, numel, QDQ_GRAIN, quantize_range, &j);
  return RI_OK;
}

ri_status ri__ref_DequantizeLinear(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  qdq_job j;
  RI__TRY(setup(n, in, out, x, &j));
  int64_t numel = ri__shape_numel(&in[0].shape);
  if (numel > 0 && j.inner > 0) ri__pool_for(x->pool, numel, QDQ_GRAIN, dequantize_range, &j);
  return RI_OK;
}
