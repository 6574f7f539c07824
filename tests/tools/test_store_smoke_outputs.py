import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stored_and_compared_smoke_outputs_use_one_thread_count(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    store = load(ROOT / "tools" / "store_smoke_outputs.py", "store_smoke_outputs")
    nbval = load(ROOT / "book" / "conftest.py", "book_conftest")  # what pytest loads for nbval
    assert store.SMOKE_THREADS == nbval.SMOKE_THREADS == os.environ["OMP_NUM_THREADS"] == "2"


def test_a_kernel_started_by_nbval_inherits_the_pinned_threads():
    """The kernel is a child process: it sees the environment conftest set, not the caller's."""
    code = ("import runpy, subprocess, sys; runpy.run_path('book/conftest.py'); "
            "print(subprocess.run([sys.executable, '-c', 'import torch; print(torch.get_num_threads())'],"
            " capture_output=True, text=True).stdout.strip())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True)
    assert out.stdout.strip() == "2"


def test_a_chapters_results_are_copied_to_its_reference_and_a_missing_file_stops(tmp_path):
    store = load(ROOT / "tools" / "store_smoke_outputs.py", "store_smoke_outputs")
    (tmp_path / "_toc.yml").write_text("")
    (tmp_path / "book").mkdir()
    assert store.book_root(tmp_path / "book" / "01_a.ipynb") == tmp_path.resolve()
    run = tmp_path / "_build" / "smoke" / "01_a"
    run.mkdir(parents=True)
    (run / "results.csv").write_text("value\n1.0\n")
    with pytest.raises(SystemExit, match="01_a: the run wrote no .*claims.json; no reference"):
        store.store_reference("01_a", tmp_path)
    (run / "claims.json").write_text("[]\n")
    store.store_reference("01_a", tmp_path)
    reference = tmp_path / "book" / "smoke_reference" / "01_a"
    assert sorted(p.name for p in reference.iterdir()) == ["claims.json", "results.csv"]
    assert (reference / "results.csv").read_text() == "value\n1.0\n"
