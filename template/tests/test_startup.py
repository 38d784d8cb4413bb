# Owned by the copier-pgdbm template: `copier update` replaces this file, so do not edit it.
"""Start-up in production shape: concurrent cold starts, the lock, verify-only, bad states."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import multiprocessing
import multiprocessing.queues
import queue
import random
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from importlib.resources import files
from pathlib import Path

import asyncpg
import pytest
from pgdbm import AsyncDatabaseManager, AsyncMigrationManager

from .helpers import (
    TRANSACTION_POOLER,
    applied_migrations,
    build,
    cold_start_in_a_process,
    create_host_pool,
    schema_exists,
    shipped_migrations,
    with_credentials,
)
from .library import PACKAGE, Library, _bootstrap, errors, migrations_dir

COLD_START_INSTANCES = 8
COLD_START_PROCESSES = 8
# Cold starts take well under a second; a start-up that waits this long is stuck, and the
# library's own InitLockTimeoutError then says who holds the lock.
COLD_START_INIT_TIMEOUT = 5

MakeLib = Callable[..., Library]


async def _connect(url: str) -> asyncpg.Connection:
    # No statement cache: the same code then works behind PgBouncer in transaction mode.
    return await asyncpg.connect(url, statement_cache_size=0)


async def test_concurrent_cold_start_on_a_fresh_database(
    mode: str, database_factory: Callable[[], Awaitable[str]]
) -> None:
    """Eight instances initializing at once on a fresh database all succeed, once each."""
    url = await database_factory()
    schema = "cold_start"
    # Shared, the host's pool has fewer connections than there are instances: waiting
    # instances must not hold any.
    pool = None if mode == "standalone" else await create_host_pool(url, max_connections=3)
    libs = [
        build(
            mode,
            url,
            pool,
            schema,
            standalone_max_connections=2,
            init_timeout=COLD_START_INIT_TIMEOUT,
        )
        for _ in range(COLD_START_INSTANCES)
    ]
    try:
        await asyncio.gather(*(lib.initialize() for lib in libs))
        statuses = await asyncio.gather(*(lib.migration_status() for lib in libs))
        assert all(status.up_to_date for status in statuses)
        conn = await _connect(url)
        try:
            applied = await conn.fetchval(f'SELECT count(*) FROM "{schema}".schema_migrations')
            # This database only: other sessions on a shared server may hold their own.
            advisory = await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        finally:
            await conn.close()
        assert applied == len(shipped_migrations())
        assert advisory == 0  # transaction-level locks: nothing outlives start-up
    finally:
        await asyncio.gather(*(lib.close() for lib in libs))
        if pool is not None:
            await pool.close()


def test_lock_waiters_pause_at_random_below_a_doubling_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Waiters that started together must not wake together: each pause is drawn at random
    below a bound that doubles from the first up to POLL_CAP."""
    first, cap = 0.005, _bootstrap.POLL_CAP
    bounds = [min(first * 2**i, cap) for i in range(400)]
    # The ranges each pause is drawn from, read exactly: a random pause below a wrong
    # bound (tripling, say) would pass the checks further down now and then.
    drawn_from: list[tuple[float, float]] = []

    def top_of_range(low: float, high: float) -> float:
        drawn_from.append((low, high))
        return high

    with monkeypatch.context() as patch:
        patch.setattr(random, "uniform", top_of_range)
        assert list(itertools.islice(_bootstrap._pauses(first), len(bounds))) == bounds
    assert drawn_from == [(0, bound) for bound in bounds]
    pauses = list(itertools.islice(_bootstrap._pauses(first), len(bounds)))
    assert all(0 <= pause <= bound for pause, bound in zip(pauses, bounds, strict=True))
    at_cap = pauses[len(bounds) // 2 :]
    assert len(set(at_cap)) == len(at_cap)  # drawn, not fixed
    # Spread over the whole range, not bunched at either end.
    assert min(at_cap) < cap / 10
    assert max(at_cap) > cap * 9 / 10
    assert cap / 3 < sum(at_cap) / len(at_cap) < cap * 2 / 3


# Eight processes, each with its own event loop, pool and connections. Where there is fork
# they come from multiprocessing's forkserver, which imports the library and its drivers
# once: eight fresh interpreters importing pgdbm, asyncpg and pydantic took about 1.5 s more.
# The forkserver also imports what each child would import again: the module of the
# child's function (with all that the test package imports), and what the main script
# imports, since each child runs that script again (the forkserver's own preload of
# __main__ never gets the script's path): _pytest.config under the `pytest` launcher.
# 0.5-1 s less; a module the forkserver cannot import is skipped.
@pytest.mark.timeout(60)
async def test_cold_start_from_separate_processes(
    database_factory: Callable[[], Awaitable[str]],
) -> None:
    """Eight OS processes, half standalone and half embedded, start on one fresh database."""
    url = await database_factory()
    if sys.platform == "win32":
        context = multiprocessing.get_context("spawn")
    else:
        context = multiprocessing.get_context("forkserver")
        # A forkserver already running keeps what it has.
        child = cold_start_in_a_process.__module__
        context.set_forkserver_preload([PACKAGE, "pgdbm", "asyncpg", child, "_pytest.config"])
    start = context.Barrier(COLD_START_PROCESSES)
    report: multiprocessing.queues.Queue[str] = context.Queue()
    processes = [
        context.Process(
            target=cold_start_in_a_process,
            args=(
                url,
                "multi_process",
                "standalone" if i % 2 else "shared",
                COLD_START_INIT_TIMEOUT,
                start,
                report,
            ),
        )
        for i in range(COLD_START_PROCESSES)
    ]
    outcomes: list[str] = []
    try:
        for process in processes:
            process.start()
        while len(outcomes) < COLD_START_PROCESSES:
            try:
                outcomes.append(await asyncio.to_thread(report.get, True, 0.2))
            except queue.Empty:
                # A process that died before it could report (killed, or it could not
                # even load its code) would keep the others waiting at the barrier.
                died = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
                if died:
                    start.abort()
                    pytest.fail(f"processes exited with {died} before reporting: {outcomes}")
        for process in processes:
            await asyncio.to_thread(process.join, 30)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
        report.close()
    assert outcomes == ["up_to_date"] * COLD_START_PROCESSES, "\n".join(outcomes)
    assert [process.exitcode for process in processes] == [0] * COLD_START_PROCESSES
    conn = await _connect(url)
    try:
        files = await conn.fetch("SELECT filename FROM multi_process.schema_migrations ORDER BY id")
    finally:
        await conn.close()
    assert [row["filename"] for row in files] == shipped_migrations()


@pytest.fixture
async def held_lock(
    database_url: str, schema: str
) -> AsyncIterator[Callable[[], Awaitable[asyncpg.Connection]]]:
    """Take the start-up lock of ``schema`` the way a starting instance holds it."""
    held: list[asyncpg.Connection] = []

    async def hold() -> asyncpg.Connection:
        conn = await _connect(database_url)
        held.append(conn)
        await conn.execute("BEGIN")
        await conn.execute("SET application_name = 'migrating-elsewhere'")
        assert await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtext('copier-pgdbm'), hashtext($1))",
            f"{Library.module_name_for(schema)}:initialize",
        )
        return conn

    yield hold
    for conn in held:
        await conn.close()


