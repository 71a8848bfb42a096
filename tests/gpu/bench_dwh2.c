/* Micro-benchmark of the half-arithmetic depthwise 3x3 kernel (ri__cu_dwconv_h2, k_dwconv_h2.cu) against
 * today's float-accumulating kernels (ri__cu_dwconv_v, every variant), on every depthwise shape of SSD
 * MobileNet v2 (300x300 input, TF-SAME pads, clip(0, 6)) at one batch. Per shape: the median time of the
 * fastest float variant (and its number), of the half kernel at each pixels-per-thread rx, the traffic
 * (input + output bytes) per microsecond of the fastest of each, and the half kernel's error: max |h2 - f|
 * over the whole batch against the float variant 0 (itself within half a unit in the last place of the
 * exact result), and on image 0 the worst |h2 - ref| / bound against a double reference with the tests'
 * bound (9 * 2^-10 * (|bias| + sum |x w|) + 2^-20; FAIL line and exit 1 above 1, or when the rx give other
 * bits than the default).
 *   bench_dwh2 [--batch N] [--reps N]     (defaults: 256, 20) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "backend/cuda/kernels.h"
#include "core/half.h"
#include "gpu_rand.h"
#include "gpu_timing.h"
#include "graph/ir.h"

typedef struct {
  const char *name;
  int hw, c, s, pad; /* pad: top and left (bottom / right from TF SAME) */
} shape;

/* expanded_conv .. expanded_conv_16's depthwise layers, one line per distinct shape */
static const shape g_shapes[] = {
    {"expanded_conv", 150, 32, 1, 1},       {"expanded_conv_1", 150, 96, 2, 0},
    {"expanded_conv_2", 75, 144, 1, 1},     {"expanded_conv_3", 75, 144, 2, 1},
    {"expanded_conv_4,5", 38, 192, 1, 1},   {"expanded_conv_6", 38, 192, 2, 0},
    {"expanded_conv_7..10", 19, 384, 1, 1}, {"expanded_conv_11,12", 19, 576, 1, 1},
    {"expanded_conv_13", 19, 576, 2, 1},    {"expanded_conv_14..16", 10, 960, 1, 1},
};

typedef struct {
  ri__cu_dwconv_args d;
  int variant, rx;
  void *x, *w, *y;
  float *b;
} ctx_t;

static cudaError_t run_f(void *c) {
  ctx_t *t = c;
  return ri__cu_dwconv_v(0, RI_DTYPE_FLOAT16, &t->d, t->variant, t->x, t->w, t->b, t->y);
}
static cudaError_t run_h(void *c) {
  ctx_t *t = c;
  return ri__cu_dwconv_h2(0, &t->d, t->rx, t->x, t->w, t->b, t->y);
}

