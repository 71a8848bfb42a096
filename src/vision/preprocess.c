/* Preprocessing: the spec and its text form, the letterbox / stretch geometry and the letterbox border; the
 * resize itself (fused with channel reordering, normalisation and layout conversion) is in resize.c, and
 * for planar YCbCr (colour converted at the output pixels) in resize_ycc.c. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "vision/resize.h"
#include "vision/resize_ycc.h"
#include "vision/vision_internal.h"

#define SPEC_MAX_SIDE 16384

void ri_preprocess_spec_default(ri_preprocess_spec *spec) {
  if (!spec) return;
  memset(spec, 0, sizeof *spec);
  spec->width = 300;
  spec->height = 300;
  spec->layout = RI_LAYOUT_NHWC;
  spec->dtype = RI_DTYPE_FLOAT32;
  for (int c = 0; c < 3; c++) {
    spec->mean[c] = 0.0f;
    spec->scale[c] = 1.0f;
    spec->pad[c] = 0.0f;
  }
  spec->resize = RI_RESIZE_BILINEAR;
  spec->order = RI_CHANNEL_ORDER_RGB;
}

static ri_status set_range(ri_preprocess_spec *spec, double lo, double hi, ri__err *err) {
  if (!isfinite(lo) || !isfinite(hi) || lo == hi)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "value range [%g, %g] must be finite with lo != hi", lo, hi);
  double s = (hi - lo) / 255.0;
  for (int c = 0; c < 3; c++) {
    spec->scale[c] = (float)s;
    spec->mean[c] = (float)(-lo / s);
  }
  return RI_OK;
}

ri_status ri_preprocess_spec_set_range(ri_preprocess_spec *spec, float lo, float hi, ri_vision_error *verr) {
  ri__err err;
  ri__err_clear(&err);
  if (!spec) {
    ri__err_set(&err, RI_ERR_INVALID_ARG, "preprocess spec is NULL");
    return ri__verr_out(verr, &err);
  }
  if (set_range(spec, lo, hi, &err) != RI_OK) return ri__verr_out(verr, &err);
  return ri__verr_ok(verr);
}

static ri_status validate(const ri_preprocess_spec *s, ri__err *err) {
  if (!s) return ri__err_set(err, RI_ERR_INVALID_ARG, "preprocess spec is NULL");
  if (s->width < 1 || s->width > SPEC_MAX_SIDE || s->height < 1 || s->height > SPEC_MAX_SIDE)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "preprocess size %dx%d is outside 1..%d per side", s->width,
                       s->height, SPEC_MAX_SIDE);
  if (s->layout != RI_LAYOUT_NHWC && s->layout != RI_LAYOUT_NCHW)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "preprocess layout %d is not NHWC (0) or NCHW (1)",
                       (int)s->layout);
  if (s->dtype != RI_DTYPE_FLOAT32 && s->dtype != RI_DTYPE_UINT8)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "preprocess dtype %d is not float32 (%d) or uint8 (%d)",
                       (int)s->dtype, (int)RI_DTYPE_FLOAT32, (int)RI_DTYPE_UINT8);
  if (s->resize != RI_RESIZE_BILINEAR && s->resize != RI_RESIZE_LETTERBOX)
    return ri__err_set(err, RI_ERR_INVALID_ARG,
                       "preprocess resize mode %d is not bilinear (0) or letterbox (1)", (int)s->resize);
  if (s->order != RI_CHANNEL_ORDER_RGB && s->order != RI_CHANNEL_ORDER_BGR)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "preprocess channel order %d is not RGB (0) or BGR (1)",
                       (int)s->order);
  for (int c = 0; c < 3; c++) {
    if (!isfinite(s->mean[c]) || !isfinite(s->scale[c]))
      return ri__err_set(err, RI_ERR_INVALID_ARG,
                         "preprocess mean/scale of channel %d (%g, %g) is not finite", c, (double)s->mean[c],
                         (double)s->scale[c]);
    if (!(s->pad[c] >= 0.0f && s->pad[c] <= 255.0f))
      return ri__err_set(err, RI_ERR_INVALID_ARG, "preprocess pad of channel %d (%g) is outside 0..255", c,
                         (double)s->pad[c]);
  }
  return RI_OK;
}

ri_status ri_preprocess_spec_validate(const ri_preprocess_spec *spec, ri_vision_error *verr) {
  ri__err err;
  ri__err_clear(&err);
  if (validate(spec, &err) != RI_OK) return ri__verr_out(verr, &err);
  return ri__verr_ok(verr);
}

size_t ri_preprocess_output_bytes(const ri_preprocess_spec *spec) {
  if (validate(spec, NULL) != RI_OK) return 0;
  return (size_t)spec->width * (size_t)spec->height * 3 * (spec->dtype == RI_DTYPE_FLOAT32 ? 4 : 1);
}

/* ---- text form -------------------------------------------------------------------------------------- */

