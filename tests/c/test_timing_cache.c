/* Timing cache (src/core/timing_cache.h): put / get / replace, save and load back, a missing file is an
 * empty cache, and every kind of corrupt or hostile file is refused with the documented status and a
 * message naming the file, without crashing or allocating past the file's size. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/timing_cache.h"
#include "test.h"

static void wr32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

/* FNV-1a 64 as the file format defines it, to forge files with a valid hash. */
static void rehash(unsigned char *b, size_t size) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size - 8; i++) {
    h ^= b[i];
    h *= 0x100000001b3ull;
  }
  for (int i = 0; i < 8; i++)
    b[size - 8 + (size_t)i] = (unsigned char)(h >> (8 * i));
}

static ri_status parse(const unsigned char *b, size_t n, ri__tcache **c, ri__err *err) {
  ri__err_clear(err);
  return ri__tcache_parse(b, n, "t.cache", c, err);
}

static void test_basic(void) {
  ri__err err = {0};
  ri__tcache *c = ri__tcache_new();
  CHECK(c != NULL);
  float us = -1.f;
  CHECK(!ri__tcache_get(c, "a", &us));
  CHECK(ri__tcache_put(c, "cuda:sm_90:H200|conv 1x1|t64x64 s4 b1", 12.5f, &err) == RI_OK);
  CHECK(ri__tcache_put(c, "b", 0.f, &err) == RI_OK);
  CHECK(ri__tcache_get(c, "cuda:sm_90:H200|conv 1x1|t64x64 s4 b1", &us) && us == 12.5f);
  CHECK(ri__tcache_put(c, "b", 3.f, &err) == RI_OK); /* replaces */
  CHECK(ri__tcache_get(c, "b", &us) && us == 3.f && ri__tcache_count(c) == 2);
  CHECK(ri__tcache_put(c, "", 1.f, &err) == RI_ERR_INVALID_ARG);
  CHECK(ri__tcache_put(c, "x", -1.f, &err) == RI_ERR_INVALID_ARG);
  CHECK(ri__tcache_put(c, "x", 1.f / 0.f, &err) == RI_ERR_INVALID_ARG);
  char longkey[RI__TCACHE_MAX_KEY + 2];
  memset(longkey, 'k', sizeof longkey - 1);
  longkey[sizeof longkey - 1] = 0;
  CHECK(ri__tcache_put(c, longkey, 1.f, &err) == RI_ERR_INVALID_ARG);
  /* many keys: the index grows and every key is still found */
  char key[32];
  for (int i = 0; i < 1000; i++) {
    snprintf(key, sizeof key, "key%d", i);
    CHECK(ri__tcache_put(c, key, (float)i, &err) == RI_OK);
  }
  int found = 0;
  for (int i = 0; i < 1000; i++) {
    snprintf(key, sizeof key, "key%d", i);
    found += ri__tcache_get(c, key, &us) && us == (float)i;
  }
  CHECK(found == 1000 && ri__tcache_count(c) == 1002);
  /* save, load back: same entries, none counted as added */
  char path[64];
  snprintf(path, sizeof path, "/tmp/ri_test_tcache_%d", (int)getpid());
  CHECK(ri__tcache_save(c, path, &err) == RI_OK);
  ri__tcache *back = NULL;
  CHECK(ri__tcache_load(path, &back, &err) == RI_OK && back);
  CHECK(ri__tcache_count(back) == 1002 && ri__tcache_added(back) == 0);
  CHECK(ri__tcache_get(back, "key999", &us) && us == 999.f);
  CHECK(ri__tcache_get(back, "b", &us) && us == 3.f);
  ri__tcache_free(back);
  remove(path);
  /* a missing file is an empty cache */
  back = NULL;
  CHECK(ri__tcache_load(path, &back, &err) == RI_OK && back && ri__tcache_count(back) == 0);
  ri__tcache_free(back);
  ri__tcache_free(c);
  ri__tcache_free(NULL);
}

