#!/usr/bin/env bash
# Installs what runinfer needs on a Debian (bookworm or newer) machine: compilers and build tools, the C
# libraries it links (protobuf-c, libjpeg-turbo, libspng, XNNPACK, hiredis), redis-server for the stream
# tests, clang for sanitizers and fuzzing, and the Python packages used by tests and benchmarks.
# Idempotent: skips what is already installed. Run as root (or with sudo available).
set -euo pipefail

APT_PACKAGES=(build-essential cmake pkg-config git python3 python3-pip
  protobuf-c-compiler libprotobuf-c-dev libonnx-dev libonnx-testdata
  libturbojpeg0-dev libspng-dev libpng-dev libxnnpack-dev libpthreadpool-dev
  libhiredis-dev redis-server clang clang-format libclang-rt-14-dev)
# apache-beam (python/runinfer/beam.py and its tests) pins numpy < 2.5 and protobuf < 7; one pip call
# resolves those pins together with onnx and onnxruntime
PIP_PACKAGES=(numpy onnx onnxruntime pytest Pillow apache-beam)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
pip_missing=()
for p in "${PIP_PACKAGES[@]}"; do
  mod=$p
  [ "$p" = Pillow ] && mod=PIL # the module a package installs, where its name differs
  [ "$p" = apache-beam ] && mod=apache_beam
  "$PY" -c "import ${mod}" 2>/dev/null || pip_missing+=("$p")
done
if [ ${#pip_missing[@]} -gt 0 ]; then
  echo "install-deps: pip install ${pip_missing[*]}"
  "$PY" -m pip install -q "${pip_missing[@]}" 2>/dev/null ||
    "$PY" -m pip install -q --break-system-packages "${pip_missing[@]}"
fi
