"""`scan --cluster` / `watch --cluster`: decoding on Dask workers, this process the only writer.

One cluster for the module, started as a user starts one (`dask scheduler`, `dask worker
--nworkers 2`, separate processes); the tests that are about `local:N` start their own. The
scheduler gives up on a task after one worker death (allowed-failures 1) to keep these tests fast.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

pytest.importorskip("distributed")

import cluster_tasks  # noqa: E402
from imaging import make_archive, save_jpeg, scene  # noqa: E402

from indexer.cluster import parse_address, parse_worker_roots, worker_path  # noqa: E402
from indexer.db import FEATURE_COLUMNS, Database  # noqa: E402
from indexer.errors import ClusterError  # noqa: E402
from indexer.scan import Scanner, scan  # noqa: E402

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
CONTENT = ("state", "size", "mtime_ns", "error", *FEATURE_COLUMNS)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]), INDEXER_CLUSTER_TIMEOUT="20",
               DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1")
    env.update(extra)
    return env


class DaskCluster:
    """`dask scheduler` and `dask worker` processes, as on a lab's machines."""

    def __init__(self, tmp: Path, workers: int = 2, worker_env: dict[str, str] | None = None) -> None:
        self.file = tmp / "scheduler.json"
        self.procs: list[subprocess.Popen] = []
        self.logs = tmp
        self._start(["scheduler", "--scheduler-file", str(self.file), "--port", "0", "--dashboard-address", ":0"],
                    "scheduler")
        deadline = time.monotonic() + 60
        while not self.file.exists() or not self.file.read_text().strip():
            assert time.monotonic() < deadline, (self.logs / "scheduler.log").read_text()
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]
        if workers:
            self.add_workers(workers, worker_env)

    def _start(self, args: list[str], name: str, env: dict[str, str] | None = None) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self.procs.append(subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log, stderr=log,
                                           env=env or _env(), start_new_session=True, cwd=self.logs))

    def add_workers(self, n: int, env: dict[str, str] | None = None) -> None:
        self._start(["worker", self.address, "--nworkers", str(n), "--nthreads", "1", "--no-dashboard"],
                    f"worker{len(self.procs)}", env)
        from distributed import Client
        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(n, timeout=60)

    def close(self) -> None:
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    cluster = DaskCluster(tmp_path_factory.mktemp("dask"))
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
def bigger_archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cluster") / "archive"
    make_archive(root, cameras=4, per_camera=10)
    (root / "site1" / "cam01" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return root


@pytest.fixture(scope="module")
def reference(bigger_archive, tmp_path_factory) -> dict:
    """What the local pool makes of the archive."""
    db_path = tmp_path_factory.mktemp("reference") / "index.db"
    with Database(db_path, create=True) as db:
        assert scan(db, [str(bigger_archive)], workers=2, progress=False).status == "completed"
    return content(db_path)


def content(db_path: Path) -> dict:
    conn = sqlite3.connect(db_path)
    try:
        return {(r[0], r[1]): r[2:] for r in conn.execute(f"SELECT folder, name, {', '.join(CONTENT)} FROM images")}
    finally:
        conn.close()


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "indexer", *args], capture_output=True, text=True,
                          env=env or _env(), timeout=timeout)


def run_scanner(root: Path, db_path: Path, **options: object):
    with Database(db_path, create=True) as db:
        return Scanner(db, progress=False, **options).run([str(root)])  # type: ignore[arg-type]


# -- the options -------------------------------------------------------------------------------------

