# Owned by the copier-pgdbm template: `copier update` replaces this file, so do not edit it.
"""One instance's state: initialize() and close(), once, again, at the same time, or failing."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from pgdbm import AsyncDatabaseManager, DatabaseConfig

from .helpers import (
    POOLER_OPTIONS,
    TRANSACTION_POOLER,
    backends,
    build,
    create_host_pool,
    shipped_migrations,
)
from .library import PACKAGE, Library, errors
from .tcp_proxy import TcpProxy

MakeLib = Callable[..., Library]


@pytest.fixture
async def lib_on_proxy(mode: str, proxy: TcpProxy, schema: str) -> AsyncIterator[Library]:
    """An uninitialized instance in the test's mode whose server is ``proxy``."""
    pool = None
    if mode == "standalone":
        lib = Library(
            connection_string=proxy.url(), schema=schema, retry_attempts=1, **POOLER_OPTIONS
        )
    else:
        pool = await create_host_pool(proxy.url(), max_connections=2)
        lib = Library(db_manager=AsyncDatabaseManager(pool=pool, schema=schema))
    yield lib
    await lib.close()
    if pool is not None:
        pool.terminate()


def _ready_lines(caplog: pytest.LogCaptureFixture, lib: Library) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.split(".")[0] == PACKAGE and f"ready in schema '{lib.schema}'" in r.getMessage()
    ]


async def test_initialize_of_a_ready_instance_does_not_touch_the_server(
    lib_on_proxy: Library, proxy: TcpProxy
) -> None:
    """Once started, initialize() returns at once: it needs no server and keeps the pool."""
    lib = lib_on_proxy
    await lib.initialize()
    await proxy.stop()
    await lib.initialize()  # a server that went away is no reason to fail here
    assert lib.db is not None
    assert repr(lib).endswith("ready=True)")


def test_repr_names_the_class_schema_mode_and_state(make_lib: MakeLib, mode: str) -> None:
    lib = make_lib()
    wired = "standalone" if mode == "standalone" else "embedded"
    assert repr(lib) == f"{Library.__name__}(schema={lib.schema!r}, mode={wired!r}, ready=False)"


async def test_concurrent_initialize_starts_the_instance_once(
    make_lib: MakeLib, caplog: pytest.LogCaptureFixture
) -> None:
    """Five initialize() calls at once on one instance: one start-up, four no-ops.

    The INFO line each start-up logs is how this shows from outside.
    """
    caplog.set_level(logging.INFO)
    lib = make_lib()
    await asyncio.gather(*(lib.initialize() for _ in range(5)))
    await lib.initialize()
    (line,) = _ready_lines(caplog, lib)
    wired = "standalone" if lib.owns_pool else "embedded"
    found = re.fullmatch(
        rf"{Library.__name__} ready in schema '{lib.schema}' \({wired}\) in (\d+\.\d) ms", line
    )
    assert found, line
    assert 0 < float(found[1]) < 60_000  # a start-up's milliseconds
    assert (await lib.create_record("once")).kind == "once"


async def test_close_while_initializing_leaves_the_instance_closed(make_lib: MakeLib) -> None:
    """close() called during initialize() waits for it and then closes: the last call wins."""
    lib = make_lib()
    await asyncio.gather(lib.initialize(), lib.close())
    assert repr(lib).endswith("ready=False)")
    with pytest.raises(errors.NotInitializedError):
        _ = lib.db
    await lib.initialize()  # and it can be started again
    assert (await lib.create_record("again")).kind == "again"


async def test_failed_start_up_releases_what_it_opened(
    make_lib: MakeLib,
    mode: str,
    shared_pool: asyncpg.Pool,
    admin_pool: asyncpg.Pool,
) -> None:
    """A start-up that fails closes the pool standalone opened, and never the host's pool.

    It can be retried once the cause is gone.
    """
    lib = make_lib(apply_migrations=False)
    with pytest.raises(errors.PendingMigrationsError):
        await lib.initialize()
    assert repr(lib).endswith("ready=False)")
    with pytest.raises(errors.NotInitializedError):
        _ = lib.db
    if mode == "standalone" and not TRANSACTION_POOLER:  # a pooler's connections are its own
        assert await backends(admin_pool, lib.module_name) == 0
    # The probe a readiness check runs says why: reachable, migrations pending.
    health = await lib.health()
    assert (health.ok, health.reachable) == (False, True)
    assert health.pending_migrations == tuple(shipped_migrations())
    if mode == "shared":
        assert await shared_pool.fetchval("SELECT 1") == 1  # the host's pool stays usable

    await make_lib().migrate()  # the release step runs; start-up now goes through
    await lib.initialize()
    assert (await lib.health()).ok
    assert lib.db is not None


