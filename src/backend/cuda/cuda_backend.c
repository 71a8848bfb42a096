/* CUDA backend: runs the graph on one NVIDIA GPU with cuDNN convolutions, cuBLASLt matrix products and the
 * backend's own kernels (kernels.h). docs/design/cuda-backend.md describes the design.
 *
 * A run: graph inputs are copied into pinned staging and sent to the device; the compute part (input
 * conversions, every device node in order, output conversions) is enqueued on the context's stream, or
 * replayed from a CUDA graph captured on the second run at that batch size; outputs come back through
 * pinned staging; the call returns after the stream is synchronized. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "backend/cuda/cuda_api.h"
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/cuda_tactics.h"
#include "core/alloc.h"
#include "core/half.h"
#include "engine/engine_impl.h"
#include "graph/op.h"
#include "graph/shape_infer.h"

_Static_assert(RI__ACT_RELU == 1 && RI__ACT_CLIP == 2 && RI__ACT_LEAKY_RELU == 3 && RI__ACT_SIGMOID == 4 &&
                   RI__ACT_HARD_SIGMOID == 5 && RI__ACT_HARD_SWISH == 6,
               "kernels.h activation codes follow ri__act");

static int64_t align_up(int64_t x) { return (x + CU_ALIGN - 1) / CU_ALIGN * CU_ALIGN; }

static void cuda_release(void *p) {
  cu_state *st = p;
  if (!st) return;
  if (st->nodes) {
    for (int i = 0; i < st->g->n_nodes; i++) {
      ri__free(st->nodes[i].want);
      ri__free(st->nodes[i].aux);
    }
  }
  if (st->dconst) {
    cudaSetDevice(st->cfg.device_index);
    cudaFree(st->dconst);
  }
  ri__free(st->blob);
  ri__free(st->nodes);
  ri__free(st->vdt);
  ri__free(st->vlayout);
  ri__free(st->dev_use);
  ri__free(st->const_off);
  ri__free(st->host_off);
  ri__free(st->host_cap);
  ri__free(st->reloc_off);
  ri__free(st->io_off);
  ri__free(st->io_nbytes);
  ri__free(st->mem_off);
  ri__free(st->mem_size);
  ri__free(st->dio_off);
  ri__free(st);
}

static ri_status select_device(const cu_state *st, ri__err *err) {
  int count = 0;
  const int ni = -1;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    return ri__cu_fail_rt(err, e, "cudaGetDeviceCount", st, ni, "looking for CUDA devices");
  if (st->cfg.device_index >= count)
    return ri__err_set(err, RI_ERR_DEVICE, "device %s does not exist (%d CUDA device%s found)", st->dev_name,
                       count, count == 1 ? "" : "s");
  CU_RT(cudaSetDevice(st->cfg.device_index));
  return RI_OK;
}

/* Byte size of a value at the maximum batch with element type dt. */
static ri_status max_bytes(const ri__value *v, ri_dtype dt, int64_t *out, ri__err *err) {
  size_t nb;
  RI__TRY(ri__tensor_nbytes(dt, &v->shape, &nb, err));
  *out = (int64_t)nb;
  return RI_OK;
}

static ri_status upload_constants(cu_state *st, ri__err *err) {
  const ri__graph *g = st->g;
  const int ni = -1;
  for (int v = 0; v < g->n_values; v++) {
    const ri__value *val = &g->values[v];
    if (!st->dev_use[v]) continue;
    if (val->kind == RI__VAL_CONST) {
      size_t nb;
      void *data = ri__cu_const_as(val, st->vdt[v], &nb);
      if (!data) return RI__OOM(err);
      ri_status s = ri__cu_blob_add(st, data, nb, &st->const_off[v], err);
      ri__free(data);
      RI__TRY(s);
    } else if (val->host) {
      int64_t cap =
          (int64_t)RI__HOST_MAX_ELEMS * (int64_t)(ri__cu_esize(st->vdt[v]) ? ri__cu_esize(st->vdt[v]) : 8);
      st->host_off[v] = st->host_bytes;
      st->host_cap[v] = cap;
      st->host_bytes += align_up(cap);
    }
  }
  if (st->blob_len == 0) return RI_OK;
  cudaError_t e = cudaMalloc(&st->dconst, st->blob_len);
  if (e != cudaSuccess) {
    st->dconst = NULL;
    return ri__cu_fail_alloc(err, e, "cudaMalloc", st, (int64_t)st->blob_len, "the engine's constants");
  }
  st->dconst_bytes = (int64_t)st->blob_len;
  CU_RT(cudaMemcpy(st->dconst, st->blob, st->blob_len, cudaMemcpyHostToDevice));
  ri__free(st->blob);
  st->blob = NULL;
  st->blob_len = st->blob_cap = 0;
  return RI_OK;
}