/* A valid two-entry file, then each corruption of it. */
static void test_corrupt(void) {
  ri__err err = {0};
  ri__tcache *c = ri__tcache_new(), *out = NULL;
  CHECK(ri__tcache_put(c, "alpha", 1.f, &err) == RI_OK && ri__tcache_put(c, "beta", 2.f, &err) == RI_OK);
  void *vb = NULL;
  size_t n = 0;
  CHECK(ri__tcache_serialize(c, &vb, &n, &err) == RI_OK);
  ri__tcache_free(c);
  unsigned char *good = vb, b[256];
  CHECK(n == 24 + 8 + 5 + 8 + 4 && n <= sizeof b);
  CHECK(parse(good, n, &out, &err) == RI_OK && out && ri__tcache_count(out) == 2);
  ri__tcache_free(out);
  out = NULL;

  /* every truncation fails, never crashes */
  int refused = 0;
  for (size_t k = 0; k < n; k++)
    refused += parse(good, k, &out, &err) != RI_OK && out == NULL;
  CHECK(refused == (int)n);
  /* every single flipped byte fails (the hash covers all of it; a flip in the hash itself mismatches) */
  refused = 0;
  for (size_t k = 0; k < n; k++) {
    memcpy(b, good, n);
    b[k] ^= 0x5a;
    refused += parse(b, n, &out, &err) != RI_OK && out == NULL;
  }
  CHECK(refused == (int)n);
  memcpy(b, good, n);
  b[20] ^= 1;
  CHECK(parse(b, n, &out, &err) == RI_ERR_CHECKSUM && strstr(err.msg, "t.cache"));

  /* forged files with a valid hash */
  memcpy(b, good, n);
  b[0] = 'X';
  rehash(b, n);
  CHECK(parse(b, n, &out, &err) == RI_ERR_PARSE && strstr(err.msg, "magic"));
  memcpy(b, good, n);
  wr32(b + 8, 2);
  rehash(b, n);
  CHECK(parse(b, n, &out, &err) == RI_ERR_PARSE && strstr(err.msg, "version 2"));
  memcpy(b, good, n);
  wr32(b + 12, 0xFFFFFFFFu); /* a huge count: refused before any allocation */
  rehash(b, n);
  CHECK(parse(b, n, &out, &err) == RI_ERR_LIMIT);
  memcpy(b, good, n);
  wr32(b + 12, 1000); /* more entries than the bytes can hold */
  rehash(b, n);
  CHECK(parse(b, n, &out, &err) == RI_ERR_PARSE && strstr(err.msg, "cannot fit"));
  memcpy(b, good, n);
  wr32(b + 12, 1); /* one entry declared, two present: trailing bytes */
  rehash(b, n);
  CHECK(parse(b, n, &out, &err) == RI_ERR_PARSE && strstr(err.msg, "after the last entry"));
  memcpy(b, good, n);
  wr32(b + 12, 3); /* three declared, two present */
  rehash(b, n);
  CHECK(parse(b, n, &out, &err) == RI_ERR_PARSE);
  memcpy(b, good, n - 11); /* the second entry's time cut short, the hash valid */
  rehash(b, n - 3);
  CHECK(parse(b, n - 3, &out, &err) == RI_ERR_PARSE && strstr(err.msg, "cut off"));
  memcpy(b, good, n);
  wr32(b + 16, 0); /* empty key */
  rehash(b, n);
  CHECK(parse(b, n, &out, &err) == RI_ERR_LIMIT);
  memcpy(b, good, n);
  wr32(b + 16, 100000); /* key longer than the limit */
  rehash(b, n);
  CHECK(parse(b, n, &out, &err) == RI_ERR_LIMIT);
  memcpy(b, good, n);
  b[22] = 0; /* NUL inside "alpha" */
  rehash(b, n);
  CHECK(parse(b, n, &out, &err) == RI_ERR_PARSE && strstr(err.msg, "NUL"));
  memcpy(b, good, n);
  wr32(b + 25, 0x7fc00000u); /* NaN time */
  rehash(b, n);
  CHECK(parse(b, n, &out, &err) == RI_ERR_PARSE && strstr(err.msg, "time"));
  memcpy(b, good, n);
  wr32(b + 25, 0xbf800000u); /* -1 */
  rehash(b, n);
  CHECK(parse(b, n, &out, &err) == RI_ERR_PARSE);
  /* a real duplicate: two entries "alpha" */
  unsigned char d[64];
  memcpy(d, good, 16 + 4 + 5 + 4);
  memcpy(d + 29, good + 16, 4 + 5 + 4);
  wr32(d + 12, 2);
  size_t dn = 16 + 2 * 13 + 8;
  rehash(d, dn);
  CHECK(parse(d, dn, &out, &err) == RI_ERR_PARSE && strstr(err.msg, "repeats"));
  CHECK(out == NULL);

  /* a file that exists but is garbage fails at load with the path in the message */
  char path[64];
  snprintf(path, sizeof path, "/tmp/ri_test_tcache_bad_%d", (int)getpid());
  FILE *f = fopen(path, "wb");
  if (f) {
    fputs("not a cache at all, just text", f);
    fclose(f);
  }
  ri__err_clear(&err);
  CHECK(ri__tcache_load(path, &out, &err) == RI_ERR_PARSE && out == NULL && strstr(err.msg, path));
  remove(path);
  ri__free(vb);
}

int main(void) {
  test_basic();
  test_corrupt();
  return test_done("test_timing_cache");
}
