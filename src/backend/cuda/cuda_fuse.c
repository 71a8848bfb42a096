/* Fusion of device nodes into the epilogue of the own implicit-GEMM convolutions (cu_node.co: the half
 * tensor-core kernel and the fp32 one), decided once per engine after every op's prep.
 *
 * Residual: Conv (no activation) -> Add(conv, r) with the conv output read by nothing else becomes one
 * convolution that adds r in its epilogue, applies the Add's activation and writes the Add's output; the
 * Add is skipped.
 *
 * Concat of SSD heads: Conv -> Transpose(0,2,3,1) -> Reshape/Flatten to [N, T_i, D] -> Concat(axis 1),
 * every link read by nothing else, for every input of the Concat: each convolution writes its pixels
 * straight into its slice of the Concat's row-major output (the NHWC conv output, transposed to NHWC
 * row-major and reshaped, is the same sequence of elements); the Transposes, Reshapes and the Concat are
 * skipped. A Sigmoid that alone reads the Concat's output joins too (the convolutions apply it and write
 * its output). When the value written is a graph output that no node reads, it is written as float32,
 * so that no output conversion pass is needed.
 *
 * Safety. A fused convolution writes a value V (the Add's or the Concat's output) before the node that
 * the memory plan gives V's birth to. The plan (cuda_memplan.c, with graph/memory_plan.c's lifetimes) only
 * promises that V's bytes are free from that node on, so V may stay in its arena block only when no node that
 * still runs between the convolution and that node (the convolution included) reads or writes a value whose
 * block overlaps V's. A residual fusion is made only then. A Concat's output is otherwise moved to a
 * per-context relocation area of its own (st->reloc_off), sized for the maximum batch: the SSD heads read
 * feature maps whose blocks the plan hands to the Concat's output once the last head has read them. */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/axis_util.h"

typedef struct {
  int *uses;   /* per value: reads by nodes, plus one for a graph output */
  int *reader; /* per value: the last node that reads it */
} use_map;

static int overlaps(const cu_state *st, int a, int b) {
  const ri__graph *g = st->g;
  const ri__value *x = &g->values[a], *y = &g->values[b];
  const int64_t xo = st->mem_off[a], yo = st->mem_off[b];
  if (xo < 0 || yo < 0 || x->host || y->host || x->kind == RI__VAL_CONST || y->kind == RI__VAL_CONST ||
      st->reloc_off[a] >= 0 || st->reloc_off[b] >= 0)
    return 0;
  return xo < yo + st->mem_size[b] && yo < xo + st->mem_size[a];
}

/* 1 when no node in [from, to) that still runs reads or writes a value overlapping v (other than v). */
static int window_clear(const cu_state *st, int from, int to, int v) {
  const ri__graph *g = st->g;
  for (int k = from; k < to; k++) {
    const ri__node *n = &g->nodes[k];
    const cu_node *cn = &st->nodes[k];
    if (n->host || cn->skip) continue;
    for (int i = 0; i < n->n_inputs; i++)
      if (n->inputs[i] >= 0 && n->inputs[i] != v && overlaps(st, n->inputs[i], v)) return 0;
    if (cn->fusable) {
      if (cn->co.res_v >= 0 && cn->co.res_v != v && overlaps(st, cn->co.res_v, v)) return 0;
      if (cn->co.out_v != v && overlaps(st, cn->co.out_v, v)) return 0;
      continue;
    }
    for (int i = 0; i < n->n_outputs; i++)
      if (n->outputs[i] >= 0 && n->outputs[i] != v && overlaps(st, n->outputs[i], v)) return 0;
  }
  return 1;
}

/* The single node reading value v, or -1 (none, several, or v is a graph output). */
static int sole_reader(const use_map *u, int v) { return u->uses[v] == 1 ? u->reader[v] : -1; }

static int same_shape(const ri__shape *a, const ri__shape *b) {
  if (a->rank != b->rank) return 0;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return 0;
  return 1;
}

