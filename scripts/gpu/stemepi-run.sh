#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the stem's
# epilogue on packed halves (cu_stem_tc.cuh, variants 3 and 4: ReLU6 as min.NaN / signed 16-bit max on the
# converted half2 instead of a compare-and-branch per value) checked and timed against the float clip it
# replaces (RI_CUDA_STEM_H2EPI=0), in one call of about 5 minutes with the build.
#   build.log    device-run.sh's build and model generation (build_and_models)
#   test.log     tests/gpu/test_cuda_conv (every stem variant against the reference; variant 4 bit for bit
#                against variant 3; with ReLU6 and half output, variants 3 and 4 bit for bit against their
#                float clip), then with variant 4 forced (RI_CUDA_STEM_TACTICS=4) test_cuda_ops on
#                ssd_mobilenet_v2
#   ab.log       scripts/gpu/ab-bench.sh, fp16, batches 1,64,256 (one engine of maximum batch 256) with the
#                per-node profile (the stem's row: its time at batch 64 and 256), AB_SETTINGS
#                'old=RI_CUDA_STEM_TACTICS:4,RI_CUDA_STEM_H2EPI:0 new=RI_CUDA_STEM_TACTICS:4' alternating over
#                AB_ROUNDS (default 2) rounds (ab.jsonl: the same as JSON)
#   summary.txt  the step lines, test verdicts, the stem rows of the profiles
# Environment: STEMEPI_STEPS (default build,conv,ab,ops), OUT, ab-bench.sh's AB_* variables (AB_SETTINGS
# may add variant 3: 'old3=RI_CUDA_STEM_TACTICS:3,RI_CUDA_STEM_H2EPI:0 new3=RI_CUDA_STEM_TACTICS:3').
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
STEMEPI_STEPS=${STEMEPI_STEPS:-build,conv,ab,ops}
stemepi_has() { case ",$STEMEPI_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
stemepi_has build && build_and_models
if stemepi_has conv; then
  step convtest "${T_CONVTEST:-60}" "$OUT/test.log" "$BUILD/test_cuda_conv"
  {
    grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/test.log" | sed 's/^/conv: /'
    grep -E '^FAIL' "$OUT/test.log" | head -20
    echo "-- ReLU6 half-output lines of variants 3 and 4 (each also compared with its float clip)"
    grep -E '^(PASS|FAIL) stemconv .*act=2 .*output=f16 variant [34]/' "$OUT/test.log" | head -30
  } >>"$SUMMARY"
fi
if stemepi_has ab; then
  step ab "${T_AB:-150}" "$OUT/ab.log" env \
    AB_SETTINGS="${AB_SETTINGS:-old=RI_CUDA_STEM_TACTICS:4,RI_CUDA_STEM_H2EPI:0 new=RI_CUDA_STEM_TACTICS:4}" \
    AB_PREC=fp16 AB_BATCHES="${AB_BATCHES:-1,64,256}" AB_PROFILE="${AB_PROFILE:-1}" \
    AB_ROUNDS="${AB_ROUNDS:-2}" OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" bash "$ROOT/scripts/gpu/ab-bench.sh"
  {
    echo "-- stem rows of the profiles, in order (round x setting x batch 1,64,256)"
    grep -E '^== round|stem_direct' "$OUT/ab.log" | sed 's/^ *//'
  } >>"$SUMMARY"
fi
if stemepi_has ops; then
  step ops-v4 "${T_OPS:-60}" "$OUT/test.log" env RI_CUDA_STEM_TACTICS=4 "$BUILD/test_cuda_ops" "$MODELS" \
    ssd_mobilenet_v2
  {
    grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/test.log" | tail -1 | sed 's/^/ops: /'
    grep -E '^FAIL' "$OUT/test.log" | head -20
  } >>"$SUMMARY"
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
