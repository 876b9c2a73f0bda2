"""Watch: delay from a file's arrival to its committed row, and a large dump's throughput vs scan.

    python benchmarks/bench_watch.py SOURCE_DIR [--n 2000] [--workers 2] [--settle 1.0]

SOURCE_DIR holds JPEGs (e.g. made by benchmarks/make_archive.py). In one run, on the same files
and worker count:
  1. latency: with `indexer watch` idle on an empty folder, single files are hard-linked in one at
     a time; for each, the time until its row is committed (polled read-only), minus nothing:
     it includes the --settle wait, which is the floor;
  2. dump: N files hard-linked in at once (an SD card emptied into the archive); the time until
     all N rows are committed, as images/s;
  3. scan: `indexer scan` of the same N files into a fresh database, images/s;
and prints the dump/scan throughput ratio. Hard links keep the copy itself out of the figures.
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def count(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute("SELECT COUNT(*) FROM images WHERE state = 'indexed'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def wait_count(db: Path, n: int, timeout: float = 1800) -> float:
    start = time.monotonic()
    while count(db) < n:
        if time.monotonic() - start > timeout:
            raise SystemExit(f"timed out waiting for {n} rows in {db}")
        time.sleep(0.02)
    return time.monotonic()


def link_all(files: list[Path], src: Path, dest: Path) -> None:
    for f in files:
        target = dest / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(f, target)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--singles", type=int, default=10)
    args = ap.parse_args()
    files = sorted(p for p in args.source.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    singles, dump = files[: args.singles], files[args.singles: args.singles + args.n]
    if len(dump) < args.n:
        raise SystemExit(f"{args.source} holds {len(files)} JPEGs; need {args.singles + args.n}")
    for f in files[: args.singles + args.n]:  # warm the page cache for every measurement alike
        f.read_bytes()
    tmp = Path(tempfile.mkdtemp(prefix="bench-watch-", dir=args.source.parent))
    root, db = tmp / "archive", tmp / "watch.db"
    root.mkdir()
    cmd = [sys.executable, "-m", "indexer", "watch", str(root), "--db", str(db), "--quiet",
           "--workers", str(args.workers), "--settle", str(args.settle)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if "watching for changes" in line:
                break
        delays = []
        for i, f in enumerate(singles, 1):
            t0 = time.monotonic()
            link_all([f], args.source, root)
            delays.append(wait_count(db, i) - t0)
        t0 = time.monotonic()
        link_all(dump, args.source, root)
        watch_s = wait_count(db, len(singles) + len(dump)) - t0
    finally:
        proc.terminate()
        proc.wait(60)
    scan_db = tmp / "scan.db"
    scan_root = tmp / "scan-archive"
    scan_root.mkdir()
    link_all(dump, args.source, scan_root)
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "indexer", "scan", str(scan_root), "--db", str(scan_db), "--quiet",
                    "--workers", str(args.workers)], check=True)
    scan_s = time.monotonic() - t0
    n = len(dump)
    print(f"bench_watch: {n} files from {args.source}, {args.workers} workers, settle {args.settle} s, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"arrival -> committed row, single files: median {statistics.median(delays):.2f} s, "
          f"max {max(delays):.2f} s over {len(delays)} files (floor: settle {args.settle} s)")
    print(f"dump of {n}: watch {watch_s:.1f} s = {n / watch_s:.1f} images/s "
          f"(includes the settle wait and the event handling)")
    print(f"scan of the same {n}: {scan_s:.1f} s = {n / scan_s:.1f} images/s (process start included)")
    print(f"watch / scan throughput: {scan_s / watch_s:.0%}")


if __name__ == "__main__":
    main()
