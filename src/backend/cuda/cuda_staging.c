/* Host side of the input/output staging of a CUDA context.
 *
 * A run's inputs are copied from the caller's buffers into pinned memory and sent to the device; outputs
 * come back into pinned memory and are copied to the caller's buffers. For large tensors the host copies
 * dominate the end-to-end time, so they are split across a small thread pool (up to CU_STAGE_THREADS,
 * bounded by the engine's thread setting) and pipelined with the DMA transfers: a tensor is sent in up to
 * CU_STAGE_SEGS segments, the transfer of one segment running while the host copies the next. Outputs
 * are received the same way, each segment's host copy waiting only on that segment's event. An input the
 * caller wrote into the staging itself (ri_context_input_buffer) is sent without the host copy; an input
 * given as its batch items (ri_context_run_items) is gathered into the staging the same way, segments of
 * whole items, so the caller need not stack them first. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "core/pool.h"

#define CU_STAGE_THREADS 8 /* the most copy threads; RI_CUDA_STAGE_THREADS=N (1..64) overrides it */
#define CU_STAGE_SEGS    8
#define CU_STAGE_MIN_SEG ((size_t)4 << 20) /* segments are at least this large */
/* A parallel copy is split in chunks of CU_STAGE_CHUNK bytes; copies under two chunks stay on the calling
 * thread. RI_CUDA_STAGE_CHUNK=bytes (64 KiB .. 64 MiB) overrides the chunk, for measurements. */
#define CU_STAGE_CHUNK ((size_t)1 << 20)

typedef struct cu_stage_seg {
  void *dst;
  const void *src;
  size_t n;
  int ev; /* event recorded after the segment's transfer, -1: wait for the stream */
} cu_stage_seg;

typedef struct cu_staging {
  ri__pool *pool;
  size_t chunk; /* bytes per unit of a parallel copy */
  cudaEvent_t *ev;
  int n_ev;
  cu_stage_seg *segs;
  int n_segs, cap_segs;
} cu_staging;

void ri__cu_staging_destroy(cu_ctx *c) {
  cu_staging *s = c->staging;
  if (!s) return;
  ri__pool_destroy(s->pool);
  for (int i = 0; i < s->n_ev; i++)
    if (s->ev[i]) cudaEventDestroy(s->ev[i]);
  ri__free(s->ev);
  ri__free(s->segs);
  ri__free(s);
  c->staging = NULL;
}

ri_status ri__cu_staging_create(cu_ctx *c, ri__err *err) {
  const cu_state *st = c->st;
  const int ni = -1;
  cu_staging *s = ri__calloc(1, sizeof *s);
  if (!s) return RI__OOM(err);
  c->staging = s;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int threads = st->cfg.threads > 0 ? st->cfg.threads : (int)(cpus > 0 ? cpus : 1);
  const long cap = ri__cu_env_long("RI_CUDA_STAGE_THREADS", CU_STAGE_THREADS, 1, 64);
  if (threads > cap) threads = (int)cap;
  s->chunk = (size_t)ri__cu_env_long("RI_CUDA_STAGE_CHUNK", (long)CU_STAGE_CHUNK, 64L << 10, 64L << 20);
  s->pool = threads > 1 ? ri__pool_create(threads) : NULL;
  s->cap_segs = (st->g->n_outputs > 0 ? st->g->n_outputs : 1) * CU_STAGE_SEGS;
  s->segs = ri__calloc((size_t)s->cap_segs, sizeof *s->segs);
  s->ev = ri__calloc((size_t)s->cap_segs, sizeof *s->ev);
  if (!s->segs || !s->ev || (threads > 1 && !s->pool)) return RI__OOM(err);
  for (int i = 0; i < s->cap_segs; i++) {
    CU_RT(cudaEventCreateWithFlags(&s->ev[i], cudaEventDisableTiming));
    s->n_ev = i + 1;
  }
  return RI_OK;
}

typedef struct {
  char *dst;
  const char *src;
  size_t n, chunk;
} copy_job;

static void copy_chunks(void *arg, int64_t begin, int64_t end) {
  const copy_job *j = arg;
  size_t b = (size_t)begin * j->chunk, e = (size_t)end * j->chunk;
  if (e > j->n) e = j->n;
  if (b < e) memcpy(j->dst + b, j->src + b, e - b);
}

/* memcpy, split across the pool when large. */
static void host_copy(cu_staging *s, void *dst, const void *src, size_t n) {
  if (n < 2 * s->chunk || !s->pool) {
    memcpy(dst, src, n);
    return;
  }
  copy_job j = {dst, src, n, s->chunk};
  ri__pool_for(s->pool, (int64_t)((n + s->chunk - 1) / s->chunk), 1, copy_chunks, &j);
}

static size_t seg_size(size_t n) {
  size_t seg = (n + CU_STAGE_SEGS - 1) / CU_STAGE_SEGS;
  return seg < CU_STAGE_MIN_SEG ? CU_STAGE_MIN_SEG : seg;
}

