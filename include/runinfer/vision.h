/* runinfer: image decoding, preprocessing and detection / classification post-processing.
 *
 * Objects and lifetimes
 *   ri_image         a plain struct describing 8-bit interleaved RGB pixels. Images returned by the
 *                    decoder or ri_image_create() are owned by the library (struct and pixels in one
 *                    allocation) and released with ri_image_free(). A caller may also fill an ri_image of
 *                    its own that points at its own pixels and pass it to ri_preprocess(); such an image
 *                    must never be given to ri_image_free().
 *   ri_decoder_t     a JPEG/PNG decoder: decode limits, a reusable TurboJPEG instance and the text of the
 *                    last error. Images it returns do not refer to it and may outlive it.
 *   ri_detector_t    an SSD-style detection post-processor: its configuration, its anchors (generated or
 *                    copied in) and scratch memory reused from run to run, and the text of the last error.
 *   ri_preprocess_spec, ri_detect_config
 *                    plain configuration structs. Always start from ri_preprocess_spec_default() /
 *                    ri_detect_config_default() (or the _parse functions) so that fields added later get
 *                    their defaults. Their text forms (see _to_string / _parse) are the stable
 *                    interchange format stored as metadata in engine files.
 *
 * Thread safety
 *   A decoder and a detector may each be used by one thread at a time; use one per thread. All other
 *   functions are stateless and may be called from any number of threads at once. Text formatting and
 *   parsing of numbers do not depend on the C locale.
 *
 * Errors
 *   Every fallible call returns ri_status. Calls made on a decoder or a detector keep the text of their
 *   last error in the handle (ri_decoder_last_error(), ri_detector_last_error(): never NULL, "" when the
 *   last call succeeded; valid until the next call on that handle). Calls without a handle take an
 *   optional ri_vision_error* (NULL allowed) that receives the status and text on failure and is cleared
 *   on success. Nothing read from image data or text is trusted: malformed input yields an error status,
 *   never a crash or an abort. *_free / *_destroy (NULL) are no-ops. */
#ifndef RUNINFER_VISION_H
#define RUNINFER_VISION_H

#include <stddef.h>
#include <stdint.h>

#include "runinfer/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors for handle-less calls --------------------------------------------------------------------- */

#define RI_VISION_ERROR_MAX 512

/* Error out-buffer of the calls that have no handle. msg is always NUL-terminated. */
typedef struct {
  ri_status status;
  char msg[RI_VISION_ERROR_MAX];
} ri_vision_error;

/* ---- images ------------------------------------------------------------------------------------------- */

/* Interleaved 8-bit RGB image: pixel (x, y) channel c is data[y * stride + x * 3 + c]. channels is
 * always 3. stride >= width * 3. */
typedef struct {
  int width;
  int height;
  int channels;
  size_t stride;
  uint8_t *data;
} ri_image;

/* Allocate a width x height RGB image (1 <= width, height <= 2^20 and width * height <= 2^32 pixels)
 * with stride width * 3 and uninitialised pixels. RI_ERR_INVALID_ARG for bad sizes, RI_ERR_NO_MEMORY. */
RI_API RI_MUST_USE ri_status ri_image_create(int width, int height, ri_image **out, ri_vision_error *err);
/* Release an image returned by this library (decoder or ri_image_create). NULL is a no-op. */
RI_API void ri_image_free(ri_image *image);

/* ---- decoding ----------------------------------------------------------------------------------------- */

/* Limits checked before any pixel memory is allocated. A value of 0 means "use the default". */
typedef struct {
  uint64_t max_file_bytes; /* encoded size; default 64 MiB (RI_DECODE_DEFAULT_MAX_FILE_BYTES) */
  uint64_t max_pixels;     /* width * height from the header; default 64 Mpx (RI_DECODE_DEFAULT_MAX_PIXELS) */
} ri_decode_limits;

#define RI_DECODE_DEFAULT_MAX_FILE_BYTES (64ull << 20)
#define RI_DECODE_DEFAULT_MAX_PIXELS     (64ull << 20)

typedef enum {
  RI_IMAGE_FORMAT_UNKNOWN = 0,
  RI_IMAGE_FORMAT_JPEG = 1,
  RI_IMAGE_FORMAT_PNG = 2
} ri_image_format;

