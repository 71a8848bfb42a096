/* runinfer: building, loading, inspecting and running inference engines.
 *
 * Objects and lifetimes
 *   ri_builder_t  options for turning an ONNX model into an engine, and the error text of the last build.
 *   ri_runtime_t  options for loading engine files (.rie), and the error text of the last load.
 *   ri_engine_t   an immutable, optimized model: graph, weights, memory plan, metadata. Created by
 *                 ri_builder_build_onnx() or ri_runtime_load(); it does not keep the source file open or
 *                 mapped and owns copies of everything it needs. An engine loaded (from a file or its
 *                 bytes) on the CPU keeps each large weight tensor once, in the form its kernels read
 *                 (packed), and frees the float copy read from the file; such an engine runs as before but
 *                 cannot be saved again (see ri_engine_save). Built engines keep their float weights.
 *   ri_context_t  per-thread execution state (activation arena, scratch) of one engine. The engine must
 *                 outlive all its contexts. Contexts of one CPU engine share its packed large weights (a
 *                 layer with shared weights runs in one context at a time) and pack small ones each.
 *
 * Thread safety
 *   A builder, a runtime and a context may each be used by one thread at a time. An engine is read-only
 *   after creation: any number of threads may create contexts from it and query it concurrently (but
 *   ri_engine_last_error() then reports the last error of any thread; query errors are rare).
 *
 * Errors
 *   Every fallible call returns ri_status. The text of the last error is kept by the handle the call was
 *   made on and returned by the matching *_last_error() (never NULL; "" when there was none); it stays
 *   valid until the next call on that handle. destroy(NULL) is a no-op. */
#ifndef RUNINFER_ENGINE_H
#define RUNINFER_ENGINE_H

#include "runinfer/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ri_builder ri_builder_t;
typedef struct ri_runtime ri_runtime_t;
typedef struct ri_engine ri_engine_t;
typedef struct ri_context ri_context_t;

/* ---- builder ---------------------------------------------------------------------------------------- */

RI_API RI_MUST_USE ri_status ri_builder_create(ri_builder_t **out);
RI_API void ri_builder_destroy(ri_builder_t *builder);
RI_API const char *ri_builder_last_error(const ri_builder_t *builder);

/* Largest batch size the engine will accept (1 .. 65536; default 1). The model's first input axis must be
 * symbolic for values above 1. One engine serves every batch from 1 to this maximum. */
RI_API RI_MUST_USE ri_status ri_builder_set_max_batch(ri_builder_t *builder, int max_batch);
/* "cpu" (default), "cuda" or "cuda:N". A device this build of the library lacks fails at build time. */
RI_API RI_MUST_USE ri_status ri_builder_set_device(ri_builder_t *builder, const char *device);
RI_API RI_MUST_USE ri_status ri_builder_set_precision(ri_builder_t *builder, ri_precision precision);
/* Worker threads for CPU kernels (0 = number of online CPUs; default 0). Stored as the engine's default. */
RI_API RI_MUST_USE ri_status ri_builder_set_threads(ri_builder_t *builder, int threads);
/* How much the build times candidate implementations on the target device (TensorRT's builder
 * optimization level): 0 = heuristics only, no timing; 1 = the K segmentation and, for the maximum batch's
 * size class, the tile of each GPU convolution; 2 = tiles for every batch size class (1; 2..8; 9..64;
 * 65 and more); 3 (default) .. 5 = more segmentations and more timed runs per candidate. From level 1 on,
 * the cuDNN algorithms are also chosen at build (0: by every context). The chosen tactic of each layer is
 * stored in the engine and shown by ri_engine_describe_json / `runinfer inspect`. CPU engines ignore it.
 * RI_ERR_INVALID_ARG outside 0..5. A new builder starts at $RI_BUILDER_LEVEL when that is set to a level
 * 0..5 (e.g. quick test builds), else at RI_BUILDER_LEVEL_DEFAULT. */
