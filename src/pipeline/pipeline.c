/* The pipeline's stage threads and their wiring (see include/runinfer/pipeline.h). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/strbuf.h"
#include "pipeline/draw.h"
#include "pipeline/metrics.h"
#include "pipeline/postprocess.h"
#include "pipeline/queue.h"
#include "pipeline/record.h"
#include "pipeline/sink.h"
#include "pipeline/source.h"
#include "runinfer/pipeline.h"

#define RI__QUEUE_CAP 256

struct ri_pipeline {
  ri_engine_t *engine;
  ri_source_kind source_kind;
  char *source_spec;
  char *output, *dead_letter, *metrics_json, *metrics_prom, *draw_dir;
  ri_output_format format;
  int min_batch, max_batch;
  int64_t max_wait_us;
  int decode_threads, ordered, progress;
  int post_threads;       /* 0: as many as decode threads */
  int contexts;           /* inference workers per engine, each with its own execution context */
  ri_engine_t **replicas; /* ri_pipeline_add_engine: more engines (borrowed), e.g. one per GPU */
  int n_replicas;
  int fast_decode;      /* decoders get the model input size as their scale hint (not while drawing) */
  double load_model_ms; /* reported under Beam's load_model_latency_milli_secs */
  uint64_t model_bytes; /* reported under Beam's model_byte_size */
  ri__err err;
};

/* State shared by the stage threads of one run. */
typedef struct {
  ri_pipeline_t *p;
  ri_preprocess_spec spec;
  size_t item_bytes;
  ri__queue q_read, q_batch, q_post, q_write;
  int post_threads;
  ri__metrics m;
  ri__postproc pp;
  ri_context_t **ctxs; /* one per inference worker: p->contexts per engine */
  int n_ctxs;
  int n_outputs;
  size_t out_item_bytes[64];
  ri__err src_err, infer_err;
  int src_failed, infer_failed;
  uint64_t batches; /* guarded by m.mu */
  long size_hint;
} run_state;

/* One inference worker: forms its own batches from q_batch and runs them on its context. */
typedef struct {
  run_state *rs;
  ri_context_t *ctx;
} infer_worker;

ri_status ri_pipeline_create(ri_engine_t *engine, ri_pipeline_t **out) {
  if (!engine || !out) return RI_ERR_INVALID_ARG;
  ri_pipeline_t *p = ri__calloc(1, sizeof *p);
  if (!p) return RI_ERR_NO_MEMORY;
  p->engine = engine;
  p->min_batch = 1;
  p->max_batch = ri_engine_max_batch(engine);
  p->max_wait_us = 2000;
  p->decode_threads = 2;
  p->contexts = 1;
  *out = p;
  return RI_OK;
}

void ri_pipeline_destroy(ri_pipeline_t *p) {
  if (!p) return;
  ri__free(p->source_spec);
  ri__free(p->output);
  ri__free(p->dead_letter);
  ri__free(p->metrics_json);
  ri__free(p->metrics_prom);
  ri__free(p->draw_dir);
  ri__free(p->replicas);
  ri__free(p);
}

const char *ri_pipeline_last_error(const ri_pipeline_t *p) { return p ? p->err.msg : ""; }

static ri_status set_str(ri_pipeline_t *p, char **dst, const char *v) {
  char *c = NULL;
  if (v && !(c = ri__strdup(v))) return RI__OOM(&p->err);
  ri__free(*dst);
  *dst = c;
  return RI_OK;
}

ri_status ri_pipeline_set_source(ri_pipeline_t *p, ri_source_kind kind, const char *spec) {
  if (!p || (kind != RI_SOURCE_STDIN && !spec)) return RI_ERR_INVALID_ARG;
  ri__err_clear(&p->err);
  if ((unsigned)kind > RI_SOURCE_STDIN)
    return ri__err_set(&p->err, RI_ERR_INVALID_ARG, "unknown source kind");
  p->source_kind = kind;
  return set_str(p, &p->source_spec, spec ? spec : "-");
}

ri_status ri_pipeline_set_output(ri_pipeline_t *p, const char *path, ri_output_format format) {
  if (!p || !path) return RI_ERR_INVALID_ARG;
  ri__err_clear(&p->err);
  if ((unsigned)format > RI_OUTPUT_CSV)
    return ri__err_set(&p->err, RI_ERR_INVALID_ARG, "unknown output format");
  p->format = format;
  return set_str(p, &p->output, path);
}

ri_status ri_pipeline_set_dead_letter(ri_pipeline_t *p, const char *path) {
  if (!p) return RI_ERR_INVALID_ARG;
  ri__err_clear(&p->err);
  return set_str(p, &p->dead_letter, path);
}

