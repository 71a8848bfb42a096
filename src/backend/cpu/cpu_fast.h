/* Fast CPU path hook. At prepare time the fast path may replace the reference kernel of any node by its own
 * (kernels[i]) and name it (impl[i], a static string); it keeps whatever per-engine state it needs (packed
 * weights, its plan) in *state and per-context state in *ctx. Contexts share the per-engine state read-only.
 *
 * A fast kernel may run a group of consecutive nodes at once: the kernel of the group's first node computes
 * every node of the group (reading the run's shapes and the arena through ri__exec.vals/arena/batch), and
 * the kernels of the group's other nodes do nothing. Nodes outside groups keep the reference kernels, which
 * always see dense NCHW tensors at their own offsets in the arena, so a group must leave every value that a
 * node outside it (or the caller, for graph outputs) reads in that form. Values read only inside a group may
 * live wherever and in whatever layout the fast path likes. When built without a fast path (no
 * RI_HAVE_XNNPACK: cpu_fast_none.c) these are no-ops; RI_CPU_FAST=0 skips the hook at prepare. */
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
