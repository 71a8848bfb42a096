/* The device memory plan of a CUDA engine: where each activation lives in a context's arena.
 *
 * The graph's own plan (graph/memory_plan.c) sizes every value in its graph dtype, so in an fp16 engine,
 * whose float32 activations are float16 on the device, it reserves twice the bytes the values need. This
 * plan keeps the graph plan's lifetimes (producer to last reader; graph inputs from before the first node,
 * graph outputs to after the last) and places the values again with their device sizes. Graph outputs
 * keep the size of their graph dtype, since the fusion pass may have the convolutions that produce them
 * write float32 straight away (cuda_fuse.c).
 *
 * The device-side staging of graph inputs and outputs that need a conversion (float32 images into the
 * arena's float16 NHWC values, float16 results back to float32) lives in the same arena: an input's staging
 * block is alive only before the input conversions, an output's only after the output conversions, so
 * they share bytes with the activations in between instead of taking a buffer of their own.
 *
 * After the fusion pass the plan is made again from what the nodes that still run really read and write
 * (ri__cu_replan_memory): a fused convolution that writes a value early makes it live from that write, a
 * value no running node touches (the expanded tensor of a fused inverted-residual block, a redirected
 * convolution's own output) takes no bytes, and the values the fusion pass had to move out of the first
 * plan (st->reloc_off) come back into the arena. The first plan is kept when a running node's work is not
 * known (an implementation replaced by a fusion without a cu_node.access hook).
 *
 * RI_CUDA_MEMPLAN=graph keeps the graph plan's offsets and sizes (staging after it) and =prefusion skips
 * the second plan, for comparisons. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "graph/passes.h"

static int64_t align_block(int64_t n) {
  if (n < CU_ALIGN) return CU_ALIGN;
  return (n + CU_ALIGN - 1) / CU_ALIGN * CU_ALIGN;
}

/* Bytes of value v on the device: its graph plan size scaled by the device element size. */
static int64_t device_size(const cu_state *st, int v) {
  const ri__value *val = &st->g->values[v];
  int64_t eg = (int64_t)ri__cu_esize(val->dtype), ed = (int64_t)ri__cu_esize(st->vdt[v]);
  if (val->is_output || eg <= 0 || ed <= 0 || ed >= eg) return align_block(val->mem_size);
  return align_block((val->mem_size * ed + eg - 1) / eg);
}

/* Appends the staging blocks of converted graph inputs (alive before the input conversions at -1) and
 * outputs (after the output conversions at n_nodes), keyed n_values + io index. */
static void add_staging(cu_state *st, ri__plan_block *b, int *count) {
  const ri__graph *g = st->g;
  for (int i = 0; i < g->n_inputs + g->n_outputs; i++) {
    st->dio_off[i] = -1;
    int v = i < g->n_inputs ? g->inputs[i] : g->outputs[i - g->n_inputs];
    const ri__value *val = &g->values[v];
    if (val->kind == RI__VAL_CONST || val->host || ri__cu_io_direct(st, v)) continue;
    b[*count].key = g->n_values + i;
    b[*count].first = i < g->n_inputs ? -2 : g->n_nodes;
    b[*count].last = b[*count].first + 1;
    b[*count].size = align_block(st->io_nbytes[i]);
    (*count)++;
  }
}

/* Places the blocks and records the plan in st (values not among them keep what they have). */
static ri_status place(cu_state *st, ri__plan_block *b, int count, int64_t *off, ri__err *err) {
  const ri__graph *g = st->g;
  int64_t total = 0;
  ri_status s = RI_OK;
  const char *env = getenv("RI_CUDA_MEMPLAN");
  if (env && strcmp(env, "graph") == 0) {
    /* The graph plan as stored (graph dtype sizes), staging appended after it: for comparisons. */
    total = st->cfg.arena_size;
    for (int i = 0; i < count; i++) {
      int k = b[i].key;
      off[i] = k < g->n_values ? g->values[k].mem_offset : total;
      if (k < g->n_values) b[i].size = g->values[k].mem_size;
      if (k >= g->n_values) total += b[i].size;
    }
  } else {
    s = ri__plan_place(b, count, off, &total, err);
  }
  for (int i = 0; s == RI_OK && i < count; i++) {
    if (b[i].key < g->n_values) {
      st->mem_off[b[i].key] = off[i];
      st->mem_size[b[i].key] = b[i].size;
    } else {
      st->dio_off[b[i].key - g->n_values] = off[i];
    }
  }
  if (s == RI_OK) st->arena_bytes = total;
  return s;
}

