"""The book's report pages, generated at build time from what the chapters wrote.

- The **scorecard**: every claim of every chapter (``claims.json``), the paper's numbers, ours and
  whether it holds, one column pair per profile that was run, linked to the chapter's claims.
- The **reproducibility appendix**: profile, seed, package versions, hardware and the wall time of
  every chapter (``wall_seconds.txt``, written by ``make chapters``).
- The **benchmark page**: the JSON that ``make bench`` writes (the cached features' speed-up and
  the scale model of the paper profile), and the chapters' times.

Each page is Markdown (MyST) for Jupyter Book; nothing here runs an experiment.
"""

from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from posinfo.book.results import CLAIM_FIELDS, check_manifest, interval_text


def heading_anchor(heading: str) -> str:
    """The anchor MyST gives a heading (``myst_heading_anchors``): lower case, spaces to hyphens,
    other punctuation dropped. ``"## The paper's findings, tested"`` -> ``the-papers-findings-tested``."""
    title = heading.lstrip("#").strip().lower().replace(" ", "-")
    return re.sub(r"[^\w\- ]", "", title)


def read_claims(results_root: str | Path) -> pd.DataFrame:
    """All claims written under ``results_root/<chapter>/claims.json``.

    Returns:
        One row per claim: ``chapter``, the fields of ``claims.json`` (``CLAIM_FIELDS``), and
        ``profile, seed`` of the run (from the chapter's ``manifest.json``).

    Raises:
        ValueError: If a ``claims.json`` is not a list of objects with ``CLAIM_FIELDS``,
            or a folder's ``results.csv`` and ``claims.json`` do not come from one run (its
            ``manifest.json``).
    """
    rows = []
    for path in sorted(Path(results_root).glob("*/claims.json")):
        claims = json.loads(path.read_text())
        if not isinstance(claims, list) or any(set(c) != set(CLAIM_FIELDS) for c in claims):
            raise ValueError(f"{path}: expected a list of objects with keys {CLAIM_FIELDS}")
        manifest = check_manifest(path.parent)
        run = dict(profile=manifest["profile"], seed=manifest["seed"])
        rows += [dict(chapter=path.parent.name, **c, **run) for c in claims]
    return pd.DataFrame(rows, columns=["chapter", *CLAIM_FIELDS, "profile", "seed"])


def _run_of(folder: Path) -> dict:
    """The profile, seed, torch threads, machine and code version of a chapter's run, from its
    ``manifest.json`` (checked against the files it seals); all ``None`` if it was not run."""
    if not (folder / "manifest.json").exists():
        return dict(profile=None, seed=None, threads=None, machine=None, code=None, packages={})
    manifest = check_manifest(folder)
    out = {k: manifest.get(k) for k in ("profile", "seed", "threads", "machine", "code")}
    return out | {"machine": out["machine"] or "not recorded", "packages": manifest.get("packages", {})}


def _cell(text: object) -> str:
    """A value made safe for one cell of a Markdown table."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _verdict(row: pd.Series) -> str:
    """A claim's verdict cell: the verdict in bold, its control beside it."""
    return f"**{row.verdict}** (control: {row.control})"


def _counts(runs: pd.DataFrame) -> str:
    """How many claims hold, fail and are inconclusive, never folded together."""
    n = runs.verdict.value_counts()
    return (f"{n.get('holds', 0)} hold, {n.get('fails', 0)} fail, "
            f"{n.get('inconclusive', 0)} inconclusive")


def scorecard_markdown(claims: pd.DataFrame, titles: Mapping[str, str],
                       anchors: Mapping[str, str] | None = None) -> str:
    """The scorecard page.

    Args:
        claims: Rows of :func:`read_claims`, possibly from several results roots (profiles).
        titles: Chapter stem -> title, in the book's order; chapters without claims are listed
            as not run.
        anchors: Chapter stem -> anchor of its claims section (see :func:`heading_anchor`); a
            chapter without one is linked at its top.

    Returns:
        MyST Markdown: a summary per profile, then a table per chapter.
    """
    profiles = sorted(claims.profile.dropna().unique(), key=["smoke", "default", "paper"].index)
    lines = ["# Scorecard", "", "Every finding of the papers that a chapter tests, with the paper's",
             "numbers and ours. Each verdict is decided from replicates: the effect's 90% interval",
             "lies wholly on the paper's side of its margin (**holds**), wholly on the other side",
             "(**fails**), or straddles it (**inconclusive**). Each claim's control is the same rule",
             "on a null version of its inputs; it must not hold. A claim that does not hold is",
             "listed as such; its chapter shows the numbers and looks for the reason.", ""]
    for profile in profiles:
        runs = claims[claims.profile == profile]
        broken = runs[runs.control == "holds"]
        lines.append(f"- **{profile} profile**: of {len(runs)} claims in {runs.chapter.nunique()} "
                     f"chapters, {_counts(runs)} (seed "
                     f"{', '.join(map(str, sorted(runs.seed.unique())))})"
                     + (f"; controls that hold (defects): {', '.join(broken.id)}." if len(broken) else "."))
    lines += ["", *_summary_table(claims, titles, profiles)]
    for chapter, title in titles.items():
        anchor = (anchors or {}).get(chapter)
        lines += ["", f"## [{title}]({chapter}.ipynb{'#' + anchor if anchor else ''})", ""]
        lines += _chapter_table(claims[claims.chapter == chapter], profiles)
    return "\n".join(lines) + "\n"