async def test_a_lock_wait_names_the_holder_and_honours_init_timeout(
    make_lib: MakeLib,
    schema: str,
    held_lock: Callable[[], Awaitable[asyncpg.Connection]],
) -> None:
    """While another process holds the lock, start-up waits init_timeout, then names it."""
    holder = await held_lock()
    holder_pid = await holder.fetchval("SELECT pg_backend_pid()")
    lib = make_lib(init_timeout=0.15)
    started = asyncio.get_running_loop().time()
    with pytest.raises(errors.InitLockTimeoutError) as error:
        await lib.initialize()
    waited = asyncio.get_running_loop().time() - started
    assert 0.15 <= waited < 5
    message = str(error.value)
    assert isinstance(error.value, TimeoutError)
    assert error.value.holder is not None
    assert f"backend pid {holder_pid}" in message
    assert "'migrating-elsewhere'" in message
    assert "holding it since" in message
    assert "init_timeout" in message
    # Where the holder connects from, when it is TCP (nothing for a unix socket), and since
    # when, to the second.
    address = await holder.fetchval("SELECT inet_client_addr()::text")
    origin = f", from {address}" if address else ""
    assert re.fullmatch(
        rf"backend pid {holder_pid}, application_name 'migrating-elsewhere'{re.escape(origin)}, "
        r"holding it since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d([+-]\d\d:\d\d)?",
        error.value.holder,
    ), error.value.holder

    await holder.execute("ROLLBACK")  # the other process finishes: start-up goes through
    await lib.initialize()
    assert (await lib.migration_status()).up_to_date