static void put_triplet(ri__vsb *sb, const char *key, const float v[3]) {
  ri__vsb_puts(sb, key);
  for (int c = 0; c < 3; c++) {
    if (c) ri__vsb_putc(sb, ',');
    ri__vsb_num(sb, v[c], 9);
  }
}

ri_status ri_preprocess_spec_to_string(const ri_preprocess_spec *spec, char *buf, size_t cap, size_t *needed,
                                       ri_vision_error *verr) {
  ri__err err;
  ri__err_clear(&err);
  if (validate(spec, &err) != RI_OK) return ri__verr_out(verr, &err);
  ri__vsb sb;
  ri__vsb_init(&sb, buf, cap);
  ri__vsb_printf(&sb, "size=%dx%d;layout=%s;dtype=%s", spec->width, spec->height,
                 spec->layout == RI_LAYOUT_NCHW ? "nchw" : "nhwc",
                 spec->dtype == RI_DTYPE_UINT8 ? "uint8" : "float32");
  put_triplet(&sb, ";mean=", spec->mean);
  put_triplet(&sb, ";scale=", spec->scale);
  ri__vsb_puts(&sb, spec->resize == RI_RESIZE_LETTERBOX ? ";resize=letterbox" : ";resize=bilinear");
  put_triplet(&sb, ";pad=", spec->pad);
  ri__vsb_puts(&sb, spec->order == RI_CHANNEL_ORDER_BGR ? ";order=bgr" : ";order=rgb");
  if (ri__vsb_finish(&sb, needed, "preprocess spec text", &err) != RI_OK) return ri__verr_out(verr, &err);
  return ri__verr_ok(verr);
}

/* One or three numbers into v[3]. */
static int parse_triplet(const ri__kv *kv, float v[3]) {
  float tmp[3];
  int n = 0;
  if (!ri__parse_float_list(kv->val, kv->val_len, tmp, 3, &n)) return 0;
  if (n == 1)
    tmp[1] = tmp[2] = tmp[0];
  else if (n != 3)
    return 0;
  memcpy(v, tmp, sizeof tmp);
  return 1;
}

/* "WxH" or "N" (square). */
static int parse_size(const char *s, size_t n, int *w, int *h) {
  const char *x = memchr(s, 'x', n);
  if (!x) x = memchr(s, 'X', n);
  long a, b;
  if (!x) {
    if (!ri__parse_long(s, n, 1, SPEC_MAX_SIDE, &a)) return 0;
    *w = *h = (int)a;
    return 1;
  }
  size_t l1 = (size_t)(x - s);
  if (!ri__parse_long(s, l1, 1, SPEC_MAX_SIDE, &a) ||
      !ri__parse_long(x + 1, n - l1 - 1, 1, SPEC_MAX_SIDE, &b))
    return 0;
  *w = (int)a;
  *h = (int)b;
  return 1;
}

enum { K_SIZE, K_LAYOUT, K_DTYPE, K_MEAN, K_SCALE, K_RANGE, K_RESIZE, K_PAD, K_ORDER, K_COUNT };
static const char *const k_spec_keys[K_COUNT] = {"size",  "layout", "dtype", "mean", "scale",
                                                 "range", "resize", "pad",   "order"};

static ri_status bad_value(ri__err *err, const ri__kv *kv, const char *expect) {
  return ri__err_set(err, RI_ERR_PARSE, "preprocess spec: key '%.*s': bad value '%.*s' (expected %s)",
                     (int)kv->key_len, kv->key, (int)(kv->val_len > 64 ? 64 : kv->val_len), kv->val, expect);
}

