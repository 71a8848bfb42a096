/* Graph IR: values (tensors) and nodes (operators) of a model, in topological order.
 *
 * Invariants (checked by ri__graph_validate):
 *  - values and nodes are referred to by index, never by pointer (the arrays grow by realloc);
 *  - every node input index is -1 (absent optional input) or a valid value index, and that value is a
 *    graph input, a constant, or the output of an earlier node (nodes are topologically sorted);
 *  - every value has at most one producer;
 *  - a constant value owns `data` (exactly nbytes = numel * dtype size bytes, allocated by ri__malloc),
 *    unless it is `released`: a backend that keeps its own copy of the constant (packed weights) and is the
 *    only reader of it freed the data of an engine's graph, leaving data NULL and shape and nbytes as they
 *    were.
 *
 * Shapes: `shape` of each value is concrete for the batch size the last shape inference ran with
 * (graph->batch). The first axis of a graph input whose ONNX dim was symbolic is the batch axis. */
#ifndef RI_GRAPH_IR_H
#define RI_GRAPH_IR_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "graph/op_list.h"
#include "runinfer/types.h"

#define RI__MAX_RANK RI_MAX_RANK

/* Limits applied to everything read from a model or engine file. */
#define RI__MAX_TENSOR_ELEMS ((int64_t)1 << 31) /* per tensor */
#define RI__MAX_NODES        200000
#define RI__MAX_VALUES       400000
#define RI__MAX_ATTRS        64
#define RI__MAX_NODE_IO      4096
#define RI__MAX_NAME         4096
#define RI__MAX_ATTR_LIST    65536

typedef enum {
#define RI__OP_ENUM_(name) RI__OP_##name,
  RI__OP_LIST(RI__OP_ENUM_)
#undef RI__OP_ENUM_
      RI__OP_COUNT
} ri__op;

typedef struct {
  int rank;
  int64_t dims[RI__MAX_RANK];
} ri__shape;

/* A tensor as kernels and shape inference see it. data may be NULL where only the type and shape are known
 * (shape inference of activations); for constants and host-evaluated values it points to the elements. */
typedef struct {
  ri_dtype dtype;
  ri__shape shape;
  void *data;
} ri__tensor;

typedef enum {
  RI__ATTR_UNDEFINED = 0,
  RI__ATTR_FLOAT = 1,
  RI__ATTR_INT = 2,
  RI__ATTR_STRING = 3,
  RI__ATTR_TENSOR = 4, /* stored as a constant value of the graph: `value` is its index */
  RI__ATTR_FLOATS = 6,
  RI__ATTR_INTS = 7,
  RI__ATTR_STRINGS = 8
} ri__attr_type;

typedef struct {
  char *name;
  ri__attr_type type;
  int64_t i;
  float f;
  char *s; /* STRING: NUL-terminated copy */
  int n;   /* FLOATS / INTS / STRINGS: element count */
  float *floats;
  int64_t *ints;
  char **strings;
  int value; /* TENSOR: index of a constant value */
} ri__attr;

typedef enum {
  RI__VAL_ACTIVATION = 0, /* produced by a node */
  RI__VAL_INPUT = 1,      /* graph input, fed by the user */
  RI__VAL_CONST = 2       /* initializer or folded constant: data is set */
} ri__val_kind;

typedef struct {
  char *name;
  ri_dtype dtype;
  ri__shape shape;
  ri__val_kind kind;
  int producer;        /* node index, or -1 */
  int is_output;       /* a graph output */
  int batch_axis;      /* inputs: 0 if the first axis is the symbolic batch axis, else -1 */
  int batch_dependent; /* set by shape analysis: shape or (host) contents change with the batch size */
  int host;            /* computed on the host during shape resolution (shape subgraphs) */
  void *data;          /* CONST: owned element data */
  size_t nbytes;       /* CONST: size of data */
  int released;        /* CONST: data was freed after the backend packed it (see the invariants above) */
  int64_t mem_offset;  /* memory plan: byte offset in the activation arena, -1 when unplanned */
  int64_t mem_size;    /* memory plan: bytes reserved at the maximum batch */
} ri__value;

/* Activation fused into a node's output (conv, gemm, add...). */
typedef enum {
  RI__ACT_NONE = 0,
  RI__ACT_RELU,
  RI__ACT_CLIP,       /* min(max(x, a), b) */
  RI__ACT_LEAKY_RELU, /* x < 0 ? a * x : x */
  RI__ACT_SIGMOID,
  RI__ACT_HARD_SIGMOID, /* max(0, min(1, a * x + b)) */
  RI__ACT_HARD_SWISH
} ri__act;

typedef struct {
  char *name;
  ri__op op;
  int *inputs; /* value indices; -1 = absent optional input */
  int n_inputs;
  int *outputs;
  int n_outputs;
  ri__attr *attrs;
  int n_attrs;
  void *params; /* op-specific resolved parameters, set by the op's check(); plain memory
                   (no nested pointers), freed with ri__free */
  ri__act act;  /* fused activation, applied to the output by every backend's kernel */
  float act_a, act_b;
  int dead;   /* removed by a pass; compacted away by ri__graph_compact */
  int host;   /* evaluated on the host at shape-resolution time (shape subgraph) */
  int tactic; /* backend-specific implementation id chosen at build, 0 = default */
} ri__node;

