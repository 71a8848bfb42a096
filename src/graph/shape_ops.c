/* Shape-op elimination with the two-point batch analysis.
 *
 * Shape subgraphs (Shape → Gather → Unsqueeze → Concat → Reshape's shape input, Resize sizes...) compute
 * small integer lists from tensor shapes. They are resolved twice, at batch 1 and at a second batch size B
 * (max_batch, or 2 when max_batch is 1), evaluating on the host every node that can be (see
 * ri__shapes_resolve_discover). A value whose shape or host contents differ between the two resolutions is
 * batch dependent. A host-computable node all of whose outputs are batch independent is folded into
 * constants, with its batch-1 results; one with a batch-dependent output is marked n->host and its outputs
 * value->host, so ri__shapes_resolve recomputes it for every batch size at run time. With max_batch == 1
 * the engine only ever runs batch 1, so everything host-computable folds.
 *
 * Two points suffice because shape arithmetic in real models is affine in the batch size (N, N*k, -1 for
 * the rest); a shape expression equal at 1 and B but different elsewhere would be misclassified, and the
 * memory plan's check that sizes at batch 1 do not exceed those at max_batch catches the harmful cases.
 *
 * Identity nodes are removed first: consumers read the Identity's input instead. When the Identity feeds
 * a graph output, the output keeps its name: the producer of the input writes the output value directly,
 * unless the input is itself a graph input, a graph output, a constant, or a host value (then the Identity
 * stays as a copy). */
#include <string.h>

#include "core/alloc.h"
#include "graph/op.h"
#include "graph/passes.h"
#include "graph/shape_infer.h"

static int is_graph_output(const ri__graph *g, int v) {
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i] == v) return 1;
  return 0;
}

static void remove_identities(ri__graph *g) {
  for (int ni = 0; ni < g->n_nodes; ni++) {
    ri__node *n = &g->nodes[ni];
    if (n->dead || n->op != RI__OP_Identity || n->n_inputs < 1 || n->n_outputs < 1) continue;
    int a = n->inputs[0], b = n->outputs[0];
    if (a < 0 || b < 0 || a == b) continue;
    if (!is_graph_output(g, b)) {
      ri__pass_replace_uses(g, b, a);
      n->dead = 1;
      continue;
    }
    const ri__value *va = &g->values[a];
    int p = va->producer;
    if (va->kind != RI__VAL_ACTIVATION || p < 0 || g->nodes[p].dead || g->nodes[p].host ||
        is_graph_output(g, a))
      continue;
    ri__node *pn = &g->nodes[p];
    for (int k = 0; k < pn->n_outputs; k++)
      if (pn->outputs[k] == a) pn->outputs[k] = b;
    ri__pass_replace_uses(g, a, b);
    n->dead = 1;
    g->values[b].producer = p;
    g->values[a].producer = -1;
  }
}

static int tensors_differ(const ri__tensor *x, const ri__tensor *y) {
  if (x->dtype != y->dtype || !ri__shape_equal(&x->shape, &y->shape)) return 1;
  if (!x->data != !y->data) return 1;
  if (!x->data) return 0;
  size_t nb = 0;
  if (ri__tensor_nbytes(x->dtype, &x->shape, &nb, NULL) != RI_OK) return 1;
  return nb && memcmp(x->data, y->data, nb) != 0;
}

/* Host-computable nodes in the final analysis: evaluated at both batch sizes, with every present input a
 * constant or the output of another host-computable node (a Shape's input may be anything). */
static void host_computable(const ri__graph *g, const unsigned char *ev1, const unsigned char *ev2,
                            unsigned char *final) {
  for (int ni = 0; ni < g->n_nodes; ni++) {
    const ri__node *n = &g->nodes[ni];
    final[ni] = !n->dead && ev1[ni] && (!ev2 || ev2[ni]);
    if (!final[ni] || n->op == RI__OP_Shape) continue;
    for (int k = 0; k < n->n_inputs && final[ni]; k++) {
      int v = n->inputs[k];
      if (v < 0 || g->values[v].kind == RI__VAL_CONST) continue;
      int p = g->values[v].producer;
      if (p < 0 || !final[p]) final[ni] = 0;
    }
  }
}

