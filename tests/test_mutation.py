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

@pytest.fixture(scope="session")
def database():
    return "made by the first test that asks for it"

@pytest.mark.timeout(60)
def test_slow():
    pass

def test_fast():
    pass

def test_medium(database):
    pass

def test_unmeasured():
    pass
"""


def plugin_in(pytester: pytest.Pytester, **test_files: str) -> ModuleType:
    """The plugin, with ``test_files`` written for an inner pytest run that loads it."""
    pytester.syspathinsert(REPO / "mutation")
    pytester.makepyfile(**test_files)
    # The inner run's own settings: pytest-asyncio warns when this one is unset.
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return importlib.import_module("mutation_plugin")


def run_plugin(
    pytester: pytest.Pytester, durations: dict[str, float] | None
) -> tuple[list[Any], ModuleType]:
    """(name, time limit) of each test, in the order the plugin ran them, and the plugin."""
    plugin = plugin_in(pytester, test_order=ORDER_TESTS)
    if durations is not None:  # mutmut writes them into its working directory
        stats = {"duration_by_test": {f"test_order.py::{k}": v for k, v in durations.items()}}
        (pytester.path / "mutmut-stats.json").write_text(json.dumps(stats))
    result = pytester.inline_run("-p", "mutation_plugin")
    result.assertoutcome(passed=len(ORDER_NAMES))
    [finish] = result.getcalls("pytest_collection_finish")
    return [(i.name, i.get_closest_marker("timeout").args[0]) for i in finish.session.items], plugin


ORDER_NAMES = ["test_slow", "test_fast", "test_medium", "test_unmeasured"]


def test_the_plugin_runs_the_fastest_tests_first_under_its_own_limits(
    pytester: pytest.Pytester,
) -> None:
    durations = {"test_fast": 0.01, "test_medium": 0.05, "test_slow": 0.6}
    order, plugin = run_plugin(pytester, durations)
    least, factor, edge = plugin.MIN_TIME_LIMIT, plugin.TIME_LIMIT_FACTOR, plugin.EDGE_ALLOWANCE
    assert 0.6 * factor > least
    assert order == [
        ("test_fast", least + edge),  # sets up pytest-asyncio's session fixture
        ("test_medium", least + edge),  # sets up the suite's own: more time again
        ("test_slow", 0.6 * factor),  # its own 60 s gives way
        ("test_unmeasured", plugin.TIME_LIMIT + edge),  # tears the session down
    ]
    assert max(limit for _, limit in order) < 60


def test_without_durations_the_plugin_keeps_the_order(pytester: pytest.Pytester) -> None:
    names = [name for name, _ in run_plugin(pytester, None)[0]]
    assert names == ORDER_NAMES


def test_tests_that_killed_the_functions_mutants_run_first(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Those that failed fast, most kills first, then those that ran out of time; kills of
    another function's mutants change nothing."""
    (pytester.path / "mutmut-killers.tsv").write_text(
        "_cli._parser\ttest_order.py::test_medium\t1\n"
        "_cli._parser\ttest_order.py::test_unmeasured\t0\n"
        "_cli._main\ttest_order.py::test_fast\t0\n"
        "_cli._parser\ttest_order.py::test_slow\t0\n"
        "_cli._parser\ttest_order.py::test_slow\t0\n"
    )
    monkeypatch.setenv("MUTANT_UNDER_TEST", PARSER_MUTANT)
    durations = {"test_fast": 0.01, "test_medium": 0.05, "test_slow": 0.3}
    names = [name for name, _ in run_plugin(pytester, durations)[0]]
    assert names == ["test_slow", "test_unmeasured", "test_medium", "test_fast"]


KILLED_TESTS = """
import time

def test_passes():
    pass

def test_fails():
    assert False

def test_hangs():
    time.sleep(5)
"""


