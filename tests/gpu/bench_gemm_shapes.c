/* Micro-benchmark: our fp16 1x1-convolution GEMM against cuBLASLt on a network's own shapes, to decide with
 * numbers whether cuBLASLt (Hopper wgmma kernels) would be worth a tactic next to k_convgemm.cu.
 *
 *   bench_gemm_shapes SHAPES.csv [--batches 1,256] [--reps N] [--json FILE] [--no-wg]
 *
 * SHAPES.csv (bench/gemm_shapes.py writes it from an ONNX model): a "name,h,w,cin,cout" header, then one
 * line per 1x1, stride 1, unpadded, group 1 convolution. Shapes that repeat (same h, w, cin, cout) run once,
 * reported under the first node's name with their count. For each shape and batch the problem is
 *     D[M, N] = X[M, K] * W[N, K]^T + bias,  M = batch * h * w, K = cin, N = cout,
 * X the NHWC half input, W the half weights [cout, cin] as the engine stores them, bias float; fresh
 * pseudo-random data (X from a 32 MiB random pool copied at random offsets, so that filling a 1 GiB input
 * costs no host time).
 *
 * Timed, each after 3 warm-up launches, as the median over --reps samples (default 20) of one replay of a
 * CUDA graph of launches (as many as make about 0.1 ms, up to 50) between CUDA events, per launch:
 *   ours  ri__cu_convgemm_tac with each tile (128x64, 64x64, 128x32, 64x32), one K segment, one block per
 *         tile (the summation order that batch invariance allows at every M), and the pointwise kernel
 *         (ri__cu_pwconv) where it applies; the best of them is reported with its tile;
 *   wg    ri__cu_pwgemm_wg_tile (k_pwgemm_wg.cu, the Hopper wgmma kernel, a draft) with each tile (64x64,
 *         64x128, 128x64, 128x128) and 3 or 4 pipeline stages (named e.g. wg128x128s3); the best is reported
 * with its tile, and the largest difference of its whole output to our best's (both half; different MMA
 * instructions, so a few half units). Only on compute capability 9.0 (elsewhere the launcher answers
 * cudaErrorNotSupported and the column is "-") and without --no-wg; lt    cublasLtMatmul, fp16 in and out,
 * CUBLAS_COMPUTE_32F, CUBLASLT_EPILOGUE_BIAS, every algorithm that cublasLtMatmulAlgoGetHeuristic returns (up
 * to 8) with a 32 MiB workspace. Reported: the best, the first (the heuristic's own pick, what a default
 * would run), whether the best splits K (CUBLASLT_ALGO_CONFIG_SPLITK_NUM > 1) or uses a reduction scheme, and
 * the best of the algorithms with neither ("inv"): split-K sums in an order that depends on how the work is
 * divided, which the engine's batch invariance forbids for any M-dependent choice. Layouts as in
 * cuda_op_gemm.c: D^T (N x M, column-major, ld N) = op(A) * B with A = W read transposed (K x N, ld K) and B
 * = X^T (K x M, ld K). cuBLASLt takes the bias in D's type (cublasLt.h, BIAS_DATA_TYPE), so the bias values
 * are drawn as halves and our kernel gets the same values as floats.
 *
 * Checks (a failure is a FAIL line and makes the exit status 1): the output of every candidate (poisoned with
 * NaN before its launches) at up to 256 evenly spaced rows against a double-precision CPU reference on the
 * same half data, and the whole output of our best against cuBLASLt's best; the error is max |a - b| over
 * max |reference| and must be <= 2e-3 (a half output is rounded to 2^-11 relative, two roundings differ by
 * up to one unit). CUDA and cuBLASLt errors name the call and the shape.
 *
 * Output: one line per (shape, batch) with each side's ms and TFLOPS (2 M N K / time) and the ratio
 * ours / lt (above 1: cuBLASLt is faster), then the wgmma kernel's ms, TFLOPS, tile, ratios wg / ours and
 * wg / lt (below 1: the wgmma kernel is faster) and its difference to ours; --json appends one JSON object
 * per (shape, batch) to FILE, after one object naming the device and the cuBLASLt version. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "backend/cuda/kernels.h"
#include "core/half.h"
#include "gpu_bench_args.h"

#define MAX_SHAPES   1024
#define MAX_ALGOS    8
#define N_TILES      4
#define SAMPLE_ROWS  256
#define TOL          2e-3
#define LT_WS_BYTES  ((size_t)32 << 20)
#define POOL_HALVES  ((size_t)1 << 24)
#define MAX_INNER    50
#define SAMPLE_MS    0.1
#define MAX_REPS     1000
#define N_WG_TILES   8
#define N_CANDIDATES (N_TILES + 1 + MAX_ALGOS + N_WG_TILES)

static const int k_tiles[N_TILES][2] = {{128, 64}, {64, 64}, {128, 32}, {64, 32}};
static const int k_wg_tiles[N_WG_TILES][3] = {{64, 64, 4}, {64, 128, 4}, {128, 64, 4}, {128, 128, 4},
                                              {64, 64, 3}, {64, 128, 3}, {128, 64, 3}, {128, 128, 3}};

typedef struct {
  char name[256];
  int h, w, cin, cout, count;
} gshape;

/* One problem (shape at a batch) and everything allocated for it. */
typedef struct {
  const gshape *s;
  int batch;
  int64_t m;
  int k, n;
  char tag[320]; /* "name batch B" for messages */
  ri__cu_convgemm_args a;
  void *x, *w, *y_ours, *y_lt, *y_wg, *bias_h;
  float *bias_f;
  uint16_t *hw, *hx_rows, *hy_rows;
  float *hbias;
  double *ref; /* [rows][n] */
  int rows;
  int64_t step;
  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t la, lb, ld;
  cublasLtMatmulHeuristicResult_t algos[MAX_ALGOS];
  int n_algos;
} problem;

