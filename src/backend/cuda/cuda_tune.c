/* Build-time tactic timing of the CUDA backend (cuda_tactics.h).
 *
 * For each implicit-GEMM convolution (the half kernel, or the fp32 one in fp32 engines): first the K segment
 * length, among one segment, the heuristic's length and (level 3 and up) twice and half of it, timed at
 * batch 1 and at the maximum batch, the fastest at the maximum batch taken unless its loss at batch 1 is more
 * than a tenth of its saving there (seg_mode; RI_CUDA_SEG_AT=1: the fastest at batch 1, as before; =max:
 * the fastest at the maximum batch; the length is one per node for every batch, and the split that speeds
 * batch 1 up costs a second accumulator at large batches: measured on an H200, timing at the maximum batch
 * alone gave an engine of maximum batch 256 2.5 % at batch 256 and cost it 18-83 % at batch 1,
 * docs/decisions.md); then, with that length fixed, the tile shape of each batch bucket up to the maximum
 * batch (in fp16 engines with one segment, the pointwise kernel competes as a fifth "tile" where it applies:
 * k_pwconv.cu in fp16 engines, k_pwconv_f32.cu in fp32 ones), timed at the bucket's representative batch (at
 * most the maximum batch; level 1: only the maximum batch's bucket, the others inherit from the bucket
 * below). Each candidate runs `reps` times between two events after one warm-up launch; its time is the mean.
 * A convolution with a fused residual (cuda_fuse.c) is timed reading one, as it runs (RI_CUDA_TUNE_RES=0
 * times it without, as before, for comparisons). In fp32 engines the 3xTF32 kernel (k_convgemm_tf32.cu) then
 * competes with that segment length: its best tile at the maximum batch's bucket against the FFMA tactic's
 * time there; when faster (or with RI_CUDA_F32_TF32=force), its tiles are timed for the other buckets and the
 * node runs it at every batch (the two kernels' sums differ, so never both). Entries of the timing cache are
 * keyed by the library version, the device fingerprint, the convolution's geometry (and residual) and the
 * candidate. In fp16 engines, a 1x1 convolution that cuBLASLt can run (cuda_conv_lt.c) then has the
 * heuristic's batch-invariant algorithms for its problem at the maximum batch timed at the same buckets, in
 * the form the node runs (its output slice, residual and output type); the best is taken when it is 10 %
 * faster than the own tactic at the maximum batch's bucket and at most 1.25x slower at every other timed
 * bucket (RI_CUDA_LTCONV=0: never offered; =force: the fastest at the maximum batch, wherever it applies).
 * Where the node's output slice is misaligned for cuBLASLt (odd pitch: SSD's class predictors), the padded
 * form (cuda_conv_lt.h: GEMM over m rounded up to 8 channels into a dense half buffer + scatter) competes as
 * well, timed as it runs.
 * Depthwise and stem convolutions: cuda_tune_direct.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_tactics.h"
#include "core/alloc.h"
#include "core/half.h"
#include "core/timing_cache.h"
#include "runinfer/status.h"

int32_t ri__cu_tac_encode(const ri__cu_gemm_tac *t) {
  int seg = t->seg < 0 ? 0 : t->seg > RI__CU_TAC_MAX_SEG ? RI__CU_TAC_MAX_SEG : t->seg;
  if (t->wg) {
    int32_t code = RI__CU_TAC_PW | RI__CU_TAC_WG | (int32_t)seg << 8;
    for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
      code |= (int32_t)(t->tile[b] & 3) << (15 + 2 * b) | (t->tile[b] & RI__CU_WG_S4 ? 1 << (24 + b) : 0);
    return code | (int32_t)((ri__float_to_half(fabsf(t->us)) & 0x7fff) >> 7);
  }
  if (t->tf32) {
    int32_t code = RI__CU_TAC_TF32 | (int32_t)seg << 19;
    for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
      code |= (int32_t)(t->tile[b] & 3) << (11 + 2 * b);
    return code | (int32_t)((ri__float_to_half(fabsf(t->us)) & 0x7fff) >> 4);
  }
  int32_t pw = 0;
  for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
    if (t->tile[b] == RI__CU_TILE_PW) pw |= 1 << b;
  /* the pointwise kernel sums K in one segment; a segmented tactic keeps its tiles (id 4 reads as 0) */
  int32_t code = pw && seg == 0 ? RI__CU_TAC_PW | pw << 24 : RI__CU_TAC_MARK | (int32_t)seg << 23;
  for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
    if (t->tile[b] != RI__CU_TILE_PW) code |= (int32_t)(t->tile[b] & 3) << (15 + 2 * b);
  return code | (int32_t)(ri__float_to_half(fabsf(t->us)) & 0x7fff);
}

int ri__cu_tac_decode(int32_t code, ri__cu_gemm_tac *t) {
  int pw = code >= 0 && !(code & (RI__CU_TAC_MARK | RI__CU_TAC_DNN)) && (code & RI__CU_TAC_PW);
  int tf32 = code >= 0 && !(code & (RI__CU_TAC_MARK | RI__CU_TAC_DNN | RI__CU_TAC_PW | RI__CU_TAC_VAR)) &&
             (code & RI__CU_TAC_TF32);
  if (pw && (code & RI__CU_TAC_WG)) {
    t->tf32 = 0;
    t->wg = 1;
    t->seg = (code >> 8) & 0x7f;
    for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
      t->tile[b] = ((code >> (15 + 2 * b)) & 3) | ((code >> (24 + b)) & 1 ? RI__CU_WG_S4 : 0);
    t->us = ri__half_to_float((uint16_t)((code & 0xff) << 7));
    return 1;
  }
  t->wg = 0;
  if (tf32) {
    t->tf32 = 1;
    t->seg = (code >> 19) & 0x7f;
    for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
      t->tile[b] = (code >> (11 + 2 * b)) & 3;
    t->us = ri__half_to_float((uint16_t)((code & 0x7ff) << 4));
    return 1;
  }
  if (code < 0 || (!(code & RI__CU_TAC_MARK) && !pw)) return 0;
  t->tf32 = 0;
  t->seg = pw ? 0 : (code >> 23) & 0x7f;
  for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
    t->tile[b] = pw && (code >> (24 + b)) & 1 ? RI__CU_TILE_PW : (code >> (15 + 2 * b)) & 3;
  t->us = ri__half_to_float((uint16_t)(code & 0x7fff));
  return 1;
}

