"""Per-run timing (ri_context_set_timing / ri_context_last_timing) on the CPU, and what `runinfer bench`
reports from it.

On the CPU the whole call is the compute: h2d and d2h are 0, enqueue equals compute, compute lies within the
wall time measured around the call, and with timing off (the default, or turned off again) every phase is 0.
`runinfer bench --json` keeps its latency keys and adds one summary per phase; on the CPU it says the
phases hold no device transfers and prints no GPU lines. The GPU side (real events around the copies and
the compute) is checked by tests/gpu/test_cuda_ops on a GPU.
"""

from __future__ import annotations

import json
import subprocess
import time

import numpy as np
import pytest

from conftest import binding_setup

pytestmark = binding_setup()

import runinfer  # noqa: E402

PHASES = ("h2d_ms", "compute_ms", "d2h_ms", "enqueue_ms")


@pytest.fixture(scope="module")
def engine(generated_models):
    e = runinfer.Engine.build(generated_models / "tiny_ssd.onnx", max_batch=4)
    yield e
    e.close()


def _inputs(engine, batch: int, seed: int):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch,) + tuple(i.shape[1:])).astype(np.float32) for i in engine.inputs]


def test_timing_off_by_default_and_cleared(engine):
    with runinfer.Context(engine) as ctx:
        ctx.run(*_inputs(engine, 2, 1))
        assert ctx.last_timing() == {k: 0.0 for k in PHASES}
        ctx.set_timing(True)
        ctx.run(*_inputs(engine, 2, 2))
        assert ctx.last_timing()["compute_ms"] > 0
        ctx.set_timing(False)
        assert ctx.last_timing() == {k: 0.0 for k in PHASES}, "turning timing off clears the record"
        ctx.run(*_inputs(engine, 2, 3))
        assert ctx.last_timing() == {k: 0.0 for k in PHASES}


def test_cpu_phases(engine):
    with runinfer.Context(engine) as ctx:
        ctx.set_timing(True)
        for batch in (1, 4, 3):
            x = _inputs(engine, batch, batch)
            t0 = time.perf_counter()
            ctx.run(*x)
            wall = (time.perf_counter() - t0) * 1e3
            t = ctx.last_timing()
            assert t["h2d_ms"] == 0 and t["d2h_ms"] == 0, t
            assert 0 < t["compute_ms"] <= wall, (t, wall)
            assert t["enqueue_ms"] == t["compute_ms"], t


def test_timing_does_not_change_outputs(engine):
    x = _inputs(engine, 3, 7)
    with runinfer.Context(engine) as a, runinfer.Context(engine) as b:
        b.set_timing(True)
        ra, rb = a.run(*x), b.run(*x)
    for k in ra:
        assert np.array_equal(ra[k], rb[k]), k


def test_bench_reports_phases(ri_cli, generated_models, tmp_path):
    rie = tmp_path / "tiny.rie"
    subprocess.run([ri_cli, "build", "--onnx", str(generated_models / "tiny_ssd.onnx"), "--save", str(rie),
                    "--max-batch", "4"], check=True, capture_output=True)
    js = tmp_path / "b.json"
    p = subprocess.run([ri_cli, "bench", "--engine", str(rie), "--batch", "4", "--iterations", "30", "--json",
                        str(js)], check=True, capture_output=True, text=True)
    r = json.loads(js.read_text())
    assert r["batch"] == 4 and r["iterations"] == 30 and r["throughput"] > 0
    assert r["device_phases"] is False
    for key in ("latency_ms", "enqueue_ms", "h2d_ms", "compute_ms", "d2h_ms"):
        s = r[key]
        assert s["min"] <= s["median"] <= s["p90"] <= s["p95"] <= s["p99"] <= s["max"], (key, s)
    assert r["h2d_ms"]["max"] == 0 and r["d2h_ms"]["max"] == 0
    assert 0 < r["compute_ms"]["median"] <= r["latency_ms"]["max"]
    assert "latency (ms):" in p.stdout and "GPU compute" not in p.stdout


def test_device_count_and_runtime_device(engine, tmp_path):
    """ri_device_count: one CPU, a non-negative number of CUDA GPUs, an error for an unknown kind.
    ri_runtime_set_device: a CPU engine loads onto "cpu" and is refused on a CUDA device with a message
    naming both devices (or, in a build without CUDA, naming the missing backend)."""
    import ctypes

    from runinfer import _lib

    L = _lib.lib()
    n = ctypes.c_int(-1)
    assert L.ri_device_count(b"cpu", ctypes.byref(n)) == 0 and n.value == 1
    assert L.ri_device_count(b"cuda", ctypes.byref(n)) == 0 and n.value >= 0
    assert L.ri_device_count(b"tpu", ctypes.byref(n)) != 0
    rie = tmp_path / "e.rie"
    engine.save(rie)
    rt = ctypes.c_void_p()
    assert L.ri_runtime_create(ctypes.byref(rt)) == 0
    try:
        e = ctypes.c_void_p()
        assert L.ri_runtime_set_device(rt, b"cpu") == 0
        assert L.ri_runtime_load(rt, str(rie).encode(), ctypes.byref(e)) == 0
        L.ri_engine_destroy(e)
        st = L.ri_runtime_set_device(rt, b"cuda:0")
        if st == 0:
            assert L.ri_runtime_load(rt, str(rie).encode(), ctypes.byref(e)) != 0
            msg = _lib.text(L.ri_runtime_last_error(rt))
            assert "built for device 'cpu'" in msg and "'cuda:0'" in msg, msg
        else:
            assert "CUDA" in _lib.text(L.ri_runtime_last_error(rt))
        assert L.ri_runtime_set_device(rt, b"gpu") != 0
    finally:
        L.ri_runtime_destroy(rt)


def test_python_device_api(engine, tmp_path):
    """runinfer.device_count and Engine.load(device=...): the Python face of the same calls."""
    assert runinfer.device_count("cpu") == 1
    assert runinfer.device_count("cuda") >= 0
    with pytest.raises(runinfer.Error):
        runinfer.device_count("tpu")
    rie = tmp_path / "p.rie"
    engine.save(rie)
    x = _inputs(engine, 2, 11)
    with runinfer.Engine.load(rie, device="cpu") as e:
        ref = engine.run(*x)
        got = e.run(*x)
        assert all(np.array_equal(ref[k], got[k]) for k in ref)
    with pytest.raises(runinfer.Error) as ei:
        runinfer.Engine.load(rie, device="cuda:0")
    assert "cuda" in str(ei.value).lower()
