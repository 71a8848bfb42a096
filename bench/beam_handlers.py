#!/usr/bin/env python3
"""Beam RunInference model handlers side by side on the DirectRunner: runinfer's
RunInferenceEngineHandlerNumPy against Beam's own OnnxModelHandlerNumpy (onnxruntime, CPU) and
PytorchModelHandlerTensor.

Every handler gets the same examples: N images (seeded), sizes varied, preprocessed once with the model's
preprocessing into float32 CHW arrays and saved to one .npy; the pipeline creates the indices and a Map
reads example i (memory-mapped). For each batch size B (default 1 and
32) BatchElements is pinned to min = max = B. Per (handler, B) the script runs one pipeline and reads from
its result the mean of Beam's inference_batch_latency_micro_secs (the model call only, as Beam measures
it for every handler) plus the pipeline's wall time (p.run() to done, which includes model loading and
Beam's overhead). Rounds alternate handlers so that load from other processes falls on all alike; the
report keeps each side's best round (least disturbed) and the median.

--device cpu (default): our engine on the CPU; PytorchModelHandlerTensor runs only when torch and
onnx2torch (to convert the same ONNX) can be imported.

--device cuda: our engine on the GPU, one handler per --precisions entry (fp16, fp32); onnxruntime on the
CPU (the CUDA execution provider is not assumed); PytorchModelHandlerTensor on the GPU with the model class
of --peer-script (shared/bench/peer_bench.py: SSD MobileNet v2 in PyTorch, seeded weights), twice: as
shipped (Beam's default inference function leaves the outputs on the GPU, so the measured call need not
include the computation) and with an inference function that copies the outputs to host arrays, as ours
returns them. The ONNX of every other handler is that script's own --export of the same seeded model, so
all run identical weights (checked: the first output of each against onnxruntime).

Outputs: a table on stdout, bench/results/beam-<date>.json (or beam-gpu-<date>.json; machine, versions,
every round, written after each pipeline so an interrupted run keeps what it measured), and a section
"Beam RunInference handlers (DirectRunner, CPU|GPU)" in docs/performance.md (replaced if this script wrote
it before; nothing else in the file is touched).

  RI_LIB=build/libruninfer.so python3 bench/beam_handlers.py [--onnx M.onnx] [--images 96] \
      [--batches 1,32] [--rounds 2] [--threads 0] [--no-docs]
  RI_LIB=build-gpu/libruninfer.so python3 bench/beam_handlers.py --device cuda --peer-script peer_bench.py \
      [--precisions fp16,fp32] [--images 384] [--json out.json] [--no-docs]
  python3 bench/beam_handlers.py --report bench/results/beam-gpu-DATE.json   # docs section from a results file

Not a test: nothing is asserted beyond a sanity check that the handlers agree on the first output.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
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
DOCS_HEADING_GPU = "## Beam RunInference handlers (DirectRunner, GPU)"
OURS = "RunInferenceEngineHandlerNumPy"
ORT = "OnnxModelHandlerNumpy"
TORCH = "PytorchModelHandlerTensor"
TORCH_HOST = "PytorchModelHandlerTensor, outputs to host"
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


def gpu_model() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
        return out.splitlines()[0] if out else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def make_examples(n: int, preprocess: str) -> list:
    """n seeded images of varied sizes, each preprocessed with `preprocess`; the same images for any spec."""
    import runinfer
    rng = np.random.default_rng(1234)
    spec = runinfer.PreprocessSpec(preprocess)
    out = []
    for _ in range(n):
        h, w = int(rng.integers(240, 480)), int(rng.integers(240, 640))
        img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        out.append(runinfer.preprocess(img, spec)[0])
    return out


def sanity_u8(onnx: str, engine: str, u: np.ndarray, preprocess: str) -> float:
    """Device preprocessing: max |ours(uint8 pixels) - onnxruntime(the same pixels normalised in float32 as the
    spec says)| on the first output: the same input on both sides, so only the arithmetic differs."""
    import runinfer
    spec = runinfer.PreprocessSpec(preprocess)
    x = (u.astype(np.float32) - np.asarray(spec.mean, np.float32)) * np.asarray(spec.scale, np.float32)
    if spec.layout == "nchw":
        x = x.transpose(2, 0, 1)
    eng = runinfer.Engine.load(engine)
    a = eng.run(u[None])[eng.outputs[0].name]
    eng.close()
    return float(np.max(np.abs(a - ort_first_output(onnx, np.ascontiguousarray(x)))))


def ours(onnx: str, engine: str, b: int, threads: int, device: str = "cpu", precision: str = "fp32",
         extra: dict | None = None):
    from runinfer.beam import RunInferenceEngineHandlerNumPy
    return RunInferenceEngineHandlerNumPy(b, b, engine_path=engine, onnx_path=onnx, threads=threads, device=device,
                                          build_options={"max_batch": 32, "threads": threads,
                                                         "precision": precision, **(extra or {})})


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


def load_peer(script: str):
    """The peer script (peer_bench.py) imported as a module; its main() does not run."""
    folder = str(Path(script).resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(Path(script).stem)


def peer_export(script: str, dst: Path) -> None:
    """The peer script's own --export: its SSD with its seeded weights as ONNX. --cbatches with no --compile
    skips all of its timing loops."""
    p = subprocess.run([sys.executable, script, "--export", str(dst), "--cbatches", "1"], capture_output=True,
                       text=True, timeout=600)
    if p.returncode != 0 or not dst.is_file():
        raise SystemExit(f"{script} --export failed (rc {p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")


def peer_state_dict(peer, dst: Path) -> None:
    """The weights of the peer's model as its script seeds them (torch.manual_seed(0), then the model), which
    are the weights its --export wrote."""
    import torch
    torch.manual_seed(0)
    torch.save(peer.SSDMobileNetV2().eval().state_dict(), str(dst))


def named_outputs_class(peer):
    """The peer's SSD returning {"boxes": .., "scores": ..}. Beam's conversion to PredictionResults splits a
    dict of batched tensors per example; a tuple's elements would be paired with the examples instead."""

    class SSDNamedOutputs(peer.SSDMobileNetV2):
        def forward(self, x):
            boxes, scores = super().forward(x)
            return {"boxes": boxes, "scores": scores}

    return SSDNamedOutputs


