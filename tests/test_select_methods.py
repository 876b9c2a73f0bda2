"""The pure selection algorithms of indexer/select: counts, determinism, keep, bucket keys,
the burst rule and coverage against random subsets, on generated pools (no images, no DB)."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from indexer.methods import (METHODS, Pool, bucket_keys, bucket_meaning, buckets_covered, coverage, distance,
                            hamming_coverage, pairwise, pick, redundancy)

kcenter_mod = importlib.import_module("indexer.methods.kcenter")
window_mod = importlib.import_module("indexer.methods.window")


# -- generated pools ---------------------------------------------------------------------------

def _flip(rng: np.random.Generator, h: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Each hash with lo..hi distinct random bits flipped."""
    out = h.copy()
    for idx in np.ndindex(out.shape):
        for b in rng.choice(64, int(rng.integers(lo, hi + 1)), replace=False):
            out[idx] ^= np.uint64(1) << np.uint64(int(b))
    return out


def bursts(seed: int = 0, n_seq: int = 200) -> Pool:
    """n_seq sequences of 1-6 near-identical frames (1-3 bits apart per hash), hashes random
    across sequences, brightness and gray flag per sequence (its scene)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(1, 7, n_seq)
    seq = np.repeat(np.arange(n_seq), frames)
    base = rng.integers(0, 2**64, (n_seq, 3), dtype=np.uint64)
    h = _flip(rng, base[seq], 1, 3)
    night = rng.random(n_seq) < 0.4
    b = np.where(night, rng.uniform(15, 70, n_seq), rng.uniform(90, 230, n_seq))[seq] + rng.normal(0, 2, len(seq))
    return Pool(h[:, 0], h[:, 1], h[:, 2], np.clip(b, 0, 255), np.where(night[seq], 2.0, 250.0), night[seq], seq)


def archive(seed: int = 0, n_seq: int = 200, n_scene: int = 40) -> Pool:
    """A camera-trap-like pool: 40 scenes of very different sizes (random hashes, brightness
    and gray flag per scene), 200 sequences in them (4-16 bits from their scene per hash: the
    animal moved), 1-6 frames per sequence (1-3 bits from their sequence)."""
    rng = np.random.default_rng(seed)
    scene_hash = rng.integers(0, 2**64, (n_scene, 3), dtype=np.uint64)
    night = rng.random(n_scene) < 0.4
    scene_b = np.where(night, rng.uniform(15, 70, n_scene), rng.uniform(90, 230, n_scene))
    w = 1.0 / np.arange(1, n_scene + 1)
    scene_of_seq = np.sort(rng.choice(n_scene, n_seq, p=w / w.sum()))
    seq_hash = _flip(rng, scene_hash[scene_of_seq], 4, 16)
    seq = np.repeat(np.arange(n_seq), rng.integers(1, 7, n_seq))
    h = _flip(rng, seq_hash[seq], 1, 3)
    sc = scene_of_seq[seq]
    b = np.clip(scene_b[sc] + rng.normal(0, 2, len(seq)), 0, 255)
    return Pool(h[:, 0], h[:, 1], h[:, 2], b, np.where(night[sc], 2.0, 250.0), night[sc], seq)


def tiny(n: int, seed: int = 0, **over) -> Pool:
    rng = np.random.default_rng(seed)
    fields = dict(dhash=rng.integers(0, 2**64, n, dtype=np.uint64), ahash=rng.integers(0, 2**64, n, dtype=np.uint64),
                  phash=rng.integers(0, 2**64, n, dtype=np.uint64), brightness=rng.uniform(0, 255, n),
                  color_variance=rng.uniform(0, 300, n), is_gray=rng.random(n) < 0.5,
                  sequence=np.full(n, -1))
    fields.update(over)
    return Pool(**fields)


@pytest.fixture(scope="module")
def pool() -> Pool:
    return bursts(1)


def popcount(x: int) -> int:
    return bin(int(x) & (2**64 - 1)).count("1")


# -- counts, order, determinism, keep ------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("k", [0, 1, 7, 150, 199, 200, 450, 10_000])
def test_exact_count_distinct_sorted(pool: Pool, method: str, k: int) -> None:
    picks = pick(pool, k, method)
    assert picks.dtype == np.int64
    assert len(picks) == min(k, pool.size)
    assert len(np.unique(picks)) == len(picks)
    assert np.all(np.diff(picks) > 0)
    assert picks.size == 0 or (picks[0] >= 0 and picks[-1] < pool.size)


@pytest.mark.parametrize("method", METHODS)
def test_deterministic_for_a_seed(pool: Pool, method: str) -> None:
    assert np.array_equal(pick(pool, 40, method, seed=5), pick(pool, 40, method, seed=5))


def test_random_seeds_differ(pool: Pool) -> None:
    assert not np.array_equal(pick(pool, 40, "random", seed=1), pick(pool, 40, "random", seed=2))


@pytest.mark.parametrize("method", METHODS)
def test_keep_is_honoured(pool: Pool, method: str) -> None:
    keep = np.array([3, 50, 51, 400])
    picks = pick(pool, 60, method, keep=keep)
    assert len(picks) == 60 and len(np.unique(picks)) == 60
    assert set(keep.tolist()) <= set(picks.tolist())
    # as many or more kept than asked: the kept images come back as they are
    assert np.array_equal(pick(pool, 3, method, keep=keep), keep)
    assert np.array_equal(pick(pool, 4, method, keep=keep[::-1]), keep)


@pytest.mark.parametrize("method", ["diverse", "kcenter"])
def test_extension_goes_where_the_kept_ones_are_not(method: str) -> None:
    p = archive(3)
    seq = p.sequence
    keep = np.flatnonzero(seq < 60)          # an earlier selection from the first scenes
    keep = keep[np.unique(seq[keep], return_index=True)[1]]
    picks = pick(p, len(keep) + 20, method, keep=keep)
    new = np.setdiff1d(picks, keep)
    before = coverage(p, keep)
    after = coverage(p, picks)
    assert len(new) == 20 and after[1] < before[1] and after[0] < before[0]


def test_empty_pool_and_zero_k() -> None:
    empty = tiny(0)
    assert empty.size == 0 and len(empty) == 0
    for method in METHODS:
        assert pick(empty, 5, method).size == 0
        assert pick(tiny(10), 0, method).size == 0


def test_pool_coerces_signed_hashes() -> None:
    h = np.array([-1, 0, -(2**63)], dtype=np.int64)  # as stored in SQLite
    p = tiny(3, dhash=h, ahash=h, phash=h)
    assert p.dhash.dtype == np.uint64 and int(p.dhash[0]) == 2**64 - 1 and int(p.dhash[2]) == 2**63
    q = tiny(3, dhash=[-1, 0, -(2**63)], ahash=h, phash=h)  # Python ints from a query
    assert np.array_equal(p.dhash, q.dhash)


# -- argument checks ---------------------------------------------------------------------------

@pytest.mark.parametrize("k", [-1, 1.5, True, "3", None])
def test_bad_k(pool: Pool, k: object) -> None:
    with pytest.raises(ValueError):
        pick(pool, k, "diverse")  # type: ignore[arg-type]


def test_bad_arguments(pool: Pool) -> None:
    with pytest.raises(ValueError, match="unknown method"):
        pick(pool, 5, "smart")
    with pytest.raises(ValueError):
        pick(pool, 5, "random", seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="keep"):
        pick(pool, 5, "diverse", keep=np.array([pool.size]))
    with pytest.raises(ValueError, match="keep"):
        pick(pool, 5, "diverse", keep=np.array([0.5]))
    with pytest.raises(ValueError):
        pick(object(), 5)  # type: ignore[arg-type]


def test_pool_rejects_bad_arrays() -> None:
    with pytest.raises(ValueError, match="brightness"):
        tiny(5, brightness=np.zeros(4))
    with pytest.raises(ValueError, match="sequence"):
        tiny(5, sequence=np.zeros(6, np.int64))
    with pytest.raises(ValueError, match="one-dimensional"):
        tiny(4, dhash=np.zeros((2, 2), np.uint64))
    with pytest.raises(ValueError, match="non-finite"):
        tiny(3, brightness=np.array([1.0, np.nan, 3.0]))
    with pytest.raises(ValueError, match="64-bit"):
        tiny(2, ahash=np.array([0.5, 1.5]))


# -- distances and figures of merit -------------------------------------------------------------

def test_combined_distance_formula() -> None:
    p = tiny(30, seed=4)
    for i, j in [(0, 1), (5, 9), (12, 12), (29, 3)]:
        q = [min(47, int(np.floor(float(p.brightness[x]) * 48 / 256))) for x in (i, j)]
        expect = (popcount(int(p.dhash[i]) ^ int(p.dhash[j])) + popcount(int(p.ahash[i]) ^ int(p.ahash[j]))
                  + popcount(int(p.phash[i]) ^ int(p.phash[j])) + abs(q[0] - q[1])
                  + 16 * (bool(p.is_gray[i]) != bool(p.is_gray[j])))
        assert distance(p, i, j) == expect == pairwise(p, np.array([i]), np.array([j]))[0, 0]


def test_coverage_against_brute_force() -> None:
    p = tiny(60, seed=5)
    picks = np.array([2, 17, 33, 59])
    d = pairwise(p, np.arange(60), picks).min(axis=1)
    assert coverage(p, picks) == pytest.approx((d.mean(), d.max()))
    hd = np.array([[popcount(int(p.dhash[i]) ^ int(p.dhash[j])) for j in picks] for i in range(60)]).min(axis=1)
    assert hamming_coverage(p, picks) == pytest.approx((hd.mean(), hd.max()))
    assert coverage(p, np.arange(60)) == (0.0, 0.0)
    with pytest.raises(ValueError, match="empty"):
        coverage(p, np.array([], np.int64))


def test_redundancy() -> None:
    base = np.uint64(0x0123_4567_89AB_CDEF)
    d = np.array([base, base ^ np.uint64(0b111), base ^ np.uint64(0xFF00), ~base, ~base ^ np.uint64(1 << 40)],
                 dtype=np.uint64)
    p = tiny(5, dhash=d, sequence=np.array([-1, -1, 7, 8, 9]))
    assert redundancy(p, np.array([0, 1, 2, 3])) == pytest.approx(2 / 4)   # 0~1 (3 bits); 2 is 8 bits away
    assert redundancy(p, np.array([0, 2, 3, 4])) == pytest.approx(2 / 4)   # 3~4 (1 bit)
    assert redundancy(p, np.array([0, 2, 3, 4]), bits=0) == 0.0
    assert redundancy(p, np.array([0, 2])) == 0.0
    p2 = tiny(5, dhash=d, sequence=np.array([1, 2, 3, 3, -1]))
    assert redundancy(p2, np.array([0, 2, 3]), bits=0) == pytest.approx(2 / 3)  # same burst
    with pytest.raises(ValueError, match="bits"):
        redundancy(p, np.array([0, 1]), bits=64)


def test_redundancy_indexed_path_matches_direct() -> None:
    metrics = importlib.import_module("indexer.methods.metrics")
    rng = np.random.default_rng(9)
    base = rng.integers(0, 2**64, 1500, dtype=np.uint64)
    h = np.concatenate([base, _flip(rng, base[:800], 1, 8)])
    for bits in (0, 3, 6):
        assert np.array_equal(metrics._close_pairs(h, bits), metrics._close_pairs_indexed(h, bits))


# -- buckets ------------------------------------------------------------------------------------

def _bits_to_int(positions: list[int]) -> int:
    """A 64-bit hash with ImageHash bit positions set (position 0 = leftmost hex digit's top bit)."""
    s = ["0"] * 64
    for p in positions:
        s[p] = "1"
    return int("".join(s), 2)


def _signed(u: int) -> int:
    return u - 2**64 if u >= 2**63 else u


CRAFTED = [
    # (dhash positions, ahash positions, is_gray, brightness, expected key by hand)
    ([], [], True, 0.0, 0b00000),
    ([27], [], True, 0.0, 0b10000),
    ([36], [], True, 0.0, 0b01000),
    ([27, 36, 0, 63], [0, 9], False, 128.0, 0b11111),   # 2 of the 4 top-left aHash cells: pattern 1
    ([26, 28, 35, 37], [0], True, 127.9, 0b00000),     # neighbours of 27/36; 1 of 4 cells: pattern 0
    ([27], [1, 8, 9], False, 20.0, 0b10110),
    ([36], [2, 10, 16, 63], True, 250.0, 0b01001),      # aHash bits outside the top-left 2x2
]


@pytest.mark.parametrize("dpos,apos,gray,br,key", CRAFTED)
def test_bucket_keys_hand_computed(dpos: list[int], apos: list[int], gray: bool, br: float, key: int) -> None:
    d, a = _bits_to_int(dpos), _bits_to_int(apos)
    for conv in (lambda x: np.array([x], np.uint64), lambda x: np.array([_signed(x)], np.int64)):
        for cv in (0.0, 5.0, 500.0):  # color_variance plays no part: the stored is_gray decides
            p = tiny(1, dhash=conv(d), ahash=conv(a), is_gray=np.array([gray]), color_variance=np.array([cv]),
                     brightness=np.array([br]))
            assert int(bucket_keys(p)[0]) == key


def test_colour_bit_is_the_stored_is_gray() -> None:
    """A low-saturation colour frame (a white-flash night shot: color_variance far under
    smartdownsample's 100, is_gray 0) is in a colour bucket; a bucket means "gray" iff is_gray."""
    n = 64
    rng = np.random.default_rng(5)
    gray = rng.random(n) < 0.5
    p = tiny(n, is_gray=gray, color_variance=np.where(gray, 0.0, rng.uniform(1.0, 30.0, n)), seed=5)
    keys = bucket_keys(p)
    assert np.array_equal((keys >> 1 & 1) == 0, gray)
    assert [bucket_meaning(int(k)).startswith("gray / ") for k in keys] == gray.tolist()
    assert all(bucket_meaning(int(k)).startswith("colour / ") for k in keys[~gray])


def test_bucket_bits_follow_imagehash_positions() -> None:
    imagehash = pytest.importorskip("imagehash")
    rng = np.random.default_rng(2)
    for value in rng.integers(0, 2**64, 50, dtype=np.uint64):
        bits = imagehash.hex_to_hash(f"{int(value):016x}").hash.flatten()
        key = int(bucket_keys(tiny(1, dhash=np.array([value]), ahash=np.array([value]),
                                   is_gray=np.array([True]), brightness=np.array([0.0])))[0])
        assert key >> 4 & 1 == int(bits[27]) and key >> 3 & 1 == int(bits[36])
        assert key >> 2 & 1 == int(int(bits[0]) + int(bits[1]) + int(bits[8]) + int(bits[9]) >= 2)


def test_bucket_meaning() -> None:
    assert bucket_meaning(0b10000) == "gray / dark / structure 1-0 / top-left dark"
    assert bucket_meaning(31) == "colour / bright / structure 1-1 / top-left light"
    assert bucket_meaning(0b01010) == "colour / dark / structure 0-1 / top-left dark"
    assert bucket_meaning(np.int64(5)) == "gray / bright / structure 0-0 / top-left light"
    assert len({bucket_meaning(k) for k in range(32)}) == 32
    for bad in (-1, 32, 1.0, True, "3"):
        with pytest.raises(ValueError):
            bucket_meaning(bad)  # type: ignore[arg-type]


def _bucket_pool(sizes: list[int]) -> Pool:
    """One bucket per size: bucket b gets key b via the structure/colour/bright bits."""
    keys = np.repeat(np.arange(len(sizes)), sizes)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 2**64, len(keys), dtype=np.uint64) & np.uint64(~((1 << 36) | (1 << 27)) & (2**64 - 1))
    d = noise | (((keys >> 4) & 1).astype(np.uint64) << np.uint64(36)) | (((keys >> 3) & 1).astype(np.uint64) << np.uint64(27))
    a = np.where((keys >> 2) & 1, np.uint64(_bits_to_int([0, 1, 8, 9])), np.uint64(0)).astype(np.uint64)
    return tiny(len(keys), dhash=d, ahash=a, is_gray=((keys >> 1) & 1) == 0,
                brightness=np.where(keys & 1, 200.0, 50.0), sequence=np.arange(len(keys)))


