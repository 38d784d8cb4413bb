# Owned by the copier-pgdbm template: `copier update` replaces this file, so do not edit it.
"""The library's fixtures, loaded as a pytest plugin by conftest.py (yours, for your own).

Every library test runs twice, standalone and on a host's shared pool (``mode``).

Isolation: ``lib`` is one initialized instance per mode for the whole session, in a schema
of its own, whose tables are emptied after every test (DELETE, sequences restarted), so
each test starts from the state the migrations leave. Tables the migrations themselves
filled (reference data) are left alone. Tests about schemas, migrations or the instance's
lifecycle use ``make_lib``, which builds fresh instances in a fresh schema per test.
``shared_pool`` is the host application's pool; ``proxy`` puts the test server behind a
TCP proxy that a test can stop and start again. tests/pg_server.py gives the server,
``database_url``, ``admin_pool`` and fresh ``schema`` names.
"""

from __future__ import annotations

import asyncio
import graphlib
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from .helpers import build, create_host_pool
from .library import Library
from .tcp_proxy import TcpProxy

MakeLib = Callable[..., Library]
CLOSE_TIMEOUT = 5  # seconds; an instance closes in milliseconds
# What asyncio.wait_for raises: the built-in TimeoutError, a class of its own before 3.11.
_TIMEOUTS = (TimeoutError, asyncio.TimeoutError)


@pytest.fixture(scope="session")
async def shared_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The host application's pool, made the way a host makes it (search_path pinned)."""
    pool = await create_host_pool(database_url)
    yield pool
    await pool.close()


@pytest.fixture(params=["standalone", "shared"])
def mode(request: pytest.FixtureRequest) -> str:
    """Which way the library is wired: owning its pool, or on the host's shared pool."""
    mode: str = request.param
    return mode


@pytest.fixture
async def make_lib(
    mode: str, database_url: str, shared_pool: asyncpg.Pool, schema: str
) -> AsyncIterator[MakeLib]:
    """Build uninitialized instances in the test's mode; all are closed after the test."""
    made: list[Library] = []

    def make(
        *,
        schema: str = schema,
        url: str = database_url,
        pool: asyncpg.Pool = shared_pool,
        **options: Any,
    ) -> Library:
        """``options``: constructor arguments such as ``apply_migrations`` or ``init_timeout``."""
        made.append(build(mode, url, pool, schema, **options))
        return made[-1]

    yield make
    # A start-up stuck on a lock keeps the instance's state lock, which close() waits for:
    # bounded, so that such a test fails in its clean-up instead of hanging the run (the
    # per-test time limit has fired by then and does not fire twice).
    stuck = []
    for lib in made:
        try:
            await asyncio.wait_for(lib.close(), CLOSE_TIMEOUT)
        except _TIMEOUTS:
            stuck.append(lib)
    assert not stuck, f"close() still waiting after {CLOSE_TIMEOUT} s: {stuck}"


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    """The test server behind a proxy that a test can stop, as if the server went down."""
    proxy = await TcpProxy(database_url).start()
    yield proxy
    await proxy.stop()


# Statements sent together run in one (implicit) transaction, where SET LOCAL holds.
_NO_FLUSH = "SET LOCAL synchronous_commit = off"


