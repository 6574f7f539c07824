"""GAPNet and PermuteNet (Islam, Kowal et al., ICCV 2021) on a torchvision ResNet-18 backbone.

The backbone is torchvision's ResNet-18 (``BasicBlock``, two blocks per stage) with the authors'
stem for small inputs: a 7x7 convolution of stride 2 and *no* max-pool. A width multiplier
scales every stage (64, 128, 256, 512 channels at width 1) so a CPU can train it. Both networks
end in global average pooling (GAP):

- :class:`GAPNet`: a last 3x3 convolution maps the backbone's ``C`` channels to one channel per
  class, and the GAP of that map *is* the logits (no fully connected layer).
- :class:`PermuteNet`: GAP of the backbone, then the ``C`` pooled channels are shuffled by
  random permutations drawn anew at every forward pass (training and test), then a linear layer.

The padding of every convolution, the GAPNet head included, is switched with
:func:`posinfo.models.encoders.set_padding` (zero, reflect, replicate, circular or none): the backbone
keeps torchvision's layer order with an identity in place of the max-pool, which is the layout
``set_padding`` expects of a ResNet.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, ResNet

from posinfo.models.encoders import set_padding

NETWORKS: tuple[str, ...] = ("gapnet", "permutenet")


def _resnet18_layers(width: float) -> ResNet:
    """torchvision's ResNet-18 with every stage ``width`` times as wide and the 7x7/s2 stem
    without max-pool, initialised as torchvision initialises its ResNets."""
    base = max(1, round(64 * width))
    net = ResNet(BasicBlock, [2, 2, 2, 2])
    net.inplanes = base
    net.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = nn.BatchNorm2d(base)
    net.maxpool = nn.Identity()
    net.layer1 = net._make_layer(BasicBlock, base, 2)
    for i, mult in ((2, 2), (3, 4), (4, 8)):
        setattr(net, f"layer{i}", net._make_layer(BasicBlock, base * mult, 2, stride=2))
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return net


class Backbone(nn.Module):
    """ResNet-18 up to its last stage: images ``[B, 3, H, W]`` to maps ``[B, C, H/16, W/16]``.

    It exposes ``trunk`` (conv1, bn1, relu, identity, layer1..layer4), ``arch`` and ``padding``
    as :class:`posinfo.models.encoders.MultiLevelEncoder` does, so ``set_padding`` applies to it.

    Args:
        width: Channel multiplier (1.0 is ResNet-18; ``C = 512 * width``).
    """

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        net = _resnet18_layers(width)
        self.trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool,
                                   net.layer1, net.layer2, net.layer3, net.layer4)
        self.arch, self.width, self.padding = "resnet18", width, "zero"

    @property
    def channels(self) -> int:
        """``C``, the number of channels of the last stage."""
        return self.trunk[-1][-1].conv2.out_channels

    def forward(self, x: Tensor) -> Tensor:
        """``[B, 3, H, W]`` to ``[B, C, h, w]``."""
        return self.trunk(x)


class _Head(nn.Module):
    """GAPNet's last convolution, laid out (``trunk``, ``arch``, ``padding``) for set_padding."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(channels, classes, kernel_size=3, padding=1))
        self.arch, self.padding = "gapnet-head", "zero"

    def forward(self, z: Tensor) -> Tensor:
        """``[B, C, h, w]`` to ``[B, K, h', w']``."""
        return self.trunk(z)


class GAPNet(nn.Module):
    """Backbone, a 3x3 convolution to ``classes`` channels, global average pooling as logits.

    Args:
        classes: ``K``, the number of outputs.
        width: Backbone width multiplier.
    """

    def __init__(self, classes: int, width: float = 1.0) -> None:
        super().__init__()
        self.backbone = Backbone(width)
        self.head = _Head(self.backbone.channels, classes)

    def pooled(self, x: Tensor) -> Tensor:
        """The GAP of the backbone's last stage, ``[B, C]`` (what the head sees, pooled)."""
        return self.backbone(x).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        """Images ``[B, 3, H, W]`` to logits ``[B, K]``."""
        return self.head(self.backbone(x)).mean(dim=(2, 3))


