# Owned by the copier-pgdbm template: `copier update` replaces this file, so do not edit it.
# Your code lives in core.py, sql.py, models.py and migrations/.
"""The dual-mode machinery: one class that owns a pool or runs on a host's shared pool."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict, TypeVar

import asyncpg
import pgdbm.errors
from pgdbm import AsyncDatabaseManager, AsyncMigrationManager, DatabaseConfig

from ._bootstrap import (
    CONNECT_ERRORS,
    CONNECTION_ERRORS,
    LIVE_CONNECTION_ERRORS,
    REFUSED_LOGINS,
    RETRIED_ERRORS,
    WAIT_TIMEOUTS,
    ConnectTimeout,
    MigrationFile,
    MigrationStatus,
    check_schema_name,
    connection_closed,
    connection_error,
    describe_dsn,
    describe_pool,
    driver_error,
    dsn_problem,
    ensure_schema,
    init_lock,
    migration_failure,
    migrations_dir,
    password_of,
    read_status,
    wait_for_pgdbm_lock,
)
from .errors import (
    DatabaseConnectionError,
    InitLockTimeoutError,
    NotInitializedError,
    PendingMigrationsError,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

_PACKAGE = __name__.rpartition(".")[0]
log = logging.getLogger(_PACKAGE)
_Lib = TypeVar("_Lib", bound="DualModeLibrary")


class PoolOptions(TypedDict, total=False):
    """pgdbm ``DatabaseConfig`` options for the pool a standalone instance owns.

    Host, port, database, user and password go in the connection string.
    """

    min_connections: int
    max_connections: int
    max_queries: int
    max_inactive_connection_lifetime: float
    command_timeout: float
    statement_cache_size: int
    server_settings: dict[str, str]
    init_commands: list[str]
    shared_pool_search_path: str | None
    ssl_enabled: bool
    ssl_mode: str | None
    ssl_ca_file: str | None
    ssl_cert_file: str | None
    ssl_key_file: str | None
    ssl_key_password: str | None
    statement_timeout_ms: int | None
    idle_in_transaction_session_timeout_ms: int | None
    lock_timeout_ms: int | None
    retry_attempts: int
    retry_delay: float
    retry_backoff: float
    retry_max_delay: float


# Small by default: a library is one of several pools on a server (pgdbm's own is 10..20).
_POOL_DEFAULTS: PoolOptions = {"min_connections": 1, "max_connections": 10}

_USAGE = """\
Pass exactly one of connection_string= or db_manager=:
  standalone, the library creates, owns and closes its pool:
    {name}(connection_string="postgresql://user:password@host:5432/dbname")
  embedded, on the host application's shared pool, which the library never closes:
    pool = await AsyncDatabaseManager.create_shared_pool(DatabaseConfig(connection_string=...))
    {name}(db_manager=AsyncDatabaseManager(pool=pool, schema="{schema}"))"""


# Pool options that are counts or durations, with their least allowed values: a wrong one is
# a usage error at once, not "cannot reach PostgreSQL" later (pgdbm retries such failures).
_LEAST_COUNT = {
    "min_connections": 0,
    "max_connections": 1,
    "max_queries": 1,
    "retry_attempts": 1,
    "statement_cache_size": 0,
}
_DURATIONS = (
    "max_inactive_connection_lifetime",  # 0 keeps idle connections forever
    "command_timeout",
    "retry_delay",
    "retry_backoff",
    "retry_max_delay",
    "statement_timeout_ms",  # None or 0: no limit
    "idle_in_transaction_session_timeout_ms",
    "lock_timeout_ms",
)


# The *_ms options are PostgreSQL settings of type int: a larger value fails every
# connection ("Value exceeds integer range"), retried by pgdbm before it is reported.
_MAX_MS = 2**31 - 1


# Seconds to open a standalone pool, retries included: asyncpg's own connect timeout is
# as long per try, and pgdbm's default is three tries.
_CONNECT_TIMEOUT = 60.0

# Seconds close() waits by default for queries in flight and for each connection's
# goodbye: well inside an orchestrator's grace period (Kubernetes gives 30 s).
_CLOSE_WAIT = 10.0


def _check_seconds(name: str, key: str, value: object, example: int = 30) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}({key}=...) takes seconds as a number, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"{name}({key}=...) must be a positive finite number of seconds, "
            f"got {value!r} (for example {key}={example})"
        )


def _check_pool_numbers(name: str, options: dict[str, Any]) -> None:
    for key, least in _LEAST_COUNT.items():
        if key in options and require_int(key, options[key]) < least:
            raise ValueError(f"{name}({key}=...) must be at least {least}, got {options[key]}")
    for key in _DURATIONS:
        value = options.get(key)
        if value is None:
            continue  # pgdbm's "not set"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name}({key}=...) takes a number, got {type(value).__name__}")
        positive = key == "command_timeout"  # asyncpg's rule: greater than 0
        if not (math.isfinite(value) and (value > 0 if positive else value >= 0)):
            rule = "more than 0" if positive else "0 or more"
            raise ValueError(f"{name}({key}=...) must be {rule} and finite, got {value!r}")
        if key.endswith("_ms") and value > _MAX_MS:
            raise ValueError(
                f"{name}({key}=...) must be at most {_MAX_MS} (PostgreSQL's limit, about "
                f"24.8 days), got {value!r}"
            )


async def _bounded(
    work: Awaitable[Any], max_wait: float, timed_out: Callable[[], Exception] | None = None
) -> Any:
    """``await work``, or after ``max_wait`` seconds the error ``timed_out()`` makes (by
    default a ``TimeoutError``).

    Unlike ``asyncio.wait_for``, it does not wait for the cancelled work to wind down: on
    a server that stopped answering, cancelling a query waits on that server too.
    """
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=max_wait)
    except BaseException:  # the caller was cancelled: so is the work
        _abandon(task)
        raise
    if not done:
        _abandon(task)
        raise timed_out() if timed_out else TimeoutError(f"no answer within {max_wait:g} s")
    return task.result()


def _abandon(task: asyncio.Future[Any]) -> None:
    task.cancel()
    task.add_done_callback(_wind_down)


def _wind_down(task: asyncio.Future[Any]) -> None:
    # Retrieve how the abandoned work ended, so asyncio logs nothing, and close a pool that
    # was made all the same (the cancel came too late).
    if not task.cancelled() and task.exception() is None:
        result = task.result()
        if isinstance(result, asyncpg.Pool):
            result.terminate()


async def _select_one(pool: asyncpg.Pool, acquired: asyncio.Event | None = None) -> None:
    async with pool.acquire() as connection:
        if acquired is not None:
            acquired.set()
        try:
            await connection.fetchval("SELECT 1")
        except BaseException:
            # Given up on (a probe's max_wait, start-up's connect_timeout, or a shorter
            # command_timeout): asyncpg would cancel the query on the server and keep the
            # connection until the server says it is done, holding close() as long (a
            # PgBouncer whose server is down holds it for minutes). It is cut instead,
            # unless its pool was terminated first.
            with suppress(asyncpg.InterfaceError):  # already given back
                connection.terminate()
            raise


async def _answered(pool: asyncpg.Pool) -> None:
    # PgBouncer logs a client in by itself and, while its server is down, holds the
    # client's queries for minutes (query_wait_timeout): only an answer shows that the
    # server is there. Given up on (connect_timeout), the pool is terminated: closing it
    # would wait for that answer too.
    try:
        await _select_one(pool)
    except BaseException:
        pool.terminate()
        raise


def require_int(name: str, value: object) -> int:
    """``value`` if it is an ``int`` (not a ``bool``), else a ``TypeError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Health:
    """What a readiness probe needs to know; ``ok`` is the verdict."""

    ok: bool
    reachable: bool
    latency_ms: float | None
    pending_migrations: tuple[str, ...] = ()
    drifted_migrations: tuple[str, ...] = ()
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, for a health endpoint."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What ``migrate()`` did (or, with ``dry_run=True``, would do)."""

    applied: tuple[str, ...]
    pending: tuple[str, ...]
    dry_run: bool


