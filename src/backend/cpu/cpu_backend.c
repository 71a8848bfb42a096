/* CPU backend: runs the graph node by node in topological order on the host. Each node gets a kernel at
 * prepare time: a fast kernel when one is registered for the node (see cpu_fast.h), else the reference
 * kernel. Activations live in one 64-byte aligned arena per context, laid out by the memory plan.
 *
 * Environment, read at prepare time:
 *  - RI_CPU_FAST=0 disables the fast path: every node runs its reference kernel (the oracle in tests);
 *  - RI_CPU_FAST_QDQ=1 lets the fast path take Q/DQ models too (see has_qdq);
 *  - RI_PROFILE=1 times every node of every run of each context and prints a per-node and per-kernel
 *    table to stderr when the context is destroyed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "backend/backend.h"
#include "backend/cpu/cpu_fast.h"
#include "backend/cpu/kernel.h"
#include "core/alloc.h"
#include "graph/op.h"

typedef struct {
  const ri__graph *g;
  ri__backend_cfg cfg;
  ri__kernel_fn *kernels; /* per node */
  const char **impl;      /* per node: implementation name */
  void *fast;             /* fast-path state (cpu_fast.h), may be NULL */
  size_t scratch_size;
  int profile; /* RI_PROFILE=1 */
} cpu_state;

typedef struct {
  cpu_state *st;
  ri__pool *pool;
  void *arena;
  void *scratch;
  void *fast_ctx;
  ri__tensor *in_buf, *out_buf; /* per-node argument arrays, sized for the widest node */
  int max_io;
  double *prof_s; /* RI_PROFILE: seconds spent in each node over all runs, or NULL */
  long prof_runs;
} cpu_ctx;

static int env_is(const char *name, const char *value) {
  const char *v = getenv(name);
  return v && strcmp(v, value) == 0;
}

/* A model with QuantizeLinear/DequantizeLinear reproduces onnxruntime's arithmetic on the reference kernels
 * (integer QLinear nodes, float Q/DQ convs summed in its order: docs/decisions.md, "Integer Q/DQ"), and any
 * change of float rounding flips quantization ties that the following requantizations amplify: on the ST
 * SSD detector the XNNPACK path moved AP@0.5 by 0.014 to 0.022 from onnxruntime's. Such models therefore
 * run on the reference kernels unless RI_CPU_FAST_QDQ=1. */
static int has_qdq(const ri__graph *g) {
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == RI__OP_QuantizeLinear || g->nodes[i].op == RI__OP_DequantizeLinear) return 1;
  return 0;
}

/* Prints the RI_PROFILE table: every node's mean time per run, then the totals per op and implementation. */
static void profile_print(const cpu_ctx *c) {
  const ri__graph *g = c->st->g;
  if (!c->prof_s || c->prof_runs == 0) return;
  double total = 0;
  for (int i = 0; i < g->n_nodes; i++)
    total += c->prof_s[i];
  const double runs = (double)c->prof_runs;
  fprintf(stderr, "RI_PROFILE: %ld runs, %.3f ms per run in nodes\n", c->prof_runs, 1e3 * total / runs);
  fprintf(stderr, "%-6s %10s %6s %-18s %-20s %s\n", "node", "ms/run", "%", "op", "impl", "name");
  for (int i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i].host) continue;
    fprintf(stderr, "%-6d %10.4f %6.2f %-18s %-20s %s\n", i, 1e3 * c->prof_s[i] / runs,
            total > 0 ? 100.0 * c->prof_s[i] / total : 0.0, ri__op_name(g->nodes[i].op), c->st->impl[i],
            g->nodes[i].name ? g->nodes[i].name : "?");
  }
  fprintf(stderr, "RI_PROFILE totals by op / impl:\n");
  for (int i = 0; i < g->n_nodes; i++) {
    int seen = 0;
    for (int j = 0; j < i && !seen; j++)
      seen = g->nodes[j].op == g->nodes[i].op && strcmp(c->st->impl[j], c->st->impl[i]) == 0;
    if (seen) continue;
    double t = 0;
    int count = 0;
    for (int j = i; j < g->n_nodes; j++)
      if (g->nodes[j].op == g->nodes[i].op && strcmp(c->st->impl[j], c->st->impl[i]) == 0) {
        t += c->prof_s[j];
        count++;
      }
    fprintf(stderr, "  %-18s %-20s %5d nodes %10.4f ms/run %6.2f%%\n", ri__op_name(g->nodes[i].op),
            c->st->impl[i], count, 1e3 * t / runs, total > 0 ? 100.0 * t / total : 0.0);
  }
}

