#!/usr/bin/env python3
"""Check that train.py and runinfer's C library agree on the shapes detector's metadata and anchors.

    python models/shapes/check_anchors.py [--lib build/libruninfer.so] [--meta models/shapes/engine_meta.txt]

Through ctypes it
  1. parses the `detect=` and `preprocess=` strings of engine_meta.txt with ri_detect_config_parse /
     ri_preprocess_spec_parse, writes them back with the _to_string functions, and checks that every
     value the C side read equals (as float32) the value written in the file, key by key;
  2. compares ri_ssd_anchor_count / ri_ssd_anchors_generate with train.ssd_anchors() (same order,
     |difference| <= 1e-6);
  3. decodes random encoded boxes with ri_detector_decode_boxes and compares them with
     train.decode_boxes (the centre-size coding with scales 10, 10, 5, 5 in ty, tx, th, tw order).
Prints the C library's canonical strings. Exit status 0 when everything matches, 1 otherwise.
The library comes from --lib, else $RI_LIB, else build/libruninfer.so.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import train  # noqa: E402

CFG_BYTES = 4096  # larger than ri_detect_config / ri_preprocess_spec; the library only writes its own struct


class VisionError(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int), ("msg", ctypes.c_char * 512)]


def load(lib_path: str):
    lib = ctypes.CDLL(lib_path)
    vp, sz, cp = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p
    sigs = {
        "ri_detect_config_parse": [cp, vp, vp],
        "ri_detect_config_to_string": [vp, cp, sz, ctypes.POINTER(sz), vp],
        "ri_preprocess_spec_parse": [cp, vp, vp],
        "ri_preprocess_spec_to_string": [vp, cp, sz, ctypes.POINTER(sz), vp],
        "ri_ssd_anchors_generate": [vp, vp, sz, ctypes.POINTER(sz), vp],
        "ri_detector_create": [vp, ctypes.POINTER(vp), vp],
        "ri_detector_decode_boxes": [vp, vp, sz, vp],
    }
    for name, args in sigs.items():
        getattr(lib, name).argtypes = args
        getattr(lib, name).restype = ctypes.c_int
    lib.ri_ssd_anchor_count.argtypes = [vp]
    lib.ri_ssd_anchor_count.restype = sz
    lib.ri_detector_destroy.argtypes = [vp]
    lib.ri_detector_destroy.restype = None
    lib.ri_detector_last_error.argtypes = [vp]
    lib.ri_detector_last_error.restype = cp
    return lib


def c_round_trip(lib, kind: str, text: str):
    """Parse text with the C library; returns (struct buffer, canonical text)."""
    buf = ctypes.create_string_buffer(CFG_BYTES)
    err = VisionError()
    st = getattr(lib, f"ri_{kind}_parse")(text.encode(), buf, ctypes.byref(err))
    if st != 0:
        raise SystemExit(f"ri_{kind}_parse failed ({st}): {err.msg.decode()}")
    out = ctypes.create_string_buffer(2048)
    needed = ctypes.c_size_t()
    st = getattr(lib, f"ri_{kind}_to_string")(buf, out, len(out), ctypes.byref(needed), ctypes.byref(err))
    if st != 0:
        raise SystemExit(f"ri_{kind}_to_string failed ({st}): {err.msg.decode()}")
    return buf, out.value.decode()


def split_kv(text: str) -> dict:
    kv = {}
    for item in text.split(";"):
        k, _, v = item.partition("=")
        kv[k.strip()] = v.strip()
    return kv


def _entry(p: str) -> str:
    """An 'NxN' feature-map entry is the same as 'N'."""
    h, sep, w = p.partition("x")
    return h if sep and h == w else p


def same_value(a: str, b: str) -> bool:
    """Equal as text, or as lists of float32 numbers."""
    pa, pb = [_entry(p) for p in a.split(",")], [_entry(p) for p in b.split(",")]
    if pa == pb:
        return True
    if len(pa) != len(pb):
        return False
    try:
        return all(np.float32(float(x)) == np.float32(float(y)) for x, y in zip(pa, pb))
    except ValueError:
        return False


def compare_texts(name: str, ours: str, canonical: str) -> list[str]:
    a, b = split_kv(ours), split_kv(canonical)
    problems = []
    for k, v in a.items():
        if k not in b:
            problems.append(f"{name}: key '{k}' is missing from the C library's text")
        elif not same_value(v, b[k]):
            problems.append(f"{name}: '{k}' is '{v}' in engine_meta.txt but the C library read '{b[k]}'")
    for k in b:
        if k not in a:
            problems.append(f"{name}: '{k}={b[k]}' comes from a C default, not from engine_meta.txt")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="compare train.py's anchors and metadata with libruninfer")
    ap.add_argument("--lib", default=os.environ.get("RI_LIB", os.path.join(REPO, "build", "libruninfer.so")))
    ap.add_argument("--meta", default=os.path.join(HERE, "engine_meta.txt"))
    a = ap.parse_args(argv)
    if not os.path.isfile(a.lib):
        print(f"check_anchors: {a.lib} not found (build the library or pass --lib / $RI_LIB)", file=sys.stderr)
        return 1
    lib = load(a.lib)
    meta = {}
    with open(a.meta) as f:
        for line in f:
            if line.strip():
                k, _, v = line.rstrip("\n").partition("=")
                meta[k] = v
    problems = []
    if meta.get("detect") != train.DETECT or meta.get("preprocess") != train.PREPROCESS:
        problems.append("engine_meta.txt differs from train.py's DETECT / PREPROCESS (rerun train.py?)")

    cfg, det_canon = c_round_trip(lib, "detect_config", meta["detect"])
    _spec, pre_canon = c_round_trip(lib, "preprocess_spec", meta["preprocess"])
    print(f"C canonical preprocess: {pre_canon}")
    print(f"C canonical detect:     {det_canon}")
    problems += compare_texts("preprocess", meta["preprocess"], pre_canon)
    problems += compare_texts("detect", meta["detect"], det_canon)

    n = lib.ri_ssd_anchor_count(cfg)
    ours = train.ssd_anchors()
    if n != len(ours):
        problems.append(f"anchor count: C {n}, Python {len(ours)}")
    else:
        out = np.zeros((n, 4), np.float32)
        got = ctypes.c_size_t()
        err = VisionError()
        st = lib.ri_ssd_anchors_generate(cfg, out.ctypes.data, n, ctypes.byref(got), ctypes.byref(err))
        if st != 0 or got.value != n:
            problems.append(f"ri_ssd_anchors_generate: status {st}, count {got.value}: {err.msg.decode()}")
        else:
            diff = np.abs(out - ours).max(axis=1)
            worst = int(diff.argmax())
            print(f"anchors: {n} rows, max |C - Python| = {diff[worst]:.3g} (row {worst})")
            if diff[worst] > 1e-6:
                problems.append(f"anchor row {worst}: C {out[worst].tolist()} vs Python {ours[worst].tolist()}")

        det = ctypes.c_void_p()
        st = lib.ri_detector_create(cfg, ctypes.byref(det), ctypes.byref(err))
        if st != 0:
            problems.append(f"ri_detector_create: {err.msg.decode()}")
        else:
            rng = np.random.default_rng(0)
            enc = rng.normal(0, 2, size=(n, 4)).astype(np.float32)
            dec = np.zeros((n, 4), np.float32)
            st = lib.ri_detector_decode_boxes(det, enc.ctypes.data, n, dec.ctypes.data)
            if st != 0:
                problems.append(f"ri_detector_decode_boxes: {lib.ri_detector_last_error(det).decode()}")
            else:
                d = np.abs(dec - train.decode_boxes(enc)).max()
                print(f"box decoding: max |C - Python| = {d:.3g}")
                if d > 1e-5:
                    problems.append(f"box decoding differs by {d}")
            lib.ri_detector_destroy(det)
    for p in problems:
        print(f"MISMATCH: {p}", file=sys.stderr)
    print("check_anchors: " + ("OK" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
