"""pytest plugin for the mutation run: loaded by mutmut's pytest with ``-p mutation_plugin``.

Each mutant runs only the tests that executed its function, with ``-x``: the run ends at
the first failure. mutmut passes those tests in no particular order (a set), and the
generated suite's limit of 30 s per test (60 s for the first and the last) is sized for a
loaded CI runner. This plugin changes neither which tests run nor what they check:

- it runs first the tests that killed other mutants of the same function in this run
  (KILLERS: each child appends the test that killed its mutant), those that failed fast
  before those that ran out of time, then the others fastest first, by the durations mutmut
  recorded in its instrumented run. Which tests run, and so whether a mutant is killed, is
  unchanged: a killed mutant is caught sooner. Fastest first alone, a killed mutant of
  _close_pool ran 100 or so cheap tests for 10-17 s before the one that fails in 0.25 s;
- it limits every test to TIME_LIMIT_FACTOR times its recorded time, at least
  MIN_TIME_LIMIT seconds, fixtures included. A mutant that makes the code wait forever (a
  deadline that never comes, a lock never taken) used to cost 30-60 s of a worker each. In
  the instrumented run the slowest test took 1.03 s (mutmut times the call only), most
  under 0.35 s. The first test also makes the session's database and pools and the last
  drops them: those two get EDGE_ALLOWANCE more.

It also skips what would teach nothing: a mutant listed in equivalents.txt (behaving as the
original, so every test it runs passes) ends before collection, with mutmut's "skipped"
status, when run.py sets MUTATION_SKIP_EQUIVALENTS (unless --run-equivalents). Those 44
mutants ran every test of their functions: 294 of the run's 1542 mutant-seconds.
"""

from __future__ import annotations

import json
import math
import os
from functools import cache
from pathlib import Path

import pytest
from mutant_keys import Mutant, read_equivalents

# A test may take TIME_LIMIT_FACTOR times its recorded time, at least MIN_TIME_LIMIT s, and
# TIME_LIMIT when it has none; the first and the last EDGE_ALLOWANCE more.
TIME_LIMIT_FACTOR = 5.0
MIN_TIME_LIMIT = 2.0
TIME_LIMIT = 10.0
EDGE_ALLOWANCE = 8.0
# Written by mutmut in its working directory (mutants/) after the instrumented run; absent
# during that run, which is then left in its order.
STATS = Path("mutmut-stats.json")
# mutmut's exit status for a mutant it was told to skip (status "skipped").
SKIPPED = 34
# "<function>\t<test>\t<timed out: 0|1>" per killed mutant, appended by the child that
# killed it (one short write with O_APPEND: whole lines, with children writing at once).
# run.py removes it before a run.
KILLERS = Path("mutmut-killers.tsv")


def _mutant() -> str:
    """The mutant under test in this process, or "" (the instrumented and clean runs)."""
    name = os.environ.get("MUTANT_UNDER_TEST", "")
    return name if "__mutmut_" in name else ""


def _killers(function: str) -> dict[str, tuple[bool, int]]:
    """Tests that killed mutants of ``function``: test -> (always timed out, -kills)."""
    try:
        lines = KILLERS.read_text().splitlines()
    except FileNotFoundError:
        return {}
    timed_out: dict[str, bool] = {}
    kills: dict[str, int] = {}
    for line in lines:
        fields = line.split("\t")
        if len(fields) != 3 or fields[0] != function:
            continue
        _, test, timeout = fields
        timed_out[test] = timed_out.get(test, True) and timeout == "1"
        kills[test] = kills.get(test, 0) + 1
    return {test: (timed_out[test], -kills[test]) for test in kills}


def _durations() -> dict[str, float]:
    try:
        stats = json.loads(STATS.read_text())
    except FileNotFoundError:
        return {}
    durations: dict[str, float] = stats["duration_by_test"]
    return durations


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    durations = _durations()
    if durations:
        items.sort(key=lambda item: durations.get(item.nodeid, math.inf))
    if mutant := _mutant():
        killers = _killers(Mutant(mutant, "", "").function)
        # Stable: killers by (fast ones first, most kills first), then the rest as sorted.
        items.sort(key=lambda item: killers.get(item.nodeid, (True, 1)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.failed or not (mutant := _mutant()):
        return
    timed_out = "from pytest-timeout" in str(report.longrepr)
    line = f"{Mutant(mutant, '', '').function}\t{report.nodeid}\t{int(timed_out)}\n"
    fd = os.open(KILLERS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def pytest_collection_finish(session: pytest.Session) -> None:
    # After the sort and the suite's own hooks. Prepended, so that it is the closest
    # timeout marker: it wins over the suite's own.
    durations = _durations()
    edges = {0, len(session.items) - 1}
    for index, item in enumerate(session.items):
        if item.nodeid in durations:
            limit = max(MIN_TIME_LIMIT, TIME_LIMIT_FACTOR * durations[item.nodeid])
        else:
            limit = TIME_LIMIT
        if index in edges:
            limit += EDGE_ALLOWANCE
        item.add_marker(pytest.mark.timeout(limit), append=False)


@cache
def _equivalents() -> dict[str, str]:
    return read_equivalents()


def _is_listed_equivalent(name: str) -> bool:
    """Whether the mutant's key (its function and change) is in equivalents.txt."""
    function = Mutant(name, "", "").function
    if not any(key.startswith(f"{function}: ") for key in _equivalents()):
        return False  # most mutants: no diff to make (12 ms each with mutmut's libcst)
    try:
        diff = _mutant_diff(name)
    except (OSError, ValueError):  # not found as expected: its tests run, as for any mutant
        return False
    return Mutant(name, "", diff).key in _equivalents()


def _mutant_diff(name: str) -> str:
    """The mutant's diff, as mutmut shows it (and run.py reads it)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant  # in mutmut's runs only

    # The source file named, as mutmut would look it up in the .meta files, which its main
    # process rewrites as results come in: read half-written, they failed a run.
    module = name.rpartition(".")[0]
    path = Path("src", *module.split(".")).with_suffix(".py")
    # mutmut runs the tests in <project>/mutants; it reads its files from <project>.
    here = Path.cwd()
    os.chdir(here.parent)
    try:
        if not path.exists():
            path = path.with_suffix("") / "__init__.py"
        diff: str = get_diff_for_mutant(name, path=path)
    finally:
        os.chdir(here)
    return diff


def pytest_sessionstart(session: pytest.Session) -> None:
    name = os.environ.get("MUTANT_UNDER_TEST", "")
    skip = os.environ.get("MUTATION_SKIP_EQUIVALENTS") == "1"
    if skip and "__mutmut_" in name and _is_listed_equivalent(name):
        pytest.exit(f"{name}: listed in equivalents.txt", returncode=SKIPPED)
