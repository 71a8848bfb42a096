/* Build-time choice of the kernel variant of depthwise (k_dwconv.cu) and stem (k_stemconv.cu) convolutions
 * (tactic format in cuda_tactics.h).
 *
 * The exact variants of such a node give the same bits (each output's taps are summed in one order whatever
 * the variant), so the choice among them is free per batch bucket: each bucket up to the maximum batch is
 * timed at its representative batch (at most the maximum batch; level 1: only the maximum batch's bucket,
 * the others inherit from the bucket below, as for the GEMM tiles in cuda_tune.c), every exact variant
 * that applies `reps` times between two events after one warm-up launch, and the fastest mean wins;
 * variant 0 (the kernel used without a tactic) is always a candidate, so a tuned node is never slower than
 * at the timing. The variants that sum in their own order (the stem's tensor-core variants 3 and 4) are
 * then timed at the maximum batch's bucket only: when the fastest of them beats that bucket's winner it
 * runs every bucket, else none, so that an image's outputs never depend on the batch it runs in.
 * Timing-cache entries are keyed by the library version, the device, the node's geometry, the batch and
 * the variant. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_tactics.h"
#include "core/half.h"
#include "core/timing_cache.h"
#include "runinfer/status.h"

int32_t ri__cu_var_tac_encode(const ri__cu_var_tac *t) {
  int32_t code = RI__CU_TAC_VAR;
  for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
    code |= (int32_t)(t->var[b] & 7) << (3 * b);
  return code | (int32_t)(ri__float_to_half(fabsf(t->us)) & 0x7fff) << 12;
}

int ri__cu_var_tac_decode(int32_t code, ri__cu_var_tac *t) {
  if (code < 0 || (code & (RI__CU_TAC_MARK | RI__CU_TAC_DNN | RI__CU_TAC_PW)) || !(code & RI__CU_TAC_VAR))
    return 0;
  for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
    t->var[b] = (code >> (3 * b)) & 7;
  t->us = ri__half_to_float((uint16_t)((code >> 12) & 0x7fff));
  return 1;
}

/* RI_CUDA_DW_TACTICS (stem 0) or RI_CUDA_STEM_TACTICS (stem 1): -1 tune (default), 0 off, N > 0 force N. */
static int var_mode(int stem) {
  return (int)ri__cu_env_long(stem ? "RI_CUDA_STEM_TACTICS" : "RI_CUDA_DW_TACTICS", -1, 0, 7);
}

/* A node's variant count as the tuner sees it: RI_CUDA_DW_SMEM=0 leaves out the depthwise shared-memory
 * variants (RI__CU_DW_SMEM_FIRST ..; k_dwconv_smem.cu), RI_CUDA_DW_PIPE=0 their persistent ones alone
 * (RI__CU_DW_PIPE_FIRST ..), for before/after comparisons. */
static int var_count(const cu_state *st, int ni, int *stem) {
  int n = ri__cu_conv_var_count(st, ni, stem);
  if (!*stem && n > RI__CU_DW_SMEM_FIRST && ri__cu_env_long("RI_CUDA_DW_SMEM", 1, 0, 1) == 0)
    n = RI__CU_DW_SMEM_FIRST;
  if (!*stem && n > RI__CU_DW_PIPE_FIRST && ri__cu_env_long("RI_CUDA_DW_PIPE", 1, 0, 1) == 0)
    n = RI__CU_DW_PIPE_FIRST;
  return n;
}

typedef struct {
  cudaStream_t s;
  cudaEvent_t e0, e1;
  void *x, *y;
  size_t x_bytes, y_bytes;
  int reps;
  char fp[320];
  ri__tcache *cache;
} vtuner;

/* Revision of the variant numbering in timing-cache keys: a cached time belongs to a kernel, not to a number,
 * so this goes up whenever a variant number changes meaning (2: the depthwise variants 4..7 renumbered,
 * 2026-11-27), and a cache written before then times those variants anew instead of lending them another
 * kernel's time. */
#define VAR_KEY_REV 2

/* Mean microseconds of one launch of variant v at `batch` (INFINITY when it cannot run), cached. */
static ri_status time_var(vtuner *t, const cu_state *st, int ni, int batch, int v, float *us, ri__err *err) {
  char geo[400], key[RI__TCACHE_MAX_KEY];
  ri__cu_conv_var_key(st, ni, geo, sizeof geo);
  snprintf(key, sizeof key, "%s|%s|n%d v%d r%d", t->fp, geo, batch, v, VAR_KEY_REV);
  if (t->cache && ri__tcache_get(t->cache, key, us)) return RI_OK;
  *us = INFINITY;
  cudaError_t e = ri__cu_conv_var_launch(st, ni, batch, v, t->s, t->x, t->y);
  if (e == cudaSuccess) e = cudaEventRecord(t->e0, t->s);
  for (int r = 0; e == cudaSuccess && r < t->reps; r++)
    e = ri__cu_conv_var_launch(st, ni, batch, v, t->s, t->x, t->y);
  if (e == cudaSuccess) e = cudaEventRecord(t->e1, t->s);
  if (e == cudaSuccess) e = cudaEventSynchronize(t->e1);
  float ms = 0.f;
  if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, t->e0, t->e1);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return RI_OK; /* does not run here: never chosen, not cached */
  }
  *us = ms * 1000.f / (float)t->reps;
  return t->cache ? ri__tcache_put(t->cache, key, *us, err) : RI_OK;
}

