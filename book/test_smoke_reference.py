"""The chapters' smoke results against their stored references, up to a tolerance
(:mod:`posinfo.book.smoke_reference`). ``make nbval`` runs this file with the notebooks:

    pytest --nbval ... book/01_existence.ipynb ... book/test_smoke_reference.py

A chapter nbval did not execute in the same session is skipped (its results folder may hold an
older run's files); one it executed must have written both files during the session, or fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from posinfo.book.smoke_reference import FILES, compare_chapter, run_dir

ROOT = Path(__file__).resolve().parents[1]  # the book's top folder, where out_dir is resolved
CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_smoke_results_match_the_reference(chapter: str, executed_chapters: frozenset[str],
                                           session_start: float) -> None:
    """The results this session's run of ``chapter`` wrote agree with its reference."""
    if chapter not in executed_chapters:
        pytest.skip(f"nbval did not execute book/{chapter}.ipynb in this pytest session")
    folder = run_dir(chapter, ROOT)
    stale = [f for f in FILES if not (folder / f).is_file()
             or (folder / f).stat().st_mtime < session_start]
    assert not stale, f"{chapter}: this session's run wrote no {stale} in {folder}"
    problems = compare_chapter(chapter, ROOT)
    assert not problems, (f"{chapter}: {len(problems)} smoke result(s) differ from "
                          f"book/smoke_reference beyond the tolerance:\n  " + "\n  ".join(problems))
