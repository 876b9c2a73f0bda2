"""The three hash grids (9x8 dHash, 8x8 aHash, 32x32 pHash) of a grayscale draft at once, exactly
as Pillow's LANCZOS resize gives them, as matrix products. Used by indexer.features."""
from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image

# ImageHash resizes with Pillow's LANCZOS, in C but one tap at a time: ~0.3 ms per grid on a
# 240x135 draft, a third of the feature work. The same fixed-point arithmetic as matrix products
# (libImaging/Resample.c: its weights, its rounding after each pass, its pass order) gives the
# same bytes in ~0.1 ms for all three: every product and sum is an integer below 2**53, exact in
# float64 whatever order BLAS adds in. A plan is trusted only after it gave Pillow's own grids on
# an image of its size and on a noise probe of that size; a size seen once, or a Pillow that
# resizes otherwise, is resized by Pillow as before.

HASH_GRIDS = ((9, 8), (8, 8), (32, 32))  # dhash, ahash, phash
_PRECISION_BITS = 22  # Resample.c: 32 - 8 - 2
# OpenBLAS runs a product of m*n*k <= 65536 * 4 on the calling thread; a larger one wakes its
# thread pool, which spins on the cores the other workers decode on. Products are cut into blocks
# below that, unless OpenBLAS was started with one thread (~60 us an image less).
_BLAS_ONE_THREAD = 1 << 18
_BLAS_THREADED = os.environ.get("OPENBLAS_NUM_THREADS") != "1"


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    return _sinc(x) * _sinc(x / 3) if -3.0 <= x < 3.0 else 0.0


def lanczos_weights(in_size: int, out_size: int) -> np.ndarray:
    """Pillow's fixed-point LANCZOS weights for one axis (precompute_coeffs, then
    normalize_coeffs_8bpc), as an (out_size, in_size) matrix: row i weighs output pixel i."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 3.0 * filterscale
    inv = 1.0 / filterscale
    one = float(1 << _PRECISION_BITS)
    m = np.zeros((out_size, in_size))
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        n = min(int(center + support + 0.5), in_size) - xmin
        w = [_lanczos((x + xmin - center + 0.5) * inv) for x in range(n)]
        ww = 0.0
        for v in w:  # in C's order
            ww += v
        for x, v in enumerate(w):
            k = v / ww if ww != 0.0 else v
            m[xx, xmin + x] = int(k * one - 0.5) if k < 0 else int(k * one + 0.5)
    return m


def _clip8(a: np.ndarray) -> np.ndarray:
    """Resample.c's clip8 of fixed-point sums, with its rounding offset, in place."""
    a += 1 << (_PRECISION_BITS - 1)
    a *= 1.0 / (1 << _PRECISION_BITS)
    np.floor(a, out=a)
    return np.clip(a, 0, 255, out=a)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b in blocks of rows that BLAS multiplies on this thread."""
    rows = max(1, _BLAS_ONE_THREAD // (a.shape[1] * b.shape[1]))
    if a.shape[0] <= rows or not _BLAS_THREADED:
        return a @ b
    out = np.empty((a.shape[0], b.shape[1]))
    for i in range(0, a.shape[0], rows):
        np.matmul(a[i:i + rows], b, out=out[i:i + rows])
    return out


class HashPlan:
    """The three hash grids of one input size as matrix products.

    Pillow resizes each axis in turn, rounding to 8 bits in between, and skips an axis that
    keeps its size; Pillow >= 13 goes down first when the height shrinks more than twice as much
    as the width, before that always across first. `orders` says, per grid, across first (True)
    or not. The grids resized across first share one product across (and the 9x8 and 8x8 ones
    one product down)."""

    def __init__(self, width: int, height: int, orders: tuple[bool, ...]) -> None:
        self.size, self.orders = (width, height), orders
        across = [lanczos_weights(width, w).T if w != width else None for w, _ in HASH_GRIDS]
        down = [lanczos_weights(height, h) if h != height else None for _, h in HASH_GRIDS]
        fused = [i for i in range(len(HASH_GRIDS)) if orders[i] and across[i] is not None and down[i] is not None]
        self.across = np.ascontiguousarray(np.concatenate([across[i] for i in fused], axis=1)) if fused else None
        # (first column, last column, weights down, the grids and their widths) per height
        self.groups: list[tuple[int, int, np.ndarray, list[tuple[int, int]]]] = []
        col = 0
        for i in fused:
            w, h = HASH_GRIDS[i]
            if self.groups and self.groups[-1][2].shape[0] == h:
                first, _, weights, grids = self.groups[-1]
                self.groups[-1] = (first, col + w, weights, [*grids, (i, w)])
            else:
                self.groups.append((col, col + w, down[i], [(i, w)]))  # type: ignore[arg-type]
            col += w
        self.alone = [(i, across[i], down[i], orders[i]) for i in range(len(HASH_GRIDS)) if i not in fused]

    @staticmethod
    def pillow_orders(width: int, height: int) -> tuple[bool, ...]:
        """Pillow 13's pass order for each grid (Resample.c, ImagingResampleInner)."""
        return tuple(not (height - h > 0 and height - h > (width - w) * 2) for w, h in HASH_GRIDS)

    def grids(self, a: np.ndarray) -> tuple[np.ndarray, ...]:
        """(9x8, 8x8, 32x32) from the float64 pixels of an 8-bit image of the plan's size."""
        out: list[np.ndarray] = [a] * len(HASH_GRIDS)
        if self.across is not None:
            t = _clip8(_matmul(a, self.across))
            for first, last, weights, grids in self.groups:
                both = _clip8(weights @ t[:, first:last])
                col = 0
                for i, w in grids:
                    out[i] = both[:, col:col + w]
                    col += w
        for i, across, down, across_first in self.alone:
            g = a
            if across_first and across is not None:
                g = _clip8(_matmul(g, across))
            if down is not None:
                g = _clip8(_matmul(down, g))
            if not across_first and across is not None:
                g = _clip8(_matmul(g, across))
            out[i] = g
        return tuple(out)


