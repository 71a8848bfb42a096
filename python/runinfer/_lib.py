"""ctypes declarations of runinfer's public C API (include/runinfer/*.h) and the loader of libruninfer.so.

Only functions and structs of the public headers are declared here; nothing internal (``ri__*``) is used.

The library is found, in this order:
  1. ``$RI_LIB`` (a path to libruninfer.so);
  2. a copy bundled in this package's directory (``libruninfer.so``, put there before ``pip install``);
  3. ``ctypes.util.find_library("runinfer")`` (the system's library path).
It is loaded on first use, so ``import runinfer`` works on machines without it (a Beam launcher, say).

ctypes releases the GIL around every foreign call, so inference in several threads runs in parallel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import (POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int, c_int64, c_size_t,
                    c_uint64, c_void_p)

# ---- status codes (status.h; never renumbered) -----------------------------------------------------------

RI_OK = 0
RI_ERR_INVALID_ARG = 1
RI_ERR_NO_MEMORY = 2
RI_ERR_IO = 3
RI_ERR_PARSE = 4
RI_ERR_UNSUPPORTED = 5
RI_ERR_LIMIT = 6
RI_ERR_SHAPE = 7
RI_ERR_STALE = 8
RI_ERR_CHECKSUM = 9
RI_ERR_DEVICE = 10
RI_ERR_NOT_FOUND = 11
RI_ERR_INTERNAL = 12

STATUS_NAMES = {
    RI_OK: "RI_OK", RI_ERR_INVALID_ARG: "RI_ERR_INVALID_ARG", RI_ERR_NO_MEMORY: "RI_ERR_NO_MEMORY",
    RI_ERR_IO: "RI_ERR_IO", RI_ERR_PARSE: "RI_ERR_PARSE", RI_ERR_UNSUPPORTED: "RI_ERR_UNSUPPORTED",
    RI_ERR_LIMIT: "RI_ERR_LIMIT", RI_ERR_SHAPE: "RI_ERR_SHAPE", RI_ERR_STALE: "RI_ERR_STALE",
    RI_ERR_CHECKSUM: "RI_ERR_CHECKSUM", RI_ERR_DEVICE: "RI_ERR_DEVICE", RI_ERR_NOT_FOUND: "RI_ERR_NOT_FOUND",
    RI_ERR_INTERNAL: "RI_ERR_INTERNAL",
}

# ---- enums (types.h, vision.h, pipeline.h) ----------------------------------------------------------------

RI_PRECISION_FP32, RI_PRECISION_FP16, RI_PRECISION_INT8 = 0, 1, 2
RI_MAX_RANK = 8
RI_VISION_ERROR_MAX = 512
RI_DETECT_MAX_LAYERS = 8
RI_DETECT_MAX_RATIOS = 8


# ---- structs --------------------------------------------------------------------------------------------

class TensorInfoC(Structure):
    _fields_ = [("name", c_char_p), ("dtype", c_int), ("rank", c_int), ("dims", c_int64 * RI_MAX_RANK)]


class VisionErrorC(Structure):
    _fields_ = [("status", c_int), ("msg", c_char * RI_VISION_ERROR_MAX)]


class ImageC(Structure):
    _fields_ = [("width", c_int), ("height", c_int), ("channels", c_int), ("stride", c_size_t),
                ("data", c_void_p)]


class DecodeLimitsC(Structure):
    _fields_ = [("max_file_bytes", c_uint64), ("max_pixels", c_uint64)]


class PreprocessSpecC(Structure):
    _fields_ = [("width", c_int), ("height", c_int), ("layout", c_int), ("dtype", c_int),
                ("mean", c_float * 3), ("scale", c_float * 3), ("resize", c_int), ("pad", c_float * 3),
                ("order", c_int)]


class ImageTransformC(Structure):
    _fields_ = [("src_width", c_int), ("src_height", c_int), ("dst_width", c_int), ("dst_height", c_int),
                ("scale_x", c_double), ("scale_y", c_double), ("offset_x", c_double), ("offset_y", c_double)]


class DetectConfigC(Structure):
    _fields_ = [
        ("anchors", c_int),
        ("ssd_num_layers", c_int),
        ("ssd_min_scale", c_float), ("ssd_max_scale", c_float),
        ("ssd_num_ratios", c_int),
        ("ssd_ratios", c_float * RI_DETECT_MAX_RATIOS),
        ("ssd_reduce_lowest", c_int),
        ("ssd_interp_ratio", c_float),
        ("ssd_base_h", c_float), ("ssd_base_w", c_float),
        ("ssd_offset", c_float),
        ("ssd_fm_h", c_int * RI_DETECT_MAX_LAYERS),
        ("ssd_fm_w", c_int * RI_DETECT_MAX_LAYERS),
        ("coding", c_int),
        ("box_scale", c_float * 4),
        ("box_order", c_int),
        ("score_fn", c_int),
        ("background", c_int),
        ("score_threshold", c_float),
        ("iou_threshold", c_float),
        ("max_per_class", c_int),
        ("max_total", c_int),
    ]


class DetectionC(Structure):
    _fields_ = [("ymin", c_float), ("xmin", c_float), ("ymax", c_float), ("xmax", c_float), ("score", c_float),
                ("class_id", c_int), ("anchor", c_int)]


class ClassScoreC(Structure):
    _fields_ = [("class_id", c_int), ("score", c_float)]


class PipelineSummaryC(Structure):
    _fields_ = [("records", c_uint64), ("succeeded", c_uint64), ("failed", c_uint64), ("batches", c_uint64),
                ("wall_seconds", c_double)]


# ---- signatures -----------------------------------------------------------------------------------------

_P = c_void_p  # opaque handles
_PP = POINTER(c_void_p)
_VE = POINTER(VisionErrorC)

_SIGNATURES = {
    # status.h / types.h
    "ri_status_str": (c_char_p, [c_int]),
    "ri_version": (c_char_p, []),
    "ri_dtype_size": (c_size_t, [c_int]),
    "ri_dtype_name": (c_char_p, [c_int]),
    # engine.h: builder
    "ri_builder_create": (c_int, [_PP]),
    "ri_builder_destroy": (None, [_P]),
    "ri_builder_last_error": (c_char_p, [_P]),
    "ri_builder_set_max_batch": (c_int, [_P, c_int]),
    "ri_builder_set_device": (c_int, [_P, c_char_p]),
    "ri_builder_set_precision": (c_int, [_P, c_int]),
    "ri_builder_set_threads": (c_int, [_P, c_int]),
    "ri_builder_set_builder_level": (c_int, [_P, c_int]),
    "ri_builder_set_timing_cache": (c_int, [_P, c_char_p]),
    "ri_builder_set_metadata": (c_int, [_P, c_char_p, c_char_p]),
    "ri_builder_set_preprocess_on_device": (c_int, [_P, c_int]),
    "ri_builder_set_half_accumulation": (c_int, [_P, c_int]),
    "ri_builder_build_onnx": (c_int, [_P, c_char_p, _PP]),
    "ri_builder_build_onnx_memory": (c_int, [_P, c_void_p, c_size_t, c_char_p, _PP]),
    # engine.h: runtime
    "ri_runtime_create": (c_int, [_PP]),
    "ri_runtime_destroy": (None, [_P]),
    "ri_runtime_last_error": (c_char_p, [_P]),
    "ri_runtime_set_threads": (c_int, [_P, c_int]),
    "ri_runtime_set_device": (c_int, [_P, c_char_p]),
    "ri_device_count": (c_int, [c_char_p, POINTER(c_int)]),
    "ri_runtime_load": (c_int, [_P, c_char_p, _PP]),
    "ri_runtime_load_memory": (c_int, [_P, c_void_p, c_size_t, _PP]),
    # engine.h: engine
    "ri_engine_destroy": (None, [_P]),
    "ri_engine_last_error": (c_char_p, [_P]),
    "ri_engine_save": (c_int, [_P, c_char_p]),
    "ri_engine_max_batch": (c_int, [_P]),
    "ri_engine_num_inputs": (c_int, [_P]),
    "ri_engine_num_outputs": (c_int, [_P]),
    "ri_engine_input_info": (c_int, [_P, c_int, POINTER(TensorInfoC)]),
    "ri_engine_output_info": (c_int, [_P, c_int, POINTER(TensorInfoC)]),
    "ri_engine_metadata": (c_char_p, [_P, c_char_p]),
    "ri_engine_describe_json": (c_int, [_P, POINTER(c_char_p)]),
    # engine.h: context
    "ri_context_create": (c_int, [_P, _PP]),
    "ri_context_destroy": (None, [_P]),
    "ri_context_last_error": (c_char_p, [_P]),
    "ri_context_run": (c_int, [_P, c_int, POINTER(c_void_p), POINTER(c_void_p)]),
    "ri_context_run_items": (c_int, [_P, c_int, POINTER(c_void_p), POINTER(c_void_p)]),
    "ri_context_output_shape": (c_int, [_P, c_int, c_int, POINTER(TensorInfoC)]),
    "ri_context_set_timing": (c_int, [_P, c_int]),
    "ri_context_last_timing": (c_int, [_P, POINTER(c_double), POINTER(c_double), POINTER(c_double),
                                       POINTER(c_double)]),
    "ri_context_memory": (c_int, [_P, POINTER(c_int64 * 4)]),
    "ri_context_input_buffer": (c_int, [_P, c_int, POINTER(c_void_p), POINTER(c_size_t)]),
    # vision.h: images and decoding
    "ri_image_create": (c_int, [c_int, c_int, POINTER(POINTER(ImageC)), _VE]),
    "ri_image_free": (None, [POINTER(ImageC)]),
    "ri_decoder_create": (c_int, [_PP]),
    "ri_decoder_destroy": (None, [_P]),
    "ri_decoder_last_error": (c_char_p, [_P]),
    "ri_decoder_set_limits": (c_int, [_P, POINTER(DecodeLimitsC)]),
    "ri_decoder_set_strict": (c_int, [_P, c_int]),
    "ri_image_detect_format": (c_int, [c_void_p, c_size_t]),
    "ri_decoder_decode_memory": (c_int, [_P, c_void_p, c_size_t, c_char_p, POINTER(POINTER(ImageC))]),
    "ri_decoder_decode_file": (c_int, [_P, c_char_p, POINTER(POINTER(ImageC))]),
    "ri_decoder_set_jpeg_ycbcr": (c_int, [_P, c_int]),
    "ri_decoder_load_file": (c_int, [_P, c_char_p]),
    "ri_decoder_load_memory": (c_int, [_P, c_void_p, c_size_t, c_char_p]),
    "ri_decoder_last_full_size": (None, [_P, POINTER(c_int), POINTER(c_int)]),
    # vision.h: preprocessing
    "ri_preprocess_spec_default": (None, [POINTER(PreprocessSpecC)]),
    "ri_preprocess_spec_set_range": (c_int, [POINTER(PreprocessSpecC), c_float, c_float, _VE]),
    "ri_preprocess_spec_validate": (c_int, [POINTER(PreprocessSpecC), _VE]),
    "ri_preprocess_output_bytes": (c_size_t, [POINTER(PreprocessSpecC)]),
    "ri_preprocess_spec_to_string": (c_int, [POINTER(PreprocessSpecC), c_char_p, c_size_t, POINTER(c_size_t),
                                             _VE]),
    "ri_preprocess_spec_parse": (c_int, [c_char_p, POINTER(PreprocessSpecC), _VE]),
    "ri_preprocess": (c_int, [POINTER(ImageC), POINTER(PreprocessSpecC), c_void_p, POINTER(ImageTransformC),
                              _VE]),
    "ri_preprocess_transform": (c_int, [c_int, c_int, POINTER(PreprocessSpecC), POINTER(ImageTransformC), _VE]),
    "ri_decoder_preprocess_loaded": (c_int, [_P, POINTER(PreprocessSpecC), c_void_p, POINTER(ImageTransformC)]),
    "ri_image_transform_box": (None, [POINTER(ImageTransformC), POINTER(c_float)]),
    # vision.h: detection
    "ri_detect_config_default": (None, [POINTER(DetectConfigC)]),
    "ri_detect_config_validate": (c_int, [POINTER(DetectConfigC), _VE]),
    "ri_detect_config_to_string": (c_int, [POINTER(DetectConfigC), c_char_p, c_size_t, POINTER(c_size_t), _VE]),
    "ri_detect_config_parse": (c_int, [c_char_p, POINTER(DetectConfigC), _VE]),
    "ri_ssd_anchor_count": (c_size_t, [POINTER(DetectConfigC)]),
    "ri_ssd_anchors_generate": (c_int, [POINTER(DetectConfigC), POINTER(c_float), c_size_t, POINTER(c_size_t),
                                        _VE]),
    "ri_detector_create": (c_int, [POINTER(DetectConfigC), _PP, _VE]),
    "ri_detector_destroy": (None, [_P]),
    "ri_detector_last_error": (c_char_p, [_P]),
    "ri_detector_set_anchors": (c_int, [_P, POINTER(c_float), c_size_t]),
    "ri_detector_anchors": (c_size_t, [_P, POINTER(POINTER(c_float))]),
    "ri_detector_run": (c_int, [_P, POINTER(c_float), POINTER(c_float), c_size_t, c_size_t,
                                POINTER(ImageTransformC), POINTER(DetectionC), c_size_t, POINTER(c_size_t)]),
    "ri_detector_decode_boxes": (c_int, [_P, POINTER(c_float), c_size_t, POINTER(c_float)]),
    # vision.h: classification and output formatting
    "ri_classify_topk": (c_int, [POINTER(c_float), c_size_t, c_int, c_size_t, POINTER(ClassScoreC),
                                 POINTER(c_size_t), _VE]),
    "ri_json_escape": (c_int, [c_void_p, c_size_t, c_char_p, c_size_t, POINTER(c_size_t), _VE]),
    "ri_detections_to_json": (c_int, [POINTER(DetectionC), c_size_t, POINTER(c_char_p), c_size_t, c_char_p,
                                      c_size_t, POINTER(c_size_t), _VE]),
    # pipeline.h
    "ri_pipeline_create": (c_int, [_P, _PP]),
    "ri_pipeline_destroy": (None, [_P]),
    "ri_pipeline_last_error": (c_char_p, [_P]),
    "ri_pipeline_set_source": (c_int, [_P, c_int, c_char_p]),
    "ri_pipeline_set_output": (c_int, [_P, c_char_p, c_int]),
    "ri_pipeline_set_dead_letter": (c_int, [_P, c_char_p]),
    "ri_pipeline_set_batching": (c_int, [_P, c_int, c_int, c_int64]),
    "ri_pipeline_set_workers": (c_int, [_P, c_int, c_int]),
    "ri_pipeline_set_metrics": (c_int, [_P, c_char_p, c_char_p]),
    "ri_pipeline_set_draw_dir": (c_int, [_P, c_char_p]),
    "ri_pipeline_set_progress": (c_int, [_P, c_int]),
    "ri_pipeline_run": (c_int, [_P, POINTER(PipelineSummaryC)]),
}

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_lib_path: str | None = None


def _candidates() -> list[str]:
    out = []
    env = os.environ.get("RI_LIB")
    if env:
        out.append(env)
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("libruninfer.so", "libruninfer.dylib"):
        p = os.path.join(here, name)
        if os.path.isfile(p):
            out.append(p)
    found = ctypes.util.find_library("runinfer")
    if found:
        out.append(found)
    return out


def _declare(lib: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def lib() -> ctypes.CDLL:
    """The loaded library with every public function declared. Raises OSError naming where it looked."""
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for cand in _candidates():
            try:
                handle = ctypes.CDLL(cand)
            except OSError as e:
                tried.append(f"{cand}: {e}")
                continue
            _declare(handle)
            _lib_path = cand
            _lib = handle
            return handle
        where = "; ".join(tried) if tried else "no candidate found"
        raise OSError("libruninfer.so not found (looked at $RI_LIB, the runinfer package directory and the "
                      f"system library path: {where}). Build it (cmake -B build && cmake --build build) and set "
                      "RI_LIB=/path/to/build/libruninfer.so, or copy it into the package before pip install.")


def lib_path() -> str | None:
    """Path of the loaded library (None before the first load)."""
    return _lib_path


def text(b: bytes | None) -> str:
    """A C string from the library as str; bytes that are not UTF-8 are kept as surrogate escapes."""
    return "" if b is None else b.decode("utf-8", "surrogateescape")


def cstr(s: str | bytes | os.PathLike) -> bytes:
    """A str, bytes or path as a C string (surrogate escapes give back the original bytes)."""
    if isinstance(s, os.PathLike):
        s = os.fspath(s)
    if isinstance(s, bytes):
        b = s
    else:
        b = s.encode("utf-8", "surrogateescape")
    if b"\0" in b:
        from runinfer.errors import Error
        raise Error(RI_ERR_INVALID_ARG, f"string {s!r} contains a NUL byte")
    return b
