#!/usr/bin/env bash
# Run ON the device machine from the repository root, with .deps/ and a fuzz pack carried: runs
# scripts/fuzz-farm.sh on the machine's cores with prebuilt fuzz targets, carrying the corpus from call to call.
#
# The pack (PACK, default .fuzzpack/, git-ignored) holds what the machine cannot build (it has no clang):
#   bin/fuzz_<target>   the five libFuzzer targets from build-fuzz/ (clang, ASan + UBSan)
#   lsan_probe          optional: scripts/gpu/lsan-probe.c built with -fsanitize=address
#   corpus.tar.gz       optional: the corpus a previous call returned (restored before fuzzing)
# The targets need libprotobuf-c, libspng and libturbojpeg, unpacked here from the bookworm .debs in .deps/.
#
# Environment:
#   WORKERS       processes per target (default 3)
#   FUZZ_SECONDS  seconds each worker fuzzes (default 530)
#   NICE          niceness of the fuzzers (default 0); with 19, other work on the machine goes first, and the
#                 summary's cpu= says how much CPU time the fuzzers got
#   TRIAL         seconds of a first one-worker run of every target that checks that the targets start and
#                 that LeakSanitizer works (default 0: no trial)
# If the probe's leak is not caught or the trial reports a LeakSanitizer failure, the main run goes on with
# leak detection off and the summary says so.
# Writes into OUT (default ./out) three files:
#   fuzz-summary.txt  environment, probe and trial verdicts, the farm's per-target lines
#   corpus.tar.gz     corpus/<target>/ after this call, and artifacts/ (reproducers) when any were written
#   fuzz-logs.tar.gz  one libFuzzer log per worker (trial logs under trial/)
# Exit status: the farm's (0 clean, 1 something found, 2 setup failure).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
OUT=${OUT:-$ROOT/out}
PACK=${PACK:-$ROOT/.fuzzpack}
WORK=${WORK:-/tmp/fuzzwork}
WORKERS=${WORKERS:-3}
FUZZ_SECONDS=${FUZZ_SECONDS:-530}
NICE=${NICE:-0}
TRIAL=${TRIAL:-0}
mkdir -p "$OUT"
SUM=$OUT/fuzz-summary.txt
: >"$SUM"
say() { echo "$*" | tee -a "$SUM"; }

rm -rf "$WORK" && mkdir -p "$WORK/deps" "$WORK/logs/trial" "$WORK/artifacts"
n=0
for p in libprotobuf-c1 libspng0 libturbojpeg0; do
  for f in "$ROOT"/.deps/"${p}"_*.deb; do
    [ -e "$f" ] && dpkg -x "$f" "$WORK/deps" && n=$((n + 1))
  done
done
export LD_LIBRARY_PATH="$WORK/deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
say "host: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
say "unpacked $n of 3 packages; $(date -u +%Y-%m-%dT%H:%M:%SZ)"
missing=$(for b in "$PACK"/bin/fuzz_*; do ldd "$b" | grep 'not found'; done | sort -u)
[ -z "$missing" ] || { say "missing libraries: $missing" && exit 2; }

mkdir -p "$WORK/corpus"
if [ -f "$PACK/corpus.tar.gz" ]; then
  tar -xzf "$PACK/corpus.tar.gz" -C "$WORK" corpus
  say "restored corpus: $(for d in "$WORK"/corpus/*/; do printf '%s=%s ' "$(basename "$d")" "$(find "$d" -type f | wc -l)"; done)"
else
  say "no corpus carried: starting from the seeds"
fi

LEAKS=1
if [ -x "$PACK/lsan_probe" ]; then
  if ASAN_OPTIONS=detect_leaks=1 "$PACK/lsan_probe" >"$WORK/logs/trial/lsan_probe.log" 2>&1; then
    say "lsan probe: NOT caught (exit 0): leak detection does not work here"
    LEAKS=0
  elif grep -q 'LeakSanitizer: detected memory leaks' "$WORK/logs/trial/lsan_probe.log"; then
    say "lsan probe: caught (LeakSanitizer reported the planted leak)"
  else
    say "lsan probe: failed without a leak report: $(tail -n 3 "$WORK/logs/trial/lsan_probe.log" | tr '\n' ' ')"
    LEAKS=0
  fi