def _summary_table(claims: pd.DataFrame, titles: Mapping[str, str], profiles: Sequence[str]) -> list[str]:
    """One row per chapter: how many of its claims hold, fail and are inconclusive, per profile."""
    rows = []
    for chapter, title in titles.items():
        counts = []
        for p in profiles:
            run = claims[(claims.chapter == chapter) & (claims.profile == p)]
            counts.append(_counts(run) if len(run) else "not run")
        rows.append([title, *counts])
    return _table(pd.DataFrame(rows, columns=["chapter", *[f"verdicts ({p})" for p in profiles]]))


def _chapter_table(claims: pd.DataFrame, profiles: Sequence[str]) -> list[str]:
    """The Markdown table of one chapter's claims: per profile, ours, the effect with its 90%
    interval and n, and the verdict with its control."""
    if claims.empty:
        return ["No results: this chapter was not run for this build."]
    header = ["id", "claim", "paper"] + [f"{h} ({p})" for p in profiles
                                         for h in ("ours", "effect [90% interval], n", "verdict")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cid, group in claims.groupby("id", sort=False):
        first = group.iloc[0]
        cells = [cid, first.claim, first.paper]
        for p in profiles:
            run = group[group.profile == p]
            if len(run):
                row = run.iloc[0]
                cells += [row.ours, f"{row.effect:.3g} {interval_text(row.interval)}, n = {row.n}",
                          _verdict(row)]
            else:
                cells += ["", "", "not run"]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def chapter_runs(results_root: str | Path, titles: Mapping[str, str]) -> pd.DataFrame:
    """Per chapter: title, profile, seed, threads, machine and code version (its ``manifest.json``) and
    wall time (``wall_seconds.txt``; NaN if not timed)."""
    rows = []
    for chapter, title in titles.items():
        folder = Path(results_root) / chapter
        wall = folder / "wall_seconds.txt"
        rows.append(dict(chapter=chapter, title=title, **_run_of(folder),
                         wall_minutes=float(wall.read_text()) / 60 if wall.exists() else float("nan")))
    return pd.DataFrame(rows)


def hardware() -> dict[str, str]:
    """What the book was built on: OS, Python, CPU cores, memory, GPU (if any) and the torch
    threads each chapter ran with (``$POSINFO_CHAPTER_THREADS``, which `make html` sets)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30 if hasattr(os, "sysconf") else float("nan")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU only)"
    threads = os.environ.get("POSINFO_CHAPTER_THREADS", "not recorded")
    return {"system": f"{platform.system()} {platform.release()} ({platform.machine()})",
            "python": platform.python_version(), "CPU cores": str(os.cpu_count()),
            "memory": f"{memory:.0f} GiB", "GPU": gpu, "torch threads per chapter": threads}


def _table(frame: pd.DataFrame) -> list[str]:
    """A small DataFrame as a Markdown table."""
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return lines


def _minutes(value: float) -> str:
    return "not timed" if pd.isna(value) else f"{value:.1f} min"


def appendix_markdown(runs: pd.DataFrame, versions: Mapping[str, str], machine: Mapping[str, str],
                      built: str) -> str:
    """The reproducibility appendix: how this build was made, to rerun it exactly."""
    chapters = runs.assign(wall=runs.wall_minutes.map(_minutes))[
        ["title", "profile", "seed", "threads", "machine", "code", "wall"]]
    total = runs.wall_minutes.sum(min_count=1)
    lines = ["# Reproducibility", "", f"This book was built on {built}. Each chapter ran through",
             "papermill with the profile, seed, torch threads and machine below (from each chapter's",
             "`manifest.json`; `code` is the library's git commit); rerunning `make book` with the",
             "same versions gives the same checked numbers (see each chapter's `claims.json`).", "",
             "## Chapters", ""] + _table(chapters.rename(columns={"wall": "wall time"}))
    lines += ["", f"Sum of the chapters' wall times: {_minutes(total)} (chapters run in parallel,",
              "so the build itself can take less).", "", "## The machine that built the HTML", "",
              "The chapters may have run elsewhere (a GPU runner, say): the table above says where.", ""]
    lines += _table(pd.DataFrame(list(machine.items()), columns=["what", "value"]))
    lines += ["", "## Packages", "", "Versions in the HTML build, and any chapter that ran with another",
              "(from its `manifest.json`).", ""]
    lines += _table(pd.DataFrame([(name, version, _other_versions(runs, name, version))
                                  for name, version in versions.items()],
                                 columns=["package", "version", "chapters with another version"]))
    return "\n".join(lines) + "\n"


def _other_versions(runs: pd.DataFrame, package: str, version: str) -> str:
    """The chapters of ``runs`` whose manifest records another version of ``package``."""
    if "packages" not in runs:
        return ""
    other = [f"{row.title}: {row.packages[package]}" for row in runs.itertuples()
             if isinstance(row.packages, dict) and row.packages.get(package, version) != version]
    return "; ".join(other)


def benchmark_markdown(bench: Mapping[str, object] | None, runs: pd.DataFrame,
                       scale: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The benchmark page: ``make bench``'s measurement (if it was run), the scale model of the
    paper profile (``paper_scale.json``, if it was written) and the chapters' times."""
    lines = ["# Benchmarks", "", "## Cached features against the paper's protocol", ""]
    if bench is None:
        lines.append("`make bench` was not run for this build; run it to fill this section.")
    else:
        lines += [f"The same readout trained twice on {bench['setting']}: once on features computed",
                  "once and cached, once with the frozen encoder run on every mini-batch, as the",
                  "authors' code does.", ""]
        lines += _table(pd.DataFrame(bench["rows"]))
        lines += ["", f"Speed-up of the cached features: **{bench['speedup']:.1f}x**."]
    if scale:
        lines += ["", *scale_markdown(scale)]
    lines += ["", "## Chapters", ""]
    lines += _table(runs.assign(wall=runs.wall_minutes.map(_minutes))[["title", "profile", "wall"]]
                    .rename(columns={"wall": "wall time"}))
    return "\n".join(lines) + "\n"


SCALE_COLUMNS = {"gpu_gb": "GPU memory (GB)", "ram_gb": "host memory (GB)", "disk_gb": "disk (GB)",
                 "gpu_hours": "GPU hours"}


def scale_verdict(entry: Mapping[str, Any]) -> str:
    """Whether a chapter's projection fits the targets: ``"yes"``, ``"as jobs"`` (only its hours
    miss, and no cached piece of work is longer than the hours allowed), or ``"no: "`` and the
    figures that miss."""
    if entry["fits_targets"]:
        return "yes"
    if entry["fits_when_split"]:
        return f"as {entry['jobs']} jobs"
    return "no: " + ", ".join(SCALE_COLUMNS[k] for k, ok in entry["fits"].items() if not ok)


def scale_table(scale: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """The scale model's four figures per chapter (``paper_scale.json``), the largest job's GPU
    hours and whether the chapter fits the targets (:func:`scale_verdict`)."""
    rows = [{"chapter": name, **{title: entry[key] for key, title in SCALE_COLUMNS.items()},
             "largest job (GPU hours)": entry["largest_job_gpu_hours"], "fits": scale_verdict(entry)}
            for name, entry in scale.items()]
    return pd.DataFrame(rows)


def scale_markdown(scale: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The benchmark page's section on the paper profile at scale: how it was computed, the
    throughput assumed, the table (:func:`scale_table`) and what each chapter's figures leave out."""
    lines = ["## The paper profile at scale", "", *_scale_method(next(iter(scale.values())))]
    lines += _table(scale_table(scale))
    lines += ["", "What the figures rest on and leave out, per chapter:", ""]
    lines += [f"- **{name}**: " + " ".join([f"GPU hours: {e['assumptions']['gpu_hours']}."] + e["notes"])
              for name, e in scale.items()]
    return lines


def _scale_method(entry: Mapping[str, Any]) -> list[str]:
    """How the scale model was computed, the rates it assumes and why, and the targets (from one
    chapter's entry: every entry holds the same), as paragraphs."""
    rate, targets = entry["throughput_tflops"], entry["targets"]
    how = ("Every chapter's `paper` profile projected onto one H100-class GPU "
           "(`bench/paper_scale.py`, run by `make html` and `make bench`, writes "
           "`_build/bench/paper_scale.json`; `posinfo.book.workloads`). These are projections: "
           "no paper-profile run on a GPU has yet checked them. Each network was measured "
           "on PyTorch's meta device at the chapter's full resolution (shapes only, nothing "
           "computed): the FLOPs per image of a forward pass and of a training step "
           "(`FlopCounterMode`), and the peak bytes of the tensors alive at once. The chapter's code "
           "then says how many images go through which network, for how many epochs and "
           "replicates, what it caches on disk (features in float16) and what it holds in memory "
           "at its worst moment.")
    rates = (f"GPU hours assume {rate['network']:.0f} TFLOP/s sustained for the networks. The "
             "chapters run in float32, which PyTorch computes on the TF32 tensor cores for "
             "convolutions (495 TFLOP/s dense peak on an H100 SXM), and eager convolutional "
             "training reaches a small share of that: NVIDIA's tuned ResNet-50 recipe trains at "
             "about 15% of an A100's TF32 peak, and the chapters' loops are plainer, so 10% is "
             f"assumed. The least-squares readouts' float32 Gram matrices count at "
             f"{rate['fp32_gram']:.0f} TFLOP/s (TF32 is off for matrix products), their float64 "
             f"factorisations at {rate['fp64_factorisations']:.0f} TFLOP/s, and every batch costs "
             f"{entry['batch_overhead_ms']:.0f} ms more (kernel launches, the optimiser, reading the "
             "loss back). Memory adds the allocator's share and the CUDA context on the GPU, and "
             "the Python process on the host.")
    goal = (f"Targets per chapter: {targets['gpu_gb']:.0f} GB of GPU memory, {targets['ram_gb']:.0f} "
            f"GB of host memory, {targets['disk_gb']:.0f} GB of disk and {targets['gpu_hours']:.0f} "
            "GPU hours, or jobs that fit (\"as N jobs\": every network and feature set is cached on "
            "its own, so a run can stop between two and resume).")
    return [how, "", rates, "", goal, ""]


def verdict_agreement(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Two builds' claims side by side (rows of :func:`read_claims`, e.g. two seeds), and whether
    their verdicts agree: ``"yes"``, ``"inconclusive on one side"`` (a claim decided in one build
    and undecided in the other), ``"NO"`` (one holds where the other fails), or ``"not run in one
    build"``.

    Returns:
        One row per (chapter, id) in either build: verdict, effect, interval and control of
        each (the build and its seed in the column names), and ``agree``.
    """
    def side(claims: pd.DataFrame, label: str) -> pd.DataFrame:
        seed = ",".join(map(str, sorted(claims.seed.unique())))
        out = claims.set_index(["chapter", "id"])[["verdict", "effect", "interval", "control"]]
        out["interval"] = out.interval.map(interval_text)
        return out.add_suffix(f" ({label}: seed {seed})")
    both = side(first, "first").join(side(second, "second"), how="outer")
    verdicts = both.filter(like="verdict").fillna("not run").to_numpy()
    both["agree"] = [_agree(a, b) for a, b in verdicts]
    return both


def _agree(first: str, second: str) -> str:
    """Whether two verdicts of one claim agree (see :func:`verdict_agreement`)."""
    if "not run" in (first, second):
        return "not run in one build"
    if first == second:
        return "yes"
    return "inconclusive on one side" if "inconclusive" in (first, second) else "NO"


def agreement_markdown(first: pd.DataFrame, second: pd.DataFrame) -> str:
    """:func:`verdict_agreement` as a Markdown page: a count, then the table."""
    table = verdict_agreement(first, second)
    counts = table.agree.value_counts()
    lines = ["# Verdicts of two builds", "",
             f"{counts.get('yes', 0)} of {len(table)} claims agree; {counts.get('inconclusive on one side', 0)} "
             f"are inconclusive in one build only; {counts.get('NO', 0)} hold in one build and fail "
             f"in the other; {counts.get('not run in one build', 0)} were run in one build only.", ""]
    return "\n".join(lines + _table(table.reset_index())) + "\n"
