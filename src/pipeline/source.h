/* Sources of input paths. A source yields keys (paths as byte strings) one at a time. */
#ifndef RI_PIPELINE_SOURCE_H
#define RI_PIPELINE_SOURCE_H

#include <stddef.h>
#include <stdio.h>

#include "core/err.h"
#include "runinfer/pipeline.h"

typedef struct ri__source ri__source;

ri_status ri__source_open(ri_source_kind kind, const char *spec, ri__source **out, ri__err *err);
/* 1: *key (ri__malloc'ed, NUL-terminated, *len bytes) is the next path; 0: exhausted; -1: read error (err
 * set). Blank lines and lines starting with '#' are skipped for list sources; a trailing '\r' is removed. */
int ri__source_next(ri__source *s, char **key, size_t *len, ri__err *err);
/* Number of keys when known in advance (glob, directory), else -1. */
long ri__source_size_hint(const ri__source *s);
void ri__source_close(ri__source *s);

#endif
