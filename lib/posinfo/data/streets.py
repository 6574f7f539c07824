"""Generated street scenes: a stand-in for Cityscapes whose classes depend on where they are.

A scene is ``height x 2 height`` pixels (Cityscapes' aspect ratio). Above a random horizon, a
skyline of building blocks of random widths and heights stands against the sky; below it, a road
narrows towards a vanishing point near the middle and sidewalks fill the rest. People stand on the
sidewalks and cars on the road, nearer ones lower and larger (a ground-plane perspective).
Optionally (``n_poles``), thin poles stand on the sidewalks just beyond the kerb, half of them
carrying a small round sign: the thin, small objects at the left and right periphery of a street
scene, one to two pixels wide at a height of 48 pixels.

The four "stuff" regions (sky, building, road, sidewalk) are each filled with an independent draw
from ONE texture distribution (:mod:`posinfo.data.scenes`' stationary backgrounds): colour and texture
say that two regions differ, but not which class each is. A segmenter has to learn the layout (sky
on top, road at the bottom in the middle, sidewalks at the sides), i.e. to use absolute position,
as a Cityscapes segmenter does. People (upright ellipses) and cars (wide rounded boxes) are told
apart by shape, and can sit on the left, in the centre or on the right.

Every scene is drawn from ``np.random.default_rng((seed, index))``; ``region="left"`` (or
``"right"``) keeps every object inside the left (right) half, for the region-specific rankings.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from posinfo.data.scenes import background_waves, fill_waves, render_waves

STREETS_VERSION = 2  # raised whenever the same (seed, index) draws another scene
STREET_CLASSES: tuple[str, ...] = ("sky", "building", "road", "sidewalk", "person", "car", "pole",
                                   "sign")
STREET_REGIONS: tuple[str, ...] = ("any", "left", "right")
_PERSON, _CAR, _POLE, _SIGN = (STREET_CLASSES.index(c) for c in ("person", "car", "pole", "sign"))
_WIDTH = 2.0  # a scene's width in units of its height


def street_classes(n_poles: tuple[int, int] = (0, 0)) -> tuple[str, ...]:
    """The classes scenes with ``n_poles`` poles can hold: all of ``STREET_CLASSES``, or without
    poles the first six (no pole, no sign)."""
    return STREET_CLASSES if n_poles[1] > 0 else STREET_CLASSES[:_POLE]


def _layout(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, dict]:
    """The stuff classes on the grid ``y [H, 1] x x [1, W]`` (``x`` in units of the height) and the
    geometry the objects need: horizon, vanishing point and the road's half-width per unit depth."""
    horizon = rng.uniform(0.38, 0.55)
    n_blocks = rng.integers(3, 8)
    edges = np.sort(rng.uniform(0, _WIDTH, n_blocks - 1))
    tops = rng.uniform(0.06, horizon - 0.1, n_blocks)
    skyline = tops[np.searchsorted(edges, x)]  # [1, W]
    vanish = rng.uniform(0.4, 0.6) * _WIDTH
    spread = rng.uniform(0.3, 0.6) * _WIDTH / (1 - horizon)  # road half-width per unit below horizon
    road = (y >= horizon) & (np.abs(x - vanish) <= spread * (y - horizon))
    classes = np.where(y < skyline, 0, np.where(y < horizon, 1, np.where(road, 2, 3)))
    return classes, dict(horizon=horizon, vanish=vanish, spread=spread)


def _object(rng: np.random.Generator, geo: dict, span: tuple[float, float]
            ) -> tuple[int, float, float, float, float] | None:
    """One person or car: ``(class, centre x, centre y, half width, half height)`` in units of the
    height, standing on the ground inside ``span`` (a range of x); ``None`` if no place is found."""
    cls = _PERSON if rng.random() < 0.5 else _CAR
    for _ in range(20):
        foot = rng.uniform(geo["horizon"] + 0.2, 0.98)
        depth = foot - geo["horizon"]
        half_h, half_w = ((0.5 * depth, 0.2 * depth) if cls == _PERSON
                          else (0.22 * depth, 0.5 * depth))
        road = geo["spread"] * depth
        lo, hi = span[0] + half_w, span[1] - half_w
        if cls == _CAR:  # on the road
            lo, hi = max(lo, geo["vanish"] - road + half_w), min(hi, geo["vanish"] + road - half_w)
        if hi > lo:
            cx = rng.uniform(lo, hi)
            inside_road = abs(cx - geo["vanish"]) < road + half_w
            if cls == _CAR or not inside_road:  # people stand on the sidewalks
                return cls, cx, foot - half_h, half_w, half_h
    return None


