"""Everything the book keeps on disk between runs: atomic writes, fingerprints, cached objects and
the one helper that trains, checkpoints, resumes and caches a network.

- A file appears complete or not at all (:func:`atomic_path`), so an interrupted run never leaves
  a half-written cache entry or result behind.
- Keys are :func:`fingerprint` s of everything that determines an entry (weights, tensors by value,
  configurations), so a changed input is never served a stale entry.
- Entries are read with ``torch.load(..., weights_only=True)``: tensors and plain data only, never
  unpickled code. An entry that cannot be read (truncated, corrupt, or not plain data) is named in
  a warning, removed and recomputed (:func:`load_entry`).
- Every network the book trains goes through :func:`train_cached`: checkpointed after each epoch,
  resumed from the last checkpoint after an interruption, and cached once trained.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from posinfo.book.params import Config, default_cache_dir, under_root


_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")  # what atomic_path's mkstemp names


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
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"no space left on the device to write {path}") from err
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


# Below this much free space, a failed ``torch.save`` is taken for a full disk: torch reports one
# as a bare ``RuntimeError`` ("unexpected pos ..."), not as an ``OSError``.
FULL_DISK_BYTES = 64 * 1024**2


def torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` ``obj`` (tensors and plain data) to ``path`` atomically.

    Raises:
        OSError: ``ENOSPC`` naming ``path`` when the write failed and its disk is (nearly) full.
        RuntimeError: Naming ``path`` when the write failed otherwise.
    """
    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as err:
            free = shutil.disk_usage(Path(tmp).parent).free
            if free < FULL_DISK_BYTES:  # atomic_path names the file
                raise OSError(errno.ENOSPC, f"No space left on device ({free} bytes free)") from err
            raise RuntimeError(f"could not write {path}: {err}") from err


def fingerprint(*items: object) -> str:
    """A short hash of tensors (by value), modules (by state dict and repr) and plain values
    (by ``repr``: numbers, strings, and containers and dataclass fields of them)."""
    h = hashlib.sha1()
    for item in items:
        if isinstance(item, nn.Module):
            h.update(repr(item).encode())
            for k, v in item.state_dict().items():
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(item, Tensor):
            h.update(str(tuple(item.shape)).encode())
            h.update(item.detach().cpu().contiguous().numpy().tobytes())
        else:
            h.update(repr(item).encode())
    return h.hexdigest()[:16]


def cache_root(cfg: Config) -> Path:
    """The cache folder of a run: the ``cache_dir`` knob, or the project's default
    (``$POSINFO_CACHE`` or ``.cache/`` in the book's top folder); a relative ``cache_dir`` is
    taken from the book's top folder, where :func:`~posinfo.book.params.resolve` checks it. The
    first time a process asks for a folder, temporaries that killed runs left in it are removed
    (:func:`remove_stale_temporaries_once`)."""
    root = default_cache_dir() if cfg.cache_dir is None else under_root(cfg.cache_dir)
    remove_stale_temporaries_once(root)
    return root


def remove_stale_temporaries(folder: str | Path, older_than: float = 3600.0) -> list[Path]:
    """Remove the temporaries of :func:`atomic_path` (``.<name>.<8 random characters>.tmp``)
    under ``folder`` (links not followed) that were last written more than ``older_than`` seconds
    ago: a write in progress is seconds old, so what is older was left by a killed run.

    Returns:
        The files removed.
    """
    now, removed = time.time(), []
    for top, _, names in os.walk(folder):
        for name in names:
            path = Path(top) / name
            try:
                if _TEMPORARY.match(name) and now - path.lstat().st_mtime > older_than:
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:  # another run finished or removed it meanwhile
                continue
    return removed


def remove_stale_temporaries_once(folder: str | Path) -> None:
    """:func:`remove_stale_temporaries` of ``folder``, with a warning naming each file removed,
    the first time this process asks for that folder: the cache folder (:func:`cache_root`) and
    a chapter's results folder (:func:`~posinfo.book.params.resolve`), where a killed run can
    leave the partial write of a cache entry, results.csv, claims.json or a figure."""
    _clean_once(Path(folder).resolve())


@functools.cache
def _clean_once(folder: Path) -> None:
    for path in remove_stale_temporaries(folder):
        warnings.warn(f"removed {path}, a partial write a killed run left behind", stacklevel=4)


def load_entry(path: str | Path, map_location: str | torch.device = "cpu") -> Any | None:
    """The object stored at ``path``, or ``None`` if there is none or it cannot be read.

    A file that exists but cannot be loaded as tensors and plain data is named in a warning and
    removed, so that the caller recomputes it.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a truncated, corrupt or unsafe file: recompute it
        warnings.warn(f"cache entry {path} could not be read ({short_cause(err)}); "
                      "removing it and computing it again", stacklevel=2)
        path.unlink(missing_ok=True)
        return None


def short_cause(err: BaseException) -> str:
    """``"<type>: <first sentence>"`` of a failed ``torch.load``, without torch's advice to load
    the file again with its safe mode turned off: for a cache entry that is not plain data, that
    would run whatever code the file asks for. For such an entry, the first sentence of the
    unpickler's own reason (``Unsupported global: ...``)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # torch's bold text
    _, unpickler, reason = text.partition("WeightsUnpickler error:")
    line = next((s.strip() for s in (reason if unpickler else text).splitlines() if s.strip()), "")
    sentence = re.split(r"(?<=\.)\s", line, maxsplit=1)[0].rstrip(".")
    return f"{type(err).__name__}: {sentence}" if sentence else type(err).__name__


