/* GPU test of concurrent branches (cuda_branches.c): the SSD heads on the side stream.
 *
 *   test_cuda_branches MODELS_DIR [model]     (default ssd_mobilenet_v2)
 *
 * For fp16 and fp32 and engines of maximum batch 1 and 8: an engine built with RI_CUDA_BRANCHES=1 runs some
 * nodes on the side stream (the 12 SSD predictors: at least 6 are asked for; another model: at least 1)
 * and one built with
 * RI_CUDA_BRANCHES=0 none; on the same inputs their outputs are bit-identical at every batch size up to the
 * maximum (all builds of one comparison share a timing cache, so they choose the same tactics), over 30
 * runs each (eager first run, then CUDA-graph replays: a race between the streams would
 * show as a run that differs), through two contexts of the side-stream engine alternately. The default
 * policy gives side nodes to engines of maximum batch up to 32 and none to one of 256. Prints PASS/FAIL
 * lines and "N passed, M failed". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/backend/cuda/cuda_api.h"
#include "gpu_build.h"
#include "gpu_result.h"
#include "gpu_tensor.h"
#include "runinfer/engine.h"

#define RUNS 30

/* Builds with the given policy. Every build of one comparison shares a timing cache, so that they choose
 * the same tactics (tactics are timed, and K segment lengths change the bits). */
static ri_engine_t *build_with(const char *path, ri_precision prec, int max_batch, const char *policy,
                               const char *cache) {
  char msg[1024] = "";
  ri_engine_t *e = NULL;
  if (policy)
    setenv("RI_CUDA_BRANCHES", policy, 1);
  else
    unsetenv("RI_CUDA_BRANCHES");
  const gpu_build_opts opts = {.timing_cache = cache};
  ri_status s = gpu_build_ex(path, "cuda", prec, max_batch, &opts, &e, msg, sizeof msg);
  unsetenv("RI_CUDA_BRANCHES");
  if (s != RI_OK)
    result(0, "build (RI_CUDA_BRANCHES=%s, max batch %d): %s", policy ? policy : "default", max_batch, msg);
  return e;
}

/* Runs ref once and e RUNS times (two contexts alternately) on the same inputs at `batch`; 1 when every
 * run of e equals ref's outputs bit for bit. */
static int compare(ri_engine_t *ref, ri_engine_t *e, int batch, char *why, size_t cap) {
  ri_tensor_info ti, to[8];
  int no = ri_engine_num_outputs(e);
  if (ri_engine_num_inputs(e) != 1 || no > 8 || ri_engine_input_info(e, 0, &ti) != RI_OK) {
    snprintf(why, cap, "unexpected I/O");
    return 0;
  }
  size_t nin = gpu_numel(&ti, batch);
  float *in = malloc(nin * sizeof(float));
  void *want[8] = {0}, *got[8] = {0};
  size_t bytes[8] = {0};
  int ok = in != NULL;
  uint32_t r = 2024u + (uint32_t)batch;
  for (size_t i = 0; ok && i < nin; i++) {
    r = r * 1664525u + 1013904223u;
    in[i] = (float)(r >> 8) / 16777216.f * 2.f - 1.f;
  }
  for (int k = 0; ok && k < no; k++) {
    ok = ri_engine_output_info(e, k, &to[k]) == RI_OK && to[k].dtype == RI_DTYPE_FLOAT32;
    bytes[k] = gpu_numel(&to[k], batch) * sizeof(float);
    want[k] = ok ? malloc(bytes[k]) : NULL;
    got[k] = ok ? malloc(bytes[k]) : NULL;
    ok = ok && want[k] && got[k];
  }
  ri_context_t *cr = NULL, *c[2] = {NULL, NULL};
  const void *ins[1] = {in};
  ok = ok && ri_context_create(ref, &cr) == RI_OK && ri_context_create(e, &c[0]) == RI_OK &&
       ri_context_create(e, &c[1]) == RI_OK;
  if (ok && ri_context_run(cr, batch, ins, want) != RI_OK) {
    snprintf(why, cap, "reference run: %s", ri_context_last_error(cr));
    ok = 0;
  }
  for (int run = 0; ok && run < RUNS; run++) {
    ri_context_t *cx = c[run % 2];
    for (int k = 0; k < no; k++)
      memset(got[k], 0xff, bytes[k]);
    if (ri_context_run(cx, batch, ins, got) != RI_OK) {
      snprintf(why, cap, "run %d: %s", run, ri_context_last_error(cx));
      ok = 0;
    }
    for (int k = 0; ok && k < no; k++)
      if (memcmp(want[k], got[k], bytes[k]) != 0) {
        snprintf(why, cap, "run %d: output %d differs", run, k);
        ok = 0;
      }
  }
  ri_context_destroy(cr);
  ri_context_destroy(c[0]);
  ri_context_destroy(c[1]);
  for (int k = 0; k < no; k++) {
    free(want[k]);
    free(got[k]);
  }
  free(in);
  return ok;
}

