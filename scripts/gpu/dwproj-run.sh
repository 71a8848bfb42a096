#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the depthwise ->
# projection fusion without an expansion (cuda_expdw.c's dwproj_f16 node, k_expdw.cu's noexp form; MobileNet
# v2's first block; RI_CUDA_EXPDW_DWP=0 turns just this form off) checked and measured in one device call.
#   build.log     device-run.sh's build and model generation (build_and_models)
#   test.log      tests/gpu/test_cuda_expdw with the models (the kernel, with and without the expansion,
#                 against the unfused kernels bit for bit; SSD MobileNet v2 and MobileNet v2 engines fused
#                 against unfused, the first block fused as dwproj_f16), then its quick cases under
#                 compute-sanitizer memcheck, then test_cuda_ops and test_cuda_batch_invariance (fp16) on
#                 DWPROJ_MODELS with the default rule
#   bench.log     tests/gpu/bench_expdw --dwp at batch 256: the first block's fastest depthwise variant +
#                 fastest projection form against the fused kernel, bit identity
#   ab.log, ab.jsonl  scripts/gpu/ab-bench.sh fp16, AB_SETTINGS (default 'off=RI_CUDA_EXPDW_DWP:0 on='),
#                 batches AB_BATCHES (default 1,64,256), AB_ROUNDS (default 2) rounds, with the per-node
#                 profile (RI_BENCH_TOP=200)
#   summary.txt   step lines, test verdicts, memcheck's summary, the bench and A/B result lines, then from the
#                 batch-256 profiles ("b256 ROUND SETTING: " lines): the profile's total, the group lines of
#                 dwproj_f16 and fused_into_dwproj, and the node lines of the first block's depthwise and
#                 projection (the fused node carries the depthwise's name; the projection then shows 0 ms as
#                 fused_into_dwproj)
# Environment: DWPROJ_STEPS (default build,test,memcheck,ops,bench,ab), DWPROJ_MODELS (default
# "ssd_mobilenet_v2 ssd_mobilenet_v2_nhwc mobilenet_v2"), OUT, ab-bench.sh's AB_* variables, the step limits
# T_EXPDWTEST, T_MEMCHECK, T_OPS, T_INV, T_BENCH, T_ABALL (the whole A/B), T_AB (each A/B run).
# Expected (not yet run; expdw-run.sh's steps took build 108 s, test 2 s, ops / invariance 3 s each, bench 4 s,
# A/B 6 runs 33 s on the H200): build ~110 s, test ~10 s, memcheck (quick cases) 40-150 s, ops + invariance
# ~10 s, bench ~5 s, A/B 4 runs ~25 s: 3-5 minutes. Should it run past the call's limit, split it over two
# calls on the same warm machine (the second build is incremental, the models are reused):
#   run (carry [".deps"], timeout_s 600): DWPROJ_STEPS=build,test,memcheck,ops bash scripts/gpu/dwproj-run.sh
#   run (carry [".deps"], timeout_s 600): DWPROJ_STEPS=build,bench,ab bash scripts/gpu/dwproj-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
DWPROJ_STEPS=${DWPROJ_STEPS:-build,test,memcheck,ops,bench,ab}
DWPROJ_MODELS=${DWPROJ_MODELS:-ssd_mobilenet_v2 ssd_mobilenet_v2_nhwc mobilenet_v2}
dp_has() { case ",$DWPROJ_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
dp_has build && build_and_models
# the fusion's settings as their defaults in every step but the A/B
unset RI_CUDA_EXPDW RI_CUDA_EXPDW_PROJ RI_CUDA_EXPDW_DWP
if dp_has test; then
  step expdwtest "${T_EXPDWTEST:-150}" "$OUT/test.log" "$BUILD/test_cuda_expdw" "$MODELS"
fi
dp_has memcheck && expdw_memcheck_step
if dp_has ops; then
  # shellcheck disable=SC2086 # DWPROJ_MODELS is a list of model names
  step ops "${T_OPS:-150}" "$OUT/test.log" "$BUILD/test_cuda_ops" "$MODELS" \
    $DWPROJ_MODELS
  # shellcheck disable=SC2086
  step inv "${T_INV:-120}" "$OUT/test.log" env RI_TEST_PREC=fp16 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS" $DWPROJ_MODELS
fi
if dp_has bench; then
  step bench "${T_BENCH:-90}" "$OUT/bench.log" "$BUILD/bench_expdw" --dwp
  grep -E '^(expanded_conv|SKIP|FAIL|bench_expdw)' "$OUT/bench.log" | sed 's/^/bench: /' >>"$SUMMARY"
fi
test_verdicts
if dp_has ab; then
  step ab "${T_ABALL:-300}" "$OUT/ab.log" env \
    AB_SETTINGS="${AB_SETTINGS:-off=RI_CUDA_EXPDW_DWP:0 on=}" AB_PREC=fp16 \
    AB_BATCHES="${AB_BATCHES:-1,64,256}" AB_ROUNDS="${AB_ROUNDS:-2}" AB_PROFILE="${AB_PROFILE:-1}" \
    RI_BENCH_TOP="${RI_BENCH_TOP:-200}" OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" \
    bash "$ROOT/scripts/gpu/ab-bench.sh"
  # The batch-256 profiles: the fused node's group and the first block's depthwise and projection nodes.
  ab_profile_lines 'dwproj_f16|fused_into_dwproj|expanded_conv/(depthwise|project)/Conv2D'
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
