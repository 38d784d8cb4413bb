"""The FastAPI option: what it adds, that a plain library has none of it, and that the variant
installs, lints, passes its suite in both modes and hosts two libraries on one pool."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import asyncpg
import pytest

from tests.postgres_server import postgres_url
from tests.support import (
    CUSTOM_ANSWERS,
    PYTHON_FLOORS,
    PYTHON_NEWEST,
    REPO,
    UV,
    Installed,
    computed_set,
    computed_value,
    pip_install,
    python_for,
    python_version,
    render,
    run,
    subprocess_env,
    tree,
)

Install = Callable[[str, dict[str, Any], str], Installed]

FASTAPI = {"with_fastapi": True}
# What the option adds, beside the default files (package my_library).
ADDED_FILES = {
    "src/my_library/api.py",
    "src/my_library/_api.py",
    "tests/api_client.py",
    "tests/test_api.py",
    "tests/test_api_serving.py",
}
TEMPLATE_OWNED = (
    "src/{{ package_name }}/{% if with_fastapi %}_api.py{% endif %}",
    "tests/{% if with_fastapi %}api_client.py{% endif %}",
    "tests/{% if with_fastapi %}test_api_serving.py{% endif %}",
)
WORDS_OF_THE_OPTION = re.compile(r"fastapi|starlette|uvicorn|httpx|schemathesis|asgi", re.I)


def _reserved(kind: str) -> set[str]:
    """One list of copier.yml's ``fastapi_reserved_names`` (modules, distributions, classes)."""
    names: dict[str, list[str]] = computed_value("fastapi_reserved_names")
    return set(names[kind])


def _requirements(pyproject: dict[str, Any]) -> dict[str, list[str]]:
    """Extras and dependency groups by name (the test requirements live in one of the two)."""
    found: dict[str, list[str]] = {}
    for table in (
        pyproject["project"].get("optional-dependencies", {}),
        pyproject.get("dependency-groups", {}),
    ):
        for name, items in table.items():
            found.setdefault(name, []).extend(i for i in items if isinstance(i, str))
    return found


# ---------------------------------------------------------------- rendering


def test_default_project_has_no_fastapi_file_dependency_or_test(
    generate: Callable[..., Path],
) -> None:
    """Without the option (the default) nothing of it is rendered: no module, no dependency,
    no test, no README section; the answers file records the choice."""
    files = tree(generate())
    assert not set(files) & ADDED_FILES
    for path, content in files.items():
        if path == ".copier-answers.yml":
            assert "with_fastapi: false" in content.decode()
            continue
        assert not WORDS_OF_THE_OPTION.search(content.decode()), path
    requirements = _requirements(tomllib.loads(files["pyproject.toml"].decode()))
    assert "api" not in requirements


def test_fastapi_variant_adds_the_api_its_tests_and_nothing_else(
    generate: Callable[..., Path],
) -> None:
    """The option adds api.py, _api.py and three test files; every other file exists in
    both variants, and the template-owned ones are copied verbatim with their marker."""
    plain = tree(generate(name="plain"))
    with_api = tree(generate(FASTAPI, name="fastapi"))
    assert set(with_api) - set(plain) == ADDED_FILES
    assert set(plain) <= set(with_api)
    for owned in TEMPLATE_OWNED:
        source = (REPO / "template" / owned).read_bytes()
        rendered = re.sub(r"\{% if with_fastapi %\}(.*?)\{% endif %\}", r"\1", owned)
        assert with_api[rendered.replace("{{ package_name }}", "my_library")] == source
        assert source.decode().startswith("# Owned by the copier-pgdbm template: `copier update`")
    names = ["PoolOptions", "_api", "_bootstrap", "_cli", "_dualmode", "api", "errors"]
    imports = "".join(f"    {name},\n" for name in names)
    assert f"from my_library import (\n{imports})\n" in with_api["tests/library.py"].decode()


