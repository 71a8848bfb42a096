/* runinfer bench: throughput and latency statistics of an engine on random inputs, reported the way trtexec
 * reports them (min, mean, median, percentiles): the latency of each call, and its phases from
 * ri_context_last_timing (enqueue, host-to-device, compute, device-to-host; on the CPU only the call), with a
 * warning when the copies or the enqueue, not the compute, bound the throughput. It also reports the
 * process's peak resident memory (getrusage's ru_maxrss, Linux's VmHWM) after loading, after creating the
 * context and at the end: the process holds nothing but the engine, one context and the batch's input and
 * output buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"

#define MAX_IO 64

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(const double *sorted, int n, double p) {
  double idx = p / 100.0 * (n - 1);
  int lo = (int)idx;
  int hi = lo + 1 < n ? lo + 1 : lo;
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (idx - lo);
}

enum { PH_LAT, PH_ENQ, PH_H2D, PH_GPU, PH_D2H, N_PH };
static const char *const k_phase_label[N_PH] = {"latency", "enqueue", "h2d", "compute", "d2h"};

typedef struct {
  double min, mean, median, p90, p95, p99, max;
} stats;

/* Sorts v in place and summarises it. */
static stats summarize(double *v, int n) {
  double sum = 0;
  for (int i = 0; i < n; i++)
    sum += v[i];
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  return (stats){v[0], sum / n, pct(v, n, 50), pct(v, n, 90), pct(v, n, 95), pct(v, n, 99), v[n - 1]};
}

static void print_stats(const char *label, const stats *s) {
  printf("%-22s min %.4f mean %.4f median %.4f p90 %.4f p95 %.4f p99 %.4f max %.4f\n", label, s->min, s->mean,
         s->median, s->p90, s->p95, s->p99, s->max);
}

static void json_stats(FILE *f, const char *key, const stats *s) {
  fprintf(f,
          "\"%s\":{\"min\":%.5f,\"mean\":%.5f,\"median\":%.5f,\"p90\":%.5f,\"p95\":%.5f,\"p99\":%.5f,"
          "\"max\":%.5f}",
          key, s->min, s->mean, s->median, s->p90, s->p95, s->p99, s->max);
}

/* Peak resident set size of this process so far, in KiB (0 when unknown). */
static long peak_rss_kib(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0;
}

static void fill_random(void *p, ri_dtype dt, size_t n, unsigned *seed) {
  for (size_t i = 0; i < n; i++) {
    *seed = *seed * 1103515245u + 12345u;
    unsigned r = (*seed >> 8) & 0xFFFF;
    switch (dt) {
    case RI_DTYPE_FLOAT32: ((float *)p)[i] = (float)r / 65535.f * 2.f - 1.f; break;
    case RI_DTYPE_UINT8: ((unsigned char *)p)[i] = (unsigned char)r; break;
    default: memset((char *)p + i * ri_dtype_size(dt), 0, ri_dtype_size(dt)); break;
    }
  }
}