class PermuteNet(nn.Module):
    """Backbone, GAP, fresh random channel permutations at every forward pass, a linear layer.

    In training, one permutation is drawn per forward pass and shared by the batch, as in the
    authors' code. In evaluation, every sample gets its own permutation: the accuracy measured is
    the same expectation over permutations, with far less variance than one draw per batch gives
    (with one draw per batch of 48, five evaluations of one network on the same 200 objects
    ranged from 5% to 22%). The permutations come from the module's own generator (seeded by
    ``seed``; :meth:`seeded` draws an evaluation's from another seed and then restores it).

    Args:
        classes: ``K``, the number of outputs.
        width: Backbone width multiplier.
        seed: Seed of the permutations.
    """

    def __init__(self, classes: int, width: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        self.backbone = Backbone(width)
        self.fc = nn.Linear(self.backbone.channels, classes)
        self.generator = torch.Generator().manual_seed(seed)
        self.last_permutation: Tensor | None = None

    @contextmanager
    def seeded(self, seed: int) -> Iterator[PermuteNet]:
        """Draw the permutations from ``seed`` inside the block, then go on with the stream as it
        was before it. Evaluations use this: they are repeatable, and an evaluation between two
        training epochs leaves the training's permutations untouched (reseeding the training's
        stream instead would replay the same permutations in every epoch)."""
        state = self.generator.get_state()
        self.generator.manual_seed(seed)
        try:
            yield self
        finally:
            self.generator.set_state(state)

    def draw_permutation(self, batch: int | None = None) -> Tensor:
        """New random permutations of the ``C`` channels: ``int64 [C]``, one for the whole batch,
        or ``int64 [batch, C]``, one per sample, if ``batch`` is given."""
        channels = self.backbone.channels
        if batch is None:
            self.last_permutation = torch.randperm(channels, generator=self.generator)
        else:
            self.last_permutation = torch.rand(batch, channels, generator=self.generator).argsort(dim=1)
        return self.last_permutation

    def pooled(self, x: Tensor) -> Tensor:
        """The GAP of the backbone's last stage, ``[B, C]``, before the shuffle."""
        return self.backbone(x).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        """Images ``[B, 3, H, W]`` to logits ``[B, K]`` through shuffled pooled channels (one
        permutation per batch in training, one per sample in evaluation)."""
        z = self.pooled(x)
        if self.training:
            return self.fc(z[:, self.draw_permutation().to(z.device)])
        return self.fc(z.gather(1, self.draw_permutation(len(z)).to(z.device)))


def apply_padding(net: GAPNet | PermuteNet, mode: str) -> GAPNet | PermuteNet:
    """Set the padding of every convolution of ``net`` (one of ``PADDINGS``), in place."""
    set_padding(net.backbone, mode)  # type: ignore[arg-type]
    if isinstance(net, GAPNet):
        set_padding(net.head, mode)  # type: ignore[arg-type]
    return net


def build_network(kind: str, classes: int, *, padding: str = "zero", width: float = 1.0,
                  seed: int = 0) -> GAPNet | PermuteNet:
    """A freshly initialised GAPNet or PermuteNet with the given padding.

    Args:
        kind: ``"gapnet"`` or ``"permutenet"``.
        classes: Number of outputs.
        padding: One of ``PADDINGS``, applied to every convolution.
        width: Backbone width multiplier.
        seed: Seed of the initial weights (and of PermuteNet's permutations).
    """
    if kind not in NETWORKS:
        raise ValueError(f"unknown network {kind!r}; choose from {list(NETWORKS)}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = GAPNet(classes, width) if kind == "gapnet" else PermuteNet(classes, width, seed)
    return apply_padding(net, padding)


def output_size(net: GAPNet | PermuteNet, image_size: int) -> tuple[int, int]:
    """Side of the backbone's last map for a square input (0 if it vanishes; nothing trained)."""
    try:
        with torch.no_grad():
            shape = net.backbone.eval()(torch.zeros(1, 3, image_size, image_size)).shape
    except RuntimeError:
        return 0, 0
    return int(shape[-2]), int(shape[-1])
