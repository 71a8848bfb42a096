/* runinfer build: ONNX → engine file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_build(int argc, char **argv) {
  const char *onnx = NULL, *save = NULL, *device = "cpu", *timing_cache = NULL;
  int max_batch = 1, threads = 0, level = RI_BUILDER_LEVEL_DEFAULT;
  ri_precision precision = RI_PRECISION_FP32;
  ri_builder_t *b = NULL;
  if (ri_builder_create(&b) != RI_OK) return cli_fail("build", RI_ERR_NO_MEMORY, NULL);
  int rc = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--onnx") == 0 && v)
      onnx = argv[++i];
    else if (strcmp(a, "--save") == 0 && v)
      save = argv[++i];
    else if (strcmp(a, "--device") == 0 && v)
      device = argv[++i];
    else if (strcmp(a, "--max-batch") == 0 && v) {
      if (cli_int(argv[++i], 1, 65536, &max_batch)) {
        fprintf(stderr, "runinfer build: --max-batch expects 1..65536, got '%s'\n", v);
        goto out;
      }
    } else if (strcmp(a, "--builder-level") == 0 && v) {
      if (cli_int(argv[++i], 0, 5, &level)) {
        fprintf(stderr, "runinfer build: --builder-level expects 0..5, got '%s'\n", v);
        goto out;
      }
    } else if (strcmp(a, "--timing-cache") == 0 && v) {
      timing_cache = argv[++i];
    } else if (strcmp(a, "--threads") == 0 && v) {
      if (cli_int(argv[++i], 0, 1024, &threads)) {
        fprintf(stderr, "runinfer build: --threads expects 0..1024, got '%s'\n", v);
        goto out;
      }
    } else if (strcmp(a, "--precision") == 0 && v) {
      i++;
      if (strcmp(v, "fp32") == 0)
        precision = RI_PRECISION_FP32;
      else if (strcmp(v, "fp16") == 0)
        precision = RI_PRECISION_FP16;
      else if (strcmp(v, "int8") == 0)
        precision = RI_PRECISION_INT8;
      else {
        fprintf(stderr, "runinfer build: --precision expects fp32, fp16 or int8, got '%s'\n", v);
        goto out;
      }
    } else if (strcmp(a, "--preprocess-on-device") == 0) {
      if (ri_builder_set_preprocess_on_device(b, 1) != RI_OK) {
        rc = cli_fail("build", RI_ERR_INVALID_ARG, ri_builder_last_error(b));
        goto out;
      }
    } else if (strcmp(a, "--half-accumulation") == 0) {
      if (ri_builder_set_half_accumulation(b, 1) != RI_OK) {
        rc = cli_fail("build", RI_ERR_INVALID_ARG, ri_builder_last_error(b));
        goto out;
      }
    } else if (strcmp(a, "--meta") == 0 && v) {
      const char *eq = strchr(argv[++i], '=');
      if (!eq) {
        fprintf(stderr, "runinfer build: --meta expects KEY=VALUE, got '%s'\n", v);
        goto out;
      }
      char key[256];
      size_t kl = (size_t)(eq - v) < sizeof key - 1 ? (size_t)(eq - v) : sizeof key - 1;
      memcpy(key, v, kl);
      key[kl] = 0;
      if (ri_builder_set_metadata(b, key, eq + 1) != RI_OK) {
        rc = cli_fail("build", RI_ERR_INVALID_ARG, ri_builder_last_error(b));
        goto out;
      }
    } else {
      fprintf(stderr, "runinfer build: unknown or incomplete option '%s'\n", a);
      goto out;
    }
  }
  if (!onnx || !save) {
    fprintf(stderr, "runinfer build: --onnx and --save are required\n");
    goto out;
  }
  ri_status s;
  if ((s = ri_builder_set_max_batch(b, max_batch)) != RI_OK ||
      (s = ri_builder_set_device(b, device)) != RI_OK ||
      (s = ri_builder_set_precision(b, precision)) != RI_OK ||
      (s = ri_builder_set_threads(b, threads)) != RI_OK ||
      (s = ri_builder_set_builder_level(b, level)) != RI_OK ||
      (s = ri_builder_set_timing_cache(b, timing_cache)) != RI_OK) {
    rc = cli_fail("build", s, ri_builder_last_error(b));
    goto out;
  }
  ri_engine_t *e = NULL;
  s = ri_builder_build_onnx(b, onnx, &e);
  if (s != RI_OK) {
    rc = cli_fail("build", s, ri_builder_last_error(b));
    goto out;
  }
  s = ri_engine_save(e, save);
  if (s != RI_OK) {
    rc = cli_fail("save", s, ri_engine_last_error(e));
    ri_engine_destroy(e);
    goto out;
  }
  fprintf(stderr, "runinfer: built '%s' from '%s' (device %s, max batch %d)\n", save, onnx, device,
          max_batch);
  ri_engine_destroy(e);
  rc = 0;
out:
  ri_builder_destroy(b);
  return rc;
}
