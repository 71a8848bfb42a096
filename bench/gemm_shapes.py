#!/usr/bin/env python3
"""Writes the 1x1 convolutions of an ONNX model as GEMM shapes for tests/gpu/bench_gemm_shapes.

    python3 bench/gemm_shapes.py MODEL.onnx -o SHAPES.csv

One CSV row per Conv node that is a plain GEMM over NHWC pixels: kernel 1x1, stride 1, no padding, group 1.
Columns: name (the node's name), h, w (the input's spatial size after onnx shape inference), cin, cout.
Other Conv nodes are skipped (their count goes to stderr); a 1x1 Conv whose spatial size shape inference
cannot resolve is an error, since the benchmark's M depends on it. The batch is not in the file: the
benchmark multiplies h * w by each batch it runs.

For the reference models of models/make_models.py (ssd_mobilenet_v2 and its variants) the input is NCHW, so
h and w are dims 2 and 3 of the Conv's input.
"""

from __future__ import annotations

import argparse
import csv
import sys

import onnx
from onnx import numpy_helper, shape_inference


def _shapes(model: onnx.ModelProto) -> dict[str, list]:
    """Known dims of every value (ints, or None where symbolic) after shape inference."""
    out: dict[str, list] = {}
    g = model.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            out[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    for init in g.initializer:
        out[init.name] = list(init.dims)
    return out


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def conv_1x1_rows(model: onnx.ModelProto) -> tuple[list[tuple[str, int, int, int, int]], int]:
    """(rows, skipped): rows are (name, h, w, cin, cout) of the GEMM-like Conv nodes in graph order."""
    model = shape_inference.infer_shapes(model)
    shapes = _shapes(model)
    inits = {i.name: i for i in model.graph.initializer}
    rows, skipped = [], 0
    for i, node in enumerate(model.graph.node):
        if node.op_type != "Conv" or node.domain not in ("", "ai.onnx"):
            continue
        a = _attrs(node)
        ws = shapes.get(node.input[1])
        if ws is None and node.input[1] in inits:
            ws = list(numpy_helper.to_array(inits[node.input[1]]).shape)
        kernel = list(a.get("kernel_shape", ws[2:] if ws else []))
        pads = list(a.get("pads", []))
        plain = (
            ws is not None
            and len(ws) == 4
            and kernel == [1, 1]
            and int(a.get("group", 1)) == 1
            and all(s == 1 for s in a.get("strides", [1, 1]))
            and all(p == 0 for p in pads)
        )  # any auto_pad gives a 1x1, stride 1 kernel no padding
        if not plain:
            skipped += 1
            continue
        xs = shapes.get(node.input[0])
        name = node.name or f"Conv_{i}"
        if xs is None or len(xs) != 4 or xs[2] is None or xs[3] is None:
            raise ValueError(f"{name}: the input's spatial size is unknown after shape inference ({xs})")
        cout, cin = ws[0], ws[1]
        if cout is None or cin is None:
            raise ValueError(f"{name}: the weight's shape is unknown ({ws})")
        rows.append((name, int(xs[2]), int(xs[3]), int(cin), int(cout)))
    return rows, skipped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("-o", "--output", required=True, help="the CSV file to write")
    a = ap.parse_args(argv)
    rows, skipped = conv_1x1_rows(onnx.load(a.model))
    with open(a.output, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["name", "h", "w", "cin", "cout"])
        w.writerows(rows)
    print(f"gemm_shapes: {len(rows)} 1x1 convolutions written to {a.output}, {skipped} other Conv nodes skipped",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
