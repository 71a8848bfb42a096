/* Engine file round trip: write the sample content to memory and to a file, read it back, compare every
 * field; layout properties (magic, alignment, checksum); writer refusals; compatibility checks; CRC-32C. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/crc.h"
#include "rie_sample.h"
#include "test.h"

static int str_eq(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

static uint64_t ld(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static void compare_attr(const ri__node *na, const ri__attr *a, const ri__attr *b) {
  CHECK_MSG(str_eq(a->name, b->name), "node %s attr name", na->name);
  CHECK_MSG(a->type == b->type, "node %s attr %s type %d vs %d", na->name, a->name, a->type, b->type);
  switch (a->type) {
  case RI__ATTR_FLOAT: CHECK(memcmp(&a->f, &b->f, sizeof(float)) == 0); break;
  case RI__ATTR_INT: CHECK(a->i == b->i); break;
  case RI__ATTR_STRING: CHECK(str_eq(a->s, b->s)); break;
  case RI__ATTR_TENSOR: CHECK(a->value == b->value); break;
  case RI__ATTR_FLOATS:
    CHECK(a->n == b->n);
    if (a->n == b->n && a->n) CHECK(memcmp(a->floats, b->floats, (size_t)a->n * sizeof(float)) == 0);
    break;
  case RI__ATTR_INTS:
    CHECK(a->n == b->n);
    if (a->n == b->n && a->n) CHECK(memcmp(a->ints, b->ints, (size_t)a->n * sizeof(int64_t)) == 0);
    break;
  case RI__ATTR_STRINGS:
    CHECK(a->n == b->n);
    for (int k = 0; a->n == b->n && k < a->n; k++)
      CHECK(str_eq(a->strings[k], b->strings[k]));
    break;
  default: CHECK_MSG(0, "unexpected attribute type %d", a->type);
  }
}

static void compare_content(const ri__rie_content *a, const ri__rie_content *b) {
  CHECK(a->max_batch == b->max_batch);
  CHECK(a->precision == b->precision);
  CHECK(a->threads == b->threads);
  CHECK(a->arena_size == b->arena_size);
  CHECK(str_eq(a->device, b->device));
  CHECK(str_eq(a->fingerprint, b->fingerprint));
  CHECK(str_eq(a->library_version, b->library_version));
  CHECK(a->n_meta == b->n_meta);
  for (int i = 0; i < a->n_meta && i < b->n_meta; i++) {
    CHECK(str_eq(a->meta[i].key, b->meta[i].key));
    CHECK(str_eq(a->meta[i].value, b->meta[i].value));
  }
  const ri__graph *ga = a->graph, *gb = b->graph;
  CHECK(gb != NULL);
  if (!gb) return;
  CHECK(str_eq(ga->name, gb->name));
  CHECK(ga->opset == gb->opset);
  CHECK(ga->batch == gb->batch);
  CHECK(ga->n_values == gb->n_values);
  for (int i = 0; i < ga->n_values && i < gb->n_values; i++) {
    const ri__value *x = &ga->values[i], *y = &gb->values[i];
    CHECK_MSG(str_eq(x->name, y->name), "value %d name", i);
    CHECK_MSG(x->dtype == y->dtype, "value %d dtype", i);
    CHECK_MSG(ri__shape_equal(&x->shape, &y->shape), "value %d shape", i);
    CHECK_MSG(x->kind == y->kind, "value %d kind", i);
    CHECK_MSG(x->producer == y->producer, "value %d producer %d vs %d", i, x->producer, y->producer);
    CHECK_MSG(x->is_output == y->is_output, "value %d is_output", i);
    CHECK_MSG(x->batch_axis == y->batch_axis, "value %d batch_axis", i);
    CHECK_MSG(x->batch_dependent == y->batch_dependent, "value %d batch_dependent", i);
    CHECK_MSG(x->host == y->host, "value %d host", i);
    CHECK_MSG(x->mem_offset == y->mem_offset && x->mem_size == y->mem_size, "value %d memory plan", i);
    CHECK_MSG(x->nbytes == y->nbytes, "value %d nbytes %zu vs %zu", i, x->nbytes, y->nbytes);
    if (x->kind == RI__VAL_CONST) {
      CHECK_MSG(y->data != NULL, "constant %d has no data after reading", i);
      if (y->data && x->nbytes == y->nbytes && x->nbytes)
        CHECK_MSG(memcmp(x->data, y->data, x->nbytes) == 0, "constant %d data differs", i);
    } else {
      CHECK_MSG(y->data == NULL, "non-constant %d has data", i);
    }
  }
  CHECK(ga->n_nodes == gb->n_nodes);
  for (int i = 0; i < ga->n_nodes && i < gb->n_nodes; i++) {
    const ri__node *x = &ga->nodes[i], *y = &gb->nodes[i];
    CHECK_MSG(str_eq(x->name, y->name), "node %d name", i);
    CHECK_MSG(x->op == y->op, "node %s op", x->name);
    CHECK(x->n_inputs == y->n_inputs);
    for (int k = 0; k < x->n_inputs && x->n_inputs == y->n_inputs; k++)
      CHECK(x->inputs[k] == y->inputs[k]);
    CHECK(x->n_outputs == y->n_outputs);
    for (int k = 0; k < x->n_outputs && x->n_outputs == y->n_outputs; k++)
      CHECK(x->outputs[k] == y->outputs[k]);
    CHECK(x->n_attrs == y->n_attrs);
    for (int k = 0; k < x->n_attrs && x->n_attrs == y->n_attrs; k++)
      compare_attr(x, &x->attrs[k], &y->attrs[k]);
    CHECK(x->act == y->act);
    CHECK(memcmp(&x->act_a, &y->act_a, sizeof(float)) == 0 &&
          memcmp(&x->act_b, &y->act_b, sizeof(float)) == 0);
    CHECK(x->host == y->host);
    CHECK(x->tactic == y->tactic);
    CHECK(y->params == NULL && y->dead == 0);
  }
  CHECK(ga->n_inputs == gb->n_inputs && ga->n_outputs == gb->n_outputs);
  for (int i = 0; i < ga->n_inputs && ga->n_inputs == gb->n_inputs; i++)
    CHECK(ga->inputs[i] == gb->inputs[i]);
  for (int i = 0; i < ga->n_outputs && ga->n_outputs == gb->n_outputs; i++)
    CHECK(ga->outputs[i] == gb->outputs[i]);
}

/* Checks the container layout the header documents, independently of the reader. */
static void check_layout(const unsigned char *d, size_t size, const ri__graph *g) {
  CHECK(size >= RI__RIE_HEADER_SIZE + RI__RIE_TRAILER_SIZE);
  CHECK(memcmp(d, "RIENGINE", 8) == 0);
  CHECK(ld(d + 8, 4) == RI__RIE_FORMAT_VERSION);
  CHECK(ld(d + 12, 4) == 64);
  CHECK(ld(d + 24, 8) == size);
  CHECK(memcmp(d + size - 4, "REND", 4) == 0);
  CHECK(ld(d + size - 8, 4) == ri__crc32c(0, d, size - 8));
  uint64_t nsec = ld(d + 20, 4), table = ld(d + 32, 8);
  CHECK(nsec == 3);
  CHECK(table + nsec * 24 + 8 == size);
  uint64_t woff = 0, wsize = 0;
  for (uint64_t i = 0; i < nsec; i++) {
    const unsigned char *e = d + table + 24 * i;
    uint64_t off = ld(e + 8, 8), sz = ld(e + 16, 8);
    CHECK(off + sz <= table);
    CHECK(ld(e + 4, 4) == ri__crc32c(0, d + off, sz));
    CHECK(off % 64 == 0);
    if (memcmp(e, "WGHT", 4) == 0) woff = off, wsize = sz;
  }
  CHECK(woff != 0);
  /* every constant's bytes appear at a 64-aligned offset of WGHT, in value order */
  size_t expect = 0;
  for (int i = 0; i < g->n_values; i++) {
    const ri__value *v = &g->values[i];
    if (v->kind != RI__VAL_CONST) continue;
    expect = (expect + 63) & ~(size_t)63;
    CHECK_MSG(expect + v->nbytes <= wsize, "constant %d beyond WGHT", i);
    if (expect + v->nbytes <= wsize && v->nbytes)
      CHECK_MSG(memcmp(d + woff + expect, v->data, v->nbytes) == 0, "constant %d not at offset %zu", i,
                expect);
    expect += v->nbytes;
  }
}

