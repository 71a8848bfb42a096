"""Shared pytest fixtures for runinfer's Python tests.

Fixtures
    generated_models  session-scoped Path to a folder holding every reference model
                      (models/make_models.py), built once; into $RI_MODELS_DIR when set
                      (kept and reused across sessions while the generator is unchanged),
                      else into a pytest temp dir.
    ri_cli            path of the built runinfer CLI; skips the test when it is missing.

Helpers (import with `from conftest import ...`)
    REPO_ROOT, find_cli(), ort_run(model_path, feeds, optimize=False)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_SRC = REPO_ROOT / "models"
if str(MODELS_SRC) not in sys.path:
    sys.path.insert(0, str(MODELS_SRC))

import make_models  # noqa: E402  (needs MODELS_SRC on sys.path)


def find_cli() -> str | None:
    """The runinfer CLI: $RI_CLI if set, else build/runinfer; None when not an executable file."""
    env = os.environ.get("RI_CLI")
    cand = Path(env) if env else REPO_ROOT / "build" / "runinfer"
    if cand.is_file() and os.access(cand, os.X_OK):
        return str(cand)
    return None


def find_lib() -> str | None:
    """libruninfer.so: $RI_LIB if set, else the one beside the CLI find_cli() returns (or build/'s); None when
    absent."""
    env = os.environ.get("RI_LIB")
    if env:
        return env
    cli = find_cli()
    cand = Path(cli).parent / "libruninfer.so" if cli else REPO_ROOT / "build" / "libruninfer.so"
    return str(cand) if cand.is_file() else None


# Runs argv[2:] with RLIMIT_FSIZE at argv[1] bytes and SIGXFSZ ignored (writes past the limit fail with EFBIG).
_FSIZE_EXEC = ("import os, resource, signal, sys\n"
               "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
               "n = int(sys.argv[1])\n"
               "resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))\n"
               "os.execv(sys.argv[2], sys.argv[2:])\n")


def fsize_limited(cmd: list, nbytes: int) -> list:
    """cmd run under a file-size limit of nbytes, set by a fresh Python interpreter that then execs cmd.

    Not a preexec_fn: the test process may hold gRPC threads (Apache Beam's), whose fork handlers have aborted
    the child between fork and exec (seen in CI as a SIGABRT with an epoll_wait error)."""
    return [sys.executable, "-c", _FSIZE_EXEC, str(nbytes)] + [str(c) for c in cmd]


def binding_setup(need_cli: bool = True):
    """For tests of the Python binding: puts python/ on sys.path, points $RI_LIB at the library find_lib()
    finds, and returns the skip mark for when the library (or, with need_cli, the CLI) is missing. Use as
    `pytestmark = binding_setup()` before importing runinfer."""
    py = str(REPO_ROOT / "python")
    if py not in sys.path:
        sys.path.insert(0, py)
    lib = find_lib()
    if lib:
        os.environ["RI_LIB"] = lib
    missing = lib is None or (need_cli and find_cli() is None)
    what = "the runinfer CLI and libruninfer.so" if need_cli else "libruninfer.so"
    return pytest.mark.skipif(missing, reason=f"needs {what} (set $RI_CLI and $RI_LIB, or build into build/)")


def cli_missing_reason() -> str:
    env = os.environ.get("RI_CLI")
    where = f"$RI_CLI={env}" if env else f"{REPO_ROOT / 'build' / 'runinfer'} (set $RI_CLI to override)"
    return f"runinfer CLI not found at {where}; build it first (cmake -B build && cmake --build build)"


def ort_run(model_path, feeds: dict, optimize: bool = False):
    """Run a model with onnxruntime on CPU. Returns ({output_name: array}, session).

    optimize=False disables ORT's graph rewrites so the reference is op-by-op."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    outs = sess.run(None, feeds)
    return {o.name: v for o, v in zip(sess.get_outputs(), outs)}, sess


_ORT_INT8_EXACT = None


def ort_int8_exact() -> bool:
    """Whether onnxruntime's uint8 x int8 convolution sums exactly on this CPU. Its x86 kernels without VNNI
    add pairs of u8 x s8 products in 16-bit saturating arithmetic (pmaddubsw), so a pair beyond 32767
    (255 * 127 * 2 here) is clipped and ORT's int8 results then differ from the exact integer sums that
    runinfer computes. A one-node QLinearConv whose exact output is 65 gives 33 when ORT saturates."""
    global _ORT_INT8_EXACT
    if _ORT_INT8_EXACT is None:
        import numpy as np
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        def init(name, v):
            return numpy_helper.from_array(np.asarray(v), name)

        inits = [init("xs", np.float32(1.0)), init("xz", np.uint8(0)), init("w", np.full((1, 2, 1, 1), 127, np.int8)),
                 init("ws", np.float32(1.0)), init("wz", np.int8(0)), init("ys", np.float32(1000.0)),
                 init("yz", np.uint8(0))]
        node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"])
        graph = helper.make_graph([node], "probe", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 2, 1, 1])],
                                  [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        model.ir_version = 9
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        y = sess.run(None, {"x": np.full((1, 2, 1, 1), 255, np.uint8)})[0]
        _ORT_INT8_EXACT = int(y.reshape(-1)[0]) == 65
    return _ORT_INT8_EXACT


def skip_unless_ort_int8_exact():
    """Skips a test whose int8 comparison with onnxruntime failed where ORT's sums saturate (called on a
    mismatch, so the test still asserts wherever ORT is exact and wherever the outputs agree)."""
    if not ort_int8_exact():
        pytest.skip("onnxruntime's uint8 x int8 kernels saturate on this CPU (16-bit pair sums without VNNI: "
                    "a probe QLinearConv gives 33 for the exact 65), so its int8 outputs are not a reference "
                    "here; runinfer's int8 kernels are checked against exact integer references in tests/c/test_qlinear_kernels.c")


@pytest.fixture(scope="session")
def generated_models(tmp_path_factory) -> Path:
    env = os.environ.get("RI_MODELS_DIR")
    out = Path(env) if env else tmp_path_factory.mktemp("models")
    make_models.build_models(str(out), reuse=True, verbose=False)
    return out


@pytest.fixture(scope="session")
def ri_cli() -> str:
    cli = find_cli()
    if cli is None:
        pytest.skip(cli_missing_reason())
    return cli


@pytest.fixture(scope="module")
def tiny_ssd_engine(generated_models):
    """A CPU engine of the tiny SSD with max batch 4 (closed after the module)."""
    import runinfer
    e = runinfer.Engine.build(generated_models / "tiny_ssd.onnx", max_batch=4)
    yield e
    e.close()
