"""Rendering, installing and running generated projects for the template's own tests."""

from __future__ import annotations

import atexit
import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import copier
import yaml

REPO = Path(__file__).resolve().parent.parent


def load_pg_server_plugin(tree: Path = REPO / "template") -> ModuleType:
    """The generated suite's server plugin (``tests/pg_server.py`` of the template's tree or
    of a project), as a fresh module."""
    spec = importlib.util.spec_from_file_location(
        "generated_pg_server", tree / "tests/pg_server.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TEMPLATE_FILES = ("copier.yml", "template", "copier_migrations")


@cache
def template_config() -> dict[str, Any]:
    """copier.yml as loaded, parsed once per test session (read it, do not change it)."""
    loaded: dict[str, Any] = yaml.safe_load((REPO / "copier.yml").read_text())
    return loaded


def computed_value(name: str) -> Any:
    """A ``when: false`` value of copier.yml, kept there as one YAML string so that Copier
    renders it once; here, parsed."""
    return yaml.safe_load(template_config()[name]["default"])


def computed_set(name: str) -> set[str]:
    """A ``when: false`` list of copier.yml, as a set."""
    return set(computed_value(name))


def computed_names() -> list[str]:
    """The ``when: false`` values of copier.yml: computed by the template, never asked."""
    return [k for k, v in template_config().items() if k[0] != "_" and v.get("when") is False]


# The floors copier.yml offers, the one a project gets when nobody answers python_min, and
# the newest Python its classifiers and CI matrix reach.
PYTHON_FLOORS: tuple[str, ...] = tuple(template_config()["python_min"]["choices"])
DEFAULT_PYTHON_MIN: str = template_config()["python_min"]["default"]
PYTHON_NEWEST: str = template_config()["python_newest"]["default"]


def snapshot_template(dst: Path) -> Path:
    """Copy the template's working tree (committed or not) to ``dst``, outside any git repo.

    Copier renders a git template from its last tag or commit; the tests must see the
    tree as it is now, so they render from a plain copy.
    """
    dst.mkdir(parents=True, exist_ok=True)
    for name in TEMPLATE_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst / name)
    return dst


def render(template: Path, dst: Path, answers: dict[str, Any] | None = None) -> Path:
    """Generate a project from ``template`` with ``answers`` (defaults for the rest)."""
    copier.run_copy(str(template), dst, data=answers or {}, defaults=True, quiet=True, unsafe=True)
    return dst


def tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (relative path -> bytes), caches left out."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and ".mypy_cache" not in p.parts
    }


def run(
    args: list[str | Path], cwd: Path, *, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run a command, failing with its output when it exits non-zero."""
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {proc.returncode} in {cwd}\n"
            f"--- stdout ---\n{proc.stdout[-20000:]}\n--- stderr ---\n{proc.stderr[-10000:]}"
        )
    return proc


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` as a throwaway committer; what it printed."""
    return run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd).stdout


@cache
def find_python(version: str) -> str | None:
    """An interpreter of exactly ``version`` ("3.12") on this machine, or None."""
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [
        sys.executable if f"{sys.version_info.major}.{sys.version_info.minor}" == version else None,
        shutil.which(f"python{version}"),
        *sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True),
        f"/usr/bin/python{version}",
    ]
    for exe in filter(None, candidates):
        if python_version(exe) == version:
            return exe
    return None


def python_version(exe: str) -> str | None:
    """ "3.12" for an interpreter that runs and has venv, else None."""
    try:
        out = subprocess.run(
            [exe, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def python_for(python_min: str) -> str | None:
    """The interpreter that tests a project needing ``python_min``: that exact version if
    the machine has it (the floor is what breaks), else this one if it is new enough."""
    exact = find_python(python_min)
    if exact:
        return exact
    current = (sys.version_info.major, sys.version_info.minor)
    if current >= tuple(int(p) for p in python_min.split(".")):
        return sys.executable
    return None


# uv makes environments and installs into them several times faster than venv + pip,
# from a cache shared by every variant (the template's own pytest time is mostly this).
UV = str(Path(sys.executable).parent / "uv")


# Environments live outside pytest's base directory: any pytest process that starts makes
# /tmp/pytest-of-<user> private again, and the embedded PostgreSQL runs pg_ctl from the
# environment as a user of its own, which then could no longer reach it.
_VENVS = Path(tempfile.mkdtemp(prefix="copier-pgdbm-venvs-"))
atexit.register(shutil.rmtree, _VENVS, ignore_errors=True)


def make_venv(name: str, python: str) -> Path:
    """A fresh virtual environment for ``python``; returns its bin directory."""
    where = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_VENVS)) / "venv"
    run([UV, "venv", "--quiet", "--python", python, where], cwd=where.parent)
    return where / "bin"


