/* cuBLASLt for fp16 1x1 convolutions (cuda_conv_lt.c): a tactic next to the own tensor-core GEMM, for the
 * heavy linear 1x1 layers (class/box heads, inverted-residual projections) where cuBLASLt's Hopper kernels
 * may beat k_convgemm.cu's mma.sync (bench/results/ltconv-2026-11-27.txt).
 *
 * The problem of one node: D[M, N] = X[M, K] * W[N, K]^T (+ bias, + residual, then ReLU or nothing),
 * M output pixels, K input channels, N output channels; X the NHWC half input, W the half weights as the
 * engine stores them for the own GEMM (rows of ldw halves). In cuBLASLt's column-major terms (as in
 * cuda_op_gemm.c): D^T (N x M, ld ldy) = op(A) * B with A = W read transposed (K x N, ld ldw) and B = X^T
 * (K x M, ld K). A dense output folds the images into M; an output that is a Concat slice with its own
 * image stride (SSD heads) runs as a strided batch of `n` products of M = H*W each. A fused residual is C
 * with beta = 1 (dense half, ld N). Output half (C/D 16F) or float32 (C/D 32F, a graph output written
 * directly); A/B 16F and CUBLAS_COMPUTE_32F in both cases.
 *
 * The padded form (shape.pad): for outputs that are not 16-byte aligned per row or image (an odd Concat
 * slice: SSD's class predictors write [n, 1917, 91] float32 rows at pitch 273 / 546), where cuBLASLt's
 * heuristic falls back to slow kernels, the GEMM runs N = m_pad channels (m rounded up to 8: an odd N
 * alone keeps cuBLASLt on slow kernels even with an aligned leading dimension, bench_ltpad) into a dense
 * half buffer (rows of m_pad halves, 16-byte aligned), with the same bias and ReLU epilogue, images folded
 * into M. The weights must then hold m_pad rows of ldw halves and the bias m_pad entries, zero beyond m
 * (the engine stores them so for every fp16 1x1 GEMM node; columns m .. m_pad of the buffer come out 0, or
 * ReLU(0), and are never read). Then k_scatter_cols.cu copies the first m columns of each row into the
 * slice, widened to float32 when the output is (values are rounded to half once, as the own kernels' are).
 * Each output element is its own dot product: the zero rows change no value of the first m columns. No
 * residual in this form.
 *
 * The core below knows nothing of engines: the backend (cuda_conv_lt.c's node part, cuda_tune.c) and
 * tests/gpu/test_cuda_ltconv.c drive it the same way. Every call returns the cuBLASLt status and, on
 * failure, the name of the failing cuBLASLt function in *call. */
#ifndef RI_BACKEND_CUDA_CUDA_CONV_LT_H
#define RI_BACKEND_CUDA_CUDA_CONV_LT_H

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <stdint.h>

/* Candidates asked of the heuristic; the tactic stores an index among them. */
#define RI__CU_LT_MAX_ALGOS 8
/* Workspace the heuristic may plan for: the context's cuBLASLt workspace (cuda_backend.c). */
#define RI__CU_LT_WS_BYTES ((size_t)32 << 20)

typedef struct {
  int64_t n;                 /* images */
  int64_t rows;              /* output pixels per image (H * W) */
  int64_t k;                 /* input channels: halves per input pixel */
  int64_t m;                 /* output channels */
  int64_t ldw;               /* halves per weight row (>= k) */
  int64_t ldy, y_img_stride; /* output elements between pixels and between images */
  int act;                   /* ri__act: RI__ACT_NONE or RI__ACT_RELU; in the padded form any (below) */
  float act_a, act_b;        /* the activation's parameters (clip bounds, leaky slope, hard sigmoid) */
  int y_f32;                 /* output float32, else half */
  int has_bias, has_res;     /* bias (float32 values); residual (dense half, ld m) */
  uint32_t y_align;          /* bytes the output's first element is aligned to (a Concat slice's offset) */
  int pad;                   /* the padded form (above): GEMM into a dense half buffer, then the scatter */
} ri__cu_ltconv_shape;

typedef struct {
  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t la, lb, lc, ld; /* lc: the residual's (NULL without one: C is D) */
  ri__cu_ltconv_shape s;                 /* as created; s.n follows set_batch */
  ri__cu_ltconv_shape g; /* the GEMM's: s, or in the padded form m_pad channels into the dense half buffer */
  int strided;           /* images as a strided batch (else folded into M) */
  int bias16;            /* bias read as half: cuBLASLt refused float32 bias with half D */
} ri__cu_ltconv;

