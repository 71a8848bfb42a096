/* Data movement on the CUDA backend: Transpose, Concat, the reshaping ops (Reshape, Flatten, Squeeze,
 * Unsqueeze), Identity, Slice, Gather, Tile, Pad, and the device forms of Shape and Constant. Most of them
 * are one or more strided copies (ri__cu_copy over a walk in the destination's storage order) reading the
 * source through its layout's strides, so they accept inputs in any layout. Parameters that ONNX passes as
 * inputs (shapes, starts, pads, repeats) must be known on the host (constants or host-computed values). */
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/axis_util.h"
#include "graph/ops/pad_params.h"
#include "graph/ops/shape.h"
#include "graph/ops/slice.h"

/* Input k must exist, be an integer list and have host data at run time (constant or host value). */
static ri_status need_host_ints(cu_state *st, int ni, int k, int optional, ri__err *err) {
  int v = ri__cu_in(st, ni, k);
  if (v < 0) return optional ? RI_OK : ri__cu_unsupported(err, st, ni, "input %d is missing", k);
  const ri__value *val = &st->g->values[v];
  if (val->kind != RI__VAL_CONST && !val->host)
    return ri__cu_unsupported(err, st, ni,
                              "input %d ('%s') is computed on the device; it must be known on the host", k,
                              val->name ? val->name : "?");
  if (val->dtype != RI_DTYPE_INT64 && val->dtype != RI_DTYPE_INT32)
    return ri__cu_unsupported(err, st, ni, "input %d has type %s (int32 or int64 expected)", k,
                              ri_dtype_name(val->dtype));
  return RI_OK;
}

static ri_status copy_walk(cu_ctx *c, int ni, const ri__cu_walk *w, const void *src, ri_dtype dt, void *dst,
                           ri__err *err) {
  const cu_state *st = c->st;
  if (w->rank > RI__CU_MAX_DIMS) return ri__err_set(err, RI_ERR_UNSUPPORTED, "copy of rank %d", w->rank);
  CU_RT(ri__cu_copy(c->stream, w, src, dt, dst, dt));
  return RI_OK;
}

static ri_status plain_prep(cu_state *st, int ni, ri__err *err) {
  ri__cu_use_input(st, ni, 0);
  st->nodes[ni].name = "copy";
  return RI_OK;
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze, Identity: the row-major bytes of the input ---- */

static ri_status reshape_prep(cu_state *st, int ni, ri__err *err) {
  const ri__node *n = &st->g->nodes[ni];
  if (n->op == RI__OP_Reshape) RI__TRY(need_host_ints(st, ni, 1, 0, err));
  if ((n->op == RI__OP_Squeeze || n->op == RI__OP_Unsqueeze) && n->n_inputs > 1)
    RI__TRY(need_host_ints(st, ni, 1, 1, err));
  return plain_prep(st, ni, err);
}

static ri_status reshape_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                             ri__err *err) {
  /* Identity keeps the layout; the others produce row-major data in the output's shape, which is the
   * row-major data of the input's shape. */
  int dl = c->st->g->nodes[ni].op == RI__OP_Identity ? out[0].layout : CU_LAYOUT_ROW;
  return ri__cu_convert(c, ni, &in[0].t->shape, in[0].p, in[0].dt, in[0].layout, out[0].p, out[0].dt, dl,
                        err);
}

static const cu_op_impl k_reshape = {reshape_prep, NULL, NULL, reshape_run};

/* ---- Transpose ---- */

