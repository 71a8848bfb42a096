"""Small crafted Q/DQ models against onnxruntime's default CPU session, element for element.

Each model quantises a float input, runs DequantizeLinear -> op -> QuantizeLinear groups, and dequantises
the result. onnxruntime (graph optimisations "all", the default) computes the eligible groups with
QLinearConv / QLinearAdd in integers; runinfer's qdq_to_qlinear pass must pick the same groups and its
kernels must give the same numbers, so the outputs are compared for equality (not within a tolerance).
Each test also checks, in onnxruntime's optimised graph, that the integer node it is about was really
made (or, for the shared-pair case, was not).

Cases: per-tensor and per-channel weights; uint8 activations and int8 ones (which onnxruntime turns into
uint8 when the Q -> DQ pair is private); bias; Relu and Clip made redundant by the quantisation; a
depthwise strided conv with pads; an Add of two quantised branches (its convs stay float: they share one
DQ of the int8 input); two convs around an int8 Q that feeds two DQs (onnxruntime keeps both float). Also: ONNX's own QLinearConv
node in a model (equal to onnxruntime), and malformed ones refused at build time naming the node and rule.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from conftest import skip_unless_ort_int8_exact  # noqa: E402

N, C, H, W = 2, 8, 12, 12


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def _conv_group(prefix, x, c_in, m, rng, inits, nodes, *, group=1, k=3, stride=1, per_channel=True,
                act=None, y_scale=0.05, y_zp=np.uint8(128), w_dtype=np.int8):
    """DQ(x_q) is x; appends weight/bias DQs, the Conv, an optional Relu/Clip and the Q. Returns Q's output."""
    cg = c_in // group
    if w_dtype == np.int8:
        w = rng.integers(-127, 128, (m, cg, k, k)).astype(np.int8)
        wzp = np.zeros(m if per_channel else (), np.int8)
    else:
        w = rng.integers(0, 256, (m, cg, k, k)).astype(np.uint8)
        wzp = np.full(m if per_channel else (), 3, np.uint8)
    ws = rng.uniform(0.002, 0.02, m if per_channel else ()).astype(np.float32)
    inits += [_init(f"{prefix}_w", w), _init(f"{prefix}_ws", ws), _init(f"{prefix}_wzp", wzp)]
    nodes.append(helper.make_node("DequantizeLinear", [f"{prefix}_w", f"{prefix}_ws", f"{prefix}_wzp"],
                                  [f"{prefix}_wf"], axis=0))
    x_scale = next(t for t in inits if t.name == x["scale"])
    bs = (numpy_helper.to_array(x_scale) * ws).astype(np.float32)
    b = rng.integers(-3000, 3000, m).astype(np.int32)
    inits += [_init(f"{prefix}_b", b), _init(f"{prefix}_bs", bs if per_channel else np.float32(bs)),
              _init(f"{prefix}_bzp", np.zeros(m if per_channel else (), np.int32))]
    nodes.append(helper.make_node("DequantizeLinear", [f"{prefix}_b", f"{prefix}_bs", f"{prefix}_bzp"],
                                  [f"{prefix}_bf"], axis=0))
    pad = k // 2
    nodes.append(helper.make_node("Conv", [x["f"], f"{prefix}_wf", f"{prefix}_bf"], [f"{prefix}_y"],
                                  group=group, strides=[stride] * 2, pads=[pad] * 4, kernel_shape=[k, k]))
    y = f"{prefix}_y"
    if act == "relu":
        nodes.append(helper.make_node("Relu", [y], [f"{prefix}_a"]))
        y = f"{prefix}_a"
    elif act == "clip":
        inits += [_init(f"{prefix}_lo", np.float32(0)), _init(f"{prefix}_hi", np.float32(6))]
        nodes.append(helper.make_node("Clip", [y, f"{prefix}_lo", f"{prefix}_hi"], [f"{prefix}_a"]))
        y = f"{prefix}_a"
    inits += [_init(f"{prefix}_ys", np.float32(y_scale)), _init(f"{prefix}_yzp", y_zp)]
    nodes.append(helper.make_node("QuantizeLinear", [y, f"{prefix}_ys", f"{prefix}_yzp"], [f"{prefix}_q"]))
    return {"q": f"{prefix}_q", "scale": f"{prefix}_ys", "zp": f"{prefix}_yzp"}