def test_addresses_and_root_maps_are_checked():
    assert parse_address(" local:2 ") == "local:2"
    assert parse_address("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    for bad in ("local:0", "local:x", "", "tcp://a b"):
        with pytest.raises(ClusterError):
            parse_address(bad)
    with pytest.raises(ClusterError, match="LOCAL=REMOTE"):
        parse_worker_roots(["/data"])
    mapping = parse_worker_roots(["/data=/mnt/nas/data", "/data/traps=/scratch/traps"])
    assert worker_path("/data/traps/site1/IMG_1.JPG", mapping) == "/scratch/traps/site1/IMG_1.JPG"
    assert worker_path("/data/other/IMG_1.JPG", mapping) == "/mnt/nas/data/other/IMG_1.JPG"
    assert worker_path("/data", mapping) == "/mnt/nas/data"
    assert worker_path("/database/x.jpg", mapping) == "/database/x.jpg"  # a prefix of the name is no parent


def test_cluster_options_that_contradict_are_one_line_errors(archive, tmp_path):
    for args, said in ((["--worker-root", "/a=/b"], "needs --cluster"),
                       (["--cluster", "local:2", "--workers", "2"], "--workers sizes the local pool"),
                       (["--cluster", "local:two"], "expected local:N")):
        r = cli("scan", str(archive), "--db", str(tmp_path / "x.db"), *args)
        assert r.returncode == 1 and said in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


# -- same database as the local pool ------------------------------------------------------------------

def test_a_cluster_gives_the_database_the_local_pool_gives(dask_cluster, bigger_archive, reference, tmp_path):
    db_path = tmp_path / "index.db"
    r = cli("scan", str(bigger_archive), "--db", str(db_path), "--cluster", dask_cluster.address, "--batch", "8")
    assert r.returncode == 0, r.stderr
    assert content(db_path) == reference
    failed = [k for k, v in reference.items() if v[0] == "failed"]
    assert failed == [("site1/cam01", "broken.jpg")]  # a bad file is recorded, the run goes on
    # and the next run over the cluster finds nothing to do
    r = cli("scan", str(bigger_archive), "--db", str(db_path), "--cluster", dask_cluster.address, "--json")
    assert json.loads(r.stdout)["unchanged"] == len(reference)


def test_local_cluster_scan_then_ctrl_c_of_watch_on_it(bigger_archive, reference, tmp_path):
    """`--cluster local:2` for scan, and for a watch that indexes arrivals and stops on Ctrl-C."""
    db_path = tmp_path / "index.db"
    r = cli("scan", str(bigger_archive), "--db", str(db_path), "--cluster", "local:2", "--quiet")
    assert r.returncode == 0, r.stderr
    assert content(db_path) == reference
    root = tmp_path / "incoming"
    make_archive(root, cameras=1, per_camera=2)
    err = (tmp_path / "watch.err").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "indexer", "watch", str(root), "--db", str(db_path), "--cluster",
                             "local:2", "--settle", "0.3", "--quiet"], stdout=subprocess.DEVNULL, stderr=err,
                            env=_env(), start_new_session=True)
    try:
        _wait_for(lambda: "watching for changes" in _text(err), 120, lambda: _text(err))
        arrived = save_jpeg(scene(99, (320, 240)), root / "site1" / "cam01" / "IMG_0099.JPG")
        _wait_for(lambda: _count(db_path, f"name = '{arrived.name}' AND state = 'indexed'") == 1, 60,
                  lambda: _text(err))
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C at a terminal reaches the whole group: workers too
        assert proc.wait(60) == 0  # stopping is how a watch ends
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = _text(err)
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert "watch stopped" in text
    assert _group_alive(proc.pid) == []  # the LocalCluster's workers went with it


def _text(fh) -> str:
    fh.flush()
    fh.seek(0)
    return fh.read()


def _wait_for(cond, seconds: float, why) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, why()
        time.sleep(0.2)


def _count(db_path: Path, where: str) -> int:
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(f"SELECT count(*) FROM images WHERE {where}").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not made yet
        return 0


def _group_alive(pgid: int) -> list[str]:
    deadline = time.monotonic() + 15
    while True:
        out = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
        if not out or time.monotonic() > deadline:
            return out
        time.sleep(0.3)


# -- lost workers, killing files, a killed client ----------------------------------------------------

def test_a_worker_killed_mid_scan_costs_only_a_retry(dask_cluster, bigger_archive, reference, tmp_path):
    decode = partial(cluster_tasks.kill_once, name="IMG_0005.JPG", marker=str(tmp_path / "killed"))
    s = run_scanner(bigger_archive, tmp_path / "index.db", cluster=dask_cluster.address, decode=decode)
    assert (tmp_path / "killed").exists()  # a worker did die in the middle of a chunk
    assert s.status == "completed"
    assert content(tmp_path / "index.db") == reference


def test_a_file_that_kills_every_worker_is_recorded_failed_and_the_run_goes_on(dask_cluster, bigger_archive,
                                                                               reference, tmp_path):
    decode = partial(cluster_tasks.kill_always, path="site1/cam01/IMG_0003.JPG")
    s = run_scanner(bigger_archive, tmp_path / "index.db", cluster=dask_cluster.address, decode=decode)
    assert s.status == "completed" and s.counts.failed == 2  # it and broken.jpg
    got = content(tmp_path / "index.db")
    killer = ("site1/cam01", "IMG_0003.JPG")
    assert got[killer][0] == "failed" and "crashed" in got[killer][3] and "Dask worker" in got[killer][3]
    del got[killer]
    assert got == {k: v for k, v in reference.items() if k != killer}  # its chunk's other files are indexed
    _wait_for(lambda: _workers(dask_cluster.address) == 2, 60, lambda: "workers did not come back")


def _workers(address: str) -> int:
    from distributed import Client
    with Client(address, timeout=20) as client:
        return len(client.nthreads())


CLIENT = """
import sys
from functools import partial
sys.path[:0] = {paths!r}
import cluster_tasks
from indexer.db import Database
from indexer.scan import Scanner
slow = {slow!r}
decode = partial(cluster_tasks.slow_logged, seconds=slow, log={log!r})
with Database({db!r}, create=True) as db:
    Scanner(db, progress=False, batch=4, cluster={address!r}, decode=decode).run([{root!r}])
"""


