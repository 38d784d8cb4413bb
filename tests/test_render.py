"""What `copier copy` writes: a complete, lint-clean project, the same every time."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import copier
import jinja2
import pytest
import yaml
from copier import _main as copier_main
from copier import _template as copier_template
from copier._jinja_ext import YieldExtension, get_yield_context
from copier.errors import InvalidConfigFileError

from tests import copier_memo, jinja_cache
from tests.support import (
    CUSTOM_ANSWERS,
    INSTALL_VARIANTS,
    PYTHON_FLOORS,
    PYTHON_NEWEST,
    REPO,
    computed_names,
    git,
    subprocess_env,
    tree,
)

DEFAULT_FILES = {
    ".copier-answers.yml",
    ".github/dependabot.yml",
    ".github/workflows/ci.yml",
    ".github/workflows/release.yml",
    ".pre-commit-config.yaml",
    ".gitignore",
    "CHANGELOG.md",
    "LICENSE",
    "README.md",
    "pyproject.toml",
    "src/my_library/__init__.py",
    "src/my_library/__main__.py",
    "src/my_library/_bootstrap.py",
    "src/my_library/_cli.py",
    "src/my_library/_dualmode.py",
    "src/my_library/_pg_keywords.py",
    "src/my_library/core.py",
    "src/my_library/errors.py",
    "src/my_library/migrations/001_initial.sql",
    "src/my_library/models.py",
    "src/my_library/py.typed",
    "src/my_library/sql.py",
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/dev_server.py",
    "tests/fixtures.py",
    "tests/helpers.py",
    "tests/library.py",
    "tests/pg_server.py",
    "tests/tcp_proxy.py",
    "tests/test_lifecycle.py",
    "tests/test_migrations.py",
    "tests/test_operations.py",
    "tests/test_database.py",
    "tests/test_errors.py",
    "tests/test_records.py",
    "tests/test_startup.py",
    "tests/test_state.py",
    "tests/test_usage_errors.py",
}

# The machinery `copier update` keeps current: verbatim files, marked as the template's.
TEMPLATE_OWNED = (
    "src/{{ package_name }}/_bootstrap.py",
    "src/{{ package_name }}/_cli.py",
    "src/{{ package_name }}/_dualmode.py",
    "src/{{ package_name }}/_pg_keywords.py",
    "src/{{ package_name }}/errors.py",
    "tests/dev_server.py",
    "tests/fixtures.py",
    "tests/helpers.py",
    "tests/pg_server.py",
    "tests/tcp_proxy.py",
    "tests/test_database.py",
    "tests/test_errors.py",
    "tests/test_operations.py",
    "tests/test_startup.py",
    "tests/test_state.py",
)


def test_defaults_give_the_complete_project(generate: Callable[..., Path]) -> None:
    """`copier copy --defaults` writes the library, its migrations, tests and metadata."""
    project = generate()
    assert set(tree(project)) == DEFAULT_FILES


def test_answers_file_records_the_answers_for_updates(generate: Callable[..., Path]) -> None:
    """The answers file holds every asked answer and the source, and no computed value."""
    answers = yaml.safe_load((generate(CUSTOM_ANSWERS) / ".copier-answers.yml").read_text())
    for key, value in CUSTOM_ANSWERS.items():
        assert answers[key] == value
    assert "_src_path" in answers
    computed = set(computed_names())
    assert "postgres_reserved_keywords" in computed
    assert not computed & set(answers)


def test_custom_answers_reach_every_file(generate: Callable[..., Path]) -> None:
    """No default name survives anywhere when every answer is customised."""
    project = generate(CUSTOM_ANSWERS)
    files = tree(project)
    assert "src/acme_ledger/migrations/001_initial.sql" in files
    for path, content in files.items():
        text = content.decode()
        assert not re.search(r"my[_-]library|MyLibrary", text, re.IGNORECASE), path

    meta = tomllib.loads(files["pyproject.toml"].decode())
    assert meta["project"]["name"] == "acme-ledger-db"
    assert meta["project"]["description"] == CUSTOM_ANSWERS["description"]
    assert meta["project"]["requires-python"] == ">=3.10"
    assert meta["project"]["license"] == "Apache-2.0"
    assert meta["project"]["authors"] == [
        {"name": "Acme Platform Team", "email": "platform@acme.example"}
    ]
    assert "target-version" not in meta["tool"]["ruff"]  # ruff reads requires-python
    assert meta["tool"]["mypy"]["python_version"] == "3.10"
    assert meta["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/acme_ledger"]

    core = files["src/acme_ledger/core.py"].decode()
    assert "class LedgerStore(DualModeLibrary):" in core
    assert 'DEFAULT_SCHEMA = "ledger_data"' in core
    assert (
        "from acme_ledger.core import LedgerStore as Library" in files["tests/library.py"].decode()
    )
    assert "Apache License" in files["LICENSE"].decode()


def test_proprietary_license_writes_no_license_file(generate: Callable[..., Path]) -> None:
    """A proprietary library gets no LICENSE and a classifier that blocks uploads."""
    project = generate({"license": "Proprietary"})
    assert not (project / "LICENSE").exists()
    meta = tomllib.loads((project / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "LicenseRef-Proprietary"
    assert "license-files" not in meta["project"]
    assert "Private :: Do Not Upload" in meta["project"]["classifiers"]


def test_same_answers_give_identical_trees(generate: Callable[..., Path]) -> None:
    """Rendering is deterministic: two runs with the same answers match byte for byte."""
    answers = {**CUSTOM_ANSWERS, "copyright_year": "2026"}
    assert tree(generate(answers)) == tree(generate(answers))


@pytest.mark.parametrize("answers", [CUSTOM_ANSWERS, {"with_fastapi": True}], ids=["custom", "api"])
def test_memoized_jinja_compile_renders_what_jinja_does(
    generate: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, answers: dict[str, Any]
) -> None:
    """The tests' compile cache (tests/jinja_cache.py) changes no byte of a project, and the
    second render of the same template compiles nothing new."""
    answers = {**answers, "copyright_year": "2026"}
    generate(answers)
    compiled = len(jinja_cache._compiled)
    cached = tree(generate(answers))
    assert len(jinja_cache._compiled) == compiled
    monkeypatch.setattr(jinja2.Environment, "compile", jinja_cache._COMPILE)
    assert cached == tree(generate(answers))


def test_memoized_renders_write_what_copier_does(
    generate: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tests' other memos (tests/copier_memo.py) change no byte of a project either; the
    template's copier.yml is parsed once, then served from the memo."""
    assert copier_template.load_template_config is copier_memo.load_template_config
    answers = {**CUSTOM_ANSWERS, "copyright_year": "2026"}
    generate(answers)
    assert ((REPO / "copier.yml").read_bytes(), False) in copier_memo._configs
    memoized = tree(generate(answers))
    monkeypatch.setattr(copier_template, "load_template_config", copier_memo._LOAD)
    if copier_memo._SYNC is not None:
        monkeypatch.setattr(copier_main.Worker, "run_copy", copier_memo._RUN_COPY)
        monkeypatch.setattr(copier_main.Worker, "_sync_git_index_executable_bit", copier_memo._SYNC)
    assert memoized == tree(generate(answers))


