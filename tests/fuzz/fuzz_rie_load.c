/* libFuzzer target: engine-file bytes → hostile-input reader → engine creation (op checks, shapes, memory
 * plan validation, backend preparation). Built with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION so checksum
 * mismatches do not stop inputs at the door. */
#include <stddef.h>
#include <stdint.h>

#include "runinfer/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ri_runtime_t *rt = NULL;
  if (ri_runtime_create(&rt) != RI_OK) return 0;
  (void)ri_runtime_set_threads(rt, 1);
  ri_engine_t *e = NULL;
  if (ri_runtime_load_memory(rt, data, size, &e) == RI_OK) ri_engine_destroy(e);
  ri_runtime_destroy(rt);
  return 0;
}
