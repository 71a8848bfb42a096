/* QLinearConv, QLinearAdd and the onnxruntime-order float Conv (tactic RI__CONV_TACTIC_QDQ_ORDER) against
 * plain scalar statements of their arithmetic (src/backend/cpu/ref/qlinear_*.c, conv_qdq_order.c), on
 * shapes that reach every path: pointwise, 3x3 with pads, strides, grouped and depthwise convolutions, odd
 * K (the zero pair row), output channels and pixel counts that are not multiples of the 4 x 16 tiles, a
 * depth of 300 (three K blocks in the float conv), depthwise rows longer than one segment of the direct
 * path (RI__CONV_SEG_MAX), uint8 and int8 tensors, per-tensor and per-channel weights, with and without
 * bias; one and two threads. Results must be identical, element for element. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/kernel.h"
#include "backend/cpu/ref/conv_qdq_order.h"
#include "core/alloc.h"
#include "core/pool.h"
#include "graph/ops/conv_params.h"
#include "graph/passes.h"
#include "test.h"

static uint32_t g_rng = 777u;
static uint32_t rnd(void) {
  g_rng = g_rng * 1664525u + 1013904223u;
  return g_rng >> 8;
}

typedef struct {
  int64_t c, m, k, group, stride, pad, h, w;
  int per_channel, x_signed, w_signed, y_signed, bias;
} conv_case;

static const conv_case k_cases[] = {
    {16, 24, 1, 1, 1, 0, 9, 11, 1, 0, 1, 0, 1},  {3, 6, 1, 1, 1, 0, 5, 7, 0, 1, 1, 1, 0},
    {8, 12, 3, 1, 1, 1, 13, 10, 1, 1, 1, 1, 1},  {8, 8, 3, 8, 2, 1, 17, 15, 1, 0, 1, 0, 1},
    {12, 12, 3, 12, 1, 1, 6, 33, 0, 1, 1, 0, 1}, {4, 4, 3, 2, 1, 1, 8, 8, 1, 0, 0, 0, 1},
    {300, 5, 1, 1, 1, 0, 16, 16, 1, 1, 1, 1, 1}, {9, 7, 3, 1, 2, 0, 11, 12, 0, 0, 0, 1, 0},
    {4, 4, 3, 4, 1, 1, 2, 700, 1, 1, 0, 0, 1},   {4, 4, 3, 4, 2, 1, 3, 1100, 0, 0, 1, 1, 1},
};

static void fill_conv_params(const conv_case *cc, ri__conv_params *p) {
  memset(p, 0, sizeof *p);
  p->win.spatial_rank = 2;
  for (int a = 0; a < 2; a++) {
    p->win.kernel[a] = cc->k;
    p->win.stride[a] = cc->stride;
    p->win.dilation[a] = 1;
    p->win.pad_begin[a] = cc->pad;
    p->win.pad_end[a] = cc->pad;
  }
  p->group = cc->group;
  p->has_bias = cc->bias;
  p->c_in = cc->c;
  p->c_out = cc->m;
}

/* Sizes of conv case cc with two images: channels per group, patch length, output size, element counts. */
typedef struct {
  int64_t n, cg, mg, kk, oh, ow, nx, nw, ny;
} case_dims;

static case_dims dims_of(const conv_case *cc) {
  case_dims d;
  d.n = 2;
  d.cg = cc->c / cc->group;
  d.mg = cc->m / cc->group;
  d.kk = d.cg * cc->k * cc->k;
  d.oh = (cc->h + 2 * cc->pad - cc->k) / cc->stride + 1;
  d.ow = (cc->w + 2 * cc->pad - cc->k) / cc->stride + 1;
  d.nx = d.n * cc->c * cc->h * cc->w;
  d.nw = cc->m * d.kk;
  d.ny = d.n * cc->m * d.oh * d.ow;
  return d;
}

static int32_t q_at(const void *d, int is_signed, int64_t i) {
  return is_signed ? ((const int8_t *)d)[i] : ((const uint8_t *)d)[i];
}