static void test_crc(void) {
  CHECK(ri__crc32c(0, "123456789", 9) == 0xE3069283u);
  CHECK(ri__crc32c_portable(0, "123456789", 9) == 0xE3069283u);
  CHECK(ri__crc32c(0, "", 0) == 0);
  unsigned char buf[1000];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (unsigned char)(i * 131u + 7u);
  for (size_t off = 0; off < 9; off++)
    for (size_t n = 0; n + off <= sizeof buf; n += 37) {
      uint32_t a = ri__crc32c(0, buf + off, n), b = ri__crc32c_portable(0, buf + off, n);
      CHECK_MSG(a == b, "crc paths differ at offset %zu length %zu", off, n);
      size_t half = n / 3;
      CHECK(ri__crc32c(ri__crc32c(0, buf + off, half), buf + off + half, n - half) == a);
    }
  uint32_t before = ri__crc32c(0, buf, sizeof buf);
  buf[500] ^= 0x10;
  CHECK(ri__crc32c(0, buf, sizeof buf) != before);
}

static void test_memory_roundtrip(void) {
  ri__rie_content c;
  CHECK(sample_content(&c));
  if (!c.graph) return;
  ri__err err = {0};
  void *bytes = NULL;
  size_t size = 0;
  ri_status st = ri__rie_write(&c, &bytes, &size, &err);
  CHECK_MSG(st == RI_OK, "%s", err.msg);
  if (st == RI_OK) {
    check_layout(bytes, size, c.graph);
    ri__rie_content r;
    st = ri__rie_read(bytes, size, &r, &err);
    CHECK_MSG(st == RI_OK, "%s", err.msg);
    if (st == RI_OK) {
      compare_content(&c, &r);
      /* a read engine re-encodes to the same bytes */
      void *again = NULL;
      size_t again_size = 0;
      CHECK(ri__rie_write(&r, &again, &again_size, &err) == RI_OK);
      CHECK(again_size == size && again && memcmp(again, bytes, size) == 0);
      ri__free(again);
      ri__rie_content_free(&r);
      CHECK(r.graph == NULL && r.meta == NULL);
    }
    ri__free(bytes);
  }
  ri__graph_destroy(c.graph);
}

