/* GPU test of the fused expansion 1x1 -> depthwise 3x3 kernel (ri__cu_expdw, k_expdw.cu), whose contract
 * (expdw.h) is the unfused path's result bit for bit: every case runs the unfused kernels as an fp16 engine
 * would (the expansion by ri__cu_convgemm with one K segment, and by the pointwise kernel ri__cu_pwconv_v in
 * its first form and in its default form where it applies, which must give the same bits; then the
 * depthwise kernel ri__cu_dwconv on that half tensor, weights half [3][3][C], bias float) and the fused
 * kernel on the same data, and compares the output halves exactly, reporting the first mismatch (image,
 * pixel, channel, both values).
 *
 * Cases: every input channel count 8, 16, 24, 32, 48, 64 with every expanded count 16, 96, 144, 192 and
 * strides 1 and 2, twice each, rotating over pads (top/left, bottom/right) 1/1, 0/0, 1/0, 2/2, 0/1 and
 * mixed axes, sizes below a tile (3x5), odd (7x7, 37x19, 75x75) and others, batches of 1 to 3, activations
 * none / ReLU / clip(0, 6) on each convolution; then the SSD MobileNet v2 blocks the fusion takes (150 .. 19
 * pixels, TF "SAME" pads). Half of the cases get signed-zero data: inputs and weights with +0 and -0 entries
 * and zero rows of pixels, expansion and depthwise biases of -0 and depthwise channels whose taps are all
 * negative, so that the reference output holds -0 values (checked over the cases), and channels whose
 * taps are negative but for the top row or the left column, whose outputs over zero windows at a top or
 * left pad are +0 when the taps in the padding are added as +0 products and -0 when they are skipped: the
 * fused kernel must do as the unfused one. Outputs are poisoned
 * (NaN) before each launch; a guard after the output must stay poison. Each case with more than one image
 * also runs every image alone and compares it with its slice of the batch, bit for bit. Then refused
 * arguments (cin not a multiple of 8 or above 64, ce not a multiple of 16, stride 3, a pad of 3, cout 12 and
 * 72, misaligned pointers) must give cudaErrorInvalidValue.
 *
 * The projection (cout > 0): cases over cout 8, 16, 24, 32, 64 with no residual, a residual of its own and
 * one in place (res == y), activation none and clip, signed-zero data, and the SSD blocks' projections (cout
 * 24, 24, 32, 32, 32, 64; blocks 2, 4, 5 with the residual); the reference is the unfused path above followed
 * by the projection on the tiled kernel (ri__cu_convgemm, one K segment, with the residual), and the
 * pointwise kernel's form 0 where it applies, which must agree. A case the kernel refuses
 * (ri__cu_expdw_supported) is skipped (SKIP line), not failed: the kernel takes the projection in steps.
 *
 * Without the expansion (noexp: the depthwise convolution reads x; w1, b1 NULL): 40 cases over ce 16, 32,
 * 48, 64, strides 1 and 2, the pads, sizes and batches above, the depthwise activations, signed zeros, no
 * projection and cout 8 .. 32 with no residual, one of its own and one in place, activation none and clip;
 * then SSD MobileNet v2's first block (150x150x32, stride 1, projection to 16) and MobileNet v2's (112x112),
 * and two 38x38 ones (a residual; stride 2). The reference is the unfused depthwise kernel on x, then the
 * projection as above. Refusals: cin != ce, k1p or zstep set, an expansion activation, ce 80 and 24, noexp
 * 2, cout 40, wd or w2 NULL; valid arguments with w1 and b1 NULL must run.
 *
 * With a models directory, engines too: SSD MobileNet v2 and MobileNet v2 (make_models.py) in fp16 at
 * builder level 0 (untuned: the unfused convolutions on the kernels above, not on cuBLASLt or wgmma, whose
 * sums differ), maximum batch 4, built with RI_CUDA_EXPDW=0, unset, all, unset with RI_CUDA_EXPDW_PROJ=0 and
 * unset with RI_CUDA_EXPDW_DWP=0: the fused engines must hold fused nodes (expdw_f16; fused_into_expdw: as
 * many depthwise nodes plus the projections fused, some when the kernel takes SSD block 1's, none with
 * RI_CUDA_EXPDW_PROJ=0; dwproj_f16 and fused_into_dwproj: exactly one each, the first block, when unset,
 * none with RI_CUDA_EXPDW_DWP=0 or RI_CUDA_EXPDW_PROJ=0; nothing with RI_CUDA_EXPDW=0) and give the unfused
 * engine's outputs bit for bit at batches 1 and 3, eagerly, captured into a CUDA graph and replayed.
 *
 * The half2 depthwise stage (args dwh, RI_CUDA_DW_HALF=1; prototype): every kernel case above runs again
 * ("expdw h2" lines) with dwh 1 against the same unfused chain with the half-arithmetic depthwise kernel
 * (ri__cu_dwconv_h2, its default strip) in place of ri__cu_dwconv, bit for bit; refusals: dwh 2; and the
 * engines above again with RI_CUDA_DW_HALF=1 (the unfused engine's depthwise nodes dwconv_h2_f16, none
 * dwconv_nhwc_f16 anywhere; the same fused nodes and the unfused engine's bits).
 *
 *   test_cuda_expdw [MODELS_DIR]   one PASS/FAIL line per check, then "N passed, M failed"; exit 1 on failure
 *   RI_TEST_EXPDW=quick            the kernel cases below 40x40 pixels only (for compute-sanitizer)
 *   RI_TEST_EXPDW_H2=0 / only      the float depthwise cases (and engines) only / the half2 ones only */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "backend/cuda/expdw.h"
#include "backend/cuda/kernels.h"
#include "core/half.h"
#include "gpu_build.h"
#include "gpu_rand.h"
#include "gpu_result.h"
#include "gpu_tensor.h"
#include "runinfer/engine.h"

#define GUARD 64 /* halves after an output that must stay poison */

/* cout > 0: with the projection (activation act2); res: 0 no residual, 1 a residual of its own, 2 the
 * residual in place (res == y, element for element). noexp: no expansion (cin == ce, act0 unused): the
 * depthwise convolution reads x. */
typedef struct {
  int n, ih, iw, cin, ce, s, pt, pl, pb, pr, act0, act1, zeros;
  int cout, res, act2;
  int noexp;
} xcase;

/* Host and device data of one case. Logical weights: w1 [ce][cin], wd [9][ce] (tap-major, half values),
 * w2 [cout][ce]. */
typedef struct {
  int oh, ow, k1p, co;   /* co: channels of y (cout, or ce without a projection) */
  size_t nx, ne, nd, ny; /* elements of x, of the expanded tensor, of D, of y (whole batch) */
  uint16_t *x, *w1, *wdh, *w2, *res;
  float *b1, *wdf, *bd, *b2;
  void *dx, *dw1g, *dw1f, *db1, *dwdh, *dwdf, *dbd, *de, *dy, *dyf, *dw2, *db2, *dres, *dp;
} xdata;

static int g_quick;        /* RI_TEST_EXPDW=quick */
static int g_h2;           /* the cases with the half2 depthwise stage (args dwh; unfused: dwconv_h2) */
static int g_proj_skipped; /* projection cases the kernel refuses (skipped) */
static int g_zero_cases, g_nz_cases; /* signed-zero cases whose reference should hold -0; those that do */

