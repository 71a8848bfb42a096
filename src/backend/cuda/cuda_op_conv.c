/* Conv on the CUDA backend (BatchNormalization: cuda_op_batchnorm.c; cuDNN algorithms: cuda_conv_cudnn.c).
 *
 * Conv: depthwise convolutions (group == C == M, kernel up to 7x7) run on the backend's own kernel with
 * bias and activation fused (k_dwconv.cu). In NHWC engines (cu_state.nhwc) a convolution with 1 to 4 input
 * channels runs on the direct kernel (k_stemconv.cu), and every other 2-D convolution with group 1 on the
 * backend's implicit GEMM with bias, residual and activation fused: fp16 engines the tensor-core one
 * (k_convgemm.cu: NHWC half, float accumulation, one rounding to half), fp32 engines the FFMA one
 * (k_convgemm_f32.cu: NHWC float, every product and sum in fp32), or, where the tuner found it faster at
 * the maximum batch, the 3xTF32 tensor-core one (k_convgemm_tf32.cu, about fp32 accuracy) for every batch
 * of that node. RI_CUDA_CONV=cudnn turns both off. The
 * rest runs on cuDNN's legacy convolution API, followed by a bias + activation epilogue kernel when the
 * node has either: fp32 engines with FMA math only (no TF32, so results stay within fp32 rounding of the
 * reference), NCHW (RI_CUDA_F32_LAYOUT=nchw) or NHWC; fp16 engines NHWC half tensors with float
 * accumulation and tensor-core math.
 *
 * cuDNN takes symmetric pads only: the symmetric part goes to cuDNN and the rest (TF "SAME" pads such as
 * [0,0,1,1]) is applied by padding the input into scratch first.
 *
 * Batch invariance: an image's output must not depend on the batch it runs in. The tensor-core GEMM's K
 * segmentation (ri__cu_convgemm_tactic.seg_ktiles) is fixed per node at prepare, from the batch-1 geometry;
 * every batch then sums K in the same segments and order, whether they run in separate blocks or in one.
 * cuDNN convolutions use one algorithm for every batch size.
 *
 * Algorithms: each context searches (cudnnFindConvolutionForwardAlgorithmEx, or the heuristics with
 * RI_CUDA_CONV_ALGO=heuristic, or the algorithm number RI_CUDA_CONV_ALGO=N) at the maximum batch when it is
 * created, restricted to the context's workspace, and runs every batch size with that algorithm. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_conv.h"
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/cuda_tactics.h"
#include "core/alloc.h"
#include "core/half.h"
#include "graph/op.h"
#include "graph/ops/conv_params.h"

void ri__cu_conv_geometry(const ri__conv_params *p, const ri__shape *x, const ri__shape *y, conv_geo *g) {
  memset(g, 0, sizeof *g);
  g->n = x->dims[0];
  g->c = x->dims[1];
  ri__window_hw(&p->win, x, &g->ih, &g->iw);
  ri__window_hw(&p->win, y, &g->oh, &g->ow);
  ri__conv_resolve_pads(p, g->ih, g->iw, g->pads);
  g->sym_h = g->pads[0] < g->pads[2] ? g->pads[0] : g->pads[2];
  g->sym_w = g->pads[1] < g->pads[3] ? g->pads[1] : g->pads[3];
  g->ex_t = g->pads[0] - g->sym_h;
  g->ex_b = g->pads[2] - g->sym_h;
  g->ex_l = g->pads[1] - g->sym_w;
  g->ex_r = g->pads[3] - g->sym_w;
}

static int has_extra_pad(const conv_geo *g) { return g->ex_t || g->ex_b || g->ex_l || g->ex_r; }

/* The input goes through the pad kernel into scratch: asymmetric pads, or zero channels appended. */
int ri__cu_conv_needs_pad(const conv_aux *a, const conv_geo *g) {
  return has_extra_pad(g) || a->cg_pad != a->cg;
}

/* Channels of the (padded) input that cuDNN reads. */
int64_t ri__cu_conv_cudnn_channels(const conv_aux *a, const conv_geo *g) {
  return a->cg_pad != a->cg ? a->cg_pad : g->c;
}

/* Weights as the implementation wants them: cuDNN NCHW keeps ONNX's [M, Cg, kh, kw]; cuDNN NHWC and the
 * tensor-core GEMM want [M, kh, kw, Cg] (rows of ldw halves, zero-padded); the fp32 GEMM wants
 * [kh, kw, Cg][M] (rows of ldw floats, zero-padded); the depthwise kernel wants [C, kh, kw] (NCHW) or
 * [kh, kw, C] (NHWC). */
static ri_status upload_weights(cu_state *st, int ni, conv_aux *a, ri__err *err) {
  const ri__value *wv = &st->g->values[ri__cu_in(st, ni, 1)];
  const float *w = wv->data;
  int64_t count = a->m * a->cg * a->kh * a->kw;
  int f32_gemm = a->gemm && !st->fp16;
  int64_t padded = f32_gemm                   ? a->kh * a->kw * a->cg * a->ldw
                   : a->nhwc && !a->depthwise ? a->m_rows * a->ldw
                                              : a->m * a->cg_pad * a->kh * a->kw;
  if ((size_t)count * sizeof(float) != wv->nbytes)
    return ri__cu_unsupported(err, st, ni, "weight holds %zu bytes, expected %lld floats", wv->nbytes,
                              (long long)count);
  size_t es = st->fp16 ? 2 : 4;
  unsigned char *buf = ri__calloc((size_t)padded, es);
  if (!buf) return RI__OOM(err);
  int64_t ksz = a->kh * a->kw;
  for (int64_t m = 0; m < a->m; m++)
    for (int64_t c = 0; c < a->cg; c++)
      for (int64_t k = 0; k < ksz; k++) {
        int64_t src = (m * a->cg + c) * ksz + k, dst = src;
        if (f32_gemm)
          dst = (k * a->cg + c) * a->ldw + m;
        else if (a->nhwc && a->depthwise)
          dst = k * a->m + m;
        else if (a->nhwc)
          dst = m * a->ldw + k * a->cg_pad + c;
        if (st->fp16) {
          uint16_t h = ri__float_to_half(w[src]);
          memcpy(buf + dst * 2, &h, 2);
        } else {
          memcpy(buf + dst * 4, &w[src], 4);
        }
      }
  ri_status s = ri__cu_blob_add(st, buf, (size_t)padded * es, &a->w_off, err);
  ri__free(buf);
  return s;
}

/* Arguments of the tensor-core convolution for one geometry, writing as cu_node.co says. The input is the
 * node's input, or its copy with channels appended up to cg_pad. */
