/* libFuzzer target: image bytes → JPEG/PNG decoder (with limits; every other length with fast decode for a
 * 32x24 target) → preprocessing to a 64x48 tensor (layout, dtype and resize mode picked by length bits).
 * Length bit 4 picks the route: ri_decoder_decode_memory + ri_preprocess, or ri_decoder_load_memory +
 * ri_decoder_preprocess_loaded (JPEGs in YCbCr resized from their planes), preprocessed twice so that the
 * decoder's kept sampling plan is reused. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "runinfer/vision.h"

static void spec_for(size_t size, ri_preprocess_spec *spec) {
  ri_preprocess_spec_default(spec);
  spec->width = 64;
  spec->height = 48;
  spec->resize = (size & 1) ? RI_RESIZE_LETTERBOX : RI_RESIZE_BILINEAR;
  spec->layout = (size & 4) ? RI_LAYOUT_NCHW : RI_LAYOUT_NHWC;
  spec->dtype = (size & 8) ? RI_DTYPE_UINT8 : RI_DTYPE_FLOAT32;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ri_decoder_t *dec = NULL;
  if (ri_decoder_create(&dec) != RI_OK) return 0;
  ri_decode_limits lim = {.max_file_bytes = 1 << 20, .max_pixels = 1 << 22};
  if (ri_decoder_set_limits(dec, &lim) != RI_OK) {
    ri_decoder_destroy(dec);
    return 0;
  }
  if ((size & 2) && ri_decoder_set_scale_hint(dec, 32, 24) != RI_OK) {
    ri_decoder_destroy(dec);
    return 0;
  }
  ri_preprocess_spec spec;
  spec_for(size, &spec);
  void *dst = malloc(ri_preprocess_output_bytes(&spec));
  if (dst && (size & 16)) {
    ri_image_transform tf;
    if (ri_decoder_load_memory(dec, data, size, "fuzz") == RI_OK &&
        ri_decoder_preprocess_loaded(dec, &spec, dst, &tf) == RI_OK) {
      spec.layout = spec.layout == RI_LAYOUT_NCHW ? RI_LAYOUT_NHWC : RI_LAYOUT_NCHW;
      if (ri_decoder_preprocess_loaded(dec, &spec, dst, NULL) != RI_OK)
        abort(); /* a loaded image stays valid */
    }
  } else if (dst) {
    ri_image *img = NULL;
    if (ri_decoder_decode_memory(dec, data, size, "fuzz", &img) == RI_OK) {
      ri_image_transform tf;
      if (ri_preprocess(img, &spec, dst, &tf, NULL) == RI_OK) {
        int fw = 0, fh = 0;
        ri_decoder_last_full_size(dec, &fw, &fh);
        ri_image_transform_set_source(&tf, fw, fh);
      }
      ri_image_free(img);
    }
  }
  free(dst);
  ri_decoder_destroy(dec);
  return 0;
}
