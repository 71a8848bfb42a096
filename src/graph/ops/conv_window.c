/* Sliding-window geometry shared by Conv, MaxPool and AveragePool (see conv_params.h). */
#include <string.h>

#include "graph/op.h"
#include "graph/ops/conv_params.h"

/* Bound on kernel sizes, strides, dilations and pads so that window arithmetic cannot overflow int64. */
#define RI__WINDOW_MAX ((int64_t)1 << 24)

/* Reads an INTS attribute that must have `want` elements, each in [lo, RI__WINDOW_MAX]. Returns 0 in *n when
 * the attribute is absent. */
static ri_status read_ints(const ri__node *n, const char *name, int want, int64_t lo, const int64_t **vals,
                           int *count, ri__err *err) {
  const ri__attr *a = ri__node_attr(n, name);
  *vals = NULL;
  *count = 0;
  if (!a) return RI_OK;
  if (a->type != RI__ATTR_INTS)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "%s node '%s': attribute '%s' must be a list of ints",
                       ri__op_name(n->op), n->name, name);
  if (a->n != want)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "%s node '%s': attribute '%s' has %d values, expected %d",
                       ri__op_name(n->op), n->name, name, a->n, want);
  for (int i = 0; i < a->n; i++) {
    if (a->ints[i] < lo || a->ints[i] > RI__WINDOW_MAX)
      return ri__err_set(err, RI_ERR_INVALID_ARG,
                         "%s node '%s': attribute '%s'[%d] = %lld is outside [%lld, %lld]",
                         ri__op_name(n->op), n->name, name, i, (long long)a->ints[i], (long long)lo,
                         (long long)RI__WINDOW_MAX);
  }
  *vals = a->ints;
  *count = a->n;
  return RI_OK;
}

ri_status ri__window_parse(const ri__node *n, int spatial_rank, int need_kernel, int pooling, ri__window *w,
                           ri__err *err) {
  const char *op = ri__op_name(n->op);
  if (spatial_rank != 1 && spatial_rank != 2)
    return ri__err_set(err, RI_ERR_UNSUPPORTED,
                       "%s node '%s': %d spatial dimensions (only 1-D and 2-D are supported)", op, n->name,
                       spatial_rank);
  int64_t kept[2] = {w->kernel[0], w->kernel[1]};
  memset(w, 0, sizeof *w);
  w->spatial_rank = spatial_rank;
  for (int i = 0; i < 2; i++) {
    w->kernel[i] = kept[i] > 0 ? kept[i] : 1;
    w->stride[i] = 1;
    w->dilation[i] = 1;
  }
  /* ONNX lists are indexed over the spatial axes; ours always end with W. */
  const int off = 2 - spatial_rank;
  const int64_t *v;
  int cnt;

  RI__TRY(read_ints(n, "kernel_shape", spatial_rank, 1, &v, &cnt, err));
  if (cnt) {
    for (int i = 0; i < cnt; i++) {
      if (kept[off + i] > 0 && kept[off + i] != v[i])
        return ri__err_set(
            err, RI_ERR_SHAPE,
            "%s node '%s': kernel_shape[%d] = %lld does not match the weight's kernel size %lld", op, n->name,
            i, (long long)v[i], (long long)kept[off + i]);
      w->kernel[off + i] = v[i];
    }
  } else if (need_kernel) {
    return ri__err_set(err, RI_ERR_INVALID_ARG, "%s node '%s': attribute 'kernel_shape' is required", op,
                       n->name);
  }
  RI__TRY(read_ints(n, "strides", spatial_rank, 1, &v, &cnt, err));
  for (int i = 0; i < cnt; i++)
    w->stride[off + i] = v[i];
  RI__TRY(read_ints(n, "dilations", spatial_rank, 1, &v, &cnt, err));
  for (int i = 0; i < cnt; i++)
    w->dilation[off + i] = v[i];
  RI__TRY(read_ints(n, "pads", 2 * spatial_rank, 0, &v, &cnt, err));
  int any_pad = 0;
  for (int i = 0; i < cnt / 2; i++) {
    w->pad_begin[off + i] = v[i];
    w->pad_end[off + i] = v[spatial_rank + i];
    any_pad |= v[i] != 0 || v[spatial_rank + i] != 0;
  }

  const ri__attr *ap = ri__node_attr(n, "auto_pad");
  if (ap) {
    if (ap->type != RI__ATTR_STRING || !ap->s)
      return ri__err_set(err, RI_ERR_INVALID_ARG, "%s node '%s': attribute 'auto_pad' must be a string", op,
                         n->name);
    if (strcmp(ap->s, "NOTSET") == 0 || ap->s[0] == 0)
      w->auto_pad = RI__AUTO_PAD_NOTSET;
    else if (strcmp(ap->s, "SAME_UPPER") == 0)
      w->auto_pad = RI__AUTO_PAD_SAME_UPPER;
    else if (strcmp(ap->s, "SAME_LOWER") == 0)
      w->auto_pad = RI__AUTO_PAD_SAME_LOWER;
    else if (strcmp(ap->s, "VALID") == 0)
      w->auto_pad = RI__AUTO_PAD_VALID;
    else
      return ri__err_set(err, RI_ERR_INVALID_ARG,
                         "%s node '%s': auto_pad '%.64s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID",
                         op, n->name, ap->s);
  }
  if (w->auto_pad != RI__AUTO_PAD_NOTSET) {
    if (any_pad)
      return ri__err_set(
          err, RI_ERR_INVALID_ARG,
          "%s node '%s': non-zero 'pads' cannot be combined with auto_pad (the pads are computed)", op,
          n->name);
  }

  if (pooling) {
    int64_t c = ri__node_attr_int(n, "ceil_mode", 0);
    if (c != 0 && c != 1)
      return ri__err_set(err, RI_ERR_INVALID_ARG, "%s node '%s': ceil_mode = %lld, expected 0 or 1", op,
                         n->name, (long long)c);
    w->ceil_mode = (int)c;
  }
  for (int i = 0; i < 2; i++) {
    if (w->kernel[i] > RI__WINDOW_MAX)
      return ri__err_set(err, RI_ERR_LIMIT, "%s node '%s': kernel size %lld exceeds %lld", op, n->name,
                         (long long)w->kernel[i], (long long)RI__WINDOW_MAX);
  }
  return RI_OK;
}

