/* Detection post-processing: SSD anchors checked against values worked out by hand from the TF-OD
 * formula, config text, box decoding, NMS against a straightforward double-precision implementation
 * written here, classification top-k, and the JSON writers. */
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "runinfer/vision.h"
#include "test.h"

static uint64_t g_rng = 0x243F6A8885A308D3ull;
static uint32_t rnd(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (uint32_t)(g_rng >> 16);
}
static float rndf(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() % 1000001) / 1000000.0f; }

static int near(double a, double b, double tol) { return fabs(a - b) <= tol; }

/* ---- anchors ------------------------------------------------------------------------------------------- */

static void check_anchor(const float *a, size_t i, double yc, double xc, double h, double w) {
  const float *r = a + 4 * i;
  CHECK_MSG(near(r[0], yc, 1e-6) && near(r[1], xc, 1e-6) && near(r[2], h, 1e-6) && near(r[3], w, 1e-6),
            "anchor %zu = (%.7f %.7f %.7f %.7f), expected (%.7f %.7f %.7f %.7f)", i, r[0], r[1], r[2], r[3],
            yc, xc, h, w);
}

static void test_anchors(void) {
  ri_detect_config cfg;
  ri_detect_config_default(&cfg);
  CHECK(ri_ssd_anchor_count(&cfg) == 1917);
  size_t n = 0;
  ri_vision_error e;
  CHECK(ri_ssd_anchors_generate(&cfg, NULL, 0, &n, &e) == RI_ERR_LIMIT && n == 1917);
  float *a = malloc(sizeof(float) * 4 * 1917);
  CHECK(ri_ssd_anchors_generate(&cfg, a, 1917, &n, &e) == RI_OK && n == 1917);
  const double r2 = sqrt(2.0), r3 = sqrt(3.0), r13 = sqrt(0.3333);
  /* Layer 0 (19x19, reduced): per cell (0.1, 1), (0.2, 2), (0.2, 0.5); h = s / sqrt(r), w = s * sqrt(r). */
  double c0 = 0.5 / 19, c1 = 1.5 / 19;
  check_anchor(a, 0, c0, c0, 0.1, 0.1);
  check_anchor(a, 1, c0, c0, 0.2 / r2, 0.2 * r2);
  check_anchor(a, 2, c0, c0, 0.2 * r2, 0.2 / r2);
  check_anchor(a, 3, c0, c1, 0.1, 0.1);      /* next cell along x */
  check_anchor(a, 3 * 19, c1, c0, 0.1, 0.1); /* first cell of row 1 */
  check_anchor(a, 3 * 19 * 19 - 1, 18.5 / 19, 18.5 / 19, 0.2 * r2, 0.2 / r2);
  /* Layer 1 (10x10) starts at 1083: scale 0.2 + 0.75 / 5 = 0.35, next 0.5; ratios 1, 2, 0.5, 3, 0.3333 then
   * the interpolated sqrt(0.35 * 0.5) at ratio 1. */
  size_t l1 = 1083;
  double s1 = 0.35, si = sqrt(0.35 * 0.5);
  check_anchor(a, l1 + 0, 0.05, 0.05, s1, s1);
  check_anchor(a, l1 + 1, 0.05, 0.05, s1 / r2, s1 * r2);
  check_anchor(a, l1 + 2, 0.05, 0.05, s1 * r2, s1 / r2);
  check_anchor(a, l1 + 3, 0.05, 0.05, s1 / r3, s1 * r3);
  check_anchor(a, l1 + 4, 0.05, 0.05, s1 / r13, s1 * r13);
  check_anchor(a, l1 + 5, 0.05, 0.05, si, si);
  check_anchor(a, l1 + 6, 0.05, 0.15, s1, s1);
  /* Layer 2 (5x5) starts at 1083 + 600: scale 0.5. */
  check_anchor(a, 1683, 0.1, 0.1, 0.5, 0.5);
  check_anchor(a, 1683 + 5, 0.1, 0.1, sqrt(0.5 * 0.65), sqrt(0.5 * 0.65));
  /* Last layer (1x1): scale 0.95, interpolated with 1.0. */
  check_anchor(a, 1911, 0.5, 0.5, 0.95, 0.95);
  check_anchor(a, 1916, 0.5, 0.5, sqrt(0.95), sqrt(0.95));
  free(a);

  /* A different geometry: 2 layers, non-square maps, no reduction, no interpolation, base 0.5x1. */
  ri_detect_config c2;
  CHECK(
      ri_detect_config_parse("layers=2;min_scale=0.3;max_scale=0.6;ratios=1,4;reduce_lowest=0;interp_ratio=0;"
                             "base=0.5,1;fm=4x2,1x3",
                             &c2, &e) == RI_OK);
  CHECK(ri_ssd_anchor_count(&c2) == 4 * 2 * 2 + 1 * 3 * 2);
  float b[4 * 22];
  CHECK(ri_ssd_anchors_generate(&c2, b, 22, &n, NULL) == RI_OK && n == 22);
  check_anchor(b, 0, 0.25, 0.125, 0.3 * 0.5, 0.3);         /* fm 4 wide x 2 high */
  check_anchor(b, 1, 0.25, 0.125, 0.3 / 2 * 0.5, 0.3 * 2); /* ratio 4 */
  check_anchor(b, 2, 0.25, 0.375, 0.15, 0.3);
  check_anchor(b, 16, 1.0 / 6, 0.5, 0.6 * 0.5, 0.6); /* fm 1 wide x 3 high */
  check_anchor(b, 21, 5.0 / 6, 0.5, 0.6 / 2 * 0.5, 1.2);

  cfg.ssd_fm_h[2] = 0;
  CHECK(ri_ssd_anchor_count(&cfg) == 0);
  CHECK(ri_ssd_anchors_generate(&cfg, NULL, 0, &n, &e) == RI_ERR_INVALID_ARG &&
        strstr(e.msg, "feature map 2"));
}

