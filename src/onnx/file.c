/* Reading model files from disk. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "onnx/import.h"
#include "onnx/internal.h"

ri_status ri__onnx_read_file(const char *path, const char *what, size_t max_size, void **data, size_t *size,
                             ri__err *err) {
  *data = NULL;
  *size = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ri__err_set(err, RI_ERR_IO, "%s: cannot open: %s", what, strerror(errno));
  struct stat sb;
  ri_status st = RI_OK;
  char *buf = NULL;
  if (fstat(fd, &sb) != 0) {
    st = ri__err_set(err, RI_ERR_IO, "%s: cannot stat: %s", what, strerror(errno));
  } else if (S_ISDIR(sb.st_mode)) {
    st = ri__err_set(err, RI_ERR_IO, "%s is a directory, not a file", what);
  } else if (!S_ISREG(sb.st_mode)) {
    st = ri__err_set(err, RI_ERR_IO, "%s is not a regular file", what);
  } else if (sb.st_size == 0) {
    st = ri__err_set(err, RI_ERR_IO, "%s is empty (0 bytes)", what);
  } else if ((uint64_t)sb.st_size > max_size) {
    st = ri__err_set(err, RI_ERR_LIMIT, "%s is %lld bytes, more than the limit of %zu", what,
                     (long long)sb.st_size, max_size);
  } else if (!(buf = ri__malloc((size_t)sb.st_size))) {
    st = RI__OOM(err);
  } else {
    size_t want = (size_t)sb.st_size, got = 0;
    while (got < want) {
      ssize_t r = read(fd, buf + got, want - got > ((size_t)1 << 30) ? ((size_t)1 << 30) : want - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        st = ri__err_set(err, RI_ERR_IO, "%s: read failed after %zu of %zu bytes: %s", what, got, want,
                         strerror(errno));
        break;
      }
      if (r == 0) {
        st = ri__err_set(err, RI_ERR_IO, "%s: file shrank while being read (%zu of %zu bytes)", what, got,
                         want);
        break;
      }
      got += (size_t)r;
    }
  }
  close(fd);
  if (st != RI_OK) {
    ri__free(buf);
    return st;
  }
  *data = buf;
  *size = (size_t)sb.st_size;
  return RI_OK;
}

ri_status ri__onnx_import_file(const char *path, ri__graph **out, ri__err *err) {
  if (!out) return ri__err_set(err, RI_ERR_INVALID_ARG, "ri__onnx_import_file: out is NULL");
  *out = NULL;
  if (!path || !path[0]) return ri__err_set(err, RI_ERR_INVALID_ARG, "ri__onnx_import_file: empty path");
  const char *slash = strrchr(path, '/');
  char *dir = slash ? ri__strndup(path, slash == path ? 1 : (size_t)(slash - path)) : ri__strdup(".");
  if (!dir) return RI__OOM(err);
  char what[RI__ONNX_SHOW * 2 + 8];
  snprintf(what, sizeof what, "'%.*s'", RI__ONNX_SHOW * 2, path);
  void *data = NULL;
  size_t size = 0;
  ri_status st = ri__onnx_read_file(path, what, RI__ONNX_MAX_BYTES, &data, &size, err);
  if (st == RI_OK) st = ri__onnx_import(data, size, dir, path, out, err);
  ri__free(data);
  ri__free(dir);
  return st;
}
