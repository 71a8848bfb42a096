/* Helpers of the block fusions (cuda_fuse_util.h). */
#include <string.h>

#include "backend/cuda/cuda_fuse_util.h"
#include "core/alloc.h"
#include "core/half.h"
#include "graph/op.h"

int ri__cu_fuse_is_half_nhwc(const cu_state *st, int v) {
  return v >= 0 && st->vdt[v] == RI_DTYPE_FLOAT16 && st->vlayout[v] == CU_LAYOUT_NHWC &&
         st->g->values[v].shape.rank == 4;
}

const ri__conv_params *ri__cu_fuse_conv(const cu_state *st, int ni, int dw) {
  if (ni < 0) return NULL;
  const ri__node *n = &st->g->nodes[ni];
  const cu_node *cn = &st->nodes[ni];
  if (n->host || cn->skip || n->op != RI__OP_Conv || cn->impl != ri__cu_impl_conv()) return NULL;
  if (dw ? !cn->name || (strcmp(cn->name, "dwconv_nhwc_f16") != 0 &&
                         (dw != 2 || strcmp(cn->name, "dwconv_h2_f16") != 0))
         : !cn->fusable)
    return NULL;
  const ri__conv_params *p = n->params;
  return p && p->win.spatial_rank == 2 ? p : NULL;
}

int ri__cu_fuse_is_pointwise(const cu_state *st, int ni, const ri__conv_params *p) {
  const ri__graph *g = st->g;
  int64_t pads[4];
  const ri__shape *xs = &g->values[g->nodes[ni].inputs[0]].shape;
  ri__conv_resolve_pads(p, xs->dims[2], xs->dims[3], pads);
  if (p->win.kernel[0] != 1 || p->win.kernel[1] != 1 || p->win.stride[0] != 1 || p->win.stride[1] != 1 ||
      p->group != 1 || pads[0] || pads[1] || pads[2] || pads[3])
    return 0;
  const ri__value *w = &g->values[g->nodes[ni].inputs[1]];
  return w->shape.rank == 4 && w->data && w->dtype == RI_DTYPE_FLOAT32 &&
         w->nbytes == (size_t)(w->shape.dims[0] * w->shape.dims[1]) * sizeof(float);
}

const float *ri__cu_fuse_bias(const cu_state *st, int ni, int64_t count) {
  const ri__conv_params *p = st->g->nodes[ni].params;
  if (!p->has_bias) return NULL;
  const ri__value *b = &st->g->values[ri__cu_in(st, ni, 2)];
  return b->dtype == RI_DTYPE_FLOAT32 && b->nbytes == (size_t)count * sizeof(float) ? b->data : NULL;
}

ri_status ri__cu_fuse_add_half(cu_state *st, const float *src, int64_t n_rows, int64_t n_cols, int64_t src_ld,
                               int64_t rows, int64_t cols, int64_t *off, ri__err *err) {
  uint16_t *buf = ri__calloc((size_t)(rows * cols), sizeof *buf);
  if (!buf) return RI__OOM(err);
  for (int64_t r = 0; r < n_rows; r++)
    for (int64_t c = 0; c < n_cols; c++)
      buf[r * cols + c] = ri__float_to_half(src[r * src_ld + c]);
  ri_status s = ri__cu_blob_add(st, buf, (size_t)(rows * cols) * sizeof *buf, off, err);
  ri__free(buf);
  return s;
}

ri_status ri__cu_fuse_add_float(cu_state *st, const float *src, int64_t n, int64_t len, int64_t *off,
                                ri__err *err) {
  float *buf = ri__calloc((size_t)len, sizeof *buf);
  if (!buf) return RI__OOM(err);
  if (src) memcpy(buf, src, (size_t)n * sizeof *buf);
  ri_status s = ri__cu_blob_add(st, buf, (size_t)len * sizeof *buf, off, err);
  ri__free(buf);
  return s;
}

ri_status ri__cu_fuse_add_dw_taps(cu_state *st, int d, int64_t ce, int64_t ld, int64_t *off, ri__err *err) {
  const float *wd = st->g->values[ri__cu_in(st, d, 1)].data;
  float *tm = ri__calloc((size_t)(9 * ld), sizeof *tm);
  if (!tm) return RI__OOM(err);
  for (int64_t c = 0; c < ce; c++)
    for (int t = 0; t < 9; t++)
      tm[t * ld + c] = ri__half_to_float(ri__float_to_half(wd[c * 9 + t]));
  ri_status s = ri__cu_fuse_add_float(st, tm, 9 * ld, 9 * ld, off, err);
  ri__free(tm);
  return s;
}

ri_status ri__cu_fuse_place_output(cu_state *st, int f, int in_v, int out, int res, int skip_a, int skip_b,
                                   ri__err *err) {
  const int birth = st->g->values[out].producer;
  if (skip_a >= 0) st->nodes[skip_a].skip = 1;
  if (skip_b >= 0) st->nodes[skip_b].skip = 1;
  int clear = !ri__cu_overlaps(st, in_v, out) && (res < 0 || !ri__cu_overlaps(st, res, out)) &&
              ri__cu_window_clear(st, f + 1, birth, out);
  if (skip_a >= 0) st->nodes[skip_a].skip = 0;
  if (skip_b >= 0) st->nodes[skip_b].skip = 0;
  if (clear) return RI_OK;
  size_t nb = 0;
  RI__TRY(ri__tensor_nbytes(st->vdt[out], &st->g->values[out].shape, &nb, err));
  st->reloc_off[out] = st->reloc_bytes;
  st->reloc_bytes += ((int64_t)nb + CU_ALIGN - 1) / CU_ALIGN * CU_ALIGN;
  return RI_OK;
}