static int count_temp_files(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  if (!d) return -1;
  for (struct dirent *e; (e = readdir(d));)
    if (strstr(e->d_name, ".tmp-")) n++;
  closedir(d);
  return n;
}

static void test_file_roundtrip(void) {
  char dir[] = "/tmp/ri_rie_rt_XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[256];
  snprintf(path, sizeof path, "%s/model.rie", dir);
  ri__rie_content c;
  CHECK(sample_content(&c));
  if (!c.graph) return;
  ri__err err = {0};
  /* an existing file is replaced */
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f) {
    fputs("old contents", f);
    fclose(f);
  }
  ri_status st = ri__rie_write_file(&c, path, &err);
  CHECK_MSG(st == RI_OK, "%s", err.msg);
  CHECK(count_temp_files(dir) == 0);
  ri__rie_content r;
  st = ri__rie_read_file(path, &r, &err);
  CHECK_MSG(st == RI_OK, "%s", err.msg);
  if (st == RI_OK) {
    compare_content(&c, &r);
    ri__rie_content_free(&r);
  }
  /* the file and the memory encoding are the same bytes */
  void *mem = NULL;
  size_t msize = 0;
  CHECK(ri__rie_write(&c, &mem, &msize, &err) == RI_OK);
  f = fopen(path, "rb");
  if (f && mem) {
    unsigned char *fb = malloc(msize + 1);
    size_t got = fb ? fread(fb, 1, msize + 1, f) : 0;
    CHECK(got == msize && memcmp(fb, mem, msize) == 0);
    free(fb);
  }
  if (f) fclose(f);
  ri__free(mem);

  /* errors name the path */
  char missing[300];
  snprintf(missing, sizeof missing, "%s/nope/model.rie", dir);
  st = ri__rie_write_file(&c, missing, &err);
  CHECK(st == RI_ERR_IO && strstr(err.msg, missing));
  st = ri__rie_read_file(missing, &r, &err);
  CHECK(st == RI_ERR_NOT_FOUND && strstr(err.msg, missing));
  CHECK(r.graph == NULL);
  st = ri__rie_read_file(dir, &r, &err);
  CHECK(st != RI_OK && strstr(err.msg, dir));
  unlink(path);
  rmdir(dir);
  ri__graph_destroy(c.graph);
}