static ri_status transpose_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                               ri__err *err) {
  const ri__node *n = &c->st->g->nodes[ni];
  const ri__shape *is = &in[0].t->shape, *os = &out[0].t->shape;
  const int64_t *perm = NULL;
  int np = ri__node_attr_ints(n, "perm", &perm);
  if (np != 0 && np != is->rank)
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Transpose): perm has %d entries for rank %d",
                       n->name, np, is->rank);
  int64_t ist[RI__MAX_RANK], src[RI__MAX_RANK], dst[RI__MAX_RANK];
  ri__cu_strides(is, in[0].layout, ist);
  ri__cu_strides(os, out[0].layout, dst);
  memset(src, 0, sizeof src);
  for (int ax = 0; ax < os->rank; ax++) {
    int64_t p = np ? perm[ax] : is->rank - 1 - ax;
    if (p < 0 || p >= is->rank)
      return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Transpose): bad perm", n->name);
    src[ax] = ist[p];
  }
  ri__cu_walk w;
  ri__cu_copy_walk(os, src, dst, out[0].layout, &w);
  return copy_walk(c, ni, &w, in[0].p, in[0].dt, out[0].p, err);
}

static const cu_op_impl k_transpose = {plain_prep, NULL, NULL, transpose_run};

/* ---- Concat ---- */

static ri_status concat_prep(cu_state *st, int ni, ri__err *err) {
  const ri__node *n = &st->g->nodes[ni];
  for (int k = 0; k < n->n_inputs; k++)
    ri__cu_use_input(st, ni, k);
  st->nodes[ni].name = "concat";
  return RI_OK;
}

static ri_status concat_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                            ri__err *err) {
  const ri__node *n = &c->st->g->nodes[ni];
  const ri__shape *os = &out[0].t->shape;
  int axis;
  if (!ri__norm_axis(ri__node_attr_int(n, "axis", 0), os->rank, &axis))
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Concat): axis out of range", n->name);
  int64_t ost[RI__MAX_RANK], ist[RI__MAX_RANK];
  ri__cu_strides(os, out[0].layout, ost);
  size_t es = ri__cu_esize(out[0].dt);
  int64_t pos = 0;
  for (int k = 0; k < n->n_inputs; k++) {
    if (in[k].v < 0) continue;
    const ri__shape *is = &in[k].t->shape;
    int64_t len = is->dims[axis];
    if (ri__shape_numel(is) > 0) {
      if (!in[k].p)
        return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Concat): input %d has no device data", n->name,
                           k);
      ri__cu_strides(is, in[k].layout, ist);
      ri__cu_walk w;
      ri__cu_copy_walk(is, ist, ost, out[0].layout, &w);
      RI__TRY(
          copy_walk(c, ni, &w, in[k].p, in[k].dt, (char *)out[0].p + (size_t)(pos * ost[axis]) * es, err));
    }
    pos += len;
  }
  return RI_OK;
}

static const cu_op_impl k_concat = {concat_prep, NULL, NULL, concat_run};

/* ---- Slice ---- */

static ri_status slice_prep(cu_state *st, int ni, ri__err *err) {
  const ri__node *n = &st->g->nodes[ni];
  if (n->n_inputs < 3 || n->n_inputs > 8)
    return ri__cu_unsupported(err, st, ni, "the attribute form of Slice (opset < 10)");
  RI__TRY(need_host_ints(st, ni, 1, 0, err));
  RI__TRY(need_host_ints(st, ni, 2, 0, err));
  RI__TRY(need_host_ints(st, ni, 3, 1, err));
  RI__TRY(need_host_ints(st, ni, 4, 1, err));
  return plain_prep(st, ni, err);
}

/* The node's inputs as plain tensors (vals entries; absent inputs have dtype UNDEFINED), for the graph's
 * shared helpers. */
static void plain_inputs(const ri__node *n, const cu_arg *in, ri__tensor *t) {
  for (int k = 0; k < n->n_inputs && k < 8; k++) {
    if (in[k].v >= 0 && in[k].t)
      t[k] = *in[k].t;
    else
      memset(&t[k], 0, sizeof t[k]);
  }
}

