"""Shift consistency (Zhang 2019): how often two random shifts of one image get the same class.

An image is shifted by ``(dy, dx)`` pixels by padding it by ``max_shift`` on every side and
cutting out the original size at the offset ``(max_shift + dy, max_shift + dx)``, as Zhang's
evaluation crops from a larger image. ``Cons.s`` draws both shifts of a pair uniformly from
``-s .. s`` in each direction and reports the share of pairs with the same predicted class.
Zhang's code draws one pair of offsets per batch; here every image gets its own pair, which has
the same expectation and less variance on small test sets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

PAD_MODES: tuple[str, ...] = ("constant", "reflect", "replicate", "circular")


def sample_offsets(n: int, max_shift: int, generator: torch.Generator) -> Tensor:
    """``n`` random shifts, uniform over ``-max_shift .. max_shift`` in each direction.

    Returns:
        ``int64 [n, 2]``: ``(dy, dx)`` of each shift.
    """
    if max_shift < 0 or n < 0:
        raise ValueError(f"need n >= 0 and max_shift >= 0; got {n=}, {max_shift=}")
    return torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator)


def shift_images(images: Tensor, offsets: Tensor, pad_mode: str = "constant") -> Tensor:
    """Shift each image by its own offset, filling the uncovered band by ``pad_mode``.

    The result at pixel ``(i, j)`` is the padded image at ``(i + dy, j + dx)``: the content moves
    up by ``dy`` and left by ``dx``. ``"constant"`` fills with zeros (black).

    Args:
        images: ``float [N, C, H, W]``.
        offsets: ``int64 [N, 2]``, each ``(dy, dx)``.
        pad_mode: One of ``PAD_MODES``.

    Returns:
        ``float [N, C, H, W]``, the shifted images.
    """
    if pad_mode not in PAD_MODES:
        raise ValueError(f"unknown pad_mode {pad_mode!r}; choose from {list(PAD_MODES)}")
    if offsets.shape != (images.shape[0], 2):
        raise ValueError(f"offsets must be [N, 2] for N = {images.shape[0]}; got {tuple(offsets.shape)}")
    s = int(offsets.abs().max()) if offsets.numel() else 0
    n, _, h, w = images.shape
    padded = F.pad(images, (s, s, s, s), mode=pad_mode) if s else images
    offsets = offsets.to(images.device)
    rows = (s + offsets[:, :1]) + torch.arange(h, device=images.device)  # [N, H]
    cols = (s + offsets[:, 1:]) + torch.arange(w, device=images.device)  # [N, W]
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def random_shifts(images: Tensor, max_shift: int, generator: torch.Generator,
                  pad_mode: str = "constant") -> Tensor:
    """Each image shifted by its own random offset of up to ``max_shift`` px (``[N, C, H, W]``)."""
    return shift_images(images, sample_offsets(len(images), max_shift, generator), pad_mode)


@torch.no_grad()
def predict_classes(model: Callable[[Tensor], Tensor], images: Tensor, batch_size: int = 256,
                    device: torch.device | str = "cpu") -> Tensor:
    """The arg-max class of ``model`` for every image of ``[N, C, H, W]`` (``int64 [N]``, CPU)."""
    out = [model(images[i:i + batch_size].to(device)).argmax(1).cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)


def consistency(model: Callable[[Tensor], Tensor], images: Tensor, max_shift: int, *,
                pairs: int = 5, seed: int = 0, pad_mode: str = "constant",
                batch_size: int = 256, device: torch.device | str = "cpu") -> float:
    """Zhang's ``Cons.max_shift``: the share of random shift pairs that get the same class.

    Args:
        model: Maps ``[B, C, H, W]`` to logits ``[B, K]`` (in eval mode).
        images: ``float [N, C, H, W]`` test images.
        max_shift: Largest shift in pixels, in each direction.
        pairs: Pairs of shifts drawn per image.
        seed: Seed of the shifts (the same seed gives the same pairs).
        pad_mode: How the uncovered band is filled (see :func:`shift_images`).

    Returns:
        The share of agreeing pairs in ``[0, 1]``.
    """
    gen = torch.Generator().manual_seed(seed)
    agree = 0
    for _ in range(pairs):
        first, second = (random_shifts(images, max_shift, gen, pad_mode) for _ in range(2))
        agree += int((predict_classes(model, first, batch_size, device)
                      == predict_classes(model, second, batch_size, device)).sum())
    return agree / (pairs * len(images))


def consistency_curve(model: Callable[[Tensor], Tensor], images: Tensor, shifts: Sequence[int],
                      **kwargs) -> dict[int, float]:
    """:func:`consistency` for every maximum shift in ``shifts`` (keyword arguments passed on)."""
    return {int(s): consistency(model, images, int(s), **kwargs) for s in shifts}
