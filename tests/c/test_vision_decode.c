/* Image decoding: JPEG / PNG variants generated here with TurboJPEG and libspng, EXIF orientation,
 * truncation, garbage, limits, files, and allocation-failure cleanup. */
#include <spng.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "core/alloc.h"
#include "runinfer/vision.h"
#include "test.h"
#include "test_images.h"

/* Smooth test pattern so JPEG errors stay small. */
static uint8_t pattern(int x, int y, int c, int w, int h) {
  switch (c) {
  case 0: return (uint8_t)(x * 255 / (w > 1 ? w - 1 : 1));
  case 1: return (uint8_t)(y * 255 / (h > 1 ? h - 1 : 1));
  default: return (uint8_t)((x + y) * 255 / (w + h > 2 ? w + h - 2 : 1));
  }
}

static blob png_encode(const void *pix, size_t len, int w, int h, int ctype, int depth, int interlace,
                       const struct spng_plte *plte, const struct spng_trns *trns) {
  blob b = {0};
  spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  struct spng_ihdr ihdr = {(uint32_t)w, (uint32_t)h, (uint8_t)depth,    (uint8_t)ctype,
                           0,           0,           (uint8_t)interlace};
  spng_set_ihdr(ctx, &ihdr);
  if (plte) spng_set_plte(ctx, (struct spng_plte *)plte);
  if (trns) spng_set_trns(ctx, (struct spng_trns *)trns);
  int rc = spng_encode_image(ctx, pix, len, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
  if (rc) {
    fprintf(stderr, "spng_encode_image: %s\n", spng_strerror(rc));
  } else {
    int e = 0;
    size_t n = 0;
    b.data = spng_get_png_buffer(ctx, &n, &e);
    b.size = n;
  }
  spng_ctx_free(ctx);
  return b;
}

static ri_decoder_t *g_dec;

static ri_status decode(const blob *b, const char *name, ri_image **img) {
  return ri_decoder_decode_memory(g_dec, b->data, b->size, name, img);
}

static int max_diff_rgb(const ri_image *img, const uint8_t *ref) {
  int m = 0;
  for (int y = 0; y < img->height; y++)
    for (int x = 0; x < img->width * 3; x++) {
      int d = abs((int)img->data[(size_t)y * img->stride + x] - (int)ref[((size_t)y * img->width) * 3 + x]);
      if (d > m) m = d;
    }
  return m;
}

static uint8_t *make_rgb(int w, int h) {
  uint8_t *p = malloc((size_t)w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        p[((size_t)y * w + x) * 3 + c] = pattern(x, y, c, w, h);
  return p;
}

/* ---- JPEG variants ---------------------------------------------------------------------------------- */

static void test_jpeg_rgb(void) {
  int w = 37, h = 23;
  uint8_t *pix = make_rgb(w, h);
  blob b = jpeg_encode(pix, w, h, TJPF_RGB, TJSAMP_444, 100, TJFLAG_ACCURATEDCT);
  ri_image *img = NULL;
  CHECK(ri_image_detect_format(b.data, b.size) == RI_IMAGE_FORMAT_JPEG);
  CHECK(decode(&b, "rgb.jpg", &img) == RI_OK);
  if (img) {
    CHECK(img->width == w && img->height == h && img->channels == 3 && img->stride >= (size_t)w * 3);
    CHECK(((uintptr_t)img->data & 63) == 0);
    int md = max_diff_rgb(img, pix);
    CHECK_MSG(md <= 6, "max diff %d", md);
  }
  CHECK(ri_decoder_last_error(g_dec)[0] == 0);
  ri_image_free(img);
  /* 4:2:0 subsampling still decodes to full-size RGB. */
  blob b2 = jpeg_encode(pix, w, h, TJPF_RGB, TJSAMP_420, 95, TJFLAG_ACCURATEDCT);
  img = NULL;
  CHECK(decode(&b2, "rgb420.jpg", &img) == RI_OK);
  if (img) {
    CHECK(img->width == w && img->height == h);
    CHECK_MSG(max_diff_rgb(img, pix) <= 40, "4:2:0 diff %d", max_diff_rgb(img, pix));
  }
  ri_image_free(img);
  blob_free(&b2);
  blob_free(&b);
  free(pix);
}

static void test_jpeg_gray(void) {
  int w = 20, h = 17;
  uint8_t *g = malloc((size_t)w * h);
  for (int i = 0; i < w * h; i++)
    g[i] = (uint8_t)((i % w) * 12);
  blob b = jpeg_encode(g, w, h, TJPF_GRAY, TJSAMP_GRAY, 100, TJFLAG_ACCURATEDCT);
  ri_image *img = NULL;
  CHECK(decode(&b, "gray.jpg", &img) == RI_OK);
  if (img) {
    int ok_equal = 1, md = 0;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        const uint8_t *p = img->data + (size_t)y * img->stride + 3 * x;
        if (p[0] != p[1] || p[1] != p[2]) ok_equal = 0;
        int d = abs(p[0] - g[y * w + x]);
        if (d > md) md = d;
      }
    CHECK(ok_equal);
    CHECK_MSG(md <= 3, "gray diff %d", md);
  }
  ri_image_free(img);
  blob_free(&b);
  free(g);
}

static void test_jpeg_cmyk(void) {
  int w = 16, h = 16;
  uint8_t *cmyk = malloc((size_t)w * h * 4);
  uint8_t *ref = malloc((size_t)w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *p = cmyk + ((size_t)y * w + x) * 4;
      p[0] = (uint8_t)(100 + x * 8);
      p[1] = (uint8_t)(60 + y * 10);
      p[2] = (uint8_t)(200 - x * 4);
      p[3] = (uint8_t)(180 + y * 4);
      for (int c = 0; c < 3; c++)
        ref[((size_t)y * w + x) * 3 + c] = (uint8_t)((p[c] * p[3] + 127) / 255);
    }
  blob b = jpeg_encode(cmyk, w, h, TJPF_CMYK, TJSAMP_444, 100, TJFLAG_ACCURATEDCT);
  ri_image *img = NULL;
  CHECK(b.size > 0);
  CHECK(decode(&b, "cmyk.jpg", &img) == RI_OK);
  if (img) {
    int md = max_diff_rgb(img, ref);
    CHECK_MSG(md <= 8, "cmyk diff %d", md);
  }
  ri_image_free(img);
  blob_free(&b);
  free(cmyk);
  free(ref);
}

/* Insert an APP1 Exif segment with the given orientation right after SOI. */
static blob splice_exif(const blob *jpg, int orientation, int big_endian, int corrupt) {
  unsigned char tiff[64];
  size_t t = 0;
#define P16(v)                                                                                               \
  (big_endian ? (tiff[t++] = (unsigned char)((v) >> 8), tiff[t++] = (unsigned char)(v))                      \
              : (tiff[t++] = (unsigned char)(v), tiff[t++] = (unsigned char)((v) >> 8)))
#define P32(v)                                                                                               \
  (big_endian ? (P16((unsigned)(v) >> 16), P16((v)&0xFFFF)) : (P16((v)&0xFFFF), P16((unsigned)(v) >> 16)))
  tiff[t++] = big_endian ? 'M' : 'I';
  tiff[t++] = big_endian ? 'M' : 'I';
  P16(42);
  P32(corrupt == 1 ? 0xFFFFFF00u : 8u); /* IFD0 offset */
  P16(corrupt == 3 ? 0xFFFF : 2);       /* entry count */
  /* entry 1: Make (ASCII, 4 bytes inline) */
  P16(0x010F);
  P16(2);
  P32(4);
  tiff[t++] = 'a', tiff[t++] = 'b', tiff[t++] = 'c', tiff[t++] = 0;
  /* entry 2: Orientation (SHORT, 1) */
  P16(0x0112);
  P16(corrupt == 2 ? 7 : 3); /* 7 = UNDEFINED: not a valid Orientation type */
  P32(1);
  P16(orientation);
  P16(0);
  P32(0); /* next IFD */
#undef P16
#undef P32
  size_t seg = 2 + 6 + t;
  blob out;
  out.size = jpg->size + 2 + seg;
  out.data = malloc(out.size);
  memcpy(out.data, jpg->data, 2);
  unsigned char *p = out.data + 2;
  *p++ = 0xFF, *p++ = 0xE1, *p++ = (unsigned char)(seg >> 8), *p++ = (unsigned char)seg;
  memcpy(p, "Exif\0\0", 6);
  p += 6;
  memcpy(p, tiff, t);
  p += t;
  memcpy(p, jpg->data + 2, jpg->size - 2);
  return out;
}

static void test_jpeg_exif(void) {
  int w = 16, h = 8;
  uint8_t *pix = malloc((size_t)w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *p = pix + ((size_t)y * w + x) * 3;
      p[0] = (uint8_t)(x * 16);
      p[1] = (uint8_t)(y * 32);
      p[2] = (uint8_t)(x < 8 ? 40 : 220);
    }
  blob b = jpeg_encode(pix, w, h, TJPF_RGB, TJSAMP_444, 100, TJFLAG_ACCURATEDCT);
  ri_image *ref = NULL;
  CHECK(decode(&b, "plain.jpg", &ref) == RI_OK);
  for (int be = 0; be < 2 && ref; be++) {
    for (int o = 1; o <= 8; o++) {
      blob e = splice_exif(&b, o, be, 0);
      ri_image *img = NULL;
      CHECK(decode(&e, "exif.jpg", &img) == RI_OK);
      if (img) {
        int swap = o >= 5;
        CHECK_MSG(img->width == (swap ? h : w) && img->height == (swap ? w : h), "o=%d dims %dx%d", o,
                  img->width, img->height);
        int bad = 0;
        for (int y = 0; y < img->height && img->width == (swap ? h : w); y++)
          for (int x = 0; x < img->width; x++) {
            int sx, sy; /* source pixel of output (x, y), spelled out per orientation */
            switch (o) {
            case 1: sx = x, sy = y; break;
            case 2: sx = w - 1 - x, sy = y; break;
            case 3: sx = w - 1 - x, sy = h - 1 - y; break;
            case 4: sx = x, sy = h - 1 - y; break;
            case 5: sx = y, sy = x; break;
            case 6: sx = y, sy = h - 1 - x; break;
            case 7: sx = w - 1 - y, sy = h - 1 - x; break;
            default: sx = w - 1 - y, sy = x; break;
            }
            if (memcmp(img->data + (size_t)y * img->stride + 3 * x,
                       ref->data + (size_t)sy * ref->stride + 3 * sx, 3))
              bad++;
          }
        CHECK_MSG(bad == 0, "orientation %d (%s): %d pixels differ", o, be ? "MM" : "II", bad);
      }
      ri_image_free(img);
      blob_free(&e);
    }
  }
  /* Rotation 6 visually: the stored top-left pixel (red 0) ends up at the top-right. */
  {
    blob e = splice_exif(&b, 6, 0, 0);
    ri_image *img = NULL;
    CHECK(decode(&e, "exif6.jpg", &img) == RI_OK);
    if (img && ref) CHECK(memcmp(img->data + 3 * (img->width - 1), ref->data, 3) == 0);
    ri_image_free(img);
    blob_free(&e);
  }
  /* Corrupt Exif (IFD offset beyond the segment, wrong tag type) is ignored, not fatal; an entry count
   * running past the segment still finds the entries that are inside it (orientation 6 applies). */
  for (int corrupt = 1; corrupt <= 3; corrupt++) {
    blob e = splice_exif(&b, 6, 0, corrupt);
    ri_image *img = NULL;
    CHECK(decode(&e, "badexif.jpg", &img) == RI_OK);
    if (img)
      CHECK_MSG(img->width == (corrupt == 3 ? h : w) && img->height == (corrupt == 3 ? w : h), "corrupt %d",
                corrupt);
    ri_image_free(img);
    blob_free(&e);
  }
  /* An APP1 segment whose length runs past the end of the data: no crash, a parse error. */
  {
    blob e = splice_exif(&b, 6, 0, 0);
    e.data[4] = 0xFF, e.data[5] = 0xF0;
    ri_image *img = NULL;
    CHECK(decode(&e, "longapp1.jpg", &img) == RI_ERR_PARSE);
    ri_image_free(img);
    blob_free(&e);
  }
  /* Out-of-range orientation value is ignored. */
  {
    blob e = splice_exif(&b, 9, 1, 0);
    ri_image *img = NULL;
    CHECK(decode(&e, "o9.jpg", &img) == RI_OK);
    if (img) CHECK(img->width == w && img->height == h);
    ri_image_free(img);
    blob_free(&e);
  }
  ri_image_free(ref);
  blob_free(&b);
  free(pix);
}

/* ---- fast decode (scale hint) ---------------------------------------------------------------------- */

/* Decode with the current hint; check the returned size, the full size reported, and (when ref is given:
 * the w x h source pixels) that each pixel is close to the mean of the d x d block it stands for. */
static void check_scaled(const blob *b, const char *what, int want_w, int want_h, int full_w, int full_h,
                         const uint8_t *ref, int w, int h, int d) {
  ri_image *img = NULL;
  ri_status st = decode(b, what, &img);
  CHECK_MSG(st == RI_OK, "%s: %s", what, ri_decoder_last_error(g_dec));
  if (!img) return;
  CHECK_MSG(img->width == want_w && img->height == want_h, "%s: got %dx%d, want %dx%d", what, img->width,
            img->height, want_w, want_h);
  int fw = -1, fh = -1;
  ri_decoder_last_full_size(g_dec, &fw, &fh);
  CHECK_MSG(fw == full_w && fh == full_h, "%s: full size %dx%d, want %dx%d", what, fw, fh, full_w, full_h);
  if (ref && img->width == want_w && img->height == want_h) {
    int worst = 0;
    for (int y = 0; y < want_h; y++)
      for (int x = 0; x < want_w; x++)
        for (int c = 0; c < 3; c++) {
          int sum = 0, cnt = 0;
          for (int yy = y * d; yy < (y + 1) * d && yy < h; yy++)
            for (int xx = x * d; xx < (x + 1) * d && xx < w; xx++, cnt++)
              sum += ref[((size_t)yy * w + xx) * 3 + c];
          int diff = abs((int)img->data[(size_t)y * img->stride + 3 * x + c] - (sum + cnt / 2) / cnt);
          if (diff > worst) worst = diff;
        }
    CHECK_MSG(worst <= 6, "%s: a pixel differs from its %dx%d block mean by %d", what, d, d, worst);
  }
  ri_image_free(img);
}

static void test_scale_hint(void) {
  int w = 64, h = 48;
  uint8_t *pix = make_rgb(w, h);
  blob b = jpeg_encode(pix, w, h, TJPF_RGB, TJSAMP_444, 98, TJFLAG_ACCURATEDCT);
  /* Off by default: full size. */
  check_scaled(&b, "default", w, h, w, h, NULL, w, h, 1);
  struct {
    int tw, th, want_w, want_h, d;
  } cases[] = {{32, 24, 32, 24, 2}, {16, 12, 16, 12, 4}, {20, 10, 32, 24, 2},
               {8, 6, 8, 6, 8},     {5, 5, 8, 6, 8},     {33, 24, 64, 48, 1},
               {32, 25, 64, 48, 1}, {64, 48, 64, 48, 1}, {300, 300, 64, 48, 1}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char what[64];
    snprintf(what, sizeof what, "hint %dx%d", cases[i].tw, cases[i].th);
    CHECK(ri_decoder_set_scale_hint(g_dec, cases[i].tw, cases[i].th) == RI_OK);
    check_scaled(&b, what, cases[i].want_w, cases[i].want_h, w, h, pix, w, h, cases[i].d);
  }
  /* Sizes that do not divide: rounded up (65x49 at 1/4 is 17x13). */
  uint8_t *odd = make_rgb(65, 49);
  blob bo = jpeg_encode(odd, 65, 49, TJPF_RGB, TJSAMP_420, 95, TJFLAG_ACCURATEDCT);
  CHECK(ri_decoder_set_scale_hint(g_dec, 16, 12) == RI_OK);
  check_scaled(&bo, "odd 1/4", 17, 13, 65, 49, NULL, 65, 49, 4);
  CHECK(ri_decoder_set_scale_hint(g_dec, 17, 13) == RI_OK);
  check_scaled(&bo, "odd 17x13", 17, 13, 65, 49, NULL, 65, 49, 4);
  CHECK(ri_decoder_set_scale_hint(g_dec, 18, 13) == RI_OK);
  check_scaled(&bo, "odd 18x13", 33, 25, 65, 49, NULL, 65, 49, 2);
  /* EXIF orientation 6 turns the stored 64x48 into 48x64: the hint is compared with the upright size. */
  blob e = splice_exif(&b, 6, 0, 0);
  CHECK(ri_decoder_set_scale_hint(g_dec, 24, 32) == RI_OK);
  check_scaled(&e, "exif6 24x32", 24, 32, 48, 64, NULL, w, h, 2);
  CHECK(ri_decoder_set_scale_hint(g_dec, 32, 24) == RI_OK); /* upright 48/2 = 24 < 32: full size */
  check_scaled(&e, "exif6 32x24", 48, 64, 48, 64, NULL, w, h, 1);
  /* PNG ignores the hint. */
  blob png = png_encode(pix, (size_t)w * h * 3, w, h, SPNG_COLOR_TYPE_TRUECOLOR, 8, 0, NULL, NULL);
  CHECK(ri_decoder_set_scale_hint(g_dec, 8, 6) == RI_OK);
  check_scaled(&png, "png", w, h, w, h, NULL, w, h, 1);
  /* A failure resets the full size. */
  ri_image *img = NULL;
  CHECK(ri_decoder_decode_memory(g_dec, "nope", 4, "bad", &img) == RI_ERR_UNSUPPORTED && !img);
  int fw = -1, fh = -1;
  ri_decoder_last_full_size(g_dec, &fw, &fh);
  CHECK(fw == 0 && fh == 0);
  /* Allocation failures with a scaled decode: a status and no leak. */
  CHECK(ri_decoder_set_scale_hint(g_dec, 16, 12) == RI_OK);
  int done = 0;
  for (long n = 1; n < 200 && !done; n++) {
    long live = ri__alloc_live();
    ri__alloc_fail_after(n);
    ri_status st = decode(&b, "oom", &img);
    ri__alloc_fail_after(0);
    CHECK(st == RI_OK || st == RI_ERR_NO_MEMORY);
    if (st == RI_OK) {
      done = 1;
      CHECK(img->width == 16 && img->height == 12);
      ri_image_free(img);
      img = NULL;
    }
    CHECK_MSG(ri__alloc_live() == live, "scaled decode, failure at %ld leaks", n);
  }
  CHECK(done);
  /* Invalid hints are refused and leave the hint unchanged. */
  CHECK(ri_decoder_set_scale_hint(g_dec, -1, 5) == RI_ERR_INVALID_ARG);
  CHECK(strstr(ri_decoder_last_error(g_dec), "-1x5") != NULL);
  CHECK(ri_decoder_set_scale_hint(g_dec, 5, 0) == RI_ERR_INVALID_ARG);
  CHECK(ri_decoder_set_scale_hint(g_dec, 16385, 5) == RI_ERR_INVALID_ARG);
  CHECK(ri_decoder_set_scale_hint(NULL, 5, 5) == RI_ERR_INVALID_ARG);
  check_scaled(&b, "after invalid", 16, 12, w, h, NULL, w, h, 4);
  CHECK(ri_decoder_set_scale_hint(g_dec, 0, 0) == RI_OK);
  check_scaled(&b, "off again", w, h, w, h, NULL, w, h, 1);
  ri_decoder_last_full_size(NULL, &fw, &fh);
  CHECK(fw == 0 && fh == 0);
  blob_free(&png);
  blob_free(&e);
  blob_free(&bo);
  blob_free(&b);
  free(odd);
  free(pix);
}

/* ---- PNG variants ----------------------------------------------------------------------------------- */

static void check_exact(const char *what, const blob *b, int w, int h, const uint8_t *ref) {
  ri_image *img = NULL;
  ri_status st = decode(b, what, &img);
  CHECK_MSG(st == RI_OK, "%s: %s", what, ri_decoder_last_error(g_dec));
  if (img) {
    CHECK_MSG(img->width == w && img->height == h, "%s dims", what);
    CHECK_MSG(max_diff_rgb(img, ref) == 0, "%s: max diff %d", what, max_diff_rgb(img, ref));
  }
  ri_image_free(img);
}

static void test_png_variants(void) {
  int w = 13, h = 9;
  uint8_t *rgb = make_rgb(w, h);
  uint8_t *ref = malloc((size_t)w * h * 3);

  blob b = png_encode(rgb, (size_t)w * h * 3, w, h, SPNG_COLOR_TYPE_TRUECOLOR, 8, 0, NULL, NULL);
  CHECK(ri_image_detect_format(b.data, b.size) == RI_IMAGE_FORMAT_PNG);
  check_exact("rgb8.png", &b, w, h, rgb);
  blob_free(&b);

  b = png_encode(rgb, (size_t)w * h * 3, w, h, SPNG_COLOR_TYPE_TRUECOLOR, 8, 1, NULL, NULL);
  check_exact("adam7.png", &b, w, h, rgb);
  blob_free(&b);

  /* grayscale 8-bit */
  uint8_t *g = malloc((size_t)w * h * 2);
  for (int i = 0; i < w * h; i++)
    g[i] = (uint8_t)(i * 7);
  for (int i = 0; i < w * h; i++)
    ref[3 * i] = ref[3 * i + 1] = ref[3 * i + 2] = g[i];
  b = png_encode(g, (size_t)w * h, w, h, SPNG_COLOR_TYPE_GRAYSCALE, 8, 0, NULL, NULL);
  check_exact("gray8.png", &b, w, h, ref);
  blob_free(&b);

  /* grayscale 1-bit: rows packed MSB first, padded to a byte */
  {
    int rb = (w + 7) / 8;
    uint8_t *packed = calloc((size_t)rb * h, 1);
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        int bit = (x + y) & 1;
        if (bit) packed[y * rb + x / 8] |= (uint8_t)(0x80 >> (x % 8));
        uint8_t v = bit ? 255 : 0;
        ref[3 * (y * w + x)] = ref[3 * (y * w + x) + 1] = ref[3 * (y * w + x) + 2] = v;
      }
    b = png_encode(packed, (size_t)rb * h, w, h, SPNG_COLOR_TYPE_GRAYSCALE, 1, 0, NULL, NULL);
    check_exact("gray1.png", &b, w, h, ref);
    blob_free(&b);
    free(packed);
  }

  /* gray + alpha 8-bit: alpha dropped */
  for (int i = 0; i < w * h; i++) {
    g[2 * i] = (uint8_t)(i * 5);
    g[2 * i + 1] = (uint8_t)(i * 11);
    ref[3 * i] = ref[3 * i + 1] = ref[3 * i + 2] = g[2 * i];
  }
  b = png_encode(g, (size_t)w * h * 2, w, h, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, 8, 0, NULL, NULL);
  check_exact("ga8.png", &b, w, h, ref);
  blob_free(&b);
  free(g);

  /* RGBA 8-bit: alpha dropped, colour kept as stored (not composited) */
  uint8_t *rgba = malloc((size_t)w * h * 4);
  for (int i = 0; i < w * h; i++) {
    for (int c = 0; c < 3; c++)
      rgba[4 * i + c] = rgb[3 * i + c];
    rgba[4 * i + 3] = (uint8_t)(i & 1 ? 0 : 128);
  }
  b = png_encode(rgba, (size_t)w * h * 4, w, h, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 8, 0, NULL, NULL);
  check_exact("rgba8.png", &b, w, h, rgb);
  blob_free(&b);
  free(rgba);

  /* RGB 16-bit: high byte kept (big-endian samples in the PNG) */
  uint8_t *rgb16 = malloc((size_t)w * h * 6);
  for (int i = 0; i < w * h * 3; i++) {
    unsigned v = (unsigned)(i * 977 + 12345) & 0xFFFF;
    uint16_t hv = (uint16_t)v; /* spng takes host-endian 16-bit input for SPNG_FMT_PNG */
    memcpy(rgb16 + 2 * i, &hv, 2);
    ref[i] = (uint8_t)(v >> 8);
  }
  b = png_encode(rgb16, (size_t)w * h * 6, w, h, SPNG_COLOR_TYPE_TRUECOLOR, 16, 0, NULL, NULL);
  check_exact("rgb16.png", &b, w, h, ref);
  blob_free(&b);
  free(rgb16);

  /* palette 8-bit with a tRNS chunk (ignored) */
  {
    struct spng_plte plte;
    memset(&plte, 0, sizeof plte);
    plte.n_entries = 7;
    for (int i = 0; i < 7; i++) {
      plte.entries[i].red = (uint8_t)(i * 30);
      plte.entries[i].green = (uint8_t)(255 - i * 20);
      plte.entries[i].blue = (uint8_t)(i * i * 5);
    }
    struct spng_trns trns;
    memset(&trns, 0, sizeof trns);
    trns.n_type3_entries = 2;
    trns.type3_alpha[0] = 0;
    trns.type3_alpha[1] = 100;
    uint8_t *idx = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++) {
      idx[i] = (uint8_t)(i % 7);
      ref[3 * i] = plte.entries[idx[i]].red;
      ref[3 * i + 1] = plte.entries[idx[i]].green;
      ref[3 * i + 2] = plte.entries[idx[i]].blue;
    }
    b = png_encode(idx, (size_t)w * h, w, h, SPNG_COLOR_TYPE_INDEXED, 8, 0, &plte, &trns);
    check_exact("palette.png", &b, w, h, ref);
    blob_free(&b);
    free(idx);
  }
  free(ref);
  free(rgb);
}

