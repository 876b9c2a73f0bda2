"""Stopping the `indexer` command at any instant, as a terminal, a shell or a service manager does:
Ctrl-C to the whole process group early in a run, SIGTERM, a `watch` started with `&` (SIGINT
ignored by the shell), and user SQL that would never end. Never a traceback; what a run says it
stored is what it stored."""
from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imaging import copies_archive, save_jpeg, scene

N_FILES = 600
ENDLESS = "id IN (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c)"


def command() -> list[str]:
    """The installed `indexer` script beside this Python (as users run it), else python -m indexer."""
    script = Path(sys.executable).parent / "indexer"
    return [str(script)] if script.exists() else [sys.executable, "-m", "indexer"]


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory) -> Path:
    return copies_archive(tmp_path_factory.mktemp("signals") / "archive", N_FILES, 150, bases=6)


def start(args: list[str], **kw: object) -> subprocess.Popen:
    return subprocess.Popen([*command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


def stored(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    except sqlite3.OperationalError:  # not made yet
        return 0
    finally:
        conn.close()


@pytest.mark.parametrize("delay", [0.05, 0.15, 0.3, 0.5, 0.8])  # the whole scan takes ~1.2 s now
def test_ctrl_c_at_any_early_instant_gives_no_traceback(big_archive, tmp_path, delay):
    db = tmp_path / "index.db"
    proc = start(["scan", str(big_archive), "--db", str(db), "--workers", "2", "--quiet"])
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the scan and its workers
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0 and err.startswith("completed:"):
        pytest.skip(f"the scan finished before the Ctrl-C at {delay} s: nothing to interrupt")
    if "Traceback" in err and delay < 0.1:
        # The first tens of ms belong to the interpreter and pip's console-script wrapper (its
        # `import re` runs before any of our code): nothing of ours can catch a signal there.
        assert "indexer/" not in err.split("KeyboardInterrupt")[0].replace("bin/indexer", ""), err
        return
    assert "Traceback" not in err, err
    assert proc.returncode in (130, -signal.SIGINT), (proc.returncode, err)
    if proc.returncode == 130:
        assert "Interrupted" in err


@pytest.mark.parametrize("delay", [0.15, 0.2, 0.25, 0.3, 0.4])  # the workers are being spawned about then
def test_sigterm_early_says_so_and_exits_130(big_archive, tmp_path, delay):
    proc = start(["scan", str(big_archive), "--db", str(tmp_path / "index.db"), "--quiet"])
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0 and err.startswith("completed:"):
        pytest.skip(f"the scan finished before the SIGTERM at {delay} s: nothing to stop")
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Interrupted" in err and "Traceback" not in err, err  # none from a worker cut short in its start


def test_an_interrupted_summary_counts_what_was_committed(big_archive, tmp_path):
    db = tmp_path / "index.db"
    proc = start(["scan", str(big_archive), "--db", str(db), "--workers", "2", "--batch", "8", "--quiet"])
    deadline = time.monotonic() + 60
    while not db.exists() or stored(db) < 16:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    said = re.search(r"interrupted: (\d+) new", err)
    assert said, err
    assert int(said.group(1)) == stored(db) < N_FILES


def test_watch_started_with_sigint_ignored_still_stops_on_ctrl_c(tmp_path):
    root = tmp_path / "archive"
    save_jpeg(scene(1), root / "cam" / "IMG_0001.JPG")
    log = tmp_path / "watch.log"
    with log.open("w") as err:
        proc = subprocess.Popen([*command(), "watch", str(root), "--db", str(tmp_path / "index.db"), "--workers", "1",
                                 "--quiet", "--settle", "0.2"], stdout=subprocess.DEVNULL, stderr=err,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # `indexer watch &`
        deadline = time.monotonic() + 60
        while "watching for changes" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, log.read_text()
    assert "Traceback" not in log.read_text()


@pytest.fixture(scope="module")
def small_index(tmp_path_factory) -> Path:
    from imaging import make_archive
    base = tmp_path_factory.mktemp("endless")
    make_archive(base / "archive")
    db = base / "index.db"
    r = subprocess.run([*command(), "scan", str(base / "archive"), "--db", str(db), "--workers", "1", "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return db


@pytest.mark.parametrize("args", [["export"], ["select", "--target", "2"]])
def test_a_query_that_never_ends_is_stopped_by_its_budget(small_index, args):
    env = {**os.environ, "INDEXER_QUERY_TIMEOUT": "1.5"}
    started = time.monotonic()
    r = subprocess.run([*command(), *args, "--db", str(small_index), "--where", ENDLESS], capture_output=True,
                       text=True, timeout=120, env=env)
    assert time.monotonic() - started < 30
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "longer than 1.5 s" in r.stderr, r.stderr


@pytest.mark.parametrize("args", [["export"], ["select", "--target", "2"]])
def test_ctrl_c_stops_a_query_that_never_ends(small_index, args):
    proc = start([*args, "--db", str(small_index), "--where", ENDLESS])
    time.sleep(1.5)
    assert proc.poll() is None, proc.communicate()
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 5
    assert proc.returncode == 130 and "Traceback" not in err, (proc.returncode, err)


def test_an_interrupted_command_exits_even_when_a_pool_thread_is_stuck(tmp_path):
    """A Ctrl-C that lands while the main thread holds one of concurrent.futures' locks leaves the
    pool's manager thread waiting on it for ever; interpreter exit would join that thread. The
    interrupted command leaves anyway, with its message and exit code 130."""
    code = ("import sys, threading\n"
            "import indexer.cli\n"
            "held = threading.Lock(); held.acquire()\n"
            "def run(argv=None):\n"
            "    threading.Thread(target=held.acquire).start()  # not a daemon: exit would join it\n"
            "    raise KeyboardInterrupt\n"
            "indexer.cli.run = run\n"
            "from indexer.__main__ import main\n"
            "main(['status'])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 130 and r.stderr.strip() == "Interrupted." and "Traceback" not in r.stderr
