"""Which channels of a network's last stage carry position, and what happens without them
(ICCV 2021 Sec. 4.2.1).

``z`` is the global average pool of the last stage's map: ``[N, C]``. A channel whose pooled
response changes when the image is flipped left-right responds to *where* things are, since the
flip keeps every object and moves it. The rankings:

- overall (Eq. 2): channels sorted by the mean of ``|z(image) - z(flip(image))|``, descending;
- region-specific (Eq. 3): the mean *signed* difference ``z(image) - z(flip(image))`` over images
  whose objects are all on the left (or all on the right), descending: the channels that fire
  more when the objects are on that side;
- the kernel-flip controls: with every convolution kernel mirrored left-right (``*``: an image and
  its flip through the mirrored network; ``**``: the same image through the network and through
  its mirror), which rules out that the ranking only reflects asymmetric kernels.

:func:`zeroed_channels` sets chosen channels of the last stage to zero at inference through a
forward hook that is removed afterwards.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

RANKINGS: tuple[str, ...] = ("overall", "kernel_flip_1", "kernel_flip_2")

Features = Callable[[Tensor], Tensor]  # images [B, 3, H, W] -> last-stage maps [B, C, h, w]


@torch.no_grad()
def pooled(features: Features, images: Tensor, batch_size: int = 32) -> Tensor:
    """Global-average-pooled last-stage features ``z``: images ``[N, 3, H, W]`` to ``[N, C]``."""
    return torch.cat([features(x).mean(dim=(2, 3)) for x in images.split(batch_size)])


def flip_differences(features: Features, images: Tensor, other: Features | None = None,
                     flip_images: bool = True, batch_size: int = 32) -> Tensor:
    """Signed differences ``z(image) - z'(image')``, ``[N, C]``.

    Args:
        features: The network's last stage (as a function of the images).
        images: ``[N, 3, H, W]``.
        other: The network that sees the second image (``features`` if ``None``).
        flip_images: Whether the second image is the horizontal flip of the first.
        batch_size: Images per forward pass.
    """
    other = features if other is None else other
    second = images.flip(-1) if flip_images else images
    return pooled(features, images, batch_size) - pooled(other, second, batch_size)


def rank_overall(diffs: Tensor) -> Tensor:
    """Eq. 2: channel indices ``int64 [C]`` by mean ``|diffs|`` (``[N, C]``), largest first."""
    return diffs.abs().mean(0).argsort(descending=True, stable=True)


def rank_signed(diffs: Tensor) -> Tensor:
    """Eq. 3: channel indices ``int64 [C]`` by the mean signed ``diffs`` (``[N, C]``), largest
    first: the channels that respond more to the images as they are than to their flips."""
    return diffs.mean(0).argsort(descending=True, stable=True)


def rank_magnitude(z: Tensor) -> Tensor:
    """A control beyond the paper: channel indices ``int64 [C]`` by mean pooled response ``|z|``
    (``z``: ``[N, C]``), largest first, i.e. the strongest channels whatever they encode."""
    return z.abs().mean(0).argsort(descending=True, stable=True)


def mirror_kernels(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every convolution kernel flipped left-right (weights ``[..., k]``
    reversed along the last axis); the original is untouched."""
    mirrored = copy.deepcopy(model)
    with torch.no_grad():
        for m in mirrored.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(m.weight.flip(-1))
    return mirrored


def rankings(features: Features, mirrored: Features, images: Tensor,
             batch_size: int = 32) -> dict[str, Tensor]:
    """The overall ranking and both kernel-flip controls on ``images [N, 3, H, W]``.

    Args:
        features: The network's last stage.
        mirrored: The last stage of the network with mirrored kernels (:func:`mirror_kernels`).

    Returns:
        ``{"overall", "kernel_flip_1", "kernel_flip_2"}`` to channel indices ``[C]``, most
        position-specific first. ``kernel_flip_1`` (the paper's Kernel-Flip*): an image and its
        flip through the mirrored network; ``kernel_flip_2`` (Kernel-Flip**): the image through
        the network and through the mirrored network.
    """
    return {
        "overall": rank_overall(flip_differences(features, images, batch_size=batch_size)),
        "kernel_flip_1": rank_overall(flip_differences(mirrored, images, batch_size=batch_size)),
        "kernel_flip_2": rank_overall(flip_differences(features, images, mirrored, False, batch_size)),
    }


def region_rankings(features: Features, left_images: Tensor, right_images: Tensor,
                    batch_size: int = 32) -> dict[str, Tensor]:
    """Eq. 3 on images whose objects are all on the left, and all on the right.

    Returns:
        ``{"left", "right"}`` to channel indices ``[C]``, most region-specific first.
    """
    return {side: rank_signed(flip_differences(features, x, batch_size=batch_size))
            for side, x in (("left", left_images), ("right", right_images))}


def random_channels(num_channels: int, n: int, generator: torch.Generator) -> Tensor:
    """``n`` distinct channel indices ``int64 [n]`` drawn uniformly from ``num_channels``."""
    return torch.randperm(num_channels, generator=generator)[:n]


def zero_channels(features: Tensor, channels: Sequence[int] | Tensor) -> Tensor:
    """A copy of ``features [B, C, h, w]`` with ``channels`` set to zero."""
    out = features.clone()
    out[:, torch.as_tensor(channels, dtype=torch.long).to(out.device)] = 0
    return out


@contextmanager
def zeroed_channels(stage: nn.Module, channels: Sequence[int] | Tensor) -> Iterator[None]:
    """Within the block, the output ``[B, C, h, w]`` of ``stage`` has ``channels`` set to zero.

    A forward hook does it (no weight is changed); it is removed on leaving the block, even on
    an error, so the model is exactly as before afterwards.
    """
    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
        return zero_channels(output, channels)

    handle = stage.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
