"""The fast paths of features.py give exactly what the plain ones give (issue 12: stored values
never change): the hash grids against Pillow's LANCZOS resize, EXIF against Pillow's reader,
the colour, sharpness and brightness figures against the formulas they replaced."""
from __future__ import annotations

import io
import random
import struct
from pathlib import Path

import numpy as np
import pytest
from imaging import DATETIME_ORIGINAL, EXIF_IFD, MAKE, MODEL, save_jpeg, scene
from PIL import Image

import indexer.exif as X
import indexer.features as F
import indexer.hashgrids as G

LANCZOS = Image.Resampling.LANCZOS


def pillow_grids(img: Image.Image) -> list[np.ndarray]:
    return [np.asarray(img.resize(size, LANCZOS)) for size in G.HASH_GRIDS]


def sample_images(w: int, h: int, seed: int) -> list[Image.Image]:
    """Noise, hard black/white edges, a gradient and a photo-like scene of one size."""
    rng = np.random.default_rng(seed)
    edges = np.where(rng.random((h, w)) < 0.5, 0, 255).astype(np.uint8)
    ramp = (np.add.outer(np.arange(h) * 3, np.arange(w) * 7) % 256).astype(np.uint8)
    return [Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L"), Image.fromarray(edges, "L"),
            Image.fromarray(ramp, "L"), scene(seed, (w, h), gray=True)]


# -- the hash grids ---------------------------------------------------------------------------------

