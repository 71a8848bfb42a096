/* GPU test of the backend's own convolution kernels against a double-precision CPU reference on the same
 * half-rounded data: the tensor-core implicit GEMM (ri__cu_convgemm: 1x1 and k x k, strides, dilation,
 * asymmetric pads, bias, residual, activations, narrow and odd channel counts, output into a slice of a
 * larger tensor), the pointwise kernel (ri__cu_pwconv through its tactic, and each of its forms through
 * ri__cu_pwconv_v, the wide form's N up to 1280 included; all bit for bit against the tiled kernel with one K
 * segment, also on data made to give signed zeros: zero input pixels, weight rows of one sign, -0 biases and
 * residuals) and the depthwise kernel (ri__cu_dwconv, NHWC half). Inputs are fresh random numbers per case;
 * outputs are poisoned (NaN) before each launch, and every element outside the written slice must still be
 * poison afterwards. The fp32 kernels of fp32 engines (ri__cu_convgemm_f32 with its tactics, split K and
 * batch invariance; its pointwise kernel ri__cu_pwconv_f32 through the tactic, also bit for bit against the
 * tiled kernel with the same K segments; ri__cu_dwconv on NHWC float; ri__cu_stemconv with float output) get
 * float data and must be within 1e-5 of the double reference (fp32 arithmetic only). The depthwise and stem
 * kernels run in every variant that applies (ri__cu_dwconv_v, ri__cu_stemconv_v; the depthwise kernel in
 * every variant number, those that do not apply running variant 0), each checked against the reference and
 * bit for bit against variant 0, except the stem's tensor-core variants 3 and 4 (their own summation order),
 * which must stay within 5e-5 of the reference beyond the half output's rounding (they split input and
 * weights into half pairs); variant 4 (another load pipeline for variant 3's arithmetic) must give variant
 * 3's bits; with ReLU6 and half output, both must also give the bits of their float clip
 * (RI_CUDA_STEM_H2EPI=0) with their clip on packed halves. The 3xTF32 tensor-core kernel
 * (ri__cu_convgemm_tf32_tac) runs the fp32 GEMM's cases and tactics checks too, within the fp32 engines' 1e-4
 * (its error is printed: it should be near fp32's). The pointwise kernel's limits are checked on the host (N
 * 1280 and K 160 taken; N 1288, K 168 and an unknown variant refused, nothing launched), and so are those of
 * its deep form (k_pwconv_deep.cu: N <= 64 with 160 < K <= 1280 or a float32 output, bit for bit against the
 * tiled kernel with one K segment too, SSD's box predictors into their float32 slices included).
 *
 *   test_cuda_conv            one PASS/FAIL line per case, then "N passed, M failed"; exit 1 on failure
 *   RI_TEST_CONV=3xtf32       only the 3xTF32 kernel's cases (a short run under compute-sanitizer)
 *   RI_TEST_CONV=dw           only the depthwise cases (likewise)
 *   RI_TEST_CONV=pw           only the fp16 pointwise kernel's cases (likewise)
 *   RI_TEST_CONV=pwwide       only its cases of more than 160 output channels (the wide form, likewise)
 *   RI_TEST_CONV=pwdeep       only its cases of K > 160 or float32 output (the deep form, likewise)
 *
 * The error is max|got - ref| / max(max|ref|, 1) over the written elements; it must be <= 1e-3 (the half
 * output rounding is 2^-11 relative; accumulation is float). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "backend/cuda/kernels.h"
#include "core/half.h"
#include "gpu_rand.h"

static int g_pass, g_fail;
static int g_only_tf32; /* RI_TEST_CONV=3xtf32 */
static int g_only_dw;   /* RI_TEST_CONV=dw */
static int g_only_pw;   /* RI_TEST_CONV=pw (or pwwide) */
static int g_only_wide; /* RI_TEST_CONV=pwwide */
static int g_only_deep; /* RI_TEST_CONV=pwdeep */
static double act(int a, double x, double lo, double hi) {
  switch (a) {
  case 1: return x > 0 ? x : 0;
  case 2: return x < lo ? lo : x > hi ? hi : x;
  case 3: return x < 0 ? lo * x : x;                      /* leaky, slope lo */
  case 4: return 1.0 / (1.0 + exp(-x));                   /* sigmoid */
  case 5: return fmin(fmax(lo * x + hi, 0.0), 1.0);       /* hard sigmoid y = lo x + hi */
  case 6: return x * fmin(fmax(x / 6.0 + 0.5, 0.0), 1.0); /* hard swish */
  default: return x;
  }
}

