#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the fused
# expansion -> depthwise kernel (k_expdw.cu) alone, against the unfused kernels, about 60 s after the build.
#   build.log    device-run.sh's build and model generation
#   micro.log    tests/gpu/bench_expdw at batch 256 and 64 (expansion forms, depthwise variants, fused; bit
#                identity of the fused output with the unfused one), and under compute-sanitizer memcheck at
#                batch 2
#   summary.txt  step lines and the bench lines
#   ncu.txt      Nsight Compute of the fused kernel's first 4 launches at batch 256 (expanded_conv_1 and _2)
# Environment: EXPDWK_STEPS (default build,micro,memcheck,ncu), OUT, T_MICRO, T_MEMCHECK, T_NCU.
# The device call (a tool `run` with carry [".deps"], timeout_s 420): bash scripts/gpu/expdwk-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
EXPDWK_STEPS=${EXPDWK_STEPS:-build,micro,memcheck,ncu}
ek_has() { case ",$EXPDWK_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
ek_has build && build_and_models
if ek_has micro; then
  step micro256 "${T_MICRO:-120}" "$OUT/micro.log" "$BUILD/bench_expdw" --batch 256 --reps 20
  step micro64 "${T_MICRO:-120}" "$OUT/micro.log" "$BUILD/bench_expdw" --batch 64 --reps 20
  grep -E '^(expanded|FAIL|bench_expdw)' "$OUT/micro.log" >>"$SUMMARY"
fi
if ek_has memcheck; then
  if [ -n "$SANITIZER" ]; then
    step memcheck "${T_MEMCHECK:-120}" "$OUT/micro.log" "$SANITIZER" --tool memcheck --error-exitcode 3 \
      "$BUILD/bench_expdw" --batch 2 --reps 1
    grep -E 'ERROR SUMMARY' "$OUT/micro.log" | sed 's/^/memcheck: /' >>"$SUMMARY"
  else
    echo "memcheck   SKIPPED (no compute-sanitizer)" | tee -a "$SUMMARY"
  fi
fi
if ek_has ncu; then
  NCU_BIN=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
  step ncu "${T_NCU:-240}" "$OUT/ncu.txt" "$NCU_BIN" -k regex:expdw_kernel -c 4 --section SpeedOfLight \
    --section WarpStateStats --section Occupancy --section SchedulerStats --section LaunchStats \
    --section MemoryWorkloadAnalysis "$BUILD/bench_expdw" --batch 256 --reps 1
fi