# What a query may fail with when its connection is lost (Database._lost tells).
_QUERY_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.InterfaceError)


class Database:
    """The library's queries, written with pgdbm's ``{{tables.name}}`` placeholders.

    Each distinct statement is qualified with the schema once and then goes straight to
    the asyncpg pool (or, in a transaction, its connection). A lost or refused connection
    raises ``DatabaseConnectionError``; database errors (constraints, syntax) are the
    driver's own.
    """

    __slots__ = ("_ended", "_executor", "_manager", "_qualified", "_target")

    def __init__(
        self,
        manager: AsyncDatabaseManager,
        executor: Any,
        target: str,
        qualified: dict[str, str] | None = None,
    ) -> None:
        self._manager = manager
        self._executor = executor  # an asyncpg Pool, or a Connection inside a transaction
        self._target = target
        self._qualified = {} if qualified is None else qualified
        self._ended = False  # a transaction's, once its block is over

    def _lost(self, exc: BaseException) -> bool:
        # asyncpg's InterfaceError is a misuse (another operation in progress, a closed
        # pool, a transaction's Database used after its block), unless the server closed
        # the connection a transaction runs on: the pool has taken it back, and each call
        # on it says "released back to the pool".
        if not isinstance(exc, asyncpg.InterfaceError):
            return True
        if self._ended or isinstance(self._executor, asyncpg.Pool):
            return False
        return connection_closed(self._executor)

    def _sql(self, query: str) -> str:
        try:
            return self._qualified[query]
        except KeyError:
            qualified = self._qualified[query] = self._manager.prepare_query(query)
            return qualified

    async def fetch_one(self, query: str, *args: Any) -> Any:
        """The first row (an ``asyncpg.Record``), or None."""
        try:
            return await self._executor.fetchrow(self._sql(query), *args)
        except LIVE_CONNECTION_ERRORS:
            raise  # they look like connection trouble, but the connection is fine
        except _QUERY_ERRORS as exc:
            if not self._lost(exc):
                raise
            raise connection_error(exc, self._target) from exc

    async def fetch_all(self, query: str, *args: Any) -> list[Any]:
        """Every row, as ``asyncpg.Record`` objects."""
        try:
            rows: list[Any] = await self._executor.fetch(self._sql(query), *args)
        except LIVE_CONNECTION_ERRORS:
            raise  # they look like connection trouble, but the connection is fine
        except _QUERY_ERRORS as exc:
            if not self._lost(exc):
                raise
            raise connection_error(exc, self._target) from exc
        return rows

    async def fetch_value(self, query: str, *args: Any) -> Any:
        """The first column of the first row, or None."""
        try:
            return await self._executor.fetchval(self._sql(query), *args)
        except LIVE_CONNECTION_ERRORS:
            raise  # they look like connection trouble, but the connection is fine
        except _QUERY_ERRORS as exc:
            if not self._lost(exc):
                raise
            raise connection_error(exc, self._target) from exc

    async def execute(self, query: str, *args: Any) -> str:
        """Run a statement; the server's status tag (``"DELETE 1"``)."""
        try:
            status: str = await self._executor.execute(self._sql(query), *args)
        except LIVE_CONNECTION_ERRORS:
            raise  # they look like connection trouble, but the connection is fine
        except _QUERY_ERRORS as exc:
            if not self._lost(exc):
                raise
            raise connection_error(exc, self._target) from exc
        return status

    async def execute_many(self, query: str, args: Iterable[Sequence[Any]]) -> None:
        """Run a statement once per argument tuple."""
        try:
            await self._executor.executemany(self._sql(query), args)
        except LIVE_CONNECTION_ERRORS:
            raise  # they look like connection trouble, but the connection is fine
        except _QUERY_ERRORS as exc:
            if not self._lost(exc):
                raise
            raise connection_error(exc, self._target) from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        """A ``Database`` on one connection inside a transaction (a savepoint when nested)."""
        if isinstance(self._executor, asyncpg.Pool):
            # Only a connection lost while acquiring, beginning or ending the transaction is
            # translated: what the caller's block raises (an OSError of its own) is theirs.
            raised_inside: BaseException | None = None
            lost_at_end: asyncpg.InterfaceError | None = None
            try:
                async with self._executor.acquire() as conn:
                    inner = Database(self._manager, conn, self._target, self._qualified)
                    try:
                        async with conn.transaction():
                            try:
                                yield inner
                            except BaseException as exc:
                                raised_inside = exc
                                raise
                            finally:
                                inner._ended = True
                    except asyncpg.InterfaceError as exc:
                        # Ending the transaction on a connection the server closed
                        # (a restart, an idle-in-transaction timeout): asyncpg says "the
                        # underlying connection is closed".
                        if exc is raised_inside or not connection_closed(conn):
                            raise
                        lost_at_end = exc
                    if lost_at_end is not None:
                        if raised_inside is not None:
                            raise raised_inside  # the block's own error says more
                        raise connection_error(lost_at_end, self._target) from lost_at_end
            except LIVE_CONNECTION_ERRORS:
                raise
            except CONNECTION_ERRORS as exc:
                if exc is raised_inside:
                    raise
                raise connection_error(exc, self._target) from exc
        else:
            async with self._executor.transaction():
                yield self


