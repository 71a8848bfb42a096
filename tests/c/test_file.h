/* Reading a whole file in tests (C and GPU tests). */
#ifndef RI_TEST_FILE_H
#define RI_TEST_FILE_H

#include <stdio.h>
#include <stdlib.h>

/* The bytes of the file at path in *data (malloc'd, free it; at least 1 byte allocated), or -1 (with *data
 * NULL or partly read) when it cannot be read whole. */
static long test_read_file(const char *path, unsigned char **data) {
  FILE *f = fopen(path, "rb");
  *data = NULL;
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  *data = malloc(n > 0 ? (size_t)n : 1);
  if (!*data || n < 0 || fread(*data, 1, (size_t)n, f) != (size_t)n) n = -1;
  fclose(f);
  return n;
}

#endif
