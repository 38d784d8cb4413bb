"""Compile each Jinja source once per test process, not once per render (a pytest plugin).

Copier makes a new Jinja environment for every render and compiles every path, question
default, validator and file from scratch: about 400 compiles for one project, half of a
render's 0.2 s. The tests render hundreds of projects from the same template, so this
memoizes ``Environment.compile``, a function of the source and of what the lexer, parser
and code generator read from the environment: its syntax settings, its extensions (by
module and class; none of Copier's reads settings at parse time), the names of its
filters and tests, and the policies it reads. On a hit the extensions' ``preprocess``
hooks still run, as they would on a compile: Copier's ``{% yield %}`` extension resets its
state there. Copier run as a command (the update and zero-to-green tests) is not affected.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from types import CodeType
from typing import Any

import jinja2

_COMPILE: Callable[..., Any] = jinja2.Environment.compile
_compiled: dict[Hashable, str | CodeType] = {}


def _calls(functions: Mapping[str, Any]) -> frozenset[tuple[str, Any]]:
    return frozenset((name, getattr(f, "jinja_pass_arg", None)) for name, f in functions.items())


def _environment_key(env: jinja2.Environment) -> Hashable:
    # Everything the lexer, the parser and the code generator read from the environment.
    return (
        type(env),
        env.block_start_string,
        env.block_end_string,
        env.variable_start_string,
        env.variable_end_string,
        env.comment_start_string,
        env.comment_end_string,
        env.line_statement_prefix,
        env.line_comment_prefix,
        env.trim_blocks,
        env.lstrip_blocks,
        env.newline_sequence,
        env.keep_trailing_newline,
        frozenset(env.extensions),  # "module.Class" of each
        # The policies read while compiling (the others are read when rendering).
        env.policies.get("compiler.ascii_str"),
        env.policies.get("ext.i18n.trimmed"),
        # Of a filter or test the compiler reads only its name and which argument
        # (context, eval context, environment) it takes first.
        _calls(env.filters),
        _calls(env.tests),
        env.optimized,
        env.is_async,
        env.finalize,
        env.autoescape,
    )


def _compile(
    self: jinja2.Environment,
    source: Any,
    name: str | None = None,
    filename: str | None = None,
    raw: bool = False,
    defer_init: bool = False,
) -> Any:
    if not isinstance(source, str):  # an already parsed template
        return _COMPILE(self, source, name, filename, raw, defer_init)
    try:
        key = (_environment_key(self), source, name, filename, raw, defer_init)
        code = _compiled.get(key)
    except TypeError:  # an unhashable filter or setting: compile as Jinja does
        return _COMPILE(self, source, name, filename, raw, defer_init)
    if code is None:
        code = _compiled[key] = _COMPILE(self, source, name, filename, raw, defer_init)
    else:
        self.preprocess(source, name, filename)  # for the extensions' per-compile state
    return code


def pytest_configure() -> None:
    """Install the memoized compile in this test process (each xdist worker too)."""
    jinja2.Environment.compile = _compile  # type: ignore[method-assign]
