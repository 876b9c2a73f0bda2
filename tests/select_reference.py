"""Fixed-seed picks of the selection methods and of the per-group path, as recorded before the
select speed work of issue 12 (point 5): tests/select_reference.json holds them, and
test_select_methods.py / test_selection.py check that today's code still gives the same.

    python tests/select_reference.py          # rewrite the JSON (only when a change is meant)

The cases are generated here (no images, no database): camera-trap-like pools with cameras,
scenes, bursts and unknown sequences, `indexer.methods.pick` on them with every method, a few k
and seeds, with and without kept images; and `indexer.selection._pick_groups` over a feature
table grouped by sequence (thousands of small groups) and by folder.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.methods import METHODS, Pool, pick  # noqa: E402

JSON = Path(__file__).with_name("select_reference.json")


def archive_arrays(n: int, seed: int, cameras: int = 6) -> dict[str, np.ndarray]:
    """n rows in natural order: cameras with a day and a night look, scenes 3-12 bits from their
    look, bursts of 1-8 frames 1-3 bits from their scene, frames 0-2 bits from their burst."""
    rng = np.random.default_rng(seed)

    def flips(m: int, lo: int, hi: int) -> np.ndarray:
        counts = rng.integers(lo, hi + 1, m)
        out = np.zeros(m, np.uint64)
        for r in range(hi):
            bit = np.left_shift(np.uint64(1), rng.integers(0, 64, m).astype(np.uint64))
            out |= np.where(counts > r, bit, np.uint64(0))
        return out

    burst_len = rng.integers(1, 9, n)
    seq = np.repeat(np.arange(n), burst_len)[:n]
    n_seq = int(seq[-1]) + 1
    cam = np.sort(rng.integers(0, cameras, n_seq))
    n_scene = max(1, n_seq // 6)
    scene_of_seq = np.sort(rng.integers(0, n_scene, n_seq))
    night = rng.random(n_scene) < 0.4
    look = rng.integers(0, 2**64, (cameras, 2, 3), dtype=np.uint64)
    scene_cam = cam[np.minimum(np.searchsorted(scene_of_seq, np.arange(n_scene)), n_seq - 1)]
    scene_hash = look[scene_cam, night.astype(int)] ^ np.stack([flips(n_scene, 3, 12) for _ in range(3)], 1)
    burst_hash = scene_hash[scene_of_seq] ^ np.stack([flips(n_seq, 1, 3) for _ in range(3)], 1)
    h = burst_hash[seq] ^ np.stack([flips(n, 0, 2) for _ in range(3)], 1)
    sc = scene_of_seq[seq]
    bright = np.clip(np.where(night, rng.uniform(15, 70, n_scene), rng.uniform(80, 230, n_scene))[sc]
                     + rng.normal(0, 3, n), 0, 255).astype(np.float32)
    gray = night[sc]
    return {"dhash": h[:, 0], "ahash": h[:, 1], "phash": h[:, 2], "brightness": bright,
            "color_variance": np.where(gray, 2.0, 300.0).astype(np.float32), "is_gray": gray,
            "sequence": seq.astype(np.int64), "camera": cam[seq].astype(np.int32)}


def pools() -> dict[str, Pool]:
    out = {}
    for name, n, seed in (("a3000", 3000, 0), ("b800", 800, 1)):
        a = archive_arrays(n, seed)
        out[name] = Pool(a["dhash"], a["ahash"], a["phash"], a["brightness"], a["color_variance"], a["is_gray"],
                         a["sequence"])
    a = archive_arrays(1500, 2)
    seq = a["sequence"].copy()
    seq[seq % 7 == 3] = -1  # unknown sequences: each such image is its own burst
    out["u1500"] = Pool(a["dhash"], a["ahash"], a["phash"], a["brightness"], a["color_variance"], a["is_gray"], seq)
    return out


def method_cases() -> dict[str, list[int]]:
    """`pick` on the pools: every method, k from 1 to past the number of bursts, two seeds, keep."""
    out: dict[str, list[int]] = {}
    for pname, p in pools().items():
        nseq = len(np.unique(p.sequence))
        keep = np.arange(0, p.size, max(1, p.size // 9))[:9]
        for method in METHODS:
            for k in (1, 5, 60, 250, min(p.size, nseq + 40)):
                for seed in (0, 11):
                    if seed and method in ("kcenter", "buckets"):
                        continue  # the seed does not matter to them
                    out[f"{pname}/{method}/k{k}/s{seed}"] = pick(p, k, method, seed=seed).tolist()
            out[f"{pname}/{method}/k120/keep"] = pick(p, 120, method, seed=3, keep=keep).tolist()
    return out


def feature_table(n: int = 6000, seed: int = 5) -> Any:
    """A FeatureTable of n rows in 6 folders (cameras), sequence ids = first row of each burst."""
    from indexer.sequences import FeatureTable

    a = archive_arrays(n, seed)
    seq = a["sequence"]
    first = np.r_[0, np.flatnonzero(np.diff(seq)) + 1]
    seq_id = first[np.searchsorted(first, np.arange(n), side="right") - 1].astype(np.int64) + 1
    return FeatureTable(ids=np.arange(1, n + 1, dtype=np.int64), dhash=a["dhash"], ahash=a["ahash"],
                        phash=a["phash"], brightness=a["brightness"], color_variance=a["color_variance"],
                        is_gray=a["is_gray"], sequence=seq_id, folder=a["camera"],
                        folders=tuple(("/r", f"cam{i}") for i in range(6)))


GROUP_CASES = (  # (name, per, target count, kept every Nth row or 0, seed)
    ("seq/t1", "sequence", 1, 0, 0), ("seq/t2", "sequence", 2, 0, 7), ("seq/t3", "sequence", 3, 0, 0),
    ("seq/t2/keep", "sequence", 2, 13, 1), ("folder/t25", "folder", 25, 0, 0), ("folder/t25/keep", "folder", 25, 17, 2),
)


def group_inputs(table: Any, per: str, count: int, keep_every: int) -> tuple:
    """The arguments `select` hands to `_pick_groups` for --per sequence|folder --target count
    (every row a candidate; with keep_every, every Nth row is a kept member of a saved selection)."""
    from indexer.selection import Target, _label, allocate

    n = len(table)
    kept = np.zeros(n, bool)
    if keep_every:
        kept[::keep_every] = True
    vals = table.sequence if per == "sequence" else table.folder.astype(np.int64)
    uniq, gkey = np.unique(vals, return_inverse=True)
    keys = uniq.tolist() if per == "sequence" else [table.folders[i][1] for i in uniq]
    gkey = gkey.astype(np.int64)
    cand = ~kept
    sizes = np.bincount(gkey[cand], minlength=len(keys))
    alloc = allocate(sizes, Target(count=count), grouped=True)
    return np.arange(n), gkey, kept, keys, [_label(k) for k in keys], sizes, alloc


def group_cases() -> dict[str, list[int]]:
    from indexer.selection import _pick_groups

    table = feature_table()
    out: dict[str, list[int]] = {}
    for name, per, count, keep_every, seed in GROUP_CASES:
        args = group_inputs(table, per, count, keep_every)
        for method in METHODS:
            rows, _ = _pick_groups(table, *args, method, seed, False)
            out[f"{name}/{method}"] = rows.tolist()
    return out


def digest(picks: list[int]) -> str:
    """Short fingerprint of a list of picks: its length and a SHA-256 of the int64 values."""
    return f"{len(picks)}:{hashlib.sha256(np.asarray(picks, np.int64).tobytes()).hexdigest()[:16]}"


def main() -> None:
    data = {"methods": {k: digest(v) for k, v in method_cases().items()},
            "groups": {k: digest(v) for k, v in group_cases().items()}}
    JSON.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {JSON}: {len(data['methods'])} method cases, {len(data['groups'])} group cases, "
          f"{JSON.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
