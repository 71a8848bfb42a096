"""Elementwise, data-movement, shape and Q/DQ operators: the runinfer CLI agrees with onnxruntime.

Each case is a one- or two-node ONNX model written here with onnx.helper; it is built into an engine
(`runinfer build --onnx M.onnx --save M.rie`), run (`runinfer infer --engine M.rie --in NAME=x.npy ...
--out DIR`, which writes DIR/<output>.npy) and compared with onnxruntime on the same inputs (graph
optimisations off, so the reference is op by op). Floats must agree to a relative 1e-5; integers,
booleans and quantized values exactly. Skipped when the CLI has not been built ($RI_CLI, else
build/runinfer).
"""

from __future__ import annotations

import subprocess
import zlib
from dataclasses import dataclass, field

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import ort_run

CLI_TIMEOUT_S = 120
RTOL = 1e-5
ATOL = 1e-6

NP_TO_ONNX = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float16): TensorProto.FLOAT16,
    np.dtype(np.float64): TensorProto.DOUBLE,
    np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.int16): TensorProto.INT16,
    np.dtype(np.uint16): TensorProto.UINT16,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.bool_): TensorProto.BOOL,
}


@dataclass
class Case:
    """One model: nodes over named graph inputs (fed with `feeds`) and initializers."""

    name: str
    nodes: list
    feeds: dict
    outputs: list  # (name, onnx elem type[, shape]); shapes left out are filled by onnx's shape inference
    inits: dict = field(default_factory=dict)
    opset: int = 13

    def model(self):
        inputs = [helper.make_tensor_value_info(k, NP_TO_ONNX[v.dtype], list(v.shape)) for k, v in self.feeds.items()]
        outputs = [helper.make_tensor_value_info(o[0], o[1], o[2] if len(o) > 2 else None) for o in self.outputs]
        inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in self.inits.items()]
        graph = helper.make_graph(self.nodes, self.name, inputs, outputs, inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        m.ir_version = 8 if self.opset <= 18 else 10
        return onnx.shape_inference.infer_shapes(m, strict_mode=True)  # fills the outputs' shapes


def rng_for(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def f32(rng, *shape, lo=-3.0, hi=3.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def node(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, **attrs)


F = TensorProto.FLOAT


def unary_cases():
    r = rng_for("unary")
    x = f32(r, 2, 3, 8, 8, lo=-6, hi=6)
    out = []
    for op, attrs, opset in [("Relu", {}, 13), ("LeakyRelu", {"alpha": 0.2}, 13),
                             ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, 13), ("HardSwish", {}, 14),
                             ("Sigmoid", {}, 13), ("Exp", {}, 13)]:
        out.append(Case(f"unary_{op}", [node(op, ["x"], ["y"], **attrs)], {"x": x}, [("y", F)], opset=opset))
    out.append(Case("clip_both", [node("Clip", ["x", "lo", "hi"], ["y"])], {"x": x}, [("y", F)],
                    inits={"lo": np.float32(-1.5), "hi": np.float32(2.0)}))
    out.append(Case("clip_max_only", [node("Clip", ["x", "", "hi"], ["y"])], {"x": x}, [("y", F)],
                    inits={"hi": np.float32(0.5)}))
    out.append(Case("clip_none", [node("Clip", ["x"], ["y"])], {"x": x}, [("y", F)]))
    out.append(Case("clip_int32", [node("Clip", ["x", "lo", "hi"], ["y"])],
                    {"x": r.integers(-100, 100, size=(4, 5)).astype(np.int32)}, [("y", TensorProto.INT32)],
                    inits={"lo": np.int32(-7), "hi": np.int32(30)}))
    return out


def binary_cases():
    r = rng_for("binary")
    out = []
    pairs = [((2, 3, 4, 5), (2, 3, 4, 5)), ((2, 3, 4, 5), (3, 1, 1)), ((2, 1, 4, 1), (1, 3, 1, 5)),
             ((2, 3, 4, 5), (5,)), ((3, 1), (1, 4)), ((1,), (2, 3))]
    for op in ["Add", "Sub", "Mul", "Div"]:
        for i, (sa, sb) in enumerate(pairs):
            a, b = f32(r, *sa), f32(r, *sb, lo=0.5, hi=2.0)
            out.append(Case(f"{op}_{i}", [node(op, ["a", "b"], ["y"])], {"a": a, "b": b}, [("y", F)]))
        # constant operand (per-channel), then an activation the optimizer may fuse
        a = f32(r, 1, 4, 6, 6)
        out.append(Case(f"{op}_const_relu", [node(op, ["a", "c"], ["t"]), node("Relu", ["t"], ["y"])], {"a": a},
                        [("y", F)], inits={"c": f32(r, 4, 1, 1, lo=0.5, hi=2.0)}))
    for dt, t in [(np.int32, TensorProto.INT32), (np.int64, TensorProto.INT64)]:
        a = r.integers(-1000, 1000, size=(3, 7)).astype(dt)
        b = r.integers(1, 30, size=(7,)).astype(dt) * np.where(r.random(7) < 0.5, -1, 1).astype(dt)
        for op in ["Add", "Sub", "Mul", "Div"]:
            out.append(Case(f"{op}_{np.dtype(dt).name}", [node(op, ["a", "b"], ["y"])], {"a": a, "b": b}, [("y", t)]))
    return out


def qdq_cases():
    r = rng_for("qdq")
    ties = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 126.5, 127.5, -128.5, 300.0, -300.0, 1e6, -1e6],
                    dtype=np.float32)
    out = [
        Case("q_u8_ties", [node("QuantizeLinear", ["x", "s", "z"], ["y"])], {"x": ties}, [("y", TensorProto.UINT8)],
             inits={"s": np.float32(1.0), "z": np.uint8(0)}),
        Case("q_u8_zp_ties", [node("QuantizeLinear", ["x", "s", "z"], ["y"])], {"x": ties},
             [("y", TensorProto.UINT8)], inits={"s": np.float32(1.0), "z": np.uint8(128)}),
        Case("q_i8_ties", [node("QuantizeLinear", ["x", "s", "z"], ["y"])], {"x": ties}, [("y", TensorProto.INT8)],
             inits={"s": np.float32(1.0), "z": np.int8(0)}),
        Case("q_default_u8", [node("QuantizeLinear", ["x", "s"], ["y"])], {"x": f32(r, 2, 8, lo=-1, hi=60)},
             [("y", TensorProto.UINT8)], inits={"s": np.float32(0.25)}),
        Case("q_i8_per_axis", [node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1)],
             {"x": f32(r, 2, 3, 4, 4, lo=-100, hi=100)}, [("y", TensorProto.INT8)],
             inits={"s": np.array([0.5, 1.0, 0.75], np.float32), "z": np.array([-2, 0, 3], np.int8)}),
        Case("q_i8_output_dtype", [node("QuantizeLinear", ["x", "s"], ["y"], output_dtype=TensorProto.INT8)],
             {"x": ties}, [("y", TensorProto.INT8)], inits={"s": np.float32(1.0)}, opset=21),
        Case("dq_u8", [node("DequantizeLinear", ["x", "s", "z"], ["y"])],
             {"x": r.integers(0, 256, size=(3, 5)).astype(np.uint8)}, [("y", F)],
             inits={"s": np.float32(0.1), "z": np.uint8(120)}),
        Case("dq_i8_per_axis_neg", [node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=-1)],
             {"x": r.integers(-128, 128, size=(3, 4)).astype(np.int8)}, [("y", F)],
             inits={"s": np.array([0.1, 2.0, 0.5, 8.0], np.float32), "z": np.array([-3, 0, 100, -128], np.int8)}),
        Case("qdq_chain", [node("QuantizeLinear", ["x", "s", "z"], ["q"]),
                           node("DequantizeLinear", ["q", "s", "z"], ["y"])],
             {"x": f32(r, 1, 8, 5, 5)}, [("y", F)], inits={"s": np.float32(0.02), "z": np.uint8(128)}),
    ]
    return out