def test_fastapi_variant_declares_the_api_extra_and_the_test_tools(
    generate: Callable[..., Path],
) -> None:
    """`pip install <dist>[api]` brings FastAPI; the test requirements bring the client, the
    lifespan driver, uvicorn and schemathesis, so the plain library depends on none of them."""
    pyproject = tomllib.loads((generate(FASTAPI) / "pyproject.toml").read_text())
    requirements = _requirements(pyproject)
    assert [r for r in requirements["api"] if r.startswith("fastapi")] == ["fastapi>=0.115"]
    assert not any("fastapi" in r for r in pyproject["project"]["dependencies"])
    test = " ".join(requirements["test"])
    for tool in ("fastapi", "httpx", "asgi-lifespan", "uvicorn", "schemathesis", "hypothesis"):
        assert tool in test, tool


def test_readme_documents_the_option_and_the_host_application(
    generate: Callable[..., Path],
) -> None:
    """The generated README says what the option adds, why not to mount the app, and shows
    a host application with two libraries on one pool."""
    readme = (generate({**CUSTOM_ANSWERS, **FASTAPI}) / "README.md").read_text()
    assert "\n## Serving over HTTP (FastAPI)\n" in readme
    assert "\n### Hosting several libraries in one application\n" in readme
    assert 'pip install "acme-ledger-db[api]"' in readme
    assert "never runs its own lifespan" in readme
    assert "acme_ledger.api.create_router()" in readme
    assert "await asyncio.wait_for(pool.close(), 10)" in readme
    assert "api.py` (your routes)" in readme


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"package_name": "httpx"}, "package_name 'httpx' would shadow a module the FastAPI"),
        ({"package_name": "starlette"}, "package_name 'starlette' would shadow"),
        ({"distribution_name": "uvicorn"}, "distribution_name 'uvicorn' is, once normalized"),
        ({"distribution_name": "asgi_lifespan"}, "distribution_name 'asgi_lifespan' is"),
        ({"class_name": "FastAPI"}, "class_name 'FastAPI' clashes with a name api.py binds"),
        ({"class_name": "NewRecord"}, "class_name 'NewRecord' clashes"),
    ],
    ids=[
        "pkg-httpx",
        "pkg-starlette",
        "dist-uvicorn",
        "dist-asgi-lifespan",
        "class-fastapi",
        "class-newrecord",
    ],
)
def test_names_the_fastapi_variant_takes_are_refused_with_it(
    template: Path, tmp_path: Path, answers: dict[str, Any], message: str
) -> None:
    """With the option, names of what it installs or binds are refused, saying which."""
    with pytest.raises(ValueError, match=re.escape(message)):
        render(template, tmp_path / "refused", {**answers, **FASTAPI})
    assert not (tmp_path / "refused" / "pyproject.toml").exists()
    render(template, tmp_path / "accepted", answers)  # without the option they are fine


def test_class_names_refused_cover_what_api_py_binds(generate: Callable[..., Path]) -> None:
    """A class named like a module-level name of api.py would replace it there."""
    project = generate({**CUSTOM_ANSWERS, **FASTAPI})
    source = (project / "src/acme_ledger/api.py").read_text()
    bound: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            bound.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
    capitalized = {n for n in bound if n[:1].isupper() and not n.isupper()} - {"LedgerStore"}
    missing = (
        capitalized
        - _reserved("classes")
        - computed_set("reserved_class_names")
        - computed_set("python_builtin_names")
    )
    assert missing == set(), f"add to fastapi_reserved_names.classes in copier.yml: {missing}"


LINT_VARIANTS: dict[str, dict[str, Any]] = {
    # ruff's pyupgrade rules follow python_min: each floor (the custom answers have theirs).
    **{
        f"python{version}": {"python_min": version}
        for version in PYTHON_FLOORS
        if version != CUSTOM_ANSWERS["python_min"]
    },
    "custom": CUSTOM_ANSWERS,
    "longest_names": {
        "package_name": "p" * 30,
        "class_name": "L" + "o" * 29,
        "schema_name": "s" * 63,
        "distribution_name": "d" * 60,
    },
    "shortest_names": {"package_name": "q", "class_name": "Qq", "schema_name": "q"},
    # The default names of a project named "🐘": a class called Library.
    "class_library": {"project_name": "\N{ELEPHANT}"},
}