@pytest.mark.parametrize(("test", "timed_out"), [("test_fails", "0"), ("test_hangs", "1")])
def test_the_test_that_kills_a_mutant_is_recorded(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, test: str, timed_out: str
) -> None:
    plugin = plugin_in(pytester, test_kill=KILLED_TESTS)
    monkeypatch.setattr(plugin, "MIN_TIME_LIMIT", 0.3)
    monkeypatch.setattr(plugin, "EDGE_ALLOWANCE", 0.0)
    durations = {f"test_kill.py::{name}": 0.01 for name in ("test_passes", test)}
    (pytester.path / "mutmut-stats.json").write_text(json.dumps({"duration_by_test": durations}))
    killers = pytester.path / "mutmut-killers.tsv"
    # The instrumented and clean runs record nothing; a mutant's run records its killer.
    monkeypatch.setenv("MUTANT_UNDER_TEST", "")
    pytester.inline_run("-p", "mutation_plugin", "-x", f"test_kill.py::{test}").assertoutcome(
        failed=1
    )
    assert not killers.exists()
    monkeypatch.setenv("MUTANT_UNDER_TEST", PARSER_MUTANT)
    result = pytester.inline_run(
        "-p", "mutation_plugin", "-x", "test_kill.py::test_passes", f"test_kill.py::{test}"
    )
    result.assertoutcome(passed=1, failed=1)
    assert killers.read_text() == f"_cli._parser\ttest_kill.py::{test}\t{timed_out}\n"


# A mutant of _cli._parser as mutmut names it and shows its diff.
PARSER_MUTANT = "my_library._cli.x__parser__mutmut_12"


def parser_diff(new: str) -> str:
    return (
        "--- src/my_library/_cli.py\n+++ src/my_library/_cli.py\n@@ -1,2 +1,2 @@\n"
        " def _parser(library):\n"
        '-    package = library.__module__.rpartition(".")[0]\n'
        f"+    package = {new}\n"
    )


@pytest.mark.parametrize(
    ("skip", "new", "ran"),
    [
        # Listed in equivalents.txt: ended before collection, with mutmut's "skipped" status.
        ("1", 'library.__module__.partition(".")[0]', False),
        # The same function, another change: not listed, so its tests run.
        ("1", 'library.__module__.rpartition(".")[1]', True),
        # Listed, but run.py --run-equivalents did not ask for skipping.
        ("", 'library.__module__.partition(".")[0]', True),
    ],
)
def test_the_plugin_skips_exactly_the_listed_equivalents(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, skip: str, new: str, ran: bool
) -> None:
    plugin = plugin_in(pytester, test_order=ORDER_TESTS)
    # The diff mutmut would give (it reads its own mutants/ folder, which this run has not).
    monkeypatch.setattr(plugin, "_mutant_diff", lambda project, name: parser_diff(new))
    assert run.Mutant(PARSER_MUTANT, "", parser_diff(new)).function == "_cli._parser"
    monkeypatch.setenv("MUTANT_UNDER_TEST", PARSER_MUTANT)
    monkeypatch.setenv("MUTATION_SKIP_EQUIVALENTS", skip)
    result = pytester.inline_run("-p", "mutation_plugin")
    if ran:
        result.assertoutcome(passed=4)
    else:
        assert result.ret == plugin.SKIPPED == 34  # mutmut's "skipped"
        assert result.getcalls("pytest_collection_finish") == []


def test_an_error_while_looking_for_a_listed_equivalent_runs_the_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raised from the plugin's hook, it would end the run as an internal error, which
    mutmut counts as a kill."""
    plugin = plugin_in(pytester, test_order=ORDER_TESTS)

    def broken(project: Path, name: str) -> str:
        raise RuntimeError("mutmut could not read its mutants")

    monkeypatch.setattr(plugin, "_mutant_diff", broken)
    monkeypatch.setenv("MUTANT_UNDER_TEST", PARSER_MUTANT)
    monkeypatch.setenv("MUTATION_SKIP_EQUIVALENTS", "1")
    pytester.inline_run("-p", "mutation_plugin").assertoutcome(passed=4)


def test_a_mutant_is_looked_up_in_the_source_file_its_name_gives(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "mutation"))
    try:
        plugin = importlib.import_module("mutation_plugin")
    finally:
        sys.path.remove(str(REPO / "mutation"))
    package = tmp_path / "src" / "my_library"
    package.mkdir(parents=True)
    for module in ("__init__.py", "_cli.py", "_dualmode.py"):
        (package / module).write_text("")
    where = {
        "my_library._cli.x__parser__mutmut_12": "src/my_library/_cli.py",
        "my_library._dualmode.x\u01c1DualModeLibrary\u01c1close__mutmut_2": (
            "src/my_library/_dualmode.py"
        ),
        # mutmut leaves "__init__" out of the names of a package's own mutants.
        "my_library.x__version__mutmut_1": "src/my_library/__init__.py",
    }
    for name, path in where.items():
        assert plugin.source_path(tmp_path, name) == Path(path), name
