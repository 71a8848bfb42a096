#!/usr/bin/env python3
"""Writes a copy of an ONNX model whose float32 image input takes uint8 instead (a Cast to float32 is put
in front of the graph), for measuring the end-to-end path from a host uint8 image (not a test).

TF Object Detection API detectors take uint8 `image_tensor` input; the repository's
ssd_mobilenet_v2_nhwc model (NHWC, 0..255 normalised in-graph) takes float32. With a uint8 input the engine
receives 4x fewer bytes per image (270 KB instead of 1.08 MB at 300x300x3), and the conversion to float runs
on the device as the graph's first node.

    python3 bench/u8_input_model.py IN.onnx OUT.onnx [--input NAME]
"""

from __future__ import annotations

import argparse
import sys

import onnx
from onnx import TensorProto, helper


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--input", default=None, help="the input to change (default: the first)")
    a = ap.parse_args()
    m = onnx.load(a.src)
    g = m.graph
    inp = next((i for i in g.input if a.input in (None, i.name)), None)
    if inp is None:
        raise SystemExit(f"{a.src}: no input named {a.input}")
    if inp.type.tensor_type.elem_type != TensorProto.FLOAT:
        raise SystemExit(f"{a.src}: input {inp.name} is not float32")
    old = inp.name
    new = old + "_u8"
    for n in g.node:
        n.input[:] = [new + "_f" if x == old else x for x in n.input]
    inp.name = new
    inp.type.tensor_type.elem_type = TensorProto.UINT8
    cast = helper.make_node("Cast", [new], [new + "_f"], name="input_to_float", to=TensorProto.FLOAT)
    g.node.insert(0, cast)
    onnx.checker.check_model(m)
    onnx.save(m, a.dst)
    print(f"wrote {a.dst}: input '{new}' uint8 {[d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
