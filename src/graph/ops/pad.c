/* Pad (ONNX opsets 11..21): constant, reflect and edge modes, any element type. See pad_params.h. */
#include <string.h>

#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/pad_params.h"

/* Bound on the magnitude of one pad, so that output sizes cannot overflow. */
#define RI__PAD_MAX ((int64_t)1 << 31)

/* Copies the elements of constant value v (int32 or int64 when `ints`, else any type) into dst. */
static ri_status copy_ints(const ri__node *n, const ri__value *v, const char *what, int max, int64_t *dst,
                           int *count, ri__err *err) {
  size_t es = ri_dtype_size(v->dtype);
  if ((v->dtype != RI_DTYPE_INT64 && v->dtype != RI_DTYPE_INT32) || !es || v->nbytes % es != 0 ||
      v->nbytes / es > (size_t)max || (v->nbytes && !v->data))
    return ri__err_set(err, RI_ERR_SHAPE,
                       "Pad node '%s': %s must be int64 (or int32) with at most %d elements, got %s "
                       "of %zu bytes",
                       n->name, what, max, ri_dtype_name(v->dtype), v->nbytes);
  *count = (int)(v->nbytes / es);
  ri__tensor t = {v->dtype, v->shape, v->data};
  for (int i = 0; i < *count; i++)
    dst[i] = ri__tensor_get_int(&t, i);
  return RI_OK;
}

static ri_status pad_check(const ri__graph *g, ri__node *n, ri__err *err) {
  ri__free(n->params);
  n->params = NULL;
  if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "Pad node '%s': inputs data and pads are required", n->name);
  ri__pad_params p;
  memset(&p, 0, sizeof p);
  const char *mode = ri__node_attr_string(n, "mode", "constant");
  if (strcmp(mode, "constant") == 0)
    p.mode = RI__PAD_CONSTANT;
  else if (strcmp(mode, "reflect") == 0)
    p.mode = RI__PAD_REFLECT;
  else if (strcmp(mode, "edge") == 0)
    p.mode = RI__PAD_EDGE;
  else if (strcmp(mode, "wrap") == 0)
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "Pad node '%s': mode 'wrap' is not supported", n->name);
  else
    return ri__err_set(err, RI_ERR_INVALID_ARG, "Pad node '%s': unknown mode '%.64s'", n->name, mode);

  const int has_axes = n->n_inputs > 3 && n->inputs[3] >= 0;
  if (has_axes && g->opset < 18)
    return ri__err_set(err, RI_ERR_INVALID_ARG,
                       "Pad node '%s': the axes input needs opset 18 (model opset %lld)", n->name,
                       (long long)g->opset);
  p.has_axes = has_axes;
  const ri__value *pv = &g->values[n->inputs[1]];
  const ri__value *av = has_axes ? &g->values[n->inputs[3]] : NULL;
  if (pv->kind == RI__VAL_CONST && (!av || av->kind == RI__VAL_CONST)) {
    RI__TRY(copy_ints(n, pv, "pads", 2 * RI__MAX_RANK, p.pads, &p.n_pads, err));
    if (av) RI__TRY(copy_ints(n, av, "axes", RI__MAX_RANK, p.axes, &p.n_axes, err));
    p.pads_known = 1;
  }

  p.value_known = 1;
  if (n->n_inputs > 2 && n->inputs[2] >= 0) {
    const ri__value *cv = &g->values[n->inputs[2]];
    if (cv->kind == RI__VAL_CONST) {
      if (cv->nbytes > sizeof p.value || (cv->nbytes && cv->nbytes != ri_dtype_size(cv->dtype)) ||
          (cv->nbytes && !cv->data))
        return ri__err_set(err, RI_ERR_SHAPE,
                           "Pad node '%s': constant_value must be one element, got %zu bytes of %s", n->name,
                           cv->nbytes, ri_dtype_name(cv->dtype));
      if (cv->nbytes) memcpy(p.value, cv->data, cv->nbytes);
    } else {
      p.value_known = 0;
    }
  }
  ri__pad_params *pp = ri__malloc(sizeof *pp);
  if (!pp) return RI__OOM(err);
  *pp = p;
  n->params = pp;
  return RI_OK;
}

/* Reads integer tensor t (int32/int64, 1-D, host data) into dst. */
static ri_status tensor_ints(const ri__node *n, const ri__tensor *t, const char *what, int max, int64_t *dst,
                             int *count, ri__err *err) {
  char b[160];
  if ((t->dtype != RI_DTYPE_INT64 && t->dtype != RI_DTYPE_INT32) || t->shape.rank != 1 ||
      t->shape.dims[0] > max)
    return ri__err_set(err, RI_ERR_SHAPE,
                       "Pad node '%s': %s must be a 1-D int64 tensor of at most %d elements, got %s %s",
                       n->name, what, max, ri_dtype_name(t->dtype), ri__shape_str(&t->shape, b, sizeof b));
  if (!t->data && t->shape.dims[0] > 0)
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "Pad node '%s': %s must be known when the engine is built",
                       n->name, what);
  *count = (int)t->shape.dims[0];
  for (int i = 0; i < *count; i++)
    dst[i] = ri__tensor_get_int(t, i);
  return RI_OK;
}