void ri__window_resolve_pads(const ri__window *w, int64_t in_h, int64_t in_w, int64_t pads[4]) {
  const int64_t in[2] = {in_h, in_w};
  for (int a = 0; a < 2; a++) {
    int64_t b = w->pad_begin[a], e = w->pad_end[a];
    if (w->auto_pad == RI__AUTO_PAD_VALID) {
      b = e = 0;
    } else if (w->auto_pad == RI__AUTO_PAD_SAME_UPPER || w->auto_pad == RI__AUTO_PAD_SAME_LOWER) {
      int64_t out = (in[a] + w->stride[a] - 1) / w->stride[a];
      int64_t total = (out - 1) * w->stride[a] + ri__window_extent(w, a) - in[a];
      if (total < 0) total = 0;
      b = w->auto_pad == RI__AUTO_PAD_SAME_UPPER ? total / 2 : total - total / 2;
      e = total - b;
    }
    pads[a] = b;
    pads[2 + a] = e;
  }
}

int64_t ri__window_out_dim(const ri__window *w, int axis, int64_t in, int64_t pad_begin, int64_t pad_end) {
  const int64_t s = w->stride[axis];
  const int64_t span = in + pad_begin + pad_end - ri__window_extent(w, axis);
  if (span < 0) return 0;
  if (!w->ceil_mode) return span / s + 1;
  int64_t out = (span + s - 1) / s + 1;
  if ((out - 1) * s >= in + pad_begin) out--;
  return out;
}

void ri__conv_resolve_pads(const ri__conv_params *p, int64_t in_h, int64_t in_w, int64_t pads_out[4]) {
  ri__window_resolve_pads(&p->win, in_h, in_w, pads_out);
}

void ri__conv_out_size(const ri__conv_params *p, int64_t in_h, int64_t in_w, int64_t *out_h, int64_t *out_w) {
  int64_t pads[4];
  ri__window_resolve_pads(&p->win, in_h, in_w, pads);
  *out_h = ri__window_out_dim(&p->win, 0, in_h, pads[0], pads[2]);
  *out_w = ri__window_out_dim(&p->win, 1, in_w, pads[1], pads[3]);
}
