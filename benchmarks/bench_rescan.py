#!/usr/bin/env python3
"""Unchanged re-scan of 10,000 and 100,000 files: time and peak memory of the scan process.

Usage::

    python benchmarks/bench_rescan.py [--sizes 10000,100000] [--per-folder 100] [--workers 2]
                                      [--repeats 3] [--reuse] [--workdir /tmp/indexer-bench]

For each size, make_archive.py --copies makes N tiny (2-5 KB) JPEGs, hard links of 40 distinct
files, 100 to a folder as siteNN/camNNN/IMG_NNNN.JPG (1,000 folders for 100k). A first, real
`indexer scan` indexes them into a fresh database (decoding every file: minutes for 100k);
`--reuse` keeps a database such a scan made earlier. Then `indexer scan` runs again `--repeats`
times and must find every file unchanged: the figures are its files/s, its seconds (wall time of
the subprocess, interpreter start included, and the elapsed_s it reports) and the peak RSS of the
scan process. The floor row is the peak RSS of `indexer --help` (interpreter and imports).

Goals: the 100k re-scan takes a few seconds (<= 5 s wall), and the re-scan's peak RSS is flat
from 10k to 100k (it grows by less than 10 MiB). Prints figures only; it is never part of the
test run's pass/fail.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_archive  # noqa: E402  (sibling scripts, not a package)
from bench_scan import DEFAULT_WORKDIR, SCAN_WRAPPER, ScanRun, run_scan  # noqa: E402

GOAL_100K_S = 5.0
GOAL_RSS_GROWTH_MIB = 10.0


def floor_rss_mib() -> float:
    """Peak RSS of `indexer --help` under the same wrapper: the interpreter and the imports."""
    proc = subprocess.run([sys.executable, "-c", SCAN_WRAPPER, "--help"], capture_output=True, text=True)
    for line in proc.stderr.splitlines():
        if line.startswith("BENCH-RUSAGE "):
            return json.loads(line.split(" ", 1)[1])["parent_kib"] / 1024
    return 0.0


def bench_size(n: int, a: argparse.Namespace) -> tuple[ScanRun | None, list[ScanRun], make_archive.ArchiveInfo]:
    info = make_archive.make_copies(os.path.join(a.workdir, f"copies-{n}-{a.per_folder}"), n,
                                    per_folder=a.per_folder, link=a.link)
    db = os.path.join(a.workdir, f"rescan-{n}-{a.per_folder}.db")
    first = None
    if not (a.reuse and os.path.exists(db)):
        print(f"  {n}: first scan (decodes every file) ...", file=sys.stderr, flush=True)
        first = run_scan(info.root, db, a.workers, fresh=True)
        if first.count("new") != n or first.count("failed"):
            raise RuntimeError(f"the first scan did not index every file: {first.summary}")
    rescans = []
    for _ in range(a.repeats):
        run = run_scan(info.root, db, a.workers, fresh=False)
        if run.count("unchanged") != n:
            raise RuntimeError(f"the re-scan did not find every file unchanged: {run.summary}")
        rescans.append(run)
    return first, rescans, info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,100000", help="comma-separated file counts [10000,100000]")
    p.add_argument("--per-folder", type=int, default=100, help="files per folder [100]")
    p.add_argument("--workers", type=int, default=2, help="decoding processes for the first scan [2]")
    p.add_argument("--repeats", type=int, default=3, help="re-scans per size [3]")
    p.add_argument("--link", choices=("hard", "copy"), default="hard", help="hard links or copies [hard]")
    p.add_argument("--reuse", action="store_true", help="keep a database an earlier first scan made")
    p.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"archives and databases [{DEFAULT_WORKDIR}]")
    a = p.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    os.makedirs(a.workdir, exist_ok=True)

    started, load_before = time.monotonic(), os.getloadavg()
    floor = floor_rss_mib()
    results = [(n, *bench_size(n, a)) for n in sizes]
    load_after = os.getloadavg()

    print(f"bench_rescan: sizes {', '.join(map(str, sizes))}, {a.per_folder} files per folder, "
          f"{a.link} links of 40 tiny JPEGs, {a.workers} workers, {os.cpu_count()} cores; "
          f"{a.repeats} re-scans each; total {time.monotonic() - started:.0f} s")
    print(f"load average (1 min) before/after: {load_before[0]:.2f}/{load_after[0]:.2f}")
    for n, _, _, info in results:
        print(f"archive {n}: {info.root}: {make_archive.describe(info)}")
    print(f"peak RSS floor (`indexer --help`, interpreter + imports): {floor:.1f} MiB")
    head = f"{'files':>8} {'first scan s':>13} {'files/s':>8} {'re-scan wall s':>15} {'reported s':>11} " \
           f"{'files/s':>8} {'peak RSS MiB':>13} {'1st scan RSS parent/worker':>27}"
    print(head)
    best: dict[int, ScanRun] = {}
    for n, first, rescans, _ in results:
        walls = [r.wall_s for r in rescans]
        best[n] = min(rescans, key=lambda r: r.wall_s)
        first_cells = (f"{first.wall_s:13.1f} {n / first.wall_s:8.0f}" if first else f"{'(reused)':>13} {'':>8}")
        first_rss = f"{first.parent_rss_mib:.1f}/{first.worker_rss_mib:.1f}" if first else ""
        print(f"{n:>8} {first_cells} {'/'.join(f'{w:.2f}' for w in walls):>15} "
              f"{'/'.join(f'{r.elapsed_s:.2f}' for r in rescans):>11} {n / statistics.median(walls):8.0f} "
              f"{'/'.join(f'{r.parent_rss_mib:.1f}' for r in rescans):>13} {first_rss:>27}")
    big = max(sizes)
    if big >= 100_000:
        s = best[big].wall_s
        print(f"goal: re-scan of {big} files in <= {GOAL_100K_S:.0f} s: best {s:.2f} s wall, "
              f"{best[big].elapsed_s:.2f} s reported: {'ok' if s <= GOAL_100K_S else 'MISSES the goal'}")
    if len(sizes) > 1:
        small = min(sizes)
        growth = max(r.parent_rss_mib for n, _, rs, _ in results if n == big for r in rs) - \
            max(r.parent_rss_mib for n, _, rs, _ in results if n == small for r in rs)
        print(f"goal: re-scan peak RSS flat from {small} to {big} files (growth < {GOAL_RSS_GROWTH_MIB:.0f} MiB): "
              f"{growth:+.1f} MiB: {'ok' if growth < GOAL_RSS_GROWTH_MIB else 'MISSES the goal'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
