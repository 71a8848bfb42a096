/* Internal hooks of the CUDA backend for runinfer's own tools and tests (not part of the public API). */
#ifndef RI_BACKEND_CUDA_CUDA_API_H
#define RI_BACKEND_CUDA_CUDA_API_H

#include <stdio.h>

#include "runinfer/engine.h"

/* Turns device timing of ctx's runs on or off. While on, each ri_context_run records CUDA events around
 * the compute part of the run (everything between the host-to-device copies of the inputs and the
 * device-to-host copies of the outputs: the replayed CUDA graph, or the eager kernel sequence). Returns
 * RI_ERR_INVALID_ARG when ctx is NULL or does not run on the CUDA backend. */
ri_status ri__cuda_context_set_timing(ri_context_t *ctx, int on);

/* Milliseconds of device time of the compute part of ctx's last run (0 when timing was off), and whether
 * that run replayed a CUDA graph (*graph = 1) or ran eagerly (0); graph may be NULL. */
ri_status ri__cuda_context_last_timing(ri_context_t *ctx, float *compute_ms, int *graph);

/* Turns per-node profiling of ctx's runs on or off. While on, runs are eager (no CUDA graph) with CUDA
 * events between nodes, and the device time of every node is accumulated. Returns RI_ERR_INVALID_ARG for
 * a NULL or non-CUDA context, RI_ERR_DEVICE / RI_ERR_NO_MEMORY when the events cannot be created. */
ri_status ri__cuda_context_set_profile(ri_context_t *ctx, int on);

/* Writes the accumulated profile to f (per op and implementation, then the `top` slowest nodes) and
 * resets it; f NULL only resets it. */
ri_status ri__cuda_context_profile_report(ri_context_t *ctx, FILE *f, int top);

/* Number of nodes of a CUDA engine that run on the side stream (cuda_branches.c), or -1 when e is not a
 * CUDA engine. */
int ri__cuda_engine_side_nodes(ri_engine_t *e);

#endif
