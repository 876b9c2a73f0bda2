#!/usr/bin/env python3
"""`indexer scan --cluster` against the local pool, and the single writer's ceiling.

Usage::

    python benchmarks/bench_cluster.py [N] [--workers 2] [--writer-rows 200000] [--workdir /tmp/indexer-bench]

Needs `pip install 'indexer[dask]'`. On the same N 1080p JPEGs (make_archive.py, page cache
warm), whole `indexer scan` processes into fresh databases, in ABBA order:

(a) the local pool: `--workers W`;
(b) a running Dask cluster of W single-threaded worker processes on this machine, started
    beforehand as a lab starts one (`dask scheduler`, `dask worker --nworkers W --nthreads 1`):
    `--cluster tcp://...`; the ratio (b)/(a) is the cost of going through Dask (goal >= 0.9);
(c) `--cluster local:W`, which also pays for starting the LocalCluster (a few seconds).

Then the writer, the part that does not scale out:
(d) rows committed per second by `Database.write_results` in batches of 256 when features
    arrive instantly (synthetic results for files of a --copies archive);
(e) the whole client when the workers do no decoding at all: `scan --cluster` of a tiny-file
    archive with a worker task that returns made-up features at once: the walk, the stat diff,
    the Dask round trips and the writes, in rows per second;
and from (e) and (a) the number of worker cores one index can feed before the writer limits,
and the shared-storage bandwidth a given rate needs (mean bytes per image x rate).

Prints figures only; it is never part of the test run's pass/fail.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_WORKDIR = os.path.join(tempfile.gettempdir(), "indexer-bench")


def instant(items: list) -> list:
    """A worker task that decodes nothing: made-up features, at once (the writer's ceiling)."""
    from indexer.records import Features, ImageResult
    out = []
    for i, item in enumerate(items):
        f = Features("JPEG", "RGB", 640, 480, hash(item.name) & 0x7FFFFFFFFFFFFFFF, i, -i, 100.0, 5.0, False,
                     12.5, "2024-05-01T10:00:00", "TESTCAM", "T1")
        out.append(ImageResult(item, f, None, item.size, item.mtime_ns, None, None))
    return out


def load() -> str:
    return "load %.2f" % os.getloadavg()[0]


def make(root: Path, n: int, *extra: str) -> None:
    subprocess.run([sys.executable, str(HERE / "make_archive.py"), str(root), str(n), *extra], check=True,
                   stdout=subprocess.DEVNULL)


def warm(root: Path) -> tuple[int, int]:
    files = total = 0
    for p in root.rglob("*"):
        if p.is_file() and not p.name.startswith("."):
            total += len(p.read_bytes())
            files += 1
    return files, total


def scan(root: Path, db: Path, *args: str) -> tuple[float, dict]:
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "indexer", "scan", str(root), "--db", str(db), "--quiet", "--json",
                        *args], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"scan {' '.join(args)} failed: {r.stderr}")
    return wall, json.loads(r.stdout)


class Cluster:
    """A scheduler and W worker processes, as `dask scheduler` / `dask worker` start them."""

    def __init__(self, workdir: Path, workers: int) -> None:
        self.file = workdir / "scheduler.json"
        self.file.unlink(missing_ok=True)
        self.procs = [self._start(["scheduler", "--scheduler-file", str(self.file), "--port", "0",
                                   "--dashboard-address", ":0"], workdir)]
        while not self.file.exists() or not self.file.read_text().strip():
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]
        self.procs.append(self._start(["worker", self.address, "--nworkers", str(workers), "--nthreads", "1",
                                       "--no-dashboard"], workdir))
        from distributed import Client
        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)

    @staticmethod
    def _start(args: list[str], cwd: Path) -> subprocess.Popen:
        # as the README's example starts workers: without Dask's statistical profiler
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(REPO)]),
                   DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED="False")
        return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True)

    def close(self) -> None:
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            p.wait(30)


def writer_ceiling(root: Path, db_path: Path, rows: int) -> float:
    """Rows per second through write_results, batches of 256, features ready."""
    sys.path.insert(0, str(REPO))
    from indexer.db import Database
    from indexer.records import WorkItem
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    with Database(db_path, create=True) as db:
        root_id = db.add_root(str(root))
        run = db.start_run("bench", {})
        items = [WorkItem(root_id, str(root), f"cam{i // 1000:03d}", f"IMG_{i:06d}.JPG", 4096, 1_700_000_000 + i)
                 for i in range(rows)]
        results = instant(items)
        t = time.perf_counter()
        for i in range(0, rows, 256):
            db.write_results(results[i:i + 256], run)
        elapsed = time.perf_counter() - t
        from indexer.scan import Counts
        db.finish_run(run, "completed", Counts(new=rows).as_dict(), elapsed, None, [])
    return rows / elapsed


