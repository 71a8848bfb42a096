#!/usr/bin/env python3
"""Assembles a GPU benchmark record (bench/results/gpu-DATE.json) from the files one run of
scripts/gpu/device-run.sh with the bench and peers steps writes: bench.jsonl (runinfer's rows from
tests/gpu/bench_cuda: the reference model, then the peer's exported model, then the peer's model with engines
of max batch 1) and peers.json (the PyTorch rows of shared/bench/peer_bench.py). Computes, per precision and
batch size, runinfer's best row against the best peer row of the same precision (speedup = peer ms / ours).
Only arithmetic on the run's numbers; card, date and command are given on the command line.

    python3 bench/gpu_record.py OUTDIR --card "NVIDIA H200 ..." --command "..." --commit abc1234 \
        [--date 2026-11-27] [--note TEXT]... -o bench/results/gpu-2026-11-27.json
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path


def precision_of(peer_name: str) -> str:
    return "fp16" if ("float16" in peer_name or "fp16" in peer_name) else "fp32"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--card", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    ap.add_argument("--note", action="append", default=[])
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    d = Path(a.outdir)
    rows = [json.loads(line) for line in (d / "bench.jsonl").read_text().splitlines() if line.strip()]
    peers_raw = json.loads((d / "peers.json").read_text())
    peers = peers_raw["rows"] if isinstance(peers_raw, dict) and "rows" in peers_raw else peers_raw
    ours_ref = [r for r in rows if "peer_ssd" not in r["model"]]
    ours_peer = [r for r in rows if "peer_ssd" in r["model"]]
    def ratios_of(ours_rows):
        out = []
        for prec in ("fp16", "fp32"):
            for batch in sorted({r["batch"] for r in ours_rows if r["precision"] == prec}):
                mine = [r for r in ours_rows if r["precision"] == prec and r["batch"] == batch]
                theirs = [p for p in peers if precision_of(p["name"]) == prec and p["batch"] == batch]
                if not mine or not theirs:
                    continue
                best = min(mine, key=lambda r: r["compute_ms"])
                peer = min(theirs, key=lambda p: p["ms"])
                out.append({
                    "precision": prec, "batch": batch, "ours_ms": best["compute_ms"],
                    "ours_img_s": best["compute_img_s"], "ours_engine_max_batch": best.get("max_batch"),
                    "ours_e2e_ms": best["e2e_ms"], "best_peer": peer["name"], "peer_ms": round(peer["ms"], 4),
                    "peer_img_s": round(peer.get("ips", batch / peer["ms"] * 1e3), 1),
                    "speedup": round(peer["ms"] / best["compute_ms"], 2),
                })
        return out

    ratios = ratios_of(ours_peer)
    # the opt-in half accumulation (bench/gpu_peers.sh's bench-half.jsonl), reported apart from the default
    half_path = d / "bench-half.jsonl"
    ours_half = ([json.loads(line) for line in half_path.read_text().splitlines() if line.strip()]
                 if half_path.exists() else [])
    ratios_half = ratios_of(ours_half)
    record = {
        "card": a.card, "date": a.date, "command": a.command, "runinfer_commit": a.commit,
        "model": "SSD MobileNet v2 300x300 of peer_bench.py (its --export; same weights on both sides) and "
                 "models/make_models.py ssd_mobilenet_v2 (the reference model)",
        "metric": "median GPU compute per batch; runinfer: CUDA events around the CUDA-graph replay (no "
                  "host<->device copies; e2e_ms adds them, from pageable float32 host buffers); peers: CUDA "
                  "events around the call",
        "notes": a.note, "summary": (d / "summary.txt").read_text() if (d / "summary.txt").exists() else "",
        "ours_peer_model": ours_peer, "ours_reference_model": ours_ref, "peers": peers,
        "ratios_vs_best_peer": ratios,
        "ours_peer_model_half_accumulation": ours_half,
        "ratios_half_accumulation_vs_best_peer": ratios_half,
    }
    Path(a.out).write_text(json.dumps(record, indent=1) + "\n")
    for r in ratios:
        print(f"{r['precision']} batch {r['batch']:4d}: ours {r['ours_ms']:.4f} ms (max batch "
              f"{r['ours_engine_max_batch']}) vs {r['best_peer']} {r['peer_ms']:.4f} ms: {r['speedup']:.2f}x")
    for r in ratios_half:
        print(f"half accumulation: {r['precision']} batch {r['batch']:4d}: ours {r['ours_ms']:.4f} ms (max batch "
              f"{r['ours_engine_max_batch']}) vs {r['best_peer']} {r['peer_ms']:.4f} ms: {r['speedup']:.2f}x")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
