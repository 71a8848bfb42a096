#!/usr/bin/env python3
"""Train runinfer's embedded demo detector (a tiny SSD) on the shapes data set, on the CPU, with JAX.

    python models/shapes/train.py                     # train, export, evaluate (defaults as committed)
    python models/shapes/train.py --eval-only         # evaluate the committed ONNX on held-out images
    python models/shapes/train.py --steps 200 --train-count 500 --out /tmp/s   # a quick smoke run

Model: input `image` [N,3,128,128] float32 (RGB, (x - 127.5) / 127.5 after a bilinear stretch with
half-pixel centres, as runinfer's preprocessing does it). Backbone: a 3x3 stride-2 conv and eight
depthwise-separable blocks (depthwise 3x3 + ReLU, pointwise 1x1 + ReLU), MobileNet style, no batch norm.
Three feature maps (16x16x48, 8x8x96, 4x4x128) each feed a 1x1 box head and a 1x1 class head.
Outputs `raw_boxes` [N,1008,4] (ty, tx, th, tw, centre-size coding scaled by 10, 10, 5, 5) and
`raw_scores` [N,1008,4] (logits; column 0 background, columns 1..3 circle, square, triangle; scored
with a softmax over the row).

Anchors are those of TF-OD's ssd_anchor_generator for: num_layers 3, min_scale 0.15, max_scale 0.5,
aspect_ratios [1.0, 0.6], interpolated_scale_aspect_ratio 1.0, reduce_boxes_in_lowest_layer false,
base anchor 1x1, offset 0.5, feature maps 16, 8, 4 (3 anchors per cell, 1008 in all).

Training: targets by IoU matching (>= 0.5, plus each ground-truth box's best anchor), softmax
cross-entropy with 3:1 hard negative mining, smooth-L1 box loss, Adam with a cosine learning rate,
random horizontal/vertical flips (the anchor grid is symmetric, so a flip permutes the targets).
The training images come from make_shapes.render() with a seed other than any evaluation seed and go
through the same JPEG/PNG encode and decode as the files the generator writes.

Writes into --out (default: this folder): shapes_ssd.onnx, labels.txt, engine_meta.txt.
Needs numpy, Pillow, onnx, onnxruntime, and jax (CPU) for training: `pip install jax`.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_shapes  # noqa: E402

# ---- configuration shared by the model, the anchors and the engine metadata -------------------------------
INPUT = 128
FEATURE_MAPS = [16, 8, 4]
MIN_SCALE, MAX_SCALE = 0.15, 0.5
RATIOS = [1.0, 0.6]
INTERP_RATIO = 1.0
REDUCE_LOWEST = 0
OFFSET = 0.5
BOX_SCALE = [10.0, 10.0, 5.0, 5.0]
NUM_COLS = make_shapes.NUM_CLASSES + 1
MEAN = 127.5
SCALE = float(np.float32(1.0 / 127.5))
SCORE_THRESHOLD = 0.3
NMS_IOU = 0.45
MAX_PER_CLASS = 10
MAX_TOTAL = 20

PREPROCESS = (f"size={INPUT}x{INPUT};layout=nchw;dtype=float32;mean=127.5,127.5,127.5;"
              f"scale={SCALE:.9g},{SCALE:.9g},{SCALE:.9g};resize=bilinear;pad=0,0,0;order=rgb")
DETECT = ("anchors=ssd;layers=3;min_scale=0.15;max_scale=0.5;ratios=1,0.6;reduce_lowest=0;interp_ratio=1;"
          "base=1,1;offset=0.5;fm=16x16,8x8,4x4;coding=center;box_scale=10,10,5,5;box_order=yxhw;"
          f"score=softmax;background=1;score_threshold={SCORE_THRESHOLD};iou={NMS_IOU};"
          f"max_per_class={MAX_PER_CLASS};max_total={MAX_TOTAL}")

# backbone: (kind, out channels, stride); kind "conv" = full 3x3 conv, "ds" = depthwise-separable block
BACKBONE = [("conv", 16, 2), ("ds", 24, 2), ("ds", 32, 1), ("ds", 48, 2), ("ds", 48, 1),
            ("ds", 96, 2), ("ds", 96, 1), ("ds", 128, 2), ("ds", 128, 1)]
FEATURE_LAYERS = [4, 6, 8]  # BACKBONE indices whose outputs feed the heads (16x16, 8x8, 4x4)


# ---- anchors ------------------------------------------------------------------------------------------------
def layer_box_specs():
    """Per layer, the (scale, aspect ratio) list in TF-OD ssd_anchor_generator order."""
    n = len(FEATURE_MAPS)
    f32 = np.float32
    scales = [f32(MIN_SCALE) + (f32(MAX_SCALE) - f32(MIN_SCALE)) * f32(i) / f32(n - 1) for i in range(n)] + [1.0]
    specs = []
    for i in range(n):
        if i == 0 and REDUCE_LOWEST:
            specs.append([(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)])
            continue
        s = [(scales[i], r) for r in RATIOS]
        if INTERP_RATIO > 0:
            s.append((math.sqrt(float(scales[i]) * float(scales[i + 1])), INTERP_RATIO))
        specs.append(s)
    return specs


def ssd_anchors() -> np.ndarray:
    """Anchors as (ycenter, xcenter, h, w) rows: layer, then cell row-major, then the cell's boxes."""
    rows = []
    for fm, specs in zip(FEATURE_MAPS, layer_box_specs()):
        hw = [(s / math.sqrt(r), s * math.sqrt(r)) for s, r in specs]
        for y in range(fm):
            for x in range(fm):
                for h, w in hw:
                    rows.append(((y + OFFSET) / fm, (x + OFFSET) / fm, h, w))
    return np.asarray(rows, dtype=np.float32)


