/* Detection post-processing (SSD anchors, box decoding, scoring, class-aware NMS) and classification
 * top-k. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "vision/vision_internal.h"

#define MAX_FM      4096
#define MAX_ANCHORS (1u << 24)
#define MAX_KEEP    100000

/* ---- configuration ---------------------------------------------------------------------------------- */

void ri_detect_config_default(ri_detect_config *cfg) {
  static const int fm[6] = {19, 10, 5, 3, 2, 1};
  static const float ratios[5] = {1.0f, 2.0f, 0.5f, 3.0f, 0.3333f};
  if (!cfg) return;
  memset(cfg, 0, sizeof *cfg);
  cfg->anchors = RI_ANCHORS_SSD;
  cfg->ssd_num_layers = 6;
  cfg->ssd_min_scale = 0.2f;
  cfg->ssd_max_scale = 0.95f;
  cfg->ssd_num_ratios = 5;
  memcpy(cfg->ssd_ratios, ratios, sizeof ratios);
  cfg->ssd_reduce_lowest = 1;
  cfg->ssd_interp_ratio = 1.0f;
  cfg->ssd_base_h = cfg->ssd_base_w = 1.0f;
  cfg->ssd_offset = 0.5f;
  for (int i = 0; i < 6; i++)
    cfg->ssd_fm_h[i] = cfg->ssd_fm_w[i] = fm[i];
  cfg->coding = RI_BOX_CODING_CENTER_SIZE;
  cfg->box_scale[0] = cfg->box_scale[1] = 10.0f;
  cfg->box_scale[2] = cfg->box_scale[3] = 5.0f;
  cfg->box_order = RI_BOX_ORDER_YXHW;
  cfg->score_fn = RI_SCORE_SIGMOID;
  cfg->background = 1;
  cfg->score_threshold = 0.3f;
  cfg->iou_threshold = 0.6f;
  cfg->max_per_class = 100;
  cfg->max_total = 100;
}

static int boxes_in_layer(const ri_detect_config *c, int layer) {
  if (layer == 0 && c->ssd_reduce_lowest) return 3;
  return c->ssd_num_ratios + (c->ssd_interp_ratio > 0.0f ? 1 : 0);
}

static ri_status validate_ssd(const ri_detect_config *c, ri__err *err) {
  if (c->ssd_num_layers < 1 || c->ssd_num_layers > RI_DETECT_MAX_LAYERS)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "detect config: layers=%d is outside 1..%d",
                       c->ssd_num_layers, RI_DETECT_MAX_LAYERS);
  if (!(c->ssd_min_scale > 0.0f) || !(c->ssd_max_scale >= c->ssd_min_scale) || !isfinite(c->ssd_max_scale))
    return ri__err_set(err, RI_ERR_INVALID_ARG,
                       "detect config: scales min=%g max=%g need 0 < min <= max (finite)",
                       (double)c->ssd_min_scale, (double)c->ssd_max_scale);
  if (c->ssd_num_ratios < 1 || c->ssd_num_ratios > RI_DETECT_MAX_RATIOS)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "detect config: %d aspect ratios, expected 1..%d",
                       c->ssd_num_ratios, RI_DETECT_MAX_RATIOS);
  for (int i = 0; i < c->ssd_num_ratios; i++)
    if (!(c->ssd_ratios[i] > 0.0f) || !isfinite(c->ssd_ratios[i]))
      return ri__err_set(err, RI_ERR_INVALID_ARG, "detect config: aspect ratio %d (%g) must be positive", i,
                         (double)c->ssd_ratios[i]);
  if (!isfinite(c->ssd_interp_ratio) || c->ssd_reduce_lowest < 0 || c->ssd_reduce_lowest > 1)
    return ri__err_set(err, RI_ERR_INVALID_ARG,
                       "detect config: interp_ratio (%g) or reduce_lowest (%d) invalid",
                       (double)c->ssd_interp_ratio, c->ssd_reduce_lowest);
  if (!(c->ssd_base_h > 0.0f) || !(c->ssd_base_w > 0.0f) || !isfinite(c->ssd_base_h) ||
      !isfinite(c->ssd_base_w))
    return ri__err_set(err, RI_ERR_INVALID_ARG, "detect config: base anchor %gx%g must be positive",
                       (double)c->ssd_base_h, (double)c->ssd_base_w);
  if (!(c->ssd_offset >= 0.0f && c->ssd_offset <= 1.0f))
    return ri__err_set(err, RI_ERR_INVALID_ARG, "detect config: offset %g is outside 0..1",
                       (double)c->ssd_offset);
  uint64_t total = 0;
  for (int l = 0; l < c->ssd_num_layers; l++) {
    if (c->ssd_fm_h[l] < 1 || c->ssd_fm_h[l] > MAX_FM || c->ssd_fm_w[l] < 1 || c->ssd_fm_w[l] > MAX_FM)
      return ri__err_set(err, RI_ERR_INVALID_ARG,
                         "detect config: feature map %d is %dx%d, expected 1..%d per side", l, c->ssd_fm_w[l],
                         c->ssd_fm_h[l], MAX_FM);
    total += (uint64_t)c->ssd_fm_h[l] * (uint64_t)c->ssd_fm_w[l] * (uint64_t)boxes_in_layer(c, l);
  }
  if (total > MAX_ANCHORS)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "detect config: %llu anchors exceeds the limit of %u",
                       (unsigned long long)total, MAX_ANCHORS);
  return RI_OK;
}

