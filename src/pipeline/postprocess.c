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
  for (const char *p = text; *p; p++)
    n += *p == '\n';
  pp->labels = ri__calloc(n, sizeof(char *));
  if (!pp->labels) return RI__OOM(err);
  const char *s = text;
  for (size_t i = 0; i < n; i++) {
    const char *e = strchr(s, '\n');
    size_t l = e ? (size_t)(e - s) : strlen(s);
    while (l && s[l - 1] == '\r')
      l--;
    pp->labels[i] = ri__strndup(s, l);
    if (!pp->labels[i]) return RI__OOM(err);
    pp->n_labels = i + 1;
    if (!e) break;
    s = e + 1;
  }
  return RI_OK;
}

/* The output named by metadata key `key`, else the output with the conventional name `dflt`; -1 if none. */
static int named_output(ri_engine_t *e, const char *key, const char *dflt) {
  const char *name = ri_engine_metadata(e, key);
  return name ? find_output(e, name) : find_output(e, dflt);
}

/* Detections suppressed in the model (EfficientNMS_TRT's outputs): num_detections [N,1] int32, boxes [N,K,4]
 * float32 (normalised corners, y first unless detect.box_order=xyxy), scores [N,K] float32, classes [N,K]
 * int32. Names from detect.count / detect.boxes / detect.scores / detect.classes, else the plugin's own
 * output names. Returns RI_OK with pp->task unchanged when the engine has no such outputs. */
static ri_status init_suppressed(ri__postproc *pp, ri_engine_t *e, ri__err *err) {
  int bo = named_output(e, "detect.boxes", "detection_boxes");
  int so = named_output(e, "detect.scores", "detection_scores");
  if (bo < 0 || so < 0) return RI_OK;
  ri_tensor_info bt, st, ct, nt;
  RI__TRY(ri_engine_output_info(e, bo, &bt));
  RI__TRY(ri_engine_output_info(e, so, &st));
  if (st.rank != 2) return RI_OK; /* [N,A,C] scores: raw SSD outputs */
  int co = named_output(e, "detect.classes", "detection_classes");
  int no = named_output(e, "detect.count", "num_detections");
  if (co < 0 || no < 0)
    return ri__err_set(
        err, RI_ERR_SHAPE,
        "scores '%s' are [N,K] (detections suppressed in the model), but the %s output is missing: "
        "name it with the engine metadata %s",
        st.name, co < 0 ? "classes" : "count", co < 0 ? "detect.classes" : "detect.count");
  RI__TRY(ri_engine_output_info(e, co, &ct));
  RI__TRY(ri_engine_output_info(e, no, &nt));
  int64_t K = st.dims[1];
  if (bt.rank != 3 || bt.dims[1] != K || bt.dims[2] != 4 || bt.dtype != RI_DTYPE_FLOAT32 ||
      st.dtype != RI_DTYPE_FLOAT32 || ct.rank != 2 || ct.dims[1] != K || ct.dtype != RI_DTYPE_INT32 ||
      nt.rank != 2 || nt.dims[1] != 1 || nt.dtype != RI_DTYPE_INT32)
    return ri__err_set(err, RI_ERR_SHAPE,
                       "suppressed detections '%s', '%s', '%s', '%s' must be float32 [N,K,4], float32 [N,K], "
                       "int32 [N,K] and int32 [N,1]",
                       bt.name, st.name, ct.name, nt.name);
  const char *order = ri_engine_metadata(e, "detect.box_order");
  if (order && strcmp(order, "yxyx") != 0 && strcmp(order, "xyxy") != 0)
    return ri__err_set(err, RI_ERR_PARSE,
                       "engine metadata detect.box_order is '%.32s'; expected yxyx or xyxy", order);
  pp->task = 2;
  pp->boxes_out = bo;
  pp->scores_out = so;
  pp->classes_out = co;
  pp->count_out = no;
  pp->nms_k = K;
  pp->xy_first = order && strcmp(order, "xyxy") == 0;
  return RI_OK;
}