ANCHORS = ssd_anchors()
NUM_ANCHORS = len(ANCHORS)
PER_CELL = [len(s) for s in layer_box_specs()]


def flip_permutation(axis: str) -> np.ndarray:
    """perm such that targets of the flipped image are targets[perm] (axis 'x' or 'y')."""
    perm = []
    off = 0
    for fm, a in zip(FEATURE_MAPS, PER_CELL):
        for y in range(fm):
            for x in range(fm):
                yy, xx = (y, fm - 1 - x) if axis == "x" else (fm - 1 - y, x)
                for k in range(a):
                    perm.append(off + (yy * fm + xx) * a + k)
        off += fm * fm * a
    return np.asarray(perm, dtype=np.int32)


# ---- preprocessing (runinfer's bilinear stretch with half-pixel centres) -----------------------------------
def _axis_table(n_in: int, n_out: int):
    f = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    f = np.maximum(f, 0.0)
    i0 = np.floor(f).astype(np.int64)
    w = f - i0
    last = i0 >= n_in - 1
    i0 = np.minimum(i0, n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w[last] = 0.0
    return i0, i1, w.astype(np.float32)


def resize_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (out_h, out_w, 3) float32 in 0..255."""
    y0, y1, wy = _axis_table(img.shape[0], out_h)
    x0, x1, wx = _axis_table(img.shape[1], out_w)
    a = img.astype(np.float32)
    rows = a[y0] * (1 - wy)[:, None, None] + a[y1] * wy[:, None, None]
    return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


def normalise(resized: np.ndarray) -> np.ndarray:
    return (resized - np.float32(MEAN)) * np.float32(SCALE)


def load_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# ---- box coding and target assignment ---------------------------------------------------------------------
def corners(yxhw: np.ndarray) -> np.ndarray:
    yc, xc, h, w = yxhw[..., 0], yxhw[..., 1], yxhw[..., 2], yxhw[..., 3]
    return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)


ANCHOR_CORNERS = corners(ANCHORS)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of corner boxes a [n,4] x b [m,4] (ymin, xmin, ymax, xmax)."""
    iy = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ix = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iy * ix
    aa = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    ab = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(aa[:, None] + ab[None, :] - inter, 1e-12)


def encode_boxes(gt: np.ndarray) -> np.ndarray:
    """Corner boxes [A,4] -> (ty, tx, th, tw) against ANCHORS."""
    h = gt[:, 2] - gt[:, 0]
    w = gt[:, 3] - gt[:, 1]
    yc = gt[:, 0] + h / 2
    xc = gt[:, 1] + w / 2
    ya, xa, ha, wa = ANCHORS.T
    return np.stack([(yc - ya) / ha * BOX_SCALE[0], (xc - xa) / wa * BOX_SCALE[1],
                     np.log(h / ha) * BOX_SCALE[2], np.log(w / wa) * BOX_SCALE[3]], axis=1).astype(np.float32)


def decode_boxes(t: np.ndarray) -> np.ndarray:
    """(ty, tx, th, tw) [..., A, 4] -> corner boxes, as runinfer's centre-size decoder."""
    ya, xa, ha, wa = ANCHORS.T
    yc = t[..., 0] / BOX_SCALE[0] * ha + ya
    xc = t[..., 1] / BOX_SCALE[1] * wa + xa
    h = np.exp(t[..., 2] / BOX_SCALE[2]) * ha
    w = np.exp(t[..., 3] / BOX_SCALE[3]) * wa
    return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)


