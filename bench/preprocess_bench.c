/* Single-thread ri_preprocess timing (a benchmark, not a test).
 *
 *   preprocess_bench [SECONDS_PER_CASE]
 *
 * Times ri_preprocess alone on synthetic RGB images (smooth colour ramps plus noise; the cost does not
 * depend on the pixel values) for the cases the pipeline meets most: 640x480 -> 300x300 float32 NCHW in
 * [-1, 1] (the SSD input), -> 300x300 uint8 NHWC, -> 300x300 float32 NHWC, -> 128x128 float32 NCHW, a
 * 1920x1080 frame -> 300x300 float32 NCHW, and 640x480 letterboxed into 300x300 (float32 NCHW and uint8
 * NHWC). Each case runs in rounds of ~50 ms for about SECONDS_PER_CASE (default 1) and reports the best
 * round's time per image, which is the least disturbed by other processes on a shared host. Prints one
 * JSON object per case per line. Run it pinned to one core, e.g.
 *   gcc -O2 -std=c11 -Iinclude bench/preprocess_bench.c -Lbuild -lruninfer -Wl,-rpath,build -o /tmp/ppb
 *   taskset -c 0 /tmp/ppb 2 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runinfer/vision.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static ri_image *make_image(int w, int h) {
  ri_image *img = NULL;
  if (ri_image_create(w, h, &img, NULL) != RI_OK) return NULL;
  uint32_t s = 12345;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      s = s * 1664525u + 1013904223u;
      uint8_t *p = img->data + (size_t)y * img->stride + (size_t)x * 3;
      p[0] = (uint8_t)((x * 255 / w) ^ (s >> 28));
      p[1] = (uint8_t)((y * 255 / h) ^ (s >> 24 & 15));
      p[2] = (uint8_t)(((x + y) & 255) ^ (s >> 20 & 15));
    }
  return img;
}

typedef struct {
  const char *name;
  int src_w, src_h;
  const char *spec;
} bench_case;

int main(int argc, char **argv) {
  double per_case = argc > 1 ? strtod(argv[1], NULL) : 1.0;
  if (!(per_case > 0 && per_case < 600)) {
    fprintf(stderr, "usage: %s [SECONDS_PER_CASE]\n", argv[0]);
    return 2;
  }
  static const bench_case cases[] = {
      {"640x480->300x300 f32 nchw", 640, 480, "size=300x300;layout=nchw;dtype=float32;range=-1,1"},
      {"640x480->300x300 u8 nhwc", 640, 480, "size=300x300;layout=nhwc;dtype=uint8"},
      {"640x480->300x300 f32 nhwc", 640, 480, "size=300x300;layout=nhwc;dtype=float32;range=-1,1"},
      {"640x480->128x128 f32 nchw", 640, 480, "size=128x128;layout=nchw;dtype=float32;range=-1,1"},
      {"1920x1080->300x300 f32 nchw", 1920, 1080, "size=300x300;layout=nchw;dtype=float32;range=-1,1"},
      {"640x480->300x300 letterbox f32 nchw", 640, 480,
       "size=300x300;layout=nchw;dtype=float32;range=-1,1;resize=letterbox;pad=114"},
      {"640x480->300x300 letterbox u8 nhwc", 640, 480,
       "size=300x300;layout=nhwc;dtype=uint8;resize=letterbox;pad=114"},
      {"320x240->300x300 f32 nchw", 320, 240, "size=300x300;layout=nchw;dtype=float32;range=-1,1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const bench_case *c = &cases[i];
    ri_preprocess_spec spec;
    ri_vision_error err;
    if (ri_preprocess_spec_parse(c->spec, &spec, &err) != RI_OK) {
      fprintf(stderr, "%s: %s\n", c->name, err.msg);
      return 1;
    }
    ri_image *img = make_image(c->src_w, c->src_h);
    void *dst = aligned_alloc(64, (ri_preprocess_output_bytes(&spec) + 63) / 64 * 64);
    if (!img || !dst) return 1;
    /* Calibrate a round of about 50 ms. */
    int iters = 1;
    for (;;) {
      double t0 = now_s();
      for (int k = 0; k < iters; k++)
        if (ri_preprocess(img, &spec, dst, NULL, &err) != RI_OK) {
          fprintf(stderr, "%s: %s\n", c->name, err.msg);
          return 1;
        }
      double dt = now_s() - t0;
      if (dt > 0.05 || iters > (1 << 20)) break;
      iters *= 2;
    }
    double best = 1e30, total = 0;
    int rounds = 0;
    double end = now_s() + per_case;
    while (now_s() < end || rounds < 3) {
      double t0 = now_s();
      for (int k = 0; k < iters; k++)
        if (ri_preprocess(img, &spec, dst, NULL, &err) != RI_OK) return 1;
      double dt = (now_s() - t0) / iters;
      if (dt < best) best = dt;
      total += dt;
      rounds++;
    }
    printf("{\"case\":\"%s\",\"spec\":\"%s\",\"best_ms\":%.4f,\"mean_ms\":%.4f,\"rounds\":%d,\"iters\":%d}\n",
           c->name, c->spec, best * 1e3, total / rounds * 1e3, rounds, iters);
    fflush(stdout);
    free(dst);
    ri_image_free(img);
  }
  return 0;
}
