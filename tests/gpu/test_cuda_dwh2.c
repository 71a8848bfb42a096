/* GPU test of the half-arithmetic depthwise 3x3 kernel (ri__cu_dwconv_h2, k_dwconv_h2.cu) and of the engine
 * option that runs it (RI_CUDA_DW_HALF=1, cuda_op_conv.c).
 *
 *   test_cuda_dwh2 [MODELS_DIR]
 *
 * Kernel cases (odd sizes, strides 1 and 2, symmetric, TF-SAME and one-sided pads, none / ReLU / clip,
 * with and without bias), each checked for:
 *  - error: every output within 9 * 2^-10 * (|bias| + sum |x w|) + 2^-20 of a double-precision reference on
 *    the same half inputs (then the activation, which is 1-Lipschitz, on both);
 *  - strips: every pixels-per-thread rx gives the bits of the default;
 *  - batch invariance: each image alone gives the bytes it gets in the batch;
 *  - bounds: the halves after the output keep their guard pattern, and no output is left unwritten.
 * Then NaN (a NaN input: none and clip give NaN, ReLU 0 where it reaches), and refusals (the support check
 * and cudaErrorInvalidValue for a bad rx or a misaligned pointer).
 * With MODELS_DIR: SSD MobileNet v2 (NCHW input) fp16 engines, max batch 8, built with RI_CUDA_DW_HALF=1
 * and unset: the first names dwconv_h2_f16 (what `runinfer inspect --json` prints) for its depthwise nodes,
 * the early ones fused again (expdw_f16 / dwproj_f16 nodes: k_expdw.cu's half2 stage), the second none; both
 * against the CPU fp32 engine at batch 1 and 8 within 2.5e-2 of max|ref| (test_cuda_ops's bound for this
 * model in fp16, whose reason is written there: seeded random weights amplify half rounding; the default
 * engine's error is printed next to it), and image 0 of batch 8 gives the bytes of batch 1. PASS/FAIL lines,
 * then "N passed, M failed"; exit 1 when anything failed. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "backend/cuda/kernels.h"
#include "core/half.h"
#include "gpu_build.h"
#include "gpu_rand.h"
#include "gpu_result.h"
#include "gpu_tensor.h"
#include "graph/ir.h"
#include "runinfer/engine.h"

#define GUARD 0x7e7eu /* a NaN pattern: an unwritten output shows as NaN, a write past the end changes it */

typedef struct {
  int n, ih, iw, c, s, pt, pl, pb, pr, act, bias;
} dw_case;

static const dw_case g_cases[] = {
    {2, 7, 9, 8, 1, 1, 1, 1, 1, RI__ACT_RELU, 1},    {3, 11, 13, 24, 2, 0, 0, 1, 1, RI__ACT_CLIP, 1},
    {1, 5, 5, 40, 1, 0, 0, 0, 0, RI__ACT_NONE, 0},   {2, 10, 10, 16, 2, 1, 1, 1, 1, RI__ACT_CLIP, 1},
    {2, 1, 1, 8, 1, 1, 1, 1, 1, RI__ACT_RELU, 1},    {2, 17, 3, 32, 2, 1, 1, 0, 0, RI__ACT_NONE, 1},
    {3, 6, 31, 64, 1, 2, 2, 0, 0, RI__ACT_NONE, 1},  {2, 19, 19, 96, 2, 1, 1, 1, 1, RI__ACT_CLIP, 1},
    {1, 38, 37, 32, 1, 1, 1, 1, 1, RI__ACT_CLIP, 1},
};

static const int g_rx1[] = {0, 2, 4, 8}, g_rx2[] = {0, 1, 2, 4};

static void set_args(const dw_case *k, int n, ri__cu_dwconv_args *d) {
  memset(d, 0, sizeof *d);
  d->n = n, d->c = k->c, d->ih = k->ih, d->iw = k->iw;
  d->oh = (k->ih + k->pt + k->pb - 3) / k->s + 1, d->ow = (k->iw + k->pl + k->pr - 3) / k->s + 1;
  d->kh = d->kw = 3, d->sh = d->sw = k->s, d->dh = d->dw = 1, d->pad_t = k->pt, d->pad_l = k->pl;
  d->nhwc = 1, d->act = k->act, d->act_a = 0.f, d->act_b = 6.f;
}

