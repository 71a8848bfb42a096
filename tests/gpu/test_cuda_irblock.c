/* GPU test of the fused inverted-residual block (ri__cu_irblock, k_irblock.cu) against a double-precision
 * CPU reference that rounds the expanded tensor and the depthwise output to half as the unfused path does,
 * on the same half-rounded data: the MobileNet v2 blocks of SSD at 150/75/38/19/10 pixels (stride 1 and 2,
 * TF "SAME" pads, with and without residual, with and without expansion) and odd geometries (odd sizes,
 * expanded channels that are no multiple of 32, pads of 0 and 2, other activations). Expansion biases are
 * drawn so that act(bias) is mostly non-zero: padding applied before the expansion instead of after it
 * would show.
 *
 * Each case also checks that the output does not depend on the batch, the tile shape or the split of the
 * expanded channels over blocks: every image of the batch is run again alone, with 8x8 tiles in one block
 * per tile, and with 4x4 tiles and each group of expanded channels in its own block (split resources as a
 * context has them; their counters must be back at 0), and must match its slice of the batched output bit
 * for bit.
 * Outputs are poisoned (NaN) before each launch; a guard after the output must stay poison.
 *
 *   test_cuda_irblock          one PASS/FAIL line per case, then "N passed, M failed"; exit 1 on failure
 *
 * The error is max|got - ref| / max(max|ref|, 1); it must be <= 4e-3 (output rounding 2^-11, plus the rare
 * intermediate half that rounds the other way after a float instead of double sum). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "backend/cuda/irblock.h"
#include "core/half.h"

static int g_pass, g_fail;
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static double urand(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (double)(g_rng >> 11) / (double)(1ull << 53);
}

/* n random halves uniform in [-scale, scale) + shift, as floats of the rounded values. */
static void fill(float *f, size_t n, double scale, double shift) {
  for (size_t i = 0; i < n; i++)
    f[i] = ri__half_to_float(ri__float_to_half((float)((urand() * 2.0 - 1.0) * scale + shift)));
}

static float round_half(double v) { return ri__half_to_float(ri__float_to_half((float)v)); }

/* Activations of the cases: 0 none, 1 relu, 2 clip(0, 6), 6 hard swish. */
static double act(int a, double x) {
  switch (a) {
  case 1: return x > 0 ? x : 0;
  case 2: return x < 0 ? 0 : x > 6 ? 6 : x;
  case 6: {
    double y = x / 6 + 0.5;
    return x * (y < 0 ? 0 : y > 1 ? 1 : y);
  }
  default: return x;
  }
}

typedef struct {
  int n, ih, iw, cin, ce, cout, s, pt, pl, pb, pr, res, act0, act1, act2;
} bcase;

/* Host data of one case. */
typedef struct {
  int oh, ow, k1p, cep, cop;
  size_t nx, ny, cx;
  float *x, *w1, *b1, *wd, *bd, *w2, *b2, *r; /* logical weights: w1[e][c], wd[t][e], w2[j][e] */
  void *dx, *dr, *dy, *dw1, *db1, *dwd, *dbd, *dw2, *db2;
} bdata;

