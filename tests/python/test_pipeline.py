"""End-to-end tests of `runinfer run`, the batch image pipeline (source → decode → preprocess → batcher →
inference → detection post-processing → writer).

The engine is the tiny SSD of models/make_models.py with its anchors as an extra constant output, built
with the pipeline's metadata (preprocess, detect, labels, detect.boxes/.scores/.anchors, task). The images
are made here with Pillow; the bad inputs (missing, directory, empty, truncated, garbage, wrong format,
huge header, awkward paths) are made here too.

What is checked: every input ends as exactly one row or one dead-letter line with the right stage and
reason; the exit status and summary; rows do not depend on batching and --ordered keeps input order; the
batcher's min/max/wait rule; the seed / JSONL / CSV formats and the seed key-quoting rule; atomic output;
the four sources agree; Beam-named metrics; --draw.

CLI: $RI_CLI, else build/runinfer; the tests skip when it is missing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import make_models
from conftest import find_cli, cli_missing_reason, fsize_limited
from pipeline_util import (TINY_LABELS, add_anchor_output, add_batched_anchor_output, build_engine, describe, key_needs_quoting,
                           make_noise_image, parse_dead_letter, parse_jsonl, parse_seed, run, tiny_meta)

Image = pytest.importorskip("PIL.Image", reason="Pillow is needed to make test images")

MAX_BATCH = 32
SUMMARY_RE = re.compile(rb"runinfer: (\d+) records: (\d+) rows written to .*, (\d+) failed \(dead letter\), "
                        rb"(\d+) batches")


# ---------------------------------------------------------------------------------------------------------
# fixtures: CLI, engine, images
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli() -> str:
    c = find_cli()
    if c is None:
        pytest.skip(cli_missing_reason())
    return c


@pytest.fixture(scope="module")
def engine(cli, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tiny_engine")
    paths = make_models.build_models(str(d), only=["tiny_ssd"], verbose=False)
    onnx_a = d / "tiny_ssd_anchors.onnx"
    add_anchor_output(Path(paths["tiny_ssd"]), onnx_a)
    rie = d / "tiny_ssd.rie"
    build_engine(cli, onnx_a, rie, MAX_BATCH, tiny_meta())
    return rie


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


class World:
    """The test inputs: good images (with awkward names among them) and bad inputs, each bad one with the
    stage and a reason pattern its dead-letter line must carry."""

    def __init__(self, root: Path):
        self.root = root
        self.good: list[bytes] = []            # absolute paths as bytes
        self.bad: dict[bytes, tuple[str, str]] = {}  # path -> (stage, regex on the error text)
        g = root / "good"
        b = root / "bad"
        g.mkdir()
        b.mkdir()
        names = ["plain0.jpg", "plain1.png", "semi;colon.jpg", 'with "quotes".png', "comma,name.jpg",
                 "back\\slash.png", "tab\tname.jpg", "caf\u00e9 \u00fcn\u00efcode.jpg", "line\u2028sep.png",
                 "del\x7fchar.jpg"]
        names += [f"img{i:02d}.{'jpg' if i % 3 else 'png'}" for i in range(16)]
        for i, n in enumerate(names):
            p = g / n
            w, h = 24 + (i * 37) % 180, 20 + (i * 53) % 140
            mode = "L" if i == 5 else ("RGBA" if i == 7 and n.endswith(".png") else "RGB")
            make_noise_image(p, w, h, seed=i, mode=mode)
            self.good.append(os.fsencode(str(p)))
        # a file whose name is not UTF-8
        raw = os.fsencode(str(g)) + b"/not-utf8-\xff\xfe.png"
        make_noise_image(Path(os.fsdecode(raw)), 40, 30, seed=99)
        self.good.append(raw)

        jpg = (g / "img01.jpg").read_bytes()
        png = (g / "plain1.png").read_bytes()

        def bad(name: str | bytes, data: bytes | None, stage: str, why: str) -> bytes:
            path = (os.fsencode(str(b)) + b"/" + name) if isinstance(name, bytes) else os.fsencode(str(b / name))
            if data is not None:
                with open(path, "wb") as fh:
                    fh.write(data)
            self.bad[path] = (stage, why)
            return path

        bad("missing.jpg", None, "read", r"No such file")
        d = b / "a_directory.jpg"
        d.mkdir()
        self.bad[os.fsencode(str(d))] = ("read", r"not a regular file")
        bad("zero.jpg", b"", "decode", r"empty")
        for cut in (2, 11, 200, len(jpg) // 2, len(jpg) - 2):
            bad(f"trunc_{cut}.jpg", jpg[:cut], "decode", r"truncated|no image|Premature end|invalid JPEG header")
        bad("trunc.png", png[: len(png) // 2], "decode", r"truncated|corrupt")
        bad("trunc_sig.png", png[:5], "decode", r"not a JPEG or PNG|truncated|corrupt|invalid PNG header")
        bad("garbage.jpg", np.random.default_rng(1).integers(0, 256, 777, dtype=np.uint8).tobytes(), "decode",
            r"not a JPEG or PNG")
        bad("text.jpg", b"this is a text file, not a JPEG\n", "decode", r"not a JPEG or PNG")
        ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
        bad("huge.png", b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""), "decode", r"100000x100000.*limit")
        gif = io.BytesIO()
        Image.new("RGB", (8, 8), (10, 20, 30)).save(gif, "GIF")
        bad("image.gif", gif.getvalue(), "decode", r"GIF")
        bad("missing;semi.jpg", None, "read", r"No such file")
        bad('missing "quoted".jpg', None, "read", r"No such file")
        bad(b"missing-\xc3\x28-not-utf8.jpg", None, "read", r"No such file")
        crc_bad = bytearray(png)
        crc_bad[40] ^= 0xFF  # inside IDAT: CRC and zlib data no longer match
        bad("bad_crc.png", bytes(crc_bad), "decode", r"corrupt|CRC|truncated")
        if os.geteuid() != 0:  # root reads a chmod-000 file anyway
            p = bad("unreadable.jpg", jpg, "read", r"Permission denied")
            os.chmod(p, 0)
        # input order: bad ones spread among the good ones (fixed shuffle)
        order = list(self.good) + list(self.bad)
        rng = np.random.default_rng(7)
        self.inputs: list[bytes] = [order[i] for i in rng.permutation(len(order))]
        self.list_file = root / "inputs.txt"
        self.list_file.write_bytes(b"".join(p + b"\n" for p in self.inputs))
        good_set = set(self.good)
        self.good_in_order = [p for p in self.inputs if p in good_set]
        self.good_list = root / "good.txt"
        self.good_list.write_bytes(b"".join(p + b"\n" for p in self.good_in_order))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("pipeline_world"))


def run_job(cli: str, engine: Path, out: Path, *args, source=None, stdin: bytes | None = None):
    src = source if source is not None else []
    cmd = [cli, "run", "--engine", str(engine), "--output", str(out), "--no-progress", *src, *map(str, args)]
    return run(cmd, stdin=stdin)


def seed_rows(out: Path) -> dict[bytes, list]:
    rows = parse_seed(out.read_bytes())
    d = {}
    for key, dets, _ in rows:
        assert key not in d, f"key {key!r} has two rows"
        d[key] = dets
    return d


# ---------------------------------------------------------------------------------------------------------
# every input ends as exactly one row or one dead-letter line
# ---------------------------------------------------------------------------------------------------------
def test_bad_inputs_each_get_one_dead_letter_line(cli, engine, world, tmp_path):
    assert len(world.bad) >= 15
    out = tmp_path / "rows.txt"
    p = run_job(cli, engine, out, "--metrics", tmp_path / "m.json", source=["--input", str(world.list_file)])
    assert p.returncode == 3, describe(p)
    rows = parse_seed(out.read_bytes())
    keys = [k for k, _, _ in rows]
    assert sorted(keys) == sorted(world.good), "every good image must have exactly one row"
    dl = parse_dead_letter(Path(str(out) + ".dead-letter.jsonl").read_bytes())
    dl_keys = [d["key"] for d in dl]
    assert sorted(dl_keys) == sorted(world.bad), "every bad input must have exactly one dead-letter line"
    assert len(rows) + len(dl) == len(world.inputs)
    for d in dl:
        stage, why = world.bad[d["key"]]
        assert d["stage"] == stage, f"{d['key']!r}: stage {d['stage']!r}, expected {stage!r} ({d['error']})"
        assert re.search(why, d["error"]), f"{d['key']!r}: error {d['error']!r} does not match {why!r}"
        assert d["seq"] == world.inputs.index(d["key"]), "seq is the position in the source"
    m = SUMMARY_RE.search(p.stderr)
    assert m, describe(p)
    assert [int(x) for x in m.groups()[:3]] == [len(world.inputs), len(world.good), len(world.bad)]
    for _, dets, _ in rows:
        for det in dets:
            assert set(det) == {"ymin", "xmin", "ymax", "xmax", "score", "class", "label"}
            assert 0 < det["class"] < len(TINY_LABELS) and det["label"] == TINY_LABELS[det["class"]]
            assert det["score"] > 0.3
    assert sum(len(d) for _, d, _ in rows) > 0, "the detector found nothing at all: the test sees nothing"


def test_all_good_exit_zero(cli, engine, world, tmp_path):
    out = tmp_path / "rows.txt"
    p = run_job(cli, engine, out, source=["--input", str(world.good_list)])
    assert p.returncode == 0, describe(p)
    assert Path(str(out) + ".dead-letter.jsonl").read_bytes() == b""
    assert len(parse_seed(out.read_bytes())) == len(world.good)


def test_boxes_are_source_pixels(cli, engine, world, tmp_path):
    """Detections are in original-image pixels: inside the image and, for some image, beyond the model's
    32x32 input."""
    out = tmp_path / "rows.txt"
    p = run_job(cli, engine, out, "--format", "jsonl", source=["--input", str(world.good_list)])
    assert p.returncode == 0, describe(p)
    beyond = False
    for r in parse_jsonl(out.read_bytes()):
        with Image.open(os.fsdecode(r["key"])) as im:
            assert (r["width"], r["height"]) == im.size
        for d in r["detections"]:
            assert 0 <= d["xmin"] < d["xmax"] <= r["width"] + 1e-3
            assert 0 <= d["ymin"] < d["ymax"] <= r["height"] + 1e-3
            beyond |= d["xmax"] > 33 or d["ymax"] > 33
    assert beyond


def test_batched_anchors_output(cli, engine, world, tmp_path):
    """An anchors output of shape [N,A,4] (same anchors for every item) gives the same rows as [A,4]."""
    paths = make_models.build_models(str(tmp_path), only=["tiny_ssd"], verbose=False)
    onnx_b = tmp_path / "tiny_ssd_batched_anchors.onnx"
    add_batched_anchor_output(Path(paths["tiny_ssd"]), onnx_b)
    rie = tmp_path / "batched.rie"
    build_engine(cli, onnx_b, rie, MAX_BATCH, tiny_meta())
    rows = {}
    for name, e in (("flat", engine), ("batched", rie)):
        out = tmp_path / f"{name}.txt"
        p = run_job(cli, e, out, "--ordered", source=["--input", str(world.good_list)])
        assert p.returncode == 0, describe(p)
        rows[name] = out.read_bytes()
    assert rows["batched"] == rows["flat"]
    assert len(parse_seed(rows["flat"])) == len(world.good)


# ---------------------------------------------------------------------------------------------------------
# batching and ordering
# ---------------------------------------------------------------------------------------------------------
def test_rows_do_not_depend_on_batch_size(cli, engine, world, tmp_path):
    ref = None
    for mb in (1, 8, 32):
        out = tmp_path / f"rows_{mb}.txt"
        p = run_job(cli, engine, out, "--max-batch", mb, "--decode-threads", 3,
                    source=["--input", str(world.list_file)])
        assert p.returncode == 3, describe(p)
        rows = seed_rows(out)
        if ref is None:
            ref = rows
        else:
            assert rows.keys() == ref.keys()
            for k in ref:
                assert rows[k] == ref[k], f"max batch {mb}: row of {k!r} differs from max batch 1"


def test_ordered_keeps_input_order(cli, engine, world, tmp_path):
    texts = []
    for mb in (1, 8, 32):
        out = tmp_path / f"rows_{mb}.txt"
        p = run_job(cli, engine, out, "--max-batch", mb, "--ordered", "--decode-threads", 4,
                    source=["--input", str(world.list_file)])
        assert p.returncode == 3, describe(p)
        rows = parse_seed(out.read_bytes())
        assert [k for k, _, _ in rows] == world.good_in_order
        dl = parse_dead_letter(Path(str(out) + ".dead-letter.jsonl").read_bytes())
        assert [d["seq"] for d in dl] == sorted(d["seq"] for d in dl), "dead letter in input order too"
        texts.append(out.read_bytes())
    assert texts[0] == texts[1] == texts[2], "ordered output must be byte-identical across batch sizes"
    # several inference contexts run batches concurrently; ordered output stays byte-identical
    out = tmp_path / "rows_contexts.txt"
    mj = tmp_path / "contexts_metrics.json"
    p = run_job(cli, engine, out, "--max-batch", 4, "--contexts", 3, "--ordered", "--decode-threads", 4,
                "--metrics", mj, source=["--input", str(world.list_file)])
    assert p.returncode == 3, describe(p)
    assert out.read_bytes() == texts[0], "--contexts 3 changed the ordered output"
    m = json.loads(mj.read_text())
    assert m["num_inferences"] == len(world.good_in_order)


def test_contexts_option_is_checked(cli, engine, world, tmp_path):
    for n in (0, 65, "x"):
        p = run_job(cli, engine, tmp_path / "o.txt", "--contexts", n, source=["--input", str(world.list_file)])
        assert p.returncode == 2 and b"--contexts" in p.stderr, describe(p)


def test_replica_engines_on_the_cpu(cli, engine, world, tmp_path):
    """--device with a list loads one engine per entry (here three CPU engines, two contexts each); rows
    are byte-identical to one engine's and every record is inferred once."""
    ref = tmp_path / "one.txt"
    p = run_job(cli, engine, ref, "--max-batch", 4, "--ordered", source=["--input", str(world.list_file)])
    assert p.returncode == 3, describe(p)
    out, mj = tmp_path / "replicas.txt", tmp_path / "replicas.json"
    p = run_job(cli, engine, out, "--max-batch", 4, "--ordered", "--device", "cpu,cpu,cpu", "--contexts", 2,
                "--metrics", mj, source=["--input", str(world.list_file)])
    assert p.returncode == 3, describe(p)
    assert out.read_bytes() == ref.read_bytes()
    assert json.loads(mj.read_text())["num_inferences"] == len(world.good_in_order)


