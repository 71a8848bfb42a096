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

#include "backend/cuda/cuda_fuse_util.h"
#include "backend/cuda/irblock.h"
#include "core/alloc.h"
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

static ri_status upload(cu_state *st, int e, int d, int p, irb_aux *a, ri__err *err) {
  const ri__graph *g = st->g;
  const ri__cu_irblock_args *k = &a->a;
  a->w1_off = a->b1_off = -1;
  if (e >= 0) {
    RI__TRY(ri__cu_fuse_add_half(st, g->values[ri__cu_in(st, e, 1)].data, k->ce, k->cin, k->cin, k->cep,
                                 k->k1p, &a->w1_off, err));
    RI__TRY(ri__cu_fuse_add_float(st, ri__cu_fuse_bias(st, e, k->ce), k->ce, k->cep, &a->b1_off, err));
  }
  RI__TRY(ri__cu_fuse_add_dw_taps(st, d, k->ce, k->cep, &a->wd_off, err));
  RI__TRY(ri__cu_fuse_add_float(st, ri__cu_fuse_bias(st, d, k->ce), k->ce, k->cep, &a->bd_off, err));
  RI__TRY(ri__cu_fuse_add_half(st, g->values[ri__cu_in(st, p, 1)].data, k->cout, k->ce, k->ce, k->cop, k->cep,
                               &a->w2_off, err));
  return ri__cu_fuse_add_float(st, ri__cu_fuse_bias(st, p, k->cout), k->cout, k->cop, &a->b2_off, err);
}

/* Tries to fuse the block around depthwise node d. */
static ri_status try_block(cu_state *st, const int *uses, const int *reader, int d, int sms, int expand,
                           ri__err *err) {
  const ri__graph *g = st->g;
  const ri__conv_params *pd = ri__cu_fuse_conv(st, d, 1);
  if (!pd) return RI_OK;
  const ri__node *nd = &g->nodes[d];
  int ev = nd->inputs[0], dv = nd->outputs[0];
  if (!ri__cu_fuse_is_half_nhwc(st, ev) || !ri__cu_fuse_is_half_nhwc(st, dv) || uses[dv] != 1) return RI_OK;
  const ri__shape *es = &g->values[ev].shape, *ds = &g->values[dv].shape;
  int64_t ce = es->dims[1], ih = es->dims[2], iw = es->dims[3], pads[4];
  ri__conv_resolve_pads(pd, ih, iw, pads);
  const ri__value *wdv = &g->values[ri__cu_in(st, d, 1)];
  if (pd->win.kernel[0] != 3 || pd->win.kernel[1] != 3 || pd->win.dilation[0] != 1 ||
      pd->win.dilation[1] != 1 || pd->win.stride[0] != pd->win.stride[1] || pd->group != ce ||
      ds->dims[1] != ce || !wdv->data || wdv->nbytes != (size_t)(ce * 9) * sizeof(float) ||
      (pd->has_bias && !ri__cu_fuse_bias(st, d, ce)))
    return RI_OK;
  /* The projection: the one node reading D (uses[dv] also counts a graph output, which has no reader). */
  int p = reader[dv];
  const ri__conv_params *pp = ri__cu_fuse_conv(st, p, 0);
  if (!pp || p <= d || g->nodes[p].inputs[0] != dv || !st->nodes[p].fusable ||
      !ri__cu_fuse_is_pointwise(st, p, pp))
    return RI_OK;
  const cu_conv_out co = st->nodes[p].co;
  int64_t cout = g->values[g->nodes[p].inputs[1]].shape.dims[0];
  if (g->values[g->nodes[p].inputs[1]].shape.dims[1] != ce || co.out_f32 || co.y_off != 0 || co.ldy != cout ||
      co.img_stride != 0 || !ri__cu_fuse_is_half_nhwc(st, co.out_v) ||
      (co.res_v >= 0 && !ri__cu_fuse_is_half_nhwc(st, co.res_v)) ||
      (pp->has_bias && !ri__cu_fuse_bias(st, p, cout)))
    return RI_OK;
  /* The expansion, when there is one to fuse. */
  int e = g->values[ev].producer;
  const ri__conv_params *pe = ri__cu_fuse_conv(st, e, 0);
  int64_t cin = 0;
  if (expand && pe && st->nodes[e].fusable && ri__cu_fuse_is_pointwise(st, e, pe) && uses[ev] == 1 &&
      st->nodes[e].co.out_v == ev && st->nodes[e].co.res_v < 0 && !st->nodes[e].co.out_f32 &&
      ri__cu_fuse_is_half_nhwc(st, g->nodes[e].inputs[0]) && (!pe->has_bias || ri__cu_fuse_bias(st, e, ce)))
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
  irb_aux *a = ri__malloc(sizeof *a);
  if (!a) return RI__OOM(err);
  *a = k;
  a->out_v = out, a->res_v = res;
  ri_status s = upload(st, e, d, p, a, err);
  if (s != RI_OK) {
    ri__free(a);
    return s;
  }
  RI__TRY(ri__cu_fuse_place_output(st, f, xv, out, res, d, p, err));
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
