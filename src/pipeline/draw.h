/* --draw: writes the image with its detections (boxes and "label score" captions) as PNG into a directory.
 * The file name is the key's base name with ".png" appended; characters outside [A-Za-z0-9._-] become '_'
 * and the record's sequence number is prefixed, so distinct inputs never overwrite each other. */
#ifndef RI_PIPELINE_DRAW_H
#define RI_PIPELINE_DRAW_H

#include "core/err.h"
#include "pipeline/record.h"

ri_status ri__draw_detections(const char *dir, ri__record *r, const char *const *labels, size_t n_labels,
                              ri__err *err);

#endif