static ri_status validate_cfg(const ri_detect_config *c, ri__err *err) {
  if (!c) return ri__err_set(err, RI_ERR_INVALID_ARG, "detect config is NULL");
  if (c->anchors != RI_ANCHORS_SSD && c->anchors != RI_ANCHORS_TENSOR_YXHW &&
      c->anchors != RI_ANCHORS_TENSOR_XYXY)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "detect config: anchor source %d unknown", (int)c->anchors);
  if (c->anchors == RI_ANCHORS_SSD) RI__TRY(validate_ssd(c, err));
  if (c->coding != RI_BOX_CODING_CENTER_SIZE && c->coding != RI_BOX_CODING_CORNER_OFFSETS &&
      c->coding != RI_BOX_CODING_NONE)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "detect config: box coding %d unknown", (int)c->coding);
  for (int i = 0; i < 4; i++)
    if (!isfinite(c->box_scale[i]) || c->box_scale[i] == 0.0f)
      return ri__err_set(err, RI_ERR_INVALID_ARG,
                         "detect config: box_scale[%d] = %g must be finite and non-zero", i,
                         (double)c->box_scale[i]);
  if (c->box_order != RI_BOX_ORDER_YXHW && c->box_order != RI_BOX_ORDER_XYWH)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "detect config: box order %d unknown", (int)c->box_order);
  if (c->score_fn != RI_SCORE_NONE && c->score_fn != RI_SCORE_SIGMOID && c->score_fn != RI_SCORE_SOFTMAX)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "detect config: score function %d unknown", (int)c->score_fn);
  if (c->background != 0 && c->background != 1)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "detect config: background=%d must be 0 or 1", c->background);
  if (!isfinite(c->score_threshold))
    return ri__err_set(err, RI_ERR_INVALID_ARG, "detect config: score_threshold is not finite");
  if (!(c->iou_threshold >= 0.0f && c->iou_threshold <= 1.0f))
    return ri__err_set(err, RI_ERR_INVALID_ARG, "detect config: iou=%g is outside 0..1",
                       (double)c->iou_threshold);
  if (c->max_per_class < 1 || c->max_per_class > MAX_KEEP || c->max_total < 1 || c->max_total > MAX_KEEP)
    return ri__err_set(err, RI_ERR_INVALID_ARG,
                       "detect config: max_per_class=%d / max_total=%d outside 1..%d", c->max_per_class,
                       c->max_total, MAX_KEEP);
  return RI_OK;
}

ri_status ri_detect_config_validate(const ri_detect_config *cfg, ri_vision_error *verr) {
  ri__err err;
  ri__err_clear(&err);
  if (validate_cfg(cfg, &err) != RI_OK) return ri__verr_out(verr, &err);
  return ri__verr_ok(verr);
}

/* ---- config text form ------------------------------------------------------------------------------- */

static const char *const k_anchor_names[] = {"ssd", "yxhw", "xyxy"};
static const char *const k_coding_names[] = {"center", "corner", "none"};
static const char *const k_order_names[] = {"yxhw", "xywh"};
static const char *const k_score_names[] = {"none", "sigmoid", "softmax"};

static void put_floats(ri__vsb *sb, const char *key, const float *v, int n) {
  ri__vsb_puts(sb, key);
  for (int i = 0; i < n; i++) {
    if (i) ri__vsb_putc(sb, ',');
    ri__vsb_num(sb, v[i], 9);
  }
}

ri_status ri_detect_config_to_string(const ri_detect_config *c, char *buf, size_t cap, size_t *needed,
                                     ri_vision_error *verr) {
  ri__err err;
  ri__err_clear(&err);
  if (validate_cfg(c, &err) != RI_OK) return ri__verr_out(verr, &err);
  ri__vsb sb;
  ri__vsb_init(&sb, buf, cap);
  ri__vsb_printf(&sb, "anchors=%s", k_anchor_names[c->anchors]);
  if (c->anchors == RI_ANCHORS_SSD) {
    ri__vsb_printf(&sb, ";layers=%d", c->ssd_num_layers);
    put_floats(&sb, ";min_scale=", &c->ssd_min_scale, 1);
    put_floats(&sb, ";max_scale=", &c->ssd_max_scale, 1);
    put_floats(&sb, ";ratios=", c->ssd_ratios, c->ssd_num_ratios);
    ri__vsb_printf(&sb, ";reduce_lowest=%d", c->ssd_reduce_lowest);
    put_floats(&sb, ";interp_ratio=", &c->ssd_interp_ratio, 1);
    float base[2] = {c->ssd_base_h, c->ssd_base_w};
    put_floats(&sb, ";base=", base, 2);
    put_floats(&sb, ";offset=", &c->ssd_offset, 1);
    ri__vsb_puts(&sb, ";fm=");
    for (int l = 0; l < c->ssd_num_layers; l++) {
      if (l) ri__vsb_putc(&sb, ',');
      if (c->ssd_fm_w[l] == c->ssd_fm_h[l])
        ri__vsb_printf(&sb, "%d", c->ssd_fm_w[l]);
      else
        ri__vsb_printf(&sb, "%dx%d", c->ssd_fm_w[l], c->ssd_fm_h[l]);
    }
  }
  ri__vsb_printf(&sb, ";coding=%s", k_coding_names[c->coding]);
  put_floats(&sb, ";box_scale=", c->box_scale, 4);
  ri__vsb_printf(&sb, ";box_order=%s;score=%s;background=%d", k_order_names[c->box_order],
                 k_score_names[c->score_fn], c->background);
  put_floats(&sb, ";score_threshold=", &c->score_threshold, 1);
  put_floats(&sb, ";iou=", &c->iou_threshold, 1);
  ri__vsb_printf(&sb, ";max_per_class=%d;max_total=%d", c->max_per_class, c->max_total);
  if (ri__vsb_finish(&sb, needed, "detect config text", &err) != RI_OK) return ri__verr_out(verr, &err);
  return ri__verr_ok(verr);
}

