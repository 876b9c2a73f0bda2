#!/usr/bin/env python3
"""Scan rate against the bandwidth of a network share, for the draft decode and the EXIF preview.

Usage::

    python benchmarks/bench_network.py [N] [--mbits 100,250,500,1000] [--latency-ms 0.5] [--workers 2]

A share is emulated by reading every file through a rate-limited reader: all workers share one
link of the given bandwidth (a token bucket in shared memory: a read of n bytes holds the link
for n / bandwidth seconds after the reads before it, plus a fixed latency per read request, as an
NFS or SMB round trip). The files themselves are in the page cache, so what is measured is the
link plus the decoder. Each worker runs the scan's own feature extraction
(`indexer.features.features_from_file`, with and without thumbnails=True) in a spawned pool of
`--workers` processes, chunks of 8, as indexer.pipeline does; the database is left out (it is on
the local disk, and the same for both paths).

N frames (default 400) of the benchmark archive with 160x120 previews embedded (as
bench_thumbnails.py makes them). Per bandwidth: images/s of both paths, their ratio, and the
images/s the link alone would allow (bandwidth / mean bytes read). One run per cell; the machine
is shared, so the unthrottled row is the reference for what the CPUs allow at that moment.

Prints figures only; it is never part of the test run's pass/fail.
"""
from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_thumbnails  # noqa: E402  (sibling scripts, not a package)
import make_archive  # noqa: E402

CHUNK = 8
DEFAULT_WORKDIR = "/tmp/indexer-bench"

_LINK: dict[str, object] = {}


class ThrottledReader(bench_thumbnails.CountingReader):
    """A counted raw file whose reads go through the shared link: each waits for its share of bandwidth."""

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = super().readinto(b) or 0
        rate, latency = _LINK.get("rate"), float(_LINK.get("latency", 0.0))  # type: ignore[arg-type]
        if rate:
            lock, free_at = _LINK["lock"], _LINK["free_at"]
            with lock:  # type: ignore[attr-defined]
                now = time.monotonic()
                start = max(now, free_at.value)  # type: ignore[attr-defined]
                done = start + n / float(rate) + latency  # type: ignore[arg-type]
                free_at.value = start + n / float(rate)  # type: ignore[attr-defined]  # latency overlaps
            time.sleep(max(0.0, done - now))
        return n


def _init(lock: object, free_at: object, rate: float | None, latency: float) -> None:
    _LINK.update(lock=lock, free_at=free_at, rate=rate, latency=latency)
    import indexer.features  # noqa: F401  (as the scan's workers do before their first file)


def _chunk(paths: list[str], thumbnails: bool) -> tuple[int, int]:
    from indexer.features import features_from_file

    total = 0
    for p in paths:
        raw = ThrottledReader(p)
        with io.BufferedReader(raw, buffer_size=8192) as fh:
            features_from_file(fh, thumbnails=thumbnails)
        total += raw.taken
    return len(paths), total


def run(paths: list[str], workers: int, rate: float | None, latency: float, thumbnails: bool) -> tuple[float, float]:
    """Images/s over all paths (pool already started) and mean bytes read per image."""
    ctx = multiprocessing.get_context("spawn")
    lock, free_at = ctx.Lock(), ctx.Value("d", 0.0, lock=False)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init,
                             initargs=(lock, free_at, rate, latency)) as ex:
        list(ex.map(time.sleep, [0.05] * workers))  # every worker started and warm
        free_at.value = time.monotonic()
        started = time.perf_counter()
        chunks = [paths[i:i + CHUNK] for i in range(0, len(paths), CHUNK)]
        results = list(ex.map(_chunk, chunks, [thumbnails] * len(chunks)))
        wall = time.perf_counter() - started
    n = sum(r[0] for r in results)
    return n / wall, sum(r[1] for r in results) / n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", nargs="?", type=int, default=400, help="frames of the benchmark archive [400]")
    p.add_argument("--mbits", default="100,250,500,1000", help="link bandwidths, Mbit/s [100,250,500,1000]")
    p.add_argument("--latency-ms", type=float, default=0.5, help="added to every read request [0.5]")
    p.add_argument("--workers", type=int, default=2, help="decoding processes [2]")
    p.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"archives [{DEFAULT_WORKDIR}]")
    a = p.parse_args(argv)

    n_archive = max(a.n, 800)
    info = make_archive.make_archive(os.path.join(a.workdir, f"archive-{n_archive}"), n_archive)
    paths = bench_thumbnails.with_previews(Path(info.root), Path(a.workdir) / f"archive-{n_archive}-thumbs")[:a.n]
    for path in paths:  # page cache
        Path(path).read_bytes()
    latency = a.latency_ms / 1000
    print(f"bench_network: {len(paths)} 1080p JPEGs with 160x120 previews, {a.workers} workers, "
          f"{os.cpu_count()} cores, read latency {a.latency_ms} ms, load average {os.getloadavg()[0]:.2f}; one run per cell")
    head = f"{'link':>14}{'draft img/s':>13}{'(link cap)':>12}{'preview img/s':>15}{'(link cap)':>12}{'preview/draft':>15}"
    print(head)
    for label, mbit in [("unthrottled", None), *[(f"{m} Mbit/s", float(m)) for m in a.mbits.split(",")]]:
        rate = mbit * 1e6 / 8 if mbit else None
        d_rate, d_bytes = run(paths, a.workers, rate, latency if rate else 0.0, False)
        t_rate, t_bytes = run(paths, a.workers, rate, latency if rate else 0.0, True)
        cap = (lambda b: f"{rate / b:.0f}" if rate else "-")  # noqa: E731
        print(f"{label:>14}{d_rate:>13.1f}{cap(d_bytes):>12}{t_rate:>15.1f}{cap(t_bytes):>12}{t_rate / d_rate:>14.1f}x")
    print(f"bytes read per image: draft {d_bytes / 1024:.0f} KiB, preview {t_bytes / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