def torch_outputs_to_host(batch, model, device, inference_args=None, model_id=None):
    """Beam's default tensor inference function (stack, move to the device, call the model under no_grad)
    followed by a copy of every output to a host numpy array, as runinfer's handler returns them. The copy
    waits for the GPU, so the call Beam times includes the computation."""
    import torch
    from apache_beam.ml.inference.base import PredictionResult
    with torch.no_grad():
        out = model(torch.stack(batch).to(device), **(inference_args or {}))
        host = {k: v.cpu().numpy() for k, v in out.items()}
    return [PredictionResult(ex, {k: v[i] for k, v in host.items()}, model_id) for i, ex in enumerate(batch)]


def torch_gpu_handler(peer, state_dict: str, b: int, to_host: bool):
    """PytorchModelHandlerTensor on the GPU with the peer's model class and seeded weights."""
    from apache_beam.ml.inference.pytorch_inference import PytorchModelHandlerTensor
    kw = {"inference_fn": torch_outputs_to_host} if to_host else {}
    return PytorchModelHandlerTensor(state_dict_path=state_dict, model_class=named_outputs_class(peer), device="GPU",
                                     min_batch_size=b, max_batch_size=b, **kw)


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
            "per_image_ms": d.sum / 1000.0 / s.sum,
            # the slowest batch is usually the first (lazy initialisation); without it: the steady state
            "mean_without_slowest_us": (d.sum - d.max) / (d.count - 1) if d.count > 1 else d.sum}


def ort_first_output(onnx: str, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(onnx, so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x[None]})[0]


def sanity(onnx: str, engine: str, x: np.ndarray) -> float:
    """max |ours - onnxruntime| on the first output of one example (both handlers must compute the same)."""
    import runinfer
    eng = runinfer.Engine.load(engine)
    a = eng.run(x[None])[eng.outputs[0].name]
    eng.close()
    return float(np.max(np.abs(a - ort_first_output(onnx, x))))


