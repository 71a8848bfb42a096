#!/usr/bin/env python3
"""How far the planar JPEG path (runinfer.vision.Decoder: ri_decoder_load_* + ri_decoder_preprocess_loaded, the
default of `runinfer run`) is from the RGB path (decode() + preprocess(), RI_JPEG_YCBCR=0), and what that does to
a real detector. A measurement, not a test; results go to bench/results/ycc-accuracy-<date>.json.

(1) Model-input differences, in levels of 255 (output values divided by the spec's scale), per channel (max,
    mean) and over all values (percentiles, shares above 1, 2 and 5 levels), on the COCO photos of
    ../shared/images/coco/mlperf_coco_val_tiny300 (300x300, 4:2:0) and on the generated 640x480 JPEGs of
    bench/pipeline_bench.py, for the SSD input (300x300 NCHW float32 in [-1, 1]) and the ST detector's
    (256x256 NHWC uint8). The difference is split into its two causes with the float64 oracle of
    tests/python/ycc_oracle.py: libjpeg's 8-bit rounding (RGB path vs the oracle clamping per source pixel)
    and the clamping order (the oracle clamping per source pixel vs per output pixel, which is what the
    planar path computes; the script also reports how far the library is from that oracle).
(2) With --detector: AP@0.5 of the ST SSD MobileNet v2 int8 detector (onnxruntime, the post-processing and
    metric of tests/python/test_st_detector_ap.py) on the 300 photos, for inputs from the RGB path, the planar
    path, and, to show how much this quantized model moves for sub-level input changes alone, the RGB path's
    float values rounded at random instead of to nearest (three seeds: at most one level per value, no
    systematic shift; each input's mean change against the RGB path is recorded).

    python3 bench/ycc_accuracy.py [--lib build/libruninfer.so] [--detector] [--out F]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "python"), str(ROOT / "tests" / "python"), str(ROOT / "bench")]
PHOTOS = ROOT.parent / "shared" / "images" / "coco" / "mlperf_coco_val_tiny300"

SPECS = {
    "ssd_300_nchw_f32": ("size=300x300;layout=nchw;dtype=float32;range=-1,1",
                         dict(size=(300, 300), layout="nchw", mean=(127.5,) * 3, scale=(2 / 255,) * 3)),
    "st_256_nhwc_u8": ("size=256x256;layout=nhwc;dtype=uint8;mean=0,0,0;scale=1,1,1;resize=bilinear;order=rgb",
                       dict(size=(256, 256), dtype="uint8")),
}


def _stats(diffs: list[np.ndarray], channel_axis: int) -> dict:
    d = np.concatenate([np.moveaxis(x, channel_axis, -1).reshape(-1, 3) for x in diffs])
    flat = d.ravel()
    return {"max_per_channel": [round(float(v), 4) for v in d.max(axis=0)],
            "mean_per_channel": [round(float(v), 4) for v in d.mean(axis=0)],
            "mean": round(float(flat.mean()), 4), "p99": round(float(np.percentile(flat, 99)), 4),
            "p99_9": round(float(np.percentile(flat, 99.9)), 4),
            "share_over_1": float((flat > 1).mean()), "share_over_2": float((flat > 2).mean()),
            "share_over_5": float((flat > 5).mean()), "values": int(flat.size)}


def pixel_differences(files: list[Path], spec_text: str, spec: dict) -> dict:
    import ycc_oracle as yo
    from runinfer import vision

    dec = vision.Decoder()
    exact = {k: v for k, v in spec.items() if k != "dtype"}
    scale = np.asarray(spec.get("scale", (1, 1, 1)), np.float64)
    ch_axis = 0 if spec.get("layout") == "nchw" else -1
    shape = (3, 1, 1) if ch_axis == 0 else (1, 1, 3)
    to_levels = 1.0 / scale.reshape(shape)
    total, rounding, clamping, vs_oracle = [], [], [], []
    for f in files:
        data = f.read_bytes()
        dec.load(data, name=str(f))
        planar = dec.preprocess(spec_text)[0].astype(np.float64)
        rgb = vision.preprocess(vision.decode_bytes(data), spec_text)[0].astype(np.float64)
        planes, hf, vf = yo.jpeg_planes(data)
        late = yo.preprocess_float(planes, hf, vf, 1, dict(exact), clamp_first=False)
        early = yo.preprocess_float(planes, hf, vf, 1, dict(exact), clamp_first=True)
        total.append(np.abs(planar - rgb) * to_levels)
        rounding.append(np.abs(rgb - early) * to_levels)
        clamping.append(np.abs(early - late) * to_levels)
        vs_oracle.append(np.abs(planar - late) * to_levels)
    return {"images": len(files), "planar_vs_rgb_path": _stats(total, ch_axis),
            "cause_libjpeg_rounding": _stats(rounding, ch_axis), "cause_clamp_order": _stats(clamping, ch_axis),
            "planar_vs_float_oracle": _stats(vs_oracle, ch_axis)}


def detector_ap() -> dict:
    import pytest  # the test module skips itself (pytest.skip) when the shared folder is absent

    try:
        import test_st_detector_ap as st
    except pytest.skip.Exception as e:  # noqa: PERF203
        return {"skipped": str(e)}
    from runinfer import vision

    gt = st.parse_ground_truth(st.GROUND_TRUTH)
    photos = sorted(st.PHOTOS.glob("*.jpg"))
    n = len(photos)
    dec = vision.Decoder()
    img_hw = {}
    x = {k: np.empty((n, st.SIZE, st.SIZE, 3), np.uint8) for k in ("rgb", "planar")}
    xf = np.empty((n, st.SIZE, st.SIZE, 3), np.float32)
    fspec = st.PREPROCESS.replace("dtype=uint8", "dtype=float32")
    for i, p in enumerate(photos):
        img = vision.decode_file(str(p))
        img_hw[p.name] = img.shape[:2]
        x["rgb"][i] = vision.preprocess(img, st.PREPROCESS)[0]
        xf[i] = vision.preprocess(img, fspec)[0]
        dec.load_file(str(p))
        x["planar"][i] = dec.preprocess(st.PREPROCESS)[0]
    for seed in (1, 2, 3):
        rng = np.random.default_rng(seed)
        x[f"rgb_random_rounding_{seed}"] = np.clip(np.floor(xf + rng.random(xf.shape, np.float32)), 0,
                                                   255).astype(np.uint8)
    out = {"photos": n, "input": st.PREPROCESS}
    for name, xi in x.items():
        t0 = time.perf_counter()
        dets = st._ort_detections(xi, photos, img_hw, optimize=True)
        ap, _ = st.ap50(dets, {p.name: gt[p.name] for p in photos}, img_hw)
        out[name] = {"ap50": round(float(ap), 4),
                     "mean_abs_input_change_vs_rgb": round(float(np.abs(xi.astype(np.int16) - x["rgb"]).mean()), 4),
                     "seconds": round(time.perf_counter() - t0, 1)}
        print(f"  {name:28s} AP@0.5 {ap:.4f}", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", default=str(ROOT / "build" / "libruninfer.so"))
    ap.add_argument("--work", default="/tmp/runinfer-pipeline-bench", help="where pipeline_bench.py's JPEGs are")
    ap.add_argument("--detector", action="store_true", help="also part (2), the ST detector's AP (about 2 minutes)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    os.environ["RI_LIB"] = str(Path(a.lib).resolve())
    import pipeline_bench

    generated = pipeline_bench.make_images(Path(a.work) / "jpeg640", 200)
    sets = {"generated_640x480": generated}
    if PHOTOS.is_dir():
        sets["coco_val_tiny300"] = sorted(PHOTOS.glob("*.jpg"))
    result = {"date": datetime.date.today().isoformat(),
              "git": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip(),
              "command": shlex.join(["python3", os.path.relpath(__file__, ROOT)] +
                                    (argv if argv is not None else sys.argv[1:])),
              "units": "levels of 255 (output difference / spec scale)", "pixels": {}}
    for set_name, files in sets.items():
        for spec_name, (text, spec) in SPECS.items():
            r = pixel_differences(files, text, spec)
            result["pixels"][f"{set_name}/{spec_name}"] = r
            s = r["planar_vs_rgb_path"]
            print(f"{set_name:18s} {spec_name:17s} max {s['max_per_channel']} mean {s['mean_per_channel']} "
                  f"p99 {s['p99']} p99.9 {s['p99_9']} >2: {100 * s['share_over_2']:.3f}%  "
                  f"(oracle max {max(r['planar_vs_float_oracle']['max_per_channel']):.2g})", flush=True)
    if a.detector:
        result["st_detector_ap50_onnxruntime"] = detector_ap()
    out = Path(a.out) if a.out else ROOT / "bench" / "results" / f"ycc-accuracy-{result['date']}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
