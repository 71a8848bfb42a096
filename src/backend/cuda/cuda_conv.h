/* Private to the CUDA backend's convolution (cuda_op_conv.c: preparation, tactics and runs;
 * cuda_conv_cudnn.c: the per-context cuDNN descriptors and algorithm choice): the prepared node data, the
 * per-context data and the geometry of one run. */
#ifndef RI_BACKEND_CUDA_CUDA_CONV_H
#define RI_BACKEND_CUDA_CUDA_CONV_H

#include "backend/cuda/cuda_conv_lt.h"
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/cuda_tactics.h"
#include "graph/ops/conv_params.h"

typedef struct {
  int depthwise; /* own kernel */
  int stem;      /* own direct kernel for few input channels (fp16 engines, k_stemconv.cu) */
  int gemm;      /* own tensor-core implicit GEMM (fp16 NHWC, group 1) */
  int nhwc;
  int64_t w_off, b_off; /* b_off -1 without bias */
  int64_t m, cg, group, kh, kw;
  int64_t cg_pad; /* input channels per group as cuDNN sees them: cg, or cg rounded up to 8 (see below) */
  int64_t ldw;    /* halves per output channel's weight row (NHWC layouts): kh * kw * cg_pad rounded to 8 */
  int seg;        /* tensor-core GEMM: K segment length in 32-deep steps for every batch (0: one segment) */
  int tuned;      /* tensor-core GEMM: tile per batch bucket from a tactic (cuda_tactics.h), else heuristic */
  int tile[RI__CU_TAC_BUCKETS];
  int tf32;        /* fp32 engines: the 3xTF32 tensor-core kernel (k_convgemm_tf32.cu) at every batch */
  float tuned_us;  /* the tactic's timed time at batch 1 */
  char label[200]; /* the node's implementation name with its tactic */
  int dnn_stored;  /* cuDNN: the algorithm comes from the engine (chosen at build), no search */
  ri__cu_dnn_tac dnn;
  /* Depthwise and stem: kernel variant per batch bucket from a tactic (cuda_tactics.h), else 0 */
  int var_tuned;
  int var[RI__CU_TAC_BUCKETS];
  float var_us;
  int dwh; /* depthwise: the half-arithmetic kernel (k_dwconv_h2.cu) at every batch (half accumulation) */
  int stem_hw_ok; /* stem: stem_hw holds the weights for variant 1 (3x3 over 3 channels, m <= 32) */
  ri__cu_stem_host_weights stem_hw;
  /* fp16 1x1 GEMMs: cuBLASLt algorithm (index among the heuristic's first 8) from a tactic
   * (cuda_tactics.h, cuda_conv_lt.c); seg stays the own kernel's, for contexts that cannot run it */
  int lt, lt_algo, lt_tag; /* lt_tag: ri__cu_ltconv_algo_tag of the algorithm chosen at build */
  int lt_pad;              /* the padded form (cuda_conv_lt.h): GEMM into the node's scratch, then scatter */
  float lt_us;             /* its timed time at the maximum batch */
  int64_t bh_off;          /* the bias as half (cuBLASLt with a half output may want it so), -1 none */
  /* weight rows and bias entries stored (w_off, b_off, bh_off): m, or for fp16 1x1 GEMMs m rounded up to 8,
   * zero beyond m (the padded cuBLASLt form's GEMM runs m_rows channels; the own kernels read m) */
  int64_t m_rows;
  /* fp16 1x1 GEMMs: the Hopper wgmma kernel (k_pwgemm_wg.cu) at every batch from a tactic (cuda_tactics.h);
   * wg_on: it runs on this engine's device, else the own kernel with seg at every batch */
  int wg, wg_on;
  int wg_tile[RI__CU_TAC_BUCKETS]; /* ri__cu_tac_tile ids of RI__CU_KIND_WG, | RI__CU_WG_S4: four stages */
  float wg_us;                     /* its timed time at the maximum batch */
} conv_aux;

typedef struct {
  int found;
  cudnnConvolutionFwdAlgo_t algo;
  cudnnMathType_t math;
  int ws_batch; /* batch the workspace size below was queried for */
  size_t ws;
  int per_image; /* every image runs alone (batch-1 descriptors): no algorithm passed the invariance check */
  size_t ws1;    /* workspace at batch 1 */
  float ms;      /* cuDNN's time for it at the maximum batch (0 when not measured) */
} algo_slot;

typedef struct {
  cudnnTensorDescriptor_t x, y;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
  algo_slot slot; /* the algorithm of every batch size */
} conv_ctx;

/* Geometry of one run. ih/iw are the input's; the cuDNN input is ih + ex_t + ex_b by iw + ex_l + ex_r. */
typedef struct {
  int64_t n, c, ih, iw, oh, ow;
  int64_t pads[4]; /* resolved: top, left, bottom, right */
  int64_t sym_h, sym_w, ex_t, ex_l, ex_b, ex_r;
} conv_geo;

/* cuDNN math types by the code stored in a tactic (ri__cu_dnn_tac.math). */
extern const cudnnMathType_t ri__cu_conv_maths[4];

/* Geometry of a run of a node with these input and output shapes. */
void ri__cu_conv_geometry(const ri__conv_params *p, const ri__shape *x, const ri__shape *y, conv_geo *g);
/* The input goes through the pad kernel into scratch: asymmetric pads, or zero channels appended. */
int ri__cu_conv_needs_pad(const conv_aux *a, const conv_geo *g);
/* Channels of the (padded) input that cuDNN reads. */
int64_t ri__cu_conv_cudnn_channels(const conv_aux *a, const conv_geo *g);

/* cuda_conv_cudnn.c: per-context state of a cuDNN convolution node (descriptors, the algorithm of every
 * batch size: stored in the engine, or searched and checked for batch invariance at context creation). */
ri_status ri__cu_conv_ctx_init(cu_ctx *c, int ni, ri__err *err);
void ri__cu_conv_ctx_free(cu_ctx *c, int ni);
/* Sets the node's tensor and convolution descriptors for one geometry. */
ri_status ri__cu_conv_set_descs(cu_ctx *c, int ni, const conv_geo *geo, ri__err *err);

/* cuda_conv_lt.c: the node part of the cuBLASLt tactic. ri__cu_conv_lt_shape: 1 and the problem at `batch`
 * (and the output's slice offset in elements) when node ni can run on cuBLASLt (fp16, 1x1, stride 1, no
 * pads, group 1, NHWC half input, an epilogue cuBLASLt has), else 0. ctx_init makes the node's descriptors
 * and takes the stored algorithm when it runs in this context (ri__cu_conv_lt_active), ctx_free frees
 * them; run launches it at `batch` (y: the output's first element; scratch: the node's, which holds the
 * padded form's buffer). */
int ri__cu_conv_lt_shape(const cu_state *st, int ni, int64_t batch, ri__cu_ltconv_shape *s, int64_t *y_off);
ri_status ri__cu_conv_lt_ctx_init(cu_ctx *c, int ni, ri__err *err);
void ri__cu_conv_lt_ctx_free(cu_ctx *c, int ni);
int ri__cu_conv_lt_active(const cu_ctx *c, int ni);
ri_status ri__cu_conv_lt_run(cu_ctx *c, int ni, int64_t batch, const void *x, const void *w,
                             const float *bias, const void *res, void *y, void *scratch, ri__err *err);

#endif