/* Process-wide state: the cuBLASLt handle and workspace, the random pool, timing events. */
static cublasLtHandle_t g_lt;
static void *g_ws, *g_pool;
static cudaEvent_t g_e0, g_e1;
static cudaStream_t g_s; /* every launch; a blocking stream, ordered after the default stream's copies */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static int g_fail;
static int g_no_wg;        /* --no-wg */
static float g_h2f[65536]; /* half bits -> float, for comparing outputs of a billion elements */

static double urand(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (double)(g_rng >> 11) / (double)(1ull << 53);
}

static void fail(const char *tag, const char *fmt, const char *what, const char *msg) {
  printf("FAIL %s: ", tag);
  printf(fmt, what, msg);
  printf("\n");
  fflush(stdout);
  g_fail++;
}

/* CUDA / cuBLASLt calls inside functions that return 1 on failure, naming the call and the problem. */
#define CK(tag, call)                                                                                        \
  do {                                                                                                       \
    cudaError_t e_ = (call);                                                                                 \
    if (e_ != cudaSuccess) {                                                                                 \
      fail(tag, "%s: %s", #call, cudaGetErrorString(e_));                                                    \
      return 1;                                                                                              \
    }                                                                                                        \
  } while (0)
#define LT(tag, call)                                                                                        \
  do {                                                                                                       \
    cublasStatus_t e_ = (call);                                                                              \
    if (e_ != CUBLAS_STATUS_SUCCESS) {                                                                       \
      fail(tag, "%s: %s", #call, cublasLtGetStatusString(e_));                                               \
      return 1;                                                                                              \
    }                                                                                                        \
  } while (0)

/* Reads SHAPES.csv; repeated geometries are counted on their first row. Returns the number of distinct
 * shapes, -1 on a read or format error (reported). */
static int read_shapes(const char *path, gshape *out, int max) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "bench_gemm_shapes: cannot open %s\n", path);
    return -1;
  }
  char line[1024];
  int n = 0, lno = 0;
  while (fgets(line, sizeof line, f)) {
    lno++;
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0] || (lno == 1 && strncmp(line, "name,", 5) == 0)) continue;
    /* The numbers are the last four fields; the name is everything before them. */
    int v[4];
    char *end = line + strlen(line);
    int ok = 1;
    for (int i = 3; i >= 0 && ok; i--) {
      char *c = NULL;
      for (char *p = end - 1; p >= line; p--)
        if (*p == ',') {
          c = p;
          break;
        }
      char *num_end;
      long x = c ? strtol(c + 1, &num_end, 10) : 0;
      ok = c && num_end != c + 1 && num_end == end && x >= 1 && x <= 1 << 20;
      if (ok) v[i] = (int)x, end = c, *c = 0;
    }
    if (!ok || end == line) {
      fprintf(stderr, "bench_gemm_shapes: %s:%d: expected name,h,w,cin,cout\n", path, lno);
      fclose(f);
      return -1;
    }
    int dup = 0;
    for (int i = 0; i < n && !dup; i++)
      if (out[i].h == v[0] && out[i].w == v[1] && out[i].cin == v[2] && out[i].cout == v[3])
        out[i].count++, dup = 1;
    if (dup) continue;
    if (n == max) {
      fprintf(stderr, "bench_gemm_shapes: more than %d distinct shapes\n", max);
      fclose(f);
      return -1;
    }
    snprintf(out[n].name, sizeof out[n].name, "%s", line);
    out[n].h = v[0], out[n].w = v[1], out[n].cin = v[2], out[n].cout = v[3], out[n].count = 1;
    n++;
  }
  fclose(f);
  return n;
}

