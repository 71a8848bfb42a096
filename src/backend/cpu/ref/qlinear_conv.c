/* Reference QLinearConv, NCHW (1-D as H = 1), uint8/int8 activations and weights.
 *
 * Arithmetic, chosen to give onnxruntime's CPU results bit for bit (its QLinearConv kernel and MLAS's
 * requantisation; docs/decisions.md, "Integer Q/DQ"):
 *   acc[m]   = B[m] + sum over the window of (x - x_zero_point) * (w[m] - w_zero_point[m])   exact, int32
 *   scale[m] = (x_scale * w_scale[m]) / y_scale                                     two float32 roundings
 *   y        = clamp(round_half_even((float)acc[m] * scale[m]), qmin - y_zp, qmax - y_zp) + y_zp
 * Padding contributes x_zero_point, that is 0 after the subtraction.
 *
 * Layout of the work: weights and activations are widened to int16 with their zero points subtracted
 * (|value| <= 255), so that the inner loops are int16 dot products with int32 sums, which compilers turn
 * into multiply-add vector instructions. Groups with several output channels gather each output pixel's
 * window into a contiguous row (pixel-major im2col) and take dot products with every weight row; groups of
 * one output channel (depthwise) run a direct loop per output plane. Work is split over output pixels
 * (im2col path) or planes (direct path) on the pool. */
#include <string.h>

#include "backend/cpu/kernel.h"
#include "core/alloc.h"
#include "graph/ops/conv_params.h"

/* Adding and subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to the nearest integer, ties to
 * even, in the default rounding mode; the operands are clamped to a few hundred before. */
#define ROUND_MAGIC 12582912.0f

typedef struct {
  const int16_t *x; /* [N, C, H, W], zero point removed */
  const int16_t *w; /* [M, Cg * kH * kW], zero point removed */
  const int32_t *bias;
  const float *scale; /* [M] */
  void *y;
  int y_signed;
  int32_t y_zp;
  float lo, hi; /* clamp bounds before adding the zero point */
  int64_t c, h, wd, m, cg, mg, kh, kw, oh, ow, k;
  int64_t sh, sw, dh, dw, pt, pl;
  int64_t image, group; /* im2col path: the (image, group) being computed */
  int16_t *col;         /* im2col path: [OH * OW, K] */
} qconv_job;

static void store(const qconv_job *j, int64_t idx, int64_t oc, int32_t acc) {
  float v = (float)acc * j->scale[oc];
  if (!(v >= j->lo)) v = j->lo; /* also maps NaN from a broken scale to the low bound */
  if (v > j->hi) v = j->hi;
  const int32_t r = (int32_t)((v + ROUND_MAGIC) - ROUND_MAGIC) + j->y_zp;
  if (j->y_signed)
    ((int8_t *)j->y)[idx] = (int8_t)r;
  else
    ((uint8_t *)j->y)[idx] = (uint8_t)r;
}

/* Output indices o in [*lo, *hi) whose input index o * stride + offset lies in [0, in_len). */
static void valid_range(int64_t out_len, int64_t in_len, int64_t stride, int64_t offset, int64_t *lo,
                        int64_t *hi) {
  int64_t l = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t last = in_len - 1 - offset;
  int64_t h = last < 0 ? 0 : last / stride + 1;
  if (h > out_len) h = out_len;
  if (l > h) l = h;
  *lo = l;
  *hi = h;
}

#define ROW_CHUNK 512

/* One output plane (image, output channel) per index: the depthwise-like path. Rows are computed in chunks
 * of ROW_CHUNK output pixels with int32 sums on the stack. */
