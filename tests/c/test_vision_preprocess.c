/* Preprocessing: spec text form, and resize / normalise / layout against a double-precision reference
 * written here from the formulas (half-pixel bilinear, letterbox geometry). */
#include <locale.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "runinfer/vision.h"
#include "test.h"
#include "vision/resize.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (uint32_t)(g_rng >> 16);
}
static float rndf(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() % 1000001) / 1000000.0f; }

static int spec_equal(const ri_preprocess_spec *a, const ri_preprocess_spec *b) {
  if (a->width != b->width || a->height != b->height || a->layout != b->layout || a->dtype != b->dtype ||
      a->resize != b->resize || a->order != b->order)
    return 0;
  for (int c = 0; c < 3; c++)
    if (a->mean[c] != b->mean[c] || a->scale[c] != b->scale[c] || a->pad[c] != b->pad[c]) return 0;
  return 1;
}

static void test_spec_text(void) {
  ri_preprocess_spec s, t;
  ri_vision_error e;
  char buf[512];
  size_t need = 0;
  ri_preprocess_spec_default(&s);
  CHECK(ri_preprocess_spec_to_string(&s, buf, sizeof buf, &need, &e) == RI_OK);
  CHECK(need == strlen(buf) + 1);
  CHECK_MSG(strcmp(buf,
                   "size=300x300;layout=nhwc;dtype=float32;mean=0,0,0;scale=1,1,1;resize=bilinear;pad=0,0,0;"
                   "order=rgb") == 0,
            "%s", buf);
  CHECK(ri_preprocess_spec_parse(buf, &t, &e) == RI_OK && spec_equal(&s, &t));

  const char *txt = "size=300x300;layout=nchw;dtype=float32;mean=127.5,127.5,127.5;"
                    "scale=0.0078125,0.0078125,0.0078125;resize=bilinear;order=rgb";
  CHECK(ri_preprocess_spec_parse(txt, &s, &e) == RI_OK);
  CHECK(s.width == 300 && s.height == 300 && s.layout == RI_LAYOUT_NCHW && s.dtype == RI_DTYPE_FLOAT32);
  CHECK(s.mean[2] == 127.5f && s.scale[1] == 0.0078125f && s.resize == RI_RESIZE_BILINEAR);

  CHECK(ri_preprocess_spec_parse(
            " size = 320x240 ; range=-1,1; dtype=uint8;resize=letterbox;pad=114;order=bgr;", &s, &e) ==
        RI_OK);
  CHECK(s.width == 320 && s.height == 240 && s.dtype == RI_DTYPE_UINT8 && s.order == RI_CHANNEL_ORDER_BGR);
  CHECK(s.resize == RI_RESIZE_LETTERBOX && s.pad[0] == 114.0f && s.pad[2] == 114.0f);
  CHECK(fabs(s.scale[0] - 2.0 / 255.0) < 1e-7 && fabs(s.mean[1] - 127.5) < 1e-4);
  CHECK(ri_preprocess_spec_parse("size=224", &s, &e) == RI_OK && s.width == 224 && s.height == 224);

  /* Errors name the key. */
  struct {
    const char *text;
    const char *needle;
  } bad[] = {{"size=300x", "size"},
             {"size=0x10", "size"},
             {"colour=rgb", "colour"},
             {"dtype=float64", "dtype"},
             {"layout=nhwc;layout=nchw", "repeated"},
             {"mean=1,2", "mean"},
             {"scale=1,2,3,4", "scale"},
             {"scale=abc", "scale"},
             {"mean=0x10", "mean"},
             {"mean=nan", "mean"},
             {"pad=300", "pad"},
             {"range=1,1", "range"},
             {"range=0,1;mean=3", "range"},
             {"resize", "resize"},
             {"order=rgba", "order"},
             {"size=99999x1", "size"},
             {"mean=1e999", "mean"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(&e, 0, sizeof e);
    ri_preprocess_spec_default(&t);
    ri_preprocess_spec before = t;
    ri_status st = ri_preprocess_spec_parse(bad[i].text, &t, &e);
    CHECK_MSG(st == RI_ERR_PARSE, "'%s' gave %d", bad[i].text, (int)st);
    CHECK_MSG(e.status == st && strstr(e.msg, bad[i].needle) != NULL, "'%s': %s", bad[i].text, e.msg);
    CHECK(spec_equal(&t, &before));
  }
  CHECK(ri_preprocess_spec_parse(NULL, &t, NULL) == RI_ERR_INVALID_ARG);

  /* Buffer too small: RI_ERR_LIMIT with the size needed; NULL buffer measures. */
  ri_preprocess_spec_default(&s);
  CHECK(ri_preprocess_spec_to_string(&s, NULL, 0, &need, NULL) == RI_ERR_LIMIT && need > 50);
  CHECK(ri_preprocess_spec_to_string(&s, buf, 10, &need, &e) == RI_ERR_LIMIT && strlen(buf) == 9);
  s.width = 0;
  CHECK(ri_preprocess_spec_to_string(&s, buf, sizeof buf, &need, &e) == RI_ERR_INVALID_ARG);

  /* Random specs round-trip exactly. */
  for (int i = 0; i < 500; i++) {
    ri_preprocess_spec_default(&s);
    s.width = 1 + (int)(rnd() % 2000);
    s.height = 1 + (int)(rnd() % 2000);
    s.layout = rnd() & 1 ? RI_LAYOUT_NCHW : RI_LAYOUT_NHWC;
    s.dtype = rnd() & 1 ? RI_DTYPE_UINT8 : RI_DTYPE_FLOAT32;
    s.resize = rnd() & 1 ? RI_RESIZE_LETTERBOX : RI_RESIZE_BILINEAR;
    s.order = rnd() & 1 ? RI_CHANNEL_ORDER_BGR : RI_CHANNEL_ORDER_RGB;
    for (int c = 0; c < 3; c++) {
      s.mean[c] = rndf(-300, 300) * (rnd() & 1 ? 1e-6f : 1.0f);
      s.scale[c] = rndf(-2, 2) / (float)(1 + rnd() % 1000);
      s.pad[c] = rndf(0, 255);
    }
    CHECK(ri_preprocess_spec_to_string(&s, buf, sizeof buf, NULL, NULL) == RI_OK);
    CHECK_MSG(ri_preprocess_spec_parse(buf, &t, &e) == RI_OK && spec_equal(&s, &t), "round trip: %s", buf);
  }

  /* The text form does not depend on the C locale. */
  if (setlocale(LC_NUMERIC, "de_DE.UTF-8") || setlocale(LC_NUMERIC, "fr_FR.UTF-8") ||
      setlocale(LC_NUMERIC, "de_DE")) {
    ri_preprocess_spec_default(&s);
    s.mean[0] = 127.5f;
    CHECK(ri_preprocess_spec_to_string(&s, buf, sizeof buf, NULL, NULL) == RI_OK);
    CHECK_MSG(strstr(buf, "mean=127.5,0,0") != NULL, "%s", buf);
    CHECK(ri_preprocess_spec_parse(buf, &t, NULL) == RI_OK && t.mean[0] == 127.5f);
    setlocale(LC_NUMERIC, "C");
  } else {
    printf("note: no comma-decimal locale installed; locale check skipped\n");
  }
}

/* ---- reference ----------------------------------------------------------------------------------------- */

typedef struct {
  int x, y, w, h;
} rect;

static rect ref_region(int sw, int sh, const ri_preprocess_spec *s) {
  rect r = {0, 0, s->width, s->height};
  if (s->resize == RI_RESIZE_LETTERBOX) {
    double k = fmin((double)s->width / sw, (double)s->height / sh);
    if ((double)s->width / sw <= (double)s->height / sh) {
      r.h = (int)floor((double)sh * s->width / sw + 0.5);
    } else {
      r.w = (int)floor((double)sw * s->height / sh + 0.5);
    }
    (void)k;
    if (r.w < 1) r.w = 1;
    if (r.h < 1) r.h = 1;
    r.x = (s->width - r.w) / 2;
    r.y = (s->height - r.h) / 2;
  }
  return r;
}

/* Half-pixel source position of output i (resize n_in -> n_out): index pair and weight. */
static void ref_coord(int i, int n_in, int n_out, int *a, int *b, double *w) {
  double f = (i + 0.5) * n_in / (double)n_out - 0.5;
  if (f < 0) f = 0;
  *a = (int)floor(f);
  if (*a >= n_in - 1) {
    *a = *b = n_in - 1;
    *w = 0;
  } else {
    *b = *a + 1;
    *w = f - *a;
  }
}

/* Expected value of output channel c at model pixel (x, y). */
static double ref_value(const ri_image *img, const ri_preprocess_spec *s, rect r, int x, int y, int c) {
  double v;
  if (x < r.x || x >= r.x + r.w || y < r.y || y >= r.y + r.h) {
    v = s->pad[c];
  } else {
    int sc = s->order == RI_CHANNEL_ORDER_BGR ? 2 - c : c;
    int x0, x1, y0, y1;
    double ax, ay;
    ref_coord(x - r.x, img->width, r.w, &x0, &x1, &ax);
    ref_coord(y - r.y, img->height, r.h, &y0, &y1, &ay);
#define PX(xx, yy) ((double)img->data[(size_t)(yy)*img->stride + (size_t)(xx)*3 + (size_t)sc])
    double top = PX(x0, y0) * (1 - ax) + PX(x1, y0) * ax;
    double bot = PX(x0, y1) * (1 - ax) + PX(x1, y1) * ax;
#undef PX
    v = top * (1 - ay) + bot * ay;
  }
  return (v - s->mean[c]) * s->scale[c];
}

static ri_image *random_image(int w, int h, int extra_stride, int smooth) {
  ri_image *img = malloc(sizeof *img);
  img->width = w;
  img->height = h;
  img->channels = 3;
  img->stride = (size_t)w * 3 + (size_t)extra_stride;
  img->data = malloc(img->stride * h);
  for (size_t i = 0; i < img->stride * h; i++)
    img->data[i] = (uint8_t)rnd();
  if (smooth)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w * 3; x++)
        img->data[y * img->stride + x] = (uint8_t)((x * 7 + y * 3) & 0xFF);
  return img;
}

