#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the fused
# inverted-residual block's checks and its comparison with the unfused path, in one run.
#   irb.log      tests/gpu/test_cuda_irblock (the kernel against a CPU reference, batch and tile invariance)
#   ops.log      tests/gpu/test_cuda_ops with the fusion forced on (RI_CUDA_IRBLOCK=1; IRB_OPS_SETTING
#                changes it) on the models with inverted-residual blocks (all reference models with
#                IRB_OPS=all)
#   inv.log      tests/gpu/test_cuda_batch_invariance, fp16, fusion forced on (IRB_STEPS with inv)
#   memcheck.log compute-sanitizer --tool memcheck on test_cuda_irblock (IRB_STEPS with memcheck)
#   bench.log, bench.jsonl   tests/gpu/bench_cuda, fp16, on the reference ssd_mobilenet_v2 and on the peer's
#                export (.deps/peer_bench.py --export), per model: the fusion forced on (RI_CUDA_IRBLOCK=1)
#                and off (=0) in engines of max batch 256 at IRB_BATCHES, then the default policy and off in
#                engines of max batch 1, each with the per-node profile (--profile)
#   summary.txt  device-run.sh's step lines
# Environment: IRB_STEPS (default build,test,ops,bench), IRB_BATCHES (default 1,8,64,256), IRB_SECONDS
# (default 1), IRB_PROFILE (default 1: pass --profile), IRB_PEER (default 1: also the peer's model), OUT.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
# shellcheck source=device-run.sh
source scripts/gpu/device-run.sh
IRB_STEPS=${IRB_STEPS:-build,test,ops,bench}
IRB_BATCHES=${IRB_BATCHES:-1,8,64,256}
IRB_SECONDS=${IRB_SECONDS:-1}
irb_has() { case ",$IRB_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
irb_has build && build_and_models
irb_has test && step irbtest 60 "$OUT/irb.log" "$BUILD/test_cuda_irblock"
if irb_has ops; then
  if [ "${IRB_OPS:-}" = all ]; then
    step ops "${T_TEST:-200}" "$OUT/ops.log" env RI_CUDA_IRBLOCK="${IRB_OPS_SETTING:-1}" "$BUILD/test_cuda_ops" \
      "$MODELS"
  else
    step ops 120 "$OUT/ops.log" env RI_CUDA_IRBLOCK="${IRB_OPS_SETTING:-1}" "$BUILD/test_cuda_ops" "$MODELS" \
      ssd_mobilenet_v2 mobilenet_v2
  fi
fi
if irb_has inv; then
  step inv 90 "$OUT/inv.log" env RI_CUDA_IRBLOCK=1 RI_TEST_PREC=fp16 "$BUILD/test_cuda_batch_invariance" "$MODELS" \
    ssd_mobilenet_v2 mobilenet_v2
fi
if irb_has memcheck && [ -n "$SANITIZER" ]; then
  step memcheck 120 "$OUT/memcheck.log" "$SANITIZER" --tool memcheck --error-exitcode 3 --leak-check full \
    "$BUILD/test_cuda_irblock"
fi
if irb_has bench; then
  rm -f "$OUT/bench.jsonl"
  prof=()
  [ "${IRB_PROFILE:-1}" = 1 ] && prof=(--profile)
  models=("$MODELS/ssd_mobilenet_v2.onnx")
  if [ "${IRB_PEER:-1}" = 1 ] && [ -f "$ROOT/.deps/peer_bench.py" ] &&
    step peerexport 120 "$OUT/bench.log" python3 "$ROOT/.deps/peer_bench.py" --cbatches 1 --export /tmp/peer_ssd.onnx; then
    models+=(/tmp/peer_ssd.onnx)
  fi
  # irb_bench MODEL SETTING BATCHES: one bench_cuda run (one engine, max batch = the largest of BATCHES).
  irb_bench() {
    echo "== $(basename "$1") RI_CUDA_IRBLOCK=${2:-(unset)} batches $3" >>"$OUT/bench.log"
    echo "{\"model\": \"$(basename "$1")\", \"RI_CUDA_IRBLOCK\": \"$2\", \"batches\": \"$3\"}" >>"$OUT/bench.jsonl"
    step "bench-${2:-auto}" 150 "$OUT/bench.log" env RI_CUDA_IRBLOCK="$2" "$BUILD/bench_cuda" "$1" \
      --precisions fp16 --batches "$3" --seconds "$IRB_SECONDS" "${prof[@]}" --json "$OUT/bench.jsonl"
  }
  for m in "${models[@]}"; do
    # Forced on and off in one engine of max batch 256, then the default policy (fused only in engines of
    # max batch 1) against off in engines of max batch 1.
    irb_bench "$m" 1 "$IRB_BATCHES"
    irb_bench "$m" 0 "$IRB_BATCHES"
    irb_bench "$m" "" 1
    irb_bench "$m" 0 1
  done
  grep -E '^(== |fp16 )' "$OUT/bench.log" >>"$SUMMARY"
fi
cat "$SUMMARY"
