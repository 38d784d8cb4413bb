"""Fixtures for the template's own tests: a snapshot of the template, projects made from it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import Installed, make_venv, pip_install, render, snapshot_template

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep tests that share an installed project on one xdist worker.

    The slow tests install a generated project once per variant (session fixture ``install``)
    or build a release history once per module; spreading them over workers would redo that
    work on each. Everything else is spread freely.
    """
    for item in items:
        found = getattr(item, "module", None)
        module = found.__name__ if found is not None else ""
        if module == "tests.test_generated_projects":
            callspec = getattr(item, "callspec", None)
            variant = callspec.params.get("variant", "defaults") if callspec else "defaults"
            item.add_marker(pytest.mark.xdist_group(f"variant-{variant}"))
        elif item.get_closest_marker("generated_suite"):
            item.add_marker(pytest.mark.xdist_group(module))


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