static void free_image(ri_image *img) {
  free(img->data);
  free(img);
}

/* Run ri_preprocess with the given kernel set and compare every output element with the reference. */
static void compare_isa(const ri_image *img, const ri_preprocess_spec *s, const char *what0,
                        ri__resize_isa isa) {
  char what[200];
  snprintf(what, sizeof what, "%s [%s]", what0, isa == RI__RESIZE_PORTABLE ? "portable" : "auto");
  size_t bytes = ri_preprocess_output_bytes(s);
  CHECK(bytes == (size_t)s->width * s->height * 3 * (s->dtype == RI_DTYPE_FLOAT32 ? 4 : 1));
  void *dst = malloc(bytes + 4);
  memset(dst, 0xCD, bytes + 4);
  ri_image_transform tr;
  ri_vision_error e;
  ri_status st = ri__preprocess_isa(img, s, dst, &tr, &e, isa);
  CHECK_MSG(st == RI_OK, "%s: %s", what, e.msg);
  if (st != RI_OK) {
    free(dst);
    return;
  }
  CHECK(((unsigned char *)dst)[bytes] == 0xCD); /* nothing written past the end */
  rect r = ref_region(img->width, img->height, s);
  CHECK_MSG(tr.offset_x == r.x && tr.offset_y == r.y && fabs(tr.scale_x - (double)r.w / img->width) < 1e-12 &&
                fabs(tr.scale_y - (double)r.h / img->height) < 1e-12,
            "%s: transform", what);
  double max_err = 0;
  int u8_off = 0;
  for (int y = 0; y < s->height; y++)
    for (int x = 0; x < s->width; x++)
      for (int c = 0; c < 3; c++) {
        size_t idx = s->layout == RI_LAYOUT_NCHW ? ((size_t)c * s->height + y) * s->width + x
                                                 : ((size_t)y * s->width + x) * 3 + c;
        double want = ref_value(img, s, r, x, y, c);
        if (s->dtype == RI_DTYPE_FLOAT32) {
          double got = ((float *)dst)[idx];
          double err = fabs(got - want) / fmax(1.0, fabs(s->scale[c]));
          if (err > max_err) max_err = err;
        } else {
          double clamped = want < 0 ? 0 : want > 255 ? 255 : want;
          int got = ((uint8_t *)dst)[idx];
          double err = fabs(got - clamped);
          if (err > max_err) max_err = err;
          /* Away from rounding ties (where float and double may fall either side) the value must be the
           * nearest integer. */
          double frac = clamped - floor(clamped);
          if (fabs(frac - 0.5) > 1e-3 && got != (int)floor(clamped + 0.5)) u8_off++;
        }
      }
  if (s->dtype == RI_DTYPE_FLOAT32)
    CHECK_MSG(max_err < 2e-4, "%s: max error %g", what, max_err);
  else
    CHECK_MSG(max_err <= 0.5 + 1e-3 && u8_off == 0, "%s: max error %g, %d off by one", what, max_err, u8_off);
  free(dst);
}

