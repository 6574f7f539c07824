"""The set-up cell that lets a chapter run on Google Colab, kept the same in every chapter.

    .venv/bin/python tools/colab.py book/*.ipynb                       # insert or refresh the cell
    .venv/bin/python tools/colab.py --repository owner/name book/*.ipynb  # and name the repository

Colab opens a chapter's notebook alone, without the rest of the repository, so the chapter's
first cell clones the repository, installs the pinned requirements and the book's library, and
moves into ``book/``. Everywhere else (Jupyter, papermill, nbval, the HTML build) the cell does
nothing: it only acts when ``google.colab`` is loaded, which only Colab does.

The repository is the one ``pyproject.toml`` names under ``[project.urls] Repository``
(``--repository`` writes it there). Where none is named, the cell asks for it on Colab: the
address bar of a notebook opened from GitHub shows it.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import nbformat


ROOT = Path(__file__).resolve().parents[1]
TAG = "colab-setup"  # marks the cell, so that it is found and replaced, never duplicated
GITHUB = "https://github.com/"

TEMPLATE = '''# Google Colab only: fetch the book and install its pinned requirements and library.
# Elsewhere (Jupyter, papermill, nbval) this cell does nothing. Written by tools/colab.py.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    # Underscored names: the chapter takes every plain variable for a parameter.
    _REPOSITORY = {repository!r}  # "owner/name" on GitHub
    _repository = _REPOSITORY or input("This book's GitHub repository (owner/name): ")
    _repository = _repository.strip().removeprefix("https://github.com/").strip("/")
    if not os.path.isdir("/content/posinfo"):
        subprocess.run(["git", "clone", "--depth", "1", "https://github.com/" + _repository,
                        "/content/posinfo"], check=True)
    _log = subprocess.run([sys.executable, "-m", "pip", "install", "-r",
                           "/content/posinfo/requirements.txt", "-e", "/content/posinfo"],
                          check=True, capture_output=True, text=True).stdout
    sys.path.insert(0, "/content/posinfo/lib")  # an editable install counts from the next start
    os.chdir("/content/posinfo/book")
    _new = {{p.rsplit("-", 1)[0].lower() for line in _log.splitlines()
             if line.startswith("Successfully installed") for p in line.split()[2:]}}
    # Modules a session may have loaded before this cell (module: pip package): a new version
    # of one counts only after a restart.
    _preloaded = {{"numpy": "numpy", "scipy": "scipy", "pandas": "pandas", "PIL": "pillow",
                   "matplotlib": "matplotlib", "torch": "torch", "torchvision": "torchvision"}}
    _stale = [m for m, p in _preloaded.items() if m in sys.modules and p in _new]
    if _stale:
        raise SystemExit("Installed new versions of " + ", ".join(_stale) + ", which this "
                         "session had already loaded: restart the session (Runtime > Restart "
                         "session) and run the notebook again.")'''


def declared_repository(pyproject: Path = ROOT / "pyproject.toml") -> str | None:
    """``owner/name`` of the GitHub repository ``pyproject.toml`` names, or ``None``."""
    urls = tomllib.loads(pyproject.read_text()).get("project", {}).get("urls", {})
    url = urls.get("Repository")
    return url.removeprefix(GITHUB).strip("/") if url else None


def declare_repository(repository: str, pyproject: Path = ROOT / "pyproject.toml") -> None:
    """Name ``repository`` (``owner/name``) under ``[project.urls]`` in ``pyproject.toml``."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
        raise ValueError(f"--repository takes owner/name, got {repository!r}")
    text = pyproject.read_text()
    line = f'Repository = "{GITHUB}{repository}"'
    if re.search(r"(?m)^Repository = .*$", text):
        text = re.sub(r"(?m)^Repository = .*$", line, text)
    else:
        text = text.replace("\n[tool.", f"\n[project.urls]\n{line}\n\n[tool.", 1)
    pyproject.write_text(text)


def cell_source(repository: str | None) -> str:
    """The set-up cell's code for ``repository`` (``owner/name``, or ``None``: ask on Colab)."""
    return TEMPLATE.format(repository=repository)


def set_up(path: Path, repository: str | None) -> bool:
    """Make the first cell of notebook ``path`` the set-up cell (inserted, or refreshed in place);
    returns whether the file changed. Folded in the HTML book (``hide-cell``)."""
    nb = nbformat.read(path, as_version=4)
    source = cell_source(repository)
    cells = [c for c in nb.cells if TAG in c.metadata.get("tags", [])]
    if cells and cells[0].source == source and nb.cells[0] is cells[0]:
        return False
    for cell in cells:
        nb.cells.remove(cell)
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [TAG, "hide-cell"]
    nb.cells.insert(0, cell)
    nbformat.write(nb, path)
    return True


def main(argv: list[str] | None = None) -> None:
    """The command line: set up the given notebooks (and name the repository, if given)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--repository", help="owner/name on GitHub; written to pyproject.toml")
    args = parser.parse_args(argv)
    if args.repository:
        declare_repository(args.repository)
    repository = declared_repository()
    for path in args.notebooks:
        print(f"{'updated' if set_up(path, repository) else 'unchanged'}: {path}")


if __name__ == "__main__":
    main()
