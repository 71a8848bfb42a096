/* Fusion of the input normalisation that device preprocessing puts at the start of a graph
 * (src/graph/uint8_input.c): Cast(uint8 -> float) -> Sub(mean) -> Mul(scale) [-> Transpose(0,3,1,2)] becomes
 * one kernel (k_u8norm.cu) that reads the uint8 NHWC pixels once and writes the chain's last value; the
 * Sub, Mul and Transpose are skipped. Unfused, the four element-wise kernels cost about 0.15 ms of GPU
 * compute per batch of 32 300x300 images on an H200 (bench/results/gpu-branches-u8-2026-11-27.txt).
 *
 * Pattern: the Cast reads a uint8 graph input of rank 4 whose last axis has at most
 * RI__CU_U8NORM_MAX_CHANNELS channels and is read by nothing else; each link is read by the next node
 * alone; Sub and Mul take a float32 constant that broadcasts over the last axis (one value per channel, or
 * one for all); the last value is stored in the input's element order: the Transpose's output in NHWC
 * storage (cuda_layout.c makes that Transpose a copy), or the Mul's output row-major, as float or half.
 * The numbers: the same float arithmetic as the unfused kernels, rounded once (in fp16 engines the unfused
 * chain rounds to half after each kernel).
 *
 * Safety, as for the Concat fusion (cuda_fuse.c): the fused node writes the last value V at the Cast's
 * place, before the node the memory plan gives V's birth to; when a node that still runs in between
 * touches a value overlapping V, or the input overlaps V, V moves to the relocation area. The access hook
 * tells the memory re-plan what the node reads and writes, and the re-plan then places V again (and undoes
 * the relocation). RI_CUDA_FUSE=0 turns it off with the other fusions. */
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "graph/op.h"

typedef struct {
  ri__cu_u8norm_coef k;
  int channels;
  int out_v;
} u8n_aux;

static ri_status u8n_prep(cu_state *st, int ni, ri__err *err) {
  return ri__cu_unsupported(err, st, ni, "the input normalisation is made by the fusion pass only");
}

static ri_status u8n_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                         ri__err *err) {
  (void)out, (void)scratch;
  const cu_state *st = c->st;
  const u8n_aux *a = st->nodes[ni].aux;
  void *y = ri__cu_value_ptr(c, a->out_v);
  if (!in[0].p || !y || in[0].dt != RI_DTYPE_UINT8)
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (fused input normalisation): an operand is missing",
                       st->g->nodes[ni].name);
  int64_t n = ri__shape_numel(&in[0].t->shape);
  CU_RT(ri__cu_u8_normalize(c->stream, in[0].p, n, a->channels, &a->k, y, st->vdt[a->out_v]));
  return RI_OK;
}

static const cu_op_impl k_u8norm = {u8n_prep, NULL, NULL, u8n_run};

static void u8n_access(const cu_state *st, int ni, int *reads, int *writes) {
  const u8n_aux *a = st->nodes[ni].aux;
  reads[0] = st->g->nodes[ni].inputs[0];
  writes[0] = a->out_v;
}

/* The node that alone reads v (and v is not a graph output), running, of op `op`; else -1. */
static int next_node(const cu_state *st, const int *uses, const int *reader, int v, ri__op op) {
  if (v < 0 || uses[v] != 1) return -1;
  int j = reader[v];
  const ri__node *n = &st->g->nodes[j];
  return !n->host && !st->nodes[j].skip && n->op == op ? j : -1;
}

/* Per-channel values of node ni's constant operand (the other one being `x`): 1 and vals filled when it is
 * float32 and broadcasts over the last axis of a tensor with `channels` channels. */
static int channel_const(const cu_state *st, int ni, int x, int channels, float *vals) {
  const ri__node *n = &st->g->nodes[ni];
  if (n->n_inputs != 2 || n->inputs[0] != x || n->act != RI__ACT_NONE) return 0;
  const ri__value *k = &st->g->values[n->inputs[1]];
  if (k->kind != RI__VAL_CONST || k->dtype != RI_DTYPE_FLOAT32 || !k->data) return 0;
  int64_t numel = ri__shape_numel(&k->shape);
  for (int d = 0; d + 1 < k->shape.rank; d++)
    if (k->shape.dims[d] != 1) return 0;
  if (numel != 1 && (numel != channels || k->shape.dims[k->shape.rank - 1] != channels)) return 0;
  for (int c = 0; c < channels; c++)
    vals[c] = ((const float *)k->data)[numel == 1 ? 0 : c];
  return 1;
}

