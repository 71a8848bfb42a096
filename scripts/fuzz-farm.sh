#!/usr/bin/env bash
# Runs prebuilt libFuzzer targets with several worker processes per target, all at once, and reports the
# totals. The workers of one target share one corpus directory (libFuzzer re-reads it every second, so what
# one worker finds the others use). Flags are those of scripts/fuzz.sh. Builds nothing: the targets come
# from BIN (scripts/fuzz.sh or `cmake --build build-fuzz` makes them).
#
# Usage: [WORKERS=N] [FUZZ_SECONDS=S] [BIN=dir] [CORPUS=dir] [LOGS=dir] [ARTIFACTS=dir] scripts/fuzz-farm.sh [target...]
#   targets   onnx_import rie_load image_decode file_list row_format (default: all five)
#   WORKERS   processes per target (default 1)
#   FUZZ_SECONDS  seconds each worker fuzzes (default 60)
#   BIN       directory holding fuzz_<target> (default build-fuzz)
#   CORPUS    corpus root; target t uses CORPUS/t, kept between runs (default build-fuzz/corpus)
#   LOGS      one log per worker, LOGS/<target>.<worker>.log (default build-fuzz/farm-logs)
#   ARTIFACTS reproducers of crashes, leaks and timeouts, named <target>-<kind>-<hash> (default build-fuzz/artifacts)
#   LEAKS     1 (default) runs with LeakSanitizer on; 0 turns it off (only where LeakSanitizer cannot run)
#   SEEDS_ROOT  repository holding tests/ (default: this script's repository)
# The last lines printed are one summary line per target:
#   farm <target> workers=N seconds=<wall seconds summed over workers> cpu=<CPU seconds (user + system)
#        summed over workers> execs=<sum of stat::number_of_executed_units>
#        cov=<max> ft=<max> corpus=<files> status=ok|FAILED(<exit codes>)
# The exit status is 0 when every worker ended cleanly, 1 when any found a crash, leak, timeout or
# out-of-memory (the artifacts are then listed), 2 on a usage error.
set -uo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
SEEDS_ROOT=${SEEDS_ROOT:-$HERE}
WORKERS=${WORKERS:-1}
SECS=${FUZZ_SECONDS:-60}
BIN=${BIN:-$HERE/build-fuzz}
CORPUS=${CORPUS:-$HERE/build-fuzz/corpus}
LOGS=${LOGS:-$HERE/build-fuzz/farm-logs}
ARTIFACTS=${ARTIFACTS:-$HERE/build-fuzz/artifacts}
LEAKS=${LEAKS:-1}
ALL=(onnx_import rie_load image_decode file_list row_format)

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")
case $WORKERS in '' | *[!0-9]* | 0) echo "fuzz-farm: WORKERS must be a positive integer" >&2 && exit 2 ;; esac
case $SECS in '' | *[!0-9]* | 0) echo "fuzz-farm: FUZZ_SECONDS must be a positive integer" >&2 && exit 2 ;; esac
for t in "${targets[@]}"; do
  [ -x "$BIN/fuzz_$t" ] || { echo "fuzz-farm: no executable $BIN/fuzz_$t" >&2 && exit 2; }
done
mkdir -p "$LOGS" "$ARTIFACTS"

# seeds_of T prints the repository's seed directories of target T that exist.
seeds_of() {
  local d
  case $1 in
    onnx_import) set -- "$SEEDS_ROOT/tests/data/bad_onnx" "$SEEDS_ROOT/tests/fuzz/seeds/onnx_import" ;;
    rie_load) set -- "$SEEDS_ROOT/tests/data/bad_rie" "$SEEDS_ROOT/tests/fuzz/seeds/rie_load" ;;
    *) set -- "$SEEDS_ROOT/tests/fuzz/seeds/$1" ;;
  esac
  for d in "$@"; do [ -d "$d" ] && echo "$d"; done
}

# One background process per worker. Each records its own wall time and exit status beside its log, so
# the summary does not depend on the order in which they end.
pids=()
for t in "${targets[@]}"; do
  mkdir -p "$CORPUS/$t"
  mapfile -t seeds < <(seeds_of "$t")
  echo "fuzz-farm: fuzz_$t, $WORKERS worker(s) x ${SECS}s, corpus $CORPUS/$t ($(find "$CORPUS/$t" -type f | wc -l) files), seeds: ${seeds[*]:-none}"
  for w in $(seq 1 "$WORKERS"); do
    log=$LOGS/$t.$w.log
    (
      t0=$(date +%s%3N)
      ASAN_OPTIONS=detect_leaks=$LEAKS:allocator_may_return_null=1 \
        "$BIN/fuzz_$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
        -detect_leaks="$LEAKS" -artifact_prefix="$ARTIFACTS/$t-" -print_final_stats=1 \
        "$CORPUS/$t" "${seeds[@]}" >"$log" 2>&1
      rc=$?
      t1=$(date +%s%3N)
      # `times` (a builtin, in this shell) gives the CPU time of this shell's children: the fuzzer alone.
      times >"$log.times"
      cpu=$(awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }
        printf "%d", n * 1000 }' "$log.times")
      echo "$rc $((t1 - t0)) $cpu" >"$log.end"
    ) &
    pids+=($!)
  done
done
for p in "${pids[@]}"; do wait "$p"; done

# Summary: worker-seconds and executions are sums, coverage the largest any worker reported (they share
# the corpus, so each ends near the same value).
failed=0
for t in "${targets[@]}"; do
  ms=0 cpums=0 execs=0 cov=0 ft=0 codes=""
  for w in $(seq 1 "$WORKERS"); do
    log=$LOGS/$t.$w.log
    read -r rc dt cpu <"$log.end" || { rc=255 dt=0 cpu=0; }
    ms=$((ms + dt)) cpums=$((cpums + ${cpu:-0}))
    n=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    execs=$((execs + ${n:-0}))
    last=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
    c=$(echo "$last" | awk '{print $2}') f=$(echo "$last" | awk '{print $4}')
    [ "${c:-0}" -gt "$cov" ] && cov=$c
    [ "${f:-0}" -gt "$ft" ] && ft=$f
    if [ "$rc" -ne 0 ]; then
      codes="$codes${codes:+,}$w:$rc"
    fi
  done
  status=ok
  [ -n "$codes" ] && status="FAILED($codes)" && failed=1
  printf 'farm %s workers=%d seconds=%d cpu=%d execs=%d cov=%d ft=%d corpus=%d status=%s\n' "$t" "$WORKERS" \
    $(((ms + 500) / 1000)) $(((cpums + 500) / 1000)) \
    "$execs" "$cov" "$ft" "$(find "$CORPUS/$t" -type f | wc -l)" "$status"
done
if [ $failed -ne 0 ]; then
  echo "fuzz-farm: failures; artifacts in $ARTIFACTS:"
  ls -l "$ARTIFACTS"
  exit 1
fi
exit 0
