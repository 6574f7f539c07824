"""Build the HTML book from the chapters executed by papermill.

The chapter notebooks under book/ hold smoke-profile outputs (what nbval compares). The HTML must
show the profile `make book` ran, so this script stages a copy of the book's sources in which
every chapter is replaced by its executed version, builds it with Jupyter Book 1 (execution off)
and leaves the site in _build/html.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from posinfo.book import report
from posinfo.book.results import package_versions

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("_config.yml", "_toc.yml", "references.bib", "_static", "book")


WIDGET = "application/vnd.jupyter.widget-view+json"


def tidy_executed(path: Path) -> None:
    """Prepare an executed notebook for the HTML: remove the progress-bar widgets (papermill saves
    no widget state, so they would render as empty boxes; they are not results), and fold the
    notebook's own parameters cell and papermill's injected one behind a toggle (the first holds
    the smoke defaults, not the settings used; the profile banner states those)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET not in o.get("data", {})]
        tags = cell.metadata.setdefault("tags", [])
        if {"parameters", "injected-parameters"} & set(tags) and "hide-cell" not in tags:
            tags.append("hide-cell")
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
        tidy_executed(staging / "book" / chapter.name)


def chapter_headings(book: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Chapter stem -> its title (first ``#`` heading), and -> the anchor of its claims section
    (the ``##`` heading that says the findings are "tested"), in the book's order."""
    titles, anchors = {}, {}
    for path in sorted(book.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        lines = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()]
        titles[path.stem] = next((h[2:].strip() for h in lines if h.startswith("# ")), path.stem)
        tested = [h for h in lines if h.startswith("## ") and "tested" in h.lower()]
        if tested:
            anchors[path.stem] = report.heading_anchor(tested[0])
    return titles, anchors


def add_launch_buttons(config: Path, repository: str) -> None:
    """Point the staged ``_config.yml`` at the book's GitHub repository (``owner/name``), which
    turns on the repository, Colab and Binder buttons of every chapter."""
    text = config.read_text().replace("use_repository_button: false", "use_repository_button: true")
    text += (f"\nrepository:\n  url: https://github.com/{repository}\n  branch: main\n"
             "launch_buttons:\n  notebook_interface: classic\n"
             "  colab_url: https://colab.research.google.com\n  binderhub_url: https://mybinder.org\n")
    config.write_text(text)


def add_downloads(staging: Path, results: Path) -> None:
    """Offer each chapter's ``results.csv`` and ``claims.json`` for download at the end of its
    page (the executed notebook itself is the page's own download button): the files are copied
    into the staged book and linked with Sphinx's ``download`` role."""
    for path in sorted((staging / "book").glob("[0-9][0-9]_*.ipynb")):
        files = [results / path.stem / name for name in ("results.csv", "claims.json", "manifest.json")]
        if not all(f.is_file() for f in files):
            sys.exit(f"{files[0].parent} lacks results.csv, claims.json or manifest.json: run the "
                     "chapter first")
        links = []
        for f in files:
            target = staging / "book" / "_results" / path.stem / f.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
            links.append(f"{{download}}`{f.name} <_results/{path.stem}/{f.name}>`")
        nb = nbformat.read(path, as_version=4)
        nb.cells.append(nbformat.v4.new_markdown_cell(
            f"**This run's numbers, to download:** {', '.join(links)} (every number of the page, "
            "tidy; every claim with its verdict; the run's profile, seed, threads, code version and "
            "the two files' hashes); the notebook as it ran is the page's download button."))
        nbformat.write(nb, path)


def read_json(path: Path | None) -> dict | None:
    """The JSON at ``path``, or ``None`` when there is none (``make bench`` was not run)."""
    return json.loads(path.read_text()) if path is not None and path.exists() else None


def write_reports(staging: Path, results: Path, bench: Path, scale: Path | None = None) -> None:
    """Generate the scorecard, reproducibility and benchmark pages into the staged book (the
    benchmark page shows ``make bench``'s readout measurement and, when ``scale`` exists, the
    scale model of the paper profile)."""
    titles, anchors = chapter_headings(staging / "book")
    runs = report.chapter_runs(results, titles)
    pages = {
        "scorecard.md": report.scorecard_markdown(report.read_claims(results), titles, anchors),
        "reproducibility.md": report.appendix_markdown(
            runs, package_versions(ROOT / "requirements.txt"), report.hardware(),
            built=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        "benchmarks.md": report.benchmark_markdown(read_json(bench), runs, read_json(scale)),
    }
    for name, text in pages.items():
        (staging / "book" / name).write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executed", type=Path, default=ROOT / "_build" / "executed")
    parser.add_argument("--out", type=Path, default=ROOT / "_build")
    parser.add_argument("--results", type=Path, default=ROOT / "_build" / "results")
    parser.add_argument("--bench", type=Path, default=ROOT / "_build" / "bench" / "readout_speed.json")
    parser.add_argument("--scale", type=Path, default=ROOT / "_build" / "bench" / "paper_scale.json",
                        help="the scale model of the paper profile (bench/paper_scale.py writes it)")
    parser.add_argument("--repository", default=os.environ.get("GITHUB_REPOSITORY"),
                        help="owner/name on GitHub, for the launch buttons (GitHub Actions sets it)")
    args = parser.parse_args()
    staging = args.out / "source"
    stage(args.executed.resolve(), staging)
    write_reports(staging, args.results, args.bench, args.scale)
    add_downloads(staging, args.results)
    if args.repository:
        add_launch_buttons(staging / "_config.yml", args.repository)
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(staging), "--path-output",
                    str(args.out / "jb"), "--warningiserror", "--keep-going"], check=True)
    shutil.rmtree(args.out / "html", ignore_errors=True)
    shutil.copytree(args.out / "jb" / "_build" / "html", args.out / "html")
    print(f"book: {args.out / 'html' / 'index.html'}")


if __name__ == "__main__":
    main()
