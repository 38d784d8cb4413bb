"""Generated projects install, pass their own suites in both modes, and ship their migrations."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    INSTALL_VARIANTS,
    UV,
    Installed,
    JUnitReport,
    load_pg_server_plugin,
    make_venv,
    pip_install,
    python_version,
    run,
    runnable_variants,
    subprocess_env,
)

pytestmark = pytest.mark.generated_suite

Install = Callable[[str, dict[str, Any], str], Installed]

# Each variant installs with the oldest Python it supports when this machine has it.
RUNNABLE = runnable_variants()
# Where the generated suites' embedded servers keep their data (/dev/shm here, mostly).
DATA_PARENT = load_pg_server_plugin().data_parent()
MIN_TESTS_PER_MODE = 13  # the library tests the template ships, per mode


def _version(python: str) -> str:
    version = python_version(python)
    assert version is not None, python
    return version


def test_every_supported_python_is_installed_and_tested_where_possible() -> None:
    """The matrix covers each minimum Python this machine can run (3.11 always can)."""
    assert "defaults" in RUNNABLE
    assert "custom" in RUNNABLE
    tested = {_version(python) for python in RUNNABLE.values()}
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in tested or len(tested) >= 2
    print(f"\ninstall+test matrix: { {k: _version(v) for k, v in RUNNABLE.items()} }")


def _assert_both_modes_passed(report: JUnitReport) -> None:
    assert report.failed == []
    assert report.skipped == []
    standalone = report.passed_in_mode("standalone")
    shared = report.passed_in_mode("shared")
    assert len(standalone) >= MIN_TESTS_PER_MODE, report.passed
    # Every library test ran in both modes.
    assert sorted(n.replace("[standalone]", "") for n in standalone) == sorted(
        n.replace("[shared]", "") for n in shared
    )


def _assert_suite_passes_in_both_modes(
    project: Installed, label: str, tmp_path: Path, coverage: bool = True
) -> None:
    report, coverage_total = project.run_suite_as_ci(tmp_path / "junit.xml", coverage)
    _assert_both_modes_passed(report)
    server = "TEST_DATABASE_URL" if os.environ.get("TEST_DATABASE_URL") else "embedded server"
    print(
        f"\n{label} (Python {_version(project.python)}, {server}): "
        f"{len(report.passed)} passed, both modes, {coverage_total}"
    )


# The default variant's suite runs against its built wheel (below): the other variants'
# suites run on editable installs, so both ways of installing are tested, each suite once.
# Their code is the defaults' with other names (tests/test_render.py checks it), so their
# coverage is measured on the wheel's run only: measuring it again took 6-10 CPU-s per
# variant. On their other Pythons a branch can count otherwise (coverage reads arcs from
# each interpreter's bytecode); the project's own CI checks the threshold on each, and the
# defaults' 96-97 % leaves room above its 90.
@pytest.mark.parametrize("variant", sorted(set(RUNNABLE) - {"defaults"}))
def test_generated_suite_passes_in_both_modes(
    install: Install, variant: str, tmp_path: Path
) -> None:
    """Installed with its test and lint groups, the suite passes, with tests from both modes."""
    project = install(variant, INSTALL_VARIANTS[variant], RUNNABLE[variant])
    _assert_suite_passes_in_both_modes(project, variant, tmp_path, coverage=False)


@pytest.mark.parametrize("variant", sorted(RUNNABLE))
def test_generated_project_lints_with_its_own_tools(install: Install, variant: str) -> None:
    """The project's own ruff and mypy --strict, in its own environment, find nothing."""
    project = install(variant, INSTALL_VARIANTS[variant], RUNNABLE[variant])
    project.run(project.bin / "ruff", "check", "--no-cache", ".")
    project.run(project.bin / "ruff", "format", "--check", "--no-cache", ".")
    project.run(project.bin / "mypy")


