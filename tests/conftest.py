"""Fixtures for the template's own tests: a snapshot of the template, projects made from it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import Installed, make_venv, pip_install, render, snapshot_template

pytest_plugins = ["tests.jinja_cache"]


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