static void gemm_args(const cu_state *st, int ni, const conv_geo *geo, ri__cu_convgemm_args *ga) {
  const conv_aux *a = st->nodes[ni].aux;
  const ri__conv_params *p = st->g->nodes[ni].params;
  const cu_conv_out *co = &st->nodes[ni].co;
  memset(ga, 0, sizeof *ga);
  ga->n = (int)geo->n, ga->ih = (int)geo->ih, ga->iw = (int)geo->iw, ga->c = (int)a->cg_pad;
  ga->oh = (int)geo->oh, ga->ow = (int)geo->ow, ga->m_out = (int)a->m;
  ga->kh = (int)a->kh, ga->kw = (int)a->kw;
  ga->k = (int)(a->kh * a->kw * a->cg_pad);
  ga->ldw = (int)a->ldw;
  ga->sh = (int)p->win.stride[0], ga->sw = (int)p->win.stride[1];
  ga->dh = (int)p->win.dilation[0], ga->dw = (int)p->win.dilation[1];
  ga->pad_t = (int)geo->pads[0], ga->pad_l = (int)geo->pads[1];
  ga->rows_per_img = geo->oh * geo->ow;
  ga->ldy = co->ldy > 0 ? co->ldy : a->m;
  ga->y_off = co->y_off;
  ga->y_img_stride = co->img_stride > 0 ? co->img_stride : ga->rows_per_img * ga->ldy;
  ga->ldr = a->m;
  ga->act = co->act, ga->act_a = co->act_a, ga->act_b = co->act_b;
  ga->y_f32 = co->out_f32;
  if (geo->n > INT32_MAX / 2 || geo->ih > INT32_MAX / 2 || geo->iw > INT32_MAX / 2 ||
      geo->oh > INT32_MAX / 2 || geo->ow > INT32_MAX / 2 || a->ldw > INT32_MAX)
    ga->k = -1; /* refused by ri__cu_convgemm_supported */
}

int ri__cu_conv_is_stem(const cu_state *st, int ni) {
  const ri__graph *g = st->g;
  const ri__node *n = &g->nodes[ni];
  const ri__conv_params *p = n->params;
  const char *env = getenv("RI_CUDA_CONV");
  if (!st->nhwc || n->op != RI__OP_Conv || !p || p->group != 1 || n->n_inputs < 2 || (env && *env)) return 0;
  int xv = ri__cu_in(st, ni, 0), wv = ri__cu_in(st, ni, 1);
  if (xv < 0 || wv < 0 || !ri__cu_in_const(st, ni, 1)) return 0;
  const ri__shape *xs = &g->values[xv].shape, *wsh = &g->values[wv].shape;
  if (xs->rank != 4 || wsh->rank != 4 || g->values[xv].dtype != RI_DTYPE_FLOAT32) return 0;
  int64_t cg = wsh->dims[1], m = wsh->dims[0];
  if (cg < 1 || cg > 4 || m < 1 || (m == 1 && xs->dims[1] == 1)) return 0; /* 1 channel: depthwise */
  return p->win.kernel[0] * p->win.kernel[1] * cg <= RI__CU_STEM_MAX_K;
}

/* Arguments of the direct kernel for one geometry and input layout. */
static void stem_args(const cu_state *st, int ni, const conv_geo *geo, const cu_arg *x,
                      ri__cu_stemconv_args *sa) {
  const conv_aux *a = st->nodes[ni].aux;
  const ri__conv_params *p = st->g->nodes[ni].params;
  memset(sa, 0, sizeof *sa);
  sa->n = (int)geo->n, sa->c = (int)a->cg, sa->ih = (int)geo->ih, sa->iw = (int)geo->iw;
  sa->oh = (int)geo->oh, sa->ow = (int)geo->ow, sa->m = (int)a->m;
  sa->kh = (int)a->kh, sa->kw = (int)a->kw, sa->k = (int)(a->kh * a->kw * a->cg);
  sa->sh = (int)p->win.stride[0], sa->sw = (int)p->win.stride[1];
  sa->dh = (int)p->win.dilation[0], sa->dw = (int)p->win.dilation[1];
  sa->pad_t = (int)geo->pads[0], sa->pad_l = (int)geo->pads[1];
  int64_t hw = geo->ih * geo->iw;
  sa->xs_n = geo->c * hw;
  if (x && x->layout == CU_LAYOUT_NHWC)
    sa->xs_c = 1, sa->xs_h = geo->iw * geo->c, sa->xs_w = geo->c;
  else
    sa->xs_c = hw, sa->xs_h = geo->iw, sa->xs_w = 1;
  const ri__node *n = &st->g->nodes[ni];
  sa->act = (int)n->act, sa->act_a = n->act_a, sa->act_b = n->act_b;
  sa->y_f32 = !st->fp16;
  if (geo->n > INT32_MAX || geo->ih > INT32_MAX || geo->iw > INT32_MAX || geo->oh > INT32_MAX ||
      geo->ow > INT32_MAX)
    sa->k = -1; /* refused by ri__cu_stemconv_supported */
}

/* Arguments of the depthwise kernel for one geometry. */
static void dw_args(const cu_state *st, int ni, const conv_geo *geo, ri__cu_dwconv_args *d) {
  const conv_aux *a = st->nodes[ni].aux;
  const ri__node *n = &st->g->nodes[ni];
  const ri__conv_params *p = n->params;
  memset(d, 0, sizeof *d);
  d->n = geo->n, d->c = geo->c, d->ih = geo->ih, d->iw = geo->iw, d->oh = geo->oh, d->ow = geo->ow;
  d->kh = (int)a->kh, d->kw = (int)a->kw;
  d->sh = (int)p->win.stride[0], d->sw = (int)p->win.stride[1];
  d->dh = (int)p->win.dilation[0], d->dw = (int)p->win.dilation[1];
  d->pad_t = (int)geo->pads[0], d->pad_l = (int)geo->pads[1];
  d->nhwc = a->nhwc;
  d->act = (int)n->act, d->act_a = n->act_a, d->act_b = n->act_b;
}

/* Half accumulation (ri_builder_set_half_accumulation; cfg.half_accum at build, RI__CU_TAC_DWH in the node's
 * tactic when loaded): fp16 NHWC depthwise convolutions that the half-arithmetic kernel takes
 * (ri__cu_dwconv_h2_supported at the prepared, maximum-batch geometry) run it at every batch instead of the
 * float-accumulating variants: other bits than the default engine's, the same bits for an image at every
 * batch. For a node without a stored tactic RI_CUDA_DW_HALF=1 / 0 overrides the builder's choice (before /
 * after comparisons); a node with another stored tactic keeps the float kernels. */
static int dw_half(const cu_state *st, int ni, const conv_geo *geo) {
  const conv_aux *a = st->nodes[ni].aux;
  const int32_t tac = st->g->nodes[ni].tactic;
  if (!st->fp16 || !a->nhwc) return 0;
  if (tac != RI__CU_TAC_DWH &&
      (tac != 0 || ri__cu_env_long("RI_CUDA_DW_HALF", st->cfg.half_accum ? 1 : 0, 0, 1) != 1))
    return 0;
  ri__cu_dwconv_args d;
  dw_args(st, ni, geo, &d);
  return ri__cu_dwconv_h2_supported(&d);
}

/* The tensor-core GEMM's K segmentation for every batch: what the heuristics give the batch-1 geometry on
 * this device with a context's split-K resources (the split that fills the device at batch 1, so batch 1
 * keeps its speed; larger batches sum the same segments within their blocks). */
