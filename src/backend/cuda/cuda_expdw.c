/* Fusion of an expansion 1x1 convolution and the depthwise 3x3 convolution after it into one kernel
 * (k_expdw.cu, contract in expdw.h), decided once per engine by the fusion pass right after the
 * inverted-residual block fusion (cuda_fuse.c calls ri__cu_fuse_expdw), with the 1x1 projection after them
 * too where the kernel takes it (below); the expanded tensor, the largest activation of the early blocks at
 * large batch, is never written.
 *
 * Pattern, in an fp16 engine: a depthwise convolution D still on the own NHWC half kernel (implementation
 * "dwconv_nhwc_f16"), 3x3, dilation 1, equal strides of 1 or 2, top and left pads of at most 2 (the kernel
 * derives the bottom and right ones from the sizes), group == channels ce, ce % 16 == 0, constant weights
 * (and float bias), its output half NHWC (the depthwise kernel writes its own output densely: no fusion
 * redirects it); D's input ev is read by D alone and is the output of X, a tensor-core 1x1 convolution
 * (stride 1, no pads, group 1, constant weights) whose epilogue writes ev itself, densely, as half, with
 * no residual; X's input is half NHWC with cin % 8 == 0 and cin at most the rule's limit below, and X sums
 * its K in one segment (a stored tactic could split it; the fused kernel sums as one segment does). The
 * fused node runs at X's place, reading X's input and writing D's output dv with the activations of both
 * (X's as its epilogue applies it, cu_node.co; D's from its node); D is skipped. The result is the unfused
 * kernels' bit for bit (expdw.h), so the choice changes no output.
 *
 * The projection P: when D's output is read by P alone, a tensor-core 1x1 convolution under cuda_irblock.c's
 * conditions (stride 1, no pads, group 1, constant weights, writing half NHWC densely: its own output or,
 * after the residual fusion, an Add's, with the residual existing before X runs), with cout % 8 == 0, cout
 * at most RI__CU_EXPDW_MAX_COUT, K in one segment and the activation none, ReLU or clip, and the kernel
 * takes the arguments (ri__cu_expdw_supported), the fused node writes P's output instead of dv (D's output
 * is never written either) and P is skipped too; otherwise the pair alone fuses. RI_CUDA_EXPDW_PROJ=0 (read
 * when the engine is prepared) keeps every projection a node of its own.
 *
 * Without the expansion (node dwproj_f16; the kernel's noexp form): a depthwise convolution D as above that
 * no expansion is fused with (its input ev any half NHWC value; MobileNet v2's first block, whose
 * depthwise reads the stem's output), followed by a projection P as above, fuses with P into one node at
 * D's place, reading ev and writing P's output; P is skipped (fused_into_dwproj). Only with the projection
 * (the depthwise alone gains nothing); on the H200 the fused first block takes 374 us against 448 for the
 * unfused depthwise + projection (bench_expdw --dwp, batch 256; 494 before k_expdw's instruction cuts).
 * RI_CUDA_EXPDW_DWP=0 (or RI_CUDA_EXPDW_PROJ=0) keeps them apart.
 *
 * With half accumulation (ri_builder_set_half_accumulation) D may be on the half-arithmetic kernel instead
 * (implementation "dwconv_h2_f16", k_dwconv_h2.cu), under the same rules for both forms: the fused node then
 * runs the kernel's half2 depthwise stage (args dwh), whose result is the unfused chain's with that kernel
 * bit for bit (expdw.h).
 *
 * Safety, as for the block fusion (cuda_irblock.c): the output V (dv, or P's) is written at X's place (D's
 * without the expansion), before the node the memory plan gives V's birth to (D, P or the Add). V stays in
 * its block only when no node that still runs between X and that node reads or writes a value whose block
 * overlaps it and neither X's input (D's) nor the residual overlaps it (the plan may hand the input's block,
 * free after X, to V); otherwise V moves to the relocation area, which the memory re-plan after fusion
 * (cuda_memplan.c, told by the access hook what the fused node reads and writes) undoes.
 *
 * The kernel reads its own copy of the weights, prepared here in its layout; the original convolutions'
 * uploads stay in the constant blob unused.
 *
 * When (RI_CUDA_EXPDW, read when the engine is prepared, so one engine runs one arithmetic at every batch):
 * unset (or any other value), the default rule: in fp16 engines whose maximum batch is above 1 (those of
 * maximum batch 1 fuse whole blocks, cuda_irblock.c), for expansions of at most EXPDW_AUTO_MAX_CIN input
 * channels (the cheap expansions of MobileNet v2's first blocks, whose expanded tensors are the largest)
 * whose depthwise output holds at least EXPDW_AUTO_MIN_OUT values per image;
 * "0": never; "all": every eligible block (cin up to RI__CU_EXPDW_MAX_CIN) in every fp16 engine. The form
 * without the expansion follows the same rule with D's channels ce in place of cin (by default at most 32
 * channels and 150k output values per image: SSD MobileNet v2's and MobileNet v2's first block). The rule
 * comes from the kernel's micro-benchmark (below; docs/decisions.md). */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_fuse_util.h"
