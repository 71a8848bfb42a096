#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const char *descr;
  ri_dtype dtype;
} k_types[] = {
    {"f4", RI_DTYPE_FLOAT32}, {"f2", RI_DTYPE_FLOAT16}, {"f8", RI_DTYPE_FLOAT64}, {"u1", RI_DTYPE_UINT8},
    {"i1", RI_DTYPE_INT8},    {"i2", RI_DTYPE_INT16},   {"u2", RI_DTYPE_UINT16},  {"i4", RI_DTYPE_INT32},
    {"u4", RI_DTYPE_UINT32},  {"i8", RI_DTYPE_INT64},   {"u8", RI_DTYPE_UINT64},  {"b1", RI_DTYPE_BOOL},
};

void npy_free(npy_array *a) {
  free(a->data);
  memset(a, 0, sizeof *a);
}

int npy_read(const char *path, npy_array *out, char *msg, size_t msglen) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(msg, msglen, "cannot open '%s': %s", path, strerror(errno));
    return 1;
  }
  unsigned char pre[10];
  char *hdr = NULL;
  int rc = 1;
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
    snprintf(msg, msglen, "'%s' is not a .npy file (bad magic)", path);
    goto done;
  }
  size_t hlen;
  if (pre[6] == 1) {
    hlen = pre[8] | (size_t)pre[9] << 8;
  } else if (pre[6] == 2 || pre[6] == 3) {
    unsigned char ext[2];
    if (fread(ext, 1, 2, f) != 2) {
      snprintf(msg, msglen, "'%s': truncated header", path);
      goto done;
    }
    hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)ext[0] << 16 | (size_t)ext[1] << 24;
  } else {
    snprintf(msg, msglen, "'%s': unsupported .npy version %d", path, pre[6]);
    goto done;
  }
  if (hlen > 65536) {
    snprintf(msg, msglen, "'%s': header of %zu bytes is too large", path, hlen);
    goto done;
  }
  hdr = calloc(1, hlen + 1);
  if (!hdr || fread(hdr, 1, hlen, f) != hlen) {
    snprintf(msg, msglen, "'%s': truncated header", path);
    goto done;
  }
  const char *d = strstr(hdr, "'descr'");
  const char *fo = strstr(hdr, "'fortran_order'");
  const char *sh = strstr(hdr, "'shape'");
  if (!d || !fo || !sh) {
    snprintf(msg, msglen, "'%s': header lacks descr/fortran_order/shape", path);
    goto done;
  }
  d = strchr(d + 7, '\'');
  if (!d || (d[1] != '<' && d[1] != '|' && d[1] != '=')) {
    snprintf(msg, msglen, "'%s': only little-endian arrays are supported", path);
    goto done;
  }
  out->dtype = RI_DTYPE_UNDEFINED;
  for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
    if (strncmp(d + 2, k_types[i].descr, 2) == 0 && d[4] == '\'') out->dtype = k_types[i].dtype;
  if (out->dtype == RI_DTYPE_UNDEFINED) {
    snprintf(msg, msglen, "'%s': unsupported dtype in header: %.20s", path, d);
    goto done;
  }
  if (strstr(fo, "True") && strstr(fo, "True") < sh) {
    snprintf(msg, msglen, "'%s': Fortran-ordered arrays are not supported", path);
    goto done;
  }
  const char *p = strchr(sh, '(');
  if (!p) {
    snprintf(msg, msglen, "'%s': malformed shape", path);
    goto done;
  }
  p++;
  size_t numel = 1;
  while (*p && *p != ')') {
    while (*p == ' ' || *p == ',')
      p++;
    if (*p == ')') break;
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p || v < 0 || out->rank >= RI_MAX_RANK || v > (1LL << 40)) {
      snprintf(msg, msglen, "'%s': malformed or unsupported shape", path);
      goto done;
    }
    out->dims[out->rank++] = v;
    if (v && numel > ((size_t)1 << 40) / (size_t)v) {
      snprintf(msg, msglen, "'%s': array too large", path);
      goto done;
    }
    numel *= (size_t)v;
    p = end;
  }
  out->nbytes = numel * ri_dtype_size(out->dtype);
  out->data = malloc(out->nbytes ? out->nbytes : 1);
  if (!out->data) {
    snprintf(msg, msglen, "'%s': out of memory for %zu bytes", path, out->nbytes);
    goto done;
  }
  if (fread(out->data, 1, out->nbytes, f) != out->nbytes) {
    snprintf(msg, msglen, "'%s': data shorter than the header's shape says (%zu bytes expected)", path,
             out->nbytes);
    goto done;
  }
  rc = 0;
done:
  free(hdr);
  fclose(f);
  if (rc) npy_free(out);
  return rc;
}

int npy_write(const char *path, ri_dtype dtype, int rank, const int64_t *dims, const void *data, char *msg,
              size_t msglen) {
  const char *descr = NULL;
  for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
    if (k_types[i].dtype == dtype) descr = k_types[i].descr;
  if (!descr) {
    snprintf(msg, msglen, "cannot write dtype %s to .npy", ri_dtype_name(dtype));
    return 1;
  }
  char shape[256] = "(";
  size_t numel = 1;
  for (int i = 0; i < rank; i++) {
    size_t l = strlen(shape);
    snprintf(shape + l, sizeof shape - l, "%lld,%s", (long long)dims[i], i + 1 < rank && rank > 1 ? " " : "");
    numel *= (size_t)dims[i];
  }
  if (rank > 1) shape[strlen(shape) - 1] = 0; /* drop the trailing comma for rank > 1 */
  strncat(shape, ")", sizeof shape - strlen(shape) - 1);
  char hdr[512];
  int n = snprintf(hdr, sizeof hdr, "{'descr': '%c%s', 'fortran_order': False, 'shape': %s, }",
                   descr[0] == 'b' || descr[1] == '1' ? '|' : '<', descr, shape);
  int total = 10 + n + 1;
  int pad = (64 - total % 64) % 64;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    snprintf(msg, msglen, "cannot write '%s': %s", tmp, strerror(errno));
    return 1;
  }
  unsigned hl = (unsigned)(n + pad + 1);
  unsigned char pre[10] = {
      0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xFF), (unsigned char)(hl >> 8)};
  fwrite(pre, 1, 10, f);
  fwrite(hdr, 1, (size_t)n, f);
  for (int i = 0; i < pad; i++)
    fputc(' ', f);
  fputc('\n', f);
  size_t nb = numel * ri_dtype_size(dtype);
  int ok = fwrite(data, 1, nb, f) == nb;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    snprintf(msg, msglen, "cannot write '%s': %s", path, strerror(errno));
    remove(tmp);
    return 1;
  }
  return 0;
}
