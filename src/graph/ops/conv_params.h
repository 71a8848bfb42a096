/* Resolved parameters of Conv, and the sliding-window geometry Conv shares with MaxPool and AveragePool.
 *
 * Layout convention: tensors are NCHW. Every window is stored as 2-D with index 0 = H and index 1 = W. A
 * 1-D op (input [N, C, W], weight [M, C/group, kW]) is stored with spatial_rank = 1 and an H axis of size 1
 * whose kernel, stride and dilation are 1 and whose pads are 0, so that backends can run it as a 2-D op on
 * an [N, C, 1, W] view. 3-D windows are rejected by check().
 *
 * These structs are written by the ops' check() into n->params (plain memory, no pointers) and are read by
 * every backend: the reference kernels, the XNNPACK path and the CUDA backend. */
#ifndef RI_GRAPH_OPS_CONV_PARAMS_H
#define RI_GRAPH_OPS_CONV_PARAMS_H

#include <stdint.h>

#include "graph/ir.h"

/* The ONNX auto_pad attribute. SAME_* pad so that out = ceil(in / stride); the odd pixel of an odd total
 * goes at the end (UPPER) or at the beginning (LOWER). VALID means no padding. */
typedef enum {
  RI__AUTO_PAD_NOTSET = 0, /* explicit pads from the `pads` attribute */
  RI__AUTO_PAD_SAME_UPPER = 1,
  RI__AUTO_PAD_SAME_LOWER = 2,
  RI__AUTO_PAD_VALID = 3
} ri__auto_pad;

typedef struct {
  int spatial_rank;     /* 1 or 2: number of spatial axes of the ONNX tensors */
  int64_t kernel[2];    /* >= 1 */
  int64_t stride[2];    /* >= 1 */
  int64_t dilation[2];  /* >= 1 */
  int64_t pad_begin[2]; /* explicit pads, >= 0; all 0 unless auto_pad is NOTSET */
  int64_t pad_end[2];
  ri__auto_pad auto_pad;
  int ceil_mode; /* pooling only (0 or 1); always 0 for Conv */
} ri__window;

/* Extent of the dilated kernel along axis (0 = H, 1 = W): (kernel - 1) * dilation + 1. */
static inline int64_t ri__window_extent(const ri__window *w, int axis) {
  return (w->kernel[axis] - 1) * w->dilation[axis] + 1;
}

/* Spatial size of an NCHW tensor (rank 4) or of an NCW tensor (rank 3, reported as H = 1) as the window
 * sees it. The shape's rank must be spatial_rank + 2 (infer() checks this). */
static inline void ri__window_hw(const ri__window *w, const ri__shape *s, int64_t *h, int64_t *wd) {
  if (w->spatial_rank == 1) {
    *h = 1;
    *wd = s->dims[2];
  } else {
    *h = s->dims[2];
    *wd = s->dims[3];
  }
}

/* Actual pads for an input of in_h x in_w, in ONNX order: pads[0] = top, pads[1] = left, pads[2] = bottom,
 * pads[3] = right. For NOTSET these are the explicit pads; for SAME_* they are computed from the input
 * size (never negative); for VALID they are 0. */
void ri__window_resolve_pads(const ri__window *w, int64_t in_h, int64_t in_w, int64_t pads[4]);

/* Output size along axis (0 = H, 1 = W) for an input of size `in` and the resolved pads of that axis.
 * Floor division, or for pooling with ceil_mode ceiling division where a last window that would start in
 * the end padding is dropped (the rule PyTorch and ONNX Runtime use). Returns a value < 1 when the dilated
 * kernel does not fit in the padded input. */
int64_t ri__window_out_dim(const ri__window *w, int axis, int64_t in, int64_t pad_begin, int64_t pad_end);

/* Reads kernel_shape (when `need_kernel`), strides, dilations, pads, auto_pad and, when `pooling`,
 * ceil_mode from node n into *w for the given spatial rank (1 or 2). Kernel values already in w->kernel are
 * kept when kernel_shape is absent (Conv takes them from the weight). Fails with RI_ERR_UNSUPPORTED or
 * RI_ERR_INVALID_ARG naming the node, the attribute and the value. */
ri_status ri__window_parse(const ri__node *n, int spatial_rank, int need_kernel, int pooling, ri__window *w,
                           ri__err *err);

/* Conv (opsets 11+): X [N, C, (H,) W], W [M, C / group, (kH,) kW], optional B [M]. */
typedef struct {
  ri__window win;
  int64_t group; /* >= 1; C and M are multiples of it */
  int has_bias;  /* input 2 is present */
  int64_t c_in;  /* C, from the weight when its shape is known at check time (C / group * group), else 0 */
  int64_t c_out; /* M, from the weight when its shape is known at check time, else 0 */
} ri__conv_params;

/* Pads of a Conv for an input of in_h x in_w, order as ri__window_resolve_pads. */
void ri__conv_resolve_pads(const ri__conv_params *p, int64_t in_h, int64_t in_w, int64_t pads_out[4]);
/* Output height and width of a Conv for an input of in_h x in_w (for 1-D: in_h = 1 gives out_h = 1). */
void ri__conv_out_size(const ri__conv_params *p, int64_t in_h, int64_t in_w, int64_t *out_h, int64_t *out_w);

#endif