static ri_status plan_io(cu_state *st, ri__err *err) {
  const ri__graph *g = st->g;
  int n = g->n_inputs + g->n_outputs;
  st->io_off = ri__calloc((size_t)(n ? n : 1), sizeof(int64_t));
  st->io_nbytes = ri__calloc((size_t)(n ? n : 1), sizeof(int64_t));
  st->dio_off = ri__calloc((size_t)(n ? n : 1), sizeof(int64_t));
  if (!st->io_off || !st->io_nbytes || !st->dio_off) return RI__OOM(err);
  int64_t pos = 0;
  for (int i = 0; i < n; i++) {
    int v = i < g->n_inputs ? g->inputs[i] : g->outputs[i - g->n_inputs];
    int64_t nb;
    RI__TRY(max_bytes(&g->values[v], g->values[v].dtype, &nb, err));
    st->io_off[i] = pos;
    st->io_nbytes[i] = nb;
    pos += align_up(nb);
  }
  st->io_bytes = pos;
  return RI_OK;
}

static ri_status cuda_ctx_create(void *state, void **out, ri__err *err);
static void cuda_ctx_destroy(void *p);

/* Build (tune level > 0): one context chooses the cuDNN algorithms (search and batch-invariance check), and
 * the engine keeps them as the nodes' tactics, so that every later context, in any process, runs the same
 * ones without searching. A context that cannot be created here (device memory) leaves the choice to each
 * context, as with level 0. */
static void keep_cudnn_algos(cu_state *st, ri__err *err) {
  void *p = NULL;
  if (cuda_ctx_create(st, &p, err) != RI_OK) {
    ri__err_clear(err);
    return;
  }
  cu_ctx *c = p;
  for (int ni = 0; ni < st->g->n_nodes; ni++)
    if (st->g->nodes[ni].op == RI__OP_Conv && st->nodes[ni].impl && c->node_ctx[ni])
      ri__cu_conv_keep_algo(c, ni);
  cuda_ctx_destroy(c);
}

static ri_status cuda_prepare(const ri__graph *g, const ri__backend_cfg *cfg, void **out, ri__err *err) {
  *out = NULL;
  if (cfg->precision == RI_PRECISION_INT8)
    return ri__err_set(err, RI_ERR_UNSUPPORTED, "precision int8 is not implemented by the CUDA backend");
  cu_state *st = ri__calloc(1, sizeof *st);
  if (!st) return RI__OOM(err);
  st->g = g;
  st->cfg = *cfg;
  st->fp16 = cfg->precision == RI_PRECISION_FP16;
  snprintf(st->dev_name, sizeof st->dev_name, "cuda:%d", cfg->device_index);
  size_t nv = (size_t)(g->n_values ? g->n_values : 1), nn = (size_t)(g->n_nodes ? g->n_nodes : 1);
  st->vdt = ri__calloc(nv, sizeof *st->vdt);
  st->vlayout = ri__calloc(nv, 1);
  st->dev_use = ri__calloc(nv, 1);
  st->const_off = ri__calloc(nv, sizeof(int64_t));
  st->host_off = ri__calloc(nv, sizeof(int64_t));
  st->host_cap = ri__calloc(nv, sizeof(int64_t));
  st->reloc_off = ri__calloc(nv, sizeof(int64_t));
  st->mem_off = ri__calloc(nv, sizeof(int64_t));
  st->mem_size = ri__calloc(nv, sizeof(int64_t));
  st->nodes = ri__calloc(nn, sizeof *st->nodes);
  ri_status s = RI_OK;
  if (!st->vdt || !st->vlayout || !st->dev_use || !st->const_off || !st->host_off || !st->host_cap ||
      !st->reloc_off || !st->mem_off || !st->mem_size || !st->nodes)
    s = RI__OOM(err);
  for (int v = 0; s == RI_OK && v < g->n_values; v++)
    st->const_off[v] = st->host_off[v] = st->reloc_off[v] = -1;
  if (s == RI_OK) s = select_device(st, err);
  if (s == RI_OK) s = ri__cu_assign_layouts(st, err);
  for (int ni = 0; s == RI_OK && ni < g->n_nodes; ni++) {
    const ri__node *n = &g->nodes[ni];
    if (n->host) continue;
    const cu_op_impl *impl = ri__cu_op_impl(n->op);
    if (!impl) {
      s = ri__err_set(err, RI_ERR_UNSUPPORTED, "node '%s' (op %s) has no CUDA kernel yet",
                      n->name ? n->name : "?", ri__op_name(n->op));
      break;
    }
    st->nodes[ni].impl = impl;
    st->nodes[ni].name = "cuda";
    s = impl->prep(st, ni, err);
  }
  if (s == RI_OK) s = plan_io(st, err);
  if (s == RI_OK) s = ri__cu_plan_memory(st, err);
  if (s == RI_OK) s = ri__cu_fuse(st, err);
  if (s == RI_OK) s = ri__cu_replan_memory(st, err);
  if (s == RI_OK) s = upload_constants(st, err);
  if (s == RI_OK) s = ri__cu_tune(st, err);
  if (s == RI_OK) {
    for (int ni = 0; ni < g->n_nodes; ni++) {
      int64_t need = align_up(st->nodes[ni].cvt_bytes) + align_up(st->nodes[ni].op_scratch);
      if (need > st->scratch_bytes) st->scratch_bytes = need;
    }
  }
  if (s == RI_OK && cfg->tune_level > 0 && st->uses_cudnn) keep_cudnn_algos(st, err);
  if (s != RI_OK) {
    cuda_release(st);
    return s;
  }
  *out = st;
  return RI_OK;
}