int32_t ri__cu_dnn_tac_encode(const ri__cu_dnn_tac *t) {
  return RI__CU_TAC_DNN | (t->algo & 7) | (t->math & 3) << 3 | (t->per_image ? 1 << 5 : 0) |
         (int32_t)(ri__float_to_half(fabsf(t->ms)) & 0x7fff) << 8;
}

int ri__cu_dnn_tac_decode(int32_t code, ri__cu_dnn_tac *t) {
  if (code < 0 || (code & RI__CU_TAC_MARK) || !(code & RI__CU_TAC_DNN)) return 0;
  t->algo = code & 7;
  t->math = (code >> 3) & 3;
  t->per_image = (code >> 5) & 1;
  t->ms = ri__half_to_float((uint16_t)((code >> 8) & 0x7fff));
  return 1;
}

int32_t ri__cu_lt_tac_encode(const ri__cu_lt_tac *t) {
  int seg = t->seg < 0 ? 0 : t->seg > RI__CU_TAC_MAX_SEG ? RI__CU_TAC_MAX_SEG : t->seg;
  return RI__CU_TAC_LT | (t->pad ? RI__CU_TAC_LT_PAD : 0) | (int32_t)seg << 18 |
         (int32_t)(t->algo & 7) << 15 | (int32_t)(t->tag & 15) << 11 |
         (int32_t)((ri__float_to_half(fabsf(t->us)) & 0x7fff) >> 4);
}

int ri__cu_lt_tac_decode(int32_t code, ri__cu_lt_tac *t) {
  const int32_t others = RI__CU_TAC_MARK | RI__CU_TAC_DNN | RI__CU_TAC_PW | RI__CU_TAC_TF32;
  if (code < 0 || (code & others) || !(code & RI__CU_TAC_LT)) return 0;
  t->pad = (code & RI__CU_TAC_LT_PAD) != 0;
  t->seg = (code >> 18) & 0x7f;
  t->algo = (code >> 15) & 7;
  t->tag = (code >> 11) & 15;
  t->us = ri__half_to_float((uint16_t)((code & 0x7ff) << 4));
  return 1;
}

int ri__cu_tac_bucket(int batch) { return batch <= 1 ? 0 : batch <= 8 ? 1 : batch <= 64 ? 2 : 3; }
int ri__cu_tac_bucket_batch(int bucket) { return bucket == 0 ? 1 : bucket == 1 ? 8 : bucket == 2 ? 64 : 256; }

void ri__cu_tac_tile(int kind, int id, int *bm, int *bn) {
  static const int t[4][2] = {{128, 64}, {64, 64}, {128, 32}, {64, 32}};
  static const int wg[4][2] = {{128, 64}, {64, 64}, {128, 128}, {64, 128}};
  if (kind == RI__CU_KIND_WG) {
    *bm = wg[id & 3][0];
    *bn = wg[id & 3][1];
    return;
  }
  if (id == RI__CU_TILE_PW) {
    *bm = *bn = 0;
    return;
  }
  if (kind == RI__CU_KIND_TF32) {
    ri__cu_convgemm_tf32_tile(id & 3, bm, bn);
    return;
  }
  if (kind == RI__CU_KIND_F32) {
    ri__cu_convgemm_f32_tile(id & 3, bm, bn);
    return;
  }
  *bm = t[id & 3][0];
  *bn = t[id & 3][1];
}

ri__cu_convgemm_tactic ri__cu_tac_launch(int kind, int id, int seg) {
  ri__cu_convgemm_tactic tac = {0, 0, seg, -1, id == RI__CU_TILE_PW && kind != RI__CU_KIND_TF32};
  ri__cu_tac_tile(kind, id, &tac.bm, &tac.bn);
  return tac;
}

/* How the tuner treats the pointwise kernel of fp16 engines (f32 0: RI_CUDA_PWCONV) or of fp32 engines
 * (f32 1: RI_CUDA_F32_PWCONV): 1 offered (default), 0 not (=0), 2 chosen wherever it runs, untimed
 * (=force: tests run it in every layer it supports). */
static int pw_mode(int f32) {
  const char *e = getenv(f32 ? "RI_CUDA_F32_PWCONV" : "RI_CUDA_PWCONV");
  if (e && strcmp(e, "0") == 0) return 0;
  return e && strcmp(e, "force") == 0 ? 2 : 1;
}

/* RI_CUDA_TUNE_RES=0: time fused-residual convolutions without the residual (the former timing). */
static int res_mode(void) {
  const char *e = getenv("RI_CUDA_TUNE_RES");
  return !(e && strcmp(e, "0") == 0);
}

/* How the tuner treats the 3xTF32 kernel of fp32 engines (RI_CUDA_F32_TF32): 1 offered against the FFMA
 * tactic (default), 0 not (=0), 2 chosen wherever it runs (=force: tests), its tiles still timed. */
static int tf32_mode(void) {
  const char *e = getenv("RI_CUDA_F32_TF32");
  if (e && strcmp(e, "0") == 0) return 0;
  return e && strcmp(e, "force") == 0 ? 2 : 1;
}

typedef struct {
  cudaStream_t s;
  cudaEvent_t e0, e1;
  void *x, *y, *r; /* r: a residual for the convolutions that add one */
  size_t x_bytes, y_bytes, r_bytes;
  ri__cu_splitk sk;
  int reps;
  int f32; /* the fp32 kernel (fp32 engines) instead of the half one */
  char fp[320];
  ri__tcache *cache;
  /* cuBLASLt candidates of fp16 1x1 convolutions (opened on first use; lt_tried: do not try again) */
  cublasLtHandle_t lt;
  void *lt_ws;
  int lt_tried;
} tuner;

/* Geometry part of the cache key. */
static void geometry_key(const ri__cu_convgemm_args *a, int kind, char *buf, size_t cap) {
  snprintf(buf, cap, "%s ih%d iw%d c%d oh%d ow%d m%d k%dx%d s%d,%d d%d,%d p%d,%d ldw%d act%d f32%d",
           kind == RI__CU_KIND_WG     ? "pwgemm_wg"
           : kind == RI__CU_KIND_TF32 ? "convgemm_tf32"
           : kind == RI__CU_KIND_F32  ? "convgemm_f32"
                                      : "convgemm",
           a->ih, a->iw, a->c, a->oh, a->ow, a->m_out, a->kh, a->kw, a->sh, a->sw, a->dh, a->dw, a->pad_t,
           a->pad_l, a->ldw, a->act, a->y_f32);
}