@pytest.mark.parametrize("variant", LINT_VARIANTS)
def test_fastapi_variant_is_ruff_clean_for_any_names(
    generate: Callable[..., Path], variant: str
) -> None:
    """api.py and the API tests pass ruff check and ruff format for short and long names and
    on each floor (mypy --strict runs in the installed variant below)."""
    project = generate({**LINT_VARIANTS[variant], **FASTAPI}, name=f"fastapi-{variant}")
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=project,
            env=subprocess_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"ruff {command[0]}:\n{proc.stdout}\n{proc.stderr}"


# ---------------------------------------------------------------- installed: suite and lint


# Installed on the oldest floor offered, whose FastAPI and schemathesis are the oldest releases.
OLDEST_FLOOR = PYTHON_FLOORS[0]
INSTALLED = {**FASTAPI, "python_min": OLDEST_FLOOR}
PYTHON = python_for(OLDEST_FLOOR)
MIN_API_TESTS_PER_MODE = 12


def _installed(install: Install) -> Installed:
    if PYTHON is None:
        pytest.skip(f"no Python {OLDEST_FLOOR} or newer")
    return install("fastapi", INSTALLED, PYTHON)


def suite_beyond_the_defaults(project: Path, defaults: Path) -> tuple[str, ...]:
    """The test files of the FastAPI variant ``project`` that the default project
    ``defaults`` lacks: against a server of TEST_DATABASE_URL, the rest of its suite is the
    defaults', which the default variant's suite runs there too. Only when every file they
    share under src/ and tests/ (code, migrations, fixtures) is the same byte for byte, and
    so are pytest's and coverage's settings; ``tests/library.py`` may only list the API's
    modules besides. Otherwise () for the whole suite: then what it runs differs."""
    ours, theirs = _suite_files(project), _suite_files(defaults)
    differ = {f for f in ours.keys() & theirs.keys() if ours[f] != theirs[f]}
    library = "tests/library.py"
    if library in differ:
        mine = [line for line in ours[library].decode().splitlines() if "api" not in line]
        if mine == theirs[library].decode().splitlines():
            differ.remove(library)
    if differ:
        return ()
    own = {f for f in ours.keys() - theirs.keys() if f.startswith("tests/test_")}
    return tuple(sorted(own))


def _suite_files(project: Path) -> dict[str, bytes]:
    """What a suite run depends on, but the dependencies: src/ and tests/, and the tool
    settings that pytest and coverage read from pyproject.toml."""
    files = {f: c for f, c in tree(project).items() if f.startswith(("src/", "tests/"))}
    tool = tomllib.loads((project / "pyproject.toml").read_text())["tool"]
    settings = {name: tool.get(name) for name in ("pytest", "coverage")}
    files["pyproject.toml [tool.pytest] [tool.coverage]"] = json.dumps(settings).encode()
    return files


def test_suite_beyond_the_defaults_is_the_api_tests_until_a_shared_file_differs(
    generate: Callable[..., Path], tmp_path: Path
) -> None:
    """Only the API tests while the rest is the defaults', and the whole suite once code, a
    migration or pytest's settings differ: the defaults' suite no longer runs that."""
    defaults = generate(name="defaults")
    project = generate(INSTALLED, name="fastapi-oldest")
    assert suite_beyond_the_defaults(project, defaults) == tuple(
        sorted(f for f in ADDED_FILES if f.startswith("tests/test_"))
    )
    migration = next((project / "src" / "my_library" / "migrations").glob("*.sql"))
    for changed_file, addition in (
        ("src/my_library/core.py", "# a line the defaults do not have\n"),
        (f"src/my_library/migrations/{migration.name}", "-- nor this one\n"),
        ("tests/library.py", "# nor this\n"),
        ("pyproject.toml", '[tool.coverage.html]\ndirectory = "elsewhere"\n'),
    ):
        changed = tmp_path / changed_file.replace("/", "_")
        shutil.copytree(project, changed)
        with (changed / changed_file).open("a") as file:
            file.write(addition)
        assert suite_beyond_the_defaults(changed, defaults) == (), changed_file


