"""Fixtures: every library test runs twice, standalone and on a host's shared pool.

Isolation: ``lib`` is one initialized instance per mode for the whole session, in a schema
of its own, whose tables are emptied after every test (TRUNCATE ... RESTART IDENTITY), so
each test starts from the state the migrations leave. Tables the migrations themselves
filled (reference data) are left alone. Tests about schemas, migrations or the instance's
lifecycle use ``make_lib``, which builds fresh instances in a fresh schema per test.
"""

from __future__ import annotations

import graphlib
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from pgdbm import AsyncDatabaseManager

from .helpers import POOLER_OPTIONS, create_host_pool
from .library import Library

pytest_plugins = ["tests.pg_server"]

MakeLib = Callable[..., Library]


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


def build(mode: str, url: str, pool: asyncpg.Pool, schema: str, **options: Any) -> Library:
    """An uninitialized instance wired the way ``mode`` says."""
    if mode == "standalone":
        return Library(
            connection_string=url,
            schema=schema,
            min_connections=1,
            max_connections=4,
            **POOLER_OPTIONS,
            **options,
        )
    return Library(db_manager=AsyncDatabaseManager(pool=pool, schema=schema), **options)


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
    for lib in made:
        await lib.close()


class _SessionLib:
    """An instance kept for the session, and the statement that empties its tables."""

    def __init__(self, lib: Library, empty_tables: str | None) -> None:
        self.lib = lib
        self.empty_tables = empty_tables


async def _empty_tables_statement(admin_pool: asyncpg.Pool, schema: str) -> str | None:
    """One round trip that empties the tables the migrations left empty and restarts their
    sequences, or None when there are none.

    DELETE (children before parents) and setval() cost a fraction of TRUNCATE, which takes
    an exclusive lock and replaces the tables' files; on the small tables of a test they
    leave the same state: no rows, ids from the start again.
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
        return f"TRUNCATE {', '.join(empty.values())} RESTART IDENTITY CASCADE"
    sequences = await admin_pool.fetch(
        "SELECT d.objid, s.seqstart FROM pg_depend d JOIN pg_sequence s ON s.seqrelid = d.objid"
        " WHERE d.classid = 'pg_class'::regclass AND d.refobjid = ANY($1)"
        " AND d.deptype IN ('a', 'i')",
        list(empty),
    )
    restarts = [f"setval({row['objid']}::regclass, {row['seqstart']}, false)" for row in sequences]
    return "; ".join(deletes + ([f"SELECT {', '.join(restarts)}"] if restarts else []))


@pytest.fixture(scope="session")
async def _session_libs() -> AsyncIterator[dict[str, _SessionLib]]:
    libs: dict[str, _SessionLib] = {}
    yield libs
    for kept in libs.values():
        await kept.lib.close()


@pytest.fixture
async def lib(
    mode: str,
    database_url: str,
    shared_pool: asyncpg.Pool,
    admin_pool: asyncpg.Pool,
    _session_libs: dict[str, _SessionLib],
) -> AsyncIterator[Library]:
    """An initialized instance whose tables are empty when the test starts."""
    if mode not in _session_libs:
        schema = f"s_{mode}_{secrets.token_hex(4)}"
        instance = build(mode, database_url, shared_pool, schema)
        await instance.initialize()
        _session_libs[mode] = _SessionLib(
            instance, await _empty_tables_statement(admin_pool, schema)
        )
    kept = _session_libs[mode]
    await kept.lib.initialize()  # a no-op, unless the previous test closed it
    yield kept.lib
    if kept.empty_tables:
        await admin_pool.execute(kept.empty_tables)
