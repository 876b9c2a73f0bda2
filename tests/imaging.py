"""Images made by the tests themselves: scenes, bursts, night frames, EXIF."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

EXIF_IFD, DATETIME_ORIGINAL, MAKE, MODEL = 0x8769, 36867, 271, 272


def scene(seed: int, size: tuple[int, int] = (320, 240), gray: bool = False, shift: int = 0) -> Image.Image:
    """A random but smooth scene: gradient sky, textured ground, blobs; `shift` moves the blobs."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(40, 200, 3)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        img[..., c] = base[c] * (0.6 + 0.4 * y / h) + 25 * np.sin(x / rng.uniform(8, 40) + c)
    for _ in range(4):
        cx, cy = rng.uniform(0, w) + shift, rng.uniform(0, h)
        r = rng.uniform(h / 10, h / 4)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r ** 2
        img[mask] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 4, img.shape)
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    return out.convert("L") if gray else out


def save_jpeg(img: Image.Image, path: Path, *, taken: str | None = None, make: str | None = None,
              model: str | None = None, quality: int = 85, mtime: float | None = None) -> Path:
    """Write a JPEG with optional EXIF DateTimeOriginal ('YYYY:MM:DD HH:MM:SS'), Make, Model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    if make is not None:
        exif[MAKE] = make
    if model is not None:
        exif[MODEL] = model
    if taken is not None:
        exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = taken
    img.save(path, "JPEG", quality=quality, exif=exif.tobytes())
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def make_archive(root: Path, *, cameras: int = 2, per_camera: int = 6, size: tuple[int, int] = (320, 240)) -> list[Path]:
    """site/camera/IMG_NNNN.JPG files, half of each camera's frames night (gray) frames."""
    paths = []
    for cam in range(cameras):
        for i in range(per_camera):
            night = i >= per_camera // 2
            img = scene(cam * 1000 + i, size, gray=night)
            p = root / f"site{cam % 2 + 1}" / f"cam{cam + 1:02d}" / f"IMG_{i + 1:04d}.JPG"
            paths.append(save_jpeg(img, p, taken=f"2024:05:0{cam + 1} {10 + i:02d}:00:00", make="TESTCAM ",
                                   model="T1"))
    return paths


def copies_archive(root: Path, n_files: int, per_folder: int, *, bases: int = 8,
                   size: tuple[int, int] = (640, 480)) -> Path:
    """`n_files` copies of a few distinct frames (with EXIF time) in camNN/IMG_NNNN.JPG folders of
    `per_folder` files: an archive that takes a scan seconds without minutes of image making."""
    import shutil

    made = [save_jpeg(scene(i, size), root / f"base{i}.JPG", taken=f"2024:05:01 {10 + i % 10:02d}:00:00")
            for i in range(bases)]
    for i in range(n_files):
        folder = root / f"cam{i // per_folder + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(made[i % len(made)], folder / f"IMG_{i:04d}.JPG")
    for b in made:
        b.unlink()
    return root