static void run_qlinear_conv(ri__pool *pool, const conv_case *cc) {
  const case_dims d = dims_of(cc);
  const int64_t n = d.n, cg = d.cg, mg = d.mg, oh = d.oh, ow = d.ow, nx = d.nx, nw = d.nw, ny = d.ny;
  uint8_t *x = ri__malloc((size_t)nx), *w = ri__malloc((size_t)nw), *y = ri__malloc((size_t)ny);
  int32_t *b = ri__malloc((size_t)cc->m * sizeof(int32_t));
  float *ws = ri__malloc((size_t)cc->m * sizeof(float));
  uint8_t *wzp = ri__malloc((size_t)cc->m);
  CHECK(x && w && y && b && ws && wzp);
  if (!x || !w || !y || !b || !ws || !wzp) goto done;
  for (int64_t i = 0; i < nx; i++)
    x[i] = (uint8_t)rnd();
  for (int64_t i = 0; i < nw; i++)
    w[i] = (uint8_t)rnd();
  const int64_t nws = cc->per_channel ? cc->m : 1;
  for (int64_t i = 0; i < cc->m; i++) {
    b[i] = (int32_t)(rnd() % 40001) - 20000;
    ws[i] = (float)(1 + rnd() % 1000) / 97001.f;
    wzp[i] = cc->w_signed ? 0 : (uint8_t)(rnd() % 256);
  }
  if (!cc->per_channel)
    for (int64_t i = 1; i < cc->m; i++)
      wzp[i] = wzp[0];
  float xs = (float)(1 + rnd() % 1000) / 9973.f, ys = (float)(1 + rnd() % 1000) / 8111.f;
  uint8_t xzp = (uint8_t)rnd(), yzp = (uint8_t)rnd();

  ri__conv_params params;
  fill_conv_params(cc, &params);
  int ins[9] = {0, 1, 2, 3, 4, 5, 6, 7, cc->bias ? 8 : -1}, outs[1] = {9};
  ri__node node = {.name = "qc",
                   .op = RI__OP_QLinearConv,
                   .inputs = ins,
                   .n_inputs = 9,
                   .outputs = outs,
                   .n_outputs = 1,
                   .params = &params};
  const ri_dtype xt = cc->x_signed ? RI_DTYPE_INT8 : RI_DTYPE_UINT8;
  const ri_dtype wt = cc->w_signed ? RI_DTYPE_INT8 : RI_DTYPE_UINT8;
  const ri_dtype yt = cc->y_signed ? RI_DTYPE_INT8 : RI_DTYPE_UINT8;
  const ri__shape one = {.rank = 0}, pm = {.rank = 1, .dims = {nws}};
  ri__tensor in[9] = {{xt, {4, {n, cc->c, cc->h, cc->w}}, x},
                      {RI_DTYPE_FLOAT32, one, &xs},
                      {xt, one, &xzp},
                      {wt, {4, {cc->m, cg, cc->k, cc->k}}, w},
                      {RI_DTYPE_FLOAT32, pm, ws},
                      {wt, pm, wzp},
                      {RI_DTYPE_FLOAT32, one, &ys},
                      {yt, one, &yzp},
                      {RI_DTYPE_INT32, {1, {cc->m}}, cc->bias ? b : NULL}};
  ri__tensor out = {yt, {4, {n, cc->m, oh, ow}}, y};
  ri__err err = {0};
  ri__exec ex = {.pool = pool, .err = &err};
  CHECK(ri__ref_QLinearConv(&node, in, &out, &ex) == RI_OK);

  const int32_t qmin = cc->y_signed ? -128 : 0, qmax = cc->y_signed ? 127 : 255;
  const int32_t xz = q_at(&xzp, cc->x_signed, 0), yz = q_at(&yzp, cc->y_signed, 0);
  int64_t bad = 0;
  for (int64_t im = 0; im < n; im++)
    for (int64_t m = 0; m < cc->m; m++) {
      const int64_t g = m / mg;
      const int32_t wz = q_at(wzp, cc->w_signed, cc->per_channel ? m : 0);
      const float prod = xs * ws[cc->per_channel ? m : 0];
      const float sc = prod / ys;
      for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
          int64_t acc = cc->bias ? b[m] : 0;
          for (int64_t ic = 0; ic < cg; ic++)
            for (int64_t ki = 0; ki < cc->k; ki++)
              for (int64_t kj = 0; kj < cc->k; kj++) {
                const int64_t iy = oy * cc->stride + ki - cc->pad, ix = ox * cc->stride + kj - cc->pad;
                if (iy < 0 || iy >= cc->h || ix < 0 || ix >= cc->w) continue;
                const int64_t xi = ((im * cc->c + g * cg + ic) * cc->h + iy) * cc->w + ix;
                const int64_t wi = ((m * cg + ic) * cc->k + ki) * cc->k + kj;
                acc += (int64_t)(q_at(x, cc->x_signed, xi) - xz) * (q_at(w, cc->w_signed, wi) - wz);
              }
          float v = nearbyintf((float)acc * sc);
          int32_t want = (int32_t)fmaxf(fminf(v + (float)yz, (float)qmax), (float)qmin);
          const int64_t yi = ((im * cc->m + m) * oh + oy) * ow + ox;
          if (q_at(y, cc->y_signed, yi) != want) bad++;
        }
    }
  CHECK_MSG(bad == 0, "QLinearConv C=%lld M=%lld k=%lld group=%lld stride=%lld: %lld of %lld outputs differ",
            (long long)cc->c, (long long)cc->m, (long long)cc->k, (long long)cc->group, (long long)cc->stride,
            (long long)bad, (long long)ny);
