/* Micro-benchmark of the fused expansion -> depthwise kernel (ri__cu_expdw, k_expdw.cu) against the two
 * unfused kernels it replaces, on the early SSD MobileNet v2 blocks at one batch: for each shape the
 * median time of the expansion (ri__cu_pwconv_v, each form), of the depthwise convolution (ri__cu_dwconv_v,
 * each variant), the sum of the fastest of each, and the fused kernel, with the traffic floor of the fused
 * kernel (input + output bytes) at the device-to-device copy speed measured here. The fused output must
 * equal the unfused one bit for bit (FAIL line, exit 1 otherwise).
 * With --proj, SSD MobileNet v2's blocks 1 .. 5 with their projections instead (cout 24, 24, 32, 32, 32;
 * blocks 2, 4 and 5 with the residual): the unfused time adds the fastest projection form (the tiled kernel
 * or a pointwise form, with the residual), the fused kernel runs with cout set, and the projection's output
 * must be bit-identical; a block the kernel refuses is skipped (SKIP line). --proj also runs the first block
 * (expanded_conv: no expansion, depthwise 3x3 over 150x150x32, stride 1, projection to 16): the fastest
 * depthwise variant + the fastest projection form against the kernel's form without the expansion
 * (noexp); --dwp runs that block alone.
 * With --h2 (prototype; RI_CUDA_DW_HALF=1's arithmetic), each shape also times the half-arithmetic
 * depthwise kernel (ri__cu_dwconv_h2, default strip) and the fused kernel's half2 depthwise instance
 * (args dwh 1) against the float fused one; the h2 fused output must equal the unfused chain with
 * ri__cu_dwconv_h2 in place of the depthwise variant bit for bit (FAIL line otherwise).
 *   bench_expdw [--batch N] [--reps N] [--proj | --dwp] [--h2]   (defaults: 256, 20, no projection) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "backend/cuda/expdw.h"
#include "backend/cuda/kernels.h"
#include "core/half.h"
#include "graph/ir.h"
#include "gpu_rand.h"
#include "gpu_timing.h"

typedef struct {
  const char *name;
  int hw, cin, ce, stride;
  int cout, res; /* --proj: the projection's channels, 1 with a residual */
  int noexp;     /* no expansion (cin == ce): the depthwise convolution reads x */
} shape;

static const shape g_shapes[] = {
    {"expanded_conv_1", 150, 16, 96, 2, 0, 0, 0}, {"expanded_conv_2", 75, 24, 144, 1, 0, 0, 0},
    {"expanded_conv_3", 75, 24, 144, 2, 0, 0, 0}, {"expanded_conv_4", 38, 32, 192, 1, 0, 0, 0},
    {"expanded_conv_6", 38, 32, 192, 2, 0, 0, 0}, {"expanded_conv_7", 19, 64, 384, 1, 0, 0, 0},
};

static const shape g_proj_shapes[] = {
    {"expanded_conv", 150, 32, 32, 1, 16, 0, 1},   {"expanded_conv_1", 150, 16, 96, 2, 24, 0, 0},
    {"expanded_conv_2", 75, 24, 144, 1, 24, 1, 0}, {"expanded_conv_3", 75, 24, 144, 2, 32, 0, 0},
    {"expanded_conv_4", 38, 32, 192, 1, 32, 1, 0}, {"expanded_conv_5", 38, 32, 192, 1, 32, 1, 0},
};

typedef struct {
  ri__cu_convgemm_args pa, qa; /* the expansion, the projection */
  ri__cu_dwconv_args da;
  ri__cu_expdw_args fa;
  ri__cu_expdw_weights fw;
  int variant;
  void *x, *w1, *w1p, *e, *wdh, *y, *y2, *w2, *res, *p;
  const void *din; /* the depthwise input: e, or x without the expansion */
  float *b1, *bd, *wdf, *b2;
  size_t ybytes, pbytes; /* D's bytes; the projection's output bytes (0 without) */
} ctx_t;

