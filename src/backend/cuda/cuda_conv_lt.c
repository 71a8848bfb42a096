/* cuBLASLt for fp16 1x1 convolutions: the core (descriptors, heuristic, checks, launch; cuda_conv_lt.h) and
 * the node part (per-context state of a convolution whose tactic names a cuBLASLt algorithm).
 *
 * Batch invariance: an image's output must not depend on the batch it runs in. A node runs one algorithm
 * for every batch size: the tuner (cuda_tune.c) picks it among the heuristic's first RI__CU_LT_MAX_ALGOS
 * for the maximum batch's M, only algorithms that sum K in one pass (split-K 1, no reduction scheme; the
 * preference's reduction-scheme mask is "none" as well), and stores its index. A context asks the heuristic
 * again for the same problem, takes the stored index, and checks it (cublasLtMatmulAlgoCheck) at batch 1
 * and at the maximum batch; when the algorithm is missing, refused, needs more than the context's
 * workspace, or the buffers lack the alignment the query promised, the node runs the own kernel with its
 * stored K segment length at every batch of that context (never a mix: the two sum in different orders).
 * Whether one algorithm with a fixed configuration gives an image the same bits at every M is cuBLASLt's
 * behaviour, not a documented promise: tests/gpu/test_cuda_ltconv.c and test_cuda_batch_invariance
 * (RI_CUDA_LTCONV=force) check it; both passed on an H200 with cuBLASLt 13.1 (2026-11-27).
 *
 * The padded form (cuda_conv_lt.h) runs the GEMM over m rounded up to 8 channels (the weight rows and bias
 * entries that conv_prep stores for every fp16 1x1 GEMM node, zero beyond m: conv_aux.m_rows) into the
 * node's scratch (cu_node.op_scratch, sized by ri__cu_conv_set_lt_tactic for the maximum batch) and the
 * scatter kernel after it; its output slice needs no alignment. */
#include <string.h>

#include "backend/cuda/cuda_conv.h"
#include "backend/cuda/cuda_conv_lt.h"
#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"

/* ---- core ---- */

#define LT_TRY(expr, name)                                                                                   \
  do {                                                                                                       \
    cublasStatus_t lt_e_ = (expr);                                                                           \
    if (lt_e_ != CUBLAS_STATUS_SUCCESS) {                                                                    \
      *call = (name);                                                                                        \
      return lt_e_;                                                                                          \
    }                                                                                                        \
  } while (0)

const char *ri__cu_ltconv_refusal(const ri__cu_ltconv_shape *s) {
  if (s->act != RI__ACT_NONE && s->act != RI__ACT_RELU &&
      !(s->pad && s->act > RI__ACT_RELU && s->act <= RI__ACT_HARD_SWISH))
    return "an activation cuBLASLt has no epilogue for";
  if (s->has_res && s->y_f32) return "a residual with a float32 output";
  if (s->has_res && s->pad) return "a residual in the padded form";
  if (s->n < 1 || s->rows < 1 || s->k < 1 || s->m < 1 || s->ldw < s->k || s->ldy < s->m) return "no work";
  if (s->n * s->rows > INT32_MAX || s->k > INT32_MAX || s->m > INT32_MAX || s->ldw > INT32_MAX ||
      s->ldy > INT32_MAX)
    return "dimensions beyond 32 bits";
  if (s->y_img_stride < s->rows * s->ldy) return "overlapping output images";
  return NULL;
}

int ri__cu_ltconv_misaligned(const ri__cu_ltconv_shape *s) {
  const int64_t e = s->y_f32 ? 4 : 8; /* elements per 16 bytes */
  return s->ldy % e != 0 || s->y_img_stride % e != 0 || s->m % 8 != 0 || (s->y_align ? s->y_align : 2) < 16;
}

int64_t ri__cu_ltconv_pad_ld(const ri__cu_ltconv_shape *s) { return (s->m + 7) / 8 * 8; }

size_t ri__cu_ltconv_pad_bytes(const ri__cu_ltconv_shape *s) {
  return (size_t)(s->n * s->rows) * (size_t)ri__cu_ltconv_pad_ld(s) * 2;
}

static cublasStatus_t set_batch_attr(cublasLtMatrixLayout_t l, int32_t count, int64_t stride) {
  cublasStatus_t e =
      cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count);
  if (e == CUBLAS_STATUS_SUCCESS)
    e = cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                         sizeof stride);
  return e;
}