class DualModeLibrary:
    """Base class of a dual-mode library: see the package README for both modes."""

    #: The schema standalone instances use when none is given.
    DEFAULT_SCHEMA: ClassVar[str]

    def __init__(
        self,
        *,
        connection_string: str | None = None,
        db_manager: AsyncDatabaseManager | None = None,
        schema: str | None = None,
        apply_migrations: bool = True,
        init_timeout: float = 60.0,
        connect_timeout: float | None = None,
        **pool_options: Unpack[PoolOptions],
    ) -> None:
        name = type(self).__name__
        usage = _USAGE.format(name=name, schema=schema or self.DEFAULT_SCHEMA)
        if (connection_string is None) == (db_manager is None):
            given = "both" if connection_string is not None else "neither"
            raise ValueError(f"{name}() got {given} of connection_string and db_manager.\n{usage}")
        _check_seconds(name, "init_timeout", init_timeout)
        if connect_timeout is not None:
            _check_seconds(name, "connect_timeout", connect_timeout)
            if db_manager is not None:
                raise ValueError(
                    f"{name}(): connect_timeout bounds opening the pool the library owns in "
                    "standalone mode; with db_manager= the host opens its shared pool."
                )
        if not isinstance(apply_migrations, bool):
            raise TypeError(f"{name}(apply_migrations=...) takes True or False")

        self._config: DatabaseConfig | None = None
        self._pool: asyncpg.Pool | None = None
        self._secret: str | None = None
        if db_manager is not None:
            self._schema = self._check_manager(db_manager, schema, pool_options, usage)
            self._manager = db_manager
            self._target = "the host application's pool"
        else:
            if not isinstance(connection_string, str) or not connection_string.strip():
                raise ValueError(
                    f"{name}(): connection_string must be a non-empty string.\n{usage}"
                )
            if problem := dsn_problem(connection_string):
                raise ValueError(f"{name}(): connection_string {problem}.\n{usage}")
            # Only None means the default: an empty or falsy schema is a mistake to report.
            self._schema = check_schema_name(self.DEFAULT_SCHEMA if schema is None else schema)
            self._config = self._standalone_config(connection_string, pool_options)
            # Replaced by a manager on the pool once it is open (see _open).
            self._manager = AsyncDatabaseManager(self._config)
            self._target = describe_dsn(connection_string)
            self._secret = password_of(connection_string)

        # Ownership is decided once, here; close() consults nothing else.
        self._owns_pool = self._config is not None
        self._apply_migrations = apply_migrations
        self._init_timeout = float(init_timeout)
        self._connect_timeout = float(connect_timeout or _CONNECT_TIMEOUT)
        self._ready = False
        self._database: Database | None = None
        self._shipped: tuple[MigrationFile, ...] | None = None
        self._sql_by_file: dict[str, str] = {}
        self._state_lock = asyncio.Lock()
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def _check_manager(
        self, manager: object, schema: str | None, options: PoolOptions, usage: str
    ) -> str:
        name = type(self).__name__
        if not isinstance(manager, AsyncDatabaseManager):
            raise TypeError(
                f"{name}(db_manager=...) takes a pgdbm AsyncDatabaseManager, "
                f"got {type(manager).__name__}.\n{usage}"
            )
        if options:
            raise ValueError(
                f"{name}(): {', '.join(sorted(options))} configure the pool the library owns "
                "in standalone mode; with db_manager= the host configures its shared pool."
            )
        bound = manager.schema
        if bound in (None, "public"):
            raise ValueError(
                f"{name}(db_manager=...) needs a manager bound to the library's own schema, "
                f"got schema={bound!r}.\n{usage}"
            )
        if schema is not None and schema != bound:
            raise ValueError(
                f"{name}(): schema={schema!r} differs from the db_manager's schema "
                f"{bound!r}; bind the manager to the schema instead.\n{usage}"
            )
        return check_schema_name(bound)

    def _standalone_config(self, dsn: str, options: PoolOptions) -> DatabaseConfig:
        name = type(self).__name__
        unknown = set(options) - set(PoolOptions.__annotations__)
        if unknown:
            raise TypeError(
                f"{name}() got unexpected option(s) {', '.join(sorted(unknown))}; "
                f"pool options are: {', '.join(PoolOptions.__annotations__)}"
            )
        merged: dict[str, Any] = {**_POOL_DEFAULTS, **options}
        _check_pool_numbers(name, merged)
        if merged["max_connections"] < 2:
            raise ValueError(
                f"{name}(max_connections=...) must be at least 2: start-up holds one "
                "connection for its lock while another applies the migrations"
            )
        if merged["min_connections"] > merged["max_connections"]:
            raise ValueError(
                f"{name}(min_connections={merged['min_connections']}) exceeds "
                f"max_connections={merged['max_connections']}"
            )
        # Connections carry the module name, so they can be told apart in pg_stat_activity.
        merged["server_settings"] = {
            "application_name": self.module_name_for(self._schema),
            **(options.get("server_settings") or {}),
        }
        return DatabaseConfig(connection_string=dsn, **merged)

    # ------------------------------------------------------------ what the instance is

    @classmethod
    def module_name_for(cls, schema: str) -> str:
        """The name migrations are tracked under in ``schema``."""
        return f"{_PACKAGE}_{schema}"

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding this instance's tables."""
        return self._schema

    @property
    def module_name(self) -> str:
        """Name under which migrations are tracked: one history per package and schema."""
        return self.module_name_for(self._schema)

    @property
    def owns_pool(self) -> bool:
        """True in standalone mode, where close() closes the pool."""
        return self._owns_pool

    @property
    def initialized(self) -> bool:
        """True between a successful ``initialize()`` and ``close()``."""
        return self._ready

    @property
    def db_manager(self) -> AsyncDatabaseManager:
        """The schema-bound pgdbm manager, for queries beyond this class's methods."""
        return self._manager

    @property
    def db(self) -> Database:
        """Where the library's queries go; raises ``NotInitializedError`` before start-up."""
        if self._database is None:
            name = type(self).__name__
            raise NotInitializedError(
                f"{name} is not initialized: call `await lib.initialize()` first, "
                f"or use `async with {name}(...) as lib:`"
            )
        self._refuse_foreign_loop()
        return self._database

    def _ready_db(self) -> Database:
        # Methods written for releases before v1.2.0 reach the database this way; the
        # Database has the same fetch_one/fetch_all/fetch_value/execute methods.
        return self.db

    def __repr__(self) -> str:
        mode = "standalone" if self._owns_pool else "embedded"
        return f"{type(self).__name__}(schema={self._schema!r}, mode={mode!r}, ready={self._ready})"

    # ------------------------------------------------------------ lifecycle

    async def initialize(self) -> None:
        """Open the pool (standalone), create the schema and apply pending migrations.

        With ``apply_migrations=False`` nothing is written: start-up only verifies that
        every migration is applied and raises ``PendingMigrationsError`` otherwise.
        A no-op once done.
        """
        async with self._lock_here():
            if self._ready:
                return
            started = time.perf_counter()
            pool = await self._open()
            try:
                if self._apply_migrations:
                    await self._migrate(pool, dry_run=False)
                else:
                    await self._verify(pool)
            except BaseException:
                await self._close_pool()
                raise
            self._database = Database(self._manager, pool, self._target)
            self._ready = True
        log.info(
            "%s ready in schema %r (%s) in %.1f ms",
            type(self).__name__,
            self._schema,
            "standalone" if self._owns_pool else "embedded",
            (time.perf_counter() - started) * 1000,
        )

    async def close(self, *, max_wait: float = _CLOSE_WAIT) -> None:
        """Close the pool if this instance created it; a host's shared pool stays open.

        Queries in flight get ``max_wait`` seconds to finish and connections to say
        goodbye; whatever is still open then is cut. A start-up or deploy-time call in
        progress on this instance is waited for first (its own timeouts bound it).
        """
        _check_seconds(f"{type(self).__name__}.close", "max_wait", max_wait, example=10)
        home = self._home_loop()
        if self._owns_pool and home is not None and home.is_closed():
            # Its loop ended without close(), and with it any way to close the connections
            # gracefully: let them go (garbage collection closes their sockets), so that
            # the instance can start again in this loop.
            log.warning("%s: let go of a pool whose event loop is closed", type(self).__name__)
            assert self._config is not None
            self._ready, self._database, self._pool = False, None, None
            self._manager = AsyncDatabaseManager(self._config)
            return
        async with self._lock_here():
            self._ready = False
            self._database = None
            await self._close_pool(max_wait)

    async def __aenter__(self: _Lib) -> _Lib:
        await self.initialize()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------ deploy-time operations

    async def migration_status(self) -> MigrationStatus:
        """Applied, pending and changed migrations of this schema; writes nothing.

        Standalone before ``initialize()``, on a pool opened and closed for the call.
        """
        async with self._lock_here(), self._pool_for_the_call() as pool:
            return await self._status(pool)

    async def migrate(self, *, dry_run: bool = False) -> MigrationReport:
        """Apply pending migrations under the start-up lock, as a release step would.

        With ``dry_run=True`` only report what would be applied. Standalone before
        ``initialize()``, on a pool opened and closed for the call.
        """
        async with self._lock_here(), self._pool_for_the_call() as pool:
            return await self._migrate(pool, dry_run=dry_run)

    async def health(self, *, max_wait: float = 5.0) -> Health:
        """Reachability, round-trip time and migration state; never raises for a down server.

        ``ok`` only for an initialized instance on a reachable server with every migration
        applied. Standalone before ``initialize()`` (or after a failed one, or ``close()``)
        it probes the server on a connection of its own, closed before returning. Each of
        the probes gives up after ``max_wait`` seconds.
        """
        _check_seconds(f"{type(self).__name__}.health", "max_wait", max_wait, example=5)
        self._refuse_foreign_loop()
        # Standalone and not started, the pool (if any) is a deploy-time call's, about to
        # be closed: a probe of its own reports the server without racing that call.
        if self._owns_pool and not self._ready:
            return await self._probe_without_pool(max_wait)
        # Standalone, the manager is bound to the instance's own pool once it is open.
        pool = self._host_pool(strict=False)
        if pool is None:
            return Health(
                ok=False, reachable=False, latency_ms=None, error="not initialized: no pool yet"
            )
        return await self._probe(pool, max_wait)

    # ------------------------------------------------------------ internals

    def _lock_here(self) -> asyncio.Lock:
        self._refuse_foreign_loop()
        running = asyncio.get_running_loop()
        # asyncio.Lock binds itself to the loop of its first contended use: an instance
        # closed in one asyncio.run() and started again in the next needs a new one.
        if self._lock_loop is not running and not self._state_lock.locked():
            self._state_lock, self._lock_loop = asyncio.Lock(), running
        return self._state_lock

    def _home_loop(self) -> asyncio.AbstractEventLoop | None:
        # The loop the pool in use belongs to (its own, or the host's): asyncpg keeps it,
        # with no public accessor.
        pool = self._pool if self._owns_pool else self._host_pool(strict=False)
        home: asyncio.AbstractEventLoop | None = getattr(pool, "_loop", None)
        return home

    def _refuse_foreign_loop(self) -> None:
        # asyncpg's connections belong to the event loop that opened them; from any other
        # they fail with errors that mislead ("another operation is in progress").
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # not in a coroutine: nothing touches the pool here
            return
        home = self._home_loop()
        if home is None or home is running:
            return
        name = type(self).__name__
        if self._owns_pool:
            what, remedy = "opened its pool in", "`await lib.close()` here lets that pool go"
        else:
            what, remedy = (
                "runs on the host's pool, which belongs to",
                "the host must create its pool in this loop",
            )
        closed = f" (now closed: {remedy})" if home.is_closed() else ""
        raise RuntimeError(
            f"{name} {what} another event loop{closed}; asyncpg's connections work only in the "
            "loop that opened them. Create the pool, the instance and its uses in one loop: "
            f"`async with {name}(...) as lib:` inside the coroutine you pass to asyncio.run() "
            "(in tests, fixtures and tests in the same loop scope)"
        )

    def _connection_error(self, exc: BaseException) -> DatabaseConnectionError:
        return connection_error(exc, self._target, self._secret)

    async def _probe_without_pool(self, max_wait: float) -> Health:
        assert self._config is not None
        # One connection, one try: a probe reports at once and logs no retry warnings.
        config = self._config.model_copy(
            update={"min_connections": 1, "max_connections": 1, "retry_attempts": 1}
        )
        try:
            pool: asyncpg.Pool = await _bounded(
                AsyncDatabaseManager.create_shared_pool(config), max_wait
            )
        except Exception as exc:  # a probe reports whatever keeps it from connecting
            error = self._connection_error(exc)
            return Health(ok=False, reachable=False, latency_ms=None, error=str(error))
        try:
            return await self._probe(pool, max_wait)
        finally:
            pool.terminate()  # a probe's connection: nothing to finish gracefully

    async def _probe(self, pool: asyncpg.Pool, max_wait: float) -> Health:
        started = time.perf_counter()
        acquired = asyncio.Event()
        try:
            await _bounded(_select_one(pool, acquired), max_wait)
        except (*CONNECT_ERRORS, asyncpg.InterfaceError) as exc:
            busy = pool.get_size() >= pool.get_max_size() and not pool.get_idle_size()
            if acquired.is_set() or not isinstance(exc, TimeoutError) or not busy:
                # (A pool with room may have been connecting to a silent server.)
                error = str(self._connection_error(exc))
            else:  # the application's queries hold every connection: not the server's fault
                error = (
                    f"no connection of the pool (max_size {pool.get_max_size()}) came free "
                    f"within {max_wait:g} s: the server was not asked"
                )
            return Health(ok=False, reachable=False, latency_ms=None, error=error)
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        try:
            status: MigrationStatus = await _bounded(self._status(pool), max_wait)
        except Exception as exc:  # a probe reports; it must not crash its caller
            error_text = f"{type(exc).__name__}: {exc}"
            return Health(ok=False, reachable=True, latency_ms=latency_ms, error=error_text)
        ready = self._ready
        return Health(
            ok=status.up_to_date and ready,
            reachable=True,
            latency_ms=latency_ms,
            pending_migrations=status.pending,
            drifted_migrations=status.drifted,
            error=None if ready else "not initialized: call initialize() first",
        )

    def _host_pool(self, *, strict: bool = True) -> asyncpg.Pool | None:
        # pgdbm 0.5 has no public accessor for a manager's pool; its acquire() wrapper
        # costs more per query than this library is allowed (benchmarks/call_overhead.py).
        pool: asyncpg.Pool | None = getattr(self._manager, "_pool", None)
        if pool is None and strict:
            raise ValueError(
                f"{type(self).__name__}(db_manager=...): the manager has no pool; pass "
                "AsyncDatabaseManager(pool=shared_pool, schema=...) with an open shared pool"
            )
        return pool

    async def _open(self) -> asyncpg.Pool:
        if self._owns_pool:
            if self._pool is None:
                assert self._config is not None
                try:
                    self._pool = await self._create_pool(self._config)
                except CONNECT_ERRORS as exc:
                    raise self._connection_error(exc) from driver_error(exc)
                self._manager = AsyncDatabaseManager(pool=self._pool, schema=self._schema)
            return self._pool
        pool = self._host_pool()
        assert pool is not None
        if pool.get_max_size() < 2:
            raise ValueError(
                f"{type(self).__name__}: the host's pool has max_size "
                f"{pool.get_max_size()}; start-up needs 2 connections (one holds the lock)"
            )
        if self._target == "the host application's pool":
            self._target = describe_pool(pool)
        return pool

    async def _create_pool(self, config: DatabaseConfig) -> asyncpg.Pool:
        # pgdbm's pool, tried as often and paused between tries as its retry_* options say,
        # within connect_timeout in all: a server that accepts connections but never
        # answers would otherwise hold start-up for asyncpg's 60 s connect timeout per try.
        # The tries are counted here rather than by pgdbm, so that running out of time
        # still says why the tries failed (a refused port, a wrong password).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout
        once = config.model_copy(update={"retry_attempts": 1})
        failed: list[BaseException] = []

        async def tries() -> asyncpg.Pool:
            pause = config.retry_delay
            while True:
                try:
                    pool: asyncpg.Pool = await AsyncDatabaseManager.create_shared_pool(once)
                    await _answered(pool)
                    return pool
                except RETRIED_ERRORS as exc:
                    failed.append(exc)
                    if len(failed) == config.retry_attempts or isinstance(
                        driver_error(exc), REFUSED_LOGINS
                    ):
                        raise
                    if loop.time() + pause >= deadline:  # no use waiting for it
                        timeout = ConnectTimeout(self._connect_timeout, failed, pause)
                        raise timeout from driver_error(exc)
                    log.warning(
                        "%s (try %d of %d); trying again in %g s",
                        self._connection_error(exc),
                        len(failed),
                        config.retry_attempts,
                        pause,
                    )
                    await asyncio.sleep(pause)
                    pause = min(pause * config.retry_backoff, config.retry_max_delay)

        pool: asyncpg.Pool = await _bounded(
            tries(), self._connect_timeout, lambda: ConnectTimeout(self._connect_timeout, failed)
        )
        return pool

    @asynccontextmanager
    async def _pool_for_the_call(self) -> AsyncIterator[asyncpg.Pool]:
        # A release step that only migrates must not leave a pool open behind it: nothing
        # would close it (the instance is not started, so nobody calls close()).
        opened_here = self._owns_pool and self._pool is None
        pool = await self._open()
        try:
            yield pool
        finally:
            if opened_here:
                await self._close_pool()

    async def _close_pool(self, max_wait: float = _CLOSE_WAIT) -> None:
        if self._owns_pool and self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                # Cut short, asyncpg's close() terminates the pool (its documented rule).
                await asyncio.wait_for(pool.close(), max_wait)
            except WAIT_TIMEOUTS:
                # A query still running, or a server or network that went silent: a
                # graceful close would wait for it without end.
                log.warning(
                    "%s: connections still open %g s into closing the pool were cut",
                    type(self).__name__,
                    max_wait,
                )
            except CONNECTION_ERRORS as exc:
                # A connection the server dropped just before (a failover, a restart) cannot
                # say goodbye: its socket fails (BrokenPipeError). asyncpg has terminated the
                # whole pool by then, so it is closed all the same; a shutdown must not fail,
                # nor hide the start-up error that brought it here.
                log.info("closed the pool; a connection was already lost (%s)", type(exc).__name__)

    async def _shipped_migrations(self) -> tuple[MigrationFile, ...]:
        if self._shipped is None:
            found = await self._migration_manager().find_migration_files()
            self._sql_by_file = {m.filename: m.content for m in found}
            self._shipped = tuple(MigrationFile(m.filename, m.checksum) for m in found)
        return self._shipped

    def _migration_manager(self) -> AsyncMigrationManager:
        return AsyncMigrationManager(
            self._manager,
            migrations_path=str(migrations_dir(_PACKAGE)),
            module_name=self.module_name,
        )

    async def _status(self, pool: asyncpg.Pool) -> MigrationStatus:
        shipped = await self._shipped_migrations()
        try:
            return await read_status(pool, self._schema, self.module_name, shipped)
        except CONNECT_ERRORS as exc:
            raise self._connection_error(exc) from driver_error(exc)

    async def _verify(self, pool: asyncpg.Pool) -> None:
        status = await self._status(pool)
        status.raise_for_drift()
        if status.pending:
            raise PendingMigrationsError(
                f"schema {self._schema!r} lacks migration(s) {', '.join(status.pending)}; "
                f"this instance only verifies (apply_migrations=False). Apply them first: "
                f"python -m {_PACKAGE} migrate --schema {self._schema}",
                pending=status.pending,
            )

    async def _migrate(self, pool: asyncpg.Pool, *, dry_run: bool) -> MigrationReport:
        status = await self._status(pool)
        status.raise_for_drift()
        if dry_run or not status.pending:
            return MigrationReport(applied=(), pending=status.pending, dry_run=dry_run)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._init_timeout
        try:
            async with init_lock(
                pool, f"{self.module_name}:initialize", give_up_after=self._init_timeout
            ):
                # Another process may have migrated while this one waited.
                status = await self._status(pool)
                status.raise_for_drift()
                if not status.pending:
                    return MigrationReport(applied=(), pending=(), dry_run=False)
                await ensure_schema(pool, self._schema, status.pending[0])
                await wait_for_pgdbm_lock(
                    pool,
                    self.module_name,
                    give_up_after=max(0.0, deadline - loop.time()),
                    init_timeout=self._init_timeout,
                )
                result = await self._migration_manager().apply_pending_migrations()
        except InitLockTimeoutError:
            raise  # a TimeoutError, but no connection problem
        except CONNECT_ERRORS as exc:
            raise self._connection_error(exc) from driver_error(exc)
        except pgdbm.errors.MigrationError as exc:
            raise migration_failure(exc, status, self._sql_by_file) from exc.__cause__
        applied = tuple(entry["filename"] for entry in result.get("applied", []))
        for entry in result.get("applied", []):
            log.info(
                "applied migration %s to schema %r in %.1f ms",
                entry["filename"],
                self._schema,
                entry["execution_time_ms"],
            )
        return MigrationReport(applied=applied, pending=(), dry_run=False)
