/* Reference kernels of the unary elementwise ops. They read and write whole dense tensors element by
 * element, so the output may alias the input. Large tensors are split across the pool. */
#include <math.h>
#include <string.h>

#include "backend/cpu/kernel.h"
#include "graph/op.h"

#define UNARY_GRAIN ((int64_t)1 << 14)

typedef enum { U_ACT, U_EXP, U_INT_RELU, U_INT_CLIP } unary_mode;

typedef struct {
  unary_mode mode;
  ri_dtype dtype;
  const void *x;
  void *y;
  ri__act act; /* U_ACT: the function, with parameters a and b */
  float a, b;
  const void *lo, *hi; /* U_INT_CLIP: one element each of dtype, or NULL when absent */
} unary_job;

/* Each case spells the activation as a constant so that the compiler specializes the loop body. */
#define ACT_LOOP(ACT)                                                                                        \
  for (int64_t i = begin; i < end; i++)                                                                      \
    y[i] = ri__act_apply(ACT, j->a, j->b, x[i]);                                                             \
  break

static void run_f32(const unary_job *j, int64_t begin, int64_t end) {
  const float *x = j->x;
  float *y = j->y;
  if (j->mode == U_EXP) {
    for (int64_t i = begin; i < end; i++)
      y[i] = expf(x[i]);
    return;
  }
  switch (j->act) {
  case RI__ACT_NONE: ACT_LOOP(RI__ACT_NONE);
  case RI__ACT_RELU: ACT_LOOP(RI__ACT_RELU);
  case RI__ACT_CLIP: ACT_LOOP(RI__ACT_CLIP);
  case RI__ACT_LEAKY_RELU: ACT_LOOP(RI__ACT_LEAKY_RELU);
  case RI__ACT_SIGMOID: ACT_LOOP(RI__ACT_SIGMOID);
  case RI__ACT_HARD_SIGMOID: ACT_LOOP(RI__ACT_HARD_SIGMOID);
  case RI__ACT_HARD_SWISH: ACT_LOOP(RI__ACT_HARD_SWISH);
  }
}

/* Relu and Clip on the other types: y = min(max(x, lo), hi); a NaN input stays NaN. */
#define GENERIC_LOOP(T)                                                                                      \
  do {                                                                                                       \
    const T *x = j->x;                                                                                       \
    T *y = j->y;                                                                                             \
    T lo = 0, hi = 0;                                                                                        \
    int has_lo = 1, has_hi = 0;                                                                              \
    if (j->mode == U_INT_CLIP) {                                                                             \
      has_lo = j->lo != NULL;                                                                                \
      has_hi = j->hi != NULL;                                                                                \
      if (has_lo) memcpy(&lo, j->lo, sizeof(T));                                                             \
      if (has_hi) memcpy(&hi, j->hi, sizeof(T));                                                             \
    }                                                                                                        \
    for (int64_t i = begin; i < end; i++) {                                                                  \
      T v = x[i];                                                                                            \
      if (has_lo && v < lo) v = lo;                                                                          \
      if (has_hi && v > hi) v = hi;                                                                          \
      y[i] = v;                                                                                              \
    }                                                                                                        \
  } while (0)

static void run_chunk(void *arg, int64_t begin, int64_t end) {
  const unary_job *j = arg;
  switch (j->dtype) {
  case RI_DTYPE_FLOAT32:
    if (j->mode == U_ACT || j->mode == U_EXP) {
      run_f32(j, begin, end);
      return;
    }
    GENERIC_LOOP(float);
    return;
  case RI_DTYPE_FLOAT64: GENERIC_LOOP(double); return;
  case RI_DTYPE_INT8: GENERIC_LOOP(int8_t); return;
  case RI_DTYPE_UINT8: GENERIC_LOOP(uint8_t); return;
  case RI_DTYPE_INT16: GENERIC_LOOP(int16_t); return;
  case RI_DTYPE_UINT16: GENERIC_LOOP(uint16_t); return;
  case RI_DTYPE_INT32: GENERIC_LOOP(int32_t); return;
  case RI_DTYPE_UINT32: GENERIC_LOOP(uint32_t); return;
  case RI_DTYPE_INT64: GENERIC_LOOP(int64_t); return;
  case RI_DTYPE_UINT64: GENERIC_LOOP(uint64_t); return;
  default: return;
  }
}

static ri_status run(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x, unary_job *j) {
  int64_t count = ri__shape_numel(&in[0].shape);
  if (count < 0 || !ri__shape_equal(&in[0].shape, &out[0].shape) || in[0].dtype != out[0].dtype)
    return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s' (%s): output buffer does not match the input",
                       n->name, ri__op_name(n->op));
  j->dtype = in[0].dtype;
  j->x = in[0].data;
  j->y = out[0].data;
  if (count > 0) ri__pool_for(x->pool, count, UNARY_GRAIN, run_chunk, j);
  return RI_OK;
}

static ri_status run_act(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x, ri__act act,
                         float a, float b) {
  if (in[0].dtype != RI_DTYPE_FLOAT32)
    return ri__err_set(x->err, RI_ERR_UNSUPPORTED, "node '%s' (%s): dtype %s is not supported", n->name,
                       ri__op_name(n->op), ri_dtype_name(in[0].dtype));
  unary_job j = {.mode = U_ACT, .act = act, .a = a, .b = b};
  return run(n, in, out, x, &j);
}

ri_status ri__ref_Relu(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  if (in[0].dtype == RI_DTYPE_FLOAT32) return run_act(n, in, out, x, RI__ACT_RELU, 0.f, 0.f);
  unary_job j = {.mode = U_INT_RELU};
  return run(n, in, out, x, &j);
}

ri_status ri__ref_Clip(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const void *lo = n->n_inputs > 1 && in[1].dtype != RI_DTYPE_UNDEFINED ? in[1].data : NULL;
  const void *hi = n->n_inputs > 2 && in[2].dtype != RI_DTYPE_UNDEFINED ? in[2].data : NULL;
  if (in[0].dtype == RI_DTYPE_FLOAT32) {
    float a = -INFINITY, b = INFINITY;
    if (lo) memcpy(&a, lo, sizeof a);
    if (hi) memcpy(&b, hi, sizeof b);
    if (a > b) a = b; /* y = min(max(x, lo), hi): with lo > hi every number becomes hi */
    return run_act(n, in, out, x, RI__ACT_CLIP, a, b);
  }
  unary_job j = {.mode = U_INT_CLIP, .lo = lo, .hi = hi};
  return run(n, in, out, x, &j);
}

ri_status ri__ref_LeakyRelu(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return run_act(n, in, out, x, RI__ACT_LEAKY_RELU, ri__node_attr_float(n, "alpha", 0.01f), 0.f);
}

ri_status ri__ref_HardSigmoid(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return run_act(n, in, out, x, RI__ACT_HARD_SIGMOID, ri__node_attr_float(n, "alpha", 0.2f),
                 ri__node_attr_float(n, "beta", 0.5f));
}

ri_status ri__ref_HardSwish(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return run_act(n, in, out, x, RI__ACT_HARD_SWISH, 0.f, 0.f);
}

ri_status ri__ref_Sigmoid(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return run_act(n, in, out, x, RI__ACT_SIGMOID, 0.f, 0.f);
}

ri_status ri__ref_Exp(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  if (in[0].dtype != RI_DTYPE_FLOAT32)
    return ri__err_set(x->err, RI_ERR_UNSUPPORTED, "node '%s' (Exp): dtype %s is not supported", n->name,
                       ri_dtype_name(in[0].dtype));
  unary_job j = {.mode = U_EXP};
  return run(n, in, out, x, &j);
}
