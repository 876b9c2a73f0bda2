"""Camtrap DP 1.0 (https://camtrap-dp.tdwg.org): a datapackage.json whose resources `deployments`,
`media` and `observations` are CSV files.

media.csv: mediaID, deploymentID, captureMethod, timestamp, filePath, filePublic, fileName,
fileMediatype ...; observations.csv: observationID, deploymentID, mediaID, eventID, eventStart,
eventEnd, observationLevel (media | event), observationType (animal, human, vehicle, blank,
unknown, unclassified), scientificName, count, bboxX/bboxY/bboxWidth/bboxHeight (normalized),
classificationProbability ...

An observation at media level labels its media file; one at event level labels every media file
of its deployment whose timestamp is inside [eventStart, eventEnd], and its eventID becomes their
sequence. Label: scientificName for animals, else the observationType; an image's labels are
ordered media-level first, then by how many observations name them (blank last). Location:
deploymentID.
"""
from __future__ import annotations

import bisect
import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import LabelError
from .common import EMPTY_LABELS, Collector, check_bbox, number


def read(path: Path, col: Collector) -> dict[str, Any]:
    try:
        desc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelError(f"{path}: not a readable data package descriptor: {exc}") from exc
    res = {r.get("name"): r for r in desc.get("resources", []) if isinstance(r, dict)} if isinstance(desc, dict) else {}
    if "media" not in res or "observations" not in res:
        raise LabelError(f"{path}: a Camtrap DP package needs 'media' and 'observations' resources")
    media = _table(path.parent, res["media"], ("mediaID", "deploymentID", "timestamp", "filePath"))
    obs = _table(path.parent, res["observations"], ("observationID", "deploymentID", "observationType"))
    by_media: dict[str, tuple[int, dict[str, str]]] = {}
    by_dep: dict[str, list[tuple[str, int]]] = {}
    for n, m in enumerate(media, 2):
        if m["mediaID"] in by_media:
            col.rows += 1
            col.duplicates.append(f"mediaID {m['mediaID']}")
            continue
        i = col.image(m.get("filePath") or m.get("fileName"), f"media.csv line {n}")
        if i is not None:
            by_media[m["mediaID"]] = (i, m)
            by_dep.setdefault(m["deploymentID"], []).append((m["timestamp"], i))
    for dep in by_dep.values():  # by timestamp: an event's media are found by bisection
        dep.sort()
    labels: dict[int, Counter[str]] = {}
    score: dict[tuple[int, str], float] = {}
    event_of: dict[int, str] = {}
    at_media: set[tuple[int, str]] = set()
    for n, o in enumerate(obs, 2):
        label = o.get("scientificName") if o["observationType"] == "animal" and o.get("scientificName") \
            else o["observationType"]
        if not label:
            col.bad.append(f"observations.csv line {n}: no observationType")
            continue
        if (o.get("observationLevel") or "media") == "media":
            hit = by_media.get(o.get("mediaID") or "")
            targets = [hit[0]] if hit else []
        else:
            start, end = o.get("eventStart") or "", o.get("eventEnd") or ""
            dep = by_dep.get(o["deploymentID"], [])
            lo, hi = bisect.bisect_left(dep, (start,)), bisect.bisect_right(dep, (end, float("inf")))
            targets = [i for _, i in dep[lo:hi]]
            for i in targets:
                if o.get("eventID"):
                    event_of.setdefault(i, o["eventID"])
        p = number(o.get("classificationProbability"))
        for i in targets:
            labels.setdefault(i, Counter())[label] += 1
            if (o.get("observationLevel") or "media") == "media":
                at_media.add((i, label))
            if p is not None:
                score[(i, label)] = max(p, score.get((i, label), 0.0))
            box = [number(o.get(k)) for k in ("bboxX", "bboxY", "bboxWidth", "bboxHeight")]
            if o.get("observationLevel", "media") == "media" and all(v is not None for v in box):
                bbox = check_bbox(box)
                if bbox is None:
                    col.bad.append(f"observations.csv line {n}: box {box} is not inside [0, 1]")
                else:
                    col.box(i, label, p, bbox, extra={"observationID": o["observationID"],
                                                     "observationType": o["observationType"]})
    for i, m in by_media.values():
        c = labels.get(i)
        if c:
            order = sorted(c, key=lambda lab: (lab.lower() in EMPTY_LABELS, (i, lab) not in at_media, -c[lab]))
            col.set_labels(i, [(lab, score.get((i, lab))) for lab in order])
        col.meta(i, is_empty=(1 if c and all(k.lower() in EMPTY_LABELS for k in c) else 0) if c else None,
                 location=m["deploymentID"], seq_id=event_of.get(i), file_time=m["timestamp"],
                 extra={k: v for k, v in m.items() if v != ""})
        col.flush()
    deployments = _table(path.parent, res["deployments"], ("deploymentID",)) if "deployments" in res else []
    return {"descriptor": {k: v for k, v in desc.items() if k != "resources"}, "deployments": deployments,
            "observations": [o for o in obs if o.get("mediaID") in by_media
                             or (o.get("observationLevel") == "event")]}


def _table(folder: Path, resource: dict[str, Any], need: tuple[str, ...]) -> list[dict[str, str]]:
    rel = resource.get("path")
    if isinstance(rel, list):
        rel = rel[0] if rel else None
    if not isinstance(rel, str):
        raise LabelError(f"resource {resource.get('name')!r} has no path")
    f = folder / rel
    try:
        with f.open(newline="", encoding="utf-8-sig") as fh:
            r = csv.DictReader(fh)
            missing = [c for c in need if c not in (r.fieldnames or [])]
            if missing:
                raise LabelError(f"{f}: no column {', '.join(missing)}: not a Camtrap DP {resource.get('name')} table")
            return [{k: (v or "") for k, v in row.items() if k is not None} for row in r]
    except OSError as exc:
        raise LabelError(f"cannot read {f}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LabelError(f"{f} is not a UTF-8 CSV file: {exc}") from exc
