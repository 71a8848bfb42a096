"""Image decoding, preprocessing, detection / classification post-processing and row formatting, on top of
the C functions of include/runinfer/vision.h (so results match `runinfer run` exactly).

Objects
  decode()          JPEG/PNG file or bytes -> HxWx3 uint8 ndarray (RGB, EXIF orientation applied).
  PreprocessSpec    the "preprocess" metadata text, parsed; PreprocessSpec.for_engine() picks it as the
                    pipeline does. Picklable.
  preprocess()      image -> model input item (CHW or HWC) and the Transform back to original pixels.
  Decoder           decode into the decoder and preprocess from there, as `runinfer run` does (JPEGs resized
                    from their YCbCr planes); decode_preprocess() does both with this thread's decoder.
  Transform         geometric mapping from original-image to model-input pixels. Picklable (a NamedTuple).
  DetectConfig      the "detect" metadata text, parsed. Picklable.
  Detector          SSD-style decoding + NMS: raw outputs of one item -> detections (dicts).
  PostProcessor     what `runinfer run` does after inference, chosen from engine metadata (detection or
                    top-5 classification); picklable, creates its C detectors per thread.
  format_row()      one output row of `runinfer run` (--format seed): key;[{...}, ...]

Thread safety: every function may be called from any thread. A Detector serialises its own calls (one C
detector is single-threaded); PostProcessor keeps one Detector per thread.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from runinfer import _lib
from runinfer.engine import numpy_dtype
from runinfer.errors import Error, check

_tls = threading.local()


def _verr() -> _lib.VisionErrorC:
    return _lib.VisionErrorC()


def _vcheck(status: int, verr: _lib.VisionErrorC) -> None:
    if status != _lib.RI_OK:
        raise Error(status, _lib.text(verr.msg) or _lib.text(_lib.lib().ri_status_str(status)))


def _to_string(fn, obj) -> str:
    """Call one of the C *_to_string functions (buffer convention: size query, then write)."""
    need = ctypes.c_size_t(0)
    buf = ctypes.create_string_buffer(512)
    verr = _verr()
    st = fn(ctypes.byref(obj), buf, len(buf), ctypes.byref(need), ctypes.byref(verr))
    if st == _lib.RI_ERR_LIMIT and need.value > len(buf):
        buf = ctypes.create_string_buffer(need.value)
        verr = _verr()
        st = fn(ctypes.byref(obj), buf, len(buf), ctypes.byref(need), ctypes.byref(verr))
    _vcheck(st, verr)
    return _lib.text(buf.value)


# ---- decoding -------------------------------------------------------------------------------------------

def _decoder(strict: bool, max_file_bytes: int, max_pixels: int) -> ctypes.c_void_p:
    """This thread's decoder for the given options (created on first use, kept for reuse)."""
    cache = getattr(_tls, "decoders", None)
    if cache is None:
        cache = _tls.decoders = {}
    key = (bool(strict), int(max_file_bytes), int(max_pixels))
    d = cache.get(key)
    if d is None:
        L = _lib.lib()
        d = _DecoderHandle()
        check(L.ri_decoder_create(ctypes.byref(d.h)), "cannot create a decoder")
        lim = _lib.DecodeLimitsC(max_file_bytes, max_pixels)
        check(L.ri_decoder_set_limits(d.h, ctypes.byref(lim)), lambda: _lib.text(L.ri_decoder_last_error(d.h)))
        check(L.ri_decoder_set_strict(d.h, 1 if strict else 0), lambda: _lib.text(L.ri_decoder_last_error(d.h)))
        cache[key] = d
    return d.h


class _DecoderHandle:
    def __init__(self):
        self.h = ctypes.c_void_p()

    def __del__(self):
        try:
            if self.h and _lib._lib is not None:
                _lib._lib.ri_decoder_destroy(self.h)
                self.h = ctypes.c_void_p()
        except Exception:  # interpreter shutdown: module globals may already be gone
            pass


def _image_to_array(img: ctypes.POINTER(_lib.ImageC)) -> np.ndarray:
    im = img.contents
    h, w, stride = im.height, im.width, im.stride
    raw = (ctypes.c_uint8 * (stride * h)).from_address(im.data)
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(h, stride)
    return rows[:, : w * 3].reshape(h, w, 3).copy()