typedef struct ri_decoder ri_decoder_t;

/* Create a decoder with default limits and strict mode on. Fails only with RI_ERR_NO_MEMORY or
 * RI_ERR_INVALID_ARG (out NULL). */
RI_API RI_MUST_USE ri_status ri_decoder_create(ri_decoder_t **out);
RI_API void ri_decoder_destroy(ri_decoder_t *decoder);
RI_API const char *ri_decoder_last_error(const ri_decoder_t *decoder);
/* Replace the limits (NULL or zero fields: defaults). */
RI_API RI_MUST_USE ri_status ri_decoder_set_limits(ri_decoder_t *decoder, const ri_decode_limits *limits);
/* Strict (default 1): any libjpeg warning (truncated data, corrupt entropy data, extraneous bytes) fails
 * the decode with RI_ERR_PARSE, and a PNG must be complete up to its IEND chunk. With strict 0 such JPEGs
 * are accepted and the damaged part is whatever libjpeg produces (usually grey), and a PNG whose image
 * data is complete is accepted without its trailing chunks. CRC and zlib errors in PNG image data always
 * fail. */
RI_API RI_MUST_USE ri_status ri_decoder_set_strict(ri_decoder_t *decoder, int strict);

/* Fast decode (default off). With target_w, target_h > 0, a JPEG whose upright size is at least twice
 * target_w x target_h in both axes is decoded at 1/2, 1/4 or 1/8 of its size by libjpeg-turbo's DCT-domain
 * scaling: the smallest of these whose size (each side divided and rounded up) still covers the target in
 * both axes. That skips most of the IDCT, colour conversion and memory traffic of a full decode, but the
 * pixels differ from those of a full decode (the scaled IDCT is another downsampling filter: an average
 * over each 2x2, 4x4 or 8x8 block rather than a bilinear sample), so a model's outputs change slightly. The
 * returned image is the reduced one; ri_decoder_last_full_size() gives the full size and
 * ri_image_transform_set_source() maps a preprocessing transform back to it. PNGs, and JPEGs smaller than
 * twice the target, are decoded at full size. target_w = target_h = 0 turns it off. Limits apply to the
 * full size. RI_ERR_INVALID_ARG for sizes outside 0..16384 or only one of them 0. */
RI_API RI_MUST_USE ri_status ri_decoder_set_scale_hint(ri_decoder_t *decoder, int target_w, int target_h);
/* Full upright size (EXIF orientation applied) of the image returned by the last successful decode; equal
 * to that image's size unless the scale hint reduced it. 0 x 0 before the first successful decode and after
 * a failed one. */
RI_API void ri_decoder_last_full_size(const ri_decoder_t *decoder, int *width, int *height);

/* Format from the first bytes (JPEG: FF D8 FF, PNG: the 8-byte signature); UNKNOWN otherwise. */
RI_API ri_image_format ri_image_detect_format(const void *data, size_t size);

/* Decode a JPEG or PNG held in memory into a new RGB image (*out, free with ri_image_free).
 *   name    used in error messages to name the source (NULL: "<memory>"); not kept.
 *   JPEG    decoded with TurboJPEG; grayscale is expanded to RGB; CMYK/YCCK JPEGs are converted with the
 *           Adobe (inverted) convention R = C*K/255; the EXIF Orientation tag (APP1, IFD0, 1..8) is
 *           applied so the result is upright (orientations 5..8 swap width and height).
 *   PNG     decoded with libspng to 8-bit RGB: grayscale expanded, palette looked up, 16-bit samples
 *           reduced to their high byte, alpha (and tRNS) dropped without compositing, no gamma applied.
 * Statuses: RI_ERR_INVALID_ARG (NULL arguments), RI_ERR_PARSE (empty, truncated or corrupt data; the
 * message names the source and gives the decoder's reason), RI_ERR_UNSUPPORTED (not JPEG or PNG; known
 * other formats are named), RI_ERR_LIMIT (size or header dimensions over the limits; nothing large is
 * allocated), RI_ERR_NO_MEMORY. */
