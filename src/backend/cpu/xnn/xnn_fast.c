/* The CPU fast-path hook (cpu_fast.h) on XNNPACK: planning at prepare, the shared weight operators of the
 * engine, one set of per-context operators, one pthreadpool and one staging/scratch buffer per context, and
 * the kernel that runs a segment.
 *
 * Prepare proves the plan by creating the shared weight operators and then a first context: a node whose
 * operator XNNPACK refuses is denied and the plan is made again without it, so refusals fall back to the
 * reference kernels instead of failing the build. Shared operators already made stay through the new plan
 * (a Conv or fully connected node is classified from its own inputs only, so it keeps its kind; only the
 * flag that lets the pool's workers sleep after a segment's last operator may then be out of date). That
 * context is kept and handed to the first ri__cpu_fast_ctx_create. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "backend/cpu/cpu_fast.h"
#include "backend/cpu/xnn/xnn_internal.h"
#include "core/alloc.h"

static void profile_print(const xnn_ctx *c);

static int profile_on(void) {
  const char *p = getenv("RI_PROFILE");
  return p && strcmp(p, "1") == 0;
}

void ri__xnn_ctx_free(xnn_ctx *c) {
  if (!c) return;
  const ri__graph *g = c->st->g;
  ri__xnn_lanes_free(c->lanes);
  profile_print(c);
  ri__free(c->prof_s);
  for (int i = 0; i < g->n_nodes; i++) {
    if (c->op && c->op[i]) xnn_delete_operator(c->op[i]);
    if (c->post && c->post[i]) xnn_delete_operator(c->post[i]);
  }
  if (c->pool) pthreadpool_destroy(c->pool);
  ri__free(c->seg_cost);
  ri__free(c->seg_runs);
  ri__free(c->op);
  ri__free(c->post);
  ri__aligned_free(c->buf);
  ri__free(c);
}

/* A context with every planned node's operators. On an operator failure *bad is that node's index. */
ri_status ri__xnn_ctx_new(const xnn_state *st, int threads, int profile, xnn_ctx **out, int *bad,
                          ri__err *err) {
  const ri__graph *g = st->g;
  *out = NULL;
  *bad = -1;
  xnn_ctx *c = ri__calloc(1, sizeof *c);
  if (!c) return RI__OOM(err);
  c->st = st;
  size_t nn = (size_t)(g->n_nodes ? g->n_nodes : 1);
  c->op = ri__calloc(nn, sizeof *c->op);
  c->post = ri__calloc(nn, sizeof *c->post);
  c->buf = ri__aligned_alloc((size_t)(st->buf_size > 0 ? st->buf_size : 64));
  if (profile) c->prof_s = ri__calloc(nn, sizeof *c->prof_s);
  size_t ns = (size_t)(st->n_segs ? st->n_segs : 1);
  c->seg_cost = ri__calloc(2 * ns, sizeof *c->seg_cost);
  c->seg_runs = ri__calloc(ns, sizeof *c->seg_runs);
  if (!c->op || !c->post || !c->buf || (profile && !c->prof_s) || !c->seg_cost || !c->seg_runs) {
    ri__xnn_ctx_free(c);
    return ri__err_set(err, RI_ERR_NO_MEMORY, "cannot allocate an XNNPACK context (buffer of %lld bytes)",
                       (long long)st->buf_size);
  }
  if (threads > 1) {
    c->pool = pthreadpool_create((size_t)threads);
    c->tp = c->pool;
    if (!c->pool) {
      ri__xnn_ctx_free(c);
      return ri__err_set(err, RI_ERR_NO_MEMORY, "cannot create an XNNPACK thread pool of %d threads",
                         threads);
    }
  }
  for (int i = 0; i < g->n_nodes; i++) {
    if (st->nodes[i].kind == XK_NONE) continue;
    ri_status s = ri__xnn_ops_create(c, i, err);
    if (s != RI_OK) {
      *bad = i;
      ri__xnn_ctx_free(c);
      return s;
    }
  }
  *out = c;
  return RI_OK;
}

static void state_free(xnn_state *st) {
  if (!st) return;
  ri__xnn_ctx_free(atomic_exchange(&st->spare, NULL));
  ri__xnn_weights_free(st);
  ri__xnn_plan_clear(st);
  ri__free(st->nodes);
  ri__free(st->node_seg);
  ri__free(st->vals);
  ri__free(st);
}

