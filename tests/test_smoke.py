from __future__ import annotations

from indexer.cli import cli


def test_scan_then_status_and_export(archive, db_path, runner):
    r = runner.invoke(cli, ["scan", str(archive), "--db", str(db_path), "--workers", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["status", "--db", str(db_path), "--json"])
    assert r.exit_code == 0, r.output
    assert '"indexed": 12' in r.output
    r = runner.invoke(cli, ["export", "--db", str(db_path), "--where", "is_gray = 1"])
    assert r.exit_code == 0, r.output
    assert len(r.output.strip().splitlines()) == 1 + 6