static ri_status slice_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                           ri__err *err) {
  const ri__node *n = &c->st->g->nodes[ni];
  const ri__shape *is = &in[0].t->shape, *os = &out[0].t->shape;
  ri__tensor t[8];
  plain_inputs(n, in, t);
  ri__slice_plan plan;
  RI__TRY(ri__slice_plan_make(n, t, &plan, err));
  if (!ri__shape_equal(&plan.out, os))
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Slice): plan and shape inference disagree", n->name);
  if (ri__shape_numel(os) <= 0) return RI_OK;
  int64_t ist[RI__MAX_RANK], src[RI__MAX_RANK], dst[RI__MAX_RANK], off = 0;
  ri__cu_strides(is, in[0].layout, ist);
  ri__cu_strides(os, out[0].layout, dst);
  memset(src, 0, sizeof src);
  for (int a = 0; a < is->rank; a++) {
    off += plan.start[a] * ist[a];
    src[a] = plan.step[a] * ist[a];
  }
  ri__cu_walk w;
  ri__cu_copy_walk(os, src, dst, out[0].layout, &w);
  return copy_walk(c, ni, &w, (const char *)in[0].p + (size_t)off * ri__cu_esize(in[0].dt), in[0].dt,
                   out[0].p, err);
}

static const cu_op_impl k_slice = {slice_prep, NULL, NULL, slice_run};

/* ---- Gather ---- */

static ri_status gather_prep(cu_state *st, int ni, ri__err *err) {
  int iv = ri__cu_in(st, ni, 1);
  if (iv < 0) return ri__cu_unsupported(err, st, ni, "missing indices");
  ri_dtype it = st->g->values[iv].dtype;
  if (it != RI_DTYPE_INT64 && it != RI_DTYPE_INT32)
    return ri__cu_unsupported(err, st, ni, "indices of type %s", ri_dtype_name(it));
  ri__cu_use_input(st, ni, 0);
  ri__cu_use_input(st, ni, 1);
  st->nodes[ni].name = "gather";
  return RI_OK;
}

static ri_status gather_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                            ri__err *err) {
  const cu_state *st = c->st;
  const ri__node *n = &st->g->nodes[ni];
  const ri__shape *ds = &in[0].t->shape;
  int axis;
  if (!ri__norm_axis(ri__node_attr_int(n, "axis", 0), ds->rank, &axis))
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Gather): axis out of range", n->name);
  int64_t outer = 1, inner = 1, n_idx = ri__shape_numel(&in[1].t->shape), dim = ds->dims[axis];
  for (int k = 0; k < axis; k++)
    outer *= ds->dims[k];
  for (int k = axis + 1; k < ds->rank; k++)
    inner *= ds->dims[k];
  if (in[1].t->data) {
    for (int64_t j = 0; j < n_idx; j++) {
      int64_t v = ri__tensor_get_int(in[1].t, j);
      if (v < -dim || v >= dim)
        return ri__err_set(err, RI_ERR_INVALID_ARG, "node '%s' (Gather): index %lld is outside [-%lld, %lld)",
                           n->name, (long long)v, (long long)dim, (long long)dim);
    }
  }
  CU_RT(ri__cu_gather(c->stream, in[0].p, ri__cu_esize(in[0].dt), in[1].p, in[1].dt, out[0].p, outer, dim,
                      n_idx, inner));
  return RI_OK;
}

static const cu_op_impl k_gather = {gather_prep, NULL, NULL, gather_run};

/* ---- Tile: output axis a of size r * d walked as (r, d) with the repeat reading stride 0 ---- */

static ri_status tile_prep(cu_state *st, int ni, ri__err *err) {
  RI__TRY(need_host_ints(st, ni, 1, 0, err));
  return plain_prep(st, ni, err);
}

