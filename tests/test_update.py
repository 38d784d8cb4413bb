"""`copier update` brings template releases to generated projects without losing authors' work.

The tests build their own release history of the template in a throwaway git repository:

- v1.0.0, the first release's layout: the test-server plugin was ``tests/postgres.py``, and
  there was no pre-commit configuration, CI workflow or ``_migrations``;
- v1.1.0, the real v1.1.0 release, taken from this repository's history (renames the plugin
  to ``tests/pg_server.py`` via ``_migrations``, adds pre-commit and the CI workflow);
- CURRENT (CHANGELOG.md's newest entry, v1.2.0 as of writing), the working tree (the
  machinery moves out of the author's class into template-owned modules);
- NEWEST (the next minor release), the working tree plus a pattern fix in the
  template-owned machinery (a smaller default pool), the kind of release that must reach
  every project without a conflict.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

from tests.support import (
    DEFAULT_PYTHON_MIN,
    REPO,
    TEMPLATE_FILES,
    Installed,
    git,
    make_venv,
    pip_install,
    run,
    snapshot_template,
    subprocess_env,
    tree,
)

pytestmark = pytest.mark.generated_suite

COPIER = str(Path(sys.executable).parent / "copier")
# The release this tree is (CHANGELOG.md's newest entry) and a next one, as tags of the
# temporary template repositories these tests make.
_NEWEST_ENTRY = Version(re.findall(r"^## v(\S+)$", (REPO / "CHANGELOG.md").read_text(), re.M)[0])
OLDEST, CURRENT = "v1.0.0", f"v{_NEWEST_ENTRY}"
NEWEST = f"v{_NEWEST_ENTRY.major}.{_NEWEST_ENTRY.minor + 1}.0"
# The v1.1.0 release as it landed (before the machinery moved out of core.py).
V1_1_0_COMMIT = "6cc41fe11c95de6891c007ddb39cc91054f94c68"
CORE = "src/my_library/core.py"
MACHINERY = "src/my_library/_dualmode.py"
FIX_BEFORE = '_POOL_DEFAULTS: PoolOptions = {"min_connections": 1, "max_connections": 10}'
FIX_AFTER = '_POOL_DEFAULTS: PoolOptions = {"min_connections": 1, "max_connections": 5}'
OLD_PLUGIN_WORDING = (
    '"""The test session\'s PostgreSQL server (v1.0.0), loaded by conftest.py.',
    '"""A PostgreSQL server for the test session, loaded as a pytest plugin by conftest.py.',
)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def as_first_release(root: Path) -> None:
    """Turn a snapshot of the working tree into the v1.0.0 layout."""
    template = root / "template"
    (template / "tests/pg_server.py").rename(template / "tests/postgres.py")
    # The rename release also reworded the file, so carrying edits over is a real merge.
    _edit(template / "tests/postgres.py", OLD_PLUGIN_WORDING[1], OLD_PLUGIN_WORDING[0])
    _edit(template / "tests/conftest.py.jinja", '"tests.pg_server"', '"tests.postgres"')
    (template / ".pre-commit-config.yaml").unlink()
    shutil.rmtree(template / ".github")
    config = yaml.safe_load((root / "copier.yml").read_text())
    assert "_migrations" in config
    text = (root / "copier.yml").read_text()
    start = text.index("_migrations:")
    end = text.index("\n\n", start)
    (root / "copier.yml").write_text(text[:start] + text[end + 2 :])


def with_pattern_fix(root: Path) -> None:
    """NEWEST's change: a fix in the template-owned machinery."""
    _edit(root / "template/src/{{ package_name }}/_dualmode.py", FIX_BEFORE, FIX_AFTER)


def released_v1_1_0(dst: Path) -> None:
    """The template files of the real v1.1.0 release, from this repository's history."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", V1_1_0_COMMIT, *TEMPLATE_FILES],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dst)], input=archive, check=True)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template's release history: v1.0.0, v1.1.0, then this tree as CURRENT and with a
    pattern fix as NEWEST."""
    found = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", V1_1_0_COMMIT], check=False)
    if found.returncode:
        pytest.fail(f"the v1.1.0 release commit {V1_1_0_COMMIT} is not in this clone's history")
    repo = tmp_path_factory.mktemp("history") / "copier-pgdbm"
    stages: list[tuple[str, Callable[[Path], object], Callable[[Path], None] | None]] = [
        ("v1.0.0", released_v1_1_0, as_first_release),
        ("v1.1.0", released_v1_1_0, None),
        (CURRENT, snapshot_template, None),
        (NEWEST, snapshot_template, with_pattern_fix),
    ]
    git(tmp_path_factory.getbasetemp(), "init", "-q", "-b", "main", str(repo))
    for tag, base, change in stages:
        for child in repo.iterdir():
            if child.name != ".git":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        base(repo)
        if change is not None:
            change(repo)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"release {tag}")
        git(repo, "tag", tag)
    return repo


