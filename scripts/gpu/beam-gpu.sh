#!/usr/bin/env bash
# Run ON the GPU machine from the repository root, with .deps/ and .whl/ carried (scripts/gpu/fetch-debs.sh,
# scripts/gpu/fetch-beam-wheels.sh; .deps/peer_bench.py is shared/bench/peer_bench.py): the GPU part of
# issue 5, the Apache Beam integration.
#   build     runinfer with the CUDA backend into build-gpu/ (the functions of scripts/gpu/device-run.sh,
#             sourced), and the reference models into /tmp/ri-models;
#   wheels    apache-beam and the requirements the image lacks, from .whl/ into /tmp/site; a wheel of
#             .whl/pins/ only where the image's own version violates a requirement
#             (scripts/gpu/beam_wheels.py pins); then the versions Python sees;
#   rows      the seed pipeline as a Beam job against `runinfer run` on one CUDA engine of the reference SSD
#             (scripts/gpu/beam_rows.py, fp16 and fp32);
#   beambench bench/beam_handlers.py --device cuda: our handler (CUDA fp16, fp32) against Beam's
#             OnnxModelHandlerNumpy (onnxruntime, CPU) and PytorchModelHandlerTensor (GPU) on the model of
#             .deps/peer_bench.py, batch 1 and 32;
#   pytest    tests/python/test_beam.py, test_beam_binding.py and test_preprocess_on_device.py, with
#             RI_TEST_DEVICE=cuda;
#   phases    (only when named) bench/beam_host_phases.py, fp16 batch 1 and 32 of an engine of max batch 32,
#             with several staging thread counts and copy chunk sizes (PHASE_CFGS="THREADS:CHUNK ..."), with
#             float32 input and/or device preprocessing (PHASE_U8="no yes").
# Writes into $OUT (default ./out) 8 files, the most the device tool returns: summary.txt, build.log,
# wheels.log, rows.log, rows.json, beam-bench.log, beam-gpu.json, pytest.log. Each step has a time limit
# (T_BUILD, T_MODELS, T_WHEELS, T_ROWS, T_BEAMBENCH, T_PYTEST seconds) so that what finished comes back.
# BENCH_ARGS replaces the benchmark's extra arguments (default: --images 384 --rounds 2). BEAM_STEPS (default
# rows,beambench,pytest) chooses which of the last three steps run; beambench runs first, alone, and
# BEAM_PARALLEL=1 runs rows and pytest at the same time after it (they check results and time nothing), so
# that the three fit one device call.
# To measure a commit while the checkout holds other uncommitted work, run the script from that commit's
# archive (git archive COMMIT | tar -x -C SNAP), with .deps and .whl moved into SNAP.
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced, which shellcheck takes for an exit
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
export SITE=${SITE:-/tmp/site}
PEER=${PEER:-$ROOT/.deps/peer_bench.py}

