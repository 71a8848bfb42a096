/* Resize (ONNX opsets 11..21): nearest and linear modes. Parameters and coordinate rules in resize_params.h.
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/resize_params.h"

/* Largest output dimension a Resize may produce; keeps (float)in * scale conversions in range. */
#define RI__RESIZE_MAX_DIM ((int64_t)1 << 30)

typedef struct {
  const char *name;
  int value;
} name_map;

static const name_map k_coord[] = {
    {"half_pixel", RI__RESIZE_HALF_PIXEL},
    {"half_pixel_symmetric", RI__RESIZE_HALF_PIXEL_SYMMETRIC},
    {"pytorch_half_pixel", RI__RESIZE_PYTORCH_HALF_PIXEL},
    {"align_corners", RI__RESIZE_ALIGN_CORNERS},
    {"asymmetric", RI__RESIZE_ASYMMETRIC},
    {"tf_half_pixel_for_nn", RI__RESIZE_TF_HALF_PIXEL_FOR_NEAREST},      /* ONNX's name (opsets 11, 12) */
    {"tf_half_pixel_for_nearest", RI__RESIZE_TF_HALF_PIXEL_FOR_NEAREST}, /* spelling some tools write */
};
static const name_map k_nearest[] = {
    {"round_prefer_floor", RI__RESIZE_ROUND_PREFER_FLOOR},
    {"round_prefer_ceil", RI__RESIZE_ROUND_PREFER_CEIL},
    {"floor", RI__RESIZE_FLOOR},
    {"ceil", RI__RESIZE_CEIL},
};

static int lookup(const name_map *m, int count, const char *s, int *out) {
  for (int i = 0; i < count; i++) {
    if (strcmp(m[i].name, s) == 0) {
      *out = m[i].value;
      return 1;
    }
  }
  return 0;
}

/* 1 when optional input i of n is a constant with no elements (the opset-11 way of leaving it out). */
static int const_empty(const ri__graph *g, const ri__node *n, int i) {
  if (n->n_inputs <= i || n->inputs[i] < 0) return 1;
  const ri__value *v = &g->values[n->inputs[i]];
  return v->kind == RI__VAL_CONST && v->nbytes == 0;
}

static ri_status read_target(const ri__graph *g, ri__node *n, ri__resize_params *p, ri__err *err) {
  const int has_scales = !const_empty(g, n, 2), has_sizes = !const_empty(g, n, 3);
  if (has_scales && has_sizes)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "Resize node '%s': both scales and sizes are given", n->name);
  if (!has_scales && !has_sizes)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "Resize node '%s': one of scales and sizes is required",
                       n->name);
  const ri__value *v = &g->values[n->inputs[has_scales ? 2 : 3]];
  if (v->kind != RI__VAL_CONST) {
    p->target = RI__RESIZE_TARGET_RUNTIME;
    return RI_OK;
  }
  const ri_dtype want = has_scales ? RI_DTYPE_FLOAT32 : RI_DTYPE_INT64;
  const size_t es = has_scales ? sizeof(float) : sizeof(int64_t);
  if (v->dtype != want || v->nbytes % es != 0 || v->nbytes / es > RI__MAX_RANK || !v->data)
    return ri__err_set(err, RI_ERR_SHAPE,
                       "Resize node '%s': %s must be %s with at most %d elements (got %s, %zu bytes)",
                       n->name, has_scales ? "scales" : "sizes", ri_dtype_name(want), RI__MAX_RANK,
                       ri_dtype_name(v->dtype), v->nbytes);
  p->n_target = (int)(v->nbytes / es);
  if (has_scales) {
    p->target = RI__RESIZE_TARGET_SCALES;
    memcpy(p->scales, v->data, v->nbytes);
  } else {
    p->target = RI__RESIZE_TARGET_SIZES;
    memcpy(p->sizes, v->data, v->nbytes);
  }
  return RI_OK;
}

