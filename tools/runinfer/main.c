/* runinfer: command-line front end of the library. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_fail(const char *what, ri_status s, const char *detail) {
  fprintf(stderr, "runinfer: %s: %s%s%s\n", what, ri_status_str(s), detail && *detail ? ": " : "",
          detail ? detail : "");
  return 1;
}

int cli_int(const char *s, int lo, int hi, int *out) {
  if (!s || !*s) return 1;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return 1;
  *out = (int)v;
  return 0;
}

int cli_load_engine_on(const char *path, const char *rebuild_onnx, int threads, const char *device,
                       int rebuild_max_batch, ri_engine_t **out) {
  ri_runtime_t *rt = NULL;
  if (ri_runtime_create(&rt) != RI_OK) return cli_fail("load", RI_ERR_NO_MEMORY, path);
  ri_status s = ri_runtime_set_threads(rt, threads);
  if (s == RI_OK && device) s = ri_runtime_set_device(rt, device);
  if (s == RI_OK) s = ri_runtime_load(rt, path, out);
  if (s == RI_ERR_STALE && rebuild_onnx) {
    fprintf(stderr, "runinfer: %s\nruninfer: rebuilding from '%s'\n", ri_runtime_last_error(rt),
            rebuild_onnx);
    ri_runtime_destroy(rt);
    /* max batch and device are not trusted from a stale file: the ones given to this command apply, else
     * the defaults of `runinfer build` */
    char mb[16];
    snprintf(mb, sizeof mb, "%d", rebuild_max_batch);
    char *argv[10] = {"build", "--onnx", (char *)rebuild_onnx, "--save", (char *)path};
    int argc = 5;
    if (device) {
      argv[argc++] = "--device";
      argv[argc++] = (char *)device;
    }
    if (rebuild_max_batch > 0) {
      argv[argc++] = "--max-batch";
      argv[argc++] = mb;
    }
    argv[argc] = NULL;
    if (cmd_build(argc, argv) != 0) return 1;
    return cli_load_engine_on(path, NULL, threads, device, 0, out);
  }
  if (s != RI_OK) {
    int rc = cli_fail("load", s, ri_runtime_last_error(rt));
    ri_runtime_destroy(rt);
    return rc;
  }
  ri_runtime_destroy(rt);
  return 0;
}

int cli_load_engine(const char *path, const char *rebuild_onnx, int threads, ri_engine_t **out) {
  return cli_load_engine_on(path, rebuild_onnx, threads, NULL, 0, out);
}

static void usage(FILE *f) {
  fprintf(f, "usage: runinfer <command> [options]\n"
             "commands:\n"
             "  build    --onnx M.onnx --save M.rie [--max-batch N] [--device cpu|cuda[:N]]\n"
             "           [--precision fp32|fp16|int8] [--threads N] [--meta KEY=VALUE]...\n"
             "           [--builder-level 0..5] [--timing-cache F] [--preprocess-on-device]\n"
             "           [--half-accumulation]\n"
             "  inspect  M.rie [--json] [--memory]\n"
             "  infer    --engine M.rie --in NAME=x.npy ... --out DIR [--threads N]\n"
             "           [--rebuild-if-stale --onnx M.onnx]\n"
             "  bench    --engine M.rie [--batch N] [--iterations K] [--warmup W] [--threads N] [--json F]\n"
             "           [--device cpu|cuda:N]\n"
             "  run      --engine M.rie (--input LIST | --glob PATTERN | --dir DIR | --stdin) --output F\n"
             "           [--format seed|jsonl|csv] [--dead-letter F] [--min-batch N] [--max-batch N]\n"
             "           [--max-wait-us U] [--decode-threads N] [--post-threads N] [--contexts N]\n"
             "           [--device D[,D...]|cuda:all]\n"
             "           [--threads N] [--ordered] "
             "[--metrics F.json]\n"
             "           [--prometheus F.prom] [--draw DIR] [--no-progress] [--fast-decode]\n"
             "           [--rebuild-if-stale --onnx M.onnx]\n"
             "           exit status: 0 all records written, 3 some records dead-lettered, 1 job failed\n"
             "  version\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "build") == 0) return cmd_build(argc - 1, argv + 1);
  if (strcmp(cmd, "inspect") == 0) return cmd_inspect(argc - 1, argv + 1);
  if (strcmp(cmd, "infer") == 0) return cmd_infer(argc - 1, argv + 1);
  if (strcmp(cmd, "bench") == 0) return cmd_bench(argc - 1, argv + 1);
  if (strcmp(cmd, "run") == 0) return cmd_run(argc - 1, argv + 1);
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
    printf("runinfer %s\n", ri_version());
    return 0;
  }
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "runinfer: unknown command '%s'\n", cmd);
  usage(stderr);
  return 2;
}
