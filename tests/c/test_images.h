/* Encoded test images for the C tests: a byte blob, and JPEG encoding with TurboJPEG (test_vision_decode.c,
 * test_vision_planar.c). A failed encode prints TurboJPEG's error and returns an empty blob, which the
 * decoders under test then refuse, so the test fails where it uses it. */
#ifndef RI_TESTS_TEST_IMAGES_H
#define RI_TESTS_TEST_IMAGES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

typedef struct {
  unsigned char *data;
  size_t size;
} blob;

static inline void blob_free(blob *b) {
  free(b->data);
  b->data = NULL;
  b->size = 0;
}

/* pix: w x h pixels of TurboJPEG pixel format pf; subsamp a TJSAMP_*; flags TJFLAG_* (e.g.
 * TJFLAG_PROGRESSIVE). */
static inline blob jpeg_encode(const uint8_t *pix, int w, int h, int pf, int subsamp, int quality,
                               int flags) {
  blob b = {0};
  tjhandle tj = tjInitCompress();
  unsigned char *out = NULL;
  unsigned long size = 0;
  if (tj && tjCompress2(tj, pix, w, 0, h, pf, &out, &size, subsamp, quality, flags) == 0) {
    b.data = malloc(size);
    if (b.data) {
      memcpy(b.data, out, size);
      b.size = size;
    }
  } else {
    fprintf(stderr, "tjCompress2: %s\n", tjGetErrorStr2(tj));
  }
  tjFree(out);
  if (tj) tjDestroy(tj);
  return b;
}

#endif
