/* ONNX importer: turns a serialized ONNX ModelProto into a runinfer graph (graph/ir.h).
 *
 * Everything in the model is treated as hostile. The importer checks, before using them, every count,
 * dimension, element type, byte length and external-data offset against the limits of graph/ir.h and the
 * bytes actually present, and fails with a status and a message that names the model ('<source_name>'),
 * the node, tensor, input or attribute concerned, the rule broken and the values found. It never aborts.
 *
 * What is accepted (docs/design/onnx-import.md has the full list):
 *  - IR version >= 3; the default domain ("" or "ai.onnx") at opset 11..21. Other domains may be imported
 *    as long as no node uses them.
 *  - Nodes of the default domain whose op_type is in graph/op_list.h. All unsupported operators of a model
 *    are reported in one message. Constant nodes become constant values, not nodes.
 *  - Initializers and Constant values with their data in raw_data, in the typed repeated fields, or in
 *    external files next to the model (paths relative to base_dir, without ".." components).
 *  - Graph inputs with tensor types whose dims are all fixed, except that axis 0 may be symbolic; it is then
 *    the batch axis (value.batch_axis = 0) and stored as 1.
 *
 * Every function frees everything it allocated when it fails, including the protobuf parse tree (the
 * parser allocates through ri__malloc, so allocation-failure tests reach it too). An allocation failure is
 * reported as RI_ERR_NO_MEMORY. The functions are reentrant and keep no global state. */
#ifndef RI_ONNX_IMPORT_H
#define RI_ONNX_IMPORT_H

#include <stddef.h>

#include "core/err.h"
#include "graph/ir.h"

/* Largest serialized model (or standalone tensor) accepted: protobuf's own 2 GiB message limit. */
#define RI__ONNX_MAX_BYTES ((size_t)2 << 30)

/* Imports a model held in memory. base_dir is the directory external-data paths are relative to (NULL:
 * a model with external data is refused). source_name names the model in messages (NULL: "<memory>").
 * On success *out receives a topologically sorted graph owned by the caller (ri__graph_destroy); on
 * failure *out is NULL. The bytes are not referenced after the call returns.
 * Returns RI_OK, RI_ERR_INVALID_ARG, RI_ERR_PARSE (malformed protobuf, dangling names, cycles, data that
 * disagrees with its shape), RI_ERR_UNSUPPORTED (IR version, opset, operators, attribute or element
 * types, symbolic dims), RI_ERR_LIMIT (sizes beyond graph/ir.h limits), RI_ERR_IO (external data) or
 * RI_ERR_NO_MEMORY. */
ri_status ri__onnx_import(const void *data, size_t size, const char *base_dir, const char *source_name,
                          ri__graph **out, ri__err *err) __attribute__((warn_unused_result));

/* Reads the model file at path and imports it with the file's directory as base_dir and the path as
 * source name. Adds RI_ERR_IO (missing, unreadable, not a regular file, empty) and RI_ERR_LIMIT (larger
 * than RI__ONNX_MAX_BYTES) to the statuses above; I/O messages carry the system's errno text. */
ri_status ri__onnx_import_file(const char *path, ri__graph **out, ri__err *err)
    __attribute__((warn_unused_result));

/* Parses a standalone serialized TensorProto (the input_N.pb / output_N.pb files of the ONNX backend test
 * suites). On success *out holds dtype, shape and data (allocated with ri__malloc, owned by the caller,
 * never NULL even for zero elements) and, when name_out is not NULL, *name_out a ri__malloc'ed copy of the
 * tensor's name ("" when it has none). External data is refused (there is no base directory). On failure
 * out->data and *name_out are NULL. Same statuses as ri__onnx_import. */
ri_status ri__onnx_parse_tensor(const void *data, size_t size, ri__tensor *out, char **name_out, ri__err *err)
    __attribute__((warn_unused_result));

#endif
