/* Engine file reader: header, checksums, section table and META; GRPH is decoded by rie_read_graph.c.
 * Checks run in an order that gives the most useful message first: magic, format version, size, whole-file
 * checksum, section table, section checksums, then contents. Layout: src/engine/rie_format.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "engine/crc.h"
#include "engine/rie_decode.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the engine file stores tensor data in little-endian order; big-endian hosts are not supported"
#endif

static uint64_t ld(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

/* A section tag for messages: its four characters when printable, else hex. */
static const char *tag_str(uint32_t tag, char buf[16]) {
  for (int i = 0; i < 4; i++) {
    unsigned ch = (tag >> (8 * i)) & 0xFF;
    if (ch < 0x20 || ch > 0x7E || ch == '\'') {
      snprintf(buf, 16, "0x%08lx", (unsigned long)tag);
      return buf;
    }
    buf[i] = (char)ch;
  }
  buf[4] = 0;
  return buf;
}

typedef struct {
  uint64_t off, size;
} span;

static ri_status decode_meta(ri__rie_cur *c, ri__rie_content *out) {
  int32_t mb, prec, thr;
  RI__TRY(ri__rie_cur_i32(c, "max_batch", &mb));
  if (mb < 1 || mb > RI__RIE_MAX_BATCH)
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "max_batch %ld is outside 1..%d", (long)mb, RI__RIE_MAX_BATCH);
  RI__TRY(ri__rie_cur_i32(c, "precision", &prec));
  if (prec < RI_PRECISION_FP32 || prec > RI_PRECISION_INT8)
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "precision code %ld is unknown", (long)prec);
  RI__TRY(ri__rie_cur_i32(c, "threads", &thr));
  if (thr < 0 || thr > RI__RIE_MAX_THREADS)
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "threads %ld is outside 0..%d", (long)thr, RI__RIE_MAX_THREADS);
  RI__TRY(ri__rie_cur_i64(c, "arena size", &out->arena_size));
  if (out->arena_size < 0 || out->arena_size > RI__RIE_MAX_ARENA)
    return ri__rie_cur_fail(c, RI_ERR_LIMIT, "arena size %lld is outside 0..%lld", (long long)out->arena_size,
                            (long long)RI__RIE_MAX_ARENA);
  out->max_batch = mb;
  out->precision = prec;
  out->threads = thr;
  RI__TRY(ri__rie_cur_str(c, RI__RIE_MAX_SHORT_STRING, 0, "device", &out->device));
  RI__TRY(ri__rie_cur_str(c, RI__RIE_MAX_SHORT_STRING, 0, "fingerprint", &out->fingerprint));
  RI__TRY(ri__rie_cur_str(c, RI__RIE_MAX_SHORT_STRING, 0, "library version", &out->library_version));
  uint32_t n;
  RI__TRY(ri__rie_cur_count(c, RI__RIE_MAX_META, 8, "metadata count", &n));
  out->meta = ri__calloc(n ? n : 1, sizeof(ri__kv));
  if (!out->meta)
    return ri__rie_cur_fail(c, RI_ERR_NO_MEMORY, "out of memory for %lu metadata entries", (unsigned long)n);
  out->n_meta = (int)n;
  for (uint32_t i = 0; i < n; i++) {
    ri__kv *kv = &out->meta[i];
    c->item = "metadata entry";
    c->index = (long)i;
    c->item_name = NULL;
    RI__TRY(ri__rie_cur_str(c, RI__MAX_NAME, 0, "key", &kv->key));
    if (!kv->key[0]) return ri__rie_cur_fail(c, RI_ERR_PARSE, "key is empty");
    c->item_name = kv->key;
    for (uint32_t j = 0; j < i; j++)
      if (strcmp(out->meta[j].key, kv->key) == 0)
        return ri__rie_cur_fail(c, RI_ERR_PARSE, "key also appears in entry %lu", (unsigned long)j);
    RI__TRY(ri__rie_cur_str(c, RI__RIE_MAX_META_VALUE, 0, "value", &kv->value));
  }
  c->item = NULL;
  if (c->pos != c->size)
    return ri__rie_cur_fail(c, RI_ERR_PARSE, "%zu unexpected bytes after the metadata", c->size - c->pos);
  return RI_OK;
}