/* Both kernel sets (they are the same when the CPU has no AVX2). */
static void compare(const ri_image *img, const ri_preprocess_spec *s, const char *what) {
  compare_isa(img, s, what, RI__RESIZE_AUTO);
  compare_isa(img, s, what, RI__RESIZE_PORTABLE);
}

static void test_known_values(void) {
  /* 2x1 image [0, 255] (grey) stretched to 4x1: half-pixel centres give 0, 63.75, 191.25, 255. */
  uint8_t px[6] = {0, 0, 0, 255, 255, 255};
  ri_image img = {2, 1, 3, 6, px};
  ri_preprocess_spec s;
  ri_preprocess_spec_default(&s);
  s.width = 4;
  s.height = 1;
  float out[12];
  CHECK(ri_preprocess(&img, &s, out, NULL, NULL) == RI_OK);
  CHECK(out[0] == 0.0f && out[3] == 63.75f && out[6] == 191.25f && out[9] == 255.0f);
  s.dtype = RI_DTYPE_UINT8;
  uint8_t o8[12];
  CHECK(ri_preprocess(&img, &s, o8, NULL, NULL) == RI_OK);
  CHECK(o8[0] == 0 && o8[3] == 64 && o8[6] == 191 && o8[9] == 255);
  /* Shrinking 4 -> 2 averages pairs (source positions 0.5 and 2.5). */
  uint8_t px4[12] = {10, 10, 10, 20, 20, 20, 100, 100, 100, 200, 200, 200};
  ri_image img4 = {4, 1, 3, 12, px4};
  s.width = 2;
  s.dtype = RI_DTYPE_FLOAT32;
  CHECK(ri_preprocess(&img4, &s, out, NULL, NULL) == RI_OK);
  CHECK(out[0] == 15.0f && out[3] == 150.0f);
  /* Channel order and normalisation: BGR with (x - 127.5) / 127.5 on a single pixel. */
  uint8_t one[3] = {255, 0, 51};
  ri_image img1 = {1, 1, 3, 3, one};
  s.width = s.height = 1;
  s.order = RI_CHANNEL_ORDER_BGR;
  CHECK(ri_preprocess_spec_set_range(&s, -1.0f, 1.0f, NULL) == RI_OK);
  CHECK(ri_preprocess(&img1, &s, out, NULL, NULL) == RI_OK);
  CHECK(fabsf(out[0] - (51 / 127.5f - 1)) < 1e-6f && fabsf(out[1] + 1) < 1e-6f && fabsf(out[2] - 1) < 1e-6f);
}