enum {
  D_ANCHORS,
  D_LAYERS,
  D_MIN_SCALE,
  D_MAX_SCALE,
  D_RATIOS,
  D_REDUCE,
  D_INTERP,
  D_BASE,
  D_OFFSET,
  D_FM,
  D_CODING,
  D_BOX_SCALE,
  D_BOX_ORDER,
  D_SCORE,
  D_BACKGROUND,
  D_THRESH,
  D_IOU,
  D_MAX_PER_CLASS,
  D_MAX_TOTAL,
  D_COUNT
};
static const char *const k_cfg_keys[D_COUNT] = {
    "anchors",         "layers",       "min_scale",     "max_scale", "ratios",
    "reduce_lowest",   "interp_ratio", "base",          "offset",    "fm",
    "coding",          "box_scale",    "box_order",     "score",     "background",
    "score_threshold", "iou",          "max_per_class", "max_total"};

static int pick(const ri__kv *kv, const char *const *names, int n, int *out) {
  for (int i = 0; i < n; i++)
    if (ri__str_eq(kv->val, kv->val_len, names[i])) {
      *out = i;
      return 1;
    }
  return 0;
}

static int one_float(const ri__kv *kv, float *out) {
  int n = 0;
  return ri__parse_float_list(kv->val, kv->val_len, out, 1, &n) && n == 1;
}

/* "WxH" or "N" per entry, comma separated. */
static int parse_fm(const char *s, size_t n, int *w, int *h, int *count) {
  int k = 0;
  size_t i = 0;
  for (;;) {
    size_t j = i;
    while (j < n && s[j] != ',')
      j++;
    const char *item = s + i;
    size_t il = j - i;
    while (il && (*item == ' ' || *item == '\t'))
      item++, il--;
    while (il && (item[il - 1] == ' ' || item[il - 1] == '\t'))
      il--;
    if (k >= RI_DETECT_MAX_LAYERS || il == 0) return 0;
    const char *x = memchr(item, 'x', il);
    long a, b;
    if (x) {
      size_t l1 = (size_t)(x - item);
      if (!ri__parse_long(item, l1, 1, MAX_FM, &a) || !ri__parse_long(x + 1, il - l1 - 1, 1, MAX_FM, &b))
        return 0;
    } else {
      if (!ri__parse_long(item, il, 1, MAX_FM, &a)) return 0;
      b = a;
    }
    w[k] = (int)a;
    h[k] = (int)b;
    k++;
    if (j >= n) break;
    i = j + 1;
  }
  *count = k;
  return 1;
}

static ri_status cfg_bad(ri__err *err, const ri__kv *kv, const char *expect) {
  return ri__err_set(err, RI_ERR_PARSE, "detect config: key '%.*s': bad value '%.*s' (expected %s)",
                     (int)kv->key_len, kv->key, (int)(kv->val_len > 64 ? 64 : kv->val_len), kv->val, expect);
}

