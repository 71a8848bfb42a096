"""NonMaxSuppression (ONNX) and EfficientNMS_TRT (TensorRT plugin) through the runinfer CLI.

- NonMaxSuppression against onnxruntime on random inputs (clustered boxes so that suppression happens,
  scores rounded to create ties, both box encodings, with and without thresholds, batch 1 and 3). The CLI
  writes the selected indices with the number of rows actually produced (ri_context_last_output_shape).
- EfficientNMS_TRT against an independent NumPy implementation of the plugin's documented behaviour
  (README of TensorRT's efficientNMSPlugin): box codings, the fused box decoder with anchors, per-class boxes,
  background class, class-agnostic NMS, sigmoid activation, both node domains ("" and "TRT").
- The pipeline: the tiny SSD with its box decoding done in the graph and EfficientNMS_TRT at the end gives the
  same rows from `runinfer run` as the raw outputs with the pipeline's own decode + NMS.

CLI: $RI_CLI, else build/runinfer; skipped when missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import make_models
from conftest import cli_missing_reason, find_cli, ort_run
from pipeline_util import (TINY_DETECT, TINY_LABELS, TINY_PREPROCESS, add_anchor_output, build_engine, describe,
                           make_noise_image, parse_seed, run, tiny_anchors, tiny_meta)

F32, I64, I32 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32


@pytest.fixture(scope="module")
def cli() -> str:
    c = find_cli()
    if c is None:
        pytest.skip(cli_missing_reason())
    return c


def _seed() -> int:
    return int(os.environ.get("RI_TEST_SEED", "20240501"))


def infer(cli: str, rie: Path, feeds: dict[str, np.ndarray], d: Path) -> dict[str, np.ndarray]:
    d.mkdir(parents=True, exist_ok=True)
    args = [cli, "infer", "--engine", str(rie), "--out", str(d / "out")]
    for k, v in feeds.items():
        np.save(d / f"{k}.npy", v)
        args += ["--in", f"{k}={d / (k + '.npy')}"]
    p = run(args)
    assert p.returncode == 0, describe(p)
    return {f.stem: np.load(f) for f in (d / "out").glob("*.npy")}


# ---------------------------------------------------------------------------------------------------------
# NonMaxSuppression vs onnxruntime
# ---------------------------------------------------------------------------------------------------------
def nms_model(path: Path, n: int, c: int, max_out: int | None, iou: float | None, score: float | None,
              center: int, consumer: bool = False) -> None:
    inits, names = [], ["boxes", "scores"]
    for name, val, dt in (("max_out", max_out, np.int64), ("iou", iou, np.float32), ("score", score, np.float32)):
        if val is None:
            names.append("")
        else:
            inits.append(numpy_helper.from_array(np.array([val], dt), name))
            names.append(name)
    while names and names[-1] == "":
        names.pop()
    nodes = [helper.make_node("NonMaxSuppression", names, ["selected"], name="nms", center_point_box=center)]
    outs = [helper.make_tensor_value_info("selected", I64, ["K", 3])]
    if consumer:
        nodes.append(helper.make_node("Cast", ["selected"], ["selected_f"], name="cast_after_nms", to=F32))
        outs = [helper.make_tensor_value_info("selected_f", F32, ["K", 3])]
    g = helper.make_graph(nodes, "nms", [helper.make_tensor_value_info("boxes", F32, ["N", n, 4]),
                                         helper.make_tensor_value_info("scores", F32, ["N", c, n])], outs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(m, str(path))


def random_boxes(rng, b: int, n: int, center: int) -> np.ndarray:
    """Boxes around a few cluster centres (so that many overlap), some with their corners swapped."""
    centres = rng.uniform(0.2, 0.8, size=(b, 5, 2))
    pick = rng.integers(0, 5, size=(b, n))
    c = np.take_along_axis(centres, pick[..., None].repeat(2, -1), 1) + rng.normal(0, 0.03, (b, n, 2))
    size = rng.uniform(0.1, 0.4, size=(b, n, 2))
    if center:
        return np.concatenate([c[..., ::-1], size[..., ::-1]], -1).astype(np.float32)  # xc, yc, w, h
    lo, hi = c - size / 2, c + size / 2
    box = np.concatenate([lo, hi], -1)
    swap = rng.random((b, n)) < 0.3
    box[swap] = box[swap][:, [2, 3, 0, 1]]
    return box.astype(np.float32)


CASES = [
    # (name, batch, N, C, max_out, iou, score, center)
    ("corners", 3, 60, 4, 10, 0.5, 0.2, 0),
    ("center", 3, 60, 4, 10, 0.45, 0.3, 1),
    ("no_score_threshold", 1, 40, 3, 8, 0.6, None, 0),
    ("no_iou_input", 2, 30, 2, 5, None, None, 0),
    ("max_over_n", 2, 12, 3, 50, 0.5, 0.1, 0),
    ("one_class_many", 1, 200, 1, 100, 0.3, 0.05, 1),
    ("no_max_output", 2, 10, 2, None, 0.5, 0.2, 0),  # absent = 0: an empty [0,3] result
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_nms_matches_onnxruntime(cli, tmp_path, case):
    name, b, n, c, max_out, iou, score, center = case
    model = tmp_path / f"{name}.onnx"
    nms_model(model, n, c, max_out, iou, score, center)
    rie = tmp_path / f"{name}.rie"
    build_engine(cli, model, rie, 4, {})
    rng = np.random.default_rng(_seed() + len(name))
    total = 0
    for trial in range(3):
        boxes = random_boxes(rng, b, n, center)
        scores = np.round(rng.random((b, c, n)), 2).astype(np.float32)  # ties on purpose
        ref, _ = ort_run(model, {"boxes": boxes, "scores": scores})
        ours = infer(cli, rie, {"boxes": boxes, "scores": scores}, tmp_path / f"t{trial}")
        assert ours["selected"].dtype == np.int64
        np.testing.assert_array_equal(ours["selected"], ref["selected"], err_msg=f"{name} trial {trial}")
        total += len(ref["selected"])
        # suppression happened: fewer rows than the candidates allow
        assert len(ref["selected"]) <= b * c * min(max_out or 0, n)
    assert total > 0 or max_out is None


def test_nms_engine_reports_max_shape(cli, tmp_path):
    model = tmp_path / "m.onnx"
    nms_model(model, 30, 3, 7, 0.5, 0.2, 0)
    rie = tmp_path / "m.rie"
    build_engine(cli, model, rie, 4, {})
    p = run([cli, "inspect", str(rie)])
    assert p.returncode == 0, describe(p)
    # largest shape at the maximum batch: 4 x 3 classes x 7
    assert b"selected" in p.stdout and b"int64" in p.stdout


def test_nms_output_read_by_a_node_is_refused(cli, tmp_path):
    model = tmp_path / "consumed.onnx"
    nms_model(model, 20, 2, 5, 0.5, 0.2, 0, consumer=True)
    p = run([cli, "build", "--onnx", str(model), "--save", str(tmp_path / "x.rie")])
    assert p.returncode != 0
    assert b"only as a graph output" in p.stderr and b"cast_after_nms" in p.stderr, describe(p)


def test_nms_max_output_must_be_constant(cli, tmp_path):
    g = helper.make_graph(
        [helper.make_node("NonMaxSuppression", ["boxes", "scores", "m"], ["sel"], name="nms")], "g",
        [helper.make_tensor_value_info("boxes", F32, ["N", 8, 4]), helper.make_tensor_value_info("scores", F32, ["N", 2, 8]),
         helper.make_tensor_value_info("m", I64, [1])],
        [helper.make_tensor_value_info("sel", I64, ["K", 3])])
    model = tmp_path / "dyn.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(model))
    p = run([cli, "build", "--onnx", str(model), "--save", str(tmp_path / "x.rie")])
    assert p.returncode != 0 and b"must be a constant" in p.stderr, describe(p)


# ---------------------------------------------------------------------------------------------------------
# EfficientNMS_TRT vs a NumPy implementation of the plugin's documented behaviour
# ---------------------------------------------------------------------------------------------------------
def enms_model(path: Path, a: int, c: int, attrs: dict, boxes4d: bool = False, anchors: np.ndarray | None = None,
               domain: str = "") -> None:
    ins = ["boxes", "scores"]
    inits = []
    if anchors is not None:
        inits.append(numpy_helper.from_array(anchors, "anchors"))
        ins.append("anchors")
    k = attrs.get("max_output_boxes", 100)
    node = helper.make_node("EfficientNMS_TRT", ins,
                            ["num_detections", "detection_boxes", "detection_scores", "detection_classes"],
                            name="nms", domain=domain, plugin_version="1", **attrs)
    bshape = ["N", a, c, 4] if boxes4d else ["N", a, 4]
    g = helper.make_graph([node], "enms",
                          [helper.make_tensor_value_info("boxes", F32, bshape),
                           helper.make_tensor_value_info("scores", F32, ["N", a, c])],
                          [helper.make_tensor_value_info("num_detections", I32, ["N", 1]),
                           helper.make_tensor_value_info("detection_boxes", F32, ["N", k, 4]),
                           helper.make_tensor_value_info("detection_scores", F32, ["N", k]),
                           helper.make_tensor_value_info("detection_classes", I32, ["N", k])], inits)
    ops = [helper.make_opsetid("", 13)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    onnx.save(helper.make_model(g, opset_imports=ops), str(path))


def _sigmoid(x):
    return (np.float32(1) / (np.float32(1) + np.exp(-x.astype(np.float32)))).astype(np.float32)


def _iou(a, b) -> float:
    """IoU of (lo0, lo1, hi0, hi1) boxes; 0 without a positive intersection or area."""
    i0, i1, i2, i3 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    if i2 <= i0 or i3 <= i1:
        return 0.0
    inter = (i2 - i0) * (i3 - i1)
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


def _ordered(v):
    return np.array([min(v[0], v[2]), min(v[1], v[3]), max(v[0], v[2]), max(v[1], v[3])], np.float32)


def enms_reference(boxes, scores, anchors, attrs):
    thr = np.float32(attrs.get("score_threshold", 0.5))
    iou_thr = attrs.get("iou_threshold", 0.5)
    k = attrs.get("max_output_boxes", 100)
    bg = attrs.get("background_class", -1)
    act, agn, coding = attrs.get("score_activation", 0), attrs.get("class_agnostic", 0), attrs.get("box_coding", 0)
    bn, an, cn = scores.shape
    num = np.zeros((bn, 1), np.int32)
    ob, os_, oc = np.zeros((bn, k, 4), np.float32), np.zeros((bn, k), np.float32), np.zeros((bn, k), np.int32)
    for b in range(bn):
        s = scores[b]
        sa = _sigmoid(s) if act else s
        cands = [(float(s[a, c]), a, c) for a in range(an) for c in range(cn) if c != bg and sa[a, c] >= thr]
        cands.sort(key=lambda t: (-t[0], t[1], t[2]))
        kept = []
        for raw, a, c in cands[:4096]:
            v = (boxes[b, a, c] if boxes.ndim == 4 else boxes[b, a]).astype(np.float32)
            if anchors is not None:
                anc = anchors[0 if anchors.shape[0] == 1 else b, a]
                if coding == 0:
                    v = _ordered(v) + _ordered(anc)
                else:
                    v = np.array([v[0] * anc[2] + anc[0], v[1] * anc[3] + anc[1], anc[2] * np.exp(v[2]),
                                  anc[3] * np.exp(v[3])], np.float32)
            corners = v if coding == 0 else np.array([v[0] - v[2] / 2, v[1] - v[3] / 2, v[0] + v[2] / 2,
                                                      v[1] + v[3] / 2], np.float32)
            o = _ordered(corners)
            if any((agn or kc == c) and _iou(o, ko) >= iou_thr for ko, kc in kept):
                continue
            j = len(kept)
            kept.append((o, c))
            ob[b, j], os_[b, j], oc[b, j] = corners, (_sigmoid(np.float32(raw)) if act else raw), c
            if len(kept) == k:
                break
        num[b, 0] = len(kept)
    return num, ob, os_, oc


ENMS_CASES = [
    # (name, A, C, attrs, boxes4d, anchors kind, domain)
    ("corners", 80, 4, dict(score_threshold=0.3, iou_threshold=0.5, max_output_boxes=25), False, None, ""),
    ("trt_domain_background", 80, 5, dict(score_threshold=0.2, iou_threshold=0.45, max_output_boxes=30,
                                          background_class=0), False, None, "TRT"),
    ("center_size", 60, 3, dict(score_threshold=0.25, iou_threshold=0.5, max_output_boxes=20, box_coding=1),
     False, None, ""),
    ("agnostic_sigmoid", 70, 4, dict(score_threshold=0.6, iou_threshold=0.4, max_output_boxes=15,
                                     class_agnostic=1, score_activation=1), False, None, ""),
    ("per_class_boxes", 50, 3, dict(score_threshold=0.3, iou_threshold=0.5, max_output_boxes=40), True, None, ""),
    ("decoder_center", 60, 3, dict(score_threshold=0.3, iou_threshold=0.5, max_output_boxes=20, box_coding=1),
     False, "center", ""),
    ("decoder_corner", 60, 3, dict(score_threshold=0.3, iou_threshold=0.5, max_output_boxes=20), False, "corner", ""),
    ("few_slots", 80, 4, dict(score_threshold=0.0, iou_threshold=0.7, max_output_boxes=3), False, None, ""),
]


@pytest.mark.parametrize("case", ENMS_CASES, ids=[c[0] for c in ENMS_CASES])
def test_efficient_nms_matches_reference(cli, tmp_path, case):
    name, a, c, attrs, boxes4d, anchor_kind, domain = case
    rng = np.random.default_rng(_seed() + 7 * len(name))
    anchors = None
    if anchor_kind == "center":
        anchors = np.concatenate([rng.uniform(0.2, 0.8, (1, a, 2)), rng.uniform(0.1, 0.3, (1, a, 2))], -1)
    elif anchor_kind == "corner":
        lo = rng.uniform(0.1, 0.6, (1, a, 2))
        anchors = np.concatenate([lo, lo + rng.uniform(0.1, 0.3, (1, a, 2))], -1)
    if anchors is not None:
        anchors = anchors.astype(np.float32)
    model = tmp_path / f"{name}.onnx"
    enms_model(model, a, c, attrs, boxes4d, anchors, domain)
    rie = tmp_path / f"{name}.rie"
    build_engine(cli, model, rie, 4, {})
    b = 3
    if anchor_kind == "center":
        boxes = rng.normal(0, 0.3, (b, a, 4)).astype(np.float32)
    elif anchor_kind == "corner":
        boxes = rng.normal(0, 0.03, (b, a, 4)).astype(np.float32)
    elif boxes4d:
        boxes = np.stack([random_boxes(rng, b, a, 0) for _ in range(c)], 2)
    else:
        boxes = random_boxes(rng, b, a, attrs.get("box_coding", 0))
    raw = rng.normal(0, 1.5, (b, a, c)) if attrs.get("score_activation") else rng.random((b, a, c))
    scores = np.round(raw, 2).astype(np.float32)  # ties on purpose
    ours = infer(cli, rie, {"boxes": boxes, "scores": scores}, tmp_path)
    num, ob, os_, oc = enms_reference(boxes, scores, anchors, attrs)
    np.testing.assert_array_equal(ours["num_detections"], num)
    np.testing.assert_array_equal(ours["detection_classes"], oc)
    np.testing.assert_allclose(ours["detection_scores"], os_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours["detection_boxes"], ob, rtol=1e-5, atol=1e-6)
    assert num.sum() > 0
    if name != "few_slots":
        assert (num < attrs["max_output_boxes"]).any() or (num == attrs["max_output_boxes"]).all()


def test_efficient_nms_bad_attribute(cli, tmp_path):
    model = tmp_path / "bad.onnx"
    enms_model(model, 10, 2, dict(max_output_boxes=10, box_coding=2))
    p = run([cli, "build", "--onnx", str(model), "--save", str(tmp_path / "x.rie")])
    assert p.returncode != 0 and b"box_coding 2" in p.stderr, describe(p)


# ---------------------------------------------------------------------------------------------------------
# pipeline: in-graph decode + EfficientNMS_TRT == raw outputs + the pipeline's decode and NMS
# ---------------------------------------------------------------------------------------------------------
def tiny_ssd_with_nms(src: Path, dst: Path, x_first: bool = False) -> None:
    """tiny_ssd whose raw box encodings are decoded in the graph (centre-size, scales 10,10,5,5, anchors as
    constants), clipped to [0,1] and passed with the scores to EfficientNMS_TRT; corners (ymin, xmin, ymax,
    xmax), or (xmin, ymin, xmax, ymax) with x_first."""
    m = onnx.load(str(src))
    g = m.graph
    anc = tiny_anchors()
    consts = {"anc_y": anc[:, 0:1], "anc_x": anc[:, 1:2], "anc_h": anc[:, 2:3], "anc_w": anc[:, 3:4],
              "ten": np.array(10, np.float32), "five": np.array(5, np.float32), "two": np.array(2, np.float32),
              "zero": np.array(0, np.float32), "one": np.array(1, np.float32)}
    for i in range(4):
        consts[f"s{i}"] = np.array([i], np.int64)
        consts[f"e{i}"] = np.array([i + 1], np.int64)
    consts["ax2"] = np.array([2], np.int64)
    for k, v in consts.items():
        g.initializer.append(numpy_helper.from_array(v, k))
    N = []

    def op(t, ins, out, **kw):
        N.append(helper.make_node(t, ins, [out], name=out, **kw))
        return out

    cols = [op("Slice", ["boxes", f"s{i}", f"e{i}", "ax2"], f"t{i}") for i in range(4)]  # ty, tx, th, tw
    yc = op("Add", [op("Mul", [op("Div", [cols[0], "ten"], "ty10"), "anc_h"], "tyh"), "anc_y"], "yc")
    xc = op("Add", [op("Mul", [op("Div", [cols[1], "ten"], "tx10"), "anc_w"], "txw"), "anc_x"], "xc")
    h = op("Mul", [op("Exp", [op("Div", [cols[2], "five"], "th5")], "eh"), "anc_h"], "h")
    w = op("Mul", [op("Exp", [op("Div", [cols[3], "five"], "tw5")], "ew"), "anc_w"], "w")
    h2, w2 = op("Div", [h, "two"], "h2"), op("Div", [w, "two"], "w2")
    corners = [op("Sub", [yc, h2], "ymin"), op("Sub", [xc, w2], "xmin"), op("Add", [yc, h2], "ymax"),
               op("Add", [xc, w2], "xmax")]
    if x_first:
        corners = [corners[1], corners[0], corners[3], corners[2]]
    dec = op("Concat", corners, "decoded", axis=2)
    clipped = op("Clip", [dec, "zero", "one"], "clipped")
    N.append(helper.make_node("EfficientNMS_TRT", [clipped, "scores"],
                              ["num_detections", "detection_boxes", "detection_scores", "detection_classes"],
                              name="nms", score_threshold=0.3, iou_threshold=0.6, max_output_boxes=20,
                              background_class=0, score_activation=0, box_coding=0, plugin_version="1"))
    g.node.extend(N)
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info("num_detections", I32, ["N", 1]),
                     helper.make_tensor_value_info("detection_boxes", F32, ["N", 20, 4]),
                     helper.make_tensor_value_info("detection_scores", F32, ["N", 20]),
                     helper.make_tensor_value_info("detection_classes", I32, ["N", 20])])
    onnx.save(m, str(dst))


@pytest.mark.parametrize("order", ["yxyx", "xyxy"])
def test_pipeline_reads_efficient_nms_outputs(cli, tmp_path, order):
    assert "max_per_class=20;max_total=20" in TINY_DETECT and "iou=0.6" in TINY_DETECT
    paths = make_models.build_models(str(tmp_path), only=["tiny_ssd"], verbose=False)
    raw_onnx, nms_onnx = tmp_path / "raw.onnx", tmp_path / "nms.onnx"
    add_anchor_output(Path(paths["tiny_ssd"]), raw_onnx)
    tiny_ssd_with_nms(Path(paths["tiny_ssd"]), nms_onnx, x_first=order == "xyxy")
    raw_rie, nms_rie = tmp_path / "raw.rie", tmp_path / "nms.rie"
    build_engine(cli, raw_onnx, raw_rie, 8, tiny_meta())
    meta = {"preprocess": TINY_PREPROCESS, "task": "detect", "labels": "\n".join(TINY_LABELS)}
    if order == "xyxy":  # explicit names too, instead of the plugin's defaults
        meta.update({"detect.box_order": "xyxy", "detect.boxes": "detection_boxes", "detect.scores":
                     "detection_scores", "detect.classes": "detection_classes", "detect.count": "num_detections"})
    build_engine(cli, nms_onnx, nms_rie, 8, meta)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(20):
        make_noise_image(imgs / f"im{i:02d}.{'png' if i % 4 == 0 else 'jpg'}", 30 + 13 * i, 25 + 7 * i, seed=100 + i)
    rows = {}
    for name, rie in (("raw", raw_rie), ("nms", nms_rie)):
        out = tmp_path / f"{name}.txt"
        p = run([cli, "run", "--engine", str(rie), "--dir", str(imgs), "--output", str(out), "--no-progress",
                 "--ordered"])
        assert p.returncode == 0, f"{name}: {describe(p)}"
        rows[name] = parse_seed(out.read_bytes())
    assert [k for k, _, _ in rows["raw"]] == [k for k, _, _ in rows["nms"]]
    n_dets = 0
    for (key, dr, _), (_, dn, _) in zip(rows["raw"], rows["nms"]):
        assert [d["class"] for d in dr] == [d["class"] for d in dn], key
        for a, b in zip(dr, dn):
            assert a["label"] == b["label"]
            assert abs(a["score"] - b["score"]) <= 1e-5
            ba = [a["ymin"], a["xmin"], a["ymax"], a["xmax"]]
            bb = [b["ymin"], b["xmin"], b["ymax"], b["xmax"]]
            assert _iou(ba, bb) >= 0.999, (key, a, b)
        n_dets += len(dr)
    assert n_dets > 0