/* A candidate: kind 0 a tile of ours (index into k_tiles), 1 our pointwise kernel, 2 cuBLASLt algorithm,
 * 3 a tile of the wgmma kernel (index into k_wg_tiles). */
typedef struct {
  int kind, idx;
  double ms;
  double err; /* sampled rows against the reference */
} cand;

static int launch(problem *p, const cand *c) {
  if (c->kind == 2) {
    float one = 1.f, zero = 0.f;
    LT(p->tag, cublasLtMatmul(g_lt, p->op, &one, p->w, p->la, p->x, p->lb, &zero, p->y_lt, p->ld, p->y_lt,
                              p->ld, &p->algos[c->idx].algo, g_ws, LT_WS_BYTES, g_s));
    return 0;
  }
  if (c->kind == 3) {
    CK(p->tag, ri__cu_pwgemm_wg_tile(g_s, &p->a, k_wg_tiles[c->idx][0], k_wg_tiles[c->idx][1],
                                     k_wg_tiles[c->idx][2], p->x, p->w, p->bias_f, NULL, p->y_wg));
    return 0;
  }
  ri__cu_convgemm_tactic t = {0, 0, 0, 0, c->kind == 1};
  if (c->kind == 0) t.bm = k_tiles[c->idx][0], t.bn = k_tiles[c->idx][1];
  CK(p->tag, ri__cu_convgemm_tac(g_s, &p->a, &t, p->x, p->w, p->bias_f, NULL, p->y_ours, NULL));
  return 0;
}

static void *out_of(const problem *p, const cand *c) {
  return c->kind == 2 ? p->y_lt : c->kind == 3 ? p->y_wg : p->y_ours;
}

/* Error of rows sampled from a device output against the reference: max |got - ref| / max |ref|. */
static int sampled_error(problem *p, const void *y, double *err) {
  size_t wb = (size_t)p->n * 2;
  CK(p->tag,
     cudaMemcpy2D(p->hy_rows, wb, y, wb * (size_t)p->step, wb, (size_t)p->rows, cudaMemcpyDeviceToHost));
  double md = 0, mr = 0;
  for (size_t i = 0; i < (size_t)p->rows * (size_t)p->n; i++) {
    double g = g_h2f[p->hy_rows[i]], r = p->ref[i];
    double d = fabs(g - r);
    if (!(d <= md)) md = d; /* NaN (an unwritten element) propagates */
    if (fabs(r) > mr) mr = fabs(r);
  }
  *err = md / (mr > 0 ? mr : 1e-30);
  return 0;
}

/* Times candidate c and checks its output at the sampled rows. After 3 eager warm-up launches (which also
 * estimate the time of one), `inner` launches (enough for about SAMPLE_MS, at most MAX_INNER) are captured
 * into a CUDA graph, as the engine replays its nodes; a sample is one replay between events, divided by
 * inner; the result is the median of reps samples. Graphs keep host launch costs (cuBLASLt's descriptor
 * handling in particular) out of the times of small problems. */
static int time_cand(problem *p, cand *c, int reps) {
  void *y = out_of(p, c);
  CK(p->tag, cudaMemsetAsync(y, 0xff, (size_t)p->m * (size_t)p->n * 2, g_s));
  CK(p->tag, cudaEventRecord(g_e0, g_s));
  for (int i = 0; i < 3; i++)
    if (launch(p, c)) return 1;
  CK(p->tag, cudaEventRecord(g_e1, g_s));
  CK(p->tag, cudaEventSynchronize(g_e1));
  float f = 0.f;
  CK(p->tag, cudaEventElapsedTime(&f, g_e0, g_e1));
  f /= 3;
  int inner = f > 0.f ? (int)(SAMPLE_MS / f) + 1 : MAX_INNER;
  if (inner > MAX_INNER) inner = MAX_INNER;
  cudaGraph_t graph = NULL;
  cudaGraphExec_t exec = NULL;
  CK(p->tag, cudaStreamBeginCapture(g_s, cudaStreamCaptureModeThreadLocal));
  int bad = 0;
  for (int i = 0; i < inner && !bad; i++)
    bad = launch(p, c);
  cudaError_t e = cudaStreamEndCapture(g_s, &graph);
  if (bad) {
    if (graph) cudaGraphDestroy(graph);
    return 1;
  }
  CK(p->tag, e);
  e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  CK(p->tag, e);
  double samples[MAX_REPS];
  e = cudaGraphLaunch(exec, g_s); /* the first replay uploads the graph */
  for (int r = 0; r < reps && e == cudaSuccess; r++) {
    e = cudaEventRecord(g_e0, g_s);
    if (e == cudaSuccess) e = cudaGraphLaunch(exec, g_s);
    if (e == cudaSuccess) e = cudaEventRecord(g_e1, g_s);
    if (e == cudaSuccess) e = cudaEventSynchronize(g_e1);
    if (e == cudaSuccess) e = cudaEventElapsedTime(&f, g_e0, g_e1);
    samples[r] = (double)f / inner;
  }
  cudaGraphExecDestroy(exec);
  CK(p->tag, e);
  c->ms = gpu_median(samples, reps);
  return sampled_error(p, y, &c->err);
}

