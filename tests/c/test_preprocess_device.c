/* Device preprocessing (ri_builder_set_preprocess_on_device) through the C API, on the CPU: the engine's
 * input becomes uint8 [N, 8, 8, 3] of the same name; its outputs equal, bit for bit, those of the plain
 * engine fed (x - mean) * scale in NCHW computed here; the stored "preprocess" metadata is the host's part
 * and "preprocess_device" the original; a builder without the metadata, or with a uint8 one, is refused;
 * and with every allocation of the build failing in turn the build fails with RI_ERR_NO_MEMORY and leaks
 * nothing (runs under ASan+UBSan in CI). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "runinfer/engine.h"
#include "test.h"
#include "test_onnx_build.h"

#define SPEC "size=8x8;layout=nchw;dtype=float32;mean=10,20,30.5;scale=0.5,0.25,2"

static const float MEAN[3] = {10.f, 20.f, 30.5f}, SCALE[3] = {0.5f, 0.25f, 2.f};

static ri_status build(const uint8_t *onnx, size_t len, const char *spec, int on_device, ri_engine_t **e,
                       char *msg, size_t cap) {
  ri_builder_t *b = NULL;
  ri_status s = ri_builder_create(&b);
  if (s == RI_OK) s = ri_builder_set_max_batch(b, 2);
  if (s == RI_OK && spec) s = ri_builder_set_metadata(b, "preprocess", spec);
  if (s == RI_OK) s = ri_builder_set_preprocess_on_device(b, on_device);
  if (s == RI_OK) s = ri_builder_build_onnx_memory(b, onnx, len, ".", e);
  snprintf(msg, cap, "%s", b ? ri_builder_last_error(b) : "");
  ri_builder_destroy(b);
  return s;
}

static ri_status run(ri_engine_t *e, const void *in, float *out) {
  ri_context_t *c = NULL;
  ri_status s = ri_context_create(e, &c);
  const void *ins[1] = {in};
  void *outs[1] = {out};
  if (s == RI_OK) s = ri_context_run(c, 2, ins, outs);
  ri_context_destroy(c);
  return s;
}

static void test_outputs_and_metadata(const uint8_t *onnx, size_t len) {
  char msg[1024];
  ri_engine_t *plain = NULL, *dev = NULL;
  CHECK_MSG(build(onnx, len, SPEC, 0, &plain, msg, sizeof msg) == RI_OK, "%s", msg);
  CHECK_MSG(build(onnx, len, SPEC, 1, &dev, msg, sizeof msg) == RI_OK, "%s", msg);
  if (!plain || !dev) goto out;
  ri_tensor_info in;
  CHECK(ri_engine_input_info(dev, 0, &in) == RI_OK);
  CHECK(strcmp(in.name, "pixels") == 0 && in.dtype == RI_DTYPE_UINT8 && in.rank == 4);
  CHECK(in.dims[1] == 8 && in.dims[2] == 8 && in.dims[3] == 3);
  const char *host = ri_engine_metadata(dev, "preprocess");
  CHECK(host && strstr(host, "layout=nhwc") && strstr(host, "dtype=uint8") && strstr(host, "mean=0,0,0") &&
        strstr(host, "scale=1,1,1") && strstr(host, "size=8x8"));
  CHECK(ri_engine_metadata(dev, "preprocess_device") &&
        strcmp(ri_engine_metadata(dev, "preprocess_device"), SPEC) == 0);
  CHECK(ri_engine_metadata(plain, "preprocess_device") == NULL);

  static uint8_t u[2 * 8 * 8 * 3];
  static float x[2 * 3 * 8 * 8], want[2 * 4 * 8 * 8], got[2 * 4 * 8 * 8];
  for (int i = 0; i < (int)sizeof u; i++)
    u[i] = (uint8_t)((i * 37 + 11) % 256);
  for (int n = 0; n < 2; n++)
    for (int y = 0; y < 8; y++)
      for (int xx = 0; xx < 8; xx++)
        for (int c = 0; c < 3; c++)
          x[((n * 3 + c) * 8 + y) * 8 + xx] = ((float)u[((n * 8 + y) * 8 + xx) * 3 + c] - MEAN[c]) * SCALE[c];
  CHECK(run(plain, x, want) == RI_OK);
  CHECK(run(dev, u, got) == RI_OK);
  CHECK(memcmp(want, got, sizeof want) == 0);
  int nonzero = 0;
  for (int i = 0; i < (int)(sizeof got / sizeof got[0]); i++)
    nonzero += got[i] != 0.f;
  CHECK(nonzero > 0);
out:
  ri_engine_destroy(plain);
  ri_engine_destroy(dev);
}

static void test_refusals(const uint8_t *onnx, size_t len) {
  char msg[1024];
  ri_engine_t *e = NULL;
  CHECK(build(onnx, len, NULL, 1, &e, msg, sizeof msg) == RI_ERR_INVALID_ARG && !e &&
        strstr(msg, "'preprocess' metadata"));
  CHECK(build(onnx, len, "size=8x8;layout=nchw;dtype=uint8", 1, &e, msg, sizeof msg) == RI_ERR_INVALID_ARG &&
        strstr(msg, "uint8"));
  CHECK(build(onnx, len, "size=9x8;layout=nchw", 1, &e, msg, sizeof msg) == RI_ERR_INVALID_ARG &&
        strstr(msg, "[N,3,8,9]") && strstr(msg, "'pixels'"));
  CHECK(ri_builder_set_preprocess_on_device(NULL, 1) == RI_ERR_INVALID_ARG);
}

static void test_alloc_failures(const uint8_t *onnx, size_t len) {
  char msg[1024];
  int ok_seen = 0;
  for (long n = 1; n < 20000 && !ok_seen; n++) {
    long live = ri__alloc_live();
    ri__alloc_fail_after(n);
    ri_engine_t *e = NULL;
    ri_status s = build(onnx, len, SPEC, 1, &e, msg, sizeof msg);
    ri__alloc_fail_after(0);
    if (s == RI_OK)
      ok_seen = 1;
    else
      CHECK_MSG(s == RI_ERR_NO_MEMORY, "failing allocation %ld: %s: %s", n, ri_status_str(s), msg);
    ri_engine_destroy(e);
    CHECK_MSG(ri__alloc_live() == live, "failing allocation %ld: %ld allocations leaked", n,
              ri__alloc_live() - live);
  }
  CHECK(ok_seen);
}

int main(void) {
  size_t len = 0;
  uint8_t *onnx = tb_conv_relu_model("pixels", &len);
  test_outputs_and_metadata(onnx, len);
  test_refusals(onnx, len);
  test_alloc_failures(onnx, len);
  tb_reset();
  return test_done("test_preprocess_device");
}
