"""The pipeline's threads under stress: many decode threads, tiny batches and waits, ordered and unordered
output, good and bad inputs mixed (the good ones PNGs and JPEGs, which take the planar JPEG path). With $RI_TSAN_CLI (a ThreadSanitizer build of the CLI, as
scripts/test.sh makes) the same runs must produce no ThreadSanitizer report; without it the normal CLI is
used and only the results are checked."""

import os
import subprocess

import numpy as np
import pytest


@pytest.fixture(scope="module")
def setup(tmp_path_factory, generated_models, ri_cli):
    cli = os.environ.get("RI_TSAN_CLI") or ri_cli
    d = tmp_path_factory.mktemp("threads")
    from PIL import Image

    rng = np.random.default_rng(3)
    paths = []
    for i in range(48):
        p = d / f"im{i:03d}.{'jpg' if i % 2 else 'png'}"
        Image.fromarray(rng.integers(0, 255, (20 + i % 5, 18, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    bad = [str(d / "missing.png"), str(d)]
    (d / "garbage.jpg").write_bytes(b"\xff\xd8\xff garbage")
    bad.append(str(d / "garbage.jpg"))
    inputs = []
    for i, p in enumerate(paths):
        inputs.append(p)
        if i % 16 == 5:
            inputs.append(bad[(i // 16) % len(bad)])
    lst = d / "list.txt"
    lst.write_text("\n".join(inputs) + "\n")
    eng = d / "tiny_conv.rie"
    subprocess.run([cli, "build", "--onnx", str(generated_models / "tiny_conv.onnx"), "--save", str(eng),
                    "--max-batch", "5", "--threads", "2",
                    "--meta", "preprocess=size=16x16;layout=nchw;dtype=float32;mean=127.5,127.5,127.5;"
                              "scale=0.0078125,0.0078125,0.0078125", "--meta", "task=classify"],
                   check=True, capture_output=True)
    return cli, d, lst, eng, inputs, paths


def _run(setup, ordered, contexts, post_threads=0):
    cli, d, lst, eng, inputs, paths = setup
    out = d / f"out_{int(ordered)}_{contexts}_{post_threads}.csv"
    cmd = [cli, "run", "--engine", str(eng), "--input", str(lst), "--output", str(out), "--max-batch", "5",
           "--min-batch", "2", "--max-wait-us", "50", "--decode-threads", "4", "--contexts", str(contexts),
           "--post-threads", str(post_threads), "--no-progress"]
    if ordered:
        cmd.append("--ordered")
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert "ThreadSanitizer" not in r.stderr, r.stderr[-4000:]
    assert r.returncode == 3, r.stderr  # some inputs are bad
    rows = out.read_text().splitlines()
    dead = (d / f"{out.name}.dead-letter.jsonl").read_text().splitlines()
    assert len(rows) == len(paths)
    assert len(rows) + len(dead) == len(inputs)
    keys = [r.split(";", 1)[0] for r in rows]
    if ordered:
        assert keys == paths
    else:
        assert sorted(keys) == sorted(paths)
    return rows, sorted(dead)


@pytest.mark.parametrize("ordered,contexts", [(False, 1), (True, 1), (False, 3), (True, 3)])
def test_threads_stress(setup, ordered, contexts):
    _run(setup, ordered, contexts)


def test_post_threads_share_batches(setup):
    """Post-processing workers claim the records of a batch one by one: with 1, 7 (more than a batch) and the
    default (decode threads) the rows and dead letters are the same, and no ThreadSanitizer report."""
    base = _run(setup, True, 2, post_threads=1)
    assert _run(setup, True, 2, post_threads=7) == base
    assert _run(setup, True, 2, post_threads=0) == base


def test_post_threads_out_of_range(setup):
    """--post-threads outside 0..256 is refused before anything runs: exit 2, the option named, no output."""
    cli, d, lst, eng, inputs, paths = setup
    out = d / "out_bad_post.csv"
    r = subprocess.run([cli, "run", "--engine", str(eng), "--input", str(lst), "--output", str(out),
                        "--post-threads", "300", "--no-progress"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "--post-threads" in r.stderr
    assert not out.exists()
