"""Chapter parameters: profiles, explicit values winning over the profile, and early errors.

Each chapter declares a :class:`ChapterSpec`: its parameters with the value each profile gives
them, and the allowed values of its choice parameters. The notebook's first cell (tagged
``parameters``) assigns literals; a knob left at ``None`` takes the profile's value. Papermill only
warns about a parameter name the notebook does not declare, so :func:`resolve` looks at the
notebook's namespace and raises for any name it does not know, before any computation.
"""

from __future__ import annotations

import dataclasses

import errno
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

PROFILES: tuple[str, ...] = ("smoke", "default", "paper")
COMMON: tuple[str, ...] = ("profile", "seed", "device", "data_root", "out_dir")
REPLICATE_STRIDE = 100_003  # seeds of the replicates of one run (a prime, so runs rarely share them)
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
MIN_FREE_MB = 100.0  # free disk a run needs in its output and cache folders before it starts
# Names IPython puts in every namespace; never parameters.
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}
_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,),
                                       "str": (str,)}


@dataclass(frozen=True)
class Knob:
    """A knob's declared type and range, checked by :func:`resolve` before any work.

    Attributes:
        type: ``"int"``, ``"float"`` (an int is accepted too), ``"bool"`` or ``"str"``.
        low, high: Inclusive bounds of a number (``None``: unbounded on that side).
        choices: The allowed values (of a string, or of each element of a list).
        is_list: A non-empty list of such values (a single string given for it becomes a list).
        optional: ``None`` is allowed (for example ``n_test=None``: every image).
        by_name: A ``{name: value}`` mapping is allowed too (``pretrain_size={"vgg16_bn": 32}``).
        help: What the value means, where its type does not say it (a path, say).
    """

    type: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    is_list: bool = False
    optional: bool = False
    by_name: bool = False
    help: str = ""

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"unknown knob type {self.type!r}; choose from {list(_TYPES)}")

    def describe(self) -> str:
        """What the knob takes, in words."""
        if self.help:
            return self.help
        what = (f"one of {list(self.choices)}" if self.choices is not None else
                f"{'an' if self.type == 'int' else 'a'} {self.type}" + self._range())
        if self.is_list:
            what = f"a non-empty list, each {what}"
        what += " (or a {name: value} mapping of such values)" if self.by_name else ""
        return what + (", or None" if self.optional else "")

    def _range(self) -> str:
        if self.low is not None and self.high is not None:
            return f" in [{self.low}, {self.high}]"
        if self.low is not None:
            return f", at least {self.low}"
        return f", at most {self.high}" if self.high is not None else ""

    def _fits(self, value: Any) -> bool:
        if isinstance(value, bool) and self.type != "bool":
            return False
        if not isinstance(value, _TYPES[self.type]):
            return False
        if self.choices is not None:
            return value in self.choices
        return not isinstance(value, (int, float)) or isinstance(value, bool) or (
            (self.low is None or value >= self.low) and (self.high is None or value <= self.high))

    def check(self, name: str, value: Any) -> None:
        """Raise a ``ValueError`` naming the knob, the value (or the element of it that does not
        fit) and what the knob takes, unless ``value`` fits."""
        if value is None and self.optional:
            return
        if self.by_name and isinstance(value, dict):
            items = list(value.values()) if all(isinstance(k, str) for k in value) else [None]
        elif self.is_list:
            items = list(value) if isinstance(value, (list, tuple)) else [value]
            if isinstance(value, str) or not isinstance(value, (list, tuple)) or not items:
                raise ValueError(f"parameter {name!r} got {value!r}; it takes {self.describe()}")
        else:
            items = [value]
        bad = [v for v in items if not self._fits(v)] or ([value] if not items else [])
        if bad:
            part = "" if bad[0] is value else f" ({bad[0]!r} does not fit)"
            raise ValueError(f"parameter {name!r} got {value!r}{part}; it takes {self.describe()}")

    def wrong_values(self) -> dict[str, Any]:
        """Values the knob must refuse: of the wrong type, out of its range, an empty list."""
        out: dict[str, Any] = {"wrong type": 1.5 if self.type in ("int", "str", "bool") else "fast"}
        if self.type == "bool":
            out["wrong type"] = "no"
        if self.choices is not None:
            numbers = all(isinstance(c, int) for c in self.choices)
            out["out of range"] = max(self.choices) + 1 if numbers else "no such value"
        elif self.low is not None:
            out["out of range"] = self.low - 1
        elif self.high is not None:
            out["out of range"] = self.high + 1
        if self.is_list:
            out["empty list"] = []
            out = {k: [v] if k != "empty list" else v for k, v in out.items()}
        return out