cublasStatus_t ri__cu_ltconv_set_batch(ri__cu_ltconv *p, int64_t n, const char **call) {
  const ri__cu_ltconv_shape *s = &p->g;
  uint64_t cols = (uint64_t)(p->strided ? s->rows : n * s->rows);
  int32_t count = p->strided ? (int32_t)n : 1;
  const char *attr = "cublasLtMatrixLayoutSetAttribute";
  LT_TRY(cublasLtMatrixLayoutSetAttribute(p->lb, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols), attr);
  LT_TRY(cublasLtMatrixLayoutSetAttribute(p->ld, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols), attr);
  if (p->lc)
    LT_TRY(cublasLtMatrixLayoutSetAttribute(p->lc, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols), attr);
  if (p->strided) {
    /* the weights are shared by every image: stride 0 */
    LT_TRY(set_batch_attr(p->la, count, 0), attr);
    LT_TRY(set_batch_attr(p->lb, count, s->rows * s->k), attr);
    LT_TRY(set_batch_attr(p->ld, count, s->y_img_stride), attr);
    if (p->lc) LT_TRY(set_batch_attr(p->lc, count, s->rows * s->m), attr);
  }
  p->s.n = p->g.n = n;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t ri__cu_ltconv_create(ri__cu_ltconv *p, const ri__cu_ltconv_shape *s, const char **call) {
  memset(p, 0, sizeof *p);
  p->s = p->g = *s;
  if (s->pad) {
    /* the GEMM: m_pad channels (zero weight rows and bias beyond m, the caller's), its output dense half
     * rows of m_pad at the scratch's alignment, images folded into M */
    p->g.m = ri__cu_ltconv_pad_ld(s);
    p->g.ldy = p->g.m;
    p->g.y_img_stride = s->rows * p->g.ldy;
    p->g.y_f32 = 0;
    p->g.y_align = CU_ALIGN;
    p->g.pad = 0;
    /* ReLU stays the GEMM's epilogue (relu then rounding to half equals rounding then relu); any other
     * activation is the scatter's, on the widened half */
    if (s->act != RI__ACT_RELU) p->g.act = RI__ACT_NONE;
  }
  s = &p->g;
  p->strided = s->y_img_stride != s->rows * s->ldy;
  cudaDataType yt = s->y_f32 ? CUDA_R_32F : CUDA_R_16F;
  LT_TRY(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  cublasLtEpilogue_t ep = s->act == RI__ACT_RELU
                              ? (s->has_bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU)
                          : s->has_bias ? CUBLASLT_EPILOGUE_BIAS
                                        : CUBLASLT_EPILOGUE_DEFAULT;
  const char *attr = "cublasLtMatmulDescSetAttribute";
  LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), attr);
  LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), attr);
  LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep), attr);
  if (s->has_bias) {
    /* float32 bias values, as the own kernel adds them (ri__cu_ltconv_algos may fall back to half) */
    int32_t bt = CUDA_R_32F;
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt), attr);
  }
  const char *mk = "cublasLtMatrixLayoutCreate";
  LT_TRY(cublasLtMatrixLayoutCreate(&p->la, CUDA_R_16F, (uint64_t)s->k, (uint64_t)s->m, s->ldw), mk);
  LT_TRY(cublasLtMatrixLayoutCreate(&p->lb, CUDA_R_16F, (uint64_t)s->k, (uint64_t)s->rows, s->k), mk);
  LT_TRY(cublasLtMatrixLayoutCreate(&p->ld, yt, (uint64_t)s->m, (uint64_t)s->rows, s->ldy), mk);
  if (s->has_res) LT_TRY(cublasLtMatrixLayoutCreate(&p->lc, yt, (uint64_t)s->m, (uint64_t)s->rows, s->m), mk);
  return ri__cu_ltconv_set_batch(p, s->n, call);
}

void ri__cu_ltconv_destroy(ri__cu_ltconv *p) {
  if (p->la) cublasLtMatrixLayoutDestroy(p->la);
  if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
  if (p->lc) cublasLtMatrixLayoutDestroy(p->lc);
  if (p->ld) cublasLtMatrixLayoutDestroy(p->ld);
  if (p->op) cublasLtMatmulDescDestroy(p->op);
  memset(p, 0, sizeof *p);
}

