/* Reference kernels of Add, Sub, Mul and Div with numpy broadcasting.
 *
 * The output is walked as rows of the merged broadcast view (graph/broadcast.h): inside a row each input
 * either advances by one element or repeats one element, which covers the same-shape, scalar and
 * per-channel cases with tight loops. Work is split over flat output ranges across the pool. The output
 * may alias an input of the same shape.
 *
 * Integer arithmetic wraps modulo 2^bits (computed in unsigned types, so no undefined behaviour); integer
 * Div truncates toward zero, yields 0 for a zero divisor (ONNX leaves it undefined) and wraps MIN / -1 to
 * MIN. Float32 outputs get the node's fused activation. */
#include <string.h>

#include "backend/cpu/kernel.h"
#include "graph/op.h"
#include "graph/broadcast.h"

#define BINARY_GRAIN ((int64_t)1 << 14)

typedef void (*row_fn)(const void *pa, const void *pb, void *py, int64_t n, int64_t sa, int64_t sb);

/* One row: sa/sb are 1 when the input advances along the row and 0 when it repeats its first element. */
#define ROW_FN(NAME, T, EXPR)                                                                                \
  static void NAME(const void *pa, const void *pb, void *py, int64_t n, int64_t sa, int64_t sb) {            \
    const T *A = pa;                                                                                         \
    const T *B = pb;                                                                                         \
    T *Y = py;                                                                                               \
    if (sa && sb) {                                                                                          \
      for (int64_t i = 0; i < n; i++) {                                                                      \
        T a = A[i], b = B[i];                                                                                \
        Y[i] = (T)(EXPR);                                                                                    \
      }                                                                                                      \
    } else if (sa) {                                                                                         \
      T b = B[0];                                                                                            \
      for (int64_t i = 0; i < n; i++) {                                                                      \
        T a = A[i];                                                                                          \
        Y[i] = (T)(EXPR);                                                                                    \
      }                                                                                                      \
    } else if (sb) {                                                                                         \
      T a = A[0];                                                                                            \
      for (int64_t i = 0; i < n; i++) {                                                                      \
        T b = B[i];                                                                                          \
        Y[i] = (T)(EXPR);                                                                                    \
      }                                                                                                      \
    } else {                                                                                                 \
      T a = A[0], b = B[0];                                                                                  \
      T v = (T)(EXPR);                                                                                       \
      for (int64_t i = 0; i < n; i++)                                                                        \
        Y[i] = v;                                                                                            \
    }                                                                                                        \
  }