def assign_targets(boxes: np.ndarray, classes: np.ndarray, pos_iou: float = 0.5):
    """Per anchor: class target (0 background) and encoded box target."""
    cls_t = np.zeros(NUM_ANCHORS, dtype=np.int32)
    box_t = np.zeros((NUM_ANCHORS, 4), dtype=np.float32)
    if len(boxes) == 0:
        return cls_t, box_t
    iou = iou_matrix(boxes, ANCHOR_CORNERS)  # [G, A]
    best_gt = iou.argmax(axis=0)
    best_iou = iou.max(axis=0)
    for g in range(len(boxes)):  # every ground-truth box keeps at least its best anchor
        a = int(iou[g].argmax())
        best_gt[a] = g
        best_iou[a] = 1.0
    pos = best_iou >= pos_iou
    cls_t[pos] = classes[best_gt[pos]]
    box_t[pos] = encode_boxes(boxes[best_gt])[pos]
    return cls_t, box_t


# ---- data -------------------------------------------------------------------------------------------------------
def make_training_set(count: int, seed: int, log=print):
    """count rendered images, encoded and decoded like the generator's files, preprocessed and matched."""
    rng = np.random.default_rng(seed)
    x = np.zeros((count, INPUT, INPUT, 3), dtype=np.float16)
    cls_t = np.zeros((count, NUM_ANCHORS), dtype=np.int32)
    box_t = np.zeros((count, NUM_ANCHORS, 4), dtype=np.float32)
    t0 = time.time()
    for i in range(count):
        img, objs = make_shapes.render(rng)
        fmt = "jpg" if i % 2 == 0 else "png"
        img = load_rgb(make_shapes.encode(img, fmt, int(rng.integers(75, 96))))
        h, w = img.shape[:2]
        x[i] = normalise(resize_bilinear(img, INPUT, INPUT))
        b = np.asarray([[o["ymin"] / h, o["xmin"] / w, o["ymax"] / h, o["xmax"] / w] for o in objs], np.float32)
        c = np.asarray([o["class"] for o in objs], np.int32)
        cls_t[i], box_t[i] = assign_targets(b.reshape(-1, 4), c)
        if (i + 1) % 1000 == 0:
            log(f"  data {i + 1}/{count} ({time.time() - t0:.0f} s)")
    return x, cls_t, box_t


# ---- model (JAX, NHWC inside; exported as NCHW ONNX) -------------------------------------------------------
def init_params(seed: int):
    rng = np.random.default_rng(seed)

    def he(shape, fan_in):
        return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(np.float32)

    params = {"backbone": [], "heads": []}
    cin = 3
    for kind, cout, _stride in BACKBONE:
        if kind == "conv":
            params["backbone"].append({"w": he((3, 3, cin, cout), 9 * cin), "b": np.zeros(cout, np.float32)})
        else:
            params["backbone"].append({"dw": he((3, 3, 1, cin), 9), "dwb": np.zeros(cin, np.float32),
                                       "pw": he((1, 1, cin, cout), cin), "pwb": np.zeros(cout, np.float32)})
        cin = cout
    for li, a in zip(FEATURE_LAYERS, PER_CELL):
        c = BACKBONE[li][1]
        # class head starts at background-leaning logits so early training is stable
        cb = np.zeros((a, NUM_COLS), np.float32)
        cb[:, 0] = 4.0
        params["heads"].append({
            "bw": (rng.standard_normal((1, 1, c, a * 4)) * 0.01).astype(np.float32),
            "bb": np.zeros(a * 4, np.float32),
            "cw": (rng.standard_normal((1, 1, c, a * NUM_COLS)) * 0.01).astype(np.float32),
            "cb": cb.reshape(-1)})
    return params


