#!/usr/bin/env python3
"""Time `indexer report` on 10,000 images: cold (every thumbnail made) and warm (all cached).

Usage::

    python benchmarks/bench_report.py [--images 10000] [--size 1024x768] [--workers 2]
    python benchmarks/bench_report.py --archive /tmp/indexer-bench/archive-2000   # an existing archive

Without --archive it writes a deterministic archive of small-ish JPEGs (default 1024x768,
quality 85, about 100-200 KB: 40 base scenes, each frame a shifted, exposure-varied crop with
shifted noise; 100 frames per folder, EXIF capture times) to WORKDIR/report-N-WxH, scans it once
into WORKDIR/report-N-WxH.db, saves a selection (--fraction 0.1 --per folder), then runs
`python -m indexer report --selection bench --workers W --quiet` as a subprocess: cold into an
empty folder (repeated --rounds times, the folder emptied each time), then warm into the same
folder (every thumbnail cached). Wall times include interpreter start and imports; CPU time (the command and its workers,
from getrusage) says what to expect on an idle machine when other load slows the wall time down.
The goal of issue 5: 10,000 images reported in well under a minute on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from pathlib import Path

DEFAULT_WORKDIR = "/tmp/indexer-bench"
PER_FOLDER = 100
BASES = 40
MANIFEST = ".bench_report.json"


# -- the archive -------------------------------------------------------------------------------------

def _base(seed: int, w: int, h: int):  # type: ignore[no-untyped-def]
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h + 32, 0:w + 32].astype(np.float32)
    img = np.empty((h + 32, w + 32, 3), np.float32)
    tint = rng.uniform(50, 190, 3)
    for c in range(3):
        img[..., c] = tint[c] * (0.55 + 0.45 * y / h) + 30 * np.sin(x / rng.uniform(9, 45) + c) \
            + 20 * np.cos(y / rng.uniform(7, 30))
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(h / 12, h / 4)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r ** 2] = rng.uniform(0, 255, 3)
    if seed % 3 == 2:  # a third of the bases are IR night frames: gray
        img[:] = img.mean(axis=2, keepdims=True)
    return img


def _write_chunk(args: tuple[str, int, int, list[int]]) -> int:
    import numpy as np
    from PIL import Image

    root, w, h, numbers = args
    bases: dict[int, object] = {}
    rng = np.random.default_rng(numbers[0])
    noise = rng.normal(0, 5, (h + 64, w + 64, 3)).astype(np.float32)  # fresh crops of it per frame
    for n in numbers:
        b = n // 250 % BASES  # a chunk of 200 frames touches at most two base scenes
        if b not in bases:
            bases[b] = _base(b, w, h)
        r = np.random.default_rng(n)
        dx, dy, nx, ny = (int(v) for v in r.integers(0, 32, 4))
        frame = bases[b][dy:dy + h, dx:dx + w] * r.uniform(0.8, 1.2) + noise[ny:ny + h, nx:nx + w]  # type: ignore[index]
        folder = Path(root) / f"site{n // 2000 + 1:02d}" / f"cam{n // PER_FOLDER % 20 + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        im = Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8), "RGB")
        exif = Image.Exif()
        exif.get_ifd(0x8769)[36867] = f"2024:{n // 3000 % 12 + 1:02d}:{n // 100 % 28 + 1:02d} " \
                                      f"{n % 24:02d}:{n % 60:02d}:00"
        im.save(folder / f"IMG_{n % PER_FOLDER + 1:04d}.JPG", "JPEG", quality=85, exif=exif.tobytes())
    return len(numbers)


def make_archive(root: Path, n: int, size: tuple[int, int], workers: int) -> float:
    """Write the archive unless the manifest says it is there; seconds spent."""
    manifest = root / MANIFEST
    want = {"images": n, "size": list(size)}
    if manifest.exists() and json.loads(manifest.read_text()) == want:
        return 0.0
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    started = time.perf_counter()
    chunks = [(str(root), size[0], size[1], list(range(i, min(i + 200, n)))) for i in range(0, n, 200)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
        assert sum(ex.map(_write_chunk, chunks)) == n
    manifest.write_text(json.dumps(want))
    return time.perf_counter() - started


# -- running indexer ---------------------------------------------------------------------------------

def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for children and their workers
    return r.ru_utime + r.ru_stime


def indexer(*args: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its worker processes)."""
    cpu = cpu_children()
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "indexer", *args], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"indexer {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return wall, cpu_children() - cpu