# shellcheck disable=SC2317 # run through step(), in a child bash
install_wheels() {
  local pins
  pins=$(python3 "$ROOT/scripts/gpu/beam_wheels.py" pins "$ROOT/.whl" "$ROOT/.whl/pins")
  echo "pin wheels: ${pins:-none}"
  # shellcheck disable=SC2086 # one path a line, no spaces
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    "$ROOT"/.whl/*.whl $pins
}

# shellcheck disable=SC2317 # run through step(), in a child bash
show_versions() {
  python3 - <<'EOF'
import importlib
for name in ("apache_beam", "numpy", "google.protobuf", "grpc", "pyarrow", "PIL", "onnxruntime", "torch", "onnx"):
    try:
        m = importlib.import_module(name)
        print(f"{name:16s} {getattr(m, '__version__', '?'):14s} {m.__file__}")
    except Exception as e:  # noqa: BLE001 - report and go on
        print(f"{name:16s} NOT IMPORTABLE: {type(e).__name__}: {e}")
import runinfer
print("runinfer library", runinfer.library_version(), runinfer.lib_path())
EOF
  echo "ldd $RI_LIB, libraries not found:"
  ldd "$RI_LIB" | grep 'not found' || echo "  none"
}

setup_env
step build "${T_BUILD:-240}" "$OUT/build.log" configure_and_build
step models "${T_MODELS:-90}" "$OUT/build.log" python3 "$ROOT/models/make_models.py" --out "$MODELS" --reuse \
  --only ssd_mobilenet_v2,tiny_ssd
step wheels "${T_WHEELS:-120}" "$OUT/wheels.log" install_wheels
export PYTHONPATH="$SITE:$ROOT/python${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export RI_LIB="$BUILD/libruninfer.so" RI_CLI="$BUILD/runinfer" RI_MODELS_DIR="$MODELS"
step versions 60 "$OUT/wheels.log" show_versions
BEAM_STEPS=${BEAM_STEPS:-rows,beambench,pytest}
beam_step() { case ",$BEAM_STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
# shellcheck disable=SC2317 # run through step(), in a child bash
host_phases() {
  local MODELS=${MODELS:-/tmp/ri-models} cfg u8
  local spec="size=300x300;layout=nchw;dtype=float32;mean=127.5,127.5,127.5;scale=0.0078125,0.0078125,0.0078125"
  for cfg in ${PHASE_CFGS:-8:1048576 16:1048576 16:262144 8:131072}; do
    for u8 in ${PHASE_U8:-no}; do
      for b in 1 32; do
        echo "== batch $b, RI_CUDA_STAGE_THREADS=${cfg%%:*} RI_CUDA_STAGE_CHUNK=${cfg##*:}, uint8 input: $u8"
        # shellcheck disable=SC2046 # the option and its value, or nothing
        RI_CUDA_STAGE_THREADS=${cfg%%:*} RI_CUDA_STAGE_CHUNK=${cfg##*:} python3 "$ROOT/bench/beam_host_phases.py" \
          --onnx "$MODELS/ssd_mobilenet_v2.onnx" --device cuda --precision fp16 --batch "$b" --max-batch 32 \
          --iters 60 $([ "$u8" = yes ] && printf -- '--preprocess-on-device %s' "$spec") |
          python3 -c 'import json, sys; d = json.load(sys.stdin); print(json.dumps(d))' || return 1
      done
    done
  done
}
beam_step phases && step phases "${T_PHASES:-240}" "$OUT/phases.log" host_phases
# The measurements first, alone on the machine; then the checks, which time nothing.
# shellcheck disable=SC2086 # BENCH_ARGS is a list of arguments
beam_step beambench && step beambench "${T_BEAMBENCH:-240}" "$OUT/beam-bench.log" python3 "$ROOT/bench/beam_handlers.py" --device cuda \
  --peer-script "$PEER" --json "$OUT/beam-gpu.json" --no-docs ${BENCH_ARGS:---images 384 --rounds 2}
rows_step() {
  beam_step rows || return 0
  step rows "${T_ROWS:-150}" "$OUT/rows.log" python3 "$ROOT/scripts/gpu/beam_rows.py" --cli "$RI_CLI" \
    --onnx "$MODELS/ssd_mobilenet_v2.onnx" --json "$OUT/rows.json"
}
pytest_step() {
  beam_step pytest || return 0
  step pytest "${T_PYTEST:-150}" "$OUT/pytest.log" env RI_TEST_DEVICE=cuda python3 -m pytest -q -rs \
    -p no:cacheprovider "$ROOT/tests/python/test_beam.py" "$ROOT/tests/python/test_beam_binding.py" \
    "$ROOT/tests/python/test_preprocess_on_device.py"
}
if [ "${BEAM_PARALLEL:-0}" = 1 ]; then # rows and pytest side by side (each its own GPU contexts and files)
  rows_step &
  rows_pid=$!
  pytest_step &
  pytest_pid=$!
  wait "$rows_pid" || FAILED=1
  wait "$pytest_pid" || FAILED=1
else
  rows_step || FAILED=1
  pytest_step || FAILED=1
fi

{
  echo "---"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
  grep -E 'violated|MISSING|VIOLATED|^pin wheels' "$OUT/wheels.log"
  grep -E '^identical rows' "$OUT/rows.log"
  grep -E '^  threads' "$OUT/beam-bench.log"
  tail -1 "$OUT/pytest.log"
} >>"$SUMMARY" 2>/dev/null
sed -n "/^---$/,\$p" "$SUMMARY"
exit "$FAILED"