def test_memoized_copier_yml_is_keyed_by_content_and_copied_per_call(tmp_path: Path) -> None:
    """A changed file is parsed again, each caller may change its copy freely, and a file
    that includes others is never served from the memo."""
    load = copier_memo.load_template_config
    config = tmp_path / "copier.yml"
    config.write_text("kinds: [a]\n")
    load(config)["kinds"].append("b")
    assert load(config) == {"kinds": ["a"]}
    config.write_text("kinds: [c]\n")
    assert load(config) == {"kinds": ["c"]}

    (tmp_path / "included.yml").write_text("kinds: [a]\n")
    config.write_text("!include included.yml\n")
    assert load(config) == {"kinds": ["a"]}
    (tmp_path / "included.yml").write_text("kinds: [d]\n")
    assert load(config) == {"kinds": ["d"]}


@pytest.mark.skipif(copier_memo._SYNC is None, reason="Copier before 9.15 never asks git")
def test_memoized_git_probe_still_syncs_the_executable_bit_where_copier_would(
    tmp_path: Path,
) -> None:
    """Where the destination's git ignores file modes (core.fileMode false), Copier records
    a template file's executable bit in the index itself. The memo asks once per render:
    a render into a plain directory first must not stand for the next one."""
    template = tmp_path / "template"
    template.mkdir()
    (template / "copier.yml").write_text("")
    (template / "run.sh").write_text("#!/bin/sh\n")
    (template / "run.sh").chmod(0o755)
    copier.run_copy(str(template), tmp_path / "plain", defaults=True, quiet=True)
    project = tmp_path / "project"
    project.mkdir()
    (project / "run.sh").write_text("#!/bin/sh\n")
    for args in (
        ["init", "-q"],
        ["config", "core.fileMode", "false"],
        ["add", "run.sh"],
        ["commit", "-qm", "init"],
    ):
        git(project, *args)
    assert copier_main.Worker.run_copy is copier_memo._run_copy
    copier.run_copy(str(template), project, defaults=True, overwrite=True, quiet=True)
    assert git(project, "ls-files", "--stage", "run.sh").startswith("100755 ")
    # The answer does not outlive its render, even one that fails.
    assert copier_memo._file_mode_off.get() is None
    (template / "copier.yml").write_text("[not: a mapping\n")
    with pytest.raises(InvalidConfigFileError):
        copier.run_copy(str(template), tmp_path / "failed", defaults=True, quiet=True)
    assert copier_memo._file_mode_off.get() is None


