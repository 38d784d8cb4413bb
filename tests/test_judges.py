"""The ecosystem's judges pass on every rendered variant.

validate-pyproject, zizmor (offline), sp-repo-review (failing only the checks README.md
lists, each with its reason), codespell; and, building the sdist and the wheel:
twine check --strict, check-wheel-contents and pyroma 10/10. Also what the workflows
promise: pinned actions, least privilege, a version taken from the tag, and a
template-update job that passes, saying why, when it cannot reach the template.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml

from tests.support import CUSTOM_ANSWERS, PYTHON_FLOORS, REPO, git, run, subprocess_env

BIN = Path(sys.executable).parent
PRIVATE_INDEX = "https://pkgs.acme.example/upload/"
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "custom": {**CUSTOM_ANSWERS, "repository_url": "https://git.acme.example/platform/ledger"},
    "proprietary": {"license": "Proprietary", "publish_to": PRIVATE_INDEX},
    "fastapi": {"with_fastapi": True},
    **{
        f"python{version}": {"python_min": version, "package_name": f"lib_{version[2:]}"}
        for version in PYTHON_FLOORS
    },
}


@pytest.fixture(scope="module")
def rendered(generate: Callable[..., Path]) -> Callable[[str], Path]:
    """Each variant rendered once for the whole module."""
    cache: dict[str, Path] = {}

    def get(variant: str) -> Path:
        if variant not in cache:
            cache[variant] = generate(VARIANTS[variant], name=f"judged-{variant}")
        return cache[variant]

    return get


def tool(name: str, *args: str | Path, cwd: Path, check: bool = True) -> str:
    """Run a judge installed in the template's environment; its output."""
    proc = subprocess.run(
        [str(BIN / name), *map(str, args)],
        cwd=cwd,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check:
        assert proc.returncode == 0, f"{name} {args}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# ----------------------------------------------------------------- static judges


@pytest.mark.parametrize("variant", VARIANTS)
def test_validate_pyproject(rendered: Callable[[str], Path], variant: str) -> None:
    """pyproject.toml is valid: PEP 621, PEP 735, trove classifiers, the tool tables."""
    tool("validate-pyproject", "pyproject.toml", cwd=rendered(variant))


@pytest.mark.parametrize("variant", VARIANTS)
def test_zizmor_finds_nothing(rendered: Callable[[str], Path], variant: str) -> None:
    """zizmor (offline, default persona, as the generated CI runs it) reports no finding."""
    out = tool("zizmor", "--offline", "--format", "json", ".", cwd=rendered(variant))
    assert json.loads(out) == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_codespell_is_clean(rendered: Callable[[str], Path], variant: str) -> None:
    """The spell-check hook's tool, with the project's [tool.codespell], finds nothing."""
    tool("codespell", ".", cwd=rendered(variant))


def _sp_repo_review_section() -> str:
    readme = (REPO / "README.md").read_text()
    return readme.split("### What sp-repo-review reports", 1)[1].split("\n#", 1)[0]


def deliberate_failures() -> dict[str, str]:
    """README.md's table of the sp-repo-review checks generated projects fail on purpose:
    check code -> its condition ("" for always, else the words in parentheses)."""
    section = _sp_repo_review_section()
    listed: dict[str, str] = {}
    for row in re.findall(r"^\| (.+?) \| (.+?) \|$", section, re.MULTILINE):
        condition = re.search(r"\(([\w-]+ only)\)", row[0])
        for code in re.findall(r"`([A-Z]+[0-9]+)`", row[0]):
            listed[code] = condition.group(1) if condition else ""
        assert row[1].strip(), f"no reason given for {row[0]}"
    return listed


def expected_failures(variant: str) -> set[str]:
    answers = VARIANTS[variant]
    applies = {
        "": True,
        "Proprietary only": answers.get("license") == "Proprietary",
        "private-index only": answers.get("publish_to", "pypi") != "pypi",
    }
    return {code for code, condition in deliberate_failures().items() if applies[condition]}


def test_readme_lists_each_deliberate_failure_with_a_reason() -> None:
    listed = deliberate_failures()
    assert {"PY004", "PY007", "PC140", "PC160"} <= set(listed)
    assert set(listed.values()) <= {"", "Proprietary only", "private-index only"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_sp_repo_review_fails_only_what_readme_lists(
    rendered: Callable[[str], Path], variant: str
) -> None:
    """Every sp-repo-review check passes but those README.md names, each with its reason."""
    project = rendered(variant)
    report = json.loads(tool("repo-review", "--format", "json", ".", cwd=project, check=False))
    failed = {code for code, check in report["checks"].items() if check["result"] is False}
    assert failed == expected_failures(variant)
    skipped = {code for code, check in report["checks"].items() if check["result"] is None}
    assert skipped == skipped_as_not_applying()


def skipped_as_not_applying() -> set[str]:
    """The checks README.md says sp-repo-review skips on generated projects: those that
    need a check failed on purpose ("`PC111` needs `PC110`")."""
    section = _sp_repo_review_section()
    said = re.search(r"skips\s+the checks that build on them \((.+?)\)", section, re.S)
    assert said is not None, section
    needs = re.findall(r"((?:`[A-Z]+[0-9]+`(?:,? and |, )?)+) needs? `([A-Z]+[0-9]+)`", said[1])
    assert needs, said[1]
    assert {failed for _, failed in needs} <= set(deliberate_failures())
    return {code for codes, _ in needs for code in re.findall(r"`([A-Z]+[0-9]+)`", codes)}


# ----------------------------------------------------------------- workflows


def workflow(project: Path, name: str) -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((project / ".github/workflows" / name).read_text())
    return loaded


@pytest.mark.parametrize("variant", ["defaults", "proprietary"])
def test_workflows_pin_actions_and_keep_privileges_least(
    rendered: Callable[[str], Path], variant: str
) -> None:
    """Actions pinned to a commit with the version as a comment; no credentials left in the
    checkout; nothing granted at the top; only the publish job gets an OIDC token."""
    project = rendered(variant)
    for path in sorted((project / ".github/workflows").glob("*.yml")):
        text = path.read_text()
        for line in re.findall(r"uses: (\S+.*)", text):
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", line), line
        flow = yaml.safe_load(text)
        assert flow["permissions"] == {}, path.name
        assert "concurrency" in flow, path.name
        assert "workflow_dispatch" in flow[True], path.name  # YAML 1.1 reads `on:` as True
        for name, job in flow["jobs"].items():
            assert "permissions" in job, f"{path.name}: {name}"
            grants = job["permissions"]
            if grants.get("id-token") == "write":
                assert (path.name, name) == ("release.yml", "publish")
            for step in job["steps"]:
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, f"{path.name}: {name}"


def test_release_publishes_to_pypi_with_trusted_publishing(
    rendered: Callable[[str], Path],
) -> None:
    flow = workflow(rendered("defaults"), "release.yml")
    assert flow[True]["push"]["tags"] == ["v*"]
    publish = flow["jobs"]["publish"]
    assert publish["environment"]["name"] == "pypi"
    assert publish["permissions"] == {"id-token": "write", "attestations": "write"}
    uses = [step.get("uses", "").split("@")[0] for step in publish["steps"]]
    assert uses == [
        "actions/download-artifact",
        "actions/attest-build-provenance",
        "pypa/gh-action-pypi-publish",
    ]
    assert "with" not in publish["steps"][-1]  # no token, PyPI, PEP 740 attestations
    # Only a pushed tag publishes: workflow_dispatch on a tag also has ref_type 'tag'.
    assert publish["if"] == "github.event_name == 'push' && github.ref_type == 'tag'"
    # Attestations of a private repository need GitHub Enterprise Cloud: opted into there.
    assert publish["steps"][1]["if"] == (
        "github.event.repository.private == false || vars.ATTEST_BUILD_PROVENANCE == 'true'"
    )
    build = " ".join(str(step) for step in flow["jobs"]["build"]["steps"])
    assert "twine check --strict dist/*" in build
    assert "check-wheel-contents dist/*.whl" in build
    assert "fetch-depth" in build


def test_proprietary_release_never_goes_to_pypi(rendered: Callable[[str], Path]) -> None:
    project = rendered("proprietary")
    release = (project / ".github/workflows/release.yml").read_text()
    assert "pypi.org" not in release
    publish = yaml.safe_load(release)["jobs"]["publish"]
    assert publish["environment"]["name"] == "package-index"
    assert publish["steps"][-1]["with"]["repository-url"] == PRIVATE_INDEX
    assert "pypi" not in (project / ".copier-answers.yml").read_text().split("publish_to:")[1]


def test_release_with_an_example_index_stops_before_publishing(
    rendered: Callable[[str], Path],
) -> None:
    """publish_to on a reserved example domain (the Proprietary default is one) stops a
    pushed tag's build first, before the publish job asks for approval, saying what to set."""
    build = workflow(rendered("proprietary"), "release.yml")["jobs"]["build"]
    first = build["steps"][0]
    assert first["name"] == "Stop, no package index set"
    assert first["if"] == "github.event_name == 'push' && github.ref_type == 'tag'"
    stopped = subprocess.run(
        ["bash", "-e", "-c", first["run"]], capture_output=True, text=True, check=False
    )
    assert stopped.returncode == 1
    assert f"::error title=No package index set::publish_to is {PRIVATE_INDEX}" in stopped.stdout
    assert "copier update --trust --defaults --data publish_to=" in stopped.stdout


@pytest.mark.parametrize(
    ("publish_to", "example"),
    [
        ("https://packages.example.com/upload/", True),  # the Proprietary default
        ("https://example.com:8443/upload", True),
        ("https://pkgs.example.net/", True),
        ("https://example.org", True),
        ("https://pkgs.acme.io/upload/", False),
        ("https://myexample.com/upload/", False),
        ("https://example.org.acme.io/upload/", False),
        ("https://example.community/upload/", False),
    ],
)
def test_only_reserved_example_domains_stop_the_release(
    publish_to: str, example: bool, tmp_path: Path, template: Path
) -> None:
    project = tmp_path / "project"
    answers = {"license": "Proprietary", "publish_to": publish_to}
    copier.run_copy(str(template), project, data=answers, defaults=True, quiet=True, unsafe=True)
    flow = workflow(project, "release.yml")
    stops = [s for s in flow["jobs"]["build"]["steps"] if s.get("name", "").startswith("Stop")]
    assert len(stops) == example
    assert flow["jobs"]["publish"]["steps"][-1]["with"]["repository-url"] == publish_to
    readme = (project / "README.md").read_text()
    assert ("an example address" in readme) == example


def test_pypi_is_refused_for_a_proprietary_library(tmp_path: Path, template: Path) -> None:
    with pytest.raises(ValueError, match="publish_to must not be pypi for a Proprietary"):
        copier.run_copy(
            str(template),
            tmp_path / "project",
            data={"license": "Proprietary", "publish_to": "pypi"},
            defaults=True,
            quiet=True,
            unsafe=True,
        )


def test_dependabot_updates_actions_and_python_dependencies(
    rendered: Callable[[str], Path],
) -> None:
    config = yaml.safe_load((rendered("defaults") / ".github/dependabot.yml").read_text())
    ecosystems = {update["package-ecosystem"]: update for update in config["updates"]}
    assert set(ecosystems) == {"github-actions", "uv"}
    assert all("groups" in update for update in ecosystems.values())


def _update_job_script(project: Path) -> str:
    steps = workflow(project, "ci.yml")["jobs"]["template-update"]["steps"]
    (step,) = [step for step in steps if step.get("name") == "copier check-update"]
    script: str = step["run"]
    return script


def run_update_job(project: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The template-update job's script, with `uv run --only-group template X` running X
    from this environment (which has copier)."""
    fake = tmp_path / "fake-bin"
    fake.mkdir(exist_ok=True)
    uv = fake / "uv"
    uv.write_text(
        '#!/bin/sh\n[ "$1 $2 $3" = "run --only-group template" ] || exit 99\nshift 3\nexec "$@"\n'
    )
    uv.chmod(0o755)
    env = subprocess_env(PATH=f"{fake}:{BIN}:{os.environ['PATH']}", GIT_TERMINAL_PROMPT="0")
    return subprocess.run(
        ["bash", "-e", "-c", _update_job_script(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _set_src_path(project: Path, src: str) -> None:
    answers = project / ".copier-answers.yml"
    text = re.sub(r"(?m)^_src_path: .*$", f"_src_path: {src}", answers.read_text())
    answers.write_text(text)


def test_update_job_passes_and_says_why_without_a_reachable_git_url(
    rendered: Callable[[str], Path], tmp_path: Path
) -> None:
    """A local _src_path (what rendering from a path records) and an unreachable URL are
    reported with a notice, and the job passes instead of failing on copier's error."""
    project = tmp_path / "project"
    shutil.copytree(rendered("defaults"), project)
    local = run_update_job(project, tmp_path)
    assert local.returncode == 0, local.stdout + local.stderr
    assert "::notice title=Template updates not checked::_src_path" in local.stdout
    assert "a path on the machine that generated this project" in local.stdout

    _set_src_path(project, "https://127.0.0.1:9/copier-pgdbm.git")
    unreachable = run_update_job(project, tmp_path)
    assert unreachable.returncode == 0, unreachable.stdout + unreachable.stderr
    assert "cannot be reached from this job" in unreachable.stdout

    for path in ("~/templates/copier-pgdbm", "/srv/templates/copier-pgdbm.git", "../tpl"):
        _set_src_path(project, path)
        local = run_update_job(project, tmp_path)
        assert local.returncode == 0, local.stdout + local.stderr
        assert f"is '{path}', a path on the machine that generated this" in local.stdout

    # copier's gh:/org/repo (an optional slash) is the same repository as gh:org/repo.
    _set_src_path(project, "gh:/acme/copier-pgdbm")
    shortcut = run_update_job(project, tmp_path)
    assert "repository https://github.com/acme/copier-pgdbm cannot be reached" in shortcut.stdout

    # A git repository that git reaches, at a URL that copier reads as a directory: copier
    # check-update would fail ("only supported in git-tracked templates").
    repo = tmp_path / "template-repo"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    for src in (f"file://{repo}", "https://git.example.com/platform/copier-pgdbm"):
        _set_src_path(project, src)
        not_git = run_update_job(project, tmp_path)
        assert not_git.returncode == 0, not_git.stdout + not_git.stderr
        assert f"is '{src}', a URL that copier does not read as a git repository" in not_git.stdout
        assert f"Write it as 'git+{src}'" in not_git.stdout


def test_update_job_checks_a_git_url(template: Path, tmp_path: Path) -> None:
    """Generated from a git URL, the job runs copier check-update: passes while up to date,
    fails with a warning once the template has a newer release."""
    repo = tmp_path / "copier-pgdbm"
    shutil.copytree(template, repo)
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "release")
    git(repo, "tag", "v1.2.0")
    project = tmp_path / "project"
    copier.run_copy(f"git+file://{repo}", project, defaults=True, quiet=True, unsafe=True)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "generated")

    current = run_update_job(project, tmp_path)
    assert current.returncode == 0, current.stdout + current.stderr
    assert "not checked" not in current.stdout

    git(repo, "commit", "-q", "--allow-empty", "-m", "next release")
    git(repo, "tag", "v1.3.0")
    behind = run_update_job(project, tmp_path)
    assert behind.returncode == 1, behind.stdout + behind.stderr
    assert "::warning::A newer copier-pgdbm template release exists" in behind.stdout
    assert "latest version is 1.3.0" in behind.stdout

    # A reachable repository without the project's commit (history rewritten, or another
    # repository): copier's error fails the job, and is not taken for a newer release.
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "-b", "main", str(other))
    git(other, "commit", "-q", "--allow-empty", "-m", "unrelated")
    git(other, "tag", "v9.0.0")
    _set_src_path(project, f"git+file://{other}")
    broken = run_update_job(project, tmp_path)
    assert broken.returncode not in (0, 2), broken.stdout + broken.stderr
    assert "::error title=Template updates not checked::copier check-update failed" in broken.stdout
    assert "newer copier-pgdbm template release" not in broken.stdout