def sanity_torch(peer, state_dict: str, onnx: str, x: np.ndarray) -> float:
    """max |PyTorch (CPU, the state dict the torch handler loads) - onnxruntime| on the first output: proves
    that the peer's weights are those of the ONNX the other handlers run."""
    import torch
    m = peer.SSDMobileNetV2().eval()
    m.load_state_dict(torch.load(state_dict))
    with torch.no_grad():
        a = m(torch.from_numpy(x[None]))[0].numpy()
    return float(np.max(np.abs(a - ort_first_output(onnx, x))))


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


def gpu_docs_section(report: dict, json_rel: str) -> str:
    """The GPU section: every handler's best round, then the ratios of each peer's latency and wall time to
    each of our engines' (above 1: ours faster), against issue 5's target of 5x per batch."""
    best = {(r["batch"], r["handler"]): r for r in report["best"]}
    rows = ["| batch | handler | mean batch latency (ms) | without the slowest batch (ms) | min (ms) | "
            "per image (ms) | median of rounds (ms) | wall (s) |",
            "|---|---|---|---|---|---|---|---|"]
    for (b, h), r in sorted(best.items()):
        rows.append(f"| {b} | {h} | {r['mean_latency_us'] / 1000:.2f} | {r['mean_without_slowest_us'] / 1000:.2f} | "
                    f"{r['min_latency_us'] / 1000:.2f} | {r['per_image_ms']:.3f} | "
                    f"{r['median_latency_us'] / 1000:.2f} | {r['wall_s']:.1f} |")
    ours_names = sorted({h for _, h in best if h.startswith(OURS)})
    peers = [h for h in (TORCH, TORCH_HOST, ORT) if any(h == k[1] for k in best)]
    ratios = ["| batch | ours | peer | latency ratio (peer / ours) | without the slowest batch | wall ratio | "
              "5x per batch |", "|---|---|---|---|---|---|---|"]
    for b in report["batches"]:
        for o in ours_names:
            if (b, o) not in best:
                continue
            r = best[(b, o)]
            for peer in peers:
                q = best.get((b, peer))
                if q is None:
                    continue
                lat = q["mean_latency_us"] / r["mean_latency_us"]
                ratios.append(f"| {b} | {o} | {peer} | {lat:.2f} | "
                              f"{q['mean_without_slowest_us'] / r['mean_without_slowest_us']:.2f} | "
                              f"{q['wall_s'] / r['wall_s']:.2f} | {'met' if lat >= 5 else 'not met'} |")
    m = report["machine"]
    sanity = ", ".join(f"{k} {v:.3g}" for k, v in report["sanity_max_abs_diff_first_output"].items())
    skipped = "; ".join(report["skipped"]) or "none"
    para = textwrap.fill(
        f"`bench/beam_handlers.py --device cuda` on {m['gpu']} with {m['cpus']} CPUs ({m['cpu']}), "
        f"{report['date']}: {report['model']}, {report['images']} images preprocessed once and fed to every "
        f"handler, BatchElements pinned to the batch size, best of {report['rounds']} alternating rounds "
        f"(command: `{report.get('command', '')}`). Latency = the mean of Beam's inference_batch_latency_micro_secs "
        "(the model call as Beam times it for every handler); without the slowest batch = the same mean "
        "without its largest sample (usually the first batch, which pays for lazy initialisation); wall = the "
        "whole pipeline including model loading. Every handler runs the same weights (max |x - onnxruntime| on "
        f"the first output of one example: {sanity}). Raw data: `{json_rel}`. Skipped: {skipped}.", width=110)
    notes = [textwrap.fill(f"- {n}", width=110, subsequent_indent="  ") for n in report.get("notes", [])]
    return "\n".join([DOCS_HEADING_GPU, para, "", *notes, *([""] if notes else []), *rows, "", *ratios, ""])


def update_docs(section: str, heading: str) -> None:
    path = REPO / "docs" / "performance.md"
    text = path.read_text() if path.exists() else "# Performance\n"
    start = text.find(heading)
    if start >= 0:
        nxt = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[nxt + 1:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text if text.endswith("\n") else text + "\n")