def _loop_error(mode: str, closed: bool = False) -> str:
    name = Library.__name__
    if mode == "standalone":
        what, remedy = "opened its pool in", "`await lib.close()` here lets that pool go"
    else:
        what = "runs on the host's pool, which belongs to"
        remedy = "the host must create its pool in this loop"
    return (
        f"{name} {what} another event loop{f' (now closed: {remedy})' if closed else ''}; "
        "asyncpg's connections work only in the loop that opened them. Create the pool, the "
        f"instance and its uses in one loop: `async with {name}(...) as lib:` inside the "
        "coroutine you pass to asyncio.run() (in tests, fixtures and tests in the same loop "
        "scope)"
    )


def test_an_instance_used_from_another_event_loop_says_which_and_how(
    mode: str, database_url: str, schema: str
) -> None:
    """asyncpg's connections belong to the loop that opened them. From another loop every
    use says so and touches nothing (asyncpg's own errors there mislead: "another
    operation is in progress"); at home the instance works on."""
    home = asyncio.new_event_loop()
    try:
        pool = None
        if mode == "shared":
            pool = home.run_until_complete(create_host_pool(database_url, max_connections=2))
        lib = build(mode, database_url, pool, schema)
        home.run_until_complete(lib.initialize())

        async def elsewhere() -> None:
            with pytest.raises(RuntimeError) as error:
                _ = lib.db
            assert str(error.value) == _loop_error(mode)
            for use in (lib.initialize, lib.migration_status, lib.migrate, lib.health, lib.close):
                with pytest.raises(RuntimeError, match=re.escape(_loop_error(mode))):
                    await use()

        asyncio.run(elsewhere())
        assert lib.initialized
        assert home.run_until_complete(lib.db.fetch_value("SELECT 1")) == 1
        home.run_until_complete(lib.close())
        if pool is not None:
            home.run_until_complete(pool.close())
    finally:
        home.close()


def test_a_host_pool_of_another_loop_is_refused_from_the_first_use(
    database_url: str, schema: str
) -> None:
    """Embedded, the host's pool decides: a session-scoped host pool used from a test's own
    loop is refused before anything is sent, and after that loop is closed, too."""
    home = asyncio.new_event_loop()
    pool = home.run_until_complete(create_host_pool(database_url, max_connections=2))
    try:
        lib = build("shared", database_url, pool, schema)

        async def elsewhere(closed: bool) -> None:
            with pytest.raises(RuntimeError, match=re.escape(_loop_error("shared", closed))):
                await lib.initialize()
            assert not lib.initialized

        asyncio.run(elsewhere(closed=False))
    finally:
        home.run_until_complete(pool.close())
        home.close()
    asyncio.run(elsewhere(closed=True))