RI_API RI_MUST_USE ri_status ri_decoder_decode_memory(ri_decoder_t *decoder, const void *data, size_t size,
                                                      const char *name, ri_image **out);
/* Read a whole file (regular files only) and decode it as above; the path names the source. A missing
 * file gives RI_ERR_NOT_FOUND, other open/read failures RI_ERR_IO (with the system's error text), a file
 * above max_file_bytes RI_ERR_LIMIT before it is read. */
RI_API RI_MUST_USE ri_status ri_decoder_decode_file(ri_decoder_t *decoder, const char *path, ri_image **out);

/* ---- preprocessing ------------------------------------------------------------------------------------ */

typedef enum { RI_LAYOUT_NHWC = 0, RI_LAYOUT_NCHW = 1 } ri_layout;
typedef enum { RI_RESIZE_BILINEAR = 0, RI_RESIZE_LETTERBOX = 1 } ri_resize_mode;
typedef enum { RI_CHANNEL_ORDER_RGB = 0, RI_CHANNEL_ORDER_BGR = 1 } ri_channel_order;

/* How a decoded image becomes one batch item of a model input.
 *   width, height  model input size in pixels (1 .. 16384 each).
 *   layout         NHWC (HWC for one item) or NCHW (CHW).
 *   dtype          RI_DTYPE_FLOAT32 or RI_DTYPE_UINT8.
 *   mean, scale    per output channel c (i.e. after reordering to `order`): y = (x - mean[c]) * scale[c]
 *                  where x is the resized pixel value in 0..255. For uint8 output y is rounded to nearest
 *                  and saturated to 0..255. A value range [lo, hi] is mean = -lo/scale, scale = (hi-lo)/255
 *                  (ri_preprocess_spec_set_range).
 *   resize         BILINEAR stretches to width x height; LETTERBOX keeps the aspect ratio, scales the image
 *                  to fit and centres it, filling the border with pad (before normalisation).
 *   pad            letterbox border value per output channel, 0..255 (default 0).
 *   order          channel order written to the model input.
 * Defaults (ri_preprocess_spec_default): 300x300, NHWC, float32, mean 0, scale 1, bilinear, pad 0, RGB. */
typedef struct {
  int width;
  int height;
  ri_layout layout;
  ri_dtype dtype;
  float mean[3];
  float scale[3];
  ri_resize_mode resize;
  float pad[3];
  ri_channel_order order;
} ri_preprocess_spec;

/* Mapping between original-image pixels and model-input pixels produced by ri_preprocess:
 *   model_x = src_x * scale_x + offset_x,   model_y = src_y * scale_y + offset_y
 * (continuous coordinates, pixel edges at integers). For stretch, offset = 0 and scale = model/src. */
typedef struct {
  int src_width, src_height;
  int dst_width, dst_height;
  double scale_x, scale_y;
  double offset_x, offset_y;
} ri_image_transform;

RI_API void ri_preprocess_spec_default(ri_preprocess_spec *spec);
/* Set mean/scale of every channel so 0..255 maps linearly onto lo..hi (lo != hi). */
RI_API RI_MUST_USE ri_status ri_preprocess_spec_set_range(ri_preprocess_spec *spec, float lo, float hi,
                                                          ri_vision_error *err);
/* Check every field; RI_ERR_INVALID_ARG names the bad field and its value. */
RI_API RI_MUST_USE ri_status ri_preprocess_spec_validate(const ri_preprocess_spec *spec,
                                                         ri_vision_error *err);
/* Bytes written by ri_preprocess for one item (width * height * 3 * element size); 0 if invalid. */
RI_API size_t ri_preprocess_output_bytes(const ri_preprocess_spec *spec);

/* Text form, keys in this order, separated by ';':
 *   size=WxH;layout=nhwc|nchw;dtype=float32|uint8;mean=m0,m1,m2;scale=s0,s1,s2;
 *   resize=bilinear|letterbox;pad=p0,p1,p2;order=rgb|bgr
 * Numbers are written with 9 significant digits so that float values round-trip exactly.
 * Writes into buf (capacity cap) and sets *needed (if not NULL) to the length + 1 required;
 * RI_ERR_LIMIT if cap is too small (buf may then be NULL). */
