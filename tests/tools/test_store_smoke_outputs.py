import importlib.util
import os
import subprocess
import sys
from pathlib import Path

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
