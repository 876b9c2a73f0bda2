#!/usr/bin/env python3
"""Make a deterministic camera-trap archive for the benchmarks (numpy + Pillow only).

Usage::

    python benchmarks/make_archive.py OUT N [--workers K] [--seed S]
    python benchmarks/make_archive.py OUT N --copies [--per-folder 100] [--link hard|copy]

Realistic mode (the default) writes N 1920x1080 JPEGs of 300-900 KB as
``siteX/camNN/IMG_NNNN.JPG``:

* every trigger is a burst of 3-5 near-identical frames 1 s apart (the animal moves a few
  pixels, the sensor noise is fresh), triggers minutes to hours apart;
* triggers between 20:00 and 06:00 are IR night frames (about 1/3): RECONYX and Browning
  cameras write true grayscale ``L`` JPEGs, the others RGB JPEGs that are only nearly gray;
* EXIF Make, Model, DateTime and DateTimeOriginal; each file's mtime is its capture time;
* sensor noise and grass texture at full resolution, quality 88-92, so sizes are those of
  real 2 MP trail-camera files.

Encoding thousands of 1080p frames from scratch is slow, so each worker draws a small pool of
base scenes (3 per camera, at most 60) once, and every frame is a cheap variation of one of
them: an exposure curve, an animal, and a shifted crop of a pre-drawn noise field. Frames are
made in parallel; the output depends only on N and the seed, not on the number of workers.

``--copies`` mode is for the stat-bound re-scan benchmark: N tiny (2-5 KB) JPEGs, hard links
(or copies) of a pool of 40 distinct files, ``--per-folder`` to a folder.

A manifest ``.make_archive.json`` (hidden, not an image) in OUT records what was made; running
again with the same arguments returns at once.
"""
from __future__ import annotations

import argparse
import calendar
import json
import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw

WIDTH, HEIGHT = 1920, 1080
MAX_CAMERAS = 20  # 3 base scenes each: at most 60 distinct base frames
CAMERAS_PER_SITE = 4
MARGIN = 96  # noise fields are this much larger than a frame, crops are shifted inside them
MANIFEST = ".make_archive.json"
EXIF_IFD, TAG_MAKE, TAG_MODEL, TAG_DATETIME, TAG_DATETIME_ORIGINAL = 0x8769, 271, 272, 306, 36867

# make, model, night mode ("L": true grayscale JPEG, "RGB": nearly gray RGB), JPEG quality
MODELS = [
    ("RECONYX   ", "HC600 HYPERFIRE", "L", 90),
    ("Bushnell", "119836C", "RGB", 92),
    ("Browning", "BTC-8E", "L", 88),
    ("SPYPOINT", "FORCE-20", "RGB", 90),
    ("Stealth Cam", "G42NG", "RGB", 88),
]
SPECIES = {"deer": (0.20, 0.11, (120, 86, 58)), "fox": (0.10, 0.06, (170, 92, 40)),
           "boar": (0.16, 0.10, (62, 52, 46))}  # body width, height (fraction of frame width), colour


@dataclass(frozen=True)
class Frame:
    """One file to write: where, which base scene, and how this frame differs from it."""

    path: str
    camera: int
    night: bool
    base: int  # 0 or 1: which day scene of the camera (a night frame uses its own base)
    taken: str  # 'YYYY:MM:DD HH:MM:SS'
    gain: float
    species: str | None
    ax: float  # animal centre x and foot line y, fractions of the frame
    ay: float
    facing: int
    seed: int


# -- the plan: cameras, triggers, frames (cheap, made in the parent) --------------------------

