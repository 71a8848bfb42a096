/* The CPU fast-path hook (cpu_fast.h) on XNNPACK: planning at prepare, one set of operators, one
 * pthreadpool and one shadow buffer per context, and the kernel that runs a planned node.
 *
 * Prepare proves the plan by creating a first context: a node whose operator XNNPACK refuses is denied and
 * the plan is made again without it, so refusals fall back to the reference kernels instead of failing the
 * build. That context is kept and handed to the first ri__cpu_fast_ctx_create. */
#include <string.h>
#include <unistd.h>

#include "backend/cpu/cpu_fast.h"
#include "backend/cpu/xnn/xnn_internal.h"
#include "core/alloc.h"

static void ctx_free(xnn_ctx *c) {
  if (!c) return;
  const ri__graph *g = c->st->g;
  for (int i = 0; i < g->n_nodes; i++) {
    if (c->op && c->op[i]) xnn_delete_operator(c->op[i]);
    if (c->post && c->post[i]) xnn_delete_operator(c->post[i]);
  }
  if (c->tp) pthreadpool_destroy(c->tp);
  ri__free(c->op);
  ri__free(c->post);
  ri__aligned_free(c->shadow);
  ri__free(c);
}

/* A context with every planned node's operators. On an operator failure *bad is that node's index. */
static ri_status ctx_new(const xnn_state *st, xnn_ctx **out, int *bad, ri__err *err) {
  const ri__graph *g = st->g;
  *out = NULL;
  *bad = -1;
  xnn_ctx *c = ri__calloc(1, sizeof *c);
  if (!c) return RI__OOM(err);
  c->st = st;
  size_t nn = (size_t)(g->n_nodes ? g->n_nodes : 1);
  c->op = ri__calloc(nn, sizeof *c->op);
  c->post = ri__calloc(nn, sizeof *c->post);
  c->shadow = ri__aligned_alloc((size_t)(st->shadow_size > 0 ? st->shadow_size : 64));
  if (!c->op || !c->post || !c->shadow) {
    ctx_free(c);
    return ri__err_set(err, RI_ERR_NO_MEMORY, "cannot allocate an XNNPACK context (shadow buffer of %lld bytes)",
                       (long long)st->shadow_size);
  }
  if (st->threads > 1) {
    c->tp = pthreadpool_create((size_t)st->threads);
    if (!c->tp) {
      ctx_free(c);
      return ri__err_set(err, RI_ERR_NO_MEMORY, "cannot create an XNNPACK thread pool of %d threads", st->threads);
    }
  }
  for (int i = 0; i < g->n_nodes; i++) {
    if (st->nodes[i].kind == XK_NONE) continue;
    ri_status s = ri__xnn_ops_create(c, i, err);
    if (s != RI_OK) {
      *bad = i;
      ctx_free(c);
      return s;
    }
  }
  *out = c;
  return RI_OK;
}

static void state_free(xnn_state *st) {
  if (!st) return;
  ctx_free(atomic_exchange(&st->spare, NULL));
  ri__xnn_plan_clear(st);
  ri__free(st->nodes);
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
  atomic_init(&st->spare, NULL);
  for (;;) {
    st->nodes = ri__calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *st->nodes);
    st->vals = ri__calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *st->vals);
    if (!st->nodes || !st->vals) {
      s = RI__OOM(err);
      break;
    }
    s = ri__xnn_plan(st, deny, err);
    if (s != RI_OK || st->n_fast == 0) break;
    xnn_ctx *c;
    int bad;
    s = ctx_new(st, &c, &bad, err);
    if (s == RI_OK) {
      atomic_store(&st->spare, c);
      break;
    }
    if (s != RI_ERR_INTERNAL || bad < 0) break;
    /* XNNPACK refused this node's parameters: plan again with it on the reference kernel. */
    ri__err_clear(err);
    deny[bad] = 1;
    ri__xnn_plan_clear(st);
    ri__free(st->nodes);
    ri__free(st->vals);
    st->nodes = NULL;
    st->vals = NULL;
  }
  ri__free(deny);
  if (s != RI_OK || st->n_fast == 0) {
    state_free(st);
    return s;
  }
  for (int i = 0; i < g->n_nodes; i++) {
    if (st->nodes[i].kind == XK_NONE) continue;
    kernels[i] = ri__xnn_kernel;
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
    RI__TRY(ctx_new(st, &c, &bad, err));
  }
  *ctx = c;
  return RI_OK;
}