static ri_status parse_spec(const char *text, ri_preprocess_spec *out, ri__err *err) {
  ri_preprocess_spec s;
  ri_preprocess_spec_default(&s);
  unsigned seen = 0;
  double range[2] = {0, 0};
  ri__kv_iter it = {text};
  ri__kv kv;
  int r;
  while ((r = ri__kv_next(&it, &kv)) != 0) {
    if (r < 0)
      return ri__err_set(err, RI_ERR_PARSE, "preprocess spec: item '%.*s' is not key=value",
                         (int)(kv.key_len > 64 ? 64 : kv.key_len), kv.key);
    int k = 0;
    while (k < K_COUNT && !ri__str_eq(kv.key, kv.key_len, k_spec_keys[k]))
      k++;
    if (k == K_COUNT)
      return ri__err_set(err, RI_ERR_PARSE, "preprocess spec: unknown key '%.*s'",
                         (int)(kv.key_len > 64 ? 64 : kv.key_len), kv.key);
    if (seen & (1u << k))
      return ri__err_set(err, RI_ERR_PARSE, "preprocess spec: key '%s' repeated", k_spec_keys[k]);
    seen |= 1u << k;
    const char *v = kv.val;
    size_t vl = kv.val_len;
    switch (k) {
    case K_SIZE:
      if (!parse_size(v, vl, &s.width, &s.height)) return bad_value(err, &kv, "WxH, 1..16384 each");
      break;
    case K_LAYOUT:
      if (ri__str_eq(v, vl, "nhwc"))
        s.layout = RI_LAYOUT_NHWC;
      else if (ri__str_eq(v, vl, "nchw"))
        s.layout = RI_LAYOUT_NCHW;
      else
        return bad_value(err, &kv, "nhwc or nchw");
      break;
    case K_DTYPE:
      if (ri__str_eq(v, vl, "float32"))
        s.dtype = RI_DTYPE_FLOAT32;
      else if (ri__str_eq(v, vl, "uint8"))
        s.dtype = RI_DTYPE_UINT8;
      else
        return bad_value(err, &kv, "float32 or uint8");
      break;
    case K_MEAN:
      if (!parse_triplet(&kv, s.mean)) return bad_value(err, &kv, "one or three numbers");
      break;
    case K_SCALE:
      if (!parse_triplet(&kv, s.scale)) return bad_value(err, &kv, "one or three numbers");
      break;
    case K_RANGE: {
      float t[2];
      int n = 0;
      if (!ri__parse_float_list(v, vl, t, 2, &n) || n != 2 || t[0] == t[1])
        return bad_value(err, &kv, "lo,hi with lo != hi");
      range[0] = t[0];
      range[1] = t[1];
      break;
    }
    case K_RESIZE:
      if (ri__str_eq(v, vl, "bilinear"))
        s.resize = RI_RESIZE_BILINEAR;
      else if (ri__str_eq(v, vl, "letterbox"))
        s.resize = RI_RESIZE_LETTERBOX;
      else
        return bad_value(err, &kv, "bilinear or letterbox");
      break;
    case K_PAD:
      if (!parse_triplet(&kv, s.pad)) return bad_value(err, &kv, "one or three numbers in 0..255");
      break;
    default: /* K_ORDER */
      if (ri__str_eq(v, vl, "rgb"))
        s.order = RI_CHANNEL_ORDER_RGB;
      else if (ri__str_eq(v, vl, "bgr"))
        s.order = RI_CHANNEL_ORDER_BGR;
      else
        return bad_value(err, &kv, "rgb or bgr");
      break;
    }
  }
  if (seen & (1u << K_RANGE)) {
    if (seen & ((1u << K_MEAN) | (1u << K_SCALE)))
      return ri__err_set(err, RI_ERR_PARSE,
                         "preprocess spec: 'range' cannot be combined with 'mean' or 'scale'");
    RI__TRY(set_range(&s, range[0], range[1], err));
  }
  if (validate(&s, err) != RI_OK) {
    err->status = RI_ERR_PARSE;
    return ri__err_prefix(err, "preprocess spec");
  }
  *out = s;
  return RI_OK;
}

ri_status ri_preprocess_spec_parse(const char *text, ri_preprocess_spec *spec, ri_vision_error *verr) {
  ri__err err;
  ri__err_clear(&err);
  if (!text || !spec) {
    ri__err_set(&err, RI_ERR_INVALID_ARG, "preprocess spec parse: text or spec is NULL");
    return ri__verr_out(verr, &err);
  }
  if (parse_spec(text, spec, &err) != RI_OK) return ri__verr_out(verr, &err);
  return ri__verr_ok(verr);
}

/* ---- geometry --------------------------------------------------------------------------------------- */

