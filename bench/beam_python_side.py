"""The Python side of one Beam-handler call: what runinfer.beam.default_inference_fn spends outside the
library's run, measured on a CPU engine, where the library times its whole call (ri_context_last_timing's
enqueue_ms), so that call time minus library time is the binding's own work: checking the examples, the
item pointers, the output set from the pool, the ctypes call, and the split into per-example
PredictionResults.

Two implementations alternate on the same engine, context and examples, so that both see the same caches
(the run before each call evicts much of them, as it does in a pipeline):
  before  the handler as it was until 2026-11-27: the item addresses from a.ctypes.data;
  after   runinfer.beam.default_inference_fn as it is now (addresses from engine._address).
The rest of the path (checks, output pool, the split into PredictionResults) is the same code in both.
Both must return the same arrays (checked on every iteration).

    RI_LIB=build/libruninfer.so python3 bench/beam_python_side.py --onnx M.onnx [--batch 32] [--iters 12]
        [--threads 2] [--json out.json]
The engine takes uint8 HWC images (device preprocessing, as the GPU benchmark's fastest handler).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import runinfer  # noqa: E402
from runinfer import engine as E  # noqa: E402

SPEC = "size=300x300;layout=nchw;dtype=float32;mean=127.5,127.5,127.5;scale=0.0078125,0.0078125,0.0078125"


def before_inference_fn(batch, eng):
    from apache_beam.ml.inference.base import PredictionResult
    per = E._split_examples(eng, batch)
    ctx = eng._thread_context()
    items = [np.ascontiguousarray(a) for col in per for a in col]
    ptrs = (ctypes.c_void_p * len(items))(*[a.ctypes.data for a in items])
    with ctx._cell.lock:
        outs = ctx._run_locked(ptrs, len(batch), items=True)
    model_id = eng.model_id()
    return [PredictionResult(ex, {name: arr[i] for name, arr in outs.items()}, model_id)
            for i, ex in enumerate(batch)]


def main() -> int:
    from runinfer.beam import default_inference_fn
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    eng = runinfer.Engine.build(a.onnx, max_batch=a.batch, device="cpu", threads=a.threads,
                                metadata={"preprocess": SPEC}, preprocess_on_device=True)
    inp = eng.inputs[0]
    rng = np.random.default_rng(7)
    xs = [rng.integers(0, 256, tuple(inp.shape[1:]), dtype=np.uint8) for _ in range(a.batch)]
    fns = {"before": lambda: before_inference_fn(xs, eng), "after": lambda: default_inference_fn(xs, eng)}
    for fn in fns.values():
        fn()
    ctx = eng._thread_context()
    ctx.set_timing(True)
    python_us = {k: [] for k in fns}
    library_ms = {k: [] for k in fns}
    same = True
    for _ in range(a.iters):
        got = {}
        for name, fn in fns.items():
            t0 = time.perf_counter()
            res = fn()
            wall = (time.perf_counter() - t0) * 1e3
            lib = ctx.last_timing()["enqueue_ms"]
            python_us[name].append((wall - lib) * 1e3)
            library_ms[name].append(lib)
            # copies: the next call may reuse the arrays once these results are dropped
            got[name] = [{k: np.array(v) for k, v in r.inference.items()} for r in res]
            del res
        same &= all(x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
                    for x, y in zip(got["before"], got["after"]))
    rows = {k: {"python_median_us": statistics.median(v), "python_min_us": min(v),
                "library_median_ms": statistics.median(library_ms[k])} for k, v in python_us.items()}
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "onnx": os.path.basename(a.onnx), "device": "cpu",
              "batch": a.batch, "iters": a.iters, "threads": a.threads, "cpus": os.cpu_count(),
              "machine": platform.processor() or platform.machine(), "python": platform.python_version(),
              "numpy": np.__version__, "results_equal": bool(same), "rows": rows}
    print(json.dumps(report, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    eng.close()
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