static void test_writer_refuses(void) {
  ri__rie_content c;
  CHECK(sample_content(&c));
  if (!c.graph) return;
  ri__err err = {0};
  void *out = (void *)&err;
  size_t size = 12345;
  long live = ri__alloc_live();

  c.graph->nodes[1].dead = 1;
  CHECK(ri__rie_write(&c, &out, &size, &err) == RI_ERR_INVALID_ARG && strstr(err.msg, "reshape0"));
  CHECK(out == (void *)&err && size == 12345);
  c.graph->nodes[1].dead = 0;

  c.graph->values[SAMPLE_V_CONV_B].nbytes -= 4;
  CHECK(ri__rie_write(&c, &out, &size, &err) == RI_ERR_INVALID_ARG && strstr(err.msg, "conv_b"));
  c.graph->values[SAMPLE_V_CONV_B].nbytes += 4;

  c.graph->values[SAMPLE_V_CONV_OUT].mem_size = SAMPLE_ARENA + 1;
  CHECK(ri__rie_write(&c, &out, &size, &err) == RI_ERR_INVALID_ARG && strstr(err.msg, "arena"));
  c.graph->values[SAMPLE_V_CONV_OUT].mem_size = 2048;

  c.fingerprint = NULL;
  CHECK(ri__rie_write(&c, &out, &size, &err) == RI_ERR_INVALID_ARG && strstr(err.msg, "fingerprint"));
  c.fingerprint = (char *)ri__rie_host_fingerprint();

  ri__kv dup[2] = {{"k", "1"}, {"k", "2"}};
  c.meta = dup;
  c.n_meta = 2;
  CHECK(ri__rie_write(&c, &out, &size, &err) == RI_ERR_INVALID_ARG && strstr(err.msg, "'k'"));
  c.meta = g_sample_meta;
  c.n_meta = 3;

  c.max_batch = 0;
  CHECK(ri__rie_write(&c, &out, &size, &err) == RI_ERR_INVALID_ARG && strstr(err.msg, "max_batch"));
  c.max_batch = 8;

  CHECK(out == (void *)&err && size == 12345);
  CHECK(ri__alloc_live() == live);
  CHECK(ri__rie_write(&c, &out, &size, &err) == RI_OK);
  if (out != (void *)&err) ri__free(out);
  ri__graph_destroy(c.graph);
}

static void test_compat(void) {
  const char *host = ri__rie_host_fingerprint();
  CHECK(host && strncmp(host, "cpu:", 4) == 0);
  CHECK(host == ri__rie_host_fingerprint()); /* stable static string */
  printf("host fingerprint: %s\n", host);
  ri__rie_content c;
  memset(&c, 0, sizeof c);
  c.device = "cpu";
  c.fingerprint = "cpu:x86_64:sse4_1,avx2,fma,avx512f,made-up";
  c.library_version = (char *)ri_version();
  ri__err err = {0};
  CHECK(ri__rie_check_compat(&c, c.fingerprint, &err) == RI_OK);
  ri_status st = ri__rie_check_compat(&c, host, &err);
  CHECK(st == RI_ERR_STALE);
  CHECK_MSG(strstr(err.msg, c.fingerprint) && strstr(err.msg, host), "message: %s", err.msg);
  c.library_version = "0.0.0-other";
  st = ri__rie_check_compat(&c, c.fingerprint, &err);
  CHECK(st == RI_ERR_STALE);
  CHECK_MSG(strstr(err.msg, "0.0.0-other") && strstr(err.msg, ri_version()), "message: %s", err.msg);
  CHECK(ri__rie_check_compat(NULL, host, &err) == RI_ERR_INVALID_ARG);
}

int main(void) {
  long live = ri__alloc_live();
  test_crc();
  test_memory_roundtrip();
  test_file_roundtrip();
  test_writer_refuses();
  test_compat();
  CHECK_MSG(ri__alloc_live() == live, "%ld allocations leaked", ri__alloc_live() - live);
  return test_done("test_rie_roundtrip");
}
