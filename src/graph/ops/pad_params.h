/* Resolved parameters of Pad (ONNX opsets 11..21), any element type.
 *
 * Inputs: data, pads (int64 [2 * naxes]: all begins, then all ends), optional constant_value (a scalar of
 * data's type, default 0), optional axes (opset 18+, int32 or int64; default: every axis). Modes constant,
 * reflect and edge; wrap is rejected with RI_ERR_UNSUPPORTED.
 *
 * Negative pads crop. As in ONNX Runtime, the crop is applied first and the padding is then computed on the
 * cropped tensor: along an axis with begin b and end e the kept input range is [max(0, -b), in - max(0, -e))
 * of length L, and output index o reads kept index q = o - max(0, b) when 0 <= q < L; otherwise constant
 * mode writes the constant, edge mode clamps q to [0, L - 1] and reflect mode mirrors q about the ends
 * without repeating them (needs max(b, e) <= L - 1). */
#ifndef RI_GRAPH_OPS_PAD_PARAMS_H
#define RI_GRAPH_OPS_PAD_PARAMS_H

#include <stdint.h>

#include "graph/ir.h"

typedef enum { RI__PAD_CONSTANT = 0, RI__PAD_REFLECT = 1, RI__PAD_EDGE = 2 } ri__pad_mode;

typedef struct {
  ri__pad_mode mode;
  int pads_known; /* pads (and axes, when given) were constants: copied below */
  int n_pads;     /* elements of the pads input */
  int64_t pads[2 * RI__MAX_RANK];
  int has_axes;               /* the axes input is present (opset 18+) */
  int n_axes;                 /* elements of the constant axes (pads_known) */
  int64_t axes[RI__MAX_RANK]; /* as written (may be negative) */
  int value_known;            /* constant_value absent or constant: `value` holds it */
  unsigned char value[8];     /* raw bytes of the constant, in data's element type (zero by default) */
} ri__pad_params;

/* Per-axis begin and end pads of data = in[0] (rank r), from p when known, else from the host data of in[1]
 * (pads) and in[3] (axes). Checks counts, axis ranges, output sizes >= 0 and the mode's limits; fails with
 * RI_ERR_SHAPE naming node n, or RI_ERR_UNSUPPORTED when pads are not known on the host. */
ri_status ri__pad_resolve(const ri__node *n, const ri__pad_params *p, const ri__tensor *in, int n_in,
                          int64_t begin[RI__MAX_RANK], int64_t end[RI__MAX_RANK], ri__err *err);

#endif