def cast_cases():
    r = rng_for("cast")
    x = np.concatenate([f32(r, 20, lo=-100, hi=100), np.array([2.7, -2.7, 0.0, -0.0, 0.5], np.float32)])
    xu = np.concatenate([f32(r, 20, lo=0, hi=255), np.array([0.99, 254.9], np.float32)])
    out = []
    for to in [TensorProto.INT32, TensorProto.INT64, TensorProto.INT8, TensorProto.FLOAT16, TensorProto.DOUBLE,
               TensorProto.BOOL, TensorProto.INT16]:
        src = x if to != TensorProto.INT8 else np.clip(x, -128, 127)
        out.append(Case(f"cast_f32_to_{TensorProto.DataType.Name(to).lower()}", [node("Cast", ["x"], ["y"], to=to)], {"x": src}, [("y", to)]))
    out.append(Case("cast_f32_to_u8", [node("Cast", ["x"], ["y"], to=TensorProto.UINT8)], {"x": xu},
                    [("y", TensorProto.UINT8)]))
    out.append(Case("cast_i64_to_f32", [node("Cast", ["x"], ["y"], to=F)],
                    {"x": np.array([0, -5, 1 << 40, (1 << 53) + 1, -(1 << 62)], np.int64)}, [("y", F)]))
    out.append(Case("cast_u8_to_f32", [node("Cast", ["x"], ["y"], to=F)],
                    {"x": r.integers(0, 256, size=(2, 9)).astype(np.uint8)}, [("y", F)]))
    out.append(Case("cast_i32_to_i8_wrap", [node("Cast", ["x"], ["y"], to=TensorProto.INT8)],
                    {"x": np.array([300, -300, 127, -128, 5], np.int32)}, [("y", TensorProto.INT8)]))
    return out


