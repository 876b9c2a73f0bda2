#!/usr/bin/env python3
"""Features from the embedded EXIF preview (`scan --exif-thumbnails`) against the draft decode.

Usage::

    python benchmarks/bench_thumbnails.py [N] [--workdir /tmp/indexer-bench] [--samples DIR]

Two sets of JPEGs, each file measured both ways in this one run:

* the real photos of ../shared/data/camtrap-samples (they carry no preview: one is embedded
  with embed_thumbnails.py, 160x120 letterboxed, as trail cameras write them);
* N (default 800) frames of the benchmark archive (make_archive.py), previews embedded the same way.

Agreement, per set: Hamming distance between the two paths' dHash / aHash / pHash (mean and
max bits of 64), brightness difference, gray-flag agreement, sharpness ratio, and whether the
hashes still tell near-duplicates apart: the rank correlation between the pairwise dHash
distances of the draft path and of the preview path over frame pairs of the same folder.

Speed, in one process, files in the page cache: CPU ms per image both ways (process_time) and
bytes read per image (every read through a counting reader), and their ratios.

Prints figures only; it is never part of the test run's pass/fail.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import embed_thumbnails  # noqa: E402  (sibling scripts, not a package)
import make_archive  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SAMPLES = REPO.parent / "shared" / "data" / "camtrap-samples"
DEFAULT_WORKDIR = "/tmp/indexer-bench"
HASHES = ("dhash", "ahash", "phash")


class CountingReader(io.RawIOBase):
    """A raw file whose reads are counted (what a network share would have to send)."""

    def __init__(self, path: str) -> None:
        self._f = open(path, "rb", buffering=0)
        self.taken = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = self._f.readinto(b)
        self.taken += n or 0
        return n  # type: ignore[return-value]

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        self._f.close()
        super().close()


def measure(path: str, thumbnails: bool) -> tuple[object, int, float]:
    """Features, bytes read and CPU seconds of one file through one path."""
    from indexer.features import features_from_file

    raw = CountingReader(path)
    started = time.process_time()
    with io.BufferedReader(raw, buffer_size=8192) as fh:
        f = features_from_file(fh, thumbnails=thumbnails)
    return f, raw.taken, time.process_time() - started


def bits(a: int, b: int) -> int:
    return bin((a ^ b) & (2**64 - 1)).count("1")


def spearman(xs: list[float], ys: list[float]) -> float:
    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(len(v)), key=v.__getitem__)
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r
    return statistics.correlation(ranks(xs), ranks(ys)) if len(xs) > 2 else float("nan")


@dataclass
class SetResult:
    name: str
    n: int
    used: int  # files whose features came from the preview
    bits: dict[str, tuple[float, int]]
    brightness: tuple[float, float]
    gray_agree: float
    sharpness_ratio: float
    pair_rho: float
    pairs: int
    cpu_ms: tuple[float, float]
    kib: tuple[float, float]


def compare(name: str, paths: list[str], rounds: int = 2) -> SetResult:
    draft, thumb, cpu_d, cpu_t, bytes_d, bytes_t = [], [], [], [], [], []
    for p in paths:  # alternate the two paths file by file, best of `rounds` for the CPU time
        best_d = best_t = float("inf")
        for _ in range(rounds):
            fd, nd, td = measure(p, False)
            ft, nt, tt = measure(p, True)
            best_d, best_t = min(best_d, td), min(best_t, tt)
        draft.append(fd)
        thumb.append(ft)
        cpu_d.append(best_d)
        cpu_t.append(best_t)
        bytes_d.append(nd)
        bytes_t.append(nt)
    used = sum(f.features_source == "exif-thumbnail" for f in thumb)  # type: ignore[attr-defined]
    dist = {h: [bits(getattr(a, h), getattr(b, h)) for a, b in zip(draft, thumb)] for h in HASHES}
    bright = [abs(a.brightness - b.brightness) for a, b in zip(draft, thumb)]  # type: ignore[attr-defined]
    gray = sum(a.is_gray == b.is_gray for a, b in zip(draft, thumb)) / len(paths)  # type: ignore[attr-defined]
    sharp = statistics.median(b.sharpness / a.sharpness for a, b in zip(draft, thumb)  # type: ignore[attr-defined]
                              if a.sharpness)  # type: ignore[attr-defined]
    folders: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(paths):
        folders[os.path.dirname(p)].append(i)
    xs, ys = [], []
    for members in folders.values():
        members = members[:40]  # pairs inside a folder: bursts and near-duplicates, plus other scenes
        for i in range(len(members)):
            for j in range(i + 1, len(members)):
                a, b = members[i], members[j]
                xs.append(bits(draft[a].dhash, draft[b].dhash))  # type: ignore[attr-defined]
                ys.append(bits(thumb[a].dhash, thumb[b].dhash))  # type: ignore[attr-defined]
    n = len(paths)
    return SetResult(
        name, n, used, {h: (statistics.fmean(v), max(v)) for h, v in dist.items()},
        (statistics.fmean(bright), max(bright)), gray, sharp, spearman(xs, ys), len(xs),
        (1000 * sum(cpu_d) / n, 1000 * sum(cpu_t) / n), (sum(bytes_d) / n / 1024, sum(bytes_t) / n / 1024))


def jpegs(root: Path) -> list[str]:
    out = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        out.extend(os.path.join(folder, f) for f in sorted(files) if f.lower().endswith((".jpg", ".jpeg")))
    return out


def with_previews(src: Path, dst: Path) -> list[str]:
    if not (dst / ".done").exists():
        embed_thumbnails.copy_tree(src, dst)
        (dst / ".done").write_text("")
    return jpegs(dst)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", nargs="?", type=int, default=800, help="frames of the benchmark archive [800]")
    p.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"archives [{DEFAULT_WORKDIR}]")
    p.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES, help="real photos [../shared/...]")
    a = p.parse_args(argv)

    sets = []
    if a.samples.is_dir():
        sets.append(("real photos (camtrap-samples)", with_previews(a.samples, Path(a.workdir) / "samples-thumbs")))
    else:
        print(f"note: {a.samples} not found: the real photos are left out")
    info = make_archive.make_archive(os.path.join(a.workdir, f"archive-{a.n}"), a.n)
    sets.append((f"benchmark archive ({a.n} 1080p)", with_previews(Path(info.root),
                                                                  Path(a.workdir) / f"archive-{a.n}-thumbs")))
    import PIL
    print(f"bench_thumbnails: Python {sys.version.split()[0]}, Pillow {PIL.__version__}, load average "
          f"{os.getloadavg()[0]:.2f}; previews 160x120 letterboxed, embedded by embed_thumbnails.py; one run")
    for name, paths in sets:
        r = compare(name, paths)
        print(f"\n{r.name}: {r.n} files, features from the preview for {r.used}")
        for h, (m, mx) in r.bits.items():
            print(f"  {h} distance preview vs draft, bits of 64: mean {m:.2f}, max {mx}")
        print(f"  brightness |difference| (0-255): mean {r.brightness[0]:.2f}, max {r.brightness[1]:.2f}")
        print(f"  gray flag agreement: {r.gray_agree:.1%}")
        print(f"  sharpness preview / draft (median): {r.sharpness_ratio:.2f}")
        print(f"  pairwise dHash distances, preview vs draft, rank correlation over {r.pairs} same-folder "
              f"pairs: {r.pair_rho:.3f}")
        print(f"  CPU ms/image: draft {r.cpu_ms[0]:.2f}, preview {r.cpu_ms[1]:.2f}: speed-up x{r.cpu_ms[0] / r.cpu_ms[1]:.1f}")
        print(f"  KiB read/image: draft {r.kib[0]:.0f}, preview {r.kib[1]:.1f}: x{r.kib[0] / r.kib[1]:.0f} fewer bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