def forward(params, x):
    """x [N,128,128,3] -> (raw_boxes [N,A,4], raw_scores [N,A,C+1])."""
    import jax
    import jax.numpy as jnp

    def conv(v, w, b, stride, groups=1):
        k = w.shape[0]
        p = k // 2
        y = jax.lax.conv_general_dilated(v, w, (stride, stride), [(p, p), (p, p)],
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                         feature_group_count=groups)
        return y + b

    def depthwise(v, w, b, stride):
        # XLA's grouped convolution is very slow on the CPU; nine shifted multiply-adds are the same sum
        n, h, wd, _c = v.shape
        vp = jnp.pad(v, ((0, 0), (1, 1), (1, 1), (0, 0)))
        oh, ow = (h - 1) // stride + 1, (wd - 1) // stride + 1
        acc = b
        for i in range(3):
            for j in range(3):
                acc = acc + vp[:, i:i + (oh - 1) * stride + 1:stride, j:j + (ow - 1) * stride + 1:stride, :] * w[i, j, 0]
        return acc

    feats = []
    v = x
    for i, ((kind, _cout, stride), p) in enumerate(zip(BACKBONE, params["backbone"])):
        if kind == "conv":
            v = jax.nn.relu(conv(v, p["w"], p["b"], stride))
        else:
            v = jax.nn.relu(depthwise(v, p["dw"], p["dwb"], stride))
            v = jax.nn.relu(conv(v, p["pw"], p["pwb"], 1))
        if i in FEATURE_LAYERS:
            feats.append(v)
    boxes, scores = [], []
    n = x.shape[0]
    for f, p in zip(feats, params["heads"]):
        boxes.append(conv(f, p["bw"], p["bb"], 1).reshape(n, -1, 4))
        scores.append(conv(f, p["cw"], p["cb"], 1).reshape(n, -1, NUM_COLS))
    return jnp.concatenate(boxes, axis=1), jnp.concatenate(scores, axis=1)


def loss_fn(params, x, cls_t, box_t, neg_ratio: float = 3.0):
    import jax
    import jax.numpy as jnp

    boxes, logits = forward(params, x)
    logp = jax.nn.log_softmax(logits, axis=-1)
    ce = -jnp.take_along_axis(logp, cls_t[..., None], axis=-1)[..., 0]  # [N, A]
    pos = cls_t > 0
    npos = pos.sum(axis=1)
    neg_loss = jax.lax.stop_gradient(jnp.where(pos, -jnp.inf, ce))
    k = jnp.clip(jnp.round(neg_ratio * npos), 8, NUM_ANCHORS - 1).astype(jnp.int32)
    srt = -jnp.sort(-neg_loss, axis=1)
    thresh = jnp.take_along_axis(srt, (k - 1)[:, None], axis=1)
    neg = (neg_loss >= thresh) & ~pos
    total_pos = jnp.maximum(npos.sum(), 1)
    cls_loss = jnp.sum(ce * (pos | neg)) / total_pos
    d = jnp.abs(boxes - box_t)
    huber = jnp.where(d < 1.0, 0.5 * d * d, d - 0.5).sum(axis=-1)
    box_loss = jnp.sum(huber * pos) / total_pos
    return cls_loss + box_loss, (cls_loss, box_loss)


