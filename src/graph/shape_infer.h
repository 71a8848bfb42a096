/* Shape resolution: the dtype and shape of every value of a graph for one batch size, with the contents of
 * the values that are known on the host (constants and the outputs of host-evaluated shape subgraphs).
 *
 * The graph is only read, so the runtime may resolve any number of batch sizes concurrently from one
 * engine; results go into a caller-owned array with one ri__tensor per graph value. */
#ifndef RI_GRAPH_SHAPE_INFER_H
#define RI_GRAPH_SHAPE_INFER_H

#include "graph/ir.h"

/* Largest number of elements of one output of a node that shape analysis evaluates on the host. Shape
 * subgraphs compute dims and index lists; anything larger is real data and stays on the device. */
#define RI__HOST_MAX_ELEMS 4096

/* Fills vals[0 .. g->n_values) for batch size `batch` (>= 1):
 *  - graph inputs: the stored dtype and shape, with dims[0] = batch when batch_axis == 0; data NULL;
 *  - constants: dtype, shape, and data borrowed from g (never freed through vals);
 *  - outputs of live nodes, in node order: dtype and shape from the op's infer(); for nodes with n->host
 *    set, data is allocated with ri__malloc and computed by the CPU reference kernel (no thread pool),
 *    otherwise data is NULL;
 *  - values nothing produces (outputs of dead nodes): dtype RI_DTYPE_UNDEFINED.
 * vals is overwritten entirely; it must not hold host data from an earlier call (ri__shapes_free first).
 * Errors name the node, its op and the batch size. On failure every buffer this call allocated has been
 * freed again (vals holds no host data), so ri__shapes_free is optional but harmless. */
ri_status ri__shapes_resolve(const ri__graph *g, int batch, ri__tensor *vals, ri__err *err);

/* Frees the host data ri__shapes_resolve allocated (never the borrowed constant data) and sets those data
 * pointers to NULL. Safe to call twice and on a partially filled or zeroed array. */
void ri__shapes_free(const ri__graph *g, ri__tensor *vals);

/* Shape analysis variant used by the passes: like ri__shapes_resolve, but instead of following n->host it
 * evaluates on the host every live node that can be: Shape nodes (whose result depends only on the input's
 * shape), and nodes with at least one input whose present inputs all have host data and whose every output
 * has at most RI__HOST_MAX_ELEMS elements. evaluated[ni] (n_nodes entries, may be NULL) is set to 1 for
 * the nodes evaluated. Free with ri__shapes_free. */
ri_status ri__shapes_resolve_discover(const ri__graph *g, int batch, ri__tensor *vals,
                                      unsigned char *evaluated, ri__err *err);

/* Runs the reference kernel of node n on in/out (out[k].dtype and shape set, data allocated by the
 * caller), without a thread pool or shared scratch. Errors name the node. */
ri_status ri__node_eval_ref(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err);

#endif
