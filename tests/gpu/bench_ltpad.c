/* Micro-benchmark of the padded cuBLASLt form (cuda_conv_lt.h) on SSD MobileNet v2's heads as the engine
 * runs them: the convolution's output goes straight into the float32 Concat output [n, 1917, C] (pitch m,
 * the predictor's slice offset, image stride 1917 * C), which leaves cuBLASLt's D misaligned.
 *
 *   bench_ltpad [--batches 1,64,256] [--reps N] [--act none|sigmoid|clip]
 *
 * For each head and batch, through the engine's own core (ri__cu_ltconv_*): every algorithm of the
 * heuristic's list that the engine may take (split-K 1, no reduction scheme, cublasLtMatmulAlgoCheck
 * passing) in the direct form (D = the slice, N = m) and in the padded form as the engine runs it (N = m_pad,
 * m rounded up to 8, zero weight rows and bias beyond m, D = a dense half buffer of m_pad columns, then the
 * scatter kernel copies the first m), each timed as the median of --reps (default 50) event-bracketed runs
 * after one warm-up; reported: the best of each form (ms, TFLOPS = 2 M m K / time, algorithm index), the
 * scatter kernel alone (with --act's activation: sigmoid as SSD's class predictors' heads feed one, clip as
 * ReLU6 with 0 and 6; default none), the padded form's GEMM alone (N = m_pad into the dense half buffer, no
 * scatter: the reference for what the scatter adds) and the ratio direct / padded (above 1: the padded form
 * is faster). Check: the two forms' best outputs agree within 2e-3 of max |output| (the padded form rounds to
 * half once; a FAIL line and exit status 1 otherwise). The own kernels' and the wgmma kernel's times on the
 * same shapes: bench_gemm_shapes (dense outputs) and the engine's profile (scripts/gpu/ab-bench.sh
 * AB_PROFILE=1). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_conv_lt.h"
#include "backend/cuda/kernels.h"
#include "core/half.h"
#include "gpu_bench_args.h"
#include "gpu_rand.h"
#include "gpu_timing.h"
#include "graph/ir.h"

typedef struct {
  const char *name;
  int hw, k, m;    /* output pixels per side, input and output channels */
  int64_t y_off;   /* the slice's offset in the Concat output (elements) */
  int64_t classes; /* channels per anchor row of the Concat output: image stride 1917 * classes */
} head;

static const head k_heads[] = {
    {"BoxPredictor_0/ClassPredictor", 19, 576, 273, 0, 91},
    {"BoxPredictor_1/ClassPredictor", 10, 1280, 546, 19 * 19 * 3 * 91, 91},
    {"BoxPredictor_0/BoxEncodingPredictor", 19, 576, 12, 0, 4},
};

typedef struct {
  cublasLtHandle_t h;
  ri__cu_ltconv *p;
  const cublasLtMatmulAlgo_t *a;
  const void *x, *w, *bh;
  const float *bf;
  void *y, *pad, *ws;
  cublasStatus_t st;
} lt_run;

static cudaError_t run_lt(void *ctx) {
  lt_run *r = ctx;
  const char *call = "";
  r->st = ri__cu_ltconv_run(r->h, r->p, r->a, 0, r->x, r->w, r->bf, r->bh, NULL, r->y, r->pad, r->ws,
                            RI__CU_LT_WS_BYTES, &call);
  return r->st == CUBLAS_STATUS_SUCCESS ? cudaSuccess : cudaErrorUnknown;
}

typedef struct {
  const ri__cu_ltconv_shape *s;
  const void *src;
  void *y;
} sc_run;

static int g_act = RI__ACT_NONE; /* --act: the scatter's activation */

static cudaError_t run_scatter(void *ctx) {
  sc_run *r = ctx;
  const float a = 0.f, b = g_act == RI__ACT_CLIP ? 6.f : 0.f; /* clip: ReLU6 */
  return ri__cu_scatter_cols(0, r->src, ri__cu_ltconv_pad_ld(r->s), r->s->n * r->s->rows, r->s->rows, r->s->m,
                             r->y, 1, r->s->ldy, r->s->y_img_stride, g_act, a, b);
}

static int g_fail;