static ri__region compute_region(int sw, int sh, const ri_preprocess_spec *s) {
  ri__region r = {0, 0, s->width, s->height};
  if (s->resize != RI_RESIZE_LETTERBOX) return r;
  int64_t W = s->width, H = s->height;
  if (W * sh <= H * sw) { /* width-limited: full width, height rounded to nearest */
    int64_t h = (2 * (int64_t)sh * W + sw) / (2 * (int64_t)sw);
    r.h = (int)(h < 1 ? 1 : h > H ? H : h);
  } else {
    int64_t w = (2 * (int64_t)sw * H + sh) / (2 * (int64_t)sh);
    r.w = (int)(w < 1 ? 1 : w > W ? W : w);
  }
  r.x = (s->width - r.w) / 2;
  r.y = (s->height - r.h) / 2;
  return r;
}

static void fill_transform(int sw, int sh, const ri_preprocess_spec *s, ri__region r, ri_image_transform *t) {
  t->src_width = sw;
  t->src_height = sh;
  t->dst_width = s->width;
  t->dst_height = s->height;
  t->scale_x = (double)r.w / sw;
  t->scale_y = (double)r.h / sh;
  t->offset_x = r.x;
  t->offset_y = r.y;
}

ri_status ri_preprocess_transform(int src_width, int src_height, const ri_preprocess_spec *spec,
                                  ri_image_transform *transform, ri_vision_error *verr) {
  ri__err err;
  ri__err_clear(&err);
  if (validate(spec, &err) != RI_OK) return ri__verr_out(verr, &err);
  if (!transform || src_width < 1 || src_height < 1) {
    ri__err_set(&err, RI_ERR_INVALID_ARG, "preprocess transform: source size %dx%d invalid or transform NULL",
                src_width, src_height);
    return ri__verr_out(verr, &err);
  }
  fill_transform(src_width, src_height, spec, compute_region(src_width, src_height, spec), transform);
  return ri__verr_ok(verr);
}

static float clampf(float v, float hi) {
  if (!(v > 0.0f)) return 0.0f; /* also maps NaN to 0 */
  return v > hi ? hi : v;
}

void ri_image_transform_box(const ri_image_transform *t, float box[4]) {
  if (!t || !box || t->scale_x <= 0 || t->scale_y <= 0) return;
  for (int i = 0; i < 4; i++) {
    int is_y = (i % 2) == 0; /* ymin, xmin, ymax, xmax */
    double v = is_y ? ((double)box[i] * t->dst_height - t->offset_y) / t->scale_y
                    : ((double)box[i] * t->dst_width - t->offset_x) / t->scale_x;
    box[i] = clampf((float)v, (float)(is_y ? t->src_height : t->src_width));
  }
}

void ri_image_transform_set_source(ri_image_transform *t, int src_width, int src_height) {
  if (!t || src_width < 1 || src_height < 1 || t->src_width < 1 || t->src_height < 1) return;
  t->scale_x *= (double)t->src_width / src_width;
  t->scale_y *= (double)t->src_height / src_height;
  t->src_width = src_width;
  t->src_height = src_height;
}

/* ---- resize + normalise ----------------------------------------------------------------------------- */

/* to_u8 of the resize kernels (src/vision/resize.c) for the letterbox border: round half up, saturate. */
static inline uint8_t to_u8(float v) {
  v += 0.5f;
  v = v < 0.0f ? 0.0f : v;
  v = v > 255.0f ? 255.0f : v;
  return (uint8_t)(int)v;
}

/* Write value v[c] to pixels [x0, x1) of output row y. */
static void fill_span(void *dst, const ri_preprocess_spec *s, int y, int x0, int x1, const float v[3]) {
  if (x1 <= x0) return;
  size_t W = (size_t)s->width, H = (size_t)s->height, n = (size_t)(x1 - x0);
  const int f32 = s->dtype == RI_DTYPE_FLOAT32;
  const uint8_t u[3] = {to_u8(v[0]), to_u8(v[1]), to_u8(v[2])};
  if (s->layout == RI_LAYOUT_NCHW) {
    for (int c = 0; c < 3; c++) {
      size_t base = ((size_t)c * H + (size_t)y) * W + (size_t)x0;
      if (f32) {
        float *o = (float *)dst + base;
        for (size_t i = 0; i < n; i++)
          o[i] = v[c];
      } else {
        memset((uint8_t *)dst + base, u[c], n);
      }
    }
  } else {
    size_t base = ((size_t)y * W + (size_t)x0) * 3;
    if (f32) {
      float *o = (float *)dst + base;
      for (size_t i = 0; i < n; i++)
        o[3 * i] = v[0], o[3 * i + 1] = v[1], o[3 * i + 2] = v[2];
    } else {
      uint8_t *o = (uint8_t *)dst + base;
      for (size_t i = 0; i < n; i++)
        o[3 * i] = u[0], o[3 * i + 1] = u[1], o[3 * i + 2] = u[2];
    }
  }
}

