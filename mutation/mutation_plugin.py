"""pytest plugin for the mutation run: loaded by mutmut's pytest with ``-p mutation_plugin``.

Each mutant runs only the tests that executed its function, with ``-x``: the run ends at
the first failure. mutmut passes those tests in no particular order (a set), and the
generated suite's limit of 30 s per test (60 s for the first and the last) is sized for a
loaded CI runner. This plugin changes no test and nothing a test checks:

- it runs first the tests that killed other mutants of the same function in this run
  (KILLERS: each child appends the test that killed its mutant), those that failed fast
  before those that ran out of time, then the others fastest first, by the durations mutmut
  recorded in its instrumented run. The order changes which tests run only in that a
  killed mutant is caught sooner (the suite's tests do not depend on their order: it runs
  them in parallel). Fastest first alone, a killed mutant of _close_pool ran 100 or so
  cheap tests for 10-17 s before the one that fails in 0.25 s;
- it limits every test to TIME_LIMIT_FACTOR times its recorded time, at least
  MIN_TIME_LIMIT seconds, fixtures included. A mutant that makes the code wait forever (a
  deadline that never comes, a lock never taken) used to cost 30-60 s of a worker each. In
  the instrumented run the slowest test took 1.03 s (mutmut times the call only), most
  under 0.35 s. The first test that uses a session or module fixture sets it up (the
  session's database, each mode's pools) and the last tears them down: those get
  EDGE_ALLOWANCE more. A limit too tight for the machine would kill mutants falsely; the
  clean run mutmut makes first, of every test under the same limits, fails the whole run
  instead.

It also skips what would teach nothing: a mutant listed in equivalents.txt (behaving as the
original, so every test it runs passes) ends before collection, with mutmut's "skipped"
status, when run.py sets MUTATION_SKIP_EQUIVALENTS (unless --run-equivalents). Run, the 44
listed when this was written took 294 of a run's 1542 mutant-seconds.
"""

from __future__ import annotations

import json
import math
import os
from functools import cache
from pathlib import Path

import pytest
from mutant_keys import Mutant, function_of, read_equivalents

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
KILLERS = "mutmut-killers.tsv"
# Where pytest started (mutmut: <project>/mutants), so that a test that changes directory
# does not move it.
_here = Path.cwd()


def pytest_configure(config: pytest.Config) -> None:
    global _here
    _here = Path.cwd()


def _mutant() -> str:
    """The mutant under test in this process, or "" (the instrumented and clean runs)."""
    name = os.environ.get("MUTANT_UNDER_TEST", "")
    return name if "__mutmut_" in name else ""


def _killers(function: str) -> dict[str, tuple[bool, int]]:
    """Tests that killed mutants of ``function``: test -> (always timed out, -kills)."""
    try:
        lines = (_here / KILLERS).read_text().splitlines()
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
        modified = (_here / STATS).stat().st_mtime_ns
    except FileNotFoundError:
        return {}
    return _read_durations(_here / STATS, modified)


@cache
def _read_durations(path: Path, modified: int) -> dict[str, float]:
    # Read once (750 kB) in mutmut's main process, which forks the mutants' runs.
    durations: dict[str, float] = json.loads(path.read_text())["duration_by_test"]
    return durations


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    durations = _durations()
    if durations:
        items.sort(key=lambda item: durations.get(item.nodeid, math.inf))
    if mutant := _mutant():
        killers = _killers(function_of(mutant))
        # Stable: killers by (fast ones first, most kills first), then the rest as sorted.
        items.sort(key=lambda item: killers.get(item.nodeid, (True, 1)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.failed or not (mutant := _mutant()):
        return
    timed_out = "from pytest-timeout" in str(report.longrepr)
    line = f"{function_of(mutant)}\t{report.nodeid}\t{int(timed_out)}\n"
    fd = os.open(_here / KILLERS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def pytest_collection_finish(session: pytest.Session) -> None:
    # After the sort and the suite's own hooks. Prepended, so that it is the closest
    # timeout marker: it wins over the suite's own.
    durations = _durations()
    last = len(session.items) - 1
    set_up: set[str] = set()
    for index, item in enumerate(session.items):
        if item.nodeid in durations:
            limit = max(MIN_TIME_LIMIT, TIME_LIMIT_FACTOR * durations[item.nodeid])
        else:
            limit = TIME_LIMIT
        # The first test that uses a session or module fixture sets it up (the session's
        # database, each mode's pools), wherever the sort put it; the last tears all down.
        shared = _shared_fixtures(item) - set_up
        set_up |= shared
        if shared or index == last:
            limit += EDGE_ALLOWANCE
        item.add_marker(pytest.mark.timeout(limit), append=False)


def _shared_fixtures(item: pytest.Item) -> set[str]:
    """The fixtures of wider scope than a test that ``item`` uses."""
    info = getattr(item, "_fixtureinfo", None)  # pytest's, on every test function
    if info is None:
        return set()
    return {
        name
        for name, definitions in info.name2fixturedefs.items()
        if definitions and definitions[-1].scope != "function"
    }


@cache
def _equivalents() -> dict[str, str]:
    return read_equivalents()


def _is_listed_equivalent(name: str) -> bool:
    """Whether the mutant's key (its function and change) is in equivalents.txt."""
    function = function_of(name)
    if not any(key.startswith(f"{function}: ") for key in _equivalents()):
        return False  # most mutants: no diff to make (12 ms each with mutmut's libcst)
    try:
        diff = _mutant_diff(_here.parent, name)
    # Whatever goes wrong here (a file not where expected, mutmut's parser): the mutant's
    # tests run, as for any mutant. Raised from this hook, it would count as a kill.
    except Exception:
        return False
    return Mutant(name, "", diff).key in _equivalents()


def _mutant_diff(project: Path, name: str) -> str:
    """The mutant's diff, as mutmut shows it (and run.py reads it)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant  # in mutmut's runs only

    # mutmut runs the tests in <project>/mutants; it reads its files from <project>.
    here = Path.cwd()
    os.chdir(project)
    try:
        diff: str = get_diff_for_mutant(name, path=source_path(project, name))
    finally:
        os.chdir(here)
    return diff


def source_path(project: Path, name: str) -> Path:
    """``src/my_library/_cli.py`` for ``my_library._cli.x_main__mutmut_3``, relative to the
    project: named, where mutmut would look the mutant up in its .meta files, which its
    main process rewrites as results come in (read half-written, one failed a run)."""
    path = Path("src", *name.rpartition(".")[0].split(".")).with_suffix(".py")
    if not (project / path).exists():  # mutmut names a package's mutants without __init__
        path = path.with_suffix("") / "__init__.py"
    return path


def pytest_sessionstart(session: pytest.Session) -> None:
    skip = os.environ.get("MUTATION_SKIP_EQUIVALENTS") == "1"
    if skip and (name := _mutant()) and _is_listed_equivalent(name):
        pytest.exit(f"{name}: listed in equivalents.txt", returncode=SKIPPED)