/* ---- contexts ------------------------------------------------------------------------------------------ */

static void cuda_ctx_destroy(void *p) {
  cu_ctx *c = p;
  if (!c) return;
  cu_state *st = c->st;
  cudaSetDevice(st->cfg.device_index);
  if (c->stream) cudaStreamSynchronize(c->stream);
  ri__cu_branches_free(c);
  if (c->node_ctx) {
    for (int ni = 0; ni < st->g->n_nodes; ni++)
      if (c->node_ctx[ni] && st->nodes[ni].impl && st->nodes[ni].impl->ctx_free)
        st->nodes[ni].impl->ctx_free(c, ni);
  }
  ri__cu_graph_clear(c);
  ri__cu_profile_destroy(c);
  ri__cu_staging_destroy(c);
  if (c->ev0) cudaEventDestroy(c->ev0);
  if (c->ev1) cudaEventDestroy(c->ev1);
  if (c->ev_in) cudaEventDestroy(c->ev_in);
  if (c->ev_out) cudaEventDestroy(c->ev_out);
  if (c->cudnn) cudnnDestroy(c->cudnn);
  if (c->lt) cublasLtDestroy(c->lt);
  cudaFree(c->arena);
  cudaFree(c->scratch);
  cudaFree(c->ws);
  cudaFree(c->lt_ws);
  cudaFree(c->dev_host);
  cudaFree(c->reloc);
  cudaFree(c->splitk.ws);
  cudaFree(c->splitk.counters);
  if (c->pin_io) cudaFreeHost(c->pin_io);
  if (c->pin_host) cudaFreeHost(c->pin_host);
  if (c->stream) cudaStreamDestroy(c->stream);
  ri__free(c->node_ctx);
  ri__free(c->ran);
  ri__free(c->in_args);
  ri__free(c->out_args);
  ri__free(c);
}

/* Allocates n bytes of device memory (at least CU_ALIGN) naming what it is for on failure
 * (RI_ERR_NO_MEMORY when the device is full, see ri__cu_fail_alloc). */
static ri_status dev_alloc(cu_ctx *c, void **p, int64_t n, const char *what, ri__err *err) {
  size_t bytes = (size_t)(n > CU_ALIGN ? n : CU_ALIGN);
  cudaError_t e = cudaMalloc(p, bytes);
  if (e == cudaSuccess) c->dev_bytes += (int64_t)bytes;
  if (e != cudaSuccess) {
    *p = NULL;
    char buf[96];
    snprintf(buf, sizeof buf, "the %s", what);
    return ri__cu_fail_alloc(err, e, "cudaMalloc", c->st, n, buf);
  }
  return RI_OK;
}

static ri_status host_alloc(cu_ctx *c, void **p, int64_t n, const char *what, ri__err *err) {
  cudaError_t e = cudaMallocHost(p, (size_t)(n > CU_ALIGN ? n : CU_ALIGN));
  if (e != cudaSuccess) {
    *p = NULL;
    char buf[160];
    snprintf(buf, sizeof buf, "allocating %lld bytes of pinned memory for the %s", (long long)n, what);
    return ri__cu_fail_rt(err, e, "cudaMallocHost", c->st, -1, buf);
  }
  return RI_OK;
}