static ri_status batch1_segments(cu_state *st, int ni, const conv_geo *geo, conv_aux *a, ri__err *err) {
  conv_geo one = *geo;
  one.n = 1;
  ri__cu_convgemm_args ga;
  gemm_args(st, ni, &one, &ga);
  int sms = 0;
  cudaError_t e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, st->cfg.device_index);
  if (e != cudaSuccess) return ri__cu_fail_rt(err, e, "cudaDeviceGetAttribute", st, ni, NULL);
  ri__cu_splitk sk;
  memset(&sk, 0, sizeof sk);
  sk.ws_bytes = RI__CU_SPLITK_WS_BYTES;
  sk.n_counters = RI__CU_SPLITK_COUNTERS;
  sk.sms = sms > 0 ? sms : 1;
  a->seg = st->fp16 ? ri__cu_convgemm_default_seg(&ga, &sk) : ri__cu_convgemm_f32_default_seg(&ga, &sk);
  return RI_OK;
}

static int batch_of(const conv_geo *g) { return g->n > INT32_MAX ? INT32_MAX : (int)g->n; }

/* ---- tactics (cuda_tactics.h) ---- */

int ri__cu_conv_tunable(const cu_state *st, int ni) {
  const cu_node *cn = &st->nodes[ni];
  /* A node whose tactic field holds another's value (a graph pass's) keeps it: the file can hold one. */
  if (st->g->nodes[ni].op != RI__OP_Conv || cn->impl != ri__cu_impl_conv() || cn->skip || !cn->aux ||
      st->g->nodes[ni].tactic != 0)
    return 0;
  const conv_aux *a = cn->aux;
  return a->gemm && !a->tuned;
}

int ri__cu_conv_default_seg(const cu_state *st, int ni) {
  const conv_aux *a = st->nodes[ni].aux;
  return a ? a->seg : 0;
}

void ri__cu_conv_tune_args(const cu_state *st, int ni, int batch, ri__cu_convgemm_args *ga, const void **w,
                           const float **bias) {
  const ri__node *n = &st->g->nodes[ni];
  const conv_aux *a = st->nodes[ni].aux;
  conv_geo geo;
  ri__cu_conv_geometry(n->params, &st->g->values[n->inputs[0]].shape, &st->g->values[n->outputs[0]].shape,
                       &geo);
  geo.n = batch;
  gemm_args(st, ni, &geo, ga);
  /* a dense output of its own: no slice, no residual */
  ga->ldy = a->m;
  ga->y_off = 0;
  ga->y_img_stride = ga->rows_per_img * ga->ldy;
  *w = ri__cu_const_ptr(st, a->w_off);
  *bias = a->b_off >= 0 ? ri__cu_const_ptr(st, a->b_off) : NULL;
}

/* A wgmma tactic (fp16 engines): the node runs k_pwgemm_wg.cu at every batch where the kernel is available
 * on this device and the geometry is one it runs, else the own kernel with the stored segment length (tiles
 * from the heuristics, or the build's own tactic: the same bits) at every batch, and says so in its name. */
static void set_wg_tactic(cu_state *st, int ni, const ri__cu_gemm_tac *t) {
  conv_aux *a = st->nodes[ni].aux;
  const ri__node *n = &st->g->nodes[ni];
  a->wg = 1;
  a->seg = t->seg < 0 ? 0 : t->seg > RI__CU_TAC_MAX_SEG ? RI__CU_TAC_MAX_SEG : t->seg;
  a->wg_us =
      ri__half_to_float((uint16_t)(ri__float_to_half(t->us) & 0x7f80)); /* as the engine file keeps it */
  conv_geo geo;
  ri__cu_conv_geometry(n->params, &st->g->values[n->inputs[0]].shape, &st->g->values[n->outputs[0]].shape,
                       &geo);
  ri__cu_convgemm_args ga;
  gemm_args(st, ni, &geo, &ga);
  a->wg_on = ri__cu_pwgemm_wg_supported(&ga) && ri__cu_pwgemm_wg_available();
  char tiles[RI__CU_TAC_BUCKETS][16];
  for (int b = 0; b < RI__CU_TAC_BUCKETS; b++) {
    a->wg_tile[b] = t->tile[b] & (3 | RI__CU_WG_S4);
    int bm, bn;
    ri__cu_tac_tile(RI__CU_KIND_WG, a->wg_tile[b], &bm, &bn);
    snprintf(tiles[b], sizeof tiles[b], "%dx%ds%d", bm, bn, a->wg_tile[b] & RI__CU_WG_S4 ? 4 : 3);
  }
  if (a->wg_on)
    snprintf(a->label, sizeof a->label, "wgmma tiles %s/%s/%s/%s, %.1f us at max batch", tiles[0], tiles[1],
             tiles[2], tiles[3], (double)a->wg_us);
  else
    snprintf(
        a->label, sizeof a->label,
        "gemm_nhwc_f16 seg %d (wgmma tactic, the kernel does not run on this device), %.1f us at max batch",
        a->seg, (double)a->wg_us);
  st->nodes[ni].name = a->label;
}

void ri__cu_conv_set_tactic(cu_state *st, int ni, const ri__cu_gemm_tac *t) {
  conv_aux *a = st->nodes[ni].aux;
  if (t->wg) {
    if (st->fp16 && a->gemm) set_wg_tactic(st, ni, t);
    return;
  }
  a->wg = a->wg_on = 0;
  a->seg = t->seg;
  a->tuned = 1;
  a->tf32 = t->tf32 && !st->fp16;
  const int kind = st->fp16 ? RI__CU_KIND_F16 : a->tf32 ? RI__CU_KIND_TF32 : RI__CU_KIND_F32;
  /* as the engine file keeps it (3xTF32 tactics: 4 mantissa bits fewer) */
  uint16_t us_bits = ri__float_to_half(t->us);
  a->tuned_us = ri__half_to_float(a->tf32 ? (uint16_t)(us_bits & 0xfff0) : us_bits);
  char tiles[RI__CU_TAC_BUCKETS][16];
  for (int b = 0; b < RI__CU_TAC_BUCKETS; b++) {
    /* the pointwise kernel only with one segment (ri__cu_tac_decode never gives it otherwise) */
    a->tile[b] = t->tile[b] == RI__CU_TILE_PW && t->seg == 0 && !a->tf32 ? RI__CU_TILE_PW : t->tile[b] & 3;
    int bm, bn;
    ri__cu_tac_tile(kind, a->tile[b], &bm, &bn);
    if (a->tile[b] == RI__CU_TILE_PW)
      snprintf(tiles[b], sizeof tiles[b], "pw");
    else
      snprintf(tiles[b], sizeof tiles[b], "%dx%d", bm, bn);
  }
  snprintf(a->label, sizeof a->label, "%s tiles %s/%s/%s/%s seg %d, %.1f us",
           st->fp16  ? "gemm_nhwc_f16"
           : a->tf32 ? "gemm_nhwc_3xtf32"
                     : "gemm_nhwc_f32",
           tiles[0], tiles[1], tiles[2], tiles[3], a->seg, (double)a->tuned_us);
  st->nodes[ni].name = a->label;
}