RI_API RI_MUST_USE ri_status ri_preprocess_spec_to_string(const ri_preprocess_spec *spec, char *buf,
                                                          size_t cap, size_t *needed, ri_vision_error *err);
/* Parse the text form. Keys may come in any order and may be omitted (defaults apply); spaces around
 * keys and values are ignored; mean, scale and pad accept one value (applied to all channels) or three;
 * range=lo,hi may replace mean and scale. Unknown or repeated keys, bad numbers and invalid values give
 * RI_ERR_PARSE naming the key. *spec is only written on success. */
RI_API RI_MUST_USE ri_status ri_preprocess_spec_parse(const char *text, ri_preprocess_spec *spec,
                                                      ri_vision_error *err);

/* Resize, reorder, normalise and write one batch item to dst (ri_preprocess_output_bytes bytes; float32
 * output must be 4-byte aligned). Bilinear interpolation uses half-pixel centres:
 * src = (dst + 0.5) * in/out - 0.5, clamped to the image, as OpenCV INTER_LINEAR and TensorFlow's
 * resize_bilinear(half_pixel_centers=True); no anti-aliasing when shrinking. transform (optional)
 * receives the geometric mapping for ri_image_transform_box. img may be any valid ri_image. */
RI_API RI_MUST_USE ri_status ri_preprocess(const ri_image *img, const ri_preprocess_spec *spec, void *dst,
                                           ri_image_transform *transform, ri_vision_error *err);
/* Compute only the transform ri_preprocess would produce for an image of src_width x src_height. */
RI_API RI_MUST_USE ri_status ri_preprocess_transform(int src_width, int src_height,
                                                     const ri_preprocess_spec *spec,
                                                     ri_image_transform *transform, ri_vision_error *err);

/* Map a box given in normalised model-input coordinates (0..1 of the model input) to original-image
 * pixels, clipped to [0, src_width] x [0, src_height]. box is {ymin, xmin, ymax, xmax}, in place. */
RI_API void ri_image_transform_box(const ri_image_transform *transform, float box[4]);
/* Re-express a transform computed on a reduced copy of an image (a fast decode) for the full image of
 * src_width x src_height, the reduced copy being taken to span the same area: scale_x is multiplied by
 * transform->src_width / src_width (likewise y) and src_width / src_height are replaced; offsets and the
 * model input size are unchanged. Nothing is done when a size is below 1 or transform is NULL. */
RI_API void ri_image_transform_set_source(ri_image_transform *transform, int src_width, int src_height);

/* ---- decoding straight into a model input ------------------------------------------------------------- */

/* Two steps that together do what ri_decoder_decode_file / _memory followed by ri_preprocess does, without
 * handing out an RGB image: ri_decoder_load_* decodes an image into the decoder, which keeps it (replacing
 * the previous one) until the next load or decode call or ri_decoder_destroy, and
 * ri_decoder_preprocess_loaded writes it as one model input item, as often as wanted (other specs too).
 *
 * JPEGs in YCbCr with 4:4:4, 4:2:2, 4:2:0 or 4:4:0 subsampling (baseline or progressive) and grayscale
 * JPEGs are decoded to their planes (no chroma upsampling, no colour conversion); preprocessing samples each
 * plane at the output pixels (luma with ri_preprocess's bilinear formula, chroma with libjpeg's centred
 * chroma upsampling composed with that bilinear) and converts YCbCr to RGB (JFIF full-range BT.601) for the
 * output pixels only. The values therefore differ from ri_decoder_decode_* + ri_preprocess only by libjpeg's
 * 8-bit rounding (at most 1.39 levels of 255) and by clamping to 0..255 after instead of before the
 * interpolation, which moves single pixels at saturated colour edges (measured in docs/decisions.md,
 * "Planar JPEG preprocessing"); grayscale JPEGs give the same values up to float rounding. The EXIF
 * orientation, the limits, strict mode and the scale hint apply as for ri_decoder_decode_*. Every other
 * input (PNG, CMYK/YCCK, RGB-coded or 4:1:1 JPEGs, and JPEGs the scale hint reduces) is decoded to RGB and
 * preprocessed with ri_preprocess, with identical results.
 * ri_decoder_set_jpeg_ycbcr(decoder, 0) sends JPEGs the RGB way too (exact ri_preprocess results); the
 * environment variable RI_JPEG_YCBCR=0 makes that the default of decoders created afterwards. */