/* A random half in [-scale, scale); with zeros, one in eight is +0 and one in eight -0. */
static uint16_t rand_half(double scale, int zeros) {
  if (zeros) {
    double u = urand();
    if (u < 0.125) return 0x0000;
    if (u < 0.25) return 0x8000;
  }
  return ri__float_to_half((float)((urand() * 2.0 - 1.0) * scale));
}

static void make_data(const xcase *t, xdata *b) {
  int cin = t->cin, ce = t->ce;
  for (size_t i = 0; i < b->nx; i++) {
    size_t pix = i / (size_t)cin;
    int iy = (int)(pix / (size_t)t->iw % (size_t)t->ih);
    b->x[i] = t->zeros && iy < 4 ? (i % 3 ? 0x0000 : 0x8000) : rand_half(1.0, t->zeros);
  }
  for (int e = 0; e < ce; e++) {
    for (int c = 0; c < cin; c++)
      b->w1[(size_t)e * cin + c] = rand_half(1.0 / sqrt((double)cin), t->zeros);
    b->b1[e] = (float)(urand() - 0.5);
    b->bd[e] = (float)(urand() - 0.5);
    /* Signed zeros. Channels e % 8 == 0, 2 and 6 get -0 biases, so that over a window of zero pixels (E =
     * +0) the depthwise sum starts at -0 and stays there while every product is -0: with all taps negative
     * (e % 8 == 0) the output is -0; with the top row's taps (e % 8 == 2) or the left column's (e % 8 == 6)
     * positive and the others negative, a tap in the padding turns it into +0 when it is added as a +0
     * product, and leaves -0 when it is skipped (output row / column 0 with a top / left pad): the fused
     * kernel must do what the unfused one does. Channels e % 8 == 4 get a +0 expansion bias. */
    int zc = t->zeros && (e % 8 == 0 || e % 8 == 2 || e % 8 == 6);
    if (zc) b->b1[e] = -0.f, b->bd[e] = -0.f;
    if (t->zeros && e % 8 == 4) b->b1[e] = 0.f;
    for (int k = 0; k < 9; k++) {
      uint16_t h = rand_half(0.5, t->zeros && !zc);
      if (zc) {
        int pos = (e % 8 == 2 && k / 3 == 0) || (e % 8 == 6 && k % 3 == 0);
        if (h == 0 || h == 0x8000) h = ri__float_to_half(0.25f); /* no zero taps here */
        h = (uint16_t)(pos ? h & 0x7fff : h | 0x8000);
      }
      b->wdh[(size_t)k * ce + e] = h;
      b->wdf[(size_t)k * ce + e] = ri__half_to_float(h);
    }
  }
  /* The projection: weights and residual with signed zeros too, biases of -0 on every fourth channel. */
  for (int j = 0; j < t->cout; j++) {
    for (int e = 0; e < ce; e++)
      b->w2[(size_t)j * ce + e] = rand_half(1.0 / sqrt((double)ce), t->zeros);
    b->b2[j] = t->zeros && j % 4 == 0 ? -0.f : (float)(urand() - 0.5);
  }
  if (t->cout && t->res)
    for (size_t i = 0; i < b->ny; i++)
      b->res[i] = rand_half(1.0, t->zeros);
}

static cudaError_t upload(void **d, const void *src, size_t bytes) {
  cudaError_t e = cudaMalloc(d, bytes ? bytes : 16);
  if (e == cudaSuccess && bytes) e = cudaMemcpy(*d, src, bytes, cudaMemcpyHostToDevice);
  return e;
}

static void expdw_args(const xcase *t, const xdata *b, int n, ri__cu_expdw_args *a) {
  memset(a, 0, sizeof *a);
  a->n = n, a->ih = t->ih, a->iw = t->iw, a->oh = b->oh, a->ow = b->ow;
  a->cin = t->cin, a->ce = t->ce, a->k1p = t->noexp ? 0 : b->k1p;
  a->stride = t->s, a->pad_t = t->pt, a->pad_l = t->pl;
  a->zstep = !t->noexp && t->cin % 32 != 0 && t->cin % 32 <= 16;
  a->act[0] = t->noexp ? 0 : t->act0, a->act[1] = t->act1, a->act[2] = t->cout ? t->act2 : 0;
  a->act_a[0] = a->act_a[1] = 0.f, a->act_b[0] = t->noexp ? 0.f : 6.f, a->act_b[1] = 6.f;
  a->noexp = t->noexp;
  a->dwh = g_h2;
  if (t->cout) a->act_a[2] = 0.f, a->act_b[2] = 6.f;
  a->cout = t->cout;
}

/* The projection as the engine's tensor-core convolution sees it (1x1 over D, dense output, the residual
 * and the activation in its epilogue). */
static void proj_args(const xcase *t, const xdata *b, ri__cu_convgemm_args *a) {
  memset(a, 0, sizeof *a);
  a->n = t->n, a->ih = b->oh, a->iw = b->ow, a->c = t->ce, a->oh = b->oh, a->ow = b->ow;
  a->m_out = t->cout, a->k = t->ce, a->ldw = t->ce;
  a->kh = a->kw = a->sh = a->sw = a->dh = a->dw = 1;
  a->rows_per_img = (int64_t)b->oh * b->ow, a->y_img_stride = a->rows_per_img * t->cout;
  a->ldy = t->cout, a->ldr = t->cout;
  a->act = t->act2, a->act_a = 0.f, a->act_b = 6.f;
}

/* The expansion as the engine's tensor-core convolution sees it (1x1, dense output, its activation). */
static void pw_args(const xcase *t, ri__cu_convgemm_args *a) {
  memset(a, 0, sizeof *a);
  a->n = t->n, a->ih = t->ih, a->iw = t->iw, a->c = t->cin, a->oh = t->ih, a->ow = t->iw;
  a->m_out = t->ce, a->k = t->cin, a->ldw = t->cin;
  a->kh = a->kw = a->sh = a->sw = a->dh = a->dw = 1;
  a->rows_per_img = (int64_t)t->ih * t->iw, a->y_img_stride = a->rows_per_img * t->ce;
  a->ldy = t->ce, a->ldr = t->ce;
  a->act = t->act0, a->act_a = 0.f, a->act_b = 6.f;
}

static void dw_args(const xcase *t, const xdata *b, ri__cu_dwconv_args *a) {
  memset(a, 0, sizeof *a);
  a->n = t->n, a->c = t->ce, a->ih = t->ih, a->iw = t->iw, a->oh = b->oh, a->ow = b->ow;
  a->kh = a->kw = 3, a->sh = a->sw = t->s, a->dh = a->dw = 1, a->pad_t = t->pt, a->pad_l = t->pl;
  a->nhwc = 1, a->act = t->act1, a->act_a = 0.f, a->act_b = 6.f;
}

/* Runs the fused kernel on images [first, first + n) into b->dyf (poisoned first) and copies the output and
 * its guard to out. */