def test_a_cached_compile_resets_copiers_yield_state_as_a_compile_does() -> None:
    """Copier's yield extension clears its state in ``preprocess``, which a cache hit must
    still run: else the next path rendered would inherit the last one's ``{% yield %}``."""
    assert jinja2.Environment.compile is jinja_cache._compile
    env = jinja2.Environment(extensions=[YieldExtension])
    for _ in range(2):  # the second time round, both compiles are cache hits
        env.from_string("{% yield name from names %}{{ name }}{% endyield %}").render(names=[1])
        assert get_yield_context(env).yield_name == "name"
        env.from_string("no yield here")
        assert get_yield_context(env).yield_name is None


def test_plain_files_are_copied_verbatim(generate: Callable[..., Path]) -> None:
    """Files without .jinja (SQL with {{tables.x}}, Jinja-free modules) arrive unchanged."""
    project = generate(CUSTOM_ANSWERS)
    source = REPO / "template" / "src" / "{{ package_name }}"
    for name in ("models.py", "sql.py", "migrations/001_initial.sql"):
        assert (project / "src/acme_ledger" / name).read_bytes() == (source / name).read_bytes()
    for owned in TEMPLATE_OWNED:
        rendered = owned.replace("{{ package_name }}", "acme_ledger")
        assert (project / rendered).read_bytes() == (REPO / "template" / owned).read_bytes()
    sql = (project / "src/acme_ledger/migrations/001_initial.sql").read_text()
    assert "CREATE TABLE {{tables.records}}" in sql


def test_template_owned_modules_say_so() -> None:
    """Each machinery module opens by saying the template owns it and updates replace it."""
    for owned in TEMPLATE_OWNED:
        first_line = (REPO / "template" / owned).read_text().splitlines()[0]
        assert first_line.startswith("# Owned by the copier-pgdbm template: `copier update`"), owned


def test_author_class_holds_only_the_domain(generate: Callable[..., Path]) -> None:
    """core.py is the author's room: the example methods, no lifecycle machinery."""
    core = (generate() / "src/my_library/core.py").read_text()
    assert "class MyLibrary(DualModeLibrary):" in core
    for machinery in ("def initialize", "def close", "advisory", "create_shared_pool", "._pool"):
        assert machinery not in core
    assert len(core.splitlines()) < 60