def test_an_instance_whose_loop_ended_unclosed_lets_its_pool_go_and_starts_again(
    database_url: str, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Standalone, its loop closed without close(): every use says so, close() lets the
    dead loop's pool go (nothing can close it gracefully any more), and start-up works
    again in the new loop."""
    lib = build("standalone", database_url, None, schema)

    async def first() -> None:
        await lib.initialize()
        # The program does not close the instance; its pool is closed here only so that
        # the test leaves no connection behind.
        pool = lib._pool
        assert pool is not None
        await pool.close()

    asyncio.run(first())

    async def second() -> None:
        with pytest.raises(RuntimeError) as error:
            _ = lib.db
        assert str(error.value) == _loop_error("standalone", closed=True)
        with pytest.raises(RuntimeError, match=re.escape(_loop_error("standalone", closed=True))):
            await lib.migration_status()
        await lib.close()
        assert not lib.initialized
        await lib.initialize()
        assert await lib.db.fetch_value("SELECT 3") == 3
        await lib.close()

    asyncio.run(second())
    assert f"{Library.__name__}: let go of a pool whose event loop is closed" in caplog.messages


async def test_close_right_after_start_up_waits_for_the_calls_queued_before_it(
    make_lib: MakeLib,
) -> None:
    """Calls run in the order they asked: a start-up queued behind the first one finishes
    (as a no-op) before a close() asked for later, which leaves the instance closed."""
    lib = make_lib()

    async def start_then_close() -> None:
        await lib.initialize()
        await lib.close()

    await asyncio.gather(start_then_close(), lib.initialize())
    assert not lib.initialized


def test_closed_in_one_loop_it_starts_again_in_the_next(database_url: str, schema: str) -> None:
    """Standalone, close() then initialize() in a new asyncio.run() works, also after
    concurrent calls bound the instance's lock to the first loop."""
    lib = build("standalone", database_url, None, schema)

    async def run(value: int) -> int:
        await asyncio.gather(*(lib.initialize() for _ in range(3)))  # contends for the lock
        try:
            result: int = await lib.db.fetch_value("SELECT $1::int", value)
            return result
        finally:
            await asyncio.gather(lib.close(), lib.close())

    assert asyncio.run(run(1)) == 1
    assert asyncio.run(run(2)) == 2


async def test_health_before_and_after_start_up(make_lib: MakeLib, mode: str) -> None:
    """health() of a fresh, a started and a closed instance, in both modes."""
    lib = make_lib()
    before = await lib.health()
    assert not before.ok
    await lib.initialize()
    ready = await lib.health()
    assert (ready.ok, ready.reachable, ready.pending_migrations) == (True, True, ())
    assert isinstance(ready.latency_ms, float)  # milliseconds, to the microsecond
    assert 0 < ready.latency_ms < 5000
    assert ready.drifted_migrations == ()
    assert ready.error is None
    await lib.close()
    after = await lib.health()
    # Closed: the schema is up to date and the server reachable (standalone probes on a
    # connection of its own), but the instance serves nothing.
    assert (after.ok, after.reachable, after.pending_migrations) == (False, True, ())
    assert after.error == "not initialized: call initialize() first"


async def test_health_reports_a_schema_it_cannot_read_without_raising(
    make_lib: MakeLib, admin_pool: asyncpg.Pool
) -> None:
    """Reachable, but the migrations table is not what the library wrote: ok is False, and
    the error says why."""
    lib = make_lib()
    await lib.initialize()
    await admin_pool.execute(
        f'ALTER TABLE "{lib.schema}".schema_migrations RENAME COLUMN checksum TO checksum_old'
    )
    health = await lib.health()
    assert (health.ok, health.reachable) == (False, True)
    assert health.latency_ms is not None
    assert health.error is not None
    assert health.error.startswith("UndefinedColumnError: ")
    assert "checksum" in health.error


async def test_health_names_drifted_migrations(make_lib: MakeLib, admin_pool: asyncpg.Pool) -> None:
    lib = make_lib()
    await lib.initialize()
    first = shipped_migrations()[0]
    await admin_pool.execute(
        f"UPDATE \"{lib.schema}\".schema_migrations SET checksum = 'x' WHERE filename = $1", first
    )
    health = await lib.health()
    assert (health.ok, health.reachable, health.drifted_migrations) == (False, True, (first,))
    assert health.pending_migrations == ()


async def test_health_gives_up_after_max_wait_when_no_connection_is_free(
    database_url: str, schema: str
) -> None:
    """Embedded on a host pool whose connections are all taken: health() waits max_wait,
    then says not ok instead of hanging the probe, and why: not the server's fault."""
    pool = await create_host_pool(database_url, max_connections=2)
    try:
        lib = Library(db_manager=AsyncDatabaseManager(pool=pool, schema=schema))
        async with pool.acquire(), pool.acquire():
            started = asyncio.get_running_loop().time()
            health = await lib.health(max_wait=0.1)
            waited = asyncio.get_running_loop().time() - started
        assert (health.ok, health.reachable, health.latency_ms) == (False, False, None)
        assert health.error == (
            "no connection of the pool (max_size 2) came free within 0.1 s: "
            "the server was not asked"
        )
        assert 0.09 <= waited < 3
    finally:
        await pool.close()


async def test_health_of_a_host_manager_without_a_pool_yet(database_url: str) -> None:
    """A manager made from a config has no pool until the host connects it."""
    manager = AsyncDatabaseManager(DatabaseConfig(connection_string=database_url, schema="s"))
    health = await Library(db_manager=manager).health()
    assert (health.ok, health.reachable, health.error) == (
        False,
        False,
        "not initialized: no pool yet",
    )


async def test_start_up_on_a_host_manager_without_a_pool_says_what_to_pass(
    database_url: str,
) -> None:
    manager = AsyncDatabaseManager(DatabaseConfig(connection_string=database_url, schema="s"))
    with pytest.raises(ValueError, match=r"the manager has no pool; pass AsyncDatabaseManager\("):
        await Library(db_manager=manager).initialize()
