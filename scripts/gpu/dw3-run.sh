#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the depthwise
# shared-memory kernels with fewer instructions (k_dwconv_smem.cu: copy, activation and stores; variants 4..7
# of k_dwconv.cu) checked and measured against the previous one-tile kernels (RI_CUDA_DWS_OLD=1), about
# 130 s after the build (variants 6 and 7 share the changed code: test_cuda_conv checks them bit for bit).
#   build.log     device-run.sh's build and model generation (build_and_models)
#   test.log      tests/gpu/test_cuda_conv's depthwise cases (RI_TEST_CONV=dw: every variant against the
#                 reference and bit for bit against variant 0), compute-sanitizer memcheck of the same, then
#                 with variant 4, then 5 forced wherever it applies (RI_CUDA_DW_TACTICS=N): test_cuda_ops
#                 on ssd_mobilenet_v2 (against the CPU engine) and test_cuda_batch_invariance fp16 on it
#   ab.log, ab.jsonl  scripts/gpu/ab-bench.sh fp16, batches 64 and 256 (an engine of maximum batch 256), 2
#                 rounds, per-node profile: old = RI_CUDA_DWS_OLD=1 (the one-tile kernels as on main 0522395),
#                 new = the default; old4 / new4 the same with variant 4 forced wherever it applies
#   summary.txt   step lines, test verdicts, A/B result lines
# Environment: DW3_STEPS (default build,conv,memcheck,inv,ab), OUT, ab-bench.sh's AB_* variables, the step
# limits T_CONVTEST, T_MEMCHECK, T_TEST, T_INVTEST, T_AB. Expected: build ~110 s, then about 130 s (conv ~15,
# memcheck ~30, forced ops and invariance ~5 each, A/B ~50).
# The device call (a tool `run` with carry [".deps"], timeout_s 420): bash scripts/gpu/dw3-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
DW3_STEPS=${DW3_STEPS:-build,conv,memcheck,inv,ab}
dw3_has() { case ",$DW3_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
dw3_has build && build_and_models
dw3_has conv && step convtest "${T_CONVTEST:-60}" "$OUT/test.log" env RI_TEST_CONV=dw "$BUILD/test_cuda_conv"
if dw3_has memcheck; then
  if [ -n "$SANITIZER" ]; then
    step memcheck "${T_MEMCHECK:-90}" "$OUT/test.log" env RI_TEST_CONV=dw "$SANITIZER" --tool memcheck \
      --error-exitcode 3 "$BUILD/test_cuda_conv"
    grep -E 'ERROR SUMMARY' "$OUT/test.log" | sed 's/^/memcheck: /' >>"$SUMMARY"
  else
    echo "memcheck   SKIPPED (no compute-sanitizer)" | tee -a "$SUMMARY"
  fi
fi
if dw3_has inv; then
  for v in 4 5; do
    step "ops-v$v" "${T_TEST:-60}" "$OUT/test.log" env RI_CUDA_DW_TACTICS=$v "$BUILD/test_cuda_ops" "$MODELS" \
      ssd_mobilenet_v2
    step "inv-v$v" "${T_INVTEST:-40}" "$OUT/test.log" env RI_CUDA_DW_TACTICS=$v RI_TEST_PREC=fp16 \
      "$BUILD/test_cuda_batch_invariance" "$MODELS" ssd_mobilenet_v2
  done
fi
test_verdicts
if dw3_has ab; then
  step ab "${T_AB:-180}" "$OUT/ab.log" env \
    AB_SETTINGS="${AB_SETTINGS:-old=RI_CUDA_DWS_OLD:1 new= old4=RI_CUDA_DWS_OLD:1,RI_CUDA_DW_TACTICS:4 new4=RI_CUDA_DW_TACTICS:4}" \
    AB_PREC=fp16 AB_BATCHES="${AB_BATCHES:-64,256}" AB_ROUNDS="${AB_ROUNDS:-2}" AB_PROFILE="${AB_PROFILE:-1}" \
    OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" bash "$ROOT/scripts/gpu/ab-bench.sh"
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