/* Mean microseconds of one launch (INFINITY when it cannot run), from the cache when it holds the key. */
static ri_status time_one(tuner *t, int kind, const ri__cu_convgemm_args *a,
                          const ri__cu_convgemm_tactic *tac, const void *w, const float *bias,
                          const void *res, float *us, ri__err *err) {
  char geo[400], key[RI__TCACHE_MAX_KEY];
  geometry_key(a, kind, geo, sizeof geo);
  const char *rs = res ? " res" : "";
  if (tac->pw)
    snprintf(key, sizeof key, "%s|%s%s|n%d pw seg%d", t->fp, geo, rs, a->n, tac->seg_ktiles);
  else
    snprintf(key, sizeof key, "%s|%s%s|n%d t%dx%d seg%d", t->fp, geo, rs, a->n, tac->bm, tac->bn,
             tac->seg_ktiles);
  if (t->cache && ri__tcache_get(t->cache, key, us)) return RI_OK;
  *us = INFINITY;
  cudaError_t (*run)(cudaStream_t, const ri__cu_convgemm_args *, const ri__cu_convgemm_tactic *, const void *,
                     const void *, const float *, const void *, void *, const ri__cu_splitk *) =
      kind == RI__CU_KIND_TF32  ? ri__cu_convgemm_tf32_tac
      : kind == RI__CU_KIND_F32 ? ri__cu_convgemm_f32_tac
                                : ri__cu_convgemm_tac;
  cudaError_t e = run(t->s, a, tac, t->x, w, bias, res, t->y, &t->sk);
  if (e == cudaSuccess) e = cudaEventRecord(t->e0, t->s);
  for (int r = 0; e == cudaSuccess && r < t->reps; r++)
    e = run(t->s, a, tac, t->x, w, bias, res, t->y, &t->sk);
  if (e == cudaSuccess) e = cudaEventRecord(t->e1, t->s);
  if (e == cudaSuccess) e = cudaEventSynchronize(t->e1);
  float ms = 0.f;
  if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, t->e0, t->e1);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return RI_OK; /* this candidate does not run here: never chosen, not cached */
  }
  *us = ms * 1000.f / (float)t->reps;
  return t->cache ? ri__tcache_put(t->cache, key, *us, err) : RI_OK;
}

/* The fastest tile of the kernel of that kind at one batch for segment length seg (tile id, its time). */
static ri_status best_tile(tuner *t, int kind, const cu_state *st, int ni, int batch, int seg, int *id,
                           float *best, ri__err *err) {
  ri__cu_convgemm_args a;
  const void *w;
  const float *bias;
  ri__cu_conv_tune_args(st, ni, batch, &a, &w, &bias);
  const void *res = t->r && res_mode() && ri__cu_conv_tune_residual(st, ni) ? t->r : NULL;
  *id = -1;
  *best = INFINITY;
  /* The pointwise kernel: one K segment only (what the tactic code holds), where it runs (its results
   * equal the tiles'). */
  int pw_ok = t->f32 ? ri__cu_pwconv_f32_supported(&a) : ri__cu_pwconv_supported(&a);
  int pw = seg == 0 && pw_ok && kind != RI__CU_KIND_TF32 ? pw_mode(t->f32) : 0;
  int ids = pw ? 5 : 4;
  for (int k = pw == 2 ? RI__CU_TILE_PW : 0; k < ids; k++) {
    ri__cu_convgemm_tactic tac = ri__cu_tac_launch(kind, k, seg);
    float us;
    RI__TRY(time_one(t, kind, &a, &tac, w, bias, res, &us, err));
    if (us < *best) *best = us, *id = k;
  }
  return RI_OK;
}

/* The representative batch of bucket b, at most the maximum batch; 0 when the tuner does not time bucket b at
 * this level (the bucket inherits the tile of the one below). */
static int timed_batch(int b, int max_batch, int level) {
  if (b == 0) return 1;
  int lower = ri__cu_tac_bucket_batch(b - 1) + 1;
  if (lower > max_batch || (level < 2 && b != ri__cu_tac_bucket(max_batch))) return 0;
  int batch = ri__cu_tac_bucket_batch(b);
  return batch > max_batch ? max_batch : batch;
}

/* Tiles of buckets 1.. for the kernel of tac->tf32's kind and segment length tac->seg (tac->tile[0] set);
 * bucket `known` (> 0) already has its tile. *max_us: the time at the maximum batch's bucket. */
static ri_status tune_buckets(tuner *t, cu_state *st, int ni, int level, int kind, ri__cu_gemm_tac *tac,
                              int known, float *max_us, float *bucket_us, ri__err *err) {
  const int max_batch = st->cfg.max_batch, bmax = ri__cu_tac_bucket(max_batch);
  for (int b = 1; b < RI__CU_TAC_BUCKETS; b++) {
    int batch = timed_batch(b, max_batch, level);
    if (b != known) tac->tile[b] = tac->tile[b - 1];
    if (!batch || b == known) continue;
    int id;
    float us;
    RI__TRY(best_tile(t, kind, st, ni, batch, tac->seg, &id, &us, err));
    if (id >= 0) tac->tile[b] = id;
    if (b == bmax) *max_us = us;
    if (bucket_us && id >= 0) bucket_us[b] = us;
  }
  return RI_OK;
}

/* ---- cuBLASLt for fp16 1x1 convolutions (cuda_conv_lt.c) ---- */

/* RI_CUDA_LTCONV: 1 offered (default), 0 not (=0), 2 taken wherever it applies (=force: tests). */
static int lt_mode(void) {
  const char *e = getenv("RI_CUDA_LTCONV");
  if (e && strcmp(e, "0") == 0) return 0;
  return e && strcmp(e, "force") == 0 ? 2 : 1;
}

/* The tuner's cuBLASLt handle and workspace; 0 when they cannot be had (no cuBLASLt candidates then). */
static int tuner_lt_open(tuner *t) {
  if (t->lt) return 1;
  if (t->lt_tried) return 0;
  t->lt_tried = 1;
  if (cublasLtCreate(&t->lt) != CUBLAS_STATUS_SUCCESS) {
    t->lt = NULL;
    return 0;
  }
  if (cudaMalloc(&t->lt_ws, RI__CU_LT_WS_BYTES) != cudaSuccess) {
    (void)cudaGetLastError();
    t->lt_ws = NULL;
    cublasLtDestroy(t->lt);
    t->lt = NULL;
    return 0;
  }
  return 1;
}

