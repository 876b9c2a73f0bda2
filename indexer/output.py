"""Write a selection out: paths, CSV or JSON, or the field's label formats (MegaDetector, COCO
Camera Traps, Camtrap DP, Timelapse) holding only the selected images; or copies, hard links or symlinks of the files in a
folder that rebuilds their layout below the scan root. Never overwrites a different file."""
from __future__ import annotations

import csv
import errno
import filecmp
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .errors import OutputError
from .names import to_text
from .selection import SelectedImage, Selection

LISTING_FORMATS = ("paths", "csv", "json")
LABEL_FORMATS = ("md", "coco", "camtrapdp", "timelapse")  # export_subset
FORMATS = LISTING_FORMATS + LABEL_FORMATS
MODES = ("copy", "link", "symlink")
CSV_COLUMNS = ("path", "id", "group", "root", "rel_path", "new")


def write_listing(selection: Selection, fmt: str, out: TextIO) -> None:
    """The selected images as absolute paths (one per line), CSV, or one JSON document."""
    if fmt == "paths":
        for im in selection.images:
            out.write(im.path + "\n")
    elif fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for im in selection.images:
            w.writerow((im.path, im.id, im.group, im.root, im.rel_path, int(im.new)))
    elif fmt == "json":
        out.write(json.dumps(selection.as_dict(), indent=2, ensure_ascii=False, default=_jsonable) + "\n")
    else:
        raise ValueError(f"unknown listing format {fmt!r}: choose one of {', '.join(LISTING_FORMATS)} "
                         "(the label formats go through export_subset)")


def _jsonable(v: object) -> object:
    if isinstance(v, bytes):
        return v.hex()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()  # type: ignore[attr-defined]
    raise TypeError(f"cannot write {type(v).__name__} as JSON")


@dataclass(frozen=True)
class Materialized:
    """What copy/link/symlink did: files made, files already there (same file or same bytes),
    and the ones left alone because a different file is in the way or the source is gone."""

    mode: str
    folder: str
    created: int = 0
    existing: int = 0
    conflicts: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def destinations(images: Sequence[SelectedImage], folder: str | os.PathLike[str]) -> list[Path]:
    """Where each image goes: folder/rel_path; with several scan roots, folder/<root name>/rel_path
    (the root's last folder name, numbered when two roots share it)."""
    base = Path(folder)
    roots = sorted({im.root for im in images})
    if len(roots) <= 1:
        return [base.joinpath(*im.rel_path.split("/")) for im in images]
    names: dict[str, str] = {}
    used: dict[str, int] = {}
    for r in roots:
        name = r.rstrip("/").rsplit("/", 1)[-1] or "root"
        used[name] = used.get(name, 0) + 1
        names[r] = name if used[name] == 1 else f"{name}-{used[name]}"
    return [base.joinpath(names[im.root], *im.rel_path.split("/")) for im in images]


