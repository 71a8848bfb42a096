/* Single-thread JPEG throughput, for bench/pipeline_bench.py.
 *
 *   jpeg_decode_bench [--size WxH] [--hint WxH] [--scale M] MODE ROUNDS FILE...
 *   bare           libjpeg-turbo alone: tjDecompress2 to RGB from memory (with --scale M: DCT-domain scaling
 *                  to M/8 of the size, M = 1..16)
 *   bare-fast      the same with TJFLAG_FASTDCT | TJFLAG_FASTUPSAMPLE
 *   bare-yuv       tjDecompressToYUV2: planar YCbCr, no chroma upsampling or colour conversion
 *   decode         runinfer: ri_decoder_decode_memory from memory
 *   pipeline       runinfer as the pipeline's decode stage does it: ri_decoder_load_file (read + decode;
 * JPEGs in YCbCr to their planes) + ri_decoder_preprocess_loaded to a WxH (--size, default 300x300) NCHW
 * float32 tensor in [-1, 1] pipeline-fast  the same with fast decode: ri_decoder_set_scale_hint with the
 * model size, as `runinfer run --fast-decode` does, or with --hint WxH pipeline-rgb   the RGB path (the
 * decode stage before the planar path, and with RI_JPEG_YCBCR=0): ri_decoder_decode_file + ri_preprocess to
 * the same tensor pipeline-rgb-fast  the same with the scale hint of pipeline-fast
 *
 * Files are read into memory once before timing (the page cache holds them for `pipeline` too). Each round
 * processes every file once; prints one JSON line {"mode":..,"images":..,"best_s":..,"median_s":..,
 * "images_per_s":..} with the rate of the best round. Built by the benchmark script:
 *   gcc -O2 -std=c11 -Iinclude bench/jpeg_decode_bench.c -Lbuild -lruninfer -lturbojpeg -Wl,-rpath,build */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>

#include "runinfer/vision.h"

