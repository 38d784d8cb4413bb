"""Property: whatever the answers, Copier either refuses them with a validator's message and
writes nothing, or generates a project that parses, compiles, imports and builds.

Answers are drawn valid, then in five examples out of six one to three questions get
adversarial text instead: any Unicode (lone surrogates, emoji, line separators), quotes,
backslashes, newlines, Jinja-looking text, names at the edge of a rule. An oracle written in
Python states each rule (README's question table); Copier must refuse exactly the first
question, in the order asked, whose answer breaks one, or else generate a working project.
HOSTILE_ANSWERS_EXAMPLES sets the number of examples (default 200).
"""

from __future__ import annotations

import contextlib
import email.policy
import importlib
import inspect
import keyword
import os
import re
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from hatchling.build import build_wheel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from packaging.metadata import Metadata

from tests.support import computed_set, render, template_config

CONFIG = template_config()
# with_fastapi (a yes/no choice) stays at its default here: the FastAPI variant's names and
# its installed suite are tested in tests/test_fastapi_variant.py.
ORDER = [
    name
    for name, spec in CONFIG.items()
    if not name.startswith("_") and spec.get("when") is not False and name != "with_fastapi"
]


RESERVED_MODULES = computed_set("reserved_module_names")
RESERVED_DISTRIBUTIONS = computed_set("reserved_distribution_names")
RESERVED_CLASSES = computed_set("reserved_class_names") | computed_set("python_builtin_names")
PG_KEYWORDS = computed_set("postgres_reserved_keywords")

EXAMPLES = int(os.environ.get("HOSTILE_ANSWERS_EXAMPLES", "200"))

# ------------------------------------------------------------------- the rules, in Python

REFUSED_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
EMAIL = rf"{ATOM}(\.{ATOM})*@{LABEL}(\.{LABEL})+"
HOST = r"https://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(:[0-9]{1,5})?"
REPOSITORY_URL = HOST + r"(/[A-Za-z0-9_~-]([A-Za-z0-9._~-]*[A-Za-z0-9_~-])?)+"
UPLOAD_URL = HOST + r"(/[A-Za-z0-9._~-]*)*"


def _breaks_a_rule(question: str, value: str) -> bool:
    """True when the rule of ``question`` refuses ``value``."""
    if question in {"project_name", "description", "author_name"}:
        if not value.strip() or REFUSED_CHARACTERS.search(value) or value != value.strip():
            return True
        # A mail reader folds a run of whitespace in the wheel's Author-email header into one.
        return question == "author_name" and bool(re.search(r"\s\s", value))
    if question == "package_name":
        return (
            not re.fullmatch(r"[a-z][a-z0-9_]*", value)
            or len(value) > 30
            or keyword.iskeyword(value)
            or value in RESERVED_MODULES
            or bool(re.fullmatch(r"aux|con|nul|prn|com[1-9]|lpt[1-9]", value))  # Windows devices
        )
    if question == "distribution_name":
        return (
            not re.fullmatch(r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?", value)
            or len(value) > 60
            or re.sub(r"[-_.]+", "-", value) in RESERVED_DISTRIBUTIONS
        )
    if question == "class_name":
        return (
            not re.fullmatch(r"[A-Z][A-Za-z0-9]*", value)
            or not re.search(r"[a-z0-9]", value)
            or len(value) > 30
            or keyword.iskeyword(value)
            or value in RESERVED_CLASSES
        )
    if question == "schema_name":
        return (
            not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value)
            or value.startswith("pg_")
            or value in {"public", "information_schema"} | PG_KEYWORDS
        )
    if question == "author_email":
        return not re.fullmatch(EMAIL, value)
    if question == "copyright_year":  # checked when given, even if not asked (Proprietary)
        return not re.fullmatch(r"[0-9]{4}(-[0-9]{4})?", value)
    if question == "repository_url":
        return not re.fullmatch(REPOSITORY_URL, value) or value.endswith(".git")
    if question == "publish_to":  # pypi for a Proprietary library: first_refused
        return value != "pypi" and not re.fullmatch(UPLOAD_URL, value)
    return value not in CONFIG[question]["choices"]


