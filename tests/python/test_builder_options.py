"""Builder options of GPU tactic timing through the Python binding, where no GPU is needed: builder_level
outside 0..5 and an empty timing_cache path are refused with RI_ERR_INVALID_ARG, a corrupt timing cache fails
the build naming the file, and a CPU engine is the same at every level (and writes no cache: nothing is
timed). The GPU side (timed tactics, cold and warm build times) is tests/gpu/test_cuda_tactics.
"""

from __future__ import annotations

import pytest

from conftest import binding_setup

pytestmark = binding_setup(need_cli=False)

import runinfer  # noqa: E402


def test_level_and_cache_path_are_checked(generated_models):
    for level in (-1, 6):
        with pytest.raises(runinfer.Error) as exc:
            runinfer.Engine.build(generated_models / "tiny_conv.onnx", builder_level=level)
        assert exc.value.status == runinfer.RI_ERR_INVALID_ARG
        assert "0..5" in exc.value.message
    with pytest.raises(runinfer.Error) as exc:
        runinfer.Engine.build(generated_models / "tiny_conv.onnx", timing_cache="")
    assert exc.value.status == runinfer.RI_ERR_INVALID_ARG


def test_corrupt_timing_cache_fails_the_build(generated_models, tmp_path):
    bad = tmp_path / "bad.cache"
    bad.write_bytes(b"RITCACHE" + b"\x01\x00\x00\x00" + b"\xff" * 20)
    with pytest.raises(runinfer.Error) as exc:
        runinfer.Engine.build(generated_models / "tiny_conv.onnx", timing_cache=bad)
    assert str(bad) in exc.value.message


def test_cpu_engines_same_at_every_level(generated_models, tmp_path):
    cache = tmp_path / "t.cache"
    files = []
    for level in (0, 3, 5):
        e = runinfer.Engine.build(generated_models / "tiny_conv.onnx", max_batch=2, builder_level=level,
                                  timing_cache=cache)
        path = tmp_path / f"l{level}.rie"
        e.save(path)
        e.close()
        files.append(path.read_bytes())
    assert files[0] == files[1] == files[2]
    assert not cache.exists()


def test_half_accumulation_is_ignored_by_cpu_engines(generated_models, tmp_path):
    """half_accumulation reaches the library (a CPU engine builds with it) and changes nothing on the CPU: the
    engine file is byte for byte the one built without it."""
    files = []
    for half in (False, True):
        e = runinfer.Engine.build(generated_models / "tiny_conv.onnx", max_batch=2, half_accumulation=half)
        path = tmp_path / f"h{int(half)}.rie"
        e.save(path)
        e.close()
        files.append(path.read_bytes())
    assert files[0] == files[1]


def test_beam_handler_takes_half_accumulation():
    beam = pytest.importorskip("runinfer.beam")
    assert "half_accumulation" in beam._BUILD_KEYS
