"""Engine.run_examples, ri_context_run_items and ri_context_input_buffer (CPU): examples given as a batch's
items give exactly Engine.run's outputs, over several batch sizes on one context (the buffer is reused),
also from non-contiguous and read-only arrays and from items already in the input buffer;
examples that do not match the engine (dtype, shape, names, too many) take Engine.run's path with its checks
and errors; the C call refuses a bad index. On a GPU the buffer is the pinned staging (tests/gpu and the Beam
GPU run exercise it)."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from conftest import binding_setup

pytestmark = binding_setup(need_cli=False)

import runinfer  # noqa: E402
from runinfer import _lib  # noqa: E402


@pytest.fixture(scope="module")
def engine(tiny_ssd_engine):
    return tiny_ssd_engine


def _examples(engine, n, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(engine.inputs[0].shape[1:])
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]


def test_same_outputs_as_run(engine):
    for n, seed in ((3, 1), (1, 2), (4, 3), (2, 4)):
        xs = _examples(engine, n, seed)
        got = engine.run_examples(xs)
        ref = engine.run(np.stack(xs))
        assert set(got) == set(ref)
        for k in ref:
            assert got[k].shape == ref[k].shape and np.array_equal(got[k], ref[k]), k


def test_forms_and_fallbacks(engine):
    name = engine.inputs[0].name
    xs = _examples(engine, 3, 5)
    ref = engine.run(np.stack(xs))
    for form in ([(x,) for x in xs], [{name: x} for x in xs]):
        got = engine.run_examples(form)
        assert all(np.array_equal(got[k], ref[k]) for k in ref)
    many = _examples(engine, 6, 6)  # above max batch: Engine.run splits
    got = engine.run_examples(many)
    assert all(np.array_equal(got[k], engine.run(np.stack(many))[k]) for k in ref)
    with pytest.raises(runinfer.Error, match="dtype|float"):
        engine.run_examples([x.astype(np.float64) for x in xs])
    with pytest.raises(runinfer.Error, match="share shapes"):
        engine.run_examples([xs[0], xs[1][..., :3]])
    with pytest.raises(runinfer.Error, match="unknown input"):
        engine.run_examples([{name: x, "extra": x} for x in xs])
    with pytest.raises(runinfer.Error):
        engine.run_examples([])


def test_input_buffer_c_api(engine):
    L = _lib.lib()
    ctx = runinfer.Context(engine)
    p, n = ctypes.c_void_p(), ctypes.c_size_t()
    assert L.ri_context_input_buffer(ctx._h, 0, ctypes.byref(p), ctypes.byref(n)) == runinfer.RI_OK
    per_item = int(np.prod(engine.inputs[0].shape[1:])) * 4
    assert p.value and n.value == per_item * engine.max_batch
    q = ctypes.c_void_p()
    assert L.ri_context_input_buffer(ctx._h, 0, ctypes.byref(q), None) == runinfer.RI_OK and q.value == p.value
    assert L.ri_context_input_buffer(ctx._h, 7, ctypes.byref(q), None) == runinfer.RI_ERR_INVALID_ARG
    assert "input index 7" in _lib.text(L.ri_context_last_error(ctx._h))
    ctx.close()


def test_non_contiguous_examples(engine):
    xs = _examples(engine, 3, 7)
    # the same values through strided views (a reversed copy read backwards)
    views = [np.ascontiguousarray(x[..., ::-1])[..., ::-1] for x in xs]
    assert not views[0].flags.c_contiguous
    got = engine.run_examples(views)
    ref = engine.run(np.stack(xs))
    assert all(np.array_equal(got[k], ref[k]) for k in ref)


def test_item_addresses_writable_and_read_only(engine):
    """Item addresses come from a buffer export for writable arrays and from a.ctypes.data otherwise; both
    must name the data itself, and read-only examples (e.g. memory-mapped) run like writable ones."""
    from runinfer.engine import _address
    xs = _examples(engine, 3, 9)
    ro = [np.frombuffer(x.tobytes(), dtype=x.dtype).reshape(x.shape) for x in xs]
    assert not ro[0].flags.writeable and xs[0].flags.writeable
    empty = np.empty((0,), np.float32)
    for a in (xs[0], ro[0], xs[1][1:], empty):
        assert _address(a) == a.ctypes.data
    got = engine.run_examples(ro)
    ref = engine.run(np.stack(xs))
    assert all(np.array_equal(got[k], ref[k]) for k in ref)
    mixed = engine.run_examples([xs[0], ro[1], xs[2]])
    assert all(np.array_equal(mixed[k], ref[k]) for k in ref)


def _run_items(ctx, engine, ptrs, batch):
    L = _lib.lib()
    outs = [np.empty((batch,) + tuple(o.shape[1:]), o.dtype) for o in engine.outputs]
    items = (ctypes.c_void_p * len(ptrs))(*ptrs)
    out_ptrs = (ctypes.c_void_p * len(outs))(*[o.ctypes.data for o in outs])
    return L.ri_context_run_items(ctx._h, batch, items, out_ptrs), outs


def test_run_items_c_api(engine):
    L = _lib.lib()
    ctx = runinfer.Context(engine)
    xs = _examples(engine, 3, 8)
    ref = engine.run(np.stack(xs))
    st, outs = _run_items(ctx, engine, [x.ctypes.data for x in xs], 3)
    assert st == runinfer.RI_OK
    assert all(np.array_equal(o, ref[e.name]) for o, e in zip(outs, engine.outputs))
    # items already at their places in the input buffer (and one from elsewhere) are used as they are
    p, n = ctypes.c_void_p(), ctypes.c_size_t()
    assert L.ri_context_input_buffer(ctx._h, 0, ctypes.byref(p), ctypes.byref(n)) == runinfer.RI_OK
    per = xs[0].nbytes
    for b in (0, 2):
        ctypes.memmove(p.value + b * per, xs[b].ctypes.data, per)
    st, outs = _run_items(ctx, engine, [p.value, xs[1].ctypes.data, p.value + 2 * per], 3)
    assert st == runinfer.RI_OK
    assert all(np.array_equal(o, ref[e.name]) for o, e in zip(outs, engine.outputs))
    # refusals name what is wrong and write nothing
    st, _ = _run_items(ctx, engine, [xs[0].ctypes.data, None, xs[2].ctypes.data], 3)
    assert st == runinfer.RI_ERR_INVALID_ARG
    assert "item 1 of input 0" in _lib.text(L.ri_context_last_error(ctx._h))
    for bad in (0, engine.max_batch + 1):
        st, _ = _run_items(ctx, engine, [xs[0].ctypes.data] * max(bad, 1), bad)
        assert st == runinfer.RI_ERR_INVALID_ARG
        assert f"batch {bad} is outside" in _lib.text(L.ri_context_last_error(ctx._h))
    ctx.close()
