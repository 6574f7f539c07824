import importlib.util
import sys
import types
from pathlib import Path

import nbformat
import pytest
from posinfo.book.params import parameters_in

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


def load_tool():
    spec = importlib.util.spec_from_file_location("colab_tool", ROOT / "tools" / "colab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


colab = load_tool()


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_chapter_starts_with_the_current_colab_cell(path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.metadata.tags == [colab.TAG, "hide-cell"] and not first.get("outputs")
    assert first.source == colab.cell_source(colab.declared_repository()), (
        f"run: .venv/bin/python tools/colab.py {path.relative_to(ROOT)}")


def run_cell(source, monkeypatch, on_colab, answer="someone/posinfo", pip_says=""):
    """Execute the cell's code and record what it would run (pip prints ``pip_says``)."""
    calls = []
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    import os
    import subprocess
    monkeypatch.setattr(subprocess, "run", lambda cmd, check, **kw: calls.append(("run", cmd))
                        or types.SimpleNamespace(stdout=pip_says))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(os, "chdir", lambda path: calls.append(("chdir", path)))
    monkeypatch.setattr(os.path, "isdir", lambda path: False)
    monkeypatch.setattr("builtins.input", lambda prompt: calls.append(("input", prompt)) or answer)
    namespace = {}
    exec(source, namespace)
    return calls, namespace


def test_the_cell_does_nothing_outside_colab(monkeypatch):
    calls, namespace = run_cell(colab.cell_source("owner/book"), monkeypatch, on_colab=False)
    assert calls == [] and parameters_in(namespace) == {}


def test_on_colab_it_clones_the_named_repository_installs_and_enters_the_book(monkeypatch):
    calls, namespace = run_cell(colab.cell_source("owner/book"), monkeypatch, on_colab=True)
    assert calls[0] == ("run", ["git", "clone", "--depth", "1", "https://github.com/owner/book",
                                "/content/posinfo"])
    assert calls[1][1][-4:] == ["-r", "/content/posinfo/requirements.txt", "-e", "/content/posinfo"]
    assert calls[2] == ("chdir", "/content/posinfo/book")
    assert sys.path[0] == "/content/posinfo/lib"  # importable now, not only after a restart
    assert parameters_in(namespace) == {}  # nothing the chapter would take for a parameter


def test_on_colab_a_new_version_of_a_loaded_module_asks_for_a_restart(monkeypatch):
    """pytest has loaded numpy; a cell whose pip run replaced it must stop and say so, and one
    whose pip run left it alone must not."""
    import numpy  # noqa: F401
    source = colab.cell_source("owner/book")
    with pytest.raises(SystemExit, match="numpy, which this session had already loaded: restart"):
        run_cell(source, monkeypatch, on_colab=True,
                 pip_says="Collecting x\nSuccessfully installed numpy-2.4.6 posinfo-0.1.0\n")
    run_cell(source, monkeypatch, on_colab=True, pip_says="Successfully installed posinfo-0.1.0\n")


def test_on_colab_without_a_declared_repository_it_asks(monkeypatch):
    calls, _ = run_cell(colab.cell_source(None), monkeypatch, on_colab=True)
    assert calls[0][0] == "input" and calls[1][1][4] == "https://github.com/someone/posinfo"
    calls, _ = run_cell(colab.cell_source(None), monkeypatch, on_colab=True,
                        answer=" https://github.com/someone/posinfo/ ")  # a pasted address
    assert calls[1][1][4] == "https://github.com/someone/posinfo"


def test_the_tool_inserts_once_and_names_the_repository(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n\n[tool.setuptools]\nzip-safe = false\n')
    assert colab.declared_repository(pyproject) is None
    colab.declare_repository("owner/book", pyproject)
    assert colab.declared_repository(pyproject) == "owner/book"
    colab.declare_repository("other/book", pyproject)
    assert colab.declared_repository(pyproject) == "other/book"
    with pytest.raises(ValueError, match="owner/name"):
        colab.declare_repository("https://github.com/other/book", pyproject)
    path = tmp_path / "ch.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(nb, path)
    assert colab.set_up(path, "owner/book") and not colab.set_up(path, "owner/book")
    assert colab.set_up(path, "other/book")
    cells = nbformat.read(path, as_version=4).cells
    assert len(cells) == 2 and "'other/book'" in cells[0].source and cells[1].source == "x = 1"
