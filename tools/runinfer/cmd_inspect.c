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

int cmd_inspect(int argc, char **argv) {
  const char *path = NULL;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = 1;
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
    printf("details (JSON): %s\n", text);
  }
  ri_engine_destroy(e);
  return 0;
}
