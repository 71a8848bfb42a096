#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): our fp16 1x1
# convolution GEMM (k_convgemm.cu's tiles, k_pwconv.cu) against cuBLASLt on every 1x1 convolution shape of
# SSD MobileNet v2, in one run (tests/gpu/bench_gemm_shapes.c says what is timed and checked).
#   build.log          device-run.sh's build and model generation (build_and_models)
#   gemm-shapes.csv    bench/gemm_shapes.py on $MODELS/ssd_mobilenet_v2.onnx (node, h, w, cin, cout)
#   gemm-shapes.log    bench_gemm_shapes at GEMM_BATCHES: one line per (shape, batch), FAIL lines, the count
#   gemm-shapes.jsonl  the same as JSON lines (a device line first)
#   summary.txt        the step lines and the benchmark's FAIL count
# Environment: GEMM_STEPS (default build,bench; without build it reuses $BUILD and $MODELS of an earlier
# call on a warm machine), GEMM_BATCHES (default 1,256), GEMM_REPS (default 20), GEMM_MODEL (default
# $MODELS/ssd_mobilenet_v2.onnx), T_GEMM (default 240 s), OUT.
#
# The device call (a tool `run` with carry [".deps"], timeout_s 420; about 90 s of build, then well under a
# minute of benchmark), from a checkout that has this script (main after the merge):
#   export OUT; bash scripts/gpu/gemm-shapes-run.sh
# or from a worktree shipped as a tarball in .deps (see the working rules), in a fresh directory:
#   export OUT; rm -rf /tmp/snap-gemm; mkdir -p /tmp/snap-gemm && tar -x -C /tmp/snap-gemm -f .deps/gemm.tar &&
#   ln -sfn $PWD/.deps /tmp/snap-gemm/.deps && cd /tmp/snap-gemm && bash scripts/gpu/gemm-shapes-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
GEMM_STEPS=${GEMM_STEPS:-build,bench}
gemm_has() { case ",$GEMM_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
gemm_has build && build_and_models
rc=0
if gemm_has bench; then
  rm -f "$OUT/gemm-shapes.jsonl"
  step shapes 60 "$OUT/gemm-shapes.log" python3 "$ROOT/bench/gemm_shapes.py" \
    "${GEMM_MODEL:-$MODELS/ssd_mobilenet_v2.onnx}" -o "$OUT/gemm-shapes.csv" || rc=1
  if [ $rc -eq 0 ]; then
    step gemm "${T_GEMM:-240}" "$OUT/gemm-shapes.log" "$BUILD/bench_gemm_shapes" "$OUT/gemm-shapes.csv" \
      --batches "${GEMM_BATCHES:-1,256}" --reps "${GEMM_REPS:-20}" --json "$OUT/gemm-shapes.jsonl" || rc=1
  fi
  grep -E '^(# |[0-9]+ FAIL lines)' "$OUT/gemm-shapes.log" >>"$SUMMARY"
  grep -E '^FAIL' "$OUT/gemm-shapes.log" | head -20 >>"$SUMMARY"
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ] && exit $rc
exit 1
