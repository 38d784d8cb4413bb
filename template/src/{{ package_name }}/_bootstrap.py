# Owned by the copier-pgdbm template: `copier update` replaces this file, so do not edit it.
# Your code lives in core.py, sql.py, models.py and migrations/.
"""Start-up machinery shared by both modes: names, the init lock, migration status, errors."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg
import pgdbm.errors

from ._pg_keywords import RESERVED_KEYWORDS
from .errors import (
    DatabaseConnectionError,
    InitLockTimeoutError,
    MigrationDriftError,
    MigrationFailedError,
    MigrationsNotFoundError,
    SchemaConflictError,
)

# pgdbm names the migrations table "{schema}.schema_migrations" without quotes while
# {{schema}} is quoted, so only names that PostgreSQL leaves unchanged are safe.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_FORBIDDEN_SCHEMAS = frozenset({"public", "information_schema"})
MIGRATIONS_TABLE = "schema_migrations"

# What a lost or refused connection looks like: from the driver while connecting or
# mid-query, and from pgdbm, which wraps the driver's error when creating a pool.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,  # includes ConnectionDoesNotExistError
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.InvalidAuthorizationSpecificationError,  # bad role or password
    asyncpg.InvalidCatalogNameError,  # no such database
    asyncpg.TooManyConnectionsError,
    # A connection the server closed (pg_terminate_backend, a failover, a pooler restart)
    # can leave asyncpg's protocol mid-operation: "cannot switch to state 12; another
    # operation (2) is in progress". The connection is lost all the same.
    asyncpg.InternalClientError,
    pgdbm.errors.ConnectionError,
)
# Errors of a query on a connection that is fine, though they match the above: its own
# timeout (an OSError), and asyncpg's InternalClientError for a stale type cache.
LIVE_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,
    asyncpg.OutdatedSchemaCacheError,
)
# What asyncio.wait_for raises: asyncio's TimeoutError is a class of its own before 3.11.
WAIT_TIMEOUTS: tuple[type[BaseException], ...] = (TimeoutError, asyncio.TimeoutError)
# Only while connecting: a TimeoutError from a running query is the query's own business.
CONNECT_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, *WAIT_TIMEOUTS)

# What a try to open a pool fails with that is worth another: pgdbm's wrapper of the errors
# it retries itself, and asyncpg's own connect timeout, which pgdbm lets through unwrapped
# before Python 3.11 (where asyncio's TimeoutError is no OSError).
RETRIED_ERRORS: tuple[type[BaseException], ...] = (
    pgdbm.errors.ConnectionError,
    asyncio.TimeoutError,
)
# Refusals that no later try turns around: the server does not let this role in (no such
# role, a wrong password, pg_hba.conf), or has no such database. Tried again, they would
# only come back after the retry pauses. PgBouncer reports both as protocol violations
# (08P01), as it does its passing failures: those stay retried.
REFUSED_LOGINS: tuple[type[BaseException], ...] = (
    asyncpg.InvalidAuthorizationSpecificationError,  # includes InvalidPasswordError
    asyncpg.InvalidCatalogNameError,
)


def check_schema_name(schema: object) -> str:
    """Return ``schema`` if a library may own it, else raise ``ValueError``."""
    if (
        not isinstance(schema, str)
        or not _SCHEMA_NAME.fullmatch(schema)
        or schema.startswith("pg_")
        or schema in _FORBIDDEN_SCHEMAS
        or schema in RESERVED_KEYWORDS
    ):
        raise ValueError(
            f"invalid schema {schema!r}: use 1-63 lowercase letters, digits and underscores, "
            "not starting with a digit, not starting with 'pg_', not 'public' or "
            "'information_schema', and not a PostgreSQL reserved keyword such as 'user' "
            "(for example schema='orders')"
        )
    return schema


def migrations_dir(package: str) -> Path:
    """The directory of ``package``'s SQL migrations, as pgdbm's migration manager wants it."""
    root = files(package) / "migrations"
    # pgdbm globs a real directory; a zipped install has none, and pgdbm would then
    # log a warning and apply nothing, leaving the library without its tables.
    if not isinstance(root, Path) or not any(root.glob("*.sql")):
        raise MigrationsNotFoundError(
            f"no SQL migrations found in package {package!r} (looked in {root}); "
            "the package was built or installed without its migrations/*.sql files"
        )
    return root


# ---------------------------------------------------------------- where the server is


def describe_dsn(dsn: str) -> str:
    """``host=... port=... database=... user=...`` for a connection string, without secrets."""
    try:
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgresql", "postgres"):  # e.g. libpq's "host=h password=p"
            return "an unparsable connection string (not a postgresql:// URL)"
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        # As asyncpg reads it: the URL's own hosts and ports before the query's, and the
        # query's port= before the ports of its host= (already decoded by parse_qs).
        if hostspec := parts.netloc.rpartition("@")[2]:
            addresses = [_host_and_port(spec, unquote) for spec in hostspec.split(",")]
        else:
            specs = query.get("host", "localhost").split(",")
            addresses = [_host_and_port(spec) for spec in specs]
        host = ",".join(address for address, _ in addresses)
        port = ",".join(port for _, port in addresses)
        if not hostspec and "port" in query:
            port = query["port"]
        database = unquote(parts.path.lstrip("/")) or query.get("dbname")
        user = unquote(parts.username or "") or query.get("user")
    except ValueError:
        return "an unparsable connection string"
    return f"host={host} port={port} database={database or user or '?'} user={user or '?'}"


def _host_and_port(spec: str, decode: Callable[[str], str] = str) -> tuple[str, str]:
    # asyncpg's split of one host: a socket directory, [IPv6]:port or name:port; each
    # part percent-decoded after the split when the host comes from the URL's authority.
    if spec.startswith("/"):
        return spec, "5432"
    if spec.startswith("["):
        address, _, port = spec[1:].partition("]")
        port = port.removeprefix(":")
    else:
        address, _, port = spec.partition(":")
    return decode(address), decode(port) or "5432"


# [IPv6]:port as asyncpg reads it; it drops anything after the bracket but a port.
_BRACKETED_HOST = re.compile(r"\[[^\]]+\](:[0-9]*)?")
_NOT_ENCODED = (
    "cannot be read as a URL: its host, port, database or query is not valid, as when the "
    "user name or password holds one of / ? # [ ] @ : unencoded (percent-encode them: "
    "urllib.parse.quote(password, safe=''); an @ anywhere else too, as %40)"
)


def dsn_problem(dsn: str, connect_timeout_hint: str = "connect_timeout= (seconds)") -> str | None:
    """Why asyncpg cannot use ``dsn``, in words that quote none of it (it may hold a
    password), or None. ``connect_timeout_hint``: how the caller sets the connect timeout.

    An unencoded / ? # or @ in a password ends the URL's authority early, or where asyncpg
    does not: the rest of the password is then read as a host, port, path or query, and the
    driver's error, or the host it names, would show it.
    """
    try:
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgresql", "postgres"):
            return "is not a postgresql:// URL (asyncpg reads no libpq key=value string)"
        userinfo, _, hostspec = parts.netloc.rpartition("@")
        # As asyncpg reads a query (it parses none that is empty; Python 3.10 refuses one).
        query = parse_qs(parts.query, strict_parsing=True) if parts.query else {}
        # asyncpg takes several hosts: the URL's own, else the query's with its ports.
        hosts = (hostspec or query.get("host", [""])[-1]).split(",")
        for host in hosts:
            if not host.startswith("/"):  # a socket directory, given in the query
                probe = urlsplit(f"//{host}")
                _ = probe.port, probe.hostname  # ValueError for a bad port or bracketed host
                if probe.netloc != host:  # a query's decoded / ? or # ended it
                    return _NOT_ENCODED
                # urlsplit refused a lone bracket. asyncpg reads db[::1] as db[ and port :1],
                # and drops what follows [::1] but a port.
                if "[" in host and not _BRACKETED_HOST.fullmatch(host):
                    return _NOT_ENCODED
        if ports := "" if hostspec else query.get("port", [""])[-1]:
            numbers = [int(number) for number in ports.split(",")]  # as asyncpg reads them
            if not all(0 <= number <= 65535 for number in numbers) or (
                "host" in query and len(hosts) != len(numbers) > 1
            ):
                return _NOT_ENCODED
    except ValueError:
        return _NOT_ENCODED
    if "connect_timeout" in query:  # libpq's; asyncpg would send it to the server as a setting
        return (
            "sets connect_timeout in its query, which asyncpg sends to the server as a "
            f"setting; pass {connect_timeout_hint} instead"
        )
    # One @ ends the user's part, before the host: any other is where a password's unencoded
    # / ? # or @ ended the authority early, or where asyncpg (which splits at the first @,
    # urlsplit at the last) would end it. Python 3.10 reads a bracket in a password; later
    # ones refuse it, quoting it.
    if any(char in userinfo for char in "@[]") or "@" in parts.path + parts.query + parts.fragment:
        return _NOT_ENCODED
    if len(hosts) > 1 and not all(hosts):  # asyncpg fails on an empty one with an IndexError
        return _NOT_ENCODED
    return None


def describe_pool(pool: asyncpg.Pool) -> str:
    """Where a host's asyncpg pool connects, without secrets, as far as it can be told."""
    # asyncpg keeps the arguments of create_pool(); they have no public accessor.
    args = getattr(pool, "_connect_args", ()) or ()
    kwargs: Mapping[str, Any] = getattr(pool, "_connect_kwargs", {}) or {}
    dsn = args[0] if args else kwargs.get("dsn")
    if isinstance(dsn, str):
        return describe_dsn(dsn)
    return (
        " ".join(
            f"{key}={kwargs[key]}" for key in ("host", "port", "database", "user") if key in kwargs
        )
        or "the host application's pool"
    )