static int resolve_threads(int threads) {
  if (threads > 0) return threads;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

static void cpu_release(void *p) {
  cpu_state *st = p;
  if (!st) return;
  ri__cpu_fast_release(st->fast);
  ri__free(st->kernels);
  ri__free(st->impl);
  ri__free(st);
}

static ri_status cpu_prepare(const ri__graph *g, const ri__backend_cfg *cfg, void **out, ri__err *err) {
  cpu_state *st = ri__calloc(1, sizeof *st);
  if (!st) return RI__OOM(err);
  st->g = g;
  st->cfg = *cfg;
  st->kernels = ri__calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *st->kernels);
  st->impl = ri__calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *st->impl);
  if (!st->kernels || !st->impl) {
    cpu_release(st);
    return RI__OOM(err);
  }
  for (int i = 0; i < g->n_nodes; i++) {
    st->kernels[i] = ri__ref_kernel(g->nodes[i].op);
    st->impl[i] = "ref";
  }
  st->profile = env_is("RI_PROFILE", "1");
  ri_status s = env_is("RI_CPU_FAST", "0") || (has_qdq(g) && !env_is("RI_CPU_FAST_QDQ", "1"))
                    ? RI_OK
                    : ri__cpu_fast_prepare(g, cfg, st->kernels, st->impl, &st->fast, err);
  if (s != RI_OK) {
    cpu_release(st);
    return s;
  }
  st->scratch_size = 0;
  *out = st;
  return RI_OK;
}

static void cpu_ctx_destroy(void *p) {
  cpu_ctx *c = p;
  if (!c) return;
  profile_print(c);
  ri__free(c->prof_s);
  ri__cpu_fast_ctx_destroy(c->fast_ctx);
  ri__pool_destroy(c->pool);
  ri__aligned_free(c->arena);
  ri__aligned_free(c->scratch);
  ri__free(c->in_buf);
  ri__free(c->out_buf);
  ri__free(c);
}

static ri_status cpu_ctx_create(void *state, void **out, ri__err *err) {
  cpu_state *st = state;
  const ri__graph *g = st->g;
  cpu_ctx *c = ri__calloc(1, sizeof *c);
  if (!c) return RI__OOM(err);
  c->st = st;
  int threads = resolve_threads(st->cfg.threads);
  c->pool = ri__pool_create(threads);
  int max_io = 1;
  for (int i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i].n_inputs > max_io) max_io = g->nodes[i].n_inputs;
    if (g->nodes[i].n_outputs > max_io) max_io = g->nodes[i].n_outputs;
  }
  c->max_io = max_io;
  c->in_buf = ri__calloc((size_t)max_io, sizeof(ri__tensor));
  c->out_buf = ri__calloc((size_t)max_io, sizeof(ri__tensor));
  c->arena = ri__aligned_alloc((size_t)(st->cfg.arena_size > 0 ? st->cfg.arena_size : 64));
  if (!c->pool || !c->in_buf || !c->out_buf || !c->arena) {
    cpu_ctx_destroy(c);
    return ri__err_set(err, RI_ERR_NO_MEMORY,
                       "cannot allocate a CPU context (arena of %lld bytes, %d threads)",
                       (long long)st->cfg.arena_size, threads);
  }
  if (st->profile) {
    c->prof_s = ri__calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *c->prof_s);
    if (!c->prof_s) {
      cpu_ctx_destroy(c);
      return RI__OOM(err);
    }
  }
  if (st->scratch_size) {
    c->scratch = ri__aligned_alloc(st->scratch_size);
    if (!c->scratch) {
      cpu_ctx_destroy(c);
      return RI__OOM(err);
    }
  }
  ri_status s = ri__cpu_fast_ctx_create(st->fast, c->pool, &c->fast_ctx, err);
  if (s != RI_OK) {
    cpu_ctx_destroy(c);
    return s;
  }
  *out = c;
  return RI_OK;
}

