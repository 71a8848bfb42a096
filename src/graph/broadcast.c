#include "graph/broadcast.h"

#include <string.h>

ri_status ri__broadcast_shapes(const ri__shape *a, const ri__shape *b, ri__shape *out) {
  int r = a->rank > b->rank ? a->rank : b->rank;
  if (a->rank < 0 || b->rank < 0 || r > RI__MAX_RANK) return RI_ERR_SHAPE;
  ri__shape o;
  o.rank = r;
  for (int k = 0; k < r; k++) {
    int ka = k - (r - a->rank), kb = k - (r - b->rank);
    int64_t da = ka >= 0 ? a->dims[ka] : 1, db = kb >= 0 ? b->dims[kb] : 1;
    if (da == db || db == 1)
      o.dims[k] = da;
    else if (da == 1)
      o.dims[k] = db;
    else
      return RI_ERR_SHAPE;
  }
  *out = o;
  return RI_OK;
}

void ri__broadcast_strides(const ri__shape *in, const ri__shape *out, int64_t strides[RI__MAX_RANK]) {
  for (int k = 0; k < RI__MAX_RANK; k++)
    strides[k] = 0;
  int64_t s = 1;
  for (int k = in->rank - 1; k >= 0; k--) {
    int ko = k + (out->rank - in->rank);
    if (in->dims[k] != 1 && ko >= 0) strides[ko] = s;
    s *= in->dims[k];
  }
}

int64_t ri__broadcast_offset(const ri__shape *out, const int64_t strides[RI__MAX_RANK], int64_t i) {
  int64_t off = 0;
  for (int k = out->rank - 1; k >= 0; k--) {
    int64_t d = out->dims[k];
    if (d <= 0) return 0;
    off += (i % d) * strides[k];
    i /= d;
  }
  return off;
}

void ri__bcast2_init(ri__bcast2 *bc, const ri__shape *a, const ri__shape *b, const ri__shape *out) {
  int64_t sa[RI__MAX_RANK], sb[RI__MAX_RANK];
  ri__broadcast_strides(a, out, sa);
  ri__broadcast_strides(b, out, sb);
  memset(bc, 0, sizeof *bc);
  int r = 0;
  for (int k = 0; k < out->rank; k++) {
    int64_t d = out->dims[k];
    if (d == 1) continue;
    /* Merge with the previous kept axis when both inputs step across it as one contiguous run. */
    if (r > 0 && sa[k] * d == bc->sa[r - 1] && sb[k] * d == bc->sb[r - 1]) {
      bc->dims[r - 1] *= d;
      bc->sa[r - 1] = sa[k];
      bc->sb[r - 1] = sb[k];
      continue;
    }
    bc->dims[r] = d;
    bc->sa[r] = sa[k];
    bc->sb[r] = sb[k];
    r++;
  }
  if (r == 0) {
    bc->dims[0] = 1;
    bc->sa[0] = bc->sb[0] = 0;
    r = 1;
  }
  bc->rank = r;
  bc->inner = bc->dims[r - 1];
  bc->rows = 1;
  for (int k = 0; k < r - 1; k++)
    bc->rows *= bc->dims[k];
  if (bc->inner == 0) bc->rows = 0;
}

void ri__bcast2_seek(const ri__bcast2 *bc, ri__bcast2_it *it, int64_t row) {
  it->a = it->b = 0;
  for (int k = bc->rank - 2; k >= 0; k--) {
    int64_t d = bc->dims[k];
    int64_t c = d > 0 ? row % d : 0;
    row = d > 0 ? row / d : 0;
    it->idx[k] = c;
    it->a += c * bc->sa[k];
    it->b += c * bc->sb[k];
  }
}

void ri__bcast2_next(const ri__bcast2 *bc, ri__bcast2_it *it) {
  for (int k = bc->rank - 2; k >= 0; k--) {
    it->a += bc->sa[k];
    it->b += bc->sb[k];
    if (++it->idx[k] < bc->dims[k]) return;
    it->a -= bc->sa[k] * bc->dims[k];
    it->b -= bc->sb[k] * bc->dims[k];
    it->idx[k] = 0;
  }
}
