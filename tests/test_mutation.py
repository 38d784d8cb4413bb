"""mutation/run.py: how it names mutants, reads the equivalents file and scores a run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support import REPO


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_run", REPO / "mutation" / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_run"] = module
    spec.loader.exec_module(module)
    return module


run = _load()

DIFF = """--- src/my_library/_cli.py
+++ src/my_library/_cli.py
@@ -1,3 +1,3 @@
 def _print_status(status, out):
-    print("up to date", file=out)
+    print("up to date", file=None)
"""


def mutant(name: str, status: str = "survived", diff: str = DIFF) -> Any:
    return run.Mutant(name=name, status=status, diff=diff)


def test_a_mutant_is_named_by_its_function_and_its_change() -> None:
    method = mutant("my_library._dualmode.x\u01c1DualModeLibrary\u01c1initialize__mutmut_3")
    assert method.function == "_dualmode.DualModeLibrary.initialize"
    function = mutant("my_library._cli.x__print_status__mutmut_21")
    assert function.function == "_cli._print_status"
    assert function.change == 'print("up to date", file=out) ==> print("up to date", file=None)'
    assert function.key == f"_cli._print_status: {function.change}"


def test_every_equivalent_has_a_reason() -> None:
    entries = run.read_equivalents()
    assert entries
    assert all(reason.strip() for reason in entries.values())
    assert all(" ==> " in key and ": " in key for key in entries)


def test_an_equivalent_without_a_reason_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "equivalents.txt"
    broken.write_text("_cli.main: a ==> b\n_cli.main: c ==> d\n    reason: same\n")
    with pytest.raises(SystemExit, match="has no reason"):
        run.read_equivalents(broken)


def test_the_score_leaves_out_equivalents_and_type_checked_mutants(
    capsys: pytest.CaptureFixture[str],
) -> None:
    survivor = mutant("my_library._cli.x__print_status__mutmut_1")
    mutants = [
        mutant("my_library.core.x_a__mutmut_1", "killed", ""),
        mutant("my_library.core.x_a__mutmut_2", "killed", ""),
        mutant("my_library.core.x_a__mutmut_3", "caught by type check", ""),
        mutant("my_library.core.x_a__mutmut_4", "timeout"),  # not a kill: see run.py
        survivor,
    ]
    equivalents = {survivor.key: "the same"}
    assert run.report(mutants, equivalents, 66.0, 1.0, full=True) == 0
    out = capsys.readouterr().out
    assert "mutation score: 2/3 = 66.7% of non-equivalent mutants killed" in out
    assert "1 equivalent" in out
    assert "1 rejected by mypy --strict" in out
    assert "SURVIVED (timeout) my_library.core.x_a__mutmut_4" in out
    assert run.report(mutants, {}, 60.0, 1.0, full=True) == 1  # 2/4 = 50%
    assert "FAILED: the score is under 60%" in capsys.readouterr().out


pytest_plugins = ["pytester"]

# Four tests with limits of their own, as the generated suite's are.
ORDER_TESTS = """
import pytest

@pytest.mark.timeout(60)
def test_slow():
    pass

def test_fast():
    pass

def test_medium():
    pass

def test_unmeasured():
    pass
"""


def run_plugin(
    pytester: pytest.Pytester, durations: dict[str, float] | None
) -> tuple[list[Any], Any]:
    """(name, time limit) of each test, in the order the plugin ran them, and the plugin."""
    pytester.syspathinsert(REPO / "mutation")
    pytester.makepyfile(test_order=ORDER_TESTS)
    # The inner run's own settings: pytest-asyncio warns when this one is unset.
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    if durations is not None:  # mutmut writes them into its working directory
        stats = {"duration_by_test": {f"test_order.py::{k}": v for k, v in durations.items()}}
        (pytester.path / "mutmut-stats.json").write_text(json.dumps(stats))
    result = pytester.inline_run("-p", "mutation_plugin")
    result.assertoutcome(passed=4)
    [finish] = result.getcalls("pytest_collection_finish")
    plugin = finish.session.config.pluginmanager.get_plugin("mutation_plugin")
    return [(i.name, i.get_closest_marker("timeout").args[0]) for i in finish.session.items], plugin


def test_the_plugin_runs_the_fastest_tests_first_under_its_own_limits(
    pytester: pytest.Pytester,
) -> None:
    durations = {"test_fast": 0.01, "test_medium": 0.05, "test_slow": 0.3}
    order, plugin = run_plugin(pytester, durations)
    edge, limit = plugin.EDGE_TIME_LIMIT, plugin.TIME_LIMIT
    assert limit < edge < 60
    assert order == [
        ("test_fast", edge),  # also makes the session's database: the edge limit
        ("test_medium", limit),
        ("test_slow", limit),  # its own 60 s gives way
        ("test_unmeasured", edge),
    ]


def test_without_durations_the_plugin_keeps_the_order(pytester: pytest.Pytester) -> None:
    names = [name for name, _ in run_plugin(pytester, None)[0]]
    assert names == ["test_slow", "test_fast", "test_medium", "test_unmeasured"]