def first_refused(answers: dict[str, str]) -> str | None:
    for question in ORDER:
        if question in answers and _breaks_a_rule(question, answers[question]):
            return question
        if (question, answers.get(question), answers.get("license")) == (
            "publish_to",
            "pypi",
            "Proprietary",
        ):
            return question
    return None


# ------------------------------------------------------------------------ the answers

# Pieces that broke, or could break, some format: TOML/YAML/Python/Markdown syntax, Jinja,
# escapes, characters outside the BMP, invisible and private-use characters, odd spaces.
SAFE_PIECES = [
    '"', "'", '"""', "'''", "\\", "\\n", "\\u0000", "\\ud83d", "{{ 7*7 }}", "{% raw %}",
    "{{ project_name }}", "{#", "#}", "${x}", "# ", "- ", "1. ", "> ", "*", "_", "`", "```",
    "[x](y)", "<b>", "&amp;", "|", "~~", "$", ": ", "---", "=", "🐘", "Ω", "é", "中文",
    "\u200d", "\ufeff", "\u202e", "\ue000", "\uffff", "\U0010fffd", "\xa0", "\u3000", " ",
]  # fmt: skip
# Line breaks of every kind, other controls, lone surrogates: refused in one-line text.
BREAKING_PIECES = [
    "\n", "\r\n", "\r", "\t", "\x0b", "\x0c", "\x1c", "\x85", "\x00", "\x7f", "\x9f",
    "\u2028", "\u2029", "\ud83d", "\udc18",
]  # fmt: skip

# Valid one-line text, from all of Unicode but line breaks and controls.
printable = st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"])
one_line = (
    st.lists(
        st.one_of(st.text(printable, min_size=1, max_size=12), st.sampled_from(SAFE_PIECES)),
        min_size=1,
        max_size=4,
    )
    .map(lambda parts: "".join(parts).strip())
    .filter(bool)
)
# Anything at all.
hostile_text = st.lists(
    st.one_of(
        st.sampled_from(SAFE_PIECES + BREAKING_PIECES),
        st.text(st.characters(exclude_categories=()), max_size=4),
    ),
    max_size=6,
).map("".join)

VALID: dict[str, st.SearchStrategy[str]] = {
    "project_name": one_line,
    "package_name": st.from_regex(r"[a-z][a-z0-9_]{0,29}", fullmatch=True),
    "distribution_name": st.from_regex(r"[a-z0-9]([a-z0-9._-]{0,20}[a-z0-9])?", fullmatch=True),
    "class_name": st.from_regex(r"[A-Z][a-z][A-Za-z0-9]{0,28}", fullmatch=True),
    "schema_name": st.from_regex(r"[a-z_][a-z0-9_]{0,62}", fullmatch=True),
    "description": one_line,
    "author_name": one_line,
    "author_email": st.from_regex(EMAIL, fullmatch=True),
    "python_min": st.sampled_from(CONFIG["python_min"]["choices"]),
    "license": st.sampled_from(["MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary"]),
    "copyright_year": st.from_regex(r"[0-9]{4}(-[0-9]{4})?", fullmatch=True),
    "repository_url": st.from_regex(REPOSITORY_URL, fullmatch=True).filter(
        lambda url: not url.endswith(".git")
    ),
    "publish_to": st.one_of(st.just("pypi"), st.from_regex(UPLOAD_URL, fullmatch=True)),
}

