/* GPU test of the cuBLASLt tactic for fp16 1x1 convolutions (cuda_conv_lt.c); scripts/gpu/ltconv-run.sh
 * runs it with the forced and default engine tests (176 checks passed on an H200, 2026-11-27, before the
 * padded form; scripts/gpu/ltpad-run.sh runs it with the padded form's cases).
 *
 *   test_cuda_ltconv            one PASS/FAIL line per check, then "N passed, M failed"; exit 1 on failure
 *
 * Core (ri__cu_ltconv_*, no engine): for each case (plain, ReLU, residual, output into a Concat slice with
 * its own image stride, float32 output, no bias; batches 1, 7 and 64) every algorithm of the heuristic's
 * list that the engine may take (split-K 1, no reduction scheme, cublasLtMatmulAlgoCheck passing at batch 1
 * and at the case's batch) runs on fresh random half data and must be within 1e-2 of max |reference| of a
 * double-precision CPU reference on the same half-rounded data (the float bias, or its half rounding when
 * cuBLASLt took the bias as half); every output element outside the written slice must keep its poison;
 * then the first and the last image each run alone (batch 1 layouts, the image copied to buffers of the
 * batch's alignment) and must
 * give the bytes they got inside the batch: batch invariance, which the engine assumes of one algorithm
 * at every M. At least one algorithm must qualify per case (else the tactic could never be taken there).
 * The padded form (GEMM over m rounded up to 8 channels, weights and bias zero beyond m, into a dense half
 * buffer, then k_scatter_cols.cu) the same way on misaligned outputs: SSD's class predictors' shapes (273
 * and 546 channels into float32 rows of that pitch at an odd offset and an odd image stride), 12, 20 and 24
 * channels dense or in odd half slices, with and without bias, ReLU, at batches 1, 3, 7 and 64; bytes
 * outside the slice keep their poison; the buffer's columns m .. m_pad (poisoned before the run) hold 0:
 * the GEMM ran the padded N; images alone give the batch's bytes.
 * Sigmoid (SSD's class slices as the peer's model has them, sigmoid after the Concat) and clip in the
 * padded form: the scatter applies them (reference: the activation on the double sum).
 * The refusals: clip (ReLU6) and sigmoid epilogues in the direct form (accepted in the padded one), an
 * unknown activation, a residual with a float32 output, a residual in the padded form;
 * ri__cu_ltconv_misaligned on SSD's class slice.
 * The scatter alone, every activation code, half and float32 outputs, 273 columns of rows of 280 halves
 * (half2 loads) and of 281 (element loads) holding the same values: the two give the same bits, and match
 * ri__act_apply on the widened half (exactly for none, ReLU and clip; within 2 ulps at max(|ref|, 1)
 * otherwise).
 *
 * Engine: a small model (x[N,64,10,10] -> 1x1 Conv+Relu, 1x1 Conv+Clip(0,6), 3x3 Conv, 1x1 Conv + Add
 * (residual), 1x1 Conv without bias + Sigmoid) built for fp16 on cuda with maximum batch 64 and
 * RI_CUDA_LTCONV=force: the 1x1 ReLU, residual and bias-free convolutions are named "cublaslt algo ...", the
 * clip and 3x3 ones keep the own kernel; outputs against the CPU engine (fp32) within 1e-2 of max |ref| at
 * batches 1, 7 and 64; the last image of batch 7 alone gives the same bytes; the engine saved and loaded back
 * names the same implementations and gives the same bytes; with RI_CUDA_LTCONV=0 no layer is on cuBLASLt; the
 * sigmoid layer runs the padded form (the direct one has no sigmoid epilogue). z has 12 channels (a
 * misaligned output): with RI_CUDA_LTPAD=force as well, pw_nobias runs the padded form ("... padded") and
 * pw_relu the direct one; outputs against the CPU engine at batches 1, 7 and 64; image 63 alone gives its
 * bytes in batch 64; saved and loaded back, the same form and bytes. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "../c/test_onnx_build.h"
#include "backend/cuda/cuda_conv_lt.h"
#include "backend/cuda/kernels.h"
#include "core/half.h"
#include "gpu_rand.h"
#include "gpu_result.h"
#include "graph/ir.h"
#include "runinfer/engine.h"

/* ---- the scatter alone ---- */

