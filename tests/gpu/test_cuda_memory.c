/* Device memory of one CUDA engine plus one context at a large maximum batch (issue 4's memory bound).
 *
 *   test_cuda_memory MODELS_DIR [model] [max_batch]     (defaults: ssd_mobilenet_v2, 256)
 *
 * For an fp16 and an fp32 engine of the model built with the maximum batch:
 *   1. ri_context_memory reports weights, activations and other bytes, and the total is at most 1.2x
 *      weights + planned activations;
 *   2. the activation arena of the fp16 engine is at most 0.6x the graph's plan in float32 bytes (the
 *      engine's "arena_bytes"): its activations are float16 on the device;
 *   3. the device's free memory (cudaMemGetInfo) drops by at least the accounted total when the engine is
 *      built and the context created (the accounting does not under-report), and by at most 1.2x weights +
 *      planned activations plus LIB_SLACK for what the CUDA libraries keep for their handles (printed);
 *   4. a run at the maximum batch gives, for its first image, the outputs of a batch-1 run of the same
 *      image within TOL (the plan holds at both ends of the batch range);
 *   5. a batch-1 run from the context's input buffer (ri_context_input_buffer: the pinned staging, sent
 *      without a host copy) equals the run from the caller's buffer, bit for bit.
 * One PASS/FAIL line per check; the last line is "N passed, M failed"; exit 1 when anything failed, 2 on a
 * usage error, 77 when the model file is missing. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "gpu_build.h"
#include "gpu_result.h"
#include "gpu_tensor.h"
#include "runinfer/engine.h"

#define MAX_IO    16
#define BOUND     1.2
#define LIB_SLACK ((int64_t)64 << 20)
#define MIB(x)    ((double)(x) / (1024.0 * 1024.0))
#define TOL_FP32  1e-3
#define TOL_FP16  2.5e-2

static int64_t device_free(void) {
  size_t f = 0, t = 0;
  return cudaMemGetInfo(&f, &t) == cudaSuccess ? (int64_t)f : -1;
}

/* The engine's "arena_bytes" (graph plan in graph dtypes) from its JSON description, or -1. */
static int64_t graph_arena(ri_engine_t *e) {
  const char *json = NULL;
  if (ri_engine_describe_json(e, &json) != RI_OK || !json) return -1;
  const char *p = strstr(json, "\"arena_bytes\":");
  return p ? strtoll(p + strlen("\"arena_bytes\":"), NULL, 10) : -1;
}

/* Runs batch `batch` of inputs whose first image is `first` (other images random), into outs. */
static ri_status run_batch(ri_context_t *c, ri_engine_t *e, int batch, float **ins, float **outs) {
  const void *in_p[MAX_IO];
  void *out_p[MAX_IO];
  for (int i = 0; i < ri_engine_num_inputs(e); i++)
    in_p[i] = ins[i];
  for (int i = 0; i < ri_engine_num_outputs(e); i++)
    out_p[i] = outs[i];
  return ri_context_run(c, batch, in_p, out_p);
}

