#!/usr/bin/env bash
# Formats the C sources with clang-format (--check: report differences and fail instead).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h' '*.cu' '*.cuh' | grep -v '^tests/data/' || true)
[ -n "$files" ] || exit 0
if [ "${1:-}" = "--check" ]; then
  # shellcheck disable=SC2086
  clang-format --dry-run --Werror $files
else
  # shellcheck disable=SC2086
  clang-format -i $files
fi
