#!/usr/bin/env python3
"""`runinfer run` throughput with one or several inference contexts (not a test): results go to
bench/results/pipeline-contexts-<date>.json.

The SSD MobileNet v2 reference engine (max batch 8, score threshold 0.3) runs over generated 640x480
JPEGs (bench/pipeline_bench.py's images; --size changes it) in each configuration of --configs, "C:T" meaning --contexts C with
--threads T (the engine's CPU threads per context), optionally "C:T@DEVICES" to run on GPUs (`runinfer run
--device DEVICES`, e.g. 2:1@cuda:0 or 1:1@cuda:all); all with --decode-threads D (default 2) and --ordered.
With --engine-device cuda the engine is built for the GPU (--precision, default fp16). The configurations
run interleaved, --rounds times, so that load from other processes hits them alike; the record keeps every
round's images/s and the median. The rows of every run must be byte-identical to the first
configuration's (the script checks it, records any difference and exits with status 1 at the end).

    python3 bench/pipeline_contexts.py [--build build] [--images 200] [--rounds 3] [--configs 1:1,1:2,2:1]
        [--engine-device cpu|cuda] [--precision fp32|fp16] [--decode-threads D]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "models"))

from pipeline_bench import make_images, sh  # noqa: E402

import make_models  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--configs", default="1:1,1:2,2:1", help="contexts:threads, comma-separated")
    ap.add_argument("--engine-device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--precision", default="fp16", choices=("fp32", "fp16"))
    ap.add_argument("--decode-threads", type=int, default=2)
    ap.add_argument("--size", default="640x480", help="WxH of the generated JPEGs")
    ap.add_argument("--work", default="/tmp/runinfer-pipeline-bench")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    cli = str(Path(a.build) / "runinfer")
    work = Path(a.work)
    w, h = (int(x) for x in a.size.split("x"))
    files = make_images(work / f"jpeg{w}x{h}", a.images, w, h)
    lst = work / "contexts_list.txt"
    lst.write_text("".join(f"{f}\n" for f in files))
    paths = make_models.build_models(str(work / "models"), only=["ssd_mobilenet_v2"], reuse=True, verbose=False)
    rie = work / f"ssd_contexts_{a.engine_device}.rie"
    gpu = ["--device", "cuda", "--precision", a.precision] if a.engine_device == "cuda" else []
    sh([cli, "build", "--onnx", paths["ssd_mobilenet_v2"], "--save", str(rie), "--max-batch", str(a.max_batch), *gpu,
        "--meta", "preprocess=size=300x300;layout=nchw;dtype=float32;range=-1,1", "--meta", "task=detect",
        "--meta", "detect=score_threshold=0.3", "--meta", "detect.boxes=raw_boxes",
        "--meta", "detect.scores=raw_scores"])
    configs = []
    for spec in a.configs.split(","):
        ct, _, dev = spec.partition("@")
        c, t = (int(x) for x in ct.split(":"))
        configs.append((spec, c, t, dev))
    rates: dict[str, list[float]] = {spec: [] for spec, _, _, _ in configs}
    ref_rows = None
    mismatches: list[dict] = []
    for r in range(a.rounds):
        for spec, c, t, dev in configs:
            out = work / f"contexts_{c}_{t}_{dev.replace(':', '').replace(',', '_') or 'cpu'}.txt"
            t0 = time.perf_counter()
            sh([cli, "run", "--engine", str(rie), "--input", str(lst), "--output", str(out), "--no-progress",
                "--ordered", "--decode-threads", str(a.decode_threads), "--contexts", str(c), "--threads", str(t),
                "--max-batch", str(a.max_batch), *(["--device", dev] if dev else [])])
            dt = time.perf_counter() - t0
            rows = out.read_bytes()
            if ref_rows is None:
                ref_rows = rows
            elif rows != ref_rows:
                differ = sum(a != b for a, b in zip(rows.splitlines(), ref_rows.splitlines()))
                mismatches.append({"config": spec, "round": r, "rows_differing": differ})
                print(f"round {r}: {spec}: {differ} rows differ from the first configuration's", flush=True)
            rates[spec].append(len(files) / dt)
            print(f"round {r}: {spec}: {len(files) / dt:.1f} img/s", flush=True)
    load = os.getloadavg()
    result = {
        "date": datetime.date.today().isoformat(),
        "command": "python3 bench/pipeline_contexts.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_after": load,
        "images": len(files),
        "image_size": a.size,
        "engine": f"ssd_mobilenet_v2 reference, {a.engine_device}"
        + (f" {a.precision}" if a.engine_device == "cuda" else "")
        + f", max batch {a.max_batch}, score threshold 0.3",
        "decode_threads": a.decode_threads,
        "img_per_s": {k: {"rounds": v, "median": statistics.median(v)} for k, v in rates.items()},
        "rows_identical": not mismatches,
        "row_mismatches": mismatches,
    }
    base = result["img_per_s"][configs[0][0]]["median"]
    for k, v in result["img_per_s"].items():
        v["ratio_to_first"] = round(v["median"] / base, 3)
        print(f"{k}: median {v['median']:.1f} img/s ({v['ratio_to_first']:.2f}x)")
    out = Path(a.out) if a.out else ROOT / "bench" / "results" / f"pipeline-contexts-{result['date']}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