#include "backend/cuda/cuda_tactics.h"
#include "backend/cuda/expdw.h"
#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/conv_params.h"

/* The default rule's largest expansion input: MobileNet v2's blocks 1 .. 6 (16, 24 and 32 channels), and
 * its smallest depthwise output per image (channels x pixels): on the H200 at batch 256 the fused kernel
 * beat the two unfused ones on SSD MobileNet v2's blocks 1 .. 4 (outputs of 540k, 810k, 208k and 277k
 * values; 1.46x .. 1.06x) and lost on block 6 (69k: 0.93x) and block 7 (139k, 64 input channels: 0.42x)
 * (bench/results/expdw-micro-2026-11-27.txt). */
#define EXPDW_AUTO_MAX_CIN 32
#define EXPDW_AUTO_MIN_OUT 150000

typedef struct {
  ri__cu_expdw_args a;                                    /* at the maximum batch; n is set per run */
  int64_t w1_off, b1_off, wd_off, bd_off, w2_off, b2_off; /* w1, b1: -1 with a.noexp; w2, b2: with a
                                                           * projection (a.cout > 0) */
  int out_v, res_v;                                       /* res_v: the projection's residual, -1 none */
} expdw_aux;

static ri_status expdw_prep(cu_state *st, int ni, ri__err *err) {
  return ri__cu_unsupported(err, st, ni,
                            "the fused expansion -> depthwise node is made by the fusion pass only");
}

static ri_status expdw_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                           ri__err *err) {
  (void)out, (void)scratch;
  const cu_state *st = c->st;
  const expdw_aux *a = st->nodes[ni].aux;
  const char *name = st->g->nodes[ni].name;
  if (in[0].layout != CU_LAYOUT_NHWC || in[0].dt != RI_DTYPE_FLOAT16 || !in[0].p)
    return ri__err_set(err, RI_ERR_INTERNAL,
                       "node '%s' (fused expansion -> depthwise): input is not half NHWC on the device",
                       name);
  ri__cu_expdw_args p = a->a;
  p.n = (int)in[0].t->shape.dims[0];
  ri__cu_expdw_weights w;
  w.w1 = p.noexp ? NULL : ri__cu_const_ptr(st, a->w1_off);
  w.b1 = p.noexp ? NULL : ri__cu_const_ptr(st, a->b1_off);
  w.wd = ri__cu_const_ptr(st, a->wd_off);
  w.bd = ri__cu_const_ptr(st, a->bd_off);
  w.w2 = p.cout > 0 ? ri__cu_const_ptr(st, a->w2_off) : NULL;
  w.b2 = p.cout > 0 ? ri__cu_const_ptr(st, a->b2_off) : NULL;
  void *y = ri__cu_value_ptr(c, a->out_v);
  const void *res = a->res_v >= 0 ? ri__cu_value_ptr(c, a->res_v) : NULL;
  if (!y || (a->res_v >= 0 && !res))
    return ri__err_set(err, RI_ERR_INTERNAL,
                       "node '%s' (fused expansion -> depthwise): an operand has no device memory", name);
  CU_RT(ri__cu_expdw(c->stream, &p, in[0].p, &w, res, y));
  return RI_OK;
}

