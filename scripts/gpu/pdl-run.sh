#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): programmatic
# dependent launch (RI_CUDA_PDL, src/backend/cuda/cuda_pdl.cu) checked and measured in one run, within about
# 6 minutes (the build alone takes ~100 s).
#   PDL_STEPS  the parts, comma-separated (default build,test,memcheck,ab):
#     build     device-run.sh's build and reference models (build.log)
#     test      test_cuda_pdl with RI_CUDA_PDL=0 and =1 (the knob, and dependent chains eager and in graphs),
#               then with RI_CUDA_PDL=1: test_cuda_conv, test_cuda_irblock, test_cuda_ops (every model),
#               test_cuda_batch_invariance, test_cuda_branches, test_cuda_preprocess (test.log)
#     memcheck  compute-sanitizer memcheck with RI_CUDA_PDL=1 of test_cuda_irblock and test_cuda_ops on the
#               tiny models (memcheck.log)
#     ab        scripts/gpu/ab-bench.sh with AB_SETTINGS='off=RI_CUDA_PDL:0 on=RI_CUDA_PDL:1', 2 rounds: fp16
#               and fp32 at batch 1, 8, 64, 256 (one engine of max batch 256 per precision), then fp16 at
#               batch 1 alone (an engine of max batch 1, where the fused inverted-residual blocks run)
#               (ab.log, ab.jsonl); a line of the "on" setting that ran eagerly instead of as a CUDA graph
#               (a capture that failed with PDL on) fails the step
#   summary.txt  the step lines, the tests' verdicts and the A/B result lines
# Environment: PDL_STEPS, PDL_SECONDS (bench seconds per configuration, default 1), OUT.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
# shellcheck source=device-run.sh
source scripts/gpu/device-run.sh
PDL_STEPS=${PDL_STEPS:-build,test,memcheck,ab}
pdl_has() { case ",$PDL_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
pdl_has build && build_and_models

if pdl_has test; then
  step pdltest-off 60 "$OUT/test.log" env RI_CUDA_PDL=0 "$BUILD/test_cuda_pdl"
  # gpu_tests runs test_cuda_pdl with RI_CUDA_PDL=1 (its pdltest step) and the conformance tests; the
  # cuBLASLt, engine-build, out-of-memory and memory-plan tests are left out (time; test_cuda_ops runs
  # engines whose tuner may pick cuBLASLt next to the converted kernels).
  export RI_CUDA_PDL=1
  gpu_tests lttest tactest oomtest memtest
  unset RI_CUDA_PDL
fi

if pdl_has memcheck && [ -n "$SANITIZER" ]; then
  # shellcheck disable=SC2317 # run through step(), in a child bash
  pdl_memcheck() {
    local sc=("$SANITIZER" --tool memcheck --error-exitcode 3 --leak-check full)
    RI_CUDA_PDL=1 "${sc[@]}" "$BUILD/test_cuda_irblock" || return $?
    RI_CUDA_PDL=1 RI_CUDA_CONV_ALGO=heuristic "${sc[@]}" "$BUILD/test_cuda_ops" "$MODELS" tiny_conv tiny_ssd
  }
  export SANITIZER BUILD MODELS
  step memcheck 120 "$OUT/memcheck.log" pdl_memcheck
fi
test_verdicts

if pdl_has ab; then
  rc=0
  AB_SETTINGS='off=RI_CUDA_PDL:0 on=RI_CUDA_PDL:1' AB_BATCHES=1,8,64,256 AB_PREC=fp16,fp32 \
    AB_SECONDS=${PDL_SECONDS:-1} bash scripts/gpu/ab-bench.sh || rc=1
  # The second A/B names its settings off1/on1 (ab-bench.sh copies all of ab.log's result lines into the
  # summary at each call, so the first call's lines appear twice there).
  AB_SETTINGS='off1=RI_CUDA_PDL:0 on1=RI_CUDA_PDL:1' AB_BATCHES=1 AB_PREC=fp16 \
    AB_SECONDS=${PDL_SECONDS:-1} bash scripts/gpu/ab-bench.sh || rc=1
  # Every configuration of the "on" setting must have run as a CUDA graph.
  eager=$(awk '/^== round/ { on = ($4 == "on" || $4 == "on1") } on && /^fp(16|32) .*eager/' "$OUT/ab.log")
  if [ -n "$eager" ]; then
    echo "pdl-graph  FAILED: with RI_CUDA_PDL=1 these ran eagerly:" >>"$SUMMARY"
    echo "$eager" >>"$SUMMARY"
    rc=1
  fi
  [ $rc -ne 0 ] && FAILED=1
fi

cat "$SUMMARY"
exit "$FAILED"
