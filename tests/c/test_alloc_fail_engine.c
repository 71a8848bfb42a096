/* Allocation-failure sweep over the whole engine life: import + build, save to memory, load, create a
 * context, run at two batch sizes, destroy. For n = 1, 2, ... the n-th allocation (and every later one)
 * fails; each step must return a status (never crash) and leave no allocation behind. The sweep ends when a
 * pass completes with no failure injected at all. Model: tests/fuzz/seeds/onnx_import/tiny_conv.onnx, or
 * $RI_ALLOC_SWEEP_MODEL (e.g. the SSD reference model; slow). $RI_ALLOC_SWEEP_STRIDE > 1 tests every k-th
 * allocation only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "runinfer/engine.h"
#include "test.h"

static unsigned char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)sz);
  if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *n = (size_t)sz;
  return b;
}

/* One full pass; returns 1 when every step succeeded. */
static int pass(const char *model, int *crashed_status) {
  int ok = 0;
  ri_builder_t *b = NULL;
  ri_engine_t *e = NULL, *e2 = NULL;
  ri_runtime_t *rt = NULL;
  ri_context_t *c = NULL;
  void *in = NULL, *out[8] = {0};
  char tmp[] = "/tmp/ri-allocfail-XXXXXX";
  int fd = -1;
  if (ri_builder_create(&b) != RI_OK) goto done;
  if (ri_builder_set_max_batch(b, 4) != RI_OK || ri_builder_set_threads(b, 1) != RI_OK) goto done;
  ri_status s = ri_builder_build_onnx(b, model, &e);
  if (s != RI_OK) {
    if (s != RI_ERR_NO_MEMORY) {
      *crashed_status = (int)s;
      fprintf(stderr, "build failed with %s, not out of memory: %s\n", ri_status_str(s),
              ri_builder_last_error(b));
    }
    goto done;
  }
  fd = mkstemp(tmp);
  if (fd < 0) goto done;
  if (ri_engine_save(e, tmp) != RI_OK) goto done;
  if (ri_runtime_create(&rt) != RI_OK) goto done;
  if (ri_runtime_load(rt, tmp, &e2) != RI_OK) goto done;
  if (ri_context_create(e2, &c) != RI_OK) goto done;
  ri_tensor_info ti;
  if (ri_engine_input_info(e2, 0, &ti) != RI_OK) goto done;
  size_t n = 4 * ri_dtype_size(ti.dtype);
  for (int k = 1; k < ti.rank; k++)
    n *= (size_t)ti.dims[k];
  in = calloc(1, n);
  int no = ri_engine_num_outputs(e2);
  for (int i = 0; i < no && i < 8; i++)
    out[i] = calloc(1, 1 << 22);
  if (!in) goto done;
  const void *ins[1] = {in};
  if (ri_context_run(c, 4, ins, out) != RI_OK) goto done;
  if (ri_context_run(c, 1, ins, out) != RI_OK) goto done;
  ok = 1;
done:
  if (fd >= 0) {
    close(fd);
    unlink(tmp);
  }
  ri_context_destroy(c);
  ri_engine_destroy(e2);
  ri_runtime_destroy(rt);
  ri_engine_destroy(e);
  ri_builder_destroy(b);
  free(in);
  for (int i = 0; i < 8; i++)
    free(out[i]);
  return ok;
}

int main(void) {
  const char *model = getenv("RI_ALLOC_SWEEP_MODEL");
  char def[4096];
  if (!model) {
    snprintf(def, sizeof def, "%s/tests/fuzz/seeds/onnx_import/tiny_conv.onnx", RI_SOURCE_DIR);
    model = def;
  }
  size_t sz;
  unsigned char *probe = read_all(model, &sz);
  CHECK_MSG(probe != NULL, "cannot read %s", model);
  free(probe);
  if (!probe) return test_done("test_alloc_fail_engine");
  long stride = getenv("RI_ALLOC_SWEEP_STRIDE") ? atol(getenv("RI_ALLOC_SWEEP_STRIDE")) : 1;
  if (stride < 1) stride = 1;
  long base = ri__alloc_live();
  ri__alloc_fail_after(0);
  int bad = 0;
  CHECK(pass(model, &bad) == 1);
  long total = ri__alloc_fail_after(0);
  CHECK(ri__alloc_live() == base);
  printf("model %s: %ld allocations in a full pass\n", model, total);
  long failures_tested = 0;
  for (long n = 1; n <= total; n += stride) {
    int st = 0;
    ri__alloc_fail_after(n);
    int ok = pass(model, &st);
    ri__alloc_fail_after(0);
    failures_tested++;
    CHECK_MSG(!ok || n > total, "allocation %ld failed but the pass reported success", n);
    CHECK_MSG(st == 0, "allocation %ld: a non-OOM error status %d", n, st);
    long live = ri__alloc_live();
    CHECK_MSG(live == base, "allocation %ld: %ld allocations leaked", n, live - base);
    if (live != base) break;
  }
  printf("swept %ld failure points: 0 crashes\n", failures_tested);
  return test_done("test_alloc_fail_engine");
}