static cudaError_t run_fused(const xcase *t, xdata *b, int first, int n, uint16_t *out) {
  size_t per_x = (size_t)t->ih * t->iw * t->cin, per_y = (size_t)b->oh * b->ow * b->co;
  size_t ny = per_y * (size_t)n + GUARD;
  cudaError_t e = cudaMemset(b->dyf, 0xff, ny * 2);
  if (e != cudaSuccess) return e;
  ri__cu_expdw_args a;
  expdw_args(t, b, n, &a);
  ri__cu_expdw_weights w = {b->dw1f, b->db1, b->dwdf, b->dbd, b->dw2, b->db2};
  if (t->noexp) w.w1 = NULL, w.b1 = NULL; /* unused (expdw.h) */
  const void *res = NULL;
  if (t->cout && t->res == 1) res = (const char *)b->dres + per_y * (size_t)first * 2;
  if (t->cout && t->res == 2) { /* in place: the residual is y's own contents */
    e = cudaMemcpy(b->dyf, b->res + per_y * (size_t)first, per_y * (size_t)n * 2, cudaMemcpyHostToDevice);
    if (e != cudaSuccess) return e;
    res = b->dyf;
  }
  e = ri__cu_expdw(0, &a, (const char *)b->dx + per_x * (size_t)first * 2, &w, res, b->dyf);
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  if (e == cudaSuccess) e = cudaMemcpy(out, b->dyf, ny * 2, cudaMemcpyDeviceToHost);
  return e;
}

/* Index of the first differing half of a and b (n halves), or -1; *count gets how many differ. */
static long first_diff(const uint16_t *a, const uint16_t *b, size_t n, size_t *count) {
  long first = -1;
  *count = 0;
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) {
      if (first < 0) first = (long)i;
      (*count)++;
    }
  return first;
}