/* The best time of form `pad` (ms, algorithm index; INFINITY / -1 when none runs); its output left in y. */
static int best_of(cublasLtHandle_t h, const ri__cu_ltconv_shape *s0, int pad, lt_run *base, int reps,
                   double *best, int *idx) {
  ri__cu_ltconv_shape s = *s0;
  s.pad = pad;
  ri__cu_ltconv p;
  const char *call = "";
  cublasLtMatmulHeuristicResult_t res[RI__CU_LT_MAX_ALGOS];
  int count = 0;
  *best = INFINITY, *idx = -1;
  if (ri__cu_ltconv_create(&p, &s, &call) != CUBLAS_STATUS_SUCCESS ||
      ri__cu_ltconv_algos(h, &p, res, &count, &call) != CUBLAS_STATUS_SUCCESS)
    count = 0;
  for (int i = 0; i < count; i++) {
    size_t ws = 0;
    if (!ri__cu_ltconv_invariant(&res[i].algo) ||
        ri__cu_ltconv_check(h, &p, &res[i].algo, &ws, &call) != CUBLAS_STATUS_SUCCESS ||
        ws > RI__CU_LT_WS_BYTES)
      continue;
    lt_run r = *base;
    r.p = &p, r.a = &res[i].algo;
    double ms = INFINITY;
    if (gpu_time_it(run_lt, &r, reps, &ms)) {
      (void)cudaGetLastError();
      continue;
    }
    if (ms < *best) *best = ms, *idx = i;
  }
  if (*idx >= 0) { /* the best's output, for the comparison */
    lt_run r = *base;
    r.p = &p, r.a = &res[*idx].algo;
    if (run_lt(&r) != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) *idx = -1;
  }
  ri__cu_ltconv_destroy(&p);
  return 0;
}

static void bench(cublasLtHandle_t h, const head *hd, int batch, int reps) {
  const int64_t rows = (int64_t)hd->hw * hd->hw, img = 1917 * hd->classes, ldw = (hd->k + 7) / 8 * 8;
  ri__cu_ltconv_shape s;
  memset(&s, 0, sizeof s);
  s.n = batch, s.rows = rows, s.k = hd->k, s.m = hd->m, s.ldw = ldw, s.ldy = hd->m, s.y_img_stride = img;
  s.act = RI__ACT_NONE, s.y_f32 = 1, s.has_bias = 1;
  s.y_align = hd->y_off ? (uint32_t)(hd->y_off * 4 & -(hd->y_off * 4)) : 256;
  if (s.y_align > 256) s.y_align = 256;
  const int64_t m_pad = (hd->m + 7) / 8 * 8;
  const size_t nx = (size_t)(batch * rows * hd->k), nw = (size_t)(m_pad * ldw), ny = (size_t)(batch * img);
  s.pad = 1;
  const size_t pad_bytes = ri__cu_ltconv_pad_bytes(&s);
  s.pad = 0;
  uint16_t *hx = malloc(nx * 2), *hw = calloc(nw, 2), *hb = calloc((size_t)m_pad, 2);
  float *fb = calloc((size_t)m_pad, 4), *y0 = malloc(ny * 4), *y1 = malloc(ny * 4);
  void *dx = NULL, *dw = NULL, *dbf = NULL, *dbh = NULL, *dy = NULL, *dpad = NULL, *dws = NULL;
  if (!hx || !hw || !hb || !fb || !y0 || !y1) {
    printf("FAIL %s b=%d: out of host memory\n", hd->name, batch);
    g_fail++;
    goto done;
  }
  fill_half(hx, NULL, nx, 1.0);
  for (int j = 0; j < hd->m; j++) {
    fill_half(hw + (size_t)j * ldw, NULL, (size_t)hd->k, 1.0 / sqrt((double)hd->k));
    fb[j] = (float)(urand() - 0.5);
    hb[j] = ri__float_to_half(fb[j]);
  }
  if (cudaMalloc(&dx, nx * 2) != cudaSuccess || cudaMalloc(&dw, nw * 2) != cudaSuccess ||
      cudaMalloc(&dbf, (size_t)m_pad * 4) != cudaSuccess ||
      cudaMalloc(&dbh, (size_t)m_pad * 2) != cudaSuccess || cudaMalloc(&dy, ny * 4) != cudaSuccess ||
      cudaMalloc(&dpad, pad_bytes) != cudaSuccess || cudaMalloc(&dws, RI__CU_LT_WS_BYTES) != cudaSuccess ||
      cudaMemcpy(dx, hx, nx * 2, cudaMemcpyHostToDevice) != cudaSuccess ||
      cudaMemcpy(dw, hw, nw * 2, cudaMemcpyHostToDevice) != cudaSuccess ||
      cudaMemcpy(dbf, fb, (size_t)m_pad * 4, cudaMemcpyHostToDevice) != cudaSuccess ||
      cudaMemcpy(dbh, hb, (size_t)m_pad * 2, cudaMemcpyHostToDevice) != cudaSuccess ||
      cudaMemset(dy, 0, ny * 4) != cudaSuccess) {
    printf("FAIL %s b=%d: device setup: %s\n", hd->name, batch, cudaGetErrorString(cudaGetLastError()));
    g_fail++;
    goto done;
  }
  lt_run base;
  memset(&base, 0, sizeof base);
  base.h = h, base.x = dx, base.w = dw, base.bf = dbf, base.bh = dbh, base.ws = dws;
  base.y = (float *)dy + hd->y_off, base.pad = dpad;
  double d_ms, p_ms, sc_ms = NAN;
  int d_i, p_i;
  best_of(h, &s, 0, &base, reps, &d_ms, &d_i);
  int d_ok = d_i >= 0 && cudaMemcpy(y0, dy, ny * 4, cudaMemcpyDeviceToHost) == cudaSuccess;
  best_of(h, &s, 1, &base, reps, &p_ms, &p_i);
  int p_ok = p_i >= 0 && cudaMemcpy(y1, dy, ny * 4, cudaMemcpyDeviceToHost) == cudaSuccess;
  s.pad = 1;
  sc_run sr = {&s, dpad, (float *)dy + hd->y_off};
  if (gpu_time_it(run_scatter, &sr, reps, &sc_ms)) sc_ms = NAN;
  /* the padded form's GEMM alone: m_pad channels (zero weight rows and bias), dense half output */
  ri__cu_ltconv_shape sn = s;
  sn.pad = 0, sn.m = m_pad, sn.ldy = m_pad, sn.y_img_stride = rows * m_pad, sn.y_f32 = 0, sn.y_align = 256;
  lt_run bn = base;
  bn.y = dpad, bn.pad = NULL;
  double n_ms;
  int n_i;
  best_of(h, &sn, 0, &bn, reps, &n_ms, &n_i);
  double diff = NAN;
  if (d_ok && p_ok) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < ny; i++) {
      double e = fabs((double)y0[i] - y1[i]);
      if (!(e <= md)) md = e;
      if (fabs(y0[i]) > mr) mr = fabs(y0[i]);
    }
    diff = md / (mr > 1 ? mr : 1);
    if (!(diff <= 2e-3)) {
      printf("FAIL %s b=%d: direct and padded forms differ by %.3g (limit 2e-3)\n", hd->name, batch, diff);
      g_fail++;
    }
  }
  if (!p_ok) {
    printf("FAIL %s b=%d: no algorithm of the padded form ran\n", hd->name, batch);
    g_fail++;
  }
  const double flop = 2.0 * (double)(batch * rows) * hd->m * hd->k;
  printf(
      "%-38s b=%-3d M=%-7lld K=%-4d N=%-4d | direct %8.4f ms %6.1f TF (algo %d) | padded %8.4f ms %6.1f TF "
      "(algo %d; scatter%s %.4f ms) | N=%lld dense %8.4f ms (algo %d) | direct/padded %.2f | diff %.1e\n",
      hd->name, batch, (long long)(batch * rows), hd->k, hd->m, d_ms, flop / d_ms * 1e-9, d_i, p_ms,
      flop / p_ms * 1e-9, p_i,
      g_act == RI__ACT_SIGMOID ? "+sigmoid"
      : g_act == RI__ACT_CLIP  ? "+clip"
                               : "",
      sc_ms, (long long)m_pad, n_ms, n_i, d_ms / p_ms, diff);
  fflush(stdout);
