/* Post-processing chosen from the engine's metadata: SSD-style detection (raw box encodings and scores,
 * decoded and suppressed here), detections already suppressed in the model (EfficientNMS_TRT-style outputs:
 * count, boxes, scores, classes; only mapped to pixels here) or classification top-k. */
#ifndef RI_PIPELINE_POSTPROCESS_H
#define RI_PIPELINE_POSTPROCESS_H

#include "core/err.h"
#include "pipeline/record.h"
#include "runinfer/engine.h"
#include "runinfer/vision.h"

typedef struct {
  int task; /* 0 = detect, 1 = classify, 2 = detections suppressed in the model */
  int boxes_out, scores_out, anchors_out; /* output indices (-1 none) */
  int class_out;
  int count_out, classes_out; /* task 2: num_detections [N,1] int32, detection_classes [N,K] int32 */
  int64_t nms_k;              /* task 2: K, the detection slots per image */
  int xy_first;               /* task 2: boxes are (x1, y1, x2, y2) (metadata detect.box_order=xyxy) */
  ri_detect_config cfg;
  ri_detector_t *det;
  int anchors_set;
  size_t num_anchors, num_cols, num_classes;
  char **labels;
  size_t n_labels;
  int topk;
} ri__postproc;

/* Reads the engine's metadata and output shapes; fails naming what is missing or inconsistent. */
ri_status ri__postproc_init(ri__postproc *pp, ri_engine_t *e, ri__err *err);
void ri__postproc_free(ri__postproc *pp);
/* Post-processes batch item i of the engine outputs into r (dets or top). */
ri_status ri__postproc_run(ri__postproc *pp, void *const *outputs, int item, ri__record *r, ri__err *err);

#endif
