/* Benchmark of the CUDA backend: device compute time and end-to-end time per batch.
 *
 *   bench_cuda MODEL.onnx [--batches 1,8,64,256] [--precisions fp32,fp16] [--seconds S] [--json FILE]
 * [--profile]
 *
 * For each precision one engine is built with max batch = the largest batch asked for; one context runs
 * every batch size. Each (precision, batch) gets warm-up runs (the first run finds convolution algorithms
 * for the batch bucket, the second captures the CUDA graph), then timed runs until S seconds (default 2)
 * or 200 runs have passed, at least 5. Reported per configuration: the median GPU compute time (CUDA
 * events around the graph replay, excluding host<->device copies), images per second from it, and the
 * median end-to-end time of ri_context_run (host staging, copies, compute, synchronization) with its
 * images per second. --json appends one JSON object per configuration to FILE. --profile adds, per
 * configuration, a per-node device-time profile of eager runs (ri__cuda_context_set_profile), naming the
 * RI_BENCH_TOP slowest nodes (default 15). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_profiler_api.h>

#include "backend/cuda/cuda_api.h"
#include "gpu_bench_args.h"
#include "gpu_tensor.h"
#include "runinfer/engine.h"

#define MAX_IO   16
#define MAX_RUNS 200

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Nodes listed by name in a profile (RI_BENCH_TOP, default 15; 200 lists every node of SSD). */
static int profile_top(void) {
  const char *v = getenv("RI_BENCH_TOP");
  int n = v && *v ? atoi(v) : 15;
  return n < 1 ? 15 : n > 10000 ? 10000 : n;
}

/* Six eager runs with per-node events (the first one's numbers are dropped); the report goes to stdout.
 * The runs are the profiler's range (cudaProfilerStart / Stop): `ncu --profile-from-start off` sees these
 * kernels, launched one by one, and not the build's tuning launches (scripts/gpu/ncu-run.sh). */
static int profile_batch(ri_context_t *ctx, int batch, void **in, void **out) {
  if (ri__cuda_context_set_profile(ctx, 1) != RI_OK) return 1;
  int rc = 0;
  (void)cudaProfilerStart();
  for (int r = 0; r < 6 && rc == 0; r++) {
    if (ri_context_run(ctx, batch, (const void *const *)in, out) != RI_OK) rc = 1;
    if (r == 0 && rc == 0) rc = ri__cuda_context_profile_report(ctx, NULL, 0) != RI_OK;
  }
  (void)cudaProfilerStop();
  if (rc == 0) {
    printf("# per-node profile at batch %d\n", batch);
    rc = ri__cuda_context_profile_report(ctx, stdout, profile_top()) != RI_OK;
  }
  if (ri__cuda_context_set_profile(ctx, 0) != RI_OK) rc = 1;
  return rc;
}