ri_status ri_pipeline_set_batching(ri_pipeline_t *p, int min_batch, int max_batch, int64_t max_wait_us) {
  if (!p) return RI_ERR_INVALID_ARG;
  ri__err_clear(&p->err);
  int emax = ri_engine_max_batch(p->engine);
  if (max_batch < 1 || max_batch > emax)
    return ri__err_set(&p->err, RI_ERR_INVALID_ARG, "max batch %d is outside 1..%d (the engine's maximum)",
                       max_batch, emax);
  if (min_batch < 1 || min_batch > max_batch)
    return ri__err_set(&p->err, RI_ERR_INVALID_ARG, "min batch %d is outside 1..%d", min_batch, max_batch);
  if (max_wait_us < 0 || max_wait_us > 60000000)
    return ri__err_set(&p->err, RI_ERR_INVALID_ARG, "max wait %lld us is outside 0..60 s",
                       (long long)max_wait_us);
  p->min_batch = min_batch;
  p->max_batch = max_batch;
  p->max_wait_us = max_wait_us;
  return RI_OK;
}

ri_status ri_pipeline_set_post_workers(ri_pipeline_t *p, int post_threads) {
  if (!p) return RI_ERR_INVALID_ARG;
  ri__err_clear(&p->err);
  if (post_threads < 0 || post_threads > 256)
    return ri__err_set(&p->err, RI_ERR_INVALID_ARG, "post-processing threads %d is outside 0..256",
                       post_threads);
  p->post_threads = post_threads;
  return RI_OK;
}

ri_status ri_pipeline_set_workers(ri_pipeline_t *p, int decode_threads, int ordered) {
  if (!p) return RI_ERR_INVALID_ARG;
  ri__err_clear(&p->err);
  if (decode_threads < 1 || decode_threads > 256)
    return ri__err_set(&p->err, RI_ERR_INVALID_ARG, "decode threads %d is outside 1..256", decode_threads);
  p->decode_threads = decode_threads;
  p->ordered = ordered != 0;
  return RI_OK;
}

ri_status ri_pipeline_set_contexts(ri_pipeline_t *p, int contexts) {
  if (!p) return RI_ERR_INVALID_ARG;
  ri__err_clear(&p->err);
  if (contexts < 1 || contexts > 64)
    return ri__err_set(&p->err, RI_ERR_INVALID_ARG, "inference contexts %d is outside 1..64", contexts);
  p->contexts = contexts;
  return RI_OK;
}

/* Whether engines a and b take the same input and give the same outputs (names aside): dtypes and every
 * dimension but the batch. */
static ri_status same_io(ri_engine_t *a, ri_engine_t *b, ri__err *err) {
  int n[2] = {ri_engine_num_inputs(a), ri_engine_num_outputs(a)};
  if (ri_engine_num_inputs(b) != n[0] || ri_engine_num_outputs(b) != n[1])
    return ri__err_set(err, RI_ERR_SHAPE,
                       "the added engine has %d inputs and %d outputs, the pipeline's %d and %d",
                       ri_engine_num_inputs(b), ri_engine_num_outputs(b), n[0], n[1]);
  for (int io = 0; io < 2; io++)
    for (int i = 0; i < n[io]; i++) {
      ri_tensor_info x, y;
      RI__TRY(io ? ri_engine_output_info(a, i, &x) : ri_engine_input_info(a, i, &x));
      RI__TRY(io ? ri_engine_output_info(b, i, &y) : ri_engine_input_info(b, i, &y));
      int same = x.dtype == y.dtype && x.rank == y.rank;
      for (int k = 1; same && k < x.rank; k++)
        same = x.dims[k] == y.dims[k];
      if (!same)
        return ri__err_set(err, RI_ERR_SHAPE,
                           "the added engine's %s %d ('%s') differs from the pipeline's ('%s')",
                           io ? "output" : "input", i, y.name, x.name);
    }
  if (ri_engine_max_batch(b) != ri_engine_max_batch(a))
    return ri__err_set(err, RI_ERR_SHAPE, "the added engine's max batch is %d, the pipeline's engine's %d",
                       ri_engine_max_batch(b), ri_engine_max_batch(a));
  return RI_OK;
}

ri_status ri_pipeline_add_engine(ri_pipeline_t *p, ri_engine_t *engine) {
  if (!p || !engine) return RI_ERR_INVALID_ARG;
  ri__err_clear(&p->err);
  if (p->n_replicas >= 63) return ri__err_set(&p->err, RI_ERR_LIMIT, "more than 64 engines in one pipeline");
  RI__TRY(same_io(p->engine, engine, &p->err));
  ri_engine_t **r = ri__realloc(p->replicas, (size_t)(p->n_replicas + 1) * sizeof *r);
  if (!r) return RI__OOM(&p->err);
  r[p->n_replicas++] = engine;
  p->replicas = r;
  return RI_OK;
}

ri_status ri_pipeline_set_metrics(ri_pipeline_t *p, const char *json_path, const char *prometheus_path) {
  if (!p) return RI_ERR_INVALID_ARG;
  ri__err_clear(&p->err);
  RI__TRY(set_str(p, &p->metrics_json, json_path));
  return set_str(p, &p->metrics_prom, prometheus_path);
}

ri_status ri_pipeline_set_fast_decode(ri_pipeline_t *p, int enabled) {
  if (!p) return RI_ERR_INVALID_ARG;
  ri__err_clear(&p->err);
  p->fast_decode = enabled != 0;
  return RI_OK;
}

