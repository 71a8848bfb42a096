#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the depthwise
# shared-memory kernels (k_dwconv_smem.cu: one-tile variants RI__CU_DW_SMEM_FIRST = 4 and 5 of k_dwconv.cu,
# persistent RI__CU_DW_PIPE_FIRST = 6 and 7) checked and measured, about 130-150 s after the build. One
# script for the three rounds of these kernels; DW_MODE picks what a round checked and measured:
#   dwsm  the one-tile variants 4 and 5 (were 6 and 7 when first written): test_cuda_conv whole; forced
#         test_cuda_ops on ssd_mobilenet_v2 and mobilenet_v2; A/B old=RI_CUDA_DW_SMEM:0 (the tuner chooses
#         among variants 0..3 only) against new= (0..7), batches 1,64,256; forced A/B of 4 and 5
#   dw2   the persistent variants 6 and 7: forced tests of 6 and 7; A/B old=RI_CUDA_DW_PIPE:0 (variants
#         0..5) against new= (0..7), batches 1,64,256; forced A/B of 4, 6 and 7
#   dw3   (default) the copy, activation and stores with fewer instructions (variants 4..7 share them)
#         against the previous one-tile kernels (RI_CUDA_DWS_OLD=1): forced tests of 4 and 5; A/B old / new
#         and old4 / new4 (variant 4 forced), batches 64,256
# Logs:
#   build.log     device-run.sh's build and model generation (build_and_models)
#   test.log      tests/gpu/test_cuda_conv (dw2, dw3: its depthwise cases alone, RI_TEST_CONV=dw; every
#                 variant against the reference and bit for bit against variant 0), compute-sanitizer
#                 memcheck of the depthwise cases, then each variant of the mode forced wherever it applies
#                 (RI_CUDA_DW_TACTICS=N): test_cuda_ops on ssd_mobilenet_v2 (against the CPU engine) and
#                 test_cuda_batch_invariance fp16 on it; then (dwsm, dw2) the latter with the tuned choice
#   ab.log, ab.jsonl  scripts/gpu/ab-bench.sh fp16, 2 rounds, per-node profile (the dwconv rows name the
#                 variants chosen per bucket), an engine of maximum batch 256; the forced A/B at batch 256,
#                 1 round
#   summary.txt   step lines, test verdicts, A/B result lines
# Environment: DW_MODE (dwsm, dw2, dw3), DW_STEPS (default build,conv,memcheck,inv,ab), OUT, ab-bench.sh's
# AB_* variables, the step limits T_CONVTEST, T_MEMCHECK, T_TEST, T_INVTEST, T_AB, T_ABF. Expected: build
# ~110 s, then about 130 s (dw2, dw3) or 150 s (dwsm).
# The device call (a tool `run` with carry [".deps"], timeout_s 420): DW_MODE=dw3 bash scripts/gpu/dwsmem-run.sh
# (scripts/gpu/dw-run.sh is the earlier round of the register variants 1..3 and the stem kernels.)
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
DW_MODE=${DW_MODE:-dw3}
DW_STEPS=${DW_STEPS:-build,conv,memcheck,inv,ab}
dw_has() { case ",$DW_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
# per mode: conv test filter, forced variants, test_cuda_ops models, tuned invariance run, A/B settings,
# batches and limit, forced A/B settings (empty: none)
case "$DW_MODE" in
dwsm)
  conv_env=() vars="4 5" ops_models=(ssd_mobilenet_v2 mobilenet_v2) inv_tuned=1
  ab_def="old=RI_CUDA_DW_SMEM:0 new=" ab_batches=1,64,256 t_ab=150
  ab_forced="v4=RI_CUDA_DW_TACTICS:4 v5=RI_CUDA_DW_TACTICS:5"
  ;;
dw2)
  conv_env=(RI_TEST_CONV=dw) vars="6 7" ops_models=(ssd_mobilenet_v2) inv_tuned=1
  ab_def="old=RI_CUDA_DW_PIPE:0 new=" ab_batches=1,64,256 t_ab=150
  ab_forced="v4=RI_CUDA_DW_TACTICS:4 v6=RI_CUDA_DW_TACTICS:6 v7=RI_CUDA_DW_TACTICS:7"
  ;;
dw3)
  conv_env=(RI_TEST_CONV=dw) vars="4 5" ops_models=(ssd_mobilenet_v2) inv_tuned=0
  ab_def="old=RI_CUDA_DWS_OLD:1 new= old4=RI_CUDA_DWS_OLD:1,RI_CUDA_DW_TACTICS:4 new4=RI_CUDA_DW_TACTICS:4"
  ab_batches=64,256 t_ab=180 ab_forced=
  ;;
*)
  echo "dwsmem-run: DW_MODE must be dwsm, dw2 or dw3 (got '$DW_MODE')" >&2
  exit 2
  ;;
esac
setup_env
dw_has build && build_and_models
dw_has conv && step convtest "${T_CONVTEST:-60}" "$OUT/test.log" env "${conv_env[@]}" "$BUILD/test_cuda_conv"
if dw_has memcheck; then
  if [ -n "$SANITIZER" ]; then
    step memcheck "${T_MEMCHECK:-90}" "$OUT/test.log" env RI_TEST_CONV=dw "$SANITIZER" --tool memcheck \
      --error-exitcode 3 "$BUILD/test_cuda_conv"
    grep -E 'ERROR SUMMARY' "$OUT/test.log" | sed 's/^/memcheck: /' >>"$SUMMARY"
  else
    echo "memcheck   SKIPPED (no compute-sanitizer)" | tee -a "$SUMMARY"
  fi
fi
if dw_has inv; then
  for v in $vars; do
    step "ops-v$v" "${T_TEST:-60}" "$OUT/test.log" env RI_CUDA_DW_TACTICS="$v" "$BUILD/test_cuda_ops" "$MODELS" \
      "${ops_models[@]}"
    step "inv-v$v" "${T_INVTEST:-40}" "$OUT/test.log" env RI_CUDA_DW_TACTICS="$v" RI_TEST_PREC=fp16 \
      "$BUILD/test_cuda_batch_invariance" "$MODELS" ssd_mobilenet_v2
  done
  if [ "$inv_tuned" = 1 ]; then
    step inv-tuned "${T_INVTEST:-40}" "$OUT/test.log" env RI_TEST_PREC=fp16 \
      "$BUILD/test_cuda_batch_invariance" "$MODELS" ssd_mobilenet_v2
  fi
fi
test_verdicts
if dw_has ab; then
  step ab "${T_AB:-$t_ab}" "$OUT/ab.log" env AB_SETTINGS="${AB_SETTINGS:-$ab_def}" AB_PREC=fp16 \
    AB_BATCHES="${AB_BATCHES:-$ab_batches}" AB_ROUNDS="${AB_ROUNDS:-2}" AB_PROFILE="${AB_PROFILE:-1}" \
    OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" bash "$ROOT/scripts/gpu/ab-bench.sh"
  # each variant forced in every layer it applies to: its per-node times where the tuner did not take it
  if [ -n "$ab_forced" ]; then
    step ab-forced "${T_ABF:-60}" "$OUT/ab.log" env AB_SETTINGS="$ab_forced" AB_PREC=fp16 AB_BATCHES=256 \
      AB_ROUNDS=1 AB_PROFILE=1 OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" bash "$ROOT/scripts/gpu/ab-bench.sh"
  fi
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
