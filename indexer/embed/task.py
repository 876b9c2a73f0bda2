"""What a worker process runs: decode and prepare each image, run the model in batches, and
return L2-normalised float16 vectors (as bytes) or the reason an image failed.

Picklable and importable by name (the pool spawns its workers): `embed_many(items, spec)` and
`extract_and_embed(items, spec)` (scan --embed: features and vector from one decode). The
session is made once per worker process and model, with `spec.threads` intra-op threads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..records import ImageResult, WorkItem
from . import EmbedError
from .preprocess import Preprocess

CHANGED = "changed since it was indexed (run indexer scan first)"


@dataclass(frozen=True)
class EmbedSpec:
    """Everything a worker needs to embed: the model file and how to feed it."""

    model_path: str
    sha256: str
    input_name: str
    output_name: str
    pp: Preprocess
    batch: int = 16
    threads: int = 1


@dataclass(frozen=True)
class EmbedItem:
    """An indexed image to embed: its row, where it is (its root, as `--worker-root` maps roots for
    Dask workers, and the path below it), and the stat the index holds for it."""

    image_id: int
    root: str
    rel_path: str
    size: int
    mtime_ns: int

    @property
    def path(self) -> str:
        return f"{self.root}/{self.rel_path}"


@dataclass(frozen=True)
class EmbedResult:
    item: EmbedItem
    vector: bytes | None         # float16 little-endian, L2 norm 1
    error: str | None            # why it failed (stored)
    skipped: str | None = None   # why it was not tried (not stored: gone, or changed since the scan)


@dataclass(frozen=True)
class ScanEmbedResult(ImageResult):
    """scan --embed: an ImageResult and the image's vector from the same decode."""

    vector: bytes | None = field(default=None)
    embed_error: str | None = field(default=None)


_SESSIONS: dict[tuple[str, str, int], Any] = {}


def _session(spec: EmbedSpec) -> Any:
    key = (spec.model_path, spec.sha256, spec.threads)
    if key not in _SESSIONS:
        from .model import session
        _SESSIONS.clear()  # one model per worker at a time
        _SESSIONS[key] = session(spec.model_path, spec.threads)
    return _SESSIONS[key]


def warm_up(spec: EmbedSpec) -> int:
    """A worker's first task: import the decoder and make the model's session (~0.5 s) while the
    parent lists the images to embed. A model that fails here fails again on the first batch,
    which reports it."""
    import os

    import numpy  # noqa: F401
    from PIL import Image  # noqa: F401
    try:
        _session(spec)
    except Exception:  # noqa: BLE001
        pass
    return os.getpid()


def embed_many(items: list[EmbedItem], spec: EmbedSpec) -> list[EmbedResult]:
    """Worker entry point: one result per item, in order; never raises for a bad image."""
    arrays: list[Any] = []
    out: list[EmbedResult | None] = []
    for item in items:
        arr, failed = _read(item, spec.pp)
        out.append(failed)
        if failed is None:
            arrays.append(arr)
    vectors = infer(spec, arrays)
    it = iter(vectors)
    return [r if r is not None else _vector_result(item, next(it)) for item, r in zip(items, out)]


def _vector_result(item: EmbedItem, v: tuple[bytes | None, str | None]) -> EmbedResult:
    return EmbedResult(item, v[0], v[1])


def _read(item: EmbedItem, pp: Preprocess) -> tuple[Any, EmbedResult | None]:
    from ..features import describe_error
    from .files import open_image
    from .preprocess import load_input

    got = open_image(item.path)
    if got.vanished:
        return None, EmbedResult(item, None, None, "file vanished (run indexer scan)")
    if got.fh is None and got.st is None:
        return None, EmbedResult(item, None, got.error)
    if got.fh is None or got.stamp[:2] != (item.size, item.mtime_ns):
        if got.fh is not None:
            got.fh.close()
        return None, EmbedResult(item, None, None, CHANGED)
    try:
        with got.fh as fh:
            return load_input(fh, pp), None
    except Exception as exc:  # any decoder error is this image's failure
        return None, EmbedResult(item, None, describe_error(exc))


def infer(spec: EmbedSpec, arrays: list[Any]) -> list[tuple[bytes | None, str | None]]:
    """(vector bytes, None) or (None, error) per prepared array, run `spec.batch` at a time. A
    batch that fails is run one image at a time, so only the image at fault fails."""
    import numpy as np

    out: list[tuple[bytes | None, str | None]] = []
    for start in range(0, len(arrays), spec.batch):
        part = arrays[start:start + spec.batch]
        try:
            out += [(v, None) for v in _run(spec, np.stack(part))]
        except EmbedFault:
            raise
        except Exception:  # noqa: BLE001: find the image at fault
            for a in part:
                try:
                    out += [(_run(spec, a[None])[0], None)]
                except EmbedFault:
                    raise
                except Exception as exc:  # noqa: BLE001
                    out.append((None, "the model failed on this image: " + " ".join(str(exc).split())[:200]))
    return out


class EmbedFault(EmbedError):
    """The model's output is not a vector per image (checked in the parent first; kept as a guard)."""


def _run(spec: EmbedSpec, batch: Any) -> list[bytes]:
    import numpy as np

    y = _session(spec).run([spec.output_name], {spec.input_name: batch})[0]
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 4 and y.shape[2:] == (1, 1):
        y = y[:, :, 0, 0]
    if y.ndim != 2 or y.shape[0] != len(batch):
        raise EmbedFault(f"the model's output {spec.output_name} has shape {list(y.shape)} for {len(batch)} images")
    return [v.tobytes() for v in normalise(y)]


def normalise(y: Any) -> Any:
    """Rows scaled to unit L2 norm, as little-endian float16 (a zero row stays zero)."""
    import numpy as np

    norm = np.linalg.norm(y, axis=1, keepdims=True)
    y = np.where(norm > 0, y / np.maximum(norm, 1e-30), 0.0)
    return y.astype("<f2")


def extract_and_embed(items: list[WorkItem], spec: EmbedSpec) -> list[ScanEmbedResult]:
    """scan --embed: features and the vector of each file from one read and one decode."""
    from .combined import decode_both

    got = [decode_both(item, spec.pp) for item in items]
    arrays = [a for _, a in got if a is not None]
    vectors = iter(infer(spec, arrays))
    out = []
    for result, a in got:
        vec, err = next(vectors) if a is not None else (None, None)
        out.append(ScanEmbedResult(**{f: getattr(result, f) for f in result.__dataclass_fields__},
                                   vector=vec, embed_error=err))
    return out
