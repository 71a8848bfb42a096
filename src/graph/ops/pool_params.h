/* Resolved parameters of MaxPool and AveragePool (ONNX opsets 11..21), 1-D and 2-D, NCHW.
 *
 * Window geometry (kernel, strides, dilations, pads, auto_pad, ceil_mode) is the ri__window of
 * conv_params.h: use ri__window_resolve_pads() and ri__window_out_dim() for the output size. With
 * ceil_mode, windows may run past the end padding; the elements they cover outside the padded input are
 * never counted.
 *
 * MaxPool: float32, uint8 or int8 (output of X's type); storage_order must be 0 and the Indices output is
 * not supported (check() rejects both). A window with no tap inside the input yields the type's lowest
 * value. AveragePool and GlobalAveragePool: float32.
 * AveragePool: the divisor of a window is the number of its taps inside the input when count_include_pad
 * is 0, and the number of its taps inside the padded input [-pad_begin, in + pad_end) when it is 1.
 * GlobalAveragePool has no parameters (n->params stays NULL). */
#ifndef RI_GRAPH_OPS_POOL_PARAMS_H
#define RI_GRAPH_OPS_POOL_PARAMS_H

#include "graph/ops/conv_params.h"

typedef struct {
  ri__window win;
  int count_include_pad; /* AveragePool only: 0 or 1 */
} ri__pool_params;

/* Output spatial size of a pool for an input of in_h x in_w (1-D pools: in_h = 1 gives out_h = 1); pads
 * receives the resolved pads in ri__window_resolve_pads order when not NULL. */
void ri__pool_out_size(const ri__pool_params *p, int64_t in_h, int64_t in_w, int64_t *out_h, int64_t *out_w,
                       int64_t pads[4]);

#endif
