/* GPU out-of-memory test of the CUDA backend: real device memory exhaustion, through the public API.
 *
 *   test_cuda_oom MODELS_DIR [model]      (default model: ssd_mobilenet_v2)
 *
 * The device is filled with plain cudaMalloc blocks (never managed memory) until a chosen number of bytes
 * is left, and then, for an fp32 and an fp16 engine of the model with max batch MAX_BATCH:
 *   1. context creation, with less left than a context needs (a sweep over six amounts, so that a different
 *      allocation fails each time), returns RI_ERR_NO_MEMORY with a message that names cuda:0 and says out
 *      of memory, creates nothing, and leaks neither host memory (ri__alloc_live) nor device memory (the
 *      device's free memory is the same before and after a repeated failed call, within LEAK_SLACK);
 *   2. loading the engine file and building the engine, with less left than its constants need, return
 *      RI_ERR_NO_MEMORY naming the engine's constants, with the same leak checks;
 *   3. once the blocks are freed, the same load and context creation succeed and a run at MAX_BATCH gives
 *      the outputs of the reference context (created before any of this) within TOL_FP32 / TOL_FP16;
 *   4. with a warmed-up context and the device then filled completely, runs at MAX_BATCH, at 1 and at a
 *      batch size never run before (twice: eager, then graph capture) each either succeed with the
 *      reference outputs or return RI_ERR_NO_MEMORY with an out-of-memory message; after the blocks are
 *      freed the new batch size runs correctly.
 * The CUDA backend takes all of a context's device memory when the context is created, sized for the
 * engine's maximum batch; a run allocates none, so a smaller batch never fits where a larger one did not,
 * and the pipeline's halving retry cannot be provoked by device memory (it is printed as an INFO line).
 * One PASS/FAIL line per check; the last line is "N passed, M failed"; the exit status is 1 when anything
 * failed, 2 on a usage error, 77 when the model file is missing. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "core/alloc.h"
#include "gpu_result.h"
#include "runinfer/engine.h"

#define MAX_BATCH  32
#define NEW_BATCH  3 /* a batch size run only while the device is full */
#define MAX_IO     16
#define MAX_BLOCKS 8192
#define BLOCK_MAX  ((size_t)1 << 30)
#define BLOCK_MIN  ((size_t)1 << 20)
#define LEAK_SLACK ((size_t)4 << 20) /* the driver's allocation granularity is 2 MiB */
#define MIB(x)     ((double)(x) / (1024.0 * 1024.0))
/* Output bounds against the reference context of the same engine. They check that a run after an
 * out-of-memory failure computes the model, not precision (test_cuda_ops does that): other contexts and
 * batch sizes may pick other cuDNN algorithms or split counts; the fp16 bound is test_cuda_ops' bound for
 * this model against the CPU. */
#define TOL_FP32 1e-3
#define TOL_FP16 2.5e-2

/* ---- filling the device ------------------------------------------------------------------------------- */

static void *g_blocks[MAX_BLOCKS];
static int g_n_blocks;
static int g_base; /* blocks [0, g_base) stay taken between checks (release_device keeps them) */

static size_t device_free(void) {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
  return free_b;
}

/* Takes device memory in cudaMalloc blocks of at most BLOCK_MAX bytes until no more than `leave` bytes are
 * free, or a block of BLOCK_MIN bytes is refused. Returns the free bytes left. */
static size_t fill_device(size_t leave) {
  for (;;) {
    size_t free_b = device_free();
    if (free_b <= leave || g_n_blocks == MAX_BLOCKS) return free_b;
    size_t want = free_b - leave;
    if (want > BLOCK_MAX) want = BLOCK_MAX;
    void *p = NULL;
    while (want >= BLOCK_MIN && cudaMalloc(&p, want) != cudaSuccess) {
      (void)cudaGetLastError(); /* the refusal is not sticky; it must not reach the library's checks */
      p = NULL;
      want /= 2;
    }
    if (!p) return device_free();
    g_blocks[g_n_blocks++] = p;
  }
}

/* Frees the blocks taken since the base was set. */
static void release_device(void) {
  for (int i = g_base; i < g_n_blocks; i++)
    cudaFree(g_blocks[i]);
  g_n_blocks = g_base;
}

/* Takes blocks until `leave` bytes are free and keeps them as the base: later fills start from there, which
 * saves re-taking most of a large device for every check. */
static void set_base(size_t leave) {
  fill_device(leave);
  g_base = g_n_blocks;
}

static void release_all(void) {
  g_base = 0;
  release_device();
}

/* ---- engines, inputs, outputs -------------------------------------------------------------------------- */

