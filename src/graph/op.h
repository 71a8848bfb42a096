/* Operator definitions: what each ONNX operator accepts and how its output shapes follow from its inputs.
 * One definition per operator, `const ri__op_def ri__opdef_<Name>`, in src/graph/ops/<family>.c. */
#ifndef RI_GRAPH_OP_H
#define RI_GRAPH_OP_H

#include "graph/ir.h"

typedef struct ri__op_def {
  const char *name; /* ONNX op_type */
  int min_inputs, max_inputs;
  int min_outputs, max_outputs;
  /* Validates attributes and static properties against the graph's opset (11..21) and fills n->params
   * (allocated with ri__malloc, plain memory). Called once after import and again after loading an engine
   * file, so it must accept its own output. Constant inputs (weights, axes, shapes given as initializers)
   * may be read from g. An unsupported attribute or value fails with RI_ERR_UNSUPPORTED naming the node,
   * op, attribute and value. May be NULL (nothing to check). */
  ri_status (*check)(const ri__graph *g, ri__node *n, ri__err *err);
  /* Computes out[i].dtype and out[i].shape from the inputs. in[i].data is non-NULL when the input's
   * contents are known on the host (constants, host-evaluated shape values); ops whose output shape
   * depends on contents (Reshape, Slice, Tile, Resize sizes, Squeeze axes input...) require it and fail
   * with RI_ERR_UNSUPPORTED otherwise. Absent optional inputs have dtype RI_DTYPE_UNDEFINED. Must not
   * allocate out[i].data. Must check dtypes and ranks and fail with RI_ERR_SHAPE naming the node. */
  ri_status (*infer)(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err);
} ri__op_def;

/* 1 when output 0 of op has a data-dependent length (NonMaxSuppression), else 0. For such an op infer() gives
 * the largest shape and the kernel writes the real rows first and fills the rest with -1 (no real row starts
 * with -1); check() refuses the output when a node consumes it, so it is only ever a graph output; constant
 * folding and host evaluation leave these nodes alone; the engine counts the rows after each run
 * (ri_context_last_output_shape). Implemented in graph/ops/nms.c. */
int ri__op_has_padded_rows(ri__op op);

/* Definition of an op (never NULL for op < RI__OP_COUNT). */
const ri__op_def *ri__op_get(ri__op op);
/* Op enum from an ONNX op_type in the default domain; returns 0 and leaves *op unchanged if unknown. */
int ri__op_from_name(const char *name, ri__op *op);
const char *ri__op_name(ri__op op);

#define RI__OP_DECL_(name) extern const ri__op_def ri__opdef_##name;
RI__OP_LIST(RI__OP_DECL_)
#undef RI__OP_DECL_

/* Checks every live node's input/output counts against its op definition and runs check() (params are
 * dropped first, so a graph may be checked again after passes). Errors name the node and op. */
ri_status ri__graph_check_ops(ri__graph *g, ri__err *err);
/* Shape inference over the whole graph for batch size `batch` (implemented in graph/shape_infer.c): sets the
 * batch axis of inputs, infers every value's dtype/shape in order and stores them in g->values, sets
 * g->batch. Shape subgraphs are evaluated on the host with the CPU reference kernels so that data-dependent
 * shapes resolve, also before shape analysis has marked them n->host; their data is not kept. */
ri_status ri__graph_infer_shapes(ri__graph *g, int batch, ri__err *err);

#endif
