"""A DeepLabv3 semantic segmenter with a ResNet backbone, built from torchvision's own classes.

Two sizes share one definition (torchvision's :class:`~torchvision.models.segmentation.DeepLabV3`
around an :class:`~torchvision.models._utils.IntermediateLayerGetter` of a torchvision ResNet):

- ``"resnet50"``: torchvision's ``deeplabv3_resnet50``, the paper's network (2048 channels after
  ``layer4``). Its weights are never downloaded: :func:`load_weights_file` reads them from a file
  the user provides.
- ``"narrow"``: the same design shrunk for a CPU: torchvision's Bottleneck ResNet with one block
  per stage and a base width of ``width`` (64 in ResNet-50), the same dilation of ``layer3`` and
  ``layer4`` (output stride 8), and torchvision's ASPP head with ``head_channels`` channels and
  atrous rates scaled down to the small feature maps. It is trained in the book on generated
  scenes (:func:`cached_segmenter`) and cached.

Both take images ``float32 [B, 3, H, W]`` in ``[0, 1]`` (normalised with ImageNet's mean and std
inside the model) and return logits ``[B, K, H, W]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import resnet as tv_resnet
from torchvision.models import segmentation as tv_seg
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation.deeplabv3 import ASPP

from posinfo.cache import Training, fingerprint, short_cause, supervised_epoch, train_cached
from posinfo.metrics.dense import IGNORE, class_map
from posinfo.models.encoders import IMAGENET_MEAN, IMAGENET_STD

ARCHS: tuple[str, ...] = ("narrow", "resnet50")
CACHE_VERSION = 1
OUTPUT_STRIDE = 8  # both sizes: layer3 and layer4 are dilated, so features are 1/8 of the input


class Segmenter(nn.Module):
    """ImageNet normalisation followed by a torchvision DeepLabV3; returns the ``"out"`` logits.

    Attributes:
        net: The torchvision ``DeepLabV3``; ``net.backbone.layer4`` is the last stage whose
            channels the chapter ranks and zeroes.
    """

    def __init__(self, net: tv_seg.DeepLabV3) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def last_stage(self) -> nn.Module:
        """The backbone's last stage (``layer4``)."""
        return self.net.backbone.layer4

    @property
    def channels(self) -> int:
        """Number of channels of the last stage's output (2048 for ResNet-50)."""
        return self.net.classifier[0].convs[0][0].in_channels

    def features(self, x: Tensor) -> Tensor:
        """The last stage's map ``[B, C, h, w]`` of images ``[B, 3, H, W]`` in [0, 1]."""
        return self.net.backbone((x - self.mean) / self.std)["out"]

    def forward(self, x: Tensor) -> Tensor:
        """Images ``[B, 3, H, W]`` in [0, 1] to class logits ``[B, K, H, W]``."""
        return self.net((x - self.mean) / self.std)["out"]

    def logits_from_features(self, features: Tensor, size: tuple[int, int]) -> Tensor:
        """The head on a last-stage map ``[B, C, h, w]`` (from :meth:`features`, maybe altered):
        class logits ``[B, K, *size]``, exactly as :meth:`forward` continues after the backbone."""
        logits = self.net.classifier(features)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def narrow_deeplabv3(num_classes: int, width: int = 8, head_channels: int = 32,
                     rates: tuple[int, int, int] = (2, 4, 6)) -> Segmenter:
    """DeepLabv3 on a ResNet-50-like backbone with one Bottleneck per stage at base ``width``.

    Args:
        num_classes: Output classes ``K``.
        width: Channels of the stem; the stages have ``width * (1, 2, 4, 8)`` inner channels and
            ``4x`` as many outputs, so ``layer4`` has ``32 * width`` channels.
        head_channels: Channels of the ASPP head (256 in the paper's network).
        rates: Atrous rates of the ASPP (12, 24, 36 in the paper's network, for far larger maps).

    Returns:
        The untrained segmenter (torchvision's initialisation; seed torch before calling).
    """
    net = tv_resnet.ResNet(tv_resnet.Bottleneck, [1, 1, 1, 1],
                           replace_stride_with_dilation=[False, True, True])
    net.inplanes = width
    net.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    for i, stride in enumerate((1, 2, 2, 2)):
        net.dilation = 1 if i < 2 else 2 ** (i - 1)
        setattr(net, f"layer{i + 1}", net._make_layer(tv_resnet.Bottleneck, width * 2 ** i, 1,
                                                      stride=stride if i < 2 else 1))
    backbone = IntermediateLayerGetter(net, return_layers={"layer4": "out"})
    head = nn.Sequential(ASPP(32 * width, list(rates), head_channels),
                         nn.Conv2d(head_channels, head_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(head_channels), nn.ReLU(),
                         nn.Conv2d(head_channels, num_classes, 1))
    return Segmenter(tv_seg.DeepLabV3(backbone, head))


# The file name chapter 7 looks for under ``data_root`` (data/README.md) unless told another.
DEEPLAB_FILE = "deeplabv3_resnet50_cityscapes.pth"


def resnet50_deeplabv3(num_classes: int) -> Segmenter:
    """torchvision's ``deeplabv3_resnet50`` with ``num_classes`` outputs, no weights loaded."""
    return Segmenter(tv_seg.deeplabv3_resnet50(weights=None, weights_backbone=None,
                                               num_classes=num_classes, aux_loss=False))


def load_weights_file(model: Segmenter, path: str | Path) -> Segmenter:
    """Load a DeepLabv3-ResNet-50 checkpoint from a file the user provides.

    The file holds a state dict in torchvision's naming (``backbone.layer4...``,
    ``classifier.0.convs...``), either as it is or under a ``"model_state"``, ``"state_dict"`` or
    ``"model"`` key; an auxiliary head (``aux_classifier.*``) is ignored.

    Raises:
        FileNotFoundError: If ``path`` does not exist, saying what to put there.
        ValueError: If the file is not a state dict of tensors (it is loaded with
            ``weights_only=True``), or its keys or shapes do not match the network.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"DeepLabv3-ResNet-50 weights for Cityscapes not found at {path}. Nothing is "
            "downloaded: train the network on Cityscapes (19 classes) or obtain a checkpoint in "
            "torchvision's deeplabv3_resnet50 layout, and save its state dict at that path "
            "(the chapter's knob `weights_file`).")
    try:  # tensors and plain data only: a checkpoint never runs code
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} cannot be read as a state dict of tensors ({short_cause(err)}); "
                         "save only the model's state_dict there") from err
    for key in ("model_state", "state_dict", "model"):
        state = state.get(key, state) if isinstance(state, dict) else state
    state = {k.removeprefix("module."): v for k, v in state.items()
             if not k.removeprefix("module.").startswith("aux_classifier")}
    try:
        model.net.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path} is not a DeepLabv3-ResNet-50 state dict in torchvision's "
                         f"layout with {model.net.classifier[-1].out_channels} classes: {err}") from err
    return model


# --- training on generated scenes ---------------------------------------------------------------


@dataclass(frozen=True)
class SegmenterTraining:
    """How the narrow segmenter is trained (Adam, pixel-wise cross-entropy, one-cycle schedule).

    Attributes:
        num_classes: Output classes (for the street scenes, ``street_classes(n_poles)``: six, or
            eight with poles).
        width: Base width of the backbone (see :func:`narrow_deeplabv3`).
        head_channels: Channels of the ASPP head.
        epochs: Passes over the training images.
        batch_size: Images per step.
        lr: The peak learning rate of the one-cycle schedule.
        seed: Seed of the initialisation and of the batch order.
        data_key: A fingerprint of the training images (their recipe), for the cache key.
    """

    num_classes: int
    width: int = 8
    head_channels: int = 32
    epochs: int = 10
    batch_size: int = 32
    lr: float = 5e-3
    seed: int = 0
    data_key: str = ""


def _epoch(training: Training, images: Tensor, masks: Tensor, cfg: SegmenterTraining,
           epoch: int) -> None:
    """One shuffled pass over ``images [N, 3, H, W]`` and ``masks [N, H, W]``; appends the mean
    loss to ``training.record["losses"]``."""
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
    loss = lambda logits, y: F.cross_entropy(logits, y, ignore_index=IGNORE)  # noqa: E731
    training.record["losses"].append(supervised_epoch(training, images, masks, loss, order,
                                                      cfg.batch_size))

def start_training(cfg: SegmenterTraining, n_images: int) -> Training:
    """A freshly initialised :func:`narrow_deeplabv3` (seeded by ``cfg.seed``, global RNG
    untouched) with Adam and a one-cycle schedule over all steps on ``n_images`` images."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = narrow_deeplabv3(cfg.num_classes, cfg.width, cfg.head_channels)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * -(-n_images // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    # The ASPP head's dropout draws from the global random state: checkpoints keep it.
    return Training(model, opt, sched, record={"config": asdict(cfg), "losses": [], "seconds": 0.0},
                    global_rng=True)


def cached_segmenter(cfg: SegmenterTraining, images: Tensor, masks: Tensor, cache_dir: str | Path,
                     progress: bool = True) -> tuple[Segmenter, dict]:
    """:func:`narrow_deeplabv3` trained on ``images [N, 3, H, W]`` and ``masks [N, H, W]``
    (int64): from the cache, or trained now on the CPU (resuming a partial run) and cached.

    The cache key is every field of ``cfg`` (``data_key`` stands for the training images).

    Returns:
        The trained model (eval mode) and a record: config, losses per epoch, seconds.
    """
    key = fingerprint(CACHE_VERSION, *asdict(cfg).values())
    state = train_cached(
        Path(cache_dir) / f"segmenter-{key}.pt", lambda: start_training(cfg, len(images)),
        lambda training, epoch: _epoch(training, images, masks, cfg, epoch), cfg.epochs,
        lambda training: {"model": training.model.state_dict(), "record": training.record},
        desc="training the segmenter", progress=progress)
    model = narrow_deeplabv3(cfg.num_classes, cfg.width, cfg.head_channels)
    model.load_state_dict(state["model"])
    return model.eval(), state["record"]


@torch.no_grad()
def predict(model: Segmenter, images: Tensor, batch_size: int = 32,
            device: torch.device | str = "cpu") -> Tensor:
    """Predicted classes ``int64 [N, H, W]`` of images ``[N, 3, H, W]`` (eval mode)."""
    model.eval().to(device)
    return torch.cat([class_map(model(x.to(device))).cpu() for x in images.split(batch_size)])