static void test_scatter_acts(void) {
  enum { ROWS = 37, COLS = 273, LD0 = 280, LD1 = 281, LDY = 275, IMG_ROWS = 5 };
  const int64_t img = (int64_t)IMG_ROWS * LDY + 3, nimg = (ROWS + IMG_ROWS - 1) / IMG_ROWS;
  const size_t ny = (size_t)(nimg * img);
  uint16_t *h0 = malloc((size_t)ROWS * LD0 * 2), *h1 = malloc((size_t)ROWS * LD1 * 2);
  unsigned char *o0 = malloc(ny * 4), *o1 = malloc(ny * 4);
  void *d0 = NULL, *d1 = NULL, *dy0 = NULL, *dy1 = NULL;
  if (!h0 || !h1 || !o0 || !o1 || cudaMalloc(&d0, (size_t)ROWS * LD0 * 2) != cudaSuccess ||
      cudaMalloc(&d1, (size_t)ROWS * LD1 * 2) != cudaSuccess || cudaMalloc(&dy0, ny * 4) != cudaSuccess ||
      cudaMalloc(&dy1, ny * 4) != cudaSuccess) {
    result(0, "scatter acts: setup");
    goto done;
  }
  fill_half(h0, NULL, (size_t)ROWS * LD0, 8.0); /* values across both signs, past ReLU6's clip */
  for (int r = 0; r < ROWS; r++)
    memcpy(h1 + (size_t)r * LD1, h0 + (size_t)r * LD0, (size_t)LD0 * 2);
  if (cudaMemcpy(d0, h0, (size_t)ROWS * LD0 * 2, cudaMemcpyHostToDevice) != cudaSuccess ||
      cudaMemcpy(d1, h1, (size_t)ROWS * LD1 * 2, cudaMemcpyHostToDevice) != cudaSuccess) {
    result(0, "scatter acts: copies");
    goto done;
  }
  for (int f32 = 0; f32 <= 1; f32++)
    for (int act = RI__ACT_NONE; act <= RI__ACT_HARD_SWISH; act++) {
      const float a = act == RI__ACT_LEAKY_RELU ? 0.1f : act == RI__ACT_HARD_SIGMOID ? 0.2f : 0.f;
      const float b = act == RI__ACT_CLIP ? 6.f : act == RI__ACT_HARD_SIGMOID ? 0.5f : 0.f;
      const size_t es = f32 ? 4 : 2;
      int ok = cudaMemset(dy0, 0xff, ny * 4) == cudaSuccess && cudaMemset(dy1, 0xff, ny * 4) == cudaSuccess &&
               ri__cu_scatter_cols(0, d0, LD0, ROWS, IMG_ROWS, COLS, dy0, f32, LDY, img, act, a, b) ==
                   cudaSuccess &&
               ri__cu_scatter_cols(0, d1, LD1, ROWS, IMG_ROWS, COLS, dy1, f32, LDY, img, act, a, b) ==
                   cudaSuccess &&
               cudaMemcpy(o0, dy0, ny * es, cudaMemcpyDeviceToHost) == cudaSuccess &&
               cudaMemcpy(o1, dy1, ny * es, cudaMemcpyDeviceToHost) == cudaSuccess;
      const int same = ok && memcmp(o0, o1, ny * es) == 0;
      double worst = 0; /* ulps of float (of half for a half output) from ri__act_apply */
      size_t outside = 0;
      for (int64_t r = 0; ok && r < ROWS; r++)
        for (int j = 0; j < LDY; j++) {
          const size_t yi = (size_t)((r / IMG_ROWS) * img + (r % IMG_ROWS) * LDY + j);
          float got;
          if (f32)
            memcpy(&got, o0 + yi * 4, 4);
          else {
            uint16_t hv;
            memcpy(&hv, o0 + yi * 2, 2);
            got = ri__half_to_float(hv);
          }
          if (j >= COLS) { /* past the columns: the poison stays */
            outside += f32 ? memcmp(o0 + yi * 4, "\xff\xff\xff\xff", 4) != 0
                           : memcmp(o0 + yi * 2, "\xff\xff", 2) != 0;
            continue;
          }
          float ref = ri__act_apply((ri__act)act, a, b, ri__half_to_float(h0[(size_t)r * LD0 + j]));
          if (!f32) ref = ri__half_to_float(ri__float_to_half(ref));
          /* ulps at max(|ref|, 1): a contracted a * x + b near 0 differs by an ulp of b */
          const double mag = fabs((double)ref) > 1 ? fabs((double)ref) : 1,
                       ulp = mag * (f32 ? 0x1p-23 : 0x1p-10);
          const double e = isnan(got) ? INFINITY : fabs((double)got - ref) / ulp;
          if (e > worst) worst = e;
        }
      const int exact = act == RI__ACT_NONE || act == RI__ACT_RELU || act == RI__ACT_CLIP;
      result(ok && same && outside == 0 && (exact ? worst == 0 : worst <= 2.0),
             "scatter act %d %s: half2 and element loads %s, worst %.2f ulp from ri__act_apply, %zu written "
             "past the columns",
             act, f32 ? "f32" : "f16", same ? "same bits" : "DIFFER", worst, outside);
    }
done:
  cudaFree(d0), cudaFree(d1), cudaFree(dy0), cudaFree(dy1);
  free(h0), free(h1), free(o0), free(o1);
}

/* ---- core ---- */

/* slice: 0 dense output; 1 a Concat slice (pitch m + 24, offset 8, image stride padded by 40); 2 an odd
 * slice as SSD's class predictors write (pitch m, offset 7, image stride rows * m + 13). pad: the padded
 * form (GEMM into a dense half buffer, then the scatter). */
typedef struct {
  const char *what;
  int n, h, w, c, m, act, bias, res, slice, f32, pad;
} lcase;

typedef struct {
  void *x, *w, *r, *y, *bf, *bh, *ws, *pad;
  void *x1, *r1, *y1; /* one image, at the alignment the batch's buffers have (the query promised it) */
} dbufs;

/* Reads output element i (of the whole buffer) as a double; NAN for a NaN or a float32 output that is not
 * a finite number. */
static double out_at(const unsigned char *y, size_t i, int f32) {
  if (f32) {
    float v;
    memcpy(&v, y + i * 4, 4);
    return v;
  }
  uint16_t hv;
  memcpy(&hv, y + i * 2, 2);
  return ri__half_to_float(hv);
}