/* Fills n halves of device memory from the random pool at random offsets. */
static int fill_random(problem *p, void *dst, size_t n) {
  for (size_t done = 0; done < n;) {
    size_t len = n - done < POOL_HALVES / 2 ? n - done : POOL_HALVES / 2;
    size_t off = (size_t)(urand() * (double)(POOL_HALVES / 2));
    CK(p->tag,
       cudaMemcpy((uint16_t *)dst + done, (const uint16_t *)g_pool + off, len * 2, cudaMemcpyDeviceToDevice));
    done += len;
  }
  return 0;
}

static int setup(problem *p) {
  size_t m = (size_t)p->m, k = (size_t)p->k, n = (size_t)p->n;
  p->hw = malloc(n * k * 2);
  p->hbias = malloc(n * sizeof(float));
  uint16_t *hbh = malloc(n * 2);
  p->rows = p->m < SAMPLE_ROWS ? (int)p->m : SAMPLE_ROWS;
  p->step = p->m / p->rows;
  p->hx_rows = malloc((size_t)p->rows * k * 2);
  p->hy_rows = malloc((size_t)p->rows * n * 2);
  p->ref = malloc((size_t)p->rows * n * sizeof(double));
  if (!p->hw || !p->hbias || !hbh || !p->hx_rows || !p->hy_rows || !p->ref) {
    free(hbh);
    fail(p->tag, "%s%s", "out of host memory", "");
    return 1;
  }
  double ws = 1.0 / sqrt((double)k);
  for (size_t i = 0; i < n * k; i++)
    p->hw[i] = ri__float_to_half((float)((urand() * 2 - 1) * ws));
  for (size_t j = 0; j < n; j++) {
    hbh[j] = ri__float_to_half((float)(urand() - 0.5));
    p->hbias[j] = ri__half_to_float(hbh[j]);
  }
  int rc = 0;
  cudaError_t e = cudaMalloc(&p->x, m * k * 2);
  if (e == cudaSuccess) e = cudaMalloc(&p->w, n * k * 2);
  if (e == cudaSuccess) e = cudaMalloc(&p->y_ours, m * n * 2);
  if (e == cudaSuccess) e = cudaMalloc(&p->y_lt, m * n * 2);
  if (e == cudaSuccess) e = cudaMalloc(&p->y_wg, m * n * 2);
  if (e == cudaSuccess) e = cudaMalloc(&p->bias_h, n * 2);
  if (e == cudaSuccess) e = cudaMalloc((void **)&p->bias_f, n * sizeof(float));
  if (e == cudaSuccess) e = cudaMemcpy(p->w, p->hw, n * k * 2, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(p->bias_h, hbh, n * 2, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(p->bias_f, p->hbias, n * sizeof(float), cudaMemcpyHostToDevice);
  free(hbh);
  if (e != cudaSuccess) {
    fail(p->tag, "%s: %s", "cudaMalloc / cudaMemcpy of the operands", cudaGetErrorString(e));
    return 1;
  }
  if (fill_random(p, p->x, m * k)) return 1;
  /* The reference at the sampled rows, from the device's copy of X. */
  CK(p->tag, cudaMemcpy2D(p->hx_rows, k * 2, p->x, k * 2 * (size_t)p->step, k * 2, (size_t)p->rows,
                          cudaMemcpyDeviceToHost));
  float *wf = malloc(n * k * sizeof(float)), *xf = malloc(k * sizeof(float));
  if (!wf || !xf) {
    free(wf);
    free(xf);
    fail(p->tag, "%s%s", "out of host memory", "");
    return 1;
  }
  for (size_t i = 0; i < n * k; i++)
    wf[i] = ri__half_to_float(p->hw[i]);
  for (int r = 0; r < p->rows; r++) {
    for (size_t i = 0; i < k; i++)
      xf[i] = ri__half_to_float(p->hx_rows[(size_t)r * k + i]);
    for (size_t j = 0; j < n; j++) {
      double acc = p->hbias[j];
      for (size_t i = 0; i < k; i++)
        acc += (double)xf[i] * wf[j * k + i];
      p->ref[(size_t)r * n + j] = acc;
    }
  }
  free(wf);
  free(xf);

  /* Our kernel's arguments: a dense NHWC 1x1 convolution. */
  ri__cu_convgemm_args *a = &p->a;
  memset(a, 0, sizeof *a);
  a->n = p->batch, a->ih = a->oh = p->s->h, a->iw = a->ow = p->s->w, a->c = p->k, a->m_out = p->n;
  a->k = a->ldw = p->k;
  a->kh = a->kw = a->sh = a->sw = a->dh = a->dw = 1;
  a->rows_per_img = (int64_t)p->s->h * p->s->w, a->y_img_stride = a->rows_per_img * p->n;
  a->ldy = a->ldr = p->n;
  if (p->k % 8 != 0 || !ri__cu_convgemm_supported(a)) {
    fail(p->tag, "%s%s", "ri__cu_convgemm does not run this shape (K must be a multiple of 8)", "");
    return 1;
  }

  /* cuBLASLt: D^T = W (as A, transposed) * X^T (as B), bias epilogue. */
  LT(p->tag, cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
  const void *bp = p->bias_h;
  LT(p->tag, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  LT(p->tag, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  LT(p->tag, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
  LT(p->tag, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp));
  LT(p->tag, cublasLtMatrixLayoutCreate(&p->la, CUDA_R_16F, (uint64_t)k, (uint64_t)n, (int64_t)k));
  LT(p->tag, cublasLtMatrixLayoutCreate(&p->lb, CUDA_R_16F, (uint64_t)k, (uint64_t)m, (int64_t)k));
  LT(p->tag, cublasLtMatrixLayoutCreate(&p->ld, CUDA_R_16F, (uint64_t)n, (uint64_t)m, (int64_t)n));
  cublasLtMatmulPreference_t pref = NULL;
  LT(p->tag, cublasLtMatmulPreferenceCreate(&pref));
  uint64_t wsb = LT_WS_BYTES;
  cublasStatus_t le =
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb);
  if (le == CUBLAS_STATUS_SUCCESS)
    le = cublasLtMatmulAlgoGetHeuristic(g_lt, p->op, p->la, p->lb, p->ld, p->ld, pref, MAX_ALGOS, p->algos,
                                        &p->n_algos);
  cublasLtMatmulPreferenceDestroy(pref);
  if (le != CUBLAS_STATUS_SUCCESS) {
    fail(p->tag, "%s: %s", "cublasLtMatmulAlgoGetHeuristic", cublasLtGetStatusString(le));
    rc = 1;
  } else if (p->n_algos < 1) {
    fail(p->tag, "%s%s", "cublasLtMatmulAlgoGetHeuristic returned no algorithm", "");
    rc = 1;
  }
  return rc;
}

static void teardown(problem *p) {
  cudaFree(p->x);
  cudaFree(p->w);
  cudaFree(p->y_ours);
  cudaFree(p->y_lt);
  cudaFree(p->y_wg);
  cudaFree(p->bias_h);
  cudaFree(p->bias_f);
  free(p->hw);
  free(p->hbias);
  free(p->hx_rows);
  free(p->hy_rows);
  free(p->ref);
  if (p->la) cublasLtMatrixLayoutDestroy(p->la);
  if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
  if (p->ld) cublasLtMatrixLayoutDestroy(p->ld);
  if (p->op) cublasLtMatmulDescDestroy(p->op);
}

typedef struct {
  int32_t id, splitk;
  uint32_t tile, stages, reduction;
} algo_info;

static void algo_config(const cublasLtMatmulAlgo_t *a, algo_info *o) {
  size_t wr;
  memset(o, 0, sizeof *o);
  o->splitk = 1;
  cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_ID, &o->id, sizeof o->id, &wr);
  cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_TILE_ID, &o->tile, sizeof o->tile, &wr);
  cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_STAGES_ID, &o->stages, sizeof o->stages, &wr);
  cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &o->splitk, sizeof o->splitk, &wr);
  cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &o->reduction,
                                       sizeof o->reduction, &wr);
}