def copier_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([COPIER, *args], cwd=cwd, env=subprocess_env())


def generate_at(history: Path, dst: Path, ref: str) -> Path:
    """A project generated at ``ref`` and committed, as its author would."""
    copier_cli(
        dst.parent, "copy", "--defaults", "--trust", "--vcs-ref", ref, str(history), str(dst)
    )
    git(dst, "init", "-q", "-b", "main")
    git(dst, "add", "-A")
    git(dst, "commit", "-q", "-m", f"generated from copier-pgdbm {ref}")
    return dst


def check_update(project: Path) -> dict[str, object]:
    out = copier_cli(project, "check-update", "--output-format", "json")
    result: dict[str, object] = json.loads(out.stdout)
    return result


AUTHOR_MIGRATION = """\
-- The author's own migration, added after generation.
ALTER TABLE {{tables.records}} ADD COLUMN tags TEXT[] NOT NULL DEFAULT '{}';
CREATE TABLE {{tables.record_kinds}} (name TEXT PRIMARY KEY);
INSERT INTO {{tables.record_kinds}} (name) VALUES ('invoice'), ('refund');
"""

AUTHOR_METHOD = '''
    async def count_records(self) -> int:
        """How many records there are (added by the library's author)."""
        count = await self._ready_db().fetch_value("SELECT count(*) FROM {{tables.records}}")
        return int(count)
'''

AUTHOR_TEST = '''
"""The author's own tests, written before the update."""

import asyncpg

from my_library import MyLibrary


async def test_count_records(lib: MyLibrary) -> None:
    await lib.create_record("a")
    await lib.create_record("b")
    assert await lib.count_records() == 2


async def test_author_migration_applied(lib: MyLibrary, admin_pool: asyncpg.Pool) -> None:
    column = await admin_pool.fetchval(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = 'records' AND column_name = 'tags'",
        lib.schema,
    )
    assert column == "ARRAY"


async def _reference_rows(lib: MyLibrary, admin_pool: asyncpg.Pool) -> int:
    await lib.create_record("x")
    return int(await admin_pool.fetchval(f'SELECT count(*) FROM "{lib.schema}".record_kinds'))


async def test_reference_rows_are_kept_between_tests_1(
    lib: MyLibrary, admin_pool: asyncpg.Pool
) -> None:
    assert await _reference_rows(lib, admin_pool) == 2


async def test_reference_rows_are_kept_between_tests_2(
    lib: MyLibrary, admin_pool: asyncpg.Pool
) -> None:
    assert await _reference_rows(lib, admin_pool) == 2
'''

AUTHOR_PLUGIN_EDIT = (
    '\n\n# Added by the author: kept when the template renames this file.\nTEAM = "ledger"\n'
)