def driver_error(exc: BaseException) -> BaseException:
    # pgdbm wraps the driver's error with generic host details; the driver's is the one
    # that says what happened.
    if isinstance(exc, pgdbm.errors.ConnectionError) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


class ConnectTimeout(TimeoutError):
    """Opening a pool took longer than ``connect_timeout`` seconds, or would have: the next
    try, ``next_pause`` seconds on, would begin too late. ``failed``: the errors of the
    tries so far, the last one chained."""

    def __init__(
        self,
        seconds: float,
        failed: Iterable[BaseException] = (),
        next_pause: float | None = None,
    ) -> None:
        self.seconds, self.failed, self.next_pause = seconds, tuple(failed), next_pause
        later = (
            ""
            if next_pause is None
            else f", and the next try would come too late, after a {next_pause:g} s pause"
        )
        super().__init__(
            f"not connected within {seconds:g} s (connect_timeout, retries included){later}"
        )
        if self.failed:
            self.__cause__ = driver_error(self.failed[-1])

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.seconds, self.failed, self.next_pause)


def connection_error(
    exc: BaseException, target: str, secret: str | None = None
) -> DatabaseConnectionError:
    """The library's error for a refused or lost connection to ``target``.

    Raise it ``from driver_error(exc)``, so the driver's own error is the one chained.
    """
    cause = driver_error(exc)
    # The bare password is looked for only when it is long and not one of the target's
    # own names: a short one matches ordinary words and numbers of the driver's message
    # ("password", "5432", the "0" of "127.0.0.1"), and masking those garbled it and told
    # what the password is. Written as a connection string writes it, it is always masked.
    bare = secret if secret and len(secret) >= _BARE_PASSWORD and secret not in target else None
    refused, reason = _reason(cause, bare)
    head = (
        f"PostgreSQL at {target} refused the connection"
        if refused
        else f"cannot reach PostgreSQL at {target}"
    )
    return DatabaseConnectionError(f"{head}: {reason}", target=target)


