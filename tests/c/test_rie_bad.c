/* Hostile engine files: a corpus of crafted bad files derived from a valid one, each of which must fail
 * with its specific status and message, leak nothing and leave the output zeroed. Most corruptions are
 * "resealed" (section and file checksums recomputed) so they reach the structure checks, as a deliberate
 * attacker's file would.
 *
 *   test_rie_bad                   run the corpus (and the committed files in tests/data/bad_rie/)
 *   test_rie_bad --write-corpus D  also write each bad file to D/<name>.rie (fuzzer seeds) */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine/crc.h"
#include "rie_sample.h"
#include "test.h"

static unsigned char *g_good;
static size_t g_good_size;
static const char *g_corpus_dir;

static uint64_t ld(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}
static void st_le(unsigned char *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

/* Section table entry of a tag in a (valid-layout) buffer, or NULL. */
static unsigned char *entry(unsigned char *d, const char *tag) {
  uint64_t nsec = ld(d + RI__RIE_OFF_SECTIONS, 4), table = ld(d + RI__RIE_OFF_TABLE, 8);
  for (uint64_t i = 0; i < nsec; i++)
    if (memcmp(d + table + 24 * i, tag, 4) == 0) return d + table + 24 * i;
  return NULL;
}

/* Recomputes every section checksum (when sections are inside the buffer) and the trailer. */
static void reseal(unsigned char *d, size_t size, int sections) {
  uint64_t nsec = ld(d + RI__RIE_OFF_SECTIONS, 4), table = ld(d + RI__RIE_OFF_TABLE, 8);
  for (uint64_t i = 0; sections && i < nsec && table + 24 * (i + 1) <= size; i++) {
    unsigned char *e = d + table + 24 * i;
    uint64_t off = ld(e + 8, 8), sz = ld(e + 16, 8);
    if (off <= size && sz <= size - off) st_le(e + 4, ri__crc32c(0, d + off, sz), 4);
  }
  st_le(d + size - 8, ri__crc32c(0, d, size - 8), 4);
}

/* Offset of the first byte after the length-prefixed string s inside section `tag`. */
static size_t after_str(unsigned char *d, const char *tag, const char *s) {
  unsigned char *e = entry(d, tag);
  uint64_t off = ld(e + 8, 8), sz = ld(e + 16, 8);
  size_t n = strlen(s);
  for (uint64_t p = off; p + 4 + n <= off + sz; p++)
    if (ld(d + p, 4) == n && memcmp(d + p + 4, s, n) == 0) return (size_t)(p + 4 + n);
  fprintf(stderr, "string '%s' not found in %s\n", s, tag);
  abort();
}

/* Field offsets within a value record, counted from the end of its name (rie_format.h). */
#define V_DTYPE      0
#define V_KIND       4
#define V_BATCH_AXIS 8
#define V_RANK       12
#define V_DIMS       16
#define V_MEM(rank)  (16 + 8 * (rank))      /* mem_offset, then mem_size */
#define V_DATA(rank) (16 + 8 * (rank) + 16) /* data offset, then data size */

typedef struct {
  unsigned char *d;
  size_t size;
} buf;

static buf copy_good(void) {
  buf b = {malloc(g_good_size), g_good_size};
  memcpy(b.d, g_good, g_good_size);
  return b;
}

/* Reads b, expects status `want` and every needle in the message; frees b. Bad files are also written to
 * the corpus directory when one was given and `save` is set. */
static void expect_ex(const char *name, buf b, ri_status want, const char *needle1, const char *needle2,
                      int save) {
  if (g_corpus_dir && save && want != RI_OK) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.rie", g_corpus_dir, name);
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot write %s", path);
    if (f) {
      fwrite(b.d, 1, b.size, f);
      fclose(f);
    }
  }
  long live = ri__alloc_live();
  ri__rie_content out;
  memset(&out, 0x5A, sizeof out);
  ri__err err = {0};
  ri_status st = ri__rie_read(b.d, b.size, &out, &err);
  CHECK_MSG(st == want, "%s: status %s, expected %s (%s)", name, ri_status_str(st), ri_status_str(want),
            err.msg);
  CHECK_MSG(err.status == st, "%s: err.status not set", name);
  CHECK_MSG(!needle1 || strstr(err.msg, needle1), "%s: message lacks \"%s\": %s", name, needle1, err.msg);
  CHECK_MSG(!needle2 || strstr(err.msg, needle2), "%s: message lacks \"%s\": %s", name, needle2, err.msg);
  if (st == RI_OK) {
    CHECK_MSG(out.graph != NULL && out.n_meta == 3, "%s: accepted but empty", name);
    ri__rie_content_free(&out);
  }
  CHECK_MSG(out.graph == NULL && out.meta == NULL && out.device == NULL, "%s: output not cleared", name);
  CHECK_MSG(ri__alloc_live() == live, "%s: %ld allocations leaked", name, ri__alloc_live() - live);
  printf("  %-26s %s\n", name, err.msg);
  free(b.d);
}