def movement_cases():
    r = rng_for("movement")
    x = f32(r, 2, 3, 4, 5)
    I64 = TensorProto.INT64
    out = [
        Case("concat_neg_axis", [node("Concat", ["a", "b", "c"], ["y"], axis=-1)],
             {"a": f32(r, 2, 3, 1), "b": f32(r, 2, 3, 4), "c": f32(r, 2, 3, 2)}, [("y", F)]),
        Case("concat_int64_axis0", [node("Concat", ["a", "b"], ["y"], axis=0)],
             {"a": np.arange(6, dtype=np.int64).reshape(2, 3), "b": np.arange(3, dtype=np.int64).reshape(1, 3)},
             [("y", I64)]),
        Case("reshape_zero_minus1", [node("Reshape", ["x", "s"], ["y"])], {"x": x}, [("y", F)],
             inits={"s": np.array([0, -1, 5], np.int64)}),
        Case("flatten_2", [node("Flatten", ["x"], ["y"], axis=2)], {"x": x}, [("y", F)]),
        Case("flatten_neg", [node("Flatten", ["x"], ["y"], axis=-1)], {"x": x}, [("y", F)]),
        Case("squeeze_attr_opset11", [node("Squeeze", ["x"], ["y"], axes=[0, -2])], {"x": f32(r, 1, 3, 1, 4)},
             [("y", F)], opset=11),
        Case("squeeze_input", [node("Squeeze", ["x", "ax"], ["y"])], {"x": f32(r, 1, 3, 1, 4)}, [("y", F)],
             inits={"ax": np.array([2], np.int64)}),
        Case("squeeze_all", [node("Squeeze", ["x"], ["y"])], {"x": f32(r, 1, 3, 1, 4)}, [("y", F)]),
        Case("unsqueeze_input", [node("Unsqueeze", ["x", "ax"], ["y"])], {"x": f32(r, 3, 4)}, [("y", F)],
             inits={"ax": np.array([0, -1], np.int64)}),
        Case("unsqueeze_attr_opset11", [node("Unsqueeze", ["x"], ["y"], axes=[1])], {"x": f32(r, 3, 4)}, [("y", F)],
             opset=11),
        Case("transpose_nhwc", [node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], {"x": x}, [("y", F)]),
        Case("transpose_default", [node("Transpose", ["x"], ["y"])], {"x": x}, [("y", F)]),
        Case("transpose_u8", [node("Transpose", ["x"], ["y"], perm=[1, 0, 2])],
             {"x": r.integers(0, 256, size=(3, 4, 2)).astype(np.uint8)}, [("y", TensorProto.UINT8)]),
        Case("slice_neg_steps", [node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])], {"x": x}, [("y", F)],
             inits={"st": np.array([-1, 100], np.int64), "en": np.array([-100, 0], np.int64),
                    "ax": np.array([3, 1], np.int64), "sp": np.array([-2, -1], np.int64)}),
        Case("slice_clamp", [node("Slice", ["x", "st", "en"], ["y"])], {"x": x}, [("y", F)],
             inits={"st": np.array([-100, 1], np.int64), "en": np.array([100, -1], np.int64)}),
        Case("slice_int_max", [node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])], {"x": x}, [("y", F)],
             inits={"st": np.array([np.iinfo(np.int64).max], np.int64),
                    "en": np.array([np.iinfo(np.int64).min], np.int64), "ax": np.array([2], np.int64),
                    "sp": np.array([-1], np.int64)}),
        Case("gather_axis1", [node("Gather", ["x", "i"], ["y"], axis=1)], {"x": x}, [("y", F)],
             inits={"i": np.array([[0, -1], [2, 1]], np.int64)}),
        Case("gather_axis_neg_int32", [node("Gather", ["x", "i"], ["y"], axis=-1)], {"x": x}, [("y", F)],
             inits={"i": np.array([4, 0, -2], np.int32)}),
        Case("gather_runtime_indices", [node("Gather", ["x", "i"], ["y"], axis=0)],
             {"x": f32(r, 5, 3), "i": np.array([4, -5, 2, 2], np.int64)}, [("y", F)]),
        Case("gather_scalar", [node("Gather", ["x", "i"], ["y"], axis=2)], {"x": x}, [("y", F)],
             inits={"i": np.array(-1, np.int64)}),
        Case("shape_start_end", [node("Shape", ["x"], ["y"], start=1, end=-1)], {"x": x}, [("y", I64)], opset=15),
        Case("shape_reshape", [node("Shape", ["x"], ["s"]), node("Reshape", ["x", "s"], ["y"])], {"x": x},
             [("y", F, [2, 3, 4, 5])]),
        Case("identity", [node("Identity", ["x"], ["y"])], {"x": x}, [("y", F)]),
        Case("tile", [node("Tile", ["x", "rp"], ["y"])], {"x": f32(r, 2, 3)}, [("y", F)],
             inits={"rp": np.array([2, 3], np.int64)}),
        Case("constant_add", [helper.make_node("Constant", [], ["c"],
                                               value=numpy_helper.from_array(f32(r, 3, 1), "cv")),
                              node("Add", ["x", "c"], ["y"])], {"x": f32(r, 2, 3, 4)}, [("y", F)]),
    ]
    return out


