#!/usr/bin/env python3
"""runinfer's CPU engine against onnxruntime on the same ONNX model, side by side in one run.

For every (batch, threads) pair the script alternates rounds: `runinfer bench` on the engine, then
onnxruntime (CPUExecutionProvider, ORT_ENABLE_ALL, intra_op_num_threads = threads,
inter_op_num_threads = 1) in a child Python process, each timing the same number of iterations on
random inputs after a warm-up. Optionally a third side runs the engine with RI_CPU_FAST=0 (the
reference kernels). Each side runs in its own child process so that its peak RSS (ru_maxrss from
wait4) belongs to it alone. Rounds alternate so that load from other processes on a shared machine
falls on both sides alike; the report gives the best round (least disturbed) and the median.

Output: a table on stdout and a JSON file (default bench/results/cpu-<date>.json) with the machine
(lscpu model name, online CPUs, load average before and after), the versions and every round.

  python3 bench/cpu_vs_ort.py --onnx /tmp/m/ssd_mobilenet_v2.onnx --cli build-xnn/runinfer \
      --batches 1,8 --threads 1,2 --iterations 30 --rounds 3 [--engine E.rie] [--with-ref] [--cpu-time]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=30).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown"


LAST_CPU_S = [0.0]  # user + system CPU seconds of the last child run_child waited for


def run_child(cmd: list[str], env: dict | None = None, timeout: float = 3600) -> tuple[int, str, str, int]:
    """Runs cmd; returns (rc, stdout, stderr, peak RSS in KiB of that child alone); leaves the child's CPU
    seconds in LAST_CPU_S[0]."""
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.02)
        p.returncode = os.waitstatus_to_exitcode(status)
        LAST_CPU_S[0] = ru.ru_utime + ru.ru_stime
        fo.seek(0)
        fe.seek(0)
        return p.returncode, fo.read().decode(errors="replace"), fe.read().decode(errors="replace"), ru.ru_maxrss


def ort_worker(args: argparse.Namespace) -> int:
    """Child mode: times onnxruntime and prints one JSON line."""
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads_one
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(args.onnx, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(12345)
    feeds = {}
    for i in sess.get_inputs():
        shape = [args.batch_one if not isinstance(d, int) else d for d in i.shape]
        feeds[i.name] = rng.standard_normal(shape, dtype=np.float32)
    for _ in range(args.warmup):
        sess.run(None, feeds)
    lat = []
    t0 = time.perf_counter()
    for _ in range(args.iterations):
        a = time.perf_counter()
        sess.run(None, feeds)
        lat.append((time.perf_counter() - a) * 1e3)
    total = time.perf_counter() - t0
    lat.sort()
    print(json.dumps({"throughput": args.batch_one * args.iterations / total,
                      "latency_ms": {"min": lat[0], "median": lat[len(lat) // 2], "max": lat[-1]},
                      "ort_version": ort.__version__}))
    return 0


def run_ours(cli: str, engine: str, batch: int, threads: int, iters: int, warmup: int, ref: bool) -> dict:
    env = dict(os.environ)
    if ref:
        env["RI_CPU_FAST"] = "0"
    else:
        env.pop("RI_CPU_FAST", None)
    env.pop("RI_PROFILE", None)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as jf:
        jpath = jf.name
    try:
        rc, out, err, rss = run_child([cli, "bench", "--engine", engine, "--batch", str(batch), "--threads",
                                       str(threads), "--iterations", str(iters), "--warmup", str(warmup),
                                       "--json", jpath], env=env)
        if rc != 0:
            raise RuntimeError(f"runinfer bench failed (rc {rc}): {err[-2000:]}")
        r = json.loads(Path(jpath).read_text())
    finally:
        os.unlink(jpath)
    return {"throughput": r["throughput"], "latency_ms": r["latency_ms"], "peak_rss_kib": rss,
            "cpu_s": LAST_CPU_S[0]}


def run_ort(onnx: str, batch: int, threads: int, iters: int, warmup: int) -> dict:
    rc, out, err, rss = run_child([sys.executable, __file__, "--ort-worker", "--onnx", onnx, "--batch-one",
                                   str(batch), "--threads-one", str(threads), "--iterations", str(iters),
                                   "--warmup", str(warmup)])
    if rc != 0:
        raise RuntimeError(f"onnxruntime worker failed (rc {rc}): {err[-2000:]}")
    r = json.loads(out.strip().splitlines()[-1])
    r["peak_rss_kib"] = rss
    r["cpu_s"] = LAST_CPU_S[0]
    return r


def cpu_ms_per_inference(run, batch: int, iters: int) -> float:
    """CPU milliseconds (user + system, all threads) per inference: two runs of iters and 3 * iters
    iterations, differenced so that start-up and warm-up cancel. Unlike wall time it hardly moves when
    other processes share the cores, which makes single-thread comparisons on a busy machine meaningful."""
    a = run(iters)["cpu_s"]
    b = run(3 * iters)["cpu_s"]
    return (b - a) / (2 * iters * batch) * 1e3


def summarize(rounds: list[dict]) -> dict:
    thr = [r["throughput"] for r in rounds]
    return {"best_throughput": max(thr), "median_throughput": statistics.median(thr),
            "best_median_latency_ms": min(r["latency_ms"]["median"] for r in rounds),
            "peak_rss_kib": max(r["peak_rss_kib"] for r in rounds), "rounds": rounds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--cli", default=str(REPO / "build" / "runinfer"))
    ap.add_argument("--engine", help="a built engine (else built into a temp dir with --max-batch max(batches))")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--with-ref", action="store_true", help="also time RI_CPU_FAST=0 (one short round)")
    ap.add_argument("--ref-iterations", type=int, default=3)
    ap.add_argument("--cpu-time", action="store_true",
                    help="also measure CPU ms per inference of both sides (two extra runs each)")
    ap.add_argument("--out", help="JSON path (default bench/results/cpu-<date>.json)")
    ap.add_argument("--ort-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--batch-one", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--threads-one", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.ort_worker:
        return ort_worker(args)

    batches = [int(x) for x in args.batches.split(",") if x]
    threads = [int(x) for x in args.threads.split(",") if x]
    tmpdir = None
    engine = args.engine
    build_s = None
    if not engine:
        tmpdir = tempfile.TemporaryDirectory(prefix="ri_bench_")
        engine = os.path.join(tmpdir.name, Path(args.onnx).stem + ".rie")
        t0 = time.perf_counter()
        rc, out, err, _ = run_child([args.cli, "build", "--onnx", args.onnx, "--save", engine, "--max-batch",
                                     str(max(batches))])
        build_s = time.perf_counter() - t0
        if rc != 0:
            print(f"build failed (rc {rc}): {err}", file=sys.stderr)
            return 1

    import onnxruntime
    result = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu_model": lscpu_model(), "online_cpus": os.cpu_count(), "platform": platform.platform(),
                    "loadavg_before": list(os.getloadavg())},
        "model": os.path.basename(args.onnx),
        "engine_build_s": build_s,
        "onnxruntime_version": onnxruntime.__version__,
        "iterations": args.iterations, "warmup": args.warmup, "rounds": args.rounds,
        "configs": [],
    }
    print(f"{result['machine']['cpu_model']}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
          f"{result['model']}; onnxruntime {onnxruntime.__version__}")
    print(f"{'batch':>5} {'thr':>3} {'runinfer inf/s':>15} {'ort inf/s':>10} {'speedup':>8} "
          f"{'ri lat ms':>10} {'ort lat ms':>10} {'ri RSS MiB':>10} {'ort RSS MiB':>11}"
          + (f" {'ref inf/s':>10}" if args.with_ref else ""))
    for b in batches:
        for t in threads:
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(run_ours(args.cli, engine, b, t, args.iterations, args.warmup, False))
                theirs.append(run_ort(args.onnx, b, t, args.iterations, args.warmup))
            cfg = {"batch": b, "threads": t, "runinfer": summarize(ours), "onnxruntime": summarize(theirs)}
            cfg["speedup_best"] = cfg["runinfer"]["best_throughput"] / cfg["onnxruntime"]["best_throughput"]
            cfg["speedup_median"] = cfg["runinfer"]["median_throughput"] / cfg["onnxruntime"]["median_throughput"]
            if args.with_ref:
                cfg["reference"] = summarize([run_ours(args.cli, engine, b, t, args.ref_iterations, 1, True)])
            if args.cpu_time:
                cfg["cpu_ms_per_inference"] = {
                    "runinfer": cpu_ms_per_inference(
                        lambda n: run_ours(args.cli, engine, b, t, n, args.warmup, False), b, args.iterations),
                    "onnxruntime": cpu_ms_per_inference(
                        lambda n: run_ort(args.onnx, b, t, n, args.warmup), b, args.iterations)}
            result["configs"].append(cfg)
            r, o = cfg["runinfer"], cfg["onnxruntime"]
            line = (f"{b:>5} {t:>3} {r['best_throughput']:>15.2f} {o['best_throughput']:>10.2f} "
                    f"{cfg['speedup_best']:>7.2f}x {r['best_median_latency_ms']:>10.2f} "
                    f"{o['best_median_latency_ms']:>10.2f} {r['peak_rss_kib'] / 1024:>10.1f} "
                    f"{o['peak_rss_kib'] / 1024:>11.1f}")
            if args.with_ref:
                line += f" {cfg['reference']['best_throughput']:>10.3f}"
            if args.cpu_time:
                c = cfg["cpu_ms_per_inference"]
                line += f"  cpu ms/inf: runinfer {c['runinfer']:.2f} ort {c['onnxruntime']:.2f}"
            print(line, flush=True)
    result["machine"]["loadavg_after"] = list(os.getloadavg())
    out = Path(args.out) if args.out else REPO / "bench" / "results" / f"cpu-{datetime.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    if tmpdir:
        tmpdir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