@pytest.mark.parametrize("k", [1, 3, 6, 7, 20, 100, 1000, 1007, 1008])
def test_buckets_exact_and_distinct_with_tiny_buckets(k: int) -> None:
    p = _bucket_pool([1000, 1, 2, 1, 3, 1])  # one huge bucket and five tiny ones: 1008 images
    assert np.array_equal(np.bincount(bucket_keys(p)), [1000, 1, 2, 1, 3, 1])
    picks = pick(p, k, "buckets")
    assert len(picks) == min(k, p.size) and len(np.unique(picks)) == len(picks)
    covered, nonempty = buckets_covered(p, picks)
    assert covered == min(k, nonempty)  # phase 1: one from every bucket while the quota lasts


def test_buckets_more_requested_than_buckets() -> None:
    p = _bucket_pool([40] * 32)
    picks = pick(p, 100, "buckets")
    assert len(picks) == 100 and len(np.unique(picks)) == 100
    assert buckets_covered(p, picks) == (32, 32)
    assert np.bincount(bucket_keys(p)[picks]).max() - np.bincount(bucket_keys(p)[picks]).min() <= 1


def test_buckets_stride_in_natural_order() -> None:
    p = _bucket_pool([10])
    # phase 1: max(1, k // 1 bucket) = 2 images, by stride 10 // 2 = 5 through natural order
    assert np.array_equal(pick(p, 2, "buckets"), [0, 5])