static ri_status tune_node(vtuner *t, cu_state *st, int ni, int nvar, int nexact, int level, ri__err *err) {
  const int max_batch = st->cfg.max_batch;
  ri__cu_var_tac tac;
  memset(&tac, 0, sizeof tac);
  int any = 0;
  /* the exact variants (variant 0's bits) per bucket */
  for (int b = 0; b < RI__CU_TAC_BUCKETS; b++) {
    int batch = ri__cu_tac_bucket_batch(b);
    if (batch > max_batch) batch = max_batch;
    int lower = b == 0 ? 1 : ri__cu_tac_bucket_batch(b - 1) + 1;
    int timed = lower <= max_batch && (level >= 2 || b == ri__cu_tac_bucket(max_batch));
    tac.var[b] = b > 0 ? tac.var[b - 1] : 0;
    if (!timed) continue;
    float best = INFINITY;
    int id = -1;
    for (int v = 0; v < nexact; v++) {
      float us;
      RI__TRY(time_var(t, st, ni, batch, v, &us, err));
      if (us < best) best = us, id = v;
    }
    if (id < 0) continue;
    tac.var[b] = id;
    tac.us = best; /* the last timed bucket's: the maximum batch's */
    any = 1;
  }
  /* the others sum in their own order: one of them runs every bucket when it beats the exact variants at the
   * maximum batch (as the 3xTF32 GEMM does), else none (batch invariance) */
  if (any && nexact < nvar) {
    int batch = ri__cu_tac_bucket_batch(ri__cu_tac_bucket(max_batch));
    if (batch > max_batch) batch = max_batch;
    float best = tac.us;
    int id = -1;
    for (int v = nexact; v < nvar; v++) {
      float us;
      RI__TRY(time_var(t, st, ni, batch, v, &us, err));
      if (us < best) best = us, id = v;
    }
    if (id >= 0) {
      for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
        tac.var[b] = id;
      tac.us = best;
    }
  }
  if (any) ri__cu_conv_set_var_tactic(st, ni, &tac);
  return RI_OK;
}

static int vtuner_open(vtuner *t, const cu_state *st) {
  int rep = st->cfg.max_batch < 256 ? st->cfg.max_batch : 256;
  for (int ni = 0; ni < st->g->n_nodes; ni++) {
    int stem = 0;
    if (ri__cu_conv_var_count(st, ni, &stem) < 2) continue;
    size_t xb, yb;
    ri__cu_conv_var_bytes(st, ni, rep, &xb, &yb);
    if (xb > t->x_bytes) t->x_bytes = xb;
    if (yb > t->y_bytes) t->y_bytes = yb;
  }
  if (!t->x_bytes || !t->y_bytes) return 0;
  if (!ri__cu_tune_fingerprint(st, t->fp, sizeof t->fp)) return 0;
  int ok = cudaStreamCreateWithFlags(&t->s, cudaStreamNonBlocking) == cudaSuccess &&
           cudaEventCreate(&t->e0) == cudaSuccess && cudaEventCreate(&t->e1) == cudaSuccess &&
           cudaMalloc(&t->x, t->x_bytes) == cudaSuccess && cudaMalloc(&t->y, t->y_bytes) == cudaSuccess;
  ok = ok && cudaMemsetAsync(t->x, 0, t->x_bytes, t->s) == cudaSuccess;
  if (!ok) (void)cudaGetLastError();
  return ok;
}

static void vtuner_close(vtuner *t) {
  if (t->s) cudaStreamSynchronize(t->s);
  cudaFree(t->x);
  cudaFree(t->y);
  if (t->e0) cudaEventDestroy(t->e0);
  if (t->e1) cudaEventDestroy(t->e1);
  if (t->s) cudaStreamDestroy(t->s);
  (void)cudaGetLastError();
}

ri_status ri__cu_tune_direct(cu_state *st, int level, ri__err *err) {
  if (level <= 0) return RI_OK;
  /* forced variants (tests) first: untimed */
  for (int ni = 0; ni < st->g->n_nodes; ni++) {
    int stem = 0, n = var_count(st, ni, &stem), mode = var_mode(stem);
    if (n < 2 || mode <= 0) continue;
    ri__cu_var_tac tac;
    memset(&tac, 0, sizeof tac);
    for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
      tac.var[b] = mode < n ? mode : 0;
    ri__cu_conv_set_var_tactic(st, ni, &tac);
  }
  vtuner t;
  memset(&t, 0, sizeof t);
  t.reps = 2 + 2 * level;
  t.cache = st->cfg.tcache;
  ri_status s = RI_OK;
  if (vtuner_open(&t, st))
    for (int ni = 0; s == RI_OK && ni < st->g->n_nodes; ni++) {
      int stem = 0, n = var_count(st, ni, &stem);
      if (n < 2 || var_mode(stem) >= 0) continue; /* not a variant convolution, or its variant forced */
      int nexact = ri__cu_conv_var_exact(st, ni);
      s = tune_node(&t, st, ni, n, nexact < n ? nexact : n, level, err);
    }
  vtuner_close(&t);
  return s;
}