static double act_d(int act, double v) {
  if (act == RI__ACT_RELU) return v > 0 ? v : 0;
  if (act == RI__ACT_CLIP) return v < 0 ? 0 : v > 6 ? 6 : v;
  return v;
}

/* Reference output o (NHWC index) and its bound. */
static void ref_at(const ri__cu_dwconv_args *d, const uint16_t *x, const uint16_t *w, const float *b,
                   int64_t o, double *ref, double *bound) {
  const int64_t c = d->c, ch = o % c, ox = o / c % d->ow, oy = o / c / d->ow % d->oh,
                n = o / c / d->ow / d->oh;
  double acc = b ? (double)b[ch] : 0.0, mag = b ? fabs((double)b[ch]) : 0.0;
  for (int ky = 0; ky < 3; ky++)
    for (int kx = 0; kx < 3; kx++) {
      const int64_t iy = oy * d->sh - d->pad_t + ky, ix = ox * d->sw - d->pad_l + kx;
      if (iy < 0 || iy >= d->ih || ix < 0 || ix >= d->iw) continue;
      const double p = (double)ri__half_to_float(x[((n * d->ih + iy) * d->iw + ix) * c + ch]) *
                       (double)ri__half_to_float(w[(ky * 3 + kx) * c + ch]);
      acc += p, mag += fabs(p);
    }
  *ref = act_d(d->act, acc);
  *bound = 9.0 * ldexp(1.0, -10) * mag + ldexp(1.0, -20);
}

#define CK(call, what)                                                                                       \
  do {                                                                                                       \
    cudaError_t e_ = (call);                                                                                 \
    if (e_ != cudaSuccess) {                                                                                 \
      result(0, "%s: %s", what, cudaGetErrorString(e_));                                                     \
      goto done;                                                                                             \
    }                                                                                                        \
  } while (0)

static void test_case(int ci) {
  const dw_case *k = &g_cases[ci];
  ri__cu_dwconv_args d;
  set_args(k, k->n, &d);
  char name[160];
  snprintf(name, sizeof name, "case %d: n%d %dx%dx%d s%d pads %d,%d,%d,%d act %d%s", ci, k->n, k->ih, k->iw,
           k->c, k->s, k->pt, k->pl, k->pb, k->pr, k->act, k->bias ? " bias" : "");
  const size_t img_x = (size_t)k->ih * k->iw * k->c, img_y = (size_t)d.oh * d.ow * k->c;
  const size_t xn = img_x * k->n, yn = img_y * k->n, wn = (size_t)9 * k->c, yb = (yn + 8) * 2;
  uint16_t *hx = malloc(xn * 2), *hw = malloc(wn * 2), *hy = malloc(yb), *hr = malloc(yb), *h1 = malloc(yb);
  float *hb = malloc((size_t)k->c * 4);
  void *x = NULL, *w = NULL, *y = NULL, *y1 = NULL;
  float *b = NULL;
  if (!hx || !hw || !hy || !hr || !h1 || !hb) {
    result(0, "%s: host memory", name);
    goto done;
  }
  fill_half(hx, NULL, xn, 2.0);
  fill_half(hw, NULL, wn, 0.5);
  for (int e = 0; e < k->c; e++)
    hb[e] = (float)(urand() * 2.0 - 1.0);
  for (size_t i = 0; i < yn + 8; i++)
    hy[i] = GUARD;
  CK(cudaMalloc(&x, xn * 2), name);
  CK(cudaMalloc(&w, wn * 2), name);
  CK(cudaMalloc((void **)&b, (size_t)k->c * 4), name);
  CK(cudaMalloc(&y, yb), name);
  CK(cudaMalloc(&y1, yb), name);
  CK(cudaMemcpy(x, hx, xn * 2, cudaMemcpyHostToDevice), name);
  CK(cudaMemcpy(w, hw, wn * 2, cudaMemcpyHostToDevice), name);
  CK(cudaMemcpy(b, hb, (size_t)k->c * 4, cudaMemcpyHostToDevice), name);
  CK(cudaMemcpy(y, hy, yb, cudaMemcpyHostToDevice), name);
  const float *bias = k->bias ? b : NULL;
  CK(ri__cu_dwconv_h2(0, &d, 0, x, w, bias, y), name);
  CK(cudaMemcpy(hr, y, yb, cudaMemcpyDeviceToHost), name);
  /* error against the reference; guard halves after the output */
  double worst = 0.0; /* max |err| / bound */
  int64_t bad = -1, unwritten = 0;
  for (size_t o = 0; o < yn; o++) {
    double ref, bound;
    ref_at(&d, hx, hw, k->bias ? hb : NULL, (int64_t)o, &ref, &bound);
    const double got = (double)ri__half_to_float(hr[o]);
    if (isnan(got)) {
      unwritten++;
      continue;
    }
    const double r = fabs(got - ref) / bound;
    if (r > worst) worst = r;
    if (r > 1.0 && bad < 0) bad = (int64_t)o;
  }
  int guard_ok = 1;
  for (size_t i = yn; i < yn + 8; i++)
    guard_ok = guard_ok && hr[i] == GUARD;
  result(bad < 0 && unwritten == 0, "%s: error / bound max %.3f (first over: %lld), %lld outputs unwritten",
         name, worst, (long long)bad, (long long)unwritten);
  result(guard_ok, "%s: nothing written past the output", name);
  /* every rx: the same bits */
  const int *rxs = k->s == 1 ? g_rx1 : g_rx2;
  for (int r = 1; r < 4; r++) {
    CK(cudaMemcpy(y1, hy, yb, cudaMemcpyHostToDevice), name);
    CK(ri__cu_dwconv_h2(0, &d, rxs[r], x, w, bias, y1), name);
    CK(cudaMemcpy(h1, y1, yb, cudaMemcpyDeviceToHost), name);
    result(memcmp(h1, hr, yb) == 0, "%s: rx %d gives the bits of the default", name, rxs[r]);
  }
  /* batch invariance: image i alone */
  int same = 1;
  for (int i = 0; i < k->n; i++) {
    ri__cu_dwconv_args d1;
    set_args(k, 1, &d1);
    CK(ri__cu_dwconv_h2(0, &d1, 0, (const char *)x + img_x * 2 * i, w, bias, y1), name);
    CK(cudaMemcpy(h1, y1, img_y * 2, cudaMemcpyDeviceToHost), name);
    same = same && memcmp(h1, hr + img_y * i, img_y * 2) == 0;
  }
  result(same, "%s: each image alone gives its bytes in the batch of %d", name, k->n);
done:
  cudaFree(x), cudaFree(w), cudaFree(b), cudaFree(y), cudaFree(y1);
  free(hx), free(hw), free(hy), free(hr), free(h1), free(hb);
}

