"""features.py on images made here: known hashes, gray detection, EXIF, odd modes, bad files."""
from __future__ import annotations

import io
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageFilter

from imaging import DATETIME_ORIGINAL, EXIF_IFD, MAKE, MODEL, save_jpeg, scene
from indexer.features import MIN_SIDE, extract_one, features_from_file, parse_exif_datetime, reduce_decode
from indexer.records import WorkItem

DATETIME = 306


def hexhash(value: int) -> str:
    """Our stored signed int64 as ImageHash's str(): 16 lowercase hex digits."""
    assert -(2 ** 63) <= value < 2 ** 63, "a hash must fit a signed 64-bit SQLite integer"
    return f"{value & (2 ** 64 - 1):016x}"


def save_png(img: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "PNG")
    return path


def gradient(w: int = 90, h: int = 80, *, reverse: bool = False) -> Image.Image:
    row = np.linspace(0, 255, w)
    a = np.tile(row[::-1] if reverse else row, (h, 1)).astype(np.uint8)
    return Image.fromarray(a, "L")


def halves(w: int = 96, h: int = 80, *, vertical: bool = True) -> Image.Image:
    """Black left (or top) half, white right (or bottom) half."""
    a = np.zeros((h, w), np.uint8)
    if vertical:
        a[:, w // 2:] = 255
    else:
        a[h // 2:, :] = 255
    return Image.fromarray(a, "L")


def item_for(path: Path) -> WorkItem:
    return WorkItem(1, str(path.parent), "", path.name)


# -- hashes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("img, attr, expected", [
    (gradient(), "dhash", "ffffffffffffffff"),  # every step left to right gets brighter
    (gradient(reverse=True), "dhash", "0000000000000000"),
    (halves(), "ahash", "0f0f0f0f0f0f0f0f"),  # per row: 4 dark cells then 4 bright ones
    (halves(vertical=False), "ahash", "00000000ffffffff"),  # first 4 rows dark: the high bits are 0
], ids=["dhash-gradient", "dhash-reverse-gradient", "ahash-left-right", "ahash-top-bottom"])
def test_known_hashes_on_synthetic_images(tmp_path, img, attr, expected):
    f = features_from_file(save_png(img, tmp_path / "x.png"))
    assert hexhash(getattr(f, attr)) == expected


def _png_bytes(img: Image.Image) -> io.BytesIO:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    buf.seek(0)
    return buf


def test_hashes_are_signed_int64_in_imagehash_bit_order():
    assert features_from_file(_png_bytes(gradient())).dhash == -1  # all 64 bits set, stored signed
    assert features_from_file(_png_bytes(gradient(reverse=True))).dhash == 0
    # first 4 rows dark, last 4 bright: the first cells are the most significant bits
    assert features_from_file(_png_bytes(halves(vertical=False))).ahash == 0x00000000FFFFFFFF
    assert features_from_file(_png_bytes(halves(vertical=False).transpose(Image.Transpose.FLIP_TOP_BOTTOM))
                              ).ahash == -(2 ** 32)  # 0xffffffff00000000 as a signed int64


SMALL = {
    "rgb0": lambda: scene(0, (120, 100)),
    "rgb1": lambda: scene(1, (120, 100)),
    "gray": lambda: scene(2, (127, 100), gray=True),
    "rgba": lambda: scene(3, (120, 90)).convert("RGBA"),
    "gradient": gradient,
    "halves": halves,
}


def _small_png(tmp_path: Path, name: str) -> Path:
    img = SMALL[name]()
    assert min(img.size) < 2 * MIN_SIDE
    path = save_png(img, tmp_path / f"{name}.png")
    with Image.open(path) as im:
        assert reduce_decode(im).size == img.size  # below 2 * MIN_SIDE a PNG is not reduced
    return path


@pytest.mark.parametrize("name", list(SMALL))
def test_dhash_ahash_equal_imagehash_when_no_reduction_happens(tmp_path, name):
    path = _small_png(tmp_path, name)
    with Image.open(path) as ref:
        want = (str(imagehash.dhash(ref)), str(imagehash.average_hash(ref)))
    f = features_from_file(path)
    assert (hexhash(f.dhash), hexhash(f.ahash)) == want


@pytest.mark.parametrize("name", list(SMALL))
def test_phash_equals_imagehash_when_no_reduction_happens(tmp_path, name):
    path = _small_png(tmp_path, name)
    with Image.open(path) as ref:
        want = str(imagehash.phash(ref))
    assert hexhash(features_from_file(path).phash) == want


@pytest.mark.parametrize("level", [10, 128, 255])
def test_phash_of_uniform_frame_matches_imagehash(tmp_path, level):
    path = save_png(Image.new("L", (100, 80), level), tmp_path / "flat.png")
    with Image.open(path) as ref:
        want = str(imagehash.phash(ref))
    assert hexhash(features_from_file(path).phash) == want


