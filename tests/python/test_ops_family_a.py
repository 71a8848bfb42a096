"""Convolution / pooling / dense operators against onnxruntime, one small model per case.

Every case builds a one-node (or two-node, for fused activations) ONNX model with onnx.helper, runs it
with onnxruntime (graph optimisations off) and with the runinfer CLI
(`runinfer build --onnx M.onnx --save M.rie`, then `runinfer infer --engine M.rie --in NAME=x.npy --out
DIR`), and compares: max|ours - ort| / max(max|ort|, 1) <= 1e-4 for float outputs; integer outputs must
match exactly, except uint8 linear Resize (truncated, as onnxruntime does), where float rounding next to
an integer may move a value by 1.

Covered: Conv (strides, pads, dilations, groups, depthwise, every auto_pad mode, 1-D, no bias, + Relu;
onnxruntime refuses dilations with SAME_*, which the C test covers), BatchNormalization (opsets 11, 14,
15; ranks 2 to 4), MaxPool (also uint8, int8) / AveragePool (pads, strides, dilations, ceil_mode,
count_include_pad, auto_pad, 1-D), GlobalAveragePool, Gemm (transA/transB, alpha/beta, every broadcast
form of C, no C), MatMul (2-D, 1-D operands, batched broadcasting), Softmax (opset 11 coercion and opset
13 axis semantics), Resize (nearest with every nearest_mode, linear, every supported
coordinate_transformation_mode, scales and sizes, opsets 11 / 13 / 18 axes / 19, uint8) and Pad
(constant with and without a value, reflect, edge, negative pads, opset-18 axes, integer types).

Skipped when the CLI has not been built ($RI_CLI, else build/runinfer). Seeded: $RI_TEST_SEED replays.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import ort_run

TOL = 1e-4
CLI_TIMEOUT_S = 300
SEED = int(os.environ.get("RI_TEST_SEED", "20240611"))

_NP2ONNX = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.uint8): TensorProto.UINT8,
            np.dtype(np.int8): TensorProto.INT8, np.dtype(np.int32): TensorProto.INT32,
            np.dtype(np.int64): TensorProto.INT64}


class Case:
    """One model: inputs fed at run time, initializers (constants) and node(s) producing output 'y'."""

    def __init__(self, name: str, opset: int = 13):
        self.name = name
        self.opset = opset
        self.feeds: dict[str, np.ndarray] = {}
        self.inits: list[onnx.TensorProto] = []
        self.nodes: list[onnx.NodeProto] = []
        self.int_tol = 0

    def feed(self, name: str, arr: np.ndarray) -> str:
        self.feeds[name] = arr
        return name

    def const(self, name: str, arr) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(self, op: str, inputs, outputs=("y",), **attrs):
        self.nodes.append(helper.make_node(op, list(inputs), list(outputs), name=f"{self.name}_{op}", **attrs))
        return self

    def model(self, out_shape=None) -> onnx.ModelProto:
        """The model; the output's shape is left out (out_shape None) until onnxruntime has told it."""
        ins = [helper.make_tensor_value_info(k, _NP2ONNX[v.dtype], list(v.shape)) for k, v in self.feeds.items()]
        # Every op here keeps its first input's element type.
        out = helper.make_tensor_value_info("y", _NP2ONNX[next(iter(self.feeds.values())).dtype],
                                            None if out_shape is None else list(out_shape))
        g = helper.make_graph(self.nodes, self.name, ins, [out], initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)])
        m.ir_version = min(m.ir_version, 8)
        return m


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng([SEED, sum(map(ord, name))])


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---- case builders --------------------------------------------------------------------------------------