#define CK(call)                                                                                             \
  do {                                                                                                       \
    cudaError_t e_ = (call);                                                                                 \
    if (e_ != cudaSuccess) {                                                                                 \
      result(0, "%s: %s (%s)", name, #call, cudaGetErrorString(e_));                                         \
      goto done;                                                                                             \
    }                                                                                                        \
  } while (0)

static void test_case(const xcase *t) {
  char name[320];
  int np = t->noexp ? snprintf(name, sizeof name,
                               "expdw%s noexp n=%d %dx%d ce=%d s=%d pads=%d,%d,%d,%d act=%d zeros=%d",
                               g_h2 ? " h2" : "", t->n, t->ih, t->iw, t->ce, t->s, t->pt, t->pl, t->pb, t->pr,
                               t->act1, t->zeros)
                    : snprintf(name, sizeof name,
                               "expdw%s n=%d %dx%d cin=%d ce=%d s=%d pads=%d,%d,%d,%d act=%d,%d zeros=%d",
                               g_h2 ? " h2" : "", t->n, t->ih, t->iw, t->cin, t->ce, t->s, t->pt, t->pl,
                               t->pb, t->pr, t->act0, t->act1, t->zeros);
  if (t->cout && np > 0 && (size_t)np < sizeof name)
    snprintf(name + np, sizeof name - (size_t)np, " proj cout=%d res=%s act=%d", t->cout,
             t->res == 2 ? "in-place"
             : t->res    ? "yes"
                         : "no",
             t->act2);
  xdata b;
  memset(&b, 0, sizeof b);
  uint16_t *e1 = NULL, *e2 = NULL, *yu = NULL, *yf = NULL, *y1 = NULL, *pv = NULL;
  b.oh = (t->ih + t->pt + t->pb - 3) / t->s + 1;
  b.ow = (t->iw + t->pl + t->pr - 3) / t->s + 1;
  b.k1p = (t->cin + 15) / 16 * 16;
  b.co = t->cout ? t->cout : t->ce;
  b.nx = (size_t)t->n * t->ih * t->iw * t->cin;
  b.ne = (size_t)t->n * t->ih * t->iw * t->ce;
  b.nd = (size_t)t->n * b.oh * b.ow * t->ce;
  b.ny = (size_t)t->n * b.oh * b.ow * b.co;
  size_t per_y = (size_t)b.oh * b.ow * b.co, nw1 = (size_t)t->ce * t->cin, nwd = (size_t)9 * t->ce;
  size_t nw2 = (size_t)t->cout * t->ce, nmax = b.nd > b.ny ? b.nd : b.ny;
  b.x = malloc(b.nx * 2), b.w1 = malloc(nw1 * 2), b.wdh = malloc(nwd * 2);
  b.b1 = malloc((size_t)t->ce * 4), b.wdf = malloc(nwd * 4), b.bd = malloc((size_t)t->ce * 4);
  b.w2 = malloc(nw2 * 2 + 2), b.b2 = malloc((size_t)t->cout * 4 + 4), b.res = malloc(b.ny * 2);
  uint16_t *w1p = calloc((size_t)t->ce * b.k1p, 2);
  e1 = malloc(b.ne * 2), e2 = malloc(b.ne * 2), yu = malloc((nmax + GUARD) * 2),
  yf = malloc((b.ny + GUARD) * 2), pv = malloc(b.ny * 2);
  y1 = malloc((per_y + GUARD) * 2);
  if (!b.x || !b.w1 || !b.wdh || !b.b1 || !b.wdf || !b.bd || !w1p || !e1 || !e2 || !yu || !yf || !y1 ||
      !b.w2 || !b.b2 || !b.res || !pv) {
    result(0, "%s: out of host memory", name);
    goto done;
  }
  make_data(t, &b);
  for (int e = 0; e < t->ce; e++) /* the fused kernel's rows of k1p halves, zero from cin on */
    memcpy(w1p + (size_t)e * b.k1p, b.w1 + (size_t)e * t->cin, (size_t)t->cin * 2);
  CK(upload(&b.dx, b.x, b.nx * 2));
  CK(upload(&b.dw1g, b.w1, nw1 * 2)); /* the convolution's rows: ldw = cin (a multiple of 8) */
  CK(upload(&b.dw1f, w1p, (size_t)t->ce * b.k1p * 2));
  CK(upload(&b.db1, b.b1, (size_t)t->ce * 4));
  CK(upload(&b.dwdh, b.wdh, nwd * 2));
  CK(upload(&b.dwdf, b.wdf, nwd * 4));
  CK(upload(&b.dbd, b.bd, (size_t)t->ce * 4));
  CK(cudaMalloc(&b.de, b.ne * 2));
  CK(cudaMalloc(&b.dy, (b.nd + GUARD) * 2));
  CK(cudaMalloc(&b.dyf, (b.ny + GUARD) * 2));
  if (t->cout) {
    CK(upload(&b.dw2, b.w2, nw2 * 2));
    CK(upload(&b.db2, b.b2, (size_t)t->cout * 4));
    CK(upload(&b.dres, b.res, t->res ? b.ny * 2 : 0));
    CK(cudaMalloc(&b.dp, (b.ny + GUARD) * 2));
  }
  ri__cu_expdw_args xa;
  expdw_args(t, &b, t->n, &xa);
  if (!ri__cu_expdw_supported(&xa)) {
    if (t->cout && !t->noexp) { /* the projection is not the kernel's yet (expdw.h: cout up to 32) */
      printf("SKIP %s: ri__cu_expdw_supported refuses this projection\n", name);
      g_proj_skipped++;
    } else {
      result(0, "%s: arguments refused by ri__cu_expdw_supported", name);
    }
    goto done;
  }
  /* The unfused expansion: the tiled kernel with one K segment, then the pointwise kernel's forms (none
   * with noexp: the depthwise convolution reads x). */
  char pw_note[160] = "pointwise kernel n/a";
  if (t->noexp) {
    snprintf(pw_note, sizeof pw_note, "no expansion");
  } else {
    ri__cu_convgemm_args pa;
    pw_args(t, &pa);
    CK(cudaMemset(b.de, 0xff, b.ne * 2));
    CK(ri__cu_convgemm(0, &pa, b.dx, b.dw1g, b.db1, NULL, b.de, NULL));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(e1, b.de, b.ne * 2, cudaMemcpyDeviceToHost));
    if (ri__cu_pwconv_supported(&pa)) {
      int forms[2] = {0, ri__cu_pwconv_default_variant()};
      for (int f = 0; f < (forms[1] != 0 ? 2 : 1); f++) {
        size_t cnt;
        CK(cudaMemset(b.de, 0xff, b.ne * 2));
        CK(ri__cu_pwconv_v(0, &pa, forms[f], b.dx, b.dw1g, b.db1, NULL, b.de));
        CK(cudaDeviceSynchronize());
        CK(cudaMemcpy(e2, b.de, b.ne * 2, cudaMemcpyDeviceToHost));
        long fd = first_diff(e1, e2, b.ne, &cnt);
        if (fd >= 0) {
          result(0,
                 "%s: the pointwise kernel's form %d differs from the tiled kernel in %zu expanded halves "
                 "(first: "
                 "pixel %ld channel %ld, 0x%04x vs 0x%04x)",
                 name, forms[f], cnt, fd / t->ce, fd % t->ce, e2[fd], e1[fd]);
          goto done;
        }
      }
      snprintf(pw_note, sizeof pw_note, "pointwise forms 0 and %d agree with the tiled kernel", forms[1]);
      CK(cudaMemcpy(b.de, e1, b.ne * 2, cudaMemcpyHostToDevice));
    }
  }
  /* The unfused depthwise convolution on the tiled kernel's expansion (on x with noexp): the float kernel,
   * or with g_h2 the half-arithmetic one (k_dwconv_h2.cu, its default strip), as the engine runs them. */
  ri__cu_dwconv_args da;
  dw_args(t, &b, &da);
  CK(cudaMemset(b.dy, 0xff, (b.nd + GUARD) * 2));
  if (g_h2)
    CK(ri__cu_dwconv_h2(0, &da, 0, t->noexp ? b.dx : b.de, b.dwdh, b.dbd, b.dy));
  else
    CK(ri__cu_dwconv(0, RI_DTYPE_FLOAT16, &da, t->noexp ? b.dx : b.de, b.dwdh, b.dbd, b.dy));
  CK(cudaDeviceSynchronize());
  CK(cudaMemcpy(yu, b.dy, b.nd * 2, cudaMemcpyDeviceToHost));
  if (t->cout) {
    /* The unfused projection on D: the tiled kernel (one K segment), then the pointwise kernel's first form
     * where it applies, which must agree; with the residual of its own or in place (res == y). */
    ri__cu_convgemm_args qa;
    proj_args(t, &b, &qa);
    const void *res = t->res == 1 ? b.dres : t->res == 2 ? b.dp : NULL;
    for (int f = 0; f < 2; f++) {
      if (f == 1 && !ri__cu_pwconv_supported(&qa)) break;
      CK(cudaMemset(b.dp, 0xff, (b.ny + GUARD) * 2));
      if (t->res == 2) CK(cudaMemcpy(b.dp, b.res, b.ny * 2, cudaMemcpyHostToDevice));
      if (f == 0)
        CK(ri__cu_convgemm(0, &qa, b.dy, b.dw2, b.db2, res, b.dp, NULL));
      else
        CK(ri__cu_pwconv_v(0, &qa, 0, b.dy, b.dw2, b.db2, res, b.dp));
      CK(cudaDeviceSynchronize());
      CK(cudaMemcpy(f == 0 ? yu : pv, b.dp, b.ny * 2, cudaMemcpyDeviceToHost));
      size_t cnt;
      long pd = f == 1 ? first_diff(yu, pv, b.ny, &cnt) : -1;
      if (pd >= 0) {
        result(0,
               "%s: the pointwise kernel's form 0 differs from the tiled kernel in %zu projection halves "
               "(first: pixel %ld channel %ld, 0x%04x vs 0x%04x)",
               name, cnt, pd / t->cout, pd % t->cout, pv[pd], yu[pd]);
        goto done;
      }
      if (f == 1) {
        size_t len = strlen(pw_note);
        snprintf(pw_note + len, sizeof pw_note - len, "; projection: pointwise form 0 = tiled");
      }
    }
  }
  /* The fused kernel, whole batch. */
  CK(run_fused(t, &b, 0, t->n, yf));
  size_t guard_bad = 0, nbad = 0, variant = 0, pz = 0, nz = 0, nan_ref = 0;
  for (int i = 0; i < GUARD; i++)
    guard_bad += yf[b.ny + i] != 0xffff;
  for (size_t i = 0; i < b.ny; i++) {
    pz += yu[i] == 0x0000, nz += yu[i] == 0x8000;
    nan_ref += (yu[i] & 0x7c00) == 0x7c00 && (yu[i] & 0x3ff);
  }
  long fd = first_diff(yu, yf, b.ny, &nbad);
  /* Every image alone, against its slice of the batch. */
  if (t->n > 1)
    for (int img = 0; img < t->n; img++) {
      CK(run_fused(t, &b, img, 1, y1));
      if (memcmp(y1, yf + (size_t)img * per_y, per_y * 2) != 0) variant++;
      for (int i = 0; i < GUARD; i++)
        guard_bad += y1[per_y + i] != 0xffff;
    }
  /* -0 survives no activation and clip (v < 0 ? 0 : ...), not ReLU (v > 0 ? v : +0); counted over the cases
   * (main checks that they gave -0: whether a sum of signed zeros is +0 is the MMA unit's, not ours) */
  int want_nz = t->zeros && t->act1 != 1 && !t->cout; /* the projection's sums start at +0: no -0 */
  g_zero_cases += want_nz, g_nz_cases += want_nz && nz > 0;
  int ok = nbad == 0 && guard_bad == 0 && variant == 0 && nan_ref == 0;
  if (fd >= 0) {
    size_t pix = (size_t)fd / (size_t)b.co;
    int ch = (int)((size_t)fd % (size_t)b.co), ox = (int)(pix % (size_t)b.ow),
        oy = (int)(pix / (size_t)b.ow % (size_t)b.oh), img = (int)(pix / ((size_t)b.ow * b.oh));
    result(
        0,
        "%s: %zu of %zu outputs differ from the unfused kernels; first: image %d pixel (%d, %d) channel %d: "
        "fused 0x%04x (%g), unfused 0x%04x (%g)",
        name, nbad, b.ny, img, oy, ox, ch, yf[fd], (double)ri__half_to_float(yf[fd]), yu[fd],
        (double)ri__half_to_float(yu[fd]));
    if (guard_bad || variant)
      result(0, "%s: guard halves written %zu, images alone differing %zu", name, guard_bad, variant);
  } else {
    result(
        ok,
        "%s: %zu outputs bit-identical to the unfused kernels (%zu +0, %zu -0, %zu NaN in the reference%s), "
        "%s, guard halves written %zu, images alone differing from the batch %zu",
        name, b.ny, pz, nz, nan_ref, want_nz && !nz ? ", none although meant to" : "", pw_note, guard_bad,
        variant);
  }
done:
  cudaFree(b.dx), cudaFree(b.dw1g), cudaFree(b.dw1f), cudaFree(b.db1), cudaFree(b.dwdh), cudaFree(b.dwdf);
  cudaFree(b.dbd), cudaFree(b.de), cudaFree(b.dy), cudaFree(b.dyf);
  cudaFree(b.dw2), cudaFree(b.db2), cudaFree(b.dres), cudaFree(b.dp);
  free(b.x), free(b.w1), free(b.wdh), free(b.b1), free(b.wdf), free(b.bd), free(w1p);
  free(b.w2), free(b.b2), free(b.res);
  free(e1), free(e2), free(yu), free(yf), free(y1), free(pv);
}

