"""Two costs of an in-process render that do not change between renders (a pytest plugin).

Each ``copier.run_copy`` parses copier.yml again with PyYAML's pure-Python loader (50 ms,
a quarter of a render here: the computed validators make it long), and after writing each
file asks git for the destination's ``core.fileMode`` (one process per file, 40 ms a
render), only to find it is not "false" and do nothing. The hostile-answers property
renders hundreds of projects; with both memoized its examples cost 40 % less.

- copier.yml is parsed once per content (a file that ``!include``s others, never cached);
  each render gets its own deep copy, as it got its own parse.
- The ``core.fileMode`` answer is asked once per render (``Worker.run_copy``), not once per
  file; where it is "false", Copier's own per-file index update runs as before. (Copier
  9.13 and 9.14 never ask: there, only the first memo is installed.)

Copier run as a command (the update and zero-to-green tests) is not affected.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from copier import _main, _template
from copier._vcs import get_git
from plumbum import ProcessExecutionError

_LOAD: Callable[..., dict[str, Any]] = _template.load_template_config
# Copier 9.15 added the per-file probe; the floor (_min_copier_version) is 9.13.
_SYNC: Callable[..., None] | None = getattr(_main.Worker, "_sync_git_index_executable_bit", None)
_RUN_COPY: Callable[..., None] = _main.Worker.run_copy

_configs: dict[tuple[bytes, bool], dict[str, Any]] = {}
# Within one run_copy: None until asked, then whether core.fileMode is "false".
_file_mode_off: ContextVar[list[bool | None] | None] = ContextVar("file_mode_off", default=None)


def load_template_config(conf_path: Path, quiet: bool = False) -> dict[str, Any]:
    source = conf_path.read_bytes()
    # The result then depends on other files too. (A tag spelt another way, through a %TAG
    # handle, would slip through: this template's copier.yml includes nothing.)
    if b"!include" in source:
        return _LOAD(conf_path, quiet)
    key = (source, quiet)
    if key not in _configs:
        _configs[key] = _LOAD(conf_path, quiet)
    return copy.deepcopy(_configs[key])


def _run_copy(self: _main.Worker) -> None:
    token = _file_mode_off.set([None])
    try:
        _RUN_COPY(self)
    finally:
        _file_mode_off.reset(token)


def _sync_git_index_executable_bit(self: _main.Worker, dst_relpath: Path, src_mode: int) -> None:
    assert _SYNC is not None  # installed only where Copier has it
    asked = _file_mode_off.get()
    if asked is None:  # outside run_copy: as Copier does
        _SYNC(self, dst_relpath, src_mode)
        return
    if asked[0] is None:
        git = get_git(context_dir=self.subproject.local_abspath)
        try:
            setting = git("config", "--type=bool", "--get", "core.fileMode").strip()
        except ProcessExecutionError:  # not a repository, or unset (true on unix)
            setting = "true"
        asked[0] = setting == "false"
    if asked[0]:
        _SYNC(self, dst_relpath, src_mode)


def pytest_configure() -> None:
    """Install both in this test process (each xdist worker too)."""
    _template.load_template_config = load_template_config
    if _SYNC is not None:
        _main.Worker._sync_git_index_executable_bit = _sync_git_index_executable_bit  # type: ignore[method-assign]
        _main.Worker.run_copy = _run_copy  # type: ignore[method-assign]
