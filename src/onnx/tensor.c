/* TensorProto → dense element data, with every count and size checked against the shape. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "onnx/import.h"
#include "onnx/internal.h"

/* raw_data is little-endian by the ONNX specification and copied as is. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the ONNX importer assumes a little-endian host"
#endif

int ri__onnx_dtype(int64_t code, ri_dtype *out) {
  if (code <= 0 || code > 64) return 0;
  ri_dtype d = (ri_dtype)code;
  if (ri_dtype_size(d) == 0) return 0;
  *out = d;
  return 1;
}

const char *ri__onnx_dtype_str(int64_t code, char *buf, size_t len) {
  ri_dtype d;
  const char *name = NULL;
  if (ri__onnx_dtype(code, &d))
    name = ri_dtype_name(d);
  else if (code == 0)
    name = "UNDEFINED";
  else if (code == 8)
    name = "STRING";
  else if (code == 14)
    name = "COMPLEX64";
  else if (code == 15)
    name = "COMPLEX128";
  else if (code == 16)
    name = "BFLOAT16";
  else if (code >= 17 && code <= 20)
    name = "FLOAT8";
  else if (code == 21)
    name = "UINT4";
  else if (code == 22)
    name = "INT4";
  if (name)
    snprintf(buf, len, "%s", name);
  else
    snprintf(buf, len, "code %" PRId64, code);
  return buf;
}

/* The typed repeated field that holds elements of dtype d when raw_data is not used. */
static const char *typed_field_for(ri_dtype d) {
  switch (d) {
  case RI_DTYPE_FLOAT32: return "float_data";
  case RI_DTYPE_INT64: return "int64_data";
  case RI_DTYPE_FLOAT64: return "double_data";
  case RI_DTYPE_UINT32:
  case RI_DTYPE_UINT64: return "uint64_data";
  default: return "int32_data"; /* int32, int16, int8, uint16, uint8, bool, float16 (bit pattern) */
  }
}

/* First non-empty typed field of t and its element count, or NULL. */
static const char *typed_field_present(const Onnx__TensorProto *t, size_t *count) {
  if (t->n_float_data) return *count = t->n_float_data, "float_data";
  if (t->n_int32_data) return *count = t->n_int32_data, "int32_data";
  if (t->n_int64_data) return *count = t->n_int64_data, "int64_data";
  if (t->n_double_data) return *count = t->n_double_data, "double_data";
  if (t->n_uint64_data) return *count = t->n_uint64_data, "uint64_data";
  *count = 0;
  return NULL;
}

static int typed_fields_nonempty(const Onnx__TensorProto *t) {
  return (t->n_float_data > 0) + (t->n_int32_data > 0) + (t->n_int64_data > 0) + (t->n_double_data > 0) +
         (t->n_uint64_data > 0);
}

/* Copies the typed field of t (already checked to be the right one with numel elements) into dst,
 * narrowing int32_data to the element width; values outside the element type's range fail. */
