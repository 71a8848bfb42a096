/* Timing cache: measured times of candidate implementations, kept in a file across engine builds
 * (`runinfer build --timing-cache F`, ri_builder_set_timing_cache), so that a rebuild times only what it
 * has not timed before.
 *
 * An entry maps a key to a time in microseconds. Keys are opaque strings made by the backend that times:
 * the library version, the device fingerprint, the node's signature (op, shapes, parameters, dtype) and the
 * candidate, so that entries of another GPU or another layer never match.
 *
 * ==== File format, version 1 (all integers little-endian) ===============================================
 *   0   u8[8]  magic "RITCACHE"
 *   8   u32    version (1)
 *   12  u32    entry count (0 .. RI__TCACHE_MAX_ENTRIES)
 *   16  entries, each: u32 key length (1 .. RI__TCACHE_MAX_KEY), the key's bytes (no NUL), f32 time in
 *       microseconds (finite, >= 0)
 *   end u64    FNV-1a 64-bit hash of every byte before it
 * Nothing follows the hash. Keys are unique. The file is untrusted input: any violation (size, magic,
 * version, counts, lengths, a NUL in a key, a duplicate key, a bad time, the hash) makes the load fail
 * with a message naming the file and what is wrong; a missing file is an empty cache.
 * ======================================================================================================= */
#ifndef RI_CORE_TIMING_CACHE_H
#define RI_CORE_TIMING_CACHE_H

#include <stddef.h>

#include "core/err.h"

#define RI__TCACHE_MAGIC       "RITCACHE"
#define RI__TCACHE_VERSION     1u
#define RI__TCACHE_MAX_ENTRIES (1u << 20)
#define RI__TCACHE_MAX_KEY     1024u

typedef struct ri__tcache ri__tcache;

/* A new empty cache (NULL when out of memory). */
ri__tcache *ri__tcache_new(void);
void ri__tcache_free(ri__tcache *c); /* NULL is a no-op */

/* Loads `path` into a new cache (*out). A missing file gives an empty cache; a file that exists but is not
 * a valid cache fails with RI_ERR_PARSE (RI_ERR_LIMIT for counts and lengths past the limits,
 * RI_ERR_CHECKSUM for a hash mismatch, RI_ERR_IO when it cannot be read), *out NULL. */
ri_status ri__tcache_load(const char *path, ri__tcache **out, ri__err *err);

/* Parses a cache from memory (the bytes of a file); name is used in messages. Same rules as the load. */
ri_status ri__tcache_parse(const void *data, size_t size, const char *name, ri__tcache **out, ri__err *err);

/* 1 and the time when key is in the cache, else 0. */
int ri__tcache_get(const ri__tcache *c, const char *key, float *us);

/* Adds or replaces an entry. RI_ERR_INVALID_ARG for an empty or too long key or a bad time;
 * RI_ERR_LIMIT when the cache is full; RI_ERR_NO_MEMORY. */
ri_status ri__tcache_put(ri__tcache *c, const char *key, float us, ri__err *err);

/* Number of entries; entries added by ri__tcache_put since the cache was made or loaded. */
size_t ri__tcache_count(const ri__tcache *c);
size_t ri__tcache_added(const ri__tcache *c);

/* Serializes the cache (entries in insertion order) into a new buffer (ri__free it). */
ri_status ri__tcache_serialize(const ri__tcache *c, void **out, size_t *size, ri__err *err);

/* Writes the cache to `path` through a temporary file renamed over it (RI_ERR_IO naming the path). */
ri_status ri__tcache_save(const ri__tcache *c, const char *path, ri__err *err);

#endif
