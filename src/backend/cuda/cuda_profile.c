/* Per-node device profiling of a CUDA context (ri__cuda_context_set_profile in cuda_api.h). While on, runs
 * are eager (no CUDA graph) and an event is recorded before every device node, before the input
 * conversions and after the output conversions; after each run the gaps between consecutive events are
 * added to per-node totals. The report groups the totals by op and implementation and lists the slowest
 * nodes. Events cost about a microsecond each, so small kernels look a little slower than in a graph. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_api.h"
#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "engine/engine_impl.h"
#include "graph/op.h"

typedef struct cu_profile {
  int n;              /* graph nodes */
  cudaEvent_t *ev;    /* n + 3: node k at k, after the nodes at n, start at n + 1, end at n + 2 */
  unsigned char *rec; /* recorded in the current run */
  double *ms;         /* per node; [n] input conversions, [n + 1] output conversions */
  int runs;
  int batch;
} cu_profile;

static int slot(const cu_profile *p, int k) { return k == -1 ? p->n + 1 : k == -2 ? p->n + 2 : k; }

void ri__cu_profile_destroy(cu_ctx *c) {
  cu_profile *p = c->prof;
  if (!p) return;
  for (int i = 0; i < p->n + 3; i++)
    if (p->ev && p->ev[i]) cudaEventDestroy(p->ev[i]);
  ri__free(p->ev);
  ri__free(p->rec);
  ri__free(p->ms);
  ri__free(p);
  c->prof = NULL;
}

ri_status ri__cu_profile_create(cu_ctx *c, ri__err *err) {
  const cu_state *st = c->st;
  const int ni = -1;
  if (c->prof) return RI_OK;
  cu_profile *p = ri__calloc(1, sizeof *p);
  if (!p) return RI__OOM(err);
  c->prof = p;
  p->n = st->g->n_nodes;
  p->ev = ri__calloc((size_t)p->n + 3, sizeof *p->ev);
  p->rec = ri__calloc((size_t)p->n + 3, 1);
  p->ms = ri__calloc((size_t)p->n + 2, sizeof *p->ms);
  if (!p->ev || !p->rec || !p->ms) {
    ri__cu_profile_destroy(c);
    return RI__OOM(err);
  }
  for (int i = 0; i < p->n + 3; i++) {
    cudaError_t e = cudaEventCreate(&p->ev[i]);
    if (e != cudaSuccess) {
      ri__cu_profile_destroy(c);
      return ri__cu_fail_rt(err, e, "cudaEventCreate", st, ni, "creating profiling events");
    }
  }
  return RI_OK;
}

ri_status ri__cu_profile_mark(cu_ctx *c, int k, ri__err *err) {
  cu_profile *p = c->prof;
  const cu_state *st = c->st;
  const int ni = -1;
  if (!p || c->capturing) return RI_OK;
  int s = slot(p, k);
  if (k == -1) memset(p->rec, 0, (size_t)p->n + 3);
  CU_RT(cudaEventRecord(p->ev[s], c->stream));
  p->rec[s] = 1;
  return RI_OK;
}

static ri_status gap(cu_ctx *c, int a, int b, double *ms, ri__err *err) {
  const cu_state *st = c->st;
  const int ni = -1;
  float t = 0.f;
  CU_RT(cudaEventElapsedTime(&t, c->prof->ev[a], c->prof->ev[b]));
  *ms += t;
  return RI_OK;
}

ri_status ri__cu_profile_collect(cu_ctx *c, ri__err *err) {
  cu_profile *p = c->prof;
  if (!p || !p->rec[p->n + 1] || !p->rec[p->n + 2] || !p->rec[p->n]) return RI_OK;
  int prev = p->n + 1, prev_node = -1; /* -1: the input conversions */
  for (int k = 0; k <= p->n; k++) {
    if (!p->rec[k]) continue;
    RI__TRY(gap(c, prev, k, prev_node >= 0 ? &p->ms[prev_node] : &p->ms[p->n], err));
    prev = k;
    prev_node = k < p->n ? k : -1;
  }
  RI__TRY(gap(c, p->n, p->n + 2, &p->ms[p->n + 1], err));
  p->runs++;
  return RI_OK;
}

static cu_ctx *ctx_of(ri_context_t *ctx) {
  if (!ctx || !ctx->e || ctx->e->be != &ri__cuda_backend) return NULL;
  return ctx->be_ctx;
}

