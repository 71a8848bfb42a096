#include "core/pool.h"

#include <pthread.h>

#include "core/alloc.h"

/* Workers wait on a generation counter; the owner publishes a job (fn, arg, n, chunk) and bumps the
 * generation, every participant claims chunks with an atomic counter, and the owner waits until all
 * workers have checked out of the generation. */
struct ri__pool {
  int threads;
  pthread_t *tids;
  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_done;
  unsigned long generation;
  int active; /* workers still inside the current generation */
  int stop;
  ri__pool_fn fn;
  void *arg;
  int64_t n, chunk;
  int64_t next; /* next chunk start, guarded by mu */
};

static int claim(ri__pool *p, int64_t *b, int64_t *e) {
  pthread_mutex_lock(&p->mu);
  int64_t s = p->next;
  if (s >= p->n) {
    pthread_mutex_unlock(&p->mu);
    return 0;
  }
  p->next = s + p->chunk;
  pthread_mutex_unlock(&p->mu);
  *b = s;
  *e = s + p->chunk < p->n ? s + p->chunk : p->n;
  return 1;
}

static void *worker(void *arg) {
  ri__pool *p = arg;
  unsigned long seen = 0;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->generation == seen)
      pthread_cond_wait(&p->cv_work, &p->mu);
    if (p->stop) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    seen = p->generation;
    pthread_mutex_unlock(&p->mu);
    int64_t b, e;
    while (claim(p, &b, &e))
      p->fn(p->arg, b, e);
    pthread_mutex_lock(&p->mu);
    if (--p->active == 0) pthread_cond_signal(&p->cv_done);
    pthread_mutex_unlock(&p->mu);
  }
}

ri__pool *ri__pool_create(int threads) {
  if (threads < 1) threads = 1;
  ri__pool *p = ri__calloc(1, sizeof *p);
  if (!p) return NULL;
  p->threads = threads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv_work, NULL);
  pthread_cond_init(&p->cv_done, NULL);
  if (threads > 1) {
    p->tids = ri__calloc((size_t)threads - 1, sizeof(pthread_t));
    if (!p->tids) {
      ri__pool_destroy(p);
      return NULL;
    }
    for (int i = 0; i < threads - 1; i++) {
      if (pthread_create(&p->tids[i], NULL, worker, p) != 0) {
        p->threads = i + 1; /* destroy joins only the started ones */
        ri__pool_destroy(p);
        return NULL;
      }
    }
  }
  return p;
}

void ri__pool_destroy(ri__pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->cv_work);
  pthread_mutex_unlock(&p->mu);
  if (p->tids)
    for (int i = 0; i < p->threads - 1; i++)
      pthread_join(p->tids[i], NULL);
  ri__free(p->tids);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv_work);
  pthread_cond_destroy(&p->cv_done);
  ri__free(p);
}

int ri__pool_threads(const ri__pool *p) { return p ? p->threads : 1; }

void ri__pool_for(ri__pool *p, int64_t n, int64_t grain, ri__pool_fn fn, void *arg) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (!p || p->threads == 1 || n <= grain) {
    fn(arg, 0, n);
    return;
  }
  int64_t chunks = (int64_t)p->threads * 4;
  int64_t chunk = (n + chunks - 1) / chunks;
  if (chunk < grain) chunk = grain;
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->arg = arg;
  p->n = n;
  p->chunk = chunk;
  p->next = 0;
  p->active = p->threads - 1;
  p->generation++;
  pthread_cond_broadcast(&p->cv_work);
  pthread_mutex_unlock(&p->mu);
  int64_t b, e;
  while (claim(p, &b, &e))
    fn(arg, b, e);
  pthread_mutex_lock(&p->mu);
  while (p->active > 0)
    pthread_cond_wait(&p->cv_done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}
