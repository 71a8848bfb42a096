#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the 3xTF32
# implicit GEMM of fp32 engines (k_convgemm_tf32.cu) checked and measured in one run.
#   build.log    dependency unpacking, configure, build, models
#   test.log     test_cuda_conv first (the new kernel against the double reference, its tactics bit for bit),
#                then every other GPU test as device-run.sh's test step runs them, then with the new kernel
#                forced in every fp32 GEMM node (RI_CUDA_F32_TF32=force): test_cuda_ops,
#                test_cuda_batch_invariance (fp32) and test_cuda_branches
#   bench.log, bench.jsonl   tests/gpu/bench_cuda fp32 on ssd_mobilenet_v2 with the per-node profile:
#                before (RI_CUDA_F32_TF32=0: the tuner does not offer the kernel) and after (default) at
#                batches 1,8,64,256, and forced at 1,256; then the peers step's runinfer rows
#   peers.log, peers.json    bench/gpu_peers.sh with PEER_SCRIPT and PEER_ARGS
#   memcheck.log compute-sanitizer memcheck on test_cuda_conv's 3xTF32 cases (RI_TEST_CONV=3xtf32)
#   summary.txt  step lines, test verdicts, benchmark and peer lines
# Measurements come right after the new kernel's own test, before the longer tests, so that a run cut
# short still has them; memcheck is last. Environment: TF32_STEPS (default
# build,conv,bench,test,force,peers,memcheck), TF32_SECONDS (default 1), PEER_SCRIPT, PEER_ARGS, OUT.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
# shellcheck source=device-run.sh
source scripts/gpu/device-run.sh
TF32_STEPS=${TF32_STEPS:-build,conv,bench,test,force,peers,memcheck}
TF32_SECONDS=${TF32_SECONDS:-1}
tf_has() { case ",$TF32_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
tf_has build && build_and_models
if tf_has conv; then
  step convtest "${T_CONVTEST:-60}" "$OUT/test.log" "$BUILD/test_cuda_conv"
fi
if tf_has bench; then
  rm -f "$OUT/bench.jsonl"
  m="$MODELS/ssd_mobilenet_v2.onnx"
  echo "== before: RI_CUDA_F32_TF32=0" >>"$OUT/bench.log"
  echo '{"RI_CUDA_F32_TF32": "0"}' >>"$OUT/bench.jsonl"
  step bench-off "${T_BENCH:-60}" "$OUT/bench.log" env RI_CUDA_F32_TF32=0 "$BUILD/bench_cuda" "$m" \
    --precisions fp32 --batches 1,8,64,256 --seconds "$TF32_SECONDS" --profile --json "$OUT/bench.jsonl"
  echo "== after: default (the 3xTF32 kernel offered to the tuner)" >>"$OUT/bench.log"
  echo '{"RI_CUDA_F32_TF32": "1"}' >>"$OUT/bench.jsonl"
  step bench-on "${T_BENCH:-60}" "$OUT/bench.log" "$BUILD/bench_cuda" "$m" --precisions fp32 \
    --batches 1,8,64,256 --seconds "$TF32_SECONDS" --profile --json "$OUT/bench.jsonl"
  echo "== forced: RI_CUDA_F32_TF32=force (every fp32 GEMM node on 3xTF32)" >>"$OUT/bench.log"
  echo '{"RI_CUDA_F32_TF32": "force"}' >>"$OUT/bench.jsonl"
  step bench-frc "${T_BENCH:-60}" "$OUT/bench.log" env RI_CUDA_F32_TF32=force "$BUILD/bench_cuda" "$m" \
    --precisions fp32 --batches 1,256 --seconds "$TF32_SECONDS" --profile --json "$OUT/bench.jsonl"
  grep -E '^(== |fp32 )' "$OUT/bench.log" >>"$SUMMARY"
fi
tf_has test && { if tf_has conv; then gpu_tests convtest; else gpu_tests; fi; }
if tf_has force; then
  step ops-tf32 "${T_TEST:-150}" "$OUT/test.log" env RI_CUDA_F32_TF32=force "$BUILD/test_cuda_ops" "$MODELS"
  step inv-tf32 "${T_INVTEST:-90}" "$OUT/test.log" env RI_CUDA_F32_TF32=force RI_TEST_PREC=fp32 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS"
  step br-tf32 "${T_BRTEST:-60}" "$OUT/test.log" env RI_CUDA_F32_TF32=force "$BUILD/test_cuda_branches" "$MODELS"
fi
if tf_has peers && [ -n "${PEER_SCRIPT:-}" ] && [ -f "$PEER_SCRIPT" ]; then
  echo '{"peers": "runinfer on the peer export, default kernels"}' >>"$OUT/bench.jsonl"
  step peers "${T_PEERS:-200}" "$OUT/peers.log" env OUT="$OUT" BUILD="$BUILD" "$ROOT/bench/gpu_peers.sh" \
    "$PEER_SCRIPT"
  grep -E '^(\| torch|fp(16|32) +batch|== )' "$OUT/peers.log" >>"$SUMMARY"
fi
if tf_has memcheck; then
  if [ -n "$SANITIZER" ]; then
    step memcheck "${T_MEMCHECK:-90}" "$OUT/memcheck.log" env RI_TEST_CONV=3xtf32 "$SANITIZER" --tool memcheck \
      --error-exitcode 3 --leak-check full "$BUILD/test_cuda_conv"
  else
    echo "memcheck   SKIPPED (no compute-sanitizer)" | tee -a "$SUMMARY"
  fi
fi
{
  grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/test.log" 2>/dev/null | sed 's/^/test: /'
  grep -E '^FAIL' "$OUT/test.log" 2>/dev/null | head -30
  grep -E 'ERROR SUMMARY|^[0-9]+ passed' "$OUT/memcheck.log" 2>/dev/null | sed 's/^/memcheck: /'
} >>"$SUMMARY"
cat "$SUMMARY"
exit "$FAILED"
