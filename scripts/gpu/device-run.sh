#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (the device tool's working copy, with .deps/ carried):
# unpacks the packages scripts/gpu/fetch-debs.sh downloaded, builds runinfer with the CUDA backend, generates
# the reference models, runs the GPU conformance test, compute-sanitizer memcheck on the tiny models, and
# the SSD MobileNet v2 benchmark. Optionally (PEER_SCRIPT=path/to/peer_bench.py) runs the PyTorch peer
# benchmark through bench/gpu_peers.sh.
#
# Everything is logged under $OUT (default ./out), in at most 8 files (the device tool returns 8):
#   summary.txt  one line per step: status and seconds, then the test's and sanitizer's verdicts
#   build.log    dependency unpacking, configure, build, model generation
#   test.log     tests/gpu/test_cuda_conv (the own convolution kernels against a CPU reference), then
#                tests/gpu/test_cuda_irblock (the fused inverted-residual block against a CPU reference), then
#                tests/gpu/test_cuda_expdw (the fused expansion -> depthwise kernel against the unfused kernels,
#                bit for bit, and SSD / MobileNet v2 engines with the fusion against engines without), then
#                tests/gpu/test_cuda_wggemm (the draft Hopper wgmma 1x1 kernel against a CPU reference), then
#                tests/gpu/test_cuda_ltconv (cuBLASLt 1x1 convolutions against a CPU reference), then
#                tests/gpu/test_cuda_ops on every model, then tests/gpu/test_cuda_batch_invariance (an image's
#                outputs alone and inside batches, bit for bit), then tests/gpu/test_cuda_branches (side-stream
#                nodes against in-line ones, bit for bit), then tests/gpu/test_cuda_preprocess (uint8 input
#                normalised on the device, fused and not, against the CPU), then tests/gpu/test_cuda_pdl with
#                RI_CUDA_PDL=1 (dependent launch chains, eager and in graphs), then tests/gpu/test_cuda_tactics (engine build
#                times at the default builder level, cold and with a warm timing cache, and stored tactics),
#                then tests/gpu/test_cuda_oom (real device
#                out-of-memory at engine load and context creation, runs on a full device), then
#                tests/gpu/test_cuda_memory (device memory at max batch 256 against the plan) (PASS/FAIL lines)
#   memcheck.log compute-sanitizer --tool memcheck on test_cuda_conv, test_cuda_irblock, test_cuda_expdw's
#                small cases (RI_TEST_EXPDW=quick), the tiny models and
#                test_cuda_branches and test_cuda_preprocess on tiny_ssd
#   bench.log, bench.jsonl   tests/gpu/bench_cuda on ssd_mobilenet_v2 (fp16, fp32; batch 1, 8, 64, 256),
#                with a per-node profile of each configuration in bench.log
#   peers.log, peers.json    bench/gpu_peers.sh (only with PEER_SCRIPT)
# Steps can be chosen with STEPS (default "build,test,memcheck,bench"; "peers" is added when PEER_SCRIPT is
# set); each step has a time limit (T_BUILD, T_TEST, T_EXPDWTEST, T_WGTEST, T_INVTEST, T_BRTEST, T_PPTEST, T_PDLTEST, T_TACTEST, T_OOMTEST, T_MEMTEST, T_MEMCHECK, T_BENCH, T_PEERS seconds) so that the whole
# run stays under 8 minutes. The exit status is 0 only when every step that ran succeeded.
# Sourced (scripts/gpu/beam-gpu.sh does), it only sets the variables above and defines the functions
# (setup_env, step, configure_and_build, memcheck_all), without running anything.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
ROOT=$(pwd)
OUT=${OUT:-$ROOT/out}
mkdir -p "$OUT"
DEPS=${DEPS:-/tmp/deps}
BUILD=${BUILD:-$ROOT/build-gpu}
MODELS=${MODELS:-/tmp/ri-models}
JOBS=${JOBS:-$(nproc)}
STEPS=${STEPS:-build,test,memcheck,bench}
if [ -n "${PEER_SCRIPT:-}" ]; then STEPS="$STEPS,peers"; fi
SUMMARY=$OUT/summary.txt
FAILED=0