#define CK(call)                                                                                             \
  do {                                                                                                       \
    cudaError_t e_ = (call);                                                                                 \
    if (e_ != cudaSuccess) {                                                                                 \
      printf("FAIL %s: %s (%s)\n", name, #call, cudaGetErrorString(e_));                                     \
      g_fail++;                                                                                              \
      goto done;                                                                                             \
    }                                                                                                        \
  } while (0)

typedef struct {
  int n, ih, iw, c, m, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, act, bias, res, slice;
} gcase;

/* Split-K resources shared by the cases (the counters must be back at 0 after every launch). */
static ri__cu_splitk g_sk;

/* Tactics of one geometry (every tile shape, segments in separate blocks or in one block) with the same
 * K segment length give bit-identical outputs, and split-K counters return to 0. */
static void test_tactics(const gcase *t, int seg) {
  if (g_only_tf32 || g_only_dw || g_only_pw) return;
  char name[200];
  snprintf(name, sizeof name, "convgemm tactics n=%d %dx%dx%d -> m=%d k=%dx%d seg=%d", t->n, t->ih, t->iw,
           t->c, t->m, t->kh, t->kw, seg);
  int oh = (t->ih + t->pt + t->pb - ((t->kh - 1) * t->dh + 1)) / t->sh + 1;
  int ow = (t->iw + t->pl + t->pr - ((t->kw - 1) * t->dw + 1)) / t->sw + 1;
  int k = t->kh * t->kw * t->c, ldw = (k + 7) / 8 * 8;
  size_t nx = (size_t)t->n * t->ih * t->iw * t->c, nw = (size_t)t->m * ldw,
         ny = (size_t)t->n * oh * ow * t->m;
  uint16_t *hx = malloc(nx * 2), *hw = malloc(nw * 2), *first = malloc(ny * 2), *got = malloc(ny * 2);
  void *dx = NULL, *dw = NULL, *dy = NULL;
  int runs = 0, same = 1;
  if (!hx || !hw || !first || !got) {
    printf("FAIL %s: out of host memory\n", name);
    g_fail++;
    goto done;
  }
  fill_half(hx, NULL, nx, 1.0);
  fill_half(hw, NULL, nw, 1.0 / sqrt((double)k));
  for (size_t i = 0; i < nw; i++)
    if ((int)(i % (size_t)ldw) >= k) hw[i] = 0;
  CK(cudaMalloc(&dx, nx * 2));
  CK(cudaMalloc(&dw, nw * 2));
  CK(cudaMalloc(&dy, ny * 2));
  CK(cudaMemcpy(dx, hx, nx * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dw, hw, nw * 2, cudaMemcpyHostToDevice));
  ri__cu_convgemm_args a;
  memset(&a, 0, sizeof a);
  a.n = t->n, a.ih = t->ih, a.iw = t->iw, a.c = t->c, a.oh = oh, a.ow = ow, a.m_out = t->m, a.k = k,
  a.ldw = ldw;
  a.kh = t->kh, a.kw = t->kw, a.sh = t->sh, a.sw = t->sw, a.dh = t->dh, a.dw = t->dw;
  a.pad_t = t->pt, a.pad_l = t->pl;
  a.rows_per_img = (int64_t)oh * ow, a.y_img_stride = a.rows_per_img * t->m, a.ldy = t->m, a.ldr = t->m;
  static const int tiles[4][2] = {{128, 64}, {64, 64}, {128, 32}, {64, 32}};
  for (int ti = 0; ti < 4; ti++)
    for (int split = 0; split <= 1; split++) {
      ri__cu_convgemm_tactic tac = {tiles[ti][0], tiles[ti][1], seg, split, 0};
      CK(cudaMemset(dy, 0xff, ny * 2));
      CK(ri__cu_convgemm_tac(0, &a, &tac, dx, dw, NULL, NULL, dy, &g_sk));
      CK(cudaDeviceSynchronize());
      CK(cudaMemcpy(runs ? got : first, dy, ny * 2, cudaMemcpyDeviceToHost));
      if (runs && memcmp(got, first, ny * 2) != 0) {
        same = 0;
        printf("FAIL %s: tile %dx%d split=%d differs from tile 128x64 in one block\n", name, tiles[ti][0],
               tiles[ti][1], split);
        g_fail++;
      }
      runs++;
    }
  int cnt[64];
  CK(cudaMemcpy(cnt, g_sk.counters, sizeof cnt, cudaMemcpyDeviceToHost));
  for (int i = 0; i < 64; i++)
    if (cnt[i] != 0) {
      printf("FAIL %s: split-K counter %d left at %d\n", name, i, cnt[i]);
      g_fail++;
      goto done;
    }
  if (same) {
    printf("PASS %s: %d tactics bit-identical\n", name, runs);
    g_pass++;
  }
done:
  cudaFree(dx);
  cudaFree(dw);
  cudaFree(dy);
  free(hx);
  free(hw);
  free(first);
  free(got);
}

/* pw: the pointwise kernel (ri__cu_convgemm_tac with pw set), checked against the reference and, bit for bit,
 * against the tiled kernel (tile 128x64, one K segment) on the same data. */
/* zeros (pw only): data with signed zeros (every third input pixel +0, weight rows of one sign, -0 bias and
 * residual entries), where the tiled kernel's all-zero k16 step decides the sign of a zero sum. */
static void test_gemm(const gcase *t, int split, int f32, int pw, int zeros) {
  if (g_only_tf32 || g_only_dw || (g_only_pw && !pw) || (g_only_wide && t->m <= 160) ||
      (g_only_deep && !(t->kh * t->kw * t->c > 160 || f32)))
    return;
  char name[300];
  snprintf(name, sizeof name,
           "%s n=%d %dx%dx%d -> m=%d k=%dx%d s=%d,%d d=%d,%d pads=%d,%d,%d,%d act=%d bias=%d res=%d "
           "slice=%d "
           "splitk=%s out=%s",
           pw ? "pwconv" : "convgemm", t->n, t->ih, t->iw, t->c, t->m, t->kh, t->kw, t->sh, t->sw, t->dh,
           t->dw, t->pt, t->pl, t->pb, t->pr, t->act, t->bias, t->res, t->slice, split ? "allowed" : "off",
           f32 ? "f32" : "f16");
  int oh = (t->ih + t->pt + t->pb - ((t->kh - 1) * t->dh + 1)) / t->sh + 1;
  int ow = (t->iw + t->pl + t->pr - ((t->kw - 1) * t->dw + 1)) / t->sw + 1;
  int k = t->kh * t->kw * t->c, ldw = (k + 7) / 8 * 8;
  size_t nx = (size_t)t->n * t->ih * t->iw * t->c, nw = (size_t)t->m * ldw, rows = (size_t)t->n * oh * ow;
  /* Output: dense, or a slice of channels [y_off, y_off + m) in rows of ldy, images 'extra' elements apart;
   * slice 2 as SSD's box predictors write theirs (rows of m channels back to back from offset 4, images 12
   * elements apart: the other predictors' anchors). */
  int64_t ldy = t->slice == 1 ? t->m + 5 : t->m, y_off = t->slice == 1 ? 3 : t->slice == 2 ? 4 : 0;
  int64_t rows_per_img = (int64_t)oh * ow, img_stride = rows_per_img * ldy + (t->slice == 1   ? 7
                                                                              : t->slice == 2 ? 12
                                                                                              : 0);
  size_t ny = (size_t)(t->n * img_stride);
  size_t ye = f32 ? 4 : 2; /* output element size */
  uint16_t *hx = malloc(nx * 2), *hw = malloc(nw * 2), *hr = malloc(rows * t->m * 2 + 2);
  unsigned char *hy = malloc(ny * ye), *hy2 = malloc(ny * ye);
  float *fx = malloc(nx * 4), *fw = malloc(nw * 4), *fr = malloc(rows * t->m * 4 + 4), *fb = malloc(t->m * 4);
  void *dx = NULL, *dw = NULL, *dr = NULL, *dy = NULL, *db = NULL;
  if (!hx || !hw || !hr || !hy || !hy2 || !fx || !fw || !fr || !fb) {
    printf("FAIL %s: out of host memory\n", name);
    g_fail++;
    goto done;
  }
  fill_half(hx, fx, nx, 1.0);
  fill_half(hw, fw, nw, 1.0 / sqrt((double)k));
  for (size_t i = 0; i < nw; i++) /* each weight row is zero from k to ldw */
    if ((int)(i % (size_t)ldw) >= k) hw[i] = 0, fw[i] = 0.f;
  fill_half(hr, fr, rows * t->m, 1.0);
  for (int j = 0; j < t->m; j++)
    fb[j] = (float)(urand() - 0.5);
  if (zeros) {
    for (size_t i = 0; i < nx; i++)
      if (i / (size_t)t->c % 3 == 0) hx[i] = 0, fx[i] = 0.f;
    for (size_t i = 0; i < nw; i++) {
      int j = (int)(i / (size_t)ldw), sign = j % 4 == 0 ? 1 : j % 4 == 1 ? 0 : -1; /* 1: negative row */
      if (sign >= 0 && (int)(i % (size_t)ldw) < k) hw[i] = (uint16_t)((hw[i] & 0x7fff) | (sign ? 0x8000 : 0));
      fw[i] = ri__half_to_float(hw[i]);
    }
    for (int j = 0; j < t->m; j++)
      if (j % 3 != 2) fb[j] = j % 3 == 0 ? -0.f : 0.f;
    for (size_t i = 0; i < rows * t->m; i++)
      if (i % 5 == 0) hr[i] = 0x8000, fr[i] = -0.f;
  }
  CK(cudaMalloc(&dx, nx * 2));
  CK(cudaMalloc(&dw, nw * 2));
  CK(cudaMalloc(&dr, rows * t->m * 2 + 2));
  CK(cudaMalloc(&dy, ny * ye));
  CK(cudaMalloc(&db, t->m * 4));
  CK(cudaMemcpy(dx, hx, nx * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dw, hw, nw * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dr, hr, rows * t->m * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(db, fb, t->m * 4, cudaMemcpyHostToDevice));
  CK(cudaMemset(dy, 0xff, ny * ye));
  ri__cu_convgemm_args a;
  memset(&a, 0, sizeof a);
  a.n = t->n, a.ih = t->ih, a.iw = t->iw, a.c = t->c, a.oh = oh, a.ow = ow, a.m_out = t->m, a.k = k,
  a.ldw = ldw;
  a.kh = t->kh, a.kw = t->kw, a.sh = t->sh, a.sw = t->sw, a.dh = t->dh, a.dw = t->dw;
  a.pad_t = t->pt, a.pad_l = t->pl;
  a.rows_per_img = rows_per_img, a.y_img_stride = img_stride, a.ldy = ldy, a.y_off = y_off, a.ldr = t->m;
  a.act = t->act, a.act_a = -0.25f, a.act_b = 0.75f;
  a.y_f32 = f32;
  if (!ri__cu_convgemm_supported(&a) || (pw && !ri__cu_pwconv_supported(&a))) {
    printf("FAIL %s: arguments refused\n", name);
    g_fail++;
    goto done;
  }
  size_t differ = 0, vdiffer[RI__CU_PW_VARIANTS] = {0};
  if (pw) {
    /* the tiled kernel first, then each form of the pointwise kernel, then its tactic (the default form),
     * each over fresh poison */
    ri__cu_convgemm_tactic tiled = {128, 64, 0, 0, 0}, pointwise = {0, 0, 0, -1, 1};
    CK(ri__cu_convgemm_tac(0, &a, &tiled, dx, dw, t->bias ? db : NULL, t->res ? dr : NULL, dy, NULL));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(hy2, dy, ny * ye, cudaMemcpyDeviceToHost));
    for (int v = 0; v < RI__CU_PW_VARIANTS; v++) {
      CK(cudaMemset(dy, 0xff, ny * ye));
      CK(ri__cu_pwconv_v(0, &a, v, dx, dw, t->bias ? db : NULL, t->res ? dr : NULL, dy));
      CK(cudaDeviceSynchronize());
      CK(cudaMemcpy(hy, dy, ny * ye, cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < ny * ye; i++)
        vdiffer[v] += hy[i] != hy2[i];
      differ += vdiffer[v];
    }
    CK(cudaMemset(dy, 0xff, ny * ye));
    CK(ri__cu_convgemm_tac(0, &a, &pointwise, dx, dw, t->bias ? db : NULL, t->res ? dr : NULL, dy, NULL));
  } else {
    CK(ri__cu_convgemm(0, &a, dx, dw, t->bias ? db : NULL, t->res ? dr : NULL, dy, split ? &g_sk : NULL));
  }
  CK(cudaDeviceSynchronize());
  if (split) {
    int cnt[64];
    CK(cudaMemcpy(cnt, g_sk.counters, sizeof cnt, cudaMemcpyDeviceToHost));
    for (int i = 0; i < 64; i++)
      if (cnt[i] != 0) {
        printf("FAIL %s: split-K counter %d left at %d\n", name, i, cnt[i]);
        g_fail++;
        goto done;
      }
  }
  CK(cudaMemcpy(hy, dy, ny * ye, cudaMemcpyDeviceToHost));
  if (pw)
    for (size_t i = 0; i < ny * ye; i++)
      differ += hy[i] != hy2[i];
  double maxref = 0, maxerr = 0;
  size_t written = 0, bad_poison = 0;
  unsigned char *mark = calloc(ny, 1);
  if (!mark) {
    printf("FAIL %s: out of host memory\n", name);
    g_fail++;
    goto done;
  }
  for (int b = 0; b < t->n; b++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        for (int j = 0; j < t->m; j++) {
          double s = t->bias ? fb[j] : 0.0;
          for (int ky = 0; ky < t->kh; ky++)
            for (int kx = 0; kx < t->kw; kx++) {
              int iy = oy * t->sh - t->pt + ky * t->dh, ix = ox * t->sw - t->pl + kx * t->dw;
              if (iy < 0 || iy >= t->ih || ix < 0 || ix >= t->iw) continue;
              const float *xp = fx + (((size_t)b * t->ih + iy) * t->iw + ix) * t->c;
              const float *wp = fw + (size_t)j * ldw + (size_t)(ky * t->kw + kx) * t->c;
              for (int ci = 0; ci < t->c; ci++)
                s += (double)xp[ci] * wp[ci];
            }
          size_t m = ((size_t)b * oh + oy) * ow + ox;
          if (t->res) s += fr[m * t->m + j];
          s = act(t->act, s, -0.25, 0.75);
          size_t yi = (size_t)(b * img_stride + (int64_t)(oy * ow + ox) * ldy + y_off + j);
          mark[yi] = 1;
          double got;
          if (f32) {
            float fv;
            memcpy(&fv, hy + yi * 4, 4);
            got = fv;
            /* The float output is the half result widened: exactly a half value. */
            if (!isnan(fv) && ri__half_to_float(ri__float_to_half(fv)) != fv) got = NAN;
          } else {
            uint16_t hv;
            memcpy(&hv, hy + yi * 2, 2);
            got = ri__half_to_float(hv);
          }
          double e = isnan(got) ? INFINITY : fabs(got - s);
          if (e > maxerr) maxerr = e;
          if (fabs(s) > maxref) maxref = fabs(s);
          written++;
        }
  for (size_t i = 0; i < ny; i++)
    for (size_t b = 0; b < ye; b++)
      if (!mark[i] && hy[i * ye + b] != 0xff) bad_poison++;
  free(mark);
  double rel = maxerr / (maxref > 1 ? maxref : 1);
  size_t nz = 0, negz = 0; /* zeros cases: the signed zeros of the tiled kernel's output (some must exist) */
  if (pw && zeros)
    for (size_t i = 0; i + 1 < ny * ye; i += 2) {
      uint16_t hv = (uint16_t)(hy2[i] | hy2[i + 1] << 8);
      nz += hv == 0, negz += hv == 0x8000;
    }
  int ok = rel <= 1e-3 && bad_poison == 0 && differ == 0 && (!zeros || nz + negz > 0);
  printf("%s %s: max_rel_err=%.3g (max|ref|=%.3g, %zu outputs, %zu written outside the slice)",
         ok ? "PASS" : "FAIL", name, rel, maxref, written, bad_poison);
  if (pw) {
    printf(", %zu bytes differ from the tiled kernel (forms 0..%d:", differ, RI__CU_PW_VARIANTS - 1);
    for (int v = 0; v < RI__CU_PW_VARIANTS; v++)
      printf(" %zu", vdiffer[v]);
    printf(")");
    if (zeros) printf(", the tiled output has %zu +0 and %zu -0", nz, negz);
  }
  printf("\n");
  if (ok)
    g_pass++;
  else
    g_fail++;
done:
  cudaFree(dx), cudaFree(dw), cudaFree(dr), cudaFree(dy), cudaFree(db);
  free(hx), free(hw), free(hr), free(hy), free(hy2), free(fx), free(fw), free(fr), free(fb);
}

typedef struct {
  int n, ih, iw, c, m, kh, kw, s, pt, pl, pb, pr, act, nchw_f32;
} scase;

/* The spacing of half values around |x| (subnormal spacing below the normal range). */
static double half_ulp(double x) {
  x = fabs(x);
  if (x < 0x1p-14) return 0x1p-24;
  int e;
  frexp(x, &e); /* x = f 2^e, f in [0.5, 1) */
  return ldexp(1.0, e - 11);
}

/* The direct few-channel kernel: input float32 NCHW (the caller's image as given) or half NHWC. */
static void test_stem(const scase *t, int yf32) {
  if (g_only_tf32 || g_only_dw || g_only_pw) return;
  char name[200];
  snprintf(name, sizeof name,
           "stemconv n=%d %dx%dx%d -> m=%d k=%dx%d s=%d pads=%d,%d,%d,%d act=%d input=%s output=%s", t->n,
           t->ih, t->iw, t->c, t->m, t->kh, t->kw, t->s, t->pt, t->pl, t->pb, t->pr, t->act,
           t->nchw_f32 ? "nchw_f32" : "nhwc_f16", yf32 ? "f32" : "f16");
  /* float output from float input: fp32 arithmetic only; otherwise the half rounding */
  const double tol = yf32 && t->nchw_f32 ? 1e-5 : 1e-3;
  const size_t ye = yf32 ? 4 : 2;
  int oh = (t->ih + t->pt + t->pb - t->kh) / t->s + 1, ow = (t->iw + t->pl + t->pr - t->kw) / t->s + 1;
  int k = t->kh * t->kw * t->c;
  size_t nx = (size_t)t->n * t->ih * t->iw * t->c, ny = (size_t)t->n * oh * ow * t->m, nw = (size_t)k * t->m;
  float *fx = malloc(nx * 4), *fw = malloc(nw * 4), *fb = malloc(t->m * 4);
  uint16_t *hx = malloc(nx * 2);
  unsigned char *hy = malloc(ny * ye), *hy2 = malloc(ny * ye), *hy3 = malloc(ny * ye);
  ri__cu_stem_host_weights *hw = malloc(sizeof *hw);
  /* the activation's parameters: a slope for leaky ReLU, y = 0.2 x + 0.5 for hard sigmoid, else 0 .. 6 */
  const double act_lo = t->act == 3 ? 0.1 : t->act == 5 ? 0.2 : 0.0, act_hi = t->act == 5 ? 0.5 : 6.0;
  int have3 = 0;
  void *dx = NULL, *dw = NULL, *dy = NULL, *db = NULL;
  int nv;
  if (!fx || !fw || !fb || !hx || !hy || !hy2 || !hy3 || !hw) {
    printf("FAIL %s: out of host memory\n", name);
    g_fail++;
    goto done;
  }
  /* fx is the logical NCHW tensor; half inputs hold its rounded values in NHWC order. */
  for (size_t i = 0; i < nx; i++)
    fx[i] = (float)(urand() * 2.0 - 1.0);
  if (!t->nchw_f32)
    for (int b = 0; b < t->n; b++)
      for (int ci = 0; ci < t->c; ci++)
        for (int yy = 0; yy < t->ih; yy++)
          for (int xx = 0; xx < t->iw; xx++) {
            size_t li = (((size_t)b * t->c + ci) * t->ih + yy) * t->iw + xx;
            size_t hi = (((size_t)b * t->ih + yy) * t->iw + xx) * t->c + ci;
            hx[hi] = ri__float_to_half(fx[li]);
            fx[li] = ri__half_to_float(hx[hi]);
          }
  for (size_t i = 0; i < nw; i++)
    fw[i] = (float)((urand() * 2.0 - 1.0) / sqrt((double)k));
  for (int j = 0; j < t->m; j++)
    fb[j] = (float)(urand() - 0.5);
  CK(cudaMalloc(&dx, nx * 4));
  CK(cudaMalloc(&dw, nw * 4));
  CK(cudaMalloc(&dy, ny * ye));
  CK(cudaMalloc(&db, t->m * 4));
  CK(cudaMemcpy(dx, t->nchw_f32 ? (void *)fx : (void *)hx, nx * (t->nchw_f32 ? 4 : 2),
                cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dw, fw, nw * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(db, fb, t->m * 4, cudaMemcpyHostToDevice));
  ri__cu_stemconv_args a;
  memset(&a, 0, sizeof a);
  a.n = t->n, a.c = t->c, a.ih = t->ih, a.iw = t->iw, a.oh = oh, a.ow = ow, a.m = t->m, a.k = k;
  a.kh = t->kh, a.kw = t->kw, a.sh = a.sw = t->s, a.dh = a.dw = 1, a.pad_t = t->pt, a.pad_l = t->pl;
  a.xs_n = (int64_t)t->c * t->ih * t->iw;
  if (t->nchw_f32)
    a.xs_c = (int64_t)t->ih * t->iw, a.xs_h = t->iw, a.xs_w = 1;
  else
    a.xs_c = 1, a.xs_h = (int64_t)t->iw * t->c, a.xs_w = t->c;
  a.act = t->act, a.act_a = (float)act_lo, a.act_b = (float)act_hi;
  a.y_f32 = yf32;
  /* the weights as variant 1 takes them */
  memset(hw, 0, sizeof *hw);
  if (k == RI__CU_STEM_VK && t->m <= RI__CU_STEM_VM) {
    for (int kk = 0; kk < k; kk++)
      for (int j = 0; j < t->m; j++)
        hw->w[kk * RI__CU_STEM_VM + j] = fw[(size_t)kk * t->m + j];
    memcpy(hw->b, fb, (size_t)t->m * 4);
  }
  /* every kernel variant that applies: against the reference, and bit for bit against variant 0 (the exact
   * ones) or within the half output's rounding of the reference (the tensor-core variant 3) */
  nv = ri__cu_stemconv_variants(&a);
  for (int v = 0; v < nv; v++) {
    if (!ri__cu_stemconv_variant_applies(&a, v)) continue;
    CK(cudaMemset(dy, 0xff, ny * ye));
    CK(ri__cu_stemconv_v(0, &a, v, dx, t->nchw_f32 ? RI_DTYPE_FLOAT32 : RI_DTYPE_FLOAT16, dw, db, hw, dy));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(v ? hy2 : hy, dy, ny * ye, cudaMemcpyDeviceToHost));
    const unsigned char *got_y = v ? hy2 : hy;
    double maxref = 0, maxerr = 0, excess = 0;
    for (int b = 0; b < t->n; b++)
      for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
          for (int j = 0; j < t->m; j++) {
            double s = fb[j];
            for (int ky = 0; ky < t->kh; ky++)
              for (int kx = 0; kx < t->kw; kx++) {
                int iy = oy * t->s - t->pt + ky, ix = ox * t->s - t->pl + kx;
                if (iy < 0 || iy >= t->ih || ix < 0 || ix >= t->iw) continue;
                for (int ci = 0; ci < t->c; ci++)
                  s += (double)fx[(((size_t)b * t->c + ci) * t->ih + iy) * t->iw + ix] *
                       fw[(size_t)((ky * t->kw + kx) * t->c + ci) * t->m + j];
              }
            s = act(t->act, s, act_lo, act_hi);
            size_t yi = (((size_t)b * oh + oy) * ow + ox) * t->m + j;
            double got;
            if (yf32) {
              float fv;
              memcpy(&fv, got_y + yi * 4, 4);
              got = fv;
            } else {
              uint16_t hv;
              memcpy(&hv, got_y + yi * 2, 2);
              got = ri__half_to_float(hv);
            }
            double e = isnan(got) ? INFINITY : fabs(got - s);
            if (e > maxerr) maxerr = e;
            if (fabs(s) > maxref) maxref = fabs(s);
            if (!yf32 && e - 0.5 * half_ulp(s) > excess) excess = e - 0.5 * half_ulp(s);
          }
    double rel = maxerr / (maxref > 1 ? maxref : 1);
    excess /= maxref > 1 ? maxref : 1;
    int exact = v < RI__CU_STEM_EXACT;
    int same = v == 0 || memcmp(hy, hy2, ny * ye) == 0;
    /* variant 4 runs variant 3's arithmetic: its bits (variant 3 applies wherever 4 does) */
    int as3 = v != 4 || (have3 && memcmp(hy3, hy2, ny * ye) == 0);
    if (v == 3) memcpy(hy3, hy2, ny * ye), have3 = 1;
    /* variants 3 and 4 clip on packed halves where they can (ReLU6 with half output): the bits of the float
     * clip, which RI_CUDA_STEM_H2EPI=0 keeps */
    int as_f32clip = 1;
    if (v >= 3 && t->act == 2 && !yf32) {
      const char *old = getenv("RI_CUDA_STEM_H2EPI");
      char *keep = old ? strdup(old) : NULL;
      setenv("RI_CUDA_STEM_H2EPI", "0", 1);
      CK(cudaMemset(dy, 0xff, ny * ye));
      CK(ri__cu_stemconv_v(0, &a, v, dx, t->nchw_f32 ? RI_DTYPE_FLOAT32 : RI_DTYPE_FLOAT16, dw, db, hw, dy));
      CK(cudaDeviceSynchronize());
      CK(cudaMemcpy(hy, dy, ny * ye, cudaMemcpyDeviceToHost));
      if (keep)
        setenv("RI_CUDA_STEM_H2EPI", keep, 1);
      else
        unsetenv("RI_CUDA_STEM_H2EPI");
      free(keep);
      as_f32clip = memcmp(hy, hy2, ny * ye) == 0;
      /* hy held variant 0's output: recomputed no more (v > 0 compares it only for the exact variants) */
    }
    /* the tensor-core variants: beyond the output's rounding by float accumulation only (rounding the input
     * or the weights to half would leave about 1e-4) */
    int ok = rel <= tol && (exact ? same : excess <= 5e-5) && as3 && as_f32clip;
    printf("%s %s variant %d/%d: max_rel_err=%.3g (max|ref|=%.3g)", ok ? "PASS" : "FAIL", name, v, nv, rel,
           maxref);
    if (!yf32) printf(", beyond half rounding %.3g", excess);
    if (!as_f32clip) printf(", bits differ from the float clip's (RI_CUDA_STEM_H2EPI=0)");
    printf("%s\n", v == 0 ? ""
                   : v == 4
                       ? (as3 ? ", own summation order, bits of variant 3" : ", bits differ from variant 3")
                   : !exact ? ", own summation order"
                   : same   ? ", bits of variant 0"
                            : ", bits differ from variant 0");
    if (ok)
      g_pass++;
    else
      g_fail++;
  }
done:
  cudaFree(dx), cudaFree(dw), cudaFree(dy), cudaFree(db);
  free(fx), free(fw), free(fb), free(hx), free(hy), free(hy2), free(hy3), free(hw);
}

typedef struct {
  int n, ih, iw, c, s, pt, pl, pb, pr, act, bias;
} dcase;

/* Depthwise arguments of case t (NHWC, 3x3, ReLU6-style bounds for the activation). */
static void dw_args(const dcase *t, int oh, int ow, ri__cu_dwconv_args *a) {
  memset(a, 0, sizeof *a);
  a->n = t->n, a->c = t->c, a->ih = t->ih, a->iw = t->iw, a->oh = oh, a->ow = ow;
  a->kh = a->kw = 3, a->sh = a->sw = t->s, a->dh = a->dw = 1, a->pad_t = t->pt, a->pad_l = t->pl;
  a->nhwc = 1, a->act = t->act, a->act_a = 0.f, a->act_b = 6.f;
}

/* One PASS/FAIL line for variant v of nv: got (the outputs as floats) against the double reference of
 * inputs fx, weights fw and bias fb, relative error <= tol, and (same) bit-identical to variant 0. */
static void dw_verdict(const dcase *t, const char *name, const float *fx, const float *fw, const float *fb,
                       const float *got_y, int oh, int ow, int v, int nv, int same, double tol) {
  double maxref = 0, maxerr = 0;
  for (int b = 0; b < t->n; b++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        for (int ch = 0; ch < t->c; ch++) {
          double sum = t->bias ? fb[ch] : 0.0;
          for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
              int iy = oy * t->s - t->pt + ky, ix = ox * t->s - t->pl + kx;
              if (iy < 0 || iy >= t->ih || ix < 0 || ix >= t->iw) continue;
              sum += (double)fx[(((size_t)b * t->ih + iy) * t->iw + ix) * t->c + ch] *
                     fw[(ky * 3 + kx) * t->c + ch];
            }
          sum = act(t->act, sum, 0.0, 6.0);
          double got = got_y[(((size_t)b * oh + oy) * ow + ox) * t->c + ch];
          double e = isnan(got) ? INFINITY : fabs(got - sum);
          if (e > maxerr) maxerr = e;
          if (fabs(sum) > maxref) maxref = fabs(sum);
        }
  double rel = maxerr / (maxref > 1 ? maxref : 1);
  int ok = rel <= tol && same;
  printf("%s %s variant %d/%d: max_rel_err=%.3g (max|ref|=%.3g)%s\n", ok ? "PASS" : "FAIL", name, v, nv, rel,
         maxref,
         v == 0 ? ""
         : same ? ", bits of variant 0"
                : ", bits differ from variant 0");
  if (ok)
    g_pass++;
  else
    g_fail++;
}

static void test_dw(const dcase *t) {
  if (g_only_tf32 || g_only_pw) return;
  char name[200];
  snprintf(name, sizeof name, "dwconv_nhwc_f16 n=%d %dx%dx%d 3x3 s=%d pads=%d,%d,%d,%d act=%d bias=%d", t->n,
           t->ih, t->iw, t->c, t->s, t->pt, t->pl, t->pb, t->pr, t->act, t->bias);
  int oh = (t->ih + t->pt + t->pb - 3) / t->s + 1, ow = (t->iw + t->pl + t->pr - 3) / t->s + 1;
  size_t nx = (size_t)t->n * t->ih * t->iw * t->c, ny = (size_t)t->n * oh * ow * t->c, nw = 9 * (size_t)t->c;
  uint16_t *hx = malloc(nx * 2), *hw = malloc(nw * 2), *hy = malloc(ny * 2), *hy2 = malloc(ny * 2);
  float *fx = malloc(nx * 4), *fw = malloc(nw * 4), *fb = malloc(t->c * 4), *gy = malloc(ny * 4);
  void *dx = NULL, *dw = NULL, *dy = NULL, *db = NULL;
  int nv;
  if (!hx || !hw || !hy || !hy2 || !fx || !fw || !fb || !gy) {
    printf("FAIL %s: out of host memory\n", name);
    g_fail++;
    goto done;
  }
  fill_half(hx, fx, nx, 1.0);
  fill_half(hw, fw, nw, 0.5);
  for (int j = 0; j < t->c; j++)
    fb[j] = (float)(urand() - 0.5);
  CK(cudaMalloc(&dx, nx * 2));
  CK(cudaMalloc(&dw, nw * 2));
  CK(cudaMalloc(&dy, ny * 2));
  CK(cudaMalloc(&db, t->c * 4));
  CK(cudaMemcpy(dx, hx, nx * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dw, hw, nw * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(db, fb, t->c * 4, cudaMemcpyHostToDevice));
  ri__cu_dwconv_args a;
  dw_args(t, oh, ow, &a);
  /* every kernel variant: against the reference, and bit for bit against variant 0 (a variant that does not
   * apply, v >= nv, runs variant 0: e.g. the shared-memory ones where C % 16 != 0) */
  nv = ri__cu_dwconv_variants(RI_DTYPE_FLOAT16, &a);
  for (int v = 0; v < RI__CU_DW_VARIANTS; v++) {
    CK(cudaMemset(dy, 0xff, ny * 2));
    CK(ri__cu_dwconv_v(0, RI_DTYPE_FLOAT16, &a, v, dx, dw, t->bias ? db : NULL, dy));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(v ? hy2 : hy, dy, ny * 2, cudaMemcpyDeviceToHost));
    const uint16_t *got_h = v ? hy2 : hy;
    for (size_t i = 0; i < ny; i++)
      gy[i] = ri__half_to_float(got_h[i]);
    dw_verdict(t, name, fx, fw, fb, gy, oh, ow, v, nv, v == 0 || memcmp(hy, hy2, ny * 2) == 0, 1e-3);
  }
done:
  cudaFree(dx), cudaFree(dw), cudaFree(dy), cudaFree(db);
  free(hx), free(hw), free(hy), free(hy2), free(fx), free(fw), free(fb), free(gy);
}

/* ---- the fp32 kernels of fp32 engines: float data, error <= 1e-5 against the double reference ---- */

static void fill_float(float *f, size_t n, double scale) {
  for (size_t i = 0; i < n; i++)
    f[i] = (float)((urand() * 2.0 - 1.0) * scale);
}

/* Arguments of the fp32 GEMM for a case, dense output. */
static void f32_args(const gcase *t, int n, ri__cu_convgemm_args *a, int *oh, int *ow) {
  *oh = (t->ih + t->pt + t->pb - ((t->kh - 1) * t->dh + 1)) / t->sh + 1;
  *ow = (t->iw + t->pl + t->pr - ((t->kw - 1) * t->dw + 1)) / t->sw + 1;
  memset(a, 0, sizeof *a);
  a->n = n, a->ih = t->ih, a->iw = t->iw, a->c = t->c, a->oh = *oh, a->ow = *ow, a->m_out = t->m;
  a->k = t->kh * t->kw * t->c, a->ldw = (t->m + 3) / 4 * 4;
  a->kh = t->kh, a->kw = t->kw, a->sh = t->sh, a->sw = t->sw, a->dh = t->dh, a->dw = t->dw;
  a->pad_t = t->pt, a->pad_l = t->pl;
  a->rows_per_img = (int64_t)*oh * *ow, a->y_img_stride = a->rows_per_img * t->m, a->ldy = t->m,
  a->ldr = t->m;
  a->act = t->act, a->act_a = -0.25f, a->act_b = 0.75f;
}

/* ri__cu_convgemm_f32 with the heuristic tactic (split K allowed or not) against a double reference: bias,
 * residual, activation, output into a slice; every element outside the slice must still be poison.
 * pw: the pointwise kernel's tactic instead, and its output bit for bit against the tiled kernel's with one
 * K segment. */
static void test_gemm_f32(const gcase *t, int split, int pw, int tf32) {
  if ((g_only_tf32 && !tf32) || g_only_dw || g_only_pw) return;
  char name[300];
  snprintf(name, sizeof name,
           "%s n=%d %dx%dx%d -> m=%d k=%dx%d s=%d,%d d=%d,%d pads=%d,%d,%d,%d act=%d bias=%d res=%d "
           "slice=%d splitk=%s",
           pw     ? "pwconv_f32"
           : tf32 ? "convgemm_3xtf32"
                  : "convgemm_f32",
           t->n, t->ih, t->iw, t->c, t->m, t->kh, t->kw, t->sh, t->sw, t->dh, t->dw, t->pt, t->pl, t->pb,
           t->pr, t->act, t->bias, t->res, t->slice, split ? "allowed" : "off");
  ri__cu_convgemm_args a;
  int oh, ow;
  f32_args(t, t->n, &a, &oh, &ow);
  int k = a.k, ldw = a.ldw;
  size_t nx = (size_t)t->n * t->ih * t->iw * t->c, nw = (size_t)k * ldw, rows = (size_t)t->n * oh * ow;
  int64_t ldy = t->slice ? t->m + 5 : t->m, y_off = t->slice ? 3 : 0;
  int64_t img_stride = a.rows_per_img * ldy + (t->slice ? 7 : 0);
  size_t ny = (size_t)(t->n * img_stride);
  float *fx = malloc(nx * 4), *fw = malloc(nw * 4), *fr = malloc(rows * t->m * 4 + 4), *fb = malloc(t->m * 4),
        *fy = malloc(ny * 4), *ft = pw ? malloc(ny * 4) : NULL;
  unsigned char *mark = calloc(ny, 1);
  void *dx = NULL, *dw = NULL, *dr = NULL, *dy = NULL, *db = NULL;
  size_t differ = 0;
  if (!fx || !fw || !fr || !fb || !fy || !mark || (pw && !ft)) {
    printf("FAIL %s: out of host memory\n", name);
    g_fail++;
    goto done;
  }
  fill_float(fx, nx, 1.0);
  fill_float(fw, nw, 1.0 / sqrt((double)k));
  for (size_t i = 0; i < nw; i++) /* each k row is zero from m to ldw */
    if ((int)(i % (size_t)ldw) >= t->m) fw[i] = 0.f;
  fill_float(fr, rows * t->m, 1.0);
  for (int j = 0; j < t->m; j++)
    fb[j] = (float)(urand() - 0.5);
  CK(cudaMalloc(&dx, nx * 4));
  CK(cudaMalloc(&dw, nw * 4));
  CK(cudaMalloc(&dr, rows * t->m * 4 + 4));
  CK(cudaMalloc(&dy, ny * 4));
  CK(cudaMalloc(&db, t->m * 4));
  CK(cudaMemcpy(dx, fx, nx * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dw, fw, nw * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dr, fr, rows * t->m * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(db, fb, t->m * 4, cudaMemcpyHostToDevice));
  CK(cudaMemset(dy, 0xff, ny * 4));
  a.y_img_stride = img_stride, a.ldy = ldy, a.y_off = y_off;
  if (!ri__cu_convgemm_f32_supported(&a) || (pw && !ri__cu_pwconv_f32_supported(&a))) {
    printf("FAIL %s: arguments refused\n", name);
    g_fail++;
    goto done;
  }
  if (pw) {
    /* the tiled kernel first (one segment, one block per tile), then the pointwise kernel */
    ri__cu_convgemm_tactic tiled = {0, 0, 0, 0, 0}, pwt = {0, 0, 0, -1, 1};
    CK(ri__cu_convgemm_f32_tac(0, &a, &tiled, dx, dw, t->bias ? db : NULL, t->res ? dr : NULL, dy, NULL));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(ft, dy, ny * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemset(dy, 0xff, ny * 4));
    CK(ri__cu_convgemm_f32_tac(0, &a, &pwt, dx, dw, t->bias ? db : NULL, t->res ? dr : NULL, dy, NULL));
  } else if (tf32) {
    CK(ri__cu_convgemm_tf32_tac(0, &a, NULL, dx, dw, t->bias ? db : NULL, t->res ? dr : NULL, dy,
                                split ? &g_sk : NULL));
  } else {
    CK(ri__cu_convgemm_f32_tac(0, &a, NULL, dx, dw, t->bias ? db : NULL, t->res ? dr : NULL, dy,
                               split ? &g_sk : NULL));
  }
  CK(cudaDeviceSynchronize());
  CK(cudaMemcpy(fy, dy, ny * 4, cudaMemcpyDeviceToHost));
  if (pw)
    for (size_t i = 0; i < ny; i++)
      differ += memcmp(&fy[i], &ft[i], 4) != 0;
  double maxref = 0, maxerr = 0;
  size_t bad_poison = 0;
  for (int b = 0; b < t->n; b++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        for (int j = 0; j < t->m; j++) {
          double sum = t->bias ? fb[j] : 0.0;
          for (int ky = 0; ky < t->kh; ky++)
            for (int kx = 0; kx < t->kw; kx++) {
              int iy = oy * t->sh - t->pt + ky * t->dh, ix = ox * t->sw - t->pl + kx * t->dw;
              if (iy < 0 || iy >= t->ih || ix < 0 || ix >= t->iw) continue;
              const float *xp = fx + (((size_t)b * t->ih + iy) * t->iw + ix) * t->c;
              const float *wp = fw + (size_t)(ky * t->kw + kx) * t->c * ldw + j;
              for (int ci = 0; ci < t->c; ci++)
                sum += (double)xp[ci] * wp[(size_t)ci * ldw];
            }
          size_t m = ((size_t)b * oh + oy) * ow + ox;
          if (t->res) sum += fr[m * t->m + j];
          sum = act(t->act, sum, -0.25, 0.75);
          size_t yi = (size_t)(b * img_stride + (int64_t)(oy * ow + ox) * ldy + y_off + j);
          mark[yi] = 1;
          double e = isnan(fy[yi]) ? INFINITY : fabs(fy[yi] - sum);
          if (e > maxerr) maxerr = e;
          if (fabs(sum) > maxref) maxref = fabs(sum);
        }
  for (size_t i = 0; i < ny; i++) {
    uint32_t bits;
    memcpy(&bits, &fy[i], 4);
    if (!mark[i] && bits != 0xffffffffu) bad_poison++;
  }
  double rel = maxerr / (maxref > 1 ? maxref : 1);
  int ok = rel <= (tf32 ? 1e-4 : 1e-5) && bad_poison == 0 && differ == 0;
  printf("%s %s: max_rel_err=%.3g (max|ref|=%.3g, %zu written outside the slice", ok ? "PASS" : "FAIL", name,
         rel, maxref, bad_poison);
  if (pw) printf(", %zu elements differ from the tiled kernel", differ);
  printf(")\n");
  if (ok)
    g_pass++;
  else
    g_fail++;
done:
  cudaFree(dx), cudaFree(dw), cudaFree(dr), cudaFree(dy), cudaFree(db);
  free(fx), free(fw), free(fr), free(fb), free(fy), free(ft), free(mark);
}

/* fp32 GEMM tactics with one segment length: every tile shape, segments in one block or in separate blocks
 * (with the second kernel), and the pointwise kernel where it runs, give the same bits; and the first image
 * alone (batch 1) gets the same bits as within the batch. */
static void test_tactics_f32(const gcase *t, int seg, int tf32) {
  if ((g_only_tf32 && !tf32) || g_only_dw || g_only_pw) return;
  char name[200];
  snprintf(name, sizeof name, "%s tactics n=%d %dx%dx%d -> m=%d k=%dx%d seg=%d",
           tf32 ? "convgemm_3xtf32" : "convgemm_f32", t->n, t->ih, t->iw, t->c, t->m, t->kh, t->kw, seg);
  void (*tile_of)(int, int *, int *) = tf32 ? ri__cu_convgemm_tf32_tile : ri__cu_convgemm_f32_tile;
  cudaError_t (*run)(cudaStream_t, const ri__cu_convgemm_args *, const ri__cu_convgemm_tactic *, const void *,
                     const void *, const float *, const void *, void *, const ri__cu_splitk *) =
      tf32 ? ri__cu_convgemm_tf32_tac : ri__cu_convgemm_f32_tac;
  ri__cu_convgemm_args a;
  int oh, ow;
  f32_args(t, t->n, &a, &oh, &ow);
  size_t nx = (size_t)t->n * t->ih * t->iw * t->c, nw = (size_t)a.k * a.ldw,
         ny = (size_t)t->n * oh * ow * t->m, ny1 = ny / (size_t)t->n;
  float *fx = malloc(nx * 4), *fw = malloc(nw * 4), *fb = malloc(t->m * 4), *first = malloc(ny * 4),
        *got = malloc(ny * 4);
  void *dx = NULL, *dw = NULL, *dy = NULL, *db = NULL;
  int runs = 0, same = 1;
  if (!fx || !fw || !fb || !first || !got) {
    printf("FAIL %s: out of host memory\n", name);
    g_fail++;
    goto done;
  }
  fill_float(fx, nx, 1.0);
  fill_float(fw, nw, 1.0 / sqrt((double)a.k));
  for (int j = 0; j < t->m; j++)
    fb[j] = (float)(urand() - 0.5);
  CK(cudaMalloc(&dx, nx * 4));
  CK(cudaMalloc(&dw, nw * 4));
  CK(cudaMalloc(&dy, ny * 4));
  CK(cudaMalloc(&db, t->m * 4));
  CK(cudaMemcpy(dx, fx, nx * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dw, fw, nw * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(db, fb, t->m * 4, cudaMemcpyHostToDevice));
  for (int ti = 0; ti < 4; ti++)
    for (int split = 0; split <= 1; split++) {
      ri__cu_convgemm_tactic tac = {0, 0, seg, split, 0};
      tile_of(ti, &tac.bm, &tac.bn);
      CK(cudaMemset(dy, 0xff, ny * 4));
      CK(run(0, &a, &tac, dx, dw, db, NULL, dy, &g_sk));
      CK(cudaDeviceSynchronize());
      CK(cudaMemcpy(runs ? got : first, dy, ny * 4, cudaMemcpyDeviceToHost));
      if (runs && memcmp(got, first, ny * 4) != 0) {
        same = 0;
        printf("FAIL %s: tile %dx%d split=%d differs from tile 128x128 in one block\n", name, tac.bm, tac.bn,
               split);
        g_fail++;
      }
      runs++;
    }
  if (!tf32 && ri__cu_pwconv_f32_supported(&a)) {
    ri__cu_convgemm_tactic tac = {0, 0, seg, -1, 1};
    CK(cudaMemset(dy, 0xff, ny * 4));
    CK(ri__cu_convgemm_f32_tac(0, &a, &tac, dx, dw, db, NULL, dy, &g_sk));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(got, dy, ny * 4, cudaMemcpyDeviceToHost));
    if (memcmp(got, first, ny * 4) != 0) {
      same = 0;
      printf("FAIL %s: the pointwise kernel differs from tile 128x128 in one block\n", name);
      g_fail++;
    }
    runs++;
  }
  for (int ti = 0; ti < 4; ti++) {
    ri__cu_convgemm_args a1 = a;
    a1.n = 1;
    ri__cu_convgemm_tactic tac = {0, 0, seg, -1, 0};
    tile_of(ti, &tac.bm, &tac.bn);
    CK(cudaMemset(dy, 0xff, ny * 4));
    CK(run(0, &a1, &tac, dx, dw, db, NULL, dy, &g_sk));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(got, dy, ny1 * 4, cudaMemcpyDeviceToHost));
    if (memcmp(got, first, ny1 * 4) != 0) {
      same = 0;
      printf("FAIL %s: image 0 alone (tile %dx%d) differs from image 0 in the batch\n", name, tac.bm, tac.bn);
      g_fail++;
    }
    runs++;
  }
  if (same) {
    printf("PASS %s: %d runs bit-identical\n", name, runs);
    g_pass++;
  }
done:
  cudaFree(dx), cudaFree(dw), cudaFree(dy), cudaFree(db);
  free(fx), free(fw), free(fb), free(first), free(got);
}

/* The depthwise kernel on NHWC float (the float4 path where c % 4 == 0, the element path otherwise). */
static void test_dw_f32(const dcase *t) {
  if (g_only_tf32 || g_only_pw) return;
  char name[200];
  snprintf(name, sizeof name, "dwconv_nhwc_f32 n=%d %dx%dx%d 3x3 s=%d pads=%d,%d,%d,%d act=%d bias=%d", t->n,
           t->ih, t->iw, t->c, t->s, t->pt, t->pl, t->pb, t->pr, t->act, t->bias);
  int oh = (t->ih + t->pt + t->pb - 3) / t->s + 1, ow = (t->iw + t->pl + t->pr - 3) / t->s + 1;
  size_t nx = (size_t)t->n * t->ih * t->iw * t->c, ny = (size_t)t->n * oh * ow * t->c, nw = 9 * (size_t)t->c;
  float *fx = malloc(nx * 4), *fw = malloc(nw * 4), *fb = malloc(t->c * 4), *fy = malloc(ny * 4),
        *fy2 = malloc(ny * 4);
  void *dx = NULL, *dw = NULL, *dy = NULL, *db = NULL;
  int nv;
  if (!fx || !fw || !fb || !fy || !fy2) {
    printf("FAIL %s: out of host memory\n", name);
    g_fail++;
    goto done;
  }
  fill_float(fx, nx, 1.0);
  fill_float(fw, nw, 0.5);
  for (int j = 0; j < t->c; j++)
    fb[j] = (float)(urand() - 0.5);
  CK(cudaMalloc(&dx, nx * 4));
  CK(cudaMalloc(&dw, nw * 4));
  CK(cudaMalloc(&dy, ny * 4));
  CK(cudaMalloc(&db, t->c * 4));
  CK(cudaMemcpy(dx, fx, nx * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dw, fw, nw * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(db, fb, t->c * 4, cudaMemcpyHostToDevice));
  ri__cu_dwconv_args a;
  dw_args(t, oh, ow, &a);
  /* every kernel variant: against the reference, and bit for bit against variant 0 (v >= nv: variant 0) */
  nv = ri__cu_dwconv_variants(RI_DTYPE_FLOAT32, &a);
  for (int v = 0; v < RI__CU_DW_VARIANTS; v++) {
    CK(cudaMemset(dy, 0xff, ny * 4));
    CK(ri__cu_dwconv_v(0, RI_DTYPE_FLOAT32, &a, v, dx, dw, t->bias ? db : NULL, dy));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(v ? fy2 : fy, dy, ny * 4, cudaMemcpyDeviceToHost));
    dw_verdict(t, name, fx, fw, fb, v ? fy2 : fy, oh, ow, v, nv, v == 0 || memcmp(fy, fy2, ny * 4) == 0,
               1e-5);
  }
done:
  cudaFree(dx), cudaFree(dw), cudaFree(dy), cudaFree(db);
  free(fx), free(fw), free(fb), free(fy), free(fy2);
}

/* The pointwise kernel's limits (host checks, nothing launched): a 1x1 layer of 1280 output channels and
 * K = 160 is taken (the wide form), 1288 channels or K = 168 are refused by ri__cu_pwconv_supported and by
 * ri__cu_pwconv_v itself (cudaErrorInvalidValue), as is an unknown variant. */
static void test_pw_limits(void) {
  ri__cu_convgemm_args a;
  memset(&a, 0, sizeof a);
  a.n = 1, a.ih = a.oh = 4, a.iw = a.ow = 4, a.c = a.k = a.ldw = 160, a.m_out = 1280;
  a.kh = a.kw = a.sh = a.sw = a.dh = a.dw = 1;
  a.rows_per_img = 16, a.ldy = a.ldr = 1280, a.y_img_stride = 16 * 1280;
  const int wide_ok = ri__cu_pwconv_supported(&a);
  a.m_out = a.ldy = 1288, a.y_img_stride = 16 * 1288;
  const int n_refused = !ri__cu_pwconv_supported(&a) &&
                        ri__cu_pwconv_v(0, &a, 1, NULL, NULL, NULL, NULL, NULL) == cudaErrorInvalidValue;
  a.m_out = a.ldy = 192, a.y_img_stride = 16 * 192, a.c = a.k = a.ldw = 168;
  const int k_refused = !ri__cu_pwconv_supported(&a);
  a.c = a.k = a.ldw = 160;
  const int v_refused =
      ri__cu_pwconv_v(0, &a, RI__CU_PW_VARIANTS, NULL, NULL, NULL, NULL, NULL) == cudaErrorInvalidValue;
  (void)cudaGetLastError();
  if (wide_ok && n_refused && k_refused && v_refused) {
    printf("PASS pwconv limits: N = 1280 / K = 160 taken; N = 1288, K = 168 and variant %d refused\n",
           RI__CU_PW_VARIANTS);
    g_pass++;
  } else {
    printf("FAIL pwconv limits: N 1280 taken %d, N 1288 refused %d, K 168 refused %d, variant refused %d\n",
           wide_ok, n_refused, k_refused, v_refused);
    g_fail++;
  }
}

/* The deep form's limits (host checks, nothing launched): K = 1280 with N = 64, K = 576 with N = 12 and a
 * float32 output, K = 128 with N = 24 and a float32 output are taken; K = 1288 (N = 24), N = 72 (K = 576),
 * N = 65 with a float32 output (K = 64) are refused by ri__cu_pwconv_supported and by ri__cu_pwconv_v
 * (cudaErrorInvalidValue). Under RI_CUDA_PW_DEEP=0 every one of them is refused. */
static void test_pw_deep_limits(void) {
  ri__cu_convgemm_args a;
  memset(&a, 0, sizeof a);
  a.n = 1, a.ih = a.oh = 4, a.iw = a.ow = 4, a.kh = a.kw = a.sh = a.sw = a.dh = a.dw = 1;
  a.rows_per_img = 16;
  static const struct {
    int k, m, f32, taken;
  } lc[] = {{1280, 64, 0, 1}, {576, 12, 1, 1}, {128, 24, 1, 1},
            {1288, 24, 0, 0}, {576, 72, 0, 0}, {64, 65, 1, 0}};
  const int on = ri__cu_pwconv_deep_enabled();
  int bad = 0;
  for (size_t i = 0; i < sizeof lc / sizeof lc[0]; i++) {
    a.c = a.k = a.ldw = lc[i].k, a.m_out = lc[i].m, a.y_f32 = lc[i].f32;
    a.ldy = a.ldr = lc[i].m, a.y_img_stride = 16 * lc[i].m;
    const int want = lc[i].taken && on, got = ri__cu_pwconv_supported(&a);
    /* only where refused: a supported shape would launch (on NULL pointers) */
    const int refused =
        !want && ri__cu_pwconv_v(0, &a, 1, NULL, NULL, NULL, NULL, NULL) == cudaErrorInvalidValue;
    if (got != want || (!want && !refused)) {
      printf("FAIL pwconv deep limits: K = %d, N = %d, out=%s: supported %d (want %d), refused %d\n", lc[i].k,
             lc[i].m, lc[i].f32 ? "f32" : "f16", got, want, refused);
      bad++;
    }
  }
  (void)cudaGetLastError();
  if (!bad) {
    printf(
        "PASS pwconv deep limits (RI_CUDA_PW_DEEP %s): K 1280 / N 64, f32 K 576 / N 12 and K 128 / N 24 %s; "
        "K 1288, N 72, f32 N 65 refused\n",
        on ? "on" : "off", on ? "taken" : "refused");
    g_pass++;
  } else {
    g_fail++;
  }
}

int main(void) {
  const char *only = getenv("RI_TEST_CONV");
  g_only_tf32 = only && strcmp(only, "3xtf32") == 0;
  g_only_dw = only && strcmp(only, "dw") == 0;
  g_only_wide = only && strcmp(only, "pwwide") == 0;
  g_only_deep = only && strcmp(only, "pwdeep") == 0;
  g_only_pw = g_only_wide || g_only_deep || (only && strcmp(only, "pw") == 0);
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count < 1) {
    printf("SKIP test_cuda_conv: no CUDA device\n0 passed, 0 failed\n");
    return 0;
  }
  static const gcase gc[] = {
      /* n  ih  iw   c    m  kh kw sh sw dh dw pt pl pb pr act bias res slice */
      {1, 10, 10, 960, 160, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0},  /* SSD project at batch 1 */
      {2, 19, 19, 96, 576, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 0},   /* expand + clip */
      {3, 7, 9, 64, 64, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0},      /* residual + relu */
      {2, 5, 5, 16, 24, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0},      /* narrow, residual */
      {2, 19, 19, 576, 273, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1},  /* odd head into a slice */
      {2, 3, 3, 256, 12, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1},     /* narrow head into a slice */
      {1, 1, 1, 8, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0},        /* smallest */
      {2, 31, 33, 8, 32, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 2, 1, 0, 0},     /* first layer, TF SAME pads */
      {2, 10, 10, 128, 256, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 2, 1, 0, 0},  /* SSD extra layer */
      {1, 2, 2, 64, 128, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 2, 1, 0, 0},     /* 2x2 -> 1x1 */
      {2, 14, 13, 40, 72, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1, 1, 0},    /* dilated, residual */
      {1, 23, 17, 24, 40, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 1, 1, 0, 0},    /* 7x7 stem */
      {2, 16, 16, 32, 48, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0},    /* strided 1x1 */
      {1, 6, 5, 16, 8, 3, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0},       /* 3x1 */
      {8, 38, 38, 32, 192, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 0},   /* many big tiles */
      {4, 75, 75, 24, 144, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 0},   /* K = 24 (partial BK) */
      {2, 30, 31, 3, 32, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 2, 1, 0, 0},     /* RGB first layer, gathered */
      {1, 9, 8, 5, 20, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0},       /* 5 channels, residual */
      {2, 7, 9, 64, 37, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0},      /* odd N: residual of odd pitch */
      {1, 20, 18, 3, 24, 7, 7, 2, 2, 1, 1, 3, 2, 3, 2, 0, 1, 0, 1},     /* RGB 7x7 stem into a slice */
      {1, 5, 5, 512, 64, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0},     /* deep K, residual: split K */
      {1, 10, 10, 1280, 546, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1}, /* deep head into a slice */
      {1, 3, 3, 256, 256, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 2, 1, 0, 0},    /* 3x3 -> 1x1, K = 2304 */
  };
  g_sk.ws_bytes = (size_t)16 << 20;
  g_sk.n_counters = 4096;
  cudaDeviceGetAttribute(&g_sk.sms, cudaDevAttrMultiProcessorCount, 0);
  if (cudaMalloc(&g_sk.ws, g_sk.ws_bytes) != cudaSuccess ||
      cudaMalloc((void **)&g_sk.counters, g_sk.n_counters * sizeof(int)) != cudaSuccess ||
      cudaMemset(g_sk.counters, 0, g_sk.n_counters * sizeof(int)) != cudaSuccess) {
    printf("FAIL split-K resources\n0 passed, 1 failed\n");
    return 1;
  }
  for (size_t i = 0; i < sizeof gc / sizeof gc[0]; i++) {
    test_gemm(&gc[i], 0, 0, 0, 0);
    test_gemm(&gc[i], 1, 0, 0, 0);
    if (gc[i].slice) test_gemm(&gc[i], 1, 1, 0, 0);
  }
  /* The pointwise kernel on the SSD MobileNet v2 shapes it is meant for (K and N up to 160) and on edges:
   * K % 32 == 16 (the tiled kernel's all-zero step), K % 16 == 8, N not a multiple of 8 or 16, rows not a
   * multiple of 16, more tiles than the grid's warps (the persistent loop and ring wrap around), residual
   * + activation, a slice of a larger output. */
  static const gcase pc[] = {
      /* n  ih  iw   c    m  kh kw sh sw dh dw pt pl pb pr act bias res slice */
      {3, 50, 50, 16, 96, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 0},   /* expanded_conv_1/expand */
      {2, 37, 41, 32, 16, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0},   /* expanded_conv/project */
      {2, 25, 25, 144, 24, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0},  /* expanded_conv_2/project + res */
      {2, 25, 27, 24, 144, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 0},  /* expanded_conv_2/expand */
      {2, 19, 19, 96, 24, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0},   /* expanded_conv_1/project */
      {1, 13, 11, 160, 160, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0}, /* largest K and N, residual + relu */
      {2, 7, 9, 40, 12, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 0, 0, 1},     /* K = 40, N = 12 into a slice */
      {1, 3, 5, 8, 20, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1},      /* K = 8, N = 20, res into a slice */
      {1, 1, 1, 16, 8, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0},      /* one row */
      {256, 40, 40, 32, 32, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 1, 0}, /* 409600 rows: the rings wrap */
      {72, 60, 60, 16, 96, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 0},  /* 259200 rows, K = 16 */
      {2, 9, 9, 32, 21, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0},     /* odd N: residual of odd pitch */
      /* the bulk stores' edges: m_out = 8 and 136 (one n8 tile past a pair), rows not a multiple of 16, a
       * residual through the ring with 3 chunks a row */
      {3, 11, 7, 24, 8, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 1, 0},
      {2, 13, 9, 40, 136, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0},
      {64, 75, 75, 24, 144, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 0}, /* expanded_conv_2/expand at 64 */
      /* the other activations (instances of their own in the second form): leaky + residual, hard swish */
      {2, 15, 13, 32, 48, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 3, 1, 1, 0},
      {2, 11, 9, 24, 144, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 6, 1, 0, 0},
      {1, 9, 9, 16, 40, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 4, 1, 0, 1}, /* sigmoid into a slice */
  };
  for (size_t i = 0; i < sizeof pc / sizeof pc[0]; i++)
    test_gemm(&pc[i], 0, 0, 1, 0);
  /* signed zeros: K % 32 == 16 (the zero step) with and without residual, K % 32 == 16 into a slice, K = 32
   * (no zero step) */
  static const gcase zc[] = {
      /* n  ih  iw   c    m  kh kw sh sw dh dw pt pl pb pr act bias res slice */
      {2, 9, 11, 16, 96, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0},
      {2, 9, 11, 144, 24, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0},
      {1, 9, 11, 48, 40, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1},
      {1, 7, 13, 32, 16, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0},
  };
  for (size_t i = 0; i < sizeof zc / sizeof zc[0]; i++)
    test_gemm(&zc[i], 0, 0, 1, 1);
  /* The wide form (k_pwconv_wide.cu, N > 160): SSD MobileNet v2's middle expansions (K 32 / 64 / 96 / 160 ->
   * N 192 / 384 / 576 / 960) and N = 1280, rows not a multiple of 16 (odd too), more tiles than a slab's
   * warps (the rings wrap), residual, clip / ReLU and the general activations, slices of a larger output
   * (odd N: element stores), slabs narrower than 192 (N = 200, 161), K % 32 == 16 and K % 16 == 8 (the zero
   * step); K >= 128 with many tiles per warp (the two-block plans: one-stage ring, 128-channel slabs;
   * RI_CUDA_PW_WIDE_PLAN=old runs the first plan); then signed zeros. */
  static const gcase wc[] = {
      /* n  ih  iw   c    m  kh kw sh sw dh dw pt pl pb pr act bias res slice */
      {3, 38, 38, 32, 192, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 0},  /* block 6 expand, 4332 rows */
      {2, 19, 19, 64, 384, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 0},  /* blocks 7-10 expand */
      {64, 19, 19, 64, 384, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 0}, /* 23104 rows: the rings wrap */
      {3, 19, 19, 96, 576, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 1, 0},  /* blocks 11-13, residual, 1083 rows */
      {2, 10, 10, 160, 960, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 0}, /* blocks 14-16 expand */
      {1, 10, 10, 160, 960, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1}, /* residual into a slice */
      {128, 10, 10, 160, 960, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0,
       0}, /* 12800 rows: the one-stage ring refills */
      {16, 19, 19, 128, 384, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 0}, /* K = 128: two blocks, one stage */
      {2, 7, 9, 160, 1280, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0},   /* N = 1280, residual + relu */
      {1, 9, 11, 64, 1280, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 1},   /* N = 1280 into a slice */
      {1, 7, 9, 96, 273, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1},     /* odd N, residual, slice */
      {2, 5, 7, 48, 200, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 3, 1, 1, 0},     /* leaky, K % 32 == 16 */
      {1, 5, 5, 8, 161, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 6, 0, 0, 0},      /* hard swish, K = 8, no bias */
      {1, 3, 3, 32, 576, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 4, 1, 0, 1},     /* sigmoid into a slice, 9 rows */
  };
  if (!g_only_tf32 && !g_only_dw) test_pw_limits();
  for (size_t i = 0; i < sizeof wc / sizeof wc[0]; i++)
    test_gemm(&wc[i], 0, 0, 1, 0);
  static const gcase wzc[] = {
      /* n  ih  iw   c    m  kh kw sh sw dh dw pt pl pb pr act bias res slice */
      {2, 9, 11, 48, 192, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0},
      {1, 9, 11, 16, 200, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1},
      {1, 7, 13, 64, 384, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0},
  };
  for (size_t i = 0; i < sizeof wzc / sizeof wzc[0]; i++)
    test_gemm(&wzc[i], 0, 0, 1, 1);
  /* The deep form (k_pwconv_deep.cu: N <= 64, 160 < K <= 1280, or a float32 output): SSD MobileNet v2's box
   * predictors (576 / 1280 / 512 / 256 / 256 / 128 -> 12 or 24) at batches 2 and 3, into the box slice of
   * the concatenated output (slice 2: rows of N channels, images 12 elements apart, misaligned: element
   * stores) in float32 and half, and dense (16-byte stores where N % 8 == 0); K % 32 == 16 and K % 16 == 8
   * (the zero step; a last chunk of 16 or 8 channels), K = 1280 (20 chunks), N = 4 / 12 / 24 / 32 / 40 / 64,
   * residual + ReLU / clip (the middle blocks' 192 -> 32 and 384 -> 64 projections), the general
   * activations, more tiles than the grid's warps (the ring runs over several tiles); then signed zeros. Each
   * is compared bit for bit with the tiled kernel with one K segment (every variant, and the tactic). */
  static const gcase deep[] = {
      /* n  ih  iw   c    m  kh kw sh sw dh dw pt pl pb pr act bias res slice */
      {2, 19, 19, 576, 12, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 2},   /* box.0 */
      {3, 10, 10, 1280, 24, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 2},  /* box.1 */
      {3, 5, 5, 512, 24, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 2},     /* box.2 */
      {3, 3, 3, 256, 24, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 2},     /* box.3 */
      {3, 2, 2, 256, 24, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 2},     /* box.4 */
      {3, 1, 1, 128, 24, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 2},     /* box.5 (f32 only: deep form) */
      {2, 19, 19, 576, 12, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0},   /* box.0 dense */
      {2, 10, 10, 1280, 24, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0},  /* box.1 dense: vector stores */
      {2, 9, 7, 528, 4, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1},      /* K % 32 == 16, N = 4, slice */
      {2, 7, 9, 520, 32, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 1, 0},     /* K % 16 == 8, clip, residual */
      {2, 5, 9, 1280, 32, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},    /* K 1280, relu, res, slice */
      {2, 19, 19, 192, 32, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0},   /* block 4-6 project + res */
      {2, 19, 19, 384, 64, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0},   /* block 7-10 project + res */
      {1, 11, 13, 1272, 64, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 1},  /* N 64, K % 16 == 8, slice */
      {2, 7, 7, 208, 40, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 3, 1, 1, 1},     /* leaky, res, slice, N 40 */
      {1, 9, 9, 336, 20, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 6, 0, 0, 0},     /* hard swish, no bias */
      {1, 5, 7, 64, 12, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 4, 1, 0, 2},      /* sigmoid, K 64 (f32 only) */
      {128, 19, 19, 576, 12, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 2}, /* 46208 rows: tiles wrap */
  };
  if (!g_only_tf32 && !g_only_dw && !g_only_wide) test_pw_deep_limits();
  /* under RI_CUDA_PW_DEEP=0 the pointwise kernel refuses these shapes (the limits case checks that) */
  for (size_t i = 0; ri__cu_pwconv_deep_enabled() && i < sizeof deep / sizeof deep[0]; i++) {
    if (deep[i].c > 160) test_gemm(&deep[i], 0, 0, 1, 0);
    test_gemm(&deep[i], 0, 1, 1, 0);
  }
  static const gcase dzc[] = {
      /* n  ih  iw   c    m  kh kw sh sw dh dw pt pl pb pr act bias res slice */
      {2, 9, 11, 272, 24, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0},
      {1, 9, 11, 528, 12, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 2},
      {1, 7, 13, 576, 16, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0},
  };
  for (size_t i = 0; ri__cu_pwconv_deep_enabled() && i < sizeof dzc / sizeof dzc[0]; i++) {
    test_gemm(&dzc[i], 0, 0, 1, 1);
    test_gemm(&dzc[i], 0, 1, 1, 1);
  }
  /* deep K at small and large batches: segments of 4 and 7 K steps (the last one shorter) */
  static const gcase tc[] = {
      {1, 10, 10, 960, 160, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0},
      {16, 10, 10, 960, 160, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0},
      {2, 5, 5, 256, 96, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof tc / sizeof tc[0]; i++) {
    test_tactics(&tc[i], 4);
    test_tactics(&tc[i], 7);
  }
  for (size_t i = 0; i < sizeof gc / sizeof gc[0]; i++) {
    test_gemm_f32(&gc[i], 0, 0, 0);
    test_gemm_f32(&gc[i], 1, 0, 0);
    test_gemm_f32(&gc[i], 0, 0, 1);
    test_gemm_f32(&gc[i], 1, 0, 1);
  }
  /* 3xTF32 on the shapes it is meant for (SSD MobileNet v2 fp32 at larger batches: K and N not multiples of
   * the tiles) and the activations the other cases leave out. */
  static const gcase xc[] = {
      /* n  ih  iw   c    m  kh kw sh sw dh dw pt pl pb pr act bias res slice */
      {8, 19, 19, 576, 273, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1},  /* BoxPredictor_0 class head */
      {6, 10, 10, 320, 1280, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 0}, /* Conv_1 */
      {3, 10, 10, 1280, 256, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 0}, /* layer_19_1 */
      {2, 10, 10, 256, 510, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 2, 1, 0, 0},  /* layer_19_2, SAME pads */
      {3, 13, 11, 52, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1, 1, 0},    /* leaky, residual, odd N */
      {2, 9, 9, 36, 20, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 4, 1, 0, 0},      /* sigmoid */
      {2, 9, 7, 44, 28, 3, 3, 2, 1, 1, 1, 1, 0, 1, 1, 5, 1, 0, 1},      /* hard sigmoid, into a slice */
      {2, 8, 8, 20, 36, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 6, 1, 1, 0},      /* hard swish, residual */
      {1, 11, 13, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1},      /* 7 channels, everything */
  };
  for (size_t i = 0; i < sizeof xc / sizeof xc[0]; i++) {
    test_gemm_f32(&xc[i], 0, 0, 1);
    test_gemm_f32(&xc[i], 1, 0, 1);
    test_gemm_f32(&xc[i], 1, 0, 0);
  }
  /* The fp32 pointwise kernel on the pointwise kernel's cases (its MobileNet v2 shapes and edges; K = 160
   * with N = 160 is past its weight limit and is skipped), then its segments against the tiles': K = 152
   * (K % 16 == 8: the tiled kernel's zero products in the last slice) and 160 with N = 24. */
  for (size_t i = 0; i < sizeof pc / sizeof pc[0]; i++) {
    ri__cu_convgemm_args a;
    int oh, ow;
    f32_args(&pc[i], pc[i].n, &a, &oh, &ow);
    if (ri__cu_pwconv_f32_supported(&a)) test_gemm_f32(&pc[i], 0, 1, 0);
  }
  for (size_t i = 0; i < sizeof tc / sizeof tc[0]; i++) {
    test_tactics_f32(&tc[i], 5, 0);
    test_tactics_f32(&tc[i], 13, 0);
    test_tactics_f32(&tc[i], 0, 1);
    test_tactics_f32(&tc[i], 5, 1);
    test_tactics_f32(&tc[i], 13, 1);
  }
  static const gcase pt[] = {
      {3, 21, 23, 152, 24, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0},
      {2, 30, 30, 160, 24, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof pt / sizeof pt[0]; i++) {
    test_tactics_f32(&pt[i], 0, 0);
    test_tactics_f32(&pt[i], 3, 0);
    test_tactics_f32(&pt[i], 4, 0);
    test_tactics_f32(&pt[i], 3, 1);
  }
  cudaFree(g_sk.ws);
  cudaFree(g_sk.counters);
  static const dcase dc[] = {
      /* n  ih  iw   c  s pt pl pb pr act bias */
      {2, 15, 15, 32, 1, 1, 1, 1, 1, 2, 1},
      {2, 15, 15, 144, 2, 0, 0, 1, 1, 2, 1},
      {1, 10, 10, 960, 1, 1, 1, 1, 1, 2, 1},
      {3, 7, 6, 16, 2, 1, 1, 1, 1, 0, 0},
      {1, 1, 1, 8, 1, 1, 1, 1, 1, 1, 1},
      {2, 19, 19, 576, 2, 0, 0, 1, 1, 2, 1},
      {1, 5, 9, 24, 1, 0, 0, 0, 0, 0, 1},
      /* odd sizes against the variants' pixel blocks (4 and 2 along x and y), activations, pads */
      {3, 13, 17, 40, 1, 1, 1, 1, 1, 6, 1},
      {2, 14, 11, 48, 2, 1, 1, 1, 1, 4, 0},
      {5, 9, 7, 8, 2, 0, 0, 1, 1, 1, 1},
      {1, 38, 38, 16, 1, 1, 1, 1, 1, 2, 1},
      {2, 21, 22, 24, 2, 1, 1, 0, 0, 2, 1},
      {1, 2, 3, 16, 1, 1, 1, 1, 1, 0, 1},
      {2, 6, 5, 12, 1, 1, 1, 1, 1, 2, 1}, /* 12 channels: half has no vector path, float has */
      /* the shared-memory variants (C % 16 == 0): tiles of 16 x 16 and 8 x 8 outputs (stride 2: 16 x 8 and
       * 8 x 8), partial down and across, images smaller than a tile, several channel groups, pads of 0 to
       * 2 on each side, every activation; 24, 40, 48 and 8 channels above: C % 16 != 0 (variant 0) */
      {2, 37, 35, 32, 1, 1, 1, 1, 1, 2, 1},  /* expanded_conv at 1/4 size */
      {4, 75, 75, 144, 1, 1, 1, 1, 1, 2, 1}, /* expanded_conv_2 */
      {3, 38, 38, 192, 1, 1, 1, 1, 1, 2, 1}, /* expanded_conv_4 */
      {2, 75, 75, 144, 2, 0, 0, 1, 1, 2, 1}, /* expanded_conv_3, TF SAME pads */
      {2, 19, 19, 576, 1, 1, 1, 1, 1, 2, 1}, /* expanded_conv_11 */
      {64, 10, 10, 64, 1, 1, 1, 1, 1, 2, 1}, /* many images of one tile each */
      {2, 5, 4, 16, 1, 0, 0, 0, 0, 0, 0},    /* smaller than a tile, no pads, no bias */
      {2, 17, 33, 32, 1, 0, 1, 2, 0, 1, 1},  /* asymmetric pads, relu */
      {1, 9, 10, 32, 1, 2, 2, 2, 2, 3, 1},   /* pads of 2: all-zero windows at the corners, leaky */
      {2, 33, 31, 16, 2, 1, 1, 1, 1, 6, 1},  /* stride 2, symmetric pads, hard swish */
      {3, 20, 18, 48, 2, 0, 1, 2, 0, 4, 1},  /* stride 2, asymmetric pads, sigmoid */
      {1, 18, 17, 80, 1, 1, 1, 1, 1, 5, 0},  /* 5 channel groups, hard sigmoid */
      {5, 3, 3, 16, 2, 1, 1, 1, 1, 2, 1},    /* stride 2, 2 x 2 outputs */
      /* the persistent variants (RI__CU_DW_PIPE_FIRST ..): grids of at most the resident blocks, so on a
       * GPU of 132 SMs these take 2 or 3 tiles per block, the last step ragged (blocks without a tile) */
      {32, 56, 56, 32, 1, 1, 1, 1, 1, 2, 1}, /* stride 1: 512 tiles of 16 x 16, 1568 of 8 x 8 per group */
      {8, 75, 75, 96, 2, 0, 0, 1, 1, 2, 1},  /* stride 2: 120 tiles of 16 x 8, 200 of 8 x 8 per group */
  };
  for (size_t i = 0; i < sizeof dc / sizeof dc[0]; i++) {
    test_dw(&dc[i]);
    test_dw_f32(&dc[i]);
  }
  static const dcase dc32[] = {
      {2, 9, 11, 6, 1, 1, 1, 1, 1, 2, 1}, /* 6 channels: the element path */
      {1, 8, 8, 12, 2, 0, 0, 1, 1, 1, 0}, /* stride 2, TF SAME pads */
  };
  for (size_t i = 0; i < sizeof dc32 / sizeof dc32[0]; i++)
    test_dw_f32(&dc32[i]);
  static const scase sc[] = {
      /* n  ih  iw  c   m kh kw s pt pl pb pr act nchw_f32 */
      {2, 31, 30, 3, 32, 3, 3, 2, 0, 0, 1, 1, 2, 1}, /* SSD stem, TF SAME pads, caller's image */
      {2, 17, 19, 3, 32, 3, 3, 2, 1, 1, 1, 1, 2, 0}, /* half NHWC input */
      {1, 23, 21, 2, 40, 7, 7, 2, 3, 3, 3, 3, 1, 1}, /* two channel tiles, the second partial */
      {1, 9, 9, 4, 12, 3, 3, 1, 1, 1, 1, 1, 0, 0},   /* 12 channels: element stores */
      {3, 37, 35, 3, 24, 3, 3, 2, 1, 1, 1, 1, 6, 1}, /* 24 channels, symmetric pads, hard swish */
      {1, 11, 12, 3, 20, 3, 3, 1, 1, 1, 1, 1, 0, 0}, /* stride 1, 20 channels (m % 8 != 0) */
      {2, 8, 9, 3, 18, 3, 3, 2, 0, 0, 1, 1, 1, 1},   /* 18 channels: no variant 2 (m % 4 != 0) */
      {1, 4, 4, 3, 40, 3, 3, 2, 0, 0, 1, 1, 2, 1},   /* 40 channels: no variants */
      /* the tensor-core variant's bands: more bands than resident blocks, partial bands across and down */
      {3, 300, 300, 3, 32, 3, 3, 2, 0, 0, 1, 1, 2, 1}, /* SSD stem at full size */
      {2, 61, 201, 3, 32, 3, 3, 2, 1, 1, 1, 1, 0, 0},  /* half input, 101 x 31 outputs */
      /* variant 4: 16-byte copies (float rows of a multiple of 4 floats), their window shifted by pads not a
       * multiple of 4, units past the row's end zero; single floats otherwise (the widths 30, 35 above);
       * every activation; batch 1 (short bands) and several */
      {1, 300, 300, 3, 32, 3, 3, 2, 0, 0, 1, 1, 2, 1}, /* SSD stem, batch 1 */
      {2, 61, 200, 3, 32, 3, 3, 2, 1, 1, 1, 1, 2, 1},  /* pad 1: window from column -4, 2 bands across */
      {2, 33, 36, 3, 24, 3, 3, 2, 0, 0, 1, 1, 0, 1},   /* no activation, 24 channels */
      {1, 20, 132, 3, 20, 3, 3, 1, 1, 1, 1, 1, 3, 1},  /* stride 1, leaky, m % 8 != 0, 3 bands across */
      {3, 19, 44, 3, 16, 3, 3, 2, 2, 2, 2, 2, 4, 1},   /* pads 2 (shift 2), sigmoid, 16 channels */
      {2, 27, 68, 3, 32, 3, 3, 2, 3, 3, 3, 3, 5, 1},   /* pads 3 (shift 1), hard sigmoid */
      {5, 9, 8, 3, 32, 3, 3, 2, 0, 0, 1, 1, 1, 1},     /* narrow rows: the window reaches past them */
      {4, 45, 30, 3, 8, 3, 3, 2, 0, 0, 1, 1, 6, 1},    /* 8 channels, single floats, hard swish */
      /* many small images: more than 3 bands per resident block (the ring of windows wraps) */
      {1500, 16, 16, 3, 32, 3, 3, 2, 0, 0, 1, 1, 2, 1}, /* 16-byte copies, 8-row bands */
      {1200, 15, 15, 3, 32, 3, 3, 2, 0, 0, 1, 1, 1, 1}, /* single floats, 7-row bands */
      /* ReLU6 on packed halves (variants 3 and 4): element stores (m % 8 != 0) */
      {2, 13, 40, 3, 20, 3, 3, 2, 1, 1, 1, 1, 2, 1},
  };
  for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) {
    test_stem(&sc[i], 0);
    test_stem(&sc[i], 1);
  }
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
