/* Activation memory planning.
 *
 * Every value that lives in the activation arena (not a constant, not a host value; graph inputs and
 * outputs included, since the runtime copies them in and out of the arena) gets a block [mem_offset,
 * mem_offset + mem_size) sized for the maximum batch and rounded up to 64 bytes (at least 64, so that every
 * value has a distinct address). Its lifetime is the closed node-index interval [first, last]: first is the
 * producer's index (-1 for graph inputs), last the index of its last consumer (n_nodes for graph outputs,
 * first when nothing reads it). Two values whose lifetimes intersect never share a byte; a node's inputs
 * and outputs therefore never alias (no in-place kernels).
 *
 * Placement is greedy in first-use order (ties by value index): the blocks of values still live at that
 * point are sorted by offset, and the value goes into the smallest gap between them that fits (best fit),
 * else above the highest live block. Because every size is computed for max_batch and sizes are checked not
 * to shrink with the batch (batch 1 against max_batch), the plan is valid for every batch in between. */
#include <stdlib.h>

#include "core/alloc.h"
#include "graph/passes.h"
#include "graph/shape_infer.h"

#define ALIGN 64

typedef ri__plan_block interval;

typedef struct {
  int64_t off, size;
  int last;
} block;

static int cmp_interval(const void *a, const void *b) {
  const interval *x = a, *y = b;
  if (x->first != y->first) return x->first < y->first ? -1 : 1;
  return (x->key > y->key) - (x->key < y->key);
}

static int planned(const ri__graph *g, int v) {
  const ri__value *val = &g->values[v];
  if (val->kind == RI__VAL_CONST || val->host) return 0;
  if (val->kind == RI__VAL_INPUT) return 1;
  return val->producer >= 0 && !g->nodes[val->producer].dead;
}

/* Fills lifetimes and sizes (for the shapes in vals) of the planned values; returns their count. */
static ri_status collect(const ri__graph *g, const ri__tensor *vals, interval *iv, int *count, ri__err *err) {
  int *slot = ri__malloc((size_t)(g->n_values ? g->n_values : 1) * sizeof(int));
  if (!slot) return RI__OOM(err);
  int c = 0;
  for (int v = 0; v < g->n_values; v++) {
    slot[v] = -1;
    if (!planned(g, v)) continue;
    const ri__value *val = &g->values[v];
    size_t nb;
    ri_status s = ri__tensor_nbytes(vals[v].dtype, &vals[v].shape, &nb, err);
    if (s != RI_OK) {
      ri__free(slot);
      return ri__err_prefix(err, "memory plan: value '%s'", ri__pass_vname(g, v));
    }
    int64_t size = ((int64_t)nb + ALIGN - 1) / ALIGN * ALIGN;
    iv[c].key = v;
    iv[c].first = val->kind == RI__VAL_INPUT ? -1 : val->producer;
    iv[c].last = iv[c].first;
    iv[c].size = size ? size : ALIGN;
    slot[v] = c++;
  }
  for (int ni = 0; ni < g->n_nodes; ni++) {
    const ri__node *n = &g->nodes[ni];
    if (n->dead) continue;
    for (int k = 0; k < n->n_inputs; k++) {
      int v = n->inputs[k];
      if (v >= 0 && slot[v] >= 0 && iv[slot[v]].last < ni) iv[slot[v]].last = ni;
    }
  }
  for (int i = 0; i < g->n_outputs; i++)
    if (slot[g->outputs[i]] >= 0) iv[slot[g->outputs[i]]].last = g->n_nodes;
  ri__free(slot);
  *count = c;
  return RI_OK;
}

/* Sizes must not shrink as the batch grows, or the plan for max_batch would not fit smaller batches. */
static ri_status check_monotone(const ri__graph *g, int max_batch, const ri__tensor *vals_max,
                                const interval *iv, int count, ri__err *err) {
  if (max_batch <= 1) return RI_OK;
  ri__tensor *vals = ri__calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *vals);
  if (!vals) return RI__OOM(err);
  ri_status s = ri__shapes_resolve(g, 1, vals, err);
  for (int i = 0; s == RI_OK && i < count; i++) {
    size_t nb1, nbm;
    int v = iv[i].key;
    s = ri__tensor_nbytes(vals[v].dtype, &vals[v].shape, &nb1, err);
    if (s == RI_OK) s = ri__tensor_nbytes(vals_max[v].dtype, &vals_max[v].shape, &nbm, err);
    if (s == RI_OK && nb1 > nbm) {
      char b1[160], bm[160];
      s = ri__err_set(
          err, RI_ERR_UNSUPPORTED,
          "value '%s' needs %zu bytes (shape %s) at batch 1 but %zu bytes (shape %s) at max batch %d; "
          "an engine needs value sizes that do not shrink as the batch grows",
          ri__pass_vname(g, v), nb1, ri__shape_str(&vals[v].shape, b1, sizeof b1), nbm,
          ri__shape_str(&vals_max[v].shape, bm, sizeof bm), max_batch);
    }
  }
  ri__shapes_free(g, vals);
  ri__free(vals);
  return s;
}

