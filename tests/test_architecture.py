"""The package's shape: stages as folders, and imports that only go from a stage to earlier ones."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

QA = Path(__file__).resolve().parents[1] / "qa"

#: Each stage may import from its own rank and lower ranks only.
RANKS = {
    "qa.config": 0,
    "qa.errors": 0,
    "qa.types": 0,
    "qa.ingest": 1,
    "qa.embed": 2,
    "qa.index": 3,
    "qa.search": 4,
    "qa.answer": 5,
}
TOP = 6  # the facade, CLI, evaluation, UI and adapters: may import any stage


def _module_name(path: Path) -> str:
    parts = path.relative_to(QA.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _rank(module: str) -> int:
    for prefix, rank in RANKS.items():
        if module == prefix or module.startswith(prefix + "."):
            return rank
    return TOP


def _imports(path: Path) -> list[str]:
    """The ``qa`` modules a file imports (relative imports resolved)."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "qa"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] == "qa":
                found += [target] if node.module else [f"{target}.{a.name}" for a in node.names]
    return found


MODULES = sorted(QA.rglob("*.py"))


def test_the_stages_are_folders() -> None:
    folders = {p.name for p in QA.iterdir() if (p / "__init__.py").is_file()}
    assert {"ingest", "embed", "index", "search", "answer", "ui"} <= folders


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(QA)))
def test_no_import_climbs_back_to_a_later_stage(path: Path) -> None:
    module = _module_name(path)
    later = [
        target
        for target in _imports(path)
        if _rank(target) > _rank(module) and not target.startswith(module + ".")
    ]
    assert later == [], f"{module} (stage {_rank(module)}) imports later stages: {later}"


def test_the_checker_sees_a_climb() -> None:
    # A search module importing the answer stage must be reported.
    assert _rank("qa.answer.compose") > _rank("qa.search.searcher")
    assert "qa.answer.compose" in _imports(QA / "pipeline.py")
