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


def test_no_progress_bar_when_stderr_is_not_a_terminal(archive, db_path, runner):
    r = runner.invoke(cli, ["scan", str(archive), "--db", str(db_path), "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "\r" not in r.stderr and "img/s" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip().splitlines()[-1]]  # the summary only


def test_progress_bar_with_count_rate_and_eta_on_a_terminal(archive, tmp_path):
    import os
    import pty
    import subprocess
    import sys

    import fcntl
    import struct
    import termios

    (archive / "site1" / "broken.jpg").write_bytes(b"not a jpeg")  # a failure counts once, like any file
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal has a size
    proc = subprocess.run([sys.executable, "-m", "indexer", "scan", str(archive), "--db", str(tmp_path / "t.db"),
                           "--workers", "1"], stderr=slave, stdout=subprocess.PIPE, timeout=120)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "13/13" in text and "img/s" in text  # count against the total, and the rate
    assert "14/13" not in text
    assert "<" in text  # tqdm's elapsed<remaining: the ETA
    r = subprocess.run([sys.executable, "-m", "indexer", "scan", str(archive), "--db", str(tmp_path / "q.db"),
                        "--workers", "1", "--quiet"], capture_output=True, text=True, timeout=120)
    assert "img/s" not in r.stderr
