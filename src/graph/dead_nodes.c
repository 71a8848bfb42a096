/* Dead node elimination: a node is live when one of its outputs is a graph output or an input of a live
 * node; every other node is marked dead, and the graph is compacted (dead nodes and values nothing refers
 * to any more are dropped, indices renumbered). Graph inputs stay even when unused: they are part of the
 * engine's interface. */
#include "core/alloc.h"
#include "graph/passes.h"

ri_status ri__pass_dead_nodes(ri__graph *g, ri__err *err) {
  unsigned char *needed = ri__calloc((size_t)(g->n_values ? g->n_values : 1), 1);
  if (!needed) return RI__OOM(err);
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i] >= 0 && g->outputs[i] < g->n_values) needed[g->outputs[i]] = 1;
  /* Consumers come after producers, so one backward sweep settles liveness. */
  for (int ni = g->n_nodes - 1; ni >= 0; ni--) {
    ri__node *n = &g->nodes[ni];
    if (n->dead) continue;
    int live = 0;
    for (int k = 0; k < n->n_outputs && !live; k++)
      if (n->outputs[k] >= 0 && needed[n->outputs[k]]) live = 1;
    if (!live) {
      n->dead = 1;
      continue;
    }
    for (int k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] >= 0 && n->inputs[k] < g->n_values) needed[n->inputs[k]] = 1;
  }
  ri__free(needed);
  return ri__graph_compact(g, err);
}
