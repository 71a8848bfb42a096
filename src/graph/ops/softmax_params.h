/* Resolved parameters of Softmax (ONNX opsets 11..21), float32.
 *
 * Opsets 11 and 12 (legacy): the input is viewed as 2-D [prod(dims[:axis]), prod(dims[axis:])] and each row
 * is normalised; the default axis is 1. Opset 13 and later: normalised along `axis` alone; the default
 * axis is -1. Both reduce to one form, see ri__softmax_geometry(). */
#ifndef RI_GRAPH_OPS_SOFTMAX_PARAMS_H
#define RI_GRAPH_OPS_SOFTMAX_PARAMS_H

#include <stdint.h>

#include "graph/ir.h"

typedef struct {
  int64_t axis; /* as written in the model (or the opset's default); may be negative */
  int legacy;   /* 1 for opsets < 13 (coerce to 2-D) */
} ri__softmax_params;

/* Views a tensor of `shape` as [outer, len, inner] where softmax runs over `len` elements spaced `inner`
 * apart: legacy: outer = prod(dims[:axis]), len = prod(dims[axis:]), inner = 1; otherwise outer =
 * prod(dims[:axis]), len = dims[axis], inner = prod(dims[axis+1:]). Returns 0 when the axis is outside
 * [-rank, rank - 1] (rank 0 accepts axis 0 and -1 and is a single element). */
int ri__softmax_geometry(const ri__softmax_params *p, const ri__shape *shape, int64_t *outer, int64_t *len,
                         int64_t *inner);

#endif
