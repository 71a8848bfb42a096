#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the second form of
# the fp16 pointwise kernel (k_pwconv_bulk.cu, variants 1 .. 4 of ri__cu_pwconv_v; RI_CUDA_PW2, default 1;
# 0 = the first form, k_pwconv.cu) checked and measured, about 150 s after the build.
#   build.log     device-run.sh's build and model generation (build_and_models)
#   test.log      tests/gpu/test_cuda_conv's pointwise cases alone (RI_TEST_CONV=pw: every form bit for bit
#                 against the tiled kernel, signed-zero data included), again with the zero step folded into
#                 the bias (RI_CUDA_PW2_ZFOLD=1, not the default), the first under compute-sanitizer
#                 memcheck; test_cuda_ops on ssd_mobilenet_v2 and test_cuda_batch_invariance fp16 on it, with
#                 the pointwise kernel forced wherever it applies (RI_CUDA_PWCONV=force) and as tuned
#   ab.log, ab.jsonl  tests/gpu/bench_pwconv at batch 256 (each form on the four early SSD 1x1 shapes against
#                 the device's memset / copy speed, with the plan each form chose; then forms 1 and 2 under
#                 every plan that fits, "plan" lines: which warps / stages / staging count is best), then
#                 scripts/gpu/ab-bench.sh fp16, AB_SETTINGS='old=RI_CUDA_PW2:0 new=', batches 1,64,256 (an
#                 engine of maximum batch 256), 2 rounds, per-node profile
#   summary.txt   step lines, test verdicts, A/B result lines
# Environment: PW2_STEPS (default build,conv,memcheck,ops,micro,ab), OUT, ab-bench.sh's AB_* variables, the
# step limits T_CONVTEST, T_MEMCHECK, T_TEST, T_INVTEST, T_MICRO, T_AB. Expected: build ~110 s, then about
# 170 s (conv ~2 x 15, memcheck ~30, ops + invariance ~20, micro ~30, A/B ~60).
# The device call (a tool `run` with carry [".deps"], timeout_s 420): bash scripts/gpu/pw2-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
PW2_STEPS=${PW2_STEPS:-build,conv,memcheck,ops,micro,ab}
pw2_has() { case ",$PW2_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
pw2_has build && build_and_models
if pw2_has conv; then
  step convtest "${T_CONVTEST:-60}" "$OUT/test.log" env RI_TEST_CONV=pw "$BUILD/test_cuda_conv"
  # the zero step folded into the bias (off by default): do the signed-zero cases keep the tiled kernel's bits?
  step convtest-zfold "${T_CONVTEST:-60}" "$OUT/test.log" env RI_TEST_CONV=pw RI_CUDA_PW2_ZFOLD=1 \
    "$BUILD/test_cuda_conv"
fi
if pw2_has memcheck; then
  if [ -n "$SANITIZER" ]; then
    step memcheck "${T_MEMCHECK:-90}" "$OUT/test.log" env RI_TEST_CONV=pw "$SANITIZER" --tool memcheck \
      --error-exitcode 3 "$BUILD/test_cuda_conv"
    grep -E 'ERROR SUMMARY' "$OUT/test.log" | sed 's/^/memcheck: /' >>"$SUMMARY"
  else
    echo "memcheck   SKIPPED (no compute-sanitizer)" | tee -a "$SUMMARY"
  fi
fi
if pw2_has ops; then
  step ops-pwforce "${T_TEST:-60}" "$OUT/test.log" env RI_CUDA_PWCONV=force "$BUILD/test_cuda_ops" "$MODELS" \
    ssd_mobilenet_v2
  step inv-pwforce "${T_INVTEST:-40}" "$OUT/test.log" env RI_CUDA_PWCONV=force RI_TEST_PREC=fp16 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS" ssd_mobilenet_v2
  step ops "${T_TEST:-60}" "$OUT/test.log" "$BUILD/test_cuda_ops" "$MODELS" ssd_mobilenet_v2
  step inv "${T_INVTEST:-40}" "$OUT/test.log" env RI_TEST_PREC=fp16 "$BUILD/test_cuda_batch_invariance" \
    "$MODELS" ssd_mobilenet_v2
fi
test_verdicts
if pw2_has micro; then
  step micro "${T_MICRO:-90}" "$OUT/ab.log" "$BUILD/bench_pwconv" --batch 256 --reps 20
  grep -E '^(expanded[^ ]* +(memset|d2d|form)|FAIL|bench_pwconv)' "$OUT/ab.log" >>"$SUMMARY"
fi
if pw2_has ab; then
  step ab "${T_AB:-150}" "$OUT/ab.log" env AB_SETTINGS="${AB_SETTINGS:-old=RI_CUDA_PW2:0 new=}" \
    AB_PREC=fp16 AB_BATCHES="${AB_BATCHES:-1,64,256}" AB_ROUNDS="${AB_ROUNDS:-2}" AB_PROFILE="${AB_PROFILE:-1}" \
    OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" bash "$ROOT/scripts/gpu/ab-bench.sh"
  # the four layers' rows of the batch-256 profiles (old, new, old, new)
  grep -E 'expanded_conv(_1|_2)?/(expand|project)/Conv2D' "$OUT/ab.log" | grep -E '^ +[0-9.]+ ms' >>"$SUMMARY"
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
