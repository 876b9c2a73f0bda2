"""SpeciesNet predictions JSON (google/cameratrapai, README "Output format").

    {"predictions": [{"filepath": "...", "prediction": "<uuid>;<class>;<order>;<family>;<genus>;
                      <species>;<common name>", "prediction_score": 0.9, "prediction_source": "...",
                      "detections": [{"category": "1", "label": "animal", "conf": 0.9,
                                      "bbox": [x, y, w, h]}], "failures": [...]}]}

The label is the common name (or --taxon-level), its score the prediction_score; boxes are stored.
"""
from __future__ import annotations

from typing import Any, TextIO

from ..errors import LabelError
from .common import Collector, check_bbox, number
from .jsonstream import stream_object

LEVELS = ("common", "species", "genus", "family", "order", "class")
_INDEX = {"class": 1, "order": 2, "family": 3, "genus": 4, "species": 5, "common": 6}
MD_LABELS = {"1": "animal", "2": "person", "3": "vehicle"}


def taxon(prediction: str, level: str) -> str:
    """The label at `level` of a 7-part taxonomy string; 'blank', 'human', 'vehicle', 'animal'
    (no finer level) stay what they are."""
    parts = prediction.split(";")
    if len(parts) < 7:
        return prediction.strip()
    common = parts[6].strip()
    if level == "common" or not any(p.strip() for p in parts[1:6]):
        return common
    if level == "species":
        genus, species = parts[4].strip(), parts[5].strip()
        return f"{genus} {species}" if genus and species else (genus or parts[3].strip() or common)
    return parts[_INDEX[level]].strip() or common


def read(f: TextIO, col: Collector, threshold: float, level: str, name: str) -> dict[str, Any]:
    if level not in LEVELS:
        raise LabelError(f"--taxon-level must be one of {', '.join(LEVELS)}, got {level!r}")
    meta: dict[str, Any] = {}
    n = 0
    for key, p, item in stream_object(f, frozenset({"predictions"})):
        if not item:
            if key == "predictions":
                raise LabelError(f"{name}: 'predictions' is not a list: not SpeciesNet output")
            meta[key] = p
            continue
        n += 1
        if not isinstance(p, dict) or "filepath" not in p:
            raise LabelError(f"{name}: prediction {n} has no 'filepath': not SpeciesNet output")
        i = col.image(p["filepath"], f"prediction {n}")
        if i is None:
            continue
        if p.get("failures") and not p.get("prediction"):
            col.failures.append(f"{p['filepath']}: {', '.join(map(str, p['failures']))}")
            col.meta(i, failure=", ".join(map(str, p["failures"])))
            continue
        for k, d in enumerate(p.get("detections") or [], 1):
            conf, bbox = number(d.get("conf")), check_bbox(d.get("bbox")) if isinstance(d, dict) else None
            if bbox is None or conf is None:
                col.bad.append(f"{p['filepath']}: detection {k} has no box inside [0, 1] or no confidence")
                continue
            col.box(i, d.get("label") or MD_LABELS.get(str(d.get("category")), str(d.get("category"))), conf, bbox)
        pred = p.get("prediction")
        if isinstance(pred, str) and pred.strip():
            label = taxon(pred, level)
            col.set_labels(i, [(label, number(p.get("prediction_score")))])
            extra = {k: p[k] for k in ("prediction", "prediction_source", "model_version") if k in p}
            col.meta(i, is_empty=1 if label in ("blank", "empty") else 0, extra=extra)
        col.flush()
    if n == 0 and "predictions" not in meta:
        raise LabelError(f"{name}: no 'predictions' list: not SpeciesNet output")
    meta.pop("predictions", None)
    return meta
