/* AttributeProto → ri__attr. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "onnx/internal.h"

int ri__onnx_attr_type(const Onnx__AttributeProto *a) {
  if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED) return (int)a->type;
  if (a->has_f) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
  if (a->has_i) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  if (a->has_s) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
  if (a->t) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
  if (a->g) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
  if (a->n_floats) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
  if (a->n_ints) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
  if (a->n_strings) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
  return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED;
}

static const char *unsupported_type_name(int type) {
  switch (type) {
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH: return "GRAPH (subgraphs)";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS: return "GRAPHS (subgraphs)";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR: return "SPARSE_TENSOR";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS: return "SPARSE_TENSORS";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO: return "TYPE_PROTO";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS: return "TYPE_PROTOS";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS: return "TENSORS";
  default: return NULL;
  }
}

/* A NUL-terminated copy of a bytes field; fails on embedded NUL bytes, which a C string cannot hold. */
static ri_status copy_string(const ProtobufCBinaryData *b, const char *node, const char *attr, char **out,
                             ri__err *err) {
  if (b->len && memchr(b->data, 0, b->len))
    return ri__err_set(err, RI_ERR_PARSE, "node '%.*s' attribute '%.*s': string contains a NUL byte",
                       RI__ONNX_SHOW, node, RI__ONNX_SHOW, attr);
  if (b->len > RI__MAX_ATTR_LIST)
    return ri__err_set(err, RI_ERR_LIMIT,
                       "node '%.*s' attribute '%.*s': string of %zu bytes exceeds the limit of %d",
                       RI__ONNX_SHOW, node, RI__ONNX_SHOW, attr, b->len, RI__MAX_ATTR_LIST);
  *out = ri__strndup(b->len ? (const char *)b->data : "", b->len);
  return *out ? RI_OK : RI__OOM(err);
}

static ri_status check_list(size_t n, const char *node, const char *attr, ri__err *err) {
  if (n > RI__MAX_ATTR_LIST)
    return ri__err_set(err, RI_ERR_LIMIT,
                       "node '%.*s' attribute '%.*s' has %zu elements, more than the limit of %d",
                       RI__ONNX_SHOW, node, RI__ONNX_SHOW, attr, n, RI__MAX_ATTR_LIST);
  return RI_OK;
}

static ri_status convert(ri__graph *g, Onnx__AttributeProto *a, const char *node, const char *base_dir,
                         ri__attr *out, ri__err *err) {
  const char *name = a->name;
  int type = ri__onnx_attr_type(a);
  switch (type) {
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
    out->type = RI__ATTR_FLOAT;
    out->f = a->f;
    return RI_OK;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
    out->type = RI__ATTR_INT;
    out->i = a->i;
    return RI_OK;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
    out->type = RI__ATTR_STRING;
    return copy_string(&a->s, node, name, &out->s, err);
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
    out->type = RI__ATTR_FLOATS;
    RI__TRY(check_list(a->n_floats, node, name, err));
    if (a->n_floats) {
      out->floats = ri__malloc(a->n_floats * sizeof(float));
      if (!out->floats) return RI__OOM(err);
      memcpy(out->floats, a->floats, a->n_floats * sizeof(float));
    }
    out->n = (int)a->n_floats;
    return RI_OK;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
    out->type = RI__ATTR_INTS;
    RI__TRY(check_list(a->n_ints, node, name, err));
    if (a->n_ints) {
      out->ints = ri__malloc(a->n_ints * sizeof(int64_t));
      if (!out->ints) return RI__OOM(err);
      memcpy(out->ints, a->ints, a->n_ints * sizeof(int64_t));
    }
    out->n = (int)a->n_ints;
    return RI_OK;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
    out->type = RI__ATTR_STRINGS;
    RI__TRY(check_list(a->n_strings, node, name, err));
    if (a->n_strings) {
      out->strings = ri__calloc(a->n_strings, sizeof(char *));
      if (!out->strings) return RI__OOM(err);
    }
    /* out->n counts the filled entries so that ri__attr_free releases exactly those on failure. */
    for (size_t k = 0; k < a->n_strings; k++) {
      RI__TRY(copy_string(&a->strings[k], node, name, &out->strings[k], err));
      out->n = (int)k + 1;
    }
    return RI_OK;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: {
    out->type = RI__ATTR_TENSOR;
    out->value = -1;
    char what[2 * RI__ONNX_SHOW + 40];
    snprintf(what, sizeof what, "node '%.*s' attribute '%.*s'", RI__ONNX_SHOW, node, RI__ONNX_SHOW, name);
    if (!a->t) return ri__err_set(err, RI_ERR_PARSE, "%s is of type TENSOR but holds no tensor", what);
    ri__tensor t;
    size_t nbytes;
    RI__TRY(ri__onnx_tensor_convert(a->t, what, base_dir, &t, &nbytes, err));
    /* Named after node and attribute for messages; not registered by name, so the model cannot refer to it.
     */
    char vname[2 * RI__ONNX_SHOW + 8];
    snprintf(vname, sizeof vname, "%.*s/%.*s", RI__ONNX_SHOW, node, RI__ONNX_SHOW, name);
    int v = ri__graph_add_const(g, vname, t.dtype, &t.shape, t.data, nbytes);
    if (v < 0)
      return g->n_values >= RI__MAX_VALUES
                 ? ri__err_set(err, RI_ERR_LIMIT, "%s: more than %d values", what, RI__MAX_VALUES)
                 : RI__OOM(err);
    out->value = v;
    return RI_OK;
  }
  default: {
    const char *un = unsupported_type_name(type);
    if (un)
      return ri__err_set(err, RI_ERR_UNSUPPORTED,
                         "node '%.*s' attribute '%.*s': attributes of type %s are not supported",
                         RI__ONNX_SHOW, node, RI__ONNX_SHOW, name, un);
    return ri__err_set(err, RI_ERR_PARSE, "node '%.*s' attribute '%.*s' has unknown attribute type %d",
                       RI__ONNX_SHOW, node, RI__ONNX_SHOW, name, type);
  }
  }
}

ri_status ri__onnx_attr_convert(ri__graph *g, Onnx__AttributeProto *a, const char *node, const char *base_dir,
                                ri__attr *out, ri__err *err) {
  memset(out, 0, sizeof *out);
  if (!a->name || !a->name[0])
    return ri__err_set(err, RI_ERR_PARSE, "node '%.*s' has an attribute without a name", RI__ONNX_SHOW, node);
  size_t len = strlen(a->name);
  if (len > RI__MAX_NAME)
    return ri__err_set(err, RI_ERR_LIMIT, "node '%.*s' has an attribute name of %zu bytes (limit %d)",
                       RI__ONNX_SHOW, node, len, RI__MAX_NAME);
  if (a->ref_attr_name && a->ref_attr_name[0])
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "node '%.*s' attribute '%.*s' refers to function attribute '%.*s' (functions are not "
                       "supported)",
                       RI__ONNX_SHOW, node, RI__ONNX_SHOW, a->name, RI__ONNX_SHOW, a->ref_attr_name);
  ri_status st = convert(g, a, node, base_dir, out, err);
  if (st == RI_OK) {
    out->name = ri__strdup(a->name);
    if (!out->name) st = RI__OOM(err);
  }
  if (st != RI_OK) ri__attr_free(out);
  return st;
}