def _reason(cause: BaseException, secret: str | None) -> tuple[bool, str]:
    """(whether the server answered and refused, what went wrong with its hint if any)."""
    if isinstance(cause, ConnectTimeout):  # the library's own words: never masked
        reason = f"TimeoutError: {cause}"
        if cause.failed:  # and why the tries failed, in the driver's words
            last = _reason(driver_error(cause.failed[-1]), secret)[1]
            reason += f"; tries that failed: {len(cause.failed)}, the last: {last}"
        return False, reason
    # asyncpg's connect timeout is a bare TimeoutError (asyncio's before Python 3.11).
    timeout = isinstance(cause, (TimeoutError, asyncio.TimeoutError))
    detail = scrub_passwords(str(cause)) or ("no answer in time" if timeout else "")
    if secret:
        detail = detail.replace(secret, "***")
    reason = f"{type(cause).__name__}: {detail}" if detail else type(cause).__name__
    refused = False
    if isinstance(cause, _PREPARED_STATEMENT_ERRORS):
        reason += f" ({_POOLER_HINT})"
    elif isinstance(cause, asyncpg.ProtocolViolationError) and _STARTUP_REFUSED in str(cause):
        reason += f" ({_STARTUP_PARAMETERS_HINT})"
    elif isinstance(cause, REFUSED_LOGINS):  # the server answered: no such role or database
        refused = True
    elif isinstance(cause, asyncpg.PostgresError) and not isinstance(cause, CONNECTION_ERRORS):
        # The server answered and refused: a setting, a privilege, the database's state.
        refused = True
        if isinstance(cause, _SETTING_ERRORS) or (
            isinstance(cause, asyncpg.InsufficientPrivilegeError) and "parameter" in str(cause)
        ):
            reason += f" ({_SETTINGS_HINT})"
    return refused, reason


