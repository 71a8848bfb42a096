#!/usr/bin/env bash
# Run on the development machine (Debian, network access): downloads into .deps/ (git-ignored) the Debian
# packages that the GPU machine lacks, for scripts/gpu/device-run.sh to unpack there with dpkg -x. The GPU
# machine runs Ubuntu 24.04 with CUDA, cuDNN and PyTorch but without protobuf-c, libjpeg-turbo's
# TurboJPEG, libspng, XNNPACK (and its pthreadpool and cpuinfo), hiredis, pkg-config, or ONNX's
# onnx.proto; it cannot reach a package registry. These bookworm builds depend only on libc, libstdc++,
# libgcc and zlib, which Ubuntu 24.04 has in newer versions.
# Pass .deps to the device tool's `carry` so that the folder travels with the working tree.
set -euo pipefail
cd "$(dirname "$0")/../.."

PKGS=(
  protobuf-c-compiler libprotobuf-c1 libprotobuf-c-dev libprotoc32 libprotobuf32 # protoc-c and its libraries
  libturbojpeg0 libturbojpeg0-dev                                                 # JPEG decoding (vision)
  libspng0 libspng-dev                                                            # PNG decoding (vision)
  libxnnpack0 libxnnpack-dev libpthreadpool0 libpthreadpool-dev libcpuinfo0       # CPU fast path
  libhiredis0.14 libhiredis-dev                                                   # pipeline stream sources
  libonnx-dev                                                                     # onnx.proto (headers only used)
  pkgconf pkgconf-bin libpkgconf3 pkg-config                                      # pkg-config, if the image lacks it
)

missing=()
for p in "${PKGS[@]}"; do
  apt-cache show "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fetch-debs: not known to apt here: ${missing[*]} (run apt-get update?)" >&2
  exit 1
fi

mkdir -p .deps
rm -f .deps/*.deb
(cd .deps && apt-get download "${PKGS[@]}")
echo "fetch-debs: $(find .deps -name '*.deb' | wc -l) packages, $(du -sh .deps | cut -f1) in .deps/"
