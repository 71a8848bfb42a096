#include "pipeline/sink.h"

#include <errno.h>
#include <math.h>
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

/* JSON string contents through the vision library's escaper, so rows written here and rows formatted by
 * the public API (ri_json_escape, ri_detections_to_json; the Python binding uses them) are byte-identical. */
static void json_escaped(ri__strbuf *sb, const char *s, size_t len) {
  char small[512];
  size_t need = 0;
  if (ri_json_escape(s, len, small, sizeof small, &need, NULL) == RI_OK) {
    ri__sb_puts(sb, small);
    return;
  }
  char *big = ri__malloc(need ? need : 1);
  if (!big) {
    sb->oom = 1;
    return;
  }
  if (ri_json_escape(s, len, big, need, NULL, NULL) == RI_OK)
    ri__sb_puts(sb, big);
  else
    sb->oom = 1;
  ri__free(big);
}

static void json_str(ri__strbuf *sb, const char *s, size_t len) {
  ri__sb_puts(sb, "\"");
  json_escaped(sb, s, len);
  ri__sb_puts(sb, "\"");
}

void ri__format_key(ri__strbuf *sb, const char *key, size_t len) {
  int special = len == 0;
  for (size_t i = 0; i < len && !special; i++) {
    unsigned char c = (unsigned char)key[i];
    if (c < 0x20 || c == ';' || c == '"' || c == '\\') special = 1;
  }
  if (!special) {
    /* plain when escaping leaves it unchanged (valid UTF-8 without characters JSON must escape) */
    ri__strbuf t;
    ri__sb_init(&t);
    json_escaped(&t, key, len);
    int same = !t.oom && t.len == len && memcmp(t.data, key, len) == 0;
    ri__sb_free(&t);
    if (same) {
      ri__sb_append(sb, key, len);
      return;
    }
  }
  json_str(sb, key, len);
}

static void dets_json(ri__strbuf *sb, const ri__record *r, const char *const *labels, size_t n_labels) {
  ri__sb_puts(sb, "[");
  for (size_t i = 0; i < r->n_dets; i++) {
    /* one object at a time through ri_detections_to_json, joined with ", " as the reference job's rows */
    char small[1024];
    size_t need = 0;
    if (i) ri__sb_puts(sb, ", ");
    if (ri_detections_to_json(&r->dets[i], 1, labels, n_labels, small, sizeof small, &need, NULL) == RI_OK) {
      ri__sb_append(sb, small + 1, strlen(small) - 2);
      continue;
    }
    char *big = ri__malloc(need ? need : 1);
    if (big && ri_detections_to_json(&r->dets[i], 1, labels, n_labels, big, need, NULL, NULL) == RI_OK)
      ri__sb_append(sb, big + 1, strlen(big) - 2);
    else
      sb->oom = 1;
    ri__free(big);
  }
  for (size_t i = 0; i < r->n_top; i++) {
    const ri_class_score *c = &r->top[i];
    const char *label =
        c->class_id >= 0 && (size_t)c->class_id < n_labels && labels[c->class_id] ? labels[c->class_id] : "";
    if (isfinite(c->score))
      ri__sb_printf(sb, "%s{\"score\":%.6g,\"class\":%d,\"label\":", i ? ", " : "", c->score, c->class_id);
    else
      ri__sb_printf(sb, "%s{\"score\":null,\"class\":%d,\"label\":", i ? ", " : "", c->class_id);
    json_str(sb, label, strlen(label));
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
    json_str(sb, r->key, r->key_len);
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
  json_str(sb, r->key, r->key_len);
  ri__sb_puts(sb, ",\"stage\":");
  const char *st = r->stage ? r->stage : "unknown";
  json_str(sb, st, strlen(st));
  ri__sb_puts(sb, ",\"error\":");
  const char *e = r->error ? r->error : "unknown error";
  json_str(sb, e, strlen(e));
  ri__sb_printf(sb, ",\"seq\":%llu}\n", (unsigned long long)r->seq);
}