# What asyncpg's statement cache meets behind PgBouncer in transaction mode, where a
# prepared statement does not outlive its transaction (pgdbm reports it as a connection
# error when it happens while the pool opens).
_PREPARED_STATEMENT_ERRORS = (
    asyncpg.DuplicatePreparedStatementError,
    asyncpg.InvalidSQLStatementNameError,
)
# A setting each new connection asks for, refused by the server.
_SETTING_ERRORS = (
    asyncpg.UndefinedObjectError,  # unrecognized configuration parameter
    asyncpg.InvalidParameterValueError,
    asyncpg.CantChangeRuntimeParamError,
)
_SETTINGS_HINT = (
    "check server_settings= and the *_ms timeouts; asyncpg sends a URL query's unknown "
    "fields as settings too"
)
# PgBouncer's answer to a startup parameter it does not know (pgdbm sends several).
_STARTUP_REFUSED = "unsupported startup parameter"
_STARTUP_PARAMETERS_HINT = (
    "PgBouncer? list pgdbm's startup parameters in its ignore_startup_parameters: "
    "extra_float_digits, jit, search_path, statement_timeout, "
    "idle_in_transaction_session_timeout, lock_timeout; then set the timeouts on the role "
    "(README: Behind PgBouncer)"
)
_POOLER_HINT = (
    "behind PgBouncer in transaction mode? pass statement_cache_size=0 and "
    "shared_pool_search_path=None (python -m: --transaction-pooler)"
)


# A URL's user:password@, and libpq's key/value password=..., as they may appear in text.
# The password runs to the authority's last @ (an unencoded @ may be part of it); "ssl" is
# asyncpg's sslpassword, the client key's.
_URL_PASSWORD = re.compile(r"(://[^/@\s:]*:)[^\s/?#]*@")
# The same with an unencoded / ? or # in the password (a port followed by a path is not).
_URL_PASSWORD_UNENCODED = re.compile(r"(://[^/@\s:]*:)(?!\d*(?:[/?#]|$))[^\s@]*@")
_KEY_VALUE_PASSWORD = re.compile(r"(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)")
# user:password@host without a scheme in front.
_USER_PASSWORD = re.compile(r"(?<![\w.%+/-])([\w.%+-]+:)[^\s/:@]+@")
# Shorter passwords are masked only where written as in a connection string (see
# connection_error).
_BARE_PASSWORD = 12


def password_of(dsn: str) -> str | None:
    """The password in a connection string, to scrub it from messages."""
    try:
        parts = urlsplit(dsn)
        if parts.password:
            return unquote(parts.password)
        in_query = parse_qs(parts.query).get("password")
        if in_query:
            return in_query[-1]  # asyncpg takes the last
    except ValueError:
        pass  # not a URL: libpq's key/value form, below
    match = _KEY_VALUE_PASSWORD.search(dsn)
    return match.group(2).strip("'") if match else None