#define RI_BUILDER_LEVEL_DEFAULT 3
RI_API RI_MUST_USE ri_status ri_builder_set_builder_level(ri_builder_t *builder, int level);
/* A timing cache file (copied path; NULL = none, the default): the build reads it first (a missing file is
 * an empty cache; a file that is not a valid timing cache fails the build with RI_ERR_PARSE,
 * RI_ERR_LIMIT or RI_ERR_CHECKSUM naming it), times only candidates it lacks, and writes it back, with the
 * new timings added, when the build succeeds. Entries are keyed by the library version, the device
 * fingerprint, the layer's geometry and the candidate, so one file may serve several models and GPUs. Format:
 * src/core/timing_cache.h. RI_ERR_INVALID_ARG for an empty path. */
RI_API RI_MUST_USE ri_status ri_builder_set_timing_cache(ri_builder_t *builder, const char *path);
/* Attach a metadata key/value (copied) that is stored in the engine file, e.g. "labels" or
 * "preprocess". Setting a key twice replaces the value. */
RI_API RI_MUST_USE ri_status ri_builder_set_metadata(ri_builder_t *builder, const char *key,
                                                     const char *value);

/* Device preprocessing (default off): the model's float32 image input (the input whose shape matches the
 * size and layout of the "preprocess" metadata, which must be set) becomes a uint8 NHWC input of the same
 * name, and the engine computes (x - mean) * scale and the layout change on its device as its first
 * nodes. The engine's stored "preprocess" metadata then describes only the host's part (resize, uint8,
 * NHWC, mean 0, scale 1: the rounded resized pixels), so pipelines that preprocess by the metadata send a
 * quarter of the bytes; "preprocess_device" keeps the original spec. Results differ from host
 * normalisation only by the rounding of resized pixels to integers. Errors (at build): no "preprocess"
 * metadata, a metadata dtype other than float32, no input of the stated shape (RI_ERR_INVALID_ARG). */
RI_API RI_MUST_USE ri_status ri_builder_set_preprocess_on_device(ri_builder_t *builder, int on);

/* Half-precision accumulation (default off): in fp16 CUDA engines, layers for which the backend has a kernel
 * that sums in half precision run it instead of summing in float. Today these are the 3x3 depthwise
 * convolutions with a multiple of 8 channels (half2 multiply-adds from the half-rounded bias; `runinfer
 * inspect` names them dwconv_h2_f16). Faster where those layers are instruction-bound, at a larger error:
 * docs/performance.md gives both for SSD MobileNet v2. The choice is stored per layer in the engine, so a
 * loaded engine computes what the built one did. fp32 engines and CPU engines ignore it. */
RI_API RI_MUST_USE ri_status ri_builder_set_half_accumulation(ri_builder_t *builder, int on);

/* Import, optimize and compile an ONNX model file (weights in external data files are read from the
 * model's directory). Unsupported operators or attributes are reported here with the node name. */
RI_API RI_MUST_USE ri_status ri_builder_build_onnx(ri_builder_t *builder, const char *onnx_path,
                                                   ri_engine_t **out);
/* Same from memory; external data paths are resolved against base_dir (NULL: refused). The bytes are not
 * kept after the call returns. */
RI_API RI_MUST_USE ri_status ri_builder_build_onnx_memory(ri_builder_t *builder, const void *data,
                                                          size_t size, const char *base_dir,
                                                          ri_engine_t **out);

/* ---- runtime (loading engine files) ------------------------------------------------------------------ */

RI_API RI_MUST_USE ri_status ri_runtime_create(ri_runtime_t **out);
RI_API void ri_runtime_destroy(ri_runtime_t *runtime);
RI_API const char *ri_runtime_last_error(const ri_runtime_t *runtime);
/* Override the engine's stored thread count (0 = keep the stored value). */
RI_API RI_MUST_USE ri_status ri_runtime_set_threads(ri_runtime_t *runtime, int threads);

