/* Imports every crafted bad model of tests/data/bad_onnx/ (written by tests/data/make_bad_onnx.py) and checks
 * that each fails with the expected status and a message that names the file and the offending tensor,
 * node or value, without leaking. Then mutates a valid model (every truncation, every byte inverted) and
 * checks that each import fails cleanly or succeeds, never crashes and never leaks. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "graph/ir.h"
#include "onnx/import.h"
#include "test.h"
#include "test_onnx_build.h"

#ifndef RI_SOURCE_DIR
#define RI_SOURCE_DIR "."
#endif
#define CORPUS RI_SOURCE_DIR "/tests/data/bad_onnx"

typedef struct {
  const char *file;
  ri_status status;
  const char *must[3]; /* substrings the message must contain */
} expectation;

static const expectation k_expect[] = {
    {"truncated.onnx", RI_ERR_PARSE, {"not a valid ONNX model (protobuf parse failed"}},
    {"random_bytes.onnx", RI_ERR_PARSE, {"not a valid ONNX model (protobuf parse failed"}},
    {"wrong_field_type.onnx", RI_ERR_PARSE, {"not a valid ONNX model (protobuf parse failed"}},
    {"wrong_field_type_ir.onnx", RI_ERR_PARSE, {"not a valid ONNX model (protobuf parse failed"}},
    {"huge_dims.onnx", RI_ERR_LIMIT, {"initializer 'huge_weight'", "[1000000,1000000]", "limit"}},
    {"short_raw_data.onnx",
     RI_ERR_PARSE,
     {"initializer 'short_weight'", "raw_data holds 12 bytes", "needs 64"}},
    {"negative_dims.onnx", RI_ERR_PARSE, {"initializer 'neg_weight'", "dimension 1 is -3"}},
    {"rank20.onnx", RI_ERR_LIMIT, {"initializer 'deep_weight'", "rank 20"}},
    {"dangling_input.onnx",
     RI_ERR_PARSE,
     {"node 'conv0' input 'missing_weight' is not produced by any node, initializer or graph input"}},
    {"cycle.onnx", RI_ERR_PARSE, {"cycle", "add_a"}},
    {"two_producers.onnx", RI_ERR_PARSE, {"value 'y' is produced by two nodes ('relu_a' and 'sigmoid_b')"}},
    {"unknown_op.onnx",
     RI_ERR_UNSUPPORTED,
     {"node 'frob' (op 'FrobnicateV2', domain 'ai.onnx'): operator not supported"}},
    {"opset7.onnx", RI_ERR_UNSUPPORTED, {"opset 7 ", "11 to 21"}},
    {"external_traversal.onnx",
     RI_ERR_PARSE,
     {"initializer 'stolen'", "'../../../etc/passwd'", "'..' component"}},
    {"external_offset_past_end.onnx",
     RI_ERR_PARSE,
     {"initializer 'far_weight'", "offset 4096", "outside file"}},
    {"dtype99.onnx", RI_ERR_UNSUPPORTED, {"initializer 'odd_type'", "code 99"}},
    {"empty_graph_dangling_output.onnx", RI_ERR_PARSE, {"graph output 'ghost_out' is not produced"}},
    {"huge_attribute_list.onnx", RI_ERR_LIMIT, {"node 'relu_attrs' attribute 'junk' has 65537 elements"}},
    {"too_many_attributes.onnx", RI_ERR_LIMIT, {"node 'relu_many' has 100 attributes"}},
    {"deep_nesting.onnx", RI_ERR_LIMIT, {"nested deeper than 64 levels"}},
    {"symbolic_axis.onnx", RI_ERR_UNSUPPORTED, {"input 'x' axis 2 is symbolic ('H')"}},
    {"external_absolute.onnx",
     RI_ERR_PARSE,
     {"initializer 'abs_weight'", "'/etc/passwd' is an absolute path"}},
    {"string_initializer.onnx", RI_ERR_UNSUPPORTED, {"initializer 'labels'", "STRING"}},
    {"subgraph_if.onnx", RI_ERR_UNSUPPORTED, {"node 'if0' (op 'If', domain 'ai.onnx')"}},
    {"many_unsupported.onnx",
     RI_ERR_UNSUPPORTED,
     {"node 'erf0' (op 'Erf', domain 'ai.onnx') and 1 more", "node 'einsum0' (op 'Einsum'",
      "node 'topk0' (op 'TopK'"}},
    {"typed_count_mismatch.onnx", RI_ERR_PARSE, {"initializer 'few_values'", "float_data holds 3 values"}},
    {"ir_version2.onnx", RI_ERR_UNSUPPORTED, {"IR version 2"}},
};
#define N_EXPECT (sizeof k_expect / sizeof *k_expect)