static int bench_shape(const shape *sh, int batch, int reps, int *fails) {
  ctx_t t;
  memset(&t, 0, sizeof t);
  const int hw = sh->hw, s = sh->s, oh = (hw + s - 1) / s, c = sh->c;
  ri__cu_dwconv_args *d = &t.d;
  d->n = batch, d->c = c, d->ih = d->iw = hw, d->oh = d->ow = oh, d->kh = d->kw = 3, d->sh = d->sw = s;
  d->dh = d->dw = 1, d->pad_t = d->pad_l = sh->pad, d->nhwc = 1, d->act = RI__ACT_CLIP, d->act_a = 0.f;
  d->act_b = 6.f;
  const size_t xn = (size_t)batch * hw * hw * c, yn = (size_t)batch * oh * oh * c, wn = (size_t)9 * c;
  uint16_t *hx = malloc(xn * 2), *hw_ = malloc(wn * 2), *hf = malloc(yn * 2), *hh = malloc(yn * 2),
           *h2 = malloc(yn * 2);
  float *hb = malloc((size_t)c * 4);
  if (!hx || !hw_ || !hf || !hh || !h2 || !hb) {
    printf("FAIL %s: host memory\n", sh->name);
    return 1;
  }
  fill_half(hx, NULL, xn, 2.0);
  fill_half(hw_, NULL, wn, 0.5);
  for (int e = 0; e < c; e++)
    hb[e] = (float)(urand() * 2.0 - 1.0);
  CKB(cudaMalloc(&t.x, xn * 2));
  CKB(cudaMalloc(&t.w, wn * 2));
  CKB(cudaMalloc((void **)&t.b, (size_t)c * 4));
  CKB(cudaMalloc(&t.y, yn * 2));
  CKB(cudaMemcpy(t.x, hx, xn * 2, cudaMemcpyHostToDevice));
  CKB(cudaMemcpy(t.w, hw_, wn * 2, cudaMemcpyHostToDevice));
  CKB(cudaMemcpy(t.b, hb, (size_t)c * 4, cudaMemcpyHostToDevice));
  if (!ri__cu_dwconv_h2_supported(d)) {
    printf("FAIL %s: the half kernel refuses the shape\n", sh->name);
    (*fails)++;
    return 0;
  }
  double ms, best_f = 1e30, best_h = 1e30, h_ms[4] = {0, 0, 0, 0};
  int bf = 0, bh = 0;
  const int nv = ri__cu_dwconv_variants(RI_DTYPE_FLOAT16, d);
  for (int v = 0; v < nv; v++) {
    t.variant = v;
    if (gpu_time_it(run_f, &t, reps, &ms)) return 1;
    if (ms < best_f) best_f = ms, bf = v;
  }
  t.variant = 0;
  CKB(run_f(&t));
  CKB(cudaMemcpy(hf, t.y, yn * 2, cudaMemcpyDeviceToHost));
  const int rxs[4] = {0, s == 1 ? 2 : 1, s == 1 ? 4 : 2, s == 1 ? 8 : 4};
  int same = 1;
  for (int r = 0; r < 4; r++) {
    t.rx = rxs[r];
    CKB(cudaMemset(t.y, 0xff, yn * 2));
    if (gpu_time_it(run_h, &t, reps, &ms)) return 1;
    h_ms[r] = ms;
    if (r > 0 && ms < best_h) best_h = ms, bh = rxs[r];
    CKB(cudaMemcpy(r == 0 ? hh : h2, t.y, yn * 2, cudaMemcpyDeviceToHost));
    if (r > 0) same = same && memcmp(hh, h2, yn * 2) == 0;
  }
  /* errors: against the float kernel over the batch, against the double reference on image 0 */
  double max_diff = 0.0, worst = 0.0;
  for (size_t i = 0; i < yn; i++) {
    const double df = fabs((double)ri__half_to_float(hh[i]) - (double)ri__half_to_float(hf[i]));
    if (!(df <= max_diff)) max_diff = df; /* a NaN sticks */
  }
  const size_t img = (size_t)oh * oh * c;
  for (size_t o = 0; o < img; o++) {
    const int ch = (int)(o % c), ox = (int)(o / c % oh), oy = (int)(o / c / oh);
    double acc = hb[ch], mag = fabs((double)hb[ch]);
    for (int ky = 0; ky < 3; ky++)
      for (int kx = 0; kx < 3; kx++) {
        const int iy = oy * s - sh->pad + ky, ix = ox * s - sh->pad + kx;
        if (iy < 0 || iy >= hw || ix < 0 || ix >= hw) continue;
        const double p = (double)ri__half_to_float(hx[((size_t)iy * hw + ix) * c + ch]) *
                         (double)ri__half_to_float(hw_[(ky * 3 + kx) * c + ch]);
        acc += p, mag += fabs(p);
      }
    acc = acc < 0 ? 0 : acc > 6 ? 6 : acc;
    const double r =
        fabs((double)ri__half_to_float(hh[o]) - acc) / (9.0 * ldexp(1.0, -10) * mag + ldexp(1.0, -20));
    if (!(r <= worst)) worst = r;
  }
  const double bytes = (double)(xn + yn) * 2.0;
  printf("%-22s %3dx%-3d c%-4d s%d  float v%d %8.1f us %6.0f B/us | h2 rx %d/%d/%d %7.1f %7.1f %7.1f us, "
         "best rx "
         "%d %8.1f us %6.0f B/us  x%.2f | max|h2-f| %.3g, err/bound %.3f\n",
         sh->name, hw, hw, c, s, bf, best_f * 1e3, bytes / (best_f * 1e3), rxs[1], rxs[2], rxs[3],
         h_ms[1] * 1e3, h_ms[2] * 1e3, h_ms[3] * 1e3, bh, best_h * 1e3, bytes / (best_h * 1e3),
         best_f / best_h, max_diff, worst);
  if (!same || !(worst <= 1.0)) {
    printf("FAIL %s: %s\n", sh->name, !same ? "the rx give other bits" : "error over the bound");
    (*fails)++;
  }
  cudaFree(t.x), cudaFree(t.w), cudaFree(t.b), cudaFree(t.y);
  free(hx), free(hw_), free(hf), free(hh), free(h2), free(hb);
  return 0;
}

int main(int argc, char **argv) {
  int batch = 256, reps = 20;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
      batch = atoi(argv[++i]);
    else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
      reps = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--batch N] [--reps N]\n", argv[0]);
      return 2;
    }
  }
  if (batch < 1 || reps < 1) {
    fprintf(stderr, "bench_dwh2: --batch and --reps must be positive\n");
    return 2;
  }
  int fails = 0;
  printf("bench_dwh2: SSD MobileNet v2 depthwise layers, batch %d, median of %d runs, clip(0, 6)\n", batch,
         reps);
  for (size_t i = 0; i < sizeof g_shapes / sizeof g_shapes[0]; i++)
    if (bench_shape(&g_shapes[i], batch, reps, &fails)) return 1;
  printf("bench_dwh2: %d failures\n", fails);
  return fails ? 1 : 0;
}
