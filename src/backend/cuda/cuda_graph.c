/* Per-context cache of instantiated CUDA graphs, one per batch size, at most CU_MAX_GRAPHS; when full, the
 * oldest entry is dropped. A graph replays exactly the kernels, parameters and addresses of the run it was
 * captured from, which stay valid for that batch size: shapes, host-computed values (whose device copies
 * are refreshed before every launch) and arena offsets depend only on the batch size. */
#include <string.h>

#include "backend/cuda/cuda_internal.h"

cudaGraphExec_t ri__cu_graph_find(cu_ctx *c, int batch) {
  for (int i = 0; i < c->n_graphs; i++)
    if (c->graphs[i].batch == batch) return c->graphs[i].exec;
  return NULL;
}

void ri__cu_graph_put(cu_ctx *c, int batch, cudaGraphExec_t exec) {
  if (c->n_graphs == CU_MAX_GRAPHS) {
    cudaGraphExecDestroy(c->graphs[0].exec);
    memmove(&c->graphs[0], &c->graphs[1], (CU_MAX_GRAPHS - 1) * sizeof c->graphs[0]);
    c->n_graphs--;
  }
  c->graphs[c->n_graphs].batch = batch;
  c->graphs[c->n_graphs].exec = exec;
  c->n_graphs++;
}

void ri__cu_graph_clear(cu_ctx *c) {
  for (int i = 0; i < c->n_graphs; i++)
    cudaGraphExecDestroy(c->graphs[i].exec);
  c->n_graphs = 0;
}
