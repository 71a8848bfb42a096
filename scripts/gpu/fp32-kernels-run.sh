#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the fp32 pointwise
# kernel (k_pwconv_f32.cu) checked and measured in one run. (Its first run, bench/results/
# fp32-kernels-2026-11-27.txt, also measured a two-pixel stem and a two-row depthwise kernel, since removed.)
#   build.log    dependency unpacking, configure, build, models
#   test.log     every GPU test as device-run.sh's test step runs them (test_cuda_conv, _irblock, _ops,
#                _batch_invariance, _tactics, _oom, _memory), then with the new kernel forced:
#                test_cuda_ops and test_cuda_batch_invariance (fp32) with RI_CUDA_F32_PWCONV=force (the
#                pointwise kernel in every layer it supports, untimed)
#   memcheck.log compute-sanitizer memcheck as device-run.sh runs it (test_cuda_conv includes the new kernel)
#   bench.log, bench.jsonl   tests/gpu/bench_cuda fp32 on ssd_mobilenet_v2 at batches 1,8,64,256: before
#                (RI_CUDA_F32_PWCONV=0), after (default), each with the per-node profile; then the peers
#                step's runinfer rows on the peer's exported model
#   peers.log, peers.json    bench/gpu_peers.sh with PEER_SCRIPT and PEER_ARGS
#   summary.txt  step lines, test verdicts, benchmark and peer lines
# Environment: K32_STEPS (default build,test,force,bench,peers,memcheck: memcheck last, so that a run
# cut short keeps the measurements), K32_SECONDS (default 1), PEER_SCRIPT
# (default .deps/peer_bench.py), PEER_ARGS, OUT.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
# shellcheck source=device-run.sh
source scripts/gpu/device-run.sh
K32_STEPS=${K32_STEPS:-build,test,force,bench,peers,memcheck}
K32_SECONDS=${K32_SECONDS:-1}
k32_has() { case ",$K32_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
k32_has build && build_and_models
k32_has test && gpu_tests
if k32_has force; then
  step ops-pwf32 "${T_TEST:-200}" "$OUT/test.log" env RI_CUDA_F32_PWCONV=force "$BUILD/test_cuda_ops" "$MODELS"
  step inv-pwf32 "${T_INVTEST:-90}" "$OUT/test.log" env RI_CUDA_F32_PWCONV=force RI_TEST_PREC=fp32 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS"
fi
if k32_has bench; then
  rm -f "$OUT/bench.jsonl"
  m="$MODELS/ssd_mobilenet_v2.onnx"
  echo "== before: RI_CUDA_F32_PWCONV=0" >>"$OUT/bench.log"
  echo '{"RI_CUDA_F32_PWCONV": "0"}' >>"$OUT/bench.jsonl"
  step bench-off "${T_BENCH:-120}" "$OUT/bench.log" env RI_CUDA_F32_PWCONV=0 "$BUILD/bench_cuda" "$m" \
    --precisions fp32 --batches 1,8,64,256 --seconds "$K32_SECONDS" --profile --json "$OUT/bench.jsonl"
  echo "== after: default (the pointwise fp32 kernel offered to the tuner)" >>"$OUT/bench.log"
  echo '{"RI_CUDA_F32_PWCONV": "1"}' >>"$OUT/bench.jsonl"
  step bench-on "${T_BENCH:-120}" "$OUT/bench.log" "$BUILD/bench_cuda" "$m" --precisions fp32 \
    --batches 1,8,64,256 --seconds "$K32_SECONDS" --profile --json "$OUT/bench.jsonl"
  grep -E '^(== |fp32 )' "$OUT/bench.log" >>"$SUMMARY"
fi
if k32_has peers && [ -n "${PEER_SCRIPT:-}" ] && [ -f "$PEER_SCRIPT" ]; then
  echo '{"peers": "runinfer on the peer export, default kernels"}' >>"$OUT/bench.jsonl"
  step peers "${T_PEERS:-300}" "$OUT/peers.log" env OUT="$OUT" BUILD="$BUILD" "$ROOT/bench/gpu_peers.sh" \
    "$PEER_SCRIPT"
  grep -E '^(\| torch|fp(16|32) +batch|== )' "$OUT/peers.log" >>"$SUMMARY"
fi
k32_has memcheck && memcheck_step "${T_MEMCHECK:-150}"
test_verdicts
cat "$SUMMARY"
exit "$FAILED"