def plan(n: int, seed: int = 0) -> list[Frame]:
    """Every frame of an N-file archive, in file order; depends only on N and the seed."""
    rng = np.random.default_rng(seed)
    cameras = min(MAX_CAMERAS, max(2, n // 50))
    share = [n // cameras + (1 if c < n % cameras else 0) for c in range(cameras)]
    frames: list[Frame] = []
    for cam, count in enumerate(share):
        site = "site" + chr(ord("A") + cam // CAMERAS_PER_SITE)
        folder = f"{site}/cam{cam % CAMERAS_PER_SITE + 1:02d}"
        number = int(rng.integers(1, 400))
        t = datetime(2024, 5, 1) + timedelta(minutes=float(rng.uniform(0, 600)))
        made = 0
        while made < count:
            burst = min(int(rng.integers(3, 6)), count - made)
            night = t.hour >= 20 or t.hour < 6
            species = None if rng.random() < 0.3 else str(rng.choice(list(SPECIES)))
            ax, ay, facing = rng.uniform(0.15, 0.85), rng.uniform(0.70, 0.88), int(rng.choice([-1, 1]))
            gain, base = float(rng.uniform(0.8, 1.2)), int(rng.integers(0, 2))
            for i in range(burst):
                taken = (t + timedelta(seconds=i)).strftime("%Y:%m:%d %H:%M:%S")
                frames.append(Frame(f"{folder}/IMG_{number:04d}.JPG", cam, night, base, taken, gain, species,
                                    ax + i * facing * 0.006, ay, facing, seed * 1_000_003 + len(frames)))
                number += 1
            made += burst
            t += timedelta(minutes=float(rng.exponential(100)) + 2)
    return frames


# -- pixels (in the workers) ---------------------------------------------------------------------

def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float, aspect: float = 1.0) -> np.ndarray:
    """Roughly N(0, 1) noise with features of `cell` pixels, by bilinear upsampling of a grid."""
    gh, gw = max(2, int(h / (cell * aspect)) + 2), max(2, int(w / cell) + 2)
    grid = Image.fromarray(rng.standard_normal((gh, gw)).astype(np.float32), "F")
    a = np.asarray(grid.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
    return (a - a.mean()) / (a.std() + 1e-6)


@lru_cache(maxsize=1)
def texture_field(seed: int) -> np.ndarray:
    """Full-resolution grass/leaf texture shared by all scenes (each takes its own crop)."""
    rng = np.random.default_rng(seed + 7)
    h, w = HEIGHT + MARGIN, WIDTH + MARGIN
    return smooth_noise(rng, h, w, 1.6, aspect=2.5) * 0.7 + smooth_noise(rng, h, w, 5) * 0.5


@lru_cache(maxsize=2)
def noise_image(seed: int, mode: str, sigma: float) -> Image.Image:
    """Sensor noise as an image centred on 128, larger than a frame: a frame adds a crop of it."""
    rng = np.random.default_rng(seed + (11 if mode == "L" else 13))
    shape = (HEIGHT + MARGIN, WIDTH + MARGIN) + (() if mode == "L" else (3,))
    a = rng.normal(128.0, sigma, shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), mode)


@lru_cache(maxsize=6)
def base_scene(camera: int, which: int, seed: int) -> Image.Image:
    """A camera's static view: which = 0 or 1 for two day scenes, 2 for its IR night scene."""
    rng = np.random.default_rng([seed, camera, which % 2])
    h, w = HEIGHT, WIDTH
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    horizon = rng.uniform(0.30, 0.45)
    sky = np.array([rng.uniform(90, 130), rng.uniform(130, 160), rng.uniform(185, 225)], np.float32)
    ground = np.array([rng.uniform(80, 120), rng.uniform(85, 120), rng.uniform(45, 70)], np.float32)
    alt = np.array([rng.uniform(55, 80), rng.uniform(85, 115), rng.uniform(35, 55)], np.float32)
    lo = (h // 8, w // 8)
    patch = np.clip(smooth_noise(rng, *lo, 20) * 0.5 + 0.5, 0, 1)
    xs = np.linspace(0, 1, lo[1], dtype=np.float32)[None, :]
    treetop = horizon - rng.uniform(0.08, 0.16) + 0.03 * np.sin(xs * rng.uniform(10, 30)) \
        + 0.02 * smooth_noise(rng, 1, lo[1], 6)
    ly = np.linspace(0, 1, lo[0], dtype=np.float32)[:, None]
    region = np.where(ly < treetop, 0, np.where(ly < horizon, 1, 2)).astype(np.float32)  # sky, trees, ground
    big = lambda a: np.asarray(Image.fromarray(a.astype(np.float32), "F").resize((w, h), Image.Resampling.BILINEAR))
    region, patch = big(region), big(patch)[..., None]
    depth = np.clip((yy - horizon) / (1 - horizon), 0, 1)[..., None]
    land = ground + (alt - ground) * patch
    land = land * (0.8 + 0.35 * depth)
    trees = np.array([rng.uniform(30, 50), rng.uniform(55, 75), rng.uniform(30, 45)], np.float32)
    r = region[..., None]
    rgb = np.where(r < 0.5, sky * (0.85 + 0.15 * yy[..., None] / max(horizon, 0.1)), np.where(r < 1.5, trees, land))
    tex = texture_field(seed)
    oy, ox = int(rng.integers(0, MARGIN)), int(rng.integers(0, MARGIN))
    amp = np.where(r < 0.5, 3.0, 16.0 + 10.0 * depth)  # sky is smooth, vegetation is busy
    rgb = rgb + tex[oy:oy + h, ox:ox + w, None] * amp
    if which == 2:  # IR night: gray, flash falloff from the centre, darker far field
        gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
        vignette = np.clip(1.15 - 0.55 * (xx ** 2 + ((yy - 0.6) * 2) ** 2), 0.2, 1)
        return Image.fromarray(np.clip(gray * vignette * 0.9 + 10, 0, 255).astype(np.uint8), "L")
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def render(frame: Frame, seed: int) -> Image.Image:
    """A base scene, this trigger's exposure, the animal, and fresh sensor noise."""
    rng = np.random.default_rng(frame.seed)
    _, _, night_mode, _ = MODELS[frame.camera % len(MODELS)]
    img = base_scene(frame.camera, 2 if frame.night else frame.base, seed)
    lut = [min(255, int(v * frame.gain + 0.5)) for v in range(256)]
    img = img.point(lut * len(img.getbands()))
    if frame.species:
        bw, bh, colour = SPECIES[frame.species]
        cx, cy, bw, bh = frame.ax * WIDTH, frame.ay * HEIGHT, bw * WIDTH, bh * WIDTH
        fill = (int(sum(colour) / 3 + 70),) * 3 if frame.night else colour
        draw = ImageDraw.Draw(img)
        fill = fill[0] if img.mode == "L" else fill
        draw.ellipse((cx - bw / 2, cy - bh * 1.6, cx + bw / 2, cy - bh * 0.6), fill=fill)
        hx = cx + frame.facing * bw * 0.55
        draw.ellipse((hx - bh * 0.35, cy - bh * 2.0, hx + bh * 0.35, cy - bh * 1.3), fill=fill)
        for lx in (-0.35, -0.2, 0.2, 0.35):
            draw.rectangle((cx + lx * bw - 4, cy - bh * 0.8, cx + lx * bw + 4, cy), fill=fill)
    ox, oy = int(rng.integers(0, MARGIN)), int(rng.integers(0, MARGIN))
    box = (ox, oy, ox + WIDTH, oy + HEIGHT)
    if frame.night:
        img = ImageChops.add(img, noise_image(seed, "L", 9.0).crop(box), 1.0, -128)
        if night_mode == "RGB":  # an IR frame written as RGB: the channels differ by a level or two
            img = ImageChops.add(img.convert("RGB"), noise_image(seed, "RGB", 1.2).crop(box), 1.0, -128)
        return img
    return ImageChops.add(img, noise_image(seed, "RGB", 6.0).crop(box), 1.0, -128)


def exif_bytes(make: str, model: str, taken: str) -> bytes:
    exif = Image.Exif()
    exif[TAG_MAKE], exif[TAG_MODEL], exif[TAG_DATETIME] = make, model, taken
    exif.get_ifd(EXIF_IFD)[TAG_DATETIME_ORIGINAL] = taken
    return exif.tobytes()


def write_frame(job: tuple[str, Frame, int]) -> int:
    """Worker: render and save one frame; returns its size in bytes."""
    out, frame, seed = job
    make, model, _, quality = MODELS[frame.camera % len(MODELS)]
    path = os.path.join(out, frame.path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    render(frame, seed).save(path, "JPEG", quality=quality, exif=exif_bytes(make, model, frame.taken))
    stamp = calendar.timegm(time.strptime(frame.taken, "%Y:%m:%d %H:%M:%S"))
    os.utime(path, (stamp, stamp))
    return os.path.getsize(path)


# -- the two modes -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ArchiveInfo:
    root: str
    mode: str  # "realistic" or "copies"
    files: int
    bytes: int
    min_bytes: int
    max_bytes: int
    folders: int
    night: int  # night frames (realistic mode)
    seed: int
    seconds: float

    @property
    def mean_bytes(self) -> float:
        return self.bytes / self.files if self.files else 0.0


def make_archive(out: str | os.PathLike[str], n: int, *, workers: int | None = None, seed: int = 0,
                 force: bool = False) -> ArchiveInfo:
    """N realistic 1080p frames under OUT (reused if OUT already holds exactly this archive)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    out = os.fspath(out)
    if not force and (known := _read_manifest(out, "realistic", n, seed)):
        return known
    _fresh(out)
    started = time.monotonic()
    frames = plan(n, seed)
    jobs = [(out, f, seed) for f in frames]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers or os.cpu_count() or 1) as pool:
        sizes = pool.map(write_frame, jobs, chunksize=8)  # frames of a camera are adjacent: bases stay cached
    info = ArchiveInfo(out, "realistic", n, sum(sizes), min(sizes), max(sizes),
                       len({os.path.dirname(f.path) for f in frames}), sum(f.night for f in frames), seed,
                       round(time.monotonic() - started, 1))
    _write_manifest(info)
    return info


def tiny_jpeg(i: int, seed: int) -> tuple[Image.Image, bytes]:
    """A small (about 160x120, 2-5 KB) frame for the stat-bound benchmark."""
    rng = np.random.default_rng([seed, 99, i])
    night = i % 3 == 2
    h, w = 120, 160
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    top, bottom = rng.uniform(60, 200, 3), rng.uniform(40, 140, 3)
    a = top + (bottom - top) * yy + smooth_noise(rng, h, w, 6)[..., None] * 14 + rng.normal(0, 2.5, (h, w, 3))
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    if night:
        img = img.convert("L")
    make, model, _, _ = MODELS[i % len(MODELS)]
    taken = (datetime(2024, 5, 1) + timedelta(minutes=37 * i)).strftime("%Y:%m:%d %H:%M:%S")
    return img, exif_bytes(make, model, taken)


def make_copies(out: str | os.PathLike[str], n: int, *, per_folder: int = 100, link: str = "hard",
                pool: int = 40, seed: int = 0, force: bool = False) -> ArchiveInfo:
    """N tiny JPEGs under OUT as siteNN/camNNN/IMG_NNNN.JPG, linked or copied from a small pool."""
    if n < 1 or per_folder < 1:
        raise ValueError("n and per_folder must be at least 1")
    if link not in ("hard", "copy"):
        raise ValueError("link must be 'hard' or 'copy'")
    out = os.fspath(out)
    extra = {"per_folder": per_folder, "link": link}
    if not force and (known := _read_manifest(out, "copies", n, seed, extra)):
        return known
    _fresh(out)
    started = time.monotonic()
    sources = []
    os.makedirs(os.path.join(out, ".pool"))  # hidden: the scan does not walk it
    for i in range(min(pool, n)):
        img, exif = tiny_jpeg(i, seed)
        src = os.path.join(out, ".pool", f"P{i:03d}.JPG")
        img.save(src, "JPEG", quality=80, exif=exif)
        sources.append(src)
    sizes = [os.path.getsize(s) for s in sources]
    total, folders = 0, 0
    for i in range(n):
        f, k = divmod(i, per_folder)
        folder = os.path.join(out, f"site{f // 100 + 1:02d}", f"cam{f % 100 + 1:03d}")
        if k == 0:
            os.makedirs(folder)
            folders += 1
        src, dst = sources[i % len(sources)], os.path.join(folder, f"IMG_{k + 1:04d}.JPG")
        if link == "hard":
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)
        total += sizes[i % len(sources)]
    info = ArchiveInfo(out, "copies", n, total, min(sizes), max(sizes), folders, 0, seed,
                       round(time.monotonic() - started, 1))
    _write_manifest(info, extra)
    return info


def _fresh(out: str) -> None:
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)


def _read_manifest(out: str, mode: str, n: int, seed: int, extra: dict[str, object] | None = None) -> ArchiveInfo | None:
    try:
        with open(os.path.join(out, MANIFEST)) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    if (data.get("mode"), data.get("files"), data.get("seed")) != (mode, n, seed):
        return None
    if any(data.get(k) != v for k, v in (extra or {}).items()):
        return None
    return ArchiveInfo(**{k: data[k] for k in ArchiveInfo.__dataclass_fields__})


def _write_manifest(info: ArchiveInfo, extra: dict[str, object] | None = None) -> None:
    with open(os.path.join(info.root, MANIFEST), "w") as fh:
        json.dump({**asdict(info), **(extra or {})}, fh, indent=1)


def describe(info: ArchiveInfo) -> str:
    kib = 1024
    total = f"{info.bytes / kib ** 3:.2f} GiB" if info.bytes >= kib ** 3 else f"{info.bytes / kib ** 2:.1f} MiB"
    text = (f"{info.files} files in {info.folders} folders, {total}, "
            f"{info.min_bytes / kib:.1f}-{info.max_bytes / kib:.1f} KiB (mean {info.mean_bytes / kib:.1f} KiB)")
    if info.mode == "realistic":
        text += f", {info.night} night frames ({info.night / info.files:.0%})"
    return text + f"; made in {info.seconds} s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="output folder (replaced unless it already holds this archive)")
    p.add_argument("n", type=int, help="number of files")
    p.add_argument("--workers", type=int, default=None, help="processes [default: cores]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--copies", action="store_true", help="tiny linked/copied files for the stat benchmark")
    p.add_argument("--per-folder", type=int, default=100, help="files per folder in --copies mode")
    p.add_argument("--link", choices=("hard", "copy"), default="hard", help="how --copies makes files")
    p.add_argument("--force", action="store_true", help="remake even if OUT holds this archive")
    a = p.parse_args(argv)
    if a.copies:
        info = make_copies(a.out, a.n, per_folder=a.per_folder, link=a.link, seed=a.seed, force=a.force)
    else:
        info = make_archive(a.out, a.n, workers=a.workers, seed=a.seed, force=a.force)
    print(f"{info.root}: {describe(info)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
