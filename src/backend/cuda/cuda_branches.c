/* Concurrent branches: nodes whose results no later node reads run on a second stream of the context,
 * concurrently with the nodes after them, instead of in line on the main stream.
 *
 * Why: at small batches most kernels fill a fraction of the GPU, and the graph is a chain whose per-kernel
 * latency adds up. The SSD box and class predictors (12 convolutions writing straight into the outputs,
 * cuda_fuse.c) hang off the backbone; in line they sit on its critical path, on a side stream they run on
 * the SMs the backbone leaves idle.
 *
 * Which nodes: a running convolution on the own GEMM kernels (cu_node.fusable: its work is one kernel
 * launch on c->stream with the context's scratch and split-K resources) none of whose written values any
 * running node reads. Graph outputs are read only by the output conversions, which run after the join.
 *
 * Safety: a side node starts after everything the main stream enqueued before it (an event per fork), so
 * its inputs are written; the memory re-plan (cuda_memplan.c) keeps every value a side node reads alive
 * to the end of the graph, so no later node reuses those bytes while it may still read; its outputs are
 * graph outputs, alive to the end anyway; it uses the side stream's own scratch and split-K workspace and
 * counters (and cuBLASLt workspace, for a convolution on a cuBLASLt tactic). The main stream waits for the
 * side stream before the output conversions. With per-node profiling on (eager, events between nodes)
 * everything runs in line. Results are the same bits either way: the same kernels with the same arguments.
 *
 * Policy: RI_CUDA_BRANCHES=0 never, =1 in every engine; by default in engines of maximum batch at most
 * CU_BRANCHES_AUTO_MAX_BATCH (32), where it measured faster at every batch and keeping the feature maps
 * alive to the end costs little memory. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"

static int policy_allows(const cu_state *st) {
  long v = ri__cu_env_long("RI_CUDA_BRANCHES", -1, LONG_MIN, LONG_MAX);
  if (v == 0) return 0;
  if (v > 0) return 1;
  return st->cfg.max_batch <= CU_BRANCHES_AUTO_MAX_BATCH;
}

void ri__cu_mark_branches(cu_state *st) {
  const ri__graph *g = st->g;
  st->n_side = 0;
  for (int k = 0; k < g->n_nodes; k++)
    st->nodes[k].side = 0;
  if (!policy_allows(st)) return;
  /* read[v]: some running node reads v (unknown access anywhere: no side nodes at all) */
  unsigned char *read = ri__calloc((size_t)g->n_values + 1, 1);
  if (!read) return; /* no branches is always correct */
  int rd[CU_MAX_ACCESS + 1], wr[CU_MAX_ACCESS + 1];
  for (int k = 0; k < g->n_nodes; k++) {
    if (st->nodes[k].skip) continue;
    if (g->nodes[k].host) {
      for (int i = 0; i < g->nodes[k].n_inputs; i++)
        if (g->nodes[k].inputs[i] >= 0) read[g->nodes[k].inputs[i]] = 1;
      continue;
    }
    if (!ri__cu_node_access(st, k, rd, wr)) {
      ri__free(read);
      return;
    }
    for (int i = 0; rd[i] >= 0; i++)
      read[rd[i]] = 1;
  }
  for (int k = 0; k < g->n_nodes; k++) {
    const cu_node *cn = &st->nodes[k];
    if (cn->skip || g->nodes[k].host || !cn->fusable || cn->impl != ri__cu_op_impl(g->nodes[k].op)) continue;
    if (!ri__cu_node_access(st, k, rd, wr) || wr[0] < 0) continue;
    int leaf = 1;
    for (int i = 0; leaf && wr[i] >= 0; i++)
      leaf = !read[wr[i]] && g->values[wr[i]].is_output;
    if (!leaf) continue;
    st->nodes[k].side = 1;
    st->n_side++;
  }
  ri__free(read);
}