# ---- ONNX export -----------------------------------------------------------------------------------------------
def export_onnx(params, path: str):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def conv(x, name, w_hwio, b, stride, groups=1):
        w = np.ascontiguousarray(np.transpose(np.asarray(w_hwio), (3, 2, 0, 1)))  # -> OIHW
        k = w.shape[2]
        p = k // 2
        nodes.append(helper.make_node("Conv", [x, const(name + "/W", w), const(name + "/B", np.asarray(b))],
                                      [name], name=name, kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[p, p, p, p], group=groups))
        return name

    def relu(x, name):
        nodes.append(helper.make_node("Relu", [x], [name], name=name))
        return name

    v = "image"
    cin = 3
    feats = []
    for i, ((kind, cout, stride), p) in enumerate(zip(BACKBONE, params["backbone"])):
        if kind == "conv":
            v = relu(conv(v, f"b{i}/conv", p["w"], p["b"], stride), f"b{i}/relu")
        else:
            v = relu(conv(v, f"b{i}/dw", p["dw"], p["dwb"], stride, groups=cin), f"b{i}/dw_relu")
            v = relu(conv(v, f"b{i}/pw", p["pw"], p["pwb"], 1), f"b{i}/pw_relu")
        cin = cout
        if i in FEATURE_LAYERS:
            feats.append(v)
    shape4 = const("shape_boxes", np.asarray([0, -1, 4], np.int64))
    shapec = const("shape_scores", np.asarray([0, -1, NUM_COLS], np.int64))
    outs = {"raw_boxes": [], "raw_scores": []}
    for j, (f, p) in enumerate(zip(feats, params["heads"])):
        for key, wk, bk, shp in (("raw_boxes", "bw", "bb", shape4), ("raw_scores", "cw", "cb", shapec)):
            name = f"head{j}/{key}"
            y = conv(f, name + "/conv", p[wk], p[bk], 1)
            nodes.append(helper.make_node("Transpose", [y], [name + "/nhwc"], name=name + "/nhwc", perm=[0, 2, 3, 1]))
            nodes.append(helper.make_node("Reshape", [name + "/nhwc", shp], [name + "/rows"], name=name + "/rows"))
            outs[key].append(name + "/rows")
    for key, parts in outs.items():
        nodes.append(helper.make_node("Concat", parts, [key], name=key, axis=1))
    graph = helper.make_graph(
        nodes, "shapes_ssd",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, INPUT, INPUT])],
        [helper.make_tensor_value_info("raw_boxes", TensorProto.FLOAT, ["N", NUM_ANCHORS, 4]),
         helper.make_tensor_value_info("raw_scores", TensorProto.FLOAT, ["N", NUM_ANCHORS, NUM_COLS])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="runinfer-shapes")
    model.ir_version = 8
    model.doc_string = "runinfer demo detector (models/shapes/train.py); anchors and metadata: engine_meta.txt"
    onnx.checker.check_model(model)
    onnx.save(model, path)


# ---- post-processing and evaluation (the same rules as runinfer's detector) ------------------------------
def postprocess(raw_boxes: np.ndarray, raw_scores: np.ndarray, width: int, height: int,
                score_threshold: float = SCORE_THRESHOLD):
    """One image's outputs -> list of (ymin, xmin, ymax, xmax, score, class) in image pixels."""
    b = np.clip(decode_boxes(raw_boxes.astype(np.float64)), 0.0, 1.0)
    s = raw_scores.astype(np.float64)
    s = np.exp(s - s.max(axis=1, keepdims=True))
    s /= s.sum(axis=1, keepdims=True)
    valid = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    dets = []
    for c in range(1, NUM_COLS):
        idx = np.nonzero(valid & (s[:, c] > score_threshold))[0]
        idx = idx[np.argsort(-s[idx, c], kind="stable")]
        kept = []
        for a in idx:
            if len(kept) >= MAX_PER_CLASS:
                break
            if kept and iou_matrix(b[a:a + 1], b[kept]).max() > NMS_IOU:
                continue
            kept.append(a)
        dets += [(s[a, c], a, c) for a in kept]
    dets.sort(key=lambda d: (-d[0], d[1], d[2]))
    return [(b[a, 0] * height, b[a, 1] * width, b[a, 2] * height, b[a, 3] * width, sc, c)
            for sc, a, c in dets[:MAX_TOTAL]]


def voc_map(preds, gts, iou_thr: float = 0.5):
    """mAP over classes 1..C with VOC all-point interpolation.
    preds: {image: [(ymin, xmin, ymax, xmax, score, class)]}; gts: {image: [(ymin, xmin, ymax, xmax, class)]}."""
    aps = {}
    for c in range(1, NUM_COLS):
        gt_c = {k: np.asarray([g[:4] for g in v if g[4] == c], np.float64).reshape(-1, 4) for k, v in gts.items()}
        used = {k: np.zeros(len(v), bool) for k, v in gt_c.items()}
        npos = sum(len(v) for v in gt_c.values())
        det = sorted(((p[4], k, p[:4]) for k, v in preds.items() for p in v if p[5] == c), key=lambda d: -d[0])
        tp = np.zeros(len(det))
        for i, (_s, k, box) in enumerate(det):
            g = gt_c.get(k, np.zeros((0, 4)))
            if len(g):
                ious = iou_matrix(np.asarray([box], np.float64), g)[0]
                j = int(ious.argmax())
                if ious[j] >= iou_thr and not used[k][j]:
                    used[k][j] = True
                    tp[i] = 1
        ctp = np.cumsum(tp)
        rec = ctp / max(npos, 1)
        prec = ctp / np.arange(1, len(det) + 1)
        mrec = np.concatenate([[0.0], rec, [1.0]])
        mpre = np.concatenate([[0.0], prec, [0.0]])
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = max(mpre[i], mpre[i + 1])
        ch = np.nonzero(mrec[1:] != mrec[:-1])[0]
        aps[c] = float(np.sum((mrec[ch + 1] - mrec[ch]) * mpre[ch + 1]))
    return float(np.mean(list(aps.values()))), aps


