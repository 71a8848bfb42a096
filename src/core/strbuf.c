#include "core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

void ri__sb_init(ri__strbuf *sb) { memset(sb, 0, sizeof *sb); }

void ri__sb_free(ri__strbuf *sb) {
  ri__free(sb->data);
  memset(sb, 0, sizeof *sb);
}

static int reserve(ri__strbuf *sb, size_t extra) {
  if (sb->oom) return 0;
  size_t need;
  if (!ri__add_size(sb->len, extra + 1, &need)) {
    sb->oom = 1;
    return 0;
  }
  if (need <= sb->cap) return 1;
  size_t nc = sb->cap ? sb->cap : 256;
  while (nc < need)
    nc *= 2;
  char *p = ri__realloc(sb->data, nc);
  if (!p) {
    sb->oom = 1;
    return 0;
  }
  sb->data = p;
  sb->cap = nc;
  return 1;
}

void ri__sb_append(ri__strbuf *sb, const char *s, size_t n) {
  if (!reserve(sb, n)) return;
  memcpy(sb->data + sb->len, s, n);
  sb->len += n;
  sb->data[sb->len] = 0;
}

void ri__sb_puts(ri__strbuf *sb, const char *s) { ri__sb_append(sb, s, strlen(s)); }

void ri__sb_printf(ri__strbuf *sb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    ri__sb_append(sb, small, (size_t)n);
    return;
  }
  if (!reserve(sb, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  unsigned min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0)
    len = 2, min = 0x80;
  else if ((c & 0xF0) == 0xE0)
    len = 3, min = 0x800;
  else if ((c & 0xF8) == 0xF0)
    len = 4, min = 0x10000;
  else
    return 0;
  if (len > n) return 0;
  unsigned cp = c & (0x7F >> len);
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

void ri__sb_json_str(ri__strbuf *sb, const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  ri__sb_append(sb, "\"", 1);
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      ri__sb_append(sb, esc, 2);
      i++;
    } else if (c < 0x20 || c == 0x7F) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      ri__sb_append(sb, esc, 6);
      i++;
    } else if (c < 0x80) {
      ri__sb_append(sb, (const char *)&s[i], 1);
      i++;
    } else {
      size_t l = utf8_len(s + i, n - i);
      if (l == 0) {
        snprintf(esc, sizeof esc, "\\u%04x", 0xDC00 + c);
        ri__sb_append(sb, esc, 6);
        i++;
      } else {
        ri__sb_append(sb, (const char *)&s[i], l);
        i += l;
      }
    }
  }
  ri__sb_append(sb, "\"", 1);
}

char *ri__sb_take(ri__strbuf *sb) {
  if (sb->oom) {
    ri__sb_free(sb);
    return NULL;
  }
  if (!sb->data) {
    char *e = ri__malloc(1);
    if (e) e[0] = 0;
    return e;
  }
  char *p = sb->data;
  memset(sb, 0, sizeof *sb);
  return p;
}
