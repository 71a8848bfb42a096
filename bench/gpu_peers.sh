#!/usr/bin/env bash
# Peer baselines on the GPU machine, for comparison with runinfer's CUDA backend on identical work.
#   bench/gpu_peers.sh PATH/TO/peer_bench.py
# The peer script (shared/bench/peer_bench.py, copied into the working tree because only the repository
# travels to the GPU machine) times PyTorch eager, CUDA-graph replay of the same SSD MobileNet v2 and writes
# that model with the same weights as ONNX (--export). This script runs it, then runs runinfer's
# tests/gpu/bench_cuda on the exported model so that both rows measure the same network.
# Environment: OUT (logs, default ./out), BUILD (runinfer build folder with bench_cuda, default build-gpu),
# PEER_ARGS (extra arguments for the peer script, e.g. "--quick"), BATCHES (default 1,8,64,256).
# Writes $OUT/peers.json (the peer's rows) and appends runinfer's rows to $OUT/bench.jsonl (engines of max
# batch = the largest of BATCHES, then engines of max batch 1 at batch 1); prints both.
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$1" ]; then
  echo "usage: $0 PATH/TO/peer_bench.py" >&2
  exit 2
fi
PEER=$1
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/out}
BUILD=${BUILD:-$ROOT/build-gpu}
BATCHES=${BATCHES:-1,8,64,256}
mkdir -p "$OUT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "== peer: python3 $PEER ${PEER_ARGS:-} --export $TMP/peer_ssd.onnx --json $OUT/peers.json"
# shellcheck disable=SC2086 # PEER_ARGS is a list of arguments
python3 "$PEER" ${PEER_ARGS:-} --export "$TMP/peer_ssd.onnx" --json "$OUT/peers.json"

if [ -x "$BUILD/bench_cuda" ]; then
  echo "== runinfer on the peer's exported model"
  "$BUILD/bench_cuda" "$TMP/peer_ssd.onnx" --batches "$BATCHES" --seconds 1.5 --json "$OUT/bench.jsonl"
  # An engine built for batch 1 only (max batch 1): what a latency-bound service would build; fp16 engines
  # of max batch 1 fuse the inverted-residual blocks (cuda_irblock.c).
  echo "== runinfer on the peer's exported model, engines of max batch 1"
  "$BUILD/bench_cuda" "$TMP/peer_ssd.onnx" --batches 1 --seconds 1.5 --json "$OUT/bench.jsonl"
  # The opt-in half accumulation (ri_builder_set_half_accumulation; RI_CUDA_DW_HALF=1 at build does the
  # same): its own file, so that the default engine's ratios never take its rows.
  echo "== runinfer on the peer's exported model, fp16 with half accumulation (RI_CUDA_DW_HALF=1)"
  RI_CUDA_DW_HALF=1 "$BUILD/bench_cuda" "$TMP/peer_ssd.onnx" --precisions fp16 --batches "$BATCHES" \
    --seconds 1.5 --json "$OUT/bench-half.jsonl"
  echo "== runinfer on the peer's exported model, fp16 with half accumulation, engines of max batch 1"
  RI_CUDA_DW_HALF=1 "$BUILD/bench_cuda" "$TMP/peer_ssd.onnx" --precisions fp16 --batches 1 --seconds 1.5 \
    --json "$OUT/bench-half.jsonl"
else
  echo "gpu_peers: $BUILD/bench_cuda not built; skipping runinfer on the exported model" >&2
fi