static void direct_planes(void *arg, int64_t begin, int64_t end) {
  const qconv_job *j = arg;
  const int64_t p = j->oh * j->ow;
  int32_t acc[ROW_CHUNK];
  for (int64_t t = begin; t < end; t++) {
    const int64_t n = t / j->m, oc = t % j->m, g = oc / j->mg;
    const int32_t b0 = j->bias ? j->bias[oc] : 0;
    for (int64_t oy = 0; oy < j->oh; oy++) {
      for (int64_t c0 = 0; c0 < j->ow; c0 += ROW_CHUNK) {
        const int64_t c1 = c0 + ROW_CHUNK < j->ow ? c0 + ROW_CHUNK : j->ow;
        for (int64_t ox = 0; ox < c1 - c0; ox++)
          acc[ox] = b0;
        for (int64_t icg = 0; icg < j->cg; icg++) {
          const int16_t *xc = j->x + (n * j->c + g * j->cg + icg) * j->h * j->wd;
          const int16_t *wk = j->w + (oc * j->cg + icg) * j->kh * j->kw;
          for (int64_t ki = 0; ki < j->kh; ki++) {
            const int64_t iy = oy * j->sh + ki * j->dh - j->pt;
            if (iy < 0 || iy >= j->h) continue;
            for (int64_t kj = 0; kj < j->kw; kj++) {
              const int32_t wv = wk[ki * j->kw + kj];
              int64_t wlo, whi;
              valid_range(j->ow, j->wd, j->sw, kj * j->dw - j->pl, &wlo, &whi);
              if (wlo < c0) wlo = c0;
              if (whi > c1) whi = c1;
              const int16_t *src = xc + iy * j->wd + kj * j->dw - j->pl;
              if (j->sw == 1)
                for (int64_t ox = wlo; ox < whi; ox++)
                  acc[ox - c0] += wv * src[ox];
              else
                for (int64_t ox = wlo; ox < whi; ox++)
                  acc[ox - c0] += wv * src[ox * j->sw];
            }
          }
        }
        const int64_t base = t * p + oy * j->ow;
        for (int64_t ox = c0; ox < c1; ox++)
          store(j, base + ox, oc, acc[ox - c0]);
      }
    }
  }
}

/* Rows of the pixel-major patch matrix of the current (image, group), one output pixel per index. */
static void im2col_pixels(void *arg, int64_t begin, int64_t end) {
  const qconv_job *j = arg;
  const int16_t *xg = j->x + (j->image * j->c + j->group * j->cg) * j->h * j->wd;
  for (int64_t pix = begin; pix < end; pix++) {
    const int64_t oy = pix / j->ow, ox = pix % j->ow;
    int16_t *row = j->col + pix * j->k;
    for (int64_t ic = 0; ic < j->cg; ic++) {
      const int16_t *xc = xg + ic * j->h * j->wd;
      for (int64_t ki = 0; ki < j->kh; ki++) {
        const int64_t iy = oy * j->sh + ki * j->dh - j->pt;
        for (int64_t kj = 0; kj < j->kw; kj++) {
          const int64_t ix = ox * j->sw + kj * j->dw - j->pl;
          *row++ = iy >= 0 && iy < j->h && ix >= 0 && ix < j->wd ? xc[iy * j->wd + ix] : 0;
        }
      }
    }
  }
}

static int32_t dot(const int16_t *a, const int16_t *b, int64_t k) {
  int32_t s = 0;
  for (int64_t i = 0; i < k; i++)
    s += (int32_t)a[i] * (int32_t)b[i];
  return s;
}

