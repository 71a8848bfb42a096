/* Internal layout of the public engine objects. */
#ifndef RI_ENGINE_ENGINE_IMPL_H
#define RI_ENGINE_ENGINE_IMPL_H

#include <pthread.h>

#include "backend/backend.h"
#include "core/err.h"
#include "engine/rie_format.h"
#include "runinfer/engine.h"

struct ri_builder {
  int max_batch;
  int threads;
  ri_precision precision;
  char *device;
  ri__kv *meta;
  int n_meta;
  int builder_level;        /* 0 .. 5 (ri_builder_set_builder_level) */
  char *timing_cache;       /* path or NULL (ri_builder_set_timing_cache) */
  int preprocess_on_device; /* ri_builder_set_preprocess_on_device */
  int half_accum;           /* ri_builder_set_half_accumulation */
  ri__err err;
};

struct ri_runtime {
  int threads;
  char *device; /* ri_runtime_set_device: the device engines are loaded onto instead of their own, or NULL */
  ri__err err;
};

struct ri_engine {
  ri__rie_content c; /* graph + options + metadata, owned */
  const ri__backend_ops *be;
  void *be_state;
  ri__backend_cfg cfg;
  pthread_mutex_t mu; /* guards err and describe_json */
  ri__err err;
  char *describe_json;
};

struct ri_context {
  ri_engine_t *e;
  void *be_ctx;
  int vals_batch;   /* batch size vals is resolved for, 0 = none */
  ri__tensor *vals; /* per graph value, for vals_batch */
  int last_batch;   /* batch of the last successful run, 0 = none (ri_context_last_output_shape) */
  int64_t *rows;    /* per graph output: rows written by the last successful run to outputs of ops with
                       padded rows (ri__op_has_padded_rows), -1 for every other output */
  int timing;       /* ri_context_set_timing */
  ri__run_timing last_timing; /* phases of the last successful run while timing was on, else zeros */
  void **in_bufs; /* per graph input: ri_context_input_buffer's host buffer when the backend has none */
  ri__err err;
};

/* Finishes an engine whose content is filled: checks ops (fills params), resolves shapes at max batch,
 * selects and prepares the backend. Takes ownership of *c (cleared) in all cases. release_weights: the
 * backend may free constants it has packed (ri__backend_cfg), after which the engine cannot be saved. */
ri_status ri__engine_create(ri__rie_content *c, int threads_override, int release_weights, ri_engine_t **out,
                            ri__err *err);
/* Same, for an engine being built: the backend times candidate implementations at tune_level (0 .. 5,
 * 0 = heuristics only) through the timing cache tcache (may be NULL), and the tactics it chose are written
 * into the graph's nodes (node.tactic) so that the engine file keeps them; half_accum is
 * ri_builder_set_half_accumulation's choice (also kept in the nodes' tactics). */
struct ri__tcache;
ri_status ri__engine_create_tuned(ri__rie_content *c, int threads_override, int release_weights,
                                  int tune_level, int half_accum, struct ri__tcache *tcache,
                                  ri_engine_t **out, ri__err *err);

/* The fingerprint of device `index` of backend be (ri__backend_ops.fingerprint, else the host CPU's). */
ri_status ri__device_fingerprint(const ri__backend_ops *be, int index, char *buf, size_t cap, ri__err *err);

/* Parses "cpu", "cuda", "cuda:N". */
ri_status ri__parse_device(const char *device, const ri__backend_ops **be, int *index, ri__err *err);

#endif