def conv_cases():
    specs = [
        # name, x shape, (M, kernel...), attrs, bias
        ("basic", (2, 3, 9, 8), (8, 3, 3), dict(pads=[1, 1, 1, 1]), True),
        ("stride_asym_pads", (1, 4, 11, 10), (6, 3, 2), dict(strides=[2, 1], pads=[0, 1, 2, 0]), False),
        ("dilated", (2, 4, 12, 11), (5, 3, 3), dict(dilations=[2, 1], pads=[2, 1, 2, 1]), True),
        ("stem7x7", (2, 3, 32, 30), (16, 7, 7), dict(strides=[2, 2], pads=[3, 3, 3, 3]), True),
        ("depthwise", (2, 8, 10, 9), (8, 3, 3), dict(group=8, pads=[1, 1, 1, 1]), True),
        ("depthwise_s2", (1, 6, 11, 11), (6, 3, 3), dict(group=6, strides=[2, 2], pads=[1, 1, 1, 1]), True),
        ("depth_mult2", (1, 4, 7, 8), (8, 3, 3), dict(group=4, pads=[1, 1, 1, 1]), False),
        ("grouped", (2, 8, 6, 7), (16, 3, 3), dict(group=2, pads=[1, 0, 1, 0]), True),
        ("pointwise", (3, 16, 7, 7), (24, 1, 1), {}, True),
        ("pointwise_s2", (1, 8, 9, 9), (4, 1, 1), dict(strides=[2, 2]), False),
        ("same_upper", (1, 3, 10, 9), (4, 3, 3), dict(auto_pad="SAME_UPPER", strides=[2, 2]), True),
        ("same_lower", (1, 3, 10, 9), (4, 4, 4), dict(auto_pad="SAME_LOWER", strides=[2, 2]), True),
        ("valid", (1, 3, 10, 9), (4, 3, 3), dict(auto_pad="VALID", strides=[2, 1]), True),
        ("kernel_shape_attr", (1, 3, 6, 6), (2, 3, 3), dict(kernel_shape=[3, 3]), True),
        ("conv1d", (2, 4, 20), (6, 5), dict(strides=[2], pads=[3, 1], dilations=[2], group=2), True),
        ("conv1d_same", (1, 3, 9), (2, 3), dict(auto_pad="SAME_LOWER"), False),
    ]
    out = []
    for name, xs, ws, attrs, bias in specs:
        c = Case(f"conv_{name}")
        rng = _rng(c.name)
        g = attrs.get("group", 1)
        w = _f32(rng, ws[0], xs[1] // g, *ws[1:])
        ins = [c.feed("x", _f32(rng, *xs)), c.const("w", w)]
        if bias:
            ins.append(c.const("b", _f32(rng, ws[0])))
        c.node("Conv", ins, **attrs)
        out.append(c)
    # Conv followed by an activation the engine may fuse into it
    for act in ("Relu", "LeakyRelu", "Clip"):
        c = Case(f"conv_then_{act.lower()}")
        rng = _rng(c.name)
        c.feed("x", _f32(rng, 1, 4, 8, 8))
        c.const("w", _f32(rng, 8, 4, 3, 3))
        c.const("b", _f32(rng, 8))
        c.nodes.append(helper.make_node("Conv", ["x", "w", "b"], ["t"], name="conv", pads=[1, 1, 1, 1]))
        if act == "Clip":
            c.const("lo", np.float32(0.0))
            c.const("hi", np.float32(6.0))
            c.nodes.append(helper.make_node("Clip", ["t", "lo", "hi"], ["y"], name="act"))
        elif act == "LeakyRelu":
            c.nodes.append(helper.make_node("LeakyRelu", ["t"], ["y"], name="act", alpha=0.2))
        else:
            c.nodes.append(helper.make_node("Relu", ["t"], ["y"], name="act"))
        out.append(c)
    return out


def batchnorm_cases():
    out = []
    for opset, shape in ((11, (2, 5, 4, 3)), (14, (2, 5, 6)), (15, (7, 5)), (13, (1, 3, 8, 8))):
        c = Case(f"bn_opset{opset}_rank{len(shape)}", opset)
        rng = _rng(c.name)
        ch = shape[1]
        c.feed("x", _f32(rng, *shape))
        ins = ["x", c.const("s", _f32(rng, ch)), c.const("b", _f32(rng, ch)), c.const("m", _f32(rng, ch)),
               c.const("v", (np.abs(_f32(rng, ch)) + 0.2).astype(np.float32))]
        attrs = dict(epsilon=1e-3)
        if opset >= 14:
            attrs["training_mode"] = 0
        c.node("BatchNormalization", ins, **attrs)
        out.append(c)
    return out


def pool_cases():
    specs = [
        ("MaxPool", "k2s2", (2, 3, 8, 8), dict(kernel_shape=[2, 2], strides=[2, 2])),
        ("MaxPool", "k3s2p1", (1, 2, 9, 9), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
        ("MaxPool", "ceil", (1, 2, 7, 8), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
        ("MaxPool", "ceil_nopad", (1, 2, 6, 6), dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
        ("MaxPool", "ceil_drop_last", (1, 2, 5, 5), dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1],
                                                         ceil_mode=1)),
        ("MaxPool", "dilated", (1, 2, 9, 10), dict(kernel_shape=[3, 2], strides=[2, 3], dilations=[2, 2],
                                                   pads=[1, 0, 2, 1])),
        ("MaxPool", "same_upper", (1, 2, 10, 9), dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
        ("MaxPool", "same_lower", (1, 2, 10, 9), dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_LOWER")),
        ("MaxPool", "valid", (1, 2, 10, 9), dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID")),
        ("MaxPool", "pool1d", (2, 3, 11), dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
        ("AveragePool", "k2s2", (2, 3, 8, 8), dict(kernel_shape=[2, 2], strides=[2, 2])),
        ("AveragePool", "pad_excl", (1, 2, 7, 9), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
        ("AveragePool", "pad_incl", (1, 2, 7, 9), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                                       count_include_pad=1)),
        ("AveragePool", "ceil_excl", (1, 2, 7, 8), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                                        ceil_mode=1)),
        ("AveragePool", "ceil_incl", (1, 2, 7, 8), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                                        ceil_mode=1, count_include_pad=1)),
        ("AveragePool", "ceil_incl_nopad", (1, 2, 6, 6), dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1,
                                                              count_include_pad=1)),
        ("AveragePool", "same_upper", (1, 2, 10, 9), dict(kernel_shape=[3, 3], strides=[2, 2],
                                                          auto_pad="SAME_UPPER")),
        ("AveragePool", "same_lower_incl", (1, 2, 10, 9), dict(kernel_shape=[3, 3], strides=[2, 2],
                                                               auto_pad="SAME_LOWER", count_include_pad=1)),
        ("AveragePool", "pool1d", (2, 3, 11), dict(kernel_shape=[3], strides=[2], pads=[1, 1], ceil_mode=1,
                                                   count_include_pad=1)),
        ("AveragePool", "k7_global_like", (2, 4, 7, 7), dict(kernel_shape=[7, 7])),
    ]
    out = []
    for op, name, xs, attrs in specs:
        c = Case(f"{op.lower()}_{name}", 13)
        c.feed("x", _f32(_rng(c.name), *xs))
        c.node(op, ["x"], **attrs)
        out.append(c)
    for dt in (np.uint8, np.int8):
        c = Case(f"maxpool_{np.dtype(dt).name}", 13)
        info = np.iinfo(dt)
        c.feed("x", _rng(c.name).integers(info.min, info.max + 1, (1, 3, 7, 8), dtype=dt))
        c.node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)
        out.append(c)
    c = Case("avgpool_dilated_opset19", 19)
    c.feed("x", _f32(_rng(c.name), 1, 2, 10, 9))
    c.node("AveragePool", ["x"], kernel_shape=[3, 3], dilations=[2, 2], pads=[2, 2, 2, 2], count_include_pad=1)
    out.append(c)
    for xs in ((2, 5, 7, 6), (2, 3, 9)):
        c = Case(f"gap_rank{len(xs)}")
        c.feed("x", _f32(_rng(c.name), *xs))
        c.node("GlobalAveragePool", ["x"])
        out.append(c)
    return out


def gemm_cases():
    m, k, n = 5, 6, 7
    specs = [
        ("plain", 0, 0, (m, n), {}),
        ("tA", 1, 0, (m, n), {}),
        ("tB", 0, 1, (n,), {}),
        ("tAtB", 1, 1, (1, n), dict(alpha=0.5, beta=2.0)),
        ("c_col", 0, 0, (m, 1), dict(beta=-1.0)),
        ("c_scalar", 0, 1, (), dict(alpha=2.0)),
        ("c_one", 0, 0, (1,), {}),
        ("no_c", 1, 0, None, dict(alpha=1.5)),
        ("fc", 0, 1, (300,), {}),
    ]
    out = []
    for name, ta, tb, cshape, attrs in specs:
        c = Case(f"gemm_{name}", 13)
        rng = _rng(c.name)
        nn = 300 if name == "fc" else n
        kk = 200 if name == "fc" else k
        a = _f32(rng, kk, m) if ta else _f32(rng, m, kk)
        b = _f32(rng, nn, kk) if tb else _f32(rng, kk, nn)
        ins = [c.feed("a", a), c.const("b", b)]
        if cshape is not None:
            ins.append(c.const("c", _f32(rng, *cshape) if cshape else np.float32(rng.standard_normal())))
        if ta:
            attrs = dict(attrs, transA=1)
        if tb:
            attrs = dict(attrs, transB=1)
        c.node("Gemm", ins, **attrs)
        out.append(c)
    return out


def matmul_cases():
    specs = [((4, 6), (6, 5)), ((6,), (6, 5)), ((4, 6), (6,)), ((6,), (6,)), ((3, 4, 6), (6, 5)),
             ((4, 6), (3, 6, 5)), ((2, 1, 4, 6), (3, 6, 5)), ((5, 4, 6), (6,)), ((2, 3, 4, 6), (2, 3, 6, 5)),
             ((64, 96), (96, 300))]
    out = []
    for i, (sa, sb) in enumerate(specs):
        c = Case(f"matmul_{i}_{'x'.join(map(str, sa))}_by_{'x'.join(map(str, sb))}")
        rng = _rng(c.name)
        c.feed("a", _f32(rng, *sa))
        c.feed("b", _f32(rng, *sb))
        c.node("MatMul", ["a", "b"])
        out.append(c)
    return out


def softmax_cases():
    out = []
    for opset, axis in ((11, None), (11, 0), (11, 2), (11, -1), (13, None), (13, 1), (13, 0), (13, -3), (18, 2)):
        c = Case(f"softmax_opset{opset}_axis{'default' if axis is None else axis}", opset)
        c.feed("x", (_f32(_rng(c.name), 2, 3, 4, 5) * 3).astype(np.float32))
        c.node("Softmax", ["x"], **({} if axis is None else dict(axis=axis)))
        out.append(c)
    return out


# ONNX spells the TensorFlow nearest-neighbour convention "tf_half_pixel_for_nn" (deprecated since opset 13).
COORDS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


def resize_cases():
    out = []

    def add(name, opset, x, mode, coord, nearest=None, scales=None, sizes=None, axes=None):
        c = Case(f"resize_{name}", opset)
        c.feed("x", x)
        attrs = dict(mode=mode, coordinate_transformation_mode=coord)
        if nearest:
            attrs["nearest_mode"] = nearest
        if axes is not None:
            attrs["axes"] = axes
        if opset < 13:  # roi and scales are required inputs; an empty tensor leaves them out
            ins = ["x", c.const("roi", np.zeros(0, np.float32)),
                   c.const("scales", np.asarray(scales if scales is not None else [], np.float32))]
        else:
            ins = ["x", "", c.const("scales", np.asarray(scales, np.float32)) if scales is not None else ""]
        if sizes is not None:
            ins.append(c.const("sizes", np.asarray(sizes, np.int64)))
        c.node("Resize", ins, **attrs)
        if x.dtype == np.uint8 and mode == "linear":
            c.int_tol = 1
        out.append(c)

    rng = _rng("resize")
    x = _f32(rng, 1, 2, 5, 6)
    for coord in COORDS:
        add(f"linear_{coord}_up", 13, x, "linear", coord, scales=[1, 1, 2.0, 1.5])
        add(f"linear_{coord}_down", 13, x, "linear", coord, scales=[1, 1, 0.6, 0.5])
        add(f"linear_{coord}_sizes", 11, x, "linear", coord, sizes=[1, 2, 9, 4])
        add(f"linear_{coord}_size1", 13, x, "linear", coord, sizes=[1, 2, 1, 3])
        for nm in NEAREST:
            add(f"nearest_{coord}_{nm}_up", 13, x, "nearest", coord, nm, scales=[1, 1, 2.0, 3.0])
            add(f"nearest_{coord}_{nm}_frac", 13, x, "nearest", coord, nm, scales=[1, 1, 1.7, 0.5])
            add(f"nearest_{coord}_{nm}_sizes", 11, x, "nearest", coord, nm, sizes=[1, 2, 8, 3])
    add("nearest_default_attrs", 13, x, "nearest", "half_pixel", scales=[1, 1, 2, 2])
    add("nearest_axes_opset18", 18, x, "nearest", "asymmetric", "floor", scales=[2.0, 2.0], axes=[2, 3])
    add("linear_axes_opset18", 18, x, "linear", "half_pixel", sizes=[7, 4], axes=[-2, -1])
    add("linear_symmetric_opset19", 19, x, "linear", "half_pixel_symmetric", scales=[1, 1, 1.7, 0.6])
    add("nearest_symmetric_opset19", 19, x, "nearest", "half_pixel_symmetric", "round_prefer_ceil",
        sizes=[1, 2, 8, 9])
    add("linear_rank3", 13, _f32(rng, 2, 3, 7), "linear", "align_corners", scales=[1, 1, 2.5])
    xu8 = rng.integers(0, 256, (1, 3, 5, 6), dtype=np.uint8)
    add("nearest_uint8", 13, xu8, "nearest", "asymmetric", "floor", scales=[1, 1, 2, 2])
    add("linear_uint8", 13, xu8, "linear", "half_pixel", scales=[1, 1, 2, 2])
    return out


def pad_cases():
    out = []

    def add(name, opset, x, pads, mode=None, value=None, axes=None):
        c = Case(f"pad_{name}", opset)
        c.feed("x", x)
        ins = ["x", c.const("pads", np.asarray(pads, np.int64))]
        if value is not None:
            ins.append(c.const("value", np.asarray(value, x.dtype)))
        elif axes is not None:
            ins.append("")
        if axes is not None:
            ins.append(c.const("axes", np.asarray(axes, np.int64)))
        c.node("Pad", ins, **({} if mode is None else dict(mode=mode)))
        out.append(c)

    rng = _rng("pad")
    x = _f32(rng, 1, 2, 5, 6)
    for mode in ("constant", "reflect", "edge"):
        add(f"{mode}_4d", 13, x, [0, 0, 1, 2, 0, 0, 3, 1], mode)
        add(f"{mode}_all_axes", 11, x, [0, 1, 2, 0, 0, 1, 1, 2], mode)
        add(f"{mode}_crop_mixed", 13, x, [0, 0, -1, 2, 0, 0, 1, -2], mode)
        add(f"{mode}_axes_opset18", 18, x, [1, 2, 3, 1], mode, axes=[-1, 2])
        add(f"{mode}_int64", 13, rng.integers(-100, 100, (3, 4), dtype=np.int64), [1, 2, 2, 1], mode)
        add(f"{mode}_uint8", 13, rng.integers(0, 256, (2, 3, 4), dtype=np.uint8), [0, 1, 2, 1, 1, 3], mode)
    add("constant_value", 13, x, [0, 1, 1, 1, 0, 0, 2, 1], "constant", value=-2.5)
    add("constant_value_int32", 13, rng.integers(-9, 9, (3, 4), dtype=np.int32), [1, 1, 1, 1], value=7)
    add("constant_value_axes", 18, x, [2, 1], "constant", value=1.5, axes=[1])
    add("crop_only", 13, x, [0, 0, -2, -1, 0, 0, -1, -3])
    return out


CASES = (conv_cases() + batchnorm_cases() + pool_cases() + gemm_cases() + matmul_cases() + softmax_cases()
         + resize_cases() + pad_cases())


def _run(cmd: list[str]) -> None:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    if p.returncode != 0:
        pytest.fail(f"command failed (rc {p.returncode}): {' '.join(cmd)}\n"
                    f"--- stdout ---\n{p.stdout[-3000:]}\n--- stderr ---\n{p.stderr[-3000:]}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_op_matches_ort(case: Case, ri_cli, tmp_path: Path):
    path = tmp_path / f"{case.name}.onnx"
    onnx.save(case.model(), str(path))
    ref, _ = ort_run(path, case.feeds)
    want = ref["y"]
    model = case.model(want.shape)  # fully typed, as exporters write them
    onnx.checker.check_model(model)
    onnx.save(model, str(path))

    rie = tmp_path / f"{case.name}.rie"
    _run([ri_cli, "build", "--onnx", str(path), "--save", str(rie)])
    args = []
    for name, arr in case.feeds.items():
        f = tmp_path / f"in_{name}.npy"
        np.save(f, arr)
        args += ["--in", f"{name}={f}"]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    _run([ri_cli, "infer", "--engine", str(rie), *args, "--out", str(out_dir)])
    got = np.load(out_dir / "y.npy")

    assert got.shape == want.shape, f"shape {got.shape} != ort {want.shape}"
    assert got.dtype == want.dtype, f"dtype {got.dtype} != ort {want.dtype}"
    if np.issubdtype(want.dtype, np.floating):
        err = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) if want.size else 0.0
        rel = err / max(float(np.abs(want).max()) if want.size else 0.0, 1.0)
        assert np.isfinite(got).all(), "non-finite output"
        assert rel <= TOL, f"relative error {rel:.3e} > {TOL:g} (max abs {err:.3e})"
    else:
        diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
        assert int(diff.max(initial=0)) <= case.int_tol, \
            f"{int((diff > case.int_tol).sum())} elements differ by more than {case.int_tol}"