static ri_status parse_cfg(const char *text, ri_detect_config *out, ri__err *err) {
  ri_detect_config c;
  ri_detect_config_default(&c);
  unsigned seen = 0;
  int fm_count = 6;
  ri__kv_iter it = {text};
  ri__kv kv;
  int r;
  while ((r = ri__kv_next(&it, &kv)) != 0) {
    if (r < 0)
      return ri__err_set(err, RI_ERR_PARSE, "detect config: item '%.*s' is not key=value",
                         (int)(kv.key_len > 64 ? 64 : kv.key_len), kv.key);
    int k = 0;
    while (k < D_COUNT && !ri__str_eq(kv.key, kv.key_len, k_cfg_keys[k]))
      k++;
    if (k == D_COUNT)
      return ri__err_set(err, RI_ERR_PARSE, "detect config: unknown key '%.*s'",
                         (int)(kv.key_len > 64 ? 64 : kv.key_len), kv.key);
    if (seen & (1u << k))
      return ri__err_set(err, RI_ERR_PARSE, "detect config: key '%s' repeated", k_cfg_keys[k]);
    seen |= 1u << k;
    long lv;
    int iv, n;
    float f[4];
    switch (k) {
    case D_ANCHORS:
      if (!pick(&kv, k_anchor_names, 3, &iv)) return cfg_bad(err, &kv, "ssd, yxhw or xyxy");
      c.anchors = (ri_anchor_source)iv;
      break;
    case D_LAYERS:
      if (!ri__parse_long(kv.val, kv.val_len, 1, RI_DETECT_MAX_LAYERS, &lv)) return cfg_bad(err, &kv, "1..8");
      c.ssd_num_layers = (int)lv;
      break;
    case D_MIN_SCALE:
      if (!one_float(&kv, &c.ssd_min_scale)) return cfg_bad(err, &kv, "a number");
      break;
    case D_MAX_SCALE:
      if (!one_float(&kv, &c.ssd_max_scale)) return cfg_bad(err, &kv, "a number");
      break;
    case D_RATIOS:
      if (!ri__parse_float_list(kv.val, kv.val_len, c.ssd_ratios, RI_DETECT_MAX_RATIOS, &c.ssd_num_ratios))
        return cfg_bad(err, &kv, "1..8 numbers");
      break;
    case D_REDUCE:
      if (!ri__parse_long(kv.val, kv.val_len, 0, 1, &lv)) return cfg_bad(err, &kv, "0 or 1");
      c.ssd_reduce_lowest = (int)lv;
      break;
    case D_INTERP:
      if (!one_float(&kv, &c.ssd_interp_ratio)) return cfg_bad(err, &kv, "a number");
      break;
    case D_BASE:
      if (!ri__parse_float_list(kv.val, kv.val_len, f, 2, &n)) return cfg_bad(err, &kv, "h,w");
      c.ssd_base_h = f[0];
      c.ssd_base_w = n == 2 ? f[1] : f[0];
      break;
    case D_OFFSET:
      if (!one_float(&kv, &c.ssd_offset)) return cfg_bad(err, &kv, "a number");
      break;
    case D_FM:
      if (!parse_fm(kv.val, kv.val_len, c.ssd_fm_w, c.ssd_fm_h, &fm_count))
        return cfg_bad(err, &kv, "up to 8 entries WxH or N, 1..4096");
      break;
    case D_CODING:
      if (!pick(&kv, k_coding_names, 3, &iv)) return cfg_bad(err, &kv, "center, corner or none");
      c.coding = (ri_box_coding)iv;
      break;
    case D_BOX_SCALE:
      if (!ri__parse_float_list(kv.val, kv.val_len, f, 4, &n) || n != 4)
        return cfg_bad(err, &kv, "four numbers");
      memcpy(c.box_scale, f, sizeof f);
      break;
    case D_BOX_ORDER:
      if (!pick(&kv, k_order_names, 2, &iv)) return cfg_bad(err, &kv, "yxhw or xywh");
      c.box_order = (ri_box_order)iv;
      break;
    case D_SCORE:
      if (!pick(&kv, k_score_names, 3, &iv)) return cfg_bad(err, &kv, "sigmoid, softmax or none");
      c.score_fn = (ri_score_fn)iv;
      break;
    case D_BACKGROUND:
      if (!ri__parse_long(kv.val, kv.val_len, 0, 1, &lv)) return cfg_bad(err, &kv, "0 or 1");
      c.background = (int)lv;
      break;
    case D_THRESH:
      if (!one_float(&kv, &c.score_threshold)) return cfg_bad(err, &kv, "a number");
      break;
    case D_IOU:
      if (!one_float(&kv, &c.iou_threshold)) return cfg_bad(err, &kv, "a number in 0..1");
      break;
    case D_MAX_PER_CLASS:
      if (!ri__parse_long(kv.val, kv.val_len, 1, MAX_KEEP, &lv)) return cfg_bad(err, &kv, "1..100000");
      c.max_per_class = (int)lv;
      break;
    default: /* D_MAX_TOTAL */
      if (!ri__parse_long(kv.val, kv.val_len, 1, MAX_KEEP, &lv)) return cfg_bad(err, &kv, "1..100000");
      c.max_total = (int)lv;
      break;
    }
  }
  if (c.anchors == RI_ANCHORS_SSD && fm_count != c.ssd_num_layers)
    return ri__err_set(err, RI_ERR_PARSE, "detect config: %d feature map sizes (fm) for %d layers", fm_count,
                       c.ssd_num_layers);
  if (validate_cfg(&c, err) != RI_OK) {
    err->status = RI_ERR_PARSE;
    return err->status;
  }
  *out = c;
  return RI_OK;
}

ri_status ri_detect_config_parse(const char *text, ri_detect_config *cfg, ri_vision_error *verr) {
  ri__err err;
  ri__err_clear(&err);
  if (!text || !cfg) {
    ri__err_set(&err, RI_ERR_INVALID_ARG, "detect config parse: text or cfg is NULL");
    return ri__verr_out(verr, &err);
  }
  if (parse_cfg(text, cfg, &err) != RI_OK) return ri__verr_out(verr, &err);
  return ri__verr_ok(verr);
}

/* ---- SSD anchors ------------------------------------------------------------------------------------ */

size_t ri_ssd_anchor_count(const ri_detect_config *c) {
  if (!c || validate_ssd(c, NULL) != RI_OK) return 0;
  size_t total = 0;
  for (int l = 0; l < c->ssd_num_layers; l++)
    total += (size_t)c->ssd_fm_h[l] * (size_t)c->ssd_fm_w[l] * (size_t)boxes_in_layer(c, l);
  return total;
}

/* Writes the anchors (the caller checked the capacity). Scales follow TF-OD: s_i = min + (max - min) * i /
 * (L - 1) computed in double, s_L = 1; sizes and centres are then computed in float32 like TF does. */