def _dq(t, name, nodes):
    nodes.append(helper.make_node("DequantizeLinear", [t["q"], t["scale"], t["zp"]], [name]))
    return dict(t, f=name)


def _model(kind: str):
    rng = np.random.default_rng(sum(kind.encode()))
    act_zp = np.int8(-3) if "s8" in kind else np.uint8(121)
    inits = [_init("in_s", np.float32(0.04)), _init("in_zp", act_zp)]
    nodes = [helper.make_node("QuantizeLinear", ["x", "in_s", "in_zp"], ["x_q"])]
    x = _dq({"q": "x_q", "scale": "in_s", "zp": "in_zp"}, "x_f", nodes)
    zp = (lambda v: np.int8(v - 128)) if "s8" in kind else np.uint8
    if kind in ("conv_u8_per_channel", "conv_s8_per_channel"):
        y = _conv_group("c1", x, C, 16, rng, inits, nodes, y_zp=zp(100))
        y = _conv_group("c2", _dq(y, "c1_f", nodes), 16, 16, rng, inits, nodes, k=1, y_zp=zp(131))
    elif kind == "conv_u8_per_tensor_u8_weights":
        y = _conv_group("c1", x, C, 12, rng, inits, nodes, per_channel=False, w_dtype=np.uint8, y_zp=zp(90))
    elif kind == "conv_relu_clip_s8":
        y = _conv_group("c1", x, C, 16, rng, inits, nodes, act="relu", y_zp=zp(0))
        y = _conv_group("c2", _dq(y, "c1_f", nodes), 16, 16, rng, inits, nodes, act="clip",
                        y_scale=6 / 255, y_zp=zp(0))
    elif kind == "depthwise_stride2_s8":
        y = _conv_group("c1", x, C, C, rng, inits, nodes, group=C, stride=2, y_zp=zp(77))
    elif kind == "add_s8":
        a = _conv_group("c1", x, C, 8, rng, inits, nodes, k=1, y_zp=zp(140))
        b = _conv_group("c2", x, C, 8, rng, inits, nodes, k=3, y_scale=0.07, y_zp=zp(110))
        # both convs read one DQ of the int8 input, so onnxruntime keeps them float; the Add's pairs are
        # private and become uint8, so the Add is integer
        inits += [_init("add_s", np.float32(0.06)), _init("add_zp", zp(128))]
        _dq(a, "a_f", nodes)
        _dq(b, "b_f", nodes)
        nodes.append(helper.make_node("Add", ["a_f", "b_f"], ["sum"]))
        nodes.append(helper.make_node("QuantizeLinear", ["sum", "add_s", "add_zp"], ["sum_q"]))
        y = {"q": "sum_q", "scale": "add_s", "zp": "add_zp"}
    elif kind == "shared_input_stays_float_s8":
        y1 = _conv_group("c1", x, C, 8, rng, inits, nodes, k=1, y_zp=zp(100))
        f1 = _dq(y1, "c1_f", nodes)
        _dq(y1, "c1_f2", nodes)  # a second DQ of the same Q: onnxruntime keeps the int8 pair, c2 stays float
        y = _conv_group("c2", f1, 8, 8, rng, inits, nodes, y_zp=zp(120))
        nodes.append(helper.make_node("Identity", ["c1_f2"], ["side"]))
    else:
        raise ValueError(kind)
    nodes.append(helper.make_node("DequantizeLinear", [y["q"], y["scale"], y["zp"]], ["out"]))
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)]
    if kind == "shared_input_stays_float_s8":
        outputs.append(helper.make_tensor_value_info("side", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, kind, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", C, H, W])],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model


KINDS = ["conv_u8_per_channel", "conv_s8_per_channel", "conv_u8_per_tensor_u8_weights", "conv_relu_clip_s8",
         "depthwise_stride2_s8", "add_s8", "shared_input_stays_float_s8"]
EXPECT = {"add_s8": "QLinearAdd"}


def _ort(path, x, opt_path):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.optimized_model_filepath = str(opt_path)
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})


