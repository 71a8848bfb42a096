/* Pipeline metrics under Apache Beam RunInference's names, plus per-stage timings. Distributions keep every
 * sample (a job's batches number in the thousands to millions; 8 bytes each) so percentiles are exact. */
#ifndef RI_PIPELINE_METRICS_H
#define RI_PIPELINE_METRICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  double *v;
  size_t n, cap;
  double sum, min, max;
  double last; /* the most recent sample, in arrival order (v is sorted when written) */
} ri__dist;

typedef struct {
  pthread_mutex_t mu;
  /* Beam RunInference metric names */
  uint64_t num_inferences; /* records inferred */
  ri__dist inference_batch_latency_micro_secs;
  ri__dist inference_request_batch_size;
  ri__dist inference_request_batch_byte_size;
  double load_model_latency_milli_secs;
  uint64_t model_byte_size;
  uint64_t failed_batches_counter;
  /* stages */
  ri__dist read_decode_us; /* per record: read + decode */
  ri__dist preprocess_us;  /* per record */
  ri__dist queue_wait_us;  /* per record: decoded → batched */
  ri__dist postprocess_us; /* per record */
  ri__dist write_us;       /* per record */
  uint64_t records_in, records_ok, records_failed;
  double wall_seconds;
  int64_t backpressure_us; /* time the source waited on a full queue */
} ri__metrics;

void ri__metrics_init(ri__metrics *m);
void ri__metrics_free(ri__metrics *m);
void ri__dist_add(ri__metrics *m, ri__dist *d, double v); /* thread-safe through m->mu */
/* Writes JSON / Prometheus text; returns 0 on success. */
int ri__metrics_write_json(ri__metrics *m, const char *path);
int ri__metrics_write_prometheus(ri__metrics *m, const char *path);

#endif
