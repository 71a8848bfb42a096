/* Internal view of the decoder handle, shared by decode.c (RGB decoding, limits, EXIF) and decode_load.c
 * (ri_decoder_load_*: JPEGs kept as YCbCr planes for ri_decoder_preprocess_loaded). */
#ifndef RI_VISION_DECODER_H
#define RI_VISION_DECODER_H

#include <stddef.h>
#include <stdint.h>
#include <turbojpeg.h>

#include "core/err.h"
#include "runinfer/vision.h"
#include "vision/resize_ycc.h"

/* What the last ri_decoder_load_* call left for ri_decoder_preprocess_loaded. */
typedef enum { RI__LOADED_NONE = 0, RI__LOADED_RGB = 1, RI__LOADED_YCC = 2 } ri__loaded_kind;

struct ri_decoder {
  ri_decode_limits limits;
  int strict;
  int hint_w, hint_h; /* fast-decode target, 0 x 0 when off */
  int full_w, full_h; /* full upright size of the last decoded image, 0 x 0 after a failure */
  int jpeg_ycbcr;     /* ri_decoder_set_jpeg_ycbcr: loads keep eligible JPEGs as planes */
  tjhandle tj;        /* created on the first JPEG and reused */
  ri__err err;
  /* The loaded image: RGB (rgb) or planes (ycc, pointing into planes or tplanes); name copies the source
   * name for error messages. planes / tplanes are kept from load to load and only grow. */
  ri__loaded_kind loaded;
  ri_image *rgb;
  ri__ycc_image ycc;
  char *name;
  unsigned char *planes, *tplanes;
  size_t planes_cap, tplanes_cap;
  ri__ycc_plan *plan; /* sampling plan of the last planar preprocessing, reused for the same geometry */
};

/* 1 when the data starts like a JPEG (FF D8); a truncated signature counts, so that the JPEG decoder
 * reports why the data is bad. */
static inline int ri__is_jpeg(const unsigned char *p, size_t n) {
  return n >= 2 && p[0] == 0xFF && p[1] == 0xD8;
}

/* Discard the loaded image (the plane buffers stay) and clear the full size. */
void ri__decoder_unload(ri_decoder_t *d);
/* Read a whole regular file into a new buffer (*data, ri__free it) after the file-size limit check; errors
 * name the path (RI_ERR_NOT_FOUND, RI_ERR_IO, RI_ERR_LIMIT, RI_ERR_PARSE for an empty file,
 * RI_ERR_NO_MEMORY). */
ri_status ri__decoder_read_file(ri_decoder_t *d, const char *path, unsigned char **data, size_t *size);
/* The checks every input gets before its format is looked at: not empty, within the file-size limit. */
ri_status ri__decode_check_input(ri_decoder_t *d, size_t n, const char *name);
/* ri_decoder_decode_memory after the argument checks: JPEG or PNG to a new RGB image. */
ri_status ri__decode_any(ri_decoder_t *d, const unsigned char *p, size_t n, const char *name, ri_image **out);
/* TurboJPEG header of a JPEG (the instance is created when missing): stored size, TJSAMP_* subsampling and
 * TJCS_* colour space, with the pixel limit checked. RI_ERR_PARSE / RI_ERR_LIMIT / RI_ERR_NO_MEMORY. */
ri_status ri__jpeg_header(ri_decoder_t *d, const unsigned char *p, size_t n, const char *name, int *w, int *h,
                          int *subsamp, int *cs);
/* RI_ERR_PARSE for an empty size, RI_ERR_LIMIT above max_pixels; fmt names the format in the message. */
ri_status ri__decoder_check_pixels(ri_decoder_t *d, const char *name, const char *fmt, uint64_t w,
                                   uint64_t h);
/* A TurboJPEG instance that failed part-way may keep libjpeg state from the aborted stream (a later header
 * read then sees a "tables-only" stream), so it is replaced after any failure or warning. */
void ri__decoder_drop_tj(ri_decoder_t *d);
/* Denominator (1, 2, 4 or 8) of the DCT scaling the scale hint asks for a w x h JPEG (stored size; swap
 * when the EXIF orientation turns it by 90 degrees): the largest one whose rounded-up size still covers
 * the target in both axes, 1 when the hint is off. */
int ri__jpeg_scale_denom(const ri_decoder_t *d, int w, int h, int swap);
/* EXIF orientation (1..8) from the first Exif APP1 segment before the first SOS of a JPEG, 1 when none
 * or malformed. */
int ri__jpeg_exif_orientation(const unsigned char *p, size_t n);
/* ri_decoder_preprocess_loaded with a chosen kernel set (tests compare both). */
ri_status ri__decoder_preprocess_loaded_isa(ri_decoder_t *d, const ri_preprocess_spec *spec, void *dst,
                                            ri_image_transform *transform, ri__resize_isa isa);

#endif