/* ---- hostile input ---------------------------------------------------------------------------------- */

static void expect_fail(const blob *b, const char *name, ri_status want, const char *needle) {
  ri_image *img = (ri_image *)(uintptr_t)1;
  long live = ri__alloc_live();
  ri_status st = decode(b, name, &img);
  CHECK_MSG(st == want, "%s: status %d (%s), wanted %d: %s", name, (int)st, ri_status_str(st), (int)want,
            ri_decoder_last_error(g_dec));
  CHECK(img == NULL);
  CHECK_MSG(strstr(ri_decoder_last_error(g_dec), name) != NULL, "%s: message lacks the name: %s", name,
            ri_decoder_last_error(g_dec));
  if (needle)
    CHECK_MSG(strstr(ri_decoder_last_error(g_dec), needle) != NULL, "%s: message lacks '%s': %s", name,
              needle, ri_decoder_last_error(g_dec));
  CHECK(ri__alloc_live() == live);
  if (st == RI_OK) ri_image_free(img);
}

static void test_truncated(void) {
  int w = 64, h = 48;
  uint8_t *pix = make_rgb(w, h);
  blob jpg = jpeg_encode(pix, w, h, TJPF_RGB, TJSAMP_420, 90, TJFLAG_ACCURATEDCT);
  blob png = png_encode(pix, (size_t)w * h * 3, w, h, SPNG_COLOR_TYPE_TRUECOLOR, 8, 0, NULL, NULL);
  const blob *srcs[2] = {&jpg, &png};
  for (int s = 0; s < 2; s++) {
    size_t n = srcs[s]->size;
    size_t cuts[] = {2, 3, 4, 7, 11, 20, 40, n / 4, n / 2, (3 * n) / 4, n - 20, n - 13, n - 5, n - 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
      blob t = {srcs[s]->data, cuts[i]};
      char name[64];
      snprintf(name, sizeof name, "cut%zu.%s", cuts[i], s ? "png" : "jpg");
      expect_fail(&t, name, RI_ERR_PARSE, NULL);
    }
  }
  /* Corrupt a byte in the middle of the PNG image data: CRC / zlib failure. */
  blob bad = {malloc(png.size), png.size};
  memcpy(bad.data, png.data, png.size);
  bad.data[png.size / 2] ^= 0x5a;
  expect_fail(&bad, "flipped.png", RI_ERR_PARSE, NULL);
  blob_free(&bad);
  /* JPEG with garbage entropy data after the header. */
  bad.data = malloc(jpg.size);
  bad.size = jpg.size;
  memcpy(bad.data, jpg.data, jpg.size);
  for (size_t i = jpg.size / 2; i < jpg.size - 2; i++)
    bad.data[i] = 0xFF;
  expect_fail(&bad, "smashed.jpg", RI_ERR_PARSE, NULL);
  /* Lenient mode accepts the warnings of a damaged (but structurally complete) JPEG. */
  CHECK(ri_decoder_set_strict(g_dec, 0) == RI_OK);
  blob t = {jpg.data, jpg.size - 100};
  ri_image *img = NULL;
  ri_status st = decode(&t, "lenient.jpg", &img);
  CHECK_MSG(st == RI_OK, "lenient: %s", ri_decoder_last_error(g_dec));
  ri_image_free(img);
  CHECK(ri_decoder_set_strict(g_dec, 1) == RI_OK);
  blob_free(&bad);
  blob_free(&jpg);
  blob_free(&png);
  free(pix);
}

