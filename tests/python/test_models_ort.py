"""The generated reference models are valid ONNX and run in onnxruntime at batch 1 and 8."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import make_models
from conftest import ort_int8_exact, ort_run

NAMES = make_models.TINY_MODELS + ["ssd_mobilenet_v2", "ssd_mobilenet_v2_nhwc"]
SSD = ["ssd_mobilenet_v2", "ssd_mobilenet_v2_nhwc"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    make_models.build_models(str(out), only=NAMES, verbose=True)
    return out


def _inputs(name: str, model: onnx.ModelProto, batch: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in model.graph.input:
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim[1:]]
        feeds[vi.name] = make_models.make_input(make_models.MODELS[name], [batch] + dims, rng)
    return feeds


def _declared_shape(vi, batch: int):
    return tuple(batch if d.dim_param == "N" else d.dim_value for d in vi.type.tensor_type.shape.dim)


@pytest.mark.parametrize("name", NAMES)
def test_model_is_valid(model_dir, name):
    path = model_dir / f"{name}.onnx"
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 8
    assert model.opset_import[0].version == (14 if name == "tiny_shape_ops" else 13)
    for vi in model.graph.input:
        assert vi.type.tensor_type.shape.dim[0].dim_param == "N", f"{vi.name}: batch axis not symbolic"
    # Every constant Reshape target must leave the batch axis alone (0) or infer it (-1).
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Reshape" and node.input[1] in inits:
            assert inits[node.input[1]][0] in (0, -1), f"{node.name} reshapes to a fixed batch"
    if name in make_models.TINY_MODELS:
        assert path.stat().st_size < 200_000


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("name", NAMES)
def test_runs_in_ort(model_dir, name, batch):
    path = model_dir / f"{name}.onnx"
    model = onnx.load(str(path), load_external_data=False)
    outs, _ = ort_run(path, _inputs(name, model, batch), optimize=True)
    for vi in model.graph.output:
        got = outs[vi.name]
        assert got.shape == _declared_shape(vi, batch), vi.name
        assert np.isfinite(got).all(), vi.name
    if name in SSD:
        assert outs["raw_boxes"].shape == (batch, 1917, 4)
        assert outs["raw_scores"].shape == (batch, 1917, 91)
        for k in ("raw_boxes", "raw_scores"):
            std = float(outs[k].std())
            print(f"{name} batch {batch} {k} std {std:.4g}")
            assert 1e-2 <= std <= 1e2, f"{k} std {std} out of range"
            # The outputs must depend on the image, not only on biases.
            assert float(outs[k].std(axis=0).mean()) > 1e-2 or batch == 1


@pytest.mark.parametrize("name", NAMES)
def test_batch_rows_independent(model_dir, name):
    """Batch 8 equals eight runs at batch 1, with and without ORT's optimizer."""
    path = model_dir / f"{name}.onnx"
    model = onnx.load(str(path))
    feeds = _inputs(name, model, 8, seed=3)
    full, _ = ort_run(path, feeds)
    opt, _ = ort_run(path, feeds, optimize=True)
    for i in (0, 5):
        row, _ = ort_run(path, {k: v[i:i + 1] for k, v in feeds.items()})
        for k, v in full.items():
            if name == "tiny_shape_ops" and k == "features":
                # This output subtracts N/8 on purpose (Cast of the runtime batch size).
                np.testing.assert_allclose(row[k][0] - v[i], 7.0 / 8.0, rtol=0, atol=1e-5)
                continue
            scale = max(float(np.abs(v).max()), 1e-6)
            assert float(np.abs(row[k][0] - v[i]).max()) / scale < 1e-5, k
    for k, v in full.items():
        diff = float(np.abs(opt[k] - v).max())
        if name == "tiny_qdq":
            # ORT's fused QLinearConv saturates on CPUs without VNNI (conftest.ort_int8_exact), its op-by-op
            # path does not: the two agree only where its int8 sums are exact
            assert diff == 0.0 or not ort_int8_exact(), "QDQ model is built to be exact; ORT's QLinearConv path differs"
        else:
            assert diff / max(float(np.abs(v).max()), 1e-6) < 1e-4, k


def test_nhwc_matches_nchw(model_dir):
    """ssd_mobilenet_v2_nhwc shares ssd_mobilenet_v2's weights; its in-graph preprocessing maps
    0..255 NHWC pixels to the [-1,1] NCHW input of the plain model."""
    rng = np.random.default_rng(7)
    pix = rng.uniform(0, 255, size=(2, 300, 300, 3)).astype(np.float32)
    nchw = (pix.transpose(0, 3, 1, 2) - np.float32(127.5)) * np.float32(1 / 127.5)
    a, _ = ort_run(model_dir / "ssd_mobilenet_v2_nhwc.onnx", {"image": pix})
    b, _ = ort_run(model_dir / "ssd_mobilenet_v2.onnx", {"image": nchw})
    for k in ("raw_boxes", "raw_scores"):
        assert np.abs(a[k] - b[k]).max() / np.abs(b[k]).max() < 1e-4


def test_generation_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make_models.build_models(str(a), only=make_models.TINY_MODELS, verbose=False, check=False)
    make_models.build_models(str(b), only=make_models.TINY_MODELS, verbose=False, check=False)
    for n in make_models.TINY_MODELS:
        assert (a / f"{n}.onnx").read_bytes() == (b / f"{n}.onnx").read_bytes(), n


def test_ssd_layout(model_dir):
    """Six feature maps with 3/6/6/6/6/6 anchors and exactly 19,10,5,3,2,1 spatial sizes."""
    model = onnx.load(str(model_dir / "ssd_mobilenet_v2.onnx"))
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in inferred.graph.value_info}
    box_convs = [n for n in model.graph.node if n.name.endswith("BoxEncodingPredictor/Conv2D")]
    assert len(box_convs) == 6
    got = [(shapes[n.input[0]][2], shapes[n.output[0]][1] // 4) for n in box_convs]
    assert got == [(19, 3), (10, 6), (5, 6), (3, 6), (2, 6), (1, 6)]
    assert shapes[box_convs[0].input[0]][1] == 576 and shapes[box_convs[1].input[0]][1] == 1280
    ops = {n.op_type for n in model.graph.node}
    assert {"BatchNormalization", "Clip", "Add"} <= ops and "Relu" not in ops
