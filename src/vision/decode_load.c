/* ri_decoder_load_* / ri_decoder_preprocess_loaded: decoding an image into the decoder and preprocessing it
 * from there. Baseline and progressive JPEGs in YCbCr with 4:4:4, 4:2:2, 4:2:0 or 4:4:0 subsampling, and
 * grayscale JPEGs, are decoded to their planes (TurboJPEG's YUV API: no chroma upsampling and no colour
 * conversion) and resized by resize_ycc.c; every other input is decoded to RGB as by
 * ri_decoder_decode_memory and preprocessed by ri_preprocess. */
#include <string.h>
#include <turbojpeg.h>

#include "core/alloc.h"
#include "vision/decoder.h"
#include "vision/vision_internal.h"

void ri__decoder_unload(ri_decoder_t *d) {
  ri_image_free(d->rgb);
  d->rgb = NULL;
  ri__free(d->name);
  d->name = NULL;
  d->loaded = RI__LOADED_NONE;
  memset(&d->ycc, 0, sizeof d->ycc);
  d->full_w = d->full_h = 0;
}

ri_status ri_decoder_set_jpeg_ycbcr(ri_decoder_t *d, int enabled) {
  if (!d) return RI_ERR_INVALID_ARG;
  ri__err_clear(&d->err);
  d->jpeg_ycbcr = enabled != 0;
  return RI_OK;
}

/* Make *buf hold at least n bytes (contents not kept). */
static ri_status reserve(unsigned char **buf, size_t *cap, size_t n, ri__err *err) {
  if (*cap >= n) return RI_OK;
  ri__free(*buf);
  *cap = 0;
  *buf = ri__malloc(n);
  if (!*buf) return RI__OOM(err);
  *cap = n;
  return RI_OK;
}

/* dst (h rows of w bytes) = src (w rows of h bytes) transposed: dst[y][x] = src[x][y]. Blocks of 32 x 32
 * keep both sides in cache. */
static void transpose_plane(const uint8_t *restrict src, int h, int w, uint8_t *restrict dst) {
  for (int by = 0; by < h; by += 32)
    for (int bx = 0; bx < w; bx += 32) {
      int ey = by + 32 < h ? by + 32 : h, ex = bx + 32 < w ? bx + 32 : w;
      for (int y = by; y < ey; y++)
        for (int x = bx; x < ex; x++)
          dst[(size_t)y * (size_t)w + (size_t)x] = src[(size_t)x * (size_t)h + (size_t)y];
    }
}

/* 1 for the JPEGs that are decoded to planes: YCbCr with 4:4:4, 4:2:2, 4:2:0 or 4:4:0, and grayscale. Other
 * subsamplings (4:1:1: libjpeg replicates its chroma instead of interpolating) and RGB, CMYK or YCCK JPEGs go
 * the RGB way. */
static int planar_ok(int subsamp, int cs) {
  if (cs == TJCS_GRAY) return subsamp == TJSAMP_GRAY;
  return cs == TJCS_YCbCr &&
         (subsamp == TJSAMP_444 || subsamp == TJSAMP_422 || subsamp == TJSAMP_420 || subsamp == TJSAMP_440);
}

/* Decode a JPEG (header already read: stored size w x h, subsampling ss) at full size to planes and
 * describe them, with the EXIF orientation as a transposition of the planes (orientations 5..8) and flips of
 * the sampling. */