def test_author_conftest_only_loads_the_template_fixtures(generate: Callable[..., Path]) -> None:
    """conftest.py is the author's room too: the fixtures' machinery is a template-owned
    plugin, so a fix to it never has to merge into the author's fixtures."""
    conftest = (generate() / "tests/conftest.py").read_text()
    assert 'pytest_plugins = ["tests.pg_server", "tests.fixtures"]' in conftest
    for machinery in ("@pytest.fixture", "def ", "import ", "DELETE"):
        assert machinery not in conftest


def test_no_template_syntax_is_left_in_python(generate: Callable[..., Path]) -> None:
    """Only pgdbm's own placeholders may remain in generated Python files."""
    project = generate(CUSTOM_ANSWERS)
    for path in project.rglob("*.py"):
        text = path.read_text()
        assert "{%" not in text, path
        leftovers = re.findall(r"\{\{(?!tables\.|schema\}\}|tables\.name\}\})[^}]*\}\}", text)
        assert leftovers == [], path


# Where tests/test_generated_projects.py installs a floor or the custom answers and lints
# the project with its own ruff and mypy --strict (against the dependencies it installs),
# a run that selects both drops the lint here (tests/conftest.py: five mypy runs, about
# 25 s of a worker's time); `pytest -m "not generated_suite"` keeps it.
LINT_VARIANTS: dict[str, dict[str, Any]] = {
    **{
        f"python{version}": {"python_min": version, "package_name": f"lib_{version[2:]}"}
        for version in PYTHON_FLOORS
    },
    "custom": CUSTOM_ANSWERS,
    "proprietary": {"license": "Proprietary", "class_name": "ZzzStore", "package_name": "aaa"},
    # The longest names the validators allow: generated lines must still fit.
    "longest_names": {
        "package_name": "p" * 30,
        "class_name": "L" + "o" * 29,
        "schema_name": "s" * 63,
        "distribution_name": "d" * 60,
    },
    "shortest_names": {"package_name": "q", "class_name": "Qq", "schema_name": "q"},
}


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A mypy cache per minimum Python, shared by the variants of this worker.

    mypy keeps a module's cache entry while its file and the options are unchanged, so the
    dependencies (pgdbm, asyncpg, pydantic, pytest, ...) are analysed once per target Python
    instead of once per variant: 0.5 s instead of 2.9 s for each later variant. The
    generated package has another name in each variant, so it is always checked afresh.
    """
    root = tmp_path_factory.mktemp("mypy-cache")
    return lambda python_version: root / python_version


@pytest.mark.parametrize("variant", LINT_VARIANTS)
def test_rendered_project_is_ruff_and_mypy_strict_clean(
    generate: Callable[..., Path], variant: str, mypy_cache: Callable[[str], Path]
) -> None:
    """Every variant (each minimum Python included) passes ruff and mypy --strict as configured."""
    project = generate(LINT_VARIANTS[variant], name=variant)
    meta = tomllib.loads((project / "pyproject.toml").read_text())
    env = subprocess_env()
    for command in (
        ["ruff", "check", "--no-cache", "."],
        ["ruff", "format", "--check", "--no-cache", "."],
        ["mypy", "--cache-dir", str(mypy_cache(meta["tool"]["mypy"]["python_version"]))],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", *command], cwd=project, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, f"{command}:\n{proc.stdout}\n{proc.stderr}"
    assert meta["tool"]["mypy"]["strict"] is True


def test_rendered_project_type_checks_against_the_newest_python(
    generate: Callable[..., Path], mypy_cache: Callable[[str], Path]
) -> None:
    """The CI matrix ends at python_newest, which this machine may not have: mypy --strict
    against that release's stdlib stubs shows first what it removed or changed. Removals
    stay removed, so this also covers the releases between the newest floor and it (the
    FastAPI variant: tests/test_fastapi_variant.py)."""
    project = generate({}, name="newest")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--python-version", PYTHON_NEWEST, "--cache-dir",
         str(mypy_cache(PYTHON_NEWEST))],
        cwd=project, env=subprocess_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert "no issues found" in proc.stdout


def _code_shapes(project: Path) -> dict[str, str]:
    """Each Python file of the package and its tests as a syntax tree, the project's class
    and package names put back to the defaults' and every string emptied: the statements
    and branches coverage measures, without names and prose."""
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    package = answers["package_name"]
    shapes = {}
    for path in sorted(
        [*(project / "src" / package).rglob("*.py"), *(project / "tests").rglob("*.py")]
    ):
        text = path.read_text()
        for name, default in ((answers["class_name"], "MyLibrary"), (package, "my_library")):
            text = re.sub(rf"\b{name}\b", default, text)
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                node.value = ""
        shapes[str(path.relative_to(project)).replace(package, "my_library")] = ast.dump(tree)
    return shapes


@pytest.fixture(scope="module")
def default_shapes(generate: Callable[..., Path]) -> dict[str, str]:
    return _code_shapes(generate({}, name="shapes-defaults"))


@pytest.mark.parametrize("variant", sorted(set(INSTALL_VARIANTS) - {"defaults"}))
def test_installed_variants_have_the_defaults_code_but_for_names(
    generate: Callable[..., Path], default_shapes: dict[str, str], variant: str
) -> None:
    """tests/test_generated_projects.py measures coverage on the default variant's suite
    only: the other installed variants' code must be the same, names and strings apart.
    A template change that makes it differ (an ``{% if %}`` on the Python floor, say) fails
    here: measure that variant's coverage too."""
    shapes = _code_shapes(generate(INSTALL_VARIANTS[variant], name=f"shapes-{variant}"))
    assert "src/my_library/_dualmode.py" in default_shapes
    assert shapes.keys() == default_shapes.keys()
    differ = [path for path in default_shapes if shapes[path] != default_shapes[path]]
    assert differ == []


