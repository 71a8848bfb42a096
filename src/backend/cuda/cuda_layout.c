/* Device element types and tensor layouts of every value (see cuda_internal.h).
 *
 * Engines run rank-4 convolutions in NHWC (fp16 engines always; fp32 engines unless RI_CUDA_F32_LAYOUT=nchw,
 * which keeps an fp32 engine row-major throughout, on cuDNN NCHW and the NCHW depthwise kernel); the layout
 * then flows forward through ops that do not care (elementwise, pooling, per-channel ops) or that read
 * through strides (binary ops, copies), and is converted back where an op needs row-major data. A Transpose
 * picks the output layout that makes it a plain copy when one does (Conv -> Transpose(0,2,3,1) in SSD heads,
 * Transpose(0,3,1,2) of an NHWC model input). */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/axis_util.h"

static int is_conv2d(const ri__graph *g, const ri__node *n) {
  return n->op == RI__OP_Conv && n->n_inputs > 1 && n->inputs[0] >= 0 &&
         g->values[n->inputs[0]].shape.rank == 4;
}

/* Layout-transparent ops: output layout = input 0's layout, any input layout accepted. */
static int passes_layout(const ri__graph *g, const ri__node *n) {
  switch (n->op) {
  case RI__OP_Relu:
  case RI__OP_Clip:
  case RI__OP_LeakyRelu:
  case RI__OP_HardSigmoid:
  case RI__OP_HardSwish:
  case RI__OP_Sigmoid:
  case RI__OP_Exp:
  case RI__OP_Cast:
  case RI__OP_Identity:
  case RI__OP_BatchNormalization:
  case RI__OP_MaxPool:
  case RI__OP_AveragePool: return 1;
  case RI__OP_QuantizeLinear:
  case RI__OP_DequantizeLinear: {
    if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0) return 0;
    const ri__value *x = &g->values[n->inputs[0]], *s = &g->values[n->inputs[1]];
    if (ri__shape_numel(&s->shape) == 1) return 1;
    int axis;
    return ri__norm_axis(ri__node_attr_int(n, "axis", 1), x->shape.rank, &axis) && axis == 1;
  }
  default: return 0;
  }
}

/* Ops that read their inputs through strides and accept any layout but write row-major outputs. */
static int reads_strided(ri__op op) {
  switch (op) {
  case RI__OP_Add:
  case RI__OP_Sub:
  case RI__OP_Mul:
  case RI__OP_Div:
  case RI__OP_Transpose:
  case RI__OP_Concat:
  case RI__OP_Reshape:
  case RI__OP_Flatten:
  case RI__OP_Squeeze:
  case RI__OP_Unsqueeze:
  case RI__OP_Slice:
  case RI__OP_Tile:
  case RI__OP_Pad:
  case RI__OP_Shape:
  case RI__OP_GlobalAveragePool: return 1;
  default: return 0;
  }
}

/* 1 when copying a tensor of logical shape `out` read with source strides src_st into layout `dl` is a
 * single contiguous run. */
static int is_plain_copy(const ri__shape *out, const int64_t src_st[RI__MAX_RANK], int dl) {
  int64_t dst[RI__MAX_RANK];
  ri__cu_strides(out, dl, dst);
  ri__cu_walk w;
  ri__cu_copy_walk(out, src_st, dst, dl, &w);
  return w.rank == 0 || (w.rank == 1 && w.st[0][0] == 1 && w.st[1][0] == 1);
}

static int transpose_layout(const cu_state *st, const ri__node *n) {
  const ri__graph *g = st->g;
  int vi = n->inputs[0], vo = n->outputs[0];
  const ri__shape *is = &g->values[vi].shape, *os = &g->values[vo].shape;
  if (os->rank != 4 || is->rank != 4) return CU_LAYOUT_ROW;
  const int64_t *perm = NULL;
  int np = ri__node_attr_ints(n, "perm", &perm);
  int p[4] = {3, 2, 1, 0};
  if (np == 4) {
    for (int i = 0; i < 4; i++) {
      if (perm[i] < 0 || perm[i] > 3) return CU_LAYOUT_ROW;
      p[i] = (int)perm[i];
    }
  } else if (np != 0) {
    return CU_LAYOUT_ROW;
  }
  int64_t in_st[RI__MAX_RANK], src[RI__MAX_RANK];
  ri__cu_strides(is, st->vlayout[vi], in_st);
  memset(src, 0, sizeof src);
  for (int i = 0; i < 4; i++)
    src[i] = in_st[p[i]];
  if (is_plain_copy(os, src, CU_LAYOUT_ROW)) return CU_LAYOUT_ROW;
  if (is_plain_copy(os, src, CU_LAYOUT_NHWC)) return CU_LAYOUT_NHWC;
  return CU_LAYOUT_ROW;
}