def test_a_client_killed_by_sigkill_resumes_to_the_same_database(dask_cluster, bigger_archive, reference, tmp_path):
    db_path, log = tmp_path / "index.db", tmp_path / "decoded.log"

    def client(slow: float) -> subprocess.Popen:
        code = CLIENT.format(paths=[str(TESTS), str(REPO)], slow=slow, log=str(log), db=str(db_path),
                             address=dask_cluster.address, root=str(bigger_archive))
        return subprocess.Popen([sys.executable, "-c", code], env=_env(), stderr=subprocess.PIPE, text=True)

    first = client(0.15)
    _wait_for(lambda: _count(db_path, "1") >= 8 or first.poll() is not None, 120, lambda: "no batch committed")
    first.kill()
    first.wait()
    committed = {f"{f}/{n}" for (f, n) in content(db_path)}
    assert 8 <= len(committed) < len(reference), "the kill did not land mid-scan"
    log.write_text("")
    second = client(0.0)
    assert second.wait(180) == 0, second.stderr.read() if second.stderr else ""
    assert content(db_path) == reference
    again = set(log.read_text().split())
    assert not again & committed  # nothing committed was decoded twice
    assert again | committed == {f"{f}/{n}" for (f, n) in reference}


# -- where workers look, and what they run -----------------------------------------------------------

def test_worker_root_maps_the_clients_root_to_the_workers_path(dask_cluster, bigger_archive, reference, tmp_path):
    """The client sees stand-ins with the real files' size and mtime; only the workers see the
    images, under another path: rows equal to the reference prove the workers read there."""
    local = tmp_path / "client-view" / "archive"
    for src in bigger_archive.rglob("*"):
        if src.is_file():
            dst = local / src.relative_to(bigger_archive)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(b"\0" * src.stat().st_size)
            os.utime(dst, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns))
    r = cli("scan", str(local), "--db", str(tmp_path / "index.db"), "--cluster", dask_cluster.address,
            "--worker-root", f"{local.parent}={bigger_archive.parent}")
    assert r.returncode == 0, r.stderr
    assert content(tmp_path / "index.db") == reference
    r = cli("scan", str(local), "--db", str(tmp_path / "other.db"), "--cluster", dask_cluster.address,
            "--worker-root", f"{local.parent}={tmp_path / 'nowhere'}")
    assert r.returncode == 1 and "does not see the root" in r.stderr and "Traceback" not in r.stderr
    assert _count(tmp_path / "other.db", "1") == 0


def test_workers_running_other_feature_code_are_refused(bigger_archive, tmp_path):
    other = tmp_path / "other-indexer"
    shutil.copytree(REPO / "indexer", other / "indexer", ignore=shutil.ignore_patterns("__pycache__"))
    features = other / "indexer" / "features.py"
    features.write_text(features.read_text() + "\n# a change on the workers only\n")
    cluster = DaskCluster(tmp_path, workers=0)
    try:
        cluster.add_workers(1, _env(PYTHONPATH=os.pathsep.join([str(other), str(TESTS)])))
        r = cli("scan", str(bigger_archive), "--db", str(tmp_path / "index.db"), "--cluster", cluster.address)
    finally:
        cluster.close()
    assert r.returncode == 1, r.stderr
    assert "runs other feature code" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert _count(tmp_path / "index.db", "1") == 0


# -- clusters that cannot be used --------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_a_one_line_error(archive, tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    r = cli("scan", str(archive), "--db", str(tmp_path / "index.db"), "--cluster", address,
            env=_env(INDEXER_CLUSTER_TIMEOUT="2"))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and address in r.stderr
    assert "cannot reach the Dask scheduler" in r.stderr


def test_a_cluster_without_workers_is_a_one_line_error(archive, tmp_path):
    cluster = DaskCluster(tmp_path, workers=0)
    try:
        r = cli("scan", str(archive), "--db", str(tmp_path / "index.db"), "--cluster", cluster.address,
                env=_env(INDEXER_CLUSTER_TIMEOUT="2"))
    finally:
        cluster.close()
    assert r.returncode == 1 and "has no workers" in r.stderr and cluster.address in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_without_dask_cluster_says_how_to_install_it(archive, tmp_path):
    code = ("import sys; sys.modules['distributed'] = None; sys.modules['dask'] = None\n"
            "from indexer.__main__ import main; sys.exit(main())")
    r = subprocess.run([sys.executable, "-c", code, "scan", str(archive), "--db", str(tmp_path / "i.db"),
                        "--cluster", "local:1"], capture_output=True, text=True, env=_env())
    assert r.returncode == 1 and "pip install 'indexer[dask]'" in r.stderr and "Traceback" not in r.stderr


def test_the_local_path_never_imports_dask(archive, tmp_path):
    code = ("import sys\nfrom indexer.db import Database\nfrom indexer.scan import scan\n"
            f"with Database({str(tmp_path / 'i.db')!r}, create=True) as db:\n"
            f"    scan(db, [{str(archive)!r}], workers=1, progress=False)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
