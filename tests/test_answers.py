"""Every kind of bad answer is refused by a validator whose message says what is allowed;
every default derived from an earlier answer is itself a valid answer."""

from __future__ import annotations

import ast
import builtins
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mypy
import pytest
import trove_classifiers
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from tests.support import (
    CUSTOM_ANSWERS,
    PYTHON_FLOORS,
    PYTHON_NEWEST,
    UV,
    computed_names,
    computed_set,
    render,
    subprocess_env,
    template_config,
)

BAD_ANSWERS: list[tuple[str, Any, str]] = [
    ("project_name", "   ", "project_name must not be empty"),
    ("project_name", "Acme\nOrders", r"line breaks .*for example Acme Orders; found '\\n'"),
    ("project_name", "Acme Orders\n", r"found '\\n' in 'Acme Orders\\n'"),
    ("project_name", "Acme\tOrders", r"found '\\t'"),
    ("project_name", "Acme\u2028Orders", r"found '\\u2028'"),
    ("project_name", "Acme\x85Orders", r"found '\\x85'"),
    ("project_name", "Acme\ud83dOrders", r"found '\\ud83d'"),
    ("project_name", " Acme Orders", "whitespace \\(for example 'Acme Orders'\\); got ' Acme"),
    ("project_name", "Acme Orders\u3000", "must not start or end with whitespace"),
    ("package_name", "AcmeLedger", "must be a lowercase Python identifier"),
    ("package_name", "acme-ledger", "must be a lowercase Python identifier"),
    ("package_name", "2fast", "not starting with a digit"),
    ("package_name", "_private", "starting with a letter"),
    ("package_name", "__main__", "starting with a letter"),
    ("package_name", "", "must be a lowercase Python identifier"),
    ("package_name", "lib\n", r"got 'lib\\n'"),
    ("package_name", "p" * 31, "at most 30 characters"),
    ("package_name", "class", "'class' is a Python keyword"),
    ("package_name", "async", "'async' is a Python keyword"),
    ("package_name", "json", "'json' would shadow a module the generated project imports"),
    ("package_name", "asyncio", "'asyncio' would shadow a module"),
    ("package_name", "pgdbm", "'pgdbm' would shadow a module"),
    ("package_name", "asyncpg", "'asyncpg' would shadow a module"),
    ("package_name", "pytest", "'pytest' would shadow a module"),
    ("package_name", "tests", "'tests' would shadow a module"),
    ("package_name", "sitecustomize", "'sitecustomize' would shadow a module"),
    ("package_name", "usercustomize", "'usercustomize' would shadow a module"),
    ("package_name", "con", "'con' is a Windows device name"),
    ("package_name", "lpt9", "'lpt9' is a Windows device name"),
    ("package_name", "yaml", "'yaml' would shadow a module"),
    ("distribution_name", "Acme Ledger", "must be a lowercase PEP 508 name"),
    ("distribution_name", "-acme", "starting and ending with a letter or digit"),
    ("distribution_name", "acme-", "starting and ending with a letter or digit"),
    ("distribution_name", "acme\n", r"got 'acme\\n'"),
    ("distribution_name", "d" * 61, "at most 60 characters"),
    ("distribution_name", "pgdbm", "'pgdbm' is, once normalized .* a package the generated"),
    ("distribution_name", "pytest-asyncio", "requires its own name"),
    ("distribution_name", "pytest_asyncio", "'pytest-asyncio'.*example pytest-asyncio-store"),
    ("distribution_name", "pydantic.core", r"PEP 503: 'pydantic-core'"),
    ("distribution_name", "pre--commit", r"PEP 503: 'pre-commit'"),
    ("distribution_name", "pyyaml", "for example pyyaml-store"),
    ("class_name", "ledgerStore", "must be a CapWords identifier"),
    ("class_name", "Ledger_Store", "must be a CapWords identifier"),
    ("class_name", "API", "not API"),
    ("class_name", "LedgerStore\n", r"got 'LedgerStore\\n'"),
    ("class_name", "L" + "o" * 30, "at most 30 characters"),
    ("class_name", "None", "'None' is a Python keyword"),
    ("class_name", "True", "'True' is a Python keyword"),
    ("class_name", "False", "'False' is a Python keyword"),
    ("class_name", "ValueError", "'ValueError' is a Python built-in name"),
    ("class_name", "Exception", "is a Python built-in name"),
    ("class_name", "Record", "'Record' clashes with a name the generated core module already uses"),
    ("class_name", "AsyncDatabaseManager", "clashes with a name"),
    ("schema_name", "Ledger", r"must match \^\[a-z_\]\[a-z0-9_\]\{0,62\}\$"),
    ("schema_name", "ledger-data", "lowercase letters, digits and"),
    ("schema_name", "9ledger", "not starting with a digit"),
    ("schema_name", "x" * 64, "1 to 63 characters"),
    ("schema_name", "ledger\n", r"got 'ledger\\n'"),
    ("schema_name", "pg_ledger", "must not start with 'pg_'.*for example ledger_data"),
    ("schema_name", "public", "must not be 'public'"),
    ("schema_name", "information_schema", "must not be 'information_schema'"),
    ("schema_name", "select", "'select' is a reserved keyword in PostgreSQL 15 or 18"),
    ("schema_name", "user", "'user' is a reserved keyword.*for example user_data"),
    ("schema_name", "order", "'order' is a reserved keyword"),
    ("schema_name", "authorization", "reserved keyword"),  # T: type/function names only
    ("schema_name", "int", "reserved keyword"),  # C: no type/function name
    ("schema_name", "json_table", "reserved keyword"),  # a keyword since PostgreSQL 17
    ("description", "", "description must not be empty"),
    ("description", "One line.\nAnd another.", r"found '\\n'"),
    ("description", "Orders\r", r"found '\\r'"),
    ("description", "Orders\x00", r"found '\\x00'"),
    ("description", "Orders ", "must not start or end with whitespace"),
    ("author_name", "", "author_name must not be empty"),
    ("author_name", "Acme\nTeam", r"found '\\n'"),
    ("author_name", "O'Neil\n", r'''found '\\n' in "O'Neil\\n"'''),
    ("author_name", "\u00a0Acme", r"must not start or end with whitespace .*got '\\xa0Acme'"),
    ("author_name", "Acme  Team", r"two whitespace .*for example 'Acme Team'.*got 'Acme  Team'"),
    ("author_name", "Acme \u3000Team", r"in a row.*got 'Acme \\u3000Team'"),
    ("author_email", "not-an-email", "must look like name@example.com"),
    ("author_email", 'a"b@c.d', "got 'a\"b@c.d'"),
    ("author_email", "a b@c.d", "must look like name@example.com"),
    ("author_email", "a..b@c.d", "must look like name@example.com"),
    ("author_email", ".a@c.d", "must look like name@example.com"),
    ("author_email", "a@c.d\n", r"got 'a@c.d\\n'"),
    ("author_email", "a@localhost", "a domain with a dot"),
    ("author_email", "a@-c.d", "must look like name@example.com"),
    ("author_email", "a@c..d", "must look like name@example.com"),
    ("author_email", "jörg@c.d", "an ASCII address"),
    ("copyright_year", "26", "must be a year like 2026"),
    ("copyright_year", "2026\n", r"got '2026\\n'"),
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
    if "choices" in template_config()[question]:
        assert str(error.value).startswith(f"Invalid choice for '{question}'")
    else:
        # Copier names the question, and so do the validator's own words (prompts show those).
        prefix = f"Validation error for question '{question}': "
        assert str(error.value).startswith(prefix + question)
    assert [p.name for p in dst.iterdir()] == ["keep.txt"]
    assert (dst / "keep.txt").read_text() == "the user's own file"


COMPUTED = sorted(computed_names())


@pytest.mark.parametrize("name", COMPUTED)
def test_a_computed_value_cannot_be_set(template: Path, tmp_path: Path, name: str) -> None:
    """`--data python_keywords=[]` would let `class` through as a package name: refused,
    nothing written, whatever the value (even the default itself). The values above the
    questions are refused before the package name `class` is; those computed from answers
    (below them) are set with valid answers."""
    assert len(COMPUTED) >= 8
    spec = template_config()[name]
    other: list[str] | str = [] if spec["type"] == "json" else "[x]"
    order = list(template_config())
    answers = {"package_name": "class"} if order.index(name) < order.index("package_name") else {}
    dst = tmp_path / "project"
    dst.mkdir()
    # A default that Jinja computes from the answers is no value one could pass as such.
    literal_default = [] if "{%" in spec["default"] else [spec["default"]]
    for value in (other, *literal_default):
        with pytest.raises(ValueError, match="it is not a question and cannot be set") as error:
            render(template, dst, {name: value, **answers})
        assert str(error.value).startswith(f"Validation error for question '{name}': computed")
        assert [p.name for p in dst.iterdir()] == []


GOOD_ANSWERS: list[tuple[str, str]] = [
    ("project_name", "Elephant 🐘 Store"),
    ("project_name", 'Ledger "Pro" \\ {{ not_jinja }} {% raw %} # *x* <b>'),
    ("package_name", "a"),
    ("package_name", "match"),  # a soft keyword is an identifier
    ("package_name", "acme_"),
    ("distribution_name", "acme.orders_db"),
    ("distribution_name", "d" * 60),
    ("class_name", "ALibrary"),
    ("class_name", "HTTPClient"),
    ("class_name", "A1"),
    ("schema_name", "_ledger"),
    ("schema_name", "data"),  # an unreserved keyword is a plain identifier
    ("schema_name", "s" * 63),
    ("description", "Ünïcödé, “quotes”, 'single', \\backslash\\ and 🐘 in one line"),
    ("author_name", 'Dr. "Q" \\ Jörg, Jr. 🐘'),
    ("author_email", "o'neil+orders@mail.acme-corp.example"),
    ("author_email", "a.b_c-d@x.io"),
    ("copyright_year", "2024-2026"),
]


@pytest.mark.parametrize(
    ("question", "answer"), GOOD_ANSWERS, ids=[f"{q}={a!r}"[:60] for q, a in GOOD_ANSWERS]
)
def test_good_answer_is_accepted_and_recorded(
    generate: Callable[..., Path], question: str, answer: str
) -> None:
    """Answers at the edges of each rule are accepted and stored as given."""
    project = generate({question: answer})
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())[question] == answer