ri_status ri__cu_stage_in(cu_ctx *c, const void *src, void *pin, void *dev, size_t n, ri__err *err) {
  const cu_state *st = c->st;
  const int ni = -1;
  cu_staging *s = c->staging;
  size_t seg = seg_size(n);
  for (size_t off = 0; off < n; off += seg) {
    size_t len = n - off < seg ? n - off : seg;
    if (src != pin) host_copy(s, (char *)pin + off, (const char *)src + off, len); /* else filled in place */
    CU_RT(cudaMemcpyAsync((char *)dev + off, (char *)pin + off, len, cudaMemcpyHostToDevice, c->stream));
  }
  return RI_OK;
}

typedef struct {
  char *dst;                 /* the staging of the segment's first item */
  const void *const *items;  /* the segment's items */
  size_t per, chunk, chunks; /* bytes per item, bytes per chunk, chunks per item */
} gather_job;

static void gather_chunks(void *arg, int64_t begin, int64_t end) {
  const gather_job *j = arg;
  for (int64_t u = begin; u < end; u++) {
    const size_t item = (size_t)u / j->chunks, off = ((size_t)u % j->chunks) * j->chunk;
    const size_t n = j->per - off < j->chunk ? j->per - off : j->chunk;
    char *dst = j->dst + item * j->per + off;
    const char *src = (const char *)j->items[item] + off;
    if (src != dst) memcpy(dst, src, n);
  }
}

/* Items [b0, b1) into their places in pin, split across the pool in chunks when large. */
static void gather(cu_staging *s, char *pin, const void *const *items, int b0, int b1, size_t per) {
  gather_job j = {pin + (size_t)b0 * per, items + b0, per, s->chunk, (per + s->chunk - 1) / s->chunk};
  const int64_t units = (int64_t)(b1 - b0) * (int64_t)j.chunks;
  if (!s->pool || (size_t)(b1 - b0) * per < 2 * s->chunk)
    gather_chunks(&j, 0, units);
  else
    ri__pool_for(s->pool, units, 1, gather_chunks, &j);
}

ri_status ri__cu_stage_in_items(cu_ctx *c, const void *const *items, int count, size_t per, void *pin,
                                void *dev, ri__err *err) {
  const cu_state *st = c->st;
  const int ni = -1;
  cu_staging *s = c->staging;
  if (per == 0) return RI_OK;
  /* Segments of whole items, about as large as ri__cu_stage_in's: each is sent while the next is gathered. */
  const size_t seg = seg_size((size_t)count * per);
  int step = (int)(seg / per);
  if (step < 1) step = 1;
  for (int b0 = 0; b0 < count; b0 += step) {
    const int b1 = count - b0 < step ? count : b0 + step;
    gather(s, pin, items, b0, b1, per);
    const size_t off = (size_t)b0 * per, len = (size_t)(b1 - b0) * per;
    CU_RT(cudaMemcpyAsync((char *)dev + off, (char *)pin + off, len, cudaMemcpyHostToDevice, c->stream));
  }
  return RI_OK;
}

void ri__cu_stage_out_reset(cu_ctx *c) { c->staging->n_segs = 0; }

ri_status ri__cu_stage_out(cu_ctx *c, const void *dev, void *pin, void *dst, size_t n, ri__err *err) {
  const cu_state *st = c->st;
  const int ni = -1;
  cu_staging *s = c->staging;
  size_t seg = seg_size(n);
  for (size_t off = 0; off < n; off += seg) {
    size_t len = n - off < seg ? n - off : seg;
    CU_RT(
        cudaMemcpyAsync((char *)pin + off, (const char *)dev + off, len, cudaMemcpyDeviceToHost, c->stream));
    int ev = -1;
    if (s->n_segs < s->n_ev) {
      ev = s->n_segs;
      CU_RT(cudaEventRecord(s->ev[ev], c->stream));
    }
    if (s->n_segs < s->cap_segs) {
      s->segs[s->n_segs++] = (cu_stage_seg){(char *)dst + off, (char *)pin + off, len, ev};
    } else {
      /* More segments than planned for (cannot happen with CU_STAGE_SEGS per output): finish in order. */
      CU_RT(cudaStreamSynchronize(c->stream));
      host_copy(s, (char *)dst + off, (char *)pin + off, len);
    }
  }
  return RI_OK;
}

ri_status ri__cu_stage_out_finish(cu_ctx *c, int batch, ri__err *err) {
  const cu_state *st = c->st;
  cu_staging *s = c->staging;
  char what[64];
  snprintf(what, sizeof what, "running batch %d", batch);
  for (int i = 0; i < s->n_segs; i++) {
    cu_stage_seg *g = &s->segs[i];
    cudaError_t e = g->ev >= 0 ? cudaEventSynchronize(s->ev[g->ev]) : cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess)
      return ri__cu_fail_rt(err, e, g->ev >= 0 ? "cudaEventSynchronize" : "cudaStreamSynchronize", st, -1,
                            what);
    host_copy(s, g->dst, g->src, g->n);
  }
  s->n_segs = 0;
  cudaError_t e = cudaStreamSynchronize(c->stream);
  if (e != cudaSuccess) return ri__cu_fail_rt(err, e, "cudaStreamSynchronize", st, -1, what);
  return RI_OK;
}
