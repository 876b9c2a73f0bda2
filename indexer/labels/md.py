"""MegaDetector batch output (format 1.x, https://lila.science/megadetector-output-format).

    {"info": {"format_version": "1.4", ...}, "detection_categories": {"1": "animal", ...},
     "classification_categories": {"0": "fox", ...},
     "images": [{"file": "a/b.jpg", "detections": [{"category": "1", "conf": 0.93,
                 "bbox": [x, y, w, h] (normalized, origin top left),
                 "classifications": [["0", 0.9], ...]}]} | {"file": ..., "failure": "..."}]}

Every box is stored. The image's labels: for each box at or above the threshold, most confident
first, its top classification where it has one, else its category; `empty` when none is. The
stream is read element by element, so a million images fit in little memory.
"""
from __future__ import annotations

from typing import Any, TextIO

from ..errors import LabelError
from ..names import to_text
from .common import Collector, check_bbox, number
from .jsonstream import stream_object

DEFAULT_THRESHOLD = 0.2  # MegaDetector's docs: a reasonable default for MDv5
MD_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}


def read(f: TextIO, col: Collector, threshold: float, name: str) -> dict[str, Any]:
    """Read the file into `col`; returns what export needs again (info, category maps)."""
    meta: dict[str, Any] = {}
    det_cats: dict[str, str] | None = None
    cls_cats: dict[str, str] = {}
    waiting: list[tuple[int, dict[str, Any]]] = []  # images listed before the category maps
    n = 0
    for key, value, item in stream_object(f, frozenset({"images"})):
        if not item:
            if key == "images":
                raise LabelError(f"{name}: 'images' is not a list: not MegaDetector batch output")
            meta[key] = value
            if key == "detection_categories":
                det_cats = _categories(value, name, key)
            elif key == "classification_categories":
                cls_cats = _categories(value, name, key)
            continue
        n += 1
        if not isinstance(value, dict) or "file" not in value:
            raise LabelError(f"{name}: image {n} has no 'file': not MegaDetector batch output "
                             "(give --format if this is another format)")
        if det_cats is None:
            waiting.append((n, value))
            continue
        if waiting:
            _flush_waiting(waiting, col, threshold, det_cats, cls_cats)
        _image(n, value, col, threshold, det_cats, cls_cats)
        col.flush()
    if "info" not in meta and "detection_categories" not in meta and n == 0:
        raise LabelError(f"{name}: no 'images', 'info' or 'detection_categories': not MegaDetector batch output")
    _flush_waiting(waiting, col, threshold, det_cats if det_cats is not None else dict(MD_CATEGORIES), cls_cats)
    meta.pop("images", None)
    meta.setdefault("detection_categories", det_cats or dict(MD_CATEGORIES))
    return meta


def _flush_waiting(waiting: list[tuple[int, dict[str, Any]]], col: Collector, threshold: float,
                   det_cats: dict[str, str], cls_cats: dict[str, str]) -> None:
    for n, value in waiting:
        _image(n, value, col, threshold, det_cats, cls_cats)
    waiting.clear()


def _categories(value: Any, name: str, key: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise LabelError(f"{name}: '{key}' is not a map of ids to names")
    return {str(k): to_text(v).strip() for k, v in value.items()}  # clean once: the hot loop trusts them


def _image(n: int, im: dict[str, Any], col: Collector, threshold: float, det_cats: dict[str, str],
           cls_cats: dict[str, str]) -> None:
    i = col.image(im.get("file"), f"image {n}")
    if i is None:
        return
    if im.get("failure"):
        col.failures.append(f"{im['file']}: {im['failure']}")
        col.meta(i, failure=str(im["failure"]))
        return
    dets = im.get("detections") or []
    if not isinstance(dets, list):
        col.bad.append(f"{im['file']}: 'detections' is not a list")
        dets = []
    above: list[tuple[float, str, float | None]] = []
    for k, d in enumerate(dets, 1):
        if not isinstance(d, dict):
            col.bad.append(f"{im['file']}: detection {k} is not an object")
            continue
        cat = det_cats.get(d.get("category") if type(d.get("category")) is str else str(d.get("category")))
        conf = d.get("conf")
        if type(conf) is not float:
            conf = number(conf)
        if cat is None:
            col.bad.append(f"{im['file']}: detection {k}: unknown category id {d.get('category')!r}")
            continue
        if conf is None or not 0 <= conf <= 1:
            col.bad.append(f"{im['file']}: detection {k}: confidence {d.get('conf')!r} is not in [0, 1]")
            continue
        bbox = None
        if d.get("bbox") is not None:
            bbox = check_bbox(d["bbox"])
            if bbox is None:
                col.bad.append(f"{im['file']}: detection {k}: box {d['bbox']!r} is not inside [0, 1]")
                continue
        cls, cls_conf = _top_classification(d.get("classifications"), cls_cats)
        col.detections.append((i, col.source, cat, conf, *(bbox or (None, None, None, None)), cls, cls_conf, None))
        if conf >= threshold:
            above.append((conf, cls or cat, cls_conf if cls else conf))
    if len(above) == 1:  # the common case, without set_labels' checks (the names are clean)
        col.labels.append((i, above[0][1], col.source, above[0][2], col.now, 0))
        col.classes[above[0][1]] += 1
    else:
        above.sort(key=lambda t: -t[0])
        col.set_labels(i, [(lab, score) for _, lab, score in above] or [("empty", None)])
    col.metas.append((i, col.source, 0 if above else 1, None, None, None, None, None, None))


def _top_classification(value: Any, cls_cats: dict[str, str]) -> tuple[str | None, float | None]:
    if not isinstance(value, list):
        return None, None
    best: tuple[str | None, float | None] = (None, None)
    for c in value:
        if isinstance(c, (list, tuple)) and len(c) >= 2 and (score := number(c[1])) is not None:
            name = cls_cats.get(str(c[0]))
            if name is not None and (best[1] is None or score > best[1]):
                best = (name, score)
    return best
