"""Device preprocessing (ri_builder_set_preprocess_on_device / Engine.build(preprocess_on_device=True)): the
engine takes the uint8 HWC pixels and computes the "preprocess" metadata's normalisation and layout change
itself.
- outputs are bit-identical to the plain engine fed the same pixels normalised by numpy in float32 (NCHW
  model: Cast, Sub, Mul and Transpose in the graph; NHWC model: no Transpose), through run and run_examples;
- the stored metadata: "preprocess" describes the host's part (uint8, NHWC, mean 0, scale 1, the rest kept),
  "preprocess_device" the original spec; both survive save and load;
- refusals at build: no "preprocess" metadata, a uint8 spec, a size that matches no input (named);
- the engine's own preprocessing of a real image (runinfer.vision with its stored spec) gives the plain
  engine's detections within the rounding of resized pixels.
The pipeline and Beam sides are tests/python/test_beam.py (test_example_preprocess_on_device_*).
RI_TEST_DEVICE=cuda (scripts/gpu/beam-gpu.sh) builds fp32 engines for the GPU: there the two engines may
choose different tactics, so outputs agree within the fp32 contract (1e-4 of the output's scale) instead
of bit for bit.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import binding_setup

pytestmark = binding_setup(need_cli=False)

import runinfer  # noqa: E402

MEAN = np.array([127.5, 120.0, 110.0], np.float32)
SCALE = np.array([0.0078125, 0.01, 0.02], np.float32)
DEVICE = os.environ.get("RI_TEST_DEVICE", "cpu")
TINY_SPEC = "size=32x32;layout=nchw;dtype=float32;mean=127.5,120,110;scale=0.0078125,0.01,0.02;order=rgb"


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if DEVICE == "cpu":
        return np.array_equal(a, b)
    scale = float(np.max(np.abs(a))) or 1.0
    return float(np.max(np.abs(a - b))) <= 1e-4 * scale


def _pixels(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_nchw_model_bit_identical(generated_models):
    onnx = generated_models / "tiny_ssd.onnx"
    plain = runinfer.Engine.build(onnx, max_batch=4, device=DEVICE, metadata={"preprocess": TINY_SPEC})
    dev = runinfer.Engine.build(onnx, max_batch=4, device=DEVICE, metadata={"preprocess": TINY_SPEC},
                                preprocess_on_device=True)
    try:
        (inp,) = dev.inputs
        assert inp.name == plain.inputs[0].name and inp.dtype == np.uint8 and inp.shape == (-1, 32, 32, 3)
        u = _pixels(3, 32, 32)
        x = ((u.astype(np.float32) - MEAN) * SCALE).transpose(0, 3, 1, 2).copy()
        want = plain.run(x)
        got = dev.run(u)
        got_items = dev.run_examples([u[i] for i in range(3)])
        for k in want:
            assert _same(want[k], got[k]), k
            assert _same(want[k], got_items[k]), k
        # the normalisation really happens: other pixels give other outputs
        other = dev.run(255 - u)
        assert not np.array_equal(other["scores"], got["scores"])
    finally:
        plain.close()
        dev.close()


def test_nhwc_model_and_metadata_round_trip(generated_models, tmp_path):
    # ssd_mobilenet_v2_nhwc takes float 0..255 NHWC and normalises in its graph: mean 0, scale 1, no Transpose
    onnx = generated_models / "ssd_mobilenet_v2_nhwc.onnx"
    spec = "size=300x300;layout=nhwc;dtype=float32;mean=0,0,0;scale=1,1,1;resize=letterbox;pad=114,114,114"
    plain = runinfer.Engine.build(onnx, max_batch=2, device=DEVICE, metadata={"preprocess": spec})
    dev = runinfer.Engine.build(onnx, max_batch=2, device=DEVICE, metadata={"preprocess": spec, "labels": "bg\na"},
                                preprocess_on_device=True)
    path = tmp_path / "dev.rie"
    dev.save(path)
    dev.close()
    dev = runinfer.Engine.load(path)
    try:
        host = dev.metadata("preprocess")
        assert "dtype=uint8" in host and "layout=nhwc" in host and "mean=0,0,0" in host
        assert "resize=letterbox" in host and "pad=114,114,114" in host and "size=300x300" in host
        assert dev.metadata("preprocess_device") == spec
        assert dev.metadata("labels") == "bg\na"
        assert plain.metadata("preprocess") == spec and plain.metadata("preprocess_device") is None
        u = _pixels(2, 300, 300, seed=3)
        want = plain.run(u.astype(np.float32))
        got = dev.run(u)
        for k in want:
            assert _same(want[k], got[k]), k
    finally:
        plain.close()
        dev.close()


@pytest.mark.parametrize("meta, needle", [
    ({}, "'preprocess' metadata"),
    ({"preprocess": "size=32x32;layout=nchw;dtype=uint8"}, "uint8"),
    ({"preprocess": "size=64x64;layout=nchw;dtype=float32"}, "[N,3,64,64]"),
    ({"preprocess": "size=32x32;layout=nhwc;dtype=float32"}, "'image' has dtype float32 and shape [1,3,32,32]"),
])
def test_refusals_name_the_problem(generated_models, meta, needle):
    with pytest.raises(runinfer.Error) as exc:
        runinfer.Engine.build(generated_models / "tiny_ssd.onnx", metadata=meta, preprocess_on_device=True)
    assert exc.value.status == runinfer.RI_ERR_INVALID_ARG
    assert needle in exc.value.message, exc.value.message
    assert "tiny_ssd.onnx" in exc.value.message


def test_real_image_close_to_host_normalisation(generated_models):
    """The stored host spec applied to a decoded image, then the engine: the outputs differ from host float
    normalisation only by the rounding of the resized pixels (at most half a grey level per pixel)."""
    from runinfer import vision

    onnx = generated_models / "tiny_ssd.onnx"
    plain = runinfer.Engine.build(onnx, device=DEVICE, metadata={"preprocess": TINY_SPEC})
    dev = runinfer.Engine.build(onnx, device=DEVICE, metadata={"preprocess": TINY_SPEC}, preprocess_on_device=True)
    try:
        rgb = _pixels(1, 57, 45, seed=5)[0]
        x, _ = vision.preprocess(rgb, plain.metadata("preprocess"))
        u, _ = vision.preprocess(rgb, dev.metadata("preprocess"))
        assert u.dtype == np.uint8 and u.shape == (32, 32, 3) and x.dtype == np.float32
        # the host's part is the rounded resized pixels: normalising them by hand gives x within rounding
        xr = ((u.astype(np.float32) - MEAN) * SCALE).transpose(2, 0, 1)
        assert np.max(np.abs(xr - x) / SCALE[:, None, None]) <= 0.5 + 1e-3
        a, b = plain.run(x[None]), dev.run(u[None])
        for k in a:
            scale = float(np.max(np.abs(a[k]))) or 1.0
            assert np.max(np.abs(a[k] - b[k])) / scale < 0.05, k
    finally:
        plain.close()
        dev.close()


def test_cli_build_flag(generated_models, ri_cli, tmp_path):
    """`runinfer build --preprocess-on-device`: the saved engine takes uint8 [N,32,32,3] and stores the host
    spec, which `runinfer inspect` shows with the device's; without the preprocess metadata the build fails
    naming what is missing, and writes no file."""
    import subprocess

    onnx = str(generated_models / "tiny_ssd.onnx")
    rie = tmp_path / "u8.rie"
    p = subprocess.run([ri_cli, "build", "--onnx", onnx, "--save", str(rie), "--max-batch", "2", "--meta",
                        f"preprocess={TINY_SPEC}", "--preprocess-on-device"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    e = runinfer.Engine.load(rie)
    try:
        assert e.inputs[0].dtype == np.uint8 and e.inputs[0].shape == (-1, 32, 32, 3)
        assert "dtype=uint8" in e.metadata("preprocess") and e.metadata("preprocess_device") == TINY_SPEC
    finally:
        e.close()
    shown = subprocess.run([ri_cli, "inspect", str(rie)], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    lines = {ln.split()[1]: ln.split(None, 2)[2] for ln in shown.stdout.splitlines() if ln.startswith("  meta ")}
    assert lines.get("preprocess_device") == TINY_SPEC and "dtype=uint8" in lines.get("preprocess", "")
    bad = tmp_path / "bad.rie"
    p = subprocess.run([ri_cli, "build", "--onnx", onnx, "--save", str(bad), "--preprocess-on-device"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "'preprocess' metadata" in p.stderr and "tiny_ssd.onnx" in p.stderr
    assert not bad.exists()
