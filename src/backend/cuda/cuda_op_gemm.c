/* Gemm and MatMul on cuBLASLt.
 *
 * Row-major products are computed as their column-major transposes: Y = A'B' (M x N, row-major) is
 * Y^T = B'^T A'^T (N x M, column-major, leading dimension N), so cuBLASLt's "A" operand is our B and its
 * "B" operand our A, each read with the transpose flag that turns its row-major storage into the needed
 * column-major matrix. Compute is always float (CUBLAS_COMPUTE_32F, no TF32), with float or half data.
 *
 * Gemm's C is first broadcast into Y and then accumulated with beta; the fused activation runs as a
 * separate in-place kernel. MatMul batches run as one strided-batched product when every operand is either
 * dense or broadcast across all batch axes, a product with the batch folded into M when only B broadcasts,
 * and one product per batch entry otherwise.
 *
 * Batch invariance: an image's output must not depend on the batch it runs in, and cuBLASLt's heuristic may
 * pick another kernel (another tile, split-K or reduction scheme) for another M, and a kernel may divide its
 * work by the problem's size. So a Gemm whose rows are the batch (A not transposed, A and Y with the
 * maximum batch's rows in the graph) always computes the maximum batch's rows: the same product for every
 * batch size, rows past the batch being computed from whatever the buffers hold there (the arena and scratch
 * hold every value at the maximum batch) and ignored; at batch 1 that costs the product at the maximum
 * batch, a few microseconds for classifier heads. Other products (MatMul) use one algorithm per node and
 * context, chosen for the node's product at the maximum batch (cublasLtMatmulAlgoCheck confirms it applies
 * at the current size). */
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/gemm_params.h"

/* One operand in cuBLASLt terms: a column-major rows x cols matrix with leading dimension ld, read
 * transposed when trans is set, stride elements apart between batch entries. */
typedef struct {
  const void *p;
  int trans;
  int64_t rows, cols, ld, stride;
} lt_operand;

static uint32_t ptr_align(const void *p) {
  uintptr_t a = (uintptr_t)p;
  uint32_t al = 256;
  while (al > 1 && (a % al) != 0)
    al >>= 1;
  return al;
}

static ri_status lt_layout(cublasLtMatrixLayout_t *l, cudaDataType t, int64_t rows, int64_t cols, int64_t ld,
                           int count, int64_t stride, const cu_state *st, int ni, ri__err *err) {
  CU_LT(cublasLtMatrixLayoutCreate(l, t, (uint64_t)rows, (uint64_t)cols, ld));
  if (count > 1) {
    int32_t cnt = count;
    CU_LT(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &cnt, sizeof cnt));
    CU_LT(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                           sizeof stride));
  }
  return RI_OK;
}

/* The algorithm of a node in a context, chosen once for every batch size. */
typedef struct {
  int found;
  cublasLtMatmulAlgo_t algo;
} lt_node;

/* The product the algorithm is chosen for: n (our M) and the batch count at the maximum batch. */
typedef struct {
  int64_t n;
  int count;
} lt_query;

/* D (m x n column-major, ld = m, batch stride d_stride) = alpha * op(a) * op(b) + beta * D, `count`
 * batch entries, with the node's algorithm (chosen for the product q when the context has none yet). */
