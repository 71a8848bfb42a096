"""The Python binding (python/runinfer) against the C library and the CLI.

- Engine/Context outputs equal `runinfer infer` on the same engine and inputs (bit for bit);
- any batch size: Engine.run splits batches above the engine's maximum;
- inputs by position, dict and keyword; dtype / shape / count / name errors are runinfer.Error with a
  message naming the input; load, build and decode failures are runinfer.Error with the library's status;
- 4 threads sharing one Engine give the single-threaded results;
- vision: preprocess + PostProcessor + format_row reproduce the rows of `runinfer run`, keys with
  ';', '"', spaces, UTF-8 and non-UTF-8 bytes included.

Needs the CLI and libruninfer.so of one build ($RI_CLI / $RI_LIB, else build/); skipped otherwise.
"""

from __future__ import annotations

import os
import pickle
import re
import struct
import subprocess
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import binding_setup, find_cli

import make_models



pytestmark = binding_setup()

import runinfer  # noqa: E402
from runinfer import vision  # noqa: E402

TINY_META = {"preprocess": "size=32x32;layout=nchw;range=-1,1",
             "detect": "coding=none;score=none;score_threshold=0.5",
             "labels": "background\ncircle\nsquare\ntri;angle\n\"quoted\"\nüml"}


def write_png(path, rgb: np.ndarray) -> None:
    """A minimal RGB PNG writer (no dependency on Pillow)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\0" + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def make_image(rng, h, w) -> np.ndarray:
    a = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    a[h // 4: h // 2, w // 4: w // 2] = (250, 20, 20)
    return a


def cli(*args, ok_codes=(0,)) -> subprocess.CompletedProcess:
    p = subprocess.run([find_cli(), *map(str, args)], capture_output=True, timeout=300)
    assert p.returncode in ok_codes, f"runinfer {' '.join(map(str, args))}: rc {p.returncode}\n{p.stderr.decode()}"
    return p


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory) -> Path:
    env = os.environ.get("RI_MODELS_DIR")
    out = Path(env) if env else tmp_path_factory.mktemp("models")
    make_models.build_models(str(out), only=["tiny_ssd"], reuse=True, verbose=False)
    return out


@pytest.fixture(scope="module")
def tiny(onnx_dir, tmp_path_factory) -> Path:
    """tiny_ssd engine (max batch 4) with pipeline metadata, built by the binding and saved."""
    path = tmp_path_factory.mktemp("eng") / "tiny.rie"
    eng = runinfer.Engine.build(onnx_dir / "tiny_ssd.onnx", max_batch=4, metadata=TINY_META)
    eng.save(path)
    eng.close()
    return path


def rand_input(batch, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, 3, 32, 32)).astype(np.float32)


# ---- engine -----------------------------------------------------------------------------------------

def test_engine_io_metadata_describe(tiny):
    eng = runinfer.Engine.load(tiny)
    assert eng.max_batch == 4
    assert [(i.name, i.dtype, i.shape) for i in eng.inputs] == [("image", np.float32, (-1, 3, 32, 32))]
    assert [(o.name, o.shape) for o in eng.outputs] == [("boxes", (-1, 176, 4)), ("scores", (-1, 176, 6))]
    for k, v in TINY_META.items():
        assert eng.metadata(k) == v
    assert eng.metadata("absent") is None and eng.metadata("absent", "d") == "d"
    d = eng.describe()
    assert d["max_batch"] == 4 and d["metadata"] == TINY_META
    assert sorted(eng.metadata_keys()) == sorted(TINY_META)
    assert eng.model_id() == str(tiny)
    info = pickle.loads(pickle.dumps(eng.info()))
    assert info.metadata("detect") == TINY_META["detect"] and info.inputs == eng.inputs


def test_run_equals_cli_infer(tiny, tmp_path):
    x = rand_input(3, seed=11)
    np.save(tmp_path / "x.npy", x)
    cli("infer", "--engine", tiny, "--in", f"image={tmp_path / 'x.npy'}", "--out", tmp_path / "out")
    eng = runinfer.Engine.load(tiny)
    for got in (eng.run(x), eng.context().run(x), eng.run({"image": x}), eng.run(image=x)):
        assert list(got) == ["boxes", "scores"]
        for name, arr in got.items():
            ref = np.load(tmp_path / "out" / f"{name}.npy")
            assert arr.dtype == ref.dtype and arr.shape == ref.shape
            assert np.array_equal(arr, ref), name


def test_any_batch_size_splits_above_max(tiny):
    eng = runinfer.Engine.load(tiny)
    x = rand_input(10, seed=3)
    big = eng.run(x)
    assert big["scores"].shape == (10, 176, 6)
    ctx = eng.context()
    for i in range(10):
        one = ctx.run(x[i:i + 1])
        np.testing.assert_allclose(big["scores"][i], one["scores"][0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(big["boxes"][i], one["boxes"][0], rtol=1e-5, atol=1e-5)
    with pytest.raises(runinfer.Error) as ei:
        ctx.run(x[:5])
    assert ei.value.status == runinfer.RI_ERR_SHAPE and "maximum 4" in ei.value.message


def test_input_errors_are_clean(tiny):
    eng = runinfer.Engine.load(tiny)
    x = rand_input(2)
    cases = [
        ((x.astype(np.float64),), {}, runinfer.RI_ERR_SHAPE, "input 'image' is float64 but the engine expects float32"),
        ((x[:, :, :16],), {}, runinfer.RI_ERR_SHAPE, "axis 2 differs"),
        ((x[0],), {}, runinfer.RI_ERR_SHAPE, "rank 3"),
        ((x, x), {}, runinfer.RI_ERR_INVALID_ARG, "takes 1 input(s) (image), got 2"),
        ((), {"img": x}, runinfer.RI_ERR_INVALID_ARG, "unknown input 'img'"),
        ((x[:0],), {}, runinfer.RI_ERR_SHAPE, "at least 1"),
    ]
    for args, kw, status, text in cases:
        with pytest.raises(runinfer.Error) as ei:
            eng.run(*args, **kw)
        assert ei.value.status == status, (text, ei.value)
        assert text in ei.value.message, ei.value.message
    e = pickle.loads(pickle.dumps(runinfer.Error(7, "boom")))
    assert (e.status, e.message, e.status_name) == (7, "boom", "RI_ERR_SHAPE")


def test_library_errors_are_clean(tiny, tmp_path):
    with pytest.raises(runinfer.Error) as ei:
        runinfer.Engine.load(tmp_path / "nope.rie")
    assert ei.value.status in (runinfer.RI_ERR_IO, runinfer.RI_ERR_NOT_FOUND) and "nope.rie" in ei.value.message
    junk = tmp_path / "junk.rie"
    junk.write_bytes(b"this is not an engine file at all" * 4)
    with pytest.raises(runinfer.Error) as ei:
        runinfer.Engine.load(junk)
    assert ei.value.status == runinfer.RI_ERR_PARSE
    bad_onnx = tmp_path / "bad.onnx"
    bad_onnx.write_bytes(b"\x08\x07garbage")
    with pytest.raises(runinfer.Error) as ei:
        runinfer.Engine.build(bad_onnx)
    assert ei.value.status != runinfer.RI_OK and ei.value.message
    with pytest.raises(runinfer.Error) as ei:
        runinfer.Engine.build(bad_onnx, precision="fp64")
    assert ei.value.status == runinfer.RI_ERR_INVALID_ARG and "fp64" in ei.value.message
    # an engine of another format version is stale (the version is checked before the checksum)
    stale = bytearray(Path(tiny).read_bytes())
    stale[8:12] = struct.pack("<I", 99)
    (tmp_path / "stale.rie").write_bytes(bytes(stale))
    with pytest.raises(runinfer.Error) as ei:
        runinfer.Engine.load(tmp_path / "stale.rie")
    assert ei.value.status == runinfer.RI_ERR_STALE
    with pytest.raises(runinfer.Error) as ei:
        vision.decode(b"\xff\xd8\xffnot really a jpeg", name="x.jpg")
    assert ei.value.status == runinfer.RI_ERR_PARSE and "x.jpg" in ei.value.message
    with pytest.raises(runinfer.Error) as ei:
        vision.decode(str(tmp_path / "missing.png"))
    assert ei.value.status in (runinfer.RI_ERR_NOT_FOUND, runinfer.RI_ERR_IO)
    with pytest.raises(runinfer.Error) as ei:
        runinfer.PreprocessSpec("size=0x5")
    assert ei.value.status == runinfer.RI_ERR_PARSE and "size" in ei.value.message
    eng = runinfer.Engine.load(tiny)
    ctx = eng.context()
    eng.close()
    with pytest.raises(runinfer.Error, match="closed"):
        ctx.run(rand_input(1))
    with pytest.raises(runinfer.Error, match="closed"):
        eng.metadata("detect")


def test_save_load_roundtrip_and_bytes(tiny, onnx_dir, tmp_path):
    eng = runinfer.Engine.load_bytes(Path(tiny).read_bytes(), source="mem:tiny")
    assert eng.model_id() == "mem:tiny"
    built = runinfer.Engine.build_bytes((onnx_dir / "tiny_ssd.onnx").read_bytes(), onnx_dir, max_batch=4,
                                        metadata=TINY_META)
    built.save(tmp_path / "again.rie")
    again = runinfer.Engine.load(tmp_path / "again.rie")
    x = rand_input(4, seed=5)
    a, b = eng.run(x), again.run(x)
    for k in a:
        assert np.array_equal(a[k], b[k])
    assert not list(tmp_path.glob("*.tmp.*")), "save leaves no temporary file"


def test_four_threads_share_one_engine(tiny):
    eng = runinfer.Engine.load(tiny, threads=1)
    inputs = [rand_input(1 + i % 4, seed=100 + i) for i in range(16)]
    ref = [runinfer.Engine.load(tiny, threads=1).run(x) for x in inputs]
    results: dict = {}
    errors: list = []
    start = threading.Barrier(4)

    def work(t):
        try:
            start.wait()
            for rep in range(3):
                for i in range(t, 16, 4):
                    results[(t, rep, i)] = eng.run(inputs[i])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert len(results) == 16 * 3
    for (t, rep, i), got in results.items():
        for k in got:
            assert np.array_equal(got[k], ref[i][k]), (t, rep, i, k)


def test_close_while_threads_run(tiny):
    """close() waits for runs in progress; afterwards every thread gets a clean Error, never a crash."""
    eng = runinfer.Engine.load(tiny, threads=1)
    x = rand_input(2, seed=9)
    seen: list = []
    started = threading.Barrier(3)

    def work():
        started.wait()
        while True:
            try:
                eng.run(x)
            except runinfer.Error as e:
                seen.append(e)
                return

    threads = [threading.Thread(target=work) for _ in range(2)]
    for th in threads:
        th.start()
    started.wait()
    for _ in range(3):
        eng.run(x)
    eng.close()
    for th in threads:
        th.join(timeout=60)
    assert len(seen) == 2 and all("closed" in e.message for e in seen), seen


# ---- vision -----------------------------------------------------------------------------------------

def test_specs_and_transform():
    spec = runinfer.PreprocessSpec("size=64x48;layout=nhwc;dtype=uint8;resize=letterbox;pad=114")
    assert (spec.width, spec.height, spec.layout, spec.dtype, spec.item_shape) == (64, 48, "nhwc", np.uint8,
                                                                                  (48, 64, 3))
    assert pickle.loads(pickle.dumps(spec)) == spec
    img = make_image(np.random.default_rng(1), 30, 90)
    item, tr = runinfer.preprocess(img, spec)
    assert item.shape == (48, 64, 3) and item.dtype == np.uint8
    assert tr == vision.preprocess_transform(90, 30, spec)
    # letterbox: the image is scaled by 64/90 and centred vertically
    assert tr.scale_x == pytest.approx(64 / 90) and tr.offset_y > 0
    box = tr.map_box((0.0, 0.0, 1.0, 1.0))
    assert box == pytest.approx((0.0, 0.0, 30.0, 90.0), abs=1e-3)
    cfg = runinfer.DetectConfig("score_threshold=0.25;max_total=7;iou=0.5")
    assert (cfg.max_total, cfg.score_threshold, cfg.iou_threshold) == (7, pytest.approx(0.25), pytest.approx(0.5))
    assert cfg.ssd_anchor_count() == 1917
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    det = runinfer.Detector(cfg)
    assert det.anchors().shape == (1917, 4)
    det2 = pickle.loads(pickle.dumps(det))
    assert det2.config == cfg


def test_format_helpers():
    assert vision.json_escape('a"b\\c') == 'a\\"b\\\\c'
    assert vision.json_escape(b"x\xffy") == "x\\udcffy"
    assert vision.format_key("/data/img 1.jpg") == "/data/img 1.jpg"
    assert vision.format_key("/data/é.jpg") == "/data/é.jpg"
    assert vision.format_key("/a;b.jpg") == '"/a;b.jpg"'
    assert vision.format_key(b"/a\xff.jpg") == '"/a\\udcff.jpg"'
    dets = [{"ymin": 1.5, "xmin": 2.0, "ymax": 10.25, "xmax": 20.0, "score": 0.875, "class": 1},
            {"ymin": 0.0, "xmin": 0.0, "ymax": 1e-7, "xmax": 123456789.0, "score": 0.5, "class": 9}]
    row = vision.format_row("k", dets, labels=["bg", "cat"])
    assert row == ('k;[{"ymin":1.5,"xmin":2,"ymax":10.25,"xmax":20,"score":0.875,"class":1,"label":"cat"}, '
                   '{"ymin":0,"xmin":0,"ymax":1e-07,"xmax":1.23457e+08,"score":0.5,"class":9,"label":""}]')
    assert vision.detections_to_json(dets, compact=True).count("}, {") == 0
    assert vision.format_row("k", []) == "k;[]"
    top = runinfer.classify_topk(np.array([1.0, 3.0, 2.0], np.float32), k=2)
    assert [c["class"] for c in top] == [1, 2] and top[0]["score"] > top[1]["score"]


def _rows(path: Path) -> set:
    return set(path.read_bytes().decode("utf-8").splitlines())


def test_python_rows_equal_runinfer_run(tiny, tmp_path):
    """decode + preprocess + engine + PostProcessor + format_row == the rows `runinfer run` writes."""
    rng = np.random.default_rng(7)
    names = [b"plain.png", b"with space.png", b"semi;colon.png", b'quo"te.png', "ütf8-é.png".encode(),
             b"back\\slash.png", b"latin1-\xe9.png"]
    keys = []
    for i, n in enumerate(names):
        p = os.path.join(os.fsencode(tmp_path), n)
        write_png(p, make_image(rng, 20 + 7 * i, 60 - 5 * i))
        keys.append(p)
    lst = tmp_path / "list.txt"
    lst.write_bytes(b"\n".join(keys) + b"\n")
    cli("run", "--engine", tiny, "--input", lst, "--output", tmp_path / "c.csv", "--no-progress")
    eng = runinfer.Engine.load(tiny)
    spec = runinfer.PreprocessSpec.for_engine(eng)
    pp = runinfer.PostProcessor(eng)
    rows = set()
    for k in keys:
        item, tr = runinfer.preprocess(vision.decode_file(k), spec)
        outs = eng.run(item[None])
        rows.add(pp.format_row(k, {n: a[0] for n, a in outs.items()}, tr))
    ref = _rows(tmp_path / "c.csv")
    assert len(ref) == len(keys)
    assert any(re.search(r'"label":"[^"]', r) for r in ref), "some detections carry a label"
    assert rows == ref


def test_key_with_tab_matches_runinfer_run(tiny, tmp_path):
    # the pipeline's writer and the public formatters share ri_json_escape, so even a tab (and DEL, U+2028)
    # in a key gives the same row
    p = tmp_path / "tab\there.png"
    write_png(p, make_image(np.random.default_rng(2), 20, 20))
    lst = tmp_path / "list.txt"
    lst.write_text(str(p) + "\n")
    cli("run", "--engine", tiny, "--input", lst, "--output", tmp_path / "c.csv", "--no-progress")
    ref = (tmp_path / "c.csv").read_text().splitlines()[0]
    assert ref.split(";[", 1)[0] == vision.format_key(str(p))