static const char *cand_name(const cand *c, char *buf, size_t len) {
  if (c->kind == 0)
    snprintf(buf, len, "%dx%d", k_tiles[c->idx][0], k_tiles[c->idx][1]);
  else if (c->kind == 1)
    snprintf(buf, len, "pw");
  else if (c->kind == 3)
    snprintf(buf, len, "wg%dx%ds%d", k_wg_tiles[c->idx][0], k_wg_tiles[c->idx][1], k_wg_tiles[c->idx][2]);
  else
    snprintf(buf, len, "lt%d", c->idx);
  return buf;
}

/* Whether the wgmma kernel runs this problem: one launch, cudaErrorNotSupported (a device other than
 * compute capability 9.0) answered without a FAIL line. */
static int wg_available(problem *p) {
  if (g_no_wg || !ri__cu_pwgemm_wg_supported(&p->a)) return 0;
  cudaError_t e = ri__cu_pwgemm_wg_tile(g_s, &p->a, 64, 64, 0, p->x, p->w, p->bias_f, NULL, p->y_wg);
  if (e == cudaErrorNotSupported) {
    cudaGetLastError();
    return 0;
  }
  if (e != cudaSuccess) {
    fail(p->tag, "%s: %s", "ri__cu_pwgemm_wg_tile", cudaGetErrorString(e));
    return 0;
  }
  return 1;
}