static ri_status resize_check(const ri__graph *g, ri__node *n, ri__err *err) {
  ri__free(n->params);
  n->params = NULL;
  if (n->n_inputs < 1 || n->inputs[0] < 0)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "Resize node '%s': input X is required", n->name);
  ri__resize_params p;
  memset(&p, 0, sizeof p);
  int v;

  const char *mode = ri__node_attr_string(n, "mode", "nearest");
  if (strcmp(mode, "nearest") == 0)
    p.mode = RI__RESIZE_NEAREST;
  else if (strcmp(mode, "linear") == 0)
    p.mode = RI__RESIZE_LINEAR;
  else if (strcmp(mode, "cubic") == 0)
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "Resize node '%s': mode 'cubic' is not supported", n->name);
  else
    return ri__err_set(err, RI_ERR_INVALID_ARG, "Resize node '%s': unknown mode '%.64s'", n->name, mode);

  const char *ct = ri__node_attr_string(n, "coordinate_transformation_mode", "half_pixel");
  if (strcmp(ct, "tf_crop_and_resize") == 0)
    return ri__err_set(
        err, RI_ERR_UNSUPPORTED,
        "Resize node '%s': coordinate_transformation_mode 'tf_crop_and_resize' is not supported", n->name);
  if (!lookup(k_coord, (int)(sizeof k_coord / sizeof k_coord[0]), ct, &v))
    return ri__err_set(err, RI_ERR_INVALID_ARG,
                       "Resize node '%s': unknown coordinate_transformation_mode '%.64s'", n->name, ct);
  if (v == RI__RESIZE_HALF_PIXEL_SYMMETRIC && g->opset < 19)
    return ri__err_set(
        err, RI_ERR_INVALID_ARG,
        "Resize node '%s': coordinate_transformation_mode 'half_pixel_symmetric' needs opset 19 "
        "(model opset %lld)",
        n->name, (long long)g->opset);
  p.coord = (ri__resize_coord)v;

  const char *nm = ri__node_attr_string(n, "nearest_mode", "round_prefer_floor");
  if (!lookup(k_nearest, (int)(sizeof k_nearest / sizeof k_nearest[0]), nm, &v))
    return ri__err_set(err, RI_ERR_INVALID_ARG, "Resize node '%s': unknown nearest_mode '%.64s'", n->name,
                       nm);
  p.nearest = (ri__resize_nearest)v;

  int64_t aa = ri__node_attr_int(n, "antialias", 0);
  if (aa != 0)
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "Resize node '%s': antialias = %lld is not supported",
                       n->name, (long long)aa);
  const char *kar = ri__node_attr_string(n, "keep_aspect_ratio_policy", "stretch");
  if (strcmp(kar, "stretch") != 0)
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "Resize node '%s': keep_aspect_ratio_policy '%.64s' is not supported (only 'stretch')",
                       n->name, kar);

  const int64_t *axes;
  int na = ri__node_attr_ints(n, "axes", &axes);
  if (na > 0) {
    if (g->opset < 18)
      return ri__err_set(err, RI_ERR_INVALID_ARG,
                         "Resize node '%s': attribute 'axes' needs opset 18 (model opset %lld)", n->name,
                         (long long)g->opset);
    if (na > RI__MAX_RANK)
      return ri__err_set(err, RI_ERR_SHAPE, "Resize node '%s': %d axes (at most %d)", n->name, na,
                         RI__MAX_RANK);
    for (int i = 0; i < na; i++) {
      if (axes[i] < -RI__MAX_RANK || axes[i] >= RI__MAX_RANK)
        return ri__err_set(err, RI_ERR_SHAPE, "Resize node '%s': axes[%d] = %lld is out of range", n->name, i,
                           (long long)axes[i]);
      p.axes[i] = axes[i];
    }
    p.n_axes = na;
  }
  RI__TRY(read_target(g, n, &p, err));

  ri__resize_params *pp = ri__malloc(sizeof *pp);
  if (!pp) return RI__OOM(err);
  *pp = p;
  n->params = pp;
  return RI_OK;
}

static int given(const ri__tensor *in, int n_in, int i) {
  return n_in > i && in[i].dtype != RI_DTYPE_UNDEFINED && ri__shape_numel(&in[i].shape) > 0;
}

