"""The template's own tests keep what shares an install on one xdist worker, longest first."""

from __future__ import annotations

import importlib

import pytest

from tests.conftest import (
    FIRST,
    SHARED_MODULES,
    GroupScheduling,
    pytest_xdist_make_scheduler,
    xdist_group,
)
from tests.support import INSTALL_VARIANTS, REPO

PROJECTS = "tests/test_generated_projects.py"


def test_tests_of_one_installed_variant_share_a_group() -> None:
    for variant in INSTALL_VARIANTS:
        assert xdist_group(f"{PROJECTS}::test_generated_suite_passes_in_both_modes[{variant}]") == (
            f"variant-{variant}"
        )
    # Parametrized by something else, or not at all: the default variant's install.
    assert xdist_group(f"{PROJECTS}::test_interrupted_run_leaves_no_server[SIGINT]") == (
        "variant-defaults"
    )
    assert xdist_group(f"{PROJECTS}::test_wheel_ships_migrations_and_works_installed") == (
        "variant-defaults"
    )


def test_a_shared_module_is_one_group_and_any_other_test_its_own() -> None:
    assert xdist_group("tests/test_update.py::test_answers_file_records_the_new_version") == (
        "tests.test_update"
    )
    alone = "tests/test_render.py::test_rendered_project_is_ruff_and_mypy_strict_clean[custom]"
    assert xdist_group(alone) == alone


def test_first_names_only_groups_that_exist() -> None:
    """A renamed test, module or variant would silently fall back to file order."""
    for group in FIRST:
        if group.startswith("variant-"):
            assert group.removeprefix("variant-") in INSTALL_VARIANTS, group
        elif "::" in group:
            path, _, name = group.partition("::")
            module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
            assert callable(getattr(module, name, None)), group
        else:
            assert group in SHARED_MODULES, group
            assert (REPO / (group.replace(".", "/") + ".py")).is_file(), group


def test_loadgroup_is_scheduled_by_these_groups(
    pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pytestconfig.option, "dist", "loadgroup")
    monkeypatch.setattr(pytestconfig.option, "tx", ["popen"] * 3)  # as -n 3 sets it
    scheduler = pytest_xdist_make_scheduler(pytestconfig, None)
    assert isinstance(scheduler, GroupScheduling)
    assert scheduler._split_scope(
        f"{PROJECTS}::test_generated_suite_passes_in_both_modes[custom]"
    ) == ("variant-custom")
    # Another --dist on the command line keeps pytest-xdist's own scheduling.
    monkeypatch.setattr(pytestconfig.option, "dist", "load")
    assert pytest_xdist_make_scheduler(pytestconfig, None) is None