static void check_model(const char *path, const char *model, ri_precision prec, int max_batch) {
  const char *pn = prec == RI_PRECISION_FP16 ? "fp16" : "fp32";
  int64_t free0 = device_free();
  ri_engine_t *e = NULL;
  char msg[1024];
  if (gpu_build(path, "cuda", prec, max_batch, &e, msg, sizeof msg) != RI_OK) {
    fprintf(stderr, "build %s: %s\n", path, msg);
    result(0, "%s %s: engine builds with max batch %d", model, pn, max_batch);
    return;
  }
  ri_context_t *c = NULL;
  ri_status s = ri_context_create(e, &c);
  if (s != RI_OK) {
    result(0, "%s %s: context creation: %s", model, pn, ri_engine_last_error(e));
    ri_engine_destroy(e);
    return;
  }
  int64_t free1 = device_free();
  ri_memory_usage m;
  s = ri_context_memory(c, &m);
  result(s == RI_OK && m.weights > 0 && m.activations > 0 && m.other >= 0 &&
             m.total == m.weights + m.activations + m.other,
         "%s %s: ri_context_memory reports weights %.1f MiB, activations %.1f MiB, other %.1f MiB", model, pn,
         MIB(m.weights), MIB(m.activations), MIB(m.other));
  double planned = (double)(m.weights + m.activations);
  double ratio = planned > 0 ? (double)m.total / planned : 99;
  result(ratio <= BOUND,
         "%s %s max batch %d: total %.1f MiB = %.3fx weights + planned activations (bound %.1f)", model, pn,
         max_batch, MIB(m.total), ratio, BOUND);
  int64_t ga = graph_arena(e);
  if (prec == RI_PRECISION_FP16)
    result(ga > 0 && (double)m.activations <= 0.6 * (double)ga,
           "%s fp16: activation arena %.1f MiB <= 0.6x the float32 graph plan (%.1f MiB)", model,
           MIB(m.activations), MIB(ga));
  int64_t used = free0 >= 0 && free1 >= 0 ? free0 - free1 : -1;
  printf("INFO %s %s: device free memory dropped by %.1f MiB (accounted %.1f MiB; graph plan %.1f MiB)\n",
         model, pn, MIB(used), MIB(m.total), MIB(ga));
  result(used >= m.total - ((int64_t)4 << 20) && (double)used <= BOUND * planned + (double)LIB_SLACK,
         "%s %s: measured device memory %.1f MiB within [accounted, %.1fx planned + %.0f MiB]", model, pn,
         MIB(used), BOUND, MIB(LIB_SLACK));

  /* The plan at both ends of the batch range: image 0 of a full batch against the same image alone. */
  int ni = ri_engine_num_inputs(e), no = ri_engine_num_outputs(e);
  float *ins[MAX_IO] = {0}, *full[MAX_IO] = {0}, *one[MAX_IO] = {0};
  int ok = ni <= MAX_IO && no <= MAX_IO;
  size_t in_n[MAX_IO] = {0}, out_n[MAX_IO] = {0};
  for (int i = 0; ok && i < ni; i++) {
    ri_tensor_info t;
    ok = ri_engine_input_info(e, i, &t) == RI_OK && t.dtype == RI_DTYPE_FLOAT32;
    in_n[i] = ok ? gpu_numel(&t, 1) : 0;
    ins[i] = ok ? malloc(in_n[i] * (size_t)max_batch * sizeof(float)) : NULL;
    ok = ok && ins[i];
    for (size_t k = 0; ok && k < in_n[i] * (size_t)max_batch; k++)
      ins[i][k] = (float)rand() / (float)RAND_MAX;
  }
  for (int i = 0; ok && i < no; i++) {
    ri_tensor_info t;
    ok = ri_engine_output_info(e, i, &t) == RI_OK && t.dtype == RI_DTYPE_FLOAT32;
    out_n[i] = ok ? gpu_numel(&t, 1) : 0;
    full[i] = ok ? malloc(out_n[i] * (size_t)max_batch * sizeof(float)) : NULL;
    one[i] = ok ? malloc(out_n[i] * sizeof(float)) : NULL;
    ok = ok && full[i] && one[i];
  }
  if (ok) ok = run_batch(c, e, max_batch, ins, full) == RI_OK && run_batch(c, e, 1, ins, one) == RI_OK;
  double worst = 0;
  for (int i = 0; ok && i < no; i++) {
    double scale = 0;
    for (size_t k = 0; k < out_n[i]; k++)
      if (fabs(one[i][k]) > scale) scale = fabs(one[i][k]);
    for (size_t k = 0; k < out_n[i]; k++) {
      double d = fabs((double)full[i][k] - one[i][k]) / (scale > 1 ? scale : 1);
      if (!(d <= worst)) worst = d;
    }
  }
  double tol = prec == RI_PRECISION_FP16 ? TOL_FP16 : TOL_FP32;
  result(ok && worst <= tol,
         "%s %s: image 0 of a batch of %d matches it alone (worst %.3g, tolerance %.0e)%s", model, pn,
         max_batch, worst, tol, ok ? "" : ": a run failed");
  /* The context's input buffer (its pinned staging), filled in place and passed as the input, gives the
   * same outputs as the caller's buffer: the batch of 1 again, compared bit for bit. */
  if (ok && ni == 1) {
    void *buf = NULL;
    size_t cap = 0;
    ri_status bs = ri_context_input_buffer(c, 0, &buf, &cap);
    int same = bs == RI_OK && buf && cap >= in_n[0] * (size_t)max_batch * sizeof(float);
    float *again[MAX_IO] = {0};
    for (int i = 0; same && i < no; i++)
      same = (again[i] = malloc(out_n[i] * sizeof(float))) != NULL;
    if (same) {
      memcpy(buf, ins[0], in_n[0] * sizeof(float));
      float *in_view[1] = {buf};
      same = run_batch(c, e, 1, in_view, again) == RI_OK;
    }
    for (int i = 0; same && i < no; i++)
      same = memcmp(again[i], one[i], out_n[i] * sizeof(float)) == 0;
    result(same, "%s %s: a run from the context's input buffer (%zu bytes) equals the run from the caller's",
           model, pn, cap);
    for (int i = 0; i < MAX_IO; i++)
      free(again[i]);
  }
  if (!ok) fprintf(stderr, "%s\n", ri_context_last_error(c));
  for (int i = 0; i < MAX_IO; i++) {
    free(ins[i]);
    free(full[i]);
    free(one[i]);
  }
  ri_context_destroy(c);
  ri_engine_destroy(e);
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: test_cuda_memory MODELS_DIR [model] [max_batch]\n");
    return 2;
  }
  const char *model = argc > 2 ? argv[2] : "ssd_mobilenet_v2";
  int max_batch = argc > 3 ? atoi(argv[3]) : 256;
  if (max_batch < 1 || max_batch > 65536) {
    fprintf(stderr, "test_cuda_memory: max_batch must be 1 .. 65536\n");
    return 2;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.onnx", argv[1], model);
  FILE *f = fopen(path, "rb");
  if (!f) {
    printf("SKIP %s not found\n", path);
    return 77;
  }
  fclose(f);
  srand(7);
  cudaFree(0); /* the CUDA context exists before the first measurement */
  check_model(path, model, RI_PRECISION_FP16, max_batch);
  check_model(path, model, RI_PRECISION_FP32, max_batch);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
