"""Frozen encoder features, computed once per (encoder, images) and reused by every readout.

The ICLR 2020 protocol resizes every tapped level to one grid (28 x 28 for 224 x 224 inputs,
i.e. a stride of 8) and concatenates them along the channels. Because the encoder is frozen,
these features never change during the readout's training: computing them once instead of at
every epoch gives the same readout for a fraction of the cost (``make bench`` measures it).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from posinfo.cache import cached, fingerprint


def concat_levels(levels: list[Tensor], size: int) -> Tensor:
    """Resize every level bilinearly to ``size x size`` and concatenate them.

    Args:
        levels: Feature maps ``[B, C_l, H_l, W_l]``.
        size: Side of the common grid.

    Returns:
        A tensor ``[B, sum(C_l), size, size]``.
    """
    return torch.cat([F.interpolate(f, size=(size, size), mode="bilinear", align_corners=False)
                      for f in levels], dim=1)


def stage_channels(channels: list[int], stage: str) -> slice:
    """The channels of one encoder level in :func:`concat_levels`' output: ``stage`` is ``"all"``
    or ``"f1"`` .. ``"fL"`` for ``L = len(channels)`` levels of ``channels[i]`` channels each."""
    if stage == "all":
        return slice(None)
    if not (stage[:1] == "f" and stage[1:].isdigit() and 1 <= int(stage[1:]) <= len(channels)):
        raise ValueError(f"stage must be 'all' or one of f1..f{len(channels)}; got {stage!r}")
    level = int(stage[1:]) - 1
    start = sum(channels[:level])
    return slice(start, start + channels[level])


def image_on_grid(images: Tensor, size: int) -> Tensor:
    """The raw image as "PosENet alone" reads it: resized bilinearly (``align_corners=True``) to
    the ``size x size`` feature grid, as the ICLR 2020 authors' decoder resizes any 3-channel
    input before its convolutions (``../shared/PROTOCOLS.md``, A). The readout's padding then
    touches a ring of the grid, not a thin rim of the full-resolution image.

    Args:
        images: ``[N, 3, H, W]``.
        size: Side of the feature grid.

    Returns:
        ``[N, 3, size, size]``, float32.
    """
    return F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=True)


FP16_MAX = torch.finfo(torch.float16).max
# Part of every feature cache key; raised whenever the stored values change for the same encoder
# and images (2: encoders of large inputs run channels-last, which changes the rounding).
CACHE_VERSION = 2


@torch.no_grad()
def multilevel_features(encoder: nn.Module, images: Tensor, size: int, *, batch_size: int = 32,
                        device: torch.device | str = "cpu", levels: list[int] | None = None,
                        dtype: torch.dtype | None = None, name: str = "the encoder",
                        progress: bool = False) -> Tensor:
    """Run a frozen encoder over images and return the concatenated multi-level features.

    Args:
        encoder: A module mapping ``[B, 3, H, W]`` to a list of feature maps.
        images: ``[N, 3, H, W]`` in [0, 1].
        size: Side of the common grid the levels are resized to.
        batch_size: Images per forward pass.
        device: Where the encoder runs.
        levels: Indices of the levels to keep (all by default).
        dtype: Storage type of the result. ``None``: half precision (half the memory of the
            cache) while every value fits in it, and bfloat16, which cannot overflow, for the
            whole result as soon as one does not (a warning says so).
        name: What the encoder is called in errors and warnings.
        progress: Show a progress bar.

    Returns:
        ``[N, C, size, size]`` on the CPU, ``C`` the channels of the kept levels.

    Raises:
        ValueError: If the encoder outputs NaN or inf (naming ``name`` and the images).
    """
    encoder = encoder.to(device).eval()
    store, chunks = dtype or torch.float16, []
    for i, batch in enumerate(tqdm(images.split(batch_size), desc="features", disable=not progress,
                                   leave=False)):
        out = encoder(batch.to(device))
        out = concat_levels(out if levels is None else [out[k] for k in levels], size)
        if not torch.isfinite(out).all():
            first = i * batch_size
            raise ValueError(f"{name} gives NaN or inf features on images {first}.."
                             f"{first + len(batch) - 1}: its activations are out of range")
        if dtype is None and store == torch.float16 and out.abs().max() > FP16_MAX:
            warnings.warn(f"{name}'s features exceed the float16 range (largest "
                          f"{out.abs().max().item():.3g}); stored as bfloat16", stacklevel=2)
            store, chunks = torch.bfloat16, [c.to(torch.bfloat16) for c in chunks]
        chunks.append(out.to("cpu", store))
    return torch.cat(chunks)


class FeatureCache:
    """Features kept in memory and, when given a folder, on disk (written atomically).

    The key is a fingerprint of the encoder's weights and configuration, the images, the grid
    size, the kept levels and the device type, so a changed input is never served stale features.

    Args:
        folder: Where ``.pt`` files go; ``None`` keeps features in memory only.
        device: Where encoders run.
        batch_size: Images per forward pass.
        keep_in_memory: Also keep every result in memory (off: only on disk, for large runs).
    """

    def __init__(self, folder: str | Path | None = None, device: torch.device | str = "cpu",
                 batch_size: int = 32, keep_in_memory: bool = True) -> None:
        if folder is None and not keep_in_memory:
            raise ValueError("a cache with no folder must keep features in memory")
        self.folder = None if folder is None else Path(folder)
        self.device, self.batch_size, self.keep_in_memory = device, batch_size, keep_in_memory
        self._memory: dict[str, Tensor] = {}

    def __call__(self, encoder: nn.Module, images: Tensor, size: int,
                 levels: list[int] | None = None, progress: bool = True,
                 name: str | None = None) -> Tensor:
        """The features of ``encoder`` on ``images``: ``[N, C, size, size]`` on the CPU, float16
        (bfloat16 where float16 would overflow; see :func:`multilevel_features`). ``name`` is what
        errors call the encoder (default: its architecture). A disk entry holding NaN or inf (one
        written before that check existed) is recomputed with a warning."""
        key = fingerprint(CACHE_VERSION, encoder, images, size, str(levels),
                          torch.device(self.device).type)
        if key in self._memory:
            return self._memory[key]
        name = name or getattr(encoder, "arch", type(encoder).__name__)
        compute = lambda: multilevel_features(  # noqa: E731
            encoder, images, size, batch_size=self.batch_size, device=self.device,
            levels=levels, name=name, progress=progress)
        if self.folder is None:
            feats = compute()
        else:
            path = self.folder / f"features-{key}.pt"
            feats = cached(path, compute)
            if not torch.isfinite(feats.float()).all():
                warnings.warn(f"cached features of {name} at {path} hold NaN or inf; recomputing",
                              stacklevel=2)
                path.unlink()
                feats = cached(path, compute)
        if self.keep_in_memory:
            self._memory[key] = feats
        return feats