# Answers at, or just over, the edge of each rule.
EDGES: dict[str, list[str]] = {
    "package_name": ["a", "match", "lib_", "none", "record", "pg_x", "order", "json", "yaml",
                     "pre_commit", "_x", "__main__", "class", "None", "p" * 31, "pydantic_core",
                     "profiling"],
    "distribution_name": ["pgdbm", "PGDBM", "pytest_asyncio", "pydantic.core", "pre--commit",
                          "a", "d" * 60, "d" * 61, "1", "x.y", "-x"],
    "class_name": ["None", "True", "False", "ValueError", "Ellipsis", "Record", "API",
                   "ALibrary", "A1", "AB", "Health", "DualModeLibrary", "L" + "o" * 30],
    "schema_name": ["select", "user", "order", "int", "json_table", "public", "pg_x",
                    "information_schema", "data", "_", "s" * 63, "x" * 64],
    "author_name": ["Acme  Team", "Acme \xa0Team", "Acme\u3000Team", "Acme\u3000\u3000Team"],
    "author_email": ['a"b@c.d', "a@b", "o'neil+x@acme.example", "{{x}}@a.b", "a..b@c.d",
                     "jörg@c.d", "a@b.c ", "@c.d", "a@b-.c"],
    "python_min": ["3.9", "3.14"],
    "license": ["GPL-3.0", "mit"],
    "copyright_year": ["26", "\uff12\uff10\uff12\uff16"],  # fullwidth digits
    "repository_url": ["https://github.com/a/b.git", "https://github.com/a/b/", "http://x.y/a",
                       "https://GitHub.com/a/b", "https://github.com", "https://x.y/a b",
                       "https://x.y/a?b=1", "https://x/a", "https://x.y/.a", "gh:a/b"],
    "publish_to": ["PyPI", "pypi ", "testpypi", "https://x.y/legacy/", "http://x.y/",
                   "https://x.y/?a=1", "https://x.y/a b", "https://Upload.x.y/"],
}  # fmt: skip


FREE_TEXT = {"project_name", "description", "author_name"}
ODD_SPACES = [" ", "\xa0", "\u3000", "\u2003"]


def adversarial(question: str) -> st.SearchStrategy[str]:
    """Anything at all, or a valid answer spoilt in one way that a rule must catch."""
    near_misses: list[st.SearchStrategy[str]] = [
        VALID[question].map(lambda value: value + "\n"),  # `$` would match before it
        st.sampled_from(EDGES.get(question, SAFE_PIECES)),
    ]
    if question in FREE_TEXT:
        near_misses += [
            st.tuples(VALID[question], st.sampled_from(BREAKING_PIECES), VALID[question]).map(
                "".join
            ),
            st.tuples(st.sampled_from(ODD_SPACES), VALID[question]).map("".join),
            st.tuples(VALID[question], st.sampled_from(ODD_SPACES)).map("".join),
            st.tuples(
                VALID[question],
                st.lists(st.sampled_from(ODD_SPACES), min_size=1, max_size=2),
                VALID[question],
            ).map(lambda parts: parts[0] + "".join(parts[1]) + parts[2]),
        ]
    return st.one_of(hostile_text, *near_misses)


@st.composite
def answer_sets(draw: st.DrawFn) -> dict[str, str]:
    """Each question answered validly or left to its default; in five examples out of six,
    one question (sometimes two or three) answered adversarially."""
    answers = {question: draw(VALID[question]) for question in ORDER if draw(st.booleans())}
    spoilt = draw(st.sampled_from([0, 1, 1, 1, 2, 3]))
    for question in draw(st.lists(st.sampled_from(ORDER), min_size=spoilt, max_size=spoilt)):
        answers[question] = draw(adversarial(question))
    return answers


# ------------------------------------------------------------------------ the checks


def markdown_text(source: str, kind: str) -> str:
    """The rendered text of the first ``kind`` block ("heading" or "paragraph")."""
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(source)
    for index, token in enumerate(tokens):
        if token.type == f"{kind}_open":
            children = tokens[index + 1].children or []
            assert [child.type for child in children] == ["text"], children
            return children[0].content
    raise AssertionError(f"no {kind} in the README")


@contextlib.contextmanager
def imported(src: Path, name: str) -> Iterator[ModuleType]:
    """Import package ``name`` from ``src``, then forget it (and restore a namesake)."""

    def own(module: str) -> bool:
        return module == name or module.startswith(f"{name}.")

    saved = {module: sys.modules.pop(module) for module in list(sys.modules) if own(module)}
    sys.path.insert(0, str(src))
    importlib.invalidate_caches()
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(src))
        for module in [module for module in sys.modules if own(module)]:
            del sys.modules[module]
        sys.modules.update(saved)


