"""Helpers shared by the pipeline tests (test_pipeline.py, test_detect_oracle.py, test_nms.py) and the
pipeline benchmark: building the tiny SSD engine with its anchors as an extra output, making test images,
running the CLI and parsing its three output formats.

Nothing here asserts; the tests do.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np

CLI_TIMEOUT_S = 300

# tiny_ssd (models/make_models.py): feature maps 8x8 with 2 boxes per cell and 4x4 with 3, 6 score columns
# (column 0 background), sigmoid already applied in the graph. Its anchors are not those of the TF-OD
# generator, so they travel as a constant model output ("anchors", rows of ycenter, xcenter, h, w).
TINY_LAYERS = ((8, ((0.2, 1.0), (0.3, 2.0))), (4, ((0.5, 1.0), (0.6, 2.0), (0.6, 0.5))))
TINY_NUM_ANCHORS = 176
TINY_LABELS = ["background", "cat", "a,b", 'say "hi"', "semi;colon", "e"]
TINY_PREPROCESS = "size=32x32;layout=nchw;dtype=float32;range=-1,1"
TINY_DETECT = ("anchors=yxhw;coding=center;box_scale=10,10,5,5;score=none;background=1;"
               "score_threshold=0.3;iou=0.6;max_per_class=20;max_total=20")


def tiny_anchors() -> np.ndarray:
    rows = []
    for fm, specs in TINY_LAYERS:
        for y in range(fm):
            for x in range(fm):
                for s, r in specs:
                    rows.append([(y + 0.5) / fm, (x + 0.5) / fm, s / np.sqrt(r), s * np.sqrt(r)])
    a = np.asarray(rows, np.float32)
    assert a.shape == (TINY_NUM_ANCHORS, 4)
    return a


def add_anchor_output(src: Path, dst: Path) -> None:
    """Copy of the tiny SSD model with an extra constant output "anchors" [176,4]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(src))
    m.graph.initializer.append(numpy_helper.from_array(tiny_anchors(), "anchors_const"))
    m.graph.node.append(helper.make_node("Identity", ["anchors_const"], ["anchors"], name="anchors_out"))
    m.graph.output.append(helper.make_tensor_value_info("anchors", TensorProto.FLOAT, [TINY_NUM_ANCHORS, 4]))
    onnx.save(m, str(dst))


def add_batched_anchor_output(src: Path, dst: Path) -> None:
    """Copy of the tiny SSD model with an extra output "anchors" [N,176,4]: the same anchors for every batch
    item (boxes * 0 + anchors), as some exporters emit them."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(src))
    m.graph.initializer.append(numpy_helper.from_array(tiny_anchors(), "anchors_const"))
    m.graph.initializer.append(numpy_helper.from_array(np.array(0, np.float32), "zero_const"))
    m.graph.node.append(helper.make_node("Mul", ["boxes", "zero_const"], ["boxes_zero"], name="anchors_zero"))
    m.graph.node.append(helper.make_node("Add", ["boxes_zero", "anchors_const"], ["anchors"], name="anchors_out"))
    m.graph.output.append(helper.make_tensor_value_info("anchors", TensorProto.FLOAT, ["N", TINY_NUM_ANCHORS, 4]))
    onnx.save(m, str(dst))


def run(cmd, stdin: bytes | None = None, timeout: int = CLI_TIMEOUT_S, **kw) -> subprocess.CompletedProcess:
    """Runs a command (arguments may be str or bytes); output as bytes."""
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, **kw)


def describe(p: subprocess.CompletedProcess) -> str:
    return (f"rc {p.returncode}\n--- stdout ---\n{p.stdout[-3000:].decode('utf-8', 'replace')}\n"
            f"--- stderr ---\n{p.stderr[-3000:].decode('utf-8', 'replace')}")


def build_engine(cli: str, onnx_path: Path, rie: Path, max_batch: int, meta: dict[str, str]) -> None:
    cmd = [cli, "build", "--onnx", str(onnx_path), "--save", str(rie), "--max-batch", str(max_batch)]
    for k, v in meta.items():
        cmd += ["--meta", f"{k}={v}"]
    p = run(cmd)
    if p.returncode != 0 or not rie.is_file():
        raise RuntimeError(f"engine build failed: {' '.join(cmd)}\n{describe(p)}")


def tiny_meta() -> dict[str, str]:
    return {"preprocess": TINY_PREPROCESS, "detect": TINY_DETECT, "detect.boxes": "boxes",
            "detect.scores": "scores", "detect.anchors": "anchors", "task": "detect",
            "labels": "\n".join(TINY_LABELS)}


def key_needs_quoting(key: bytes) -> bool | None:
    """The seed format's key rule: raw unless the key has ';', '"', '\\', a C0 control character or is not
    valid UTF-8 -- then a JSON string literal. None (either is accepted) for a key whose only unusual
    characters are DEL or U+2028/U+2029, which the rule leaves to the JSON escaper's choice."""
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return True
    if any(ord(c) < 0x20 or c in ';"\\' for c in text):
        return True
    if any(c in "\x7f\u2028\u2029" for c in text):
        return None
    return False