def _pillow_grids(gray: Image.Image) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(gray.resize(s, Image.Resampling.LANCZOS)) for s in HASH_GRIDS)


def make_hash_plan(gray: Image.Image, a: np.ndarray, want: tuple[np.ndarray, ...]) -> HashPlan | None:
    """A plan for gray's size that gives `want` (Pillow's grids of gray) and Pillow's grids of a
    noise probe of that size: in Pillow 13's pass orders, else in older Pillow's (always across
    first); None if neither does (a Pillow that resizes otherwise keeps resizing)."""
    width, height = gray.size
    probe = np.random.default_rng(width * 65536 + height).integers(0, 256, (height, width), dtype=np.uint8)
    checks = [(a, want), (probe.astype(np.float64), _pillow_grids(Image.fromarray(probe, "L")))]
    newer = HashPlan.pillow_orders(width, height)
    for orders in dict.fromkeys([newer, (True,) * len(HASH_GRIDS)]):
        plan = HashPlan(width, height, orders)
        if all(all(np.array_equal(g, w) for g, w in zip(plan.grids(x), ws)) for x, ws in checks):
            return plan
    return None


_plans: dict[tuple[int, int], HashPlan | None] = {}
_seen_once: set[tuple[int, int]] = set()


def hash_grids(gray: Image.Image, a: np.ndarray) -> tuple[np.ndarray, ...]:
    """The 9x8, 8x8 and 32x32 LANCZOS grids of an L image (a: its pixels as float64), exactly
    as gray.resize(size, LANCZOS) gives them: by a checked plan from the second image of a size
    on (the first one pays for nothing it may not need again), else by Pillow."""
    key = gray.size
    plan = _plans.get(key)
    if plan is not None:
        return plan.grids(a)
    grids = _pillow_grids(gray)
    if key not in _plans:
        if key in _seen_once:
            if len(_plans) >= 64:
                _plans.clear()
            _plans[key] = make_hash_plan(gray, a, grids)
        else:
            if len(_seen_once) >= 4096:
                _seen_once.clear()
            _seen_once.add(key)
    return grids
