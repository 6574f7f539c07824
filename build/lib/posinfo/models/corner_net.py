"""Kayhan & van Gemert's corner experiment (CVPR 2020, Fig. 1): can one convolution tell where a
patch is?

A patch of random content sits in the top-left or the bottom-right corner of a uniform canvas.
The network is one 5x5 convolution, a ReLU, global max pooling over the whole map and a softmax
over the two locations. Global max pooling discards where a response happened, so the only way
to tell the corners apart is the border: with zero padding the filter sees the patch against the
padding differently in the two corners; with circular padding the canvas is a torus on which one
placement is a translation of the other, and the network's output is the same for both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def corner_patches(n: int, canvas: int = 32, patch: int = 8, background: float = 0.5,
                   seed: int = 0) -> tuple[Tensor, Tensor]:
    """Images with a random patch in the top-left (label 0) or bottom-right (label 1) corner.

    Returns:
        Images ``[n, 3, canvas, canvas]`` in [0, 1] (uniform ``background`` elsewhere) and labels
        ``[n]`` (int64), half of each.
    """
    g = torch.Generator().manual_seed(seed)
    images = torch.full((n, 3, canvas, canvas), background)
    labels = torch.arange(n) % 2
    content = torch.rand(n, 3, patch, patch, generator=g)
    images[labels == 0, :, :patch, :patch] = content[labels == 0]
    images[labels == 1, :, -patch:, -patch:] = content[labels == 1]
    return images, labels


class CornerNet(nn.Module):
    """One 5x5 convolution with two filters, ReLU, global max pooling: two logits."""

    def __init__(self, padding_mode: str = "zeros") -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 5, padding=2, padding_mode=padding_mode)

    def forward(self, x: Tensor) -> Tensor:
        """Images ``[B, 3, H, W]`` to logits ``[B, 2]``."""
        return F.relu(self.conv(x)).amax(dim=(2, 3))


def train_corner_net(padding_mode: str, seed: int, n_train: int = 512, n_test: int = 512,
                     steps: int = 300, lr: float = 1e-2) -> float:
    """Train one :class:`CornerNet` (Adam, full batches) and return its test accuracy."""
    x, y = corner_patches(n_train, seed=10_000 + seed)
    xt, yt = corner_patches(n_test, seed=20_000 + seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = CornerNet(padding_mode)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (net(xt).argmax(1) == yt).float().mean().item()
