#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried, peer_bench.py in
# it): the check and measurement of the pointwise kernel's deep form (k_pwconv_deep.cu: N <= 64 with
# 160 < K <= 1280 or a float32 output; SSD MobileNet v2's box-encoder predictors), in one call of about 5
# minutes (estimates, not measured: build ~110 s, tests ~30, memcheck ~60, bench ~30, export ~30, ab ~90).
#   build.log     the build (configure_and_build; the reference models only when the peer export fails)
#   test.log      RI_TEST_CONV=pwdeep test_cuda_conv (the deep form's limits, the box shapes and edges bit for
#                 bit against the tiled kernel with one K segment, every variant and the tactic, half and
#                 float32 outputs, misaligned slices, signed zeros), the same under RI_CUDA_PW_DEEP=0 (the
#                 limits case must see every shape refused), then RI_TEST_CONV=pw (the other forms unchanged),
#                 then RI_TEST_CONV=pwdeep under compute-sanitizer memcheck (when there is one)
#   pw.log        bench_pwconv --batch 256 --set box: per box predictor, a copy of the input's size (the floor),
#                 the tiled kernel with one K segment (128x64, 64x32), the deep form (plan, bit-identical to the
#                 tiled kernel), the tiled kernel with the heuristic's K segments (what ran before)
#   ab.log, ab.jsonl  scripts/gpu/ab-bench.sh on the peer's exported SSD (.deps/peer_bench.py --cbatches 1
#                 --export /tmp/peer_ssd.onnx; the reference model when that fails), fp16, batches 1,64,256,
#                 AB_SETTINGS='off=RI_CUDA_PW_DEEP:0 on=', one round, per-node profile
#   summary.txt   the step lines, verdicts, bench lines, A/B lines and the batch-256 profile lines of the box
#                 predictors (BoxEncodingPredictor)
# Environment: PD_STEPS (default build,test,bench,ab; split into PD_STEPS=build,test,bench and PD_STEPS=ab with
# BUILD set outside the snapshot, e.g. BUILD=/tmp/pd-build, when it does not fit one call), OUT, BUILD,
# ab-bench.sh's AB_* variables.
#
# The device call (a tool `run` with carry [".deps"], timeout_s 480) from the branch shipped as a tarball
# (made first with `git archive --format=tar -o .deps/pwdeep.tar pwdeep` in the checkout that runs it):
#   export OUT; rm -rf /tmp/snap-pd; mkdir -p /tmp/snap-pd && tar -x -C /tmp/snap-pd -f .deps/pwdeep.tar &&
#   ln -sfn $PWD/.deps /tmp/snap-pd/.deps && cd /tmp/snap-pd && bash scripts/gpu/pwdeep-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
PD_STEPS=${PD_STEPS:-build,test,bench,ab}
pd_has() { case ",$PD_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
unset RI_CUDA_PW_DEEP
pd_has build && step build "${T_BUILD:-240}" "$OUT/build.log" configure_and_build
if pd_has test; then
  step pwdeep "${T_CONV:-90}" "$OUT/test.log" env RI_TEST_CONV=pwdeep "$BUILD/test_cuda_conv"
  step pwdeep-off "${T_CONV:-60}" "$OUT/test.log" env RI_TEST_CONV=pwdeep RI_CUDA_PW_DEEP=0 "$BUILD/test_cuda_conv"
  step pw "${T_CONV:-90}" "$OUT/test.log" env RI_TEST_CONV=pw "$BUILD/test_cuda_conv"
  if [ -n "$SANITIZER" ]; then
    step mc-pwdeep "${T_MC:-150}" "$OUT/test.log" env RI_TEST_CONV=pwdeep "$SANITIZER" --tool memcheck \
      --error-exitcode 3 --leak-check full "$BUILD/test_cuda_conv"
    grep -E 'ERROR SUMMARY' "$OUT/test.log" | sed 's/^/memcheck: /' >>"$SUMMARY"
  fi
  grep -E '^(PASS|FAIL) pwconv deep limits' "$OUT/test.log" >>"$SUMMARY"
fi
test_verdicts
if pd_has bench; then
  step pwbench "${T_PW:-90}" "$OUT/pw.log" "$BUILD/bench_pwconv" --batch 256 --reps 20 --set box
  grep -E '^(== |box\.|FAIL|bench_pwconv:)' "$OUT/pw.log" >>"$SUMMARY"
fi
if pd_has ab; then
  PEER_ONNX=/tmp/peer_ssd.onnx
  model=$PEER_ONNX
  if ! step export "${T_EXPORT:-120}" "$OUT/ab.log" python3 "$ROOT/.deps/peer_bench.py" --cbatches 1 \
    --export "$PEER_ONNX"; then
    echo "ab: the peer export failed; the reference model instead" | tee -a "$SUMMARY"
    step models "${T_MODELS:-90}" "$OUT/build.log" python3 "$ROOT/models/make_models.py" --out "$MODELS" --reuse
    model=$MODELS/ssd_mobilenet_v2.onnx
  fi
  step ab "${T_AB_ALL:-240}" "$OUT/ab.log" env AB_SETTINGS="${AB_SETTINGS:-off=RI_CUDA_PW_DEEP:0 on=}" \
    AB_MODEL="${AB_MODEL:-$model}" AB_ROUNDS="${AB_ROUNDS:-1}" AB_BATCHES="${AB_BATCHES:-1,64,256}" AB_PREC=fp16 \
    AB_PROFILE="${AB_PROFILE:-1}" OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" bash "$ROOT/scripts/gpu/ab-bench.sh"
  ab_profile_lines 'BoxEncodingPredictor|/box\.[0-9]|project'
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
