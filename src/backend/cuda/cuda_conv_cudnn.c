/* The cuDNN side of the CUDA backend's convolutions, per context: descriptors, and the one algorithm every
 * batch size runs with (stored in the engine at build, or searched at the maximum batch and checked for
 * batch invariance when the context is created). Contract and the rest of the op: cuda_op_conv.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_conv.h"
#include "core/alloc.h"
#include "core/half.h"
#include "graph/op.h"

void ri__cu_conv_ctx_free(cu_ctx *c, int ni) {
  const conv_aux *a = c->st->nodes[ni].aux;
  if (a && a->gemm && a->lt) {
    ri__cu_conv_lt_ctx_free(c, ni);
    return;
  }
  conv_ctx *k = c->node_ctx[ni];
  if (!k) return;
  if (k->x) cudnnDestroyTensorDescriptor(k->x);
  if (k->y) cudnnDestroyTensorDescriptor(k->y);
  if (k->w) cudnnDestroyFilterDescriptor(k->w);
  if (k->conv) cudnnDestroyConvolutionDescriptor(k->conv);
  ri__free(k);
  c->node_ctx[ni] = NULL;
}

/* Sets the tensor and convolution descriptors for one geometry. */
ri_status ri__cu_conv_set_descs(cu_ctx *c, int ni, const conv_geo *geo, ri__err *err) {
  const cu_state *st = c->st;
  const conv_aux *a = st->nodes[ni].aux;
  const ri__conv_params *p = st->g->nodes[ni].params;
  conv_ctx *k = c->node_ctx[ni];
  cudnnTensorFormat_t fmt = a->nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  cudnnDataType_t dt = st->fp16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
  int64_t hp = geo->ih + geo->ex_t + geo->ex_b, wp = geo->iw + geo->ex_l + geo->ex_r;
  if (geo->n > INT32_MAX || geo->c > INT32_MAX || hp > INT32_MAX || wp > INT32_MAX)
    return ri__cu_unsupported(err, st, ni, "an input beyond cuDNN's 32-bit dimensions");
  CU_DNN(cudnnSetTensor4dDescriptor(k->x, fmt, dt, (int)geo->n, (int)ri__cu_conv_cudnn_channels(a, geo),
                                    (int)hp, (int)wp));
  CU_DNN(cudnnSetTensor4dDescriptor(k->y, fmt, dt, (int)geo->n, (int)a->m, (int)geo->oh, (int)geo->ow));
  CU_DNN(cudnnSetConvolution2dDescriptor(k->conv, (int)geo->sym_h, (int)geo->sym_w, (int)p->win.stride[0],
                                         (int)p->win.stride[1], (int)p->win.dilation[0],
                                         (int)p->win.dilation[1], CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CU_DNN(cudnnSetConvolutionGroupCount(k->conv, (int)a->group));
  return RI_OK;
}

/* Chooses from perf results sorted best first: the first successful algorithm whose workspace fits. fp32
 * engines skip results that used tensor-op math (TF32) and always run with CUDNN_FMA_MATH, so that results
 * keep fp32 accuracy; fp16 engines run each algorithm with the math type it was timed with. */
static int choose(const cu_state *st, const cudnnConvolutionFwdAlgoPerf_t *perf, int n, size_t ws_limit,
                  algo_slot *out, int *from) {
  for (int i = *from; i < n; i++) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > ws_limit) continue;
    int tensor_op =
        perf[i].mathType == CUDNN_TENSOR_OP_MATH || perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    if (!st->fp16 && tensor_op) continue;
    out->found = 1;
    out->algo = perf[i].algo;
    out->math = st->fp16 ? perf[i].mathType : CUDNN_FMA_MATH;
    out->ws = perf[i].memory;
    out->ms = perf[i].time;
    *from = i + 1;
    return 1;
  }
  *from = n;
  return 0;
}

/* Runs the convolution at batch n with the candidate's algorithm on the descriptors of geometry g at that
 * batch. *ran is 0 when cuDNN refuses it there (or its workspace does not fit); *ws_out is its workspace. */
