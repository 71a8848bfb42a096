/* Reference Gemm and MatMul, float32, on ri__ref_sgemm; both apply the fused activation last. */
#include <string.h>

#include "backend/cpu/kernel.h"
#include "backend/cpu/ref/gemm_core.h"
#include "graph/ops/gemm_params.h"

typedef struct {
  float *y;
  int64_t chunk, total;
  ri__act act;
  float a, b;
} act_job;

static void act_range(void *arg, int64_t begin, int64_t end) {
  const act_job *j = arg;
  int64_t e = end * j->chunk < j->total ? end * j->chunk : j->total;
  for (int64_t i = begin * j->chunk; i < e; i++)
    j->y[i] = ri__act_apply(j->act, j->a, j->b, j->y[i]);
}

static void apply_act(const ri__node *n, float *y, int64_t count, ri__pool *pool) {
  if (n->act == RI__ACT_NONE || count <= 0) return;
  act_job j = {y, 4096, count, n->act, n->act_a, n->act_b};
  ri__pool_for(pool, (count + j.chunk - 1) / j.chunk, 1, act_range, &j);
}

ri_status ri__ref_Gemm(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const ri__gemm_params *p = n->params;
  if (!p) return ri__err_set(x->err, RI_ERR_INTERNAL, "Gemm node '%s': check() has not run", n->name);
  const float *a = in[0].data, *b = in[1].data;
  float *y = out[0].data;
  const int64_t m = out[0].shape.dims[0], nn = out[0].shape.dims[1];
  const int64_t k = in[0].shape.dims[p->trans_a ? 0 : 1];
  if (p->has_c && p->beta != 0.f) {
    const ri__tensor *c = &in[2];
    const float *cd = c->data;
    /* Unidirectional broadcast: a C dim of 1 (or a missing leading dim) repeats. */
    const int64_t cm = c->shape.rank == 2 ? c->shape.dims[0] : 1;
    const int64_t cn = c->shape.rank >= 1 ? c->shape.dims[c->shape.rank - 1] : 1;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < nn; j++)
        y[i * nn + j] = p->beta * cd[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
  } else {
    memset(y, 0, (size_t)(m * nn) * sizeof(float));
  }
  const int64_t a_rs = p->trans_a ? 1 : k, a_cs = p->trans_a ? m : 1;
  const int64_t b_rs = p->trans_b ? 1 : nn, b_cs = p->trans_b ? k : 1;
  ri__ref_sgemm(x->pool, m, nn, k, p->alpha, a, a_rs, a_cs, b, b_rs, b_cs, y, nn);
  apply_act(n, y, m * nn, x->pool);
  return RI_OK;
}

typedef struct {
  const ri__matmul_dims *d;
  const float *a, *b;
  float *y;
} matmul_job;

/* Offsets of output batch index t in A and B. */
static void batch_offsets(const ri__matmul_dims *d, int64_t t, int64_t *oa, int64_t *ob) {
  int64_t a = 0, b = 0;
  for (int i = d->batch_rank - 1; i >= 0; i--) {
    const int64_t idx = t % d->batch_dims[i];
    t /= d->batch_dims[i];
    a += idx * d->a_stride[i];
    b += idx * d->b_stride[i];
  }
  *oa = a;
  *ob = b;
}

static void matmul_batches(void *arg, int64_t begin, int64_t end) {
  const matmul_job *j = arg;
  const ri__matmul_dims *d = j->d;
  for (int64_t t = begin; t < end; t++) {
    int64_t oa, ob;
    batch_offsets(d, t, &oa, &ob);
    ri__ref_sgemm(NULL, d->m, d->n, d->k, 1.f, j->a + oa, d->k, 1, j->b + ob, d->n, 1, j->y + t * d->m * d->n,
                  d->n);
  }
}

ri_status ri__ref_MatMul(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  ri__matmul_dims d;
  RI__TRY(ri__matmul_dims_get(n, &in[0].shape, &in[1].shape, &d, x->err));
  matmul_job j = {&d, in[0].data, in[1].data, out[0].data};
  const int64_t total = d.batch * d.m * d.n;
  memset(j.y, 0, (size_t)total * sizeof(float));
  if (d.batch >= 4) {
    ri__pool_for(x->pool, d.batch, 1, matmul_batches, &j);
  } else {
    for (int64_t t = 0; t < d.batch; t++) {
      int64_t oa, ob;
      batch_offsets(&d, t, &oa, &ob);
      ri__ref_sgemm(x->pool, d.m, d.n, d.k, 1.f, j.a + oa, d.k, 1, j.b + ob, d.n, 1, j.y + t * d.m * d.n,
                    d.n);
    }
  }
  apply_act(n, j.y, total, x->pool);
  return RI_OK;
}
