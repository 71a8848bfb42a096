#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried, peer_bench.py in
# it): session 12's first two device calls, checking and measuring the four prototypes merged for trial
# (half2 depthwise + k_expdw's half2 stage under RI_CUDA_DW_HALF=1; the scatter on a template activation;
# the wide pointwise plan of two blocks per SM; the stem's packed-half ReLU6) together with main's unrun
# refusal checks.
#   S12_STEPS=check (call 1): build, models, test_cuda_conv (full: stem epilogue bit checks, pointwise limits,
#     wide form under both plans), test_cuda_ltconv (scatter per activation, refusals), test_cuda_expdw with
#     RI_TEST_EXPDW_H2=only, test_cuda_dwh2, test_cuda_ops / batch invariance with RI_CUDA_DW_HALF=1 on the
#     SSD models, test_cuda_ops with the stem's variant 4 forced, memcheck of the dwh2 and expdw-h2 kernel cases
#   S12_STEPS=measure (call 2): build, bench_ltpad (scatter with and without sigmoid, element loads),
#     bench_pwconv --set wide under both plans, bench_expdw --proj --h2, bench_dwh2, then ab-bench.sh on the
#     peer's exported SSD, fp16, batches 1,64,256: old (all three default-on changes off) / new / dwh
#     (RI_CUDA_DW_HALF=1), AB_ROUNDS rounds (default 2), per-node profile
# Output: summary.txt plus the logs named in each step line.
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
S12_STEPS=${S12_STEPS:-check}
s12_has() { case ",$S12_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
unset RI_CUDA_DW_HALF
if s12_has check; then
  build_and_models
  step convtest "${T_CONVTEST:-90}" "$OUT/test.log" "$BUILD/test_cuda_conv"
  step pwwide-old 60 "$OUT/test.log" env RI_TEST_CONV=pwwide RI_CUDA_PW_WIDE_PLAN=old "$BUILD/test_cuda_conv"
  step lttest 90 "$OUT/test.log" "$BUILD/test_cuda_ltconv"
  step expdwh2 180 "$OUT/test.log" env RI_TEST_EXPDW_H2=only "$BUILD/test_cuda_expdw" "$MODELS"
  step dwhtest 120 "$OUT/test.log" "$BUILD/test_cuda_dwh2" "$MODELS"
  step ops-dwh 150 "$OUT/test.log" env RI_CUDA_DW_HALF=1 "$BUILD/test_cuda_ops" "$MODELS" ssd_mobilenet_v2 \
    ssd_mobilenet_v2_nhwc
  step inv-dwh 120 "$OUT/test.log" env RI_CUDA_DW_HALF=1 RI_TEST_PREC=fp16 "$BUILD/test_cuda_batch_invariance" \
    "$MODELS" ssd_mobilenet_v2 ssd_mobilenet_v2_nhwc
  step ops-v4 60 "$OUT/test.log" env RI_CUDA_STEM_TACTICS=4 "$BUILD/test_cuda_ops" "$MODELS" ssd_mobilenet_v2
  if [ -n "$SANITIZER" ]; then
    step mc-dwh2 150 "$OUT/test.log" "$SANITIZER" --tool memcheck --error-exitcode 3 --leak-check full \
      "$BUILD/test_cuda_dwh2"
    step mc-xh2 150 "$OUT/test.log" env RI_TEST_EXPDW=quick RI_TEST_EXPDW_H2=only "$SANITIZER" --tool memcheck \
      --error-exitcode 3 --leak-check full "$BUILD/test_cuda_expdw"
    grep -E 'ERROR SUMMARY' "$OUT/test.log" | sed 's/^/memcheck: /' >>"$SUMMARY"
  fi
  {
    grep -E '^(PASS|FAIL) scatter act' "$OUT/test.log" | head -14
    grep -E '^(PASS|FAIL) stemconv .*act=2 .*output=f16 variant [34]/' "$OUT/test.log" | head -8
  } >>"$SUMMARY"
  test_verdicts
fi
if s12_has measure; then
  step build "${T_BUILD:-240}" "$OUT/build.log" configure_and_build
  PEER_ONNX=/tmp/peer_ssd.onnx
  step export 120 "$OUT/build.log" python3 "$ROOT/.deps/peer_bench.py" --cbatches 1 --export "$PEER_ONNX"
  step scatter 40 "$OUT/scatter.log" "$BUILD/bench_ltpad" --batches 256
  step scatter-sig 40 "$OUT/scatter.log" "$BUILD/bench_ltpad" --batches 256 --act sigmoid
  step scatter-el 40 "$OUT/scatter.log" env RI_CUDA_SCATTER_VEC=0 "$BUILD/bench_ltpad" --batches 256 --act sigmoid
  grep -E '^== |ClassPredictor|FAIL' "$OUT/scatter.log" >>"$SUMMARY"
  step pwbench 60 "$OUT/pw.log" "$BUILD/bench_pwconv" --batch 256 --reps 10 --set wide
  step pwbench-old 60 "$OUT/pw.log" env RI_CUDA_PW_WIDE_PLAN=old "$BUILD/bench_pwconv" --batch 256 --reps 10 \
    --set wide
  grep -E '^(== |expanded[^ ]* +(tiled|form)|FAIL)' "$OUT/pw.log" >>"$SUMMARY"
  step bexpdw 120 "$OUT/bench.log" "$BUILD/bench_expdw" --batch 256 --proj --h2
  step bdwh2 120 "$OUT/bench.log" "$BUILD/bench_dwh2" --batch 256
  grep -E '^(expanded_conv|FAIL|bench_)' "$OUT/bench.log" | sed 's/^/bench: /' >>"$SUMMARY"
  step ab 300 "$OUT/ab.log" env \
    AB_SETTINGS="${AB_SETTINGS:-old=RI_CUDA_SCATTER_VEC:0,RI_CUDA_PW_WIDE_PLAN:old,RI_CUDA_STEM_H2EPI:0 new= dwh=RI_CUDA_DW_HALF:1}" \
    AB_MODEL="$PEER_ONNX" AB_ROUNDS="${AB_ROUNDS:-2}" AB_BATCHES="${AB_BATCHES:-1,64,256}" AB_PREC=fp16 \
    AB_PROFILE=1 RI_BENCH_TOP=200 OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" bash "$ROOT/scripts/gpu/ab-bench.sh"
  ab_profile_lines 'stem|ClassPredictor|expanded_conv_1[4-6]/expand|dwconv_h2|expdw|dwproj'
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
