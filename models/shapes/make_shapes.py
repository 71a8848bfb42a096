#!/usr/bin/env python3
"""Deterministic generator of the "shapes" detection data set.

    python models/shapes/make_shapes.py --out DIR --count N --seed S

Each image is RGB, W x H with W in 160..320 and H in max(120, 0.6 W)..min(240, W), on a textured
background (low-frequency colour noise, stripes, stray lines, pixel noise). It holds 1 to 4 objects of
three classes; the shape alone tells the class, the colour is drawn per instance:

    class 1 circle, class 2 square, class 3 triangle (pointing up or down)

Object size (the side of its square bounding box) is 15%..50% of the image's short side. Boxes may
overlap a little (IoU <= 0.15, at most 30% of the smaller box covered); later objects cover earlier ones.

Files written into DIR:
    img_NNNNN.jpg / img_NNNNN.png   even indices JPEG (quality 75..95), odd indices PNG
    ground_truth.json               {"labels": [...], "images": [{"file", "path", "width", "height",
                                     "objects": [{"ymin","xmin","ymax","xmax","class","label"}]}]}
    list.txt                        one absolute image path per line, in index order

Boxes are in pixels of the image, continuous coordinates with pixel edges at integers (a shape that
covers columns 10..19 has xmin 10, xmax 20). Class ids are those of runinfer's detection
post-processing with a background score column: column 0 is background, so the classes are 1..3 and
LABELS[i] names class id i.

The same seed gives the same images (pixels and encoded bytes, for a given Pillow build) and the same
ground truth. render(rng) is the in-memory core, used by train.py.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

LABELS = ["background", "circle", "square", "triangle"]
NUM_CLASSES = 3
SUPERSAMPLE = 4


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Colour noise in [-1, 1] of shape (h, w, 3): a random cells x cells grid upsampled bilinearly."""
    grid = rng.uniform(-1.0, 1.0, size=(cells + 1, cells + 1, 3)).astype(np.float32)
    ys = np.linspace(0, cells, h, dtype=np.float32)
    xs = np.linspace(0, cells, w, dtype=np.float32)
    y0 = np.minimum(ys.astype(np.int32), cells - 1)
    x0 = np.minimum(xs.astype(np.int32), cells - 1)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    g00 = grid[y0][:, x0]
    g01 = grid[y0][:, x0 + 1]
    g10 = grid[y0 + 1][:, x0]
    g11 = grid[y0 + 1][:, x0 + 1]
    return (g00 * (1 - fy) * (1 - fx) + g01 * (1 - fy) * fx + g10 * fy * (1 - fx) + g11 * fy * fx)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Float32 (h, w, 3) background in 0..255 (may overshoot; clipped later)."""
    base = rng.uniform(30, 225, size=3).astype(np.float32)
    img = np.broadcast_to(base, (h, w, 3)).astype(np.float32)
    img = img + rng.uniform(15, 60) * _smooth_noise(rng, h, w, int(rng.integers(2, 9)))
    if rng.random() < 0.5:  # stripes / ripples at a random angle
        ang = rng.uniform(0, np.pi)
        period = rng.uniform(6, 40)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        phase = (xx * np.cos(ang) + yy * np.sin(ang)) * (2 * np.pi / period)
        amp = rng.uniform(5, 30)
        img = img + amp * np.sin(phase)[:, :, None] * rng.uniform(0.3, 1.0, size=3).astype(np.float32)
    if rng.random() < 0.5:  # fine texture
        img = img + rng.uniform(5, 20) * _smooth_noise(rng, h, w, int(rng.integers(20, 40)))
    return img


def _stray_lines(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Draw 0..3 random straight lines (distractors that are no class)."""
    n = int(rng.integers(0, 4))
    if n == 0:
        return img
    h, w = img.shape[:2]
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(pil)
    for _ in range(n):
        pts = [(float(rng.uniform(0, w)), float(rng.uniform(0, h))) for _ in range(2)]
        col = tuple(int(c) for c in rng.integers(0, 256, size=3))
        d.line(pts, fill=col, width=int(rng.integers(1, 4)))
    return np.asarray(pil).astype(np.float32)


