"""The template repository's own release facts agree with each other."""

from __future__ import annotations

import re
import tomllib

import yaml
from hatchling.metadata.core import ProjectMetadata
from hatchling.plugin.manager import PluginManager
from packaging.requirements import Requirement
from packaging.version import Version

from tests.support import REPO


def _changelog_versions() -> list[Version]:
    text = (REPO / "CHANGELOG.md").read_text()
    return [Version(v) for v in re.findall(r"^## v(\S+)$", text, re.MULTILINE)]


def test_version_comes_from_the_newest_changelog_entry() -> None:
    """pyproject's version is read from CHANGELOG.md, newest entry first, in order."""
    versions = _changelog_versions()
    assert versions == sorted(versions, reverse=True)
    metadata = ProjectMetadata(str(REPO), PluginManager())
    assert Version(metadata.version) == versions[0]


def test_copier_requirement_matches_the_minimum_the_template_declares() -> None:
    """`pip install .` never brings a Copier older than copier.yml's _min_copier_version."""
    config = yaml.safe_load((REPO / "copier.yml").read_text())
    minimum = Version(config["_min_copier_version"])
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (copier,) = [Requirement(r) for r in project["dependencies"] if r.startswith("copier")]
    floor = min(Version(s.version) for s in copier.specifier if s.operator == ">=")
    assert floor == minimum


def test_migrations_only_name_released_versions() -> None:
    """Every _migrations entry is for a version the CHANGELOG describes."""
    config = yaml.safe_load((REPO / "copier.yml").read_text())
    released = set(_changelog_versions())
    for migration in config["_migrations"]:
        assert Version(migration["version"].lstrip("v")) in released, migration
