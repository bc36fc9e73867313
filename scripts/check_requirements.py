#!/usr/bin/env python3
"""Fail when requirements.txt (Heroku) and pyproject.toml disagree.

Every runtime dependency of pyproject.toml must be pinned (``==``) in requirements.txt at a version
its specifier allows, and requirements.txt must end by installing the app itself (``.``) so the
``mi-bridge`` console script exists. Usage: check_requirements.py [PYPROJECT] [REQUIREMENTS].
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def pins(requirements: Path) -> tuple[dict[str, Version], list[str]]:
    """Pinned versions by canonical name, and the lines that are not pins."""
    pinned: dict[str, Version] = {}
    others: list[str] = []
    for raw in requirements.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "==" in line:
            name, _, version = line.partition("==")
            pinned[canonicalize_name(name.split("[")[0])] = Version(version.strip())
        else:
            others.append(line)
    return pinned, others


def problems(pyproject: Path, requirements: Path) -> list[str]:
    """Every disagreement, as readable lines (empty when they agree)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    pinned, others = pins(requirements)
    found = []
    for text in project["dependencies"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name not in pinned:
            found.append(f"{requirement.name}: in pyproject.toml, not pinned in requirements.txt")
        elif not requirement.specifier.contains(pinned[name], prereleases=True):
            found.append(
                f"{requirement.name}: pinned {pinned[name]}, pyproject wants {requirement.specifier}"
            )
    if others != ["."]:
        found.append(f"requirements.txt must end with the app itself ('.'), not {others}")
    return found


def main(argv: list[str]) -> int:
    pyproject = Path(argv[1]) if len(argv) > 1 else ROOT / "pyproject.toml"
    requirements = Path(argv[2]) if len(argv) > 2 else ROOT / "requirements.txt"
    found = problems(pyproject, requirements)
    for line in found:
        print(f"requirements check: {line}", file=sys.stderr)
    if found:
        print("requirements check: run scripts/lock-requirements to regenerate", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