# project_name -> the package, distribution, class and schema names derived from it.
DERIVED: list[tuple[str, tuple[str, str, str, str]]] = [
    ("My Library", ("my_library", "my-library", "MyLibrary", "my_library")),
    ("A Library", ("a_library", "a-library", "ALibrary", "a_library")),
    ("Elephant 🐘 Store", ("elephant_store", "elephant-store", "ElephantStore", "elephant_store")),
    ("🐘", ("library", "library", "Library", "library")),
    ("3D Models", ("lib_3d_models", "lib-3d-models", "Lib3dModels", "lib_3d_models")),
    ("__Acme__", ("acme", "acme", "Acme", "acme")),
    ("JSON", ("json_lib", "json-lib", "JsonLib", "json_lib")),
    ("For", ("for_lib", "for-lib", "ForLib", "for_lib")),
    ("None", ("none", "none", "NoneLib", "none_data")),
    ("A", ("a", "a", "ALib", "a")),
    ("A B", ("a_b", "a-b", "ABLib", "a_b")),
    ("Record", ("record", "record", "RecordLib", "record")),
    ("Value Error", ("value_error", "value-error", "ValueErrorLib", "value_error")),
    ("Order", ("order", "order", "Order", "order_data")),
    ("User", ("user", "user", "User", "user_data")),
    ("Public", ("public", "public", "Public", "public_data")),
    ("PG Stats", ("pg_stats", "pg-stats", "PgStats", "lib_pg_stats")),
    ("PyYAML", ("pyyaml", "pyyaml-lib", "Pyyaml", "pyyaml")),
    (
        "Sitecustomize",
        ("sitecustomize_lib", "sitecustomize-lib", "SitecustomizeLib", "sitecustomize_lib"),
    ),
    ("CON", ("con_lib", "con-lib", "ConLib", "con_lib")),
    # The class default avoids the names the FastAPI variant's api.py binds, too.
    ("New Record", ("new_record", "new-record", "NewRecordLib", "new_record")),
    ("Field", ("field", "field", "FieldLib", "field")),
    (
        "Pydantic Core",
        ("pydantic_core_lib", "pydantic-core-lib", "PydanticCoreLib", "pydantic_core_lib"),
    ),
    (
        "The Extraordinarily Long Project Name",
        (
            "the_extraordinarily_long_proje",
            "the-extraordinarily-long-proje",
            "TheExtraordinarilyLongProje",
            "the_extraordinarily_long_proje",
        ),
    ),
    (
        "A" + "a" * 28 + "_ x",  # cut at 30 characters, then the trailing underscore dropped
        ("a" * 29, "a" * 29, "A" + "a" * 28, "a" * 29),
    ),
]


