/* GPU test of programmatic dependent launch (RI_CUDA_PDL, src/backend/cuda/cuda_pdl.cu): chains of
 * dependent launches in which a kernel that read its input before its predecessor had finished writing it
 * would leave a wrong count.
 *
 *   test_cuda_pdl          (run it with RI_CUDA_PDL=1 and with RI_CUDA_PDL=0)
 *
 * - The knob: on a device of compute capability 9.0 or more, ri__cu_pdl_on() must be 1 exactly when
 *   RI_CUDA_PDL=1 (a run meant to test PDL then fails instead of silently testing plain launches); below
 *   9.0 it must be 0.
 * - A chain over two buffers of 2^24 floats (start values i % 1000, so every sum stays exact) where each
 *   round adds 5 to every element: converted kernels (ri__cu_dwconv with a 1x1 filter of weight 1 and bias
 *   1: +1; ri__cu_copy: a move) follow a converted kernel, a kernel that is not converted (ri__cu_binary
 *   adding a broadcast 1, in place) and a device-to-device cudaMemcpyAsync, and are followed by each. Run
 *   eagerly, then captured into a CUDA graph (capture, instantiation and launch must succeed) and replayed.
 * - A fork and join over a second stream with events (the way cuda_branches.c runs side nodes), eagerly and
 *   captured: main x -> y (+1); side, after an event, y -> z (+1) while main does y -> w (+1); after the
 *   join main adds z + w into x and then x -> y (+1): y = 2 x0 + 5.
 * Buffers are big enough that each kernel runs many waves, so a dependent's blocks do get placed while its
 * predecessor still runs. Prints PASS/FAIL lines, then "N passed, M failed"; exit 1 on failure. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "backend/cuda/kernels.h"

#define N       ((int64_t)1 << 24)
#define C       64 /* channels of the 1x1 depthwise "convolution": N / C pixels */
#define ROUNDS  8
#define REPLAYS 5

static int g_pass, g_fail;

static void check(int ok, const char *what) {
  printf("%s %s\n", ok ? "PASS" : "FAIL", what);
  if (ok)
    g_pass++;
  else
    g_fail++;
}

static int cu_ok(cudaError_t e, const char *call) {
  if (e == cudaSuccess) return 1;
  printf("FAIL %s: %s\n", call, cudaGetErrorString(e));
  g_fail++;
  return 0;
}

typedef struct {
  cudaStream_t main, side;
  cudaEvent_t fork, join;
  float *x, *y, *z, *w, *one, *wt, *bias;
  ri__cu_dwconv_args dw;
  ri__cu_walk flat, add1, add2;
} bufs;

/* y = x + 1 through the converted depthwise kernel. */
static cudaError_t inc(const bufs *b, cudaStream_t s, const float *x, float *y) {
  return ri__cu_dwconv(s, RI_DTYPE_FLOAT32, &b->dw, x, b->wt, b->bias, y);
}

/* One round: +5 from x back into x (four increments and the plain +1), y as scratch. */
static cudaError_t round_chain(const bufs *b) {
  cudaStream_t s = b->main;
  cudaError_t e;
  if ((e = inc(b, s, b->x, b->y)) != cudaSuccess) return e; /* converted */
  if ((e = ri__cu_binary(s, RI_DTYPE_FLOAT32, RI__CU_ADD, &b->add1, b->y, b->one, b->y, 0, 0.f, 0.f)) !=
      cudaSuccess) /* not converted, after a converted one */
    return e;
  if ((e = inc(b, s, b->y, b->x)) != cudaSuccess) return e; /* converted, after a plain kernel */
  if ((e = cudaMemcpyAsync(b->y, b->x, (size_t)N * sizeof(float), cudaMemcpyDeviceToDevice, s)) !=
      cudaSuccess)
    return e;
  if ((e = inc(b, s, b->y, b->x)) != cudaSuccess) return e; /* converted, after a copy node */
  if ((e = ri__cu_copy(s, &b->flat, b->x, RI_DTYPE_FLOAT32, b->y, RI_DTYPE_FLOAT32)) != cudaSuccess) return e;
  return inc(b, s, b->y, b->x); /* converted, after a converted one */
}

