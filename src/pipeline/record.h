/* One input element travelling through the pipeline. Ownership passes with the pointer from stage to
 * stage (push hands it over); the writer frees it. A failed record keeps flowing to the writer, which
 * turns it into a dead-letter line: nothing is dropped. */
#ifndef RI_PIPELINE_RECORD_H
#define RI_PIPELINE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "runinfer/vision.h"

typedef struct ri__record {
  uint64_t seq; /* position in the source, from 0 */
  char *key;    /* the path as read (arbitrary bytes except NUL and newline) */
  size_t key_len;
  int width, height; /* original image size, part of the key like the reference job's size-to-key step */
  ri_image_transform transform;
  void *input;     /* preprocessed tensor for one batch item */
  ri_image *image; /* decoded image, kept only when drawing */
  ri_detection *dets;
  size_t n_dets;
  ri_class_score *top;
  size_t n_top;
  const char
      *stage; /* NULL while healthy; else the stage that failed: read, decode, preprocess, infer, ... */
  char *error;
  int64_t t_source_us, t_decoded_us, t_inferred_us;
  int64_t decode_us, preprocess_us;
} ri__record;

void ri__record_free(ri__record *r);
/* Marks the record failed at stage with a copy of msg (keeps the first failure). */
void ri__record_fail(ri__record *r, const char *stage, const char *msg);

#endif