typedef struct {
  int n_in, n_out;
  ri_tensor_info in_info[MAX_IO], out_info[MAX_IO];
  void *in[MAX_IO];  /* MAX_BATCH items each */
  void *ref[MAX_IO]; /* reference outputs at MAX_BATCH */
  void *got[MAX_IO];
} io_set;

static size_t item_elems(const ri_tensor_info *info) {
  size_t n = 1;
  for (int i = 1; i < info->rank; i++)
    n *= (size_t)(info->dims[i] < 0 ? 1 : info->dims[i]);
  return n;
}

static size_t out_bytes(ri_context_t *ctx, int o, int batch) {
  ri_tensor_info t;
  if (ri_context_output_shape(ctx, batch, o, &t) != RI_OK) return 0;
  size_t n = 1;
  for (int i = 0; i < t.rank; i++)
    n *= (size_t)t.dims[i];
  return n * ri_dtype_size(t.dtype);
}

static int io_init(ri_engine_t *e, io_set *io) {
  memset(io, 0, sizeof *io);
  io->n_in = ri_engine_num_inputs(e);
  io->n_out = ri_engine_num_outputs(e);
  if (io->n_in < 1 || io->n_in > MAX_IO || io->n_out < 1 || io->n_out > MAX_IO) return 0;
  uint64_t rng = 0x2545f4914f6cdd1dull;
  for (int i = 0; i < io->n_in; i++) {
    if (ri_engine_input_info(e, i, &io->in_info[i]) != RI_OK) return 0;
    size_t n = item_elems(&io->in_info[i]) * MAX_BATCH;
    io->in[i] = calloc(n, ri_dtype_size(io->in_info[i].dtype));
    if (!io->in[i]) return 0;
    if (io->in_info[i].dtype != RI_DTYPE_FLOAT32) continue;
    float *f = io->in[i];
    for (size_t k = 0; k < n; k++) {
      rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
      f[k] = (float)(-2.0 + 4.0 * (double)(rng >> 11) / (double)(1ull << 53));
    }
  }
  for (int o = 0; o < io->n_out; o++)
    if (ri_engine_output_info(e, o, &io->out_info[o]) != RI_OK) return 0;
  return 1;
}

static void io_free(io_set *io) {
  for (int i = 0; i < MAX_IO; i++) {
    free(io->in[i]);
    free(io->ref[i]);
    free(io->got[i]);
  }
  memset(io, 0, sizeof *io);
}

/* Runs `batch` items into io->got (allocated for MAX_BATCH items, filled with 0xff first). */
static ri_status run(ri_context_t *ctx, io_set *io, int batch) {
  for (int o = 0; o < io->n_out; o++) {
    size_t nb = out_bytes(ctx, o, MAX_BATCH);
    if (!io->got[o]) io->got[o] = malloc(nb + 1);
    if (!io->got[o]) return RI_ERR_NO_MEMORY;
    memset(io->got[o], 0xff, nb);
  }
  return ri_context_run(ctx, batch, (const void *const *)io->in, io->got);
}

/* Worst max|got - ref| / max|ref| over the float32 outputs with a batch axis, on the first `batch` items
 * (a run at batch b sees the first b items of the reference run's inputs); +inf on NaN mismatch. */
static double out_error(const io_set *io, ri_context_t *ctx, int batch) {
  double worst = 0.0;
  for (int o = 0; o < io->n_out; o++) {
    const ri_tensor_info *oi = &io->out_info[o];
    if (oi->dtype != RI_DTYPE_FLOAT32 || oi->rank < 1 || oi->dims[0] >= 0) continue;
    size_t n = out_bytes(ctx, o, batch) / sizeof(float);
    const float *g = io->got[o], *r = io->ref[o];
    double md = 0.0, mr = 0.0;
    for (size_t k = 0; k < n; k++) {
      if (isnan(g[k]) != isnan(r[k])) return INFINITY;
      if (isnan(r[k])) continue;
      double d = fabs((double)g[k] - (double)r[k]);
      if (d > md) md = d;
      if (fabs((double)r[k]) > mr) mr = fabs((double)r[k]);
    }
    double e = md / (mr > 1e-12 ? mr : 1e-12);
    if (e > worst) worst = e;
  }
  return worst;
}

static int is_oom_message(const char *msg) {
  return strstr(msg, "cuda:0") != NULL &&
         (strstr(msg, "out of memory") != NULL || strstr(msg, "out of device memory") != NULL ||
          strstr(msg, "ALLOC_FAILED") != NULL);
}

