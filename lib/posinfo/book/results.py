"""What every chapter writes: ``results.csv``, ``claims.json``, ``manifest.json`` and its figures
(BOOK_CONTRACT.md).

All files are written atomically, so an interrupted run never leaves a half-written result; the
manifest, written last, seals ``results.csv`` and ``claims.json`` as the outputs of one run
(profile, seed, threads, code version and their hashes), and the report refuses a folder that
mixes two runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import myst_nb
import pandas as pd
import torch
from IPython.display import Markdown
from matplotlib.figure import Figure

from posinfo.book.params import project_root
from posinfo.book.verdicts import VERDICTS, Rule, judge, replicates_needed
from posinfo.cache import atomic_path, write_text


CLAIM_FIELDS = ("id", "claim", "paper", "ours", "holds", "verdict", "rule", "effect", "interval",
                "n", "control", "replicates_needed")


@dataclass(frozen=True)
class Claim:
    """One qualitative finding of a paper, tested by a run (see :mod:`posinfo.book.verdicts`).

    Attributes:
        id: Short identifier (e.g. ``"E1"``).
        claim: The finding, in one sentence, with the paper's words it rests on.
        paper: What the paper reported.
        ours: What this run measured.
        verdict: ``"holds"``, ``"fails"`` or ``"inconclusive"``, from the replicates.
        rule: The test in words: effect, direction, margin.
        effect: The mean effect over the replicates.
        interval: Its 90% interval ``(low, high)``.
        n: The number of replicates.
        control: The verdict of the same rule on a null version of the inputs.
        replicates_needed: For an inconclusive verdict, how many replicates would resolve it at
            the observed mean and spread (``None`` if it cannot be estimated or is not needed).
    """

    id: str
    claim: str
    paper: str
    ours: str
    verdict: str
    rule: str
    effect: float
    interval: tuple[float, float]
    n: int
    control: str
    replicates_needed: int | None = None

    def __post_init__(self) -> None:
        for name in ("verdict", "control"):
            if getattr(self, name) not in VERDICTS:
                raise ValueError(f"claim {self.id}: {name} must be one of {VERDICTS}, "
                                 f"got {getattr(self, name)!r}")
        if self.n < 1:
            raise ValueError(f"claim {self.id}: n must be at least 1, got {self.n}")

    @property
    def holds(self) -> bool:
        """The contract's boolean: true only for the verdict ``holds``."""
        return self.verdict == "holds"

    def as_dict(self) -> dict[str, Any]:
        """The claim as ``claims.json`` writes it (fields :data:`CLAIM_FIELDS`)."""
        data = asdict(self) | {"holds": self.holds, "interval": list(self.interval)}
        return {k: _clean(data[k]) for k in CLAIM_FIELDS}


def tested(id: str, claim: str, paper: str, ours: str, rule: Rule, effects: Sequence[float],
           control: Sequence[float]) -> Claim:
    """A claim judged by ``rule`` on the per-replicate ``effects`` of the run, with its control
    judged by the same rule on the effects of the null inputs (see :func:`~posinfo.book.verdicts.judge`).
    Effects and interval are rounded to 4 decimals."""
    result = judge(effects, rule)
    needed = replicates_needed(effects, rule) if result.verdict == "inconclusive" else None
    return Claim(id, claim, paper, ours, result.verdict, rule.words(), round(result.effect, 4),
                 (round(result.interval[0], 4), round(result.interval[1], 4)), result.n,
                 judge(control, rule).verdict, needed)


def _clean(value: Any) -> Any:
    """JSON has no NaN: write ``None`` instead."""
    return None if isinstance(value, float) and math.isnan(value) else value


def write_results(table: pd.DataFrame, folder: str | Path, *, profile: str, seed: int) -> Path:
    """Write the tidy results table, with the profile and seed on every row, as ``results.csv``."""
    table = table.assign(profile=profile, seed=seed)
    with atomic_path(Path(folder) / "results.csv") as tmp:
        table.to_csv(tmp, index=False)
    return Path(folder) / "results.csv"


