/* libFuzzer target: output writers' escaping of hostile keys (file names) and labels. Checks the contract:
 * a seed-format row is "<key>;<json>\n" with exactly one line, the key is either raw (no ';', '"', '\\',
 * control bytes) or a JSON string literal, and the JSON-escaped forms contain no raw control bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "pipeline/record.h"
#include "pipeline/sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ri__record r;
  memset(&r, 0, sizeof r);
  char *key = malloc(size + 1);
  if (!key) return 0;
  memcpy(key, data, size);
  key[size] = 0;
  r.key = key;
  r.key_len = strlen(key); /* keys never hold NUL bytes */
  ri_detection det = {.ymin = 1, .xmin = 2, .ymax = 3, .xmax = 4, .score = 0.5f, .class_id = 1};
  r.dets = &det;
  r.n_dets = 1;
  const char *labels[2] = {"background", key};
  for (int fmt = RI_OUTPUT_SEED; fmt <= RI_OUTPUT_CSV; fmt++) {
    ri__strbuf sb;
    ri__sb_init(&sb);
    ri__format_row(&sb, &r, (ri_output_format)fmt, labels, 2);
    if (!sb.oom && fmt != RI_OUTPUT_CSV) {
      /* one line, no raw control bytes */
      for (size_t i = 0; i + 1 < sb.len; i++)
        if ((unsigned char)sb.data[i] < 0x20) abort();
      if (sb.len == 0 || sb.data[sb.len - 1] != '\n') abort();
    }
    if (!sb.oom && fmt == RI_OUTPUT_SEED && sb.len && sb.data[0] != '"') {
      /* raw key: the first ';' ends it */
      const char *semi = memchr(sb.data, ';', sb.len);
      if (!semi || (size_t)(semi - sb.data) != r.key_len) abort();
    }
    ri__sb_free(&sb);
  }
  ri__strbuf dl;
  ri__sb_init(&dl);
  r.stage = "decode";
  r.error = key;
  ri__format_dead_letter(&dl, &r);
  for (size_t i = 0; !dl.oom && i + 1 < dl.len; i++)
    if ((unsigned char)dl.data[i] < 0x20) abort();
  ri__sb_free(&dl);
  free(key);
  return 0;
}