SIZES = [(240, 135), (256, 180), (256, 192), (324, 243), (500, 375), (160, 120), (133, 100), (100, 133),
         (135, 240), (90, 200), (64, 400), (400, 64), (65, 65), (33, 33), (10, 9), (3000 // 8, 4000 // 8)]


@pytest.mark.parametrize("w, h", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_plan_gives_pillows_lanczos_grids(w, h):
    """Landscape (across first), portrait (down first, Pillow >= 13) and near-square sizes."""
    for i, img in enumerate(sample_images(w, h, w * 1000 + h)):
        want = pillow_grids(img)
        a = np.asarray(img).astype(np.float64)
        plan = G.make_hash_plan(img, a, tuple(want))
        assert plan is not None
        for got, ref in zip(plan.grids(a), want):
            assert np.array_equal(got, ref), (w, h, i)


def test_random_sizes_match_pillow_or_fall_back():
    rng = random.Random(12)
    for _ in range(60):
        w, h = rng.randint(9, 700), rng.randint(9, 500)
        img = sample_images(w, h, rng.randint(0, 10 ** 6))[0]
        want = pillow_grids(img)
        a = np.asarray(img).astype(np.float64)
        plan = G.make_hash_plan(img, a, tuple(want))
        assert plan is not None, (w, h)
        other = sample_images(w, h, 7)[2]
        for got, ref in zip(plan.grids(np.asarray(other).astype(np.float64)), pillow_grids(other)):
            assert np.array_equal(got, ref), (w, h)


@pytest.mark.parametrize("w, h", [(9, 40), (40, 8), (32, 50), (8, 8), (9, 8), (32, 32), (1, 1), (2, 300),
                                  (300, 2), (5, 33), (119, 240)])
def test_odd_sizes_give_pillows_grids(w, h):
    """An axis that keeps its size (Pillow skips that pass), upscaling, mixed pass orders."""
    for img in sample_images(w, h, 3):
        a = np.asarray(img).astype(np.float64)
        for _ in range(3):  # first, second (the plan is made here) and third sighting
            for got, ref in zip(G.hash_grids(img, a), pillow_grids(img)):
                assert np.array_equal(got, ref)


def test_hash_grids_are_pillows_on_every_sighting_of_a_size(monkeypatch):
    monkeypatch.setattr(G, "_plans", {})
    monkeypatch.setattr(G, "_seen_once", set())
    imgs = sample_images(241, 137, 5) + sample_images(241, 137, 6)
    for n, img in enumerate(imgs):
        a = np.asarray(img).astype(np.float64)
        for got, ref in zip(G.hash_grids(img, a), pillow_grids(img)):
            assert np.array_equal(got, ref)
        assert (G._plans.get((241, 137)) is not None) == (n >= 1)  # made on the second image


def test_a_plan_that_disagrees_with_pillow_is_not_used(monkeypatch):
    """A Pillow that resized otherwise (other weights, another pass order) keeps its own resize."""
    img = sample_images(240, 135, 9)[0]
    want = tuple(pillow_grids(img))
    a = np.asarray(img).astype(np.float64)
    real = G.lanczos_weights
    monkeypatch.setattr(G, "lanczos_weights", lambda i, o: real(i, o) * 1.01)
    assert G.make_hash_plan(img, a, want) is None


def test_blocked_products_are_exact():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (300, 500)).astype(np.float64)
    b = rng.integers(-2 ** 20, 2 ** 21, (500, 49)).astype(np.float64)
    exact = a.astype(object) @ b.astype(object)
    assert np.array_equal(G._matmul(a, b), exact.astype(np.float64))


def test_lanczos_weights_match_pillow_on_impulses():
    """Row sums are 2**22 give or take rounding, and every weight agrees with Pillow's 32-bit
    resize of single bright pixels (which keeps 2**-30 of precision) to within one."""
    for n_in, n_out in [(240, 9), (135, 8), (240, 32), (135, 32), (20, 32)]:
        m = G.lanczos_weights(n_in, n_out)
        assert np.all(np.abs(m.sum(axis=1) - 2 ** 22) <= n_in)
        eye = np.zeros((n_in, n_in), np.int32)
        np.fill_diagonal(eye, 2 ** 30)
        row = np.asarray(Image.fromarray(eye, "I").resize((n_out, n_in), LANCZOS)).astype(np.float64)
        assert np.all(np.abs(m.T - row / 2 ** 8) <= 1.0)


# -- the features of whole files --------------------------------------------------------------------


def reference_features(path: Path) -> F.Features:
    """features_from_file as it was before the fast paths: Pillow's resizes and EXIF reader,
    numpy's mean, the float32 colour formula and the float32 Laplacian."""
    with Image.open(path) as im:
        fmt, mode, (width, height) = im.format or "", im.mode, im.size
        exif = im.getexif()
        reduced = F.reduce_decode(im)
    gray, rgb = F.to_gray_and_rgb(reduced)
    captured, make, model = F.exif_fields(exif)
    variance, is_gray = old_color_stats(rgb)
    return F.Features(format=fmt, mode=mode, width=width, height=height, dhash=F.dhash(gray),
                      ahash=F.ahash(gray), phash=F.phash(gray), brightness=round(float(np.asarray(gray).mean()), 3),
                      color_variance=round(variance, 3), is_gray=is_gray, sharpness=round(old_sharpness(gray), 3),
                      captured_at=captured, camera_make=make, camera_model=model, features_source=F.SOURCE_DRAFT)


def old_color_stats(rgb: Image.Image | None) -> tuple[float, bool]:
    if rgb is None:
        return 0.0, True
    a = np.asarray(rgb)
    h = a.shape[0]
    if h >= 10:
        a = a[h // 10: h - h // 10]
    if a.shape[0] >= 32 and a.shape[1] >= 32:
        a = a[::2, ::2]
    r, g, b = (a[..., i].astype(np.float32) for i in range(3))
    m = (r + g + b) / 3.0
    variance = float((((r - m) ** 2 + (g - m) ** 2 + (b - m) ** 2) / 3.0).mean())
    chroma = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    return variance, float((chroma > F.GRAY_CHROMA).mean()) < F.GRAY_SHARE


def old_sharpness(gray: Image.Image) -> float:
    w, h = gray.size
    if w != F.SHARPNESS_WIDTH:
        gray = gray.resize((F.SHARPNESS_WIDTH, max(1, round(h * F.SHARPNESS_WIDTH / w))), Image.Resampling.BILINEAR)
    a = np.asarray(gray, dtype=np.float32)
    if a.shape[0] < 3 or a.shape[1] < 3:
        return 0.0
    lap = a[1:-1, :-2] + a[1:-1, 2:] + a[:-2, 1:-1] + a[2:, 1:-1] - 4.0 * a[1:-1, 1:-1]
    return float(lap.var(dtype=np.float64))


FRAMES = [((1920, 1080), False), ((1920, 1080), True), ((2048, 1536), False), ((1080, 1920), False),
          ((2592, 1944), True), ((640, 480), False), ((300, 200), False), ((100, 70), True)]


def same(a: F.Features, b: F.Features) -> bool:
    """Equal, field by field, and of the same Python types (sqlite3 stores a numpy bool as a blob)."""
    return a == b and all(type(x) is type(y) for x, y in zip(vars(a).values(), vars(b).values()))


def test_features_of_files_equal_the_plain_computation(tmp_path):
    """Every size three times over (Pillow, then the check that makes a plan, then the plan)."""
    for k, ((w, h), gray) in enumerate(FRAMES):
        for i in range(3):
            path = save_jpeg(scene(100 * k + i, (w, h), gray=gray), tmp_path / f"f{k}_{i}.jpg",
                             taken=f"2021:04:11 20:43:0{i}", make="RECONYX\x00 ", model=" HC600\x00")
            assert same(F.features_from_file(path), reference_features(path)), (w, h, i)


def test_features_of_the_shared_samples_equal_the_plain_computation(shared_samples):
    paths = sorted(p for p in shared_samples.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    assert paths
    for path in paths + paths[:3]:
        assert same(F.features_from_file(path), reference_features(path)), path


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "CMYK", "P"])
def test_color_stats_and_sharpness_equal_the_float32_formulas(mode):
    rng = np.random.default_rng(len(mode))
    for w, h in [(240, 135), (31, 40), (5, 9), (160, 90), (3, 2)]:
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").convert(mode)
        gray, rgb = F.to_gray_and_rgb(img)
        got, want = F.color_stats(rgb), old_color_stats(rgb)
        assert got == want and [type(x) for x in got] == [float, bool]
        assert F.sharpness(gray) == old_sharpness(gray)


# -- EXIF -------------------------------------------------------------------------------------------


def exif_block(ifd0: dict[int, object], sub: dict[int, object]) -> bytes:
    exif = Image.Exif()
    for k, v in ifd0.items():
        exif[k] = v
    for k, v in sub.items():
        exif.get_ifd(EXIF_IFD)[k] = v
    return exif.tobytes()


def pillow_fields(block: bytes) -> tuple[str | None, str | None, str | None]:
    exif = Image.Exif()
    exif.load(block)
    return F.exif_fields(exif)


def ifd(order: str, entries: list[tuple[int, int, int, bytes]], base: int, nxt: int = 0) -> bytes:
    """An IFD at offset `base` whose values longer than 4 bytes follow it."""
    head = struct.pack(order + "H", len(entries))
    tail = b""
    data_at = base + 2 + 12 * len(entries) + 4
    for tag, kind, count, value in entries:
        if len(value) > 4:
            head += struct.pack(order + "HHL", tag, kind, count) + struct.pack(order + "L", data_at + len(tail))
            tail += value
        else:
            head += struct.pack(order + "HHL", tag, kind, count) + value.ljust(4, b"\0")
    return head + struct.pack(order + "L", nxt) + tail


def tiff(order: str, ifd0: list[tuple[int, int, int, bytes]], sub: list[tuple[int, int, int, bytes]] | None) -> bytes:
    magic = b"II*\0" if order == "<" else b"MM\0*"
    first = 8
    if sub is None:
        return magic + struct.pack(order + "L", first) + ifd(order, ifd0, first)
    size0 = len(ifd(order, [*ifd0, (EXIF_IFD, 4, 1, b"\0" * 4)], first))
    pointer = (EXIF_IFD, 4, 1, struct.pack(order + "L", first + size0))
    return magic + struct.pack(order + "L", first) + ifd(order, [*ifd0, pointer], first) + ifd(order, sub, first + size0)


def ascii(text: bytes) -> tuple[int, int, bytes]:
    return 2, len(text), text


HAND_MADE = {
    "plain-le": tiff("<", [(MAKE, *ascii(b"RECONYX\0")), (MODEL, *ascii(b"HC600 HYPERFIRE\0"))],
                     [(DATETIME_ORIGINAL, *ascii(b"2021:04:11 20:43:09\0"))]),
    "plain-be": tiff(">", [(MAKE, *ascii(b"Bushnell\0")), (306, *ascii(b"2020:01:02 03:04:05\0"))], None),
    "short-inline": tiff("<", [(MAKE, *ascii(b"RC\0"))], []),
    "undefined-make": tiff("<", [(MAKE, 7, 8, b"Browning"), (MODEL, *ascii(b"BTC\0\0\0  "))], []),
    "byte-make": tiff("<", [(MAKE, 1, 4, b"abcd")], []),
    "short-model": tiff("<", [(MODEL, 3, 2, b"\x01\x00\x02\x00")], []),
    "latin1": tiff("<", [(MAKE, *ascii("Caméra\0".encode("latin-1")))], []),
    "duplicate": tiff("<", [(MAKE, *ascii(b"FIRST\0")), (MAKE, *ascii(b"SECOND\0"))], []),
    "empty-value": tiff("<", [(MAKE, 2, 0, b"")], []),
    "unknown-type": tiff("<", [(MAKE, *ascii(b"A\0")), (500, 99, 1, b"\0" * 4)], []),
    "pointer-short": tiff("<", [(MAKE, *ascii(b"A\0")), (EXIF_IFD, 3, 1, b"\x08\x00")], None),
    "pointer-outside": tiff("<", [(EXIF_IFD, 4, 1, struct.pack("<L", 10 ** 6))], None),
    "no-sub-ifd-dates": tiff("<", [(306, *ascii(b"2019:12:31 23:59:59\0"))], [(36868, *ascii(b"bad\0"))]),
    "digitized-only": tiff("<", [], [(36868, *ascii(b"2018:06:01 12:00:00\0"))]),
    "bad-date-then-good": tiff("<", [(306, *ascii(b"2017:01:01 00:00:00\0"))],
                               [(DATETIME_ORIGINAL, *ascii(b"2021:02:30 10:00:00\0"))]),
    "huge-count": tiff("<", [(MAKE, 2, 10 ** 6, struct.pack("<L", 20))], []),
}


@pytest.mark.parametrize("name", list(HAND_MADE))
def test_exif_reader_agrees_with_pillow_or_defers(name):
    block = HAND_MADE[name]
    fast = F.exif_block_fields(block)
    assert fast is None or fast == pillow_fields(block)
    for prefixed in (b"Exif\0\0" + block, b"Exif\0\0Exif\0\0" + block):
        assert F.exif_block_fields(prefixed) in (None, fast)


def test_exif_reader_reads_the_usual_blocks_itself():
    for name in ("plain-le", "plain-be", "short-inline", "undefined-make", "latin1", "no-sub-ifd-dates",
                 "digitized-only", "bad-date-then-good"):
        assert F.exif_block_fields(HAND_MADE[name]) is not None, name
    for name in ("duplicate", "byte-make", "short-model", "empty-value", "unknown-type", "pointer-short",
                 "pointer-outside", "huge-count"):
        assert F.exif_block_fields(HAND_MADE[name]) is None, name


def test_exif_reader_on_broken_blocks_defers_to_pillow():
    block = HAND_MADE["plain-le"]
    for broken in (b"", b"II", b"XX*\0" + block[4:], b"II+\0" + block[4:], block[:12], block[:40],
                   b"MM\x2a\x00" + block[4:]):
        assert F.exif_block_fields(broken) is None
    rng = random.Random(1)
    for _ in range(300):  # random damage never makes it read something Pillow would not
        b = bytearray(block)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        fast = F.exif_block_fields(bytes(b))
        if fast is not None:
            assert fast == pillow_fields(bytes(b))


def test_exif_of_pillow_written_blocks():
    cases = [({MAKE: "RECONYX\x00\x00  ", MODEL: "  HYPERFIRE 2 COVERT\x00"}, {DATETIME_ORIGINAL: "2021:04:11 20:43:09"}),
             ({306: "2030:01:01 00:00:00"}, {DATETIME_ORIGINAL: "2021:04:11 20:43:09\x00 "}),
             ({MAKE: "   ", MODEL: "\x00\x00"}, {}), ({}, {DATETIME_ORIGINAL: "0000:00:00 00:00:00"}),
             ({MAKE: "x" * 300}, {36868: "2016:03:24 10:30:12", 37510: b"UNICODE\0" + b"\0a" * 40})]
    for ifd0, sub in cases:
        block = exif_block(ifd0, sub)
        assert F.exif_block_fields(block) == pillow_fields(block)


def test_jpeg_exif_fields_equal_pillows(tmp_path, shared_samples):
    paths = sorted(p for p in shared_samples.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    paths.append(save_jpeg(scene(1), tmp_path / "none.jpg"))
    paths.append(save_jpeg(scene(2), tmp_path / "some.jpg", taken="2024:05:01 10:00:00", make="TESTCAM ", model="T1"))
    for path in paths:
        with Image.open(path) as im:
            fast = F.jpeg_exif_fields(im)
            assert fast is not None, path
            assert fast == F.exif_fields(im.getexif()), path


def test_png_exif_is_left_to_pillow(tmp_path):
    exif = exif_block({MAKE: "PNGCAM"}, {})
    path = tmp_path / "x.png"
    scene(3).save(path, exif=exif)
    assert F.features_from_file(path).camera_make == "PNGCAM"


# -- capture times --------------------------------------------------------------------------------


def test_parse_exif_datetime_equals_strptime():
    """The regular expression's shortcut gives what the strptime formats give."""
    rng = random.Random(3)
    texts = ["2021:04:11 20:43:09", "2021:02:29 10:00:00", "2024:02:29 10:00:00", "2021:04:31 00:00:00",
             "2021:13:01 00:00:00", "2021:00:10 00:00:00", "2021:04:11 24:00:00", "2021:04:11 23:60:00",
             "2021:04:11 23:59:60", "2021:04:11 23:59:61", "0000:01:01 00:00:00", "0001:01:01 00:00:00",
             "0999:12:31 23:59:59", "2021:04:11 20:43:09.123", "2021:04:11 20:43:0912", "2021:04:11 20:43",
             "2021:4:11 20:43:09", "2021-04-11 20:43:09", "2021/04/11 20:43:09", "2021:04:11  20:43:09",
             "２０２１:04:11 20:43:09", "2021:04:11T20:43:09"]
    for _ in range(3000):
        texts.append(f"{rng.randint(0, 9999):04d}:{rng.randint(0, 14):02d}:{rng.randint(0, 33):02d} "
                     f"{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}:{rng.randint(0, 62):02d}")
    for text in texts:
        assert F.parse_exif_datetime(text) == X._strptime_exif(text), text


def test_reading_a_jpeg_from_memory_gives_the_same_features(tmp_path):
    path = save_jpeg(scene(5, (1920, 1080)), tmp_path / "a.jpg", taken="2021:04:11 20:43:09")
    assert F.features_from_file(io.BytesIO(path.read_bytes())) == F.features_from_file(path)