/* A NaN input (pixel 2,2 of a 5x5 image, channel 3; stride 1, pads 1): output (2,2) channel 3 is NaN with
 * no activation and with clip, 0 with ReLU; channel 2 stays finite. */
static void test_nan(void) {
  const int c = 8, hw = 5;
  uint16_t hx[5 * 5 * 8], hwt[9 * 8], hy[5 * 5 * 8];
  float hb[8];
  fill_half(hx, NULL, sizeof hx / 2, 1.0);
  fill_half(hwt, NULL, sizeof hwt / 2, 0.5);
  for (int e = 0; e < c; e++)
    hb[e] = 0.25f;
  hx[(2 * hw + 2) * c + 3] = 0x7e00;
  void *x = NULL, *w = NULL, *y = NULL;
  float *b = NULL;
  const int acts[3] = {RI__ACT_NONE, RI__ACT_RELU, RI__ACT_CLIP};
  CK(cudaMalloc(&x, sizeof hx), "nan");
  CK(cudaMalloc(&w, sizeof hwt), "nan");
  CK(cudaMalloc(&y, sizeof hy), "nan");
  CK(cudaMalloc((void **)&b, sizeof hb), "nan");
  CK(cudaMemcpy(x, hx, sizeof hx, cudaMemcpyHostToDevice), "nan");
  CK(cudaMemcpy(w, hwt, sizeof hwt, cudaMemcpyHostToDevice), "nan");
  CK(cudaMemcpy(b, hb, sizeof hb, cudaMemcpyHostToDevice), "nan");
  for (int a = 0; a < 3; a++) {
    dw_case k = {1, hw, hw, c, 1, 1, 1, 1, 1, acts[a], 1};
    ri__cu_dwconv_args d;
    set_args(&k, 1, &d);
    CK(ri__cu_dwconv_h2(0, &d, 0, x, w, b, y), "nan");
    CK(cudaMemcpy(hy, y, sizeof hy, cudaMemcpyDeviceToHost), "nan");
    const float v3 = ri__half_to_float(hy[(2 * hw + 2) * c + 3]),
                v2 = ri__half_to_float(hy[(2 * hw + 2) * c + 2]);
    const int want = acts[a] == RI__ACT_RELU ? v3 == 0.f : isnan(v3);
    result(want && !isnan(v2), "NaN input, act %d: output %g (%s expected), its neighbour channel %g",
           acts[a], (double)v3, acts[a] == RI__ACT_RELU ? "0" : "NaN", (double)v2);
  }
done:
  cudaFree(x), cudaFree(w), cudaFree(y), cudaFree(b);
}