/* RI_CUDA_LTPAD: the padded form on nodes whose output is misaligned: 1 offered next to the direct form
 * (default), 0 not (=0), 2 offered alone (=force: tests). */
static int ltpad_mode(void) {
  const char *e = getenv("RI_CUDA_LTPAD");
  if (e && strcmp(e, "0") == 0) return 0;
  return e && strcmp(e, "force") == 0 ? 2 : 1;
}

/* Buffers of one cuBLASLt timing: the output (its own, sized for the node's slice form), the padded
 * form's buffer and what the tuner already has (input, residual). */
typedef struct {
  const void *x, *w, *bh, *r;
  const float *bf;
  void *y;   /* the output's first element */
  void *pad; /* the padded form's buffer (NULL when that form is not timed) */
} lt_bufs;

/* Mean microseconds of one launch of algorithm `idx` (of the heuristic's list) at batch n (INFINITY when
 * cuBLASLt refuses it there), through the cache. */
static ri_status time_lt(tuner *t, ri__cu_ltconv *p, const cublasLtMatmulAlgo_t *algo, int idx, int n,
                         const lt_bufs *b, float *us, ri__err *err) {
  const ri__cu_ltconv_shape *s = &p->s;
  char key[RI__TCACHE_MAX_KEY]; /* " padn": the padded form with N padded (not the earlier " pad" form's) */
  snprintf(
      key, sizeof key,
      "%s|ltconv k%lld m%lld rows%lld ldw%lld ldy%lld img%lld act%d f32%d bias%d res%d al%u%s|lt%zu|n%d a%d",
      t->fp, (long long)s->k, (long long)s->m, (long long)s->rows, (long long)s->ldw, (long long)s->ldy,
      (long long)s->y_img_stride, s->act, s->y_f32, s->has_bias, s->has_res, (unsigned)s->y_align,
      s->pad ? " padn" : "", cublasLtGetVersion(), n, idx);
  if (t->cache && ri__tcache_get(t->cache, key, us)) return RI_OK;
  *us = INFINITY;
  const char *call = "";
  size_t ws = 0;
  if (ri__cu_ltconv_set_batch(p, n, &call) != CUBLAS_STATUS_SUCCESS ||
      ri__cu_ltconv_check(t->lt, p, algo, &ws, &call) != CUBLAS_STATUS_SUCCESS || ws > RI__CU_LT_WS_BYTES)
    return RI_OK; /* not run here: never chosen, not cached */
  cublasStatus_t e = CUBLAS_STATUS_SUCCESS;
  cudaError_t ce = cudaSuccess;
  for (int r = -1; e == CUBLAS_STATUS_SUCCESS && ce == cudaSuccess && r < t->reps; r++) {
    if (r == 0) ce = cudaEventRecord(t->e0, t->s);
    if (ce == cudaSuccess)
      e = ri__cu_ltconv_run(t->lt, p, algo, t->s, b->x, b->w, b->bf, b->bh, b->r, b->y,
                            s->pad ? b->pad : NULL, t->lt_ws, RI__CU_LT_WS_BYTES, &call);
  }
  if (e == CUBLAS_STATUS_SUCCESS && ce == cudaSuccess) ce = cudaEventRecord(t->e1, t->s);
  if (e == CUBLAS_STATUS_SUCCESS && ce == cudaSuccess) ce = cudaEventSynchronize(t->e1);
  float ms = 0.f;
  if (e == CUBLAS_STATUS_SUCCESS && ce == cudaSuccess) ce = cudaEventElapsedTime(&ms, t->e0, t->e1);
  if (e != CUBLAS_STATUS_SUCCESS || ce != cudaSuccess) {
    (void)cudaStreamSynchronize(t->s);
    (void)cudaGetLastError();
    return RI_OK;
  }
  *us = ms * 1000.f / (float)t->reps;
  return t->cache ? ri__tcache_put(t->cache, key, *us, err) : RI_OK;
}

/* Whether a candidate's times lt (per bucket, INFINITY: refused; a cuBLASLt algorithm or the wgmma kernel)
 * may replace the own tactic's (own, NAN: not timed): at least 10 % faster at the maximum batch's bucket and,
 * at every other timed bucket, at most 1.25x slower or slower by at most a tenth of what it saves at the
 * maximum batch (engines serve partial batches; docs/decisions.md). The 1.25x margin: in the H200 A/B of
 * 2026-11-27 the engine of maximum batch 1 ran 4-5 us slower (0.315 -> 0.319 ms) with the cuBLASLt
 * algorithms that won the back-to-back timing by less; a launch inside a CUDA graph is not a launch in a
 * timing loop. The absolute clause (RI_CUDA_TUNE_ABS=0: without it): SSD's class predictors on the padded
 * cuBLASLt form save ~160 us each at batch 256 and cost ~7 us at batch 1 (1.8x of the own kernel's 8 us),
 * which the ratio alone refused; one full batch then pays for ten single images. An engine of maximum
 * batch 1 has one bucket and is unaffected. */
static int tune_abs(void) {
  const char *e = getenv("RI_CUDA_TUNE_ABS");
  return !(e && strcmp(e, "0") == 0);
}

static int beats_own(const float *lt, const float *own, int bmax) {
  if (!isfinite(lt[bmax]) || !(lt[bmax] < 0.9f * own[bmax])) return 0;
  const float slack = tune_abs() ? 0.1f * (own[bmax] - lt[bmax]) : 0.f;
  for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
    if (b != bmax && !isnan(own[b]) && !(lt[b] <= 1.25f * own[b] || lt[b] - own[b] <= slack)) return 0;
  return 1;
}

/* After the own tactic of fp16 node ni is set (seg its K segment length, own_us its time per timed bucket):
 * times the heuristic's batch-invariant algorithms for the node's problem at the maximum batch at the same
 * buckets, in the direct form (only for no activation or ReLU) and, where the node's output is misaligned
 * (ri__cu_ltconv_misaligned) and it has no residual, in the padded form: GEMM + scatter, as the node runs
 * them, the scatter applying any activation (SSD's class predictors followed by a sigmoid; RI_CUDA_LTPAD).
 * The best that wins is applied (RI_CUDA_LTCONV=force: the fastest at the maximum batch). A failure of the
 * timing leaves the own tactic; only a cache error is returned. */
