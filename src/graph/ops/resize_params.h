/* Resolved parameters of Resize (ONNX opsets 11..21) and the coordinate rules every backend must follow.
 *
 * Supported: mode nearest (nearest_mode round_prefer_floor, round_prefer_ceil, floor, ceil) and linear
 * (separable, on any set of axes: bilinear when the last two are resized); coordinate_transformation_mode
 * half_pixel, half_pixel_symmetric (opset 19+), pytorch_half_pixel, align_corners, asymmetric,
 * tf_half_pixel_for_nn (ONNX's name, deprecated since opset 13 but still accepted, as ONNX Runtime does;
 * "tf_half_pixel_for_nearest" is taken as the same); the target given by the scales or the sizes input; the
 * axes attribute
 * (opset 18+). X is float32, uint8 or int8; the output has X's type. roi and exclude_outside have no
 * effect in these modes and are ignored; extrapolation_value is only used by tf_crop_and_resize.
 * Rejected with RI_ERR_UNSUPPORTED: mode cubic, tf_crop_and_resize, antialias != 0,
 * keep_aspect_ratio_policy other than stretch.
 *
 * Arithmetic follows ONNX Runtime: coordinates are computed in float; the output size along a scaled
 * axis is (int64)((float)in * scale); with sizes, the scale of an axis is (float)out / (float)in. Linear
 * mode clamps the source coordinate to [0, in - 1] and blends the two neighbouring input elements (in
 * float; uint8 and int8 results are truncated toward zero, as ONNX Runtime does). An axis
 * whose scale is exactly 1 and whose output length equals its input length is copied unchanged, whatever
 * the coordinate transformation (ONNX Runtime does the same; tf_half_pixel_for_nearest would otherwise
 * shift it by half an element). */
#ifndef RI_GRAPH_OPS_RESIZE_PARAMS_H
#define RI_GRAPH_OPS_RESIZE_PARAMS_H

#include <stdint.h>

#include "graph/ir.h"

typedef enum { RI__RESIZE_NEAREST = 0, RI__RESIZE_LINEAR = 1 } ri__resize_mode;

typedef enum {
  RI__RESIZE_HALF_PIXEL = 0,               /* (x + 0.5) / scale - 0.5 */
  RI__RESIZE_HALF_PIXEL_SYMMETRIC = 1,     /* half_pixel shifted so that the output is centred on the input */
  RI__RESIZE_PYTORCH_HALF_PIXEL = 2,       /* half_pixel, or 0 when the output length is 1 */
  RI__RESIZE_ALIGN_CORNERS = 3,            /* x * (in - 1) / (out - 1), or 0 when out == 1 */
  RI__RESIZE_ASYMMETRIC = 4,               /* x / scale */
  RI__RESIZE_TF_HALF_PIXEL_FOR_NEAREST = 5 /* (x + 0.5) / scale */
} ri__resize_coord;

typedef enum {
  RI__RESIZE_ROUND_PREFER_FLOOR = 0, /* nearest integer, halves go down */
  RI__RESIZE_ROUND_PREFER_CEIL = 1,  /* nearest integer, halves go up */
  RI__RESIZE_FLOOR = 2,
  RI__RESIZE_CEIL = 3
} ri__resize_nearest;

typedef enum {
  RI__RESIZE_TARGET_RUNTIME = 0, /* scales/sizes are not constants: read from the inputs' host data */
  RI__RESIZE_TARGET_SCALES = 1,  /* constant scales, copied into `scales` */
  RI__RESIZE_TARGET_SIZES = 2    /* constant sizes, copied into `sizes` */
} ri__resize_target;

typedef struct {
  ri__resize_mode mode;
  ri__resize_coord coord;
  ri__resize_nearest nearest;
  int n_axes;                 /* 0: scales/sizes cover every axis of X; else the `axes` attribute's length */
  int64_t axes[RI__MAX_RANK]; /* the `axes` attribute as written (may be negative) */
  ri__resize_target target;
  int n_target; /* number of constant scales or sizes */
  float scales[RI__MAX_RANK];
  int64_t sizes[RI__MAX_RANK];
} ri__resize_params;

/* Geometry of one Resize for a given X shape. */
typedef struct {
  ri__shape out;
  float scale[RI__MAX_RANK]; /* scale of every axis of X (1 on axes that are not resized) */
} ri__resize_plan;

/* Output shape and per-axis scales for input X = in[0]. The target comes from p when constant, else from
 * in[2] (scales, float32) or in[3] (sizes, int64) whose data must then be set; n_in is the number of
 * entries in `in` (absent inputs have dtype RI_DTYPE_UNDEFINED). Fails naming node n with RI_ERR_SHAPE on
 * bad counts or values, RI_ERR_UNSUPPORTED when the target's data is unknown. */
ri_status ri__resize_plan_get(const ri__node *n, const ri__resize_params *p, const ri__tensor *in, int n_in,
                              ri__resize_plan *plan, ri__err *err);

/* Source coordinate (in input elements, unclamped) of output index x along an axis with the given scale,
 * input length and output length. */
float ri__resize_source(const ri__resize_params *p, int64_t x, float scale, int64_t in_len, int64_t out_len);

/* Nearest-mode input index of source coordinate c, clamped to [0, in_len - 1]. */
int64_t ri__resize_nearest_index(const ri__resize_params *p, float c, int64_t in_len);

/* Linear-mode neighbours of source coordinate c: *i0 <= *i1 in [0, in_len - 1] and the weight *w in [0, 1]
 * of *i1 (the weight of *i0 is 1 - *w). */
void ri__resize_linear_taps(float c, int64_t in_len, int64_t *i0, int64_t *i1, float *w);

#endif