static const cu_op_impl k_expdw = {expdw_prep, NULL, NULL, expdw_run};

int32_t ri__cu_expdw_tactic(const cu_state *st, int ni) {
  if (st->nodes[ni].impl != &k_expdw || !st->nodes[ni].aux) return 0;
  const expdw_aux *a = st->nodes[ni].aux;
  return a->a.noexp && a->a.dwh ? RI__CU_TAC_DWH : 0;
}

/* What the fused node reads (X's input, or D's without the expansion; the projection's residual) and
 * writes (D's output, or the projection's), for the memory re-plan after fusion. */
static void expdw_access(const cu_state *st, int ni, int *reads, int *writes) {
  const expdw_aux *a = st->nodes[ni].aux;
  reads[0] = st->g->nodes[ni].inputs[0];
  reads[1] = a->res_v;
  writes[0] = a->out_v;
}

/* x: the expansion node, -1 none (a->a.noexp); p: the projection node, -1 none. */
static ri_status upload(cu_state *st, int x, int d, int p, expdw_aux *a, ri__err *err) {
  const ri__cu_expdw_args *k = &a->a;
  a->w1_off = a->b1_off = a->w2_off = a->b2_off = -1;
  if (x >= 0) {
    RI__TRY(ri__cu_fuse_add_half(st, st->g->values[ri__cu_in(st, x, 1)].data, k->ce, k->cin, k->cin, k->ce,
                                 k->k1p, &a->w1_off, err));
    RI__TRY(ri__cu_fuse_add_float(st, ri__cu_fuse_bias(st, x, k->ce), k->ce, k->ce, &a->b1_off, err));
  }
  RI__TRY(ri__cu_fuse_add_dw_taps(st, d, k->ce, k->ce, &a->wd_off, err));
  RI__TRY(ri__cu_fuse_add_float(st, ri__cu_fuse_bias(st, d, k->ce), k->ce, k->ce, &a->bd_off, err));
  if (p < 0) return RI_OK;
  RI__TRY(ri__cu_fuse_add_half(st, st->g->values[ri__cu_in(st, p, 1)].data, k->cout, k->ce, k->ce, k->cout,
                               k->ce, &a->w2_off, err));
  return ri__cu_fuse_add_float(st, ri__cu_fuse_bias(st, p, k->cout), k->cout, k->cout, &a->b2_off, err);
}

/* The projection after depthwise node d (output dv of ce channels), as cuda_irblock.c's try_block takes it:
 * the one node reading dv, a tensor-core 1x1 convolution (stride 1, no pads, group 1, constant weights
 * [cout, ce, 1, 1]) writing half NHWC densely, its own output or (residual fusion) an Add's with the
 * residual res_v; cout % 8 == 0 and at most RI__CU_EXPDW_MAX_COUT; its activation (co.act, as its
 * epilogue applies it) none, ReLU or clip; K in one segment (the kernel sums as one segment does); the
 * residual existing before x, where the fused node runs. Returns the node, -1 none; *co gets its output. */
static int find_proj(const cu_state *st, const int *uses, const int *reader, int x, int d, int64_t ce,
                     cu_conv_out *co) {
  const ri__graph *g = st->g;
  int dv = g->nodes[d].outputs[0];
  if (uses[dv] != 1) return -1; /* uses also counts a graph output, which has no reader */
  int p = reader[dv];
  const ri__conv_params *pp = ri__cu_fuse_conv(st, p, 0);
  if (!pp || p <= d || g->nodes[p].inputs[0] != dv || !st->nodes[p].fusable ||
      !ri__cu_fuse_is_pointwise(st, p, pp))
    return -1;
  *co = st->nodes[p].co;
  const ri__shape *ws = &g->values[ri__cu_in(st, p, 1)].shape;
  int64_t cout = ws->dims[0];
  if (ws->dims[1] != ce || cout % 8 != 0 || cout > RI__CU_EXPDW_MAX_COUT || co->out_f32 || co->y_off != 0 ||
      co->ldy != cout || co->img_stride != 0 || !ri__cu_fuse_is_half_nhwc(st, co->out_v) ||
      (co->res_v >= 0 && !ri__cu_fuse_is_half_nhwc(st, co->res_v)) ||
      (pp->has_bias && !ri__cu_fuse_bias(st, p, cout)))
    return -1;
  if (co->act != RI__CU_EXPDW_ACT_NONE && co->act != RI__CU_EXPDW_ACT_RELU &&
      co->act != RI__CU_EXPDW_ACT_CLIP)
    return -1;
  int seg = ri__cu_conv_default_seg(st, p);
  if (seg != 0 && seg < (ce + 31) / 32) return -1;
  int birth = g->values[co->out_v].producer;
  if (birth < x || (co->res_v >= 0 && g->values[co->res_v].producer >= x)) return -1;
  return p;
}

