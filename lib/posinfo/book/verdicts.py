"""Verdicts as statistical statements: a claim's effect over replicates, its 90% interval, and a
three-valued verdict against the margin the paper's words imply.

A claim is written as a :class:`Rule`: what is measured per replicate (the *effect*), on which
side of a *margin* the paper puts it, and why that margin. :func:`judge` takes the effect of each
replicate (for a paired design, the per-replicate differences), forms a two-sided 90% t interval
(:func:`scipy.stats.t.interval`) and decides:

- ``holds``: the interval lies wholly on the paper's side of the margin;
- ``fails``: it lies wholly on the other side;
- ``inconclusive``: it straddles the margin (or touches it).

A t interval is used rather than a bootstrap because the book's replicates are few (3 to 10),
where a bootstrap interval is too narrow. Effects that do not vary between replicates have a
zero-width interval; a single replicate is never decided (``inconclusive``).

Every claim is also judged on a *control*: the same rule applied to a null version of its inputs
(a position-blind map, a random ranking, the compared conditions made equal, ...). A control that
holds shows a check that cannot tell position from its absence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

LEVEL = 0.90
VERDICTS = ("holds", "fails", "inconclusive")
Side = Literal["above", "below"]


@dataclass(frozen=True)
class Rule:
    """A paper's statement as a test.

    Attributes:
        effect: What is measured per replicate, in words (e.g. "SPC of VGG16 minus SPC of the
            raw image, lowest over H, V, G and every input").
        side: ``"above"`` if the paper puts the effect above the margin, ``"below"`` if below.
        margin: The threshold the paper's words imply.
        why: Why this margin (the paper's words, or the null it must exceed).
    """

    effect: str
    side: Side
    margin: float
    why: str = ""

    def __post_init__(self) -> None:
        if self.side not in ("above", "below"):
            raise ValueError(f"side must be 'above' or 'below', got {self.side!r}")

    def words(self) -> str:
        """The exact rule in words, as ``claims.json`` records it."""
        text = (f"{self.effect}: holds if the {LEVEL:.0%} interval over replicates lies wholly "
                f"{self.side} {self.margin:g}, fails if wholly {_other(self.side)}, else inconclusive")
        return text + (f" (margin: {self.why})" if self.why else "")


def _other(side: Side) -> str:
    return "below" if side == "above" else "above"


@dataclass(frozen=True)
class Judgement:
    """The outcome of a rule on the effects of ``n`` replicates."""

    verdict: str
    effect: float
    interval: tuple[float, float]
    n: int


def interval(effects: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Mean and two-sided ``level`` t interval of per-replicate ``effects``.

    Returns:
        ``(mean, low, high)``; a zero-width interval when the effects do not vary.

    Raises:
        ValueError: If there is no effect, or one is NaN or infinite.
    """
    x = np.asarray(effects, dtype=float)
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"effects must be finite and at least one, got {x.tolist()}")
    mean = float(x.mean())
    if x.size == 1 or np.ptp(x) == 0:
        return mean, mean, mean
    low, high = stats.t.interval(level, x.size - 1, loc=mean, scale=stats.sem(x))
    return mean, float(low), float(high)


def decide(low: float, high: float, rule: Rule) -> str:
    """``holds``, ``fails`` or ``inconclusive`` for an interval against ``rule``'s margin."""
    if rule.side == "below":
        low, high = -high, -low
        margin = -rule.margin
    else:
        margin = rule.margin
    if low > margin:
        return "holds"
    if high < margin:
        return "fails"
    return "inconclusive"


PRECISION = 6  # decimals an effect is judged at: far below any margin, above float rounding


def judge(effects: Sequence[float], rule: Rule) -> Judgement:
    """The verdict of ``rule`` on the effects of the replicates (see the module's docstring).

    Effects are rounded to ``PRECISION`` decimals first, so that float rounding (a difference
    of 1e-10 between two maps that are equal in exact arithmetic) never decides a verdict. A
    single replicate is never decided: one draw says nothing about its spread, so its verdict
    is ``inconclusive`` whatever its value.
    """
    x = np.round(np.asarray(effects, dtype=float), PRECISION)
    mean, low, high = interval(x)
    verdict = decide(low, high, rule) if x.size > 1 else "inconclusive"
    return Judgement(verdict, mean, (low, high), int(x.size))


def replicates_needed(effects: Sequence[float], rule: Rule, level: float = LEVEL,
                      limit: int = 1000) -> int | None:
    """How many replicates would resolve an inconclusive verdict, if the mean and standard
    deviation stayed as observed: the smallest ``n`` whose t interval clears the margin.

    Returns:
        ``None`` if it cannot be estimated (fewer than two varying effects, or the mean on the
        margin) or would exceed ``limit``.
    """
    x = np.asarray(effects, dtype=float)
    gap = abs(float(x.mean()) - rule.margin)
    sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
    if sd == 0 or gap == 0:
        return None
    for n in range(max(2, x.size), limit + 1):
        if stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n) < gap:
            return n
    return None


def per_replicate(table: pd.DataFrame, effect: Callable[[pd.DataFrame], float],
                  column: str = "replicate") -> list[float]:
    """``effect`` computed on the rows of each replicate of a tidy results table (ordered by the
    replicate ``column``)."""
    if column not in table.columns:
        raise ValueError(f"the results table has no column {column!r} to split replicates by")
    return [float(effect(group)) for _, group in table.groupby(column, sort=True)]


def substitute(table: pd.DataFrame, column: str, target: str, like: str,
               where: pd.Series | None = None) -> pd.DataFrame:
    """A null table for a control: the rows whose ``column`` is ``target`` replaced by copies of
    the rows whose ``column`` is ``like``, relabelled ``target``, so that the two conditions a
    claim compares are the same.

    Args:
        table: Tidy results.
        column: The column that names the compared conditions (a padding, a model, a source).
        target: The condition replaced.
        like: The condition it is replaced by.
        where: A boolean mask over ``table`` limiting the replacement to part of it (default:
            every row).

    Returns:
        The table with ``target``'s rows (within ``where``) swapped for ``like``'s.
    """
    where = pd.Series(True, index=table.index) if where is None else where
    if not where.index.equals(table.index):
        raise ValueError("substitute: the mask `where` must be indexed like the table")
    rest = table[~(where & (table[column] == target))]
    return pd.concat([rest, table[where & (table[column] == like)].assign(**{column: target})],
                     ignore_index=True)