static ri_status copy_typed(const Onnx__TensorProto *t, ri_dtype d, size_t numel, void *dst, const char *what,
                            ri__err *err) {
  int64_t lo = 0, hi = 0;
  if (numel == 0) return RI_OK;
  switch (d) {
  case RI_DTYPE_FLOAT32: memcpy(dst, t->float_data, numel * sizeof(float)); return RI_OK;
  case RI_DTYPE_INT64: memcpy(dst, t->int64_data, numel * sizeof(int64_t)); return RI_OK;
  case RI_DTYPE_FLOAT64: memcpy(dst, t->double_data, numel * sizeof(double)); return RI_OK;
  case RI_DTYPE_UINT64: memcpy(dst, t->uint64_data, numel * sizeof(uint64_t)); return RI_OK;
  case RI_DTYPE_INT32: memcpy(dst, t->int32_data, numel * sizeof(int32_t)); return RI_OK;
  case RI_DTYPE_UINT32:
    for (size_t i = 0; i < numel; i++) {
      if (t->uint64_data[i] > UINT32_MAX)
        return ri__err_set(err, RI_ERR_PARSE, "%s: uint64_data[%zu] = %" PRIu64 " is out of range for uint32",
                           what, i, t->uint64_data[i]);
      ((uint32_t *)dst)[i] = (uint32_t)t->uint64_data[i];
    }
    return RI_OK;
  case RI_DTYPE_BOOL:
    for (size_t i = 0; i < numel; i++)
      ((uint8_t *)dst)[i] = t->int32_data[i] != 0;
    return RI_OK;
  case RI_DTYPE_INT8: lo = INT8_MIN, hi = INT8_MAX; break;
  case RI_DTYPE_UINT8: lo = 0, hi = UINT8_MAX; break;
  case RI_DTYPE_INT16: lo = INT16_MIN, hi = INT16_MAX; break;
  case RI_DTYPE_UINT16:
  case RI_DTYPE_FLOAT16: lo = 0, hi = UINT16_MAX; break;
  default:
    return ri__err_set(err, RI_ERR_INTERNAL, "%s: no typed-field conversion for %s", what, ri_dtype_name(d));
  }
  for (size_t i = 0; i < numel; i++) {
    int32_t v = t->int32_data[i];
    if (v < lo || v > hi)
      return ri__err_set(err, RI_ERR_PARSE, "%s: int32_data[%zu] = %" PRId32 " is out of range for %s", what,
                         i, v, ri_dtype_name(d));
    switch (d) {
    case RI_DTYPE_INT8: ((int8_t *)dst)[i] = (int8_t)v; break;
    case RI_DTYPE_UINT8: ((uint8_t *)dst)[i] = (uint8_t)v; break;
    case RI_DTYPE_INT16: ((int16_t *)dst)[i] = (int16_t)v; break;
    default: ((uint16_t *)dst)[i] = (uint16_t)v; break;
    }
  }
  return RI_OK;
}

/* Validates data type, rank and dims; fills out->dtype, out->shape, *numel and *nbytes. */
static ri_status check_header(const Onnx__TensorProto *t, const char *what, ri__tensor *out, size_t *numel,
                              size_t *nbytes, ri__err *err) {
  char buf[48];
  if (!t->has_data_type) return ri__err_set(err, RI_ERR_PARSE, "%s has no data_type", what);
  if (!ri__onnx_dtype(t->data_type, &out->dtype))
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "%s: element type %s is not supported", what,
                       ri__onnx_dtype_str(t->data_type, buf, sizeof buf));
  if (t->n_dims > RI__MAX_RANK)
    return ri__err_set(err, RI_ERR_LIMIT, "%s has rank %zu, more than the limit of %d", what, t->n_dims,
                       RI__MAX_RANK);
  out->shape.rank = (int)t->n_dims;
  int has_zero = 0;
  for (size_t i = 0; i < t->n_dims; i++) {
    if (t->dims[i] < 0)
      return ri__err_set(err, RI_ERR_PARSE, "%s: dimension %zu is %" PRId64 " (dimensions must be >= 0)",
                         what, i, t->dims[i]);
    out->shape.dims[i] = t->dims[i];
    if (t->dims[i] == 0) has_zero = 1;
  }
  int64_t n = 1;
  for (size_t i = 0; i < t->n_dims && !has_zero; i++) {
    if (n > RI__MAX_TENSOR_ELEMS / t->dims[i]) {
      char sb[200];
      return ri__err_set(err, RI_ERR_LIMIT, "%s: shape %s exceeds the limit of %" PRId64 " elements", what,
                         ri__shape_str(&out->shape, sb, sizeof sb), (int64_t)RI__MAX_TENSOR_ELEMS);
    }
    n *= t->dims[i];
  }
  if (has_zero) n = 0;
  *numel = (size_t)n;
  if (!ri__mul_size(*numel, ri_dtype_size(out->dtype), nbytes))
    return ri__err_set(err, RI_ERR_LIMIT, "%s: byte size overflows", what);
  return RI_OK;
}