@pytest.mark.parametrize(("project_name", "expected"), DERIVED, ids=[p for p, _ in DERIVED])
def test_derived_defaults_are_valid_answers(
    generate: Callable[..., Path], project_name: str, expected: tuple[str, str, str, str]
) -> None:
    """A user who answers only the project name (or nothing: --defaults) is never refused."""
    project = generate({"project_name": project_name})
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    names = ("package_name", "distribution_name", "class_name", "schema_name")
    assert tuple(answers[name] for name in names) == expected
    description = f"{project_name}: a dual-mode PostgreSQL library built on pgdbm"
    assert answers["description"] == description


TYPED: list[tuple[str, tuple[str, str, str]]] = [
    ("a_b", ("a-b", "ABLib", "a_b")),
    ("none", ("none", "NoneLib", "none_data")),
    ("exception", ("exception", "ExceptionLib", "exception")),
    ("pg_", ("pg", "Pg", "lib_pg_")),
    ("pyyaml", ("pyyaml-lib", "Pyyaml", "pyyaml")),
    ("information_schema", ("information-schema", "InformationSchema", "information_schema_data")),
    ("acme__orders_", ("acme-orders", "AcmeOrders", "acme__orders_")),
    (
        "a_b_c_d_e_f_g_h_i_j_k_l_m_n_o",
        ("a-b-c-d-e-f-g-h-i-j-k-l-m-n-o", "ABCDEFGHIJKLMNOLib", "a_b_c_d_e_f_g_h_i_j_k_l_m_n_o"),
    ),
]


