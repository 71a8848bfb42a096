#!/usr/bin/env python3
"""The ST Q/DQ detector: runinfer's CPU engine with and without integer Q/DQ against onnxruntime, one run.

Sides, timed in alternating rounds on the same batch of real COCO photos (256x256 uint8, batch 8):
  runinfer default        the qdq_to_qlinear pass (QLinearConv / QLinearAdd, float Q/DQ convs in
                          onnxruntime's order): what `runinfer build` gives a CPU engine
  runinfer RI_QDQ_INTEGER=0  every Q/DQ group simulated in float32 as written (the behaviour before)
  onnxruntime all / none  CPU provider, graph optimisations ORT_ENABLE_ALL (default) / ORT_DISABLE_ALL
runinfer is timed with `runinfer bench --batch 8 --iterations K --warmup 1 --threads T`; onnxruntime with
intra_op_num_threads=T, one warm-up and K timed runs, each side in its own process.

Agreement: the share of each output's elements within 1e-3 absolute of onnxruntime's (the issue's
criterion), for both runinfer modes against both onnxruntime modes, on --photos photos at batch 8.

  python3 bench/st_qdq_vs_ort.py --cli build/runinfer [--photos 24] [--rounds 2] [--iterations 3] \
      [--threads 2] [--out bench/results/cpu-st-qdq-<date>.txt]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MODEL = SHARED / "models" / "st_ssd_mobilenet_v2_fpnlite_coco80_256_int8" / "ssd_mobilenet_v2_fpnlite_10_256_int8.onnx"
PHOTOS = SHARED / "images" / "coco" / "mlperf_coco_val_tiny300"
BATCH = 8


def photos(n: int) -> np.ndarray:
    from PIL import Image
    files = sorted(PHOTOS.glob("*.jpg"))[:n]
    return np.stack([np.asarray(Image.open(f).convert("RGB").resize((256, 256), Image.BILINEAR))
                     for f in files]).astype(np.uint8)


def ort_session(optimize: bool, threads: int):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return ort.InferenceSession(str(MODEL), so, providers=["CPUExecutionProvider"])


def ort_child(optimize: bool, threads: int, iterations: int, batch_file: str) -> None:
    """Runs in a child process: prints min and median batch latency in ms."""
    s = ort_session(optimize, threads)
    x = np.load(batch_file)
    feed = {s.get_inputs()[0].name: x}
    s.run(None, feed)
    t = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        s.run(None, feed)
        t.append(1e3 * (time.perf_counter() - t0))
    print(f"min {min(t):.1f} median {float(np.median(t)):.1f}")


def run(cmd, env=None) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if p.returncode:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{p.stdout}\n{p.stderr}")
    return p.stdout + p.stderr


def ri_outputs(cli: str, rie: Path, name: str, x: np.ndarray, tmp: Path, names) -> dict:
    parts = {n: [] for n in names}
    for b in range(0, len(x), BATCH):
        np.save(tmp / "in.npy", x[b:b + BATCH])
        out = tmp / f"out_{rie.stem}_{b}"
        run([cli, "infer", "--engine", str(rie), "--in", f"{name}={tmp / 'in.npy'}", "--out", str(out)])
        for n in names:
            parts[n].append(np.load(out / f"{n.replace('/', '_')}.npy"))
    return {n: np.concatenate(v) for n, v in parts.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=str(REPO / "build" / "runinfer"))
    ap.add_argument("--photos", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" /
                                         f"cpu-st-qdq-{datetime.date.today().isoformat()}.txt"))
    ap.add_argument("--ort-child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.ort_child:
        ort_child(a.ort_child[0] == "all", a.threads, int(a.ort_child[1]), a.ort_child[2])
        return
    if not MODEL.is_file():
        raise SystemExit(f"model not found: {MODEL}")
    import onnxruntime as ort
    lines = []

    def say(s: str) -> None:
        print(s, flush=True)
        lines.append(s)

    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        x = photos(a.photos)
        np.save(tmp / "batch.npy", x[:BATCH])
        engines = {}
        for label, env_extra in (("default", {}), ("RI_QDQ_INTEGER=0", {"RI_QDQ_INTEGER": "0"})):
            rie = tmp / ("int.rie" if not env_extra else "float.rie")
            run([a.cli, "build", "--onnx", str(MODEL), "--save", str(rie), "--max-batch", str(BATCH)],
                env=dict(os.environ, **env_extra))
            engines[label] = rie
        cpu = ""
        try:
            cpu = next(ln.split(":", 1)[1].strip() for ln in run(["lscpu"]).splitlines()
                       if ln.startswith("Model name:"))
        except StopIteration:
            pass
        say(f"# ST SSD MobileNet v2 FPN-lite int8 (opset 18 Q/DQ): runinfer CPU engine vs onnxruntime {ort.__version__}")
        say(f"# {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')} host: "
            f"{os.cpu_count()} CPUs, {cpu} ({platform.machine()}); load before {os.getloadavg()[0]:.2f}")
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        say(f"# repository commit {commit}; model {MODEL.name}")
        say(f"# command: python3 bench/st_qdq_vs_ort.py --cli {a.cli} --photos {a.photos} --rounds {a.rounds} "
            f"--iterations {a.iterations} --threads {a.threads}")
        say(f"# timing: batch {BATCH} of real photos, {a.threads} threads, {a.iterations} timed runs per round, "
            f"{a.rounds} alternating rounds; latency per batch in ms (min / median of the round)")
        for r in range(a.rounds):
            for label, rie in engines.items():
                out = run([a.cli, "bench", "--engine", str(rie), "--batch", str(BATCH), "--iterations",
                           str(a.iterations), "--warmup", "1", "--threads", str(a.threads)])
                lat = next(ln for ln in out.splitlines() if ln.startswith("latency"))
                say(f"round {r + 1} runinfer {label:18s} load {os.getloadavg()[0]:.2f}: {lat}")
            for mode in ("all", "none"):
                out = run([sys.executable, __file__, "--threads", str(a.threads), "--ort-child", mode,
                           str(a.iterations), str(tmp / "batch.npy")])
                say(f"round {r + 1} onnxruntime {mode:14s} load {os.getloadavg()[0]:.2f}: latency (ms): {out.strip()}")
        # agreement
        refs = {}
        for mode in ("all", "none"):
            s = ort_session(mode == "all", a.threads)
            names = [o.name for o in s.get_outputs()]
            iname = s.get_inputs()[0].name
            outs = [s.run(None, {iname: x[b:b + BATCH]}) for b in range(0, len(x), BATCH)]
            refs[mode] = {n: np.concatenate([o[i] for o in outs]) for i, n in enumerate(names)}
        say(f"# agreement on {len(x)} photos at batch {BATCH}: share of elements within 1e-3 absolute")
        for label, rie in engines.items():
            ours = ri_outputs(a.cli, rie, iname, x, tmp, names)
            for mode in ("all", "none"):
                shares = [f"{n} {100 * float(np.mean(np.abs(ours[n].astype(np.float64) - refs[mode][n]) <= 1e-3)):.4f}%"
                          for n in names]
                say(f"runinfer {label:18s} vs onnxruntime {mode:4s}: " + ", ".join(shares))
        shares = [f"{n} {100 * float(np.mean(np.abs(refs['none'][n].astype(np.float64) - refs['all'][n]) <= 1e-3)):.4f}%"
                  for n in names]
        say("onnxruntime none            vs onnxruntime all : " + ", ".join(shares))
    Path(a.out).write_text("\n".join(lines) + "\n")
    print(f"written {a.out}")


if __name__ == "__main__":
    main()