static ri_status ctx_setup(cu_ctx *c, ri__err *err) {
  cu_state *st = c->st;
  const ri__graph *g = st->g;
  const int ni = -1;
  CU_RT(cudaSetDevice(st->cfg.device_index));
  CU_RT(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
  CU_RT(cudaEventCreate(&c->ev0));
  CU_RT(cudaEventCreate(&c->ev1));
  CU_RT(cudaEventCreate(&c->ev_in));
  CU_RT(cudaEventCreate(&c->ev_out));
  RI__TRY(ri__cu_staging_create(c, err));
  if (st->uses_cudnn) {
    cudnnStatus_t de = cudnnCreate(&c->cudnn);
    if (de != CUDNN_STATUS_SUCCESS) {
      c->cudnn = NULL;
      return ri__cu_low_memory(
          err, ri__cu_fail_dnn(err, de, "cudnnCreate", st, ni, "creating the cuDNN handle"), st);
    }
    CU_DNN(cudnnSetStream(c->cudnn, c->stream));
  }
  if (st->uses_cublas) {
    cublasStatus_t le = cublasLtCreate(&c->lt);
    if (le != CUBLAS_STATUS_SUCCESS) {
      c->lt = NULL;
      return ri__cu_low_memory(
          err, ri__cu_fail_lt(err, le, "cublasLtCreate", st, ni, "creating the cuBLASLt handle"), st);
    }
    c->lt_ws_bytes = (size_t)32 << 20;
    RI__TRY(dev_alloc(c, &c->lt_ws, (int64_t)c->lt_ws_bytes, "cuBLASLt workspace", err));
  }
  RI__TRY(dev_alloc(c, &c->arena, st->arena_bytes, "activation arena", err));
  CU_RT(cudaMemsetAsync(c->arena, 0, (size_t)(st->arena_bytes > 0 ? st->arena_bytes : 0), c->stream));
  if (st->scratch_bytes > 0) RI__TRY(dev_alloc(c, &c->scratch, st->scratch_bytes, "scratch", err));
  RI__TRY(host_alloc(c, &c->pin_io, st->io_bytes, "input/output staging", err));
  if (st->reloc_bytes > 0) RI__TRY(dev_alloc(c, &c->reloc, st->reloc_bytes, "relocated values", err));
  if (st->uses_gemm) {
    /* Split-K partial tiles: at most 32 splits of the tiles that fill under one wave; 16 MiB holds them
     * for 64 x 64 tiles up to 32 splits x 32 tiles (the launcher lowers the splits to what fits). */
    int sms = 0;
    CU_RT(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, st->cfg.device_index));
    c->splitk.sms = sms > 0 ? sms : 1;
    c->splitk.ws_bytes = RI__CU_SPLITK_WS_BYTES;
    c->splitk.n_counters = RI__CU_SPLITK_COUNTERS;
    RI__TRY(dev_alloc(c, &c->splitk.ws, (int64_t)c->splitk.ws_bytes, "split-K workspace", err));
    void *cnt = NULL;
    RI__TRY(
        dev_alloc(c, &cnt, (int64_t)c->splitk.n_counters * (int64_t)sizeof(int), "split-K counters", err));
    c->splitk.counters = cnt;
    CU_RT(cudaMemsetAsync(cnt, 0, (size_t)c->splitk.n_counters * sizeof(int), c->stream));
  }
  if (st->host_bytes > 0) {
    RI__TRY(dev_alloc(c, &c->dev_host, st->host_bytes, "host-computed values", err));
    RI__TRY(host_alloc(c, &c->pin_host, st->host_bytes, "host-computed values", err));
  }
  if (st->uses_cudnn) {
    int mb = (int)ri__cu_env_long("RI_CUDA_WORKSPACE_MB", 512, INT_MIN, INT_MAX);
    if (mb < 0) mb = 0;
    c->ws_bytes = (size_t)mb << 20;
    if (c->ws_bytes) RI__TRY(dev_alloc(c, &c->ws, (int64_t)c->ws_bytes, "cuDNN workspace", err));
  }
  for (int k = 0; k < g->n_nodes; k++) {
    const cu_node *cn = &st->nodes[k];
    if (g->nodes[k].host || !cn->impl || !cn->impl->ctx_init) continue;
    RI__TRY(cn->impl->ctx_init(c, k, err));
  }
  CU_RT(cudaStreamSynchronize(c->stream));
  /* The algorithms were chosen at the maximum batch: keep only the workspace they need (other batch sizes,
   * searched later, are restricted to it). */
  if (c->ws && c->ws_need < c->ws_bytes) {
    c->dev_bytes -= (int64_t)c->ws_bytes;
    cudaFree(c->ws);
    c->ws = NULL;
    c->ws_bytes = c->ws_need;
    if (c->ws_bytes) RI__TRY(dev_alloc(c, &c->ws, (int64_t)c->ws_bytes, "cuDNN workspace", err));
  }
  RI__TRY(ri__cu_branches_create(c, err));
  c->graphs_on = ri__cu_env_long("RI_CUDA_GRAPHS", 1, LONG_MIN, LONG_MAX) != 0;
  c->timing = ri__cu_env_long("RI_CUDA_TIMING", 0, LONG_MIN, LONG_MAX) != 0;
  return RI_OK;
}

