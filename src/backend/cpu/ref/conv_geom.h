/* Geometry of a 2-D convolution (1-D as H = 1) as the CPU reference convolutions see it (conv.c,
 * conv_qdq_order.c, qlinear_conv.c), and the row walk of their direct (depthwise-like) paths. */
#ifndef RI_BACKEND_CPU_REF_CONV_GEOM_H
#define RI_BACKEND_CPU_REF_CONV_GEOM_H

#include <stdint.h>

#include "graph/ops/conv_params.h"

typedef struct {
  int64_t batch, c, h, wd; /* input [batch, c, h, wd] */
  int64_t m, cg, mg;       /* output channels; input and output channels per group */
  int64_t kh, kw, k;       /* kernel; k = cg * kh * kw, the length of a patch */
  int64_t oh, ow;          /* output rows and columns */
  int64_t sh, sw, dh, dw;  /* strides and dilations */
  int64_t pt, pl, pb, pr;  /* resolved pads: top, left, bottom, right */
} ri__conv_geom;

/* Fills *g for a Conv with parameters p, input shape x and weight shape w ([M, Cg, (kH,) kW]). */
void ri__conv_geom_init(ri__conv_geom *g, const ri__conv_params *p, const ri__shape *x, const ri__shape *w);

/* 1x1 kernel, stride 1, no padding: the input of a group is already its [K, OH * OW] patch matrix. */
static inline int ri__conv_geom_pointwise(const ri__conv_geom *g) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 && g->pb == 0 &&
         g->pr == 0;
}

/* Output indices o in [*lo, *hi) whose input index o * stride + offset lies in [0, in_len). */
static inline void ri__conv_valid_range(int64_t out_len, int64_t in_len, int64_t stride, int64_t offset,
                                        int64_t *lo, int64_t *hi) {
  int64_t l = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t last = in_len - 1 - offset; /* o * stride <= last */
  int64_t h = last < 0 ? 0 : last / stride + 1;
  if (h > out_len) h = out_len;
  if (l > h) l = h;
  *lo = l;
  *hi = h;
}

/* The most output columns of one row segment of the direct path. */
#define RI__CONV_SEG_MAX 512

/* A row segment of the direct path: output row oy, columns [c0, c1), of plane t = (image n, output
 * channel oc of group g). */
typedef struct {
  int64_t t, n, oc, g, oy, c0, c1;
} ri__conv_seg;

/* Output columns [*lo, *hi) of segment s whose kernel column at input offset off (kj * dw - pl) reads
 * inside the input row. */
static inline void ri__conv_seg_cols(const ri__conv_geom *g, const ri__conv_seg *s, int64_t off, int64_t *lo,
                                     int64_t *hi) {
  ri__conv_valid_range(g->ow, g->wd, g->sw, off, lo, hi);
  if (*lo < s->c0) *lo = s->c0;
  if (*hi > s->c1) *hi = s->c1;
}

/* Calls seg(job, s) for every row segment, in order, of the output planes t in [begin, end) (t = image *
 * m + output channel): the direct path's pool task body. */
void ri__conv_for_segments(const ri__conv_geom *g, int64_t begin, int64_t end,
                           void (*seg)(const void *job, const ri__conv_seg *s), const void *job);

#endif
