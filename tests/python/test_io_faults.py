"""I/O faults in `runinfer run` (issue 6): the output disk fills up mid-run.

The fault is real, not mocked: the child process runs with RLIMIT_FSIZE set low and SIGXFSZ ignored, so
write(2) fails with EFBIG once a file would grow past the limit, exactly as a full disk makes it fail
with ENOSPC. Checks: the job stops with a clear error naming the file, no partial output is left under the
final name (rows are committed atomically), the summary says what was not written, and a re-run without the
limit completes every record exactly once."""

import os
import subprocess

import numpy as np
import pytest

from conftest import fsize_limited


def _write_images(d, n):
    from PIL import Image

    rng = np.random.default_rng(7)
    paths = []
    for i in range(n):
        a = rng.integers(0, 255, (24 + i % 9, 40, 3), dtype=np.uint8)
        p = d / f"img_{i:04d}.png"
        Image.fromarray(a).save(p)
        paths.append(str(p))
    return paths


@pytest.fixture(scope="module")
def engine(tmp_path_factory, generated_models, ri_cli):
    out = tmp_path_factory.mktemp("io") / "ssd.rie"
    meta = [
        "--meta", "preprocess=size=300x300;layout=nchw;dtype=float32;mean=127.5,127.5,127.5;"
                  "scale=0.0078125,0.0078125,0.0078125;resize=bilinear;order=rgb",
        # TF-OD SSD anchors (the default); threshold 0 so rows are long (random weights, 100 boxes each)
        "--meta", "detect=score_threshold=0.0;max_total=100",
    ]
    subprocess.run([ri_cli, "build", "--onnx", str(generated_models / "ssd_mobilenet_v2.onnx"), "--save", str(out),
                    "--max-batch", "8"] + meta, check=True, capture_output=True)
    return out


def test_disk_full_then_rerun(tmp_path, engine, ri_cli):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    paths = _write_images(imgs, 40)
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join(paths) + "\n")
    out = tmp_path / "preds.csv"
    cmd = [ri_cli, "run", "--engine", str(engine), "--input", str(lst), "--output", str(out),
           "--max-batch", "8", "--no-progress", "--ordered"]
    # the rows of 60 images with up to 100 detections each are far larger than 64 KiB
    r = subprocess.run(fsize_limited(cmd, 64 * 1024), capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert "cannot write" in r.stderr and "preds.csv" in r.stderr, r.stderr
    assert "rows written" in r.stderr  # the summary of what happened before the failure
    assert not out.exists(), "a failed job must not leave a partial output under the final name"
    assert not (tmp_path / "preds.csv.tmp").exists(), "the temporary output must be removed"
    # re-run without the fault: every record exactly once
    r2 = subprocess.run(cmd, capture_output=True, text=True)
    assert r2.returncode == 0, r2.stderr
    rows = out.read_text().splitlines()
    keys = [row.split(";", 1)[0] for row in rows]
    assert keys == paths, "re-run must write every record once, in input order"
    for row in rows:
        assert row.split(";", 1)[1].startswith("[")


def test_unwritable_output_dir(tmp_path, engine, ri_cli):
    if os.geteuid() == 0:
        target = "/proc/runinfer-cannot-write-here/preds.csv"  # not creatable even for root
    else:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o500)
        target = str(d / "preds.csv")
    lst = tmp_path / "list.txt"
    lst.write_text("/nonexistent.jpg\n")
    r = subprocess.run([ri_cli, "run", "--engine", str(engine), "--input", str(lst), "--output", target,
                        "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "cannot create" in r.stderr and "preds.csv" in r.stderr, r.stderr
