/* Timing cache (timing_cache.h): entries in insertion order plus an open-addressing index. */
#include "core/timing_cache.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"

typedef struct {
  char *key;
  float us;
} entry;

struct ri__tcache {
  entry *e;
  size_t n, cap, added;
  size_t *slot; /* index + 1 into e, 0 = empty; slots is a power of two >= 2 * n */
  size_t slots;
};

static uint64_t fnv1a(const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

ri__tcache *ri__tcache_new(void) { return ri__calloc(1, sizeof(ri__tcache)); }

void ri__tcache_free(ri__tcache *c) {
  if (!c) return;
  for (size_t i = 0; i < c->n; i++)
    ri__free(c->e[i].key);
  ri__free(c->e);
  ri__free(c->slot);
  ri__free(c);
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find(const ri__tcache *c, const char *key, size_t len) {
  size_t i = (size_t)fnv1a(key, len) & (c->slots - 1);
  while (c->slot[i] && strcmp(c->e[c->slot[i] - 1].key, key) != 0)
    i = (i + 1) & (c->slots - 1);
  return i;
}

static int grow_index(ri__tcache *c) {
  size_t slots = c->slots ? c->slots * 2 : 64;
  size_t *s = ri__calloc(slots, sizeof *s);
  if (!s) return 0;
  ri__free(c->slot);
  c->slot = s;
  c->slots = slots;
  for (size_t k = 0; k < c->n; k++)
    c->slot[find(c, c->e[k].key, strlen(c->e[k].key))] = k + 1;
  return 1;
}

int ri__tcache_get(const ri__tcache *c, const char *key, float *us) {
  if (!c || !key || !c->slots) return 0;
  size_t i = find(c, key, strlen(key));
  if (!c->slot[i]) return 0;
  if (us) *us = c->e[c->slot[i] - 1].us;
  return 1;
}

static int good_time(float us) { return isfinite(us) && us >= 0.f; }

ri_status ri__tcache_put(ri__tcache *c, const char *key, float us, ri__err *err) {
  if (!c || !key) return ri__err_set(err, RI_ERR_INVALID_ARG, "timing cache: NULL argument");
  size_t len = strlen(key);
  if (len == 0 || len > RI__TCACHE_MAX_KEY || !good_time(us))
    return ri__err_set(err, RI_ERR_INVALID_ARG, "timing cache: key of %zu bytes or time %g refused", len,
                       (double)us);
  if (c->slots) {
    size_t i = find(c, key, len);
    if (c->slot[i]) {
      c->e[c->slot[i] - 1].us = us;
      return RI_OK;
    }
  }
  if (c->n >= RI__TCACHE_MAX_ENTRIES)
    return ri__err_set(err, RI_ERR_LIMIT, "timing cache: more than %u entries", RI__TCACHE_MAX_ENTRIES);
  if ((c->n + 1) * 2 > c->slots && !grow_index(c)) return RI__OOM(err);
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 64;
    entry *e = ri__malloc(cap * sizeof *e);
    if (!e) return RI__OOM(err);
    if (c->n) memcpy(e, c->e, c->n * sizeof *e);
    ri__free(c->e);
    c->e = e;
    c->cap = cap;
  }
  char *k = ri__malloc(len + 1);
  if (!k) return RI__OOM(err);
  memcpy(k, key, len + 1);
  c->e[c->n].key = k;
  c->e[c->n].us = us;
  c->slot[find(c, key, len)] = c->n + 1;
  c->n++;
  c->added++;
  return RI_OK;
}

size_t ri__tcache_count(const ri__tcache *c) { return c ? c->n : 0; }
size_t ri__tcache_added(const ri__tcache *c) { return c ? c->added : 0; }

static uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

ri_status ri__tcache_parse(const void *data, size_t size, const char *name, ri__tcache **out, ri__err *err) {
  if (!out) return ri__err_set(err, RI_ERR_INVALID_ARG, "timing cache: NULL argument");
  *out = NULL;
  const unsigned char *p = data;
  if (!p || size < 24)
    return ri__err_set(err, RI_ERR_PARSE, "timing cache '%s': %zu bytes, too short for a timing cache", name,
                       size);
  if (memcmp(p, RI__TCACHE_MAGIC, 8) != 0)
    return ri__err_set(err, RI_ERR_PARSE, "timing cache '%s': not a timing cache (bad magic)", name);
  uint32_t version = rd32(p + 8), count = rd32(p + 12);
  if (version != RI__TCACHE_VERSION)
    return ri__err_set(err, RI_ERR_PARSE, "timing cache '%s': version %u, this library reads version %u",
                       name, version, RI__TCACHE_VERSION);
  uint64_t want = 0;
  for (int i = 0; i < 8; i++)
    want |= (uint64_t)p[size - 8 + i] << (8 * i);
  if (fnv1a(p, size - 8) != want)
    return ri__err_set(err, RI_ERR_CHECKSUM, "timing cache '%s': checksum mismatch (corrupt or truncated)",
                       name);
  if (count > RI__TCACHE_MAX_ENTRIES)
    return ri__err_set(err, RI_ERR_LIMIT, "timing cache '%s': %u entries, more than %u", name, count,
                       RI__TCACHE_MAX_ENTRIES);
  /* Every entry takes at least 9 bytes: a count past that is a lie, refused before any allocation. */
  if ((uint64_t)count * 9 > size - 24)
    return ri__err_set(err, RI_ERR_PARSE, "timing cache '%s': %u entries cannot fit in %zu bytes", name,
                       count, size);
  ri__tcache *c = ri__tcache_new();
  if (!c) return RI__OOM(err);
  size_t at = 16, end = size - 8;
  char key[RI__TCACHE_MAX_KEY + 1];
  ri_status s = RI_OK;
  for (uint32_t i = 0; i < count && s == RI_OK; i++) {
    if (end - at < 4) {
      s = ri__err_set(err, RI_ERR_PARSE, "timing cache '%s': entry %u is cut off", name, i);
      break;
    }
    uint32_t len = rd32(p + at);
    at += 4;
    if (len == 0 || len > RI__TCACHE_MAX_KEY) {
      s = ri__err_set(err, RI_ERR_LIMIT, "timing cache '%s': entry %u has a key of %u bytes (1..%u)", name, i,
                      len, RI__TCACHE_MAX_KEY);
      break;
    }
    if (end - at < (size_t)len + 4) {
      s = ri__err_set(err, RI_ERR_PARSE, "timing cache '%s': entry %u is cut off", name, i);
      break;
    }
    memcpy(key, p + at, len);
    key[len] = 0;
    at += len;
    float us;
    uint32_t bits = rd32(p + at);
    memcpy(&us, &bits, 4);
    at += 4;
    if (memchr(key, 0, len)) {
      s = ri__err_set(err, RI_ERR_PARSE, "timing cache '%s': entry %u has a NUL in its key", name, i);
    } else if (!good_time(us)) {
      s = ri__err_set(err, RI_ERR_PARSE, "timing cache '%s': entry %u has time %g (finite, >= 0)", name, i,
                      (double)us);
    } else if (ri__tcache_get(c, key, NULL)) {
      s = ri__err_set(err, RI_ERR_PARSE, "timing cache '%s': entry %u repeats key '%.80s'", name, i, key);
    } else {
      s = ri__tcache_put(c, key, us, err);
    }
  }
  if (s == RI_OK && at != end)
    s = ri__err_set(err, RI_ERR_PARSE, "timing cache '%s': %zu bytes after the last entry", name, end - at);
  if (s != RI_OK) {
    ri__tcache_free(c);
    return s;
  }
  c->added = 0;
  *out = c;
  return RI_OK;
}

ri_status ri__tcache_load(const char *path, ri__tcache **out, ri__err *err) {
  if (!path || !out) return ri__err_set(err, RI_ERR_INVALID_ARG, "timing cache: NULL argument");
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno != ENOENT)
      return ri__err_set(err, RI_ERR_IO, "timing cache '%s': cannot open: %s", path, strerror(errno));
    *out = ri__tcache_new();
    return *out ? RI_OK : RI__OOM(err);
  }
  /* The largest valid file: every entry at its longest. */
  const long most = 24 + (long)RI__TCACHE_MAX_ENTRIES * (8 + (long)RI__TCACHE_MAX_KEY);
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
  if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return ri__err_set(err, RI_ERR_IO, "timing cache '%s': cannot read its size", path);
  }
  if (n > most) {
    fclose(f);
    return ri__err_set(err, RI_ERR_LIMIT, "timing cache '%s': %ld bytes, more than a cache can hold", path,
                       n);
  }
  unsigned char *buf = ri__malloc(n > 0 ? (size_t)n : 1);
  if (!buf) {
    fclose(f);
    return RI__OOM(err);
  }
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  ri_status s = got == (size_t)n ? ri__tcache_parse(buf, got, path, out, err)
                                 : ri__err_set(err, RI_ERR_IO, "timing cache '%s': short read", path);
  ri__free(buf);
  return s;
}