async def test_a_role_that_may_not_see_others_activity_still_names_the_holder(
    mode: str,
    database_url: str,
    schema: str,
    admin_pool: asyncpg.Pool,
    held_lock: Callable[[], Awaitable[asyncpg.Connection]],
) -> None:
    """An application's own role, without pg_read_all_stats, sees another role's backend
    and its application name, but neither since when nor from where: the message says "?"
    for the first and leaves the second out."""
    holder = await held_lock()
    holder_pid = await holder.fetchval("SELECT pg_backend_pid()")
    role, password = f"lp_{secrets.token_hex(4)}", secrets.token_hex(8)
    await admin_pool.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    url = with_credentials(database_url, role, password)
    pool = None if mode == "standalone" else await create_host_pool(url, max_connections=2)
    try:
        lib = build(mode, url, pool, schema, init_timeout=0.15)
        with pytest.raises(errors.InitLockTimeoutError) as error:
            await lib.initialize()
        assert error.value.holder == (
            f"backend pid {holder_pid}, application_name 'migrating-elsewhere', holding it since ?"
        )
    finally:
        if pool is not None:
            await pool.close()
        await admin_pool.execute(f"DROP ROLE {role}")


@pytest.fixture
async def held_pgdbm_lock(
    database_url: str, schema: str, admin_pool: asyncpg.Pool
) -> AsyncIterator[asyncpg.Connection]:
    """pgdbm's own migration lock for ``schema`` (created here), held in an open
    transaction the way the backend of a process killed mid-migration holds it."""
    await admin_pool.execute(f'CREATE SCHEMA "{schema}"')
    conn = await _connect(database_url)
    try:
        await conn.execute("BEGIN")
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('pgdbm_migration_' || $1))",
            Library.module_name_for(schema),
        )
        yield conn
    finally:
        await conn.close()


async def test_a_backend_still_migrating_for_a_killed_process_is_named(
    make_lib: MakeLib, schema: str, held_pgdbm_lock: asyncpg.Connection, admin_pool: asyncpg.Pool
) -> None:
    """pgdbm's own migration lock, held by the backend of a process killed mid-migration,
    is waited for within init_timeout (not pgdbm's lock_timeout) and its holder named."""
    zombie_pid = await held_pgdbm_lock.fetchval("SELECT pg_backend_pid()")
    lib = make_lib(init_timeout=0.15)
    started = asyncio.get_running_loop().time()
    with pytest.raises(errors.InitLockTimeoutError) as error:
        await lib.initialize()
    waited = asyncio.get_running_loop().time() - started
    assert 0.15 <= waited < 4  # init_timeout, not pgdbm's lock_timeout of 5 s
    assert f"backend pid {zombie_pid}" in str(error.value)
    assert "pgdbm_migration_" in str(error.value)
    await held_pgdbm_lock.execute("ROLLBACK")
    await lib.initialize()
    assert await applied_migrations(admin_pool, schema) == shipped_migrations()


