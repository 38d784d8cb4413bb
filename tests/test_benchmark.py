"""The fixture benchmark keeps working (its figures are read by people, not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support import REPO, subprocess_env


@pytest.mark.generated_suite
def test_benchmark_prints_medians_and_ratios() -> None:
    """A short run prints a median for each fixture kind and a ratio against pgdbm's."""
    proc = subprocess.run(
        [sys.executable, REPO / "benchmarks" / "fixture_overhead.py", "--rounds", "3"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    medians = re.findall(r"^  .+ (\d+\.\d) ms$", proc.stdout, re.MULTILINE)
    ratios = re.findall(r"^  ratio pgdbm / .+ (\d+\.\d) x$", proc.stdout, re.MULTILINE)
    assert len(medians) == 5, proc.stdout
    assert len(ratios) == 4, proc.stdout
    assert all(float(m) > 0 for m in medians)