/* Refused arguments give cudaErrorInvalidValue (and ri__cu_expdw_supported 0) and launch nothing. */
static void test_refusals(void) {
  const char *name = "expdw refusals";
  void *x = NULL, *y = NULL, *w1 = NULL, *fl = NULL;
  int bad = 0;
  if (cudaMalloc(&x, 1 << 16) != cudaSuccess || cudaMalloc(&y, 1 << 20) != cudaSuccess ||
      cudaMalloc(&w1, 1 << 16) != cudaSuccess || cudaMalloc(&fl, 1 << 16) != cudaSuccess) {
    result(0, "%s: cudaMalloc", name);
    goto done;
  }
  xcase t = {1, 9, 9, 24, 96, 1, 1, 1, 1, 1, 2, 2, 0, 0, 0, 0, 0};
  xdata b;
  memset(&b, 0, sizeof b);
  b.oh = b.ow = 9, b.k1p = 32;
  ri__cu_expdw_args a, c;
  expdw_args(&t, &b, 1, &a);
  ri__cu_expdw_weights w = {w1, fl, fl, fl, w1, fl};
  const char *what[24];
  int nw = 0;
  if (!ri__cu_expdw_supported(&a)) what[nw++] = "valid arguments refused";
  c = a, c.cin = 12, c.k1p = 16; /* not a multiple of 8 */
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &w, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "cin 12 taken";
  c = a, c.cin = 72, c.k1p = 80; /* above RI__CU_EXPDW_MAX_CIN */
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &w, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "cin 72 taken";
  c = a, c.ce = 40; /* not a multiple of 16 */
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &w, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "ce 40 taken";
  c = a, c.stride = 3, c.oh = c.ow = 3;
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &w, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "stride 3 taken";
  c = a, c.pad_t = 3;
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &w, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "pad_t 3 taken";
  c = a, c.cout = 12; /* a projection of cout not a multiple of 8 */
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &w, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "cout 12 taken";
  c = a, c.cout = 72; /* above RI__CU_EXPDW_MAX_COUT */
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &w, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "cout 72 taken";
  if (ri__cu_expdw(0, &a, (char *)x + 8, &w, NULL, y) != cudaErrorInvalidValue ||
      ri__cu_expdw(0, &a, x, &w, NULL, (char *)y + 8) != cudaErrorInvalidValue)
    what[nw++] = "misaligned x or y taken";
  /* Without the expansion: valid arguments (w1 and b1 NULL) run; ill-formed ones are refused. */
  ri__cu_expdw_args na = a;
  na.cin = na.ce = 32, na.k1p = 0, na.zstep = 0, na.act[0] = 0, na.act_a[0] = na.act_b[0] = 0.f;
  na.noexp = 1, na.cout = 16, na.act[2] = 0;
  ri__cu_expdw_weights nw0 = {NULL, NULL, fl, fl, w1, fl};
  if (!ri__cu_expdw_supported(&na) || ri__cu_expdw(0, &na, x, &nw0, NULL, y) != cudaSuccess ||
      cudaDeviceSynchronize() != cudaSuccess)
    what[nw++] = "valid arguments without the expansion (w1, b1 NULL) refused or failed";
  c = na, c.cin = 16; /* x's channels must be ce */
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &nw0, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "noexp with cin 16 != ce 32 taken";
  c = na, c.k1p = 32;
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &nw0, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "noexp with k1p 32 taken";
  c = na, c.zstep = 1;
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &nw0, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "noexp with zstep 1 taken";
  c = na, c.act[0] = RI__CU_EXPDW_ACT_CLIP, c.act_b[0] = 6.f;
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &nw0, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "noexp with an expansion activation taken";
  c = na, c.cin = c.ce = 80; /* above RI__CU_EXPDW_MAX_CIN */
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &nw0, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "noexp with ce 80 taken";
  c = na, c.cin = c.ce = 24; /* not a multiple of 16 */
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &nw0, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "noexp with ce 24 taken";
  c = a, c.dwh = 2;
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &w, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "dwh 2 taken";
  c = a, c.dwh = 1;
  if (!ri__cu_expdw_supported(&c)) what[nw++] = "valid arguments with dwh 1 refused";
  c = na, c.dwh = 1;
  if (!ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &nw0, NULL, y) != cudaSuccess ||
      cudaDeviceSynchronize() != cudaSuccess)
    what[nw++] = "valid arguments without the expansion, dwh 1, refused or failed";
  c = na, c.noexp = 2;
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &nw0, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "noexp 2 taken";
  c = na, c.cout = 40; /* above the projection's 32 */
  if (ri__cu_expdw_supported(&c) || ri__cu_expdw(0, &c, x, &nw0, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "noexp with cout 40 taken";
  ri__cu_expdw_weights nw1 = nw0;
  nw1.wd = NULL;
  if (ri__cu_expdw(0, &na, x, &nw1, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "noexp with wd NULL taken";
  nw1 = nw0, nw1.w2 = NULL;
  if (ri__cu_expdw(0, &na, x, &nw1, NULL, y) != cudaErrorInvalidValue)
    what[nw++] = "noexp with w2 NULL taken";
  if (cudaDeviceSynchronize() != cudaSuccess || cudaGetLastError() != cudaSuccess)
    what[nw++] = "an error after the refusals";
  bad = nw;
  if (!bad) result(1, "%s: every refused argument gives cudaErrorInvalidValue", name);
  for (int i = 0; i < nw; i++)
    result(0, "%s: %s", name, what[i]);
done:
  cudaFree(x), cudaFree(y), cudaFree(w1), cudaFree(fl);
}

/* ---- engines: fused against unfused, bit for bit ---- */

static int count_str(const char *s, const char *pat) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, pat)) != NULL; p += strlen(pat))
    n++;
  return n;
}

#define ENG_MB 4

typedef struct {
  ri_engine_t *e;
  ri_context_t *c;
  int fused, skipped;         /* expdw_f16 nodes; fused_into_expdw nodes */
  int dwp_fused, dwp_skipped; /* dwproj_f16 nodes (no expansion); fused_into_dwproj nodes */
  int dw_h2, dw_f;            /* dwconv_h2_f16 nodes (RI_CUDA_DW_HALF=1); dwconv_nhwc_f16 nodes */
} eng;

/* The engines' settings: RI_CUDA_EXPDW (NULL: unset), whether RI_CUDA_EXPDW_PROJ=0, RI_CUDA_EXPDW_DWP
 * (NULL: unset). */
#define ENG_N 5
static const char *const g_exp[ENG_N] = {"0", NULL, "all", NULL, NULL};
static const int g_noproj[ENG_N] = {0, 0, 0, 1, 0};
static const char *const g_dwp[ENG_N] = {NULL, NULL, NULL, NULL, "0"}; /* RI_CUDA_EXPDW_DWP */
static const char *const g_label[ENG_N] = {"RI_CUDA_EXPDW=0", "RI_CUDA_EXPDW unset", "RI_CUDA_EXPDW=all",
                                           "RI_CUDA_EXPDW unset RI_CUDA_EXPDW_PROJ=0",
                                           "RI_CUDA_EXPDW unset RI_CUDA_EXPDW_DWP=0"};