ri_status ri__cu_branches_create(cu_ctx *c, ri__err *err) {
  const cu_state *st = c->st;
  const int ni = -1;
  if (st->n_side == 0) return RI_OK;
  CU_RT(cudaStreamCreateWithFlags(&c->side_stream, cudaStreamNonBlocking));
  CU_RT(cudaEventCreateWithFlags(&c->ev_fork, cudaEventDisableTiming));
  CU_RT(cudaEventCreateWithFlags(&c->ev_join, cudaEventDisableTiming));
  if (st->scratch_bytes > 0) {
    cudaError_t e = cudaMalloc(&c->side_scratch, (size_t)st->scratch_bytes);
    if (e != cudaSuccess) {
      c->side_scratch = NULL;
      return ri__cu_fail_alloc(err, e, "cudaMalloc", st, st->scratch_bytes, "the side stream's scratch");
    }
    c->dev_bytes += st->scratch_bytes;
  }
  if (c->lt_ws) {
    /* a side node on cuBLASLt (cuda_conv_lt.c) must not share the main stream's cuBLASLt workspace */
    cudaError_t e = cudaMalloc(&c->side_lt_ws, c->lt_ws_bytes);
    if (e != cudaSuccess) {
      c->side_lt_ws = NULL;
      return ri__cu_fail_alloc(err, e, "cudaMalloc", st, (int64_t)c->lt_ws_bytes,
                               "the side stream's cuBLASLt workspace");
    }
    c->dev_bytes += (int64_t)c->lt_ws_bytes;
  }
  if (c->splitk.ws) {
    ri__cu_splitk *sk = &c->side_splitk;
    *sk = c->splitk;
    sk->ws = NULL;
    sk->counters = NULL;
    cudaError_t e = cudaMalloc(&sk->ws, sk->ws_bytes);
    if (e != cudaSuccess) {
      sk->ws = NULL;
      return ri__cu_fail_alloc(err, e, "cudaMalloc", st, (int64_t)sk->ws_bytes,
                               "the side stream's split-K workspace");
    }
    c->dev_bytes += (int64_t)sk->ws_bytes;
    size_t cb = (size_t)sk->n_counters * sizeof(int);
    void *cnt = NULL;
    e = cudaMalloc(&cnt, cb);
    if (e != cudaSuccess)
      return ri__cu_fail_alloc(err, e, "cudaMalloc", st, (int64_t)cb, "the side stream's split-K counters");
    sk->counters = cnt;
    c->dev_bytes += (int64_t)cb;
    CU_RT(cudaMemsetAsync(cnt, 0, cb, c->side_stream));
    CU_RT(cudaStreamSynchronize(c->side_stream));
  }
  return RI_OK;
}

void ri__cu_branches_free(cu_ctx *c) {
  if (c->side_stream) cudaStreamSynchronize(c->side_stream);
  cudaFree(c->side_scratch);
  cudaFree(c->side_lt_ws);
  cudaFree(c->side_splitk.ws);
  cudaFree(c->side_splitk.counters);
  if (c->ev_fork) cudaEventDestroy(c->ev_fork);
  if (c->ev_join) cudaEventDestroy(c->ev_join);
  if (c->side_stream) cudaStreamDestroy(c->side_stream);
  c->side_scratch = NULL;
  c->side_lt_ws = NULL;
  c->side_splitk.ws = NULL;
  c->side_splitk.counters = NULL;
  c->ev_fork = c->ev_join = NULL;
  c->side_stream = NULL;
}

/* Swaps the main stream's resources with the side stream's (twice restores them). */
static void swap_side(cu_ctx *c) {
  cudaStream_t s = c->stream;
  c->stream = c->side_stream;
  c->side_stream = s;
  void *p = c->scratch;
  c->scratch = c->side_scratch;
  c->side_scratch = p;
  ri__cu_splitk k = c->splitk;
  c->splitk = c->side_splitk;
  c->side_splitk = k;
  p = c->lt_ws;
  c->lt_ws = c->side_lt_ws;
  c->side_lt_ws = p;
}

ri_status ri__cu_run_maybe_side(cu_ctx *c, int ni, int *open,
                                ri_status (*run)(cu_ctx *c, int ni, void *arg, ri__err *err), void *arg,
                                ri__err *err) {
  const cu_state *st = c->st;
  if (!st->nodes[ni].side || !c->side_stream || c->prof) return run(c, ni, arg, err);
  CU_RT(cudaEventRecord(c->ev_fork, c->stream));
  CU_RT(cudaStreamWaitEvent(c->side_stream, c->ev_fork, 0));
  *open = 1;
  swap_side(c);
  ri_status s = run(c, ni, arg, err);
  swap_side(c);
  return s;
}

ri_status ri__cu_join_branches(cu_ctx *c, int open, ri__err *err) {
  const cu_state *st = c->st;
  const int ni = -1;
  if (!open) return RI_OK;
  CU_RT(cudaEventRecord(c->ev_join, c->side_stream));
  CU_RT(cudaStreamWaitEvent(c->stream, c->ev_join, 0));
  return RI_OK;
}