static void expect(const char *name, buf b, ri_status want, const char *needle1, const char *needle2) {
  expect_ex(name, b, want, needle1, needle2, 1);
}

static void corpus(void) {
  char name[64];
  /* truncation at every 7th byte */
  int truncs = 0;
  for (size_t n = 0; n < g_good_size; n += 7) {
    buf b = copy_good();
    b.size = n;
    snprintf(name, sizeof name, "truncated_%05zu", n);
    const char *needle = n < 8 ? "too small" : "truncated";
    /* a few truncations are kept as corpus files; the rest run in memory only */
    int save = n == 7 || n == 63 || n == 70 || n + 7 >= g_good_size;
    expect_ex(name, b, RI_ERR_PARSE, needle, NULL, save);
    truncs++;
  }
  CHECK(truncs > 100);

  buf b = copy_good();
  b.d[3] ^= 0x20;
  expect("bad_magic", b, RI_ERR_PARSE, "not a runinfer engine file", NULL);

  b = copy_good();
  st_le(b.d + RI__RIE_OFF_VERSION, 999, 4);
  reseal(b.d, b.size, 1);
  expect("version_999", b, RI_ERR_STALE, "format version 999 is newer than this library's 1", NULL);

  b = copy_good();
  st_le(b.d + RI__RIE_OFF_VERSION, 0, 4);
  expect("version_0", b, RI_ERR_STALE, "format version 0 is older", NULL);

  b = copy_good();
  st_le(b.d + RI__RIE_OFF_FLAGS, 4, 4);
  reseal(b.d, b.size, 1);
  expect("unknown_flags", b, RI_ERR_UNSUPPORTED, "unknown header flags 0x4", NULL);

  b = copy_good();
  st_le(b.d + RI__RIE_OFF_FILE_SIZE, b.size + 64, 8);
  reseal(b.d, b.size, 1);
  expect("file_size_wrong", b, RI_ERR_PARSE, "truncated", NULL);

  b = copy_good();
  st_le(entry(b.d, "GRPH") + 8, b.size + 100, 8);
  reseal(b.d, b.size, 1);
  expect("section_offset_past_end", b, RI_ERR_PARSE, "(GRPH) at offset", "lies outside");

  b = copy_good();
  {
    unsigned char *e = entry(b.d, "GRPH");
    st_le(e + 16, UINT64_MAX - ld(e + 8, 8) + 1 + 64, 8); /* offset + size wraps around to 64 */
  }
  reseal(b.d, b.size, 1);
  expect("section_size_wraps", b, RI_ERR_PARSE, "lies outside", NULL);

  b = copy_good();
  memcpy(entry(b.d, "META") + 8, entry(b.d, "GRPH") + 8, 8);
  reseal(b.d, b.size, 1);
  expect("sections_overlap", b, RI_ERR_PARSE, "overlap", NULL);

  b = copy_good();
  memcpy(entry(b.d, "WGHT"), "XXXX", 4);
  reseal(b.d, b.size, 1);
  expect("section_missing", b, RI_ERR_PARSE, "WGHT section is missing", NULL);

  b = copy_good();
  st_le(b.d + RI__RIE_OFF_SECTIONS, 1000000, 4);
  reseal(b.d, b.size, 0);
  expect("section_count_absurd", b, RI_ERR_LIMIT, "section count 1000000", NULL);

  /* GRPH starts with: graph name "sample", opset i64, batch i32, value count u32 */
  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "sample") + 12, (uint64_t)1 << 31, 4);
  reseal(b.d, b.size, 1);
  expect("value_count_2e31", b, RI_ERR_LIMIT, "value count 2147483648 exceeds the limit 400000", NULL);

  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "sample") + 12, 399999, 4);
  reseal(b.d, b.size, 1);
  expect("value_count_past_section", b, RI_ERR_PARSE, "value count 399999 needs at least", NULL);

  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "conv_w") + V_RANK, 20, 4);
  reseal(b.d, b.size, 1);
  expect("rank_20", b, RI_ERR_LIMIT, "value 1 'conv_w'", "rank 20 exceeds the limit 8");

  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "conv_w") + V_DIMS + 8, (uint64_t)-5, 8);
  reseal(b.d, b.size, 1);
  expect("dim_negative", b, RI_ERR_PARSE, "'conv_w'", "dim 1 is -5");

  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "conv_out") + V_DIMS, (uint64_t)1 << 40, 8);
  reseal(b.d, b.size, 1);
  expect("numel_over_limit", b, RI_ERR_LIMIT, "'conv_out'", "exceeds the limit of 2147483648 elements");

  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "conv_w") + V_DTYPE, 99, 4);
  reseal(b.d, b.size, 1);
  expect("dtype_99", b, RI_ERR_PARSE, "dtype code 99", NULL);

  b = copy_good();
  {
    size_t p = after_str(b.d, "GRPH", "conv_b") + V_DATA(1) + 8;
    st_le(b.d + p, ld(b.d + p, 8) + 4, 8);
  }
  reseal(b.d, b.size, 1);
  expect("const_size_mismatch", b, RI_ERR_PARSE, "'conv_b'",
         "constant holds 20 bytes but shape [4] of float32 needs 16");

  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "conv_w") + V_DATA(4), (uint64_t)1 << 62, 8);
  reseal(b.d, b.size, 1);
  expect("const_offset_outside", b, RI_ERR_PARSE, "'conv_w'", "WGHT section");

  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "reshaped") + V_DATA(2) + 8, 8, 8);
  reseal(b.d, b.size, 1);
  expect("activation_with_data", b, RI_ERR_PARSE, "'reshaped'", "is not a constant but has data");

  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "conv_out") + V_MEM(4) + 8, (uint64_t)1 << 40, 8);
  reseal(b.d, b.size, 1);
  expect("memory_outside_arena", b, RI_ERR_PARSE, "'conv_out'", "outside the 4096-byte arena");

  /* node record: name, op name, input count, inputs ... */
  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "Conv") + 4, 77, 4);
  reseal(b.d, b.size, 1);
  expect("node_input_out_of_range", b, RI_ERR_PARSE, "node 0 'conv0'",
         "input 0 refers to value 77, but the graph has 14 values");

  b = copy_good();
  memcpy(b.d + after_str(b.d, "GRPH", "Conv") - 4, "Cxnv", 4);
  reseal(b.d, b.size, 1);
  expect("unknown_op", b, RI_ERR_UNSUPPORTED, "'conv0'", "unknown op 'Cxnv'");

  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "Conv") + 4 + 3 * 4 + 4, 0, 4); /* conv0 writes the graph input */
  reseal(b.d, b.size, 1);
  expect("node_writes_input", b, RI_ERR_PARSE, "invalid graph", "'conv0' writes 'input'");

  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "w_attr") + 4, 1000, 4);
  reseal(b.d, b.size, 1);
  expect("tensor_attr_out_of_range", b, RI_ERR_PARSE, "'mul0'",
         "tensor attribute 'w_attr' refers to value 1000");

  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "w_attr"), 5, 4);
  reseal(b.d, b.size, 1);
  expect("attr_type_unknown", b, RI_ERR_PARSE, "'mul0'", "attribute 'w_attr' has unknown type 5");

  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "conv_w") - 10, 0xFFFFFFF0u, 4);
  reseal(b.d, b.size, 1);
  expect("string_length_oversized", b, RI_ERR_LIMIT, "value 1", "length 4294967280 exceeds the limit 4096");

  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "conv_w") - 10, 4000, 4);
  reseal(b.d, b.size, 1);
  expect("string_past_section_end", b, RI_ERR_PARSE, "value 1", "needs 4000 bytes");

  b = copy_good();
  b.d[after_str(b.d, "GRPH", "conv_w") - 2] = 0;
  reseal(b.d, b.size, 1);
  expect("string_with_nul", b, RI_ERR_PARSE, "value 1", "contains a NUL byte at position 4");

  b = copy_good();
  st_le(b.d + after_str(b.d, "GRPH", "conv_w") + V_KIND + 1, 7, 1); /* is_output */
  reseal(b.d, b.size, 1);
  expect("bool_not_0_or_1", b, RI_ERR_PARSE, "'conv_w'", "is_output is 7");

  /* META: max_batch i32 ... ; metadata count follows the library version string */
  b = copy_good();
  st_le(b.d + after_str(b.d, "META", ri_version()), 0xFFFFFFFFu, 4);
  reseal(b.d, b.size, 1);
  expect("meta_count_absurd", b, RI_ERR_LIMIT, "META section",
         "metadata count 4294967295 exceeds the limit 4096");

  b = copy_good();
  st_le(b.d + ld(entry(b.d, "META") + 8, 8), 0, 4); /* META starts with max_batch */
  reseal(b.d, b.size, 1);
  expect("max_batch_0", b, RI_ERR_PARSE, "max_batch 0 is outside 1..65536", NULL);

  /* corruption without resealing */
  b = copy_good();
  {
    unsigned char *e = entry(b.d, "WGHT");
    b.d[ld(e + 8, 8) + ld(e + 16, 8) / 2] ^= 0x01;
  }
  expect("weights_flipped_bit", b, RI_ERR_CHECKSUM, "is corrupt: checksum mismatch (stored 0x",
         ", computed 0x");

  b = copy_good();
  {
    unsigned char *e = entry(b.d, "WGHT");
    b.d[ld(e + 8, 8) + 3] ^= 0x80;
  }
  reseal(b.d, b.size, 0);
  expect("weights_section_crc", b, RI_ERR_CHECKSUM, "section WGHT checksum mismatch", NULL);

  b = copy_good();
  memcpy(b.d + b.size - 4, "XXXX", 4);
  expect("end_marker_missing", b, RI_ERR_PARSE, "end marker", NULL);
}

