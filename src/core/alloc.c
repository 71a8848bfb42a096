#include "core/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long g_count;   /* allocations since the last ri__alloc_fail_after() */
static atomic_long g_fail_at; /* 0 = never fail */
static atomic_long g_live;

static int should_fail(void) {
  long n = atomic_fetch_add(&g_count, 1) + 1;
  long f = atomic_load(&g_fail_at);
  return f > 0 && n >= f;
}

long ri__alloc_fail_after(long n) {
  long made = atomic_exchange(&g_count, 0);
  atomic_store(&g_fail_at, n);
  return made;
}

long ri__alloc_live(void) { return atomic_load(&g_live); }

void *ri__malloc(size_t size) {
  if (should_fail()) return NULL;
  void *p = malloc(size ? size : 1);
  if (p) atomic_fetch_add(&g_live, 1);
  return p;
}

void *ri__calloc(size_t count, size_t size) {
  size_t total;
  if (!ri__mul_size(count, size, &total)) return NULL;
  if (should_fail()) return NULL;
  void *p = calloc(total ? total : 1, 1);
  if (p) atomic_fetch_add(&g_live, 1);
  return p;
}

void *ri__realloc(void *ptr, size_t size) {
  if (!ptr) return ri__malloc(size);
  if (should_fail()) return NULL;
  return realloc(ptr, size ? size : 1);
}

void ri__free(void *ptr) {
  if (!ptr) return;
  atomic_fetch_sub(&g_live, 1);
  free(ptr);
}

char *ri__strndup(const char *s, size_t n) {
  char *p = ri__malloc(n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *ri__strdup(const char *s) { return s ? ri__strndup(s, strlen(s)) : NULL; }

void *ri__aligned_alloc(size_t size) {
  if (should_fail()) return NULL;
  size_t rounded = (size + 63) & ~(size_t)63;
  if (rounded < size) return NULL;
  void *p = aligned_alloc(64, rounded ? rounded : 64);
  if (p) atomic_fetch_add(&g_live, 1);
  return p;
}

void ri__aligned_free(void *ptr) { ri__free(ptr); }