def materialize(images: Sequence[SelectedImage], folder: str | os.PathLike[str], mode: str) -> Materialized:
    """Copy, hard-link or symlink the images into `folder`. Re-runnable: files already there are
    counted, not rewritten; a different file in the way is reported and left untouched."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
    created = existing = 0
    conflicts: list[str] = []
    failed: list[str] = []
    for im, dest in zip(images, destinations(images, folder)):
        if os.path.lexists(dest):
            if _same(im.path, dest):
                existing += 1
            else:
                conflicts.append(str(dest))
            continue
        if not os.path.isfile(im.path):
            failed.append(f"{im.path}: the source file is gone")
            continue
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            _make(im.path, dest, mode)
            created += 1
        except FileExistsError:
            conflicts.append(str(dest))
        except OSError as exc:
            if mode == "link" and exc.errno == errno.EXDEV:
                raise OutputError(f"cannot hard-link {im.path} into {folder}: another file system "
                                  "(use --copy-to or --symlink-to)") from exc
            failed.append(f"{dest}: {exc.strerror or exc}")
    return Materialized(mode, str(folder), created, existing, conflicts, failed)


def _same(src: str, dest: Path) -> bool:
    """The destination already holds this image: the same file, a link to it, or the same bytes."""
    try:
        if os.path.samefile(src, dest):
            return True
        if dest.is_symlink() or not dest.is_file():
            return False
        return os.path.getsize(src) == dest.stat().st_size and filecmp.cmp(src, dest, shallow=False)
    except OSError:
        return False


def _make(src: str, dest: Path, mode: str) -> None:
    if mode == "symlink":
        os.symlink(src, dest)
    elif mode == "link":
        os.link(src, dest)
    else:
        # copy next to the destination, then link it in place: a crash never leaves a half file
        # under the final name, and an existing file is never replaced (link refuses to).
        tmp = dest.with_name(f".{dest.name}.indexer-partial")
        shutil.copy2(src, tmp)
        try:
            os.link(tmp, dest)
            os.unlink(tmp)
        except FileExistsError:
            os.unlink(tmp)
            raise
        except OSError:  # file systems without hard links
            if os.path.lexists(dest):
                os.unlink(tmp)
                raise FileExistsError(errno.EEXIST, "exists", str(dest)) from None
            os.replace(tmp, dest)


# -- subsets in the field's own formats ---------------------------------------------------------

_OBS_TYPES = {"blank": "blank", "empty": "blank", "human": "human", "person": "human", "vehicle": "vehicle",
              "unknown": "unknown", "unclassified": "unclassified"}


@dataclass(frozen=True)
class SubsetExport:
    """What export_subset wrote."""

    format: str
    source: str | None          # the label import the records came from (None: built from the labels)
    images: int
    records: int                # detections / annotations / observations written
    files: list[str] = field(default_factory=list)


def export_subset(db: Any, images: Sequence[Any], fmt: str, out: str | os.PathLike[str], *,
                  source: str | None = None) -> SubsetExport:
    """Write `images` (with .id, .root, .rel_path) as a file of `fmt` holding only them, with
    their boxes, annotations, observations and sequences from the label import `source` (default:
    the latest import of that format). File paths are those of --copy-to's layout: relative to the
    scan root (to <root name>/ with several roots). camtrapdp writes a folder: datapackage.json,
    deployments.csv, media.csv, observations.csv."""
    from .db import labels as dbl
    if fmt not in LABEL_FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(LABEL_FORMATS)}")
    known = {i.source: i for i in dbl.imports(db)}
    if source is not None and source not in known:
        raise OutputError(f"no label import has source {source!r} (imported: {', '.join(known) or 'none'})")
    imp = known.get(source) if source else next((i for i in known.values() if i.format == fmt), None)
    if fmt == "md" and (imp is None or imp.format not in ("md", "speciesnet")):
        raise OutputError("no MegaDetector import to export boxes from: `indexer labels import` an MD file first")
    ids = [im.id for im in images]
    rels = [to_text("/".join(d.parts)) for d in destinations(images, "")]
    src = imp.source if imp else None
    ctx = _Ctx(db, ids, rels, imp, dbl.labels_of(db, ids, src), dbl.detections_of(db, ids, src) if src else {},
               dbl.meta_of(db, ids, src), dbl.image_sizes(db, ids))
    writer = {"md": _md, "coco": _coco, "camtrapdp": _camtrapdp, "timelapse": _timelapse}[fmt]
    records, files = writer(ctx, Path(out))
    return SubsetExport(fmt, src, len(ids), records, files)


@dataclass
class _Ctx:
    db: Any
    ids: list[int]
    rels: list[str]
    imp: Any
    labels: dict[int, list[tuple[str, float | None, str]]]
    dets: dict[int, list[dict[str, Any]]]
    meta: dict[int, dict[str, Any]]
    sizes: dict[int, tuple[int | None, int | None]]

    def class_labels(self, i: int) -> list[tuple[str, float | None]]:
        """The labels of the image's class source (all labels of `imp` when given)."""
        ls = self.labels.get(i, [])
        return [(lab, conf) for lab, conf, src in ls if src == ls[0][2]] if ls else []


def _dump_json(doc: Any, out: Path) -> list[str]:
    with _open_out(out) as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return [str(out)]


def _open_out(out: Path) -> TextIO:
    try:
        return out.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from exc


