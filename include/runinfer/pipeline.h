/* runinfer: the batch inference pipeline behind `runinfer run`.
 *
 *   source (file list | glob | directory | stdin) → read + decode + preprocess (a pool of threads)
 *   → dynamic batcher (min/max batch, max wait) → inference (one context) → post-processing
 *   (SSD detection or classification, configured by the engine's metadata) → writer (rows, dead letter)
 *
 * Stages run concurrently and are joined by bounded queues, so a fast source never runs ahead of the
 * model by more than the queue capacity (back-pressure). Every input record ends either as one output row
 * or as one dead-letter line naming the stage and the reason; the run's summary counts both.
 *
 * Objects: ri_pipeline_t holds the options and the last error; it borrows the engine (which must outlive
 * it). A pipeline is used by one thread at a time; ri_pipeline_run() blocks until the source is exhausted.
 *
 * Engine metadata read (all optional): "preprocess" (ri_preprocess_spec text), "detect" (ri_detect_config
 * text), "labels" (one label per line, index = class id), "detect.boxes" / "detect.scores" /
 * "detect.anchors" (output names), "task" ("detect" or "classify"). Without "detect" or "task=detect" an
 * engine with a single [N,C] output is treated as a classifier (top-5). Detections already suppressed in
 * the model (EfficientNMS_TRT's outputs: count [N,1] int32, boxes [N,K,4], scores [N,K], classes [N,K] int32)
 * are read directly when the scores output is [N,K]: names from "detect.count" / "detect.boxes" /
 * "detect.scores" / "detect.classes" or the plugin's names (num_detections, detection_boxes,
 * detection_scores, detection_classes); "detect.box_order" is "yxyx" (default) or "xyxy"; the boxes are
 * only mapped to source pixels. docs/design/pipeline.md describes the stages, batching and failures. */
#ifndef RUNINFER_PIPELINE_H
#define RUNINFER_PIPELINE_H

#include <stdint.h>

#include "runinfer/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ri_pipeline ri_pipeline_t;

typedef enum {
  RI_SOURCE_FILE_LIST = 0, /* a text file of paths: one per line, blank lines and '#' comments skipped */
  RI_SOURCE_GLOB = 1,      /* a shell glob pattern (sorted; directories it matches are skipped) */
  RI_SOURCE_DIRECTORY = 2, /* every regular file of a directory, sorted by name (not recursive) */
  RI_SOURCE_STDIN = 3      /* paths on standard input, one per line */
} ri_source_kind;

typedef enum {
  RI_OUTPUT_SEED = 0, /* path;[{"ymin":..,...}] — the reference job's format */
  RI_OUTPUT_JSONL = 1,
  RI_OUTPUT_CSV = 2
} ri_output_format;

typedef struct {
  uint64_t records;   /* inputs read from the source */
  uint64_t succeeded; /* rows written */
  uint64_t failed;    /* dead-letter lines written */
  uint64_t batches;
  double wall_seconds;
} ri_pipeline_summary;

RI_API RI_MUST_USE ri_status ri_pipeline_create(ri_engine_t *engine, ri_pipeline_t **out);
RI_API void ri_pipeline_destroy(ri_pipeline_t *p);
RI_API const char *ri_pipeline_last_error(const ri_pipeline_t *p);

/* spec is copied; for RI_SOURCE_STDIN it is ignored. */
RI_API RI_MUST_USE ri_status ri_pipeline_set_source(ri_pipeline_t *p, ri_source_kind kind, const char *spec);
/* Output rows: written to PATH.tmp and renamed to path when the run completes. */
RI_API RI_MUST_USE ri_status ri_pipeline_set_output(ri_pipeline_t *p, const char *path,
                                                    ri_output_format format);
/* Dead-letter JSONL ({"key":..,"stage":..,"error":..}); default: PATH of the output + ".dead-letter.jsonl".
 */
