"""Mutants as mutation/run.py reports them, and the list of those that are equivalent.

Shared by run.py and mutation_plugin.py (which runs in the generated project's
environment, where neither copier nor the template's tests are installed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EQUIVALENTS = Path(__file__).resolve().parent / "equivalents.txt"
PACKAGE = "my_library"  # the default answers' package


def function_of(name: str) -> str:
    """The mutated function of the mutant mutmut calls ``name``: ``_cli._print_status`` or
    ``_dualmode.DualModeLibrary.initialize``."""
    module, _, mangled = name.removeprefix(f"{PACKAGE}.").rpartition(".")
    mangled = mangled.rpartition("__mutmut_")[0]
    if mangled.startswith("x\u01c1"):
        _, cls, method = mangled.split("\u01c1")
        return f"{module}.{cls}.{method}"
    return f"{module}.{mangled.removeprefix('x_')}"


@dataclass(frozen=True)
class Mutant:
    name: str
    status: str
    diff: str

    @property
    def function(self) -> str:
        return function_of(self.name)

    @property
    def change(self) -> str:
        """``old ==> new``: the lines the mutation removes and adds, stripped."""
        lines = self.diff.splitlines()[2:]  # past the ---/+++ header
        old = " / ".join(line[1:].strip() for line in lines if line.startswith("-"))
        new = " / ".join(line[1:].strip() for line in lines if line.startswith("+"))
        return f"{old} ==> {new}"

    @property
    def key(self) -> str:
        return f"{self.function}: {self.change}"


def read_equivalents(path: Path = EQUIVALENTS) -> dict[str, str]:
    """``function: old ==> new`` -> reason, from the equivalents file."""
    entries: dict[str, str] = {}
    key = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("    reason: "):
            if key is None or entries[key]:
                raise SystemExit(f"{path}:{number}: a reason must follow its mutant line")
            entries[key] = line.removeprefix("    reason: ").strip()
        elif " ==> " in line and not line.startswith(" "):
            if key is not None and not entries[key]:
                raise SystemExit(f"{path}:{number}: the mutant above has no reason")
            key = line.strip()
            entries[key] = ""
        else:
            raise SystemExit(f"{path}:{number}: expected 'function: old ==> new' or '    reason:'")
    if key is not None and not entries[key]:
        raise SystemExit(f"{path}: the last mutant has no reason")
    return entries