/* The preference of every query: workspace, no reduction scheme, and the alignments the buffers have: the
 * weights (constant blob), the input and the residual (arena or scratch blocks) at CU_ALIGN, the output at
 * what its slice offset leaves. The bias pointer's alignment comes from the descriptor (set by the caller
 * to a CU_ALIGN-aligned address or left NULL). */
static cublasStatus_t make_pref(const ri__cu_ltconv *p, cublasLtMatmulPreference_t *pref, const char **call) {
  LT_TRY(cublasLtMatmulPreferenceCreate(pref), "cublasLtMatmulPreferenceCreate");
  uint64_t wsb = RI__CU_LT_WS_BYTES;
  uint32_t none = CUBLASLT_REDUCTION_SCHEME_NONE, al = CU_ALIGN, ald = p->g.y_align ? p->g.y_align : 2;
  uint32_t alc = p->lc ? al : ald;
  const char *attr = "cublasLtMatmulPreferenceSetAttribute";
  LT_TRY(
      cublasLtMatmulPreferenceSetAttribute(*pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb),
      attr);
  LT_TRY(cublasLtMatmulPreferenceSetAttribute(*pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &none,
                                              sizeof none),
         attr);
  LT_TRY(
      cublasLtMatmulPreferenceSetAttribute(*pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al),
      attr);
  LT_TRY(
      cublasLtMatmulPreferenceSetAttribute(*pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al),
      attr);
  LT_TRY(cublasLtMatmulPreferenceSetAttribute(*pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &alc,
                                              sizeof alc),
         attr);
  LT_TRY(cublasLtMatmulPreferenceSetAttribute(*pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ald,
                                              sizeof ald),
         attr);
  return CUBLAS_STATUS_SUCCESS;
}

/* A stand-in bias address for the queries: the heuristic reads the pointer's alignment only. */
#define LT_QUERY_BIAS ((const void *)(uintptr_t)CU_ALIGN)

static cublasStatus_t query(cublasLtHandle_t h, ri__cu_ltconv *p,
                            cublasLtMatmulHeuristicResult_t res[RI__CU_LT_MAX_ALGOS], int *count,
                            const char **call) {
  cublasLtMatmulPreference_t pref = NULL;
  *count = 0;
  cublasStatus_t e = make_pref(p, &pref, call);
  if (e == CUBLAS_STATUS_SUCCESS && p->s.has_bias) {
    const void *bp = LT_QUERY_BIAS;
    e = cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp);
    if (e != CUBLAS_STATUS_SUCCESS) *call = "cublasLtMatmulDescSetAttribute";
  }
  if (e == CUBLAS_STATUS_SUCCESS) {
    memset(res, 0, sizeof *res * RI__CU_LT_MAX_ALGOS);
    e = cublasLtMatmulAlgoGetHeuristic(h, p->op, p->la, p->lb, p->lc ? p->lc : p->ld, p->ld, pref,
                                       RI__CU_LT_MAX_ALGOS, res, count);
    if (e != CUBLAS_STATUS_SUCCESS) *call = "cublasLtMatmulAlgoGetHeuristic";
  }
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  return e;
}

cublasStatus_t ri__cu_ltconv_algos(cublasLtHandle_t h, ri__cu_ltconv *p,
                                   cublasLtMatmulHeuristicResult_t res[RI__CU_LT_MAX_ALGOS], int *count,
                                   const char **call) {
  p->bias16 = 0;
  cublasStatus_t e = query(h, p, res, count, call);
  /* a problem cuBLASLt does not take is refused with one of these two (no algorithm), not an error */
  int refused = e == CUBLAS_STATUS_NOT_SUPPORTED || e == CUBLAS_STATUS_INVALID_VALUE ||
                (e == CUBLAS_STATUS_SUCCESS && *count < 1);
  if (refused && p->g.has_bias && !p->g.y_f32) {
    /* cublasLt.h: the bias defaults to D's type; some versions take no float32 bias with a half D */
    int32_t bt = CUDA_R_16F;
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt),
           "cublasLtMatmulDescSetAttribute");
    p->bias16 = 1;
    e = query(h, p, res, count, call);
  }
  if (e == CUBLAS_STATUS_NOT_SUPPORTED || e == CUBLAS_STATUS_INVALID_VALUE) {
    *count = 0;
    return CUBLAS_STATUS_SUCCESS;
  }
  for (int i = 0; e == CUBLAS_STATUS_SUCCESS && i < *count; i++)
    if (res[i].state != CUBLAS_STATUS_SUCCESS) *count = i; /* results past a failed one are not usable */
  return e;
}

