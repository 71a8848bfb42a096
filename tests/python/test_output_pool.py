"""Output arrays are reused across runs of a context only when nothing outside the context refers to them
(runinfer._outpool): outputs a caller keeps, or keeps a view, slice or buffer of, are never overwritten by a
later run, and arrays the caller dropped are written again instead of new ones being allocated."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import binding_setup

pytestmark = binding_setup(need_cli=False)

import runinfer  # noqa: E402


@pytest.fixture(scope="module")
def engine(tiny_ssd_engine):
    return tiny_ssd_engine


def _batch(engine, n, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n,) + tuple(engine.inputs[0].shape[1:])).astype(np.float32)


def _copy(out):
    return {k: v.copy() for k, v in out.items()}


def test_kept_outputs_are_never_overwritten(engine):
    ctx = runinfer.Context(engine)
    x1, x2, x3 = (_batch(engine, 2, s) for s in (1, 2, 3))
    ref1 = _copy(ctx.run(x1))
    kept = ctx.run(x1)
    name = engine.outputs[-1].name
    view = ctx.run(x1)[name][1, :3]  # only a view of the second set survives
    buf = memoryview(ctx.run(x1)[name])  # only a buffer export of the third
    for x in (x2, x3, x2, x3):
        ctx.run(x)
    for k in ref1:
        assert np.array_equal(kept[k], ref1[k]), k
    assert np.array_equal(view, ref1[name][1, :3])
    assert np.array_equal(np.asarray(buf), ref1[name])
    ctx.close()


def test_dropped_outputs_are_reused(engine):
    ctx = runinfer.Context(engine)
    x1, x2 = _batch(engine, 3, 4), _batch(engine, 3, 5)
    first = ctx.run(x1)
    addrs = {k: v.ctypes.data for k, v in first.items()}
    del first
    second = ctx.run(x2)
    assert {k: v.ctypes.data for k, v in second.items()} == addrs
    ref2 = _copy(runinfer.Context(engine).run(x2))
    assert all(np.array_equal(second[k], ref2[k]) for k in ref2)
    # another batch size gets arrays of its own shape
    third = ctx.run(x1[:1])
    assert all(v.shape[0] == 1 for v in third.values())
    ctx.close()
