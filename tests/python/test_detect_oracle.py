"""Oracle test of the SSD detection post-processing (decode + class-aware NMS) against an independent
NumPy implementation of TF Object Detection API semantics, on real model outputs.

The raw outputs come from the SSD MobileNetV2 reference model (models/make_models.py, 1917 anchors, 91
score columns) run through `runinfer infer` on random inputs. Our side is the public C API through ctypes
on libruninfer.so (ri_detect_config_parse, ri_detector_create, ri_detector_anchors, ri_detector_run).
The reference below is written from the TF-OD definitions, not from our C code:

  anchors   ssd_anchor_generator / multiple_grid_anchor_generator: scales min + (max-min) i/(L-1), then 1;
            layer 0 reduced to (0.1, 1), (s0, 2), (s0, 0.5); other layers one box per aspect ratio plus
            sqrt(s_i s_i+1) at ratio 1; h = s/sqrt(r), w = s*sqrt(r); centres (i + 0.5)/fm; cell-major order
  decoding  faster_rcnn_box_coder with scale factors 10, 10, 5, 5
  scores    sigmoid, column 0 (background) skipped; class id = score column
  NMS       per class: score > threshold, greedy by score, suppress IoU > 0.6, 100 per class; boxes clipped
            to [0, 1] first and empty ones dropped; union sorted by score, 100 in total

Ties (scores saturate near 1, so equal float32 scores do occur) are broken as the public header documents:
lower anchor first, then lower class. The reference computes in float32 like the model does.

Library: $RI_LIB, else libruninfer.so next to the CLI, else build/libruninfer.so; CLI: $RI_CLI, else
build/runinfer. Skipped when either is missing.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np
import pytest

import make_models
from conftest import REPO_ROOT, cli_missing_reason, find_cli
from pipeline_util import build_engine, describe, run

N_INPUTS = 12
NUM_CLASSES = 91
IOU = 0.6
MAX_PER_CLASS = 100
MAX_TOTAL = 100
DET_DTYPE = np.dtype([("ymin", "<f4"), ("xmin", "<f4"), ("ymax", "<f4"), ("xmax", "<f4"), ("score", "<f4"),
                      ("class_id", "<i4"), ("anchor", "<i4")])


def find_lib() -> str | None:
    env = os.environ.get("RI_LIB")
    cands = [Path(env)] if env else []
    cli = find_cli()
    if cli:
        cands.append(Path(cli).resolve().parent / "libruninfer.so")
    cands.append(REPO_ROOT / "build" / "libruninfer.so")
    for c in cands:
        if c.is_file():
            return str(c)
    return None


class Detector:
    """ri_detector_t through ctypes. ri_detect_config stays opaque here (parsed into a buffer far larger
    than the struct); only the documented public ri_detection layout is read."""

    def __init__(self, lib: ctypes.CDLL, text: str):
        self.lib = lib
        lib.ri_detect_config_parse.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.ri_detect_config_parse.restype = ctypes.c_int
        lib.ri_detector_create.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
        lib.ri_detector_create.restype = ctypes.c_int
        lib.ri_detector_destroy.argtypes = [ctypes.c_void_p]
        lib.ri_detector_last_error.argtypes = [ctypes.c_void_p]
        lib.ri_detector_last_error.restype = ctypes.c_char_p
        lib.ri_detector_anchors.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_float))]
        lib.ri_detector_anchors.restype = ctypes.c_size_t
        lib.ri_detector_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                        ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                        ctypes.POINTER(ctypes.c_size_t)]
        lib.ri_detector_run.restype = ctypes.c_int
        cfg = ctypes.create_string_buffer(8192)
        err = ctypes.create_string_buffer(4 + 512 + 16)  # ri_vision_error {status; char msg[512]}
        s = lib.ri_detect_config_parse(text.encode(), cfg, err)
        assert s == 0, err.raw[4:].split(b"\0")[0]
        self.det = ctypes.c_void_p()
        s = lib.ri_detector_create(cfg, ctypes.byref(self.det), err)
        assert s == 0, err.raw[4:].split(b"\0")[0]

    def anchors(self) -> np.ndarray:
        p = ctypes.POINTER(ctypes.c_float)()
        n = self.lib.ri_detector_anchors(self.det, ctypes.byref(p))
        return np.ctypeslib.as_array(p, shape=(n, 4)).copy()

    def run(self, boxes: np.ndarray, scores: np.ndarray, cap: int = 1000) -> np.ndarray:
        boxes = np.ascontiguousarray(boxes, np.float32)
        scores = np.ascontiguousarray(scores, np.float32)
        out = np.zeros(cap, DET_DTYPE)
        count = ctypes.c_size_t()
        s = self.lib.ri_detector_run(self.det, boxes.ctypes.data, scores.ctypes.data, boxes.shape[0],
                                     scores.shape[1], None, out.ctypes.data, cap, ctypes.byref(count))
        assert s == 0, self.lib.ri_detector_last_error(self.det)
        return out[: count.value]

    def close(self):
        self.lib.ri_detector_destroy(self.det)


# ---------------------------------------------------------------------------------------------------------
# the independent reference
# ---------------------------------------------------------------------------------------------------------
def tfod_anchors(fms=(19, 10, 5, 3, 2, 1), min_scale=0.2, max_scale=0.95, ratios=(1.0, 2.0, 0.5, 3.0, 0.3333),
                 interp=1.0) -> np.ndarray:
    L = len(fms)
    scales = [min_scale + (max_scale - min_scale) * i / (L - 1) for i in range(L)] + [1.0]
    rows = []
    for i, fm in enumerate(fms):
        if i == 0:
            specs = [(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
        else:
            specs = [(scales[i], r) for r in ratios] + [(np.sqrt(scales[i] * scales[i + 1]), interp)]
        sc = np.array([s for s, _ in specs], np.float32)
        rs = np.sqrt(np.array([r for _, r in specs], np.float32))
        h, w = sc / rs, sc * rs
        c = ((np.arange(fm, dtype=np.float32) + np.float32(0.5)) / np.float32(fm)).astype(np.float32)
        for y in range(fm):
            for x in range(fm):
                for k in range(len(specs)):
                    rows.append((c[y], c[x], h[k], w[k]))
    return np.asarray(rows, np.float32)


def decode(raw: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """faster_rcnn_box_coder.decode, scale factors (10, 10, 5, 5); rows (ymin, xmin, ymax, xmax)."""
    f = np.float32
    ya, xa, ha, wa = anchors.T
    ty, tx, th, tw = raw.T
    yc = ty / f(10) * ha + ya
    xc = tx / f(10) * wa + xa
    h = np.exp(th / f(5)) * ha
    w = np.exp(tw / f(5)) * wa
    return np.stack([yc - h / f(2), xc - w / f(2), yc + h / f(2), xc + w / f(2)], axis=1).astype(np.float32)


def iou_one_to_many(b: np.ndarray, others: np.ndarray) -> np.ndarray:
    iy = np.maximum(np.minimum(b[2], others[:, 2]) - np.maximum(b[0], others[:, 0]), 0)
    ix = np.maximum(np.minimum(b[3], others[:, 3]) - np.maximum(b[1], others[:, 1]), 0)
    inter = iy * ix
    union = (b[2] - b[0]) * (b[3] - b[1]) + (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0)


def reference_detect(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, thr: float):
    """[(score, anchor, class, box)] sorted as documented."""
    boxes = np.clip(decode(raw_boxes, anchors), 0, 1)
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    probs = (np.float32(1) / (np.float32(1) + np.exp(-raw_scores.astype(np.float32)))).astype(np.float32)
    out = []
    for c in range(1, probs.shape[1]):
        s = probs[:, c]
        cand = np.nonzero((s > np.float32(thr)) & valid)[0]
        cand = cand[np.lexsort((cand, -s[cand]))]  # score descending, then lower anchor
        kept: list[int] = []
        for a in cand:
            if kept and (iou_one_to_many(boxes[a], boxes[kept]) > np.float32(IOU)).any():
                continue
            kept.append(int(a))
            if len(kept) == MAX_PER_CLASS:
                break
        out += [(float(s[a]), a, c, boxes[a]) for a in kept]
    out.sort(key=lambda t: (-t[0], t[1], t[2]))
    return out[:MAX_TOTAL]


# ---------------------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    path = find_lib()
    if path is None:
        pytest.skip("libruninfer.so not found ($RI_LIB, next to $RI_CLI, build/libruninfer.so)")
    return ctypes.CDLL(path)


@pytest.fixture(scope="module")
def raw_outputs(tmp_path_factory):
    """Raw box encodings [N,1917,4] and class logits [N,1917,91] of the SSD MobileNetV2 reference model on
    N_INPUTS random inputs, computed by `runinfer infer`."""
    cli = find_cli()
    if cli is None:
        pytest.skip(cli_missing_reason())
    d = tmp_path_factory.mktemp("ssd_oracle")
    paths = make_models.build_models(str(d), only=["ssd_mobilenet_v2"], verbose=False)
    rie = d / "ssd.rie"
    build_engine(cli, Path(paths["ssd_mobilenet_v2"]), rie, N_INPUTS, {})
    seed = int(os.environ.get("RI_TEST_SEED", "1234"))
    print(f"seed {seed} (set $RI_TEST_SEED to change)")
    x = np.random.default_rng(seed).standard_normal((N_INPUTS, 3, 300, 300)).astype(np.float32)
    np.save(d / "x.npy", x)
    p = run([cli, "infer", "--engine", str(rie), "--in", f"image={d / 'x.npy'}", "--out", str(d / "out")])
    assert p.returncode == 0, describe(p)
    boxes, scores = np.load(d / "out" / "raw_boxes.npy"), np.load(d / "out" / "raw_scores.npy")
    assert boxes.shape == (N_INPUTS, 1917, 4) and scores.shape == (N_INPUTS, 1917, NUM_CLASSES)
    return boxes, scores


def config_text(thr: float) -> str:
    return (f"anchors=ssd;layers=6;min_scale=0.2;max_scale=0.95;ratios=1,2,0.5,3,0.3333;reduce_lowest=1;"
            f"interp_ratio=1;base=1,1;offset=0.5;fm=19,10,5,3,2,1;coding=center;box_scale=10,10,5,5;"
            f"box_order=yxhw;score=sigmoid;background=1;score_threshold={thr};iou={IOU};"
            f"max_per_class={MAX_PER_CLASS};max_total={MAX_TOTAL}")


# ---------------------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------------------
def test_anchors_match_tfod(lib):
    det = Detector(lib, config_text(0.3))
    try:
        ours = det.anchors()
    finally:
        det.close()
    ref = tfod_anchors()
    assert ours.shape == ref.shape == (1917, 4)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("thr", [0.3, 0.9, 1e-8])
def test_decode_and_nms_match_reference(lib, raw_outputs, thr):
    raw_boxes, raw_scores = raw_outputs
    anchors = tfod_anchors()
    det = Detector(lib, config_text(thr))
    total = 0
    try:
        for i in range(N_INPUTS):
            ours = det.run(raw_boxes[i], raw_scores[i])
            ref = reference_detect(raw_boxes[i], raw_scores[i], anchors, thr)
            assert len(ours) == len(ref), f"input {i}: {len(ours)} detections, reference {len(ref)}"
            assert [(int(o["anchor"]), int(o["class_id"])) for o in ours] == [(a, c) for _, a, c, _ in ref], \
                f"input {i}: different detections (anchor, class) or order"
            for o, (s, a, c, box) in zip(ours, ref):
                assert abs(float(o["score"]) - s) <= 1e-5, (i, a, c, float(o["score"]), s)
                ob = np.array([o["ymin"], o["xmin"], o["ymax"], o["xmax"]], np.float32)
                iou = iou_one_to_many(box.astype(np.float64), ob[None].astype(np.float64))[0]
                assert iou >= 0.999, (i, a, c, ob, box)
            total += len(ours)
    finally:
        det.close()
    assert total > 0, "no detections at all: the comparison saw nothing"
    if thr < 0.5:
        assert total == N_INPUTS * MAX_TOTAL  # many candidates: the cut at max_total is exercised