static ri_status tune_lt(tuner *t, cu_state *st, int ni, int level, const float *own_us, int seg,
                         ri__err *err) {
  const int mode = lt_mode(), max_batch = st->cfg.max_batch, bmax = ri__cu_tac_bucket(max_batch);
  ri__cu_ltconv_shape s;
  int64_t y_off = 0;
  lt_bufs b;
  memset(&b, 0, sizeof b);
  if (!mode || !ri__cu_conv_lt_tune_args(st, ni, max_batch, &s, &y_off, &b.w, &b.bf, &b.bh)) return RI_OK;
  if ((s.has_res && !t->r) || !tuner_lt_open(t)) return RI_OK;
  int batches[RI__CU_TAC_BUCKETS], nb = 1;
  for (int k = 0; k < RI__CU_TAC_BUCKETS; k++) {
    batches[k] = timed_batch(k, max_batch, level);
    if (batches[k] > nb) nb = batches[k];
  }
  /* the forms timed: 0 direct, 1 padded */
  /* the direct form refuses activations other than ReLU (ri__cu_conv_lt_tune_args then offers the node
   * for the padded form alone, which applies them in its scatter); the padded form is timed only where the
   * output is misaligned: elsewhere its scatter pass is pure extra traffic (and build time) */
  const int direct_ok = ri__cu_ltconv_refusal(&s) == NULL;
  const int pm = ltpad_mode(), pad_ok = pm && !s.has_res && ri__cu_ltconv_misaligned(&s);
  if (!direct_ok && !pad_ok) return RI_OK;
  const int form0 = pad_ok && (pm == 2 || !direct_ok) ? 1 : 0, form1 = pad_ok ? 1 : 0;
  const size_t es = s.y_f32 ? 4 : 2;
  const size_t y_bytes = (size_t)(y_off + (int64_t)nb * s.y_img_stride) * es;
  if ((size_t)nb * (size_t)(s.rows * s.k) * 2 > t->x_bytes) return RI_OK; /* not seen: x holds batch 256 */
  ri__cu_ltconv_shape sp = s;
  sp.n = nb;
  void *y = NULL, *pad = NULL;
  if (cudaMalloc(&y, y_bytes) != cudaSuccess || cudaMemsetAsync(y, 0, y_bytes, t->s) != cudaSuccess ||
      (form1 && cudaMalloc(&pad, ri__cu_ltconv_pad_bytes(&sp)) != cudaSuccess)) {
    (void)cudaGetLastError();
    cudaFree(y);
    cudaFree(pad);
    return RI_OK;
  }
  b.x = t->x;
  b.r = s.has_res ? t->r : NULL;
  b.y = (char *)y + (size_t)y_off * es;
  b.pad = pad;
  ri_status rs = RI_OK;
  int best = -1, best_form = 0, best_tag = 0;
  float best_us = INFINITY;
  for (int form = form0; rs == RI_OK && form <= form1; form++) {
    ri__cu_ltconv p;
    const char *call = "";
    cublasLtMatmulHeuristicResult_t res[RI__CU_LT_MAX_ALGOS];
    int count = 0;
    s.pad = form;
    if (ri__cu_ltconv_create(&p, &s, &call) != CUBLAS_STATUS_SUCCESS ||
        ri__cu_ltconv_algos(t->lt, &p, res, &count, &call) != CUBLAS_STATUS_SUCCESS)
      count = 0;
    for (int i = 0; rs == RI_OK && i < count; i++) {
      if (!ri__cu_ltconv_invariant(&res[i].algo)) continue;
      /* a context checks the algorithm at batch 1 and at the maximum batch: so does the tuner */
      size_t ws = 0;
      if (ri__cu_ltconv_set_batch(&p, max_batch, &call) != CUBLAS_STATUS_SUCCESS ||
          ri__cu_ltconv_check(t->lt, &p, &res[i].algo, &ws, &call) != CUBLAS_STATUS_SUCCESS ||
          ws > RI__CU_LT_WS_BYTES)
        continue;
      float lt_us[RI__CU_TAC_BUCKETS];
      for (int k = 0; rs == RI_OK && k < RI__CU_TAC_BUCKETS; k++) {
        lt_us[k] = INFINITY;
        if (batches[k]) rs = time_lt(t, &p, &res[i].algo, i, batches[k], &b, &lt_us[k], err);
      }
      if (rs != RI_OK || !isfinite(lt_us[0]) || !isfinite(lt_us[bmax])) continue;
      if ((mode == 2 || beats_own(lt_us, own_us, bmax)) && lt_us[bmax] < best_us)
        best = i, best_form = form, best_tag = (int)ri__cu_ltconv_algo_tag(&res[i].algo),
        best_us = lt_us[bmax];
    }
    ri__cu_ltconv_destroy(&p);
  }
  (void)cudaStreamSynchronize(t->s);
  cudaFree(y);
  cudaFree(pad);
  (void)cudaGetLastError();
  if (rs == RI_OK && best >= 0) {
    ri__cu_lt_tac lt = {best, best_tag, seg, best_us, best_form};
    ri__cu_conv_set_lt_tactic(st, ni, &lt);
  }
  return rs;
}

/* ---- the Hopper wgmma kernel for fp16 1x1 convolutions (k_pwgemm_wg.cu) ---- */

/* RI_CUDA_WG: 1 offered (default), 0 not (=0), 2 taken wherever it applies (=force: tests). */
static int wg_mode(void) {
  const char *e = getenv("RI_CUDA_WG");
  if (e && strcmp(e, "0") == 0) return 0;
  return e && strcmp(e, "force") == 0 ? 2 : 1;
}

/* Elements from the output's first one to the end of the last image's rows, in a's output form. */
static int64_t wg_out_elems(const ri__cu_convgemm_args *a) {
  int64_t rows = a->rows_per_img > 0 ? a->rows_per_img : 1, imgs = a->n > 0 ? a->n : 1;
  int64_t last = a->y_off + (imgs - 1) * a->y_img_stride + (rows - 1) * a->ldy + a->m_out;
  int64_t dense = a->y_off + imgs * a->y_img_stride;
  return last > dense ? last : dense;
}