def _md(c: _Ctx, out: Path) -> tuple[int, list[str]]:
    meta = c.imp.meta
    det_cats = {str(k): v for k, v in meta.get("detection_categories", {"1": "animal", "2": "person",
                                                                          "3": "vehicle"}).items()}
    cls_cats = {str(k): v for k, v in meta.get("classification_categories", {}).items()}
    det_ids = {v: k for k, v in det_cats.items()}
    cls_ids = {v: k for k, v in cls_cats.items()}
    records = 0
    images = []
    for i, rel in zip(c.ids, c.rels):
        m = c.meta.get(i, {})
        if m.get("failure"):
            images.append({"file": rel, "failure": m["failure"], "detections": None})
            continue
        dets = []
        for d in c.dets.get(i, []):
            if d["category"] not in det_ids:
                det_ids[d["category"]] = str(max((int(k) for k in det_cats if k.isdigit()), default=0) + 1)
                det_cats[det_ids[d["category"]]] = d["category"]
            e: dict[str, Any] = {"category": det_ids[d["category"]], "conf": d["conf"], "bbox": d["bbox"]}
            if d["classification"] is not None:
                if d["classification"] not in cls_ids:
                    cls_ids[d["classification"]] = str(len(cls_cats))
                    cls_cats[cls_ids[d["classification"]]] = d["classification"]
                e["classifications"] = [[cls_ids[d["classification"]], d["classification_conf"]]]
            dets.append(e)
        records += len(dets)
        images.append({"file": rel, "detections": dets})
    info = dict(meta.get("info") or {})
    info.setdefault("format_version", "1.4")
    doc: dict[str, Any] = {"info": info, "detection_categories": det_cats}
    if cls_cats:
        doc["classification_categories"] = cls_cats
    for k, v in meta.items():
        if k not in doc and k != "images":
            doc[k] = v
    doc["images"] = images
    return records, _dump_json(doc, out)


def _coco(c: _Ctx, out: Path) -> tuple[int, list[str]]:
    from_coco = c.imp is not None and c.imp.format == "coco"
    cats: list[dict[str, Any]] = list(c.imp.meta.get("categories", [])) if from_coco else []
    cat_id = {cat["name"]: cat["id"] for cat in cats}
    images, anns = [], []
    for n, (i, rel) in enumerate(zip(c.ids, c.rels), 1):
        m = c.meta.get(i, {})
        w, h = c.sizes.get(i, (None, None))
        extra = dict(m.get("extra") or {}) if from_coco else {}
        w, h = extra.get("width") or w, extra.get("height") or h
        rec: dict[str, Any] = {"id": n, "file_name": rel, "width": w, "height": h}
        for k in ("location", "seq_id", "frame_num"):
            if m.get(k) is not None:
                rec[k] = m[k]
        if m.get("file_time"):
            rec["datetime"] = m["file_time"]
        rec.update({k: v for k, v in extra.items() if k not in rec})
        images.append(rec)
        boxed: set[str] = set()
        for d in c.dets.get(i, []) if from_coco else []:
            a: dict[str, Any] = {"id": len(anns) + 1, "image_id": n, "category_id": _cat(cats, cat_id, d["category"])}
            if d["bbox"] is not None and w and h:
                x, y, bw, bh = d["bbox"]
                a["bbox"] = [round(x * w, 2), round(y * h, 2), round(bw * w, 2), round(bh * h, 2)]
            a.update({k: v for k, v in d["extra"].items() if k not in a})
            anns.append(a)
            boxed.add(d["category"])
        for lab, _ in c.class_labels(i):
            if lab not in boxed:
                anns.append({"id": len(anns) + 1, "image_id": n, "category_id": _cat(cats, cat_id, lab)})
    info = dict(c.imp.meta.get("info") or {}) if from_coco else {}
    info.setdefault("description", "subset written by indexer")
    return len(anns), _dump_json({"info": info, "images": images, "annotations": anns, "categories": cats}, out)


def _cat(cats: list[dict[str, Any]], cat_id: dict[str, Any], name: str) -> Any:
    if name not in cat_id:
        ids = [c["id"] for c in cats if isinstance(c.get("id"), int)]
        cat_id[name] = max(ids, default=0) + 1
        cats.append({"id": cat_id[name], "name": name})
    return cat_id[name]


MEDIA_FIELDS = ("mediaID", "deploymentID", "captureMethod", "timestamp", "filePath", "filePublic", "fileName",
                "fileMediatype", "exifData", "favorite", "mediaComments")