static ri_status run_at(cu_ctx *c, int ni, const conv_geo *g, int n, const algo_slot *cand, const void *x,
                        const void *w, void *y, int *ran, size_t *ws_out, ri__err *err) {
  const cu_state *st = c->st;
  conv_ctx *k = c->node_ctx[ni];
  conv_geo gn = *g;
  gn.n = n;
  *ran = 0;
  RI__TRY(ri__cu_conv_set_descs(c, ni, &gn, err));
  CU_DNN(cudnnSetConvolutionMathType(k->conv, cand->math));
  size_t ws = 0;
  if (cudnnGetConvolutionForwardWorkspaceSize(c->cudnn, k->x, k->w, k->conv, k->y, cand->algo, &ws) !=
          CUDNN_STATUS_SUCCESS ||
      ws > c->ws_bytes)
    return RI_OK;
  const float one = 1.f, zero = 0.f;
  if (cudnnConvolutionForward(c->cudnn, &one, k->x, x, k->w, w, k->conv, cand->algo, c->ws, ws, &zero, k->y,
                              y) != CUDNN_STATUS_SUCCESS) {
    (void)cudaGetLastError();
    return RI_OK;
  }
  *ws_out = ws;
  *ran = 1;
  return RI_OK;
}

/* The runs of batch_invariant: image img alone (its output into ref), then at the first and last position
 * of each batch size, each output compared with ref. */
static ri_status check_runs(cu_ctx *c, int ni, const conv_geo *g, const algo_slot *cand, void *x,
                            const void *w, void *y, const unsigned char *img, unsigned char *ref,
                            unsigned char *got, size_t in_img, size_t out_img, int *ok, size_t *ws_max,
                            ri__err *err) {
  const cu_state *st = c->st;
  int ran = 0;
  size_t ws = 0;
  CU_RT(cudaMemsetAsync(x, 0, (size_t)g->n * in_img, c->stream));
  CU_RT(cudaMemcpyAsync(x, img, in_img, cudaMemcpyHostToDevice, c->stream));
  RI__TRY(run_at(c, ni, g, 1, cand, x, w, y, &ran, &ws, err));
  if (!ran) return RI_OK;
  CU_RT(cudaMemcpyAsync(ref, y, out_img, cudaMemcpyDeviceToHost, c->stream));
  CU_RT(cudaStreamSynchronize(c->stream));
  *ws_max = ws;
  const int sizes[4] = {2, 3, 8, (int)g->n};
  for (int t = 0; t < 4; t++) {
    int n = sizes[t];
    if (n > g->n || (t < 3 && n == g->n)) continue;
    CU_RT(cudaMemcpyAsync((char *)x + (size_t)(n - 1) * in_img, img, in_img, cudaMemcpyHostToDevice,
                          c->stream));
    RI__TRY(run_at(c, ni, g, n, cand, x, w, y, &ran, &ws, err));
    if (!ran) return RI_OK;
    if (ws > *ws_max) *ws_max = ws;
    for (int pos = 0; pos < 2; pos++) {
      CU_RT(cudaMemcpyAsync(got, (char *)y + (pos ? (size_t)(n - 1) * out_img : 0), out_img,
                            cudaMemcpyDeviceToHost, c->stream));
      CU_RT(cudaStreamSynchronize(c->stream));
      if (memcmp(got, ref, out_img) != 0) return RI_OK;
    }
  }
  *ok = 1;
  return RI_OK;
}

/* Whether the candidate gives an image inside batches of 2, 3, 8 and the maximum (at the first and the last
 * position) the bits it gives the image alone, on pseudo-random data written into x (which holds the
 * maximum batch's input) at those positions. cuDNN promises no such thing, and on an H200 some fp32
 * algorithms chosen for ResNet-50 broke it: candidates that fail are passed over. *ws_max: the most
 * workspace the runs needed. */
