"""A tolerant regression check of the chapters' smoke outputs (``results.csv``, ``claims.json``).

nbval compares each chapter's printed outputs exactly. Beside it, this module compares the files a
smoke run writes (``_build/smoke/<chapter>/``) with the copies stored when the chapter's outputs
were last stored (``book/smoke_reference/<chapter>/``, by ``tools/store_smoke_outputs.py``), up to
a tolerance: a CPU whose floating-point sums differ in the last digit passes, a real regression
(a value that moves, a row or claim that appears or goes, a verdict far from its margin that
changes) fails.

- ``results.csv``: the same rows, matched on every column but ``value`` (compared as text); each
  ``value`` equal up to :data:`REL_TOL` and :data:`ABS_TOL` (``pytest.approx``).
- ``claims.json``: the same claim ids; text fields equal; ``effect``, ``interval`` and the numbers
  in ``ours`` approximately equal; ``n`` and ``control`` equal; the ``verdict`` (and ``holds``)
  equal, or both verdicts among those the reference's interval gives if each bound moves by the
  tolerance (:func:`reachable_verdicts`): a verdict whose interval touches its margin may flip.
  ``replicates_needed`` is not compared: it follows from the effect and interval (which are) and
  grows as 1/gap² near the margin, so a last digit can move it by many replicates.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from posinfo.book.params import project_root
from posinfo.book.verdicts import Rule, decide

# Values may differ by 2% of their size or by 0.02, whichever is larger (pytest.approx's rule).
# The scores compared (SPC, MAE, accuracy, F-measure) are of order 0.1 to 1 and a smoke run's two
# replicates differ by 0.05 to 0.3, so 0.02 is well inside an experiment's own noise, while a
# regression that matters moves a score by more. Measured with another order of floating-point
# sums (one thread instead of two, as another CPU would): chapters 2, 3, 5 and 7 moved by at most
# 0.018; chapter 1's and 4's least-squares readouts, chapter 4's trained task networks and
# chapter 6's consistency (percent of 16 images) moved by far more, beyond any useful tolerance.
REL_TOL = 0.02
ABS_TOL = 0.02
# A least-squares readout's ridge is chosen from values a factor of 10 apart, and its condition
# number scales with 1 / ridge: a near-tie between two ridges may break the other way, so these
# two agree if they are at most one step of that grid apart (the readout's scores, compared as
# above, say whether the choice mattered).
DECADE_METRICS = frozenset({"ridge", "condition"})
FILES = ("results.csv", "claims.json")
VALUE = "value"  # the one measured column of results.csv; every other column names the row
EXACT_FIELDS = ("claim", "paper", "rule", "n", "control")
_MARGIN = re.compile(r"lies wholly (above|below) (\S+), fails if wholly")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def run_dir(chapter: str, root: Path | None = None) -> Path:
    """Where a smoke run writes ``chapter``'s outputs: the notebooks' ``out_dir`` ("_build/smoke",
    taken relative to the book's top folder ``root``, default :func:`project_root`) joined with
    the chapter."""
    return (root or project_root()) / "_build" / "smoke" / chapter


def reference_dir(chapter: str, root: Path | None = None) -> Path:
    """Where ``chapter``'s reference outputs are stored, in the book's top folder ``root``."""
    return (root or project_root()) / "book" / "smoke_reference" / chapter


def close(observed: Any, reference: Any) -> bool:
    """Whether two values agree up to :data:`REL_TOL` and :data:`ABS_TOL` (NaN equals NaN)."""
    return observed == pytest.approx(reference, rel=REL_TOL, abs=ABS_TOL, nan_ok=True)


def compare_results(observed: pd.DataFrame, reference: pd.DataFrame) -> list[str]:
    """The differences between two ``results.csv`` tables read as text (``dtype=str``), in words:
    changed columns, rows only in one table, and values not :func:`close`."""
    if list(observed.columns) != list(reference.columns):
        return [f"columns differ: reference {list(reference.columns)}, "
                f"observed {list(observed.columns)}"]
    obs, ref = _keyed(observed), _keyed(reference)
    name = ref.index.names
    problems = [f"row {_row(name, k)} missing" for k in ref.index.difference(obs.index)]
    problems += [f"row {_row(name, k)} unexpected" for k in obs.index.difference(ref.index)]
    for key in ref.index.intersection(obs.index, sort=False):
        want, got = _number(ref.at[key, VALUE]), _number(obs.at[key, VALUE])
        metric = dict(zip(name, key)).get("metric")
        if not (within_decade(got, want) if metric in DECADE_METRICS else close(got, want)):
            problems.append(f"row {_row(name, key)}: value {got!r}, reference {want!r}")
    return problems


def within_decade(observed: float, reference: float) -> bool:
    """Whether two positive values are at most a factor of 10 apart (NaN equals NaN)."""
    if math.isnan(observed) or math.isnan(reference):
        return math.isnan(observed) and math.isnan(reference)
    return observed > 0 and reference > 0 and abs(math.log10(observed / reference)) <= 1 + 1e-9


def _keyed(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` indexed by its key columns (all but ``value``) and the occurrence of the key, so
    that repeated keys are matched in order."""
    keys = [c for c in table.columns if c != VALUE]
    table = table.assign(_occurrence=table.groupby(keys, dropna=False, sort=False).cumcount())
    return table.set_index(keys + ["_occurrence"])


def _row(names: list[str], key: tuple[Any, ...]) -> str:
    """A row's key in words, e.g. ``(pattern=H, metric=spc)``, without its empty columns."""
    shown = [f"{n}={v}" for n, v in zip(names, key) if v != "" and (n, v) != ("_occurrence", 0)]
    return "(" + ", ".join(shown) + ")"


def _number(text: Any) -> float:
    """A value of ``results.csv`` as a float (an empty cell is NaN)."""
    return math.nan if pd.isna(text) or text == "" else float(text)


def margin_of(rule: str) -> Rule:
    """The side and margin of a claim's rule, read back from its words (:meth:`Rule.words`).

    Raises:
        ValueError: If the words do not state a side and a margin.
    """
    found = _MARGIN.search(rule)
    if found is None:
        raise ValueError(f"no side and margin in the rule {rule!r}")
    return Rule("", found.group(1), float(found.group(2)))


def reachable_verdicts(low: float, high: float, n: int, rule: Rule) -> set[str]:
    """The verdicts the interval ``(low, high)`` gives against ``rule``'s margin when each bound
    may move by the tolerance of :func:`close`: one verdict, unless a bound lies within the
    tolerance of the margin (a single replicate is never decided, as in ``judge``)."""
    if n < 2:
        return {"inconclusive"}
    lows = (low - _tol(low), low, low + _tol(low))
    highs = (high - _tol(high), high, high + _tol(high))
    return {decide(lo, hi, rule) for lo in lows for hi in highs if lo <= hi}


def _tol(value: float) -> float:
    """How far :func:`close` lets ``value`` move."""
    return max(ABS_TOL, REL_TOL * abs(value))


def compare_claims(observed: list[dict[str, Any]], reference: list[dict[str, Any]]) -> list[str]:
    """The differences between two ``claims.json`` lists, in words (see the module's docstring)."""
    obs, ref = {c["id"]: c for c in observed}, {c["id"]: c for c in reference}
    problems = [f"claim {i} missing" for i in ref if i not in obs]
    problems += [f"claim {i} unexpected" for i in obs if i not in ref]
    for i in ref.keys() & obs.keys():
        problems += [f"claim {i}: {p}" for p in compare_claim(obs[i], ref[i])]
    return sorted(problems)


def compare_claim(observed: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    """The differences between one claim of a run and its reference, in words."""
    problems = [f"{f} {observed.get(f)!r}, reference {reference.get(f)!r}"
                for f in EXACT_FIELDS if observed.get(f) != reference.get(f)]
    for field in ("effect", "interval"):
        if not close(observed.get(field), reference.get(field)):
            problems.append(f"{field} {observed.get(field)!r}, reference {reference.get(field)!r}")
    problems += _compare_ours(observed["ours"], reference["ours"])
    return problems + _compare_verdict(observed, reference)


def _compare_ours(observed: str, reference: str) -> list[str]:
    """``ours`` (what the run measured, in words) equal but for numbers within the tolerance."""
    same_words = _NUMBER.sub("#", observed) == _NUMBER.sub("#", reference)
    numbers = [float(x) for x in _NUMBER.findall(observed)]
    if same_words and close(numbers, [float(x) for x in _NUMBER.findall(reference)]):
        return []
    return [f"ours {observed!r}, reference {reference!r}"]


def _compare_verdict(observed: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    """The observed verdict is the reference's, or both are verdicts that a tolerated move of the
    reference's interval reaches; ``holds`` must say whether the verdict is ``holds``."""
    verdict = observed["verdict"]
    if observed["holds"] != (verdict == "holds"):
        return [f"holds {observed['holds']!r} but verdict {verdict!r}"]
    if verdict == reference["verdict"]:
        return []
    low, high = reference["interval"]
    allowed = reachable_verdicts(low, high, reference["n"], margin_of(reference["rule"]))
    if {verdict, reference["verdict"]} <= allowed:
        return []
    return [f"verdict {verdict!r}, reference {reference['verdict']!r} "
            f"(interval {reference['interval']} is not within the tolerance of the margin)"]


def compare_chapter(chapter: str, root: Path | None = None) -> list[str]:
    """The differences between ``chapter``'s smoke outputs (:func:`run_dir`) and its reference
    (:func:`reference_dir`) in the book ``root``, each naming the chapter and file.

    Raises:
        FileNotFoundError: If an output or reference file is missing.
    """
    run, ref = run_dir(chapter, root), reference_dir(chapter, root)
    missing = [str(d / f) for d in (ref, run) for f in FILES if not (d / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{chapter}: missing {missing}")
    return ([f"{chapter} results.csv {p}" for p in
             compare_results(read_results(run), read_results(ref))] +
            [f"{chapter} claims.json {p}" for p in
             compare_claims(read_claims(run), read_claims(ref))])


def read_results(folder: Path) -> pd.DataFrame:
    """``folder``'s ``results.csv`` as text, an empty cell as ``""``, for :func:`compare_results`."""
    return pd.read_csv(folder / "results.csv", dtype=str, keep_default_na=False)


def read_claims(folder: Path) -> list[dict[str, Any]]:
    """``folder``'s ``claims.json``."""
    return json.loads((folder / "claims.json").read_text())