#define CK(call)                                                                                             \
  do {                                                                                                       \
    cudaError_t e_ = (call);                                                                                 \
    if (e_ != cudaSuccess) {                                                                                 \
      printf("FAIL %s: %s (%s)\n", name, #call, cudaGetErrorString(e_));                                     \
      goto fail;                                                                                             \
    }                                                                                                        \
  } while (0)

/* Uploads rows x cols halves: src[r][c] inside n_rows x n_cols, zero elsewhere. */
static cudaError_t up_half(void **d, const float *src, int n_rows, int n_cols, int rows, int cols) {
  uint16_t *h = calloc((size_t)rows * cols, 2);
  if (!h) return cudaErrorMemoryAllocation;
  for (int r = 0; r < n_rows; r++)
    for (int c = 0; c < n_cols; c++)
      h[(size_t)r * cols + c] = ri__float_to_half(src[(size_t)r * n_cols + c]);
  cudaError_t e = cudaMalloc(d, (size_t)rows * cols * 2);
  if (e == cudaSuccess) e = cudaMemcpy(*d, h, (size_t)rows * cols * 2, cudaMemcpyHostToDevice);
  free(h);
  return e;
}

/* Uploads rows x cols floats holding src[r][c] rounded to half (the depthwise weights of an fp16 engine):
 * inside n_rows x n_cols, zero elsewhere. */
static cudaError_t up_half_float(void **d, const float *src, int n_rows, int n_cols, int rows, int cols) {
  float *h = calloc((size_t)rows * cols, 4);
  if (!h) return cudaErrorMemoryAllocation;
  for (int r = 0; r < n_rows; r++)
    for (int c = 0; c < n_cols; c++)
      h[(size_t)r * cols + c] = ri__half_to_float(ri__float_to_half(src[(size_t)r * n_cols + c]));
  cudaError_t e = cudaMalloc(d, (size_t)rows * cols * 4);
  if (e == cudaSuccess) e = cudaMemcpy(*d, h, (size_t)rows * cols * 4, cudaMemcpyHostToDevice);
  free(h);
  return e;
}

static cudaError_t up_float(void **d, const float *src, int n, int len) {
  float *h = calloc((size_t)len, 4);
  if (!h) return cudaErrorMemoryAllocation;
  memcpy(h, src, (size_t)n * 4);
  cudaError_t e = cudaMalloc(d, (size_t)len * 4);
  if (e == cudaSuccess) e = cudaMemcpy(*d, h, (size_t)len * 4, cudaMemcpyHostToDevice);
  free(h);
  return e;
}

/* The most groups of expanded-channel chunks the cases run with (0: the kernel's default of 8); every case
 * runs with 0 and with 32. */
static int g_groups;

static void args_of(const bcase *t, const bdata *b, int n, int sms, ri__cu_irblock_args *a) {
  memset(a, 0, sizeof *a);
  a->groups = g_groups;
  a->n = n, a->ih = t->ih, a->iw = t->iw, a->oh = b->oh, a->ow = b->ow;
  a->cin = t->cin, a->ce = t->ce, a->cout = t->cout;
  a->k1p = b->k1p, a->cep = b->cep, a->cop = b->cop;
  a->stride = t->s, a->pad_t = t->pt, a->pad_l = t->pl;
  a->act[0] = t->act0, a->act[1] = t->act1, a->act[2] = t->act2;
  for (int k = 0; k < 3; k++)
    a->act_a[k] = 0.f, a->act_b[k] = 6.f;
  a->sms = sms;
}

/* Reference output of image img into ref[oh * ow * cout] (doubles). */
static void reference(const bcase *t, const bdata *b, int img, double *ref) {
  int ih = t->ih, iw = t->iw, ce = t->ce;
  float *e = malloc((size_t)ih * iw * ce * sizeof *e), *d = malloc((size_t)b->oh * b->ow * ce * sizeof *d);
  if (!e || !d) {
    free(e), free(d);
    return;
  }
  const float *x = b->x + (size_t)img * ih * iw * b->cx;
  for (int p = 0; p < ih * iw; p++)
    for (int c = 0; c < ce; c++) {
      if (!t->cin) {
        e[(size_t)p * ce + c] = x[(size_t)p * ce + c];
        continue;
      }
      double s = b->b1[c];
      for (int k = 0; k < t->cin; k++)
        s += (double)x[(size_t)p * t->cin + k] * b->w1[(size_t)c * t->cin + k];
      e[(size_t)p * ce + c] = round_half(act(t->act0, s));
    }
  for (int oy = 0; oy < b->oh; oy++)
    for (int ox = 0; ox < b->ow; ox++)
      for (int c = 0; c < ce; c++) {
        double s = b->bd[c];
        for (int ky = 0; ky < 3; ky++)
          for (int kx = 0; kx < 3; kx++) {
            int iy = oy * t->s - t->pt + ky, ix = ox * t->s - t->pl + kx;
            if (iy < 0 || iy >= ih || ix < 0 || ix >= iw) continue; /* zero in the expanded space */
            s += (double)e[((size_t)iy * iw + ix) * ce + c] * b->wd[(size_t)(ky * 3 + kx) * ce + c];
          }
        d[((size_t)oy * b->ow + ox) * ce + c] = round_half(act(t->act1, s));
      }
  for (int p = 0; p < b->oh * b->ow; p++)
    for (int j = 0; j < t->cout; j++) {
      double s = b->b2[j];
      for (int c = 0; c < ce; c++)
        s += (double)d[(size_t)p * ce + c] * b->w2[(size_t)j * ce + c];
      size_t yi = (size_t)p * t->cout + j;
      if (t->res) s += b->r[(size_t)img * b->oh * b->ow * t->cout + yi];
      ref[yi] = act(t->act2, s);
    }
  free(e), free(d);
}

#define GUARD 64 /* halves after the output that must stay poison */

/* Split resources (as a context has them); the counters must be back at 0 after every launch. */
static ri__cu_splitk g_sk;

/* Runs images [first, first + n) with the given multiprocessor count (sms 1: 8x8 tiles, no split; sms
 * large: 4x4 tiles, each group of expanded channels in its own block) into host buffer out (ny / t->n * n
 * halves + GUARD). */
static cudaError_t run(const bcase *t, bdata *b, int first, int n, int sms, uint16_t *out) {
  ri__cu_irblock_args a;
  args_of(t, b, n, sms, &a);
  size_t per_x = (size_t)t->ih * t->iw * b->cx, per_y = (size_t)b->oh * b->ow * t->cout;
  size_t ny = per_y * n + GUARD;
  cudaError_t e = cudaMemset(b->dy, 0xff, ny * 2);
  if (e != cudaSuccess) return e;
  ri__cu_irblock_weights w = {b->dw1, b->db1, b->dwd, b->dbd, b->dw2, b->db2};
  const char *x = (const char *)b->dx + per_x * first * 2;
  const char *r = b->dr ? (const char *)b->dr + per_y * first * 2 : NULL;
  g_sk.sms = sms;
  e = ri__cu_irblock(0, &a, x, &w, r, b->dy, sms > 1 ? &g_sk : NULL);
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  if (e == cudaSuccess) e = cudaMemcpy(out, b->dy, ny * 2, cudaMemcpyDeviceToHost);
  int cnt[64];
  if (e == cudaSuccess) e = cudaMemcpy(cnt, g_sk.counters, sizeof cnt, cudaMemcpyDeviceToHost);
  for (int i = 0; e == cudaSuccess && i < 64; i++)
    if (cnt[i] != 0) e = cudaErrorIllegalState; /* a split counter left non-zero */
  return e;
}

static void test_block(const bcase *t) {
  char name[256];
  snprintf(name, sizeof name,
           "irblock n=%d %dx%d cin=%d ce=%d cout=%d s=%d pads=%d,%d,%d,%d res=%d act=%d,%d,%d groups=%d",
           t->n, t->ih, t->iw, t->cin, t->ce, t->cout, t->s, t->pt, t->pl, t->pb, t->pr, t->res, t->act0,
           t->act1, t->act2, g_groups ? g_groups : 8);
  bdata b;
  memset(&b, 0, sizeof b);
  uint16_t *hy = NULL, *h1 = NULL;
  double *ref = NULL;
  b.oh = (t->ih + t->pt + t->pb - 3) / t->s + 1;
  b.ow = (t->iw + t->pl + t->pr - 3) / t->s + 1;
  b.k1p = t->cin ? (t->cin + 15) / 16 * 16 : 0;
  b.cep = (t->ce + RI__CU_IRB_CE - 1) / RI__CU_IRB_CE * RI__CU_IRB_CE;
  b.cop = (t->cout + 15) / 16 * 16;
  b.cx = (size_t)(t->cin ? t->cin : t->ce);
  b.nx = (size_t)t->n * t->ih * t->iw * b.cx;
  size_t per_y = (size_t)b.oh * b.ow * t->cout;
  b.ny = per_y * t->n;
  int ce = t->ce, cin = t->cin ? t->cin : 1;
  b.x = malloc(b.nx * 4), b.w1 = malloc((size_t)ce * cin * 4), b.b1 = malloc((size_t)ce * 4);
  b.wd = malloc((size_t)9 * ce * 4), b.bd = malloc((size_t)ce * 4);
  b.w2 = malloc((size_t)t->cout * ce * 4), b.b2 = malloc((size_t)t->cout * 4), b.r = malloc(b.ny * 4);
  hy = malloc((b.ny + GUARD) * 2), h1 = malloc((per_y + GUARD) * 2), ref = malloc(per_y * sizeof *ref);
  if (!b.x || !b.w1 || !b.b1 || !b.wd || !b.bd || !b.w2 || !b.b2 || !b.r || !hy || !h1 || !ref) {
    printf("FAIL %s: out of host memory\n", name);
    goto fail;
  }
  fill(b.x, b.nx, 1.0, 0.0);
  fill(b.w1, (size_t)ce * cin, 1.0 / sqrt((double)cin), 0.0);
  fill(b.b1, (size_t)ce, 0.5, 0.3);
  fill(b.wd, (size_t)9 * ce, 0.4, 0.0);
  fill(b.bd, (size_t)ce, 0.5, 0.0);
  fill(b.w2, (size_t)t->cout * ce, 1.0 / sqrt((double)ce), 0.0);
  fill(b.b2, (size_t)t->cout, 0.5, 0.0);
  fill(b.r, b.ny, 1.0, 0.0);
  CK(up_half(&b.dx, b.x, 1, (int)b.nx, 1, (int)b.nx));
  if (t->res) CK(up_half(&b.dr, b.r, 1, (int)b.ny, 1, (int)b.ny));
  if (t->cin) {
    CK(up_half(&b.dw1, b.w1, ce, t->cin, b.cep, b.k1p));
    CK(up_float(&b.db1, b.b1, ce, b.cep));
  }
  CK(up_half_float(&b.dwd, b.wd, 9, ce, 9, b.cep));
  CK(up_float(&b.dbd, b.bd, ce, b.cep));
  CK(up_half(&b.dw2, b.w2, t->cout, ce, b.cop, b.cep));
  CK(up_float(&b.db2, b.b2, t->cout, b.cop));
  CK(cudaMalloc(&b.dy, (b.ny + GUARD) * 2));
  ri__cu_irblock_args a;
  args_of(t, &b, t->n, 1, &a);
  if (ri__cu_irblock_smem(&a) < 0) {
    printf("FAIL %s: arguments refused\n", name);
    goto fail;
  }
  /* The whole batch with 8x8 tiles (sms = 1). */
  CK(run(t, &b, 0, t->n, 1, hy));
  double maxerr = 0, maxref = 0;
  size_t nan_out = 0, guard_bad = 0, variant = 0;
  for (int img = 0; img < t->n; img++) {
    reference(t, &b, img, ref);
    for (size_t i = 0; i < per_y; i++) {
      double got = ri__half_to_float(hy[img * per_y + i]);
      if (isnan(got)) nan_out++;
      double e = isnan(got) ? INFINITY : fabs(got - ref[i]);
      if (e > maxerr) maxerr = e;
      if (fabs(ref[i]) > maxref) maxref = fabs(ref[i]);
    }
    /* The image alone, with 8x8 and with 4x4 tiles (sms large), bit for bit. */
    for (int k = 0; k < 2; k++) {
      CK(run(t, &b, img, 1, k ? 1 << 20 : 1, h1));
      if (memcmp(h1, hy + img * per_y, per_y * 2) != 0) variant++;
      for (int i = 0; i < GUARD; i++)
        if (h1[per_y + i] != 0xffff) guard_bad++;
    }
  }
  for (int i = 0; i < GUARD; i++)
    if (hy[b.ny + i] != 0xffff) guard_bad++;
  double rel = maxerr / (maxref > 1 ? maxref : 1);
  int ok = rel <= 4e-3 && !nan_out && !guard_bad && !variant;
  printf("%s %s: max_rel_err=%.3g (max|ref|=%.3g), unwritten=%zu, guard_written=%zu, runs differing from "
         "the batch=%zu\n",
         ok ? "PASS" : "FAIL", name, rel, maxref, nan_out, guard_bad, variant);
  if (ok)
    g_pass++;
  else
    goto fail;
  goto done;
fail:
  g_fail++;
done:
  cudaFree(b.dx), cudaFree(b.dr), cudaFree(b.dy), cudaFree(b.dw1), cudaFree(b.db1), cudaFree(b.dwd);
  cudaFree(b.dbd), cudaFree(b.dw2), cudaFree(b.db2);
  free(b.x), free(b.w1), free(b.b1), free(b.wd), free(b.bd), free(b.w2), free(b.b2), free(b.r);
  free(hy), free(h1), free(ref);
}

/* Argument checks: refused arguments give cudaErrorInvalidValue and launch nothing. */
static void test_refusals(void) {
  const char *name = "irblock refusals";
  ri__cu_irblock_args a;
  bcase t = {1, 19, 19, 64, 384, 64, 1, 1, 1, 1, 1, 0, 2, 2, 0};
  bdata b;
  memset(&b, 0, sizeof b);
  b.oh = b.ow = 19, b.k1p = 64, b.cep = 384, b.cop = 64;
  args_of(&t, &b, 1, 1, &a);
  int bad = ri__cu_irblock_smem(&a) < 0;
  ri__cu_irblock_args c = a;
  c.ce = 36; /* not a multiple of 8 */
  bad += ri__cu_irblock_smem(&c) >= 0;
  c = a, c.stride = 3;
  bad += ri__cu_irblock_smem(&c) >= 0;
  c = a, c.oh = 25; /* more output rows than a 3x3 window with these pads gives */
  bad += ri__cu_irblock_smem(&c) >= 0;
  c = a, c.cop = 48; /* padding that does not match cout */
  bad += ri__cu_irblock_smem(&c) >= 0;
  c = a, c.cout = 336, c.cop = 336; /* beyond 320 output channels */
  bad += ri__cu_irblock_smem(&c) >= 0;
  c = a, c.groups = 65; /* more groups than the kernel takes */
  bad += ri__cu_irblock_smem(&c) >= 0;
  ri__cu_irblock_weights w = {0};
  bad += ri__cu_irblock(0, &a, (void *)16, &w, NULL, (void *)16, NULL) != cudaErrorInvalidValue;
  printf("%s %s: %d wrong verdicts\n", bad ? "FAIL" : "PASS", name, bad);
  if (bad)
    g_fail++;
  else
    g_pass++;
}

int main(void) {
  int dev = 0;
  if (cudaGetDeviceCount(&dev) != cudaSuccess || dev < 1) {
    printf("no CUDA device\n");
    return 2;
  }
  g_sk.ws_bytes = (size_t)16 << 20, g_sk.n_counters = 4096;
  if (cudaMalloc(&g_sk.ws, g_sk.ws_bytes) != cudaSuccess ||
      cudaMalloc((void **)&g_sk.counters, g_sk.n_counters * sizeof(int)) != cudaSuccess ||
      cudaMemset(g_sk.counters, 0, g_sk.n_counters * sizeof(int)) != cudaSuccess) {
    printf("FAIL: cannot allocate the split resources\n");
    return 1;
  }
  static const bcase cases[] = {
      /* SSD MobileNet v2 at 300x300 (TF "SAME" pads): n, ih, iw, cin, ce, cout, s, pads, res, acts. */
      {1, 150, 150, 0, 32, 16, 1, 1, 1, 1, 1, 0, 0, 2, 0},   /* block 0: no expansion */
      {2, 150, 150, 16, 96, 24, 2, 0, 0, 1, 1, 0, 2, 2, 0},  /* block 1 */
      {2, 75, 75, 24, 144, 24, 1, 1, 1, 1, 1, 1, 2, 2, 0},   /* block 2 */
      {2, 75, 75, 24, 144, 32, 2, 1, 1, 1, 1, 0, 2, 2, 0},   /* block 3 */
      {3, 38, 38, 32, 192, 32, 1, 1, 1, 1, 1, 1, 2, 2, 0},   /* blocks 4, 5 */
      {3, 38, 38, 32, 192, 64, 2, 0, 0, 1, 1, 0, 2, 2, 0},   /* block 6 */
      {5, 19, 19, 64, 384, 64, 1, 1, 1, 1, 1, 1, 2, 2, 0},   /* blocks 7-9 */
      {3, 19, 19, 64, 384, 96, 1, 1, 1, 1, 1, 0, 2, 2, 0},   /* block 10 */
      {5, 19, 19, 96, 576, 96, 1, 1, 1, 1, 1, 1, 2, 2, 0},   /* blocks 11, 12 */
      {4, 19, 19, 0, 576, 160, 2, 1, 1, 1, 1, 0, 0, 2, 0},   /* block 13 after its shared expansion */
      {5, 10, 10, 160, 960, 160, 1, 1, 1, 1, 1, 1, 2, 2, 0}, /* blocks 14, 15 */
      {2, 10, 10, 160, 960, 320, 1, 1, 1, 1, 1, 0, 2, 2, 0}, /* block 16 */
      /* Odd geometries. */
      {3, 7, 5, 8, 40, 8, 2, 1, 1, 1, 1, 0, 1, 1, 1},     /* ce not a multiple of 32, tiny map */
      {2, 13, 11, 24, 48, 40, 1, 0, 0, 2, 2, 1, 6, 2, 1}, /* pads 0 and 2, hard swish */
      {4, 9, 17, 16, 72, 24, 2, 2, 0, 1, 2, 0, 0, 6, 0},  /* pads 2 and 0, no expansion activation */
      {1, 1, 1, 8, 16, 8, 1, 1, 1, 1, 1, 1, 2, 2, 0},     /* a 1x1 map: only halo */
      {5, 23, 21, 0, 24, 56, 1, 1, 1, 1, 1, 1, 0, 1, 2},  /* no expansion, odd channels, residual */
  };
  for (g_groups = 0; g_groups <= 32; g_groups += 32)
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
      test_block(&cases[i]);
  g_groups = 0;
  test_refusals();
  cudaFree(g_sk.ws), cudaFree(g_sk.counters);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