int ri__cu_conv_wg_tune_args(const cu_state *st, int ni, int batch, ri__cu_convgemm_args *ga, const void **w,
                             const float **bias, int *res) {
  const cu_node *cn = &st->nodes[ni];
  const conv_aux *a = cn->aux;
  if (!st->fp16 || !a || !a->gemm || cn->skip || a->kh != 1 || a->kw != 1) return 0;
  const ri__node *n = &st->g->nodes[ni];
  conv_geo geo;
  ri__cu_conv_geometry(n->params, &st->g->values[n->inputs[0]].shape, &st->g->values[n->outputs[0]].shape,
                       &geo);
  geo.n = batch;
  gemm_args(st, ni, &geo, ga); /* the output form the node runs: slice, output type, activation */
  if (!ri__cu_pwgemm_wg_supported(ga) || !ri__cu_pwgemm_wg_available()) return 0;
  *w = ri__cu_const_ptr(st, a->w_off);
  *bias = a->b_off >= 0 ? ri__cu_const_ptr(st, a->b_off) : NULL;
  *res = cn->fusable && cn->co.res_v >= 0;
  return 1;
}

int ri__cu_conv_lt_tune_args(const cu_state *st, int ni, int batch, ri__cu_ltconv_shape *s, int64_t *y_off,
                             const void **w, const float **bias_f, const void **bias_h) {
  if (!ri__cu_conv_lt_shape(st, ni, batch, s, y_off)) return 0;
  const conv_aux *a = st->nodes[ni].aux;
  *w = ri__cu_const_ptr(st, a->w_off);
  *bias_f = a->b_off >= 0 ? ri__cu_const_ptr(st, a->b_off) : NULL;
  *bias_h = a->bh_off >= 0 ? ri__cu_const_ptr(st, a->bh_off) : NULL;
  return 1;
}

void ri__cu_conv_set_lt_tactic(cu_state *st, int ni, const ri__cu_lt_tac *t) {
  conv_aux *a = st->nodes[ni].aux;
  if (!a || !a->gemm || !st->fp16) return;
  a->lt = 1;
  a->wg = a->wg_on = 0; /* one tactic per node: cuBLASLt replaces a wgmma one */
  a->lt_algo = t->algo & 7;
  a->lt_tag = t->tag & 15;
  a->lt_pad = t->pad != 0;
  if (a->lt_pad) {
    /* the padded form's dense half buffer at the maximum batch: the node's scratch */
    const ri__node *n = &st->g->nodes[ni];
    const ri__shape *ys = &st->g->values[n->outputs[0]].shape;
    int64_t rows = 1;
    for (int d = 2; d < ys->rank; d++)
      rows *= ys->dims[d];
    int64_t need = ys->dims[0] * rows * ((a->m + 7) / 8 * 8) * 2;
    if (need > st->nodes[ni].op_scratch) st->nodes[ni].op_scratch = need;
  }
  a->seg = t->seg < 0 ? 0 : t->seg > RI__CU_TAC_MAX_SEG ? RI__CU_TAC_MAX_SEG : t->seg;
  a->lt_us =
      ri__half_to_float((uint16_t)(ri__float_to_half(t->us) & 0xfff0)); /* as the engine file keeps it */
  st->uses_cublas = 1;
  snprintf(a->label, sizeof a->label, "cublaslt algo %d%s, %.1f us at max batch", a->lt_algo,
           a->lt_pad ? " padded" : "", (double)a->lt_us);
  st->nodes[ni].name = a->label;
}

int32_t ri__cu_conv_tactic(const cu_state *st, int ni) {
  const conv_aux *a = st->nodes[ni].aux;
  if (st->nodes[ni].impl != ri__cu_impl_conv() || !a) return 0;
  if (a->dnn_stored) return ri__cu_dnn_tac_encode(&a->dnn);
  if (a->dwh) return RI__CU_TAC_DWH;
  if ((a->depthwise || a->stem) && a->var_tuned) {
    ri__cu_var_tac v;
    v.us = a->var_us;
    for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
      v.var[b] = a->var[b];
    return ri__cu_var_tac_encode(&v);
  }
  if (a->gemm && a->lt) {
    ri__cu_lt_tac lt = {a->lt_algo, a->lt_tag, a->seg, a->lt_us, a->lt_pad};
    return ri__cu_lt_tac_encode(&lt);
  }
  ri__cu_gemm_tac t;
  memset(&t, 0, sizeof t);
  if (a->gemm && a->wg) { /* kept where the kernel does not run, so that a saved engine keeps the choice */
    t.wg = 1;
    t.seg = a->seg;
    t.us = a->wg_us;
    for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
      t.tile[b] = a->wg_tile[b];
    return ri__cu_tac_encode(&t);
  }
  if (!a->gemm || !a->tuned) return 0;
  t.seg = a->seg;
  t.us = a->tuned_us;
  t.tf32 = a->tf32;
  for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
    t.tile[b] = a->tile[b];
  return ri__cu_tac_encode(&t);
}

/* ---- kernel variants of the depthwise and stem convolutions (cuda_tactics.h) ---- */

/* The node's geometry at `batch` (its shapes at the maximum batch). */
static void geo_at(const cu_state *st, int ni, int batch, conv_geo *geo) {
  const ri__node *n = &st->g->nodes[ni];
  ri__cu_conv_geometry(n->params, &st->g->values[n->inputs[0]].shape, &st->g->values[n->outputs[0]].shape,
                       geo);
  geo->n = batch;
}

/* The stem's input as its runs see it: the value's device type and layout. */
static cu_arg stem_input(const cu_state *st, int ni) {
  cu_arg x;
  memset(&x, 0, sizeof x);
  x.v = ri__cu_in(st, ni, 0);
  x.dt = st->vdt[x.v];
  x.layout = st->vlayout[x.v];
  return x;
}

static int var_count_at(const cu_state *st, int ni, int batch) {
  const conv_aux *a = st->nodes[ni].aux;
  conv_geo geo;
  geo_at(st, ni, batch, &geo);
  if (a->depthwise) {
    ri__cu_dwconv_args d;
    dw_args(st, ni, &geo, &d);
    return ri__cu_dwconv_variants(st->fp16 ? RI_DTYPE_FLOAT16 : RI_DTYPE_FLOAT32, &d);
  }
  if (!a->stem_hw_ok) return 1;
  cu_arg x = stem_input(st, ni);
  ri__cu_stemconv_args sa;
  stem_args(st, ni, &geo, &x, &sa);
  return ri__cu_stemconv_variants(&sa);
}

int ri__cu_conv_var_count(const cu_state *st, int ni, int *stem) {
  const cu_node *cn = &st->nodes[ni];
  if (st->g->nodes[ni].op != RI__OP_Conv || cn->impl != ri__cu_impl_conv() || cn->skip || !cn->aux ||
      st->g->nodes[ni].tactic != 0)
    return 0;
  const conv_aux *a = cn->aux;
  if ((!a->depthwise && !a->stem) || a->var_tuned || a->dwh) return 0;
  *stem = a->stem;
  return var_count_at(st, ni, st->cfg.max_batch);
}

int ri__cu_conv_var_exact(const cu_state *st, int ni) {
  const conv_aux *a = st->nodes[ni].aux;
  int n = var_count_at(st, ni, st->cfg.max_batch);
  return a->stem && n > RI__CU_STEM_EXACT ? RI__CU_STEM_EXACT : n;
}

void ri__cu_conv_var_bytes(const cu_state *st, int ni, int batch, size_t *xb, size_t *yb) {
  const conv_aux *a = st->nodes[ni].aux;
  conv_geo geo;
  geo_at(st, ni, batch, &geo);
  size_t es = st->fp16 ? 2 : 4, xes = a->stem ? ri_dtype_size(st->vdt[ri__cu_in(st, ni, 0)]) : es;
  *xb = (size_t)(geo.n * geo.c * geo.ih * geo.iw) * xes;
  *yb = (size_t)(geo.n * a->m * geo.oh * geo.ow) * es;
}

void ri__cu_conv_var_key(const cu_state *st, int ni, char *buf, size_t cap) {
  const conv_aux *a = st->nodes[ni].aux;
  conv_geo geo;
  geo_at(st, ni, 1, &geo);
  const ri__conv_params *p = st->g->nodes[ni].params;
  int xv = ri__cu_in(st, ni, 0);
  snprintf(
      buf, cap,
      "%s ih%lld iw%lld c%lld m%lld oh%lld ow%lld k%lldx%lld s%lld,%lld d%lld,%lld p%lld,%lld act%d x%d,%d",
      a->stem ? (st->fp16 ? "stem_f16" : "stem_f32") : (st->fp16 ? "dw_f16" : "dw_f32"), (long long)geo.ih,
      (long long)geo.iw, (long long)geo.c, (long long)a->m, (long long)geo.oh, (long long)geo.ow,
      (long long)a->kh, (long long)a->kw, (long long)p->win.stride[0], (long long)p->win.stride[1],
      (long long)p->win.dilation[0], (long long)p->win.dilation[1], (long long)geo.pads[0],
      (long long)geo.pads[1], (int)st->g->nodes[ni].act, (int)st->vdt[xv], (int)st->vlayout[xv]);
}

cudaError_t ri__cu_conv_var_launch(const cu_state *st, int ni, int batch, int v, cudaStream_t s,
                                   const void *x, void *y) {
  const conv_aux *a = st->nodes[ni].aux;
  conv_geo geo;
  geo_at(st, ni, batch, &geo);
  const float *bias = a->b_off >= 0 ? ri__cu_const_ptr(st, a->b_off) : NULL;
  const void *w = ri__cu_const_ptr(st, a->w_off);
  if (a->stem) {
    cu_arg xa = stem_input(st, ni);
    ri__cu_stemconv_args sa;
    stem_args(st, ni, &geo, &xa, &sa);
    return ri__cu_stemconv_v(s, &sa, v, x, xa.dt, w, bias, a->stem_hw_ok ? &a->stem_hw : NULL, y);
  }
  ri__cu_dwconv_args d;
  dw_args(st, ni, &geo, &d);
  return ri__cu_dwconv_v(s, st->fp16 ? RI_DTYPE_FLOAT16 : RI_DTYPE_FLOAT32, &d, v, x, w, bias, y);
}

void ri__cu_conv_set_var_tactic(cu_state *st, int ni, const ri__cu_var_tac *t) {
  conv_aux *a = st->nodes[ni].aux;
  a->var_tuned = 1;
  a->var_us = ri__half_to_float(ri__float_to_half(t->us)); /* as the engine file keeps it */
  for (int b = 0; b < RI__CU_TAC_BUCKETS; b++)
    a->var[b] = t->var[b] & 7;
  const char *base = a->stem    ? (st->fp16 ? "stem_direct_f16" : "stem_direct_f32")
                     : !a->nhwc ? (st->fp16 ? "dwconv_nchw_f16" : "dwconv_nchw_f32")
                                : (st->fp16 ? "dwconv_nhwc_f16" : "dwconv_nhwc_f32");
  snprintf(a->label, sizeof a->label, "%s variants %d/%d/%d/%d, %.1f us at max batch", base, a->var[0],
           a->var[1], a->var[2], a->var[3], (double)a->var_us);
  st->nodes[ni].name = a->label;
}

/* The variant of a run at `batch` (0 without a tactic). */
static int var_of(const conv_aux *a, int batch) {
  return a->var_tuned ? a->var[ri__cu_tac_bucket(batch)] : 0;
}

int ri__cu_conv_tune_residual(const cu_state *st, int ni) {
  const cu_node *cn = &st->nodes[ni];
  return cn->fusable && cn->co.res_v >= 0;
}

const cudnnMathType_t ri__cu_conv_maths[4] = {CUDNN_DEFAULT_MATH, CUDNN_TENSOR_OP_MATH,
                                              CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, CUDNN_FMA_MATH};

/* The implementation name of a cuDNN convolution. */
static const char *dnn_name(const cu_state *st, const conv_aux *a) {
  if (a->nhwc) return st->fp16 ? "cudnn_nhwc_f16" : "cudnn_nhwc_f32";
  return st->fp16 ? "cudnn_nchw_f16" : "cudnn_nchw_f32";
}

/* A cuDNN convolution's algorithm from now on (engine file or build-time context), and its name. */
static void keep_dnn(cu_state *st, int ni, const ri__cu_dnn_tac *t) {
  conv_aux *a = st->nodes[ni].aux;
  a->dnn_stored = 1;
  a->dnn = *t;
  a->dnn.algo &= 7;
  a->dnn.math &= 3;
  a->dnn.ms = ri__half_to_float(ri__float_to_half(t->ms)); /* as the engine file keeps it */
  snprintf(a->label, sizeof a->label, "%s algo %d math %d%s, %.3f ms at max batch", dnn_name(st, a),
           a->dnn.algo, a->dnn.math, a->dnn.per_image ? " image by image" : "", (double)a->dnn.ms);
  st->nodes[ni].name = a->label;
}

void ri__cu_conv_keep_algo(cu_ctx *c, int ni) {
  cu_state *st = c->st;
  const conv_aux *a = st->nodes[ni].aux;
  const conv_ctx *k = c->node_ctx[ni];
  if (st->nodes[ni].impl != ri__cu_impl_conv() || !a || a->gemm || a->depthwise || a->stem || a->dnn_stored ||
      !k || !k->slot.found)
    return;
  ri__cu_dnn_tac t;
  memset(&t, 0, sizeof t);
  t.algo = (int)k->slot.algo;
  for (int m = 0; m < 4; m++)
    if (ri__cu_conv_maths[m] == k->slot.math) t.math = m;
  t.per_image = k->slot.per_image;
  t.ms = k->slot.ms;
  if (t.algo < 0 || t.algo > 7) return;
  keep_dnn(st, ni, &t);
}

