/* Small helpers of the GPU benchmark programs (bench_cuda, bench_gemm_shapes): the median of timing samples
 * and the comma-separated batch list of --batches. */
#ifndef RI_TESTS_GPU_BENCH_ARGS_H
#define RI_TESTS_GPU_BENCH_ARGS_H

#include <stdlib.h>

static int gpu_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The median of v[0 .. n) (n >= 1); sorts v. */
static __attribute__((unused)) double gpu_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, gpu_cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* "1,8,64" into out[0 .. max): the count, or -1 for an empty item, a value outside 1 .. 65536 or a
 * character other than a digit or a comma. */
static __attribute__((unused)) int gpu_parse_batches(const char *s, int *out, int max) {
  int n = 0;
  while (*s && n < max) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 1 || v > 65536) return -1;
    out[n++] = (int)v;
    if (*end && *end != ',') return -1;
    s = *end == ',' ? end + 1 : end;
  }
  return n;
}

#endif