/* Validates the header and the section table and finds the three required sections (META, GRPH, WGHT, in
 * that order in `found`). */
static ri_status read_container(const uint8_t *d, size_t size, const char *name, span found[3],
                                ri__err *err) {
  if (size < 8)
    return ri__err_set(err, RI_ERR_PARSE, "engine file '%s' is too small to be an engine file (%zu bytes)",
                       name, size);
  if (memcmp(d, RI__RIE_MAGIC, 8) != 0)
    return ri__err_set(err, RI_ERR_PARSE, "'%s' is not a runinfer engine file (magic is not \"%s\")", name,
                       RI__RIE_MAGIC);
  if (size < RI__RIE_OFF_VERSION + 4)
    return ri__err_set(err, RI_ERR_PARSE, "engine file '%s' is truncated: %zu bytes, the header needs %u",
                       name, size, RI__RIE_HEADER_SIZE);
  uint32_t version = (uint32_t)ld(d + RI__RIE_OFF_VERSION, 4);
  if (version > RI__RIE_FORMAT_VERSION)
    return ri__err_set(
        err, RI_ERR_STALE,
        "engine file '%s': format version %lu is newer than this library's %u; upgrade runinfer "
        "or rebuild the engine with this version",
        name, (unsigned long)version, RI__RIE_FORMAT_VERSION);
  if (version < RI__RIE_FORMAT_VERSION)
    return ri__err_set(
        err, RI_ERR_STALE,
        "engine file '%s': format version %lu is older than this library's %u; rebuild the engine", name,
        (unsigned long)version, RI__RIE_FORMAT_VERSION);
  if (size < RI__RIE_HEADER_SIZE + RI__RIE_TRAILER_SIZE)
    return ri__err_set(
        err, RI_ERR_PARSE,
        "engine file '%s' is truncated: %zu bytes, less than the %u-byte header and %u-byte trailer", name,
        size, RI__RIE_HEADER_SIZE, RI__RIE_TRAILER_SIZE);
  uint64_t hsize = ld(d + RI__RIE_OFF_HEADER_SIZE, 4), flags = ld(d + RI__RIE_OFF_FLAGS, 4);
  uint64_t nsec = ld(d + RI__RIE_OFF_SECTIONS, 4), fsize = ld(d + RI__RIE_OFF_FILE_SIZE, 8);
  uint64_t table = ld(d + RI__RIE_OFF_TABLE, 8);
  if (fsize != size)
    return ri__err_set(err, RI_ERR_PARSE, "engine file '%s' is %s: it has %zu bytes but its header says %llu",
                       name, size < fsize ? "truncated" : "damaged (trailing bytes)", size,
                       (unsigned long long)fsize);
  if (fsize > RI__RIE_MAX_FILE)
    return ri__err_set(err, RI_ERR_LIMIT, "engine file '%s' is %llu bytes, more than the limit %llu", name,
                       (unsigned long long)fsize, (unsigned long long)RI__RIE_MAX_FILE);
  /* Everything between the header and the trailer. */
  uint64_t body_end = fsize - RI__RIE_TRAILER_SIZE;
  if (hsize < RI__RIE_HEADER_SIZE || hsize > body_end)
    return ri__err_set(err, RI_ERR_PARSE, "engine file '%s': header size %llu is outside %u..%llu", name,
                       (unsigned long long)hsize, RI__RIE_HEADER_SIZE, (unsigned long long)body_end);
  if (flags != 0)
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "engine file '%s': unknown header flags 0x%llx", name,
                       (unsigned long long)flags);
  if (memcmp(d + body_end + 4, RI__RIE_END_MARKER, 4) != 0)
    return ri__err_set(err, RI_ERR_PARSE, "engine file '%s' is corrupt: the end marker \"%s\" is missing",
                       name, RI__RIE_END_MARKER);
  uint32_t stored = (uint32_t)ld(d + body_end, 4);
  uint32_t computed = ri__crc32c(0, d, (size_t)body_end);
  if (stored != computed) {
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION /* fuzzers must reach the structure checks */
    return ri__err_set(err, RI_ERR_CHECKSUM,
                       "engine file '%s' is corrupt: checksum mismatch (stored 0x%08lx, computed 0x%08lx)",
                       name, (unsigned long)stored, (unsigned long)computed);
#endif
  }
  if (nsec < 1 || nsec > RI__RIE_MAX_SECTIONS)
    return ri__err_set(err, RI_ERR_LIMIT, "engine file '%s': section count %llu is outside 1..%u", name,
                       (unsigned long long)nsec, RI__RIE_MAX_SECTIONS);
  uint64_t tsize = nsec * RI__RIE_SECTION_ENTRY;
  if (table < hsize || table > body_end || tsize > body_end - table)
    return ri__err_set(
        err, RI_ERR_PARSE,
        "engine file '%s': section table at offset %llu (%llu bytes) lies outside the file body "
        "%llu..%llu",
        name, (unsigned long long)table, (unsigned long long)tsize, (unsigned long long)hsize,
        (unsigned long long)body_end);
  span all[RI__RIE_MAX_SECTIONS];
  int have[3] = {0, 0, 0};
  static const uint32_t req[3] = {RI__RIE_TAG_META, RI__RIE_TAG_GRAPH, RI__RIE_TAG_WEIGHTS};
  char tb[16];
  for (uint64_t i = 0; i < nsec; i++) {
    const uint8_t *e = d + table + i * RI__RIE_SECTION_ENTRY;
    uint32_t tag = (uint32_t)ld(e, 4), crc = (uint32_t)ld(e + 4, 4);
    uint64_t off = ld(e + 8, 8), sz = ld(e + 16, 8);
    if (off < hsize || off > body_end || sz > body_end - off)
      return ri__err_set(
          err, RI_ERR_PARSE,
          "engine file '%s': section %llu (%s) at offset %llu with size %llu lies outside the file "
          "body %llu..%llu",
          name, (unsigned long long)i, tag_str(tag, tb), (unsigned long long)off, (unsigned long long)sz,
          (unsigned long long)hsize, (unsigned long long)body_end);
    if (sz && off < table + tsize && table < off + sz)
      return ri__err_set(err, RI_ERR_PARSE, "engine file '%s': section %llu (%s) overlaps the section table",
                         name, (unsigned long long)i, tag_str(tag, tb));
    for (uint64_t j = 0; j < i; j++)
      if (sz && all[j].size && off < all[j].off + all[j].size && all[j].off < off + sz)
        return ri__err_set(err, RI_ERR_PARSE, "engine file '%s': sections %llu and %llu overlap", name,
                           (unsigned long long)j, (unsigned long long)i);
    all[i].off = off;
    all[i].size = sz;
    uint32_t actual = ri__crc32c(0, d + off, (size_t)sz);
    if (actual != crc) {
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
      return ri__err_set(
          err, RI_ERR_CHECKSUM,
          "engine file '%s' is corrupt: section %s checksum mismatch (stored 0x%08lx, computed "
          "0x%08lx)",
          name, tag_str(tag, tb), (unsigned long)crc, (unsigned long)actual);
#endif
    }
    for (int k = 0; k < 3; k++) {
      if (tag != req[k]) continue;
      if (have[k])
        return ri__err_set(err, RI_ERR_PARSE, "engine file '%s': section %s appears twice", name,
                           tag_str(tag, tb));
      have[k] = 1;
      found[k] = all[i];
    }
  }
  for (int k = 0; k < 3; k++)
    if (!have[k])
      return ri__err_set(err, RI_ERR_PARSE, "engine file '%s': the %s section is missing", name,
                         tag_str(req[k], tb));
  if (found[2].off % RI__RIE_ALIGN != 0)
    return ri__err_set(err, RI_ERR_PARSE,
                       "engine file '%s': the WGHT section offset %llu is not a multiple of %u", name,
                       (unsigned long long)found[2].off, RI__RIE_ALIGN);
  return RI_OK;
}

