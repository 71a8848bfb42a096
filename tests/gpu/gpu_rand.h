/* Pseudo-random test data of the GPU tests: one xorshift64 stream per test program, the same sequence on
 * every run (a failure reproduces). A program that wants its own sequence calls gpu_rand_seed first. */
#ifndef RI_TESTS_GPU_RAND_H
#define RI_TESTS_GPU_RAND_H

#include <stddef.h>
#include <stdint.h>

#include "core/half.h"

static uint64_t g_rng = 0x2545f4914f6cdd1dull;

static inline void gpu_rand_seed(uint64_t seed) { g_rng = seed ? seed : 1; }

/* Uniform in [0, 1). */
static inline double urand(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (double)(g_rng >> 11) / (double)(1ull << 53);
}

/* Random halves in [-scale, scale) (rounded), stored as bits; the rounded values in f when f is not NULL. */
static inline void fill_half(uint16_t *h, float *f, size_t n, double scale) {
  for (size_t i = 0; i < n; i++) {
    h[i] = ri__float_to_half((float)((urand() * 2.0 - 1.0) * scale));
    if (f) f[i] = ri__half_to_float(h[i]);
  }
}

#endif
