/* ModelProto-level checks (IR version, opsets) and the entry point of the importer. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "onnx/import.h"
#include "onnx/internal.h"

#define RI__ONNX_MIN_IR    3
#define RI__ONNX_MIN_OPSET 11
#define RI__ONNX_MAX_OPSET 21

/* The opset of the default domain ("" or "ai.onnx"). Other domains are accepted here; a node that uses one
 * is reported by the operator check. */
static ri_status default_opset(const Onnx__ModelProto *m, int64_t *opset, ri__err *err) {
  *opset = -1;
  for (size_t i = 0; i < m->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = m->opset_import[i];
    const char *d = o->domain ? o->domain : "";
    if (d[0] && strcmp(d, "ai.onnx") != 0) continue;
    if (!o->has_version)
      return ri__err_set(err, RI_ERR_PARSE, "opset_import entry for the default domain has no version");
    if (*opset >= 0 && *opset != o->version)
      return ri__err_set(err, RI_ERR_PARSE,
                         "the default domain is imported twice, at opsets %" PRId64 " and %" PRId64, *opset,
                         o->version);
    *opset = o->version;
  }
  if (*opset < 0)
    return ri__err_set(err, RI_ERR_PARSE,
                       "opset_import does not name the default ONNX domain ('' or 'ai.onnx')");
  if (*opset < RI__ONNX_MIN_OPSET || *opset > RI__ONNX_MAX_OPSET)
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "opset %" PRId64
                       " of the default ONNX domain is not supported (runinfer supports opsets "
                       "%d to %d; convert the model with onnx.version_converter)",
                       *opset, RI__ONNX_MIN_OPSET, RI__ONNX_MAX_OPSET);
  return RI_OK;
}

static ri_status import_model(Onnx__ModelProto *m, const char *base_dir, ri__graph **out, ri__err *err) {
  if (!m->has_ir_version) return ri__err_set(err, RI_ERR_PARSE, "not an ONNX model: ir_version is missing");
  if (m->ir_version < RI__ONNX_MIN_IR)
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "ONNX IR version %" PRId64 " is not supported (need %d or later)", m->ir_version,
                       RI__ONNX_MIN_IR);
  int64_t opset;
  RI__TRY(default_opset(m, &opset, err));
  if (!m->graph) return ri__err_set(err, RI_ERR_PARSE, "model has no graph");
  RI__TRY(ri__onnx_build_graph(m->graph, base_dir, out, err));
  (*out)->opset = opset;
  return RI_OK;
}

ri_status ri__onnx_import(const void *data, size_t size, const char *base_dir, const char *source_name,
                          ri__graph **out, ri__err *err) {
  if (!out) return ri__err_set(err, RI_ERR_INVALID_ARG, "ri__onnx_import: out is NULL");
  *out = NULL;
  const char *src = source_name ? source_name : "<memory>";
  char what[RI__ONNX_SHOW + 8];
  snprintf(what, sizeof what, "'%.*s'", RI__ONNX_SHOW, src);
  if (size == 0) return ri__err_set(err, RI_ERR_PARSE, "%s: not a valid ONNX model (no bytes)", what);
  ProtobufCMessage *msg = NULL;
  RI__TRY(ri__onnx_unpack(&onnx__model_proto__descriptor, data, size, what, "model", &msg, err));
  ri_status st = import_model((Onnx__ModelProto *)msg, base_dir, out, err);
  ri__onnx_free_message(msg);
  if (st != RI_OK) ri__err_prefix(err, "%s", what);
  return st;
}
