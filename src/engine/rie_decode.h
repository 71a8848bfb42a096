/* Internal to the engine file reader: a bounds-checked cursor over one section of an untrusted file, and
 * the GRPH decoder. Every read checks the remaining bytes first; every failure names the file, the
 * section, the item being decoded (kind, index and name when known) and the offending values. */
#ifndef RI_ENGINE_RIE_DECODE_H
#define RI_ENGINE_RIE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/rie_format.h"

typedef struct {
  const uint8_t *p; /* the section's bytes */
  size_t size, pos;
  const char *file;      /* file name for messages */
  const char *section;   /* "META", "GRPH" */
  const char *item;      /* kind of item being decoded ("value", "node" ...), or NULL */
  long index;            /* its index */
  const char *item_name; /* its name once decoded, or NULL; must outlive the item */
  ri__err *err;
} ri__rie_cur;

/* Records an error with the cursor's context prefixed to the printf-style detail; returns st. */
ri_status ri__rie_cur_fail(ri__rie_cur *c, ri_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fixed-size little-endian reads; `what` names the field in the error. */
ri_status ri__rie_cur_u8(ri__rie_cur *c, const char *what, uint8_t *out);
ri_status ri__rie_cur_u32(ri__rie_cur *c, const char *what, uint32_t *out);
ri_status ri__rie_cur_i32(ri__rie_cur *c, const char *what, int32_t *out);
ri_status ri__rie_cur_i64(ri__rie_cur *c, const char *what, int64_t *out);
ri_status ri__rie_cur_u64(ri__rie_cur *c, const char *what, uint64_t *out);
ri_status ri__rie_cur_f32(ri__rie_cur *c, const char *what, float *out);
/* A bool byte: 0 or 1, anything else fails. */
ri_status ri__rie_cur_bool(ri__rie_cur *c, const char *what, int *out);
/* Reads a u32 element count, checks it against `limit` and checks that count * min_item_bytes bytes
 * remain, before the caller allocates anything for the items. */
ri_status ri__rie_cur_count(ri__rie_cur *c, uint32_t limit, size_t min_item_bytes, const char *what,
                            uint32_t *out);
/* Points *bytes at the next n bytes (already bounds-checked) and advances. */
ri_status ri__rie_cur_bytes(ri__rie_cur *c, size_t n, const char *what, const uint8_t **bytes);
/* Reads a str without copying: *s points into the section (not NUL-terminated), *len its length;
 * *s is NULL for the NULL marker when nullable, which fails otherwise. Checks limit and NUL bytes. */
ri_status ri__rie_cur_view(ri__rie_cur *c, size_t limit, int nullable, const char *what, const char **s,
                           size_t *len);
/* Reads a str into a new NUL-terminated ri__malloc copy (*out NULL for the NULL marker when nullable). */
ri_status ri__rie_cur_str(ri__rie_cur *c, size_t limit, int nullable, const char *what, char **out);

/* Decodes the GRPH section at the cursor into a new graph stored in *out as soon as it exists (so the
 * caller frees it on failure, *out may be partially filled). Constants are copied out of `weights`
 * (the WGHT section, wsize bytes); memory-plan ranges are checked against arena_size. Does not link.
 * drop: the caller owns the weights' bytes, has checked them, and reads them no more: the whole pages of
 * each constant's range are handed back to the OS once it is copied (they read as zeros afterwards), so
 * that reading a file never holds its weights twice. */
ri_status ri__rie_decode_graph(ri__rie_cur *c, const uint8_t *weights, uint64_t wsize, int64_t arena_size,
                               int drop, ri__graph **out);

#endif
