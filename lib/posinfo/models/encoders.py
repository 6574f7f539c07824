"""Frozen CNN encoders that return the multi-level features of the ICLR 2020 study.

Models are torchvision's own definitions. VGG16 is tapped after relu1_2, relu2_2, relu3_3, relu4_3
and relu5_3 (before each max-pool); ResNets after layer1 .. layer4. The padding of every
convolution can be switched (zero, none, reflect, replicate, circular) and the weights are
torchvision's ImageNet weights, a seeded random initialisation, or the book's synthetic encoder
(:mod:`posinfo.models.pretrain`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models import resnet as tv_resnet
from torchvision.models import vgg as tv_vgg

ARCHITECTURES: tuple[str, ...] = ("vgg16", "vgg16_bn", "resnet18", "resnet34", "resnet50",
                                  "resnet101", "resnet152")
PADDINGS: tuple[str, ...] = ("zero", "none", "reflect", "replicate", "circular")
INPUT_NORMS: tuple[str, ...] = ("none", "imagenet")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_TORCH_PADDING_MODE = {"zero": "zeros", "reflect": "reflect", "replicate": "replicate",
                       "circular": "circular"}
# Images of at least this side go through the encoders in channels-last memory layout. On one CPU
# thread that makes a VGG16 pass 25-30% faster at 196-224 px and 12% at 64 px, and 8% slower at
# 32 px (measured in the bench's set-up); the values agree up to floating-point rounding.
CHANNELS_LAST_MIN_SIDE = 64


def _vgg16_config(width: float) -> list[int | str]:
    """VGG16's layer list (torchvision's configuration "D") with every width scaled."""
    return [v if v == "M" else max(1, round(int(v) * width)) for v in tv_vgg.cfgs["D"]]


def _vgg_trunk(arch: str, width: float) -> tuple[nn.Sequential, list[int]]:
    """VGG16's convolutional part without its last max-pool, and the indices of its taps."""
    layers = tv_vgg.make_layers(_vgg16_config(width), batch_norm=arch == "vgg16_bn")
    modules = list(layers)
    taps = [i - 1 for i, m in enumerate(modules) if isinstance(m, nn.MaxPool2d)]
    return nn.Sequential(*modules[: taps[-1] + 1]), taps


class MultiLevelEncoder(nn.Module):
    """A backbone that returns its feature maps at several depths.

    Args:
        arch: One of ``ARCHITECTURES``.
        width: Channel multiplier of VGG16 (1.0 is the original; ResNets accept only 1.0).
        input_norm: ``"imagenet"`` subtracts ImageNet's mean and divides by its std; ``"none"``
            feeds the [0, 1] image as it is (as the ICLR 2020 authors did).
    """

    def __init__(self, arch: str, width: float = 1.0, input_norm: str = "none") -> None:
        super().__init__()
        _check(arch, ARCHITECTURES, "arch")
        _check(input_norm, INPUT_NORMS, "input_norm")
        self.arch, self.width, self.input_norm, self.padding = arch, width, input_norm, "zero"
        if arch.startswith("vgg"):
            self.trunk, self.taps = _vgg_trunk(arch, width)
        else:
            if width != 1.0:
                raise ValueError(f"{arch} has a fixed width; width must be 1.0, got {width}")
            net = getattr(tv_resnet, arch)(weights=None)
            self.trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool,
                                       net.layer1, net.layer2, net.layer3, net.layer4)
            self.taps = [4, 5, 6, 7]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def channels(self) -> list[int]:
        """Number of channels at each tap (read off the layers; nothing is run)."""
        out = []
        for tap in self.taps:
            convs = [m for m in self.trunk[: tap + 1].modules() if isinstance(m, nn.Conv2d)]
            out.append(convs[-1].out_channels)
        return out

    def extra_repr(self) -> str:
        """Everything that changes the output besides the weights (cache keys include it)."""
        return (f"arch={self.arch}, width={self.width}, input_norm={self.input_norm}, "
                f"padding={self.padding}")

    def forward(self, x: Tensor) -> list[Tensor]:
        """Images ``[B, 3, H, W]`` in [0, 1] to one feature map ``[B, C_l, H_l, W_l]`` per tap."""
        x = preferred_layout(x)
        if self.input_norm == "imagenet":
            x = (x - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.trunk):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


