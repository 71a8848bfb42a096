/* Fusion of inverted-residual blocks into one kernel (k_irblock.cu, contract in irblock.h), decided once
 * per engine by the fusion pass after the residual fusion (cuda_fuse.c calls ri__cu_fuse_irblock).
 *
 * Pattern, in an fp16 engine: a depthwise 3x3 convolution D (own NHWC kernel, stride 1 or 2 in both axes,
 * dilation 1, any pads the kernel takes) whose output only a tensor-core 1x1 convolution P (stride 1, no
 * pads, writing its own output or, after the residual fusion, an Add's output) reads; and, when D's input
 * is the output of a tensor-core 1x1 convolution X read by D alone (stride 1, no pads, not redirected),
 * X too. Every channel count is a multiple of 8 and every value half NHWC. The fused node runs where X
 * (or D without expansion) ran, with X's input; D and P are skipped; the expanded tensor and D's output
 * are never written.
 *
 * Safety, as for the residual fusion: the fused node writes P's output V (or the Add's) before the node
 * that the memory plan gives V's birth to. V stays in its block only when no node that still runs in
 * between reads or writes a value whose block overlaps V's and neither the block's input nor the residual
 * overlaps V; otherwise V moves to the relocation area (as the Concat outputs of cuda_fuse.c do), which the
 * memory re-plan after fusion (cuda_memplan.c, told what the fused node reads and writes by its access
 * hook) undoes. The residual must exist already where the fused node runs.
 *
 * The kernel reads its own copy of the weights, prepared here in its padded layout; the original
 * convolutions' uploads stay in the constant blob unused.
 *
 * When: by default in engines whose maximum batch is at most IRB_AUTO_MAX_BATCH (where it measured
 * faster); RI_CUDA_IRBLOCK=1 fuses in every fp16 engine, RI_CUDA_IRBLOCK=0 in none, RI_CUDA_IRBLOCK=dp in
 * every fp16 engine but depthwise -> projection only (the expansion stays a GEMM of its own: at large batch
 * the fused kernel's redundant expansion of the halo costs more than it saves; this keeps only the saving
 * of D's write and read). */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/irblock.h"
#include "core/alloc.h"
#include "core/half.h"
#include "graph/op.h"
#include "graph/ops/conv_params.h"

/* Engines whose maximum batch is at most this fuse by default: the fused kernel measured faster than the
 * three unfused kernels at batch 1 and slower from batch 8 on (docs/performance.md). The choice is made per
 * engine, so every batch an engine runs gets the same arithmetic. */
#define IRB_AUTO_MAX_BATCH 1

typedef struct {
  ri__cu_irblock_args a; /* at the maximum batch; n is set per run */
  int64_t w1_off, b1_off, wd_off, bd_off, w2_off, b2_off;
  int out_v, res_v;
} irb_aux;

static ri_status irb_prep(cu_state *st, int ni, ri__err *err) {
  return ri__cu_unsupported(err, st, ni, "the fused block is made by the fusion pass only");
}

static ri_status irb_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                         ri__err *err) {
  (void)out, (void)scratch;
  const cu_state *st = c->st;
  const irb_aux *a = st->nodes[ni].aux;
  const char *name = st->g->nodes[ni].name;
  if (in[0].layout != CU_LAYOUT_NHWC || in[0].dt != RI_DTYPE_FLOAT16 || !in[0].p)
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (fused block): input is not half NHWC on the device",
                       name);
  ri__cu_irblock_args p = a->a;
  p.n = (int)in[0].t->shape.dims[0];
  ri__cu_irblock_weights w;
  w.w1 = a->w1_off >= 0 ? ri__cu_const_ptr(st, a->w1_off) : NULL;
  w.b1 = a->b1_off >= 0 ? ri__cu_const_ptr(st, a->b1_off) : NULL;
  w.wd = ri__cu_const_ptr(st, a->wd_off);
  w.bd = ri__cu_const_ptr(st, a->bd_off);
  w.w2 = ri__cu_const_ptr(st, a->w2_off);
  w.b2 = ri__cu_const_ptr(st, a->b2_off);
  void *y = ri__cu_value_ptr(c, a->out_v);
  const void *res = a->res_v >= 0 ? ri__cu_value_ptr(c, a->res_v) : NULL;
  if (!y || (a->res_v >= 0 && !res))
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (fused block): an operand has no device memory",
                       name);
  CU_RT(ri__cu_irblock(c->stream, &p, in[0].p, &w, res, y, c->splitk.ws ? &c->splitk : NULL));
  return RI_OK;
}

static const cu_op_impl k_irblock = {irb_prep, NULL, NULL, irb_run};

/* What the fused node reads (the block's input, the residual) and writes (the block's output), for the
 * memory re-plan after fusion. */
static void irb_access(const cu_state *st, int ni, int *reads, int *writes) {
  const irb_aux *a = st->nodes[ni].aux;
  reads[0] = st->g->nodes[ni].inputs[0];
  reads[1] = a->res_v;
  writes[0] = a->out_v;
}

static int is_half_nhwc(const cu_state *st, int v) {
  return v >= 0 && st->vdt[v] == RI_DTYPE_FLOAT16 && st->vlayout[v] == CU_LAYOUT_NHWC &&
         st->g->values[v].shape.rank == 4;
}

/* A Conv node still running with a 2-D window: on the own depthwise NHWC kernel (dw), or a tensor-core
 * convolution (!dw: the fusable ones, whose output the fusion pass may redirect). */
static const ri__conv_params *own_conv(const cu_state *st, int ni, int dw) {
  if (ni < 0) return NULL;
  const ri__node *n = &st->g->nodes[ni];
  const cu_node *cn = &st->nodes[ni];
  if (n->host || cn->skip || n->op != RI__OP_Conv) return NULL;
  if (dw ? !cn->name || strcmp(cn->name, "dwconv_nhwc_f16") != 0 : !cn->fusable) return NULL;
  const ri__conv_params *p = n->params;
  return p && p->win.spatial_rank == 2 ? p : NULL;
}

/* 1x1, stride 1, no pads, group 1, with a constant weight [m, c, 1, 1] of the right size. */
static int is_pointwise(const cu_state *st, int ni, const ri__conv_params *p) {
  const ri__graph *g = st->g;
  int64_t pads[4];
  const ri__shape *xs = &g->values[g->nodes[ni].inputs[0]].shape;
  ri__conv_resolve_pads(p, xs->dims[2], xs->dims[3], pads);
  if (p->win.kernel[0] != 1 || p->win.kernel[1] != 1 || p->win.stride[0] != 1 || p->win.stride[1] != 1 ||
      p->group != 1 || pads[0] || pads[1] || pads[2] || pads[3])
    return 0;
  const ri__value *w = &g->values[g->nodes[ni].inputs[1]];
  return w->shape.rank == 4 && w->data &&
         w->nbytes == (size_t)(w->shape.dims[0] * w->shape.dims[1]) * sizeof(float);
}

static const float *bias_of(const cu_state *st, int ni, int64_t count) {
  const ri__conv_params *p = st->g->nodes[ni].params;
  if (!p->has_bias) return NULL;
  const ri__value *b = &st->g->values[ri__cu_in(st, ni, 2)];
  return b->dtype == RI_DTYPE_FLOAT32 && b->nbytes == (size_t)count * sizeof(float) ? b->data : NULL;
}