static cudaError_t run_copy(void *c) {
  ctx_t *t = c;
  return cudaMemcpyAsync(t->y2, t->y, t->ybytes, cudaMemcpyDeviceToDevice, 0);
}
static cudaError_t run_pw(void *c) {
  ctx_t *t = c;
  if (t->variant < 0) /* the tiled kernel, where no pointwise form takes the shape */
    return ri__cu_convgemm(0, &t->pa, t->x, t->w1, t->b1, NULL, t->e, NULL);
  return ri__cu_pwconv_v(0, &t->pa, t->variant, t->x, t->w1, t->b1, NULL, t->e);
}
static cudaError_t run_dw(void *c) {
  ctx_t *t = c;
  return ri__cu_dwconv_v(0, RI_DTYPE_FLOAT16, &t->da, t->variant, t->din, t->wdh, t->bd, t->y);
}
static cudaError_t run_dwh(void *c) {
  ctx_t *t = c;
  return ri__cu_dwconv_h2(0, &t->da, 0, t->din, t->wdh, t->bd, t->y);
}
static cudaError_t run_pj(void *c) {
  ctx_t *t = c;
  if (t->variant < 0) return ri__cu_convgemm(0, &t->qa, t->y, t->w2, t->b2, t->res, t->p, NULL);
  return ri__cu_pwconv_v(0, &t->qa, t->variant, t->y, t->w2, t->b2, t->res, t->p);
}
static cudaError_t run_fused(void *c) {
  ctx_t *t = c;
  return ri__cu_expdw(0, &t->fa, t->x, &t->fw, t->res, t->y2);
}

static int upload(void **d, const void *h, size_t n) {
  CKB(cudaMalloc(d, n));
  CKB(cudaMemcpy(*d, h, n, cudaMemcpyHostToDevice));
  return 0;
}

static int g_h2; /* --h2 */

/* The halves of a and b (n) that differ; *first: the first of them. */
static size_t diff_halves(const void *a, const void *b, size_t n, size_t *first) {
  size_t differ = 0;
  if (memcmp(a, b, n * 2) != 0)
    for (size_t i = 0; i < n; i++)
      if (((const uint16_t *)a)[i] != ((const uint16_t *)b)[i]) {
        if (!differ) *first = i;
        differ++;
      }
  return differ;
}

