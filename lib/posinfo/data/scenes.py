"""The embedded dataset: generated "natural-like" scenes of ten shape classes, at any resolution.

Each scene is a stationary textured background (a few coloured sinusoidal gratings plus smooth
noise made of random plane waves) with one or several textured shapes on top. A scene is first
*drawn* as a resolution-free description (normalised coordinates, ``x`` to the right and ``y``
downwards, both in ``[0, 1]`` over the frame) from ``np.random.default_rng((seed, index))`` and
only then *rendered* on the pixel-centre grid of the requested size, so the same scene at 64 and
128 px has the same objects at the same normalised places.

The content carries no absolute-position cue of its own: backgrounds are stationary random fields
(every wave has a uniformly random phase), object centres are uniform within their region, object
and background colours are drawn symmetrically about mid-grey (so the mean image is flat, even
where objects are more frequent), and nothing is tied to the image border. Only the centres of
the objects are bounded (symmetrically) to keep each object mostly inside the frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

CLASS_NAMES: tuple[str, ...] = ("disk", "square", "triangle", "ring", "cross", "star", "diamond",
                                "hexagon", "crescent", "bar")
NUM_CLASSES = len(CLASS_NAMES)
REGIONS: tuple[str, ...] = ("any", "left", "centre", "right")
BACKGROUNDS: tuple[str, ...] = ("texture", "flat", "black")

_REGION_X = {"any": (0.0, 1.0), "left": (0.0, 0.5), "centre": (0.25, 0.75), "right": (0.5, 1.0)}
_MARGIN = 0.8  # an object's centre stays this many radii away from the border
_MIN_CONTRAST = 0.4  # least RGB distance between an object's base colour and the background's
_SUPERSAMPLE = (-0.25, 0.25)  # 2 x 2 sub-pixel offsets (in pixels) for anti-aliased coverage
# The crescent (unit disk minus a disk of radius 0.75 at (0.55, 0)) has its centroid at
# (-0.3373, 0) and reaches 1.2512 from it (found numerically); it is moved and shrunk so that its
# centroid is the object's centre and it fits the unit circle, like every other shape.
_CRESCENT_CENTROID, _CRESCENT_REACH = -0.3373, 1.2512


class Scene(NamedTuple):
    """One rendered scene.

    Attributes:
        image: ``float32 [3, H, W]`` in ``[0, 1]``.
        label: Class index (``0 .. NUM_CLASSES - 1``) of the first (largest) object.
        class_mask: ``int64 [H, W]``: ``0`` on the background, ``c + 1`` where class ``c`` is
            visible (later objects hide earlier ones).
        saliency: ``float32 [H, W]`` in ``{0, 1}``: ``1`` on any object (``class_mask > 0``).
    """

    image: Tensor
    label: int
    class_mask: Tensor
    saliency: Tensor


class SceneObject(NamedTuple):
    """Where and what one object of a scene is, in resolution-free normalised coordinates.

    Attributes:
        class_id: Its class, an index into ``CLASS_NAMES``.
        x: Horizontal position of its centre (centroid) in ``[0, 1]``, left to right.
        y: Vertical position of its centre in ``[0, 1]``, top to bottom.
        diameter: Diameter of its bounding circle as a fraction of the image side.
        angle: Its rotation in radians.
    """

    class_id: int
    x: float
    y: float
    diameter: float
    angle: float


class Waves(NamedTuple):
    """A colour field ``base + sum_k weights[:, k] * cos(freqs[k] . (x, y) + phases[k])``.

    Attributes:
        base: ``[3]`` mean colour.
        freqs: ``[K, 2]`` angular frequencies (radians per unit of normalised length).
        phases: ``[K]`` phases in radians.
        weights: ``[3, K]`` colour (and amplitude) of each wave.
    """

    base: np.ndarray
    freqs: np.ndarray
    phases: np.ndarray
    weights: np.ndarray


class _Spec(NamedTuple):
    """A whole scene before rendering: its background and its objects with their fills."""

    background: Waves
    objects: list[SceneObject]
    fills: list[Waves]


# ----------------------------------------------------------------------------------------------
# Shapes: boolean "inside" tests in an object's own frame, where the shape fits the unit circle
# and its centroid is at the origin.


def _star(u: np.ndarray, v: np.ndarray, points: int, inner: float) -> np.ndarray:
    """Inside a star polygon with ``points`` vertices at radius 1 (one on ``+u``) and as many at
    radius ``inner`` between them; ``inner = cos(pi / points)`` gives the regular polygon."""
    half = np.pi / points
    r = np.hypot(u, v)
    a = np.abs((np.arctan2(v, u) + half) % (2 * half) - half)  # angle to the nearest vertex
    ic, is_ = inner * np.cos(half), inner * np.sin(half)
    return (r * np.cos(a) - 1) * is_ + r * np.sin(a) * (1 - ic) <= 0


def _crescent(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside the crescent, centred on its centroid and scaled into the unit circle."""
    u, v = u * _CRESCENT_REACH + _CRESCENT_CENTROID, v * _CRESCENT_REACH
    return (u * u + v * v <= 1) & ((u - 0.55) ** 2 + v * v > 0.75 ** 2)