@pytest.mark.generated_suite
def test_fastapi_variant_suite_passes_in_both_modes(
    install: Install, generate: Callable[..., Path], tmp_path: Path
) -> None:
    """The variant's whole suite passes, the API tests in both modes among it: routes,
    lifespans, mounts, errors, a real uvicorn server and the OpenAPI property run. Against
    TEST_DATABASE_URL, the API tests (suite_beyond_the_defaults)."""
    project = _installed(install)
    server_tests: tuple[str, ...] = ()
    if os.environ.get("TEST_DATABASE_URL"):
        server_tests = suite_beyond_the_defaults(project.path, generate(name="defaults"))
    started = time.monotonic()
    report, coverage = project.run_suite_as_ci(tmp_path / "junit.xml", server_tests=server_tests)
    took = time.monotonic() - started
    assert report.failed == []
    assert report.skipped == []
    for mode in ("standalone", "shared"):
        api_tests = [n for n in report.passed_in_mode(mode) if ".test_api" in n]
        assert len(api_tests) >= MIN_API_TESTS_PER_MODE, report.passed
        for expected in (
            "test_openapi_schema_holds_for_generated_requests",
            "test_uvicorn_serves_on_an_ephemeral_port_and_stops_cleanly",
            "test_router_in_a_host_app_whose_lifespan_owns_the_library",
            "test_create_app_lifespan_initializes_and_closes_only_what_it_owns",
        ):
            assert any(f"{expected}[{mode}]" in n for n in api_tests), (expected, mode)
    # A mounted create_app: standalone it refuses (500 naming the fix), embedded it starts.
    for expected in (
        "test_mounted_standalone_create_app_answers_500_naming_the_fix",
        "test_mounted_create_app_on_a_host_pool_starts_on_its_first_request",
        "test_mounted_create_app_on_a_host_pool_reports_a_failed_start_as_json",
    ):
        assert any(n.endswith(f"::{expected}") for n in report.passed), expected
    version = python_version(project.python)
    print(
        f"\nfastapi variant (Python {version}): {len(report.passed)} passed in {took:.1f} s,"
        f" {coverage}"
    )


@pytest.mark.generated_suite
def test_fastapi_variant_lints_with_its_own_tools(install: Install) -> None:
    """ruff and mypy --strict, with FastAPI, httpx, uvicorn and schemathesis installed, on
    the floor and against the newest Python's stubs (what it removed fails here first)."""
    project = _installed(install)
    project.run(project.bin / "ruff", "check", "--no-cache", ".")
    project.run(project.bin / "ruff", "format", "--check", "--no-cache", ".")
    project.run(project.bin / "mypy")
    project.run(project.bin / "mypy", "--python-version", PYTHON_NEWEST)