def write_docs(report: dict, out: Path) -> None:
    try:
        rel = str(out.resolve().relative_to(REPO))
    except ValueError:
        rel = str(out)
    if report.get("device") == "cuda":
        update_docs(gpu_docs_section(report, rel), DOCS_HEADING_GPU)
    else:
        update_docs(docs_section(report, rel), DOCS_HEADING)
    print("updated docs/performance.md")


def loaded_libraries(stem: str) -> list:
    """Paths of the shared libraries of this process whose file name starts with stem (Linux)."""
    try:
        with open("/proc/self/maps") as f:
            return sorted({ln.split()[-1] for ln in f if len(ln.split()) >= 6 and Path(ln.split()[-1]).name.startswith(stem)})
    except OSError:
        return []


def best_rounds(rounds: list) -> list:
    """Per (handler, threads, batch): the round with the least mean latency, plus the medians of all rounds."""
    best = []
    for key in sorted({(r["handler"], r["threads"], r["batch"]) for r in rounds}):
        rs = [r for r in rounds if (r["handler"], r["threads"], r["batch"]) == key]
        top = dict(min(rs, key=lambda r: r["mean_latency_us"]))
        top["median_latency_us"] = statistics.median(r["mean_latency_us"] for r in rs)
        top["median_wall_s"] = statistics.median(r["wall_s"] for r in rs)
        best.append(top)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onnx", help="ONNX model with a [N,3,300,300] input (default: ssd_mobilenet_v2 from "
                                   "models/make_models.py, or with --peer-script that script's --export)")
    ap.add_argument("--preprocess", default=SSD_PREPROCESS, help="runinfer preprocess spec for the examples")
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", default=None,
                    help="CPU threads per model call, both sides, comma-separated settings (0: all CPUs; "
                         "default 0,1 on the CPU, 0 with --device cuda)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where our engine and torch run")
    ap.add_argument("--engine-device", help="device of our engines (default: --device; cpu tries the GPU "
                                            "mode's reporting on a machine without a GPU)")
    ap.add_argument("--precisions", default="fp16,fp32", help="our engines' precisions with --device cuda")
    ap.add_argument("--device-preprocess", default="",
                    help="precisions (e.g. fp16) of extra engines of ours built with preprocess_on_device: they "
                         "get the same images as uint8 HWC pixels and normalise them on the GPU")
    ap.add_argument("--peer-script", help="peer_bench.py: its PyTorch SSD runs in PytorchModelHandlerTensor and "
                                          "its --export is the ONNX of the other handlers")
    ap.add_argument("--json", help="output JSON (default bench/results/beam[-gpu]-<date>.json)")
    ap.add_argument("--note", action="append", default=[], help="a note for the results and the docs section")
    ap.add_argument("--report", metavar="JSON", help="only write the docs section of an earlier results file")
    ap.add_argument("--no-docs", action="store_true", help="do not touch docs/performance.md")
    args = ap.parse_args()

    if args.report:
        out = Path(args.report)
        write_docs(json.loads(out.read_text()), out)
        return 0

    import apache_beam
    import onnxruntime
    import runinfer

    gpu = args.device == "cuda"
    engine_device = args.engine_device or args.device
    cudnn_version = None
    if gpu and args.peer_script:
        # One process holds one libcudnn.so.9, whoever loads it first. PyTorch checks the version it finds
        # against the one it was built with; runinfer's CUDA backend uses only cuDNN 9's stable API. So
        # PyTorch's cuDNN is loaded before libruninfer is.
        try:
            import torch
            if torch.cuda.is_available():
                cudnn_version = torch.backends.cudnn.version()
        except ImportError:
            pass
    scratch = Path(tempfile.mkdtemp(prefix="runinfer-beam-bench-"))
    onnx = args.onnx
    peer = load_peer(args.peer_script) if args.peer_script else None
    if onnx is None and args.peer_script:
        onnx = str(scratch / "peer_ssd.onnx")
        peer_export(args.peer_script, Path(onnx))
        model_name = f"SSD MobileNet v2 of {Path(args.peer_script).name} (its --export)"
    elif onnx is None:
        import make_models
        onnx = make_models.build_models(str(scratch), only=["ssd_mobilenet_v2"], verbose=False)["ssd_mobilenet_v2"]
        model_name = "ssd_mobilenet_v2"
    else:
        model_name = Path(onnx).stem

    batches = [int(b) for b in args.batches.split(",")]
    threads_arg = args.threads if args.threads is not None else ("0" if gpu else "0,1")
    thread_settings = [int(t) for t in threads_arg.split(",")]
    examples = make_examples(args.images, args.preprocess)
    examples_path = str(scratch / "examples.npy")
    np.save(examples_path, np.stack(examples))
    skipped, diffs, notes = [], {}, list(args.note)

    # (name, make(batch, threads), examples as torch tensors, examples file)
    sides = []
    if gpu:
        for prec in args.precisions.split(","):
            engine = str(scratch / f"model-{prec}.rie")
            runinfer.Engine.build(onnx, max_batch=32, device=engine_device, precision=prec).save(engine)
            name = f"{OURS} ({engine_device} {prec})"
            diffs[name] = sanity(onnx, engine, examples[0])
            sides.append((name, lambda b, t, e=engine, p=prec: ours(onnx, e, b, t, engine_device, p), False,
                          examples_path))
        for prec in [p for p in args.device_preprocess.split(",") if p]:
            engine = str(scratch / f"model-{prec}-u8.rie")
            eng = runinfer.Engine.build(onnx, max_batch=32, device=engine_device, precision=prec,
                                        metadata={"preprocess": args.preprocess}, preprocess_on_device=True)
            eng.save(engine)
            host_spec = eng.metadata("preprocess")
            eng.close()
            u8 = make_examples(args.images, host_spec)
            u8_path = str(scratch / "examples-u8.npy")
            np.save(u8_path, np.stack(u8))
            name = f"{OURS} ({engine_device} {prec}, uint8 in)"
            diffs[name] = sanity_u8(onnx, engine, u8[0], args.preprocess)
            dev_opts = {"metadata": {"preprocess": args.preprocess}, "preprocess_on_device": True}
            sides.append((name, lambda b, t, e=engine, p=prec: ours(onnx, e, b, t, engine_device, p, dev_opts), False,
                          u8_path))
        if args.device_preprocess:
            notes.append("The rows marked 'uint8 in' run an engine of ours built with preprocess_on_device: it gets "
                         "the same images resized to uint8 HWC pixels (a quarter of the float32 bytes) and computes "
                         "the normalisation and the NCHW layout on the GPU; the other handlers get float32 CHW "
                         "arrays, which their models take. Its sanity value compares it with onnxruntime on the "
                         "same pixels normalised in float32.")
    else:
        engine = str(scratch / "model.rie")  # built from the ONNX, then reused by every pipeline
        from runinfer.beam import load_engine
        load_engine(engine, onnx, {"max_batch": 32}).close()
        diffs[OURS] = sanity(onnx, engine, examples[0])
        sides.append((OURS, lambda b, t: ours(onnx, engine, b, t), False, examples_path))
    sides.append((ORT, lambda b, t: onnx_handler(onnx, b, t), False, examples_path))
    torch_ok = False
    if gpu and peer is not None:
        try:
            import torch
            from apache_beam.ml.inference import pytorch_inference  # noqa: F401
            torch_ok = torch.cuda.is_available()
        except ImportError:
            pass
        if torch_ok:
            sd = str(scratch / "peer_ssd.pt")
            peer_state_dict(peer, Path(sd))
            diffs[TORCH] = sanity_torch(peer, sd, onnx, examples[0])
            sides.append((TORCH, lambda b, t: torch_gpu_handler(peer, sd, b, False), True, examples_path))
            sides.append((TORCH_HOST, lambda b, t: torch_gpu_handler(peer, sd, b, True), True, examples_path))
            notes.append(f"{TORCH} runs the model in float32 on the GPU with PyTorch's defaults (cuDNN may use "
                         "TF32). As shipped, Beam's default inference function returns the outputs as GPU tensors "
                         "without waiting for them, so its timed call need not include the computation; the row "
                         f"'{TORCH_HOST}' adds a copy of the outputs to host arrays, the work our handler does.")
        else:
            skipped.append(f"{TORCH} (torch with CUDA not importable)")
    elif gpu:
        skipped.append(f"{TORCH} (no --peer-script)")
    elif torch_handler(onnx, 1, scratch) is not None:
        sides.append((TORCH, lambda b, t: torch_handler(onnx, b, scratch, t), True, examples_path))
    else:
        skipped.append(f"{TORCH} (torch or onnx2torch not importable)")
    if gpu:
        notes.append(f"{ORT} runs onnxruntime {onnxruntime.__version__} with the CPUExecutionProvider on the "
                     f"machine's {os.cpu_count()} CPUs: the GPU machine's onnxruntime has no CUDA provider.")

    date = datetime.date.today().isoformat()
    out = Path(args.json) if args.json else REPO / "bench" / "results" / f"beam{'-gpu' if gpu else ''}-{date}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    versions = {"apache_beam": apache_beam.__version__, "onnxruntime": onnxruntime.__version__,
                "runinfer": runinfer.library_version(), "numpy": np.__version__}
    if torch_ok:
        versions["torch"] = torch.__version__
    machine = {"cpu": lscpu_model(), "cpus": os.cpu_count(), "load_before": [round(v, 2) for v in load_before],
               "python": platform.python_version()}
    if gpu:
        machine["gpu"] = gpu_model()
        machine["cudnn"] = {"torch_reports": cudnn_version, "loaded": loaded_libraries("libcudnn.so")}
    report = {
        "date": date, "device": args.device, "engine_device": engine_device, "model": model_name, "onnx": onnx,
        "images": args.images, "batches": batches, "rounds": args.rounds, "threads": thread_settings,
        "command": "python3 " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": machine, "versions": versions,
        "sanity_max_abs_diff_first_output": diffs if gpu else diffs[OURS], "skipped": skipped, "notes": notes,
        "rounds_data": [], "best": [],
    }

    def save() -> None:
        report["machine"]["load_after"] = [round(v, 2) for v in os.getloadavg()]
        report["best"] = best_rounds(report["rounds_data"])
        out.write_text(json.dumps(report, indent=2) + "\n")

    failed = set()
    for rnd in range(args.rounds):
        for t in thread_settings:
            for b in batches:
                for name, make, as_torch, ex_path in (sides if rnd % 2 == 0 else list(reversed(sides))):
                    if name in failed:
                        continue
                    try:
                        r = run_one(make(b, t), ex_path, len(examples), as_torch)
                    except Exception as e:  # noqa: BLE001 - one handler failing must not lose the others' rows
                        import traceback
                        traceback.print_exc()
                        failed.add(name)
                        report.setdefault("errors", []).append(f"{name}, batch {b}: {type(e).__name__}: {e}"[:2000])
                        save()
                        continue
                    r.update(handler=name, batch=b, threads=t, round=rnd)
                    report["rounds_data"].append(r)
                    save()
                    print(f"round {rnd} threads {t} batch {b:3d} {name:45s} mean batch latency "
                          f"{r['mean_latency_us'] / 1000:9.2f} ms (without the slowest "
                          f"{r['mean_without_slowest_us'] / 1000:9.2f})  per image {r['per_image_ms']:8.3f} ms  "
                          f"wall {r['wall_s']:6.1f} s  ({r['batches']} batches, mean size {r['mean_batch_size']:.1f})",
                          flush=True)
    save()
    print(f"\nbest of {args.rounds} rounds (sanity: max |x - onnxruntime| on the first output = {diffs})")
    for r in report["best"]:
        print(f"  threads {r['threads']} batch {r['batch']:3d} {r['handler']:45s} {r['mean_latency_us'] / 1000:9.2f} "
              f"ms/batch  {r['per_image_ms']:8.3f} ms/image  wall {r['wall_s']:6.1f} s")
    print(f"wrote {out}")
    if not args.no_docs:
        write_docs(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