static void test_case(cublasLtHandle_t lt, const lcase *t) {
  char name[200];
  snprintf(name, sizeof name, "ltconv %s n=%d %dx%dx%d -> %d act=%d bias=%d res=%d slice=%d out=%s%s",
           t->what, t->n, t->h, t->w, t->c, t->m, t->act, t->bias, t->res, t->slice, t->f32 ? "f32" : "f16",
           t->pad ? " padded" : "");
  const int64_t rows = (int64_t)t->h * t->w, ldw = (t->c + 7) / 8 * 8;
  const int64_t ldy = t->slice == 1 ? t->m + 24 : t->m, y_off = t->slice == 1 ? 8 : t->slice == 2 ? 7 : 0;
  const int64_t img = rows * ldy + (t->slice == 1 ? 40 : t->slice == 2 ? 13 : 0);
  const size_t es = t->f32 ? 4 : 2;
  /* weight rows and bias entries: m, or m rounded up to 8 in the padded form (zero beyond m) */
  const int64_t mw = t->pad ? (t->m + 7) / 8 * 8 : t->m;
  const size_t nx = (size_t)(t->n * rows * t->c), nw = (size_t)(mw * ldw), nr = (size_t)(t->n * rows * t->m);
  const size_t ny = (size_t)(t->n * img) + 64; /* the last image's slice ends inside; a guard after */
  uint16_t *hx = malloc(nx * 2), *hw = calloc(nw, 2), *hr = malloc(nr * 2 + 2), *hbh = calloc((size_t)mw, 2);
  float *fx = malloc(nx * 4), *fw = calloc(nw, 4), *fr = malloc(nr * 4 + 4), *fb = calloc((size_t)mw, 4);
  unsigned char *hy = malloc(ny * es), *h1 = malloc(ny * es);
  dbufs d;
  memset(&d, 0, sizeof d);
  ri__cu_ltconv p;
  memset(&p, 0, sizeof p);
  const char *call = "";
  int qualified = 0;
  if (!hx || !hw || !hr || !hbh || !fx || !fw || !fr || !fb || !hy || !h1) {
    result(0, "%s: out of host memory", name);
    goto done;
  }
  fill_half(hx, fx, nx, 1.0);
  for (int j = 0; j < t->m; j++)
    for (int k = 0; k < t->c; k++) {
      uint16_t h = ri__float_to_half((float)((urand() * 2.0 - 1.0) / sqrt((double)t->c)));
      hw[j * ldw + k] = h, fw[j * ldw + k] = ri__half_to_float(h);
    }
  fill_half(hr, fr, nr, 1.0);
  for (int j = 0; j < t->m; j++) {
    fb[j] = (float)(urand() - 0.5);
    hbh[j] = ri__float_to_half(fb[j]);
  }
  if (cudaMalloc(&d.x, nx * 2) != cudaSuccess || cudaMalloc(&d.w, nw * 2) != cudaSuccess ||
      cudaMalloc(&d.r, nr * 2 + 2) != cudaSuccess || cudaMalloc(&d.y, ny * es) != cudaSuccess ||
      cudaMalloc(&d.bf, (size_t)mw * 4) != cudaSuccess || cudaMalloc(&d.bh, (size_t)mw * 2) != cudaSuccess ||
      cudaMalloc(&d.ws, RI__CU_LT_WS_BYTES) != cudaSuccess ||
      cudaMalloc(&d.x1, (size_t)(rows * t->c) * 2) != cudaSuccess ||
      cudaMalloc(&d.r1, (size_t)(rows * t->m) * 2) != cudaSuccess ||
      cudaMalloc(&d.y1, (size_t)(img + 64) * es) != cudaSuccess ||
      cudaMemcpy(d.x, hx, nx * 2, cudaMemcpyHostToDevice) != cudaSuccess ||
      cudaMemcpy(d.w, hw, nw * 2, cudaMemcpyHostToDevice) != cudaSuccess ||
      cudaMemcpy(d.r, hr, nr * 2, cudaMemcpyHostToDevice) != cudaSuccess ||
      cudaMemcpy(d.bf, fb, (size_t)mw * 4, cudaMemcpyHostToDevice) != cudaSuccess ||
      cudaMemcpy(d.bh, hbh, (size_t)mw * 2, cudaMemcpyHostToDevice) != cudaSuccess) {
    result(0, "%s: device setup: %s", name, cudaGetErrorString(cudaGetLastError()));
    goto done;
  }
  ri__cu_ltconv_shape s;
  memset(&s, 0, sizeof s);
  s.n = t->n, s.rows = rows, s.k = t->c, s.m = t->m, s.ldw = ldw, s.ldy = ldy, s.y_img_stride = img;
  s.act = t->act, s.y_f32 = t->f32, s.has_bias = t->bias, s.has_res = t->res;
  s.act_a = 0.f, s.act_b = 6.f; /* the clip cases' bounds (ReLU6) */
  s.y_align = y_off ? (uint32_t)(y_off * (int64_t)es & -(y_off * (int64_t)es)) : 256;
  s.pad = t->pad;
  const char *why = ri__cu_ltconv_refusal(&s);
  if (why) {
    result(0, "%s: refused (%s)", name, why);
    goto done;
  }
  if (t->pad) {
    /* the tuner offers the form only where the output is misaligned: every padded case here is */
    result(ri__cu_ltconv_misaligned(&s), "%s: the output form is misaligned for cuBLASLt", name);
    if (cudaMalloc(&d.pad, ri__cu_ltconv_pad_bytes(&s)) != cudaSuccess) {
      result(0, "%s: cudaMalloc of the padded buffer failed", name);
      goto done;
    }
  }
  cublasLtMatmulHeuristicResult_t res[RI__CU_LT_MAX_ALGOS];
  int count = 0;
  cublasStatus_t e = ri__cu_ltconv_create(&p, &s, &call);
  if (e == CUBLAS_STATUS_SUCCESS) e = ri__cu_ltconv_algos(lt, &p, res, &count, &call);
  if (e != CUBLAS_STATUS_SUCCESS) {
    result(0, "%s: %s failed: %s", name, call, cublasLtGetStatusString(e));
    goto done;
  }
  /* the reference, per written element (double, on the half-rounded data) */
  for (int i = 0; i < count; i++) {
    char an[260];
    snprintf(an, sizeof an, "%s algo %d%s", name, i, p.bias16 ? " (half bias)" : "");
    size_t ws1 = 0, wsn = 0;
    if (!ri__cu_ltconv_invariant(&res[i].algo)) {
      printf("skip %s: splits K or reduces\n", an);
      continue;
    }
    if (ri__cu_ltconv_set_batch(&p, 1, &call) != CUBLAS_STATUS_SUCCESS ||
        ri__cu_ltconv_check(lt, &p, &res[i].algo, &ws1, &call) != CUBLAS_STATUS_SUCCESS ||
        ri__cu_ltconv_set_batch(&p, t->n, &call) != CUBLAS_STATUS_SUCCESS ||
        ri__cu_ltconv_check(lt, &p, &res[i].algo, &wsn, &call) != CUBLAS_STATUS_SUCCESS ||
        ws1 > RI__CU_LT_WS_BYTES || wsn > RI__CU_LT_WS_BYTES) {
      printf("skip %s: refused at batch 1 or %d\n", an, t->n);
      continue;
    }
    qualified++;
    void *yfirst = (char *)d.y + (size_t)y_off * es;
    if (cudaMemset(d.y, 0xff, ny * es) != cudaSuccess ||
        (d.pad && cudaMemset(d.pad, 0xff, ri__cu_ltconv_pad_bytes(&s)) != cudaSuccess)) {
      result(0, "%s: cudaMemset failed", an);
      continue;
    }
    e = ri__cu_ltconv_run(lt, &p, &res[i].algo, 0, d.x, d.w, d.bf, d.bh, t->res ? d.r : NULL, yfirst, d.pad,
                          d.ws, RI__CU_LT_WS_BYTES, &call);
    cudaError_t ce = cudaDeviceSynchronize();
    if (e != CUBLAS_STATUS_SUCCESS || ce != cudaSuccess ||
        cudaMemcpy(hy, d.y, ny * es, cudaMemcpyDeviceToHost) != cudaSuccess) {
      result(0, "%s: run failed: %s %s / %s", an, call, cublasLtGetStatusString(e), cudaGetErrorString(ce));
      continue;
    }
    unsigned char *mark = calloc(ny, 1);
    if (!mark) {
      result(0, "%s: out of host memory", an);
      continue;
    }
    double maxref = 0, maxerr = 0;
    for (int b = 0; b < t->n; b++)
      for (int64_t r = 0; r < rows; r++)
        for (int j = 0; j < t->m; j++) {
          double v = t->bias ? (p.bias16 ? ri__half_to_float(hbh[j]) : fb[j]) : 0.0;
          const float *xp = fx + ((size_t)b * rows + r) * t->c, *wp = fw + (size_t)j * ldw;
          for (int k = 0; k < t->c; k++)
            v += (double)xp[k] * wp[k];
          if (t->res) v += fr[((size_t)b * rows + r) * t->m + j];
          if (t->act != RI__ACT_NONE) v = ri__act_apply(t->act, 0.f, 6.f, (float)v); /* clip cases: 0..6 */
          size_t yi = (size_t)(b * img + r * ldy + y_off + j);
          mark[yi] = 1;
          double got = out_at(hy, yi, t->f32);
          double err = isnan(got) ? INFINITY : fabs(got - v);
          if (err > maxerr) maxerr = err;
          if (fabs(v) > maxref) maxref = fabs(v);
        }
    size_t poison = 0;
    for (size_t k = 0; k < ny; k++)
      for (size_t q = 0; q < es; q++)
        if (!mark[k] && hy[k * es + q] != 0xff) poison++;
    free(mark);
    double rel = maxerr / (maxref > 1 ? maxref : 1);
    result(rel <= 1e-2 && poison == 0, "%s: max_rel_err=%.3g (max|ref|=%.3g), %zu bytes written outside", an,
           rel, maxref, poison);
    if (t->pad && mw > t->m) {
      /* N padded: the GEMM wrote all m_pad columns of the buffer (poisoned before), 0 beyond m */
      const size_t pb = ri__cu_ltconv_pad_bytes(&s), prow = (size_t)mw;
      uint16_t *hp = malloc(pb);
      size_t bad = 0;
      int got = hp && cudaMemcpy(hp, d.pad, pb, cudaMemcpyDeviceToHost) == cudaSuccess;
      for (size_t r = 0; got && r < (size_t)(t->n * rows); r++)
        for (size_t j = (size_t)t->m; j < prow; j++)
          bad += ri__half_to_float(hp[r * prow + j]) != 0.0f;
      result(got && bad == 0, "%s: the GEMM ran %lld channels: buffer columns %d..%lld are 0 (%zu are not)",
             an, (long long)mw, t->m, (long long)mw - 1, bad);
      free(hp);
    }
    /* the first and the last image alone: the bytes they got in the batch */
    size_t differ = 0;
    int ran = 1;
    const int imgs[2] = {0, t->n - 1};
    for (int q = 0; q < (t->n > 1 ? 2 : 1) && ran; q++) {
      int b = imgs[q];
      const size_t xi = (size_t)(rows * t->c) * 2, ri = (size_t)(rows * t->m) * 2;
      ran = cudaMemcpy(d.x1, (char *)d.x + (size_t)b * xi, xi, cudaMemcpyDeviceToDevice) == cudaSuccess &&
            cudaMemcpy(d.r1, (char *)d.r + (size_t)b * ri, ri, cudaMemcpyDeviceToDevice) == cudaSuccess &&
            cudaMemset(d.y1, 0xff, (size_t)(img + 64) * es) == cudaSuccess &&
            ri__cu_ltconv_set_batch(&p, 1, &call) == CUBLAS_STATUS_SUCCESS &&
            ri__cu_ltconv_run(lt, &p, &res[i].algo, 0, d.x1, d.w, d.bf, d.bh, t->res ? d.r1 : NULL,
                              (char *)d.y1 + (size_t)y_off * es, d.pad, d.ws, RI__CU_LT_WS_BYTES,
                              &call) == CUBLAS_STATUS_SUCCESS &&
            cudaDeviceSynchronize() == cudaSuccess &&
            cudaMemcpy(h1, d.y1, (size_t)(img + 64) * es, cudaMemcpyDeviceToHost) == cudaSuccess;
      for (int64_t r = 0; ran && r < rows; r++) {
        size_t off = (size_t)(r * ldy + y_off) * es, boff = (size_t)(b * img) * es;
        differ += memcmp(h1 + off, hy + boff + off, (size_t)t->m * es) != 0;
      }
    }
    if (ri__cu_ltconv_set_batch(&p, t->n, &call) != CUBLAS_STATUS_SUCCESS) ran = 0;
    result(ran && differ == 0, "%s: first and last image alone give the batch's bytes (%zu rows differ%s)",
           an, differ, ran ? "" : ", a run failed");
  }
  result(qualified > 0, "%s: %d of %d algorithms are batch-invariant and run at batch 1 and %d", name,
         qualified, count, t->n);
done:
  ri__cu_ltconv_destroy(&p);
  cudaFree(d.x), cudaFree(d.w), cudaFree(d.r), cudaFree(d.y), cudaFree(d.bf), cudaFree(d.bh), cudaFree(d.ws);
  cudaFree(d.x1), cudaFree(d.r1), cudaFree(d.y1), cudaFree(d.pad);
  free(hx), free(hw), free(hr), free(hbh), free(fx), free(fw), free(fr), free(fb), free(hy), free(h1);
}