def decode(source: str | bytes | bytearray | memoryview | os.PathLike, *, name: str | None = None,
           strict: bool = True, max_file_bytes: int = 0, max_pixels: int = 0) -> np.ndarray:
    """Decode a JPEG or PNG into an HxWx3 uint8 RGB array.

    source  a path (str or os.PathLike: the file is read by the library) or the encoded data (bytes /
            bytearray / memoryview). For a path given as bytes use decode_file().
    name    names in-memory data in error messages.
    strict, max_file_bytes, max_pixels  as ri_decoder_set_strict / ri_decode_limits (0: the defaults).
    Raises Error: RI_ERR_NOT_FOUND / RI_ERR_IO (reading the file), RI_ERR_PARSE (corrupt or truncated),
    RI_ERR_UNSUPPORTED (not JPEG or PNG), RI_ERR_LIMIT (over the limits); the message names the source."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_bytes(source, name=name, strict=strict, max_file_bytes=max_file_bytes, max_pixels=max_pixels)
    return decode_file(source, strict=strict, max_file_bytes=max_file_bytes, max_pixels=max_pixels)


def decode_file(path: str | bytes | os.PathLike, *, strict: bool = True, max_file_bytes: int = 0,
                max_pixels: int = 0) -> np.ndarray:
    """decode() of a file named by a str, bytes or os.PathLike path (read by the library, as `runinfer run`)."""
    L = _lib.lib()
    d = _decoder(strict, max_file_bytes, max_pixels)
    img = ctypes.POINTER(_lib.ImageC)()
    check(L.ri_decoder_decode_file(d, _lib.cstr(path), ctypes.byref(img)),
          lambda: _lib.text(L.ri_decoder_last_error(d)))
    try:
        return _image_to_array(img)
    finally:
        L.ri_image_free(img)


def decode_bytes(data: bytes | bytearray | memoryview, *, name: str | bytes | None = None, strict: bool = True,
                 max_file_bytes: int = 0, max_pixels: int = 0) -> np.ndarray:
    """decode() of encoded data held in memory; name (if given) names it in error messages."""
    L = _lib.lib()
    d = _decoder(strict, max_file_bytes, max_pixels)
    img = ctypes.POINTER(_lib.ImageC)()
    data = bytes(data)
    check(L.ri_decoder_decode_memory(d, data, len(data), _lib.cstr(name) if name is not None else None,
                                     ctypes.byref(img)),
          lambda: _lib.text(L.ri_decoder_last_error(d)))
    try:
        return _image_to_array(img)
    finally:
        L.ri_image_free(img)


def image_format(data: bytes) -> str:
    """"jpeg", "png" or "unknown" from the first bytes."""
    data = bytes(data[:16])
    code = _lib.lib().ri_image_detect_format(data, len(data))
    return {1: "jpeg", 2: "png"}.get(code, "unknown")


# ---- preprocessing --------------------------------------------------------------------------------------

class Transform(NamedTuple):
    """model_x = src_x * scale_x + offset_x (likewise y); see ri_image_transform."""
    src_width: int
    src_height: int
    dst_width: int
    dst_height: int
    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float

    @classmethod
    def _from_c(cls, c: _lib.ImageTransformC) -> "Transform":
        return cls(c.src_width, c.src_height, c.dst_width, c.dst_height, c.scale_x, c.scale_y, c.offset_x,
                   c.offset_y)

    def _to_c(self) -> _lib.ImageTransformC:
        return _lib.ImageTransformC(*self)

    def map_box(self, box: Sequence[float]) -> tuple:
        """Map (ymin, xmin, ymax, xmax) in normalised model coordinates to original pixels (clipped)."""
        b = (ctypes.c_float * 4)(*box)
        c = self._to_c()
        _lib.lib().ri_image_transform_box(ctypes.byref(c), b)
        return tuple(float(v) for v in b)


_LAYOUTS = {0: "nhwc", 1: "nchw"}


class PreprocessSpec:
    """A parsed preprocessing spec (ri_preprocess_spec). Build with PreprocessSpec(text) (text=None: the
    defaults) or PreprocessSpec.for_engine(engine)."""

    def __init__(self, text: str | None = None):
        self._c = _lib.PreprocessSpecC()
        if text is None:
            _lib.lib().ri_preprocess_spec_default(ctypes.byref(self._c))
        else:
            verr = _verr()
            _vcheck(_lib.lib().ri_preprocess_spec_parse(_lib.cstr(text), ctypes.byref(self._c), ctypes.byref(verr)),
                    verr)

    @classmethod
    def for_engine(cls, engine) -> "PreprocessSpec":
        """The spec `runinfer run` uses for this engine (an Engine or EngineInfo): its "preprocess" metadata,
        or, without one, size/layout/dtype taken from the input. Checked against the input like the pipeline
        does: one rank-4 input whose shape and dtype the spec produces."""
        ins = engine.inputs
        if len(ins) != 1:
            raise Error(_lib.RI_ERR_UNSUPPORTED,
                        f"the image pipeline needs an engine with one input; this one has {len(ins)}")
        inp = ins[0]
        if len(inp.shape) != 4:
            raise Error(_lib.RI_ERR_SHAPE,
                        f"input '{inp.name}' must be an image batch of rank 4, not rank {len(inp.shape)}")
        text = engine.metadata("preprocess")
        if text is not None:
            try:
                spec = cls(text)
            except Error as e:
                raise Error(_lib.RI_ERR_PARSE, f"engine metadata 'preprocess': {e.message}") from None
        else:
            spec = cls()
            nhwc = inp.shape[3] == 3
            spec._c.layout = 0 if nhwc else 1
            spec._c.height = int(inp.shape[1] if nhwc else inp.shape[2])
            spec._c.width = int(inp.shape[2] if nhwc else inp.shape[3])
            spec._c.dtype = _dtype_code(inp.dtype)
        spec.validate()
        want = (spec.height, spec.width, 3) if spec.layout == "nhwc" else (3, spec.height, spec.width)
        if tuple(inp.shape[1:]) != want:
            raise Error(_lib.RI_ERR_SHAPE,
                        f"preprocessing produces {spec.layout.upper()} {spec.width}x{spec.height} images but input "
                        f"'{inp.name}' has shape [N,{inp.shape[1]},{inp.shape[2]},{inp.shape[3]}]")
        if np.dtype(inp.dtype) != spec.dtype:
            raise Error(_lib.RI_ERR_SHAPE,
                        f"preprocessing produces {spec.dtype} but input '{inp.name}' is {np.dtype(inp.dtype)}")
        return spec

    def validate(self) -> None:
        verr = _verr()
        _vcheck(_lib.lib().ri_preprocess_spec_validate(ctypes.byref(self._c), ctypes.byref(verr)), verr)

    def to_string(self) -> str:
        return _to_string(_lib.lib().ri_preprocess_spec_to_string, self._c)

    __str__ = to_string

    def __repr__(self) -> str:
        return f"PreprocessSpec({self.to_string()!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, PreprocessSpec) and self.to_string() == other.to_string()

    def __reduce__(self):
        return (PreprocessSpec, (self.to_string(),))

    @property
    def width(self) -> int:
        return self._c.width

    @property
    def height(self) -> int:
        return self._c.height

    @property
    def layout(self) -> str:
        return _LAYOUTS.get(self._c.layout, str(self._c.layout))

    @property
    def dtype(self) -> np.dtype:
        return numpy_dtype(self._c.dtype)

    @property
    def mean(self) -> tuple:
        """Per output channel: y = (x - mean) * scale."""
        return tuple(float(v) for v in self._c.mean)

    @property
    def scale(self) -> tuple:
        return tuple(float(v) for v in self._c.scale)

    @property
    def item_shape(self) -> tuple:
        """Shape of one preprocessed item: (H, W, 3) for NHWC, (3, H, W) for NCHW."""
        return (self.height, self.width, 3) if self.layout == "nhwc" else (3, self.height, self.width)

    @property
    def output_bytes(self) -> int:
        return int(_lib.lib().ri_preprocess_output_bytes(ctypes.byref(self._c)))


def _dtype_code(dt) -> int:
    from runinfer.engine import _DTYPES
    dt = np.dtype(dt)
    for code, d in _DTYPES.items():
        if d == dt:
            return code
    raise Error(_lib.RI_ERR_UNSUPPORTED, f"dtype {dt} has no runinfer element type")


def _as_spec(spec: PreprocessSpec | str) -> PreprocessSpec:
    return spec if isinstance(spec, PreprocessSpec) else PreprocessSpec(spec)


def preprocess(image: np.ndarray, spec: PreprocessSpec | str) -> tuple:
    """Resize, reorder and normalise one HxWx3 uint8 RGB image as ri_preprocess does.
    Returns (item, transform): item has spec.item_shape and spec.dtype (no batch axis); transform maps
    original pixels to model pixels (for Detector.run / Transform.map_box)."""
    spec = _as_spec(spec)
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise Error(_lib.RI_ERR_INVALID_ARG,
                    f"image must be an HxWx3 uint8 RGB array, got {a.dtype} with shape {list(a.shape)}")
    if a.strides[2] != 1 or a.strides[1] != 3 or a.strides[0] < a.shape[1] * 3:
        a = np.ascontiguousarray(a)
    img = _lib.ImageC(a.shape[1], a.shape[0], 3, a.strides[0], a.ctypes.data)
    out = np.empty(spec.item_shape, dtype=spec.dtype)
    tr = _lib.ImageTransformC()
    verr = _verr()
    _vcheck(_lib.lib().ri_preprocess(ctypes.byref(img), ctypes.byref(spec._c), out.ctypes.data, ctypes.byref(tr),
                                     ctypes.byref(verr)), verr)
    return out, Transform._from_c(tr)


class Decoder:
    """One C decoder (ri_decoder_t) that decodes an image into itself and preprocesses it from there, as
    `runinfer run` does (ri_decoder_load_* + ri_decoder_preprocess_loaded). JPEGs in YCbCr are kept as their
    planes and converted to RGB at the model input's pixels only, which differs from decode() + preprocess()
    by libjpeg's rounding and by where values are clamped to 0..255 (vision.h; docs/decisions.md, "Planar JPEG
    preprocessing"); other images give exactly decode() + preprocess(). Use one per thread.

    strict, max_file_bytes, max_pixels  as decode().
    jpeg_ycbcr  False: JPEGs go the RGB way too (exactly decode() + preprocess()); None: the library default
                (on, unless the environment has RI_JPEG_YCBCR=0 when the decoder is made).
    """

    def __init__(self, *, strict: bool = True, max_file_bytes: int = 0, max_pixels: int = 0,
                 jpeg_ycbcr: bool | None = None):
        L = _lib.lib()
        self._d = _DecoderHandle()
        check(L.ri_decoder_create(ctypes.byref(self._d.h)), "cannot create a decoder")
        h = self._d.h
        lim = _lib.DecodeLimitsC(max_file_bytes, max_pixels)
        check(L.ri_decoder_set_limits(h, ctypes.byref(lim)), lambda: _lib.text(L.ri_decoder_last_error(h)))
        check(L.ri_decoder_set_strict(h, 1 if strict else 0), lambda: _lib.text(L.ri_decoder_last_error(h)))
        if jpeg_ycbcr is not None:
            check(L.ri_decoder_set_jpeg_ycbcr(h, 1 if jpeg_ycbcr else 0),
                  lambda: _lib.text(L.ri_decoder_last_error(h)))

    def _error(self) -> str:
        return _lib.text(_lib.lib().ri_decoder_last_error(self._d.h))

    def _full_size(self) -> tuple[int, int]:
        w, h = ctypes.c_int(0), ctypes.c_int(0)
        _lib.lib().ri_decoder_last_full_size(self._d.h, ctypes.byref(w), ctypes.byref(h))
        return w.value, h.value

    def load(self, source: str | bytes | bytearray | memoryview | os.PathLike, *,
             name: str | bytes | None = None) -> tuple[int, int]:
        """Decode a file (str or os.PathLike path) or encoded data (bytes-like; name names it in errors) into
        the decoder, replacing what it held. Returns the image's full upright (width, height). Raises Error
        as decode() does; after a failure nothing is loaded."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            check(_lib.lib().ri_decoder_load_memory(self._d.h, data, len(data),
                                                     _lib.cstr(name) if name is not None else None), self._error)
        else:
            check(_lib.lib().ri_decoder_load_file(self._d.h, _lib.cstr(source)), self._error)
        return self._full_size()

    def load_file(self, path: str | bytes | os.PathLike) -> tuple[int, int]:
        """load() of a file named by a str, bytes or os.PathLike path."""
        check(_lib.lib().ri_decoder_load_file(self._d.h, _lib.cstr(path)), self._error)
        return self._full_size()

    def preprocess(self, spec: PreprocessSpec | str) -> tuple:
        """The loaded image as one model input item: (item, transform) as preprocess() returns them, the
        transform in the full image's pixels. Raises Error (RI_ERR_INVALID_ARG when nothing is loaded)."""
        spec = _as_spec(spec)
        out = np.empty(spec.item_shape, dtype=spec.dtype)
        tr = _lib.ImageTransformC()
        check(_lib.lib().ri_decoder_preprocess_loaded(self._d.h, ctypes.byref(spec._c), out.ctypes.data,
                                                      ctypes.byref(tr)), self._error)
        return out, Transform._from_c(tr)