def test_reduced_decode_keeps_enough_pixels_and_original_size_is_reported(tmp_path):
    big = save_jpeg(scene(4, (1024, 768)), tmp_path / "big.jpg")
    with Image.open(big) as im:
        reduced = reduce_decode(im)
        assert min(reduced.size) >= MIN_SIDE
        assert reduced.size[0] < 1024  # the decode really was reduced
    f = features_from_file(big)
    assert (f.width, f.height) == (1024, 768)
    png = save_png(scene(5, (600, 400)), tmp_path / "big.png")
    f = features_from_file(png)
    assert (f.width, f.height, f.format) == (600, 400, "PNG")


# -- gray detection ------------------------------------------------------------------------------


def test_true_grayscale_jpeg_is_gray(tmp_path):
    path = save_jpeg(scene(6, (320, 240), gray=True), tmp_path / "night.jpg")
    f = features_from_file(path)
    assert f.mode == "L"
    assert f.is_gray is True
    assert f.color_variance == 0


def test_rgb_jpeg_with_tiny_chroma_noise_is_gray(tmp_path):
    gray = np.asarray(scene(7, (320, 240), gray=True), dtype=np.int16)
    rng = np.random.default_rng(7)
    rgb = gray[..., None] + rng.integers(-2, 3, (240, 320, 3))
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    f = features_from_file(save_jpeg(img, tmp_path / "ir.jpg", quality=90))
    assert f.mode == "RGB"
    assert f.is_gray is True


