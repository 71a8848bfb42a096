#!/usr/bin/env python3
"""Beam RunInference model handlers side by side on the DirectRunner: runinfer's
RunInferenceEngineHandlerNumPy against Beam's own OnnxModelHandlerNumpy (onnxruntime, CPU) and, when torch
(and onnx2torch, to convert the same ONNX) can be imported, PytorchModelHandlerTensor.

Every handler gets the same examples: N images (seeded), sizes varied, preprocessed once with the model's
preprocessing into float32 CHW arrays and saved to one .npy; the pipeline creates the indices and a Map
reads example i (memory-mapped). For each batch size B (default 1 and
32) BatchElements is pinned to min = max = B. Per (handler, B) the script runs one pipeline and reads from
its result the mean of Beam's inference_batch_latency_micro_secs (the model call only, as Beam measures
it for every handler) plus the pipeline's wall time (p.run() to done, which includes model loading and
Beam's overhead). Rounds alternate handlers so that load from other processes falls on all alike; the
report keeps each side's best round (least disturbed) and the median.

Outputs: a table on stdout, bench/results/beam-<date>.json (machine, versions, every round), and a section
"Beam RunInference handlers" in docs/performance.md (replaced if this script wrote it before; nothing else in
the file is touched).

  RI_LIB=build/libruninfer.so python3 bench/beam_handlers.py [--onnx M.onnx] [--images 96] \
      [--batches 1,32] [--rounds 2] [--threads 0] [--no-docs]

Not a test: nothing is asserted beyond a sanity check that both handlers agree on the first output.
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
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "models"))

SSD_PREPROCESS = ("size=300x300;layout=nchw;dtype=float32;mean=127.5,127.5,127.5;"
                  "scale=0.0078125,0.0078125,0.0078125;resize=bilinear;order=rgb")
DOCS_HEADING = "## Beam RunInference handlers (DirectRunner, CPU)"
# DirectRunner first tries the Prism runner, which it downloads; a path that does not exist makes it fall
# back to the in-process FnApiRunner at once, without network
BEAM_ARGS = ["--runner=DirectRunner", "--prism_location=/nonexistent/runinfer-bench/prism"]


def lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=30).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown"


def make_examples(n: int, preprocess: str) -> list:
    import runinfer
    rng = np.random.default_rng(1234)
    spec = runinfer.PreprocessSpec(preprocess)
    out = []
    for _ in range(n):
        h, w = int(rng.integers(240, 480)), int(rng.integers(240, 640))
        img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        out.append(runinfer.preprocess(img, spec)[0])
    return out


def ours(onnx: str, engine: str, b: int, threads: int):
    from runinfer.beam import RunInferenceEngineHandlerNumPy
    return RunInferenceEngineHandlerNumPy(b, b, engine_path=engine, onnx_path=onnx, threads=threads,
                                          build_options={"max_batch": 32, "threads": threads})


def onnx_handler(onnx: str, b: int, threads: int):
    """Beam's handler as shipped; with threads, a subclass that sets onnxruntime's thread counts at load time
    (SessionOptions cannot be pickled, so they cannot be handed to the handler's constructor)."""
    from apache_beam.ml.inference.onnx_inference import OnnxModelHandlerNumpy

    class Threaded(OnnxModelHandlerNumpy):
        def load_model(self):
            import onnxruntime as ort
            so = ort.SessionOptions()
            so.log_severity_level = 3
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            self._session_options = so
            try:
                return super().load_model()
            finally:
                self._session_options = None

    cls = Threaded if threads else OnnxModelHandlerNumpy
    return cls(onnx, providers=["CPUExecutionProvider"], min_batch_size=b, max_batch_size=b)


def torch_handler(onnx: str, b: int, scratch: Path, threads: int = 0):
    """PytorchModelHandlerTensor on the same ONNX converted with onnx2torch and traced; None when either
    package is missing."""
    try:
        import onnx2torch
        import torch
        from apache_beam.ml.inference.pytorch_inference import PytorchModelHandlerTensor
    except ImportError:
        return None
    if threads:
        torch.set_num_threads(threads)
    ts = scratch / "model.torchscript.pt"
    if not ts.exists():
        model = onnx2torch.convert(onnx).eval()
        traced = torch.jit.trace(model, torch.zeros(1, 3, 300, 300))
        traced.save(str(ts))
    return PytorchModelHandlerTensor(torch_script_model_path=str(ts), device="CPU", min_batch_size=b,
                                     max_batch_size=b)


def load_example(i: int, path: str, as_torch: bool):
    """Example i of the .npy written once by main(): the pipeline carries indices, not megabytes of arrays
    (beam.Create pickles and bz2-compresses its values into the pipeline proto, which takes seconds per
    megabyte and would swamp the measurement)."""
    x = np.array(np.load(path, mmap_mode="r")[i])
    if as_torch:
        import torch
        return torch.from_numpy(x)
    return x


def run_one(handler, examples_path: str, n: int, as_torch: bool) -> dict:
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.ml.inference.base import RunInference
    from apache_beam.options.pipeline_options import PipelineOptions

    t0 = time.perf_counter()
    p = beam.Pipeline(options=PipelineOptions(BEAM_ARGS))
    _ = (p | beam.Create(list(range(n)), reshuffle=False)
         | beam.Map(load_example, examples_path, as_torch)
         | RunInference(handler) | beam.Map(lambda r: None))
    result = p.run()
    result.wait_until_finish()
    wall = time.perf_counter() - t0
    ns = handler.get_metrics_namespace()
    q = result.metrics().query(MetricsFilter().with_namespace(ns).with_name("inference_batch_latency_micro_secs"))
    d = q["distributions"][0].committed
    sizes = result.metrics().query(MetricsFilter().with_namespace(ns).with_name("inference_request_batch_size"))
    s = sizes["distributions"][0].committed
    return {"namespace": ns, "batches": d.count, "mean_latency_us": d.sum / d.count, "min_latency_us": d.min,
            "max_latency_us": d.max, "mean_batch_size": s.sum / s.count, "wall_s": wall,
            "per_image_ms": d.sum / 1000.0 / s.sum}


def sanity(onnx: str, engine: str, x: np.ndarray) -> float:
    """max |ours - onnxruntime| on the first output of one example (both handlers must compute the same)."""
    import onnxruntime as ort
    import runinfer
    eng = runinfer.Engine.load(engine)
    a = eng.run(x[None])[eng.outputs[0].name]
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(onnx, so, providers=["CPUExecutionProvider"])
    b = sess.run(None, {sess.get_inputs()[0].name: x[None]})[0]
    return float(np.max(np.abs(a - b)))


def docs_section(report: dict, json_rel: str) -> str:
    rows = ["| threads | batch | handler | mean batch latency (ms) | per image (ms) | median of rounds (ms) | "
            "wall (s) | onnxruntime / ours |",
            "|---|---|---|---|---|---|---|---|"]
    by = {(r["threads"], r["batch"], r["handler"]): r for r in report["best"]}
    for (t, b, h), r in sorted(by.items()):
        peer = by.get((t, b, "OnnxModelHandlerNumpy"))
        ratio = f"{peer['mean_latency_us'] / r['mean_latency_us']:.2f}" if peer and h != peer["handler"] else "-"
        rows.append(f"| {t or 'all'} | {b} | {h} | {r['mean_latency_us'] / 1000:.1f} | {r['per_image_ms']:.1f} | "
                    f"{r['median_latency_us'] / 1000:.1f} | {r['wall_s']:.1f} | {ratio} |")
    m = report["machine"]
    skipped = "; ".join(report["skipped"]) or "none"
    note = ""
    if m["load_before"][0] > (m["cpus"] or 1) and 0 in report["threads"]:
        note = (f"The load average was above the {m['cpus']} CPUs during the run, so the rows with threads = all "
                "measure each library's thread pool under oversubscription; the rows with 1 thread compare the "
                "kernels themselves.")
    para = textwrap.fill(
        f"`bench/beam_handlers.py` on {m['cpu']} ({m['cpus']} CPUs, load average {m['load_before']} before, "
        f"{m['load_after']} after; a shared machine), {report['date']}: {report['model']}, {report['images']} "
        f"images preprocessed once and fed to every handler, BatchElements pinned to the batch size, "
        f"best of {report['rounds']} alternating rounds. Latency = the mean of Beam's "
        "inference_batch_latency_micro_secs (the model call as Beam times it for every handler); wall = the "
        "whole pipeline including model loading; threads = CPU threads per model call on both sides (all = "
        "every CPU, each library's default). Last column = onnxruntime latency / ours (above 1: ours faster). "
        f"Raw data: `{json_rel}`. Skipped: {skipped}. {note}", width=110)
    return "\n".join([DOCS_HEADING, para, "", *rows, ""])


def update_docs(section: str) -> None:
    path = REPO / "docs" / "performance.md"
    text = path.read_text() if path.exists() else "# Performance\n"
    start = text.find(DOCS_HEADING)
    if start >= 0:
        nxt = text.find("\n## ", start + len(DOCS_HEADING))
        text = text[:start] + section + (text[nxt + 1:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text if text.endswith("\n") else text + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onnx", help="ONNX model with a [N,3,300,300] input (default: ssd_mobilenet_v2 from "
                                   "models/make_models.py, generated into a scratch folder)")
    ap.add_argument("--preprocess", default=SSD_PREPROCESS, help="runinfer preprocess spec for the examples")
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", default="0,1",
                    help="CPU threads per model call, both sides, comma-separated settings (0: all CPUs)")
    ap.add_argument("--json", help="output JSON (default bench/results/beam-<date>.json)")
    ap.add_argument("--no-docs", action="store_true", help="do not touch docs/performance.md")
    args = ap.parse_args()

    import apache_beam
    import onnxruntime
    import runinfer

    scratch = Path(tempfile.mkdtemp(prefix="runinfer-beam-bench-"))
    onnx = args.onnx
    model_name = Path(onnx).stem if onnx else "ssd_mobilenet_v2"
    if onnx is None:
        import make_models
        onnx = make_models.build_models(str(scratch), only=["ssd_mobilenet_v2"], verbose=False)["ssd_mobilenet_v2"]
    engine = str(scratch / "model.rie")  # built from the ONNX by our handler's first load, then reused
    from runinfer.beam import load_engine
    load_engine(engine, onnx, {"max_batch": 32}).close()

    batches = [int(b) for b in args.batches.split(",")]
    thread_settings = [int(t) for t in args.threads.split(",")]
    examples = make_examples(args.images, args.preprocess)
    examples_path = str(scratch / "examples.npy")
    np.save(examples_path, np.stack(examples))
    diff = sanity(onnx, engine, examples[0])
    load_before = os.getloadavg()
    sides = [("RunInferenceEngineHandlerNumPy", lambda b, t: ours(onnx, engine, b, t)),
             ("OnnxModelHandlerNumpy", lambda b, t: onnx_handler(onnx, b, t))]
    skipped = []
    if torch_handler(onnx, 1, scratch) is not None:
        sides.append(("PytorchModelHandlerTensor", lambda b, t: torch_handler(onnx, b, scratch, t)))
    else:
        skipped.append("PytorchModelHandlerTensor (torch or onnx2torch not importable)")

    rounds = []
    for rnd in range(args.rounds):
        for t in thread_settings:
            for b in batches:
                for name, make in (sides if rnd % 2 == 0 else list(reversed(sides))):
                    r = run_one(make(b, t), examples_path, len(examples), name == "PytorchModelHandlerTensor")
                    r.update(handler=name, batch=b, threads=t, round=rnd)
                    rounds.append(r)
                    print(f"round {rnd} threads {t} batch {b:3d} {name:32s} mean batch latency "
                          f"{r['mean_latency_us'] / 1000:9.1f} ms  per image {r['per_image_ms']:7.1f} ms  "
                          f"wall {r['wall_s']:6.1f} s  ({r['batches']} batches, mean size {r['mean_batch_size']:.1f})",
                          flush=True)
    best = []
    for name, _ in sides:
        for t in thread_settings:
            for b in batches:
                rs = [r for r in rounds if r["handler"] == name and r["batch"] == b and r["threads"] == t]
                top = dict(min(rs, key=lambda r: r["mean_latency_us"]))
                top["median_latency_us"] = statistics.median(r["mean_latency_us"] for r in rs)
                top["median_wall_s"] = statistics.median(r["wall_s"] for r in rs)
                best.append(top)
    date = datetime.date.today().isoformat()
    report = {
        "date": date, "model": model_name, "onnx": onnx, "images": args.images, "batches": batches,
        "rounds": args.rounds, "threads": thread_settings,
        "machine": {"cpu": lscpu_model(), "cpus": os.cpu_count(), "load_before": [round(v, 2) for v in load_before],
                    "load_after": [round(v, 2) for v in os.getloadavg()], "python": platform.python_version()},
        "versions": {"apache_beam": apache_beam.__version__, "onnxruntime": onnxruntime.__version__,
                     "runinfer": runinfer.library_version(), "numpy": np.__version__},
        "sanity_max_abs_diff_first_output": diff, "skipped": skipped, "rounds_data": rounds, "best": best,
    }
    out = Path(args.json) if args.json else REPO / "bench" / "results" / f"beam-{date}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nbest of {args.rounds} rounds (sanity: max |ours - onnxruntime| on the first output = {diff:.3g})")
    for r in best:
        print(f"  threads {r['threads']} batch {r['batch']:3d} {r['handler']:32s} {r['mean_latency_us'] / 1000:9.1f} ms/batch  "
              f"{r['per_image_ms']:7.1f} ms/image  wall {r['wall_s']:6.1f} s")
    print(f"wrote {out}")
    if not args.no_docs:
        try:
            rel = str(out.resolve().relative_to(REPO))
        except ValueError:
            rel = str(out)
        update_docs(docs_section(report, rel))
        print("updated docs/performance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
