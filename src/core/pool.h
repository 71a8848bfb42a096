/* A small fixed thread pool for data-parallel loops inside kernels. One pool per execution context; a pool
 * is used by one thread at a time (its owner), which also takes part in the work. */
#ifndef RI_CORE_POOL_H
#define RI_CORE_POOL_H

#include <stdint.h>

typedef struct ri__pool ri__pool;

/* threads = total workers including the caller (1 = no extra threads). Returns NULL on failure. */
ri__pool *ri__pool_create(int threads);
void ri__pool_destroy(ri__pool *pool);
int ri__pool_threads(const ri__pool *pool);

/* Calls fn(arg, begin, end) over [0, n) split into contiguous chunks of at least `grain` items, across the
 * pool, and returns when all are done. A NULL pool runs fn(arg, 0, n) on the caller. */
typedef void (*ri__pool_fn)(void *arg, int64_t begin, int64_t end);
void ri__pool_for(ri__pool *pool, int64_t n, int64_t grain, ri__pool_fn fn, void *arg);

#endif