static int resolve_threads(int threads) {
  if (threads > 0) return threads;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

ri_status ri__cpu_fast_prepare(const ri__graph *g, const ri__backend_cfg *cfg, ri__kernel_fn *kernels,
                               const char **impl, void **state, ri__err *err) {
  *state = NULL;
  ri__err ierr;
  ri__err_clear(&ierr);
  /* A CPU XNNPACK cannot run on is not an error: every node keeps its reference kernel. */
  ri_status s = ri__xnn_init(&ierr);
  if (s == RI_ERR_UNSUPPORTED) return RI_OK;
  if (s != RI_OK) return ri__err_set(err, s, "%s", ierr.msg);
  xnn_state *st = ri__calloc(1, sizeof *st);
  unsigned char *deny = ri__calloc((size_t)(g->n_nodes ? g->n_nodes : 1), 1);
  if (!st || !deny) {
    ri__free(st);
    ri__free(deny);
    return RI__OOM(err);
  }
  st->g = g;
  st->threads = resolve_threads(cfg->threads);
  st->max_batch = cfg->max_batch > 0 ? cfg->max_batch : 1;
  atomic_init(&st->spare, NULL);
  s = ri__xnn_weights_init(st, cfg->release_weights, err);
  for (; s == RI_OK;) {
    st->nodes = ri__calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *st->nodes);
    st->node_seg = ri__calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *st->node_seg);
    st->vals = ri__calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *st->vals);
    if (!st->nodes || !st->node_seg || !st->vals) {
      s = RI__OOM(err);
      break;
    }
    s = ri__xnn_plan(st, deny, err);
    if (s == RI_OK) s = ri__xnn_weights_check(st, err);
    if (s != RI_OK || st->n_fast == 0) break;
    int refused = 0, bad = -1;
    s = ri__xnn_weights_create(st, deny, &refused, err);
    if (s != RI_OK) break;
    if (!refused) {
      xnn_ctx *c;
      s = ri__xnn_ctx_new(st, st->threads, profile_on(), &c, &bad, err);
      if (s == RI_OK) {
        atomic_store(&st->spare, c);
        break;
      }
      if (s != RI_ERR_INTERNAL || bad < 0) break;
      /* XNNPACK refused this node's parameters: plan again with it on the reference kernel. */
      ri__err_clear(err);
      s = RI_OK;
      deny[bad] = 1;
    }
    ri__xnn_plan_clear(st);
    ri__free(st->nodes);
    ri__free(st->node_seg);
    ri__free(st->vals);
    st->nodes = NULL;
    st->node_seg = NULL;
    st->vals = NULL;
  }
  ri__free(deny);
  if (s != RI_OK || st->n_fast == 0) {
    state_free(st);
    return s;
  }
  for (int i = 0; i < g->n_nodes; i++) {
    if (st->nodes[i].kind == XK_NONE) continue;
    kernels[i] = st->segs[st->node_seg[i]].first == i ? ri__xnn_segment_kernel : ri__xnn_nop_kernel;
    impl[i] = st->nodes[i].impl;
  }
  *state = st;
  return RI_OK;
}

void ri__cpu_fast_release(void *state) { state_free(state); }

ri_status ri__cpu_fast_ctx_create(void *state, ri__pool *pool, void **ctx, ri__err *err) {
  *ctx = NULL;
  xnn_state *st = state;
  if (!st) return RI_OK;
  xnn_ctx *c = atomic_exchange(&st->spare, NULL);
  if (!c) {
    int bad;
    RI__TRY(ri__xnn_ctx_new(st, st->threads, profile_on(), &c, &bad, err));
  }
  *ctx = c;
  return RI_OK;
}

void ri__cpu_fast_ctx_destroy(void *ctx) { ri__xnn_ctx_free(ctx); }

