#!/usr/bin/env python3
"""Measures how far ideal fp16 arithmetic lands from float32 on a model, on the CPU (no GPU needed).

    python3 scripts/gpu/fp16-floor.py MODEL.onnx [--batch 1] [--seed 1]

BatchNormalization is folded into the preceding Conv (as the engines do), then onnxruntime runs:
  fp32            the folded model;
  w16             every 4-D weight rounded to half;
  act16           every Conv / Clip / Relu / Add output (and the input) rounded to half (Cast pairs);
  w16+act16       both: an engine that rounds weights once and each layer's output once, accumulating in
                  float, cannot do better than this;
  perturb         float32 weights times (1 + 2.8e-4 * N(0, 1)), half's rounding noise without rounding.
Printed per output: max|got - fp32| / max|fp32| (the measure of tests/gpu/test_cuda_ops) and the L2 ratio.
Inputs: uniform [-2, 2), as test_cuda_ops draws them. docs/design/cuda-backend.md ("Numerics of fp16
engines") quotes this script's results for ssd_mobilenet_v2."""
import argparse

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def fold_bn(m):
    g = m.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    nodes, out, skip = list(g.node), [], set()
    for n in nodes:
        if id(n) in skip:
            continue
        if n.op_type == "Conv":
            cons = [c for c in nodes if n.output[0] in c.input]
            if len(cons) == 1 and cons[0].op_type == "BatchNormalization":
                bn = cons[0]
                gm, bt, mu, var = [inits[x] for x in bn.input[1:5]]
                eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
                s = (gm / np.sqrt(var + eps)).astype(np.float32)
                b0 = inits[n.input[2]] if len(n.input) > 2 and n.input[2] else 0
                inits[n.input[1] + "/folded_w"] = (inits[n.input[1]] * s[:, None, None, None]).astype(np.float32)
                inits[n.input[1] + "/folded_b"] = (bt + (b0 - mu) * s).astype(np.float32)
                nn = helper.make_node("Conv", [n.input[0], n.input[1] + "/folded_w", n.input[1] + "/folded_b"],
                                      [bn.output[0]], name=n.name)
                nn.attribute.extend(n.attribute)
                out.append(nn)
                skip.add(id(bn))
                continue
        out.append(n)
    del g.node[:]
    g.node.extend(out)
    used = {x for n in out for x in n.input}
    del g.initializer[:]
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in inits.items() if k in used)
    return m


def r16(a):
    return a.astype(np.float16).astype(np.float32)


def variant(m, round_w, round_act, perturb=0.0, rng=None):
    m = onnx.ModelProto.FromString(m.SerializeToString())
    g = m.graph
    for i in g.initializer:
        a = numpy_helper.to_array(i)
        if a.dtype == np.float32 and a.ndim == 4:
            if round_w:
                a = r16(a)
            if perturb:
                a = (a * (1 + perturb * rng.standard_normal(a.shape))).astype(np.float32)
            i.CopyFrom(numpy_helper.from_array(a, i.name))
    if not round_act:
        return m
    nodes, ren, k = [], {}, [0]
    outs = {o.name for o in g.output}

    def q(name):
        k[0] += 1
        h, b = f"{name}/h{k[0]}", f"{name}/q{k[0]}"
        nodes.append(helper.make_node("Cast", [name], [h], to=TensorProto.FLOAT16))
        nodes.append(helper.make_node("Cast", [h], [b], to=TensorProto.FLOAT))
        return b

    ren[g.input[0].name] = q(g.input[0].name)
    for n in g.node:
        for j, x in enumerate(n.input):
            if x in ren:
                n.input[j] = ren[x]
        nodes.append(n)
        if n.op_type in ("Conv", "Clip", "Relu", "Add") and n.output[0] not in outs:
            ren[n.output[0]] = q(n.output[0])
    del g.node[:]
    g.node.extend(nodes)
    return m


def run(m, x):
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    ort.set_default_logger_severity(3)
    m = fold_bn(onnx.load(a.model))
    rng = np.random.default_rng(a.seed)
    shape = [d.dim_value or a.batch for d in m.graph.input[0].type.tensor_type.shape.dim]
    x = rng.uniform(-2, 2, size=shape).astype(np.float32)
    ref = run(m, x)
    for label, kw in [("w16", dict(round_w=True, round_act=False)), ("act16", dict(round_w=False, round_act=True)),
                      ("w16+act16", dict(round_w=True, round_act=True)),
                      ("perturb", dict(round_w=False, round_act=False, perturb=2.8e-4, rng=rng))]:
        got = run(variant(m, **kw), x)
        cols = [f"{np.abs(g - r).max() / np.abs(r).max():.2e} (l2 {np.linalg.norm(g - r) / np.linalg.norm(r):.1e})"
                for g, r in zip(got, ref)]
        print(f"{label:10s} " + "  ".join(cols))


if __name__ == "__main__":
    main()
