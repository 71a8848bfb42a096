/* JPEG (TurboJPEG) and PNG (libspng) decoding into 8-bit RGB, with limits checked from the header before
 * pixel memory is allocated and the EXIF orientation of JPEGs applied. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "core/alloc.h"
#include "vision/decoder.h"
#include "vision/vision_internal.h"

/* ---- images ----------------------------------------------------------------------------------------- */

/* The struct and the pixels share one allocation; pixels start at the next 64-byte boundary. */
static ri_status image_alloc(int width, int height, ri_image **out, ri__err *err) {
  size_t row, pix, total;
  if (width <= 0 || height <= 0 || !ri__mul_size((size_t)width, 3, &row) ||
      !ri__mul_size(row, (size_t)height, &pix) || !ri__add_size(pix, sizeof(ri_image) + 64, &total))
    return ri__err_set(err, RI_ERR_LIMIT, "image of %dx%d pixels is too large", width, height);
  unsigned char *block = ri__malloc(total);
  if (!block) return RI__OOM(err);
  ri_image *img = (ri_image *)(void *)block;
  uintptr_t p = (uintptr_t)(block + sizeof(ri_image));
  p = (p + 63) & ~(uintptr_t)63;
  img->width = width;
  img->height = height;
  img->channels = 3;
  img->stride = row;
  img->data = (uint8_t *)p;
  *out = img;
  return RI_OK;
}

ri_status ri_image_create(int width, int height, ri_image **out, ri_vision_error *verr) {
  ri__err err;
  ri__err_clear(&err);
  if (!out) {
    ri__err_set(&err, RI_ERR_INVALID_ARG, "ri_image_create: out is NULL");
    return ri__verr_out(verr, &err);
  }
  *out = NULL;
  if (width < 1 || height < 1 || width > (1 << 20) || height > (1 << 20) ||
      (uint64_t)width * (uint64_t)height > (1ull << 32)) {
    ri__err_set(&err, RI_ERR_INVALID_ARG,
                "ri_image_create: %dx%d is outside 1..2^20 per side and 2^32 pixels in all", width, height);
    return ri__verr_out(verr, &err);
  }
  if (image_alloc(width, height, out, &err) != RI_OK) return ri__verr_out(verr, &err);
  return ri__verr_ok(verr);
}

void ri_image_free(ri_image *image) { ri__free(image); }

/* ---- decoder handle --------------------------------------------------------------------------------- */

ri_status ri_decoder_create(ri_decoder_t **out) {
  if (!out) return RI_ERR_INVALID_ARG;
  *out = NULL;
  ri_decoder_t *d = ri__calloc(1, sizeof *d);
  if (!d) return RI_ERR_NO_MEMORY;
  d->limits.max_file_bytes = RI_DECODE_DEFAULT_MAX_FILE_BYTES;
  d->limits.max_pixels = RI_DECODE_DEFAULT_MAX_PIXELS;
  d->strict = 1;
  const char *e = getenv("RI_JPEG_YCBCR");
  d->jpeg_ycbcr = !(e && strcmp(e, "0") == 0);
  *out = d;
  return RI_OK;
}

void ri_decoder_destroy(ri_decoder_t *d) {
  if (!d) return;
  if (d->tj) tjDestroy(d->tj);
  ri__decoder_unload(d);
  ri__free(d->planes);
  ri__free(d->tplanes);
  ri__ycc_plan_free(d->plan);
  ri__free(d);
}

const char *ri_decoder_last_error(const ri_decoder_t *d) { return d ? d->err.msg : "decoder is NULL"; }

ri_status ri_decoder_set_limits(ri_decoder_t *d, const ri_decode_limits *limits) {
  if (!d) return RI_ERR_INVALID_ARG;
  ri__err_clear(&d->err);
  d->limits.max_file_bytes =
      (limits && limits->max_file_bytes) ? limits->max_file_bytes : RI_DECODE_DEFAULT_MAX_FILE_BYTES;
  d->limits.max_pixels = (limits && limits->max_pixels) ? limits->max_pixels : RI_DECODE_DEFAULT_MAX_PIXELS;
  return RI_OK;
}