def decode_preprocess(source: str | bytes | bytearray | memoryview | os.PathLike, spec: PreprocessSpec | str, *,
                      name: str | bytes | None = None, strict: bool = True, max_file_bytes: int = 0,
                      max_pixels: int = 0, jpeg_ycbcr: bool | None = None) -> tuple:
    """Decode and preprocess in one step as `runinfer run` does (Decoder.load + Decoder.preprocess, with this
    thread's decoder for these options). A bytes source is encoded data; for a path given as bytes use
    Decoder.load_file. Returns (item, transform)."""
    cache = getattr(_tls, "loaders", None)
    if cache is None:
        cache = _tls.loaders = {}
    key = (bool(strict), int(max_file_bytes), int(max_pixels), jpeg_ycbcr)
    d = cache.get(key)
    if d is None:
        d = cache[key] = Decoder(strict=strict, max_file_bytes=max_file_bytes, max_pixels=max_pixels,
                                 jpeg_ycbcr=jpeg_ycbcr)
    d.load(source, name=name)
    return d.preprocess(spec)


def preprocess_transform(width: int, height: int, spec: PreprocessSpec | str) -> Transform:
    """The transform preprocess() would return for a width x height image, without the pixels."""
    spec = _as_spec(spec)
    tr = _lib.ImageTransformC()
    verr = _verr()
    _vcheck(_lib.lib().ri_preprocess_transform(int(width), int(height), ctypes.byref(spec._c), ctypes.byref(tr),
                                               ctypes.byref(verr)), verr)
    return Transform._from_c(tr)