RI_API RI_MUST_USE ri_status ri_pipeline_set_dead_letter(ri_pipeline_t *p, const char *path);
/* Batching: flush when max_batch records wait, or when at least min_batch wait and the oldest has waited
 * max_wait_us. Defaults: 1, the engine's maximum, 2000 us. */
RI_API RI_MUST_USE ri_status ri_pipeline_set_batching(ri_pipeline_t *p, int min_batch, int max_batch,
                                                      int64_t max_wait_us);
/* Decode threads (default 2); ordered = 1 writes rows in input order (default 0: completion order). */
RI_API RI_MUST_USE ri_status ri_pipeline_set_workers(ri_pipeline_t *p, int decode_threads, int ordered);
/* Post-processing threads (SSD decode + NMS, top-k): 0 (the default) = as many as decode threads. The
 * records of one batch are shared among them. */
RI_API RI_MUST_USE ri_status ri_pipeline_set_post_workers(ri_pipeline_t *p, int post_threads);
/* Inference workers (default 1, at most 64): each forms its own batches from the decoded records and runs
 * them on its own execution context of the engine, so batches overlap: on a GPU the copies of one batch
 * run while another computes (each context has its own stream); on the CPU several single-threaded
 * contexts can beat one multi-threaded context. Every context holds its own activation memory (weights are
 * shared by the engine). Rows are the same whatever the count; with ordered = 0 their order may change. */
RI_API RI_MUST_USE ri_status ri_pipeline_set_contexts(ri_pipeline_t *p, int contexts);
/* Another engine for the same job, e.g. the same model loaded onto another GPU (runinfer run --device
 * cuda:all adds one per GPU): it gets its own ri_pipeline_set_contexts workers, and batches go to whichever
 * worker is free. Its inputs, outputs (dtypes and every dimension but the batch) and max batch must equal
 * those of the pipeline's engine (RI_ERR_SHAPE otherwise). Borrowed: it must outlive the pipeline. At most
 * 63 are added. */
RI_API RI_MUST_USE ri_status ri_pipeline_add_engine(ri_pipeline_t *p, ri_engine_t *engine);
/* Metrics: JSON file and/or Prometheus text file (either may be NULL). */
RI_API RI_MUST_USE ri_status ri_pipeline_set_metrics(ri_pipeline_t *p, const char *json_path,
                                                     const char *prometheus_path);
/* Fast decode (default 0: off). When enabled, JPEGs at least twice the model input's size in both axes
 * are decoded at 1/2, 1/4 or 1/8 size (ri_decoder_set_scale_hint with the input's width and height), which
 * is much cheaper but changes pixel values slightly, so outputs differ a little from a full decode.
 * Reported image sizes and detection boxes stay in full-size pixels. Not applied while a draw directory is
 * set (drawn images are full size). */
RI_API RI_MUST_USE ri_status ri_pipeline_set_fast_decode(ri_pipeline_t *p, int enabled);
/* Write each image with its detections drawn as PNG into dir (NULL: off). */
RI_API RI_MUST_USE ri_status ri_pipeline_set_draw_dir(ri_pipeline_t *p, const char *dir);
/* Model facts the caller knows and the pipeline cannot: the time it took to load the engine (ms, >= 0) and
 * the engine file's size in bytes. Reported in the metrics as Beam's load_model_latency_milli_secs and
 * model_byte_size (0 for both when never set). */
RI_API RI_MUST_USE ri_status ri_pipeline_set_model_info(ri_pipeline_t *p, double load_model_ms,
                                                        uint64_t model_byte_size);
/* Progress line on stderr (rate, ETA) when enabled and stderr is a terminal. */
RI_API RI_MUST_USE ri_status ri_pipeline_set_progress(ri_pipeline_t *p, int enabled);

/* Runs to completion. RI_OK when the job ran (records may still have failed: see summary->failed);
 * an error when the job itself could not run or its output could not be committed. */
RI_API RI_MUST_USE ri_status ri_pipeline_run(ri_pipeline_t *p, ri_pipeline_summary *summary);

#ifdef __cplusplus
}
#endif
#endif
