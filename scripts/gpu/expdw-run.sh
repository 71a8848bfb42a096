#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the expansion ->
# depthwise fusion in the backend (cuda_expdw.c, node expdw_f16 on k_expdw.cu; RI_CUDA_EXPDW unset = the
# default rule, 0 = off, all = every eligible block; RI_CUDA_EXPDW_PROJ=0 = the projection after them stays a
# node of its own, unset = fused too where the kernel takes it) checked and measured, in two device calls
# (below).
#   build.log     device-run.sh's build and model generation (build_and_models)
#   test.log      tests/gpu/test_cuda_expdw with the models (the kernel against the unfused kernels bit for
#                 bit on many shapes; SSD MobileNet v2 and MobileNet v2 engines fused against unfused, bit for
#                 bit), then the same kernel cases under compute-sanitizer memcheck, then test_cuda_ops and
#                 test_cuda_batch_invariance (fp16) on EXPDW_MODELS with RI_CUDA_EXPDW=all and with the
#                 default, then test_cuda_tactics (default level, stored tactics, engines loaded back)
#   bench.log     tests/gpu/bench_expdw at batch 256: the pairs, then --proj (the blocks with their projections)
#   ab.log, ab.jsonl  scripts/gpu/ab-bench.sh fp16, AB_SETTINGS (default 'off=RI_CUDA_EXPDW:0 on=
#                 all=RI_CUDA_EXPDW:all noproj=RI_CUDA_EXPDW_PROJ:0'), batches AB_BATCHES (default 1,64,256: an engine of maximum batch
#                 256), AB_ROUNDS (default 2) rounds, with the per-node profile of every node (RI_BENCH_TOP=200)
#   summary.txt   step lines, test verdicts, memcheck's summary, the A/B result lines, then from the batch-256
#                 profiles ("b256 ROUND SETTING: " lines): the profile's total, the group lines of expdw_f16 and
#                 fused_into_expdw, and the node lines of expanded_conv_1 .. _10's expand and depthwise
#                 convolutions (a fused node carries the expansion's name; its depthwise then shows 0 ms as
#                 fused_into_expdw), to set the fused node against the two it replaces
# Environment: EXPDW_STEPS (default build,test,memcheck,ops,tactics,bench,ab), EXPDW_MODELS (default
# "ssd_mobilenet_v2 ssd_mobilenet_v2_nhwc mobilenet_v2 tiny_ssd"), OUT, ab-bench.sh's AB_* variables, the
# step limits T_EXPDWTEST, T_MEMCHECK, T_OPS, T_INV, T_TACTEST, T_BENCH, T_ABALL (the whole A/B), T_AB (each A/B run;
# ab-bench.sh's); RI_TEST_EXPDW=quick limits the kernel cases (memcheck included) to those below 40x40 pixels.
# Expected (not yet run): build ~110 s, test ~30 s, memcheck 60-200 s, ops + invariance ~4 x 40-90 s, tactics
# ~60 s, A/B 6 runs of ~30-60 s: more than one 600 s device call, so two calls on the same warm machine (the
# second build is incremental, the models are reused):
#   run (carry [".deps"], timeout_s 600): EXPDW_STEPS=build,test,memcheck,ops bash scripts/gpu/expdw-run.sh
#   run (carry [".deps"], timeout_s 600): EXPDW_STEPS=build,tactics,bench,ab bash scripts/gpu/expdw-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
EXPDW_STEPS=${EXPDW_STEPS:-build,test,memcheck,ops,tactics,bench,ab}
EXPDW_MODELS=${EXPDW_MODELS:-ssd_mobilenet_v2 ssd_mobilenet_v2_nhwc mobilenet_v2 tiny_ssd}
xd_has() { case ",$EXPDW_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
xd_has build && build_and_models
if xd_has test; then
  step expdwtest "${T_EXPDWTEST:-120}" "$OUT/test.log" "$BUILD/test_cuda_expdw" "$MODELS"
fi
if xd_has memcheck; then
  if [ -n "$SANITIZER" ]; then
    # the kernel cases only (no models directory: no engines)
    step memcheck "${T_MEMCHECK:-240}" "$OUT/test.log" "$SANITIZER" --tool memcheck --error-exitcode 3 \
      --leak-check full "$BUILD/test_cuda_expdw"
    grep -E 'ERROR SUMMARY' "$OUT/test.log" | sed 's/^/memcheck: /' >>"$SUMMARY"
  else
    echo "memcheck   SKIPPED (no compute-sanitizer)" | tee -a "$SUMMARY"
  fi
fi
if xd_has ops; then
  # shellcheck disable=SC2086 # EXPDW_MODELS is a list of model names
  for setting in all default; do
    vars=()
    [ "$setting" = all ] && vars=(RI_CUDA_EXPDW=all)
    step "ops-$setting" "${T_OPS:-240}" "$OUT/test.log" env -u RI_CUDA_EXPDW -u RI_CUDA_EXPDW_PROJ "${vars[@]}" \
      "$BUILD/test_cuda_ops" "$MODELS" $EXPDW_MODELS
    step "inv-$setting" "${T_INV:-120}" "$OUT/test.log" env -u RI_CUDA_EXPDW -u RI_CUDA_EXPDW_PROJ "${vars[@]}" \
      RI_TEST_PREC=fp16 \
      "$BUILD/test_cuda_batch_invariance" "$MODELS" $EXPDW_MODELS
  done
fi
if xd_has tactics; then
  step tactest "${T_TACTEST:-150}" "$OUT/test.log" env -u RI_BUILDER_LEVEL "$BUILD/test_cuda_tactics" "$MODELS"
fi
if xd_has bench; then
  step bench "${T_BENCH:-120}" "$OUT/bench.log" "$BUILD/bench_expdw"
  step bench-proj "${T_BENCH:-120}" "$OUT/bench.log" "$BUILD/bench_expdw" --proj
  grep -E '^(expanded_conv|SKIP|FAIL|bench_expdw)' "$OUT/bench.log" | sed 's/^/bench: /' >>"$SUMMARY"
fi
test_verdicts
if xd_has ab; then
  step ab "${T_ABALL:-480}" "$OUT/ab.log" env \
    AB_SETTINGS="${AB_SETTINGS:-off=RI_CUDA_EXPDW:0 on= all=RI_CUDA_EXPDW:all noproj=RI_CUDA_EXPDW_PROJ:0}" \
    AB_PREC=fp16 \
    AB_BATCHES="${AB_BATCHES:-1,64,256}" AB_ROUNDS="${AB_ROUNDS:-2}" AB_PROFILE="${AB_PROFILE:-1}" \
    RI_BENCH_TOP="${RI_BENCH_TOP:-200}" OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" \
    bash "$ROOT/scripts/gpu/ab-bench.sh"
  # The batch-256 profiles: per setting and round, the implementation groups of the expansions and depthwise
  # convolutions, and the early blocks' expand / depthwise nodes.
  ab_profile_lines 'expdw_f16|fused_into_expdw|expanded_conv_([1-9]|10)/(expand|depthwise)/Conv2D'
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