OBS_FIELDS = ("observationID", "deploymentID", "mediaID", "eventID", "eventStart", "eventEnd", "observationLevel",
              "observationType", "cameraSetupType", "scientificName", "count", "lifeStage", "sex", "behavior",
              "individualID", "individualPositionRadius", "individualPositionAngle", "individualSpeed", "bboxX",
              "bboxY", "bboxWidth", "bboxHeight", "classificationMethod", "classifiedBy", "classificationTimestamp",
              "classificationProbability", "observationTags", "observationComments")
DEPLOYMENT_FIELDS = ("deploymentID", "locationID", "locationName", "latitude", "longitude", "coordinateUncertainty",
                     "deploymentStart", "deploymentEnd", "setupBy", "cameraID", "cameraModel", "cameraDelay",
                     "cameraHeight", "cameraDepth", "cameraTilt", "cameraHeading", "detectionDistance",
                     "timestampIssues", "baitUse", "featureType", "habitat", "deploymentGroups", "deploymentTags",
                     "deploymentComments")
_NUMBER_FIELDS = {"latitude", "longitude", "count", "bboxX", "bboxY", "bboxWidth", "bboxHeight",
                  "classificationProbability", "coordinateUncertainty", "cameraDelay", "cameraHeight",
                  "cameraDepth", "cameraTilt", "cameraHeading", "detectionDistance", "individualPositionRadius",
                  "individualPositionAngle", "individualSpeed"}
_REQUIRED = {"deployments": ("deploymentID",), "media": ("mediaID", "deploymentID", "timestamp", "filePath",
                                                        "filePublic", "fileMediatype"),
             "observations": ("observationID", "deploymentID", "observationLevel", "observationType")}


def _camtrapdp(c: _Ctx, out: Path) -> tuple[int, list[str]]:
    from_dp = c.imp is not None and c.imp.format == "camtrapdp"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot make the folder {out}: {exc.strerror or exc}") from exc
    media, obs, media_ids = [], [], set()
    times: dict[str, list[str]] = {}
    for i, rel in zip(c.ids, c.rels):
        m = c.meta.get(i, {})
        extra = dict(m.get("extra") or {}) if from_dp else {}
        row = {k: extra.get(k, "") for k in MEDIA_FIELDS}
        row["mediaID"] = row["mediaID"] or f"m{i}"
        row["deploymentID"] = row["deploymentID"] or m.get("location") or "unknown"
        row["timestamp"] = row["timestamp"] or m.get("file_time") or _captured(c.db, i)
        row["filePath"], row["fileName"] = rel, rel.rsplit("/", 1)[-1]
        row["filePublic"] = row["filePublic"] or "false"
        row["fileMediatype"] = row["fileMediatype"] or _mediatype(rel)
        media.append(row)
        media_ids.add(row["mediaID"])
        times.setdefault(row["deploymentID"], []).append(row["timestamp"])
        if not from_dp:
            for k, (lab, conf) in enumerate(c.class_labels(i), 1):
                t = _OBS_TYPES.get(lab.lower(), "animal")
                obs.append({"observationID": f"o{i}-{k}", "deploymentID": row["deploymentID"],
                            "mediaID": row["mediaID"], "eventID": m.get("seq_id") or "",
                            "eventStart": row["timestamp"], "eventEnd": row["timestamp"], "observationLevel": "media",
                            "observationType": t, "scientificName": lab if t == "animal" else "",
                            "classificationProbability": "" if conf is None else conf})
    if from_dp:
        for o in c.imp.meta.get("observations", []):
            if o.get("observationLevel", "media") == "media":
                keep = o.get("mediaID") in media_ids
            else:
                keep = any(o.get("eventStart", "") <= t <= o.get("eventEnd", "") for t in times.get(o["deploymentID"], ()))
            if keep:
                obs.append(o)
    known = {d["deploymentID"]: d for d in c.imp.meta.get("deployments", [])} if from_dp else {}
    deps = [known.get(d) or {"deploymentID": d, "deploymentStart": min(ts), "deploymentEnd": max(ts)}
            for d, ts in times.items()]
    files = [_csv(out / "deployments.csv", DEPLOYMENT_FIELDS, deps), _csv(out / "media.csv", MEDIA_FIELDS, media),
             _csv(out / "observations.csv", OBS_FIELDS, obs)]
    desc = dict(c.imp.meta.get("descriptor") or {}) if from_dp else {}
    desc.setdefault("name", "indexer-subset")
    desc.setdefault("created", _now())
    desc["resources"] = [_resource(name, fields) for name, fields in (
        ("deployments", DEPLOYMENT_FIELDS), ("media", MEDIA_FIELDS), ("observations", OBS_FIELDS))]
    desc.pop("profile", None)  # the Camtrap DP profile is a URL: validators would fetch it
    return len(obs), _dump_json(desc, out / "datapackage.json") + files