CLIENT = """
import sys
sys.path[:0] = {paths!r}
from bench_cluster import instant
from indexer.db import Database
from indexer.scan import Scanner
with Database({db!r}, create=True) as db:
    s = Scanner(db, progress=False, cluster={address!r}, decode=instant).run([{root!r}])
import resource
print(s.counts.new, s.elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def client_ceiling(root: Path, db: Path, address: str) -> tuple[int, float, float, float]:
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    code = CLIENT.format(paths=[str(HERE), str(REPO)], db=str(db), address=address, root=str(root))
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), float(out[1]), time.perf_counter() - t, int(out[2]) / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", nargs="?", type=int, default=800, help="1080p images in the archive [800]")
    p.add_argument("--workers", type=int, default=2, help="local pool processes and Dask workers [2]")
    p.add_argument("--writer-rows", type=int, default=200_000, help="rows for the writer's ceiling [200000]")
    p.add_argument("--tiny", type=int, default=20_000, help="tiny files for the client's ceiling [20000]")
    p.add_argument("--rounds", type=int, default=4, help="pool/cluster pairs, in ABBA order [4]")
    p.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"archives and databases [{DEFAULT_WORKDIR}]")
    a = p.parse_args(argv)
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise SystemExit("needs Dask: pip install 'indexer[dask]'") from None
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    root = work / f"archive-{a.n}"
    make(root, a.n)
    files, size = warm(root)
    print(f"{files} 1080p JPEGs, mean {size / files / 1024:.0f} KiB; {a.workers} workers; {os.cpu_count()} cores",
          file=sys.stderr)
    cluster = Cluster(work, a.workers)
    try:
        rates: dict[str, list[float]] = {"pool": [], "cluster": []}
        for order in [("pool", "cluster"), ("cluster", "pool")] * (a.rounds // 2) + [("pool", "cluster")] * (a.rounds % 2):
            for kind in order:
                args = ["--workers", str(a.workers)] if kind == "pool" else ["--cluster", cluster.address]
                wall, s = scan(root, work / f"{kind}.db", *args)
                rates[kind].append(s["new"] / wall)
                print(f"  {kind:8s} {s['new'] / wall:6.1f} images/s whole process ({load()})", file=sys.stderr)
        wall, s = scan(root, work / "local.db", "--cluster", f"local:{a.workers}")
        local_rate = s["new"] / wall
        pool, clus = sum(rates["pool"]) / a.rounds, sum(rates["cluster"]) / a.rounds
        print(f"(a) local pool, {a.workers} processes:         {pool:7.1f} images/s (whole process, mean of {a.rounds})")
        print(f"(b) running Dask cluster, {a.workers} workers:     {clus:7.1f} images/s; ratio to the pool "
              f"{clus / pool:.2f} (goal >= 0.9)")
        print(f"(c) --cluster local:{a.workers} (start included): {local_rate:7.1f} images/s; ratio {local_rate / pool:.2f}"
              f" (LocalCluster start-up is in it: {files} images)")

        tiny = work / f"tiny-{a.tiny}"
        make(tiny, a.tiny, "--copies")
        warm(tiny)
        ceiling = writer_ceiling(tiny, work / "writer.db", a.writer_rows)
        n, elapsed, wall, rss = client_ceiling(tiny, work / "client.db", cluster.address)
        client_rate = n / elapsed
        per_core = pool / a.workers
        print(f"(d) writer alone (write_results, batches of 256): {ceiling:9.0f} rows/s (goal >= 20,000) ({load()})")
        print(f"(e) whole client, instant workers ({n} files):  {client_rate:9.0f} rows/s "
              f"(run time {elapsed:.1f} s; process {wall:.1f} s; client peak RSS {rss:.0f} MiB)")
        print(f"    one index feeds about {client_rate / per_core:.0f} worker cores at {per_core:.0f} images/s "
              f"per core (this machine's 1080p rate) before the client limits; "
              f"{ceiling / per_core:.0f} by the writer alone")
        mb = size / files / 1e6
        for rate in (per_core * a.workers, 1000.0, client_rate):
            print(f"    {rate:8.0f} images/s reads {rate * mb:8.1f} MB/s = {rate * mb * 8 / 1000:6.2f} Gbit/s "
                  f"of shared storage ({mb:.2f} MB per image)")
    finally:
        cluster.close()
        shutil.rmtree(work / "dask-scratch-space", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
