/* Bounded blocking FIFO of pointers, many producers and consumers. Closing wakes everyone: pushes fail and
 * pops drain what is left, then report end-of-stream. */
#ifndef RI_PIPELINE_QUEUE_H
#define RI_PIPELINE_QUEUE_H

#include <pthread.h>
#include <stdint.h>

typedef struct {
  void **items;
  int cap, head, count;
  int closed;
  int producers; /* open producers; the queue closes when the last one finishes */
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full;
  int64_t wait_us; /* total time pushers waited on a full queue (back-pressure) */
} ri__queue;

int ri__queue_init(ri__queue *q, int cap, int producers);
void ri__queue_destroy(ri__queue *q);
/* Blocks while full. Returns 0 when the queue is closed (item not taken). */
int ri__queue_push(ri__queue *q, void *item);
/* Blocks while empty and open. 1: *item set; 0: closed and drained. */
int ri__queue_pop(ri__queue *q, void **item);
/* Like pop but waits at most timeout_us: 1 item, 0 closed and drained, -1 timed out. */
int ri__queue_pop_timed(ri__queue *q, void **item, int64_t timeout_us);
/* A producer is done; the last one closes the queue. */
void ri__queue_producer_done(ri__queue *q);
void ri__queue_close(ri__queue *q);

int64_t ri__now_us(void);

#endif