def _ri(cli, path, x, tmp):
    env = dict(os.environ)
    rie = tmp / "m.rie"
    for cmd in ([cli, "build", "--onnx", str(path), "--save", str(rie), "--max-batch", str(N)],
                [cli, "infer", "--engine", str(rie), "--in", f"x={tmp / 'x.npy'}", "--out", str(tmp / "out")]):
        if cmd[1] == "infer":
            np.save(tmp / "x.npy", x)
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 0, f"{' '.join(cmd)}: {p.stderr}"
    return np.load(tmp / "out" / "out.npy")


@pytest.mark.parametrize("kind", KINDS)
def test_qdq_model_equals_ort_default(ri_cli, tmp_path, kind):
    model = _model(kind)
    path = tmp_path / f"{kind}.onnx"
    onnx.save(model, str(path))
    # wide inputs so that the quantised activations cover the whole range (saturation included)
    x = np.random.default_rng(5).uniform(-6, 6, (N, C, H, W)).astype(np.float32)
    want = _ort(path, x, tmp_path / "opt.onnx")[0]
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    if kind == "shared_input_stays_float_s8":
        assert "QLinearConv" not in ops, ops  # c1's output pair is shared, so c1 and c2 stay float
    else:
        assert EXPECT.get(kind, "QLinearConv") in ops, ops
    got = _ri(ri_cli, path, x, tmp_path)
    assert got.shape == want.shape
    d = np.abs(got.astype(np.float64) - want)
    print(f"\n{kind}: {int((d > 0).sum())} of {d.size} elements differ from onnxruntime, max {d.max():g}")
    if not (d == 0).all():
        skip_unless_ort_int8_exact()
    assert (d == 0).all(), f"{kind}: {int((d > 0).sum())} of {d.size} elements differ (max {d.max():g})"


def _direct_model(w_scale_len=16, x_type=TensorProto.UINT8):
    """An ONNX QLinearConv node as written by a user (no Q/DQ), per-channel int8 weights and an int32 bias."""
    rng = np.random.default_rng(11)
    inits = [_init("xs", np.float32(0.05)), _init("xz", np.uint8(17)), _init("ys", np.float32(0.3)),
             _init("yz", np.uint8(101)), _init("w", rng.integers(-127, 128, (16, C, 3, 3)).astype(np.int8)),
             _init("ws", rng.uniform(0.002, 0.02, w_scale_len).astype(np.float32)),
             _init("wz", np.zeros(w_scale_len, np.int8)), _init("b", rng.integers(-900, 900, 16).astype(np.int32))]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                            pads=[1, 1, 1, 1], strides=[2, 2])
    graph = helper.make_graph([node], "direct", [helper.make_tensor_value_info("x", x_type, ["N", C, H, W])],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model


def test_onnx_qlinearconv_node_equals_ort(ri_cli, tmp_path):
    path = tmp_path / "direct.onnx"
    onnx.save(_direct_model(), str(path))
    x = np.random.default_rng(2).integers(0, 256, (N, C, H, W)).astype(np.uint8)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    want = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    rie = tmp_path / "direct.rie"
    np.save(tmp_path / "x.npy", x)
    for cmd in ([ri_cli, "build", "--onnx", str(path), "--save", str(rie), "--max-batch", str(N)],
                [ri_cli, "infer", "--engine", str(rie), "--in", f"x={tmp_path / 'x.npy'}", "--out", str(tmp_path / "o")]):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
    got = np.load(tmp_path / "o" / "y.npy")
    assert got.dtype == np.uint8 and got.shape == want.shape
    if not np.array_equal(got, want):
        skip_unless_ort_int8_exact()
    assert np.array_equal(got, want), f"{int((got != want).sum())} of {got.size} elements differ"


@pytest.mark.parametrize("bad,message", [({"w_scale_len": 5}, "w_scale must be float32 with 1 or 16 elements"),
                                         ({"x_type": TensorProto.INT16}, "x dtype int16 is not supported")])
def test_malformed_qlinearconv_refused(ri_cli, tmp_path, bad, message):
    path = tmp_path / "bad.onnx"
    onnx.save(_direct_model(**bad), str(path))
    p = subprocess.run([ri_cli, "build", "--onnx", str(path), "--save", str(tmp_path / "bad.rie")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode != 0
    assert message in p.stderr and "QLinearConv_0" in p.stderr, p.stderr
