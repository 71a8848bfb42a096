#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for FUZZ_SECONDS (default 60) from its seed
# corpus. Crashes, leaks and timeouts fail the run; reproducers land in build-fuzz/artifacts/.
# Usage: FUZZ_SECONDS=N scripts/fuzz.sh [target...]     (targets: onnx_import rie_load image_decode file_list row_format)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-60}
JOBS=${JOBS:-$(nproc)}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRI_FUZZ=ON -DRI_BUILD_TESTS=OFF \
  -DRI_WITH_XNNPACK=OFF >/dev/null
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(onnx_import rie_load image_decode file_list row_format)
mkdir -p build-fuzz/artifacts
for t in "${targets[@]}"; do
  cmake --build build-fuzz -j"$JOBS" --target "fuzz_$t" >/dev/null
  corpus=build-fuzz/corpus/$t
  mkdir -p "$corpus"
  seeds=tests/fuzz/seeds/$t
  case $t in
    onnx_import) seeds="tests/data/bad_onnx tests/fuzz/seeds/onnx_import" ;;
    rie_load) seeds="tests/data/bad_rie tests/fuzz/seeds/rie_load" ;;
  esac
  # shellcheck disable=SC2086
  existing=$(ls -d $seeds 2>/dev/null || true)
  echo "== fuzz_$t for ${SECS}s (seeds: ${existing:-none})"
  # shellcheck disable=SC2086
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    "./build-fuzz/fuzz_$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
    -artifact_prefix=build-fuzz/artifacts/ -print_final_stats=1 "$corpus" $existing >build-fuzz/fuzz_$t.log 2>&1 ||
    { tail -n 40 "build-fuzz/fuzz_$t.log"; echo "fuzz_$t FAILED (log: build-fuzz/fuzz_$t.log)"; exit 1; }
  grep -E "stat::number_of_executed_units|cov:" "build-fuzz/fuzz_$t.log" | tail -n 2
done