static void test_against_reference(void) {
  struct {
    int sw, sh, extra;
  } srcs[] = {{1, 1, 0},     {2, 3, 1},     {7, 5, 0},     {37, 23, 5},
              {300, 200, 0}, {301, 301, 0}, {640, 480, 3}, {50, 400, 0}};
  struct {
    int w, h;
  } dsts[] = {{300, 300}, {13, 17}, {64, 64}, {1, 1}, {320, 192}, {8, 3}, {9, 4}, {10, 5}, {17, 2}, {26, 7}};
  int n = 0;
  for (size_t a = 0; a < sizeof srcs / sizeof srcs[0]; a++) {
    ri_image *img = random_image(srcs[a].sw, srcs[a].sh, srcs[a].extra, a == 4);
    for (size_t b = 0; b < sizeof dsts / sizeof dsts[0]; b++) {
      for (int variant = 0; variant < 4; variant++) {
        ri_preprocess_spec s;
        ri_preprocess_spec_default(&s);
        s.width = dsts[b].w;
        s.height = dsts[b].h;
        s.layout = (variant & 1) ? RI_LAYOUT_NCHW : RI_LAYOUT_NHWC;
        s.resize = (variant & 2) ? RI_RESIZE_LETTERBOX : RI_RESIZE_BILINEAR;
        s.order = (n % 3 == 0) ? RI_CHANNEL_ORDER_BGR : RI_CHANNEL_ORDER_RGB;
        s.dtype = (n % 4 == 1) ? RI_DTYPE_UINT8 : RI_DTYPE_FLOAT32;
        if (s.dtype == RI_DTYPE_FLOAT32 && n % 2 == 0) {
          float m[3] = {123.675f, 116.28f, 103.53f}, sc[3] = {1 / 58.395f, 1 / 57.12f, 1 / 57.375f};
          memcpy(s.mean, m, sizeof m);
          memcpy(s.scale, sc, sizeof sc);
        }
        for (int c = 0; c < 3; c++)
          s.pad[c] = (float)(114 + c);
        char what[128];
        snprintf(what, sizeof what, "%dx%d -> %dx%d %s %s %s %s", srcs[a].sw, srcs[a].sh, dsts[b].w,
                 dsts[b].h, s.layout ? "nchw" : "nhwc", s.resize ? "letterbox" : "stretch",
                 s.order ? "bgr" : "rgb", s.dtype == RI_DTYPE_UINT8 ? "u8" : "f32");
        compare(img, &s, what);
        n++;
      }
    }
    /* Same size: an exact copy. */
    ri_preprocess_spec s;
    ri_preprocess_spec_default(&s);
    s.width = srcs[a].sw;
    s.height = srcs[a].sh;
    float *dst = malloc(sizeof(float) * 3 * s.width * s.height);
    CHECK(ri_preprocess(img, &s, dst, NULL, NULL) == RI_OK);
    int same = 1;
    for (int y = 0; y < s.height; y++)
      for (int x = 0; x < s.width * 3; x++)
        if (dst[(size_t)y * s.width * 3 + x] != img->data[(size_t)y * img->stride + x]) same = 0;
    CHECK_MSG(same, "identity %dx%d", s.width, s.height);
    free(dst);
    free_image(img);
  }
}