@pytest.mark.parametrize(("package_name", "expected"), TYPED, ids=[p for p, _ in TYPED])
def test_names_derived_from_a_typed_package_name_are_valid(
    generate: Callable[..., Path], package_name: str, expected: tuple[str, str, str]
) -> None:
    """Whatever valid package name is typed, the names derived from it are valid answers."""
    answers = yaml.safe_load(
        (generate({"package_name": package_name}) / ".copier-answers.yml").read_text()
    )
    assert (answers["distribution_name"], answers["class_name"], answers["schema_name"]) == expected


def test_every_question_has_a_default_and_help() -> None:
    """`copier copy --defaults` and `copier update --defaults` need a default everywhere."""
    questions = {k: v for k, v in template_config().items() if not k.startswith("_")}
    asked = {k: v for k, v in questions.items() if v.get("when") is not False}
    assert len(asked) >= 10
    for name, spec in questions.items():
        assert "default" in spec, f"question {name} has no default"
    for name, spec in asked.items():
        assert spec.get("help"), f"question {name} has no help text"


def test_every_regex_validator_compares_the_whole_answer() -> None:
    """`$` also matches before a final newline: anchored patterns must end with \\Z."""
    for name, spec in template_config().items():
        validator = spec.get("validator", "") if isinstance(spec, dict) else ""
        for pattern in re.findall(r"regex_search\((['\"])(.*?)\1\)", validator):
            if pattern[1].startswith("^"):
                assert pattern[1].endswith("\\\\Z"), f"{name}: {pattern[1]}"


# ------------------------------------------------------- the lists behind the validators


def test_package_names_refused_cover_this_pythons_stdlib() -> None:
    """Every public module of the running Python's standard library is refused."""
    stdlib = {name for name in sys.stdlib_module_names if not name.startswith("_")}
    assert stdlib - computed_set("reserved_module_names") == set()


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


