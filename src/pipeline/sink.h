/* Output writers: result rows (seed format, JSONL, CSV) and the dead-letter file. Both are written to
 * "<path>.tmp" and renamed over <path> only when the job commits, so a crashed or failed job never leaves a
 * partial file under the final name. */
#ifndef RI_PIPELINE_SINK_H
#define RI_PIPELINE_SINK_H

#include <stdio.h>

#include "core/err.h"
#include "core/strbuf.h"
#include "pipeline/record.h"
#include "runinfer/pipeline.h"

typedef struct {
  char *path, *tmp;
  FILE *f;
} ri__outfile;

ri_status ri__outfile_open(ri__outfile *o, const char *path, ri__err *err);
/* Writes len bytes; fails with RI_ERR_IO naming the file (e.g. disk full). */
ri_status ri__outfile_write(ri__outfile *o, const char *data, size_t len, ri__err *err);
/* fflush + fsync + rename. */
ri_status ri__outfile_commit(ri__outfile *o, ri__err *err);
/* Closes and removes the temporary file (job failed). */
void ri__outfile_abort(ri__outfile *o);

/* Formats the record's result row (with trailing newline) into sb. labels may be NULL. */
void ri__format_row(ri__strbuf *sb, const ri__record *r, ri_output_format fmt, const char *const *labels,
                    size_t n_labels);
/* Formats a dead-letter JSON line {"key":..,"stage":..,"error":..,"width":..,"height":..}. */
void ri__format_dead_letter(ri__strbuf *sb, const ri__record *r);
/* The key as written in the seed format: raw when it is non-empty, has no ';', '"', '\\' or control
 * characters, and JSON escaping (ri_json_escape) leaves it unchanged; otherwise a JSON string literal, which
 * a raw key can never look like since a raw key has no '"'. */
void ri__format_key(ri__strbuf *sb, const char *key, size_t len);

#endif
