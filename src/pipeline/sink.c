#include "pipeline/sink.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"

ri_status ri__outfile_open(ri__outfile *o, const char *path, ri__err *err) {
  memset(o, 0, sizeof *o);
  size_t l = strlen(path) + 5;
  o->path = ri__strdup(path);
  o->tmp = ri__malloc(l);
  if (!o->path || !o->tmp) {
    ri__free(o->path);
    ri__free(o->tmp);
    return RI__OOM(err);
  }
  snprintf(o->tmp, l, "%s.tmp", path);
  o->f = fopen(o->tmp, "wb");
  if (!o->f) {
    ri_status s = ri__err_set(err, RI_ERR_IO, "cannot create '%s': %s", o->tmp, strerror(errno));
    ri__free(o->path);
    ri__free(o->tmp);
    memset(o, 0, sizeof *o);
    return s;
  }
  return RI_OK;
}

ri_status ri__outfile_write(ri__outfile *o, const char *data, size_t len, ri__err *err) {
  if (len && fwrite(data, 1, len, o->f) != len)
    return ri__err_set(err, RI_ERR_IO, "cannot write '%s': %s", o->tmp, strerror(errno ? errno : EIO));
  return RI_OK;
}

ri_status ri__outfile_commit(ri__outfile *o, ri__err *err) {
  ri_status s = RI_OK;
  if (fflush(o->f) != 0 || fsync(fileno(o->f)) != 0)
    s = ri__err_set(err, RI_ERR_IO, "cannot write '%s': %s", o->tmp, strerror(errno));
  if (fclose(o->f) != 0 && s == RI_OK)
    s = ri__err_set(err, RI_ERR_IO, "cannot close '%s': %s", o->tmp, strerror(errno));
  o->f = NULL;
  if (s == RI_OK && rename(o->tmp, o->path) != 0)
    s = ri__err_set(err, RI_ERR_IO, "cannot rename '%s' to '%s': %s", o->tmp, o->path, strerror(errno));
  if (s != RI_OK) remove(o->tmp);
  ri__free(o->path);
  ri__free(o->tmp);
  memset(o, 0, sizeof *o);
  return s;
}

void ri__outfile_abort(ri__outfile *o) {
  if (o->f) fclose(o->f);
  if (o->tmp) remove(o->tmp);
  ri__free(o->path);
  ri__free(o->tmp);
  memset(o, 0, sizeof *o);
}

void ri__format_key(ri__strbuf *sb, const char *key, size_t len) {
  int plain = len > 0;
  for (size_t i = 0; i < len && plain; i++) {
    unsigned char c = (unsigned char)key[i];
    if (c < 0x20 || c == 0x7F || c == ';' || c == '"' || c == '\\' || c >= 0x80) plain = 0;
  }
  if (!plain) {
    /* non-ASCII keys may still be plain UTF-8; JSON-quote them only if escaping changes them */
    ri__strbuf t;
    ri__sb_init(&t);
    ri__sb_json_str(&t, key, len);
    int has_special = 0;
    for (size_t i = 0; i < len; i++) {
      unsigned char c = (unsigned char)key[i];
      if (c < 0x20 || c == 0x7F || c == ';' || c == '"' || c == '\\') has_special = 1;
    }
    if (!t.oom && !has_special && t.len == len + 2 && memcmp(t.data + 1, key, len) == 0) plain = 1;
    if (!plain) ri__sb_append(sb, t.data ? t.data : "\"\"", t.data ? t.len : 2);
    ri__sb_free(&t);
    if (!plain) return;
  }
  ri__sb_append(sb, key, len);
}