# ---- detection ------------------------------------------------------------------------------------------

class DetectConfig:
    """A parsed detection configuration (ri_detect_config). DetectConfig(text); text=None: the defaults."""

    def __init__(self, text: str | None = None):
        self._c = _lib.DetectConfigC()
        if text is None:
            _lib.lib().ri_detect_config_default(ctypes.byref(self._c))
        else:
            verr = _verr()
            _vcheck(_lib.lib().ri_detect_config_parse(_lib.cstr(text), ctypes.byref(self._c), ctypes.byref(verr)),
                    verr)

    def to_string(self) -> str:
        return _to_string(_lib.lib().ri_detect_config_to_string, self._c)

    __str__ = to_string

    def __repr__(self) -> str:
        return f"DetectConfig({self.to_string()!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, DetectConfig) and self.to_string() == other.to_string()

    def __reduce__(self):
        return (DetectConfig, (self.to_string(),))

    def __getattr__(self, name: str) -> Any:
        # the C fields (score_threshold, max_total, ...) read through
        c = self.__dict__.get("_c")
        if c is not None and name in dict(_lib.DetectConfigC._fields_):
            v = getattr(c, name)
            return list(v) if isinstance(v, ctypes.Array) else v
        raise AttributeError(name)

    def ssd_anchor_count(self) -> int:
        return int(_lib.lib().ri_ssd_anchor_count(ctypes.byref(self._c)))