static ri_status batch_invariant(cu_ctx *c, int ni, const conv_geo *g, const algo_slot *cand, void *x,
                                 const void *w, void *y, int *ok, size_t *ws_max, ri__err *err) {
  const cu_state *st = c->st;
  const conv_aux *a = st->nodes[ni].aux;
  size_t es = st->fp16 ? 2 : 4;
  size_t in_img =
      (size_t)(ri__cu_conv_cudnn_channels(a, g) * (g->ih + g->ex_t + g->ex_b) * (g->iw + g->ex_l + g->ex_r)) *
      es;
  size_t out_img = (size_t)(a->m * g->oh * g->ow) * es;
  *ok = 0;
  *ws_max = 0;
  unsigned char *img = ri__malloc(in_img), *ref = ri__malloc(out_img), *got = ri__malloc(out_img);
  if (!img || !ref || !got) {
    ri__free(img);
    ri__free(ref);
    ri__free(got);
    return RI__OOM(err);
  }
  uint32_t r = 0x9e3779b9u ^ (uint32_t)ni;
  for (size_t i = 0; i < in_img / es; i++) {
    r ^= r << 13, r ^= r >> 17, r ^= r << 5;
    float f = (float)(r >> 8) / (float)(1u << 24) * 2.f - 1.f;
    if (st->fp16) {
      uint16_t h = ri__float_to_half(f);
      memcpy(img + i * 2, &h, 2);
    } else {
      memcpy(img + i * 4, &f, 4);
    }
  }
  ri_status s = check_runs(c, ni, g, cand, x, w, y, img, ref, got, in_img, out_img, ok, ws_max, err);
  ri__free(img);
  ri__free(ref);
  ri__free(got);
  return s;
}