ri_status ri_pipeline_set_draw_dir(ri_pipeline_t *p, const char *dir) {
  if (!p) return RI_ERR_INVALID_ARG;
  ri__err_clear(&p->err);
  return set_str(p, &p->draw_dir, dir);
}

ri_status ri_pipeline_set_model_info(ri_pipeline_t *p, double load_model_ms, uint64_t model_byte_size) {
  if (!p) return RI_ERR_INVALID_ARG;
  ri__err_clear(&p->err);
  if (!(load_model_ms >= 0 && load_model_ms < 1e12))
    return ri__err_set(&p->err, RI_ERR_INVALID_ARG,
                       "model load time %g ms is not a finite non-negative number", load_model_ms);
  p->load_model_ms = load_model_ms;
  p->model_bytes = model_byte_size;
  return RI_OK;
}

ri_status ri_pipeline_set_progress(ri_pipeline_t *p, int enabled) {
  if (!p) return RI_ERR_INVALID_ARG;
  p->progress = enabled != 0;
  return RI_OK;
}

/* ---- stage: source ---- */
static void *source_thread(void *arg) {
  run_state *rs = arg;
  ri__source *src = NULL;
  if (ri__source_open(rs->p->source_kind, rs->p->source_spec, &src, &rs->src_err) != RI_OK) {
    rs->src_failed = 1;
    ri__queue_producer_done(&rs->q_read);
    return NULL;
  }
  uint64_t seq = 0;
  for (;;) {
    char *key = NULL;
    size_t len = 0;
    int rc = ri__source_next(src, &key, &len, &rs->src_err);
    if (rc <= 0) {
      if (rc < 0) rs->src_failed = 1;
      break;
    }
    ri__record *r = ri__calloc(1, sizeof *r);
    if (!r) {
      ri__free(key);
      RI__OOM(&rs->src_err);
      rs->src_failed = 1;
      break;
    }
    r->seq = seq++;
    r->key = key;
    r->key_len = len;
    r->t_source_us = ri__now_us();
    if (!ri__queue_push(&rs->q_read, r)) {
      ri__record_free(r);
      break;
    }
  }
  pthread_mutex_lock(&rs->m.mu);
  rs->m.records_in = seq;
  pthread_mutex_unlock(&rs->m.mu);
  ri__source_close(src);
  ri__queue_producer_done(&rs->q_read);
  return NULL;
}

/* ---- stage: read + decode + preprocess ---- */
static void *decode_thread(void *arg) {
  run_state *rs = arg;
  ri_decoder_t *dec = NULL;
  int have_dec = ri_decoder_create(&dec) == RI_OK;
  /* Drawn images keep their full size: the detections are mapped to full-size pixels. */
  if (have_dec && rs->p->fast_decode && !rs->p->draw_dir) {
    ri_status hs = ri_decoder_set_scale_hint(dec, rs->spec.width, rs->spec.height);
    (void)hs; /* never refused (the spec's sides are 1..16384); a refusal would mean full-size decoding */
  }
  void *item;
  while (ri__queue_pop(&rs->q_read, &item)) {
    ri__record *r = item;
    int64_t t0 = ri__now_us();
    int loaded = 0;
    if (!have_dec) {
      ri__record_fail(r, "decode", "out of memory creating a decoder");
    } else {
      /* Decoded into the decoder: JPEGs as YCbCr planes that preprocessing resizes before converting them to
       * RGB (vision.h, ri_decoder_load_file), everything else as RGB. */
      ri_status s = ri_decoder_load_file(dec, r->key);
      if (s != RI_OK)
        ri__record_fail(r, (s == RI_ERR_IO || s == RI_ERR_NOT_FOUND) ? "read" : "decode",
                        ri_decoder_last_error(dec));
      loaded = s == RI_OK;
    }
    int64_t t1 = ri__now_us();
    if (loaded) {
      /* Sizes and the box mapping refer to the full upright image, also after a fast decode. */
      ri_decoder_last_full_size(dec, &r->width, &r->height);
      r->input = ri__aligned_alloc(rs->item_bytes);
      if (!r->input)
        ri__record_fail(r, "preprocess", "out of memory for the input tensor");
      else if (ri_decoder_preprocess_loaded(dec, &rs->spec, r->input, &r->transform) != RI_OK)
        ri__record_fail(r, "preprocess", ri_decoder_last_error(dec));
    }
    int64_t t2 = ri__now_us();
    /* The picture to draw on is a second, RGB decode of the file, so that the model input is made the same
     * way with and without --draw; its time counts as decoding. */
    if (rs->p->draw_dir && !r->stage) {
      ri_image *img = NULL;
      if (ri_decoder_decode_file(dec, r->key, &img) != RI_OK)
        ri__record_fail(r, "decode", ri_decoder_last_error(dec));
      r->image = img;
    }
    int64_t t3 = ri__now_us();
    r->decode_us = (t1 - t0) + (t3 - t2);
    r->preprocess_us = t2 - t1;
    r->t_decoded_us = t3;
    if (!r->stage) {
      ri__dist_add(&rs->m, &rs->m.read_decode_us, (double)r->decode_us);
      ri__dist_add(&rs->m, &rs->m.preprocess_us, (double)r->preprocess_us);
    }
    if (!ri__queue_push(&rs->q_batch, r)) ri__record_free(r);
  }
  ri_decoder_destroy(dec);
  ri__queue_producer_done(&rs->q_batch);
  return NULL;
}