static ri_status lt_matmul(cu_ctx *c, int ni, ri_dtype dt, int64_t m, int64_t n, int64_t k,
                           const lt_operand *a, const lt_operand *b, void *d, int64_t d_stride, int count,
                           float alpha, float beta, const lt_query *q, ri__err *err) {
  const cu_state *st = c->st;
  cudaDataType t = dt == RI_DTYPE_FLOAT16 ? CUDA_R_16F : CUDA_R_32F;
  cublasLtMatmulDesc_t op = NULL;
  cublasLtMatrixLayout_t la = NULL, lb = NULL, ld = NULL, qb = NULL, qd = NULL;
  lt_node *node = c->node_ctx[ni];
  if (!node)
    return ri__err_set(err, RI_ERR_INTERNAL, "node '%s': no cuBLASLt context", st->g->nodes[ni].name);
  cublasLtMatmulPreference_t pref = NULL;
  ri_status s = RI_OK;
  cublasStatus_t e = cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  if (e != CUBLAS_STATUS_SUCCESS) return ri__cu_fail_lt(err, e, "cublasLtMatmulDescCreate", st, ni, NULL);
  cublasOperation_t ta = a->trans ? CUBLAS_OP_T : CUBLAS_OP_N, tb = b->trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  const char *call = "cublasLtMatmulDescSetAttribute";
  e = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
  if (e == CUBLAS_STATUS_SUCCESS)
    e = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
  if (e != CUBLAS_STATUS_SUCCESS) s = ri__cu_fail_lt(err, e, call, st, ni, NULL);
  if (s == RI_OK) s = lt_layout(&la, t, a->rows, a->cols, a->ld, count, a->stride, st, ni, err);
  if (s == RI_OK) s = lt_layout(&lb, t, b->rows, b->cols, b->ld, count, b->stride, st, ni, err);
  if (s == RI_OK) s = lt_layout(&ld, t, m, n, m, count, d_stride, st, ni, err);
  cublasLtMatmulHeuristicResult_t res;
  int found = 0;
  if (s == RI_OK && !node->found) {
    /* The query product: our A with M rows at the maximum batch (its leading dimension too when it is
     * read transposed), D likewise. */
    lt_operand bq = *b;
    if (bq.trans)
      bq.rows = q->n, bq.ld = q->n;
    else
      bq.cols = q->n;
    s = lt_layout(&qb, t, bq.rows, bq.cols, bq.ld, q->count, bq.stride, st, ni, err);
    if (s == RI_OK) s = lt_layout(&qd, t, m, q->n, m, q->count, d_stride, st, ni, err);
  }
  if (s == RI_OK) {
    call = "cublasLtMatmulPreferenceCreate";
    e = cublasLtMatmulPreferenceCreate(&pref);
    uint64_t wsb = c->lt_ws_bytes;
    uint32_t al_a = ptr_align(a->p), al_b = ptr_align(b->p), al_d = ptr_align(d);
    if (e == CUBLAS_STATUS_SUCCESS)
      e = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb,
                                               sizeof wsb);
    if (e == CUBLAS_STATUS_SUCCESS)
      e = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a,
                                               sizeof al_a);
    if (e == CUBLAS_STATUS_SUCCESS)
      e = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b,
                                               sizeof al_b);
    if (e == CUBLAS_STATUS_SUCCESS)
      e = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_d,
                                               sizeof al_d);
    if (e == CUBLAS_STATUS_SUCCESS)
      e = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_d,
                                               sizeof al_d);
    if (e == CUBLAS_STATUS_SUCCESS && !node->found) {
      call = "cublasLtMatmulAlgoGetHeuristic";
      e = cublasLtMatmulAlgoGetHeuristic(c->lt, op, la, qb, qd, qd, pref, 1, &res, &found);
    }
    if (e != CUBLAS_STATUS_SUCCESS)
      s = ri__cu_fail_lt(err, e, call, st, ni, NULL);
    else if (!node->found && found < 1)
      s = ri__err_set(
          err, RI_ERR_DEVICE, "node '%s': cuBLASLt has no algorithm for %lldx%lldx%lld (batch %d) on %s",
          st->g->nodes[ni].name, (long long)m, (long long)q->n, (long long)k, q->count, st->dev_name);
    if (s == RI_OK && !node->found) node->algo = res.algo, node->found = 1;
  }
  cublasLtMatmulAlgo_t algo;
  if (s == RI_OK) {
    algo = node->algo;
    cublasLtMatmulHeuristicResult_t chk;
    memset(&chk, 0, sizeof chk);
    e = cublasLtMatmulAlgoCheck(c->lt, op, la, lb, ld, ld, &algo, &chk);
    if (e != CUBLAS_STATUS_SUCCESS || chk.workspaceSize > c->lt_ws_bytes) {
      /* A product the node's algorithm does not run (not seen with Gemm and MatMul's usual shapes): the
       * heuristic's own choice for it, which may differ from the other batch sizes' in the last bits. */
      found = 0;
      e = cublasLtMatmulAlgoGetHeuristic(c->lt, op, la, lb, ld, ld, pref, 1, &res, &found);
      if (e != CUBLAS_STATUS_SUCCESS || found < 1)
        s = ri__err_set(err, RI_ERR_DEVICE,
                        "node '%s': cuBLASLt has no algorithm for %lldx%lldx%lld (batch %d) on %s",
                        st->g->nodes[ni].name, (long long)m, (long long)n, (long long)k, count, st->dev_name);
      else
        algo = res.algo;
    }
  }
  if (s == RI_OK) {
    e = cublasLtMatmul(c->lt, op, &alpha, a->p, la, b->p, lb, &beta, d, ld, d, ld, &algo, c->lt_ws,
                       c->lt_ws_bytes, c->stream);
    if (e != CUBLAS_STATUS_SUCCESS) s = ri__cu_fail_lt(err, e, "cublasLtMatmul", st, ni, NULL);
  }
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  if (la) cublasLtMatrixLayoutDestroy(la);
  if (lb) cublasLtMatrixLayoutDestroy(lb);
  if (ld) cublasLtMatrixLayoutDestroy(ld);
  if (qb) cublasLtMatrixLayoutDestroy(qb);
  if (qd) cublasLtMatrixLayoutDestroy(qd);
  cublasLtMatmulDescDestroy(op);
  return s;
}