ri_status ri_decoder_set_strict(ri_decoder_t *d, int strict) {
  if (!d) return RI_ERR_INVALID_ARG;
  ri__err_clear(&d->err);
  d->strict = strict != 0;
  return RI_OK;
}

ri_status ri_decoder_set_scale_hint(ri_decoder_t *d, int target_w, int target_h) {
  if (!d) return RI_ERR_INVALID_ARG;
  ri__err_clear(&d->err);
  if (target_w < 0 || target_h < 0 || target_w > 16384 || target_h > 16384 || (!target_w != !target_h))
    return ri__err_set(&d->err, RI_ERR_INVALID_ARG,
                       "scale hint %dx%d: both sides must be 1..16384, or both 0 to turn it off", target_w,
                       target_h);
  d->hint_w = target_w;
  d->hint_h = target_h;
  return RI_OK;
}

void ri_decoder_last_full_size(const ri_decoder_t *d, int *width, int *height) {
  if (width) *width = d ? d->full_w : 0;
  if (height) *height = d ? d->full_h : 0;
}

/* ---- format detection ------------------------------------------------------------------------------- */

static const unsigned char k_png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

ri_image_format ri_image_detect_format(const void *data, size_t size) {
  const unsigned char *p = data;
  if (!p) return RI_IMAGE_FORMAT_UNKNOWN;
  if (size >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return RI_IMAGE_FORMAT_JPEG;
  if (size >= 8 && memcmp(p, k_png_sig, 8) == 0) return RI_IMAGE_FORMAT_PNG;
  return RI_IMAGE_FORMAT_UNKNOWN;
}

/* Name of a recognisable but unsupported format, or NULL. */
static const char *other_format_name(const unsigned char *p, size_t n) {
  if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0)) return "GIF";
  if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) return "WebP";
  if (n >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0)) return "TIFF";
  if (n >= 12 && memcmp(p + 4, "ftyp", 4) == 0) return "HEIF/AVIF/MP4";
  if (n >= 2 && p[0] == 'B' && p[1] == 'M') return "BMP";
  if (n >= 4 && memcmp(p, "\0\0\1\0", 4) == 0) return "ICO";
  if (n >= 12 && memcmp(p, "\0\0\0\x0cjP  ", 8) == 0) return "JPEG 2000";
  return NULL;
}

/* ---- EXIF orientation ------------------------------------------------------------------------------- */

static unsigned rd16(const unsigned char *p, int le) {
  return le ? (unsigned)(p[0] | p[1] << 8) : (unsigned)(p[0] << 8 | p[1]);
}
static uint32_t rd32(const unsigned char *p, int le) {
  return le ? ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24)
            : ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3]);
}

/* Orientation (1..8) from a TIFF structure of n bytes, 1 when absent or malformed. */
static int tiff_orientation(const unsigned char *t, size_t n) {
  if (n < 8) return 1;
  int le;
  if (t[0] == 'I' && t[1] == 'I')
    le = 1;
  else if (t[0] == 'M' && t[1] == 'M')
    le = 0;
  else
    return 1;
  if (rd16(t + 2, le) != 42) return 1;
  uint32_t ifd = rd32(t + 4, le);
  if (ifd > n || n - ifd < 2) return 1;
  unsigned count = rd16(t + ifd, le);
  for (unsigned i = 0; i < count; i++) {
    uint64_t e = (uint64_t)ifd + 2 + 12ull * i;
    if (e + 12 > n) return 1;
    const unsigned char *ent = t + e;
    if (rd16(ent, le) != 0x0112) continue;
    unsigned type = rd16(ent + 2, le);
    uint32_t cnt = rd32(ent + 4, le);
    unsigned v;
    if (cnt < 1) return 1;
    if (type == 3)
      v = rd16(ent + 8, le); /* SHORT, stored in the value field */
    else if (type == 4)
      v = rd32(ent + 8, le); /* LONG: not per spec but seen in the wild */
    else
      return 1;
    return (v >= 1 && v <= 8) ? (int)v : 1;
  }
  return 1;
}

