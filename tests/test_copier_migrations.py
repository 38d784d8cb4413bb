"""copier_migrations/rename_file.py on its own: the cases an update from any source meets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import REPO, git

SCRIPT = REPO / "copier_migrations" / "rename_file.py"


def commit(repo: Path, files: dict[str, str]) -> str:
    """A commit in ``repo`` (made if needed) holding ``files``; its hash."""
    repo.mkdir(exist_ok=True)
    git(repo, "init", "-q")
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "c")
    return git(repo, "rev-parse", "HEAD").strip()


def rename(project: Path, template: Path, ref: str) -> subprocess.CompletedProcess[str]:
    args = [str(template), ref, "template/tests/postgres.py", "tests/postgres.py"]
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args, "tests/pg_server.py"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )


def test_an_authors_own_file_under_the_old_name_is_left_alone(tmp_path: Path) -> None:
    """The project came from a template commit that never shipped the old file (generated
    from an untagged commit, then updated to a tagged release): nothing to carry over."""
    ref = commit(tmp_path / "template", {"template/tests/pg_server.py": "template's\n"})
    own = {"tests/postgres.py": "the author's own\n", "tests/pg_server.py": "template's\n"}
    project = tmp_path / "project"
    commit(project, own)
    result = rename(project, tmp_path / "template", ref)
    assert result.returncode == 0, result.stderr
    assert "tests/postgres.py is not the template's at" in result.stdout
    assert {name: (project / name).read_text() for name in own} == own


def test_the_authors_edits_move_to_the_new_name(tmp_path: Path) -> None:
    ref = commit(tmp_path / "template", {"template/tests/postgres.py": "a\nb\nc\n"})
    project = tmp_path / "project"
    commit(project, {"tests/postgres.py": "a\nB (edited)\nc\n"})
    (project / "tests/pg_server.py").write_text("a\nb\nc\nd (new)\n")  # what the update wrote
    result = rename(project, tmp_path / "template", ref)
    assert result.returncode == 0, result.stderr
    assert (project / "tests/pg_server.py").read_text() == "a\nB (edited)\nc\nd (new)\n"
    assert not (project / "tests/postgres.py").exists()


def test_a_ref_the_template_lacks_fails_and_says_so(tmp_path: Path) -> None:
    commit(tmp_path / "template", {"template/tests/postgres.py": "a\n"})
    project = tmp_path / "project"
    commit(project, {"tests/postgres.py": "a\n"})
    result = rename(project, tmp_path / "template", "v9.9.9")
    assert result.returncode == 1
    assert "v9.9.9 is not a commit of the template" in result.stderr
    assert (project / "tests/postgres.py").read_text() == "a\n"
