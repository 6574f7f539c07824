"""Re-execute chapters in place with their stored (smoke) parameters, for nbval to compare.

    .venv/bin/python tools/store_smoke_outputs.py book/01_existence.ipynb [...]

Run it after changing a chapter or the library in a way that changes the checked outputs, then
look at the diff of the notebook before committing it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


SMOKE_THREADS = "2"  # the count book/conftest.py pins for nbval's kernels


def store(path: Path) -> None:
    """Execute ``path`` in its own folder, with ``SMOKE_THREADS`` torch threads, and write the
    outputs back into it."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = SMOKE_THREADS  # inherited by the kernel
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=1200,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)  # progress bars' widget state: large, and nothing to compare
    nbformat.write(nb, path)
    print(f"stored outputs of {path}")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        store(Path(arg))