def scrub_passwords(text: str) -> str:
    """``text`` with any password it shows in a URL or as ``password=...`` masked."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
    text = _URL_PASSWORD_UNENCODED.sub(r"\1***@", text)
    text = _USER_PASSWORD.sub(r"\1***@", text)
    return _KEY_VALUE_PASSWORD.sub(r"\1***", text)


# ---------------------------------------------------------------- the start-up lock

# Two-key advisory locks: the first key keeps ours apart from anybody else's.
_TRY_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('copier-pgdbm'), hashtext($1))"
_OUR_LOCK = (
    "l.objsubid = 2 AND l.classid = hashtext('copier-pgdbm')::oid AND l.objid = hashtext($1)::oid"
)
# pgdbm's own migration lock: one bigint key, hashtext('pgdbm_migration_' || module).
_TRY_PGDBM_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('pgdbm_migration_' || $1))"
_PGDBM_LOCK = (
    "l.objsubid = 1 AND l.objid = "
    "(hashtext('pgdbm_migration_' || $1)::bigint & 4294967295)::bigint::oid"
)
_LOCK_HOLDER = """
    SELECT a.pid, a.application_name, a.client_addr::text AS client_addr,
           -- a session-level lock outlives its transaction: then the session's last change
           COALESCE(a.xact_start, a.state_change, a.backend_start) AS since
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND {which}
"""


async def lock_holder(pool: asyncpg.Pool, key: str, *, pgdbm: bool = False) -> str | None:
    """Who holds a start-up lock: backend pid, application name, since when."""
    query = _LOCK_HOLDER.format(which=_PGDBM_LOCK if pgdbm else _OUR_LOCK)
    row = await pool.fetchrow(query, key)
    if row is None:
        return None
    # NULL when the viewing role may not see the holder's activity (pg_read_all_stats).
    since = row["since"].isoformat(timespec="seconds") if row["since"] else "?"
    who = f"backend pid {row['pid']}, application_name {row['application_name']!r}"
    origin = f", from {row['client_addr']}" if row["client_addr"] else ""
    return f"{who}{origin}, holding it since {since}"


def _lock_timeout(key: str, waited: float, holder: str | None) -> InitLockTimeoutError:
    return InitLockTimeoutError(
        f"gave up waiting {waited:g} s (init_timeout) for the start-up lock "
        f"{key!r}: held by {holder or 'nobody any more (it was released just now)'}. "
        "Another process is initializing or migrating the same schema; if it hangs, "
        "end it with SELECT pg_terminate_backend(<pid>).",
        holder=holder,
    )


# Longest pause between two tries for a lock. Each try costs a few milliseconds of one
# connection; at 0.25 s, eight instances starting together took about a second in all,
# most of it asleep after the lock was already free.
POLL_CAP = 0.1


def _pauses(first: float) -> Iterator[float]:
    # Doubling up to POLL_CAP, each pause drawn at random below its bound ("full jitter"):
    # instances that start together would otherwise wake together, one would win and the
    # rest sleep a whole pause more: eight starting together took about 0.5 s where one
    # takes 0.02 s. Spread out, the next waiter finds the lock free a few milliseconds after.
    bound = first
    while True:
        yield random.uniform(0, bound)
        bound = min(bound * 2, POLL_CAP)


def connection_closed(connection: asyncpg.Connection) -> bool:
    """Whether the server (or a pooler) closed ``connection``, a pooled one included."""
    try:
        closed: bool = connection.is_closed()
    except asyncpg.InterfaceError:  # "released back to the pool": the pool took it, closed
        return True
    return closed


# Start-ups trying or holding a start-up lock, per pool: [its slots, how many use them].
# Keyed by id (asyncpg's pools take no weak references); an entry lives only while a
# start-up on its pool runs. Every library made from this template shares it, whatever its
# package or template version: it lives on pgdbm's module, which they all import, and its
# shape (a dict of [asyncio.Semaphore, int] lists) must never change.
_HOLDERS: dict[int, list[Any]] = vars(pgdbm).setdefault("_copier_pgdbm_start_up_slots", {})


@asynccontextmanager
async def _holder_slot(
    pool: asyncpg.Pool, key: str, deadline: float, give_up_after: float
) -> AsyncIterator[None]:
    # Each holder pins one connection and needs one more for the schema and migrations:
    # libraries starting together on one host pool (several schemas, so several locks)
    # would otherwise each pin one until none is left for the second, and wait for ever.
    # At most max_size - 1 hold a lock at once, so one connection always goes round.
    holders = _HOLDERS.setdefault(id(pool), [asyncio.Semaphore(max(1, pool.get_max_size() - 1)), 0])
    slots: asyncio.Semaphore = holders[0]
    holders[1] += 1
    try:
        loop = asyncio.get_running_loop()
        pauses = _pauses(0.005)
        # Polled, like the lock itself, rather than awaited: acquire() below then returns
        # without suspending, so a cancel can never land between taking a slot and the
        # try that gives it back.
        while slots.locked():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise InitLockTimeoutError(
                    f"gave up waiting {give_up_after:g} s (init_timeout) for the start-up "
                    f"lock {key!r}: the pool's connections (max_size "
                    f"{pool.get_max_size()}) stayed pinned by other start-ups in this "
                    "process. Give the pool more connections, or start the libraries one "
                    "after another.",
                    holder=None,
                )
            await asyncio.sleep(min(next(pauses), remaining))
        await slots.acquire()
        try:
            yield
        finally:
            slots.release()
    finally:
        holders[1] -= 1
        if not holders[1]:
            del _HOLDERS[id(pool)]


@asynccontextmanager
async def init_lock(pool: asyncpg.Pool, key: str, *, give_up_after: float) -> AsyncIterator[None]:
    """Hold the start-up lock for ``key`` while the body runs on *other* connections.

    The lock is a transaction-level advisory lock inside a transaction left open on one
    connection: that pins one server connection even behind a transaction pooler such
    as PgBouncer, where a session lock protects nothing. Waiters poll and give their
    connection back between tries, so instances queueing on a small pool never starve
    the holder, which needs a second connection for the schema and the migrations; and
    holders of other keys on the same pool leave it at least one connection.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after
    pauses = _pauses(0.005)
    while True:
        async with _holder_slot(pool, key, deadline, give_up_after), pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                if await conn.fetchval(_TRY_LOCK, key):
                    # The transaction idles while other connections migrate: a server-side
                    # idle timeout must not end it (and release the lock) half-way through.
                    # Sent last and by the simple protocol (no arguments): the extended
                    # protocol's query above leaves the transaction holding a snapshot
                    # (backend_xmin), which a CREATE INDEX CONCURRENTLY in a migration would
                    # wait for while this transaction waits for the migration.
                    await conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
                    yield
                    return
            finally:
                # Nothing was written on this connection: rolling back ends the
                # transaction and releases the lock. A connection the server closed (a
                # restart mid-migration) released it already, and failing to roll back
                # there would only hide how the body ended.
                try:
                    await transaction.rollback()
                except (*CONNECTION_ERRORS, asyncpg.InterfaceError):
                    if not connection_closed(conn):
                        raise
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise _lock_timeout(key, give_up_after, await lock_holder(pool, key))
        await asyncio.sleep(min(next(pauses), remaining))