int ri__cu_ltconv_invariant(const cublasLtMatmulAlgo_t *a) {
  int32_t splitk = 1;
  uint32_t red = CUBLASLT_REDUCTION_SCHEME_NONE;
  size_t wr = 0;
  if (cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk, &wr) !=
          CUBLAS_STATUS_SUCCESS ||
      cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red, sizeof red, &wr) !=
          CUBLAS_STATUS_SUCCESS)
    return 0;
  return splitk <= 1 && red == CUBLASLT_REDUCTION_SCHEME_NONE;
}

unsigned ri__cu_ltconv_algo_tag(const cublasLtMatmulAlgo_t *a) {
  static const cublasLtMatmulAlgoConfigAttributes_t attrs[] = {CUBLASLT_ALGO_CONFIG_ID,
                                                               CUBLASLT_ALGO_CONFIG_TILE_ID,
                                                               CUBLASLT_ALGO_CONFIG_SPLITK_NUM,
                                                               CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME,
                                                               CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING,
                                                               CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION,
                                                               CUBLASLT_ALGO_CONFIG_STAGES_ID,
                                                               CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID,
                                                               CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID};
  uint32_t h = 2166136261u; /* FNV-1a over the values (an attribute this version lacks counts as 0) */
  for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
    uint64_t v = 0;
    size_t need = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(a, attrs[i], NULL, 0, &need) != CUBLAS_STATUS_SUCCESS ||
        need == 0 || need > sizeof v ||
        cublasLtMatmulAlgoConfigGetAttribute(a, attrs[i], &v, need, &need) != CUBLAS_STATUS_SUCCESS)
      v = 0;
    for (int b = 0; b < 8; b++)
      h = (h ^ (uint32_t)(v >> 8 * b & 0xff)) * 16777619u;
  }
  return (h ^ h >> 4 ^ h >> 8 ^ h >> 12 ^ h >> 16 ^ h >> 20 ^ h >> 24 ^ h >> 28) & 15u;
}

cublasStatus_t ri__cu_ltconv_check(cublasLtHandle_t h, ri__cu_ltconv *p, const cublasLtMatmulAlgo_t *a,
                                   size_t *ws, const char **call) {
  cublasLtMatmulHeuristicResult_t r;
  memset(&r, 0, sizeof r);
  if (p->s.has_bias) {
    const void *bp = LT_QUERY_BIAS;
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp),
           "cublasLtMatmulDescSetAttribute");
  }
  LT_TRY(cublasLtMatmulAlgoCheck(h, p->op, p->la, p->lb, p->lc ? p->lc : p->ld, p->ld, a, &r),
         "cublasLtMatmulAlgoCheck");
  *ws = r.workspaceSize;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t ri__cu_ltconv_run(cublasLtHandle_t h, ri__cu_ltconv *p, const cublasLtMatmulAlgo_t *a,
                                 cudaStream_t s, const void *x, const void *w, const float *bias_f,
                                 const void *bias_h, const void *res, void *y, void *pad_buf, void *ws,
                                 size_t ws_bytes, const char **call) {
  void *d = y;
  if (p->s.pad) {
    if (!pad_buf) {
      *call = "the padded form (no buffer)";
      return CUBLAS_STATUS_INVALID_VALUE;
    }
    d = pad_buf;
  }
  if (p->s.has_bias) {
    const void *bp = p->bias16 ? bias_h : (const void *)bias_f;
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp),
           "cublasLtMatmulDescSetAttribute");
  }
  const float one = 1.f, zero = 0.f;
  const int has_c = p->lc && res;
  LT_TRY(cublasLtMatmul(h, p->op, &one, w, p->la, x, p->lb, has_c ? &one : &zero, has_c ? res : d,
                        has_c ? p->lc : p->ld, d, p->ld, a, ws, ws_bytes, s),
         "cublasLtMatmul");
  const int sc_act = p->s.act != p->g.act ? p->s.act : RI__ACT_NONE;
  if (p->s.pad &&
      ri__cu_scatter_cols(s, pad_buf, p->g.ldy, p->s.n * p->s.rows, p->s.rows, p->s.m, y, p->s.y_f32,
                          p->s.ldy, p->s.y_img_stride, sc_act, p->s.act_a, p->s.act_b) != cudaSuccess) {
    *call = "ri__cu_scatter_cols (k_scatter_cols.cu)";
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  return CUBLAS_STATUS_SUCCESS;
}