static void test_garbage(void) {
  blob empty = {(unsigned char *)"", 0};
  expect_fail(&empty, "empty.bin", RI_ERR_PARSE, "empty");
  unsigned char junk[256];
  for (int i = 0; i < 256; i++)
    junk[i] = (unsigned char)(i * 37 + 11);
  blob j = {junk, sizeof junk};
  expect_fail(&j, "junk.bin", RI_ERR_UNSUPPORTED, "not a JPEG or PNG");
  blob txt = {(unsigned char *)"hello world, not an image", 25};
  expect_fail(&txt, "hello.txt", RI_ERR_UNSUPPORTED, "68 65 6c");
  blob gif = {(unsigned char *)"GIF89a\x01\x00\x01\x00\x00\x00\x00", 13};
  expect_fail(&gif, "anim.gif", RI_ERR_UNSUPPORTED, "GIF");
  blob one = {(unsigned char *)"\xff", 1};
  expect_fail(&one, "ff.bin", RI_ERR_UNSUPPORTED, NULL);
  /* Right magic, garbage afterwards. */
  unsigned char fake_jpg[64] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02};
  memset(fake_jpg + 6, 0x41, sizeof fake_jpg - 6);
  blob fj = {fake_jpg, sizeof fake_jpg};
  expect_fail(&fj, "fake.jpg", RI_ERR_PARSE, NULL);
  unsigned char fake_png[64] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  memset(fake_png + 8, 0x41, sizeof fake_png - 8);
  blob fp = {fake_png, sizeof fake_png};
  expect_fail(&fp, "fake.png", RI_ERR_PARSE, NULL);
  /* NULL arguments. */
  ri_image *img = NULL;
  CHECK(ri_decoder_decode_memory(g_dec, NULL, 10, "x", &img) == RI_ERR_INVALID_ARG);
  CHECK(ri_decoder_decode_memory(g_dec, junk, 10, "x", NULL) == RI_ERR_INVALID_ARG);
  CHECK(ri_decoder_decode_memory(NULL, junk, 10, "x", &img) == RI_ERR_INVALID_ARG);
  CHECK(ri_decoder_decode_file(g_dec, NULL, &img) == RI_ERR_INVALID_ARG);
}

