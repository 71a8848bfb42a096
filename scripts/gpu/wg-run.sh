#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the draft Hopper
# wgmma kernel for fp16 1x1 convolutions (src/backend/cuda/k_pwgemm_wg.cu) checked and measured in one run,
# within about 5 minutes (the build alone takes ~100 s).
#   WG_STEPS  the parts, comma-separated (default build,test,memcheck,bench):
#     build     device-run.sh's build and reference models (build.log)
#     test      tests/gpu/test_cuda_wggemm: the kernel against a CPU reference, poison outside the output
#               slice, images alone against the batch, tile shapes against each other (test.log)
#     memcheck  compute-sanitizer memcheck of test_cuda_wggemm (memcheck.log)
#     bench     bench/gemm_shapes.py on ssd_mobilenet_v2.onnx, then tests/gpu/bench_gemm_shapes at WG_BATCHES
#               (default 1,256): ours (k_convgemm.cu, k_pwconv.cu), wg (this kernel) and cuBLASLt per 1x1
#               shape (gemm-shapes.csv, gemm-shapes.log, gemm-shapes.jsonl). When the test step failed, the
#               benchmark runs with --no-wg (a faulting kernel would end the whole run).
#   summary.txt  the step lines, the test's verdicts, memcheck's summary, the benchmark's FAIL count
# Environment: WG_STEPS, WG_BATCHES, WG_REPS (default 20), T_WGTEST (90 s), T_WGMEMCHECK (150 s), T_GEMM
# (240 s), OUT.
#
# The device call (a tool `run` with carry [".deps"], timeout_s 420), from a checkout that has this script:
#   export OUT; bash scripts/gpu/wg-run.sh
# or from a worktree shipped as a tarball in .deps (see the working rules), in a fresh directory:
#   export OUT; rm -rf /tmp/snap-wg; mkdir -p /tmp/snap-wg && tar -x -C /tmp/snap-wg -f .deps/wg.tar &&
#   ln -sfn $PWD/.deps /tmp/snap-wg/.deps && cd /tmp/snap-wg && bash scripts/gpu/wg-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
WG_STEPS=${WG_STEPS:-build,test,memcheck,bench}
wg_has() { case ",$WG_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
wg_has build && build_and_models

test_ok=1
if wg_has test; then
  step wgtest "${T_WGTEST:-90}" "$OUT/test.log" "$BUILD/test_cuda_wggemm" || test_ok=0
fi
if wg_has memcheck; then
  if [ -n "$SANITIZER" ]; then
    step wgmemcheck "${T_WGMEMCHECK:-150}" "$OUT/memcheck.log" "$SANITIZER" --tool memcheck --error-exitcode 3 \
      --leak-check full "$BUILD/test_cuda_wggemm"
  else
    echo "wgmemcheck SKIPPED (no compute-sanitizer)" | tee -a "$SUMMARY"
  fi
fi
test_verdicts

rc=0
if wg_has bench; then
  rm -f "$OUT/gemm-shapes.jsonl"
  no_wg=()
  [ $test_ok -eq 1 ] || no_wg=(--no-wg)
  step shapes 60 "$OUT/gemm-shapes.log" python3 "$ROOT/bench/gemm_shapes.py" "$MODELS/ssd_mobilenet_v2.onnx" \
    -o "$OUT/gemm-shapes.csv" || rc=1
  if [ $rc -eq 0 ]; then
    step gemm "${T_GEMM:-240}" "$OUT/gemm-shapes.log" "$BUILD/bench_gemm_shapes" "$OUT/gemm-shapes.csv" \
      --batches "${WG_BATCHES:-1,256}" --reps "${WG_REPS:-20}" --json "$OUT/gemm-shapes.jsonl" "${no_wg[@]}" || rc=1
  fi
  grep -E '^(# |[0-9]+ FAIL lines)' "$OUT/gemm-shapes.log" >>"$SUMMARY"
  grep -E '^FAIL' "$OUT/gemm-shapes.log" | head -20 >>"$SUMMARY"
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ] && exit $rc
exit 1
