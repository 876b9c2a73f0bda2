"""Files indexer writes (reports, copies, listings) never land inside a scan root, and an
unusable destination is refused before anything is saved."""
from __future__ import annotations

from indexer.cli import cli


def scanned(runner, tmp_path, archive):
    link = tmp_path / "linked"
    link.symlink_to(archive)  # a root reached through a symlink, as /tmp is on macOS
    db = str(tmp_path / "d.db")
    r = runner.invoke(cli, ["scan", str(link), "--db", db, "--workers", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    return db, link


def test_report_out_inside_a_root_reached_through_a_symlink_is_refused(runner, tmp_path, archive):
    db, link = scanned(runner, tmp_path, archive)
    for out in (archive / "rep", link / "rep"):
        r = runner.invoke(cli, ["report", "--db", db, "--out", str(out), "-q"])
        assert r.exit_code == 1 and "inside the scan root" in r.stderr, r.output
        assert not out.exists()


def test_select_copy_to_inside_a_root_is_refused(runner, tmp_path, archive):
    db, link = scanned(runner, tmp_path, archive)
    r = runner.invoke(cli, ["select", "--db", db, "--target", "2", "--copy-to", str(archive / "train")])
    assert r.exit_code == 1 and "inside the scan root" in r.stderr, r.output
    assert not (archive / "train").exists()


def test_select_output_into_a_missing_folder_is_one_line_and_saves_nothing(runner, tmp_path, archive):
    db, _ = scanned(runner, tmp_path, archive)
    r = runner.invoke(cli, ["select", "--db", db, "--target", "2", "--save", "s1",
                            "-o", str(tmp_path / "nodir" / "out.txt")])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and r.stderr.startswith("Error: cannot write -o")
    r = runner.invoke(cli, ["selections", "--db", db, "--json"])
    assert r.exit_code == 0 and "s1" not in r.stdout