/* Load engines onto `device` ("cpu", "cuda:N"; NULL = the device each engine was built for) instead of
 * their own: a CUDA engine built on one GPU can run on another GPU of the same model (its fingerprint must
 * match that GPU's), never on another kind of device (RI_ERR_INVALID_ARG at load). */
RI_API RI_MUST_USE ri_status ri_runtime_set_device(ri_runtime_t *runtime, const char *device);

/* Number of devices of a kind: "cpu" is 1; "cuda" is the number of CUDA GPUs (0 when this build has no CUDA
 * backend or no driver answers). RI_ERR_INVALID_ARG for another kind. */
RI_API RI_MUST_USE ri_status ri_device_count(const char *kind, int *count);

/* Load an engine file. The file is treated as hostile: every count, offset and size is checked. An engine
 * built for another device or library version fails with RI_ERR_STALE and says why. */
RI_API RI_MUST_USE ri_status ri_runtime_load(ri_runtime_t *runtime, const char *path, ri_engine_t **out);
RI_API RI_MUST_USE ri_status ri_runtime_load_memory(ri_runtime_t *runtime, const void *data, size_t size,
                                                    ri_engine_t **out);

/* ---- engine ------------------------------------------------------------------------------------------- */

RI_API void ri_engine_destroy(ri_engine_t *engine);
RI_API const char *ri_engine_last_error(const ri_engine_t *engine);
/* Write the engine file. RI_ERR_UNSUPPORTED when the engine was loaded (ri_runtime_load or
 * ri_runtime_load_memory) and its CPU backend has freed the float data of weights it packed (see ri_engine_t
 * above): copy the original file instead. */
RI_API RI_MUST_USE ri_status ri_engine_save(ri_engine_t *engine, const char *path);
RI_API int ri_engine_max_batch(const ri_engine_t *engine);
RI_API int ri_engine_num_inputs(const ri_engine_t *engine);
RI_API int ri_engine_num_outputs(const ri_engine_t *engine);
RI_API RI_MUST_USE ri_status ri_engine_input_info(ri_engine_t *engine, int index, ri_tensor_info *info);
RI_API RI_MUST_USE ri_status ri_engine_output_info(ri_engine_t *engine, int index, ri_tensor_info *info);
/* Metadata value for key, or NULL when absent. Owned by the engine. */
RI_API const char *ri_engine_metadata(const ri_engine_t *engine, const char *key);
/* A JSON description (I/O, options, fingerprint, layers with op, tactic and shapes, memory plan). The
 * returned string is owned by the engine and valid until the next ri_engine_describe_json() call. */
RI_API RI_MUST_USE ri_status ri_engine_describe_json(ri_engine_t *engine, const char **json);

/* ---- execution context ----------------------------------------------------------------------------- */

RI_API RI_MUST_USE ri_status ri_context_create(ri_engine_t *engine, ri_context_t **out);
RI_API void ri_context_destroy(ri_context_t *ctx);
RI_API const char *ri_context_last_error(const ri_context_t *ctx);

/* Run a batch of `batch` items (1 .. max batch). inputs[i] points to the i-th engine input, dense,
 * row-major, of the engine's dtype, with the batch axis = batch; outputs[i] likewise receives the i-th
 * output. The call is synchronous: buffers may be reused or freed as soon as it returns. */
RI_API RI_MUST_USE ri_status ri_context_run(ri_context_t *ctx, int batch, const void *const *inputs,
                                            void *const *outputs);

/* Run a batch given as its separate items, as if they were stacked and passed to ri_context_run:
 * items[i * batch + b] points to item b of input i (that input's shape without the batch axis, dense, of
 * the engine's dtype); outputs as for ri_context_run. Saves the caller's stacking copy: on a GPU the items
 * are copied straight into the context's pinned staging, several threads at a time, while the items copied
 * before them are already on their way to the device; elsewhere they are gathered into the context's input
 * buffer. An item may lie in ri_context_input_buffer's memory only at its own place there. Synchronous,
 * same thread-safety as ri_context_run. */