/* Full outputs of two candidates (of different kinds) against each other: max |a - b| / max |b|. */
static int full_compare(problem *p, const cand *ours, const cand *lt, double *err) {
  size_t cnt = (size_t)p->m * (size_t)p->n;
  uint16_t *a = malloc(cnt * 2), *b = malloc(cnt * 2);
  int rc = 0;
  if (!a || !b) {
    fail(p->tag, "%s%s", "out of host memory for the full comparison", "");
    rc = 1;
  }
  if (rc == 0) rc = launch(p, ours) || launch(p, lt);
  cudaError_t e = rc ? cudaSuccess : cudaStreamSynchronize(g_s);
  if (e == cudaSuccess && rc == 0) e = cudaMemcpy(a, out_of(p, ours), cnt * 2, cudaMemcpyDeviceToHost);
  if (e == cudaSuccess && rc == 0) e = cudaMemcpy(b, out_of(p, lt), cnt * 2, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) {
    fail(p->tag, "%s: %s", "cudaStreamSynchronize / cudaMemcpy of the outputs", cudaGetErrorString(e));
    rc = 1;
  }
  if (rc == 0) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < cnt; i++) {
      double x = g_h2f[a[i]], y = g_h2f[b[i]];
      double d = fabs(x - y);
      if (!(d <= md)) md = d;
      if (fabs(y) > mr) mr = fabs(y);
    }
    *err = md / (mr > 0 ? mr : 1e-30);
  }
  free(a);
  free(b);
  return rc;
}

static double tflops(const problem *p, double ms) {
  return 2.0 * (double)p->m * p->n * p->k / (ms * 1e-3) / 1e12;
}

