#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried, peer_bench.py in
# it): where the GPU time goes on the peer's model. Builds (PP_STEPS build), exports the peer's SSD MobileNet v2
# (.deps/peer_bench.py --cbatches 1 --export: the export only, no timing), then bench_cuda with the per-node
# profile of every node (RI_BENCH_TOP=200) on it at PP_BATCHES (default 1,256) in fp16, and on the reference
# model at batch 256.
#   peerprof.log, refprof.log   bench_cuda's output; summary.txt: the step lines and result lines
# Environment: PP_STEPS (default build,prof), PP_BATCHES, PP_ENV (VAR=value words for bench_cuda).
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
PP_STEPS=${PP_STEPS:-build,prof}
setup_env
case ",$PP_STEPS," in *,build,*) build_and_models ;; esac
case ",$PP_STEPS," in *,prof,*)
  PEER_ONNX=/tmp/peer_ssd.onnx
  step export 120 "$OUT/peerprof.log" python3 "$ROOT/.deps/peer_bench.py" --cbatches 1 --export "$PEER_ONNX"
  # shellcheck disable=SC2086 # PP_ENV is a list of VAR=value words
  step peerprof 200 "$OUT/peerprof.log" env RI_BENCH_TOP=200 ${PP_ENV:-} "$BUILD/bench_cuda" "$PEER_ONNX" \
    --precisions fp16 --batches "${PP_BATCHES:-1,256}" --seconds 1.5 --profile
  # shellcheck disable=SC2086
  step refprof 200 "$OUT/refprof.log" env RI_BENCH_TOP=200 ${PP_ENV:-} "$BUILD/bench_cuda" \
    "$MODELS/ssd_mobilenet_v2.onnx" --precisions fp16 --batches 256 --seconds 1 --profile
  grep -hE '^fp16' "$OUT/peerprof.log" "$OUT/refprof.log" >>"$SUMMARY"
  ;;
esac
cat "$SUMMARY"