def cached(path: str | Path, compute: Callable[[], Any]) -> Any:
    """Load ``path`` if it holds a readable entry, else ``compute()``, save the result atomically
    and return it.

    Args:
        path: Where the object (tensors and plain data) is, or will be, stored.
        compute: Called with no arguments when there is no readable entry.

    Returns:
        The stored or freshly computed object.
    """
    obj = load_entry(path)
    if obj is None:
        obj = compute()
        torch_save(obj, path)
    return obj


# --- training -------------------------------------------------------------------------------------


@dataclass
class Training:
    """A network in training: everything a checkpoint must hold to resume it exactly.

    Attributes:
        model: The network.
        optimizer: Its optimiser.
        scheduler: Its learning-rate schedule, if any.
        generator: A random generator the epochs draw from (batch order, augmentations), if any.
        record: Plain data the epochs write (losses, accuracies, seconds, selected weights).
        global_rng: Whether the epochs draw from torch's global CPU random state (dropout, say):
            a checkpoint then holds that state too, and a resumed run restores it. Trainings
            that draw only from their own generators leave the caller's global state alone.

    A checkpoint also holds the state of every ``torch.Generator`` that a submodule of the model
    keeps as its ``generator`` attribute (PermuteNet's permutations), so a resumed run draws what
    an uninterrupted one would.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any = None
    generator: torch.Generator | None = None
    record: dict[str, Any] = field(default_factory=dict)
    global_rng: bool = False

    def _model_generators(self) -> dict[str, torch.Generator]:
        """The generators submodules keep as their ``generator`` attribute, by module name."""
        return {name: m.generator for name, m in self.model.named_modules()
                if isinstance(getattr(m, "generator", None), torch.Generator)}

    def state_dict(self) -> dict[str, Any]:
        """The state of every part (tensors and plain data)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "generator": None if self.generator is None else self.generator.get_state(),
                "model_generators": {k: g.get_state() for k, g in self._model_generators().items()},
                "record": self.record}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore every part from :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.generator is not None:
            self.generator.set_state(state["generator"])
        for name, gen in self._model_generators().items():
            gen.set_state(state["model_generators"][name])
        self.record = state["record"]


def supervised_epoch(training: Training, images: Tensor, targets: Tensor,
                     loss_fn: Callable[[Tensor, Tensor], Tensor], order: Tensor, batch_size: int,
                     device: torch.device | str = "cpu") -> float:
    """One pass over ``images [N, ...]`` and ``targets [N, ...]`` in batches of ``order``: for each
    batch, the loss of the model's output, a step of the optimiser and one of the schedule.

    Returns:
        The mean loss per image.
    """
    model, opt = training.model.train(), training.optimizer
    total = 0.0
    for idx in order.split(batch_size):
        loss = loss_fn(model(images[idx].to(device)), targets[idx].to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        training.scheduler.step()
        total += loss.item() * len(idx)
    return total / len(images)


def train_cached(path: str | Path, start: Callable[[], Training],
                 epoch: Callable[[Training, int], None], epochs: int,
                 finish: Callable[[Training], dict[str, Any]], *, desc: str = "training",
                 progress: bool = True) -> dict[str, Any]:
    """A trained network's entry: from the cache, or trained now (resuming a partial run) and cached.

    Training runs ``epoch(training, i)`` for ``i = 0 .. epochs - 1`` on the state ``start()``
    builds. After every epoch the state is saved atomically to ``<path stem>.partial.pt`` (with
    torch's global CPU random state if ``training.global_rng``); a run that finds such a
    checkpoint resumes after its last epoch and ends with the same weights as an uninterrupted
    one. ``record["seconds"]`` accumulates the training time. Once trained, ``finish(training)``
    (weights and records as tensors and plain data) is saved to ``path`` and the checkpoint
    removed. Checkpoints are read onto the CPU; the model and optimiser copy them to their device.

    Args:
        path: The cache entry of the trained network (its name holds the cache key).
        start: Builds the freshly initialised network, optimiser, schedule and generator.
        epoch: Trains one epoch in place and writes to ``training.record``.
        epochs: How many epochs.
        finish: What is cached: the trained weights and the record.
        desc: The progress bar's label.
        progress: Show a progress bar over epochs.

    Returns:
        The cached entry, as ``finish`` made it.
    """
    path = Path(path)
    entry = load_entry(path)
    if entry is not None:
        return entry
    training, partial = start(), path.with_suffix(".partial.pt")
    state = load_entry(partial)
    if state is not None and not (isinstance(state, dict) and {"training", "rng", "epochs"} <= set(state)):
        warnings.warn(f"checkpoint {partial} is not a checkpoint of this version; training from "
                      "the start", stacklevel=2)
        state = None
    done = 0
    if state is not None:
        training.load_state_dict(state["training"])
        if training.global_rng:
            torch.set_rng_state(state["rng"])
        done = state["epochs"]
    training.record.setdefault("seconds", 0.0)
    for i in tqdm(range(done, epochs), desc=desc, disable=not progress, leave=False):
        begin = time.perf_counter()
        epoch(training, i)
        training.record["seconds"] += time.perf_counter() - begin
        rng = torch.get_rng_state() if training.global_rng else None
        torch_save({"training": training.state_dict(), "rng": rng, "epochs": i + 1}, partial)
    entry = finish(training)
    torch_save(entry, path)
    partial.unlink(missing_ok=True)
    return entry
