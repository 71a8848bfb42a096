/* NumPy .npy files (format versions 1-3, little-endian, C order) for the CLI's infer command. */
#ifndef RI_TOOLS_NPY_H
#define RI_TOOLS_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "runinfer/types.h"

typedef struct {
  ri_dtype dtype;
  int rank;
  int64_t dims[RI_MAX_RANK];
  void *data; /* malloc'ed */
  size_t nbytes;
} npy_array;

/* Reads a .npy file; on failure returns nonzero and writes a message naming the file into msg. */
int npy_read(const char *path, npy_array *out, char *msg, size_t msglen);
/* Writes a .npy (v1.0) file atomically (temp + rename). */
int npy_write(const char *path, ri_dtype dtype, int rank, const int64_t *dims, const void *data, char *msg,
              size_t msglen);
void npy_free(npy_array *a);

#endif