/* The depthwise node d as the kernel takes it (the pattern above), with an output of at least min_out
 * values per image: 1 and its geometry and activation in *ka (n, ih, iw, oh, ow, ce, stride, pads,
 * act[1]), else 0. */
static int dw_args(const cu_state *st, int d, int64_t min_out, ri__cu_expdw_args *ka) {
  const ri__graph *g = st->g;
  const ri__conv_params *pd = ri__cu_fuse_conv(st, d, 2);
  if (!pd) return 0;
  /* a half-accumulation engine's half-arithmetic depthwise node: the kernel's half2 depthwise stage (dwh) */
  const int dwh = strcmp(st->nodes[d].name, "dwconv_h2_f16") == 0;
  const ri__node *nd = &g->nodes[d];
  int ev = nd->inputs[0], dv = nd->outputs[0];
  if (ev < 0 || dv < 0 || !ri__cu_fuse_is_half_nhwc(st, ev) || !ri__cu_fuse_is_half_nhwc(st, dv) ||
      g->values[dv].producer != d)
    return 0;
  const ri__shape *es = &g->values[ev].shape, *ds = &g->values[dv].shape;
  int64_t ce = es->dims[1], ih = es->dims[2], iw = es->dims[3], pads[4];
  ri__conv_resolve_pads(pd, ih, iw, pads);
  const ri__value *wdv = &g->values[ri__cu_in(st, d, 1)];
  if (pd->win.kernel[0] != 3 || pd->win.kernel[1] != 3 || pd->win.dilation[0] != 1 ||
      pd->win.dilation[1] != 1 || pd->win.stride[0] != pd->win.stride[1] ||
      (pd->win.stride[0] != 1 && pd->win.stride[0] != 2) || pd->group != ce || ce % 16 != 0 ||
      ds->dims[0] != es->dims[0] || ds->dims[1] != ce || pads[0] > 2 || pads[1] > 2 || !wdv->data ||
      wdv->dtype != RI_DTYPE_FLOAT32 || wdv->nbytes != (size_t)(ce * 9) * sizeof(float) ||
      (pd->has_bias && !ri__cu_fuse_bias(st, d, ce)))
    return 0;
  if (ds->dims[1] * ds->dims[2] * ds->dims[3] < min_out) return 0;
  if (ce > 65536 || es->dims[0] > INT32_MAX || ih > INT32_MAX || iw > INT32_MAX || ds->dims[2] > INT32_MAX ||
      ds->dims[3] > INT32_MAX)
    return 0;
  memset(ka, 0, sizeof *ka);
  ka->n = (int)es->dims[0], ka->ih = (int)ih, ka->iw = (int)iw, ka->oh = (int)ds->dims[2],
  ka->ow = (int)ds->dims[3];
  ka->ce = (int)ce;
  ka->stride = (int)pd->win.stride[0];
  ka->pad_t = (int)pads[0], ka->pad_l = (int)pads[1];
  ka->act[1] = (int)nd->act, ka->act_a[1] = nd->act_a, ka->act_b[1] = nd->act_b;
  ka->dwh = dwh;
  return 1;
}

/* Makes node f the fused node of arguments k (the expansion x, -1 none; the depthwise d; the projection p,
 * -1 none, with pco its output), reading value in_v: uploads the weights, places the output, skips d
 * (unless it is f) and p. */