/* The device type of the engine's float values. */
static ri_dtype float_type(const cu_state *st) { return st->fp16 ? RI_DTYPE_FLOAT16 : RI_DTYPE_FLOAT32; }

static int in_arena(const cu_state *st, int v) {
  const ri__value *val = &st->g->values[v];
  return st->mem_off[v] >= 0 && !val->host && val->kind != RI__VAL_CONST;
}

static void fuse_residual(cu_state *st, const use_map *u, int ni) {
  const ri__graph *g = st->g;
  cu_node *cn = &st->nodes[ni];
  if (cn->co.act != RI__ACT_NONE || cn->co.out_v != g->nodes[ni].outputs[0]) return;
  int v = g->nodes[ni].outputs[0], j = sole_reader(u, v);
  if (j < 0 || g->nodes[j].host || g->nodes[j].op != RI__OP_Add || g->nodes[j].n_inputs != 2) return;
  const ri__node *add = &g->nodes[j];
  int r = add->inputs[0] == v ? add->inputs[1] : add->inputs[0], o = add->outputs[0];
  if (r < 0 || r == v || o < 0) return;
  /* The convolution reads r when it runs: r must exist by then (a ResNet shortcut convolution placed
   * after the branch's last convolution does not; its own output is the one to fuse then). */
  if (g->values[r].kind != RI__VAL_INPUT && g->values[r].producer >= ni) return;
  const ri__value *rv = &g->values[r], *ov = &g->values[o], *vv = &g->values[v];
  if (!in_arena(st, r) || !in_arena(st, o) || !same_shape(&rv->shape, &vv->shape) ||
      !same_shape(&ov->shape, &vv->shape) || st->vdt[r] != float_type(st) || st->vdt[o] != float_type(st) ||
      st->vlayout[r] != CU_LAYOUT_NHWC || st->vlayout[o] != CU_LAYOUT_NHWC)
    return;
  if (!window_clear(st, ni, j, o) || overlaps(st, r, o)) return;
  cn->co.out_v = o;
  cn->co.res_v = r;
  cn->co.act = (int)add->act, cn->co.act_a = add->act_a, cn->co.act_b = add->act_b;
  st->nodes[j].skip = 1;
  st->nodes[j].name = "fused_into_conv";
}

/* Follows Conv -> Transpose(0,2,3,1) -> Reshape/Flatten for the Concat input value `in`: the convolution
 * node, or -1. chain[0..1] get the Transpose and Reshape nodes. */
static int head_conv(const cu_state *st, const use_map *u, int in, int chain[2]) {
  const ri__graph *g = st->g;
  int rs = g->values[in].producer;
  if (rs < 0 || g->nodes[rs].host || st->nodes[rs].skip) return -1;
  ri__op rop = g->nodes[rs].op;
  if (rop != RI__OP_Reshape && rop != RI__OP_Flatten) return -1;
  int tv = g->nodes[rs].inputs[0];
  if (tv < 0 || sole_reader(u, tv) != rs) return -1;
  int tr = g->values[tv].producer;
  if (tr < 0 || g->nodes[tr].host || g->nodes[tr].op != RI__OP_Transpose) return -1;
  const int64_t *perm = NULL;
  if (ri__node_attr_ints(&g->nodes[tr], "perm", &perm) != 4 || perm[0] != 0 || perm[1] != 2 || perm[2] != 3 ||
      perm[3] != 1)
    return -1;
  int cv = g->nodes[tr].inputs[0];
  if (cv < 0 || sole_reader(u, cv) != tr || st->vlayout[tv] != CU_LAYOUT_ROW) return -1;
  int ci = g->values[cv].producer;
  if (ci < 0 || !st->nodes[ci].fusable || st->nodes[ci].co.out_v != cv || st->nodes[ci].co.res_v >= 0 ||
      st->vlayout[cv] != CU_LAYOUT_NHWC)
    return -1;
  chain[0] = tr;
  chain[1] = rs;
  return ci;
}