static void bench_problem(const gshape *s, int batch, int reps, FILE *json) {
  problem P;
  memset(&P, 0, sizeof P);
  problem *p = &P;
  p->s = s, p->batch = batch, p->m = (int64_t)batch * s->h * s->w, p->k = s->cin, p->n = s->cout;
  snprintf(p->tag, sizeof p->tag, "%.200s batch %d (M=%lld K=%d N=%d)", s->name, batch, (long long)p->m, p->k,
           p->n);
  int fails0 = g_fail;
  if (setup(p)) {
    teardown(p);
    return;
  }
  cand c[N_CANDIDATES];
  int nc = 0;
  for (int t = 0; t < N_TILES; t++)
    c[nc].kind = 0, c[nc].idx = t, nc++;
  if (ri__cu_pwconv_supported(&p->a)) c[nc].kind = 1, c[nc].idx = 0, nc++;
  int n_ours = nc;
  for (int i = 0; i < p->n_algos; i++)
    if (p->algos[i].state == CUBLAS_STATUS_SUCCESS) c[nc].kind = 2, c[nc].idx = i, nc++;
  if (nc == n_ours) {
    fail(p->tag, "%s%s", "cublasLtMatmulAlgoGetHeuristic returned no usable algorithm", "");
    teardown(p);
    return;
  }
  int n_lt_end = nc;
  if (wg_available(p))
    for (int t = 0; t < N_WG_TILES; t++)
      c[nc].kind = 3, c[nc].idx = t, nc++;
  char nm[32];
  for (int i = 0; i < nc; i++) {
    if (time_cand(p, &c[i], reps)) {
      teardown(p);
      return;
    }
    if (!(c[i].err <= TOL)) {
      printf("FAIL %s: %s sampled rows off the reference by %.3g (limit %.0e)\n", p->tag,
             cand_name(&c[i], nm, sizeof nm), c[i].err, TOL);
      g_fail++;
    }
  }
  int bo = 0, bl = n_ours, bi = -1, bw = -1;
  algo_info info[MAX_ALGOS];
  for (int i = 0; i < nc; i++) {
    if (i < n_ours && c[i].ms < c[bo].ms) bo = i;
    if (i >= n_lt_end && (bw < 0 || c[i].ms < c[bw].ms)) bw = i;
    if (i >= n_ours && i < n_lt_end) {
      algo_config(&p->algos[c[i].idx].algo, &info[c[i].idx]);
      if (c[i].ms < c[bl].ms) bl = i;
      int inv = info[c[i].idx].splitk <= 1 && info[c[i].idx].reduction == CUBLASLT_REDUCTION_SCHEME_NONE;
      if (inv && (bi < 0 || c[i].ms < c[bi].ms)) bi = i;
    }
  }
  double diff = 0;
  if (full_compare(p, &c[bo], &c[bl], &diff)) {
    teardown(p);
    return;
  }
  if (!(diff <= TOL)) {
    printf("FAIL %s: our best and cuBLASLt's best differ by %.3g (limit %.0e)\n", p->tag, diff, TOL);
    g_fail++;
  }
  double wdiff = NAN;
  char wtile[32] = "-";
  if (bw >= 0) {
    if (full_compare(p, &c[bw], &c[bo], &wdiff)) {
      teardown(p);
      return;
    }
    if (!(wdiff <= TOL)) {
      printf("FAIL %s: the wgmma kernel's best and our best differ by %.3g (limit %.0e)\n", p->tag, wdiff,
             TOL);
      g_fail++;
    }
    cand_name(&c[bw], wtile, sizeof wtile);
  }
  double wms = bw >= 0 ? c[bw].ms : NAN;
  const algo_info *lb = &info[c[bl].idx];
  char tile[32];
  cand_name(&c[bo], tile, sizeof tile);
  double first = c[n_ours].ms;
  printf("%-58s x%-2d b=%-3d M=%-8lld K=%-4d N=%-4d | ours %8.4f ms %6.1f TF (%s) | lt %8.4f ms %6.1f TF "
         "(algo %d tile %u splitk %d red %u) first %8.4f inv %8.4f | ours/lt %.2f ours/inv %.2f | diff %.1e "
         "| wg %8.4f ms %6.1f TF (%s) wg/ours %.2f wg/lt %.2f wgdiff %.1e\n",
         s->name, s->count, batch, (long long)p->m, p->k, p->n, c[bo].ms, tflops(p, c[bo].ms), tile, c[bl].ms,
         tflops(p, c[bl].ms), lb->id, lb->tile, lb->splitk, lb->reduction, first, bi >= 0 ? c[bi].ms : NAN,
         c[bo].ms / c[bl].ms, bi >= 0 ? c[bo].ms / c[bi].ms : NAN, diff, wms, tflops(p, wms), wtile,
         wms / c[bo].ms, wms / c[bl].ms, wdiff);
  fflush(stdout);
  if (json) {
    fprintf(json,
            "{\"shape\":\"%s\",\"count\":%d,\"batch\":%d,\"h\":%d,\"w\":%d,\"m\":%lld,\"k\":%d,\"n\":%d,"
            "\"ours_ms\":%.5f,\"ours_tflops\":%.2f,\"ours_tile\":\"%s\",\"ours_all\":{",
            s->name, s->count, batch, s->h, s->w, (long long)p->m, p->k, p->n, c[bo].ms, tflops(p, c[bo].ms),
            tile);
    for (int i = 0; i < n_ours; i++)
      fprintf(json, "%s\"%s\":%.5f", i ? "," : "", cand_name(&c[i], nm, sizeof nm), c[i].ms);
    fprintf(json,
            "},\"lt_best_ms\":%.5f,\"lt_best_tflops\":%.2f,\"lt_best_index\":%d,\"lt_best_algo\":%d,"
            "\"lt_best_tile\":%u,\"lt_best_stages\":%u,\"lt_best_splitk\":%d,\"lt_best_reduction\":%u,"
            "\"lt_first_ms\":%.5f,",
            c[bl].ms, tflops(p, c[bl].ms), c[bl].idx, lb->id, lb->tile, lb->stages, lb->splitk, lb->reduction,
            first);
    if (bi >= 0)
      fprintf(json, "\"lt_inv_ms\":%.5f,\"lt_inv_index\":%d,\"ratio_inv\":%.4f,", c[bi].ms, c[bi].idx,
              c[bo].ms / c[bi].ms);
    else
      fprintf(json, "\"lt_inv_ms\":null,\"lt_inv_index\":null,\"ratio_inv\":null,");
    if (bw >= 0) {
      fprintf(json, "\"wg_ms\":%.5f,\"wg_tflops\":%.2f,\"wg_tile\":\"%s\",\"wg_diff\":%.3e,\"wg_all\":{", wms,
              tflops(p, wms), wtile, wdiff);
      for (int i = n_lt_end; i < nc; i++)
        fprintf(json, "%s\"%s\":%.5f", i > n_lt_end ? "," : "", cand_name(&c[i], nm, sizeof nm), c[i].ms);
      fprintf(json, "},");
    } else {
      fprintf(json, "\"wg_ms\":null,");
    }
    fprintf(json, "\"lt_all\":[");
    for (int i = n_ours; i < n_lt_end; i++) {
      const algo_info *ai = &info[c[i].idx];
      fprintf(json, "%s{\"ms\":%.5f,\"algo\":%d,\"tile\":%u,\"stages\":%u,\"splitk\":%d,\"reduction\":%u}",
              i > n_ours ? "," : "", c[i].ms, ai->id, ai->tile, ai->stages, ai->splitk, ai->reduction);
    }
    fprintf(json, "],\"ratio\":%.4f,\"diff\":%.3e,\"ok\":%s}\n", c[bo].ms / c[bl].ms, diff,
            g_fail == fails0 ? "true" : "false");
    fflush(json);
  }
  teardown(p);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s SHAPES.csv [--batches 1,256] [--reps N] [--json FILE] [--no-wg]\n", argv[0]);
    return 2;
  }
  int batches[16] = {1, 256}, nb = 2, reps = 20;
  const char *json_path = NULL;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--batches") == 0 && i + 1 < argc) {
      nb = gpu_parse_batches(argv[++i], batches, 16);
      if (nb < 1) {
        fprintf(stderr, "bench_gemm_shapes: bad --batches\n");
        return 2;
      }
    } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = atoi(argv[++i]);
      if (reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "bench_gemm_shapes: --reps must be 1..%d\n", MAX_REPS);
        return 2;
      }
    } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      json_path = argv[++i];
    } else if (strcmp(argv[i], "--no-wg") == 0) {
      g_no_wg = 1;
    } else {
      fprintf(stderr, "bench_gemm_shapes: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  for (int i = 0; i < 65536; i++)
    g_h2f[i] = ri__half_to_float((uint16_t)i);
  static gshape shapes[MAX_SHAPES];
  int ns = read_shapes(argv[1], shapes, MAX_SHAPES);
  if (ns < 0) return 2;
  if (ns == 0) {
    fprintf(stderr, "bench_gemm_shapes: no shapes in %s\n", argv[1]);
    return 2;
  }
  FILE *json = json_path ? fopen(json_path, "a") : NULL;
  if (json_path && !json) {
    fprintf(stderr, "bench_gemm_shapes: cannot open %s\n", json_path);
    return 2;
  }
  const char *tag = "setup";
  struct cudaDeviceProp prop;
  int rc = 0;
  cudaError_t e = cudaGetDeviceProperties(&prop, 0);
  if (e == cudaSuccess) e = cudaMalloc(&g_ws, LT_WS_BYTES);
  if (e == cudaSuccess) e = cudaMalloc(&g_pool, POOL_HALVES * 2);
  if (e == cudaSuccess) e = cudaEventCreate(&g_e0);
  if (e == cudaSuccess) e = cudaEventCreate(&g_e1);
  if (e == cudaSuccess) e = cudaStreamCreate(&g_s);
  uint16_t *pool = e == cudaSuccess ? malloc(POOL_HALVES * 2) : NULL;
  if (e != cudaSuccess) {
    fail(tag, "%s: %s", "device setup (properties, workspace, pool, events, stream)", cudaGetErrorString(e));
    rc = 1;
  } else if (!pool) {
    fail(tag, "%s%s", "out of host memory for the random pool", "");
    rc = 1;
  } else {
    for (size_t i = 0; i < POOL_HALVES; i++)
      pool[i] = ri__float_to_half((float)(urand() * 2 - 1));
    e = cudaMemcpy(g_pool, pool, POOL_HALVES * 2, cudaMemcpyHostToDevice);
    if (e != cudaSuccess) {
      fail(tag, "%s: %s", "cudaMemcpy of the random pool", cudaGetErrorString(e));
      rc = 1;
    }
  }
  free(pool);
  cublasStatus_t ls = rc ? CUBLAS_STATUS_SUCCESS : cublasLtCreate(&g_lt);
  if (ls != CUBLAS_STATUS_SUCCESS) {
    fail(tag, "%s: %s", "cublasLtCreate", cublasLtGetStatusString(ls));
    rc = 1;
  }
  if (rc == 0) {
    printf("# %s, %d SMs, cuBLASLt %zu; %d distinct shapes from %s, %d reps\n", prop.name,
           prop.multiProcessorCount, cublasLtGetVersion(), ns, argv[1], reps);
    if (json)
      fprintf(json, "{\"device\":\"%s\",\"sms\":%d,\"cublaslt_version\":%zu,\"shapes\":%d,\"reps\":%d}\n",
              prop.name, prop.multiProcessorCount, cublasLtGetVersion(), ns, reps);
    for (int b = 0; b < nb; b++)
      for (int i = 0; i < ns; i++)
        bench_problem(&shapes[i], batches[b], reps, json);
  }
  if (g_lt) cublasLtDestroy(g_lt);
  if (g_s) cudaStreamDestroy(g_s);
  if (g_e0) cudaEventDestroy(g_e0);
  if (g_e1) cudaEventDestroy(g_e1);
  cudaFree(g_ws);
  cudaFree(g_pool);
  if (json) fclose(json);
  printf("%d FAIL lines\n", g_fail);
  return g_fail ? 1 : rc;
}