/* Reads the engine file held in data; drop: data is the reader's own copy of the file, whose weight pages
 * may be handed back as they are copied (ri__rie_decode_graph). */
static ri_status read_named(const void *data, size_t size, const char *name, int drop, ri__rie_content *out,
                            ri__err *err) {
  if (!out) return ri__err_set(err, RI_ERR_INVALID_ARG, "engine reader: NULL output");
  memset(out, 0, sizeof *out);
  if (!data && size) return ri__err_set(err, RI_ERR_INVALID_ARG, "engine reader: NULL data");
  const uint8_t *d = data;
  span sec[3] = {{0}};
  RI__TRY(read_container(d, size, name, sec, err));
  ri__rie_cur c = {
      .p = d + sec[0].off, .size = (size_t)sec[0].size, .file = name, .section = "META", .err = err};
  ri_status st = decode_meta(&c, out);
  if (st == RI_OK) {
    ri__rie_cur gc = {
        .p = d + sec[1].off, .size = (size_t)sec[1].size, .file = name, .section = "GRPH", .err = err};
    st = ri__rie_decode_graph(&gc, d + sec[2].off, sec[2].size, out->arena_size, drop, &out->graph);
  }
  if (st == RI_OK) {
    st = ri__graph_link(out->graph, err);
    if (st != RI_OK) ri__err_prefix(err, "engine file '%s': invalid graph", name);
  }
  if (st != RI_OK) ri__rie_content_free(out);
  return st;
}

