"""Cold start of many instances at once: a deploy that starts N replicas on a fresh schema.

Renders a project from the template (defaults) and imports its package. Each round makes
three fresh schemas and times, in an order that rotates from round to round:

- ``one``: one standalone instance's ``initialize()`` (connect, lock, create the schema,
  apply the migrations): the work a deploy cannot avoid;
- ``jittered``: N standalone instances (each with a pool of its own, as N processes
  would have) calling ``initialize()`` together, the library as generated: waiters for
  the start-up lock pause a random time below a doubling bound;
- ``lockstep``: the same N with those pauses fixed at the bound itself, as before the
  jitter: waiters that started together wake together, one wins and the rest sleep again.

Prints the median milliseconds of each and the ratios of the medians; N / one is what the
queue on the lock costs over the work itself. These machines are shared: compare figures
of one run, not across runs.

    python benchmarks/cold_start.py [--instances 8] [--rounds 15]

Uses TEST_DATABASE_URL when set (with TEST_DATABASE_POOL_MODE=transaction for PgBouncer),
else starts an embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The script's directory is on sys.path; call_overhead adds the repository's (tests.support).
from call_overhead import on_a_new_project

WAYS = ("one", "jittered", "lockstep")


async def cold_start(package: Any, url: str, schema: str, instances: int) -> float:
    """Seconds until ``instances`` standalone instances have all initialized ``schema``."""
    pooler: dict[str, Any] = {}
    if os.environ.get("TEST_DATABASE_POOL_MODE") == "transaction":
        pooler = {"statement_cache_size": 0, "shared_pool_search_path": None}
    libs = [
        package.MyLibrary(
            connection_string=url, schema=schema, min_connections=1, max_connections=2, **pooler
        )
        for _ in range(instances)
    ]
    try:
        started = time.perf_counter()
        await asyncio.gather(*(lib.initialize() for lib in libs))
        return time.perf_counter() - started
    finally:
        await asyncio.gather(*(lib.close() for lib in libs))


async def run(url: str, project: Path, instances: int, rounds: int) -> dict[str, list[float]]:
    sys.path.insert(0, str(project / "src"))
    package = importlib.import_module("my_library")
    bootstrap: Any = importlib.import_module("my_library._bootstrap")
    jittered = bootstrap._pauses

    def lockstep(first: float) -> Iterator[float]:
        bound = first
        while True:
            yield bound
            bound = min(bound * 2, bootstrap.POLL_CAP)

    samples: dict[str, list[float]] = {way: [] for way in WAYS}
    for round_ in range(rounds):
        order = WAYS[round_ % 3 :] + WAYS[: round_ % 3]
        for way in order:
            bootstrap._pauses = lockstep if way == "lockstep" else jittered
            count = 1 if way == "one" else instances
            schema = f"cold_{way}_{round_}"
            samples[way].append(await cold_start(package, url, schema, count))
    bootstrap._pauses = jittered
    return samples


def report(samples: dict[str, list[float]], instances: int) -> None:
    medians = {way: statistics.median(values) for way, values in samples.items()}
    rounds = len(samples["one"])
    print(f"\ncold start on a fresh schema, standalone, median of {rounds} rounds")
    labels = {
        "one": "1 instance",
        "jittered": f"{instances} at once, jittered",
        "lockstep": f"{instances} at once, lockstep",
    }
    for way in WAYS:
        print(f"  {labels[way]:<26} {medians[way] * 1e3:8.1f} ms")
    print(f"  ratio jittered / one        {medians['jittered'] / medians['one']:6.2f} x")
    print(f"  ratio lockstep / one        {medians['lockstep'] / medians['one']:6.2f} x")
    print(f"  ratio lockstep / jittered   {medians['lockstep'] / medians['jittered']:6.2f} x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    if args.instances < 2 or args.rounds < 1:
        parser.error("--instances must be at least 2 and --rounds at least 1")
    samples = on_a_new_project(lambda url, project: run(url, project, args.instances, args.rounds))
    report(samples, args.instances)


if __name__ == "__main__":
    main()