/* Builds model at path in fp16, builder level 0, maximum batch ENG_MB, with setting k, and counts its fused
 * nodes (skipped: the depthwise nodes and projections fused into them). */
static int build_eng(const char *path, const char *model, int k, eng *g) {
  char msg[2048];
  memset(g, 0, sizeof *g);
  if (g_exp[k])
    setenv("RI_CUDA_EXPDW", g_exp[k], 1);
  else
    unsetenv("RI_CUDA_EXPDW");
  if (g_noproj[k])
    setenv("RI_CUDA_EXPDW_PROJ", "0", 1);
  else
    unsetenv("RI_CUDA_EXPDW_PROJ");
  if (g_dwp[k])
    setenv("RI_CUDA_EXPDW_DWP", g_dwp[k], 1);
  else
    unsetenv("RI_CUDA_EXPDW_DWP");
  ri_status s = gpu_build(path, "cuda", RI_PRECISION_FP16, ENG_MB, &g->e, msg, sizeof msg);
  unsetenv("RI_CUDA_EXPDW");
  unsetenv("RI_CUDA_EXPDW_PROJ");
  unsetenv("RI_CUDA_EXPDW_DWP");
  if (s != RI_OK) {
    result(0, "%s %s: build: %s", model, g_label[k], msg);
    return 0;
  }
  const char *json = NULL;
  if (ri_engine_describe_json(g->e, &json) != RI_OK || !json) {
    result(0, "%s %s: describe", model, g_label[k]);
    return 0;
  }
  g->fused = count_str(json, "\"expdw_f16\"");
  g->skipped = count_str(json, "\"fused_into_expdw\"");
  g->dwp_fused = count_str(json, "\"dwproj_f16\"");
  g->dwp_skipped = count_str(json, "\"fused_into_dwproj\"");
  g->dw_h2 = count_str(json, "\"dwconv_h2_f16\"");
  g->dw_f = count_str(json, "\"dwconv_nhwc_f16\"");
  if (ri_context_create(g->e, &g->c) != RI_OK) {
    result(0, "%s %s: context: %s", model, g_label[k], ri_engine_last_error(g->e));
    return 0;
  }
  return 1;
}

/* 1 when the kernel takes a projection: SSD MobileNet v2's expanded_conv_1 (and MobileNet v2's) at the
 * engines' batch, 16 -> 96 -> 24 channels, stride 2, clip(0, 6), linear projection. */
static int kernel_takes_proj(void) {
  ri__cu_expdw_args a;
  memset(&a, 0, sizeof a);
  a.n = ENG_MB, a.ih = a.iw = 150, a.oh = a.ow = 75, a.cin = 16, a.ce = 96, a.k1p = 16, a.stride = 2;
  a.pad_t = a.pad_l = 0, a.zstep = 1, a.act[0] = a.act[1] = RI__CU_EXPDW_ACT_CLIP, a.act_b[0] = 6.f;
  a.act_b[1] = 6.f, a.cout = 24;
  return ri__cu_expdw_supported(&a);
}

/* 1 when the kernel takes the form without the expansion on the first block of SSD MobileNet v2 (and of
 * MobileNet v2, 112x112) at the engines' batch: depthwise 3x3 over 150x150x32, stride 1, clip(0, 6), then
 * the linear projection to 16 channels. */
static int kernel_takes_dwp(void) {
  ri__cu_expdw_args a;
  memset(&a, 0, sizeof a);
  a.n = ENG_MB, a.ih = a.iw = a.oh = a.ow = 150, a.cin = a.ce = 32, a.stride = 1, a.pad_t = a.pad_l = 1;
  a.act[1] = RI__CU_EXPDW_ACT_CLIP, a.act_b[1] = 6.f, a.cout = 16, a.noexp = 1;
  return ri__cu_expdw_supported(&a);
}

static void free_eng(eng *g) {
  ri_context_destroy(g->c);
  ri_engine_destroy(g->e);
}

#define ENG_IO 8

/* dwhalf: every engine built and run with RI_CUDA_DW_HALF=1 (the depthwise nodes on the half-arithmetic
 * kernel, the fused ones on the kernel's half2 stage): the same fusions and bit-identity are expected, and
 * the unfused engine must hold dwconv_h2_f16 nodes and no engine dwconv_nhwc_f16 (without it: no
 * dwconv_h2_f16). */