ri_status ri__resize_plan_get(const ri__node *n, const ri__resize_params *p, const ri__tensor *in, int n_in,
                              ri__resize_plan *plan, ri__err *err) {
  const ri__tensor *x = &in[0];
  const int r = x->shape.rank;
  char b[160];
  memset(plan, 0, sizeof *plan);
  if (r < 1) return ri__err_set(err, RI_ERR_SHAPE, "Resize node '%s': X must have rank >= 1", n->name);

  /* Axes the target applies to, normalised and checked for duplicates. */
  int axes[RI__MAX_RANK], na = p->n_axes ? p->n_axes : r;
  int seen[RI__MAX_RANK] = {0};
  for (int i = 0; i < na; i++) {
    int64_t a = p->n_axes ? p->axes[i] : i;
    if (a < -r || a >= r)
      return ri__err_set(err, RI_ERR_SHAPE, "Resize node '%s': axes[%d] = %lld is out of range for X %s",
                         n->name, i, (long long)a, ri__shape_str(&x->shape, b, sizeof b));
    if (a < 0) a += r;
    if (seen[a]++)
      return ri__err_set(err, RI_ERR_SHAPE, "Resize node '%s': axis %lld appears twice in 'axes'", n->name,
                         (long long)a);
    axes[i] = (int)a;
  }

  float scales[RI__MAX_RANK];
  int64_t sizes[RI__MAX_RANK];
  int use_scales, count;
  if (p->target == RI__RESIZE_TARGET_SCALES || p->target == RI__RESIZE_TARGET_SIZES) {
    use_scales = p->target == RI__RESIZE_TARGET_SCALES;
    count = p->n_target;
    memcpy(scales, p->scales, sizeof scales);
    memcpy(sizes, p->sizes, sizeof sizes);
  } else {
    const int hs = given(in, n_in, 2), hz = given(in, n_in, 3);
    if (hs == hz)
      return ri__err_set(err, RI_ERR_INVALID_ARG,
                         "Resize node '%s': exactly one of scales and sizes must be given", n->name);
    const ri__tensor *t = &in[hs ? 2 : 3];
    const ri_dtype want = hs ? RI_DTYPE_FLOAT32 : RI_DTYPE_INT64;
    if (t->dtype != want || t->shape.rank != 1 || t->shape.dims[0] > RI__MAX_RANK)
      return ri__err_set(err, RI_ERR_SHAPE, "Resize node '%s': %s must be a 1-D %s tensor, got %s %s",
                         n->name, hs ? "scales" : "sizes", ri_dtype_name(want), ri_dtype_name(t->dtype),
                         ri__shape_str(&t->shape, b, sizeof b));
    if (!t->data)
      return ri__err_set(err, RI_ERR_UNSUPPORTED,
                         "Resize node '%s': the %s input must be known when the engine is built", n->name,
                         hs ? "scales" : "sizes");
    use_scales = hs;
    count = (int)t->shape.dims[0];
    if (hs)
      memcpy(scales, t->data, (size_t)count * sizeof(float));
    else
      memcpy(sizes, t->data, (size_t)count * sizeof(int64_t));
  }
  if (count != na)
    return ri__err_set(err, RI_ERR_SHAPE, "Resize node '%s': %s has %d elements, expected %d for X %s",
                       n->name, use_scales ? "scales" : "sizes", count, na,
                       ri__shape_str(&x->shape, b, sizeof b));

  plan->out = x->shape;
  for (int i = 0; i < r; i++)
    plan->scale[i] = 1.f;
  for (int i = 0; i < na; i++) {
    const int a = axes[i];
    const int64_t in_len = x->shape.dims[a];
    int64_t out_len;
    float s;
    if (use_scales) {
      s = scales[i];
      if (!(s > 0.f) || !isfinite(s))
        return ri__err_set(err, RI_ERR_SHAPE, "Resize node '%s': scales[%d] = %g must be positive", n->name,
                           i, (double)s);
      float o = (float)in_len * s;
      if (!(o < (float)RI__RESIZE_MAX_DIM))
        return ri__err_set(err, RI_ERR_LIMIT, "Resize node '%s': output dimension %g exceeds the limit",
                           n->name, (double)o);
      out_len = (int64_t)o;
    } else {
      out_len = sizes[i];
      if (out_len < 1 || out_len > RI__RESIZE_MAX_DIM)
        return ri__err_set(err, RI_ERR_SHAPE, "Resize node '%s': sizes[%d] = %lld is out of range", n->name,
                           i, (long long)out_len);
      if (in_len < 1)
        return ri__err_set(err, RI_ERR_SHAPE, "Resize node '%s': cannot size empty axis %d of X %s", n->name,
                           a, ri__shape_str(&x->shape, b, sizeof b));
      s = (float)out_len / (float)in_len;
    }
    if (out_len < 1 && in_len > 0)
      return ri__err_set(err, RI_ERR_SHAPE, "Resize node '%s': axis %d of X %s would have size %lld", n->name,
                         a, ri__shape_str(&x->shape, b, sizeof b), (long long)out_len);
    plan->out.dims[a] = out_len;
    plan->scale[a] = s;
  }
  return RI_OK;
}