# -- window -------------------------------------------------------------------------------------

def _window_reference(ph: np.ndarray, k: int, first: int | None, w: int, keep: list[int]) -> list[int]:
    """smartdownsample 0.2's loop, literally: farthest from the last w picks, lowest index on ties."""
    order = list(keep) or [first]
    while len(order) < k:
        win = order[-w:]
        best, best_i = -1, -1
        for cand in range(len(ph)):
            if cand in order:
                continue
            dist = min(popcount(int(ph[cand]) ^ int(ph[x])) for x in win)
            if dist > best:
                best, best_i = dist, cand
        order.append(best_i)
    return sorted(order)


@pytest.mark.parametrize("w", [1, 4, 100])
def test_window_matches_smartdownsample_loop(w: int) -> None:
    p = bursts(2, n_seq=30)
    for k in (5, 40):
        first = int(np.random.default_rng(3).integers(p.size))
        assert window_mod.window(p, k, seed=3, window_size=w).tolist() == _window_reference(p.phash, k, first, w, [])
        got = window_mod.window(p, k, seed=3, window_size=w, keep=np.array([4, 9]))
        assert got.tolist() == _window_reference(p.phash, k, None, w, [4, 9])


# -- bursts and coverage -------------------------------------------------------------------------

@pytest.mark.parametrize("k", [10, 60, 150, 199, 200])
def test_diverse_one_frame_per_burst_while_bursts_are_unpicked(pool: Pool, k: int) -> None:
    picks = pick(pool, k, "diverse")
    n_seq = len(np.unique(pool.sequence))
    assert len(np.unique(pool.sequence[picks])) == min(k, n_seq)