static uint32_t crc32_calc(const unsigned char *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8),
  p[3] = (unsigned char)v;
}

static void test_limits(void) {
  /* PNG header claiming 100000 x 100000 RGB pixels (30 GB decoded), followed by IEND. */
  unsigned char png[8 + 25 + 12];
  memcpy(png, "\x89PNG\r\n\x1a\n", 8);
  unsigned char *ih = png + 8;
  put_be32(ih, 13);
  memcpy(ih + 4, "IHDR", 4);
  put_be32(ih + 8, 100000);
  put_be32(ih + 12, 100000);
  ih[16] = 8, ih[17] = 2, ih[18] = 0, ih[19] = 0, ih[20] = 0;
  put_be32(ih + 21, crc32_calc(ih + 4, 17));
  unsigned char *ie = ih + 25;
  put_be32(ie, 0);
  memcpy(ie + 4, "IEND", 4);
  put_be32(ie + 8, crc32_calc(ie + 4, 4));
  blob b = {png, sizeof png};
  ri__alloc_fail_after(0);
  expect_fail(&b, "bomb.png", RI_ERR_LIMIT, "100000x100000");
  long allocs = ri__alloc_fail_after(0);
  CHECK_MSG(allocs < 16, "bomb.png made %ld allocations", allocs);

  /* JPEG whose SOF claims 60000 x 60000 (JPEG sides are 16-bit; 65500 is libjpeg's maximum). */
  uint8_t *pix = make_rgb(16, 16);
  blob jpg = jpeg_encode(pix, 16, 16, TJPF_RGB, TJSAMP_444, 90, TJFLAG_ACCURATEDCT);
  int patched = 0;
  for (size_t i = 2; i + 9 < jpg.size; i++)
    if (jpg.data[i] == 0xFF && (jpg.data[i + 1] == 0xC0 || jpg.data[i + 1] == 0xC2)) {
      jpg.data[i + 5] = 60000 >> 8, jpg.data[i + 6] = 60000 & 0xFF; /* height */
      jpg.data[i + 7] = 60000 >> 8, jpg.data[i + 8] = 60000 & 0xFF; /* width */
      patched = 1;
      break;
    }
  CHECK(patched);
  expect_fail(&jpg, "bomb.jpg", RI_ERR_LIMIT, "60000x60000");

  /* Configurable limits. */
  blob small = jpeg_encode(pix, 16, 16, TJPF_RGB, TJSAMP_444, 90, TJFLAG_ACCURATEDCT);
  ri_decode_limits lim = {0, 255};
  CHECK(ri_decoder_set_limits(g_dec, &lim) == RI_OK);
  expect_fail(&small, "px.jpg", RI_ERR_LIMIT, "16x16");
  lim.max_pixels = 256;
  CHECK(ri_decoder_set_limits(g_dec, &lim) == RI_OK);
  ri_image *img = NULL;
  CHECK(decode(&small, "px.jpg", &img) == RI_OK);
  ri_image_free(img);
  lim.max_file_bytes = 10;
  CHECK(ri_decoder_set_limits(g_dec, &lim) == RI_OK);
  expect_fail(&small, "bytes.jpg", RI_ERR_LIMIT, "bytes");
  CHECK(ri_decoder_set_limits(g_dec, NULL) == RI_OK);
  blob_free(&small);
  blob_free(&jpg);
  free(pix);
}

