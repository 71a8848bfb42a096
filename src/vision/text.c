/* Locale-independent number text, the bounded string builder and the key=value tokenizer used by the
 * vision text forms (preprocess spec, detect config, JSON). */
#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vision/vision_internal.h"

ri_status ri__verr_out(ri_vision_error *out, const ri__err *err) {
  if (out) {
    out->status = err->status;
    size_t n = strnlen(err->msg, sizeof out->msg - 1);
    memcpy(out->msg, err->msg, n);
    out->msg[n] = 0;
  }
  return err->status;
}

ri_status ri__verr_ok(ri_vision_error *out) {
  if (out) {
    out->status = RI_OK;
    out->msg[0] = 0;
  }
  return RI_OK;
}

void ri__vsb_init(ri__vsb *sb, char *buf, size_t cap) {
  sb->buf = cap ? buf : NULL;
  sb->cap = buf ? cap : 0;
  sb->len = 0;
  if (sb->cap) sb->buf[0] = 0;
}

void ri__vsb_put(ri__vsb *sb, const char *s, size_t n) {
  if (sb->cap && sb->len < sb->cap - 1) {
    size_t room = sb->cap - 1 - sb->len;
    size_t k = n < room ? n : room;
    memcpy(sb->buf + sb->len, s, k);
    sb->buf[sb->len + k] = 0;
  }
  sb->len += n;
}

void ri__vsb_puts(ri__vsb *sb, const char *s) { ri__vsb_put(sb, s, strlen(s)); }

void ri__vsb_putc(ri__vsb *sb, char c) { ri__vsb_put(sb, &c, 1); }

void ri__vsb_printf(ri__vsb *sb, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  /* Callers only format short items; longer output is cut to the scratch size. */
  ri__vsb_put(sb, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Replace the locale's decimal point in a formatted number by '.'. */
static void fix_decimal_point(char *s) {
  const char *dp = localeconv()->decimal_point;
  if (!dp || !dp[0] || (dp[0] == '.' && !dp[1])) return;
  size_t dl = strlen(dp);
  char *hit = strstr(s, dp);
  if (!hit) return;
  *hit = '.';
  memmove(hit + 1, hit + dl, strlen(hit + dl) + 1);
}

void ri__vsb_num(ri__vsb *sb, double v, int digits) {
  char tmp[64];
  snprintf(tmp, sizeof tmp, "%.*g", digits, v);
  fix_decimal_point(tmp);
  ri__vsb_puts(sb, tmp);
}

ri_status ri__vsb_finish(ri__vsb *sb, size_t *needed, const char *what, ri__err *err) {
  if (needed) *needed = sb->len + 1;
  if (sb->len + 1 > sb->cap)
    return ri__err_set(err, RI_ERR_LIMIT, "%s: output buffer of %zu bytes is too small, %zu needed", what,
                       sb->cap, sb->len + 1);
  return RI_OK;
}

int ri__parse_double(const char *s, size_t n, double *out) {
  char tmp[80];
  if (n == 0 || n >= 64) return 0;
  /* Accept only the plain decimal grammar: [sign] digits [. digits] [(e|E) [sign] digits]. */
  size_t i = 0, digits = 0;
  if (s[i] == '+' || s[i] == '-') i++;
  while (i < n && isdigit((unsigned char)s[i]))
    i++, digits++;
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && isdigit((unsigned char)s[i]))
      i++, digits++;
  }
  if (digits == 0) return 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    size_t ed = 0;
    while (i < n && isdigit((unsigned char)s[i]))
      i++, ed++;
    if (ed == 0) return 0;
  }
  if (i != n) return 0;
  /* strtod follows LC_NUMERIC: substitute the locale's decimal point for '.'. */
  const char *dp = localeconv()->decimal_point;
  size_t dl = (dp && dp[0]) ? strlen(dp) : 1;
  if (dl > 8) return 0;
  size_t o = 0;
  for (size_t k = 0; k < n; k++) {
    if (s[k] == '.' && dp && dp[0]) {
      memcpy(tmp + o, dp, dl);
      o += dl;
    } else {
      tmp[o++] = s[k];
    }
  }
  tmp[o] = 0;
  char *end = NULL;
  errno = 0;
  double v = strtod(tmp, &end);
  if (end != tmp + o || !isfinite(v)) return 0;
  *out = v;
  return 1;
}

int ri__parse_long(const char *s, size_t n, long lo, long hi, long *out) {
  size_t i = 0;
  int neg = 0;
  if (n == 0) return 0;
  if (s[0] == '+' || s[0] == '-') {
    neg = s[0] == '-';
    i++;
  }
  if (i == n) return 0;
  long long v = 0;
  for (; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) return 0;
    v = v * 10 + (s[i] - '0');
    if (v > (1ll << 40)) return 0;
  }
  if (neg) v = -v;
  if (v < lo || v > hi) return 0;
  *out = (long)v;
  return 1;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void trim(const char **s, size_t *n) {
  while (*n && is_space(**s))
    (*s)++, (*n)--;
  while (*n && is_space((*s)[*n - 1]))
    (*n)--;
}

int ri__kv_next(ri__kv_iter *it, ri__kv *kv) {
  for (;;) {
    if (!it->p || !*it->p) return 0;
    const char *start = it->p;
    const char *semi = strchr(start, ';');
    const char *end = semi ? semi : start + strlen(start);
    it->p = semi ? semi + 1 : end;
    const char *s = start;
    size_t n = (size_t)(end - start);
    trim(&s, &n);
    if (n == 0) continue;
    const char *eq = memchr(s, '=', n);
    if (!eq) {
      kv->key = s;
      kv->key_len = n;
      kv->val = s + n;
      kv->val_len = 0;
      return -1;
    }
    kv->key = s;
    kv->key_len = (size_t)(eq - s);
    kv->val = eq + 1;
    kv->val_len = n - kv->key_len - 1;
    trim(&kv->key, &kv->key_len);
    trim(&kv->val, &kv->val_len);
    return 1;
  }
}

int ri__str_eq(const char *s, size_t n, const char *word) {
  size_t wl = strlen(word);
  return wl == n && memcmp(s, word, n) == 0;
}

int ri__parse_float_list(const char *s, size_t n, float *out, int max, int *count) {
  int k = 0;
  size_t i = 0;
  if (n == 0) return 0;
  for (;;) {
    size_t j = i;
    while (j < n && s[j] != ',')
      j++;
    const char *item = s + i;
    size_t il = j - i;
    trim(&item, &il);
    double v;
    if (k >= max || !ri__parse_double(item, il, &v)) return 0;
    if (fabs(v) > 3.4e38) return 0;
    out[k++] = (float)v;
    if (j >= n) break;
    i = j + 1;
  }
  *count = k;
  return 1;
}
