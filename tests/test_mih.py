"""Multi-index hashing finds exactly the pairs brute force finds, at every radius, sub-quadratically."""
from __future__ import annotations

import numpy as np
import pytest

from indexer.methods import mih


def _hashes(n: int, seed: int) -> np.ndarray:
    """Random 64-bit hashes, a third of them in clusters of near copies (0-10 bits from a centre)."""
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    centres = np.repeat(rng.choice(n, n // 15, replace=False), 4)
    flips = np.zeros(len(centres), np.uint64)
    for _ in range(10):  # 0-10 random bits flipped per copy (a bit may be drawn twice)
        bit = np.uint64(1) << rng.integers(0, 64, len(centres)).astype(np.uint64)
        flips ^= np.where(rng.random(len(centres)) < 0.5, bit, np.uint64(0))
    h[rng.choice(n, len(centres), replace=False)] = h[centres] ^ flips
    h[rng.choice(n, 50, replace=False)] = h[0]  # a bucket of 51 identical hashes
    return h


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, dict[tuple[int, int], int]]:
    """20,000 hashes and every pair within 12 bits, by brute force (computed once)."""
    h = _hashes(20_000, 7)
    i, j, d = mih.brute_pairs(h, 12)
    return h, {(a, b): c for a, b, c in zip(i.tolist(), j.tolist(), d.tolist())}


@pytest.mark.parametrize("r", [0, 1, 2, 4, 6, 8, 10, 12])
def test_self_pairs_identical_to_brute_force(data: tuple, r: int) -> None:
    h, ref = data
    want = sorted((a, b, d) for (a, b), d in ref.items() if d <= r)
    i, j, d = mih.self_pairs(h, r)
    assert list(zip(i.tolist(), j.tolist(), d.tolist())) == want
    assert mih.plan(len(h) // 2, len(h), r) > 0  # the search itself is not brute force


@pytest.mark.parametrize("m", [3, 4, 6, 9])
def test_any_number_of_blocks_is_exact(data: tuple, m: int) -> None:
    h, ref = data
    i, j, _ = mih.self_pairs(h[:5000], 8, m=m)
    want = sorted((a, b) for (a, b), d in ref.items() if d <= 8 and b < 5000)
    assert list(zip(i.tolist(), j.tolist())) == want


@pytest.fixture(scope="module")
def cross(data: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, _ = data
    a, b = h[:2000], h[2000:]
    return a, b, np.bitwise_count(a[:, None] ^ b[None, :])


@pytest.mark.parametrize("r", [0, 3, 8, 12])
def test_cross_pairs_identical_to_brute_force(cross: tuple, r: int) -> None:
    a, b, x = cross
    i, j, d = mih.cross_pairs(a, b, r)
    wi, wj = np.nonzero(x <= r)
    assert np.array_equal(i, wi) and np.array_equal(j, wj)
    assert np.array_equal(d, x[wi, wj])


def test_signed_input_as_sqlite_stores_it() -> None:
    h = np.array([-1, 0x7FFFFFFFFFFFFFFF, -2], dtype=np.int64)  # ff..ff, 7f..ff, ff..fe
    i, j, d = mih.self_pairs(h, 1)
    assert list(zip(i.tolist(), j.tolist(), d.tolist())) == [(0, 1, 1), (0, 2, 1)]


def test_nearest_orders_by_distance_then_position() -> None:
    base = np.array([0b1111, 0b0, 0b1, 0b11, 0b1, 0xFFFF], dtype=np.uint64)
    rows, d = mih.nearest(0, base, 4)
    assert rows.tolist() == [1, 2, 4, 3] and d.tolist() == [0, 1, 1, 2]
    rows, d = mih.nearest(0, base, 10, r=2)
    assert rows.tolist() == [1, 2, 4, 3]


@pytest.mark.parametrize("r", [-1, 65, 2.5, True])
def test_bad_radius(r: object) -> None:
    with pytest.raises(ValueError, match="radius"):
        mih.self_pairs(np.zeros(3, np.uint64), r)  # type: ignore[arg-type]


def test_tiny_inputs() -> None:
    assert all(len(x) == 0 for x in mih.self_pairs(np.array([], np.uint64), 3))
    assert all(len(x) == 0 for x in mih.self_pairs(np.array([5], np.uint64), 3))
    assert all(len(x) == 0 for x in mih.cross_pairs(np.array([], np.uint64), np.array([1], np.uint64), 3))


def test_max_pairs_stops_early() -> None:
    h = np.zeros(100, np.uint64)  # 4,950 identical pairs
    with pytest.raises(mih.TooManyPairs):
        mih.self_pairs(h, 0, max_pairs=1000)
    assert len(mih.self_pairs(h, 0, max_pairs=10_000)[0]) == 4950
