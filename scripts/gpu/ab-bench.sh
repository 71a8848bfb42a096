#!/usr/bin/env bash
# Run ON the GPU machine from the repository root, after a build (device-run.sh's build step, same BUILD): a
# before/after comparison of bench_cuda under several environment settings in one run, alternating.
#   AB_SETTINGS  space-separated NAME=VAR:VALUE,VAR:VALUE entries, e.g.
#                "seg-at-1=RI_CUDA_SEG_AT:1 default=" (an empty list after = runs with the environment as is)
#   AB_ROUNDS    rounds over the settings (default 2), AB_BATCHES (default 1,8,64,256), AB_PREC (default
#                fp16,fp32), AB_SECONDS (default 1), AB_PROFILE (1: pass --profile; default 0),
#                AB_MODEL (default $MODELS/ssd_mobilenet_v2.onnx)
# Appends to $OUT/ab.log (bench_cuda's output, one "== round R NAME" header per run) and $OUT/ab.jsonl
# ({"setting", "round"} lines before each run's JSON lines), and the result lines to $OUT/summary.txt.
set -uo pipefail
# shellcheck source=/dev/null # device-run.sh returns early when sourced
source "$(dirname "${BASH_SOURCE[0]}")/device-run.sh" || exit 1
setup_env
prof=()
[ "${AB_PROFILE:-0}" = 1 ] && prof=(--profile)
rc=0
for r in $(seq 1 "${AB_ROUNDS:-2}"); do
  for s in ${AB_SETTINGS:-default=}; do
    name=${s%%=*}
    vars=()
    IFS=, read -r -a kv <<<"${s#*=}"
    for p in "${kv[@]}"; do
      [ -n "$p" ] && vars+=("${p%%:*}=${p#*:}")
    done
    echo "== round $r $name ${vars[*]}" >>"$OUT/ab.log"
    echo "{\"setting\": \"$name\", \"env\": \"${vars[*]}\", \"round\": $r}" >>"$OUT/ab.jsonl"
    step "ab-$name-$r" "${T_AB:-90}" "$OUT/ab.log" env "${vars[@]}" "$BUILD/bench_cuda" \
      "${AB_MODEL:-$MODELS/ssd_mobilenet_v2.onnx}" --precisions "${AB_PREC:-fp16,fp32}" \
      --batches "${AB_BATCHES:-1,8,64,256}" --seconds "${AB_SECONDS:-1}" "${prof[@]}" --json "$OUT/ab.jsonl" || rc=1
  done
done
grep -E '^(== round|fp(16|32) )' "$OUT/ab.log" >>"$SUMMARY"
exit $rc
