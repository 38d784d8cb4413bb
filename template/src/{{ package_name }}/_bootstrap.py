"""What initialize() needs in both modes: schema checks, migration discovery, the init lock."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

import asyncpg

# pgdbm names the migrations table "{schema}.schema_migrations" without quotes while
# {{schema}} is quoted, so only names that PostgreSQL leaves unchanged are safe.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_FORBIDDEN_SCHEMAS = frozenset({"public", "information_schema"})


class MigrationsNotFoundError(RuntimeError):
    """The installed package carries no migration files."""


class Connection(Protocol):
    """The part of an asyncpg connection (or pool proxy) the bootstrap uses."""

    async def execute(self, query: str, *args: object) -> str: ...

    async def fetchval(self, query: str, *args: object) -> Any: ...


ConnectionFactory = Callable[[], AbstractAsyncContextManager[Connection]]


def check_schema_name(schema: str) -> str:
    """Return ``schema`` if a library may own it, else raise ``ValueError``."""
    if (
        not isinstance(schema, str)
        or not _SCHEMA_NAME.fullmatch(schema)
        or schema.startswith("pg_")
        or schema in _FORBIDDEN_SCHEMAS
    ):
        raise ValueError(
            f"invalid schema {schema!r}: use 1-63 lowercase letters, digits and underscores, "
            "not starting with a digit, not starting with 'pg_', "
            "and not 'public' or 'information_schema' (for example schema='orders')"
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


async def ensure_schema(conn: Connection, schema: str) -> None:
    """Create ``schema`` unless it exists."""
    # CREATE SCHEMA IF NOT EXISTS needs the database CREATE privilege even when the
    # schema is already there; looking first lets a least-privilege role start up.
    if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


@asynccontextmanager
async def direct_connection(dsn: str) -> AsyncIterator[Connection]:
    """One connection outside any pool, closed on exit."""
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def advisory_lock(
    connect: ConnectionFactory, key: str, *, give_up_after: float
) -> AsyncIterator[Connection]:
    """Hold PostgreSQL's session advisory lock for ``key`` on a connection from ``connect``.

    Waiters poll with pg_try_advisory_lock and hand their connection back between tries,
    so instances queueing on a small shared pool never starve the one holding the lock
    (it needs a second connection for the migrations).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after
    delay = 0.005
    while True:
        async with connect() as conn:
            if await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):
                try:
                    yield conn
                finally:
                    await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", key)
                return
        if loop.time() + delay > deadline:
            raise TimeoutError(
                f"could not take the advisory lock {key!r} within {give_up_after} s: "
                "another instance is still initializing the same schema"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.25)
