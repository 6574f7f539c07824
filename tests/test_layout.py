"""The library's layout rules (README, lib/posinfo/README.md): chapters stand on a shared core,
imports sit at the top of modules, and the tests mirror the package."""

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib" / "posinfo"
TESTS = Path(__file__).resolve().parent
MODULES = sorted(p for p in LIB.rglob("*.py") if p.name != "__init__.py")


def dotted(path: Path) -> str:
    return "posinfo." + ".".join(path.relative_to(LIB).with_suffix("").parts)


def imported_modules(tree: ast.Module) -> list[tuple[ast.stmt, str]]:
    """Every (import statement, module it names), ``from a import b`` giving ``a.b`` too."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out += [(node, node.module)] + [(node, f"{node.module}.{a.name}") for a in node.names]
    return out


@pytest.mark.parametrize("path", MODULES, ids=dotted)
def test_no_module_imports_a_chapter_module(path):
    name = dotted(path)
    for _, target in imported_modules(ast.parse(path.read_text())):
        if target.startswith("posinfo.chapters.") and target.count(".") == 2:
            assert False, f"{name} imports the chapter module {target}"


@pytest.mark.parametrize("path", MODULES, ids=dotted)
def test_imports_sit_at_the_top(path):
    source = path.read_text()
    tree = ast.parse(source)
    top = {id(node) for node in tree.body}
    lines = source.splitlines()
    for node, _ in imported_modules(tree):
        context = " ".join(lines[max(node.lineno - 2, 0): node.lineno])
        assert id(node) in top or "cycle" in context, (
            f"{dotted(path)}:{node.lineno} imports inside a function (only to break a real cycle, "
            "with a comment saying so)")


@pytest.mark.parametrize("path", MODULES, ids=dotted)
def test_tests_mirror_the_package(path):
    rel = path.relative_to(LIB)
    mirror = TESTS / rel.parent / f"test_{rel.name}"
    assert mirror.is_file(), f"{dotted(path)} has no tests at {mirror.relative_to(TESTS.parent)}"


def test_the_rules_catch_a_chapter_importing_a_chapter():
    tree = ast.parse("from posinfo.chapters import ch01_existence\ndef f():\n    import os\n")
    names = [t for _, t in imported_modules(tree)]
    assert "posinfo.chapters.ch01_existence" in names
    assert any(id(n) not in {id(b) for b in tree.body} for n, _ in imported_modules(tree))