static void test_refusals(void) {
  dw_case k = {1, 8, 8, 16, 1, 1, 1, 1, 1, RI__ACT_RELU, 1};
  ri__cu_dwconv_args d, e;
  set_args(&k, 1, &d);
  result(ri__cu_dwconv_h2_supported(&d) == 1, "support: 8x8x16 stride 1 ReLU taken");
  e = d, e.c = 12;
  result(!ri__cu_dwconv_h2_supported(&e), "support: 12 channels refused (not a multiple of 8)");
  e = d, e.kh = e.kw = 5;
  result(!ri__cu_dwconv_h2_supported(&e), "support: 5x5 refused");
  e = d, e.sh = e.sw = 3;
  result(!ri__cu_dwconv_h2_supported(&e), "support: stride 3 refused");
  e = d, e.sw = 2;
  result(!ri__cu_dwconv_h2_supported(&e), "support: strides 1, 2 refused");
  e = d, e.dh = e.dw = 2;
  result(!ri__cu_dwconv_h2_supported(&e), "support: dilation 2 refused");
  e = d, e.act = RI__ACT_SIGMOID;
  result(!ri__cu_dwconv_h2_supported(&e), "support: sigmoid refused");
  e = d, e.nhwc = 0;
  result(!ri__cu_dwconv_h2_supported(&e), "support: NCHW refused");
  void *buf = NULL;
  if (cudaMalloc(&buf, 1 << 16) != cudaSuccess) {
    result(0, "refusals: cudaMalloc");
    return;
  }
  char *p = buf;
  result(ri__cu_dwconv_h2(0, &d, 3, p, p + 8192, NULL, p + 16384) == cudaErrorInvalidValue,
         "rx 3 at stride 1 refused");
  result(ri__cu_dwconv_h2(0, &d, 0, p + 2, p + 8192, NULL, p + 16384) == cudaErrorInvalidValue,
         "an input 2 bytes off 16-byte alignment refused");
  result(ri__cu_dwconv_h2(0, &d, 0, p, p + 8192, NULL, p + 16392) == cudaErrorInvalidValue,
         "an output 8 bytes off 16-byte alignment refused");
  cudaFree(buf);
}

/* ---- engines ---- */

#define ENG_MB 8
#define ENG_IO 8

static int count_str(const char *s, const char *pat) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, pat)) != NULL; p += strlen(pat))
    n++;
  return n;
}

/* max|got - ref| / max|ref| over n floats (inf on a NaN mismatch). */
static double rel_err(const float *got, const float *ref, size_t n) {
  double md = 0, mr = 0;
  for (size_t i = 0; i < n; i++) {
    if (isnan(got[i]) != isnan(ref[i])) return INFINITY;
    if (isnan(ref[i])) continue;
    const double dd = fabs((double)got[i] - ref[i]);
    if (dd > md) md = dd;
    if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
  }
  return md / (mr > 1e-12 ? mr : 1e-12);
}