static void dets_json(ri__strbuf *sb, const ri__record *r, const char *const *labels, size_t n_labels) {
  ri__sb_puts(sb, "[");
  for (size_t i = 0; i < r->n_dets; i++) {
    const ri_detection *d = &r->dets[i];
    const char *label =
        d->class_id >= 0 && (size_t)d->class_id < n_labels && labels[d->class_id] ? labels[d->class_id] : "";
    ri__sb_printf(
        sb,
        "%s{\"ymin\":%.6g,\"xmin\":%.6g,\"ymax\":%.6g,\"xmax\":%.6g,\"score\":%.6g,\"class\":%d,\"label\":",
        i ? ", " : "", d->ymin, d->xmin, d->ymax, d->xmax, d->score, d->class_id);
    ri__sb_json_str(sb, label, strlen(label));
    ri__sb_puts(sb, "}");
  }
  for (size_t i = 0; i < r->n_top; i++) {
    const ri_class_score *c = &r->top[i];
    const char *label =
        c->class_id >= 0 && (size_t)c->class_id < n_labels && labels[c->class_id] ? labels[c->class_id] : "";
    ri__sb_printf(sb, "%s{\"score\":%.6g,\"class\":%d,\"label\":", i ? ", " : "", c->score, c->class_id);
    ri__sb_json_str(sb, label, strlen(label));
    ri__sb_puts(sb, "}");
  }
  ri__sb_puts(sb, "]");
}

static void csv_field(ri__strbuf *sb, const char *s, size_t len) {
  int quote = 0;
  for (size_t i = 0; i < len; i++)
    if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r') quote = 1;
  if (!quote) {
    ri__sb_append(sb, s, len);
    return;
  }
  ri__sb_puts(sb, "\"");
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '"') ri__sb_puts(sb, "\"");
    ri__sb_append(sb, &s[i], 1);
  }
  ri__sb_puts(sb, "\"");
}

void ri__format_row(ri__strbuf *sb, const ri__record *r, ri_output_format fmt, const char *const *labels,
                    size_t n_labels) {
  switch (fmt) {
  case RI_OUTPUT_SEED:
    ri__format_key(sb, r->key, r->key_len);
    ri__sb_puts(sb, ";");
    dets_json(sb, r, labels, n_labels);
    ri__sb_puts(sb, "\n");
    break;
  case RI_OUTPUT_JSONL:
    ri__sb_puts(sb, "{\"key\":");
    ri__sb_json_str(sb, r->key, r->key_len);
    ri__sb_printf(sb, ",\"width\":%d,\"height\":%d,\"%s\":", r->width, r->height,
                  r->n_top ? "classes" : "detections");
    dets_json(sb, r, labels, n_labels);
    ri__sb_puts(sb, "}\n");
    break;
  case RI_OUTPUT_CSV:
    if (r->n_dets == 0 && r->n_top == 0) {
      csv_field(sb, r->key, r->key_len);
      ri__sb_puts(sb, ",,,,,,,\n");
    }
    for (size_t i = 0; i < r->n_dets; i++) {
      const ri_detection *d = &r->dets[i];
      const char *label = d->class_id >= 0 && (size_t)d->class_id < n_labels && labels[d->class_id]
                              ? labels[d->class_id]
                              : "";
      csv_field(sb, r->key, r->key_len);
      ri__sb_printf(sb, ",%.6g,%.6g,%.6g,%.6g,%.6g,%d,", d->ymin, d->xmin, d->ymax, d->xmax, d->score,
                    d->class_id);
      csv_field(sb, label, strlen(label));
      ri__sb_puts(sb, "\n");
    }
    for (size_t i = 0; i < r->n_top; i++) {
      const ri_class_score *c = &r->top[i];
      const char *label = c->class_id >= 0 && (size_t)c->class_id < n_labels && labels[c->class_id]
                              ? labels[c->class_id]
                              : "";
      csv_field(sb, r->key, r->key_len);
      ri__sb_printf(sb, ",,,,,%.6g,%d,", c->score, c->class_id);
      csv_field(sb, label, strlen(label));
      ri__sb_puts(sb, "\n");
    }
    break;
  }
}

void ri__format_dead_letter(ri__strbuf *sb, const ri__record *r) {
  ri__sb_puts(sb, "{\"key\":");
  ri__sb_json_str(sb, r->key, r->key_len);
  ri__sb_puts(sb, ",\"stage\":");
  const char *st = r->stage ? r->stage : "unknown";
  ri__sb_json_str(sb, st, strlen(st));
  ri__sb_puts(sb, ",\"error\":");
  const char *e = r->error ? r->error : "unknown error";
  ri__sb_json_str(sb, e, strlen(e));
  ri__sb_printf(sb, ",\"seq\":%llu}\n", (unsigned long long)r->seq);
}