def _f32(a, what: str, cols: int | None = None) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.ndim != 2 or (cols is not None and a.shape[1] != cols):
        want = f"[A,{cols}]" if cols is not None else "[A,C]"
        raise Error(_lib.RI_ERR_SHAPE, f"{what} must have shape {want}, got {list(a.shape)}")
    return a


def _fptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def _detection_dict(d: _lib.DetectionC) -> dict:
    return {"ymin": float(d.ymin), "xmin": float(d.xmin), "ymax": float(d.ymax), "xmax": float(d.xmax),
            "score": float(d.score), "class": int(d.class_id), "anchor": int(d.anchor)}


class Detector:
    """SSD-style detection post-processing (ri_detector_t). config: DetectConfig, its text, or None (the
    defaults). Calls are serialised by a lock; a Detector pickles as its configuration and anchors."""

    def __init__(self, config: DetectConfig | str | None = None):
        self._config = config if isinstance(config, DetectConfig) else DetectConfig(config)
        self._h = ctypes.c_void_p()
        self._lock = threading.Lock()
        self._anchors_set = False
        verr = _verr()
        _vcheck(_lib.lib().ri_detector_create(ctypes.byref(self._config._c), ctypes.byref(self._h),
                                              ctypes.byref(verr)), verr)

    @property
    def config(self) -> DetectConfig:
        return self._config

    def _err(self) -> str:
        return _lib.text(_lib.lib().ri_detector_last_error(self._h))

    def set_anchors(self, anchors) -> None:
        """Replace the anchors with an [A,4] float array in the configured form (yxhw or xyxy)."""
        a = _f32(anchors, "anchors", 4)
        with self._lock:
            check(_lib.lib().ri_detector_set_anchors(self._h, _fptr(a), a.shape[0]), self._err)
            self._anchors_set = True

    def anchors(self) -> np.ndarray:
        """A copy of the detector's anchors, [A,4] float32."""
        p = ctypes.POINTER(ctypes.c_float)()
        with self._lock:
            n = _lib.lib().ri_detector_anchors(self._h, ctypes.byref(p))
            if n == 0 or not p:
                return np.zeros((0, 4), np.float32)
            return np.ctypeslib.as_array(p, shape=(n, 4)).copy()

    def run(self, boxes, scores, transform: Transform | None = None, cap: int | None = None) -> list:
        """Decode, score and NMS the raw outputs of ONE item: boxes [A,4], scores [A,C]. Returns detections
        as dicts {ymin, xmin, ymax, xmax, score, class, anchor}, sorted by score, in original-image pixels when
        a transform is given (normalised 0..1 otherwise); at most cap (default: the config's max_total)."""
        b = _f32(boxes, "boxes", 4)
        s = _f32(scores, "scores")
        if cap is None:
            cap = self._config._c.max_total if self._config._c.max_total > 0 else 100
        out = (_lib.DetectionC * max(1, cap))()
        n = ctypes.c_size_t(0)
        trc = transform._to_c() if transform is not None else None
        with self._lock:
            check(_lib.lib().ri_detector_run(self._h, _fptr(b), _fptr(s), b.shape[0], s.shape[1],
                                             ctypes.byref(trc) if trc is not None else None, out, cap,
                                             ctypes.byref(n)), self._err)
        return [_detection_dict(out[i]) for i in range(n.value)]

    def decode_boxes(self, boxes) -> np.ndarray:
        """Decode boxes only: [A,4] -> [A,4] (ymin, xmin, ymax, xmax), normalised, unclipped."""
        b = _f32(boxes, "boxes", 4)
        out = np.empty_like(b)
        with self._lock:
            check(_lib.lib().ri_detector_decode_boxes(self._h, _fptr(b), b.shape[0], _fptr(out)), self._err)
        return out

    def __reduce__(self):
        return (_restore_detector, (self._config.to_string(), self.anchors() if self._anchors_set else None))

    def __del__(self):
        try:
            h = getattr(self, "_h", None)
            if h and _lib._lib is not None:
                _lib._lib.ri_detector_destroy(h)
                self._h = ctypes.c_void_p()
        except Exception:  # interpreter shutdown: module globals may already be gone
            pass


