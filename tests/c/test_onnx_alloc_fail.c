/* Allocation-failure sweep over the ONNX importer: for n = 1, 2, ... the n-th allocation (and every one
 * after it) fails; each import must then return RI_ERR_NO_MEMORY, or succeed once n exceeds the number of
 * allocations it makes, and must leave no allocation behind either way. The protobuf parser allocates
 * through the same hook, so its failure paths are swept too. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "graph/ir.h"
#include "onnx/import.h"
#include "test.h"
#include "test_onnx_build.h"

enum { F32 = 1, I8 = 3, I64 = 7 };

static const float k_w[6] = {0.5f, -1.f, 2.f, 0.25f, 3.f, -0.125f};

/* A small model touching every importer path that allocates: raw, typed and external initializers, an
 * input that is also an initializer, symbolic batch, every attribute kind, Constant folding, an unnamed
 * node and nodes out of order. ext_location NULL leaves out the external initializer. */
static Onnx__ModelProto *model(const char *ext_location) {
  Onnx__ModelProto *m = tb_model(8, 13);
  tb_opset(m, "ai.onnx.ml", 3);
  tb_input(m, "x", F32, 4, (const int64_t[]){-1, 3, 2, 2});
  Onnx__TensorProto *w = tb_add_init(m, tb_tensor("w", F32, 4, (const int64_t[]){2, 3, 1, 1}));
  tb_raw(w, k_w, sizeof k_w);
  Onnx__TensorProto *b = tb_add_init(m, tb_tensor("b", F32, 1, (const int64_t[]){2}));
  tb_float_data(b, (const float[]){1.f, 2.f}, 2);
  tb_input(m, "b", F32, 1, (const int64_t[]){2});
  Onnx__TensorProto *q = tb_add_init(m, tb_tensor("q", I8, 1, (const int64_t[]){2}));
  tb_int32_data(q, (const int32_t[]){-1, 1}, 2);
  if (ext_location) {
    Onnx__TensorProto *e = tb_add_init(m, tb_tensor("e", F32, 1, (const int64_t[]){6}));
    tb_external(e, ext_location, "0", "24");
    tb_output(m, "e");
  }
  /* listed consumer-first so that sorting has work to do */
  tb_node(m, "Reshape", "reshape", "r,shape", "y");
  Onnx__NodeProto *k = tb_node(m, "Constant", "k", "", "shape");
  tb_attr_ints(k, "value_ints", (const int64_t[]){1, -1}, 2);
  tb_node(m, "Relu", NULL, "c", "r");
  Onnx__NodeProto *conv = tb_node(m, "Conv", "conv", "x,w,b", "c");
  tb_attr_ints(conv, "kernel_shape", (const int64_t[]){1, 1}, 2);
  tb_attr_floats(conv, "f", (const float[]){1.f}, 1);
  tb_attr_s(conv, "auto_pad", "NOTSET");
  const char *strs[2] = {"p", "q"};
  tb_attr_strings(conv, "tags", strs, 2);
  tb_attr_i(conv, "group", 1);
  tb_attr_f(conv, "alpha", 0.5f);
  Onnx__TensorProto *at = tb_tensor(NULL, I64, 1, (const int64_t[]){2});
  tb_int64_data(at, (const int64_t[]){3, 4}, 2);
  tb_attr_t(conv, "payload", at);
  tb_output(m, "y");
  tb_output(m, "q");
  return m;
}

typedef struct {
  const uint8_t *buf;
  size_t len;
  const char *path;
} job;

static ri_status run_memory(const job *j, ri__err *err) {
  ri__graph *g = NULL;
  ri_status st = ri__onnx_import(j->buf, j->len, NULL, "sweep.onnx", &g, err);
  if (st == RI_OK) {
    CHECK(g && g->n_nodes == 3 && g->n_inputs == 1 && g->n_outputs == 2);
    ri__graph_destroy(g);
  } else {
    CHECK(g == NULL);
  }
  return st;
}

static ri_status run_file(const job *j, ri__err *err) {
  ri__graph *g = NULL;
  ri_status st = ri__onnx_import_file(j->path, &g, err);
  if (st == RI_OK) {
    int e = ri__graph_find_value(g, "e");
    CHECK(e >= 0 && g->values[e].nbytes == sizeof k_w && memcmp(g->values[e].data, k_w, sizeof k_w) == 0);
    ri__graph_destroy(g);
  }
  return st;
}

static ri_status run_tensor(const job *j, ri__err *err) {
  ri__tensor t;
  char *name = NULL;
  ri_status st = ri__onnx_parse_tensor(j->buf, j->len, &t, &name, err);
  if (st == RI_OK) {
    CHECK(name && strcmp(name, "t") == 0 && t.data && memcmp(t.data, k_w, sizeof k_w) == 0);
    ri__free(t.data);
    ri__free(name);
  }
  return st;
}

static void sweep(const char *label, ri_status (*run)(const job *, ri__err *), const job *j) {
  long base = ri__alloc_live();
  int succeeded = 0, n = 1, bad = 0;
  for (; n < 100000 && !succeeded && bad < 5; n++) {
    ri__err err = {0};
    ri__alloc_fail_after(n);
    ri_status st = run(j, &err);
    long made = ri__alloc_fail_after(0);
    if (st == RI_OK) {
      succeeded = 1;
      CHECK_MSG(made < n, "%s: succeeded although allocation %d failed (%ld made)", label, n, made);
    } else if (st != RI_ERR_NO_MEMORY || !strstr(err.msg, "out of memory")) {
      bad++;
      CHECK_MSG(0, "%s: failing allocation %d gave %s: %s", label, n, ri_status_str(st), err.msg);
    }
    long live = ri__alloc_live();
    if (live != base) {
      bad++;
      CHECK_MSG(0, "%s: failing allocation %d leaked %ld allocations (%s)", label, n, live - base, err.msg);
    }
  }
  printf("%s: %d allocation points swept, import succeeded at %d\n", label, n - 2, n - 1);
  CHECK_MSG(succeeded, "%s: never succeeded", label);
  CHECK_MSG(n > 3, "%s: suspiciously few allocations (%d)", label, n);
}

int main(void) {
  job j = {0};
  j.buf = tb_pack(model(NULL), &j.len);
  sweep("import from memory", run_memory, &j);

  char dir[] = "/tmp/ri_onnx_alloc_XXXXXX", path[128], wpath[128];
  if (mkdtemp(dir)) {
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    snprintf(wpath, sizeof wpath, "%s/weights.bin", dir);
    size_t len;
    uint8_t *buf = tb_pack(model("weights.bin"), &len);
    CHECK(tb_write_file(path, buf, len) == 0 && tb_write_file(wpath, k_w, sizeof k_w) == 0);
    j.path = path;
    sweep("import from file with external data", run_file, &j);
    unlink(path);
    unlink(wpath);
    rmdir(dir);
  } else {
    CHECK_MSG(0, "mkdtemp: %s", strerror(errno));
  }

  Onnx__TensorProto *t = tb_tensor("t", F32, 2, (const int64_t[]){3, 2});
  tb_raw(t, k_w, sizeof k_w);
  j.buf = tb_pack_tensor(t, &j.len);
  sweep("standalone tensor", run_tensor, &j);
  tb_reset();
  return test_done("test_onnx_alloc_fail");
}