def integer(low: float | None = None, high: float | None = None, **kw: Any) -> Knob:
    """An ``int`` knob in ``[low, high]``."""
    return Knob("int", low, high, **kw)


def real(low: float | None = None, high: float | None = None, **kw: Any) -> Knob:
    """A ``float`` knob in ``[low, high]``."""
    return Knob("float", low, high, **kw)


def choice(values: Sequence[Any], **kw: Any) -> Knob:
    """A knob that takes one of ``values`` (strings, or ints when ``values`` are ints)."""
    kind = "int" if all(isinstance(v, int) and not isinstance(v, bool) for v in values) else "str"
    return Knob(kind, choices=tuple(values), **kw)


def path(help: str) -> Knob:
    """A path knob (a string, or ``None`` for its default); ``help`` says what it points to."""
    return Knob("str", optional=True, help=help)


FLAG = Knob("bool")
PATH = path("a folder for the caches; None: $POSINFO_CACHE or .cache/ in the book's folder")
COMMON_TYPES: dict[str, Knob] = {"seed": integer(0, 2**31 - 1), "device": choice(DEVICES),
                                 "data_root": Knob("str"), "out_dir": Knob("str")}


@dataclass(frozen=True)
class ChapterSpec:
    """What a chapter accepts.

    Attributes:
        chapter: The notebook's stem, e.g. ``"01_existence"``; results go to ``out_dir/chapter``.
        profiles: For each of ``PROFILES``, the value of every knob in that profile.
        types: Every knob's declared type and range (:class:`Knob`); each profile's values must
            fit them.
    """

    chapter: str
    profiles: Mapping[str, Mapping[str, Any]]
    types: Mapping[str, Knob] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keys = [set(v) for v in self.profiles.values()]
        if set(self.profiles) != set(PROFILES) or any(k != keys[0] for k in keys):
            raise ValueError(f"{self.chapter}: every profile of {PROFILES} must set the same knobs")
        if set(self.types) != keys[0]:
            raise ValueError(f"{self.chapter}: knobs without a declared type "
                             f"{sorted(keys[0] - set(self.types))}, types of no knob "
                             f"{sorted(set(self.types) - keys[0])}")
        for profile, values in self.profiles.items():
            for name, value in values.items():
                self.types[name].check(name, value)

    @property
    def knobs(self) -> tuple[str, ...]:
        """The experiment's own parameters, besides the common ones."""
        return tuple(self.profiles["default"])


@dataclass(frozen=True)
class Config:
    """The resolved parameters of one run: the common ones as attributes, the knobs in ``knobs``."""

    chapter: str
    profile: str
    seed: int
    device: torch.device
    data_root: Path
    out_dir: Path
    knobs: Mapping[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.knobs[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def results_dir(self) -> Path:
        """``out_dir/chapter``, where results.csv, claims.json and figures go."""
        return self.out_dir / self.chapter

    def replicate(self, index: int) -> Config:
        """The configuration of replicate ``index`` of this run: seed ``seed + REPLICATE_STRIDE *
        index``, hence its own data draw, network training and readout initialisation. Replicate
        0 is the run itself; the replicates of two runs overlap only if their seeds differ by a
        multiple of the stride."""
        if index < 0:
            raise ValueError(f"replicate index must be >= 0, got {index}")
        return dataclasses.replace(self, seed=self.seed + REPLICATE_STRIDE * index)


def _is_literal(value: Any) -> bool:
    """Whether ``value`` is what a parameters cell can assign: None, a bool, number or string, or
    a list, tuple or dict of those."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_literal(v) for v in value)
    if isinstance(value, dict):
        return all(_is_literal(k) and _is_literal(v) for k, v in value.items())
    return False


def parameters_in(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The parameter-like variables of a notebook namespace: literals not named by IPython.

    Results of later cells (configs, tensors, tables) are not literals, so re-running the cell
    that resolves the parameters in the same kernel still works.
    """
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and k not in _IPYTHON_NAMES and _is_literal(v)}


def _like(value: Any, profile_value: Any) -> Any:
    """A single string given for a list knob (``papermill -p patterns HS``) becomes a list."""
    return [value] if isinstance(profile_value, list) and isinstance(value, str) else value


def _check_choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    values = value if isinstance(value, (list, tuple)) else [value]
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"unknown value {bad[0]!r} for parameter {name!r}; choose from {list(allowed)}")


