#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the depthwise
# shared-memory variants (k_dwconv_smem.cu, variants RI__CU_DW_SMEM_FIRST = 4 and 5 of k_dwconv.cu; 6 and 7
# when this script was written, see scripts/gpu/dw2-run.sh for the persistent 6 and 7) checked and measured,
# about 150 s after the build.
#   build.log     device-run.sh's build and model generation (build_and_models)
#   test.log      tests/gpu/test_cuda_conv (every depthwise variant, 4 and 5 included, against the reference
#                 and bit for bit against variant 0), compute-sanitizer memcheck of its depthwise cases alone
#                 (RI_TEST_CONV=dw), then with variant 4, then 5, forced wherever it applies
#                 (RI_CUDA_DW_TACTICS=N): test_cuda_ops on ssd_mobilenet_v2 and mobilenet_v2 (against the CPU
#                 engine) and test_cuda_batch_invariance fp16 on ssd_mobilenet_v2; then the latter with the
#                 default (tuned) choice
#   ab.log, ab.jsonl  scripts/gpu/ab-bench.sh fp16, AB_SETTINGS='old=RI_CUDA_DW_SMEM:0 new=' (old: the tuner
#                 chooses among variants 0..3 only; new: 0..7), batches 1,64,256 (an engine of maximum batch
#                 256), 2 rounds, per-node profile (the dwconv rows name the variants chosen per bucket);
#                 then batch 256 with variant 4, then 5, forced wherever it applies (1 round, profile)
#   summary.txt   step lines, test verdicts, A/B result lines
# Environment: DWSM_STEPS (default build,conv,memcheck,inv,ab), OUT, ab-bench.sh's AB_* variables, the
# step limits T_CONVTEST, T_MEMCHECK, T_TEST, T_INVTEST, T_AB, T_ABF. Expected: build ~110 s, then about
# 150 s (conv ~20, memcheck ~20, forced ops and invariance ~6 each, A/B ~50, forced A/B ~25).
# The device call (a tool `run` with carry [".deps"], timeout_s 420): bash scripts/gpu/dwsm-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
DWSM_STEPS=${DWSM_STEPS:-build,conv,memcheck,inv,ab}
dwsm_has() { case ",$DWSM_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
dwsm_has build && build_and_models
dwsm_has conv && step convtest "${T_CONVTEST:-60}" "$OUT/test.log" "$BUILD/test_cuda_conv"
if dwsm_has memcheck; then
  if [ -n "$SANITIZER" ]; then
    step memcheck "${T_MEMCHECK:-90}" "$OUT/test.log" env RI_TEST_CONV=dw "$SANITIZER" --tool memcheck \
      --error-exitcode 3 "$BUILD/test_cuda_conv"
    grep -E 'ERROR SUMMARY' "$OUT/test.log" | sed 's/^/memcheck: /' >>"$SUMMARY"
  else
    echo "memcheck   SKIPPED (no compute-sanitizer)" | tee -a "$SUMMARY"
  fi
fi
if dwsm_has inv; then
  for v in 4 5; do
    step "ops-v$v" "${T_TEST:-60}" "$OUT/test.log" env RI_CUDA_DW_TACTICS=$v "$BUILD/test_cuda_ops" "$MODELS" \
      ssd_mobilenet_v2 mobilenet_v2
    step "inv-v$v" "${T_INVTEST:-40}" "$OUT/test.log" env RI_CUDA_DW_TACTICS=$v RI_TEST_PREC=fp16 \
      "$BUILD/test_cuda_batch_invariance" "$MODELS" ssd_mobilenet_v2
  done
  step inv-tuned "${T_INVTEST:-40}" "$OUT/test.log" env RI_TEST_PREC=fp16 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS" ssd_mobilenet_v2
fi
test_verdicts
if dwsm_has ab; then
  step ab "${T_AB:-150}" "$OUT/ab.log" env AB_SETTINGS="${AB_SETTINGS:-old=RI_CUDA_DW_SMEM:0 new=}" \
    AB_PREC=fp16 AB_BATCHES="${AB_BATCHES:-1,64,256}" AB_ROUNDS="${AB_ROUNDS:-2}" AB_PROFILE="${AB_PROFILE:-1}" \
    OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" bash "$ROOT/scripts/gpu/ab-bench.sh"
  # each new variant forced in every layer it applies to: its per-node times where the tuner did not take it
  step ab-forced "${T_ABF:-60}" "$OUT/ab.log" env AB_SETTINGS="v4=RI_CUDA_DW_TACTICS:4 v5=RI_CUDA_DW_TACTICS:5" \
    AB_PREC=fp16 AB_BATCHES=256 AB_ROUNDS=1 AB_PROFILE=1 OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" \
    bash "$ROOT/scripts/gpu/ab-bench.sh"
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