static void test_letterbox_geometry(void) {
  ri_preprocess_spec s;
  ri_preprocess_spec_default(&s);
  s.resize = RI_RESIZE_LETTERBOX;
  ri_image_transform t;
  CHECK(ri_preprocess_transform(640, 480, &s, &t, NULL) == RI_OK);
  CHECK(t.offset_x == 0 && t.offset_y == 37 && fabs(t.scale_x - 300.0 / 640) < 1e-12 &&
        fabs(t.scale_y - 225.0 / 480) < 1e-12);
  float box[4] = {37.0f / 300, 0.0f, 262.0f / 300, 1.0f};
  ri_image_transform_box(&t, box);
  CHECK_MSG(fabsf(box[0]) < 1e-3f && fabsf(box[1]) < 1e-3f && fabsf(box[2] - 480) < 1e-2f &&
                fabsf(box[3] - 640) < 1e-2f,
            "%g %g %g %g", box[0], box[1], box[2], box[3]);
  /* Boxes in the padding are clipped to the image. */
  float pad_box[4] = {0.0f, 0.1f, 0.05f, 0.2f};
  ri_image_transform_box(&t, pad_box);
  CHECK(pad_box[0] == 0.0f && pad_box[2] == 0.0f);
  /* Tall image: horizontal padding. */
  CHECK(ri_preprocess_transform(100, 400, &s, &t, NULL) == RI_OK);
  CHECK(t.offset_y == 0 && t.offset_x == 112 && fabs(t.scale_x - 75.0 / 100) < 1e-12);
  /* Stretch: offsets 0, independent scales; box maps by plain scaling. */
  s.resize = RI_RESIZE_BILINEAR;
  CHECK(ri_preprocess_transform(640, 480, &s, &t, NULL) == RI_OK);
  float b2[4] = {0.5f, 0.25f, 1.0f, 0.75f};
  ri_image_transform_box(&t, b2);
  CHECK(fabsf(b2[0] - 240) < 1e-3f && fabsf(b2[1] - 160) < 1e-3f && fabsf(b2[2] - 480) < 1e-3f &&
        fabsf(b2[3] - 480) < 1e-3f);
}

/* A transform computed on a half-size decode, re-expressed for the full image, equals the one computed on
 * the full image when both give the same region. */