/* Four dot products of one patch row with four weight rows, in one pass over the row. */
static void dot4(const int16_t *a, const int16_t *w, int64_t k, int32_t out[4]) {
  const int16_t *w0 = w, *w1 = w + k, *w2 = w + 2 * k, *w3 = w + 3 * k;
  int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int64_t i = 0; i < k; i++) {
    const int32_t v = a[i];
    s0 += v * w0[i];
    s1 += v * w1[i];
    s2 += v * w2[i];
    s3 += v * w3[i];
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

/* Output pixels of the current (image, group), one per index: all the group's output channels. */
static void gemm_pixels(void *arg, int64_t begin, int64_t end) {
  const qconv_job *j = arg;
  const int64_t p = j->oh * j->ow;
  for (int64_t pix = begin; pix < end; pix++) {
    const int16_t *row = j->col + pix * j->k;
    int64_t oc = 0;
    for (; oc + 4 <= j->mg; oc += 4) {
      const int64_t m0 = j->group * j->mg + oc;
      int32_t s[4];
      dot4(row, j->w + m0 * j->k, j->k, s);
      for (int q = 0; q < 4; q++)
        store(j, (j->image * j->m + m0 + q) * p + pix, m0 + q, s[q] + (j->bias ? j->bias[m0 + q] : 0));
    }
    for (; oc < j->mg; oc++) {
      const int64_t m0 = j->group * j->mg + oc;
      const int32_t s = dot(row, j->w + m0 * j->k, j->k);
      store(j, (j->image * j->m + m0) * p + pix, m0, s + (j->bias ? j->bias[m0] : 0));
    }
  }
}

static int32_t elem(const ri__tensor *t, int64_t i) {
  return t->dtype == RI_DTYPE_INT8 ? ((const int8_t *)t->data)[i] : ((const uint8_t *)t->data)[i];
}

ri_status ri__ref_QLinearConv(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x) {
  const ri__conv_params *p = n->params;
  if (!p) return ri__err_set(x->err, RI_ERR_INTERNAL, "QLinearConv node '%s': check() has not run", n->name);
  qconv_job j;
  memset(&j, 0, sizeof j);
  const int64_t batch = in[0].shape.dims[0];
  j.c = in[0].shape.dims[1];
  j.m = in[3].shape.dims[0];
  j.cg = in[3].shape.dims[1];
  j.mg = j.m / p->group;
  ri__window_hw(&p->win, &in[0].shape, &j.h, &j.wd);
  j.kh = p->win.kernel[0];
  j.kw = p->win.kernel[1];
  j.k = j.cg * j.kh * j.kw;
  int64_t pads[4];
  ri__conv_resolve_pads(p, j.h, j.wd, pads);
  ri__conv_out_size(p, j.h, j.wd, &j.oh, &j.ow);
  j.sh = p->win.stride[0];
  j.sw = p->win.stride[1];
  j.dh = p->win.dilation[0];
  j.dw = p->win.dilation[1];
  j.pt = pads[0];
  j.pl = pads[1];
  j.bias = p->has_bias && n->n_inputs > 8 ? in[8].data : NULL;
  j.y = out[0].data;
  j.y_signed = out[0].dtype == RI_DTYPE_INT8;
  j.y_zp = elem(&in[7], 0);
  j.lo = (float)((j.y_signed ? -128 : 0) - j.y_zp);
  j.hi = (float)((j.y_signed ? 127 : 255) - j.y_zp);

  const int64_t nx = batch * j.c * j.h * j.wd, nw = j.m * j.k, pl = j.oh * j.ow;
  const int im2col = j.mg > 1;
  size_t col_elems = 0, total;
  if ((im2col && !ri__mul_size((size_t)pl, (size_t)j.k, &col_elems)) ||
      !ri__mul_size((size_t)(nx + nw) + col_elems, sizeof(int16_t), &total))
    return ri__err_set(x->err, RI_ERR_LIMIT,
                       "QLinearConv node '%s': patch matrix of %lld x %lld is too large", n->name,
                       (long long)pl, (long long)j.k);
  int16_t *xw = ri__malloc(total);
  float *scale = ri__malloc((size_t)j.m * sizeof(float));
  if (!xw || !scale) {
    ri__free(xw);
    ri__free(scale);
    return RI__OOM(x->err);
  }
  int16_t *xs16 = xw, *ws16 = xw + nx;
  j.col = im2col ? ws16 + nw : NULL;

  const int32_t xzp = elem(&in[2], 0);
  const int64_t nws = ri__shape_numel(&in[4].shape), nwz = ri__shape_numel(&in[5].shape);
  const float xscale = *(const float *)in[1].data, yscale = *(const float *)in[6].data;
  for (int64_t i = 0; i < nx; i++)
    xs16[i] = (int16_t)(elem(&in[0], i) - xzp);
  for (int64_t m = 0; m < j.m; m++) {
    const int32_t wzp = elem(&in[5], nwz == 1 ? 0 : m);
    for (int64_t i = 0; i < j.k; i++)
      ws16[m * j.k + i] = (int16_t)(elem(&in[3], m * j.k + i) - wzp);
    const float prod = xscale * ((const float *)in[4].data)[nws == 1 ? 0 : m];
    scale[m] = prod / yscale;
  }
  j.x = xs16;
  j.w = ws16;
  j.scale = scale;

  if (!im2col) {
    ri__pool_for(x->pool, batch * j.m, 1, direct_planes, &j);
  } else {
    for (j.image = 0; j.image < batch; j.image++) {
      for (j.group = 0; j.group < p->group; j.group++) {
        ri__pool_for(x->pool, pl, 64, im2col_pixels, &j);
        ri__pool_for(x->pool, pl, 16, gemm_pixels, &j);
      }
    }
  }
  ri__free(xw);
  ri__free(scale);
  return RI_OK;
}
