"""Zero to green: `copier copy`, then the generated README's one test command, timed.

Each run copies the template's working tree out of git, generates a project from it with
the copier command line (default answers) into a new directory, and runs the command the
generated README gives under "Development" (`uv run pytest -n auto`: makes `.venv`,
installs the project with its dev dependency group, runs the whole suite on an embedded
PostgreSQL, in parallel processes that share it). The first run fills uv's cache; the
figure is the fastest of the later runs, with a warm cache, as a developer who has made one
library before sees it. The README's pip route (venv + pip + pytest) is timed the same way
for comparison, or only once (--pip-runs 1).

--breakdown adds where the time goes: after the last run, the README's command and the same
without `-n auto`, timed again back to back (nothing left to install), with their ratio; and
each route's environment and install alone, on a fresh project. That costs about 40 s more,
which CI leaves out.

    python benchmarks/zero_to_green.py [--runs 3] [--pip-runs 1] [--no-pip] [--breakdown]

Prints seconds per run (and, on Linux, the CPU-seconds the machine was busy during it: the
suite's embedded PostgreSQL counts, and so does any other load), the CPU floor of the best
uv run (its CPU-seconds over the CPUs: no schedule of that work ends sooner here), and a
last line "zero to green (uv, warm cache): N.N s". These machines are shared: compare
figures taken together, not across days.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import snapshot_template, subprocess_env  # noqa: E402

BIN = Path(sys.executable).parent


def environment() -> dict[str, str]:
    """Ours, without this venv's traces, with its tools (copier, uv) on PATH, and writing
    bytecode as Python does by default (a developer's shell does not set
    PYTHONDONTWRITEBYTECODE; this machine's image does)."""
    # A uv of the user's own comes first.
    return subprocess_env(PATH=f"{os.environ.get('PATH', '')}:{BIN}")


def readme_commands(project: Path) -> tuple[str, str]:
    """The uv command and the pip route, as the generated README's Development shows them."""
    readme = (project / "README.md").read_text()
    development = readme.split("\n## Development\n", 1)[1]
    blocks = re.findall(r"```bash\n(.*?)\n```", development, re.DOTALL)
    uv_command, pip_route = blocks[0].strip(), blocks[1].strip()
    for command in (uv_command, pip_route):
        if "\n" in command:
            raise SystemExit(f"the README's command is not one line: {command!r}")
    return uv_command, pip_route


def timed(command: list[str] | str, cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        shell=isinstance(command, str),
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(
            f"{command} failed ({proc.returncode}) in {cwd}:\n{proc.stdout[-5000:]}\n"
            f"{proc.stderr[-3000:]}"
        )
    return elapsed


def busy_cpu_seconds() -> float | None:
    """CPU time the whole machine has spent busy since boot, all CPUs together, from Linux's
    /proc/stat (None elsewhere). Machine-wide: the embedded PostgreSQL that the suite starts
    runs detached from the command's process tree, so the command's own rusage misses it."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal ...: idle, iowait and steal
    # (another guest's turn on a virtual machine) are not this machine's work.
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def generate(template: Path, project: Path, env: dict[str, str]) -> float:
    shutil.rmtree(project, ignore_errors=True)
    return timed(
        ["copier", "copy", "--defaults", "--trust", "--quiet", str(template), str(project)],
        project.parent,
        env,
    )


def one_run(
    template: Path, work: Path, route: str, env: dict[str, str]
) -> tuple[float, float, float | None]:
    """(copier copy seconds, test command seconds, CPU-seconds the machine was busy for
    both, or None) for a fresh project."""
    project = work / f"project-{route}"
    busy_before = busy_cpu_seconds()
    copy = generate(template, project, env)
    uv_command, pip_route = readme_commands(project)
    test = timed(uv_command if route == "uv" else pip_route, project, env)
    busy_after = busy_cpu_seconds()
    busy = None if busy_before is None or busy_after is None else busy_after - busy_before
    return copy, test, busy


def one_process(project: Path, env: dict[str, str]) -> None:
    """Time the README's command and the same without `-n auto`, back to back, in the
    project it just made green (nothing left to install): the suite alone, both ways."""
    command = readme_commands(project)[0]
    if " -n auto" not in command:
        return
    parallel = timed(command, project, env)
    serial = timed(command.replace(" -n auto", ""), project, env)
    print(
        f"         the suite alone: -n auto {parallel:5.1f} s, in one process {serial:5.1f} s"
        f" (-n auto / one process: {parallel / serial:.2f})"
    )


def install_only(template: Path, work: Path, route: str, env: dict[str, str]) -> float:
    """Seconds for the command's environment and install alone, on a fresh project: `uv
    sync` (what `uv run` does first), or the pip route without its last step (pytest)."""
    project = work / f"project-{route}-install"
    generate(template, project, env)
    if route == "uv":
        return timed(["uv", "sync", "--quiet"], project, env)
    pip_route = readme_commands(project)[1]
    return timed(pip_route.rsplit(" && ", 1)[0], project, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="uv runs (at least 2: the first warms)")
    parser.add_argument(
        "--pip-runs", type=int, help="pip route runs (default: as uv; 1 times it as found)"
    )
    parser.add_argument("--no-pip", action="store_true", help="time the uv route only")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time the suite alone (in parallel and in one process) and the install alone",
    )
    args = parser.parse_args()
    env = environment()
    if shutil.which("uv", path=env["PATH"]) is None:
        raise SystemExit("uv is not on PATH (pip install uv)")
    runs = {"uv": max(args.runs, 2)}
    if not args.no_pip:
        runs["pip"] = runs["uv"] if args.pip_runs is None else max(args.pip_runs, 1)
    # Per route, the fastest warm run: (seconds, CPU-seconds busy or None).
    best: dict[str, tuple[float, float | None]] = {}
    with tempfile.TemporaryDirectory(prefix="zero-to-green-") as tmp:
        work = Path(tmp)
        template = snapshot_template(work / "template")
        for route, count in runs.items():
            print(f"{route} route:")
            totals: list[tuple[float, float | None]] = []
            for n in range(1, count + 1):
                copy, test, busy = one_run(template, work, route, env)
                # With one run, its figure is the only one (whatever the cache held).
                warming = n == 1 and count > 1
                note = "  (fills the cache)" if warming else ""
                cpu = "" if busy is None else f", {busy:5.1f} CPU-s"
                print(
                    f"  run {n}: {copy + test:5.1f} s = copier copy {copy:4.1f} s"
                    f" + command {test:5.1f} s{cpu}{note}"
                )
                if not warming:
                    totals.append((copy + test, busy))
                if args.breakdown and n == count and route == "uv":
                    one_process(work / "project-uv", env)
            best[route] = min(totals, key=lambda total: total[0])
            if args.breakdown:
                install = install_only(template, work, route, env)
                print(f"  of which environment + install alone: {install:.1f} s")
    if "pip" in best:
        cache = "warm cache" if runs["pip"] > 1 else "one run"
        print(f"zero to green (pip route, {cache}): {best['pip'][0]:.1f} s")
    seconds, busy = best["uv"]
    if busy is not None:
        # However its processes are scheduled, that much work takes at least busy / CPUs of
        # wall time here: the floor of the figure below on this machine (machine-wide, so
        # other load on a shared machine counts in it too).
        cpus = os.cpu_count() or 1
        print(
            f"CPU of that uv run: {busy:.1f} CPU-s on {cpus} CPUs, so at least"
            f" {busy / cpus:.1f} s of wall time however it is scheduled"
        )
    print(f"zero to green (uv, warm cache): {seconds:.1f} s")


if __name__ == "__main__":
    main()
