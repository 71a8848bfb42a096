#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the checks of
# the fp16 pointwise kernel (k_pwconv.cu) and its before/after benchmark, in one run.
#   test.log     tests/gpu/test_cuda_conv (own kernels against the CPU reference; the pointwise kernel also
#                bit for bit against the tiled one), test_cuda_ops on every model with the pointwise kernel
#                forced where it applies (RI_CUDA_PWCONV=force), test_cuda_batch_invariance fp16 with it
#                forced and with the default (timed) choice, test_cuda_tactics
#   memcheck.log compute-sanitizer --tool memcheck on test_cuda_conv (FP16_STEPS with memcheck)
#   bench.log, bench.jsonl   tests/gpu/bench_cuda fp16 on ssd_mobilenet_v2 at FP16_BATCHES with --profile:
#                first RI_CUDA_PWCONV=0 (before: the tuner does not offer the pointwise kernel), then the
#                default
#   peers.log, peers.json    bench/gpu_peers.sh (FP16_STEPS with peers and PEER_SCRIPT set)
#   summary.txt  device-run.sh's step lines
# Environment: FP16_STEPS (default build,test,memcheck,bench), FP16_BATCHES (default 1,8,64,256),
# FP16_SECONDS (default 1.5), OUT.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
# shellcheck source=device-run.sh
source scripts/gpu/device-run.sh
FP16_STEPS=${FP16_STEPS:-build,test,memcheck,bench}
FP16_BATCHES=${FP16_BATCHES:-1,8,64,256}
FP16_SECONDS=${FP16_SECONDS:-1.5}
fp_has() { case ",$FP16_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader >>"$SUMMARY" 2>&1 || true
if fp_has build; then
  step build "${T_BUILD:-200}" "$OUT/build.log" configure_and_build
  step models "${T_MODELS:-60}" "$OUT/build.log" python3 "$ROOT/models/make_models.py" --out "$MODELS" --reuse
fi
if fp_has test; then
  step convtest 60 "$OUT/test.log" "$BUILD/test_cuda_conv"
  step ops-pwforce 120 "$OUT/test.log" env RI_CUDA_PWCONV=force "$BUILD/test_cuda_ops" "$MODELS"
  step inv-pwforce 90 "$OUT/test.log" env RI_CUDA_PWCONV=force RI_TEST_PREC=fp16 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS"
  step inv 90 "$OUT/test.log" env RI_TEST_PREC=fp16 "$BUILD/test_cuda_batch_invariance" "$MODELS"
  step tactest 120 "$OUT/test.log" "$BUILD/test_cuda_tactics" "$MODELS"
fi
if fp_has memcheck && [ -n "$SANITIZER" ]; then
  step memcheck 120 "$OUT/memcheck.log" "$SANITIZER" --tool memcheck --error-exitcode 3 --leak-check full \
    "$BUILD/test_cuda_conv"
fi
if fp_has bench; then
  rm -f "$OUT/bench.jsonl"
  for setting in 0 default; do
    echo "== RI_CUDA_PWCONV=$setting" >>"$OUT/bench.log"
    echo "{\"RI_CUDA_PWCONV\": \"$setting\"}" >>"$OUT/bench.jsonl"
    env_args=()
    [ "$setting" = 0 ] && env_args=(RI_CUDA_PWCONV=0)
    step "bench-pw-$setting" 150 "$OUT/bench.log" env "${env_args[@]}" "$BUILD/bench_cuda" \
      "$MODELS/ssd_mobilenet_v2.onnx" --precisions fp16 --batches "$FP16_BATCHES" --seconds "$FP16_SECONDS" \
      --profile --json "$OUT/bench.jsonl"
  done
  grep -E '^(== |fp16 )' "$OUT/bench.log" >>"$SUMMARY"
fi
if fp_has peers && [ -n "${PEER_SCRIPT:-}" ]; then
  step peers "${T_PEERS:-200}" "$OUT/peers.log" env OUT="$OUT" BUILD="$BUILD" "$ROOT/bench/gpu_peers.sh" "$PEER_SCRIPT"
fi
{
  echo "---"
  [ -f "$OUT/test.log" ] && grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/test.log" | sed 's/^/test: /'
  [ -f "$OUT/test.log" ] && grep '^FAIL' "$OUT/test.log" | head -20
  [ -f "$OUT/memcheck.log" ] && grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | sed 's/^/memcheck: /'
} >>"$SUMMARY" 2>/dev/null
cat "$SUMMARY"
exit $FAILED