static ri_status load_planes(ri_decoder_t *d, const unsigned char *p, size_t n, const char *name, int w,
                             int h, int ss, int orientation) {
  const int transpose = orientation >= 5, sw = w, sh = h;
  const int ncomp = ss == TJSAMP_GRAY ? 1 : 3;
  const int hf = tjMCUWidth[ss] / 8, vf = tjMCUHeight[ss] / 8;
  int pw[3] = {0, 0, 0}, ph[3] = {0, 0, 0};
  size_t off[3] = {0, 0, 0}, total = 0;
  for (int i = 0; i < ncomp; i++) {
    pw[i] = tjPlaneWidth(i, sw, ss);
    ph[i] = tjPlaneHeight(i, sh, ss);
    size_t sz;
    if (pw[i] < 1 || ph[i] < 1 || !ri__mul_size((size_t)pw[i], (size_t)ph[i], &sz) ||
        !ri__add_size(total, sz, &total))
      return ri__err_set(&d->err, RI_ERR_LIMIT, "'%s': JPEG of %dx%d: plane %d of %dx%d samples is too large",
                         name, w, h, i, pw[i], ph[i]);
    off[i] = total - sz;
  }
  if (ncomp == 3 &&
      (pw[1] != (sw + hf - 1) / hf || ph[1] != (sh + vf - 1) / vf || pw[2] != pw[1] || ph[2] != ph[1]))
    return ri__err_set(&d->err, RI_ERR_INTERNAL, "'%s': unexpected chroma plane size %dx%d for %dx%d", name,
                       pw[1], ph[1], sw, sh);
  RI__TRY(reserve(&d->planes, &d->planes_cap, total, &d->err));
  unsigned char *pl[3] = {d->planes + off[0], d->planes + off[1], d->planes + off[2]};
  int strides[3] = {pw[0], pw[1], pw[2]};
  const int flags = TJFLAG_LIMITSCANS | (d->strict ? TJFLAG_STOPONWARNING : 0);
  if (tjDecompressToYUVPlanes(d->tj, p, (unsigned long)n, pl, sw, strides, sh, flags) != 0) {
    int fatal = d->strict || tjGetErrorCode(d->tj) != TJERR_WARNING;
    if (fatal)
      ri__err_set(&d->err, RI_ERR_PARSE, "'%s': corrupt or truncated JPEG: %s", name, tjGetErrorStr2(d->tj));
    ri__decoder_drop_tj(d);
    if (fatal) return RI_ERR_PARSE;
  }
  if (transpose) {
    RI__TRY(reserve(&d->tplanes, &d->tplanes_cap, total, &d->err));
    for (int i = 0; i < ncomp; i++) {
      transpose_plane(pl[i], pw[i], ph[i], d->tplanes + off[i]);
      pl[i] = d->tplanes + off[i];
      int t = pw[i];
      pw[i] = ph[i];
      ph[i] = t;
    }
  }
  /* Orientation 2..8 as (transpose, mirror across, mirror down) of the stored planes: 2 (0,1,0),
   * 3 (0,1,1), 4 (0,0,1), 5 (1,0,0), 6 (1,1,0), 7 (1,1,1), 8 (1,0,1). */
  static const unsigned char fx[9] = {0, 0, 1, 1, 0, 0, 1, 1, 0}, fy[9] = {0, 0, 0, 1, 1, 0, 0, 1, 1};
  ri__ycc_image *y = &d->ycc;
  y->width = transpose ? sh : sw;
  y->height = transpose ? sw : sh;
  y->gray = ncomp == 1;
  y->hf = ncomp == 1 ? 1 : transpose ? vf : hf;
  y->vf = ncomp == 1 ? 1 : transpose ? hf : vf;
  y->flip_x = fx[orientation];
  y->flip_y = fy[orientation];
  y->y = pl[0];
  y->y_stride = (size_t)pw[0];
  y->cb = ncomp == 3 ? pl[1] : NULL;
  y->cr = ncomp == 3 ? pl[2] : NULL;
  y->c_stride = ncomp == 3 ? (size_t)pw[1] : 0;
  y->cw = ncomp == 3 ? pw[1] : 0;
  y->ch = ncomp == 3 ? ph[1] : 0;
  d->full_w = transpose ? h : w;
  d->full_h = transpose ? w : h;
  d->loaded = RI__LOADED_YCC;
  return RI_OK;
}

