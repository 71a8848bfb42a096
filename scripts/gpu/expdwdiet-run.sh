#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): k_expdw.cu with
# fewer non-FMA instructions per output (branch expdwdiet: the halo copies step instead of dividing, the
# depthwise taps chunk-major) checked and measured against the kernel of main, in one device call.
# The old kernel: EXPDWDIET_OLD (default ./expdwdiet-old.cu, else `git show main:src/backend/cuda/k_expdw.cu`
# where the tree has its .git); make it before the call in the checkout that is sent:
#   git show main:src/backend/cuda/k_expdw.cu > expdwdiet-old.cu     (untracked, so it travels)
# The old binaries (bench_cuda, bench_expdw) are built in the same build directory with that file swapped in,
# copied aside, and the new file put back and rebuilt (both incremental: one .cu and two links).
#   build.log     device-run.sh's build and model generation (build_and_models), then the old binaries' build
#   test.log      tests/gpu/test_cuda_expdw with the models (bit for bit against the unfused kernels, engines
#                 fused against unfused), its quick cases under compute-sanitizer memcheck, then test_cuda_ops
#                 and fp16 test_cuda_batch_invariance on EXPDWDIET_MODELS (default rule, and RI_CUDA_EXPDW_DWP=0
#                 without the form that has no expansion)
#   bench.log     tests/gpu/bench_expdw --proj and --dwp at batch 256, new then old, alternating twice
#   ab.log, ab.jsonl  bench_cuda fp16 on ssd_mobilenet_v2, batches AB_BATCHES (default 64,256), --profile,
#                 AB_ROUNDS (default 2) rounds of: old, new, old-nodwp, new-nodwp (the last two with
#                 RI_CUDA_EXPDW_DWP=0, the first block unfused; its first run, 2026-11-27 22:40, had the
#                 form off by default and ran old, new, old-dwp, new-dwp with RI_CUDA_EXPDW_DWP=1)
#   summary.txt   step lines, test verdicts, memcheck's summary, bench result lines, A/B result lines, then
#                 from the batch-256 profiles ("b256 ROUND SETTING: " lines): the profile's total and the
#                 expdw_f16 / dwproj_f16 node lines
# Environment: EXPDWDIET_STEPS (default build,old,test,memcheck,ops,bench,ab), EXPDWDIET_MODELS (default
# "ssd_mobilenet_v2 mobilenet_v2"), OUT, AB_BATCHES, AB_ROUNDS, the step limits T_OLD, T_EXPDWTEST,
# T_MEMCHECK, T_OPS, T_INV, T_BENCH, T_AB (each A/B run).
# Expected (not yet run; dwproj-run.sh's steps on the H200: build 105 s, test 2 s, memcheck 2 s, ops /
# invariance 3 s, bench 3 s, A/B runs 5-6 s): build ~110 s, old binaries 2 x 30-60 s, test + memcheck ~20 s,
# ops + invariance 2 x ~10 s, bench 8 x ~4 s, A/B 8 runs ~45 s: about 5 minutes. Should it run past the
# call's limit, split it over two calls on the same warm machine:
#   run (carry [".deps"], timeout_s 600): EXPDWDIET_STEPS=build,test,memcheck,ops bash scripts/gpu/expdwdiet-run.sh
#   run (carry [".deps"], timeout_s 600): EXPDWDIET_STEPS=build,old,bench,ab bash scripts/gpu/expdwdiet-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
EXPDWDIET_STEPS=${EXPDWDIET_STEPS:-build,old,test,memcheck,ops,bench,ab}
EXPDWDIET_MODELS=${EXPDWDIET_MODELS:-ssd_mobilenet_v2 mobilenet_v2}
ed_has() { case ",$EXPDWDIET_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
OLDBIN=${OLDBIN:-/tmp/expdwdiet-old}
KFILE=$ROOT/src/backend/cuda/k_expdw.cu
setup_env
ed_has build && build_and_models
unset RI_CUDA_EXPDW RI_CUDA_EXPDW_PROJ RI_CUDA_EXPDW_DWP

# old_binaries: bench_cuda and bench_expdw with main's k_expdw.cu, into $OLDBIN; the new file put back and
# the two rebuilt, whatever happens.
# shellcheck disable=SC2317 # run through step(), in a child bash
old_binaries() {
  set -e
  local old=${EXPDWDIET_OLD:-$ROOT/expdwdiet-old.cu} saved=/tmp/expdwdiet-new-k_expdw.cu
  mkdir -p "$OLDBIN"
  if [ ! -f "$old" ]; then
    old=/tmp/expdwdiet-old.cu
    git -C "$ROOT" show "${EXPDWDIET_BASE:-main}:src/backend/cuda/k_expdw.cu" >"$old" ||
      { echo "no old kernel: make expdwdiet-old.cu (see the script's head)"; return 2; }
  fi
  cmp -s "$old" "$KFILE" && echo "warning: the old kernel is the new one"
  cp "$KFILE" "$saved"
  trap 'cp "$saved" "$KFILE"; touch "$KFILE"' EXIT INT TERM
  cp "$old" "$KFILE"
  touch "$KFILE"
  cmake --build "$BUILD" -j"$JOBS" --target bench_cuda bench_expdw
  cp "$BUILD/bench_cuda" "$BUILD/bench_expdw" "$OLDBIN/"
  cp "$saved" "$KFILE"
  touch "$KFILE"
  trap - EXIT INT TERM
  cmake --build "$BUILD" -j"$JOBS" --target bench_cuda bench_expdw
  echo "old binaries in $OLDBIN; k_expdw.cu restored ($(md5sum <"$KFILE" | cut -c1-12))"
}
if ed_has old; then
  export OLDBIN KFILE EXPDWDIET_OLD EXPDWDIET_BASE ROOT BUILD JOBS
  step old "${T_OLD:-200}" "$OUT/build.log" old_binaries
fi
if ed_has test; then
  step expdwtest "${T_EXPDWTEST:-150}" "$OUT/test.log" "$BUILD/test_cuda_expdw" "$MODELS"
fi
ed_has memcheck && expdw_memcheck_step
if ed_has ops; then
  # shellcheck disable=SC2086 # EXPDWDIET_MODELS is a list of model names
  step ops "${T_OPS:-150}" "$OUT/test.log" "$BUILD/test_cuda_ops" "$MODELS" $EXPDWDIET_MODELS
  # shellcheck disable=SC2086
  step inv "${T_INV:-120}" "$OUT/test.log" env RI_TEST_PREC=fp16 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS" $EXPDWDIET_MODELS
  # shellcheck disable=SC2086
  step inv-nodwp "${T_INV:-120}" "$OUT/test.log" env RI_TEST_PREC=fp16 RI_CUDA_EXPDW_DWP=0 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS" $EXPDWDIET_MODELS
fi
if ed_has bench; then
  for r in 1 2; do
    for v in new old; do
      bin=$BUILD/bench_expdw
      [ "$v" = old ] && bin=$OLDBIN/bench_expdw
      for m in --proj --dwp; do
        echo "## bench $r $v $m" >>"$OUT/bench.log"
        step "bench-$v$m-$r" "${T_BENCH:-90}" "$OUT/bench.log" "$bin" "$m"
      done
    done
  done
  awk '/^## bench/ { run = $3 " " $4 " " $5; next }
       /^(expanded_conv|SKIP|FAIL|bench_expdw)/ { print "bench " run ": " $0 }' "$OUT/bench.log" >>"$SUMMARY"
fi
test_verdicts
if ed_has ab; then
  for r in $(seq 1 "${AB_ROUNDS:-2}"); do
    for s in old new old-nodwp new-nodwp; do
      bin=$BUILD/bench_cuda
      case $s in old*) bin=$OLDBIN/bench_cuda ;; esac
      vars=()
      case $s in *-nodwp) vars=(RI_CUDA_EXPDW_DWP=0) ;; esac
      echo "== round $r $s ${vars[*]}" >>"$OUT/ab.log"
      echo "{\"setting\": \"$s\", \"env\": \"${vars[*]}\", \"round\": $r}" >>"$OUT/ab.jsonl"
      step "ab-$s-$r" "${T_AB:-90}" "$OUT/ab.log" env "${vars[@]}" RI_BENCH_TOP=200 "$bin" \
        "$MODELS/ssd_mobilenet_v2.onnx" --precisions fp16 --batches "${AB_BATCHES:-64,256}" --seconds 1 \
        --profile --json "$OUT/ab.jsonl"
    done
  done
  grep -E '^(== round|fp16 )' "$OUT/ab.log" >>"$SUMMARY"
  ab_profile_lines 'expdw_f16|dwproj_f16'
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
