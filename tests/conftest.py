from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from imaging import make_archive  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data" / "camtrap-samples"


@pytest.fixture(autouse=True)
def _no_process_leaks():
    """A test that leaves worker processes behind fails (watchdog's _no_thread_leaks, for processes)."""
    before = {p.pid for p in multiprocessing.active_children()}
    yield
    leaked = [p for p in multiprocessing.active_children() if p.pid not in before]
    for p in leaked:
        p.join(5)
    still = [p for p in leaked if p.is_alive()]
    for p in still:
        p.kill()
    assert not still, f"test leaked processes: {still}"


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    make_archive(root)
    return root


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "index.db"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def shared_samples() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/data/camtrap-samples is not beside this checkout")
    return SHARED