/* ---- stage: batcher + inference ---- */

/* A batch handed from the inference thread to the post-processing workers: its records and the engine
 * outputs for them (owned by the job, so inference of the next batch can start at once). The job is pushed
 * once per record; each pop claims the next record (next), and whoever finishes the last one (done) frees
 * the job, so the records of one large batch are post-processed by all workers at once. */
typedef struct {
  ri__record **recs;
  int n;
  int ok; /* inference succeeded: outs hold n items */
  void *outs[64];
  atomic_int next, done;
} batch_job;

static void job_free(batch_job *j) {
  if (!j) return;
  for (int i = 0; i < 64; i++)
    ri__aligned_free(j->outs[i]);
  ri__free(j->recs);
  ri__free(j);
}

static void pass_to_writer(run_state *rs, ri__record *r) {
  ri__aligned_free(r->input);
  r->input = NULL;
  if (!ri__queue_push(&rs->q_write, r)) ri__record_free(r);
}

/* Runs records [0, n) of recs as one batch into outs (laid out for n items); when the device runs out of
 * memory for a batch of several, retries the two halves separately (so a GPU that cannot hold the largest
 * batch still finishes the job, at a smaller batch). Returns the status of the last failed attempt. The
 * records' inputs go to the engine as the batch's items (ri_context_run_items, items: room for n
 * pointers): the library gathers them into its input staging (on a GPU several threads at a time,
 * overlapped with the transfer), so the batch is never stacked here first; the latency metric includes that
 * gather. */
static ri_status infer_span(run_state *rs, ri_context_t *ctx, ri__record **recs, int n, const void **items,
                            void *const *outs) {
  for (int i = 0; i < n; i++)
    items[i] = recs[i]->input;
  int64_t t0 = ri__now_us();
  ri_status s = ri_context_run_items(ctx, n, items, outs);
  int64_t t1 = ri__now_us();
  pthread_mutex_lock(&rs->m.mu);
  rs->batches++;
  pthread_mutex_unlock(&rs->m.mu);
  if (s == RI_OK) {
    ri__dist_add(&rs->m, &rs->m.inference_batch_latency_micro_secs, (double)(t1 - t0));
    ri__dist_add(&rs->m, &rs->m.inference_request_batch_size, (double)n);
    ri__dist_add(&rs->m, &rs->m.inference_request_batch_byte_size, (double)((size_t)n * rs->item_bytes));
    pthread_mutex_lock(&rs->m.mu);
    rs->m.num_inferences += (uint64_t)n;
    pthread_mutex_unlock(&rs->m.mu);
    return RI_OK;
  }
  pthread_mutex_lock(&rs->m.mu);
  rs->m.failed_batches_counter++;
  pthread_mutex_unlock(&rs->m.mu);
  if (n > 1 && (s == RI_ERR_NO_MEMORY || s == RI_ERR_DEVICE)) {
    int h = n / 2;
    void *second[64];
    for (int i = 0; i < rs->n_outputs; i++)
      second[i] = (char *)outs[i] + (size_t)h * rs->out_item_bytes[i];
    ri_status a = infer_span(rs, ctx, recs, h, items, outs);
    ri_status b = infer_span(rs, ctx, recs + h, n - h, items, second);
    return a != RI_OK ? a : b;
  }
  char msg[1200];
  snprintf(msg, sizeof msg, "inference failed for a batch of %d: %s", n, ri_context_last_error(ctx));
  for (int i = 0; i < n; i++)
    ri__record_fail(recs[i], "infer", msg);
  return s;
}

static void run_batch(run_state *rs, ri_context_t *ctx, ri__record **batch, int n, const void **items) {
  int64_t now = ri__now_us();
  for (int i = 0; i < n; i++)
    ri__dist_add(&rs->m, &rs->m.queue_wait_us, (double)(now - batch[i]->t_decoded_us));
  batch_job *j = ri__calloc(1, sizeof *j);
  int ok = j != NULL && (j->recs = ri__calloc((size_t)n, sizeof *j->recs)) != NULL;
  for (int i = 0; ok && i < rs->n_outputs; i++)
    ok = (j->outs[i] = ri__aligned_alloc(rs->out_item_bytes[i] * (size_t)n)) != NULL;
  if (!ok) {
    for (int i = 0; i < n; i++) {
      ri__record_fail(batch[i], "infer", "out of memory for the batch's output buffers");
      pass_to_writer(rs, batch[i]);
    }
    job_free(j);
    return;
  }
  j->n = n;
  memcpy(j->recs, batch, (size_t)n * sizeof *batch);
  j->ok = infer_span(rs, ctx, j->recs, n, items, j->outs) == RI_OK;
  int64_t t1 = ri__now_us();
  for (int i = 0; i < n; i++) {
    ri__aligned_free(j->recs[i]->input);
    j->recs[i]->input = NULL;
    j->recs[i]->t_inferred_us = t1;
  }
  atomic_init(&j->next, 0);
  atomic_init(&j->done, 0);
  int pushed = 0;
  while (pushed < n && ri__queue_push(&rs->q_post, j))
    pushed++;
  /* The queue closed: the records no worker will claim are dropped here (the job is freed by the last). */
  for (int k = pushed; k < n; k++) {
    ri__record_free(j->recs[atomic_fetch_add(&j->next, 1)]);
    if (atomic_fetch_add(&j->done, 1) == n - 1) job_free(j);
  }
}