/* The bias of a GEMM node: float32, and as half too, for cuBLASLt with a half output when it takes no
 * float32 bias (cuda_conv_lt.c); both of m_rows entries, zero beyond m. */
static ri_status upload_gemm_bias(cu_state *st, conv_aux *a, const float *b, ri__err *err) {
  float *f = ri__calloc((size_t)a->m_rows, sizeof(float));
  uint16_t *h = ri__calloc((size_t)a->m_rows, sizeof(uint16_t));
  ri_status s = f && h ? RI_OK : RI__OOM(err);
  for (int64_t i = 0; s == RI_OK && i < a->m; i++) {
    f[i] = b[i];
    h[i] = ri__float_to_half(b[i]);
  }
  if (s == RI_OK) s = ri__cu_blob_add(st, f, (size_t)a->m_rows * sizeof(float), &a->b_off, err);
  if (s == RI_OK) s = ri__cu_blob_add(st, h, (size_t)a->m_rows * sizeof(uint16_t), &a->bh_off, err);
  ri__free(f);
  ri__free(h);
  return s;
}

static ri_status conv_prep(cu_state *st, int ni, ri__err *err) {
  const ri__graph *g = st->g;
  const ri__node *n = &g->nodes[ni];
  const ri__conv_params *p = n->params;
  if (!p) return ri__cu_unsupported(err, st, ni, "parameters were not resolved");
  if (!ri__cu_in_const(st, ni, 1)) return ri__cu_unsupported(err, st, ni, "a weight that is not a constant");
  if (p->has_bias && !ri__cu_in_const(st, ni, 2))
    return ri__cu_unsupported(err, st, ni, "a bias that is not a constant");
  const ri__value *x = &g->values[ri__cu_in(st, ni, 0)], *w = &g->values[ri__cu_in(st, ni, 1)];
  if (x->dtype != RI_DTYPE_FLOAT32 || w->dtype != RI_DTYPE_FLOAT32 || w->shape.rank != x->shape.rank)
    return ri__cu_unsupported(err, st, ni, "input %s / weight %s (float32 of equal rank are supported)",
                              ri_dtype_name(x->dtype), ri_dtype_name(w->dtype));
  conv_aux *a = ri__calloc(1, sizeof *a);
  if (!a) return RI__OOM(err);
  st->nodes[ni].aux = a;
  a->m = w->shape.dims[0];
  a->cg = w->shape.dims[1];
  a->group = p->group;
  a->kh = p->win.kernel[0];
  a->kw = p->win.kernel[1];
  a->nhwc = st->nhwc && x->shape.rank == 4;
  a->b_off = -1;
  a->bh_off = -1;
  a->m_rows = a->m;
  int64_t c = x->shape.dims[1];
  int force_cudnn = getenv("RI_CUDA_DWCONV") && strcmp(getenv("RI_CUDA_DWCONV"), "cudnn") == 0;
  a->depthwise = !force_cudnn && a->group == c && a->m == c && a->cg == 1 && a->kh <= 7 && a->kw <= 7;
  if (a->kh > INT32_MAX || a->kw > INT32_MAX || a->m > INT32_MAX || a->cg > INT32_MAX || a->group > INT32_MAX)
    return ri__cu_unsupported(err, st, ni, "dimensions beyond 32 bits");
  /* cuDNN: NHWC half convolutions with few input channels (the 3-channel image of a first layer) get zero
   * channels appended up to a multiple of 8, in the input (by the pad kernel) and in the weights, so that
   * its tensor-core kernels apply to them as to every other layer. The own GEMM gathers such inputs as
   * they are and only pads each weight row to a multiple of 8 halves. */
  const char *conv_env = getenv("RI_CUDA_CONV");
  a->gemm = a->nhwc && !a->depthwise && a->group == 1 && !(conv_env && strcmp(conv_env, "cudnn") == 0);
  conv_geo geo;
  ri__cu_conv_geometry(p, &x->shape, &g->values[n->outputs[0]].shape, &geo);
  if (!a->depthwise && ri__cu_conv_is_stem(st, ni)) {
    /* Weights as float [kh, kw, cg][M]: the kernel reads one row of M per tap and channel. */
    a->stem = 1;
    ri__cu_stemconv_args sa;
    stem_args(st, ni, &geo, NULL, &sa);
    if (!ri__cu_stemconv_supported(&sa))
      return ri__cu_unsupported(err, st, ni, "a direct convolution beyond the kernel's limits");
    int64_t kk = a->kh * a->kw * a->cg, ksz = a->kh * a->kw;
    float *buf = ri__malloc((size_t)(kk * a->m) * sizeof(float));
    if (!buf) return RI__OOM(err);
    for (int64_t m = 0; m < a->m; m++)
      for (int64_t c = 0; c < a->cg; c++)
        for (int64_t t = 0; t < ksz; t++)
          buf[(t * a->cg + c) * a->m + m] = ((const float *)w->data)[(m * a->cg + c) * ksz + t];
    ri_status s = w->nbytes == (size_t)(kk * a->m) * sizeof(float)
                      ? ri__cu_blob_add(st, buf, (size_t)(kk * a->m) * sizeof(float), &a->w_off, err)
                      : ri__cu_unsupported(err, st, ni, "weight of %zu bytes", w->nbytes);
    ri__free(buf);
    RI__TRY(s);
    if (p->has_bias) {
      const ri__value *b = &g->values[ri__cu_in(st, ni, 2)];
      if (b->dtype != RI_DTYPE_FLOAT32 || b->nbytes != (size_t)a->m * sizeof(float))
        return ri__cu_unsupported(err, st, ni, "bias of %zu bytes for %lld output channels", b->nbytes,
                                  (long long)a->m);
      RI__TRY(ri__cu_blob_add(st, b->data, b->nbytes, &a->b_off, err));
    }
    if (a->kh == 3 && a->kw == 3 && a->cg == 3 && a->m <= RI__CU_STEM_VM) {
      /* variant 1 takes the weights ([kk][32], zero beyond m) and the bias as a kernel parameter */
      const float *wd = w->data;
      for (int64_t m = 0; m < a->m; m++)
        for (int64_t c = 0; c < a->cg; c++)
          for (int64_t t = 0; t < ksz; t++)
            a->stem_hw.w[(t * a->cg + c) * RI__CU_STEM_VM + m] = wd[(m * a->cg + c) * ksz + t];
      if (p->has_bias)
        memcpy(a->stem_hw.b, g->values[ri__cu_in(st, ni, 2)].data, (size_t)a->m * sizeof(float));
      a->stem_hw_ok = 1;
    }
    st->nodes[ni].name = st->fp16 ? "stem_direct_f16" : "stem_direct_f32";
    ri__cu_var_tac vt;
    if (ri__cu_var_tac_decode(n->tactic, &vt)) ri__cu_conv_set_var_tactic(st, ni, &vt); /* stored at build */
    return RI_OK;
  }
  if (a->gemm) {
    a->cg_pad = a->cg;
    /* half: floats per weight row of an output channel; fp32: floats per row of a k (output channels) */
    a->ldw = st->fp16 ? (a->kh * a->kw * a->cg + 7) / 8 * 8 : (a->m + 3) / 4 * 4;
    ri__cu_convgemm_args ga;
    gemm_args(st, ni, &geo, &ga);
    a->gemm = st->fp16 ? ri__cu_convgemm_supported(&ga) : ri__cu_convgemm_f32_supported(&ga);
  }
  if (!a->gemm) {
    a->cg_pad =
        st->fp16 && a->nhwc && !a->depthwise && a->group == 1 && a->cg % 8 ? (a->cg + 7) / 8 * 8 : a->cg;
    a->ldw = a->kh * a->kw * a->cg_pad;
  }
  /* fp16 1x1 GEMMs (where cuBLASLt may run): weight rows and bias up to a multiple of 8 channels, for the
   * padded form (cuda_conv_lt.h) */
  const int lt_able = st->fp16 && a->gemm && a->kh == 1 && a->kw == 1;
  if (lt_able) a->m_rows = (a->m + 7) / 8 * 8;
  RI__TRY(upload_weights(st, ni, a, err));
  if (p->has_bias) {
    const ri__value *b = &g->values[ri__cu_in(st, ni, 2)];
    if (b->dtype != RI_DTYPE_FLOAT32 || b->nbytes != (size_t)a->m * sizeof(float))
      return ri__cu_unsupported(err, st, ni, "bias of %zu bytes for %lld output channels", b->nbytes,
                                (long long)a->m);
    if (lt_able)
      RI__TRY(upload_gemm_bias(st, a, b->data, err));
    else
      RI__TRY(ri__cu_blob_add(st, b->data, b->nbytes, &a->b_off, err));
  }
  if (a->depthwise && dw_half(st, ni, &geo)) {
    a->dwh = 1; /* no variants; stored as RI__CU_TAC_DWH; fused by cuda_expdw.c under its own name */
    st->nodes[ni].name = "dwconv_h2_f16";
    return RI_OK;
  }
  if (a->depthwise) {
    st->nodes[ni].name = a->nhwc    ? (st->fp16 ? "dwconv_nhwc_f16" : "dwconv_nhwc_f32")
                         : st->fp16 ? "dwconv_nchw_f16"
                                    : "dwconv_nchw_f32";
    ri__cu_var_tac vt;
    if (ri__cu_var_tac_decode(n->tactic, &vt)) ri__cu_conv_set_var_tactic(st, ni, &vt); /* stored at build */
    return RI_OK;
  }
  if (a->gemm) {
    RI__TRY(batch1_segments(st, ni, &geo, a, err));
    cu_node *cn = &st->nodes[ni];
    cn->name = st->fp16 ? "gemm_nhwc_f16" : "gemm_nhwc_f32";
    cn->fusable = 1;
    st->uses_gemm = 1;
    cn->co.out_v = n->outputs[0];
    cn->co.res_v = -1;
    cn->co.act = (int)n->act, cn->co.act_a = n->act_a, cn->co.act_b = n->act_b;
    cn->co.y_off = 0, cn->co.ldy = a->m, cn->co.img_stride = 0;
    ri__cu_gemm_tac tac;
    if (ri__cu_tac_decode(n->tactic, &tac)) ri__cu_conv_set_tactic(st, ni, &tac); /* stored at build */
    ri__cu_lt_tac lt;
    if (st->fp16 && ri__cu_lt_tac_decode(n->tactic, &lt)) ri__cu_conv_set_lt_tactic(st, ni, &lt); /* stored */
    return RI_OK;
  }
  st->uses_cudnn = 1;
  st->nodes[ni].name = dnn_name(st, a);
  ri__cu_dnn_tac dt;
  if (ri__cu_dnn_tac_decode(n->tactic, &dt)) keep_dnn(st, ni, &dt); /* stored at build */
  if (ri__cu_conv_needs_pad(a, &geo)) {
    int64_t padded = geo.n * ri__cu_conv_cudnn_channels(a, &geo) * (geo.ih + geo.ex_t + geo.ex_b) *
                     (geo.iw + geo.ex_l + geo.ex_r);
    st->nodes[ni].op_scratch = padded * (int64_t)(st->fp16 ? 2 : 4);
  }
  return RI_OK;
}

