#!/usr/bin/env bash
# Run on the development machine (network access): downloads into .whl/ (git-ignored) apache-beam and the
# requirements that the GPU machine's image lacks, as CPython 3.12 manylinux x86-64 wheels, for
# scripts/gpu/beam-gpu.sh to install there (pip --no-index --no-deps --target /tmp/site). Pass .whl (and
# .deps) to the device tool's `carry`.
#
# The image holds PyTorch, onnxruntime, numpy, pillow, pyarrow, grpcio, protobuf, requests, pyyaml,
# python-dateutil, packaging, sortedcontainers and typing-extensions, but not Beam's other requirements.
# Versions are those the CPU tests use on the development machine. Two packages the image has come as
# fallbacks in .whl/pins/: installed there only when the image's own version violates a requirement
# (scripts/gpu/beam_wheels.py pins). On 2026-11-27 both were needed: Beam 2.77 asks for numpy < 2.5 and
# protobuf < 7, and the image had numpy 2.5.2 and protobuf 7.36.2. pyarrow (< 26; the image had 25.0.1) and
# grpcio (1.84.0 there) are not carried (about 45 MB and 7 MB): beam-gpu.sh reports their versions against
# Beam's pins.
# The wheels, .deps/ and the repository must stay under the tool's 64 MiB: this script prints the total.
set -euo pipefail
cd "$(dirname "$0")/../.."

BEAM=apache-beam==2.77.0
NEEDED=(
  cryptography==48.0.0 cffi==2.0.0 pycparser==3.0 # cryptography and what it needs on CPython
  fastavro==1.13.1 fasteners==0.20 httplib2==0.32.1 jsonpickle==4.1.4 objsize==0.7.1
  pymongo==4.20.1 dnspython==2.9.2 proto-plus==1.29.0 pytz==2026.6 zstandard==0.25.0 beartype==0.22.9
)
PINS=(numpy==2.4.6 protobuf==6.33.6)
# What the image is known to hold (KINDS.md of the device tool, 2026-11-17); the closure check below
# accepts a requirement on these names and leaves their versions to the check on the device.
IMAGE_HAS=(grpcio packaging pillow python-dateutil requests sortedcontainers typing-extensions pyyaml
  pyarrow pyparsing numpy protobuf)

PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
get() { # get DIR SPEC...
  local d=$1
  shift
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLAT[@]}" -d "$d" "$@"
}

rm -rf .whl
mkdir -p .whl/pins
get .whl "$BEAM" "${NEEDED[@]}"
get .whl/pins "${PINS[@]}"
python3 scripts/gpu/beam_wheels.py closure .whl .whl/pins "${IMAGE_HAS[@]}" | tail -1
tree=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- | tail -1 | cut -f1)
carried=$(du -cb .whl .deps | tail -1 | cut -f1)
echo "fetch-beam-wheels: $(find .whl -type f -name '*.whl' | wc -l) wheels, $(du -sh .whl | cut -f1) in .whl/"
echo "fetch-beam-wheels: .whl + .deps + the tracked and untracked files $(((tree + carried) / 1048576)) MiB (limit 64)"