/* Uploads rows x cols halves (src[r * src_ld + c] for r < n_rows, c < n_cols, zeros elsewhere). */
static ri_status add_half(cu_state *st, const float *src, int64_t n_rows, int64_t n_cols, int64_t src_ld,
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

/* Uploads n floats of src (zeros when src is NULL), padded with zeros to len. */
static ri_status add_float(cu_state *st, const float *src, int64_t n, int64_t len, int64_t *off,
                           ri__err *err) {
  float *buf = ri__calloc((size_t)len, sizeof *buf);
  if (!buf) return RI__OOM(err);
  if (src) memcpy(buf, src, (size_t)n * sizeof *buf);
  ri_status s = ri__cu_blob_add(st, buf, (size_t)len * sizeof *buf, off, err);
  ri__free(buf);
  return s;
}

static ri_status upload(cu_state *st, int e, int d, int p, irb_aux *a, ri__err *err) {
  const ri__graph *g = st->g;
  const ri__cu_irblock_args *k = &a->a;
  a->w1_off = a->b1_off = -1;
  if (e >= 0) {
    RI__TRY(add_half(st, g->values[ri__cu_in(st, e, 1)].data, k->ce, k->cin, k->cin, k->cep, k->k1p,
                     &a->w1_off, err));
    RI__TRY(add_float(st, bias_of(st, e, k->ce), k->ce, k->cep, &a->b1_off, err));
  }
  /* Depthwise [ce, 1, 3, 3] to tap-major [9][cep] floats holding the half-rounded weights (the kernel's
   * FMAs take them as floats without a conversion per tap; the products are those of half weights). */
  const float *wd = g->values[ri__cu_in(st, d, 1)].data;
  float *tm = ri__calloc((size_t)(9 * k->cep), sizeof *tm);
  if (!tm) return RI__OOM(err);
  for (int64_t c = 0; c < k->ce; c++)
    for (int t = 0; t < 9; t++)
      tm[t * k->cep + c] = ri__half_to_float(ri__float_to_half(wd[c * 9 + t]));
  ri_status s = add_float(st, tm, 9 * k->cep, 9 * k->cep, &a->wd_off, err);
  ri__free(tm);
  RI__TRY(s);
  RI__TRY(add_float(st, bias_of(st, d, k->ce), k->ce, k->cep, &a->bd_off, err));
  RI__TRY(add_half(st, g->values[ri__cu_in(st, p, 1)].data, k->cout, k->ce, k->ce, k->cop, k->cep, &a->w2_off,
                   err));
  return add_float(st, bias_of(st, p, k->cout), k->cout, k->cop, &a->b2_off, err);
}

/* Tries to fuse the block around depthwise node d. */
static ri_status try_block(cu_state *st, const int *uses, const int *reader, int d, int sms, int expand,
                           ri__err *err) {
  const ri__graph *g = st->g;
  const ri__conv_params *pd = own_conv(st, d, 1);
  if (!pd) return RI_OK;
  const ri__node *nd = &g->nodes[d];
  int ev = nd->inputs[0], dv = nd->outputs[0];
  if (!is_half_nhwc(st, ev) || !is_half_nhwc(st, dv) || uses[dv] != 1) return RI_OK;
  const ri__shape *es = &g->values[ev].shape, *ds = &g->values[dv].shape;
  int64_t ce = es->dims[1], ih = es->dims[2], iw = es->dims[3], pads[4];
  ri__conv_resolve_pads(pd, ih, iw, pads);
  const ri__value *wdv = &g->values[ri__cu_in(st, d, 1)];
  if (pd->win.kernel[0] != 3 || pd->win.kernel[1] != 3 || pd->win.dilation[0] != 1 ||
      pd->win.dilation[1] != 1 || pd->win.stride[0] != pd->win.stride[1] || pd->group != ce ||
      ds->dims[1] != ce || !wdv->data || wdv->nbytes != (size_t)(ce * 9) * sizeof(float) ||
      (pd->has_bias && !bias_of(st, d, ce)))
    return RI_OK;
  /* The projection: the one node reading D (uses[dv] also counts a graph output, which has no reader). */
  int p = reader[dv];
  const ri__conv_params *pp = own_conv(st, p, 0);
  if (!pp || p <= d || g->nodes[p].inputs[0] != dv || !st->nodes[p].fusable || !is_pointwise(st, p, pp))
    return RI_OK;
  const cu_conv_out co = st->nodes[p].co;
  int64_t cout = g->values[g->nodes[p].inputs[1]].shape.dims[0];
  if (g->values[g->nodes[p].inputs[1]].shape.dims[1] != ce || co.out_f32 || co.y_off != 0 || co.ldy != cout ||
      co.img_stride != 0 || !is_half_nhwc(st, co.out_v) || (co.res_v >= 0 && !is_half_nhwc(st, co.res_v)) ||
      (pp->has_bias && !bias_of(st, p, cout)))
    return RI_OK;
  /* The expansion, when there is one to fuse. */
  int e = g->values[ev].producer;
  const ri__conv_params *pe = own_conv(st, e, 0);
  int64_t cin = 0;
  if (expand && pe && st->nodes[e].fusable && is_pointwise(st, e, pe) && uses[ev] == 1 &&
      st->nodes[e].co.out_v == ev && st->nodes[e].co.res_v < 0 && !st->nodes[e].co.out_f32 &&
      is_half_nhwc(st, g->nodes[e].inputs[0]) && (!pe->has_bias || bias_of(st, e, ce)))
    cin = g->values[g->nodes[e].inputs[0]].shape.dims[1];
  else
    e = -1;
  int f = e >= 0 ? e : d, xv = g->nodes[f].inputs[0];
  if (ce > 65536 || cout > 65536 || cin > 65536 || ds->dims[2] > INT32_MAX || ds->dims[3] > INT32_MAX ||
      ih > INT32_MAX || iw > INT32_MAX || es->dims[0] > INT32_MAX)
    return RI_OK;
  irb_aux k;
  memset(&k, 0, sizeof k);
  ri__cu_irblock_args *ka = &k.a;
  ka->n = (int)es->dims[0], ka->ih = (int)ih, ka->iw = (int)iw, ka->oh = (int)ds->dims[2],
  ka->ow = (int)ds->dims[3];
  ka->cin = (int)cin, ka->ce = (int)ce, ka->cout = (int)cout;
  ka->k1p = (int)((cin + 15) / 16 * 16);
  ka->cep = (int)((ce + RI__CU_IRB_CE - 1) / RI__CU_IRB_CE * RI__CU_IRB_CE);
  ka->cop = (int)((cout + 15) / 16 * 16);
  ka->stride = (int)pd->win.stride[0];
  ka->pad_t = (int)pads[0], ka->pad_l = (int)pads[1];
  ka->act[0] = e >= 0 ? (int)g->nodes[e].act : 0;
  ka->act_a[0] = e >= 0 ? g->nodes[e].act_a : 0.f, ka->act_b[0] = e >= 0 ? g->nodes[e].act_b : 0.f;
  ka->act[1] = (int)nd->act, ka->act_a[1] = nd->act_a, ka->act_b[1] = nd->act_b;
  ka->act[2] = co.act, ka->act_a[2] = co.act_a, ka->act_b[2] = co.act_b;
  ka->sms = sms;
  /* RI_CUDA_IRB_GROUPS: the most groups of expanded-channel chunks (default 8), for measurements of the
   * small-grid split; read when the engine is prepared, so one engine sums the same way throughout. */
  ka->groups = (int)ri__cu_env_long("RI_CUDA_IRB_GROUPS", 8, 1, 64);
  if (pads[0] > 2 || pads[1] > 2 || ri__cu_irblock_smem(ka) < 0) return RI_OK;
  /* Safety of writing V where f runs: V moves to the relocation area when the plan does not allow it. */
  int out = co.out_v, res = co.res_v, birth = g->values[out].producer;
  if (birth < f || (res >= 0 && g->values[res].producer >= f)) return RI_OK;
  st->nodes[d].skip = st->nodes[p].skip = 1;
  int clear = !ri__cu_overlaps(st, xv, out) && (res < 0 || !ri__cu_overlaps(st, res, out)) &&
              ri__cu_window_clear(st, f + 1, birth, out);
  st->nodes[d].skip = st->nodes[p].skip = 0;
  size_t nb = 0;
  if (!clear) RI__TRY(ri__tensor_nbytes(st->vdt[out], &g->values[out].shape, &nb, err));
  irb_aux *a = ri__malloc(sizeof *a);
  if (!a) return RI__OOM(err);
  *a = k;
  a->out_v = out, a->res_v = res;
  ri_status s = upload(st, e, d, p, a, err);
  if (s != RI_OK) {
    ri__free(a);
    return s;
  }
  if (!clear) {
    st->reloc_off[out] = st->reloc_bytes;
    st->reloc_bytes += ((int64_t)nb + CU_ALIGN - 1) / CU_ALIGN * CU_ALIGN;
  }
  cu_node *cf = &st->nodes[f];
  ri__free(cf->aux);
  cf->aux = a;
  cf->impl = &k_irblock;
  cf->access = irb_access;
  cf->name = e >= 0 ? "irblock_f16" : "dw_project_f16";
  cf->fusable = 1; /* co states what the node now reads and writes, for later safety checks */
  cf->co = co;
  st->nodes[p].fusable = 0;
  st->nodes[p].skip = 1;
  st->nodes[p].name = "fused_into_irblock";
  if (e >= 0) {
    st->nodes[d].skip = 1;
    st->nodes[d].name = "fused_into_irblock";
  }
  return RI_OK;
}

ri_status ri__cu_fuse_irblock(cu_state *st, const int *uses, const int *reader, ri__err *err) {
  const char *env = getenv("RI_CUDA_IRBLOCK");
  int on = env && *env ? strcmp(env, "0") != 0 : st->cfg.max_batch <= IRB_AUTO_MAX_BATCH;
  int expand = !(env && strcmp(env, "dp") == 0);
  if (!st->fp16 || !on) return RI_OK;
  int sms = 0;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, st->cfg.device_index) != cudaSuccess ||
      sms < 1) {
    (void)cudaGetLastError();
    return RI_OK; /* no fusion without a device to size tiles for */
  }
  for (int d = 0; d < st->g->n_nodes; d++)
    RI__TRY(try_block(st, uses, reader, d, sms, expand, err));
  return RI_OK;
}