/* RI_PROFILE=1: mean time per run of every node run inside segments, and of each segment. */
static void profile_print(const xnn_ctx *c) {
  if (!c->prof_s || c->prof_runs == 0) return;
  const xnn_state *st = c->st;
  const ri__graph *g = st->g;
  const double runs = (double)c->prof_runs;
  fprintf(stderr, "RI_PROFILE (XNNPACK segments, %ld runs):\n", c->prof_runs);
  for (int si = 0; si < st->n_segs; si++) {
    const xseg *s = &st->segs[si];
    double t = 0;
    for (int ni = s->first; ni <= s->last; ni++)
      t += c->prof_s[ni];
    fprintf(stderr,
            "segment %d: nodes %d..%d, %s, chunk %d, %.4f ms/run (staging %lld B, scratch %lld B/unit)\n", si,
            s->first, s->last, s->sliced ? "batch-sliced" : "whole batch", s->chunk, 1e3 * t / runs,
            (long long)s->stage_bytes, (long long)s->scratch_unit);
    if (c->pool)
      fprintf(stderr, "  recent cost per batch unit: %.4f ms on the calling thread, %.4f ms with the pool\n",
              1e3 * c->seg_cost[2 * si], 1e3 * c->seg_cost[2 * si + 1]);
    for (int ni = s->first; ni <= s->last; ni++)
      if (!g->nodes[ni].host)
        fprintf(stderr, "  %-6d %10.4f %-18s %s\n", ni, 1e3 * c->prof_s[ni] / runs, st->nodes[ni].impl,
                g->nodes[ni].name ? g->nodes[ni].name : "?");
  }
}

/* Whether a segment run that splits operators across threads uses the pool. XNNPACK's pthreadpool makes the
 * threads meet once per operator, and waits for every worker at each meeting; when the cores are busy with
 * other processes a worker that is not running stalls every operator, and running on the calling thread
 * alone is several times faster. So each context keeps, per segment, a recent cost per batch unit of both
 * ways and takes the cheaper, trying the other way once every PROBE_EVERY runs (and in the first runs) to
 * notice when the machine's load changes. */
#define PROBE_EVERY 64

static int pick_pool(const xnn_ctx *c, int si) {
  if (!c->pool) return 0;
  const long r = c->seg_runs[si];
  if (r < 3) return r != 2; /* runs 0 (cold, not recorded) and 1 with the pool, run 2 without */
  const int better = c->seg_cost[2 * si + 1] <= c->seg_cost[2 * si];
  return r % PROBE_EVERY == PROBE_EVERY - 1 ? !better : better;
}

/* A probe's sample replaces the estimate it tests (which is at least PROBE_EVERY runs old); the way in use
 * follows its recent runs. */
static void record_cost(xnn_ctx *c, int si, int use_pool, double per_unit) {
  double *e = &c->seg_cost[2 * si + use_pool];
  const long r = c->seg_runs[si]++;
  if (r == 0) return;
  const int probe = r % PROBE_EVERY == PROBE_EVERY - 1;
  *e = (r < 3 || probe) ? per_unit : 0.75 * *e + 0.25 * per_unit;
}

ri_status ri__xnn_nop_kernel(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  return RI_OK;
}

/* One chunk's view of the run: units [u0, u0 + cu) of segment s. */
typedef struct {
  xnn_ctx *c;
  const xseg *s;
  const ri__exec *x;
  int u0, cu;
  char *stage, *scratch; /* scratch for this chunk size */
} chunk_view;

static char *arena_of(const chunk_view *cv, int v, int64_t unit_bytes) {
  return (char *)cv->x->arena + cv->c->st->g->values[v].mem_offset + (int64_t)cv->u0 * unit_bytes;
}

static const xseg_in *seg_input(const xseg *s, int v, int nhwc) {
  for (int i = 0; i < s->n_ins; i++)
    if (s->ins[i].v == v && s->ins[i].nhwc == nhwc) return &s->ins[i];
  return NULL;
}

/* Where input value v is for this chunk, in the layout the reader wants. NULL when the plan has no such
 * copy (a planner bug, reported by the caller). */
static float *input_ptr(const chunk_view *cv, int v, int nhwc) {
  const xv_place *p = &cv->c->st->vals[v];
  const int64_t cu = cv->cu;
  if (p->seg >= 0 && cv->c->st->node_seg[cv->s->first] == p->seg) {
    if (nhwc) {
      int64_t off = p->nhwc ? p->main_off : p->nhwc_off;
      return off >= 0 ? (float *)(cv->scratch + off * cu) : NULL;
    }
    if (!p->nhwc)
      return p->main_off >= 0 ? (float *)(cv->scratch + p->main_off * cu)
                              : (float *)arena_of(cv, v, p->unit_bytes);
    if (p->seg_output) return (float *)arena_of(cv, v, p->unit_bytes);
    return p->nchw_off >= 0 ? (float *)(cv->scratch + p->nchw_off * cu) : NULL;
  }
  const xseg_in *in = seg_input(cv->s, v, nhwc);
  if (!in) return NULL;
  if (in->staged) return (float *)(cv->stage + in->off + (int64_t)cv->u0 * in->unit_bytes);
  return (float *)arena_of(cv, v, in->unit_bytes);
}

