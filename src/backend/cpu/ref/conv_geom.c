/* Convolution geometry and the direct path's row walk, shared by the CPU reference convolutions
 * (conv_geom.h). */
#include "backend/cpu/ref/conv_geom.h"

void ri__conv_geom_init(ri__conv_geom *g, const ri__conv_params *p, const ri__shape *x, const ri__shape *w) {
  g->batch = x->dims[0];
  g->c = x->dims[1];
  g->m = w->dims[0];
  g->cg = w->dims[1];
  g->mg = g->m / p->group;
  ri__window_hw(&p->win, x, &g->h, &g->wd);
  g->kh = p->win.kernel[0];
  g->kw = p->win.kernel[1];
  g->k = g->cg * g->kh * g->kw;
  int64_t pads[4];
  ri__conv_resolve_pads(p, g->h, g->wd, pads);
  ri__conv_out_size(p, g->h, g->wd, &g->oh, &g->ow);
  g->sh = p->win.stride[0];
  g->sw = p->win.stride[1];
  g->dh = p->win.dilation[0];
  g->dw = p->win.dilation[1];
  g->pt = pads[0];
  g->pl = pads[1];
  g->pb = pads[2];
  g->pr = pads[3];
}

void ri__conv_for_segments(const ri__conv_geom *g, int64_t begin, int64_t end,
                           void (*seg)(const void *job, const ri__conv_seg *s), const void *job) {
  ri__conv_seg s;
  for (s.t = begin; s.t < end; s.t++) {
    s.n = s.t / g->m;
    s.oc = s.t % g->m;
    s.g = s.oc / g->mg;
    for (s.oy = 0; s.oy < g->oh; s.oy++) {
      for (s.c0 = 0; s.c0 < g->ow; s.c0 += RI__CONV_SEG_MAX) {
        s.c1 = s.c0 + RI__CONV_SEG_MAX < g->ow ? s.c0 + RI__CONV_SEG_MAX : g->ow;
        seg(job, &s);
      }
    }
  }
}