static void test_corpus(void) {
  for (size_t i = 0; i < N_EXPECT; i++) {
    const expectation *e = &k_expect[i];
    char path[512];
    snprintf(path, sizeof path, "%s/%s", CORPUS, e->file);
    long live = ri__alloc_live();
    ri__graph *g = NULL;
    ri__err err = {0};
    ri_status st = ri__onnx_import_file(path, &g, &err);
    printf("%-34s [%s] %s\n", e->file, ri_status_str(st), err.msg);
    CHECK_MSG(st == e->status, "%s: status %s, want %s", e->file, ri_status_str(st),
              ri_status_str(e->status));
    CHECK_MSG(g == NULL, "%s: graph returned", e->file);
    CHECK_MSG(strstr(err.msg, e->file) != NULL, "%s: message does not name the file", e->file);
    for (int k = 0; k < 3; k++)
      if (e->must[k])
        CHECK_MSG(strstr(err.msg, e->must[k]) != NULL, "%s: message lacks '%s'", e->file, e->must[k]);
    CHECK_MSG(ri__alloc_live() == live, "%s: %ld allocations leaked", e->file, ri__alloc_live() - live);
    if (g) ri__graph_destroy(g);
  }
}

/* Every .onnx file of the corpus has an expectation (a new file without one fails here). */
static void test_corpus_complete(void) {
  DIR *d = opendir(CORPUS);
  CHECK_MSG(d != NULL, "cannot open %s", CORPUS);
  if (!d) return;
  int files = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t len = strlen(de->d_name);
    if (len < 5 || strcmp(de->d_name + len - 5, ".onnx") != 0) continue;
    files++;
    int known = 0;
    for (size_t i = 0; i < N_EXPECT; i++)
      known |= strcmp(k_expect[i].file, de->d_name) == 0;
    CHECK_MSG(known, "%s has no expectation in this test", de->d_name);
  }
  closedir(d);
  CHECK_MSG(files == (int)N_EXPECT, "corpus holds %d models, expectations %zu", files, N_EXPECT);
}

/* Imports bytes that may or may not be valid: any outcome but a crash, a leak or a stray graph is fine. */
static int import_any(const uint8_t *buf, size_t len) {
  long live = ri__alloc_live();
  ri__graph *g = NULL;
  ri__err err = {0};
  ri_status st = ri__onnx_import(buf, len, NULL, "mutant.onnx", &g, &err);
  int ok = 1;
  if (st == RI_OK) {
    ok = g != NULL && ri__graph_link(g, NULL) == RI_OK;
    ri__graph_destroy(g);
  } else {
    ok = g == NULL && err.msg[0] != 0 && st != RI_ERR_INTERNAL && st != RI_ERR_NO_MEMORY;
  }
  return ok && ri__alloc_live() == live;
}

static void test_mutations(void) {
  enum { F32 = 1, I64 = 7 };
  Onnx__ModelProto *m = tb_model(8, 13);
  tb_input(m, "x", F32, 4, (const int64_t[]){-1, 2, 2, 2});
  float w[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  Onnx__TensorProto *t = tb_add_init(m, tb_tensor("w", F32, 4, (const int64_t[]){2, 2, 1, 1}));
  tb_raw(t, w, 16);
  Onnx__TensorProto *b = tb_add_init(m, tb_tensor("b", F32, 1, (const int64_t[]){2}));
  tb_float_data(b, w, 2);
  Onnx__NodeProto *conv = tb_node(m, "Conv", "conv", "x,w,b", "c");
  tb_attr_ints(conv, "kernel_shape", (const int64_t[]){1, 1}, 2);
  tb_attr_s(conv, "auto_pad", "NOTSET");
  Onnx__NodeProto *k = tb_node(m, "Constant", "k", "", "shape");
  Onnx__TensorProto *kt = tb_tensor(NULL, I64, 1, (const int64_t[]){2});
  tb_int64_data(kt, (const int64_t[]){1, -1}, 2);
  tb_attr_t(k, "value", kt);
  tb_node(m, "Reshape", "reshape", "c,shape", "y");
  tb_output(m, "y");
  size_t len;
  uint8_t *good = tb_pack(m, &len);
  CHECK(import_any(good, len));
  uint8_t *buf = tb_alloc(len);
  int bad = 0;
  for (size_t cut = 0; cut < len; cut++)
    if (!import_any(good, cut) && bad++ < 5) CHECK_MSG(0, "truncation to %zu bytes misbehaved", cut);
  for (size_t i = 0; i < len; i++) {
    for (int flip = 0; flip < 3; flip++) {
      static const uint8_t masks[3] = {0xff, 0x01, 0x80};
      memcpy(buf, good, len);
      buf[i] ^= masks[flip];
      if (!import_any(buf, len) && bad++ < 5) CHECK_MSG(0, "byte %zu ^ 0x%02x misbehaved", i, masks[flip]);
    }
  }
  CHECK_MSG(bad == 0, "%d mutants misbehaved", bad);
  printf("mutations: %zu truncations and %zu byte flips of a %zu-byte model handled\n", len, 3 * len, len);
  tb_reset();
}

int main(void) {
  test_corpus();
  test_corpus_complete();
  test_mutations();
  return test_done("test_onnx_bad_corpus");
}
