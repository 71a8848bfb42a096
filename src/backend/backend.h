/* Backend vtable: what the engine layer needs from a device. A backend compiles an optimized graph into
 * backend state once per engine (choosing an implementation per node, packing weights), creates per-context
 * execution state, and runs a batch.
 *
 * Shapes for a batch size are resolved by the engine layer (ri__shapes_resolve) and passed to run(): vals
 * has one entry per graph value with dtype and shape for that batch; constants and host-evaluated values
 * carry their data. Activations live in memory the backend owns, at the offsets of the graph's memory plan
 * (ri__value.mem_offset), sized for the engine's maximum batch. */
#ifndef RI_BACKEND_BACKEND_H
#define RI_BACKEND_BACKEND_H

#include "graph/ir.h"
#include "runinfer/types.h"

typedef struct {
  int max_batch;
  int threads; /* 0 = all online CPUs */
  ri_precision precision;
  int device_index;   /* GPU ordinal for device backends */
  int64_t arena_size; /* activation arena bytes at max_batch (from the memory plan) */
  /* The backend may free the data of a constant once it keeps its own copy (packed weights) and no other
   * part of it reads the constant, marking the value released (graph/ir.h). Set for loaded engines, which
   * keep only the backend's copy; an engine that may still be saved needs its constants. */
  int release_weights;
  /* Engine build only (0 and NULL when loading): how much to time candidate implementations (the builder
   * level, 0 = heuristics only, up to 5), and the timing cache to consult and fill (may be NULL). The
   * choices are reported through node_tactic and stored in the engine's nodes. */
  int tune_level;
  struct ri__tcache *tcache;
  /* Engine build only (0 when loading): ri_builder_set_half_accumulation. A backend that takes it keeps its
   * choice in the node tactics it reports, so that loaded engines make the same one. */
  int half_accum;
} ri__backend_cfg;

/* Where the time of one run went, in milliseconds (see ri_context_last_timing in runinfer/engine.h). */
typedef struct {
  double h2d_ms;     /* start of the run until the inputs are on the device (host staging included) */
  double compute_ms; /* the network itself (device time on a GPU) */
  double d2h_ms;     /* end of the compute until the outputs are back in host staging */
  double enqueue_ms; /* host time spent handing the compute to the device */
} ri__run_timing;

/* Memory one context and its engine hold on their device, in bytes (see ri_context_memory). */
typedef struct {
  int64_t weights;     /* the engine's constants on the device, shared by its contexts */
  int64_t activations; /* the context's activation arena, as planned for the engine's maximum batch */
  int64_t other;       /* every other allocation of the context: scratch, staging, workspaces */
} ri__memory_usage;

typedef struct ri__backend_ops {
  const char *name; /* "cpu", "cuda" */
  /* Build/load time: per-node implementation choice and weight preparation. The graph outlives the state.
   * The backend changes the graph only by releasing constants, as cfg->release_weights allows. */
  ri_status (*prepare)(const ri__graph *g, const ri__backend_cfg *cfg, void **state, ri__err *err);
  void (*release)(void *state);
  /* One per execution context: activation arena, scratch, streams, thread pool. */
  ri_status (*ctx_create)(void *state, void **ctx, ri__err *err);
  void (*ctx_destroy)(void *ctx);
  /* Runs one batch. in[i]/out[i] are host buffers of graph input/output i, dense, for shapes in vals. */
  ri_status (*run)(void *ctx, const ri__tensor *vals, int batch, const void *const *in, void *const *out,
                   ri__err *err);
  /* Optional: one line per node describing the chosen implementation (tactic name), or NULL. */
  const char *(*node_impl)(void *state, int node);
  /* Optional: the tactic chosen for a node at prepare, for the engine file's node.tactic (0: none). */
  int32_t (*node_tactic)(void *state, int node);
  /* Optional, for backends whose runs have phases the engine layer cannot see (device transfers): turn
   * per-run timing of ctx on or off, and report the last run's phases. Without them the engine layer times
   * the whole run call as compute (and enqueue) on the host clock. */
  ri_status (*set_timing)(void *ctx, int on, ri__err *err);
  void (*last_timing)(void *ctx, ri__run_timing *t);
  /* Optional: the fingerprint of device `index` that engines built for it record and that loading checks
   * (a device backend: the GPU model and architecture; RI_ERR_DEVICE when the device does not exist), and
   * the number of devices of this kind. Without them the host CPU's fingerprint applies and there is one
   * device. */
  ri_status (*fingerprint)(int index, char *buf, size_t cap, ri__err *err);
  int (*device_count)(void);
  /* Optional: the device memory ctx and its engine hold (allocations the backend makes itself; what the
   * device's libraries keep for their handles is not included). Without it ri_context_memory reports
   * RI_ERR_UNSUPPORTED. */
  void (*memory)(void *ctx, ri__memory_usage *m);
  /* Optional: a buffer of ctx for graph input `index` at the maximum batch (*bytes), which a caller may fill
   * and pass to run() as that input so that the run sends it without copying it first (a device backend's
   * pinned staging). Without it the engine layer gives a plain host buffer of the context. */
  void *(*input_buffer)(void *ctx, int index, size_t *bytes);
  /* Optional: run() with each input given as its batch items, items[i * batch + b] (dense, of the value's
   * per-item size), which the backend gathers into its staging itself (ri_context_run_items). Without it
   * the engine layer gathers them into input_buffer()'s memory (or its own) and calls run(). */
  ri_status (*run_items)(void *ctx, const ri__tensor *vals, int batch, const void *const *items,
                         void *const *out, ri__err *err);
} ri__backend_ops;

extern const ri__backend_ops ri__cpu_backend;
#ifdef RI_HAVE_CUDA
extern const ri__backend_ops ri__cuda_backend;
#endif

#endif