def test_ci_workflow_tests_each_python_and_checks_for_template_updates(
    generate: Callable[..., Path],
) -> None:
    """The generated CI tests every supported Python, the ones the classifiers name, and
    runs `copier check-update`."""
    project = generate({"python_min": "3.12"})
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    test_job = workflow["jobs"]["test"]
    assert test_job["strategy"]["matrix"]["python-version"] == ["3.12", "3.13", "3.14", "3.15"]
    classifiers = tomllib.loads((project / "pyproject.toml").read_text())["project"]["classifiers"]
    prefix = "Programming Language :: Python :: 3."
    assert [
        c.removeprefix("Programming Language :: Python :: ")
        for c in classifiers
        if c.startswith(prefix)
    ] == test_job["strategy"]["matrix"]["python-version"]
    assert test_job["env"]["UV_PYTHON"] == "${{ matrix.python-version }}"
    update_steps = " ".join(str(step) for step in workflow["jobs"]["template-update"]["steps"])
    assert "copier check-update --quiet" in update_steps
    assert "fetch-depth" in update_steps


def test_pre_commit_refuses_conflict_markers_outside_a_merge(
    generate: Callable[..., Path],
) -> None:
    """Copier's inline conflicts are no git merge: the hook must assume one."""
    config = yaml.safe_load((generate() / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert hooks["check-merge-conflict"]["entry"] == "check-merge-conflict --assume-in-merge"


def test_readme_covers_the_production_shape(generate: Callable[..., Path]) -> None:
    """The generated README has the PgBouncer, deploy, health and error sections."""
    readme = (generate(CUSTOM_ANSWERS) / "README.md").read_text()
    for heading in ("## Behind PgBouncer", "## Deploying", "## Health checks", "## Errors"):
        assert f"\n{heading}\n" in readme, heading
    assert "ignore_startup_parameters = extra_float_digits, jit, search_path" in readme
    assert "ALTER ROLE app SET statement_timeout" in readme
    assert "python -m acme_ledger migrate --dry-run" in readme
    assert "$ACME_LEDGER_DATABASE_URL" in readme
    assert "apply_migrations=False" in readme
