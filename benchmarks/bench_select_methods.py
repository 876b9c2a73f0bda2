"""Time the pure selection methods (indexer.methods.pick) on synthetic features: no images, no DB.

    python benchmarks/bench_select_methods.py [--rows 1000000] [--k 1000] [--groups 100]
                                              [--group-k 10] [--no-coverage]

The synthetic archive is clustered like a real one (see synthetic_archive): rows/10000 cameras (--scenes-per-camera),
rows/20 scenes (heavy-tailed sizes), bursts of ~4.5 frames, in natural path order (camera,
scene, burst, frame); 40% of scenes are night (gray, dark, a different look).

For each method: wall time of pick() (best of --repeat), peak memory of one call measured with
tracemalloc (numpy reports its buffers to it) relative to the bytes of the feature arrays,
coverage (mean and largest combined distance from every row to its nearest pick, exact, over
all rows) against the mean of 3 random subsets, redundancy (share of picks within 6 dHash bits
of another pick or in the same burst) and the number of distinct bursts among the picks. Then
the same pool cut into --groups contiguous groups, --group-k picks each: total time.
A benchmark, not a test: it prints figures and never fails on them.

Measured on the shared 2-core machine (load average 3-5 from other work, so times are
pessimistic), 1,000,000 rows, k = 1000, features 39.1 MiB:

    method   seconds  peak x features  cov mean/max (random 43.5/87)  redundancy  bursts
    diverse     1.2        1.32            37.1 / 73  (0.85 / 0.84)      0.000      1000
    kcenter     0.4        0.93            50.1 / 71  (1.15 / 0.82)      0.000      1000
    buckets     0.06       1.22            43.6 / 87  (1.00 / 1.00)      0.141       989
    window      4.4        0.77            47.4 / 88  (1.09 / 1.01)      0.275       923
    random      0.00       0.02            43.4 / 87                     0.145       993
    100 groups x 10,000, k = 10: diverse 0.39 s, kcenter 0.22 s, buckets 0.08 s, window 0.05 s,
    random 0.01 s.
    kcenter was 0.7-1.3 s (peak 1.17x) before its loop passed over the band only (issue 12
    point 5; same picks): 0.42 s at load average 3.7.

With --scenes-per-camera 100 (500 cameras: 1000 day/night looks, as many as picks) the
largest distance cannot drop much for anyone (diverse 87, kcenter 85, random 88); diverse's
mean is 0.75 of random's there.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import tracemalloc

import numpy as np

from indexer import methods as sel
Pool = sel.Pool


def _flips(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """n random 64-bit masks with up to lo..hi set bits (colliding bits set fewer)."""
    counts = rng.integers(lo, hi + 1, n)
    out = np.zeros(n, np.uint64)
    for r in range(hi):
        bit = np.left_shift(np.uint64(1), rng.integers(0, 64, n).astype(np.uint64))
        out |= np.where(counts > r, bit, np.uint64(0))
    return out


def synthetic_archive(n: int, seed: int = 0, frames_per_scene: int = 20, scenes_per_camera: int = 500) -> Pool:
    """n rows: cameras with a day and a night look (IR frames look nothing like colour ones),
    scenes 3-12 bits per hash from their camera's look (weather, light, an animal in front of
    the same background), bursts 1-4 bits from their scene, frames 0-2 bits from their burst.
    Scene sizes are heavy-tailed (idle cameras fire a lot), bursts ~4.5 frames on average."""
    rng = np.random.default_rng(seed)
    n_scene = max(1, n // frames_per_scene)
    n_cam = max(1, n_scene // scenes_per_camera)
    w = rng.pareto(1.5, n_scene) + 0.3
    scene_n = np.maximum(1, np.round(w / w.sum() * n)).astype(np.int64)
    while scene_n.sum() != n:  # fix rounding on the largest scenes
        diff = n - int(scene_n.sum())
        top = np.argsort(-scene_n)[: abs(diff)]
        scene_n[top] = np.maximum(1, scene_n[top] + np.sign(diff))
    cam_of_scene = np.sort(rng.integers(0, n_cam, n_scene))
    night = rng.random(n_scene) < 0.4
    look = rng.integers(0, 2**64, (n_cam, 2, 3), dtype=np.uint64)      # [camera, day/night, hash]
    scene_hash = look[cam_of_scene, night.astype(int)] ^ np.stack([_flips(rng, n_scene, 3, 12) for _ in range(3)], 1)
    scene_b = np.where(night, rng.uniform(15, 70, n_scene), rng.uniform(80, 230, n_scene))
    scene_of = np.repeat(np.arange(n_scene), scene_n)
    new_burst = rng.random(n) < 1 / 4.5
    new_burst[np.r_[0, np.flatnonzero(np.diff(scene_of)) + 1]] = True
    seq = np.cumsum(new_burst) - 1
    n_seq = int(seq[-1]) + 1
    burst_hash = scene_hash[scene_of[new_burst]] ^ np.stack([_flips(rng, n_seq, 1, 4) for _ in range(3)], 1)
    h = burst_hash[seq] ^ np.stack([_flips(rng, n, 0, 2) for _ in range(3)], 1)
    gray = night[scene_of]
    return Pool(dhash=h[:, 0], ahash=h[:, 1], phash=h[:, 2],
                brightness=np.clip(scene_b[scene_of] + rng.normal(0, 3, n), 0, 255).astype(np.float32),
                color_variance=np.where(gray, rng.uniform(0, 8, n), rng.uniform(60, 600, n)).astype(np.float32),
                is_gray=gray, sequence=seq.astype(np.int64))


def feature_bytes(p: Pool) -> int:
    return sum(getattr(p, f).nbytes for f in ("dhash", "ahash", "phash", "brightness", "color_variance",
                                              "is_gray", "sequence"))


def timed(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def peak_memory(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def fresh(p: Pool) -> Pool:
    """The same arrays in a new Pool (no cached distance codes), as the CLI builds them."""
    return Pool(p.dhash, p.ahash, p.phash, p.brightness, p.color_variance, p.is_gray, p.sequence)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--groups", type=int, default=100)
    ap.add_argument("--group-k", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenes-per-camera", type=int, default=500,
                    help="500: 100 cameras for 1M rows; 100: 500 cameras (1000 day/night looks, as many as k)")
    ap.add_argument("--no-coverage", action="store_true", help="skip the (slow, exact) coverage figures")
    ap.add_argument("--burst-loop", type=int, default=20_000,
                    help="bursts on which pick() per group is timed against pick_bursts")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    pool = synthetic_archive(args.rows, args.seed, scenes_per_camera=args.scenes_per_camera)
    fb = feature_bytes(pool)
    n_seq = len(np.unique(pool.sequence))
    leaders = importlib.import_module("indexer.methods.kcenter").runs(
        importlib.import_module("indexer.methods.distance").codes(pool), importlib.import_module(
            "indexer.methods.kcenter").KCENTER_EPS)[0]
    print(f"synthetic archive: {pool.size:,} rows, {n_seq:,} bursts, {len(leaders):,} kcenter runs, "
          f"features {fb / 2**20:.1f} MiB, built in {time.perf_counter() - t:.1f} s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; numpy {np.__version__}")

    rnd_cov = None
    if not args.no_coverage:
        covs = [sel.coverage(pool, sel.pick(pool, args.k, "random", seed=s)) for s in range(3)]
        rnd_cov = np.mean(covs, axis=0)
    head = f"{'method':8} {'k':>5} {'seconds':>8} {'peak MiB':>9} {'x features':>10}"
    if rnd_cov is not None:
        head += f" {'cov mean':>9} {'cov max':>8} {'vs random':>12}"
    head += f" {'redund.':>8} {'bursts':>7}"
    print(head)
    print("-" * len(head))
    for method in sel.METHODS:
        secs, picks = timed(lambda: sel.pick(fresh(pool), args.k, method, seed=args.seed), args.repeat)
        peak = peak_memory(lambda: sel.pick(fresh(pool), args.k, method, seed=args.seed))
        picks = np.asarray(picks)
        line = f"{method:8} {len(picks):>5} {secs:>8.2f} {peak / 2**20:>9.1f} {peak / fb:>10.2f}"
        if rnd_cov is not None:
            cm, cx = sel.coverage(pool, picks)
            line += f" {cm:>9.1f} {cx:>8.0f} {cm / rnd_cov[0]:>5.2f} /{cx / rnd_cov[1]:>5.2f}"
        line += f" {sel.redundancy(pool, picks):>8.3f} {len(np.unique(pool.sequence[picks])):>7}"
        print(line, flush=True)
    if rnd_cov is not None:
        print(f"random coverage (mean of 3 seeds): mean {rnd_cov[0]:.1f}, max {rnd_cov[1]:.0f} "
              f"(combined units, 0-255; 'vs random' = method / random, mean / max)")

    bounds = np.linspace(0, pool.size, args.groups + 1).astype(np.int64)
    print(f"\n{args.groups} groups of ~{pool.size // args.groups:,} rows, k = {args.group_k} each")
    print(f"{'method':8} {'picks':>6} {'seconds':>8} {'ms/group':>9}")
    for method in sel.METHODS:
        def run() -> int:
            total = 0
            for g in range(args.groups):
                s, e = int(bounds[g]), int(bounds[g + 1])
                p = Pool(pool.dhash[s:e], pool.ahash[s:e], pool.phash[s:e], pool.brightness[s:e],
                         pool.color_variance[s:e], pool.is_gray[s:e], pool.sequence[s:e])
                total += len(sel.pick(p, args.group_k, method, seed=args.seed + g))
            return total
        secs, total = timed(run, args.repeat)
        print(f"{method:8} {total:>6} {secs:>8.2f} {secs / args.groups * 1000:>9.1f}", flush=True)
    bursts(pool, args.burst_loop, args.seed)


def bursts(pool: Pool, loop_groups: int, seed: int) -> None:
    """Every burst its own group (select --per sequence): pick_bursts on all of them at once
    against one pick() per group on the first `loop_groups` bursts (the rate is compared, per
    group), and whether the picks are the same there."""
    seq = pool.sequence
    starts = np.r_[0, np.flatnonzero(np.diff(seq)) + 1]
    bounds = np.r_[starts, pool.size]
    print(f"\n{len(starts):,} one-burst groups (select --per sequence); pick() per group timed on the first "
          f"{min(loop_groups, len(starts)):,}")
    print(f"{'method':8} {'k':>3} {'batched s':>10} {'us/group':>9} {'loop us/group':>14} {'speed-up':>9} {'same':>5}")
    for method in sel.BURST_METHODS:
        for k in (1, 2):
            kk = np.full(len(starts), k)
            keep = np.zeros(pool.size, bool)
            secs, got = timed(lambda: sel.pick_bursts(fresh(pool), starts, kk, keep, method), 1)
            G = min(loop_groups, len(starts))
            t = time.perf_counter()
            want = []
            for g in range(G):
                s, e = int(bounds[g]), int(bounds[g + 1])
                if k >= e - s:
                    want.append(np.arange(s, e))
                    continue
                p = Pool(pool.dhash[s:e], pool.ahash[s:e], pool.phash[s:e], pool.brightness[s:e],
                         pool.color_variance[s:e], pool.is_gray[s:e], pool.sequence[s:e])
                want.append(s + sel.pick(p, k, method, seed=seed + g))
            loop = (time.perf_counter() - t) / G
            got = np.asarray(got)
            same = np.array_equal(got[got < bounds[G]], np.concatenate(want))
            per = secs / len(starts)
            print(f"{method:8} {k:>3} {secs:>10.2f} {per * 1e6:>9.1f} {loop * 1e6:>14.1f} {loop / per:>8.0f}x "
                  f"{'yes' if same else 'NO':>5}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