FIND_NAMES = """
import importlib.metadata as md, json, re, sys
from packaging.requirements import Requirement

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def top_level(dist):
    names = set((dist.read_text("top_level.txt") or "").split())
    for file in dist.files or []:
        if len(file.parts) > 1 and file.parts[0].isidentifier():
            names.add(file.parts[0])
        elif len(file.parts) == 1 and file.suffix in (".py", ".so"):
            names.add(file.name.split(".")[0])
    return names

everything = {norm(d.metadata["Name"]): top_level(d) for d in md.distributions()}
# Distributions that a newer Python (sys.argv[2]) installs and this one does not.
newest = {"python_version": sys.argv[2], "python_full_version": sys.argv[2] + ".0"}
newer_only = sorted(
    f"{d.metadata['Name']}: {line}"
    for d in md.distributions()
    for line in d.requires or []
    if norm(Requirement(line).name) not in everything
    and (marker := Requirement(line).marker) is not None
    and any(
        marker.evaluate({**newest, "extra": extra}) and not marker.evaluate({"extra": extra})
        for extra in re.findall(r'extra == "([^"]+)"', str(marker)) or [""]
    )
)
reached, pending = set(), [Requirement(r) for r in json.loads(sys.argv[1])]
while pending:
    requirement = pending.pop()
    name = norm(requirement.name)
    if name in reached or name not in everything:
        continue
    reached.add(name)
    for line in md.distribution(name).requires or []:
        child = Requirement(line)
        marker = str(child.marker or "")
        if "extra" in marker and not any(f'"{e}"' in marker for e in requirement.extras):
            continue
        pending.append(child)
added = {name: sorted(mods) for name, mods in everything.items() if name not in reached}
print(json.dumps({"added": added, "newer_only": newer_only}))
"""


def _plain_requirements(pyproject: dict[str, Any]) -> list[str]:
    """Everything a plain (no FastAPI) project installs, as requirement strings."""
    return [
        *pyproject["project"]["dependencies"],
        *(r for items in _requirements(pyproject).values() for r in items),
        *pyproject["build-system"]["requires"],
        "pip",
        "setuptools",
        "wheel",
    ]


@pytest.mark.generated_suite
def test_names_refused_cover_what_the_fastapi_variant_installs(
    install: Install, generate: Callable[..., Path]
) -> None:
    """Every distribution the installed variant has beyond a plain project's requirements,
    and each of their top-level modules, is refused as a name with the option. They are
    installed on the oldest floor: no requirement of theirs is one that only a newer Python,
    up to python_newest, installs."""
    project = _installed(install)
    plain = tomllib.loads((generate(name="plain-requirements") / "pyproject.toml").read_text())
    roots = json.dumps(_plain_requirements(plain))
    found = json.loads(
        project.run(project.bin / "python", "-c", FIND_NAMES, roots, PYTHON_NEWEST).stdout
    )
    assert found["newer_only"] == [], f"resolve for Python {PYTHON_NEWEST} and add their names"
    added: dict[str, list[str]] = found["added"]
    added.pop("my-library")
    assert "fastapi" in added
    assert "schemathesis" in added
    modules = {m for mods in added.values() for m in mods if re.fullmatch(r"[a-z][a-z0-9_]*", m)}
    missing_dists = (
        set(added) - computed_set("reserved_distribution_names") - _reserved("distributions")
    )
    assert missing_dists == set(), f"add to fastapi_reserved_names.distributions: {missing_dists}"
    missing_modules = modules - computed_set("reserved_module_names") - _reserved("modules")
    assert missing_modules == set(), f"add to fastapi_reserved_names.modules: {missing_modules}"


# ---------------------------------------------------------------- two libraries, one host app


def _readme_host_app(readme: str) -> str:
    """The Python block of the README's "Hosting several libraries" section."""
    section = readme.split("\n### Hosting several libraries in one application\n", 1)[1]
    return section.split("```python\n", 1)[1].split("\n```", 1)[0] + "\n"


@pytest.fixture(scope="module")
def host_database() -> Iterator[str]:
    """A fresh database for the host app on the test server, dropped afterwards."""
    if os.environ.get("TEST_DATABASE_POOL_MODE") == "transaction":
        pytest.skip("the README's host app is written for a direct connection")
    with postgres_url() as server:
        name = f"host_app_{secrets.token_hex(4)}"
        asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
        try:
            yield urlsplit(server)._replace(path=f"/{name}").geturl()
        finally:
            asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(url: str, *statements: str) -> Any:
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        result = None
        for statement in statements:
            result = await conn.fetch(statement)
        return result
    finally:
        await conn.close()