async def _empty_tables_statement(admin_pool: asyncpg.Pool, schema: str) -> str | None:
    """One round trip that empties the tables the migrations left empty and restarts their
    sequences, or None when there are none.

    DELETE (children before parents) and setval() cost a fraction of TRUNCATE, which takes
    an exclusive lock and replaces the tables' files; on the small tables of a test they
    leave the same state: no rows, ids from the start again. The statements share one
    transaction whose commit does not wait for the WAL flush: on a durable server (CI's,
    or TEST_DATABASE_URL) that flush was half the cost, and nothing of a clean-up needs
    to survive a crash of a database that is dropped after the run.
    """
    tables = await admin_pool.fetch(
        "SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname <> 'schema_migrations'",
        schema,
    )
    # Only tables the migrations left empty: reference rows they insert must survive.
    empty = {
        row["oid"]: f'"{schema}"."{row["relname"]}"'
        for row in tables
        if not await admin_pool.fetchval(
            f'SELECT EXISTS (SELECT 1 FROM "{schema}"."{row["relname"]}")'
        )
    }
    if not empty:
        return None
    order = graphlib.TopologicalSorter({oid: set() for oid in empty})
    for fk in await admin_pool.fetch(
        "SELECT conrelid, confrelid FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY($1)",
        list(empty),
    ):
        if fk["confrelid"] in empty and fk["confrelid"] != fk["conrelid"]:
            order.add(fk["confrelid"], fk["conrelid"])  # the referencing table goes first
    try:
        deletes = [f"DELETE FROM {empty[oid]}" for oid in order.static_order()]
    except graphlib.CycleError:  # tables referencing each other: let TRUNCATE sort it out
        return f"{_NO_FLUSH}; TRUNCATE {', '.join(empty.values())} RESTART IDENTITY CASCADE"
    sequences = await admin_pool.fetch(
        "SELECT d.objid, s.seqstart FROM pg_depend d JOIN pg_sequence s ON s.seqrelid = d.objid"
        " WHERE d.classid = 'pg_class'::regclass AND d.refobjid = ANY($1)"
        " AND d.deptype IN ('a', 'i')",
        list(empty),
    )
    restarts = [f"setval({row['objid']}::regclass, {row['seqstart']}, false)" for row in sequences]
    restart = [f"SELECT {', '.join(restarts)}"] if restarts else []
    return "; ".join([_NO_FLUSH, *deletes, *restart])


class _SessionLibs:
    """One initialized instance per mode for the session, and the clean-up after each test.

    The clean-up statement is sent when a test ends and its answer awaited when the next
    test on ``lib`` starts: the server empties the tables while pytest does its own
    bookkeeping in between, and no test ever starts before the previous one's clean-up
    has finished.
    """

    def __init__(
        self,
        url: str,
        shared_pool: asyncpg.Pool,
        admin_pool: asyncpg.Pool,
        cleaner: asyncpg.Connection,
    ) -> None:
        self._url, self._shared_pool, self._admin_pool = url, shared_pool, admin_pool
        self._cleaner = cleaner
        self._libs: dict[str, tuple[Library, str | None]] = {}
        self._cleaning: asyncio.Future[str] | None = None

    async def get(self, mode: str) -> Library:
        """The instance for ``mode``, initialized, with empty tables."""
        await self.wait_for_clean_up()
        if mode not in self._libs:
            schema = f"s_{mode}_{secrets.token_hex(4)}"
            instance = build(mode, self._url, self._shared_pool, schema)
            await instance.initialize()
            self._libs[mode] = (instance, await _empty_tables_statement(self._admin_pool, schema))
        instance = self._libs[mode][0]
        if not instance.initialized:  # the previous test closed it
            await instance.initialize()
        return instance

    async def clean_up(self, mode: str) -> None:
        """Start emptying the tables of ``mode``'s instance."""
        statement = self._libs[mode][1]
        if statement:
            self._cleaning = asyncio.ensure_future(self._cleaner.execute(statement))
            await asyncio.sleep(0)  # let it write the statement to the server now

    async def wait_for_clean_up(self) -> None:
        if self._cleaning is not None:
            cleaning, self._cleaning = self._cleaning, None
            await cleaning

    async def close(self) -> None:
        await self.wait_for_clean_up()
        for instance, _ in self._libs.values():
            await instance.close()


@pytest.fixture(scope="session")
async def _session_libs(
    database_url: str, shared_pool: asyncpg.Pool, admin_pool: asyncpg.Pool
) -> AsyncIterator[_SessionLibs]:
    # A connection of its own for the clean-up, so it never waits for a test's queries.
    cleaner = await asyncpg.connect(database_url, statement_cache_size=0)
    libs = _SessionLibs(database_url, shared_pool, admin_pool, cleaner)
    yield libs
    await libs.close()
    await cleaner.close()


@pytest.fixture
async def lib(mode: str, _session_libs: _SessionLibs) -> AsyncIterator[Library]:
    """An initialized instance whose tables are empty when the test starts."""
    yield await _session_libs.get(mode)
    await _session_libs.clean_up(mode)


# The per-test time limit ([tool.pytest.ini_options] timeout) counts fixtures: the first
# test also waits for the test server to be up and makes the session's database and
# instances, the last one drops them. Those two get longer; every other test keeps the
# short limit.
SESSION_EDGE_TIMEOUT = 60


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items[:1] + items[-1:]:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SESSION_EDGE_TIMEOUT))