def test_diverse_every_burst_before_seconds(pool: Pool) -> None:
    n_seq = len(np.unique(pool.sequence))
    for k in (n_seq + 1, n_seq + 150, pool.size - 3):
        per = np.bincount(pool.sequence[pick(pool, k, "diverse")], minlength=n_seq)
        size = np.bincount(pool.sequence, minlength=n_seq)
        assert per.min() >= 1
        # level by level: no burst has j+1 picks while another that has more frames has fewer than j
        short = per < size
        assert per.max() <= per[short].min() + 1 if short.any() else True


def test_diverse_burst_rule_with_keep_and_unknown_sequences(pool: Pool) -> None:
    seq = pool.sequence.copy()
    seq[seq % 5 == 0] = -1          # unknown: each such image is its own burst
    p = Pool(pool.dhash, pool.ahash, pool.phash, pool.brightness, pool.color_variance, pool.is_gray, seq)
    burst = np.where(seq >= 0, seq, -1 - np.arange(len(seq)))
    keep = np.array([0, 1, 2, 40])    # may hold two frames of one burst
    picks = pick(p, 120, "diverse", keep=keep)
    new = np.setdiff1d(picks, keep)
    assert len(np.unique(burst[new])) == len(new)
    assert not set(burst[new].tolist()) & set(burst[keep].tolist())