ri_status ri__postproc_init(ri__postproc *pp, ri_engine_t *e, ri__err *err) {
  memset(pp, 0, sizeof *pp);
  pp->boxes_out = pp->scores_out = pp->anchors_out = pp->class_out = -1;
  pp->count_out = pp->classes_out = -1;
  pp->topk = 5;
  RI__TRY(load_labels(pp, ri_engine_metadata(e, "labels"), err));
  const char *task = ri_engine_metadata(e, "task");
  const char *dtext = ri_engine_metadata(e, "detect");
  int no = ri_engine_num_outputs(e);
  if ((task && strcmp(task, "classify") == 0) || (!task && !dtext && no == 1)) {
    ri_tensor_info t;
    RI__TRY(ri_engine_output_info(e, 0, &t));
    if (t.rank != 2 || t.dtype != RI_DTYPE_FLOAT32)
      return ri__err_set(err, RI_ERR_SHAPE,
                         "classification needs a float32 output of shape [N,C]; '%s' is %s of rank %d",
                         t.name, ri_dtype_name(t.dtype), t.rank);
    pp->task = 1;
    pp->class_out = 0;
    pp->num_classes = (size_t)t.dims[1];
    return RI_OK;
  }
  RI__TRY(init_suppressed(pp, e, err));
  if (pp->task == 2) return RI_OK;
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
    if (t.dims[2] == 4 && pp->boxes_out < 0)
      pp->boxes_out = i;
    else if (pp->scores_out < 0 && i != pp->boxes_out)
      pp->scores_out = i;
  }
  if (pp->boxes_out < 0 || pp->scores_out < 0)
    return ri__err_set(err, RI_ERR_SHAPE,
                       "cannot tell the detector's box and score outputs apart: give them with the engine "
                       "metadata detect.boxes and detect.scores");
  ri_tensor_info bt, st;
  RI__TRY(ri_engine_output_info(e, pp->boxes_out, &bt));
  RI__TRY(ri_engine_output_info(e, pp->scores_out, &st));
  if (bt.rank != 3 || st.rank != 3 || bt.dims[1] != st.dims[1] || bt.dims[2] != 4 ||
      bt.dtype != RI_DTYPE_FLOAT32 || st.dtype != RI_DTYPE_FLOAT32)
    return ri__err_set(err, RI_ERR_SHAPE,
                       "detector outputs '%s' and '%s' must be float32 [N,A,4] and [N,A,C]", bt.name,
                       st.name);
  if (pp->anchors_out >= 0) {
    ri_tensor_info at;
    RI__TRY(ri_engine_output_info(e, pp->anchors_out, &at));
    /* [A,4], or [N,A,4] / [1,A,4] where every item carries the same anchors: the first A rows are read */
    int ok = at.dtype == RI_DTYPE_FLOAT32 && ((at.rank == 2 && at.dims[0] == bt.dims[1] && at.dims[1] == 4) ||
                                              (at.rank == 3 && at.dims[1] == bt.dims[1] && at.dims[2] == 4));
    if (!ok)
      return ri__err_set(err, RI_ERR_SHAPE, "anchors output '%s' must be float32 [%lld,4] or [N,%lld,4]",
                         at.name, (long long)bt.dims[1], (long long)bt.dims[1]);
  }
  pp->num_anchors = (size_t)bt.dims[1];
  pp->num_cols = (size_t)st.dims[2];
  if (pp->cfg.anchors == RI_ANCHORS_SSD && pp->cfg.coding != RI_BOX_CODING_NONE &&
      ri_ssd_anchor_count(&pp->cfg) != pp->num_anchors)
    return ri__err_set(
        err, RI_ERR_SHAPE,
        "the detect configuration generates %zu SSD anchors but output '%s' has %zu boxes: fix the "
        "engine metadata 'detect' (layers, fm, ratios, reduce_lowest, interp_ratio)",
        ri_ssd_anchor_count(&pp->cfg), bt.name, pp->num_anchors);
  if (ri_detector_create(&pp->cfg, &pp->det, &verr) != RI_OK)
    return ri__err_set(err, verr.status ? verr.status : RI_ERR_INVALID_ARG, "detector: %s", verr.msg);
  return RI_OK;
}

void ri__postproc_free(ri__postproc *pp) {
  ri_detector_destroy(pp->det);
  for (size_t i = 0; i < pp->n_labels; i++)
    ri__free(pp->labels[i]);
  ri__free(pp->labels);
  memset(pp, 0, sizeof *pp);
}

/* Task 2: the first num_detections slots, mapped to source pixels; boxes left empty by that are dropped. */
static ri_status run_suppressed(ri__postproc *pp, void *const *outputs, int item, ri__record *r,
                                ri__err *err) {
  const int32_t count = ((const int32_t *)outputs[pp->count_out])[item];
  const int64_t K = pp->nms_k;
  if (count < 0 || count > K)
    return ri__err_set(err, RI_ERR_SHAPE, "the model reports %d detections; its outputs hold 0..%lld",
                       (int)count, (long long)K);
  const float *b = (const float *)outputs[pp->boxes_out] + (size_t)item * (size_t)K * 4;
  const float *s = (const float *)outputs[pp->scores_out] + (size_t)item * (size_t)K;
  const int32_t *c = (const int32_t *)outputs[pp->classes_out] + (size_t)item * (size_t)K;
  r->dets = ri__calloc(count ? (size_t)count : 1, sizeof(ri_detection));
  if (!r->dets) return RI__OOM(err);
  r->n_dets = 0;
  for (int32_t i = 0; i < count; i++) {
    float v[4] = {b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]};
    if (pp->xy_first) {
      float t = v[0];
      v[0] = v[1], v[1] = t;
      t = v[2], v[2] = v[3], v[3] = t;
    }
    float box[4] = {v[0] < v[2] ? v[0] : v[2], v[1] < v[3] ? v[1] : v[3], v[0] < v[2] ? v[2] : v[0],
                    v[1] < v[3] ? v[3] : v[1]};
    if (!(box[0] == box[0] && box[1] == box[1] && box[2] == box[2] && box[3] == box[3])) continue; /* NaN */
    ri_image_transform_box(&r->transform, box);
    if (!(box[2] > box[0] && box[3] > box[1])) continue;
    ri_detection *d = &r->dets[r->n_dets++];
    d->ymin = box[0], d->xmin = box[1], d->ymax = box[2], d->xmax = box[3];
    d->score = s[i];
    d->class_id = c[i];
    d->anchor = (int)i;
  }
  return RI_OK;
}

ri_status ri__postproc_run(ri__postproc *pp, void *const *outputs, int item, ri__record *r, ri__err *err) {
  if (pp->task == 2) return run_suppressed(pp, outputs, item, r, err);
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
  if (ri_detector_run(pp->det, b, s, pp->num_anchors, pp->num_cols, &r->transform, r->dets, cap,
                      &r->n_dets) != RI_OK)
    return ri__err_set(err, RI_ERR_INTERNAL, "detection post-processing: %s",
                       ri_detector_last_error(pp->det));
  return RI_OK;
}
