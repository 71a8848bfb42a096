/* Internal interface of the resize kernels behind ri_preprocess (src/vision/resize.c). */
#ifndef RI_VISION_RESIZE_H
#define RI_VISION_RESIZE_H

#include <stdint.h>

#include "core/err.h"
#include "runinfer/vision.h"

/* Kernel set. AUTO uses the AVX2+FMA kernels when the CPU has both (checked at run time) and the portable
 * C kernels otherwise; PORTABLE forces the portable ones (tests compare both with the reference). The two
 * sets differ only by float rounding (the AVX2 one fuses multiply-adds). */
typedef enum { RI__RESIZE_AUTO = 0, RI__RESIZE_PORTABLE = 1 } ri__resize_isa;

/* Rectangle of the model input that receives the resized image. */
typedef struct {
  int x, y, w, h;
} ri__region;

/* Resize img (a valid image: checked by the caller) with half-pixel bilinear interpolation to r.w x r.h
 * and write it at (r.x, r.y) of the spec->width x spec->height output dst (spec valid, r inside it, dst
 * aligned for the dtype), with output channel c taken from source channel c (RGB) or 2 - c (BGR) and
 * normalised to (v - mean[c]) * scale[c] (uint8: rounded half up and saturated to 0..255). Pixels of dst
 * outside r are not touched. Fails only with RI_ERR_NO_MEMORY (scratch memory). */
ri_status ri__resize_into(const ri_image *img, const ri_preprocess_spec *spec, ri__region r, void *dst,
                          ri__resize_isa isa, ri__err *err);

/* 1 when RI__RESIZE_AUTO runs the AVX2+FMA kernels on this CPU. */
int ri__resize_have_avx2(void);

/* Vertical blend of two 8-bit source rows into floats: out[k] = s0[k] + (s1[k] - s0[k]) * w for k < n (s1
 * is not read when w is 0). avx2 selects the AVX2+FMA kernel and may only be set when
 * ri__resize_have_avx2() is 1. */
void ri__resize_vrow(const uint8_t *s0, const uint8_t *s1, float w, float *out, int n, int avx2);

/* ri_preprocess with a chosen kernel set (ri_preprocess is this with RI__RESIZE_AUTO). */
ri_status ri__preprocess_isa(const ri_image *img, const ri_preprocess_spec *spec, void *dst,
                             ri_image_transform *transform, ri_vision_error *verr, ri__resize_isa isa);

#endif