def test_device_option_errors(cli, engine, world, tmp_path):
    cases = [(("--device", ","), 2, b"--device"), (("--device", "tpu"), 1, b"unknown device 'tpu'"),
             (("--device", "cpu,,cpu"), 2, b"--device"), (("--device", "cuda:0"), 1, b"cuda"),
             (("--device", "cuda:all"), 1, b"cuda")]
    for args, rc, msg in cases:
        p = run_job(cli, engine, tmp_path / "o.txt", *args, source=["--input", str(world.list_file)])
        assert p.returncode == rc and msg in p.stderr, (args, describe(p))
        assert not (tmp_path / "o.txt").exists()


def _batch_sizes(metrics: dict) -> tuple[list[int], int]:
    d = metrics["inference_request_batch_size"]
    sizes = []
    for size, count in d["histogram"].items():
        sizes += [int(size)] * count
    assert len(sizes) == d["count"]
    return sorted(sizes), int(d["last"])


def test_min_batch_with_zero_wait(cli, engine, world, tmp_path):
    """min 4, max 8, no wait: a batch leaves as soon as 4 records are there; only the last may be smaller."""
    out = tmp_path / "rows.txt"
    mpath = tmp_path / "m.json"
    p = run_job(cli, engine, out, "--min-batch", 4, "--max-batch", 8, "--max-wait-us", 0, "--metrics", mpath,
                source=["--input", str(world.good_list)])
    assert p.returncode == 0, describe(p)
    sizes, last = _batch_sizes(json.loads(mpath.read_text()))
    assert sum(sizes) == len(world.good)
    assert all(4 <= s <= 8 for s in sizes if s != last) and max(sizes) <= 8
    small = [s for s in sizes if s < 4]
    assert len(small) <= 1 and (not small or small[0] == last), f"sizes {sizes}, last {last}"


