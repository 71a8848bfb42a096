#!/usr/bin/env bash
# Run ON the GPU machine after scripts/gpu/device-run.sh built build-gpu/ and the models (same $OUT): the
# end-to-end path from a host uint8 image (issue 4: "from a host uint8 300x300x3 image to host outputs").
# The reference NHWC model (ssd_mobilenet_v2_nhwc, 0..255 normalised in-graph) gets a uint8 input
# (bench/u8_input_model.py); fp16 engines of max batch 1 (default builder level, timed) of it and of the
# float32-input original run `runinfer bench --batch 1`, which reports latency = H2D + compute + D2H from
# pageable host buffers. `runinfer inspect` of the uint8 engine lists its tuned layers; --memory its device
# bytes. Everything is appended to $OUT/bench.log.
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
setup_env >/dev/null 2>&1
LOG=$OUT/bench.log
CLI=$BUILD/runinfer
{
  echo "== e2e-u8: uint8-input engine (bench/u8_input_model.py), fp16, max batch 1"
  python3 "$ROOT/bench/u8_input_model.py" "$MODELS/ssd_mobilenet_v2_nhwc.onnx" /tmp/ssd_u8.onnx
  for m in ssd_u8:/tmp/ssd_u8.onnx nhwc_f32:"$MODELS/ssd_mobilenet_v2_nhwc.onnx"; do
    name=${m%%:*} onnx=${m#*:}
    TIMEFORMAT="build seconds ($name): %R"
    time "$CLI" build --onnx "$onnx" --save "/tmp/$name.rie" --device cuda --precision fp16 --max-batch 1
    "$CLI" bench --engine "/tmp/$name.rie" --batch 1 --iterations 3000 --warmup 200
  done
  "$CLI" inspect /tmp/ssd_u8.rie --memory | grep -v '^details (JSON)'
} >>"$LOG" 2>&1
tail -40 "$LOG"