ri_status ri__cuda_context_set_profile(ri_context_t *ctx, int on) {
  cu_ctx *c = ctx_of(ctx);
  if (!c) return RI_ERR_INVALID_ARG;
  if (!on) {
    ri__cu_profile_destroy(c);
    return RI_OK;
  }
  ri_status s = ri__cu_profile_create(c, &ctx->err);
  return s;
}

typedef struct {
  const char *op, *impl;
  double ms;
  int count;
} group;

static int cmp_group(const void *a, const void *b) {
  double x = ((const group *)a)->ms, y = ((const group *)b)->ms;
  return x < y ? 1 : x > y ? -1 : 0;
}

static const double *g_sort_ms;
static int cmp_node(const void *a, const void *b) {
  double x = g_sort_ms[*(const int *)a], y = g_sort_ms[*(const int *)b];
  return x < y ? 1 : x > y ? -1 : 0;
}

ri_status ri__cuda_context_profile_report(ri_context_t *ctx, FILE *f, int top) {
  cu_ctx *c = ctx_of(ctx);
  if (!c) return RI_ERR_INVALID_ARG;
  cu_profile *p = c->prof;
  if (p && !f) {
    memset(p->ms, 0, ((size_t)p->n + 2) * sizeof *p->ms);
    p->runs = 0;
    return RI_OK;
  }
  if (!f) return RI_OK;
  if (!p || p->runs == 0) {
    fprintf(f, "# profile: no profiled runs\n");
    return RI_OK;
  }
  const cu_state *st = c->st;
  const ri__graph *g = st->g;
  int n = p->n;
  double total = 0.0;
  for (int i = 0; i < n + 2; i++)
    total += p->ms[i];
  group *gr = ri__calloc((size_t)n + 2, sizeof *gr);
  int *order = ri__calloc((size_t)n + 1, sizeof *order);
  if (!gr || !order) {
    ri__free(gr);
    ri__free(order);
    return RI_ERR_NO_MEMORY;
  }
  int ng = 0, no = 0;
  for (int i = 0; i < n; i++) {
    if (g->nodes[i].host) continue;
    order[no++] = i;
    const char *op = ri__op_name(g->nodes[i].op), *impl = st->nodes[i].name ? st->nodes[i].name : "?";
    int k = 0;
    while (k < ng && (strcmp(gr[k].op, op) != 0 || strcmp(gr[k].impl, impl) != 0))
      k++;
    if (k == ng) gr[ng++] = (group){op, impl, 0.0, 0};
    gr[k].ms += p->ms[i];
    gr[k].count++;
  }
  gr[ng++] = (group){"<input conversion>", "copy", p->ms[n], 1};
  gr[ng++] = (group){"<output conversion>", "copy", p->ms[n + 1], 1};
  qsort(gr, (size_t)ng, sizeof *gr, cmp_group);
  fprintf(f, "# profile: %d runs, %.3f ms per run (eager, events between nodes)\n", p->runs, total / p->runs);
  fprintf(f, "# %-24s %-22s %6s %10s %6s\n", "op", "impl", "nodes", "ms/run", "%");
  for (int k = 0; k < ng; k++)
    fprintf(f, "  %-24s %-22s %6d %10.4f %5.1f%%\n", gr[k].op, gr[k].impl, gr[k].count, gr[k].ms / p->runs,
            total > 0 ? 100.0 * gr[k].ms / total : 0.0);
  g_sort_ms = p->ms;
  qsort(order, (size_t)no, sizeof *order, cmp_node);
  fprintf(f, "# slowest nodes\n");
  for (int k = 0; k < no && k < top; k++) {
    int i = order[k];
    const ri__node *nd = &g->nodes[i];
    char shape[160] = "";
    if (nd->n_outputs > 0 && nd->outputs[0] >= 0)
      ri__shape_str(&g->values[nd->outputs[0]].shape, shape, sizeof shape);
    fprintf(f, "  %10.4f ms  %-18s %-20s %s -> %s (max-batch shape)\n", p->ms[i] / p->runs,
            ri__op_name(nd->op), st->nodes[i].name ? st->nodes[i].name : "?", nd->name ? nd->name : "?",
            shape);
  }
  ri__free(gr);
  ri__free(order);
  memset(p->ms, 0, ((size_t)n + 2) * sizeof *p->ms);
  p->runs = 0;
  return RI_OK;
}