/* A Concat whose every input is a fusable head chain: the nodes involved and each conv's slice. */
typedef struct {
  int cat, first, n;
  int conv[64], chain[64][2];
  cu_conv_out co[64]; /* the redirected outputs */
} cat_plan;

static int plan_concat(const cu_state *st, const use_map *u, int ci, cat_plan *pl) {
  const ri__graph *g = st->g;
  const ri__node *cat = &g->nodes[ci];
  if (cat->host || cat->n_inputs < 1 || cat->n_outputs != 1 || cat->n_inputs > 64) return 0;
  int o = cat->outputs[0];
  if (o < 0) return 0;
  const ri__value *ov = &g->values[o];
  int axis;
  if (!in_arena(st, o) || ov->shape.rank != 3 || st->vlayout[o] != CU_LAYOUT_ROW ||
      st->vdt[o] != float_type(st) || !ri__norm_axis(ri__node_attr_int(cat, "axis", 0), 3, &axis) ||
      axis != 1)
    return 0;
  pl->cat = ci, pl->first = ci, pl->n = cat->n_inputs;
  int64_t t_off = 0, d = ov->shape.dims[2];
  for (int k = 0; k < cat->n_inputs; k++) {
    int in = cat->inputs[k];
    /* An input listed twice has two reads: sole_reader refuses it. */
    if (in < 0 || sole_reader(u, in) != ci || g->values[in].shape.rank != 3 ||
        g->values[in].shape.dims[2] != d)
      return 0;
    int cv = head_conv(st, u, in, pl->chain[k]);
    if (cv < 0) return 0;
    const ri__shape *cs = &g->values[g->nodes[cv].outputs[0]].shape;
    if (cs->rank != 4 || cs->dims[1] * cs->dims[2] * cs->dims[3] != g->values[in].shape.dims[1] * d) return 0;
    pl->conv[k] = cv;
    if (cv < pl->first) pl->first = cv;
    cu_conv_out *co = &pl->co[k];
    *co = st->nodes[cv].co;
    co->out_v = o;
    co->ldy = cs->dims[1];
    co->y_off = t_off * d;
    co->img_stride = ov->shape.dims[1] * d;
    t_off += g->values[in].shape.dims[1];
  }
  return t_off == ov->shape.dims[1];
}

static void apply_concat(cu_state *st, const cat_plan *pl) {
  for (int k = 0; k < pl->n; k++) {
    st->nodes[pl->conv[k]].co = pl->co[k];
    for (int j = 0; j < 2; j++) {
      st->nodes[pl->chain[k][j]].skip = 1;
      st->nodes[pl->chain[k][j]].name = "fused_into_conv";
    }
  }
  st->nodes[pl->cat].skip = 1;
  st->nodes[pl->cat].name = "fused_into_conv";
}

/* Every fusable Concat is fused; then each whose window is not clear (the heads of two Concats
 * interleave, and each head reads a feature map that the plan may hand to a Concat's output) gets its
 * output relocated. Relocation only removes overlaps, so windows found clear stay clear. */
