/* Planar JPEG preprocessing (ri_decoder_load_* + ri_decoder_preprocess_loaded).
 *
 * 1. Against an independent double-precision reference computed here the long way from the JPEG's planes
 *    (decoded by the test itself with tjDecompressToYUVPlanes): chroma upsampled to full resolution by
 *    linear interpolation with centred siting, converted with the JFIF equations, turned upright, resized
 *    with ri_preprocess's half-pixel bilinear formula, clamped, normalised. The library never builds the
 *    full-resolution image, so agreement checks its tap composition, orientation flips and transposition,
 *    chroma siting, letterbox and every store variant. Both kernel sets; 4:4:4, 4:2:2, 4:2:0, 4:4:0, gray,
 *    progressive, odd sizes, all 8 EXIF orientations, shrinking and enlarging, the scale hint.
 * 2. Against the RGB path (ri_decoder_decode_memory + ri_preprocess), element by element: the difference
 *    must be explained by the two documented causes, libjpeg's 8-bit rounding (at most 0.5 for the output
 *    plus 0.5 of chroma times the largest coefficient 1.772: 1.386 levels) and clamping to 0..255 after
 *    instead of before the interpolation (the reference computed both ways bounds that term per element);
 *    the mean difference must stay under half a level.
 * 3. Inputs that go the RGB way (PNG, 4:1:1, CMYK, RGB-coded JPEG), ri_decoder_set_jpeg_ycbcr(0) and
 *    RI_JPEG_YCBCR=0 give exactly ri_preprocess's bytes; errors name the source; allocation failures leak
 *    nothing. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <spng.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "core/alloc.h"
#include "runinfer/vision.h"
#include "test.h"
#include "test_images.h"
#include "vision/decoder.h"

static uint64_t g_rng = 0x243F6A8885A308D3ull;
static uint32_t rnd(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (uint32_t)(g_rng >> 11);
}

/* A w x h RGB picture: smooth colour fields with a few sharp, saturated edges (where the clamping order
 * matters) and some grain. */
