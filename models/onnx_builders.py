"""Small helpers for writing ONNX graphs by hand with onnx.helper.

GraphBuilder keeps the node list, the initializers and a seeded numpy
generator, and offers shorthands for the layers the reference models use
(Conv, BatchNormalization, ReLU6 as Clip, Gemm, ...).  Weight scales follow He
initialisation so that signals keep roughly unit variance through deep stacks.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MIN_OPSET = 13
INT64_MAX = np.iinfo(np.int64).max


def tf_same_pads(size: int, k: int, s: int, dilation: int = 1) -> tuple[int, int]:
    """Begin/end padding TensorFlow's SAME mode uses (extra pixel at the end)."""
    eff_k = (k - 1) * dilation + 1
    out = -(-size // s)
    total = max((out - 1) * s + eff_k - size, 0)
    return total // 2, total - total // 2


def conv_out(size: int, k: int, s: int, pb: int, pe: int, dilation: int = 1) -> int:
    eff_k = (k - 1) * dilation + 1
    return (size + pb + pe - eff_k) // s + 1


class GraphBuilder:
    """Accumulates one ONNX graph; call finish() to get the ModelProto."""

    def __init__(self, name: str, seed: int, opset: int = MIN_OPSET):
        if opset < MIN_OPSET:
            raise ValueError(f"opset {opset} not supported (need >= {MIN_OPSET})")
        self.name = name
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.n_params = 0  # elements of learned float tensors (weights, biases, BN stats)
        self._used: set[str] = set()
        self._consts: dict[tuple, str] = {}
        self._counter: dict[str, int] = {}

    # ---- naming --------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        if hint not in self._used:
            self._used.add(hint)
            return hint
        n = self._counter.get(hint, 1)
        while f"{hint}_{n}" in self._used:
            n += 1
        self._counter[hint] = n + 1
        name = f"{hint}_{n}"
        self._used.add(name)
        return name

    # ---- graph I/O -----------------------------------------------------------------
    def add_input(self, name: str, elem_type: int, shape: Sequence) -> str:
        self._used.add(name)
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    def add_output(self, name: str, elem_type: int, shape: Sequence) -> str:
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    # ---- tensors -------------------------------------------------------------------
    def initializer(self, hint: str, array: np.ndarray, learned: bool = False) -> str:
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C", copy=True), name))
        if learned:
            self.n_params += int(array.size)
        return name

    def const(self, value, dtype=np.float32, hint: str | None = None) -> str:
        """Shared constant initializer (deduplicated by value, dtype and shape)."""
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            if hint is None:
                flat = arr.reshape(-1)
                if arr.size <= 4:
                    txt = "_".join(str(v).replace("-", "m").replace(".", "p") for v in flat.tolist())
                else:
                    txt = f"{arr.size}el"
                hint = f"const_{arr.dtype.name}_{txt}"
            self._consts[key] = self.initializer(hint, arr)
        return self._consts[key]

    def he_weight(self, shape: Sequence[int], fan_in: int, gain: float = 2.0) -> np.ndarray:
        std = math.sqrt(gain / fan_in)
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    # ---- nodes ---------------------------------------------------------------------
    def op(self, op_type: str, inputs: Iterable[str], n_out: int = 1, name: str | None = None,
           outputs: Sequence[str] | None = None, **attrs):
        node_name = self.fresh(name or op_type)
        if outputs is None:
            outputs = [node_name if n_out == 1 else f"{node_name}:{i}" for i in range(n_out)]
            for o in outputs:
                self._used.add(o)
        else:
            outputs = list(outputs)
            for o in outputs:
                self._used.add(o)
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=node_name, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1,
             pads: Sequence[int] | None = None, group: int = 1, bias: bool = False,
             name: str = "Conv", gain: float = 2.0, bias_std: float = 0.0) -> str:
        """Conv with He-scaled weights; pads in ONNX order [top, left, bottom, right]."""
        if pads is None:
            pads = [k // 2] * 4
        fan_in = (cin // group) * k * k
        w = self.initializer(f"{name}/weights", self.he_weight([cout, cin // group, k, k], fan_in, gain),
                             learned=True)
        ins = [x, w]
        if bias:
            b = (self.rng.standard_normal(cout) * bias_std).astype(np.float32)
            ins.append(self.initializer(f"{name}/bias", b, learned=True))
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=list(pads),
                     dilations=[1, 1])
        if group != 1:
            attrs["group"] = group
        return self.op("Conv", ins, name=name, **attrs)

    def batchnorm(self, x: str, c: int, name: str = "BatchNorm", eps: float = 1e-3) -> str:
        r = self.rng
        gamma = r.uniform(0.5, 1.5, c).astype(np.float32)
        beta = (r.standard_normal(c) * 0.1).astype(np.float32)
        mean = (r.standard_normal(c) * 0.1).astype(np.float32)
        var = r.uniform(0.5, 1.5, c).astype(np.float32)
        ins = [x] + [self.initializer(f"{name}/{n}", a, learned=True)
                     for n, a in (("gamma", gamma), ("beta", beta), ("moving_mean", mean),
                                  ("moving_variance", var))]
        return self.op("BatchNormalization", ins, name=name, epsilon=eps)

    def relu6(self, x: str, name: str = "Relu6") -> str:
        return self.op("Clip", [x, self.const(0.0, hint="relu6_min"), self.const(6.0, hint="relu6_max")],
                       name=name)

    def relu(self, x: str, name: str = "Relu") -> str:
        return self.op("Relu", [x], name=name)

    def gemm(self, x: str, cin: int, cout: int, name: str = "Gemm", gain: float = 1.0,
             output: str | None = None) -> str:
        w = self.initializer(f"{name}/weights", self.he_weight([cout, cin], cin, gain), learned=True)
        b = self.initializer(f"{name}/bias", (self.rng.standard_normal(cout) * 0.01).astype(np.float32),
                             learned=True)
        return self.op("Gemm", [x, w, b], name=name, outputs=[output] if output else None,
                       alpha=1.0, beta=1.0, transB=1)

    def unsqueeze(self, x: str, axes: Sequence[int], name: str = "Unsqueeze") -> str:
        return self.op("Unsqueeze", [x, self.const(list(axes), np.int64)], name=name)

    def squeeze(self, x: str, axes: Sequence[int], name: str = "Squeeze") -> str:
        return self.op("Squeeze", [x, self.const(list(axes), np.int64)], name=name)

    def reshape(self, x: str, shape: Sequence[int], name: str = "Reshape") -> str:
        return self.op("Reshape", [x, self.const(list(shape), np.int64)], name=name)

    # ---- finish --------------------------------------------------------------------
    def finish(self, doc: str = "", ir_version: int = 8) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs,
                                  initializer=self.initializers)
        opsets = [helper.make_opsetid("", self.opset)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="runinfer.make_models",
                                  producer_version="1", doc_string=doc)
        model.ir_version = max(ir_version, helper.find_min_ir_version_for(opsets))
        return model
