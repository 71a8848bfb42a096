/* Multidirectional (numpy-style) broadcasting: the output shape of two shapes, and index helpers with
 * which kernels walk an output while reading broadcast inputs. */
#ifndef RI_GRAPH_BROADCAST_H
#define RI_GRAPH_BROADCAST_H

#include "graph/ir.h"

/* Aligns a and b at their last axes; each axis pair must be equal or contain a 1 (a 0 only broadcasts
 * against 0 or 1). On success *out has rank max(a, b) and RI_OK is returned; otherwise RI_ERR_SHAPE is
 * returned, *out is unspecified and no message is recorded (the caller names the node). */
ri_status ri__broadcast_shapes(const ri__shape *a, const ri__shape *b, ri__shape *out);

/* Element strides of a dense tensor of shape `in` read as if it had shape `out` (in must broadcast to
 * out): strides[k] for output axis k, 0 where `in` lacks the axis or has size 1 along it. Entries at and
 * past out->rank are set to 0. */
void ri__broadcast_strides(const ri__shape *in, const ri__shape *out, int64_t strides[RI__MAX_RANK]);

/* Flat element offset into the input for flat output index i, given strides from ri__broadcast_strides. */
int64_t ri__broadcast_offset(const ri__shape *out, const int64_t strides[RI__MAX_RANK], int64_t i);

/* Two inputs broadcast to one output, simplified for fast loops: output axes of size 1 are dropped and
 * neighbouring axes are merged wherever both inputs are contiguous across them, so that the last axis is
 * the longest run in which each input either advances by one element or stays put.
 *
 * The output is viewed as `rows` rows of `inner` elements (rows * inner == numel(out)); sa/sb are the
 * element strides of a/b per merged axis, and sa[rank-1], sb[rank-1] are each 0 or 1. */
typedef struct {
  int rank; /* >= 1 */
  int64_t dims[RI__MAX_RANK];
  int64_t sa[RI__MAX_RANK], sb[RI__MAX_RANK];
  int64_t inner, rows;
} ri__bcast2;

/* a and b must broadcast to out (see ri__broadcast_shapes). */
void ri__bcast2_init(ri__bcast2 *bc, const ri__shape *a, const ri__shape *b, const ri__shape *out);

/* Position of the first element of a row: its coordinates over the merged outer axes and the matching
 * element offsets into a and b. */
typedef struct {
  int64_t idx[RI__MAX_RANK];
  int64_t a, b;
} ri__bcast2_it;

/* Sets *it to row `row` (0 <= row < bc->rows). */
void ri__bcast2_seek(const ri__bcast2 *bc, ri__bcast2_it *it, int64_t row);
/* Advances *it by one row (the caller stops after the last one). */
void ri__bcast2_next(const ri__bcast2 *bc, ri__bcast2_it *it);

#endif
