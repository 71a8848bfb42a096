/* Allocation-failure sweep over the engine file reader (memory and file) and writer: failing the Nth
 * allocation, for every N until the call succeeds, must give RI_ERR_NO_MEMORY (never another status, never
 * a crash) and leave the live allocation count where it started. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rie_sample.h"
#include "test.h"

static const unsigned char *g_bytes;
static size_t g_size;
static const char *g_path;
static ri__rie_content g_content;

static ri_status op_read_memory(void) {
  ri__rie_content out;
  ri__err err;
  ri_status st = ri__rie_read(g_bytes, g_size, &out, &err);
  if (st == RI_OK) {
    CHECK(out.graph && out.graph->n_values == SAMPLE_N_VALUES);
    ri__rie_content_free(&out);
  } else {
    CHECK_MSG(st == RI_ERR_NO_MEMORY, "read: %s", err.msg);
    CHECK(out.graph == NULL && out.meta == NULL);
  }
  return st;
}

static ri_status op_read_file(void) {
  ri__rie_content out;
  ri__err err;
  ri_status st = ri__rie_read_file(g_path, &out, &err);
  if (st == RI_OK) {
    ri__rie_content_free(&out);
  } else {
    CHECK_MSG(st == RI_ERR_NO_MEMORY, "read file: %s", err.msg);
    CHECK_MSG(strstr(err.msg, g_path) != NULL || strstr(err.msg, "out of memory"), "%s", err.msg);
  }
  return st;
}

static ri_status op_write_memory(void) {
  void *out = NULL;
  size_t size = 0;
  ri__err err;
  ri_status st = ri__rie_write(&g_content, &out, &size, &err);
  if (st == RI_OK) {
    CHECK(size == g_size && memcmp(out, g_bytes, size) == 0);
    ri__free(out);
  } else {
    CHECK_MSG(st == RI_ERR_NO_MEMORY, "write: %s", err.msg);
    CHECK(out == NULL);
  }
  return st;
}

/* Returns the number of failing steps before success. */
static long sweep(const char *what, ri_status (*op)(void)) {
  long start = ri__alloc_live();
  long n = 1;
  for (;; n++) {
    ri__alloc_fail_after(n);
    ri_status st = op();
    ri__alloc_fail_after(0);
    CHECK_MSG(ri__alloc_live() == start, "%s: failing allocation %ld leaked %ld", what, n,
              ri__alloc_live() - start);
    if (st == RI_OK || st != RI_ERR_NO_MEMORY || n > 100000) break;
  }
  printf("%s: succeeded once allocation %ld no longer failed\n", what, n);
  return n - 1;
}

int main(void) {
  unsigned char *bytes = NULL;
  CHECK(sample_bytes(&bytes, &g_size));
  CHECK(sample_content(&g_content));
  if (!bytes || !g_content.graph) return test_done("test_rie_alloc_fail");
  g_bytes = bytes;

  char dir[] = "/tmp/ri_rie_af_XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[256];
  snprintf(path, sizeof path, "%s/sample.rie", dir);
  g_path = path;
  FILE *f = fopen(path, "wb");
  CHECK(f && fwrite(bytes, 1, g_size, f) == g_size);
  if (f) fclose(f);

  /* the sample has 14 values (names, constant data) and 5 nodes with 8 attributes: the reader makes well
   * over 50 allocations, each of which must have been failed once */
  CHECK(sweep("read from memory", op_read_memory) > 50);
  CHECK(sweep("read from file", op_read_file) > 50);
  CHECK(sweep("write to memory", op_write_memory) >= 3);

  unlink(path);
  rmdir(dir);
  ri__graph_destroy(g_content.graph);
  ri__free(bytes);
  return test_done("test_rie_alloc_fail");
}