int ri__jpeg_exif_orientation(const unsigned char *p, size_t n) {
  size_t pos = 2;
  while (pos + 4 <= n) {
    if (p[pos] != 0xFF) return 1;
    unsigned m = p[pos + 1];
    if (m == 0xFF) { /* fill byte */
      pos++;
      continue;
    }
    if (m == 0xD9 || m == 0xDA) return 1;
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
      pos += 2;
      continue;
    }
    size_t len = (size_t)p[pos + 2] << 8 | p[pos + 3];
    if (len < 2 || len > n - pos - 2) return 1;
    if (m == 0xE1 && len >= 2 + 6 + 8 && memcmp(p + pos + 4, "Exif\0\0", 6) == 0)
      return tiff_orientation(p + pos + 10, len - 8);
    pos += 2 + len;
  }
  return 1;
}

/* Return a new image holding src turned upright per EXIF orientation o (2..8). */
static ri_status apply_orientation(const ri_image *src, int o, ri_image **out, ri__err *err) {
  int W = src->width, H = src->height;
  int swap = o >= 5;
  ri_image *dst;
  RI__TRY(image_alloc(swap ? H : W, swap ? W : H, &dst, err));
  const ptrdiff_t rs = (ptrdiff_t)src->stride;
  for (int y = 0; y < dst->height; y++) {
    int sx, sy;     /* source of output pixel (0, y) */
    ptrdiff_t step; /* source byte step per output x */
    switch (o) {
    case 2:
      sx = W - 1;
      sy = y;
      step = -3;
      break;
    case 3:
      sx = W - 1;
      sy = H - 1 - y;
      step = -3;
      break;
    case 4:
      sx = 0;
      sy = H - 1 - y;
      step = 3;
      break;
    case 5:
      sx = y;
      sy = 0;
      step = rs;
      break;
    case 6:
      sx = y;
      sy = H - 1;
      step = -rs;
      break;
    case 7:
      sx = W - 1 - y;
      sy = H - 1;
      step = -rs;
      break;
    default:
      sx = W - 1 - y;
      sy = 0;
      step = rs;
      break; /* 8 */
    }
    const uint8_t *s = src->data + (ptrdiff_t)sy * rs + (ptrdiff_t)sx * 3;
    uint8_t *d = dst->data + (size_t)y * dst->stride;
    for (int x = 0; x < dst->width; x++, s += step) {
      d[3 * x + 0] = s[0];
      d[3 * x + 1] = s[1];
      d[3 * x + 2] = s[2];
    }
  }
  *out = dst;
  return RI_OK;
}

/* ---- JPEG ------------------------------------------------------------------------------------------- */

ri_status ri__decoder_check_pixels(ri_decoder_t *d, const char *name, const char *fmt, uint64_t w,
                                   uint64_t h) {
  if (w == 0 || h == 0)
    return ri__err_set(&d->err, RI_ERR_PARSE, "'%s': %s header has no image (%llux%llu; truncated?)", name,
                       fmt, (unsigned long long)w, (unsigned long long)h);
  if (w > INT_MAX / 4 || h > INT_MAX / 4 || w * h > d->limits.max_pixels)
    return ri__err_set(
        &d->err, RI_ERR_LIMIT, "'%s': %s of %llux%llu pixels exceeds the decode limit of %llu pixels", name,
        fmt, (unsigned long long)w, (unsigned long long)h, (unsigned long long)d->limits.max_pixels);
  return RI_OK;
}