def preferred_layout(x: Tensor) -> Tensor:
    """Images ``[B, 3, H, W]`` in channels-last memory layout when their shorter side is at least
    ``CHANNELS_LAST_MIN_SIDE`` (the convolutions then run faster), else as they are."""
    if x.dim() == 4 and min(x.shape[-2:]) >= CHANNELS_LAST_MIN_SIDE:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _check(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; choose from {list(allowed)}")


# --- padding ------------------------------------------------------------------------------------


def _center_crop_to(x: Tensor, like: Tensor) -> Tensor:
    """Crop ``x`` ``[B, C, H, W]`` centrally to the spatial size of ``like``."""
    dh, dw = x.shape[-2] - like.shape[-2], x.shape[-1] - like.shape[-1]
    return x[..., dh // 2: x.shape[-2] - (dh - dh // 2), dw // 2: x.shape[-1] - (dw - dw // 2)]


class _Unpadded(nn.Module):
    """A torchvision residual block run without padding: the shortcut is cropped centrally to the
    (smaller) size of the residual branch before the two are added."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: Tensor) -> Tensor:
        b = self.block
        names = ["conv1", "bn1", "conv2", "bn2"] + (["conv3", "bn3"] if hasattr(b, "conv3") else [])
        out = x
        for i, name in enumerate(names):
            out = getattr(b, name)(out)
            if i % 2 == 1 and i < len(names) - 1:
                out = b.relu(out)
        identity = x if b.downsample is None else b.downsample(x)
        return b.relu(out + _center_crop_to(identity, out))


def set_padding(encoder: MultiLevelEncoder, mode: str) -> MultiLevelEncoder:
    """Switch the padding of every convolution (and max-pool, for ``"none"``) in place.

    Args:
        encoder: The encoder to change; its weights are untouched.
        mode: One of ``PADDINGS``. ``"none"`` removes padding, so maps shrink with depth and
            ResNet shortcuts are cropped centrally to match.

    Returns:
        The same encoder, for chaining.
    """
    _check(mode, PADDINGS, "padding")
    if getattr(encoder, "padding", "zero") == "none" and mode != "none":
        raise ValueError("an encoder whose padding was removed cannot get it back; build a new one")
    for m in encoder.trunk.modules():
        if isinstance(m, nn.Conv2d) and any(p > 0 for p in _pair(m.padding)):
            if mode == "none":
                m.padding = (0, 0)
            else:
                m.padding_mode = _TORCH_PADDING_MODE[mode]
            m._reversed_padding_repeated_twice = [p for p in reversed(_pair(m.padding)) for _ in (0, 1)]
        if isinstance(m, nn.MaxPool2d) and mode == "none":
            m.padding = 0
    if mode == "none" and encoder.arch.startswith("resnet"):
        for layer in encoder.trunk[4:]:
            for i, block in enumerate(layer):
                if not isinstance(block, _Unpadded):
                    layer[i] = _Unpadded(block)
    encoder.padding = mode
    return encoder


def _pair(p: int | tuple[int, ...] | str) -> tuple[int, int]:
    return (p, p) if isinstance(p, int) else tuple(p)  # type: ignore[return-value]


# --- weights ------------------------------------------------------------------------------------

_IMAGENET_WEIGHTS = {
    "vgg16": "VGG16_Weights", "vgg16_bn": "VGG16_BN_Weights", "resnet18": "ResNet18_Weights",
    "resnet34": "ResNet34_Weights", "resnet50": "ResNet50_Weights",
    "resnet101": "ResNet101_Weights", "resnet152": "ResNet152_Weights",
}
# The smallest input VGG16 without padding takes: its five stages lose 4, 4, 6, 6 and 6 pixels
# (two per 3x3 convolution) and halve the map four times, so below 196 px its last stage has
# nothing left.
MIN_NOPAD_SIZE = 196
_RESNET_KEYS = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}


def imagenet_weights_file(arch: str) -> tuple[Path, str]:
    """Where torchvision keeps the ImageNet weights of ``arch``, and the address to fetch them."""
    weights = getattr(torchvision.models, _IMAGENET_WEIGHTS[arch]).IMAGENET1K_V1
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name, weights.url


def require_imagenet_weights(arch: str, width: float = 1.0) -> None:
    """Check, before any work, that the ImageNet weights of ``arch`` can be loaded.

    Raises:
        ValueError: If ``width`` is not 1.0 (ImageNet weights exist at full width only).
        FileNotFoundError: If the weights file is missing, naming it and where to fetch it.
    """
    if width != 1.0:
        raise ValueError("ImageNet weights exist only for vgg_width=1.0")
    path, url = imagenet_weights_file(arch)
    if not path.is_file():
        raise FileNotFoundError(f"ImageNet weights for {arch} not found at {path}; "
                                f"fetch {url} and save it there (see data/README.md)")


def load_imagenet_state(arch: str) -> dict[str, Tensor]:
    """torchvision's ImageNet state dict of ``arch``, read from the local torch hub cache only.

    Raises:
        FileNotFoundError: If the weights file is not there, saying which file to put where.
    """
    path, url = imagenet_weights_file(arch)
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights for {arch} not found at {path}. This machine does not download "
            f"them: fetch {url} and save it as {path} (or set TORCH_HOME to the folder whose "
            f"hub/checkpoints/ holds it)."
        )
    return torch.load(path, map_location="cpu", weights_only=True)  # tensors only, never code


def _to_trunk_keys(arch: str, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a torchvision classifier's state dict to this module's ``trunk.*`` keys."""
    out = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if arch.startswith("vgg") and head == "features":
            out[f"trunk.{rest}"] = value
        elif head in _RESNET_KEYS:
            out[f"trunk.{_RESNET_KEYS[head]}.{rest}"] = value
    return out


def build_encoder(arch: str, weights: str = "random", *, padding: str = "zero", width: float = 1.0,
                  input_norm: str = "none", seed: int = 0) -> MultiLevelEncoder:
    """A frozen encoder in eval mode.

    Args:
        arch: One of ``ARCHITECTURES``.
        weights: ``"imagenet"`` (torchvision's, from the local cache), ``"random"`` (torchvision's
            initialisation, seeded by ``seed``). The book's ``"synthetic"`` encoders come from
            :func:`posinfo.models.pretrain.synthetic_encoder`.
        padding: One of ``PADDINGS``, applied after the weights are loaded.
        width: VGG16 channel multiplier (ImageNet weights need 1.0).
        input_norm: One of ``INPUT_NORMS``.
        seed: Seed of the random initialisation.

    Returns:
        The encoder, with gradients off.
    """
    _check(weights, ("imagenet", "random"), "weights")
    if weights == "imagenet" and width != 1.0:
        raise ValueError("ImageNet weights exist only for width 1.0")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        encoder = MultiLevelEncoder(arch, width, input_norm)
    if weights == "imagenet":
        encoder.load_state_dict(_to_trunk_keys(arch, load_imagenet_state(arch)))
    return freeze(set_padding(encoder, padding))


def freeze(encoder: nn.Module) -> nn.Module:
    """Eval mode and no gradients, in place."""
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder
