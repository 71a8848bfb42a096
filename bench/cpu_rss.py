#!/usr/bin/env python3
"""Peak resident memory of CPU engines against issue 2's bound, with throughput, side by side in one run.

The bound: peak RSS while running <= 1.5 x (weights + largest planned activation set), where
  weights    = the engine's weight bytes (`runinfer inspect --json`: weights_bytes), and
  activations at batch b = the memory plan's arena for batch b (arena_bytes of an engine built from the same
               model with --max-batch b: the bytes the planner reserves for every activation at that batch).
The measured value is the peak RSS (ru_maxrss from wait4, which is Linux's VmHWM) of one `runinfer bench`
process: a C process holding only the engine, one context and the batch's input and output buffers, from
loading to the end of its runs. (Measuring inside Python would add the interpreter and whatever it imported.)

Every side named with --cli (e.g. the build before a change and the one after) runs the same engine file;
onnxruntime (cpu_vs_ort.py's worker, CPUExecutionProvider, one child process per round) is the peer. For
each (batch, threads) the sides run in rounds, in an order that rotates each round, so that load from other
processes on a shared machine falls on all of them alike; the report gives medians over the rounds.

  python3 bench/cpu_rss.py --onnx /tmp/m/ssd_mobilenet_v2.onnx --cli after=build-x/runinfer \\
      --cli before=/tmp/base/runinfer --batches 1,8 --threads 1,2 --rounds 5 --iterations 20 [--no-ort]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_vs_ort import lscpu_model, run_child, run_ort  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MIB = 1024.0 * 1024.0


def inspect(cli: str, engine: str) -> dict:
    out = subprocess.run([cli, "inspect", engine, "--json"], capture_output=True, text=True, check=True).stdout
    return json.loads(out[out.index("{"):])


def build(cli: str, onnx: str, path: str, max_batch: int) -> None:
    rc, _, err, _ = run_child([cli, "build", "--onnx", onnx, "--save", path, "--max-batch", str(max_batch)])
    if rc != 0:
        raise RuntimeError(f"build --max-batch {max_batch} failed (rc {rc}): {err[-2000:]}")


def bench(cli: str, engine: str, batch: int, threads: int, iters: int, warmup: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as jf:
        jpath = jf.name
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("RI_CPU_FAST", "RI_PROFILE")}
        rc, _, err, rss = run_child([cli, "bench", "--engine", engine, "--batch", str(batch), "--threads",
                                     str(threads), "--iterations", str(iters), "--warmup", str(warmup),
                                     "--json", jpath], env=env)
        if rc != 0:
            raise RuntimeError(f"{cli} bench failed (rc {rc}): {err[-2000:]}")
        r = json.loads(Path(jpath).read_text())
    finally:
        os.unlink(jpath)
    row = {"throughput": r["throughput"], "median_latency_ms": r["latency_ms"]["median"], "peak_rss_kib": rss}
    if "peak_rss_kib" in r:  # the CLI's own stages (newer builds)
        row["stages_kib"] = r["peak_rss_kib"]
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--cli", action="append", required=True, help="NAME=path of a runinfer CLI (repeatable)")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-ort", action="store_true", help="skip the onnxruntime peer")
    ap.add_argument("--out", help="JSON path (default bench/results/cpu-rss-<date>.json)")
    args = ap.parse_args(argv)

    sides = []
    for item in args.cli:
        name, _, path = item.partition("=")
        if not path:
            ap.error(f"--cli wants NAME=path, got '{item}'")
        sides.append((name, path))
    batches = [int(x) for x in args.batches.split(",") if x]
    threads = [int(x) for x in args.threads.split(",") if x]
    first_cli = sides[0][1]

    tmp = tempfile.TemporaryDirectory(prefix="ri_rss_")
    engine = os.path.join(tmp.name, "engine.rie")
    build(first_cli, args.onnx, engine, max(batches))
    info = inspect(first_cli, engine)
    weights = info["weights_bytes"]
    arena = {}
    for b in batches:
        path = os.path.join(tmp.name, f"plan{b}.rie")
        build(first_cli, args.onnx, path, b)
        arena[b] = inspect(first_cli, path)["arena_bytes"]

    result = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.argv[0])] + (argv if argv is not None else sys.argv[1:])),
        "machine": {"cpu_model": lscpu_model(), "online_cpus": os.cpu_count(), "platform": platform.platform(),
                    "loadavg_before": list(os.getloadavg())},
        "model": os.path.basename(args.onnx), "engine_max_batch": max(batches),
        "weights_bytes": weights, "arena_bytes_by_batch": arena,
        "sides": {n: p for n, p in sides}, "iterations": args.iterations, "warmup": args.warmup,
        "rounds": args.rounds, "configs": [],
    }
    names = [n for n, _ in sides] + ([] if args.no_ort else ["onnxruntime"])
    print(f"{result['machine']['cpu_model']}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
          f"{result['model']}: weights {weights / MIB:.2f} MiB")
    print(f"{'batch':>5} {'thr':>3} {'side':>12} {'inf/s (median)':>15} {'peak RSS MiB (median/max)':>26} "
          f"{'bound MiB':>9} {'RSS/(W+A)':>9}")
    for b in batches:
        bound = 1.5 * (weights + arena[b])
        for t in threads:
            rows = {n: [] for n in names}
            for r in range(args.rounds):
                order = names[r % len(names):] + names[:r % len(names)]
                for n in order:
                    if n == "onnxruntime":
                        o = run_ort(args.onnx, b, t, args.iterations, args.warmup)
                        rows[n].append({"throughput": o["throughput"], "median_latency_ms": o["latency_ms"]["median"],
                                        "peak_rss_kib": o["peak_rss_kib"]})
                    else:
                        rows[n].append(bench(dict(sides)[n], engine, b, t, args.iterations, args.warmup))
            cfg = {"batch": b, "threads": t, "activations_bytes": arena[b], "bound_bytes": bound, "sides": {}}
            for n in names:
                thr = [x["throughput"] for x in rows[n]]
                rss = [x["peak_rss_kib"] * 1024 for x in rows[n]]
                s = {"median_throughput": statistics.median(thr), "median_peak_rss_bytes": statistics.median(rss),
                     "max_peak_rss_bytes": max(rss), "rss_over_weights_plus_activations":
                         statistics.median(rss) / (weights + arena[b]), "rounds": rows[n]}
                cfg["sides"][n] = s
                print(f"{b:>5} {t:>3} {n:>12} {s['median_throughput']:>15.2f} "
                      f"{s['median_peak_rss_bytes'] / MIB:>14.1f} / {s['max_peak_rss_bytes'] / MIB:>8.1f} "
                      f"{bound / MIB:>9.1f} {s['rss_over_weights_plus_activations']:>9.2f}", flush=True)
            result["configs"].append(cfg)
    result["machine"]["loadavg_after"] = list(os.getloadavg())
    out = Path(args.out) if args.out else REPO / "bench" / "results" / f"cpu-rss-{datetime.date.today()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