static ri_status build(const char *path, ri_precision prec, ri_builder_t **keep, ri_engine_t **out) {
  ri_builder_t *b = NULL;
  ri_status s = ri_builder_create(&b);
  if (s == RI_OK) s = ri_builder_set_max_batch(b, MAX_BATCH);
  if (s == RI_OK) s = ri_builder_set_device(b, "cuda");
  if (s == RI_OK) s = ri_builder_set_precision(b, prec);
  if (s == RI_OK) s = ri_builder_build_onnx(b, path, out);
  if (keep)
    *keep = b;
  else
    ri_builder_destroy(b);
  return s;
}

/* ---- the checks ---------------------------------------------------------------------------------------- */

/* Check 1: context creation with `leave` bytes left on the device, twice. A first failure may leave device
 * memory taken once for good (on the H200 run of 2026-11-27, 8 MiB went on the first creation after a
 * failed cudnnCreate, and nothing on the later ones that failed at the same allocation): the leak check
 * is on the second attempt, where anything lost would be lost on every failure. Returns 1 when creation
 * failed. */
static int ctx_with_little_memory(const char *tag, ri_engine_t *e, size_t leave, size_t need, int must_fail) {
  size_t left = fill_device(leave);
  ri_status s[2] = {RI_OK, RI_OK};
  size_t lost[2] = {0, 0};
  long live0[2] = {0, 0}, live1[2] = {0, 0};
  int oom_msg = 1;
  char msg[1100] = "";
  for (int a = 0; a < 2; a++) {
    live0[a] = ri__alloc_live();
    size_t free0 = device_free();
    ri_context_t *ctx = NULL;
    s[a] = ri_context_create(e, &ctx);
    size_t free1 = device_free();
    live1[a] = ri__alloc_live();
    if (s[a] == RI_OK) {
      result(!must_fail, "%s context with %.1f of the %.1f MiB it needs left: created on attempt %d (%s)",
             tag, MIB(left), MIB(need), a + 1,
             must_fail ? "it should not fit" : "allowed this close to the need");
      ri_context_destroy(ctx);
      release_device();
      return 0;
    }
    lost[a] = free0 > free1 ? free0 - free1 : 0;
    oom_msg = oom_msg && ctx == NULL && is_oom_message(ri_engine_last_error(e));
    snprintf(msg, sizeof msg, "%s", ri_engine_last_error(e));
  }
  result(s[0] == RI_ERR_NO_MEMORY && s[1] == RI_ERR_NO_MEMORY && oom_msg && live1[0] == live0[0] &&
             live1[1] == live0[1] && lost[1] <= LEAK_SLACK,
         "%s context with %.1f of the %.1f MiB it needs left, twice: %s, host allocations %ld -> %ld, device "
         "memory lost %.1f MiB then %.1f MiB: %s",
         tag, MIB(left), MIB(need), ri_status_str(s[1]), live0[1], live1[1], MIB(lost[0]), MIB(lost[1]), msg);
  release_device();
  return 1;
}

/* Check 2: loading `rie` and building `onnx` with less left than the engine's constants need. */
static void engine_with_little_memory(const char *tag, const char *rie, const char *onnx, ri_precision prec,
                                      size_t eng_bytes) {
  ri_runtime_t *rt = NULL;
  if (ri_runtime_create(&rt) != RI_OK) {
    result(0, "%s runtime_create", tag);
    return;
  }
  size_t left = fill_device(eng_bytes / 2);
  long live0 = ri__alloc_live();
  size_t free0 = device_free();
  ri_engine_t *e = NULL;
  ri_status s = ri_runtime_load(rt, rie, &e);
  size_t free1 = device_free();
  long live1 = ri__alloc_live();
  const char *msg = ri_runtime_last_error(rt);
  size_t lost = free0 > free1 ? free0 - free1 : 0;
  result(s == RI_ERR_NO_MEMORY && e == NULL && is_oom_message(msg) && strstr(msg, "constants") != NULL &&
             live1 == live0 && lost <= LEAK_SLACK,
         "%s load with %.1f MiB left (constants %.1f MiB): %s, host allocations %ld -> %ld, device memory "
         "lost %.1f MiB: %s",
         tag, MIB(left), MIB(eng_bytes), ri_status_str(s), live0, live1, MIB(lost), msg);
  ri_engine_destroy(e);
  ri_runtime_destroy(rt);

  live0 = ri__alloc_live();
  free0 = device_free();
  ri_builder_t *b = NULL;
  e = NULL;
  s = build(onnx, prec, &b, &e);
  free1 = device_free();
  msg = b ? ri_builder_last_error(b) : "";
  lost = free0 > free1 ? free0 - free1 : 0;
  int ok = s == RI_ERR_NO_MEMORY && e == NULL && is_oom_message(msg) && strstr(msg, "constants") != NULL &&
           lost <= LEAK_SLACK;
  char text[1400];
  snprintf(text, sizeof text, "%s", msg);
  ri_engine_destroy(e);
  ri_builder_destroy(b);
  long live1b = ri__alloc_live();
  result(
      ok && live1b == live0,
      "%s build with %.1f MiB left: %s, host allocations %ld -> %ld (builder destroyed), device memory lost "
      "%.1f MiB: %s",
      tag, MIB(left), ri_status_str(s), live0, live1b, MIB(lost), text);
  release_device();
}

