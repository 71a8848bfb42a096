/* Micro-benchmark of the fp16 pointwise kernel's forms (ri__cu_pwconv_v, variants 0 .. 4; k_pwconv.cu,
 * k_pwconv_bulk.cu) on the early SSD MobileNet v2 1x1 convolutions it was made for, at one batch, against
 * the device's own copy speed: for each shape, the time of a cudaMemsetAsync of the output (a write-only
 * stream of the output's bytes) and of a device-to-device copy of the output's size, then each form's
 * median time, its traffic (input + output + residual bytes, once each) per second, and the plan the second
 * form chose (ri__cu_pwconv_bulk_describe); then forms 1 and 2 under every plan that fits (8 or 4 warps per
 * block, 2 .. 8 stages, 1 or 2 staging tiles; ri__cu_pwconv_bulk_force), "plan" lines. Every output must
 * equal form 0's bit for bit (FAIL line, exit 1 otherwise).
 * --set wide: the middle blocks' expansions instead (32 -> 192, 64 -> 384, 96 -> 576, 160 -> 960 channels,
 * ReLU6; the wide form, k_pwconv_wide.cu): the tiled kernel (64x64 tiles, one K segment: the tactic the
 * tuner picked before) is timed first, "tiled" line, and every form must equal its bits; the plan printed is
 * the wide form's (ri__cu_pwconv_wide_describe).
 * --set box: SSD's box-encoder predictors (576 / 1280 / 512 / 256 / 256 / 128 -> 12 or 24 channels, float32
 * slices of the concatenated [batch, 1917, 4] output, misaligned; the deep form, k_pwconv_deep.cu): a copy of
 * the input's size (the floor: reading it once is about half that time), the tiled kernel with one K segment
 * (128x64, the bits the deep form must give: "tiled" line, then 64x32), the deep form (the default variant;
 * its plan from ri__cu_pwconv_deep_describe; bit for bit against the tiled kernel), then the tiled kernel
 * with the heuristic's K segments (what the engine ran before; its own bits, not compared). --set all: every
 * set. bench_pwconv [--batch N] [--reps N] [--set early|wide|box|all]     (defaults: 256, 20, early) One line
 * per (shape, form); the copy lines give the floor that traffic of that size reaches here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "backend/cuda/kernels.h"
#include "core/half.h"
#include "gpu_rand.h"
#include "gpu_timing.h"

typedef struct {
  const char *name;
  int hw, k, n, act, res, set; /* set: 0 early, 1 wide, 2 box */
  int y_off;                   /* box: the slice's first element in an image's 1917 x 4 floats */
} shape;

enum { SET_EARLY = 0, SET_WIDE = 1, SET_BOX = 2, SET_ALL = 3, BOX_IMG = 1917 * 4 };

static const shape g_shapes[] = {
    {"expanded_conv/project", 150, 32, 16, 0, 0, 0, 0},
    {"expanded_conv_1/expand", 150, 16, 96, 2, 0, 0, 0},
    {"expanded_conv_2/expand", 75, 24, 144, 2, 0, 0, 0},
    {"expanded_conv_2/project", 75, 144, 24, 0, 1, 0, 0},
    {"expanded_conv_6/expand", 38, 32, 192, 2, 0, 1, 0},   /* block 6 */
    {"expanded_conv_7/expand", 19, 64, 384, 2, 0, 1, 0},   /* blocks 7 .. 10 */
    {"expanded_conv_11/expand", 19, 96, 576, 2, 0, 1, 0},  /* blocks 11 .. 13 */
    {"expanded_conv_14/expand", 10, 160, 960, 2, 0, 1, 0}, /* blocks 14 .. 16 */
    {"box.0", 19, 576, 12, 0, 0, 2, 0},                    /* 361 x 3 anchors */
    {"box.1", 10, 1280, 24, 0, 0, 2, 4332},                /* 100 x 6 */
    {"box.2", 5, 512, 24, 0, 0, 2, 6732},                  /* 25 x 6 */
    {"box.3", 3, 256, 24, 0, 0, 2, 7332},                  /* 9 x 6 */
    {"box.4", 2, 256, 24, 0, 0, 2, 7548},                  /* 4 x 6 */
    {"box.5", 1, 128, 24, 0, 0, 2, 7644},                  /* 1 x 6 */
};

