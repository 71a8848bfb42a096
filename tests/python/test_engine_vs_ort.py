"""Conformance: the runinfer CLI agrees with onnxruntime on every reference model.

For each model an engine is built once (`runinfer build --max-batch 8`), then run at batch
1 and 8 on fresh random inputs (seed from the clock, printed; set $RI_TEST_SEED to replay).
Per output: max|ours - ort| / max(max|ort|, 1e-6) must be <= 1e-4.
Skipped when the CLI has not been built ($RI_CLI, else build/runinfer).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import make_models
from conftest import ort_run

MODELS = ["tiny_conv", "tiny_ssd", "tiny_shape_ops", "tiny_qdq", "ssd_mobilenet_v2",
          "ssd_mobilenet_v2_nhwc", "mobilenet_v2", "resnet50"]
MAX_BATCH = 8
TOL = 1e-4
CLI_TIMEOUT_S = 600


def _run(cmd: list[str]) -> None:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    print(f"$ {' '.join(cmd)}  ({time.perf_counter() - t0:.2f} s, rc {p.returncode})")
    if p.returncode != 0:
        pytest.fail(f"command failed (rc {p.returncode}): {' '.join(cmd)}\n"
                    f"--- stdout ---\n{p.stdout[-4000:]}\n--- stderr ---\n{p.stderr[-4000:]}")


@pytest.fixture(scope="module")
def engine_for(ri_cli, generated_models, tmp_path_factory):
    """name -> path of a built engine; each model is built at most once per module."""
    cache: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("engines")

    def get(name: str) -> Path:
        if name not in cache:
            rie = root / f"{name}.rie"
            _run([ri_cli, "build", "--onnx", str(generated_models / f"{name}.onnx"),
                  "--save", str(rie), "--max-batch", str(MAX_BATCH)])
            assert rie.is_file(), f"build reported success but wrote no {rie}"
            cache[name] = rie
        return cache[name]

    return get


def _seed() -> int:
    env = os.environ.get("RI_TEST_SEED")
    return int(env) if env else time.time_ns() % (2 ** 32)


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("name", MODELS)
def test_engine_matches_ort(name, batch, ri_cli, generated_models, engine_for, tmp_path):
    model_path = generated_models / f"{name}.onnx"
    rie = engine_for(name)
    seed = _seed()
    print(f"{name} batch {batch}: input seed {seed} (replay with RI_TEST_SEED={seed})")
    rng = np.random.default_rng(seed)

    import onnxruntime as ort
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    feeds, args = {}, []
    for inp in sess.get_inputs():
        shape = [batch] + list(inp.shape[1:])
        x = make_models.make_input(make_models.MODELS[name], shape, rng)
        feeds[inp.name] = x
        f = tmp_path / f"in_{len(args)}.npy"
        np.save(f, x)
        args += ["--in", f"{inp.name}={f}"]
    del sess

    ref, sess = ort_run(model_path, feeds)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    _run([ri_cli, "infer", "--engine", str(rie), *args, "--out", str(out_dir)])

    failures = []
    for o in sess.get_outputs():
        f = out_dir / f"{o.name}.npy"
        assert f.is_file(), f"CLI wrote no {f.name} (has: {sorted(p.name for p in out_dir.iterdir())})"
        ours = np.load(f)
        want = ref[o.name]
        assert ours.shape == want.shape, f"{o.name}: shape {ours.shape} != ort {want.shape}"
        assert ours.dtype == want.dtype, f"{o.name}: dtype {ours.dtype} != ort {want.dtype}"
        if not np.isfinite(ours).all():
            failures.append(f"{o.name}: non-finite values")
            continue
        err = float(np.abs(ours.astype(np.float64) - want.astype(np.float64)).max())
        rel = err / max(float(np.abs(want).max()), 1e-6)
        print(f"  {o.name:12s} {str(want.shape):18s} max abs err {err:.3e}  rel {rel:.3e}")
        if rel > TOL:
            failures.append(f"{o.name}: rel err {rel:.3e} > {TOL:g}")
    assert not failures, f"{name} batch {batch} seed {seed}: " + "; ".join(failures)
