#!/usr/bin/env bash
# Proves that the CUDA backend compiles and links on a machine without a GPU: configures build-cuda with
# -DRI_WITH_CUDA=ON (sm_90 unless CMAKE_CUDA_ARCHITECTURES is set in the environment) and builds everything
# (library, CLI, C tests, the GPU test and benchmark programs of tests/gpu). Nothing is run.
#   JOBS=N          parallel build jobs (default: nproc)
#   BUILD_DIR=dir   build folder (default: build-cuda)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
BUILD_DIR=${BUILD_DIR:-build-cuda}
ARCHS=${CMAKE_CUDA_ARCHITECTURES:-90}

NVCC=$(command -v nvcc || true)
if [ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ]; then NVCC=/usr/local/cuda/bin/nvcc; fi
if [ -z "$NVCC" ]; then
  echo "cuda-compile-check: nvcc not found (install the CUDA toolkit or put nvcc on PATH)" >&2
  exit 1
fi

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DRI_WITH_CUDA=ON \
  -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$JOBS"
for prog in test_cuda_ops bench_cuda; do
  if [ ! -x "$BUILD_DIR/$prog" ]; then
    echo "cuda-compile-check: $BUILD_DIR/$prog was not built" >&2
    exit 1
  fi
done
echo "cuda-compile-check: OK ($BUILD_DIR, sm_$ARCHS)"
