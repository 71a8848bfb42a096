#!/usr/bin/env bash
# Runs every test of runinfer on this machine (the README's test command; .ci/run calls exactly this):
#  1. installs dependencies (scripts/install-deps.sh)
#  2. format check (clang-format) of C sources
#  3. Release build with -Wall -Wextra -Werror, C tests (ctest), Python tests (pytest: engine vs onnxruntime,
#     ops, ONNX backend node tests, pipeline)
#  4. the C tests again under AddressSanitizer + UndefinedBehaviorSanitizer
#  5. the pipeline's thread stress test with a ThreadSanitizer build
#  6. each libFuzzer target for a few seconds
#  7. the CUDA sources compile (when nvcc is present; no GPU is needed to compile)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${JOBS:-$(nproc)}

./scripts/install-deps.sh

echo "== format check"
if [ "${SKIP_FORMAT:-0}" = 1 ]; then echo "(skipped: SKIP_FORMAT=1)"; else ./scripts/format.sh --check; fi

echo "== release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS"

echo "== C tests"
(cd build && ctest --output-on-failure -j"$JOBS")

echo "== Python tests"
export RI_CLI="$ROOT/build/runinfer"
export RI_MODELS_DIR="$ROOT/build/models"
export RI_LIB="$ROOT/build/libruninfer.so"
python3 -m pytest -q tests/python

echo "== C tests under ASan + UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRI_SANITIZE=ON -DRI_WITH_XNNPACK=OFF >/dev/null
cmake --build build-asan -j"$JOBS"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$JOBS")

echo "== pipeline threads under ThreadSanitizer"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRI_TSAN=ON -DRI_WITH_XNNPACK=OFF -DRI_BUILD_TESTS=OFF >/dev/null
cmake --build build-tsan -j"$JOBS" --target runinfer_cli
RI_TSAN_CLI="$ROOT/build-tsan/runinfer" python3 -m pytest -q tests/python/test_pipeline_threads.py

echo "== fuzz targets, briefly (scripts/fuzz.sh; longer runs: FUZZ_SECONDS=3600 make fuzz)"
FUZZ_SECONDS=${CI_FUZZ_SECONDS:-15} ./scripts/fuzz.sh

if [ -d src/backend/cuda ] && ls src/backend/cuda/*.cu >/dev/null 2>&1; then
  if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
    echo "== CUDA compile check (no GPU needed)"
    ./scripts/cuda-compile-check.sh
  else
    echo "== CUDA compile check skipped: nvcc not installed"
  fi
fi
echo "== all tests passed"