def _restore_detector(text: str, anchors) -> Detector:
    d = Detector(text)
    if anchors is not None:
        d.set_anchors(anchors)
    return d


def classify_topk(scores, k: int = 5, softmax: bool = True) -> list:
    """Top-k of one item's class scores (after a softmax when asked), as dicts {class, score}, sorted by
    score descending (ties: lower class first)."""
    s = np.ascontiguousarray(scores, dtype=np.float32).reshape(-1)
    k = max(0, min(int(k), s.shape[0]))
    out = (_lib.ClassScoreC * max(1, k))()
    n = ctypes.c_size_t(0)
    verr = _verr()
    _vcheck(_lib.lib().ri_classify_topk(_fptr(s), s.shape[0], 1 if softmax else 0, k, out, ctypes.byref(n),
                                        ctypes.byref(verr)), verr)
    return [{"class": int(out[i].class_id), "score": float(out[i].score)} for i in range(n.value)]


# ---- formatting -----------------------------------------------------------------------------------------

def _bytes(s: str | bytes) -> bytes:
    return s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")


def json_escape(s: str | bytes) -> str:
    """The inside of a JSON string for s, by ri_json_escape (bytes that are not UTF-8 become \\udcXX)."""
    b = _bytes(s)
    L = _lib.lib()
    need = ctypes.c_size_t(0)
    buf = ctypes.create_string_buffer(len(b) * 6 + 1)
    verr = _verr()
    _vcheck(L.ri_json_escape(b, len(b), buf, len(buf), ctypes.byref(need), ctypes.byref(verr)), verr)
    return buf.value.decode("utf-8")


