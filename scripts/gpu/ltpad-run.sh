#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the checks and the
# measurement of the padded cuBLASLt form for fp16 1x1 convolutions whose output slice is misaligned
# (cuda_conv_lt.h: GEMM over m rounded up to 8 channels into a dense half buffer, then k_scatter_cols.cu;
# SSD's class predictors), in one call of under 6 minutes (187 s wall on an H200 on 2026-11-27).
#   build.log     device-run.sh's build and model generation (build_and_models)
#   lt.log        tests/gpu/test_cuda_ltconv (the core's direct and padded forms against a CPU reference,
#                 odd slices, float32 widening, bytes outside the slice, the padded buffer's columns beyond m,
#                 images alone against the batch; the
#                 engine with RI_CUDA_LTCONV=force, with RI_CUDA_LTPAD=force as well, and =0)
#   test.log      test_cuda_ops (SSD MobileNet v2, tiny models) with the default setting,
#                 test_cuda_batch_invariance (fp16, SSD MobileNet v2) default and with RI_CUDA_LTCONV=force,
#                 test_cuda_memory (SSD at 256); with step "tactics" also test_cuda_tactics (tactic codes of
#                 the direct and padded cuBLASLt forms; not in the default list: ~2 min)
#   bench.log     tests/gpu/bench_ltpad: direct vs padded form (and the padded GEMM alone) on the heads'
#                 shapes (1, 64, 256)
#   ab.log, ab.jsonl  scripts/gpu/ab-bench.sh, fp16, AB_SETTINGS='nopad=RI_CUDA_LTPAD:0 pad=' (1 round,
#                 batches 1,64,256, per-node profile)
#   inspect.log   `runinfer inspect` of a default fp16 build of maximum batch 256 (its ClassPredictor lines
#                 also in the summary)
#   summary.txt   the step lines and verdicts
# Environment: LTP_STEPS (default build,lt,tests,bench,ab,inspect; estimates, not measured: build ~100 s,
# models ~30 s, lt ~40 s, tests ~150 s, bench ~15 s, ab ~70 s, inspect ~20 s; when that does not fit one
# call, split it into LTP_STEPS=build,lt,tests and LTP_STEPS=bench,ab,inspect with BUILD set outside the
# snapshot, e.g. BUILD=/tmp/ltpad-build, so that the second call on the warm machine reuses the build),
# OUT, BUILD, and ab-bench.sh's AB_* variables.
#
# The device call (a tool `run` with carry [".deps"], timeout_s 420) from a worktree shipped as a tarball
# (made first with `git archive --format=tar -o .deps/ltpad.tar ltpad` in the checkout that runs it):
#   export OUT; rm -rf /tmp/snap-ltpad; mkdir -p /tmp/snap-ltpad && tar -x -C /tmp/snap-ltpad -f .deps/ltpad.tar &&
#   ln -sfn $PWD/.deps /tmp/snap-ltpad/.deps && cd /tmp/snap-ltpad && bash scripts/gpu/ltpad-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
LTP_STEPS=${LTP_STEPS:-build,lt,tests,bench,ab,inspect}
ltp_has() { case ",$LTP_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
ltp_has build && build_and_models
if ltp_has lt; then
  step lttest "${T_LTTEST:-90}" "$OUT/lt.log" "$BUILD/test_cuda_ltconv"
  grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/lt.log" | sed 's/^/lt: /' >>"$SUMMARY"
  grep -E '^FAIL' "$OUT/lt.log" | head -20 >>"$SUMMARY"
fi
if ltp_has tests; then
  step ops "${T_OPS:-120}" "$OUT/test.log" "$BUILD/test_cuda_ops" "$MODELS" ssd_mobilenet_v2 tiny_conv tiny_ssd
  step inv "${T_INV:-60}" "$OUT/test.log" env RI_TEST_PREC=fp16 "$BUILD/test_cuda_batch_invariance" "$MODELS" \
    ssd_mobilenet_v2
  step invforce "${T_INVF:-60}" "$OUT/test.log" env RI_CUDA_LTCONV=force RI_TEST_PREC=fp16 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS" ssd_mobilenet_v2
  step memory "${T_MEM:-90}" "$OUT/test.log" "$BUILD/test_cuda_memory" "$MODELS"
  # tactic codes (direct and padded cuBLASLt forms) and stored tactics: only when asked (slow: model builds)
  ltp_has tactics &&
    step tactics "${T_TAC:-150}" "$OUT/test.log" env -u RI_BUILDER_LEVEL "$BUILD/test_cuda_tactics" "$MODELS"
  {
    grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/test.log" | sed 's/^/tests: /'
    grep -E '^FAIL' "$OUT/test.log" | head -20
    grep -E 'weights \+ planned activations' "$OUT/test.log"
  } >>"$SUMMARY"
fi
if ltp_has bench; then
  step bench "${T_BENCH:-60}" "$OUT/bench.log" "$BUILD/bench_ltpad" --batches 1,64,256
  grep -E 'Predictor|FAIL' "$OUT/bench.log" >>"$SUMMARY"
fi
if ltp_has ab; then
  step ab "${T_AB_ALL:-150}" "$OUT/ab.log" env AB_SETTINGS="${AB_SETTINGS:-nopad=RI_CUDA_LTPAD:0 pad=}" \
    AB_ROUNDS="${AB_ROUNDS:-1}" AB_BATCHES="${AB_BATCHES:-1,64,256}" AB_PREC=fp16 AB_PROFILE="${AB_PROFILE:-1}" \
    OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" bash "$ROOT/scripts/gpu/ab-bench.sh"
  # the batch-256 profiles' totals and the heads' lines (both settings)
  ab_profile_lines 'Predictor'
  grep -E '^fp16 ' "$OUT/ab.log" >>"$SUMMARY"
fi
if ltp_has inspect; then
  step inspect 90 "$OUT/inspect.log" bash -c "\"$BUILD/runinfer\" build --onnx \"$MODELS/ssd_mobilenet_v2.onnx\" \
    --save /tmp/ltpad.rie --device cuda --precision fp16 --max-batch 256 && \"$BUILD/runinfer\" inspect /tmp/ltpad.rie"
  {
    echo "inspect: $(grep -c 'cublaslt algo [0-9]* padded' "$OUT/inspect.log") padded cuBLASLt layers, \
$(grep -c 'cublaslt algo' "$OUT/inspect.log") cuBLASLt layers (inspect.log)"
    grep -E 'ClassPredictor' "$OUT/inspect.log"
  } >>"$SUMMARY"
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