float ri__resize_source(const ri__resize_params *p, int64_t x, float scale, int64_t in_len, int64_t out_len) {
  const float xf = (float)x;
  switch (p->coord) {
  case RI__RESIZE_HALF_PIXEL: return (xf + 0.5f) / scale - 0.5f;
  case RI__RESIZE_HALF_PIXEL_SYMMETRIC: {
    const float adjustment = (float)out_len / (scale * (float)in_len);
    const float center = (float)in_len / 2.f;
    const float offset = center * (1.f - adjustment);
    return offset + (xf + 0.5f) / scale - 0.5f;
  }
  case RI__RESIZE_PYTORCH_HALF_PIXEL: return out_len > 1 ? (xf + 0.5f) / scale - 0.5f : 0.f;
  case RI__RESIZE_ALIGN_CORNERS: return out_len == 1 ? 0.f : xf * (float)(in_len - 1) / (float)(out_len - 1);
  case RI__RESIZE_ASYMMETRIC: return xf / scale;
  case RI__RESIZE_TF_HALF_PIXEL_FOR_NEAREST: return (xf + 0.5f) / scale;
  }
  return xf;
}

int64_t ri__resize_nearest_index(const ri__resize_params *p, float c, int64_t in_len) {
  /* Clamp first so that the conversions below stay in range. */
  if (c < -1.f) c = -1.f;
  if (c > (float)in_len) c = (float)in_len;
  float f = floorf(c);
  int64_t i;
  switch (p->nearest) {
  case RI__RESIZE_ROUND_PREFER_FLOOR: i = (int64_t)(c - f > 0.5f ? f + 1.f : f); break;
  case RI__RESIZE_ROUND_PREFER_CEIL: i = (int64_t)(c - f >= 0.5f ? f + 1.f : f); break;
  case RI__RESIZE_FLOOR: i = (int64_t)f; break;
  default: i = (int64_t)ceilf(c); break;
  }
  if (i < 0) i = 0;
  if (i > in_len - 1) i = in_len - 1;
  return i;
}

void ri__resize_linear_taps(float c, int64_t in_len, int64_t *i0, int64_t *i1, float *w) {
  const float hi = (float)(in_len - 1);
  if (!(c > 0.f)) c = 0.f; /* also maps NaN to 0 */
  if (c > hi) c = hi;
  int64_t a = (int64_t)c;
  if (a > in_len - 1) a = in_len - 1;
  const int64_t bb = a + 1 < in_len ? a + 1 : in_len - 1;
  *i0 = a;
  *i1 = bb;
  *w = bb == a ? 0.f : c - (float)a;
}

static ri_status resize_infer(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  const ri__resize_params *p = n->params;
  if (!p) return ri__err_set(err, RI_ERR_INTERNAL, "Resize node '%s': check() has not run", n->name);
  const ri_dtype dt = in[0].dtype;
  if (dt != RI_DTYPE_FLOAT32 && dt != RI_DTYPE_UINT8 && dt != RI_DTYPE_INT8)
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "Resize node '%s': X must be float32, uint8 or int8, got %s",
                       n->name, ri_dtype_name(dt));
  ri__resize_plan plan;
  RI__TRY(ri__resize_plan_get(n, p, in, n->n_inputs, &plan, err));
  out[0].dtype = dt;
  out[0].shape = plan.out;
  out[0].data = NULL;
  return RI_OK;
}

const ri__op_def ri__opdef_Resize = {"Resize", 1, 4, 1, 1, resize_check, resize_infer};