@pytest.fixture
def host_venv() -> Iterator[Path]:
    """Where the host application's environment goes: outside pytest's base directory,
    which a pytest process starting meanwhile may make private."""
    where = Path(tempfile.mkdtemp(prefix="copier-pgdbm-host-app-"))
    yield where / "venv"
    shutil.rmtree(where, ignore_errors=True)


def _wait_for_port(proc: subprocess.Popen[str], lines: list[str]) -> int:
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
        if found:
            return int(found.group(1))
    raise AssertionError("uvicorn did not start:\n" + "".join(lines))


@pytest.mark.generated_suite
def test_two_libraries_serve_as_one_host_app_on_one_pool(
    generate: Callable[..., Path], host_database: str, host_venv: Path, tmp_path: Path
) -> None:
    """The README's host application, executed: two libraries generated with different names,
    one uvicorn process, one shared pool, each library in its own schema; a clean shutdown
    closes the pool once and leaves no connection."""
    first = generate(FASTAPI, name="host-first")
    second = generate(
        {"package_name": "billing", "class_name": "Billing", **FASTAPI}, name="host-second"
    )
    bin_dir = host_venv / "bin"
    run([UV, "venv", "--quiet", "--python", sys.executable, host_venv], cwd=tmp_path)
    pip_install(bin_dir, "-e", f"{first}[api]", "-e", f"{second}[api]", "uvicorn", cwd=tmp_path)
    app_dir = tmp_path / "host"
    app_dir.mkdir()
    (app_dir / "app.py").write_text(_readme_host_app((first / "README.md").read_text()))

    env = subprocess_env(DATABASE_URL=host_database)
    proc = subprocess.Popen(
        [bin_dir / "python", "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", "0"],
        cwd=app_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        port = _wait_for_port(proc, lines)
        base = f"http://127.0.0.1:{port}"
        for prefix in ("/my-library", "/billing"):
            status, health = _http(f"{base}{prefix}/health")
            assert (status, health["ok"]) == (200, True)
        assert _http(f"{base}/my-library/records", {"kind": "order", "data": {"n": 1}})[0] == 201
        assert _http(f"{base}/billing/records", {"kind": "invoice"})[0] == 201
        assert [r["kind"] for r in _http(f"{base}/my-library/records")[1]] == ["order"]
        assert [r["kind"] for r in _http(f"{base}/billing/records")[1]] == ["invoice"]
        paths = _http(f"{base}/openapi.json")[1]["paths"]
        assert {"/my-library/records", "/billing/records"} <= set(paths)
        backends = asyncio.run(
            _admin(
                host_database,
                "SELECT application_name FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
        )
        # One pool (at most its max_connections), and no library opened one of its own:
        # a standalone library would name its connections after its package and schema.
        names = [row["application_name"] for row in backends]
        assert 1 <= len(names) <= 10, names
        assert not [n for n in names if n.startswith(("my_library_", "billing_"))], names
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    output = "".join(lines) + output
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete." in output
    assert "Finished server process" in output
    assert "Traceback" not in output, output
    assert "ERROR" not in output, output
    counts = asyncio.run(_after_shutdown(host_database))
    assert counts == {"mine": 1, "theirs": 1, "left_open": 0}


async def _after_shutdown(url: str) -> dict[str, int]:
    """Rows in each library's schema, and connections still open to the database (their
    backends exit a moment after the pool closes them)."""
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        for _ in range(100):
            left_open = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if left_open == 0:
                break
            await asyncio.sleep(0.05)
        return {
            "mine": await conn.fetchval('SELECT count(*) FROM "my_library".records'),
            "theirs": await conn.fetchval('SELECT count(*) FROM "billing".records'),
            "left_open": left_open,
        }
    finally:
        await conn.close()


def _http(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """GET ``url``, or POST ``body`` as JSON: the status and the decoded JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = Request(url, data=data, headers={"content-type": "application/json"})
    with urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())