static ri_status cuda_ctx_create(void *state, void **out, ri__err *err) {
  cu_state *st = state;
  const ri__graph *g = st->g;
  *out = NULL;
  cu_ctx *c = ri__calloc(1, sizeof *c);
  if (!c) return RI__OOM(err);
  c->st = st;
  int max_io = 1;
  for (int i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i].n_inputs > max_io) max_io = g->nodes[i].n_inputs;
    if (g->nodes[i].n_outputs > max_io) max_io = g->nodes[i].n_outputs;
  }
  c->max_io = max_io;
  c->in_args = ri__calloc((size_t)max_io, sizeof(cu_arg));
  c->out_args = ri__calloc((size_t)max_io, sizeof(cu_arg));
  c->node_ctx = ri__calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof(void *));
  c->ran = ri__calloc((size_t)st->cfg.max_batch / 8 + 1, 1);
  ri_status s = c->in_args && c->out_args && c->node_ctx && c->ran ? ctx_setup(c, err) : RI__OOM(err);
  if (s != RI_OK) {
    cuda_ctx_destroy(c);
    return s;
  }
  *out = c;
  return RI_OK;
}

/* ---- running ------------------------------------------------------------------------------------------- */

void *ri__cu_value_ptr(const cu_ctx *c, int v) {
  const cu_state *st = c->st;
  const ri__value *val = &st->g->values[v];
  if (val->kind == RI__VAL_CONST)
    return st->const_off[v] >= 0 ? ri__cu_const_ptr(st, st->const_off[v]) : NULL;
  if (val->host) return st->host_off[v] >= 0 ? (char *)c->dev_host + st->host_off[v] : NULL;
  if (st->reloc_off[v] >= 0) return (char *)c->reloc + st->reloc_off[v];
  if (st->mem_off[v] < 0) return NULL;
  return (char *)c->arena + st->mem_off[v];
}

int ri__cu_io_direct(const cu_state *st, int v) {
  return st->vdt[v] == st->g->values[v].dtype && st->vlayout[v] == CU_LAYOUT_ROW;
}

/* Device staging of graph input (io < n_inputs) or output io - n_inputs in the arena, or NULL. */
static void *dev_stage(const cu_ctx *c, int io) {
  return c->st->dio_off[io] >= 0 ? (char *)c->arena + c->st->dio_off[io] : NULL;
}

static ri_status run_node(cu_ctx *c, const ri__tensor *vals, int ni, ri__err *err) {
  const cu_state *st = c->st;
  const ri__node *n = &st->g->nodes[ni];
  const cu_node *cn = &st->nodes[ni];
  char *cvt = c->scratch;
  for (int k = 0; k < n->n_inputs; k++) {
    cu_arg *a = &c->in_args[k];
    int v = n->inputs[k];
    memset(a, 0, sizeof *a);
    a->v = v;
    if (v < 0) continue;
    a->t = &vals[v];
    a->p = ri__cu_value_ptr(c, v);
    a->dt = st->vdt[v];
    a->layout = st->vlayout[v];
    if (!cn->want || cn->want[k] == CU_WANT_ANY || vals[v].shape.rank != 4) continue;
    int need = cn->want[k] == CU_WANT_NHWC ? CU_LAYOUT_NHWC : CU_LAYOUT_ROW;
    if (need == a->layout) continue;
    RI__TRY(ri__cu_convert(c, ni, &vals[v].shape, a->p, a->dt, a->layout, cvt, a->dt, need, err));
    size_t nb;
    RI__TRY(ri__tensor_nbytes(a->dt, &vals[v].shape, &nb, err));
    a->p = cvt;
    a->layout = need;
    cvt += align_up((int64_t)nb);
  }
  for (int k = 0; k < n->n_outputs; k++) {
    cu_arg *a = &c->out_args[k];
    int v = n->outputs[k];
    memset(a, 0, sizeof *a);
    a->v = v;
    if (v < 0) continue;
    a->t = &vals[v];
    a->p = ri__cu_value_ptr(c, v);
    a->dt = st->vdt[v];
    a->layout = st->vlayout[v];
    if (!a->p)
      return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (%s): output '%s' has no device memory", n->name,
                         ri__op_name(n->op), st->g->values[v].name);
  }
  void *scratch = c->scratch ? (char *)c->scratch + align_up(cn->cvt_bytes) : NULL;
  ri_status s = cn->impl->run(c, ni, c->in_args, c->out_args, scratch, err);
  if (s != RI_OK && err && strstr(err->msg, "node '") == NULL)
    return ri__err_prefix(err, "node '%s' (%s, %s)", n->name, ri__op_name(n->op), cn->name);
  return s;
}

static ri_status run_node_cb(cu_ctx *c, int ni, void *vals, ri__err *err) {
  return run_node(c, (const ri__tensor *)vals, ni, err);
}

/* Enqueues the compute part of a run: input conversions, nodes (side nodes on the side stream,
 * cuda_branches.c), output conversions. */
