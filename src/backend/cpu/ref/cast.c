/* Reference Cast kernel.
 *
 * Rules: integer -> float rounds to nearest; float -> integer truncates toward zero as C does; values
 * outside the target's range (undefined in ONNX) are first truncated to int64 with saturation (NaN -> 0)
 * and then wrapped modulo 2^bits, which matches numpy and onnxruntime on x86 for in-int32-range values;
 * float -> uint64 keeps values in [2^63, 2^64). Integer -> integer wraps modulo 2^bits. Anything -> bool is
 * (x != 0) (NaN -> true); bool -> number is 0 or 1. float16 goes through float32 in both directions
 * (round to nearest even). */
#include "backend/cpu/kernel.h"
#include "core/half.h"
#include "graph/op.h"

#define CAST_GRAIN ((int64_t)1 << 15)

static int64_t f2i64(double v) {
  if (v != v) return 0;
  if (v >= 9223372036854775807.0) return INT64_MAX;
  if (v <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)v;
}

static uint64_t f2u64(double v) {
  if (v >= 18446744073709551615.0) return UINT64_MAX;
  if (v >= 9223372036854775808.0) return (uint64_t)v;
  return (uint64_t)f2i64(v);
}

#define LOOP(ST, EXPR)                                                                                       \
  do {                                                                                                       \
    const ST *s = (const ST *)src + begin;                                                                   \
    for (int64_t i = 0; i < count; i++) {                                                                    \
      ST v = s[i];                                                                                           \
      d[i] = EXPR;                                                                                           \
    }                                                                                                        \
  } while (0);                                                                                               \
  break

/* FF: from float32/float64, FI: from integers, FH: from a float16 pattern, FB: from a bool byte. */
#define DEFINE_TO(NAME, DT, FF, FI, FH, FB)                                                                  \
  static void NAME(ri_dtype st, const void *src, void *dst, int64_t begin, int64_t count) {                  \
    DT *d = (DT *)dst + begin;                                                                               \
    switch (st) {                                                                                            \
    case RI_DTYPE_FLOAT32: LOOP(float, FF);                                                                  \
    case RI_DTYPE_FLOAT64: LOOP(double, FF);                                                                 \
    case RI_DTYPE_FLOAT16: LOOP(uint16_t, FH);                                                               \
    case RI_DTYPE_BOOL: LOOP(uint8_t, FB);                                                                   \
    case RI_DTYPE_INT8: LOOP(int8_t, FI);                                                                    \
    case RI_DTYPE_UINT8: LOOP(uint8_t, FI);                                                                  \
    case RI_DTYPE_INT16: LOOP(int16_t, FI);                                                                  \
    case RI_DTYPE_UINT16: LOOP(uint16_t, FI);                                                                \
    case RI_DTYPE_INT32: LOOP(int32_t, FI);                                                                  \
    case RI_DTYPE_UINT32: LOOP(uint32_t, FI);                                                                \
    case RI_DTYPE_INT64: LOOP(int64_t, FI);                                                                  \
    case RI_DTYPE_UINT64: LOOP(uint64_t, FI);                                                                \
    default: break;                                                                                          \
    }                                                                                                        \
  }

#define TO_FLOAT(NAME, DT) DEFINE_TO(NAME, DT, (DT)v, (DT)v, (DT)ri__half_to_float(v), (DT)(v != 0))
#define TO_INT(NAME, DT)                                                                                     \
  DEFINE_TO(NAME, DT, (DT)f2i64(v), (DT)v, (DT)f2i64(ri__half_to_float(v)), (DT)(v != 0))

TO_FLOAT(to_f32, float)
TO_FLOAT(to_f64, double)
DEFINE_TO(to_f16, uint16_t, ri__float_to_half((float)v), ri__float_to_half((float)v), v,
          (uint16_t)(v ? 0x3c00u : 0u))
DEFINE_TO(to_bool, uint8_t, (uint8_t)(v != 0), (uint8_t)(v != 0), (uint8_t)(ri__half_to_float(v) != 0.f),
          (uint8_t)(v != 0))
TO_INT(to_i8, int8_t)
TO_INT(to_u8, uint8_t)
TO_INT(to_i16, int16_t)
TO_INT(to_u16, uint16_t)
TO_INT(to_i32, int32_t)
TO_INT(to_u32, uint32_t)
TO_INT(to_i64, int64_t)
DEFINE_TO(to_u64, uint64_t, f2u64(v), (uint64_t)v, f2u64(ri__half_to_float(v)), (uint64_t)(v != 0))

typedef void (*cast_fn)(ri_dtype st, const void *src, void *dst, int64_t begin, int64_t count);

static cast_fn pick(ri_dtype to) {
  switch (to) {
  case RI_DTYPE_FLOAT32: return to_f32;
  case RI_DTYPE_FLOAT64: return to_f64;
  case RI_DTYPE_FLOAT16: return to_f16;
  case RI_DTYPE_BOOL: return to_bool;
  case RI_DTYPE_INT8: return to_i8;
  case RI_DTYPE_UINT8: return to_u8;
  case RI_DTYPE_INT16: return to_i16;
  case RI_DTYPE_UINT16: return to_u16;
  case RI_DTYPE_INT32: return to_i32;
  case RI_DTYPE_UINT32: return to_u32;
  case RI_DTYPE_INT64: return to_i64;
  case RI_DTYPE_UINT64: return to_u64;
  default: return NULL;
  }
}

typedef struct {
  cast_fn fn;
  ri_dtype st;
  const void *src;
  void *dst;
} cast_job;

static void cast_chunk(void *arg, int64_t begin, int64_t end) {
  const cast_job *j = arg;
  j->fn(j->st, j->src, j->dst, begin, end - begin);
}

static int is_source(ri_dtype t) { return t != 8 && ri_dtype_size(t) != 0; }

ri_status ri__ref_Cast(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  cast_job j = {pick(out[0].dtype), in[0].dtype, in[0].data, out[0].data};
  if (!j.fn || !is_source(in[0].dtype))
    return ri__err_set(x->err, RI_ERR_UNSUPPORTED, "node '%s' (Cast): %s -> %s is not supported", n->name,
                       ri_dtype_name(in[0].dtype), ri_dtype_name(out[0].dtype));
  int64_t count = ri__shape_numel(&in[0].shape);
  if (count < 0 || !ri__shape_equal(&in[0].shape, &out[0].shape))
    return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s' (Cast): output shape differs from the input",
                       n->name);
  if (ri_dtype_size(in[0].dtype) != ri_dtype_size(out[0].dtype) && in[0].data == out[0].data)
    return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s' (Cast): output aliases the input", n->name);
  if (count > 0) ri__pool_for(x->pool, count, CAST_GRAIN, cast_chunk, &j);
  return RI_OK;
}
