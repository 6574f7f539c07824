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


# The noise input: the ICLR 2020 authors' noise image (PROTOCOLS.md, A) is dark, faint, nearly
# grey Gaussian noise with per-channel mean .10, sd .09 and channels correlated .87. Clipping to
# [0, 1] cuts the Gaussian's lower tail, so it is drawn before clipping with the mean, sd and
# correlation below, which give those statistics after clipping (solved numerically; a test checks
# the realised values).
NOISE_MEAN, NOISE_SD, NOISE_CORRELATION = 0.10, 0.09, 0.87
_NOISE_DRAW = (0.08656, 0.10968, 0.882)  # mean, sd, correlation before clipping


def gaussian_noise(n: int, size: int, seed: int = 0) -> Tensor:
    """Noise images like the authors': every pixel a clipped Gaussian, its three channels a shared
    grey component plus a small independent one.

    Returns:
        ``[n, 3, size, size]`` float32 in [0, 1], per-channel mean ``NOISE_MEAN``, sd
        ``NOISE_SD``, channels correlated ``NOISE_CORRELATION`` (up to sampling error).
    """
    mean, sd, rho = _NOISE_DRAW
    gen = torch.Generator().manual_seed(seed)
    grey = torch.randn(n, 1, size, size, generator=gen)
    own = torch.randn(n, 3, size, size, generator=gen)
    return (mean + sd * (math.sqrt(rho) * grey + math.sqrt(1 - rho) * own)).clamp(0, 1)


def synthetic_inputs(kind: str, n: int, size: int, seed: int = 0) -> Tensor:
    """The synthetic test images: all black, all white, or the authors' kind of Gaussian noise
    (:func:`gaussian_noise`).

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
        return gaussian_noise(n, size, seed)
    raise ValueError(f"unknown synthetic input {kind!r}; choose from {SYNTHETIC_INPUTS}")


def distance_to_border(size: int) -> Tensor:
    """For each pixel of a ``size x size`` image, its distance in pixels to the nearest border:
    ``int64 [size, size]``."""
    i = torch.arange(size)
    d = torch.minimum(i, size - 1 - i)
    return torch.minimum(d[:, None], d[None, :])
