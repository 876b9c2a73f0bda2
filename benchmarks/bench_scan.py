#!/usr/bin/env python3
"""How close `indexer scan` comes to the bare JPEG decode rate, on the same files and workers.

Usage::

    python benchmarks/bench_scan.py [N] [--workers 2] [--rounds 2] [--workdir /tmp/indexer-bench]
                                    [--baseline CHECKOUT]

Makes (or reuses) a realistic archive of N 1080p JPEGs with make_archive.py, reads every file
once so the page cache is warm for every run, then runs in ABBA order (decode, scan, scan,
decode for two rounds):

(a) bare decode: a spawned ProcessPoolExecutor, chunks of 8, at most workers * 4 chunks in
    flight (the shape of indexer.pipeline), each file only opened, drafted with
    indexer.features.reduce_decode (the scan's own draft request) and loaded;
(b) `python -m indexer scan ROOT --db FRESH --workers W --quiet --json` in a subprocess (this
    checkout's indexer package first on PYTHONPATH, run in the database's folder): images/s from
    its wall time (interpreter start included) and the images_per_s it reports;
(c) their ratio by wall time and by CPU time (all processes), goal: scan >= 90% of bare decode;
    the machine is shared, so several rounds are run and the spread (min-max) printed beside the mean,
    with the 1-minute load average at the start of each run; the scan's CPU time is split into its
    parent (walk, stat, SQLite writes, start-up) and its workers (decoding and features), and the
    share of the workers' cores they did not run on (starved or waiting: wall x workers - worker CPU),
    and the workers' minor page faults per image, for both (fresh pages taken from the system: on a
    virtual machine each costs microseconds; see indexer.pipeline.WORKER_ENV);
(d) an unchanged re-scan of the same archive into the last scan's database, files/s;
(e) peak RSS of the scan parent and of its largest worker: the scan runs under a tiny wrapper
    that runs `indexer` as `python -m indexer` would and then reads getrusage(RUSAGE_SELF) and
    getrusage(RUSAGE_CHILDREN) (the pool's workers are reaped before the scan returns).

Bytecode is cached as ``pip install`` leaves it (compiled once, by an unmeasured scan of a few
files, in a temporary PYTHONPYCACHEPREFIX; nothing is written into the checkouts): under
PYTHONDONTWRITEBYTECODE=1 every scan process and every worker would compile its modules again.

With ``--baseline CHECKOUT`` (a ``git worktree`` of an older commit) the scan of that checkout
runs too, in the same rounds (decode, scan, baseline scan; the reverse in odd rounds), so old and
new code are compared under the same load.

Prints figures only; it is never part of the test run's pass/fail.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_archive  # noqa: E402  (a sibling script, not a package)

CHUNK = 8  # files per task, as indexer.pipeline
CHECKOUT = Path(__file__).resolve().parent.parent  # the checkout whose indexer package is measured
GOAL_RATIO = 0.90
DEFAULT_WORKDIR = "/tmp/indexer-bench"

# Runs `indexer` exactly as `python -m indexer` does, then reports on stderr the peak RSS (KiB) and
# CPU seconds of this process (the scan parent) and of its reaped children (the decoding workers:
# the largest one's peak RSS, all of their CPU time).
SCAN_WRAPPER = """
import json, resource, runpy, sys
sys.argv = ["indexer", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("indexer", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
rss = {"package": sys.modules["indexer"].__file__, "parent_kib": me.ru_maxrss, "worker_kib": kids.ru_maxrss,
       "parent_cpu_s": me.ru_utime + me.ru_stime, "worker_cpu_s": kids.ru_utime + kids.ru_stime,
       "worker_minflt": kids.ru_minflt}
print("BENCH-RUSAGE " + json.dumps(rss), file=sys.stderr)
sys.exit(code)
"""


@dataclass(frozen=True)
class ScanRun:
    """One `indexer scan` subprocess: its JSON summary, wall time and peak RSS."""

    summary: dict[str, object]
    wall_s: float
    parent_rss_mib: float
    worker_rss_mib: float  # 0 when no worker was started (nothing to decode)
    parent_cpu_s: float
    worker_cpu_s: float
    package: str = ""  # the indexer/__init__.py that ran
    worker_minflt: int = 0  # minor page faults of all workers

    def count(self, key: str) -> int:
        return int(self.summary[key])  # type: ignore[call-overload]

    @property
    def elapsed_s(self) -> float:
        return float(self.summary["elapsed_s"])  # type: ignore[arg-type]


def run_scan(root: str, db: str, workers: int, batch: int = 256, *, fresh: bool,
             checkout: str | None = None) -> ScanRun:
    """Run `indexer scan` in a subprocess (a fresh database if asked) and measure it, with the
    `indexer` package of `checkout` (default: the checkout this script is in) first on
    PYTHONPATH; it runs in the database's folder, so no package in the caller's folder wins."""
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
    cmd = [sys.executable, "-c", SCAN_WRAPPER, "scan", root, "--db", db, "--workers", str(workers),
           "--batch", str(batch), "--quiet", "--json"]
    path = [checkout or str(CHECKOUT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=os.path.dirname(os.path.abspath(db)))
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"indexer scan exited {proc.returncode}:\n{proc.stderr}")
    rss = {}
    for line in proc.stderr.splitlines():
        if line.startswith("BENCH-RUSAGE "):
            rss = json.loads(line.split(" ", 1)[1])
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return ScanRun(summary, wall, rss.get("parent_kib", 0) / 1024, rss.get("worker_kib", 0) / 1024,
                   rss.get("parent_cpu_s", 0.0), rss.get("worker_cpu_s", 0.0), rss.get("package", ""),
                   rss.get("worker_minflt", 0))


def failure_summary(db: str) -> str:
    """The errors a scan recorded, counted: why a run was discarded."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT error, COUNT(*) FROM images WHERE error IS NOT NULL GROUP BY error").fetchall()
    return "; ".join(f"{n} x {err}" for err, n in rows) or "no error recorded"


def image_paths(root: str) -> list[str]:
    paths = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        paths.extend(os.path.join(folder, f) for f in sorted(files) if f.upper().endswith(".JPG"))
    return paths


def warm_cache(paths: Sequence[str]) -> float:
    """Read every file once, so every measurement sees the archive in the page cache."""
    started = time.perf_counter()
    for p in paths:
        with open(p, "rb") as fh:
            while fh.read(1 << 20):
                pass
    return time.perf_counter() - started


def decode_chunk(paths: list[str]) -> int:
    """Worker: open, draft as the scan does, load; nothing else."""
    from PIL import Image

    from indexer.features import reduce_decode

    for p in paths:
        with Image.open(p) as im:
            reduce_decode(im)
    return len(paths)


def cpu_seconds(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def bare_decode(paths: Sequence[str], workers: int) -> tuple[float, float, int]:
    """Wall seconds for the pool to decode every path (pool start and shutdown included), the
    CPU seconds of this process and its workers meanwhile, and the workers' minor page faults."""
    cpu0 = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
    faults0 = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    started = time.perf_counter()
    chunks = iter([list(paths[i:i + CHUNK]) for i in range(0, len(paths), CHUNK)])
    done_files = 0
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as ex:
        pending: set[Future[int]] = set()
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < workers * 4:
                chunk = next(chunks, None)
                if chunk is None:
                    exhausted = True
                else:
                    pending.add(ex.submit(decode_chunk, chunk))
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            done_files += sum(f.result() for f in done)
    assert done_files == len(paths)
    wall = time.perf_counter() - started
    faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - faults0
    return wall, cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN) - cpu0, faults


def _fmt(values: Sequence[float], digits: int = 1) -> list[str]:
    return [f"{v:.{digits}f}" for v in values]


def _row(label: str, cells: Sequence[str], mean: str = "", note: str = "") -> str:
    cols = "".join(f"{c:>12}" for c in cells)
    return f"{label:<40}{cols}{mean:>12}  {note}".rstrip()


def _spread(values: Sequence[float]) -> str:
    return f"spread {min(values):.0%}-{max(values):.0%}"


def scan_round(info: make_archive.ArchiveInfo, n: int, db: str, workers: int, notes: list[str], label: str,
               checkout: str | None = None) -> ScanRun:
    """One measured scan into a fresh database; a run with failed files is not a measurement:
    it is noted and run again (three attempts)."""
    for attempt in range(3):
        run = run_scan(info.root, db, workers, fresh=True, checkout=checkout)
        if run.count("new") == n and not run.count("failed"):
            return run
        notes.append(f"{label} attempt {attempt + 1} discarded: {run.count('new')} new, "
                     f"{run.count('failed')} failed ({failure_summary(db)})")
    raise RuntimeError(f"scan did not index every file: {run.summary}")


def print_scan(label: str, scans: Sequence[ScanRun], loads: Sequence[float], n: int, workers: int,
               bare: Sequence[float], bare_ms: Sequence[float]) -> tuple[float, float]:
    """The rows of one scan variant against the bare decode of the same rounds; returns the
    mean ratios (wall, CPU)."""
    mean = statistics.fmean
    ok = lambda ratio: "ok" if ratio >= GOAL_RATIO else "MISSES the goal"  # noqa: E731
    wall = [n / r.wall_s for r in scans]
    reported = [float(r.summary["images_per_s"]) for r in scans]  # type: ignore[arg-type]
    print(_row(f"(b) {label}, images/s by wall time", _fmt(wall), f"{mean(wall):.1f}", "subprocess, startup included"))
    print(_row("    load average (1 min) at its start", _fmt(loads, 2), f"{mean(loads):.2f}"))
    print(_row("    reported images_per_s", _fmt(reported), f"{mean(reported):.1f}"))
    print(_row("    wall s / reported elapsed_s", [f"{r.wall_s:.2f}/{r.elapsed_s:.2f}" for r in scans]))
    walls = [w / b for w, b in zip(wall, bare)]
    ratio_wall = mean(wall) / mean(bare)
    print(_row("(c) ratio to bare decode (wall time)", [f"{r:.0%}" for r in walls], f"{ratio_wall:.0%}",
               f"goal >= {GOAL_RATIO:.0%}: {ok(ratio_wall)}; {_spread(walls)}"))
    ratio_own = mean(reported) / mean(bare)
    print(_row("    ratio (reported rate)", [f"{w / b:.0%}" for w, b in zip(reported, bare)], f"{ratio_own:.0%}",
               f"goal >= {GOAL_RATIO:.0%}: {ok(ratio_own)}"))
    scan_ms = [1000 * (r.parent_cpu_s + r.worker_cpu_s) / n for r in scans]
    parent_ms = [1000 * r.parent_cpu_s / n for r in scans]
    worker_ms = [1000 * r.worker_cpu_s / n for r in scans]
    idle = [max(0.0, 1 - r.worker_cpu_s / (r.wall_s * workers)) for r in scans]
    print(_row("    CPU ms/image, parent + workers", _fmt(scan_ms, 2), f"{mean(scan_ms):.2f}"))
    print(_row("      parent (walk, stat, SQLite, start)", _fmt(parent_ms, 2), f"{mean(parent_ms):.2f}"))
    print(_row("      workers (decode, features)", _fmt(worker_ms, 2), f"{mean(worker_ms):.2f}"))
    faults = [r.worker_minflt / n for r in scans]
    print(_row("      minor page faults/image, workers", _fmt(faults, 0), f"{mean(faults):.0f}", "pool start included"))
    print(_row("      worker cores not running", [f"{i:.0%}" for i in idle], f"{mean(idle):.0%}",
               "1 - worker CPU / (wall x workers): starved or waiting"))
    cpus = [b / s for b, s in zip(bare_ms, scan_ms)]
    ratio_cpu = mean(bare_ms) / mean(scan_ms)
    print(_row("(c) ratio to bare decode (CPU time)", [f"{r:.0%}" for r in cpus], f"{ratio_cpu:.0%}",
               f"goal >= {GOAL_RATIO:.0%}: {ok(ratio_cpu)}; {_spread(cpus)}; the wall ratio on an idle machine"))
    return ratio_wall, ratio_cpu


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", nargs="?", type=int, default=2000, help="images in the archive [2000]")
    p.add_argument("--workers", type=int, default=2, help="decoding processes for both [2]")
    p.add_argument("--rounds", type=int, default=2, help="decode/scan pairs, run in ABBA order [2]")
    p.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"archive and databases [{DEFAULT_WORKDIR}]")
    p.add_argument("--baseline", metavar="CHECKOUT",
                   help="also scan with the indexer package of this checkout (a git worktree of an older commit)")
    a = p.parse_args(argv)
    baseline = os.path.abspath(a.baseline) if a.baseline else None
    if baseline and not os.path.isfile(os.path.join(baseline, "indexer", "__init__.py")):
        p.error(f"--baseline {a.baseline}: no indexer package there")

    os.makedirs(a.workdir, exist_ok=True)
    info = make_archive.make_archive(os.path.join(a.workdir, f"archive-{a.n}"), a.n)
    paths = image_paths(info.root)
    n = len(paths)
    db = os.path.join(a.workdir, f"scan-{a.n}.db")
    warm_s = warm_cache(paths)
    pycache = tempfile.mkdtemp(prefix="bench-scan-pycache-")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # for the scans and the bare decode's workers
    os.environ["PYTHONPYCACHEPREFIX"] = pycache
    prime(paths[:4], a.workdir, a.workers, baseline)

    order = []
    for r in range(a.rounds):
        one = ["decode", "scan", "baseline"] if baseline else ["decode", "scan"]
        order += one if r % 2 == 0 else one[::-1]
    load_before = os.getloadavg()
    decode_s: list[float] = []
    decode_cpu: list[float] = []
    decode_faults: list[float] = []  # the workers' minor page faults per image
    notes: list[str] = []
    runs: dict[str, list[ScanRun]] = {"scan": [], "baseline": []}
    loads: dict[str, list[float]] = {"decode": [], "scan": [], "baseline": []}
    for what in order:
        loads[what].append(os.getloadavg()[0])
        if what == "decode":
            wall_s, cpu_s, faults = bare_decode(paths, a.workers)
            decode_s.append(wall_s)
            decode_cpu.append(cpu_s)
            decode_faults.append(faults / n)
        else:
            label = f"{what} run {len(runs[what]) + 1}"
            runs[what].append(scan_round(info, n, db, a.workers, notes, label,
                                         baseline if what == "baseline" else None))
    rescans = [run_scan(info.root, db, a.workers, fresh=False) for _ in range(a.rounds)]
    for r in rescans:
        if r.count("unchanged") != n:
            raise RuntimeError(f"re-scan did not find every file unchanged: {r.summary}")

    load_after = os.getloadavg()
    bare = [n / s for s in decode_s]
    bare_ms = [1000 * c / n for c in decode_cpu]
    re_wall = [n / r.wall_s for r in rescans]
    re_own = [n / r.elapsed_s if r.elapsed_s else float("inf") for r in rescans]
    mean = statistics.fmean

    import PIL
    print(f"bench_scan: {n} images, {a.workers} workers, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, Pillow {PIL.__version__}")
    print(f"archive: {info.root}: {make_archive.describe(info)}")
    print(f"page cache: warm; every file read once ({warm_s:.1f} s) before the first run, "
          f"then runs in ABBA order: {', '.join(order)}")
    print(f"scan: {runs['scan'][0].package}" + (f"; baseline: {runs['baseline'][0].package}" if baseline else ""))
    if baseline and runs["scan"][0].package == runs["baseline"][0].package:
        raise RuntimeError("the baseline ran the same indexer package as the scan")
    busiest = max(load_before[0], load_after[0], *loads["decode"], *loads["scan"], *loads["baseline"])
    print(f"load average (1 min) before/after the runs: {load_before[0]:.2f}/{load_after[0]:.2f}, highest at a "
          f"run's start {busiest:.2f} (the machine is {'busy' if busiest > 0.5 else 'quiet'})")
    print(_row("", [f"run {i + 1}" for i in range(a.rounds)], "mean"))
    print(_row("(a) bare decode, images/s", _fmt(bare), f"{mean(bare):.1f}", "open + reduce_decode draft + load"))
    print(_row("    load average (1 min) at its start", _fmt(loads["decode"], 2), f"{mean(loads['decode']):.2f}"))
    print(_row("    CPU ms/image (all processes)", _fmt(bare_ms, 2), f"{mean(bare_ms):.2f}"))
    print(_row("    minor page faults/image, workers", _fmt(decode_faults, 0), f"{mean(decode_faults):.0f}",
               "pool start included"))
    ratios = {"scan": print_scan("scan", runs["scan"], loads["scan"], n, a.workers, bare, bare_ms)}
    if baseline:
        ratios["baseline"] = print_scan("baseline scan", runs["baseline"], loads["baseline"], n, a.workers, bare,
                                        bare_ms)
        new_ms = mean([r.parent_cpu_s + r.worker_cpu_s for r in runs["scan"]])
        old_ms = mean([r.parent_cpu_s + r.worker_cpu_s for r in runs["baseline"]])
        print(f"scan vs baseline: ratio to bare by wall {ratios['scan'][0]:.0%} vs {ratios['baseline'][0]:.0%}, "
              f"by CPU {ratios['scan'][1]:.0%} vs {ratios['baseline'][1]:.0%}; CPU per image "
              f"{1000 * new_ms / n:.2f} vs {1000 * old_ms / n:.2f} ms ({new_ms / old_ms - 1:+.0%})")
    print(_row("(d) unchanged re-scan, files/s by wall", _fmt(re_wall, 0), f"{mean(re_wall):.0f}",
               f"{n} unchanged, startup included"))
    print(_row("    unchanged re-scan, files/s reported", _fmt(re_own, 0), f"{mean(re_own):.0f}", "n / elapsed_s"))
    scans = runs["scan"]
    print(_row("(e) peak RSS scan parent, MiB", _fmt([r.parent_rss_mib for r in scans])))
    print(_row("    peak RSS largest worker, MiB", _fmt([r.worker_rss_mib for r in scans])))
    print(_row("    peak RSS re-scan parent, MiB", _fmt([r.parent_rss_mib for r in rescans])))
    for note in notes:
        print(f"note: {note}")
    shutil.rmtree(pycache, ignore_errors=True)
    return 0


def prime(paths: Sequence[str], workdir: str, workers: int, baseline: str | None) -> None:
    """Compile what the scans and the bare decode import (into PYTHONPYCACHEPREFIX): an unmeasured
    scan of a few files with each checkout, and a bare decode of them."""
    folder = os.path.join(workdir, "prime")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for i, path in enumerate(paths):
        shutil.copy(path, os.path.join(folder, f"IMG_{i}.JPG"))
    for checkout in (None, baseline) if baseline else (None,):
        run_scan(folder, os.path.join(workdir, "prime.db"), workers, fresh=True, checkout=checkout)
    bare_decode(paths, workers)  # compiles what the workers import
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
