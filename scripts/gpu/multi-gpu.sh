#!/usr/bin/env bash
# Run ON a GPU machine with several GPUs (device kind nvidia-h100-x2 / nvidia-h200-x2), from the repository
# root with .deps/ carried: `runinfer run` throughput with one context on one GPU, two contexts on one GPU
# (--contexts 2: one batch's copies overlap another's compute) and replicas on every GPU (--device
# cuda:all), with rows checked byte-identical between them (bench/pipeline_contexts.py).
# The workload is made GPU-bound on purpose: small JPEGs (300x300, decode is cheap), many decode threads,
# and an fp32 engine; MG_PRECISION, MG_IMAGES, MG_SIZE, MG_DECODE, MG_CONFIGS change that.
# Writes into $OUT: summary.txt, build.log, multigpu.log, multigpu.json, nvidia-smi.txt.
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
setup_env
nvidia-smi -L >"$OUT/nvidia-smi.txt" 2>&1
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv >>"$OUT/nvidia-smi.txt" 2>&1
step build "${T_BUILD:-240}" "$OUT/build.log" configure_and_build
step models "${T_MODELS:-90}" "$OUT/build.log" python3 "$ROOT/models/make_models.py" --out "$MODELS" --reuse
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
echo "GPUs: $NGPU" | tee -a "$SUMMARY"
step multigpu "${T_MULTI:-300}" "$OUT/multigpu.log" python3 "$ROOT/bench/pipeline_contexts.py" \
  --build "$BUILD" --engine-device cuda --precision "${MG_PRECISION:-fp32}" --max-batch 64 \
  --images "${MG_IMAGES:-3000}" --size "${MG_SIZE:-300x300}" --decode-threads "${MG_DECODE:-24}" --rounds 2 \
  --configs "${MG_CONFIGS:-1:1@cuda:0,2:1@cuda:0,2:1@cuda:all}" --out "$OUT/multigpu.json"
exit $FAILED
