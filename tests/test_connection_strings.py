"""The generated library's connection-string check against asyncpg's own reading of the
string: whatever it accepts, asyncpg reads as written, so no part of a password is ever
taken for a host, port, database or query (which asyncpg's errors, or the library's
messages naming the server, would then show)."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import inspect
import sys
from types import ModuleType
from typing import Any
from urllib.parse import quote, unquote

from asyncpg import connect_utils
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.support import REPO

PACKAGE_DIR = REPO / "template/src/{{ package_name }}"


def _bootstrap() -> ModuleType:
    # _bootstrap.py and the modules it imports are copied verbatim into every project, with
    # relative imports, so the template's own files import as a package of any name.
    name = "rendered_library"
    if name not in sys.modules:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(PACKAGE_DIR)]
        sys.modules[name] = importlib.util.module_from_spec(spec)
    return importlib.import_module(f"{name}._bootstrap")


dsn_problem = _bootstrap().dsn_problem
describe_dsn = _bootstrap().describe_dsn
NOT_ENCODED = _bootstrap()._NOT_ENCODED


def asyncpg_reading(dsn: str) -> tuple[list[Any], str | None, str | None, str | None]:
    """Hosts, user, password and database as asyncpg reads ``dsn``, without connecting."""
    # asyncpg has no public parser; its private one takes every connect() argument, which
    # differ between releases, so all but the string are passed as None by name.
    parse = connect_utils._parse_connect_dsn_and_args
    others = {name: None for name in inspect.signature(parse).parameters if name != "dsn"}
    hosts, params = parse(dsn=dsn, **others)[:2]
    return hosts, params.user, params.password, params.database


# Passwords built from the characters that end or split a URL's parts, plain words and
# anything else, so that each kind of boundary turns up in a few hundred examples.
PASSWORDS = st.lists(
    st.sampled_from([*"/?#[]@:%&=,;+ ", "%41", "s3cret", "9", "user="])
    | st.characters(codec="utf-8", min_codepoint=33),
    max_size=8,
).map("".join)


# What follows the password, and the hosts and database asyncpg must then read.
AFTER_PASSWORD = [
    ("@db.example:6432/orders?sslmode=prefer", [("db.example", 6432)], "orders"),
    ("@db.example/orders", [("db.example", 5432)], "orders"),
    ("@db.example:6432", [("db.example", 6432)], "app"),  # no database: the user's name
    ("@db.example,[::1]:6432/orders", [("db.example", 5432), ("::1", 6432)], "orders"),
    ("@/orders?host=db.example&port=6432", [("db.example", 6432)], "orders"),  # the query's
    ("@/orders?host=db.example:6432,[::1]", [("db.example", 6432), ("::1", 5432)], "orders"),
]


@settings(max_examples=400, deadline=None, database=None)
@given(password=PASSWORDS, after=st.sampled_from(AFTER_PASSWORD))
@example(password="p@x:s3cret", after=AFTER_PASSWORD[0])  # refused: s3cret@… read as a port
@example(password="p;w,x%41", after=AFTER_PASSWORD[0])  # accepted, and read as p;w,xA
def test_an_accepted_string_is_read_as_written_whatever_the_password(
    password: str, after: tuple[str, list[tuple[str, int]], str]
) -> None:
    rest, hosts, database = after
    dsn = f"postgresql://app:{password}{rest}"
    problem = dsn_problem(dsn)
    if problem is not None:
        assert problem == NOT_ENCODED  # the advice, which quotes nothing of the string
        return
    assert asyncpg_reading(dsn) == (
        hosts,
        "app",
        unquote(password) or None,  # asyncpg percent-decodes it; an empty one is none
        database,
    )
    # And the library names the server it failed to reach as asyncpg read it.
    assert describe_dsn(dsn) == (
        f"host={','.join(host for host, _ in hosts)} "
        f"port={','.join(str(port) for _, port in hosts)} database={database} user=app"
    )


@settings(max_examples=200, deadline=None, database=None)
@given(user=PASSWORDS.filter(bool), password=PASSWORDS, database=PASSWORDS.filter(bool))
def test_percent_encoded_parts_are_always_accepted_and_read_back(
    user: str, password: str, database: str
) -> None:
    def enc(text: str) -> str:
        return quote(text, safe="")

    dsn = f"postgresql://{enc(user)}:{enc(password)}@[::1]:5432/{enc(database)}"
    assert dsn_problem(dsn) is None
    assert asyncpg_reading(dsn) == ([("::1", 5432)], user, password or None, database)