async def wait_for_pgdbm_lock(
    pool: asyncpg.Pool, module_name: str, *, give_up_after: float, init_timeout: float
) -> None:
    """Wait, at most ``give_up_after`` seconds, until pgdbm's migration lock is free.

    Under the start-up lock nobody else takes it, except the backend of a process that
    was killed in the middle of a migration: it runs the statement to its end before it
    notices. pgdbm would wait for it up to lock_timeout and fail with a bare
    LockNotAvailableError; this waits within init_timeout and names the holder instead.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after
    pauses = _pauses(0.01)
    while True:
        async with pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(_TRY_PGDBM_LOCK, module_name):
                return
        remaining = deadline - loop.time()
        if remaining <= 0:
            holder = await lock_holder(pool, module_name, pgdbm=True)
            raise _lock_timeout(f"pgdbm_migration_{module_name}", init_timeout, holder)
        await asyncio.sleep(min(next(pauses), remaining))


async def ensure_schema(pool: asyncpg.Pool, schema: str, first_pending: str) -> None:
    """Create ``schema`` unless it exists; ``MigrationFailedError`` if the server refuses."""
    # CREATE SCHEMA IF NOT EXISTS needs the database CREATE privilege even when the
    # schema is already there; looking first lets a least-privilege role start up.
    async with pool.acquire() as conn:
        if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
            return
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        except (asyncpg.InsufficientPrivilegeError, asyncpg.ReadOnlySQLTransactionError) as exc:
            raise MigrationFailedError(
                f"migration {first_pending} cannot run: schema {schema!r} does not exist, "
                f"and creating it failed: {type(exc).__name__}: {exc}. Create it beforehand, "
                f'owned by this role (CREATE SCHEMA "{schema}" AUTHORIZATION <role>), or '
                "migrate with a role that may create it, on the primary if this server is "
                "a read-only standby.",
                filename=first_pending,
            ) from exc


# ---------------------------------------------------------------- migration status


@dataclass(frozen=True, slots=True)
class MigrationFile:
    """A migration shipped in the package, with pgdbm's checksum of it."""

    filename: str
    checksum: str


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """A row of the migrations table."""

    filename: str
    checksum: str
    applied_at: datetime


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """Which of the package's migrations a schema has, lacks, or has in another version."""

    schema: str
    module_name: str
    applied: tuple[AppliedMigration, ...]
    pending: tuple[str, ...]
    drifted: tuple[str, ...]
    other_modules: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        """True when every shipped migration is applied, unchanged."""
        return not self.pending and not self.drifted

    def raise_for_drift(self) -> None:
        """Raise ``MigrationDriftError`` if an applied migration's file has changed."""
        if self.drifted:
            names = ", ".join(self.drifted)
            raise MigrationDriftError(
                f"migration file(s) {names} changed after being applied to schema "
                f"{self.schema!r} (module {self.module_name!r}): the database no longer "
                "matches the package. Either restore the file(s) exactly as released "
                "(e.g. `git checkout <release tag> -- <path>`), or revert your edit and put "
                "the change in a new migration file with the next number.",
                drifted=self.drifted,
            )