static ri_status install(cu_state *st, int f, int in_v, int x, int d, int p, const expdw_aux *k,
                         const cu_conv_out *pco, ri__err *err) {
  const ri__node *nd = &st->g->nodes[d];
  int dv = nd->outputs[0];
  /* Safety of writing the output (dv, or P's output at its birth, the Add's with the residual fusion) at
   * f's place: it moves to the relocation area when the plan does not allow it. D (when not f) and P,
   * skipped once fused, are left out of the window. */
  int out = p >= 0 ? pco->out_v : dv, res = p >= 0 ? pco->res_v : -1;
  expdw_aux *a = ri__malloc(sizeof *a);
  if (!a) return RI__OOM(err);
  *a = *k;
  a->out_v = out, a->res_v = res;
  ri_status s = upload(st, x, d, p, a, err);
  if (s != RI_OK) {
    ri__free(a);
    return s;
  }
  RI__TRY(ri__cu_fuse_place_output(st, f, in_v, out, res, d != f ? d : -1, p, err));
  const char *skipped = x >= 0 ? "fused_into_expdw" : "fused_into_dwproj";
  cu_node *cf = &st->nodes[f];
  ri__free(cf->aux);
  cf->aux = a;
  cf->impl = &k_expdw;
  cf->access = expdw_access;
  cf->name = x >= 0 ? "expdw_f16" : "dwproj_f16";
  /* co states what the node now writes, for the later fusions' safety checks (cuda_fuse.c window_clear);
   * no other fusion redirects it (they look for the producer of the value they redirect, which is D, or P
   * with the projection; co.out_v is P's output then, never dv). */
  cf->fusable = 1;
  if (p >= 0) {
    cf->co = *pco;
    st->nodes[p].fusable = 0;
    st->nodes[p].skip = 1;
    st->nodes[p].name = skipped;
  } else {
    cf->co.out_v = dv, cf->co.res_v = -1;
    cf->co.act = (int)nd->act, cf->co.act_a = nd->act_a, cf->co.act_b = nd->act_b;
    cf->co.y_off = 0, cf->co.ldy = k->a.ce, cf->co.img_stride = 0, cf->co.out_f32 = 0;
  }
  if (d != f) {
    st->nodes[d].skip = 1;
    st->nodes[d].name = skipped;
  }
  return RI_OK;
}

/* Tries to fuse depthwise node d with the expansion before it, for expansions of at most max_cin input
 * channels and depthwise outputs of at least min_out values per image. */
static ri_status try_pair(cu_state *st, const int *uses, const int *reader, int d, int max_cin,
                          int64_t min_out, int proj, ri__err *err) {
  const ri__graph *g = st->g;
  expdw_aux k;
  memset(&k, 0, sizeof k);
  ri__cu_expdw_args *ka = &k.a;
  if (!dw_args(st, d, min_out, ka)) return RI_OK;
  int ev = g->nodes[d].inputs[0];
  if (uses[ev] != 1) return RI_OK;
  /* The expansion: D's input's producer, a dense tensor-core 1x1 convolution writing ev itself. */
  int x = g->values[ev].producer;
  const ri__conv_params *px = ri__cu_fuse_conv(st, x, 0);
  if (!px || x >= d || g->nodes[x].outputs[0] != ev || !ri__cu_fuse_is_pointwise(st, x, px)) return RI_OK;
  const cu_conv_out co = st->nodes[x].co;
  int xv = g->nodes[x].inputs[0];
  const int64_t ce = ka->ce;
  const ri__shape *ws = &g->values[ri__cu_in(st, x, 1)].shape;
  if (co.out_v != ev || co.res_v >= 0 || co.out_f32 || co.y_off != 0 || co.ldy != ce || co.img_stride != 0 ||
      !ri__cu_fuse_is_half_nhwc(st, xv) || ws->dims[0] != ce ||
      (px->has_bias && !ri__cu_fuse_bias(st, x, ce)))
    return RI_OK;
  int64_t cin = ws->dims[1];
  if (g->values[xv].shape.dims[1] != cin || cin % 8 != 0 || cin > max_cin || cin > RI__CU_EXPDW_MAX_CIN)
    return RI_OK;
  /* One K segment (32-deep steps), as the kernel sums. */
  int seg = ri__cu_conv_default_seg(st, x);
  if (seg != 0 && seg < (cin + 31) / 32) return RI_OK;
  ka->cin = (int)cin;
  ka->k1p = (int)((cin + 15) / 16 * 16);
  ka->zstep = cin % 32 != 0 && cin % 32 <= 16; /* the tiled kernel's all-zero k16 step */
  /* The expansion's activation as its epilogue applies it (co: the node's own, the output being its own). */
  ka->act[0] = co.act, ka->act_a[0] = co.act_a, ka->act_b[0] = co.act_b;
  if (!ri__cu_expdw_supported(ka)) return RI_OK;
  /* The projection too, where one follows that the kernel takes; else the pair alone. */
  cu_conv_out pco;
  memset(&pco, 0, sizeof pco);
  int p = proj ? find_proj(st, uses, reader, x, d, ce, &pco) : -1;
  if (p >= 0) {
    ka->cout = (int)g->values[ri__cu_in(st, p, 1)].shape.dims[0];
    ka->act[2] = pco.act, ka->act_a[2] = pco.act_a, ka->act_b[2] = pco.act_b;
    if (!ri__cu_expdw_supported(ka)) {
      ka->cout = 0, ka->act[2] = 0, ka->act_a[2] = ka->act_b[2] = 0.f;
      p = -1;
    }
  }
  return install(st, x, xv, x, d, p, &k, &pco, err);
}