static ri_status check_float_inputs(cu_state *st, int ni, int n_in, ri__err *err) {
  for (int k = 0; k < n_in; k++) {
    int v = ri__cu_in(st, ni, k);
    if (v < 0) continue;
    if (st->g->values[v].dtype != RI_DTYPE_FLOAT32)
      return ri__cu_unsupported(err, st, ni, "input %d of type %s (float32 is supported)", k,
                                ri_dtype_name(st->g->values[v].dtype));
    ri__cu_use_input(st, ni, k);
  }
  return RI_OK;
}

static ri_status gemm_prep(cu_state *st, int ni, ri__err *err) {
  if (!st->g->nodes[ni].params) return ri__cu_unsupported(err, st, ni, "parameters were not resolved");
  RI__TRY(check_float_inputs(st, ni, 3, err));
  st->uses_cublas = 1;
  st->nodes[ni].name = st->fp16 ? "cublaslt_f16" : "cublaslt_f32";
  return RI_OK;
}

static ri_status lt_ctx_init(cu_ctx *c, int ni, ri__err *err) {
  lt_node *k = ri__calloc(1, sizeof *k);
  if (!k) return RI__OOM(err);
  c->node_ctx[ni] = k;
  return RI_OK;
}

static void lt_ctx_free(cu_ctx *c, int ni) {
  ri__free(c->node_ctx[ni]);
  c->node_ctx[ni] = NULL;
}

static ri_status apply_act(cu_ctx *c, int ni, const cu_arg *y, ri__err *err) {
  const cu_state *st = c->st;
  const ri__node *n = &st->g->nodes[ni];
  if (n->act == RI__ACT_NONE) return RI_OK;
  CU_RT(ri__cu_unary(c->stream, y->dt, y->p, y->p, ri__shape_numel(&y->t->shape), (int)n->act, n->act_a,
                     n->act_b));
  return RI_OK;
}

static ri_status gemm_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                          ri__err *err) {
  const cu_state *st = c->st;
  const ri__node *n = &st->g->nodes[ni];
  const ri__gemm_params *p = n->params;
  const ri__shape *as = &in[0].t->shape, *bs = &in[1].t->shape, *ys = &out[0].t->shape;
  int64_t M = ys->dims[0], N = ys->dims[1];
  int64_t K = p->trans_a ? as->dims[0] : as->dims[1];
  if (M == 0 || N == 0) return RI_OK;
  const ri__shape *a_max = &st->g->values[n->inputs[0]].shape, *y_max = &st->g->values[n->outputs[0]].shape;
  if (!p->trans_a && a_max->rank == 2 && y_max->rank == 2 && a_max->dims[0] == y_max->dims[0] &&
      y_max->dims[0] > M && y_max->dims[1] == N)
    M = y_max->dims[0]; /* the maximum batch's product (see the top of the file) */
  float beta = 0.f;
  if (p->has_c && n->n_inputs > 2 && in[2].p && p->beta != 0.f) {
    /* Broadcast C into Y, then accumulate A'B' onto it with beta. */
    const ri__shape *cs = &in[2].t->shape;
    ri__cu_walk w;
    memset(&w, 0, sizeof w);
    w.rank = 2;
    w.dims[0] = M, w.dims[1] = N;
    w.st[0][0] = N, w.st[0][1] = 1;
    int64_t cst[RI__MAX_RANK];
    ri__cu_strides(cs, CU_LAYOUT_ROW, cst);
    for (int j = 0; j < 2; j++) {
      int ax = j - (2 - cs->rank);
      w.st[1][j] = ax >= 0 && cs->dims[ax] != 1 ? cst[ax] : 0;
    }
    ri__cu_walk_simplify(&w, 2);
    CU_RT(ri__cu_copy(c->stream, &w, in[2].p, in[2].dt, out[0].p, out[0].dt));
    beta = p->beta;
  }
  lt_operand la, lb;
  /* cuBLASLt "A" = our B: B'^T is N x K. */
  la.p = in[1].p;
  la.trans = p->trans_b;
  la.rows = p->trans_b ? K : N;
  la.cols = p->trans_b ? N : K;
  la.ld = la.rows;
  la.stride = 0;
  /* cuBLASLt "B" = our A: A'^T is K x M. */
  lb.p = in[0].p;
  lb.trans = p->trans_a;
  lb.rows = p->trans_a ? M : K;
  lb.cols = p->trans_a ? K : M;
  lb.ld = lb.rows;
  lb.stride = 0;
  (void)bs;
  lt_query q = {st->g->values[n->outputs[0]].shape.dims[0], 1};
  if (q.n < M) q.n = M;
  RI__TRY(lt_matmul(c, ni, out[0].dt, N, M, K, &la, &lb, out[0].p, 0, 1, p->alpha, beta, &q, err));
  return apply_act(c, ni, &out[0], err);
}