void ri__decoder_drop_tj(ri_decoder_t *d) {
  tjDestroy(d->tj);
  d->tj = NULL;
}

int ri__jpeg_scale_denom(const ri_decoder_t *d, int w, int h, int swap) {
  if (d->hint_w < 1 || d->hint_h < 1) return 1;
  int uw = swap ? h : w, uh = swap ? w : h;
  for (int denom = 8; denom > 1; denom /= 2)
    if ((uw + denom - 1) / denom >= d->hint_w && (uh + denom - 1) / denom >= d->hint_h) return denom;
  return 1;
}

ri_status ri__jpeg_header(ri_decoder_t *d, const unsigned char *p, size_t n, const char *name, int *w, int *h,
                          int *subsamp, int *cs) {
  if (!d->tj) {
    d->tj = tjInitDecompress();
    if (!d->tj)
      return ri__err_set(&d->err, RI_ERR_NO_MEMORY, "'%s': cannot create a TurboJPEG decompressor: %s", name,
                         tjGetErrorStr2(NULL));
  }
  *w = *h = *subsamp = *cs = 0;
  if (tjDecompressHeader3(d->tj, p, (unsigned long)n, w, h, subsamp, cs) != 0) {
    ri__err_set(&d->err, RI_ERR_PARSE, "'%s': invalid JPEG header: %s", name, tjGetErrorStr2(d->tj));
    ri__decoder_drop_tj(d);
    return RI_ERR_PARSE;
  }
  return ri__decoder_check_pixels(d, name, "JPEG", (uint64_t)(*w < 0 ? 0 : *w), (uint64_t)(*h < 0 ? 0 : *h));
}

static ri_status decode_jpeg(ri_decoder_t *d, const unsigned char *p, size_t n, const char *name,
                             ri_image **out) {
  int w, h, subsamp, cs;
  RI__TRY(ri__jpeg_header(d, p, n, name, &w, &h, &subsamp, &cs));
  int orientation = ri__jpeg_exif_orientation(p, n);
  int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
  int flags = TJFLAG_LIMITSCANS | (d->strict ? TJFLAG_STOPONWARNING : 0);
  const int full_w = w, full_h = h;
  int denom = ri__jpeg_scale_denom(d, w, h, orientation >= 5);
  if (denom > 1) {
    /* TurboJPEG picks the largest scaling factor whose size fits the size asked for: 1/denom here. */
    w = (w + denom - 1) / denom;
    h = (h + denom - 1) / denom;
  }

  ri_image *img = NULL;
  unsigned char *tmp = NULL;
  ri_status st = image_alloc(w, h, &img, &d->err);
  if (st != RI_OK) return st;
  if (cmyk) {
    size_t bytes;
    if (!ri__mul_size((size_t)w * 4, (size_t)h, &bytes) || !(tmp = ri__malloc(bytes))) {
      ri_image_free(img);
      return RI__OOM(&d->err);
    }
  }
  int rc =
      cmyk ? tjDecompress2(d->tj, p, (unsigned long)n, tmp, w, w * 4, h, TJPF_CMYK, flags)
           : tjDecompress2(d->tj, p, (unsigned long)n, img->data, w, (int)img->stride, h, TJPF_RGB, flags);
  if (rc != 0) {
    int fatal = d->strict || tjGetErrorCode(d->tj) != TJERR_WARNING;
    if (fatal)
      ri__err_set(&d->err, RI_ERR_PARSE, "'%s': corrupt or truncated JPEG: %s", name, tjGetErrorStr2(d->tj));
    ri__decoder_drop_tj(d);
    if (fatal) {
      ri__free(tmp);
      ri_image_free(img);
      return RI_ERR_PARSE;
    }
  }
  if (cmyk) {
    /* Adobe convention (what libjpeg-turbo writes and Photoshop stores): samples are inverted, so
     * R = C * K / 255 etc., rounded to nearest. */
    for (int y = 0; y < h; y++) {
      const unsigned char *s = tmp + (size_t)y * w * 4;
      uint8_t *o = img->data + (size_t)y * img->stride;
      for (int x = 0; x < w; x++) {
        unsigned k = s[4 * x + 3];
        o[3 * x + 0] = (uint8_t)((s[4 * x + 0] * k + 127) / 255);
        o[3 * x + 1] = (uint8_t)((s[4 * x + 1] * k + 127) / 255);
        o[3 * x + 2] = (uint8_t)((s[4 * x + 2] * k + 127) / 255);
      }
    }
    ri__free(tmp);
  }
  if (orientation != 1) {
    ri_image *rot = NULL;
    st = apply_orientation(img, orientation, &rot, &d->err);
    ri_image_free(img);
    if (st != RI_OK) return ri__err_prefix(&d->err, "'%s'", name);
    img = rot;
  }
  d->full_w = orientation >= 5 ? full_h : full_w;
  d->full_h = orientation >= 5 ? full_w : full_h;
  *out = img;
  return RI_OK;
}

