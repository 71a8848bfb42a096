/* Fast CPU path hook. At prepare time the fast path may replace the reference kernel of any node by its own
 * (kernels[i]) and name it (impl[i], a static string); it keeps whatever per-engine state it needs (packed
 * weights) in *state and per-context state in *ctx. Contexts share the per-engine state read-only.
 * Fast kernels get the node's tensors exactly as reference kernels do (NCHW, dense), so any fast kernel can be
 * checked against the reference on the same node. When built without a fast path these are no-ops. */
#ifndef RI_BACKEND_CPU_FAST_H
#define RI_BACKEND_CPU_FAST_H

#include "backend/backend.h"
#include "backend/cpu/kernel.h"

ri_status ri__cpu_fast_prepare(const ri__graph *g, const ri__backend_cfg *cfg, ri__kernel_fn *kernels,
                               const char **impl, void **state, ri__err *err);
void ri__cpu_fast_release(void *state);
ri_status ri__cpu_fast_ctx_create(void *state, ri__pool *pool, void **ctx, ri__err *err);
void ri__cpu_fast_ctx_destroy(void *ctx);

#endif