done:
  ri__free(x);
  ri__free(w);
  ri__free(y);
  ri__free(b);
  ri__free(ws);
  ri__free(wzp);
}

static void run_float_conv(ri__pool *pool, const conv_case *cc) {
  const case_dims d = dims_of(cc);
  const int64_t n = d.n, cg = d.cg, mg = d.mg, kk = d.kk, oh = d.oh, ow = d.ow, nx = d.nx, nw = d.nw,
                ny = d.ny;
  float *x = ri__malloc((size_t)nx * sizeof(float)), *w = ri__malloc((size_t)nw * sizeof(float));
  float *y = ri__malloc((size_t)ny * sizeof(float)), *b = ri__malloc((size_t)cc->m * sizeof(float));
  CHECK(x && w && y && b);
  if (!x || !w || !y || !b) goto done;
  for (int64_t i = 0; i < nx; i++)
    x[i] = (float)((int)(rnd() % 255) - 127) * 0.0371f;
  for (int64_t i = 0; i < nw; i++)
    w[i] = (float)((int)(rnd() % 255) - 127) * 0.00313f;
  for (int64_t i = 0; i < cc->m; i++)
    b[i] = (float)((int)(rnd() % 2001) - 1000) * 0.0011f;
  ri__conv_params params;
  fill_conv_params(cc, &params);
  int ins[3] = {0, 1, cc->bias ? 2 : -1}, outs[1] = {3};
  ri__node node = {.name = "fc",
                   .op = RI__OP_Conv,
                   .inputs = ins,
                   .n_inputs = 3,
                   .outputs = outs,
                   .n_outputs = 1,
                   .params = &params,
                   .act = RI__ACT_CLIP,
                   .act_a = 0.f,
                   .act_b = 6.f,
                   .tactic = RI__CONV_TACTIC_QDQ_ORDER};
  ri__tensor in[3] = {{RI_DTYPE_FLOAT32, {4, {n, cc->c, cc->h, cc->w}}, x},
                      {RI_DTYPE_FLOAT32, {4, {cc->m, cg, cc->k, cc->k}}, w},
                      {RI_DTYPE_FLOAT32, {1, {cc->m}}, cc->bias ? b : NULL}};
  ri__tensor out = {RI_DTYPE_FLOAT32, {4, {n, cc->m, oh, ow}}, y};
  ri__err err = {0};
  ri__exec ex = {.pool = pool, .err = &err};
  CHECK(ri__ref_Conv(&node, in, &out, &ex) == RI_OK);
  const int64_t sk = ri__conv_qdq_block_k(oh * ow, kk);
  int64_t bad = 0;
  for (int64_t im = 0; im < n; im++)
    for (int64_t m = 0; m < cc->m; m++)
      for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
          float tot = 0.f;
          for (int64_t k0 = 0; k0 < kk; k0 += sk) {
            float acc = 0.f;
            for (int64_t r = k0; r < kk && r < k0 + sk; r++) {
              const int64_t ic = r / (cc->k * cc->k), ki = (r / cc->k) % cc->k, kj = r % cc->k;
              const int64_t iy = oy * cc->stride + ki - cc->pad, ix = ox * cc->stride + kj - cc->pad;
              const float xv = iy < 0 || iy >= cc->h || ix < 0 || ix >= cc->w
                                   ? 0.f
                                   : x[((im * cc->c + (m / mg) * cg + ic) * cc->h + iy) * cc->w + ix];
              acc = fmaf(w[m * kk + r], xv, acc);
            }
            tot = k0 == 0 ? acc : tot + acc;
          }
          float want = tot + (cc->bias ? b[m] : 0.f);
          want = want < 0.f ? 0.f : (want > 6.f ? 6.f : want);
          if (y[((im * cc->m + m) * oh + oy) * ow + ox] != want) bad++;
        }
  CHECK_MSG(bad == 0, "Q/DQ-order Conv C=%lld M=%lld k=%lld group=%lld: %lld of %lld outputs differ",
            (long long)cc->c, (long long)cc->m, (long long)cc->k, (long long)cc->group, (long long)bad,
            (long long)ny);
