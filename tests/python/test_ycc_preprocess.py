"""Planar JPEG preprocessing (runinfer.vision.Decoder: ri_decoder_load_* + ri_decoder_preprocess_loaded) against
NumPy references written here and in ycc_oracle.py, independent of the C code:

  - the planar oracle: the JPEG's planes (TurboJPEG's raw YUV decode via ctypes), chroma upsampled to full
    resolution with centred siting, JFIF colour conversion, EXIF orientation, ri_preprocess's bilinear resize,
    clamped at the output pixels, all in float64. The library must equal it to float rounding.
  - Pillow: its own RGB decode of the same file, turned upright, then the same NumPy resize. The library must
    differ from it only by libjpeg's 8-bit rounding (0.5 of output plus 0.5 of chroma times 1.772: 1.386
    levels) and by the clamping order, bounded per element by the planar oracle computed with the clamp
    before and after the resize.
  - the RGB path of the binding (decode() + preprocess()) under the same bound, and exactly when the planar
    path is switched off (jpeg_ycbcr=False) or the image is a PNG.

JPEGs are written by Pillow with 4:4:4, 4:2:2 and 4:2:0 subsampling, odd sizes, progressive or not, with EXIF
orientations; a few COCO photos from ../shared are used when the folder is there. Needs RI_LIB (or the build
next to the CLI) and Pillow.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, find_lib

Image = pytest.importorskip("PIL.Image")
LIB = find_lib()
pytestmark = pytest.mark.skipif(LIB is None, reason="libruninfer.so not found (set RI_LIB or build it)")
if LIB:
    os.environ.setdefault("RI_LIB", LIB)
if str(REPO_ROOT / "python") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "python"))

import ycc_oracle as yo  # noqa: E402
from runinfer import vision  # noqa: E402
from runinfer.errors import Error  # noqa: E402

ROUNDING = 1.39  # levels of 255: libjpeg rounds its output (0.5) and its upsampled chroma (0.5 x 1.772)
PHOTOS = REPO_ROOT.parent / "shared" / "images" / "coco" / "mlperf_coco_val_tiny300"

SPECS = {
    "nchw_f32": ("size=300x300;layout=nchw;dtype=float32;range=-1,1",
                 dict(size=(300, 300), layout="nchw", mean=(127.5,) * 3, scale=(2 / 255,) * 3)),
    "nhwc_u8": ("size=61x47;layout=nhwc;dtype=uint8", dict(size=(61, 47), dtype="uint8")),
    "nhwc_f32_bgr_letterbox": ("size=64x64;layout=nhwc;dtype=float32;order=bgr;resize=letterbox;pad=0,128,255;"
                               "mean=10,20,30;scale=0.5,1,2",
                               dict(size=(64, 64), order="bgr", letterbox=True, pad=(0, 128, 255), mean=(10, 20, 30),
                                    scale=(0.5, 1, 2))),
}


def _picture(rng, w: int, h: int) -> np.ndarray:
    """Smooth colours, sharp saturated patches (where the clamping order shows) and grain."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([128 + 100 * np.sin(rng.uniform(1, 6) * x / w + rng.uniform(1, 5) * y / h + rng.uniform(0, 6))
                    for _ in range(3)], axis=-1)
    patch = ((x // 9 + y // 6) % 7 == 0)
    img[patch] = (250, 10, 40)
    img += rng.integers(-4, 5, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, subsampling: int, orientation: int = 1, progressive: bool = False) -> bytes:
    buf = io.BytesIO()
    kw = {}
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    Image.fromarray(img).save(buf, format="JPEG", quality=92, subsampling=subsampling, progressive=progressive, **kw)
    return buf.getvalue()


def _orientation(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as im:
        return int(im.getexif().get(0x0112, 1))


def _numpy_resize(rgb: np.ndarray, spec: dict) -> np.ndarray:
    """ri_preprocess's documented resize on an upright uint8 RGB image, float64, clamped."""
    h0, w0 = rgb.shape[:2]
    x, y, w, h = spec["_region"] = yo.region(w0, h0, spec)
    rows, cols = yo.axis(h, h0), yo.axis(w, w0)
    out = np.stack([yo.sample(rgb[..., c], rows, cols) for c in range(3)], axis=-1)
    return yo.finish(np.clip(out, 0, 255), spec)


def _unit(spec: dict, layout_shape) -> np.ndarray:
    """|scale| of every element's channel, broadcast to the item's shape."""
    s = np.abs(np.asarray(spec.get("scale", (1, 1, 1)), np.float64))
    return s[:, None, None] if spec.get("layout") == "nchw" else s[None, None, :]


def _check(data: bytes, spec_text: str, spec: dict, what: str):
    d = vision.Decoder()
    full = d.load(data, name=what)
    ours, tr = d.preprocess(spec_text)
    ours = ours.astype(np.float64)
    planes, hf, vf = yo.jpeg_planes(data)
    o = _orientation(data)
    exact = {k: v for k, v in spec.items() if k != "dtype"}  # the oracle's values before uint8 rounding
    late = yo.preprocess_float(planes, hf, vf, o, dict(exact), clamp_first=False)
    early = yo.preprocess_float(planes, hf, vf, o, dict(exact), clamp_first=True)
    u8 = spec.get("dtype") == "uint8"
    unit = _unit(spec, ours.shape)
    # 1. the planar oracle, to float rounding (uint8: the rounded value, ties either way)
    if u8:
        ref = np.clip(np.floor(late + 0.5), 0, 255)
        tie = np.abs(late - np.floor(late) - 0.5) < 1e-3
        bad = (np.abs(ours - ref) > 0) & ~(tie & (np.abs(ours - ref) <= 1))
        assert not bad.any(), (f"{what}: {bad.sum()} uint8 values differ from the planar oracle, e.g. "
                               f"{ours[bad][0]} for {late[bad][0]:.6f}")
    else:
        err = np.abs(ours - late).max()
        assert err <= 2e-3 * max(1.0, unit.max()), f"{what}: {err} from the planar oracle"
    # 2. Pillow's RGB decode + NumPy resize, and 3. the binding's RGB path: rounding + clamping order
    with Image.open(io.BytesIO(data)) as im:
        pil = yo.orient(np.asarray(im.convert("RGB")), o)
    rgb_item, rgb_tr = vision.preprocess(vision.decode_bytes(data), spec_text)
    bound = ROUNDING * unit + np.abs(late - early) + 1e-3
    if u8:
        bound = np.floor(bound) + 1
    for name, other in (("Pillow + NumPy", _numpy_resize(pil, dict(spec))), ("decode + preprocess", rgb_item)):
        diff = np.abs(ours - other.astype(np.float64))
        over = diff > bound
        assert not over.any(), (f"{what}: {over.sum()} of {diff.size} values differ from {name} by more than "
                                f"rounding and clamping (worst {diff.max():.3f})")
        assert diff.mean() <= 0.5 * unit.max() + (0.5 if u8 else 0), f"{what}: mean difference {diff.mean()}"
    assert tuple(tr) == tuple(rgb_tr) and (tr.src_width, tr.src_height) == full
    return np.abs(ours - rgb_item).mean()


@pytest.mark.parametrize("spec_name", sorted(SPECS))
@pytest.mark.parametrize("subsampling,orientation,progressive", [(2, 1, False), (1, 1, True), (0, 1, False),
                                                                 (2, 6, False), (1, 3, False), (2, 8, True)])
def test_generated_jpegs(spec_name, subsampling, orientation, progressive):
    rng = np.random.default_rng(subsampling * 100 + orientation)
    img = _picture(rng, 163, 119)
    data = _jpeg(img, subsampling, orientation, progressive)
    text, spec = SPECS[spec_name]
    _check(data, text, spec, f"sub{subsampling}-o{orientation}-p{int(progressive)}-{spec_name}")


@pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"{PHOTOS} is absent (the shared folder next to the repository)")
@pytest.mark.parametrize("spec_name", sorted(SPECS))
def test_coco_photos(spec_name):
    text, spec = SPECS[spec_name]
    photos = sorted(PHOTOS.glob("*.jpg"))[:12]
    assert photos
    means = [_check(p.read_bytes(), text, spec, p.name) for p in photos]
    print(f"\n{spec_name}: mean |planar - RGB path| over {len(photos)} photos: {np.mean(means):.4f}")


def test_opt_out_and_png_are_exact():
    rng = np.random.default_rng(5)
    img = _picture(rng, 90, 70)
    data = _jpeg(img, 2)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    text = SPECS["nchw_f32"][0]
    want_jpeg, _ = vision.preprocess(vision.decode_bytes(data), text)
    got, _ = vision.decode_preprocess(data, text, jpeg_ycbcr=False)
    assert np.array_equal(got, want_jpeg)
    planar, _ = vision.decode_preprocess(data, text)
    assert not np.array_equal(planar, want_jpeg), "the default path should be the planar one for a 4:2:0 JPEG"
    png = buf.getvalue()
    want_png, _ = vision.preprocess(vision.decode_bytes(png), text)
    got_png, _ = vision.decode_preprocess(png, text)
    assert np.array_equal(got_png, want_png)


def test_errors_name_the_source(tmp_path):
    d = vision.Decoder()
    with pytest.raises(Error) as e:
        d.preprocess(SPECS["nchw_f32"][0])
    assert "no image is loaded" in e.value.message
    bad = tmp_path / "cut.jpg"
    data = _jpeg(_picture(np.random.default_rng(1), 200, 150), 2)
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(Error) as e:
        d.load(str(bad))
    assert str(bad) in e.value.message
    with pytest.raises(Error) as e:
        d.load(Path(tmp_path / "missing.jpg"))
    assert "missing.jpg" in e.value.message