static int is_to_nchw(const ri__node *t) {
  const int64_t *perm = NULL;
  int np = ri__node_attr_ints(t, "perm", &perm);
  return np == 4 && perm[0] == 0 && perm[1] == 3 && perm[2] == 1 && perm[3] == 2;
}

static ri_status fuse_one(cu_state *st, const int *uses, const int *reader, int ci, ri__err *err) {
  const ri__graph *g = st->g;
  const ri__node *cast = &g->nodes[ci];
  int x = cast->inputs[0];
  if (x < 0 || g->values[x].kind != RI__VAL_INPUT || g->values[x].dtype != RI_DTYPE_UINT8 ||
      g->values[x].shape.rank != 4 || uses[x] != 1 || cast->n_outputs != 1 || st->vdt[x] != RI_DTYPE_UINT8 ||
      st->vlayout[x] != CU_LAYOUT_ROW || (st->nodes[ci].want && st->nodes[ci].want[0] != CU_WANT_ANY))
    return RI_OK;
  int channels = (int)g->values[x].shape.dims[3];
  if (channels < 1 || channels > RI__CU_U8NORM_MAX_CHANNELS) return RI_OK;
  u8n_aux a;
  memset(&a, 0, sizeof a);
  a.channels = channels;
  int c_out = cast->outputs[0];
  int si = next_node(st, uses, reader, c_out, RI__OP_Sub);
  if (si < 0 || !channel_const(st, si, c_out, channels, a.k.mean)) return RI_OK;
  int s_out = g->nodes[si].outputs[0];
  int mi = next_node(st, uses, reader, s_out, RI__OP_Mul);
  if (mi < 0 || !channel_const(st, mi, s_out, channels, a.k.scale)) return RI_OK;
  int m_out = g->nodes[mi].outputs[0];
  int ti = next_node(st, uses, reader, m_out, RI__OP_Transpose);
  int last = mi, v = m_out, layout = CU_LAYOUT_ROW;
  if (ti >= 0 && is_to_nchw(&g->nodes[ti])) {
    last = ti;
    v = g->nodes[ti].outputs[0];
    layout = CU_LAYOUT_NHWC;
  }
  if (v < 0 || st->vlayout[v] != layout ||
      (st->vdt[v] != RI_DTYPE_FLOAT16 && st->vdt[v] != RI_DTYPE_FLOAT32) || st->mem_off[v] < 0 ||
      st->reloc_off[v] >= 0 || g->values[v].host || g->values[v].is_output)
    return RI_OK;
  size_t nb;
  RI__TRY(ri__tensor_nbytes(st->vdt[v], &g->values[v].shape, &nb, err));
  u8n_aux *p = ri__malloc(sizeof *p);
  if (!p) return RI__OOM(err);
  a.out_v = v;
  *p = a;
  /* the window is checked with the chain's nodes skipped (they will not run): only other nodes matter */
  const int chain[3] = {si, mi, last};
  for (int j = 0; j < 3; j++)
    st->nodes[chain[j]].skip = 1;
  if (ri__cu_overlaps(st, x, v) || !ri__cu_window_clear(st, ci + 1, last, v)) {
    /* the first plan gives V bytes that are in use before V's birth: V moves to the relocation area,
     * which the re-plan undoes (it knows what the fused node reads and writes) */
    st->reloc_off[v] = st->reloc_bytes;
    st->reloc_bytes += ((int64_t)nb + CU_ALIGN - 1) / CU_ALIGN * CU_ALIGN;
  }
  cu_node *cn = &st->nodes[ci];
  ri__free(cn->aux);
  cn->aux = p;
  cn->impl = &k_u8norm;
  cn->name = "u8_normalize";
  cn->access = u8n_access;
  cn->cvt_bytes = 0;
  cn->op_scratch = 0;
  for (int j = 0; j < 3; j++)
    st->nodes[chain[j]].name = "fused_into_input";
  return RI_OK;
}

ri_status ri__cu_fuse_input(cu_state *st, const int *uses, const int *reader, ri__err *err) {
  const ri__graph *g = st->g;
  for (int ni = 0; ni < g->n_nodes; ni++) {
    const ri__node *n = &g->nodes[ni];
    if (n->host || st->nodes[ni].skip || n->op != RI__OP_Cast || n->n_inputs != 1) continue;
    RI__TRY(fuse_one(st, uses, reader, ni, err));
  }
  return RI_OK;
}