ri_status ri__cu_assign_layouts(cu_state *st, ri__err *err) {
  const ri__graph *g = st->g;
  for (int v = 0; v < g->n_values; v++) {
    ri_dtype dt = g->values[v].dtype;
    st->vdt[v] = st->fp16 && dt == RI_DTYPE_FLOAT32 ? RI_DTYPE_FLOAT16 : dt;
    st->vlayout[v] = CU_LAYOUT_ROW;
  }
  const char *f32_layout = getenv("RI_CUDA_F32_LAYOUT");
  st->nhwc = st->fp16 || !(f32_layout && strcmp(f32_layout, "nchw") == 0);
  if (!st->nhwc) return RI_OK;
  const ri_dtype ft = st->fp16 ? RI_DTYPE_FLOAT16 : RI_DTYPE_FLOAT32; /* the engine's float type */

  /* A float input read only by QuantizeLinear stays float32: quantizing the caller's exact values avoids
   * the rounding flips that a detour through half would cause at rounding boundaries. */
  for (int i = 0; i < g->n_inputs; i++) {
    int v = g->inputs[i], only_q = 0;
    if (g->values[v].dtype != RI_DTYPE_FLOAT32) continue;
    for (int ni = 0; ni < g->n_nodes; ni++) {
      const ri__node *n = &g->nodes[ni];
      for (int k = 0; k < n->n_inputs; k++) {
        if (n->inputs[k] != v) continue;
        only_q = only_q >= 0 && n->op == RI__OP_QuantizeLinear && k == 0 && !n->host ? 1 : -1;
      }
    }
    if (only_q == 1) st->vdt[v] = RI_DTYPE_FLOAT32;
  }

  /* A float image input read only by direct few-channel convolutions stays as given (float32, row-major):
   * the kernel reads it in place, with no conversion pass. */
  for (int i = 0; i < g->n_inputs; i++) {
    int v = g->inputs[i], only_stem = 0;
    if (g->values[v].shape.rank != 4 || st->vdt[v] != ft) continue;
    for (int ni = 0; ni < g->n_nodes; ni++) {
      const ri__node *n = &g->nodes[ni];
      for (int k = 0; k < n->n_inputs; k++) {
        if (n->inputs[k] != v) continue;
        only_stem = only_stem >= 0 && k == 0 && !n->host && ri__cu_conv_is_stem(st, ni) ? 1 : -1;
      }
    }
    if (only_stem == 1) st->vdt[v] = RI_DTYPE_FLOAT32;
  }

  /* A float image input that a 2-D convolution other than a direct one reads is stored NHWC at entry. */
  for (int i = 0; i < g->n_inputs; i++) {
    int v = g->inputs[i];
    if (g->values[v].shape.rank != 4 || st->vdt[v] != ft) continue;
    for (int ni = 0; ni < g->n_nodes; ni++)
      if (!g->nodes[ni].host && is_conv2d(g, &g->nodes[ni]) && g->nodes[ni].inputs[0] == v &&
          !ri__cu_conv_is_stem(st, ni))
        st->vlayout[v] = CU_LAYOUT_NHWC;
  }

  for (int ni = 0; ni < g->n_nodes; ni++) {
    const ri__node *n = &g->nodes[ni];
    if (n->host) continue;
    int out_layout = CU_LAYOUT_ROW;
    int vo = n->n_outputs > 0 ? n->outputs[0] : -1;
    int out_rank4 = vo >= 0 && g->values[vo].shape.rank == 4;
    if (is_conv2d(g, n)) {
      if (!ri__cu_conv_is_stem(st, ni)) RI__TRY(ri__cu_want(st, ni, 0, CU_WANT_NHWC, err));
      out_layout = CU_LAYOUT_NHWC;
    } else if (passes_layout(g, n)) {
      if (n->inputs[0] >= 0) out_layout = st->vlayout[n->inputs[0]];
    } else if (n->op == RI__OP_Transpose) {
      out_layout = transpose_layout(st, n);
    } else if (n->op == RI__OP_Add || n->op == RI__OP_Sub || n->op == RI__OP_Mul || n->op == RI__OP_Div) {
      for (int k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] >= 0 && st->vlayout[n->inputs[k]] == CU_LAYOUT_NHWC) out_layout = CU_LAYOUT_NHWC;
    } else if (n->op == RI__OP_Concat) {
      int all = n->n_inputs > 0;
      for (int k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] < 0 || st->vlayout[n->inputs[k]] != CU_LAYOUT_NHWC) all = 0;
      out_layout = all ? CU_LAYOUT_NHWC : CU_LAYOUT_ROW;
    } else if (!reads_strided(n->op)) {
      for (int k = 0; k < n->n_inputs; k++)
        RI__TRY(ri__cu_want(st, ni, k, CU_WANT_ROW, err));
    }
    if (vo >= 0 && out_rank4) st->vlayout[vo] = (unsigned char)out_layout;
    for (int k = 1; k < n->n_outputs; k++)
      if (n->outputs[k] >= 0) st->vlayout[n->outputs[k]] = CU_LAYOUT_ROW;
  }

  /* Scratch for converted inputs, at the maximum batch. */
  for (int ni = 0; ni < g->n_nodes; ni++) {
    const ri__node *n = &g->nodes[ni];
    cu_node *cn = &st->nodes[ni];
    cn->cvt_bytes = 0;
    if (!cn->want || n->host) continue;
    for (int k = 0; k < n->n_inputs; k++) {
      int v = n->inputs[k];
      if (v < 0 || cn->want[k] == CU_WANT_ANY || g->values[v].shape.rank != 4) continue;
      int have = st->vlayout[v];
      int need = cn->want[k] == CU_WANT_NHWC ? CU_LAYOUT_NHWC : CU_LAYOUT_ROW;
      if (have == need) continue;
      int64_t numel = ri__shape_numel(&g->values[v].shape);
      if (numel < 0) return ri__err_set(err, RI_ERR_INTERNAL, "value '%s' has no shape", g->values[v].name);
      int64_t nb = (numel * (int64_t)ri__cu_esize(st->vdt[v]) + CU_ALIGN - 1) / CU_ALIGN * CU_ALIGN;
      cn->cvt_bytes += nb;
    }
  }
  return RI_OK;
}