def test_readme_test_command_is_one_line_for_uv_and_for_pip(
    rendered: Callable[[str], Path],
) -> None:
    """The README's Development section gives `uv run pytest -n auto` and a one-line pip route,
    which benchmarks/zero_to_green.py times."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from zero_to_green import readme_commands
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    uv_command, pip_route = readme_commands(rendered("defaults"))
    assert uv_command == "uv run pytest -n auto"
    assert pip_route.startswith("python3 -m venv .venv && ")
    assert "--group test" in pip_route
    assert pip_route.endswith("&& .venv/bin/python -m pytest -n auto")


def test_ci_measures_coverage_for_its_threshold_and_plain_runs_do_not(
    rendered: Callable[[str], Path],
) -> None:
    """CI runs the README's command with --cov, then `coverage report` on that run's data;
    the project's addopts leave coverage out of plain runs (it costs them a tenth to a fifth
    of their time) but keep the report options for --cov."""
    project = rendered("defaults")
    steps = [step.get("run", "") for step in workflow(project, "ci.yml")["jobs"]["test"]["steps"]]
    suite = steps.index("uv run pytest -n auto --cov")
    assert steps[suite + 1] == "uv run coverage report"
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    addopts = pyproject["tool"]["pytest"]["ini_options"]["addopts"]
    assert "--cov" not in addopts
    assert {"--cov-report=term-missing:skip-covered", "--cov-fail-under=0"} <= set(addopts)
    assert pyproject["tool"]["coverage"]["report"]["fail_under"] == 90


# ----------------------------------------------------------------- built distributions


def build(project: Path, out: Path) -> tuple[Path, Path]:
    """sdist and wheel, with this environment's hatchling and hatch-vcs (no download)."""
    run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", out, project],
        cwd=project,
        env=subprocess_env(),
    )
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