typedef struct {
  unsigned char *data;
  size_t size;
  const char *path;
} file_buf;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int read_file(const char *path, file_buf *f) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return 1;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  f->data = malloc(n > 0 ? (size_t)n : 1);
  f->size = n > 0 ? (size_t)n : 0;
  f->path = path;
  int bad = !f->data || fread(f->data, 1, f->size, fp) != f->size;
  fclose(fp);
  return bad;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  char size[32] = "300x300";
  int hint_w = 0, hint_h = 0, scale_m = 8;
  while (argc > 2 && strncmp(argv[1], "--", 2) == 0) {
    if (strcmp(argv[1], "--size") == 0)
      snprintf(size, sizeof size, "%s", argv[2]);
    else if (strcmp(argv[1], "--hint") == 0 && sscanf(argv[2], "%dx%d", &hint_w, &hint_h) == 2)
      ;
    else if (strcmp(argv[1], "--scale") == 0 && (scale_m = atoi(argv[2])) >= 1 && scale_m <= 16)
      ;
    else
      return 2;
    argc -= 2;
    argv += 2;
  }
  if (argc < 4) {
    fprintf(stderr,
            "usage: %s [--size WxH] [--hint WxH] [--scale M] bare|bare-fast|bare-yuv|decode|pipeline|"
            "pipeline-fast|pipeline-rgb|pipeline-rgb-fast ROUNDS FILE...\n",
            argv[0]);
    return 2;
  }
  const char *mode = argv[1];
  int rounds = atoi(argv[2]);
  int n = argc - 3;
  if (rounds < 1 || rounds > 1000) return 2;
  int rgb_path = strncmp(mode, "pipeline-rgb", 12) == 0;
  int fast = strcmp(mode, "pipeline-fast") == 0 || strcmp(mode, "pipeline-rgb-fast") == 0;
  int pipeline = strncmp(mode, "pipeline", 8) == 0;
  if (pipeline && !fast && !rgb_path && strcmp(mode, "pipeline") != 0) return 2;
  file_buf *files = calloc((size_t)n, sizeof *files);
  for (int i = 0; i < n; i++)
    if (read_file(argv[3 + i], &files[i])) {
      fprintf(stderr, "cannot read %s\n", argv[3 + i]);
      return 1;
    }
  tjhandle tj = tjInitDecompress();
  ri_decoder_t *dec = NULL;
  if (!tj || ri_decoder_create(&dec) != RI_OK) return 1;
  ri_preprocess_spec spec;
  ri_vision_error verr;
  char spec_text[96];
  snprintf(spec_text, sizeof spec_text, "size=%s;layout=nchw;dtype=float32;range=-1,1", size);
  if (ri_preprocess_spec_parse(spec_text, &spec, &verr) != RI_OK) {
    fprintf(stderr, "%s\n", verr.msg);
    return 1;
  }
  if (fast &&
      ri_decoder_set_scale_hint(dec, hint_w ? hint_w : spec.width, hint_h ? hint_h : spec.height) != RI_OK)
    return 1;
  const int bare = strncmp(mode, "bare", 4) == 0;
  const int tj_flags = strcmp(mode, "bare-fast") == 0 ? TJFLAG_FASTDCT | TJFLAG_FASTUPSAMPLE : 0;
  float *tensor = aligned_alloc(64, ri_preprocess_output_bytes(&spec));
  unsigned char *rgb = NULL;
  size_t rgb_cap = 0;
  double *times = calloc((size_t)rounds, sizeof *times);
  for (int r = 0; r < rounds; r++) {
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
      if (bare) {
        int w, h, ss, cs;
        if (tjDecompressHeader3(tj, files[i].data, (unsigned long)files[i].size, &w, &h, &ss, &cs)) return 1;
        w = (w * scale_m + 7) / 8; /* TJSCALED: the factor TurboJPEG picks for this size is M/8 */
        h = (h * scale_m + 7) / 8;
        size_t need = (size_t)w * (size_t)h * 3;
        if (need > rgb_cap) {
          free(rgb);
          rgb = malloc(need);
          rgb_cap = need;
        }
        int rc = strcmp(mode, "bare-yuv") == 0
                     ? tjDecompressToYUV2(tj, files[i].data, (unsigned long)files[i].size, rgb, w, 1, h, 0)
                     : tjDecompress2(tj, files[i].data, (unsigned long)files[i].size, rgb, w, 0, h, TJPF_RGB,
                                     tj_flags);
        if (rc) return 1;
      } else if (pipeline && !rgb_path) {
        if (ri_decoder_load_file(dec, files[i].path) != RI_OK ||
            ri_decoder_preprocess_loaded(dec, &spec, tensor, NULL) != RI_OK) {
          fprintf(stderr, "%s\n", ri_decoder_last_error(dec));
          return 1;
        }
      } else {
        ri_image *img = NULL;
        ri_status s = strcmp(mode, "decode") == 0
                          ? ri_decoder_decode_memory(dec, files[i].data, files[i].size, files[i].path, &img)
                          : ri_decoder_decode_file(dec, files[i].path, &img);
        if (s != RI_OK) {
          fprintf(stderr, "%s\n", ri_decoder_last_error(dec));
          return 1;
        }
        if (pipeline && ri_preprocess(img, &spec, tensor, NULL, &verr) != RI_OK) return 1;
        ri_image_free(img);
      }
    }
    times[r] = now_s() - t0;
  }
  qsort(times, (size_t)rounds, sizeof *times, cmp_d);
  printf("{\"mode\":\"%s\",\"scale\":\"%d/8\",\"size\":\"%s\",\"images\":%d,\"rounds\":%d,"
         "\"best_s\":%.6f,\"median_s\":%.6f,\"images_per_s\":%.2f}\n",
         mode, bare ? scale_m : 8, pipeline ? size : "", n, rounds, times[0], times[rounds / 2],
         (double)n / times[0]);
  tjDestroy(tj);
  ri_decoder_destroy(dec);
  free(rgb);
  free(tensor);
  free(times);
  for (int i = 0; i < n; i++)
    free(files[i].data);
  free(files);
  return 0;
}
