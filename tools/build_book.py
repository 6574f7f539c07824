"""Build the HTML book from the chapters executed by papermill.

The chapter notebooks under book/ hold smoke-profile outputs (what nbval compares). The HTML must
show the profile `make book` ran, so this script stages a copy of the book's sources in which
every chapter is replaced by its executed version, builds it with Jupyter Book 1 (execution off)
and leaves the site in _build/html.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("_config.yml", "_toc.yml", "references.bib", "book")


WIDGET = "application/vnd.jupyter.widget-view+json"


def drop_progress_bars(path: Path) -> None:
    """Remove the progress-bar widgets of an executed notebook: papermill saves no widget state,
    so they would render as empty boxes; they are not results."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET not in o.get("data", {})]
    nbformat.write(nb, path)


def stage(executed: Path, staging: Path) -> None:
    """Copy the book's sources to ``staging``, chapters taken from ``executed``."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in SOURCES:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, staging / name)
    for chapter in sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb")):
        run = executed / "book" / chapter.name
        if not run.exists():
            sys.exit(f"{run} is missing: run `make chapters` first")
        shutil.copy2(run, staging / "book" / chapter.name)
        drop_progress_bars(staging / "book" / chapter.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executed", type=Path, default=ROOT / "_build" / "executed")
    parser.add_argument("--out", type=Path, default=ROOT / "_build")
    args = parser.parse_args()
    staging = args.out / "source"
    stage(args.executed.resolve(), staging)
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(staging), "--path-output",
                    str(args.out / "jb"), "--warningiserror", "--keep-going"], check=True)
    shutil.rmtree(args.out / "html", ignore_errors=True)
    shutil.copytree(args.out / "jb" / "_build" / "html", args.out / "html")
    print(f"book: {args.out / 'html' / 'index.html'}")


if __name__ == "__main__":
    main()
