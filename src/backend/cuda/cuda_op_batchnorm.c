/* BatchNormalization on the CUDA backend (when it is not folded into a convolution): one per-channel
 * affine kernel. */
#include <math.h>

#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "graph/op.h"
#include "graph/ops/batchnorm_params.h"

/* ---- BatchNormalization: y = x * s[c] + t[c] with s = scale / sqrt(var + eps), t = B - mean * s ---- */

typedef struct {
  int64_t s_off, t_off, channels;
} bn_aux;

static ri_status bn_prep(cu_state *st, int ni, ri__err *err) {
  const ri__graph *g = st->g;
  const ri__node *n = &g->nodes[ni];
  const ri__batchnorm_params *p = n->params;
  if (!p) return ri__cu_unsupported(err, st, ni, "parameters were not resolved");
  const ri__value *x = &g->values[ri__cu_in(st, ni, 0)];
  if (x->dtype != RI_DTYPE_FLOAT32 || x->shape.rank < 2)
    return ri__cu_unsupported(err, st, ni, "input %s of rank %d", ri_dtype_name(x->dtype), x->shape.rank);
  int64_t ch = x->shape.dims[1];
  const float *prm[4];
  for (int k = 1; k <= 4; k++) {
    if (!ri__cu_in_const(st, ni, k)) return ri__cu_unsupported(err, st, ni, "input %d is not a constant", k);
    const ri__value *v = &g->values[ri__cu_in(st, ni, k)];
    if (v->dtype != RI_DTYPE_FLOAT32 || v->nbytes != (size_t)ch * sizeof(float))
      return ri__cu_unsupported(err, st, ni, "input %d is not float32 [%lld]", k, (long long)ch);
    prm[k - 1] = v->data;
  }
  float *buf = ri__malloc((size_t)ch * 2 * sizeof(float));
  if (!buf) return RI__OOM(err);
  for (int64_t i = 0; i < ch; i++) {
    float s = prm[0][i] / sqrtf(prm[3][i] + p->epsilon);
    buf[i] = s;
    buf[ch + i] = prm[1][i] - prm[2][i] * s;
  }
  bn_aux *a = ri__calloc(1, sizeof *a);
  ri_status s = a ? RI_OK : RI__OOM(err);
  if (s == RI_OK) {
    st->nodes[ni].aux = a;
    a->channels = ch;
    s = ri__cu_blob_add(st, buf, (size_t)ch * sizeof(float), &a->s_off, err);
  }
  if (s == RI_OK) s = ri__cu_blob_add(st, buf + ch, (size_t)ch * sizeof(float), &a->t_off, err);
  ri__free(buf);
  st->nodes[ni].name = "affine";
  return s;
}

static ri_status bn_run(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch, ri__err *err) {
  const cu_state *st = c->st;
  const bn_aux *a = st->nodes[ni].aux;
  const ri__shape *s = &in[0].t->shape;
  int64_t inner = 1;
  if (in[0].layout != CU_LAYOUT_NHWC)
    for (int k = 2; k < s->rank; k++)
      inner *= s->dims[k];
  CU_RT(ri__cu_channel_affine(c->stream, in[0].dt, in[0].p, out[0].p, ri__shape_numel(s), a->channels, inner,
                              ri__cu_const_ptr(st, a->s_off), ri__cu_const_ptr(st, a->t_off), 0, 0.f, 0.f));
  return RI_OK;
}

static const cu_op_impl k_bn = {bn_prep, NULL, NULL, bn_run};

const cu_op_impl *ri__cu_impl_batchnorm(void) { return &k_bn; }
