#!/usr/bin/env python3
"""Writes the corpus of deliberately broken ONNX files in tests/data/bad_onnx/.

Each file breaks one rule of the importer (src/onnx/). tests/c/test_onnx_bad_corpus.c imports every file and
checks that it fails with the expected status and a message naming the offending tensor, node or value.

The output is deterministic (fixed seed, deterministic serialization), so re-running the script on an
unchanged script leaves the committed files byte-identical. Needs the `onnx` Python package.

usage: python3 tests/data/make_bad_onnx.py [output_dir]
"""

import os
import random
import struct
import sys

import onnx
from onnx import TensorProto, helper

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad_onnx")


def model(nodes, inputs, outputs, inits=(), opset=13, ir_version=8):
    """A ModelProto built field by field (no helper defaults that could change between onnx versions)."""
    g = onnx.GraphProto(name="bad")
    g.node.extend(nodes)
    g.input.extend(inputs)
    g.output.extend(outputs)
    g.initializer.extend(inits)
    m = onnx.ModelProto(ir_version=ir_version, producer_name="runinfer-bad-corpus")
    m.opset_import.add(domain="", version=opset)
    m.graph.CopyFrom(g)
    return m


def tensor(name, dims, data_type=TensorProto.FLOAT, raw=None):
    t = TensorProto(name=name, data_type=data_type)
    t.dims.extend(dims)
    if raw is not None:
        t.raw_data = raw
    return t


def floats(n):
    return struct.pack("<%df" % n, *[0.5 * i for i in range(n)])


def vi(name, dims, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, dims)


def out(name):
    return onnx.ValueInfoProto(name=name)


def relu_model(extra_inits=(), node_inputs=("x",)):
    return model([helper.make_node("Relu", list(node_inputs), ["y"], name="relu0")], [vi("x", [1, 4])],
                 [out("y")], extra_inits)


def ser(m):
    return m.SerializeToString(deterministic=True)


def external(t, location, offset=None, length=None):
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        if value is not None:
            e = t.external_data.add()
            e.key, e.value = key, str(value)
    return t


def varint(v):
    b = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        b.append(byte | (0x80 if v else 0))
        if not v:
            return bytes(b)


def field(num, body):
    return varint(num << 3 | 2) + varint(len(body)) + body


def conv_model():
    w = tensor("conv_w", [4, 4, 3, 3], raw=floats(4 * 4 * 9))
    return model([helper.make_node("Conv", ["x", "conv_w"], ["y"], name="conv0", kernel_shape=[3, 3])],
                  [vi("x", ["N", 4, 8, 8])], [out("y")], [w])