def colourful(w: int = 320, h: int = 240) -> Image.Image:
    """A daytime frame: blue sky, green vegetation, brown ground."""
    a = np.empty((h, w, 3), np.uint8)
    a[: h // 3] = (110, 160, 230)
    a[h // 3: 2 * h // 3] = (60, 140, 50)
    a[2 * h // 3:] = (140, 100, 60)
    return Image.fromarray(a, "RGB")


def test_colourful_frame_is_not_gray(tmp_path):
    f = features_from_file(save_jpeg(colourful(), tmp_path / "day.jpg"))
    assert f.is_gray is False
    assert f.color_variance > 100


def test_gray_frame_with_coloured_logo_in_info_bar_is_gray(tmp_path):
    w, h = 640, 480
    a = np.repeat(np.asarray(scene(8, (w, h), gray=True))[..., None], 3, axis=2).copy()
    a[h - 44:] = 0  # the camera's black info bar, like Bushnell's
    a[h - 44:, 0:120] = (230, 110, 30)  # an orange brand logo filling its left end: 1.7% of the frame
    a[h - 30: h - 10, 300:420] = 255  # white text
    img = Image.fromarray(a, "RGB")
    f = features_from_file(save_jpeg(img, tmp_path / "ir_logo.jpg"))
    assert f.is_gray is True
    # the same logo in the middle of the picture is part of the scene: colour
    b = a.copy()
    b[h // 2 - 60: h // 2 + 60, w // 2 - 80: w // 2 + 80] = (230, 110, 30)
    g = features_from_file(save_jpeg(Image.fromarray(b, "RGB"), tmp_path / "ir_patch.jpg"))
    assert g.is_gray is False


# -- EXIF ----------------------------------------------------------------------------------------


def jpeg_with_exif(path: Path, ifd0: dict[int, object], sub: dict[int, object]) -> Path:
    exif = Image.Exif()
    for k, v in ifd0.items():
        exif[k] = v
    sub_ifd = exif.get_ifd(EXIF_IFD)
    for k, v in sub.items():
        sub_ifd[k] = v
    scene(9, (160, 120)).save(path, "JPEG", exif=exif.tobytes())
    return path


@pytest.mark.parametrize("raw, expected", [
    ("2021:04:11 20:43:09", "2021-04-11T20:43:09"),
    ("2021:04:11 20:43:09\x00", "2021-04-11T20:43:09"),
    ("  2021:04:11 20:43:09  \x00\x00", "2021-04-11T20:43:09"),
    (b"2021:04:11 20:43:09\x00", "2021-04-11T20:43:09"),
    ("0000:00:00 00:00:00", None),
    ("    :  :     :  :  ", None),
    ("\x00\x00\x00\x00", None),
    ("2021:02:30 10:00:00", None),
    ("", None),
    (None, None),
])
def test_parse_exif_datetime(raw, expected):
    assert parse_exif_datetime(raw) == expected


def test_datetime_original_is_preferred_over_datetime(tmp_path):
    path = jpeg_with_exif(tmp_path / "a.jpg", {DATETIME: "2030:01:01 00:00:00"},
                          {DATETIME_ORIGINAL: "2021:04:11 20:43:09\x00 "})
    assert features_from_file(path).captured_at == "2021-04-11T20:43:09"


def test_invalid_datetime_original_gives_none(tmp_path):
    path = jpeg_with_exif(tmp_path / "zero.jpg", {}, {DATETIME_ORIGINAL: "0000:00:00 00:00:00"})
    assert features_from_file(path).captured_at is None
    no_exif = save_jpeg(scene(9, (160, 120)), tmp_path / "none.jpg")
    f = features_from_file(no_exif)
    assert (f.captured_at, f.camera_make, f.camera_model) == (None, None, None)


def test_make_and_model_are_stripped(tmp_path):
    path = jpeg_with_exif(tmp_path / "m.jpg", {MAKE: "RECONYX\x00\x00  ", MODEL: "  HYPERFIRE 2 COVERT\x00"},
                          {DATETIME_ORIGINAL: "2021:04:11 20:43:09"})
    f = features_from_file(path)
    assert (f.camera_make, f.camera_model) == ("RECONYX", "HYPERFIRE 2 COVERT")
    blank = jpeg_with_exif(tmp_path / "blank.jpg", {MAKE: "   ", MODEL: "\x00\x00"}, {})
    g = features_from_file(blank)
    assert (g.camera_make, g.camera_model) == (None, None)


# -- brightness and sharpness --------------------------------------------------------------------


def test_brightness_of_uniform_png_and_ordering(tmp_path):
    f = features_from_file(save_png(Image.new("L", (200, 150), 100), tmp_path / "flat.png"))
    assert f.brightness == pytest.approx(100, abs=0.5)
    base = np.asarray(scene(10, (320, 240)), dtype=np.float32)
    dark = features_from_file(save_jpeg(Image.fromarray((base * 0.3).astype(np.uint8)), tmp_path / "dark.jpg"))
    bright = features_from_file(save_jpeg(Image.fromarray(np.clip(base * 1.4, 0, 255).astype(np.uint8)),
                                          tmp_path / "bright.jpg"))
    assert 0 <= dark.brightness < bright.brightness <= 255
    assert bright.brightness - dark.brightness > 50


def test_blurred_copy_is_less_sharp(tmp_path):
    img = scene(11, (640, 480))
    sharp = features_from_file(save_jpeg(img, tmp_path / "sharp.jpg", quality=95))
    blurred = features_from_file(save_jpeg(img.filter(ImageFilter.GaussianBlur(4)), tmp_path / "blur.jpg",
                                           quality=95))
    assert blurred.sharpness < 0.5 * sharp.sharpness
    flat = features_from_file(save_png(Image.new("L", (200, 150), 100), tmp_path / "flat.png"))
    assert flat.sharpness == 0


def test_sharpness_compares_across_resolutions(tmp_path):
    """Measured at a fixed width: the same scene at two sizes scores alike, unlike its blurred copy."""
    img = scene(12, (1280, 960)).filter(ImageFilter.GaussianBlur(1))
    big = features_from_file(save_png(img, tmp_path / "big.png"))
    small = features_from_file(save_png(img.resize((640, 480), Image.Resampling.LANCZOS), tmp_path / "small.png"))
    blurred = features_from_file(save_png(img.filter(ImageFilter.GaussianBlur(8)), tmp_path / "blurred.png"))
    assert small.sharpness == pytest.approx(big.sharpness, rel=0.5)
    assert blurred.sharpness < 0.5 * min(big.sharpness, small.sharpness)


# -- image modes ---------------------------------------------------------------------------------


def sixteen_bit(w: int, h: int, value: float | None = None) -> Image.Image:
    if value is None:
        a = np.linspace(0, 65535, w * h).reshape(h, w)
    else:
        a = np.full((h, w), value)
    im = Image.new("I;16", (w, h))
    im.frombytes(a.astype("<u2").tobytes())
    return im


RED = (200, 30, 30)
RED_L = 0.299 * 200 + 0.587 * 30 + 0.114 * 30  # ITU-R 601 luma, as Pillow's convert("L")


ODD_MODES = [  # file name, image maker, mode on disk, expected brightness, expected is_gray
    ("cmyk.jpg", lambda: Image.new("RGB", (300, 200), RED).convert("CMYK"), "CMYK", RED_L, False),
    ("cmyk_k.jpg", lambda: Image.new("CMYK", (300, 200), (0, 0, 0, 100)), "CMYK", 155, True),
    ("gray16_small.png", lambda: sixteen_bit(90, 60, 32768), "I;16", 127.5, True),  # not reduced
    ("gray16.png", lambda: sixteen_bit(300, 200, 32768), "I;16", 127.5, True),  # reduced decode
    ("gradient16.png", lambda: sixteen_bit(300, 200), "I;16", 127.5, True),
    ("palette.png", lambda: colourful(300, 200).convert("P", palette=Image.Palette.ADAPTIVE), "P", None, False),
    ("palette_gray.png", lambda: Image.new("L", (300, 200), 90).convert("P"), "P", 90, True),
    ("rgba.png", lambda: Image.new("RGBA", (300, 200), (*RED, 128)), "RGBA", RED_L, False),
    ("la.png", lambda: Image.new("LA", (300, 200), (90, 128)), "LA", 90, True),
    ("bilevel.png", lambda: halves(300, 200).convert("1"), "1", 127.5, True),
]


@pytest.mark.parametrize("name, make, mode, brightness, is_gray", [pytest.param(*p, id=p[0]) for p in ODD_MODES])
def test_odd_modes_give_sane_features(tmp_path, name, make, mode, brightness, is_gray):
    img = make()
    path = tmp_path / name
    img.save(path)
    r = extract_one(item_for(path))
    assert r.error is None, r.error
    f = r.features
    assert f.mode == mode
    assert (f.width, f.height) == img.size
    assert 0 <= f.brightness <= 255
    if brightness is not None:
        assert f.brightness == pytest.approx(brightness, abs=2.5)
    assert f.is_gray is is_gray
    if is_gray:
        assert 0 <= f.color_variance < 5
    else:
        assert f.color_variance > 100


# -- files that are not images -------------------------------------------------------------------


def _assert_error_result(path: Path, *, contains: str = "") -> str:
    r = extract_one(item_for(path))
    assert r.features is None
    assert r.error and "\n" not in r.error
    assert "Traceback" not in r.error
    assert r.vanished is False
    assert r.size == path.stat().st_size
    assert contains.lower() in r.error.lower()
    return r.error


def test_empty_file_is_an_error_result(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    _assert_error_result(path, contains="empty")


@pytest.mark.parametrize("keep", [300, 0.5, 0.95])
def test_truncated_jpeg_is_an_error_result(tmp_path, keep):
    full = save_jpeg(scene(13, (640, 480)), tmp_path / "full.jpg").read_bytes()
    n = keep if isinstance(keep, int) else int(len(full) * keep)
    path = tmp_path / "cut.jpg"
    path.write_bytes(full[:n])
    _assert_error_result(path, contains="truncated")


def test_text_file_named_jpg_is_an_error_result(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not an image\n" * 20)
    _assert_error_result(path)


def test_folder_named_jpg_is_an_error_result(tmp_path):
    path = tmp_path / "album.jpg"
    path.mkdir()
    r = extract_one(item_for(path))
    assert r.features is None and r.error


@pytest.mark.parametrize("side", [40, 100])  # over the limit (a warning in Pillow), over twice the limit (an error)
def test_decompression_bomb_is_an_error_result(tmp_path, monkeypatch, side):
    path = save_png(Image.new("RGB", (side, side), RED), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    _assert_error_result(path, contains="decompression bomb")


def test_vanished_file_is_flagged(tmp_path):
    r = extract_one(item_for(tmp_path / "gone.jpg"))
    assert r.features is None and r.vanished is True


def test_a_chunk_gives_each_file_what_it_gives_alone(tmp_path, monkeypatch):
    """extract_many decodes a chunk's files first and measures them after: every result, in
    order, is the one the file gives alone, for good files, bad ones, gray ones and an image too
    large to be held back (measured at once)."""
    import indexer.features as F

    monkeypatch.setattr(F, "STAGED_PIXELS", 300 * 200)
    save_jpeg(scene(1, (640, 480)), tmp_path / "a.jpg", taken="2024:05:01 10:00:00", make="Reconyx")
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg at all")
    save_jpeg(scene(2, (640, 480), gray=True), tmp_path / "c.jpg")
    scene(3, (400, 300)).save(tmp_path / "d.png")  # no reduced decode: 400x300 > STAGED_PIXELS
    (tmp_path / "e.jpg").write_bytes(b"")
    save_jpeg(scene(4, (1600, 1200)), tmp_path / "f.jpg")
    items = [WorkItem(1, str(tmp_path), "", n) for n in ("a.jpg", "b.jpg", "c.jpg", "d.png", "gone.jpg", "e.jpg",
                                                          "f.jpg")]
    got = F.extract_many(items)
    assert [r.item.name for r in got] == [i.name for i in items]
    assert got == [extract_one(i) for i in items]
    assert [r.error is None for r in got] == [True, False, True, True, False, False, True]
    assert got[0].features.camera_make == "Reconyx" and got[2].features.is_gray
