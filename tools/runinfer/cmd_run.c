/* runinfer run: the batch image pipeline (decode → preprocess → batch → infer → post-process → write). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "runinfer/pipeline.h"

#define MAX_DEVICES 64

int cmd_run(int argc, char **argv) {
  const char *engine_path = NULL, *onnx = NULL, *input = NULL, *glob = NULL, *dir = NULL, *output = NULL;
  const char *dead = NULL, *metrics = NULL, *prom = NULL, *draw = NULL, *fmt = "seed", *device = NULL;
  int use_stdin = 0, rebuild = 0, ordered = 0, threads = 0, decode_threads = 2, min_batch = 1, max_batch = 0;
  int post_threads = 0;
  int max_wait = 2000, progress = 1, fast_decode = 0, contexts = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int bad = 0;
    if (strcmp(a, "--engine") == 0 && v)
      engine_path = argv[++i];
    else if (strcmp(a, "--onnx") == 0 && v)
      onnx = argv[++i];
    else if (strcmp(a, "--rebuild-if-stale") == 0)
      rebuild = 1;
    else if (strcmp(a, "--input") == 0 && v)
      input = argv[++i];
    else if (strcmp(a, "--glob") == 0 && v)
      glob = argv[++i];
    else if (strcmp(a, "--dir") == 0 && v)
      dir = argv[++i];
    else if (strcmp(a, "--stdin") == 0)
      use_stdin = 1;
    else if (strcmp(a, "--output") == 0 && v)
      output = argv[++i];
    else if (strcmp(a, "--format") == 0 && v)
      fmt = argv[++i];
    else if (strcmp(a, "--dead-letter") == 0 && v)
      dead = argv[++i];
    else if (strcmp(a, "--metrics") == 0 && v)
      metrics = argv[++i];
    else if (strcmp(a, "--prometheus") == 0 && v)
      prom = argv[++i];
    else if (strcmp(a, "--draw") == 0 && v)
      draw = argv[++i];
    else if (strcmp(a, "--ordered") == 0)
      ordered = 1;
    else if (strcmp(a, "--no-progress") == 0)
      progress = 0;
    else if (strcmp(a, "--fast-decode") == 0)
      fast_decode = 1;
    else if (strcmp(a, "--threads") == 0 && v)
      bad = cli_int(argv[++i], 0, 1024, &threads);
    else if (strcmp(a, "--decode-threads") == 0 && v)
      bad = cli_int(argv[++i], 1, 256, &decode_threads);
    else if (strcmp(a, "--post-threads") == 0 && v)
      bad = cli_int(argv[++i], 0, 256, &post_threads);
    else if (strcmp(a, "--device") == 0 && v)
      device = argv[++i];
    else if (strcmp(a, "--contexts") == 0 && v)
      bad = cli_int(argv[++i], 1, 64, &contexts);
    else if (strcmp(a, "--min-batch") == 0 && v)
      bad = cli_int(argv[++i], 1, 65536, &min_batch);
    else if (strcmp(a, "--max-batch") == 0 && v)
      bad = cli_int(argv[++i], 1, 65536, &max_batch);
    else if (strcmp(a, "--max-wait-us") == 0 && v)
      bad = cli_int(argv[++i], 0, 60000000, &max_wait);
    else
      bad = 1;
    if (bad) {
      fprintf(stderr, "runinfer run: bad or unknown option '%s'\n", a);
      return 2;
    }
  }
  int sources = (input != NULL) + (glob != NULL) + (dir != NULL) + use_stdin;
  if (!engine_path || !output || sources != 1) {
    fprintf(stderr,
            "runinfer run: needs --engine, --output and exactly one of --input, --glob, --dir, --stdin\n");
    return 2;
  }
  ri_output_format of;
  if (strcmp(fmt, "seed") == 0)
    of = RI_OUTPUT_SEED;
  else if (strcmp(fmt, "jsonl") == 0)
    of = RI_OUTPUT_JSONL;
  else if (strcmp(fmt, "csv") == 0)
    of = RI_OUTPUT_CSV;
  else {
    fprintf(stderr, "runinfer run: --format expects seed, jsonl or csv\n");
    return 2;
  }
  if (rebuild && !onnx) {
    fprintf(stderr, "runinfer run: --rebuild-if-stale needs --onnx M.onnx\n");
    return 2;
  }
  /* --device: one device, cuda:all (every GPU) or a comma-separated list; one engine per device, the first
   * drives the pipeline and the others are replicas */
  char devs[MAX_DEVICES][32];
  int n_dev = 0;
  if (!device) {
    devs[n_dev++][0] = 0;
  } else if (strcmp(device, "cuda:all") == 0) {
    int n = 0;
    if (ri_device_count("cuda", &n) != RI_OK || n < 1) {
      fprintf(stderr, "runinfer run: --device cuda:all: no CUDA device found (or this build has no CUDA "
                      "backend)\n");
      return 1;
    }
    for (int d = 0; d < n && n_dev < MAX_DEVICES; d++)
      snprintf(devs[n_dev++], sizeof devs[0], "cuda:%d", d);
  } else {
    for (const char *q = device; *q;) {
      size_t len = strcspn(q, ",");
      if (len == 0 || len >= sizeof devs[0] || n_dev == MAX_DEVICES) {
        fprintf(stderr, "runinfer run: bad --device list '%s'\n", device);
        return 2;
      }
      memcpy(devs[n_dev], q, len);
      devs[n_dev++][len] = 0;
      q += len + (q[len] == ',');
    }
  }
  ri_engine_t *engines[MAX_DEVICES] = {0};
  ri_engine_t *e = NULL;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int d = 0; d < n_dev; d++) {
    if (cli_load_engine_on(engine_path, rebuild ? onnx : NULL, threads, devs[d][0] ? devs[d] : NULL,
                           max_batch, &engines[d])) {
      for (int k = 0; k < d; k++)
        ri_engine_destroy(engines[k]);
      return 1;
    }
  }
  e = engines[0];
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double load_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  struct stat st;
  uint64_t engine_bytes = stat(engine_path, &st) == 0 ? (uint64_t)st.st_size : 0;
  ri_pipeline_t *p = NULL;
  int rc = 1;
  ri_status s = ri_pipeline_create(e, &p);
  if (s != RI_OK) {
    cli_fail("run", s, "creating the pipeline");
    goto out;
  }
  for (int d = 1; d < n_dev; d++)
    if ((s = ri_pipeline_add_engine(p, engines[d])) != RI_OK) {
      cli_fail("run", s, ri_pipeline_last_error(p));
      goto out;
    }
  if (max_batch == 0) max_batch = ri_engine_max_batch(e);
  ri_source_kind kind = input  ? RI_SOURCE_FILE_LIST
                        : glob ? RI_SOURCE_GLOB
                        : dir  ? RI_SOURCE_DIRECTORY
                               : RI_SOURCE_STDIN;
  const char *spec = input ? input : glob ? glob : dir ? dir : "-";
  if ((s = ri_pipeline_set_source(p, kind, spec)) != RI_OK ||
      (s = ri_pipeline_set_output(p, output, of)) != RI_OK ||
      (s = ri_pipeline_set_dead_letter(p, dead)) != RI_OK ||
      (s = ri_pipeline_set_batching(p, min_batch, max_batch, max_wait)) != RI_OK ||
      (s = ri_pipeline_set_workers(p, decode_threads, ordered)) != RI_OK ||
      (s = ri_pipeline_set_post_workers(p, post_threads)) != RI_OK ||
      (s = ri_pipeline_set_contexts(p, contexts)) != RI_OK ||
      (s = ri_pipeline_set_metrics(p, metrics, prom)) != RI_OK ||
      (s = ri_pipeline_set_draw_dir(p, draw)) != RI_OK ||
      (s = ri_pipeline_set_fast_decode(p, fast_decode)) != RI_OK ||
      (s = ri_pipeline_set_progress(p, progress)) != RI_OK ||
      (s = ri_pipeline_set_model_info(p, load_ms, engine_bytes)) != RI_OK) {
    cli_fail("run", s, ri_pipeline_last_error(p));
    goto out;
  }
  ri_pipeline_summary sum;
  s = ri_pipeline_run(p, &sum);
  if (s != RI_OK) {
    cli_fail("run", s, ri_pipeline_last_error(p));
    fprintf(stderr, "runinfer: %llu records read, %llu rows written, %llu dead-lettered before the failure\n",
            (unsigned long long)sum.records, (unsigned long long)sum.succeeded,
            (unsigned long long)sum.failed);
    goto out;
  }
  fprintf(
      stderr,
      "runinfer: %llu records: %llu rows written to %s, %llu failed (dead letter), %llu batches, %.2f s\n",
      (unsigned long long)sum.records, (unsigned long long)sum.succeeded, output,
      (unsigned long long)sum.failed, (unsigned long long)sum.batches, sum.wall_seconds);
  rc = sum.failed ? 3 : 0;
out:
  ri_pipeline_destroy(p);
  for (int d = 0; d < n_dev; d++)
    ri_engine_destroy(engines[d]);
  return rc;
}