/* Where value v lives during a run. */
static void *value_ptr(cpu_ctx *c, const ri__tensor *vals, int v) {
  const ri__value *val = &c->st->g->values[v];
  if (val->kind == RI__VAL_CONST || val->host) return vals[v].data;
  if (val->mem_offset < 0) return NULL;
  return (char *)c->arena + val->mem_offset;
}

static ri_status cpu_run(void *p, const ri__tensor *vals, int batch, const void *const *in, void *const *out,
                         ri__err *err) {
  cpu_ctx *c = p;
  const ri__graph *g = c->st->g;
  for (int i = 0; i < g->n_inputs; i++) {
    int v = g->inputs[i];
    size_t nb;
    RI__TRY(ri__tensor_nbytes(vals[v].dtype, &vals[v].shape, &nb, err));
    void *dst = value_ptr(c, vals, v);
    if (!dst)
      return ri__err_set(err, RI_ERR_INTERNAL, "graph input '%s' has no planned memory", g->values[v].name);
    memcpy(dst, in[i], nb);
  }
  ri__exec x = {.pool = c->pool,
                .err = err,
                .scratch = c->scratch,
                .scratch_size = c->st->scratch_size,
                .fast_state = c->st->fast,
                .fast_ctx = c->fast_ctx,
                .vals = vals,
                .arena = c->arena,
                .batch = batch};
  for (int ni = 0; ni < g->n_nodes; ni++) {
    const ri__node *n = &g->nodes[ni];
    if (n->host) continue; /* evaluated during shape resolution */
    for (int k = 0; k < n->n_inputs; k++) {
      int v = n->inputs[k];
      if (v < 0) {
        memset(&c->in_buf[k], 0, sizeof(ri__tensor));
        continue;
      }
      c->in_buf[k] = vals[v];
      c->in_buf[k].data = value_ptr(c, vals, v);
    }
    for (int k = 0; k < n->n_outputs; k++) {
      int v = n->outputs[k];
      if (v < 0) {
        memset(&c->out_buf[k], 0, sizeof(ri__tensor));
        continue;
      }
      c->out_buf[k] = vals[v];
      c->out_buf[k].data = value_ptr(c, vals, v);
    }
    x.node_index = ni;
    double t0 = c->prof_s ? (ri__clock_ms() / 1e3) : 0;
    ri_status s = c->st->kernels[ni](n, c->in_buf, c->out_buf, &x);
    if (c->prof_s) c->prof_s[ni] += (ri__clock_ms() / 1e3) - t0;
    if (s != RI_OK) {
      if (!err || err->msg[0] == 0) ri__err_set(err, s, "kernel failed");
      return ri__err_prefix(err, "node '%s' (%s, %s, batch %d)", n->name, ri__op_name(n->op), c->st->impl[ni],
                            batch);
    }
  }
  for (int i = 0; i < g->n_outputs; i++) {
    int v = g->outputs[i];
    size_t nb;
    RI__TRY(ri__tensor_nbytes(vals[v].dtype, &vals[v].shape, &nb, err));
    const void *src = value_ptr(c, vals, v);
    if (!src) return ri__err_set(err, RI_ERR_INTERNAL, "graph output '%s' has no memory", g->values[v].name);
    memcpy(out[i], src, nb);
  }
  c->prof_runs++;
  return RI_OK;
}

static const char *cpu_node_impl(void *state, int node) {
  cpu_state *st = state;
  return node >= 0 && node < st->g->n_nodes ? st->impl[node] : NULL;
}

const ri__backend_ops ri__cpu_backend = {
    .name = "cpu",
    .prepare = cpu_prepare,
    .release = cpu_release,
    .ctx_create = cpu_ctx_create,
    .ctx_destroy = cpu_ctx_destroy,
    .run = cpu_run,
    .node_impl = cpu_node_impl,
};
