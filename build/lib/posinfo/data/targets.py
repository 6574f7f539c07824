"""Ground-truth position maps and the synthetic test inputs of the ICLR 2020 study.

The five patterns follow the authors' released 256 x 256 maps (PROTOCOLS.md, section A): each is
computed at 256 x 256, resized bilinearly to the requested size and min-max normalised again.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

PATTERNS: tuple[str, ...] = ("H", "V", "G", "HS", "VS")
SYNTHETIC_INPUTS: tuple[str, ...] = ("black", "white", "noise")
REFERENCE_SIZE = 256
GAUSSIAN_SIGMA = 0.495  # as a fraction of the side
STRIPE_PERIODS = 2.5


def _minmax(x: Tensor) -> Tensor:
    """Rescale ``x`` to [0, 1] over all its entries."""
    return (x - x.min()) / (x.max() - x.min())


def _reference_map(pattern: str, n: int = REFERENCE_SIZE) -> Tensor:
    """The pattern at its reference size, as a float64 tensor of shape ``[n, n]`` in [0, 1]."""
    idx = torch.arange(n, dtype=torch.float64)
    y, x = torch.meshgrid(idx, idx, indexing="ij")
    if pattern == "H":
        return _minmax(x)
    if pattern == "V":
        return _minmax(y)
    if pattern == "G":
        c, sigma = (n - 1) / 2, GAUSSIAN_SIGMA * n
        return _minmax(torch.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * sigma**2)))
    if pattern in ("HS", "VS"):
        t = y if pattern == "HS" else x
        return 0.5 * (1 + torch.cos(2 * math.pi * STRIPE_PERIODS * (t + 0.5) / n))
    raise ValueError(f"unknown pattern {pattern!r}; choose from {PATTERNS}")


def position_map(pattern: str, size: int) -> Tensor:
    """One ground-truth position map.

    Args:
        pattern: One of ``PATTERNS``: H (left 0 to right 1), V (top 0 to bottom 1), G (centred
            Gaussian), HS (horizontal stripes, varying along y), VS (vertical stripes).
        size: The side of the square map in pixels.

    Returns:
        A float32 tensor of shape ``[size, size]`` with minimum 0 and maximum 1.
    """
    if size < 2:
        raise ValueError(f"size must be at least 2, got {size}")
    ref = _reference_map(pattern)[None, None]
    resized = F.interpolate(ref, size=(size, size), mode="bilinear", align_corners=False)
    return _minmax(resized[0, 0]).float()


def position_maps(patterns: tuple[str, ...] | list[str], size: int) -> Tensor:
    """Several maps stacked: a float32 tensor of shape ``[len(patterns), size, size]``."""
    return torch.stack([position_map(p, size) for p in patterns])


def synthetic_inputs(kind: str, n: int, size: int, seed: int = 0) -> Tensor:
    """The synthetic test images: all black, all white, or uniform noise.

    Args:
        kind: One of ``SYNTHETIC_INPUTS``.
        n: Number of images.
        size: Side in pixels.
        seed: Seed of the noise images.

    Returns:
        A float32 tensor of shape ``[n, 3, size, size]`` with values in [0, 1].
    """
    shape = (n, 3, size, size)
    if kind == "black":
        return torch.zeros(shape)
    if kind == "white":
        return torch.ones(shape)
    if kind == "noise":
        return torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    raise ValueError(f"unknown synthetic input {kind!r}; choose from {SYNTHETIC_INPUTS}")


def distance_to_border(size: int) -> Tensor:
    """For each pixel of a ``size x size`` image, its distance in pixels to the nearest border:
    ``int64 [size, size]``."""
    i = torch.arange(size)
    d = torch.minimum(i, size - 1 - i)
    return torch.minimum(d[:, None], d[None, :])
