"""Re-execute chapters in place with their stored (smoke) parameters, for nbval to compare, and
store the run's ``results.csv`` and ``claims.json`` as the chapter's smoke reference.

    .venv/bin/python tools/store_smoke_outputs.py book/01_existence.ipynb [...]

Run it after changing a chapter or the library in a way that changes the checked outputs, then
look at the diff of the notebook and of ``book/smoke_reference/`` before committing them. The
chapter's results folder is emptied first, so the reference comes from this run alone;
``book/test_smoke_reference.py`` compares later runs with it, up to a tolerance.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from posinfo.book.smoke_reference import FILES, reference_dir, run_dir


SMOKE_THREADS = "2"  # the count book/conftest.py pins for nbval's kernels


def store(path: Path) -> None:
    """Execute ``path`` in its own folder, with ``SMOKE_THREADS`` torch threads, write the
    outputs back into it and copy the run's results to the chapter's reference folder."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = SMOKE_THREADS  # inherited by the kernel
    root = book_root(path)
    shutil.rmtree(run_dir(path.stem, root), ignore_errors=True)  # no stale result can pass as this run's
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=1200,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)  # progress bars' widget state: large, and nothing to compare
    nbformat.write(nb, path)
    print(f"stored outputs of {path}")
    store_reference(path.stem, root)


def book_root(notebook: Path) -> Path:
    """The book's top folder (holding ``_toc.yml``) above ``notebook``, against which its kernel
    resolves ``out_dir``."""
    folder = notebook.resolve().parent
    return next(p for p in (folder, *folder.parents) if (p / "_toc.yml").exists())


def store_reference(chapter: str, root: Path) -> None:
    """Copy ``chapter``'s smoke results (``FILES``) to its reference folder, in the book ``root``.

    Raises:
        SystemExit: Naming the file, if the run did not write one of them.
    """
    source, target = run_dir(chapter, root), reference_dir(chapter, root)
    missing = [str(source / f) for f in FILES if not (source / f).is_file()]
    if missing:
        sys.exit(f"{chapter}: the run wrote no {', '.join(missing)}; no reference stored")
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy2(source / name, target / name)
    print(f"stored the smoke reference of {chapter} in {target}")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        store(Path(arg))