CASES = unary_cases() + binary_cases() + qdq_cases() + cast_cases() + movement_cases()


def _run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    if p.returncode != 0:
        pytest.fail(f"command failed (rc {p.returncode}): {' '.join(cmd)}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_op_matches_ort(case, ri_cli, tmp_path):
    m = case.model()
    path = tmp_path / f"{case.name}.onnx"
    path.write_bytes(m.SerializeToString())
    want, _ = ort_run(path, case.feeds)
    rie = tmp_path / f"{case.name}.rie"
    _run([ri_cli, "build", "--onnx", str(path), "--save", str(rie)])
    args = [ri_cli, "infer", "--engine", str(rie), "--out", str(tmp_path / "out")]
    for k, v in case.feeds.items():
        f = tmp_path / f"in_{k}.npy"
        np.save(f, v)
        args += ["--in", f"{k}={f}"]
    _run(args)
    for name, *_ in case.outputs:
        got = np.load(tmp_path / "out" / f"{name}.npy")
        ref = want[name]
        assert got.dtype == ref.dtype, f"{name}: dtype {got.dtype}, onnxruntime {ref.dtype}"
        assert got.shape == ref.shape, f"{name}: shape {got.shape}, onnxruntime {ref.shape}"
        if np.issubdtype(ref.dtype, np.floating):
            np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), rtol=RTOL, atol=ATOL,
                                       err_msg=f"{case.name}: output {name}")
        else:
            np.testing.assert_array_equal(got, ref, err_msg=f"{case.name}: output {name}")


def test_models_are_valid(tmp_path):
    """The hand-written models pass onnx's checker and run in onnxruntime (independent of the CLI)."""
    for c in CASES:
        m = c.model()
        onnx.checker.check_model(m)
        path = tmp_path / f"{c.name}.onnx"
        path.write_bytes(m.SerializeToString())
        outs, _ = ort_run(path, c.feeds)
        assert set(outs) == {o[0] for o in c.outputs}