static void test_engine(const char *dir, const char *model) {
  char path[4096], msg[2048];
  snprintf(path, sizeof path, "%s/%s.onnx", dir, model);
  FILE *f = fopen(path, "rb");
  if (!f) {
    printf("SKIP %s: %s not found\n", model, path);
    return;
  }
  fclose(f);
  ri_engine_t *cpu = NULL, *eng[2] = {NULL, NULL}; /* RI_CUDA_DW_HALF unset, =1 */
  ri_context_t *cc = NULL, *ctx[2] = {NULL, NULL};
  void *in[ENG_IO] = {0}, *ref[ENG_IO] = {0}, *got[ENG_IO] = {0}, *one[ENG_IO] = {0};
  int n_in = 0, n_out = 0;
  if (gpu_build(path, "cpu", RI_PRECISION_FP32, ENG_MB, &cpu, msg, sizeof msg) != RI_OK ||
      ri_context_create(cpu, &cc) != RI_OK) {
    result(0, "%s cpu engine: %s", model, msg);
    goto done;
  }
  for (int k = 0; k < 2; k++) {
    if (k)
      setenv("RI_CUDA_DW_HALF", "1", 1);
    else
      unsetenv("RI_CUDA_DW_HALF");
    ri_status s = gpu_build(path, "cuda", RI_PRECISION_FP16, ENG_MB, &eng[k], msg, sizeof msg);
    if (s == RI_OK && ri_context_create(eng[k], &ctx[k]) != RI_OK) s = RI_ERR_INTERNAL;
    unsetenv("RI_CUDA_DW_HALF");
    if (s != RI_OK) {
      result(0, "%s fp16 RI_CUDA_DW_HALF=%d: build / context: %s", model, k, msg);
      goto done;
    }
    const char *json = NULL;
    if (ri_engine_describe_json(eng[k], &json) != RI_OK || !json) {
      result(0, "%s fp16 RI_CUDA_DW_HALF=%d: describe", model, k);
      goto done;
    }
    const int h2 = count_str(json, "\"dwconv_h2_f16\""), fdw = count_str(json, "\"dwconv_nhwc_f16");
    const int fused = count_str(json, "\"expdw_f16\"") + count_str(json, "\"dwproj_f16\"");
    if (k)
      result(h2 > 0 && fdw == 0 && fused > 0,
             "%s RI_CUDA_DW_HALF=1: %d nodes dwconv_h2_f16, %d dwconv_nhwc_f16, %d expdw / dwproj nodes (>0, "
             "0, >0 expected: the fusions take the half-arithmetic depthwise nodes too)",
             model, h2, fdw, fused);
    else
      result(h2 == 0,
             "%s RI_CUDA_DW_HALF unset: %d nodes dwconv_h2_f16 (0 expected; %d dwconv_nhwc_f16, %d "
             "fused)",
             model, h2, fdw, fused);
  }
  n_in = ri_engine_num_inputs(cpu), n_out = ri_engine_num_outputs(cpu);
  if (n_in > ENG_IO || n_out > ENG_IO) {
    result(0, "%s: too many inputs / outputs", model);
    goto done;
  }
  const int batches[2] = {1, ENG_MB};
  size_t out_n1[ENG_IO] = {0};
  for (int bi = 0; bi < 2; bi++) {
    const int batch = batches[bi];
    gpu_rand_seed(0x51ed2701u); /* the same first image at every batch */
    for (int i = 0; i < n_in; i++) {
      ri_tensor_info ti;
      if (ri_engine_input_info(cpu, i, &ti) != RI_OK) {
        result(0, "%s: input %d description", model, i);
        goto done;
      }
      const size_t n = gpu_numel(&ti, batch);
      free(in[i]);
      in[i] = calloc(n + 1, ri_dtype_size(ti.dtype));
      if (in[i] && ti.dtype == RI_DTYPE_FLOAT32)
        for (size_t j = 0; j < n; j++)
          ((float *)in[i])[j] = (float)(urand() * 4.0 - 2.0);
    }
    size_t out_n[ENG_IO] = {0};
    for (int o = 0; o < n_out; o++) {
      ri_tensor_info oi;
      if (ri_context_output_shape(cc, batch, o, &oi) != RI_OK || oi.dtype != RI_DTYPE_FLOAT32) {
        result(0, "%s: output %d shape / type (float32 expected)", model, o);
        goto done;
      }
      out_n[o] = gpu_numel(&oi, batch);
      free(ref[o]), free(got[o]);
      ref[o] = calloc(out_n[o] + 1, 4), got[o] = calloc(out_n[o] + 1, 4);
      if (bi == 0) out_n1[o] = out_n[o], one[o] = calloc(out_n[o] + 1, 4);
    }
    if (ri_context_run(cc, batch, (const void *const *)in, ref) != RI_OK) {
      result(0, "%s cpu run batch %d: %s", model, batch, ri_context_last_error(cc));
      goto done;
    }
    double err[2][ENG_IO];
    for (int k = 0; k < 2; k++) {
      if (ri_context_run(ctx[k], batch, (const void *const *)in, got) != RI_OK) {
        result(0, "%s fp16 RI_CUDA_DW_HALF=%d run batch %d: %s", model, k, batch,
               ri_context_last_error(ctx[k]));
        goto done;
      }
      for (int o = 0; o < n_out; o++) {
        err[k][o] = rel_err(got[o], ref[o], out_n[o]);
        if (k == 1 && bi == 0) memcpy(one[o], got[o], out_n[o] * 4);
        if (k == 1 && bi == 1)
          result(memcmp(one[o], got[o], out_n1[o] * 4) == 0,
                 "%s RI_CUDA_DW_HALF=1 output %d: image 0 of batch %d gives the bytes of batch 1", model, o,
                 batch);
      }
    }
    for (int o = 0; o < n_out; o++)
      result(
          err[1][o] <= 2.5e-2,
          "%s fp16 batch %d output %d: RI_CUDA_DW_HALF=1 max_rel_err %.3g (tol 2.5e-2; default engine %.3g)",
          model, batch, o, err[1][o], err[0][o]);
  }
done:
  for (int i = 0; i < ENG_IO; i++)
    free(in[i]), free(ref[i]), free(got[i]), free(one[i]);
  for (int k = 0; k < 2; k++) {
    ri_context_destroy(ctx[k]);
    ri_engine_destroy(eng[k]);
  }
  ri_context_destroy(cc);
  ri_engine_destroy(cpu);
}