/* Seeded random mutations (1 to 4 bytes overwritten, then resealed so that they pass the checksums): any
 * status is fine, but no crash, no leak, and the output is cleared on failure. */
static void random_mutations(int iterations) {
  uint64_t rng = 0x9E3779B97F4A7C15ull;
  int accepted = 0;
  for (int it = 0; it < iterations; it++) {
    buf b = copy_good();
    int edits = 1 + (int)(rng % 4);
    for (int k = 0; k < edits; k++) {
      rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
      size_t pos = RI__RIE_HEADER_SIZE + (size_t)(rng % (b.size - RI__RIE_HEADER_SIZE - 8));
      b.d[pos] = (unsigned char)(rng >> 32);
    }
    reseal(b.d, b.size, 1);
    long live = ri__alloc_live();
    ri__rie_content out;
    ri__err err = {0};
    ri_status st = ri__rie_read(b.d, b.size, &out, &err);
    if (st == RI_OK) {
      accepted++;
      ri__rie_content_free(&out);
    } else {
      CHECK_MSG(out.graph == NULL && err.msg[0], "mutation %d: no message or output kept", it);
    }
    CHECK_MSG(ri__alloc_live() == live, "mutation %d leaked", it);
    free(b.d);
  }
  printf("random mutations: %d of %d accepted (changed data or padding)\n", accepted, iterations);
}

