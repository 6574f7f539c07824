"""Atomic file writes: a file appears complete or not at all, so interrupted runs never leave
half-written caches or results behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    Args:
        path: The final destination. Parent folders are created.

    Yields:
        A temporary file path in the same folder (so the final rename is atomic).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def cached(path: str | Path, compute: Callable[[], Any]) -> Any:
    """Load ``path`` if it exists, else ``compute()``, save the result atomically and return it.

    Args:
        path: Where the object is (or will be) stored with ``torch.save``.
        compute: Called with no arguments when the file is missing.

    Returns:
        The stored or freshly computed object.
    """
    path = Path(path)
    if path.exists():
        return torch.load(path, map_location="cpu", weights_only=False)
    obj = compute()
    torch_save(obj, path)
    return obj