static ri_status load(ri_decoder_t *d, const unsigned char *p, size_t n, const char *name) {
  size_t len = strlen(name);
  d->name = ri__malloc(len + 1);
  if (!d->name) return RI__OOM(&d->err);
  memcpy(d->name, name, len + 1);
  if (d->jpeg_ycbcr && ri__is_jpeg(p, n)) {
    int w, h, ss, cs;
    RI__TRY(ri__decode_check_input(d, n, name));
    RI__TRY(ri__jpeg_header(d, p, n, name, &w, &h, &ss, &cs));
    /* A decode reduced by the scale hint goes the RGB way: libjpeg then computes chroma at the reduced
     * size with scaled IDCTs, whereas its reduced planes keep the subsampling, a quarter of the chroma
     * resolution for 4:2:0 at 1/2 (the planar path would differ from the RGB path by far more than
     * rounding). */
    int orientation = ri__jpeg_exif_orientation(p, n);
    if (planar_ok(ss, cs) && ri__jpeg_scale_denom(d, w, h, orientation >= 5) == 1)
      return load_planes(d, p, n, name, w, h, ss, orientation);
  }
  RI__TRY(ri__decode_any(d, p, n, name, &d->rgb));
  d->loaded = RI__LOADED_RGB;
  return RI_OK;
}

/* A failed load leaves nothing loaded and the full size 0 x 0. */
static ri_status load_result(ri_decoder_t *d, ri_status st) {
  if (st != RI_OK) {
    ri__err e = d->err;
    ri__decoder_unload(d);
    d->err = e;
  }
  return st;
}

ri_status ri_decoder_load_memory(ri_decoder_t *d, const void *data, size_t size, const char *name) {
  if (!d) return RI_ERR_INVALID_ARG;
  ri__err_clear(&d->err);
  ri__decoder_unload(d);
  if (!name) name = "<memory>";
  if (!data && size) return ri__err_set(&d->err, RI_ERR_INVALID_ARG, "'%s': data is NULL", name);
  return load_result(d, load(d, data, size, name));
}

ri_status ri_decoder_load_file(ri_decoder_t *d, const char *path) {
  if (!d) return RI_ERR_INVALID_ARG;
  ri__err_clear(&d->err);
  ri__decoder_unload(d);
  if (!path) return ri__err_set(&d->err, RI_ERR_INVALID_ARG, "load_file: path is NULL");
  unsigned char *buf = NULL;
  size_t n = 0;
  RI__TRY(ri__decoder_read_file(d, path, &buf, &n));
  ri_status st = load(d, buf, n, path);
  ri__free(buf);
  return load_result(d, st);
}

ri_status ri__decoder_preprocess_loaded_isa(ri_decoder_t *d, const ri_preprocess_spec *spec, void *dst,
                                            ri_image_transform *transform, ri__resize_isa isa) {
  if (!d) return RI_ERR_INVALID_ARG;
  ri__err_clear(&d->err);
  if (d->loaded == RI__LOADED_NONE)
    return ri__err_set(&d->err, RI_ERR_INVALID_ARG,
                       "preprocess_loaded: no image is loaded (no successful ri_decoder_load_* since the "
                       "last decode call)");
  ri_image_transform tf;
  ri_status st;
  if (d->loaded == RI__LOADED_YCC) {
    st = ri__preprocess_ycc(&d->ycc, spec, dst, &tf, &d->plan, &d->err, isa);
  } else {
    ri_vision_error ve;
    st = ri__preprocess_isa(d->rgb, spec, dst, &tf, &ve, isa);
    if (st != RI_OK) ri__err_set(&d->err, st, "%s", ve.msg);
  }
  if (st != RI_OK) return ri__err_prefix(&d->err, "'%s'", d->name);
  ri_image_transform_set_source(&tf, d->full_w, d->full_h);
  if (transform) *transform = tf;
  return RI_OK;
}

ri_status ri_decoder_preprocess_loaded(ri_decoder_t *d, const ri_preprocess_spec *spec, void *dst,
                                       ri_image_transform *transform) {
  return ri__decoder_preprocess_loaded_isa(d, spec, dst, transform, RI__RESIZE_AUTO);
}