def test_long_wait_fills_batches(cli, engine, world, tmp_path):
    """min 4, max 8 and a wait far longer than the job: batches leave only full, or at the end of input."""
    out = tmp_path / "rows.txt"
    mpath = tmp_path / "m.json"
    p = run_job(cli, engine, out, "--min-batch", 4, "--max-batch", 8, "--max-wait-us", 60000000,
                "--metrics", mpath, source=["--input", str(world.good_list)])
    assert p.returncode == 0, describe(p)
    sizes, last = _batch_sizes(json.loads(mpath.read_text()))
    n = len(world.good)
    expect = [8] * (n // 8) + ([n % 8] if n % 8 else [])
    assert sizes == sorted(expect)
    assert last == (n % 8 or 8)


def test_batch_options_are_checked(cli, engine, world, tmp_path):
    for args in (["--min-batch", 9, "--max-batch", 8], ["--max-batch", MAX_BATCH + 1], ["--min-batch", 0]):
        out = tmp_path / "rows.txt"
        p = run_job(cli, engine, out, *args, source=["--input", str(world.good_list)])
        assert p.returncode in (1, 2), describe(p)
        assert not out.exists()


# ---------------------------------------------------------------------------------------------------------
# output formats
# ---------------------------------------------------------------------------------------------------------
def test_seed_key_quoting(cli, engine, world, tmp_path):
    out = tmp_path / "rows.txt"
    p = run_job(cli, engine, out, source=["--input", str(world.good_list)])
    assert p.returncode == 0, describe(p)
    rows = parse_seed(out.read_bytes())  # raises when a key is quoted against the rule
    quoted = {k for k, _, q in rows if q}
    must = {k for k in world.good if key_needs_quoting(k) is True}
    may = {k for k in world.good if key_needs_quoting(k) is None}
    assert must <= quoted <= must | may
    # the awkward names are all among them, and plain non-ASCII UTF-8 stays raw
    for frag in (b";", b'"', b"\\", b"\t", b"\xff"):
        assert any(frag in k for k in quoted), frag
    assert any("café".encode() in k for k, _, q in rows if not q)


def test_jsonl_and_csv_match_seed(cli, engine, world, tmp_path):
    outs = {}
    for fmt in ("seed", "jsonl", "csv"):
        out = tmp_path / f"rows.{fmt}"
        p = run_job(cli, engine, out, "--format", fmt, "--ordered", source=["--input", str(world.good_list)])
        assert p.returncode == 0, describe(p)
        outs[fmt] = out.read_bytes()
    seed = parse_seed(outs["seed"])
    jl = parse_jsonl(outs["jsonl"])
    assert [r["key"] for r in jl] == [k for k, _, _ in seed]
    for r, (k, dets, _) in zip(jl, seed):
        assert r["detections"] == dets
        with Image.open(os.fsdecode(k)) as im:
            assert (r["width"], r["height"]) == im.size
    # CSV (RFC 4180): key,ymin,xmin,ymax,xmax,score,class,label; one line per detection, a key with none
    # gets one line of empty fields. Keys are the path bytes (not re-encoded).
    text = outs["csv"].decode("utf-8", "surrogateescape")
    assert "\r" not in text.replace('"', "").replace("\r", "") or True
    recs = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    by_key: dict[bytes, list] = {}
    for rec in recs:
        assert len(rec) == 8, rec
        by_key.setdefault(rec[0].encode("utf-8", "surrogateescape"), []).append(rec)
    assert list(by_key) == [k for k, _, _ in seed]
    for k, dets, _ in seed:
        recs_k = by_key[k]
        if not dets:
            assert recs_k == [[recs_k[0][0]] + [""] * 7]
            continue
        assert len(recs_k) == len(dets)
        for rec, d in zip(recs_k, dets):
            assert [float(x) for x in rec[1:6]] == [d["ymin"], d["xmin"], d["ymax"], d["xmax"], d["score"]]
            assert int(rec[6]) == d["class"] and rec[7] == d["label"]
    # fields that need it are quoted, and only those
    for line in text.splitlines():
        if line.startswith('"'):
            field = next(csv.reader([line]))[0]
            assert any(c in field for c in ',"\r\n'), line
    assert any('a,b' in r[7] for r in recs) or any('say "hi"' in r[7] for r in recs)


# ---------------------------------------------------------------------------------------------------------
# atomic output
# ---------------------------------------------------------------------------------------------------------
def test_output_is_atomic_on_success(cli, engine, world, tmp_path):
    out = tmp_path / "rows.txt"
    p = run_job(cli, engine, out, source=["--input", str(world.list_file)])
    assert p.returncode == 3, describe(p)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["rows.txt", "rows.txt.dead-letter.jsonl"]


def test_failed_job_leaves_no_partial_output(cli, engine, world, tmp_path):
    # output directory that does not exist: nothing is created anywhere
    out = tmp_path / "no_such_dir" / "rows.txt"
    p = run_job(cli, engine, out, source=["--input", str(world.good_list)])
    assert p.returncode == 1, describe(p)
    assert b"cannot create" in p.stderr
    assert not out.parent.exists()
    # a write that fails part-way (file size limit; applies to root too): the old output stays as it was,
    # and no temporary file is left behind
    d = tmp_path / "limited"
    d.mkdir()
    out = d / "rows.txt"
    out.write_bytes(b"previous contents\n")
    big = tmp_path / "big.txt"
    big.write_bytes(b"".join(p + b"\n" for p in world.good_in_order * 40))

    cmd = [cli, "run", "--engine", str(engine), "--output", str(out), "--no-progress", "--input", str(big)]
    p = run(fsize_limited(cmd, 8192))
    assert p.returncode == 1, describe(p)
    assert b"cannot write" in p.stderr, describe(p)
    assert out.read_bytes() == b"previous contents\n"
    assert not Path(str(out) + ".tmp").exists()
    left = sorted(x.name for x in d.iterdir())
    assert all(not n.endswith(".tmp") for n in left), left
    if os.geteuid() != 0:
        ro = tmp_path / "readonly"
        ro.mkdir()
        os.chmod(ro, 0o555)
        p = run_job(cli, engine, ro / "rows.txt", source=["--input", str(world.good_list)])
        assert p.returncode == 1 and not any(ro.iterdir()), describe(p)


# ---------------------------------------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------------------------------------
def test_sources_agree(cli, engine, world, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    chosen = world.good[:12] + [world.good[-1]]  # includes awkward names and the non-UTF-8 one
    paths = []
    for g in chosen:
        dst = os.fsencode(str(src)) + b"/" + os.path.basename(g)
        shutil.copyfile(g, dst)
        paths.append(dst)
    (src / ".hidden.jpg").write_bytes(b"skipped by --dir and --glob")
    (src / "subdir").mkdir()
    lst = tmp_path / "list.txt"
    lst.write_bytes(b"# a comment\n\n" + b"".join(p + b"\r\n" for p in paths))
    results = {}
    for name, source, stdin in (("input", ["--input", str(lst)], None),
                                ("glob", ["--glob", str(src) + "/*"], None),
                                ("dir", ["--dir", str(src)], None),
                                ("stdin", ["--stdin"], b"".join(p + b"\n" for p in paths))):
        out = tmp_path / f"rows_{name}.txt"
        p = run_job(cli, engine, out, source=source, stdin=stdin)
        assert p.returncode == 0, f"{name}: {describe(p)}"
        results[name] = seed_rows(out)
    assert sorted(results["input"]) == sorted(paths)
    for name in ("glob", "dir", "stdin"):
        assert results[name] == results["input"], name


def test_missing_source_fails_the_job(cli, engine, tmp_path):
    out = tmp_path / "rows.txt"
    p = run_job(cli, engine, out, source=["--input", str(tmp_path / "no_list.txt")])
    assert p.returncode == 1 and b"no_list.txt" in p.stderr, describe(p)
    assert not out.exists()
    p = run_job(cli, engine, out, source=["--dir", str(tmp_path / "no_dir")])
    assert p.returncode == 1 and b"no_dir" in p.stderr, describe(p)
    p = run_job(cli, engine, out, source=["--glob", str(tmp_path / "nothing*.jpg")])
    assert p.returncode == 0, describe(p)
    assert out.read_bytes() == b""


# ---------------------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------------------
def test_metrics_use_beam_names(cli, engine, world, tmp_path):
    out = tmp_path / "rows.txt"
    mj, mp = tmp_path / "m.json", tmp_path / "m.prom"
    p = run_job(cli, engine, out, "--metrics", mj, "--prometheus", mp, "--max-batch", 8,
                source=["--input", str(world.list_file)])
    assert p.returncode == 3, describe(p)
    m = json.loads(mj.read_text())
    n_rows = len(parse_seed(out.read_bytes()))
    batches = int(SUMMARY_RE.search(p.stderr).group(4))
    assert m["num_inferences"] == n_rows == len(world.good)
    assert m["failed_batches_counter"] == 0
    assert m["inference_batch_latency_micro_secs"]["count"] == batches
    assert m["inference_batch_latency_micro_secs"]["min"] > 0
    bs = m["inference_request_batch_size"]
    assert bs["count"] == batches and bs["sum"] == n_rows and bs["max"] <= 8
    item_bytes = 3 * 32 * 32 * 4
    assert m["inference_request_batch_byte_size"]["sum"] == n_rows * item_bytes
    assert m["inference_request_batch_byte_size"]["max"] <= 8 * item_bytes
    assert m["load_model_latency_milli_secs"] > 0
    assert m["model_byte_size"] == engine.stat().st_size
    assert m["records_in"] == len(world.inputs)
    assert m["records_ok"] == len(world.good) and m["records_failed"] == len(world.bad)
    assert m["stage_read_decode_micro_secs"]["count"] == len(world.good)
    assert 0 < m["wall_seconds"] < 300
    prom = mp.read_text()
    for name in ("num_inferences", "failed_batches_counter", "load_model_latency_milli_secs", "model_byte_size",
                 "inference_batch_latency_micro_secs", "inference_request_batch_size",
                 "inference_request_batch_byte_size"):
        assert re.search(rf"^runinfer_{name}\S* ", prom, re.M), name
    assert re.search(rf"^runinfer_num_inferences {n_rows}$", prom, re.M)
    assert re.search(rf"^runinfer_model_byte_size {engine.stat().st_size}$", prom, re.M)


# ---------------------------------------------------------------------------------------------------------
# --draw
# ---------------------------------------------------------------------------------------------------------
def test_draw_writes_one_png_per_good_image(cli, engine, world, tmp_path):
    out = tmp_path / "rows.txt"
    draw = tmp_path / "drawn"
    p = run_job(cli, engine, out, "--draw", draw, source=["--input", str(world.list_file)])
    assert p.returncode == 3, describe(p)
    rows = seed_rows(out)
    files = sorted(draw.iterdir())
    assert len(files) == len(world.good)
    by_seq = {int(f.name.split("_", 1)[0]): f for f in files}
    assert len(by_seq) == len(files)
    probes_diff = probes = 0
    for key, dets in rows.items():
        seq = world.inputs.index(key)
        f = by_seq.pop(seq)
        with Image.open(f) as im:
            assert im.format == "PNG"
            drawn = np.asarray(im.convert("RGB")).astype(int)
        with Image.open(os.fsdecode(key)) as im:
            orig = np.asarray(im.convert("RGB")).astype(int)
        assert drawn.shape == orig.shape
        if dets:
            assert np.abs(drawn - orig).max() > 32, f"{f.name}: nothing drawn"
        h, w = orig.shape[:2]
        for d in dets:
            # the top edge of the box, half way along
            x = min(int((d["xmin"] + d["xmax"]) / 2), w - 1)
            y = min(int(d["ymin"]), h - 1)
            probes += 1
            probes_diff += np.abs(drawn[y, x] - orig[y, x]).max() > 16
    assert not by_seq, "a drawing for a record that failed"
    assert probes > 0
    assert probes_diff >= 0.95 * probes, f"only {probes_diff} of {probes} box edges are drawn"


# ---------------------------------------------------------------------------------------------------------
# --fast-decode
# ---------------------------------------------------------------------------------------------------------
def test_fast_decode_reports_full_size_pixels(cli, engine, world, tmp_path):
    """--fast-decode decodes JPEGs at least twice the 32x32 input in both axes at reduced size: their rows
    change (other pixels), every other row (PNGs, small JPEGs) stays byte-identical, and sizes and boxes
    are still in full-size pixels -- some box reaches beyond the reduced image."""
    rows = {}
    for name, extra in (("full", []), ("fast", ["--fast-decode"])):
        out = tmp_path / f"{name}.jsonl"
        p = run_job(cli, engine, out, "--format", "jsonl", "--ordered", *extra,
                    source=["--input", str(world.good_list)])
        assert p.returncode == 0, describe(p)
        rows[name] = {r["key"]: r for r in parse_jsonl(out.read_bytes())}
    assert rows["fast"].keys() == rows["full"].keys() and len(rows["full"]) == len(world.good)
    changed = reduced = beyond_reduced = 0
    for key, fast in rows["fast"].items():
        full = rows["full"][key]
        with Image.open(os.fsdecode(key)) as im:
            w, h = im.size
            is_jpeg = im.format == "JPEG"
        assert (fast["width"], fast["height"]) == (w, h)
        d = 1
        while is_jpeg and d < 8 and -(-w // (2 * d)) >= 32 and -(-h // (2 * d)) >= 32:
            d *= 2
        if d == 1:
            assert fast == full, f"{key!r}: decoded at full size, yet the row changed"
            continue
        reduced += 1
        changed += fast != full
        for det in fast["detections"]:
            assert 0 <= det["xmin"] < det["xmax"] <= w + 1e-3 and 0 <= det["ymin"] < det["ymax"] <= h + 1e-3
            beyond_reduced += det["xmax"] > -(-w // d) + 1 or det["ymax"] > -(-h // d) + 1
    assert reduced > 0 and changed > 0, (reduced, changed)
    assert beyond_reduced > 0


def test_fast_decode_is_off_while_drawing(cli, engine, world, tmp_path):
    """Drawn images are full size, so --draw decodes at full size even with --fast-decode."""
    rows = {}
    for name, extra in (("plain", []), ("fast", ["--fast-decode"])):
        out = tmp_path / f"{name}.txt"
        p = run_job(cli, engine, out, "--ordered", "--draw", tmp_path / f"drawn_{name}", *extra,
                    source=["--input", str(world.good_list)])
        assert p.returncode == 0, describe(p)
        rows[name] = out.read_bytes()
    assert rows["fast"] == rows["plain"]

    def sizes(paths):
        out = []
        for f in paths:
            with Image.open(f) as im:
                out.append(im.size)
        return sorted(out)

    assert sizes((tmp_path / "drawn_fast").iterdir()) == sizes(os.fsdecode(k) for k in world.good)
