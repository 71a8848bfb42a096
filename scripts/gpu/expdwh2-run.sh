#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the fused
# expansion -> depthwise kernel's half2 depthwise instance (k_expdw.cu's H2, args dwh), which the fusions
# expdw_f16 / dwproj_f16 use for RI_CUDA_DW_HALF=1's dwconv_h2_f16 nodes, checked and measured in one device
# call. PROTOTYPE: never run yet.
#   build.log     device-run.sh's build and model generation (build_and_models)
#   test.log      tests/gpu/test_cuda_expdw with RI_TEST_EXPDW_H2=only and the models (every kernel case with
#                 dwh 1 against expansion -> ri__cu_dwconv_h2 -> projection, bit for bit; refusals; SSD and
#                 MobileNet v2 fp16 engines with RI_CUDA_DW_HALF=1: fused nodes again, the unfused engine's
#                 bits), then tests/gpu/test_cuda_dwh2 with the models (its engine check now expects fused
#                 nodes), then test_cuda_expdw's quick h2 cases under compute-sanitizer memcheck
#   bench.log     tests/gpu/bench_expdw --proj --h2 at batch 256: SSD MobileNet v2's blocks 0 .. 5 with their
#                 projections, the float fused kernel, the half2 fused instance and the unfused h2 chain, us
#   ab.log, ab.jsonl  scripts/gpu/ab-bench.sh fp16, AB_SETTINGS (default 'off= on=RI_CUDA_DW_HALF:1'), batches
#                 AB_BATCHES (default 1,64,256), AB_ROUNDS (default 2), per-node profile (AB_PROFILE=1,
#                 RI_BENCH_TOP=200)
#   summary.txt   step lines, test verdicts, memcheck's summary, the bench lines, the A/B result lines, then
#                 the batch-256 profiles' dwconv / expdw / dwproj lines
# Environment: EXPDWH2_STEPS (default build,test,memcheck,bench,ab), OUT, ab-bench.sh's AB_* variables, the
# step limits T_XTEST, T_DWHTEST, T_MEMCHECK, T_BENCH, T_ABALL.
# Expected (estimates from dwhalf-run.sh's and dwproj-run.sh's steps on the H200): build ~110 s, tests
# ~60 s, memcheck ~40 s, bench ~40 s, A/B ~90 s: about 6 minutes. The device command:
#   run (carry [".deps"], timeout_s 600): bash scripts/gpu/expdwh2-run.sh
# Should it run past the limit, split it over two calls on the same warm machine:
#   run (carry [".deps"], timeout_s 600): EXPDWH2_STEPS=build,test,memcheck bash scripts/gpu/expdwh2-run.sh
#   run (carry [".deps"], timeout_s 600): EXPDWH2_STEPS=build,bench,ab bash scripts/gpu/expdwh2-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
EXPDWH2_STEPS=${EXPDWH2_STEPS:-build,test,memcheck,bench,ab}
xh_has() { case ",$EXPDWH2_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
xh_has build && build_and_models
unset RI_CUDA_DW_HALF # the tests set it where they need it
if xh_has test; then
  step expdwh2test "${T_XTEST:-180}" "$OUT/test.log" env RI_TEST_EXPDW_H2=only "$BUILD/test_cuda_expdw" "$MODELS"
  step dwhtest "${T_DWHTEST:-120}" "$OUT/test.log" "$BUILD/test_cuda_dwh2" "$MODELS"
fi
if xh_has memcheck; then
  if [ -n "$SANITIZER" ]; then # the small kernel cases only (no models directory: no engines)
    step memcheck "${T_MEMCHECK:-120}" "$OUT/test.log" env RI_TEST_EXPDW=quick RI_TEST_EXPDW_H2=only \
      "$SANITIZER" --tool memcheck --error-exitcode 3 --leak-check full "$BUILD/test_cuda_expdw"
    grep -E 'ERROR SUMMARY' "$OUT/test.log" | sed 's/^/memcheck: /' >>"$SUMMARY"
  else
    echo "memcheck   SKIPPED (no compute-sanitizer)" | tee -a "$SUMMARY"
  fi
fi
if xh_has bench; then
  step bench "${T_BENCH:-120}" "$OUT/bench.log" "$BUILD/bench_expdw" --batch 256 --proj --h2
  grep -E '^(expanded_conv|FAIL|bench_expdw)' "$OUT/bench.log" | sed 's/^/bench: /' >>"$SUMMARY"
fi
test_verdicts
if xh_has ab; then
  step ab "${T_ABALL:-240}" "$OUT/ab.log" env \
    AB_SETTINGS="${AB_SETTINGS:-off= on=RI_CUDA_DW_HALF:1}" AB_PREC=fp16 \
    AB_BATCHES="${AB_BATCHES:-1,64,256}" AB_ROUNDS="${AB_ROUNDS:-2}" AB_PROFILE="${AB_PROFILE:-1}" \
    RI_BENCH_TOP="${RI_BENCH_TOP:-200}" OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" \
    bash "$ROOT/scripts/gpu/ab-bench.sh"
  ab_profile_lines 'dwconv_h2_f16|dwconv_nhwc_f16|expdw_f16|dwproj_f16|fused_into_(expdw|dwproj)'
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