static void test_transform_set_source(void) {
  ri_preprocess_spec s;
  ri_preprocess_spec_default(&s);
  for (int lb = 0; lb < 2; lb++) {
    s.resize = lb ? RI_RESIZE_LETTERBOX : RI_RESIZE_BILINEAR;
    ri_image_transform half, full;
    CHECK(ri_preprocess_transform(320, 240, &s, &half, NULL) == RI_OK);
    CHECK(ri_preprocess_transform(640, 480, &s, &full, NULL) == RI_OK);
    ri_image_transform_set_source(&half, 640, 480);
    CHECK(half.src_width == 640 && half.src_height == 480 && half.dst_width == 300 && half.dst_height == 300);
    CHECK_MSG(fabs(half.scale_x - full.scale_x) < 1e-12 && fabs(half.scale_y - full.scale_y) < 1e-12 &&
                  half.offset_x == full.offset_x && half.offset_y == full.offset_y,
              "%s: scale %g,%g offset %g,%g vs %g,%g %g,%g", lb ? "letterbox" : "stretch", half.scale_x,
              half.scale_y, half.offset_x, half.offset_y, full.scale_x, full.scale_y, full.offset_x,
              full.offset_y);
    float box[4] = {0.25f, 0.5f, 0.75f, 1.0f}, box2[4] = {0.25f, 0.5f, 0.75f, 1.0f};
    ri_image_transform_box(&half, box);
    ri_image_transform_box(&full, box2);
    for (int i = 0; i < 4; i++)
      CHECK(fabsf(box[i] - box2[i]) < 1e-3f);
  }
  /* Odd sizes: the scale changes by the ratio of the sizes. */
  ri_image_transform t;
  CHECK(ri_preprocess_transform(17, 13, &s, &t, NULL) == RI_OK);
  double sx = t.scale_x, sy = t.scale_y;
  ri_image_transform_set_source(&t, 65, 49);
  CHECK(fabs(t.scale_x - sx * 17 / 65) < 1e-12 && fabs(t.scale_y - sy * 13 / 49) < 1e-12);
  /* Invalid sizes and NULL change nothing. */
  ri_image_transform before = t;
  ri_image_transform_set_source(&t, 0, 49);
  CHECK(memcmp(&t, &before, sizeof t) == 0);
  ri_image_transform_set_source(NULL, 10, 10);
}

static void test_errors(void) {
  ri_preprocess_spec s;
  ri_preprocess_spec_default(&s);
  s.width = s.height = 8;
  uint8_t px[12] = {0};
  ri_image img = {2, 2, 3, 6, px};
  float out[8 * 8 * 3 + 1];
  ri_vision_error e;
  CHECK(ri_preprocess(NULL, &s, out, NULL, &e) == RI_ERR_INVALID_ARG);
  CHECK(ri_preprocess(&img, &s, NULL, NULL, &e) == RI_ERR_INVALID_ARG);
  CHECK(ri_preprocess(&img, &s, (char *)out + 1, NULL, &e) == RI_ERR_INVALID_ARG && strstr(e.msg, "aligned"));
  ri_image bad = {2, 2, 4, 6, px};
  CHECK(ri_preprocess(&bad, &s, out, NULL, &e) == RI_ERR_INVALID_ARG && strstr(e.msg, "4 channels"));
  ri_image bad2 = {2, 2, 3, 5, px};
  CHECK(ri_preprocess(&bad2, &s, out, NULL, &e) == RI_ERR_INVALID_ARG && strstr(e.msg, "stride 5"));
  s.dtype = RI_DTYPE_INT8;
  CHECK(ri_preprocess(&img, &s, out, NULL, &e) == RI_ERR_INVALID_ARG && strstr(e.msg, "dtype"));
  CHECK(ri_preprocess_output_bytes(&s) == 0);
  s.dtype = RI_DTYPE_FLOAT32;
  s.mean[1] = NAN;
  CHECK(ri_preprocess_spec_validate(&s, &e) == RI_ERR_INVALID_ARG && strstr(e.msg, "channel 1"));
  s.mean[1] = 0;
  CHECK(ri_preprocess_spec_validate(&s, &e) == RI_OK && e.status == RI_OK && e.msg[0] == 0);
  CHECK(ri_preprocess_spec_set_range(&s, 1, 1, &e) == RI_ERR_INVALID_ARG);
  /* Allocation failure: a status and no leak. */
  long live = ri__alloc_live();
  ri__alloc_fail_after(1);
  CHECK(ri_preprocess(&img, &s, out, NULL, &e) == RI_ERR_NO_MEMORY);
  ri__alloc_fail_after(0);
  CHECK(ri__alloc_live() == live);
}

int main(void) {
  long live0 = ri__alloc_live();
  printf("resize kernels: %s\n", ri__resize_have_avx2() ? "AVX2+FMA and portable" : "portable only");
  test_spec_text();
  test_known_values();
  test_against_reference();
  test_letterbox_geometry();
  test_transform_set_source();
  test_errors();
  CHECK(ri__alloc_live() == live0);
  return test_done("test_vision_preprocess");
}