static const cu_op_impl k_gemm = {gemm_prep, lt_ctx_init, lt_ctx_free, gemm_run};

static ri_status matmul_prep(cu_state *st, int ni, ri__err *err) {
  RI__TRY(check_float_inputs(st, ni, 2, err));
  st->uses_cublas = 1;
  st->nodes[ni].name = st->fp16 ? "cublaslt_f16" : "cublaslt_f32";
  return RI_OK;
}

/* Batch stride of an operand whose batch strides are all zero (returns 1, *s = 0) or those of a dense
 * array of matrices (returns 1, *s = matrix size); 0 for any other pattern. */
static int uniform_stride(const ri__matmul_dims *d, const int64_t *st, int64_t mat, int64_t *s) {
  int zero = 1, dense = 1;
  int64_t expect = mat;
  for (int i = d->batch_rank - 1; i >= 0; i--) {
    if (d->batch_dims[i] == 1) continue;
    if (st[i] != 0) zero = 0;
    if (st[i] != expect) dense = 0;
    expect *= d->batch_dims[i];
  }
  *s = zero ? 0 : mat;
  return zero || dense;
}

static ri_status matmul_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch,
                            ri__err *err) {
  const cu_state *st = c->st;
  const ri__node *n = &st->g->nodes[ni];
  ri__matmul_dims d;
  RI__TRY(ri__matmul_dims_get(n, &in[0].t->shape, &in[1].t->shape, &d, err));
  if (d.m == 0 || d.n == 0 || d.batch == 0) return RI_OK;
  if (d.k == 0) {
    CU_RT(ri__cu_fill(c->stream, out[0].p, out[0].dt, d.batch * d.m * d.n, 0.0));
    return apply_act(c, ni, &out[0], err);
  }
  if (d.batch > INT32_MAX)
    return ri__err_set(err, RI_ERR_LIMIT, "node '%s' (MatMul): batch of %lld products", n->name,
                       (long long)d.batch);
  /* The query: the node's product at the maximum batch (the graph's shapes), as one product. */
  ri__matmul_dims dm;
  const ri__graph *g = st->g;
  if (ri__matmul_dims_get(n, &g->values[n->inputs[0]].shape, &g->values[n->inputs[1]].shape, &dm, err) !=
      RI_OK)
    dm = d;
  lt_query q = {dm.m * dm.batch > d.m * d.batch ? dm.m * dm.batch : d.m * d.batch, 1};
  size_t es = ri__cu_esize(out[0].dt);
  int64_t sa, sb;
  int ua = uniform_stride(&d, d.a_stride, d.m * d.k, &sa),
      ub = uniform_stride(&d, d.b_stride, d.k * d.n, &sb);
  lt_operand la = {in[1].p, 0, d.n, d.k, d.n, sb}, lb = {in[0].p, 0, d.k, d.m, d.k, sa};
  if (ua && ub && sb == 0 && sa != 0) {
    /* Only B broadcasts: one product with the batch folded into M. */
    lb.cols = d.m * d.batch;
    lb.stride = 0;
    la.stride = 0;
    RI__TRY(
        lt_matmul(c, ni, out[0].dt, d.n, d.m * d.batch, d.k, &la, &lb, out[0].p, 0, 1, 1.f, 0.f, &q, err));
  } else if (ua && ub) {
    RI__TRY(lt_matmul(c, ni, out[0].dt, d.n, d.m, d.k, &la, &lb, out[0].p, d.m * d.n, (int)d.batch, 1.f, 0.f,
                      &q, err));
  } else {
    for (int64_t bi = 0; bi < d.batch; bi++) {
      int64_t oa = 0, ob = 0, rest = bi;
      for (int i = d.batch_rank - 1; i >= 0; i--) {
        int64_t idx = rest % d.batch_dims[i];
        rest /= d.batch_dims[i];
        oa += idx * d.a_stride[i];
        ob += idx * d.b_stride[i];
      }
      lt_operand a1 = la, b1 = lb;
      a1.p = (const char *)in[1].p + (size_t)ob * es;
      a1.stride = 0;
      b1.p = (const char *)in[0].p + (size_t)oa * es;
      b1.stride = 0;
      RI__TRY(lt_matmul(c, ni, out[0].dt, d.n, d.m, d.k, &a1, &b1,
                        (char *)out[0].p + (size_t)(bi * d.m * d.n) * es, 0, 1, 1.f, 0.f, &q, err));
    }
  }
  return apply_act(c, ni, &out[0], err);
}

static const cu_op_impl k_matmul = {matmul_prep, lt_ctx_init, lt_ctx_free, matmul_run};

const cu_op_impl *ri__cu_impl_gemm(void) { return &k_gemm; }
const cu_op_impl *ri__cu_impl_matmul(void) { return &k_matmul; }
