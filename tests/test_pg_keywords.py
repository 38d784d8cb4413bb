"""The schema keyword list: one list in copier.yml and in the generated library, covering the
server the tests run against (the embedded PostgreSQL 18, or TEST_DATABASE_URL's server)."""

from __future__ import annotations

import asyncio
import runpy
from collections.abc import Iterator

import asyncpg
import pytest

from tests.postgres_server import postgres_url
from tests.support import REPO, computed_set

KEYWORDS_MODULE = REPO / "template/src/{{ package_name }}/_pg_keywords.py"


def copier_keywords() -> set[str]:
    return computed_set("postgres_reserved_keywords")


def library_keywords() -> frozenset[str]:
    keywords: frozenset[str] = runpy.run_path(str(KEYWORDS_MODULE))["RESERVED_KEYWORDS"]
    return keywords


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with postgres_url() as url:
        yield url


async def _server_keywords(url: str) -> tuple[str, set[str]]:
    conn = await asyncpg.connect(url)
    try:
        version = await conn.fetchval("SHOW server_version")
        rows = await conn.fetch("SELECT word FROM pg_get_keywords() WHERE catcode::text <> 'U'")
    finally:
        await conn.close()
    return version, {row["word"] for row in rows}


def test_copier_and_the_library_refuse_the_same_schema_keywords() -> None:
    """The validator and the library's run-time check use one list."""
    assert copier_keywords() == library_keywords()
    assert {"select", "user", "order", "authorization", "int", "json_table"} <= copier_keywords()


def test_keywords_cover_every_keyword_the_server_reserves(server_url: str) -> None:
    """Every keyword that is not unreserved on this server is refused as a schema name."""
    version, reserved = asyncio.run(_server_keywords(server_url))
    missing = reserved - copier_keywords()
    assert missing == set(), (
        f"PostgreSQL {version} reserves {sorted(missing)}: add them to both lists"
    )