/* ---- PNG -------------------------------------------------------------------------------------------- */

/* libspng (and the zlib it drives) allocate through these hooks. libspng reports a failed zlib allocation
 * as a stream error, so the hooks note failures in a per-thread flag that turns the status into
 * RI_ERR_NO_MEMORY. */
static _Thread_local int g_spng_oom;
static void *spng_malloc_hook(size_t n) {
  void *p = ri__malloc(n);
  if (!p) g_spng_oom = 1;
  return p;
}
static void *spng_realloc_hook(void *p, size_t n) {
  void *q = ri__realloc(p, n);
  if (!q && n) g_spng_oom = 1;
  return q;
}
static void *spng_calloc_hook(size_t c, size_t n) {
  void *p = ri__calloc(c, n);
  if (!p) g_spng_oom = 1;
  return p;
}
static void spng_free_hook(void *p) { ri__free(p); }

static ri_status png_status(int rc) {
  return (rc == SPNG_EMEM || g_spng_oom) ? RI_ERR_NO_MEMORY : RI_ERR_PARSE;
}

/* 1 when the complete IEND chunk (length 0, type, fixed CRC) occurs after the signature. */
static int has_iend(const unsigned char *p, size_t n) {
  static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  for (size_t i = n >= 12 ? n - 12 : 0; i >= 8 && n >= 20; i--)
    if (memcmp(p + i, iend, 12) == 0) return 1;
  return 0;
}

