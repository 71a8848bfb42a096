#include "pipeline/postprocess.h"

#include <string.h>

#include "core/alloc.h"

static int find_output(ri_engine_t *e, const char *name) {
  if (!name) return -1;
  for (int i = 0; i < ri_engine_num_outputs(e); i++) {
    ri_tensor_info t;
    if (ri_engine_output_info(e, i, &t) == RI_OK && strcmp(t.name, name) == 0) return i;
  }
  return -1;
}

static ri_status load_labels(ri__postproc *pp, const char *text, ri__err *err) {
  if (!text) return RI_OK;
  size_t n = 1;
  for (const char *p = text; *p; p++) n += *p == '\n';
  pp->labels = ri__calloc(n, sizeof(char *));
  if (!pp->labels) return RI__OOM(err);
  const char *s = text;
  for (size_t i = 0; i < n; i++) {
    const char *e = strchr(s, '\n');
    size_t l = e ? (size_t)(e - s) : strlen(s);
    while (l && s[l - 1] == '\r') l--;
    pp->labels[i] = ri__strndup(s, l);
    if (!pp->labels[i]) return RI__OOM(err);
    pp->n_labels = i + 1;
    if (!e) break;
    s = e + 1;
  }
  return RI_OK;
}

ri_status ri__postproc_init(ri__postproc *pp, ri_engine_t *e, ri__err *err) {
  memset(pp, 0, sizeof *pp);
  pp->boxes_out = pp->scores_out = pp->anchors_out = pp->class_out = -1;
  pp->topk = 5;
  RI__TRY(load_labels(pp, ri_engine_metadata(e, "labels"), err));
  const char *task = ri_engine_metadata(e, "task");
  const char *dtext = ri_engine_metadata(e, "detect");
  int no = ri_engine_num_outputs(e);
  if ((task && strcmp(task, "classify") == 0) || (!task && !dtext && no == 1)) {
    ri_tensor_info t;
    RI__TRY(ri_engine_output_info(e, 0, &t));
    if (t.rank != 2)
      return ri__err_set(err, RI_ERR_SHAPE, "classification needs an output of shape [N,C]; '%s' has rank %d",
                         t.name, t.rank);
    pp->task = 1;
    pp->class_out = 0;
    pp->num_classes = (size_t)t.dims[1];
    return RI_OK;
  }
  ri_detect_config_default(&pp->cfg);
  ri_vision_error verr = {0};
  if (dtext && ri_detect_config_parse(dtext, &pp->cfg, &verr) != RI_OK)
    return ri__err_set(err, RI_ERR_PARSE, "engine metadata 'detect': %s", verr.msg);
  pp->boxes_out = find_output(e, ri_engine_metadata(e, "detect.boxes"));
  pp->scores_out = find_output(e, ri_engine_metadata(e, "detect.scores"));
  pp->anchors_out = find_output(e, ri_engine_metadata(e, "detect.anchors"));
  /* without names: the [N,A,4] output is the boxes, the other [N,A,C] output the scores */
  for (int i = 0; i < no && (pp->boxes_out < 0 || pp->scores_out < 0); i++) {
    ri_tensor_info t;
    RI__TRY(ri_engine_output_info(e, i, &t));
    if (t.rank != 3 || i == pp->anchors_out) continue;
    if (t.dims[2] == 4 && pp->boxes_out < 0) pp->boxes_out = i;
    else if (pp->scores_out < 0 && i != pp->boxes_out) pp->scores_out = i;
  }
  if (pp->boxes_out < 0 || pp->scores_out < 0)
    return ri__err_set(err, RI_ERR_SHAPE,
                       "cannot tell the detector's box and score outputs apart: give them with the engine "
                       "metadata detect.boxes and detect.scores");
  ri_tensor_info bt, st;
  RI__TRY(ri_engine_output_info(e, pp->boxes_out, &bt));
  RI__TRY(ri_engine_output_info(e, pp->scores_out, &st));
  if (bt.rank != 3 || st.rank != 3 || bt.dims[1] != st.dims[1] || bt.dims[2] != 4)
    return ri__err_set(err, RI_ERR_SHAPE, "detector outputs '%s' and '%s' must be [N,A,4] and [N,A,C]", bt.name,
                       st.name);
  pp->num_anchors = (size_t)bt.dims[1];
  pp->num_cols = (size_t)st.dims[2];
  if (pp->cfg.anchors == RI_ANCHORS_SSD && ri_ssd_anchor_count(&pp->cfg) != pp->num_anchors)
    return ri__err_set(err, RI_ERR_SHAPE,
                       "the detect configuration generates %zu SSD anchors but output '%s' has %zu boxes: fix the "
                       "engine metadata 'detect' (layers, fm, ratios, reduce_lowest, interp_ratio)",
                       ri_ssd_anchor_count(&pp->cfg), bt.name, pp->num_anchors);
  if (ri_detector_create(&pp->cfg, &pp->det, &verr) != RI_OK)
    return ri__err_set(err, verr.status ? verr.status : RI_ERR_INVALID_ARG, "detector: %s", verr.msg);
  return RI_OK;
}

void ri__postproc_free(ri__postproc *pp) {
  ri_detector_destroy(pp->det);
  for (size_t i = 0; i < pp->n_labels; i++) ri__free(pp->labels[i]);
  ri__free(pp->labels);
  memset(pp, 0, sizeof *pp);
}

ri_status ri__postproc_run(ri__postproc *pp, void *const *outputs, int item, ri__record *r, ri__err *err) {
  if (pp->task == 1) {
    const float *s = (const float *)outputs[pp->class_out] + (size_t)item * pp->num_classes;
    size_t k = pp->topk < (int)pp->num_classes ? (size_t)pp->topk : pp->num_classes;
    r->top = ri__calloc(k ? k : 1, sizeof(ri_class_score));
    if (!r->top) return RI__OOM(err);
    ri_vision_error verr = {0};
    if (ri_classify_topk(s, pp->num_classes, 1, k, r->top, &r->n_top, &verr) != RI_OK)
      return ri__err_set(err, RI_ERR_INTERNAL, "top-k: %s", verr.msg);
    return RI_OK;
  }
  if (pp->anchors_out >= 0 && !pp->anchors_set) {
    const float *a = (const float *)outputs[pp->anchors_out];
    if (ri_detector_set_anchors(pp->det, a, pp->num_anchors) != RI_OK)
      return ri__err_set(err, RI_ERR_SHAPE, "anchors: %s", ri_detector_last_error(pp->det));
    pp->anchors_set = 1;
  }
  const float *b = (const float *)outputs[pp->boxes_out] + (size_t)item * pp->num_anchors * 4;
  const float *s = (const float *)outputs[pp->scores_out] + (size_t)item * pp->num_anchors * pp->num_cols;
  size_t cap = (size_t)(pp->cfg.max_total > 0 ? pp->cfg.max_total : 100);
  r->dets = ri__calloc(cap, sizeof(ri_detection));
  if (!r->dets) return RI__OOM(err);
  if (ri_detector_run(pp->det, b, s, pp->num_anchors, pp->num_cols, &r->transform, r->dets, cap, &r->n_dets) !=
      RI_OK)
    return ri__err_set(err, RI_ERR_INTERNAL, "detection post-processing: %s", ri_detector_last_error(pp->det));
  return RI_OK;
}