/* ---- config text --------------------------------------------------------------------------------------- */

static int cfg_equal(const ri_detect_config *a, const ri_detect_config *b) {
  if (a->anchors != b->anchors || a->coding != b->coding || a->box_order != b->box_order ||
      a->score_fn != b->score_fn || a->background != b->background ||
      a->score_threshold != b->score_threshold || a->iou_threshold != b->iou_threshold ||
      a->max_per_class != b->max_per_class || a->max_total != b->max_total)
    return 0;
  for (int i = 0; i < 4; i++)
    if (a->box_scale[i] != b->box_scale[i]) return 0;
  if (a->anchors != RI_ANCHORS_SSD) return 1;
  if (a->ssd_num_layers != b->ssd_num_layers || a->ssd_min_scale != b->ssd_min_scale ||
      a->ssd_max_scale != b->ssd_max_scale || a->ssd_num_ratios != b->ssd_num_ratios ||
      a->ssd_reduce_lowest != b->ssd_reduce_lowest || a->ssd_interp_ratio != b->ssd_interp_ratio ||
      a->ssd_base_h != b->ssd_base_h || a->ssd_base_w != b->ssd_base_w || a->ssd_offset != b->ssd_offset)
    return 0;
  for (int i = 0; i < a->ssd_num_ratios; i++)
    if (a->ssd_ratios[i] != b->ssd_ratios[i]) return 0;
  for (int i = 0; i < a->ssd_num_layers; i++)
    if (a->ssd_fm_h[i] != b->ssd_fm_h[i] || a->ssd_fm_w[i] != b->ssd_fm_w[i]) return 0;
  return 1;
}