static ri_status pad_input(cu_ctx *c, int ni, const cu_arg *xa, const conv_geo *geo, void *dst,
                           ri__err *err) {
  const cu_state *st = c->st;
  ri__shape in = xa->t->shape, padded;
  if (in.rank == 3) { /* [N, C, W] viewed as [N, C, 1, W] */
    in.rank = 4;
    in.dims[3] = in.dims[2];
    in.dims[2] = 1;
  }
  padded = in;
  padded.dims[1] = ri__cu_conv_cudnn_channels(st->nodes[ni].aux, geo);
  padded.dims[2] = geo->ih + geo->ex_t + geo->ex_b;
  padded.dims[3] = geo->iw + geo->ex_l + geo->ex_r;
  int64_t ss[RI__MAX_RANK], ds[RI__MAX_RANK];
  ri__cu_strides(&in, xa->layout, ss);
  ri__cu_strides(&padded, xa->layout, ds);
  int order[RI__MAX_RANK];
  ri__cu_storage_order(4, xa->layout, order);
  ri__cu_pad_args pa;
  memset(&pa, 0, sizeof pa);
  const int64_t begin[4] = {0, 0, geo->ex_t, geo->ex_l};
  pa.w.rank = 4;
  for (int j = 0; j < 4; j++) {
    int ax = order[j];
    pa.w.dims[j] = padded.dims[ax];
    pa.w.st[0][j] = ds[ax];
    pa.w.st[1][j] = ss[ax];
    pa.out_off[j] = begin[ax];
    pa.in_len[j] = in.dims[ax];
  }
  CU_RT(ri__cu_pad(c->stream, &pa, xa->p, dst, xa->dt, 0.0));
  return RI_OK;
}