/* ---- node part ---- */

/* Per-context state of a node with a cuBLASLt tactic. */
typedef struct {
  ri__cu_ltconv p;
  cublasLtMatmulAlgo_t algo;
  int use; /* 0: the stored algorithm does not run here; the own kernel runs every batch */
} lt_ctx;

static uint32_t ptr_align(const void *p) {
  uintptr_t a = (uintptr_t)p;
  uint32_t al = CU_ALIGN;
  while (al > 1 && a % al != 0)
    al >>= 1;
  return al;
}

int ri__cu_conv_lt_shape(const cu_state *st, int ni, int64_t batch, ri__cu_ltconv_shape *s, int64_t *y_off) {
  const cu_node *cn = &st->nodes[ni];
  const ri__node *n = &st->g->nodes[ni];
  const conv_aux *a = cn->aux;
  memset(s, 0, sizeof *s);
  *y_off = 0;
  if (!st->fp16 || n->op != RI__OP_Conv || cn->impl != ri__cu_impl_conv() || cn->skip || !a || !a->gemm ||
      !n->params)
    return 0;
  const ri__conv_params *p = n->params;
  conv_geo geo;
  ri__cu_conv_geometry(p, &st->g->values[n->inputs[0]].shape, &st->g->values[n->outputs[0]].shape, &geo);
  if (a->kh != 1 || a->kw != 1 || a->m_rows < (a->m + 7) / 8 * 8 || p->win.stride[0] != 1 ||
      p->win.stride[1] != 1 || a->group != 1 || geo.pads[0] || geo.pads[1] || geo.pads[2] || geo.pads[3] ||
      a->cg_pad != a->cg || geo.c != a->cg || st->vdt[n->inputs[0]] != RI_DTYPE_FLOAT16 ||
      st->vlayout[n->inputs[0]] != CU_LAYOUT_NHWC)
    return 0;
  const cu_conv_out *co = &cn->co;
  s->n = batch;
  s->rows = geo.oh * geo.ow;
  s->k = a->cg;
  s->m = a->m;
  s->ldw = a->ldw;
  s->ldy = co->ldy > 0 ? co->ldy : a->m;
  s->y_img_stride = co->img_stride > 0 ? co->img_stride : s->rows * s->ldy;
  s->act = co->act;
  s->act_a = co->act_a;
  s->act_b = co->act_b;
  s->y_f32 = co->out_f32;
  s->has_bias = a->b_off >= 0;
  s->has_res = co->res_v >= 0;
  s->y_align = ptr_align((const void *)(uintptr_t)(co->y_off * (co->out_f32 ? 4 : 2)));
  s->pad = a->lt && a->lt_pad;
  *y_off = co->y_off;
  if (ri__cu_ltconv_refusal(s) == NULL) return 1;
  if (a->lt) return 0;
  /* no stored tactic (the tuner asks): the padded form may take what the direct form refuses (an
   * activation it applies in its scatter); s stays the direct form's, tune_lt times the padded one */
  s->pad = 1;
  const int padded = ri__cu_ltconv_refusal(s) == NULL;
  s->pad = 0;
  return padded;
}

