/* Fast CPU path when none is compiled in: every node keeps its reference kernel. */
#ifndef RI_HAVE_XNNPACK
#include "backend/cpu/cpu_fast.h"

ri_status ri__cpu_fast_prepare(const ri__graph *g, const ri__backend_cfg *cfg, ri__kernel_fn *kernels,
                               const char **impl, void **state, ri__err *err) {
  *state = NULL;
  return RI_OK;
}
void ri__cpu_fast_release(void *state) {}
ri_status ri__cpu_fast_ctx_create(void *state, ri__pool *pool, void **ctx, ri__err *err) {
  *ctx = NULL;
  return RI_OK;
}
void ri__cpu_fast_ctx_destroy(void *ctx) {}
#else
typedef int ri__cpu_fast_none_unused;
#endif
