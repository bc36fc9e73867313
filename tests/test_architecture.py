"""Rules of the codebase's shape that ruff, mypy and import-linter do not check by themselves.

(The layers are import-linter's contract in pyproject.toml; scripts/test runs ``lint-imports``.)
"""

from __future__ import annotations

import ast
from pathlib import Path

from app import vocabulary

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"
VOCABULARY_VALUES = {
    member.value
    for enum in vars(vocabulary).values()
    if isinstance(enum, type)
    and issubclass(enum, vocabulary.StrEnum)
    and enum is not vocabulary.StrEnum
    for member in enum
}


def _modules() -> list[tuple[str, ast.Module]]:
    found = []
    for path in sorted(APP.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found.append((name, ast.parse(path.read_text(), str(path))))
    return found


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_the_scan_sees_the_whole_app():
    names = {name for name, _ in _modules()}
    assert {"app.factory", "app.vocabulary", "app.worker.polling", "app.api.watches"} <= names
    assert len(VOCABULARY_VALUES) > 20


def private_imports(modules: list[tuple[str, ast.Module]]) -> list[str]:
    """``from app.<other package> import _name`` occurrences."""
    found = []
    for name, tree in modules:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("app"):
                if _package(node.module or "") == _package(name):
                    continue
                found += [
                    f"{name}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    return found


def literal_copies(modules: list[tuple[str, ast.Module]]) -> list[str]:
    """``Literal[...]`` types naming a value of the vocabulary, outside ``app.vocabulary``."""
    found = []
    for name, tree in modules:
        if name == "app.vocabulary":
            continue
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Name)
                and node.value.id == "Literal"
            ):
                continue
            values = {
                child.value
                for child in ast.walk(node.slice)
                if isinstance(child, ast.Constant) and isinstance(child.value, str)
            }
            if values & VOCABULARY_VALUES:
                found.append(f"{name}:{node.lineno} {sorted(values)}")
    return found


def test_no_module_imports_a_private_name_of_another_package():
    assert private_imports(_modules()) == []


def test_no_literal_copies_the_vocabulary():
    """``Literal["pending", ...]`` next to ``DeliveryState`` would drift: use the StrEnum."""
    assert literal_copies(_modules()) == []


def test_the_checks_would_catch_an_offender():
    """The scans above are not vacuous: they flag a planted module."""
    planted = ast.parse(
        "from app.worker.polling import _Tick\nfrom app.api.blueprint import _ok\n"
        'X = Literal["pending", "dead"]\nY = Literal["json"]\n'
    )
    assert private_imports([("app.api.x", planted)]) == ["app.api.x: app.worker.polling._Tick"]
    assert literal_copies([("app.api.x", planted)]) == ["app.api.x:3 ['dead', 'pending']"]
