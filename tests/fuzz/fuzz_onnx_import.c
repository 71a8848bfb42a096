/* libFuzzer target: ONNX model bytes → importer → op checks → shape inference. Must never crash, leak or
 * allocate without bound, whatever the bytes. */
#include <stddef.h>
#include <stdint.h>

#include "graph/op.h"
#include "onnx/import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ri__graph *g = NULL;
  ri__err err;
  if (ri__onnx_import(data, size, "/nonexistent-fuzz-dir", "fuzz", &g, &err) == RI_OK) {
    if (ri__graph_check_ops(g, &err) == RI_OK) (void)ri__graph_infer_shapes(g, 1, &err);
    ri__graph_destroy(g);
  }
  return 0;
}