static uint8_t *make_picture(int w, int h) {
  uint8_t *p = malloc((size_t)w * h * 3);
  double f[3][3];
  for (int c = 0; c < 3; c++)
    for (int k = 0; k < 3; k++)
      f[c][k] = (double)(rnd() % 1000) / 1000.0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        double v = 128 + 100 * sin(6.0 * f[c][0] * x / w + 5.0 * f[c][1] * y / h + 6.3 * f[c][2]);
        if ((x / 7 + y / 5) % 9 == 0) v = c == 0 ? 255 : c == 1 ? 0 : 40; /* saturated red patches */
        v += (double)(rnd() % 9) - 4;
        p[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
  return p;
}

static blob png_encode(const uint8_t *rgb, int w, int h) {
  blob b = {0};
  spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  struct spng_ihdr ihdr = {(uint32_t)w, (uint32_t)h, 8, SPNG_COLOR_TYPE_TRUECOLOR, 0, 0, 0};
  spng_set_ihdr(ctx, &ihdr);
  if (spng_encode_image(ctx, rgb, (size_t)w * h * 3, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE) == 0) {
    int e = 0;
    b.data = spng_get_png_buffer(ctx, &b.size, &e);
  }
  spng_ctx_free(ctx);
  return b;
}

/* The JPEG with an APP1 Exif segment (big-endian TIFF, IFD0 holding only Orientation) after SOI. */
static blob with_orientation(const blob *jpg, int orientation) {
  static const unsigned char head[] = {0xFF, 0xE1, 0, 34, 'E', 'x', 'i', 'f',  0, 0, 'M', 'M', 0, 42,
                                       0,    0,    0, 8,  0,   1,   1,   0x12, 0, 3, 0,   0,   0, 1};
  const unsigned char tail[] = {0, (unsigned char)orientation, 0, 0, 0, 0, 0, 0};
  blob b = {malloc(jpg->size + sizeof head + sizeof tail), jpg->size + sizeof head + sizeof tail};
  memcpy(b.data, jpg->data, 2);
  memcpy(b.data + 2, head, sizeof head);
  memcpy(b.data + 2 + sizeof head, tail, sizeof tail);
  memcpy(b.data + 2 + sizeof head + sizeof tail, jpg->data + 2, jpg->size - 2);
  return b;
}

/* ---- the reference ---------------------------------------------------------------------------------- */

/* Upright RGB at full resolution (doubles), from the JPEG's planes decoded at 1/denom, with the clamp to
 * 0..255 per pixel (clamp_first) or not. Returns NULL when TurboJPEG fails. */
static double *reference_rgb(const blob *b, int denom, int orientation, int clamp_first, int *ow, int *oh) {
  tjhandle tj = tjInitDecompress();
  int w, h, ss, cs;
  double *out = NULL;
  if (tjDecompressHeader3(tj, b->data, b->size, &w, &h, &ss, &cs) != 0) goto done;
  w = (w + denom - 1) / denom;
  h = (h + denom - 1) / denom;
  int n = ss == TJSAMP_GRAY ? 1 : 3, pw[3], ph[3];
  unsigned char *pl[3] = {NULL, NULL, NULL};
  for (int i = 0; i < n; i++) {
    pw[i] = tjPlaneWidth(i, w, ss);
    ph[i] = tjPlaneHeight(i, h, ss);
    pl[i] = malloc((size_t)pw[i] * ph[i]);
  }
  int ok = tjDecompressToYUVPlanes(tj, b->data, b->size, pl, w, pw, h, 0) == 0;
  const int hf = tjMCUWidth[ss] / 8, vf = tjMCUHeight[ss] / 8, sw = orientation >= 5;
  *ow = sw ? h : w;
  *oh = sw ? w : h;
  if (ok) out = malloc(sizeof(double) * (size_t)w * h * 3);
  for (int y = 0; ok && y < h; y++)
    for (int x = 0; x < w; x++) {
      double Y = pl[0][(size_t)y * pw[0] + x], cb = 128, cr = 128;
      if (n == 3) {
        double cy = (y + 0.5) / vf - 0.5, cx = (x + 0.5) / hf - 0.5;
        cy = cy < 0 ? 0 : cy > ph[1] - 1 ? ph[1] - 1 : cy;
        cx = cx < 0 ? 0 : cx > pw[1] - 1 ? pw[1] - 1 : cx;
        int y0 = (int)cy, x0 = (int)cx, y1 = y0 + 1 < ph[1] ? y0 + 1 : y0, x1 = x0 + 1 < pw[1] ? x0 + 1 : x0;
        double wy = cy - y0, wx = cx - x0, v[2];
        for (int k = 1; k <= 2; k++) {
          const unsigned char *q = pl[k];
          double t = q[(size_t)y0 * pw[1] + x0] * (1 - wx) + q[(size_t)y0 * pw[1] + x1] * wx;
          double u = q[(size_t)y1 * pw[1] + x0] * (1 - wx) + q[(size_t)y1 * pw[1] + x1] * wx;
          v[k - 1] = t * (1 - wy) + u * wy;
        }
        cb = v[0];
        cr = v[1];
      }
      double rgb[3] = {Y + 1.402 * (cr - 128), Y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                       Y + 1.772 * (cb - 128)};
      /* Upright position of stored pixel (x, y): the inverse of EXIF orientation o. */
      int ux = x, uy = y;
      if (sw) ux = y, uy = x;
      if (orientation == 2 || orientation == 3 || orientation == 6 || orientation == 7) ux = *ow - 1 - ux;
      if (orientation == 3 || orientation == 4 || orientation == 7 || orientation == 8) uy = *oh - 1 - uy;
      for (int c = 0; c < 3; c++) {
        double v = rgb[c];
        if (clamp_first) v = v < 0 ? 0 : v > 255 ? 255 : v;
        out[((size_t)uy * *ow + ux) * 3 + c] = v;
      }
    }
  for (int i = 0; i < n; i++)
    free(pl[i]);
done:
  tjDestroy(tj);
  return out;
}

typedef struct {
  int x, y, w, h;
} rect;

static rect region_of(int sw, int sh, const ri_preprocess_spec *s) {
  rect r = {0, 0, s->width, s->height};
  if (s->resize != RI_RESIZE_LETTERBOX) return r;
  long W = s->width, H = s->height;
  if (W * sh <= H * sw) {
    long v = (2L * sh * W + sw) / (2L * sw);
    r.h = (int)(v < 1 ? 1 : v > H ? H : v);
  } else {
    long v = (2L * sw * H + sh) / (2L * sh);
    r.w = (int)(v < 1 ? 1 : v > W ? W : v);
  }
  r.x = (s->width - r.w) / 2;
  r.y = (s->height - r.h) / 2;
  return r;
}

static void src_pos(int i, int n_in, int n_out, int *a, int *b, double *w) {
  double f = (i + 0.5) * ((double)n_in / n_out) - 0.5;
  if (f < 0) f = 0;
  *a = (int)f;
  *w = f - *a;
  if (*a >= n_in - 1) *a = n_in - 1, *w = 0;
  *b = *a + 1 < n_in ? *a + 1 : *a;
}

/* The model input the spec makes of an upright RGB image (doubles in output units, before the dtype
 * conversion), in the spec's layout. */
static double *reference_input(const double *rgb, int W, int H, const ri_preprocess_spec *s) {
  size_t n = (size_t)s->width * s->height;
  double *out = malloc(sizeof(double) * n * 3);
  rect r = region_of(W, H, s);
  for (int y = 0; y < s->height; y++)
    for (int x = 0; x < s->width; x++) {
      double v[3];
      int inside = x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h;
      int y0, y1, x0, x1;
      double wy = 0, wx = 0;
      if (inside) {
        src_pos(y - r.y, H, r.h, &y0, &y1, &wy);
        src_pos(x - r.x, W, r.w, &x0, &x1, &wx);
      }
      for (int c = 0; c < 3; c++) {
        int sc = s->order == RI_CHANNEL_ORDER_BGR ? 2 - c : c;
        double p = s->pad[c];
        if (inside) {
#define AT(yy, xx) rgb[((size_t)(yy)*W + (xx)) * 3 + sc]
          double t = AT(y0, x0) * (1 - wx) + AT(y0, x1) * wx, u = AT(y1, x0) * (1 - wx) + AT(y1, x1) * wx;
#undef AT
          p = t * (1 - wy) + u * wy;
          p = p < 0 ? 0 : p > 255 ? 255 : p;
        }
        v[c] = (p - s->mean[c]) * s->scale[c];
      }
      for (int c = 0; c < 3; c++)
        out[s->layout == RI_LAYOUT_NCHW ? (size_t)c * n + (size_t)y * s->width + x
                                        : ((size_t)y * s->width + x) * 3 + c] = v[c];
    }
  return out;
}

static double elem(const void *buf, const ri_preprocess_spec *s, size_t i) {
  return s->dtype == RI_DTYPE_FLOAT32 ? ((const float *)buf)[i] : ((const uint8_t *)buf)[i];
}

/* ---- cases ------------------------------------------------------------------------------------------- */

typedef struct {
  const char *what;
  int w, h, subsamp, progressive, orientation, hint_w, hint_h;
  const char *spec;
} jcase;

static ri_decoder_t *g_dec;

static void run_case(const jcase *k) {
  uint8_t *pix = make_picture(k->w, k->h);
  int gray = k->subsamp == TJSAMP_GRAY;
  blob jpg0 = jpeg_encode(pix, k->w, k->h, TJPF_RGB, k->subsamp, 92, k->progressive ? TJFLAG_PROGRESSIVE : 0);
  blob jpg = k->orientation > 1 ? with_orientation(&jpg0, k->orientation) : jpg0;
  ri_preprocess_spec s;
  ri_vision_error ve;
  CHECK_MSG(ri_preprocess_spec_parse(k->spec, &s, &ve) == RI_OK, "%s: %s", k->what, ve.msg);
  const size_t bytes = ri_preprocess_output_bytes(&s), n = bytes / (s.dtype == RI_DTYPE_FLOAT32 ? 4 : 1);
  void *out[2] = {aligned_alloc(64, (bytes + 63) / 64 * 64), aligned_alloc(64, (bytes + 63) / 64 * 64)};
  void *rgbp = aligned_alloc(64, (bytes + 63) / 64 * 64);
  CHECK(ri_decoder_set_scale_hint(g_dec, k->hint_w, k->hint_h) == RI_OK);
  CHECK_MSG(ri_decoder_load_memory(g_dec, jpg.data, jpg.size, k->what) == RI_OK, "%s: %s", k->what,
            ri_decoder_last_error(g_dec));
  CHECK_MSG(g_dec->loaded == RI__LOADED_YCC, "%s: not decoded to planes", k->what);
  int fw = 0, fh = 0;
  ri_decoder_last_full_size(g_dec, &fw, &fh);
  int swap = k->orientation >= 5;
  CHECK_MSG(fw == (swap ? k->h : k->w) && fh == (swap ? k->w : k->h), "%s: full size %dx%d", k->what, fw, fh);
  ri_image_transform tf[2];
  for (int isa = 0; isa < 2; isa++)
    CHECK_MSG(ri__decoder_preprocess_loaded_isa(g_dec, &s, out[isa], &tf[isa],
                                                isa ? RI__RESIZE_PORTABLE : RI__RESIZE_AUTO) == RI_OK,
              "%s: %s", k->what, ri_decoder_last_error(g_dec));
  /* The RGB path with the same decoder settings, and its transform. */
  ri_image *img = NULL;
  ri_image_transform tr;
  CHECK(ri_decoder_decode_memory(g_dec, jpg.data, jpg.size, k->what, &img) == RI_OK);
  CHECK(img && ri_preprocess(img, &s, rgbp, &tr, &ve) == RI_OK);
  ri_image_transform_set_source(&tr, fw, fh);
  CHECK_MSG(memcmp(&tr, &tf[0], sizeof tr) == 0 && memcmp(&tr, &tf[1], sizeof tr) == 0,
            "%s: transform differs from the RGB path's", k->what);

  int denom = 1;
  if (img && (img->width != fw)) denom = (fw + img->width - 1) / img->width;
  int W = 0, H = 0, W2 = 0, H2 = 0;
  double *late = reference_rgb(&jpg, denom, k->orientation, 0, &W, &H);
  double *early = reference_rgb(&jpg, denom, k->orientation, 1, &W2, &H2);
  CHECK(late && early && img && W == img->width && H == img->height);
  if (late && early && img && W == img->width && H == img->height) {
    double *ref = reference_input(late, W, H, &s), *ref_early = reference_input(early, W, H, &s);
    const double unit = fabs(s.scale[0]) > fabs(s.scale[2]) ? fabs(s.scale[0]) : fabs(s.scale[2]);
    double worst_ref[2] = {0, 0}, worst_rgb = 0, sum_rgb = 0;
    size_t bad_rgb = 0;
    for (size_t i = 0; i < n; i++) {
      for (int isa = 0; isa < 2; isa++) {
        double d = fabs(elem(out[isa], &s, i) - ref[i]);
        if (s.dtype == RI_DTYPE_UINT8) { /* rounded half up; a value this close to a tie may go either way */
          double want = floor(ref[i] + 0.5), frac = ref[i] - floor(ref[i]);
          want = want < 0 ? 0 : want > 255 ? 255 : want;
          d = fabs(elem(out[isa], &s, i) - want);
          if (fabs(frac - 0.5) < 1e-3 && d <= 1) d = 0;
        }
        worst_ref[isa] = d > worst_ref[isa] ? d : worst_ref[isa];
      }
      /* Against the RGB path: rounding (1.386 levels; plus 1 for uint8 outputs) plus the clamping term. */
      const int ch = s.layout == RI_LAYOUT_NCHW ? (int)(i / ((size_t)s.width * s.height)) : (int)(i % 3);
      const double cu = fabs(s.scale[ch]);
      double d = fabs(elem(out[0], &s, i) - elem(rgbp, &s, i));
      double bound = gray ? 1e-3 * (cu > 1 ? cu : 1) : 1.39 * cu + fabs(ref[i] - ref_early[i]) + 1e-3;
      if (s.dtype == RI_DTYPE_UINT8) bound = floor(bound) + 1;
      bad_rgb += d > bound;
      worst_rgb = d > worst_rgb ? d : worst_rgb;
      sum_rgb += d;
    }
    const double tol_ref = s.dtype == RI_DTYPE_UINT8 ? 0 : 2e-3 * (unit > 1 ? unit : 1);
    CHECK_MSG(worst_ref[0] <= tol_ref && worst_ref[1] <= tol_ref,
              "%s: vs reference %g (AVX2/auto), %g (portable)", k->what, worst_ref[0], worst_ref[1]);
    CHECK_MSG(bad_rgb == 0,
              "%s: %zu of %zu elements differ from the RGB path by more than rounding and clamping", k->what,
              bad_rgb, n);
    CHECK_MSG(sum_rgb / n <= 0.5 * unit + (s.dtype == RI_DTYPE_UINT8 ? 0.5 : 0), "%s: mean difference %g",
              k->what, sum_rgb / n);
    if (getenv("RI_TEST_VERBOSE"))
      printf("%-34s ref %.2g/%.2g rgb max %.3g mean %.3g\n", k->what, worst_ref[0], worst_ref[1], worst_rgb,
             sum_rgb / n);
    free(ref);
    free(ref_early);
  }
  free(late);
  free(early);
  ri_image_free(img);
  CHECK(ri_decoder_set_scale_hint(g_dec, 0, 0) == RI_OK);
  free(out[0]);
  free(out[1]);
  free(rgbp);
  if (jpg.data != jpg0.data) free(jpg.data);
  free(jpg0.data);
  free(pix);
}

static void test_against_reference(void) {
  static const char *const f32 = "size=57x41;layout=nchw;dtype=float32;range=-1,1";
  const jcase cases[] = {
      {"420 640x480 -> 300x300 nchw", 640, 480, TJSAMP_420, 0, 1, 0, 0,
       "size=300x300;layout=nchw;dtype=float32;range=-1,1"},
      {"420 progressive 320x240 nhwc u8", 320, 240, TJSAMP_420, 1, 1, 0, 0,
       "size=224x160;layout=nhwc;dtype=uint8"},
      {"422 odd 101x77 nhwc f32", 101, 77, TJSAMP_422, 0, 1, 0, 0,
       "size=45x61;layout=nhwc;dtype=float32;mean=10,20,30;scale=0.5,0.25,2"},
      {"444 99x67 nchw u8 bgr", 99, 67, TJSAMP_444, 0, 1, 0, 0,
       "size=40x40;layout=nchw;dtype=uint8;order=bgr"},
      {"440 75x93 letterbox", 75, 93, TJSAMP_440, 0, 1, 0, 0,
       "size=64x48;layout=nhwc;dtype=float32;resize=letterbox;pad=10,200,30"},
      {"gray 83x61", 83, 61, TJSAMP_GRAY, 0, 1, 0, 0, f32},
      {"420 odd 33x17 enlarged", 33, 17, TJSAMP_420, 0, 1, 0, 0, "size=97x61;layout=nhwc;dtype=float32"},
      {"420 1x1", 1, 1, TJSAMP_420, 0, 1, 0, 0, "size=5x3;layout=nchw;dtype=float32"},
      {"420 3x2 one chroma column", 3, 2, TJSAMP_420, 0, 1, 0, 0, "size=4x4;layout=nhwc;dtype=uint8"},
      {"420 same size", 96, 64, TJSAMP_420, 0, 1, 0, 0, "size=96x64;layout=nhwc;dtype=float32"},
      {"420 letterbox u8 nchw", 120, 45, TJSAMP_420, 0, 1, 0, 0,
       "size=64x64;layout=nchw;dtype=uint8;resize=letterbox;pad=0,128,255"},
      {"420 scale hint, no reduction", 160, 120, TJSAMP_420, 0, 1, 100, 61,
       "size=60x40;layout=nchw;dtype=float32"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    run_case(&cases[i]);
  /* Every EXIF orientation with odd sizes (a mirrored odd axis moves the chroma siting) and two
   * subsamplings, stretched and letterboxed. */
  static const int subs[2] = {TJSAMP_420, TJSAMP_422};
  char what[64];
  for (int o = 1; o <= 8; o++)
    for (int k = 0; k < 2; k++) {
      snprintf(what, sizeof what, "exif %d %s 37x23", o, k ? "422 letterbox" : "420");
      jcase c = {what,    37, 23,
                 subs[k], 0,  o,
                 0,       0,  k ? "size=30x30;layout=nhwc;dtype=float32;resize=letterbox;pad=5,5,5" : f32};
      run_case(&c);
    }
}

/* ---- paths that must equal ri_preprocess exactly ------------------------------------------------------ */

static void expect_rgb_path(ri_decoder_t *d, const blob *b, const char *what) {
  ri_preprocess_spec s;
  ri_vision_error ve;
  CHECK(ri_preprocess_spec_parse("size=31x29;layout=nhwc;dtype=float32;range=-1,1", &s, &ve) == RI_OK);
  size_t bytes = ri_preprocess_output_bytes(&s);
  float *a = malloc(bytes), *c = malloc(bytes);
  ri_image *img = NULL;
  ri_image_transform ta, tc;
  int fw = 0, fh = 0;
  CHECK_MSG(ri_decoder_decode_memory(d, b->data, b->size, what, &img) == RI_OK, "%s: %s", what,
            ri_decoder_last_error(d));
  ri_decoder_last_full_size(d, &fw, &fh);
  CHECK(img && ri_preprocess(img, &s, a, &ta, &ve) == RI_OK);
  ri_image_transform_set_source(&ta, fw, fh);
  CHECK(ri_decoder_load_memory(d, b->data, b->size, what) == RI_OK);
  CHECK_MSG(d->loaded == RI__LOADED_RGB, "%s: expected the RGB way", what);
  CHECK(ri_decoder_preprocess_loaded(d, &s, c, &tc) == RI_OK);
  CHECK_MSG(memcmp(a, c, bytes) == 0, "%s: differs from ri_preprocess", what);
  CHECK_MSG(memcmp(&ta, &tc, sizeof ta) == 0 && tc.src_width == fw, "%s: transform", what);
  ri_image_free(img);
  free(a);
  free(c);
}

static void test_rgb_way(void) {
  uint8_t *pix = make_picture(48, 36);
  blob j411 = jpeg_encode(pix, 48, 36, TJPF_RGB, TJSAMP_411, 90, 0);
  expect_rgb_path(g_dec, &j411, "411.jpg");
  uint8_t *cmyk = malloc(48 * 36 * 4);
  for (int i = 0; i < 48 * 36 * 4; i++)
    cmyk[i] = (uint8_t)(pix[i % (48 * 36 * 3)] ^ (i & 3 ? 0 : 0x55));
  blob jc = jpeg_encode(cmyk, 48, 36, TJPF_CMYK, TJSAMP_444, 90, 0);
  expect_rgb_path(g_dec, &jc, "cmyk.jpg");
  blob png = png_encode(pix, 48, 36);
  expect_rgb_path(g_dec, &png, "x.png");
  free(png.data);
  free(j411.data);
  free(jc.data);
  free(cmyk);
  /* The opt-outs: the setter, and the environment variable for decoders created after it is set. A scale
   * hint that reduces the decode also sends a JPEG the RGB way (libjpeg's scaled RGB decode keeps more
   * chroma resolution than its scaled planes); the transform then still refers to the full image. */
  blob j420 = jpeg_encode(pix, 48, 36, TJPF_RGB, TJSAMP_420, 90, 0);
  CHECK(ri_decoder_set_scale_hint(g_dec, 20, 16) == RI_OK);
  expect_rgb_path(g_dec, &j420, "420 reduced by the scale hint");
  blob j6 = with_orientation(&j420, 6); /* upright 36x48 */
  CHECK(ri_decoder_set_scale_hint(g_dec, 16, 20) == RI_OK);
  expect_rgb_path(g_dec, &j6, "420 exif 6 reduced by the scale hint");
  free(j6.data);
  CHECK(ri_decoder_set_scale_hint(g_dec, 0, 0) == RI_OK);
  CHECK(ri_decoder_set_jpeg_ycbcr(g_dec, 0) == RI_OK);
  expect_rgb_path(g_dec, &j420, "420 with ycbcr off");
  CHECK(ri_decoder_set_jpeg_ycbcr(g_dec, 1) == RI_OK);
  CHECK(ri_decoder_load_memory(g_dec, j420.data, j420.size, "420") == RI_OK &&
        g_dec->loaded == RI__LOADED_YCC);
  setenv("RI_JPEG_YCBCR", "0", 1);
  ri_decoder_t *d2 = NULL;
  CHECK(ri_decoder_create(&d2) == RI_OK);
  unsetenv("RI_JPEG_YCBCR");
  if (d2) expect_rgb_path(d2, &j420, "420 under RI_JPEG_YCBCR=0");
  ri_decoder_destroy(d2);
  free(j420.data);
  free(pix);
}

/* ---- errors and allocation failures ----------------------------------------------------------------- */

static void test_errors(void) {
  ri_preprocess_spec s;
  ri_preprocess_spec_default(&s);
  float *dst = malloc(ri_preprocess_output_bytes(&s));
  ri_decoder_t *d = NULL;
  CHECK(ri_decoder_create(&d) == RI_OK);
  CHECK(ri_decoder_preprocess_loaded(d, &s, dst, NULL) == RI_ERR_INVALID_ARG);
  CHECK(strstr(ri_decoder_last_error(d), "no image is loaded") != NULL);
  uint8_t *pix = make_picture(40, 30);
  blob j = jpeg_encode(pix, 40, 30, TJPF_RGB, TJSAMP_420, 90, 0);
  CHECK(ri_decoder_load_memory(d, j.data, j.size, "good.jpg") == RI_OK);
  /* A bad spec names the loaded source. */
  s.width = 0;
  CHECK(ri_decoder_preprocess_loaded(d, &s, dst, NULL) == RI_ERR_INVALID_ARG);
  CHECK(strstr(ri_decoder_last_error(d), "good.jpg") != NULL);
  s.width = 300;
  CHECK(ri_decoder_preprocess_loaded(d, &s, NULL, NULL) == RI_ERR_INVALID_ARG);
  CHECK(ri_decoder_preprocess_loaded(d, &s, (char *)dst + 1, NULL) == RI_ERR_INVALID_ARG);
  CHECK(ri_decoder_preprocess_loaded(d, &s, dst, NULL) == RI_OK);
  /* A JPEG cut in its entropy data fails with the name, and leaves nothing loaded; lenient mode accepts it.
   */
  uint8_t *big = make_picture(320, 240);
  blob jb = jpeg_encode(big, 320, 240, TJPF_RGB, TJSAMP_420, 90, 0);
  free(big);
  CHECK(ri_decoder_load_memory(d, jb.data, jb.size / 2, "cut.jpg") == RI_ERR_PARSE);
  CHECK(strstr(ri_decoder_last_error(d), "cut.jpg") != NULL);
  int fw = -1, fh = -1;
  ri_decoder_last_full_size(d, &fw, &fh);
  CHECK(fw == 0 && fh == 0);
  CHECK(ri_decoder_preprocess_loaded(d, &s, dst, NULL) == RI_ERR_INVALID_ARG);
  CHECK(ri_decoder_set_strict(d, 0) == RI_OK);
  CHECK_MSG(ri_decoder_load_memory(d, jb.data, jb.size / 2, "cut.jpg") == RI_OK &&
                d->loaded == RI__LOADED_YCC,
            "lenient: %s", ri_decoder_last_error(d));
  free(jb.data);
  CHECK(ri_decoder_preprocess_loaded(d, &s, dst, NULL) == RI_OK);
  CHECK(ri_decoder_set_strict(d, 1) == RI_OK);
  /* A decode call discards the loaded image. */
  ri_image *img = NULL;
  CHECK(ri_decoder_decode_memory(d, j.data, j.size, "x.jpg", &img) == RI_OK);
  ri_image_free(img);
  CHECK(ri_decoder_preprocess_loaded(d, &s, dst, NULL) == RI_ERR_INVALID_ARG);
  /* Limits, missing files, garbage. */
  ri_decode_limits lim = {.max_pixels = 100};
  CHECK(ri_decoder_set_limits(d, &lim) == RI_OK);
  CHECK(ri_decoder_load_memory(d, j.data, j.size, "big.jpg") == RI_ERR_LIMIT);
  CHECK(ri_decoder_set_limits(d, NULL) == RI_OK);
  CHECK(ri_decoder_load_file(d, "/nonexistent/dir/x.jpg") == RI_ERR_NOT_FOUND);
  CHECK(strstr(ri_decoder_last_error(d), "/nonexistent/dir/x.jpg") != NULL);
  CHECK(ri_decoder_load_memory(d, "GIF89a......", 12, "anim.gif") == RI_ERR_UNSUPPORTED);
  CHECK(ri_decoder_load_memory(d, NULL, 0, "empty") == RI_ERR_PARSE);
  CHECK(ri_decoder_load_memory(d, NULL, 5, "null") == RI_ERR_INVALID_ARG);
  CHECK(ri_decoder_load_file(d, NULL) == RI_ERR_INVALID_ARG);
  CHECK(ri_decoder_load_file(NULL, "x") == RI_ERR_INVALID_ARG);
  CHECK(ri_decoder_set_jpeg_ycbcr(NULL, 1) == RI_ERR_INVALID_ARG);
  CHECK(ri_decoder_preprocess_loaded(NULL, &s, dst, NULL) == RI_ERR_INVALID_ARG);

  /* Every allocation failing in turn: the right status, nothing leaked, and the decoder still works. */
  blob e = with_orientation(&j, 6);
  for (int variant = 0; variant < 2; variant++) {
    const blob *b = variant ? &e : &j;
    int done = 0;
    for (long k = 1; k < 200 && !done; k++) {
      long live = ri__alloc_live();
      ri__alloc_fail_after(k);
      ri_decoder_t *fd = NULL;
      ri_status st = ri_decoder_create(&fd);
      if (st == RI_OK) st = ri_decoder_load_memory(fd, b->data, b->size, "af.jpg");
      if (st == RI_OK) st = ri_decoder_preprocess_loaded(fd, &s, dst, NULL);
      long made = ri__alloc_fail_after(0);
      CHECK_MSG(st == RI_OK || st == RI_ERR_NO_MEMORY, "failure %ld: status %d", k, (int)st);
      done = st == RI_OK && made < k; /* the failing allocation was never reached */
      ri_decoder_destroy(fd);
      CHECK_MSG(ri__alloc_live() == live, "failure %ld (variant %d) leaks", k, variant);
    }
    CHECK(done);
  }
  free(e.data);
  free(j.data);
  free(pix);
  free(dst);
  ri_decoder_destroy(d);
}

/* The decoder keeps the sampling plan of the last geometry: images of the same geometry (and other specs
 * of the same size) must give what a fresh decoder gives. */
static void test_plan_reuse(void) {
  static const char *const specs[3] = {"size=50x30;layout=nchw;dtype=float32;range=-1,1",
                                       "size=50x30;layout=nhwc;dtype=uint8;order=bgr",
                                       "size=50x30;layout=nhwc;dtype=float32;resize=letterbox"};
  uint8_t *p1 = make_picture(90, 70), *p2 = make_picture(90, 70);
  blob j1 = jpeg_encode(p1, 90, 70, TJPF_RGB, TJSAMP_420, 90, 0),
       j2 = jpeg_encode(p2, 90, 70, TJPF_RGB, TJSAMP_420, 90, 0);
  ri_decoder_t *kept = NULL;
  CHECK(ri_decoder_create(&kept) == RI_OK);
  for (int k = 0; k < 3; k++) {
    ri_preprocess_spec s;
    CHECK(ri_preprocess_spec_parse(specs[k], &s, NULL) == RI_OK);
    size_t bytes = ri_preprocess_output_bytes(&s);
    void *a = malloc(bytes), *b = malloc(bytes);
    for (int i = 0; i < 2; i++) {
      const blob *j = i ? &j2 : &j1;
      ri_decoder_t *fresh = NULL;
      CHECK(ri_decoder_create(&fresh) == RI_OK);
      CHECK(ri_decoder_load_memory(kept, j->data, j->size, "kept") == RI_OK);
      CHECK(ri_decoder_preprocess_loaded(kept, &s, a, NULL) == RI_OK);
      CHECK(ri_decoder_load_memory(fresh, j->data, j->size, "fresh") == RI_OK);
      CHECK(ri_decoder_preprocess_loaded(fresh, &s, b, NULL) == RI_OK);
      CHECK_MSG(memcmp(a, b, bytes) == 0, "spec %d image %d: a kept plan changes the result", k, i);
      ri_decoder_destroy(fresh);
    }
    free(a);
    free(b);
  }
  ri_decoder_destroy(kept);
  free(j1.data);
  free(j2.data);
  free(p1);
  free(p2);
}

int main(void) {
  CHECK(ri_decoder_create(&g_dec) == RI_OK);
  test_against_reference();
  test_rgb_way();
  test_plan_reuse();
  test_errors();
  ri_decoder_destroy(g_dec);
  return test_done("test_vision_planar");
}
