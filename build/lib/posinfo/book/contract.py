"""The contract every chapter module keeps (``../shared/BOOK_CONTRACT.md``, in code).

A chapter is a notebook ``book/NN_<name>.ipynb`` and one module ``chNN_<name>`` of the package
:data:`CHAPTERS` that holds its experiment. The notebook resolves its parameters with the
module's ``SPEC``, calls ``validate`` before any work, runs the experiment, tests the
papers' findings with ``check_claims`` and ends with ``regression_summary``, the facts nbval
compares on the smoke profile. Between them passes the chapter's *results*: its tidy table
(``pd.DataFrame``) or, where a claim needs more than the table (chapter 2's content-loss maps), a
run object that holds the table. Its type is the chapter's own, so the protocol is generic in it.

No chapter module imports another, and nothing outside that package imports one: what two
chapters share lives in the core packages (``data``, ``models``, ``probe``, ``metrics``,
``book``, ``cache``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Protocol, TypeVar, get_type_hints

from posinfo.book.params import ChapterSpec, Config
from posinfo.book.results import Claim

CHAPTERS = "posinfo.chapters"  # the package of the chapter modules
Results = TypeVar("Results", contravariant=True)
_NOTEBOOK_STEM = re.compile(r"^\d\d_\w+$")


class ChapterModule(Protocol[Results]):
    """What a chapter module provides; the first argument of the last two is the chapter's
    results (positional, so each chapter names it after what it is: ``table`` or ``run``)."""

    SPEC: ChapterSpec

    def validate(self, cfg: Config, /) -> None:
        """Raise, naming the parameter or file, if a run with ``cfg`` cannot complete or cannot
        test the chapter's findings; do no work."""

    def check_claims(self, results: Results, cfg: Config, /) -> list[Claim]:
        """The papers' findings tested on this run's results, each verdict computed."""

    def regression_summary(self, results: Results, claims: Sequence[Claim], cfg: Config, /
                           ) -> dict[str, Any]:
        """Read back the files the run wrote, check them against the contract, and return the
        facts of the run a regression would change (for nbval)."""


CONTRACT_FUNCTIONS: dict[str, int] = {"validate": 1, "check_claims": 2, "regression_summary": 3}


def module_name(notebook_stem: str) -> str:
    """The chapter module of a notebook: ``"01_existence" -> CHAPTERS + ".ch01_existence"``."""
    if not _NOTEBOOK_STEM.match(notebook_stem):
        raise ValueError(f"a chapter notebook is named NN_<name>.ipynb; got {notebook_stem!r}")
    return f"{CHAPTERS}.ch{notebook_stem}"


def contract_violations(module: ModuleType) -> list[str]:
    """What ``module`` lacks of :class:`ChapterModule`, in words (empty if it keeps it)."""
    problems = []
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, ChapterSpec):
        problems.append("SPEC is not a ChapterSpec")
    elif module.__name__ != module_name(spec.chapter):
        problems.append(f"SPEC.chapter {spec.chapter!r} does not name this module")
    for name, arity in CONTRACT_FUNCTIONS.items():
        fn = getattr(module, name, None)
        if not callable(fn):
            problems.append(f"no function {name}")
            continue
        params = list(fn.__code__.co_varnames[:fn.__code__.co_argcount])
        if len(params) != arity or params[-1] != "cfg" or fn.__defaults__:
            problems.append(f"{name}{tuple(params)} does not take ({'..., ' * (arity - 1)}cfg)")
        if name == "regression_summary" and len(params) == arity and params[1] != "claims":
            problems.append("regression_summary's second argument is not claims")
    if not problems:
        first = [next(iter(get_type_hints(getattr(module, n)).values()))
                 for n in ("check_claims", "regression_summary")]
        if first[0] != first[1]:
            problems.append(f"check_claims takes {first[0]} but regression_summary {first[1]}")
    return problems