static void test_files(void) {
  char dir[] = "/tmp/ri_vision_XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[256];
  ri_image *img = NULL;

  uint8_t *pix = make_rgb(8, 6);
  blob png = png_encode(pix, 8 * 6 * 3, 8, 6, SPNG_COLOR_TYPE_TRUECOLOR, 8, 0, NULL, NULL);
  snprintf(path, sizeof path, "%s/ok.png", dir);
  FILE *f = fopen(path, "wb");
  fwrite(png.data, 1, png.size, f);
  fclose(f);
  CHECK(ri_decoder_decode_file(g_dec, path, &img) == RI_OK);
  if (img) CHECK(img->width == 8 && img->height == 6 && max_diff_rgb(img, pix) == 0);
  ri_image_free(img);
  img = NULL;

  snprintf(path, sizeof path, "%s/cut.png", dir);
  f = fopen(path, "wb");
  fwrite(png.data, 1, png.size / 2, f);
  fclose(f);
  CHECK(ri_decoder_decode_file(g_dec, path, &img) == RI_ERR_PARSE);
  CHECK(strstr(ri_decoder_last_error(g_dec), path) != NULL);
  unlink(path);

  snprintf(path, sizeof path, "%s/empty.jpg", dir);
  f = fopen(path, "wb");
  fclose(f);
  CHECK(ri_decoder_decode_file(g_dec, path, &img) == RI_ERR_PARSE);
  CHECK(strstr(ri_decoder_last_error(g_dec), "empty") != NULL);
  unlink(path);

  snprintf(path, sizeof path, "%s/missing.jpg", dir);
  CHECK(ri_decoder_decode_file(g_dec, path, &img) == RI_ERR_NOT_FOUND);
  CHECK_MSG(strstr(ri_decoder_last_error(g_dec), "No such file") != NULL &&
                strstr(ri_decoder_last_error(g_dec), path) != NULL,
            "%s", ri_decoder_last_error(g_dec));

  CHECK(ri_decoder_decode_file(g_dec, dir, &img) == RI_ERR_IO);
  CHECK(img == NULL);

  ri_decode_limits lim = {100, 0};
  snprintf(path, sizeof path, "%s/ok.png", dir);
  CHECK(ri_decoder_set_limits(g_dec, &lim) == RI_OK);
  CHECK(ri_decoder_decode_file(g_dec, path, &img) == RI_ERR_LIMIT);
  CHECK(ri_decoder_set_limits(g_dec, NULL) == RI_OK);
  unlink(path);
  rmdir(dir);
  blob_free(&png);
  free(pix);
}