RI_API RI_MUST_USE ri_status ri_decoder_set_jpeg_ycbcr(ri_decoder_t *decoder, int enabled);
/* Decode a file / data in memory into the decoder. Statuses and messages as ri_decoder_decode_file /
 * ri_decoder_decode_memory (name: NULL gives "<memory>"; data may be freed when the call returns). After a
 * failure nothing is loaded. ri_decoder_last_full_size gives the loaded image's full upright size. */
RI_API RI_MUST_USE ri_status ri_decoder_load_file(ri_decoder_t *decoder, const char *path);
RI_API RI_MUST_USE ri_status ri_decoder_load_memory(ri_decoder_t *decoder, const void *data, size_t size,
                                                    const char *name);
/* Preprocess the loaded image into dst (ri_preprocess_output_bytes(spec) bytes; 4-byte aligned for
 * float32) as ri_preprocess does. transform (optional) maps the full upright image's pixels to model input
 * pixels also when the scale hint made the decoder produce a reduced image (no ri_image_transform_set_source
 * needed). RI_ERR_INVALID_ARG when nothing is loaded or for a bad spec / dst (the message names the source),
 * RI_ERR_NO_MEMORY. */
RI_API RI_MUST_USE ri_status ri_decoder_preprocess_loaded(ri_decoder_t *decoder,
                                                          const ri_preprocess_spec *spec, void *dst,
                                                          ri_image_transform *transform);

/* ---- detection post-processing ------------------------------------------------------------------------ */

typedef enum {
  RI_ANCHORS_SSD = 0,         /* generated from the ssd_* fields (TF-OD ssd_anchor_generator) */
  RI_ANCHORS_TENSOR_YXHW = 1, /* supplied with ri_detector_set_anchors as (ycenter, xcenter, h, w) */
  RI_ANCHORS_TENSOR_XYXY = 2  /* supplied with ri_detector_set_anchors as (xmin, ymin, xmax, ymax) */
} ri_anchor_source;

typedef enum {
  RI_BOX_CODING_CENTER_SIZE = 0, /* TF-OD faster_rcnn_box_coder with box_scale */
  RI_BOX_CODING_CORNER_OFFSETS =
      1,                 /* x1 = e0*wa + ax1, y1 = e1*ha + ay1, x2 = e2*wa + ax2, y2 = e3*ha + ay2 */
  RI_BOX_CODING_NONE = 2 /* boxes are already (ymin, xmin, ymax, xmax), normalised; no anchors */
} ri_box_coding;

/* Order of the four encoded values of CENTER_SIZE: YXHW = (ty, tx, th, tw) as TF-OD; XYWH = (tx, ty, tw, th).
 */
typedef enum { RI_BOX_ORDER_YXHW = 0, RI_BOX_ORDER_XYWH = 1 } ri_box_order;

typedef enum { RI_SCORE_NONE = 0, RI_SCORE_SIGMOID = 1, RI_SCORE_SOFTMAX = 2 } ri_score_fn;

#define RI_DETECT_MAX_LAYERS 8
#define RI_DETECT_MAX_RATIOS 8

/* Detection post-processing configuration. Defaults (ri_detect_config_default) are those of TF-OD's
 * ssd_mobilenet_v2_coco with a 0.3 score threshold:
 *   anchors     SSD: num_layers 6, min_scale 0.2, max_scale 0.95, aspect ratios 1, 2, 0.5, 3, 0.3333
 *               (as written in that model's pipeline.config), reduce_boxes_in_lowest_layer 1,
 *               interpolated_scale_aspect_ratio 1, base anchor 1x1, anchor offset 0.5, feature maps
 *               19, 10, 5, 3, 2, 1 (square; 1917 anchors).
 *   coding      CENTER_SIZE, box_scale 10, 10, 5, 5 (y, x, h, w), order YXHW.
 *   scores      SIGMOID, background column 0 present (skipped), score_threshold 0.3 (a candidate needs
 *               score > threshold; TF-OD itself uses 1e-8), iou_threshold 0.6 (suppressed when
 *               IoU > threshold), max_per_class 100, max_total 100. */