def indexed(db: Path) -> int:
    if not db.exists():
        return 0
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute("SELECT COUNT(*) FROM images WHERE state = 'indexed'").fetchone()[0]


def folder_stats(folder: Path) -> tuple[int, int]:
    files = [p for p in (folder / "thumbs").iterdir() if p.suffix == ".jpg"]
    return len(files), sum(p.stat().st_size for p in files)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=10_000, help="images in the generated archive [10000]")
    p.add_argument("--size", default="1024x768", help="their size [1024x768]")
    p.add_argument("--archive", type=Path, default=None, help="use this existing archive instead")
    p.add_argument("--workers", type=int, default=2, help="scan and thumbnail processes [2]")
    p.add_argument("--rounds", type=int, default=2, help="cold runs [2]")
    p.add_argument("--workdir", type=Path, default=Path(DEFAULT_WORKDIR), help=f"[{DEFAULT_WORKDIR}]")
    a = p.parse_args(argv)

    a.workdir.mkdir(parents=True, exist_ok=True)
    print(f"cores: {os.cpu_count()}, workers: {a.workers}, load average before: {load()}")
    if a.archive is None:
        w, h = (int(v) for v in a.size.lower().split("x"))
        name = f"report-{a.images}-{w}x{h}"
        root = a.workdir / name
        made = make_archive(root, a.images, (w, h), a.workers)
        print(f"archive: {root} ({a.images} JPEGs {w}x{h})" + (f", written in {made:.1f} s" if made else ", reused"))
    else:
        root = a.archive.resolve()
        name = f"report-{root.name}"
        print(f"archive: {root}")
    db = a.workdir / f"{name}.db"
    files = sum(1 for q in root.rglob("*") if q.suffix.lower() in (".jpg", ".jpeg"))
    if indexed(db) < files:
        wall, _ = indexer("scan", str(root), "--db", str(db), "--workers", str(a.workers), "--quiet")
        print(f"scan: {wall:.1f} s")
    n = indexed(db)
    if subprocess.run([sys.executable, "-m", "indexer", "selections", "--db", str(db), "--delete", "bench"],
                      capture_output=True).returncode not in (0, 1):
        raise RuntimeError("indexer selections --delete bench failed")
    indexer("select", "--db", str(db), "--fraction", "0.1", "--per", "folder", "--save", "bench", "--quiet")
    out = a.workdir / f"{name}-out"
    report = ["report", "--db", str(db), "--out", str(out), "--selection", "bench", "--workers", str(a.workers),
              "--quiet"]
    cold, cpus = [], []
    for _ in range(a.rounds):
        shutil.rmtree(out, ignore_errors=True)
        wall, cpu = indexer(*report)
        cold.append(wall)
        cpus.append(cpu)
    thumbs, size = folder_stats(out)
    warm, _ = indexer(*report)
    again, _ = indexer(*report)
    page = (out / "index.html").stat().st_size
    print(f"images in the index: {n}; thumbnails: {thumbs} ({size / thumbs / 1024:.1f} KiB each); "
          f"index.html {page / 1024 / 1024:.1f} MiB")
    print(f"report cold (every thumbnail made): {', '.join(f'{c:.1f}' for c in cold)} s "
          f"-> best {min(cold):.1f} s, {n / min(cold):.0f} images/s")
    cpu = min(cpus)
    print(f"  CPU time of a cold report (all processes): {cpu:.1f} s, {1000 * cpu / n:.2f} ms per image; "
          f"on {a.workers} otherwise idle cores that is about {cpu / a.workers:.1f} s wall")
    print(f"report warm (all thumbnails cached): {warm:.1f} s, {again:.1f} s")
    print(f"load average after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
