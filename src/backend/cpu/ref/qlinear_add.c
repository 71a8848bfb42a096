/* Reference QLinearAdd (uint8/int8, same-shape operands).
 *
 * Arithmetic, chosen to give onnxruntime's CPU results bit for bit (MLAS's QLinearAdd kernel; verified
 * against onnxruntime 1.32 on random data, docs/decisions.md "Integer Q/DQ"):
 *   ra = A_scale / C_scale,  rb = B_scale / C_scale                             float32
 *   base = C_zp - fma(ra, A_zp, rb * B_zp)                                        float32
 *   c = saturate(round_half_even(fma(a, ra, fma(b, rb, base))))                   float32, fused
 * fmaf() rounds once, as the vector instruction does, whether or not the target has FMA hardware.
 * int8 tensors are computed as their uint8 equivalents (value + 128, zero point + 128), the form
 * onnxruntime's x86-64 session gives every QLinearAdd it makes; the float steps above round differently
 * in the two forms, so this matters at ties. */
#include <math.h>

#include "backend/cpu/kernel.h"

#define ROUND_MAGIC 12582912.0f /* 1.5 * 2^23: see qlinear_conv.c */

typedef struct {
  const void *a, *b;
  void *c;
  int is_signed;
  float ra, rb, base, lo, hi;
} qadd_job;

static float load(const void *p, int is_signed, int64_t i) {
  return is_signed ? (float)(((const int8_t *)p)[i] + 128) : (float)((const uint8_t *)p)[i];
}

static void qadd_range(void *arg, int64_t begin, int64_t end) {
  const qadd_job *j = arg;
  for (int64_t i = begin; i < end; i++) {
    float v = fmaf(load(j->a, j->is_signed, i), j->ra, fmaf(load(j->b, j->is_signed, i), j->rb, j->base));
    if (!(v >= j->lo)) v = j->lo;
    if (v > j->hi) v = j->hi;
    const int32_t r = (int32_t)((v + ROUND_MAGIC) - ROUND_MAGIC);
    if (j->is_signed)
      ((int8_t *)j->c)[i] = (int8_t)(r - 128);
    else
      ((uint8_t *)j->c)[i] = (uint8_t)r;
  }
}

/* A zero point in the uint8 form. */
static float zp_of(const ri__tensor *t) {
  return t->dtype == RI_DTYPE_INT8 ? (float)(*(const int8_t *)t->data + 128)
                                   : (float)*(const uint8_t *)t->data;
}

ri_status ri__ref_QLinearAdd(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  (void)n;
  qadd_job j;
  j.a = in[0].data;
  j.b = in[3].data;
  j.c = out[0].data;
  j.is_signed = out[0].dtype == RI_DTYPE_INT8;
  const float sc = *(const float *)in[6].data;
  j.ra = *(const float *)in[1].data / sc;
  j.rb = *(const float *)in[4].data / sc;
  j.base = zp_of(&in[7]) - fmaf(j.ra, zp_of(&in[2]), j.rb * zp_of(&in[5]));
  j.lo = 0.f;
  j.hi = 255.f;
  ri__pool_for(x->pool, ri__shape_numel(&out[0].shape), 4096, qadd_range, &j);
  return RI_OK;
}
