#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the stem's
# variant 4 (k_stemconv_tcp.cu: variant 3's tensor-core arithmetic behind a 3-stage, 16-byte cp.async
# pipeline) checked and timed against variant 3 in one run of about 150 s after the build.
#   build.log    device-run.sh's build and model generation (build_and_models)
#   test.log     tests/gpu/test_cuda_conv (every stem variant against the reference; variant 4 bit for bit
#                against variant 3), then with variant 4 forced (RI_CUDA_STEM_TACTICS=4): test_cuda_ops on
#                ssd_mobilenet_v2 and test_cuda_batch_invariance fp16, then `runinfer inspect` of a default
#                fp16 build of maximum batch 256 (the stem's line: the variants the tuner chose)
#   ab.log       scripts/gpu/ab-bench.sh, fp16, batches 1,64,256 (one engine of maximum batch 256) with the
#                per-node profile, AB_SETTINGS 'v3=RI_CUDA_STEM_TACTICS:3 v4=RI_CUDA_STEM_TACTICS:4 tuned='
#                alternating over AB_ROUNDS (default 2) rounds (ab.jsonl: the same as JSON)
#   summary.txt  the step lines, test verdicts, the stem rows of the profiles
# Optional last step (STEMX_STEPS containing memcheck): compute-sanitizer memcheck of test_cuda_conv into
# test.log (about a minute; the copies of variant 4 near image edges).
# Environment: STEMX_STEPS (default build,conv,forced,inspect,ab), OUT, ab-bench.sh's AB_* variables.
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
STEMX_STEPS=${STEMX_STEPS:-build,conv,forced,inspect,ab}
stemx_has() { case ",$STEMX_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
stemx_has build && build_and_models
if stemx_has conv; then
  step convtest "${T_CONVTEST:-60}" "$OUT/test.log" "$BUILD/test_cuda_conv"
  {
    grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/test.log" | sed 's/^/conv: /'
    grep -E '^FAIL' "$OUT/test.log" | head -20
    grep -E '^PASS stemconv .*variant 4/' "$OUT/test.log" | head -4
  } >>"$SUMMARY"
fi
if stemx_has forced; then
  step ops-v4 "${T_OPS:-60}" "$OUT/test.log" env RI_CUDA_STEM_TACTICS=4 "$BUILD/test_cuda_ops" "$MODELS" \
    ssd_mobilenet_v2
  step inv-v4 "${T_INV:-60}" "$OUT/test.log" env RI_CUDA_STEM_TACTICS=4 RI_TEST_PREC=fp16 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS" ssd_mobilenet_v2
  {
    grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/test.log" | sed 's/^/test: /'
    grep -E '^FAIL' "$OUT/test.log" | head -20
  } >>"$SUMMARY"
fi
if stemx_has inspect; then
  step inspect 60 "$OUT/test.log" bash -c "\"$BUILD/runinfer\" build --onnx \"$MODELS/ssd_mobilenet_v2.onnx\" \
    --save /tmp/stemx.rie --device cuda --precision fp16 --max-batch 256 && \"$BUILD/runinfer\" inspect /tmp/stemx.rie"
  grep -m2 -E 'stem_direct' "$OUT/test.log" | sed 's/^ */inspect: /' >>"$SUMMARY"
fi
if stemx_has ab; then
  step ab "${T_AB256:-200}" "$OUT/ab.log" env \
    AB_SETTINGS="${AB_SETTINGS:-v3=RI_CUDA_STEM_TACTICS:3 v4=RI_CUDA_STEM_TACTICS:4 tuned=}" AB_PREC=fp16 \
    AB_BATCHES="${AB_BATCHES:-1,64,256}" AB_PROFILE="${AB_PROFILE:-1}" AB_ROUNDS="${AB_ROUNDS:-2}" \
    OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" bash "$ROOT/scripts/gpu/ab-bench.sh"
  {
    echo "-- stem rows of the profiles, in order (round x setting x batch 1,64,256)"
    grep -E 'stem_direct' "$OUT/ab.log" | sed 's/^ *//'
  } >>"$SUMMARY"
fi
if stemx_has memcheck; then
  if [ -n "$SANITIZER" ]; then
    step memcheck "${T_MEMCHECK:-120}" "$OUT/test.log" "$SANITIZER" --tool memcheck --error-exitcode 1 \
      "$BUILD/test_cuda_conv"
    grep -E 'ERROR SUMMARY' "$OUT/test.log" | sed 's/^/memcheck: /' >>"$SUMMARY"
  else
    echo "memcheck   SKIPPED (no compute-sanitizer)" >>"$SUMMARY"
  fi
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
