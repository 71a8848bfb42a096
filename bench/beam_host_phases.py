"""Where the time of one Beam-handler batch goes on the host: the pieces of Engine.run_examples measured one
by one on the same engine and examples, so that the handler's per-batch latency can be explained.

Rows (median of --iters runs after --warmup, milliseconds):
  stack_numpy     np.stack of the examples into the context's input buffer (the handler's path until
                  ri_context_run_items; single-threaded numpy)
  run_stacked     ri_context_run from that buffer (sent without a copy) into fresh output arrays
  run_items       ri_context_run_items from the examples (the library gathers them, in parallel on a GPU,
                  overlapped with the transfer) into fresh output arrays
  run_items_reuse the same into output arrays allocated once (what fresh arrays cost: page faults)
  run_examples    Engine.run_examples, the handler's call (checks, item pointers, run_items, outputs)
  alloc_outputs   np.empty of the outputs and a first write to every page
and, with timing on, the library's phases of each run path (h2d incl. staging, compute, d2h, enqueue).

    python3 bench/beam_host_phases.py --onnx M.onnx [--device cuda] [--precision fp16] [--batch 32]
        [--max-batch N] [--iters 40] [--json out.json] [--preprocess-on-device SPEC]
The environment's RI_CUDA_STAGE_THREADS / RI_CUDA_STAGE_CHUNK (staging copy threads and chunk bytes) are
recorded in the report.
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
from runinfer import _lib  # noqa: E402


def timed(fn, iters: int, warmup: int) -> dict:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": statistics.median(ts), "min_ms": min(ts), "mean_ms": statistics.fmean(ts)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", default="fp16")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-batch", type=int, default=0, help="the engine's maximum batch (default: --batch)")
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--preprocess-on-device", metavar="SPEC",
                    help="build with this preprocess metadata and device preprocessing: uint8 HWC examples")
    a = ap.parse_args()

    extra = {"metadata": {"preprocess": a.preprocess_on_device}, "preprocess_on_device": True} \
        if a.preprocess_on_device else {}
    eng = runinfer.Engine.build(a.onnx, max_batch=max(a.max_batch, a.batch), device=a.device, precision=a.precision,
                                **extra)
    ctx = runinfer.Context(eng)
    L = _lib.lib()
    h = ctx._h
    inp = eng.inputs[0]
    rng = np.random.default_rng(7)
    if inp.dtype == np.uint8:
        xs = [rng.integers(0, 256, tuple(inp.shape[1:]), dtype=np.uint8) for _ in range(a.batch)]
    else:
        xs = [rng.random(tuple(inp.shape[1:]), dtype=np.float32) for _ in range(a.batch)]
    p, n = ctypes.c_void_p(), ctypes.c_size_t()
    assert L.ri_context_input_buffer(h, 0, ctypes.byref(p), ctypes.byref(n)) == 0
    count = eng.max_batch * int(np.prod(inp.shape[1:]))
    view = np.frombuffer((ctypes.c_char * n.value).from_address(p.value), dtype=inp.dtype,
                         count=count).reshape((eng.max_batch,) + tuple(inp.shape[1:]))[:a.batch]
    shapes = [(a.batch,) + tuple(o.shape[1:]) for o in eng.outputs]
    dtypes = [o.dtype for o in eng.outputs]
    item_ptrs = (ctypes.c_void_p * a.batch)(*[x.ctypes.data for x in xs])
    kept = [np.empty(s, d) for s, d in zip(shapes, dtypes)]
    kept_ptrs = (ctypes.c_void_p * len(kept))(*[o.ctypes.data for o in kept])

    def fresh_ptrs():
        outs = [np.empty(s, d) for s, d in zip(shapes, dtypes)]
        return outs, (ctypes.c_void_p * len(outs))(*[o.ctypes.data for o in outs])

    def stack():
        np.stack(xs, out=view)

    def run_stacked():
        outs, ptrs = fresh_ptrs()
        assert L.ri_context_run(h, a.batch, (ctypes.c_void_p * 1)(p.value), ptrs) == 0
        return outs

    def run_items():
        outs, ptrs = fresh_ptrs()
        assert L.ri_context_run_items(h, a.batch, item_ptrs, ptrs) == 0
        return outs

    def run_items_reuse():
        assert L.ri_context_run_items(h, a.batch, item_ptrs, kept_ptrs) == 0

    def alloc_outputs():
        for s, d in zip(shapes, dtypes):
            np.empty(s, d).fill(0)

    stack()
    ref = run_stacked()
    got = run_items()
    same = all(np.array_equal(x, y) for x, y in zip(ref, got))
    rows = {}
    for name, fn in (("stack_numpy", stack), ("run_stacked", run_stacked), ("run_items", run_items),
                     ("run_items_reuse", run_items_reuse), ("run_examples", lambda: eng.run_examples(xs)),
                     ("alloc_outputs", alloc_outputs)):
        rows[name] = timed(fn, a.iters, a.warmup)
    phases = {}
    ctx.set_timing(True)
    for name, fn in (("run_stacked", run_stacked), ("run_items", run_items), ("run_items_reuse", run_items_reuse)):
        samples = []
        for _ in range(a.iters):
            fn()
            samples.append(ctx.last_timing())
        phases[name] = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    ctx.set_timing(False)
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "onnx": a.onnx, "device": a.device,
              "preprocess_on_device": a.preprocess_on_device,
              "precision": a.precision, "batch": a.batch, "max_batch": eng.max_batch, "iters": a.iters,
              "cpus": os.cpu_count(),
              "env": {k: v for k, v in os.environ.items() if k.startswith("RI_CUDA_STAGE")},
              "machine": platform.processor() or platform.machine(),
              "input_bytes": int(sum(x.nbytes for x in xs)),
              "output_bytes": int(sum(np.prod(s) * np.dtype(d).itemsize for s, d in zip(shapes, dtypes))),
              "items_equal_stacked": bool(same), "rows": rows, "library_phases_median_ms": phases}
    print(json.dumps(report, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    ctx.close()
    eng.close()
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