static void *infer_thread(void *arg) {
  const infer_worker *w = arg;
  run_state *rs = w->rs;
  ri_context_t *ctx = w->ctx;
  ri_pipeline_t *p = rs->p;
  ri__record **batch = ri__calloc((size_t)p->max_batch, sizeof *batch);
  const void **items = ri__calloc((size_t)p->max_batch, sizeof *items);
  int ok = batch && items;
  int n = 0;
  int64_t first_us = 0;
  for (;;) {
    void *item;
    int rc;
    int64_t wait = n ? p->max_wait_us - (ri__now_us() - first_us) : 0;
    /* Nothing waits, or fewer than min_batch wait past the deadline: only a new record can change the
     * decision, so block for it instead of polling. */
    if (n == 0 || (n < p->min_batch && wait <= 0))
      rc = ri__queue_pop(&rs->q_batch, &item);
    else
      rc = ri__queue_pop_timed(&rs->q_batch, &item, wait > 0 ? wait : 0);
    if (rc == 1) {
      ri__record *r = item;
      if (r->stage || !ok) {
        if (!ok) ri__record_fail(r, "infer", "out of memory for batch buffers");
        pass_to_writer(rs, r);
        continue;
      }
      if (n == 0) first_us = ri__now_us();
      batch[n++] = r;
      if (n == p->max_batch) {
        run_batch(rs, ctx, batch, n, items);
        n = 0;
      }
    } else if (rc == -1) {
      if (n >= p->min_batch) {
        run_batch(rs, ctx, batch, n, items);
        n = 0;
      }
    } else {
      if (n) run_batch(rs, ctx, batch, n, items);
      break;
    }
  }
  ri__free(batch);
  ri__free(items);
  ri__queue_producer_done(&rs->q_post);
  ri__queue_producer_done(&rs->q_write);
  return NULL;
}

/* ---- stage: post-processing (its own threads, so NMS never delays the next inference) ---- */

#define RI__POST_CAP 8192

/* Entries of q_post: a few batches of records, bounded. */
static int post_cap(int n_ctxs, int max_batch) {
  int64_t cap = (int64_t)(4 + n_ctxs) * max_batch;
  return (int)(cap < RI__POST_CAP ? cap : RI__POST_CAP);
}
static void *post_thread(void *arg) {
  run_state *rs = arg;
  ri__postproc pp;
  ri__err e;
  ri__err_clear(&e);
  /* each worker has its own post-processor: a detector handle is used by one thread at a time */
  int ok = ri__postproc_init(&pp, rs->p->engine, &e) == RI_OK;
  void *item;
  while (ri__queue_pop(&rs->q_post, &item)) {
    batch_job *j = item;
    const int n = j->n; /* read before this worker's count: once counted, the last worker may free j */
    int i = atomic_fetch_add(&j->next, 1);
    ri__record *r = j->recs[i];
    if (j->ok && !r->stage) {
      int64_t p0 = ri__now_us();
      ri__err pe;
      ri__err_clear(&pe);
      if (!ok)
        ri__record_fail(r, "postprocess", e.msg);
      else if (ri__postproc_run(&pp, j->outs, i, r, &pe) != RI_OK)
        ri__record_fail(r, "postprocess", pe.msg);
      ri__dist_add(&rs->m, &rs->m.postprocess_us, (double)(ri__now_us() - p0));
    }
    if (!ri__queue_push(&rs->q_write, r)) ri__record_free(r);
    if (atomic_fetch_add(&j->done, 1) == n - 1) job_free(j);
  }
  ri__postproc_free(&pp);
  ri__queue_producer_done(&rs->q_write);
  return NULL;
}