static int bench_shape(const shape *sh, int batch, int reps, int *fails) {
  ctx_t t;
  memset(&t, 0, sizeof t);
  const int hw = sh->hw, s = sh->stride, oh = (hw + s - 1) / s, cin = sh->cin, ce = sh->ce;
  const int k1p = (cin + 15) / 16 * 16;
  const size_t xn = (size_t)batch * hw * hw * cin, en = (size_t)batch * hw * hw * ce,
               yn = (size_t)batch * oh * oh * ce;
  t.ybytes = yn * 2;
  uint16_t *hx = malloc(xn * 2), *hw1 = malloc((size_t)ce * cin * 2), *hw1p = calloc((size_t)ce * k1p, 2),
           *hwd = malloc((size_t)9 * ce * 2);
  float *hb1 = malloc(ce * 4), *hbd = malloc(ce * 4), *hwdf = malloc((size_t)9 * ce * 4);
  unsigned char *h0 = malloc(t.ybytes), *h1 = malloc(t.ybytes);
  if (!hx || !hw1 || !hw1p || !hwd || !hb1 || !hbd || !hwdf || !h0 || !h1) {
    printf("FAIL %s: out of host memory\n", sh->name);
    return 1;
  }
  fill_half(hx, NULL, xn, 1.0);
  fill_half(hw1, NULL, (size_t)ce * cin, 0.3);
  fill_half(hwd, NULL, (size_t)9 * ce, 0.5);
  for (int e = 0; e < ce; e++) {
    hb1[e] = (float)(urand() - 0.5), hbd[e] = (float)(urand() - 0.5);
    for (int c = 0; c < cin; c++)
      hw1p[(size_t)e * k1p + c] = hw1[(size_t)e * cin + c];
    for (int k = 0; k < 9; k++) /* the depthwise NHWC weights are [3][3][C] */
      hwdf[(size_t)k * ce + e] = ri__half_to_float(hwd[(size_t)k * ce + e]);
  }
  if (upload(&t.x, hx, xn * 2) || upload(&t.w1, hw1, (size_t)ce * cin * 2) ||
      upload(&t.w1p, hw1p, (size_t)ce * k1p * 2) || upload(&t.wdh, hwd, (size_t)9 * ce * 2) ||
      upload((void **)&t.b1, hb1, ce * 4) || upload((void **)&t.bd, hbd, ce * 4) ||
      upload((void **)&t.wdf, hwdf, (size_t)9 * ce * 4))
    return 1;
  if (!sh->noexp) CKB(cudaMalloc(&t.e, en * 2));
  t.din = sh->noexp ? t.x : t.e;
  CKB(cudaMalloc(&t.y, t.ybytes));
  CKB(cudaMalloc(&t.y2, t.ybytes));
  const int cout = sh->cout;
  const size_t pn = (size_t)batch * oh * oh * cout;
  t.pbytes = pn * 2;
  if (cout) { /* the projection: weights [cout][ce], bias, the residual, its unfused output */
    uint16_t *hw2 = malloc((size_t)cout * ce * 2), *hres = malloc(t.pbytes);
    float *hb2 = malloc((size_t)cout * 4);
    if (!hw2 || !hres || !hb2) {
      printf("FAIL %s: out of host memory\n", sh->name);
      return 1;
    }
    fill_half(hw2, NULL, (size_t)cout * ce, 0.1);
    fill_half(hres, NULL, pn, 1.0);
    for (int j = 0; j < cout; j++)
      hb2[j] = (float)(urand() - 0.5);
    if (upload(&t.w2, hw2, (size_t)cout * ce * 2) || upload((void **)&t.b2, hb2, (size_t)cout * 4) ||
        (sh->res && upload(&t.res, hres, t.pbytes)))
      return 1;
    CKB(cudaMalloc(&t.p, t.pbytes));
    free(hw2), free(hres), free(hb2);
  }
  ri__cu_convgemm_args *a = &t.pa;
  a->n = batch, a->ih = a->iw = a->oh = a->ow = hw, a->c = a->k = a->ldw = cin, a->m_out = ce;
  a->kh = a->kw = a->sh = a->sw = a->dh = a->dw = 1;
  a->rows_per_img = (int64_t)hw * hw, a->ldy = ce, a->y_img_stride = a->rows_per_img * ce;
  a->ldr = ce, a->act = RI__ACT_CLIP, a->act_a = 0.f, a->act_b = 6.f;
  ri__cu_dwconv_args *d = &t.da;
  d->n = batch, d->c = ce, d->ih = d->iw = hw, d->oh = d->ow = oh, d->kh = d->kw = 3, d->sh = d->sw = s;
  d->dh = d->dw = 1, d->pad_t = d->pad_l = 1, d->nhwc = 1, d->act = RI__ACT_CLIP, d->act_a = 0.f,
  d->act_b = 6.f;
  ri__cu_expdw_args *f = &t.fa;
  f->n = batch, f->ih = f->iw = hw, f->oh = f->ow = oh, f->cin = cin, f->ce = ce, f->k1p = k1p, f->stride = s;
  f->pad_t = f->pad_l = 1, f->zstep = cin % 32 != 0 && cin % 32 <= 16;
  f->act[0] = f->act[1] = RI__ACT_CLIP, f->act_a[0] = f->act_a[1] = 0.f, f->act_b[0] = f->act_b[1] = 6.f;
  t.fw.w1 = t.w1p, t.fw.b1 = t.b1, t.fw.wd = t.wdf, t.fw.bd = t.bd;
  if (sh->noexp) { /* nothing of the expansion (expdw.h) */
    f->noexp = 1, f->k1p = 0, f->zstep = 0, f->act[0] = RI__ACT_NONE, f->act_b[0] = 0.f;
    t.fw.w1 = NULL, t.fw.b1 = NULL;
  }
  ri__cu_convgemm_args *q = &t.qa; /* the projection: linear, the residual in its epilogue */
  q->n = batch, q->ih = q->iw = q->oh = q->ow = oh, q->c = q->k = q->ldw = ce, q->m_out = cout;
  q->kh = q->kw = q->sh = q->sw = q->dh = q->dw = 1;
  q->rows_per_img = (int64_t)oh * oh, q->ldy = cout, q->y_img_stride = q->rows_per_img * cout;
  q->ldr = cout, q->act = RI__ACT_NONE;
  f->cout = cout, f->act[2] = RI__ACT_NONE;
  t.fw.w2 = t.w2, t.fw.b2 = t.b2;
  if (!ri__cu_expdw_supported(f)) {
    if (cout) { /* the kernel takes the projection in steps (expdw.h) */
      printf("SKIP %s: the fused kernel refuses the projection (cout %d)\n", sh->name, cout);
      return 0;
    }
    printf("FAIL %s: the fused kernel refuses the shape\n", sh->name);
    (*fails)++;
    return 0;
  }
  double ms, best_pw = 1e30, best_dw = 1e30, best_pj = 0.0, fused;
  int bpw = -1, bdw = 0, bpj = -1;
  if (gpu_time_it(run_copy, &t, reps, &ms)) return 1;
  const double copy_bps = 2.0 * t.ybytes / (ms * 1e-3);
  if (sh->noexp) best_pw = 0.0;
  for (int v = -1; v < RI__CU_PW_VARIANTS && !sh->noexp; v++) {
    t.variant = v;
    if (run_pw(&t) != cudaSuccess) { /* a form that does not take the shape (e.g. more than 160 channels) */
      (void)cudaGetLastError();
      continue;
    }
    if (gpu_time_it(run_pw, &t, reps, &ms)) return 1;
    if (ms < best_pw) best_pw = ms, bpw = v;
  }
  const int ndw = ri__cu_dwconv_variants(RI_DTYPE_FLOAT16, d);
  for (int v = 0; v < ndw; v++) {
    t.variant = v;
    if (gpu_time_it(run_dw, &t, reps, &ms)) return 1;
    if (ms < best_dw) best_dw = ms, bdw = v;
  }
  if (cout) { /* the projection's forms on D (the depthwise output of the last variant run) */
    best_pj = 1e30;
    for (int v = -1; v < RI__CU_PW_VARIANTS; v++) {
      t.variant = v;
      if (run_pj(&t) != cudaSuccess) {
        (void)cudaGetLastError();
        continue;
      }
      if (gpu_time_it(run_pj, &t, reps, &ms)) return 1;
      if (ms < best_pj) best_pj = ms, bpj = v;
    }
  }
  /* the reference: the fastest forms (all give the same bits) */
  t.variant = bpw;
  if (!sh->noexp) CKB(run_pw(&t));
  t.variant = bdw;
  CKB(run_dw(&t));
  if (cout) {
    t.variant = bpj;
    CKB(run_pj(&t));
  }
  CKB(cudaMemset(t.y2, 0xff, t.ybytes)); /* poison: a part left unwritten differs */
  if (gpu_time_it(run_fused, &t, reps, &fused)) return 1;
  CKB(cudaDeviceSynchronize());
  const size_t obytes = cout ? t.pbytes : t.ybytes, och = cout ? (size_t)cout : (size_t)ce;
  CKB(cudaMemcpy(h0, cout ? t.p : t.y, obytes, cudaMemcpyDeviceToHost));
  CKB(cudaMemcpy(h1, t.y2, obytes, cudaMemcpyDeviceToHost));
  size_t differ = 0, first = 0;
  if (memcmp(h0, h1, obytes) != 0)
    for (size_t i = 0; i < obytes / 2; i++)
      if (((uint16_t *)h0)[i] != ((uint16_t *)h1)[i]) {
        if (!differ) first = i;
        differ++;
      }
  const double floor_ms = (xn * 2.0 + obytes + (sh->res && cout ? t.pbytes : 0)) / copy_bps * 1e3;
  const double unfused = best_pw + best_dw + best_pj;
  if (sh->noexp)
    printf("%-16s b%d  no expansion      dw %7.1f us (variant %d)  proj %7.1f us (form %d%s)"
           "  unfused %7.1f us  fused+proj %7.1f us  x%.2f  floor %6.1f us\n",
           sh->name, batch, best_dw * 1e3, bdw, best_pj * 1e3, bpj, sh->res ? ", residual" : "",
           unfused * 1e3, fused * 1e3, unfused / fused, floor_ms * 1e3);
  else if (cout)
    printf("%-16s b%d  expand %7.1f us (form %d)  dw %7.1f us (variant %d)  proj %7.1f us (form %d%s)"
           "  unfused %7.1f us  fused+proj %7.1f us  x%.2f  floor %6.1f us\n",
           sh->name, batch, best_pw * 1e3, bpw, best_dw * 1e3, bdw, best_pj * 1e3, bpj,
           sh->res ? ", residual" : "", unfused * 1e3, fused * 1e3, unfused / fused, floor_ms * 1e3);
  else
    printf("%-16s b%d  expand %7.1f us (form %d)  dw %7.1f us (variant %d)  unfused %7.1f us  fused %7.1f us"
           "  x%.2f  floor %6.1f us\n",
           sh->name, batch, best_pw * 1e3, bpw, best_dw * 1e3, bdw, unfused * 1e3, fused * 1e3,
           unfused / fused, floor_ms * 1e3);
  if (differ) {
    const size_t px = first / och;
    printf("FAIL %s: %zu halves differ from the unfused path; first at image %zu pixel %zu channel %zu: "
           "0x%04x vs 0x%04x\n",
           sh->name, differ, px / ((size_t)oh * oh), px % ((size_t)oh * oh), first % och,
           ((uint16_t *)h0)[first], ((uint16_t *)h1)[first]);
    (*fails)++;
  }
  if (g_h2) { /* the half2 depthwise: the unfused kernel, then the fused instance (dwh) on its chain */
    double dwh_ms, fused_h2;
    if (gpu_time_it(run_dwh, &t, reps, &dwh_ms)) return 1; /* D (t.y): the reference's depthwise */
    if (cout) {
      t.variant = bpj;
      CKB(run_pj(&t));
    }
    t.fa.dwh = 1;
    CKB(cudaMemset(t.y2, 0xff, t.ybytes));
    if (gpu_time_it(run_fused, &t, reps, &fused_h2)) return 1;
    t.fa.dwh = 0;
    CKB(cudaDeviceSynchronize());
    CKB(cudaMemcpy(h0, cout ? t.p : t.y, obytes, cudaMemcpyDeviceToHost));
    CKB(cudaMemcpy(h1, t.y2, obytes, cudaMemcpyDeviceToHost));
    size_t hfirst = 0;
    const size_t hdiff = diff_halves(h0, h1, obytes / 2, &hfirst);
    const double unfused_h2 = best_pw + dwh_ms + best_pj;
    printf("%-16s b%d  h2: dw_h2 %7.1f us (float dw %7.1f)  unfused_h2 %7.1f us  fused_h2 %7.1f us"
           "  (float fused %7.1f us: x%.2f)  x%.2f vs unfused_h2\n",
           sh->name, batch, dwh_ms * 1e3, best_dw * 1e3, unfused_h2 * 1e3, fused_h2 * 1e3, fused * 1e3,
           fused / fused_h2, unfused_h2 / fused_h2);
    if (hdiff) {
      const size_t px = hfirst / och;
      printf("FAIL %s h2: %zu halves differ from the unfused chain with ri__cu_dwconv_h2; first at image %zu "
             "pixel %zu channel %zu: 0x%04x vs 0x%04x\n",
             sh->name, hdiff, px / ((size_t)oh * oh), px % ((size_t)oh * oh), hfirst % och,
             ((uint16_t *)h0)[hfirst], ((uint16_t *)h1)[hfirst]);
      (*fails)++;
    }
  }
  cudaFree(t.x), cudaFree(t.w1), cudaFree(t.w1p), cudaFree(t.wdh), cudaFree(t.b1), cudaFree(t.bd);
  cudaFree(t.wdf), cudaFree(t.e), cudaFree(t.y), cudaFree(t.y2);
  cudaFree(t.w2), cudaFree(t.b2), cudaFree(t.res), cudaFree(t.p);
  free(hx), free(hw1), free(hw1p), free(hwd), free(hb1), free(hbd), free(hwdf), free(h0), free(h1);
  return 0;
}

