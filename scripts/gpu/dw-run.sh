#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the depthwise
# and stem kernel variants (k_dwconv.cu, k_stemconv.cu, chosen by cuda_tune_direct.c) and the residual-aware
# GEMM timing (cuda_tune.c) checked and measured in one run.
#   build.log    dependency unpacking, configure, build, models
#   test.log     every GPU test as device-run.sh's test step runs them (test_cuda_conv runs every variant
#                against the reference and bit for bit against variant 0), then test_cuda_ops and
#                test_cuda_batch_invariance with each variant forced in every layer it applies to
#                (RI_CUDA_DW_TACTICS=N with RI_CUDA_STEM_TACTICS=N, stem variants stopping at 2)
#   memcheck.log compute-sanitizer memcheck as device-run.sh runs it (test_cuda_conv included)
#   bench.log, bench.jsonl   tests/gpu/bench_cuda fp16 and fp32 on ssd_mobilenet_v2 at batches 1,8,64,256
#                with the per-node profile: before (RI_CUDA_DW_TACTICS=0 RI_CUDA_STEM_TACTICS=0
#                RI_CUDA_TUNE_RES=0: variant 0 everywhere, GEMMs timed without their residual), after
#                (default), and fp32 after without the residual timing (its share); then the peers step's
#                runinfer rows on the peer's exported model
#   peers.log, peers.json    bench/gpu_peers.sh with PEER_SCRIPT and PEER_ARGS
#   summary.txt  step lines, test verdicts, benchmark and peer lines
# Environment: DW_STEPS (default build,test,force,bench,memcheck,peers: peers last, limited to what is
# left of DW_BUDGET, default 375 s, so that a long peer run cannot cut the rest), DW_SECONDS (default 1),
# PEER_SCRIPT (default .deps/peer_bench.py), PEER_ARGS, T_PEERS, OUT.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
# shellcheck source=device-run.sh
source scripts/gpu/device-run.sh
DW_STEPS=${DW_STEPS:-build,test,force,bench,memcheck,peers}
DW_SECONDS=${DW_SECONDS:-1}
PEER_SCRIPT=${PEER_SCRIPT:-.deps/peer_bench.py}
dw_has() { case ",$DW_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
dw_has build && build_and_models
dw_has test && gpu_tests
if dw_has force; then
  for v in 1 2 3 4 5; do
    sv=$((v > 2 ? 2 : v))
    step "ops-v$v" "${T_TEST:-60}" "$OUT/test.log" env RI_CUDA_DW_TACTICS=$v RI_CUDA_STEM_TACTICS=$sv \
      "$BUILD/test_cuda_ops" "$MODELS"
    step "inv-v$v" "${T_INVTEST:-40}" "$OUT/test.log" env RI_CUDA_DW_TACTICS=$v RI_CUDA_STEM_TACTICS=$sv \
      "$BUILD/test_cuda_batch_invariance" "$MODELS"
  done
fi
if dw_has bench; then
  rm -f "$OUT/bench.jsonl"
  m="$MODELS/ssd_mobilenet_v2.onnx"
  echo "== before: RI_CUDA_DW_TACTICS=0 RI_CUDA_STEM_TACTICS=0 RI_CUDA_TUNE_RES=0" >>"$OUT/bench.log"
  echo '{"setting": "before: DW/STEM tactics 0, TUNE_RES 0"}' >>"$OUT/bench.jsonl"
  step bench-off "${T_BENCH:-60}" "$OUT/bench.log" env RI_CUDA_DW_TACTICS=0 RI_CUDA_STEM_TACTICS=0 \
    RI_CUDA_TUNE_RES=0 "$BUILD/bench_cuda" "$m" --precisions fp16,fp32 --batches 1,8,64,256 \
    --seconds "$DW_SECONDS" --profile --json "$OUT/bench.jsonl"
  echo "== after: default (variants tuned, residual timing)" >>"$OUT/bench.log"
  echo '{"setting": "after: default"}' >>"$OUT/bench.jsonl"
  step bench-on "${T_BENCH:-60}" "$OUT/bench.log" "$BUILD/bench_cuda" "$m" --precisions fp16,fp32 \
    --batches 1,8,64,256 --seconds "$DW_SECONDS" --profile --json "$OUT/bench.jsonl"
  echo "== after without residual timing: RI_CUDA_TUNE_RES=0 (fp32)" >>"$OUT/bench.log"
  echo '{"setting": "after, TUNE_RES 0"}' >>"$OUT/bench.jsonl"
  step bench-nores "${T_BENCH:-60}" "$OUT/bench.log" env RI_CUDA_TUNE_RES=0 "$BUILD/bench_cuda" "$m" \
    --precisions fp32 --batches 1,8,64,256 --seconds "$DW_SECONDS" --profile --json "$OUT/bench.jsonl"
  grep -E '^(== |fp(16|32) )' "$OUT/bench.log" >>"$SUMMARY"
fi
dw_has memcheck && memcheck_step "${T_MEMCHECK:-60}"
dw_has peers && peers_step "${DW_BUDGET:-375}"
test_verdicts
cat "$SUMMARY"
exit "$FAILED"