def test_wheel_ships_migrations_and_its_suite_passes_installed(
    install: Install, tmp_path: Path
) -> None:
    """The built wheel carries the SQL and py.typed, and the default variant's suite passes
    against it installed, with tests from both modes and its coverage threshold met."""
    source = install("defaults", INSTALL_VARIANTS["defaults"], RUNNABLE["defaults"])
    dist = tmp_path / "dist"
    # As the release workflow builds (`uv build`, isolated): 0.9 s here, where
    # `python -m build` took 3.1 s to set up its environment with pip.
    run(
        [UV, "build", "--quiet", "--wheel", "--out-dir", dist, source.path],
        cwd=tmp_path,
        env=subprocess_env(),
    )
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "my_library/migrations/001_initial.sql" in names
    assert "my_library/py.typed" in names
    assert not any(name.startswith("tests/") for name in names)

    bin_dir = make_venv("wheel", source.python)
    pip_install(bin_dir, wheel, "--group", f"{source.path / 'pyproject.toml'}:test", cwd=tmp_path)
    installed = Installed(source.path, bin_dir, source.python)
    located = installed.run(
        bin_dir / "python", "-c", "import my_library; print(my_library.__file__)"
    )
    assert "site-packages" in located.stdout
    _assert_suite_passes_in_both_modes(installed, "defaults, from its wheel", tmp_path)


HOLD_TEST = """
import asyncio
import os
from pathlib import Path


async def test_hold(lib: object) -> None:
    Path(os.environ["HOLD_MARKER"]).write_text("server up")
    await asyncio.sleep(300)
"""


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def _alive(pid: int) -> bool:
    """Running, not exited: a zombie waiting for its parent counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _wait_until(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _assert_server_gone(postmaster: int, data_dir: Path, output: str = "") -> None:
    """The embedded server stopped (within 30 s) and its data directory is deleted."""
    assert _wait_until(lambda: not _alive(postmaster), 30), output
    assert not data_dir.exists(), output


def _assert_stopped_by_the_signal(returncode: int, output: str) -> None:
    """pytest stopped as on Ctrl-C (2, interrupted), not at the held test's time limit."""
    assert returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output, output
    # pytest-timeout's own words (its banner, its failure), not any "Timeout" a log line
    # may carry (TimeoutError).
    assert not re.search(r"\+ Timeout \+|Timeout >\d", output), output


def _run_held_test(
    project: Installed, tmp_path: Path, test: str, marker: Path, *options: str, **popen: Any
) -> subprocess.Popen[str]:
    """Start the generated suite, in a copy of the project, on the one test file ``test``
    (which holds), with $HOLD_MARKER set to ``marker``, on the embedded server."""
    copy = tmp_path / "held"
    shutil.copytree(project.path, copy)
    (copy / "tests" / "test_zz_hold.py").write_text(test)
    env = subprocess_env(HOLD_MARKER=str(marker))
    env.pop("TEST_DATABASE_URL", None)  # this is about the embedded server
    pytest_command = ["-m", "pytest", "-p", "no:cacheprovider", *options, "tests/test_zz_hold.py"]
    return subprocess.Popen(
        [str(project.bin / "python"), *pytest_command],
        cwd=copy,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_sigint_as_from_a_terminal,
        **popen,
    )


def _sigint_as_from_a_terminal() -> None:
    """In the child, before exec: SIGINT with its default action, as a terminal's job has it.

    A run started in the background (`cmd &` in a script, nohup, some CI runners) ignores
    SIGINT, and its children inherit that across exec; Python then leaves it ignored. The
    Ctrl-C these tests send was lost, and each held run went on until its 60 s time limit.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_held_run(project: Installed, tmp_path: Path) -> tuple[subprocess.Popen[str], Path, int]:
    """Start the generated suite on a test that waits with the embedded server running."""
    marker = tmp_path / "marker"
    proc = _run_held_test(project, tmp_path, HOLD_TEST, marker, "-k", "standalone")
    assert _wait_until(marker.exists, 120), "the held test never started"
    data_dir = DATA_PARENT / f"pgdbm-test-pg-{proc.pid}"
    postmaster = _postmaster_pid(data_dir)
    assert _alive(postmaster)
    return proc, data_dir, postmaster


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_leaves_no_server(
    install: Install, tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C or SIGTERM mid-test stops the embedded server and deletes its data."""
    project = install("defaults", INSTALL_VARIANTS["defaults"], RUNNABLE["defaults"])
    proc, data_dir, postmaster = _start_held_run(project, tmp_path)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=120)
    _assert_stopped_by_the_signal(proc.returncode, output)
    _assert_server_gone(postmaster, data_dir, output)