static ri_status enqueue_compute(cu_ctx *c, const ri__tensor *vals, ri__err *err) {
  const cu_state *st = c->st;
  const ri__graph *g = st->g;
  RI__TRY(ri__cu_profile_mark(c, -1, err));
  for (int i = 0; i < g->n_inputs; i++) {
    int v = g->inputs[i];
    if (ri__cu_io_direct(st, v)) continue;
    RI__TRY(ri__cu_convert(c, -1, &vals[v].shape, dev_stage(c, i), g->values[v].dtype, CU_LAYOUT_ROW,
                           ri__cu_value_ptr(c, v), st->vdt[v], st->vlayout[v], err));
  }
  int side_open = 0;
  ri_status s = RI_OK;
  for (int ni = 0; s == RI_OK && ni < g->n_nodes; ni++) {
    if (g->nodes[ni].host || st->nodes[ni].skip) continue;
    s = ri__cu_profile_mark(c, ni, err);
    if (s == RI_OK) s = ri__cu_run_maybe_side(c, ni, &side_open, run_node_cb, (void *)vals, err);
  }
  /* joined even after a failure, so that a capture ends with every stream back in it */
  ri__err join_err;
  ri__err_clear(&join_err);
  ri_status js = ri__cu_join_branches(c, side_open, s == RI_OK ? err : &join_err);
  if (s != RI_OK) return s;
  RI__TRY(js);
  RI__TRY(ri__cu_profile_mark(c, g->n_nodes, err));
  for (int i = 0; i < g->n_outputs; i++) {
    int v = g->outputs[i];
    const ri__value *val = &g->values[v];
    if (val->kind == RI__VAL_CONST || val->host || ri__cu_io_direct(st, v)) continue;
    RI__TRY(ri__cu_convert(c, -1, &vals[v].shape, ri__cu_value_ptr(c, v), st->vdt[v], st->vlayout[v],
                           dev_stage(c, g->n_inputs + i), val->dtype, CU_LAYOUT_ROW, err));
  }
  return ri__cu_profile_mark(c, -2, err);
}

/* Captures the compute part into a graph for this batch. On a capture failure graphs are turned off for
 * the context (the run then proceeds eagerly); a failure of the work itself is returned. */
static ri_status capture(cu_ctx *c, const ri__tensor *vals, int batch, ri__err *err) {
  const cu_state *st = c->st;
  const int ni = -1;
  CU_RT(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal));
  c->capturing = 1;
  ri_status s = enqueue_compute(c, vals, err);
  c->capturing = 0;
  cudaGraph_t graph = NULL;
  cudaError_t e = cudaStreamEndCapture(c->stream, &graph);
  if (s != RI_OK || e != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError(); /* clear the capture error; it is not sticky */
    c->graphs_on = 0;
    if (s != RI_OK && s != RI_ERR_DEVICE && s != RI_ERR_NO_MEMORY) return s;
    ri__err_clear(err);
    return RI_OK;
  }
  cudaGraphExec_t exec = NULL;
  e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (e != cudaSuccess) {
    cudaGetLastError();
    c->graphs_on = 0;
    return RI_OK;
  }
  ri__cu_graph_put(c, batch, exec);
  return RI_OK;
}

static ri_status upload_host_values(cu_ctx *c, const ri__tensor *vals, ri__err *err) {
  const cu_state *st = c->st;
  const ri__graph *g = st->g;
  const int ni = -1;
  if (st->host_bytes == 0) return RI_OK;
  for (int v = 0; v < g->n_values; v++) {
    if (st->host_off[v] < 0) continue;
    const ri__tensor *t = &vals[v];
    int64_t numel = ri__shape_numel(&t->shape);
    if (!t->data || numel < 0)
      return ri__err_set(err, RI_ERR_INTERNAL, "host value '%s' has no data", g->values[v].name);
    int64_t nb = numel * (int64_t)ri__cu_esize(st->vdt[v]);
    if (nb > st->host_cap[v])
      return ri__err_set(err, RI_ERR_LIMIT,
                         "host value '%s' has %lld bytes, over the %lld reserved on the device",
                         g->values[v].name, (long long)nb, (long long)st->host_cap[v]);
    char *dst = (char *)c->pin_host + st->host_off[v];
    if (st->vdt[v] == RI_DTYPE_FLOAT16 && t->dtype == RI_DTYPE_FLOAT32) {
      for (int64_t i = 0; i < numel; i++) {
        uint16_t h = ri__float_to_half(((const float *)t->data)[i]);
        memcpy(dst + 2 * i, &h, 2);
      }
    } else {
      memcpy(dst, t->data, (size_t)nb);
    }
  }
  CU_RT(cudaMemcpyAsync(c->dev_host, c->pin_host, (size_t)st->host_bytes, cudaMemcpyHostToDevice, c->stream));
  return RI_OK;
}

