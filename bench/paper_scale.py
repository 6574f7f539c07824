"""Benchmark: a scale model of every chapter's ``paper`` profile on one H100-class GPU (issue 19).

Each network a chapter runs is measured on PyTorch's meta device at the paper's full resolution
(FLOPs per image of a forward pass and of a training step, parameter bytes, peak bytes of live
activations: shapes only, nothing is computed), then combined with the paper profile's counts
(images, epochs, replicates, readouts, caches) into peak GPU memory, peak host memory, disk and
GPU hours per chapter (:mod:`posinfo.book.workloads`), against the targets of 80 GB, 100 GB,
100 GB and 6 hours. Writes ``_build/bench/paper_scale.json`` (one entry per chapter: ``gpu_gb``,
``ram_gb``, ``disk_gb``, ``gpu_hours``, whether they fit, the assumptions and the steps) and
prints the table the book's benchmark page shows.

    make bench
    .venv/bin/python bench/paper_scale.py [CHAPTER ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from posinfo.book import report
from posinfo.book.workloads import PROJECTIONS, paper_scale
from posinfo.cache import write_text


def main(argv: list[str] | None = None) -> None:
    """Measure, project, write the JSON and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", default=list(PROJECTIONS), metavar="CHAPTER",
                        help=f"chapters to project (default: all): {', '.join(PROJECTIONS)}")
    parser.add_argument("--out", type=Path, default=Path("_build/bench/paper_scale.json"),
                        help="where to write the projection as JSON (the book's benchmark page reads it)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.chapters) - set(PROJECTIONS))
    if unknown:
        parser.error(f"unknown chapters {unknown}; known: {list(PROJECTIONS)}")
    torch.set_num_threads(1)  # the meta device computes nothing; one thread is plenty
    start = time.perf_counter()
    entries = paper_scale(args.chapters)
    write_text(args.out, json.dumps(entries, indent=2) + "\n")
    print("\n".join(report.scale_markdown(entries)))
    print(f"\n{args.out} written in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