def build():
    files = {}

    # 1. a valid model cut short in the middle of its weights
    good = ser(conv_model())
    files["truncated.onnx"] = good[: len(good) * 3 // 5]

    # 2. bytes that are no protobuf at all
    rng = random.Random(20240601)
    files["random_bytes.onnx"] = bytes(rng.getrandbits(8) for _ in range(512))

    # 3. wrong wire types: the graph (a message) given as a varint; ir_version given as a string
    files["wrong_field_type.onnx"] = ser(relu_model()) + varint(7 << 3 | 0) + varint(5)
    files["wrong_field_type_ir.onnx"] = field(1, b"eight") + ser(relu_model())[2:]

    # 4. a 10^12-element initializer backed by 16 bytes
    files["huge_dims.onnx"] = ser(relu_model([tensor("huge_weight", [1000000, 1000000], raw=floats(4))]))

    # 5. raw_data shorter than the dims say
    files["short_raw_data.onnx"] = ser(relu_model([tensor("short_weight", [4, 4], raw=floats(3))]))

    # 6. a negative dimension
    files["negative_dims.onnx"] = ser(relu_model([tensor("neg_weight", [2, -3], raw=b"")]))

    # 7. rank 20
    files["rank20.onnx"] = ser(relu_model([tensor("deep_weight", [1] * 20, raw=floats(1))]))

    # 8. a node input nobody produces
    m = conv_model()
    m.graph.node[0].input[1] = "missing_weight"
    files["dangling_input.onnx"] = ser(m)

    # 9. a cycle: a reads b's output and b reads a's
    files["cycle.onnx"] = ser(model([helper.make_node("Add", ["x", "q"], ["p"], name="add_a"),
                                     helper.make_node("Relu", ["p"], ["q"], name="relu_b")],
                                    [vi("x", [1, 4])], [out("q")]))

    # 10. two nodes producing one value
    files["two_producers.onnx"] = ser(model([helper.make_node("Relu", ["x"], ["y"], name="relu_a"),
                                             helper.make_node("Sigmoid", ["x"], ["y"], name="sigmoid_b")],
                                            [vi("x", [1, 4])], [out("y")]))

    # 11. an operator that does not exist
    files["unknown_op.onnx"] = ser(model([helper.make_node("FrobnicateV2", ["x"], ["y"], name="frob")],
                                         [vi("x", [1, 4])], [out("y")]))

    # 12. opset 7
    files["opset7.onnx"] = ser(model([helper.make_node("Relu", ["x"], ["y"], name="relu0")],
                                     [vi("x", [1, 4])], [out("y")], opset=7))

    # 13. external data escaping the model directory
    files["external_traversal.onnx"] = ser(relu_model([external(tensor("stolen", [4]), "../../../etc/passwd")]))

    # 14. external data offset past the end of its (16-byte) file
    files["external_offset_past_end.bin"] = floats(4)
    files["external_offset_past_end.onnx"] = ser(
        relu_model([external(tensor("far_weight", [4]), "external_offset_past_end.bin", 4096, 16)]))

    # 15. element type code 99
    files["dtype99.onnx"] = ser(relu_model([tensor("odd_type", [2], data_type=99, raw=b"\0" * 8)]))

    # 16. no nodes, and the output refers to nothing
    files["empty_graph_dangling_output.onnx"] = ser(model([], [], [out("ghost_out")]))

    # 17. an attribute list beyond the 65536-element limit: 65537 zeros, packed by hand at one byte each
    #     (the Python serializer would write the proto2 field unpacked, at twice the size)
    attr = field(1, b"junk") + varint(20 << 3) + varint(onnx.AttributeProto.INTS) + field(8, b"\0" * 65537)
    node = ser(helper.make_node("Relu", ["x"], ["y"], name="relu_attrs")) + field(5, attr)
    shell = model([], [vi("x", [1, 4])], [out("y")])
    graph = field(1, node) + ser(shell.graph)
    shell.ClearField("graph")
    files["huge_attribute_list.onnx"] = ser(shell) + field(7, graph)

    # 18. more attributes on one node than the limit of 64
    n = helper.make_node("Relu", ["x"], ["y"], name="relu_many")
    for i in range(100):
        n.attribute.append(helper.make_attribute("a%03d" % i, i))
    files["too_many_attributes.onnx"] = ser(model([n], [vi("x", [1, 4])], [out("y")]))

    # 19. graph → node → attribute → graph ... nested 40 times (120 message levels)
    body = b""
    for _ in range(40):
        body = field(1, field(5, field(6, body)))  # GraphProto.node / NodeProto.attribute / AttributeProto.g
    files["deep_nesting.onnx"] = varint(1 << 3) + varint(8) + field(7, body)

    # 20. a symbolic dimension other than the batch axis
    files["symbolic_axis.onnx"] = ser(model([helper.make_node("Relu", ["x"], ["y"], name="relu0")],
                                            [vi("x", ["N", 3, "H", 8])], [out("y")]))

    # 21. external data at an absolute path
    files["external_absolute.onnx"] = ser(relu_model([external(tensor("abs_weight", [4]), "/etc/passwd")]))

    # 22. a string initializer
    s = TensorProto(name="labels", data_type=TensorProto.STRING, dims=[2], string_data=[b"cat", b"dog"])
    files["string_initializer.onnx"] = ser(relu_model([s]))

    # 23. a subgraph (If)
    branch = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "branch", [], [out("t")])
    files["subgraph_if.onnx"] = ser(model([helper.make_node("If", ["c"], ["y"], name="if0", then_branch=branch,
                                                            else_branch=branch)],
                                          [vi("c", [], TensorProto.BOOL), vi("x", [1, 4])], [out("y")]))

    # 24. several unsupported operators: all must be named in one message
    files["many_unsupported.onnx"] = ser(model([
        helper.make_node("Relu", ["x"], ["a"], name="fine"),
        helper.make_node("Erf", ["a"], ["b"], name="erf0"),
        helper.make_node("Einsum", ["b"], ["c"], name="einsum0", equation="ij->ji"),
        helper.make_node("Erf", ["c"], ["d"], name="erf1"),
        helper.make_node("TopK", ["d", "k"], ["y", "idx"], name="topk0"),
    ], [vi("x", [1, 4]), vi("k", [1], TensorProto.INT64)], [out("y")]))

    # 25. typed data with fewer values than the dims say
    t = TensorProto(name="few_values", data_type=TensorProto.FLOAT, dims=[2, 2], float_data=[1.0, 2.0, 3.0])
    files["typed_count_mismatch.onnx"] = ser(relu_model([t]))

    # 26. IR version 2
    files["ir_version2.onnx"] = ser(model([helper.make_node("Relu", ["x"], ["y"], name="relu0")],
                                          [vi("x", [1, 4])], [out("y")], ir_version=2))
    return files


def main():
    os.makedirs(OUT, exist_ok=True)
    files = build()
    for name, data in sorted(files.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("wrote %d files to %s" % (len(files), OUT))


if __name__ == "__main__":
    main()
