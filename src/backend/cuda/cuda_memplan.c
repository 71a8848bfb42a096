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
 * RI_CUDA_MEMPLAN=graph keeps the graph plan's offsets and sizes (staging after it), for comparisons. */
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

ri_status ri__cu_plan_memory(cu_state *st, ri__err *err) {
  const ri__graph *g = st->g;
  int n_io = g->n_inputs + g->n_outputs;
  size_t cap = (size_t)g->n_values + (size_t)n_io + 1;
  ri__plan_block *b = ri__malloc(cap * sizeof *b);
  int64_t *off = ri__malloc(cap * sizeof *off);
  int *slot = ri__malloc(((size_t)g->n_values + 1) * sizeof *slot);
  if (!b || !off || !slot) {
    ri__free(b);
    ri__free(off);
    ri__free(slot);
    return RI__OOM(err);
  }
  int count = 0;
  for (int v = 0; v < g->n_values; v++) {
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
  for (int ni = 0; ni < g->n_nodes; ni++)
    for (int k = 0; k < g->nodes[ni].n_inputs; k++) {
      int v = g->nodes[ni].inputs[k];
      if (v >= 0 && slot[v] >= 0 && b[slot[v]].last < ni) b[slot[v]].last = ni;
    }
  for (int i = 0; i < g->n_outputs; i++)
    if (slot[g->outputs[i]] >= 0) b[slot[g->outputs[i]]].last = g->n_nodes;
  /* Staging of converted inputs (alive before the conversions at -1) and outputs (after those at n). */
  for (int i = 0; i < n_io; i++) {
    st->dio_off[i] = -1;
    int v = i < g->n_inputs ? g->inputs[i] : g->outputs[i - g->n_inputs];
    const ri__value *val = &g->values[v];
    if (val->kind == RI__VAL_CONST || val->host || ri__cu_io_direct(st, v)) continue;
    b[count].key = g->n_values + i;
    b[count].first = i < g->n_inputs ? -2 : g->n_nodes;
    b[count].last = b[count].first + 1;
    b[count].size = align_block(st->io_nbytes[i]);
    count++;
  }
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
  st->arena_bytes = total;
  ri__free(b);
  ri__free(off);
  ri__free(slot);
  return s;
}
