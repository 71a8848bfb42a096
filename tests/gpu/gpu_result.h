/* PASS/FAIL lines of the GPU tests (test_cuda_ops.c, test_cuda_oom.c): one line per check, flushed at once
 * so that a crash or a time limit on the GPU machine still leaves every earlier verdict in the log; the
 * counts feed the "N passed, M failed" line each test prints last. */
#ifndef RI_TESTS_GPU_RESULT_H
#define RI_TESTS_GPU_RESULT_H

#include <stdarg.h>
#include <stdio.h>

static int g_pass, g_fail;

static void result(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void result(int ok, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s ", ok ? "PASS" : "FAIL");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  fflush(stdout);
  if (ok)
    g_pass++;
  else
    g_fail++;
}

#endif