/* Float types: plain IEEE arithmetic. */
#define FLOAT_OPS(SUF, T)                                                                                    \
  ROW_FN(add_##SUF, T, a + b)                                                                                \
  ROW_FN(sub_##SUF, T, a - b)                                                                                \
  ROW_FN(mul_##SUF, T, a *b)                                                                                 \
  ROW_FN(div_##SUF, T, a / b)

/* Integer types: U is an unsigned type at least as wide as T and as int, so that the arithmetic wraps
 * instead of overflowing a signed type. */
#define INT_OPS(SUF, T, U, DIV)                                                                              \
  ROW_FN(add_##SUF, T, (U)a + (U)b)                                                                          \
  ROW_FN(sub_##SUF, T, (U)a - (U)b)                                                                          \
  ROW_FN(mul_##SUF, T, (U)a *(U)b)                                                                           \
  ROW_FN(div_##SUF, T, DIV(T, U))

#define SDIV(T, U) (b == 0 ? (T)0 : b == -1 ? (T)(0u - (U)a) : (T)(a / b))
#define UDIV(T, U) (b == 0 ? (T)0 : (T)(a / b))

FLOAT_OPS(f32, float)
FLOAT_OPS(f64, double)
INT_OPS(i8, int8_t, uint32_t, SDIV)
INT_OPS(u8, uint8_t, uint32_t, UDIV)
INT_OPS(i16, int16_t, uint32_t, SDIV)
INT_OPS(u16, uint16_t, uint32_t, UDIV)
INT_OPS(i32, int32_t, uint32_t, SDIV)
INT_OPS(u32, uint32_t, uint32_t, UDIV)
INT_OPS(i64, int64_t, uint64_t, SDIV)
INT_OPS(u64, uint64_t, uint64_t, UDIV)

#define PICK(SUF)                                                                                            \
  switch (op) {                                                                                              \
  case RI__OP_Add: return add_##SUF;                                                                         \
  case RI__OP_Sub: return sub_##SUF;                                                                         \
  case RI__OP_Mul: return mul_##SUF;                                                                         \
  case RI__OP_Div: return div_##SUF;                                                                         \
  default: return NULL;                                                                                      \
  }

static row_fn pick(ri__op op, ri_dtype t) {
  switch (t) {
  case RI_DTYPE_FLOAT32: PICK(f32)
  case RI_DTYPE_FLOAT64: PICK(f64)
  case RI_DTYPE_INT8: PICK(i8)
  case RI_DTYPE_UINT8: PICK(u8)
  case RI_DTYPE_INT16: PICK(i16)
  case RI_DTYPE_UINT16: PICK(u16)
  case RI_DTYPE_INT32: PICK(i32)
  case RI_DTYPE_UINT32: PICK(u32)
  case RI_DTYPE_INT64: PICK(i64)
  case RI_DTYPE_UINT64: PICK(u64)
  default: return NULL;
  }
}

typedef struct {
  ri__bcast2 bc;
  const char *a, *b;
  char *y;
  size_t es;
  row_fn fn;
  ri__act act;
  float act_a, act_b;
} binary_job;

#define ACT_LOOP(ACT)                                                                                        \
  for (int64_t i = 0; i < len; i++)                                                                          \
    y[i] = ri__act_apply(ACT, a, b, y[i]);                                                                   \
  break

static void apply_act(ri__act act, float a, float b, float *y, int64_t len) {
  switch (act) {
  case RI__ACT_NONE: break;
  case RI__ACT_RELU: ACT_LOOP(RI__ACT_RELU);
  case RI__ACT_CLIP: ACT_LOOP(RI__ACT_CLIP);
  case RI__ACT_LEAKY_RELU: ACT_LOOP(RI__ACT_LEAKY_RELU);
  case RI__ACT_SIGMOID: ACT_LOOP(RI__ACT_SIGMOID);
  case RI__ACT_HARD_SIGMOID: ACT_LOOP(RI__ACT_HARD_SIGMOID);
  case RI__ACT_HARD_SWISH: ACT_LOOP(RI__ACT_HARD_SWISH);
  }
}

/* Output elements [begin, end): a tail of one row, whole rows, and the head of another. */
static void binary_chunk(void *arg, int64_t begin, int64_t end) {
  const binary_job *j = arg;
  const ri__bcast2 *bc = &j->bc;
  int64_t inner = bc->inner, ia = bc->sa[bc->rank - 1], ib = bc->sb[bc->rank - 1];
  int64_t col = begin % inner;
  ri__bcast2_it it;
  ri__bcast2_seek(bc, &it, begin / inner);
  while (begin < end) {
    int64_t len = inner - col < end - begin ? inner - col : end - begin;
    char *y = j->y + (size_t)begin * j->es;
    j->fn(j->a + (size_t)(it.a + col * ia) * j->es, j->b + (size_t)(it.b + col * ib) * j->es, y, len, ia, ib);
    if (j->act != RI__ACT_NONE) apply_act(j->act, j->act_a, j->act_b, (float *)(void *)y, len);
    begin += len;
    col = 0;
    ri__bcast2_next(bc, &it);
  }
}

static ri_status run_binary(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const char *op = ri__op_name(n->op);
  ri__shape shape;
  if (in[0].dtype != in[1].dtype || out[0].dtype != in[0].dtype ||
      ri__broadcast_shapes(&in[0].shape, &in[1].shape, &shape) != RI_OK ||
      !ri__shape_equal(&shape, &out[0].shape))
    return ri__err_set(x->err, RI_ERR_INTERNAL,
                       "node '%s' (%s): input and output types or shapes disagree with shape inference",
                       n->name, op);
  binary_job j;
  memset(&j, 0, sizeof j);
  j.fn = pick(n->op, in[0].dtype);
  if (!j.fn)
    return ri__err_set(x->err, RI_ERR_UNSUPPORTED, "node '%s' (%s): dtype %s is not supported", n->name, op,
                       ri_dtype_name(in[0].dtype));
  j.act = n->act;
  if (j.act != RI__ACT_NONE && in[0].dtype != RI_DTYPE_FLOAT32)
    return ri__err_set(x->err, RI_ERR_UNSUPPORTED, "node '%s' (%s): fused activation on dtype %s", n->name,
                       op, ri_dtype_name(in[0].dtype));
  j.act_a = n->act_a;
  j.act_b = n->act_b;
  ri__bcast2_init(&j.bc, &in[0].shape, &in[1].shape, &out[0].shape);
  j.a = in[0].data;
  j.b = in[1].data;
  j.y = out[0].data;
  j.es = ri_dtype_size(in[0].dtype);
  int64_t count = j.bc.rows * j.bc.inner;
  if (count > 0) ri__pool_for(x->pool, count, BINARY_GRAIN, binary_chunk, &j);
  return RI_OK;
}

ri_status ri__ref_Add(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return run_binary(n, in, out, x);
}

ri_status ri__ref_Sub(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return run_binary(n, in, out, x);
}

ri_status ri__ref_Mul(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return run_binary(n, in, out, x);
}

ri_status ri__ref_Div(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return run_binary(n, in, out, x);
}
