/* Resolved parameters and exact semantics of the two non-maximum-suppression operators.
 *
 * NonMaxSuppression (ONNX, opsets 11..21)
 *   inputs   boxes [B,N,4] float32; scores [B,C,N] float32; max_output_boxes_per_class (optional int64, one
 *            element, must be a graph constant >= 0; absent = 0); iou_threshold (optional float32, one
 *            element in [0, 1]; absent = 0); score_threshold (optional float32, one element; absent = none).
 *   attr     center_point_box 0: a box is two opposite corners (y1, x1, y2, x2), in either order;
 *            1: (x_center, y_center, width, height).
 *   output   selected_indices int64 [K,3] rows (batch, class, box). Per batch, per class in order: the boxes
 *            with score > score_threshold, by score descending (ties: lower box index first), each kept
 *            unless its IoU with a box already kept for that batch and class is > iou_threshold, at most
 *            max_output_boxes_per_class. IoU is 0 when either box or the intersection has no positive area.
 *            The length K depends on the data: the tensor has the largest shape [B*C*min(M,N), 3] and the
 *            rows after the K real ones are -1 (ri__op_def.padded_rows).
 *
 * EfficientNMS_TRT (TensorRT's EfficientNMS plugin as NVIDIA's ONNX tooling emits it; domain "" or "TRT")
 *   inputs   boxes [B,A,4] (shared by all classes) or [B,A,C,4] (one box per class) float32; scores [B,A,C]
 *            float32; anchors (optional) [1,A,4] or [B,A,4] float32: with anchors the boxes are raw
 *            predictions decoded against them (below).
 *   attrs    score_threshold (float, default 0.5), iou_threshold (float, default 0.5), max_output_boxes
 *            (int > 0, default 100), background_class (int, default -1 = none), score_activation (0/1,
 *            default 0: apply a sigmoid to the scores), class_agnostic (0/1, default 0), box_coding (0: the
 *            four values are two corners, (y1, x1, y2, x2) or (x1, y1, x2, y2) alike; 1: centre and size,
 *            (yc, xc, h, w) or (xc, yc, w, h) alike), plugin_version (string, ignored).
 *   decode   corners: both box and anchor are put in min/max order, then added value by value; centre-size:
 *            c = t_c * anchor_size + anchor_c, size = anchor_size * exp(t_size), per axis.
 *   outputs  num_detections int32 [B,1]; detection_boxes float32 [B,K,4] always as corners in the inputs'
 *            axis order (centre-size converted, corners passed through as given); detection_scores float32
 *            [B,K] (after the sigmoid when score_activation); detection_classes int32 [B,K] = the score
 *            column; K = max_output_boxes. Entries after num_detections are 0.
 *   rule     per image: the (anchor, class) pairs with class != background_class and activated score >=
 *            score_threshold, by raw score descending (ties: lower anchor, then lower class), at most the
 *            first 4096 of them (the plugin's candidate limit), taken greedily: a candidate is dropped when
 * its IoU with an already kept detection (of the same class unless class_agnostic) is >= iou_threshold, until
 * K are kept. Boxes are not clipped. IoU as for NonMaxSuppression, on the decoded corners. */
#ifndef RI_GRAPH_OPS_NMS_PARAMS_H
#define RI_GRAPH_OPS_NMS_PARAMS_H

#include <stdint.h>

#define RI__EFFICIENT_NMS_MAX_CANDIDATES 4096

typedef struct {
  int center_point_box;
  int64_t max_per_class; /* max_output_boxes_per_class; 0 when the input is absent */
} ri__nms_params;

typedef struct {
  float score_threshold;
  float iou_threshold;
  int64_t max_output_boxes;
  int64_t background_class;
  int score_activation;
  int class_agnostic;
  int box_coding;
} ri__efficient_nms_params;

/* Puts corner box b = (y1, x1, y2, x2) (or x-first) into (lo0, lo1, hi0, hi1) order in place. */
static inline void ri__nms_order_corners(float *b) {
  if (b[0] > b[2]) {
    float t = b[0];
    b[0] = b[2], b[2] = t;
  }
  if (b[1] > b[3]) {
    float t = b[1];
    b[1] = b[3], b[3] = t;
  }
}

/* IoU of two boxes given as (lo0, lo1, hi0, hi1), not reordered: 0 when either box or the intersection has
 * no positive area (a box with hi < lo has none). */
static inline float ri__nms_iou(const float *a, const float *b) {
  float i0 = a[0] > b[0] ? a[0] : b[0], i2 = a[2] < b[2] ? a[2] : b[2];
  float i1 = a[1] > b[1] ? a[1] : b[1], i3 = a[3] < b[3] ? a[3] : b[3];
  if (i2 <= i0 || i3 <= i1) return 0.f;
  float inter = (i2 - i0) * (i3 - i1);
  float area_a = (a[2] - a[0]) * (a[3] - a[1]), area_b = (b[2] - b[0]) * (b[3] - b[1]);
  float uni = area_a + area_b - inter;
  if (inter <= 0.f || area_a <= 0.f || area_b <= 0.f || uni <= 0.f) return 0.f;
  return inter / uni;
}

#endif
