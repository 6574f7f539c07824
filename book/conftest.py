"""nbval runs the chapters in kernels started from this process. Their stored smoke outputs were
computed with two torch threads (CI's cores); a different thread count changes the order of
floating-point sums and can move a close number. The kernels inherit these variables, so the
comparison uses two threads on any machine and whatever the caller's environment says.

``test_smoke_reference.py`` then compares the results the chapters wrote with their stored
references, up to a tolerance. It runs after every notebook of the session, and checks only the
chapters this session executed (:func:`executed_chapters`)."""

from __future__ import annotations

import os
import time

import pytest

SMOKE_THREADS = "2"  # tools/store_smoke_outputs.py stores the outputs with the same count
REFERENCE_CHECK = "test_smoke_reference.py"

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = SMOKE_THREADS

_session: dict[str, object] = {"start": time.time(), "chapters": frozenset()}


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Run the reference check after the notebooks, whatever order the files were named in."""
    items.sort(key=lambda item: item.path.name == REFERENCE_CHECK)  # stable: keeps each group's order


def pytest_collection_finish(session: pytest.Session) -> None:
    """Record which chapters nbval executes in this session: the notebooks whose cells are still
    selected once ``-k`` and ``-m`` have deselected theirs."""
    _session["chapters"] = frozenset(item.path.stem for item in session.items
                                     if item.path.suffix == ".ipynb")


@pytest.fixture(scope="session")
def executed_chapters() -> frozenset[str]:
    """The chapters (notebook stems) whose cells nbval runs in this session."""
    return _session["chapters"]  # type: ignore[return-value]


@pytest.fixture(scope="session")
def session_start() -> float:
    """When this pytest process loaded this file (seconds since the epoch): outputs written
    earlier come from another run."""
    return _session["start"]  # type: ignore[return-value]
