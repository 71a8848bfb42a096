/* JSON output: a byte-exact string escaper (surrogateescape for bytes that are not UTF-8) and the
 * detection list writer. */
#include <math.h>
#include <string.h>

#include "vision/vision_internal.h"

/* Length of the valid UTF-8 sequence starting at p (n bytes available), or 0 if it is not valid. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  unsigned b = p[0];
  if (b < 0x80) return 1;
  size_t len;
  unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */
  if (b >= 0xC2 && b <= 0xDF)
    len = 2;
  else if (b == 0xE0)
    len = 3, lo = 0xA0;
  else if (b >= 0xE1 && b <= 0xEC)
    len = 3;
  else if (b == 0xED)
    len = 3, hi = 0x9F; /* excludes encoded surrogates */
  else if (b >= 0xEE && b <= 0xEF)
    len = 3;
  else if (b == 0xF0)
    len = 4, lo = 0x90;
  else if (b >= 0xF1 && b <= 0xF3)
    len = 4;
  else if (b == 0xF4)
    len = 4, hi = 0x8F;
  else
    return 0;
  if (n < len) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if (p[i] < 0x80 || p[i] > 0xBF) return 0;
  return len;
}

static void escape_into(ri__vsb *sb, const unsigned char *p, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t i = 0;
  while (i < n) {
    /* Copy the longest run that needs no escaping in one go. */
    size_t run = i;
    while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
      run++;
    if (run > i) {
      ri__vsb_put(sb, (const char *)p + i, run - i);
      i = run;
      continue;
    }
    unsigned char b = p[i];
    char esc[8];
    switch (b) {
    case '"':
      ri__vsb_put(sb, "\\\"", 2);
      i++;
      continue;
    case '\\':
      ri__vsb_put(sb, "\\\\", 2);
      i++;
      continue;
    case '\b':
      ri__vsb_put(sb, "\\b", 2);
      i++;
      continue;
    case '\f':
      ri__vsb_put(sb, "\\f", 2);
      i++;
      continue;
    case '\n':
      ri__vsb_put(sb, "\\n", 2);
      i++;
      continue;
    case '\r':
      ri__vsb_put(sb, "\\r", 2);
      i++;
      continue;
    case '\t':
      ri__vsb_put(sb, "\\t", 2);
      i++;
      continue;
    default: break;
    }
    if (b < 0x20) {
      memcpy(esc, "\\u00", 4);
      esc[4] = hex[b >> 4];
      esc[5] = hex[b & 15];
      ri__vsb_put(sb, esc, 6);
      i++;
      continue;
    }
    size_t len = utf8_len(p + i, n - i);
    if (len == 0) { /* not UTF-8: U+DC00 + byte, written as \udcXX */
      memcpy(esc, "\\udc", 4);
      esc[4] = hex[b >> 4];
      esc[5] = hex[b & 15];
      ri__vsb_put(sb, esc, 6);
      i++;
      continue;
    }
    if (len == 3 && b == 0xE2 && p[i + 1] == 0x80 && (p[i + 2] == 0xA8 || p[i + 2] == 0xA9)) {
      ri__vsb_put(sb, p[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
    } else {
      ri__vsb_put(sb, (const char *)p + i, len);
    }
    i += len;
  }
}

ri_status ri_json_escape(const void *bytes, size_t len, char *buf, size_t cap, size_t *needed,
                         ri_vision_error *verr) {
  ri__err err;
  ri__err_clear(&err);
  if (!bytes && len) {
    ri__err_set(&err, RI_ERR_INVALID_ARG, "json escape: bytes is NULL");
    return ri__verr_out(verr, &err);
  }
  ri__vsb sb;
  ri__vsb_init(&sb, buf, cap);
  if (len) escape_into(&sb, bytes, len);
  if (ri__vsb_finish(&sb, needed, "json escape", &err) != RI_OK) return ri__verr_out(verr, &err);
  return ri__verr_ok(verr);
}

static void put_num(ri__vsb *sb, const char *key, float v) {
  ri__vsb_puts(sb, key);
  if (isfinite(v))
    ri__vsb_num(sb, v, 6);
  else
    ri__vsb_puts(sb, "null");
}

ri_status ri_detections_to_json(const ri_detection *dets, size_t n, const char *const *labels,
                                size_t num_labels, char *buf, size_t cap, size_t *needed,
                                ri_vision_error *verr) {
  ri__err err;
  ri__err_clear(&err);
  if (!dets && n) {
    ri__err_set(&err, RI_ERR_INVALID_ARG, "detections to json: dets is NULL with n = %zu", n);
    return ri__verr_out(verr, &err);
  }
  if (!labels) num_labels = 0;
  ri__vsb sb;
  ri__vsb_init(&sb, buf, cap);
  ri__vsb_putc(&sb, '[');
  for (size_t i = 0; i < n; i++) {
    const ri_detection *d = &dets[i];
    if (i) ri__vsb_putc(&sb, ',');
    put_num(&sb, "{\"ymin\":", d->ymin);
    put_num(&sb, ",\"xmin\":", d->xmin);
    put_num(&sb, ",\"ymax\":", d->ymax);
    put_num(&sb, ",\"xmax\":", d->xmax);
    put_num(&sb, ",\"score\":", d->score);
    ri__vsb_printf(&sb, ",\"class\":%d,\"label\":\"", d->class_id);
    const char *label = (d->class_id >= 0 && (size_t)d->class_id < num_labels) ? labels[d->class_id] : NULL;
    if (label) escape_into(&sb, (const unsigned char *)label, strlen(label));
    ri__vsb_puts(&sb, "\"}");
  }
  ri__vsb_putc(&sb, ']');
  if (ri__vsb_finish(&sb, needed, "detections json", &err) != RI_OK) return ri__verr_out(verr, &err);
  return ri__verr_ok(verr);
}
