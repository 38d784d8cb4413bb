"""Every kind of bad answer is refused by a validator whose message says what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import render

BAD_ANSWERS: list[tuple[str, Any, str]] = [
    ("project_name", "   ", "project_name must not be empty"),
    ("package_name", "AcmeLedger", "must be a lowercase Python identifier"),
    ("package_name", "acme-ledger", "must be a lowercase Python identifier"),
    ("package_name", "2fast", "not starting with a digit"),
    ("package_name", "", "must be a lowercase Python identifier"),
    ("package_name", "class", "'class' is a Python keyword"),
    ("package_name", "async", "'async' is a Python keyword"),
    ("package_name", "json", "'json' would shadow a module the generated project imports"),
    ("package_name", "asyncio", "'asyncio' would shadow a module"),
    ("package_name", "pgdbm", "'pgdbm' would shadow a module"),
    ("package_name", "asyncpg", "'asyncpg' would shadow a module"),
    ("package_name", "pytest", "'pytest' would shadow a module"),
    ("package_name", "tests", "'tests' would shadow a module"),
    ("distribution_name", "Acme Ledger", "must be a lowercase PEP 508 name"),
    ("distribution_name", "-acme", "starting and ending with a letter or digit"),
    ("distribution_name", "acme-", "starting and ending with a letter or digit"),
    ("class_name", "ledgerStore", "must be a CapWords identifier"),
    ("class_name", "Ledger_Store", "must be a CapWords identifier"),
    ("class_name", "API", "not API"),
    ("class_name", "Record", "'Record' clashes with a name the generated core module already uses"),
    ("class_name", "AsyncDatabaseManager", "clashes with a name"),
    ("schema_name", "Ledger", r"must match \^\[a-z_\]\[a-z0-9_\]\{0,62\}\$"),
    ("schema_name", "ledger-data", "lowercase letters, digits and"),
    ("schema_name", "9ledger", "not starting with a digit"),
    ("schema_name", "x" * 64, "1 to 63 characters"),
    ("schema_name", "pg_ledger", "must not start with 'pg_'"),
    ("schema_name", "public", "must not be 'public'"),
    ("schema_name", "information_schema", "must not be 'information_schema'"),
    ("author_name", "", "author_name must not be empty"),
    ("author_email", "not-an-email", "must look like name@example.com"),
    ("copyright_year", "26", "must be a year like 2026"),
    ("python_min", "3.9", "Invalid choice"),
    ("license", "GPL-3.0", "Invalid choice"),
]


@pytest.mark.parametrize(
    ("question", "answer", "message"),
    BAD_ANSWERS,
    ids=[f"{q}={a!r}"[:60] for q, a, _ in BAD_ANSWERS],
)
def test_bad_answer_is_refused_with_its_rule(
    template: Path, tmp_path: Path, question: str, answer: Any, message: str
) -> None:
    """The validator names the question, the rule and an allowed example; nothing is written."""
    dst = tmp_path / "project"
    dst.mkdir()
    (dst / "keep.txt").write_text("the user's own file")
    with pytest.raises(ValueError, match=message) as error:
        render(template, dst, {question: answer})
    assert question in str(error.value)
    assert [p.name for p in dst.iterdir()] == ["keep.txt"]
    assert (dst / "keep.txt").read_text() == "the user's own file"


def test_every_question_has_a_default_and_help() -> None:
    """`copier copy --defaults` and `copier update --defaults` need a default everywhere."""
    import yaml

    from tests.support import REPO

    config = yaml.safe_load((REPO / "copier.yml").read_text())
    questions = {k: v for k, v in config.items() if not k.startswith("_")}
    asked = {k: v for k, v in questions.items() if v.get("when") is not False}
    assert len(asked) >= 10
    for name, spec in questions.items():
        assert "default" in spec, f"question {name} has no default"
    for name, spec in asked.items():
        assert spec.get("help"), f"question {name} has no help text"