def evaluate_onnx(onnx_path: str, count: int, seed: int, score_threshold: float = SCORE_THRESHOLD):
    """Generate held-out files, run the ONNX model with onnxruntime, post-process, return (mAP, per class)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    with tempfile.TemporaryDirectory() as d:
        gt = make_shapes.generate(d, count, seed)
        preds, gts = {}, {}
        for im in gt["images"]:
            with open(im["path"], "rb") as f:
                img = load_rgb(f.read())
            x = np.transpose(normalise(resize_bilinear(img, INPUT, INPUT)), (2, 0, 1))[None].astype(np.float32)
            rb, rs = sess.run(["raw_boxes", "raw_scores"], {"image": x})
            preds[im["file"]] = postprocess(rb[0], rs[0], im["width"], im["height"], score_threshold)
            gts[im["file"]] = [(o["ymin"], o["xmin"], o["ymax"], o["xmax"], o["class"]) for o in im["objects"]]
    return voc_map(preds, gts)


# ---- training ---------------------------------------------------------------------------------------------------
def train(args, log=print):
    import jax
    import jax.numpy as jnp

    t_start = time.time()
    log(f"generating {args.train_count} training images (seed {args.seed}) ...")
    x, cls_t, box_t = make_training_set(args.train_count, args.seed, log)
    t_data = time.time() - t_start
    log(f"data ready in {t_data:.0f} s; positives per image {np.mean((cls_t > 0).sum(1)):.1f}")
    perm_x, perm_y = flip_permutation("x"), flip_permutation("y")

    params = jax.tree_util.tree_map(jnp.asarray, init_params(args.seed))
    opt_m = jax.tree_util.tree_map(jnp.zeros_like, params)
    opt_v = jax.tree_util.tree_map(jnp.zeros_like, params)
    b1, b2, eps = 0.9, 0.999, 1e-8

    @jax.jit
    def step(params, m, v, t, lr, xb, cb, bb):
        (loss, parts), g = jax.value_and_grad(loss_fn, has_aux=True)(params, xb, cb, bb)
        m = jax.tree_util.tree_map(lambda a, b: b1 * a + (1 - b1) * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: b2 * a + (1 - b2) * b * b, v, g)
        mh = 1 - b1 ** t
        vh = 1 - b2 ** t
        params = jax.tree_util.tree_map(
            lambda p, a, b: p - lr * (a / mh) / (jnp.sqrt(b / vh) + eps) - lr * args.weight_decay * p, params, m, v)
        return params, m, v, loss, parts

    rng = np.random.default_rng(args.seed + 7)
    n = len(x)
    t_train = time.time()
    hist = []
    for it in range(1, args.steps + 1):
        idx = rng.integers(0, n, size=args.batch)
        xb = x[idx].astype(np.float32)
        cb = cls_t[idx]
        bb = box_t[idx].copy()
        for j in range(args.batch):  # random flips: mirror the image, permute and re-sign the targets
            if rng.random() < 0.5:
                xb[j] = xb[j, :, ::-1]
                cb[j], bb[j] = cb[j][perm_x], bb[j][perm_x]
                bb[j, :, 1] = -bb[j, :, 1]
            if rng.random() < 0.5:
                xb[j] = xb[j, ::-1]
                cb[j], bb[j] = cb[j][perm_y], bb[j][perm_y]
                bb[j, :, 0] = -bb[j, :, 0]
        warm = min(1.0, it / 200)
        lr = args.lr * warm * 0.5 * (1 + math.cos(math.pi * it / args.steps))
        params, opt_m, opt_v, loss, (lc, lb) = step(params, opt_m, opt_v, float(it), lr, xb, cb, bb)
        hist.append((float(lc), float(lb)))
        if it % 100 == 0 or it == args.steps:
            a = np.mean(hist[-100:], axis=0)
            log(f"step {it}/{args.steps} lr {lr:.2e} cls {a[0]:.3f} box {a[1]:.3f} ({time.time() - t_train:.0f} s)")
        if args.checkpoint and (it % 500 == 0 or it == args.steps):
            save_params(jax.tree_util.tree_map(np.asarray, params), args.checkpoint)
    t_fit = time.time() - t_train
    params = jax.tree_util.tree_map(np.asarray, params)
    return params, {"data_s": t_data, "train_s": t_fit, "total_s": time.time() - t_start, "params": params,
                    "x_check": x[:4].astype(np.float32)}


def save_params(params, path: str):
    flat = {f"{part}.{i}.{k}": v for part in ("backbone", "heads") for i, d in enumerate(params[part])
            for k, v in d.items()}
    np.savez(path, **flat)


def load_params(path: str):
    params = {"backbone": [{} for _ in BACKBONE], "heads": [{} for _ in FEATURE_LAYERS]}
    with np.load(path) as z:
        for key in z.files:
            part, i, k = key.split(".")
            params[part][int(i)][k] = z[key]
    return params


def write_side_files(out: str):
    with open(os.path.join(out, "labels.txt"), "w") as f:
        f.write("\n".join(make_shapes.LABELS) + "\n")
    with open(os.path.join(out, "engine_meta.txt"), "w") as f:
        f.write(f"preprocess={PREPROCESS}\n")
        f.write(f"detect={DETECT}\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="train the shapes SSD demo detector")
    ap.add_argument("--out", default=HERE, help="where shapes_ssd.onnx, labels.txt, engine_meta.txt go")
    ap.add_argument("--train-count", type=int, default=6000)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-5)
    ap.add_argument("--seed", type=int, default=1, help="training data and init seed")
    ap.add_argument("--eval-count", type=int, default=300)
    ap.add_argument("--eval-seed", type=int, default=1000, help="held-out images (must differ from --seed)")
    ap.add_argument("--eval-only", action="store_true", help="only evaluate OUT/shapes_ssd.onnx")
    ap.add_argument("--checkpoint", default="", help="also save the weights (.npz) here every 500 steps")
    ap.add_argument("--from-checkpoint", default="", help="skip training: export and evaluate these weights")
    a = ap.parse_args(argv)
    if a.eval_seed == a.seed:
        ap.error("--eval-seed must differ from --seed")
    os.makedirs(a.out, exist_ok=True)
    onnx_path = os.path.join(a.out, "shapes_ssd.onnx")
    if a.from_checkpoint:
        export_onnx(load_params(a.from_checkpoint), onnx_path)
        write_side_files(a.out)
    elif not a.eval_only:
        params, info = train(a)
        export_onnx(params, onnx_path)
        write_side_files(a.out)
        import jax.numpy as jnp
        import onnxruntime as ort

        ref_b, ref_s = forward(params, jnp.asarray(info["x_check"]))
        sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        ob, os_ = sess.run(None, {"image": np.transpose(info["x_check"], (0, 3, 1, 2)).copy()})
        err = max(float(np.abs(ob - np.asarray(ref_b)).max()), float(np.abs(os_ - np.asarray(ref_s)).max()))
        print(f"exported {onnx_path} ({os.path.getsize(onnx_path)} bytes); ONNX vs JAX max |diff| {err:.2e}")
        print(f"time: data {info['data_s']:.0f} s, training {info['train_s']:.0f} s, total {info['total_s']:.0f} s "
              f"(wall clock); process CPU time {time.process_time():.0f} s")
        if err > 1e-3:
            print("export mismatch", file=sys.stderr)
            return 1
    for thr in (SCORE_THRESHOLD, 0.01):
        m, aps = evaluate_onnx(onnx_path, a.eval_count, a.eval_seed, thr)
        per = ", ".join(f"{make_shapes.LABELS[c]} {v:.3f}" for c, v in aps.items())
        print(f"held-out mAP@0.5 ({a.eval_count} images, seed {a.eval_seed}, score > {thr}): {m:.4f} ({per})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
