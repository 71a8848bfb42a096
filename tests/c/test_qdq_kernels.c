/* QuantizeLinear / DequantizeLinear reference kernels against a plain scalar statement of the ONNX formulas
 * (nearbyintf of a true division, clamp, zero point), on values chosen to hit every edge: exact ties
 * (k + 0.5) * scale, values one float step either side of a tie, saturation far outside the range, zeros of
 * both signs, infinities and NaN; per-tensor and per-axis parameters with blocks that straddle the pool's
 * chunks; one and two threads. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/kernel.h"
#include "core/alloc.h"
#include "core/pool.h"
#include "test.h"

#define N_ELEMS (3 * 7 * 4099) /* odd sizes: runs split across chunks and channels */

static uint32_t g_rng = 12345u;
static uint32_t rnd(void) {
  g_rng = g_rng * 1664525u + 1013904223u;
  return g_rng >> 8;
}

/* Values around the quantization grid of scale s. */
static float pick_value(float s) {
  int k = (int)(rnd() % 700) - 350;
  switch (rnd() % 8) {
  case 0: return ((float)k + 0.5f) * s;
  case 1: return nextafterf(((float)k + 0.5f) * s, INFINITY);
  case 2: return nextafterf(((float)k + 0.5f) * s, -INFINITY);
  case 3: return (float)k * s * 1000.f;
  case 4: return (rnd() % 2) ? 0.f : -0.f;
  case 5: return (rnd() % 3) == 0 ? NAN : ((rnd() % 2) ? INFINITY : -INFINITY);
  default: return ((float)(rnd() % 100000) / 100000.f - 0.5f) * 700.f * s;
  }
}

static int32_t expect_q(float x, float s, int32_t zp, int32_t lo, int32_t hi) {
  float v = nearbyintf(x / s);
  if (v != v) return zp;
  double t = (double)v + zp;
  return t < lo ? lo : (t > hi ? hi : (int32_t)t);
}

static void run_case(ri__pool *pool, ri_dtype qt, int per_axis) {
  const int64_t dims[3] = {3, 7, 4099};
  const int channels = per_axis ? 7 : 1;
  float scales[7];
  int8_t zp_s8[7];
  uint8_t zp_u8[7];
  for (int c = 0; c < channels; c++) {
    scales[c] = (float)(1 + rnd() % 1000) / 7919.f;
    zp_s8[c] = (int8_t)((int)(rnd() % 200) - 100);
    zp_u8[c] = (uint8_t)(rnd() % 256);
  }
  float *x = ri__malloc(N_ELEMS * sizeof(float));
  float *y = ri__malloc(N_ELEMS * sizeof(float));
  uint8_t *q = ri__malloc(N_ELEMS);
  CHECK(x && y && q);
  if (!x || !y || !q) goto done;
  for (int64_t i = 0; i < N_ELEMS; i++)
    x[i] = pick_value(scales[per_axis ? (i / 4099) % 7 : 0]);

  ri__attr axis = {.name = "axis", .type = RI__ATTR_INT, .i = 1};
  int ins[3] = {0, 1, 2}, outs[1] = {3};
  ri__node n = {.name = "q",
                .op = RI__OP_QuantizeLinear,
                .inputs = ins,
                .n_inputs = 3,
                .outputs = outs,
                .n_outputs = 1,
                .attrs = &axis,
                .n_attrs = 1};
  ri__shape full = {.rank = 3, .dims = {dims[0], dims[1], dims[2]}};
  ri__shape pshape = per_axis ? (ri__shape){.rank = 1, .dims = {7}} : (ri__shape){.rank = 0};
  ri__tensor tin[3] = {
      {.dtype = RI_DTYPE_FLOAT32, .shape = full, .data = x},
      {.dtype = RI_DTYPE_FLOAT32, .shape = pshape, .data = scales},
      {.dtype = qt, .shape = pshape, .data = qt == RI_DTYPE_INT8 ? (void *)zp_s8 : (void *)zp_u8}};
  ri__tensor tq = {.dtype = qt, .shape = full, .data = q};
  ri__err err = {0};
  ri__exec ex = {.pool = pool, .err = &err};
  CHECK(ri__ref_QuantizeLinear(&n, tin, &tq, &ex) == RI_OK);
  int32_t lo = qt == RI_DTYPE_INT8 ? -128 : 0, hi = qt == RI_DTYPE_INT8 ? 127 : 255;
  int64_t bad = 0;
  for (int64_t i = 0; i < N_ELEMS; i++) {
    int c = per_axis ? (int)((i / 4099) % 7) : 0;
    int32_t zp = qt == RI_DTYPE_INT8 ? zp_s8[c] : zp_u8[c];
    int32_t want = expect_q(x[i], scales[c], zp, lo, hi);
    int32_t got = qt == RI_DTYPE_INT8 ? ((int8_t *)q)[i] : q[i];
    if (got != want && bad++ < 5)
      fprintf(stderr, "quantize %s axis=%d: x=%a s=%a zp=%d: got %d, want %d\n", ri_dtype_name(qt), per_axis,
              (double)x[i], (double)scales[c], zp, got, want);
  }
  CHECK_MSG(bad == 0, "%lld quantized values differ", (long long)bad);

  n.op = RI__OP_DequantizeLinear;
  ri__tensor dq_in[3] = {tq, tin[1], tin[2]};
  ri__tensor ty = {.dtype = RI_DTYPE_FLOAT32, .shape = full, .data = y};
  CHECK(ri__ref_DequantizeLinear(&n, dq_in, &ty, &ex) == RI_OK);
  bad = 0;
  for (int64_t i = 0; i < N_ELEMS; i++) {
    int c = per_axis ? (int)((i / 4099) % 7) : 0;
    int32_t zp = qt == RI_DTYPE_INT8 ? zp_s8[c] : zp_u8[c];
    int32_t v = qt == RI_DTYPE_INT8 ? ((int8_t *)q)[i] : q[i];
    float want = (float)(v - zp) * scales[c];
    if (memcmp(&want, &y[i], sizeof want) != 0 && bad++ < 5)
      fprintf(stderr, "dequantize: q=%d zp=%d: got %a, want %a\n", v, zp, (double)y[i], (double)want);
  }
  CHECK_MSG(bad == 0, "%lld dequantized values differ", (long long)bad);
done:
  ri__free(x);
  ri__free(y);
  ri__free(q);
}

int main(void) {
  for (int threads = 1; threads <= 2; threads++) {
    ri__pool *pool = ri__pool_create(threads);
    CHECK(pool != NULL);
    for (int per_axis = 0; per_axis <= 1; per_axis++) {
      run_case(pool, RI_DTYPE_UINT8, per_axis);
      run_case(pool, RI_DTYPE_INT8, per_axis);
    }
    ri__pool_destroy(pool);
  }
  CHECK(ri__alloc_live() == 0);
  return test_done("test_qdq_kernels");
}
