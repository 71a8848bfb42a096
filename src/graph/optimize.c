/* The optimisation pipeline: the passes of passes.h in a fixed order.
 *
 *  1. op checks (params) and shapes at batch 1 (dtypes are needed by the fusion conditions)
 *  2. fold_constants      constant subgraphs (weights reshapes, Constant nodes...)
 *  3. shape_ops           Identity removal, two-point batch analysis, shape subgraphs folded or host
 *  4. fold_constants      what step 3 made constant (a Reshape of a weight whose shape input folded)
 *  5. dead_nodes          drops what no output needs (Shape nodes left without consumers...) and compacts
 *  6. fold_batchnorm      Conv + BN
 *  7. fuse_activation     producer + activation
 *  8. dead_nodes
 *  9. layout              NCHW decision (no change today)
 * 10. check ops again     params of rewritten nodes are rebuilt from the final graph
 * 11. shapes at max_batch, then memory_plan */
#include "graph/op.h"
#include "graph/passes.h"

ri_status ri__graph_optimize(ri__graph *g, int max_batch, ri__err *err) {
  if (max_batch < 1 || max_batch > 65536)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "optimize: max batch %d is outside 1..65536", max_batch);
  RI__TRY(ri__graph_link(g, err));
  RI__TRY(ri__graph_check_ops(g, err)); /* infer() and the kernels of folded nodes read params */
  RI__TRY(ri__graph_infer_shapes(g, 1, err));
  RI__TRY(ri__pass_fold_constants(g, err));
  RI__TRY(ri__pass_shape_ops(g, max_batch, err));
  RI__TRY(ri__pass_fold_constants(g, err));
  RI__TRY(ri__pass_dead_nodes(g, err));
  RI__TRY(ri__graph_infer_shapes(g, 1, err));
  RI__TRY(ri__pass_fold_batchnorm(g, err));
  RI__TRY(ri__pass_fuse_activation(g, err));
  RI__TRY(ri__pass_dead_nodes(g, err));
  RI__TRY(ri__pass_layout(g, err));
  RI__TRY(ri__graph_check_ops(g, err));
  RI__TRY(ri__graph_infer_shapes(g, max_batch, err));
  return ri__pass_memory_plan(g, max_batch, err);
}