done:
  cudaFree(dx), cudaFree(dw), cudaFree(dbf), cudaFree(dbh), cudaFree(dy), cudaFree(dpad), cudaFree(dws);
  free(hx), free(hw), free(hb), free(fb), free(y0), free(y1);
}

int main(int argc, char **argv) {
  int batches[16] = {1, 64, 256}, nb = 3, reps = 50;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--batches") == 0 && i + 1 < argc) {
      nb = gpu_parse_batches(argv[++i], batches, 16);
      if (nb < 1) {
        fprintf(stderr, "bench_ltpad: bad --batches\n");
        return 2;
      }
    } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = atoi(argv[++i]);
      if (reps < 1 || reps > 256) {
        fprintf(stderr, "bench_ltpad: --reps must be 1..256\n");
        return 2;
      }
    } else if (strcmp(argv[i], "--act") == 0 && i + 1 < argc) {
      const char *v = argv[++i];
      g_act = strcmp(v, "sigmoid") == 0 ? RI__ACT_SIGMOID
              : strcmp(v, "clip") == 0  ? RI__ACT_CLIP
              : strcmp(v, "none") == 0  ? RI__ACT_NONE
                                        : -1;
      if (g_act < 0) {
        fprintf(stderr, "bench_ltpad: --act none, sigmoid or clip\n");
        return 2;
      }
    } else {
      fprintf(stderr, "usage: %s [--batches 1,64,256] [--reps N] [--act none|sigmoid|clip]\n", argv[0]);
      return 2;
    }
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  gpu_rand_seed(0x5eed1a7dull);
  cublasLtHandle_t h = NULL;
  if (cublasLtCreate(&h) != CUBLAS_STATUS_SUCCESS) {
    printf("FAIL cublasLtCreate\n");
    return 1;
  }
  struct cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
    printf("# %s, %d SMs, cuBLASLt %zu, %d reps\n", prop.name, prop.multiProcessorCount, cublasLtGetVersion(),
           reps);
  for (int b = 0; b < nb; b++)
    for (size_t i = 0; i < sizeof k_heads / sizeof k_heads[0]; i++)
      bench(h, &k_heads[i], batches[b], reps);
  cublasLtDestroy(h);
  printf("%d FAIL lines\n", g_fail);
  return g_fail ? 1 : 0;
}
