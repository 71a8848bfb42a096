/* GPU test of the Hopper wgmma pointwise-convolution kernel (ri__cu_pwgemm_wg, k_pwgemm_wg.cu, a DRAFT not
 * yet used by the engine) against a double-precision CPU reference on the same half data: plain, bias +
 * ReLU, clip(0, 6), residual, other activations, outputs into Concat slices (channel offset, row pitch and
 * image stride; 16-byte aligned and not), float32 outputs, N not a multiple of the tile width, K below one
 * 64-deep K step and not a multiple of it, M not a multiple of the tile height, M = 1. Each tile shape it is
 * given (bm 64 / 128 / 0 for the heuristic, bn 64 / 128).
 *
 * Per case: the output is poisoned (0xff bytes) before the launch; every written element must be within
 * TOL of the reference, relative to max |reference| (a half output is rounded to 2^-11 relative, the sums
 * are float), a float32 output must hold exactly half values (the half result widened, as ri__cu_convgemm
 * gives), and every byte outside the slice must still be poison. Batch invariance: the first and the last
 * image of the batch, run alone (n = 1, their own copies of input and residual, the case's tile request:
 * where that is the heuristic bm = 0, the tile height may differ too), must give the bytes they got in the
 * batch. Tiles: for the cases marked so, every tile shape with 3 and with 4 pipeline stages must give the
 * same bytes (whether the engine may pick the tile per batch).
 *
 * First, exact one-hot cases whose wrong values name the row and channel they came from (test_onehot), as a
 * diagnostic of the shared-memory and register layouts.
 *
 * Argument checks (any device): refused geometries and misaligned pointers give cudaErrorInvalidValue. On a
 * device that is not compute capability 9.0 the launcher must answer cudaErrorNotSupported, and the cases
 * print SKIP lines.
 *
 *   test_cuda_wggemm     one PASS/FAIL (or SKIP) line per check, then "N passed, M failed"; exit 1 on failure
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "backend/cuda/kernels.h"
#include "core/half.h"
#include "gpu_rand.h"
#include "gpu_result.h"

#define TOL 1e-2

static double act(int a, double x, double lo, double hi) {
  switch (a) {
  case 1: return x > 0 ? x : 0;
  case 2: return x < lo ? lo : x > hi ? hi : x;
  case 3: return x < 0 ? lo * x : x;
  case 4: return 1.0 / (1.0 + exp(-x));
  case 5: return fmin(fmax(lo * x + hi, 0.0), 1.0);
  case 6: return x * fmin(fmax(x / 6.0 + 0.5, 0.0), 1.0);
  default: return x;
  }
}

/* A case: n images of h x w pixels, k input and m output channels; act with parameters a, b; bias,
 * residual; slice 0 dense, 1 an unaligned slice (ldy = m + 5, offset 3, images 7 elements apart beyond their
 * rows), 2 an aligned one (ldy = m + 32, offset 16, 24 apart); f32 output; tile bm x bn; wscale multiplies
 * the weights' range 1 / sqrt(k); tiles: also compare every tile shape. */
typedef struct {
  int n, h, w, k, m, act;
  float a, b;
  int bias, res, slice, f32, bm, bn;
  double wscale;
  int tiles;
  const char *what;
} wcase;

/* One problem's host and device data. */
typedef struct {
  const wcase *t;
  char name[300];
  int64_t rows_per_img, ldy, y_off, img_stride;
  size_t rows, nx, nw, ny, ye;
  uint16_t *hx, *hw, *hr;
  float *fx, *fw, *fr, *fb;
  unsigned char *hy, *hy1, *hy2;
  void *dx, *dw, *dr, *db, *dy, *dx1, *dr1, *dy1;
} prob;

static void args_of(const prob *P, int n, ri__cu_convgemm_args *a) {
  const wcase *t = P->t;
  memset(a, 0, sizeof *a);
  a->n = n, a->ih = a->oh = t->h, a->iw = a->ow = t->w, a->c = a->k = a->ldw = t->k, a->m_out = t->m;
  a->kh = a->kw = a->sh = a->sw = a->dh = a->dw = 1;
  a->rows_per_img = P->rows_per_img, a->y_img_stride = P->img_stride, a->ldy = P->ldy, a->y_off = P->y_off;
  a->ldr = t->m;
  a->act = t->act, a->act_a = t->a, a->act_b = t->b;
  a->y_f32 = t->f32;
}