async def read_status(
    pool: asyncpg.Pool, schema: str, module_name: str, shipped: Iterable[MigrationFile]
) -> MigrationStatus:
    """Compare the shipped migrations with the schema's migrations table; writes nothing."""
    table = f'"{schema}".{MIGRATIONS_TABLE}'
    async with pool.acquire() as conn:
        rows = []
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
            # The table name is built from a checked schema name, not from input.
            columns = "filename, checksum, applied_at, module_name"
            rows = await conn.fetch(f"SELECT {columns} FROM {table} ORDER BY id")  # noqa: S608
    applied = {
        row["filename"]: AppliedMigration(row["filename"], row["checksum"], row["applied_at"])
        for row in rows
        if row["module_name"] == module_name
    }
    others = sorted({row["module_name"] for row in rows if row["module_name"] != module_name})
    pending, drifted = [], []
    for migration in shipped:
        done = applied.get(migration.filename)
        if done is None:
            pending.append(migration.filename)
        elif done.checksum != migration.checksum:
            drifted.append(migration.filename)
    return MigrationStatus(
        schema=schema,
        module_name=module_name,
        applied=tuple(applied.values()),
        pending=tuple(pending),
        drifted=tuple(drifted),
        other_modules=tuple(others),
    )


# ---------------------------------------------------------------- migration failures

_UNQUALIFIED = re.compile(
    r"\b(?:CREATE|ALTER|DROP)\s+(?:UNLOGGED\s+)?(?:TABLE|VIEW|SEQUENCE|TYPE)\s+"
    r"(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(?![\"{])([A-Za-z_][\w$]*)(?![\w$.])",
    re.IGNORECASE,
)
_NAME_RESOLUTION_ERRORS = (
    asyncpg.InsufficientPrivilegeError,  # "permission denied to create pg_catalog.x"
    asyncpg.InvalidSchemaNameError,  # "no schema has been selected to create in"
    asyncpg.UndefinedTableError,
)
_DUPLICATE_ERRORS = (asyncpg.DuplicateTableError, asyncpg.DuplicateObjectError)


def migration_failure(
    exc: pgdbm.errors.MigrationError, status: MigrationStatus, sql_by_file: Mapping[str, str]
) -> Exception:
    """The library's error for a migration that pgdbm could not apply, with advice."""
    filename = str(exc.details.get("migration_file") or "?")
    cause = exc.__cause__
    reason = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
    # The server's DETAIL ends with a full stop; the advice below adds its own.
    reason = reason.removesuffix(".")
    message = f"migration {filename} failed in schema {status.schema!r}: {reason}"
    if isinstance(cause, _DUPLICATE_ERRORS) and status.other_modules:
        return SchemaConflictError(
            f"{message}. The schema already holds the migrations of "
            f"{', '.join(status.other_modules)}: two libraries cannot share a schema. "
            "Give this one a schema of its own (schema='...' standalone, or "
            "AsyncDatabaseManager(pool=pool, schema='...') embedded)."
        )
    if isinstance(cause, _NAME_RESOLUTION_ERRORS):
        names = sorted(set(_UNQUALIFIED.findall(sql_by_file.get(filename, ""))))
        found = f" (unqualified here: {', '.join(names)})" if names else ""
        message += (
            ". Write every table in a migration as {{tables.name}}"
            + found
            + ": pgdbm qualifies it with the library's schema, while a bare name resolves "
            "through the pool's search_path, which pgdbm pins to pg_catalog on shared pools."
        )
    return MigrationFailedError(message, filename=filename)