def write_claims(claims: Sequence[Claim], folder: str | Path) -> Path:
    """Write the claims as a JSON list of objects with :data:`CLAIM_FIELDS` to ``claims.json``,
    then the run's manifest (:func:`write_manifest`), which seals ``results.csv`` and
    ``claims.json`` as the outputs of one run."""
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate claim ids in {ids}")
    data = [c.as_dict() for c in claims]
    write_text(Path(folder) / "claims.json", json.dumps(data, indent=2) + "\n")
    write_manifest(folder)
    return Path(folder) / "claims.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def code_version() -> str:
    """The git commit of the library's checkout (with ``+changes`` if its tree differs), or
    ``"unknown"`` outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def package_versions(requirements: str | Path) -> dict[str, str]:
    """The installed version of every package pinned in ``requirements`` (``"missing"`` if none)."""
    names = [line.split("==")[0].strip() for line in Path(requirements).read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def _pinned_versions() -> dict[str, str]:
    """:func:`package_versions` of the book's ``requirements.txt`` (none outside the book)."""
    pins = project_root() / "requirements.txt"
    return package_versions(pins) if pins.is_file() else {}


def machine() -> str:
    """What the running process computes on, in words: the GPU torch sees, else the CPU's cores
    (recorded per chapter, since chapters may run on other machines than the HTML build)."""
    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    return f"CPU: {os.cpu_count()} cores"


