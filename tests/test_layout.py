"""The library's layout rules (README, lib/posinfo/README.md): chapters stand on a shared core,
imports sit at the top of modules, and the tests mirror the package."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib" / "posinfo"
TESTS = ROOT / "tests"
MODULES = sorted(LIB.rglob("*.py"))
SCRIPTS = sorted((ROOT / "tools").glob("*.py")) + sorted((ROOT / "bench").glob("*.py"))
CYCLE_NOTE = re.compile(r"#.*\bimport cycle\b")  # the comment a function-local import needs


def dotted(path: Path) -> str:
    """``lib/posinfo/a/b.py -> posinfo.a.b``; a package's ``__init__.py`` is the package."""
    parts = path.relative_to(LIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.Module, module: str, is_package: bool = False
                     ) -> list[tuple[ast.stmt, str]]:
    """Every (import statement, absolute name it imports) in ``tree``, the code of ``module``:
    ``from a import b`` names ``a`` and ``a.b``; relative imports are resolved."""
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out += [(node, base)] + [(node, f"{base}.{a.name}") for a in node.names]
    return out


def chapter_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    """The chapter modules (``posinfo.chapters.<name>``) and the chapters package imported."""
    return [name for _, name in imported_modules(ast.parse(source), module, is_package)
            if name == "posinfo.chapters" or (name.startswith("posinfo.chapters.")
                                              and name.count(".") == 2)]


def late_imports(source: str) -> list[int]:
    """Lines of imports inside functions or classes that no ``# ... import cycle`` comment
    (on the line or the one above) explains."""
    tree, lines = ast.parse(source), source.splitlines()
    top = {id(node) for node in tree.body}
    return [node.lineno for node, _ in imported_modules(tree, "x")
            if id(node) not in top
            and not CYCLE_NOTE.search(" ".join(lines[max(node.lineno - 2, 0): node.lineno]))]


@pytest.mark.parametrize("path", MODULES, ids=dotted)
def test_only_a_chapter_module_names_its_own_module(path):
    name = dotted(path)
    found = chapter_imports(path.read_text(), name, path.name == "__init__.py")
    assert not [m for m in found if m != name], f"{name} imports the chapter module(s) {found}"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_tools_and_benchmarks_import_no_chapter_module(path):
    assert chapter_imports(path.read_text(), "script") == []


@pytest.mark.parametrize("path", MODULES, ids=dotted)
def test_imports_sit_at_the_top(path):
    assert late_imports(path.read_text()) == [], (
        f"{dotted(path)} imports inside a function at these lines (only to break a real import "
        "cycle, with a comment saying so)")


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "__init__.py"], ids=dotted)
def test_tests_mirror_the_package(path):
    rel = path.relative_to(LIB)
    mirror = TESTS / rel.parent / f"test_{rel.name}"
    assert mirror.is_file(), f"{dotted(path)} has no tests at {mirror.relative_to(ROOT)}"
    assert re.search(r"^def test_", mirror.read_text(), re.M), f"{mirror} holds no test"


@pytest.mark.parametrize("source, module, found", [
    ("from posinfo.chapters import ch01_existence", "posinfo.chapters.ch02_x",
     ["posinfo.chapters", "posinfo.chapters.ch01_existence"]),
    ("import posinfo.chapters.ch01_existence as e", "posinfo.probe.probing", ["posinfo.chapters.ch01_existence"]),
    ("from .ch01_existence import SPEC", "posinfo.chapters.ch02_x", ["posinfo.chapters.ch01_existence"]),
    ("from . import ch01_existence", "posinfo.chapters.ch02_x", ["posinfo.chapters",
                                                                 "posinfo.chapters.ch01_existence"]),
    ("from posinfo import chapters", "posinfo.book.report", ["posinfo.chapters"]),
    ("from ..chapters import ch03_padding", "posinfo.book.report", ["posinfo.chapters",
                                                                    "posinfo.chapters.ch03_padding"]),
    ("from posinfo.book import results", "posinfo.chapters.ch02_x", []),
])
def test_the_rule_catches_every_way_to_import_a_chapter(source, module, found):
    assert chapter_imports(source, module) == found


def test_the_rule_on_function_local_imports():
    assert late_imports("import os\ndef f():\n    import json\n") == [3]
    assert late_imports("def f():\n    # one-cycle schedule\n    import json\n") == [3]
    assert late_imports("def f():\n    # breaks an import cycle with a\n    import json\n") == []