async def test_start_up_goes_on_soon_after_pgdbms_lock_is_freed(
    make_lib: MakeLib,
    schema: str,
    held_pgdbm_lock: asyncpg.Connection,
    admin_pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A start-up waiting for pgdbm's migration lock looks again within milliseconds at
    first, so it goes on soon after the holder lets go (not after a long first pause)."""
    # Every pause at the top of its range: the slowest the waiter may be, every time.
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    loop = asyncio.get_running_loop()
    started = loop.time()
    waiting = asyncio.create_task(make_lib(init_timeout=10).initialize())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await held_pgdbm_lock.execute("ROLLBACK")
    await waiting
    # Pauses of 0.01, 0.02, 0.04 s...: about 0.1 s in all; a first pause of a second or
    # more would show.
    assert loop.time() - started < 0.9
    assert await applied_migrations(admin_pool, schema) == shipped_migrations()


@pytest.fixture
def another_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Library]]:
    """The class of a second library made from this template: this package copied under
    another name (its own module, migrations and start-up code)."""
    name = f"{PACKAGE}_twin"
    shutil.copytree(
        Path(str(files(PACKAGE))), tmp_path / name, ignore=shutil.ignore_patterns("__pycache__")
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    core = importlib.import_module(f"{name}.core")
    try:
        yield getattr(core, Library.__name__)
    finally:
        for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[module]


async def test_libraries_starting_together_on_a_two_connection_host_pool_all_start(
    database_url: str,
    schema_factory: Callable[[], str],
    admin_pool: asyncpg.Pool,
    another_library: type[Library],
) -> None:
    """Three schemas, so three start-up locks, on a host pool of two connections: each
    holder needs a second connection, so no more than one may pin one at a time, whichever
    library (package) it belongs to."""
    pool = await create_host_pool(database_url, max_connections=2)
    try:
        libs = [
            *(build("shared", database_url, pool, schema_factory(), init_timeout=10) for _ in "ab"),
            another_library(
                db_manager=AsyncDatabaseManager(pool=pool, schema=schema_factory()),
                init_timeout=10,
            ),
        ]
        assert type(libs[2]).__module__ != Library.__module__
        await asyncio.wait_for(asyncio.gather(*(lib.initialize() for lib in libs)), 10)
        for lib in libs:
            assert lib.initialized
            assert (await lib.migration_status()).up_to_date
        for lib in libs[:2]:
            assert await applied_migrations(admin_pool, lib.schema) == shipped_migrations()
    finally:
        await pool.close()
    assert _bootstrap._HOLDERS == {}  # nothing kept per pool once start-ups are done


async def test_a_start_up_left_no_connection_by_others_gives_up_after_init_timeout(
    database_url: str,
    schema: str,
    schema_factory: Callable[[], str],
    held_pgdbm_lock: asyncpg.Connection,
    admin_pool: asyncpg.Pool,
) -> None:
    """On a host pool of two connections, one start-up pins one while it waits (here for
    pgdbm's lock); another schema's start-up waits within its init_timeout, then says why."""
    pool = await create_host_pool(database_url, max_connections=2)
    try:
        first = build("shared", database_url, pool, schema, init_timeout=10)
        waiting = asyncio.create_task(first.initialize())
        for _ in range(500):  # until it holds the pool's one slot (waiting for pgdbm's lock)
            if id(pool) in _bootstrap._HOLDERS and _bootstrap._HOLDERS[id(pool)][0].locked():
                break
            await asyncio.sleep(0.01)
        assert not waiting.done()
        second = build("shared", database_url, pool, schema_factory(), init_timeout=0.2)
        started = asyncio.get_running_loop().time()
        with pytest.raises(errors.InitLockTimeoutError) as error:
            await second.initialize()
        assert 0.2 <= asyncio.get_running_loop().time() - started < 3
        assert error.value.holder is None
        assert str(error.value) == (
            f"gave up waiting 0.2 s (init_timeout) for the start-up lock "
            f"'{second.module_name}:initialize': the pool's connections (max_size 2) stayed "
            "pinned by other start-ups in this process. Give the pool more connections, or "
            "start the libraries one after another."
        )
        # A start-up cancelled while it waits for the slot (a shutdown) takes nothing away.
        third = build("shared", database_url, pool, schema_factory(), init_timeout=10)
        cancelled = asyncio.create_task(third.initialize())
        for _ in range(500):
            if _bootstrap._HOLDERS[id(pool)][1] == 2:  # it counts itself among the users
                break
            await asyncio.sleep(0.01)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        slots, users = _bootstrap._HOLDERS[id(pool)]
        assert (slots.locked(), users) == (True, 1)  # the first start-up's, and only it
        await held_pgdbm_lock.execute("ROLLBACK")
        await asyncio.wait_for(waiting, 10)
        assert _bootstrap._HOLDERS == {}
        await second.initialize()  # the pool is free again
        assert await applied_migrations(admin_pool, second.schema) == shipped_migrations()
    finally:
        await pool.close()


async def test_a_start_up_whose_lock_connection_the_server_closed_still_finishes(
    make_lib: MakeLib, schema: str, admin_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backend holding the start-up lock is terminated while the migrations run (an
    operator's pg_terminate_backend, a pooler restart): the server has released the lock
    already, so start-up ends as its migrations did, not with asyncpg's "the underlying
    connection is closed" from rolling back on that connection."""
    key = f"{Library.module_name_for(schema)}:initialize"
    create_schema = _bootstrap.ensure_schema
    terminated: list[bool] = []

    async def cut_the_lock_holder_first(pool: asyncpg.Pool, name: str, first: str) -> None:
        terminated.append(
            await admin_pool.fetchval(
                "SELECT bool_or(pg_terminate_backend(l.pid)) FROM pg_locks l"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
                " AND l.classid = hashtext('copier-pgdbm')::oid AND l.objid = hashtext($1)::oid",
                key,
            )
        )
        await asyncio.sleep(0.05)  # the event loop reads the server's goodbye
        await create_schema(pool, name, first)

    monkeypatch.setattr(f"{PACKAGE}._dualmode.ensure_schema", cut_the_lock_holder_first)
    lib = make_lib()
    await lib.initialize()
    assert terminated == [True]
    assert await applied_migrations(admin_pool, schema) == shipped_migrations()
    assert (await lib.health()).ok


async def test_a_role_that_may_not_create_the_schema_is_told_how_to_start(
    mode: str, database_url: str, schema: str, admin_pool: asyncpg.Pool
) -> None:
    """A least-privilege role (no CREATE on the database) and no schema yet: start-up fails
    with MigrationFailedError saying what to create, not asyncpg's bare refusal."""
    role, password = f"lp_{secrets.token_hex(4)}", secrets.token_hex(8)
    await admin_pool.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    url = with_credentials(database_url, role, password)
    pool = None if mode == "standalone" else await create_host_pool(url, max_connections=2)
    try:
        lib = build(mode, url, pool, schema)
        with pytest.raises(errors.MigrationFailedError) as error:
            await lib.initialize()
        first = shipped_migrations()[0]
        assert error.value.filename == first
        assert isinstance(error.value.__cause__, asyncpg.InsufficientPrivilegeError)
        assert str(error.value) == (
            f"migration {first} cannot run: schema {schema!r} does not exist, and creating "
            f"it failed: InsufficientPrivilegeError: {error.value.__cause__}. Create it "
            f'beforehand, owned by this role (CREATE SCHEMA "{schema}" AUTHORIZATION <role>), '
            "or migrate with a role that may create it, on the primary if this server is a "
            "read-only standby."
        )
        assert not await schema_exists(admin_pool, schema)
        await admin_pool.execute(f'CREATE SCHEMA "{schema}" AUTHORIZATION {role}')
        await lib.initialize()  # as the message says
        assert await applied_migrations(admin_pool, schema) == shipped_migrations()
        await lib.close()
    finally:
        if pool is not None:
            await pool.close()
        await admin_pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin_pool.execute(f"DROP ROLE {role}")


async def test_the_lock_is_held_by_an_open_transaction(
    make_lib: MakeLib,
    schema: str,
    held_lock: Callable[[], Awaitable[asyncpg.Connection]],
    admin_pool: asyncpg.Pool,
) -> None:
    """The lock lives in a transaction (not a session), so it holds behind PgBouncer too.

    A waiter takes and gives back connections without leaving a lock behind, and the
    holder's COMMIT alone releases it.
    """
    holder = await held_lock()
    waiting = asyncio.create_task(make_lib(init_timeout=10).initialize())
    # It tries every few milliseconds, so by now it has usually met the lock; either way it
    # must not get through before the COMMIT.
    await asyncio.sleep(0.1)
    assert not waiting.done()
    assert not await schema_exists(admin_pool, schema)
    await holder.execute("COMMIT")
    await asyncio.wait_for(waiting, 10)
    assert await applied_migrations(admin_pool, schema) == shipped_migrations()


async def test_verify_only_start_up_writes_nothing_and_lists_what_is_missing(
    make_lib: MakeLib, schema: str, admin_pool: asyncpg.Pool
) -> None:
    """apply_migrations=False refuses a schema that lacks migrations and names the command."""
    verifier = make_lib(apply_migrations=False)
    with pytest.raises(errors.PendingMigrationsError, match="lacks migration") as error:
        await verifier.initialize()
    assert error.value.pending == tuple(shipped_migrations())
    assert f"migrate --schema {schema}" in str(error.value)
    assert not await schema_exists(admin_pool, schema)

    report = await make_lib(apply_migrations=False).migrate()  # the release step
    assert report.applied == tuple(shipped_migrations())
    await verifier.initialize()
    assert (await verifier.health()).ok


async def test_a_release_step_that_only_migrates_leaves_no_connection_open(
    database_url: str, schema: str, admin_pool: asyncpg.Pool
) -> None:
    """Standalone and never started, migrate() and migration_status() each close the pool
    they opened: a release script has nothing to close. Start-up goes on from there."""
    lib = build("standalone", database_url, None, schema)
    try:
        assert (await lib.migrate()).applied == tuple(shipped_migrations())
        assert (await lib.migration_status()).up_to_date
        if not TRANSACTION_POOLER:  # PgBouncer keeps its own server connections open
            count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
            for _ in range(100):  # a backend leaves pg_stat_activity just after its client
                if not await admin_pool.fetchval(count, lib.module_name):
                    break
                await asyncio.sleep(0.02)
            assert await admin_pool.fetchval(count, lib.module_name) == 0
        await lib.initialize()
        assert await lib.db.fetch_value("SELECT 1") == 1
        assert (await lib.migration_status()).up_to_date  # on the open pool, which stays
        assert lib.initialized
        assert await lib.db.fetch_value("SELECT 2") == 2
    finally:
        await lib.close()


async def test_dry_run_lists_pending_and_writes_nothing(
    make_lib: MakeLib, schema: str, admin_pool: asyncpg.Pool
) -> None:
    """migrate(dry_run=True) reports what would be applied without touching the server."""
    report = await make_lib().migrate(dry_run=True)
    assert report.dry_run
    assert report.pending == tuple(shipped_migrations())
    assert report.applied == ()
    assert not await schema_exists(admin_pool, schema)


async def test_changed_migration_is_refused_with_both_ways_out(
    make_lib: MakeLib, schema: str, admin_pool: asyncpg.Pool
) -> None:
    """An applied migration whose file changed stops start-up, and the message says what to do."""
    await make_lib().initialize()
    first = shipped_migrations()[0]
    await admin_pool.execute(
        f"UPDATE \"{schema}\".schema_migrations SET checksum = repeat('0', 64) WHERE filename = $1",
        first,
    )
    for lib in (make_lib(), make_lib(apply_migrations=False)):
        with pytest.raises(errors.MigrationDriftError, match=f"{first} changed after") as error:
            await lib.initialize()
        assert error.value.drifted == (first,)
        assert "restore the file" in str(error.value)
        assert "new migration file" in str(error.value)
    status = await make_lib().migration_status()
    assert status.drifted == (first,)
    assert not status.up_to_date


@pytest.fixture
def migrations_folder() -> Iterator[Path]:
    """An empty folder for migration files that the package does not ship."""
    # Not pytest's tmp_path: pytest makes its base directory private (0700), and the
    # embedded server, which runs as its own user, may live in a venv below it.
    with tempfile.TemporaryDirectory(prefix="migrations-") as folder:
        yield Path(folder)


async def test_schema_of_another_package_is_refused_with_a_hint(
    make_lib: MakeLib, schema: str, shared_pool: asyncpg.Pool, migrations_folder: Path
) -> None:
    """Two libraries in one schema: the clash names the other package and the fix."""
    (migrations_folder / "001_other.sql").write_text(
        "CREATE TABLE {{tables.records}} (id INT PRIMARY KEY);\n"
    )
    await shared_pool.execute(f'CREATE SCHEMA "{schema}"')
    other = AsyncMigrationManager(
        AsyncDatabaseManager(pool=shared_pool, schema=schema),
        migrations_path=str(migrations_folder),
        module_name=f"other_package_{schema}",
    )
    await other.apply_pending_migrations()
    with pytest.raises(errors.SchemaConflictError, match=f"other_package_{schema}") as error:
        await make_lib().initialize()
    assert "cannot share a schema" in str(error.value)
    assert isinstance(error.value.__cause__, asyncpg.DuplicateTableError)


async def test_unqualified_table_in_a_migration_points_to_the_placeholder(
    make_lib: MakeLib, migrations_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration naming a table without {{tables.x}} fails with advice to use it."""
    (migrations_folder / "001_unqualified.sql").write_text(
        "ALTER TABLE tags ADD COLUMN note TEXT;\n"
    )
    # Shipping a broken migration in the package is not possible from a test: point the
    # library at another folder instead.
    monkeypatch.setattr(f"{PACKAGE}._dualmode.migrations_dir", lambda _: migrations_folder)
    with pytest.raises(errors.MigrationFailedError, match=r"001_unqualified\.sql failed") as error:
        await make_lib().initialize()
    assert error.value.filename == "001_unqualified.sql"
    assert "{{tables.name}}" in str(error.value)
    assert "unqualified here: tags" in str(error.value)


async def test_a_migration_outside_a_transaction_builds_its_index_concurrently(
    make_lib: MakeLib,
    schema: str,
    admin_pool: asyncpg.Pool,
    migrations_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A `-- pgdbm:no-transaction` migration (CREATE INDEX CONCURRENTLY) under the start-up
    lock: the lock's open transaction holds no snapshot, which the build would wait for
    while the lock waits for the build (until lock_timeout, leaving an invalid index)."""
    (migrations_folder / "001_items.sql").write_text(
        "CREATE TABLE {{tables.items}} (id INT PRIMARY KEY, note TEXT);\n"
    )
    (migrations_folder / "002_items_note.sql").write_text(
        "-- pgdbm:no-transaction\n"
        "CREATE INDEX CONCURRENTLY items_note_idx ON {{tables.items}} (note);\n"
    )
    monkeypatch.setattr(f"{PACKAGE}._dualmode.migrations_dir", lambda _: migrations_folder)
    await asyncio.wait_for(make_lib(init_timeout=10).initialize(), 20)
    valid = await admin_pool.fetchval(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = $1::regclass",
        f'"{schema}".items_note_idx',
    )
    assert valid is True


@pytest.fixture
def make_package(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Importable packages whose migrations/ folder holds the given files."""
    made: list[str] = []
    with tempfile.TemporaryDirectory(prefix="packages-") as root:
        monkeypatch.syspath_prepend(root)

        def make(*files: str) -> str:
            name = f"pkg_{secrets.token_hex(4)}"
            (Path(root) / name / "migrations").mkdir(parents=True)
            (Path(root) / name / "__init__.py").write_text("")
            for file in files:
                (Path(root) / name / "migrations" / file).write_text("SELECT 1;\n")
            made.append(name)
            return name

        yield make
    for name in made:
        sys.modules.pop(name, None)


@pytest.mark.parametrize(
    "files",
    [(), ("README.md", "001_initial.sql.orig", "002_next.sql.rej")],
    ids=["empty", "no-sql-file"],
)
def test_a_migrations_folder_without_sql_files_is_refused(
    make_package: Callable[..., str], files: tuple[str, ...]
) -> None:
    """A package whose migrations/ has no *.sql would start up with no tables: refused."""
    package = make_package(*files)
    with pytest.raises(errors.MigrationsNotFoundError, match=f"in package '{package}'"):
        migrations_dir(package)


def test_a_migrations_folder_with_sql_files_is_found(make_package: Callable[..., str]) -> None:
    package = make_package("001_first.sql")
    folder = migrations_dir(package)
    assert folder.name == "migrations"
    assert [path.name for path in folder.glob("*.sql")] == ["001_first.sql"]


async def test_a_migration_done_elsewhere_while_waiting_is_not_applied_again(
    make_lib: MakeLib,
    schema: str,
    shared_pool: asyncpg.Pool,
    held_lock: Callable[[], Awaitable[asyncpg.Connection]],
    admin_pool: asyncpg.Pool,
) -> None:
    """migrate() that waited for the lock looks again: another process has migrated, so it
    reports nothing applied (and no dry run)."""
    holder = await held_lock()
    waiting = asyncio.create_task(make_lib(init_timeout=10).migrate())
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await shared_pool.execute(f'CREATE SCHEMA "{schema}"')
    elsewhere = AsyncMigrationManager(
        AsyncDatabaseManager(pool=shared_pool, schema=schema),
        migrations_path=str(migrations_dir(PACKAGE)),
        module_name=Library.module_name_for(schema),
    )
    await elsewhere.apply_pending_migrations()  # the other process, holding the lock
    await holder.execute("COMMIT")
    report = await asyncio.wait_for(waiting, 10)
    assert (report.applied, report.pending, report.dry_run) == ((), (), False)
    assert await applied_migrations(admin_pool, schema) == shipped_migrations()
