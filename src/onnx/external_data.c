/* Tensor data stored outside the model file (TensorProto.data_location = EXTERNAL).
 *
 * Policy: the location must be a relative path below base_dir: no leading '/', no ".." component, no
 * backslash (a Windows separator that could hide a ".."), at most RI__MAX_NAME bytes. Symbolic links are
 * followed (model caches commonly link to blobs). The byte range [offset, offset + length) must lie in a
 * regular file and length must equal the bytes the tensor's shape needs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "onnx/internal.h"

/* Parses a non-negative decimal integer with no sign, spaces or suffix. */
static int parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s) return 0;
  uint64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return 0;
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return 0;
    v = v * 10 + d;
  }
  *out = v;
  return 1;
}

/* 1 when a path component of p equals "..". */
static int has_dotdot(const char *p) {
  for (const char *c = p; *c;) {
    const char *e = strchr(c, '/');
    size_t len = e ? (size_t)(e - c) : strlen(c);
    if (len == 2 && c[0] == '.' && c[1] == '.') return 1;
    if (!e) break;
    c = e + 1;
  }
  return 0;
}

static ri_status check_location(const char *loc, const char *what, ri__err *err) {
  size_t len = strlen(loc);
  if (len == 0) return ri__err_set(err, RI_ERR_PARSE, "%s: external data location is empty", what);
  if (len > RI__MAX_NAME)
    return ri__err_set(err, RI_ERR_LIMIT, "%s: external data location is %zu bytes long (limit %d)", what,
                       len, RI__MAX_NAME);
  if (loc[0] == '/')
    return ri__err_set(err, RI_ERR_PARSE,
                       "%s: external data location '%.*s' is an absolute path; only paths relative to the "
                       "model's directory are allowed",
                       what, RI__ONNX_SHOW, loc);
  if (strchr(loc, '\\'))
    return ri__err_set(err, RI_ERR_PARSE, "%s: external data location '%.*s' contains a backslash", what,
                       RI__ONNX_SHOW, loc);
  if (has_dotdot(loc))
    return ri__err_set(err, RI_ERR_PARSE,
                       "%s: external data location '%.*s' contains a '..' component (path traversal is "
                       "refused)",
                       what, RI__ONNX_SHOW, loc);
  return RI_OK;
}

/* Reads exactly n bytes at offset off, retrying short reads and EINTR. */
static int read_exact(int fd, void *dst, size_t n, off_t off) {
  char *p = dst;
  while (n > 0) {
    size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
    ssize_t r = pread(fd, p, chunk, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EIO;
      return 0;
    }
    p += r;
    off += r;
    n -= (size_t)r;
  }
  return 1;
}

ri_status ri__onnx_external_read(const Onnx__TensorProto *t, const char *what, const char *base_dir,
                                 void *dst, size_t nbytes, ri__err *err) {
  const char *loc = NULL;
  const char *off_s = NULL, *len_s = NULL;
  for (size_t i = 0; i < t->n_external_data; i++) {
    const Onnx__StringStringEntryProto *kv = t->external_data[i];
    if (!kv->key) continue;
    if (strcmp(kv->key, "location") == 0)
      loc = kv->value ? kv->value : "";
    else if (strcmp(kv->key, "offset") == 0)
      off_s = kv->value ? kv->value : "";
    else if (strcmp(kv->key, "length") == 0)
      len_s = kv->value ? kv->value : "";
  }
  if (!loc) return ri__err_set(err, RI_ERR_PARSE, "%s: external data without a 'location' key", what);
  RI__TRY(check_location(loc, what, err));
  uint64_t offset = 0, length = nbytes;
  if (off_s && !parse_u64(off_s, &offset))
    return ri__err_set(err, RI_ERR_PARSE, "%s: external data offset '%.40s' is not a decimal byte count",
                       what, off_s);
  if (len_s && !parse_u64(len_s, &length))
    return ri__err_set(err, RI_ERR_PARSE, "%s: external data length '%.40s' is not a decimal byte count",
                       what, len_s);
  if (length != nbytes)
    return ri__err_set(err, RI_ERR_PARSE,
                       "%s: external data length is %" PRIu64 " bytes but the shape needs %zu", what, length,
                       nbytes);
  if (!base_dir)
    return ri__err_set(err, RI_ERR_INVALID_ARG,
                       "%s: tensor data is in external file '%.*s' but no base directory was given (model "
                       "loaded from memory)",
                       what, RI__ONNX_SHOW, loc);
  size_t blen = strlen(base_dir), llen = strlen(loc), plen;
  if (!ri__add_size(blen, llen + 2, &plen))
    return ri__err_set(err, RI_ERR_LIMIT, "%s: external data path too long", what);
  char *path = ri__malloc(plen);
  if (!path) return RI__OOM(err);
  snprintf(path, plen, "%s%s%s", base_dir, (blen && base_dir[blen - 1] != '/') ? "/" : "", loc);
  ri_status st = RI_OK;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (fd < 0) {
    st = ri__err_set(err, RI_ERR_IO, "%s: cannot open external data file '%.*s': %s", what, RI__ONNX_SHOW * 2,
                     path, strerror(errno));
  } else if (fstat(fd, &sb) != 0) {
    st = ri__err_set(err, RI_ERR_IO, "%s: cannot stat external data file '%.*s': %s", what, RI__ONNX_SHOW * 2,
                     path, strerror(errno));
  } else if (!S_ISREG(sb.st_mode)) {
    st = ri__err_set(err, RI_ERR_IO, "%s: external data file '%.*s' is not a regular file", what,
                     RI__ONNX_SHOW * 2, path);
  } else if (offset > (uint64_t)sb.st_size || length > (uint64_t)sb.st_size - offset) {
    st = ri__err_set(err, RI_ERR_PARSE,
                     "%s: external data at offset %" PRIu64 ", length %" PRIu64
                     " lies outside file '%.*s' of %lld "
                     "bytes",
                     what, offset, length, RI__ONNX_SHOW * 2, path, (long long)sb.st_size);
  } else if (nbytes && !read_exact(fd, dst, nbytes, (off_t)offset)) {
    st = ri__err_set(err, RI_ERR_IO, "%s: reading %zu bytes at offset %" PRIu64 " of '%.*s' failed: %s", what,
                     nbytes, offset, RI__ONNX_SHOW * 2, path, strerror(errno));
  }
  if (fd >= 0) close(fd);
  ri__free(path);
  return st;
}
