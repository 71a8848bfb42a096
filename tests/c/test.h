/* Minimal test helpers: CHECK records a failure and continues; the test's main returns test_done(). */
#ifndef RI_TEST_H
#define RI_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int g_test_failures;
static int g_test_checks;

#define CHECK(cond)                                                                                          \
  do {                                                                                                       \
    g_test_checks++;                                                                                         \
    if (!(cond)) {                                                                                           \
      g_test_failures++;                                                                                     \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                               \
    }                                                                                                        \
  } while (0)

#define CHECK_MSG(cond, ...)                                                                                 \
  do {                                                                                                       \
    g_test_checks++;                                                                                         \
    if (!(cond)) {                                                                                           \
      g_test_failures++;                                                                                     \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);                               \
      fprintf(stderr, __VA_ARGS__);                                                                          \
      fputc('\n', stderr);                                                                                   \
    }                                                                                                        \
  } while (0)

static inline int test_done(const char *name) {
  printf("%s: %d checks, %d failed\n", name, g_test_checks, g_test_failures);
  return g_test_failures ? 1 : 0;
}

#endif
