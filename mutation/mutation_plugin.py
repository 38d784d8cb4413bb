"""pytest plugin for the mutation run: loaded by mutmut's pytest with ``-p mutation_plugin``.

Each mutant runs only the tests that executed its function, with ``-x``: the run ends at
the first failure. mutmut passes those tests in no particular order (a set), and the
generated suite's limit of 30 s per test (60 s for the first and the last) is sized for a
loaded CI runner. This plugin changes neither which tests run nor what they check:

- it runs them fastest first, by the durations mutmut recorded in its instrumented run, so
  a killed mutant is more often caught by a cheap test before an expensive one;
- it limits every test to TIME_LIMIT seconds. A mutant that makes the code wait forever (a
  deadline that never comes, a lock never taken) used to cost 30-60 s of a worker each.
  The slowest test took 0.34 s in the instrumented run, so the limit leaves a wide margin.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

TIME_LIMIT = 10.0
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
    # Prepended, so that it is the closest timeout marker: it wins over the suite's own.
    for item in session.items:
        item.add_marker(pytest.mark.timeout(TIME_LIMIT), append=False)