/* Runs engine e at batch with inputs like test_engine's (seeded), outputs into out[o] (allocated, n[o]
 * floats); 0 on failure (reported). */
static int run_seeded(ri_engine_t *e, const char *what, int batch, void **out, size_t *n) {
  ri_context_t *c = NULL;
  void *in[ENG_IO] = {0};
  int ok = ri_context_create(e, &c) == RI_OK;
  const int n_in = ri_engine_num_inputs(e), n_out = ri_engine_num_outputs(e);
  ok = ok && n_in <= ENG_IO && n_out <= ENG_IO;
  gpu_rand_seed(0x6a1f3c05u);
  for (int i = 0; ok && i < n_in; i++) {
    ri_tensor_info ti;
    ok = ri_engine_input_info(e, i, &ti) == RI_OK && ti.dtype == RI_DTYPE_FLOAT32;
    const size_t m = ok ? gpu_numel(&ti, batch) : 0;
    in[i] = ok ? calloc(m + 1, 4) : NULL;
    ok = ok && in[i];
    for (size_t j = 0; ok && j < m; j++)
      ((float *)in[i])[j] = (float)(urand() * 4.0 - 2.0);
  }
  for (int o = 0; ok && o < n_out; o++) {
    ri_tensor_info oi;
    ok = ri_context_output_shape(c, batch, o, &oi) == RI_OK && oi.dtype == RI_DTYPE_FLOAT32;
    n[o] = ok ? gpu_numel(&oi, batch) : 0;
    out[o] = ok ? calloc(n[o] + 1, 4) : NULL;
    ok = ok && out[o];
  }
  if (ok && ri_context_run(c, batch, (const void *const *)in, out) != RI_OK) {
    result(0, "%s: run at batch %d: %s", what, batch, ri_context_last_error(c));
    ok = 0;
  } else if (!ok) {
    result(0, "%s: context, inputs or outputs at batch %d", what, batch);
  }
  for (int i = 0; i < ENG_IO; i++)
    free(in[i]);
  ri_context_destroy(c);
  return ok;
}

/* The public option (ri_builder_set_half_accumulation, RI_CUDA_DW_HALF unset): the built engine names the
 * half-arithmetic nodes at the default builder level and at level 0, keeps them in the file (loaded with
 * RI_CUDA_DW_HALF=0 set: the stored choice wins) and computes the built engine's bytes; an fp32 engine
 * ignores the option. */