ri_status ri__pad_resolve(const ri__node *n, const ri__pad_params *p, const ri__tensor *in, int n_in,
                          int64_t begin[RI__MAX_RANK], int64_t end[RI__MAX_RANK], ri__err *err) {
  const ri__tensor *x = &in[0];
  const int r = x->shape.rank;
  char b[160];
  int64_t pads[2 * RI__MAX_RANK], axes_raw[RI__MAX_RANK];
  int np, na;
  if (p->pads_known) {
    np = p->n_pads;
    na = p->n_axes;
    memcpy(pads, p->pads, sizeof pads);
    memcpy(axes_raw, p->axes, sizeof axes_raw);
  } else {
    RI__TRY(tensor_ints(n, &in[1], "pads", 2 * RI__MAX_RANK, pads, &np, err));
    na = 0;
    if (p->has_axes) {
      if (n_in < 4)
        return ri__err_set(err, RI_ERR_INTERNAL, "Pad node '%s': the axes input was not passed", n->name);
      RI__TRY(tensor_ints(n, &in[3], "axes", RI__MAX_RANK, axes_raw, &na, err));
    }
  }
  const int has_axes = p->has_axes;
  int axes[RI__MAX_RANK], seen[RI__MAX_RANK] = {0};
  if (!has_axes) na = r;
  for (int i = 0; i < na; i++) {
    int64_t a = has_axes ? axes_raw[i] : i;
    if (a < -r || a >= r)
      return ri__err_set(err, RI_ERR_SHAPE, "Pad node '%s': axes[%d] = %lld is out of range for data %s",
                         n->name, i, (long long)a, ri__shape_str(&x->shape, b, sizeof b));
    if (a < 0) a += r;
    if (seen[a]++)
      return ri__err_set(err, RI_ERR_SHAPE, "Pad node '%s': axis %lld appears twice in axes", n->name,
                         (long long)a);
    axes[i] = (int)a;
  }
  if (np != 2 * na)
    return ri__err_set(err, RI_ERR_SHAPE, "Pad node '%s': pads has %d elements, expected %d for data %s",
                       n->name, np, 2 * na, ri__shape_str(&x->shape, b, sizeof b));
  for (int i = 0; i < r; i++)
    begin[i] = end[i] = 0;
  for (int i = 0; i < na; i++) {
    begin[axes[i]] = pads[i];
    end[axes[i]] = pads[na + i];
  }
  for (int a = 0; a < r; a++) {
    const int64_t bb = begin[a], ee = end[a], d = x->shape.dims[a];
    if (bb < -RI__PAD_MAX || bb > RI__PAD_MAX || ee < -RI__PAD_MAX || ee > RI__PAD_MAX)
      return ri__err_set(err, RI_ERR_SHAPE, "Pad node '%s': pads %lld, %lld of axis %d exceed the limit",
                         n->name, (long long)bb, (long long)ee, a);
    const int64_t kept = d - (bb < 0 ? -bb : 0) - (ee < 0 ? -ee : 0);
    if (kept < 0)
      return ri__err_set(err, RI_ERR_SHAPE,
                         "Pad node '%s': pads %lld, %lld crop more than axis %d of data %s has", n->name,
                         (long long)bb, (long long)ee, a, ri__shape_str(&x->shape, b, sizeof b));
    const int64_t grow = (bb > 0 ? bb : 0) > (ee > 0 ? ee : 0) ? (bb > 0 ? bb : 0) : (ee > 0 ? ee : 0);
    if (grow > 0 && p->mode == RI__PAD_EDGE && kept < 1)
      return ri__err_set(err, RI_ERR_SHAPE, "Pad node '%s': edge padding of empty axis %d of data %s",
                         n->name, a, ri__shape_str(&x->shape, b, sizeof b));
    if (grow > 0 && p->mode == RI__PAD_REFLECT && grow > kept - 1)
      return ri__err_set(
          err, RI_ERR_SHAPE,
          "Pad node '%s': reflect padding of %lld on axis %d needs more than %lld elements (data %s)",
          n->name, (long long)grow, a, (long long)kept, ri__shape_str(&x->shape, b, sizeof b));
  }
  return RI_OK;
}

static ri_status pad_infer(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__err *err) {
  const ri__pad_params *p = n->params;
  if (!p) return ri__err_set(err, RI_ERR_INTERNAL, "Pad node '%s': check() has not run", n->name);
  const ri__tensor *x = &in[0];
  if (!ri_dtype_size(x->dtype))
    return ri__err_set(err, RI_ERR_SHAPE, "Pad node '%s': unsupported data type %s", n->name,
                       ri_dtype_name(x->dtype));
  if (n->n_inputs > 2 && in[2].dtype != RI_DTYPE_UNDEFINED) {
    int64_t cnt = ri__shape_numel(&in[2].shape);
    if (in[2].dtype != x->dtype || cnt > 1)
      return ri__err_set(err, RI_ERR_SHAPE, "Pad node '%s': constant_value must be one %s element, got %s",
                         n->name, ri_dtype_name(x->dtype), ri_dtype_name(in[2].dtype));
  }
  int64_t begin[RI__MAX_RANK], end[RI__MAX_RANK];
  RI__TRY(ri__pad_resolve(n, p, in, n->n_inputs, begin, end, err));
  out[0].dtype = x->dtype;
  out[0].data = NULL;
  out[0].shape = x->shape;
  for (int a = 0; a < x->shape.rank; a++)
    out[0].shape.dims[a] = x->shape.dims[a] + begin[a] + end[a];
  return RI_OK;
}

const ri__op_def ri__opdef_Pad = {"Pad", 2, 4, 1, 1, pad_check, pad_infer};
