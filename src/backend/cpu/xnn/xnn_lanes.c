/* Lanes: batch-parallel execution of a sliced segment (see ri__xnn_lanes_run in xnn_internal.h).
 *
 * Lane 0 is the calling thread, running on a view of the context's own operators and scratch without its
 * thread pool; lanes 1.. are helper threads, each with a context of its own (operators, scratch) and no
 * thread pool. A job is one segment run: the caller publishes it under the mutex and bumps the generation;
 * every lane claims the next chunk under the mutex until none is left or a lane failed. The caller returns
 * once every claimed chunk is done; it never waits for a helper that claimed nothing, so a helper the OS
 * has not scheduled costs nothing but its share of the work, which the others take. */
#include <pthread.h>
#include <string.h>

#include "backend/cpu/xnn/xnn_internal.h"
#include "core/alloc.h"

typedef struct {
  struct xnn_lanes *l;
  int idx;
} lane_arg;

struct xnn_lanes {
  int n;         /* lanes, the caller's included */
  xnn_ctx **ctx; /* per lane; ctx[0] points at `view` */
  xnn_ctx view;  /* the owning context without its thread pool */
  lane_arg *args;
  pthread_t *tids; /* n - 1 helpers, `started` of them running */
  int started;
  int sync_ready; /* mutex and condition variables initialized */
  pthread_mutex_t mu;
  pthread_cond_t cv_job, cv_done;
  unsigned long gen; /* bumped per job */
  int stop;
  /* The current job, guarded by mu. */
  const xseg *seg;
  const ri__exec *x;
  char *stage;
  int units, chunk, next, done;
  ri_status status;
  ri__err err;
};

/* Claims and runs chunks of job `gen` until none is left, the job changed or a lane failed. */
static void lane_work(struct xnn_lanes *l, int lane, unsigned long gen) {
  for (;;) {
    pthread_mutex_lock(&l->mu);
    if (l->gen != gen || l->next >= l->units || l->status != RI_OK) {
      pthread_mutex_unlock(&l->mu);
      return;
    }
    const int u0 = l->next, cu = l->units - u0 < l->chunk ? l->units - u0 : l->chunk;
    l->next += cu;
    const xseg *s = l->seg;
    const ri__exec *x = l->x;
    char *stage = l->stage;
    pthread_mutex_unlock(&l->mu);
    ri__err e;
    ri__err_clear(&e);
    ri_status st = ri__xnn_run_chunk(l->ctx[lane], s, x, stage, u0, cu, &e);
    pthread_mutex_lock(&l->mu);
    if (st != RI_OK && l->status == RI_OK) {
      l->status = st;
      l->err = e;
    }
    l->done += cu;
    if (l->done >= l->next) pthread_cond_broadcast(&l->cv_done);
    pthread_mutex_unlock(&l->mu);
  }
}

static void *helper(void *p) {
  lane_arg *a = p;
  struct xnn_lanes *l = a->l;
  pthread_mutex_lock(&l->mu);
  unsigned long seen = l->gen;
  for (;;) {
    while (!l->stop && l->gen == seen)
      pthread_cond_wait(&l->cv_job, &l->mu);
    if (l->stop) break;
    seen = l->gen;
    pthread_mutex_unlock(&l->mu);
    lane_work(l, a->idx, seen);
    pthread_mutex_lock(&l->mu);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

void ri__xnn_lanes_free(struct xnn_lanes *l) {
  if (!l) return;
  if (l->sync_ready) {
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv_job);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->started; i++)
      pthread_join(l->tids[i], NULL);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv_job);
    pthread_cond_destroy(&l->cv_done);
  }
  if (l->ctx)
    for (int i = 1; i < l->n; i++)
      ri__xnn_ctx_free(l->ctx[i]);
  ri__free(l->ctx);
  ri__free(l->args);
  ri__free(l->tids);
  ri__free(l);
}

static ri_status lanes_create(xnn_ctx *c, struct xnn_lanes **out, ri__err *err) {
  const int n = c->st->threads;
  struct xnn_lanes *l = ri__calloc(1, sizeof *l);
  if (!l) return RI__OOM(err);
  l->n = n;
  l->ctx = ri__calloc((size_t)n, sizeof *l->ctx);
  l->args = ri__calloc((size_t)n, sizeof *l->args);
  l->tids = ri__calloc((size_t)n, sizeof *l->tids);
  if (!l->ctx || !l->args || !l->tids) {
    ri__xnn_lanes_free(l);
    return RI__OOM(err);
  }
  l->view = *c;
  l->view.tp = NULL;
  l->view.pool = NULL;
  l->view.lanes = NULL;
  l->ctx[0] = &l->view;
  for (int i = 1; i < n; i++) {
    int bad;
    ri_status s = ri__xnn_ctx_new(c->st, 1, 0, &l->ctx[i], &bad, err);
    if (s != RI_OK) {
      ri__xnn_lanes_free(l);
      return s;
    }
  }
  if (pthread_mutex_init(&l->mu, NULL) != 0) {
    ri__xnn_lanes_free(l);
    return ri__err_set(err, RI_ERR_NO_MEMORY, "cannot create the XNNPACK lanes' mutex");
  }
  pthread_cond_init(&l->cv_job, NULL);
  pthread_cond_init(&l->cv_done, NULL);
  l->sync_ready = 1;
  for (int i = 1; i < n; i++) {
    l->args[i] = (lane_arg){l, i};
    if (pthread_create(&l->tids[i - 1], NULL, helper, &l->args[i]) != 0) {
      ri__xnn_lanes_free(l);
      return ri__err_set(err, RI_ERR_NO_MEMORY, "cannot start XNNPACK lane thread %d of %d", i, n - 1);
    }
    l->started = i;
  }
  *out = l;
  return RI_OK;
}

ri_status ri__xnn_lanes_run(xnn_ctx *c, const xseg *s, const ri__exec *x, char *stage, int units, int chunk,
                            ri__err *err) {
  if (!c->lanes) RI__TRY(lanes_create(c, &c->lanes, err));
  struct xnn_lanes *l = c->lanes;
  l->view.prof_s = c->prof_s;
  pthread_mutex_lock(&l->mu);
  l->seg = s;
  l->x = x;
  l->stage = stage;
  l->units = units;
  l->chunk = chunk;
  l->next = 0;
  l->done = 0;
  l->status = RI_OK;
  ri__err_clear(&l->err);
  const unsigned long gen = ++l->gen;
  pthread_cond_broadcast(&l->cv_job);
  pthread_mutex_unlock(&l->mu);
  lane_work(l, 0, gen);
  pthread_mutex_lock(&l->mu);
  while (l->done < l->next)
    pthread_cond_wait(&l->cv_done, &l->mu);
  ri_status st = l->status;
  if (st != RI_OK && err) *err = l->err;
  pthread_mutex_unlock(&l->mu);
  return st;
}
