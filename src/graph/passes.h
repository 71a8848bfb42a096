/* Graph optimisation passes, one per file in src/graph/, and the helpers they share (passes.c).
 *
 * Every pass takes a linked graph (ri__graph_link holds) with current shapes, leaves it linked and
 * topologically sorted, and may leave nodes marked dead for ri__graph_compact (dead_nodes compacts). A pass
 * that fails returns a status with a message naming the node; the graph is then valid but only partly
 * optimised. docs/design/graph.md describes each pass. */
#ifndef RI_GRAPH_PASSES_H
#define RI_GRAPH_PASSES_H

#include "graph/ir.h"

/* Largest output (bytes) constant folding materialises; bigger results stay computed at run time. */
#define RI__FOLD_MAX_BYTES ((size_t)64 << 20)

/* Runs the passes below in order for an engine serving batches 1..max_batch (1..65536) and leaves the
 * graph compacted, with shapes inferred for max_batch (g->batch == max_batch), params refreshed by the ops'
 * check(), and memory planned. */
ri_status ri__graph_optimize(ri__graph *g, int max_batch, ri__err *err);

/* Nodes whose present inputs are all constants are evaluated with their reference kernel and their outputs
 * become constants in place (same value index and name). Identity nodes are left to shape_ops; outputs
 * over RI__FOLD_MAX_BYTES are left alone. */
ri_status ri__pass_fold_constants(ri__graph *g, ri__err *err);

/* Removes Identity nodes, then runs the two-point batch analysis (shapes resolved at batch 1 and at
 * max_batch, or 2 when max_batch is 1): sets every value's batch_dependent flag; folds host-computable
 * shape subgraphs whose results do not depend on the batch into constants (all of them when max_batch is
 * 1) and marks the others n->host / value host for evaluation by ri__shapes_resolve at run time. */
ri_status ri__pass_shape_ops(ri__graph *g, int max_batch, ri__err *err);

/* Rewrites the DequantizeLinear -> Conv / Add -> QuantizeLinear groups that onnxruntime's default CPU session
 * computes in integers (x86-64 rules, see qdq_to_qlinear.c) into QLinearConv / QLinearAdd nodes. Runs on the
 * graph as imported (shapes inferred at batch 1), before constant folding; only CPU engines use it (the
 * builder decides, docs/decisions.md "Integer Q/DQ"). */
ri_status ri__pass_qdq_to_qlinear(ri__graph *g, ri__err *err);
/* Tactic the same pass gives the Conv nodes of Q/DQ groups that stay float (input and weight from
 * DequantizeLinear): the CPU reference kernel then sums in onnxruntime's order (cpu/ref/conv_qdq_order.c). */
#define RI__CONV_TACTIC_QDQ_ORDER 1

/* Device-side input normalisation (uint8_input.c): the float32 image input whose shape matches (N, 3, height,
 * width) for nchw, else (N, height, width, 3) becomes a uint8 NHWC input of the same name, and the graph
 * computes (float(x) - mean[c]) * scale[c] (and the transpose to NCHW) as its first nodes. Runs on the graph
 * as imported; RI_ERR_INVALID_ARG names the first input when none matches. */
typedef struct {
  int width, height;
  int nchw; /* the model input's layout */
  float mean[3], scale[3];
} ri__u8_input;
ri_status ri__pass_uint8_input(ri__graph *g, const ri__u8_input *p, ri__err *err);

/* Conv followed by BatchNormalization (inference mode, constant float32 parameters, the Conv output used
 * only by the BN) becomes one Conv with new scaled weight and bias constants. */
ri_status ri__pass_fold_batchnorm(ri__graph *g, ri__err *err);

/* Conv, Gemm, MatMul, Add, Sub, Mul or Div followed by Relu, Clip (constant bounds), LeakyRelu, Sigmoid,
 * HardSigmoid or HardSwish on float32 becomes one node with n->act set, when the producer's output has
 * that activation as its only consumer and is not a graph output. */
ri_status ri__pass_fuse_activation(ri__graph *g, ri__err *err);

/* Marks dead every node none of whose outputs reaches a graph output, then compacts the graph. */
ri_status ri__pass_dead_nodes(ri__graph *g, ri__err *err);

/* Records the tensor layout: NCHW everywhere (see layout.c for the contract). Changes nothing today. */
ri_status ri__pass_layout(ri__graph *g, ri__err *err);

/* Plans activation memory for batch max_batch: every non-constant, non-host value (graph inputs and
 * outputs included) gets a 64-byte aligned mem_offset/mem_size in one arena, with values whose lifetimes
 * overlap never sharing bytes. Sizes come from ri__shapes_resolve at max_batch (the run-time resolution,
 * following n->host), so the graph's stored shapes do not matter. Fails when a value needs more bytes at
 * batch 1 than at max_batch, or when run-time resolution fails. Constants and host values get offset -1. */
ri_status ri__pass_memory_plan(ri__graph *g, int max_batch, ri__err *err);
/* One block of a memory plan: lifetime [first, last] (node indices; any integers) and size in bytes; key
 * breaks ties between blocks first used at the same point. */
typedef struct {
  int key;
  int first, last;
  int64_t size;
} ri__plan_block;
/* Places blocks as ri__pass_memory_plan does (best fit in first-use order; blocks whose lifetimes intersect
 * never share a byte). Sorts blocks by (first, key) in place and writes offsets[i] for the sorted blocks[i];
 * *total is the end of the highest block. Sizes are used as given (align them first). */
ri_status ri__plan_place(ri__plan_block *blocks, int count, int64_t *offsets, int64_t *total, ri__err *err);
/* Arena bytes the memory plan needs: the end of the highest planned block (0 when nothing is planned). */
int64_t ri__memory_plan_size(const ri__graph *g);

/* ---- helpers shared by the passes (passes.c) ---- */

/* Number of uses of each value as an input of a live node (an input listed twice counts twice), in a new
 * array of n_values entries (ri__free), or NULL on OOM. */
int *ri__pass_use_counts(const ri__graph *g);
/* Replaces every use of value `from` as a node input by `to` (live nodes only). */
void ri__pass_replace_uses(ri__graph *g, int from, int to);
/* Makes activation value v a constant owning data (nbytes, ri__malloc'd); its producer must be marked dead
 * by the caller. */
void ri__pass_make_const(ri__graph *g, int v, ri_dtype dtype, const ri__shape *shape, void *data,
                         size_t nbytes);
/* A name not used by any value: base + suffix, then base + suffix + "_2", "_3"... New string (ri__free),
 * or NULL on OOM. */
char *ri__pass_unique_name(const ri__graph *g, const char *base, const char *suffix);
/* Drops node ni's params and runs its op's check() again (after a pass changed its inputs). */
ri_status ri__pass_recheck_node(ri__graph *g, int ni, ri__err *err);
/* Sets node ni's input k, growing the input list with absent (-1) entries when k >= n_inputs. */
ri_status ri__pass_set_input(ri__graph *g, int ni, int k, int value, ri__err *err);
/* A value's name for messages ("?" when anonymous). */
const char *ri__pass_vname(const ri__graph *g, int v);

#endif
