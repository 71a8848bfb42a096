"""The real pretrained Q/DQ detector (ST SSD MobileNet v2 FPN-lite 256, int8, opset 18) against onnxruntime.

The model and photos live in the shared folder next to the repository (<repo>/../shared, see
shared/models/PROVENANCE.md); without it the test skips. An engine is built with the CLI (max batch 8), run
on real COCO photos (resized to 256x256 with Pillow's bilinear filter, uint8 NHWC) at batch 8 and at batch 1,
and its three outputs are compared with onnxruntime's (2 threads, default graph optimisations).

What is printed, per output: the share of elements within 1e-3 absolute of onnxruntime (the issue's
criterion is 99.9 %), and the same share between onnxruntime's own two execution modes (all graph
optimisations, where Q/DQ pairs around Conv become QLinearConv computed in integers, against none, where
DequantizeLinear -> float Conv -> QuantizeLinear run as written). That second number is the noise floor of a
quantized network: x / scale lands exactly on k + 0.5 for some elements (inputs and weights sit on
quantization grids), so any change in float summation order moves them by one step, and each
requantisation amplifies that through the 70 layers. docs/performance.md and docs/decisions.md record the
measurements.

What is asserted:
  - dtypes and shapes match; values are finite; the constant anchors output is bit-exact;
  - every output agrees with onnxruntime's default session on >= 99.9 % of its elements within 1e-3 (the
    issue's criterion). runinfer's CPU engine computes the Q/DQ groups onnxruntime computes in integers
    the same way (qdq_to_qlinear pass, QLinearConv / QLinearAdd kernels) and the float ones in its
    summation order, so it reproduces that session rather than the float simulation;
  - the first quantized activation of the network (the first convolution's QuantizeLinear) equals
    onnxruntime's float path except at exact rounding ties (at most one step, on at most 0.01 % of elements);
  - batch 1 and batch 8 give the same results for the same photo.

Environment: RI_ST_IMAGES (photos at batch 8, a multiple of 8; default 24), RI_ST_BATCH1_IMAGES (photos run
one by one; default 4), RI_CLI (the CLI, else build/runinfer).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, ort_int8_exact

SHARED = REPO_ROOT.parent / "shared"
MODEL = SHARED / "models" / "st_ssd_mobilenet_v2_fpnlite_coco80_256_int8" / "ssd_mobilenet_v2_fpnlite_10_256_int8.onnx"
PHOTOS = SHARED / "images" / "coco" / "mlperf_coco_val_tiny300"
MAX_BATCH = 8
ATOL = 1e-3
CLI_TIMEOUT_S = 600

if not MODEL.is_file() or not PHOTOS.is_dir():
    pytest.skip(f"the shared model folder is absent (looked for {MODEL} and {PHOTOS}); "
                "it sits next to the repository as <repo>/../shared", allow_module_level=True)

ort = pytest.importorskip("onnxruntime")
Image = pytest.importorskip("PIL.Image")


def _env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    return int(v) if v else default


def _run(cmd: list[str]) -> None:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert p.returncode == 0, f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"


def _photos(n: int) -> np.ndarray:
    files = sorted(PHOTOS.glob("*.jpg"))[:n]
    assert len(files) == n, f"need {n} photos in {PHOTOS}, found {len(files)}"
    return np.stack([np.asarray(Image.open(f).convert("RGB").resize((256, 256), Image.BILINEAR))
                     for f in files]).astype(np.uint8)


def _ort_session(model_path, optimize: bool):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])


def _ort_outputs(sess, x: np.ndarray) -> dict:
    outs = []
    for b in range(0, len(x), MAX_BATCH):
        outs.append(sess.run(None, {sess.get_inputs()[0].name: x[b:b + MAX_BATCH]}))
    return {o.name: np.concatenate([r[i] for r in outs]) for i, o in enumerate(sess.get_outputs())}


def _ri_outputs(cli: str, rie: Path, input_name: str, x: np.ndarray, batch: int, out_names, tmp: Path) -> dict:
    """Runs the engine over x in batches of `batch` with `runinfer infer`; outputs concatenated."""
    parts = {n: [] for n in out_names}
    for b in range(0, len(x), batch):
        inp = tmp / f"in_{batch}_{b}.npy"
        out_dir = tmp / f"out_{batch}_{b}"
        np.save(inp, x[b:b + batch])
        _run([cli, "infer", "--engine", str(rie), "--in", f"{input_name}={inp}", "--out", str(out_dir)])
        for n in out_names:
            parts[n].append(np.load(out_dir / f"{n.replace('/', '_')}.npy"))
    return {n: np.concatenate(v) for n, v in parts.items()}


def _share_close(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64)) <= ATOL))


@pytest.fixture(scope="module")
def engine(ri_cli, tmp_path_factory) -> Path:
    rie = tmp_path_factory.mktemp("st") / "st.rie"
    _run([ri_cli, "build", "--onnx", str(MODEL), "--save", str(rie), "--max-batch", str(MAX_BATCH)])
    return rie


def test_st_qdq_outputs_match_ort(ri_cli, engine, tmp_path):
    n8 = _env_int("RI_ST_IMAGES", 24)
    n1 = _env_int("RI_ST_BATCH1_IMAGES", 4)
    assert n8 % MAX_BATCH == 0 and 0 < n1 <= n8
    x = _photos(n8)
    sess_all = _ort_session(MODEL, optimize=True)
    sess_none = _ort_session(MODEL, optimize=False)
    input_name = sess_all.get_inputs()[0].name
    names = [o.name for o in sess_all.get_outputs()]
    ref = _ort_outputs(sess_all, x)
    ref_float = _ort_outputs(sess_none, x)
    ours8 = _ri_outputs(ri_cli, engine, input_name, x, MAX_BATCH, names, tmp_path)
    ours1 = _ri_outputs(ri_cli, engine, input_name, x[:n1], 1, names, tmp_path)

    print(f"\nST SSD MobileNet v2 FPN-lite int8: {n8} photos at batch {MAX_BATCH}, {n1} at batch 1; "
          f"share of elements within {ATOL:g} absolute")
    print(f"  {'output':28s} {'shape':18s} {'runinfer/ORT':>13s} {'runinfer/ORT-float':>19s} "
          f"{'ORT-float/ORT (floor)':>22s} {'max abs err':>12s}")
    failures = []
    for n in names:
        want, got = ref[n], ours8[n]
        assert got.shape == want.shape, f"{n}: shape {got.shape} != onnxruntime {want.shape}"
        assert got.dtype == want.dtype, f"{n}: dtype {got.dtype} != onnxruntime {want.dtype}"
        assert np.isfinite(got).all(), f"{n}: non-finite values"
        share = _share_close(got, want)
        share_float = _share_close(got, ref_float[n])
        floor = _share_close(ref_float[n], want)
        err = float(np.abs(got.astype(np.float64) - want).max())
        print(f"  {n:28s} {str(want.shape):18s} {100 * share:12.3f}% {100 * share_float:18.3f}% "
              f"{100 * floor:21.3f}% {err:12.4g}")
        if share < 0.999 and ort_int8_exact():  # where ORT's int8 sums saturate it is no reference (conftest)
            failures.append(f"{n}: {100 * share:.3f}% of elements within {ATOL:g} of onnxruntime's default "
                            "session, below the 99.9% criterion")
        if not np.array_equal(ours1[n], got[:n1]):
            d = float(np.abs(ours1[n].astype(np.float64) - got[:n1]).max())
            failures.append(f"{n}: batch 1 and batch {MAX_BATCH} differ (max {d:g})")
    assert not failures, "\n".join(failures)


def test_st_first_quantized_layer_differs_only_at_ties(ri_cli, tmp_path):
    """The first convolution's quantized output, exposed as a graph output, against onnxruntime's float path.

    The exact value of Conv(DequantizeLinear(x), DequantizeLinear(w)) / scale can sit on k + 0.5; float
    summation in another order then rounds it to the other neighbour. Anything else (a wrong zero point, a
    rounding mode other than half to even, a wrong scale axis) shows up as many or larger differences."""
    import onnx
    from onnx import helper

    m = onnx.load(str(MODEL))
    inits = {t.name: t for t in m.graph.initializer}
    producer = {o: nd for nd in m.graph.node for o in nd.output}
    first_q = None
    for nd in m.graph.node:
        if nd.op_type != "QuantizeLinear":
            continue
        src = producer.get(nd.input[0])
        while src is not None and src.op_type in ("Clip", "Relu"):
            src = producer.get(src.input[0])
        if src is not None and src.op_type == "Conv":
            first_q = nd
            break
    assert first_q is not None, "no QuantizeLinear after a Conv in the model"
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info(first_q.output[0], inits[first_q.input[2]].data_type, None))
    cut = tmp_path / "first_layer.onnx"
    onnx.save(m, str(cut))
    rie = tmp_path / "first_layer.rie"
    _run([ri_cli, "build", "--onnx", str(cut), "--save", str(rie), "--max-batch", str(MAX_BATCH)])
    x = _photos(MAX_BATCH)
    sess = _ort_session(cut, optimize=False)
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0].astype(np.int32)
    got = _ri_outputs(ri_cli, rie, sess.get_inputs()[0].name, x, MAX_BATCH, [first_q.output[0]], tmp_path)
    got = got[first_q.output[0]].astype(np.int32)
    d = np.abs(got - want)
    print(f"\nfirst quantized layer {want.shape}: {int((d == 1).sum())} elements one step apart, "
          f"{int((d > 1).sum())} more than one, of {d.size}")
    assert d.max() <= 1, f"differences of {d.max()} quantization steps"
    assert (d > 0).mean() <= 1e-4, f"{100 * (d > 0).mean():.4f}% of elements differ"
