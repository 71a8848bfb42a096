/* Growable string buffer for building text (JSON descriptions, messages). On allocation failure the buffer
 * remembers it (oom = 1) and further appends are ignored, so callers check once at the end. */
#ifndef RI_CORE_STRBUF_H
#define RI_CORE_STRBUF_H

#include <stddef.h>

typedef struct {
  char *data;
  size_t len, cap;
  int oom;
} ri__strbuf;

void ri__sb_init(ri__strbuf *sb);
void ri__sb_free(ri__strbuf *sb);
void ri__sb_append(ri__strbuf *sb, const char *s, size_t n);
void ri__sb_puts(ri__strbuf *sb, const char *s);
void ri__sb_printf(ri__strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal (with quotes). Control characters are escaped as \u00XX; each byte
 * that is not part of valid UTF-8 is escaped as the lone surrogate \uDCXX (Python's "surrogateescape"
 * convention), which valid UTF-8 can never produce, so distinct byte strings stay distinct and the original
 * bytes can be recovered. */
void ri__sb_json_str(ri__strbuf *sb, const char *s, size_t n);
/* Detaches the string (NUL-terminated, owned by the caller, ri__free); NULL if oom. */
char *ri__sb_take(ri__strbuf *sb);

#endif