static ri_status decode_png(ri_decoder_t *d, const unsigned char *p, size_t n, const char *name,
                            ri_image **out) {
  struct spng_alloc alloc = {spng_malloc_hook, spng_realloc_hook, spng_calloc_hook, spng_free_hook};
  g_spng_oom = 0;
  spng_ctx *ctx = spng_ctx_new2(&alloc, 0);
  if (!ctx) return ri__err_set(&d->err, RI_ERR_NO_MEMORY, "'%s': cannot create a PNG decoder", name);
  ri_status st = RI_OK;
  ri_image *img = NULL;
  /* Chunk size and the memory kept for ancillary chunks are bounded by the file-size limit (a chunk length
   * is at most 2^31 - 1 by the PNG specification, which libspng enforces). */
  size_t cache = d->limits.max_file_bytes > SIZE_MAX ? SIZE_MAX : (size_t)d->limits.max_file_bytes;
  size_t chunk = cache > 0x7FFFFFFFu ? 0x7FFFFFFFu : cache;
  int rc = spng_set_chunk_limits(ctx, chunk, cache);
  if (!rc) rc = spng_set_png_buffer(ctx, p, n);
  struct spng_ihdr ihdr;
  if (!rc) rc = spng_get_ihdr(ctx, &ihdr);
  if (rc) {
    st = ri__err_set(&d->err, png_status(rc), "'%s': invalid PNG header: %s", name, spng_strerror(rc));
    goto done;
  }
  st = ri__decoder_check_pixels(d, name, "PNG", ihdr.width, ihdr.height);
  if (st != RI_OK) goto done;
  size_t need = 0;
  rc = spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &need);
  if (rc) {
    st = ri__err_set(&d->err, RI_ERR_PARSE, "'%s': unsupported PNG (%ux%u, color type %u, depth %u): %s",
                     name, ihdr.width, ihdr.height, ihdr.color_type, ihdr.bit_depth, spng_strerror(rc));
    goto done;
  }
  st = image_alloc((int)ihdr.width, (int)ihdr.height, &img, &d->err);
  if (st != RI_OK) goto done;
  if (need != img->stride * (size_t)img->height) {
    st = ri__err_set(&d->err, RI_ERR_INTERNAL, "'%s': PNG decoder wants %zu bytes for %ux%u RGB", name, need,
                     ihdr.width, ihdr.height);
    goto done;
  }
  /* No SPNG_DECODE_TRNS / GAMMA: alpha and transparency are dropped, samples are not gamma corrected. */
  rc = spng_decode_image(ctx, img->data, need, SPNG_FMT_RGB8, 0);
  if (rc) {
    st = ri__err_set(&d->err, png_status(rc), "'%s': corrupt or truncated PNG: %s", name, spng_strerror(rc));
    goto done;
  }
  /* The image stream can end before the file does (last IDAT CRC, IEND); strict mode reads the chunks
   * after the image up to IEND so that a truncated file is reported. */
  if (d->strict && (rc = spng_decode_chunks(ctx)) != 0) {
    st = ri__err_set(&d->err, png_status(rc), "'%s': corrupt or truncated PNG after the image data: %s", name,
                     spng_strerror(rc));
    goto done;
  }
  /* libspng accepts an IEND chunk whose CRC is cut off; the complete 12-byte IEND is required here. */
  if (d->strict && !has_iend(p, n)) {
    st = ri__err_set(&d->err, RI_ERR_PARSE, "'%s': truncated PNG: no complete IEND chunk", name);
    goto done;
  }
done:
  spng_ctx_free(ctx);
  if (st != RI_OK) {
    ri_image_free(img);
    return st;
  }
  d->full_w = img->width;
  d->full_h = img->height;
  *out = img;
  return RI_OK;
}

/* ---- entry points ----------------------------------------------------------------------------------- */

ri_status ri__decode_check_input(ri_decoder_t *d, size_t n, const char *name) {
  if (n == 0) return ri__err_set(&d->err, RI_ERR_PARSE, "'%s': empty input (0 bytes), not an image", name);
  if ((uint64_t)n > d->limits.max_file_bytes)
    return ri__err_set(&d->err, RI_ERR_LIMIT, "'%s': %zu bytes exceeds the decode limit of %llu bytes", name,
                       n, (unsigned long long)d->limits.max_file_bytes);
  return RI_OK;
}

ri_status ri__decode_any(ri_decoder_t *d, const unsigned char *p, size_t n, const char *name,
                         ri_image **out) {
  RI__TRY(ri__decode_check_input(d, n, name));
  /* A prefix of a signature is treated as that format so that truncated files report the decoder's
   * reason (RI_ERR_PARSE) rather than "unknown format". */
  if (ri__is_jpeg(p, n)) return decode_jpeg(d, p, n, name, out);
  if (memcmp(p, k_png_sig, n < 8 ? n : 8) == 0) return decode_png(d, p, n, name, out);
  const char *other = other_format_name(p, n);
  if (other)
    return ri__err_set(&d->err, RI_ERR_UNSUPPORTED, "'%s': %s images are not supported (JPEG and PNG only)",
                       name, other);
  char hex[3 * 8 + 1] = {0};
  for (size_t i = 0; i < n && i < 8; i++)
    snprintf(hex + 3 * i, 4, "%02x ", p[i]);
  if (n) hex[3 * (n < 8 ? n : 8) - 1] = 0;
  return ri__err_set(&d->err, RI_ERR_UNSUPPORTED,
                     "'%s': not a JPEG or PNG image (unrecognised first bytes: %s; %zu bytes)", name, hex, n);
}