def _pole(rng: np.random.Generator, geo: dict, span: tuple[float, float]
          ) -> list[tuple[int, float, float, float, float]] | None:
    """A pole centred on a sidewalk just beyond the kerb (a near pole's inner edge may touch the
    road) and, half of the time, a round sign centred on its top:
    shapes ``(class, centre x, centre y, half width, half height)`` as in :func:`_object`, the
    pole first; ``None`` if no place inside ``span`` is found."""
    has_sign = rng.random() < 0.5
    for _ in range(20):
        foot = rng.uniform(geo["horizon"] + 0.05, 0.98)
        depth = foot - geo["horizon"]
        half_w, half_h = 0.01 + 0.02 * depth, 0.05 + 0.8 * depth  # 1-2 px wide at 48 px
        sign = 0.025 + 0.05 * depth  # the sign's radius
        side = 1 if rng.random() < 0.5 else -1
        cx = geo["vanish"] + side * (geo["spread"] + rng.uniform(0.05, 0.3)) * depth
        reach = sign if has_sign else half_w
        if span[0] + reach <= cx <= span[1] - reach:
            shapes = [(_POLE, cx, foot - half_h, half_w, half_h)]
            return shapes + [(_SIGN, cx, foot - 2 * half_h, sign, sign)] * has_sign
    return None


def _shape(cls: int, x: np.ndarray, y: np.ndarray, obj: tuple) -> np.ndarray:
    """``bool [H, W]``: pixels inside an upright ellipse (person), a rounded box (car), a box
    (pole) or a disc (sign)."""
    _, cx, cy, half_w, half_h = obj
    u, v = np.abs(x - cx) / half_w, np.abs(y - cy) / half_h
    if cls == _POLE:
        return (u <= 1) & (v <= 1)
    return u ** 2 + v ** 2 <= 1 if cls in (_PERSON, _SIGN) else u ** 4 + v ** 4 <= 1


def street_scene(seed: int, index: int, height: int, region: str = "any",
                 n_objects: tuple[int, int] = (1, 4), n_poles: tuple[int, int] = (0, 0)
                 ) -> tuple[Tensor, Tensor]:
    """One scene with ``n_objects`` people and cars and ``n_poles`` poles (ranges [least, most]):
    image ``float32 [3, height, 2 height]`` in [0, 1] and classes ``int64 [height, 2 height]``
    (indices into ``STREET_CLASSES``)."""
    if region not in STREET_REGIONS:
        raise ValueError(f"unknown region {region!r}; choose from {list(STREET_REGIONS)}")
    rng = np.random.default_rng((seed, index))
    x = ((np.arange(int(_WIDTH * height)) + 0.5) / height)[None, :]
    y = ((np.arange(height) + 0.5) / height)[:, None]
    classes, geo = _layout(rng, x, y)
    textures = [background_waves(rng, "texture") for _ in range(4)]
    image = sum(np.where(classes == k, render_waves(t, x[0], y[:, 0]), 0)
                for k, t in enumerate(textures))
    span = {"any": (0.0, _WIDTH), "left": (0.0, _WIDTH / 2), "right": (_WIDTH / 2, _WIDTH)}[region]
    found = [_object(rng, geo, span) for _ in range(rng.integers(n_objects[0], n_objects[1] + 1))]
    groups = [[o] for o in found if o is not None]
    if n_poles[1] > 0:  # no draw without poles: the scenes of earlier versions' recipes stay
        poles = [_pole(rng, geo, span) for _ in range(rng.integers(n_poles[0], n_poles[1] + 1))]
        groups += [p for p in poles if p is not None]
    for obj in (o for g in sorted(groups, key=lambda g: g[0][2] + g[0][4]) for o in g):  # far first
        inside = _shape(obj[0], x, y, obj)
        fill = fill_waves(rng, image[:, inside].mean(1) if inside.any() else np.full(3, 0.5))
        image = np.where(inside, render_waves(fill, x[0], y[:, 0]), image)
        classes = np.where(inside, obj[0], classes)
    return (torch.from_numpy(np.clip(image, 0, 1).astype(np.float32)),
            torch.from_numpy(classes.astype(np.int64)))


def street_scenes(n: int, height: int, seed: int, region: str = "any",
                  n_objects: tuple[int, int] = (1, 4), n_poles: tuple[int, int] = (0, 0)
                  ) -> tuple[Tensor, Tensor]:
    """``n`` scenes (:func:`street_scene`): images ``float32 [n, 3, height, 2 height]`` and
    classes ``int64 [n, height, 2 height]``."""
    pairs = [street_scene(seed, i, height, region, n_objects, n_poles) for i in range(n)]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