typedef struct {
  ri_anchor_source anchors;
  int ssd_num_layers;
  float ssd_min_scale, ssd_max_scale;
  int ssd_num_ratios;
  float ssd_ratios[RI_DETECT_MAX_RATIOS];
  int ssd_reduce_lowest;        /* first layer: (0.1, 1), (s0, 2), (s0, 0.5) */
  float ssd_interp_ratio;       /* > 0: add scale sqrt(s_i * s_i+1) at this ratio (layers after the first
                                   when ssd_reduce_lowest, all layers otherwise); <= 0: none */
  float ssd_base_h, ssd_base_w; /* base anchor size */
  float ssd_offset;             /* anchor centre = (i + offset) / feature map size */
  int ssd_fm_h[RI_DETECT_MAX_LAYERS];
  int ssd_fm_w[RI_DETECT_MAX_LAYERS];
  ri_box_coding coding;
  float box_scale[4]; /* y, x, h, w scale factors of CENTER_SIZE */
  ri_box_order box_order;
  ri_score_fn score_fn;
  int background; /* 1: score column 0 is background and never reported */
  float score_threshold;
  float iou_threshold;
  int max_per_class;
  int max_total;
} ri_detect_config;

/* One detection. Coordinates are original-image pixels when a transform was given to ri_detector_run,
 * normalised 0..1 model coordinates otherwise. class_id is the score column index (so with a background
 * column the first real class is 1, as in TF-OD COCO label ids). anchor is the anchor / box row. */
typedef struct {
  float ymin, xmin, ymax, xmax;
  float score;
  int class_id;
  int anchor;
} ri_detection;

RI_API void ri_detect_config_default(ri_detect_config *cfg);
RI_API RI_MUST_USE ri_status ri_detect_config_validate(const ri_detect_config *cfg, ri_vision_error *err);
/* Text form (keys separated by ';'; SSD keys only when anchors=ssd):
 *   anchors=ssd|yxhw|xyxy;layers=6;min_scale=0.2;max_scale=0.95;ratios=1,2,0.5,3,0.3333;reduce_lowest=1;
 *   interp_ratio=1;base=1,1;offset=0.5;fm=19x19,10x10,5x5,3x3,2x2,1x1;coding=center|corner|none;
 *   box_scale=10,10,5,5;box_order=yxhw|xywh;score=sigmoid|softmax|none;background=1;score_threshold=0.3;
 *   iou=0.6;max_per_class=100;max_total=100
 * Same buffer convention and parse rules as the preprocess spec. fm entries are feature map sizes as
 * WxH (width first, like size= of the preprocess spec) or a single N for NxN; square maps are written as N.
 * base is h,w. */
RI_API RI_MUST_USE ri_status ri_detect_config_to_string(const ri_detect_config *cfg, char *buf, size_t cap,
                                                        size_t *needed, ri_vision_error *err);
RI_API RI_MUST_USE ri_status ri_detect_config_parse(const char *text, ri_detect_config *cfg,
                                                    ri_vision_error *err);

/* Number of anchors the SSD generator produces for cfg (0 if the SSD fields are invalid). */
RI_API size_t ri_ssd_anchor_count(const ri_detect_config *cfg);
/* Generate SSD anchors as (ycenter, xcenter, h, w) rows into out (cap rows). Order: feature map, then
 * cell row-major, then the anchors of a cell. *count receives the number of anchors; RI_ERR_LIMIT if cap
 * is smaller (out may then be NULL). */
RI_API RI_MUST_USE ri_status ri_ssd_anchors_generate(const ri_detect_config *cfg, float *out, size_t cap,
                                                     size_t *count, ri_vision_error *err);

typedef struct ri_detector ri_detector_t;

/* Create a detector from a configuration (copied). SSD anchors are generated here; tensor anchors must
 * then be given with ri_detector_set_anchors before running. On failure *out is NULL and, when err is
 * given, it says why. */
RI_API RI_MUST_USE ri_status ri_detector_create(const ri_detect_config *cfg, ri_detector_t **out,
                                                ri_vision_error *err);