ri_status ri__cu_conv_lt_ctx_init(cu_ctx *c, int ni, ri__err *err) {
  const cu_state *st = c->st;
  const ri__node *n = &st->g->nodes[ni];
  const conv_aux *a = st->nodes[ni].aux;
  const cu_conv_out *co = &st->nodes[ni].co;
  lt_ctx *k = ri__calloc(1, sizeof *k);
  if (!k) return RI__OOM(err);
  c->node_ctx[ni] = k;
  ri__cu_ltconv_shape s;
  int64_t y_off;
  int64_t max_n = st->g->values[n->inputs[0]].shape.dims[0];
  if (!c->lt || !ri__cu_conv_lt_shape(st, ni, max_n, &s, &y_off)) return RI_OK; /* own kernel */
  const char *call = "";
  cublasStatus_t e = ri__cu_ltconv_create(&k->p, &s, &call);
  if (e != CUBLAS_STATUS_SUCCESS) return ri__cu_fail_lt(err, e, call, st, ni, NULL);
  cublasLtMatmulHeuristicResult_t res[RI__CU_LT_MAX_ALGOS];
  int count = 0;
  e = ri__cu_ltconv_algos(c->lt, &k->p, res, &count, &call);
  if (e != CUBLAS_STATUS_SUCCESS) return ri__cu_fail_lt(err, e, call, st, ni, NULL);
  if (a->lt_algo >= count || !ri__cu_ltconv_invariant(&res[a->lt_algo].algo) ||
      ri__cu_ltconv_algo_tag(&res[a->lt_algo].algo) != (unsigned)a->lt_tag)
    return RI_OK;
  k->algo = res[a->lt_algo].algo;
  /* the alignments the query promised, on this context's buffers */
  const void *x = ri__cu_value_ptr(c, n->inputs[0]);
  const char *yb = ri__cu_value_ptr(c, co->out_v);
  const void *r = co->res_v >= 0 ? ri__cu_value_ptr(c, co->res_v) : NULL;
  if (!x || !yb || (co->res_v >= 0 && !r) || ptr_align(x) < CU_ALIGN || (r && ptr_align(r) < CU_ALIGN) ||
      (!s.pad && ptr_align(yb + y_off * (s.y_f32 ? 4 : 2)) < s.y_align) ||
      ptr_align(ri__cu_const_ptr(st, a->w_off)) < CU_ALIGN)
    return RI_OK;
  /* the padded form's buffer: the node's scratch (op_scratch, set with the tactic), CU_ALIGN-aligned */
  if (s.pad && (size_t)st->nodes[ni].op_scratch < ri__cu_ltconv_pad_bytes(&s)) return RI_OK;
  size_t ws_max = 0, ws1 = 0;
  if (ri__cu_ltconv_check(c->lt, &k->p, &k->algo, &ws_max, &call) != CUBLAS_STATUS_SUCCESS) return RI_OK;
  e = ri__cu_ltconv_set_batch(&k->p, 1, &call);
  if (e != CUBLAS_STATUS_SUCCESS) return ri__cu_fail_lt(err, e, call, st, ni, NULL);
  if (ri__cu_ltconv_check(c->lt, &k->p, &k->algo, &ws1, &call) != CUBLAS_STATUS_SUCCESS) return RI_OK;
  if (ws_max > c->lt_ws_bytes || ws1 > c->lt_ws_bytes) return RI_OK;
  k->use = 1;
  return RI_OK;
}

void ri__cu_conv_lt_ctx_free(cu_ctx *c, int ni) {
  lt_ctx *k = c->node_ctx[ni];
  if (!k) return;
  ri__cu_ltconv_destroy(&k->p);
  ri__free(k);
  c->node_ctx[ni] = NULL;
}

int ri__cu_conv_lt_active(const cu_ctx *c, int ni) {
  const lt_ctx *k = c->node_ctx[ni];
  return k && k->use;
}

ri_status ri__cu_conv_lt_run(cu_ctx *c, int ni, int64_t batch, const void *x, const void *w,
                             const float *bias, const void *res, void *y, void *scratch, ri__err *err) {
  const cu_state *st = c->st;
  const conv_aux *a = st->nodes[ni].aux;
  lt_ctx *k = c->node_ctx[ni];
  const char *call = "";
  cublasStatus_t e = CUBLAS_STATUS_SUCCESS;
  if (k->p.s.n != batch) e = ri__cu_ltconv_set_batch(&k->p, batch, &call);
  const void *bh = a->bh_off >= 0 ? ri__cu_const_ptr(st, a->bh_off) : NULL;
  if (k->p.bias16 && k->p.s.has_bias && !bh)
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s' (Conv): no half bias for cuBLASLt",
                       st->g->nodes[ni].name);
  if (e == CUBLAS_STATUS_SUCCESS)
    e = ri__cu_ltconv_run(c->lt, &k->p, &k->algo, c->stream, x, w, bias, bh, res, y,
                          k->p.s.pad ? scratch : NULL, c->lt_ws, c->lt_ws_bytes, &call);
  if (e != CUBLAS_STATUS_SUCCESS) return ri__cu_fail_lt(err, e, call, st, ni, NULL);
  return RI_OK;
}
