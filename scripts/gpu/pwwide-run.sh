#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the wide form of
# the fp16 pointwise kernel (k_pwconv_wide.cu: 160 < N <= 1280, every variant of ri__cu_pwconv_v there)
# checked and measured, about 170 s after the build.
#   build.log     device-run.sh's build and model generation (build_and_models)
#   test.log      tests/gpu/test_cuda_conv's pointwise cases (RI_TEST_CONV=pw: every form bit for bit against
#                 the tiled kernel, the wide cases and their signed-zero cases included), then the wide cases
#                 alone (RI_TEST_CONV=pwwide) under compute-sanitizer memcheck; with PWW_STEPS containing ops:
#                 test_cuda_ops and test_cuda_batch_invariance fp16 on ssd_mobilenet_v2 with the pointwise
#                 kernel forced wherever it applies (RI_CUDA_PWCONV=force)
#   ab.log, ab.jsonl  tests/gpu/bench_pwconv --set wide at batch 256 (the middle blocks' expansions: the tiled
#                 kernel, then each form with its plan and "bit-identical" or FAIL), then scripts/gpu/ab-bench.sh
#                 fp16, AB_SETTINGS='old=RI_CUDA_PW_MAXN:160 new=' (old: the pointwise kernel capped at its
#                 former N <= 160), batches 1,64,256, AB_ROUNDS rounds (default 1), per-node profile
#   summary.txt   step lines, test verdicts, bench lines, A/B result lines and the batch-256 profile lines of
#                 the expansion nodes of blocks 6 .. 16 (expanded_conv_6 .. 16/expand)
# Environment: PWW_STEPS (default build,conv,memcheck,micro,ab; add ops for the forced-engine tests), OUT,
# ab-bench.sh's AB_* variables, the step limits T_CONVTEST, T_MEMCHECK, T_TEST, T_INVTEST, T_MICRO, T_AB.
# Expected: build ~120 s, then conv ~20, memcheck ~30, micro ~40, A/B ~70 (one round).
# The device call (a tool `run` with carry [".deps"], timeout_s 420): bash scripts/gpu/pwwide-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
PWW_STEPS=${PWW_STEPS:-build,conv,memcheck,micro,ab}
pww_has() { case ",$PWW_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
pww_has build && build_and_models
if pww_has conv; then
  step convtest "${T_CONVTEST:-90}" "$OUT/test.log" env RI_TEST_CONV=pw "$BUILD/test_cuda_conv"
fi
if pww_has memcheck; then
  if [ -n "$SANITIZER" ]; then
    step memcheck "${T_MEMCHECK:-90}" "$OUT/test.log" env RI_TEST_CONV=pwwide "$SANITIZER" --tool memcheck \
      --error-exitcode 3 "$BUILD/test_cuda_conv"
    grep -E 'ERROR SUMMARY' "$OUT/test.log" | sed 's/^/memcheck: /' >>"$SUMMARY"
  else
    echo "memcheck   SKIPPED (no compute-sanitizer)" | tee -a "$SUMMARY"
  fi
fi
if pww_has ops; then
  step ops-pwforce "${T_TEST:-60}" "$OUT/test.log" env RI_CUDA_PWCONV=force "$BUILD/test_cuda_ops" "$MODELS" \
    ssd_mobilenet_v2
  step inv-pwforce "${T_INVTEST:-40}" "$OUT/test.log" env RI_CUDA_PWCONV=force RI_TEST_PREC=fp16 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS" ssd_mobilenet_v2
fi
test_verdicts
if pww_has micro; then
  step micro "${T_MICRO:-120}" "$OUT/ab.log" "$BUILD/bench_pwconv" --batch 256 --reps 10 --set wide
  grep -E '^(expanded[^ ]* +(memset|d2d|tiled|form)|FAIL|bench_pwconv)' "$OUT/ab.log" >>"$SUMMARY"
fi
if pww_has ab; then
  step ab "${T_AB:-200}" "$OUT/ab.log" env AB_SETTINGS="${AB_SETTINGS:-old=RI_CUDA_PW_MAXN:160 new=}" \
    AB_PREC=fp16 AB_BATCHES="${AB_BATCHES:-1,64,256}" AB_ROUNDS="${AB_ROUNDS:-1}" AB_PROFILE="${AB_PROFILE:-1}" \
    OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" bash "$ROOT/scripts/gpu/ab-bench.sh"
  # the expansion nodes of blocks 6 .. 16 in the batch-256 profiles (old, new per round)
  ab_profile_lines 'expanded_conv_([6-9]|1[0-6])/expand'
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
