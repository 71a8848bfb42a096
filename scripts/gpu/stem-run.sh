#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the stem's
# tensor-core variant (k_stemconv_tc.cu, variant 3 of k_stemconv.cu) checked and measured in one run.
#   build.log    dependency unpacking, configure, build, models
#   test.log     every GPU test as device-run.sh's test step runs them (test_cuda_conv runs every stem
#                variant against the reference), then test_cuda_ops and test_cuda_batch_invariance with the
#                stem's variant 3 forced (RI_CUDA_STEM_TACTICS=3; the default run leaves the tuner free)
#   memcheck.log compute-sanitizer memcheck as device-run.sh runs it (test_cuda_conv included)
#   bench.log, bench.jsonl   tests/gpu/bench_cuda fp16 on ssd_mobilenet_v2 at batches 1,8,64,256 with the
#                per-node profile, four settings in turn: stem variant 0 (RI_CUDA_STEM_TACTICS=0: no tactic)
#                and variant 1 (=1), the earlier winners at batch 256 and up to 64; variant 3 forced (=3);
#                the tuner free (default); then the peers step's runinfer rows on the peer's exported model
#   peers.log, peers.json    bench/gpu_peers.sh with PEER_SCRIPT and PEER_ARGS
#   summary.txt  step lines, test verdicts, benchmark lines, the stem's profile rows, peer lines
# Environment: STEM_STEPS (default build,test,force,bench,memcheck,peers: peers last, limited to what is
# left of STEM_BUDGET, default 400 s, so that a long peer run cannot cut the rest), STEM_SECONDS (default 1),
# PEER_SCRIPT (default .deps/peer_bench.py), PEER_ARGS, T_PEERS, OUT.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
# shellcheck source=device-run.sh
source scripts/gpu/device-run.sh
STEM_STEPS=${STEM_STEPS:-build,test,force,bench,memcheck,peers}
STEM_SECONDS=${STEM_SECONDS:-1}
PEER_SCRIPT=${PEER_SCRIPT:-.deps/peer_bench.py}
stem_has() { case ",$STEM_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
stem_has build && build_and_models
stem_has test && gpu_tests
if stem_has force; then
  step ops-v3 "${T_TEST:-60}" "$OUT/test.log" env RI_CUDA_STEM_TACTICS=3 "$BUILD/test_cuda_ops" "$MODELS"
  step inv-v3 "${T_INVTEST:-40}" "$OUT/test.log" env RI_CUDA_STEM_TACTICS=3 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS"
fi
if stem_has bench; then
  rm -f "$OUT/bench.jsonl"
  m="$MODELS/ssd_mobilenet_v2.onnx"
  for setting in 0 1 3 tuned; do
    envs=()
    [ "$setting" != tuned ] && envs=(RI_CUDA_STEM_TACTICS="$setting")
    echo "== stem setting: ${envs[*]:-default (tuner free)}" >>"$OUT/bench.log"
    echo "{\"setting\": \"stem ${envs[*]:-tuned}\"}" >>"$OUT/bench.jsonl"
    step "bench-$setting" "${T_BENCH:-45}" "$OUT/bench.log" env "${envs[@]}" "$BUILD/bench_cuda" "$m" \
      --precisions fp16 --batches 1,8,64,256 --seconds "$STEM_SECONDS" --profile --json "$OUT/bench.jsonl"
  done
  {
    grep -E '^(== |fp(16|32) )' "$OUT/bench.log"
    echo "-- stem and input-conversion rows of the profiles, in order (setting x batch 1,8,64,256)"
    grep -E 'stem_direct|<input conversion>' "$OUT/bench.log" | sed 's/^ *//'
  } >>"$SUMMARY"
fi
stem_has memcheck && memcheck_step "${T_MEMCHECK:-90}"
stem_has peers && peers_step "${STEM_BUDGET:-400}"
test_verdicts
{
  grep -E 'variant 3/' "$OUT/test.log" 2>/dev/null | head -12
  grep -E "stem's variants" "$OUT/test.log" 2>/dev/null
} >>"$SUMMARY"
cat "$SUMMARY"
exit "$FAILED"