# Python releases this machine may lack, up to python_newest, are read from the typeshed
# stubs that mypy ships: its VERSIONS file says in which releases each stdlib module exists,
# and builtins.pyi guards what a release added with `sys.version_info >= (3, N)`.
TYPESHED = Path(mypy.__file__).parent / "typeshed" / "stdlib"


def _version_guard(test: ast.expr) -> tuple[int, ...] | None:
    """(3, N) for `sys.version_info >= (3, N)`, else None."""
    if (
        isinstance(test, ast.Compare)
        and ast.unparse(test.left) == "sys.version_info"
        and isinstance(test.ops[0], ast.GtE)
    ):
        return tuple(ast.literal_eval(test.comparators[0]))
    return None


def _typeshed_builtins(newest: tuple[int, ...]) -> tuple[set[str], set[tuple[int, ...]]]:
    """The names builtins.pyi defines for some Python up to ``newest`` (any platform), and
    the releases its guards name."""
    names: set[str] = set()
    guards: set[tuple[int, ...]] = set()

    def visit(body: list[ast.stmt], applies: bool) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef) and applies:
                names.add(node.name)
            elif isinstance(node, ast.AnnAssign | ast.Assign) and applies:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.If):
                since = _version_guard(node.test)
                guards.update([since] if since else [])
                visit(node.body, applies and (since is None or since <= newest))
                visit(node.orelse, applies)

    visit(ast.parse((TYPESHED / "builtins.pyi").read_text()).body, True)
    return names, guards


def test_package_names_refused_cover_the_stdlib_of_every_supported_python() -> None:
    """The same for the oldest floor offered up to python_newest, by typeshed."""
    oldest, newest = _key(PYTHON_FLOORS[0]), _key(PYTHON_NEWEST)
    modules = set()
    for line in (TYPESHED / "VERSIONS").read_text().splitlines():
        name, _, versions = line.split("#")[0].partition(":")
        first, _, last = versions.strip().partition("-")
        if not first or "." in name or name.startswith("_"):
            continue  # a comment, a submodule or a private module
        if _key(first) <= newest and (not last or _key(last) >= oldest):
            modules.add(name.strip())
    assert {"asyncio", "tomllib", "annotationlib", "profiling"} <= modules  # 3.4 to 3.15
    assert modules - computed_set("reserved_module_names") == set()


def test_class_names_refused_cover_the_builtins_of_every_supported_python() -> None:
    """Every capitalized builtin up to python_newest, on any platform, by typeshed."""
    newest = _key(PYTHON_NEWEST)
    names, guards = _typeshed_builtins(newest)
    assert newest in guards, f"mypy's typeshed does not know Python {newest}: upgrade mypy"
    capitalized = {name for name in names if name[:1].isupper()}
    assert {"ValueError", "ExceptionGroup", "PythonFinalizationError"} <= capitalized
    assert capitalized - computed_set("python_builtin_names") == set()


