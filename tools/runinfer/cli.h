/* runinfer CLI: shared helpers of the subcommands. */
#ifndef RI_TOOLS_CLI_H
#define RI_TOOLS_CLI_H

#include "runinfer/runinfer.h"

int cmd_build(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_infer(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_run(int argc, char **argv);

/* Prints "runinfer: <what>: <status text>: <detail>" to stderr and returns exit code 1. */
int cli_fail(const char *what, ri_status s, const char *detail);
/* Parses a decimal int within [lo, hi]; returns 0 on success. */
int cli_int(const char *s, int lo, int hi, int *out);
/* Loads an engine file; with rebuild_onnx set, an engine that is stale (other device or library version)
 * or unreadable as stale is rebuilt from that ONNX model and saved over the engine path. threads 0 = keep. */
int cli_load_engine(const char *path, const char *rebuild_onnx, int threads, ri_engine_t **out);
/* The same onto `device` (NULL: the engine's own; see ri_runtime_set_device). A stale engine rebuilt from
 * rebuild_onnx is built for that device with max batch rebuild_max_batch (0: the build default). */
int cli_load_engine_on(const char *path, const char *rebuild_onnx, int threads, const char *device,
                       int rebuild_max_batch, ri_engine_t **out);

#endif