/* One run with whole inputs (in) or with each input's batch items (items[i * batch + b]). */
static ri_status run_any(void *p, const ri__tensor *vals, int batch, const void *const *in,
                         const void *const *items, void *const *out, ri__err *err) {
  cu_ctx *c = p;
  const cu_state *st = c->st;
  const ri__graph *g = st->g;
  const int ni = -1;
  CU_RT(cudaSetDevice(st->cfg.device_index));
  if (c->timing) CU_RT(cudaEventRecord(c->ev_in, c->stream));

  for (int i = 0; i < g->n_inputs; i++) {
    int v = g->inputs[i];
    size_t nb;
    RI__TRY(ri__tensor_nbytes(vals[v].dtype, &vals[v].shape, &nb, err));
    char *pin = (char *)c->pin_io + st->io_off[i];
    void *dst = ri__cu_io_direct(st, v) ? ri__cu_value_ptr(c, v) : dev_stage(c, i);
    if (!dst)
      return ri__err_set(err, RI_ERR_INTERNAL, "graph input '%s' has no device memory", g->values[v].name);
    if (items)
      RI__TRY(ri__cu_stage_in_items(c, items + (size_t)i * batch, batch, nb / (size_t)batch, pin, dst, err));
    else
      RI__TRY(ri__cu_stage_in(c, in[i], pin, dst, nb, err));
  }
  RI__TRY(upload_host_values(c, vals, err));

  /* Profiling runs stay eager, with events between the nodes. */
  int graphs = c->graphs_on && !c->prof;
  cudaGraphExec_t exec = graphs ? ri__cu_graph_find(c, batch) : NULL;
  int ran_before = (c->ran[batch / 8] >> (batch % 8)) & 1;
  if (!exec && graphs && ran_before) {
    RI__TRY(capture(c, vals, batch, err));
    exec = c->graphs_on ? ri__cu_graph_find(c, batch) : NULL;
  }
  if (c->timing) CU_RT(cudaEventRecord(c->ev0, c->stream));
  double enq0 = c->timing ? ri__clock_ms() : 0;
  if (exec) {
    CU_RT(cudaGraphLaunch(exec, c->stream));
  } else {
    RI__TRY(enqueue_compute(c, vals, err));
    c->ran[batch / 8] |= (unsigned char)(1u << (batch % 8));
  }
  c->last_enqueue_ms = c->timing ? ri__clock_ms() - enq0 : 0;
  c->last_was_graph = exec != NULL;
  if (c->timing) CU_RT(cudaEventRecord(c->ev1, c->stream));

  ri__cu_stage_out_reset(c);
  for (int i = 0; i < g->n_outputs; i++) {
    int v = g->outputs[i];
    const ri__value *val = &g->values[v];
    if (val->kind == RI__VAL_CONST || val->host) continue;
    size_t nb;
    RI__TRY(ri__tensor_nbytes(vals[v].dtype, &vals[v].shape, &nb, err));
    const void *src = ri__cu_io_direct(st, v) ? ri__cu_value_ptr(c, v) : dev_stage(c, g->n_inputs + i);
    if (!src) return ri__err_set(err, RI_ERR_INTERNAL, "graph output '%s' has no device memory", val->name);
    RI__TRY(ri__cu_stage_out(c, src, (char *)c->pin_io + st->io_off[g->n_inputs + i], out[i], nb, err));
  }
  if (c->timing) CU_RT(cudaEventRecord(c->ev_out, c->stream));
  RI__TRY(ri__cu_stage_out_finish(c, batch, err));
  c->last_compute_ms = c->last_h2d_ms = c->last_d2h_ms = 0.f;
  if (c->timing) {
    CU_RT(cudaEventElapsedTime(&c->last_h2d_ms, c->ev_in, c->ev0));
    CU_RT(cudaEventElapsedTime(&c->last_compute_ms, c->ev0, c->ev1));
    CU_RT(cudaEventElapsedTime(&c->last_d2h_ms, c->ev1, c->ev_out));
  }
  RI__TRY(ri__cu_profile_collect(c, err));
  for (int i = 0; i < g->n_outputs; i++) {
    int v = g->outputs[i];
    const ri__value *val = &g->values[v];
    size_t nb;
    RI__TRY(ri__tensor_nbytes(vals[v].dtype, &vals[v].shape, &nb, err));
    if (val->kind != RI__VAL_CONST && !val->host) continue; /* copied by ri__cu_stage_out_finish */
    if (!vals[v].data) return ri__err_set(err, RI_ERR_INTERNAL, "graph output '%s' has no data", val->name);
    memcpy(out[i], vals[v].data, nb);
  }
  return RI_OK;
}

static ri_status cuda_run(void *p, const ri__tensor *vals, int batch, const void *const *in, void *const *out,
                          ri__err *err) {
  return run_any(p, vals, batch, in, NULL, out, err);
}

static ri_status cuda_run_items(void *p, const ri__tensor *vals, int batch, const void *const *items,
                                void *const *out, ri__err *err) {
  return run_any(p, vals, batch, NULL, items, out, err);
}