typedef struct {
  ri__value *values;
  int n_values, cap_values;
  ri__node *nodes;
  int n_nodes, cap_nodes;
  int *inputs; /* value indices of graph inputs, in order */
  int n_inputs;
  int *outputs; /* value indices of graph outputs, in order */
  int n_outputs;
  int64_t opset; /* opset of the default ONNX domain */
  int batch;     /* batch size of the current shapes (1 after import) */
  char *name;
} ri__graph;

/* ---- construction (src/graph/ir.c) ---- */
ri__graph *ri__graph_create(void);
void ri__graph_destroy(ri__graph *g);
/* Adds a value (name copied; may be NULL for anonymous values); returns its index or -1 on OOM. */
int ri__graph_add_value(ri__graph *g, const char *name, ri_dtype dtype, const ri__shape *shape,
                        ri__val_kind kind);
/* Adds a constant value taking ownership of data (allocated by ri__malloc, nbytes long); on failure data
 * is freed. Returns the index or -1. */
int ri__graph_add_const(ri__graph *g, const char *name, ri_dtype dtype, const ri__shape *shape, void *data,
                        size_t nbytes);
/* Adds a node (name copied). inputs/outputs are copied. Returns its index or -1 on OOM. Does not set
 * producers: call ri__graph_link() after construction. */
int ri__graph_add_node(ri__graph *g, const char *name, ri__op op, const int *inputs, int n_inputs,
                       const int *outputs, int n_outputs);
/* Appends an attribute to node `node`, taking ownership of the heap members of *attr (name, s, lists). */
ri_status ri__graph_add_attr(ri__graph *g, int node, ri__attr *attr, ri__err *err);
/* Frees the heap members of an attribute. */
void ri__attr_free(ri__attr *a);
/* Recomputes producers; checks the invariants above (single producer, topological order, indices). */
ri_status ri__graph_link(ri__graph *g, ri__err *err);
/* Sorts nodes topologically (Kahn); fails naming a node on a cycle. Calls ri__graph_link. */
ri_status ri__graph_toposort(ri__graph *g, ri__err *err);
/* Drops dead nodes and values no longer referenced (keeps inputs/outputs), renumbering indices. */
ri_status ri__graph_compact(ri__graph *g, ri__err *err);
/* Index of the value with this name, or -1. Linear scan. */
int ri__graph_find_value(const ri__graph *g, const char *name);

/* ---- attributes ---- */
const ri__attr *ri__node_attr(const ri__node *n, const char *name);
int64_t ri__node_attr_int(const ri__node *n, const char *name, int64_t dflt);
float ri__node_attr_float(const ri__node *n, const char *name, float dflt);
const char *ri__node_attr_string(const ri__node *n, const char *name, const char *dflt);
/* Returns the list length (0 when absent) and sets *ints to the attribute's array (or NULL). */
int ri__node_attr_ints(const ri__node *n, const char *name, const int64_t **ints);
int ri__node_attr_floats(const ri__node *n, const char *name, const float **floats);

/* ---- shapes and tensors ---- */
int64_t ri__shape_numel(const ri__shape *s); /* -1 if any dim is negative or the product overflows */
int ri__shape_equal(const ri__shape *a, const ri__shape *b);
/* "[1,3,224,224]" into buf. Returns buf. */
const char *ri__shape_str(const ri__shape *s, char *buf, size_t len);
/* Bytes of a tensor with this dtype and shape; 0 and sets err when it overflows or exceeds the limits. */
ri_status ri__tensor_nbytes(ri_dtype dtype, const ri__shape *s, size_t *out, ri__err *err);
/* Reads element i of a small integer tensor (INT32/INT64/UINT8/INT8/BOOL...) as int64. */
int64_t ri__tensor_get_int(const ri__tensor *t, int64_t i);
double ri__tensor_get_double(const ri__tensor *t, int64_t i);

float ri__sigmoidf(float x);

/* Applies a fused activation to one value. */
static inline float ri__act_apply(ri__act act, float a, float b, float x) {
  switch (act) {
  case RI__ACT_NONE: return x;
  case RI__ACT_RELU: return x > 0.f ? x : 0.f;
  case RI__ACT_CLIP: return x < a ? (a > b ? b : a) : (x > b ? b : x); /* ONNX: min > max gives max */
  case RI__ACT_LEAKY_RELU: return x < 0.f ? a * x : x;
  case RI__ACT_SIGMOID: return ri__sigmoidf(x);
  case RI__ACT_HARD_SIGMOID: {
    float y = a * x + b;
    return y < 0.f ? 0.f : (y > 1.f ? 1.f : y);
  }
  case RI__ACT_HARD_SWISH: {
    float y = x / 6.f + 0.5f;
    y = y < 0.f ? 0.f : (y > 1.f ? 1.f : y);
    return x * y;
  }
  }
  return x;
}

#endif
