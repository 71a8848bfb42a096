"""runinfer.beam.RunInferenceEngineHandlerNumPy with the real apache-beam (DirectRunner).

- the ModelHandler contract: batching kwargs, byte counts, namespace, sharing flags, model updates,
  rebuild of a missing or stale engine from ONNX;
- RunInference, unkeyed in-process and keyed with --direct_running_mode=multi_processing and 2 workers:
  outputs equal the engine run directly, batches really hold several examples (metrics), model_id is set;
- large_model=True (the engine lives in a shared process and is reached through a proxy);
- RunInference(...).with_exception_handling(): a bad example lands in failed_inferences;
- a model update through a side input of ModelMetadata switches engines mid-pipeline (per window) and the
  results carry the new model id and the new engine's outputs;
- the example pipeline (runinfer.examples.object_detection) writes the same rows as `runinfer run` (as sets
  of lines) and sends an undecodable and a missing image to the dead letter with key and reason.

DirectRunner first tries the Prism runner, which it would download; --prism_location points at a path
that does not exist so it falls back at once, without network. Needs apache-beam, the CLI and
libruninfer.so ($RI_CLI / $RI_LIB, else build/); skipped otherwise. RI_TEST_DEVICE=cuda (a CUDA build on a
GPU machine: scripts/gpu/beam-gpu.sh) builds the SSD engines of the example-pipeline tests for the GPU; the
tiny engines stay on the CPU.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, binding_setup, find_cli

import make_models

beam = pytest.importorskip("apache_beam")

from apache_beam.metrics.metric import MetricsFilter  # noqa: E402
from apache_beam.ml.inference.base import (KeyedModelHandler, ModelHandler, ModelMetadata,  # noqa: E402
                                           PredictionResult, RunInference)
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402
from apache_beam.testing.util import assert_that, equal_to  # noqa: E402
from apache_beam.transforms import window  # noqa: E402

PY_DIR = REPO_ROOT / "python"
TESTS_DIR = Path(__file__).resolve().parent
if str(PY_DIR) not in sys.path:
    sys.path.insert(0, str(PY_DIR))
# worker processes of the multi-processing DirectRunner import runinfer (and this module's functions)
os.environ["PYTHONPATH"] = os.pathsep.join([str(PY_DIR), str(TESTS_DIR)]
                                           + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


pytestmark = binding_setup()

import runinfer  # noqa: E402
from runinfer.beam import RunInferenceEngineHandlerNumPy  # noqa: E402
from runinfer.examples import object_detection  # noqa: E402

from test_beam_binding import TINY_META, make_image, write_png  # noqa: E402

DEVICE = os.environ.get("RI_TEST_DEVICE", "cpu")
SSD_META = {"preprocess": "size=300x300;layout=nchw;dtype=float32;mean=127.5,127.5,127.5;"
                          "scale=0.0078125,0.0078125,0.0078125;resize=bilinear;order=rgb",
            "detect": "score_threshold=0.2;max_total=20",
            "labels": "background\nperson\nbicycle\ncar\nmotorcycle\nairplane\nbus\ntrain\ntruck"}


def options(*extra: str) -> PipelineOptions:
    return PipelineOptions(["--runner=DirectRunner", "--prism_location=/nonexistent/runinfer-tests/prism", *extra])


MULTI = ("--direct_running_mode=multi_processing", "--direct_num_workers=2")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    env = os.environ.get("RI_MODELS_DIR")
    out = Path(env) if env else tmp_path_factory.mktemp("models")
    make_models.build_models(str(out), only=["tiny_ssd", "ssd_mobilenet_v2"], reuse=True, verbose=False)
    make_models.build_models(str(out / "seed1"), only=["tiny_ssd"], base_seed=1, reuse=True, verbose=False)
    return {"tiny": out / "tiny_ssd.onnx", "tiny_b": out / "seed1" / "tiny_ssd.onnx",
            "ssd": out / "ssd_mobilenet_v2.onnx"}


@pytest.fixture(scope="module")
def engines(models, tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("engines")
    paths = {"tiny": d / "tiny_a.rie", "tiny_b": d / "tiny_b.rie", "ssd": d / "ssd.rie"}
    runinfer.Engine.build(models["tiny"], max_batch=4, threads=1, metadata=TINY_META).save(paths["tiny"])
    runinfer.Engine.build(models["tiny_b"], max_batch=4, threads=1, metadata=TINY_META).save(paths["tiny_b"])
    runinfer.Engine.build(models["ssd"], max_batch=8, device=DEVICE, metadata=SSD_META).save(paths["ssd"])
    return {k: str(v) for k, v in paths.items()}


def examples(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((3, 32, 32)).astype(np.float32) for _ in range(n)]


def reference(engine_path: str, xs: list) -> list:
    eng = runinfer.Engine.load(engine_path)
    return [{k: v[0] for k, v in eng.run(x[None]).items()} for x in xs]


def close(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.allclose(a[k], b[k], rtol=1e-5, atol=1e-5) for k in a)


def metric(result, name: str):
    res = result.metrics().query(MetricsFilter().with_namespace("RunInferenceEngine").with_name(name))
    for kind in ("counters", "distributions"):
        if res[kind]:
            return res[kind][0].committed
    raise AssertionError(f"metric {name} not reported")


# ---- the ModelHandler contract ------------------------------------------------------------------------

def test_handler_contract(engines, models):
    h = RunInferenceEngineHandlerNumPy(2, 16, engine_path=engines["tiny"], max_batch_duration_secs=3)
    assert isinstance(h, ModelHandler)
    assert h.batch_elements_kwargs() == {"min_batch_size": 2, "max_batch_size": 16, "max_batch_duration_secs": 3}
    xs = examples(3)
    assert h.get_num_bytes(xs) == 3 * 3 * 32 * 32 * 4
    assert h.get_num_bytes([{"a": xs[0], "b": np.zeros(5, np.int64)}]) == xs[0].nbytes + 40
    assert h.get_metrics_namespace() == "RunInferenceEngine"
    assert not h.share_model_across_processes() and h.model_copies() == 1
    h2 = RunInferenceEngineHandlerNumPy(1, 4, engine_path=engines["tiny"], large_model=True, model_copies=2)
    assert h2.share_model_across_processes() and h2.model_copies() == 2
    with pytest.raises(ValueError, match="inference_args"):
        h.validate_inference_args({"x": 1})
    h.validate_inference_args(None)
    with pytest.raises(ValueError, match="engine_path, onnx_path"):
        RunInferenceEngineHandlerNumPy(1, 4)
    with pytest.raises(ValueError, match="unknown build option"):
        RunInferenceEngineHandlerNumPy(1, 4, onnx_path="m.onnx", build_options={"batch": 3})
    # run_inference: one stacked call per max-batch chunk (engine max 4, batch 10)
    eng = h.load_model()
    xs = examples(10, seed=1)
    preds = list(h.run_inference(xs, eng))
    ref = reference(engines["tiny"], xs)
    assert len(preds) == 10 and all(isinstance(p, PredictionResult) for p in preds)
    assert all(p.model_id == engines["tiny"] and p.example is x for p, x in zip(preds, xs))
    assert all(close(p.inference, r) for p, r in zip(preds, ref))
    with pytest.raises(runinfer.Error, match="share shapes"):
        h.run_inference([xs[0], xs[1][:, :16]], eng)
    # model updates: an engine path replaces the model, an .onnx path is built on load, '' goes back to the
    # handler's own model
    h.update_model_path(engines["tiny_b"])
    assert h.load_model().model_id() == engines["tiny_b"]
    h.update_model_path(str(models["tiny_b"]))
    assert (h.engine_path, h.onnx_path) == (None, str(models["tiny_b"]))
    built = h.load_model()
    assert built.model_id() == str(models["tiny_b"]) and built.max_batch == 16
    h.update_model_path("")
    assert (h.engine_path, h.onnx_path) == (engines["tiny"], None)
    assert h.load_model().model_id() == engines["tiny"]


def test_warm_up_at_load(engines, monkeypatch):
    """load_model warms the engine up at min and max batch size (capped at the engine's maximum) when asked,
    and by default only for CUDA engines; the warm-up runs real batches and leaves results unchanged."""
    calls = []
    real = runinfer.Engine.warm_up

    def spy(self, sizes, runs=2):
        calls.append(sorted(sizes))
        return real(self, sizes, runs)

    monkeypatch.setattr(runinfer.Engine, "warm_up", spy)
    h = RunInferenceEngineHandlerNumPy(2, 16, engine_path=engines["tiny"], warm_up=True)
    eng = h.load_model()
    assert calls == [[2, 4]]  # max_batch_size 16 capped at the engine's 4
    xs = examples(3, seed=4)
    assert all(close(p.inference, r) for p, r in zip(h.run_inference(xs, eng), reference(engines["tiny"], xs)))
    calls.clear()
    RunInferenceEngineHandlerNumPy(1, 4, engine_path=engines["tiny"]).load_model()
    assert calls == [] and eng.device() == "cpu"
    RunInferenceEngineHandlerNumPy(1, 4, engine_path=engines["tiny"], warm_up=False).load_model()
    assert calls == []
    if DEVICE.startswith("cuda"):  # RI_TEST_DEVICE=cuda: the default warms a CUDA engine up
        ssd = RunInferenceEngineHandlerNumPy(1, 32, engine_path=engines["ssd"]).load_model()
        assert ssd.device().startswith("cuda") and calls == [[1, 8]]  # 32 capped at the engine's 8


def test_rebuild_missing_then_stale(models, tmp_path):
    path = tmp_path / "m.rie"
    h = RunInferenceEngineHandlerNumPy(1, 8, engine_path=str(path), onnx_path=str(models["tiny"]),
                                       build_options={"metadata": TINY_META, "threads": 1})
    eng = h.load_model()
    assert path.is_file() and eng.max_batch == 8 and eng.metadata("detect") == TINY_META["detect"]
    assert eng.model_id() == str(path)
    stamp = path.stat().st_mtime_ns
    h.load_model()
    assert path.stat().st_mtime_ns == stamp, "a good engine is loaded, not rebuilt"
    data = bytearray(path.read_bytes())
    data[8:12] = struct.pack("<I", 99)  # another format version: RI_ERR_STALE
    path.write_bytes(bytes(data))
    with pytest.raises(runinfer.Error) as ei:
        RunInferenceEngineHandlerNumPy(1, 8, engine_path=str(path)).load_model()
    assert ei.value.status == runinfer.RI_ERR_STALE
    eng = h.load_model()
    assert runinfer.Engine.load(path).max_batch == 8, "the stale file was rebuilt in place"
    x = examples(2)
    preds = list(h.run_inference(x, eng))
    assert all(close(p.inference, r) for p, r in zip(preds, reference(str(path), x)))


# ---- RunInference pipelines ------------------------------------------------------------------------------

def _check_unkeyed(engine_path: str):
    def check(actual):
        assert len(actual) == 20, len(actual)
        ref_eng = runinfer.Engine.load(engine_path)
        for p in actual:
            assert p.model_id == engine_path
            want = {k: v[0] for k, v in ref_eng.run(p.example[None]).items()}
            assert close(p.inference, want)
    return check


def test_unkeyed_in_process_real_batches(engines):
    xs = examples(20, seed=2)
    handler = RunInferenceEngineHandlerNumPy(4, 8, engine_path=engines["tiny"])
    p = beam.Pipeline(options=options())
    preds = p | beam.Create(xs) | RunInference(handler)
    assert_that(preds, _check_unkeyed(engines["tiny"]))
    result = p.run()
    result.wait_until_finish()
    assert metric(result, "num_inferences") == 20
    sizes = metric(result, "inference_request_batch_size")
    assert sizes.sum == 20 and sizes.max > 1 and sizes.max <= 8, sizes
    assert metric(result, "inference_request_batch_byte_size").sum == 20 * xs[0].nbytes


def test_keyed_multi_processing_two_workers(engines):
    xs = examples(24, seed=3)
    want = {i: r for i, r in enumerate(reference(engines["tiny"], xs))}
    handler = KeyedModelHandler(RunInferenceEngineHandlerNumPy(2, 6, engine_path=engines["tiny"]))
    path = engines["tiny"]

    def check(actual):
        assert sorted(k for k, _ in actual) == list(range(24))
        for k, pr in actual:
            assert pr.model_id == path and close(pr.inference, want[k]), k

    with beam.Pipeline(options=options(*MULTI)) as p:
        preds = p | beam.Create(list(enumerate(xs))) | beam.Reshuffle() | RunInference(handler)
        assert_that(preds, check)


def test_large_model_shared_across_processes(engines):
    xs = examples(6, seed=4)
    handler = RunInferenceEngineHandlerNumPy(2, 3, engine_path=engines["tiny"], large_model=True)
    with beam.Pipeline(options=options()) as p:
        preds = p | beam.Create(xs) | RunInference(handler)
        assert_that(preds, lambda actual: _check_unkeyed_n(actual, engines))


def _check_unkeyed_n(actual, engines):
    ref = runinfer.Engine.load(engines["tiny"])
    assert len(actual) == 6
    for p in actual:
        assert p.model_id == engines["tiny"]
        assert close(p.inference, {k: v[0] for k, v in ref.run(p.example[None]).items()})


def test_exception_handling_dead_letters_bad_example(engines):
    xs = examples(5, seed=5)
    bad = np.zeros((3, 16, 32), np.float32)
    handler = KeyedModelHandler(RunInferenceEngineHandlerNumPy(1, 1, engine_path=engines["tiny"]))
    with beam.Pipeline(options=options()) as p:
        good, dlq = (p | beam.Create(list(enumerate(xs)) + [("bad", bad)])
                     | RunInference(handler).with_exception_handling())
        assert_that(good | beam.Map(lambda kv: kv[0]), equal_to(list(range(5))), label="good")
        failed = dlq.failed_inferences | beam.Map(lambda f: ([kv[0] for kv in f[0]], f[1][1]))
        assert_that(failed, lambda got: _check_failed(got), label="failed")


def _check_failed(got):
    assert len(got) == 1, got
    keys, reason = got[0]
    assert keys == ["bad"]
    assert "input 'image' has shape [1, 3, 16, 32]" in reason and "axis 2 differs" in reason, reason


def test_model_update_through_side_input(engines):
    """Two fixed windows: the first keeps the handler's engine (ModelMetadata with an empty id), the second
    switches to engine B; results say which engine made them and hold that engine's outputs."""
    a, b = engines["tiny"], engines["tiny_b"]
    xs = examples(4, seed=6)
    ts = [701, 702, 708, 709]  # windows [700, 707) and [707, 714)
    ref_a, ref_b = reference(a, xs), reference(b, xs)
    assert not close(ref_a[2], ref_b[2]), "the two engines must differ for this test to mean anything"
    side = [(701, ModelMetadata(model_id="", model_name="")), (708, ModelMetadata(model_id=b, model_name="b"))]
    handler = KeyedModelHandler(RunInferenceEngineHandlerNumPy(1, 4, engine_path=a))

    def check(actual):
        got = {k: pr for k, pr in actual}
        assert sorted(got) == ts
        for i, t in enumerate(ts):
            want_id, want = (a, ref_a[i]) if t < 707 else (b, ref_b[i])
            assert got[t].model_id == want_id, (t, got[t].model_id)
            assert close(got[t].inference, want), t

    with beam.Pipeline(options=options()) as p:
        side_input = (p | "Side" >> beam.Create(side)
                      | "SideTs" >> beam.Map(lambda x: window.TimestampedValue(x[1], x[0]))
                      | "SideWin" >> beam.WindowInto(window.FixedWindows(7))
                      | "SideKey" >> beam.Map(lambda m: ("k", m)) | "SideGBK" >> beam.GroupByKey()
                      | "SideFlat" >> beam.FlatMap(lambda kv: kv[1]))
        main = (p | "Main" >> beam.Create(list(zip(ts, xs)))
                | "MainTs" >> beam.Map(lambda kv: window.TimestampedValue(kv, kv[0]))
                | "MainWin" >> beam.WindowInto(window.FixedWindows(7))
                | "MainKey" >> beam.Map(lambda kv: ("k", kv)) | "MainGBK" >> beam.GroupByKey()
                | "MainFlat" >> beam.FlatMap(lambda kv: kv[1]))
        preds = main | RunInference(handler, model_metadata_pcoll=side_input)
        assert_that(preds, check)


# ---- the example pipeline ----------------------------------------------------------------------------

def _images(tmp_path: Path, n: int) -> Path:
    rng = np.random.default_rng(8)
    paths = []
    try:
        from PIL import Image
    except ImportError:
        Image = None
    for i in range(n):
        img = make_image(rng, int(rng.integers(40, 260)), int(rng.integers(40, 260)))
        if Image is not None and i % 2:
            p = tmp_path / f"img{i};x.jpg"
            Image.fromarray(img).save(p, quality=90)
        else:
            p = tmp_path / f"img {i}.png"
            write_png(p, img)
        paths.append(str(p))
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    paths += [str(tmp_path / "bad.jpg"), str(tmp_path / "missing.png"), "", "# a comment"]
    lst = tmp_path / "image_file_names.txt"
    lst.write_text("\n".join(paths) + "\n")
    return lst


def _dead(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        d = json.loads(line)
        out[d["key"]] = (d["stage"], d["error"])
    return out


def _compare_with_cli(tmp_path: Path, engine: str, lst: Path, beam_out: Path, n_images: int, *cli_args: str):
    c_out = tmp_path / "c.csv"
    p = subprocess.run([find_cli(), "run", "--engine", engine, "--input", str(lst), "--output", str(c_out),
                        "--no-progress", *cli_args], capture_output=True, timeout=300)
    assert p.returncode == 3, p.stderr.decode()  # 3: some records dead-lettered
    c_rows = c_out.read_bytes().decode().splitlines()
    b_rows = beam_out.read_bytes().decode().splitlines()
    assert len(c_rows) == n_images and len(b_rows) == n_images
    assert set(b_rows) == set(c_rows)
    assert any('"label":"' in r and '"class":' in r for r in b_rows)
    b_dead = _dead(Path(str(beam_out) + ".dead-letter.jsonl"))
    c_dead = _dead(Path(str(c_out) + ".dead-letter.jsonl"))
    assert set(b_dead) == {str(tmp_path / "bad.jpg"), str(tmp_path / "missing.png")}
    assert b_dead == c_dead, (b_dead, c_dead)


def test_example_rows_equal_runinfer_run(engines, tmp_path, monkeypatch):
    lst = _images(tmp_path, 6)
    out = tmp_path / "predictions.csv"
    beam_batch, cli_args = ["--max_batch_size", "4"], []
    if DEVICE != "cpu":
        # A CUDA engine's outputs depend on the batch size, and cuDNN's timed algorithm search can differ
        # between processes (docs/beam.md, "Rows on the GPU"): both sides run batches of one image with the
        # heuristic algorithm choice, the setting in which the rows were identical on an H200.
        monkeypatch.setenv("RI_CUDA_CONV_ALGO", "heuristic")
        beam_batch, cli_args = ["--min_batch_size", "1", "--max_batch_size", "1"], ["--max-batch", "1"]
    object_detection.run(["--input", str(lst), "--output", str(out), "--engine_path", engines["ssd"],
                          *beam_batch, "--runner=DirectRunner", "--prism_location=/nonexistent/runinfer-tests/prism"])
    _compare_with_cli(tmp_path, engines["ssd"], lst, out, 6, *cli_args)


def test_example_cli_multi_processing_rebuilds_engine(models, engines, tmp_path):
    """python -m runinfer.examples.object_detection with 2 worker processes; the engine file does not exist
    yet, so it is built from --onnx_path with --meta (and saved) before the pipeline runs."""
    lst = _images(tmp_path, 5)
    out = tmp_path / "predictions.csv"
    rie = tmp_path / "tiny_built.rie"
    cmd = [sys.executable, "-m", "runinfer.examples.object_detection", "--input", str(lst), "--output", str(out),
           "--engine_path", str(rie), "--onnx_path", str(models["tiny"]), "--max_batch_size", "3",
           "--runner=DirectRunner", "--prism_location=/nonexistent/runinfer-tests/prism", *MULTI]
    for k, v in TINY_META.items():
        cmd += ["--meta", f"{k}={v}"]
    p = subprocess.run(cmd, capture_output=True, timeout=300, env=dict(os.environ))
    assert p.returncode == 0, p.stderr.decode()[-4000:]
    assert rie.is_file()
    _compare_with_cli(tmp_path, str(rie), lst, out, 5)


SHAPES = REPO_ROOT / "models" / "shapes"


def _shapes_metadata() -> dict:
    meta = {}
    for line in (SHAPES / "engine_meta.txt").read_text().splitlines():
        k, sep, v = line.partition("=")
        if sep and k.strip():
            meta[k.strip()] = v
    if "labels" not in meta and (SHAPES / "labels.txt").is_file():
        meta["labels"] = (SHAPES / "labels.txt").read_text().rstrip("\n")
    return meta


@pytest.mark.skipif(not (SHAPES / "shapes_ssd.onnx").is_file() or not (SHAPES / "engine_meta.txt").is_file(),
                    reason="the trained shapes detector (models/shapes/shapes_ssd.onnx) is not there")
def test_example_with_trained_shapes_detector(tmp_path):
    """The real small detector: the example job built from ONNX + engine_meta.txt gives the rows of
    `runinfer run`, and the detections carry the shapes' labels."""
    subprocess.run([sys.executable, str(SHAPES / "make_shapes.py"), "--out", str(tmp_path / "img"), "--count", "6",
                    "--seed", "5"], check=True, capture_output=True, timeout=120)
    meta = _shapes_metadata()
    rie = tmp_path / "shapes.rie"
    runinfer.Engine.build(SHAPES / "shapes_ssd.onnx", max_batch=8, device=DEVICE, metadata=meta).save(rie)
    lst = tmp_path / "img" / "list.txt"
    out = tmp_path / "predictions.csv"
    object_detection.run(["--input", str(lst), "--output", str(out), "--engine_path", str(rie),
                          "--max_batch_size", "4", "--runner=DirectRunner",
                          "--prism_location=/nonexistent/runinfer-tests/prism"])
    c_out = tmp_path / "c.csv"
    p = subprocess.run([find_cli(), "run", "--engine", str(rie), "--input", str(lst), "--output", str(c_out),
                        "--no-progress"], capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr.decode()
    rows = out.read_text().splitlines()
    assert len(rows) == 6 and set(rows) == set(c_out.read_text().splitlines())
    labels = [lb for lb in meta.get("labels", "").split("\n")[1:] if lb]
    assert labels and any(f'"label":"{lb}"' in r for r in rows for lb in labels), "named shapes are detected"


@pytest.mark.skipif(not (SHAPES / "shapes_ssd.onnx").is_file() or not (SHAPES / "engine_meta.txt").is_file(),
                    reason="the trained shapes detector (models/shapes/shapes_ssd.onnx) is not there")
def test_example_preprocess_on_device_rows_equal_runinfer_run(tmp_path):
    """The example job building its engine with --preprocess_on_device (uint8 pixels in, normalised by the
    engine): its rows equal `runinfer run`'s with that engine, and its detections are those of the engine
    normalising on the host up to the rounding of resized pixels (same labels on most images)."""
    subprocess.run([sys.executable, str(SHAPES / "make_shapes.py"), "--out", str(tmp_path / "img"), "--count", "8",
                    "--seed", "6"], check=True, capture_output=True, timeout=120)
    meta = _shapes_metadata()
    lst = tmp_path / "img" / "list.txt"
    out = tmp_path / "predictions.csv"
    rie = tmp_path / "shapes_u8.rie"
    args = ["--input", str(lst), "--output", str(out), "--engine_path", str(rie), "--onnx_path",
            str(SHAPES / "shapes_ssd.onnx"), "--preprocess_on_device", "--device", DEVICE, "--max_batch_size", "4",
            "--runner=DirectRunner", "--prism_location=/nonexistent/runinfer-tests/prism"]
    for k, v in meta.items():
        args += ["--meta", f"{k}={v}"]
    object_detection.run(args)
    eng = runinfer.Engine.load(rie)
    assert eng.inputs[0].dtype == np.uint8 and "dtype=uint8" in eng.metadata("preprocess")
    eng.close()
    rows = out.read_text().splitlines()
    c_out = tmp_path / "c.csv"
    p = subprocess.run([find_cli(), "run", "--engine", str(rie), "--input", str(lst), "--output", str(c_out),
                        "--no-progress"], capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr.decode()
    assert len(rows) == 8 and set(rows) == set(c_out.read_text().splitlines())
    host = tmp_path / "shapes_f32.rie"
    runinfer.Engine.build(SHAPES / "shapes_ssd.onnx", max_batch=8, device=DEVICE, metadata=meta).save(host)
    h_out = tmp_path / "h.csv"
    p = subprocess.run([find_cli(), "run", "--engine", str(host), "--input", str(lst), "--output", str(h_out),
                        "--no-progress"], capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr.decode()

    def labels(line: str) -> tuple:
        key, _, dets = line.partition(";")
        return key, tuple(sorted(d["label"] for d in json.loads(dets)))

    ours = dict(labels(r) for r in rows)
    theirs = dict(labels(r) for r in h_out.read_text().splitlines())
    assert ours.keys() == theirs.keys()
    assert any(ours.values()), "the detector finds shapes"
    same = sum(ours[k] == theirs[k] for k in ours)
    assert same >= 6, (ours, theirs)


def test_handler_alias_is_the_handler():
    from runinfer import beam as rb

    assert rb.RunInferEngineHandlerNumPy is rb.RunInferenceEngineHandlerNumPy
