"""Compile each Jinja source once per test process, not once per render (a pytest plugin).

Copier makes a new Jinja environment for every render and compiles every path, question
default, validator and file from scratch: about 400 compiles for one project, half of a
render's 0.2 s. The tests render hundreds of projects from the same template, so this
memoizes ``Environment.compile``, a pure function of the source and of what the compiler
reads from the environment, all of which is in the key. Sources with a ``{% yield %}`` tag
are never cached: Copier's extension records that tag on the environment while parsing.
Copier run as a command (the update and zero-to-green tests) is not affected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping
from types import CodeType
from typing import Any

import jinja2

_COMPILE: Callable[..., Any] = jinja2.Environment.compile
_YIELD_TAG = re.compile(r"\{%[-+]?\s*yield\b")
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
        tuple(sorted(type(ext).__qualname__ for ext in env.extensions.values())),
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
    if not isinstance(source, str) or _YIELD_TAG.search(source):
        return _COMPILE(self, source, name, filename, raw, defer_init)
    try:
        key = (_environment_key(self), source, name, filename, raw, defer_init)
        return _compiled[key]
    except TypeError:  # an unhashable filter or setting: compile as Jinja does
        return _COMPILE(self, source, name, filename, raw, defer_init)
    except KeyError:
        code = _compiled[key] = _COMPILE(self, source, name, filename, raw, defer_init)
        return code


def pytest_configure() -> None:
    """Install the memoized compile in this test process (each xdist worker too)."""
    jinja2.Environment.compile = _compile  # type: ignore[method-assign]
