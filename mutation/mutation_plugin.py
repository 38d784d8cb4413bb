"""pytest plugin for the mutation run: loaded by mutmut's pytest with ``-p mutation_plugin``.

Each mutant runs only the tests that executed its function, with ``-x``: the run ends at
the first failure. mutmut passes those tests in no particular order (a set), and the
generated suite's limit of 30 s per test (60 s for the first and the last) is sized for a
loaded CI runner. This plugin changes neither which tests run nor what they check:

- it runs them fastest first, by the durations mutmut recorded in its instrumented run, so
  a killed mutant is more often caught by a cheap test before an expensive one;
- it limits every test to TIME_LIMIT seconds, fixtures included. A mutant that makes the
  code wait forever (a deadline that never comes, a lock never taken) used to cost 30-60 s
  of a worker each. In the instrumented run the slowest test took 0.34 s (mutmut times the
  call only) and half the mutants' whole runs took under 0.6 s, so the limit leaves a wide
  margin. The first test also makes the session's database and pools and the last drops
  them: those two get EDGE_TIME_LIMIT, the suite's own limit per test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

TIME_LIMIT = 10.0
EDGE_TIME_LIMIT = 30.0
# Written by mutmut in its working directory (mutants/) after the instrumented run; absent
# during that run, which is then left in its order.
STATS = Path("mutmut-stats.json")


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


def pytest_collection_finish(session: pytest.Session) -> None:
    # After the sort and the suite's own hooks. Prepended, so that it is the closest
    # timeout marker: it wins over the suite's own.
    edges = {0, len(session.items) - 1}
    for index, item in enumerate(session.items):
        limit = EDGE_TIME_LIMIT if index in edges else TIME_LIMIT
        item.add_marker(pytest.mark.timeout(limit), append=False)
