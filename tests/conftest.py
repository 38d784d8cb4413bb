"""Fixtures for the template's own tests: a snapshot of the template, projects made from it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

from tests.support import (
    DEFAULT_PYTHON_MIN,
    INSTALL_VARIANTS,
    Installed,
    make_venv,
    pip_install,
    render,
    snapshot_template,
)

pytest_plugins = ["tests.jinja_cache", "tests.copier_memo"]


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than the cores, unless the suites share one server.

    The slow tests spend much of their time waiting (generated suites on lock polls and
    timeouts, installs, servers starting), so a third worker on two cores keeps both busy:
    back to back, the whole run took 160-172 s against 182-187 s with two (measured before
    tests/copier_memo.py and the bytecode fix in tests/support.py brought three to 141 s).
    With TEST_DATABASE_URL every generated suite opens its connections (about 25 at once)
    on that one server, whose limit is often 100: there, one worker per core.
    """
    if "PYTEST_XDIST_AUTO_NUM_WORKERS" in os.environ:  # as pytest-xdist itself honours it
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    return cores if os.environ.get("TEST_DATABASE_URL") else cores + 1


# Modules kept on one worker: test_update's tests share its release history (module
# fixtures); three of test_fastapi_variant's share the installed FastAPI variant (session
# fixture `install`), and the module's other tests are short renders and ruff runs.
SHARED_MODULES = ("tests.test_update", "tests.test_fastapi_variant")

# The groups handed out first, longest first: a worker that starts one near the end keeps
# the run going while the others are done. Worker time each took in one run (3 workers on 2
# cores): the release history's group about 100 s, the FastAPI module's 90 s, the default
# variant's 76 s, the hostile answers 44 s, each other variant 28-31 s. pytest-xdist hands a
# worker its next group when two of its tests are left, so this order is a strong hint, not
# a schedule. Everything else follows in file order.
FIRST = (
    "tests.test_update",
    "tests.test_fastapi_variant",
    "variant-defaults",
    "tests/test_hostile_answers.py::test_any_answers_are_refused_cleanly_or_give_a_working_project",
    "variant-min3.12",
    "variant-min3.13",
    "variant-custom",
)

# The template's ruff and mypy on a rendered floor or on the custom answers, and the lint of
# the installed variant that has that floor or those answers, with its own tools (which
# check it against the dependencies it installs): where both are selected, only the second
# runs (tests/test_render.py, tests/test_generated_projects.py).
RENDER_LINT = "tests/test_render.py::test_rendered_project_is_ruff_and_mypy_strict_clean[{}]"
OWN_TOOLS_LINT = (
    "tests/test_generated_projects.py::test_generated_project_lints_with_its_own_tools[{}]"
)
LINTED_WHERE_INSTALLED = {
    RENDER_LINT.format(f"python{answers.get('python_min', DEFAULT_PYTHON_MIN)}"): (
        OWN_TOOLS_LINT.format(name)
    )
    for name, answers in INSTALL_VARIANTS.items()
} | {RENDER_LINT.format("custom"): OWN_TOOLS_LINT.format("custom")}


def xdist_group(nodeid: str) -> str:
    """The name of the tests that must run on one xdist worker with this one (tests sharing
    an installed project or a release history), or the test's own id."""
    path, _, rest = nodeid.partition("::")
    module = path.removesuffix(".py").replace("/", ".")
    if module == "tests.test_generated_projects":
        # A test parametrized by anything else (a signal) uses the default variant.
        param = rest.partition("[")[2].removesuffix("]")
        return f"variant-{param if param in INSTALL_VARIANTS else 'defaults'}"
    return module if module in SHARED_MODULES else nodeid


class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist has no type hints
    """pytest-xdist's scheduling by scope, the scopes being ``xdist_group``'s.

    ``--dist loadgroup`` reads groups from test ids that its worker-side hook suffixes with
    ``@group``; from pytest 9.2 that no longer changes the ids (pytest-xdist issue 1386), and
    the groups were silently spread over all workers. Naming them from the test ids here
    needs no marker.
    """

    def _split_scope(self, nodeid: str) -> str:
        return xdist_group(nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling | None:
    """(pytest-xdist) ``--dist loadgroup``, as the addopts ask: the groups above."""
    return GroupScheduling(config, log) if config.getvalue("dist") == "loadgroup" else None


# Last, so that it sees what -k and -m selected.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop a template lint whose installed twin is selected (LINTED_WHERE_INSTALLED), then
    order the rest: the longest groups first (FIRST), which pytest-xdist hands out in this
    order (``--no-loadscope-reorder``: it would put the groups with most tests first)."""
    selected = {item.nodeid for item in items}
    twins = [item for item in items if LINTED_WHERE_INSTALLED.get(item.nodeid) in selected]
    if twins:
        config.hook.pytest_deselected(items=twins)
        items[:] = [item for item in items if item not in twins]
    for item in items:
        callspec = getattr(item, "callspec", None)
        if item.nodeid.startswith("tests/test_generated_projects.py::") and callspec:
            # The scheduler reads the variant from the id: it must be the one the test installs.
            variant = callspec.params.get("variant", "defaults")
            assert xdist_group(item.nodeid) == f"variant-{variant}", item.nodeid
    rank = {group: i for i, group in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(xdist_group(item.nodeid), len(FIRST)))


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as it is in the working tree, copied out of git."""
    return snapshot_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def generate(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Render a new project from the template with the given answers."""

    def make(answers: dict[str, Any] | None = None, name: str = "project") -> Path:
        return render(template, tmp_path_factory.mktemp(name) / "project", answers)

    return make


@pytest.fixture(scope="session")
def install(
    generate: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, dict[str, Any], str], Installed]:
    """Generate and install a project (editable, groups test and lint), once per variant."""
    cache: dict[str, Installed] = {}

    def get(variant: str, answers: dict[str, Any], python: str) -> Installed:
        if variant not in cache:
            path = generate(answers, name=variant)
            bin_dir = make_venv(variant, python)
            pip_install(bin_dir, "-e", ".", "--group", "test", "--group", "lint", cwd=path)
            cache[variant] = Installed(path, bin_dir, python)
        return cache[variant]

    return get