static void free_prob(prob *P) {
  cudaFree(P->dx), cudaFree(P->dw), cudaFree(P->dr), cudaFree(P->db), cudaFree(P->dy);
  cudaFree(P->dx1), cudaFree(P->dr1), cudaFree(P->dy1);
  free(P->hx), free(P->hw), free(P->hr), free(P->fx), free(P->fw), free(P->fr), free(P->fb);
  free(P->hy), free(P->hy1), free(P->hy2);
}

/* Runs the launcher on n images from x / r into y (poisoned first) and copies y's bytes to host. Returns 0,
 * or 1 after a FAIL line naming the failing call. */
static int run(const prob *P, int n, int bm, int bn, int stages, void *x, void *r, void *y,
               unsigned char *host, size_t bytes) {
  ri__cu_convgemm_args a;
  args_of(P, n, &a);
  cudaError_t e = cudaMemset(y, 0xff, bytes);
  const char *what = "cudaMemset";
  if (e == cudaSuccess) {
    what = "ri__cu_pwgemm_wg_tile";
    e = ri__cu_pwgemm_wg_tile(0, &a, bm, bn, stages, x, P->dw, P->t->bias ? (const float *)P->db : NULL,
                              P->t->res ? r : NULL, y);
  }
  if (e == cudaSuccess) what = "cudaDeviceSynchronize", e = cudaDeviceSynchronize();
  if (e == cudaSuccess) what = "cudaMemcpy", e = cudaMemcpy(host, y, bytes, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) {
    result(0, "%s: %s (bm %d bn %d stages %d, n %d): %s", P->name, what, bm, bn, stages, n,
           cudaGetErrorString(e));
    return 1;
  }
  return 0;
}

/* The output against the reference, and the bytes outside the slice. */
static void check_reference(const prob *P) {
  const wcase *t = P->t;
  unsigned char *mark = calloc(P->ny, 1);
  if (!mark) {
    result(0, "%s: out of host memory", P->name);
    return;
  }
  double maxref = 0, maxerr = 0;
  size_t written = 0, bad_poison = 0, not_half = 0;
  double *s = malloc((size_t)t->m * sizeof(double));
  if (!s) {
    free(mark);
    result(0, "%s: out of host memory", P->name);
    return;
  }
  for (size_t row = 0; row < P->rows; row++) {
    const float *xp = P->fx + row * (size_t)t->k;
    for (int j = 0; j < t->m; j++) {
      const float *wp = P->fw + (size_t)j * t->k;
      double acc = t->bias ? P->fb[j] : 0.0;
      for (int c = 0; c < t->k; c++)
        acc += (double)xp[c] * wp[c];
      if (t->res) acc += P->fr[row * (size_t)t->m + j];
      s[j] = act(t->act, acc, t->a, t->b);
    }
    int64_t img = (int64_t)row / P->rows_per_img, rr = (int64_t)row % P->rows_per_img;
    for (int j = 0; j < t->m; j++) {
      size_t yi = (size_t)(img * P->img_stride + rr * P->ldy + P->y_off + j);
      mark[yi] = 1;
      double got;
      if (t->f32) {
        float fv;
        memcpy(&fv, P->hy + yi * 4, 4);
        got = fv;
        if (!isnan(fv) && ri__half_to_float(ri__float_to_half(fv)) != fv) not_half++;
      } else {
        uint16_t hv;
        memcpy(&hv, P->hy + yi * 2, 2);
        got = ri__half_to_float(hv);
      }
      double e = isnan(got) ? INFINITY : fabs(got - s[j]);
      if (e > maxerr) maxerr = e;
      if (fabs(s[j]) > maxref) maxref = fabs(s[j]);
      written++;
    }
  }
  for (size_t i = 0; i < P->ny; i++)
    for (size_t b = 0; b < P->ye; b++)
      if (!mark[i] && P->hy[i * P->ye + b] != 0xff) bad_poison++;
  free(mark);
  free(s);
  double rel = maxerr / (maxref > 0 ? maxref : 1);
  result(rel <= TOL && bad_poison == 0 && not_half == 0,
         "%s: max_err/max|ref| = %.3g (limit %.0e, max|ref| %.3g, %zu outputs, %zu float outputs not a half "
         "value, %zu bytes written outside the slice)",
         P->name, rel, TOL, maxref, written, not_half, bad_poison);
}

