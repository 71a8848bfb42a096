/* Batched 2-D float transposes for the NCHW <-> NHWC conversions at layout boundaries. The matrix is cut
 * into TILE x TILE blocks; each pthreadpool task moves one block through a small local buffer so that
 * both the reads and the writes run along rows. */
#include <stddef.h>
#include <string.h>

#include "backend/cpu/xnn/xnn_internal.h"

#define TILE 32

typedef struct {
  const float *src;
  float *dst;
  size_t rows, cols;
} tr_args;

/* One block: rows [i0, i0 + ti) and columns [j0, j0 + tj) of matrix b. */
static void tr_block(void *p, size_t b, size_t i0, size_t j0, size_t ti, size_t tj) {
  const tr_args *a = p;
  const float *s = a->src + b * a->rows * a->cols;
  float *d = a->dst + b * a->rows * a->cols;
  float buf[TILE][TILE + 1];
  for (size_t i = 0; i < ti; i++) {
    const float *row = s + (i0 + i) * a->cols + j0;
    for (size_t j = 0; j < tj; j++)
      buf[j][i] = row[j];
  }
  for (size_t j = 0; j < tj; j++)
    memcpy(d + (j0 + j) * a->rows + i0, buf[j], ti * sizeof(float));
}

void ri__xnn_transpose(pthreadpool_t tp, const float *src, float *dst, size_t batch, size_t rows, size_t cols,
                       uint32_t flags) {
  if (batch == 0 || rows == 0 || cols == 0) return;
  if (rows == 1 || cols == 1) {
    memcpy(dst, src, batch * rows * cols * sizeof(float));
    return;
  }
  tr_args a = {src, dst, rows, cols};
  pthreadpool_parallelize_3d_tile_2d(tp, tr_block, &a, batch, rows, cols, TILE, TILE, flags);
}