static int bench_precision(const char *model, ri_precision prec, const int *batches, int nb, double seconds,
                           FILE *json, int profile) {
  const char *pname = prec == RI_PRECISION_FP16 ? "fp16" : "fp32";
  int max_batch = 1;
  for (int i = 0; i < nb; i++)
    if (batches[i] > max_batch) max_batch = batches[i];
  ri_builder_t *b = NULL;
  ri_engine_t *e = NULL;
  ri_context_t *ctx = NULL;
  double t0 = now_ms();
  ri_status s = ri_builder_create(&b);
  if (s == RI_OK) s = ri_builder_set_device(b, "cuda");
  if (s == RI_OK) s = ri_builder_set_precision(b, prec);
  if (s == RI_OK) s = ri_builder_set_max_batch(b, max_batch);
  if (s == RI_OK) s = ri_builder_build_onnx(b, model, &e);
  if (s != RI_OK) {
    fprintf(stderr, "bench_cuda: building %s (%s): %s\n", model, pname, b ? ri_builder_last_error(b) : "");
    ri_builder_destroy(b);
    return 1;
  }
  ri_builder_destroy(b);
  double t_build = now_ms() - t0;
  t0 = now_ms();
  s = ri_context_create(e, &ctx);
  double t_ctx = now_ms() - t0;
  if (s != RI_OK || ri__cuda_context_set_timing(ctx, 1) != RI_OK) {
    fprintf(stderr, "bench_cuda: context (%s): %s\n", pname, ri_engine_last_error(e));
    ri_context_destroy(ctx);
    ri_engine_destroy(e);
    return 1;
  }
  printf("# %s %s: build %.0f ms, context %.0f ms (algorithm search at batch %d)\n", model, pname, t_build,
         t_ctx, max_batch);
  int n_in = ri_engine_num_inputs(e), n_out = ri_engine_num_outputs(e), rc = 0;
  if (n_in > MAX_IO || n_out > MAX_IO) {
    fprintf(stderr, "bench_cuda: too many inputs or outputs\n");
    rc = 1;
  }
  for (int bi = 0; rc == 0 && bi < nb; bi++) {
    int batch = batches[bi];
    void *in[MAX_IO] = {0}, *out[MAX_IO] = {0};
    for (int i = 0; i < n_in && rc == 0; i++) {
      ri_tensor_info info;
      if (ri_engine_input_info(e, i, &info) != RI_OK) rc = 1;
      size_t n = gpu_numel(&info, batch) * ri_dtype_size(info.dtype);
      in[i] = malloc(n + 1);
      if (!in[i]) {
        rc = 1;
      } else if (info.dtype == RI_DTYPE_FLOAT32) {
        for (size_t k = 0; k < n / 4; k++)
          ((float *)in[i])[k] = (float)((k * 2654435761u) % 2001u) / 1000.f - 1.f;
      } else {
        memset(in[i], 0, n);
      }
    }
    for (int o = 0; o < n_out && rc == 0; o++) {
      ri_tensor_info info;
      if (ri_context_output_shape(ctx, batch, o, &info) != RI_OK) rc = 1;
      out[o] = malloc(gpu_numel(&info, batch) * ri_dtype_size(info.dtype) + 1);
      if (!out[o]) rc = 1;
    }
    double comp[MAX_RUNS], e2e[MAX_RUNS];
    int runs = 0, graphs = 0;
    for (int w = 0; rc == 0 && w < 3; w++)
      if (ri_context_run(ctx, batch, (const void *const *)in, out) != RI_OK) rc = 1;
    double start = now_ms();
    while (rc == 0 && runs < MAX_RUNS && (runs < 5 || now_ms() - start < seconds * 1e3)) {
      double t = now_ms();
      if (ri_context_run(ctx, batch, (const void *const *)in, out) != RI_OK) {
        rc = 1;
        break;
      }
      e2e[runs] = now_ms() - t;
      float ms = 0.f;
      int graph = 0;
      if (ri__cuda_context_last_timing(ctx, &ms, &graph) != RI_OK) rc = 1;
      comp[runs] = ms;
      graphs += graph;
      runs++;
    }
    if (rc != 0) {
      fprintf(stderr, "bench_cuda: %s batch %d: %s\n", pname, batch, ri_context_last_error(ctx));
    } else {
      double mc = gpu_median(comp, runs), me = gpu_median(e2e, runs);
      printf("%-5s batch %4d: compute %8.3f ms %10.1f img/s | end-to-end %8.3f ms %10.1f img/s | %d runs%s\n",
             pname, batch, mc, batch / (mc / 1e3), me, batch / (me / 1e3), runs,
             graphs == runs ? ", CUDA graph" : ", eager");
      if (json)
        fprintf(
            json,
            "{\"model\":\"%s\",\"precision\":\"%s\",\"max_batch\":%d,\"batch\":%d,\"compute_ms\":%.4f,"
            "\"compute_img_s\":%.1f,"
            "\"e2e_ms\":%.4f,\"e2e_img_s\":%.1f,\"runs\":%d,\"graph\":%s,\"build_ms\":%.0f,\"context_ms\":%."
            "0f}\n",
            model, pname, max_batch, batch, mc, batch / (mc / 1e3), me, batch / (me / 1e3), runs,
            graphs == runs ? "true" : "false", t_build, t_ctx);
    }
    if (rc == 0 && profile && profile_batch(ctx, batch, in, out) != 0) {
      fprintf(stderr, "bench_cuda: profiling %s batch %d: %s\n", pname, batch, ri_context_last_error(ctx));
      rc = 1;
    }
    for (int i = 0; i < MAX_IO; i++) {
      free(in[i]);
      free(out[i]);
    }
    fflush(stdout);
  }
  ri_context_destroy(ctx);
  ri_engine_destroy(e);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr,
            "usage: %s MODEL.onnx [--batches 1,8,64,256] [--precisions fp32,fp16] [--seconds S] [--json "
            "FILE] [--profile]\n",
            argv[0]);
    return 2;
  }
  int batches[16] = {1, 8, 64, 256}, nb = 4;
  int do32 = 1, do16 = 1, profile = 0;
  double seconds = 2.0;
  const char *json_path = NULL;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--batches") == 0 && i + 1 < argc) {
      nb = gpu_parse_batches(argv[++i], batches, 16);
      if (nb < 1) {
        fprintf(stderr, "bench_cuda: bad --batches\n");
        return 2;
      }
    } else if (strcmp(argv[i], "--precisions") == 0 && i + 1 < argc) {
      const char *p = argv[++i];
      do32 = strstr(p, "fp32") != NULL;
      do16 = strstr(p, "fp16") != NULL;
    } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = strtod(argv[++i], NULL);
    } else if (strcmp(argv[i], "--profile") == 0) {
      profile = 1;
    } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      fprintf(stderr, "bench_cuda: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  FILE *json = json_path ? fopen(json_path, "a") : NULL;
  if (json_path && !json) {
    fprintf(stderr, "bench_cuda: cannot open %s\n", json_path);
    return 2;
  }
  int rc = 0;
  if (do16) rc |= bench_precision(argv[1], RI_PRECISION_FP16, batches, nb, seconds, json, profile);
  if (do32) rc |= bench_precision(argv[1], RI_PRECISION_FP32, batches, nb, seconds, json, profile);
  if (json) fclose(json);
  return rc;
}