ri_status ri__onnx_tensor_convert(Onnx__TensorProto *t, const char *what, const char *base_dir,
                                  ri__tensor *out, size_t *nbytes, ri__err *err) {
  memset(out, 0, sizeof *out);
  *nbytes = 0;
  size_t numel = 0, nb = 0;
  char sb[200];
  RI__TRY(check_header(t, what, out, &numel, &nb, err));
  if (t->segment)
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "%s is a segment of a larger tensor (not supported)", what);
  if (t->n_string_data)
    return ri__err_set(err, RI_ERR_PARSE, "%s: %s tensor carries string_data", what,
                       ri_dtype_name(out->dtype));
  int external = 0;
  if (t->has_data_location) {
    if (t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
      external = 1;
    else if (t->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT)
      return ri__err_set(err, RI_ERR_PARSE, "%s: unknown data_location %d", what, (int)t->data_location);
  }
  if (!external && t->n_external_data)
    return ri__err_set(err, RI_ERR_PARSE, "%s has external_data entries but data_location is not EXTERNAL",
                       what);
  size_t typed_count = 0;
  const char *typed = typed_field_present(t, &typed_count);
  if ((external || t->has_raw_data) && typed)
    return ri__err_set(err, RI_ERR_PARSE, "%s has both %s and %s; exactly one data source is allowed", what,
                       external ? "external data" : "raw_data", typed);
  if (external && t->has_raw_data)
    return ri__err_set(err, RI_ERR_PARSE, "%s has both external data and raw_data", what);

  if (!external && t->has_raw_data) {
    if (t->raw_data.len != nb)
      return ri__err_set(err, RI_ERR_PARSE, "%s: raw_data holds %zu bytes but shape %s of %s needs %zu", what,
                         t->raw_data.len, ri__shape_str(&out->shape, sb, sizeof sb),
                         ri_dtype_name(out->dtype), nb);
    if (nb > 0 && t->raw_data.data) {
      /* The parser allocated raw_data through ri__malloc: take it over instead of copying. */
      out->data = t->raw_data.data;
      t->raw_data.data = NULL;
      t->raw_data.len = 0;
      *nbytes = nb;
      return RI_OK;
    }
  }
  if (!external && !t->has_raw_data) {
    if (typed_fields_nonempty(t) > 1)
      return ri__err_set(err, RI_ERR_PARSE, "%s carries several typed data fields", what);
    const char *want = typed_field_for(out->dtype);
    if (typed && strcmp(typed, want) != 0)
      return ri__err_set(err, RI_ERR_PARSE, "%s: %s tensor carries %s (expected raw_data or %s)", what,
                         ri_dtype_name(out->dtype), typed, want);
    if (typed_count != numel) {
      if (typed_count == 0)
        return ri__err_set(err, RI_ERR_PARSE,
                           "%s has no data: shape %s needs %zu elements and neither raw_data "
                           "nor %s is set",
                           what, ri__shape_str(&out->shape, sb, sizeof sb), numel, want);
      return ri__err_set(err, RI_ERR_PARSE, "%s: %s holds %zu values but shape %s needs %zu", what, typed,
                         typed_count, ri__shape_str(&out->shape, sb, sizeof sb), numel);
    }
  }
  void *data = ri__malloc(nb ? nb : 1);
  if (!data) return RI__OOM(err);
  ri_status st = RI_OK;
  if (external)
    st = ri__onnx_external_read(t, what, base_dir, data, nb, err);
  else if (!t->has_raw_data)
    st = copy_typed(t, out->dtype, numel, data, what, err);
  if (st != RI_OK) {
    ri__free(data);
    return st;
  }
  out->data = data;
  *nbytes = nb;
  return RI_OK;
}

ri_status ri__onnx_parse_tensor(const void *data, size_t size, ri__tensor *out, char **name_out,
                                ri__err *err) {
  if (name_out) *name_out = NULL;
  if (!out) return ri__err_set(err, RI_ERR_INVALID_ARG, "ri__onnx_parse_tensor: out is NULL");
  memset(out, 0, sizeof *out);
  ProtobufCMessage *msg = NULL;
  RI__TRY(ri__onnx_unpack(&onnx__tensor_proto__descriptor, data, size, "tensor", "tensor", &msg, err));
  Onnx__TensorProto *t = (Onnx__TensorProto *)msg;
  const char *name = t->name ? t->name : "";
  char what[RI__ONNX_SHOW + 16];
  snprintf(what, sizeof what, "tensor '%.*s'", RI__ONNX_SHOW, name);
  size_t nb = 0;
  ri_status st = ri__onnx_tensor_convert(t, what, NULL, out, &nb, err);
  if (st == RI_OK && name_out) {
    *name_out = ri__strdup(name);
    if (!*name_out) st = RI__OOM(err);
  }
  if (st != RI_OK) {
    ri__free(out->data);
    out->data = NULL;
  }
  ri__onnx_free_message(msg);
  return st;
}