/* Tries to fuse depthwise node d, whose input no expansion before it is fused with, and the projection
 * after it (find_proj), for depthwise convolutions of at most max_ce channels and outputs of at least
 * min_out values per image: the kernel without the expansion (noexp), run at d's place. */
static ri_status try_dwproj(cu_state *st, const int *uses, const int *reader, int d, int max_ce,
                            int64_t min_out, ri__err *err) {
  const ri__graph *g = st->g;
  expdw_aux k;
  memset(&k, 0, sizeof k);
  ri__cu_expdw_args *ka = &k.a;
  if (!dw_args(st, d, min_out, ka) || ka->ce > max_ce) return RI_OK;
  ka->noexp = 1, ka->cin = ka->ce; /* k1p, zstep, act[0]: 0 */
  cu_conv_out pco;
  memset(&pco, 0, sizeof pco);
  int p = find_proj(st, uses, reader, d, d, ka->ce, &pco);
  if (p < 0) return RI_OK;
  ka->cout = (int)g->values[ri__cu_in(st, p, 1)].shape.dims[0];
  ka->act[2] = pco.act, ka->act_a[2] = pco.act_a, ka->act_b[2] = pco.act_b;
  if (!ri__cu_expdw_supported(ka)) return RI_OK;
  return install(st, d, g->nodes[d].inputs[0], -1, d, p, &k, &pco, err);
}

ri_status ri__cu_fuse_expdw(cu_state *st, const int *uses, const int *reader, ri__err *err) {
  const char *penv = getenv("RI_CUDA_EXPDW_PROJ"), *denv = getenv("RI_CUDA_EXPDW_DWP");
  int proj = !(penv && strcmp(penv, "0") == 0);
  int dwp = proj && !(denv && strcmp(denv, "0") == 0); /* the form without expansion needs the projection */
  const char *env = getenv("RI_CUDA_EXPDW");
  int max_cin;
  int64_t min_out = 0;
  if (env && strcmp(env, "0") == 0)
    max_cin = 0;
  else if (env && strcmp(env, "all") == 0)
    max_cin = RI__CU_EXPDW_MAX_CIN;
  else
    max_cin = st->cfg.max_batch > 1 ? EXPDW_AUTO_MAX_CIN : 0, min_out = EXPDW_AUTO_MIN_OUT;
  if (!st->fp16 || max_cin <= 0) return RI_OK;
  for (int d = 0; d < st->g->n_nodes; d++) {
    RI__TRY(try_pair(st, uses, reader, d, max_cin, min_out, proj, err));
    /* the depthwise convolution not fused with an expansion: with its projection alone (max_cin the
     * default rule's, or the kernel's limit, on its ce) */
    if (dwp && !st->nodes[d].skip) RI__TRY(try_dwproj(st, uses, reader, d, max_cin, min_out, err));
  }
  return RI_OK;
}
