"""COCO Camera Traps (https://lila.science/coco-camera-traps; LILA's data sets).

    {"info": {...}, "images": [{"id", "file_name", "width", "height", "location", "datetime",
                                "seq_id", "seq_num_frames", "frame_num", ...}],
     "annotations": [{"id", "image_id", "category_id", "bbox": [x, y, w, h] in pixels, ...}],
     "categories": [{"id", "name"}]}

Labels: the categories of an image's annotations, the most annotated first (`empty` last). Boxes
are stored normalized by the image's width and height. location, seq_id and frame_num go to the
query columns; seq_id also becomes the image's sequence for `select`.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from ..errors import LabelError
from .common import EMPTY_LABELS, Collector, check_bbox, number

IMAGE_FIELDS = ("location", "datetime", "seq_id", "frame_num")


def read(doc: Any, col: Collector, sizes: Any, name: str) -> dict[str, Any]:
    """`sizes(ids)` gives the indexed width and height of images the file gives none for."""
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) \
            or not isinstance(doc.get("categories"), list) or not isinstance(doc.get("annotations", []), list):
        raise LabelError(f"{name}: needs 'images', 'annotations' and 'categories' lists: "
                         "not a COCO Camera Traps file")
    cats: dict[Any, str] = {}
    for c in doc["categories"]:
        if not isinstance(c, dict) or "id" not in c or not isinstance(c.get("name"), str):
            raise LabelError(f"{name}: a category without 'id' and 'name': not a COCO Camera Traps file")
        cats[c["id"]] = c["name"]
    by_coco: dict[Any, tuple[int, dict[str, Any]]] = {}
    for n, im in enumerate(doc["images"], 1):
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            raise LabelError(f"{name}: image {n} has no 'id' and 'file_name': not a COCO Camera Traps file")
        if im["id"] in by_coco:
            col.rows += 1
            col.duplicates.append(f"image id {im['id']} ({im['file_name']})")
            continue
        i = col.image(im["file_name"], f"image {n}")
        if i is not None:
            by_coco[im["id"]] = (i, im)
    anns: dict[int, list[dict[str, Any]]] = {}
    seen_ann: set[Any] = set()
    for k, a in enumerate(doc.get("annotations", []), 1):
        if not isinstance(a, dict) or "image_id" not in a or "category_id" not in a:
            col.bad.append(f"annotation {k}: needs 'image_id' and 'category_id'")
            continue
        if a.get("id") is not None and a["id"] in seen_ann:
            col.duplicates.append(f"annotation id {a['id']}")
            continue
        seen_ann.add(a.get("id"))
        if a["category_id"] not in cats:
            col.bad.append(f"annotation {a.get('id', k)}: unknown category id {a['category_id']!r}")
            continue
        if a["image_id"] in by_coco:
            anns.setdefault(by_coco[a["image_id"]][0], []).append(a)
    need = [i for i, im in by_coco.values() if not (number(im.get("width")) and number(im.get("height")))]
    known = sizes(need) if need else {}
    for i, im in by_coco.values():
        w, h = number(im.get("width")), number(im.get("height"))
        if not (w and h):
            w, h = known.get(i, (None, None))
        counts: Counter[str] = Counter()
        for a in anns.get(i, []):
            cat = cats[a["category_id"]]
            bbox = None
            if a.get("bbox") is not None:
                b = a["bbox"]
                ok = isinstance(b, list) and len(b) == 4 and all(number(v) is not None for v in b) and w and h
                bbox = check_bbox([b[0] / w, b[1] / h, b[2] / w, b[3] / h]) if ok else None
                if bbox is None:
                    col.bad.append(f"annotation {a.get('id')}: box {b!r} is not inside the {w}x{h} image")
                    continue
            counts[cat] += 1
            extra = {k: v for k, v in a.items() if k not in ("id", "image_id", "category_id", "bbox")}
            col.box(i, cat, number(a.get("conf")), bbox, extra=extra)
        order = sorted(counts, key=lambda c: (c.lower() in EMPTY_LABELS, -counts[c]))
        if order:
            col.set_labels(i, [(c, None) for c in order])
        extra = {k: v for k, v in im.items() if k not in ("id", "file_name")}
        col.meta(i, is_empty=(1 if all(c.lower() in EMPTY_LABELS for c in order) else 0) if order else None,
                 location=im.get("location"), seq_id=im.get("seq_id"), frame_num=im.get("frame_num"),
                 file_time=im.get("datetime"), extra=extra)
        col.flush()
    return {"info": doc.get("info", {}), "categories": doc["categories"]}