RI_API RI_MUST_USE ri_status ri_context_run_items(ri_context_t *ctx, int batch, const void *const *items,
                                                  void *const *outputs);

/* Per-run timing, off by default. While on, each successful ri_context_run records where its time went;
 * ri_context_last_timing reports the last one. On a GPU the phases are measured with device events (a few
 * per run, recorded on the context's stream; a run replays its CUDA graph either way); on the CPU the whole
 * call is timed on the host clock. Turning timing on or off clears the last record. Same thread-safety as
 * ri_context_run: one thread at a time per context. */
RI_API RI_MUST_USE ri_status ri_context_set_timing(ri_context_t *ctx, int on);

/* Phases of the last successful run while timing was on, in milliseconds (all 0 when it was off, before a
 * run, or after a failed one). Any pointer may be NULL.
 *   h2d_ms      from the start of the run until the inputs are on the device, including their copy into
 *               pinned staging (0 on the CPU);
 *   compute_ms  the network (GPU: device time of the graph replay or kernel sequence; CPU: the whole call);
 *   d2h_ms      from the end of the compute until the outputs are in pinned host staging (0 on the CPU);
 *   enqueue_ms  host time spent handing the compute to the device: launching the CUDA graph, or enqueuing
 *               every kernel on a run that does not replay a graph (CPU: equal to compute_ms).
 * The call's wall time also includes the copies from staging into the caller's buffers. */
RI_API RI_MUST_USE ri_status ri_context_last_timing(const ri_context_t *ctx, double *h2d_ms,
                                                    double *compute_ms, double *d2h_ms, double *enqueue_ms);

/* Device memory of a context and its engine, in bytes, as the backend allocated it:
 *   weights      the engine's constants on the device (shared by all contexts of the engine);
 *   activations  this context's activation arena, planned for the engine's maximum batch in the device's
 *                element types (float16 in fp16 engines), device-side input/output staging included;
 *   other        everything else the context allocated on the device (conversion scratch, values moved
 *                out of the arena, split-K and library workspaces);
 *   total        weights + activations + other.
 * Memory that the CUDA runtime, cuDNN and cuBLASLt keep for their own handles is not included. CPU
 * contexts: RI_ERR_UNSUPPORTED (runinfer bench reports the process's peak RSS there). Any thread. */
typedef struct {
  int64_t weights, activations, other, total;
} ri_memory_usage;
RI_API RI_MUST_USE ri_status ri_context_memory(ri_context_t *ctx, ri_memory_usage *usage);

/* A buffer owned by the context for input `index`, *bytes long (the input at the engine's maximum batch),
 * that the caller may fill (batch items first, dense, as ri_context_run takes them) and pass to
 * ri_context_run as that input. On a GPU it is the context's pinned staging: the run sends it to the device
 * without copying it first, and it is pinned host memory, so writing into it never page-faults. Elsewhere it
 * is an ordinary host buffer of the context. Valid until the context is destroyed; its contents are
 * undefined after a run. Same thread-safety as ri_context_run. */
RI_API RI_MUST_USE ri_status ri_context_input_buffer(ri_context_t *ctx, int index, void **ptr, size_t *bytes);

/* Shape of output `index` for the given batch (dims fully resolved). For an output whose length depends on
 * the data (NonMaxSuppression's selected indices) this is the largest shape, which the buffer passed to
 * ri_context_run must hold; the rows after the real ones are filled with -1. */
RI_API RI_MUST_USE ri_status ri_context_output_shape(ri_context_t *ctx, int batch, int index,
                                                     ri_tensor_info *info);
/* Shape of output `index` as written by the last successful ri_context_run of this context: the same as
 * ri_context_output_shape for that batch, except that an output whose length depends on the data has its
 * first axis set to the number of real rows written. RI_ERR_INVALID_ARG before any successful run (a failed
 * run also clears it) or for a bad index. */
RI_API RI_MUST_USE ri_status ri_context_last_output_shape(ri_context_t *ctx, int index, ri_tensor_info *info);

#ifdef __cplusplus
}
#endif
#endif
