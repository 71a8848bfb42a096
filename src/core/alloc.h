/* Internal allocator hook. Every allocation of the library goes through these functions so that tests can
 * make the Nth allocation fail and check that every error path returns a status and frees everything. */
#ifndef RI_CORE_ALLOC_H
#define RI_CORE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *ri__malloc(size_t size);
void *ri__calloc(size_t count, size_t size); /* overflow-checked */
void *ri__realloc(void *ptr, size_t size);
void ri__free(void *ptr);
char *ri__strdup(const char *s);
char *ri__strndup(const char *s, size_t n);
/* 64-byte aligned allocation; free with ri__aligned_free. */
void *ri__aligned_alloc(size_t size);
void ri__aligned_free(void *ptr);

/* Test hook: make the allocation with ordinal n (1-based, counted from this call) and every one after it
 * fail until reset with n = 0. Returns the number of allocations made since the last call. Not
 * thread-safe against concurrent allocation counting (tests use it single-threaded). */
long ri__alloc_fail_after(long n);
/* Number of live allocations (allocated and not yet freed) made through the hook. */
long ri__alloc_live(void);

/* Checked size arithmetic: return 0 on overflow, 1 otherwise. */
static inline int ri__mul_size(size_t a, size_t b, size_t *out) {
  if (a != 0 && b > SIZE_MAX / a) return 0;
  *out = a * b;
  return 1;
}
static inline int ri__add_size(size_t a, size_t b, size_t *out) {
  if (b > SIZE_MAX - a) return 0;
  *out = a + b;
  return 1;
}

#endif
