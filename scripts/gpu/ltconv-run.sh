#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the checks and the
# measurement of the cuBLASLt tactic for fp16 1x1 convolutions (src/backend/cuda/cuda_conv_lt.c), in one run.
#   build.log     device-run.sh's build and model generation (build_and_models)
#   lt.log        tests/gpu/test_cuda_ltconv (the core against a CPU reference, every qualifying algorithm,
#                 batch invariance image by image; the engine with RI_CUDA_LTCONV=force and =0, refusals)
#   forced.log    with RI_CUDA_LTCONV=force: test_cuda_ops (SSD MobileNet v2, MobileNet v2, tiny models),
#                 test_cuda_batch_invariance (fp16) and test_cuda_branches (side-stream nodes on cuBLASLt)
#   test.log      device-run.sh's gpu_tests with the default setting (cuBLASLt offered, taken where it wins)
#   memcheck.log  compute-sanitizer memcheck on test_cuda_ltconv, then device-run.sh's memcheck_all
#   ab.log, ab.jsonl  scripts/gpu/ab-bench.sh, fp16, AB_SETTINGS='off=RI_CUDA_LTCONV:0 default=' (2 rounds,
#                 batches 1,8,64,256, per-node profile), so that before and after come from the same call
#   summary.txt   the step lines and verdicts
# Environment: LT_STEPS (default build,lt,forced,all,memcheck,ab; the whole list may not fit one 420 s
# call: build ~90 s, lt ~30 s, forced ~150 s, all ~8 min, memcheck ~3 min, ab ~4 min; drop "all" and
# "memcheck" first), OUT, and ab-bench.sh's AB_* variables.
#
# The device call (a tool `run` with carry [".deps"], timeout_s 420) from a worktree shipped as a tarball:
#   export OUT; rm -rf /tmp/snap-lt; mkdir -p /tmp/snap-lt && tar -x -C /tmp/snap-lt -f .deps/lt.tar &&
#   ln -sfn $PWD/.deps /tmp/snap-lt/.deps && cd /tmp/snap-lt && LT_STEPS=build,lt,forced,ab bash scripts/gpu/ltconv-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
LT_STEPS=${LT_STEPS:-build,lt,forced,all,memcheck,ab}
lt_has() { case ",$LT_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
lt_has build && build_and_models
if lt_has lt; then
  step lttest "${T_LTTEST:-90}" "$OUT/lt.log" "$BUILD/test_cuda_ltconv"
  grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/lt.log" | sed 's/^/lt: /' >>"$SUMMARY"
  grep -E '^FAIL' "$OUT/lt.log" | head -20 >>"$SUMMARY"
fi
if lt_has forced; then
  step ltops "${T_LTOPS:-150}" "$OUT/forced.log" env RI_CUDA_LTCONV=force "$BUILD/test_cuda_ops" "$MODELS" \
    ssd_mobilenet_v2 mobilenet_v2 tiny_conv tiny_ssd
  step ltinv "${T_LTINV:-90}" "$OUT/forced.log" env RI_CUDA_LTCONV=force RI_TEST_PREC=fp16 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS" ssd_mobilenet_v2 mobilenet_v2
  step ltbranches "${T_LTBR:-90}" "$OUT/forced.log" env RI_CUDA_LTCONV=force "$BUILD/test_cuda_branches" \
    "$MODELS" ssd_mobilenet_v2
  grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/forced.log" | sed 's/^/forced: /' >>"$SUMMARY"
  grep -E '^FAIL' "$OUT/forced.log" | head -20 >>"$SUMMARY"
fi
if lt_has all; then
  gpu_tests lttest
  test_verdicts
fi
if lt_has memcheck && [ -n "$SANITIZER" ]; then
  step ltmemcheck "${T_LTMEMCHECK:-150}" "$OUT/memcheck.log" "$SANITIZER" --tool memcheck --error-exitcode 3 \
    --leak-check full "$BUILD/test_cuda_ltconv"
  lt_has all && memcheck_step "${T_MEMCHECK:-150}"
fi
if lt_has ab; then
  step ab "${T_AB_ALL:-300}" "$OUT/ab.log" env AB_SETTINGS="${AB_SETTINGS:-off=RI_CUDA_LTCONV:0 default=}" \
    AB_PREC="${AB_PREC:-fp16}" AB_PROFILE="${AB_PROFILE:-1}" OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" \
    bash "$ROOT/scripts/gpu/ab-bench.sh"
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
