"""Compare the verdicts of two builds of the book (for example two seeds).

    .venv/bin/python tools/compare_builds.py _build/results other_build/results [--out FILE]

Each argument is a results folder written by ``make chapters`` (one sub-folder per chapter,
with its ``claims.json`` and ``manifest.json``). Prints a Markdown page: each claim's verdict,
effect and 90% interval in both builds, and whether the verdicts agree (or one is inconclusive).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posinfo.book import report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--out", type=Path, help="write the page here instead of printing it")
    args = parser.parse_args()
    for folder in (args.first, args.second):
        if not any(folder.glob("*/claims.json")):
            parser.error(f"{folder} holds no <chapter>/claims.json: run `make chapters` first")
    page = report.agreement_markdown(report.read_claims(args.first), report.read_claims(args.second))
    if args.out:
        args.out.write_text(page)
    else:
        print(page, end="")


if __name__ == "__main__":
    main()
