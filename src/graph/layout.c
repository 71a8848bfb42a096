/* Layout decision.
 *
 * Contract: every 4-D activation of the graph is NCHW (ONNX's own layout) and every kernel of every backend
 * receives and produces NCHW tensors at node boundaries. Backends that prefer another layout internally
 * (NHWC or blocked layouts for convolution) convert inside the node's implementation or in the weights
 * they pack at prepare time; nothing in the graph records it.
 *
 * This pass is where a graph-level choice belongs once a backend gains from it: it would pick a layout per
 * value, insert Transpose nodes where producer and consumer disagree, rewrite axis attributes of the
 * layout-sensitive ops (Concat, Softmax, Reshape, Flatten...) and fold transposes of constants. Until then
 * it changes nothing; it exists so that its place in the pass order (after fusion, before memory planning,
 * which must see any inserted Transpose) is fixed. */
#include "graph/passes.h"

ri_status ri__pass_layout(ri__graph *g, ri__err *err) {
  (void)g;
  (void)err;
  return RI_OK;
}
