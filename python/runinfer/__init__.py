"""runinfer: Python binding of the runinfer C library (include/runinfer/*.h) and an Apache Beam model handler.

    import runinfer
    eng = runinfer.Engine.build("model.onnx", max_batch=32, metadata={"preprocess": "size=300x300;layout=nchw"})
    eng.save("model.rie")
    outs = runinfer.Engine.load("model.rie").run(batch)          # {output name: ndarray}

Modules: runinfer.engine (Engine, Context), runinfer.vision (decode, preprocess, Detector, PostProcessor,
format_row), runinfer.beam (RunInferenceEngineHandlerNumPy; needs apache-beam), runinfer.examples.
Every failure of the library raises runinfer.Error(status, message).
"""

from runinfer._lib import (RI_ERR_CHECKSUM, RI_ERR_DEVICE, RI_ERR_INTERNAL, RI_ERR_INVALID_ARG, RI_ERR_IO,
                           RI_ERR_LIMIT, RI_ERR_NO_MEMORY, RI_ERR_NOT_FOUND, RI_ERR_PARSE, RI_ERR_SHAPE,
                           RI_ERR_STALE, RI_ERR_UNSUPPORTED, RI_OK, lib_path)
from runinfer.engine import Context, Engine, EngineInfo, TensorInfo
from runinfer.errors import Error
from runinfer.vision import (DetectConfig, Detector, PostProcessor, PreprocessSpec, Transform, classify_topk,
                             decode, detections_to_json, format_key, format_row, json_escape, preprocess)

__version__ = "0.1.0"


def device_count(kind: str = "cuda") -> int:
    """Number of devices of a kind ("cpu": 1; "cuda": the CUDA GPUs, 0 without a CUDA build or driver)."""
    import ctypes

    from runinfer import _lib
    n = ctypes.c_int(0)
    st = _lib.lib().ri_device_count(kind.encode(), ctypes.byref(n))
    if st != RI_OK:
        raise Error(st, f"unknown device kind '{kind}' (expected cpu or cuda)")
    return n.value


def library_version() -> str:
    """Version of the loaded libruninfer ("MAJOR.MINOR.PATCH")."""
    from runinfer import _lib
    return _lib.text(_lib.lib().ri_version())


__all__ = [
    "device_count",
    "Engine", "Context", "EngineInfo", "TensorInfo", "Error", "DetectConfig", "Detector", "PostProcessor",
    "PreprocessSpec", "Transform", "classify_topk", "decode", "detections_to_json", "format_key", "format_row",
    "json_escape", "preprocess", "library_version", "lib_path",
    "RI_OK", "RI_ERR_INVALID_ARG", "RI_ERR_NO_MEMORY", "RI_ERR_IO", "RI_ERR_PARSE", "RI_ERR_UNSUPPORTED",
    "RI_ERR_LIMIT", "RI_ERR_SHAPE", "RI_ERR_STALE", "RI_ERR_CHECKSUM", "RI_ERR_DEVICE", "RI_ERR_NOT_FOUND",
    "RI_ERR_INTERNAL",
]