done:
  ri__free(x);
  ri__free(w);
  ri__free(y);
  ri__free(b);
}

static void run_qlinear_add(ri__pool *pool, int is_signed) {
  const int64_t len = 3 * 4099;
  uint8_t *a = ri__malloc((size_t)len), *bb = ri__malloc((size_t)len), *c = ri__malloc((size_t)len);
  CHECK(a && bb && c);
  if (!a || !bb || !c) goto done;
  for (int64_t i = 0; i < len; i++) {
    a[i] = (uint8_t)rnd();
    bb[i] = (uint8_t)rnd();
  }
  for (int rep = 0; rep < 20; rep++) {
    float sa = (float)(1 + rnd() % 1000) / 7001.f, sb = (float)(1 + rnd() % 1000) / 6007.f,
          sc = (float)(1 + rnd() % 1000) / 5003.f;
    uint8_t za = (uint8_t)rnd(), zb = (uint8_t)rnd(), zc = (uint8_t)rnd();
    int ins[8] = {0, 1, 2, 3, 4, 5, 6, 7}, outs[1] = {8};
    ri__node node = {
        .name = "qa", .op = RI__OP_QLinearAdd, .inputs = ins, .n_inputs = 8, .outputs = outs, .n_outputs = 1};
    const ri_dtype t = is_signed ? RI_DTYPE_INT8 : RI_DTYPE_UINT8;
    const ri__shape one = {.rank = 0}, full = {.rank = 1, .dims = {len}};
    ri__tensor in[8] = {{t, full, a},
                        {RI_DTYPE_FLOAT32, one, &sa},
                        {t, one, &za},
                        {t, full, bb},
                        {RI_DTYPE_FLOAT32, one, &sb},
                        {t, one, &zb},
                        {RI_DTYPE_FLOAT32, one, &sc},
                        {t, one, &zc}};
    ri__tensor out = {t, full, c};
    ri__err err = {0};
    ri__exec ex = {.pool = pool, .err = &err};
    CHECK(ri__ref_QLinearAdd(&node, in, &out, &ex) == RI_OK);
    /* the uint8 form: int8 values and zero points shifted by 128 */
    const int sh = is_signed ? 128 : 0;
    const float ra = sa / sc, rb = sb / sc;
    const float base =
        (float)(q_at(&zc, is_signed, 0) + sh) -
        fmaf(ra, (float)(q_at(&za, is_signed, 0) + sh), rb * (float)(q_at(&zb, is_signed, 0) + sh));
    int64_t bad = 0;
    for (int64_t i = 0; i < len; i++) {
      float v =
          fmaf((float)(q_at(a, is_signed, i) + sh), ra, fmaf((float)(q_at(bb, is_signed, i) + sh), rb, base));
      v = nearbyintf(v);
      int32_t want = (int32_t)fmaxf(fminf(v, 255.f), 0.f) - sh;
      if (q_at(c, is_signed, i) != want) bad++;
    }
    CHECK_MSG(bad == 0, "QLinearAdd (%s): %lld of %lld outputs differ", is_signed ? "int8" : "uint8",
              (long long)bad, (long long)len);
  }
done:
  ri__free(a);
  ri__free(bb);
  ri__free(c);
}

int main(void) {
  for (int threads = 1; threads <= 2; threads++) {
    ri__pool *pool = ri__pool_create(threads);
    CHECK(pool != NULL);
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
      run_qlinear_conv(pool, &k_cases[i]);
      run_float_conv(pool, &k_cases[i]);
    }
    run_qlinear_add(pool, 0);
    run_qlinear_add(pool, 1);
    ri__pool_destroy(pool);
  }
  CHECK(ri__alloc_live() == 0);
  return test_done("test_qlinear_kernels");
}