@pytest.fixture(scope="module")
def updated(history: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A v1.0.0 project, edited by its author, then updated to the newest release."""
    project = generate_at(history, tmp_path_factory.mktemp("edited") / "project", OLDEST)
    (project / "src/my_library/migrations/002_record_tags.sql").write_text(AUTHOR_MIGRATION)
    core = (project / CORE).read_text()
    (project / CORE).write_text(core.rstrip("\n") + "\n" + AUTHOR_METHOD)
    (project / "tests/test_author.py").write_text(AUTHOR_TEST)
    with (project / "README.md").open("a") as readme:
        readme.write("\n## Team notes\n\nOwned by the ledger team; ask in #ledger.\n")
    _edit(
        project / "pyproject.toml",
        '    "asyncpg>=0.29",\n',
        '    "asyncpg>=0.29",\n    "typing-extensions>=4.7",\n',
    )
    with (project / "tests/postgres.py").open("a") as plugin:
        plugin.write(AUTHOR_PLUGIN_EDIT)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "author's work")

    before = check_update(project)
    output = copier_cli(project, "update", "--defaults", "--trust")
    status = git(project, "status", "--porcelain")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "copier update")
    return {
        "project": project,
        "before": before,
        "after": check_update(project),
        "output": output.stdout + output.stderr,
        "status": status,
    }


def test_update_delivers_the_fix_and_new_files(updated: dict[str, object]) -> None:
    """The machinery fix and the files added by later releases arrive, with no conflict."""
    project = updated["project"]
    assert isinstance(project, Path)
    machinery = (project / MACHINERY).read_text()
    assert FIX_AFTER in machinery
    assert FIX_BEFORE not in machinery
    for added in (
        ".pre-commit-config.yaml",
        ".github/workflows/ci.yml",
        "src/my_library/errors.py",
    ):
        assert (project / added).is_file(), added
    assert "<<<<<<<" not in "".join(p.read_text() for p in project.rglob("*.py"))
    assert "UU " not in str(updated["status"])
    # The machinery left the author's class: what remains there is the example domain.
    assert "async def initialize" not in (project / CORE).read_text()


def test_update_keeps_every_author_edit(updated: dict[str, object]) -> None:
    """Migration, method, test, README text and dependency all survive the update."""
    project = updated["project"]
    assert isinstance(project, Path)
    assert (
        project / "src/my_library/migrations/002_record_tags.sql"
    ).read_text() == AUTHOR_MIGRATION
    assert AUTHOR_METHOD.strip() in (project / CORE).read_text()
    assert (project / "tests/test_author.py").read_text() == AUTHOR_TEST
    assert "Owned by the ledger team" in (project / "README.md").read_text()
    assert '"typing-extensions>=4.7"' in (project / "pyproject.toml").read_text()


def test_renamed_file_is_moved_with_the_author_edits(updated: dict[str, object]) -> None:
    """The v1.1.0 migration moves tests/postgres.py to tests/pg_server.py, edits included."""
    project = updated["project"]
    assert isinstance(project, Path)
    assert not (project / "tests/postgres.py").exists()
    plugin = (project / "tests/pg_server.py").read_text()
    assert 'TEAM = "ledger"' in plugin
    # Below the line that says the template owns the file, the template's rewording.
    assert plugin.split("\n", 1)[1].startswith(OLD_PLUGIN_WORDING[1])
    assert "def postgres_server_url" in plugin
    assert '"tests.pg_server"' in (project / "tests/conftest.py").read_text()
    assert "moved tests/postgres.py -> tests/pg_server.py" in str(updated["output"])


def test_answers_file_records_the_new_version(updated: dict[str, object]) -> None:
    project = updated["project"]
    assert isinstance(project, Path)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == NEWEST
    assert answers["package_name"] == "my_library"


def test_check_update_reports_behind_then_current(updated: dict[str, object]) -> None:
    """`copier check-update` says 1.0.0 < NEWEST before, and up to date after."""
    assert updated["before"] == {
        "update_available": True,
        "current_version": "1.0.0",
        "latest_version": NEWEST.removeprefix("v"),
    }
    after = updated["after"]
    assert isinstance(after, dict)
    assert after["update_available"] is False
    assert after["current_version"] == NEWEST.removeprefix("v")


def test_updated_project_passes_its_suite_in_both_modes(
    updated: dict[str, object], tmp_path: Path
) -> None:
    """After the update, the author's and the template's tests pass in both modes."""
    project = updated["project"]
    assert isinstance(project, Path)
    bin_dir = make_venv("updated", sys.executable)
    installed = Installed(project, bin_dir, sys.executable)
    pip_install(bin_dir, "-e", ".", "--group", "test", cwd=project)
    report = installed.run_suite(tmp_path / "junit.xml")
    assert report.failed == []
    assert report.skipped == []
    for mode in ("standalone", "shared"):
        names = report.passed_in_mode(mode)
        assert any("test_count_records" in n for n in names), names
        assert any("test_author_migration_applied" in n for n in names), names
        assert sum("test_reference_rows_are_kept" in n for n in names) == 2, names
        assert len(names) >= 15


def test_conflicting_edit_keeps_both_sides_inline(history: Path, tmp_path: Path) -> None:
    """Author and template change the same line of the machinery: inline markers hold both,
    nothing is lost, and the project's pre-commit check refuses the file until resolved."""
    project = generate_at(history, tmp_path / "project", CURRENT)
    authors_line = FIX_BEFORE.replace('"max_connections": 10', '"max_connections": 20')
    _edit(project / MACHINERY, FIX_BEFORE, authors_line)
    git(project, "commit", "-q", "-am", "author: bigger default pool")
    copier_cli(project, "update", "--defaults", "--trust", "--conflict", "inline")

    machinery = (project / MACHINERY).read_text()
    assert "<<<<<<< before updating" in machinery
    assert ">>>>>>> after updating" in machinery
    assert authors_line in machinery
    assert FIX_AFTER in machinery
    assert "UU " + MACHINERY in git(project, "status", "--porcelain")

    env = subprocess_env(PRE_COMMIT_HOME=str(tmp_path / "pre-commit-cache"))
    check = subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "check-merge-conflict", "--files", MACHINERY],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 1, check.stdout + check.stderr
    assert "Merge conflict string" in check.stdout