def _labels_c(labels: Sequence[str | None] | None):
    if not labels:
        return None, 0
    arr = (ctypes.c_char_p * len(labels))(*[None if lb is None else _lib.cstr(lb) for lb in labels])
    return arr, len(labels)


def _c_detections(dets: Sequence[Mapping[str, Any]]):
    arr = (_lib.DetectionC * max(1, len(dets)))()
    for i, d in enumerate(dets):
        arr[i] = _lib.DetectionC(d["ymin"], d["xmin"], d["ymax"], d["xmax"], d["score"], int(d["class"]),
                                 int(d.get("anchor", -1)))
    return arr


def _dets_json_c(arr, n: int, labels_arr, n_labels: int) -> str:
    L = _lib.lib()
    need = ctypes.c_size_t(0)
    buf = ctypes.create_string_buffer(256 * max(1, n))
    verr = _verr()
    st = L.ri_detections_to_json(arr, n, labels_arr, n_labels, buf, len(buf), ctypes.byref(need), ctypes.byref(verr))
    if st == _lib.RI_ERR_LIMIT and need.value > len(buf):
        buf = ctypes.create_string_buffer(need.value)
        verr = _verr()
        st = L.ri_detections_to_json(arr, n, labels_arr, n_labels, buf, len(buf), ctypes.byref(need),
                                     ctypes.byref(verr))
    _vcheck(st, verr)
    return buf.value.decode("utf-8")


def detections_to_json(dets: Sequence[Mapping[str, Any]], labels: Sequence[str | None] | None = None,
                       compact: bool = False) -> str:
    """Detections as the JSON list of `runinfer run` rows: [{"ymin":..,"xmin":..,"ymax":..,"xmax":..,
    "score":..,"class":N,"label":".."}, ...] — each object written by ri_detections_to_json (numbers %.6g,
    label = labels[class] or ""). Objects are joined with ", " as in the rows of `runinfer run`;
    compact=True returns ri_detections_to_json's own list (joined with ",")."""
    arr = _c_detections(dets)
    labels_arr, n_labels = _labels_c(labels)
    if compact:
        return _dets_json_c(arr, len(dets), labels_arr, n_labels)
    parts = []
    one = (_lib.DetectionC * 1)()
    for i in range(len(dets)):
        one[0] = arr[i]
        parts.append(_dets_json_c(one, 1, labels_arr, n_labels)[1:-1])
    return "[" + ", ".join(parts) + "]"


def _g6(v: float) -> str:
    return "%.6g" % v


def classes_to_json(top: Sequence[Mapping[str, Any]], labels: Sequence[str | None] | None = None) -> str:
    """Top-k classes as in `runinfer run` rows: [{"score":..,"class":N,"label":".."}, ...]."""
    parts = []
    for c in top:
        cid = int(c["class"])
        lb = labels[cid] if labels and 0 <= cid < len(labels) and labels[cid] is not None else ""
        parts.append('{"score":%s,"class":%d,"label":"%s"}' % (_g6(float(np.float32(c["score"]))), cid,
                                                                 json_escape(lb)))
    return "[" + ", ".join(parts) + "]"


_SPECIAL = frozenset(b";\"\\\x7f") | frozenset(range(0x20))


def format_key(key: str | bytes) -> str:
    """The key column of a `runinfer run` row: the key itself when it is non-empty UTF-8 without control
    characters, ';', '"' or '\\', else the key as a JSON string (ri_json_escape, quoted)."""
    b = _bytes(key)
    esc = json_escape(b)
    if b and not any(c in _SPECIAL for c in b) and esc.encode("utf-8") == b:
        return esc
    return '"' + esc + '"'


def format_row(key: str | bytes, detections: Sequence[Mapping[str, Any]] | None = None,
               labels: Sequence[str | None] | None = None, classes: Sequence[Mapping[str, Any]] | None = None) -> str:
    """One row of `runinfer run --format seed`, without the newline: KEY;[...]. Give detections (from
    Detector.run) or classes (from classify_topk)."""
    body = classes_to_json(classes, labels) if classes is not None else detections_to_json(detections or [], labels)
    return format_key(key) + ";" + body


def dead_letter_json(key: str | bytes, stage: str, error: str) -> str:
    """A dead-letter line as `runinfer run` writes it, without "seq": {"key":..,"stage":..,"error":..}."""
    return '{"key":"%s","stage":"%s","error":"%s"}' % (json_escape(key), json_escape(stage), json_escape(error))