static const char *cuda_node_impl(void *state, int node) {
  cu_state *st = state;
  if (node < 0 || node >= st->g->n_nodes) return NULL;
  return st->nodes[node].name;
}

static int32_t cuda_node_tactic(void *state, int node) {
  cu_state *st = state;
  if (node < 0 || node >= st->g->n_nodes || !st->nodes[node].impl) return 0;
  if (st->g->nodes[node].op != RI__OP_Conv) return 0;
  int32_t code = ri__cu_expdw_tactic(st, node);
  return code ? code : ri__cu_conv_tactic(st, node);
}

static ri_status cuda_set_timing(void *p, int on, ri__err *err) {
  (void)err;
  cu_ctx *c = p;
  c->timing = on != 0;
  return RI_OK;
}

static void cuda_memory(void *p, ri__memory_usage *m) {
  const cu_ctx *c = p;
  int64_t arena = c->arena ? (c->st->arena_bytes > CU_ALIGN ? c->st->arena_bytes : CU_ALIGN) : 0;
  m->weights = c->st->dconst_bytes;
  m->activations = arena;
  m->other = c->dev_bytes - arena;
}

static void *cuda_input_buffer(void *p, int index, size_t *bytes) {
  const cu_ctx *c = p;
  const cu_state *st = c->st;
  if (index < 0 || index >= st->g->n_inputs || !c->pin_io) return NULL;
  *bytes = (size_t)st->io_nbytes[index];
  return (char *)c->pin_io + st->io_off[index];
}

static void cuda_last_timing(void *p, ri__run_timing *t) {
  const cu_ctx *c = p;
  t->h2d_ms = c->last_h2d_ms;
  t->compute_ms = c->last_compute_ms;
  t->d2h_ms = c->last_d2h_ms;
  t->enqueue_ms = c->last_enqueue_ms;
}

/* "cuda:sm_<major><minor>:<device name>": kernels and tactics depend on the architecture, and tactics picked
 * at build on one GPU model are not those of another. */
static ri_status cuda_fingerprint(int index, char *buf, size_t cap, ri__err *err) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    return ri__err_set(err, RI_ERR_DEVICE, "cudaGetDeviceCount failed: %s (%d) while looking for cuda:%d",
                       cudaGetErrorString(e), (int)e, index);
  if (index < 0 || index >= count)
    return ri__err_set(err, RI_ERR_DEVICE, "device cuda:%d does not exist (%d CUDA device%s found)", index,
                       count, count == 1 ? "" : "s");
  struct cudaDeviceProp prop;
  e = cudaGetDeviceProperties(&prop, index);
  if (e != cudaSuccess)
    return ri__err_set(err, RI_ERR_DEVICE, "cudaGetDeviceProperties failed: %s (%d) on cuda:%d",
                       cudaGetErrorString(e), (int)e, index);
  snprintf(buf, cap, "cuda:sm_%d%d:%s", prop.major, prop.minor, prop.name);
  return RI_OK;
}

static int cuda_device_count(void) {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

const ri__backend_ops ri__cuda_backend = {
    .name = "cuda",
    .prepare = cuda_prepare,
    .release = cuda_release,
    .ctx_create = cuda_ctx_create,
    .ctx_destroy = cuda_ctx_destroy,
    .run = cuda_run,
    .node_impl = cuda_node_impl,
    .node_tactic = cuda_node_tactic,
    .set_timing = cuda_set_timing,
    .last_timing = cuda_last_timing,
    .fingerprint = cuda_fingerprint,
    .device_count = cuda_device_count,
    .memory = cuda_memory,
    .input_buffer = cuda_input_buffer,
    .run_items = cuda_run_items,
};

/* ---- hooks for tools (cuda_api.h) ------------------------------------------------------------------------
 */

static cu_ctx *ctx_of(ri_context_t *ctx) {
  if (!ctx || !ctx->e || ctx->e->be != &ri__cuda_backend) return NULL;
  return ctx->be_ctx;
}

ri_status ri__cuda_context_set_timing(ri_context_t *ctx, int on) {
  cu_ctx *c = ctx_of(ctx);
  if (!c) return RI_ERR_INVALID_ARG;
  c->timing = on != 0;
  return RI_OK;
}

ri_status ri__cuda_context_last_timing(ri_context_t *ctx, float *compute_ms, int *graph) {
  cu_ctx *c = ctx_of(ctx);
  if (!c || !compute_ms) return RI_ERR_INVALID_ARG;
  *compute_ms = c->last_compute_ms;
  if (graph) *graph = c->last_was_graph;
  return RI_OK;
}

int ri__cuda_engine_side_nodes(ri_engine_t *e) {
  if (!e || e->be != &ri__cuda_backend || !e->be_state) return -1;
  return ((const cu_state *)e->be_state)->n_side;
}