static void test_refusals(void) {
  ri__cu_ltconv_shape s;
  memset(&s, 0, sizeof s);
  s.n = 4, s.rows = 100, s.k = 64, s.m = 96, s.ldw = 64, s.ldy = 96, s.y_img_stride = 9600, s.y_align = 256;
  s.has_bias = 1;
  result(ri__cu_ltconv_refusal(&s) == NULL, "refusal: plain bias epilogue accepted");
  s.act = RI__ACT_RELU;
  result(ri__cu_ltconv_refusal(&s) == NULL, "refusal: ReLU accepted");
  s.act = RI__ACT_CLIP;
  result(ri__cu_ltconv_refusal(&s) != NULL, "refusal: clip (ReLU6) refused");
  s.act = RI__ACT_SIGMOID;
  result(ri__cu_ltconv_refusal(&s) != NULL, "refusal: sigmoid refused");
  s.pad = 1;
  result(ri__cu_ltconv_refusal(&s) == NULL, "refusal: sigmoid accepted in the padded form (its scatter)");
  s.act = RI__ACT_CLIP;
  result(ri__cu_ltconv_refusal(&s) == NULL, "refusal: clip accepted in the padded form (its scatter)");
  s.act = RI__ACT_HARD_SWISH + 1;
  result(ri__cu_ltconv_refusal(&s) != NULL, "refusal: an unknown activation code refused in the padded form");
  s.act = RI__ACT_NONE, s.pad = 0;
  s.has_res = 1, s.y_f32 = 1;
  result(ri__cu_ltconv_refusal(&s) != NULL, "refusal: residual with a float32 output refused");
  s.y_f32 = 0, s.pad = 1;
  result(ri__cu_ltconv_refusal(&s) != NULL, "refusal: residual in the padded form refused");
  s.has_res = 0;
  result(ri__cu_ltconv_refusal(&s) == NULL && !ri__cu_ltconv_misaligned(&s),
         "refusal: padded form without residual accepted; 96 channels dense at 256 bytes are aligned");
  /* the scatter's own refusals (host checks, nothing launched): an activation code past hard swish, more
   * columns than the buffer's rows hold */
  result(ri__cu_scatter_cols(0, NULL, 280, 1, 1, 273, NULL, 1, 273, 273, RI__ACT_HARD_SWISH + 1, 0.f, 0.f) ==
                 cudaErrorInvalidValue &&
             ri__cu_scatter_cols(0, NULL, 272, 1, 1, 273, NULL, 1, 273, 273, RI__ACT_SIGMOID, 0.f, 0.f) ==
                 cudaErrorInvalidValue,
         "scatter: an unknown activation and cols past the buffer's row refused");
  s.ldy = 273, s.m = 273, s.y_img_stride = 1917 * 91, s.y_f32 = 1, s.y_align = 4;
  result(ri__cu_ltconv_misaligned(&s) && ri__cu_ltconv_pad_ld(&s) == 280 &&
             ri__cu_ltconv_pad_bytes(&s) == (size_t)(4 * 100 * 280 * 2),
         "padded form: SSD's class slice (pitch 273, float32) is misaligned; buffer rows of 280 halves");
}