static void wr32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

ri_status ri__tcache_serialize(const ri__tcache *c, void **out, size_t *size, ri__err *err) {
  if (!c || !out || !size) return ri__err_set(err, RI_ERR_INVALID_ARG, "timing cache: NULL argument");
  size_t total = 24;
  for (size_t i = 0; i < c->n; i++)
    total += 8 + strlen(c->e[i].key);
  unsigned char *b = ri__malloc(total);
  if (!b) return RI__OOM(err);
  memcpy(b, RI__TCACHE_MAGIC, 8);
  wr32(b + 8, RI__TCACHE_VERSION);
  wr32(b + 12, (uint32_t)c->n);
  size_t at = 16;
  for (size_t i = 0; i < c->n; i++) {
    uint32_t len = (uint32_t)strlen(c->e[i].key), bits;
    wr32(b + at, len);
    memcpy(b + at + 4, c->e[i].key, len);
    memcpy(&bits, &c->e[i].us, 4);
    wr32(b + at + 4 + len, bits);
    at += 8 + len;
  }
  uint64_t h = fnv1a(b, at);
  for (int i = 0; i < 8; i++)
    b[at + (size_t)i] = (unsigned char)(h >> (8 * i));
  *out = b;
  *size = total;
  return RI_OK;
}

ri_status ri__tcache_save(const ri__tcache *c, const char *path, ri__err *err) {
  if (!path) return ri__err_set(err, RI_ERR_INVALID_ARG, "timing cache: NULL path");
  void *buf = NULL;
  size_t n = 0;
  RI__TRY(ri__tcache_serialize(c, &buf, &n, err));
  size_t plen = strlen(path);
  char *tmp = ri__malloc(plen + 16);
  if (!tmp) {
    ri__free(buf);
    return RI__OOM(err);
  }
  snprintf(tmp, plen + 16, "%s.tmp%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  ri_status s = RI_OK;
  if (!f) {
    s = ri__err_set(err, RI_ERR_IO, "timing cache '%s': cannot create '%s': %s", path, tmp, strerror(errno));
  } else {
    int bad = fwrite(buf, 1, n, f) != n;
    bad |= fclose(f) != 0;
    if (bad)
      s = ri__err_set(err, RI_ERR_IO, "timing cache '%s': cannot write '%s'", path, tmp);
    else if (rename(tmp, path) != 0)
      s = ri__err_set(err, RI_ERR_IO, "timing cache '%s': cannot rename '%s': %s", path, tmp,
                      strerror(errno));
    if (s != RI_OK) remove(tmp);
  }
  ri__free(tmp);
  ri__free(buf);
  return s;
}
