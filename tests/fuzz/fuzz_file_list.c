/* libFuzzer target: an input list (the text file of paths `runinfer run --input` reads) → the source's line
 * parser. Every key must be non-empty, NUL-free and not start with '#'. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "pipeline/source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[] = "/tmp/ri-fuzz-list-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return 0;
  if (write(fd, data, size) != (ssize_t)size) {
    close(fd);
    unlink(path);
    return 0;
  }
  close(fd);
  ri__source *s = NULL;
  ri__err err;
  if (ri__source_open(RI_SOURCE_FILE_LIST, path, &s, &err) == RI_OK) {
    char *key;
    size_t len;
    while (ri__source_next(s, &key, &len, &err) == 1) {
      if (len == 0 || key[0] == '#' || strlen(key) != len) abort();
      ri__free(key);
    }
    ri__source_close(s);
  }
  unlink(path);
  return 0;
}