/* ---- engine ---- */

/* x[N,64,10,10]: a = Relu(Conv1x1(x) 64->96), b = Clip(Conv1x1(a) 96->64, 0, 6), c = Conv3x3(b) 64->64 pads
 * 1, y = Conv1x1(x) 64->64 + c, z = Sigmoid(Conv1x1 no bias (y) 64->12) (12 channels: a misaligned output,
 * where the padded form applies; the sigmoid, which the direct form has no epilogue for, applied in its
 * scatter); outputs y, z. */
static uint8_t *model(size_t *len) {
  Onnx__ModelProto *m = tb_model(8, 13);
  tb_input(m, "x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, (const int64_t[]){-1, 64, 10, 10});
  struct {
    const char *w, *b;
    int64_t o, i, k;
  } conv[5] = {{"w1", "b1", 96, 64, 1},
               {"w2", "b2", 64, 96, 1},
               {"w3", "b3", 64, 64, 3},
               {"w4", "b4", 64, 64, 1},
               {"w5", NULL, 12, 64, 1}};
  for (int c = 0; c < 5; c++) {
    size_t n = (size_t)(conv[c].o * conv[c].i * conv[c].k * conv[c].k);
    float *v = tb_alloc(n * sizeof(float));
    for (size_t k = 0; k < n; k++)
      v[k] = (float)((urand() * 2.0 - 1.0) / sqrt((double)(conv[c].i * conv[c].k * conv[c].k)));
    Onnx__TensorProto *t = tb_tensor(conv[c].w, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4,
                                     (const int64_t[]){conv[c].o, conv[c].i, conv[c].k, conv[c].k});
    tb_float_data(t, v, n);
    tb_add_init(m, t);
    if (!conv[c].b) continue;
    float *bv = tb_alloc((size_t)conv[c].o * sizeof(float));
    for (int64_t k = 0; k < conv[c].o; k++)
      bv[k] = (float)(urand() - 0.5);
    t = tb_tensor(conv[c].b, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, (const int64_t[]){conv[c].o});
    tb_float_data(t, bv, (size_t)conv[c].o);
    tb_add_init(m, t);
  }
  float lo = 0.f, hi = 6.f;
  Onnx__TensorProto *t = tb_tensor("lo", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0, NULL);
  tb_float_data(t, &lo, 1);
  tb_add_init(m, t);
  t = tb_tensor("hi", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0, NULL);
  tb_float_data(t, &hi, 1);
  tb_add_init(m, t);
  tb_node(m, "Conv", "pw_relu", "x,w1,b1", "a0");
  tb_node(m, "Relu", "relu", "a0", "a");
  tb_node(m, "Conv", "pw_clip", "a,w2,b2", "b0");
  tb_node(m, "Clip", "clip", "b0,lo,hi", "b");
  Onnx__NodeProto *n = tb_node(m, "Conv", "k3", "b,w3,b3", "c");
  tb_attr_ints(n, "pads", (const int64_t[]){1, 1, 1, 1}, 4);
  tb_node(m, "Conv", "pw_res", "x,w4,b4", "d");
  tb_node(m, "Add", "add", "d,c", "y");
  tb_node(m, "Conv", "pw_nobias", "y,w5", "z0");
  tb_node(m, "Sigmoid", "sig", "z0", "z");
  tb_output(m, "y");
  tb_output(m, "z");
  return tb_pack(m, len);
}

static ri_status build(const char *path, const char *device, ri_precision prec, ri_engine_t **e, char *msg,
                       size_t cap) {
  ri_builder_t *b = NULL;
  ri_status s = ri_builder_create(&b);
  if (s == RI_OK) s = ri_builder_set_max_batch(b, 64);
  if (s == RI_OK) s = ri_builder_set_device(b, device);
  if (s == RI_OK) s = ri_builder_set_precision(b, prec);
  if (s == RI_OK) s = ri_builder_build_onnx(b, path, e);
  snprintf(msg, cap, "%s", b ? ri_builder_last_error(b) : "no builder");
  ri_builder_destroy(b);
  return s;
}

/* The "impl" of layer `layer` in the engine's description, into buf ("" when not found). */
static void impl_of(ri_engine_t *e, const char *layer, char *buf, size_t cap) {
  const char *json = NULL;
  buf[0] = 0;
  if (ri_engine_describe_json(e, &json) != RI_OK || !json) return;
  char key[80];
  snprintf(key, sizeof key, "{\"name\":\"%s\"", layer);
  const char *p = strstr(json, key);
  if (!p) return;
  p = strstr(p, "\"impl\":\"");
  if (!p) return;
  p += 8;
  size_t n = 0;
  while (p[n] && p[n] != '"' && n + 1 < cap)
    n++;
  memcpy(buf, p, n);
  buf[n] = 0;
}

/* Runs engine e at `batch` on x; outputs y, z (float32) into out[0], out[1]. */
static int run(ri_engine_t *e, int batch, const float *x, float *out[2], char *msg, size_t cap) {
  ri_context_t *c = NULL;
  int ok = ri_context_create(e, &c) == RI_OK;
  const void *in[1] = {x};
  void *o[2] = {out[0], out[1]};
  ok = ok && ri_context_run(c, batch, in, o) == RI_OK;
  if (!ok) snprintf(msg, cap, "%s", c ? ri_context_last_error(c) : "context creation failed");
  ri_context_destroy(c);
  return ok;
}

static double rel_err(const float *got, const float *ref, size_t n) {
  double me = 0, mr = 0;
  for (size_t i = 0; i < n; i++) {
    double e = isnan(got[i]) ? INFINITY : fabs((double)got[i] - ref[i]);
    if (e > me) me = e;
    if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
  }
  return me / (mr > 1 ? mr : 1);
}

/* Outputs of engine e against the CPU engine at batches 1, 7 and 64 on x (64 images): y and z within 1e-2
 * of max |ref|; ref and got: y and z buffers of 64 images each. */
static void against_cpu(const char *what, ri_engine_t *cpu, ri_engine_t *e, const float *x, float *ref[2],
                        float *got[2]) {
  static const int batches[3] = {1, 7, 64};
  const size_t per_y = 64 * 100, per_z = 12 * 100;
  char msg[512];
  for (int k = 0; k < 3; k++) {
    const int b = batches[k];
    if (!run(cpu, b, x, ref, msg, sizeof msg) || !run(e, b, x, got, msg, sizeof msg)) {
      result(0, "%s: batch %d: run failed: %s", what, b, msg);
      continue;
    }
    double ey = rel_err(got[0], ref[0], (size_t)b * per_y), ez = rel_err(got[1], ref[1], (size_t)b * per_z);
    result(ey <= 1e-2 && ez <= 1e-2, "%s: batch %d against the CPU engine: y %.3g, z %.3g (<= 1e-2)", what, b,
           ey, ez);
  }
}

static void test_engine(void) {
  char path[] = "/tmp/ri_ltconv_XXXXXX", rie[64], msg[512];
  int fd = mkstemp(path);
  size_t len = 0;
  uint8_t *bytes = model(&len);
  if (fd < 0 || write(fd, bytes, len) != (ssize_t)len) {
    result(0, "engine: cannot write the model to %s", path);
    if (fd >= 0) close(fd);
    tb_reset();
    return;
  }
  close(fd);
  tb_reset();
  snprintf(rie, sizeof rie, "%s.rie", path);
  const size_t per_x = 64 * 100, per_y = 64 * 100, per_z = 12 * 100;
  float *x = malloc(64 * per_x * 4), *gy = malloc(64 * per_y * 4), *gz = malloc(64 * per_z * 4);
  float *ry = malloc(64 * per_y * 4), *rz = malloc(64 * per_z * 4), *ay = malloc(per_y * 4),
        *az = malloc(per_z * 4);
  ri_engine_t *cpu = NULL, *lt = NULL, *off = NULL, *back = NULL, *padf = NULL, *pback = NULL;
  if (!x || !gy || !gz || !ry || !rz || !ay || !az) {
    result(0, "engine: out of host memory");
    goto done;
  }
  for (size_t i = 0; i < 64 * per_x; i++)
    x[i] = (float)(urand() * 2.0 - 1.0);
  if (build(path, "cpu", RI_PRECISION_FP32, &cpu, msg, sizeof msg) != RI_OK) {
    result(0, "engine: CPU build failed: %s", msg);
    goto done;
  }
  setenv("RI_CUDA_LTCONV", "force", 1);
  ri_status s = build(path, "cuda", RI_PRECISION_FP16, &lt, msg, sizeof msg);
  setenv("RI_CUDA_LTPAD", "force", 1);
  ri_status sp = build(path, "cuda", RI_PRECISION_FP16, &padf, msg, sizeof msg);
  unsetenv("RI_CUDA_LTPAD");
  setenv("RI_CUDA_LTCONV", "0", 1);
  ri_status s0 = build(path, "cuda", RI_PRECISION_FP16, &off, msg, sizeof msg);
  unsetenv("RI_CUDA_LTCONV");
  if (s != RI_OK || s0 != RI_OK || sp != RI_OK) {
    result(0, "engine: fp16 CUDA build failed: %s", msg);
    goto done;
  }
  static const char *const on_lt[3] = {"pw_relu", "pw_res", "pw_nobias"}, *const own[2] = {"pw_clip", "k3"};
  char impl[200];
  for (int i = 0; i < 3; i++) {
    impl_of(lt, on_lt[i], impl, sizeof impl);
    result(strncmp(impl, "cublaslt algo ", 14) == 0, "engine: %s runs on cuBLASLt with force (impl \"%s\")",
           on_lt[i], impl);
  }
  for (int i = 0; i < 2; i++) {
    impl_of(lt, own[i], impl, sizeof impl);
    result(impl[0] && strstr(impl, "cublaslt") == NULL, "engine: %s keeps the own kernel (impl \"%s\")",
           own[i], impl);
  }
  int none = 1;
  for (int i = 0; i < 3; i++) {
    impl_of(off, on_lt[i], impl, sizeof impl);
    none &= strstr(impl, "cublaslt") == NULL;
  }
  result(none, "engine: RI_CUDA_LTCONV=0 puts no layer on cuBLASLt");
  float *ref[2] = {ry, rz}, *got[2] = {gy, gz};
  against_cpu("engine", cpu, lt, x, ref, got);
  /* the last image of batch 7 alone */
  float *go[2] = {gy, gz}, *ao[2] = {ay, az};
  int ok = run(lt, 7, x, go, msg, sizeof msg) && run(lt, 1, x + 6 * per_x, ao, msg, sizeof msg);
  result(ok && memcmp(ay, gy + 6 * per_y, per_y * 4) == 0 && memcmp(az, gz + 6 * per_z, per_z * 4) == 0,
         "engine: image 6 alone gives its bytes in batch 7%s%s", ok ? "" : ": ", ok ? "" : msg);
  /* saved and loaded back: the same implementations and bytes */
  ri_runtime_t *rt = NULL;
  ok = ri_engine_save(lt, rie) == RI_OK && ri_runtime_create(&rt) == RI_OK &&
       ri_runtime_load(rt, rie, &back) == RI_OK;
  if (!ok) result(0, "engine: save / load of %s failed: %s", rie, rt ? ri_runtime_last_error(rt) : "");
  ri_runtime_destroy(rt);
  if (!ok) goto done;
  int same = 1;
  for (int i = 0; i < 3; i++) {
    char a[200], b2[200];
    impl_of(lt, on_lt[i], a, sizeof a);
    impl_of(back, on_lt[i], b2, sizeof b2);
    same &= strcmp(a, b2) == 0;
  }
  float *bo[2] = {ry, rz};
  ok = run(back, 7, x, bo, msg, sizeof msg) && run(lt, 7, x, go, msg, sizeof msg);
  result(same && ok && memcmp(ry, gy, 7 * per_y * 4) == 0 && memcmp(rz, gz, 7 * per_z * 4) == 0,
         "engine: loaded back, the same cuBLASLt layers and bytes at batch 7");

  impl_of(lt, "pw_nobias", impl, sizeof impl);
  result(strstr(impl, " padded") != NULL,
         "engine: pw_nobias (sigmoid) runs the padded form without RI_CUDA_LTPAD=force (impl \"%s\")", impl);
  /* the padded form (RI_CUDA_LTPAD=force with RI_CUDA_LTCONV=force): on the 12-channel layer only */
  impl_of(padf, "pw_nobias", impl, sizeof impl);
  result(strncmp(impl, "cublaslt algo ", 14) == 0 && strstr(impl, " padded") != NULL,
         "engine padded: pw_nobias (12 channels) runs the padded form (impl \"%s\")", impl);
  impl_of(padf, "pw_relu", impl, sizeof impl);
  result(strncmp(impl, "cublaslt algo ", 14) == 0 && strstr(impl, "padded") == NULL,
         "engine padded: pw_relu (96 channels, aligned) runs the direct form (impl \"%s\")", impl);
  against_cpu("engine padded", cpu, padf, x, ref, got);
  ok = run(padf, 64, x, go, msg, sizeof msg) && run(padf, 1, x + 63 * per_x, ao, msg, sizeof msg);
  result(ok && memcmp(ay, gy + 63 * per_y, per_y * 4) == 0 && memcmp(az, gz + 63 * per_z, per_z * 4) == 0,
         "engine padded: image 63 alone gives its bytes in batch 64%s%s", ok ? "" : ": ", ok ? "" : msg);
  rt = NULL;
  ok = ri_engine_save(padf, rie) == RI_OK && ri_runtime_create(&rt) == RI_OK &&
       ri_runtime_load(rt, rie, &pback) == RI_OK;
  if (!ok) result(0, "engine padded: save / load of %s failed: %s", rie, rt ? ri_runtime_last_error(rt) : "");
  ri_runtime_destroy(rt);
  if (!ok) goto done;
  char pa[200], pb[200];
  impl_of(padf, "pw_nobias", pa, sizeof pa);
  impl_of(pback, "pw_nobias", pb, sizeof pb);
  ok = run(pback, 7, x, bo, msg, sizeof msg) && run(padf, 7, x, go, msg, sizeof msg);
  result(strcmp(pa, pb) == 0 && ok && memcmp(ry, gy, 7 * per_y * 4) == 0 &&
             memcmp(rz, gz, 7 * per_z * 4) == 0,
         "engine padded: loaded back, the same form (\"%s\") and bytes at batch 7", pb);
done:
  ri_engine_destroy(cpu);
  ri_engine_destroy(lt);
  ri_engine_destroy(off);
  ri_engine_destroy(back);
  ri_engine_destroy(padf);
  ri_engine_destroy(pback);
  free(x), free(gy), free(gz), free(ry), free(rz), free(ay), free(az);
  remove(path);
  remove(rie);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  gpu_rand_seed(0x9d2c5680a1b2c3d4ull);
  cublasLtHandle_t lt = NULL;
  if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) {
    printf("FAIL cublasLtCreate\n");
    return 1;
  }
  printf("cuBLASLt %zu\n", cublasLtGetVersion());
  test_refusals();
  static const lcase cases[] = {
      {"plain", 7, 10, 10, 64, 96, RI__ACT_NONE, 1, 0, 0, 0, 0},
      {"relu", 7, 10, 10, 96, 64, RI__ACT_RELU, 1, 0, 0, 0, 0},
      {"residual", 7, 10, 10, 64, 64, RI__ACT_NONE, 1, 1, 0, 0, 0},
      {"residual relu", 1, 19, 19, 96, 64, RI__ACT_RELU, 1, 1, 0, 0, 0},
      {"concat slice", 7, 10, 10, 64, 24, RI__ACT_NONE, 1, 0, 1, 0, 0},
      {"f32 out", 7, 10, 10, 64, 24, RI__ACT_NONE, 1, 0, 1, 1, 0},
      {"no bias", 7, 5, 5, 64, 32, RI__ACT_NONE, 0, 0, 0, 0, 0},
      {"batch 1", 1, 19, 19, 576, 160, RI__ACT_NONE, 1, 0, 0, 0, 0},
      {"batch 64", 64, 19, 19, 96, 576, RI__ACT_RELU, 1, 0, 0, 0, 0},
      {"batch 64 slice", 64, 10, 10, 512, 546, RI__ACT_NONE, 1, 0, 1, 0, 0},
      {"padded ssd class 0", 3, 19, 19, 576, 273, RI__ACT_NONE, 1, 0, 2, 1, 1},
      {"padded ssd class 1", 3, 10, 10, 1280, 546, RI__ACT_NONE, 1, 0, 2, 1, 1},
      {"padded dense relu", 7, 10, 10, 64, 12, RI__ACT_RELU, 1, 0, 0, 0, 1},
      {"padded odd slice half", 7, 5, 5, 96, 24, RI__ACT_RELU, 0, 0, 2, 0, 1},
      {"padded batch 64", 64, 5, 5, 64, 12, RI__ACT_RELU, 1, 0, 2, 1, 1},
      {"padded batch 1", 1, 19, 19, 576, 273, RI__ACT_NONE, 1, 0, 2, 1, 1},
      {"padded 20 no bias", 7, 10, 10, 64, 20, RI__ACT_NONE, 0, 0, 2, 1, 1},
      {"padded ssd class 0 sigmoid", 3, 19, 19, 576, 273, RI__ACT_SIGMOID, 1, 0, 2, 1, 1},
      {"padded ssd class 1 sigmoid", 64, 10, 10, 1280, 546, RI__ACT_SIGMOID, 1, 0, 2, 1, 1},
      {"padded clip half", 7, 5, 5, 96, 24, RI__ACT_CLIP, 1, 0, 2, 0, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    test_case(lt, &cases[i]);
  cublasLtDestroy(lt);
  test_scatter_acts();
  test_engine();
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
