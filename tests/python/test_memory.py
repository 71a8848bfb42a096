"""Device memory reporting (ri_context_memory, Context.memory, `runinfer inspect --memory`) where no GPU is
needed: CPU contexts refuse with RI_ERR_UNSUPPORTED and a message naming the backend, and the CLI's
--memory fails cleanly with that message while plain inspect is unchanged. The CUDA side (the numbers and the
1.2x bound at max batch 256) is checked by tests/gpu/test_cuda_memory on a GPU.
"""

from __future__ import annotations

import subprocess

import pytest

from conftest import binding_setup

pytestmark = binding_setup()

import runinfer  # noqa: E402


@pytest.fixture(scope="module")
def engine_file(generated_models, tmp_path_factory):
    path = tmp_path_factory.mktemp("mem") / "tiny_ssd.rie"
    e = runinfer.Engine.build(generated_models / "tiny_ssd.onnx", max_batch=2)
    e.save(path)
    e.close()
    return path


def test_cpu_context_memory_unsupported(engine_file):
    e = runinfer.Engine.load(engine_file)
    with runinfer.Context(e) as ctx:
        with pytest.raises(runinfer.Error) as exc:
            ctx.memory()
    e.close()
    assert exc.value.status == runinfer.RI_ERR_UNSUPPORTED
    assert "cpu backend does not report device memory" in exc.value.message


def test_inspect_memory_flag_on_cpu_engine(ri_cli, engine_file):
    plain = subprocess.run([ri_cli, "inspect", str(engine_file)], capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr
    assert "device memory" not in plain.stdout
    mem = subprocess.run([ri_cli, "inspect", str(engine_file), "--memory"], capture_output=True, text=True)
    assert mem.returncode == 1
    assert "does not report device memory" in mem.stderr
    assert plain.stdout in mem.stdout, "the engine description is printed before the memory line fails"
