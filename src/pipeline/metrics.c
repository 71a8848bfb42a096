#include "pipeline/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

void ri__metrics_init(ri__metrics *m) {
  memset(m, 0, sizeof *m);
  pthread_mutex_init(&m->mu, NULL);
}

static void dist_free(ri__dist *d) { ri__free(d->v); }

void ri__metrics_free(ri__metrics *m) {
  dist_free(&m->inference_batch_latency_micro_secs);
  dist_free(&m->inference_request_batch_size);
  dist_free(&m->inference_request_batch_byte_size);
  dist_free(&m->read_decode_us);
  dist_free(&m->preprocess_us);
  dist_free(&m->queue_wait_us);
  dist_free(&m->postprocess_us);
  dist_free(&m->write_us);
  pthread_mutex_destroy(&m->mu);
}

void ri__dist_add(ri__metrics *m, ri__dist *d, double v) {
  pthread_mutex_lock(&m->mu);
  if (d->n == d->cap) {
    size_t nc = d->cap ? d->cap * 2 : 256;
    double *p = ri__realloc(d->v, nc * sizeof(double));
    if (p) {
      d->v = p;
      d->cap = nc;
    }
  }
  if (d->n < d->cap) d->v[d->n++] = v; /* on OOM the sample is dropped from percentiles only */
  if (d->n == 1 || v < d->min) d->min = v;
  if (d->n == 1 || v > d->max) d->max = v;
  d->sum += v;
  d->last = v;
  pthread_mutex_unlock(&m->mu);
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(const ri__dist *d, double p) {
  if (!d->n) return 0;
  double idx = p / 100.0 * (double)(d->n - 1);
  size_t lo = (size_t)idx, hi = lo + 1 < d->n ? lo + 1 : lo;
  return d->v[lo] + (d->v[hi] - d->v[lo]) * (idx - (double)lo);
}

/* histogram = 1 adds {"value": count, ...} over the (sorted) samples: for small integer samples such as batch
 * sizes, where it is short (at most one entry per distinct value) and tells which sizes occurred. */
static void dist_json(FILE *f, const char *name, ri__dist *d, int histogram, int last) {
  if (d->n) qsort(d->v, d->n, sizeof(double), cmp_d);
  fprintf(f,
          "  \"%s\": {\"count\": %zu, \"sum\": %.3f, \"mean\": %.3f, \"min\": %.3f, \"max\": %.3f, \"p50\": "
          "%.3f, "
          "\"p90\": %.3f, \"p99\": %.3f, \"last\": %.3f",
          name, d->n, d->sum, d->n ? d->sum / (double)d->n : 0.0, d->min, d->max, pct(d, 50), pct(d, 90),
          pct(d, 99), d->last);
  if (histogram) {
    fprintf(f, ", \"histogram\": {");
    for (size_t i = 0; i < d->n;) {
      size_t j = i;
      while (j < d->n && d->v[j] == d->v[i])
        j++;
      fprintf(f, "%s\"%.0f\": %zu", i ? ", " : "", d->v[i], j - i);
      i = j;
    }
    fprintf(f, "}");
  }
  fprintf(f, "}%s\n", last ? "" : ",");
}

int ri__metrics_write_json(ri__metrics *m, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return 1;
  pthread_mutex_lock(&m->mu);
  fprintf(f, "{\n");
  fprintf(f, "  \"num_inferences\": %llu,\n", (unsigned long long)m->num_inferences);
  fprintf(f, "  \"failed_batches_counter\": %llu,\n", (unsigned long long)m->failed_batches_counter);
  fprintf(f, "  \"load_model_latency_milli_secs\": %.3f,\n", m->load_model_latency_milli_secs);
  fprintf(f, "  \"model_byte_size\": %llu,\n", (unsigned long long)m->model_byte_size);
  fprintf(f, "  \"records_in\": %llu,\n  \"records_ok\": %llu,\n  \"records_failed\": %llu,\n",
          (unsigned long long)m->records_in, (unsigned long long)m->records_ok,
          (unsigned long long)m->records_failed);
  fprintf(f, "  \"wall_seconds\": %.6f,\n  \"source_backpressure_us\": %lld,\n", m->wall_seconds,
          (long long)m->backpressure_us);
  dist_json(f, "inference_batch_latency_micro_secs", &m->inference_batch_latency_micro_secs, 0, 0);
  dist_json(f, "inference_request_batch_size", &m->inference_request_batch_size, 1, 0);
  dist_json(f, "inference_request_batch_byte_size", &m->inference_request_batch_byte_size, 0, 0);
  dist_json(f, "stage_read_decode_micro_secs", &m->read_decode_us, 0, 0);
  dist_json(f, "stage_preprocess_micro_secs", &m->preprocess_us, 0, 0);
  dist_json(f, "stage_queue_wait_micro_secs", &m->queue_wait_us, 0, 0);
  dist_json(f, "stage_postprocess_micro_secs", &m->postprocess_us, 0, 0);
  dist_json(f, "stage_write_micro_secs", &m->write_us, 0, 1);
  fprintf(f, "}\n");
  pthread_mutex_unlock(&m->mu);
  return fclose(f) != 0;
}

static void dist_prom(FILE *f, const char *name, ri__dist *d) {
  if (d->n) qsort(d->v, d->n, sizeof(double), cmp_d);
  fprintf(f, "# TYPE runinfer_%s summary\n", name);
  fprintf(f, "runinfer_%s{quantile=\"0.5\"} %.3f\n", name, pct(d, 50));
  fprintf(f, "runinfer_%s{quantile=\"0.9\"} %.3f\n", name, pct(d, 90));
  fprintf(f, "runinfer_%s{quantile=\"0.99\"} %.3f\n", name, pct(d, 99));
  fprintf(f, "runinfer_%s_sum %.3f\nruninfer_%s_count %zu\n", name, d->sum, name, d->n);
}

int ri__metrics_write_prometheus(ri__metrics *m, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return 1;
  pthread_mutex_lock(&m->mu);
  fprintf(f, "# TYPE runinfer_num_inferences counter\nruninfer_num_inferences %llu\n",
          (unsigned long long)m->num_inferences);
  fprintf(f, "# TYPE runinfer_failed_batches_counter counter\nruninfer_failed_batches_counter %llu\n",
          (unsigned long long)m->failed_batches_counter);
  fprintf(
      f, "# TYPE runinfer_load_model_latency_milli_secs gauge\nruninfer_load_model_latency_milli_secs %.3f\n",
      m->load_model_latency_milli_secs);
  fprintf(f, "# TYPE runinfer_model_byte_size gauge\nruninfer_model_byte_size %llu\n",
          (unsigned long long)m->model_byte_size);
  fprintf(f, "# TYPE runinfer_records_failed counter\nruninfer_records_failed %llu\n",
          (unsigned long long)m->records_failed);
  dist_prom(f, "inference_batch_latency_micro_secs", &m->inference_batch_latency_micro_secs);
  dist_prom(f, "inference_request_batch_size", &m->inference_request_batch_size);
  dist_prom(f, "inference_request_batch_byte_size", &m->inference_request_batch_byte_size);
  pthread_mutex_unlock(&m->mu);
  return fclose(f) != 0;
}
