#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the fused
# depthwise -> projection kernel at large batch (RI_CUDA_IRBLOCK=dp, cuda_irblock.c), in one run of about
# 4 minutes (the build alone takes ~100 s).
#   build.log   device-run.sh's build and model generation
#   test.log    with RI_CUDA_IRBLOCK=dp: test_cuda_ops (SSD MobileNet v2, MobileNet v2, tiny models) and
#               test_cuda_batch_invariance (fp16); then test_cuda_irblock
#   ab.log, ab.jsonl  scripts/gpu/ab-bench.sh, fp16, AB_SETTINGS (default 'off=RI_CUDA_IRBLOCK:0
#               dp=RI_CUDA_IRBLOCK:dp full=RI_CUDA_IRBLOCK:1'), batches AB_BATCHES (default 1,8,64,256), an
#               engine of maximum batch 256, with the per-node profile (AB_PROFILE, default 1)
#   summary.txt the step lines and verdicts
# Environment: DP_STEPS (default build,test,ab), OUT, ab-bench.sh's AB_* variables.
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
DP_STEPS=${DP_STEPS:-build,test,ab}
dp_has() { case ",$DP_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
dp_has build && build_and_models
if dp_has test; then
  step dpops "${T_DPOPS:-150}" "$OUT/test.log" env RI_CUDA_IRBLOCK=dp "$BUILD/test_cuda_ops" "$MODELS" \
    ssd_mobilenet_v2 mobilenet_v2 tiny_conv tiny_ssd
  step dpinv "${T_DPINV:-90}" "$OUT/test.log" env RI_CUDA_IRBLOCK=dp RI_TEST_PREC=fp16 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS" ssd_mobilenet_v2 mobilenet_v2
  step irbtest "${T_IRBTEST:-60}" "$OUT/test.log" "$BUILD/test_cuda_irblock"
  {
    grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/test.log" | sed 's/^/test: /'
    grep -E '^FAIL' "$OUT/test.log" | head -20
  } >>"$SUMMARY"
fi
if dp_has ab; then
  step ab "${T_ABALL:-300}" "$OUT/ab.log" env \
    AB_SETTINGS="${AB_SETTINGS:-off=RI_CUDA_IRBLOCK:0 dp=RI_CUDA_IRBLOCK:dp full=RI_CUDA_IRBLOCK:1}" \
    AB_PREC=fp16 AB_BATCHES="${AB_BATCHES:-1,8,64,256}" AB_PROFILE="${AB_PROFILE:-1}" OUT="$OUT" \
    BUILD="$BUILD" MODELS="$MODELS" bash "$ROOT/scripts/gpu/ab-bench.sh"
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