/* ---- setup ---- */
static ri_status setup(run_state *rs, ri__err *err) {
  ri_pipeline_t *p = rs->p;
  ri_engine_t *e = p->engine;
  if (ri_engine_num_inputs(e) != 1)
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "the image pipeline needs an engine with one input; this one has %d",
                       ri_engine_num_inputs(e));
  ri_tensor_info in;
  RI__TRY(ri_engine_input_info(e, 0, &in));
  if (in.rank != 4)
    return ri__err_set(err, RI_ERR_SHAPE, "input '%s' must be an image batch of rank 4, not rank %d", in.name,
                       in.rank);
  ri_preprocess_spec_default(&rs->spec);
  ri_vision_error verr = {0};
  const char *text = ri_engine_metadata(e, "preprocess");
  if (text) {
    if (ri_preprocess_spec_parse(text, &rs->spec, &verr) != RI_OK)
      return ri__err_set(err, RI_ERR_PARSE, "engine metadata 'preprocess': %s", verr.msg);
  } else {
    /* no spec stored: derive size and layout from the input; values as the TF-OD MobileNets expect */
    int nhwc = in.dims[3] == 3;
    rs->spec.layout = nhwc ? RI_LAYOUT_NHWC : RI_LAYOUT_NCHW;
    rs->spec.height = (int)(nhwc ? in.dims[1] : in.dims[2]);
    rs->spec.width = (int)(nhwc ? in.dims[2] : in.dims[3]);
    rs->spec.dtype = in.dtype;
  }
  if (ri_preprocess_spec_validate(&rs->spec, &verr) != RI_OK)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "preprocessing: %s", verr.msg);
  int64_t want[4];
  want[0] = in.dims[0];
  if (rs->spec.layout == RI_LAYOUT_NHWC) {
    want[1] = rs->spec.height, want[2] = rs->spec.width, want[3] = 3;
  } else {
    want[1] = 3, want[2] = rs->spec.height, want[3] = rs->spec.width;
  }
  for (int k = 1; k < 4; k++)
    if (in.dims[k] != want[k])
      return ri__err_set(err, RI_ERR_SHAPE,
                         "preprocessing produces %s %dx%d images but input '%s' has shape [N,%lld,%lld,%lld]",
                         rs->spec.layout == RI_LAYOUT_NHWC ? "NHWC" : "NCHW", rs->spec.width, rs->spec.height,
                         in.name, (long long)in.dims[1], (long long)in.dims[2], (long long)in.dims[3]);
  if (in.dtype != rs->spec.dtype)
    return ri__err_set(err, RI_ERR_SHAPE, "preprocessing produces %s but input '%s' is %s",
                       ri_dtype_name(rs->spec.dtype), in.name, ri_dtype_name(in.dtype));
  rs->item_bytes = ri_preprocess_output_bytes(&rs->spec);
  RI__TRY(ri__postproc_init(&rs->pp, e, err));
  rs->n_outputs = ri_engine_num_outputs(e);
  if (rs->n_outputs > 64) return ri__err_set(err, RI_ERR_UNSUPPORTED, "more than 64 outputs");
  rs->ctxs = ri__calloc((size_t)((1 + p->n_replicas) * p->contexts), sizeof *rs->ctxs);
  if (!rs->ctxs) return RI__OOM(err);
  for (int k = 0; k <= p->n_replicas; k++) {
    ri_engine_t *ek = k ? p->replicas[k - 1] : e;
    for (int i = 0; i < p->contexts; i++) {
      ri_status s = ri_context_create(ek, &rs->ctxs[rs->n_ctxs]);
      if (s != RI_OK)
        return ri__err_set(err, s, "engine %d, context %d of %d: %s", k + 1, i + 1, p->contexts,
                           ri_engine_last_error(ek));
      rs->n_ctxs++;
    }
  }
  for (int i = 0; i < rs->n_outputs; i++) {
    ri_tensor_info t;
    ri_status s = ri_context_output_shape(rs->ctxs[0], 1, i, &t);
    if (s != RI_OK) return ri__err_set(err, s, "%s", ri_context_last_error(rs->ctxs[0]));
    /* post-processing checked the dtypes of the outputs it reads; others are only stored */
    size_t nb = ri_dtype_size(t.dtype);
    for (int k = 0; k < t.rank; k++)
      nb *= (size_t)t.dims[k];
    rs->out_item_bytes[i] = nb;
  }
  return RI_OK;
}

static void progress_line(run_state *rs, uint64_t done, int64_t start_us, int final) {
  double el = (double)(ri__now_us() - start_us) / 1e6;
  double rate = el > 0 ? (double)done / el : 0;
  if (rs->size_hint > 0) {
    double eta = rate > 0 ? ((double)rs->size_hint - (double)done) / rate : 0;
    fprintf(stderr, "\r%llu/%ld images  %.1f img/s  ETA %.0fs   %s", (unsigned long long)done, rs->size_hint,
            rate, eta, final ? "\n" : "");
  } else {
    fprintf(stderr, "\r%llu images  %.1f img/s   %s", (unsigned long long)done, rate, final ? "\n" : "");
  }
}

/* ---- writer (runs on the caller's thread) ---- */
typedef struct {
  ri__record **slots; /* reorder buffer indexed by seq - next */
  size_t cap;
  uint64_t next;
} reorder;

static ri_status write_record(run_state *rs, ri__record *r, ri__outfile *rows, ri__outfile *dl,
                              ri__strbuf *sb, ri__err *err) {
  int64_t t0 = ri__now_us();
  sb->len = 0;
  if (sb->data) sb->data[0] = 0;
  if (!r->stage && rs->p->draw_dir && r->image) {
    ri__err de;
    ri__err_clear(&de);
    if (ri__draw_detections(rs->p->draw_dir, r, (const char *const *)rs->pp.labels, rs->pp.n_labels, &de) !=
        RI_OK)
      ri__record_fail(r, "draw", de.msg);
  }
  ri_status s;
  if (r->stage) {
    ri__format_dead_letter(sb, r);
    if (sb->oom) return RI__OOM(err);
    s = ri__outfile_write(dl, sb->data, sb->len, err);
    if (s == RI_OK) rs->m.records_failed++;
  } else {
    ri__format_row(sb, r, rs->p->format, (const char *const *)rs->pp.labels, rs->pp.n_labels);
    if (sb->oom) return RI__OOM(err);
    s = ri__outfile_write(rows, sb->data, sb->len, err);
    if (s == RI_OK) rs->m.records_ok++;
  }
  ri__dist_add(&rs->m, &rs->m.write_us, (double)(ri__now_us() - t0));
  return s;
}

