/* A positive control for LeakSanitizer on a machine where the fuzz targets run: this program leaks one
 * block on purpose, so under `-fsanitize=address` with detect_leaks=1 it must end with a non-zero status
 * and a "detected memory leaks" report. If it exits 0 there, leak checking does not work on that machine
 * and a clean fuzz run proves nothing about leaks. scripts/gpu/fuzz-device.sh runs it; build it with
 * `clang -fsanitize=address -g scripts/gpu/lsan-probe.c -o .fuzzpack/lsan_probe`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The volatile pointer keeps the compiler from removing the allocation. */
static void *volatile lost;

int main(void) {
  lost = malloc(4096);
  if (lost != NULL) memset(lost, 1, 4096);
  lost = NULL;
  puts("lsan-probe: leaked one 4096-byte block");
  return 0;
}