typedef struct {
  ri__cu_convgemm_args a;
  int variant;
  void *x, *w, *y, *y2, *r;
  float *b;
  size_t ybytes;
  const void *csrc; /* what the copy line copies (cbytes of it) */
  size_t cbytes;
  ri__cu_convgemm_tactic tiled;
  const ri__cu_splitk *sk;
} ctx_t;

/* Bytes of a and b that differ (memcmp first: the outputs are up to 1.1 GB). */
static size_t count_differ(const unsigned char *a, const unsigned char *b, size_t n) {
  if (memcmp(a, b, n) == 0) return 0;
  size_t d = 0;
  for (size_t i = 0; i < n; i++)
    d += a[i] != b[i];
  return d;
}

static cudaError_t run_memset(void *c) {
  ctx_t *t = c;
  return cudaMemsetAsync(t->y, 0, t->ybytes, 0);
}
static cudaError_t run_copy(void *c) {
  ctx_t *t = c;
  return cudaMemcpyAsync(t->y2, t->csrc, t->cbytes, cudaMemcpyDeviceToDevice, 0);
}
static cudaError_t run_tiled(void *c) {
  ctx_t *t = c;
  return ri__cu_convgemm_tac(0, &t->a, &t->tiled, t->x, t->w, t->b, t->r, t->y, t->sk);
}
static cudaError_t run_pw(void *c) {
  ctx_t *t = c;
  return ri__cu_pwconv_v(0, &t->a, t->variant, t->x, t->w, t->b, t->r, t->y);
}

