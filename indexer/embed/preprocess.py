"""How an image becomes a model's input: one reduced decode, the preset's resize, centre crop and
normalisation, NCHW float32. Pure: no database, no model.

Presets (torchvision's conventions: the short side is resized to `resize` keeping the aspect ratio,
the long side truncated to an integer; the centre crop's offset is rounded):

    dinov2    resize 256 bicubic, crop 224, ImageNet mean/std (facebookresearch/dinov2 eval transform)
    clip      resize 224 bicubic, crop 224, CLIP mean/std (open_clip / OpenAI CLIP, BioCLIP)
    imagenet  resize 256 bilinear, crop 224, ImageNet mean/std (timm / torchvision classifiers)

`--input-size N` sets the crop; the resize keeps the preset's ratio (256/224 for dinov2 and
imagenet, 1 for clip). JPEGs are decoded with `Image.draft()` at the smallest scale (1/8, 1/4,
1/2) whose short side stays >= the resize target; other formats are reduced by an integer factor
that keeps it so. EXIF orientation is not applied (as the scan does not).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# name: (resize for a 224 crop, interpolation, mean, std)
PRESETS: dict[str, tuple[int, str, tuple[float, ...], tuple[float, ...]]] = {
    "dinov2": (256, "bicubic", IMAGENET_MEAN, IMAGENET_STD),
    "clip": (224, "bicubic", CLIP_MEAN, CLIP_STD),
    "imagenet": (256, "bilinear", IMAGENET_MEAN, IMAGENET_STD),
}
DEFAULT_PRESET = "imagenet"
DEFAULT_SIZE = 224


@dataclass(frozen=True)
class Preprocess:
    """Resize the short side to `resize`, crop the centre `crop` x `crop`, scale to 0-1, subtract
    `mean` and divide by `std` per channel (R, G, B)."""

    preset: str
    resize: int
    crop: int
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def as_row(self) -> dict[str, Any]:
        """Columns of embedding_models."""
        return {"preset": self.preset, "resize": self.resize, "crop": self.crop, "interpolation": self.interpolation,
                "mean": json.dumps(list(self.mean)), "std": json.dumps(list(self.std))}


def make_preprocess(preset: str | None, input_size: int | None = None, mean: tuple[float, ...] | None = None,
                    std: tuple[float, ...] | None = None) -> Preprocess:
    """The preprocessing of a preset, with --input-size, --mean and --std applied. ValueError for
    bad values (the caller words it for its user)."""
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    resize, interpolation, pmean, pstd = PRESETS[name]
    crop = DEFAULT_SIZE if input_size is None else int(input_size)
    if not 8 <= crop <= 4096:
        raise ValueError(f"--input-size must be from 8 to 4096 pixels, not {crop}")
    resize = int(crop * resize / DEFAULT_SIZE)
    if (mean is None) != (std is None):
        raise ValueError("--mean and --std go together")
    if mean is not None and std is not None:
        if len(mean) != 3 or len(std) != 3:
            raise ValueError("--mean and --std take three numbers each: R,G,B")
        if min(std) <= 0:
            raise ValueError("--std values must be positive")
        pmean, pstd = tuple(mean), tuple(std)
    return Preprocess(name, resize, crop, interpolation, tuple(map(float, pmean)),  # type: ignore[arg-type]
                      tuple(map(float, pstd)))  # type: ignore[arg-type]


def draft_scale(width: int, height: int, target: int) -> int:
    """The largest of 8, 4, 2 (else 1) that keeps the short side >= target."""
    for f in (8, 4, 2):
        if min(width, height) // f >= target:
            return f
    return 1


def reduced_image(im: Any, target: int) -> Any:
    """Decode an opened Pillow image at the smallest scale whose short side is >= target."""
    w, h = im.size
    factor = draft_scale(w, h, target)
    if im.format == "JPEG":
        if factor > 1:
            im.draft(im.mode, (max(1, -(-w // factor)), max(1, -(-h // factor))))
        im.load()
        return im
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    im.load()
    if factor > 1 and im.mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return im.reduce(factor)
    return im


def to_rgb(im: Any) -> Any:
    """RGB 8-bit from any mode Pillow reads (16-bit gray scaled down, alpha dropped)."""
    import numpy as np
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        im = Image.fromarray(np.clip(a / top * 255.0, 0, 255).astype(np.uint8), "L")
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA")
    return im if im.mode == "RGB" else im.convert("RGB")


def prepare(im: Any, pp: Preprocess) -> Any:
    """An RGB Pillow image -> float32 array (3, crop, crop), normalised."""
    import numpy as np
    from PIL import Image

    w, h = im.size
    if w <= h:
        size = (pp.resize, max(1, int(pp.resize * h / w)))
    else:
        size = (max(1, int(pp.resize * w / h)), pp.resize)
    method = Image.Resampling.BICUBIC if pp.interpolation == "bicubic" else Image.Resampling.BILINEAR
    if im.size != size:
        im = im.resize(size, method)
    left = int(round((size[0] - pp.crop) / 2.0))
    top = int(round((size[1] - pp.crop) / 2.0))
    if left < 0 or top < 0:  # smaller than the crop (only when resize < crop): pad with black, as torchvision
        canvas = Image.new("RGB", (max(size[0], pp.crop), max(size[1], pp.crop)))
        canvas.paste(im, (max(0, -left), max(0, -top)))
        im, left, top = canvas, max(0, left), max(0, top)
    im = im.crop((left, top, left + pp.crop, top + pp.crop))
    # (x / 255 - mean) / std as one multiply-add per channel plane, written straight into CHW
    scale = 1.0 / (255.0 * np.asarray(pp.std, np.float64))
    shift = np.asarray(pp.mean, np.float64) / np.asarray(pp.std, np.float64)
    hwc = np.asarray(im)
    out = np.empty((3, pp.crop, pp.crop), np.float32)
    for c in range(3):
        np.multiply(hwc[:, :, c], np.float32(scale[c]), out=out[c], casting="unsafe")
        out[c] -= np.float32(shift[c])
    return out


def load_input(fp: Any, pp: Preprocess) -> Any:
    """Open, reduce-decode and prepare one image (a path or a binary file). Raises on bad input."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(fp) as im:
            reduced = reduced_image(im, pp.resize)
            return prepare(to_rgb(reduced), pp)