static void generate_ssd(const ri_detect_config *c, float *out) {
  double scales[RI_DETECT_MAX_LAYERS + 1];
  int L = c->ssd_num_layers;
  for (int i = 0; i < L; i++)
    scales[i] = L == 1
                    ? (double)c->ssd_min_scale
                    : (double)c->ssd_min_scale + ((double)c->ssd_max_scale - c->ssd_min_scale) * i / (L - 1);
  scales[L] = 1.0;
  size_t o = 0;
  for (int l = 0; l < L; l++) {
    float bs[RI_DETECT_MAX_RATIOS + 1], br[RI_DETECT_MAX_RATIOS + 1];
    int nb = 0;
    if (l == 0 && c->ssd_reduce_lowest) {
      bs[0] = 0.1f, br[0] = 1.0f;
      bs[1] = (float)scales[0], br[1] = 2.0f;
      bs[2] = (float)scales[0], br[2] = 0.5f;
      nb = 3;
    } else {
      for (int r = 0; r < c->ssd_num_ratios; r++)
        bs[nb] = (float)scales[l], br[nb++] = c->ssd_ratios[r];
      if (c->ssd_interp_ratio > 0.0f)
        bs[nb] = (float)sqrt(scales[l] * scales[l + 1]), br[nb++] = c->ssd_interp_ratio;
    }
    float bh[RI_DETECT_MAX_RATIOS + 1], bw[RI_DETECT_MAX_RATIOS + 1];
    for (int b = 0; b < nb; b++) {
      float rs = sqrtf(br[b]);
      bh[b] = bs[b] / rs * c->ssd_base_h;
      bw[b] = bs[b] * rs * c->ssd_base_w;
    }
    int fh = c->ssd_fm_h[l], fw = c->ssd_fm_w[l];
    float sy = 1.0f / (float)fh, sx = 1.0f / (float)fw;
    float oy = c->ssd_offset * sy, ox = c->ssd_offset * sx;
    for (int y = 0; y < fh; y++) {
      for (int x = 0; x < fw; x++) {
        float yc = (float)y * sy + oy, xc = (float)x * sx + ox;
        for (int b = 0; b < nb; b++, o += 4) {
          out[o + 0] = yc;
          out[o + 1] = xc;
          out[o + 2] = bh[b];
          out[o + 3] = bw[b];
        }
      }
    }
  }
}

ri_status ri_ssd_anchors_generate(const ri_detect_config *c, float *out, size_t cap, size_t *count,
                                  ri_vision_error *verr) {
  ri__err err;
  ri__err_clear(&err);
  if (!c) {
    ri__err_set(&err, RI_ERR_INVALID_ARG, "ssd anchors: config is NULL");
    return ri__verr_out(verr, &err);
  }
  if (validate_ssd(c, &err) != RI_OK) return ri__verr_out(verr, &err);
  size_t n = ri_ssd_anchor_count(c);
  if (count) *count = n;
  if (!out || cap < n) {
    ri__err_set(&err, RI_ERR_LIMIT, "ssd anchors: capacity %zu rows is less than the %zu anchors", cap, n);
    return ri__verr_out(verr, &err);
  }
  generate_ssd(c, out);
  return ri__verr_ok(verr);
}

/* ---- detector --------------------------------------------------------------------------------------- */

typedef struct {
  float score;
  int32_t anchor;
  int32_t cls;
} cand;

struct ri_detector {
  ri_detect_config cfg;
  int anchor_form; /* RI_ANCHORS_TENSOR_YXHW or RI_ANCHORS_TENSOR_XYXY: how rows of anchors are laid out */
  float *anchors;  /* num_anchors rows of 4; NULL until set for tensor anchors */
  size_t num_anchors;
  float *boxes; /* decoded + clipped boxes, capacity boxes_cap rows */
  size_t boxes_cap;
  cand *cands;
  size_t cands_cap;
  cand *bucket; /* candidates grouped by class (counting sort), capacity cands_cap */
  size_t bucket_cap;
  size_t *class_start; /* num_cols + 1 offsets into bucket */
  size_t class_start_cap;
  float *row; /* one row of scores for softmax */
  size_t row_cap;
  ri__err err;
};

ri_status ri_detector_create(const ri_detect_config *cfg, ri_detector_t **out, ri_vision_error *verr) {
  ri__err err;
  ri__err_clear(&err);
  if (!out) {
    ri__err_set(&err, RI_ERR_INVALID_ARG, "detector create: out is NULL");
    return ri__verr_out(verr, &err);
  }
  *out = NULL;
  if (validate_cfg(cfg, &err) != RI_OK) return ri__verr_out(verr, &err);
  ri_detector_t *d = ri__calloc(1, sizeof *d);
  if (!d) {
    RI__OOM(&err);
    return ri__verr_out(verr, &err);
  }
  d->cfg = *cfg;
  d->anchor_form = cfg->anchors == RI_ANCHORS_TENSOR_XYXY ? RI_ANCHORS_TENSOR_XYXY : RI_ANCHORS_TENSOR_YXHW;
  if (cfg->anchors == RI_ANCHORS_SSD) {
    size_t n = ri_ssd_anchor_count(cfg);
    d->anchors = ri__malloc(n * 4 * sizeof(float));
    if (!d->anchors) {
      ri__free(d);
      RI__OOM(&err);
      return ri__verr_out(verr, &err);
    }
    generate_ssd(cfg, d->anchors);
    d->num_anchors = n;
  }
  *out = d;
  return ri__verr_ok(verr);
}