ri_status ri__cu_plan_memory(cu_state *st, ri__err *err) {
  const ri__graph *g = st->g;
  size_t cap = (size_t)g->n_values + (size_t)(g->n_inputs + g->n_outputs) + 1;
  ri__plan_block *b = ri__malloc(cap * sizeof *b);
  int64_t *off = ri__malloc(cap * sizeof *off);
  int *slot = ri__malloc(((size_t)g->n_values + 1) * sizeof *slot);
  ri_status s = b && off && slot ? RI_OK : RI__OOM(err);
  int count = 0;
  for (int v = 0; s == RI_OK && v < g->n_values; v++) {
    const ri__value *val = &g->values[v];
    slot[v] = -1;
    st->mem_off[v] = -1;
    st->mem_size[v] = 0;
    if (val->mem_offset < 0 || val->host || val->kind == RI__VAL_CONST) continue;
    b[count].key = v;
    b[count].first = val->kind == RI__VAL_INPUT ? -1 : val->producer;
    b[count].last = b[count].first;
    b[count].size = device_size(st, v);
    slot[v] = count++;
  }
  for (int ni = 0; s == RI_OK && ni < g->n_nodes; ni++)
    for (int k = 0; k < g->nodes[ni].n_inputs; k++) {
      int v = g->nodes[ni].inputs[k];
      if (v >= 0 && slot[v] >= 0 && b[slot[v]].last < ni) b[slot[v]].last = ni;
    }
  for (int i = 0; s == RI_OK && i < g->n_outputs; i++)
    if (slot[g->outputs[i]] >= 0) b[slot[g->outputs[i]]].last = g->n_nodes;
  if (s == RI_OK) {
    add_staging(st, b, &count);
    s = place(st, b, count, off, err);
  }
  ri__free(b);
  ri__free(off);
  ri__free(slot);
  return s;
}

int ri__cu_node_access(const cu_state *st, int k, int *rd, int *wr) {
  const ri__node *n = &st->g->nodes[k];
  const cu_node *cn = &st->nodes[k];
  for (int i = 0; i <= CU_MAX_ACCESS; i++)
    rd[i] = wr[i] = -1;
  if (cn->access) {
    cn->access(st, k, rd, wr);
    rd[CU_MAX_ACCESS] = wr[CU_MAX_ACCESS] = -1;
    return 1;
  }
  if (cn->impl != ri__cu_op_impl(n->op) || n->n_inputs > CU_MAX_ACCESS - 1 || n->n_outputs > CU_MAX_ACCESS)
    return 0;
  int r = 0;
  for (int i = 0; i < n->n_inputs; i++)
    if (n->inputs[i] >= 0) rd[r++] = n->inputs[i];
  if (cn->fusable) {
    if (cn->co.res_v >= 0) rd[r++] = cn->co.res_v;
    wr[0] = cn->co.out_v;
    return 1;
  }
  int w = 0;
  for (int i = 0; i < n->n_outputs; i++)
    if (n->outputs[i] >= 0) wr[w++] = n->outputs[i];
  return 1;
}