int main(int argc, char **argv) {
  int batch = 256, reps = 20, proj = 0, dwp = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
      batch = atoi(argv[++i]);
    else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
      reps = atoi(argv[++i]);
    else if (strcmp(argv[i], "--proj") == 0)
      proj = 1;
    else if (strcmp(argv[i], "--dwp") == 0)
      proj = dwp = 1;
    else if (strcmp(argv[i], "--h2") == 0)
      g_h2 = 1;
    else {
      fprintf(stderr, "usage: %s [--batch N] [--reps N] [--proj | --dwp] [--h2]\n", argv[0]);
      return 2;
    }
  }
  if (batch < 1 || reps < 1) {
    fprintf(stderr, "bench_expdw: batch and reps must be positive\n");
    return 2;
  }
  struct cudaDeviceProp prop;
  CKB(cudaGetDeviceProperties(&prop, 0));
  printf("# bench_expdw: %s, %d SMs, batch %d, median of %d runs%s%s\n", prop.name, prop.multiProcessorCount,
         batch, reps, proj ? ", with the projections" : "", g_h2 ? ", and the half2 depthwise (--h2)" : "");
  int fails = 0;
  const shape *shapes = proj ? g_proj_shapes : g_shapes;
  const size_t nsh = dwp    ? 1 /* g_proj_shapes[0]: expanded_conv */
                     : proj ? sizeof g_proj_shapes / sizeof g_proj_shapes[0]
                            : sizeof g_shapes / sizeof g_shapes[0];
  for (size_t si = 0; si < nsh; si++)
    if (bench_shape(&shapes[si], batch, reps, &fails)) return 1;
  printf("bench_expdw: %s\n", fails ? "FAILED" : "fused output bit-identical to the unfused kernels'");
  return fails ? 1 : 0;
}