void ri_detector_destroy(ri_detector_t *d) {
  if (!d) return;
  ri__free(d->anchors);
  ri__free(d->boxes);
  ri__free(d->cands);
  ri__free(d->bucket);
  ri__free(d->class_start);
  ri__free(d->row);
  ri__free(d);
}

const char *ri_detector_last_error(const ri_detector_t *d) { return d ? d->err.msg : "detector is NULL"; }

ri_status ri_detector_set_anchors(ri_detector_t *d, const float *anchors, size_t count) {
  if (!d) return RI_ERR_INVALID_ARG;
  ri__err_clear(&d->err);
  if (!anchors || count == 0 || count > MAX_ANCHORS)
    return ri__err_set(&d->err, RI_ERR_INVALID_ARG, "detector: %zu anchors (data %s), expected 1..%u", count,
                       anchors ? "set" : "NULL", MAX_ANCHORS);
  float *copy = ri__malloc(count * 4 * sizeof(float));
  if (!copy) return RI__OOM(&d->err);
  memcpy(copy, anchors, count * 4 * sizeof(float));
  ri__free(d->anchors);
  d->anchors = copy;
  d->num_anchors = count;
  return RI_OK;
}

size_t ri_detector_anchors(const ri_detector_t *d, const float **anchors) {
  if (anchors) *anchors = d ? d->anchors : NULL;
  return d ? d->num_anchors : 0;
}

/* Grow a scratch array to at least n elements of size sz (contents are not kept). */
static int grow(void **p, size_t *cap, size_t n, size_t sz) {
  if (*cap >= n) return 1;
  size_t bytes;
  if (!ri__mul_size(n, sz, &bytes)) return 0;
  void *q = ri__malloc(bytes);
  if (!q) return 0;
  ri__free(*p);
  *p = q;
  *cap = n;
  return 1;
}

static void decode_one(const ri_detector_t *d, const float *e, size_t i, float *o) {
  const ri_detect_config *c = &d->cfg;
  if (c->coding == RI_BOX_CODING_NONE) {
    memcpy(o, e, 4 * sizeof(float));
    return;
  }
  const float *a = d->anchors + 4 * i;
  if (c->coding == RI_BOX_CODING_CENTER_SIZE) {
    float ya, xa, ha, wa;
    if (d->anchor_form == RI_ANCHORS_TENSOR_XYXY) {
      ha = a[3] - a[1];
      wa = a[2] - a[0];
      ya = a[1] + 0.5f * ha;
      xa = a[0] + 0.5f * wa;
    } else {
      ya = a[0], xa = a[1], ha = a[2], wa = a[3];
    }
    float ty, tx, th, tw;
    if (c->box_order == RI_BOX_ORDER_XYWH)
      tx = e[0], ty = e[1], tw = e[2], th = e[3];
    else
      ty = e[0], tx = e[1], th = e[2], tw = e[3];
    float yc = ty / c->box_scale[0] * ha + ya;
    float xc = tx / c->box_scale[1] * wa + xa;
    float h = expf(th / c->box_scale[2]) * ha;
    float w = expf(tw / c->box_scale[3]) * wa;
    o[0] = yc - 0.5f * h;
    o[1] = xc - 0.5f * w;
    o[2] = yc + 0.5f * h;
    o[3] = xc + 0.5f * w;
    return;
  }
  /* CORNER_OFFSETS */
  float x1, y1, x2, y2;
  if (d->anchor_form == RI_ANCHORS_TENSOR_XYXY) {
    x1 = a[0], y1 = a[1], x2 = a[2], y2 = a[3];
  } else {
    y1 = a[0] - 0.5f * a[2];
    x1 = a[1] - 0.5f * a[3];
    y2 = a[0] + 0.5f * a[2];
    x2 = a[1] + 0.5f * a[3];
  }
  float wa = x2 - x1, ha = y2 - y1;
  o[0] = e[1] * ha + y1;
  o[1] = e[0] * wa + x1;
  o[2] = e[3] * ha + y2;
  o[3] = e[2] * wa + x2;
}

static ri_status check_boxes(ri_detector_t *d, const float *boxes, size_t num_boxes) {
  if (!boxes && num_boxes) return ri__err_set(&d->err, RI_ERR_INVALID_ARG, "detector: boxes is NULL");
  if (num_boxes > MAX_ANCHORS)
    return ri__err_set(&d->err, RI_ERR_SHAPE, "detector: %zu boxes exceeds the limit of %u", num_boxes,
                       MAX_ANCHORS);
  if (d->cfg.coding != RI_BOX_CODING_NONE) {
    if (!d->anchors)
      return ri__err_set(&d->err, RI_ERR_INVALID_ARG,
                         "detector: anchors come from a tensor and ri_detector_set_anchors was not called");
    if (num_boxes != d->num_anchors)
      return ri__err_set(&d->err, RI_ERR_SHAPE,
                         "detector: boxes tensor has %zu rows but there are %zu anchors", num_boxes,
                         d->num_anchors);
  }
  return RI_OK;
}

