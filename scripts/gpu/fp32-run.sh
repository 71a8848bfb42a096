#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the fp32 NHWC
# path's checks and its benchmark against the NCHW path (RI_CUDA_F32_LAYOUT=nchw) in one run.
#   test.log     tests/gpu/test_cuda_conv (own kernels, fp32 ones included; again with
#                RI_CUDA_F32_GEMM_GRID=tiles), tests/gpu/test_cuda_ops (every model, fp32 and fp16),
#                tests/gpu/test_cuda_batch_invariance (fp32; again with RI_CUDA_F32_GEMM_GRID=tiles),
#                tests/gpu/test_cuda_tactics
#   bench.log, bench.jsonl   tests/gpu/bench_cuda fp32 on ssd_mobilenet_v2 at FP32_BATCHES: NCHW (before),
#                NHWC (after, with the per-node profile unless FP32_PROFILE=0), NHWC with one GEMM block per
#                tile (RI_CUDA_F32_GEMM_GRID=tiles)
#   peers.log, peers.json    the PyTorch peers: python3 $PEER_SCRIPT $PEER_ARGS --json (step peers)
#   memcheck.log compute-sanitizer memcheck on test_cuda_conv (step memcheck)
#   summary.txt  device-run.sh's step lines and the benchmark lines
# Environment: FP32_STEPS (default build,conv,ops,inv,tac,bench,peers,memcheck), FP32_BATCHES (default
# 1,8,64,256), FP32_SECONDS (default 1), PEER_SCRIPT (default .deps/peer_bench.py), PEER_ARGS (default
# --quick), OUT.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
# shellcheck source=device-run.sh
source scripts/gpu/device-run.sh
FP32_STEPS=${FP32_STEPS:-build,conv,ops,inv,tac,bench,peers,memcheck}
FP32_BATCHES=${FP32_BATCHES:-1,8,64,256}
FP32_SECONDS=${FP32_SECONDS:-1}
f32_has() { case ",$FP32_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
f32_has build && build_and_models
if f32_has conv; then
  step convtest "${T_CONVTEST:-60}" "$OUT/test.log" "$BUILD/test_cuda_conv"
  step convtest-tiles "${T_CONVTEST:-60}" "$OUT/test.log" env RI_CUDA_F32_GEMM_GRID=tiles "$BUILD/test_cuda_conv"
fi
f32_has ops && step ops "${T_TEST:-150}" "$OUT/test.log" "$BUILD/test_cuda_ops" "$MODELS"
if f32_has inv; then
  step inv "${T_INVTEST:-90}" "$OUT/test.log" env RI_TEST_PREC=fp32 "$BUILD/test_cuda_batch_invariance" "$MODELS"
  step inv-tiles "${T_INVTEST:-90}" "$OUT/test.log" env RI_TEST_PREC=fp32 RI_CUDA_F32_GEMM_GRID=tiles \
    "$BUILD/test_cuda_batch_invariance" "$MODELS"
fi
f32_has tac && step tactest "${T_TACTEST:-150}" "$OUT/test.log" "$BUILD/test_cuda_tactics" "$MODELS"
if f32_has bench; then
  rm -f "$OUT/bench.jsonl"
  prof=()
  [ "${FP32_PROFILE:-1}" = 1 ] && prof=(--profile)
  m="$MODELS/ssd_mobilenet_v2.onnx"
  echo "== RI_CUDA_F32_LAYOUT=nchw (before)" >>"$OUT/bench.log"
  echo '{"layout": "nchw"}' >>"$OUT/bench.jsonl"
  step bench-nchw "${T_BENCH:-120}" "$OUT/bench.log" env RI_CUDA_F32_LAYOUT=nchw "$BUILD/bench_cuda" "$m" \
    --precisions fp32 --batches "$FP32_BATCHES" --seconds "$FP32_SECONDS" --json "$OUT/bench.jsonl"
  echo "== NHWC (after)" >>"$OUT/bench.log"
  echo '{"layout": "nhwc"}' >>"$OUT/bench.jsonl"
  step bench-nhwc "${T_BENCH:-120}" "$OUT/bench.log" "$BUILD/bench_cuda" "$m" --precisions fp32 \
    --batches "$FP32_BATCHES" --seconds "$FP32_SECONDS" "${prof[@]}" --json "$OUT/bench.jsonl"
  echo "== NHWC, RI_CUDA_F32_GEMM_GRID=tiles" >>"$OUT/bench.log"
  echo '{"layout": "nhwc", "RI_CUDA_F32_GEMM_GRID": "tiles"}' >>"$OUT/bench.jsonl"
  step bench-tiles "${T_BENCH:-120}" "$OUT/bench.log" env RI_CUDA_F32_GEMM_GRID=tiles "$BUILD/bench_cuda" "$m" \
    --precisions fp32 --batches "$FP32_BATCHES" --seconds "$FP32_SECONDS" --json "$OUT/bench.jsonl"
  grep -E '^(== |fp32 )' "$OUT/bench.log" >>"$SUMMARY"
fi
PEER_SCRIPT=${PEER_SCRIPT:-$ROOT/.deps/peer_bench.py}
if f32_has peers && [ -f "$PEER_SCRIPT" ]; then
  # shellcheck disable=SC2086 # PEER_ARGS is a list of arguments
  step peers "${T_PEERS:-150}" "$OUT/peers.log" python3 "$PEER_SCRIPT" ${PEER_ARGS:---quick} --json "$OUT/peers.json"
  grep -E '^\| torch' "$OUT/peers.log" >>"$SUMMARY"
fi
if f32_has memcheck && [ -n "$SANITIZER" ]; then
  step memcheck "${T_MEMCHECK:-120}" "$OUT/memcheck.log" "$SANITIZER" --tool memcheck --error-exitcode 3 \
    --leak-check full "$BUILD/test_cuda_conv"
fi
grep -E '^(PASS|FAIL)' "$OUT/test.log" 2>/dev/null | grep -c '^PASS' | sed 's/^/tests passed: /' >>"$SUMMARY"
grep -E '^FAIL' "$OUT/test.log" 2>/dev/null | head -20 >>"$SUMMARY"
cat "$SUMMARY"
