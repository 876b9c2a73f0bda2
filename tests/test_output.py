"""indexer.output: listings (paths, CSV, JSON) and copy / hard link / symlink folders."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from indexer.output import OutputError, destinations, materialize, write_listing
from indexer.selection import GroupResult, SelectedImage, Selection


def image(root: Path, rel: str, data: bytes | None = None, group: str = "g") -> SelectedImage:
    p = root / rel
    if data is not None:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return SelectedImage(abs(hash(rel)) % 1000, p.as_posix(), root.as_posix(), rel, group)


@pytest.fixture
def images(tmp_path: Path) -> list[SelectedImage]:
    root = tmp_path / "archive"
    return [image(root, "site1/cam1/IMG_0001.JPG", b"one"), image(root, "site1/cam2/IMG_0001.JPG", b"two"),
            image(root, "top.JPG", b"three")]


def selection(images: list[SelectedImage]) -> Selection:
    return Selection(images, [GroupResult("g", "g", 10, 3, 3)], "diverse", 0, {"target": {"count": 3}},
                     ["a note"], {"overall": {"pool": 10}})


def test_listing_formats(images):
    out = io.StringIO()
    write_listing(selection(images), "paths", out)
    assert out.getvalue().splitlines() == [im.path for im in images]
    out = io.StringIO()
    write_listing(selection(images), "csv", out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["path"] for r in rows] == [im.path for im in images]
    assert set(rows[0]) == {"path", "id", "group", "root", "rel_path", "new"}
    out = io.StringIO()
    write_listing(selection(images), "json", out)
    doc = json.loads(out.getvalue())
    assert doc["count"] == 3 and doc["notes"] == ["a note"] and doc["stats"]["overall"]["pool"] == 10
    assert [im["path"] for im in doc["images"]] == [im.path for im in images]
    with pytest.raises(ValueError):
        write_listing(selection(images), "xml", out)


def test_destinations_rebuild_the_layout_and_separate_roots(tmp_path, images):
    dest = tmp_path / "out"
    assert destinations(images, dest)[0] == dest / "site1" / "cam1" / "IMG_0001.JPG"
    other = image(tmp_path / "b" / "archive", "site1/cam1/IMG_0001.JPG")
    two = destinations([images[0], other], dest)
    assert two == [dest / "archive" / "site1/cam1/IMG_0001.JPG", dest / "archive-2" / "site1/cam1/IMG_0001.JPG"]


@pytest.mark.parametrize("mode", ["copy", "link", "symlink"])
def test_materialize_then_rerun(tmp_path, images, mode):
    dest = tmp_path / "out"
    done = materialize(images, dest, mode)
    assert (done.created, done.existing, done.conflicts, done.failed) == (3, 0, [], [])
    for im, d in zip(images, destinations(images, dest)):
        assert d.read_bytes() == Path(im.path).read_bytes()
        assert d.is_symlink() == (mode == "symlink")
        if mode == "link":
            assert os.path.samefile(d, im.path)
        if mode == "copy":
            assert not os.path.samefile(d, im.path)
    again = materialize(images, dest, mode)
    assert (again.created, again.existing, again.conflicts) == (0, 3, [])
    assert not [p for p in dest.rglob("*") if "indexer-partial" in p.name]


@pytest.mark.parametrize("mode", ["copy", "link", "symlink"])
def test_a_different_file_in_the_way_is_never_overwritten(tmp_path, images, mode):
    dest = tmp_path / "out"
    target = destinations(images, dest)[1]
    target.parent.mkdir(parents=True)
    target.write_bytes(b"someone else's file")
    done = materialize(images, dest, mode)
    assert done.conflicts == [str(target)] and done.created == 2
    assert target.read_bytes() == b"someone else's file"
    identical = destinations(images, dest)[2]
    identical.unlink()
    identical.write_bytes(b"three")  # same bytes, another file: already there, left alone
    again = materialize(images, dest, mode)
    assert again.existing == 2 and again.conflicts == [str(target)]


def test_missing_source_is_reported(tmp_path, images):
    Path(images[0].path).unlink()
    done = materialize(images, tmp_path / "out", "copy")
    assert done.created == 2 and len(done.failed) == 1 and "gone" in done.failed[0]


def test_hard_links_across_file_systems_are_refused_clearly(tmp_path, images, monkeypatch):
    import errno

    def cross(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross)
    with pytest.raises(OutputError, match="another file system"):
        materialize(images, tmp_path / "out", "link")


def test_copy_without_hard_link_support_still_refuses_to_overwrite(tmp_path, images, monkeypatch):
    def no_links(src, dst):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "link", no_links)
    done = materialize(images, tmp_path / "out", "copy")
    assert done.created == 3
    assert materialize(images, tmp_path / "out", "copy").existing == 3
