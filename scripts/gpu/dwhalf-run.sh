#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the
# half-arithmetic depthwise 3x3 kernel (k_dwconv_h2.cu, node dwconv_h2_f16) and its engine option
# RI_CUDA_DW_HALF=1 (cuda_op_conv.c; the builder's half accumulation) checked and measured in one device call.
#   build.log     device-run.sh's build and model generation (build_and_models)
#   test.log      tests/gpu/test_cuda_dwh2 with the models (the kernel against a double reference within
#                 9 * 2^-10 * (|bias| + sum |x w|) + 2^-20, every rx the same bits, batch invariance, NaN,
#                 refusals; SSD MobileNet v2 fp16 engines with the option against the CPU, the node names,
#                 batch 8 vs 1 bytes), then its kernel cases under compute-sanitizer memcheck, then with
#                 RI_CUDA_DW_HALF=1: test_cuda_ops and test_cuda_batch_invariance (fp16) on DWHALF_MODELS,
#                 then `runinfer build --half-accumulation` + `runinfer inspect --json` (the engine file names
#                 dwconv_h2_f16 nodes, also loaded with RI_CUDA_DW_HALF=0: the file keeps the choice)
#   bench.log     tests/gpu/bench_dwh2 at batch 256: every SSD MobileNet v2 depthwise shape, the fastest float
#                 variant against the half kernel at each rx, us, B/us and errors
#   ab.log, ab.jsonl  scripts/gpu/ab-bench.sh fp16, AB_SETTINGS (default 'off= on=RI_CUDA_DW_HALF:1'), batches
#                 AB_BATCHES (default 1,64,256), AB_ROUNDS (default 2) rounds, per-node profile (RI_BENCH_TOP=200)
#                 ("off" keeps the default fusions of the float depthwise into expdw / dwproj, which "on" never
#                 makes; for the depthwise arithmetic alone add a third setting with
#                 AB_SETTINGS='off= nofuse=RI_CUDA_EXPDW:0 on=RI_CUDA_DW_HALF:1', ~30 s more)
#   summary.txt   step lines, test verdicts, memcheck's summary, the bench lines, the A/B result lines, then
#                 the batch-256 profiles' totals and their dwconv / expdw / dwproj group and node lines
# Environment: DWHALF_STEPS (default build,test,memcheck,ops,inspect,bench,ab), DWHALF_MODELS (default
# "ssd_mobilenet_v2 ssd_mobilenet_v2_nhwc"), OUT, ab-bench.sh's AB_* variables, the step limits T_DWHTEST,
# T_MEMCHECK, T_OPS, T_INV, T_INSPECT, T_BENCH, T_ABALL (the whole A/B), T_AB (each A/B run).
# Expected (estimates from dwproj-run.sh's steps on the H200): build ~110 s, test ~20 s, memcheck ~30 s,
# ops + invariance ~20 s, inspect ~10 s, bench ~40 s (host-side data for 1.5 G input halves), A/B 4 runs
# ~60 s: about 5 minutes. Should it run past the call's limit, split it over two calls on the same warm
# machine (the second build is incremental, the models are reused):
#   run (carry [".deps"], timeout_s 600): DWHALF_STEPS=build,test,memcheck,ops,inspect bash scripts/gpu/dwhalf-run.sh
#   run (carry [".deps"], timeout_s 600): DWHALF_STEPS=build,bench,ab bash scripts/gpu/dwhalf-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
DWHALF_STEPS=${DWHALF_STEPS:-build,test,memcheck,ops,inspect,bench,ab}
DWHALF_MODELS=${DWHALF_MODELS:-ssd_mobilenet_v2 ssd_mobilenet_v2_nhwc}
dh_has() { case ",$DWHALF_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
dh_has build && build_and_models
unset RI_CUDA_DW_HALF # the default everywhere but where a step sets it
if dh_has test; then
  step dwhtest "${T_DWHTEST:-150}" "$OUT/test.log" "$BUILD/test_cuda_dwh2" "$MODELS"
fi
if dh_has memcheck; then
  if [ -n "$SANITIZER" ]; then # the kernel cases only (no models directory: no engines)
    step memcheck "${T_MEMCHECK:-150}" "$OUT/test.log" "$SANITIZER" --tool memcheck --error-exitcode 3 \
      --leak-check full "$BUILD/test_cuda_dwh2"
    grep -E 'ERROR SUMMARY' "$OUT/test.log" | sed 's/^/memcheck: /' >>"$SUMMARY"
  else
    echo "memcheck   SKIPPED (no compute-sanitizer)" | tee -a "$SUMMARY"
  fi
fi
if dh_has ops; then
  # shellcheck disable=SC2086 # DWHALF_MODELS is a list of model names
  step ops "${T_OPS:-150}" "$OUT/test.log" env RI_CUDA_DW_HALF=1 "$BUILD/test_cuda_ops" "$MODELS" $DWHALF_MODELS
  # shellcheck disable=SC2086
  step inv "${T_INV:-120}" "$OUT/test.log" env RI_CUDA_DW_HALF=1 RI_TEST_PREC=fp16 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS" $DWHALF_MODELS
fi
if dh_has inspect; then
  rie=/tmp/dwhalf-ssd-fp16.rie
  cli=$BUILD/runinfer
  [ -x "$cli" ] || cli=$(find "$BUILD" -maxdepth 2 -name runinfer -type f -perm -u+x | head -1)
  dwh_inspect() {
    "$cli" build --onnx "$MODELS/ssd_mobilenet_v2.onnx" --device cuda --precision fp16 --max-batch 8 \
      --half-accumulation --save "$rie" || return 1
    local on off
    on=$("$cli" inspect --json "$rie" | grep -o '"dwconv_h2_f16"' | wc -l)
    off=$(RI_CUDA_DW_HALF=0 "$cli" inspect --json "$rie" | grep -o '"dwconv_h2_f16"' | wc -l)
    echo "inspect: built with --half-accumulation: $on dwconv_h2_f16 nodes; loaded with RI_CUDA_DW_HALF=0: $off"
    [ "$on" -gt 0 ] && [ "$off" -eq "$on" ]
  }
  export cli rie MODELS
  step inspect "${T_INSPECT:-90}" "$OUT/test.log" dwh_inspect
  grep -E '^inspect: ' "$OUT/test.log" >>"$SUMMARY"
fi
if dh_has bench; then
  step bench "${T_BENCH:-150}" "$OUT/bench.log" "$BUILD/bench_dwh2" --batch 256
  grep -E '^(expanded_conv|FAIL|bench_dwh2)' "$OUT/bench.log" | sed 's/^/bench: /' >>"$SUMMARY"
fi
test_verdicts
if dh_has ab; then
  step ab "${T_ABALL:-300}" "$OUT/ab.log" env \
    AB_SETTINGS="${AB_SETTINGS:-off= on=RI_CUDA_DW_HALF:1}" AB_PREC=fp16 \
    AB_BATCHES="${AB_BATCHES:-1,64,256}" AB_ROUNDS="${AB_ROUNDS:-2}" AB_PROFILE="${AB_PROFILE:-1}" \
    RI_BENCH_TOP="${RI_BENCH_TOP:-200}" OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" \
    bash "$ROOT/scripts/gpu/ab-bench.sh"
  ab_profile_lines 'dwconv_h2_f16|dwconv_nhwc_f16|expdw_f16|dwproj_f16|fused_into_(expdw|dwproj)'
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
