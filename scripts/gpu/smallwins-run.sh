#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried, peer_bench.py in
# it): the checks and measurements of two small changes, in one call of about 5 minutes (estimates, not
# measured: build ~110 s, lt ~40, conv ~20, scatter ~25, pwbench ~40, export ~30, ab ~90).
#   1. k_scatter_cols.cu: the activation as a template parameter, half2 loads of even rows (the padded
#      cuBLASLt form's scatter; SSD's class slices with the peer model's sigmoid).
#   2. k_pwconv_wide.cu: two blocks per SM preferred at K >= 128 (K = 160: 8 slabs x 128, S = 1);
#      RI_CUDA_PW_WIDE_PLAN=old keeps the first plan (192-channel slabs, S = 3, one block).
#   build.log     the build (configure_and_build; the reference models only when the peer export fails)
#   test.log      tests/gpu/test_cuda_ltconv (the scatter alone for every activation, half2 against element
#                 loads bit for bit; the padded form's sigmoid / clip cases), then RI_TEST_CONV=pwwide
#                 test_cuda_conv (the wide form bit for bit against the tiled kernel, the K = 160 / 128 cases
#                 of many tiles per warp included) under the new plan and under RI_CUDA_PW_WIDE_PLAN=old
#   scatter.log   bench_ltpad --batches 256: the scatter without an activation, with the sigmoid, and with the
#                 sigmoid and element loads (RI_CUDA_SCATTER_VEC=0); the "scatter" figure of each line
#   pw.log        bench_pwconv --batch 256 --set wide under the new plan, then under RI_CUDA_PW_WIDE_PLAN=old
#                 (each form's time, plan "slabs x ch, blocks/SM, S", bit-identical against the tiled kernel)
#   ab.log, ab.jsonl  scripts/gpu/ab-bench.sh on the peer's exported SSD (.deps/peer_bench.py --cbatches 1
#                 --export /tmp/peer_ssd.onnx; the reference model when that fails), fp16, batches 1,64,256,
#                 AB_SETTINGS='old=RI_CUDA_PW_WIDE_PLAN:old new=', one round, per-node profile
#   summary.txt   the step lines, verdicts, bench lines, A/B lines and the batch-256 profile lines of the
#                 expansions of blocks 14-16 and the class predictors
# Environment: SW_STEPS (default build,lt,conv,scatter,pw,ab; when it does not fit one call, split it into
# SW_STEPS=build,lt,conv,scatter,pw and SW_STEPS=ab with BUILD set outside the snapshot, e.g.
# BUILD=/tmp/sw-build, so that the second call on the warm machine reuses the build), OUT, BUILD, ab-bench.sh's
# AB_* variables.
#
# The device call (a tool `run` with carry [".deps"], timeout_s 420) from the branch shipped as a tarball
# (made first with `git archive --format=tar -o .deps/smallwins.tar smallwins` in the checkout that runs it):
#   export OUT; rm -rf /tmp/snap-sw; mkdir -p /tmp/snap-sw && tar -x -C /tmp/snap-sw -f .deps/smallwins.tar &&
#   ln -sfn $PWD/.deps /tmp/snap-sw/.deps && cd /tmp/snap-sw && bash scripts/gpu/smallwins-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
SW_STEPS=${SW_STEPS:-build,lt,conv,scatter,pw,ab}
sw_has() { case ",$SW_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
sw_has build && step build "${T_BUILD:-240}" "$OUT/build.log" configure_and_build
if sw_has lt; then
  step lttest "${T_LTTEST:-90}" "$OUT/test.log" "$BUILD/test_cuda_ltconv"
  grep -E '^(PASS|FAIL) scatter act' "$OUT/test.log" | head -14 >>"$SUMMARY"
fi
if sw_has conv; then
  step pwwide "${T_CONV:-60}" "$OUT/test.log" env RI_TEST_CONV=pwwide "$BUILD/test_cuda_conv"
  step pwwide-old "${T_CONV:-60}" "$OUT/test.log" env RI_TEST_CONV=pwwide RI_CUDA_PW_WIDE_PLAN=old \
    "$BUILD/test_cuda_conv"
fi
test_verdicts
if sw_has scatter; then
  step scatter "${T_SC:-40}" "$OUT/scatter.log" "$BUILD/bench_ltpad" --batches 256
  step scatter-sig "${T_SC:-40}" "$OUT/scatter.log" "$BUILD/bench_ltpad" --batches 256 --act sigmoid
  step scatter-sig-el "${T_SC:-40}" "$OUT/scatter.log" env RI_CUDA_SCATTER_VEC=0 "$BUILD/bench_ltpad" \
    --batches 256 --act sigmoid
  grep -E '^== |ClassPredictor|FAIL' "$OUT/scatter.log" >>"$SUMMARY"
fi
if sw_has pw; then
  step pwbench "${T_PW:-60}" "$OUT/pw.log" "$BUILD/bench_pwconv" --batch 256 --reps 10 --set wide
  step pwbench-old "${T_PW:-60}" "$OUT/pw.log" env RI_CUDA_PW_WIDE_PLAN=old "$BUILD/bench_pwconv" --batch 256 \
    --reps 10 --set wide
  grep -E '^(== |expanded[^ ]* +(tiled|form)|FAIL)' "$OUT/pw.log" >>"$SUMMARY"
fi
if sw_has ab; then
  PEER_ONNX=/tmp/peer_ssd.onnx
  model=$PEER_ONNX
  if ! step export "${T_EXPORT:-120}" "$OUT/ab.log" python3 "$ROOT/.deps/peer_bench.py" --cbatches 1 \
    --export "$PEER_ONNX"; then
    echo "ab: the peer export failed; the reference model instead" | tee -a "$SUMMARY"
    step models "${T_MODELS:-90}" "$OUT/build.log" python3 "$ROOT/models/make_models.py" --out "$MODELS" --reuse
    model=$MODELS/ssd_mobilenet_v2.onnx
  fi
  step ab "${T_AB_ALL:-200}" "$OUT/ab.log" env AB_SETTINGS="${AB_SETTINGS:-old=RI_CUDA_PW_WIDE_PLAN:old new=}" \
    AB_MODEL="${AB_MODEL:-$model}" AB_ROUNDS="${AB_ROUNDS:-1}" AB_BATCHES="${AB_BATCHES:-1,64,256}" AB_PREC=fp16 \
    AB_PROFILE="${AB_PROFILE:-1}" OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" bash "$ROOT/scripts/gpu/ab-bench.sh"
  ab_profile_lines 'expanded_conv_1[4-6]/expand|ClassPredictor'
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
