# Owned by the copier-pgdbm template: `copier update` replaces this file, so do not edit it.
"""What the template's tests share: the pooler options, a host pool, migration facts."""

from __future__ import annotations

import asyncio
import os
import traceback
from importlib.resources import files
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlsplit

import asyncpg
from pgdbm import AsyncDatabaseManager, DatabaseConfig

from .library import PACKAGE, Library

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

# TEST_DATABASE_POOL_MODE=transaction: TEST_DATABASE_URL is PgBouncer in transaction mode,
# where prepared statements do not survive a transaction and startup parameters (the
# search_path pin among them) are dropped. These are the options the README prescribes.
TRANSACTION_POOLER = os.environ.get("TEST_DATABASE_POOL_MODE") == "transaction"


class PoolerOptions(TypedDict, total=False):
    statement_cache_size: int
    shared_pool_search_path: str | None


POOLER_OPTIONS: PoolerOptions = (
    {"statement_cache_size": 0, "shared_pool_search_path": None} if TRANSACTION_POOLER else {}
)


def with_credentials(url: str, user: str, password: str) -> str:
    """``url`` with other credentials (host, port, socket directory and options kept)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:{password}@{host}").geturl()


async def create_host_pool(url: str, max_connections: int = 8) -> asyncpg.Pool:
    """A pool made the way a host application makes its shared pool."""
    config = DatabaseConfig(
        connection_string=url,
        min_connections=1,
        max_connections=max_connections,
        **POOLER_OPTIONS,
    )
    return await AsyncDatabaseManager.create_shared_pool(config)


def build(
    mode: str,
    url: str,
    pool: asyncpg.Pool | None,
    schema: str,
    *,
    standalone_max_connections: int = 4,
    **options: Any,
) -> Library:
    """An uninitialized instance wired the way ``mode`` says: standalone on ``url`` with a
    pool of its own of up to ``standalone_max_connections``, or ("shared") on the host's
    ``pool``. ``options``: constructor arguments such as ``apply_migrations`` or
    ``init_timeout``; pool options among them are refused in shared mode, as they should."""
    if mode == "standalone":
        return Library(
            connection_string=url,
            schema=schema,
            min_connections=1,
            max_connections=standalone_max_connections,
            **POOLER_OPTIONS,
            **options,
        )
    if pool is None:
        raise ValueError(f"mode {mode!r} runs on the host's pool: pass it")
    return Library(db_manager=AsyncDatabaseManager(pool=pool, schema=schema), **options)


def shipped_migrations() -> list[str]:
    """File names of the migrations the package ships, in order."""
    folder = files(PACKAGE) / "migrations"
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".sql"))


async def applied_migrations(admin_pool: asyncpg.Pool, schema: str) -> list[str]:
    """File names recorded in ``schema``'s migrations table for this package."""
    rows = await admin_pool.fetch(
        f'SELECT filename FROM "{schema}".schema_migrations WHERE module_name = $1 ORDER BY id',
        Library.module_name_for(schema),
    )
    return [row["filename"] for row in rows]


async def schema_exists(admin_pool: asyncpg.Pool, schema: str) -> bool:
    return bool(await admin_pool.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema))


async def backends(admin_pool: asyncpg.Pool, application_name: str) -> int:
    """Server connections open under ``application_name``, once closing ones are gone."""
    count = 0
    for _ in range(100):  # a closed connection's backend exits a moment later
        count = await admin_pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", application_name
        )
        if count == 0:
            break
        await asyncio.sleep(0.02)
    return int(count)


def cold_start_in_a_process(
    url: str, schema: str, mode: str, init_timeout: float, start: Barrier, report: Queue[str]
) -> None:
    """One OS process of the multi-process cold start (test_startup.py): make an instance,
    wait for all the others, initialize; report "up_to_date", "pending" or the traceback."""
    try:
        outcome = asyncio.run(_cold_start(url, schema, mode, init_timeout, start))
    except BaseException:  # shown by the test, which only sees what is reported
        outcome = traceback.format_exc()
        start.abort()  # the others stop waiting for this one and report at once
    report.put(outcome)


async def _cold_start(url: str, schema: str, mode: str, init_timeout: float, start: Barrier) -> str:
    pool = None if mode == "standalone" else await create_host_pool(url, max_connections=2)
    lib = build(mode, url, pool, schema, standalone_max_connections=2, init_timeout=init_timeout)
    try:
        start.wait(30)  # every process calls initialize() at the same moment
        await lib.initialize()
        return "up_to_date" if (await lib.migration_status()).up_to_date else "pending"
    finally:
        await lib.close()
        if pool is not None:
            await pool.close()