/* A value computed at run time into the arena (not a constant, not a host value). */
static int is_run_value(const ri__graph *g, int v) {
  return g->values[v].kind != RI__VAL_CONST && !g->values[v].host;
}

/* Shape of value v for this chunk: the run's shape with the batch replaced by the chunk's units. */
static void chunk_tensor(const chunk_view *cv, int v, ri__tensor *t) {
  *t = cv->x->vals[v];
  if (cv->s->sliced && is_run_value(cv->c->st->g, v)) t->shape.dims[0] = cv->cu;
}
/* Most inputs of an accepted node (Concat's limit in the planner). */
#define XNN_MAX_IN 16

static ri_status plan_error(const ri__node *n, int v, const char *what, ri__err *err) {
  return ri__err_set(err, RI_ERR_INTERNAL, "node '%s': the XNNPACK plan has no %s of input value %d", n->name,
                     what, v);
}

/* Runs node ni for the chunk, then the layout conversions its output needs. */
static ri_status run_node(const chunk_view *cv, int ni, ri__err *err) {
  xnn_ctx *c = cv->c;
  const xnn_state *st = c->st;
  const ri__graph *g = st->g;
  const ri__node *n = &g->nodes[ni];
  const xk_node *k = &st->nodes[ni];
  ri__tensor tin[XNN_MAX_IN], tout;
  const float *inp[XNN_MAX_IN];
  memset(tin, 0, sizeof tin);
  memset(inp, 0, sizeof inp);
  for (int j = 0; j < n->n_inputs && j < XNN_MAX_IN; j++) {
    int v = n->inputs[j];
    if (v < 0) continue;
    chunk_tensor(cv, v, &tin[j]);
    if (k->kind == XK_BINARY && j == k->const_in) {
      inp[j] = k->cdata;
    } else if (!is_run_value(g, v)) {
      inp[j] = tin[j].data;
    } else {
      inp[j] = input_ptr(cv, v, k->in_nhwc && st->vals[v].sensitive);
      if (!inp[j]) return plan_error(n, v, "copy", err);
    }
  }
  const int ov = n->outputs[0];
  const xv_place *p = &st->vals[ov];
  chunk_tensor(cv, ov, &tout);
  const int64_t cu = cv->cu;
  float *outp =
      p->main_off >= 0 ? (float *)(cv->scratch + p->main_off * cu) : (float *)arena_of(cv, ov, p->unit_bytes);
  RI__TRY(ri__xnn_ops_run(c, ni, tin, inp, &tout, outp, err));
  const ri__shape *os = &tout.shape;
  const uint32_t fl = k->yield ? PTHREADPOOL_FLAG_YIELD_WORKERS : 0;
  if (p->nhwc) {
    const size_t b = (size_t)os->dims[0], ch = (size_t)os->dims[1], hw = (size_t)(os->dims[2] * os->dims[3]);
    if (p->seg_output)
      ri__xnn_transpose(c->tp, outp, (float *)arena_of(cv, ov, p->unit_bytes), b, hw, ch, fl);
    if (p->nchw_off >= 0)
      ri__xnn_transpose(c->tp, outp, (float *)(cv->scratch + p->nchw_off * cu), b, hw, ch, fl);
  } else if (p->nhwc_off >= 0) {
    const size_t b = (size_t)os->dims[0], ch = (size_t)os->dims[1], hw = (size_t)(os->dims[2] * os->dims[3]);
    ri__xnn_transpose(c->tp, outp, (float *)(cv->scratch + p->nhwc_off * cu), b, ch, hw, fl);
  }
  return RI_OK;
}

/* Checks that value v of this run fits the plan: sliced segments need the batch first and at most
 * unit_bytes per image; whole-batch segments at most unit_bytes in all. */
static ri_status check_value(const xseg *s, const ri__exec *x, const ri__graph *g, int v, int64_t unit_bytes,
                             ri__err *err) {
  const ri__tensor *t = &x->vals[v];
  int64_t bytes = ri__shape_numel(&t->shape) * (int64_t)sizeof(float);
  int ok = bytes >= 0;
  if (s->sliced)
    ok = ok && t->shape.rank >= 1 && t->shape.dims[0] == x->batch && bytes / x->batch <= unit_bytes;
  else
    ok = ok && bytes <= unit_bytes;
  if (ok) return RI_OK;
  char b[160];
  return ri__err_set(err, RI_ERR_SHAPE,
                     "value '%s' %s at batch %d does not fit the XNNPACK plan (%s, %lld bytes)",
                     g->values[v].name ? g->values[v].name : "?", ri__shape_str(&t->shape, b, sizeof b),
                     x->batch, s->sliced ? "batch first, per image" : "whole batch", (long long)unit_bytes);
}