int main(int argc, char **argv) {
  int batch = 256, reps = 20, set = 0; /* set: 0 early, 1 wide, 2 all */
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
      batch = atoi(argv[++i]);
    else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
      const char *v = argv[++i];
      set = strcmp(v, "wide") == 0    ? SET_WIDE
            : strcmp(v, "box") == 0   ? SET_BOX
            : strcmp(v, "all") == 0   ? SET_ALL
            : strcmp(v, "early") == 0 ? SET_EARLY
                                      : -1;
      if (set < 0) {
        fprintf(stderr, "bench_pwconv: --set early, wide, box or all\n");
        return 2;
      }
    } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
      reps = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--batch N] [--reps N] [--set early|wide|box|all]\n", argv[0]);
      return 2;
    }
  }
  if (batch < 1 || reps < 1) {
    fprintf(stderr, "bench_pwconv: batch and reps must be positive\n");
    return 2;
  }
  struct cudaDeviceProp prop;
  CKB(cudaGetDeviceProperties(&prop, 0));
  printf("# bench_pwconv: %s, %d SMs, L2 %d MiB, batch %d, median of %d runs; default form %d\n", prop.name,
         prop.multiProcessorCount, prop.l2CacheSize >> 20, batch, reps, ri__cu_pwconv_default_variant());
  /* split-K resources for the box set's segmented tiled runs (the engine's: cuda_backend.c) */
  ri__cu_splitk sk = {NULL, RI__CU_SPLITK_WS_BYTES, NULL, RI__CU_SPLITK_COUNTERS, prop.multiProcessorCount};
  if (set == SET_BOX || set == SET_ALL) {
    CKB(cudaMalloc(&sk.ws, sk.ws_bytes));
    CKB(cudaMalloc((void **)&sk.counters, sk.n_counters * sizeof(int)));
    CKB(cudaMemset(sk.counters, 0, sk.n_counters * sizeof(int)));
  }
  int fails = 0;
  for (size_t si = 0; si < sizeof g_shapes / sizeof g_shapes[0]; si++) {
    const shape *sh = &g_shapes[si];
    if (set != SET_ALL && sh->set != set) continue;
    const int box = sh->set == SET_BOX, ref_tiled = sh->set != SET_EARLY;
    ctx_t t;
    memset(&t, 0, sizeof t);
    const size_t rows = (size_t)batch * sh->hw * sh->hw;
    /* yb: the output buffer (box: the whole float32 [batch, 1917, 4] tensor); ywb: the bytes written */
    const size_t xb = rows * sh->k * 2, yb = box ? (size_t)batch * BOX_IMG * 4 : rows * sh->n * 2,
                 ywb = box ? rows * sh->n * 4 : yb, rb = sh->res ? yb : 0, wb = (size_t)sh->n * sh->k * 2;
    t.ybytes = yb;
    uint16_t *hw = malloc(wb), *hs = malloc(1 << 20);
    float *hb = malloc(sh->n * 4);
    unsigned char *h0 = malloc(yb), *h1 = malloc(yb);
    const size_t y2b = box && xb > yb ? xb : yb;
    if (!hw || !hs || !hb || !h0 || !h1) {
      printf("FAIL %s: out of host memory\n", sh->name);
      return 1;
    }
    fill_half(hw, NULL, (size_t)sh->n * sh->k, 0.25);
    fill_half(hs, NULL, (1 << 20) / 2, 1.0);
    for (int j = 0; j < sh->n; j++)
      hb[j] = (float)(urand() - 0.5);
    CKB(cudaMalloc(&t.x, xb));
    CKB(cudaMalloc(&t.w, wb));
    CKB(cudaMalloc((void **)&t.b, sh->n * 4));
    CKB(cudaMalloc(&t.y, yb));
    CKB(cudaMalloc(&t.y2, y2b));
    t.csrc = box ? t.x : t.y, t.cbytes = box ? xb : yb;
    if (rb) CKB(cudaMalloc(&t.r, rb));
    /* inputs (and residual): a 1 MiB random block repeated */
    for (size_t off = 0; off < xb; off += 1 << 20)
      CKB(cudaMemcpy((char *)t.x + off, hs, xb - off < (1u << 20) ? xb - off : 1u << 20,
                     cudaMemcpyHostToDevice));
    for (size_t off = 0; off < rb; off += 1 << 20)
      CKB(cudaMemcpy((char *)t.r + off, hs, rb - off < (1u << 20) ? rb - off : 1u << 20,
                     cudaMemcpyHostToDevice));
    CKB(cudaMemcpy(t.w, hw, wb, cudaMemcpyHostToDevice));
    CKB(cudaMemcpy(t.b, hb, sh->n * 4, cudaMemcpyHostToDevice));
    ri__cu_convgemm_args *a = &t.a;
    a->n = batch, a->ih = a->iw = a->oh = a->ow = sh->hw, a->c = a->k = a->ldw = sh->k, a->m_out = sh->n;
    a->kh = a->kw = a->sh = a->sw = a->dh = a->dw = 1;
    a->rows_per_img = (int64_t)sh->hw * sh->hw, a->ldy = sh->n, a->y_img_stride = a->rows_per_img * sh->n;
    a->ldr = sh->n, a->act = sh->act, a->act_a = 0.f, a->act_b = 6.f;
    if (box) a->y_f32 = 1, a->y_img_stride = BOX_IMG, a->y_off = sh->y_off;
    double ms;
    const double traffic = (double)xb + ywb + rb;
    if (!box) {
      if (gpu_time_it(run_memset, &t, reps, &ms)) return 1;
      printf("%-24s memset   %8.1f us  %6.2f TB/s (output bytes, write only)\n", sh->name, ms * 1e3,
             yb / (ms * 1e-3) / 1e12);
    }
    if (gpu_time_it(run_copy, &t, reps, &ms)) return 1;
    printf("%-24s d2d copy %8.1f us  %6.2f TB/s (%s size read + written)\n", sh->name, ms * 1e3,
           2.0 * t.cbytes / (ms * 1e-3) / 1e12, box ? "input" : "output");
    if (ref_tiled) { /* the reference: the tiled kernel with one K segment (box: then 64x32, timed only) */
      const ri__cu_convgemm_tactic tl = {box ? 128 : 64, 64, 0, 0, 0};
      t.tiled = tl;
      CKB(cudaMemset(t.y, 0xff, yb));
      if (gpu_time_it(run_tiled, &t, reps, &ms)) return 1;
      CKB(cudaDeviceSynchronize());
      CKB(cudaMemcpy(h0, t.y, yb, cudaMemcpyDeviceToHost));
      printf("%-24s tiled    %8.1f us  %6.2f TB/s  gemm_nhwc_f16 %dx64, one K segment\n", sh->name, ms * 1e3,
             traffic / (ms * 1e-3) / 1e12, tl.bm);
      if (box) {
        const ri__cu_convgemm_tactic t2 = {64, 32, 0, 0, 0};
        t.tiled = t2;
        if (gpu_time_it(run_tiled, &t, reps, &ms)) return 1;
        printf("%-24s tiled    %8.1f us  %6.2f TB/s  gemm_nhwc_f16 64x32, one K segment\n", sh->name,
               ms * 1e3, traffic / (ms * 1e-3) / 1e12);
      }
    }
    const int v_lo = box ? ri__cu_pwconv_default_variant() : 0, v_hi = box ? v_lo + 1 : RI__CU_PW_VARIANTS;
    for (int v = v_lo; v < v_hi; v++) {
      t.variant = v;
      CKB(cudaMemset(t.y, 0xff, yb)); /* poison: a form that leaves a part unwritten differs */
      if (gpu_time_it(run_pw, &t, reps, &ms)) return 1;
      CKB(cudaDeviceSynchronize());
      const int ref = ref_tiled || v > 0; /* compared with h0 (the tiled kernel's, or form 0's) */
      CKB(cudaMemcpy(ref ? h1 : h0, t.y, yb, cudaMemcpyDeviceToHost));
      size_t differ = ref ? count_differ(h0, h1, yb) : 0;
      char plan[200] = "first form";
      if (box) {
        if (ri__cu_pwconv_deep_describe(a, plan, sizeof plan) != cudaSuccess)
          snprintf(plan, sizeof plan, "no plan");
      } else if (sh->set == SET_WIDE) {
        if (ri__cu_pwconv_wide_describe(a, v, plan, sizeof plan) != cudaSuccess)
          snprintf(plan, sizeof plan, "no plan");
      } else if (v > 0 && ri__cu_pwconv_bulk_describe(a, v, sh->res, plan, sizeof plan) != cudaSuccess) {
        snprintf(plan, sizeof plan, "no plan: first form");
      }
      printf("%-24s form %d   %8.1f us  %6.2f TB/s  %s%s\n", sh->name, v, ms * 1e3,
             traffic / (ms * 1e-3) / 1e12, plan, ref_tiled ? (differ ? ", DIFFERS" : ", bit-identical") : "");
      if (differ) {
        printf("FAIL %s form %d: %zu bytes differ from %s\n", sh->name, v, differ,
               ref_tiled ? "the tiled kernel" : "form 0");
        fails++;
      }
    }
    /* forms 1 and 2 (bulk and lane stores, evict-first) under each forced plan that fits */
    for (int v = 1; v <= (sh->set != SET_EARLY ? 0 : 2); v++)
      for (int wi = 0; wi < 2; wi++)
        for (int nb = v == 1 ? 2 : 1; nb >= 1; nb--)
          for (int si = 0; si < 5; si++) {
            static const int stages[5] = {2, 3, 4, 6, 8};
            ri__cu_pwconv_bulk_force(wi ? 4 : 8, stages[si], nb);
            char plan[200];
            if (ri__cu_pwconv_bulk_describe(a, v, sh->res, plan, sizeof plan) != cudaSuccess) continue;
            t.variant = v;
            CKB(cudaMemset(t.y, 0xff, yb));
            if (gpu_time_it(run_pw, &t, reps, &ms)) return 1;
            CKB(cudaDeviceSynchronize());
            CKB(cudaMemcpy(h1, t.y, yb, cudaMemcpyDeviceToHost));
            size_t differ = count_differ(h0, h1, yb);
            printf("%-24s plan %d   %8.1f us  %6.2f TB/s  %s\n", sh->name, v, ms * 1e3,
                   traffic / (ms * 1e-3) / 1e12, plan);
            if (differ) {
              printf("FAIL %s form %d (%s): %zu bytes differ from form 0\n", sh->name, v, plan, differ);
              fails++;
            }
          }
    ri__cu_pwconv_bulk_force(0, 0, 0);
    if (box) { /* what the engine ran before: the heuristic's tile and K segments, split K where it helps */
      const int seg = ri__cu_convgemm_default_seg(a, &sk);
      const ri__cu_convgemm_tactic ts = {0, 0, seg, -1, 0};
      t.tiled = ts, t.sk = &sk;
      if (gpu_time_it(run_tiled, &t, reps, &ms)) return 1;
      printf(
          "%-24s segmented %7.1f us  %6.2f TB/s  gemm_nhwc_f16 heuristic tile, K segments of %d steps (own "
          "bits)\n",
          sh->name, ms * 1e3, traffic / (ms * 1e-3) / 1e12, seg);
      t.sk = NULL;
    }
    cudaFree(t.x), cudaFree(t.w), cudaFree(t.b), cudaFree(t.y), cudaFree(t.y2), cudaFree(t.r);
    free(hw), free(hs), free(hb), free(h0), free(h1);
  }
  cudaFree(sk.ws), cudaFree(sk.counters);
  printf("bench_pwconv: %s\n", fails ? "FAILED (forms differ)" : "all forms bit-identical");
  return fails ? 1 : 0;
}
