/* Shared by the files of the ONNX importer only (src/onnx/). Not for other modules: they use import.h.
 *
 * Conventions: `what` parameters name the object in messages ("initializer 'conv1.weight'", "node 'n'
 * attribute 'value'"); names from the model are printed with at most RI__ONNX_SHOW characters. */
#ifndef RI_ONNX_INTERNAL_H
#define RI_ONNX_INTERNAL_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "core/err.h"
#include "graph/ir.h"
#include "onnx/onnx.pb-c.h"

/* Precision of "%.*s" when a name from the model is printed in a message. */
#define RI__ONNX_SHOW 160
/* Deepest nesting of protobuf messages accepted (model → graph → node → attribute → graph ...). */
#define RI__ONNX_MAX_DEPTH 64
/* Most distinct unsupported operator types listed in one message. */
#define RI__ONNX_MAX_UNSUPPORTED_LISTED 20

/* ---- unpack.c: protobuf parsing through ri__malloc ---- */

/* Checks the wire structure and nesting depth of the bytes, then unpacks them as a message of type desc
 * with an allocator that routes through ri__malloc/ri__free. `what` names the input in messages
 * ("'model.onnx'", "tensor"). Fails with RI_ERR_PARSE ("<what>: not a valid ONNX <kind> (protobuf parse
 * failed...)"), RI_ERR_LIMIT (nesting deeper than RI__ONNX_MAX_DEPTH) or RI_ERR_NO_MEMORY. */
ri_status ri__onnx_unpack(const ProtobufCMessageDescriptor *desc, const void *data, size_t size,
                          const char *what, const char *kind, ProtobufCMessage **out, ri__err *err);
/* Frees a message returned by ri__onnx_unpack (NULL is a no-op). */
void ri__onnx_free_message(ProtobufCMessage *msg);

/* ---- tensor.c: TensorProto → element data ---- */

/* Converts t into out->dtype, out->shape and out->data (ri__malloc'ed, nbytes long, never NULL) after
 * checking element type, rank, dims, element count and that the data present holds exactly the elements
 * the shape needs. May take over t->raw_data.data (then leaves it NULL in t). base_dir as for
 * ri__onnx_import. Messages start with `what`. */
ri_status ri__onnx_tensor_convert(Onnx__TensorProto *t, const char *what, const char *base_dir,
                                  ri__tensor *out, size_t *nbytes, ri__err *err);
/* Maps an ONNX element type code to a supported ri_dtype; 0 when runinfer does not support it. */
int ri__onnx_dtype(int64_t code, ri_dtype *out);
/* "float32", or "STRING"/"BFLOAT16"/"code 99" for unsupported codes, into buf. Returns buf. */
const char *ri__onnx_dtype_str(int64_t code, char *buf, size_t len);

/* ---- external_data.c ---- */

/* Reads exactly nbytes of t's external data into dst. Checks keys (location required; offset, length
 * decimal), the path (relative, no "..", no backslash) and that offset + length lies within the file and
 * length equals nbytes. base_dir NULL fails. */
ri_status ri__onnx_external_read(const Onnx__TensorProto *t, const char *what, const char *base_dir,
                                 void *dst, size_t nbytes, ri__err *err);

/* ---- names.c: value name → value index ---- */

/* Open-addressing hash set of value indices keyed by g->values[i].name (the graph owns the strings). */
typedef struct {
  int *slots; /* -1 = empty */
  size_t cap; /* power of two, or 0 */
  size_t count;
} ri__onnx_names;

void ri__onnx_names_free(ri__onnx_names *m);
/* Index of the value named `name`, or -1. */
int ri__onnx_names_find(const ri__onnx_names *m, const ri__graph *g, const char *name);
/* Adds value `value` (whose name must be set and not yet present). */
ri_status ri__onnx_names_add(ri__onnx_names *m, const ri__graph *g, int value, ri__err *err);

/* ---- attr.c ---- */

/* Converts one attribute of node `node` into *out (heap members owned by *out afterwards). A TENSOR
 * attribute becomes an unnamed-in-the-model constant value of g (out->value = its index). GRAPH, SPARSE
 * TENSOR, TYPE_PROTO and their list forms fail with RI_ERR_UNSUPPORTED naming node and attribute. */
ri_status ri__onnx_attr_convert(ri__graph *g, Onnx__AttributeProto *a, const char *node, const char *base_dir,
                                ri__attr *out, ri__err *err);

/* The attribute's type (an Onnx__AttributeProto__AttributeType value): the declared one or, for producers
 * that omit it (old IR versions), the one implied by the field that is set; UNDEFINED when nothing tells. */
int ri__onnx_attr_type(const Onnx__AttributeProto *a);

/* ---- constant.c ---- */

/* Turns Constant node np (named `node`) into a constant value named after its single output and registers
 * it in names. Fails when the output name is already defined, when there is not exactly one value
 * attribute, or for value_string(s) / sparse_value. */
ri_status ri__onnx_add_constant(ri__graph *g, ri__onnx_names *names, Onnx__NodeProto *np, const char *node,
                                const char *base_dir, ri__err *err);

/* ---- nodes.c ---- */

/* Fails with RI_ERR_UNSUPPORTED listing every distinct unsupported (domain, op_type) of gp (up to
 * RI__ONNX_MAX_UNSUPPORTED_LISTED, with the first node of each) when there is any. */
ri_status ri__onnx_check_operators(const Onnx__GraphProto *gp, ri__err *err);
/* Adds the nodes of gp to g in file order, creating activation values by name, and checks that every
 * value a node reads is defined somewhere and that no value is written twice. */
ri_status ri__onnx_add_nodes(ri__graph *g, ri__onnx_names *names, Onnx__GraphProto *gp, const char *base_dir,
                             ri__err *err);

/* ---- graph.c ---- */

/* Builds a sorted graph from gp: initializers, inputs, nodes, outputs, then ri__graph_toposort. */
ri_status ri__onnx_build_graph(Onnx__GraphProto *gp, const char *base_dir, ri__graph **out, ri__err *err);

/* ---- file.c ---- */

/* Reads a whole regular file of at most max_size bytes into a ri__malloc'ed buffer. `what` names the file
 * in messages. Empty files fail with RI_ERR_IO. */
ri_status ri__onnx_read_file(const char *path, const char *what, size_t max_size, void **data, size_t *size,
                             ri__err *err);

#endif
