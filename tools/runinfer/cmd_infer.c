/* runinfer infer: run an engine on .npy inputs and write one .npy per output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "npy.h"

#define MAX_IO 64

int cmd_infer(int argc, char **argv) {
  const char *engine_path = NULL, *out_dir = NULL, *onnx = NULL;
  const char *in_names[MAX_IO], *in_paths[MAX_IO];
  int n_in = 0, threads = 0, rebuild = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--engine") == 0 && v)
      engine_path = argv[++i];
    else if (strcmp(a, "--out") == 0 && v)
      out_dir = argv[++i];
    else if (strcmp(a, "--onnx") == 0 && v)
      onnx = argv[++i];
    else if (strcmp(a, "--rebuild-if-stale") == 0)
      rebuild = 1;
    else if (strcmp(a, "--threads") == 0 && v) {
      if (cli_int(argv[++i], 0, 1024, &threads)) {
        fprintf(stderr, "runinfer infer: --threads expects 0..1024\n");
        return 2;
      }
    } else if (strcmp(a, "--in") == 0 && v) {
      char *eq = strchr(argv[++i], '=');
      if (!eq || n_in >= MAX_IO) {
        fprintf(stderr, "runinfer infer: --in expects NAME=path.npy\n");
        return 2;
      }
      *eq = 0;
      in_names[n_in] = argv[i];
      in_paths[n_in++] = eq + 1;
    } else {
      fprintf(stderr, "runinfer infer: unknown or incomplete option '%s'\n", a);
      return 2;
    }
  }
  if (!engine_path || !out_dir) {
    fprintf(stderr, "runinfer infer: --engine and --out are required\n");
    return 2;
  }
  if (rebuild && !onnx) {
    fprintf(stderr, "runinfer infer: --rebuild-if-stale needs --onnx M.onnx\n");
    return 2;
  }
  ri_engine_t *e = NULL;
  if (cli_load_engine(engine_path, rebuild ? onnx : NULL, threads, &e)) return 1;
  int ni = ri_engine_num_inputs(e), no = ri_engine_num_outputs(e), rc = 1;
  npy_array arrs[MAX_IO];
  memset(arrs, 0, sizeof arrs);
  void *outs[MAX_IO] = {0};
  ri_context_t *ctx = NULL;
  char msg[1024];
  if (ni > MAX_IO || no > MAX_IO) {
    fprintf(stderr, "runinfer infer: engine has more than %d inputs or outputs\n", MAX_IO);
    goto done;
  }
  int batch = -1;
  const void *ins[MAX_IO];
  for (int i = 0; i < ni; i++) {
    ri_tensor_info t;
    if (ri_engine_input_info(e, i, &t) != RI_OK) goto done;
    int found = -1;
    for (int k = 0; k < n_in; k++)
      if (strcmp(in_names[k], t.name) == 0) found = k;
    if (found < 0) {
      fprintf(stderr, "runinfer infer: engine input '%s' was not given (--in %s=file.npy)\n", t.name, t.name);
      goto done;
    }
    if (npy_read(in_paths[found], &arrs[i], msg, sizeof msg)) {
      fprintf(stderr, "runinfer infer: %s\n", msg);
      goto done;
    }
    npy_array *a = &arrs[i];
    if (a->dtype != t.dtype || a->rank != t.rank) {
      fprintf(stderr, "runinfer infer: input '%s' from '%s' is %s rank %d; the engine expects %s rank %d\n",
              t.name, in_paths[found], ri_dtype_name(a->dtype), a->rank, ri_dtype_name(t.dtype), t.rank);
      goto done;
    }
    for (int k = 0; k < t.rank; k++) {
      if (t.dims[k] >= 0 && t.dims[k] != a->dims[k]) {
        fprintf(stderr, "runinfer infer: input '%s' axis %d is %lld; the engine expects %lld\n", t.name, k,
                (long long)a->dims[k], (long long)t.dims[k]);
        goto done;
      }
    }
    int b = t.rank > 0 && t.dims[0] < 0 ? (int)a->dims[0] : 1;
    if (batch >= 0 && b != batch) {
      fprintf(stderr, "runinfer infer: inputs disagree on the batch size (%d vs %d)\n", batch, b);
      goto done;
    }
    batch = b;
    ins[i] = a->data;
  }
  for (int k = 0; k < n_in; k++) {
    int known = 0;
    for (int i = 0; i < ni; i++) {
      ri_tensor_info t;
      if (ri_engine_input_info(e, i, &t) == RI_OK && strcmp(t.name, in_names[k]) == 0) known = 1;
    }
    if (!known) {
      fprintf(stderr, "runinfer infer: the engine has no input named '%s'\n", in_names[k]);
      goto done;
    }
  }
  if (batch < 1) batch = 1;
  ri_status s = ri_context_create(e, &ctx);
  if (s != RI_OK) {
    cli_fail("context", s, ri_engine_last_error(e));
    goto done;
  }
  ri_tensor_info oinfo[MAX_IO];
  for (int i = 0; i < no; i++) {
    s = ri_context_output_shape(ctx, batch, i, &oinfo[i]);
    if (s != RI_OK) {
      cli_fail("infer", s, ri_context_last_error(ctx));
      goto done;
    }
    size_t n = ri_dtype_size(oinfo[i].dtype);
    for (int k = 0; k < oinfo[i].rank; k++)
      n *= (size_t)oinfo[i].dims[k];
    outs[i] = malloc(n ? n : 1);
    if (!outs[i]) {
      cli_fail("infer", RI_ERR_NO_MEMORY, "output buffer");
      goto done;
    }
  }
  s = ri_context_run(ctx, batch, ins, outs);
  if (s != RI_OK) {
    cli_fail("infer", s, ri_context_last_error(ctx));
    goto done;
  }
  /* outputs whose length depends on the data (NonMaxSuppression) are written with the rows actually produced
   */
  for (int i = 0; i < no; i++) {
    s = ri_context_last_output_shape(ctx, i, &oinfo[i]);
    if (s != RI_OK) {
      cli_fail("infer", s, ri_context_last_error(ctx));
      goto done;
    }
  }
  mkdir(out_dir, 0777);
  for (int i = 0; i < no; i++) {
    char path[4096];
    /* output names may contain '/' or ':' (TF exports): keep the file name flat */
    char safe[1024];
    size_t k = 0;
    for (const char *p = oinfo[i].name; *p && k < sizeof safe - 1; p++)
      safe[k++] = (*p == '/' || *p == '\\') ? '_' : *p;
    safe[k] = 0;
    snprintf(path, sizeof path, "%s/%s.npy", out_dir, safe);
    if (npy_write(path, oinfo[i].dtype, oinfo[i].rank, oinfo[i].dims, outs[i], msg, sizeof msg)) {
      fprintf(stderr, "runinfer infer: %s\n", msg);
      goto done;
    }
  }
  rc = 0;
done:
  for (int i = 0; i < MAX_IO; i++) {
    npy_free(&arrs[i]);
    free(outs[i]);
  }
  ri_context_destroy(ctx);
  ri_engine_destroy(e);
  return rc;
}