def parse_labels(text: str | None) -> list:
    """The "labels" metadata: one label per line (index = class id), trailing '\\r' removed."""
    if text is None:
        return []
    return [s.rstrip("\r") for s in text.split("\n")]


# ---- post-processing as `runinfer run` does it ---------------------------------------------------------

class PostProcessor:
    """The post-processing `runinfer run` applies, chosen from an engine's metadata and outputs (an Engine
    or an EngineInfo): "task", "detect", "labels", "detect.boxes" / "detect.scores" / "detect.anchors".
    Without "detect" or task=detect, an engine with a single [N,C] output is a classifier (top-5 after a
    softmax). Picklable: holds only configuration; the C detector is created per thread on first use."""

    def __init__(self, engine):
        outs = list(engine.outputs)
        self.labels = parse_labels(engine.metadata("labels"))
        task = engine.metadata("task")
        dtext = engine.metadata("detect")
        self.topk = 5
        if (task is not None and task == "classify") or (task is None and dtext is None and len(outs) == 1):
            t = outs[0]
            if len(t.shape) != 2:
                raise Error(_lib.RI_ERR_SHAPE,
                            f"classification needs an output of shape [N,C]; '{t.name}' has rank {len(t.shape)}")
            self.task = "classify"
            self.class_out = t.name
            self.detect_text = None
            return
        self.task = "detect"
        try:
            cfg = DetectConfig(dtext) if dtext is not None else DetectConfig()
        except Error as e:
            raise Error(_lib.RI_ERR_PARSE, f"engine metadata 'detect': {e.message}") from None
        self.detect_text = cfg.to_string()
        self.max_total = cfg._c.max_total if cfg._c.max_total > 0 else 100
        names = [o.name for o in outs]

        def find(key):
            v = engine.metadata(key)
            return names.index(v) if v is not None and v in names else -1

        b, s, a = find("detect.boxes"), find("detect.scores"), find("detect.anchors")
        for i, t in enumerate(outs):
            if b >= 0 and s >= 0:
                break
            if len(t.shape) != 3 or i == a:
                continue
            if t.shape[2] == 4 and b < 0:
                b = i
            elif s < 0 and i != b:
                s = i
        if b < 0 or s < 0:
            raise Error(_lib.RI_ERR_SHAPE, "cannot tell the detector's box and score outputs apart: give them with "
                                           "the engine metadata detect.boxes and detect.scores")
        bt, st = outs[b], outs[s]
        if len(bt.shape) != 3 or len(st.shape) != 3 or bt.shape[1] != st.shape[1] or bt.shape[2] != 4:
            raise Error(_lib.RI_ERR_SHAPE, f"detector outputs '{bt.name}' and '{st.name}' must be [N,A,4] and [N,A,C]")
        self.boxes_out, self.scores_out = bt.name, st.name
        self.anchors_out = outs[a].name if a >= 0 else None
        Detector(self.detect_text)  # fail here, not on the first item, when the configuration is unusable

    def _detector(self) -> Detector:
        tls = self.__dict__.setdefault("_tls", threading.local())
        d = getattr(tls, "det", None)
        if d is None:
            d = tls.det = Detector(self.detect_text)
            tls.anchors_set = False
        return d

    def __getstate__(self):
        st = dict(self.__dict__)
        st.pop("_tls", None)
        return st

    def run(self, outputs: Mapping[str, np.ndarray], transform: Transform | None = None) -> dict:
        """Post-process ONE item (outputs without the batch axis, by name). Returns {"detections": [...]} or
        {"classes": [...]}."""
        if self.task == "classify":
            s = np.asarray(outputs[self.class_out])
            return {"classes": classify_topk(s, min(self.topk, s.reshape(-1).shape[0]), softmax=True)}
        det = self._detector()
        tls = self.__dict__["_tls"]
        if self.anchors_out is not None and not tls.anchors_set:
            det.set_anchors(np.asarray(outputs[self.anchors_out]).reshape(-1, 4))
            tls.anchors_set = True
        return {"detections": det.run(outputs[self.boxes_out], outputs[self.scores_out], transform,
                                      cap=self.max_total)}

    def format_row(self, key: str | bytes, outputs: Mapping[str, np.ndarray], transform: Transform | None = None) -> str:
        """run() and format_row() in one: the `runinfer run` row for one item, without the newline."""
        r = self.run(outputs, transform)
        if "classes" in r:
            return format_row(key, classes=r["classes"], labels=self.labels)
        return format_row(key, r["detections"], labels=self.labels)