CURRENT_AUTHOR_METHOD = '''
    async def count_kinds(self) -> int:
        """How many kinds of record there are (added by the library's author)."""
        count = await self.db.fetch_value("SELECT count(DISTINCT kind) FROM {{tables.records}}")
        return int(count)
'''

AUTHOR_FIXTURE = """

@pytest.fixture
def ledger_kind() -> str:
    return "ledger-entry"
"""


def test_author_fixture_in_conftest_survives_the_fixtures_move(
    history: Path, tmp_path: Path
) -> None:
    """v1.2.0 moves the template's fixtures out of conftest.py into tests/fixtures.py. A
    fixture the author added to conftest.py at v1.1.0 is kept, and the update adds the
    plugin; where the template's old fixtures were, inline markers hold both sides."""
    project = generate_at(history, tmp_path / "project", "v1.1.0")
    conftest = project / "tests/conftest.py"
    conftest.write_text(conftest.read_text() + AUTHOR_FIXTURE)
    git(project, "commit", "-q", "-am", "author: a fixture of my own")

    copier_cli(project, "update", "--defaults", "--trust", "--conflict", "inline")
    text = conftest.read_text()
    before, after = text.split("<<<<<<< before updating\n", 1)[1].split("=======\n", 1)
    assert AUTHOR_FIXTURE.strip() in before  # the author's, to keep
    assert after.startswith('pytest_plugins = ["tests.pg_server", "tests.fixtures"]\n>>>>>>>')
    assert "UU tests/conftest.py" in git(project, "status", "--porcelain")
    fixtures = (project / "tests/fixtures.py").read_text()
    assert fixtures == (REPO / "template/tests/fixtures.py").read_text()


CURRENT_AUTHOR_TEST = '''
"""The author's own tests, on the current API."""

from my_library import MyLibrary


async def test_count_kinds(lib: MyLibrary) -> None:
    await lib.create_record("a")
    await lib.create_record("a")
    await lib.create_record("b")
    assert await lib.count_kinds() == 2
'''


def test_machinery_fix_reaches_an_edited_project_without_conflict(
    history: Path, tmp_path: Path
) -> None:
    """A fix in the template-owned machinery lands in a project whose author added a method,
    a migration and tests: no conflict, the author's files untouched, and the author's tests
    and the start-up tests green on the fixed machinery. (The whole suite of the newest
    release, beside an author's migration, runs in the updated project's test above.)"""
    project = generate_at(history, tmp_path / "project", CURRENT)
    core = (project / CORE).read_text().rstrip("\n") + "\n" + CURRENT_AUTHOR_METHOD
    (project / CORE).write_text(core)
    (project / "src/my_library/migrations/002_record_tags.sql").write_text(AUTHOR_MIGRATION)
    (project / "tests/test_author.py").write_text(CURRENT_AUTHOR_TEST)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "author's work")

    copier_cli(project, "update", "--defaults", "--trust")
    status = git(project, "status", "--porcelain")
    assert status.split() == ["M", ".copier-answers.yml", "M", MACHINERY], status
    assert FIX_AFTER in (project / MACHINERY).read_text()
    assert (project / CORE).read_text() == core
    git(project, "commit", "-q", "-am", "copier update")

    bin_dir = make_venv("updated", sys.executable)
    installed = Installed(project, bin_dir, sys.executable)
    pip_install(bin_dir, "-e", ".", "--group", "test", cwd=project)
    report = installed.run_suite(
        tmp_path / "junit.xml", "tests/test_author.py", "tests/test_startup.py"
    )
    assert report.failed == []
    assert report.skipped == []
    for mode in ("standalone", "shared"):
        names = report.passed_in_mode(mode)
        assert any("test_count_kinds" in n for n in names), names
        assert any("test_concurrent_cold_start" in n for n in names), names


def test_untouched_project_updates_from_oldest_to_newest_in_one_step(
    history: Path, tmp_path: Path
) -> None:
    """`copier update --defaults` from v1.0.0 gives exactly a fresh copy of NEWEST with the
    same answers: a recorded answer outlives a new default (v1.0.0's python_min 3.10)."""
    project = generate_at(history, tmp_path / "old", OLDEST)
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())["python_min"]
    assert recorded != DEFAULT_PYTHON_MIN
    copier_cli(project, "update", "--defaults", "--trust")
    fresh = tmp_path / "fresh"
    copier_cli(
        tmp_path, "copy", "--defaults", "--trust", "--vcs-ref", NEWEST,
        "--data", f"python_min={recorded}", str(history), str(fresh),
    )  # fmt: skip
    updated_tree = {k: v for k, v in tree(project).items() if not k.startswith(".git/")}
    assert updated_tree == tree(fresh)