static ri_status fuse_concats(cu_state *st, const use_map *u, ri__err *err) {
  const ri__graph *g = st->g;
  cat_plan *pl = ri__calloc(1, sizeof *pl);
  if (!pl) return RI__OOM(err);
  int fused[64], nf = 0;
  for (int ni = 0; ni < g->n_nodes && nf < 64; ni++)
    if (g->nodes[ni].op == RI__OP_Concat && !st->nodes[ni].skip && plan_concat(st, u, ni, pl)) {
      apply_concat(st, pl);
      fused[nf++] = ni;
    }
  ri_status s = RI_OK;
  for (int k = 0; k < nf && s == RI_OK; k++) {
    int ci = fused[k], o = g->nodes[ci].outputs[0], first = ci, last = ci, target = o;
    /* A Sigmoid alone reading the Concat's output, after convolutions without activation, joins. */
    int sg = sole_reader(u, o), plain = 1;
    for (int j = 0; j < ci; j++)
      if (st->nodes[j].fusable && st->nodes[j].co.out_v == o && st->nodes[j].co.act != RI__ACT_NONE)
        plain = 0;
    if (plain && sg >= 0 && !g->nodes[sg].host && g->nodes[sg].op == RI__OP_Sigmoid &&
        g->nodes[sg].n_inputs == 1 && g->nodes[sg].n_outputs == 1 && g->nodes[sg].outputs[0] >= 0) {
      int t = g->nodes[sg].outputs[0];
      if (in_arena(st, t) && same_shape(&g->values[t].shape, &g->values[o].shape) &&
          st->vlayout[t] == CU_LAYOUT_ROW && st->vdt[t] == float_type(st)) {
        for (int j = 0; j < ci; j++)
          if (st->nodes[j].fusable && st->nodes[j].co.out_v == o) {
            st->nodes[j].co.out_v = t;
            st->nodes[j].co.act = RI__ACT_SIGMOID;
          }
        st->nodes[sg].skip = 1;
        st->nodes[sg].name = "fused_into_conv";
        target = t, last = sg;
      }
    }
    /* A graph output that no node reads is written as float32 (its arena block is sized for float32). */
    int f32 =
        u->uses[target] == 1 && g->values[target].is_output && g->values[target].dtype == RI_DTYPE_FLOAT32;
    if (f32) st->vdt[target] = RI_DTYPE_FLOAT32;
    for (int j = 0; j < ci; j++)
      if (st->nodes[j].fusable && st->nodes[j].co.out_v == target) {
        st->nodes[j].co.out_f32 = f32;
        if (j < first) first = j;
      }
    if (window_clear(st, first, last, target)) continue;
    size_t nb;
    s = ri__tensor_nbytes(st->vdt[target], &g->values[target].shape, &nb, err);
    if (s != RI_OK) break;
    st->reloc_off[target] = st->reloc_bytes;
    st->reloc_bytes += ((int64_t)nb + CU_ALIGN - 1) / CU_ALIGN * CU_ALIGN;
  }
  ri__free(pl);
  return s;
}

ri_status ri__cu_fuse(cu_state *st, ri__err *err) {
  const ri__graph *g = st->g;
  const char *env = getenv("RI_CUDA_FUSE");
  if (env && strcmp(env, "0") == 0) return RI_OK;
  use_map u;
  size_t nv = (size_t)(g->n_values ? g->n_values : 1);
  u.uses = ri__calloc(nv, sizeof *u.uses);
  u.reader = ri__calloc(nv, sizeof *u.reader);
  if (!u.uses || !u.reader) {
    ri__free(u.uses);
    ri__free(u.reader);
    return RI__OOM(err);
  }
  for (int ni = 0; ni < g->n_nodes; ni++)
    for (int k = 0; k < g->nodes[ni].n_inputs; k++) {
      int v = g->nodes[ni].inputs[k];
      if (v < 0) continue;
      u.uses[v]++;
      u.reader[v] = ni;
    }
  for (int i = 0; i < g->n_outputs; i++)
    u.uses[g->outputs[i]]++;
  for (int ni = 0; ni < g->n_nodes; ni++)
    if (st->nodes[ni].fusable && !g->nodes[ni].host) fuse_residual(st, &u, ni);
  ri_status s = ri__cu_fuse_input(st, u.uses, u.reader, err);
  if (s == RI_OK) s = ri__cu_fuse_irblock(st, u.uses, u.reader, err);
  if (s == RI_OK) s = ri__cu_fuse_expdw(st, u.uses, u.reader, err);
  if (s == RI_OK) s = fuse_concats(st, &u, err);
  ri__free(u.uses);
  ri__free(u.reader);
  return s;
}

int ri__cu_overlaps(const cu_state *st, int a, int b) { return overlaps(st, a, b); }
int ri__cu_window_clear(const cu_state *st, int from, int to, int v) { return window_clear(st, from, to, v); }