int cmd_bench(int argc, char **argv) {
  const char *engine_path = NULL, *json_path = NULL, *device = NULL;
  int batch = 1, iters = 100, warmup = 10, threads = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int bad = 0;
    if (strcmp(a, "--engine") == 0 && v)
      engine_path = argv[++i];
    else if (strcmp(a, "--device") == 0 && v)
      device = argv[++i];
    else if (strcmp(a, "--json") == 0 && v)
      json_path = argv[++i];
    else if (strcmp(a, "--batch") == 0 && v)
      bad = cli_int(argv[++i], 1, 65536, &batch);
    else if (strcmp(a, "--iterations") == 0 && v)
      bad = cli_int(argv[++i], 1, 10000000, &iters);
    else if (strcmp(a, "--warmup") == 0 && v)
      bad = cli_int(argv[++i], 0, 1000000, &warmup);
    else if (strcmp(a, "--threads") == 0 && v)
      bad = cli_int(argv[++i], 0, 1024, &threads);
    else
      bad = 1;
    if (bad) {
      fprintf(stderr, "runinfer bench: bad or unknown option '%s'\n", a);
      return 2;
    }
  }
  if (!engine_path) {
    fprintf(stderr, "runinfer bench: --engine is required\n");
    return 2;
  }
  ri_engine_t *e = NULL;
  if (cli_load_engine_on(engine_path, NULL, threads, device, 0, &e)) return 1;
  const long rss_load = peak_rss_kib();
  long rss_ctx = 0;
  int rc = 1, ni = ri_engine_num_inputs(e), no = ri_engine_num_outputs(e);
  void *ins[MAX_IO] = {0}, *outs[MAX_IO] = {0};
  double *lat = NULL;
  ri_context_t *ctx = NULL;
  if (batch > ri_engine_max_batch(e)) {
    fprintf(stderr, "runinfer bench: batch %d exceeds the engine's maximum %d\n", batch,
            ri_engine_max_batch(e));
    goto done;
  }
  if (ni > MAX_IO || no > MAX_IO) goto done;
  unsigned seed = 12345;
  for (int i = 0; i < ni; i++) {
    ri_tensor_info t;
    if (ri_engine_input_info(e, i, &t) != RI_OK) goto done;
    size_t n = 1;
    for (int k = 0; k < t.rank; k++)
      n *= (size_t)(t.dims[k] < 0 ? batch : t.dims[k]);
    ins[i] = malloc(n * ri_dtype_size(t.dtype) + 1);
    if (!ins[i]) goto done;
    fill_random(ins[i], t.dtype, n, &seed);
  }
  ri_status s = ri_context_create(e, &ctx);
  if (s != RI_OK) {
    cli_fail("context", s, ri_engine_last_error(e));
    goto done;
  }
  rss_ctx = peak_rss_kib();
  for (int i = 0; i < no; i++) {
    ri_tensor_info t;
    if ((s = ri_context_output_shape(ctx, batch, i, &t)) != RI_OK) {
      cli_fail("bench", s, ri_context_last_error(ctx));
      goto done;
    }
    size_t n = ri_dtype_size(t.dtype);
    for (int k = 0; k < t.rank; k++)
      n *= (size_t)t.dims[k];
    outs[i] = malloc(n + 1);
    if (!outs[i]) goto done;
  }
  for (int i = 0; i < warmup; i++)
    if ((s = ri_context_run(ctx, batch, (const void *const *)ins, outs)) != RI_OK) {
      cli_fail("bench", s, ri_context_last_error(ctx));
      goto done;
    }
  if ((s = ri_context_set_timing(ctx, 1)) != RI_OK) {
    cli_fail("bench", s, ri_context_last_error(ctx));
    goto done;
  }
  lat = malloc(sizeof(double) * (size_t)iters * N_PH);
  if (!lat) goto done;
  double t0 = now_ms();
  for (int i = 0; i < iters; i++) {
    double a = now_ms();
    if ((s = ri_context_run(ctx, batch, (const void *const *)ins, outs)) != RI_OK) {
      cli_fail("bench", s, ri_context_last_error(ctx));
      goto done;
    }
    lat[PH_LAT * iters + i] = now_ms() - a;
    if ((s = ri_context_last_timing(ctx, &lat[PH_H2D * iters + i], &lat[PH_GPU * iters + i],
                                    &lat[PH_D2H * iters + i], &lat[PH_ENQ * iters + i])) != RI_OK) {
      cli_fail("bench", s, ri_context_last_error(ctx));
      goto done;
    }
  }
  double total = now_ms() - t0;
  double compute_total = 0, copy_total = 0;
  for (int i = 0; i < iters; i++) {
    compute_total += lat[PH_GPU * iters + i];
    copy_total += lat[PH_H2D * iters + i] + lat[PH_D2H * iters + i];
  }
  stats st[N_PH];
  for (int p = 0; p < N_PH; p++)
    st[p] = summarize(lat + (size_t)p * iters, iters);
  int on_device = copy_total > 0; /* phases with transfers: the engine runs on a device */
  double thr = batch * iters / (total / 1e3);
  const long rss_end = peak_rss_kib();
  printf("engine %s batch %d iterations %d\n", engine_path, batch, iters);
  printf("throughput: %.2f inferences/s (%.2f batches/s)\n", thr, iters / (total / 1e3));
  printf("latency (ms): min %.4f mean %.4f median %.4f p90 %.4f p95 %.4f p99 %.4f max %.4f\n", st[PH_LAT].min,
         st[PH_LAT].mean, st[PH_LAT].median, st[PH_LAT].p90, st[PH_LAT].p95, st[PH_LAT].p99, st[PH_LAT].max);
  printf("peak RSS: %.1f MiB (after loading %.1f MiB, after creating the context %.1f MiB)\n",
         rss_end / 1024.0, rss_load / 1024.0, rss_ctx / 1024.0);
  if (on_device) {
    printf("phases of each call (ms):\n");
    print_stats("  enqueue (host)", &st[PH_ENQ]);
    print_stats("  H2D (incl. staging)", &st[PH_H2D]);
    print_stats("  GPU compute", &st[PH_GPU]);
    print_stats("  D2H", &st[PH_D2H]);
    printf("throughput without data transfers: %.2f inferences/s (batch / median GPU compute)\n",
           st[PH_GPU].median > 0 ? batch * 1e3 / st[PH_GPU].median : 0.0);
    printf("total host wall time %.3f s, total GPU compute %.3f s, total transfers %.3f s\n", total / 1e3,
           compute_total / 1e3, copy_total / 1e3);
    if (st[PH_H2D].mean + st[PH_D2H].mean > st[PH_GPU].mean)
      printf("warning: transfer-bound: host<->device copies (%.4f ms mean) take longer than the compute "
             "(%.4f ms); a larger batch or inputs that are already on the device would help\n",
             st[PH_H2D].mean + st[PH_D2H].mean, st[PH_GPU].mean);
    if (st[PH_ENQ].mean >= st[PH_GPU].mean)
      printf(
          "warning: enqueue-bound: handing the work to the GPU (%.4f ms mean) takes as long as the compute "
          "(%.4f ms); the GPU waits for the host\n",
          st[PH_ENQ].mean, st[PH_GPU].mean);
  }
  if (json_path) {
    FILE *f = fopen(json_path, "w");
    if (!f) {
      fprintf(stderr, "runinfer bench: cannot write '%s'\n", json_path);
      goto done;
    }
    fprintf(f, "{\"engine\":\"%s\",\"batch\":%d,\"iterations\":%d,\"throughput\":%.4f,", engine_path, batch,
            iters, thr);
    json_stats(f, "latency_ms", &st[PH_LAT]);
    for (int p = PH_ENQ; p < N_PH; p++) {
      char key[32];
      snprintf(key, sizeof key, "%s_ms", k_phase_label[p]);
      fputc(',', f);
      json_stats(f, key, &st[p]);
    }
    fprintf(
        f, ",\"device_phases\":%s,\"peak_rss_kib\":{\"after_load\":%ld,\"after_context\":%ld,\"end\":%ld}}\n",
        on_device ? "true" : "false", rss_load, rss_ctx, rss_end);
    fclose(f);
  }
  rc = 0;
done:
  for (int i = 0; i < MAX_IO; i++) {
    free(ins[i]);
    free(outs[i]);
  }
  free(lat);
  ri_context_destroy(ctx);
  ri_engine_destroy(e);
  return rc;
}
