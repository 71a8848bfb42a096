/* Internal helpers shared by the vision sources: error hand-off to ri_vision_error, a bounded string
 * builder that measures what it could not write, locale-independent number text, and the key=value
 * tokenizer of the spec / config text forms. */
#ifndef RI_VISION_INTERNAL_H
#define RI_VISION_INTERNAL_H

#include <stddef.h>

#include "core/err.h"
#include "runinfer/vision.h"

/* Copy err into out (when out is not NULL) and return err->status. */
ri_status ri__verr_out(ri_vision_error *out, const ri__err *err);
/* Clear out (when not NULL) and return RI_OK. */
ri_status ri__verr_ok(ri_vision_error *out);

/* Bounded string builder. Writes at most cap - 1 characters into buf and always keeps it NUL-terminated
 * (when cap > 0); len counts every character appended, written or not. */
typedef struct {
  char *buf;
  size_t cap;
  size_t len;
} ri__vsb;

void ri__vsb_init(ri__vsb *sb, char *buf, size_t cap);
void ri__vsb_put(ri__vsb *sb, const char *s, size_t n);
void ri__vsb_puts(ri__vsb *sb, const char *s);
void ri__vsb_putc(ri__vsb *sb, char c);
void ri__vsb_printf(ri__vsb *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append a double in "%.<digits>g" form with '.' as decimal point whatever the C locale. */
void ri__vsb_num(ri__vsb *sb, double v, int digits);
/* Set *needed to len + 1 and return RI_OK, or RI_ERR_LIMIT (recorded in err, what names the text) when
 * the buffer was too small. */
ri_status ri__vsb_finish(ri__vsb *sb, size_t *needed, const char *what, ri__err *err);

/* Parse exactly [s, s + n) as a finite decimal number ('.' decimal point whatever the locale, optional
 * sign and exponent; no hex, inf or nan). Returns 1 on success. */
int ri__parse_double(const char *s, size_t n, double *out);
/* Parse exactly [s, s + n) as a decimal integer in [lo, hi]. Returns 1 on success. */
int ri__parse_long(const char *s, size_t n, long lo, long hi, long *out);

/* Tokenizer for "key=value;key=value" text. Empty items (";;", a trailing ';') are skipped; spaces and
 * tabs around keys and values are trimmed. */
typedef struct {
  const char *p;
} ri__kv_iter;

typedef struct {
  const char *key;
  size_t key_len;
  const char *val;
  size_t val_len;
} ri__kv;

/* Returns 1 with the next item in *kv, 0 at the end, -1 for an item without '=' (kv->key spans it). */
int ri__kv_next(ri__kv_iter *it, ri__kv *kv);
/* 1 when [s, s + n) equals the NUL-terminated word. */
int ri__str_eq(const char *s, size_t n, const char *word);
/* Split a comma-separated list into at most max numbers; *count receives how many. Returns 1 on success,
 * 0 for a bad number or too many values. */
int ri__parse_float_list(const char *s, size_t n, float *out, int max, int *count);

#endif
