#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/rie_decode.h"

ri_status ri__rie_cur_fail(ri__rie_cur *c, ri_status st, const char *fmt, ...) {
  char detail[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  char where[RI__MAX_NAME + 64] = "";
  if (c->item && c->item_name)
    snprintf(where, sizeof where, ", %s %ld '%.200s'", c->item, c->index, c->item_name);
  else if (c->item)
    snprintf(where, sizeof where, ", %s %ld", c->item, c->index);
  return ri__err_set(c->err, st, "engine file '%s': %s section%s: %s", c->file, c->section, where, detail);
}

static ri_status need(ri__rie_cur *c, size_t n, const char *what) {
  if (n > c->size - c->pos)
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "%s needs %zu bytes at offset %zu but only %zu remain", what, n,
                            c->pos, c->size - c->pos);
  return RI_OK;
}

static uint64_t le_load(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

ri_status ri__rie_cur_bytes(ri__rie_cur *c, size_t n, const char *what, const uint8_t **bytes) {
  RI__TRY(need(c, n, what));
  *bytes = c->p + c->pos;
  c->pos += n;
  return RI_OK;
}

ri_status ri__rie_cur_u8(ri__rie_cur *c, const char *what, uint8_t *out) {
  RI__TRY(need(c, 1, what));
  *out = c->p[c->pos++];
  return RI_OK;
}

ri_status ri__rie_cur_u32(ri__rie_cur *c, const char *what, uint32_t *out) {
  RI__TRY(need(c, 4, what));
  *out = (uint32_t)le_load(c->p + c->pos, 4);
  c->pos += 4;
  return RI_OK;
}

ri_status ri__rie_cur_i32(ri__rie_cur *c, const char *what, int32_t *out) {
  uint32_t u;
  RI__TRY(ri__rie_cur_u32(c, what, &u));
  *out = (int32_t)u;
  return RI_OK;
}

ri_status ri__rie_cur_u64(ri__rie_cur *c, const char *what, uint64_t *out) {
  RI__TRY(need(c, 8, what));
  *out = le_load(c->p + c->pos, 8);
  c->pos += 8;
  return RI_OK;
}

ri_status ri__rie_cur_i64(ri__rie_cur *c, const char *what, int64_t *out) {
  uint64_t u;
  RI__TRY(ri__rie_cur_u64(c, what, &u));
  *out = (int64_t)u;
  return RI_OK;
}

ri_status ri__rie_cur_f32(ri__rie_cur *c, const char *what, float *out) {
  uint32_t u;
  RI__TRY(ri__rie_cur_u32(c, what, &u));
  memcpy(out, &u, 4);
  return RI_OK;
}

ri_status ri__rie_cur_bool(ri__rie_cur *c, const char *what, int *out) {
  uint8_t b;
  RI__TRY(ri__rie_cur_u8(c, what, &b));
  if (b > 1) return ri__rie_cur_fail(c, RI_ERR_PARSE, "%s is %u, expected 0 or 1", what, (unsigned)b);
  *out = b;
  return RI_OK;
}

ri_status ri__rie_cur_count(ri__rie_cur *c, uint32_t limit, size_t min_item_bytes, const char *what,
                            uint32_t *out) {
  uint32_t n;
  RI__TRY(ri__rie_cur_u32(c, what, &n));
  if (n > limit)
    return ri__rie_cur_fail(c, RI_ERR_LIMIT, "%s %lu exceeds the limit %lu", what, (unsigned long)n,
                            (unsigned long)limit);
  /* n <= limit (at most a few million) and min_item_bytes is small: the product cannot overflow. */
  size_t bytes = (size_t)n * min_item_bytes;
  if (bytes > c->size - c->pos)
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "%s %lu needs at least %zu bytes but only %zu remain", what,
                            (unsigned long)n, bytes, c->size - c->pos);
  *out = n;
  return RI_OK;
}

ri_status ri__rie_cur_view(ri__rie_cur *c, size_t limit, int nullable, const char *what, const char **s,
                           size_t *len) {
  uint32_t n;
  RI__TRY(ri__rie_cur_u32(c, what, &n));
  if (n == RI__RIE_NULL_STRING) {
    if (!nullable) return ri__rie_cur_fail(c, RI_ERR_PARSE, "%s is missing (NULL string marker)", what);
    *s = NULL;
    *len = 0;
    return RI_OK;
  }
  if (n > limit)
    return ri__rie_cur_fail(c, RI_ERR_LIMIT, "%s length %lu exceeds the limit %zu", what, (unsigned long)n,
                            limit);
  const uint8_t *b;
  RI__TRY(ri__rie_cur_bytes(c, n, what, &b));
  if (n && memchr(b, 0, n))
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "%s contains a NUL byte at position %zu", what,
                            (size_t)((const uint8_t *)memchr(b, 0, n) - b));
  *s = (const char *)b;
  *len = n;
  return RI_OK;
}

ri_status ri__rie_cur_str(ri__rie_cur *c, size_t limit, int nullable, const char *what, char **out) {
  const char *s = NULL;
  size_t n = 0;
  RI__TRY(ri__rie_cur_view(c, limit, nullable, what, &s, &n));
  if (!s) {
    *out = NULL;
    return RI_OK;
  }
  *out = ri__strndup(s, n);
  if (!*out) return ri__rie_cur_fail(c, RI_ERR_NO_MEMORY, "out of memory copying %s (%zu bytes)", what, n);
  return RI_OK;
}
