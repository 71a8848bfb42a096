#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (like device-run.sh, with .deps/ carried): the checks and the
# measurement of the wgmma tactic for fp16 1x1 convolutions (k_pwgemm_wg.cu offered by cuda_tune.c), in one
# run of about 5 minutes (the build alone takes ~100 s).
#   build.log     device-run.sh's build and model generation (build_and_models)
#   wg.log        tests/gpu/test_cuda_wggemm (the kernel against a CPU reference, every tile and stage count
#                 bit for bit, images alone against the batch)
#   forced.log    with RI_CUDA_WG=force (every fp16 1x1 layer the kernel runs takes it): test_cuda_ops (SSD
#                 MobileNet v2, MobileNet v2, tiny models), test_cuda_batch_invariance (fp16), and
#                 test_cuda_tactics (the tactic stored in the engine file, named "wgmma tiles ...", a loaded
#                 engine's outputs equal to the built one's)
#   test.log      device-run.sh's gpu_tests with the default setting (the tactic offered, taken where it wins;
#                 test_cuda_wggemm is not run again)
#   ab.log, ab.jsonl  scripts/gpu/ab-bench.sh, fp16, AB_SETTINGS='off=RI_CUDA_WG:0 default=' (2 rounds, per-node
#                 profile): batches 1,8,64,256 (an engine of maximum batch 256), then batch 1 alone (maximum 1)
#                 then `runinfer inspect` of a default fp16 build of maximum batch 256 (the layers that took
#                 the kernel, with their tiles, and those on cuBLASLt), appended to ab.log
#   summary.txt   the step lines and verdicts
# Environment: WGT_STEPS (default build,wg,forced,all,ab,inspect; build ~100 s, wg ~40 s, forced ~40 s,
# all ~70 s, ab ~100 s, inspect ~5 s), OUT, and ab-bench.sh's AB_* variables (AB_SETTINGS, AB_ROUNDS, AB_SECONDS, AB_PROFILE).
#
# The device call (a tool `run` with carry [".deps"], timeout_s 420) from a worktree shipped as a tarball:
#   export OUT; rm -rf /tmp/snap-wgtac; mkdir -p /tmp/snap-wgtac && tar -x -C /tmp/snap-wgtac -f .deps/wgtac.tar &&
#   ln -sfn $PWD/.deps /tmp/snap-wgtac/.deps && cd /tmp/snap-wgtac && bash scripts/gpu/wgtac-run.sh
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
WGT_STEPS=${WGT_STEPS:-build,wg,forced,all,ab,inspect}
wgt_has() { case ",$WGT_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
setup_env
wgt_has build && build_and_models
if wgt_has wg; then
  step wgtest "${T_WGTEST:-90}" "$OUT/wg.log" "$BUILD/test_cuda_wggemm"
  grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/wg.log" | sed 's/^/wg: /' >>"$SUMMARY"
  grep -E '^FAIL' "$OUT/wg.log" | head -20 >>"$SUMMARY"
fi
if wgt_has forced; then
  step wgops "${T_WGOPS:-150}" "$OUT/forced.log" env RI_CUDA_WG=force "$BUILD/test_cuda_ops" "$MODELS" \
    ssd_mobilenet_v2 mobilenet_v2 tiny_conv tiny_ssd
  step wginv "${T_WGINV:-90}" "$OUT/forced.log" env RI_CUDA_WG=force RI_TEST_PREC=fp16 \
    "$BUILD/test_cuda_batch_invariance" "$MODELS" ssd_mobilenet_v2 mobilenet_v2
  step wgtac "${T_WGTAC:-120}" "$OUT/forced.log" env -u RI_BUILDER_LEVEL RI_CUDA_WG=force \
    "$BUILD/test_cuda_tactics" "$MODELS"
  {
    grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/forced.log" | sed 's/^/forced: /'
    grep -E '^FAIL' "$OUT/forced.log" | head -20
  } >>"$SUMMARY"
fi
if wgt_has all; then
  gpu_tests wgtest
  test_verdicts
fi
if wgt_has ab; then
  settings=${AB_SETTINGS:-off=RI_CUDA_WG:0 default=}
  step ab256 "${T_AB256:-200}" "$OUT/ab.log" env AB_SETTINGS="$settings" AB_PREC=fp16 \
    AB_BATCHES=1,8,64,256 AB_PROFILE="${AB_PROFILE:-1}" OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" \
    bash "$ROOT/scripts/gpu/ab-bench.sh"
  echo "== engine of maximum batch 1" >>"$OUT/ab.log"
  step ab1 "${T_AB1:-100}" "$OUT/ab.log" env AB_SETTINGS="$settings" AB_PREC=fp16 AB_BATCHES=1 \
    AB_PROFILE=0 OUT="$OUT" BUILD="$BUILD" MODELS="$MODELS" bash "$ROOT/scripts/gpu/ab-bench.sh"
fi
if wgt_has inspect; then
  # the layers a default build gives the kernel (and cuBLASLt), as `runinfer inspect` lists the tactics
  step inspect 60 "$OUT/ab.log" bash -c "\"$BUILD/runinfer\" build --onnx \"$MODELS/ssd_mobilenet_v2.onnx\" \
    --save /tmp/wgtac.rie --device cuda --precision fp16 --max-batch 256 && \"$BUILD/runinfer\" inspect /tmp/wgtac.rie"
  echo "inspect: $(grep -c 'wgmma tiles' "$OUT/ab.log") lines name wgmma layers, \
$(grep -c 'cublaslt algo' "$OUT/ab.log") cuBLASLt ones (ab.log)" >>"$SUMMARY"
fi
cat "$SUMMARY"
[ "$FAILED" -eq 0 ]
