"""Chapter parameters: profiles, explicit values winning over the profile, and early errors.

Each chapter declares a :class:`ChapterSpec`: its parameters with the value each profile gives
them, and the allowed values of its choice parameters. The notebook's first cell (tagged
``parameters``) assigns literals; a knob left at ``None`` takes the profile's value. Papermill only
warns about a parameter name the notebook does not declare, so :func:`resolve` looks at the
notebook's namespace and raises for any name it does not know, before any computation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

PROFILES: tuple[str, ...] = ("smoke", "default", "paper")
COMMON: tuple[str, ...] = ("profile", "seed", "device", "data_root", "out_dir")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
# Names IPython puts in every namespace; never parameters.
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


@dataclass(frozen=True)
class ChapterSpec:
    """What a chapter accepts.

    Attributes:
        chapter: The notebook's stem, e.g. ``"01_existence"``; results go to ``out_dir/chapter``.
        profiles: For each of ``PROFILES``, the value of every knob in that profile.
        choices: For a choice parameter, its allowed values; a list-valued parameter is checked
            element by element.
    """

    chapter: str
    profiles: Mapping[str, Mapping[str, Any]]
    choices: Mapping[str, Sequence[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keys = [set(v) for v in self.profiles.values()]
        if set(self.profiles) != set(PROFILES) or any(k != keys[0] for k in keys):
            raise ValueError(f"{self.chapter}: every profile of {PROFILES} must set the same knobs")

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


def resolve_device(device: str) -> torch.device:
    """``"auto"`` picks CUDA when available; ``"cuda"`` without a GPU is an error."""
    _check_choice("device", device, DEVICES)
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but no CUDA device is available")
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
        ValueError: For an unknown profile, an unknown choice value, a parameter the chapter
            does not declare, or a missing common parameter.
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
    knobs = {k: _like(given[k], v) if given.get(k) is not None else v
             for k, v in spec.profiles[given["profile"]].items()}
    for name, allowed in spec.choices.items():
        _check_choice(name, knobs[name], allowed)
    return Config(
        chapter=spec.chapter,
        profile=given["profile"],
        seed=int(given["seed"]),
        device=resolve_device(given["device"]),
        data_root=_under_root(given["data_root"]),
        out_dir=_under_root(given["out_dir"]),
        knobs=knobs,
    )


def project_root() -> Path:
    """The book's top folder (the first parent of the working folder holding ``_toc.yml``), or
    the working folder itself."""
    here = Path.cwd().resolve()
    return next((p for p in (here, *here.parents) if (p / "_toc.yml").exists()), here)


def default_cache_dir() -> Path:
    """``$POSINFO_CACHE`` if set, else ``.cache/`` in the book's top folder."""
    env = os.environ.get("POSINFO_CACHE")
    return Path(env).expanduser() if env else project_root() / ".cache"


def _under_root(path: str | Path) -> Path:
    """A relative path is taken relative to the book's top folder, wherever the kernel runs."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root() / path