def resolve_device(device: str, profile: str = "default") -> torch.device:
    """``"auto"`` picks CUDA when available; ``"cuda"`` without a GPU is an error, and so is the
    ``paper`` profile (sized for a GPU) with ``"auto"`` on a machine without one: it runs on the
    CPU only when asked for with ``device="cpu"``."""
    _check_choice("device", device, DEVICES)
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but no CUDA device is available")
    if device == "auto" and profile == "paper" and not torch.cuda.is_available():
        raise ValueError("the paper profile is sized for a GPU and none is available; pass "
                         "device='cpu' (papermill: -p device cpu) to run it on the CPU anyway")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":  # the same seed gives the same numbers on a GPU too
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.device(device)


def resolve(spec: ChapterSpec, namespace: Mapping[str, Any]) -> Config:
    """Validate a notebook's parameters against ``spec`` and fill knobs from the profile.

    Args:
        spec: The chapter's declaration.
        namespace: The notebook's globals after the parameters (and papermill's injected) cell.

    Returns:
        The resolved :class:`Config`.

    Raises:
        ValueError: For an unknown profile, a parameter the chapter does not declare, a missing
            common parameter, or a value of the wrong type or out of its knob's range (naming
            the parameter, the value and what it takes).
        OSError: If the results folder (``out_dir/chapter``) or the cache folder cannot be
            written to, or their disk is (nearly) full (:func:`check_writable`).

    The first time a process resolves a chapter, the temporaries of atomic writes that a killed
    run left in its results folder are removed, with a warning naming each
    (:func:`posinfo.cache.remove_stale_temporaries_once`).
    """
    given = parameters_in(namespace)
    unknown = sorted(set(given) - set(COMMON) - set(spec.knobs))
    if unknown:
        raise ValueError(
            f"{spec.chapter} does not declare parameter(s) {unknown}; "
            f"it accepts {list(COMMON) + list(spec.knobs)}"
        )
    missing = [k for k in COMMON if k not in given]
    if missing:
        raise ValueError(f"{spec.chapter}: the parameters cell must set {missing}")
    _check_choice("profile", given["profile"], PROFILES)
    for name, knob in COMMON_TYPES.items():
        knob.check(name, given[name])
    knobs = {k: _like(given[k], v) if given.get(k) is not None else v
             for k, v in spec.profiles[given["profile"]].items()}
    for name, value in knobs.items():
        spec.types[name].check(name, value)
    cfg = Config(
        chapter=spec.chapter,
        profile=given["profile"],
        seed=given["seed"],
        device=resolve_device(given["device"], given["profile"]),
        data_root=under_root(given["data_root"]),
        out_dir=under_root(given["out_dir"]),
        knobs=knobs,
    )
    check_writable(cfg.results_dir, "out_dir")
    # posinfo.cache imports this module, so importing it at the top would be an import cycle
    from posinfo.cache import remove_stale_temporaries_once
    remove_stale_temporaries_once(cfg.results_dir)  # what a killed run of the chapter left
    if "cache_dir" in knobs:
        check_writable(default_cache_dir() if knobs["cache_dir"] is None
                       else under_root(knobs["cache_dir"]), "cache_dir")
    return cfg


def check_writable(folder: Path, name: str, min_free_mb: float = MIN_FREE_MB) -> None:
    """Create ``folder`` if needed and write a file in it, so that a folder a run cannot write
    to, or a disk with less than ``min_free_mb`` MB free, fails before any work.

    Raises:
        OSError: Naming the parameter, the folder and the cause (for example "no space left").
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
        free = shutil.disk_usage(folder).free / 2**20
    except OSError as err:
        raise OSError(err.errno, f"parameter {name!r}: cannot write to {folder}: "
                                 f"{err.strerror or err}") from err
    if free < min_free_mb:
        raise OSError(errno.ENOSPC, f"parameter {name!r}: no space left in {folder} "
                                    f"({free:.0f} MB free; a run needs at least {min_free_mb:.0f} MB)")


def project_root() -> Path:
    """The book's top folder (the first parent of the working folder holding ``_toc.yml``), or
    the working folder itself."""
    here = Path.cwd().resolve()
    return next((p for p in (here, *here.parents) if (p / "_toc.yml").exists()), here)


def default_cache_dir() -> Path:
    """``$POSINFO_CACHE`` if set, else ``.cache/`` in the book's top folder."""
    env = os.environ.get("POSINFO_CACHE")
    return Path(env).expanduser() if env else project_root() / ".cache"


def under_root(path: str | Path) -> Path:
    """A relative path is taken relative to the book's top folder, wherever the kernel runs."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root() / path