/* Check 4: runs on a warmed-up context with the device full. */
static void run_on_full_device(const char *tag, ri_context_t *ctx, io_set *io, double tol) {
  const struct {
    int batch;
    const char *what;
  } runs[] = {{MAX_BATCH, "max batch (graph replay)"},
              {1, "batch 1 (graph replay)"},
              {NEW_BATCH, "a new batch size (eager)"},
              {NEW_BATCH, "the new batch size again (graph capture)"}};
  size_t left = fill_device(0);
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    ri_status s = run(ctx, io, runs[i].batch);
    if (s == RI_OK) {
      double err = out_error(io, ctx, runs[i].batch);
      result(err <= tol, "%s run at %s with %.1f MiB free: ok, max_rel_err %.3g (tol %.1e)", tag,
             runs[i].what, MIB(left), err, tol);
    } else {
      const char *msg = ri_context_last_error(ctx);
      result(s == RI_ERR_NO_MEMORY && is_oom_message(msg), "%s run at %s with %.1f MiB free: %s: %s", tag,
             runs[i].what, MIB(left), ri_status_str(s), msg);
    }
  }
  release_device();
  ri_status s = run(ctx, io, NEW_BATCH);
  double err = s == RI_OK ? out_error(io, ctx, NEW_BATCH) : INFINITY;
  result(s == RI_OK && err <= tol,
         "%s run at batch %d after the check's blocks were freed: %s, max_rel_err %.3g", tag, NEW_BATCH,
         s == RI_OK ? "ok" : ri_context_last_error(ctx), err);
}

