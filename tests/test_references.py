"""The book's citations: every key a chapter or page cites is in references.bib, and the works
the book builds on are cited by their own entries."""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "book").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.md"))
CITE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")


def bib_keys() -> set[str]:
    return set(re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "references.bib").read_text(), re.M))


def prose(path: Path) -> str:
    """The markdown of a page: a notebook's markdown cells, or the file."""
    if path.suffix == ".ipynb":
        cells = nbformat.read(path, as_version=4).cells
        return "\n".join(c.source for c in cells if c.cell_type == "markdown")
    return path.read_text()


def cited(text: str) -> set[str]:
    return {key.strip() for keys in CITE.findall(text) for key in keys.split(",")}


def test_the_citation_pattern():
    assert cited("a {cite}`x` b {cite:t}`y`'s c {cite}`z1,z2` d {cite:p}`w`") == {
        "x", "y", "z1", "z2", "w"}


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_every_cited_key_is_in_references_bib(path):
    assert cited(prose(path)) - bib_keys() == set()


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_a_page_naming_deeplabv3_cites_its_paper(path):
    text = prose(path)
    if "DeepLabv3" in text:
        assert "chen2017rethinking" in cited(text)
