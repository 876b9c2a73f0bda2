"""How close our reduced-decode hashes are to ImageHash's on the full image (the README's figures).

We hash a DCT-reduced decode (JPEG draft at 1/2..1/8 scale), ImageHash the full decode, so a
few bits may differ. The bounds below are what the README promises; `pytest -s` prints the table.
"""
from __future__ import annotations

from pathlib import Path

import imagehash
from PIL import Image

from indexer.features import IMAGE_EXTENSIONS, features_from_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "archive"

# hash name: (our Features attribute, ImageHash function, bound on the mean Hamming distance)
HASHES = {
    "dHash": ("dhash", imagehash.dhash, 1.5),
    "aHash": ("ahash", imagehash.average_hash, 1.0),
    "pHash": ("phash", imagehash.phash, 1.0),
}
MAX_BITS = 6


def images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def distances(paths: list[Path]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {name: [] for name in HASHES}
    for path in paths:
        ours = features_from_file(path)
        with Image.open(path) as im:
            im.load()
            for name, (attr, func, _) in HASHES.items():
                ref = int(str(func(im)), 16)
                out[name].append(bin(ref ^ (getattr(ours, attr) & (2 ** 64 - 1))).count("1"))
    return out


def check(label: str, paths: list[Path]) -> None:
    assert paths, f"no images found for {label}"
    d = distances(paths)
    print(f"\nHamming distance to ImageHash on the full image, {label} ({len(paths)} images):")
    print(f"  {'hash':6} {'mean':>6} {'max':>4}  identical")
    for name, values in d.items():
        print(f"  {name:6} {sum(values) / len(values):6.2f} {max(values):4d}  {values.count(0)}/{len(values)}")
    for name, values in d.items():
        mean_bound = HASHES[name][2]
        assert sum(values) / len(values) <= mean_bound, f"{name}: mean distance {sum(values) / len(values):.2f}"
        assert max(values) <= MAX_BITS, f"{name}: max distance {max(values)}"


def test_agreement_on_example_archive():
    paths = images_under(EXAMPLES)
    assert len(paths) >= 40  # the generated example archive ships with the repo
    check("examples/archive", paths)


def test_agreement_on_shared_samples(shared_samples):
    check("camtrap-samples (ENA24 + Reconyx burst)", images_under(shared_samples))


def test_hashes_differ_from_imagehash_by_reduction_only(tmp_path):
    """Sanity for the measure itself: a different image is far away, the same pixels are at 0."""
    paths = images_under(EXAMPLES)
    a, b = paths[0], paths[-1]
    with Image.open(a) as im_a:
        ref_a = int(str(imagehash.dhash(im_a)), 16)
    other = features_from_file(b).dhash & (2 ** 64 - 1)
    assert bin(ref_a ^ other).count("1") > MAX_BITS
    small = tmp_path / "small.png"
    with Image.open(a) as im:
        im.convert("RGB").resize((120, 90)).save(small)
    assert distances([small]) == {name: [0] for name in HASHES}