ri_status ri_pipeline_run(ri_pipeline_t *p, ri_pipeline_summary *summary) {
  if (!p) return RI_ERR_INVALID_ARG;
  ri__err_clear(&p->err);
  if (!p->output) return ri__err_set(&p->err, RI_ERR_INVALID_ARG, "no output path set");
  if (!p->source_spec) return ri__err_set(&p->err, RI_ERR_INVALID_ARG, "no source set");
  if (summary) memset(summary, 0, sizeof *summary);
  run_state *rs = ri__calloc(1, sizeof *rs);
  if (!rs) return RI__OOM(&p->err);
  rs->p = p;
  ri__metrics_init(&rs->m);
  rs->m.load_model_latency_milli_secs = p->load_model_ms;
  rs->m.model_byte_size = p->model_bytes;
  int64_t start = ri__now_us();
  ri_status s = setup(rs, &p->err);
  ri__outfile rows = {0}, dl = {0};
  char *dl_path = NULL;
  if (s == RI_OK && p->draw_dir && mkdir(p->draw_dir, 0777) != 0 && errno != EEXIST)
    s = ri__err_set(&p->err, RI_ERR_IO, "cannot create draw directory '%s': %s", p->draw_dir,
                    strerror(errno));
  if (s == RI_OK) s = ri__outfile_open(&rows, p->output, &p->err);
  if (s == RI_OK) {
    if (p->dead_letter) {
      dl_path = ri__strdup(p->dead_letter);
    } else {
      size_t l = strlen(p->output) + 32;
      dl_path = ri__malloc(l);
      if (dl_path) snprintf(dl_path, l, "%s.dead-letter.jsonl", p->output);
    }
    s = dl_path ? ri__outfile_open(&dl, dl_path, &p->err) : RI__OOM(&p->err);
  }
  int threads_started = 0;
  pthread_t t_src, *t_inf = NULL, *t_dec = NULL, *t_post = NULL;
  infer_worker *workers = NULL;
  rs->post_threads = p->post_threads > 0 ? p->post_threads : p->decode_threads;
  if (s == RI_OK) {
    t_dec = ri__calloc((size_t)p->decode_threads, sizeof(pthread_t));
    t_post = ri__calloc((size_t)rs->post_threads, sizeof(pthread_t));
    t_inf = ri__calloc((size_t)rs->n_ctxs, sizeof(pthread_t));
    workers = ri__calloc((size_t)rs->n_ctxs, sizeof *workers);
    /* q_post holds a few batches (with their outputs), one entry per record; at most RI__POST_CAP entries
     * (a larger batch waits for workers to take its first records: no deadlock, they run independently) */
    if (!t_dec || !t_inf || !t_post || !workers || !ri__queue_init(&rs->q_read, RI__QUEUE_CAP, 1) ||
        !ri__queue_init(&rs->q_batch, RI__QUEUE_CAP, p->decode_threads) ||
        !ri__queue_init(&rs->q_post, post_cap(rs->n_ctxs, p->max_batch), rs->n_ctxs) ||
        !ri__queue_init(&rs->q_write, RI__QUEUE_CAP, rs->n_ctxs + rs->post_threads))
      s = RI__OOM(&p->err);
  }
  if (s == RI_OK) {
    /* a hint for the progress bar: globs and directories know their size */
    if (p->progress && isatty(2) &&
        (p->source_kind == RI_SOURCE_GLOB || p->source_kind == RI_SOURCE_DIRECTORY)) {
      ri__source *probe = NULL;
      ri__err pe;
      if (ri__source_open(p->source_kind, p->source_spec, &probe, &pe) == RI_OK) {
        rs->size_hint = ri__source_size_hint(probe);
        ri__source_close(probe);
      }
    }
    pthread_create(&t_src, NULL, source_thread, rs);
    for (int i = 0; i < p->decode_threads; i++)
      pthread_create(&t_dec[i], NULL, decode_thread, rs);
    for (int i = 0; i < rs->n_ctxs; i++) {
      workers[i] = (infer_worker){rs, rs->ctxs[i]};
      pthread_create(&t_inf[i], NULL, infer_thread, &workers[i]);
    }
    for (int i = 0; i < rs->post_threads; i++)
      pthread_create(&t_post[i], NULL, post_thread, rs);
    threads_started = 1;
  }
  /* writer loop */
  ri__strbuf sb;
  ri__sb_init(&sb);
  reorder ro = {0};
  ri_status ws = RI_OK;
  int64_t last_progress = 0;
  if (threads_started) {
    void *item;
    while (ri__queue_pop(&rs->q_write, &item)) {
      ri__record *r = item;
      if (ws != RI_OK) {
        /* the output is broken (e.g. disk full): say in the dead letter what was not written */
        ri__record_fail(r, "write", p->err.msg);
        sb.len = 0;
        ri__format_dead_letter(&sb, r);
        ri__err ignore;
        if (!sb.oom && dl.f && ri__outfile_write(&dl, sb.data, sb.len, &ignore) == RI_OK)
          rs->m.records_failed++;
        ri__record_free(r);
        continue;
      }
      if (!p->ordered) {
        ws = write_record(rs, r, &rows, &dl, &sb, &p->err);
        ri__record_free(r);
      } else {
        uint64_t off = r->seq - ro.next;
        if (off >= ro.cap) {
          size_t nc = ro.cap ? ro.cap : 64;
          while (nc <= off)
            nc *= 2;
          ri__record **ns = ri__calloc(nc, sizeof *ns);
          if (!ns) {
            ri__record_free(r);
            ws = RI__OOM(&p->err);
            continue;
          }
          for (size_t i = 0; i < ro.cap; i++)
            ns[i] = ro.slots[i];
          ri__free(ro.slots);
          ro.slots = ns;
          ro.cap = nc;
        }
        ro.slots[off] = r;
        while (ro.cap && ro.slots[0] && ws == RI_OK) {
          ri__record *h = ro.slots[0];
          ws = write_record(rs, h, &rows, &dl, &sb, &p->err);
          ri__record_free(h);
          memmove(ro.slots, ro.slots + 1, (ro.cap - 1) * sizeof *ro.slots);
          ro.slots[ro.cap - 1] = NULL;
          ro.next++;
        }
      }
      if (ws != RI_OK) {
        /* stop the job: close the upstream queues so producers finish quickly */
        ri__queue_close(&rs->q_read);
        ri__queue_close(&rs->q_batch);
      }
      if (p->progress && isatty(2) && ri__now_us() - last_progress > 250000) {
        last_progress = ri__now_us();
        progress_line(rs, rs->m.records_ok + rs->m.records_failed, start, 0);
      }
    }
    pthread_join(t_src, NULL);
    for (int i = 0; i < p->decode_threads; i++)
      pthread_join(t_dec[i], NULL);
    for (int i = 0; i < rs->n_ctxs; i++)
      pthread_join(t_inf[i], NULL);
    for (int i = 0; i < rs->post_threads; i++)
      pthread_join(t_post[i], NULL);
    rs->m.backpressure_us = rs->q_read.wait_us;
    for (size_t i = 0; i < ro.cap; i++)
      ri__record_free(ro.slots[i]);
    ri__free(ro.slots);
    if (p->progress && isatty(2)) progress_line(rs, rs->m.records_ok + rs->m.records_failed, start, 1);
  }
  ri__sb_free(&sb);
  if (s == RI_OK && ws != RI_OK) s = ws;
  if (s == RI_OK && rs->src_failed)
    s = ri__err_set(&p->err, rs->src_err.status, "source: %s", rs->src_err.msg);
  if (s == RI_OK)
    s = ri__outfile_commit(&rows, &p->err);
  else if (rows.f)
    ri__outfile_abort(&rows);
  if (s == RI_OK)
    s = ri__outfile_commit(&dl, &p->err);
  else if (dl.f) {
    /* keep what the dead letter knows even when the job failed: commit it if possible */
    ri__err ignore;
    if (ri__outfile_commit(&dl, &ignore) != RI_OK) ri__outfile_abort(&dl);
  }
  rs->m.wall_seconds = (double)(ri__now_us() - start) / 1e6;
  if (p->metrics_json && ri__metrics_write_json(&rs->m, p->metrics_json) != 0 && s == RI_OK)
    s = ri__err_set(&p->err, RI_ERR_IO, "cannot write metrics '%s'", p->metrics_json);
  if (p->metrics_prom && ri__metrics_write_prometheus(&rs->m, p->metrics_prom) != 0 && s == RI_OK)
    s = ri__err_set(&p->err, RI_ERR_IO, "cannot write metrics '%s'", p->metrics_prom);
  if (summary) {
    summary->records = rs->m.records_in;
    summary->succeeded = rs->m.records_ok;
    summary->failed = rs->m.records_failed;
    summary->batches = rs->batches;
    summary->wall_seconds = rs->m.wall_seconds;
  }
  if (threads_started || rs->q_read.items) {
    ri__queue_destroy(&rs->q_read);
    ri__queue_destroy(&rs->q_batch);
    ri__queue_destroy(&rs->q_post);
    ri__queue_destroy(&rs->q_write);
  }
  ri__free(t_dec);
  ri__free(t_inf);
  ri__free(t_post);
  ri__free(workers);
  ri__free(dl_path);
  for (int i = 0; i < rs->n_ctxs; i++)
    ri_context_destroy(rs->ctxs[i]);
  ri__free(rs->ctxs);
  ri__postproc_free(&rs->pp);
  ri__metrics_free(&rs->m);
  ri__free(rs);
  return s;
}
