/* libFuzzer target: image bytes → JPEG/PNG decoder (with limits) → preprocessing to a 64x48 float tensor. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "runinfer/vision.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ri_decoder_t *dec = NULL;
  if (ri_decoder_create(&dec) != RI_OK) return 0;
  ri_decode_limits lim = {.max_file_bytes = 1 << 20, .max_pixels = 1 << 22};
  if (ri_decoder_set_limits(dec, &lim) != RI_OK) {
    ri_decoder_destroy(dec);
    return 0;
  }
  ri_image *img = NULL;
  if (ri_decoder_decode_memory(dec, data, size, "fuzz", &img) == RI_OK) {
    ri_preprocess_spec spec;
    ri_preprocess_spec_default(&spec);
    spec.width = 64;
    spec.height = 48;
    spec.resize = (size & 1) ? RI_RESIZE_LETTERBOX : RI_RESIZE_BILINEAR;
    void *dst = malloc(ri_preprocess_output_bytes(&spec));
    ri_image_transform tf;
    if (dst) (void)ri_preprocess(img, &spec, dst, &tf, NULL);
    free(dst);
    ri_image_free(img);
  }
  ri_decoder_destroy(dec);
  return 0;
}
