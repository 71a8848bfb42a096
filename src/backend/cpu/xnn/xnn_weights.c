/* Shared weight operators of the XNNPACK path (see "Shared weights" in xnn_internal.h): which nodes get one,
 * making them at prepare, and freeing the float constants nothing reads any more.
 *
 * Ownership: the xnn_state owns the shared operators and their mutexes; contexts and lanes borrow them for
 * as long as the state lives (the engine outlives its contexts). A freed constant keeps its shape and byte
 * count in the graph and is marked released; the engine refuses to save a graph with released constants. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/xnn/xnn_internal.h"
#include "core/alloc.h"

static int64_t share_threshold(void) {
  const char *e = getenv("RI_XNN_SHARE_BYTES");
  if (!e || !*e) return RI__XNN_SHARE_BYTES;
  char *end;
  long long v = strtoll(e, &end, 10);
  return (*end || v < 0) ? RI__XNN_SHARE_BYTES : (int64_t)v;
}

ri_status ri__xnn_weights_init(xnn_state *st, int release, ri__err *err) {
  const size_t nn = (size_t)(st->g->n_nodes ? st->g->n_nodes : 1);
  st->wop = ri__calloc(nn, sizeof *st->wop);
  st->wmu = ri__calloc(nn, sizeof *st->wmu);
  if (!st->wop || !st->wmu) return RI__OOM(err);
  for (size_t i = 0; i < nn; i++) {
    if (pthread_mutex_init(&st->wmu[i], NULL) != 0)
      return ri__err_set(err, RI_ERR_NO_MEMORY, "cannot create the mutex of XNNPACK operator %zu", i);
    st->wmu_count++;
  }
  st->share_bytes = share_threshold();
  st->release = release;
  return RI_OK;
}

void ri__xnn_weights_free(xnn_state *st) {
  if (st->wop)
    for (int i = 0; i < st->g->n_nodes; i++)
      if (st->wop[i]) xnn_delete_operator(st->wop[i]);
  for (int i = 0; i < st->wmu_count; i++)
    pthread_mutex_destroy(&st->wmu[i]);
  ri__free(st->wop);
  ri__free(st->wmu);
  st->wop = NULL;
  st->wmu = NULL;
  st->wmu_count = 0;
}

/* Bytes of node ni's weight and bias constants (inputs 1 and 2 of a Conv or fully connected node). */
static int64_t weight_bytes(const ri__graph *g, const ri__node *n) {
  int64_t b = 0;
  for (int k = 1; k <= 2 && k < n->n_inputs; k++)
    if (n->inputs[k] >= 0) b += (int64_t)g->values[n->inputs[k]].nbytes;
  return b;
}

int ri__xnn_weights_shared(const xnn_state *st, int ni) {
  const xk_kind kind = st->nodes[ni].kind;
  if (kind != XK_CONV && kind != XK_FC) return 0;
  return weight_bytes(st->g, &st->g->nodes[ni]) >= st->share_bytes;
}

/* Whether every live node that reads value v has its shared operator and reads v as its weights or bias. */
static int only_packed_readers(const xnn_state *st, int v) {
  const ri__graph *g = st->g;
  if (g->values[v].is_output) return 0;
  for (int ni = 0; ni < g->n_nodes; ni++) {
    const ri__node *n = &g->nodes[ni];
    if (n->dead) continue;
    for (int k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] == v && (!st->wop[ni] || (k != 1 && k != 2))) return 0;
  }
  return 1;
}

/* Frees the float data of node ni's weight and bias constants that nothing but shared operators reads. */
static void release_inputs(xnn_state *st, int ni) {
  const ri__node *n = &st->g->nodes[ni];
  for (int k = 1; k <= 2 && k < n->n_inputs; k++) {
    const int v = n->inputs[k];
    if (v < 0) continue;
    ri__value *val = &st->g->values[v];
    if (val->kind != RI__VAL_CONST || !val->data || !only_packed_readers(st, v)) continue;
    ri__free(val->data);
    val->data = NULL;
    val->released = 1;
  }
}

ri_status ri__xnn_weights_create(xnn_state *st, unsigned char *deny, int *refused, ri__err *err) {
  *refused = 0;
  for (int ni = 0; ni < st->g->n_nodes; ni++) {
    if (st->wop[ni] || !ri__xnn_weights_shared(st, ni)) continue;
    ri_status s = ri__xnn_op_create_main(st, ni, &st->wop[ni], err);
    if (s == RI_ERR_INTERNAL) {
      /* XNNPACK refused the parameters: the node goes back to its reference kernel. */
      ri__err_clear(err);
      deny[ni] = 1;
      *refused = 1;
      continue;
    }
    if (s != RI_OK) return s;
    if (st->release) release_inputs(st, ni);
  }
  return RI_OK;
}

ri_status ri__xnn_weights_check(const xnn_state *st, ri__err *err) {
  for (int ni = 0; ni < st->g->n_nodes; ni++)
    if (st->wop[ni] && !ri__xnn_weights_shared(st, ni))
      return ri__err_set(err, RI_ERR_INTERNAL,
                         "node '%s': the XNNPACK plan dropped a node whose weights it had already packed",
                         st->g->nodes[ni].name);
  return RI_OK;
}