/* Letterbox border: the rows of the output above and below the region r, then the spans left and right of
 * it, get the normalised pad value. Nothing is written when r covers the whole output. */
static void fill_border(void *dst, const ri_preprocess_spec *spec, ri__region r) {
  if (r.w == spec->width && r.h == spec->height) return;
  float padv[3];
  for (int c = 0; c < 3; c++)
    padv[c] = (spec->pad[c] - spec->mean[c]) * spec->scale[c];
  for (int y = 0; y < spec->height; y++) {
    if (y < r.y || y >= r.y + r.h) {
      fill_span(dst, spec, y, 0, spec->width, padv);
    } else {
      fill_span(dst, spec, y, 0, r.x, padv);
      fill_span(dst, spec, y, r.x + r.w, spec->width, padv);
    }
  }
}

static ri_status check_image(const ri_image *img, ri__err *err) {
  if (!img) return ri__err_set(err, RI_ERR_INVALID_ARG, "preprocess: image is NULL");
  if (!img->data || img->width < 1 || img->height < 1 || img->channels != 3 ||
      img->stride / 3 < (size_t)img->width)
    return ri__err_set(
        err, RI_ERR_INVALID_ARG,
        "preprocess: invalid image (%dx%d, %d channels, stride %zu, data %s); need 3 channels and "
        "stride >= width*3",
        img->width, img->height, img->channels, img->stride, img->data ? "set" : "NULL");
  return RI_OK;
}

ri_status ri__preprocess_isa(const ri_image *img, const ri_preprocess_spec *spec, void *dst,
                             ri_image_transform *transform, ri_vision_error *verr, ri__resize_isa isa) {
  ri__err err;
  ri__err_clear(&err);
  if (validate(spec, &err) != RI_OK || check_image(img, &err) != RI_OK) return ri__verr_out(verr, &err);
  if (!dst || (spec->dtype == RI_DTYPE_FLOAT32 && ((uintptr_t)dst & 3u))) {
    ri__err_set(&err, RI_ERR_INVALID_ARG,
                "preprocess: destination is NULL or not 4-byte aligned for float32");
    return ri__verr_out(verr, &err);
  }
  const ri__region r = compute_region(img->width, img->height, spec);
  fill_border(dst, spec, r);
  if (ri__resize_into(img, spec, r, dst, isa, &err) != RI_OK) return ri__verr_out(verr, &err);
  if (transform) fill_transform(img->width, img->height, spec, r, transform);
  return ri__verr_ok(verr);
}

ri_status ri__preprocess_ycc(const ri__ycc_image *img, const ri_preprocess_spec *spec, void *dst,
                             ri_image_transform *transform, ri__ycc_plan **cache, ri__err *err,
                             ri__resize_isa isa) {
  RI__TRY(validate(spec, err));
  if (!img || !img->y || img->width < 1 || img->height < 1 ||
      (!img->gray && (!img->cb || !img->cr || img->hf < 1 || img->hf > 2 || img->vf < 1 || img->vf > 2)))
    return ri__err_set(err, RI_ERR_INVALID_ARG, "preprocess: invalid planar YCbCr image");
  if (!dst || (spec->dtype == RI_DTYPE_FLOAT32 && ((uintptr_t)dst & 3u)))
    return ri__err_set(err, RI_ERR_INVALID_ARG,
                       "preprocess: destination is NULL or not 4-byte aligned for float32");
  const ri__region r = compute_region(img->width, img->height, spec);
  fill_border(dst, spec, r);
  RI__TRY(ri__ycc_resize_into(img, spec, r, dst, isa, cache, err));
  if (transform) fill_transform(img->width, img->height, spec, r, transform);
  return RI_OK;
}

ri_status ri_preprocess(const ri_image *img, const ri_preprocess_spec *spec, void *dst,
                        ri_image_transform *transform, ri_vision_error *verr) {
  return ri__preprocess_isa(img, spec, dst, transform, verr, RI__RESIZE_AUTO);
}