static void test_precision(const char *onnx, const char *model, ri_precision prec, const char *pname,
                           double tol) {
  char tag[128], rie[4200];
  snprintf(tag, sizeof tag, "%s %s", model, pname);
  snprintf(rie, sizeof rie, "/tmp/test_cuda_oom_%s_%s.rie", model, pname);
  long live_start = ri__alloc_live();

  /* Reference engine and context; the engine's and a context's device footprints. A first build loads the
   * libraries' kernels the tuner tries (cuBLASLt's, for the fp16 1x1 convolutions' candidates): memory taken
   * once for the process, not the engine's, so the footprint is measured on a second build. */
  ri_builder_t *b = NULL;
  ri_engine_t *e = NULL;
  ri_status s = build(onnx, prec, &b, &e);
  ri_engine_destroy(e);
  ri_builder_destroy(b);
  b = NULL;
  e = NULL;
  size_t f0 = device_free();
  if (s == RI_OK) s = build(onnx, prec, &b, &e);
  if (s != RI_OK) {
    result(0, "%s build: %s: %s", tag, ri_status_str(s), b ? ri_builder_last_error(b) : "");
    ri_builder_destroy(b);
    return;
  }
  ri_builder_destroy(b);
  size_t eng_bytes = f0 > device_free() ? f0 - device_free() : 0;
  if (ri_engine_save(e, rie) != RI_OK) {
    result(0, "%s save %s: %s", tag, rie, ri_engine_last_error(e));
    ri_engine_destroy(e);
    return;
  }
  io_set io;
  ri_context_t *ref = NULL;
  if (!io_init(e, &io) || ri_context_create(e, &ref) != RI_OK) {
    result(0, "%s reference context: %s", tag, ri_engine_last_error(e));
    io_free(&io);
    ri_engine_destroy(e);
    return;
  }
  s = run(ref, &io, MAX_BATCH);
  if (s != RI_OK) {
    result(0, "%s reference run: %s", tag, ri_context_last_error(ref));
    ri_context_destroy(ref);
    io_free(&io);
    ri_engine_destroy(e);
    return;
  }
  for (int o = 0; o < io.n_out; o++) {
    io.ref[o] = io.got[o];
    io.got[o] = NULL;
  }
  ri_context_destroy(ref);
  /* The second context's footprint excludes one-time costs (kernel modules, library state). */
  size_t f1 = device_free();
  ri_context_t *probe = NULL;
  if (ri_context_create(e, &probe) != RI_OK) {
    result(0, "%s second context: %s", tag, ri_engine_last_error(e));
    io_free(&io);
    ri_engine_destroy(e);
    return;
  }
  size_t need = f1 > device_free() ? f1 - device_free() : 0;
  ri_context_destroy(probe);
  printf("INFO %s: engine constants take %.1f MiB of device memory, a context %.1f MiB (max batch %d); "
         "%.1f MiB free\n",
         tag, MIB(eng_bytes), MIB(need), MAX_BATCH, MIB(device_free()));
  /* The base leaves room for a second engine and a context (check 3) with margin. */
  set_base(2 * need + 2 * eng_bytes + ((size_t)512 << 20));

  /* 1: context creation, a different allocation failing at each amount. */
  const double fractions[] = {0.0, 0.125, 0.25, 0.5, 0.75};
  for (size_t i = 0; i < sizeof fractions / sizeof fractions[0]; i++)
    ctx_with_little_memory(tag, e, (size_t)(fractions[i] * (double)need), need, 1);
  if (need > ((size_t)128 << 20)) ctx_with_little_memory(tag, e, need - ((size_t)64 << 20), need, 0);

  /* 2: engine load and build. */
  engine_with_little_memory(tag, rie, onnx, prec, eng_bytes);

  /* 3: with the device freed, the same calls succeed and compute the reference outputs. */
  ri_runtime_t *rt = NULL;
  ri_engine_t *loaded = NULL;
  ri_context_t *ctx = NULL;
  s = ri_runtime_create(&rt);
  if (s == RI_OK) s = ri_runtime_load(rt, rie, &loaded);
  result(s == RI_OK, "%s load after the check's blocks were freed: %s", tag,
         s == RI_OK ? "ok" : (rt ? ri_runtime_last_error(rt) : "runtime_create failed"));
  if (s == RI_OK) {
    s = ri_context_create(loaded, &ctx);
    result(s == RI_OK, "%s context after the check's blocks were freed: %s", tag,
           s == RI_OK ? "ok" : ri_engine_last_error(loaded));
  }
  if (s == RI_OK) {
    s = run(ctx, &io, MAX_BATCH);
    double err = s == RI_OK ? out_error(&io, ctx, MAX_BATCH) : INFINITY;
    result(s == RI_OK && err <= tol,
           "%s run at batch %d after the check's blocks were freed: %s, max_rel_err %.3g", tag, MAX_BATCH,
           s == RI_OK ? "ok" : ri_context_last_error(ctx), err);
  }

  /* 4: runs with the device full, on a context that has run (and captured graphs for) MAX_BATCH and 1. */
  if (s == RI_OK) {
    int warm = 1;
    for (int r = 0; r < 2 && warm; r++)
      warm = run(ctx, &io, MAX_BATCH) == RI_OK && run(ctx, &io, 1) == RI_OK;
    if (warm)
      run_on_full_device(tag, ctx, &io, tol);
    else
      result(0, "%s warm-up runs: %s", tag, ri_context_last_error(ctx));
  }
  ri_context_destroy(ctx);
  ri_engine_destroy(loaded);
  ri_runtime_destroy(rt);
  ri_engine_destroy(e);
  io_free(&io);
  remove(rie);
  release_all();
  long live_end = ri__alloc_live();
  result(live_end == live_start, "%s everything destroyed: host allocations %ld -> %ld", tag, live_start,
         live_end);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODELS_DIR [model]\n", argv[0]);
    return 2;
  }
  const char *model = argc > 2 ? argv[2] : "ssd_mobilenet_v2";
  char onnx[4096];
  snprintf(onnx, sizeof onnx, "%s/%s.onnx", argv[1], model);
  FILE *f = fopen(onnx, "rb");
  if (!f) {
    printf("SKIP %s not found\n", onnx);
    return 77;
  }
  fclose(f);
  if (cudaFree(0) != cudaSuccess) { /* creates the process's CUDA context before anything is measured */
    printf("FAIL no CUDA device\n0 passed, 1 failed\n");
    return 1;
  }
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  printf("INFO device memory: %.0f MiB free of %.0f MiB\n", MIB(free_b), MIB(total_b));
  test_precision(onnx, model, RI_PRECISION_FP32, "fp32", TOL_FP32);
  test_precision(onnx, model, RI_PRECISION_FP16, "fp16", TOL_FP16);
  printf("INFO pipeline halving retry: not provoked. A CUDA context allocates all its device memory when it "
         "is created, for the engine's maximum batch; a run allocates none, so a batch never fails for "
         "memory where a smaller one would fit.\n");
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