def test_killed_run_is_reaped_by_the_next_run(install: Install, tmp_path: Path) -> None:
    """A SIGKILLed run's server is stopped and deleted when the next session starts."""
    project = install("defaults", INSTALL_VARIANTS["defaults"], RUNNABLE["defaults"])
    proc, data_dir, postmaster = _start_held_run(project, tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    assert _alive(postmaster)  # nothing could clean up after SIGKILL

    env = subprocess_env()
    env.pop("TEST_DATABASE_URL", None)
    run(
        [
            project.bin / "python",
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "tests/test_usage_errors.py",
        ],
        cwd=project.path,
        env=env,
    )
    _assert_server_gone(postmaster, data_dir)


WORKER_HOLD_TEST = """
import asyncio
import json
import os
from pathlib import Path


async def test_hold(postgres_server_url: str, database_url: str) -> None:
    seen = {"pid": os.getpid(), "server": postgres_server_url, "database": database_url}
    marker = Path(os.environ["HOLD_MARKER"]) / os.environ["PYTEST_XDIST_WORKER"]
    marker.write_text(json.dumps(seen))
    await asyncio.sleep(300)
"""


def test_xdist_workers_share_the_controllers_server(install: Install, tmp_path: Path) -> None:
    """`pytest -n 2` (the README's `-n auto` here) boots one embedded server, in the
    controller, for both workers, each in a database of its own; Ctrl-C (SIGINT to the
    process group, as a terminal sends it) stops it and deletes its data and the hand-off
    file."""
    project = install("defaults", INSTALL_VARIANTS["defaults"], RUNNABLE["defaults"])
    markers = tmp_path / "markers"
    markers.mkdir()
    proc = _run_held_test(
        project,
        tmp_path,
        WORKER_HOLD_TEST,
        markers,
        *("-n", "2", "--dist", "each"),
        start_new_session=True,  # a process group of its own, as a terminal's foreground job
    )
    try:
        assert _wait_until(lambda: len(list(markers.iterdir())) == 2, 120), "no two workers"
        seen = [json.loads(marker.read_text()) for marker in sorted(markers.iterdir())]
        tmp = Path(tempfile.gettempdir())  # the hand-off file's
        data_dir = DATA_PARENT / f"pgdbm-test-pg-{proc.pid}"  # the controller's
        assert {worker["server"] for worker in seen} == {seen[0]["server"]}
        assert f"host={data_dir}" in seen[0]["server"]
        assert seen[0]["database"] != seen[1]["database"]
        assert not any((DATA_PARENT / f"pgdbm-test-pg-{w['pid']}").exists() for w in seen)
        postmaster = _postmaster_pid(data_dir)
        assert _alive(postmaster)
        assert json.loads((tmp / f"pgdbm-test-pg-{proc.pid}.handoff").read_text()) == {
            "url": seen[0]["server"]
        }
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    _assert_stopped_by_the_signal(proc.returncode, output)
    _assert_server_gone(postmaster, data_dir, output)
    assert not (tmp / f"pgdbm-test-pg-{proc.pid}.handoff").exists()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_server_to_try_the_library_by_hand(install: Install, sig: signal.Signals) -> None:
    """`python -m tests.dev_server` (the generated README's server for trying the library):
    the signal while it starts is ignored (stopping then would leave the server running),
    its URL serves the library's CLI, and the signal then stops it and deletes its data."""
    project = install("defaults", INSTALL_VARIANTS["defaults"], RUNNABLE["defaults"])
    proc = subprocess.Popen(
        [str(project.bin / "python"), "-m", "tests.dev_server"],
        cwd=project.path,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stderr.readline() == "Starting PostgreSQL...\n"
        proc.send_signal(sig)
        url = proc.stdout.readline().strip()  # the first line; "" if it ended instead
        if not url:
            _, err = proc.communicate(timeout=60)
            raise AssertionError(f"no URL printed; exit {proc.returncode}: {err}")
        data_dir = DATA_PARENT / f"pgdbm-test-pg-{proc.pid}"
        postmaster = _postmaster_pid(data_dir)
        for command, said in [("migrate", "up to date (1 applied now)"), ("status", "up to date")]:
            out = project.run(project.bin / "python", "-m", "my_library", "--dsn", url, command)
            assert out.stdout.rstrip().endswith(said), out.stdout
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # a failed assert: stop it the way that deletes the server
            proc.terminate()
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert err.endswith("Stopping PostgreSQL...\nStopped; its data is deleted.\n"), err
    _assert_server_gone(postmaster, data_dir, err)