fi

farm() { # farm SECONDS WORKERS LOGDIR LEAKS
  FUZZ_SECONDS=$1 WORKERS=$2 LOGS=$3 LEAKS=$4 BIN="$PACK/bin" CORPUS="$WORK/corpus" ARTIFACTS="$WORK/artifacts" \
    timeout --kill-after=10 $(($1 + 60)) nice -n "$NICE" "$ROOT/scripts/fuzz-farm.sh"
}
trial_rc=0
if [ "$TRIAL" -gt 0 ]; then
  farm "$TRIAL" 1 "$WORK/logs/trial" "$LEAKS" >"$WORK/logs/trial/farm.out" 2>&1
  trial_rc=$?
  grep '^farm ' "$WORK/logs/trial/farm.out" | sed 's/^/trial: /' | tee -a "$SUM"
  if grep -l 'LeakSanitizer has encountered a fatal error\|LeakSanitizer does not work' "$WORK"/logs/trial/*.log \
    >/dev/null 2>&1; then
    say "trial: LeakSanitizer failed in this container; the main run has leak detection OFF"
    LEAKS=0 trial_rc=0
  fi
fi
farm "$FUZZ_SECONDS" "$WORKERS" "$WORK/logs" "$LEAKS" >"$WORK/logs/farm.out" 2>&1
rc=$?
grep '^farm ' "$WORK/logs/farm.out" | tee -a "$SUM"
[ $rc -eq 0 ] && rc=$trial_rc
say "leak detection: $([ $LEAKS -eq 1 ] && echo on || echo OFF); farm exit $rc"
if [ -n "$(ls -A "$WORK/artifacts")" ]; then
  say "artifacts:"
  ls -l "$WORK/artifacts" | tee -a "$SUM"
fi
arts=()
[ -n "$(ls -A "$WORK/artifacts")" ] && arts=(artifacts)
tar -czf "$OUT/corpus.tar.gz" -C "$WORK" corpus "${arts[@]}"
# The device tool returns files of at most 16 MiB: past 12 MiB, each corpus is reduced to the inputs that
# keep its coverage (libFuzzer -merge=1, all targets at once) and packed again.
if [ "$(stat -c %s "$OUT/corpus.tar.gz")" -gt $((12 << 20)) ]; then
  for t in "$WORK"/corpus/*/; do
    t=$(basename "$t")
    mkdir -p "$WORK/merged/$t"
    ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 timeout 60 "$PACK/bin/fuzz_$t" -merge=1 -timeout=10 \
      -rss_limit_mb=2048 -max_len=1048576 "$WORK/merged/$t" "$WORK/corpus/$t" >"$WORK/logs/merge-$t.log" 2>&1 &
  done
  wait
  for t in "$WORK"/merged/*/; do
    t=$(basename "$t")
    grep -q 'MERGE-OUTER: [0-9]* new files' "$WORK/logs/merge-$t.log" &&
      rm -rf "$WORK/corpus/$t" && mv "$WORK/merged/$t" "$WORK/corpus/$t"
  done
  tar -czf "$OUT/corpus.tar.gz" -C "$WORK" corpus "${arts[@]}"
  say "corpus reduced with -merge=1: $(for d in "$WORK"/corpus/*/; do printf '%s=%s ' "$(basename "$d")" "$(find "$d" -type f | wc -l)"; done)"
fi
tar -czf "$OUT/fuzz-logs.tar.gz" -C "$WORK" logs
say "corpus.tar.gz $(du -h "$OUT/corpus.tar.gz" | cut -f1), fuzz-logs.tar.gz $(du -h "$OUT/fuzz-logs.tar.gz" | cut -f1)"
exit $rc