_SHAPES: tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], ...] = (
    lambda u, v: u * u + v * v <= 1,  # disk
    lambda u, v: np.maximum(np.abs(u), np.abs(v)) <= 0.7071,  # square
    lambda u, v: _star(u, v, 3, 0.5),  # triangle
    lambda u, v: np.abs(u * u + v * v - 0.6513) <= 0.3487,  # ring: radii 0.55 .. 1
    lambda u, v: (np.minimum(np.abs(u), np.abs(v)) <= 0.3)
    & (np.maximum(np.abs(u), np.abs(v)) <= 0.95),  # cross
    lambda u, v: _star(u, v, 5, 0.42),  # star
    lambda u, v: np.abs(u) + np.abs(v) / 0.55 <= 1,  # diamond
    lambda u, v: _star(u, v, 6, 0.8660),  # hexagon
    _crescent,
    lambda u, v: (np.abs(u) <= 0.95) & (np.abs(v) <= 0.25),  # bar
)


# ----------------------------------------------------------------------------------------------
# Drawing a scene's description from a random generator (no dependence on the resolution).


def _waves(rng: np.random.Generator, n: int, cycles: tuple[float, float],
           amplitude: tuple[float, float], colour: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` plane waves with uniform random directions and phases: ``(freqs, phases, weights)``.

    ``cycles`` bounds the number of cycles per unit length; each wave's colour is a random RGB
    vector in ``[-1, 1]^3`` (or ``colour``, shared) times an amplitude drawn from ``amplitude``.
    """
    theta = rng.uniform(0, 2 * np.pi, n)
    direction = np.stack([np.cos(theta), np.sin(theta)], 1)
    freqs = 2 * np.pi * rng.uniform(*cycles, n)[:, None] * direction
    phases = rng.uniform(0, 2 * np.pi, n)
    colours = rng.uniform(-1, 1, (3, n)) if colour is None else np.repeat(colour[:, None], n, 1)
    return freqs, phases, colours * rng.uniform(*amplitude, n)


def background_waves(rng: np.random.Generator, kind: str) -> Waves:
    """A stationary background: a base colour (symmetric about grey) plus, for ``"texture"``,
    1-3 sinusoidal gratings and smooth noise in two colours, all times a random contrast.

    The same numbers are drawn whatever ``kind``, so only the look changes with it.
    """
    base = rng.uniform(0.15, 0.85, 3)
    parts = [_waves(rng, 3, (2.0, 9.0), (0.05, 0.3))]
    parts += [_waves(rng, 5, (0.7, 3.5), (0.05, 0.2), rng.uniform(-1, 1, 3)) for _ in range(2)]
    keep = np.r_[np.arange(3) < rng.integers(1, 4), np.ones(10, bool)] & (kind == "texture")
    contrast = rng.uniform(0.2, 1.0)
    freqs, phases = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    weights = np.concatenate([p[2] for p in parts], 1) * contrast
    base = np.zeros(3) if kind == "black" else base
    return Waves(base, freqs[keep], phases[keep], weights[:, keep])


def _object_colour(rng: np.random.Generator, against: np.ndarray) -> np.ndarray:
    """A base colour at least ``_MIN_CONTRAST`` from ``against`` (the farthest of 16 tries
    otherwise); the rule is symmetric about grey, so it adds no mean brightness to objects."""
    candidates = rng.uniform(0.05, 0.95, (16, 3))
    distance = np.linalg.norm(candidates - against, axis=1)
    good = np.flatnonzero(distance >= _MIN_CONTRAST)
    return candidates[good[0] if len(good) else distance.argmax()]


def fill_waves(rng: np.random.Generator, against: np.ndarray) -> Waves:
    """An object's fill: a contrasting base colour with faint stripes or faint smooth noise, so
    that neither colour nor texture identifies the class."""
    base = _object_colour(rng, against)
    stripes = _waves(rng, 1, (3.0, 10.0), (0.05, 0.2))
    noise = _waves(rng, 3, (1.5, 5.0), (0.03, 0.12), rng.uniform(-1, 1, 3))
    use = stripes if rng.random() < 0.5 else noise
    return Waves(base, *use)


def _place(rng: np.random.Generator, classes: np.ndarray, scale: tuple[float, float],
           region: str) -> SceneObject:
    """One object: uniform class among ``classes``, diameter, rotation, and a centre uniform
    within ``region`` and at least ``_MARGIN`` radii from every border."""
    class_id = int(rng.choice(classes))
    diameter = rng.uniform(*scale)
    margin = _MARGIN * diameter / 2
    lo, hi = _REGION_X[region]
    x = rng.uniform(max(lo, margin), min(hi, 1 - margin))
    y = rng.uniform(margin, 1 - margin)
    angle = rng.uniform(0, 2 * np.pi)
    return SceneObject(class_id, float(x), float(y), float(diameter), float(angle))


# ----------------------------------------------------------------------------------------------
# Rendering on the pixel-centre grid.


def render_waves(waves: Waves, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Evaluate ``waves`` on the grid ``y x x`` (normalised coordinates): ``float64 [3, len(y),
    len(x)]``, unclipped. Separable: ``cos(a x + b y + p) = cos(a x + p) cos(b y) - sin(a x + p)
    sin(b y)``, so the cost is one small contraction over the waves."""
    ax = waves.freqs[:, :1] * x + waves.phases[:, None]  # [K, W]
    by = waves.freqs[:, 1:] * y  # [K, H]
    rows = np.concatenate([np.cos(by), np.sin(by)]).T  # [H, 2K]
    cols = np.concatenate([np.cos(ax), -np.sin(ax)])  # [2K, W]
    weights = np.concatenate([waves.weights, waves.weights], 1)  # [3, 2K]
    # einsum without BLAS: no thread pool, so no stalls when other work holds the cores.
    out = np.einsum("chk,kw->chw", rows * weights[:, None, :], cols)  # [3, H, W]
    return out + waves.base[:, None, None]


def _coverage(obj: SceneObject, size: int) -> tuple[slice, slice, np.ndarray]:
    """Anti-aliased coverage of ``obj`` on a ``size x size`` frame, over its bounding box only.

    Returns:
        Row and column slices of the box and the coverage ``float64 [h, w]`` in ``[0, 1]``
        (fraction of the 2 x 2 sub-pixel samples inside the shape).
    """
    radius = obj.diameter / 2
    c0, r0 = (max(0, int(np.floor((t - radius) * size))) for t in (obj.x, obj.y))
    c1, r1 = (min(size, int(np.ceil((t + radius) * size))) for t in (obj.x, obj.y))
    offsets = np.array(_SUPERSAMPLE)
    xs = ((np.arange(c0, c1)[:, None] + 0.5 + offsets).ravel() / size - obj.x) / radius
    ys = ((np.arange(r0, r1)[:, None] + 0.5 + offsets).ravel() / size - obj.y) / radius
    cos, sin = np.cos(obj.angle), np.sin(obj.angle)
    u = cos * xs[None, :] + sin * ys[:, None]
    v = cos * ys[:, None] - sin * xs[None, :]
    inside = _SHAPES[obj.class_id](u, v).astype(np.float64)
    alpha = inside.reshape(r1 - r0, 2, c1 - c0, 2).mean((1, 3))
    return slice(r0, r1), slice(c0, c1), alpha


def _render(spec: _Spec, size: int) -> Scene:
    """Render a scene description on a ``size x size`` pixel-centre grid."""
    grid = (np.arange(size) + 0.5) / size
    image = np.clip(render_waves(spec.background, grid, grid), 0, 1)
    class_mask = np.zeros((size, size), np.int64)
    for obj, fill in zip(spec.objects, spec.fills):
        rows, cols, alpha = _coverage(obj, size)
        colour = np.clip(render_waves(fill, grid[cols], grid[rows]), 0, 1)
        image[:, rows, cols] += alpha * (colour - image[:, rows, cols])
        class_mask[rows, cols] = np.where(alpha >= 0.5, obj.class_id + 1, class_mask[rows, cols])
    saliency = (class_mask > 0).astype(np.float32)
    return Scene(torch.from_numpy(image.astype(np.float32)), spec.objects[0].class_id,
                 torch.from_numpy(class_mask), torch.from_numpy(saliency))


# ----------------------------------------------------------------------------------------------
# Public interface.


def _check_options(n: int, size: int, seed: int, n_objects: tuple[int, int],
                   object_scale: tuple[float, float], region: str, background: str,
                   classes: tuple[int, ...]) -> None:
    """Raise ``ValueError`` naming the first invalid argument of :class:`SyntheticScenes`."""
    problems = {
        "n must be an integer >= 0": int(n) != n or n < 0,
        "size must be an integer >= 8": int(size) != size or size < 8,
        "seed must be an integer >= 0": int(seed) != seed or seed < 0,
        "n_objects must be integers (low, high) with 1 <= low <= high":
            len(n_objects) != 2 or any(int(k) != k for k in n_objects)
            or not 1 <= n_objects[0] <= n_objects[1],
        "object_scale must be (low, high) with 0 < low <= high <= 1":
            len(object_scale) != 2 or not 0 < object_scale[0] <= object_scale[1] <= 1,
        f"region must be one of {REGIONS}": region not in REGIONS,
        f"background must be one of {BACKGROUNDS}": background not in BACKGROUNDS,
        f"classes must be a non-empty collection of integers in 0..{NUM_CLASSES - 1}":
            not classes or any(int(c) != c or not 0 <= c < NUM_CLASSES for c in classes),
    }
    for message, bad in problems.items():
        if bad:
            raise ValueError(f"{message}; got {n=}, {size=}, {seed=}, {n_objects=}, "
                             f"{object_scale=}, {region=}, {background=}, {classes=}")


class SyntheticScenes(torch.utils.data.Dataset):
    """``n`` generated scenes of ``size x size`` pixels, deterministic per ``(seed, index)``.

    Item ``i`` is drawn from ``np.random.default_rng((seed, i))`` (never the global random state)
    as a resolution-free description, then rendered at ``size``: the same seed, index and options
    give identical tensors, and the same scene at another ``size`` has the same objects at the same
    normalised positions. Objects are sorted by decreasing size and drawn in that order, so the
    label (the first object's class) is that of the largest object and later ones lie on top.

    Args:
        n: Number of scenes (``>= 0``).
        size: Side of the square images in pixels (``>= 8``).
        seed: Seed of the collection (``>= 0``).
        n_objects: Inclusive range ``(low, high)`` of the number of objects, ``1 <= low <= high``.
        object_scale: Inclusive range of an object's diameter (of its bounding circle) as a
            fraction of the image side, within ``(0, 1]``.
        region: Where object centres may fall (``REGIONS``): ``"any"``, ``"left"`` (``x < 1/2``),
            ``"centre"`` (``1/4 <= x <= 3/4``) or ``"right"`` (``x >= 1/2``); ``y`` is free.
        background: ``"texture"`` (stationary random texture), ``"flat"`` (one random colour) or
            ``"black"``.
        classes: The class ids to draw from (uniformly); ``None`` for all ``NUM_CLASSES``.

    Example:
        >>> scenes = SyntheticScenes(100, size=64, seed=1)
        >>> scene = scenes[0]
        >>> scene.image.shape, scene.label in range(NUM_CLASSES)
        (torch.Size([3, 64, 64]), True)
    """

    def __init__(self, n: int, size: int = 96, seed: int = 0, *,
                 n_objects: tuple[int, int] = (1, 1),
                 object_scale: tuple[float, float] = (0.25, 0.5), region: str = "any",
                 background: str = "texture", classes: Sequence[int] | None = None) -> None:
        classes = tuple(range(NUM_CLASSES)) if classes is None else tuple(classes)
        _check_options(n, size, seed, n_objects, object_scale, region, background, classes)
        self.n, self.size, self.seed = int(n), int(size), int(seed)
        self.n_objects = (int(n_objects[0]), int(n_objects[1]))
        self.object_scale, self.region, self.background = tuple(object_scale), region, background
        self.classes = np.array(sorted({int(c) for c in classes}))

    def __len__(self) -> int:
        """The number of scenes ``n``."""
        return self.n

    def _spec(self, index: int) -> _Spec:
        """Draw the description of scene ``index`` (negative indices count from the end)."""
        if not -self.n <= index < self.n:
            raise IndexError(f"scene index {index} out of range for {self.n} scenes")
        rng = np.random.default_rng((self.seed, int(index) % self.n))
        background = background_waves(rng, self.background)
        count = int(rng.integers(self.n_objects[0], self.n_objects[1] + 1))
        objects = [_place(rng, self.classes, self.object_scale, self.region) for _ in range(count)]
        fills = [fill_waves(rng, background.base) for _ in range(count)]
        order = sorted(range(count), key=lambda k: -objects[k].diameter)
        return _Spec(background, [objects[k] for k in order], [fills[k] for k in order])

    def objects(self, index: int) -> list[SceneObject]:
        """The objects of scene ``index``, largest (the labelled one) first, in drawing order."""
        return self._spec(index).objects

    def instance_mask(self, index: int) -> Tensor:
        """Which object is visible where in scene ``index``: ``int64 [size, size]``, ``0`` on the
        background and ``k + 1`` where the ``k``-th of :meth:`objects` is visible (the same
        coverage rule as the class mask, so ``(instance_mask > 0) == (class_mask > 0)``)."""
        instances = np.zeros((self.size, self.size), np.int64)
        for k, obj in enumerate(self.objects(index)):
            rows, cols, alpha = _coverage(obj, self.size)
            instances[rows, cols] = np.where(alpha >= 0.5, k + 1, instances[rows, cols])
        return torch.from_numpy(instances)

    def instance_masks(self) -> Tensor:
        """:meth:`instance_mask` of every scene: ``int64 [n, size, size]``."""
        return torch.stack([self.instance_mask(i) for i in range(self.n)]) if self.n else (
            torch.zeros(0, self.size, self.size, dtype=torch.int64))

    def __getitem__(self, index: int) -> Scene:
        """Render scene ``index``: image ``float32 [3, size, size]`` in ``[0, 1]``, label,
        class mask ``int64 [size, size]`` and saliency ``float32 [size, size]`` (see
        :class:`Scene`). Raises ``IndexError`` outside ``-n .. n - 1``."""
        return _render(self._spec(index), self.size)

    def tensors(self, progress: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Render all scenes and stack them.

        Args:
            progress: Show a progress bar.

        Returns:
            Images ``float32 [n, 3, size, size]``, labels ``int64 [n]``, class masks ``int64
            [n, size, size]`` and saliency masks ``float32 [n, size, size]``.
        """
        s = self.size
        images, masks = torch.empty(self.n, 3, s, s), torch.empty(self.n, s, s, dtype=torch.int64)
        saliency, labels = torch.empty(self.n, s, s), torch.empty(self.n, dtype=torch.int64)
        for i in tqdm(range(self.n), desc="rendering scenes", disable=not progress, leave=False):
            images[i], labels[i], masks[i], saliency[i] = self[i]
        return images, labels, masks, saliency


def render_object(class_id: int, size: int, rng: np.random.Generator, *, fill: float = 0.8,
                  against: Sequence[float] = (0.0, 0.0, 0.0)) -> tuple[Tensor, Tensor]:
    """One object alone, centred on a ``size x size`` patch, with a random rotation and fill.

    Meant for pasting into a canvas (e.g. one cell of an ``n x n`` grid):
    ``canvas = canvas + mask * (rgb - canvas)``.

    Args:
        class_id: The object's class, an index into ``CLASS_NAMES``.
        size: Side of the patch in pixels (``>= 4``).
        rng: The random generator for rotation, colour and texture.
        fill: Diameter of the object's bounding circle as a fraction of the patch side, in
            ``(0, 1]``.
        against: RGB colour of the canvas it will go on; the object's base colour is chosen at
            least 0.4 away from it (default: black).

    Returns:
        ``rgb``: ``float32 [3, size, size]`` in ``[0, 1]``, the object's textured fill over the
        whole patch; ``mask``: ``float32 [size, size]`` in ``[0, 1]``, its anti-aliased coverage
        (``mask >= 0.5`` is the binary mask used in scenes).
    """
    if not 0 <= class_id < NUM_CLASSES or size < 4 or not 0 < fill <= 1:
        raise ValueError(f"need 0 <= class_id < {NUM_CLASSES}, size >= 4 and 0 < fill <= 1; "
                         f"got {class_id=}, {size=}, {fill=}")
    obj = SceneObject(int(class_id), 0.5, 0.5, fill, float(rng.uniform(0, 2 * np.pi)))
    waves = fill_waves(rng, np.asarray(against, dtype=np.float64))
    grid = (np.arange(size) + 0.5) / size
    rgb = np.clip(render_waves(waves, grid, grid), 0, 1)
    mask = np.zeros((size, size))
    rows, cols, alpha = _coverage(obj, size)
    mask[rows, cols] = alpha
    return torch.from_numpy(rgb.astype(np.float32)), torch.from_numpy(mask.astype(np.float32))