ri_status ri__cu_replan_memory(cu_state *st, ri__err *err) {
  const ri__graph *g = st->g;
  const char *env = getenv("RI_CUDA_MEMPLAN");
  if (env && (strcmp(env, "graph") == 0 || strcmp(env, "prefusion") == 0)) return RI_OK;
  size_t nv = (size_t)g->n_values + 1;
  int *first = ri__malloc(nv * sizeof *first), *last = ri__malloc(nv * sizeof *last);
  unsigned char *ref = ri__calloc(nv, 1);
  size_t cap = nv + (size_t)(g->n_inputs + g->n_outputs);
  ri__plan_block *b = ri__malloc(cap * sizeof *b);
  int64_t *off = ri__malloc(cap * sizeof *off);
  ri_status s = first && last && ref && b && off ? RI_OK : RI__OOM(err);
  int known = s == RI_OK;
  if (known) ri__cu_mark_branches(st);
  for (int v = 0; known && v < g->n_values; v++) {
    first[v] = INT_MAX;
    last[v] = INT_MIN;
  }
  for (int i = 0; known && i < g->n_inputs; i++)
    if (st->mem_off[g->inputs[i]] >= 0) first[g->inputs[i]] = last[g->inputs[i]] = -1;
  for (int k = 0; known && k < g->n_nodes; k++) {
    const ri__node *n = &g->nodes[k];
    int rd[CU_MAX_ACCESS + 1], wr[CU_MAX_ACCESS + 1];
    if (st->nodes[k].skip) continue;
    if (n->host) { /* reads device values only for their shapes; kept alive to be safe */
      for (int i = 0; i < n->n_inputs; i++) {
        int v = n->inputs[i];
        if (v >= 0 && st->mem_off[v] >= 0 && first[v] != INT_MAX && last[v] < k) last[v] = k;
      }
      continue;
    }
    if (!ri__cu_node_access(st, k, rd, wr)) {
      known = 0;
      break;
    }
    for (int i = 0; i < n->n_inputs; i++)
      if (n->inputs[i] >= 0) ref[n->inputs[i]] = 1;
    for (int i = 0; i < n->n_outputs; i++)
      if (n->outputs[i] >= 0) ref[n->outputs[i]] = 1;
    /* a side node may still read when the main stream has gone on to the end */
    const int read_until = st->nodes[k].side ? g->n_nodes : k;
    for (int i = 0; known && rd[i] >= 0; i++) {
      int v = rd[i];
      if (st->mem_off[v] < 0) continue;
      if (first[v] == INT_MAX) known = 0; /* read before anything writes it: not understood */
      if (last[v] < read_until) last[v] = read_until;
    }
    for (int i = 0; known && wr[i] >= 0; i++) {
      int v = wr[i];
      if (st->mem_off[v] < 0) continue;
      if (first[v] > k) first[v] = k;
      if (last[v] < k) last[v] = k;
    }
  }
  for (int i = 0; known && i < g->n_outputs; i++) {
    int v = g->outputs[i];
    if (st->mem_off[v] < 0) continue;
    if (first[v] == INT_MAX) known = 0;
    last[v] = g->n_nodes;
  }
  if (known) {
    int count = 0;
    for (int v = 0; v < g->n_values; v++) {
      if (st->mem_off[v] < 0) continue;
      if (first[v] == INT_MAX) {
        /* Named by a running node but never accessed (a redirected convolution's own output): the arena's
         * base stands in for it, with no bytes of its own. */
        st->mem_off[v] = ref[v] ? 0 : -1;
        st->mem_size[v] = 0;
        continue;
      }
      b[count].key = v;
      b[count].first = first[v];
      b[count].last = last[v];
      b[count].size = st->mem_size[v];
      count++;
    }
    add_staging(st, b, &count);
    s = place(st, b, count, off, err);
    for (int v = 0; s == RI_OK && v < g->n_values; v++)
      st->reloc_off[v] = -1;
    if (s == RI_OK) st->reloc_bytes = 0;
  }
  if (!known || s != RI_OK) { /* the first plan does not keep side nodes' inputs alive: no side nodes */
    for (int k = 0; k < g->n_nodes; k++)
      st->nodes[k].side = 0;
    st->n_side = 0;
  }
  ri__free(first);
  ri__free(last);
  ri__free(ref);
  ri__free(b);
  ri__free(off);
  return s;
}
