/* Builder options of tactic timing (ri_builder_set_builder_level, ri_builder_set_timing_cache) and half
 * accumulation (ri_builder_set_half_accumulation) on the CPU: range checks; a corrupt timing cache fails the
 * build with the file named; a missing cache file is fine and a CPU build (which times nothing) leaves no
 * file behind; CPU engines built at every level, with or without half accumulation (which they ignore), are
 * byte-identical and describe themselves identically. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runinfer/engine.h"
#include "test.h"
#include "test_file.h"
#include "test_onnx_build.h"

static ri_status build(const uint8_t *onnx, size_t len, int level, const char *cache, int half,
                       ri_engine_t **e, char *msg, size_t cap) {
  ri_builder_t *b = NULL;
  ri_status s = ri_builder_create(&b);
  if (s == RI_OK) s = ri_builder_set_max_batch(b, 4);
  if (s == RI_OK) s = ri_builder_set_builder_level(b, level);
  if (s == RI_OK) s = ri_builder_set_timing_cache(b, cache);
  if (s == RI_OK) s = ri_builder_set_half_accumulation(b, half);
  if (s == RI_OK) s = ri_builder_build_onnx_memory(b, onnx, len, ".", e);
  snprintf(msg, cap, "%s", b ? ri_builder_last_error(b) : "");
  ri_builder_destroy(b);
  return s;
}

int main(void) {
  ri_builder_t *b = NULL;
  CHECK(ri_builder_create(&b) == RI_OK);
  CHECK(ri_builder_set_builder_level(b, -1) == RI_ERR_INVALID_ARG &&
        strstr(ri_builder_last_error(b), "0..5"));
  CHECK(ri_builder_set_builder_level(b, 6) == RI_ERR_INVALID_ARG);
  CHECK(ri_builder_set_builder_level(b, 0) == RI_OK && ri_builder_set_builder_level(b, 5) == RI_OK);
  CHECK(ri_builder_set_timing_cache(b, "") == RI_ERR_INVALID_ARG);
  CHECK(ri_builder_set_timing_cache(b, "/tmp/x.cache") == RI_OK &&
        ri_builder_set_timing_cache(b, NULL) == RI_OK);
  CHECK(ri_builder_set_builder_level(NULL, 1) == RI_ERR_INVALID_ARG);
  CHECK(ri_builder_set_timing_cache(NULL, "a") == RI_ERR_INVALID_ARG);
  CHECK(ri_builder_set_half_accumulation(NULL, 1) == RI_ERR_INVALID_ARG);
  CHECK(ri_builder_set_half_accumulation(b, 1) == RI_OK && ri_builder_set_half_accumulation(b, 0) == RI_OK);
  ri_builder_destroy(b);

  size_t len = 0;
  uint8_t *onnx = tb_conv_relu_model("x", &len);
  char msg[1024], cache[64], bad[64], path[2][64];
  snprintf(cache, sizeof cache, "/tmp/ri_test_bopt_%d.cache", (int)getpid());
  snprintf(bad, sizeof bad, "/tmp/ri_test_bopt_bad_%d.cache", (int)getpid());
  remove(cache);

  /* a corrupt cache fails the build, naming the file */
  FILE *f = fopen(bad, "wb");
  if (f) {
    fputs("RITCACHE but not really a timing cache file", f);
    fclose(f);
  }
  ri_engine_t *e = NULL;
  ri_status s = build(onnx, len, 3, bad, 0, &e, msg, sizeof msg);
  CHECK_MSG(s != RI_OK && e == NULL && strstr(msg, bad), "status %d: %s", (int)s, msg);
  remove(bad);

  /* CPU engines at level 0 and 5 (with a cache that does not exist yet, and half accumulation): identical
   * files and descriptions, and no cache written (nothing was timed) */
  const char *desc[2] = {NULL, NULL};
  ri_engine_t *eng[2] = {NULL, NULL};
  for (int k = 0; k < 2; k++) {
    s = build(onnx, len, k ? 5 : 0, k ? cache : NULL, k, &eng[k], msg, sizeof msg);
    CHECK_MSG(s == RI_OK, "level %d: %s", k ? 5 : 0, msg);
    snprintf(path[k], sizeof path[k], "/tmp/ri_test_bopt_%d_%d.rie", (int)getpid(), k);
    if (s == RI_OK)
      CHECK(ri_engine_save(eng[k], path[k]) == RI_OK && ri_engine_describe_json(eng[k], &desc[k]) == RI_OK);
  }
  CHECK(desc[0] && desc[1] && strcmp(desc[0], desc[1]) == 0);
  unsigned char *d0 = NULL, *d1 = NULL;
  long n0 = test_read_file(path[0], &d0), n1 = test_read_file(path[1], &d1);
  CHECK(n0 > 0 && n0 == n1 && memcmp(d0, d1, (size_t)n0) == 0);
  CHECK(access(cache, F_OK) != 0);
  free(d0);
  free(d1);
  for (int k = 0; k < 2; k++) {
    ri_engine_destroy(eng[k]);
    remove(path[k]);
  }
  tb_reset();
  return test_done("test_builder_options");
}