/* NULL when the shape's epilogue and types are what cuBLASLt runs, else the reason (a static string):
 * activations other than ReLU in the direct form (clip / ReLU6, sigmoid...: no such epilogue; the padded
 * form applies them in its scatter), a residual with a float32 output (C would be float32 too), a residual
 * in the padded form, dimensions beyond 32 bits. The geometry
 * (1x1, stride 1, no pads, group 1, NHWC half input) is the caller's to check. */
const char *ri__cu_ltconv_refusal(const ri__cu_ltconv_shape *s);

/* 1 when the output form is not 16-byte aligned per row or image (ldy, y_img_stride or m not a multiple of
 * 8 elements, or of 4 for float32 outputs, or the first element below 16 bytes of alignment): where the
 * padded form is worth timing. */
int ri__cu_ltconv_misaligned(const ri__cu_ltconv_shape *s);
/* The padded form's GEMM channels and buffer row (m rounded up to 8 halves), and its bytes at s->n images. */
int64_t ri__cu_ltconv_pad_ld(const ri__cu_ltconv_shape *s);
size_t ri__cu_ltconv_pad_bytes(const ri__cu_ltconv_shape *s);

/* Creates the descriptors for s (at its n). On failure the object is left destroyable. */
cublasStatus_t ri__cu_ltconv_create(ri__cu_ltconv *p, const ri__cu_ltconv_shape *s, const char **call);
void ri__cu_ltconv_destroy(ri__cu_ltconv *p);
/* Sets the layouts to `n` images (at most the created n). */
cublasStatus_t ri__cu_ltconv_set_batch(ri__cu_ltconv *p, int64_t n, const char **call);

/* The heuristic's first RI__CU_LT_MAX_ALGOS algorithms for the layouts as set (the maximum batch, when the
 * index is to be stored), with a workspace of at most RI__CU_LT_WS_BYTES, no reduction scheme allowed and
 * the alignments the shape promises. With a half output it first asks for a float32 bias; when cuBLASLt has
 * nothing for that, it asks again with the bias as half (p->bias16 then set: the caller passes bias_h).
 * *count 0 (and CUBLAS_STATUS_SUCCESS) when cuBLASLt has no algorithm. The same shape on the same device
 * and library gives the same list, so an index chosen at build names the same algorithm in any context. */
cublasStatus_t ri__cu_ltconv_algos(cublasLtHandle_t h, ri__cu_ltconv *p,
                                   cublasLtMatmulHeuristicResult_t res[RI__CU_LT_MAX_ALGOS], int *count,
                                   const char **call);
/* 1 when the algorithm sums K in one pass per output (split-K 1, no reduction scheme): what batch
 * invariance allows. */
int ri__cu_ltconv_invariant(const cublasLtMatmulAlgo_t *a);
/* A 4-bit tag of the algorithm's configuration (id, tile, stages, split-K, reduction, swizzle, custom
 * option, inner and cluster shapes), stored with the tactic: a context whose heuristic list names another
 * algorithm at the stored index sees a different tag (15 times in 16) and falls back. */
unsigned ri__cu_ltconv_algo_tag(const cublasLtMatmulAlgo_t *a);
/* cublasLtMatmulAlgoCheck of the algorithm on the layouts as set; *ws its workspace. */
cublasStatus_t ri__cu_ltconv_check(cublasLtHandle_t h, ri__cu_ltconv *p, const cublasLtMatmulAlgo_t *a,
                                   size_t *ws, const char **call);
/* One launch on the layouts as set: y is the output's first element (slice offset applied), w the weights
 * (m rows of ldw halves; in the padded form m_pad rows, zero beyond m), bias the float32 (bias_f) or half
 * (bias_h, when p->bias16) bias (m entries; m_pad in the padded form, zero beyond m), res the residual
 * (NULL without); pad_buf the padded form's buffer (ri__cu_ltconv_pad_bytes at the batch run,
 * CU_ALIGN-aligned; NULL otherwise). In the padded form a failed scatter launch returns
 * CUBLAS_STATUS_EXECUTION_FAILED with *call naming it. */
cublasStatus_t ri__cu_ltconv_run(cublasLtHandle_t h, ri__cu_ltconv *p, const cublasLtMatmulAlgo_t *a,
                                 cudaStream_t s, const void *x, const void *w, const float *bias_f,
                                 const void *bias_h, const void *res, void *y, void *pad_buf, void *ws,
                                 size_t ws_bytes, const char **call);

#endif