ri_status ri_detector_decode_boxes(ri_detector_t *d, const float *boxes, size_t num_boxes, float *out) {
  if (!d) return RI_ERR_INVALID_ARG;
  ri__err_clear(&d->err);
  RI__TRY(check_boxes(d, boxes, num_boxes));
  if (!out && num_boxes) return ri__err_set(&d->err, RI_ERR_INVALID_ARG, "detector: output is NULL");
  for (size_t i = 0; i < num_boxes; i++)
    decode_one(d, boxes + 4 * i, i, out + 4 * i);
  return RI_OK;
}

static float clip01(float v) {
  if (!(v > 0.0f)) return 0.0f;
  return v < 1.0f ? v : 1.0f;
}

static float iou(const float *a, const float *b) {
  float ih = fminf(a[2], b[2]) - fmaxf(a[0], b[0]);
  float iw = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
  if (ih <= 0.0f || iw <= 0.0f) return 0.0f;
  float inter = ih * iw;
  float uni = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return uni > 0.0f ? inter / uni : 0.0f;
}

/* Score descending, then anchor ascending, then class ascending. */
static int cmp_score(const void *pa, const void *pb) {
  const cand *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  if (a->anchor != b->anchor) return a->anchor < b->anchor ? -1 : 1;
  return (a->cls > b->cls) - (a->cls < b->cls);
}

/* Within one class: score descending, then anchor ascending (a strict total order: anchors are unique). */
static int cand_before(const cand *a, const cand *b) {
  return a->score != b->score ? a->score > b->score : a->anchor < b->anchor;
}

static void sift_down(cand *h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, best = i;
    if (l < n && cand_before(&h[l], &h[best])) best = l;
    if (l + 1 < n && cand_before(&h[l + 1], &h[best])) best = l + 1;
    if (best == i) return;
    cand t = h[i];
    h[i] = h[best];
    h[best] = t;
    i = best;
  }
}

ri_status ri_detector_run(ri_detector_t *d, const float *boxes, const float *scores, size_t num_boxes,
                          size_t num_cols, const ri_image_transform *transform, ri_detection *out, size_t cap,
                          size_t *count) {
  if (!d) return RI_ERR_INVALID_ARG;
  ri__err_clear(&d->err);
  if (count) *count = 0;
  if (!count || (!out && cap) || (!scores && num_boxes))
    return ri__err_set(&d->err, RI_ERR_INVALID_ARG, "detector run: count, out or scores is NULL");
  RI__TRY(check_boxes(d, boxes, num_boxes));
  const ri_detect_config *c = &d->cfg;
  size_t first = c->background ? 1 : 0;
  if (num_cols <= first || num_cols > (size_t)INT32_MAX)
    return ri__err_set(&d->err, RI_ERR_SHAPE, "detector run: scores have %zu columns, need at least %zu%s",
                       num_cols, first + 1, c->background ? " (background column + one class)" : "");
  size_t total;
  if (!ri__mul_size(num_boxes, num_cols, &total))
    return ri__err_set(&d->err, RI_ERR_SHAPE, "detector run: %zu x %zu scores overflow", num_boxes, num_cols);
  if (!grow((void **)&d->boxes, &d->boxes_cap, num_boxes * 4, sizeof(float)) ||
      (c->score_fn == RI_SCORE_SOFTMAX && !grow((void **)&d->row, &d->row_cap, num_cols, sizeof(float))))
    return RI__OOM(&d->err);

  /* Decode and clip every box; gather the candidates above the threshold from boxes with area. */
  size_t nc = 0;
  const float thr = c->score_threshold;
  for (size_t i = 0; i < num_boxes; i++) {
    float *b = d->boxes + 4 * i;
    decode_one(d, boxes + 4 * i, i, b);
    for (int k = 0; k < 4; k++)
      b[k] = clip01(b[k]);
    if (!(b[2] - b[0] > 0.0f) || !(b[3] - b[1] > 0.0f)) continue;
    const float *s = scores + i * num_cols;
    const float *p = s;
    if (c->score_fn == RI_SCORE_SOFTMAX) {
      float m = -INFINITY;
      for (size_t k = 0; k < num_cols; k++)
        m = s[k] > m ? s[k] : m;
      double sum = 0.0;
      for (size_t k = 0; k < num_cols; k++) {
        d->row[k] = expf(s[k] - m);
        sum += d->row[k];
      }
      float inv = (float)(1.0 / sum);
      for (size_t k = 0; k < num_cols; k++)
        d->row[k] *= inv;
      p = d->row;
    }
    for (size_t k = first; k < num_cols; k++) {
      float v = p[k];
      if (c->score_fn == RI_SCORE_SIGMOID) v = 1.0f / (1.0f + expf(-v));
      if (!(v > thr)) continue;
      if (nc == d->cands_cap) {
        size_t ncap = d->cands_cap ? d->cands_cap * 2 : 1024;
        cand *q = ri__realloc(d->cands, ncap * sizeof(cand));
        if (!q) return RI__OOM(&d->err);
        d->cands = q;
        d->cands_cap = ncap;
      }
      d->cands[nc].score = v;
      d->cands[nc].anchor = (int32_t)i;
      d->cands[nc].cls = (int32_t)k;
      nc++;
    }
  }
  if (nc == 0) return RI_OK;
  /* Group the candidates by class (counting sort, stable), then run greedy NMS per class taking candidates in
   * (score descending, anchor ascending) order from a binary heap: a class usually fills max_per_class long
   * before its candidates run out, so only the candidates actually visited are ordered. The order visited is
   * exactly that of a full sort. Survivors are compacted to the front of d->cands. */
  if (!grow((void **)&d->bucket, &d->bucket_cap, nc, sizeof(cand)) ||
      !grow((void **)&d->class_start, &d->class_start_cap, num_cols + 1, sizeof(size_t)))
    return RI__OOM(&d->err);
  size_t *cs = d->class_start;
  memset(cs, 0, (num_cols + 1) * sizeof(size_t));
  for (size_t j = 0; j < nc; j++)
    cs[(size_t)d->cands[j].cls + 1]++;
  for (size_t k = 0; k < num_cols; k++)
    cs[k + 1] += cs[k];
  for (size_t j = 0; j < nc; j++)
    d->bucket[cs[(size_t)d->cands[j].cls]++] = d->cands[j];
  /* cs[k] now holds the end of class k's run; its start is the previous class's end */
  size_t kept = 0, begin = 0;
  for (size_t k = 0; k < num_cols; k++) {
    size_t end = cs[k];
    cand *h = d->bucket + begin;
    size_t m = end - begin;
    begin = end;
    if (m == 0) continue;
    for (size_t i = m / 2; i-- > 0;)
      sift_down(h, m, i);
    size_t class_start = kept;
    while (m > 0 && kept - class_start < (size_t)c->max_per_class) {
      cand top = h[0];
      h[0] = h[--m];
      sift_down(h, m, 0);
      const float *bj = d->boxes + 4 * (size_t)top.anchor;
      int ok = 1;
      for (size_t q = class_start; q < kept && ok; q++)
        if (iou(bj, d->boxes + 4 * (size_t)d->cands[q].anchor) > c->iou_threshold) ok = 0;
      if (ok) d->cands[kept++] = top;
    }
  }
  qsort(d->cands, kept, sizeof(cand), cmp_score);
  size_t n = kept;
  if (n > (size_t)c->max_total) n = (size_t)c->max_total;
  if (n > cap) n = cap;
  for (size_t j = 0; j < n; j++) {
    float b[4];
    memcpy(b, d->boxes + 4 * (size_t)d->cands[j].anchor, sizeof b);
    if (transform) ri_image_transform_box(transform, b);
    out[j].ymin = b[0];
    out[j].xmin = b[1];
    out[j].ymax = b[2];
    out[j].xmax = b[3];
    out[j].score = d->cands[j].score;
    out[j].class_id = d->cands[j].cls;
    out[j].anchor = d->cands[j].anchor;
  }
  *count = n;
  return RI_OK;
}

