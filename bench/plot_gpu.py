#!/usr/bin/env python3
"""Plots a GPU benchmark record (bench/results/gpu-*.json, written from scripts/gpu/device-run.sh's bench and
peers steps) as latency and throughput against batch size, runinfer beside each PyTorch peer, one row of
panels per precision. Only plotting: every number comes from the record, which names the card, date and
command. Needs matplotlib (pip install matplotlib); nothing else in the repository does.

Usage: python3 bench/plot_gpu.py bench/results/gpu-2026-11-26.json -o docs/img/gpu-ssd-2026-11-26.png
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict


def series(record: dict) -> dict:
    """{precision: {label: [(batch, ms), ...]}} for our rows (GPU compute, and end to end) and the peers'."""
    out: dict = defaultdict(lambda: defaultdict(list))
    rows = record["ours_peer_model"]
    top = max((r.get("max_batch", 0) for r in rows), default=0)
    for r in rows:
        if r.get("max_batch", top) != top:  # an engine built for a smaller batch (max batch 1): its own mark
            out[r["precision"]][f"runinfer, engine of max batch {r['max_batch']}"].append((r["batch"], r["compute_ms"]))
            continue
        out[r["precision"]]["runinfer (graph replay)"].append((r["batch"], r["compute_ms"]))
        out[r["precision"]]["runinfer end to end (H2D + compute + D2H)"].append((r["batch"], r["e2e_ms"]))
    for p in record["peers"]:
        name = p["name"]
        prec = "fp16" if ("float16" in name or "fp16" in name) else "fp32"
        out[prec][name].append((p["batch"], p["ms"]))
    for prec in out:
        for label in out[prec]:
            out[prec][label].sort()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("record", help="bench/results/gpu-*.json")
    ap.add_argument("-o", "--out", required=True, help="PNG to write")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    record = json.load(open(args.record))
    data = series(record)
    precs = [p for p in ("fp16", "fp32") if p in data]
    fig, axes = plt.subplots(len(precs), 2, figsize=(13, 4.8 * len(precs)), squeeze=False)
    for row, prec in enumerate(precs):
        ax_lat, ax_tput = axes[row]
        for label, pts in sorted(data[prec].items()):
            ours = label.startswith("runinfer")
            style = dict(marker="o", linewidth=2.6 if ours else 1.2, linestyle="-" if ours else "--")
            if "end to end" in label:
                style.update(linestyle=":", linewidth=2.0, color="tab:blue")
            elif ours:
                style.update(color="tab:blue")
            if len(pts) < 3:  # measured at one or two batch sizes: no line implies the batches between
                style.update(linestyle="none", marker="*" if ours else "s", markersize=11 if ours else 7)
            b = [x for x, _ in pts]
            ms = [y for _, y in pts]
            ax_lat.plot(b, ms, label=label, **style)
            ax_tput.plot(b, [x * 1000.0 / y for x, y in pts], label=label, **style)
        for ax, what in ((ax_lat, "ms per batch (median)"), (ax_tput, "images / s")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("batch size")
            ax.set_ylabel(what)
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"{prec}: {what}")
        ax_tput.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"SSD MobileNet v2 300x300 — {record['card'].split(' (')[0]}, {record['date']}\n"
                 "runinfer vs PyTorch peers, same weights (peer_bench.py --export)", fontsize=11)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