static ri_status stage_inputs(xnn_ctx *c, const xseg *s, const ri__exec *x, char *stage, uint32_t flags) {
  const ri__graph *g = c->st->g;
  for (int i = 0; i < s->n_ins; i++) {
    const xseg_in *in = &s->ins[i];
    RI__TRY(check_value(s, x, g, in->v, in->unit_bytes, x->err));
    if (!in->staged) continue;
    const ri__tensor *t = &x->vals[in->v];
    const float *src = (const float *)((char *)x->arena + g->values[in->v].mem_offset);
    float *dst = (float *)(stage + in->off);
    if (in->nhwc)
      ri__xnn_transpose(c->tp, src, dst, (size_t)t->shape.dims[0], (size_t)t->shape.dims[1],
                        (size_t)(t->shape.dims[2] * t->shape.dims[3]), flags);
    else
      memcpy(dst, src, (size_t)ri__shape_numel(&t->shape) * sizeof(float));
  }
  return RI_OK;
}

ri_status ri__xnn_segment_kernel(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const xnn_state *st = x->fast_state;
  xnn_ctx *c = x->fast_ctx;
  const int ni0 = x->node_index;
  if (!st || !c || !x->vals || !x->arena || ni0 < 0 || ni0 >= st->g->n_nodes || st->node_seg[ni0] < 0)
    return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s': XNNPACK segment kernel called without its state",
                       n->name);
  const ri__graph *g = st->g;
  const int si = st->node_seg[ni0];
  const xseg *s = &st->segs[si];
  char *stage = c->buf;
  for (int ni = s->first; ni <= s->last; ni++)
    if (!g->nodes[ni].host)
      RI__TRY(check_value(s, x, g, g->nodes[ni].outputs[0], st->vals[g->nodes[ni].outputs[0]].unit_bytes,
                          x->err));
  const int units = s->sliced ? x->batch : 1, chunk = s->sliced ? s->chunk : 1;
  if (st->threads > 1 && units > chunk) {
    /* Several chunks and several threads: one chunk per thread at a time (lanes) instead of every
     * operator split across the threads. The staging runs on the pool, whose workers then sleep rather than
     * spin beside the lanes. */
    RI__TRY(stage_inputs(c, s, x, stage, PTHREADPOOL_FLAG_YIELD_WORKERS));
    RI__TRY(ri__xnn_lanes_run(c, s, x, stage, units, chunk, x->err));
  } else {
    /* Everything of this run, staging included, on the pool or on the calling thread alone: a pool worker
     * left spinning after one parallel step would compete with the calling thread for the cores. */
    const int use_pool = pick_pool(c, si);
    c->tp = use_pool ? c->pool : NULL;
    const double t0 = (ri__clock_ms() / 1e3);
    ri_status rs = stage_inputs(c, s, x, stage, 0);
    for (int u0 = 0; u0 < units && rs == RI_OK; u0 += chunk)
      rs = ri__xnn_run_chunk(c, s, x, stage, u0, units - u0 < chunk ? units - u0 : chunk, x->err);
    c->tp = c->pool;
    RI__TRY(rs);
    if (c->pool) record_cost(c, si, use_pool, ((ri__clock_ms() / 1e3) - t0) / units);
  }
  if (c->prof_s && si == 0) c->prof_runs++;
  return RI_OK;
}

ri_status ri__xnn_run_chunk(xnn_ctx *c, const xseg *s, const ri__exec *x, char *stage, int u0, int cu,
                            ri__err *err) {
  const ri__graph *g = c->st->g;
  chunk_view cv = {c, s, x, u0, cu, stage, (char *)c->buf + s->stage_bytes};
  for (int ni = s->first; ni <= s->last; ni++) {
    if (g->nodes[ni].host) continue;
    double t0 = c->prof_s ? (ri__clock_ms() / 1e3) : 0;
    RI__TRY(run_node(&cv, ni, err));
    if (c->prof_s) c->prof_s[ni] += (ri__clock_ms() / 1e3) - t0;
  }
  return RI_OK;
}