/* Image `img` alone (its own input and residual copies, n = 1) against its bytes in the batch output. */
static void check_alone(prob *P, int img) {
  const wcase *t = P->t;
  size_t xrows = (size_t)P->rows_per_img, img_bytes = (size_t)P->img_stride * P->ye;
  cudaError_t e = cudaMemcpy(P->dx1, (const uint16_t *)P->dx + (size_t)img * xrows * t->k, xrows * t->k * 2,
                             cudaMemcpyDeviceToDevice);
  if (e == cudaSuccess && t->res)
    e = cudaMemcpy(P->dr1, (const uint16_t *)P->dr + (size_t)img * xrows * t->m, xrows * t->m * 2,
                   cudaMemcpyDeviceToDevice);
  if (e != cudaSuccess) {
    result(0, "%s: copies of image %d: %s", P->name, img, cudaGetErrorString(e));
    return;
  }
  if (run(P, 1, t->bm, t->bn, 0, P->dx1, P->dr1, P->dy1, P->hy1, img_bytes)) return;
  size_t differ = 0;
  for (size_t i = 0; i < img_bytes; i++)
    differ += P->hy1[i] != P->hy[(size_t)img * img_bytes + i];
  result(differ == 0, "%s: image %d of %d alone: %zu bytes differ from the batch", P->name, img, t->n,
         differ);
}

/* Every tile shape and stage count against the case's own output, byte for byte. */
static void check_tiles(prob *P) {
  static const int tiles[4][2] = {{64, 64}, {64, 128}, {128, 64}, {128, 128}};
  size_t bytes = P->ny * P->ye;
  for (int i = 0; i < 4; i++)
    for (int st = 3; st <= 4; st++) {
      if (run(P, P->t->n, tiles[i][0], tiles[i][1], st, P->dx, P->dr, P->dy, P->hy2, bytes)) return;
      size_t differ = 0;
      for (size_t b = 0; b < bytes; b++)
        differ += P->hy2[b] != P->hy[b];
      result(differ == 0, "%s: tile %dx%d with %d stages: %zu bytes differ from tile %dx%d", P->name,
             tiles[i][0], tiles[i][1], st, differ, P->t->bm, P->t->bn);
    }
}