ri_status ri__rie_read(const void *data, size_t size, ri__rie_content *out, ri__err *err) {
  return read_named(data, size, "<memory>", 0, out, err);
}

ri_status ri__rie_read_file(const char *path, ri__rie_content *out, ri__err *err) {
  if (out) memset(out, 0, sizeof *out);
  if (!path) return ri__err_set(err, RI_ERR_INVALID_ARG, "engine reader: NULL path");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return ri__err_set(err, e == ENOENT ? RI_ERR_NOT_FOUND : RI_ERR_IO, "cannot open engine file '%s': %s",
                       path, strerror(e));
  }
  struct stat stt;
  ri_status st = RI_OK;
  uint8_t *buf = NULL;
  if (fstat(fd, &stt) != 0) {
    st = ri__err_set(err, RI_ERR_IO, "cannot stat engine file '%s': %s", path, strerror(errno));
    goto done;
  }
  if (!S_ISREG(stt.st_mode)) {
    st = ri__err_set(err, RI_ERR_IO, "engine file '%s' is not a regular file", path);
    goto done;
  }
  if ((uint64_t)stt.st_size > RI__RIE_MAX_FILE || (uint64_t)stt.st_size > SIZE_MAX) {
    st = ri__err_set(err, RI_ERR_LIMIT, "engine file '%s' is %lld bytes, more than the limit %llu", path,
                     (long long)stt.st_size, (unsigned long long)RI__RIE_MAX_FILE);
    goto done;
  }
  /* The file is read into memory rather than mapped: a mapping of a file that another process truncates
   * meanwhile faults (SIGBUS) instead of failing cleanly. Once checked, the buffer's weight pages are handed
   * back as the constants are copied out, so the weights are held once, not twice, while loading. */
  size_t size = (size_t)stt.st_size, got = 0;
  buf = ri__malloc(size);
  if (!buf) {
    st = ri__err_set(err, RI_ERR_NO_MEMORY, "out of memory reading engine file '%s' (%zu bytes)", path, size);
    goto done;
  }
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got > ((size_t)1 << 30) ? ((size_t)1 << 30) : size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      st = r < 0 ? ri__err_set(err, RI_ERR_IO, "cannot read engine file '%s': %s", path, strerror(errno))
                 : ri__err_set(err, RI_ERR_IO, "engine file '%s' shrank while being read (%zu of %zu bytes)",
                               path, got, size);
      goto done;
    }
    got += (size_t)r;
  }
  st = read_named(buf, size, path, 1, out, err);
done:
  ri__free(buf);
  close(fd);
  return st;
}

void ri__rie_content_free(ri__rie_content *c) {
  if (!c) return;
  ri__graph_destroy(c->graph);
  ri__free(c->device);
  ri__free(c->fingerprint);
  ri__free(c->library_version);
  if (c->meta) {
    for (int i = 0; i < c->n_meta; i++) {
      ri__free(c->meta[i].key);
      ri__free(c->meta[i].value);
    }
    ri__free(c->meta);
  }
  memset(c, 0, sizeof *c);
}
