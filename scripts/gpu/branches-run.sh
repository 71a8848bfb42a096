#!/usr/bin/env bash
# Run ON the GPU machine from the repository root, with .deps/ carried: concurrent branches (cuda_branches.c)
# and device preprocessing (ri_builder_set_preprocess_on_device) on a GPU, in one call.
#   build     scripts/gpu/device-run.sh's build and the reference models;
#   brtest    tests/gpu/test_cuda_branches (side-stream nodes against in-line ones, bit for bit);
#   cpptest   tests/gpu/test_cuda_preprocess (uint8 input normalised on the device, fused and not, against
#             the CPU); ppmemcheck: the same on tiny_ssd under compute-sanitizer memcheck;
#   pptest    tests/python/test_preprocess_on_device.py with RI_TEST_DEVICE=cuda;
#   brbench   bench_cuda on SSD MobileNet v2, fp16 and fp32, for each BR_CONFIGS entry (batch lists; the
#             engine's max batch is the last: default "1 1,8") and BR_POLICIES value (RI_CUDA_BRANCHES, or
#             "default": default "0 default"), alternating, twice;
#   u8bench   `runinfer bench` of fp16 engines of the reference SSD (float32 input normalised on the host,
#             and built with --preprocess-on-device: uint8 pixels in) at batch 1 (max batch 1) and 32 (max
#             batch 32): latency = H2D + compute + D2H from pageable host buffers.
# (The Beam handler's call taken apart with and without device preprocessing: scripts/gpu/beam-gpu.sh's phases
# step with PHASE_U8="no yes".)
# BR_STEPS (default: all of them) chooses the steps. Logs in $OUT: summary.txt,
# build.log, test.log, bench.log.
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
BR_STEPS=${BR_STEPS:-build,brtest,cpptest,ppmemcheck,pptest,brbench,u8bench}
br_step() { case ",$BR_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
SPEC="size=300x300;layout=nchw;dtype=float32;mean=127.5,127.5,127.5;scale=0.0078125,0.0078125,0.0078125"

# shellcheck disable=SC2317 # run through step(), in a child bash
br_bench() {
  local round cfg pol
  for round in 1 2; do
    for cfg in ${BR_CONFIGS:-1 1,8}; do
      for pol in ${BR_POLICIES:-0 default}; do
        echo "== round $round, max batch ${cfg##*,}, batches $cfg, RI_CUDA_BRANCHES=$pol"
        if [ "$pol" = default ]; then
          "$BUILD/bench_cuda" "$MODELS/ssd_mobilenet_v2.onnx" --batches "$cfg" --seconds 1.0 || return 1
        else
          RI_CUDA_BRANCHES=$pol "$BUILD/bench_cuda" "$MODELS/ssd_mobilenet_v2.onnx" --batches "$cfg" --seconds 1.0 ||
            return 1
        fi
      done
    done
  done
}

# shellcheck disable=SC2317 # run through step(), in a child bash
u8_bench() {
  local CLI=$BUILD/runinfer mb b
  for mb in 1 32; do
    b=$mb
    "$CLI" build --onnx "$MODELS/ssd_mobilenet_v2.onnx" --save /tmp/br_f32in.rie --device cuda --precision fp16 \
      --max-batch "$mb" --meta "preprocess=$SPEC" || return 1
    "$CLI" build --onnx "$MODELS/ssd_mobilenet_v2.onnx" --save /tmp/br_u8in.rie --device cuda --precision fp16 \
      --max-batch "$mb" --meta "preprocess=$SPEC" --preprocess-on-device || return 1
    for e in f32in u8in f32in u8in; do
      echo "== $e, max batch $mb, batch $b"
      "$CLI" bench --engine "/tmp/br_$e.rie" --batch "$b" --iterations "$([ "$b" = 1 ] && echo 2000 || echo 300)" \
        --warmup 50 || return 1
    done
  done
  "$CLI" inspect /tmp/br_u8in.rie | head -4
}

setup_env
export MODELS BUILD
if br_step build; then
  step build "${T_BUILD:-240}" "$OUT/build.log" configure_and_build
  step models "${T_MODELS:-90}" "$OUT/build.log" python3 "$ROOT/models/make_models.py" --out "$MODELS" --reuse
fi
br_step brtest && step brtest "${T_BRTEST:-120}" "$OUT/test.log" "$BUILD/test_cuda_branches" "$MODELS"
br_step cpptest && step cpptest "${T_CPPTEST:-120}" "$OUT/test.log" "$BUILD/test_cuda_preprocess" "$MODELS"
br_step ppmemcheck && step ppmemcheck "${T_PPMEMCHECK:-120}" "$OUT/test.log" "$SANITIZER" --tool memcheck \
  --error-exitcode 3 --leak-check full "$BUILD/test_cuda_preprocess" "$MODELS" tiny
br_step pptest && step pptest "${T_PPTEST:-120}" "$OUT/test.log" env RI_TEST_DEVICE=cuda RI_LIB="$BUILD/libruninfer.so" \
  RI_MODELS_DIR="$MODELS" PYTHONPATH="$ROOT/python" python3 -m pytest -q -p no:cacheprovider \
  "$ROOT/tests/python/test_preprocess_on_device.py"
br_step brbench && step brbench "${T_BRBENCH:-150}" "$OUT/bench.log" br_bench
export SPEC
br_step u8bench && step u8bench "${T_U8BENCH:-150}" "$OUT/bench.log" u8_bench
{
  echo "---"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
  grep -E '^[0-9]+ passed, [0-9]+ failed|passed|failed' "$OUT/test.log" | tail -4
  grep -E '^(fp16|fp32) +batch|^== ' "$OUT/bench.log"
  grep -E 'Latency|latency|Throughput|throughput' "$OUT/bench.log" | head -40
} >>"$SUMMARY" 2>/dev/null
sed -n "/^---$/,\$p" "$SUMMARY"
exit "$FAILED"