static void test_case(const wcase *t) {
  prob P;
  memset(&P, 0, sizeof P);
  P.t = t;
  snprintf(P.name, sizeof P.name,
           "wggemm %s: n=%d %dx%d k=%d -> m=%d act=%d(%g,%g) bias=%d res=%d slice=%d out=%s tile=%dx%d",
           t->what, t->n, t->h, t->w, t->k, t->m, t->act, t->a, t->b, t->bias, t->res, t->slice,
           t->f32 ? "f32" : "f16", t->bm, t->bn);
  P.rows_per_img = (int64_t)t->h * t->w;
  P.rows = (size_t)t->n * (size_t)P.rows_per_img;
  P.ldy = t->slice == 1 ? t->m + 5 : t->slice == 2 ? t->m + 32 : t->m;
  P.y_off = t->slice == 1 ? 3 : t->slice == 2 ? 16 : 0;
  P.img_stride = P.rows_per_img * P.ldy + (t->slice == 1 ? 7 : t->slice == 2 ? 24 : 0);
  P.ny = (size_t)(t->n * P.img_stride);
  P.ye = t->f32 ? 4 : 2;
  P.nx = P.rows * (size_t)t->k, P.nw = (size_t)t->m * t->k;
  size_t nr = P.rows * (size_t)t->m;
  P.hx = malloc(P.nx * 2), P.hw = malloc(P.nw * 2), P.hr = malloc(nr * 2);
  P.fx = malloc(P.nx * 4), P.fw = malloc(P.nw * 4), P.fr = malloc(nr * 4), P.fb = malloc((size_t)t->m * 4);
  P.hy = malloc(P.ny * P.ye), P.hy1 = malloc((size_t)P.img_stride * P.ye), P.hy2 = malloc(P.ny * P.ye);
  if (!P.hx || !P.hw || !P.hr || !P.fx || !P.fw || !P.fr || !P.fb || !P.hy || !P.hy1 || !P.hy2) {
    result(0, "%s: out of host memory", P.name);
    free_prob(&P);
    return;
  }
  fill_half(P.hx, P.fx, P.nx, 1.0);
  fill_half(P.hw, P.fw, P.nw, t->wscale / sqrt((double)t->k));
  fill_half(P.hr, P.fr, nr, 1.0);
  for (int j = 0; j < t->m; j++)
    P.fb[j] = (float)(urand() - 0.5);
  size_t xrows = (size_t)P.rows_per_img;
  cudaError_t e = cudaMalloc(&P.dx, P.nx * 2);
  if (e == cudaSuccess) e = cudaMalloc(&P.dw, P.nw * 2);
  if (e == cudaSuccess) e = cudaMalloc(&P.dr, nr * 2);
  if (e == cudaSuccess) e = cudaMalloc(&P.db, (size_t)t->m * 4);
  if (e == cudaSuccess) e = cudaMalloc(&P.dy, P.ny * P.ye);
  if (e == cudaSuccess) e = cudaMalloc(&P.dx1, xrows * t->k * 2);
  if (e == cudaSuccess) e = cudaMalloc(&P.dr1, xrows * t->m * 2);
  if (e == cudaSuccess) e = cudaMalloc(&P.dy1, (size_t)P.img_stride * P.ye);
  if (e == cudaSuccess) e = cudaMemcpy(P.dx, P.hx, P.nx * 2, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(P.dw, P.hw, P.nw * 2, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(P.dr, P.hr, nr * 2, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(P.db, P.fb, (size_t)t->m * 4, cudaMemcpyHostToDevice);
  if (e != cudaSuccess) {
    result(0, "%s: cudaMalloc / cudaMemcpy of the operands: %s", P.name, cudaGetErrorString(e));
    free_prob(&P);
    return;
  }
  if (run(&P, t->n, t->bm, t->bn, 0, P.dx, P.dr, P.dy, P.hy, P.ny * P.ye) == 0) {
    check_reference(&P);
    check_alone(&P, 0);
    if (t->n > 1) check_alone(&P, t->n - 1);
    if (t->tiles) check_tiles(&P);
  }
  free_prob(&P);
}

/* Exact data that tells a misplaced operand apart (a diagnostic for the layouts, as well as a check): x[m][k]
 * = (m % 16) * 64 + k % 64 and one-hot weights w[n][k] = (k == n % k_total), no bias, so that y[m][n] must be
 * exactly x[m][n % k_total] (integers below 1024: exact in half, and every other product is an exact zero).
 * A wrong value names the row (mod 16) and the channel (mod 64) it came from: a wrong swizzle shows as a
 * permuted channel, a wrong accumulator layout as a wrong row or column. */
static void test_onehot(int bm, int bn) {
  const int H = 10, W = 13, K = 160, N = 96; /* M = 130: three 64-row tiles, K: two full steps and a half */
  const int M = H * W;
  char name[160];
  snprintf(name, sizeof name, "wggemm one-hot weights (exact, decodable) M=%d K=%d N=%d tile=%dx%d", M, K, N,
           bm, bn);
  size_t nx = (size_t)M * K, nw = (size_t)N * K, ny = (size_t)M * N;
  uint16_t *hx = malloc(nx * 2), *hw = malloc(nw * 2), *hy = malloc(ny * 2);
  void *dx = NULL, *dw = NULL, *dy = NULL;
  cudaError_t e = cudaSuccess;
  if (!hx || !hw || !hy) {
    result(0, "%s: out of host memory", name);
    goto done;
  }
  for (int m = 0; m < M; m++)
    for (int k = 0; k < K; k++)
      hx[(size_t)m * K + k] = ri__float_to_half((float)((m % 16) * 64 + k % 64));
  for (int n = 0; n < N; n++)
    for (int k = 0; k < K; k++)
      hw[(size_t)n * K + k] = ri__float_to_half(k == n % K ? 1.f : 0.f);
  e = cudaMalloc(&dx, nx * 2);
  if (e == cudaSuccess) e = cudaMalloc(&dw, nw * 2);
  if (e == cudaSuccess) e = cudaMalloc(&dy, ny * 2);
  if (e == cudaSuccess) e = cudaMemcpy(dx, hx, nx * 2, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(dw, hw, nw * 2, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemset(dy, 0xff, ny * 2);
  ri__cu_convgemm_args a;
  memset(&a, 0, sizeof a);
  a.n = 1, a.ih = a.oh = H, a.iw = a.ow = W, a.c = a.k = a.ldw = K, a.m_out = N;
  a.kh = a.kw = a.sh = a.sw = a.dh = a.dw = 1;
  a.rows_per_img = M, a.y_img_stride = (int64_t)M * N, a.ldy = N, a.ldr = N;
  if (e == cudaSuccess) e = ri__cu_pwgemm_wg_tile(0, &a, bm, bn, 0, dx, dw, NULL, NULL, dy);
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  if (e == cudaSuccess) e = cudaMemcpy(hy, dy, ny * 2, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) {
    result(0, "%s: %s", name, cudaGetErrorString(e));
    goto done;
  }
  size_t bad = 0;
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      float want = (float)((m % 16) * 64 + (n % K) % 64), got = ri__half_to_float(hy[(size_t)m * N + n]);
      if (got == want) continue;
      if (bad++ < 6) {
        int v = (int)got;
        if (got == (float)v && v >= 0 && v < 1024)
          printf("  y[%d][%d] = %d: x of a row = %d mod 16, channel = %d mod 64 (want row %d, channel %d)\n",
                 m, n, v, v / 64, v % 64, m % 16, (n % K) % 64);
        else
          printf("  y[%d][%d] = %g (want %g)\n", m, n, got, want);
      }
    }
  result(bad == 0, "%s: %zu of %zu outputs differ", name, bad, ny);
done:
  cudaFree(dx), cudaFree(dw), cudaFree(dy);
  free(hx), free(hw), free(hy);
}

/* Refused arguments: cudaErrorInvalidValue before any device work (fake, aligned pointers). */
static void test_refusals(void) {
  ri__cu_convgemm_args a;
  memset(&a, 0, sizeof a);
  a.n = 1, a.ih = a.oh = 4, a.iw = a.ow = 4, a.c = a.k = a.ldw = 64, a.m_out = 32;
  a.kh = a.kw = a.sh = a.sw = a.dh = a.dw = 1;
  a.rows_per_img = 16, a.y_img_stride = 16 * 32, a.ldy = 32, a.ldr = 32;
  void *p = (void *)(uintptr_t)0x10000;
  char *odd = (char *)p + 2;
  struct {
    const char *what;
    int bm, bn, field, value;
    void *x;
  } bad[] = {
      {"bn 32", 0, 32, 0, 0, p},     {"stages 2", 0, 64, 5, 2, p},
      {"bm 96", 96, 64, 0, 0, p},    {"3x3 kernel", 0, 64, 1, 3, p},
      {"stride 2", 0, 64, 2, 2, p},  {"k = 12 (not a multiple of 8)", 0, 64, 3, 12, p},
      {"top pad 1", 0, 64, 4, 1, p}, {"x not 16-byte aligned", 0, 64, 0, 0, odd},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ri__cu_convgemm_args b = a;
    if (bad[i].field == 1) b.kh = b.kw = bad[i].value, b.k = b.ldw = 9 * b.c;
    if (bad[i].field == 2) b.sh = b.sw = bad[i].value, b.oh = b.ow = 2, b.rows_per_img = 4;
    if (bad[i].field == 3) b.c = b.k = b.ldw = bad[i].value;
    if (bad[i].field == 4) b.pad_t = bad[i].value;
    int stages = bad[i].field == 5 ? bad[i].value : 0;
    cudaError_t e = ri__cu_pwgemm_wg_tile(0, &b, bad[i].bm, bad[i].bn, stages, bad[i].x, p, NULL, NULL, p);
    result(e == cudaErrorInvalidValue, "wggemm refuses %s: %s", bad[i].what, cudaGetErrorString(e));
  }
  cudaGetLastError();
}

int main(void) {
  gpu_rand_seed(0x8f3a5c2d71e4b69bull);
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count < 1) {
    printf("SKIP test_cuda_wggemm: no CUDA device\n0 passed, 0 failed\n");
    return 0;
  }
  struct cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    printf("FAIL cudaGetDeviceProperties\n0 passed, 1 failed\n");
    return 1;
  }
  printf("# %s, compute capability %d.%d\n", prop.name, prop.major, prop.minor);
  test_refusals();
  static const wcase wc[] = {
      /* n  h   w   k    m   act a   b  bias res slice f32 bm  bn wscale tiles */
      {2, 19, 19, 96, 24, 0, 0, 0, 0, 0, 0, 0, 64, 64, 1, 1, "plain"},
      {3, 10, 10, 160, 96, 1, 0, 0, 1, 0, 0, 0, 128, 64, 1, 0, "bias + relu"},
      {2, 19, 19, 576, 160, 2, 0, 6, 1, 0, 0, 0, 128, 128, 8, 1, "clip(0, 6)"},
      {2, 10, 10, 960, 160, 1, 0, 0, 1, 1, 0, 0, 64, 128, 1, 0, "residual + relu"},
      {3, 5, 5, 32, 273, 0, 0, 0, 1, 1, 1, 0, 64, 128, 1, 0, "unaligned Concat slice, residual of odd pitch"},
      {2, 19, 19, 576, 96, 2, -0.25f, 0.75f, 1, 0, 2, 0, 128, 64, 1, 1, "aligned Concat slice"},
      {2, 10, 10, 16, 96, 0, 0, 0, 1, 0, 0, 1, 0, 128, 1, 0,
       "float32 output (float4 stores), K below one step"},
      {1, 7, 7, 32, 546, 1, 0, 0, 1, 0, 0, 1, 128, 64, 1, 0, "float32 output, N = 546 (element stores)"},
      {2, 3, 3, 160, 24, 2, 0, 6, 1, 1, 1, 1, 64, 64, 4, 0, "float32 output into a slice"},
      {1, 1, 1, 128, 546, 6, 0, 0, 1, 0, 0, 0, 64, 128, 4, 1, "M = 1, hard swish"},
      {2, 7, 9, 96, 96, 3, 0.1f, 0, 1, 1, 0, 0, 128, 128, 1, 0, "leaky relu, residual"},
      {2, 8, 8, 64, 64, 4, 0, 0, 0, 0, 0, 0, 64, 64, 2, 0, "sigmoid, exactly one tile per image"},
      {4, 19, 19, 576, 273, 0, 0, 0, 1, 0, 0, 0, 128, 128, 1, 1, "SSD class head"},
      {2, 38, 38, 16, 160, 2, 0, 6, 1, 1, 0, 0, 0, 64, 8, 0, "K = 16, residual + relu6"},
      {2, 10, 10, 960, 320, 0, 0, 0, 1, 0, 0, 0, 128, 128, 1, 1, "K = 960"},
  };
  int n_cases = (int)(sizeof wc / sizeof wc[0]);
  if (prop.major != 9 || prop.minor != 0) {
    /* A valid case must be refused as not supported. */
    ri__cu_convgemm_args a;
    memset(&a, 0, sizeof a);
    a.n = 1, a.ih = a.oh = a.iw = a.ow = 1, a.c = a.k = a.ldw = 64, a.m_out = 64;
    a.kh = a.kw = a.sh = a.sw = a.dh = a.dw = 1;
    a.rows_per_img = 1, a.y_img_stride = 64, a.ldy = 64, a.ldr = 64;
    void *p = (void *)(uintptr_t)0x10000;
    cudaError_t e = ri__cu_pwgemm_wg(0, &a, 64, p, p, NULL, NULL, p);
    result(e == cudaErrorNotSupported, "wggemm on compute capability %d.%d: %s (expected %s)", prop.major,
           prop.minor, cudaGetErrorString(e), cudaGetErrorString(cudaErrorNotSupported));
    cudaGetLastError();
    for (int i = 0; i < n_cases; i++)
      printf("SKIP wggemm %s: needs compute capability 9.0\n", wc[i].what);
  } else {
    static const int tiles[4][2] = {{64, 64}, {64, 128}, {128, 64}, {128, 128}};
    for (int i = 0; i < 4; i++)
      test_onehot(tiles[i][0], tiles[i][1]);
    for (int i = 0; i < n_cases; i++)
      test_case(&wc[i]);
  }
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
