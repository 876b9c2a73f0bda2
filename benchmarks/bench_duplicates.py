"""Duplicates and near-copies: speed of the all-pairs search and accuracy on real photos.

    python benchmarks/bench_duplicates.py speed [--rows 1000000] [--radius 8] [--queries 20]
    python benchmarks/bench_duplicates.py real [--samples ../shared/data/camtrap-samples] [--work DIR]
    python benchmarks/bench_duplicates.py db [--rows 1000000] [--queries 20]

`speed`: 1,000,000 random 64-bit hashes with planted clusters of near copies (20,000 clusters of
2-6 hashes, 0-6 bits from their centre); all pairs within --radius bits by multi-index hashing
(indexer.methods.mih.self_pairs), the same on a random sample of rows by brute force (the full
brute force is quadratic: 5*10^11 pairs; its time is extrapolated from the sample, quadratically),
the recall of the planted pairs, peak memory, and `nearest` (what `indexer similar` runs) per query.

`db`: a 1,000,000-row index built through the real schema by bench_select.py (scenes with bursts
of near-identical frames); `indexer.similar(db, id=...)` per query (warm: the select cache loaded
once before), and `indexer.duplicates(db)` as a whole (load, search, grouping, paths), with peak memory.

`real`: the real photos plus copies made here (JPEG re-saved at quality 60 and 95, resized to
50%, cropped by 4 px on every side, EXIF stripped without re-encoding), scanned with `indexer
scan`; for each hash and distance, the share of planted (original, copy) pairs found and the
pairs found between different originals (ENA24 photos are unrelated scenes; the Reconyx burst's
frames are one scene seconds apart and counted apart), next to ImageHash's hashes of the full
decode of the same files. Figures are printed, never asserted: this is not part of the test run.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from indexer.methods import mih  # noqa: E402

VARIANTS = ("q60", "q95", "half", "crop4", "noexif")


def planted(n: int, clusters: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n random hashes with planted near-copy clusters; (hashes, cluster centre row, member rows)."""
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    centres = rng.choice(n, clusters, replace=False)
    sizes = rng.integers(1, 6, clusters)
    rest = np.setdiff1d(np.arange(n), centres)
    members = rng.choice(rest, int(sizes.sum()), replace=False)
    flips = np.zeros(len(members), np.uint64)
    nbits = rng.integers(0, 7, len(members))
    for k in range(len(members)):
        for b in rng.choice(64, nbits[k], replace=False):
            flips[k] |= np.uint64(1) << np.uint64(int(b))
    owner = np.repeat(centres, sizes)
    h[members] = h[owner] ^ flips
    return h, owner, members


def speed(args: argparse.Namespace) -> None:
    h, owner, members = planted(args.rows, args.rows // 50)
    print(f"{args.rows:,} hashes, {len(members):,} planted near copies of {len(np.unique(owner)):,} centres; "
          f"radius {args.radius}; blocks m = {mih.plan(args.rows // 2, args.rows, args.radius)}")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    i, j, d = mih.self_pairs(h, args.radius)
    t_mih = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    found = set(zip(i.tolist(), j.tolist()))
    want = {(min(a, b), max(a, b)) for a, b in zip(owner.tolist(), members.tolist())}
    print(f"multi-index hashing: {len(i):,} pairs in {t_mih:.2f} s; peak RSS {peak:.0f} MiB "
          f"(+{peak - before:.0f} MiB for the search); planted pairs found {len(want & found):,}/{len(want):,}")
    k = args.sample
    rows = np.random.default_rng(2).choice(args.rows, k, replace=False)
    t = time.perf_counter()
    bi, bj, _ = mih.brute_pairs(h[rows], args.radius)
    t_b = time.perf_counter() - t
    full = t_b * (args.rows / k) ** 2
    mi, mj, _ = mih.self_pairs(h[rows], args.radius, m=3)
    same = np.array_equal(bi, mi) and np.array_equal(bj, mj)
    print(f"brute force on a {k:,}-row sample: {t_b:.2f} s (same pairs as mih: {same}); "
          f"extrapolated to {args.rows:,} rows: {full:,.0f} s; speedup of mih over brute force: {full / t_mih:,.0f}x")
    qs = np.random.default_rng(3).choice(args.rows, args.queries)
    t = time.perf_counter()
    for q in qs:
        mih.nearest(int(h[q]), h, 10, 64)
    per = (time.perf_counter() - t) / len(qs)
    print(f"nearest 10 of {args.rows:,} (what `indexer similar` runs after loading the hashes): {per * 1000:.1f} ms per query")


def make_copies(samples: Path, work: Path) -> Path:
    from PIL import Image
    archive = work / "archive"
    for src in sorted(samples.rglob("*")):
        if src.suffix.lower() not in (".jpg", ".jpeg"):
            continue
        rel = src.relative_to(samples)
        out = archive / rel.parent
        out.mkdir(parents=True, exist_ok=True)
        data = src.read_bytes()
        (out / src.name).write_bytes(data)
        stem = src.stem
        with Image.open(src) as im:
            im.load()
            exif = im.info.get("exif", b"")
            im.save(out / f"{stem}__q60.jpg", quality=60, exif=exif)
            im.save(out / f"{stem}__q95.jpg", quality=95, exif=exif)
            im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS).save(out / f"{stem}__half.jpg", quality=85)
            im.crop((4, 4, im.width - 4, im.height - 4)).save(out / f"{stem}__crop4.jpg", quality=90)
        (out / f"{stem}__noexif.jpg").write_bytes(strip_exif(data))
    return archive


