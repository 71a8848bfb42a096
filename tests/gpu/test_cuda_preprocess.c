/* GPU test of device preprocessing (ri_builder_set_preprocess_on_device) and its fused input normalisation
 * (cuda_fuse_input.c, k_u8norm.cu).
 *
 *   test_cuda_preprocess MODELS_DIR [tiny]
 *
 * For SSD MobileNet v2 (NCHW input normalised to [-1, 1]: Cast, Sub, Mul and Transpose in front) and its NHWC
 * variant (float 0..255 input: Cast, Sub 0, Mul 1), fp32 and fp16, with the fusion on (default) and off
 * (RI_CUDA_FUSE=0): a CUDA engine and a CPU engine, both built with device preprocessing and max batch 4,
 * run the same seeded uint8 pixels at batch 1 and 4 (eager, then graph replays); every output is within
 * max|cuda - cpu| / max|cpu| <= 1e-4 (fp32) or 2.5e-2 (fp16, the bound test_cuda_ops gives these models).
 * With the fusion on, the NCHW model's description names the fused kernel (u8_normalize) and its three
 * skipped nodes. First the kernel alone on both of its paths (check_kernel). "tiny": the same on tiny_ssd
 * only (for compute-sanitizer). Prints PASS/FAIL lines and "N passed, M failed". */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "backend/cuda/kernels.h"
#include "core/half.h"
#include "gpu_build.h"
#include "gpu_result.h"
#include "gpu_tensor.h"
#include "runinfer/engine.h"

#define MB 4

