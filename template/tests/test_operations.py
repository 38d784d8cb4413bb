# Owned by the copier-pgdbm template: `copier update` replaces this file, so do not edit it.
"""Operations: the deploy-time command, health, connection errors, logging, pool options."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from pgdbm import AsyncDatabaseManager, DatabaseConfig

from .helpers import (
    POOLER_OPTIONS,
    TRANSACTION_POOLER,
    backends,
    create_host_pool,
    shipped_migrations,
)
from .library import PACKAGE, Library, PoolOptions, _cli, errors
from .tcp_proxy import TcpProxy

MakeLib = Callable[..., Library]
SECRET = "hunter2-never-printed"


# ---------------------------------------------------------------- python -m <package>


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command line in this process: exit status, stdout, stderr."""
    pooler = ["--transaction-pooler"] if TRANSACTION_POOLER else []
    code = _cli.main(Library, [*pooler, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_and_migrate_on_a_fresh_then_current_schema(
    database_url: str, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """status exits 1 while migrations are pending and 0 once migrate has applied them."""
    first = shipped_migrations()[0]
    dsn = ["--dsn", database_url, "--schema", schema]

    code, out, _ = cli(capsys, *dsn, "status")
    assert code == 1
    module = Library.module_name_for(schema)
    assert out.startswith(f"schema {schema} (module {module}) at host=")
    assert f"pending  {first}" in out
    assert f"run `python -m {PACKAGE} migrate --schema {schema}`" in out

    code, out, _ = cli(capsys, *dsn, "migrate", "--dry-run")
    assert (code, f"would apply  {first}" in out, "nothing written" in out) == (0, True, True)
    assert cli(capsys, *dsn, "status")[0] == 1  # the dry run wrote nothing

    code, out, _ = cli(capsys, *dsn, "migrate")
    assert code == 0
    assert f"applied  {first}" in out

    code, out, _ = cli(capsys, *dsn, "status")
    assert code == 0
    assert out.rstrip().endswith("up to date")
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\+00:00|[+-]\d\d:\d\d)?"
    assert re.search(rf"^applied  {re.escape(first)}  {stamp}$", out, re.MULTILINE), out
    assert "changed since" not in out

    code, out, _ = cli(capsys, *dsn, "migrate")
    assert (code, "(0 applied now)" in out) == (0, True)


def test_options_go_before_or_after_the_command_and_the_advice_runs_as_printed(
    database_url: str, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command status prints for pending migrations (options after the command) is
    one the command line accepts, and it applies them."""
    code, out, _ = cli(capsys, "status", "--dsn", database_url, "--schema", schema)
    assert code == 1
    advice = re.search(r"run `python -m \S+ (migrate .*)`", out)
    assert advice is not None, out
    code, out, _ = cli(capsys, "--dsn", database_url, *advice[1].split())
    assert (code, f"applied  {shipped_migrations()[0]}" in out) == (0, True)
    code, out, _ = cli(
        capsys,
        "--schema",
        "ignored_by_the_later_one",
        "status",
        "--dsn",
        database_url,
        "--schema",
        schema,
        "--timeout",
        "5",
    )
    assert code == 0
    assert out.startswith(f"schema {schema} ")


def test_a_connect_timeout_in_the_url_points_to_the_commands_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command line names its own option, not the class's keyword (and shows nothing
    of the connection string)."""
    url = f"postgresql://app:{SECRET}@127.0.0.1:1/appdb?connect_timeout=5"
    code, out, err = cli(capsys, "--dsn", url, "status")
    assert (code, out) == (2, "")
    assert err == (
        "error: the connection string in --dsn sets connect_timeout in its query, which "
        "asyncpg sends to the server as a setting; pass --connect-timeout SECONDS instead\n"
    )


def test_usage_errors_and_unforeseen_failures_exit_2_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Exit 1 means "pending" to a release script: every other failure is 2, and neither
    argparse's echo of a bad argument, nor an unforeseen error, nor the refusal of a
    connection string that asyncpg cannot read shows the password."""
    url = f"postgresql://app:{SECRET}@127.0.0.1:1/appdb?sslmode=bogus"  # asyncpg refuses it
    code, out, err = cli(capsys, "--dsn", url, "status")
    assert code == 2
    assert err.startswith("error: ClientConfigurationError: `sslmode` parameter must be one")
    assert SECRET not in out + err
    unencoded = f"postgresql://app:pw/{SECRET}@127.0.0.1:1/appdb"
    code, out, err = cli(capsys, "--dsn", unencoded, "status")
    assert (code, out) == (2, "")
    assert err.startswith("error: the connection string in --dsn cannot be read as a URL: ")
    assert "percent-encode them" in err
    assert SECRET not in out + err
    with pytest.raises(SystemExit) as exit_:
        _cli.main(Library, ["status", "--bogus", url])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --bogus postgresql://app:***@127.0.0.1" in err
    assert SECRET not in err


@pytest.mark.parametrize("variable", ["DATABASE_URL", f"{PACKAGE.upper()}_DATABASE_URL"])
def test_a_refused_connection_string_names_where_it_came_from(
    variable: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(f"{PACKAGE.upper()}_DATABASE_URL", raising=False)
    monkeypatch.setenv(variable, f"host=db password={SECRET}")
    code, out, err = cli(capsys, "status")
    assert (code, out) == (2, "")
    assert err == f"error: the connection string in ${variable} is not a postgresql:// URL " + (
        "(asyncpg reads no libpq key=value string)\n"
    )


@pytest.mark.parametrize(
    "flag", ["--timeout", "--connect-timeout", "--statement-timeout", "--lock-timeout"]
)
@pytest.mark.parametrize("bad", ["nan", "inf", "0", "-1", "soon"])
def test_timeouts_must_be_positive_numbers_of_seconds(
    flag: str, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        _cli.main(Library, ["status", "--dsn", "postgresql://db/none", flag, bad])
    assert exit_.value.code == 2
    assert f"argument {flag}: must be a positive number of seconds, got '{bad}'" in (
        capsys.readouterr().err
    )


def test_connect_timeout_bounds_the_command_against_a_server_that_never_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A listening socket that never answers (the kernel accepts, nobody speaks): exit 2
    after --connect-timeout, not after asyncpg's 60 s."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        url = f"postgresql://app:{SECRET}@127.0.0.1:{port}/appdb"
        code, _, err = cli(capsys, "--dsn", url, "--connect-timeout", "0.15", "status")
    assert code == 2
    assert err == (
        f"error: DatabaseConnectionError: cannot reach PostgreSQL at host=127.0.0.1 port={port} "
        "database=appdb user=app: TimeoutError: not connected within 0.15 s (connect_timeout, "
        "retries included)\n"
    )


def test_status_on_a_drifted_schema_exits_2_with_advice(
    database_url: str, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A migration changed after it was applied: status and migrate exit 2 and say why."""
    dsn = ["--dsn", database_url, "--schema", schema]
    assert cli(capsys, *dsn, "migrate")[0] == 0
    first = shipped_migrations()[0]

    async def tamper() -> None:
        conn = await asyncpg.connect(database_url, statement_cache_size=0)
        try:
            await conn.execute(
                f"UPDATE \"{schema}\".schema_migrations SET checksum = 'x' WHERE filename = $1",
                first,
            )
        finally:
            await conn.close()

    asyncio.run(tamper())
    code, out, err = cli(capsys, *dsn, "status")
    assert code == 2
    assert re.search(rf"^applied  {re.escape(first)}  \S+ \S+ \(file changed since!\)$", out, re.M)
    assert f"{first} changed after being applied" in err
    code, _, err = cli(capsys, *dsn, "migrate")
    assert (code, "new migration file" in err) == (2, True)


def test_unreachable_database_exits_2_without_the_password(
    capsys: pytest.CaptureFixture[str], closed_port: int
) -> None:
    """A refused connection is exit status 2 with where it tried, never the password."""
    dsn = f"postgresql://app:{SECRET}@127.0.0.1:{closed_port}/appdb"
    code, out, err = cli(capsys, "--dsn", dsn, "status")
    assert code == 2
    assert f"host=127.0.0.1 port={closed_port} database=appdb" in err
    assert SECRET not in out + err


def test_no_database_given_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --dsn or the environment variables, the command says what it needs."""
    monkeypatch.delenv(f"{PACKAGE.upper()}_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    code, _, err = cli(capsys, "status")
    assert code == 2
    assert f"${PACKAGE.upper()}_DATABASE_URL" in err


def test_the_dsn_falls_back_to_database_url(
    database_url: str,
    schema: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without --dsn and without $<PACKAGE>_DATABASE_URL, $DATABASE_URL is used."""
    monkeypatch.delenv(f"{PACKAGE.upper()}_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    code, out, _ = cli(capsys, "--schema", schema, "status")
    assert code == 1
    assert f"pending  {shipped_migrations()[0]}" in out


def test_python_dash_m_runs_the_command(database_url: str, schema: str) -> None:
    """`python -m <package>` is wired to the same command, DSN from the environment."""
    env_var = f"{PACKAGE.upper()}_DATABASE_URL"
    pooler = ["--transaction-pooler"] if TRANSACTION_POOLER else []
    proc = subprocess.run(
        [sys.executable, "-m", PACKAGE, *pooler, "--schema", schema, "status"],
        env={**os.environ, env_var: database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert f"pending  {shipped_migrations()[0]}" in proc.stdout
    assert "pending: run" in proc.stdout


def test_help_names_the_command_its_environment_and_exit_statuses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        _cli.main(Library, ["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m {PACKAGE} [-h]")
    assert out.split("\n\n")[0].endswith("COMMAND ...")  # the usage names the subcommand
    assert f"Check or apply the migrations of {PACKAGE} ({Library.__name__})." in out
    assert f"else ${PACKAGE.upper()}_DATABASE_URL, else $DATABASE_URL" in " ".join(out.split())
    assert "Exit status: 0 up to date" in " ".join(out.split())
    for option in ("--timeout", "--connect-timeout", "--statement-timeout", "--lock-timeout"):
        assert f"{option} SECONDS" in out, option


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    """Without status or migrate nothing runs: no default command migrates by surprise."""
    with pytest.raises(SystemExit) as exit_:
        _cli.main(Library, ["--dsn", "postgresql://nobody@127.0.0.1:1/none"])
    assert exit_.value.code == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err


def test_the_command_opens_a_small_pool_with_the_options_given(
    database_url: str, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the command passes to the library class: its schema, timeout, pooler options.

    A recording subclass, because a direct server (as here) behaves the same with or
    without the pooler options; it is what the command hands the class that must hold.
    """
    seen: list[dict[str, object]] = []

    class Recording(Library):
        def __init__(self, **options: Any) -> None:
            seen.append(options)
            super().__init__(**options)

    Recording.__module__ = Library.__module__  # the command names the package from it
    pooler = ["--transaction-pooler"] if TRANSACTION_POOLER else []
    assert _cli.main(Recording, [*pooler, "--dsn", database_url, "status"]) in (0, 1)
    options = ["--schema", schema, "--timeout", "7", "--connect-timeout", "9"]
    # 0.4 ms rounds to 0, which PostgreSQL reads as "no limit": 1 ms is sent instead.
    options += ["--statement-timeout", "600", "--lock-timeout", "0.0004", "--transaction-pooler"]
    assert _cli.main(Recording, ["--dsn", database_url, *options, "status"]) == 1
    capsys.readouterr()
    small = {"min_connections": 1, "max_connections": 2, "retry_attempts": 1}
    # No statement timeout (0) and pgdbm's lock timeout unless asked.
    default_timeouts = {"statement_timeout_ms": 0, "lock_timeout_ms": 5000}
    through_pooler = {"statement_cache_size": 0, "shared_pool_search_path": None}
    assert seen == [
        {
            "connection_string": database_url,
            "schema": Library.DEFAULT_SCHEMA,
            "init_timeout": 60.0,
            "connect_timeout": None,  # the class's default
            **small,
            **default_timeouts,
            **(through_pooler if TRANSACTION_POOLER else {}),
        },
        {
            "connection_string": database_url,
            "schema": schema,
            "init_timeout": 7.0,
            "connect_timeout": 9.0,
            **small,
            "statement_timeout_ms": 600_000,
            "lock_timeout_ms": 1,
            **through_pooler,
        },
    ]


async def test_migrate_runs_its_migrations_without_a_statement_timeout(
    database_url: str,
    schema: str,
    admin_pool: asyncpg.Pool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The release step's migrations see no statement_timeout (an index build or backfill
    may take long) and pgdbm's lock timeout, or the ones given, on a direct connection.
    (PgBouncer drops these startup parameters: there the role's settings apply.)"""
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "001_seen.sql").write_text(
        "CREATE TABLE {{tables.seen}} AS SELECT current_setting('statement_timeout') AS st,"
        " current_setting('lock_timeout') AS lt;\n"
    )
    monkeypatch.setattr(f"{PACKAGE}._dualmode.migrations_dir", lambda _: migrations)
    pooler = ["--transaction-pooler"] if TRANSACTION_POOLER else []
    for extra, expected in (([], ("0", "5s")), (["--statement-timeout", "90"], ("90s", "5s"))):
        target = f"{schema}_{len(extra)}"
        command = [*pooler, "--dsn", database_url, "--schema", target, *extra, "migrate"]
        assert await asyncio.to_thread(_cli.main, Library, command) == 0
        seen = await admin_pool.fetchrow(f'SELECT st, lt FROM "{target}".seen')
        if not TRANSACTION_POOLER:
            assert (seen["st"], seen["lt"]) == expected
        await admin_pool.execute(f'DROP SCHEMA "{target}" CASCADE')
    assert "applied  001_seen.sql" in capsys.readouterr().out


async def test_migrate_gives_up_after_timeout_while_another_process_migrates(
    database_url: str, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--timeout bounds the wait for the start-up lock: exit 2, naming the lock's holder."""
    holder = await asyncpg.connect(database_url, statement_cache_size=0)
    try:
        await holder.execute("BEGIN")
        await holder.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtext('copier-pgdbm'), hashtext($1))",
            f"{Library.module_name_for(schema)}:initialize",
        )
        holder_pid = await holder.fetchval("SELECT pg_backend_pid()")
        started = asyncio.get_running_loop().time()
        # In a thread: the command runs an event loop of its own. `python -m` is wired to
        # the same main() (test_python_dash_m_runs_the_command).
        options = ["--dsn", database_url, "--schema", schema, "--timeout", "0.15", "migrate"]
        code, _, err = await asyncio.to_thread(cli, capsys, *options)
        waited = asyncio.get_running_loop().time() - started
    finally:
        await holder.close()
    assert code == 2, err
    assert "gave up waiting 0.15 s (init_timeout)" in err
    assert f"backend pid {holder_pid}" in err
    assert 0.15 <= waited < 10


# ---------------------------------------------------------------- refused and lost connections


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _messages(error: BaseException | None) -> str:
    text = ""
    while error is not None:
        text += f"{type(error).__name__}: {error}\n"
        error = error.__cause__ or error.__context__
    return text


async def test_refused_connection_raises_the_same_error_in_both_modes(
    mode: str, proxy: TcpProxy, schema: str
) -> None:
    """Standalone or embedded, a server that went away is DatabaseConnectionError."""
    url = proxy.url(password=proxy.password or SECRET)
    pool = None
    if mode == "standalone":
        lib = Library(connection_string=url, schema=schema, retry_attempts=1, **POOLER_OPTIONS)
    else:
        pool = await create_host_pool(url, max_connections=2)
        lib = Library(db_manager=AsyncDatabaseManager(pool=pool, schema=schema))
    await proxy.stop()
    try:
        with pytest.raises(errors.DatabaseConnectionError) as error:
            await lib.initialize()
    finally:
        await lib.close()
        if pool is not None:
            pool.terminate()
    message = str(error.value)
    assert f"host=127.0.0.1 port={proxy.port}" in message
    assert f"database={proxy.database}" in message
    assert error.value.__cause__ is not None  # the driver's error, for the details
    assert not isinstance(error.value.__cause__, errors.LibraryError)
    assert SECRET not in _messages(error.value)
    if proxy.password and proxy.password not in f"{proxy.user} {proxy.database}":
        assert proxy.password not in _messages(error.value)


async def test_connection_lost_after_start_up_is_the_same_error(
    mode: str, proxy: TcpProxy, schema: str
) -> None:
    """A query on an initialized instance whose server went away raises DatabaseConnectionError."""
    url = proxy.url()
    pool = None
    if mode == "standalone":
        lib = Library(connection_string=url, schema=schema, retry_attempts=1, **POOLER_OPTIONS)
    else:
        pool = await create_host_pool(url, max_connections=2)
        lib = Library(db_manager=AsyncDatabaseManager(pool=pool, schema=schema))
    try:
        await lib.initialize()
        assert await lib.db.fetch_value("SELECT 1") == 1
        await proxy.stop()
        with pytest.raises(errors.DatabaseConnectionError, match=f"port={proxy.port}"):
            await lib.db.fetch_value("SELECT 1")
    finally:
        await lib.close()
        if pool is not None:
            pool.terminate()


async def test_connections_the_server_closes_are_the_same_error(
    mode: str, database_url: str, admin_pool: asyncpg.Pool, schema: str
) -> None:
    """Backends terminated under a ready instance (a failover, a restart): a query they cut
    short raises DatabaseConnectionError, and every call either succeeds on a new
    connection or raises that, never a driver error (asyncpg reports a termination that
    races a query as InternalClientError: "cannot switch to state")."""
    tag = Library.module_name_for(schema)
    options: Any = {"min_connections": 2, "max_connections": 3, **POOLER_OPTIONS}
    pool = None
    if mode == "standalone":
        lib = Library(connection_string=database_url, schema=schema, **options)
    else:
        config = DatabaseConfig(
            connection_string=database_url, server_settings={"application_name": tag}, **options
        )
        pool = await AsyncDatabaseManager.create_shared_pool(config)
        lib = Library(db_manager=AsyncDatabaseManager(pool=pool, schema=schema))
    sleep = f"SELECT pg_sleep(10) /* {tag} */"
    try:
        await lib.initialize()
        # Cut short mid-query, deterministically.
        sleeper = asyncio.ensure_future(lib.db.fetch_value(sleep))
        for _ in range(250):
            killed = await admin_pool.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE query = $1 AND state = 'active'",
                sleep,
            )
            if killed:
                break
            await asyncio.sleep(0.02)
        with pytest.raises(errors.DatabaseConnectionError):
            await sleeper
        # Terminations racing the library's own queries: whatever each call meets.
        for _ in range(20):
            try:
                await admin_pool.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    tag,
                )
            except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
                # Behind a pooler the admin's server connection may be one just terminated
                # (server connections carry the last client's application_name).
                assert TRANSACTION_POOLER
            with contextlib.suppress(errors.DatabaseConnectionError):
                assert await lib.db.fetch_value("SELECT 1") == 1
    finally:
        await lib.close()
        if pool is not None:
            pool.terminate()


async def test_close_succeeds_when_connections_broke_just_before(
    database_url: str, schema: str
) -> None:
    """A pooled connection whose socket broke an instant before close() (the server went
    away, and asyncpg has not read that yet) cannot say goodbye: close() still closes the
    pool and returns instead of raising the socket's BrokenPipeError. (Whether the loop
    reads the server's end first, and nothing breaks, varies: on CPython 3.11 the write
    fails nearly every time.)"""
    lib = Library(
        connection_string=database_url, schema=schema, max_connections=2, **POOLER_OPTIONS
    )
    await lib.initialize()
    pool = lib._pool  # the instance's own pool, standalone
    assert pool is not None
    held = [await pool.acquire() for _ in range(2)]
    sockets = [conn._transport.get_extra_info("socket") for conn in held]  # asyncpg's own
    for conn in held:
        await pool.release(conn)
    for sock in sockets:
        sock.shutdown(socket.SHUT_WR)  # the next write on it fails
    await lib.close()
    assert pool.is_closing()
    assert lib._pool is None


async def test_standalone_refusal_names_the_server_and_not_the_password(closed_port: int) -> None:
    """The message says where the library tried to connect; the password stays out."""
    lib = Library(
        connection_string=f"postgresql://app:{SECRET}@127.0.0.1:{closed_port}/appdb",
        retry_attempts=1,
    )
    with pytest.raises(errors.DatabaseConnectionError) as error:
        await lib.initialize()
    assert str(error.value).startswith(
        f"cannot reach PostgreSQL at host=127.0.0.1 port={closed_port} database=appdb user=app:"
    )
    assert isinstance(error.value.__cause__, OSError)
    assert SECRET not in _messages(error.value)
    assert (await lib.health()).ok is False  # and no pool was left open


# ---------------------------------------------------------------- health


async def test_health_of_a_ready_instance(lib: Library) -> None:
    """Initialized and reachable: ok, with a round-trip time and nothing pending."""
    health = await lib.health()
    assert health.ok
    assert health.reachable
    assert health.latency_ms is not None
    assert 0 < health.latency_ms < 5000
    assert health.pending_migrations == ()
    assert health.error is None
    assert health.as_dict()["ok"] is True


async def test_health_reports_pending_migrations(
    make_lib: MakeLib, mode: str, admin_pool: asyncpg.Pool
) -> None:
    """Before start-up, in both modes: reachable, the schema lacks every migration, not ok.
    Standalone probes on a connection of its own, closed again before health() returns."""
    lib = make_lib()
    health = await lib.health()
    assert (health.ok, health.reachable) == (False, True)
    assert health.pending_migrations == tuple(shipped_migrations())
    assert health.error == "not initialized: call initialize() first"
    assert health.latency_ms is not None
    if mode == "standalone" and not TRANSACTION_POOLER:
        assert await backends(admin_pool, lib.module_name) == 0


async def test_health_is_not_ok_until_initialized_though_all_is_applied(
    make_lib: MakeLib,
) -> None:
    """Every migration applied (by another instance) is not enough: an instance whose
    queries would raise NotInitializedError is not ready."""
    await make_lib().migrate()
    lib = make_lib()
    before = await lib.health()
    assert (before.ok, before.reachable, before.pending_migrations) == (False, True, ())
    await lib.initialize()
    assert (await lib.health()).ok
    await lib.close()
    after = await lib.health()
    assert (after.ok, after.reachable, after.error) == (
        False,
        True,
        "not initialized: call initialize() first",
    )


async def test_health_of_an_unreachable_server_before_start_up(closed_port: int) -> None:
    """Standalone, never started, nothing listening: unreachable, where, no password."""
    lib = Library(
        connection_string=f"postgresql://app:{SECRET}@127.0.0.1:{closed_port}/appdb",
        retry_attempts=1,
    )
    health = await lib.health(max_wait=5)
    assert (health.ok, health.reachable, health.latency_ms) == (False, False, None)
    assert health.error is not None
    assert health.error.startswith(f"cannot reach PostgreSQL at host=127.0.0.1 port={closed_port}")
    assert SECRET not in health.error


async def test_health_probes_without_a_pool_on_one_connection_and_one_try(
    monkeypatch: pytest.MonkeyPatch, database_url: str, schema: str
) -> None:
    """The probe's pool is closed before health() returns, so its size and retries cannot
    be seen from outside: a spy on the pool it asks pgdbm for says what it asked."""
    asked: list[DatabaseConfig] = []
    create = AsyncDatabaseManager.create_shared_pool

    async def spy(config: DatabaseConfig) -> asyncpg.Pool:
        asked.append(config)
        return await create(config)

    monkeypatch.setattr(AsyncDatabaseManager, "create_shared_pool", spy)
    lib = Library(
        connection_string=database_url,
        schema=schema,
        min_connections=3,
        max_connections=5,
        retry_attempts=4,
        **POOLER_OPTIONS,
    )
    assert (await lib.health()).reachable
    assert [(c.min_connections, c.max_connections, c.retry_attempts) for c in asked] == [(1, 1, 1)]


async def test_health_reports_a_connection_string_it_cannot_use() -> None:
    """A probe reports what keeps it from connecting, even an error that is not the
    server's (an sslmode asyncpg does not know), and raises nothing; the password stays out."""
    dsn = f"postgresql://app:{SECRET}@127.0.0.1:1/appdb?sslmode=bogus"
    health = await Library(connection_string=dsn).health()
    assert (health.ok, health.reachable, health.latency_ms) == (False, False, None)
    assert health.error is not None
    assert health.error.startswith("cannot reach PostgreSQL at host=127.0.0.1 port=1 database")
    assert "ClientConfigurationError: `sslmode` parameter must be one of" in health.error
    assert SECRET not in health.error


async def _through(proxy: TcpProxy, mode: str, schema: str) -> tuple[Library, asyncpg.Pool | None]:
    """A library through ``proxy``: standalone, or embedded on a host pool of its own,
    returned for the test to close."""
    if mode == "standalone":
        return Library(connection_string=proxy.url(), schema=schema, **POOLER_OPTIONS), None
    pool = await create_host_pool(proxy.url(), max_connections=2)
    return Library(db_manager=AsyncDatabaseManager(pool=pool, schema=schema)), pool


async def test_health_of_a_pool_reconnecting_to_a_silent_server_says_it_cannot_reach_it(
    mode: str, proxy: TcpProxy, schema: str
) -> None:
    """The pool's connections were cut (a failover) and the server now answers nothing:
    the probe, waiting for a new connection, says the server cannot be reached, not that
    the application holds the pool's connections."""
    lib, pool = await _through(proxy, mode, schema)
    try:
        await lib.initialize()
        await proxy.stop()  # cuts every connection
        proxy.silent = True
        await proxy.start(proxy.port)
        await asyncio.sleep(0.05)  # the event loop reads the cuts
        health = await lib.health(max_wait=0.15)
    finally:
        await proxy.stop()
        await lib.close()
        if pool is not None:
            pool.terminate()
    assert (health.ok, health.reachable, health.latency_ms) == (False, False, None)
    assert health.error is not None
    assert health.error.startswith(f"cannot reach PostgreSQL at host=127.0.0.1 port={proxy.port}")
    assert health.error.endswith("TimeoutError: no answer within 0.15 s")


async def test_health_of_a_full_pool_whose_probe_got_no_answer_says_it_cannot_reach_it(
    proxy: TcpProxy, schema: str
) -> None:
    """The application holds one of the host pool's two connections and the probe the
    other when the server goes silent: the probe was answered nothing, so the server
    cannot be reached (not: no connection came free)."""
    pool = await create_host_pool(proxy.url(), max_connections=2)
    lib = Library(db_manager=AsyncDatabaseManager(pool=pool, schema=schema))
    try:
        await lib.initialize()
        # Held until the end (terminated with the pool): giving it back would reset it,
        # a round trip the silent server never answers.
        await pool.acquire()
        proxy.silent = True
        health = await lib.health(max_wait=0.15)
        assert (pool.get_size(), pool.get_idle_size()) == (2, 0)  # full, as it was
    finally:
        await proxy.stop()
        pool.terminate()
    assert (health.ok, health.reachable) == (False, False)
    assert health.error is not None
    assert health.error.startswith(f"cannot reach PostgreSQL at host=127.0.0.1 port={proxy.port}")
    assert health.error.endswith("TimeoutError: no answer within 0.15 s")


async def test_health_of_a_server_that_never_answers_gives_up_after_max_wait(
    mode: str, proxy: TcpProxy, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that accepts connections but answers nothing (hung, or a network that drops
    packets): health() reports it unreachable after max_wait instead of hanging, whether
    the instance has its pool or (standalone, not started) must connect to probe."""
    lib, pool = await _through(proxy, mode, schema)
    not_started = Library(connection_string=proxy.url(), schema=schema, **POOLER_OPTIONS)
    try:
        await lib.initialize()
        proxy.silent = True
        probes = await asyncio.gather(lib.health(max_wait=0.15), not_started.health(max_wait=0.15))
    finally:
        await proxy.stop()
        await lib.close()
        if pool is not None:
            pool.terminate()
    await asyncio.sleep(0.1)  # the abandoned queries end once the connections are cut
    for health in probes:
        assert (health.ok, health.reachable, health.latency_ms) == (False, False, None)
        assert health.error is not None
        assert f"port={proxy.port}" in health.error
        assert health.error.endswith("TimeoutError: no answer within 0.15 s")
    # Their endings were collected: asyncio logged no unretrieved or failing callback, but
    # for asyncpg's own. An asyncpg.connect() cancelled just after its TCP connection opens
    # (here: when max_wait or the teardown lands in that instant, as under load) leaves this
    # exception in the future of asyncpg's SSL negotiation, and asyncpg never reads it.
    # Seen with asyncpg alone, sslmode prefer, cancelled 4-5 loop turns into connect().
    asyncpg_own = "exception=ConnectionError('unexpected connection_lost() call')"
    logged = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert [message for message in logged if asyncpg_own not in message] == []


async def test_close_after_a_probe_that_got_no_answer_does_not_wait_for_one(
    mode: str, proxy: TcpProxy, schema: str
) -> None:
    """Behind a pooler whose server is down (queries held, goodbyes honoured), a health
    probe that gave up leaves no query waiting on its connection: the pool, the library's
    own or the host's, closes at once, not when max_wait or the pooler's timeout ends."""
    lib, pool = await _through(proxy, mode, schema)
    try:
        await lib.initialize()
        proxy.hold_answers = True
        health = await lib.health(max_wait=0.15)
        assert not health.reachable
        assert str(health.error).endswith("TimeoutError: no answer within 0.15 s")
        started = asyncio.get_running_loop().time()
        await lib.close(max_wait=5)
        if pool is not None:
            await asyncio.wait_for(pool.close(), 5)
        assert asyncio.get_running_loop().time() - started < 3  # 5 s when it waits
        assert await proxy.open_connections_once_closed() == 0
    finally:
        await proxy.stop()
        await lib.close()
        if pool is not None:
            pool.terminate()


async def test_a_probe_ended_by_command_timeout_does_not_wait_for_the_answer_either(
    proxy: TcpProxy, schema: str
) -> None:
    """The same when asyncpg's own command_timeout, shorter than max_wait, ends the probe's
    round trip: asyncpg would then wait as long again for the cancelled query, before
    health() could answer."""
    lib = Library(
        connection_string=proxy.url(), schema=schema, command_timeout=1.0, **POOLER_OPTIONS
    )
    try:
        await lib.initialize()
        proxy.hold_answers = True
        started = asyncio.get_running_loop().time()
        health = await lib.health(max_wait=10)
        assert asyncio.get_running_loop().time() - started < 1.8  # 2 s when it waits
        assert not health.reachable
        assert str(health.error).endswith("TimeoutError: no answer in time")
        started = asyncio.get_running_loop().time()
        await lib.close(max_wait=5)
        assert asyncio.get_running_loop().time() - started < 3
    finally:
        await proxy.stop()
        await lib.close()


async def test_close_cuts_connections_that_never_say_goodbye_after_max_wait(
    proxy: TcpProxy, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A server or network gone silent: a graceful close would wait for each connection's
    goodbye without end. close() cuts them after max_wait, says so, and the instance can
    start again once the server is back."""
    lib = Library(connection_string=proxy.url(), schema=schema, **POOLER_OPTIONS)
    try:
        await lib.initialize()
        proxy.silent = True
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(lib.close(max_wait=0.2), 10)
        assert 0.2 <= asyncio.get_running_loop().time() - started < 2
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
            f"{Library.__name__}: connections still open 0.2 s into closing the pool were cut"
        ]
        assert not lib.initialized
        assert await proxy.open_connections_once_closed() == 0
        proxy.silent = False
        async with lib:
            assert (await lib.health()).ok
    finally:
        await proxy.stop()
        await lib.close()


async def test_a_pooler_holding_queries_for_a_gone_server_fails_within_connect_timeout(
    proxy: TcpProxy, schema: str
) -> None:
    """PgBouncer logs clients in by itself and holds their queries while its server is down
    (for minutes: query_wait_timeout). A deploy step's status read fails within
    connect_timeout, not after that wait, and leaves no connection open."""
    proxy.hold_after_login = True
    # As the command line's --transaction-pooler opens it: no query before the first use
    # (with a session pin, pgdbm sets the search_path on each new connection).
    lib = Library(
        connection_string=f"{proxy.url()}?sslmode=disable",
        schema=schema,
        connect_timeout=0.15,
        statement_cache_size=0,
        shared_pool_search_path=None,
    )
    started = asyncio.get_running_loop().time()
    with pytest.raises(errors.DatabaseConnectionError) as error:
        await asyncio.wait_for(lib.migration_status(), 10)
    assert asyncio.get_running_loop().time() - started < 3
    assert str(error.value).endswith(
        "TimeoutError: not connected within 0.15 s (connect_timeout, retries included)"
    )
    assert await proxy.open_connections_once_closed() == 0


async def test_start_up_against_a_server_that_never_answers_gives_up_after_connect_timeout(
    proxy: TcpProxy, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Opening the pool is bounded by connect_timeout: a hung server fails start-up then,
    not after asyncpg's 60 s connect timeout three times over (pgdbm retries it)."""
    proxy.silent = True
    lib = Library(
        connection_string=proxy.url(), schema=schema, connect_timeout=0.15, **POOLER_OPTIONS
    )
    started = asyncio.get_running_loop().time()
    with pytest.raises(errors.DatabaseConnectionError) as error:
        await lib.initialize()
    waited = asyncio.get_running_loop().time() - started
    assert 0.15 <= waited < 5
    assert str(error.value) == (
        f"cannot reach PostgreSQL at host=127.0.0.1 port={proxy.port} database="
        f"{proxy.database} user={proxy.user}: TimeoutError: not connected within 0.15 s "
        "(connect_timeout, retries included)"
    )
    assert not lib.initialized
    with pytest.raises(errors.DatabaseConnectionError, match=r"within 0\.15 s \(connect_timeout"):
        await lib.migration_status()  # the deploy-time commands' path too
    await proxy.stop()
    await asyncio.sleep(0.05)  # the abandoned connection attempts end once cut
    logged = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert [m for m in logged if "unexpected connection_lost() call" not in m] == []


class _OnRetry(logging.Handler):
    """Runs ``action`` when the library logs its ``nth`` failed try."""

    def __init__(self, nth: int, action: Callable[[], Any]) -> None:
        super().__init__(logging.WARNING)
        self.nth, self.action, self.retries = nth, action, 0

    def emit(self, record: logging.LogRecord) -> None:
        self.retries += 1
        if self.retries == self.nth:
            self.action()


@contextlib.contextmanager
def _on_retry(nth: int, action: Callable[[], Any]) -> Iterator[_OnRetry]:
    handler = _OnRetry(nth, action)
    logger = logging.getLogger(PACKAGE)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def test_start_up_tries_again_until_a_restarting_server_is_back(
    proxy: TcpProxy, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that refuses connections for a moment (a restart): start-up tries again
    as the retry_* options say, logs each failed try, and succeeds once it is back."""
    await proxy.stop()  # its port now refuses connections, until the second retry is logged
    lib = Library(
        connection_string=proxy.url(),
        schema=schema,
        retry_attempts=4,
        retry_delay=0.02,
        retry_backoff=3,
        **POOLER_OPTIONS,
    )
    restarted: list[asyncio.Task[TcpProxy]] = []
    with (
        caplog.at_level(logging.WARNING, logger=PACKAGE),
        _on_retry(2, lambda: restarted.append(asyncio.ensure_future(proxy.start(proxy.port)))),
    ):
        try:
            await lib.initialize()
            assert (await lib.migration_status()).up_to_date
        finally:
            await lib.close()
    assert restarted[0].done()
    messages = [r.getMessage() for r in caplog.records if r.name == PACKAGE]
    target = f"host=127.0.0.1 port={proxy.port} database={proxy.database} user={proxy.user}"
    assert len(messages) == 2, messages
    # Pauses of retry_delay, then times retry_backoff.
    for n, (message, pause) in enumerate(zip(messages, ("0.02", "0.06"), strict=True), 1):
        assert re.fullmatch(
            rf"cannot reach PostgreSQL at {re.escape(target)}: ConnectionRefusedError: .+ "
            rf"\(try {n} of 4\); trying again in {re.escape(pause)} s",
            message,
        ), message


def _three_tries(
    proxy: TcpProxy, schema: str, *, connect_timeout: float, retry_delay: float
) -> Library:
    return Library(
        connection_string=proxy.url(),
        schema=schema,
        connect_timeout=connect_timeout,
        retry_attempts=3,
        retry_delay=retry_delay,
        **POOLER_OPTIONS,
    )


def _assert_timed_out_after_a_refused_try(error: BaseException, proxy: TcpProxy, why: str) -> None:
    """``error`` says why time ran out (``why``, the library's words) and why the one try
    before failed, with that try's driver error chained."""
    head = (
        f"cannot reach PostgreSQL at host=127.0.0.1 port={proxy.port} database="
        f"{proxy.database} user={proxy.user}: TimeoutError: {why}; tries that failed: 1, "
        "the last: ConnectionRefusedError: "
    )
    assert str(error).startswith(head), str(error)
    assert isinstance(error.__cause__, TimeoutError)
    assert isinstance(error.__cause__.__cause__, ConnectionRefusedError)


async def test_connect_timeout_ending_a_try_after_a_failed_one_names_both(
    proxy: TcpProxy, schema: str
) -> None:
    """A refused try, then a server that accepts and never answers: start-up gives up at
    connect_timeout, and says why the try before failed."""
    await proxy.stop()
    proxy.silent = True
    lib = _three_tries(proxy, schema, connect_timeout=0.3, retry_delay=0.02)
    with (
        _on_retry(1, lambda: asyncio.ensure_future(proxy.start(port=proxy.port))),
        pytest.raises(errors.DatabaseConnectionError) as error,
    ):
        await lib.initialize()
    why = "not connected within 0.3 s (connect_timeout, retries included)"
    _assert_timed_out_after_a_refused_try(error.value, proxy, why)
    await proxy.stop()
    await asyncio.sleep(0.05)  # the abandoned connection attempt ends once cut


async def test_start_up_gives_up_at_once_when_the_next_try_would_come_too_late(
    proxy: TcpProxy, schema: str
) -> None:
    """A failed try whose pause would end past connect_timeout: start-up gives up at once,
    saying why the try failed, instead of waiting for a try that cannot happen."""
    await proxy.stop()
    lib = _three_tries(proxy, schema, connect_timeout=1, retry_delay=5)
    started = asyncio.get_running_loop().time()
    with pytest.raises(errors.DatabaseConnectionError) as error:
        await lib.initialize()
    assert asyncio.get_running_loop().time() - started < 0.9
    why = (
        "not connected within 1 s (connect_timeout, retries included), and the next try "
        "would come too late, after a 5 s pause"
    )
    _assert_timed_out_after_a_refused_try(error.value, proxy, why)
    assert not lib.initialized


# Not the database behind PgBouncer: it holds a login to a missing database for its
# server_login_retry (15 s or more), then refuses it as a protocol violation, retried.
@pytest.mark.parametrize("refused", ["role"] if TRANSACTION_POOLER else ["role", "database"])
async def test_a_refused_login_fails_start_up_without_trying_again(
    refused: str, database_url: str, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No such role (a wrong password alike), or no such database: no later try can log
    in, so start-up fails at the first with the server's reason and logs no retry. Behind
    PgBouncer the role's refusal is a protocol violation, tried again like its passing
    failures are."""
    missing = f"no_such_{refused}_{secrets.token_hex(4)}"
    parts = urlsplit(database_url)
    if refused == "role":
        credentials, _, host = parts.netloc.rpartition("@")
        password = credentials.partition(":")[2]  # kept: the role is what is refused
        login = f"{missing}:{password}" if password else missing
        url = parts._replace(netloc=f"{login}@{host}")
    else:
        url = parts._replace(path=f"/{missing}")
    lib = Library(
        connection_string=url.geturl(),
        schema=schema,
        retry_attempts=3,
        retry_delay=0.02,
        **POOLER_OPTIONS,
    )
    with (
        caplog.at_level(logging.WARNING, logger=PACKAGE),
        pytest.raises(errors.DatabaseConnectionError) as error,
    ):
        await lib.initialize()
    retries = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    where = f"user={missing}" if refused == "role" else f"database={missing} user="
    assert where in str(error.value), str(error.value)
    assert not lib.initialized
    if TRANSACTION_POOLER:
        assert isinstance(error.value.__cause__, asyncpg.ProtocolViolationError)
        assert len(retries) == 2, retries
    else:
        assert isinstance(
            error.value.__cause__,
            asyncpg.InvalidAuthorizationSpecificationError
            if refused == "role"
            else asyncpg.InvalidCatalogNameError,
        )
        assert " refused the connection: " in str(error.value)  # the server answered
        assert retries == []


async def test_health_gives_up_on_a_migrations_table_locked_past_max_wait(
    make_lib: MakeLib, admin_pool: asyncpg.Pool
) -> None:
    """A migration holding its table locked: health() answers within max_wait, reachable,
    saying it could not read the migration state."""
    lib = make_lib()
    await lib.initialize()
    async with admin_pool.acquire() as conn, conn.transaction():
        await conn.execute(f'LOCK TABLE "{lib.schema}".schema_migrations IN ACCESS EXCLUSIVE MODE')
        health = await lib.health(max_wait=0.2)
    assert (health.ok, health.reachable) == (False, True)
    assert health.latency_ms is not None
    assert health.error is not None
    assert health.error.startswith("TimeoutError")
    assert (await lib.health()).ok  # the lock is gone


async def test_health_of_a_stopped_server_does_not_raise(
    mode: str, proxy: TcpProxy, schema: str
) -> None:
    """The server goes away: health() says unreachable, with where, and raises nothing."""
    pool = None
    if mode == "standalone":
        lib = Library(
            connection_string=proxy.url(), schema=schema, retry_attempts=1, **POOLER_OPTIONS
        )
    else:
        pool = await create_host_pool(proxy.url(), max_connections=2)
        lib = Library(db_manager=AsyncDatabaseManager(pool=pool, schema=schema))
    try:
        await lib.initialize()
        assert (await lib.health()).ok
        await proxy.stop()
        health = await lib.health(max_wait=5)
    finally:
        await lib.close()
        if pool is not None:
            pool.terminate()
    assert (health.ok, health.reachable, health.latency_ms) == (False, False, None)
    assert health.error is not None
    assert f"port={proxy.port}" in health.error


# ---------------------------------------------------------------- logging


async def test_start_up_logs_what_it_did_and_no_password(
    mode: str, proxy: TcpProxy, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """INFO names each migration applied and the start-up time; nothing at WARNING."""
    caplog.set_level(logging.INFO)
    url = proxy.url(password=proxy.password or SECRET)
    pool = None
    if mode == "standalone":
        lib = Library(connection_string=url, schema=schema, **POOLER_OPTIONS)
    else:
        pool = await create_host_pool(url, max_connections=2)
        lib = Library(db_manager=AsyncDatabaseManager(pool=pool, schema=schema))
    try:
        await lib.initialize()
        await lib.close()
        await lib.initialize()  # up to date now: nothing applied, still logged as ready
    finally:
        await lib.close()
        if pool is not None:
            await pool.close()
    ours = [r for r in caplog.records if r.name.split(".")[0] == PACKAGE]
    applied = [r.getMessage() for r in ours if r.getMessage().startswith("applied migration ")]
    assert [message.split()[2] for message in applied] == shipped_migrations()
    assert all(f" to schema '{schema}' in " in message for message in applied)
    ready = [r for r in ours if f"ready in schema '{schema}'" in r.getMessage()]
    assert len(ready) == 2
    assert all(r.levelno == logging.INFO for r in ours)
    secret = proxy.password or SECRET
    if secret not in f"{proxy.user} {proxy.database}":  # else the check would prove nothing
        assert not any(secret in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- pool options


CONNECTION_FIELDS = {"connection_string", "host", "port", "database", "user", "password"}


def test_every_pgdbm_pool_option_is_a_constructor_option() -> None:
    """Standalone takes every DatabaseConfig field but the ones the URL and schema carry."""
    fields = set(DatabaseConfig.model_fields) - CONNECTION_FIELDS - {"schema_name"}
    assert set(PoolOptions.__annotations__) == fields


async def test_pool_options_reach_the_pool(database_url: str, schema: str) -> None:
    """statement_cache_size, command_timeout and server_settings apply to the library's pool."""
    lib = Library(
        connection_string=database_url,
        schema=schema,
        statement_cache_size=0,
        command_timeout=0.3,
        server_settings={"application_name": "options_check"},
        shared_pool_search_path=POOLER_OPTIONS.get("shared_pool_search_path", "pg_catalog"),
    )
    async with lib:
        for _ in range(3):
            await lib.db.fetch_value("SELECT $1::int", 1)
        assert await lib.db.fetch_value("SELECT count(*) FROM pg_prepared_statements") == 0
        # asyncio's TimeoutError: the built-in one from Python 3.11 on.
        with pytest.raises(asyncio.TimeoutError):
            await lib.db.execute("SELECT pg_sleep(5)")
        if not TRANSACTION_POOLER:  # PgBouncer drops startup parameters such as this one
            name = await lib.db.fetch_value("SHOW application_name")
            assert name == "options_check"


async def test_the_longest_timeouts_allowed_are_ones_postgresql_takes(
    database_url: str, schema: str
) -> None:
    """The *_ms options' upper bound is PostgreSQL's own: the server accepts it."""
    longest = 2**31 - 1
    lib = Library(
        connection_string=database_url,
        schema=schema,
        statement_timeout_ms=longest,
        idle_in_transaction_session_timeout_ms=longest,
        lock_timeout_ms=longest,
        **POOLER_OPTIONS,
    )
    async with lib:
        if not TRANSACTION_POOLER:  # PgBouncer is told to ignore these startup parameters
            assert await lib.db.fetch_value("SHOW lock_timeout") == f"{longest}ms"


async def test_init_commands_the_server_refuses_say_so(database_url: str, schema: str) -> None:
    """The server was reached: the error says it refused, not that it is unreachable."""
    lib = Library(
        connection_string=database_url,
        schema=schema,
        init_commands=["SELEC 1"],
        retry_attempts=1,
        **POOLER_OPTIONS,
    )
    with pytest.raises(errors.DatabaseConnectionError) as error:
        await lib.initialize()
    assert str(error.value).startswith("PostgreSQL at ")
    assert str(error.value).endswith(
        ' refused the connection: PostgresSyntaxError: syntax error at or near "SELEC"'
    )
    assert not lib.initialized


def test_unknown_pool_option_lists_the_valid_ones(database_url: str) -> None:
    expected = r"unexpected option\(s\) statement_cache; pool options are: .*statement_cache_size"
    with pytest.raises(TypeError, match=expected):
        Library(connection_string=database_url, statement_cache=0)  # type: ignore[call-arg]


async def test_pool_options_belong_to_standalone_mode(shared_pool: asyncpg.Pool) -> None:
    manager = AsyncDatabaseManager(pool=shared_pool, schema="x")
    with pytest.raises(ValueError, match="the host configures its shared pool"):
        Library(db_manager=manager, statement_cache_size=0)


def test_start_up_needs_two_connections(database_url: str) -> None:
    with pytest.raises(ValueError, match=r"max_connections=\.\.\.\) must be at least 2"):
        Library(connection_string=database_url, max_connections=1)


@pytest.mark.parametrize("key", ["init_timeout", "connect_timeout"])
@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_timeouts_must_be_positive_and_finite(database_url: str, key: str, bad: float) -> None:
    expected = (
        rf"\({key}=\.\.\.\) must be a positive finite number of seconds, got "
        rf"{re.escape(repr(bad))} \(for example {key}=30\)\Z"
    )
    with pytest.raises(ValueError, match=expected):
        Library(connection_string=database_url, **{key: bad})  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["init_timeout", "connect_timeout"])
@pytest.mark.parametrize("bad", ["5", True])
def test_timeouts_must_be_numbers(database_url: str, key: str, bad: object) -> None:
    expected = rf"\({key}=\.\.\.\) takes seconds as a number, got {type(bad).__name__}$"
    with pytest.raises(TypeError, match=expected):
        Library(connection_string=database_url, **{key: bad})  # type: ignore[arg-type]


def test_init_timeout_has_no_none(database_url: str) -> None:
    with pytest.raises(TypeError, match="takes seconds as a number, got NoneType"):
        Library(connection_string=database_url, init_timeout=None)  # type: ignore[arg-type]


def test_connect_timeout_belongs_to_standalone_mode(shared_pool: asyncpg.Pool) -> None:
    manager = AsyncDatabaseManager(pool=shared_pool, schema="x")
    with pytest.raises(ValueError, match="with db_manager= the host opens its shared pool"):
        Library(db_manager=manager, connect_timeout=5)
    assert not Library(db_manager=manager, connect_timeout=None).owns_pool