/* Mean microseconds of one launch of wgmma tile id (| RI__CU_WG_S4: four stages) in the node's form a
 * (INFINITY when it does not run), through the cache: the key names the kernel ("pwgemm_wg"), the output
 * form (slice, residual pitch) and the tile. */
static ri_status time_wg(tuner *t, const ri__cu_convgemm_args *a, int id, const void *w, const float *bias,
                         const void *res, void *y, float *us, ri__err *err) {
  int bm, bn, stages = id & RI__CU_WG_S4 ? 4 : 3;
  ri__cu_tac_tile(RI__CU_KIND_WG, id, &bm, &bn);
  char geo[400], key[RI__TCACHE_MAX_KEY];
  geometry_key(a, RI__CU_KIND_WG, geo, sizeof geo);
  snprintf(key, sizeof key, "%s|%s%s ldy%lld off%lld img%lld ldr%lld|n%d wg%dx%ds%d", t->fp, geo,
           res ? " res" : "", (long long)a->ldy, (long long)a->y_off, (long long)a->y_img_stride,
           (long long)a->ldr, a->n, bm, bn, stages);
  if (t->cache && ri__tcache_get(t->cache, key, us)) return RI_OK;
  *us = INFINITY;
  cudaError_t e = ri__cu_pwgemm_wg_tile(t->s, a, bm, bn, stages, t->x, w, bias, res, y);
  if (e == cudaSuccess) e = cudaEventRecord(t->e0, t->s);
  for (int r = 0; e == cudaSuccess && r < t->reps; r++)
    e = ri__cu_pwgemm_wg_tile(t->s, a, bm, bn, stages, t->x, w, bias, res, y);
  if (e == cudaSuccess) e = cudaEventRecord(t->e1, t->s);
  if (e == cudaSuccess) e = cudaEventSynchronize(t->e1);
  float ms = 0.f;
  if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, t->e0, t->e1);
  if (e != cudaSuccess) {
    (void)cudaStreamSynchronize(t->s);
    (void)cudaGetLastError();
    return RI_OK; /* not run here: never chosen, not cached */
  }
  *us = ms * 1000.f / (float)t->reps;
  return t->cache ? ri__tcache_put(t->cache, key, *us, err) : RI_OK;
}

/* The wgmma tile ids timed: the four tiles with three and with four stages (test_cuda_wggemm: every
 * combination gives the same bits, so each bucket takes its fastest). */
#define WG_CANDS 8

/* After the own tactic of fp16 node ni is set (own_us its time per timed bucket, seg its K segment length):
 * times the wgmma kernel's tiles at the maximum batch's bucket in the form the node runs, and, when the best
 * is 10 % faster than the own tactic there (or RI_CUDA_WG=force), at the other timed buckets; applies it
 * when it wins by beats_own's rule. *taken 1 then, and wg_us its time per bucket (INFINITY: not timed).
 * A failure of the timing leaves the own tactic; only a cache error is returned. */
static ri_status tune_wg(tuner *t, cu_state *st, int ni, int level, const float *own_us, int seg,
                         float *wg_us, int *taken, ri__err *err) {
  const int mode = wg_mode(), max_batch = st->cfg.max_batch, bmax = ri__cu_tac_bucket(max_batch);
  *taken = 0;
  for (int k = 0; k < RI__CU_TAC_BUCKETS; k++)
    wg_us[k] = INFINITY;
  ri__cu_convgemm_args a;
  const void *w;
  const float *bias;
  int has_res = 0;
  if (!mode || !ri__cu_conv_wg_tune_args(st, ni, max_batch, &a, &w, &bias, &has_res)) return RI_OK;
  if (has_res && !t->r) return RI_OK;
  int batches[RI__CU_TAC_BUCKETS], nb = 1;
  for (int k = 0; k < RI__CU_TAC_BUCKETS; k++) {
    batches[k] = timed_batch(k, max_batch, level);
    if (batches[k] > nb) nb = batches[k];
  }
  ri__cu_conv_wg_tune_args(st, ni, nb, &a, &w, &bias, &has_res);
  const size_t es = a.y_f32 ? 4 : 2;
  const size_t y_bytes = (size_t)wg_out_elems(&a) * es;
  /* x and the residual were sized for min(max batch, 256), the most that is timed */
  if ((size_t)a.n * a.ih * a.iw * a.c * 2 > t->x_bytes ||
      (has_res && (size_t)a.n * a.oh * a.ow * a.ldr * 2 > t->r_bytes))
    return RI_OK;
  void *y = NULL;
  if (cudaMalloc(&y, y_bytes) != cudaSuccess || cudaMemsetAsync(y, 0, y_bytes, t->s) != cudaSuccess) {
    (void)cudaGetLastError();
    cudaFree(y);
    return RI_OK;
  }
  ri__cu_gemm_tac tac;
  memset(&tac, 0, sizeof tac);
  tac.wg = 1;
  tac.seg = seg;
  int ids[RI__CU_TAC_BUCKETS] = {-1, -1, -1, -1};
  ri_status rs = RI_OK;
  /* the maximum batch's bucket first: the other buckets are timed only when it may win there */
  for (int j = 0; rs == RI_OK && j < RI__CU_TAC_BUCKETS; j++) {
    int k = j == 0 ? bmax : j <= bmax ? j - 1 : j;
    if (!batches[k]) continue;
    ri__cu_conv_wg_tune_args(st, ni, batches[k], &a, &w, &bias, &has_res);
    for (int id = 0; rs == RI_OK && id < WG_CANDS; id++) {
      float us;
      rs = time_wg(t, &a, id, w, bias, has_res ? t->r : NULL, y, &us, err);
      if (rs == RI_OK && us < wg_us[k]) wg_us[k] = us, ids[k] = id;
    }
    if (k == bmax && (ids[k] < 0 || (mode != 2 && !(wg_us[k] < 0.9f * own_us[k])))) break;
  }
  (void)cudaStreamSynchronize(t->s);
  cudaFree(y);
  (void)cudaGetLastError();
  if (rs != RI_OK || ids[0] < 0 || ids[bmax] < 0) return rs;
  int ok = 1;
  for (int k = 0; k < RI__CU_TAC_BUCKETS; k++)
    if (batches[k] && ids[k] < 0) ok = 0; /* a timed bucket where it did not run */
  if (!ok || (mode != 2 && !beats_own(wg_us, own_us, bmax))) return RI_OK;
  /* buckets that were not timed take the tile of the one below (as the own tactic's) */
  for (int k = 0; k < RI__CU_TAC_BUCKETS; k++)
    tac.tile[k] = ids[k] >= 0 ? ids[k] : tac.tile[k > 0 ? k - 1 : 0];
  tac.us = wg_us[bmax];
  ri__cu_conv_set_tactic(st, ni, &tac);
  *taken = 1;
  return RI_OK;
}

