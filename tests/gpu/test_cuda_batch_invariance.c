/* GPU test: a CUDA engine's output for an image does not depend on the batch it runs in, nor on its
 * position there, to the bit.
 *
 *   test_cuda_batch_invariance MODELS_DIR [model ...]
 *
 * For every reference model (default: all of them) and precision (fp32, fp16) it builds a CUDA engine with
 * maximum batch 37, runs each of a pool of 40 random images alone (batch 1), then batches of 2, 3, 8 and 37
 * images drawn from the pool at different offsets (so an image lands at different positions), each batch
 * three times (eager, graph capture, graph replay), and compares every image's slice of every output with
 * its batch-1 output with memcmp. One PASS/FAIL line per (model, precision, batch, run), naming the first
 * differing output, image, position and largest difference; "N passed, M failed" last; exit 1 on failure.
 * Outputs whose first dimension is not the batch are not compared (none of the reference models has one).
 * tiny_shape_ops is not among the default models: it adds the batch size (Shape -> Gather -> Cast) to its
 * outputs, so they depend on the batch by design.
 * RI_TEST_PREC=fp32 or fp16 tests that precision only. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_build.h"
#include "gpu_result.h"
#include "runinfer/engine.h"

#define MAX_BATCH 37
#define POOL      40
#define MAX_IO    16

static uint64_t g_rng = 0x6a09e667f3bcc909ull;
static double uniform01(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (double)(g_rng >> 11) / (double)(1ull << 53);
}

/* Elements of one image (batch 1) of a tensor whose first dimension is the batch. */
static size_t per_image(const ri_tensor_info *info) {
  size_t n = 1;
  for (int i = 1; i < info->rank; i++)
    n *= (size_t)(info->dims[i] < 0 ? 1 : info->dims[i]);
  return n;
}

typedef struct {
  int n_in, n_out;
  ri_tensor_info in_info[MAX_IO], out_info[MAX_IO];
  size_t in_bytes[MAX_IO], out_bytes[MAX_IO]; /* per image */
  int out_batched[MAX_IO];
  unsigned char *pool_in[MAX_IO]; /* POOL images */
  unsigned char *ref[MAX_IO];     /* POOL batch-1 outputs */
  unsigned char *in[MAX_IO];      /* one batch */
  unsigned char *out[MAX_IO];     /* one batch */
} io_set;

static void io_free(io_set *io) {
  for (int i = 0; i < MAX_IO; i++) {
    free(io->pool_in[i]);
    free(io->ref[i]);
    free(io->in[i]);
    free(io->out[i]);
  }
  memset(io, 0, sizeof *io);
}

/* Fills the batch inputs with pool images first, first + 1, ... (mod POOL) and runs it. */
static int run_batch(ri_context_t *ctx, io_set *io, int batch, int first, char *msg, size_t len) {
  for (int i = 0; i < io->n_in; i++)
    for (int j = 0; j < batch; j++)
      memcpy(io->in[i] + (size_t)j * io->in_bytes[i],
             io->pool_in[i] + (size_t)((first + j) % POOL) * io->in_bytes[i], io->in_bytes[i]);
  for (int o = 0; o < io->n_out; o++)
    memset(io->out[o], 0xa5, (size_t)batch * io->out_bytes[o]);
  void *outs[MAX_IO];
  for (int o = 0; o < io->n_out; o++)
    outs[o] = io->out[o];
  ri_status s = ri_context_run(ctx, batch, (const void *const *)io->in, outs);
  if (s != RI_OK) snprintf(msg, len, "%s: %s", ri_status_str(s), ri_context_last_error(ctx));
  return s == RI_OK;
}

/* Largest |a - b| over two float32 slices (for the message only). */
static double max_diff(const ri_tensor_info *info, const unsigned char *a, const unsigned char *b,
                       size_t bytes) {
  if (info->dtype != RI_DTYPE_FLOAT32) return NAN;
  double m = 0;
  for (size_t i = 0; i + 4 <= bytes; i += 4) {
    float x, y;
    memcpy(&x, a + i, 4);
    memcpy(&y, b + i, 4);
    double d = fabs((double)x - (double)y);
    if (d > m || isnan(d)) m = d;
  }
  return m;
}