@pytest.mark.generated_suite
@pytest.mark.parametrize("variant", VARIANTS)
def test_distributions_pass_twine_check_wheel_contents_and_pyroma(
    rendered: Callable[[str], Path], variant: str, tmp_path: Path
) -> None:
    """twine check --strict, check-wheel-contents and pyroma 10/10 on the sdist and wheel."""
    sdist, wheel = build(rendered(variant), tmp_path / "dist")
    tool("twine", "check", "--strict", sdist, wheel, cwd=tmp_path)
    tool("check-wheel-contents", wheel, cwd=tmp_path)
    rating = tool("pyroma", "--min", "10", "--file", sdist, cwd=tmp_path, check=False)
    assert "Final rating: 10/10" in rating, rating


@pytest.mark.generated_suite
def test_version_comes_from_the_tag_and_release_checks_it(
    generate: Callable[..., Path], tmp_path: Path
) -> None:
    """A checkout at v1.2.3 builds 1.2.3 (0.0.0 without git); the release workflow's check
    accepts the build for tag v1.2.3 and refuses it for any other tag."""
    project = generate(CUSTOM_ANSWERS, name="tagged")
    sdist, wheel = build(project, tmp_path / "untagged")
    assert sdist.name == "acme_ledger_db-0.0.0.tar.gz"
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "generated")
    git(project, "tag", "v1.2.3")
    dist = project / "dist"
    sdist, wheel = build(project, dist)
    assert (sdist.name, wheel.name) == (
        "acme_ledger_db-1.2.3.tar.gz",
        "acme_ledger_db-1.2.3-py3-none-any.whl",
    )
    metadata = zipfile.ZipFile(wheel).read("acme_ledger_db-1.2.3.dist-info/METADATA").decode()
    assert "\nVersion: 1.2.3\n" in metadata

    steps = workflow(project, "release.yml")["jobs"]["build"]["steps"]
    (check,) = [step for step in steps if step.get("name") == "Check that the version is the tag's"]
    for tag, code in (("v1.2.3", 0), ("v1.2.4", 1)):
        proc = subprocess.run(
            ["bash", "-e", "-c", check["run"]],
            cwd=project,
            env=subprocess_env(TAG=tag),
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == code, proc.stdout + proc.stderr
    assert "::error::the tag v1.2.4 asks for version 1.2.4" in proc.stdout
