/* Blocked matrix product: the output is cut into tiles of TILE_M x TILE_N computed independently by the
 * pool's threads; within a tile the reduction runs in slices of TILE_K, four output rows at a time, each
 * step adding a multiple of one B row segment (kept in L1/L2) to four C row segments. */
#include "backend/cpu/ref/gemm_core.h"

#define TILE_M 32
#define TILE_N 256
#define TILE_K 64

typedef struct {
  int64_t m, n, k;
  float alpha;
  const float *a;
  int64_t a_rs, a_cs;
  const float *b;
  int64_t b_rs, b_cs;
  float *c;
  int64_t ldc;
  int64_t tiles_n;
} sgemm_job;

static void axpy4(float *restrict c0, float *restrict c1, float *restrict c2, float *restrict c3,
                  const float *restrict b, float a0, float a1, float a2, float a3, int64_t n) {
  for (int64_t j = 0; j < n; j++) {
    const float bj = b[j];
    c0[j] += a0 * bj;
    c1[j] += a1 * bj;
    c2[j] += a2 * bj;
    c3[j] += a3 * bj;
  }
}

static void axpy1(float *restrict c0, const float *restrict b, float a0, int64_t n) {
  for (int64_t j = 0; j < n; j++)
    c0[j] += a0 * b[j];
}

static void sgemm_tile(const sgemm_job *jb, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  float packed[TILE_K * TILE_N]; /* B slice, used when B rows are not contiguous */
  const int64_t nb = j1 - j0;
  for (int64_t p0 = 0; p0 < jb->k; p0 += TILE_K) {
    const int64_t kb = jb->k - p0 < TILE_K ? jb->k - p0 : TILE_K;
    const float *bs;
    int64_t bstride;
    if (jb->b_cs == 1) {
      bs = jb->b + p0 * jb->b_rs + j0;
      bstride = jb->b_rs;
    } else {
      for (int64_t p = 0; p < kb; p++)
        for (int64_t j = 0; j < nb; j++)
          packed[p * TILE_N + j] = jb->b[(p0 + p) * jb->b_rs + (j0 + j) * jb->b_cs];
      bs = packed;
      bstride = TILE_N;
    }
    int64_t i = i0;
    for (; i + 4 <= i1; i += 4) {
      float *c0 = jb->c + i * jb->ldc + j0;
      const float *a = jb->a + i * jb->a_rs + p0 * jb->a_cs;
      for (int64_t p = 0; p < kb; p++) {
        const float *ap = a + p * jb->a_cs;
        axpy4(c0, c0 + jb->ldc, c0 + 2 * jb->ldc, c0 + 3 * jb->ldc, bs + p * bstride, jb->alpha * ap[0],
              jb->alpha * ap[jb->a_rs], jb->alpha * ap[2 * jb->a_rs], jb->alpha * ap[3 * jb->a_rs], nb);
      }
    }
    for (; i < i1; i++) {
      float *c0 = jb->c + i * jb->ldc + j0;
      const float *a = jb->a + i * jb->a_rs + p0 * jb->a_cs;
      for (int64_t p = 0; p < kb; p++)
        axpy1(c0, bs + p * bstride, jb->alpha * a[p * jb->a_cs], nb);
    }
  }
}

static void sgemm_range(void *arg, int64_t begin, int64_t end) {
  const sgemm_job *jb = arg;
  for (int64_t t = begin; t < end; t++) {
    const int64_t ti = t / jb->tiles_n, tj = t % jb->tiles_n;
    const int64_t i0 = ti * TILE_M, j0 = tj * TILE_N;
    const int64_t i1 = i0 + TILE_M < jb->m ? i0 + TILE_M : jb->m;
    const int64_t j1 = j0 + TILE_N < jb->n ? j0 + TILE_N : jb->n;
    sgemm_tile(jb, i0, i1, j0, j1);
  }
}

void ri__ref_sgemm(ri__pool *pool, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t a_rs,
                   int64_t a_cs, const float *b, int64_t b_rs, int64_t b_cs, float *c, int64_t ldc) {
  if (m <= 0 || n <= 0 || k <= 0) return;
  sgemm_job jb = {m, n, k, alpha, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, (n + TILE_N - 1) / TILE_N};
  const int64_t tiles = ((m + TILE_M - 1) / TILE_M) * jb.tiles_n;
  ri__pool_for(pool, tiles, 1, sgemm_range, &jb);
}