static void test_model(const char *dir, const char *model, ri_precision prec, const char *pname) {
  char path[4096], msg[2048];
  snprintf(path, sizeof path, "%s/%s.onnx", dir, model);
  FILE *f = fopen(path, "rb");
  if (!f) {
    printf("SKIP %s: %s not found\n", model, path);
    return;
  }
  fclose(f);
  ri_engine_t *e = NULL;
  if (gpu_build(path, "cuda", prec, MAX_BATCH, &e, msg, sizeof msg) != RI_OK) {
    result(0, "%s %s build: %s", model, pname, msg);
    return;
  }
  ri_context_t *ctx = NULL;
  if (ri_context_create(e, &ctx) != RI_OK) {
    result(0, "%s %s context: %s", model, pname, ri_engine_last_error(e));
    ri_engine_destroy(e);
    return;
  }
  io_set io;
  memset(&io, 0, sizeof io);
  io.n_in = ri_engine_num_inputs(e);
  io.n_out = ri_engine_num_outputs(e);
  int ok = io.n_in <= MAX_IO && io.n_out <= MAX_IO;
  int nhwc_pixels = strstr(model, "nhwc") != NULL;
  for (int i = 0; ok && i < io.n_in; i++) {
    ok = ri_engine_input_info(e, i, &io.in_info[i]) == RI_OK;
    if (!ok) break;
    size_t n = per_image(&io.in_info[i]);
    io.in_bytes[i] = n * ri_dtype_size(io.in_info[i].dtype);
    io.pool_in[i] = malloc(io.in_bytes[i] * POOL);
    io.in[i] = malloc(io.in_bytes[i] * MAX_BATCH);
    ok = io.pool_in[i] && io.in[i];
    if (!ok) break;
    if (io.in_info[i].dtype == RI_DTYPE_FLOAT32) {
      float *p = (float *)io.pool_in[i];
      for (size_t k = 0; k < n * POOL; k++)
        p[k] = (float)(nhwc_pixels ? 255.0 * uniform01() : 4.0 * uniform01() - 2.0);
    } else {
      memset(io.pool_in[i], 0, io.in_bytes[i] * POOL);
    }
  }
  for (int o = 0; ok && o < io.n_out; o++) {
    ri_tensor_info oi;
    ok = ri_engine_output_info(e, o, &io.out_info[o]) == RI_OK &&
         ri_context_output_shape(ctx, 1, o, &oi) == RI_OK;
    if (!ok) break;
    io.out_batched[o] = io.out_info[o].rank >= 1 && io.out_info[o].dims[0] < 0;
    size_t n = 1;
    for (int k = 1; k < oi.rank; k++)
      n *= (size_t)oi.dims[k];
    io.out_bytes[o] = n * ri_dtype_size(oi.dtype);
    io.ref[o] = malloc(io.out_bytes[o] * POOL + 1);
    io.out[o] = malloc(io.out_bytes[o] * MAX_BATCH + 1);
    ok = io.ref[o] && io.out[o];
  }
  if (!ok) result(0, "%s %s: engine I/O description", model, pname);
  /* batch-1 outputs of every pool image (eager, then captured, then replayed: all must agree too) */
  for (int img = 0; ok && img < POOL; img++) {
    if (!run_batch(ctx, &io, 1, img, msg, sizeof msg)) {
      result(0, "%s %s batch=1 image %d: %s", model, pname, img, msg);
      ok = 0;
      break;
    }
    for (int o = 0; o < io.n_out; o++)
      memcpy(io.ref[o] + (size_t)img * io.out_bytes[o], io.out[o], io.out_bytes[o]);
  }
  for (int img = 0; ok && img < 3; img++) { /* images 0..2 again at batch 1, from the cached graph */
    if (!run_batch(ctx, &io, 1, img, msg, sizeof msg)) break;
    int same = 1;
    for (int o = 0; o < io.n_out; o++)
      same &= memcmp(io.ref[o] + (size_t)img * io.out_bytes[o], io.out[o], io.out_bytes[o]) == 0;
    result(same, "%s %s batch=1 image %d repeated: %s", model, pname, img, same ? "identical" : "differs");
  }
  const int batches[4] = {2, 3, 8, MAX_BATCH};
  const char *runs[3] = {"eager", "capture", "replay"};
  for (int bi = 0; ok && bi < 4; bi++) {
    int batch = batches[bi];
    int first = (7 * batch + 5) % POOL; /* a different offset per batch size */
    for (int r = 0; r < 3; r++) {
      if (!run_batch(ctx, &io, batch, first, msg, sizeof msg)) {
        result(0, "%s %s batch=%d run=%s: %s", model, pname, batch, runs[r], msg);
        break;
      }
      int bad_o = -1, bad_j = -1, compared = 0;
      for (int o = 0; o < io.n_out && bad_o < 0; o++) {
        if (!io.out_batched[o]) continue;
        for (int j = 0; j < batch; j++) {
          int img = (first + j) % POOL;
          compared++;
          if (memcmp(io.out[o] + (size_t)j * io.out_bytes[o], io.ref[o] + (size_t)img * io.out_bytes[o],
                     io.out_bytes[o]) != 0) {
            bad_o = o, bad_j = j;
            break;
          }
        }
      }
      if (bad_o < 0) {
        result(compared > 0, "%s %s batch=%d run=%s: %d image outputs bit-identical to batch 1", model, pname,
               batch, runs[r], compared);
      } else {
        int img = (first + bad_j) % POOL;
        double d = max_diff(&io.out_info[bad_o], io.out[bad_o] + (size_t)bad_j * io.out_bytes[bad_o],
                            io.ref[bad_o] + (size_t)img * io.out_bytes[bad_o], io.out_bytes[bad_o]);
        result(0,
               "%s %s batch=%d run=%s: output %s of image %d at position %d differs from batch 1 (max |diff| "
               "%.3g)",
               model, pname, batch, runs[r], io.out_info[bad_o].name, img, bad_j, d);
      }
    }
  }
  io_free(&io);
  ri_context_destroy(ctx);
  ri_engine_destroy(e);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODELS_DIR [model ...]\n", argv[0]);
    return 2;
  }
  static const char *const all[] = {
      "tiny_conv",    "tiny_ssd", "tiny_qdq", "ssd_mobilenet_v2", "ssd_mobilenet_v2_nhwc",
      "mobilenet_v2", "resnet50"};
  const char *const *models = argc > 2 ? (const char *const *)argv + 2 : all;
  int count = argc > 2 ? argc - 2 : (int)(sizeof all / sizeof all[0]);
  const char *only = getenv("RI_TEST_PREC"); /* "fp32" or "fp16": that precision only */
  for (int i = 0; i < count; i++) {
    if (!only || strcmp(only, "fp16") != 0) test_model(argv[1], models[i], RI_PRECISION_FP32, "fp32");
    if (!only || strcmp(only, "fp32") != 0) test_model(argv[1], models[i], RI_PRECISION_FP16, "fp16");
  }
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