/* How the segment length is chosen (RI_CUDA_SEG_AT): 0 ("1") the fastest at batch 1; 1 ("max") the fastest
 * at the maximum batch (engines that only ever run full batches); 2 (default) balanced: each candidate is
 * timed at both, and the one fastest at the maximum batch is taken among those whose loss at batch 1 against
 * batch 1's fastest is at most a tenth of what they save at the maximum batch (beats_own's absolute margin:
 * one full batch pays for ten single images). Engines of maximum batch 1 time batch 1 only. */
static int seg_mode(void) {
  const char *e = getenv("RI_CUDA_SEG_AT");
  if (e && strcmp(e, "max") == 0) return 1;
  if (e && strcmp(e, "1") == 0) return 0;
  return 2;
}

/* The bucket whose representative batch times the segment candidates: 0 (batch 1) or, with
 * RI_CUDA_SEG_AT=max, the maximum batch's. */
static int seg_bucket(const cu_state *st) {
  return seg_mode() == 1 ? ri__cu_tac_bucket(st->cfg.max_batch) : 0;
}

/* The balanced choice (seg_mode 2) among nc candidate lengths c[] with their best tiles' times at batch 1
 * (u1) and at the maximum batch (um; INFINITY: did not run): the index taken, -1 when none ran at both. */
static int seg_balanced(int nc, const float *u1, const float *um) {
  int f1 = -1;
  for (int k = 0; k < nc; k++)
    if (isfinite(u1[k]) && isfinite(um[k]) && (f1 < 0 || u1[k] < u1[f1])) f1 = k;
  if (f1 < 0) return -1;
  int pick = f1;
  for (int k = 0; k < nc; k++)
    if (isfinite(u1[k]) && isfinite(um[k]) && um[k] < um[pick] && u1[k] - u1[f1] <= 0.1f * (um[f1] - um[k]))
      pick = k;
  return pick;
}

static ri_status tune_node(tuner *t, cu_state *st, int ni, int level, ri__err *err) {
  const int max_batch = st->cfg.max_batch, bmax = ri__cu_tac_bucket(max_batch);
  const int kind = t->f32 ? RI__CU_KIND_F32 : RI__CU_KIND_F16;
  const int balanced = seg_mode() == 2 && bmax > 0;
  const int sb = balanced ? bmax : seg_bucket(st), sbatch = sb ? timed_batch(sb, max_batch, level) : 1;
  int def = ri__cu_conv_default_seg(st, ni);
  int cands[4] = {0, def, def * 2, def / 2}, nc = level >= 3 ? 4 : 2;
  ri__cu_gemm_tac tac;
  memset(&tac, 0, sizeof tac);
  float best = INFINITY;
  int seg = def, tile_sb = -1, pick = -1;
  /* balanced: each candidate's best tile and time at batch 1 (u1, id1) and at the maximum batch (um, idm) */
  float u1[4] = {INFINITY, INFINITY, INFINITY, INFINITY}, um[4] = {INFINITY, INFINITY, INFINITY, INFINITY};
  int id1[4] = {-1, -1, -1, -1}, idm[4] = {-1, -1, -1, -1};
  for (int k = 0; k < nc; k++) {
    int c = cands[k];
    if (c < 0 || c > RI__CU_TAC_MAX_SEG || (k >= 2 && c < 2) || (k > 0 && c == 0)) continue;
    int dup = 0;
    for (int j = 0; j < k; j++)
      dup |= cands[j] == c;
    if (dup) continue;
    int id;
    float us;
    RI__TRY(best_tile(t, kind, st, ni, sbatch, c, &id, &us, err));
    if (balanced) {
      idm[k] = id, um[k] = id >= 0 ? us : INFINITY;
      RI__TRY(best_tile(t, kind, st, ni, 1, c, &id1[k], &u1[k], err));
      if (id1[k] < 0) u1[k] = INFINITY;
    } else if (us < best) {
      best = us, seg = c, tile_sb = id;
    }
  }
  if (balanced) {
    pick = seg_balanced(nc, u1, um);
    if (pick >= 0) best = um[pick], seg = cands[pick], tile_sb = idm[pick];
  }
  if (tile_sb < 0 || !isfinite(best)) return RI_OK; /* nothing ran: the heuristics stay */
  tac.seg = seg;
  float max_us = best;
  if (sb == 0) {
    tac.us = best;
    tac.tile[0] = tile_sb;
  } else {
    /* Timed at the maximum batch: its bucket has its tile; batch 1's tile (and the time kept) with it, from
     * the candidate loop when it timed batch 1 too (balanced). */
    int id0 = pick >= 0 ? id1[pick] : -1;
    float us0 = pick >= 0 ? u1[pick] : INFINITY;
    if (pick < 0) RI__TRY(best_tile(t, kind, st, ni, 1, seg, &id0, &us0, err));
    if (id0 < 0 || !isfinite(us0)) return RI_OK;
    tac.us = us0;
    tac.tile[0] = id0;
    tac.tile[sb] = tile_sb;
  }
  /* the own tactic's time at each timed bucket (NAN: not timed), for the cuBLASLt comparison */
  float own_us[RI__CU_TAC_BUCKETS] = {NAN, NAN, NAN, NAN};
  own_us[0] = tac.us;
  if (sb) own_us[sb] = best;
  RI__TRY(tune_buckets(t, st, ni, level, kind, &tac, sb, &max_us, own_us, err));

  /* fp32 engines: the 3xTF32 kernel with the same segment length, for every bucket when it is faster at the
   * maximum batch's bucket (one kernel per node: their sums differ). */
  int mode = t->f32 ? tf32_mode() : 0;
  ri__cu_convgemm_args a;
  const void *w;
  const float *bias;
  ri__cu_conv_tune_args(st, ni, 1, &a, &w, &bias);
  if (mode && ri__cu_convgemm_tf32_supported(&a)) {
    ri__cu_gemm_tac tt = tac;
    tt.tf32 = 1;
    int id_max = -1;
    float us_max = INFINITY;
    RI__TRY(best_tile(t, RI__CU_KIND_TF32, st, ni, timed_batch(bmax, max_batch, level), seg, &id_max, &us_max,
                      err));
    if (id_max >= 0 && (mode == 2 || us_max < max_us)) {
      int id0 = id_max;
      float us0 = us_max;
      if (bmax > 0) RI__TRY(best_tile(t, RI__CU_KIND_TF32, st, ni, 1, seg, &id0, &us0, err));
      if (id0 >= 0) {
        tt.tile[0] = id0;
        tt.us = us0;
        if (bmax > 0) tt.tile[bmax] = id_max;
        RI__TRY(tune_buckets(t, st, ni, level, RI__CU_KIND_TF32, &tt, bmax, &us_max, NULL, err));
        tac = tt;
      }
    }
  }
  ri__cu_conv_set_tactic(st, ni, &tac);
  if (t->f32) return RI_OK;
  /* fp16: the wgmma kernel against the own tactic, then cuBLASLt against the winner (where cuBLASLt runs a
   * node and wins by the same rule it is the faster still: docs/decisions.md); RI_CUDA_WG=force keeps the
   * wgmma kernel wherever it took it. */
  float wg_us[RI__CU_TAC_BUCKETS];
  int wg_taken = 0;
  RI__TRY(tune_wg(t, st, ni, level, own_us, tac.seg, wg_us, &wg_taken, err));
  if (wg_taken && wg_mode() == 2) return RI_OK;
  if (wg_taken)
    for (int k = 0; k < RI__CU_TAC_BUCKETS; k++)
      if (!isnan(own_us[k])) own_us[k] = wg_us[k];
  return tune_lt(t, st, ni, level, own_us, tac.seg, err);
}

