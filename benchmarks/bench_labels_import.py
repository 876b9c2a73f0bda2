"""Time `indexer labels import` of a MegaDetector batch output file of 1,000,000 images with
1,500,000 boxes into an index of those images, and its peak memory.

    python benchmarks/bench_labels_import.py [--images 1000000] [--workdir /tmp/indexer-bench] [--reuse]

The index is built without images (rows straight into the real schema), 100 camera folders of
10,000 frames; the MD file (format 1.4, animal/person/vehicle, a species classification on
animal boxes, 1.5 boxes per image on average, a few failures) is written by this script. The
import runs in a child process so that its peak memory (ru_maxrss) is its own. Goal: <= 60 s and
under ~1 GB. CPU time is printed beside wall time: on a machine other work shares, wall time
says little. Figures are printed, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.db import Database  # noqa: E402

NOW = "2024-01-01T00:00:00.000000Z"


def build_index(db_path: Path, n: int) -> None:
    with Database(db_path, create=True) as db:
        rid = db.add_root("/bench/archive")
        rows = ((rid, f"site{k % 10}/cam{k // 10000:03d}", f"IMG_{k:07d}.JPG", 1000, k, NOW, NOW) for k in range(n))
        with db.transaction() as c:
            c.executemany("INSERT INTO images (root_id, folder, name, state, size, mtime_ns, first_seen_at, indexed_at)"
                          " VALUES (?, ?, ?, 'indexed', ?, ?, ?, ?)", rows)


def write_md(path: Path, n: int, seed: int = 0) -> int:
    rnd = random.Random(seed)
    boxes = 0
    with path.open("w", encoding="utf-8") as f:
        f.write('{"info": {"format_version": "1.4", "detector": "md_v5a.0.0"}, '
                '"detection_categories": {"1": "animal", "2": "person", "3": "vehicle"}, '
                '"classification_categories": {"0": "deer", "1": "fox", "2": "boar", "3": "hare"},\n"images": [\n')
        for k in range(n):
            name = f"site{k % 10}/cam{k // 10000:03d}/IMG_{k:07d}.JPG"
            if k % 10007 == 0:
                im = {"file": name, "failure": "Failure image access"}
            else:
                m = (0, 1, 1, 2, 2, 3)[k % 6]  # 1.5 boxes per image on average
                dets = []
                for _ in range(m):
                    cat = rnd.choice("1112")
                    d = {"category": cat, "conf": round(rnd.random(), 3),
                         "bbox": [round(rnd.random() * 0.5, 4), round(rnd.random() * 0.5, 4), 0.25, 0.25]}
                    if cat == "1":
                        d["classifications"] = [[str(rnd.randrange(4)), round(rnd.random(), 3)]]
                    dets.append(d)
                boxes += m
                im = {"file": name, "detections": dets}
            f.write(("," if k else "") + json.dumps(im) + "\n")
        f.write("]}\n")
    return boxes


def child(db_path: str, md_path: str) -> None:
    from indexer.labels import import_file
    with Database(db_path) as db:
        t, cpu = time.perf_counter(), time.process_time()
        s = import_file(db, md_path)
        dt, cpu = time.perf_counter() - t, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": dt, "cpu": cpu, "peak_mb": peak, "matched": s.matched, "boxes": s.detections,
                      "failures": len(s.failures), "labels": len(s.labels)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1_000_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/indexer-bench"))
    ap.add_argument("--reuse", action="store_true", help="Reuse the index and MD file of an earlier run.")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    a.workdir.mkdir(parents=True, exist_ok=True)
    base, md_path = a.workdir / f"labels-{a.images}.base.db", a.workdir / f"md-{a.images}.json"
    db_path = a.workdir / f"labels-{a.images}.db"
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    if not (a.reuse and base.exists() and md_path.exists()):
        for p in (base, md_path):
            p.unlink(missing_ok=True)
        t = time.perf_counter()
        build_index(base, a.images)
        boxes = write_md(md_path, a.images)
        print(f"made an index of {a.images:,} images and an MD file of {boxes:,} boxes "
              f"({md_path.stat().st_size / 2**20:.0f} MB) in {time.perf_counter() - t:.0f} s")
    shutil.copyfile(base, db_path)  # every run imports into the same fresh index
    out = subprocess.run([sys.executable, __file__, "--child", str(db_path), str(md_path)], capture_output=True,
                         text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"labels import: {r['seconds']:.1f} s wall, {r['cpu']:.1f} s CPU ({a.images / r['seconds']:,.0f} images/s, "
          f"{r['boxes'] / r['seconds']:,.0f} boxes/s), peak memory {r['peak_mb']:.0f} MB; "
          f"{r['matched']:,} matched, {r['boxes']:,} boxes stored, {r['failures']} failures")
    print(f"goal: <= 60 s ({r['seconds'] / 60:.2f} of it; CPU {r['cpu'] / 60:.2f} of it) and < ~1 GB ({r['peak_mb'] / 1024:.2f} of it)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