def _resource(name: str, fields: Sequence[str]) -> dict[str, Any]:
    req = _REQUIRED[name]
    return {"name": name, "path": f"{name}.csv", "profile": "tabular-data-resource", "format": "csv",
            "mediatype": "text/csv", "encoding": "utf-8",
            "schema": {"fields": [{"name": f, "type": "number" if f in _NUMBER_FIELDS else "string",
                                   **({"constraints": {"required": True}} if f in req else {})} for f in fields],
                       "primaryKey": [fields[0]]}}


def _csv(path: Path, fields: Sequence[str], rows: list[dict[str, Any]]) -> str:
    with _open_out(path) as f:
        w = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in fields})
    return str(path)


def _timelapse(c: _Ctx, out: Path) -> tuple[int, list[str]]:
    from_tl = c.imp is not None and c.imp.format == "timelapse"
    cols = list(c.imp.meta.get("columns", [])) if from_tl else ["File", "RelativePath", "DateTime", "DeleteFlag",
                                                                 "Species"]
    label_col = c.imp.meta.get("label_column") if from_tl else "Species"
    rows = []
    for i, rel in zip(c.ids, c.rels):
        m = c.meta.get(i, {})
        row = dict(m.get("extra") or {}) if from_tl else {"DeleteFlag": "false"}
        folder, _, name = rel.rpartition("/")
        row["File"], row["RelativePath"] = name, folder.replace("/", "\\")
        row.setdefault("DateTime", m.get("file_time") or _captured(c.db, i))
        if not from_tl:
            ls = c.class_labels(i)
            row[label_col] = ls[0][0] if ls else ""
        rows.append(row)
    return len(rows), [_csv(out, cols, rows)]


def _captured(db: Any, image_id: int) -> str:
    r = db.conn.execute("SELECT COALESCE(captured_at, strftime('%Y-%m-%dT%H:%M:%S', mtime_ns / 1000000000, "
                        "'unixepoch')) FROM images WHERE id = ?", (image_id,)).fetchone()
    return (r[0] or "") if r else ""


def _mediatype(rel: str) -> str:
    ext = rel.rsplit(".", 1)[-1].lower()
    return {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "tif": "image/tiff",
            "tiff": "image/tiff", "bmp": "image/bmp", "webp": "image/webp"}.get(ext, "application/octet-stream")


def _now() -> str:
    import datetime
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def export_selection(db: Any, fmt: str, out: str | os.PathLike[str], *, selection: str | None = None,
                     where: str | None = None, source: str | None = None,
                     copy_to: str | os.PathLike[str] | None = None) -> tuple[SubsetExport, Materialized | None]:
    """The live members of saved selection `selection` (or the images matching `where`) written
    as a file of `fmt` (export_subset), after copying them into `copy_to` when given."""
    from .db import select as q
    if (selection is None) == (where is None):
        raise OutputError("give a saved selection or a --where expression")
    if selection is not None:
        saved = q.get_selection(db, selection)
        if saved is None:
            raise OutputError(f"no saved selection named {selection!r}")
        ids = [int(i) for i in q.member_ids(db, saved.id)]
    else:
        q.register_functions(db)
        q.check_expression(db, where or "", "--where")
        ids = [int(i) for i in q.where_ids(db, where or "")]
    images = sorted(q.image_paths(db, ids), key=lambda im: (im.root, im.rel_path))
    if not images:
        raise OutputError("no live image to export")
    done = materialize(images, copy_to, "copy") if copy_to is not None else None
    return export_subset(db, images, fmt, out, source=source), done
