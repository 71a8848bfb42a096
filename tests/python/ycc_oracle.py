"""NumPy references for the planar JPEG preprocessing (ri_decoder_load_* + ri_decoder_preprocess_loaded), written
from the JPEG/JFIF definitions and vision.h's documented formulas, not from the C code.

  jpeg_planes(data)          the JPEG's Y, Cb, Cr planes as libjpeg-turbo decodes them without upsampling or
                             colour conversion (TurboJPEG's tjDecompressToYUVPlanes, through ctypes), with the
                             subsampling factors.
  upsample(planes, hf, vf)   full-resolution float64 Y, Cb, Cr: each chroma plane linearly interpolated at
                             every pixel centre with JPEG's centred siting (sample j centred at (j + 0.5) * f,
                             clamped at the edges), which is libjpeg's "fancy" upsampling without its rounding.
  preprocess_float(...)      full-resolution YCbCr -> RGB (JFIF), EXIF orientation, then ri_preprocess's
                             half-pixel bilinear resize, channel order, normalisation, layout and dtype, all in
                             float64, with the clamp to 0..255 either per source pixel before the resize
                             (clamp_first=True: the RGB path without libjpeg's 8-bit rounding) or per output
                             pixel after it (False: what the planar path computes, which interpolates the planes
                             and converts at the output pixels).

The planar path computes the second one from the planes without the full-resolution image; this oracle
computes it the long way. Geometry (vision.h): output index i of n over an extent of L pixels samples
(i + 0.5) * L / n - 0.5 clamped to [0, L - 1]; letterbox regions as ri_preprocess computes them.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

TJSAMP = {0: (1, 1), 1: (2, 1), 2: (2, 2), 3: None, 4: None, 5: (1, 2)}  # 444, 422, 420, gray, 411, 440
TJSAMP_GRAY = 3
_tj = None


def _turbojpeg():
    global _tj
    if _tj is None:
        path = ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0"
        L = ctypes.CDLL(path)
        L.tjInitDecompress.restype = ctypes.c_void_p
        L.tjDestroy.argtypes = [ctypes.c_void_p]
        L.tjDecompressHeader3.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong] + \
            [ctypes.POINTER(ctypes.c_int)] * 4
        L.tjPlaneWidth.argtypes = [ctypes.c_int] * 3
        L.tjPlaneHeight.argtypes = [ctypes.c_int] * 3
        L.tjDecompressToYUVPlanes.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong,
                                              ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                                              ctypes.POINTER(ctypes.c_int), ctypes.c_int, ctypes.c_int]
        _tj = L
    return _tj


def jpeg_planes(data: bytes):
    """(planes, hf, vf): planes is [Y] for grayscale, [Y, Cb, Cr] otherwise (uint8 arrays); Y has the image's
    size, a chroma plane ceil(width / hf) x ceil(height / vf) samples."""
    L = _turbojpeg()
    h = L.tjInitDecompress()
    try:
        w, ht, ss, cs = (ctypes.c_int() for _ in range(4))
        assert L.tjDecompressHeader3(h, data, len(data), *(ctypes.byref(v) for v in (w, ht, ss, cs))) == 0
        n = 1 if ss.value == TJSAMP_GRAY else 3
        planes = [np.empty((L.tjPlaneHeight(i, ht.value, ss.value), L.tjPlaneWidth(i, w.value, ss.value)),
                           np.uint8) for i in range(n)]
        ptrs = (ctypes.c_void_p * 3)(*[p.ctypes.data for p in planes] + [None] * (3 - n))
        strides = (ctypes.c_int * 3)(*[p.shape[1] for p in planes] + [0] * (3 - n))
        assert L.tjDecompressToYUVPlanes(h, data, len(data), ptrs, w.value, strides, ht.value, 0) == 0
    finally:
        L.tjDestroy(h)
    hf, vf = (1, 1) if n == 1 else TJSAMP[ss.value]
    planes[0] = planes[0][: ht.value, : w.value]  # TurboJPEG pads the luma plane to whole chroma samples
    return planes, hf, vf


def orient(img: np.ndarray, orientation: int) -> np.ndarray:
    """An H x W x C image turned upright per EXIF orientation 1..8 (vision.h, decode.c's table)."""
    if orientation >= 5:
        img = img.transpose(1, 0, 2)
    if orientation in (2, 3, 6, 7):
        img = img[:, ::-1]
    if orientation in (3, 4, 7, 8):
        img = img[::-1]
    return img


def axis(n_out: int, length: int):
    """ri_preprocess's source position per output index: left index and weight of the right neighbour."""
    s = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * (length / n_out) - 0.5, 0.0)
    i0 = np.floor(s).astype(np.int64)
    w = s - i0
    last = i0 >= length - 1
    i0[last] = length - 1
    w[last] = 0.0
    return i0, w