/* ---- classification --------------------------------------------------------------------------------- */

/* Score descending with NaN last, then class ascending. */
static int better(const ri_class_score *a, const ri_class_score *b) {
  int an = isnan(a->score), bn = isnan(b->score);
  if (an != bn) return bn;
  if (!an && a->score != b->score) return a->score > b->score;
  return a->class_id < b->class_id;
}

static int cmp_class_score_desc(const void *pa, const void *pb) {
  const ri_class_score *a = pa, *b = pb;
  if (better(a, b)) return -1;
  if (better(b, a)) return 1;
  return 0;
}

ri_status ri_classify_topk(const float *scores, size_t n, int apply_softmax, size_t k, ri_class_score *out,
                           size_t *count, ri_vision_error *verr) {
  ri__err err;
  ri__err_clear(&err);
  if (count) *count = 0;
  if (!scores || !count || (!out && k) || n == 0 || n > (size_t)INT32_MAX) {
    ri__err_set(&err, RI_ERR_INVALID_ARG, "classify top-k: %zu scores (scores %s, out %s, count %s)", n,
                scores ? "set" : "NULL", out ? "set" : "NULL", count ? "set" : "NULL");
    return ri__verr_out(verr, &err);
  }
  if (k > n) k = n;
  if (k == 0) return ri__verr_ok(verr);
  float *prob = NULL;
  const float *p = scores;
  if (apply_softmax) {
    prob = ri__malloc(n * sizeof(float));
    if (!prob) {
      RI__OOM(&err);
      return ri__verr_out(verr, &err);
    }
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++)
      m = scores[i] > m ? scores[i] : m;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
      prob[i] = expf(scores[i] - m);
      if (!isnan(prob[i])) sum += prob[i];
    }
    for (size_t i = 0; i < n; i++)
      prob[i] = (float)(prob[i] / sum);
    p = prob;
  }
  if (k <= 32) {
    /* Insertion into a sorted list of k entries. */
    size_t have = 0;
    for (size_t i = 0; i < n; i++) {
      ri_class_score e = {(int)i, p[i]};
      if (have == k && !better(&e, &out[k - 1])) continue;
      size_t pos = have < k ? have++ : k - 1;
      while (pos > 0 && better(&e, &out[pos - 1])) {
        out[pos] = out[pos - 1];
        pos--;
      }
      out[pos] = e;
    }
  } else {
    ri_class_score *all = ri__malloc(n * sizeof *all);
    if (!all) {
      ri__free(prob);
      RI__OOM(&err);
      return ri__verr_out(verr, &err);
    }
    for (size_t i = 0; i < n; i++)
      all[i] = (ri_class_score){(int)i, p[i]};
    qsort(all, n, sizeof *all, cmp_class_score_desc);
    memcpy(out, all, k * sizeof *all);
    ri__free(all);
  }
  ri__free(prob);
  *count = k;
  return ri__verr_ok(verr);
}