def strip_exif(data: bytes) -> bytes:
    """The JPEG without its APP1 (EXIF/XMP) segments, pixels untouched."""
    out, k = bytearray(data[:2]), 2
    while k + 4 <= len(data) and data[k] == 0xFF and data[k + 1] not in (0xDA, 0xD9):
        length = int.from_bytes(data[k + 2:k + 4], "big")
        if data[k + 1] != 0xE1:
            out += data[k:k + 2 + length]
        k += 2 + length
    return bytes(out + data[k:])


def real(args: argparse.Namespace) -> None:
    import sqlite3

    import imagehash
    from PIL import Image
    work = Path(args.work or tempfile.mkdtemp(prefix="dups-"))
    archive = make_copies(Path(args.samples), work)
    db = work / "index.db"
    indexer = [sys.executable, "-m", "indexer"]
    subprocess.run([*indexer, "scan", str(archive), "--db", str(db), "-q"], check=True)
    con = sqlite3.connect(db)
    rows = con.execute("SELECT folder, name, dhash, ahash, phash FROM images WHERE state = 'indexed' "
                       "ORDER BY folder, name").fetchall()
    names = [f"{f}/{n}" for f, n, *_ in rows]
    ours = {k: np.array([r[2 + x] for r in rows], np.int64) for x, k in enumerate(("dhash", "ahash", "phash"))}
    theirs = {"dhash": [], "ahash": [], "phash": []}
    for name in names:
        with Image.open(archive / name) as im:
            for k, fn in (("dhash", imagehash.dhash), ("ahash", imagehash.average_hash), ("phash", imagehash.phash)):
                theirs[k].append(int(str(fn(im)), 16))
    theirs = {k: np.array(v, np.uint64) for k, v in theirs.items()}
    origin = [n.split("__")[0].rsplit(".", 1)[0] for n in names]
    folder = [n.split("/")[0] for n in names]
    variant = [n.split("__")[1].split(".")[0] if "__" in n else "orig" for n in names]
    n_orig = sum(v == "orig" for v in variant)
    print(f"{n_orig} originals, {len(names) - n_orig} copies ({', '.join(VARIANTS)}), scanned with indexer scan")
    print("hash    dist | planted pairs found (ours / ImageHash) | per variant (ours) | "
          "false pairs ENA24 (ours / ImageHash) | burst-neighbour pairs (ours / ImageHash)")
    for k in ("dhash", "phash", "ahash"):
        for r in args.radii:
            line = [f"{k:6s} {r:4d}"]
            res = []
            for hashes in (ours[k], theirs[k]):
                i, j, _ = mih.self_pairs(hashes, r)
                planted_hit = {v: 0 for v in VARIANTS}
                false = burst = 0
                for a, b in zip(i.tolist(), j.tolist()):
                    if origin[a] == origin[b]:
                        if "orig" in (variant[a], variant[b]):
                            planted_hit[variant[b] if variant[a] == "orig" else variant[a]] += 1
                    elif folder[a] == folder[b] == "reconyx-burst":
                        burst += 1
                    else:
                        false += 1
                res.append((planted_hit, false, burst))
            total = n_orig * len(VARIANTS)
            per = " ".join(f"{v}:{res[0][0][v]}" for v in VARIANTS)
            line.append(f"{sum(res[0][0].values())}/{total} / {sum(res[1][0].values())}/{total}")
            line.append(per)
            line.append(f"{res[0][1]} / {res[1][1]}")
            line.append(f"{res[0][2]} / {res[1][2]}")
            print(" | ".join(line))


def db_bench(args: argparse.Namespace) -> None:
    import indexer
    from bench_select import build
    work = Path(tempfile.mkdtemp(prefix="dups-db-"))
    db = work / "index.db"
    t = build(db, args.rows, 100)
    print(f"built {args.rows:,} rows in {t:.1f} s")
    ids = np.random.default_rng(4).integers(1, args.rows, args.queries)
    indexer.similar(db, id=int(ids[0]), top=10)  # first call rebuilds the select cache
    t = time.perf_counter()
    for i in ids:
        indexer.similar(db, id=int(i), top=10)
    per = (time.perf_counter() - t) / len(ids)
    print(f"indexer.similar(id=..., top=10) on {args.rows:,} rows: {per:.3f} s per query (each opens the database "
          "and loads the cached hashes)")
    t = time.perf_counter()
    res = indexer.duplicates(db)
    took = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"indexer.duplicates (phash <= 6) on {args.rows:,} rows: {len(res.groups):,} groups, {res.pairs:,} pairs, "
          f"{res.redundant:,} could go, in {took:.1f} s; peak RSS {peak:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--rows", type=int, default=1_000_000)
    s.add_argument("--radius", type=int, default=8)
    s.add_argument("--sample", type=int, default=20_000)
    s.add_argument("--queries", type=int, default=20)
    d = sub.add_parser("db")
    d.add_argument("--rows", type=int, default=1_000_000)
    d.add_argument("--queries", type=int, default=20)
    r = sub.add_parser("real")
    r.add_argument("--samples", default=str(Path(__file__).resolve().parent.parent.parent / "shared/data/camtrap-samples"))
    r.add_argument("--work", default=None)
    r.add_argument("--radii", type=int, nargs="+", default=[2, 4, 6, 8, 10, 12, 14, 16])
    args = ap.parse_args()
    {"speed": speed, "real": real, "db": db_bench}[args.what](args)


if __name__ == "__main__":
    main()