static ri_status tile_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                          ri__err *err) {
  const ri__node *n = &c->st->g->nodes[ni];
  const ri__shape *is = &in[0].t->shape, *os = &out[0].t->shape;
  if (ri__shape_numel(os) <= 0) return RI_OK;
  int64_t ist[RI__MAX_RANK], ost[RI__MAX_RANK];
  ri__cu_strides(is, in[0].layout, ist);
  ri__cu_strides(os, CU_LAYOUT_ROW, ost);
  ri__cu_walk w;
  memset(&w, 0, sizeof w);
  for (int a = 0; a < os->rank; a++) {
    int64_t d = is->dims[a], r = d > 0 ? os->dims[a] / d : 0;
    if (r * d != os->dims[a])
      return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Tile): output is not a multiple", n->name);
    if (r > 1) {
      if (w.rank >= RI__CU_MAX_DIMS)
        return ri__err_set(err, RI_ERR_UNSUPPORTED, "node '%s' (Tile): too many axes", n->name);
      w.dims[w.rank] = r, w.st[0][w.rank] = d * ost[a], w.st[1][w.rank] = 0, w.rank++;
    }
    if (w.rank >= RI__CU_MAX_DIMS)
      return ri__err_set(err, RI_ERR_UNSUPPORTED, "node '%s' (Tile): too many axes", n->name);
    w.dims[w.rank] = d, w.st[0][w.rank] = ost[a], w.st[1][w.rank] = ist[a], w.rank++;
  }
  ri__cu_walk_simplify(&w, 2);
  return copy_walk(c, ni, &w, in[0].p, in[0].dt, out[0].p, err);
}

static const cu_op_impl k_tile = {tile_prep, NULL, NULL, tile_run};

/* ---- Pad (constant mode) ---- */

static ri_status pad_prep(cu_state *st, int ni, ri__err *err) {
  const ri__node *n = &st->g->nodes[ni];
  if (!n->params) return ri__cu_unsupported(err, st, ni, "parameters were not resolved");
  if (n->n_inputs < 2 || n->n_inputs > 4) return ri__cu_unsupported(err, st, ni, "%d inputs", n->n_inputs);
  RI__TRY(need_host_ints(st, ni, 1, 0, err));
  RI__TRY(need_host_ints(st, ni, 3, 1, err));
  int cv = ri__cu_in(st, ni, 2);
  if (cv >= 0 && st->g->values[cv].kind != RI__VAL_CONST && !st->g->values[cv].host)
    return ri__cu_unsupported(err, st, ni, "a constant_value computed on the device");
  return plain_prep(st, ni, err);
}

static ri_status pad_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                         ri__err *err) {
  const cu_state *st = c->st;
  const ri__node *n = &st->g->nodes[ni];
  const ri__pad_params *p = n->params;
  const ri__shape *is = &in[0].t->shape, *os = &out[0].t->shape;
  int r = is->rank;
  ri__tensor t[8];
  plain_inputs(n, in, t);
  int64_t pb[RI__MAX_RANK], pe[RI__MAX_RANK];
  RI__TRY(ri__pad_resolve(n, p, t, n->n_inputs, pb, pe, err));
  /* The constant as a double, from its bytes in the graph type of the data. */
  unsigned char raw[8];
  memset(raw, 0, sizeof raw);
  if (p->value_known)
    memcpy(raw, p->value, sizeof raw);
  else if (n->n_inputs > 2 && t[2].data && ri__shape_numel(&t[2].shape) == 1)
    memcpy(raw, t[2].data, ri_dtype_size(t[2].dtype));
  ri__tensor vt = {.dtype = in[0].t->dtype, .data = raw};
  double value = ri__tensor_get_double(&vt, 0);
  if (ri__shape_numel(os) <= 0) return RI_OK;
  if (r == 0) {
    CU_RT(cudaMemcpyAsync(out[0].p, in[0].p, ri__cu_esize(in[0].dt), cudaMemcpyDeviceToDevice, c->stream));
    return RI_OK;
  }
  int64_t ist[RI__MAX_RANK], ost[RI__MAX_RANK];
  ri__cu_strides(is, in[0].layout, ist);
  ri__cu_strides(os, out[0].layout, ost);
  ri__cu_pad_args pa;
  memset(&pa, 0, sizeof pa);
  pa.w.rank = r;
  pa.mode = p->mode == RI__PAD_REFLECT ? 1 : p->mode == RI__PAD_EDGE ? 2 : 0;
  for (int a = 0; a < r; a++) {
    int64_t skip = pb[a] < 0 ? -pb[a] : 0;
    pa.w.dims[a] = os->dims[a];
    pa.w.st[0][a] = ost[a];
    pa.w.st[1][a] = ist[a];
    pa.out_off[a] = pb[a] > 0 ? pb[a] : 0;
    pa.in_off[a] = skip;
    pa.in_len[a] = is->dims[a] - skip - (pe[a] < 0 ? -pe[a] : 0);
  }
  CU_RT(ri__cu_pad(c->stream, &pa, in[0].p, out[0].p, out[0].dt, value));
  return RI_OK;
}

