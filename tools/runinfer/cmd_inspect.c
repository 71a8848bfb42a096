/* runinfer inspect: describe an engine file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void print_info(const char *kind, const ri_tensor_info *t) {
  printf("  %s %-24s %-8s [", kind, t->name, ri_dtype_name(t->dtype));
  for (int k = 0; k < t->rank; k++) {
    if (t->dims[k] < 0)
      printf(k ? ",N" : "N");
    else
      printf(k ? ",%lld" : "%lld", (long long)t->dims[k]);
  }
  printf("]\n");
}

/* Copies the JSON string value that starts at p (after its opening quote) into buf, escapes as they are;
 * returns the position after its closing quote, or NULL. */
static const char *json_str(const char *p, char *buf, size_t cap) {
  size_t n = 0;
  for (; *p && *p != '"'; p++) {
    if (*p == '\\' && p[1]) {
      if (n + 1 < cap) buf[n++] = *p;
      p++;
    }
    if (n + 1 < cap) buf[n++] = *p;
  }
  buf[n] = 0;
  return *p == '"' ? p + 1 : NULL;
}

/* The metadata the pipelines act on, one line each (labels as their count): what the host does to an image
 * (preprocess), what the engine does to it first (preprocess_device), the post-processing (task, detect). */
static void print_metadata(const ri_engine_t *e) {
  static const char *const keys[] = {"preprocess", "preprocess_device", "task", "detect"};
  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
    const char *v = ri_engine_metadata(e, keys[k]);
    if (v) printf("  meta   %-24s %s\n", keys[k], v);
  }
  const char *labels = ri_engine_metadata(e, "labels");
  if (labels) {
    int n = *labels != 0;
    for (const char *p = labels; *p; p++)
      n += *p == '\n' && p[1] != 0;
    printf("  meta   %-24s %d labels\n", "labels", n);
  }
}

/* Layers whose implementation carries a tactic chosen at build (GPU engines built with a builder level above
 * 0): one line each with the tactic and its time. Other engines print nothing here. */
static void print_tactics(const char *json) {
  const char *p = strstr(json, "\"layers\":[");
  int header = 0;
  while (p && (p = strstr(p, "{\"name\":\"")) != NULL) {
    char name[256], op[64], impl[256];
    const char *q = json_str(p + 9, name, sizeof name);
    if (!q || strncmp(q, ",\"op\":\"", 7) != 0 || !(q = json_str(q + 7, op, sizeof op))) break;
    if (strncmp(q, ",\"impl\":\"", 9) != 0 || !(q = json_str(q + 9, impl, sizeof impl))) break;
    if ((strstr(impl, " us") && strstr(impl, " seg ")) || strstr(impl, " at max batch") ||
        strstr(impl, " variants ")) {
      if (!header)
        printf(
            "tactics chosen at build (own GEMM: time at batch 1; depthwise / stem kernel variants per batch "
            "bucket, cuBLASLt, wgmma and cuDNN: at the maximum batch):\n");
      header = 1;
      printf("  %-40s %-6s %s\n", name, op, impl);
    }
    p = q;
  }
}

/* --memory: creates one context (buffers for the engine's maximum batch) and prints the device memory
 * it and the engine hold against the planned weights + activations. Returns 0, or 1 on failure. */
static int print_memory(ri_engine_t *e, int json) {
  ri_context_t *c = NULL;
  ri_status s = ri_context_create(e, &c);
  if (s != RI_OK) return cli_fail("inspect --memory", s, ri_engine_last_error(e));
  ri_memory_usage m;
  s = ri_context_memory(c, &m);
  if (s != RI_OK) {
    int rc = cli_fail("inspect --memory", s, ri_context_last_error(c));
    ri_context_destroy(c);
    return rc;
  }
  const double mib = 1024.0 * 1024.0;
  double planned = (double)(m.weights + m.activations);
  double ratio = planned > 0 ? (double)m.total / planned : 0;
  if (json)
    printf("{\"max_batch\": %d, \"weights\": %lld, \"activations\": %lld, \"other\": %lld, \"total\": %lld, "
           "\"ratio_to_planned\": %.4f}\n",
           ri_engine_max_batch(e), (long long)m.weights, (long long)m.activations, (long long)m.other,
           (long long)m.total, ratio);
  else
    printf("device memory, one context at max batch %d: weights %.1f MiB + activations %.1f MiB + other %.1f "
           "MiB = %.1f MiB (%.3fx weights + planned activations)\n",
           ri_engine_max_batch(e), (double)m.weights / mib, (double)m.activations / mib,
           (double)m.other / mib, (double)m.total / mib, ratio);
  ri_context_destroy(c);
  return 0;
}

int cmd_inspect(int argc, char **argv) {
  const char *path = NULL;
  int json = 0, memory = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else if (strcmp(argv[i], "--memory") == 0)
      memory = 1;
    else if (argv[i][0] != '-' && !path)
      path = argv[i];
    else {
      fprintf(stderr, "runinfer inspect: unknown option '%s'\n", argv[i]);
      return 2;
    }
  }
  if (!path) {
    fprintf(stderr, "runinfer inspect: engine path required\n");
    return 2;
  }
  ri_engine_t *e = NULL;
  if (cli_load_engine(path, NULL, 0, &e)) return 1;
  const char *text = NULL;
  ri_status s = ri_engine_describe_json(e, &text);
  if (s != RI_OK) {
    int rc = cli_fail("inspect", s, ri_engine_last_error(e));
    ri_engine_destroy(e);
    return rc;
  }
  if (json) {
    printf("%s\n", text);
  } else {
    printf("engine %s: max batch %d, %d inputs, %d outputs\n", path, ri_engine_max_batch(e),
           ri_engine_num_inputs(e), ri_engine_num_outputs(e));
    for (int i = 0; i < ri_engine_num_inputs(e); i++) {
      ri_tensor_info t;
      if (ri_engine_input_info(e, i, &t) == RI_OK) print_info("input ", &t);
    }
    for (int i = 0; i < ri_engine_num_outputs(e); i++) {
      ri_tensor_info t;
      if (ri_engine_output_info(e, i, &t) == RI_OK) print_info("output", &t);
    }
    print_metadata(e);
    print_tactics(text);
    printf("details (JSON): %s\n", text);
  }
  int rc = memory ? print_memory(e, json) : 0;
  ri_engine_destroy(e);
  return rc;
}