/* Fail every allocation in turn: each decode must return OK or NO_MEMORY and free everything. */
static void test_alloc_failures(void) {
  uint8_t *pix = make_rgb(20, 10);
  blob png = png_encode(pix, 20 * 10 * 3, 20, 10, SPNG_COLOR_TYPE_TRUECOLOR, 8, 1, NULL, NULL);
  blob jpg = jpeg_encode(pix, 20, 10, TJPF_RGB, TJSAMP_444, 90, TJFLAG_ACCURATEDCT);
  blob exif = splice_exif(&jpg, 6, 0, 0);
  const blob *srcs[3] = {&png, &jpg, &exif};
  for (int s = 0; s < 3; s++) {
    int done = 0;
    for (long n = 1; n < 200 && !done; n++) {
      long live = ri__alloc_live();
      ri_image *img = NULL;
      ri__alloc_fail_after(n);
      ri_status st = decode(srcs[s], "oom", &img);
      ri__alloc_fail_after(0);
      CHECK_MSG(st == RI_OK || st == RI_ERR_NO_MEMORY, "source %d fail at %ld: status %d: %s", s, n, (int)st,
                ri_decoder_last_error(g_dec));
      if (st == RI_OK) {
        done = 1;
        ri_image_free(img);
      }
      CHECK_MSG(ri__alloc_live() == live, "source %d fail at %ld leaks", s, n);
    }
    CHECK(done);
  }
  blob_free(&exif);
  blob_free(&jpg);
  blob_free(&png);
  free(pix);
}

static void test_image_create(void) {
  ri_image *img = NULL;
  ri_vision_error e;
  CHECK(ri_image_create(4, 3, &img, &e) == RI_OK && img && img->stride == 12 && img->channels == 3);
  ri_image_free(img);
  CHECK(ri_image_create(0, 3, &img, &e) == RI_ERR_INVALID_ARG && img == NULL);
  CHECK(e.status == RI_ERR_INVALID_ARG && strstr(e.msg, "0x3") != NULL);
  CHECK(ri_image_create(1 << 20, 1 << 20, &img, NULL) == RI_ERR_INVALID_ARG && img == NULL);
  ri_image_free(NULL);
  ri_decoder_destroy(NULL);
}

int main(void) {
  long live0 = ri__alloc_live();
  CHECK(ri_decoder_create(&g_dec) == RI_OK);
  test_jpeg_rgb();
  test_jpeg_gray();
  test_jpeg_cmyk();
  test_jpeg_exif();
  test_scale_hint();
  test_png_variants();
  test_truncated();
  test_garbage();
  test_limits();
  test_files();
  test_alloc_failures();
  test_image_create();
  ri_decoder_destroy(g_dec);
  CHECK(ri__alloc_live() == live0);
  return test_done("test_vision_decode");
}