static const cu_op_impl k_pad = {pad_prep, NULL, NULL, pad_run};

/* ---- Shape and Constant when not evaluated on the host ---- */

static ri_status shape_prep(cu_state *st, int ni, ri__err *err) {
  st->nodes[ni].name = "shape";
  return RI_OK;
}

static ri_status shape_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                           ri__err *err) {
  const cu_state *st = c->st;
  const ri__node *n = &st->g->nodes[ni];
  const ri__shape *is = &in[0].t->shape;
  int start, end;
  ri__shape_op_range(n, is->rank, &start, &end);
  if (out[0].dt != RI_DTYPE_INT64 || ri__shape_numel(&out[0].t->shape) != (end > start ? end - start : 0))
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Shape): output does not match", n->name);
  for (int i = start; i < end; i++)
    CU_RT(ri__cu_fill(c->stream, (int64_t *)out[0].p + (i - start), RI_DTYPE_INT64, 1, (double)is->dims[i]));
  return RI_OK;
}

static const cu_op_impl k_shape = {shape_prep, NULL, NULL, shape_run};

typedef struct {
  int64_t off;
  size_t nbytes;
} constant_aux;

static ri_status constant_prep(cu_state *st, int ni, ri__err *err) {
  const ri__node *n = &st->g->nodes[ni];
  const ri__const_params *p = n->params;
  if (!p) return ri__cu_unsupported(err, st, ni, "parameters were not resolved");
  constant_aux *a = ri__calloc(1, sizeof *a);
  if (!a) return RI__OOM(err);
  st->nodes[ni].aux = a;
  ri__value tmp;
  memset(&tmp, 0, sizeof tmp);
  tmp.dtype = p->dtype;
  tmp.shape = p->shape;
  tmp.data = (void *)p->data;
  tmp.nbytes = p->nbytes;
  void *data = ri__cu_const_as(&tmp, st->fp16 && p->dtype == RI_DTYPE_FLOAT32 ? RI_DTYPE_FLOAT16 : p->dtype,
                               &a->nbytes);
  if (!data) return RI__OOM(err);
  ri_status s = ri__cu_blob_add(st, data, a->nbytes, &a->off, err);
  ri__free(data);
  st->nodes[ni].name = "constant";
  return s;
}

static ri_status constant_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                              ri__err *err) {
  const cu_state *st = c->st;
  const constant_aux *a = st->nodes[ni].aux;
  size_t nb = (size_t)ri__shape_numel(&out[0].t->shape) * ri__cu_esize(out[0].dt);
  if (nb != a->nbytes)
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Constant): %zu bytes prepared, %zu expected",
                       st->g->nodes[ni].name, a->nbytes, nb);
  if (nb)
    CU_RT(cudaMemcpyAsync(out[0].p, ri__cu_const_ptr(st, a->off), nb, cudaMemcpyDeviceToDevice, c->stream));
  return RI_OK;
}

static const cu_op_impl k_constant = {constant_prep, NULL, NULL, constant_run};

const cu_op_impl *ri__cu_impl_reshape(void) { return &k_reshape; }
const cu_op_impl *ri__cu_impl_transpose(void) { return &k_transpose; }
const cu_op_impl *ri__cu_impl_concat(void) { return &k_concat; }
const cu_op_impl *ri__cu_impl_slice(void) { return &k_slice; }
const cu_op_impl *ri__cu_impl_gather(void) { return &k_gather; }
const cu_op_impl *ri__cu_impl_tile(void) { return &k_tile; }
const cu_op_impl *ri__cu_impl_pad(void) { return &k_pad; }
const cu_op_impl *ri__cu_impl_shape(void) { return &k_shape; }
const cu_op_impl *ri__cu_impl_constant(void) { return &k_constant; }
