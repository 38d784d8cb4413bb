"""The benchmarks keep working (their figures are read by people, not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support import REPO, subprocess_env


def benchmark(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``benchmarks/<script>`` run with ``args``, whatever its exit status."""
    return subprocess.run(
        [sys.executable, REPO / "benchmarks" / script, *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=600,
        check=False,
    )


def run_benchmark(script: str, *args: str) -> str:
    """A short run of ``benchmarks/<script>``; its output, once it has exited 0."""
    proc = benchmark(script, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.generated_suite
def test_benchmark_prints_medians_and_ratios() -> None:
    """A short run prints a median for each fixture kind and a ratio against pgdbm's."""
    # Fewer tests than CI's 200 and 2000 (the benchmark's default): the same runs and lines,
    # in less time. 1000 tests take about 2 s more than 20: no single run's noise hides it.
    out = run_benchmark(
        "fixture_overhead.py",
        *("--rounds", "3", "--marginal", "--marginal-rounds", "1"),
        *("--marginal-sizes", "20", "1000"),
    )
    medians = re.findall(r"^  (?!isolation).+ (\d+\.\d\d) ms$", out, re.MULTILINE)
    overheads = re.findall(r"^  isolation overhead, .+ (-?\d+\.\d\d) ms$", out, re.M)
    ratios = re.findall(r"^  ratio pgdbm / .+ (\d+\.\d) x$", out, re.MULTILINE)
    assert len(medians) == 6, out
    assert len(overheads) == 2, out
    assert len(ratios) == 4, out
    assert all(float(m) > 0 for m in medians)
    # pgdbm's overhead over ours, for each mode whose overhead this short run saw above 0.
    saved = re.findall(r"^  overhead ratio, \(pgdbm - none\) / .+ (\d+\.\d) x$", out, re.M)
    assert len(saved) == sum(float(o) > 0 for o in overheads), out
    # --marginal: the suite's runner with 20 and 1000 more tests, per test.
    line = r"^ +(\d+) tests: +(\d+\.\d\d) s in all, +(-?\d+\.\d\d) ms per test$"
    marginal = re.findall(line, out, re.MULTILINE)
    assert [int(n) for n, _, _ in marginal] == [20, 1000], out
    # 20 tests' figure is a small difference of two noisy wall times; 1000 tests' is not.
    (_, wall_20, _), (_, wall_1000, per_test_1000) = marginal
    assert float(wall_1000) > float(wall_20), out
    assert float(per_test_1000) > 0, out


@pytest.mark.generated_suite
def test_call_overhead_benchmark_prints_ratios() -> None:
    """A short run prints the per-call medians of both ways and a ratio for each mode."""
    out = run_benchmark("call_overhead.py", "--rounds", "3", "--batch", "20")
    medians = re.findall(r"^  (standalone|shared) +(library|asyncpg) +(\d+\.\d) us$", out, re.M)
    assert len(medians) == 4, out
    assert all(float(m[2]) > 0 for m in medians)
    ratios = re.findall(r"^  ratio library / asyncpg, (\w+) +(\d+\.\d{3}) x$", out, re.M)
    assert [mode for mode, _ in ratios] == ["standalone", "shared"], out


@pytest.mark.generated_suite
def test_cold_start_benchmark_prints_medians_and_ratios() -> None:
    """A short run prints the three medians and the ratios between them."""
    out = run_benchmark("cold_start.py", "--instances", "3", "--rounds", "2")
    medians = re.findall(r"^  (1 instance|3 at once, \w+) +(\d+\.\d) ms$", out, re.M)
    assert [label for label, _ in medians] == [
        "1 instance",
        "3 at once, jittered",
        "3 at once, lockstep",
    ], out
    assert all(float(ms) > 0 for _, ms in medians)
    ratios = re.findall(r"^  ratio (\w+) / (\w+) +(\d+\.\d\d) x$", out, re.M)
    assert [(a, b) for a, b, _ in ratios] == [
        ("jittered", "one"),
        ("lockstep", "one"),
        ("lockstep", "jittered"),
    ], out


@pytest.mark.parametrize(
    ("script", "args", "says"),
    [
        ("fixture_overhead.py", ["--rounds", "1"], "--rounds must be at least 2"),
        ("cold_start.py", ["--instances", "1"], "--instances must be at least 2"),
    ],
)
def test_too_few_rounds_or_instances_are_refused_before_any_work(
    script: str, args: list[str], says: str
) -> None:
    """A figure needs a median: argparse's exit 2 with the bound, before a server starts."""
    proc = benchmark(script, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says in proc.stderr
    assert proc.stdout == ""