static ri_status conv_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                          ri__err *err) {
  const cu_state *st = c->st;
  const ri__node *n = &st->g->nodes[ni];
  const ri__conv_params *p = n->params;
  const conv_aux *a = st->nodes[ni].aux;
  conv_geo geo;
  ri__cu_conv_geometry(p, &in[0].t->shape, &out[0].t->shape, &geo);
  const float *bias = a->b_off >= 0 ? ri__cu_const_ptr(st, a->b_off) : NULL;
  const void *w = ri__cu_const_ptr(st, a->w_off);
  if (a->stem) {
    ri__cu_stemconv_args sa;
    stem_args(st, ni, &geo, &in[0], &sa);
    CU_RT(ri__cu_stemconv_v(c->stream, &sa, var_of(a, batch_of(&geo)), in[0].p, in[0].dt, w, bias,
                            a->stem_hw_ok ? &a->stem_hw : NULL, out[0].p));
    return RI_OK;
  }
  if ((in[0].layout == CU_LAYOUT_NHWC) != (a->nhwc != 0) && in[0].t->shape.rank == 4)
    return ri__err_set(err, RI_ERR_INTERNAL,
                       "node '%s' (Conv): input layout does not match the prepared layout", n->name);
  if (a->dwh) {
    if (in[0].dt != RI_DTYPE_FLOAT16 || out[0].dt != RI_DTYPE_FLOAT16)
      return ri__err_set(err, RI_ERR_INTERNAL,
                         "node '%s' (Conv): the half-arithmetic depthwise kernel needs half input and output",
                         n->name);
    ri__cu_dwconv_args d;
    dw_args(st, ni, &geo, &d);
    CU_RT(ri__cu_dwconv_h2(c->stream, &d, 0, in[0].p, w, bias, out[0].p));
    return RI_OK;
  }
  if (a->depthwise) {
    ri__cu_dwconv_args d;
    dw_args(st, ni, &geo, &d);
    CU_RT(ri__cu_dwconv_v(c->stream, in[0].dt, &d, var_of(a, batch_of(&geo)), in[0].p, w, bias, out[0].p));
    return RI_OK;
  }
  if (a->gemm) {
    const void *x = in[0].p;
    const cu_conv_out *co = &st->nodes[ni].co;
    void *y = co->out_v == n->outputs[0] ? out[0].p : ri__cu_value_ptr(c, co->out_v);
    const void *res = co->res_v >= 0 ? ri__cu_value_ptr(c, co->res_v) : NULL;
    if (!y || (co->res_v >= 0 && !res))
      return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Conv): a fused operand has no device memory",
                         n->name);
    if (a->lt && ri__cu_conv_lt_active(c, ni)) {
      const size_t es = co->out_f32 ? 4 : 2;
      RI__TRY(ri__cu_conv_lt_run(c, ni, geo.n, x, w, bias, res, (char *)y + co->y_off * (int64_t)es, scratch,
                                 err));
      return RI_OK;
    }
    ri__cu_convgemm_args ga;
    gemm_args(st, ni, &geo, &ga);
    if (a->wg_on) { /* the wgmma kernel at every batch (an error here is not a reason to switch kernels) */
      const int id = a->wg_tile[ri__cu_tac_bucket(batch_of(&geo))];
      int bm, bn;
      ri__cu_tac_tile(RI__CU_KIND_WG, id, &bm, &bn);
      CU_RT(ri__cu_pwgemm_wg_tile(c->stream, &ga, bm, bn, id & RI__CU_WG_S4 ? 4 : 3, x, w, bias, res, y));
      return RI_OK;
    }
    const int f32 = !st->fp16;
    const int kind = st->fp16 ? RI__CU_KIND_F16 : a->tf32 ? RI__CU_KIND_TF32 : RI__CU_KIND_F32;
    ri__cu_convgemm_tactic tac = {0, 0, a->seg, -1, 0};
    if (a->tuned) tac = ri__cu_tac_launch(kind, a->tile[ri__cu_tac_bucket(batch_of(&geo))], a->seg);
    /* A fusion may have given the output a form the pointwise kernel does not write (float32 in fp16
     * engines), or a loaded engine's tactic names it where it does not run: the first tile, whose results
     * are the same bits. */
    if (tac.pw && !(f32 ? ri__cu_pwconv_f32_supported(&ga) : ri__cu_pwconv_supported(&ga)))
      tac = ri__cu_tac_launch(f32, 0, a->seg);
    const ri__cu_splitk *sk = c->splitk.ws ? &c->splitk : NULL;
    if (kind == RI__CU_KIND_TF32)
      CU_RT(ri__cu_convgemm_tf32_tac(c->stream, &ga, &tac, x, w, bias, res, y, sk));
    else if (f32)
      CU_RT(ri__cu_convgemm_f32_tac(c->stream, &ga, &tac, x, w, bias, res, y, sk));
    else
      CU_RT(ri__cu_convgemm_tac(c->stream, &ga, &tac, x, w, bias, res, y, sk));
    return RI_OK;
  }
  conv_ctx *k = c->node_ctx[ni];
  const void *x = in[0].p;
  if (ri__cu_conv_needs_pad(a, &geo)) {
    RI__TRY(pad_input(c, ni, &in[0], &geo, scratch, err));
    x = scratch;
  }
  RI__TRY(ri__cu_conv_set_descs(c, ni, &geo, err));
  int batch = (int)geo.n;
  algo_slot *slot = &k->slot;
  size_t ws = slot->ws;
  int per_image = slot->per_image && batch > 1;
  if (!per_image && slot->ws_batch != batch) {
    CU_DNN(cudnnSetConvolutionMathType(k->conv, slot->math));
    CU_DNN(cudnnGetConvolutionForwardWorkspaceSize(c->cudnn, k->x, k->w, k->conv, k->y, slot->algo, &ws));
    /* A batch size whose workspace does not fit runs its images one by one, with the same algorithm:
     * what batch 1 gives them. */
    if (ws > c->ws_bytes && batch > 1)
      per_image = 1;
    else if (ws > c->ws_bytes)
      return ri__err_set(
          err, RI_ERR_DEVICE,
          "node '%s' (Conv): cuDNN algorithm %d needs %zu workspace bytes at batch 1, more than "
          "the context's %zu on %s",
          n->name, (int)slot->algo, ws, c->ws_bytes, st->dev_name);
    else
      slot->ws = ws, slot->ws_batch = batch;
  }
  CU_DNN(cudnnSetConvolutionMathType(k->conv, slot->math));
  const float one = 1.f, zero = 0.f;
  if (per_image) {
    conv_geo g1 = geo;
    g1.n = 1;
    RI__TRY(ri__cu_conv_set_descs(c, ni, &g1, err));
    size_t es = st->fp16 ? 2 : 4;
    size_t in_img = (size_t)(ri__cu_conv_cudnn_channels(a, &geo) * (geo.ih + geo.ex_t + geo.ex_b) *
                             (geo.iw + geo.ex_l + geo.ex_r)) *
                    es;
    size_t out_img = (size_t)(a->m * geo.oh * geo.ow) * es;
    for (int i = 0; i < batch; i++)
      CU_DNN(cudnnConvolutionForward(c->cudnn, &one, k->x, (const char *)x + (size_t)i * in_img, k->w, w,
                                     k->conv, slot->algo, c->ws, slot->ws1, &zero, k->y,
                                     (char *)out[0].p + (size_t)i * out_img));
  } else {
    CU_DNN(cudnnConvolutionForward(c->cudnn, &one, k->x, x, k->w, w, k->conv, slot->algo, c->ws, ws, &zero,
                                   k->y, out[0].p));
  }
  if (bias || n->act != RI__ACT_NONE) {
    int64_t count = geo.n * a->m * geo.oh * geo.ow;
    CU_RT(ri__cu_channel_affine(c->stream, out[0].dt, out[0].p, out[0].p, count, a->m,
                                a->nhwc ? 1 : geo.oh * geo.ow, NULL, bias, (int)n->act, n->act_a, n->act_b));
  }
  return RI_OK;
}

static const cu_op_impl k_conv = {conv_prep, ri__cu_conv_ctx_init, ri__cu_conv_ctx_free, conv_run};

const cu_op_impl *ri__cu_impl_conv(void) { return &k_conv; }
