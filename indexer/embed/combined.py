"""scan --embed: a file's features and its model input from one read and one decode.

A JPEG is decoded once with `draft()` at the embedding's scale (short side >= the preset's
resize); its features are measured on that image reduced (box filter) to the scale the scan's
own decode would have used (short side >= 64), which is what the DCT-domain scaling computes too,
so the hashes agree with a plain scan's to a bit or two (tests/test_embed_scan.py). Other formats
are loaded once and reduced twice, exactly as the scan reduces them.
"""
from __future__ import annotations

import warnings
from typing import Any

from ..records import Features, ImageResult, WorkItem
from .preprocess import Preprocess, draft_scale, prepare, reduced_image, to_rgb


def decode_both(item: WorkItem, pp: Preprocess) -> tuple[ImageResult, Any]:
    """(the scan's ImageResult, the prepared model input or None when the file failed)."""
    from ..features import describe_error
    from .files import open_image

    got = open_image(item.path)
    if got.fh is None:
        return ImageResult(item, None, got.error, *got.stamp, vanished=got.vanished), None
    try:
        with got.fh as fh:
            features, array = _both(fh, pp)
    except Exception as exc:  # any decoder error is this file's failure, not the run's
        return ImageResult(item, None, describe_error(exc), *got.stamp), None
    return ImageResult(item, features, None, *got.stamp), array


def _both(fh: Any, pp: Preprocess) -> tuple[Features, Any]:
    from PIL import Image

    from ..features import MIN_SIDE, exif_fields, reduce_decode

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(fh) as im:
            fmt, mode, (width, height) = im.format or "", im.mode, im.size
            exif = im.getexif()
            if fmt == "JPEG":
                big = reduced_image(im, pp.resize)
                step = draft_scale(width, height, MIN_SIDE) // draft_scale(width, height, pp.resize)
                small = big.reduce(step) if step > 1 else big
            else:
                im.load()
                big = reduced_image(im.copy(), pp.resize)
                small = reduce_decode(im)
            array = prepare(to_rgb(big), pp)
            features = measure(small, fmt=fmt, mode=mode, width=width, height=height, exif=exif_fields(exif))
    return features, array


def measure(reduced: Any, *, fmt: str, mode: str, width: int, height: int,
            exif: tuple[str | None, str | None, str | None]) -> Features:
    """The scan's features of an already reduced image (features._measure, from public parts)."""
    import numpy as np

    from ..features import SOURCE_DRAFT, ahash, color_stats, dhash, phash, sharpness, to_gray_and_rgb

    gray, rgb = to_gray_and_rgb(reduced)
    color_variance, is_gray = color_stats(rgb)
    return Features(format=fmt, mode=mode, width=width, height=height, dhash=dhash(gray), ahash=ahash(gray),
                    phash=phash(gray), brightness=round(float(np.asarray(gray).mean()), 3),
                    color_variance=round(color_variance, 3), is_gray=bool(is_gray), sharpness=round(sharpness(gray), 3),
                    captured_at=exif[0], camera_make=exif[1], camera_model=exif[2], features_source=SOURCE_DRAFT)