static int count_str(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

static void check_model(const char *dir, const char *model, const char *spec, int expect_fused) {
  char path[1024], msg[1024] = "";
  snprintf(path, sizeof path, "%s/%s.onnx", dir, model);
  const gpu_build_opts opts = {.preprocess = spec};
  ri_engine_t *cpu = NULL;
  if (gpu_build_ex(path, "cpu", RI_PRECISION_FP32, MB, &opts, &cpu, msg, sizeof msg) != RI_OK) {
    result(0, "%s: CPU build: %s", model, msg);
    return;
  }
  for (int k = 0; k < 4; k++) {
    ri_precision prec = k & 1 ? RI_PRECISION_FP16 : RI_PRECISION_FP32;
    const char *pname = k & 1 ? "fp16" : "fp32";
    int fuse = k < 2;
    double tol = prec == RI_PRECISION_FP16 ? 2.5e-2 : 1e-4;
    if (!fuse) setenv("RI_CUDA_FUSE", "0", 1);
    ri_engine_t *gpu = NULL;
    ri_status s = gpu_build_ex(path, "cuda", prec, MB, &opts, &gpu, msg, sizeof msg);
    unsetenv("RI_CUDA_FUSE");
    if (s != RI_OK) {
      result(0, "%s %s fuse=%d: CUDA build: %s", model, pname, fuse, msg);
      continue;
    }
    const char *json = NULL;
    if (fuse && ri_engine_describe_json(gpu, &json) == RI_OK && json) {
      int fused = count_str(json, "\"u8_normalize\""), skipped = count_str(json, "\"fused_into_input\"");
      if (expect_fused)
        result(fused == 1 && skipped == 3, "%s %s: fused input normalisation (u8_normalize %d, skipped %d)",
               model, pname, fused, skipped);
      else
        printf("note %s %s: u8_normalize %d, fused_into_input %d\n", model, pname, fused, skipped);
    }
    ri_tensor_info ti, to[4];
    int no = ri_engine_num_outputs(gpu);
    int ok = ri_engine_input_info(gpu, 0, &ti) == RI_OK && ti.dtype == RI_DTYPE_UINT8 && no <= 4;
    for (int o = 0; ok && o < no; o++)
      ok = ri_engine_output_info(gpu, o, &to[o]) == RI_OK && to[o].dtype == RI_DTYPE_FLOAT32;
    result(ok, "%s %s fuse=%d: uint8 input, float32 outputs", model, pname, fuse);
    ri_context_t *cg = NULL, *cc = NULL;
    ok = ok && ri_context_create(gpu, &cg) == RI_OK && ri_context_create(cpu, &cc) == RI_OK;
    for (int bi = 0; ok && bi < 2; bi++) {
      int batch = bi ? MB : 1;
      size_t nin = gpu_numel(&ti, batch);
      uint8_t *in = malloc(nin);
      float *ref[4] = {0}, *got[4] = {0};
      uint32_t r = 77u + (uint32_t)batch;
      for (size_t i = 0; in && i < nin; i++) {
        r = r * 1664525u + 1013904223u;
        in[i] = (uint8_t)(r >> 24);
      }
      for (int o = 0; o < no; o++) {
        ref[o] = malloc(gpu_numel(&to[o], batch) * sizeof(float));
        got[o] = malloc(gpu_numel(&to[o], batch) * sizeof(float));
      }
      const void *ins[1] = {in};
      int run_ok = in != NULL && ri_context_run(cc, batch, ins, (void *const *)ref) == RI_OK;
      for (int rep = 0; run_ok && rep < 3; rep++) { /* eager, capture, replay */
        if (ri_context_run(cg, batch, ins, (void *const *)got) != RI_OK) {
          result(0, "%s %s fuse=%d batch %d: run: %s", model, pname, fuse, batch, ri_context_last_error(cg));
          run_ok = 0;
          break;
        }
        if (rep == 1) continue;
        for (int o = 0; o < no; o++) {
          size_t n = gpu_numel(&to[o], batch);
          double md = 0, mr = 0;
          for (size_t i = 0; i < n; i++) {
            double d = fabs((double)got[o][i] - (double)ref[o][i]);
            if (!(d <= md)) md = d; /* NaN sticks */
            if (fabs(ref[o][i]) > mr) mr = fabs(ref[o][i]);
          }
          double e = mr > 0 ? md / mr : md;
          result(e <= tol, "%s %s fuse=%d batch %d run %d output %s: max_rel_err %.3g (tol %.1e)", model,
                 pname, fuse, batch, rep, to[o].name, e, tol);
        }
      }
      if (!run_ok && in) result(0, "%s %s fuse=%d batch %d: runs", model, pname, fuse, batch);
      free(in);
      for (int o = 0; o < no; o++) {
        free(ref[o]);
        free(got[o]);
      }
    }
    ri_context_destroy(cg);
    ri_context_destroy(cc);
    ri_engine_destroy(gpu);
  }
  ri_engine_destroy(cpu);
}

/* The kernel itself (ri__cu_u8_normalize) on both of its paths: four RGB pixels per thread (aligned, whole
 * groups) and element by element (a pixel count not a multiple of 4, a misaligned input, 1 and 4
 * channels): every output equals the host's (x - mean) * scale in float, rounded once to half for F16. */
static void check_kernel(void) {
  const int cases[][3] = {{3, 96, 0}, {3, 75, 0}, {3, 96, 1}, {1, 50, 0}, {4, 64, 0}, {3, 300 * 300 * 2, 0}};
  ri__cu_u8norm_coef k = {{127.5f, 120.f, 110.f, 3.f}, {0.0078125f, 0.01f, 0.02f, 1.5f}};
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
    int ch = cases[ci][0], off = cases[ci][2];
    int64_t n = cases[ci][1];
    for (int half = 0; half < 2; half++) {
      size_t es = half ? 2 : 4;
      uint8_t *hx = malloc((size_t)n + 4);
      unsigned char *hy = malloc((size_t)n * es);
      void *dx = NULL, *dy = NULL;
      int ok = hx && hy && cudaMalloc(&dx, (size_t)n + 4) == cudaSuccess &&
               cudaMalloc(&dy, (size_t)n * es) == cudaSuccess;
      for (int64_t i = 0; ok && i < n + 4; i++)
        hx[i] = (uint8_t)((i * 151 + 7) % 256);
      ok = ok && cudaMemcpy(dx, hx, (size_t)n + 4, cudaMemcpyHostToDevice) == cudaSuccess &&
           ri__cu_u8_normalize(0, (const uint8_t *)dx + off, n, ch, &k, dy,
                               half ? RI_DTYPE_FLOAT16 : RI_DTYPE_FLOAT32) == cudaSuccess &&
           cudaMemcpy(hy, dy, (size_t)n * es, cudaMemcpyDeviceToHost) == cudaSuccess;
      int64_t bad = 0;
      for (int64_t i = 0; ok && i < n; i++) {
        int c = (int)(i % ch);
        float want = ((float)hx[i + off] - k.mean[c]) * k.scale[c];
        if (half ? ((const uint16_t *)hy)[i] != ri__float_to_half(want) : ((const float *)hy)[i] != want)
          bad++;
      }
      result(ok && bad == 0, "ri__cu_u8_normalize %s channels %d n %lld input offset %d: %lld outputs differ",
             half ? "f16" : "f32", ch, (long long)n, off, (long long)bad);
      cudaFree(dx);
      cudaFree(dy);
      free(hx);
      free(hy);
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_cuda_preprocess MODELS_DIR\n");
    return 2;
  }
  check_kernel();
  if (argc > 2 && strcmp(argv[2], "tiny") == 0) { /* small enough for compute-sanitizer */
    check_model(argv[1], "tiny_ssd", "size=32x32;layout=nchw;mean=127.5,120,110;scale=0.0078125,0.01,0.02",
                1);
  } else {
    check_model(argv[1], "ssd_mobilenet_v2",
                "size=300x300;layout=nchw;mean=127.5,127.5,127.5;scale=0.0078125,0.0078125,0.0078125", 1);
    check_model(argv[1], "ssd_mobilenet_v2_nhwc", "size=300x300;layout=nhwc;mean=0;scale=1", 0);
  }
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
