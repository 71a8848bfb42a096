/* Internal interface of the planar YCbCr resize (src/vision/resize_ycc.c): a JPEG's decoded planes are
 * resized straight into a model input and converted to RGB only at the output pixels. */
#ifndef RI_VISION_RESIZE_YCC_H
#define RI_VISION_RESIZE_YCC_H

#include <stddef.h>
#include <stdint.h>

#include "vision/resize.h"

/* Planar 8-bit YCbCr as libjpeg decodes it: full-range BT.601 (JFIF), chroma planes subsampled by hf across
 * and vf down with centred siting (chroma sample j covers luma pixels [j * hf, (j + 1) * hf), so its centre
 * is at luma coordinate (j + 0.5) * hf, pixel edges at integers).
 *   width, height  size of the upright image in pixels, which is also the luma plane's size.
 *   gray           1: only the Y plane exists, and R = G = B = Y.
 *   flip_x/flip_y  1: the upright image is the stored planes mirrored across / down (EXIF orientations
 *                  2, 3, 4 and the flips that remain after a transposition).
 *   y, cb, cr      plane rows; y_stride / c_stride bytes apart. cw x ch is the chroma plane size, at least
 *                  ceil(width / hf) x ceil(height / vf) samples (cb, cr unused when gray). */
typedef struct {
  int width, height;
  int gray;
  int hf, vf;
  int flip_x, flip_y;
  const uint8_t *y, *cb, *cr;
  size_t y_stride, c_stride;
  int cw, ch;
} ri__ycc_image;

/* Sampling tables and scratch rows for one geometry (image size, subsampling, mirroring, region). */
typedef struct ri__ycc_plan ri__ycc_plan;
void ri__ycc_plan_free(ri__ycc_plan *plan);

/* The ri__resize_into of planar YCbCr: each output pixel of the region r takes Y by ri__resize_into's
 * half-pixel bilinear interpolation of the luma plane, and Cb, Cr by what that interpolation gives when
 * applied to chroma upsampled the way libjpeg does it (linear interpolation at pixel centres, centred
 * siting; up to three taps per axis on the chroma plane), converts them with the JFIF equations
 * R = Y + 1.402 (Cr - 128), G = Y - 0.344136 (Cb - 128) - 0.714136 (Cr - 128), B = Y + 1.772 (Cb - 128),
 * clamps to 0..255 and then reorders, normalises and stores like ri__resize_into. img must be valid (checked
 * by the caller: sizes at least 1, cw = ceil(width / hf) and ch = ceil(height / vf) unless gray). cache as
 * for ri__preprocess_ycc. Fails only with RI_ERR_NO_MEMORY or RI_ERR_LIMIT (a plane wider than the kernels'
 * index range). */
ri_status ri__ycc_resize_into(const ri__ycc_image *img, const ri_preprocess_spec *spec, ri__region r,
                              void *dst, ri__resize_isa isa, ri__ycc_plan **cache, ri__err *err);

/* ri_preprocess for planar YCbCr (borders, region and transform as ri_preprocess computes them for an
 * image of img->width x img->height). cache (optional) keeps the sampling plan between calls: a plan for
 * another geometry in *cache is replaced (the caller frees the last one with ri__ycc_plan_free); without
 * it the plan is built and freed in the call. */
ri_status ri__preprocess_ycc(const ri__ycc_image *img, const ri_preprocess_spec *spec, void *dst,
                             ri_image_transform *transform, ri__ycc_plan **cache, ri__err *err,
                             ri__resize_isa isa);

#endif