def sample(plane: np.ndarray, rows, cols) -> np.ndarray:
    (r0, wr), (c0, wc) = rows, cols
    pl = plane.astype(np.float64)
    r1 = np.minimum(r0 + 1, plane.shape[0] - 1)
    c1 = np.minimum(c0 + 1, plane.shape[1] - 1)
    top = pl[r0][:, c0] + (pl[r0][:, c1] - pl[r0][:, c0]) * wc
    bot = pl[r1][:, c0] + (pl[r1][:, c1] - pl[r1][:, c0]) * wc
    return top + (bot - top) * wr[:, None]


def ycc_to_rgb(y, cb, cr, clamp: bool = True) -> np.ndarray:
    u, v = cb - 128.0, cr - 128.0
    rgb = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], axis=-1)
    return np.clip(rgb, 0.0, 255.0) if clamp else rgb


def region(sw: int, sh: int, spec: dict):
    W, H = spec["size"]
    if not spec.get("letterbox"):
        return 0, 0, W, H
    if W * sh <= H * sw:
        nh = min(max((2 * sh * W + sw) // (2 * sw), 1), H)
        nw = W
    else:
        nw = min(max((2 * sw * H + sh) // (2 * sh), 1), W)
        nh = H
    return (W - nw) // 2, (H - nh) // 2, nw, nh


def finish(rgb: np.ndarray, spec: dict) -> np.ndarray:
    """Region pixels (h x w x 3, RGB values 0..255 as float64) placed into the model input per spec."""
    W, H = spec["size"]
    mean = np.asarray(spec.get("mean", (0, 0, 0)), np.float64)
    scale = np.asarray(spec.get("scale", (1, 1, 1)), np.float64)
    pad = np.asarray(spec.get("pad", (0, 0, 0)), np.float64)
    x, y, w, h = spec["_region"]
    if spec.get("order") == "bgr":
        rgb = rgb[..., ::-1]
    out = np.empty((H, W, 3), np.float64)
    out[...] = (pad - mean) * scale
    out[y:y + h, x:x + w] = (rgb - mean) * scale
    if spec.get("dtype") == "uint8":
        out = np.clip(np.floor(out + 0.5), 0, 255)
    if spec.get("layout") == "nchw":
        out = out.transpose(2, 0, 1)
    return out


def upsample(planes, hf: int, vf: int) -> np.ndarray:
    """H x W x 3 float64 Y, Cb, Cr at full resolution (grayscale: Cb = Cr = 128)."""
    Hh, Ww = planes[0].shape
    y = planes[0].astype(np.float64)
    if len(planes) == 1:
        return np.stack([y, np.full_like(y, 128.0), np.full_like(y, 128.0)], axis=-1)
    ch, cw = planes[1].shape
    rows = _centred(Hh, vf, ch)
    cols = _centred(Ww, hf, cw)
    return np.stack([y, sample(planes[1], rows, cols), sample(planes[2], rows, cols)], axis=-1)


def _centred(n: int, f: int, p: int):
    """Chroma sample position of every pixel centre: (i + 0.5) / f - 0.5, clamped to [0, p - 1]."""
    s = np.clip((np.arange(n, dtype=np.float64) + 0.5) / f - 0.5, 0.0, p - 1)
    i0 = np.floor(s).astype(np.int64)
    return i0, s - i0


def preprocess_float(planes, hf: int, vf: int, orientation: int, spec: dict, clamp_first: bool) -> np.ndarray:
    full = ycc_to_rgb(*np.moveaxis(upsample(planes, hf, vf), -1, 0), clamp=clamp_first)
    full = orient(full, orientation)
    Hh, Ww = full.shape[:2]
    x, y, w, h = spec["_region"] = region(Ww, Hh, spec)
    rows, cols = axis(h, Hh), axis(w, Ww)
    rgb = np.stack([sample(full[..., c], rows, cols) for c in range(3)], axis=-1)
    return finish(np.clip(rgb, 0.0, 255.0), spec)