def _final_pythons_uv_knows() -> set[tuple[int, ...]]:
    """(major, minor) of every final CPython release uv can install, from the list built
    into uv (offline: no download, no network)."""
    proc = subprocess.run(
        [UV, "python", "list", "--all-versions", "--only-downloads", "--output-format", "json"],
        env=subprocess_env(UV_OFFLINE="1"), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {
        Version(entry["version"]).release[:2]
        for entry in json.loads(proc.stdout)
        if entry["implementation"] == "cpython" and not Version(entry["version"]).is_prerelease
    }


def test_python_newest_is_the_newest_final_release() -> None:
    """The generated classifiers and CI matrix end at python_newest: it has a final release
    and a trove classifier, the next one has no final release yet (when it has, this fails:
    raise python_newest), and every floor offered is older."""
    released = _final_pythons_uv_knows()
    newest = _key(PYTHON_NEWEST)
    assert newest in released, f"uv knows no final release of {PYTHON_NEWEST}: upgrade uv"
    later = sorted(version for version in released if version > newest)
    names = ", ".join(".".join(map(str, version)) for version in later)
    assert later == [], f"Python {names} released: raise python_newest in copier.yml"
    assert f"Programming Language :: Python :: {PYTHON_NEWEST}" in trove_classifiers.classifiers
    assert all(_key(floor) < newest for floor in PYTHON_FLOORS)
    assert sys.version_info[:2] <= newest


def test_class_names_refused_cover_this_pythons_builtins() -> None:
    """Every capitalized builtin of the running Python is refused as a class name."""
    capitalized = {name for name in dir(builtins) if name[:1].isupper()}
    keywords = {"True", "False", "None"}
    assert capitalized - keywords - computed_set("python_builtin_names") == set()
    assert keywords <= computed_set("python_keywords")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dependency_closure(roots: list[str]) -> tuple[set[str], set[str]]:
    """(normalized distribution names, top-level import names) of ``roots`` and everything
    they require, whatever the platform or Python (installed ones are followed further)."""
    names: set[str] = set()
    modules: set[str] = set()
    by_distribution: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            by_distribution.setdefault(_normalize(dist), set()).add(module)
    pending = [Requirement(root) for root in roots]
    while pending:
        requirement = pending.pop()
        name = _normalize(requirement.name)
        if name in names:
            continue
        names.add(name)
        modules |= by_distribution.get(name, set())
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue  # e.g. tomli, needed on Python 3.10 only: listed by name all the same
        for line in requires:
            child = Requirement(line)
            marker = str(child.marker or "")
            if "extra" in marker and not any(f'"{e}"' in marker for e in requirement.extras):
                continue
            pending.append(child)
    return names, modules


@pytest.fixture(scope="module")
def project_requirements(generate: Callable[..., Path]) -> list[str]:
    """What installing a generated project brings: its dependencies, extras, dependency
    groups, build backend, and the tools every virtual environment has."""
    pyproject = tomllib.loads((generate() / "pyproject.toml").read_text())
    meta = pyproject["project"]
    extras = meta.get("optional-dependencies", {}).values()
    # PEP 735 groups: requirement strings, and {include-group = ...} tables (skipped here).
    groups = pyproject.get("dependency-groups", {}).values()
    return [
        *meta["dependencies"],
        *(requirement for extra in extras for requirement in extra),
        *(item for group in groups for item in group if isinstance(item, str)),
        *pyproject["build-system"]["requires"],
        "pip",
        "setuptools",
        "wheel",
    ]


def test_distribution_names_refused_cover_the_dependency_tree(
    project_requirements: list[str],
) -> None:
    """pip cannot install a project named like one of its own requirements: all refused."""
    names, _ = _dependency_closure(project_requirements)
    assert len(names) > 20
    missing = names - computed_set("reserved_distribution_names")
    assert missing == set(), f"add to reserved_distribution_names in copier.yml: {sorted(missing)}"


def test_package_names_refused_cover_the_dependency_tree(project_requirements: list[str]) -> None:
    """A package named like a module of the project's environment would shadow it."""
    _, modules = _dependency_closure(project_requirements)
    assert {"pgdbm", "asyncpg", "pydantic", "yaml", "pre_commit"} <= modules
    public = {m for m in modules if re.fullmatch(r"[a-z][a-z0-9_]*", m)}
    missing = public - computed_set("reserved_module_names")
    assert missing == set(), f"add to reserved_module_names in copier.yml: {sorted(missing)}"


def test_class_names_refused_cover_the_names_the_generated_modules_bind(
    generate: Callable[..., Path],
) -> None:
    """A class named like something core.py or __init__.py imports or defines would replace it."""
    project = generate(CUSTOM_ANSWERS)
    class_name = CUSTOM_ANSWERS["class_name"]
    bound: set[str] = set()
    for path in (project / "src" / CUSTOM_ANSWERS["package_name"]).rglob("*.py"):
        source = path.read_text()
        if class_name not in source:
            continue
        for node in ast.parse(source).body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                bound.add(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                bound |= {t.id for t in targets if isinstance(t, ast.Name)}
    capitalized = {name for name in bound if name[:1].isupper()} - {class_name}
    assert capitalized, "no module of the package uses the class name"
    missing = (
        capitalized - computed_set("reserved_class_names") - computed_set("python_builtin_names")
    )
    assert missing == set(), f"add to reserved_class_names in copier.yml: {sorted(missing)}"
