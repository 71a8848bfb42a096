"""bench/gemm_shapes.py lists a model's 1x1 convolutions as GEMM shapes for tests/gpu/bench_gemm_shapes.

A tiny NCHW model with a symbolic batch: a 1x1 convolution 8 -> 16 on 12x10 pixels, a 3x3 stride 2
convolution (not a GEMM: skipped) to 6x5 pixels, a 1x1 convolution 16 -> 24 on them (its size known only
through shape inference), and a grouped and a strided 1x1 convolution (skipped). The script runs as a
program and must write exactly the two GEMM rows, in graph order, with the spatial size each one sees.
"""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "bench" / "gemm_shapes.py"


def _weight(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> onnx.TensorProto:
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    inits = [
        _weight("w_a", (16, 8, 1, 1), rng),
        _weight("w_b", (16, 16, 3, 3), rng),
        _weight("w_c", (24, 16, 1, 1), rng),
        _weight("w_d", (24, 12, 1, 1), rng),
        _weight("w_e", (8, 24, 1, 1), rng),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w_a"], ["a"], name="first_1x1", kernel_shape=[1, 1]),
        helper.make_node("Conv", ["a", "w_b"], ["b"], name="down_3x3", kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["b", "w_c"], ["c"], name="second_1x1", pads=[0, 0, 0, 0]),
        helper.make_node("Conv", ["c", "w_d"], ["d"], name="grouped_1x1", kernel_shape=[1, 1], group=2),
        helper.make_node("Conv", ["d", "w_e"], ["y"], name="strided_1x1", kernel_shape=[1, 1], strides=[2, 2]),
    ]
    g = helper.make_graph(nodes, "gemm_shapes_test",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 12, 10])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 3, 3])], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(m)
    return m


def test_csv_rows(tmp_path):
    model = tmp_path / "tiny.onnx"
    onnx.save(_model(), model)
    out = tmp_path / "shapes.csv"
    r = subprocess.run([sys.executable, str(SCRIPT), str(model), "-o", str(out)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["name", "h", "w", "cin", "cout"],
        ["first_1x1", "12", "10", "8", "16"],
        ["second_1x1", "6", "5", "16", "24"],
    ]
    assert "2 1x1 convolutions" in r.stderr and "3 other Conv nodes skipped" in r.stderr