/* Best-fit placement of iv (sorted by first use) among the live blocks. */
static void place(interval *iv, int count, block *live, int64_t *offsets) {
  int nlive = 0;
  for (int i = 0; i < count; i++) {
    int w = 0;
    for (int j = 0; j < nlive; j++)
      if (live[j].last >= iv[i].first) live[w++] = live[j];
    nlive = w; /* live stays sorted by offset */
    int64_t prev_end = 0, best = -1, best_gap = INT64_MAX;
    int at = nlive;
    for (int j = 0; j < nlive; j++) {
      int64_t gap = live[j].off - prev_end;
      if (gap >= iv[i].size && gap < best_gap) {
        best_gap = gap;
        best = prev_end;
      }
      if (live[j].off + live[j].size > prev_end) prev_end = live[j].off + live[j].size;
    }
    int64_t off = best >= 0 ? best : prev_end;
    for (int j = 0; j < nlive; j++)
      if (live[j].off > off) {
        at = j;
        break;
      }
    for (int j = nlive; j > at; j--)
      live[j] = live[j - 1];
    live[at].off = off;
    live[at].size = iv[i].size;
    live[at].last = iv[i].last;
    nlive++;
    offsets[i] = off;
  }
}

ri_status ri__plan_place(ri__plan_block *blocks, int count, int64_t *offsets, int64_t *total, ri__err *err) {
  *total = 0;
  if (count <= 0) return RI_OK;
  block *live = ri__malloc((size_t)count * sizeof *live);
  if (!live) return RI__OOM(err);
  qsort(blocks, (size_t)count, sizeof *blocks, cmp_interval);
  place(blocks, count, live, offsets);
  for (int i = 0; i < count; i++)
    if (offsets[i] + blocks[i].size > *total) *total = offsets[i] + blocks[i].size;
  ri__free(live);
  return RI_OK;
}

ri_status ri__pass_memory_plan(ri__graph *g, int max_batch, ri__err *err) {
  if (max_batch < 1) return ri__err_set(err, RI_ERR_INVALID_ARG, "memory plan: max batch %d < 1", max_batch);
  for (int v = 0; v < g->n_values; v++) {
    g->values[v].mem_offset = -1;
    g->values[v].mem_size = 0;
  }
  size_t n = (size_t)(g->n_values ? g->n_values : 1);
  ri__tensor *vals = ri__calloc(n, sizeof *vals);
  interval *iv = ri__malloc(n * sizeof *iv);
  block *live = ri__malloc(n * sizeof *live);
  int64_t *offsets = ri__malloc(n * sizeof *offsets);
  int count = 0;
  /* Sizes come from the resolution the runtime does (n->host only), which also proves it works. */
  ri_status s = vals && iv && live && offsets ? ri__shapes_resolve(g, max_batch, vals, err) : RI__OOM(err);
  if (s == RI_OK) s = collect(g, vals, iv, &count, err);
  if (s == RI_OK) s = check_monotone(g, max_batch, vals, iv, count, err);
  if (s == RI_OK) {
    qsort(iv, (size_t)count, sizeof *iv, cmp_interval);
    place(iv, count, live, offsets);
    for (int i = 0; i < count; i++) {
      g->values[iv[i].key].mem_offset = offsets[i];
      g->values[iv[i].key].mem_size = iv[i].size;
    }
  }
  if (vals) ri__shapes_free(g, vals);
  ri__free(vals);
  ri__free(iv);
  ri__free(live);
  ri__free(offsets);
  return s;
}

int64_t ri__memory_plan_size(const ri__graph *g) {
  int64_t end = 0;
  for (int v = 0; v < g->n_values; v++) {
    const ri__value *val = &g->values[v];
    if (val->mem_offset >= 0 && val->mem_offset + val->mem_size > end) end = val->mem_offset + val->mem_size;
  }
  return end;
}