static void test_engine(const char *dir, const char *file, int dwhalf) {
  char path[4096], label[256];
  snprintf(path, sizeof path, "%s/%s.onnx", dir, file);
  snprintf(label, sizeof label, "%s%s", file, dwhalf ? " RI_CUDA_DW_HALF=1" : "");
  const char *model = label;
  if (dwhalf)
    setenv("RI_CUDA_DW_HALF", "1", 1);
  else
    unsetenv("RI_CUDA_DW_HALF");
  FILE *f = fopen(path, "rb");
  if (!f) {
    printf("SKIP %s: %s not found\n", model, path);
    unsetenv("RI_CUDA_DW_HALF");
    return;
  }
  fclose(f);
  const char *env_level = getenv("RI_BUILDER_LEVEL");
  char saved_level[32] = "";
  if (env_level) snprintf(saved_level, sizeof saved_level, "%s", env_level);
  setenv("RI_BUILDER_LEVEL", "0", 1);
  eng g[ENG_N];
  memset(g, 0, sizeof g);
  int ok = 1;
  for (int k = 0; k < ENG_N && ok; k++)
    ok = build_eng(path, model, k, &g[k]);
  if (saved_level[0])
    setenv("RI_BUILDER_LEVEL", saved_level, 1);
  else
    unsetenv("RI_BUILDER_LEVEL");
  void *in[ENG_IO] = {0}, *ref[ENG_IO] = {0}, *got[ENG_IO] = {0};
  size_t in_b[ENG_IO] = {0}, out_b[ENG_IO] = {0};
  int n_in = 0, n_out = 0;
  if (!ok) goto done;
  {
    int f_any = 0, h2_any = 0;
    for (int k = 0; k < ENG_N; k++)
      f_any += g[k].dw_f, h2_any += g[k].dw_h2;
    if (dwhalf)
      result(g[0].dw_h2 > 0 && f_any == 0,
             "%s: the unfused engine holds %d dwconv_h2_f16 nodes (>0 expected), the engines %d "
             "dwconv_nhwc_f16 (0 expected)",
             model, g[0].dw_h2, f_any);
    else
      result(h2_any == 0, "%s: %d dwconv_h2_f16 nodes in the engines (0 expected)", model, h2_any);
  }
  result(g[0].fused == 0 && g[0].skipped == 0 && g[0].dwp_fused == 0 && g[0].dwp_skipped == 0,
         "%s RI_CUDA_EXPDW=0: %d + %d fused nodes, %d + %d skipped (none expected)", model, g[0].fused,
         g[0].dwp_fused, g[0].skipped, g[0].dwp_skipped);
  /* skipped = one depthwise node per fused node, plus the projections fused with it */
  const int takes = kernel_takes_proj(), p1 = g[1].skipped - g[1].fused, p2 = g[2].skipped - g[2].fused;
  result(g[1].fused > 0 && p1 >= 0 && p1 <= g[1].fused && (!takes || p1 > 0),
         "%s RI_CUDA_EXPDW unset (max batch %d): %d fused nodes expdw_f16, %d nodes fused_into_expdw (%d "
         "projections; the kernel %s projections)",
         model, ENG_MB, g[1].fused, g[1].skipped, p1, takes ? "takes" : "refuses");
  result(g[2].fused >= g[1].fused && p2 >= p1 && p2 <= g[2].fused && (!takes || p2 > 0),
         "%s RI_CUDA_EXPDW=all: %d fused nodes expdw_f16, %d nodes fused_into_expdw (%d projections)", model,
         g[2].fused, g[2].skipped, p2);
  result(g[3].fused == g[1].fused && g[3].skipped == g[3].fused && g[3].dwp_fused == 0 &&
             g[3].dwp_skipped == 0,
         "%s RI_CUDA_EXPDW_PROJ=0: %d fused nodes expdw_f16 (as unset: %d), %d depthwise nodes "
         "fused_into_expdw, no projection, %d dwproj_f16 (none expected)",
         model, g[3].fused, g[1].fused, g[3].skipped, g[3].dwp_fused);
  /* Without the expansion: the first block (depthwise over the stem's output, then its projection) by
   * default: one dwproj_f16 node and one projection fused_into_dwproj; with all at least that one; none with
   * RI_CUDA_EXPDW_DWP=0, which leaves the expansion pairs as unset. */
  const int tdwp = kernel_takes_dwp();
  result(tdwp && g[1].dwp_fused == 1 && g[1].dwp_skipped == 1,
         "%s RI_CUDA_EXPDW unset: %d dwproj_f16 nodes, %d fused_into_dwproj (1 and 1 expected: the first "
         "block; the kernel %s it)",
         model, g[1].dwp_fused, g[1].dwp_skipped, tdwp ? "takes" : "refuses");
  result(g[2].dwp_fused >= g[1].dwp_fused && g[2].dwp_skipped == g[2].dwp_fused,
         "%s RI_CUDA_EXPDW=all: %d dwproj_f16 nodes, %d fused_into_dwproj", model, g[2].dwp_fused,
         g[2].dwp_skipped);
  result(g[4].dwp_fused == 0 && g[4].dwp_skipped == 0 && g[4].fused == g[1].fused &&
             g[4].skipped == g[1].skipped,
         "%s RI_CUDA_EXPDW_DWP=0: %d dwproj_f16 nodes (none expected), %d expdw_f16 and %d fused_into_expdw "
         "(as unset: %d, %d)",
         model, g[4].dwp_fused, g[4].fused, g[4].skipped, g[1].fused, g[1].skipped);
  n_in = ri_engine_num_inputs(g[0].e), n_out = ri_engine_num_outputs(g[0].e);
  if (n_in > ENG_IO || n_out > ENG_IO) {
    result(0, "%s: more than %d inputs or outputs", model, ENG_IO);
    goto done;
  }
  for (int i = 0; i < n_in; i++) {
    ri_tensor_info ti;
    if (ri_engine_input_info(g[0].e, i, &ti) != RI_OK) goto done;
    in_b[i] = gpu_numel(&ti, ENG_MB) * ri_dtype_size(ti.dtype);
    in[i] = malloc(in_b[i]);
    if (!in[i]) goto done;
    if (ti.dtype == RI_DTYPE_FLOAT32)
      for (size_t k = 0; k < in_b[i] / 4; k++)
        ((float *)in[i])[k] = (float)(4.0 * urand() - 2.0);
    else
      for (size_t k = 0; k < in_b[i]; k++)
        ((unsigned char *)in[i])[k] = (unsigned char)(urand() * 256.0);
  }
  for (int o = 0; o < n_out; o++) {
    ri_tensor_info to;
    if (ri_engine_output_info(g[0].e, o, &to) != RI_OK) goto done;
    out_b[o] = gpu_numel(&to, ENG_MB) * ri_dtype_size(to.dtype);
    ref[o] = malloc(out_b[o] + 1), got[o] = malloc(out_b[o] + 1);
    if (!ref[o] || !got[o]) goto done;
  }
  static const int batches[2] = {1, 3};
  static const char *const runs[3] = {"eager", "capture", "replay"};
  for (int bi = 0; bi < 2; bi++) {
    int batch = batches[bi];
    if (ri_context_run(g[0].c, batch, (const void *const *)in, ref) != RI_OK) {
      result(0, "%s unfused batch %d: %s", model, batch, ri_context_last_error(g[0].c));
      continue;
    }
    for (int k = 1; k < ENG_N; k++)
      for (int r = 0; r < 3; r++) {
        for (int o = 0; o < n_out; o++)
          memset(got[o], 0xa5, out_b[o]);
        if (ri_context_run(g[k].c, batch, (const void *const *)in, got) != RI_OK) {
          result(0, "%s %s batch %d run %s: %s", model, g_label[k], batch, runs[r],
                 ri_context_last_error(g[k].c));
          break;
        }
        int bad_o = -1;
        for (int o = 0; o < n_out && bad_o < 0; o++) {
          ri_tensor_info to;
          if (ri_engine_output_info(g[0].e, o, &to) != RI_OK) bad_o = o;
          size_t bytes = gpu_numel(&to, batch) * ri_dtype_size(to.dtype);
          if (memcmp(got[o], ref[o], bytes) != 0) bad_o = o;
        }
        result(bad_o < 0, "%s %s batch %d run %s: outputs %s the unfused engine's", model, g_label[k], batch,
               runs[r], bad_o < 0 ? "bit-identical to" : "differ from");
      }
  }
done:
  for (int i = 0; i < ENG_IO; i++)
    free(in[i]), free(ref[i]), free(got[i]);
  for (int k = 0; k < ENG_N; k++)
    free_eng(&g[k]);
  unsetenv("RI_CUDA_DW_HALF");
}

