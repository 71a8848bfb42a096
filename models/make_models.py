#!/usr/bin/env python3
"""Generate runinfer's reference ONNX models (seeded weights, nothing downloaded).

    python models/make_models.py                      # all models into models/generated/
    python models/make_models.py --only tiny_conv,tiny_ssd --out /tmp/m
    python models/make_models.py --list

Every model has a symbolic batch axis "N" on its first input and only
batch-agnostic Reshape targets (0 / -1), so one file serves any batch size.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
import zlib
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_builders import INT64_MAX, GraphBuilder, conv_out, tf_same_pads  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "generated")
FLOAT = TensorProto.FLOAT

# MobileNetV2 inverted residual settings: expansion t, channels c, repeats n, first stride s.
MBV2_CFG = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
SSD_NUM_CLASSES = 91          # 90 COCO classes + background, as the TF OD API counts them
SSD_EXTRA_DEPTHS = [512, 256, 256, 128]
SSD_ANCHORS = [3, 6, 6, 6, 6, 6]
SSD_NUM_ANCHORS = 1917


# ---------------------------------------------------------------------------------------
# shared network pieces
# ---------------------------------------------------------------------------------------
class _Padder:
    """Produces conv pads for the current feature size: TF 'SAME' or symmetric k//2."""

    def __init__(self, mode: str):
        assert mode in ("same", "symmetric")
        self.mode = mode

    def __call__(self, size: int, k: int, s: int) -> list[int]:
        if self.mode == "same":
            b, e = tf_same_pads(size, k, s)
            return [b, b, e, e]
        return [k // 2] * 4


def conv_bn_act(g: GraphBuilder, x: str, size: int, cin: int, cout: int, k: int, s: int,
                padder: _Padder, name: str, act: str | None = "relu6", group: int = 1,
                gain: float = 2.0, eps: float = 1e-3) -> tuple[str, int]:
    pads = padder(size, k, s)
    y = g.conv(x, cin, cout, k, s, pads, group=group, name=f"{name}/Conv2D", gain=gain)
    y = g.batchnorm(y, cout, name=f"{name}/BatchNorm", eps=eps)
    if act == "relu6":
        y = g.relu6(y, name=f"{name}/Relu6")
    elif act == "relu":
        y = g.relu(y, name=f"{name}/Relu")
    return y, conv_out(size, k, s, pads[0], pads[2])


def mobilenet_v2_backbone(g: GraphBuilder, x: str, size: int, padder: _Padder,
                          eps: float = 1e-3, scope: str = "MobilenetV2"):
    """MobileNetV2 (depth multiplier 1.0). Returns (final 1280-ch tensor, size, block13_expand, size)."""
    y, size = conv_bn_act(g, x, size, 3, 32, 3, 2, padder, f"{scope}/Conv", eps=eps)
    cin = 32
    block = 0
    feat13 = None
    for t, c, n, s in MBV2_CFG:
        for i in range(n):
            stride = s if i == 0 else 1
            pfx = f"{scope}/expanded_conv" + (f"_{block}" if block else "")
            hidden = cin * t
            h = y
            if t != 1:
                h, _ = conv_bn_act(g, h, size, cin, hidden, 1, 1, padder, f"{pfx}/expand", eps=eps)
                if block == 13:
                    feat13 = (h, size)
            h, nsize = conv_bn_act(g, h, size, hidden, hidden, 3, stride, padder, f"{pfx}/depthwise",
                                   group=hidden, eps=eps)
            # Linear bottleneck: gain 1 keeps the residual sum's variance from doubling per block.
            h, _ = conv_bn_act(g, h, nsize, hidden, c, 1, 1, padder, f"{pfx}/project", act=None,
                               gain=1.0, eps=eps)
            if stride == 1 and cin == c:
                h = g.op("Add", [y, h], name=f"{pfx}/add")
            y, size, cin = h, nsize, c
            block += 1
    y, size = conv_bn_act(g, y, size, cin, 1280, 1, 1, padder, f"{scope}/Conv_1", eps=eps)
    assert feat13 is not None
    return y, size, feat13[0], feat13[1]


def ssd_mobilenet_v2_body(g: GraphBuilder, x: str) -> None:
    """SSD MobileNetV2 (TF Object Detection API layout, 300x300) on an NCHW tensor x."""
    padder = _Padder("same")
    final, fsize, f13, f13size = mobilenet_v2_backbone(g, x, 300, padder,
                                                       scope="FeatureExtractor/MobilenetV2")
    feats = [(f13, 576, f13size), (final, 1280, fsize)]
    y, c, size = final, 1280, fsize
    for i, d in enumerate(SSD_EXTRA_DEPTHS):
        li = i + 2
        y, size = conv_bn_act(g, y, size, c, d // 2, 1, 1, padder,
                              f"FeatureExtractor/MobilenetV2/layer_19_1_Conv2d_{li}_1x1_{d // 2}")
        y, size = conv_bn_act(g, y, size, d // 2, d, 3, 2, padder,
                              f"FeatureExtractor/MobilenetV2/layer_19_2_Conv2d_{li}_3x3_s2_{d}")
        c = d
        feats.append((y, c, size))
    sizes = [f[2] for f in feats]
    assert sizes == [19, 10, 5, 3, 2, 1], sizes
    assert sum(s * s * a for s, a in zip(sizes, SSD_ANCHORS)) == SSD_NUM_ANCHORS

    boxes, scores = [], []
    for i, ((t, c, size), a) in enumerate(zip(feats, SSD_ANCHORS)):
        p = f"BoxPredictor_{i}"
        b = g.conv(t, c, a * 4, 1, 1, [0, 0, 0, 0], bias=True, bias_std=0.1,
                   name=f"{p}/BoxEncodingPredictor/Conv2D")
        b = g.op("Transpose", [b], name=f"{p}/BoxEncodingPredictor/transpose", perm=[0, 2, 3, 1])
        boxes.append(g.reshape(b, [0, -1, 4], name=f"{p}/BoxEncodingPredictor/Reshape"))
        s = g.conv(t, c, a * SSD_NUM_CLASSES, 1, 1, [0, 0, 0, 0], bias=True, bias_std=0.1,
                   name=f"{p}/ClassPredictor/Conv2D")
        s = g.op("Transpose", [s], name=f"{p}/ClassPredictor/transpose", perm=[0, 2, 3, 1])
        scores.append(g.reshape(s, [0, -1, SSD_NUM_CLASSES], name=f"{p}/ClassPredictor/Reshape"))
    g.op("Concat", boxes, name="concat_box_encodings", outputs=["raw_boxes"], axis=1)
    g.op("Concat", scores, name="concat_class_predictions", outputs=["raw_scores"], axis=1)
    g.add_output("raw_boxes", FLOAT, ["N", SSD_NUM_ANCHORS, 4])
    g.add_output("raw_scores", FLOAT, ["N", SSD_NUM_ANCHORS, SSD_NUM_CLASSES])


# ---------------------------------------------------------------------------------------
# model builders: each takes (seed, opset) and returns a ModelProto plus its param count
# ---------------------------------------------------------------------------------------
def build_ssd_mobilenet_v2(seed: int, opset: int):
    g = GraphBuilder("ssd_mobilenet_v2", seed, opset)
    x = g.add_input("image", FLOAT, ["N", 3, 300, 300])
    ssd_mobilenet_v2_body(g, x)
    return g.finish("SSD MobileNetV2 300x300, NCHW input, raw box encodings and class logits"), g.n_params


def build_ssd_mobilenet_v2_nhwc(seed: int, opset: int):
    g = GraphBuilder("ssd_mobilenet_v2_nhwc", seed, opset)
    x = g.add_input("image", FLOAT, ["N", 300, 300, 3])
    y = g.op("Transpose", [x], name="Preprocessor/transpose", perm=[0, 3, 1, 2])
    y = g.op("Sub", [y, g.const(127.5, hint="Preprocessor/mean")], name="Preprocessor/sub")
    y = g.op("Mul", [y, g.const(1.0 / 127.5, hint="Preprocessor/scale")], name="Preprocessor/mul")
    ssd_mobilenet_v2_body(g, y)
    return g.finish("SSD MobileNetV2 300x300, NHWC 0..255 input normalised in-graph"), g.n_params


def build_mobilenet_v2(seed: int, opset: int):
    g = GraphBuilder("mobilenet_v2", seed, opset)
    x = g.add_input("input", FLOAT, ["N", 3, 224, 224])
    y, size, _, _ = mobilenet_v2_backbone(g, x, 224, _Padder("symmetric"), eps=1e-5)
    assert size == 7
    y = g.op("GlobalAveragePool", [y], name="GlobalAveragePool")
    y = g.op("Flatten", [y], name="Flatten", axis=1)
    g.gemm(y, 1280, 1000, name="classifier", output="logits")
    g.add_output("logits", FLOAT, ["N", 1000])
    return g.finish("MobileNetV2 1.0 classifier, 224x224 NCHW, 1000 classes"), g.n_params


def build_resnet50(seed: int, opset: int):
    g = GraphBuilder("resnet50", seed, opset)
    x = g.add_input("input", FLOAT, ["N", 3, 224, 224])
    sym = _Padder("symmetric")
    y, size = conv_bn_act(g, x, 224, 3, 64, 7, 2, sym, "conv1", act="relu", eps=1e-5)
    y = g.op("MaxPool", [y], name="maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    size = conv_out(size, 3, 2, 1, 1)
    cin = 64
    for li, (width, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]):
        for bi in range(blocks):
            s = stride if bi == 0 else 1
            p = f"layer{li + 1}.{bi}"
            cout = width * 4
            h, _ = conv_bn_act(g, y, size, cin, width, 1, 1, sym, f"{p}.conv1", act="relu", eps=1e-5)
            h, nsize = conv_bn_act(g, h, size, width, width, 3, s, sym, f"{p}.conv2", act="relu",
                                   eps=1e-5)  # v1.5: stride on the 3x3
            # A small gain on the branch's last conv keeps the post-Add ReLU from compounding
            # growth over 16 blocks (rms stays within a few units end to end).
            h, _ = conv_bn_act(g, h, nsize, width, cout, 1, 1, sym, f"{p}.conv3", act=None,
                               gain=0.25, eps=1e-5)
            sc = y
            if s != 1 or cin != cout:
                sc, _ = conv_bn_act(g, y, size, cin, cout, 1, s, sym, f"{p}.downsample", act=None,
                                    gain=1.0, eps=1e-5)
            y = g.relu(g.op("Add", [h, sc], name=f"{p}.add"), name=f"{p}.relu")
            cin, size = cout, nsize
    assert size == 7
    y = g.op("GlobalAveragePool", [y], name="avgpool")
    y = g.op("Flatten", [y], name="flatten", axis=1)
    g.gemm(y, 2048, 1000, name="fc", output="logits")
    g.add_output("logits", FLOAT, ["N", 1000])
    return g.finish("ResNet-50 v1.5 classifier, 224x224 NCHW, 1000 classes"), g.n_params


def build_tiny_conv(seed: int, opset: int):
    g = GraphBuilder("tiny_conv", seed, opset)
    x = g.add_input("input", FLOAT, ["N", 3, 16, 16])
    a = g.conv(x, 3, 8, 3, 1, [1, 1, 1, 1], name="conv1")
    a = g.batchnorm(a, 8, name="bn1", eps=1e-5)
    a = g.relu(a, name="relu1")
    b = g.conv(a, 8, 8, 3, 1, [1, 1, 1, 1], group=8, bias=True, bias_std=0.1, name="dwconv")
    b = g.conv(b, 8, 8, 1, 1, [0, 0, 0, 0], bias=True, bias_std=0.1, name="pwconv", gain=1.0)
    y = g.op("Add", [a, b], name="residual")
    y = g.op("MaxPool", [y], name="maxpool", kernel_shape=[2, 2], strides=[2, 2])
    y = g.op("GlobalAveragePool", [y], name="gap")
    y = g.op("Flatten", [y], name="flatten", axis=1)
    y = g.gemm(y, 8, 10, name="fc", gain=2.0)
    g.op("Softmax", [y], name="softmax", outputs=["probs"], axis=-1)
    g.add_output("probs", FLOAT, ["N", 10])
    return g.finish("tiny conv classifier for tests"), g.n_params


def build_tiny_ssd(seed: int, opset: int):
    g = GraphBuilder("tiny_ssd", seed, opset)
    x = g.add_input("image", FLOAT, ["N", 3, 32, 32])
    ncls = 6
    sym = _Padder("symmetric")
    y, _ = conv_bn_act(g, x, 32, 3, 8, 3, 2, sym, "stem")                          # 16x16
    f1 = g.relu6(g.conv(y, 8, 16, 3, 2, [1, 1, 1, 1], bias=True, bias_std=0.1, name="c2"), name="c2/relu6")
    f2 = g.relu6(g.conv(f1, 16, 16, 3, 2, [0, 0, 1, 1], bias=True, bias_std=0.1, name="c3"), name="c3/relu6")
    feats = [(f1, 16, 8, 2), (f2, 16, 4, 3)]
    boxes, scores = [], []
    for i, (t, c, _, a) in enumerate(feats):
        b = g.conv(t, c, a * 4, 1, 1, [0, 0, 0, 0], bias=True, bias_std=0.1, name=f"box{i}")
        b = g.op("Transpose", [b], name=f"box{i}/transpose", perm=[0, 2, 3, 1])
        boxes.append(g.reshape(b, [0, -1, 4], name=f"box{i}/reshape"))
        s = g.conv(t, c, a * ncls, 3, 1, [1, 1, 1, 1], bias=True, bias_std=0.1, name=f"cls{i}")
        s = g.op("Transpose", [s], name=f"cls{i}/transpose", perm=[0, 2, 3, 1])
        scores.append(g.reshape(s, [0, -1, ncls], name=f"cls{i}/reshape"))
    anchors = sum(sz * sz * a for _, _, sz, a in feats)
    g.op("Concat", boxes, name="concat_boxes", outputs=["boxes"], axis=1)
    logits = g.op("Concat", scores, name="concat_scores", axis=1)
    g.op("Sigmoid", [logits], name="sigmoid", outputs=["scores"])
    g.add_output("boxes", FLOAT, ["N", anchors, 4])
    g.add_output("scores", FLOAT, ["N", anchors, ncls])
    return g.finish("tiny two-map SSD for tests"), g.n_params


def build_tiny_shape_ops(seed: int, opset: int):
    # HardSwish only exists from opset 14 on.
    g = GraphBuilder("tiny_shape_ops", seed, max(opset, 14))
    x = g.add_input("input", FLOAT, ["N", 3, 8, 8])
    xi = g.op("Identity", [x], name="identity")

    # Exporter pattern: batch size read at run time, glued into a Reshape target.
    shp = g.op("Shape", [xi], name="shape")
    n = g.op("Gather", [shp, g.const(0, np.int64, hint="idx0")], name="gather_batch", axis=0)  # scalar
    n1 = g.unsqueeze(n, [0], name="unsqueeze_batch")
    tgt = g.op("Concat", [n1, g.const([3, 64], np.int64)], name="concat_shape", axis=0)
    r = g.op("Reshape", [xi, tgt], name="reshape_dyn")                             # [N,3,64]
    w = g.initializer("matmul_w", g.he_weight([64, 16], 64, 1.0), learned=True)
    m = g.op("MatMul", [r, w], name="matmul")                                      # [N,3,16]
    g.op("LeakyRelu", [m], name="leaky", outputs=["proj"], alpha=0.1)
    g.add_output("proj", FLOAT, ["N", 3, 16])

    # Resize both ways, Pad, AveragePool, Slice back to 8x8, activations.
    scales = g.const([1.0, 1.0, 2.0, 2.0])
    un = g.op("Resize", [xi, "", scales], name="resize_nearest", mode="nearest",
              coordinate_transformation_mode="asymmetric", nearest_mode="floor")   # [N,3,16,16]
    ul = g.op("Resize", [xi, "", scales], name="resize_linear", mode="linear",
              coordinate_transformation_mode="half_pixel")                          # [N,3,16,16]
    d = g.op("Sub", [un, ul], name="sub_resized")
    p = g.op("Pad", [d, g.const([0, 0, 1, 1, 0, 0, 1, 1], np.int64), g.const(0.5, hint="pad_value")],
             name="pad", mode="constant")                                            # [N,3,18,18]
    ap = g.op("AveragePool", [p], name="avgpool", kernel_shape=[3, 3], strides=[2, 2],
              pads=[1, 1, 1, 1], count_include_pad=0)                               # [N,3,9,9]
    sl = g.op("Slice", [ap, g.const([1, 1], np.int64), g.const([INT64_MAX, INT64_MAX], np.int64),
                        g.const([2, 3], np.int64)], name="slice_tail")             # [N,3,8,8]
    hs = g.op("HardSwish", [sl], name="hardswish")
    hsg = g.op("HardSigmoid", [sl], name="hardsigmoid", alpha=0.2, beta=0.5)
    e = g.op("Exp", [hsg], name="exp")                                              # in [1, e]
    q = g.op("Div", [hs, e], name="div")

    # Slice / Squeeze / Unsqueeze / Tile, a reversing Slice with a negative step.
    c0 = g.op("Slice", [xi, g.const([0], np.int64), g.const([1], np.int64), g.const([1], np.int64)],
              name="slice_ch0")                                                     # [N,1,8,8]
    c0 = g.squeeze(c0, [1], name="squeeze")                                          # [N,8,8]
    c0 = g.unsqueeze(c0, [1], name="unsqueeze")                                      # [N,1,8,8]
    t = g.op("Tile", [c0, g.const([1, 3, 1, 1], np.int64)], name="tile")           # [N,3,8,8]
    fl = g.op("Slice", [xi, g.const([-1], np.int64), g.const([-INT64_MAX], np.int64),
                        g.const([3], np.int64), g.const([-1], np.int64)], name="slice_flip")
    ev = g.op("Slice", [xi, g.const([0, 1], np.int64), g.const([3, 8], np.int64),
                        g.const([1, 2], np.int64), g.const([2, 2], np.int64)],
              name="slice_step2")                                                   # [N,2,4,8]

    y = g.op("Add", [q, t], name="add_tile")
    y = g.op("Sub", [y, fl], name="sub_flip")
    nf = g.op("Cast", [n], name="cast_batch", to=TensorProto.FLOAT)                 # scalar float
    y = g.op("Sub", [y, g.op("Div", [nf, g.const(8.0)], name="div_batch")], name="sub_batch")
    tgt2 = g.op("Concat", [n1, g.const([-1], np.int64)], name="concat_shape2", axis=0)
    g.op("Reshape", [y, tgt2], name="reshape_flat", outputs=["features"])          # [N,192]
    g.add_output("features", FLOAT, ["N", 192])
    g.op("Identity", [ev], name="identity_out", outputs=["strided"])
    g.add_output("strided", FLOAT, ["N", 2, 4, 8])
    return g.finish("shape-manipulation and elementwise op coverage for tests"), g.n_params


def build_tiny_qdq(seed: int, opset: int):
    """QDQ around two convs. Every scale is a power of two and every bias a multiple of
    s_x*s_w, so each float intermediate is exactly representable: results don't depend on
    summation order and any correct engine matches onnxruntime bit for bit."""
    g = GraphBuilder("tiny_qdq", seed, opset)
    r = g.rng
    x = g.add_input("input", FLOAT, ["N", 3, 16, 16])

    def q_dq(t, scale, zp, dtype, name):
        s = g.const(np.float32(scale), hint=f"{name}/scale")
        z = g.const(zp, dtype, hint=f"{name}/zero_point")
        qt = g.op("QuantizeLinear", [t, s, z], name=f"{name}/QuantizeLinear")
        return g.op("DequantizeLinear", [qt, s, z], name=f"{name}/DequantizeLinear")

    def qconv(t, s_in, cin, cout, stride, name):
        wq = r.integers(-127, 128, size=(cout, cin, 3, 3)).astype(np.int8)
        ws = (2.0 ** -r.integers(7, 11, size=cout)).astype(np.float32)
        bias = (r.integers(-2000, 2001, size=cout) * s_in * ws).astype(np.float32)
        wq_n = g.initializer(f"{name}/weight_quantized", wq, learned=True)
        ws_n = g.initializer(f"{name}/weight_scale", ws)
        wz_n = g.initializer(f"{name}/weight_zero_point", np.zeros(cout, np.int8))
        wd = g.op("DequantizeLinear", [wq_n, ws_n, wz_n], name=f"{name}/weight_DequantizeLinear", axis=0)
        b = g.initializer(f"{name}/bias", bias, learned=True)
        return g.op("Conv", [t, wd, b], name=name, kernel_shape=[3, 3], strides=[stride, stride],
                    pads=[1, 1, 1, 1])

    s_x, s_1, s_2 = 2.0 ** -5, 2.0 ** -3, 2.0 ** -2
    xd = q_dq(x, s_x, 128, np.uint8, "input_q")                 # uint8 activations
    y = g.relu(qconv(xd, s_x, 3, 8, 1, "conv1"), name="relu1")
    y = q_dq(y, s_1, -128, np.int8, "act1_q")                   # int8 activations, asymmetric
    y = qconv(y, s_1, 8, 4, 2, "conv2")                         # [N,4,8,8]
    yq = g.op("QuantizeLinear", [y, g.const(np.float32(s_2), hint="out_q/scale"),
                                 g.const(0, np.int8, hint="out_q/zero_point")], name="out_q/QuantizeLinear")
    g.op("DequantizeLinear", [yq, g.const(np.float32(s_2), hint="out_q/scale"),
                              g.const(0, np.int8, hint="out_q/zero_point")],
         name="out_q/DequantizeLinear", outputs=["output"])
    g.add_output("output", FLOAT, ["N", 4, 8, 8])
    return g.finish("QDQ int8/uint8 model with exactly representable intermediates"), g.n_params


# ---------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable
    seed_key: str                       # models sharing a key share weights
    input_range: tuple | None = None    # (lo, hi) uniform inputs; None = standard normal
    tiny: bool = False


MODELS: dict[str, ModelSpec] = {m.name: m for m in [
    ModelSpec("tiny_conv", build_tiny_conv, "tiny_conv", tiny=True),
    ModelSpec("tiny_ssd", build_tiny_ssd, "tiny_ssd", tiny=True),
    ModelSpec("tiny_shape_ops", build_tiny_shape_ops, "tiny_shape_ops", tiny=True),
    ModelSpec("tiny_qdq", build_tiny_qdq, "tiny_qdq", tiny=True),
    ModelSpec("ssd_mobilenet_v2", build_ssd_mobilenet_v2, "ssd_mobilenet_v2"),
    ModelSpec("ssd_mobilenet_v2_nhwc", build_ssd_mobilenet_v2_nhwc, "ssd_mobilenet_v2",
              input_range=(0.0, 255.0)),
    ModelSpec("mobilenet_v2", build_mobilenet_v2, "mobilenet_v2"),
    ModelSpec("resnet50", build_resnet50, "resnet50"),
]}
TINY_MODELS = [n for n, m in MODELS.items() if m.tiny]


def model_seed(spec: ModelSpec, base_seed: int) -> int:
    return base_seed + zlib.crc32(spec.seed_key.encode())


def make_input(spec: ModelSpec, shape, rng: np.random.Generator) -> np.ndarray:
    """A test input of the kind the model expects (N(0,1) or uniform over input_range)."""
    if spec.input_range is None:
        return rng.standard_normal(shape).astype(np.float32)
    lo, hi = spec.input_range
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def generator_digest() -> str:
    h = hashlib.sha256()
    for f in ("make_models.py", "onnx_builders.py"):
        with open(os.path.join(HERE, f), "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:16]


def build_models(out_dir: str = DEFAULT_OUT, only=None, opset: int = 13, base_seed: int = 0,
                 reuse: bool = False, check: bool = True, verbose: bool = True) -> dict[str, str]:
    """Write the selected models into out_dir; returns {name: path}.

    With reuse=True a model whose manifest entry matches (same generator source, opset and
    seed) and whose file still exists is not rebuilt."""
    names = list(MODELS) if not only else list(only)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise KeyError(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, "manifest.json")
    manifest = {}
    if os.path.exists(manifest_path):
        try:
            with open(manifest_path) as fh:
                manifest = json.load(fh)
        except (OSError, ValueError):
            manifest = {}
    digest = generator_digest()
    paths = {}
    for name in names:
        spec = MODELS[name]
        path = os.path.join(out_dir, f"{name}.onnx")
        seed = model_seed(spec, base_seed)
        key = {"generator": digest, "opset": opset, "seed": seed}
        old = manifest.get(name, {})
        if reuse and os.path.exists(path) and all(old.get(k) == v for k, v in key.items()) \
                and old.get("bytes") == os.path.getsize(path):
            paths[name] = path
            if verbose:
                print(f"{name:24s} up to date ({old['bytes'] / 1e6:.2f} MB)")
            continue
        t0 = time.perf_counter()
        model, n_params = spec.build(seed, opset)
        if check:
            onnx.checker.check_model(model, full_check=True)
        tmp = path + ".tmp"
        onnx.save(model, tmp)
        os.replace(tmp, path)
        size = os.path.getsize(path)
        manifest[name] = dict(key, file=os.path.basename(path), bytes=size, params=n_params,
                              opset_used=model.opset_import[0].version, nodes=len(model.graph.node))
        paths[name] = path
        if verbose:
            print(f"{name:24s} {n_params:>11,d} params  {len(model.graph.node):4d} nodes  "
                  f"{size / 1e6:8.2f} MB  opset {model.opset_import[0].version}  "
                  f"{time.perf_counter() - t0:5.2f} s")
    with open(manifest_path + ".tmp", "w") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
    os.replace(manifest_path + ".tmp", manifest_path)
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory (default models/generated/)")
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--opset", type=int, default=13, help="ONNX opset (default 13, minimum 13)")
    ap.add_argument("--seed", type=int, default=0, help="offset added to every model's weight seed")
    ap.add_argument("--reuse", action="store_true", help="skip models already up to date in --out")
    ap.add_argument("--no-check", action="store_true", help="skip onnx.checker")
    ap.add_argument("--list", action="store_true", help="list model names and exit")
    a = ap.parse_args(argv)
    if a.list:
        print("\n".join(MODELS))
        return 0
    only = [s.strip() for s in a.only.split(",") if s.strip()] or None
    t0 = time.perf_counter()
    build_models(a.out, only, a.opset, a.seed, reuse=a.reuse, check=not a.no_check)
    print(f"done in {time.perf_counter() - t0:.1f} s -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