static void test_option(const char *dir, const char *model) {
  char path[4096], msg[2048], rie[256];
  snprintf(path, sizeof path, "%s/%s.onnx", dir, model);
  FILE *f = fopen(path, "rb");
  if (!f) {
    printf("SKIP %s option: %s not found\n", model, path);
    return;
  }
  fclose(f);
  unsetenv("RI_CUDA_DW_HALF");
  for (int lv = 0; lv < 2; lv++) {
    const gpu_build_opts o = {.half_accum = 1, .level = lv ? 1 : 0}; /* default level, level 0 */
    const char *lvn = lv ? "level 0" : "default level";
    ri_engine_t *e = NULL, *l = NULL;
    ri_runtime_t *rt = NULL;
    void *a[ENG_IO] = {0}, *b[ENG_IO] = {0};
    size_t na[ENG_IO] = {0}, nb[ENG_IO] = {0};
    const char *json = NULL;
    if (gpu_build_ex(path, "cuda", RI_PRECISION_FP16, ENG_MB, &o, &e, msg, sizeof msg) != RI_OK) {
      result(0, "%s half accumulation, %s: build: %s", model, lvn, msg);
      continue;
    }
    int h2b = -1, h2l = -1, fb = -1, fl = -1;
    if (ri_engine_describe_json(e, &json) == RI_OK && json) {
      h2b = count_str(json, "\"dwconv_h2_f16\"");
      fb = count_str(json, "\"expdw_f16\"") + count_str(json, "\"dwproj_f16\"");
    }
    snprintf(rie, sizeof rie, "/tmp/test_cuda_dwh2_%d_%d.rie", (int)getpid(), lv);
    ri_status s = ri_engine_save(e, rie);
    setenv("RI_CUDA_DW_HALF", "0", 1);
    if (s == RI_OK) s = ri_runtime_create(&rt);
    if (s == RI_OK) s = ri_runtime_load(rt, rie, &l);
    unsetenv("RI_CUDA_DW_HALF");
    remove(rie);
    if (s != RI_OK) {
      result(0, "%s half accumulation, %s: save / load: %s", model, lvn, rt ? ri_runtime_last_error(rt) : "");
    } else {
      json = NULL;
      if (ri_engine_describe_json(l, &json) == RI_OK && json) {
        h2l = count_str(json, "\"dwconv_h2_f16\"");
        fl = count_str(json, "\"expdw_f16\"") + count_str(json, "\"dwproj_f16\"");
      }
      result(
          h2b > 0 && h2b == h2l && fb == fl,
          "%s half accumulation, %s: built %d dwconv_h2_f16 nodes (%d fused), loaded with RI_CUDA_DW_HALF=0 "
          "%d (%d fused); >0 and equal expected",
          model, lvn, h2b, fb, h2l, fl);
      const int batches[2] = {1, ENG_MB};
      for (int bi = 0; bi < 2; bi++) {
        if (!run_seeded(e, "built", batches[bi], a, na) || !run_seeded(l, "loaded", batches[bi], b, nb))
          break;
        int same = 1;
        for (int o2 = 0; o2 < ri_engine_num_outputs(e); o2++)
          same = same && na[o2] == nb[o2] && memcmp(a[o2], b[o2], na[o2] * 4) == 0;
        result(same, "%s half accumulation, %s: the loaded engine gives the built one's bytes at batch %d",
               model, lvn, batches[bi]);
        for (int i = 0; i < ENG_IO; i++)
          free(a[i]), free(b[i]), a[i] = b[i] = NULL;
      }
    }
    ri_engine_destroy(l);
    ri_runtime_destroy(rt);
    ri_engine_destroy(e);
  }
  const gpu_build_opts o32 = {.half_accum = 1};
  ri_engine_t *e32 = NULL;
  const char *json = NULL;
  if (gpu_build_ex(path, "cuda", RI_PRECISION_FP32, ENG_MB, &o32, &e32, msg, sizeof msg) != RI_OK ||
      ri_engine_describe_json(e32, &json) != RI_OK || !json)
    result(0, "%s half accumulation fp32: build / describe: %s", model, msg);
  else
    result(count_str(json, "\"dwconv_h2_f16\"") == 0 && count_str(json, "\"dwconv_n") > 0,
           "%s half accumulation fp32: ignored (%d dwconv_h2_f16 nodes, %d float depthwise ones)", model,
           count_str(json, "\"dwconv_h2_f16\""), count_str(json, "\"dwconv_n"));
  ri_engine_destroy(e32);
}

int main(int argc, char **argv) {
  for (size_t i = 0; i < sizeof g_cases / sizeof g_cases[0]; i++)
    test_case((int)i);
  test_nan();
  test_refusals();
  if (argc > 1) test_engine(argv[1], "ssd_mobilenet_v2");
  if (argc > 1) test_option(argv[1], "ssd_mobilenet_v2");
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