def _random_coverage(p: Pool, k: int) -> np.ndarray:
    return np.array([coverage(p, pick(p, k, "random", seed=s)) for s in range(20)]).mean(axis=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diverse_covers_better_than_random(seed: int) -> None:
    p = archive(seed)
    for k, mean_ratio, max_ratio in ((30, 0.9, 0.97), (60, 0.9, 0.85)):
        rnd = _random_coverage(p, k)
        mean, mx = coverage(p, pick(p, k, "diverse", seed=seed))
        assert mean < mean_ratio * rnd[0] and mx < max_ratio * rnd[1]


def test_diverse_beats_random_on_plain_bursts(pool: Pool) -> None:
    for k in (40, 120):
        rnd = _random_coverage(pool, k)
        mean, mx = coverage(pool, pick(pool, k, "diverse"))
        assert mean < 0.95 * rnd[0] and mx <= rnd[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kcenter_largest_distance_below_random(seed: int) -> None:
    p = archive(seed)
    rnd = _random_coverage(p, 60)
    assert coverage(p, pick(p, 60, "kcenter"))[1] < 0.85 * rnd[1]


def test_kcenter_is_greedy_farthest_point_without_runs() -> None:
    p = bursts(4, n_seq=40)
    picks = kcenter_mod.kcenter(p, 25, eps=0)
    d = pairwise(p, np.arange(p.size))
    first = kcenter_mod.kcenter(p, 1, eps=0)
    order = [int(first[0])]
    m = d[order[0]].copy()
    while len(order) < 25:
        j = int(np.argmax(m))
        order.append(j)
        m = np.minimum(m, d[j])
    assert sorted(order) == picks.tolist()


def test_kcenter_runs_bound() -> None:
    """With runs, every image is within eps of its run's first image, which is a unit."""
    p = bursts(5)
    from indexer.methods.distance import codes
    leaders, lead_of, lead_dist = kcenter_mod.runs(codes(p), 16)
    assert len(leaders) < p.size and np.all(lead_dist <= 16)
    assert np.array_equal(np.unique(lead_of), leaders)
    idx = np.arange(p.size)
    assert np.array_equal(lead_dist, [distance(p, i, int(j)) for i, j in zip(idx, lead_of)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diverse_picks_do_not_repeat_each_other(seed: int) -> None:
    p = archive(seed)
    for k in (30, 150):
        rnd = np.mean([redundancy(p, pick(p, k, "random", seed=s)) for s in range(20)])
        assert redundancy(p, pick(p, k, "diverse")) <= min(0.02, rnd / 4)


# -- results unchanged: picks recorded before the select speed work (tests/select_reference.py) --

def test_picks_match_the_recorded_reference() -> None:
    import json
    from pathlib import Path

    import select_reference as ref

    want = json.loads(Path(ref.JSON).read_text())["methods"]
    got = {k: ref.digest(v) for k, v in ref.method_cases().items()}
    assert sorted(got) == sorted(want)
    assert [k for k in want if got[k] != want[k]] == []


def test_update_min_in_threads_is_the_same_as_in_one() -> None:
    dist_mod = importlib.import_module("indexer.methods.distance")
    p = tiny(150_000, seed=3)
    c = dist_mod.codes(p)
    out = []
    for threads in (1, 3):
        old = dist_mod.THREADS, dist_mod.PARALLEL_ROWS
        dist_mod.THREADS, dist_mod.PARALLEL_ROWS = threads, 1000
        try:
            m = np.full(p.size, 200, np.uint8)
            assign = np.full(p.size, -1, np.int32)
            for label, j in enumerate((5, 77_777, 149_999)):
                dist_mod.update_min(c, c.row(j), m, assign, label)
            out.append((m, assign))
        finally:
            dist_mod.THREADS, dist_mod.PARALLEL_ROWS = old
    assert np.array_equal(out[0][0], out[1][0]) and np.array_equal(out[0][1], out[1][1])
    assert out[0][0][77_777] == 0 and out[0][1][77_777] == 1


def _burst_groups(seed: int) -> tuple[Pool, np.ndarray]:
    """One-burst groups of 1-300 frames: near-identical frames (runs collapse), exact repeats
    (distance 0: the duplicate rule), frames that drift (runs split)."""
    rng = np.random.default_rng(seed)
    sizes = np.r_[rng.integers(1, 9, 60), 40, 3, 300, 2]  # 300 drifting frames: > 255 runs
    parts = []
    for g, n in enumerate(sizes):
        kind = g % 3
        base = rng.integers(0, 2**64, 3, dtype=np.uint64)
        h = np.repeat(base[None, :], n, axis=0)
        if kind == 1:
            h = _flip(rng, h, 1, 3)
        elif kind == 2:
            h = _flip(rng, h, 6, 14)
        b = np.full(n, rng.uniform(10, 240)) + (rng.normal(0, 4, n) if kind else 0)
        gray = np.full(n, bool(g % 4 == 0))
        parts.append((h, np.clip(b, 0, 255), gray, np.full(n, g)))
    h = np.concatenate([x[0] for x in parts])
    p = Pool(h[:, 0], h[:, 1], h[:, 2], np.concatenate([x[1] for x in parts]), np.zeros(len(h)),
             np.concatenate([x[2] for x in parts]), np.concatenate([x[3] for x in parts]))
    return p, np.r_[0, np.cumsum(sizes)[:-1]]


@pytest.mark.parametrize("method", ["diverse", "kcenter"])
@pytest.mark.parametrize("seed", [0, 1])
def test_pick_bursts_is_pick_per_group(method: str, seed: int) -> None:
    from indexer.methods import pick_bursts

    p, starts = _burst_groups(seed)
    rng = np.random.default_rng(seed + 10)
    bounds = np.r_[starts, p.size]
    keep = rng.random(p.size) < 0.08
    if seed == 0:
        keep[bounds[62]:bounds[63]] = False  # the 300-frame burst starts from its central run
    k = np.array([int(rng.integers(0, bounds[g + 1] - bounds[g] + 2)) + int(keep[bounds[g]:bounds[g + 1]].sum())
                  for g in range(len(starts))])
    want = []
    for g in range(len(starts)):
        s, e = int(bounds[g]), int(bounds[g + 1])
        sub = Pool(p.dhash[s:e], p.ahash[s:e], p.phash[s:e], p.brightness[s:e], p.color_variance[s:e],
                   p.is_gray[s:e], p.sequence[s:e])
        kk = np.flatnonzero(keep[s:e])
        want.append(s + pick(sub, int(k[g]), method, seed=g, keep=kk if len(kk) else None))
    got = pick_bursts(p, starts, k, keep, method)
    assert got.tolist() == np.sort(np.concatenate(want)).tolist()