static int g_min_side = 6; /* side nodes expected with RI_CUDA_BRANCHES=1: the 12 SSD predictors */

static void test_one(const char *path, ri_precision prec, const char *pname, int max_batch) {
  char cache[128];
  snprintf(cache, sizeof cache, "/tmp/ri_test_branches_%d_%s_%d.cache", (int)getpid(), pname, max_batch);
  remove(cache);
  ri_engine_t *off = build_with(path, prec, max_batch, "0", cache);
  ri_engine_t *on = build_with(path, prec, max_batch, "1", cache);
  ri_engine_t *dflt = build_with(path, prec, max_batch, NULL, cache);
  remove(cache);
  if (off && on && dflt) {
    int n_off = ri__cuda_engine_side_nodes(off), n_on = ri__cuda_engine_side_nodes(on);
    int n_def = ri__cuda_engine_side_nodes(dflt);
    result(n_off == 0 && n_on >= g_min_side,
           "%s max batch %d: side nodes %d with RI_CUDA_BRANCHES=1, %d with =0", pname, max_batch, n_on,
           n_off);
    result(n_def == (max_batch <= 32 ? n_on : 0), "%s max batch %d: default policy gives %d side nodes",
           pname, max_batch, n_def);
    int batches[3] = {1, max_batch > 2 ? 3 : 1, max_batch};
    for (int i = 0; i < 3 && max_batch <= 8; i++) {
      if (i > 0 && batches[i] == batches[i - 1]) continue;
      char why[512] = "";
      int ok = compare(off, on, batches[i], why, sizeof why);
      result(ok, "%s max batch %d batch %d: %d runs with side nodes equal the in-line engine bit for bit%s%s",
             pname, max_batch, batches[i], RUNS, ok ? "" : ": ", why);
    }
  }
  ri_engine_destroy(off);
  ri_engine_destroy(on);
  ri_engine_destroy(dflt);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_cuda_branches MODELS_DIR [model]\n");
    return 2;
  }
  char path[1024];
  const char *model = argc > 2 ? argv[2] : "ssd_mobilenet_v2";
  snprintf(path, sizeof path, "%s/%s.onnx", argv[1], model);
  if (strcmp(model, "ssd_mobilenet_v2") != 0) g_min_side = 1; /* tiny_ssd: its 4 predictors */
  for (int p = 0; p < 2; p++) {
    ri_precision prec = p ? RI_PRECISION_FP32 : RI_PRECISION_FP16;
    const char *pname = p ? "fp32" : "fp16";
    test_one(path, prec, pname, 1);
    test_one(path, prec, pname, 8);
  }
  /* an engine of max batch 256 gets none by default (only the policy checks: no comparisons there) */
  test_one(path, RI_PRECISION_FP16, "fp16", 256);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