RI_API void ri_detector_destroy(ri_detector_t *det);
RI_API const char *ri_detector_last_error(const ri_detector_t *det);
/* Replace the anchors with count rows of 4 floats (copied) in the form the configuration names
 * (anchors=yxhw or xyxy; for anchors=ssd this overrides the generated ones as YXHW). */
RI_API RI_MUST_USE ri_status ri_detector_set_anchors(ri_detector_t *det, const float *anchors, size_t count);
/* The detector's anchors (rows of 4 floats in the configured form) and their count; valid until the
 * anchors change or the detector is destroyed. */
RI_API size_t ri_detector_anchors(const ri_detector_t *det, const float **anchors);

/* Decode boxes, score, run class-aware NMS and write at most cap detections sorted by score descending
 * (ties: lower anchor, then lower class first).
 *   boxes   num_boxes rows of 4 floats (encoded per the coding; raw corners for coding NONE).
 *   scores  num_boxes rows of num_cols floats (raw logits or probabilities per score_fn).
 *   transform  optional: map boxes to original-image pixels (undoing letterbox) via ri_image_transform_box.
 * Boxes are clipped to [0, 1]; a box whose clipped height or width is not positive is dropped. Per class
 * the candidates with score > score_threshold are taken in score order (ties: lower anchor first) and
 * kept unless their IoU with an already kept box of that class exceeds iou_threshold, up to
 * max_per_class; the union is sorted and cut at max_total and at cap. RI_ERR_SHAPE when num_boxes does
 * not match the anchor count or num_cols is too small. */
RI_API RI_MUST_USE ri_status ri_detector_run(ri_detector_t *det, const float *boxes, const float *scores,
                                             size_t num_boxes, size_t num_cols,
                                             const ri_image_transform *transform, ri_detection *out,
                                             size_t cap, size_t *count);
/* Decode boxes only (no scoring, clipping or NMS) into out (num_boxes rows of ymin, xmin, ymax, xmax,
 * normalised). */
RI_API RI_MUST_USE ri_status ri_detector_decode_boxes(ri_detector_t *det, const float *boxes,
                                                      size_t num_boxes, float *out);

/* ---- classification post-processing ------------------------------------------------------------------- */

typedef struct {
  int class_id;
  float score;
} ri_class_score;

/* Top-k of n scores (optionally after a numerically stable softmax over all n), sorted by score
 * descending, ties by lower class id; writes min(k, n) entries and sets *count. NaN scores rank last. */
RI_API RI_MUST_USE ri_status ri_classify_topk(const float *scores, size_t n, int apply_softmax, size_t k,
                                              ri_class_score *out, size_t *count, ri_vision_error *err);

/* ---- output formatting -------------------------------------------------------------------------------- */

/* Write bytes as the inside of a JSON string (no surrounding quotes) into buf (capacity cap, always
 * NUL-terminated when cap > 0); *needed (if not NULL) receives the length + 1 required. Valid UTF-8
 * passes through; '"', '\\' and control characters are escaped (\n, \t, ... or \u00XX), U+2028/U+2029
 * become \u2028/\u2029; every byte that is not part of valid UTF-8 (including encoded surrogates and
 * overlong forms) becomes \uDCXX (XX = the byte, i.e. U+DC80..U+DCFF), the "surrogateescape"
 * convention, so the original bytes remain recoverable and the output is unambiguous.
 * RI_ERR_LIMIT if cap is too small. */
RI_API RI_MUST_USE ri_status ri_json_escape(const void *bytes, size_t len, char *buf, size_t cap,
                                            size_t *needed, ri_vision_error *err);

/* Write detections as a JSON array:
 *   [{"ymin":..,"xmin":..,"ymax":..,"xmax":..,"score":..,"class":N,"label":".."}, ...]
 * numbers with %.6g (locale independent; NaN/inf as null), label = labels[class_id] when class_id <
 * num_labels and it is not NULL, else "" (escaped with ri_json_escape). Buffer convention as above. */
RI_API RI_MUST_USE ri_status ri_detections_to_json(const ri_detection *dets, size_t n,
                                                   const char *const *labels, size_t num_labels, char *buf,
                                                   size_t cap, size_t *needed, ri_vision_error *err);

#ifdef __cplusplus
}
#endif
#endif
