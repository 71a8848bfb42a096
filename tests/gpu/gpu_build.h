/* Engine building for the GPU tests: one builder call sequence instead of a copy per test. */
#ifndef RI_TESTS_GPU_BUILD_H
#define RI_TESTS_GPU_BUILD_H

#include <stdio.h>

#include "runinfer/engine.h"

/* Optional builder settings of gpu_build_ex (NULL / 0 members: builder defaults). */
typedef struct {
  const char *preprocess;   /* "preprocess" metadata, and device preprocessing on */
  const char *timing_cache; /* timing cache file */
  int half_accum;           /* 1: ri_builder_set_half_accumulation(b, 1) */
  int level;                /* builder level + 1 (0: the default) */
} gpu_build_opts;

/* Builds the ONNX file at path for device ("cpu", "cuda", "cuda:N") at precision prec with the given
 * maximum batch and the options in o (NULL: none; builder defaults otherwise). On failure writes "status:
 * builder's error" into msg. */
static __attribute__((unused)) ri_status gpu_build_ex(const char *path, const char *device, ri_precision prec,
                                                      int max_batch, const gpu_build_opts *o,
                                                      ri_engine_t **out, char *msg, size_t msg_len) {
  ri_builder_t *b = NULL;
  ri_status s = ri_builder_create(&b);
  if (s == RI_OK) s = ri_builder_set_max_batch(b, max_batch);
  if (s == RI_OK) s = ri_builder_set_device(b, device);
  if (s == RI_OK) s = ri_builder_set_precision(b, prec);
  if (s == RI_OK && o && o->preprocess) s = ri_builder_set_metadata(b, "preprocess", o->preprocess);
  if (s == RI_OK && o && o->preprocess) s = ri_builder_set_preprocess_on_device(b, 1);
  if (s == RI_OK && o && o->timing_cache) s = ri_builder_set_timing_cache(b, o->timing_cache);
  if (s == RI_OK && o && o->half_accum) s = ri_builder_set_half_accumulation(b, 1);
  if (s == RI_OK && o && o->level > 0) s = ri_builder_set_builder_level(b, o->level - 1);
  if (s == RI_OK) s = ri_builder_build_onnx(b, path, out);
  if (s != RI_OK && msg && msg_len)
    snprintf(msg, msg_len, "%s: %s", ri_status_str(s), b ? ri_builder_last_error(b) : "no builder");
  ri_builder_destroy(b);
  return s;
}

static __attribute__((unused)) ri_status gpu_build(const char *path, const char *device, ri_precision prec,
                                                   int max_batch, ri_engine_t **out, char *msg,
                                                   size_t msg_len) {
  return gpu_build_ex(path, device, prec, max_batch, NULL, out, msg, msg_len);
}

#endif
