"""The embedded demo detector (models/shapes) really detects, through runinfer's whole pipeline.

Generates held-out images (a seed that training never used), builds an engine from the committed
shapes_ssd.onnx with the metadata of engine_meta.txt and labels.txt, runs `runinfer run` at batch sizes
1, 8 and 32, and checks:
  - the rows are byte-identical across batch sizes, one per image, in list order;
  - every detection is well formed: box inside the original image (pixels), ymin < ymax, xmin < xmax,
    class id 1..3 with its label from labels.txt, score above the threshold, sorted by score;
  - mAP@0.5 (VOC all-point interpolation) against the generator's ground truth is at least 0.8.
A second test checks train.py's anchors and metadata against libruninfer through ctypes.
Skips when the CLI (or, for the anchors, the shared library) is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, cli_missing_reason, find_cli

SHAPES = REPO_ROOT / "models" / "shapes"
sys.path.insert(0, str(SHAPES))
make_shapes = pytest.importorskip("make_shapes", reason="models/shapes/make_shapes.py needs Pillow")

HELD_OUT_SEED = 4242  # train.py trains on seed 1 and reports its own evaluation on seed 1000
HELD_OUT_COUNT = 60
MAP_FLOOR = 0.8
BATCHES = (1, 8, 32)


def read_meta() -> dict:
    meta = {}
    for line in (SHAPES / "engine_meta.txt").read_text().splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            meta[key] = value
    return meta


def parse_rows(text: str) -> list[tuple[str, list[dict]]]:
    """Rows of the default output format: `key;[json array]` (a key with special characters is a JSON
    string)."""
    rows = []
    for line in text.splitlines():
        if line.startswith('"'):
            key, end = json.JSONDecoder().raw_decode(line)
            assert line[end] == ";", line
            rest = line[end + 1:]
        else:
            key, sep, rest = line.partition(";")
            assert sep, f"row without ';': {line!r}"
        rows.append((key, json.loads(rest)))
    return rows


def iou(a, b) -> float:
    iy = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ix = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iy * ix
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def average_precision(scored_hits: list[tuple[float, bool]], num_gt: int) -> float:
    """VOC all-point interpolated AP from (score, is true positive) pairs."""
    if num_gt == 0:
        return float("nan")
    scored_hits = sorted(scored_hits, key=lambda s: -s[0])
    tp = np.cumsum([1.0 if hit else 0.0 for _, hit in scored_hits])
    fp = np.cumsum([0.0 if hit else 1.0 for _, hit in scored_hits])
    recall = np.concatenate([[0.0], tp / num_gt if len(tp) else [], [1.0]])
    precision = np.concatenate([[0.0], tp / np.maximum(tp + fp, 1e-12) if len(tp) else [], [0.0]])
    for i in range(len(precision) - 2, -1, -1):  # precision envelope, right to left
        precision[i] = max(precision[i], precision[i + 1])
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def mean_ap(detections: dict, truth: dict, classes: list[int], iou_threshold: float = 0.5):
    """detections / truth: {image: [dict with ymin, xmin, ymax, xmax, class (, score)]}."""
    aps = {}
    for c in classes:
        gts = {k: [g for g in v if g["class"] == c] for k, v in truth.items()}
        matched = {k: [False] * len(v) for k, v in gts.items()}
        dets = sorted(((d["score"], k, d) for k, v in detections.items() for d in v if d["class"] == c),
                      key=lambda t: -t[0])
        hits = []
        for score, k, d in dets:
            box = (d["ymin"], d["xmin"], d["ymax"], d["xmax"])
            best, best_j = 0.0, -1
            for j, g in enumerate(gts.get(k, [])):
                o = iou(box, (g["ymin"], g["xmin"], g["ymax"], g["xmax"]))
                if o > best:
                    best, best_j = o, j
            hit = best >= iou_threshold and not matched[k][best_j]
            if hit:
                matched[k][best_j] = True
            hits.append((score, hit))
        aps[c] = average_precision(hits, sum(len(v) for v in gts.values()))
    return float(np.nanmean(list(aps.values()))), aps


def test_average_precision_helper():
    # two ground truths, detections: hit (0.9), miss (0.8), hit (0.7): precision 1 up to recall 0.5,
    # then 2/3 up to recall 1 -> AP = 0.5 * 1 + 0.5 * 2/3
    ap = average_precision([(0.9, True), (0.8, False), (0.7, True)], 2)
    assert abs(ap - (0.5 + 1.0 / 3.0)) < 1e-12
    assert average_precision([], 3) == 0.0
    assert average_precision([(0.5, False), (0.4, True)], 1) == 0.5


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    cli = find_cli()
    if cli is None:
        pytest.skip(cli_missing_reason())
    work = tmp_path_factory.mktemp("shapes")
    gt = make_shapes.generate(str(work / "images"), HELD_OUT_COUNT, HELD_OUT_SEED)
    meta = read_meta()
    labels = (SHAPES / "labels.txt").read_text().rstrip("\n")
    engine = work / "shapes.rie"
    cmd = [cli, "build", "--onnx", str(SHAPES / "shapes_ssd.onnx"), "--save", str(engine), "--max-batch", "32",
           "--meta", f"preprocess={meta['preprocess']}", "--meta", f"detect={meta['detect']}",
           "--meta", f"labels={labels}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"runinfer build failed ({r.returncode}):\n{r.stderr}"
    outputs = {}
    for b in BATCHES:
        out = work / f"preds_b{b}.txt"
        cmd = [cli, "run", "--engine", str(engine), "--input", str(work / "images" / "list.txt"), "--output",
               str(out), "--max-batch", str(b), "--ordered", "--no-progress"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"runinfer run --max-batch {b} failed ({r.returncode}):\n{r.stderr}"
        outputs[b] = out.read_text()
    return gt, labels.split("\n"), outputs


def test_rows_identical_across_batch_sizes(shapes_run):
    _gt, _labels, outputs = shapes_run
    first = outputs[BATCHES[0]]
    for b in BATCHES[1:]:
        if outputs[b] != first:
            diff = [(x, y) for x, y in zip(first.splitlines(), outputs[b].splitlines()) if x != y]
            pytest.fail(f"batch {b} rows differ from batch {BATCHES[0]}: {len(diff)} rows, first: {diff[:1]}")


def test_rows_well_formed(shapes_run):
    gt, labels, outputs = shapes_run
    rows = parse_rows(outputs[BATCHES[-1]])
    images = gt["images"]
    assert [k for k, _ in rows] == [im["path"] for im in images], "one row per image, in list order"
    threshold = float(dict(kv.split("=") for kv in read_meta()["detect"].split(";"))["score_threshold"])
    assert labels[0] == "background" and len(labels) == make_shapes.NUM_CLASSES + 1
    total = 0
    for (key, dets), im in zip(rows, images):
        scores = [d["score"] for d in dets]
        assert scores == sorted(scores, reverse=True), key
        for d in dets:
            total += 1
            assert 1 <= d["class"] <= make_shapes.NUM_CLASSES, d
            assert d["label"] == labels[d["class"]] == make_shapes.LABELS[d["class"]], d
            assert threshold < d["score"] <= 1.0, d
            assert 0.0 <= d["ymin"] < d["ymax"] <= im["height"], (key, d)
            assert 0.0 <= d["xmin"] < d["xmax"] <= im["width"], (key, d)
    assert total > 0


def test_map_at_least_floor(shapes_run):
    gt, _labels, outputs = shapes_run
    rows = dict(parse_rows(outputs[BATCHES[0]]))
    truth = {im["path"]: im["objects"] for im in gt["images"]}
    m, aps = mean_ap(rows, truth, list(range(1, make_shapes.NUM_CLASSES + 1)))
    per_class = ", ".join(f"{make_shapes.LABELS[c]} {v:.3f}" for c, v in aps.items())
    print(f"shapes mAP@0.5 over {len(truth)} held-out images: {m:.4f} ({per_class})")
    assert m >= MAP_FLOOR, f"mAP@0.5 {m:.4f} < {MAP_FLOOR} ({per_class})"


def test_anchors_match_library():
    lib = os.environ.get("RI_LIB", str(REPO_ROOT / "build" / "libruninfer.so"))
    if not Path(lib).is_file():
        pytest.skip(f"libruninfer.so not found at {lib} (set $RI_LIB)")
    r = subprocess.run([sys.executable, str(SHAPES / "check_anchors.py"), "--lib", lib], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "check_anchors: OK" in r.stdout