int ri__cu_tune_fingerprint(const cu_state *st, char *buf, size_t cap) {
  struct cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, st->cfg.device_index) != cudaSuccess) return 0;
  /* The library version too: another version's kernels may time differently. */
  snprintf(buf, cap, "runinfer %.16s cuda:sm_%d%d:%.256s", ri_version(), prop.major, prop.minor, prop.name);
  return 1;
}

/* Buffers for the largest input and output the timing runs use; 0 when they cannot be had. */
static int tuner_open(tuner *t, const cu_state *st) {
  int rep = st->cfg.max_batch < 256 ? st->cfg.max_batch : 256;
  for (int ni = 0; ni < st->g->n_nodes; ni++) {
    if (!ri__cu_conv_tunable(st, ni)) continue;
    ri__cu_convgemm_args a;
    const void *w;
    const float *b;
    ri__cu_conv_tune_args(st, ni, rep, &a, &w, &b);
    size_t xb = (size_t)a.n * a.ih * a.iw * a.c * (t->f32 ? 4 : 2),
           yb = (size_t)a.n * a.oh * a.ow * a.m_out * (a.y_f32 || t->f32 ? 4 : 2);
    if (xb > t->x_bytes) t->x_bytes = xb;
    if (yb > t->y_bytes) t->y_bytes = yb;
    if (ri__cu_conv_tune_residual(st, ni) && yb > t->r_bytes) t->r_bytes = yb;
  }
  if (!t->x_bytes) return 0;
  t->sk.ws_bytes = RI__CU_SPLITK_WS_BYTES;
  t->sk.n_counters = RI__CU_SPLITK_COUNTERS;
  int sms = 0;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, st->cfg.device_index) != cudaSuccess)
    sms = 1;
  t->sk.sms = sms > 0 ? sms : 1;
  if (!ri__cu_tune_fingerprint(st, t->fp, sizeof t->fp)) return 0;
  void *cnt = NULL;
  int ok = cudaStreamCreateWithFlags(&t->s, cudaStreamNonBlocking) == cudaSuccess &&
           cudaEventCreate(&t->e0) == cudaSuccess && cudaEventCreate(&t->e1) == cudaSuccess &&
           cudaMalloc(&t->x, t->x_bytes) == cudaSuccess && cudaMalloc(&t->y, t->y_bytes) == cudaSuccess &&
           cudaMalloc(&t->sk.ws, t->sk.ws_bytes) == cudaSuccess &&
           cudaMalloc(&cnt, (size_t)t->sk.n_counters * sizeof(int)) == cudaSuccess;
  t->sk.counters = cnt;
  ok = ok && (!t->r_bytes || (cudaMalloc(&t->r, t->r_bytes) == cudaSuccess &&
                              cudaMemsetAsync(t->r, 0, t->r_bytes, t->s) == cudaSuccess));
  ok = ok && cudaMemsetAsync(t->x, 0, t->x_bytes, t->s) == cudaSuccess &&
       cudaMemsetAsync(cnt, 0, (size_t)t->sk.n_counters * sizeof(int), t->s) == cudaSuccess;
  if (!ok) (void)cudaGetLastError();
  return ok;
}

static void tuner_close(tuner *t) {
  if (t->s) cudaStreamSynchronize(t->s);
  cudaFree(t->x);
  cudaFree(t->y);
  cudaFree(t->r);
  cudaFree(t->sk.ws);
  cudaFree(t->sk.counters);
  if (t->e0) cudaEventDestroy(t->e0);
  if (t->e1) cudaEventDestroy(t->e1);
  if (t->s) cudaStreamDestroy(t->s);
  cudaFree(t->lt_ws);
  if (t->lt) cublasLtDestroy(t->lt);
  (void)cudaGetLastError();
}

ri_status ri__cu_tune(cu_state *st, ri__err *err) {
  int level = st->cfg.tune_level;
  if (level <= 0) return RI_OK;
  if (level > 5) level = 5;
  tuner t;
  memset(&t, 0, sizeof t);
  t.reps = 2 + 2 * level;
  t.f32 = !st->fp16;
  t.cache = st->cfg.tcache;
  ri_status s = RI_OK;
  if (tuner_open(&t, st))
    for (int ni = 0; s == RI_OK && ni < st->g->n_nodes; ni++)
      if (ri__cu_conv_tunable(st, ni)) s = tune_node(&t, st, ni, level, err);
  tuner_close(&t);
  if (s == RI_OK) s = ri__cu_tune_direct(st, level, err);
  st->cfg.tcache = NULL; /* the builder's, valid during prepare only */
  return s;
}