/* Searches an algorithm for the descriptors as set, with x, w, y device buffers for timing. */
static ri_status search(cu_ctx *c, int ni, const conv_geo *geo, void *x, const void *w, void *y,
                        algo_slot *slot, ri__err *err) {
  const cu_state *st = c->st;
  conv_ctx *k = c->node_ctx[ni];
  int batch = (int)geo->n;
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int count = 0;
  const char *mode = getenv("RI_CUDA_CONV_ALGO");
  CU_DNN(cudnnSetConvolutionMathType(k->conv, st->fp16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
  /* A failed search is not an error: the heuristics, then implicit GEMM, stand in. A geometry cuDNN
   * cannot run at all fails in cudnnConvolutionForward with cuDNN's own message. */
  cudnnStatus_t e = CUDNN_STATUS_NOT_SUPPORTED;
  if (mode && *mode >= '0' && *mode <= '7' && !mode[1]) {
    /* One algorithm for every convolution (for measurements); implicit GEMM where it does not apply. */
    memset(slot, 0, sizeof *slot);
    slot->found = 1;
    slot->algo = (cudnnConvolutionFwdAlgo_t)(*mode - '0');
    slot->math = st->fp16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
    CU_DNN(cudnnSetConvolutionMathType(k->conv, slot->math));
    if (cudnnGetConvolutionForwardWorkspaceSize(c->cudnn, k->x, k->w, k->conv, k->y, slot->algo, &slot->ws) !=
            CUDNN_STATUS_SUCCESS ||
        slot->ws > c->ws_bytes) {
      slot->algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
      slot->ws = 0;
    }
    slot->ws_batch = batch;
    conv_geo one = *geo;
    one.n = 1;
    RI__TRY(ri__cu_conv_set_descs(c, ni, &one, err));
    if (cudnnGetConvolutionForwardWorkspaceSize(c->cudnn, k->x, k->w, k->conv, k->y, slot->algo,
                                                &slot->ws1) != CUDNN_STATUS_SUCCESS ||
        slot->ws1 > c->ws_bytes)
      slot->ws1 = 0;
    RI__TRY(ri__cu_conv_set_descs(c, ni, geo, err));
    size_t need = slot->ws > slot->ws1 ? slot->ws : slot->ws1;
    if (need > c->ws_need) c->ws_need = need;
    return RI_OK;
  }
  if (!mode || strcmp(mode, "heuristic") != 0)
    e = cudnnFindConvolutionForwardAlgorithmEx(c->cudnn, k->x, x, k->w, w, k->conv, k->y, y,
                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf, c->ws,
                                               c->ws_bytes);
  if (e != CUDNN_STATUS_SUCCESS)
    e = cudnnGetConvolutionForwardAlgorithm_v7(c->cudnn, k->x, k->w, k->conv, k->y,
                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf);
  if (e != CUDNN_STATUS_SUCCESS) count = 0;
  /* Clear a non-sticky error that a failed trial left behind, so that the next launch check does not
   * report it; sticky errors surface at the run's synchronization anyway. */
  (void)cudaGetLastError();
  /* The fastest candidate that passes the batch-invariance check; then implicit GEMM (no workspace, every
   * geometry cuDNN accepts); then, when that fails the check too, every image alone with it.
   * RI_CUDA_CONV_CHECK=0 skips the check (the fastest candidate as cuDNN ranks them). */
  const char *chk = getenv("RI_CUDA_CONV_CHECK");
  int check = batch > 1 && !(chk && strcmp(chk, "0") == 0);
  memset(slot, 0, sizeof *slot);
  algo_slot cand;
  memset(&cand, 0, sizeof cand);
  int from = 0, ok = 0;
  size_t ws_max = 0, ws_run = 0;
  while (!ok && choose(st, perf, count, c->ws_bytes, &cand, &from)) {
    ok = 1;
    if (check) RI__TRY(batch_invariant(c, ni, geo, &cand, x, w, y, &ok, &ws_run, err));
  }
  if (!ok) {
    memset(&cand, 0, sizeof cand);
    cand.found = 1;
    cand.algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    cand.math = st->fp16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
    ok = 1;
    if (check) RI__TRY(batch_invariant(c, ni, geo, &cand, x, w, y, &ok, &ws_run, err));
    cand.per_image = !ok;
  }
  *slot = cand;
  if (ok) ws_max = ws_run;
  /* Workspace at the maximum batch and at batch 1 (per-image runs), with the descriptors left at the
   * maximum batch. */
  CU_DNN(cudnnSetConvolutionMathType(k->conv, slot->math));
  conv_geo one = *geo;
  one.n = 1;
  RI__TRY(ri__cu_conv_set_descs(c, ni, &one, err));
  if (cudnnGetConvolutionForwardWorkspaceSize(c->cudnn, k->x, k->w, k->conv, k->y, slot->algo, &slot->ws1) !=
          CUDNN_STATUS_SUCCESS ||
      slot->ws1 > c->ws_bytes)
    slot->ws1 = 0;
  RI__TRY(ri__cu_conv_set_descs(c, ni, geo, err));
  if (cudnnGetConvolutionForwardWorkspaceSize(c->cudnn, k->x, k->w, k->conv, k->y, slot->algo, &slot->ws) !=
          CUDNN_STATUS_SUCCESS ||
      slot->ws > c->ws_bytes)
    slot->ws = 0, slot->per_image = 1;
  if (!slot->per_image && slot->ws > ws_max) ws_max = slot->ws;
  if (slot->ws1 > ws_max) ws_max = slot->ws1;
  slot->ws_batch = slot->per_image ? 0 : batch;
  if (ws_max > c->ws_need) c->ws_need = ws_max;
  return RI_OK;
}

/* The algorithm stored in the engine: no search, no check (both ran at build). *ok is 0 when cuDNN refuses it
 * here (the caller searches instead). */
static ri_status use_stored(cu_ctx *c, int ni, const conv_geo *geo, algo_slot *slot, int *ok, ri__err *err) {
  const cu_state *st = c->st;
  const conv_aux *a = st->nodes[ni].aux;
  conv_ctx *k = c->node_ctx[ni];
  *ok = 0;
  memset(slot, 0, sizeof *slot);
  slot->found = 1;
  slot->algo = (cudnnConvolutionFwdAlgo_t)a->dnn.algo;
  slot->math = ri__cu_conv_maths[a->dnn.math & 3];
  slot->per_image = a->dnn.per_image;
  slot->ms = a->dnn.ms;
  CU_DNN(cudnnSetConvolutionMathType(k->conv, slot->math));
  conv_geo one = *geo;
  one.n = 1;
  RI__TRY(ri__cu_conv_set_descs(c, ni, &one, err));
  cudnnStatus_t e1 =
      cudnnGetConvolutionForwardWorkspaceSize(c->cudnn, k->x, k->w, k->conv, k->y, slot->algo, &slot->ws1);
  RI__TRY(ri__cu_conv_set_descs(c, ni, geo, err));
  cudnnStatus_t em =
      cudnnGetConvolutionForwardWorkspaceSize(c->cudnn, k->x, k->w, k->conv, k->y, slot->algo, &slot->ws);
  if (e1 != CUDNN_STATUS_SUCCESS || slot->ws1 > c->ws_bytes) return RI_OK;
  if (em != CUDNN_STATUS_SUCCESS || slot->ws > c->ws_bytes) slot->ws = 0, slot->per_image = 1;
  slot->ws_batch = slot->per_image ? 0 : geo->n > INT32_MAX ? 0 : (int)geo->n;
  size_t need = slot->per_image ? slot->ws1 : (slot->ws > slot->ws1 ? slot->ws : slot->ws1);
  if (need > c->ws_need) c->ws_need = need;
  *ok = 1;
  return RI_OK;
}

ri_status ri__cu_conv_ctx_init(cu_ctx *c, int ni, ri__err *err) {
  const cu_state *st = c->st;
  const conv_aux *a = st->nodes[ni].aux;
  if (a->gemm && a->lt) return ri__cu_conv_lt_ctx_init(c, ni, err);
  if (a->depthwise || a->gemm || a->stem) return RI_OK;
  const ri__graph *g = st->g;
  const ri__node *n = &g->nodes[ni];
  conv_ctx *k = ri__calloc(1, sizeof *k);
  if (!k) return RI__OOM(err);
  c->node_ctx[ni] = k;
  CU_DNN(cudnnCreateTensorDescriptor(&k->x));
  CU_DNN(cudnnCreateTensorDescriptor(&k->y));
  CU_DNN(cudnnCreateFilterDescriptor(&k->w));
  CU_DNN(cudnnCreateConvolutionDescriptor(&k->conv));
  CU_DNN(cudnnSetFilter4dDescriptor(k->w, st->fp16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT,
                                    a->nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW, (int)a->m,
                                    (int)a->cg_pad, (int)a->kh, (int)a->kw));
  /* Search at the maximum batch with the shapes of the engine (inferred at max batch). */
  conv_geo geo;
  ri__cu_conv_geometry(n->params, &g->values[n->inputs[0]].shape, &g->values[n->outputs[0]].shape, &geo);
  RI__TRY(ri__cu_conv_set_descs(c, ni, &geo, err));
  /* Any buffer of the input's size will do for timing: the padded copy lives after the converted inputs. */
  void *x = ri__cu_value_ptr(c, n->inputs[0]);
  if (ri__cu_conv_needs_pad(a, &geo))
    x = (char *)c->scratch + (st->nodes[ni].cvt_bytes + CU_ALIGN - 1) / CU_ALIGN * CU_ALIGN;
  void *y = ri__cu_value_ptr(c, n->outputs[0]);
  const void *w = ri__cu_const_ptr(st, a->w_off);
  if (a->dnn_stored) {
    int ok = 0;
    RI__TRY(use_stored(c, ni, &geo, &k->slot, &ok, err));
    if (ok) return RI_OK;
  }
  return search(c, ni, &geo, x, w, y, &k->slot, err);
}