ri_status ri_decoder_decode_memory(ri_decoder_t *d, const void *data, size_t size, const char *name,
                                   ri_image **out) {
  if (!d) return RI_ERR_INVALID_ARG;
  ri__err_clear(&d->err);
  ri__decoder_unload(d);
  if (!name) name = "<memory>";
  if (!out) return ri__err_set(&d->err, RI_ERR_INVALID_ARG, "'%s': out is NULL", name);
  *out = NULL;
  if (!data && size) return ri__err_set(&d->err, RI_ERR_INVALID_ARG, "'%s': data is NULL", name);
  return ri__decode_any(d, data, size, name, out);
}

ri_status ri_decoder_decode_file(ri_decoder_t *d, const char *path, ri_image **out) {
  if (!d) return RI_ERR_INVALID_ARG;
  ri__err_clear(&d->err);
  ri__decoder_unload(d);
  if (!out) return ri__err_set(&d->err, RI_ERR_INVALID_ARG, "decode_file: out is NULL");
  *out = NULL;
  if (!path) return ri__err_set(&d->err, RI_ERR_INVALID_ARG, "decode_file: path is NULL");
  unsigned char *buf = NULL;
  size_t n = 0;
  RI__TRY(ri__decoder_read_file(d, path, &buf, &n));
  ri_status st = ri__decode_any(d, buf, n, path, out);
  ri__free(buf);
  return st;
}

ri_status ri__decoder_read_file(ri_decoder_t *d, const char *path, unsigned char **data, size_t *size) {
  *data = NULL;
  *size = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return ri__err_set(&d->err, (e == ENOENT || e == ENOTDIR) ? RI_ERR_NOT_FOUND : RI_ERR_IO,
                       "'%s': cannot open: %s", path, strerror(e));
  }
  ri_status st = RI_OK;
  unsigned char *buf = NULL;
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    st = ri__err_set(&d->err, RI_ERR_IO, "'%s': cannot stat: %s", path, strerror(errno));
    goto done;
  }
  if (!S_ISREG(sb.st_mode)) {
    st = ri__err_set(&d->err, RI_ERR_IO, "'%s': not a regular file", path);
    goto done;
  }
  if (sb.st_size == 0) {
    st = ri__err_set(&d->err, RI_ERR_PARSE, "'%s': empty file (0 bytes), not an image", path);
    goto done;
  }
  if ((uint64_t)sb.st_size > d->limits.max_file_bytes || (uint64_t)sb.st_size > SIZE_MAX) {
    st = ri__err_set(&d->err, RI_ERR_LIMIT, "'%s': file of %lld bytes exceeds the decode limit of %llu bytes",
                     path, (long long)sb.st_size, (unsigned long long)d->limits.max_file_bytes);
    goto done;
  }
  size_t n = (size_t)sb.st_size, got = 0;
  buf = ri__malloc(n);
  if (!buf) {
    st = ri__err_set(&d->err, RI_ERR_NO_MEMORY, "'%s': out of memory reading %zu bytes", path, n);
    goto done;
  }
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      st = ri__err_set(&d->err, RI_ERR_IO, "'%s': read failed after %zu bytes: %s", path, got,
                       strerror(errno));
      goto done;
    }
    if (r == 0) {
      st =
          ri__err_set(&d->err, RI_ERR_IO, "'%s': file shrank while reading (%zu of %zu bytes)", path, got, n);
      goto done;
    }
    got += (size_t)r;
  }
  *data = buf;
  *size = n;
  buf = NULL;
done:
  ri__free(buf);
  close(fd);
  return st;
}