def json_key_to_bytes(key: str) -> bytes:
    """A JSON-decoded key back to the path's bytes (bytes that are not UTF-8 come as U+DC80..U+DCFF)."""
    return key.encode("utf-8", "surrogateescape")


def parse_seed(data: bytes) -> list[tuple[bytes, list, bool]]:
    """Rows of the seed format as (key bytes, detections, key was quoted). Raises ValueError on a malformed
    line, a raw key that should have been quoted or a quoted key that should have been raw."""
    rows = []
    text = data.decode("utf-8")  # the whole file must be valid UTF-8
    dec = json.JSONDecoder()
    for line in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
        if line.startswith('"'):
            key_s, end = dec.raw_decode(line)
            if line[end] != ";":
                raise ValueError(f"no ';' after the quoted key in {line!r}")
            key, rest, quoted = json_key_to_bytes(key_s), line[end + 1:], True
        else:
            raw, sep, rest = line.partition(";")
            if not sep:
                raise ValueError(f"no ';' in {line!r}")
            key, quoted = raw.encode("utf-8"), False
        want = key_needs_quoting(key)
        if want is not None and quoted != want:
            raise ValueError(f"key {key!r} written {'quoted' if quoted else 'raw'}: {line[:200]!r}")
        rows.append((key, json.loads(rest), quoted))
    if text and not text.endswith("\n"):
        raise ValueError("last row has no newline")
    return rows


def parse_jsonl(data: bytes) -> list[dict]:
    out = []
    # split on '\n' only: str.splitlines() would also split inside keys holding U+2028 and friends
    for line in data.decode("utf-8").split("\n"):
        if not line:
            continue
        d = json.loads(line)
        d["key"] = json_key_to_bytes(d["key"])
        out.append(d)
    return out


def parse_dead_letter(data: bytes) -> list[dict]:
    return parse_jsonl(data)


def make_noise_image(path: Path, w: int, h: int, seed: int, mode: str = "RGB", quality: int = 90) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    # smooth noise: blocks of colour, so that JPEG keeps some structure and the detector sees variety
    small = rng.integers(0, 256, size=(max(h // 8, 1), max(w // 8, 1), 3), dtype=np.uint8)
    img = Image.fromarray(small, "RGB").resize((w, h), Image.BILINEAR)
    if mode != "RGB":
        img = img.convert(mode)
    fmt = "JPEG" if str(path).lower().endswith((".jpg", ".jpeg")) else "PNG"
    with open(path, "wb") as fh:
        if fmt == "JPEG":
            img.save(fh, fmt, quality=quality)
        else:
            img.save(fh, fmt)