log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/build.log"; }
has_step() { case ",$STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# step NAME LIMIT_SECONDS LOGFILE COMMAND...: runs the command under `timeout`, appending to LOGFILE, and
# records the status in the summary.
step() {
  local name=$1 limit=$2 logf=$3
  shift 3
  local t0=$SECONDS
  echo "== $name: $*" >>"$logf"
  if declare -F "$1" >/dev/null; then # a shell function: run it in a child bash under the time limit
    timeout --kill-after=10 "$limit" bash -c "$(declare -f "$1"); $1" >>"$logf" 2>&1
  else
    timeout --kill-after=10 "$limit" "$@" >>"$logf" 2>&1
  fi
  local rc=$?
  local dt=$((SECONDS - t0))
  local verdict=ok
  [ $rc -eq 124 ] && verdict="TIMEOUT after ${limit}s"
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && verdict="FAILED (exit $rc)"
  [ $rc -ne 0 ] && FAILED=1
  printf '%-10s %-22s %4ds  (%s)\n' "$name" "$verdict" "$dt" "$(basename "$logf")" | tee -a "$SUMMARY"
  return $rc
}

# ---- environment: unpacked packages, CUDA toolkit, cuDNN, cuBLASLt ------------------------------------------
setup_env() {
  rm -rf "$DEPS" && mkdir -p "$DEPS"
  local n=0
  for f in "$ROOT"/.deps/*.deb; do
    [ -e "$f" ] || continue
    dpkg -x "$f" "$DEPS" && n=$((n + 1))
  done
  log "unpacked $n packages into $DEPS"
  local arch=x86_64-linux-gnu pcdir="$DEPS/usr/lib/x86_64-linux-gnu/pkgconfig"
  mkdir -p "$pcdir"
  # The packages' .pc files name /usr; point them (and their absolute paths) at the unpacked tree.
  for pc in "$pcdir"/*.pc "$DEPS"/usr/share/pkgconfig/*.pc; do
    [ -e "$pc" ] || continue
    sed -i -e "s#^prefix=/usr\$#prefix=$DEPS/usr#" -e "s#=/usr/#=$DEPS/usr/#" -e "s#=/usr\$#=$DEPS/usr#" "$pc"
  done
  export PATH="$DEPS/usr/bin:$PATH"
  export LD_LIBRARY_PATH="$DEPS/usr/lib/$arch:$DEPS/usr/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PKG_CONFIG_PATH="$pcdir:$DEPS/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export CMAKE_PREFIX_PATH="$DEPS/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export CPATH="$DEPS/usr/include${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$DEPS/usr/lib/$arch${LIBRARY_PATH:+:$LIBRARY_PATH}"
  PKGCONFIG=$(command -v pkg-config || command -v pkgconf || true)
  # spng.pc requires zlib.pc, which only zlib's -dev package installs: provide a minimal one.
  if [ -n "$PKGCONFIG" ] && ! "$PKGCONFIG" --exists zlib 2>/dev/null; then
    printf 'prefix=/usr\nlibdir=/usr/lib/%s\nincludedir=/usr/include\n\nName: zlib\nDescription: zlib\nVersion: 1.3\nLibs: -lz\nCflags:\n' \
      "$arch" >"$pcdir/zlib.pc"
  fi

  NVCC=$(command -v nvcc || true)
  [ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
  CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "${NVCC:-/usr/local/cuda/bin/nvcc}")")}
  export PATH="$CUDA_HOME/bin:$PATH"
  # cuDNN and cuBLAS: in the toolkit, or in the PyTorch wheels (nvidia/cudnn, nvidia/cublas).
  local pydirs
  pydirs=$(python3 -c 'import importlib, os
for n in ("nvidia.cudnn", "nvidia.cublas", "nvidia"):
    try:
        m = importlib.import_module(n)
        print(" ".join(m.__path__))
    except Exception:
        pass' 2>/dev/null | tr '\n' ' ')
  CUDNN_H=""
  for d in ${CUDNN_ROOT:-} "$CUDA_HOME" /usr /usr/local $pydirs; do
    CUDNN_H=$(find "$d" -maxdepth 4 -name cudnn.h 2>/dev/null | head -1)
    [ -n "$CUDNN_H" ] && break
  done
  [ -z "$CUDNN_H" ] && CUDNN_H=$(find /opt /usr /root -name cudnn.h 2>/dev/null | head -1)
  export CUDNN_ROOT=${CUDNN_H:+$(dirname "$(dirname "$CUDNN_H")")}
  CUBLAS_H=$(find "$CUDA_HOME/include" "$CUDA_HOME/targets" -maxdepth 3 -name cublasLt.h 2>/dev/null | head -1)
  if [ -z "$CUBLAS_H" ]; then
    for d in $pydirs /opt /usr; do
      CUBLAS_H=$(find "$d" -name cublasLt.h 2>/dev/null | head -1)
      [ -n "$CUBLAS_H" ] && break
    done
  fi
  export CUBLAS_ROOT=${CUBLAS_H:+$(dirname "$(dirname "$CUBLAS_H")")}
  for r in "$CUDNN_ROOT" "$CUBLAS_ROOT" "$CUDA_HOME"; do
    [ -n "$r" ] || continue
    for l in "$r/lib" "$r/lib64"; do
      [ -d "$l" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$l"
    done
  done
  SANITIZER=$(command -v compute-sanitizer || true)
  [ -z "$SANITIZER" ] && [ -x "$CUDA_HOME/bin/compute-sanitizer" ] && SANITIZER=$CUDA_HOME/bin/compute-sanitizer
  [ -z "$SANITIZER" ] && SANITIZER=$(find /usr/local /opt -name compute-sanitizer -type f 2>/dev/null | head -1)
  export NVCC CUDA_HOME PKGCONFIG SANITIZER DEPS BUILD ROOT JOBS
  log "nvcc=${NVCC:-none} CUDA_HOME=$CUDA_HOME CUDNN_ROOT=${CUDNN_ROOT:-none} CUBLAS_ROOT=${CUBLAS_ROOT:-none}"
  log "pkg-config=${PKGCONFIG:-none} compute-sanitizer=${SANITIZER:-none} python3=$(command -v python3)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >>"$OUT/build.log" 2>&1 || true
}

# shellcheck disable=SC2317 # run through step(), in a child bash
configure_and_build() {
  # The shared library's target is "runinfer"; under Ninja that name is the CLI's file (OUTPUT_NAME runinfer),
  # so the library is named by its file there.
  local gen=() lib=runinfer
  command -v ninja >/dev/null 2>&1 && gen=(-G Ninja) && lib=libruninfer.so
  cmake -S "$ROOT" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DRI_WITH_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_CUDA_COMPILER="$NVCC" -DCUDAToolkit_ROOT="$CUDA_HOME" \
    -DRI_ONNX_PROTO="$DEPS/usr/include/onnx/onnx.proto" -DCMAKE_PREFIX_PATH="$DEPS/usr" \
    ${PKGCONFIG:+-DPKG_CONFIG_EXECUTABLE="$PKGCONFIG"} -DCUDNN_ROOT="$CUDNN_ROOT" -DCUBLAS_ROOT="$CUBLAS_ROOT" &&
    cmake --build "$BUILD" -j"$JOBS" --target "$lib" runinfer_cli $(for f in "$ROOT"/tests/gpu/*.c; do basename "$f" .c; done)
}

# shellcheck disable=SC2317 # run through step(), in a child bash
memcheck_all() {
  # Heuristic algorithm choice keeps cuDNN's timing runs out of the (slow) instrumented run.
  local sc=("$SANITIZER" --tool memcheck --error-exitcode 3 --leak-check full)
  "${sc[@]}" "$BUILD/test_cuda_conv" || return $?
  "${sc[@]}" "$BUILD/test_cuda_irblock" || return $?
  RI_TEST_EXPDW=quick "${sc[@]}" "$BUILD/test_cuda_expdw" || return $?
  RI_CUDA_CONV_ALGO=heuristic "${sc[@]}" "$BUILD/test_cuda_ops" "$MODELS" tiny_conv tiny_ssd tiny_shape_ops tiny_qdq \
    || return $?
  "${sc[@]}" "$BUILD/test_cuda_branches" "$MODELS" tiny_ssd || return $?
  "${sc[@]}" "$BUILD/test_cuda_preprocess" "$MODELS" tiny
}
# build_and_models: the build and the reference models, the first steps of every device script.
build_and_models() {
  step build "${T_BUILD:-240}" "$OUT/build.log" configure_and_build
  step models "${T_MODELS:-90}" "$OUT/build.log" python3 "$ROOT/models/make_models.py" --out "$MODELS" --reuse
}

# gpu_tests [SKIP...]: every GPU test program (tests/gpu), appending to $OUT/test.log, except the steps named
# (a script that ran one of them already, e.g. convtest first).
# shellcheck disable=SC2120 # the other device scripts pass the steps to skip
gpu_tests() {
  local skip=" $* "
  [[ $skip == *" convtest "* ]] || step convtest "${T_CONVTEST:-60}" "$OUT/test.log" "$BUILD/test_cuda_conv"
  step irbtest "${T_IRBTEST:-60}" "$OUT/test.log" "$BUILD/test_cuda_irblock"
  [[ $skip == *" expdwtest "* ]] ||
    step expdwtest "${T_EXPDWTEST:-120}" "$OUT/test.log" "$BUILD/test_cuda_expdw" "$MODELS"
  [[ $skip == *" wgtest "* ]] || step wgtest "${T_WGTEST:-90}" "$OUT/test.log" "$BUILD/test_cuda_wggemm"
  [[ $skip == *" lttest "* ]] || step lttest "${T_LTTEST:-90}" "$OUT/test.log" "$BUILD/test_cuda_ltconv"
  step dwhtest "${T_DWHTEST:-90}" "$OUT/test.log" "$BUILD/test_cuda_dwh2" "$MODELS"
  step test "${T_TEST:-200}" "$OUT/test.log" "$BUILD/test_cuda_ops" "$MODELS"
  step invtest "${T_INVTEST:-90}" "$OUT/test.log" "$BUILD/test_cuda_batch_invariance" "$MODELS"
  step brtest "${T_BRTEST:-90}" "$OUT/test.log" "$BUILD/test_cuda_branches" "$MODELS"
  step pptest "${T_PPTEST:-90}" "$OUT/test.log" "$BUILD/test_cuda_preprocess" "$MODELS"
  step pdltest "${T_PDLTEST:-60}" "$OUT/test.log" env RI_CUDA_PDL=1 "$BUILD/test_cuda_pdl"
  step tactest "${T_TACTEST:-150}" "$OUT/test.log" env -u RI_BUILDER_LEVEL "$BUILD/test_cuda_tactics" "$MODELS"
  step oomtest "${T_OOMTEST:-150}" "$OUT/test.log" "$BUILD/test_cuda_oom" "$MODELS"
  step memtest "${T_MEMTEST:-120}" "$OUT/test.log" "$BUILD/test_cuda_memory" "$MODELS"
}

# memcheck_step LIMIT: memcheck_all under compute-sanitizer, or a SKIPPED line where there is none.
memcheck_step() {
  if [ -n "$SANITIZER" ]; then
    export MODELS SANITIZER BUILD
    step memcheck "$1" "$OUT/memcheck.log" memcheck_all
  else
    echo "memcheck   SKIPPED (no compute-sanitizer)" | tee -a "$SUMMARY"
  fi
}

# peers_step BUDGET: bench/gpu_peers.sh with PEER_SCRIPT (when it exists), limited to what is left of BUDGET
# seconds (the device call's limit; T_PEERS overrides), run last so that only it can be cut.
peers_step() {
  [ -n "${PEER_SCRIPT:-}" ] && [ -f "$PEER_SCRIPT" ] || return 0
  echo '{"peers": "runinfer on the peer export, default"}' >>"$OUT/bench.jsonl"
  local t=${T_PEERS:-$(($1 - SECONDS))}
  [ "$t" -lt 30 ] && t=30
  step peers "$t" "$OUT/peers.log" env OUT="$OUT" BUILD="$BUILD" "$ROOT/bench/gpu_peers.sh" "$PEER_SCRIPT"
  grep -E '^(\| torch|fp(16|32) +batch|== )' "$OUT/peers.log" >>"$SUMMARY"
}

# test_verdicts: the tests' count lines, their first FAIL lines and memcheck's summaries, into the summary.
test_verdicts() {
  {
    grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/test.log" 2>/dev/null | sed 's/^/test: /'
    grep -E '^FAIL' "$OUT/test.log" 2>/dev/null | head -20
    grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" 2>/dev/null | sed 's/^/memcheck: /'
  } >>"$SUMMARY"
}

# expdw_memcheck_step: test_cuda_expdw's kernel cases below 40x40 pixels (RI_TEST_EXPDW=quick; no models
# directory: no engines) under compute-sanitizer memcheck into $OUT/test.log, its summary line into the
# summary; a SKIPPED line where there is no compute-sanitizer.
expdw_memcheck_step() {
  if [ -n "$SANITIZER" ]; then
    step memcheck "${T_MEMCHECK:-200}" "$OUT/test.log" env RI_TEST_EXPDW=quick "$SANITIZER" --tool memcheck \
      --error-exitcode 3 --leak-check full "$BUILD/test_cuda_expdw"
    grep -E 'ERROR SUMMARY' "$OUT/test.log" | sed 's/^/memcheck: /' >>"$SUMMARY"
  else
    echo "memcheck   SKIPPED (no compute-sanitizer)" | tee -a "$SUMMARY"
  fi
}

# ab_profile_lines REGEX: from $OUT/ab.log (ab-bench.sh with AB_PROFILE=1), the batch-256 profiles' total
# lines and the lines matching REGEX (an awk regular expression), each prefixed "b256 ROUND SETTING: ", into
# the summary.
ab_profile_lines() {
  awk -v re="$1" '
    /^== round/ { run = $3 " " $4; prof = 0; next }
    /^# per-node profile at batch/ { prof = ($NF == 256); next }
    /^fp(16|32) +batch/ { prof = 0; next }
    prof && (/^# profile:/ || $0 ~ re) { print "b256 " run ": " $0 }
  ' "$OUT/ab.log" >>"$SUMMARY"
}

# Scripts that source this file append to the summary (several may run in one device call, whose $OUT starts
# empty); run directly, this script starts it afresh.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then return 0; fi
: >"$SUMMARY"
setup_env
has_step build && build_and_models
if has_step test; then
  # Engines tune their tactics at build (builder level 3 by default) and the conformance tests build many.
  # One timed build of the reference SSD decides: when it takes over PROBE_MAX seconds the tests other than
  # test_cuda_tactics build at level 1 (RI_BUILDER_LEVEL), so the step limits hold.
  if [ -z "${RI_BUILDER_LEVEL:-}" ]; then
    t0=$SECONDS
    "$BUILD/runinfer" build --onnx "$MODELS/ssd_mobilenet_v2.onnx" --save /tmp/probe.rie --device cuda \
      --precision fp16 --max-batch 8 >>"$OUT/test.log" 2>&1
    dt=$((SECONDS - t0))
    echo "probe      build of ssd fp16 max batch 8 at the default level: ${dt}s" | tee -a "$SUMMARY"
    [ "$dt" -gt "${PROBE_MAX:-15}" ] && export RI_BUILDER_LEVEL=1 PROBE_SET=1 &&
      echo "probe      tests build at level 1" | tee -a "$SUMMARY"
  fi
  # shellcheck disable=SC2119 # no step to skip here
  gpu_tests
  [ -n "${PROBE_SET:-}" ] && unset RI_BUILDER_LEVEL # the benchmarks measure default-level engines
fi
if has_step memcheck; then
  memcheck_step "${T_MEMCHECK:-150}"
fi
if has_step bench; then
  rm -f "$OUT/bench.jsonl"
  step bench "${T_BENCH:-150}" "$OUT/bench.log" "$BUILD/bench_cuda" "$MODELS/ssd_mobilenet_v2.onnx" \
    --batches 1,8,64,256 --seconds 1.5 --profile --json "$OUT/bench.jsonl"
fi
if has_step peers; then
  step peers "${T_PEERS:-300}" "$OUT/peers.log" env OUT="$OUT" BUILD="$BUILD" "$ROOT/bench/gpu_peers.sh" "$PEER_SCRIPT"
fi

{
  echo "---"
  [ -f "$OUT/test.log" ] && grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/test.log" | sed 's/^/test: /'
  [ -f "$OUT/test.log" ] && grep -c '^FAIL' "$OUT/test.log" | sed 's/^/test FAIL lines: /'
  [ -f "$OUT/memcheck.log" ] && grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | sed 's/^/memcheck: /'
  [ -f "$OUT/bench.log" ] && grep -E '^fp(16|32)' "$OUT/bench.log"
} >>"$SUMMARY" 2>/dev/null
sed -n "/^---$/,\$p" "$SUMMARY"
exit $FAILED