static void test_config_text(void) {
  ri_detect_config c, d;
  ri_vision_error e;
  char buf[1024];
  size_t need;
  ri_detect_config_default(&c);
  CHECK(ri_detect_config_to_string(&c, buf, sizeof buf, &need, &e) == RI_OK && need == strlen(buf) + 1);
  CHECK_MSG(
      strcmp(buf,
             "anchors=ssd;layers=6;min_scale=0.200000003;max_scale=0.949999988;"
             "ratios=1,2,0.5,3,0.333299994;reduce_lowest=1;interp_ratio=1;base=1,1;offset=0.5;"
             "fm=19,10,5,3,2,1;coding=center;box_scale=10,10,5,5;box_order=yxhw;score=sigmoid;"
             "background=1;score_threshold=0.300000012;iou=0.600000024;max_per_class=100;max_total=100") == 0,
      "%s", buf);
  CHECK(ri_detect_config_parse(buf, &d, &e) == RI_OK && cfg_equal(&c, &d));
  CHECK(ri_detect_config_parse("", &d, &e) == RI_OK && cfg_equal(&c, &d));
  CHECK(ri_detect_config_parse(
            "anchors=xyxy;coding=corner;score=softmax;background=0;score_threshold=0.5;iou=0.45", &d, &e) ==
        RI_OK);
  CHECK(d.anchors == RI_ANCHORS_TENSOR_XYXY && d.coding == RI_BOX_CODING_CORNER_OFFSETS &&
        d.score_fn == RI_SCORE_SOFTMAX && d.background == 0 && d.score_threshold == 0.5f &&
        d.iou_threshold == 0.45f);
  CHECK(ri_detect_config_to_string(&d, buf, sizeof buf, NULL, NULL) == RI_OK &&
        strstr(buf, "layers") == NULL);
  ri_detect_config d2;
  CHECK(ri_detect_config_parse(buf, &d2, &e) == RI_OK && cfg_equal(&d, &d2));

  struct {
    const char *text, *needle;
  } bad[] = {{"layers=3", "fm"},
             {"fm=19,10", "fm"},
             {"iou=1.5", "iou"},
             {"anchors=grid", "anchors"},
             {"box_scale=1,2,3", "box_scale"},
             {"box_scale=0,1,1,1", "box_scale"},
             {"score=relu", "score"},
             {"max_total=0", "max_total"},
             {"ratios=1,2,3,4,5,6,7,8,9", "ratios"},
             {"background=2", "background"},
             {"fm=19,10,5,3,2,0", "fm"},
             {"min_scale=0.9;max_scale=0.2", "scales"},
             {"foo=1", "foo"},
             {"iou=0.5;iou=0.6", "repeated"},
             {"fm=5000,1,1,1,1,1", "fm"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ri_status st = ri_detect_config_parse(bad[i].text, &d, &e);
    CHECK_MSG(st == RI_ERR_PARSE && strstr(e.msg, bad[i].needle), "'%s': %d %s", bad[i].text, (int)st, e.msg);
  }
  /* Random configs round-trip exactly. */
  for (int i = 0; i < 300; i++) {
    ri_detect_config_default(&c);
    c.anchors = (ri_anchor_source)(rnd() % 3);
    c.ssd_num_layers = 1 + (int)(rnd() % 8);
    c.ssd_min_scale = rndf(0.01f, 0.5f);
    c.ssd_max_scale = c.ssd_min_scale + rndf(0, 0.5f);
    c.ssd_num_ratios = 1 + (int)(rnd() % 8);
    for (int k = 0; k < c.ssd_num_ratios; k++)
      c.ssd_ratios[k] = rndf(0.1f, 4.0f);
    c.ssd_reduce_lowest = (int)(rnd() & 1);
    c.ssd_interp_ratio = rnd() & 1 ? rndf(0.5f, 2) : 0.0f;
    c.ssd_base_h = rndf(0.1f, 2);
    c.ssd_base_w = rndf(0.1f, 2);
    c.ssd_offset = rndf(0, 1);
    for (int k = 0; k < c.ssd_num_layers; k++) {
      c.ssd_fm_h[k] = 1 + (int)(rnd() % 40);
      c.ssd_fm_w[k] = rnd() & 1 ? c.ssd_fm_h[k] : 1 + (int)(rnd() % 40);
    }
    c.coding = (ri_box_coding)(rnd() % 3);
    for (int k = 0; k < 4; k++)
      c.box_scale[k] = rndf(0.5f, 20);
    c.box_order = (ri_box_order)(rnd() % 2);
    c.score_fn = (ri_score_fn)(rnd() % 3);
    c.background = (int)(rnd() & 1);
    c.score_threshold = rndf(-5, 1);
    c.iou_threshold = rndf(0, 1);
    c.max_per_class = 1 + (int)(rnd() % 500);
    c.max_total = 1 + (int)(rnd() % 500);
    CHECK(ri_detect_config_to_string(&c, buf, sizeof buf, NULL, &e) == RI_OK);
    CHECK_MSG(ri_detect_config_parse(buf, &d, &e) == RI_OK && cfg_equal(&c, &d), "round trip %s: %s", buf,
              e.msg);
  }
}

/* ---- reference post-processing ----------------------------------------------------------------------- */

typedef struct {
  double box[4];
  double score;
  int cls, anchor;
} ref_det;

static void ref_decode(const ri_detect_config *c, const float *anchors, const float *e, size_t i,
                       double o[4]) {
  const float *a = anchors ? anchors + 4 * i : NULL;
  if (c->coding == RI_BOX_CODING_NONE) {
    for (int k = 0; k < 4; k++)
      o[k] = e[k];
  } else if (c->coding == RI_BOX_CODING_CENTER_SIZE) {
    double ya, xa, ha, wa;
    if (c->anchors == RI_ANCHORS_TENSOR_XYXY) {
      xa = (a[0] + (double)a[2]) / 2, ya = (a[1] + (double)a[3]) / 2, wa = a[2] - (double)a[0],
      ha = a[3] - (double)a[1];
    } else {
      ya = a[0], xa = a[1], ha = a[2], wa = a[3];
    }
    int xy = c->box_order == RI_BOX_ORDER_XYWH;
    double ty = e[xy ? 1 : 0], tx = e[xy ? 0 : 1], th = e[xy ? 3 : 2], tw = e[xy ? 2 : 3];
    double yc = ty / c->box_scale[0] * ha + ya, xc = tx / c->box_scale[1] * wa + xa;
    double h = exp(th / c->box_scale[2]) * ha, w = exp(tw / c->box_scale[3]) * wa;
    o[0] = yc - h / 2, o[1] = xc - w / 2, o[2] = yc + h / 2, o[3] = xc + w / 2;
  } else {
    double x1, y1, x2, y2;
    if (c->anchors == RI_ANCHORS_TENSOR_XYXY) {
      x1 = a[0], y1 = a[1], x2 = a[2], y2 = a[3];
    } else {
      y1 = a[0] - a[2] / 2.0, x1 = a[1] - a[3] / 2.0, y2 = a[0] + a[2] / 2.0, x2 = a[1] + a[3] / 2.0;
    }
    double wa = x2 - x1, ha = y2 - y1;
    o[1] = e[0] * wa + x1, o[0] = e[1] * ha + y1, o[3] = e[2] * wa + x2, o[2] = e[3] * ha + y2;
  }
  for (int k = 0; k < 4; k++)
    o[k] = o[k] < 0 ? 0 : o[k] > 1 ? 1 : o[k];
}

static double ref_iou(const double *a, const double *b) {
  double ih = fmin(a[2], b[2]) - fmax(a[0], b[0]), iw = fmin(a[3], b[3]) - fmax(a[1], b[1]);
  if (ih <= 0 || iw <= 0) return 0;
  double inter = ih * iw;
  double u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return u > 0 ? inter / u : 0;
}

static int ref_before(const ref_det *a, const ref_det *b) { /* score desc, anchor asc, class asc */
  if (a->score != b->score) return a->score > b->score;
  if (a->anchor != b->anchor) return a->anchor < b->anchor;
  return a->cls < b->cls;
}

static void ref_sort(ref_det *d, size_t n) { /* insertion sort: simple and stable */
  for (size_t i = 1; i < n; i++) {
    ref_det x = d[i];
    size_t j = i;
    while (j > 0 && ref_before(&x, &d[j - 1]))
      d[j] = d[j - 1], j--;
    d[j] = x;
  }
}

static size_t ref_postprocess(const ri_detect_config *c, const float *anchors, const float *boxes,
                              const float *scores, size_t nb, size_t nc, ref_det *out) {
  double(*dec)[4] = malloc(sizeof(double[4]) * (nb ? nb : 1));
  for (size_t i = 0; i < nb; i++)
    ref_decode(c, anchors, boxes + 4 * i, i, dec[i]);
  ref_det *cand = malloc(sizeof(ref_det) * (nb ? nb : 1));
  ref_det *all = malloc(sizeof(ref_det) * (nb * nc + 1));
  size_t total = 0;
  for (size_t cls = c->background ? 1 : 0; cls < nc; cls++) {
    size_t n = 0;
    for (size_t i = 0; i < nb; i++) {
      if (!(dec[i][2] - dec[i][0] > 0) || !(dec[i][3] - dec[i][1] > 0)) continue;
      const float *row = scores + i * nc;
      double s = row[cls];
      if (c->score_fn == RI_SCORE_SIGMOID) s = 1 / (1 + exp(-s));
      if (c->score_fn == RI_SCORE_SOFTMAX) {
        double m = -INFINITY, sum = 0;
        for (size_t k = 0; k < nc; k++)
          m = fmax(m, row[k]);
        for (size_t k = 0; k < nc; k++)
          sum += exp(row[k] - m);
        s = exp(row[cls] - m) / sum;
      }
      if (!(s > c->score_threshold)) continue;
      cand[n].score = s, cand[n].anchor = (int)i, cand[n].cls = (int)cls;
      memcpy(cand[n].box, dec[i], sizeof dec[i]);
      n++;
    }
    ref_sort(cand, n);
    size_t kept0 = total;
    for (size_t j = 0; j < n && total - kept0 < (size_t)c->max_per_class; j++) {
      int ok = 1;
      for (size_t q = kept0; q < total; q++)
        if (ref_iou(cand[j].box, all[q].box) > c->iou_threshold) ok = 0;
      if (ok) all[total++] = cand[j];
    }
  }
  ref_sort(all, total);
  if (total > (size_t)c->max_total) total = (size_t)c->max_total;
  memcpy(out, all, total * sizeof *all);
  free(all);
  free(cand);
  free(dec);
  return total;
}

/* Run the detector and the reference on the same data; compare. */
static void compare_run(const ri_detect_config *c, const float *tensor_anchors, size_t nb, size_t nc,
                        const float *boxes, const float *scores, const ri_image_transform *tr,
                        const char *what) {
  ri_detector_t *det = NULL;
  ri_vision_error e;
  CHECK_MSG(ri_detector_create(c, &det, &e) == RI_OK, "%s: %s", what, e.msg);
  if (!det) return;
  if (tensor_anchors) CHECK(ri_detector_set_anchors(det, tensor_anchors, nb) == RI_OK);
  const float *anchors = NULL;
  ri_detector_anchors(det, &anchors);
  ri_detection *got = malloc(sizeof *got * 20000);
  ref_det *want = malloc(sizeof *want * (nb * nc + 1));
  size_t ng = 0;
  ri_status st = ri_detector_run(det, boxes, scores, nb, nc, tr, got, 20000, &ng);
  CHECK_MSG(st == RI_OK, "%s: %s", what, ri_detector_last_error(det));
  size_t nw =
      ref_postprocess(c, c->coding == RI_BOX_CODING_NONE ? NULL : anchors, boxes, scores, nb, nc, want);
  CHECK_MSG(ng == nw, "%s: %zu detections, reference %zu", what, ng, nw);
  size_t bad = 0;
  for (size_t i = 0; i < ng && i < nw; i++) {
    double b[4];
    memcpy(b, want[i].box, sizeof b);
    if (tr) {
      for (int k = 0; k < 4; k++) {
        int y = k % 2 == 0;
        double v = y ? (b[k] * tr->dst_height - tr->offset_y) / tr->scale_y
                     : (b[k] * tr->dst_width - tr->offset_x) / tr->scale_x;
        double hi = y ? tr->src_height : tr->src_width;
        b[k] = v < 0 ? 0 : v > hi ? hi : v;
      }
    }
    double tol = tr ? 1e-3 : 2e-6;
    if (got[i].anchor != want[i].anchor || got[i].class_id != want[i].cls ||
        !near(got[i].score, want[i].score, 1e-6) || !near(got[i].ymin, b[0], tol) ||
        !near(got[i].xmin, b[1], tol) || !near(got[i].ymax, b[2], tol) || !near(got[i].xmax, b[3], tol)) {
      if (bad++ < 3)
        fprintf(stderr, "%s #%zu: got a%d c%d %.7f (%g %g %g %g), want a%d c%d %.7f (%g %g %g %g)\n", what, i,
                got[i].anchor, got[i].class_id, got[i].score, got[i].ymin, got[i].xmin, got[i].ymax,
                got[i].xmax, want[i].anchor, want[i].cls, want[i].score, b[0], b[1], b[2], b[3]);
    }
    if (i > 0) /* sorted, with the documented tie-break */
      CHECK(got[i - 1].score > got[i].score ||
            (got[i - 1].score == got[i].score &&
             (got[i - 1].anchor < got[i].anchor ||
              (got[i - 1].anchor == got[i].anchor && got[i - 1].class_id < got[i].class_id))));
  }
  CHECK_MSG(bad == 0, "%s: %zu detections differ", what, bad);
  /* Output capacity cuts the sorted list. */
  if (ng > 3) {
    ri_detection few[3];
    size_t nf = 0;
    CHECK(ri_detector_run(det, boxes, scores, nb, nc, tr, few, 3, &nf) == RI_OK && nf == 3);
    CHECK(memcmp(few, got, sizeof few) == 0);
  }
  free(want);
  free(got);
  ri_detector_destroy(det);
}

static void test_nms_random(void) {
  const size_t nb = 1917, nc = 91;
  float *boxes = malloc(sizeof(float) * nb * 4);
  float *scores = malloc(sizeof(float) * nb * nc);
  float *anchors = malloc(sizeof(float) * nb * 4);
  for (int round = 0; round < 12; round++) {
    ri_detect_config c;
    ri_detect_config_default(&c);
    for (size_t i = 0; i < nb * 4; i++)
      boxes[i] = rndf(-1.5f, 1.5f);
    for (size_t i = 0; i < nb * nc; i++)
      scores[i] = rndf(-9.0f, 1.5f);
    /* Exact score ties between anchors (same class) exercise the tie-break. */
    for (int t = 0; t < 50; t++) {
      size_t a = rnd() % nb, b = rnd() % nb;
      memcpy(scores + b * nc, scores + a * nc, sizeof(float) * nc);
    }
    char what[64];
    snprintf(what, sizeof what, "round %d", round);
    ri_image_transform tr = {640, 480, 300, 300, 300.0 / 640, 225.0 / 480, 0, 37};
    const ri_image_transform *trp = NULL;
    const float *ta = NULL;
    switch (round) {
    case 0: break;                            /* defaults: SSD anchors, centre-size, sigmoid, background */
    case 1: c.score_threshold = 1e-8f; break; /* TF-OD's own threshold: max_total binds */
    case 2:
      c.max_per_class = 3;
      c.iou_threshold = 0.3f;
      break;
    case 3:
      c.score_fn = RI_SCORE_SOFTMAX;
      c.score_threshold = 0.02f;
      break;
    case 4:
      c.score_fn = RI_SCORE_NONE;
      c.background = 0;
      c.score_threshold = 0.9f;
      for (size_t i = 0; i < nb * nc; i++)
        scores[i] = rndf(0, 1);
      break;
    case 5: trp = &tr; break;
    case 6:
      c.box_order = RI_BOX_ORDER_XYWH;
      c.iou_threshold = 0.0f;
      break;
    case 7: /* ST-style: corner offsets on (xmin, ymin, xmax, ymax) tensor anchors */
    case 8:
      c.anchors = RI_ANCHORS_TENSOR_XYXY;
      c.coding = round == 7 ? RI_BOX_CODING_CORNER_OFFSETS : RI_BOX_CODING_CENTER_SIZE;
      for (size_t i = 0; i < nb; i++) {
        float x = rndf(-0.1f, 0.9f), y = rndf(-0.1f, 0.9f);
        anchors[4 * i] = x, anchors[4 * i + 1] = y;
        anchors[4 * i + 2] = x + rndf(0.01f, 0.5f), anchors[4 * i + 3] = y + rndf(0.01f, 0.5f);
      }
      for (size_t i = 0; i < nb * 4; i++)
        boxes[i] = rndf(-0.2f, 0.2f);
      ta = anchors;
      break;
    case 9: /* corner offsets on generated SSD anchors */
      c.coding = RI_BOX_CODING_CORNER_OFFSETS;
      for (size_t i = 0; i < nb * 4; i++)
        boxes[i] = rndf(-0.3f, 0.3f);
      break;
    case 10: /* boxes already decoded */
      c.coding = RI_BOX_CODING_NONE;
      for (size_t i = 0; i < nb; i++) {
        float y = rndf(-0.1f, 0.9f), x = rndf(-0.1f, 0.9f);
        boxes[4 * i] = y, boxes[4 * i + 1] = x, boxes[4 * i + 2] = y + rndf(-0.05f, 0.4f),
                  boxes[4 * i + 3] = x + rndf(-0.05f, 0.4f);
      }
      break;
    default: /* yxhw tensor anchors equal to the generated ones, plus a letterbox transform */
      c.anchors = RI_ANCHORS_TENSOR_YXHW;
      {
        ri_detect_config d;
        ri_detect_config_default(&d);
        size_t n;
        CHECK(ri_ssd_anchors_generate(&d, anchors, nb, &n, NULL) == RI_OK);
      }
      ta = anchors;
      trp = &tr;
      break;
    }
    if (round % 2 == 0) c.max_total = 20000; /* compare the whole NMS output, not only the top 100 */
    compare_run(&c, ta, nb, nc, boxes, scores, trp, what);
  }
  free(anchors);
  free(scores);
  free(boxes);
}

static void test_detector_errors(void) {
  ri_detect_config c;
  ri_detect_config_default(&c);
  ri_detector_t *det = NULL;
  ri_vision_error e;
  float boxes[8] = {0}, scores[2 * 91] = {0};
  ri_detection out[4];
  size_t n = 99;
  CHECK(ri_detector_create(&c, &det, &e) == RI_OK);
  CHECK(ri_detector_run(det, boxes, scores, 2, 91, NULL, out, 4, &n) == RI_ERR_SHAPE && n == 0);
  CHECK(strstr(ri_detector_last_error(det), "1917") != NULL);
  float *b = calloc(1917 * 4, sizeof(float)), *s = calloc(1917 * 91, sizeof(float));
  CHECK(ri_detector_run(det, b, s, 1917, 1, NULL, out, 4, &n) == RI_ERR_SHAPE);
  /* Zero codes give the anchors themselves and sigmoid(0) = 0.5 > 0.3: the output fills up to cap. */
  CHECK(ri_detector_run(det, b, s, 1917, 91, NULL, out, 4, &n) == RI_OK && n == 4);
  CHECK(out[0].score == 0.5f && out[0].anchor == 0 && out[0].class_id == 1);
  CHECK(ri_detector_last_error(det)[0] == 0);
  float dec[8];
  CHECK(ri_detector_decode_boxes(det, b, 2, dec) == RI_ERR_SHAPE);
  ri_detector_destroy(det);
  free(b);
  free(s);
  c.anchors = RI_ANCHORS_TENSOR_YXHW;
  CHECK(ri_detector_create(&c, &det, &e) == RI_OK);
  CHECK(ri_detector_run(det, boxes, scores, 2, 91, NULL, out, 4, &n) == RI_ERR_INVALID_ARG);
  CHECK(strstr(ri_detector_last_error(det), "set_anchors") != NULL);
  CHECK(ri_detector_set_anchors(det, NULL, 3) == RI_ERR_INVALID_ARG);
  ri_detector_destroy(det);
  c.iou_threshold = -1;
  det = (ri_detector_t *)(uintptr_t)1;
  CHECK(ri_detector_create(&c, &det, &e) == RI_ERR_INVALID_ARG && det == NULL && strstr(e.msg, "iou"));
  ri_detector_destroy(NULL);

  /* Hand-made case: two overlapping boxes of class 1 and one of class 2 (coding none, scores as-is). */
  ri_detect_config_default(&c);
  c.coding = RI_BOX_CODING_NONE;
  c.score_fn = RI_SCORE_NONE;
  c.background = 0;
  c.score_threshold = 0.1f;
  c.iou_threshold = 0.5f;
  CHECK(ri_detector_create(&c, &det, &e) == RI_OK);
  float hb[4 * 4] = {0.1f, 0.1f, 0.5f, 0.5f, 0.12f, 0.1f, 0.52f, 0.5f,
                     0.1f, 0.1f, 0.5f, 0.5f, 0.6f,  0.6f, 1.3f,  0.9f};
  float hs[4 * 3] = {0, 0.9f, 0.2f, 0, 0.8f, 0.0f, 0, 0.0f, 0.7f, 0, 0.9f, 0.05f};
  CHECK(ri_detector_run(det, hb, hs, 4, 3, NULL, out, 4, &n) == RI_OK);
  /* class 1: anchor 0 (0.9) and anchor 3 (0.9, disjoint) kept, anchor 1 (0.8, IoU 0.9 with 0) suppressed;
   * class 2: anchor 2 (0.7) and anchor 0 (0.2; same box as 2, suppressed). Tie 0.9: anchor 0 first. */
  CHECK(n == 3);
  CHECK(out[0].anchor == 0 && out[0].class_id == 1 && out[1].anchor == 3 && out[1].class_id == 1);
  CHECK(out[2].anchor == 2 && out[2].class_id == 2 && out[2].score == 0.7f);
  CHECK(out[1].ymax == 1.0f && out[1].xmax == 0.9f); /* clipped */
  ri_detector_destroy(det);
}

static void test_detector_alloc_failures(void) {
  ri_detect_config c;
  ri_detect_config_default(&c);
  c.score_threshold = 0.0f;
  size_t nb = 1917, nc = 5;
  float *boxes = calloc(nb * 4, sizeof(float)), *scores = malloc(nb * nc * sizeof(float));
  for (size_t i = 0; i < nb * nc; i++)
    scores[i] = rndf(-3, 3);
  ri_detection out[100];
  int done = 0;
  for (long k = 1; k < 50 && !done; k++) {
    long live = ri__alloc_live();
    ri_detector_t *det = NULL;
    size_t n = 0;
    ri__alloc_fail_after(k);
    ri_status st = ri_detector_create(&c, &det, NULL);
    if (st == RI_OK) st = ri_detector_run(det, boxes, scores, nb, nc, NULL, out, 100, &n);
    ri__alloc_fail_after(0);
    CHECK(st == RI_OK || st == RI_ERR_NO_MEMORY);
    if (st == RI_OK) {
      done = 1;
      CHECK(n == 100);
    }
    ri_detector_destroy(det);
    CHECK_MSG(ri__alloc_live() == live, "leak at %ld", k);
  }
  CHECK(done);
  free(boxes);
  free(scores);
}

/* ---- classification ------------------------------------------------------------------------------------ */

static void test_topk(void) {
  float s[1000];
  ri_class_score out[1000];
  size_t n = 0;
  for (int round = 0; round < 6; round++) {
    size_t len = round < 3 ? 10 : 1000;
    for (size_t i = 0; i < len; i++)
      s[i] = rndf(-5, 5);
    s[len / 2] = s[len / 3]; /* a tie */
    if (round == 2) s[4] = NAN;
    size_t k = round % 2 ? len : 5;
    if (round == 5) k = 100;
    int sm = round % 3 == 0;
    CHECK(ri_classify_topk(s, len, sm, k, out, &n, NULL) == RI_OK && n == k);
    /* Reference: selection by repeated scan for the best remaining (NaN last, ties lower index). */
    double sum = 0, m = -INFINITY;
    for (size_t i = 0; i < len; i++)
      if (!isnan(s[i])) m = fmax(m, s[i]);
    for (size_t i = 0; i < len; i++)
      if (!isnan(s[i])) sum += exp(s[i] - m);
    char *used = calloc(len, 1);
    int ok = 1;
    for (size_t r = 0; r < k; r++) {
      size_t best = len;
      for (size_t i = 0; i < len; i++) {
        if (used[i]) continue;
        if (best == len) {
          best = i;
          continue;
        }
        int bn = isnan(s[best]), in = isnan(s[i]);
        if (bn && !in)
          best = i;
        else if (!bn && !in && s[i] > s[best])
          best = i;
      }
      used[best] = 1;
      double want = sm ? exp(s[best] - m) / sum : s[best];
      if (out[r].class_id != (int)best || (!isnan(want) && !near(out[r].score, want, 1e-6))) ok = 0;
    }
    CHECK_MSG(ok, "top-k round %d", round);
    free(used);
  }
  CHECK(ri_classify_topk(s, 3, 0, 10, out, &n, NULL) == RI_OK && n == 3);
  CHECK(ri_classify_topk(NULL, 3, 0, 1, out, &n, NULL) == RI_ERR_INVALID_ARG);
  CHECK(ri_classify_topk(s, 0, 0, 1, out, &n, NULL) == RI_ERR_INVALID_ARG);
  /* Softmax probabilities sum to 1 over all classes. */
  CHECK(ri_classify_topk(s, 1000, 1, 1000, out, &n, NULL) == RI_OK);
  double tot = 0;
  for (size_t i = 0; i < n; i++)
    tot += out[i].score;
  CHECK(near(tot, 1.0, 1e-4));
}

/* ---- JSON ---------------------------------------------------------------------------------------------- */

static void check_escape(const char *in, size_t len, const char *want) {
  char buf[256];
  size_t need = 0;
  ri_status st = ri_json_escape(in, len, buf, sizeof buf, &need, NULL);
  CHECK_MSG(st == RI_OK && strcmp(buf, want) == 0 && need == strlen(want) + 1, "escape: got '%s' want '%s'",
            buf, want);
}

static void test_json(void) {
  check_escape("plain", 5, "plain");
  check_escape("a\"b\\c/d", 7, "a\\\"b\\\\c/d");
  check_escape("\n\r\t\b\f\x01\x1f\x7f", 8, "\\n\\r\\t\\b\\f\\u0001\\u001f\x7f");
  check_escape("nul\0x", 5, "nul\\u0000x");
  check_escape("caf\xc3\xa9", 5, "caf\xc3\xa9");                       /* valid UTF-8 passes */
  check_escape("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80");             /* 4-byte sequence */
  check_escape("caf\xe9", 4, "caf\\udce9");                            /* Latin-1 byte */
  check_escape("\xc0\x80", 2, "\\udcc0\\udc80");                       /* overlong NUL */
  check_escape("\xed\xa0\x80", 3, "\\udced\\udca0\\udc80");            /* encoded surrogate */
  check_escape("\xf4\x90\x80\x80", 4, "\\udcf4\\udc90\\udc80\\udc80"); /* above U+10FFFF */
  check_escape("x\xe2\x82", 3, "x\\udce2\\udc82");                     /* truncated sequence */
  check_escape("\xe2\x80\xa8|\xe2\x80\xa9", 7, "\\u2028|\\u2029");
  check_escape("\xff\xfe", 2, "\\udcff\\udcfe");
  check_escape("", 0, "");
  char small[4];
  size_t need = 0;
  ri_vision_error e;
  CHECK(ri_json_escape("abcdef", 6, small, sizeof small, &need, &e) == RI_ERR_LIMIT && need == 7 &&
        strcmp(small, "abc") == 0 && e.status == RI_ERR_LIMIT);

  ri_detection d[3] = {{0.1f, 0.2f, 0.3f, 0.4f, 0.9f, 1, 7},
                       {10.5f, 20.25f, 300.125f, 400.0f, 0.5f, 3, 9},
                       {0, 0, 1, 1, NAN, 95, 1}};
  const char *labels[4] = {"background", "person", NULL, "say \"hi\"\n"};
  char buf[1024];
  CHECK(ri_detections_to_json(d, 3, labels, 4, buf, sizeof buf, &need, &e) == RI_OK);
  CHECK_MSG(
      strcmp(buf,
             "[{\"ymin\":0.1,\"xmin\":0.2,\"ymax\":0.3,\"xmax\":0.4,\"score\":0.9,\"class\":1,\"label\":"
             "\"person\"},"
             "{\"ymin\":10.5,\"xmin\":20.25,\"ymax\":300.125,\"xmax\":400,\"score\":0.5,\"class\":3,"
             "\"label\":\"say \\\"hi\\\"\\n\"},"
             "{\"ymin\":0,\"xmin\":0,\"ymax\":1,\"xmax\":1,\"score\":null,\"class\":95,\"label\":\"\"}]") ==
          0,
      "%s", buf);
  CHECK(need == strlen(buf) + 1);
  CHECK(ri_detections_to_json(NULL, 0, NULL, 0, buf, sizeof buf, &need, &e) == RI_OK &&
        strcmp(buf, "[]") == 0);
  CHECK(ri_detections_to_json(d, 3, NULL, 0, NULL, 0, &need, &e) == RI_ERR_LIMIT && need > 100);
  CHECK(ri_detections_to_json(d, 1, labels, 4, buf, 20, &need, &e) == RI_ERR_LIMIT && strlen(buf) == 19);
}

int main(void) {
  long live0 = ri__alloc_live();
  test_anchors();
  test_config_text();
  test_nms_random();
  test_detector_errors();
  test_detector_alloc_failures();
  test_topk();
  test_json();
  CHECK(ri__alloc_live() == live0);
  return test_done("test_vision_detect");
}
