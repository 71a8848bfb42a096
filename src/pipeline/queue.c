#include "pipeline/queue.h"

#include <errno.h>
#include <time.h>

#include "core/alloc.h"

int64_t ri__now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int ri__queue_init(ri__queue *q, int cap, int producers) {
  q->items = ri__calloc((size_t)(cap > 0 ? cap : 1), sizeof(void *));
  if (!q->items) return 0;
  q->cap = cap > 0 ? cap : 1;
  q->head = q->count = q->closed = 0;
  q->producers = producers;
  q->wait_us = 0;
  pthread_mutex_init(&q->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&q->not_empty, &ca);
  pthread_cond_init(&q->not_full, &ca);
  pthread_condattr_destroy(&ca);
  return 1;
}

void ri__queue_destroy(ri__queue *q) {
  if (!q->items) return;
  ri__free(q->items);
  q->items = NULL;
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->not_empty);
  pthread_cond_destroy(&q->not_full);
}

int ri__queue_push(ri__queue *q, void *item) {
  pthread_mutex_lock(&q->mu);
  if (q->count == q->cap && !q->closed) {
    int64_t t0 = ri__now_us();
    while (q->count == q->cap && !q->closed)
      pthread_cond_wait(&q->not_full, &q->mu);
    q->wait_us += ri__now_us() - t0;
  }
  if (q->closed) {
    pthread_mutex_unlock(&q->mu);
    return 0;
  }
  q->items[(q->head + q->count) % q->cap] = item;
  q->count++;
  pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
  return 1;
}

static void *take(ri__queue *q) {
  void *it = q->items[q->head];
  q->head = (q->head + 1) % q->cap;
  q->count--;
  pthread_cond_signal(&q->not_full);
  return it;
}

int ri__queue_pop(ri__queue *q, void **item) {
  pthread_mutex_lock(&q->mu);
  while (q->count == 0 && !q->closed)
    pthread_cond_wait(&q->not_empty, &q->mu);
  if (q->count == 0) {
    pthread_mutex_unlock(&q->mu);
    return 0;
  }
  *item = take(q);
  pthread_mutex_unlock(&q->mu);
  return 1;
}

int ri__queue_pop_timed(ri__queue *q, void **item, int64_t timeout_us) {
  struct timespec dl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  int64_t ns = dl.tv_nsec + (timeout_us % 1000000) * 1000;
  dl.tv_sec += (time_t)(timeout_us / 1000000 + ns / 1000000000);
  dl.tv_nsec = (long)(ns % 1000000000);
  pthread_mutex_lock(&q->mu);
  while (q->count == 0 && !q->closed) {
    if (pthread_cond_timedwait(&q->not_empty, &q->mu, &dl) == ETIMEDOUT) break;
  }
  if (q->count == 0) {
    int closed = q->closed;
    pthread_mutex_unlock(&q->mu);
    return closed ? 0 : -1;
  }
  *item = take(q);
  pthread_mutex_unlock(&q->mu);
  return 1;
}

void ri__queue_close(ri__queue *q) {
  pthread_mutex_lock(&q->mu);
  q->closed = 1;
  pthread_cond_broadcast(&q->not_empty);
  pthread_cond_broadcast(&q->not_full);
  pthread_mutex_unlock(&q->mu);
}

void ri__queue_producer_done(ri__queue *q) {
  pthread_mutex_lock(&q->mu);
  int last = --q->producers <= 0;
  pthread_mutex_unlock(&q->mu);
  if (last) ri__queue_close(q);
}
