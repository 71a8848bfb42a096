#!/usr/bin/env bash
# Run ON the GPU machine from the repository root, after a build (device-run.sh's build step, same BUILD):
# Nsight Compute on the kernels of one bench_cuda run, to see why a kernel is slow (occupancy, issue
# stalls, memory throughput) before changing it. Only the profile runs count (bench_cuda --profile brackets
# its eager per-node runs with cudaProfilerStart / Stop; ncu --profile-from-start off), so neither the
# build's tuning launches nor graph replays are profiled.
#   NCU_KERNEL   kernel-name regex (default irblock)
#   NCU_ENV      environment for bench_cuda, e.g. "RI_CUDA_IRBLOCK=1"
#   NCU_BATCH    the batch (default 64; the engine's max batch too), NCU_PREC (default fp16)
#   NCU_COUNT    kernels to profile (default 8), NCU_SKIP (default 0)
#   NCU_MODEL    model path (default $MODELS/ssd_mobilenet_v2.onnx)
# Writes $OUT/ncu.txt (the details page of each profiled kernel).
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
setup_env
NCU=$(command -v ncu || true)
[ -z "$NCU" ] && [ -x "$CUDA_HOME/bin/ncu" ] && NCU=$CUDA_HOME/bin/ncu
[ -z "$NCU" ] && NCU=$(find /usr/local /opt -name ncu -type f 2>/dev/null | head -1)
if [ -z "$NCU" ]; then
  echo "ncu-run: no ncu on this machine" | tee -a "$OUT/ncu.txt"
  exit 1
fi
# shellcheck disable=SC2086 # NCU_ENV is a list of VAR=value words
env ${NCU_ENV:-} timeout "${T_NCU:-240}" "$NCU" --kernel-name "regex:${NCU_KERNEL:-irblock}" \
  --profile-from-start off --launch-skip "${NCU_SKIP:-0}" --launch-count "${NCU_COUNT:-8}" \
  --section SpeedOfLight --section Occupancy \
  --section LaunchStats --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis \
  --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables --section InstructionStats "$BUILD/bench_cuda" "${NCU_MODEL:-$MODELS/ssd_mobilenet_v2.onnx}" \
  --precisions "${NCU_PREC:-fp16}" --batches "${NCU_BATCH:-64}" --seconds 0.2 --profile >>"$OUT/ncu.txt" 2>&1
rc=$?
echo "ncu-run: exit $rc" >>"$OUT/ncu.txt"
exit $rc