/* Every committed corpus file must fail cleanly. */
static void committed_corpus(void) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/data/bad_rie", RI_SOURCE_DIR);
  DIR *dd = opendir(dir);
  if (!dd) {
    printf("no committed corpus at %s\n", dir);
    return;
  }
  int n = 0;
  for (struct dirent *e; (e = readdir(dd));) {
    size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".rie") != 0) continue;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    long live = ri__alloc_live();
    ri__rie_content out;
    ri__err err = {0};
    ri_status st = ri__rie_read_file(path, &out, &err);
    CHECK_MSG(st != RI_OK, "%s: accepted", e->d_name);
    if (st == RI_OK) ri__rie_content_free(&out);
    if (st != RI_OK)
      CHECK_MSG(strstr(err.msg, path) != NULL, "%s: message does not name the file: %s", path, err.msg);
    CHECK(ri__alloc_live() == live);
    n++;
  }
  closedir(dd);
  printf("committed corpus: %d files\n", n);
  CHECK(n >= 12);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0) g_corpus_dir = argv[2];
  CHECK(sample_bytes(&g_good, &g_good_size));
  if (!g_good) return test_done("test_rie_bad");
  /* the unmodified file is accepted, so every failure below comes from its corruption */
  buf b = copy_good();
  expect("valid", b, RI_OK, NULL, NULL);
  corpus();
  if (!g_corpus_dir) {
    committed_corpus();
    random_mutations(20000);
  }
  ri__free(g_good);
  return test_done("test_rie_bad");
}