void ri__cpu_fast_ctx_destroy(void *ctx) { ctx_free(ctx); }

/* Where the NHWC data of value v is for this context. */
static float *nhwc_ptr(const xnn_ctx *c, int v, void *arena_ptr) {
  const xv_place *p = &c->st->vals[v];
  if (p->shadow_off >= 0) return (float *)((char *)c->shadow + p->shadow_off);
  return arena_ptr;
}

static ri_status shadow_check(const ri__node *n, const ri__graph *g, const xv_place *p, int v, const ri__tensor *t,
                              ri__err *err) {
  int64_t numel = ri__shape_numel(&t->shape);
  if (numel >= 0 && numel * (int64_t)sizeof(float) <= p->shadow_bytes) return RI_OK;
  char b[160];
  return ri__err_set(err, RI_ERR_SHAPE, "node '%s': value '%s' %s exceeds its XNNPACK layout buffer (%lld bytes)",
                     n->name, g->values[v].name ? g->values[v].name : "?", ri__shape_str(&t->shape, b, sizeof b),
                     (long long)p->shadow_bytes);
}

#define XNN_MAX_IN 3

ri_status ri__xnn_kernel(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const xnn_state *st = x->fast_state;
  xnn_ctx *c = x->fast_ctx;
  const int ni = x->node_index;
  if (!st || !c || ni < 0 || ni >= st->g->n_nodes)
    return ri__err_set(x->err, RI_ERR_INTERNAL, "node '%s': XNNPACK kernel called without its state", n->name);
  const ri__graph *g = st->g;
  const xk_node *k = &st->nodes[ni];
  const float *inp[XNN_MAX_IN] = {NULL, NULL, NULL};
  for (int j = 0; j < n->n_inputs && j < XNN_MAX_IN; j++) {
    int v = n->inputs[j];
    if (v < 0) continue;
    const xv_place *p = &st->vals[v];
    inp[j] = in[j].data;
    if (k->kind == XK_BINARY && j == k->const_in) {
      inp[j] = k->cdata;
      continue;
    }
    if (!k->in_nhwc || !(p->nhwc || p->to_nhwc_at >= 0)) continue;
    if (p->shadow_off >= 0) RI__TRY(shadow_check(n, g, p, v, &in[j], x->err));
    float *dst = nhwc_ptr(c, v, in[j].data);
    int first = 1;
    for (int i = 0; i < j; i++) first &= n->inputs[i] != v;
    if (p->to_nhwc_at == ni && first) {
      const ri__shape *s = &in[j].shape;
      ri__xnn_transpose(c->tp, in[j].data, dst, (size_t)s->dims[0], (size_t)s->dims[1],
                        (size_t)(s->dims[2] * s->dims[3]));
    }
    inp[j] = dst;
  }
  const int ov = n->outputs[0];
  const xv_place *op = &st->vals[ov];
  float *outp = out[0].data;
  if (op->nhwc) {
    if (op->shadow_off >= 0) RI__TRY(shadow_check(n, g, op, ov, &out[0], x->err));
    outp = nhwc_ptr(c, ov, out[0].data);
  }
  RI__TRY(ri__xnn_ops_run(c, ni, in, inp, &out[0], outp, x->err));
  if (op->to_nchw) {
    const ri__shape *s = &out[0].shape;
    ri__xnn_transpose(c->tp, outp, out[0].data, (size_t)s->dims[0], (size_t)(s->dims[2] * s->dims[3]),
                      (size_t)s->dims[1]);
  }
  return RI_OK;
}