int main(int argc, char **argv) {
  int dev = 0;
  if (cudaGetDeviceCount(&dev) != cudaSuccess || dev < 1) {
    printf("SKIP test_cuda_expdw: no CUDA device\n0 passed, 0 failed\n");
    return 2;
  }
  const char *mode = getenv("RI_TEST_EXPDW");
  g_quick = mode && strcmp(mode, "quick") == 0;
  /* RI_TEST_EXPDW_H2: unset, both depthwise arithmetics; "0" the float one only; "only" the half one only */
  const char *h2mode = getenv("RI_TEST_EXPDW_H2");
  const int h2_lo = h2mode && strcmp(h2mode, "only") == 0, h2_hi = h2mode && strcmp(h2mode, "0") == 0 ? 0 : 1;
  static const int cins[6] = {8, 16, 24, 32, 48, 64}, ces[4] = {16, 96, 144, 192};
  /* pads: top, left, bottom, right */
  static const int pads[6][4] = {{1, 1, 1, 1}, {0, 0, 0, 0}, {1, 1, 0, 0},
                                 {2, 2, 2, 2}, {0, 0, 1, 1}, {1, 0, 0, 1}};
  static const int sizes[7][2] = {{3, 5}, {7, 7}, {37, 19}, {12, 16}, {75, 75}, {5, 3}, {19, 37}};
  for (int h2 = h2_lo; h2 <= h2_hi; h2++) {
    g_h2 = h2;
    int idx = 0;
    for (int rep = 0; rep < 2; rep++)
      for (int ci = 0; ci < 6; ci++)
        for (int ei = 0; ei < 4; ei++)
          for (int s = 1; s <= 2; s++, idx++) {
            const int *pd = pads[(idx + rep) % 6], *sz = sizes[(idx * 3 + rep) % 7];
            xcase t = {1 + idx % 3, sz[0],   sz[1],         cins[ci],        ces[ei], s, pd[0], pd[1], pd[2],
                       pd[3],       idx % 3, (idx / 3) % 3, (idx + rep) % 2, 0,       0, 0,     0};
            if (g_quick && (t.ih > 40 || t.iw > 40)) continue;
            test_case(&t);
          }
    /* The SSD MobileNet v2 blocks of the fusion (300x300 input, TF "SAME" pads), clip(0, 6) on both. */
    static const xcase ssd[] = {
        {2, 150, 150, 16, 96, 2, 0, 0, 1, 1, 2, 2, 0, 0, 0, 0, 0}, /* expanded_conv_1 */
        {2, 75, 75, 24, 144, 1, 1, 1, 1, 1, 2, 2, 1, 0, 0, 0, 0},  /* expanded_conv_2 */
        {2, 75, 75, 24, 144, 2, 1, 1, 1, 1, 2, 2, 0, 0, 0, 0, 0},  /* expanded_conv_3 */
        {3, 38, 38, 32, 192, 1, 1, 1, 1, 1, 2, 2, 1, 0, 0, 0, 0},  /* expanded_conv_4, _5 */
        {3, 38, 38, 32, 192, 2, 0, 0, 1, 1, 2, 2, 0, 0, 0, 0, 0},  /* expanded_conv_6 */
        {3, 19, 19, 64, 384, 1, 1, 1, 1, 1, 2, 2, 1, 0, 0, 0,
         0}, /* expanded_conv_7 .. _10 (RI_CUDA_EXPDW=all) */
    };
    for (size_t i = 0; i < sizeof ssd / sizeof ssd[0]; i++)
      if (!g_quick || (ssd[i].ih <= 40 && ssd[i].iw <= 40)) test_case(&ssd[i]);
    /* With the projection: every cout 8 .. 64 with no residual, one of its own and one in place, activation
     * none and clip(0, 6) (one case each), over the kernel cases' input and expanded counts, strides, pads,
     * sizes and signed zeros; then the SSD blocks with their projections (linear; blocks 2, 4 and 5 with the
     * residual, also in place), block 6's of 64 channels. */
    static const int couts[5] = {8, 16, 24, 32, 64}, pcins[4] = {8, 16, 24, 32}, pces[3] = {16, 96, 144};
    for (int i = 0; i < 30; i++) {
      const int *pd = pads[i % 6], *sz = sizes[(i * 3 + 1) % 7];
      xcase t = {1 + i % 3,
                 sz[0],
                 sz[1],
                 pcins[(i * 3 + 1) % 4],
                 pces[(i / 4) % 3],
                 1 + i % 2,
                 pd[0],
                 pd[1],
                 pd[2],
                 pd[3],
                 2,
                 (i / 3) % 3,
                 (i / 2) % 2,
                 couts[i % 5],
                 (i / 5) % 3,
                 2 * ((i / 15) % 2),
                 0};
      if (g_quick && (t.ih > 40 || t.iw > 40)) continue;
      test_case(&t);
    }
    static const xcase ssdp[] = {
        {2, 150, 150, 16, 96, 2, 0, 0, 1, 1, 2, 2, 0, 24, 0, 0, 0}, /* expanded_conv_1 */
        {2, 75, 75, 24, 144, 1, 1, 1, 1, 1, 2, 2, 1, 24, 1, 0, 0},  /* expanded_conv_2 (residual) */
        {2, 75, 75, 24, 144, 2, 1, 1, 1, 1, 2, 2, 0, 32, 0, 0, 0},  /* expanded_conv_3 */
        {3, 38, 38, 32, 192, 1, 1, 1, 1, 1, 2, 2, 1, 32, 1, 0, 0},  /* expanded_conv_4, _5 (residual) */
        {3, 38, 38, 32, 192, 1, 1, 1, 1, 1, 2, 2, 0, 32, 2, 0, 0},  /* the same, the residual in place */
        {3, 38, 38, 32, 192, 2, 0, 0, 1, 1, 2, 2, 0, 64, 0, 0, 0},  /* expanded_conv_6 */
    };
    for (size_t i = 0; i < sizeof ssdp / sizeof ssdp[0]; i++)
      if (!g_quick || (ssdp[i].ih <= 40 && ssdp[i].iw <= 40)) test_case(&ssdp[i]);
    /* Without the expansion (noexp): every ce 16, 32, 48, 64 over strides, pads, sizes, batches, the
     * depthwise activations and signed zeros, with no projection and with cout 8 .. 32, no residual, one of
     * its own and one in place, activation none and clip; then SSD MobileNet v2's first block (150x150x32,
     * stride 1, clip(0, 6), linear projection to 16) and MobileNet v2's (112x112, symmetric pads). */
    static const int nces[4] = {16, 32, 48, 64}, ncouts[5] = {0, 8, 16, 24, 32};
    for (int i = 0; i < 40; i++) {
      const int *pd = pads[(i + 2) % 6], *sz = sizes[(i * 5 + 2) % 7];
      const int ce = nces[i % 4], cout = ncouts[(i / 2) % 5];
      xcase t = {1 + i % 3,
                 sz[0],
                 sz[1],
                 ce,
                 ce,
                 1 + (i / 4) % 2,
                 pd[0],
                 pd[1],
                 pd[2],
                 pd[3],
                 0,
                 (i / 3) % 3,
                 (i / 5) % 2,
                 cout,
                 cout ? (i / 7) % 3 : 0,
                 cout ? 2 * ((i / 11) % 2) : 0,
                 1};
      if (g_quick && (t.ih > 40 || t.iw > 40)) continue;
      test_case(&t);
    }
    static const xcase ssdn[] = {
        {2, 150, 150, 32, 32, 1, 1, 1, 1, 1, 0, 2, 0, 16, 0, 0, 1}, /* expanded_conv (SSD, TF "SAME") */
        {2, 150, 150, 32, 32, 1, 1, 1, 1, 1, 0, 2, 1, 16, 0, 0, 1}, /* the same with signed zeros */
        {3, 112, 112, 32, 32, 1, 1, 1, 1, 1, 0, 2, 0, 16, 0, 0, 1}, /* MobileNet v2's */
        {2, 38, 38, 32, 32, 1, 1, 1, 1, 1, 0, 2, 1, 32, 1, 0, 1},   /* a residual, quick-sized */
        {2, 38, 38, 32, 32, 2, 0, 0, 1, 1, 0, 2, 0, 16, 0, 2, 1},   /* stride 2, clip on the projection */
    };
    for (size_t i = 0; i < sizeof ssdn / sizeof ssdn[0]; i++)
      if (!g_quick || (ssdn[i].ih <= 40 && ssdn[i].iw <= 40)) test_case(&ssdn[i]);
  }
  g_h2 = 0;
  if (g_proj_skipped) printf("SKIP %d projection cases: refused by the kernel (expdw.h)\n", g_proj_skipped);
  result(
      g_nz_cases > 0,
      "signed zeros: %d of %d cases with signed-zero data (depthwise activation none or clip) hold -0 in the "
      "reference output",
      g_nz_cases, g_zero_cases);
  test_refusals();
  if (argc > 1) {
    for (int dwhalf = h2_lo; dwhalf <= h2_hi; dwhalf++) {
      test_engine(argv[1], "ssd_mobilenet_v2", dwhalf);
      test_engine(argv[1], "mobilenet_v2", dwhalf);
    }
  }
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
