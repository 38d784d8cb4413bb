"""The template's own tests keep what shares an install on one xdist worker, longest first,
and lint a variant once."""

from __future__ import annotations

import importlib
import sys

import pytest

from tests.conftest import (
    FIRST,
    LINTED_WHERE_INSTALLED,
    OWN_TOOLS_LINT,
    RENDER_LINT,
    SHARED_MODULES,
    GroupScheduling,
    xdist_group,
)
from tests.support import (
    INSTALL_VARIANTS,
    PYTHON_FLOORS,
    REPO,
    run,
    runnable_variants,
    subprocess_env,
)
from tests.test_render import LINT_VARIANTS

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
    wheel = f"{PROJECTS}::test_wheel_ships_migrations_and_its_suite_passes_installed"
    assert xdist_group(wheel) == "variant-defaults"


def test_a_shared_module_is_one_group_and_any_other_test_its_own() -> None:
    assert xdist_group("tests/test_update.py::test_answers_file_records_the_new_version") == (
        "tests.test_update"
    )
    alone = "tests/test_render.py::test_rendered_project_is_ruff_and_mypy_strict_clean[proprietary]"
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
    """Asked as pytest-xdist asks (its own scheduler comes last), this file's answers."""
    monkeypatch.setattr(pytestconfig.option, "dist", "loadgroup")
    monkeypatch.setattr(pytestconfig.option, "tx", ["popen"] * 3)  # as -n 3 sets it
    scheduler = pytestconfig.hook.pytest_xdist_make_scheduler(config=pytestconfig, log=None)
    assert isinstance(scheduler, GroupScheduling)
    variant = f"{PROJECTS}::test_generated_suite_passes_in_both_modes[custom]"
    assert scheduler._split_scope(variant) == "variant-custom"
    # Another --dist on the command line keeps pytest-xdist's own scheduling.
    monkeypatch.setattr(pytestconfig.option, "dist", "load")
    scheduler = pytestconfig.hook.pytest_xdist_make_scheduler(config=pytestconfig, log=None)
    assert not isinstance(scheduler, GroupScheduling)


def test_each_floor_and_the_custom_answers_have_an_installed_twin() -> None:
    render = {RENDER_LINT.format(variant) for variant in LINT_VARIANTS}
    own_tools = {OWN_TOOLS_LINT.format(variant) for variant in INSTALL_VARIANTS}
    assert set(LINTED_WHERE_INSTALLED) <= render
    assert set(LINTED_WHERE_INSTALLED.values()) <= own_tools
    expected = {f"python{floor}" for floor in PYTHON_FLOORS} | {"custom"}
    assert {RENDER_LINT.format(variant) for variant in expected} <= set(LINTED_WHERE_INSTALLED)


def _collected(*args: str) -> set[str]:
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0", *args]
    out = run([*command, "-p", "no:cacheprovider"], REPO, env=subprocess_env()).stdout
    return {line for line in out.splitlines() if "::" in line}


def test_a_variant_is_linted_once_where_it_is_installed_and_by_the_template_otherwise() -> None:
    lints = "-k", "ruff_and_mypy_strict_clean or lints_with_its_own_tools"
    both = _collected("tests/test_render.py", "tests/test_generated_projects.py", *lints)
    quick = _collected("tests/test_render.py", "-m", "not generated_suite", *lints)
    installed = {OWN_TOOLS_LINT.format(variant) for variant in runnable_variants()}
    assert installed <= both
    for render, own_tools in LINTED_WHERE_INSTALLED.items():
        assert (render in both) == (own_tools not in installed), render
        assert render in quick, render
    assert RENDER_LINT.format("proprietary") in both