static ri_status analyse(ri__graph *g, int max_batch, ri__tensor *vals1, ri__tensor *vals2,
                         unsigned char *ev1, unsigned char *ev2, unsigned char *final, ri__err *err) {
  RI__TRY(ri__shapes_resolve_discover(g, 1, vals1, ev1, err));
  int b2 = max_batch > 1 ? max_batch : 2;
  int have2 = 1;
  if (max_batch > 1) {
    ri_status s = ri__shapes_resolve_discover(g, b2, vals2, ev2, err);
    if (s != RI_OK) return ri__err_prefix(err, "the model does not resolve at max batch %d", max_batch);
  } else {
    /* Only batch 1 will run; batch 2 just informs batch_dependent, and may legitimately fail (a model
     * with a hard-coded batch of 1 in a Reshape). */
    ri__err tmp;
    ri__err_clear(&tmp);
    have2 = ri__shapes_resolve_discover(g, b2, vals2, ev2, &tmp) == RI_OK;
  }
  for (int i = 0; i < g->n_values; i++)
    g->values[i].batch_dependent =
        have2 && g->values[i].kind != RI__VAL_CONST && tensors_differ(&vals1[i], &vals2[i]);
  host_computable(g, ev1, max_batch > 1 ? ev2 : NULL, final);
  for (int ni = 0; ni < g->n_nodes; ni++) {
    ri__node *n = &g->nodes[ni];
    if (!final[ni]) continue;
    int dependent = 0;
    for (int k = 0; k < n->n_outputs; k++)
      if (n->outputs[k] >= 0 && g->values[n->outputs[k]].batch_dependent) dependent = 1;
    if (dependent && max_batch > 1) {
      n->host = 1;
      for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0) g->values[n->outputs[k]].host = 1;
      continue;
    }
    for (int k = 0; k < n->n_outputs; k++) {
      int v = n->outputs[k];
      if (v < 0) continue;
      size_t nb = 0;
      (void)ri__tensor_nbytes(vals1[v].dtype, &vals1[v].shape, &nb, NULL);
      ri__pass_make_const(g, v, vals1[v].dtype, &vals1[v].shape, vals1[v].data, nb);
      vals1[v].data = NULL;    /* now owned by the graph */
      ri__free(vals2[v].data); /* ri__shapes_free skips constants */
      vals2[v].data = NULL;
    }
    n->dead = 1;
  }
  return RI_OK;
}

ri_status ri__pass_shape_ops(ri__graph *g, int max_batch, ri__err *err) {
  if (max_batch < 1)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "shape analysis: max batch %d < 1", max_batch);
  remove_identities(g);
  RI__TRY(ri__graph_link(g, err));
  for (int ni = 0; ni < g->n_nodes; ni++)
    g->nodes[ni].host = 0;
  for (int i = 0; i < g->n_values; i++)
    g->values[i].host = 0;
  size_t nv = (size_t)(g->n_values ? g->n_values : 1), nn = (size_t)(g->n_nodes ? g->n_nodes : 1);
  ri__tensor *vals1 = ri__calloc(nv, sizeof *vals1);
  ri__tensor *vals2 = ri__calloc(nv, sizeof *vals2);
  unsigned char *ev1 = ri__calloc(nn, 1), *ev2 = ri__calloc(nn, 1), *final = ri__calloc(nn, 1);
  ri_status s = vals1 && vals2 && ev1 && ev2 && final ? RI_OK : RI__OOM(err);
  if (s == RI_OK) s = analyse(g, max_batch, vals1, vals2, ev1, ev2, final, err);
  if (vals1) ri__shapes_free(g, vals1);
  if (vals2) ri__shapes_free(g, vals2);
  ri__free(vals1);
  ri__free(vals2);
  ri__free(ev1);
  ri__free(ev2);
  ri__free(final);
  if (s != RI_OK) return s;
  return ri__graph_link(g, err);
}