def pip_install(bin_dir: Path, *requirements: str | Path, cwd: Path) -> None:
    """Install into the environment of ``bin_dir`` (``-e``, extras and paths as pip takes)."""
    run(
        [UV, "pip", "install", "--quiet", "--python", bin_dir / "python", *requirements],
        cwd=cwd,
        env=subprocess_env(),
    )


@dataclass
class JUnitReport:
    """What a pytest --junitxml file says."""

    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> JUnitReport:
        report = cls()
        for case in ET.parse(path).getroot().iter("testcase"):
            name = f"{case.get('classname')}::{case.get('name')}"
            if case.find("failure") is not None or case.find("error") is not None:
                report.failed.append(name)
            elif case.find("skipped") is not None:
                report.skipped.append(name)
            else:
                report.passed.append(name)
        return report

    def passed_in_mode(self, mode: str) -> list[str]:
        return [name for name in self.passed if f"[{mode}]" in name]


# Container images often set PYTHONDONTWRITEBYTECODE (this machine's does). uv installs
# without bytecode, so with it every process compiled each module it imported from source
# again: a third of a generated suite's CPU time. The bytecode lands in throwaway projects
# and environments, and in this repository's own (gitignored) __pycache__ and venv.
_NOT_PASSED_ON = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE"}


def subprocess_env(**extra: str) -> dict[str, str]:
    """Our environment for child processes, minus our venv's traces; they write bytecode."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _NOT_PASSED_ON and not k.startswith("PYTEST_")
    }
    env.update(extra)
    return env


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
    "python_min": "3.10",  # the oldest floor offered (the default is 3.11)
    "license": "Apache-2.0",
}


# The projects tests/test_generated_projects.py installs, runs and lints with their own
# tools: the defaults, the custom answers and each other floor offered.
INSTALL_VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "custom": CUSTOM_ANSWERS,
    **{
        f"min{version}": {
            "python_min": version,
            "package_name": f"orders_{version.replace('.', '')}",
            "class_name": "OrderBook",
            "schema_name": "orders",
        }
        for version in PYTHON_FLOORS
        if version not in {DEFAULT_PYTHON_MIN, CUSTOM_ANSWERS["python_min"]}
    },
}


@cache
def runnable_variants() -> dict[str, str]:
    """Those of INSTALL_VARIANTS this machine can install: each with the oldest Python it
    supports that is here (see python_for)."""
    return {
        name: python
        for name, answers in INSTALL_VARIANTS.items()
        if (python := python_for(answers.get("python_min", DEFAULT_PYTHON_MIN))) is not None
    }


@dataclass(frozen=True)
class Installed:
    """A generated project with its own virtual environment, installed editable."""

    path: Path
    bin: Path
    python: str

    def run(
        self, *args: str | Path, timeout: float = 900, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return run(list(args), cwd=self.path, env=subprocess_env(**env), timeout=timeout)

    def run_suite(self, junit: Path, *options: str) -> JUnitReport:
        """Run the project's own pytest in its environment; what its JUnit report says."""
        self.run(
            self.bin / "python",
            *("-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}", *options),
        )
        return JUnitReport.read(junit)

    def run_suite_as_ci(
        self, junit: Path, coverage: bool = True, server_tests: tuple[str, ...] = ()
    ) -> tuple[JUnitReport, str]:
        """The suite as the project's CI runs it, with ``--cov``, then its coverage total
        checked against the project's threshold (``coverage report`` fails under it).

        Measuring coverage nearly doubles the suite's CPU time (default variant: 26 CPU-s
        against 16), so it is measured once per distinct code: ``coverage=False`` for a
        variant whose code is another's with other names (tests/test_render.py checks that
        they are), and never against a server named by TEST_DATABASE_URL (CI's reruns on
        Debian's PostgreSQL and through PgBouncer), as the embedded server's run measured it.
        There, ``server_tests`` (test files) narrows the run to them: what the variant's
        suite has beyond another variant's that runs on that server too.
        """
        if os.environ.get("TEST_DATABASE_URL"):
            return self.run_suite(junit, *server_tests), "not measured against TEST_DATABASE_URL"
        if not coverage:
            return self.run_suite(junit), "coverage measured on the defaults' code"
        report = self.run_suite(junit, "--cov")
        total = self.run(self.bin / "coverage", "report", "--format=total").stdout.strip()
        return report, f"coverage {total} %"
