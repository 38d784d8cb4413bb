"""Fixtures for the template's own tests: a snapshot of the template, projects made from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import make_venv, render, run, snapshot_template, subprocess_env

# Answers that differ from every default, to catch a name hard-coded anywhere.
CUSTOM_ANSWERS: dict[str, Any] = {
    "project_name": "Acme Ledger",
    "package_name": "acme_ledger",
    "distribution_name": "acme-ledger-db",
    "class_name": "LedgerStore",
    "schema_name": "ledger_data",
    "description": 'Ledger "entries" for Acme\'s back office',
    "author_name": "Acme Platform Team",
    "author_email": "platform@acme.example",
    "python_min": "3.11",
    "license": "Apache-2.0",
}


@dataclass(frozen=True)
class Installed:
    """A generated project with its own virtual environment, installed editable."""

    path: Path
    bin: Path
    python: str

    def run(self, *args: str | Path, timeout: float = 900, **env: str) -> Any:
        return run(list(args), cwd=self.path, env=subprocess_env(**env), timeout=timeout)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as it is in the working tree, copied out of git."""
    return snapshot_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def generate(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Path]:
    """Render a new project from the template with the given answers."""

    def make(answers: dict[str, Any] | None = None, name: str = "project") -> Path:
        return render(template, tmp_path_factory.mktemp(name) / "project", answers)

    return make


@pytest.fixture(scope="session")
def install(
    generate: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, dict[str, Any], str], Installed]:
    """Generate and ``pip install -e '.[test,lint]'`` a project, once per variant."""
    cache: dict[str, Installed] = {}

    def get(variant: str, answers: dict[str, Any], python: str) -> Installed:
        if variant not in cache:
            path = generate(answers, name=variant)
            bin_dir = make_venv(tmp_path_factory.mktemp(f"venv-{variant}") / "venv", python)
            run(
                [bin_dir / "python", "-m", "pip", "install", "-q", "-e", ".[test,lint]"],
                cwd=path,
                env=subprocess_env(),
            )
            cache[variant] = Installed(path, bin_dir, python)
        return cache[variant]

    return get