static cudaError_t chain(const bufs *b) {
  for (int r = 0; r < ROUNDS; r++) {
    cudaError_t e = round_chain(b);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

static cudaError_t fork_join(const bufs *b) {
  cudaError_t e;
  if ((e = inc(b, b->main, b->x, b->y)) != cudaSuccess) return e;
  if ((e = cudaEventRecord(b->fork, b->main)) != cudaSuccess) return e;
  if ((e = cudaStreamWaitEvent(b->side, b->fork, 0)) != cudaSuccess) return e;
  if ((e = inc(b, b->side, b->y, b->z)) != cudaSuccess) return e;
  if ((e = cudaEventRecord(b->join, b->side)) != cudaSuccess) return e;
  if ((e = inc(b, b->main, b->y, b->w)) != cudaSuccess) return e;
  if ((e = cudaStreamWaitEvent(b->main, b->join, 0)) != cudaSuccess) return e;
  if ((e = ri__cu_binary(b->main, RI_DTYPE_FLOAT32, RI__CU_ADD, &b->add2, b->z, b->w, b->x, 0, 0.f, 0.f)) !=
      cudaSuccess)
    return e;
  return inc(b, b->main, b->x, b->y);
}

/* Captures fn into a graph on the main stream and launches it `times` times. */
static int run_graph(const bufs *b, cudaError_t (*fn)(const bufs *), int times, const char *what) {
  char msg[160];
  cudaGraph_t g = NULL;
  cudaGraphExec_t ge = NULL;
  snprintf(msg, sizeof msg, "%s: cudaStreamBeginCapture", what);
  if (!cu_ok(cudaStreamBeginCapture(b->main, cudaStreamCaptureModeThreadLocal), msg)) return 0;
  cudaError_t fe = fn(b);
  cudaError_t ce = cudaStreamEndCapture(b->main, &g);
  snprintf(msg, sizeof msg, "%s: launches during the capture", what);
  int ok = cu_ok(fe, msg);
  snprintf(msg, sizeof msg, "%s: cudaStreamEndCapture", what);
  ok = cu_ok(ce, msg) && ok;
  if (ok) {
    snprintf(msg, sizeof msg, "%s: cudaGraphInstantiate", what);
    ok = cu_ok(cudaGraphInstantiate(&ge, g, 0), msg);
  }
  for (int i = 0; ok && i < times; i++) {
    snprintf(msg, sizeof msg, "%s: cudaGraphLaunch", what);
    ok = cu_ok(cudaGraphLaunch(ge, b->main), msg);
  }
  if (ok) {
    snprintf(msg, sizeof msg, "%s: graph run", what);
    ok = cu_ok(cudaStreamSynchronize(b->main), msg);
  }
  if (ge) cudaGraphExecDestroy(ge);
  if (g) cudaGraphDestroy(g);
  return ok;
}

/* Every element of the device buffer d equals mul * (i % 1000) + add. */
static void expect(const float *d, float *host, float mul, float add, const char *what) {
  if (!cu_ok(cudaMemcpy(host, d, (size_t)N * sizeof(float), cudaMemcpyDeviceToHost), what)) return;
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < N; i++)
    if (host[i] != mul * (float)(i % 1000) + add && bad++ == 0) first = i;
  char msg[256];
  if (bad)
    snprintf(msg, sizeof msg, "%s: %lld of %lld elements wrong (first [%lld] = %g, expected %g)", what,
             (long long)bad, (long long)N, (long long)first, (double)host[first],
             (double)(mul * (float)(first % 1000) + add));
  else
    snprintf(msg, sizeof msg, "%s", what);
  check(bad == 0, msg);
}

static int reset(const bufs *b, const float *start) {
  return cu_ok(cudaMemcpy(b->x, start, (size_t)N * sizeof(float), cudaMemcpyHostToDevice), "reset x");
}

int main(void) {
  if (!cu_ok(cudaSetDevice(0), "cudaSetDevice(0)")) return 1;
  int major = 0;
  if (!cu_ok(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), "compute capability"))
    return 1;
  const char *env = getenv("RI_CUDA_PDL");
  const int asked = env && strcmp(env, "1") == 0, on = ri__cu_pdl_on();
  char msg[160];
  snprintf(msg, sizeof msg,
           "knob: RI_CUDA_PDL=%s, compute capability %d.x: ri__cu_pdl_on() = %d (expected %d)",
           env ? env : "(unset)", major, on, asked && major >= 9);
  check(on == (asked && major >= 9), msg);

  bufs b;
  memset(&b, 0, sizeof b);
  float *start = malloc((size_t)N * sizeof(float)), *host = malloc((size_t)N * sizeof(float));
  float hw[C];
  if (!start || !host) {
    printf("FAIL host allocation\n");
    return 1;
  }
  for (int64_t i = 0; i < N; i++)
    start[i] = (float)(i % 1000);
  for (int i = 0; i < C; i++)
    hw[i] = 1.f;
  int ok = cu_ok(cudaStreamCreateWithFlags(&b.main, cudaStreamNonBlocking), "stream") &&
           cu_ok(cudaStreamCreateWithFlags(&b.side, cudaStreamNonBlocking), "stream") &&
           cu_ok(cudaEventCreateWithFlags(&b.fork, cudaEventDisableTiming), "event") &&
           cu_ok(cudaEventCreateWithFlags(&b.join, cudaEventDisableTiming), "event");
  float **dev[] = {&b.x, &b.y, &b.z, &b.w};
  for (int i = 0; ok && i < 4; i++)
    ok = cu_ok(cudaMalloc((void **)dev[i], (size_t)N * sizeof(float)), "cudaMalloc");
  ok = ok && cu_ok(cudaMalloc((void **)&b.one, sizeof(float)), "cudaMalloc") &&
       cu_ok(cudaMalloc((void **)&b.wt, C * sizeof(float)), "cudaMalloc") &&
       cu_ok(cudaMalloc((void **)&b.bias, C * sizeof(float)), "cudaMalloc") &&
       cu_ok(cudaMemcpy(b.one, hw, sizeof(float), cudaMemcpyHostToDevice), "upload") &&
       cu_ok(cudaMemcpy(b.wt, hw, C * sizeof(float), cudaMemcpyHostToDevice), "upload") &&
       cu_ok(cudaMemcpy(b.bias, hw, C * sizeof(float), cudaMemcpyHostToDevice), "upload");
  if (!ok) return 1;
  /* 1x1 depthwise, NHWC, N / C pixels of one image: y = x * 1 + 1 */
  b.dw.n = 1;
  b.dw.c = C;
  b.dw.ih = b.dw.oh = N / C;
  b.dw.iw = b.dw.ow = 1;
  b.dw.kh = b.dw.kw = b.dw.sh = b.dw.sw = b.dw.dh = b.dw.dw = 1;
  b.dw.nhwc = 1;
  b.flat.rank = 1;
  b.flat.dims[0] = N;
  b.flat.st[0][0] = b.flat.st[1][0] = 1;
  b.add1 = b.flat;
  b.add1.st[2][0] = 0; /* the second operand: one element, broadcast */
  b.add2 = b.flat;
  b.add2.st[2][0] = 1;

  /* eager chain */
  if (reset(&b, start)) {
    cudaError_t e = chain(&b);
    if (cu_ok(e, "eager chain: launches") && cu_ok(cudaStreamSynchronize(b.main), "eager chain: run"))
      expect(b.x, host, 1.f, 5.f * ROUNDS, "eager chain of converted, plain and copy steps");
  }
  /* the chain in a graph, replayed */
  if (reset(&b, start) && run_graph(&b, chain, REPLAYS, "graph chain"))
    expect(b.x, host, 1.f, 5.f * ROUNDS * REPLAYS,
           "graph chain of converted, plain and copy steps, replayed");
  /* fork and join over two streams */
  if (reset(&b, start)) {
    cudaError_t e = fork_join(&b);
    if (cu_ok(e, "eager fork/join: launches") && cu_ok(cudaStreamSynchronize(b.main), "eager fork/join: run"))
      expect(b.y, host, 2.f, 5.f, "eager fork and join over a side stream");
  }
  if (reset(&b, start) && run_graph(&b, fork_join, 1, "graph fork/join"))
    expect(b.y, host, 2.f, 5.f, "graph fork and join over a side stream");

  for (int i = 0; i < 4; i++)
    cudaFree(*dev[i]);
  cudaFree(b.one);
  cudaFree(b.wt);
  cudaFree(b.bias);
  cudaEventDestroy(b.fork);
  cudaEventDestroy(b.join);
  cudaStreamDestroy(b.main);
  cudaStreamDestroy(b.side);
  free(start);
  free(host);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