def _shape_mask(cls: int, size: int, flip: bool) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of shape (size, size) for a shape inscribed in the square."""
    n = size * SUPERSAMPLE
    m = Image.new("L", (n, n), 0)
    d = ImageDraw.Draw(m)
    if cls == 1:
        d.ellipse([0, 0, n - 1, n - 1], fill=255)
    elif cls == 2:
        d.rectangle([0, 0, n - 1, n - 1], fill=255)
    else:
        tri = [(n / 2, 0), (0, n - 1), (n - 1, n - 1)]
        if flip:
            tri = [(n / 2, n - 1), (0, 0), (n - 1, 0)]
        d.polygon(tri, fill=255)
    a = np.asarray(m, dtype=np.float32).reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))
    return a / 255.0


def _overlap_ok(box, boxes) -> bool:
    y0, x0, y1, x1 = box
    for b in boxes:
        iy = max(0.0, min(y1, b[2]) - max(y0, b[0]))
        ix = max(0.0, min(x1, b[3]) - max(x0, b[1]))
        inter = iy * ix
        a1 = (y1 - y0) * (x1 - x0)
        a2 = (b[2] - b[0]) * (b[3] - b[1])
        if inter / (a1 + a2 - inter) > 0.15 or inter / min(a1, a2) > 0.3:
            return False
    return True


def render(rng: np.random.Generator):
    """One image: (uint8 array (H, W, 3), list of objects {ymin, xmin, ymax, xmax, class, label})."""
    w = int(rng.integers(160, 321))
    h = int(rng.integers(max(120, int(0.6 * w)), min(240, w) + 1))
    img = _background(rng, h, w)
    img = _stray_lines(rng, img)
    short = min(h, w)
    objects = []
    boxes = []
    for _ in range(int(rng.integers(1, 5))):
        for _attempt in range(30):
            s = int(round(rng.uniform(0.15, 0.5) * short))
            y0 = int(rng.integers(0, h - s + 1))
            x0 = int(rng.integers(0, w - s + 1))
            box = (float(y0), float(x0), float(y0 + s), float(x0 + s))
            if _overlap_ok(box, boxes):
                break
        else:
            continue
        cls = int(rng.integers(1, NUM_CLASSES + 1))
        flip = bool(rng.random() < 0.5)
        region = img[y0:y0 + s, x0:x0 + s]
        bg_mean = region.reshape(-1, 3).mean(axis=0)
        col = rng.uniform(0, 255, size=3)
        for _attempt in range(30):  # keep the object visible against its surroundings
            if np.linalg.norm(col - bg_mean) >= 90:
                break
            col = rng.uniform(0, 255, size=3)
        alpha = _shape_mask(cls, s, flip)[:, :, None]
        # mild shading across the object so fills are not perfectly flat
        grad = np.linspace(-1, 1, s, dtype=np.float32)
        shade = rng.uniform(-20, 20) * grad[:, None, None] + rng.uniform(-20, 20) * grad[None, :, None]
        fill = col.astype(np.float32)[None, None, :] + shade
        img[y0:y0 + s, x0:x0 + s] = region * (1 - alpha) + fill * alpha
        boxes.append(box)
        objects.append({"ymin": box[0], "xmin": box[1], "ymax": box[2], "xmax": box[3], "class": cls,
                        "label": LABELS[cls]})
    img = img + rng.normal(0, rng.uniform(2, 10), size=img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), objects


def encode(img: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    """Encode an (H, W, 3) uint8 image as JPEG or PNG bytes."""
    buf = io.BytesIO()
    if fmt == "jpg":
        Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    else:
        Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def generate(out: str, count: int, seed: int) -> dict:
    """Write count images, ground_truth.json and list.txt into out; returns the ground truth."""
    os.makedirs(out, exist_ok=True)
    out_abs = os.path.abspath(out)
    rng = np.random.default_rng(seed)
    images = []
    paths = []
    for i in range(count):
        img, objects = render(rng)
        fmt = "jpg" if i % 2 == 0 else "png"
        quality = int(rng.integers(75, 96))
        name = f"img_{i:05d}.{fmt}"
        path = os.path.join(out_abs, name)
        with open(path, "wb") as f:
            f.write(encode(img, fmt, quality))
        paths.append(path)
        images.append({"file": name, "path": path, "width": int(img.shape[1]), "height": int(img.shape[0]),
                       "objects": objects})
    gt = {"seed": seed, "labels": LABELS, "images": images}
    with open(os.path.join(out_abs, "ground_truth.json"), "w") as f:
        json.dump(gt, f, indent=1)
    with open(os.path.join(out_abs, "list.txt"), "w") as f:
        f.write("".join(p + "\n" for p in paths))
    return gt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--count", type=int, default=100, help="number of images")
    ap.add_argument("--seed", type=int, default=1, help="random seed")
    a = ap.parse_args(argv)
    if a.count < 1:
        ap.error("--count must be at least 1")
    gt = generate(a.out, a.count, a.seed)
    nobj = sum(len(im["objects"]) for im in gt["images"])
    print(f"make_shapes: {a.count} images, {nobj} objects -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