_compiled_sources: set[bytes] = set()


def check_project(project: Path, provided: dict[str, str]) -> None:
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    for question, value in provided.items():
        if question != "copyright_year" or answers["license"] != "Proprietary":
            assert answers[question] == value, question

    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert meta["name"] == answers["distribution_name"]
    assert meta["description"] == answers["description"]
    assert meta["authors"] == [{"name": answers["author_name"], "email": answers["author_email"]}]
    assert meta["urls"]["Source"] == answers["repository_url"]

    readme = (project / "README.md").read_text(encoding="utf-8")
    assert markdown_text(readme, "heading") == answers["project_name"]
    assert markdown_text(readme, "paragraph") == answers["description"]
    if answers["license"] in {"MIT", "BSD-3-Clause"}:
        license_text = (project / "LICENSE").read_text(encoding="utf-8")
        assert answers["author_name"] in license_text.splitlines()[2]

    for path in project.rglob("*.py"):
        source = path.read_bytes()
        if source not in _compiled_sources:  # most files are copied verbatim: the same every time
            compile(source, str(path), "exec")
            _compiled_sources.add(source)

    package, class_name = answers["package_name"], answers["class_name"]
    with imported(project / "src", package) as module:
        assert Path(str(module.__file__)).is_relative_to(project / "src" / package)
        library = getattr(module, class_name)
        assert inspect.isclass(library)
        assert library.__name__ == class_name
        assert class_name in module.__all__

    with tempfile.TemporaryDirectory() as out, contextlib.chdir(project):
        wheel = Path(out) / build_wheel(out)
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            metadata_file = next(n for n in names if n.endswith(".dist-info/METADATA"))
            raw = archive.read(metadata_file)
    assert f"{package}/__init__.py" in names
    metadata = Metadata.from_email(raw, validate=True)
    assert metadata.summary == answers["description"]
    # Parsed the way mail software reads an address list.
    header = email.policy.default.header_factory("To", metadata.author_email or "")
    (address,) = header.addresses
    assert (address.display_name, address.addr_spec) == (
        answers["author_name"],
        answers["author_email"],
    )


# ------------------------------------------------------------------------- the property

outcomes = {"generated": 0, "refused": 0}


@pytest.fixture(scope="module", autouse=True)
def _report_outcomes() -> Iterator[None]:
    started = time.monotonic()
    yield
    print(
        f"\nhostile answers: {outcomes['generated'] + outcomes['refused']} examples, "
        f"{outcomes['generated']} generated, {outcomes['refused']} refused, "
        f"{time.monotonic() - started:.0f} s"
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(answers=answer_sets())
def test_any_answers_are_refused_cleanly_or_give_a_working_project(
    template: Path, answers: dict[str, str]
) -> None:
    """Refused: by the first question whose rule the answer breaks, nothing written.
    Accepted: TOML, YAML and Markdown hold the text as given, every Python file compiles,
    the package imports with its class, and hatchling builds a wheel with valid metadata."""
    expected = first_refused(answers)
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "project"
        dst.mkdir()
        (dst / "keep.txt").write_text("the user's own file")
        try:
            render(template, dst, answers)
        except ValueError as error:
            message = str(error)
            assert expected is not None, f"refused valid answers: {message}"
            assert message.startswith(
                (
                    f"Validation error for question '{expected}': ",
                    f"Invalid choice for '{expected}'",
                )
            ), message
            assert [p.name for p in dst.iterdir()] == ["keep.txt"]
            assert (dst / "keep.txt").read_text() == "the user's own file"
            outcomes["refused"] += 1
            return
        assert expected is None, f"accepted an answer to {expected}: {answers[expected]!r}"
        check_project(dst, answers)
        outcomes["generated"] += 1