def write_manifest(folder: str | Path) -> Path:
    """Write ``manifest.json``: the run's profile and seed (from ``results.csv``), its torch
    thread count, machine (:func:`machine`) and code version, and the SHA-256 of ``results.csv`` and ``claims.json``, so a
    reader (and the book's report) can tell that the two files come from one run."""
    folder = Path(folder)
    files = [folder / "results.csv", folder / "claims.json"]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {missing}: write the results before the claims")
    first = pd.read_csv(files[0], usecols=["profile", "seed"], nrows=1)
    if first.empty:
        raise ValueError(f"{files[0]} holds no row, so no run to seal")
    manifest = {"profile": str(first.profile.iloc[0]), "seed": int(first.seed.iloc[0]),
                "threads": torch.get_num_threads(), "machine": machine(), "code": code_version(),
                "packages": _pinned_versions(),
                "files": {f.name: _sha256(f) for f in files}}
    write_text(folder / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return folder / "manifest.json"


def check_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a chapter's results folder, after checking that ``results.csv`` and
    ``claims.json`` are the files it sealed.

    Raises:
        ValueError: Naming the folder, if the manifest is missing or a file was written by
            another run (a run stopped between its two writes leaves such a folder).
    """
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.is_file():
        raise ValueError(f"{folder} has no manifest.json: its results were not written by one "
                         "complete run; run the chapter again")
    manifest = json.loads(path.read_text())
    sealed = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(sealed, dict) or set(sealed) != {"results.csv", "claims.json"}:
        raise ValueError(f"{path} is not a manifest of results.csv and claims.json; run the "
                         "chapter again")
    changed = [name for name, digest in sealed.items()
               if not (folder / name).is_file() or _sha256(folder / name) != digest]
    if changed:
        raise ValueError(f"{folder}: {changed} do not match its manifest.json, so the folder mixes "
                         "the outputs of two runs; run the chapter again")
    return manifest


def save_figure(fig: Figure, folder: str | Path, name: str) -> Path:
    """Save a figure as ``{folder}/{name}.png`` (150 dpi)."""
    path = Path(folder) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, bbox_inches="tight", format="png")
    return path


def claims_table(claims: Sequence[Claim]) -> pd.DataFrame:
    """The claims as a table for display: the finding, the paper's numbers and ours, the rule,
    the effect with its 90% interval over n replicates, the verdict and the control's verdict."""
    rows = [dict(id=c.id, claim=c.claim, paper=c.paper, ours=c.ours, rule=c.rule,
                 effect=f"{c.effect:.3g}", interval=interval_text(c.interval), n=c.n,
                 verdict=c.verdict, control=c.control) for c in claims]
    return pd.DataFrame(rows).set_index("id")


def interval_text(interval: Sequence[float]) -> str:
    """A 90% interval as the tables write it: ``[.123, .456]``."""
    return "[" + ", ".join(f"{v:.3g}" for v in interval) + "]"


def profile_banner(cfg: Any) -> Any:
    """A note that says which profile and seed produced the outputs below it (Markdown)."""
    knobs = ", ".join(f"`{k}={v!r}`" for k, v in cfg.knobs.items() if k != "cache_dir")
    return Markdown(f"> **Profile: {cfg.profile}.** The outputs of this page were computed with the "
                    f"**{cfg.profile}** profile, seed {cfg.seed}, on {cfg.device.type}. Knobs: {knobs}.")


def glue_prose(values: Mapping[str, str]) -> None:
    """Hand this run's numbers and verdicts to the chapter's prose.

    Each value becomes a myst-nb glue variable, pasted into the Markdown as {glue:text}`name` when
    the book is built, so the text always quotes the run it sits in. Nothing is shown in the
    notebook.

    Args:
        values: Variable name -> the text to paste (numbers already formatted).
    """
    for name, text in values.items():
        if not isinstance(text, str):
            raise TypeError(f"glue value {name!r} must be formatted text, got {type(text).__name__}")
        myst_nb.glue(name, text, display=False)


def decimal(value: float, digits: int = 2) -> str:
    """A number the way the prose writes scores below one: ``0.4567 -> ".46"``, ``-0.04 -> "-.04"``."""
    text = f"{value:.{digits}f}"
    return text.replace("0.", ".", 1) if abs(value) < 1 else text


def verdict_text(claim: Claim) -> str:
    """A claim's verdict as the prose says it after its id: "holds", "does not hold" or "is
    inconclusive (...)", the last with the replicates that would resolve it."""
    if claim.verdict == "holds":
        return "holds"
    if claim.verdict == "fails":
        return "does not hold"
    needed = (f"about {claim.replicates_needed} replicates would resolve it at the spread seen"
              if claim.replicates_needed else "the spread seen gives no estimate of the replicates "
              "that would resolve it")
    return f"is inconclusive ({claim.n} replicates cannot decide it; {needed})"


def holds_by_id(claims: Sequence[Claim]) -> dict[str, str]:
    """Each claim's verdict in words (:func:`verdict_text`), keyed by its lower-case id
    (``"E1" -> "e1"``), for the prose."""
    return {c.id.lower(): verdict_text(c) for c in claims}


def verdict_note(claims: Sequence[Claim], cfg: Any) -> Markdown:
    """A chapter's verdict in words, written from this run's claims: how many hold, fail and are
    inconclusive, each claim that does not hold with its effect and interval, and any control
    that holds (a check that cannot tell position from its absence)."""
    by = {v: [c.id for c in claims if c.verdict == v] for v in VERDICTS}
    count = lambda v, one, many: (f"{len(by[v])} {one if len(by[v]) == 1 else many} "  # noqa: E731
                                  f"({', '.join(by[v]) or 'none'})")
    text = (f"In this run ({cfg.profile} profile, seed {cfg.seed}), of {len(claims)} findings tested "
            f"here {count('holds', 'holds', 'hold')}, {count('fails', 'fails', 'fail')} and "
            f"{count('inconclusive', 'is inconclusive', 'are inconclusive')}.")
    for c in claims:
        if c.verdict != "holds":
            text += (f"\n\n- **{c.id} {verdict_text(c)}.** {c.claim} Paper: {c.paper}. Here: "
                     f"{c.ours}. Effect {c.effect:.3g}, 90% interval {interval_text(c.interval)}, "
                     f"n = {c.n}.")
    broken = [c.id for c in claims if c.control == "holds"]
    if broken:
        text += (f"\n\n**Defect: the control of {', '.join(broken)} holds**, so those checks "
                 "cannot tell the effect from its absence.")
    return Markdown(text)


def read_back(folder: str | Path, claims: Sequence[Claim], columns: set[str]) -> pd.DataFrame:
    """Read a run's ``results.csv`` and ``claims.json`` back and check them against the contract.

    Args:
        folder: The chapter's results folder.
        claims: The claims the run computed (their ids must be what was written).
        columns: Columns ``results.csv`` must have besides ``value``, ``profile`` and ``seed``.

    Returns:
        The results table as written.
    """
    results = pd.read_csv(Path(folder) / "results.csv")
    written = json.loads((Path(folder) / "claims.json").read_text())
    missing = (columns | {"value", "profile", "seed"}) - set(results.columns)
    if missing:
        raise AssertionError(f"results.csv lacks columns {sorted(missing)}")
    if [c["id"] for c in written] != [c.id for c in claims]:
        raise AssertionError("claims.json does not hold the claims of this run")
    if any(set(c) != set(CLAIM_FIELDS) for c in written):
        raise AssertionError(f"claims.json entries need exactly {CLAIM_FIELDS}")
    return results
